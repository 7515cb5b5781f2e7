//! Committed source offsets: the [`OffsetStore`] trait and its file and memory backends.
//!
//! Keys and values use Kafka Connect's offset-topic layout: key `["<connector>", {partition}]`,
//! value the offset map, so the same entries can later move to a compacted topic unchanged.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Value as Json, json};
use sluice_api::connector::OffsetReader;
use sluice_api::record::{SourceOffset, SourcePartition};
use sluice_api::{Error, Result};

/// One committed entry: connector, source partition, offset.
pub type OffsetEntry = (SourcePartition, SourceOffset);

/// Where committed source offsets live.
///
/// # Contract
/// * `put` is durable when it returns `Ok`: a crash right after loses nothing it wrote.
/// * Writes of one `put` are applied together; `None` deletes an entry (a tombstone).
/// * Readers see the last value written per (connector, partition).
#[async_trait]
pub trait OffsetStore: Send + Sync {
    /// The last committed offset of a connector's partition.
    async fn get(
        &self,
        connector: &str,
        partition: &SourcePartition,
    ) -> Result<Option<SourceOffset>>;

    /// Every partition and offset committed for a connector.
    async fn connector_offsets(&self, connector: &str) -> Result<Vec<OffsetEntry>>;

    /// Writes (or with `None` deletes) offsets of a connector, durably.
    async fn put(
        &self,
        connector: &str,
        offsets: Vec<(SourcePartition, Option<SourceOffset>)>,
    ) -> Result<()>;
}

/// The Kafka Connect offset key: `["<connector>", {partition}]` as compact JSON.
pub fn offset_key(connector: &str, partition: &SourcePartition) -> String {
    json!([connector, partition]).to_string()
}

/// The last offset per (connector, partition), as every store keeps it in memory; readers of
/// Kafka Connect's offset topic fold records the same way.
#[derive(Debug, Clone, Default)]
pub struct OffsetTable {
    entries: BTreeMap<String, (String, SourcePartition, SourceOffset)>,
}

impl OffsetTable {
    /// The offset of a connector's partition.
    pub fn get(&self, connector: &str, partition: &SourcePartition) -> Option<SourceOffset> {
        self.entries
            .get(&offset_key(connector, partition))
            .map(|(_, _, o)| o.clone())
    }

    /// Every partition and offset of a connector.
    pub fn of_connector(&self, connector: &str) -> Vec<OffsetEntry> {
        self.entries
            .values()
            .filter(|(c, _, _)| c == connector)
            .map(|(_, p, o)| (p.clone(), o.clone()))
            .collect()
    }

    /// Applies writes in order; `None` deletes.
    pub fn apply(
        &mut self,
        connector: &str,
        offsets: Vec<(SourcePartition, Option<SourceOffset>)>,
    ) {
        for (partition, offset) in offsets {
            let key = offset_key(connector, &partition);
            match offset {
                Some(offset) => {
                    self.entries
                        .insert(key, (connector.to_owned(), partition, offset));
                }
                None => {
                    self.entries.remove(&key);
                }
            }
        }
    }

    /// Every entry: connector, partition, offset.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &SourcePartition, &SourceOffset)> {
        self.entries.values().map(|(c, p, o)| (c.as_str(), p, o))
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// An [`OffsetTable`] behind a lock: what every store reads from, so each answers
/// [`OffsetStore::get`] and [`OffsetStore::connector_offsets`] the same way.
#[derive(Debug, Default)]
pub(crate) struct SharedTable(Mutex<OffsetTable>);

impl SharedTable {
    /// A table holding `table`.
    pub(crate) fn new(table: OffsetTable) -> SharedTable {
        SharedTable(Mutex::new(table))
    }

    /// The table, locked, to change it.
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, OffsetTable> {
        self.0.lock().expect("offset store lock")
    }

    /// The offset of a connector's partition.
    pub(crate) fn get(&self, connector: &str, partition: &SourcePartition) -> Option<SourceOffset> {
        self.lock().get(connector, partition)
    }

    /// Every partition and offset of a connector.
    pub(crate) fn of_connector(&self, connector: &str) -> Vec<OffsetEntry> {
        self.lock().of_connector(connector)
    }
}

/// Offsets in memory only: for tests and connectors that need no persistence.
#[derive(Debug, Default)]
pub struct MemoryOffsetStore {
    table: SharedTable,
}

#[async_trait]
impl OffsetStore for MemoryOffsetStore {
    async fn get(
        &self,
        connector: &str,
        partition: &SourcePartition,
    ) -> Result<Option<SourceOffset>> {
        Ok(self.table.get(connector, partition))
    }

    async fn connector_offsets(&self, connector: &str) -> Result<Vec<OffsetEntry>> {
        Ok(self.table.of_connector(connector))
    }

