//! Source and sink connectors and their tasks, after Kafka Connect's contract.
//!
//! A *connector* reads its config, splits the work into at most `tasks.max` task configs and
//! hands them out; *tasks* do the copying. The worker owns threads, retries, offsets and
//! delivery; a connector only says what to read or write.
//!
//! # Delivery guarantee: at least once
//! A source record's offset is committed only after every sink (or the Kafka producer) that
//! received the record has made it durable. After a crash, a source task resumes from the last
//! committed offset, so records after it may be delivered again, and none is lost. A clean stop
//! commits everything delivered, so a clean restart repeats nothing.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{ConfigDef, FieldError, Props};
use crate::metrics::TaskMetrics;
use crate::record::{SinkRecord, SourceOffset, SourcePartition, SourceRecord, TopicPartition};
use crate::{Error, Result};

/// Whether a connector reads from an external system or writes to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectorKind {
    /// Reads from an external system and produces records ([`SourceConnector`]).
    Source,
    /// Consumes records and writes them to an external system ([`SinkConnector`]).
    Sink,
}

impl ConnectorKind {
    /// `"source"` or `"sink"`, as the REST API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorKind::Source => "source",
            ConnectorKind::Sink => "sink",
        }
    }
}

/// Reads committed source offsets, so a task can resume where the last run stopped.
#[async_trait]
pub trait OffsetReader: Send + Sync {
    /// The last committed offset of `partition` for this connector, if any.
    async fn offset(&self, partition: &SourcePartition) -> Result<Option<SourceOffset>>;
}

/// Opens durable logs of text records on the worker's Kafka: what Debezium keeps in its schema
/// history topic (`schema.history.internal.kafka.topic`), beside the task's offsets.
///
/// # Contract
/// * [`HistoryTopics::open`] creates a missing topic with one partition and time- and
///   size-unlimited retention (`cleanup.policy=delete`: a compacted topic refuses records
///   without a key). It refuses an existing one with more than one partition or compacted,
///   naming the fix, and warns of a finite retention and of first records retention deleted
///   (not refused: `snapshot.mode=recovery` must be able to open it to rebuild it). It may block on the network for a while; it is cancel-safe.
/// * `client` holds Kafka client settings for this log alone: `bootstrap.servers` (absent: the
///   worker's brokers and security settings), and `producer.*`, `consumer.*` keys.
#[async_trait]
pub trait HistoryTopics: Send + Sync {
    /// Opens `topic` as a history log.
    async fn open(&self, topic: &str, client: &Props) -> Result<Box<dyn HistoryTopic>>;
}

/// One log opened by [`HistoryTopics::open`].
///
/// # Contract
/// * [`HistoryTopic::append`] returns once the record is durable (acknowledged by every in-sync
///   replica); records keep the order they were appended in, including across restarts.
/// * [`HistoryTopic::read_all`] returns every record in the log, in order, as of the call.
/// * Records are never removed: a reader skips those it does not need.
#[async_trait]
pub trait HistoryTopic: Send + Sync {
    /// The topic's name, for messages.
    fn topic(&self) -> &str;
    /// Every record in the log, in order.
    async fn read_all(&self) -> Result<Vec<String>>;
    /// Appends `record`; durable on `Ok`.
    async fn append(&self, record: String) -> Result<()>;
}

/// What a source task is given at start.
#[derive(Clone)]
pub struct SourceTaskContext {
    /// The name of the connector the task belongs to.
    pub connector: String,
    /// The task's number within its connector, from 0.
    pub task_id: u32,
    /// This task's config, as returned by [`SourceConnector::task_configs`].
    pub config: Props,
    /// The connector's committed offsets, to resume from.
    pub offsets: Arc<dyn OffsetReader>,
    /// Where the task publishes its gauges (shown in its REST status and at `/metrics`).
    pub metrics: TaskMetrics,
    /// Durable logs on the worker's Kafka (Debezium's schema history topic); `None` on the
    /// embedded pipeline, which has no Kafka.
    pub history_topics: Option<Arc<dyn HistoryTopics>>,
}

