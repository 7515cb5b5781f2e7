//! What the REST side and the membership loop of one distributed worker share: the worker, the
//! config and status topics, the group as this worker last saw it, and the calls to the
//! leader.
//!
//! # Contract
//! * Writes to the config topic are made by the leader, one at a time (`writes`); a follower
//!   forwards them ([`Cluster::leader_or_forward`]). Pause and resume are written by any worker.
//! * A request that needs the leader goes to the leader of the last generation, even while
//!   the group rebalances, instead of answering 409; before the first generation it waits, up
//!   to [`REST_WAIT`], and a leader that cannot be reached is waited for again within the same
//!   bound.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as Json;
use sluice_api::{Error, ErrorKind, Result};
use tokio::sync::{Mutex, Notify, watch};

use super::assignor::Work;
use super::group::GroupBrokers;
use super::signature::SessionKey;
use crate::config::distributed::DistributedConfig;
use crate::config::rest_security::{RestSecurity, Scheme};
use crate::storage::config_topic::{ConfigSnapshot, KafkaConfigStore};
use crate::storage::status_topic::KafkaStatusStore;
use crate::worker::Worker;

/// How long a worker's REST API may take to answer a liveness probe. A busy worker (a loaded
/// machine, a snapshot in flight) can take over a second; counting it as gone would move its
/// work to others while it still runs it.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// How long a REST request waits for a stable group (and a reachable leader) before it is
/// answered 503; Kafka Connect's REST request timeout is 90 s.
pub(crate) const REST_WAIT: Duration = Duration::from_secs(90);

/// The group as this worker last saw it.
#[derive(Debug, Clone, Default)]
pub(crate) struct View {
    /// A generation is formed and its assignment applied; false while rebalancing.
    pub stable: bool,
    /// The leader's REST URL (`http://host:port`).
    pub leader_url: Option<String>,
    pub is_leader: bool,
    pub generation: i32,
    /// What this worker runs.
    pub owned: std::collections::BTreeSet<Work>,
    /// The members' REST URLs in the last generation this worker led (empty when following).
    pub member_urls: std::collections::BTreeSet<String>,
}

/// One distributed worker's shared parts.
pub(crate) struct Cluster {
    pub worker: Arc<Worker>,
    pub configs: KafkaConfigStore,
    pub statuses: KafkaStatusStore,
    pub settings: Arc<DistributedConfig>,
    /// This worker's REST URL, as other workers reach it.
    pub url: String,
    /// Where the group coordinator is looked up, and with what security.
    pub group_brokers: GroupBrokers,
    view: std::sync::Mutex<View>,
    /// Bumped whenever the view changes, to wake requests waiting for a stable group.
    view_changed: watch::Sender<u64>,
    /// Wakes the membership loop: the leader wrote a change that may need a rebalance.
    pub config_written: Notify,
    /// The leader's config writes, one at a time.
    pub writes: Mutex<()>,
    http: reqwest::Client,
    /// The scheme workers' REST URLs have.
    scheme: Scheme,
}

/// The client for other workers' REST APIs: it trusts the truststore's CAs (their https
/// listeners) and shows this worker's certificate when they ask for one.
fn rest_client(security: &RestSecurity) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder();
    let trust = &security.client_trust;
    if let Some(pem) = &trust.ca_pem {
        for certificate in reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| Error::config(format!("listeners.https.ssl.truststore.location: {e}")))?
        {
            builder = builder.add_root_certificate(certificate);
        }
    }
    if let Some(pem) = &trust.identity_pem {
        builder = builder.identity(reqwest::Identity::from_pem(pem).map_err(|e| {
            Error::config(format!(
                "listeners.https.ssl.certificate.location / key.location as a client identity: {e}"
            ))
        })?);
    }
    builder
        .build()
        .map_err(|e| Error::config(format!("the client for other workers' REST APIs: {e}")))
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("url", &self.url)
            .field("view", &self.view())
            .finish_non_exhaustive()
    }
}

/// What a request that needs the leader should do.
pub(crate) enum Route {
    /// This worker leads: carry it out here.
    Here,
    /// The leader carried it out and answered with this status.
    Forwarded(u16),
}

impl Cluster {
    pub(crate) fn new(
        worker: Arc<Worker>,
        configs: KafkaConfigStore,
        statuses: KafkaStatusStore,
        settings: Arc<DistributedConfig>,
        url: String,
        group_brokers: GroupBrokers,
        security: &RestSecurity,
    ) -> Result<Cluster> {
        Ok(Cluster {
            worker,
            configs,
            statuses,
            settings,
            url,
            group_brokers,
            view: std::sync::Mutex::new(View::default()),
            view_changed: watch::channel(0).0,
            config_written: Notify::new(),
            writes: Mutex::new(()),
            http: rest_client(security)?,
            scheme: security.advertised,
        })
    }

    /// The REST URL of the worker with id `worker_id` (`host:port`): every worker of a group
    /// is reached with the scheme this one advertises.
    pub(crate) fn worker_url(&self, worker_id: &str) -> String {
        format!("{}://{worker_id}", self.scheme.as_str())
    }

    pub(crate) fn view(&self) -> View {
        self.view.lock().expect("view lock").clone()
    }

