//! Source offsets in a compacted topic (`offset.storage.topic`), byte-compatible with Kafka
//! Connect: key `["<connector>",{partition}]`, value the offset map, both compact JSON
//! (JsonConverter, schemas off); a null value deletes.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value as Json;
use sluice_api::Result;
use sluice_api::record::{SourceOffset, SourcePartition};

use super::log::{Cleanup, KafkaLog, TopicRules};
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
            cleanup: Cleanup::Compact,
        };
        let log = KafkaLog::open(settings, topic, rules).await?;
        let mut table = OffsetTable::default();
        apply_offset_records(&mut table, log.read_to_end().await?, topic);
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
        let read = self.log.read_to_end().await?;
        if !read.entries.is_empty() {
            apply_offset_records(&mut self.table.lock(), read, self.log.topic());
        }
        Ok(())
    }
}

/// Folds offset records into `table`; a record whose key is not Kafka Connect's
/// `["connector", {partition}]`, or whose value is neither a tombstone nor a JSON object, is
/// skipped with a warning naming it (it changes no offset).
pub fn apply_offset_records(table: &mut OffsetTable, mut read: super::log::LogRead, topic: &str) {
    for (index, (key, value)) in std::mem::take(&mut read.entries).into_iter().enumerate() {
        let parsed: Option<(String, SourcePartition)> =
            serde_json::from_slice::<Json>(&key).ok().and_then(|k| {
                Some((
                    k.get(0)?.as_str()?.to_owned(),
                    k.get(1)?.as_object()?.clone(),
                ))
            });
        let offset = match &value {
            None => Some(None),
            Some(bytes) => serde_json::from_slice::<Json>(bytes)
                .ok()
                .and_then(|v| v.as_object().cloned())
                .map(Some),
        };
        let (Some((connector, partition)), Some(offset)) = (parsed, offset) else {
            read.warn_skipped(
                index,
                topic,
                &String::from_utf8_lossy(&key),
                "offset record skipped: not Kafka Connect's [connector, partition] key with a \
                 JSON object or tombstone value",
            );
            continue;
        };
        table.apply(&connector, vec![(partition, offset)]);
    }
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
