//! Source offsets in a compacted topic (`offset.storage.topic`), byte-compatible with Kafka
//! Connect: key `["<connector>",{partition}]`, value the offset map, both compact JSON
//! (JsonConverter, schemas off); a null value deletes.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value as Json;
use sluice_api::Result;
use sluice_api::record::{SourceOffset, SourcePartition};

use super::log::{KafkaLog, TopicRules};
use super::offsets::{OffsetEntry, OffsetStore, OffsetTable, SharedTable, offset_key};
use crate::pipeline::kafka::KafkaSettings;

/// Offsets kept in a compacted Kafka topic, read to its end at start.
#[derive(Debug)]
pub struct KafkaOffsetStore {
    log: KafkaLog,
    table: SharedTable,
}

impl KafkaOffsetStore {
    /// Opens (creating when missing) the offsets topic and loads the last value per key.
    pub async fn open(
        settings: Arc<KafkaSettings>,
        topic: &str,
        partitions: i32,
        replication_factor: i32,
    ) -> Result<KafkaOffsetStore> {
        let rules = TopicRules {
            partitions,
            replication_factor,
            exact_partitions: false,
        };
        let log = KafkaLog::open(settings, topic, rules).await?;
        let mut table = OffsetTable::default();
        let skipped = apply_entries(&mut table, log.read_to_end().await?.entries);
        if skipped > 0 {
            tracing::warn!(
                topic,
                skipped,
                "offset records with unreadable keys were ignored"
            );
        }
        tracing::info!(
            topic,
            entries = table.len(),
            "offsets read from the offset topic"
        );
        Ok(KafkaOffsetStore {
            log,
            table: SharedTable::new(table),
        })
    }
}

impl KafkaOffsetStore {
    /// Reads what other workers wrote since the last read. In distributed mode a source task
    /// can move here from another worker, which committed its offsets to the topic after this
    /// store was opened; the task must start from those.
    async fn catch_up(&self) -> Result<()> {
        let entries = self.log.read_to_end().await?.entries;
        if !entries.is_empty() {
            apply_entries(&mut self.table.lock(), entries);
        }
        Ok(())
    }
}

/// Folds offset records into `table`; returns how many had unreadable keys.
fn apply_entries(table: &mut OffsetTable, entries: Vec<super::log::LogEntry>) -> usize {
    let mut skipped = 0usize;
    for (key, value) in entries {
        let parsed: Option<(String, SourcePartition)> =
            serde_json::from_slice::<Json>(&key).ok().and_then(|k| {
                Some((
                    k.get(0)?.as_str()?.to_owned(),
                    k.get(1)?.as_object()?.clone(),
                ))
            });
        let Some((connector, partition)) = parsed else {
            skipped += 1;
            continue;
        };
        let offset = value
            .and_then(|v| serde_json::from_slice::<Json>(&v).ok())
            .and_then(|v| v.as_object().cloned());
        table.apply(&connector, vec![(partition, offset)]);
    }
    skipped
}

#[async_trait]
impl OffsetStore for KafkaOffsetStore {
    async fn get(
        &self,
        connector: &str,
        partition: &SourcePartition,
    ) -> Result<Option<SourceOffset>> {
        self.catch_up().await?;
        Ok(self.table.get(connector, partition))
    }

    async fn connector_offsets(&self, connector: &str) -> Result<Vec<OffsetEntry>> {
        self.catch_up().await?;
        Ok(self.table.of_connector(connector))
    }

    async fn put(
        &self,
        connector: &str,
        offsets: Vec<(SourcePartition, Option<SourceOffset>)>,
    ) -> Result<()> {
        let records = offsets
            .iter()
            .map(|(partition, offset)| {
                let key = offset_key(connector, partition).into_bytes();
                let value = offset
                    .as_ref()
                    .map(|o| Json::Object(o.clone()).to_string().into_bytes());
                (key, value)
            })
            .collect();
        self.log.write(records).await?;
        self.table.lock().apply(connector, offsets);
        Ok(())
    }
}
