//! A distributed worker process assembled from Kafka Connect's `connect-distributed.properties`:
//! the internal topics, the [`Worker`], the membership loop and the REST API.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_api::{Error, Result};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::broker_security::BrokerSecurity;
use super::cluster::Cluster;
use super::group::GroupBrokers;
use super::herder::DistributedHerder;
use super::member;
use crate::config::distributed::DistributedConfig;
use crate::config::{file, int};
use crate::herder::Herder;
use crate::pipeline::direct::DirectBus;
use crate::pipeline::kafka::KafkaSettings;
use crate::registry::Registry;
use crate::rest::RestServer;
use crate::storage::config_topic::KafkaConfigStore;
use crate::storage::offsets_topic::KafkaOffsetStore;
use crate::storage::status_topic::KafkaStatusStore;
use crate::worker::{Worker, WorkerContext};

/// A running distributed worker.
#[derive(Debug)]
pub struct DistributedProcess {
    /// Looked into by the in-process tests (`view`, `crash`).
    #[cfg_attr(not(test), allow(dead_code))]
    cluster: Arc<Cluster>,
    stop_member: watch::Sender<bool>,
    member: JoinHandle<()>,
    rest: RestServer,
    addr: std::net::SocketAddr,
    shutdown_timeout: Duration,
}

/// Prefixes an error with the internal topic it concerns; a timeout also names the brokers
/// that did not answer.
fn about<'a>(topic: &'a str, key: &'a str, brokers: &'a [String]) -> impl Fn(Error) -> Error + 'a {
    move |e| {
        // The client's own reason, when it is not a plain connection failure (a refused SASL
        // login, a failed TLS handshake), says more than the hint.
        let explained = e.message().contains("the Kafka client reports")
            && !e.message().contains("BrokerTransportFailure");
        let hint = if !explained
            && (e.message().contains("Timed out") || e.message().contains("TimedOut"))
        {
            format!(
                " (no answer from bootstrap.servers={}: check the broker runs and is reachable \
                 from this host)",
                brokers.join(",")
            )
        } else {
            String::new()
        };
        Error::new(e.kind(), format!("{key} {topic}: {}{hint}", e.message()))
    }
}

impl DistributedProcess {
    /// Starts a distributed worker from its config file, running the plugins of `registry`.
    pub async fn start(worker_path: &Path, registry: Registry) -> Result<DistributedProcess> {
        let settings = DistributedConfig::parse(file::read_worker_props(worker_path)?)
            .map_err(|e| Error::config(format!("{}: {}", worker_path.display(), e.message())))?;
        DistributedProcess::start_with(settings, registry, None)
            .await
            .map_err(|e| {
                Error::new(
                    e.kind(),
                    format!("{}: {}", worker_path.display(), e.message()),
                )
            })
    }

