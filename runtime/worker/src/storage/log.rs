//! An internal topic read to its end and written durably: the analogue of Kafka Connect's
//! `KafkaBasedLog`, under the offset, config and status stores (compacted) and the schema
//! history topics (every record kept).
//!
//! Reads are incremental: one consumer stays assigned to every partition, and each
//! [`KafkaLog::read_to_end`] returns only what arrived since the previous one, with the offset
//! it reached — distributed mode uses the config topic's as its config offset.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminOptions, ResourceSpecifier};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use sluice_api::{Error, Result};

use crate::pipeline::kafka::{KafkaSettings, client_error, ensure_topic};

/// One record of a log: key bytes and value bytes (`None`: a tombstone).
pub type LogEntry = (Vec<u8>, Option<Vec<u8>>);

/// What one [`KafkaLog::read_to_end`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogRead {
    /// The records since the previous read, in partition order.
    pub entries: Vec<LogEntry>,
    /// The partition and offset of each of `entries` (same order), for warnings that name
    /// a record.
    pub origins: Vec<(i32, i64)>,
    /// Per partition, the offset of the last record read so far plus one (-1: none yet);
    /// every partition of the topic is listed.
    pub positions: BTreeMap<i32, i64>,
}

impl LogRead {
    /// The position reached in partition 0 (the only one of the config topic): the last
    /// offset read plus one, or -1 for an empty topic — Kafka Connect's config offset.
    pub fn offset(&self) -> i64 {
        self.positions.get(&0).copied().unwrap_or(-1)
    }

    /// Warns that entry `index` of this read of `topic` was skipped (`why`), naming its key,
    /// partition and offset, so an operator can find the record.
    pub fn warn_skipped(&self, index: usize, topic: &str, key: &str, why: &str) {
        let (partition, offset) = self.origins.get(index).copied().unwrap_or((-1, -1));
        tracing::warn!(topic, key = %key, partition, offset, "{why}");
    }
}

/// What the topic must look like to serve as this log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicRules {
    /// Partitions to create it with.
    pub partitions: i32,
    /// Replication factor to create it with (-1: the broker's default).
    pub replication_factor: i32,
    /// An existing topic must have exactly `partitions` partitions (the config topic: one,
    /// so that its records stay in order).
    pub exact_partitions: bool,
    /// How the broker is to keep the topic's records.
    pub cleanup: Cleanup,
}

/// How the broker keeps a log's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleanup {
    /// `cleanup.policy=compact`: the last record of each key (offsets, configs, statuses).
    Compact,
    /// `cleanup.policy=delete` with unlimited time and size retention: every record, written
    /// without a key (a schema history topic, which a compacted topic would refuse).
    KeepAll,
}

impl Cleanup {
    /// The topic configs a new topic is created with.
    fn topic_configs(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Cleanup::Compact => &[("cleanup.policy", "compact")],
            Cleanup::KeepAll => &[
                ("cleanup.policy", "delete"),
                ("retention.ms", "-1"),
                ("retention.bytes", "-1"),
            ],
        }
    }
}

/// The reader's consumer and where it stands in each partition.
struct Reader {
    consumer: BaseConsumer,
    positions: BTreeMap<i32, i64>,
}

/// An internal topic.
pub struct KafkaLog {
    topic: String,
    producer: FutureProducer,
    reader: Arc<Mutex<Reader>>,
}

impl KafkaLog {
    /// The topic's name.
    pub fn topic(&self) -> &str {
        &self.topic
    }
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLog")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl KafkaLog {
    /// Opens the log: creates the topic as [`TopicRules::cleanup`] says when it is missing, and
    /// verifies it when it exists (its cleanup policy; with [`TopicRules::exact_partitions`],
    /// the partition count), failing with a message naming the topic, what is wrong and the fix.
    pub async fn open(
        settings: Arc<KafkaSettings>,
        topic: &str,
        rules: TopicRules,
    ) -> Result<KafkaLog> {
        let admin = settings.admin()?;
        let created = match ensure_topic(
            &admin,
            topic,
            rules.partitions,
            rules.replication_factor,
            rules.cleanup.topic_configs(),
        )
        .await
        {
            Err(e) if e.message().contains("Timed out") => {
                return Err(settings.explain_timeout(e).await);
            }
            created => created?,
        };
        // A read to the end asks for records it knows are there; a fetch held by the broker
        // for fetch.wait.max.ms (500 ms by default) would only delay it, and every reader of
        // the config and status views waits behind it.
        let quick_fetch = [("fetch.wait.max.ms".to_owned(), "10".to_owned())];
        let consumer: BaseConsumer = settings
            .consumer_config(&format!("sluice-log-reader-{topic}"), &quick_fetch)
            .create()
            .map_err(|e| client_error(&format!("reader of {topic}"), e))?;
        let name = topic.to_owned();
        let (consumer, partitions) = tokio::task::spawn_blocking(move || {
            let partitions = partitions_of(&consumer, &name);
            (consumer, partitions)
        })
        .await
        .map_err(|e| Error::fatal(format!("reading the partitions of {topic}: {e}")))?;
        let partitions = partitions?;
        if !created {
            verify(&admin, topic, rules, partitions.len()).await?;
        }
        let mut assignment = TopicPartitionList::new();
        for partition in &partitions {
            assignment
                .add_partition_offset(topic, *partition, Offset::Beginning)
                .map_err(|e| client_error("assign", e))?;
        }
        consumer
            .assign(&assignment)
            .map_err(|e| client_error(&format!("assign {topic}"), e))?;
        let producer = settings
            .producer_config(&[])
            .create()
            .map_err(|e| client_error(&format!("producer for {topic}"), e))?;
        Ok(KafkaLog {
            topic: topic.to_owned(),
            producer,
            reader: Arc::new(Mutex::new(Reader {
                consumer,
                positions: partitions.into_iter().map(|p| (p, -1)).collect(),
            })),
        })
    }

