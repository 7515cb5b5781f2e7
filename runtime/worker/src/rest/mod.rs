//! Kafka Connect's REST API over a [`Herder`]: same paths, same JSON shapes, errors as
//! `{"error_code": <status>, "message": "…"}`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::de::DeserializeOwned;
use serde_json::{Value as Json, json};
use sluice_api::config::Props;
use sluice_api::{Error, ErrorKind};

use crate::herder::Herder;
use crate::state::{PartitionOffset, TargetState};

pub mod auth;
mod cors;
pub(crate) mod hop;
mod loggers;
mod serve;
mod server;
pub(crate) mod tls;
mod ui;

pub use auth::hash_password;
pub use serve::{RestLimits, connection_cap, serve};
pub(crate) use server::{RestServer, bind};

type Shared = Arc<dyn Herder>;

/// A REST error: Kafka Connect's body shape with the matching HTTP status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

/// The HTTP status an error of `kind` is answered with.
pub(crate) fn status_for(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Config | ErrorKind::Data => StatusCode::BAD_REQUEST,
        ErrorKind::Retriable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> ApiError {
        ApiError::new(status_for(error.kind()), error.message())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error_code": self.status.as_u16(), "message": self.message});
        (self.status, axum::Json(body)).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// Runs a change (create, reconfigure, delete, restart, pause, resume, stop, offsets) in a
/// task of its own and waits for it. When the client goes away, hyper drops the handler's
/// future; the change itself must not be cut off halfway (a connector stopped but never
/// started again, a config half replaced), so it runs to completion regardless, and a client
/// that waits gets its result. The herder serialises changes.
async fn to_completion<T: Send + 'static>(
    change: impl std::future::Future<Output = sluice_api::Result<T>> + Send + 'static,
) -> ApiResult<T> {
    match tokio::spawn(hop::carry(change)).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the request's operation ended abnormally: {e}"),
        )),
    }
}

fn parse_body<T: DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("Invalid JSON in request body: {e}"),
        )
    })
}

/// Config values may be written as JSON strings, numbers or booleans; all become strings.
fn config_map(json: &Json, what: &str) -> ApiResult<Props> {
    let object = json.as_object().ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{what} must be a JSON object"),
        )
    })?;
    object
        .iter()
        .map(|(k, v)| match v {
            Json::String(s) => Ok((k.clone(), s.clone())),
            Json::Number(_) | Json::Bool(_) => Ok((k.clone(), v.to_string())),
            _ => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("{what}: value of `{k}` must be a string, number or boolean"),
            )),
        })
        .collect()
}

/// The router with every endpoint.
pub fn router(herder: Shared) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/connectors", get(list_connectors).post(create_connector))
        .route(
            "/connectors/{name}",
            get(connector_info).delete(delete_connector),
        )
        .route(
            "/connectors/{name}/config",
            get(connector_config).put(put_config).patch(patch_config),
        )
        .route("/connectors/{name}/status", get(connector_status))
        .route(
            "/connectors/{name}/tasks",
            get(task_infos).post(put_task_configs),
        )
        .route("/connectors/{name}/tasks/{task}/status", get(task_status))
        .route(
            "/connectors/{name}/tasks/{task}/restart",
            post(restart_task),
        )
        .route("/connectors/{name}/restart", post(restart_connector))
        .route("/connectors/{name}/pause", put(pause))
        .route("/connectors/{name}/resume", put(resume))
        .route("/connectors/{name}/stop", put(stop))
        .route("/connectors/{name}/topics", get(connector_topics))
        .route(
            "/connectors/{name}/topics/reset",
            put(reset_connector_topics),
        )
        .route(
            "/connectors/{name}/offsets",
            get(offsets).patch(alter_offsets).delete(reset_offsets),
        )
        .route("/ui", get(ui::page))
        .route("/ui/", get(ui::page))
        .route("/ui/data", get(ui::data))
        .route("/admin/loggers", get(loggers::list))
        .route("/admin/loggers/{name}", get(loggers::get).put(loggers::put))
        .route("/connector-plugins", get(plugins))
        .route("/connector-plugins/{plugin}/config", get(plugin_config))
        .route("/connector-plugins/{plugin}/config/validate", put(validate))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "HTTP 404 Not Found") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "HTTP 405 Method Not Allowed",
            )
        })
        .layer(axum::middleware::from_fn(hop::read_flag))
        .layer(axum::middleware::map_response(json_errors))
        .with_state(herder)
}

/// Gives every error answer Kafka Connect's `{"error_code","message"}` body, including those
/// axum makes itself (413 for a body over the limit, 415, 400 for a malformed path) as plain
/// text.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    ApiError::new(status, message).into_response()
}

