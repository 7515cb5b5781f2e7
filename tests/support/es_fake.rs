//! An Elasticsearch API **fake** — not Elasticsearch. No real cluster can be installed on the
//! machines these tests run on, so the sink is tested against this in-process HTTP server. It
//! follows the documented REST formats for what the sink uses and models these behaviours:
//!
//! * `GET /` cluster info (`version.number` 8.15.0); HTTP basic authentication when
//!   [`EsFake::require_credentials`] is set (401 `security_exception` otherwise).
//! * `HEAD /<index>`, `PUT /<index>` (400 `resource_already_exists_exception` when it exists),
//!   `GET /<index>/_doc/<id>`, `GET /<index>/_count`, `POST /<index>/_refresh` (documents are
//!   visible at once: the fake has no refresh interval).
//! * `POST /_bulk` with `index`, `update` (`doc` + `doc_as_upsert`, merged field by field,
//!   `noop` when nothing changes) and `delete` actions, applied in order, one result item
//!   each with its own status: `created`/`updated` (201/200), `not_found` deletes (404), 409
//!   `version_conflict_engine_exception` for `version_type=external` writes not newer than the
//!   stored version (deleted documents keep their version, i.e. `index.gc_deletes` is
//!   unbounded here), 404 `index_not_found_exception` when the index is missing and
//!   auto-creation is off.
//! * Dynamic mapping, top-level fields only: the first value of a field fixes its type
//!   (number, string, boolean, object); a later value of another type is refused with 400
//!   `mapper_parsing_exception` (numeric strings into number fields are coerced, as in ES).
//! * `https://` with a given certificate ([`EsFake::start_tls`]).
//! * Fault injection: whole `_bulk` requests answered 429/503 ([`EsFake::fail_requests`]) and
//!   single items answered 429 `es_rejected_execution_exception` / 503 without being applied
//!   ([`EsFake::fail_items`]).
//!
//! Every applied write is also kept per document ([`EsFake::history`]) so tests can check the
//! order in which writes to one document arrived.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value as Json, json};

/// A stored document.
#[derive(Debug, Clone)]
pub(crate) struct Doc {
    pub(crate) source: Json,
    pub(crate) version: i64,
}

#[derive(Debug, Default)]
struct Index {
    docs: BTreeMap<String, Doc>,
    /// The version each deleted document had (external versioning compares against it).
    deleted: BTreeMap<String, i64>,
    /// Top-level field → its dynamic type.
    mapping: BTreeMap<String, &'static str>,
}

/// Counters of what the fake received.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Stats {
    pub(crate) bulk_requests: u64,
    pub(crate) items: u64,
    pub(crate) bytes: u64,
    pub(crate) rejected_requests: u64,
    pub(crate) rejected_items: u64,
    /// `update` items (upserts) received.
    pub(crate) updates: u64,
}

#[derive(Debug, Default)]
struct Inner {
    indices: BTreeMap<String, Index>,
    credentials: Option<(String, String)>,
    no_auto_create: bool,
    /// Statuses for the next whole `_bulk` requests.
    request_faults: VecDeque<u16>,
    /// (status, every n-th item, how many more): items refused without being applied.
    item_faults: Option<(u16, u64, u64)>,
    history: BTreeMap<(String, String), Vec<Option<Json>>>,
    stats: Stats,
}

/// The running fake; dropped, it stops.
pub(crate) struct EsFake {
    pub(crate) address: SocketAddr,
    scheme: &'static str,
    state: Arc<Mutex<Inner>>,
    _runtime: tokio::runtime::Runtime,
}

impl EsFake {
    /// Starts the fake on a free loopback port.
    pub(crate) fn start() -> EsFake {
        EsFake::serve(None)
    }

    /// Starts the fake serving `https://` with this PEM certificate chain and key.
    pub(crate) fn start_tls(certificate: &std::path::Path, key: &std::path::Path) -> EsFake {
        EsFake::serve(Some(super::certs::acceptor(certificate, key)))
    }

