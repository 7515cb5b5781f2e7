//! `FileStreamSource`: tails a file, one record per line, resuming at the committed byte
//! position.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use sluice_api::config::Props;
use sluice_api::connector::{SourceConnector, SourceTask, SourceTaskContext};
use sluice_api::data::{Schema, SchemaRef, Value};
use sluice_api::record::{Record, SourcePartition, SourceRecord};
use sluice_api::{Error, Result};

use crate::config::{FileSourceConfig, source_config_def};

/// How long an idle poll waits before returning an empty batch.
const IDLE_WAIT: Duration = Duration::from_millis(100);

/// The connector: one task, since a file cannot be split.
#[derive(Default)]
pub struct FileSourceConnector {
    props: Props,
}

/// Shows the config with secrets hidden (the worker's settings may hold some).
impl fmt::Debug for FileSourceConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSourceConnector")
            .field("props", &source_config_def().redact(&self.props))
            .finish()
    }
}

#[async_trait]
impl SourceConnector for FileSourceConnector {
    async fn start(&mut self, config: &Props) -> Result<()> {
        FileSourceConfig::from_props(config)?;
        self.props = config.clone();
        Ok(())
    }

    fn task_configs(&self, _max_tasks: usize) -> Result<Vec<Props>> {
        Ok(vec![self.props.clone()])
    }

    fn create_task(&self) -> Box<dyn SourceTask> {
        Box::new(FileSourceTask::default())
    }
}

/// The task: reads complete lines after the committed position.
#[derive(Default)]
pub struct FileSourceTask {
    config: Option<FileSourceConfig>,
    partition: Arc<SourcePartition>,
    schema: Option<SchemaRef>,
    reader: Option<BufReader<File>>,
    /// Byte position just after the last complete line handed out.
    position: u64,
    /// Bytes of a line whose newline has not been written yet.
    partial: Vec<u8>,
    warned_missing: bool,
}

/// Shows the config and the read position; the schema and buffered bytes are left out.
impl fmt::Debug for FileSourceTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSourceTask")
            .field("config", &self.config)
            .field("open", &self.reader.is_some())
            .field("position", &self.position)
            .field("partial_bytes", &self.partial.len())
            .field("warned_missing", &self.warned_missing)
            .finish_non_exhaustive()
    }
}

impl FileSourceTask {
    fn config(&self) -> Result<&FileSourceConfig> {
        self.config
            .as_ref()
            .ok_or_else(|| Error::fatal("FileStreamSource task polled before start"))
    }

    fn open(&mut self) -> Result<bool> {
        let path = self.config()?.file.clone();
        match File::open(&path) {
            Ok(mut file) => {
                let len = file
                    .metadata()
                    .map_err(|e| Error::io(format!("cannot stat {path}"), e))?
                    .len();
                if len < self.position {
                    tracing::warn!(
                        file = %path,
                        committed = self.position,
                        length = len,
                        "the source file is shorter than the committed position (truncated or \
                         replaced?); reading resumes when it grows past that position"
                    );
                    return Ok(false);
                }
                file.seek(SeekFrom::Start(self.position))
                    .map_err(|e| Error::io(format!("cannot seek in {path}"), e))?;
                self.reader = Some(BufReader::with_capacity(64 * 1024, file));
                self.warned_missing = false;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !self.warned_missing {
                    tracing::warn!(
                        file = %path,
                        "source file does not exist yet; waiting for it to be created"
                    );
                    self.warned_missing = true;
                }
                Ok(false)
            }
            Err(e) => Err(Error::io(format!("cannot open source file {path}"), e)),
        }
    }

    fn read_lines(&mut self) -> Result<Vec<SourceRecord>> {
        let config = self.config()?.clone();
        let mut records = Vec::new();
        let Some(reader) = self.reader.as_mut() else {
            return Ok(records);
        };
        while records.len() < config.batch_size {
            let read = reader
                .read_until(b'\n', &mut self.partial)
                .map_err(|e| Error::io(format!("cannot read {}", config.file), e))?;
            if read == 0 || self.partial.last() != Some(&b'\n') {
                break; // end of file, possibly inside a line that is still being written
            }
            self.position += self.partial.len() as u64;
            let mut line = &self.partial[..self.partial.len() - 1];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            let text = String::from_utf8_lossy(line).into_owned();
            self.partial.clear();
            let mut offset = serde_json::Map::new();
            offset.insert("position".into(), json!(self.position));
            records.push(SourceRecord {
                record: Record::new(&config.topic, Value::String(text), self.schema.clone()),
                source_partition: Arc::clone(&self.partition),
                source_offset: offset,
            });
        }
        Ok(records)
    }
}

