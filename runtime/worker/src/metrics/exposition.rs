//! How the live figures become metric families at each scrape: one family per Kafka Connect
//! attribute, one sample per task (labels `connector`, `task`), tasks in start order.

use std::collections::BTreeMap;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::Live;
use super::task::{Snapshot, TaskKind, TaskStats};
use crate::state::State;

type Labels = Vec<(&'static str, String)>;

/// A family's value for one task, if the task belongs to it.
enum Sample {
    Counter(u64),
    Gauge(f64),
}

/// One family: its name, help, which tasks it covers and what it reads.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: Option<TaskKind>,
    read: fn(&Snapshot) -> Sample,
}

const SOURCE: &str = "kafka_connect_source_task_metrics";
const SINK: &str = "kafka_connect_sink_task_metrics";
const TASK: &str = "kafka_connect_connector_task_metrics";
const ERRORS: &str = "kafka_connect_task_error_metrics";

/// Every per-task family, Kafka Connect's attribute after the group's prefix.
fn families() -> Vec<(&'static str, Family)> {
    use Sample::{Counter, Gauge};
    let source = Some(TaskKind::Source);
    let sink = Some(TaskKind::Sink);
    vec![
        (
            SOURCE,
            Family {
                name: "source_record_poll",
                help: "Records polled from the source",
                kind: source,
                read: |s| Counter(s.taken_total),
            },
        ),
        (
            SOURCE,
            Family {
                name: "source_record_poll_rate",
                help: "Records polled per second",
                kind: source,
                read: |s| Gauge(s.taken.rate),
            },
        ),
        (
            SOURCE,
            Family {
                name: "source_record_write",
                help: "Records written on after the transforms",
                kind: source,
                read: |s| Counter(s.passed_total),
            },
        ),
        (
            SOURCE,
            Family {
                name: "source_record_write_rate",
                help: "Records written per second",
                kind: source,
                read: |s| Gauge(s.passed.rate),
            },
        ),
        (
            SOURCE,
            Family {
                name: "poll_batch_avg_time_ms",
                help: "Mean milliseconds per poll that returned records",
                kind: source,
                read: |s| Gauge(s.batch_time.avg),
            },
        ),
        (
            SOURCE,
            Family {
                name: "poll_batch_max_time_ms",
                help: "Longest poll that returned records, in milliseconds",
                kind: source,
                read: |s| Gauge(s.batch_time.max),
            },
        ),
        (
            SOURCE,
            Family {
                name: "source_record_active_count",
                help: "Records written and not yet durable downstream",
                kind: source,
                read: |s| Gauge(s.active as f64),
            },
        ),
        (
            SINK,
            Family {
                name: "sink_record_read",
                help: "Records read from the input",
                kind: sink,
                read: |s| Counter(s.taken_total),
            },
        ),
        (
            SINK,
            Family {
                name: "sink_record_read_rate",
                help: "Records read per second",
                kind: sink,
                read: |s| Gauge(s.taken.rate),
            },
        ),
        (
            SINK,
            Family {
                name: "sink_record_send",
                help: "Records put into the sink after the transforms",
                kind: sink,
                read: |s| Counter(s.passed_total),
            },
        ),
        (
            SINK,
            Family {
                name: "sink_record_send_rate",
                help: "Records put per second",
                kind: sink,
                read: |s| Gauge(s.passed.rate),
            },
        ),
        (
            SINK,
            Family {
                name: "put_batch_avg_time_ms",
                help: "Mean milliseconds per put",
                kind: sink,
                read: |s| Gauge(s.batch_time.avg),
            },
        ),
        (
            SINK,
            Family {
                name: "put_batch_max_time_ms",
                help: "Longest put, in milliseconds",
                kind: sink,
                read: |s| Gauge(s.batch_time.max),
            },
        ),
        (
            SINK,
            Family {
                name: "offset_commit_completion",
                help: "Flushes that made records durable and committed them",
                kind: sink,
                read: |s| Counter(s.commit_completions),
            },
        ),
        (
            SINK,
            Family {
                name: "offset_commit_skip",
                help: "Flushes skipped because nothing was taken since the last",
                kind: sink,
                read: |s| Counter(s.commit_skips),
            },
        ),
        (
            SINK,
            Family {
                name: "sink_record_active_count",
                help: "Records put and not yet flushed",
                kind: sink,
                read: |s| Gauge(s.active as f64),
            },
        ),
        (
            TASK,
            Family {
                name: "offset_commit_avg_time_ms",
                help: "Mean milliseconds per offset commit (sources) or flush (sinks)",
                kind: None,
                read: |s| Gauge(s.commit_time.avg),
            },
        ),
        (
            TASK,
            Family {
                name: "offset_commit_max_time_ms",
                help: "Longest offset commit or flush, in milliseconds",
                kind: None,
                read: |s| Gauge(s.commit_time.max),
            },
        ),
        (
            TASK,
            Family {
                name: "batch_size_avg",
                help: "Mean records per poll (sources) or take (sinks)",
                kind: None,
                read: |s| Gauge(s.batch_size.avg),
            },
        ),
        (
            TASK,
            Family {
                name: "batch_size_max",
                help: "Most records in one poll or take",
                kind: None,
                read: |s| Gauge(s.batch_size.max),
            },
        ),
        (
            TASK,
            Family {
                name: "running_ratio",
                help: "Share of the task's life spent running",
                kind: None,
                read: |s| Gauge(s.running_ratio),
            },
        ),
        (
            TASK,
            Family {
                name: "pause_ratio",
                help: "Share of the task's life spent paused",
                kind: None,
                read: |s| Gauge(s.pause_ratio),
            },
        ),
        (
            ERRORS,
            Family {
                name: "total_record_errors",
                help: "Records that failed a stage (conversion, transform, producer)",
                kind: None,
                read: |s| Gauge(s.record_errors as f64),
            },
        ),
        (
            ERRORS,
            Family {
                name: "total_record_failures",
                help: "Records whose failure failed the task (errors.tolerance=none)",
                kind: None,
                read: |s| Gauge(s.record_failures as f64),
            },
        ),
        (
            ERRORS,
            Family {
                name: "total_records_skipped",
                help: "Records skipped after a failure (errors.tolerance=all)",
                kind: None,
                read: |s| Gauge(s.records_skipped as f64),
            },
        ),
        (
            ERRORS,
            Family {
                name: "total_errors_logged",
                help: "Skipped records logged (errors.log.enable)",
                kind: None,
                read: |s| Gauge(s.errors_logged as f64),
            },
        ),
        (
            ERRORS,
            Family {
                name: "deadletterqueue_produce_requests",
                help: "Dead letters written or attempted",
                kind: None,
                read: |s| Gauge(s.dead_letter_requests as f64),
            },
        ),
        (
            ERRORS,
            Family {
                name: "deadletterqueue_produce_failures",
                help: "Dead letters that could not be written",
                kind: None,
                read: |s| Gauge(s.dead_letter_failures as f64),
            },
        ),
        (
            ERRORS,
            Family {
                name: "total_retries",
                help: "Retries of retriable failures (errors.retry.*)",
                kind: None,
                read: |s| Gauge(s.retries as f64),
            },
        ),
        (
            ERRORS,
            Family {
                name: "last_error_timestamp",
                help: "When a record last failed, in ms since the epoch (0: never)",
                kind: None,
                read: |s| Gauge(s.last_error_ms as f64),
            },
        ),
        (
            "sluice_source_task",
            Family {
                name: "committed_offset_age_ms",
                help: "Milliseconds since the oldest record polled and not yet committed was polled (0: all committed)",
                kind: source,
                read: |s| Gauge(s.committed_offset_age_ms as f64),
            },
        ),
    ]
}