    async fn put(
        &self,
        connector: &str,
        offsets: Vec<(SourcePartition, Option<SourceOffset>)>,
    ) -> Result<()> {
        self.table.lock().apply(connector, offsets);
        Ok(())
    }
}

/// Offsets in a JSON file (`offset.storage.file.filename`), rewritten atomically on every
/// commit: written to a temporary file, synced, renamed over the old one, directory synced.
#[derive(Debug)]
pub struct FileOffsetStore {
    path: PathBuf,
    table: SharedTable,
}

impl FileOffsetStore {
    /// Opens the store, loading the file when it exists.
    pub fn open(path: impl Into<PathBuf>) -> Result<FileOffsetStore> {
        let path = path.into();
        let table = match std::fs::read(&path) {
            Ok(bytes) => parse_file(&path, &bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => OffsetTable::default(),
            Err(e) => {
                return Err(Error::io(
                    format!("cannot read offsets file {}", path.display()),
                    e,
                ));
            }
        };
        Ok(FileOffsetStore {
            path,
            table: SharedTable::new(table),
        })
    }

    fn write(&self, table: &OffsetTable) -> Result<()> {
        let list: Vec<Json> = table
            .iter()
            .map(|(c, p, o)| json!({"key": [c, p], "value": o}))
            .collect();
        let body = serde_json::to_vec_pretty(&json!({"version": 1, "offsets": list}))
            .map_err(|e| Error::fatal(format!("cannot encode offsets: {e}")))?;
        write_atomically(&self.path, &body).map_err(|e| {
            Error::io(
                format!("cannot write offsets file {}", self.path.display()),
                e,
            )
        })
    }
}

fn parse_file(path: &Path, bytes: &[u8]) -> Result<OffsetTable> {
    if bytes.starts_with(&[0xAC, 0xED]) {
        return Err(Error::config(format!(
            "offsets file {} was written by Kafka Connect (Java serialization), which sluice \
             does not read; point `offset.storage.file.filename` at a new file (connectors then \
             start from the beginning) or move this one away",
            path.display()
        )));
    }
    let bad = |why: String| {
        Error::config(format!(
            "offsets file {} is damaged ({why}); restore it or move it away to start over",
            path.display()
        ))
    };
    let json: Json = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    let mut table = OffsetTable::default();
    for entry in json["offsets"]
        .as_array()
        .ok_or_else(|| bad("no `offsets` list".into()))?
    {
        let (Some(connector), Some(partition), Some(offset)) = (
            entry["key"][0].as_str(),
            entry["key"][1].as_object(),
            entry["value"].as_object(),
        ) else {
            return Err(bad(format!("unreadable entry {entry}")));
        };
        table.apply(connector, vec![(partition.clone(), Some(offset.clone()))]);
    }
    Ok(table)
}

fn write_atomically(path: &Path, body: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp"));
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(body)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[async_trait]
impl OffsetStore for FileOffsetStore {
    async fn get(
        &self,
        connector: &str,
        partition: &SourcePartition,
    ) -> Result<Option<SourceOffset>> {
        Ok(self.table.get(connector, partition))
    }

    async fn connector_offsets(&self, connector: &str) -> Result<Vec<OffsetEntry>> {
        Ok(self.table.of_connector(connector))
    }

    async fn put(
        &self,
        connector: &str,
        offsets: Vec<(SourcePartition, Option<SourceOffset>)>,
    ) -> Result<()> {
        let mut table = self.table.lock();
        let mut updated = table.clone();
        updated.apply(connector, offsets);
        self.write(&updated)?;
        *table = updated;
        Ok(())
    }
}

/// Lets a task read its connector's committed offsets.
pub struct ConnectorOffsetReader {
    /// The connector whose offsets are read.
    pub connector: String,
    /// Where they are.
    pub store: Arc<dyn OffsetStore>,
}

impl std::fmt::Debug for ConnectorOffsetReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorOffsetReader")
            .field("connector", &self.connector)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl OffsetReader for ConnectorOffsetReader {
    async fn offset(&self, partition: &SourcePartition) -> Result<Option<SourceOffset>> {
        self.store.get(&self.connector, partition).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(json: Json) -> serde_json::Map<String, Json> {
        json.as_object().unwrap().clone()
    }

    #[tokio::test]
    async fn file_store_survives_reopen_and_deletes_with_tombstones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("connect.offsets");
        let store = FileOffsetStore::open(&path).unwrap();
        let partition = map(json!({"filename": "test.txt"}));
        store
            .put(
                "src",
                vec![(partition.clone(), Some(map(json!({"position": 42}))))],
            )
            .await
            .unwrap();
        store
            .put(
                "other",
                vec![(partition.clone(), Some(map(json!({"position": 1}))))],
            )
            .await
            .unwrap();
        let reopened = FileOffsetStore::open(&path).unwrap();
        assert_eq!(
            reopened.get("src", &partition).await.unwrap(),
            Some(map(json!({"position": 42})))
        );
        assert_eq!(reopened.connector_offsets("other").await.unwrap().len(), 1);
        reopened
            .put("src", vec![(partition.clone(), None)])
            .await
            .unwrap();
        let again = FileOffsetStore::open(&path).unwrap();
        assert_eq!(again.get("src", &partition).await.unwrap(), None);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"other\""), "{text}");
        assert!(!dir.path().join(".connect.offsets.tmp").exists());
    }

    #[test]
    fn key_matches_kafka_connect_offset_topic_format() {
        assert_eq!(
            offset_key("local-file-source", &map(json!({"filename": "test.txt"}))),
            r#"["local-file-source",{"filename":"test.txt"}]"#
        );
    }

    #[test]
    fn foreign_or_damaged_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let java = dir.path().join("java.offsets");
        std::fs::write(&java, [0xAC, 0xED, 0x00, 0x05]).unwrap();
        let err = FileOffsetStore::open(&java).err().unwrap();
        assert!(err.message().contains("Java serialization"), "{err}");
        let damaged = dir.path().join("bad.offsets");
        std::fs::write(&damaged, "{").unwrap();
        let err = FileOffsetStore::open(&damaged).err().unwrap();
        assert!(err.message().contains("is damaged"), "{err}");
    }
}
