//! `FileStreamSource`: tails a file, one record per line, resuming at the committed byte
//! position.
//!
//! All file work (open, stat, read) runs on a blocking thread, never on the async runtime's
//! threads: a file that blocks (a FIFO nobody writes to, a stalled network mount) holds only
//! its own task, never the REST API or other tasks. The offset carries the file's identity
//! (device and inode) besides Kafka Connect's `position`, so a file that was replaced (log
//! rotation) or truncated is noticed — while running or after a restart — and read from its
//! start, which is logged and counted in the task's status (`file_rewinds`). Lines longer than
//! `max.line.bytes` fail the task naming their byte offset, or with `errors.tolerance=all` are
//! skipped and logged, so memory stays bounded whatever the file holds.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use sluice_api::config::Props;
use sluice_api::connector::{SourceConnector, SourceTask, SourceTaskContext};
use sluice_api::data::{Schema, SchemaRef, Value};
use sluice_api::metrics::TaskMetrics;
use sluice_api::record::{Record, SourceOffset, SourcePartition, SourceRecord};
use sluice_api::{Error, Result};

use crate::config::{FileSourceConfig, source_config_def};
use crate::off_thread;

/// How long an idle poll waits before returning an empty batch. A line appended to an idle
/// file waits up to this long before it is read: at 100 ms it was most of a line's
/// source-to-sink latency (the latency bench's p50 ~52 ms); an idle check costs one read and
/// one stat on a blocking thread.
const IDLE_WAIT: Duration = Duration::from_millis(10);

/// A read buffer grown past this by a long line is given back once the line is handed out.
const KEPT_BUFFER: usize = 64 * 1024;

