//! The sink: records become `_bulk` writes, sent in batches with a bounded number in flight;
//! `flush` returns once Elasticsearch has acknowledged every write, so the worker commits
//! offsets only for what is indexed.
//!
//! Ordering: batches are cut from the front of the queue of writes, a batch holds at most one
//! write per document, and a batch is not sent while an earlier batch with one of its
//! documents is still in flight (retries included). So the writes to one document reach
//! Elasticsearch one after another in record order, however many requests are in flight.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sluice_api::config::Props;
use sluice_api::connector::{ErrantRecordReporter, SinkConnector, SinkTask, SinkTaskContext};
use sluice_api::data::Value;
use sluice_api::metrics::TaskMetrics;
use sluice_api::record::{SinkRecord, TopicPartition};
use sluice_api::{Error, ErrorKind, Result};
use tokio::task::JoinSet;

use crate::bulk::{Action, Outcome, Write, document, key_id, outcome};
use crate::client::EsClient;
use crate::config::{
    ElasticsearchSinkConfig, MalformedDocuments, NullValues, Versioning, config_def,
};

/// The connector: every task gets the whole config; the worker shares the partitions.
#[derive(Default)]
pub struct ElasticsearchSinkConnector {
    props: Props,
}

/// Shows the config with the password (and any other secret) hidden.
impl fmt::Debug for ElasticsearchSinkConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ElasticsearchSinkConnector")
            .field("props", &config_def().redact(&self.props))
            .finish()
    }
}

#[async_trait]
impl SinkConnector for ElasticsearchSinkConnector {
    async fn start(&mut self, config: &Props) -> Result<()> {
        ElasticsearchSinkConfig::from_props(config)?;
        self.props = config.clone();
        Ok(())
    }

    fn task_configs(&self, max_tasks: usize) -> Result<Vec<Props>> {
        Ok(vec![self.props.clone(); max_tasks.max(1)])
    }

    fn create_task(&self) -> Box<dyn SinkTask> {
        Box::new(ElasticsearchSinkTask::default())
    }
}

/// A document: (index, id).
type DocumentKey = (String, String);

/// What a finished batch reports.
struct Sent {
    documents: Vec<DocumentKey>,
    /// Writes Elasticsearch refused as malformed, with its reason.
    malformed: Vec<(Write, String)>,
    retries: u64,
}

/// The task.
#[derive(Default)]
pub struct ElasticsearchSinkTask {
    running: Option<Running>,
}

/// Shows the config (password hidden), the client and the counters; queued writes are
/// counted, not listed.
impl fmt::Debug for ElasticsearchSinkTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(running) = &self.running else {
            return f.write_str("ElasticsearchSinkTask(not started)");
        };
        f.debug_struct("ElasticsearchSinkTask")
            .field("connector", &running.connector)
            .field("config", &running.config)
            .field("client", &running.client)
            .field("dead_letter_queue", &running.reporter.is_some())
            .field("indices", &running.indices)
            .field("queued_writes", &running.queue.len())
            .field("queued_bytes", &running.queued_bytes)
            .field("requests_in_flight", &running.in_flight.len())
            .field("documents_in_flight", &running.busy.len())
            .field("failure", &running.failure)
            .field("written", &running.written)
            .field("skipped", &running.skipped)
            .field("retries", &running.retries)
            .field("requests", &running.requests)
            .finish_non_exhaustive()
    }
}

struct Running {
    connector: String,
    config: Arc<ElasticsearchSinkConfig>,
    client: Arc<EsClient>,
    reporter: Option<Arc<dyn ErrantRecordReporter>>,
    metrics: TaskMetrics,
    /// Indices known to exist (or created).
    indices: HashSet<String>,
    /// Writes not yet sent, in record order.
    queue: VecDeque<Write>,
    queued_bytes: usize,
    /// When the oldest queued write arrived, for `linger.ms`.
    oldest: Option<Instant>,
    in_flight: JoinSet<Result<Sent>>,
    /// Documents with a write in flight.
    busy: HashSet<DocumentKey>,
    /// Set once a batch failed for good: the task can no longer say what is indexed, so every
    /// later call fails the same way (a retried flush must not report success).
    failure: Option<(ErrorKind, String)>,
    written: u64,
    skipped: u64,
    retries: u64,
    requests: u64,
}

