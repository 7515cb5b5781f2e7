//! Source offsets in a compacted topic (`offset.storage.topic`), byte-compatible with Kafka
//! Connect: key `["<connector>",{partition}]`, value the offset map, both compact JSON
//! (JsonConverter, schemas off); a null value deletes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::Value as Json;
use sluice_api::Result;
use sluice_api::record::{SourceOffset, SourcePartition};

use super::KafkaSettings;
use super::log::KafkaLog;
use crate::offsets::{OffsetEntry, OffsetStore, offset_key};

type Entries = BTreeMap<String, (String, SourcePartition, SourceOffset)>;

/// Offsets kept in a compacted Kafka topic, read to its end at start.
pub struct KafkaOffsetStore {
    log: KafkaLog,
    entries: Mutex<Entries>,
}

impl KafkaOffsetStore {
    /// Opens (creating when missing) the offsets topic and loads the last value per key.
    pub async fn open(
        settings: Arc<KafkaSettings>,
        topic: &str,
        partitions: i32,
        replication_factor: i32,
    ) -> Result<KafkaOffsetStore> {
        let log = KafkaLog::open(settings, topic, partitions, replication_factor).await?;
        let mut entries = Entries::new();
        let mut skipped = 0usize;
        for (key, value) in log.read_to_end().await? {
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
            let id = offset_key(&connector, &partition);
            match value
                .and_then(|v| serde_json::from_slice::<Json>(&v).ok())
                .and_then(|v| v.as_object().cloned())
            {
                Some(offset) => {
                    entries.insert(id, (connector, partition, offset));
                }
                None => {
                    entries.remove(&id);
                }
            }
        }
        if skipped > 0 {
            tracing::warn!(
                topic,
                skipped,
                "offset records with unreadable keys were ignored"
            );
        }
        tracing::info!(
            topic,
            entries = entries.len(),
            "offsets read from the offset topic"
        );
        Ok(KafkaOffsetStore {
            log,
            entries: Mutex::new(entries),
        })
    }
}

#[async_trait]
impl OffsetStore for KafkaOffsetStore {
    async fn get(
        &self,
        connector: &str,
        partition: &SourcePartition,
    ) -> Result<Option<SourceOffset>> {
        let entries = self.entries.lock().expect("offset store lock");
        Ok(entries
            .get(&offset_key(connector, partition))
            .map(|(_, _, o)| o.clone()))
    }

    async fn connector_offsets(&self, connector: &str) -> Result<Vec<OffsetEntry>> {
        let entries = self.entries.lock().expect("offset store lock");
        Ok(entries
            .values()
            .filter(|(c, _, _)| c == connector)
            .map(|(_, p, o)| (p.clone(), o.clone()))
            .collect())
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
        let mut entries = self.entries.lock().expect("offset store lock");
        for (partition, offset) in offsets {
            let id = offset_key(connector, &partition);
            match offset {
                Some(offset) => {
                    entries.insert(id, (connector.to_owned(), partition, offset));
                }
                None => {
                    entries.remove(&id);
                }
            }
        }
        Ok(())
    }
}