    /// Writes entries in order; durable (acknowledged by all in-sync replicas) on `Ok`.
    pub async fn write(&self, entries: Vec<LogEntry>) -> Result<()> {
        let mut deliveries = Vec::with_capacity(entries.len());
        for (key, value) in &entries {
            let mut record = FutureRecord::<Vec<u8>, Vec<u8>>::to(&self.topic).key(key);
            if let Some(value) = value {
                record = record.payload(value);
            }
            deliveries.push(self.send(record)?);
        }
        self.delivered(deliveries).await
    }

    /// Writes values without a key (a [`Cleanup::KeepAll`] log), in order; durable on `Ok`.
    pub async fn write_unkeyed(&self, values: &[Vec<u8>]) -> Result<()> {
        let mut deliveries = Vec::with_capacity(values.len());
        for value in values {
            deliveries
                .push(self.send(FutureRecord::<Vec<u8>, Vec<u8>>::to(&self.topic).payload(value))?);
        }
        self.delivered(deliveries).await
    }

    fn send(
        &self,
        record: FutureRecord<'_, Vec<u8>, Vec<u8>>,
    ) -> Result<rdkafka::producer::DeliveryFuture> {
        self.producer
            .send_result(record)
            .map_err(|(e, _)| client_error(&format!("write to {}", self.topic), e))
    }

    /// Waits for every delivery, in order.
    async fn delivered(&self, deliveries: Vec<rdkafka::producer::DeliveryFuture>) -> Result<()> {
        for delivery in deliveries {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => {
                    return Err(client_error(&format!("write to {}", self.topic), e));
                }
                Err(_) => {
                    return Err(Error::retriable(format!(
                        "write to {} was cancelled",
                        self.topic
                    )));
                }
            }
        }
        Ok(())
    }

    /// Per partition, the offset of the first record the broker still holds (above 0 once
    /// retention or compaction deleted records).
    pub async fn first_offsets(&self) -> Result<BTreeMap<i32, i64>> {
        let topic = self.topic.clone();
        let reader = Arc::clone(&self.reader);
        tokio::task::spawn_blocking(move || {
            let reader = reader
                .lock()
                .map_err(|_| Error::fatal(format!("an earlier read of {topic} panicked")))?;
            let mut first = BTreeMap::new();
            for partition in reader.positions.keys() {
                let (low, _) = reader
                    .consumer
                    .fetch_watermarks(&topic, *partition, TIMEOUT)
                    .map_err(|e| client_error(&format!("first offsets of {topic}"), e))?;
                first.insert(*partition, low);
            }
            Ok(first)
        })
        .await
        .map_err(|e| Error::fatal(format!("reading {}: {e}", self.topic)))?
    }

    /// The entries written since the previous call (every entry, the first time), up to the
    /// topic's end as it is now, and the positions reached.
    pub async fn read_to_end(&self) -> Result<LogRead> {
        let topic = self.topic.clone();
        let reader = Arc::clone(&self.reader);
        tokio::task::spawn_blocking(move || {
            let mut reader = reader
                .lock()
                .map_err(|_| Error::fatal(format!("an earlier read of {topic} panicked")))?;
            read_blocking(&topic, &mut reader)
        })
        .await
        .map_err(|e| Error::fatal(format!("reading {}: {e}", self.topic)))?
    }
}

const TIMEOUT: Duration = Duration::from_secs(30);

fn partitions_of(consumer: &BaseConsumer, topic: &str) -> Result<Vec<i32>> {
    let metadata = consumer
        .fetch_metadata(Some(topic), TIMEOUT)
        .map_err(|e| client_error(&format!("metadata of {topic}"), e))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(Error::retriable(format!(
            "the broker lists no partitions of {topic}"
        )));
    }
    Ok(partitions)
}