#[async_trait]
impl SinkTask for ElasticsearchSinkTask {
    async fn start(&mut self, context: SinkTaskContext) -> Result<()> {
        let config = ElasticsearchSinkConfig::from_props(&context.config)?;
        let client = EsClient::new(&config)?;
        let info = client.info().await.map_err(|e| {
            // Unreachable at start is a configuration problem until proven otherwise.
            Error::new(
                if e.kind() == ErrorKind::Retriable {
                    ErrorKind::Config
                } else {
                    e.kind()
                },
                e.message().to_owned(),
            )
        })?;
        tracing::info!(connector = %context.connector, distribution = %info.distribution, version = %info.version, "connected to the search cluster");
        let mut running = Running {
            connector: context.connector,
            config: Arc::new(config),
            client: Arc::new(client),
            reporter: context.errant_records,
            metrics: context.metrics,
            indices: HashSet::new(),
            queue: VecDeque::new(),
            queued_bytes: 0,
            oldest: None,
            in_flight: JoinSet::new(),
            busy: HashSet::new(),
            failure: None,
            written: 0,
            skipped: 0,
            retries: 0,
            requests: 0,
        };
        let topics = running.config.topics.clone();
        for topic in topics {
            running.ensure_index(&topic.to_lowercase()).await?;
        }
        self.running = Some(running);
        Ok(())
    }

    async fn put(&mut self, records: Vec<SinkRecord>) -> Result<()> {
        let running = self.running()?;
        running.check()?;
        for record in records {
            if let Some(write) = running.write_for(record).await? {
                running.queued_bytes += write.lines.len();
                running.oldest.get_or_insert_with(Instant::now);
                running.queue.push_back(write);
            }
        }
        running.dispatch(false).await
    }

    async fn flush(&mut self, _offsets: &HashMap<TopicPartition, i64>) -> Result<()> {
        let running = self.running()?;
        running.check()?;
        let timeout = running.config.flush_timeout;
        match tokio::time::timeout(timeout, running.dispatch(true)).await {
            Ok(result) => result?,
            Err(_) => {
                let error = Error::retriable(format!(
                    "flush did not finish within flush.timeout.ms={} ({} bulk requests still \
                     outstanding, {} writes unsent); the records are delivered again after \
                     restart",
                    timeout.as_millis(),
                    running.in_flight.len(),
                    running.queue.len()
                ));
                return Err(running.remember(error));
            }
        }
        running.publish();
        Ok(())
    }

    async fn stop(&mut self) -> Result<()> {
        if let Some(mut running) = self.running.take() {
            running.in_flight.abort_all();
        }
        Ok(())
    }
}

impl ElasticsearchSinkTask {
    fn running(&mut self) -> Result<&mut Running> {
        self.running
            .as_mut()
            .ok_or_else(|| Error::fatal("the Elasticsearch sink task was used before start"))
    }
}

impl Running {
    fn check(&self) -> Result<()> {
        match &self.failure {
            Some((kind, message)) => Err(Error::new(*kind, message.clone())),
            None => Ok(()),
        }
    }

    fn remember(&mut self, error: Error) -> Error {
        self.failure = Some((error.kind(), error.message().to_owned()));
        error
    }

    async fn ensure_index(&mut self, index: &str) -> Result<()> {
        if self.indices.contains(index) {
            return Ok(());
        }
        if !self.client.index_exists(index).await? {
            if !self.config.create_indices {
                return Err(Error::config(format!(
                    "index `{index}` does not exist and auto.create.indices.at.start=false; \
                     create it (with its mapping) first, or set auto.create.indices.at.start=true"
                )));
            }
            self.client.create_index(index).await?;
            tracing::info!(connector = %self.connector, index, "created index");
        }
        self.indices.insert(index.to_owned());
        Ok(())
    }

    /// The write a record asks for; `None` when it is skipped.
    async fn write_for(&mut self, record: SinkRecord) -> Result<Option<Write>> {
        let inner = &record.record;
        let index = inner.topic.to_lowercase();
        if self.config.create_indices {
            self.ensure_index(&index).await?;
        }
        let id = if self.config.ignores_key(&inner.topic) {
            format!(
                "{}+{}+{}",
                inner.topic, record.kafka_partition, record.kafka_offset
            )
        } else {
            match key_id(&inner.key) {
                Some(id) => id,
                None => {
                    return Err(Error::data(format!(
                        "record {}-{}@{} has no key, but key.ignore=false makes the key the \
                         document id; set key.ignore=true (ids topic+partition+offset) or give \
                         the records keys (e.g. with ValueToKey)",
                        inner.topic, record.kafka_partition, record.kafka_offset
                    )));
                }
            }
        };
        let version = self.version_of(&record)?;
        if inner.value.is_null() {
            return match self.config.null_values {
                NullValues::Delete => Ok(Some(Write::new(
                    Action::Delete,
                    index,
                    id,
                    version,
                    None,
                    record,
                ))),
                NullValues::Ignore => Ok(None),
                NullValues::Fail => Err(Error::data(format!(
                    "record {}-{}@{} has a null value (a tombstone) and \
                     behavior.on.null.values=fail; set it to `delete` to delete the document \
                     (CDC deletes) or `ignore` to skip tombstones",
                    inner.topic, record.kafka_partition, record.kafka_offset
                ))),
            };
        }
        match document(&inner.value) {
            Ok(document) => {
                let action = if self.config.upsert {
                    Action::Upsert
                } else {
                    Action::Index
                };
                Ok(Some(Write::new(
                    action,
                    index,
                    id,
                    version,
                    Some(&document),
                    record,
                )))
            }
            Err(reason) => {
                let write = Write::new(Action::Index, index, id, None, None, record);
                self.malformed(write, reason).await?;
                Ok(None)
            }
        }
    }