/// Line bytes after which a poll's batch ends even below `batch.size` lines.
const BATCH_BYTES: usize = 4 * 1024 * 1024;

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

    /// A partition is `{"filename": <file>}`; an offset needs a non-negative integer
    /// `position` (and, when given, integer `device` and `inode`), as the task reads it.
    fn validate_offsets(
        &self,
        _config: &Props,
        offsets: &[(SourcePartition, Option<SourceOffset>)],
    ) -> Result<()> {
        for (partition, offset) in offsets {
            if !partition
                .get("filename")
                .is_some_and(serde_json::Value::is_string)
            {
                return Err(Error::config(format!(
                    "partition {} has no string `filename`; FileStreamSource partitions are \
                     {{\"filename\": \"<file>\"}}",
                    serde_json::Value::Object(partition.clone())
                )));
            }
            let Some(offset) = offset else { continue };
            for (key, required) in [("position", true), ("device", false), ("inode", false)] {
                match offset.get(key) {
                    Some(value) if value.is_u64() => {}
                    None if !required => {}
                    found => {
                        return Err(Error::config(format!(
                            "offset of {}: `{key}` must be a non-negative integer (bytes from \
                             the file's start for `position`), got {}",
                            serde_json::Value::Object(partition.clone()),
                            found.map_or("nothing".to_owned(), ToString::to_string)
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Which file a position belongs to: device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    device: u64,
    inode: u64,
}

impl Identity {
    fn of(metadata: &std::fs::Metadata) -> Identity {
        Identity {
            device: metadata.dev(),
            inode: metadata.ino(),
        }
    }

    /// The identity a committed offset names, when it names one (offsets written by Kafka
    /// Connect, or by sluice before it kept identities, do not).
    fn in_offset(offset: &SourceOffset) -> Option<Identity> {
        Some(Identity {
            device: offset.get("device")?.as_u64()?,
            inode: offset.get("inode")?.as_u64()?,
        })
    }
}

/// Everything the task reads with; it moves to a blocking thread for each poll.
struct Reader {
    config: FileSourceConfig,
    partition: Arc<SourcePartition>,
    schema: SchemaRef,
    metrics: TaskMetrics,
    /// `errors.tolerance=all`: a line over `max.line.bytes` is skipped instead of failing.
    skip_long_lines: bool,
    file: Option<BufReader<File>>,
    /// The identity of the file open (or, before it is, of the committed offset's file).
    identity: Option<Identity>,
    /// Byte position just after the last complete line handed out.
    position: u64,
    /// Bytes of a line whose newline has not been read yet.
    partial: Vec<u8>,
    /// Inside a line over the limit that is being skipped, up to its newline.
    skipping: bool,
    warned_missing: bool,
    rewinds: u64,
}

/// What a poll found.
enum Polled {
    Records(Vec<SourceRecord>),
    /// Nothing new: wait a moment before the next poll.
    Idle,
}

impl Reader {
    /// Opens the file at the committed position, or from its start when it is not the file
    /// the position was committed in, or shorter than it. `false`: no file yet.
    fn open(&mut self) -> Result<bool> {
        let path = self.config.file.clone();
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !self.warned_missing {
                    tracing::warn!(file = %path, "source file does not exist yet; waiting for it to be created");
                    self.warned_missing = true;
                }
                return Ok(false);
            }
            Err(e) => return Err(Error::io(format!("cannot open source file {path}"), e)),
        };
        let metadata = file
            .metadata()
            .map_err(|e| Error::io(format!("cannot stat {path}"), e))?;
        let identity = Identity::of(&metadata);
        if self.identity.is_some_and(|committed| committed != identity) && self.position > 0 {
            self.rewind("it was replaced by another file since the offset was committed");
        } else if metadata.is_file() && metadata.len() < self.position {
            self.rewind("it is shorter than the committed position (truncated)");
        }
        self.identity = Some(identity);
        file.seek(SeekFrom::Start(self.position))
            .map_err(|e| Error::io(format!("cannot seek in {path}"), e))?;
        self.file = Some(BufReader::with_capacity(64 * 1024, file));
        self.warned_missing = false;
        Ok(true)
    }

    /// Starts over at the beginning of the file, saying why.
    fn rewind(&mut self, why: &str) {
        tracing::warn!(
            file = %self.config.file, skipped_position = self.position,
            "reading the source file again from its start: {why}"
        );
        self.position = 0;
        self.partial.clear();
        self.skipping = false;
        self.rewinds += 1;
        self.metrics.set("file_rewinds", self.rewinds as f64);
    }

    /// At the end of the data: whether the path now names another file, or the open file
    /// was truncated below what was read. Then the next read starts from the beginning.
    fn check_identity(&mut self) -> Result<()> {
        let path = self.config.file.clone();
        let now = match std::fs::metadata(&path) {
            Ok(metadata) => metadata,
            // Moved away and not recreated yet: keep the old file (rotation may still be
            // writing its last lines).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(format!("cannot stat {path}"), e)),
        };
        if self.identity != Some(Identity::of(&now)) {
            self.rewind("the path now names another file (rotated or recreated)");
            self.file = None;
            self.identity = None;
            return Ok(());
        }
        let read_to = self.position + self.partial.len() as u64;
        if now.is_file() && now.len() < read_to {
            self.rewind("it was truncated");
            if let Some(file) = self.file.as_mut() {
                file.seek(SeekFrom::Start(0))
                    .map_err(|e| Error::io(format!("cannot seek in {path}"), e))?;
            }
        }
        Ok(())
    }

    fn offset(&self) -> SourceOffset {
        let mut offset = SourceOffset::new();
        offset.insert("position".into(), json!(self.position));
        if let Some(identity) = self.identity {
            offset.insert("device".into(), json!(identity.device));
            offset.insert("inode".into(), json!(identity.inode));
        }
        offset
    }

    /// One poll's worth of work, blocking.
    fn poll(&mut self) -> Result<Polled> {
        if self.file.is_none() && !self.open()? {
            return Ok(Polled::Idle);
        }
        let records = self.read_lines()?;
        if records.is_empty() {
            self.check_identity()?;
            return Ok(Polled::Idle);
        }
        Ok(Polled::Records(records))
    }

    fn read_lines(&mut self) -> Result<Vec<SourceRecord>> {
        let Some(mut file) = self.file.take() else {
            return Ok(Vec::new());
        };
        let read = self.read_lines_from(&mut file);
        self.file = Some(file);
        read
    }

    fn read_lines_from(&mut self, file: &mut BufReader<File>) -> Result<Vec<SourceRecord>> {
        let mut records = Vec::new();
        let max_line = self.config.max_line_bytes;
        // Lines and bytes both end a batch, so `batch.size=100000` of long lines cannot hold
        // hundreds of MB in one poll.
        let mut batch_bytes = 0;
        while records.len() < self.config.batch_size && batch_bytes < BATCH_BYTES {
            // Read at most up to the limit, so a line without end cannot take all memory.
            let read = read_line_within(file, &mut self.partial, max_line + 1)
                .map_err(|e| Error::io(format!("cannot read {}", self.config.file), e))?;
            let complete = self.partial.last() == Some(&b'\n');
            if !complete && self.partial.len() > max_line {
                let at = self.position;
                if !self.skip_long_lines {
                    return Err(Error::data(format!(
                        "the line at byte offset {at} of {} is longer than max.line.bytes={max_line}; \
                         raise max.line.bytes, or set errors.tolerance=all to skip such lines",
                        self.config.file
                    )));
                }
                if !self.skipping {
                    tracing::warn!(file = %self.config.file, byte_offset = at, max_line, "skipping a line longer than max.line.bytes (errors.tolerance=all)");
                    self.skipping = true;
                }
                // Drop what was read; `position` moves on once the line's end is found.
                self.position += self.partial.len() as u64;
                self.partial.clear();
                continue;
            }
            if read == 0 || !complete {
                break; // end of file, possibly inside a line that is still being written
            }
            self.position += self.partial.len() as u64;
            if std::mem::take(&mut self.skipping) {
                self.partial.clear();
                self.release_buffer();
                continue; // the end of a skipped line
            }
            let text = self.take_line();
            batch_bytes += text.len();
            records.push(SourceRecord {
                record: Record::new(
                    &self.config.topic,
                    Value::from(text),
                    Some(self.schema.clone()),
                ),
                source_partition: Arc::clone(&self.partition),
                source_offset: self.offset(),
            });
        }
        Ok(records)
    }

    /// The complete line in `partial` as text, without its line ending; `partial` is left
    /// empty. A long line's buffer becomes the text itself (no copy, trimmed to size), so
    /// a 150 MiB line is in memory about once, not three times.
    fn take_line(&mut self) -> String {
        let mut end = self.partial.len() - 1;
        if end > 0 && self.partial[end - 1] == b'\r' {
            end -= 1;
        }
        if self.partial.capacity() <= KEPT_BUFFER {
            let text = String::from_utf8_lossy(&self.partial[..end]).into_owned();
            self.partial.clear();
            return text;
        }
        let mut bytes = std::mem::replace(&mut self.partial, Vec::with_capacity(KEPT_BUFFER));
        bytes.truncate(end);
        let mut text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(invalid) => String::from_utf8_lossy(invalid.as_bytes()).into_owned(),
        };
        text.shrink_to_fit();
        text
    }

    /// After a long line, gives its buffer back instead of keeping it for good.
    fn release_buffer(&mut self) {
        if self.partial.capacity() > KEPT_BUFFER {
            self.partial.clear();
            self.partial.shrink_to(KEPT_BUFFER);
        }
    }
}

/// Appends to `line` up to and including the next newline, but never past `limit` bytes in
/// `line`; returns the bytes read (0 at the end of the data).
fn read_line_within(
    file: &mut BufReader<File>,
    line: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<usize> {
    let mut read = 0;
    while line.len() < limit {
        let available = file.fill_buf()?;
        if available.is_empty() {
            break;
        }
        let window = &available[..available.len().min(limit - line.len())];
        let (taken, done) = match window.iter().position(|&b| b == b'\n') {
            Some(at) => (at + 1, true),
            None => (window.len(), false),
        };
        if line.len() + taken > line.capacity() && line.len() >= KEPT_BUFFER {
            // A long line: grow to what it can reach (the whole file, within the limit)
            // rather than by doubling, which copies and holds old and new buffers at once;
            // but at least double, so a line still being written is not copied per read.
            // Pages are only touched as they are written.
            let file_len = file.get_ref().metadata().map_or(0, |m| m.len());
            let reach = usize::try_from(file_len)
                .unwrap_or(usize::MAX)
                .max(line.len() * 2)
                .min(limit);
            line.reserve_exact(reach.saturating_sub(line.len()).max(taken));
        }
        let available = file.fill_buf()?;
        let window = &available[..taken];
        line.extend_from_slice(window);
        file.consume(taken);
        read += taken;
        if done {
            break;
        }
    }
    Ok(read)
}

/// The task: reads complete lines after the committed position.
#[derive(Default)]
pub struct FileSourceTask {
    /// `None` before start, and while a poll has it on a blocking thread.
    reader: Option<Reader>,
}

/// Shows the config and the read position; the schema and buffered bytes are left out.
impl fmt::Debug for FileSourceTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("FileSourceTask");
        if let Some(reader) = &self.reader {
            debug
                .field("config", &reader.config)
                .field("open", &reader.file.is_some())
                .field("position", &reader.position)
                .field("partial_bytes", &reader.partial.len());
        }
        debug.finish_non_exhaustive()
    }
}

#[async_trait]
impl SourceTask for FileSourceTask {
    async fn start(&mut self, context: SourceTaskContext) -> Result<()> {
        let config = FileSourceConfig::from_props(&context.config)?;
        let skip_long_lines = context
            .config
            .get("errors.tolerance")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("all"));
        let mut partition = SourcePartition::new();
        partition.insert("filename".into(), json!(config.file));
        let mut position = 0;
        let mut identity = None;
        if let Some(offset) = context.offsets.offset(&partition).await? {
            position = offset
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
            identity = Identity::in_offset(&offset);
            tracing::info!(file = %config.file, position, "resuming from committed offset");
        }
        self.reader = Some(Reader {
            config,
            partition: Arc::new(partition),
            schema: Schema::string().into_ref(),
            metrics: context.metrics,
            skip_long_lines,
            file: None,
            identity,
            position,
            partial: Vec::new(),
            skipping: false,
            warned_missing: false,
            rewinds: 0,
        });
        Ok(())
    }

    async fn poll(&mut self) -> Result<Vec<SourceRecord>> {
        let mut reader = self.reader.take().ok_or_else(|| {
            Error::fatal(
                "FileStreamSource task polled before start (or after a poll was cut short)",
            )
        })?;
        let what = format!("reading {}", reader.config.file);
        let (reader, polled) = off_thread(what, move || {
            let polled = reader.poll();
            (reader, polled)
        })
        .await?;
        self.reader = Some(reader);
        match polled? {
            Polled::Records(records) => Ok(records),
            Polled::Idle => {
                tokio::time::sleep(IDLE_WAIT).await;
                Ok(Vec::new())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_api::connector::OffsetReader;
    use std::io::Write;

    struct FixedOffset(Option<SourceOffset>);

    #[async_trait]
    impl OffsetReader for FixedOffset {
        async fn offset(&self, _partition: &SourcePartition) -> Result<Option<SourceOffset>> {
            Ok(self.0.clone())
        }
    }

    fn context(file: &str, batch: &str, offset: Option<u64>) -> SourceTaskContext {
        let offset = offset.map(|p| {
            let mut m = SourceOffset::new();
            m.insert("position".into(), json!(p));
            m
        });
        context_with(file, &[("batch.size", batch)], offset)
    }

    fn context_with(
        file: &str,
        extra: &[(&str, &str)],
        offset: Option<SourceOffset>,
    ) -> SourceTaskContext {
        let config: Props = [("file", file), ("topic", "t")]
            .iter()
            .chain(extra)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SourceTaskContext {
            connector: "c".into(),
            task_id: 0,
            config,
            offsets: Arc::new(FixedOffset(offset)),
            metrics: Default::default(),
            history_topics: None,
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

    fn append(path: &std::path::Path, text: &str) {
        std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }

    #[tokio::test]
    async fn a_replaced_or_truncated_file_is_read_again_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        std::fs::write(&path, "one\ntwo\n").unwrap();
        let mut task = FileSourceTask::default();
        task.start(context(path.to_str().unwrap(), "10", None))
            .await
            .unwrap();
        let batch = task.poll().await.unwrap();
        assert_eq!(lines(&batch), ["one", "two"]);
        let inode = std::fs::metadata(&path).unwrap().ino();
        assert_eq!(
            batch[1].source_offset["inode"],
            json!(inode),
            "the offset names the file"
        );

        // Rotation: the path now names a new file, shorter than what was read.
        std::fs::rename(&path, dir.path().join("app.log.1")).unwrap();
        std::fs::write(&path, "three\n").unwrap();
        assert!(
            task.poll().await.unwrap().is_empty(),
            "the end of the old file"
        );
        assert_eq!(lines(&task.poll().await.unwrap()), ["three"]);

        // Truncation in place.
        std::fs::write(&path, "").unwrap();
        assert!(task.poll().await.unwrap().is_empty());
        append(&path, "four\n");
        assert_eq!(lines(&task.poll().await.unwrap()), ["four"]);
        let rewinds = task.reader.as_ref().unwrap().metrics.to_json();
        assert_eq!(rewinds["file_rewinds"], json!(2.0), "{rewinds:?}");
    }

    #[tokio::test]
    async fn after_a_restart_an_offset_of_another_file_reads_the_new_one_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        std::fs::write(&path, "new-1\nnew-2\n").unwrap();
        let inode = std::fs::metadata(&path).unwrap().ino();
        let device = std::fs::metadata(&path).unwrap().dev();
        let offset = |inode: u64| {
            json!({"position": 6, "device": device, "inode": inode})
                .as_object()
                .cloned()
        };
        // Committed in another (rotated-away) file: start over.
        let mut task = FileSourceTask::default();
        task.start(context_with(path.to_str().unwrap(), &[], offset(inode + 1)))
            .await
            .unwrap();
        assert_eq!(lines(&task.poll().await.unwrap()), ["new-1", "new-2"]);
        // Committed in this very file: resume after the position.
        let mut task = FileSourceTask::default();
        task.start(context_with(path.to_str().unwrap(), &[], offset(inode)))
            .await
            .unwrap();
        assert_eq!(lines(&task.poll().await.unwrap()), ["new-2"]);
    }

    #[tokio::test]
    async fn a_line_over_max_line_bytes_fails_the_task_or_is_skipped_with_tolerance() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.txt");
        let long = "x".repeat(5_000_000);
        std::fs::write(&path, format!("short\n{long}\nafter\n")).unwrap();
        let mut task = FileSourceTask::default();
        task.start(context_with(path.to_str().unwrap(), &[], None))
            .await
            .unwrap();
        let error = task.poll().await.unwrap_err();
        assert!(
            error.message().contains("byte offset 6")
                && error.message().contains("max.line.bytes=1048576"),
            "{error}"
        );

        let mut task = FileSourceTask::default();
        let tolerant = [("errors.tolerance", "all"), ("max.line.bytes", "1000")];
        task.start(context_with(path.to_str().unwrap(), &tolerant, None))
            .await
            .unwrap();
        let mut read = Vec::new();
        for _ in 0..20_000 {
            let batch = task.poll().await.unwrap();
            read.extend(lines(&batch).into_iter().map(str::to_owned));
            if read.last().map(String::as_str) == Some("after") {
                break;
            }
        }
        assert_eq!(read, ["short", "after"], "the long line skipped");
        let reader = task.reader.as_ref().unwrap();
        assert!(
            reader.partial.capacity() <= 64 * 1024,
            "the buffer stayed small"
        );
        assert_eq!(reader.position, 6 + 5_000_001 + 6);
    }
}
