//! Kafka Connect's `/admin/loggers` (KIP-495): read and change log levels while the worker
//! runs. The levels are this worker's (Kafka Connect's `scope=worker`); see
//! [`crate::logging`] for how names map to sluice's modules.

use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use super::{ApiError, ApiResult, parse_body};
use crate::logging::{LogLevels, levels};

fn installed() -> ApiResult<&'static LogLevels> {
    levels().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "log levels can only be changed in the sluice binary, whose logging is installed",
        )
    })
}

fn level_json((level, last_modified): (String, Option<i64>)) -> Json {
    json!({"level": level, "last_modified": last_modified})
}

/// `GET /admin/loggers`: `root` and every logger set since the worker started.
pub(super) async fn list() -> ApiResult<axum::Json<Json>> {
    let levels = installed()?;
    let out: serde_json::Map<String, Json> = levels
        .list()
        .into_iter()
        .map(|(name, level)| (name, level_json(level)))
        .collect();
    Ok(axum::Json(Json::Object(out)))
}

/// `GET /admin/loggers/{name}`: the level the logger logs at.
pub(super) async fn get(Path(name): Path<String>) -> ApiResult<axum::Json<Json>> {
    Ok(axum::Json(level_json(installed()?.level(&name))))
}

/// `PUT /admin/loggers/{name}` with `{"level": "DEBUG"}`: the loggers whose level changed.
pub(super) async fn put(
    Path(name): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    body: Bytes,
) -> ApiResult<axum::Json<Json>> {
    let levels = installed()?;
    if query
        .iter()
        .any(|(k, v)| k == "scope" && !v.eq_ignore_ascii_case("worker"))
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "only scope=worker is supported: PUT the level to each worker of the group",
        ));
    }
    let body: Json = parse_body(&body)?;
    let Some(level) = body.get("level").and_then(Json::as_str) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "The request body must name a level: {\"level\": \"DEBUG\"}",
        ));
    };
    let changed = levels.set(&name, level)?;
    tracing::info!(logger = %name, level, "log level changed");
    Ok(axum::Json(json!(changed)))
}
