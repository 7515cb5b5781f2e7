//! A small Elasticsearch/OpenSearch REST client: the calls the sink needs, over every URL of
//! `connection.url` with failover, basic authentication, a custom CA and timeouts.

use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use reqwest::{Method, StatusCode};
use serde_json::Value as Json;
use sluice_api::{Error, ErrorKind, Result, Secret};

use crate::config::ElasticsearchSinkConfig;

/// What `GET /` says about the cluster.
#[derive(Debug, Clone)]
pub struct ClusterInfo {
    /// `version.number`, e.g. `8.15.0`.
    pub version: String,
    /// `version.distribution` (`opensearch`), or `elasticsearch` when absent.
    pub distribution: String,
}

/// One item of a `_bulk` response, in request order.
#[derive(Debug, Clone)]
pub struct BulkItem {
    pub status: u16,
    /// `result` (`created`, `updated`, `deleted`, `not_found`, `noop`), when present.
    pub result: Option<String>,
    /// `error.type`, when the item failed.
    pub error_type: Option<String>,
    /// `error.reason`, when the item failed.
    pub reason: Option<String>,
}

/// The client. Cheap to share: requests from several tasks may run at once.
#[derive(Debug)]
pub struct EsClient {
    http: reqwest::Client,
    urls: Vec<String>,
    /// The URL that answered last; requests start there.
    preferred: AtomicUsize,
    /// User and password for basic authentication.
    credentials: Option<(String, Secret)>,
}

impl EsClient {
    /// A client for the configured cluster. Makes no request.
    pub fn new(config: &ElasticsearchSinkConfig) -> Result<EsClient> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.read_timeout);
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                Error::config(format!(
                    "cannot read elastic.https.ssl.ca.location={path}: {e}"
                ))
            })?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Error::config(format!(
                    "elastic.https.ssl.ca.location={path} holds no PEM certificate ({e})"
                ))
            })?;
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder
            .build()
            .map_err(|e| Error::fatal(format!("cannot build the HTTP client: {e}")))?;
        Ok(EsClient {
            http,
            urls: config.urls.clone(),
            preferred: AtomicUsize::new(0),
            credentials: config
                .username
                .clone()
                .map(|user| (user, config.password.clone())),
        })
    }

    /// Sends a request to the preferred node, failing over to the others when a node cannot
    /// be reached. The answer is returned whatever its status.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Bytes)>,
    ) -> Result<(StatusCode, Vec<u8>, String)> {
        let start = self.preferred.load(Ordering::Relaxed);
        let mut failures = Vec::new();
        for step in 0..self.urls.len() {
            let at = (start + step) % self.urls.len();
            let url = format!("{}{path}", self.urls[at]);
            let mut request = self.http.request(method.clone(), &url);
            if let Some((user, password)) = &self.credentials {
                request = request.basic_auth(user, Some(password.expose()));
            }
            if let Some((content_type, bytes)) = &body {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, *content_type)
                    // A reference-counted handle: failing over does not copy the body.
                    .body(bytes.clone());
            }
            let outcome = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    response.bytes().await.map(|b| (status, b.to_vec()))
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok((status, bytes)) => {
                    self.preferred.store(at, Ordering::Relaxed);
                    return Ok((status, bytes, self.urls[at].clone()));
                }
                Err(e) => {
                    tracing::debug!(url = %self.urls[at], error = %describe(&e), "Elasticsearch node did not answer; trying the next");
                    failures.push(format!("{}: {}", self.urls[at], describe(&e)));
                }
            }
        }
        Err(Error::retriable(format!(
            "cannot reach Elasticsearch ({}); check connection.url and that the cluster is up",
            failures.join("; ")
        )))
    }

    /// `GET /`: checks that the URL is an Elasticsearch or OpenSearch node and that the
    /// credentials are accepted.
    pub async fn info(&self) -> Result<ClusterInfo> {
        let (status, body, url) = self.send(Method::GET, "/", None).await?;
        if !status.is_success() {
            return Err(status_error(status, &body, &url, "GET /"));
        }
        let json: Json = serde_json::from_slice(&body).map_err(|_| {
            Error::config(format!(
                "{url} answered GET / with something that is not Elasticsearch's cluster info; \
                 check connection.url"
            ))
        })?;
        let version = json.pointer("/version/number").and_then(Json::as_str);
        let Some(version) = version else {
            return Err(Error::config(format!(
                "{url} does not look like Elasticsearch or OpenSearch (no version.number in GET /); \
                 check connection.url"
            )));
        };
        Ok(ClusterInfo {
            version: version.to_owned(),
            distribution: json
                .pointer("/version/distribution")
                .and_then(Json::as_str)
                .unwrap_or("elasticsearch")
                .to_owned(),
        })
    }

    /// `HEAD /<index>`.
    pub async fn index_exists(&self, index: &str) -> Result<bool> {
        let (status, body, url) = self
            .send(Method::HEAD, &format!("/{}", encode(index)), None)
            .await?;
        match status {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(status_error(status, &body, &url, &format!("HEAD /{index}"))),
        }
    }

    /// `PUT /<index>`; an index created meanwhile by someone else is fine.
    pub async fn create_index(&self, index: &str) -> Result<()> {
        let (status, body, url) = self
            .send(Method::PUT, &format!("/{}", encode(index)), None)
            .await?;
        if status.is_success() {
            return Ok(());
        }
        let error_type = serde_json::from_slice::<Json>(&body).ok().and_then(|j| {
            j.pointer("/error/type")
                .and_then(Json::as_str)
                .map(str::to_owned)
        });
        if error_type.as_deref() == Some("resource_already_exists_exception") {
            return Ok(());
        }
        Err(status_error(status, &body, &url, &format!("PUT /{index}")))
    }

    /// `POST /_bulk` with an NDJSON body; the items of a 200 answer, in request order.
    pub async fn bulk(&self, body: Vec<u8>) -> Result<Vec<BulkItem>> {
        let (status, answer, url) = self
            .send(
                Method::POST,
                "/_bulk",
                Some(("application/x-ndjson", Bytes::from(body))),
            )
            .await?;
        if !status.is_success() {
            return Err(status_error(status, &answer, &url, "POST /_bulk"));
        }
        let json: Json = serde_json::from_slice(&answer).map_err(|e| {
            Error::retriable(format!("{url} answered POST /_bulk with invalid JSON: {e}"))
        })?;
        let Some(items) = json.get("items").and_then(Json::as_array) else {
            return Err(Error::fatal(format!(
                "{url} answered POST /_bulk without `items`: {}",
                snippet(&answer)
            )));
        };
        Ok(items
            .iter()
            .map(|item| {
                // `{"index": {...}}`: one key, the action.
                let inner = item
                    .as_object()
                    .and_then(|o| o.values().next())
                    .cloned()
                    .unwrap_or(Json::Null);
                BulkItem {
                    status: inner
                        .get("status")
                        .and_then(Json::as_u64)
                        .and_then(|s| u16::try_from(s).ok())
                        .unwrap_or(500),
                    result: inner
                        .get("result")
                        .and_then(Json::as_str)
                        .map(str::to_owned),
                    error_type: inner
                        .pointer("/error/type")
                        .and_then(Json::as_str)
                        .map(str::to_owned),
                    reason: inner
                        .pointer("/error/reason")
                        .and_then(Json::as_str)
                        .map(str::to_owned),
                }
            })
            .collect())
    }
}