fn labels(task: &TaskStats) -> Labels {
    vec![
        ("connector", task.connector.clone()),
        ("task", task.task.to_string()),
    ]
}

fn state_name(state: State) -> String {
    format!("{state:?}").to_ascii_lowercase()
}

/// The collector registered in the worker's registry.
#[derive(Debug)]
pub(super) struct Collect(pub(super) Arc<Live>);

impl Collector for Collect {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let tasks: Vec<Arc<TaskStats>> = self
            .0
            .tasks
            .lock()
            .expect("metrics lock")
            .iter()
            .filter_map(|t| t.upgrade())
            .collect();
        let snapshots: Vec<Snapshot> = tasks.iter().map(|t| t.snapshot()).collect();
        for (group, family) in families() {
            let members: Vec<usize> = (0..tasks.len())
                .filter(|&i| family.kind.is_none_or(|kind| tasks[i].kind == kind))
                .collect();
            if members.is_empty() {
                continue;
            }
            let name = format!("{group}_{}", family.name);
            let metric_type = match (family.read)(&snapshots[members[0]]) {
                Sample::Counter(_) => MetricType::Counter,
                Sample::Gauge(_) => MetricType::Gauge,
            };
            let mut metric = encoder.encode_descriptor(&name, family.help, None, metric_type)?;
            for i in members {
                let labels = labels(&tasks[i]);
                let sample = metric.encode_family(&labels)?;
                match (family.read)(&snapshots[i]) {
                    Sample::Counter(v) => ConstCounter::new(v).encode(sample)?,
                    Sample::Gauge(v) => ConstGauge::new(v).encode(sample)?,
                }
            }
        }
        let sinks: Vec<&Arc<TaskStats>> =
            tasks.iter().filter(|t| t.kind == TaskKind::Sink).collect();
        encode_sink_partitions(&mut encoder, &sinks)?;
        if !sinks.is_empty() {
            let mut metric = encoder.encode_descriptor(
                "sluice_sink_task_end_to_end_latency_ms",
                "Per flushed put batch: milliseconds from its first record's timestamp (the source's event time, or its poll) until the sink flushed it",
                None,
                MetricType::Histogram,
            )?;
            for task in sinks {
                let labels = labels(task);
                task.latency.encode(metric.encode_family(&labels)?)?;
            }
        }
        encode_task_gauges(&mut encoder, &tasks)?;
        self.encode_rebalances(&mut encoder)?;
        self.encode_statuses(&mut encoder)
    }
}

