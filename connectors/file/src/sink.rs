//! `FileStreamSink`: appends one line per record and syncs the file on flush.
//!
//! Opening, writing and syncing run on a blocking thread, never on the async runtime's
//! threads: a `file` that blocks (a FIFO nobody reads) holds only its own task. Only regular
//! files are synced; a FIFO, a character device (`/dev/null`) or standard output has nothing
//! to sync and would refuse (`EINVAL`).

use std::collections::HashMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};

use async_trait::async_trait;
use serde_json::{Map, Value as Json, json};
use sluice_api::config::Props;
use sluice_api::connector::{SinkConnector, SinkTask, SinkTaskContext};
use sluice_api::data::Value;
use sluice_api::json::{value_to_json, value_to_json_text};
use sluice_api::record::{SinkRecord, TopicPartition};
use sluice_api::{Error, Result};

use crate::config::{FileSinkConfig, SinkFormat, sink_config_def};
use crate::off_thread;

/// The connector: one task, since tasks would interleave lines in one file.
#[derive(Default)]
pub struct FileSinkConnector {
    props: Props,
}

/// Shows the config with secrets hidden (the worker's settings may hold some).
impl fmt::Debug for FileSinkConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSinkConnector")
            .field("props", &sink_config_def().redact(&self.props))
            .finish()
    }
}

#[async_trait]
impl SinkConnector for FileSinkConnector {
    async fn start(&mut self, config: &Props) -> Result<()> {
        FileSinkConfig::from_props(config)?;
        self.props = config.clone();
        Ok(())
    }

    fn task_configs(&self, _max_tasks: usize) -> Result<Vec<Props>> {
        Ok(vec![self.props.clone()])
    }

    fn create_task(&self) -> Box<dyn SinkTask> {
        Box::new(FileSinkTask::default())
    }
}

#[derive(Debug)]
enum Output {
    File {
        path: String,
        writer: BufWriter<File>,
        /// A regular file, which `flush` syncs to disk.
        syncable: bool,
    },
    Stdout,
}

/// Every record is written as a whole line, so a file that does not end in a newline was cut
/// mid-write (the worker was killed). That record was never flushed, so it is delivered again;
/// cutting the fragment keeps the file one record per line.
fn drop_partial_last_line(path: &str) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = OpenOptions::new().read(true).write(true).open(path) else {
        return Ok(()); // missing: created below; unreadable: reported below
    };
    let length = file
        .metadata()
        .map_err(|e| Error::io(format!("cannot read sink file {path}"), e))?
        .len();
    if length == 0 {
        return Ok(());
    }
    // Look back from the end for the last newline, a block at a time.
    let mut end = length;
    let mut block = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(block.len() as u64);
        let size = (end - start) as usize;
        file.seek(SeekFrom::Start(start))
            .and_then(|_| file.read_exact(&mut block[..size]))
            .map_err(|e| Error::io(format!("cannot read sink file {path}"), e))?;
        if let Some(at) = block[..size].iter().rposition(|&b| b == b'\n') {
            let keep = start + at as u64 + 1;
            if keep < length {
                tracing::warn!(
                    file = path,
                    bytes = length - keep,
                    "the sink file ends in a partly written line (the worker was stopped mid-write); cutting it, its record is delivered again"
                );
                file.set_len(keep)
                    .map_err(|e| Error::io(format!("cannot truncate sink file {path}"), e))?;
            }
            return Ok(());
        }
        end = start;
    }
    tracing::warn!(
        file = path,
        bytes = length,
        "the sink file holds only a partly written line; cutting it"
    );
    file.set_len(0)
        .map_err(|e| Error::io(format!("cannot truncate sink file {path}"), e))
}

/// The task. Lines reach the OS at the end of every `put`, so they show up promptly; `flush`
/// syncs them to disk, which is when the worker may treat them as delivered.
#[derive(Debug, Default)]
pub struct FileSinkTask {
    format: Option<SinkFormat>,
    /// `None` before start, and while a call has it on a blocking thread.
    output: Option<Output>,
}

