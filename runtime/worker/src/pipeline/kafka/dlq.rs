//! Dead letter queues (`errors.deadletterqueue.topic.name`) for sinks, as in Kafka Connect,
//! and — beyond Kafka Connect — for sources. With
//! `errors.deadletterqueue.context.headers.enable=true` each dead letter carries Kafka
//! Connect's `__connect.errors.*` headers saying where it came from and why it failed.

use std::sync::Arc;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sluice_api::{Error, ErrorKind, Result};

use super::{KafkaSettings, client_error, ensure_topic};
use crate::config::ConnectorSettings;

/// The record that failed, as it was read (sinks) or as it would have been written (sources).
#[derive(Debug, Clone, Default)]
pub(crate) struct Original {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// A connector task's dead letter queue.
pub(crate) struct DeadLetterQueue {
    topic: String,
    producer: FutureProducer,
    context_headers: bool,
    connector: String,
    task: u32,
    /// Where `deadletterqueue-produce-requests|failures` are counted.
    stats: Option<Arc<crate::metrics::TaskStats>>,
}

impl DeadLetterQueue {
    /// The queue a connector config asks for, if any; creates its topic when missing.
    pub(crate) async fn of(
        settings: &Arc<KafkaSettings>,
        connector: &ConnectorSettings,
        task: u32,
    ) -> Result<Option<DeadLetterQueue>> {
        let Some(dlq) = &connector.dead_letter else {
            return Ok(None);
        };
        ensure_topic(
            &settings.admin()?,
            &dlq.topic,
            1,
            dlq.replication_factor,
            &[],
        )
        .await?;
        let producer = settings
            .producer_config(&[])
            .create()
            .map_err(|e| client_error("dead letter queue producer", e))?;
        Ok(Some(DeadLetterQueue {
            topic: dlq.topic.clone(),
            producer,
            context_headers: dlq.context_headers,
            connector: connector.name.clone(),
            task,
            stats: connector.tolerance.stats.clone(),
        }))
    }

    /// Writes a dead letter and waits until Kafka has it, so the failed record's offset may be
    /// committed afterwards.
    pub(crate) async fn send(&self, original: &Original, stage: &str, error: &Error) -> Result<()> {
        let mut headers = OwnedHeaders::new();
        for (key, value) in &original.headers {
            headers = headers.insert(Header {
                key,
                value: value.as_deref(),
            });
        }
        if self.context_headers {
            let exception_class = match error.kind() {
                ErrorKind::Data => "org.apache.kafka.connect.errors.DataException",
                ErrorKind::Retriable => "org.apache.kafka.connect.errors.RetriableException",
                _ => "org.apache.kafka.connect.errors.ConnectException",
            };
            let context = [
                ("__connect.errors.topic", original.topic.clone()),
                ("__connect.errors.partition", original.partition.to_string()),
                ("__connect.errors.offset", original.offset.to_string()),
                ("__connect.errors.connector.name", self.connector.clone()),
                ("__connect.errors.task.id", self.task.to_string()),
                ("__connect.errors.stage", stage.to_owned()),
                ("__connect.errors.class.name", "sluice".to_owned()),
                (
                    "__connect.errors.exception.class.name",
                    exception_class.to_owned(),
                ),
                (
                    "__connect.errors.exception.message",
                    error.message().to_owned(),
                ),
                ("__connect.errors.exception.stacktrace", error.trace()),
            ];
            for (key, value) in &context {
                headers = headers.insert(Header {
                    key,
                    value: Some(value.as_bytes()),
                });
            }
        }
        let mut record = FutureRecord::<Vec<u8>, Vec<u8>>::to(&self.topic).headers(headers);
        if let Some(key) = &original.key {
            record = record.key(key);
        }
        if let Some(value) = &original.value {
            record = record.payload(value);
        }
        let sent = self
            .producer
            .send(record, std::time::Duration::from_secs(30))
            .await;
        if let Some(stats) = &self.stats {
            stats.dead_lettered(sent.is_ok());
        }
        match sent {
            Ok(_) => Ok(()),
            Err((e, _)) => Err(client_error(
                &format!("write to dead letter queue {}", self.topic),
                e,
            )),
        }
    }
}