    fn serve(tls: Option<tokio_rustls::TlsAcceptor>) -> EsFake {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime for the Elasticsearch fake");
        let state = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/", axum::routing::get(info))
            .route("/_bulk", axum::routing::post(bulk))
            .route(
                "/{index}",
                axum::routing::put(create_index).head(head_index),
            )
            .route("/{index}/_doc/{id}", axum::routing::get(get_doc))
            .route("/{index}/_count", axum::routing::get(count))
            .route("/{index}/_refresh", axum::routing::post(refresh))
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                authenticate,
            ))
            .with_state(state.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind the Elasticsearch fake");
        let address = listener.local_addr().expect("fake address");
        let scheme = if tls.is_some() { "https" } else { "http" };
        match tls {
            None => {
                runtime.spawn(async move {
                    axum::serve(listener, app).await.expect("serve the fake");
                });
            }
            Some(acceptor) => {
                runtime.spawn(async move {
                    while let Ok((tcp, _)) = listener.accept().await {
                        let (acceptor, app) = (acceptor.clone(), app.clone());
                        tokio::spawn(async move {
                            let Ok(stream) = acceptor.accept(tcp).await else {
                                return; // the client refused our certificate
                            };
                            let service = hyper_util::service::TowerToHyperService::new(app);
                            let _ = hyper_util::server::conn::auto::Builder::new(
                                hyper_util::rt::TokioExecutor::new(),
                            )
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await;
                        });
                    }
                });
            }
        }
        EsFake {
            address,
            scheme,
            state,
            _runtime: runtime,
        }
    }

    /// `http://127.0.0.1:<port>` (`https://localhost:<port>` when serving TLS, the name its
    /// certificate is for).
    pub(crate) fn url(&self) -> String {
        match self.scheme {
            "https" => format!("https://localhost:{}", self.address.port()),
            _ => format!("http://{}", self.address),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.state.lock().expect("fake state")
    }

    /// From now on every request needs these basic-auth credentials.
    pub(crate) fn require_credentials(&self, user: &str, password: &str) {
        self.lock().credentials = Some((user.to_owned(), password.to_owned()));
    }

    /// Turns off `action.auto_create_index`: writes to a missing index fail.
    pub(crate) fn disable_auto_create(&self) {
        self.lock().no_auto_create = true;
    }

    /// Creates an index, as `PUT /<index>` would.
    pub(crate) fn create_index(&self, index: &str) {
        self.lock().indices.entry(index.to_owned()).or_default();
    }

    /// The next `statuses.len()` `_bulk` requests are answered with these statuses.
    pub(crate) fn fail_requests(&self, statuses: &[u16]) {
        self.lock().request_faults.extend(statuses);
    }

    /// Every `every`-th bulk item (counting all items received) is refused with `status`,
    /// `count` times in all.
    pub(crate) fn fail_items(&self, status: u16, every: u64, count: u64) {
        self.lock().item_faults = Some((status, every.max(1), count));
    }

    /// Drops every injected fault not yet used.
    pub(crate) fn clear_faults(&self) {
        let mut inner = self.lock();
        inner.request_faults.clear();
        inner.item_faults = None;
    }

    /// Injected faults not yet used: (whole requests, items).
    pub(crate) fn faults_left(&self) -> (usize, u64) {
        let inner = self.lock();
        (
            inner.request_faults.len(),
            inner.item_faults.map_or(0, |f| f.2),
        )
    }

    /// The documents of `index` by id (empty when the index does not exist).
    pub(crate) fn documents(&self, index: &str) -> BTreeMap<String, Json> {
        self.each_document(index, |doc| doc.source.clone())
    }

    /// How many documents `index` holds.
    pub(crate) fn count(&self, index: &str) -> usize {
        self.lock().indices.get(index).map_or(0, |i| i.docs.len())
    }

    /// The stored versions of `index`'s documents.
    pub(crate) fn versions(&self, index: &str) -> BTreeMap<String, i64> {
        self.each_document(index, |doc| doc.version)
    }

    fn each_document<T>(&self, index: &str, project: impl Fn(&Doc) -> T) -> BTreeMap<String, T> {
        self.lock()
            .indices
            .get(index)
            .map(|i| {
                i.docs
                    .iter()
                    .map(|(id, d)| (id.clone(), project(d)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// True when `index` exists.
    pub(crate) fn has_index(&self, index: &str) -> bool {
        self.lock().indices.contains_key(index)
    }

    /// Every write applied to one document, in order: the new source, `None` for deletes.
    pub(crate) fn history(&self, index: &str, id: &str) -> Vec<Option<Json>> {
        self.lock()
            .history
            .get(&(index.to_owned(), id.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    pub(crate) fn stats(&self) -> Stats {
        self.lock().stats
    }
}

type Shared = Arc<Mutex<Inner>>;

fn error(status: StatusCode, error_type: &str, reason: &str) -> Response {
    (
        status,
        axum::Json(json!({
            "error": {"root_cause": [{"type": error_type, "reason": reason}], "type": error_type, "reason": reason},
            "status": status.as_u16()
        })),
    )
        .into_response()
}

async fn authenticate(
    State(state): State<Shared>,
    headers: HeaderMap,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let expected = state.lock().expect("fake state").credentials.clone();
    if let Some((user, password)) = expected {
        use base64::Engine as _;
        let wanted = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let given = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if given != wanted {
            let mut response = error(
                StatusCode::UNAUTHORIZED,
                "security_exception",
                "unable to authenticate user for REST request [/]",
            );
            response.headers_mut().insert(
                "www-authenticate",
                "Basic realm=\"security\" charset=\"UTF-8\""
                    .parse()
                    .expect("header"),
            );
            return response;
        }
    }
    next.run(request).await
}

async fn info() -> Response {
    axum::Json(json!({
        "name": "es-fake",
        "cluster_name": "sluice-test-fake",
        "version": {"number": "8.15.0", "build_flavor": "default", "lucene_version": "9.11.1"},
        "tagline": "You Know, for Search"
    }))
    .into_response()
}

async fn head_index(State(state): State<Shared>, Path(index): Path<String>) -> StatusCode {
    if state
        .lock()
        .expect("fake state")
        .indices
        .contains_key(&index)
    {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn create_index(State(state): State<Shared>, Path(index): Path<String>) -> Response {
    let mut inner = state.lock().expect("fake state");
    if inner.indices.contains_key(&index) {
        return error(
            StatusCode::BAD_REQUEST,
            "resource_already_exists_exception",
            &format!("index [{index}] already exists"),
        );
    }
    inner.indices.insert(index.clone(), Index::default());
    axum::Json(json!({"acknowledged": true, "shards_acknowledged": true, "index": index}))
        .into_response()
}

async fn get_doc(
    State(state): State<Shared>,
    Path((index, id)): Path<(String, String)>,
) -> Response {
    let inner = state.lock().expect("fake state");
    let Some(found) = inner.indices.get(&index) else {
        return error(
            StatusCode::NOT_FOUND,
            "index_not_found_exception",
            &format!("no such index [{index}]"),
        );
    };
    match found.docs.get(&id) {
        Some(doc) => axum::Json(json!({"_index": index, "_id": id, "_version": doc.version, "found": true, "_source": doc.source})).into_response(),
        None => (StatusCode::NOT_FOUND, axum::Json(json!({"_index": index, "_id": id, "found": false}))).into_response(),
    }
}

async fn count(State(state): State<Shared>, Path(index): Path<String>) -> Response {
    let inner = state.lock().expect("fake state");
    match inner.indices.get(&index) {
        Some(found) => axum::Json(json!({"count": found.docs.len(), "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0}})).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "index_not_found_exception",
            &format!("no such index [{index}]"),
        ),
    }
}

async fn refresh() -> Response {
    axum::Json(json!({"_shards": {"total": 1, "successful": 1, "failed": 0}})).into_response()
}

fn field_type(value: &Json) -> Option<&'static str> {
    match value {
        Json::Null => None,
        Json::Bool(_) => Some("boolean"),
        Json::Number(_) => Some("number"),
        Json::String(_) => Some("string"),
        Json::Array(items) => items.iter().find_map(field_type),
        Json::Object(_) => Some("object"),
    }
}

/// Checks a document against the index's dynamic mapping, extending the mapping with new
/// fields. `Err` is the `mapper_parsing_exception` reason.
fn map_document(index: &mut Index, id: &str, source: &Json) -> Result<(), String> {
    let Some(object) = source.as_object() else {
        return Err("failed to parse: the document is not an object".to_owned());
    };
    let mut added = Vec::new();
    for (field, value) in object {
        let Some(kind) = field_type(value) else {
            continue;
        };
        match index.mapping.get(field.as_str()) {
            None => added.push((field.clone(), kind)),
            Some(&mapped) if mapped == kind => {}
            Some(&"number") if value.as_str().is_some_and(|s| s.parse::<f64>().is_ok()) => {}
            Some(&mapped) => {
                let shown = if mapped == "number" { "long" } else { mapped };
                return Err(format!(
                    "failed to parse field [{field}] of type [{shown}] in document with id '{id}'. Preview of field's value: '{value}'"
                ));
            }
        }
    }
    index.mapping.extend(added);
    Ok(())
}

fn merge(target: &mut Json, patch: &Json) {
    match (target, patch) {
        (Json::Object(target), Json::Object(patch)) => {
            for (key, value) in patch {
                match target.get_mut(key) {
                    Some(existing) if existing.is_object() && value.is_object() => {
                        merge(existing, value)
                    }
                    _ => {
                        target.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}

async fn bulk(State(state): State<Shared>, body: Bytes) -> Response {
    let mut inner = state.lock().expect("fake state");
    inner.stats.bulk_requests += 1;
    inner.stats.bytes += body.len() as u64;
    if let Some(status) = inner.request_faults.pop_front() {
        inner.stats.rejected_requests += 1;
        let status = StatusCode::from_u16(status).expect("status");
        let error_type = if status == StatusCode::TOO_MANY_REQUESTS {
            "es_rejected_execution_exception"
        } else {
            "unavailable_shards_exception"
        };
        return error(status, error_type, "injected by the test");
    }
    let text = String::from_utf8_lossy(&body);
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let mut items = Vec::new();
    let mut errors = false;
    while let Some(action_line) = lines.next() {
        let Ok(Json::Object(action)) = serde_json::from_str::<Json>(action_line) else {
            return error(
                StatusCode::BAD_REQUEST,
                "x_content_parse_exception",
                "malformed action line",
            );
        };
        let Some((name, meta)) = action.into_iter().next() else {
            return error(
                StatusCode::BAD_REQUEST,
                "action_request_validation_exception",
                "empty action",
            );
        };
        let source = if name == "delete" {
            None
        } else {
            match lines.next().map(serde_json::from_str::<Json>) {
                Some(Ok(source)) => Some(source),
                _ => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "x_content_parse_exception",
                        "missing or malformed source line",
                    );
                }
            }
        };
        inner.stats.items += 1;
        if name == "update" {
            inner.stats.updates += 1;
        }
        let item = apply(&mut inner, &name, &meta, source);
        errors |= item.get("error").is_some();
        items.push(json!({ name: item }));
    }
    axum::Json(json!({"took": 1, "errors": errors, "items": items})).into_response()
}

/// Applies one bulk item, returning its result object.
fn apply(inner: &mut Inner, action: &str, meta: &Json, source: Option<Json>) -> Json {
    let index_name = meta["_index"].as_str().unwrap_or_default().to_owned();
    let id = meta["_id"].as_str().unwrap_or_default().to_owned();
    let item_error = |status: u16, error_type: &str, reason: String| json!({"_index": index_name, "_id": id, "status": status, "error": {"type": error_type, "reason": reason}});
    if let Some((status, every, left)) = inner.item_faults
        && left > 0
        && inner.stats.items.is_multiple_of(every)
    {
        inner.item_faults = Some((status, every, left - 1));
        inner.stats.rejected_items += 1;
        let error_type = if status == 429 {
            "es_rejected_execution_exception"
        } else {
            "unavailable_shards_exception"
        };
        return item_error(status, error_type, "injected by the test".to_owned());
    }
    let external = meta["version_type"].as_str() == Some("external");
    let given_version = meta["version"].as_i64();
    if !inner.indices.contains_key(&index_name) {
        if inner.no_auto_create {
            return item_error(
                404,
                "index_not_found_exception",
                format!("no such index [{index_name}]"),
            );
        }
        inner.indices.insert(index_name.clone(), Index::default());
    }
    let index = inner.indices.get_mut(&index_name).expect("index exists");
    let current = index
        .docs
        .get(&id)
        .map(|d| d.version)
        .or_else(|| index.deleted.get(&id).copied());
    if external {
        let given = given_version.unwrap_or(0);
        if current.is_some_and(|c| given <= c) {
            return item_error(
                409,
                "version_conflict_engine_exception",
                format!(
                    "[{id}]: version conflict, current version [{}] is higher or equal to the one provided [{given}]",
                    current.unwrap_or(0)
                ),
            );
        }
    }
    let next_version = if external {
        given_version.unwrap_or(1)
    } else {
        index.docs.get(&id).map_or(1, |d| d.version + 1)
    };
    let (status, result, written) = match action {
        "delete" => {
            if index.docs.remove(&id).is_none() {
                if external {
                    index.deleted.insert(id.clone(), next_version);
                }
                return json!({"_index": index_name, "_id": id, "_version": next_version, "result": "not_found", "status": 404});
            }
            index.deleted.insert(id.clone(), next_version);
            (200, "deleted", None)
        }
        "index" | "create" | "update" => {
            let mut document = source.unwrap_or(Json::Null);
            if action == "update" {
                let patch = document.get("doc").cloned().unwrap_or(Json::Null);
                match index.docs.get(&id) {
                    Some(existing) => {
                        let mut merged = existing.source.clone();
                        merge(&mut merged, &patch);
                        if merged == existing.source {
                            return json!({"_index": index_name, "_id": id, "_version": existing.version, "result": "noop", "status": 200});
                        }
                        document = merged;
                    }
                    None if document.get("doc_as_upsert") == Some(&Json::Bool(true)) => {
                        document = patch;
                    }
                    None => {
                        return item_error(
                            404,
                            "document_missing_exception",
                            format!("[{id}]: document missing"),
                        );
                    }
                }
            }
            if let Err(reason) = map_document(index, &id, &document) {
                return item_error(400, "mapper_parsing_exception", reason);
            }
            let existed = index.docs.contains_key(&id);
            index.deleted.remove(&id);
            index.docs.insert(
                id.clone(),
                Doc {
                    source: document.clone(),
                    version: next_version,
                },
            );
            if existed {
                (200, "updated", Some(document))
            } else {
                (201, "created", Some(document))
            }
        }
        other => {
            return item_error(
                400,
                "illegal_argument_exception",
                format!("unknown action [{other}]"),
            );
        }
    };
    inner
        .history
        .entry((index_name.clone(), id.clone()))
        .or_default()
        .push(written);
    json!({"_index": index_name, "_id": id, "_version": next_version, "result": result, "status": status, "_seq_no": 0, "_primary_term": 1})
}