/// Shows the config with secrets (by key name) hidden; the offset reader is left out.
impl fmt::Debug for SourceTaskContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceTaskContext")
            .field("connector", &self.connector)
            .field("task_id", &self.task_id)
            .field("config", &ConfigDef::new().redact(&self.config))
            .field("metrics", &self.metrics)
            .field("history_topics", &self.history_topics.is_some())
            .finish_non_exhaustive()
    }
}

/// What a sink task is given at start.
#[derive(Clone)]
pub struct SinkTaskContext {
    /// The name of the connector the task belongs to.
    pub connector: String,
    /// The task's number within its connector, from 0.
    pub task_id: u32,
    /// This task's config, as returned by [`SinkConnector::task_configs`].
    pub config: Props,
    /// Where the task publishes its gauges (shown in its REST status and at `/metrics`).
    pub metrics: TaskMetrics,
    /// Where the task reports records it cannot write (Kafka Connect's
    /// `errantRecordReporter()`); `None` when the connector has no dead letter queue.
    pub errant_records: Option<Arc<dyn ErrantRecordReporter>>,
}

/// Shows the config with secrets (by key name) hidden.
impl fmt::Debug for SinkTaskContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SinkTaskContext")
            .field("connector", &self.connector)
            .field("task_id", &self.task_id)
            .field("config", &ConfigDef::new().redact(&self.config))
            .field("metrics", &self.metrics)
            .field("errant_records", &self.errant_records)
            .finish()
    }
}

impl SinkTaskContext {
    /// A context with fresh gauges and no dead letter queue (tests, embedding).
    pub fn new(connector: &str, task_id: u32, config: Props) -> SinkTaskContext {
        SinkTaskContext {
            connector: connector.to_owned(),
            task_id,
            config,
            metrics: TaskMetrics::default(),
            errant_records: None,
        }
    }
}

/// Takes records a sink task could not write, as Kafka Connect's `ErrantRecordReporter`.
///
/// # Contract
/// * `report` returns once the record is durable in the dead letter queue, so the task may
///   treat it as handled and let its offset be committed.
/// * With `errors.tolerance=none` it returns an error instead (and writes nothing): the task
///   should fail with it, as Kafka Connect's task does.
#[async_trait]
pub trait ErrantRecordReporter: Send + Sync + std::fmt::Debug {
    /// Dead-letters `record`, which failed with `error`.
    async fn report(&self, record: &SinkRecord, error: &Error) -> Result<()>;
}

/// A connector reading from an external system.
#[async_trait]
pub trait SourceConnector: Send + Sync {
    /// Starts the connector with its full, already validated config.
    async fn start(&mut self, config: &Props) -> Result<()>;

    /// Splits the work into at most `max_tasks` task configs. Called after `start`.
    fn task_configs(&self, max_tasks: usize) -> Result<Vec<Props>>;

    /// A new, unstarted task.
    fn create_task(&self) -> Box<dyn SourceTask>;

    /// Releases what `start` acquired.
    async fn stop(&mut self) -> Result<()> {
        Ok(())
    }

    /// Removes what the connector keeps in the external system beyond its own life (for a
    /// CDC source: its replication slot), when it is deleted with
    /// `DELETE /connectors/{name}?cleanup=true`. Called on a fresh, unstarted instance after
    /// every task has stopped; the default keeps everything.
    async fn cleanup(&mut self, _config: &Props) -> Result<()> {
        Ok(())
    }

    /// Checks offsets a user is about to write with `PATCH /connectors/{name}/offsets` (an
    /// offset of `None` removes its partition), as Kafka Connect's
    /// `SourceConnector.alterOffsets`: an error (a `Config` kind, naming the partition, the
    /// field and what is expected) refuses the whole request with 400 and nothing is written.
    /// Called on a fresh, unstarted instance while the connector is STOPPED; the default
    /// accepts everything.
    fn validate_offsets(
        &self,
        _config: &Props,
        _offsets: &[(SourcePartition, Option<SourceOffset>)],
    ) -> Result<()> {
        Ok(())
    }
}

