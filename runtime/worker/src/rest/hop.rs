//! Kafka Connect's `?forward=` flag on requests one worker forwards to another.
//!
//! A client's request carries no flag. A worker that cannot carry it out forwards it to the
//! leader with `forward=true`; a worker that gets `forward=true` and is not the leader (the
//! leadership moved meanwhile) forwards once more with `forward=false`; a worker that gets
//! `forward=false` and is not the leader forwards no further. So a request makes at most two
//! hops whatever the workers believe about each other. Where Kafka Connect answers that last
//! case 409, sluice answers 503 to the forwarding worker, which waits for the group to settle
//! and tries again within its request timeout, so the client never sees a rebalance.
//!
//! The flag is read by a middleware into a task-local for the handler (and, through
//! [`carry`], the operation it spawns), where the distributed herder reads it.

use std::future::Future;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

tokio::task_local! {
    static HOP: Hop;
    /// The client's `Authorization` header, sent along when the request is forwarded.
    static AUTHORIZATION: Option<String>;
}

/// Where a request is on its way to the worker that carries it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hop {
    /// From a client (no `forward` flag): may be forwarded twice.
    Client,
    /// Forwarded once (`forward=true`): may be forwarded once more.
    Forwarded,
    /// Forwarded as far as it may go (`forward=false`).
    Last,
}

impl Hop {
    /// The flag to put on the request when forwarding it from here; `None` when it may not
    /// be forwarded again.
    pub(crate) fn onward_flag(self) -> Option<bool> {
        match self {
            Hop::Client => Some(true),
            Hop::Forwarded => Some(false),
            Hop::Last => None,
        }
    }
}

/// The hop of the request being handled (a client's when outside any request).
pub(crate) fn current() -> Hop {
    HOP.try_with(|hop| *hop).unwrap_or(Hop::Client)
}

/// Runs `operation` (spawned apart from its request) with the request's hop and
/// credentials.
pub(crate) fn carry<F: Future>(operation: F) -> impl Future<Output = F::Output> {
    AUTHORIZATION.scope(authorization(), HOP.scope(current(), operation))
}

/// The `Authorization` header of the request being handled, if any.
pub(crate) fn authorization() -> Option<String> {
    AUTHORIZATION.try_with(Clone::clone).ok().flatten()
}

/// Reads `forward` from the query (anything but `true`/`false` counts as absent, as Kafka
/// Connect's `Boolean` parameter treats it as null) and handles the request with it.
pub(crate) async fn read_flag(request: Request, next: Next) -> Response {
    let hop = request
        .uri()
        .query()
        .into_iter()
        .flat_map(|query| query.split('&'))
        .find_map(|pair| match pair {
            "forward=true" => Some(Hop::Forwarded),
            "forward=false" => Some(Hop::Last),
            _ => None,
        })
        .unwrap_or(Hop::Client);
    let authorization = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    AUTHORIZATION
        .scope(authorization, HOP.scope(hop, next.run(request)))
        .await
}

/// `path` with `forward=<flag>` added to its query.
pub(crate) fn with_flag(path: &str, flag: bool) -> String {
    let separator = if path.contains('?') { '&' } else { '?' };
    format!("{path}{separator}forward={flag}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_forwarded_at_most_twice() {
        assert_eq!(Hop::Client.onward_flag(), Some(true));
        assert_eq!(Hop::Forwarded.onward_flag(), Some(false));
        assert_eq!(Hop::Last.onward_flag(), None);
        assert_eq!(with_flag("/connectors", true), "/connectors?forward=true");
        assert_eq!(
            with_flag("/connectors/a?cleanup=true", false),
            "/connectors/a?cleanup=true&forward=false"
        );
    }

    #[tokio::test]
    async fn the_hop_follows_the_operation_into_its_own_task() {
        let seen = HOP
            .scope(Hop::Last, async {
                tokio::spawn(carry(async { current() })).await
            })
            .await
            .unwrap();
        assert_eq!(seen, Hop::Last);
        assert_eq!(current(), Hop::Client);
    }
}