/// A request's failure by status: 429 and 5xx may pass (retriable), 401/403 are a
/// configuration problem, anything else is fatal. The message names the node and the fix.
fn status_error(status: StatusCode, body: &[u8], url: &str, what: &str) -> Error {
    let detail = snippet(body);
    let code = status.as_u16();
    let kind = match code {
        429 | 500..=599 => ErrorKind::Retriable,
        401 | 403 => ErrorKind::Config,
        _ => ErrorKind::Fatal,
    };
    let hint = match code {
        401 => {
            " — Elasticsearch refused the credentials; check connection.username and connection.password"
        }
        403 => {
            " — the user lacks the privilege for this request; grant it (e.g. `write` and `create_index` on the indices)"
        }
        404 => " — check connection.url (a path after host:port?)",
        _ => "",
    };
    Error::new(
        kind,
        format!("{url} answered {what} with {status}{hint}: {detail}"),
    )
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.len() > 300 {
        format!("{}…", &text[..text.floor_char_boundary(300)])
    } else {
        text.to_owned()
    }
}

/// A connection failure described with its cause (reqwest's own message hides it).
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Index names are lowercase without `/`, `\`, `*`, `?`, `"`, `<`, `>`, `|`, space, `,`, `#`;
/// percent-encode what a URL path would misread anyway.
fn encode(index: &str) -> String {
    let mut out = String::with_capacity(index.len());
    for byte in index.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'+' => {
                out.push(char::from(byte));
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