/// A task copying records out of an external system.
///
/// # Contract
/// * `poll` returns records in the order they must be delivered within each source partition.
///   When there is nothing to read it returns an empty batch within about a second, so the
///   worker can pause or stop the task promptly; it must not block indefinitely.
/// * Each record's `source_offset` is the position to resume *after* that record. The worker
///   commits an offset only once the record and everything before it in its partition are
///   durable downstream; the task must not assume a returned record is committed.
/// * [`SourceTask::offsets_committed`] tells the task which offsets are now durable, so it may
///   release upstream resources up to them (e.g. confirm a replication slot position).
/// * After a crash the task is started again and must resume from
///   [`SourceTaskContext::offsets`], re-reading whatever was not committed (at least once).
///
/// # Cancellation
/// `poll` need not be cancel-safe. While the task runs, the worker awaits every `poll` to
/// completion: it never drops a pending `poll` to do something else and poll again, not even
/// to pause or stop (it waits for the batch, which is why an idle `poll` must return within
/// about a second). A pending `poll` is dropped only when the task is ending anyway: when a
/// stop request or a failure arrives while the previous batch is being delivered (then the
/// worker commits what was delivered, calls [`SourceTask::stop`] and never polls this
/// instance again), or when the task outlives `task.shutdown.graceful.timeout.ms` and is
/// aborted (then the instance is dropped without `stop`). Records a dropped `poll` had read
/// are read again after restart, from the committed offsets; `stop` and `Drop` must only
/// cope with whatever state the interrupted `poll` left behind.
#[async_trait]
pub trait SourceTask: Send {
    /// Starts the task; read committed offsets from `context.offsets` here.
    async fn start(&mut self, context: SourceTaskContext) -> Result<()>;

    /// The next batch of records; empty when there is nothing new.
    async fn poll(&mut self) -> Result<Vec<SourceRecord>>;

    /// These offsets (latest per partition) are committed and durable.
    async fn offsets_committed(
        &mut self,
        _offsets: &[(SourcePartition, SourceOffset)],
    ) -> Result<()> {
        Ok(())
    }

    /// Stops the task, releasing its resources. Called once, after the last `poll`.
    async fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}

/// A connector writing into an external system.
#[async_trait]
pub trait SinkConnector: Send + Sync {
    /// Starts the connector with its full, already validated config.
    async fn start(&mut self, config: &Props) -> Result<()>;

    /// Splits the work into at most `max_tasks` task configs.
    fn task_configs(&self, max_tasks: usize) -> Result<Vec<Props>>;

    /// A new, unstarted task.
    fn create_task(&self) -> Box<dyn SinkTask>;

    /// Releases what `start` acquired.
    async fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}

/// A task writing records into an external system.
///
/// # Contract
/// * `put` receives records in topic-partition order. It may write them at once or buffer
///   them; either way nothing is considered delivered until `flush` returns `Ok`.
/// * `flush(offsets)` must make every record passed to `put` so far durable (written and
///   synced) before returning `Ok`. Only then does the worker commit the offsets (and, in the
///   direct pipeline, acknowledge the records to their source), so a failed or missing flush
///   means redelivery, never loss.
/// * An error from `put` or `flush` fails the task, unless it is a
///   [`ErrorKind::Retriable`](crate::ErrorKind::Retriable) error and retries are on (below);
///   records not flushed are delivered again after restart. Sinks should therefore be
///   idempotent or tolerate duplicates.
///
/// # Retries
/// A `Retriable` error from `put` means "offer me this batch again". When the connector sets
/// `errors.retry.timeout` (milliseconds, `-1` without limit; the default `0` turns retries
/// off), the worker calls `put` again with the same records in the same order, after a pause
/// of 300 ms that doubles with each attempt up to `errors.retry.delay.max.ms` (default
/// 60000), until a call returns `Ok` (the batch counts as accepted) or the timeout has passed
/// (the task fails with the last error). So a `put` that fails retriably must tolerate seeing
/// records it already wrote or buffered in the failed call: write idempotently (a document id
/// from topic, partition and offset, an upsert) or drop what the failed call buffered. Any
/// other kind of error, and a retriable one with retries off or out of time, fails the task
/// at once. `flush` is retried the same way, with the same offsets.
#[async_trait]
pub trait SinkTask: Send {
    /// Starts the task.
    async fn start(&mut self, context: SinkTaskContext) -> Result<()>;

