//! The worker's metrics, served at `GET /metrics` in the OpenMetrics text format by
//! `prometheus-client`'s encoder.
//!
//! Names are Kafka Connect's JMX metrics as the Prometheus JMX exporter renders them
//! (`kafka.connect:type=source-task-metrics,connector=c,task=0` attribute
//! `source-record-poll-total` → `kafka_connect_source_task_metrics_source_record_poll_total
//! {connector="c",task="0"}`), so dashboards built on Kafka Connect keep working; the README
//! has the whole table. Kafka Connect's cumulative figures whose names do not end in `total`
//! (`deadletterqueue-produce-requests`, `total-record-errors`, …) stay gauges, so their names
//! stay exactly Kafka's. What Kafka Connect does not have is named `sluice_…`.
//!
//! * [`TaskStats`]: one task's figures, owned by its runner;
//! * `window`: Kafka's windowed averages, maxima and rates;
//! * `exposition`: how the live figures become metric families at each scrape.

mod exposition;
mod task;
mod window;

use std::sync::{Arc, Mutex, Weak};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use sluice_api::metrics::TaskMetrics;

use crate::state::ConnectorStatus;
pub use task::TaskStats;
pub(crate) use task::{HighWatermarks, PartitionFigures, TaskKind};

/// Connector and task start-ups (`connect-worker-metrics`).
#[derive(Debug, Default)]
struct Startups {
    connector_attempts: Counter,
    connector_successes: Counter,
    connector_failures: Counter,
    task_attempts: Counter,
    task_successes: Counter,
    task_failures: Counter,
}

/// A distributed worker's rebalances (`connect-worker-rebalance-metrics`).
#[derive(Debug, Default)]
struct Rebalances {
    /// Whether this worker ever joined a group (standalone workers have no such metrics).
    member: bool,
    rebalancing: bool,
    started: Option<std::time::Instant>,
    completed: u64,
    epoch: i64,
    last_completed: Option<std::time::Instant>,
    /// Milliseconds per rebalance.
    time: window::Windowed,
}

/// What the collector reads at a scrape.
#[derive(Debug, Default)]
struct Live {
    tasks: Mutex<Vec<Weak<TaskStats>>>,
    rebalances: Mutex<Rebalances>,
    /// The statuses the REST handler read for this scrape, and this worker's id.
    statuses: Mutex<(Vec<ConnectorStatus>, String)>,
}

/// The worker's metrics: one per worker process, shared by its tasks and its REST API.
#[derive(Debug)]
pub struct WorkerMetrics {
    registry: Registry,
    live: Arc<Live>,
    startups: Arc<Startups>,
    /// One scrape at a time: a scrape sets the statuses, then encodes.
    scrape: tokio::sync::Mutex<()>,
    /// `metrics.enabled`: whether tasks count their figures.
    enabled: bool,
}

impl Default for WorkerMetrics {
    fn default() -> WorkerMetrics {
        WorkerMetrics::new(true)
    }
}

impl WorkerMetrics {
    /// The worker's metrics; with `enabled` false tasks count nothing (`metrics.enabled`).
    pub fn new(enabled: bool) -> WorkerMetrics {
        let live = Arc::new(Live::default());
        let startups = Arc::new(Startups::default());
        let mut registry = Registry::default();
        let worker = "kafka_connect_connect_worker_metrics";
        for (name, help, counter) in [
            (
                "connector_startup_attempts",
                "Connector starts attempted on this worker",
                &startups.connector_attempts,
            ),
            (
                "connector_startup_success",
                "Connector starts that succeeded",
                &startups.connector_successes,
            ),
            (
                "connector_startup_failure",
                "Connector starts that failed",
                &startups.connector_failures,
            ),
            (
                "task_startup_attempts",
                "Task starts attempted on this worker",
                &startups.task_attempts,
            ),
            (
                "task_startup_success",
                "Task starts that succeeded",
                &startups.task_successes,
            ),
            (
                "task_startup_failure",
                "Task starts that failed",
                &startups.task_failures,
            ),
        ] {
            registry.register(format!("{worker}_{name}"), help, counter.clone());
        }
        registry.register_collector(Box::new(exposition::Collect(Arc::clone(&live))));
        WorkerMetrics {
            registry,
            live,
            startups,
            scrape: tokio::sync::Mutex::new(()),
            enabled,
        }
    }
}

