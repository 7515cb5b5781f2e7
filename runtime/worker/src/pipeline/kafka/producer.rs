//! The source side of the Kafka transport: converted records go to an idempotent producer
//! (`acks=all`); a poll batch is acknowledged — and its offsets become committable — only when
//! Kafka has acknowledged every record of it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use sluice_api::Result;
use sluice_api::config::{Props, with_prefix};
use sluice_api::convert::Converter;
use sluice_api::data::Value;
use sluice_api::json::value_to_json_text;
use sluice_api::record::Record;

use super::dlq::{DeadLetterQueue, Original};
use super::latency::Histogram;
use super::{KafkaSettings, client_error, ensure_topic};
use crate::config::ConnectorSettings;
use crate::config::tolerance::Tolerance;
use crate::pipeline::ack::{AckTracker, PartitionOffsets};
use crate::pipeline::topics::TopicCreation;

/// Poll batches a task may have in flight to Kafka before it waits (bounds memory).
const MAX_BATCHES_IN_FLIGHT: usize = 32;

/// One source task's way into Kafka.
pub(crate) struct KafkaSource {
    connector: String,
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
    key_converter: Box<dyn Converter>,
    value_converter: Box<dyn Converter>,
    creation: TopicCreation,
    known_topics: HashSet<String>,
    dlq: Option<DeadLetterQueue>,
    /// Time from handing a record to the producer to its acknowledgement.
    pub latency: Arc<Histogram>,
}

fn header_bytes(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Bytes(b) => Some(b.clone()),
        other => Some(value_to_json_text(other).into_bytes()),
    }
}

impl KafkaSource {
    /// Creates the producer for a source task of `connector` (with its `producer.override.*`).
    pub(crate) async fn new(
        settings: &Arc<KafkaSettings>,
        connector_settings: &ConnectorSettings,
        task: u32,
        config: &Props,
    ) -> Result<KafkaSource> {
        let connector = connector_settings.name.as_str();
        let overrides: Vec<(String, String)> = with_prefix(config, "producer.override.")
            .into_iter()
            .collect();
        let producer = settings.producer_config(&overrides).create().map_err(|e| {
            client_error(
                &format!("producer of {connector} (check producer.* / producer.override.*)"),
                e,
            )
        })?;
        let (key_converter, value_converter) = settings.converters(config)?;
        Ok(KafkaSource {
            connector: connector.to_owned(),
            producer,
            admin: settings.admin()?,
            key_converter,
            value_converter,
            creation: connector_settings.topic_creation.clone(),
            known_topics: HashSet::new(),
            dlq: DeadLetterQueue::of(settings, connector_settings, task).await?,
            latency: Arc::new(Histogram::default()),
        })
    }

    async fn ensure_topic(&mut self, topic: &str) -> Result<()> {
        if self.known_topics.contains(topic) {
            return Ok(());
        }
        let configs: Vec<(&str, &str)> = self
            .creation
            .configs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        ensure_topic(
            &self.admin,
            topic,
            self.creation.partitions,
            self.creation.replication_factor,
            &configs,
        )
        .await?;
        self.known_topics.insert(topic.to_owned());
        Ok(())
    }

    /// Produces one poll batch's records and registers the batch with `tracker`, which is
    /// acknowledged once every record is in Kafka (or nacked if any cannot be delivered).
    pub(crate) async fn send(
        &mut self,
        records: Vec<Record>,
        offsets: PartitionOffsets,
        tracker: &Arc<AckTracker>,
        tolerance: &Tolerance,
    ) -> Result<()> {
        while tracker.outstanding() >= MAX_BATCHES_IN_FLIGHT && tracker.failure().is_none() {
            let _ = tokio::time::timeout(Duration::from_millis(50), tracker.progressed()).await;
        }
        let mut deliveries: Vec<(DeliveryFuture, Instant)> = Vec::with_capacity(records.len());
        for record in records {
            let converted = self
                .key_converter
                .serialize(&record.topic, record.key_schema.as_deref(), &record.key)
                .map_err(|e| ("KEY_CONVERTER", e))
                .and_then(|key| {
                    self.value_converter
                        .serialize(&record.topic, record.value_schema.as_deref(), &record.value)
                        .map(|value| (key, value))
                        .map_err(|e| ("VALUE_CONVERTER", e))
                });
            let (key, value) = match converted {
                Ok(converted) => converted,
                Err((stage, error)) => {
                    tolerance.handle(&self.connector, stage, &error, || format!("{record:?}"))?;
                    self.dead_letter(&record, stage, &error).await?;
                    continue;
                }
            };
            self.ensure_topic(&record.topic).await?;
            let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
            for header in &record.headers {
                let bytes = header_bytes(&header.value);
                headers = headers.insert(Header {
                    key: &header.key,
                    value: bytes.as_deref(),
                });
            }
            let mut message = FutureRecord::<Vec<u8>, Vec<u8>>::to(&record.topic).headers(headers);
            if let Some(key) = &key {
                message = message.key(key);
            }
            if let Some(value) = &value {
                message = message.payload(value);
            }
            if let Some(timestamp) = record.timestamp_ms {
                message = message.timestamp(timestamp);
            }
            if let Some(partition) = record.partition {
                message = message.partition(partition);
            }
            loop {
                match self.producer.send_result(message) {
                    Ok(delivery) => {
                        deliveries.push((delivery, Instant::now()));
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                        // The producer's queue is full: let deliveries drain, then retry.
                        message = returned;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((error, _)) => {
                        return Err(client_error(&format!("produce to {}", record.topic), error));
                    }
                }
            }
        }
        let seq = tracker.register(offsets, u32::from(!deliveries.is_empty()));
        if deliveries.is_empty() {
            return Ok(());
        }
        let tracker = Arc::clone(tracker);
        let latency = Arc::clone(&self.latency);
        tokio::spawn(async move {
            for (delivery, sent) in deliveries {
                match delivery.await {
                    Ok(Ok(_)) => latency.record(sent.elapsed()),
                    Ok(Err((error, _))) => {
                        tracker.nack(format!("Kafka did not take a record: {error}"));
                        return;
                    }
                    Err(_) => {
                        tracker.nack("the producer was dropped before delivering");
                        return;
                    }
                }
            }
            tracker.ack(seq);
        });
        Ok(())
    }

    /// True when the connector has a dead letter queue.
    pub(crate) fn has_dead_letter_queue(&self) -> bool {
        self.dlq.is_some()
    }

    /// Writes a record that failed at `stage` to the dead letter queue, if there is one. A
    /// source record has no bytes of its own yet, so the key and value go as JSON.
    pub(crate) async fn dead_letter(
        &self,
        record: &Record,
        stage: &str,
        error: &sluice_api::Error,
    ) -> Result<()> {
        let Some(dlq) = &self.dlq else { return Ok(()) };
        let original = Original {
            topic: record.topic.to_string(),
            partition: record.partition.unwrap_or(-1),
            offset: -1,
            key: (!record.key.is_null()).then(|| value_to_json_text(&record.key).into_bytes()),
            value: (!record.value.is_null())
                .then(|| value_to_json_text(&record.value).into_bytes()),
            headers: record
                .headers
                .iter()
                .map(|h| (h.key.to_string(), header_bytes(&h.value)))
                .collect(),
        };
        dlq.send(&original, stage, error).await
    }
}