async fn root() -> axum::Json<Json> {
    axum::Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "commit": option_env!("SLUICE_GIT_COMMIT").unwrap_or("unknown"),
        "kafka_cluster_id": null,
    }))
}

async fn health() -> axum::Json<Json> {
    axum::Json(json!({
        "status": "healthy",
        "message": "Worker has completed startup and is ready to handle requests."
    }))
}

/// The worker's metrics in the OpenMetrics text format (see [`crate::metrics`]).
async fn metrics(State(herder): State<Shared>) -> impl IntoResponse {
    let statuses = herder.statuses().await;
    let body = herder.metrics().encode(statuses, &herder.worker_id()).await;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::CONTENT_TYPE,
        )],
        body,
    )
}

/// `GET /connectors/{c}/topics` (KIP-558): `{"<c>": {"topics": [...]}}`.
async fn connector_topics(
    State(herder): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Json>> {
    if !herder.active_topics().enabled() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Topic tracking is disabled.",
        ));
    }
    let topics = herder.connector_topics(&name).await?;
    Ok(axum::Json(json!({ name: {"topics": topics} })))
}

/// `PUT /connectors/{c}/topics/reset` (KIP-558): 202.
async fn reset_connector_topics(
    State(herder): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let tracking = herder.active_topics();
    if !tracking.enabled() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Topic tracking is disabled.",
        ));
    }
    if !tracking.allow_reset() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Topic tracking reset is disabled.",
        ));
    }
    to_completion(async move { herder.reset_connector_topics(&name).await }).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn list_connectors(
    State(herder): State<Shared>,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<axum::Json<Json>> {
    let names = herder.connector_names().await;
    let expand: Vec<&str> = query
        .iter()
        .filter(|(k, _)| k == "expand")
        .map(|(_, v)| v.as_str())
        .collect();
    if expand.is_empty() {
        return Ok(axum::Json(json!(names)));
    }
    let mut out = serde_json::Map::new();
    for name in names {
        let mut entry = serde_json::Map::new();
        // A connector deleted between the listing and this lookup is simply left out.
        if expand.contains(&"status")
            && let Ok(status) = herder.connector_status(&name).await
        {
            entry.insert("status".into(), json!(status));
        }
        if expand.contains(&"info")
            && let Ok(info) = herder.connector_info(&name).await
        {
            entry.insert("info".into(), json!(info));
        }
        out.insert(name, Json::Object(entry));
    }
    Ok(axum::Json(Json::Object(out)))
}

async fn create_connector(State(herder): State<Shared>, body: Bytes) -> ApiResult<Response> {
    let request: Json = parse_body(&body)?;
    let config = config_map(request.get("config").unwrap_or(&Json::Null), "`config`")?;
    let name = request
        .get("name")
        .and_then(Json::as_str)
        .map(str::to_owned)
        .or_else(|| config.get("name").cloned())
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "Connector name must be given as `name`",
            )
        })?;
    let (info, _) =
        to_completion(async move { herder.put_connector(&name, config, false).await }).await?;
    Ok((StatusCode::CREATED, axum::Json(json!(info))).into_response())
}

async fn connector_info(
    State(herder): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Json>> {
    Ok(axum::Json(json!(herder.connector_info(&name).await?)))
}

/// `DELETE /connectors/{name}`, as in Kafka Connect; `?cleanup=true` (sluice's own flag) also
/// removes what a source keeps in its external system, e.g. a Postgres replication slot.
async fn delete_connector(
    State(herder): State<Shared>,
    Path(name): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> ApiResult<StatusCode> {
    let cleanup = query
        .get("cleanup")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    to_completion(async move { herder.delete_connector(&name, cleanup).await }).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn connector_config(
    State(herder): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Json>> {
    Ok(axum::Json(json!(
        herder.connector_info(&name).await?.config
    )))
}

async fn put_config(
    State(herder): State<Shared>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let config = config_map(&parse_body(&body)?, "the config")?;
    let (info, created) =
        to_completion(async move { herder.put_connector(&name, config, true).await }).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(json!(info))).into_response())
}

async fn patch_config(
    State(herder): State<Shared>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<axum::Json<Json>> {
    let patch: BTreeMap<String, Json> = parse_body(&body)?;
    let patch = patch
        .into_iter()
        .map(|(k, v)| match v {
            Json::Null => Ok((k, None)),
            Json::String(s) => Ok((k, Some(s))),
            Json::Number(_) | Json::Bool(_) => Ok((k, Some(v.to_string()))),
            _ => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("value of `{k}` must be a string or null"),
            )),
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let info = to_completion(async move { herder.patch_connector(&name, patch).await }).await?;
    Ok(axum::Json(json!(info)))
}

async fn connector_status(
    State(herder): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Json>> {
    Ok(axum::Json(json!(herder.connector_status(&name).await?)))
}

async fn task_infos(
    State(herder): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Json>> {
    Ok(axum::Json(json!(herder.task_infos(&name).await?)))
}

/// Kafka Connect's internal endpoint: task configs from the worker running a connector, to
/// the leader, signed (see [`Herder::put_task_configs`]).
async fn put_task_configs(
    State(herder): State<Shared>,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let signature = header("X-Connect-Authorization");
    let algorithm = header("X-Connect-Request-Signature-Algorithm");
    let change = async move {
        herder
            .put_task_configs(&name, &body, signature.as_deref(), algorithm.as_deref())
            .await
    };
    match tokio::spawn(hop::carry(change)).await {
        Ok(Ok(())) => Ok(StatusCode::NO_CONTENT),
        Ok(Err((status, message))) => Err(ApiError::new(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            message,
        )),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the request's operation ended abnormally: {e}"),
        )),
    }
}

fn task_number(task: &str) -> ApiResult<u32> {
    task.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("task id `{task}` is not a number"),
        )
    })
}