    /// Starts a distributed worker from parsed settings. `group_bootstrap` overrides where the
    /// group coordinator is looked up (tests: an in-test coordinator with Apache Kafka's group
    /// semantics, while the internal topics stay on the broker).
    pub(crate) async fn start_with(
        settings: DistributedConfig,
        registry: Registry,
        group_bootstrap: Option<Vec<String>>,
    ) -> Result<DistributedProcess> {
        let started = Instant::now();
        for line in &settings.no_effect {
            tracing::warn!("{line}");
        }
        let worker = &settings.worker;
        if worker.is_embedded() {
            return Err(Error::config(
                "`bootstrap.servers` is required in distributed mode: the worker group is \
                 coordinated by Kafka and keeps configs, offsets and statuses in its topics",
            ));
        }
        let props = &worker.props;
        let kafka = Arc::new(KafkaSettings::from_worker(
            props,
            &worker.bootstrap_servers,
        )?);
        // The group's own client (Kafka's group APIs, which librdkafka cannot run for a
        // `connect` group) is secured by the settings every librdkafka client gets.
        let group_security = BrokerSecurity::from_client_settings(kafka.client_security())?;
        let configs = KafkaConfigStore::open(
            Arc::clone(&kafka),
            &settings.config_topic,
            int(props, "config.storage.replication.factor", -1),
        )
        .await
        .map_err(about(
            &settings.config_topic,
            "config.storage.topic",
            &worker.bootstrap_servers,
        ))?;
        let offsets = KafkaOffsetStore::open(
            Arc::clone(&kafka),
            &settings.offset_topic,
            int(props, "offset.storage.partitions", 25),
            int(props, "offset.storage.replication.factor", -1),
        )
        .await
        .map_err(about(
            &settings.offset_topic,
            "offset.storage.topic",
            &worker.bootstrap_servers,
        ))?;
        let (listener, addr) = crate::rest::bind(worker.rest_addr).await?;
        // `listeners` on port 0 (tests): other workers must reach the port actually bound.
        let worker_id = match worker.worker_id.strip_suffix(":0") {
            Some(host) => format!("{host}:{}", addr.port()),
            None => worker.worker_id.clone(),
        };
        let statuses = KafkaStatusStore::open(
            Arc::clone(&kafka),
            &settings.status_topic,
            int(props, "status.storage.partitions", 5),
            int(props, "status.storage.replication.factor", -1),
            &worker_id,
        )
        .await
        .map_err(about(
            &settings.status_topic,
            "status.storage.topic",
            &worker.bootstrap_servers,
        ))?;
        let ctx = Arc::new(WorkerContext {
            worker_id: worker_id.clone(),
            registry,
            offsets: Arc::new(offsets),
            kafka: Some(kafka),
            bus: Arc::new(DirectBus::new(
                worker.unrouted,
                worker.buffer_batches,
                worker.buffer_bytes,
            )),
            flush_interval: worker.flush_interval,
            shutdown_timeout: worker.shutdown_timeout,
            metrics: Arc::new(crate::metrics::WorkerMetrics::new(worker.metrics_enabled)),
            topics: Arc::new(crate::storage::topics::ActiveTopics::new(
                worker.topic_tracking.0,
                worker.topic_tracking.1,
            )),
            providers: Arc::clone(&worker.providers),
        });
        let url = format!("{}://{worker_id}", worker.rest_security.advertised.as_str());
        let rest_security = worker.rest_security.clone();
        let shutdown_timeout = worker.shutdown_timeout;
        let rest_limits = worker.rest_limits;
        let group_id = settings.group_id.clone();
        let group_bootstrap = group_bootstrap.unwrap_or_else(|| worker.bootstrap_servers.clone());
        let worker_runs = Arc::new(Worker::new(ctx));
        crate::worker::watch_providers(&worker_runs);
        let cluster = Arc::new(Cluster::new(
            worker_runs,
            configs,
            statuses,
            Arc::new(settings),
            url.clone(),
            GroupBrokers {
                bootstrap: group_bootstrap,
                security: group_security,
            },
            &rest_security,
        )?);
        // The topics this worker's tasks use go to the status topic, where the whole group
        // reads them (KIP-558).
        let (discoveries, mut discovered) = tokio::sync::mpsc::unbounded_channel();
        cluster.worker.topics().publish_to(discoveries);
        let writer = Arc::downgrade(&cluster);
        tokio::spawn(async move {
            while let Some(discovery) = discovered.recv().await {
                let Some(cluster) = writer.upgrade() else {
                    return;
                };
                if let Err(e) = cluster.statuses.put_topic(&discovery).await {
                    tracing::warn!(connector = %discovery.connector, topic = %discovery.topic, error = %e, "recording an active topic in the status topic failed");
                }
            }
        });
        let herder: Arc<dyn Herder> = Arc::new(DistributedHerder::new(Arc::clone(&cluster)));
        let rest = RestServer::spawn(listener, herder, rest_limits, rest_security);
        let (stop_member, stopped) = watch::channel(false);
        let span = tracing::info_span!("worker", url = %url);
        let member = tokio::spawn(tracing::Instrument::instrument(
            member::run(Arc::clone(&cluster), stopped),
            span,
        ));
        tracing::info!(addr = %addr, "REST API listening");
        tracing::info!(
            addr = %addr,
            url,
            group = group_id,
            startup_ms = started.elapsed().as_millis() as u64,
            "sluice distributed worker started; joining the group"
        );
        Ok(DistributedProcess {
            cluster,
            stop_member,
            member,
            rest,
            addr,
            shutdown_timeout,
        })
    }

    /// The group as this worker sees it.
    #[cfg(test)]
    pub(crate) fn view(&self) -> super::cluster::View {
        self.cluster.view()
    }

    /// Dies as kill -9 would, as far as the group can tell: no LeaveGroup, no more heartbeats,
    /// the REST API gone; its tasks are stopped (in process they cannot just vanish).
    #[cfg(test)]
    pub(crate) async fn crash(self) {
        self.member.abort();
        self.rest.abort();
        self.cluster.worker.shutdown().await;
    }

    /// Where the REST API listens.
    pub fn rest_addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Stops the work held here (each task flushing and committing within
    /// `task.shutdown.graceful.timeout.ms`), leaves the group so the others take it over at
    /// once, then stops the REST API.
    pub async fn stop(self) {
        tracing::info!("shutting down: stopping work, committing offsets, leaving the group");
        let _ = self.stop_member.send(true);
        let grace = self.shutdown_timeout * 2 + Duration::from_secs(5);
        if tokio::time::timeout(grace, self.member).await.is_err() {
            tracing::warn!("shutdown took longer than {grace:?}; exiting");
        }
        self.rest.stop().await;
        tracing::info!("stopped");
    }
}
