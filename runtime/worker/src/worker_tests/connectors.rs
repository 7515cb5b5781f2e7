//! In-memory connectors for the in-process worker tests: a source that emits numbered records
//! and remembers which offsets it was told were committed, and a sink that remembers what it
//! was given and flushed and can be told to fail `put` or `flush`. Tests reach a connector's
//! [`Probe`] by the `probe` key of its config.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use sluice_api::config::{ConfigDef, ConfigKey, ConfigType, Importance, Props};
use sluice_api::connector::{
    ConnectorFactory, ConnectorPlugin, SinkConnector, SinkTask, SinkTaskContext, SourceConnector,
    SourceTask, SourceTaskContext, no_cross_field_checks,
};
use sluice_api::data::Value;
use sluice_api::record::{
    Record, SinkRecord, SourceOffset, SourcePartition, SourceRecord, TopicPartition,
};
use sluice_api::{Error, Result};
use tokio::sync::Notify;

/// How a [`NUMBERED_SINK`] answers `put` or `flush`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Answer {
    /// Succeed.
    Ok,
    /// Fail with a retriable error (the worker retries per `errors.retry.*`).
    Retriable,
    /// Fail for good (the task fails).
    Fatal,
}

/// What a test connector did, and how a test sink should answer.
#[derive(Debug, Default)]
pub(super) struct Probe {
    /// Records a source emitted so far.
    pub(super) polled: AtomicU64,
    /// Every record number a sink was given by `put`, in order (repeats included).
    pub(super) put: Mutex<Vec<u64>>,
    /// Record numbers a sink had been given when its last `flush` succeeded.
    pub(super) flushed: Mutex<Vec<u64>>,
    /// Each offset a source was told was committed (`offsets_committed`).
    pub(super) committed: Mutex<Vec<u64>>,
    /// Calls of a sink's `put`, failed ones included.
    pub(super) put_calls: AtomicU64,
    /// Calls of a sink's `flush`, failed ones included.
    pub(super) flush_calls: AtomicU64,
    put_answer: AtomicU8,
    flush_answer: AtomicU8,
    /// Notified whenever anything above changes.
    pub(super) changed: Notify,
}

fn encode(answer: Answer) -> u8 {
    match answer {
        Answer::Ok => 0,
        Answer::Retriable => 1,
        Answer::Fatal => 2,
    }
}

fn answer(cell: &AtomicU8, what: &str) -> Result<()> {
    match cell.load(Ordering::Acquire) {
        0 => Ok(()),
        1 => Err(Error::retriable(format!("{what} told to fail (retriable)"))),
        _ => Err(Error::fatal(format!("{what} told to fail"))),
    }
}

impl Probe {
    /// Sets how the sink answers `put` from now on.
    pub(super) fn answer_put(&self, answer: Answer) {
        self.put_answer.store(encode(answer), Ordering::Release);
    }

    /// Sets how the sink answers `flush` from now on.
    pub(super) fn answer_flush(&self, answer: Answer) {
        self.flush_answer.store(encode(answer), Ordering::Release);
    }

    /// The highest offset committed so far.
    pub(super) fn last_committed(&self) -> Option<u64> {
        self.committed.lock().unwrap().last().copied()
    }

    /// Waits (at most 20 s) until `condition` holds.
    pub(super) async fn wait_for(&self, what: &str, condition: impl Fn(&Probe) -> bool) {
        let waited = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let changed = self.changed.notified();
                if condition(self) {
                    return;
                }
                let _ = tokio::time::timeout(Duration::from_millis(50), changed).await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "timed out waiting for {what}; probe: {self:?}"
        );
    }
}

static PROBES: LazyLock<Mutex<HashMap<String, Arc<Probe>>>> = LazyLock::new(Default::default);

/// The probe of the connector whose config says `probe=<name>` (made on first use).
pub(super) fn probe(name: &str) -> Arc<Probe> {
    Arc::clone(PROBES.lock().unwrap().entry(name.to_owned()).or_default())
}

fn probe_of(config: &Props) -> Arc<Probe> {
    probe(config.get("probe").map(String::as_str).unwrap_or_default())
}

