//! An S3 API **fake** — not S3, and not a durable store: objects live in this test process's
//! memory. It exists so a Tansu broker can be restarted mid-test and find its topics again:
//! Tansu's `s3://` storage engine keeps every record batch, offset and watermark as objects,
//! and an object store that outlives the broker process is all a restart needs. (Tansu's
//! `memory://` engine loses every topic with the process; its durable SQL engines are behind
//! cargo features our Tansu install does not build.)
//!
//! It follows the documented S3 REST formats for what Tansu's object store client (the
//! `object_store` crate, path-style requests) sends:
//!
//! * `PUT /<bucket>/<key>` stores an object and answers its `ETag`. Conditional writes as S3
//!   documents them: `If-None-Match: *` is refused with 412 when the key exists, `If-Match:
//!   <etag>` with 412 when the stored ETag differs (or the key is missing).
//! * `GET`/`HEAD /<bucket>/<key>`: the object with `ETag`, `Last-Modified`, `Content-Length`;
//!   404 `NoSuchKey`; `If-None-Match` answered 304 and `If-Match` 412 as in HTTP; `Range:
//!   bytes=a-b` answered 206.
//! * `DELETE /<bucket>/<key>`: 204, present or not.
//! * `GET /<bucket>?list-type=2&prefix=…&delimiter=…` (ListObjectsV2): every match in one page,
//!   keys in byte order, `CommonPrefixes` when a delimiter is given.
//!
//! Fault injection: PUTs to keys containing a given text answered 503 `SlowDown` without
//! being applied ([`S3Fake::refuse_writes`]), so a test can hold a broker between two of its
//! writes.
//!
//! Signatures are not checked. Anything else (multipart uploads, copies, bulk deletes) is
//! answered 501 so a test shows it plainly rather than misbehaving.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone)]
struct Object {
    body: Bytes,
    etag: String,
}

#[derive(Debug, Default)]
struct Store {
    /// (bucket, key) → object.
    objects: BTreeMap<(String, String), Object>,
    writes: u64,
    /// PUTs to keys containing this are refused.
    refuse_writes_to: Option<String>,
    refused: u64,
}

type Shared = Arc<Mutex<Store>>;

/// The running fake; dropped, it stops (and its objects are gone).
pub(crate) struct S3Fake {
    pub(crate) endpoint: String,
    state: Shared,
    _runtime: tokio::runtime::Runtime,
}

impl S3Fake {
    pub(crate) fn start() -> S3Fake {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime for the S3 fake");
        let state = Shared::default();
        let app = Router::new().fallback(handle).with_state(state.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind the S3 fake");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        runtime.spawn(async move {
            axum::serve(listener, app).await.expect("serve the S3 fake");
        });
        S3Fake {
            endpoint,
            state,
            _runtime: runtime,
        }
    }

    /// The environment an `object_store` S3 client (Tansu's) needs to use this fake.
    pub(crate) fn client_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
            ("AWS_ACCESS_KEY_ID", "sluice-test".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "sluice-test".to_owned()),
            ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
        ]
    }

    /// From now on, answers PUTs to keys containing `key_part` with 503 and stores nothing.
    pub(crate) fn refuse_writes(&self, key_part: &str) {
        self.state.lock().unwrap().refuse_writes_to = Some(key_part.to_owned());
    }

    /// Accepts every write again.
    pub(crate) fn accept_writes(&self) {
        self.state.lock().unwrap().refuse_writes_to = None;
    }

    /// How many writes were refused.
    pub(crate) fn refused(&self) -> u64 {
        self.state.lock().unwrap().refused
    }

    /// How many objects are stored and how many writes were accepted.
    pub(crate) fn counts(&self) -> (usize, u64) {
        let store = self.state.lock().unwrap();
        (store.objects.len(), store.writes)
    }
}

async fn handle(State(state): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(body) => body,
        Err(_) => return error(StatusCode::BAD_REQUEST, "IncompleteBody"),
    };
    let path = percent_decode(parts.uri.path().trim_start_matches('/'));
    let (bucket, key) = match path.split_once('/') {
        Some((bucket, key)) => (bucket.to_owned(), key.to_owned()),
        None => (path.clone(), String::new()),
    };
    let query = parts.uri.query().unwrap_or_default();
    let headers = &parts.headers;
    let mut store = state.lock().unwrap();
    if key.is_empty() {
        return if parts.method == Method::GET && query.contains("list-type=2") {
            list(&store, &bucket, query)
        } else {
            error(StatusCode::NOT_IMPLEMENTED, "NotImplemented")
        };
    }
    if !query.is_empty() || headers.contains_key("x-amz-copy-source") {
        // Multipart uploads (`?uploads`, `?partNumber=`) and copies.
        return error(StatusCode::NOT_IMPLEMENTED, "NotImplemented");
    }
    let id = (bucket, key);
    match parts.method {
        Method::PUT => {
            if store
                .refuse_writes_to
                .as_ref()
                .is_some_and(|part| id.1.contains(part.as_str()))
            {
                store.refused += 1;
                return error(StatusCode::SERVICE_UNAVAILABLE, "SlowDown");
            }
            let existing = store.objects.get(&id);
            if let Some(expected) = headers.get(header::IF_MATCH)
                && existing.map(|o| o.etag.as_bytes()) != Some(expected.as_bytes())
            {
                return error(StatusCode::PRECONDITION_FAILED, "PreconditionFailed");
            }
            if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v == "*") && existing.is_some() {
                return error(StatusCode::PRECONDITION_FAILED, "PreconditionFailed");
            }
            store.writes += 1;
            let etag = format!("\"{}\"", store.writes);
            store.objects.insert(
                id,
                Object {
                    body,
                    etag: etag.clone(),
                },
            );
            (StatusCode::OK, [(header::ETAG, etag)]).into_response()
        }
        Method::GET | Method::HEAD => match store.objects.get(&id) {
            None => error(StatusCode::NOT_FOUND, "NoSuchKey"),
            Some(object) => read(object, headers, parts.method == Method::HEAD),
        },
        Method::DELETE => {
            store.objects.remove(&id);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => error(StatusCode::NOT_IMPLEMENTED, "NotImplemented"),
    }
}