/// Each sink task's committed offset and lag per topic partition, labelled `topic` and
/// `partition` too: the consumer's committed offsets, and Kafka's consumer `records-lag`
/// measured from them.
fn encode_sink_partitions(
    encoder: &mut DescriptorEncoder,
    sinks: &[&Arc<TaskStats>],
) -> Result<(), std::fmt::Error> {
    let per_task: Vec<_> = sinks.iter().map(|t| (t, t.partitions())).collect();
    if per_task.iter().all(|(_, p)| p.is_empty()) {
        return Ok(());
    }
    type Read = fn(&super::PartitionFigures) -> Option<i64>;
    let families: [(&str, &str, Read); 2] = [
        (
            "sluice_sink_task_partition_committed_offset",
            "The next offset of the topic partition the sink task reads, as committed after its last flush",
            |p| Some(p.committed_offset),
        ),
        (
            "sluice_sink_task_partition_records_lag",
            "Records in the topic partition past the sink task's last committed offset, by the high watermark in the consumer's latest statistics (Kafka's consumer records-lag)",
            |p| p.records_lag,
        ),
    ];
    for (name, help, read) in families {
        let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
        for (task, partitions) in &per_task {
            for partition in partitions {
                let Some(value) = read(partition) else {
                    continue;
                };
                let mut labels = labels(task);
                labels.push(("topic", partition.topic.clone()));
                labels.push(("partition", partition.partition.to_string()));
                ConstGauge::new(value as f64).encode(metric.encode_family(&labels)?)?;
            }
        }
    }
    Ok(())
}

