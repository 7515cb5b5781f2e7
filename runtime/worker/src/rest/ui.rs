//! The live status page (`GET /ui`) and the data it polls (`GET /ui/data`). The page is one
//! HTML file with its script and style inline, compiled into the binary: no CDN, nothing
//! fetched at run time but `/ui/data` and the REST calls its buttons make.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Value as Json, json};

use super::Shared;

const PAGE: &str = include_str!("ui/index.html");

/// `GET /ui`.
pub(super) async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
}

/// `GET /ui/data`: every connector and task with its state, worker and trace, and for the
/// tasks running on this worker their figures (records in and out, rate, skipped, dead
/// letters, in flight, the task's own gauges such as slot lag and snapshot progress).
pub(super) async fn data(State(herder): State<Shared>) -> axum::Json<Json> {
    let figures = herder.metrics().figures();
    let mut connectors = Vec::new();
    for status in herder.statuses().await {
        let name = &status.name;
        let tasks: Vec<Json> = status
            .tasks
            .iter()
            .map(|task| {
                json!({
                    "id": task.id,
                    "state": task.state,
                    "worker_id": task.worker_id,
                    "trace": task.trace,
                    "figures": figures.get(&(name.clone(), task.id)),
                })
            })
            .collect();
        connectors.push(json!({
            "name": status.name,
            "type": status.kind,
            "state": status.connector.state,
            "worker_id": status.connector.worker_id,
            "trace": status.connector.trace,
            "tasks": tasks,
        }));
    }
    let at_ms = crate::clock::now_ms();
    axum::Json(json!({
        "worker_id": herder.worker_id(),
        "at_ms": at_ms,
        "connectors": connectors,
    }))
}
