//! A compacted topic read to its end and written durably: the analogue of Kafka Connect's
//! `KafkaBasedLog`, under the offset, config and status stores.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use sluice_api::{Error, Result};

use super::{KafkaSettings, client_error, ensure_topic};

/// One record of a log: key bytes and value bytes (`None`: a tombstone).
pub type LogEntry = (Vec<u8>, Option<Vec<u8>>);

/// A compacted topic.
pub struct KafkaLog {
    topic: String,
    settings: Arc<KafkaSettings>,
    producer: FutureProducer,
}

impl KafkaLog {
    /// Opens the log, creating the topic compacted when it is missing.
    pub async fn open(
        settings: Arc<KafkaSettings>,
        topic: &str,
        partitions: i32,
        replication_factor: i32,
    ) -> Result<KafkaLog> {
        let admin = settings.admin()?;
        ensure_topic(
            &admin,
            topic,
            partitions,
            replication_factor,
            &[("cleanup.policy", "compact")],
        )
        .await?;
        let producer = settings
            .producer_config(&[])
            .create()
            .map_err(|e| client_error(&format!("producer for {topic}"), e))?;
        Ok(KafkaLog {
            topic: topic.to_owned(),
            settings,
            producer,
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
            let delivery = self
                .producer
                .send_result(record)
                .map_err(|(e, _)| client_error(&format!("write to {}", self.topic), e))?;
            deliveries.push(delivery);
        }
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

    /// Every entry from the beginning to the current end, in partition order.
    pub async fn read_to_end(&self) -> Result<Vec<LogEntry>> {
        let topic = self.topic.clone();
        let config = self
            .settings
            .consumer_config(&format!("sluice-log-reader-{topic}"), &[]);
        tokio::task::spawn_blocking(move || read_blocking(&topic, config))
            .await
            .map_err(|e| Error::fatal(format!("reading {}: {e}", "log")))?
    }
}

fn read_blocking(topic: &str, config: ClientConfig) -> Result<Vec<LogEntry>> {
    let consumer: BaseConsumer = config
        .create()
        .map_err(|e| client_error(&format!("reader of {topic}"), e))?;
    let timeout = Duration::from_secs(30);
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| client_error(&format!("metadata of {topic}"), e))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut remaining = Vec::new();
    let mut assignment = TopicPartitionList::new();
    for partition in partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, timeout)
            .map_err(|e| client_error(&format!("end offsets of {topic}"), e))?;
        if high > low {
            assignment
                .add_partition_offset(topic, partition, Offset::Beginning)
                .map_err(|e| client_error("assign", e))?;
            remaining.push((partition, high));
        }
    }
    let mut entries = Vec::new();
    if remaining.is_empty() {
        return Ok(entries);
    }
    consumer
        .assign(&assignment)
        .map_err(|e| client_error(&format!("assign {topic}"), e))?;
    let deadline = Instant::now() + Duration::from_secs(120);
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
        entries.push((
            message.key().unwrap_or_default().to_vec(),
            message.payload().map(<[u8]>::to_vec),
        ));
        let (partition, offset) = (message.partition(), message.offset());
        remaining.retain(|(p, high)| !(*p == partition && offset + 1 >= *high));
    }
    Ok(entries)
}