    fn version_of(&self, record: &SinkRecord) -> Result<Option<i64>> {
        match &self.config.versioning {
            Versioning::Internal => Ok(None),
            Versioning::KafkaOffset => Ok(Some(record.kafka_offset)),
            Versioning::Header(name) => {
                let value = record.record.header(name).map(|h| &h.value);
                let number = match value {
                    Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
                    Some(other) => other.as_i64(),
                    None => None,
                };
                number.map(Some).ok_or_else(|| {
                    Error::data(format!(
                        "record {}-{}@{} has no whole-number header `{name}` \
                         (external.version.header); add it (e.g. a HeaderFrom or InsertHeader \
                         transform) or unset external.version.header",
                        record.record.topic, record.kafka_partition, record.kafka_offset
                    ))
                })
            }
        }
    }

    /// A document that cannot be indexed: skipped (and dead-lettered when the connector has a
    /// dead letter queue) or the task fails, per `behavior.on.malformed.documents`.
    async fn malformed(&mut self, write: Write, reason: String) -> Result<()> {
        let message = format!("{} is malformed: {reason}", write.origin());
        match self.config.malformed {
            MalformedDocuments::Fail => {
                return Err(Error::data(format!(
                    "{message}; behavior.on.malformed.documents=fail — fix the document, or set \
                     it to `warn`/`ignore` (with a dead letter queue to keep such records)"
                )));
            }
            MalformedDocuments::Warn => {
                tracing::warn!(connector = %self.connector, "{message}; skipped (behavior.on.malformed.documents=warn)");
            }
            MalformedDocuments::Ignore => {
                tracing::debug!(connector = %self.connector, "{message}; skipped (behavior.on.malformed.documents=ignore)");
            }
        }
        self.skipped += 1;
        if let Some(reporter) = &self.reporter {
            reporter
                .report(&write.record, &Error::data(message))
                .await?;
        }
        Ok(())
    }

    /// Sends what is due: full batches, a lingering partial one, or with `everything` all of
    /// it, and then waits for every request in flight.
    async fn dispatch(&mut self, everything: bool) -> Result<()> {
        loop {
            while let Some(done) = self.in_flight.try_join_next() {
                self.finished(done).await?;
            }
            if self.queue.is_empty() {
                break;
            }
            let full = self.queue.len() >= self.config.batch_size
                || self.queued_bytes >= self.config.bulk_size_bytes;
            let lingered = self
                .oldest
                .is_some_and(|t| t.elapsed() >= self.config.linger);
            if !(everything || full || lingered) {
                break;
            }
            let front = self.queue.front().map(|w| (w.index.clone(), w.id.clone()));
            let blocked = self.in_flight.len() >= self.config.max_in_flight
                || front.is_some_and(|key| self.busy.contains(&key));
            if blocked {
                if !everything && self.queue.len() < self.config.max_buffered_records {
                    break;
                }
                self.wait_for_one().await?;
                continue;
            }
            self.send_next_batch();
        }
        if everything {
            while !self.in_flight.is_empty() {
                self.wait_for_one().await?;
            }
        }
        Ok(())
    }

    async fn wait_for_one(&mut self) -> Result<()> {
        if let Some(done) = self.in_flight.join_next().await {
            self.finished(done).await?;
        }
        Ok(())
    }

