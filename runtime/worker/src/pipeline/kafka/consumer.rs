//! The sink side of the Kafka transport: a consumer in group `connect-<name>` (or
//! `consumer.override.group.id`) reads `topics`/`topics.regex`; messages are converted into
//! records for the sink runner; consumer offsets are committed only after the task's `flush`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use sluice_api::config::{Props, with_prefix};
use sluice_api::connector::ErrantRecordReporter;
use sluice_api::convert::Converter;
use sluice_api::data::Value;
use sluice_api::record::{Header, Record, SinkRecord, TopicPartition};
use sluice_api::{Error, Result};

use super::dlq::{DeadLetterQueue, Original};
use super::{KafkaSettings, client_error, is_transient_consumer_error};
use crate::config::ConnectorSettings;
use crate::config::tolerance::Tolerance;
use crate::metrics::HighWatermarks;
use crate::pipeline::topics::TopicFilter;

/// Holds partitions a rebalance takes away until the task has flushed what it read from them
/// and their offsets are committed, as Kafka Connect does in `onPartitionsRevoked`: the next
/// owner then starts after them instead of reading them again. librdkafka waits for the
/// unassign call before the group moves on, so the sink loop makes it
/// ([`KafkaSinkInput::release_revoked`]) once it has flushed.
#[derive(Default)]
pub(crate) struct RebalanceContext {
    revoking: Mutex<Option<TopicPartitionList>>,
    revoke_requested: tokio::sync::Notify,
    /// Set once the consumer closes: nothing flushes any more, so partitions go at once.
    closing: AtomicBool,
    /// Each partition's high watermark from librdkafka's statistics (every
    /// `statistics.interval.ms`), for the sink's records-lag metric.
    high_watermarks: HighWatermarks,
}

impl ClientContext for RebalanceContext {
    fn stats(&self, statistics: Statistics) {
        let mut high = self.high_watermarks.lock().expect("watermarks lock");
        for (topic, figures) in statistics.topics {
            for partition in figures.partitions.values() {
                // The end a read_committed consumer (librdkafka's default) can reach is the
                // last stable offset, as Kafka measures its lag; the high watermark when
                // there is none. Partition -1 is librdkafka's internal one; -1001: unknown.
                let end = if partition.ls_offset >= 0 {
                    partition.ls_offset
                } else {
                    partition.hi_offset
                };
                if partition.partition >= 0 && end >= 0 {
                    high.insert((topic.clone(), partition.partition), end);
                }
            }
        }
    }
}

impl ConsumerContext for RebalanceContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        event: RDKafkaRespErr,
        partitions: &mut TopicPartitionList,
    ) {
        match event {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS
                if !self.closing.load(Ordering::Acquire) =>
            {
                tracing::info!(
                    partitions = partitions.count(),
                    "partitions revoked by a rebalance; flushing them before giving them up"
                );
                *self.revoking.lock().expect("rebalance lock") = Some(partitions.clone());
                self.revoke_requested.notify_one();
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let assigned = if cooperative(consumer) {
                    consumer.incremental_assign(partitions)
                } else {
                    consumer.assign(partitions)
                };
                // Which partitions a task owns is the first thing to know when a sink stalls.
                let names: Vec<String> = partitions
                    .elements()
                    .iter()
                    .map(|element| format!("{}-{}", element.topic(), element.partition()))
                    .collect();
                match assigned {
                    Ok(()) => {
                        tracing::info!(partitions = ?names, "partitions assigned by a rebalance")
                    }
                    Err(e) => {
                        tracing::error!(partitions = ?names, error = %e, "taking partitions assigned by a rebalance failed")
                    }
                }
            }
            _ => {
                if event != RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS {
                    tracing::warn!(error = ?event, "rebalance failed; giving up the assignment");
                }
                if let Err(e) = give_up(consumer, partitions) {
                    tracing::warn!(error = %e, "giving up partitions failed");
                }
            }
        }
    }
}

fn cooperative(consumer: &impl Consumer<RebalanceContext>) -> bool {
    matches!(
        consumer.rebalance_protocol(),
        RebalanceProtocol::Cooperative
    )
}

fn give_up(
    consumer: &impl Consumer<RebalanceContext>,
    partitions: &TopicPartitionList,
) -> rdkafka::error::KafkaResult<()> {
    if cooperative(consumer) {
        consumer.incremental_unassign(partitions)
    } else {
        consumer.unassign()
    }
}

