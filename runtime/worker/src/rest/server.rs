//! Starting and stopping the REST server of a worker process, the same for every mode.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sluice_api::{Error, Result};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{RestLimits, connection_cap, router, serve};
use crate::config::rest_security::RestSecurity;
use crate::herder::Herder;

/// Binds the REST listener; an error names the address and the fix.
pub(crate) async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        Error::config(format!(
            "cannot listen on {addr} for the REST API: {e}; free the port or set e.g. \
             `listeners=http://127.0.0.1:8084` (or SLUICE__LISTENERS)"
        ))
    })?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::io("the REST listener's address", e))?;
    Ok((listener, bound))
}

/// A running REST server.
#[derive(Debug)]
pub(crate) struct RestServer {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl RestServer {
    /// Serves `herder` on `listener` within `limits` (connections capped by the open-file
    /// limit, see [`connection_cap`]).
    pub(crate) fn spawn(
        listener: TcpListener,
        herder: Arc<dyn Herder>,
        limits: RestLimits,
        security: RestSecurity,
    ) -> RestServer {
        let (stop, stopped) = oneshot::channel::<()>();
        let limits = RestLimits {
            max_connections: connection_cap(limits.max_connections),
            ..limits
        };
        let task = tokio::spawn(serve(listener, router(herder), limits, security, async {
            let _ = stopped.await;
        }));
        RestServer { stop, task }
    }

    /// Stops accepting and waits (up to 3 s) for open requests.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(3), self.task).await;
    }

    /// Stops at once, as a killed process would.
    #[cfg(test)]
    pub(crate) fn abort(self) {
        self.task.abort();
    }
}