#[async_trait]
impl SourceTask for FileSourceTask {
    async fn start(&mut self, context: SourceTaskContext) -> Result<()> {
        let config = FileSourceConfig::from_props(&context.config)?;
        let mut partition = SourcePartition::new();
        partition.insert("filename".into(), json!(config.file));
        if let Some(offset) = context.offsets.offset(&partition).await? {
            self.position = offset
                .get("position")
                .and_then(serde_json::Value::as_u64)
                .ok_or_else(|| {
                    Error::config(format!(
                        "committed offset {} for file {} has no numeric `position`; reset the \
                         connector's offsets (DELETE /connectors/{}/offsets) to start over",
                        serde_json::Value::Object(offset.clone()),
                        config.file,
                        context.connector
                    ))
                })?;
            tracing::info!(file = %config.file, position = self.position, "resuming from committed offset");
        }
        self.partition = Arc::new(partition);
        self.schema = Some(Schema::string().into_ref());
        self.config = Some(config);
        Ok(())
    }

    async fn poll(&mut self) -> Result<Vec<SourceRecord>> {
        if self.reader.is_none() && !self.open()? {
            tokio::time::sleep(IDLE_WAIT).await;
            return Ok(Vec::new());
        }
        let records = self.read_lines()?;
        if records.is_empty() {
            tokio::time::sleep(IDLE_WAIT).await;
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_api::connector::OffsetReader;
    use sluice_api::record::SourceOffset;
    use std::io::Write;

    struct FixedOffset(Option<SourceOffset>);

    #[async_trait]
    impl OffsetReader for FixedOffset {
        async fn offset(&self, _partition: &SourcePartition) -> Result<Option<SourceOffset>> {
            Ok(self.0.clone())
        }
    }

    fn context(file: &str, batch: &str, offset: Option<u64>) -> SourceTaskContext {
        let config: Props = [("file", file), ("topic", "t"), ("batch.size", batch)]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let offset = offset.map(|p| {
            let mut m = SourceOffset::new();
            m.insert("position".into(), json!(p));
            m
        });
        SourceTaskContext {
            connector: "c".into(),
            task_id: 0,
            config,
            offsets: Arc::new(FixedOffset(offset)),
            metrics: Default::default(),
        }
    }

    fn lines(records: &[SourceRecord]) -> Vec<&str> {
        records
            .iter()
            .map(|r| r.record.value.as_str().unwrap())
            .collect()
    }

    #[tokio::test]
    async fn emits_complete_lines_with_byte_offsets_and_waits_for_partial_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.txt");
        std::fs::write(&path, "a\r\nbb\ncc").unwrap();
        let mut task = FileSourceTask::default();
        task.start(context(path.to_str().unwrap(), "10", None))
            .await
            .unwrap();
        let batch = task.poll().await.unwrap();
        assert_eq!(lines(&batch), ["a", "bb"]);
        assert_eq!(batch[1].source_offset["position"], json!(6));
        assert_eq!(
            batch[0].source_partition["filename"],
            json!(path.to_str().unwrap())
        );
        assert!(
            task.poll().await.unwrap().is_empty(),
            "`cc` has no newline yet"
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"c\n")
            .unwrap();
        let batch = task.poll().await.unwrap();
        assert_eq!(lines(&batch), ["ccc"]);
        assert_eq!(batch[0].source_offset["position"], json!(10));
    }

    #[tokio::test]
    async fn resumes_after_the_committed_position_and_honours_batch_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.txt");
        std::fs::write(&path, "one\ntwo\nthree\nfour\n").unwrap();
        let mut task = FileSourceTask::default();
        task.start(context(path.to_str().unwrap(), "2", Some(4)))
            .await
            .unwrap();
        assert_eq!(lines(&task.poll().await.unwrap()), ["two", "three"]);
        assert_eq!(lines(&task.poll().await.unwrap()), ["four"]);
    }

    #[tokio::test]
    async fn waits_for_a_missing_file_to_appear() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("later.txt");
        let mut task = FileSourceTask::default();
        task.start(context(path.to_str().unwrap(), "10", None))
            .await
            .unwrap();
        assert!(task.poll().await.unwrap().is_empty());
        std::fs::write(&path, "x\n").unwrap();
        assert_eq!(lines(&task.poll().await.unwrap()), ["x"]);
    }

    #[test]
    fn rejects_more_than_one_topic() {
        let props: Props = [("file", "f"), ("topic", "a,b")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let err = FileSourceConfig::from_props(&props).unwrap_err();
        assert!(err.message().contains("exactly one topic"), "{err}");
    }
}