impl Output {
    fn open(path: &str) -> Result<Output> {
        drop_partial_last_line(path)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| {
                Error::io(
                    format!("cannot open sink file {path} for appending (check `file`)"),
                    e,
                )
            })?;
        let syncable = file
            .metadata()
            .map_err(|e| Error::io(format!("cannot stat sink file {path}"), e))?
            .is_file();
        Ok(Output::File {
            path: path.to_owned(),
            writer: BufWriter::with_capacity(64 * 1024, file),
            syncable,
        })
    }

    fn path(&self) -> &str {
        match self {
            Output::File { path, .. } => path,
            Output::Stdout => "<stdout>",
        }
    }

    fn write_all(&mut self, format: SinkFormat, records: &[SinkRecord]) -> Result<()> {
        let mut line = String::new();
        let written = match self {
            Output::File { writer, .. } => records
                .iter()
                .try_for_each(|record| write_record(writer, format, record, &mut line))
                .and_then(|()| writer.flush()),
            Output::Stdout => {
                let mut stdout = std::io::stdout().lock();
                records
                    .iter()
                    .try_for_each(|record| write_record(&mut stdout, format, record, &mut line))
                    .and_then(|()| stdout.flush())
            }
        };
        written.map_err(|e| Error::io(format!("cannot write to {}", self.path()), e))
    }

    fn sync(&mut self) -> Result<()> {
        if let Output::File {
            path,
            writer,
            syncable,
        } = self
        {
            writer
                .flush()
                .map_err(|e| Error::io(format!("cannot write to {path}"), e))?;
            if *syncable {
                writer
                    .get_ref()
                    .sync_data()
                    .map_err(|e| Error::io(format!("cannot sync {path}"), e))?;
            }
        }
        Ok(())
    }
}

impl FileSinkTask {
    /// Runs `work` on the output, on a blocking thread.
    async fn with_output<T: Send + 'static>(
        &mut self,
        what: &str,
        work: impl FnOnce(&mut Output) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let mut output = self.output.take().ok_or_else(|| {
            Error::fatal("FileStreamSink task used before start (or after a call was cut short)")
        })?;
        let what = format!("{what} {}", output.path());
        let (output, result) = off_thread(what, move || {
            let result = work(&mut output);
            (output, result)
        })
        .await?;
        self.output = Some(output);
        result
    }
}

/// Writes one record as a line. A text value is written as it is (no copy of a long line);
/// anything else is rendered into `scratch` first.
fn write_record(
    out: &mut impl Write,
    format: SinkFormat,
    record: &SinkRecord,
    scratch: &mut String,
) -> std::io::Result<()> {
    if let (SinkFormat::Text, Value::String(text)) = (format, &record.record.value) {
        out.write_all(text.as_bytes())?;
        return out.write_all(b"\n");
    }
    render(format, record, scratch);
    out.write_all(scratch.as_bytes())
}

/// Renders one record as a line, newline included, into `line`.
fn render(format: SinkFormat, record: &SinkRecord, line: &mut String) {
    line.clear();
    match format {
        SinkFormat::Text => match &record.record.value {
            Value::String(s) => line.push_str(s),
            Value::Null => line.push_str("null"),
            other => line.push_str(&value_to_json_text(other)),
        },
        SinkFormat::Json => {
            let r = &record.record;
            let mut object = Map::new();
            object.insert("topic".into(), json!(r.topic));
            object.insert("partition".into(), json!(record.kafka_partition));
            object.insert("offset".into(), json!(record.kafka_offset));
            object.insert("timestamp".into(), json!(r.timestamp_ms));
            object.insert("key".into(), value_to_json(&r.key));
            object.insert("value".into(), value_to_json(&r.value));
            let headers = r
                .headers
                .iter()
                .map(|h| json!({"key": h.key, "value": value_to_json(&h.value)}))
                .collect();
            object.insert("headers".into(), Json::Array(headers));
            line.push_str(&Json::Object(object).to_string());
        }
    }
    line.push('\n');
}