/// One sink task's consumer.
pub(crate) struct KafkaSinkInput {
    connector: String,
    consumer: StreamConsumer<RebalanceContext>,
    key_converter: Box<dyn Converter>,
    value_converter: Box<dyn Converter>,
    dlq: Option<Arc<DeadLetterQueue>>,
    /// Next offset to consume per partition, for everything handed to the task (or skipped).
    pub(crate) positions: HashMap<TopicPartition, i64>,
    /// The messages behind the records of the last `take`, in order.
    taken: Vec<OwnedMessage>,
    /// Whether anything was taken since the last commit.
    unflushed: bool,
    /// The offsets the group last accepted per partition held (a commit refused during a
    /// rebalance leaves them as they were), for the per-partition figures.
    pub(crate) committed: HashMap<TopicPartition, i64>,
}

/// `error`, saying which message it is about.
fn at_message(message: &OwnedMessage, error: Error) -> Error {
    error.context(format!(
        "record at topic {} partition {} offset {}",
        message.topic(),
        message.partition(),
        message.offset()
    ))
}

fn describe_message(message: &OwnedMessage) -> String {
    format!(
        "{}-{}@{}",
        message.topic(),
        message.partition(),
        message.offset()
    )
}

impl KafkaSinkInput {
    /// Joins the connector's consumer group and subscribes to `topics`.
    pub(crate) async fn new(
        settings: &Arc<KafkaSettings>,
        connector_settings: &ConnectorSettings,
        topics: &TopicFilter,
        task: u32,
        config: &Props,
    ) -> Result<KafkaSinkInput> {
        let connector = connector_settings.name.as_str();
        let mut overrides: Vec<(String, String)> = with_prefix(config, "consumer.override.")
            .into_iter()
            .filter(|(k, _)| k != "group.id")
            .collect();
        // A subscribed topic created after the subscription (its source had not produced
        // yet; or a new topic matching `topics.regex`) is found only when the consumer
        // refreshes its metadata: every 5 min by default (as in Kafka Connect), which leaves it
        // unread that long. Refresh every 5 s unless told otherwise.
        const REFRESH: &str = "topic.metadata.refresh.interval.ms";
        if !settings.consumer.iter().any(|(k, _)| k == REFRESH)
            && !overrides.iter().any(|(k, _)| k == REFRESH)
        {
            overrides.push((REFRESH.to_owned(), "5000".to_owned()));
        }
        // The partitions' high watermarks (records-lag) come from librdkafka's statistics.
        const STATISTICS: &str = "statistics.interval.ms";
        if !settings.consumer.iter().any(|(k, _)| k == STATISTICS)
            && !overrides.iter().any(|(k, _)| k == STATISTICS)
        {
            overrides.push((STATISTICS.to_owned(), "5000".to_owned()));
        }
        let consumer: StreamConsumer<RebalanceContext> = settings
            .consumer_config(&connector_settings.consumer_group, &overrides)
            .create_with_context(RebalanceContext::default())
            .map_err(|e| {
                client_error(
                    &format!("consumer of {connector} (check consumer.* / consumer.override.*)"),
                    e,
                )
            })?;
        let subscription = topics.subscription();
        let topics: Vec<&str> = subscription.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|e| client_error(&format!("subscribe to {topics:?}"), e))?;
        let (key_converter, value_converter) = settings.converters(config)?;
        Ok(KafkaSinkInput {
            connector: connector.to_owned(),
            consumer,
            key_converter,
            value_converter,
            dlq: DeadLetterQueue::of(settings, connector_settings, task)
                .await?
                .map(Arc::new),
            positions: HashMap::new(),
            taken: Vec::new(),
            unflushed: false,
            committed: HashMap::new(),
        })
    }

    /// The reporter a sink task dead-letters records with (`SinkTaskContext::errant_records`):
    /// present when the connector has a dead letter queue.
    pub(crate) fn errant_reporter(
        &self,
        settings: &KafkaSettings,
        config: &Props,
        tolerance: Tolerance,
    ) -> Result<Option<Arc<dyn ErrantRecordReporter>>> {
        let Some(dlq) = self.dlq.clone() else {
            return Ok(None);
        };
        let (key_converter, value_converter) = settings.converters(config)?;
        Ok(Some(Arc::new(ErrantRecords {
            connector: self.connector.clone(),
            dlq,
            key_converter,
            value_converter,
            tolerance,
        })))
    }

    /// Waits for the next message. Cancel-safe: a message is either returned or left in the
    /// consumer, so this can race timers in a `select!`.
    pub(crate) async fn recv(&self) -> Result<OwnedMessage> {
        loop {
            match self.consumer.recv().await {
                Ok(message) => return Ok(message.detach()),
                // A subscribed topic that does not exist yet (its source has not produced, and
                // the broker does not auto-create): wait for it, as Kafka Connect's consumer does.
                Err(KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopicOrPartition)) => {
                    tracing::debug!(connector = %self.connector, "a subscribed topic does not exist yet; waiting for it");
                }
                Err(e) if is_transient_consumer_error(&e) => {
                    tracing::warn!(connector = %self.connector, error = %e, "the broker is out of reach; the consumer reconnects by itself");
                }
                Err(e) => return Err(client_error("consume", e)),
            }
        }
    }

    /// Takes `first` and whatever else is already there (up to `max`), converted into
    /// records. Messages that fail conversion are skipped (and dead-lettered) or fail the batch,
    /// per `tolerance`. The messages behind the returned records are kept, in order, for
    /// [`KafkaSinkInput::dead_letter_taken`]. Not cancel-safe: await it outside `select!`.
    pub(crate) async fn take(
        &mut self,
        first: OwnedMessage,
        max: usize,
        tolerance: &Tolerance,
    ) -> Result<Vec<SinkRecord>> {
        let mut messages = vec![first];
        while messages.len() < max {
            match tokio::time::timeout(Duration::from_millis(1), self.consumer.recv()).await {
                Ok(Ok(message)) => messages.push(message.detach()),
                // What arrived so far goes on; `recv` waits out the outage.
                Ok(Err(e)) if is_transient_consumer_error(&e) => break,
                Ok(Err(e)) => return Err(client_error("consume", e)),
                Err(_) => break,
            }
        }
        // Covered by the next commit, which only follows the `put` and `flush` of this batch.
        for message in &messages {
            let tp = TopicPartition {
                topic: message.topic().to_owned(),
                partition: message.partition(),
            };
            let next = self.positions.entry(tp).or_insert(0);
            *next = (*next).max(message.offset() + 1);
        }
        self.unflushed = true;
        self.taken.clear();
        // `sink-record-read` counts what was read, before conversion, as in Kafka Connect.
        if let Some(stats) = &tolerance.stats {
            stats.taken(messages.len(), Duration::ZERO);
        }
        let mut records = Vec::with_capacity(messages.len());
        for message in messages {
            match self.convert(&message) {
                Ok(record) => {
                    records.push(SinkRecord {
                        record,
                        kafka_partition: message.partition(),
                        kafka_offset: message.offset(),
                    });
                    self.taken.push(message);
                }
                Err((stage, error)) => {
                    let error = at_message(&message, error);
                    let describe = || describe_message(&message);
                    tolerance.handle(&self.connector, stage, &error, describe)?;
                    self.dead_letter(&message, stage, &error).await?;
                }
            }
        }
        Ok(records)
    }

    /// Dead-letters the message behind record `index` of the last [`KafkaSinkInput::take`].
    pub(crate) async fn dead_letter_taken(
        &self,
        index: usize,
        stage: &str,
        error: &Error,
    ) -> Result<()> {
        match self.taken.get(index) {
            Some(message) => self.dead_letter(message, stage, error).await,
            None => Ok(()),
        }
    }

    /// Whether anything was taken since the last commit.
    pub(crate) fn has_unflushed(&self) -> bool {
        self.unflushed
    }

    /// The record a message holds, per the connector's converters; the error says which
    /// converter failed.
    fn convert(
        &self,
        message: &OwnedMessage,
    ) -> std::result::Result<Record, (&'static str, Error)> {
        let topic = message.topic();
        let (key_schema, key) = self
            .key_converter
            .deserialize(topic, message.key())
            .map_err(|e| ("KEY_CONVERTER", e))?;
        let (value_schema, value) = self
            .value_converter
            .deserialize(topic, message.payload())
            .map_err(|e| ("VALUE_CONVERTER", e))?;
        Ok(Record {
            topic: topic.into(),
            partition: Some(message.partition()),
            key,
            key_schema,
            value,
            value_schema,
            timestamp_ms: message.timestamp().to_millis(),
            headers: message
                .headers()
                .map(|headers| {
                    headers
                        .iter()
                        .map(|h| Header {
                            key: h.key.into(),
                            value: h
                                .value
                                .map(|b| Value::from(String::from_utf8_lossy(b).into_owned()))
                                .unwrap_or(Value::Null),
                            schema: None,
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// Writes `message`, which failed at `stage`, to the dead letter queue as it was received.
    async fn dead_letter(&self, message: &OwnedMessage, stage: &str, error: &Error) -> Result<()> {
        let Some(dlq) = &self.dlq else { return Ok(()) };
        let original = Original {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            headers: message
                .headers()
                .map(|headers| {
                    headers
                        .iter()
                        .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                        .collect()
                })
                .unwrap_or_default(),
        };
        dlq.send(&original, stage, error).await
    }

    /// The partitions' high watermarks, from the consumer's statistics.
    pub(crate) fn high_watermarks(&self) -> HighWatermarks {
        Arc::clone(&self.consumer.context().high_watermarks)
    }

    /// Commits `positions` (after a successful flush).
    pub(crate) fn commit(&mut self) -> Result<()> {
        self.unflushed = false;
        if self.positions.is_empty() {
            return Ok(());
        }
        let mut list = TopicPartitionList::new();
        for (tp, next) in &self.positions {
            list.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(*next))
                .map_err(|e| client_error("commit", e))?;
        }
        match self.consumer.commit(&list, CommitMode::Sync) {
            Ok(()) => {
                self.committed.clone_from(&self.positions);
                Ok(())
            }
            Err(e) if self.revoking().is_some() => {
                // The group is rebalancing; a broker may refuse commits meanwhile. At least
                // once still holds: the next owner reads again from the last commit.
                tracing::warn!(connector = %self.connector, error = %e, "committing before giving partitions up failed; their next owner re-reads from the last commit");
                Ok(())
            }
            Err(e) => Err(client_error("commit consumer offsets", e)),
        }
    }

    fn revoking(&self) -> std::sync::MutexGuard<'_, Option<TopicPartitionList>> {
        self.consumer
            .context()
            .revoking
            .lock()
            .expect("rebalance lock")
    }

    /// Waits until a rebalance asks for partitions back. Cancel-safe.
    pub(crate) async fn revoke_requested(&self) {
        self.consumer.context().revoke_requested.notified().await
    }

    /// Gives back the partitions a rebalance asked for; call after the task flushed them and
    /// their offsets were committed.
    pub(crate) fn release_revoked(&mut self) -> Result<()> {
        let Some(partitions) = self.revoking().take() else {
            return Ok(());
        };
        let kept =
            |tp: &TopicPartition| partitions.find_partition(&tp.topic, tp.partition).is_none();
        self.positions.retain(|tp, _| kept(tp));
        self.committed.retain(|tp, _| kept(tp));
        give_up(&self.consumer, &partitions)
            .map_err(|e| client_error("give up revoked partitions", e))
    }

    /// Stops fetching (pause) or starts again (resume).
    pub(crate) fn set_paused(&self, paused: bool) -> Result<()> {
        let assignment = self
            .consumer
            .assignment()
            .map_err(|e| client_error("assignment", e))?;
        let result = if paused {
            self.consumer.pause(&assignment)
        } else {
            self.consumer.resume(&assignment)
        };
        result.map_err(|e| client_error(if paused { "pause" } else { "resume" }, e))
    }
}

impl Drop for KafkaSinkInput {
    fn drop(&mut self) {
        // Closing the consumer revokes everything and waits for the unassign: make it at once.
        self.consumer
            .context()
            .closing
            .store(true, Ordering::Release);
        if let Err(e) = self.release_revoked() {
            tracing::debug!(error = %e.message(), "giving up partitions while closing");
        }
    }
}

/// Dead-letters what a sink task reports, re-serialized with the connector's converters (the
/// task holds the converted record, as Kafka Connect's reporter does for records it did not
/// read itself), at stage `TASK_PUT`.
struct ErrantRecords {
    connector: String,
    dlq: Arc<DeadLetterQueue>,
    key_converter: Box<dyn Converter>,
    value_converter: Box<dyn Converter>,
    tolerance: Tolerance,
}

impl std::fmt::Debug for ErrantRecords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErrantRecords")
            .field("connector", &self.connector)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl ErrantRecordReporter for ErrantRecords {
    async fn report(&self, record: &SinkRecord, error: &Error) -> Result<()> {
        const STAGE: &str = "TASK_PUT";
        let inner = &record.record;
        let describe = || {
            format!(
                "{}-{}@{}",
                inner.topic, record.kafka_partition, record.kafka_offset
            )
        };
        self.tolerance
            .handle(&self.connector, STAGE, error, describe)?;
        let key =
            self.key_converter
                .serialize(&inner.topic, inner.key_schema.as_deref(), &inner.key)?;
        let value = self.value_converter.serialize(
            &inner.topic,
            inner.value_schema.as_deref(),
            &inner.value,
        )?;
        let original = Original {
            topic: inner.topic.to_string(),
            partition: record.kafka_partition,
            offset: record.kafka_offset,
            key,
            value,
            headers: inner
                .headers
                .iter()
                .map(|h| {
                    let value = match &h.value {
                        Value::Null => None,
                        Value::String(s) => Some(s.as_bytes().to_vec()),
                        other => Some(
                            sluice_api::json::value_to_json(other)
                                .to_string()
                                .into_bytes(),
                        ),
                    };
                    (h.key.to_string(), value)
                })
                .collect(),
        };
        self.dlq.send(&original, STAGE, error).await
    }
}
