//! CORS as Kafka Connect's `access.control.allow.origin` / `access.control.allow.methods`:
//! a browser page from the allowed origin may call the REST API. Preflight requests are
//! answered here, before authentication (browsers send them without credentials).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::rest_security::Cors;

/// The middleware.
pub(crate) async fn cors(State(cors): State<Arc<Cors>>, request: Request, next: Next) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let allowed = origin
        .as_ref()
        .and_then(|o| o.to_str().ok())
        .is_some_and(|o| cors.origin == "*" || cors.origin.split(',').any(|a| a.trim() == o));
    if !allowed {
        return next.run(request).await;
    }
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    let allow_origin = if cors.origin == "*" {
        HeaderValue::from_static("*")
    } else {
        origin.unwrap_or(HeaderValue::from_static("null"))
    };
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    if preflight {
        if let Ok(methods) = HeaderValue::from_str(&cors.methods) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, methods);
        }
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("X-Requested-With,Content-Type,Accept,Origin,Authorization"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("1800"),
        );
    }
    response
}
