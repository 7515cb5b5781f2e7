//! The REST API's HTTP/1.1 server: one task per connection, a cap on how many are open, and
//! a time limit on every read, so idle or trickling clients cannot hold the worker's file
//! descriptors (which its offset store, sockets and files need) or its memory.
//!
//! `axum::serve` has neither: it accepts until `accept` fails with EMFILE and keeps an idle
//! connection open forever.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use super::ApiError;
use crate::config::rest_security::RestSecurity;

/// How the server bounds its connections.
#[derive(Debug, Clone, Copy)]
pub struct RestLimits {
    /// Longest wait for a request's headers (an idle keep-alive connection included) and
    /// for its body; the connection is closed (headers) or answered 408 (body) after it.
    pub idle_timeout: Duration,
    /// Most connections open at once; more wait in the listen backlog until one closes.
    pub max_connections: usize,
}

/// Largest request body, as axum's default.
const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// How long open connections get to finish their request once the server stops.
const DRAIN: Duration = Duration::from_secs(2);

/// Serves `router` on `listener` until `stop` resolves, then lets open connections finish
/// their current request for up to two seconds. `security` adds TLS (the handshake bounded
/// by the idle timeout too), authentication and CORS.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: RestLimits,
    security: RestSecurity,
    stop: impl std::future::Future<Output = ()> + Send,
) {
    // The first layer added runs last: CORS answers preflights before credentials are asked
    // for, and nobody unauthenticated gets a body read.
    let mut router = router.layer(axum::middleware::from_fn_with_state(
        limits.idle_timeout,
        read_body_in_time,
    ));
    if let Some(auth) = &security.auth {
        router = router.layer(axum::middleware::from_fn_with_state(
            Arc::clone(auth),
            super::auth::authenticate,
        ));
    }
    if let Some(cors) = &security.cors {
        router = router.layer(axum::middleware::from_fn_with_state(
            Arc::new(cors.clone()),
            super::cors::cors,
        ));
    }
    let tls = security.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (closing, closed) = watch::channel(false);
    tokio::pin!(stop);
    loop {
        // A slot first, so a connection over the cap waits in the kernel's backlog instead of
        // taking a descriptor.
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot,
            () = &mut stop => break,
        };
        let Ok(slot) = slot else { break };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // EMFILE and the like: the cap is above what the process may open. Wait
                    // for descriptors to come back rather than spin.
                    tracing::warn!(error = %e, "REST API cannot accept a connection; retrying in 100 ms");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let closed = closed.clone();
        let idle_timeout = limits.idle_timeout;
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match tls {
                None => serve_connection(stream, service, idle_timeout, closed, peer).await,
                Some(acceptor) => {
                    match tokio::time::timeout(idle_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            serve_connection(stream, service, idle_timeout, closed, peer).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "REST TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(%peer, "REST TLS handshake timed out"),
                    }
                }
            }
        });
    }
    let _ = closing.send(true);
    // Connections are told to finish; give them their drain time (they hold `slots`).
    let _ = tokio::time::timeout(
        DRAIN,
        slots.acquire_many(u32::try_from(limits.max_connections).unwrap_or(u32::MAX)),
    )
    .await;
}

/// Serves one connection (plain or TLS) until it ends or the server closes.
async fn serve_connection<S>(
    stream: S,
    service: TowerToHyperService<Router>,
    idle_timeout: Duration,
    mut closed: watch::Receiver<bool>,
    peer: SocketAddr,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(idle_timeout)
        .max_buf_size(64 * 1024);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => log_end(peer, result),
        _ = closed.changed() => {
            connection.as_mut().graceful_shutdown();
            if let Ok(result) = tokio::time::timeout(DRAIN, connection).await {
                log_end(peer, result);
            }
        }
    }
}

fn log_end(peer: SocketAddr, result: hyper::Result<()>) {
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "REST connection ended");
    }
}

/// Reads a request's body within the idle timeout, so a client that sends headers and then
/// trickles (or never sends) its body is answered 408 instead of holding its connection.
async fn read_body_in_time(
    axum::extract::State(limit): axum::extract::State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match tokio::time::timeout(limit, axum::body::to_bytes(body, BODY_LIMIT)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is over {BODY_LIMIT} bytes"),
            )
            .into_response();
        }
        Err(_) => {
            return ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} ms (rest.idle.timeout.ms)",
                    limit.as_millis()
                ),
            )
            .into_response();
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The most REST connections this process can hold: `configured`, but never over half the
/// open-file limit, so the offset store, Kafka sockets and connector files keep descriptors.
pub fn connection_cap(configured: usize) -> usize {
    match open_file_limit() {
        Some(limit) if limit / 2 < configured as u64 => {
            let cap = usize::try_from(limit / 2).unwrap_or(configured).max(1);
            tracing::info!(
                open_file_limit = limit,
                rest_max_connections = cap,
                "REST connections capped at half the open-file limit (raise `ulimit -n` for more)"
            );
            cap
        }
        _ => configured,
    }
}

/// The soft limit on open files, from `/proc/self/limits` (Linux).
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_file_limit_is_read_and_caps_connections() {
        let limit = open_file_limit().expect("/proc/self/limits names the open-file limit");
        assert!(limit > 0);
        assert_eq!(
            connection_cap(usize::MAX),
            usize::try_from(limit / 2).unwrap()
        );
        assert_eq!(connection_cap(1), 1);
    }
}