    /// Cuts the next batch off the front of the queue and sends it in the background.
    fn send_next_batch(&mut self) {
        let mut batch = Vec::new();
        let mut bytes = 0;
        // A document taken into this batch becomes busy at once, so the busy check also keeps
        // a batch to one write per document.
        while let Some(next) = self.queue.front() {
            let key = (next.index.clone(), next.id.clone());
            let fits = batch.is_empty() || bytes + next.lines.len() <= self.config.bulk_size_bytes;
            if batch.len() >= self.config.batch_size || !fits || self.busy.contains(&key) {
                break;
            }
            let write = self.queue.pop_front().expect("front exists");
            bytes += write.lines.len();
            self.queued_bytes -= write.lines.len();
            self.busy.insert(key);
            batch.push(write);
        }
        self.oldest = if self.queue.is_empty() {
            None
        } else {
            Some(Instant::now())
        };
        self.requests += 1;
        self.in_flight
            .spawn(send_batch(self.client.clone(), self.config.clone(), batch));
    }

    async fn finished(
        &mut self,
        done: std::result::Result<Result<Sent>, tokio::task::JoinError>,
    ) -> Result<()> {
        let sent = match done {
            Ok(Ok(sent)) => sent,
            Ok(Err(error)) => {
                return Err(self.remember(error));
            }
            Err(join) => {
                let error = Error::fatal(format!("a bulk request task ended abnormally: {join}"));
                return Err(self.remember(error));
            }
        };
        for key in &sent.documents {
            self.busy.remove(key);
        }
        self.retries += sent.retries;
        self.written += (sent.documents.len() - sent.malformed.len()) as u64;
        for (write, reason) in sent.malformed {
            if let Err(error) = self.malformed(write, reason).await {
                return Err(self.remember(error));
            }
        }
        Ok(())
    }

    fn publish(&self) {
        self.metrics.set("documents_written", self.written as f64);
        self.metrics.set("documents_skipped", self.skipped as f64);
        self.metrics.set("bulk_requests", self.requests as f64);
        self.metrics.set("bulk_retries", self.retries as f64);
    }
}

/// Sends one batch, retrying 429s, 5xx and connection failures (the whole request or single
/// items) with exponential backoff, until every item is done, refused as malformed, or the
/// retries run out.
async fn send_batch(
    client: Arc<EsClient>,
    config: Arc<ElasticsearchSinkConfig>,
    batch: Vec<Write>,
) -> Result<Sent> {
    let documents: Vec<DocumentKey> = batch
        .iter()
        .map(|w| (w.index.clone(), w.id.clone()))
        .collect();
    let mut remaining = batch;
    let mut malformed = Vec::new();
    let mut attempt: u32 = 0;
    loop {
        let body: Vec<u8> = remaining
            .iter()
            .flat_map(|w| w.lines.iter().copied())
            .collect();
        let last_problem = match client.bulk(body).await {
            Err(error) if error.kind() == ErrorKind::Retriable => error.message().to_owned(),
            Err(error) => {
                return Err(error.context(format!(
                    "bulk request of {} writes, the first {}",
                    remaining.len(),
                    remaining[0].origin()
                )));
            }
            Ok(items) if items.len() != remaining.len() => {
                return Err(Error::fatal(format!(
                    "Elasticsearch answered a bulk request of {} writes with {} items",
                    remaining.len(),
                    items.len()
                )));
            }
            Ok(items) => {
                let mut again = Vec::new();
                let mut problem = String::new();
                for (write, item) in remaining.into_iter().zip(items) {
                    match outcome(&item) {
                        Outcome::Done => {}
                        Outcome::Retry(reason) => {
                            problem = format!("{}: {reason}", write.origin());
                            again.push(write);
                        }
                        Outcome::Malformed(reason) => malformed.push((write, reason)),
                        Outcome::Failed(reason) => {
                            return Err(Error::fatal(format!(
                                "Elasticsearch refused {}: {reason}",
                                write.origin()
                            )));
                        }
                    }
                }
                remaining = again;
                if remaining.is_empty() {
                    return Ok(Sent {
                        documents,
                        malformed,
                        retries: u64::from(attempt),
                    });
                }
                problem
            }
        };
        if attempt >= config.max_retries {
            return Err(Error::retriable(format!(
                "gave up after max.retries={} retries: {last_problem}",
                config.max_retries
            )));
        }
        let delay = backoff(config.retry_backoff, attempt);
        tracing::debug!(attempt, delay_ms = delay.as_millis() as u64, writes = remaining.len(), problem = %last_problem, "retrying bulk writes");
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

/// `base × 2^attempt`, with up to 25 % jitter so tasks retrying together spread out, capped
/// at a minute.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let exponential = base.saturating_mul(1u32 << attempt.min(16));
    let capped = exponential.min(Duration::from_secs(60));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = capped.mul_f64(f64::from(nanos % 250) / 1000.0);
    capped + jitter
}