fn number(config: &Props, key: &str, default: u64) -> u64 {
    config
        .get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A source of numbered records on topic `numbers` (value: the number), one partition
/// `{"source": "numbers"}`, offset `{"n": <number>}`. Config: `probe`, `count` (how many it
/// emits, default unbounded), `batch` (records per poll, default 10), `stop.delay.ms` (how
/// long its task's `stop` takes, default 0). It resumes after the committed offset.
pub(super) const NUMBERED_SOURCE: ConnectorPlugin = ConnectorPlugin {
    class: "test.NumberedSource",
    aliases: &[],
    version: "test",
    config_def: test_keys,
    validate: no_cross_field_checks,
    factory: ConnectorFactory::Source(|| Box::new(NumberedSource::default())),
};

/// A sink that remembers the numbers it was given and flushed, answering as its probe says.
/// Config: `probe`, `put.delay.ms` (how long each `put` takes, default 0).
pub(super) const NUMBERED_SINK: ConnectorPlugin = ConnectorPlugin {
    class: "test.NumberedSink",
    aliases: &[],
    version: "test",
    config_def: test_keys,
    validate: no_cross_field_checks,
    factory: ConnectorFactory::Sink(|| Box::new(NumberedSink::default())),
};

/// The keys of both test connectors (a herder validates configs against them).
fn test_keys() -> ConfigDef {
    ["probe", "count", "batch", "put.delay.ms", "stop.delay.ms"]
        .into_iter()
        .fold(ConfigDef::new(), |def, key| {
            def.key(ConfigKey::optional(
                key,
                ConfigType::String,
                "",
                Importance::Low,
                "test connector setting",
            ))
        })
}

#[derive(Debug, Default)]
struct NumberedSource {
    config: Props,
}

#[async_trait]
impl SourceConnector for NumberedSource {
    async fn start(&mut self, config: &Props) -> Result<()> {
        self.config = config.clone();
        Ok(())
    }

    fn task_configs(&self, _max_tasks: usize) -> Result<Vec<Props>> {
        Ok(vec![self.config.clone()])
    }

    fn create_task(&self) -> Box<dyn SourceTask> {
        Box::new(NumberedSourceTask::default())
    }
}

#[derive(Debug, Default)]
struct NumberedSourceTask {
    probe: Arc<Probe>,
    /// `stop.delay.ms`: how long `stop` takes, so that a stop can be caught halfway.
    stop_delay: Duration,
    next: u64,
    count: u64,
    batch: u64,
    partition: Arc<SourcePartition>,
}

/// The source's one partition.
pub(super) fn partition() -> SourcePartition {
    json!({"source": "numbers"})
        .as_object()
        .cloned()
        .unwrap_or_default()
}

#[async_trait]
impl SourceTask for NumberedSourceTask {
    async fn start(&mut self, context: SourceTaskContext) -> Result<()> {
        self.probe = probe_of(&context.config);
        self.count = number(&context.config, "count", u64::MAX);
        self.batch = number(&context.config, "batch", 10);
        self.stop_delay = Duration::from_millis(number(&context.config, "stop.delay.ms", 0));
        self.partition = Arc::new(partition());
        self.next = match context.offsets.offset(&self.partition).await? {
            Some(offset) => offset["n"].as_u64().unwrap_or_default() + 1,
            None => 0,
        };
        Ok(())
    }

    async fn poll(&mut self) -> Result<Vec<SourceRecord>> {
        let end = self.count.min(self.next.saturating_add(self.batch));
        if self.next >= end {
            tokio::time::sleep(Duration::from_millis(5)).await;
            return Ok(Vec::new());
        }
        let records: Vec<SourceRecord> = (self.next..end)
            .map(|n| SourceRecord {
                record: Record::new("numbers", Value::Int64(n as i64), None),
                source_partition: Arc::clone(&self.partition),
                source_offset: json!({"n": n}).as_object().cloned().unwrap_or_default(),
            })
            .collect();
        self.next = end;
        self.probe
            .polled
            .fetch_add(records.len() as u64, Ordering::AcqRel);
        self.probe.changed.notify_waiters();
        Ok(records)
    }

    async fn stop(&mut self) -> Result<()> {
        tokio::time::sleep(self.stop_delay).await;
        Ok(())
    }

    async fn offsets_committed(
        &mut self,
        offsets: &[(SourcePartition, SourceOffset)],
    ) -> Result<()> {
        let mut committed = self.probe.committed.lock().unwrap();
        committed.extend(offsets.iter().filter_map(|(_, o)| o["n"].as_u64()));
        drop(committed);
        self.probe.changed.notify_waiters();
        Ok(())
    }
}

#[derive(Debug, Default)]
struct NumberedSink {
    config: Props,
}

#[async_trait]
impl SinkConnector for NumberedSink {
    async fn start(&mut self, config: &Props) -> Result<()> {
        self.config = config.clone();
        Ok(())
    }

    fn task_configs(&self, _max_tasks: usize) -> Result<Vec<Props>> {
        Ok(vec![self.config.clone()])
    }

    fn create_task(&self) -> Box<dyn SinkTask> {
        Box::new(NumberedSinkTask::default())
    }
}

#[derive(Debug, Default)]
struct NumberedSinkTask {
    probe: Arc<Probe>,
    /// `put.delay.ms`: how long each `put` takes, so that deliveries queue up behind it.
    put_delay: Duration,
}

#[async_trait]
impl SinkTask for NumberedSinkTask {
    async fn start(&mut self, context: SinkTaskContext) -> Result<()> {
        self.probe = probe_of(&context.config);
        self.put_delay = Duration::from_millis(number(&context.config, "put.delay.ms", 0));
        Ok(())
    }

    async fn put(&mut self, records: Vec<SinkRecord>) -> Result<()> {
        self.probe.put_calls.fetch_add(1, Ordering::AcqRel);
        self.probe.changed.notify_waiters();
        answer(&self.probe.put_answer, "put")?;
        if !self.put_delay.is_zero() {
            tokio::time::sleep(self.put_delay).await;
        }
        let numbers = records.iter().filter_map(|r| match r.record.value {
            Value::Int64(n) => Some(n as u64),
            _ => None,
        });
        self.probe.put.lock().unwrap().extend(numbers);
        self.probe.changed.notify_waiters();
        Ok(())
    }

    async fn flush(&mut self, _offsets: &HashMap<TopicPartition, i64>) -> Result<()> {
        self.probe.flush_calls.fetch_add(1, Ordering::AcqRel);
        self.probe.changed.notify_waiters();
        answer(&self.probe.flush_answer, "flush")?;
        let put = self.probe.put.lock().unwrap().clone();
        *self.probe.flushed.lock().unwrap() = put;
        self.probe.changed.notify_waiters();
        Ok(())
    }
}