    /// Changes the view and wakes whoever waits on it.
    pub(crate) fn update_view(&self, change: impl FnOnce(&mut View)) {
        change(&mut self.view.lock().expect("view lock"));
        self.view_changed.send_modify(|n| *n += 1);
    }

    /// The config topic read to its end.
    pub(crate) async fn snapshot(&self) -> Result<ConfigSnapshot> {
        self.configs.snapshot().await
    }

    /// The current session key, from the config topic.
    pub(crate) fn session_key(snapshot: &ConfigSnapshot) -> Option<SessionKey> {
        snapshot
            .session_key
            .as_ref()
            .and_then(SessionKey::from_record)
    }

    /// The leader's URL (`None`: this worker leads), waiting until one is known. During a
    /// rebalance the last generation's leader is used: its writes go to the config topic in
    /// order like any other, and waiting out every rebalance (which on Tansu can take many
    /// seconds) would hold requests for nothing.
    pub(crate) async fn stable_leader(
        &self,
        deadline: tokio::time::Instant,
    ) -> Result<Option<String>> {
        let mut changed = self.view_changed.subscribe();
        loop {
            let view = self.view();
            if let Some(leader) = view.leader_url {
                return Ok((!view.is_leader).then_some(leader));
            }
            if tokio::time::timeout_at(deadline, changed.changed())
                .await
                .is_err()
            {
                return Err(Error::retriable(format!(
                    "this worker has not joined its group within {REST_WAIT:?} (the broker may \
                     be unreachable); try again"
                )));
            }
        }
    }

    /// For a request only the leader may carry out: [`Route::Here`] when this worker leads,
    /// otherwise the request is sent to the leader (`method`, `path` with its query, `body`)
    /// and its answer returned; the leader's refusal comes back as an error of the same
    /// status and message. Waits through rebalances and a leader that is unreachable. The
    /// request's `?forward=` hop ([`crate::rest::hop`]) bounds forwarding to two hops.
    pub(crate) async fn leader_or_forward(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Json>,
    ) -> Result<Route> {
        let deadline = tokio::time::Instant::now() + REST_WAIT;
        let hop = crate::rest::hop::current();
        loop {
            let Some(leader) = self.stable_leader(deadline).await? else {
                return Ok(Route::Here);
            };
            let Some(flag) = hop.onward_flag() else {
                return Err(Error::retriable(format!(
                    "this worker is not the leader (the leader is {leader}) and the request was \
                     already forwarded as far as it may go (forward=false); the worker that \
                     forwarded it retries once the group has settled"
                )));
            };
            let onward = crate::rest::hop::with_flag(path, flag);
            match self.call(&leader, method.clone(), &onward, body).await {
                Err(e)
                    if e.kind() == ErrorKind::Retriable
                        && tokio::time::Instant::now() < deadline =>
                {
                    tracing::info!(leader = %leader, error = %e, "the leader did not answer; waiting for the group");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                other => return other.map(|(status, _)| Route::Forwarded(status)),
            }
        }
    }

    /// Whether a worker's REST API answers at `base` within [`ANSWER_WITHIN`] (any HTTP answer:
    /// with authentication on, a 401 is an answer too). A dead worker's port refuses at once,
    /// so the wait only costs time for a worker that is alive but slow or cut off.
    pub(crate) async fn answers(&self, base: &str) -> bool {
        self.http
            .get(format!("{}/", base.trim_end_matches('/')))
            .timeout(ANSWER_WITHIN)
            .send()
            .await
            .is_ok_and(|r| !r.status().is_server_error())
    }

    /// Sends a REST request to another worker: the status and JSON body of a 2xx answer
    /// (`Null` when empty); a non-2xx answer becomes an error with its status's kind and its message; an
    /// unreachable worker a retriable error.
    pub(crate) async fn call(
        &self,
        base: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Json>,
    ) -> Result<(u16, Json)> {
        self.send(
            base,
            method,
            path,
            body.map(|b| b.to_string().into_bytes()),
            &[],
        )
        .await
    }

    /// [`Cluster::call`] with a raw body and extra headers.
    pub(crate) async fn send(
        &self,
        base: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, String)],
    ) -> Result<(u16, Json)> {
        let url = format!("{}{path}", base.trim_end_matches('/'));
        let mut request = self
            .http
            .request(method, &url)
            .timeout(REST_WAIT + Duration::from_secs(5));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        // The client's own credentials go along (Kafka Connect forwards them the same way).
        if let Some(authorization) = crate::rest::hop::authorization() {
            request = request.header("authorization", authorization);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Error::retriable(format!("worker at {base} unreachable: {e}")))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Error::retriable(format!("reading the answer of {url}: {e}")))?;
        let json: Json = if bytes.is_empty() {
            Json::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Json::Null)
        };
        if status.is_success() {
            return Ok((status.as_u16(), json));
        }
        let message = json
            .get("message")
            .and_then(Json::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{url} answered {status}"));
        let kind = match status.as_u16() {
            404 => ErrorKind::NotFound,
            409 => ErrorKind::Conflict,
            400 => ErrorKind::Config,
            503 => ErrorKind::Retriable,
            _ => ErrorKind::Fatal,
        };
        Err(Error::new(kind, message))
    }
}