async fn task_status(
    State(herder): State<Shared>,
    Path((name, task)): Path<(String, String)>,
) -> ApiResult<axum::Json<Json>> {
    Ok(axum::Json(json!(
        herder.task_status(&name, task_number(&task)?).await?
    )))
}

async fn restart_task(
    State(herder): State<Shared>,
    Path((name, task)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let task = task_number(&task)?;
    to_completion(async move { herder.restart_task(&name, task).await }).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn restart_connector(
    State(herder): State<Shared>,
    Path(name): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> ApiResult<Response> {
    let flag = |k: &str| query.get(k).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let (include_tasks, only_failed) = (flag("includeTasks"), flag("onlyFailed"));
    let (restarting, restarted) = (Arc::clone(&herder), name.clone());
    to_completion(async move {
        restarting
            .restart_connector(&restarted, include_tasks, only_failed)
            .await
    })
    .await?;
    if include_tasks || only_failed {
        let status = herder.connector_status(&name).await?;
        return Ok((StatusCode::ACCEPTED, axum::Json(json!(status))).into_response());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn pause(State(herder): State<Shared>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    to_completion(async move { herder.set_target_state(&name, TargetState::Paused).await }).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn resume(State(herder): State<Shared>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    to_completion(async move { herder.set_target_state(&name, TargetState::Started).await })
        .await?;
    Ok(StatusCode::ACCEPTED)
}

async fn stop(State(herder): State<Shared>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    to_completion(async move { herder.set_target_state(&name, TargetState::Stopped).await })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn offsets(
    State(herder): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Json>> {
    Ok(axum::Json(json!({"offsets": herder.offsets(&name).await?})))
}

async fn alter_offsets(
    State(herder): State<Shared>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<axum::Json<Json>> {
    let request: Json = parse_body(&body)?;
    let bad = |why: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "{why}; expected {{\"offsets\": [{{\"partition\": {{…}}, \"offset\": {{…}} | null}}]}}"
            ),
        )
    };
    let list = request
        .get("offsets")
        .and_then(Json::as_array)
        .ok_or_else(|| bad("missing `offsets` list"))?;
    let offsets = list
        .iter()
        .map(|item| {
            let partition = item
                .get("partition")
                .and_then(Json::as_object)
                .ok_or_else(|| bad("an entry has no `partition` object"))?;
            let offset = match item.get("offset") {
                None | Some(Json::Null) => None,
                Some(Json::Object(o)) => Some(o.clone()),
                Some(_) => return Err(bad("an `offset` is neither an object nor null")),
            };
            Ok(PartitionOffset {
                partition: partition.clone(),
                offset,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    to_completion(async move { herder.alter_offsets(&name, offsets).await }).await?;
    Ok(axum::Json(
        json!({"message": "The offsets for this connector have been altered successfully"}),
    ))
}

async fn reset_offsets(
    State(herder): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Json>> {
    to_completion(async move { herder.reset_offsets(&name).await }).await?;
    Ok(axum::Json(
        json!({"message": "The offsets for this connector have been reset successfully"}),
    ))
}

async fn plugins(State(herder): State<Shared>) -> axum::Json<Json> {
    axum::Json(json!(herder.plugins()))
}

async fn plugin_config(
    State(herder): State<Shared>,
    Path(plugin): Path<String>,
) -> ApiResult<axum::Json<Json>> {
    Ok(axum::Json(herder.plugin_config(&plugin)?))
}

async fn validate(
    State(herder): State<Shared>,
    Path(plugin): Path<String>,
    body: Bytes,
) -> ApiResult<axum::Json<Json>> {
    let config = config_map(&parse_body(&body)?, "the config")?;
    Ok(axum::Json(herder.validate(&plugin, config).await?))
}
