//! A worker process assembled from its config file: settings, offset store, transport,
//! [`Worker`], herder and REST API. The binary only parses its arguments and calls
//! [`StandaloneProcess::start`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_api::connector::ConnectorKind;
use sluice_api::{Error, Result};

use crate::config::connector;
use crate::config::file::{self, ConnectorSpec};
use crate::config::int;
use crate::config::worker::WorkerConfig;
use crate::herder::standalone::StandaloneHerder;
use crate::pipeline::direct::DirectBus;
use crate::pipeline::kafka::KafkaSettings;
use crate::registry::Registry;
use crate::storage::offsets::{FileOffsetStore, OffsetStore};
use crate::storage::offsets_topic::KafkaOffsetStore;
use crate::worker::{Worker, WorkerContext};

/// A running standalone worker: its connectors, its REST API.
#[derive(Debug)]
pub struct StandaloneProcess {
    herder: Arc<StandaloneHerder>,
    shutdown_timeout: Duration,
    rest: crate::rest::RestServer,
    addr: std::net::SocketAddr,
}

/// Reads and checks every connector config up front, so a bad file stops the start before
/// anything runs.
fn load_connectors(
    registry: &Registry,
    paths: &[PathBuf],
) -> Result<Vec<(ConnectorSpec, ConnectorKind)>> {
    let mut specs: Vec<(ConnectorSpec, ConnectorKind)> = Vec::new();
    for path in paths {
        let spec = file::read_connector(path)?;
        let plugin = connector::validate(registry, &spec.config)
            .into_result()
            .map_err(|e| {
                Error::config(format!(
                    "{}: connector `{}`: {}",
                    path.display(),
                    spec.name,
                    e.message()
                ))
            })?;
        if specs.iter().any(|(s, _)| s.name == spec.name) {
            return Err(Error::config(format!(
                "{}: a connector named `{}` is already defined by an earlier file; names must be unique",
                path.display(),
                spec.name
            )));
        }
        specs.push((spec, plugin.kind()));
    }
    Ok(specs)
}

/// The offset store, and where it is for the log: as in Kafka Connect standalone, the file
/// unless `offset.storage.topic` is set and Kafka is configured.
async fn open_offset_store(
    worker_path: &Path,
    worker: &WorkerConfig,
    kafka: Option<&Arc<KafkaSettings>>,
) -> Result<(Arc<dyn OffsetStore>, String)> {
    let topic = worker
        .props
        .get("offset.storage.topic")
        .filter(|t| !t.trim().is_empty());
    if let (Some(settings), Some(topic)) = (kafka, topic) {
        let store = KafkaOffsetStore::open(
            Arc::clone(settings),
            topic,
            int(&worker.props, "offset.storage.partitions", 25),
            int(&worker.props, "offset.storage.replication.factor", -1),
        )
        .await
        .map_err(|e| Error::new(e.kind(), format!("offset topic {topic}: {}", e.message())))?;
        return Ok((Arc::new(store), format!("topic {topic}")));
    }
    let offset_file = worker.offset_file.clone().ok_or_else(|| {
        Error::config(format!(
            "{}: `offset.storage.file.filename` is required in standalone mode (it is where \
             committed source offsets are kept), e.g. offset.storage.file.filename=/var/lib/sluice/connect.offsets",
            worker_path.display()
        ))
    })?;
    let store = FileOffsetStore::open(&offset_file)?;
    Ok((Arc::new(store), offset_file.display().to_string()))
}

impl StandaloneProcess {
    /// Starts a standalone worker from its config file with the connectors of
    /// `connector_paths`, running the plugins of `registry`, and its REST API.
    pub async fn start(
        worker_path: &Path,
        connector_paths: &[PathBuf],
        registry: Registry,
    ) -> Result<StandaloneProcess> {
        let started = Instant::now();
        let worker = WorkerConfig::parse(file::read_worker_props(worker_path)?)
            .map_err(|e| Error::config(format!("{}: {}", worker_path.display(), e.message())))?;
        let kafka = match worker.is_embedded() {
            true => None,
            false => Some(Arc::new(KafkaSettings::from_worker(
                &worker.props,
                &worker.bootstrap_servers,
            )?)),
        };
        let specs = load_connectors(&registry, connector_paths)?;
        let (offsets, offsets_at) = open_offset_store(worker_path, &worker, kafka.as_ref()).await?;
        let ctx = Arc::new(WorkerContext {
            worker_id: worker.worker_id.clone(),
            registry,
            offsets,
            kafka: kafka.clone(),
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
        let worker_runs = Arc::new(Worker::new(ctx));
        crate::worker::watch_providers(&worker_runs);
        let herder = Arc::new(StandaloneHerder::new(worker_runs));
        let (listener, addr) = crate::rest::bind(worker.rest_addr).await?;
        let rest = crate::rest::RestServer::spawn(
            listener,
            herder.clone(),
            worker.rest_limits,
            worker.rest_security.clone(),
        );
        tracing::info!(
            addr = %addr,
            scheme = worker.rest_security.listener.as_str(),
            authentication = worker.rest_security.auth.is_some(),
            "REST API listening"
        );
        // Sinks first, so sources find their subscribers already there.
        for kind in [ConnectorKind::Sink, ConnectorKind::Source] {
            for (spec, _) in specs.iter().filter(|(_, k)| *k == kind) {
                herder
                    .add_connector(&spec.name, spec.config.clone())
                    .await
                    .map_err(|e| {
                        Error::new(
                            e.kind(),
                            format!("connector `{}`: {}", spec.name, e.message()),
                        )
                    })?;
            }
        }
        tracing::info!(
            connectors = specs.len(),
            startup_ms = started.elapsed().as_millis() as u64,
            offsets = %offsets_at,
            transport = if kafka.is_some() { "kafka" } else { "embedded direct pipeline" },
            "sluice standalone worker started"
        );
        Ok(StandaloneProcess {
            herder,
            shutdown_timeout: worker.shutdown_timeout,
            rest,
            addr,
        })
    }

    /// Where the REST API listens.
    pub fn rest_addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Stops the connectors (sources first, then sinks: flushing and committing, each task
    /// within `task.shutdown.graceful.timeout.ms`), then the REST API.
    pub async fn stop(self) {
        tracing::info!("shutting down: stopping sources, flushing sinks, committing offsets");
        let grace = self.shutdown_timeout * 2 + Duration::from_secs(1);
        if tokio::time::timeout(grace, self.herder.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                "shutdown took longer than {grace:?}; exiting (uncommitted records are read again on restart)"
            );
        }
        self.rest.stop().await;
        tracing::info!("stopped");
    }
}