#[async_trait]
impl SinkTask for FileSinkTask {
    async fn start(&mut self, context: SinkTaskContext) -> Result<()> {
        let config = FileSinkConfig::from_props(&context.config)?;
        self.output = Some(match config.file {
            Some(path) => {
                let what = format!("opening {path}");
                off_thread(what, move || Output::open(&path)).await??
            }
            None => Output::Stdout,
        });
        self.format = Some(config.format);
        Ok(())
    }

    async fn put(&mut self, records: Vec<SinkRecord>) -> Result<()> {
        let format = self.format.unwrap_or(SinkFormat::Text);
        self.with_output("writing to", move |output| {
            output.write_all(format, &records)
        })
        .await
    }

    async fn flush(&mut self, _offsets: &HashMap<TopicPartition, i64>) -> Result<()> {
        self.with_output("syncing", Output::sync).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_api::data::{Schema, Struct};
    use sluice_api::record::{Header, Record};

    fn sink_record(value: Value, offset: i64) -> SinkRecord {
        SinkRecord {
            record: Record::new("t", value, None),
            kafka_partition: 0,
            kafka_offset: offset,
        }
    }

    async fn started(path: &std::path::Path, format: &str) -> FileSinkTask {
        let config: Props = [("file", path.to_str().unwrap()), ("format", format)]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut task = FileSinkTask::default();
        task.start(SinkTaskContext::new("c", 0, config))
            .await
            .unwrap();
        task
    }

    #[tokio::test]
    async fn text_format_writes_values_one_per_line_and_appends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        std::fs::write(&path, "existing\n").unwrap();
        let mut task = started(&path, "text").await;
        let schema = Schema::struct_named("s")
            .field("a", Schema::string().into_ref())
            .into_ref();
        let mut s = Struct::new(schema);
        s.put("a", Value::from("x")).unwrap();
        task.put(vec![
            sink_record(Value::from("foo"), 0),
            sink_record(Value::Struct(s), 1),
            sink_record(Value::Null, 2),
        ])
        .await
        .unwrap();
        task.flush(&HashMap::new()).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "existing\nfoo\n{\"a\":\"x\"}\nnull\n"
        );
    }

    #[tokio::test]
    async fn json_format_writes_key_value_topic_and_headers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let mut task = started(&path, "json").await;
        let mut record = sink_record(Value::from("v"), 7);
        record.record.key = Value::Int32(1);
        record.record.headers.push(Header {
            key: "h".into(),
            value: Value::from("x"),
            schema: None,
        });
        task.put(vec![record]).await.unwrap();
        let written: Json =
            serde_json::from_str(std::fs::read_to_string(&path).unwrap().trim()).unwrap();
        assert_eq!(
            written,
            json!({"topic":"t","partition":0,"offset":7,"timestamp":null,"key":1,"value":"v",
                   "headers":[{"key":"h","value":"x"}]})
        );
    }

    #[tokio::test]
    async fn a_partly_written_last_line_is_cut_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        std::fs::write(&path, "one\ntwo\nthr").unwrap();
        let mut task = started(&path, "text").await;
        task.put(vec![sink_record(Value::from("three"), 3)])
            .await
            .unwrap();
        task.flush(&HashMap::new()).await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\nthree\n");
    }

    #[tokio::test]
    async fn an_unwritable_file_names_the_path() {
        let config: Props = [("file", "/nonexistent-dir/out.txt")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let err = FileSinkTask::default()
            .start(SinkTaskContext::new("c", 0, config))
            .await
            .unwrap_err();
        assert!(err.message().contains("/nonexistent-dir/out.txt"), "{err}");
    }

    #[tokio::test]
    async fn a_character_device_is_written_and_flushed_without_a_sync() {
        let mut task = FileSinkTask::default();
        let config: Props = [("file".to_owned(), "/dev/null".to_owned())].into();
        task.start(SinkTaskContext::new("c", 0, config))
            .await
            .unwrap();
        task.put(vec![sink_record(Value::String("x".into()), 0)])
            .await
            .unwrap();
        task.flush(&HashMap::new())
            .await
            .expect("nothing to sync, and no EINVAL");
    }
}