/// A stored object's bytes, honouring the conditional and range headers a reader may send.
fn read(object: &Object, headers: &HeaderMap, head_only: bool) -> Response {
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == object.etag.as_bytes() || v == "*")
    {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, object.etag.clone())],
        )
            .into_response();
    }
    if headers
        .get(header::IF_MATCH)
        .is_some_and(|v| v.as_bytes() != object.etag.as_bytes() && v != "*")
    {
        return error(StatusCode::PRECONDITION_FAILED, "PreconditionFailed");
    }
    let total = object.body.len();
    let (status, range) = match headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| byte_range(v, total))
    {
        Some(range) => (StatusCode::PARTIAL_CONTENT, range),
        None => (StatusCode::OK, 0..total),
    };
    let body = object.body.slice(range.clone());
    let mut response = Response::builder()
        .status(status)
        .header(header::ETAG, &object.etag)
        .header(header::LAST_MODIFIED, LAST_MODIFIED)
        .header(header::CONTENT_LENGTH, body.len());
    if status == StatusCode::PARTIAL_CONTENT {
        response = response.header(
            header::CONTENT_RANGE,
            format!(
                "bytes {}-{}/{total}",
                range.start,
                range.end.saturating_sub(1)
            ),
        );
    }
    let body = if head_only { Bytes::new() } else { body };
    response.body(axum::body::Body::from(body)).unwrap()
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n` within an object of `total` bytes.
fn byte_range(value: &str, total: usize) -> Option<std::ops::Range<usize>> {
    let (first, last) = value.strip_prefix("bytes=")?.split_once('-')?;
    let range = match (first.parse::<usize>().ok(), last.parse::<usize>().ok()) {
        (Some(first), Some(last)) => first..(last + 1).min(total),
        (Some(first), None) => first..total,
        (None, Some(suffix)) => total.saturating_sub(suffix)..total,
        (None, None) => return None,
    };
    (range.start <= range.end).then_some(range)
}

/// Every time is the same: nothing here reads modification times.
const LAST_MODIFIED: &str = "Sun, 22 Nov 2026 00:00:00 GMT";
const LAST_MODIFIED_ISO: &str = "2026-11-22T00:00:00.000Z";

/// ListObjectsV2, every match in one page.
fn list(store: &Store, bucket: &str, query: &str) -> Response {
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| percent_decode(&v.replace('+', " ")))
    };
    let prefix = param("prefix").unwrap_or_default();
    let delimiter = param("delimiter").filter(|d| !d.is_empty());
    let start_after = param("start-after");
    let mut contents = String::new();
    let mut common_prefixes = std::collections::BTreeSet::new();
    for ((_, key), object) in store
        .objects
        .range((bucket.to_owned(), String::new())..)
        .take_while(|((b, _), _)| b == bucket)
        .filter(|((_, key), _)| key.starts_with(&prefix))
        .filter(|((_, key), _)| start_after.as_ref().is_none_or(|after| key > after))
    {
        let rest = &key[prefix.len()..];
        if let Some(at) = delimiter.as_ref().and_then(|d| rest.find(d.as_str())) {
            let delimiter_len = delimiter.as_ref().map_or(0, String::len);
            common_prefixes.insert(format!("{prefix}{}", &rest[..at + delimiter_len]));
            continue;
        }
        contents.push_str(&format!(
            "<Contents><Key>{}</Key><LastModified>{LAST_MODIFIED_ISO}</LastModified>\
             <ETag>{}</ETag><Size>{}</Size></Contents>",
            xml_escape(key),
            xml_escape(&object.etag),
            object.body.len()
        ));
    }
    let prefixes: String = common_prefixes
        .iter()
        .map(|p| {
            format!(
                "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
                xml_escape(p)
            )
        })
        .collect();
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <ListBucketResult><Name>{}</Name><Prefix>{}</Prefix><IsTruncated>false</IsTruncated>\
         {contents}{prefixes}</ListBucketResult>",
        xml_escape(bucket),
        xml_escape(&prefix)
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/xml")],
        xml,
    )
        .into_response()
}

fn error(status: StatusCode, code: &str) -> Response {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code>\
         <Message>{code} (sluice's S3 fake)</Message></Error>"
    );
    (status, [(header::CONTENT_TYPE, "application/xml")], xml).into_response()
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = || std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok();
        match (bytes[i], hex().and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