    /// Accepts a batch of records. A [`Retriable`](crate::ErrorKind::Retriable) error asks
    /// for the same batch again (see the trait's *Retries*).
    async fn put(&mut self, records: Vec<SinkRecord>) -> Result<()>;

    /// Makes everything put so far durable; `offsets` are the next offsets to consume per
    /// topic partition once this returns.
    async fn flush(&mut self, offsets: &HashMap<TopicPartition, i64>) -> Result<()>;

    /// Stops the task. The worker flushes before stopping when it can.
    async fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}

/// How a plugin is instantiated.
#[derive(Clone, Copy)]
pub enum ConnectorFactory {
    /// Makes a new, unstarted source connector.
    Source(fn() -> Box<dyn SourceConnector>),
    /// Makes a new, unstarted sink connector.
    Sink(fn() -> Box<dyn SinkConnector>),
}

/// Names the variant only: the function's address says nothing.
impl fmt::Debug for ConnectorFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnectorFactory::Source(_) => "Source(..)",
            ConnectorFactory::Sink(_) => "Sink(..)",
        })
    }
}

/// A connector plugin as registered with the worker: its names, version, config and factory.
#[derive(Clone, Copy)]
pub struct ConnectorPlugin {
    /// The Kafka Connect class name, e.g. `org.apache.kafka.connect.file.FileStreamSourceConnector`.
    pub class: &'static str,
    /// Extra short names accepted in `connector.class`.
    pub aliases: &'static [&'static str],
    /// The plugin's version, as `GET /connector-plugins` reports it.
    pub version: &'static str,
    /// The plugin's own keys (the worker adds the common connector keys).
    pub config_def: fn() -> ConfigDef,
    /// Checks that span several keys (Kafka Connect's `Connector.validate`), run when every key
    /// passed its own check: one error per offending field.
    pub validate: fn(&Props) -> Vec<FieldError>,
    /// Makes instances of the connector; also says whether it is a source or a sink.
    pub factory: ConnectorFactory,
}

/// Shows the names, version and kind; the functions are left out.
impl fmt::Debug for ConnectorPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectorPlugin")
            .field("class", &self.class)
            .field("aliases", &self.aliases)
            .field("version", &self.version)
            .field("kind", &self.kind())
            .finish_non_exhaustive()
    }
}

/// A [`ConnectorPlugin::validate`] for plugins whose keys are checked one by one.
pub fn no_cross_field_checks(_: &Props) -> Vec<FieldError> {
    Vec::new()
}

impl ConnectorPlugin {
    /// Source or sink.
    pub fn kind(&self) -> ConnectorKind {
        match self.factory {
            ConnectorFactory::Source(_) => ConnectorKind::Source,
            ConnectorFactory::Sink(_) => ConnectorKind::Sink,
        }
    }

    /// The last segment of the class name (`FileStreamSourceConnector`).
    pub fn simple_name(&self) -> &'static str {
        self.class.rsplit('.').next().unwrap_or(self.class)
    }

    /// True when `name` designates this plugin the way Kafka Connect resolves
    /// `connector.class`: the full class, the simple class name, the simple name without its
    /// `Connector` suffix, or one of the aliases.
    pub fn answers_to(&self, name: &str) -> bool {
        let simple = self.simple_name();
        name == self.class
            || name == simple
            || simple.strip_suffix("Connector") == Some(name)
            || self.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::props;

    #[test]
    fn task_contexts_hide_secret_settings_in_debug_output() {
        let config = props(&[("connection.password", "s3cret"), ("topics", "orders")]);
        let shown = format!("{:?}", SinkTaskContext::new("es", 0, config));
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("orders"), "{shown}");
    }
}