/// Checks an existing internal topic against `rules`.
async fn verify(
    admin: &rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext>,
    topic: &str,
    rules: TopicRules,
    partitions: usize,
) -> Result<()> {
    if rules.exact_partitions && partitions != rules.partitions as usize {
        let (what, key) = match rules.cleanup {
            Cleanup::Compact => ("Kafka Connect's config topic", "config.storage.topic"),
            Cleanup::KeepAll => (
                "a schema history topic",
                "schema.history.internal.kafka.topic",
            ),
        };
        return Err(Error::config(format!(
            "topic {topic} has {partitions} partitions, but it must have exactly {}: {what} \
             keeps its records in one order. Delete it (or point {key} at a new name) and let \
             sluice create it",
            rules.partitions
        )));
    }
    let options = AdminOptions::new().request_timeout(Some(TIMEOUT));
    let described = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], &options)
        .await
        .map_err(|e| client_error(&format!("describe configs of {topic}"), e))?;
    let entries: Vec<_> = described
        .into_iter()
        .filter_map(|resource| resource.ok())
        .flat_map(|resource| resource.entries)
        .collect();
    let setting = |name: &str| {
        entries
            .iter()
            .find(|entry| entry.name == name)
            .and_then(|entry| entry.value.clone())
    };
    if rules.cleanup == Cleanup::KeepAll {
        // A finite retention deletes the history's first records in time, and with them the
        // schemas of tables that never changed since.
        for key in ["retention.ms", "retention.bytes"] {
            if let Some(value) = setting(key).filter(|v| v.parse::<i64>().is_ok_and(|n| n >= 0)) {
                tracing::warn!(
                    topic,
                    "{key}={value}: the schema history topic will lose its first records in time; set \
                     {key}=-1 (kafka-configs --alter --entity-type topics --entity-name {topic} \
                     --add-config {key}=-1)"
                );
            }
        }
    }
    let policy = setting("cleanup.policy");
    let compacted = |policy: &str| policy.split(',').any(|p| p.trim() == "compact");
    match (rules.cleanup, policy) {
        (Cleanup::KeepAll, Some(policy)) if compacted(&policy) => Err(Error::config(format!(
            "topic {topic} has cleanup.policy={policy}, but a schema history topic must keep \
             every record, and a compacted topic refuses its records, which have no key. Fix it \
             with `kafka-configs --alter --entity-type topics --entity-name {topic} \
             --add-config cleanup.policy=delete,retention.ms=-1`, or point \
             schema.history.internal.kafka.topic at a new name and let sluice create it"
        ))),
        (Cleanup::KeepAll, _) => Ok(()),
        (Cleanup::Compact, Some(policy)) if compacted(&policy) => Ok(()),
        (Cleanup::Compact, Some(policy)) => Err(Error::config(format!(
            "topic {topic} has cleanup.policy={policy}, but sluice's internal topics must be \
             compacted, or old configs, offsets and statuses are deleted with time. Fix it \
             with `kafka-configs --alter --entity-type topics --entity-name {topic} \
             --add-config cleanup.policy=compact`, or delete the topic and let the worker \
             create it"
        ))),
        (Cleanup::Compact, None) => {
            // A broker that does not report the setting cannot be checked: say so once.
            tracing::warn!(
                topic,
                "the broker did not report cleanup.policy of this internal topic; it must be compact"
            );
            Ok(())
        }
    }
}

fn read_blocking(topic: &str, reader: &mut Reader) -> Result<LogRead> {
    let mut remaining = Vec::new();
    for (partition, position) in &reader.positions {
        let (low, high) = reader
            .consumer
            .fetch_watermarks(topic, *partition, TIMEOUT)
            .map_err(|e| client_error(&format!("end offsets of {topic}"), e))?;
        let next = (*position).max(low);
        if high > next {
            remaining.push((*partition, high));
        }
    }
    let mut entries = Vec::new();
    let mut origins = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let Reader {
        consumer,
        positions,
    } = reader;
    let mut take = |message: rdkafka::message::BorrowedMessage<'_>| {
        entries.push((
            message.key().unwrap_or_default().to_vec(),
            message.payload().map(<[u8]>::to_vec),
        ));
        let (partition, offset) = (message.partition(), message.offset());
        positions.insert(partition, offset + 1);
        origins.push((partition, offset));
        (partition, offset)
    };
    while !remaining.is_empty() {
        if Instant::now() > deadline {
            return Err(Error::retriable(format!(
                "timed out reading {topic} to its end"
            )));
        }
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.map_err(|e| client_error(&format!("read {topic}"), e))?;
        let (partition, offset) = take(message);
        remaining.retain(|(p, high)| !(*p == partition && offset + 1 >= *high));
    }
    // Tansu 0.6 reports as a partition's end the base offset of its last record batch plus
    // one, not its last offset plus one (Kafka's log end offset): after a batch of three
    // records at 0-2 it answers 1. The rest of that batch came in the same fetch, so take
    // whatever is already fetched, without waiting; on Kafka this finds nothing more.
    while let Some(message) = consumer.poll(Duration::ZERO) {
        let message = message.map_err(|e| client_error(&format!("read {topic}"), e))?;
        take(message);
    }
    Ok(LogRead {
        entries,
        origins,
        positions: positions.clone(),
    })
}