/// The gauges tasks publish themselves (`sluice_<name>`, e.g. `sluice_slot_lag_bytes`).
fn encode_task_gauges(
    encoder: &mut DescriptorEncoder,
    tasks: &[Arc<TaskStats>],
) -> Result<(), std::fmt::Error> {
    let mut by_name: BTreeMap<String, Vec<(Labels, f64)>> = BTreeMap::new();
    for task in tasks {
        for gauge in task.gauges.gauges() {
            let mut labels = labels(task);
            if let Some((label, value)) = gauge.label {
                // Label names are the tasks' own constants (`table`); leaked once per name.
                labels.push((intern(label), value));
            }
            by_name
                .entry(format!("sluice_{}", gauge.name))
                .or_default()
                .push((labels, gauge.value));
        }
    }
    // Debezium's connector metrics, named as the JMX exporter rules of Debezium's monitoring
    // guide name them: `debezium_metrics_<Attribute>{plugin, name (the server), context,
    // table}`, with the task's labels too.
    for task in tasks {
        for gauge in task.gauges.debezium_gauges() {
            let mut labels = labels(task);
            labels.push(("plugin", gauge.plugin));
            labels.push(("name", gauge.server));
            labels.push(("context", gauge.context));
            if let Some(table) = gauge.table {
                labels.push(("table", table));
            }
            by_name
                .entry(format!("debezium_metrics_{}", gauge.name))
                .or_default()
                .push((labels, gauge.value));
        }
    }
    for (name, samples) in by_name {
        let mut metric = encoder.encode_descriptor(&name, "", None, MetricType::Gauge)?;
        for (labels, value) in samples {
            ConstGauge::new(value).encode(metric.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

/// A label name as the `'static` string the encoder's label type wants; the few names tasks
/// use are kept once each.
fn intern(name: String) -> &'static str {
    static NAMES: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut names = NAMES.lock().expect("label names lock");
    if let Some(known) = names.iter().find(|n| **n == name) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.into_boxed_str());
    names.push(leaked);
    leaked
}

impl Collect {
    /// `connect-worker-rebalance-metrics`, once this worker is a group member.
    fn encode_rebalances(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let rebalances = self.0.rebalances.lock().expect("metrics lock");
        if !rebalances.member {
            return Ok(());
        }
        let group = "kafka_connect_connect_worker_rebalance_metrics";
        let completed = format!("{group}_completed_rebalances");
        let metric = encoder.encode_descriptor(
            &completed,
            "Rebalances this worker completed",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(rebalances.completed).encode(metric)?;
        let time = rebalances.time.read();
        let since_last = rebalances
            .last_completed
            .map_or(-1.0, |at| at.elapsed().as_secs_f64() * 1000.0);
        for (name, help, value) in [
            (
                "epoch",
                "The generation this worker last joined",
                rebalances.epoch as f64,
            ),
            (
                "rebalancing",
                "1 while this worker is rebalancing",
                f64::from(u8::from(rebalances.rebalancing)),
            ),
            (
                "rebalance_avg_time_ms",
                "Mean milliseconds per rebalance",
                time.avg,
            ),
            (
                "rebalance_max_time_ms",
                "Longest rebalance, in milliseconds",
                time.max,
            ),
            (
                "time_since_last_rebalance_ms",
                "Milliseconds since the last completed rebalance (-1: none yet)",
                since_last,
            ),
        ] {
            let full = format!("{group}_{name}");
            let metric = encoder.encode_descriptor(&full, help, None, MetricType::Gauge)?;
            ConstGauge::new(value).encode(metric)?;
        }
        Ok(())
    }

    /// Connector and task statuses, and the counts of those on this worker.
    fn encode_statuses(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let statuses = self.0.statuses.lock().expect("metrics lock");
        let (statuses, worker_id) = &*statuses;
        let here = |id: &str| id == worker_id;
        let connector_count = statuses
            .iter()
            .filter(|s| here(&s.connector.worker_id))
            .count();
        let task_count = statuses
            .iter()
            .flat_map(|s| &s.tasks)
            .filter(|t| here(&t.worker_id))
            .count();
        for (name, help, value) in [
            (
                "kafka_connect_connect_worker_metrics_connector_count",
                "Connectors on this worker",
                connector_count,
            ),
            (
                "kafka_connect_connect_worker_metrics_task_count",
                "Tasks on this worker",
                task_count,
            ),
        ] {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(value as i64).encode(metric)?;
        }
        if statuses.is_empty() {
            return Ok(());
        }
        let mut metric = encoder.encode_descriptor(
            "kafka_connect_connector_metrics_status",
            "1 for the connector's state (label status), as the JMX exporter renders Kafka Connect's status attribute",
            None,
            MetricType::Gauge,
        )?;
        for status in statuses {
            let labels: Labels = vec![
                ("connector", status.name.clone()),
                ("status", state_name(status.connector.state)),
            ];
            ConstGauge::new(1i64).encode(metric.encode_family(&labels)?)?;
        }
        let mut metric = encoder.encode_descriptor(
            "kafka_connect_connector_task_metrics_status",
            "1 for the task's state (label status)",
            None,
            MetricType::Gauge,
        )?;
        for status in statuses {
            for task in &status.tasks {
                let labels: Labels = vec![
                    ("connector", status.name.clone()),
                    ("task", task.id.to_string()),
                    ("status", state_name(task.state)),
                ];
                ConstGauge::new(1i64).encode(metric.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}
