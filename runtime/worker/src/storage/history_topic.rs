//! Debezium's schema history topic (`schema.history.internal.kafka.topic`) as source tasks see
//! it ([`HistoryTopics`]): a one-partition topic that keeps every record, written unkeyed as
//! Debezium's `KafkaSchemaHistory` writes it (the record's JSON text as the value).

use std::sync::Arc;

use async_trait::async_trait;
use sluice_api::config::Props;
use sluice_api::connector::{HistoryTopic, HistoryTopics};
use sluice_api::{Error, Result};

use super::log::{Cleanup, KafkaLog, TopicRules};
use crate::pipeline::kafka::KafkaSettings;

/// Opens history topics on the worker's Kafka, or on the brokers a connector names.
#[derive(Debug)]
pub struct KafkaHistoryTopics {
    /// The worker's Kafka settings: brokers, security, `producer.*`, `consumer.*`.
    worker: Arc<KafkaSettings>,
}

impl KafkaHistoryTopics {
    /// History topics on the Kafka `worker` settings name, unless a connector names brokers.
    pub fn new(worker: Arc<KafkaSettings>) -> KafkaHistoryTopics {
        KafkaHistoryTopics { worker }
    }
}

#[async_trait]
impl HistoryTopics for KafkaHistoryTopics {
    async fn open(&self, topic: &str, client: &Props) -> Result<Box<dyn HistoryTopic>> {
        let settings = match client
            .get("bootstrap.servers")
            .filter(|b| !b.trim().is_empty())
        {
            // Brokers of the connector's own, as Debezium's KafkaSchemaHistory uses them: with
            // the connector's client settings only (`producer.*` also serves the admin client,
            // as in Debezium), none of the worker's.
            Some(brokers) => {
                let mut props = client.clone();
                for (key, value) in client {
                    if let Some(setting) = key.strip_prefix("producer.") {
                        props.insert(format!("admin.{setting}"), value.clone());
                    }
                }
                let brokers: Vec<String> =
                    brokers.split(',').map(|b| b.trim().to_owned()).collect();
                KafkaSettings::from_worker(&props, &brokers)?
            }
            None => self.worker.with_client_overrides(client)?,
        };
        let rules = TopicRules {
            partitions: 1,
            replication_factor: -1,
            exact_partitions: true,
            cleanup: Cleanup::KeepAll,
        };
        let log = KafkaLog::open(Arc::new(settings), topic, rules).await?;
        if let Some((partition, first)) = log
            .first_offsets()
            .await?
            .into_iter()
            .find(|(_, first)| *first > 0)
        {
            // Not refused: snapshot.mode=recovery, the way out, must be able to open it.
            tracing::warn!(
                topic,
                partition,
                first,
                "the schema history topic has lost its first records (the broker deleted them, by retention), \
                 and with them the schemas of tables that did not change since: events of such tables may \
                 not decode. Set retention.ms=-1 and retention.bytes=-1 on it, and rebuild the history with \
                 snapshot.mode=recovery (or point schema.history.internal.kafka.topic at a new topic)"
            );
        }
        Ok(Box::new(KafkaHistoryTopic {
            log,
            read: tokio::sync::Mutex::new(Vec::new()),
        }))
    }
}

/// One open history topic and every record read from it so far.
#[derive(Debug)]
struct KafkaHistoryTopic {
    log: KafkaLog,
    read: tokio::sync::Mutex<Vec<String>>,
}

#[async_trait]
impl HistoryTopic for KafkaHistoryTopic {
    fn topic(&self) -> &str {
        self.log.topic()
    }

    async fn read_all(&self) -> Result<Vec<String>> {
        let mut read = self.read.lock().await;
        let more = self.log.read_to_end().await?;
        for ((_, value), (partition, offset)) in more.entries.into_iter().zip(more.origins) {
            let Some(value) = value else { continue };
            let text = String::from_utf8(value).map_err(|_| {
                Error::config(format!(
                    "the schema history topic {} holds a record that is not UTF-8 text at \
                     partition {partition} offset {offset}; point \
                     schema.history.internal.kafka.topic at the connector's own topic",
                    self.log.topic()
                ))
            })?;
            read.push(text);
        }
        Ok(read.clone())
    }

    async fn append(&self, record: String) -> Result<()> {
        self.log.write_unkeyed(&[record.into_bytes()]).await
    }
}