impl WorkerMetrics {
    /// The figures of a task starting now; they are served while the returned value lives.
    pub(crate) fn task(
        &self,
        connector: &str,
        task: u32,
        kind: TaskKind,
        gauges: TaskMetrics,
    ) -> Arc<TaskStats> {
        let stats = Arc::new(TaskStats::new(connector, task, kind, gauges, self.enabled));
        if !self.enabled {
            return stats;
        }
        let mut tasks = self.live.tasks.lock().expect("metrics lock");
        tasks.retain(|t| t.strong_count() > 0);
        tasks.push(Arc::downgrade(&stats));
        stats
    }

    /// This distributed worker starts joining the group (a rebalance begins).
    pub(crate) fn rebalance_started(&self) {
        let mut rebalances = self.live.rebalances.lock().expect("metrics lock");
        rebalances.member = true;
        if !rebalances.rebalancing {
            rebalances.rebalancing = true;
            rebalances.started = Some(std::time::Instant::now());
        }
    }

    /// This worker joined generation `epoch` and applied its assignment.
    pub(crate) fn rebalance_completed(&self, epoch: i64) {
        let mut rebalances = self.live.rebalances.lock().expect("metrics lock");
        let now = std::time::Instant::now();
        if let Some(started) = rebalances.started.take() {
            rebalances
                .time
                .record(now.duration_since(started).as_secs_f64() * 1000.0);
        }
        rebalances.rebalancing = false;
        rebalances.completed += 1;
        rebalances.epoch = epoch;
        rebalances.last_completed = Some(now);
    }

    /// A connector instance started (`ok`) or failed to.
    pub(crate) fn connector_started(&self, ok: bool) {
        self.startups.connector_attempts.inc();
        if ok {
            self.startups.connector_successes.inc();
        } else {
            self.startups.connector_failures.inc();
        }
    }

    /// A task started (`ok`) or failed to.
    pub(crate) fn task_started(&self, ok: bool) {
        self.startups.task_attempts.inc();
        if ok {
            self.startups.task_successes.inc();
        } else {
            self.startups.task_failures.inc();
        }
    }

    /// Everything in the OpenMetrics text format; `statuses` (every connector's, as the
    /// herder reports them) give the status and count families, counted for `worker_id`.
    pub async fn encode(&self, statuses: Vec<ConnectorStatus>, worker_id: &str) -> String {
        let _one_at_a_time = self.scrape.lock().await;
        *self.live.statuses.lock().expect("metrics lock") = (statuses, worker_id.to_owned());
        let mut out = String::new();
        // Writing into a String cannot fail; a collector's error would be ours.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encoding the metrics failed");
        }
        out
    }
}

/// A task's figures for the status page and `sluice status` (`GET /ui/data`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct TaskFigures {
    /// `source` or `sink`.
    pub kind: &'static str,
    /// Records polled (sources) or read (sinks).
    pub records_in: u64,
    /// Records written on (sources) or put (sinks).
    pub records_out: u64,
    /// Records in per second over Kafka's window (two 30 s samples).
    pub rate: f64,
    /// Records skipped after a failure.
    pub skipped: u64,
    /// Dead letters written.
    pub dead_letters: u64,
    /// Records in flight (sent and not durable, or put and not flushed).
    pub active: i64,
    /// Sources: age of the oldest polled record whose offset is not committed.
    pub committed_offset_age_ms: i64,
    /// The task's own gauges (slot lag, snapshot progress), as in its REST status.
    pub gauges: serde_json::Map<String, serde_json::Value>,
}

impl WorkerMetrics {
    /// The figures of every task running on this worker, by connector and task id.
    pub fn figures(&self) -> std::collections::BTreeMap<(String, u32), TaskFigures> {
        let tasks = self.live.tasks.lock().expect("metrics lock");
        tasks
            .iter()
            .filter_map(Weak::upgrade)
            .map(|task| {
                let s = task.snapshot();
                let figures = TaskFigures {
                    kind: match task.kind {
                        TaskKind::Source => "source",
                        TaskKind::Sink => "sink",
                    },
                    records_in: s.taken_total,
                    records_out: s.passed_total,
                    rate: s.taken.rate,
                    skipped: s.records_skipped,
                    dead_letters: s.dead_letter_requests - s.dead_letter_failures,
                    active: s.active,
                    committed_offset_age_ms: s.committed_offset_age_ms,
                    gauges: task.gauges.to_json(),
                };
                ((task.connector.clone(), task.task), figures)
            })
            .collect()
    }
}

/// The content type of [`WorkerMetrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
