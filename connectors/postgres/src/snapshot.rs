//! The snapshot: every captured table read inside one consistent view, in parallel and in
//! chunks, with memory bounded by the chunks in flight.
//!
//! * **One view for all readers**: the coordinator connection opens a repeatable-read
//!   transaction on the slot's exported snapshot (or exports its own), and every reader
//!   connection imports the same snapshot, so all chunks see the database at one instant.
//! * **Chunks by primary key**: the coordinator walks the key index to find chunk boundaries
//!   (`snapshot.fetch.size` rows each); up to `snapshot.max.threads` readers read chunks at
//!   once, and the records are handed out strictly in key order, table by table.
//! * **Resumable**: every snapshot record's offset names its table and key
//!   (`snapshot_table`, `snapshot_key`), so a snapshot interrupted by a crash resumes after the
//!   last committed row rather than starting over. The resumed part is read in a new view;
//!   the stream then replays every change since the slot's position (it is not confirmed past
//!   that during a snapshot), so the replayed history still ends at the table's state.
//! * A table without a primary key is read whole through a cursor (and resumes from its start).

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use sluice_api::data::{SchemaRef, Value};
use sluice_api::metrics::{DebeziumMetrics, TaskMetrics};
use sluice_api::record::{SourceOffset, SourcePartition, SourceRecord};
use sluice_api::{Error, Result};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, CopyOutStream};

use sluice_debezium::envelope::mark_snapshot;

use crate::binary_types::{
    binary_key_integer, binary_key_text, has_binary_decoder, has_binary_key_text,
};
use crate::config::{PostgresConfig, SnapshotMode};
use crate::copy::{BinaryRow, TextRow};
use crate::envelope::{ColumnData, SourceInfo, TableSchema, source_value};
use crate::sql::{connect, pg_error, query, quote_ident, quote_literal, unix_now_micros};

/// One table to read.
#[derive(Debug)]
pub struct SnapshotTable {
    pub schema: String,
    pub name: String,
    pub table: Arc<TableSchema>,
    /// Primary-key columns in index order: their positions in a row.
    pub key_positions: Vec<usize>,
    /// `pg_class.reltuples` (-1: never analysed).
    pub estimated_rows: i64,
}

impl SnapshotTable {
    fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    fn sql_name(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }

    fn key_list(&self) -> String {
        self.key_positions
            .iter()
            .map(|&i| quote_ident(&self.table.columns[i].name))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Where an interrupted snapshot goes on: the table, and the key of the last row delivered,
/// or for a table without a key the page range it was in (neither: the table from its start).
#[derive(Debug, Clone, PartialEq)]
pub struct ResumePoint {
    pub table: String,
    pub after_key: Option<Vec<String>>,
    pub from_page: Option<PageMark>,
}

/// A table without a key resumes at chunk granularity: from the first page of the `ctid` range
/// its last delivered row was read in (that range's rows may come twice). The resume reads in a
/// new view, where a row updated since the first one may have moved to an earlier page and is
/// not read again: its change is in the stream, which starts at the slot's position, so this
/// is only done when a stream follows that publishes updates. And only while the table keeps
/// its file: a rewrite (`VACUUM FULL`, `CLUSTER`, a type change) moves every row, so then the
/// table is read again from its start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PageMark {
    /// The range's first page (offset key `snapshot_page`).
    pub page: u64,
    /// `pg_relation_filenode` when it was read (offset key `snapshot_filenode`).
    pub filenode: u64,
}

impl ResumePoint {
    /// The resume point a committed snapshot offset describes, if it is mid-snapshot.
    pub fn from_offset(offset: &SourceOffset) -> Option<ResumePoint> {
        let in_snapshot = offset.get("snapshot").and_then(|s| s.as_bool()) == Some(true)
            && offset.get("last_snapshot_record").and_then(|s| s.as_bool()) != Some(true);
        if !in_snapshot {
            return None;
        }
        place(offset)
    }
}

/// Rows read per table, for logs and the task's status and metrics (`snapshot_rows`,
/// `snapshot_rows_estimated`, `snapshot_tables_done` gauges).
#[derive(Debug, Default)]
pub struct SnapshotProgress {
    tables: Mutex<Vec<TableProgress>>,
    metrics: TaskMetrics,
    /// Debezium's snapshot metrics (`RowsScanned`, `SnapshotRunning`, …) under its names.
    debezium: Option<DebeziumMetrics>,
}

#[derive(Debug)]
struct TableProgress {
    name: String,
    estimated: i64,
    rows: Arc<AtomicU64>,
    done: bool,
}

impl SnapshotProgress {
    /// Progress that publishes its gauges to `metrics`, and Debezium's to `debezium`.
    pub fn new(metrics: TaskMetrics, debezium: Option<DebeziumMetrics>) -> SnapshotProgress {
        SnapshotProgress {
            tables: Mutex::default(),
            metrics,
            debezium,
        }
    }

    /// The snapshot runs (`running`) or has completed.
    pub fn running(&self, running: bool) {
        if let Some(debezium) = &self.debezium {
            debezium.set("snapshot", "SnapshotRunning", f64::from(u8::from(running)));
            debezium.set(
                "snapshot",
                "SnapshotCompleted",
                f64::from(u8::from(!running)),
            );
        }
    }

    /// Copies the counters to the task's gauges.
    fn publish(&self) {
        let tables = self.tables.lock().unwrap();
        for t in tables.iter() {
            let rows = t.rows.load(Ordering::Relaxed) as f64;
            self.metrics
                .set_labeled("snapshot_rows", "table", &t.name, rows);
            self.metrics.set_labeled(
                "snapshot_rows_estimated",
                "table",
                &t.name,
                t.estimated.max(0) as f64,
            );
        }
        let done = tables.iter().filter(|t| t.done).count();
        self.metrics.set("snapshot_tables_done", done as f64);
        if let Some(debezium) = &self.debezium {
            for t in tables.iter() {
                let rows = t.rows.load(Ordering::Relaxed) as f64;
                debezium.set_table("snapshot", "RowsScanned", &t.name, rows);
            }
            debezium.set("snapshot", "TotalTableCount", tables.len() as f64);
            debezium.set(
                "snapshot",
                "RemainingTableCount",
                (tables.len() - done) as f64,
            );
        }
    }

    /// The counter of table `name`; a snapshot read again after a lost connection goes on
    /// counting where it was.
    fn add(&self, name: &str, estimated: i64) -> Arc<AtomicU64> {
        let mut tables = self.tables.lock().unwrap();
        if let Some(known) = tables.iter().find(|t| t.name == name) {
            return Arc::clone(&known.rows);
        }
        let rows = Arc::new(AtomicU64::new(0));
        tables.push(TableProgress {
            name: name.to_owned(),
            estimated,
            rows: Arc::clone(&rows),
            done: false,
        });
        rows
    }

    fn finish(&self, name: &str) {
        if let Some(t) = self
            .tables
            .lock()
            .unwrap()
            .iter_mut()
            .find(|t| t.name == name)
        {
            t.done = true;
        }
        self.publish();
    }
}

/// Everything a snapshot run needs.
#[derive(Debug)]
pub struct SnapshotJob {
    pub config: PostgresConfig,
    pub tables: Vec<SnapshotTable>,
    /// The slot's exported snapshot; `None`: export a fresh one.
    pub exported: Option<String>,
    /// The WAL position the snapshot stands for (the slot's position).
    pub lsn: u64,
    pub resume: Option<ResumePoint>,
    pub source: SchemaRef,
    pub partition: Arc<SourcePartition>,
    pub progress: Arc<SnapshotProgress>,
}

/// Reads the snapshot's records as they come, holding the newest one back so the very last
/// record of the snapshot can be marked (`last_snapshot_record`, `source.snapshot=last`).
///
/// Rows carry their key beside the record ([`SnapshotRow`]), not in its offset (a read's first
/// row names `snapshot_table` there); the last record of each batch handed out (the only one
/// whose offset is committed) gets the full offset, `snapshot_key` included. That spares a map
/// and its entries per row.
#[derive(Debug)]
pub struct SnapshotReader {
    /// Records come in runs (a chunk's worth at most), not one by one: a message per row
    /// cost more than building the row's record.
    records: mpsc::Receiver<Vec<SnapshotRow>>,
    /// What was received and not handed out yet, oldest first. Its last record stays until
    /// the next run comes, or none does: then it is the snapshot's last.
    received: std::vec::IntoIter<SnapshotRow>,
    runner: Option<JoinHandle<Result<()>>>,
    /// Where the newest record handed out was read: its key, or its page range.
    place_handed_out: Option<RowPlace>,
    lsn: u64,
    /// Where reading again would go on: after the last record handed out.
    handed_out_through: Option<ResumePoint>,
    /// The table of the newest record handed out.
    table_handed_out: Option<String>,
}

impl SnapshotReader {
    /// Starts reading in the background.
    pub fn start(job: SnapshotJob) -> SnapshotReader {
        // Two runs of up to a poll batch each: enough to keep the task fed; more only holds
        // memory (readers already work ahead).
        let (sender, records) = mpsc::channel(2);
        let lsn = job.lsn;
        let handed_out_through = job.resume.clone();
        job.progress.running(true);
        let runner = tokio::spawn(run(job, sender));
        SnapshotReader {
            records,
            received: Vec::new().into_iter(),
            runner: Some(runner),
            place_handed_out: None,
            lsn,
            table_handed_out: handed_out_through.as_ref().map(|r| r.table.clone()),
            handed_out_through,
        }
    }

    /// Where a snapshot read again (in a new view, after a lost connection) goes on so that
    /// every row handed out so far is not sent twice: `None` is the first table's start.
    pub fn resume_point(&self) -> Option<ResumePoint> {
        self.handed_out_through.clone()
    }

    /// Up to `max` records, waiting at most `wait`. `None` once the snapshot is complete and
    /// everything was handed out; an error if reading failed.
    pub async fn next_batch(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Option<Vec<SourceRecord>>> {
        let deadline = tokio::time::Instant::now() + wait;
        // Room up front: growing copies every record again (capped, as the setting may be huge).
        let mut batch = Vec::with_capacity(max.min(8192));
        loop {
            while batch.len() < max && self.received.len() > 1 {
                let row = self.received.next().expect("more than one left");
                self.hand_out(row, &mut batch);
            }
            if batch.len() >= max {
                return Ok(Some(self.seal(batch)));
            }
            // One record left at most: whether it is the snapshot's last, the next run tells.
            let run = if batch.is_empty() {
                match tokio::time::timeout_at(deadline, self.records.recv()).await {
                    Ok(run) => run,
                    Err(_) => return Ok(Some(batch)),
                }
            } else {
                match self.records.try_recv() {
                    Ok(run) => Some(run),
                    Err(mpsc::error::TryRecvError::Empty) => return Ok(Some(self.seal(batch))),
                    Err(mpsc::error::TryRecvError::Disconnected) => None,
                }
            };
            match run {
                Some(run) if run.is_empty() => {}
                Some(run) => {
                    if let Some(row) = self.received.next() {
                        self.hand_out(row, &mut batch);
                    }
                    self.received = run.into_iter();
                }
                None => {
                    if let Some(runner) = self.runner.take() {
                        runner.await.map_err(|e| {
                            Error::fatal(format!("the snapshot reader panicked: {e}"))
                        })??;
                    }
                    if let Some(last) = self.received.next() {
                        self.hand_out(last, &mut batch);
                        let last = batch.last_mut().expect("just handed out");
                        self.complete(last, true);
                        mark_last(last);
                        return Ok(Some(batch));
                    }
                    return Ok(if batch.is_empty() {
                        None
                    } else {
                        Some(self.seal(batch))
                    });
                }
            }
        }
    }

    /// Adds `record` to `batch`, following which table the records handed out are of (a
    /// table's first record names it).
    fn hand_out(&mut self, row: SnapshotRow, batch: &mut Vec<SourceRecord>) {
        let SnapshotRow { record, place } = row;
        self.place_handed_out = place;
        if let Some(table) = record
            .source_offset
            .get("snapshot_table")
            .and_then(|t| t.as_str())
        {
            self.table_handed_out = Some(table.to_owned());
        }
        batch.push(record);
    }

    /// Completes the offset of the batch's last record.
    fn seal(&mut self, mut batch: Vec<SourceRecord>) -> Vec<SourceRecord> {
        if let Some(last) = batch.last_mut() {
            self.complete(last, false);
        }
        batch
    }

    /// Gives a record the whole offset: its table (rows carry only their key), the slot's
    /// position and the snapshot flags; reading again would go on after it.
    fn complete(&mut self, record: &mut SourceRecord, last_of_snapshot: bool) {
        let offset = &mut record.source_offset;
        if !offset.contains_key("snapshot_table")
            && let Some(table) = &self.table_handed_out
        {
            offset.insert("snapshot_table".into(), json!(table));
        }
        match self.place_handed_out.take() {
            Some(RowPlace::Key(key)) => {
                offset.insert("snapshot_key".into(), json!(key));
            }
            Some(RowPlace::IntegerKey(key)) => {
                offset.insert("snapshot_key".into(), json!([key.to_string()]));
            }
            Some(RowPlace::Pages(mark)) => {
                offset.insert("snapshot_page".into(), json!(mark.page));
                offset.insert("snapshot_filenode".into(), json!(mark.filenode));
            }
            None => {}
        }
        offset.insert("lsn".into(), json!(self.lsn));
        offset.insert("snapshot".into(), json!(true));
        offset.insert("last_snapshot_record".into(), json!(last_of_snapshot));
        self.handed_out_through = place(offset);
    }
}

impl Drop for SnapshotReader {
    fn drop(&mut self) {
        if let Some(runner) = self.runner.take() {
            runner.abort();
        }
    }
}

/// A key's columns in text (`None`: SQL NULL), as offsets and chunk bounds hold it.
type KeyText = Vec<Option<String>>;

/// A snapshot record on its way to the task, with where its row was read: only the offset of
/// the last record of a batch needs that, so it travels beside the record.
#[derive(Debug)]
struct SnapshotRow {
    record: SourceRecord,
    place: Option<RowPlace>,
}

/// Where a snapshot row was read, as a resume needs it.
#[derive(Debug)]
enum RowPlace {
    /// The row's key (a keyed table: a resume goes on right after it).
    Key(KeyText),
    /// A key of one integer column, kept as its value: its text (what [`RowPlace::Key`]
    /// would hold) is only written for the last row of a batch, and most keys are this.
    IntegerKey(i64),
    /// The `ctid` range it was in (a table without a key: a resume reads that range again).
    Pages(PageMark),
}

/// The snapshot's place an offset names: after `snapshot_key` in `snapshot_table`, or from
/// `snapshot_page` of it (neither: the table from its start).
fn place(offset: &SourceOffset) -> Option<ResumePoint> {
    let table = offset.get("snapshot_table")?.as_str()?.to_owned();
    let after_key = offset.get("snapshot_key").and_then(|k| {
        k.as_array()?
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect()
    });
    // (Unreadable: the table from its start.)
    let from_page = match (offset.get("snapshot_page"), offset.get("snapshot_filenode")) {
        (Some(page), Some(filenode)) => page
            .as_u64()
            .zip(filenode.as_u64())
            .map(|(page, filenode)| PageMark { page, filenode }),
        _ => None,
    };
    Some(ResumePoint {
        table,
        after_key,
        from_page,
    })
}

fn mark_last(record: &mut SourceRecord) {
    mark_snapshot(record, "last");
}

/// Opens a connection inside the snapshot's transaction, importing `snapshot`.
async fn reader_connection(config: &PostgresConfig, snapshot: &str) -> Result<Client> {
    let client = connect(config).await?;
    client
        .batch_execute(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {}",
            quote_literal(snapshot)
        ))
        .await
        .map_err(|e| pg_error("joining the snapshot's view", config, e))?;
    Ok(client)
}

async fn run(job: SnapshotJob, sender: mpsc::Sender<Vec<SnapshotRow>>) -> Result<()> {
    let config = &job.config;
    let started = Instant::now();
    let coordinator = connect(config).await?;
    coordinator
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(|e| pg_error("beginning the snapshot", config, e))?;
    let snapshot = match &job.exported {
        Some(name) => {
            coordinator
                .batch_execute(&format!("SET TRANSACTION SNAPSHOT {}", quote_literal(name)))
                .await
                .map_err(|e| pg_error("using the slot's exported snapshot", config, e))?;
            name.clone()
        }
        None => query(
            &coordinator,
            config,
            "exporting the snapshot",
            "select pg_export_snapshot()",
        )
        .await?
        .first()
        .and_then(|r| r[0].clone())
        .ok_or_else(|| Error::data("pg_export_snapshot returned nothing"))?,
    };
    let threads = config.snapshot_threads();
    let mut readers = Vec::with_capacity(threads);
    for _ in 0..threads {
        readers.push(Arc::new(reader_connection(config, &snapshot).await?));
    }
    let coordinator = Arc::new(coordinator);
    tracing::info!(
        tables = job.tables.len(),
        threads,
        chunk_rows = config.snapshot_fetch_size,
        resume = ?job.resume,
        "snapshot started"
    );

    // Debezium stamps snapshot records with the snapshot transaction's id and start time.
    let stamp = query(
        &coordinator,
        config,
        "reading the snapshot transaction's id",
        "select txid_current()::text, (extract(epoch from current_timestamp) * 1000000)::int8::text",
    )
    .await?;
    let field = |i: usize| {
        stamp
            .first()
            .and_then(|r| r.get(i).cloned().flatten())
            .and_then(|v| v.parse::<i64>().ok())
    };
    let snapshot_tx = field(0);
    let snapshot_micros = field(1).unwrap_or_else(unix_now_micros);
    let mut skipping = job.resume.is_some();
    let mut first_of_snapshot = job.resume.is_none();
    let mut total = 0u64;
    for table in &job.tables {
        let qualified = table.qualified();
        let mut after_key = None;
        let mut from_page = None;
        if skipping {
            let resume = job.resume.as_ref().expect("resume point");
            if resume.table != qualified {
                continue;
            }
            skipping = false;
            after_key = resume
                .after_key
                .clone()
                .filter(|_| !table.key_positions.is_empty());
            from_page = resume.from_page.filter(|_| table.key_positions.is_empty());
        }
        let counter = job.progress.add(&qualified, table.estimated_rows);
        let mut outlet = Outlet {
            sender: &sender,
            run_size: config.max_batch.max(1),
            counter: &counter,
            progress: &job.progress,
            pending: None,
            first_of_snapshot: &mut first_of_snapshot,
        };
        let info = SourceInfo {
            prefix: &config.topic_prefix,
            db: &config.dbname,
            schema: &table.table.schema,
            table: &table.table.table,
            commit_micros: snapshot_micros,
            snapshot: "true",
            tx_id: snapshot_tx,
            lsn: Some(job.lsn),
            last_commit_lsn: None,
        };
        let mut context = RowContext {
            table: Arc::clone(&table.table),
            qualified: qualified.clone(),
            partition: Arc::clone(&job.partition),
            config: config.clone(),
            micros: snapshot_micros,
            key_positions: table.key_positions.clone(),
            binary: false,
            source_block: {
                let mut block = source_value(&job.source, &info);
                // Cloned onto every row: names, and the snapshot's position, which is one per
                // snapshot.
                block.intern_strings();
                block
            },
        };
        match context.copy_format() {
            Ok(()) => {
                context.binary = true;
                tracing::info!(table = %qualified, "snapshot reads the table with binary COPY");
            }
            Err(why) => tracing::info!(
                table = %qualified,
                "snapshot reads the table with text COPY: {why}"
            ),
        }
        let read = if table.key_positions.is_empty() {
            read_page_ranges(
                &coordinator,
                &readers,
                table,
                from_page,
                &context,
                &mut outlet,
            )
            .await?
        } else {
            read_chunked(
                &coordinator,
                &readers,
                table,
                after_key,
                &context,
                &mut outlet,
            )
            .await?
        };
        if !read || !outlet.finish_table().await {
            return Ok(()); // the task stopped reading
        }
        job.progress.finish(&qualified);
        let rows = counter.load(Ordering::Relaxed);
        total += rows;
        tracing::info!(table = %qualified, rows, "snapshot read table");
    }
    if skipping {
        tracing::warn!(resume = ?job.resume, "the table the snapshot stopped in is no longer captured; the snapshot is complete");
    }
    job.progress.publish();
    job.progress.running(false);
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        rows = total,
        seconds = %format!("{seconds:.2}"),
        rows_per_second = (total as f64 / seconds.max(1e-9)) as u64,
        "snapshot complete"
    );
    for client in readers.iter().chain(std::iter::once(&coordinator)) {
        let _ = client.batch_execute("COMMIT").await;
    }
    Ok(())
}

/// What turning a row into a record needs; cheap to clone into reader tasks.
#[derive(Clone)]
struct RowContext {
    table: Arc<TableSchema>,
    qualified: String,
    partition: Arc<SourcePartition>,
    config: PostgresConfig,
    micros: i64,
    key_positions: Vec<usize>,
    /// Read with `COPY … (FORMAT binary)`: every column has a binary decoder.
    binary: bool,
    /// The `source` block, the same for every row of the table (the snapshot marker is set
    /// on the few records that carry one afterwards), so it is built once and cloned.
    source_block: Value,
}

impl RowContext {
    /// The record of one decoded row, with `offset` (and its key beside it).
    fn record(&self, row: &CopyRow, offset: SourceOffset, now: i64) -> Result<SourceRecord> {
        let after = self
            .table
            .row_from(|index| row.column(index))
            .map_err(|e| e.context(format!("the snapshot of {}", self.qualified)))?;
        let key = self.table.key_of(&after);
        let value = self
            .table
            .envelope_at(Value::Null, after, self.source_block.clone(), "r", now);
        Ok(self
            .table
            .source_record(key, value, &self.partition, offset, self.micros))
    }

    /// Where a decoded row of a keyed table was read: its key.
    fn place_of(&self, row: &CopyRow) -> RowPlace {
        if let ([i], CopyRow::Binary(binary)) = (self.key_positions.as_slice(), row)
            && let Some(key) = binary
                .field(*i)
                .and_then(|b| binary_key_integer(&self.table.columns[*i].column_type, b))
        {
            return RowPlace::IntegerKey(key);
        }
        RowPlace::Key(self.key_text(row))
    }

    /// The key of a decoded row, in text, as offsets and chunk bounds hold it.
    fn key_text(&self, row: &CopyRow) -> KeyText {
        self.key_positions
            .iter()
            .map(|&i| match row {
                CopyRow::Text(row) => row.text(i),
                CopyRow::Binary(row) => row
                    .field(i)
                    .and_then(|b| binary_key_text(&self.table.columns[i].column_type, b)),
            })
            .collect()
    }

    /// Whether the table is read in binary, or else why not (for the log).
    fn copy_format(&self) -> std::result::Result<(), String> {
        let columns = &self.table.columns;
        // Every column, left out ones too: `SELECT *` sends them all, a binary COPY fails on
        // a type without a binary form (`aclitem`, a user type without SEND), and a column
        // left out may still be decoded as a message.key.columns key.
        if let Some(column) = columns.iter().find(|c| !has_binary_decoder(&c.column_type)) {
            return Err(format!(
                "column {} ({}) has no binary decoder",
                column.name, column.type_name
            ));
        }
        if let Some(&key) = self
            .key_positions
            .iter()
            .find(|&&i| !has_binary_key_text(&columns[i].column_type))
        {
            return Err(format!(
                "key column {} ({}) is not written back as text from its binary form",
                columns[key].name, columns[key].type_name
            ));
        }
        Ok(())
    }

    fn read_error(&self, e: tokio_postgres::Error) -> Error {
        pg_error(&format!("reading {}", self.qualified), &self.config, e)
    }
}

/// One decoded row of a copy, in the format the table is read in.
enum CopyRow {
    Text(TextRow),
    Binary(BinaryRow),
}

impl CopyRow {
    fn column(&self, index: usize) -> ColumnData<'_> {
        match self {
            CopyRow::Text(row) => row.field(index).map_or(ColumnData::Null, ColumnData::Text),
            CopyRow::Binary(row) => row
                .field(index)
                .map_or(ColumnData::Null, ColumnData::Binary),
        }
    }

    /// Decodes one message; `false` at the end of the copy.
    fn parse(&mut self, message: bytes::Bytes) -> Result<bool> {
        match self {
            CopyRow::Text(row) => row.parse(&message).map(|()| true),
            CopyRow::Binary(row) => row.parse(message),
        }
    }
}

/// `COPY (<select>) TO STDOUT` streamed into records, in binary when every column of the
/// table has a binary decoder ([`crate::binary_types`]), else in text. Each record of a keyed
/// table comes with its key (a [`SnapshotRow`]), so a resume goes on right after the last
/// row committed; the table's name (`snapshot_table`) is only in the read's first record's
/// offset. The reader puts both into the one record per batch whose offset is committed (see
/// [`SnapshotReader`]).
struct CopyReader<'a> {
    context: &'a RowContext,
    stream: Pin<Box<CopyOutStream>>,
    row: CopyRow,
    first: bool,
    /// The page range read, for a table without a key.
    pages: Option<PageMark>,
}

impl<'a> CopyReader<'a> {
    async fn open(
        context: &'a RowContext,
        client: &Client,
        select: &str,
        pages: Option<PageMark>,
    ) -> Result<CopyReader<'a>> {
        let binary = context.binary;
        let format = if binary { " (FORMAT binary)" } else { "" };
        let stream = client
            .copy_out(&format!("COPY ({select}) TO STDOUT{format}"))
            .await
            .map_err(|e| context.read_error(e))?;
        Ok(CopyReader {
            context,
            stream: Box::pin(stream),
            row: if binary {
                CopyRow::Binary(BinaryRow::default())
            } else {
                CopyRow::Text(TextRow::default())
            },
            first: true,
            pages,
        })
    }

    /// Up to `max` records; empty once the read is complete.
    async fn next_batch(&mut self, max: usize) -> Result<Vec<SnapshotRow>> {
        let context = self.context;
        // A chunk's rows, about `snapshot.fetch.size` of them: room for them up front, as
        // growing a vector of records copies every record again.
        // (Capped: the setting may be huge, and the vector still grows past it if need be.)
        let mut records =
            Vec::with_capacity(max.min(context.config.snapshot_fetch_size + 1).min(16_384));
        let mut now = 0;
        while records.len() < max {
            let Some(message) = self.stream.next().await else {
                break;
            };
            let message = message.map_err(|e| context.read_error(e))?;
            if !self
                .row
                .parse(message)
                .map_err(|e| e.context(format!("the snapshot of {}", context.qualified)))?
            {
                continue; // a binary copy's trailer; the stream ends next
            }
            let mut offset = SourceOffset::new();
            if std::mem::take(&mut self.first) {
                offset.insert("snapshot_table".into(), json!(context.qualified));
            }
            let place = if context.key_positions.is_empty() {
                self.pages.map(RowPlace::Pages)
            } else {
                Some(context.place_of(&self.row))
            };
            // The processing time, read once per few rows: a row takes about a microsecond.
            if records.len() % CLOCK_EVERY_ROWS == 0 {
                now = sluice_debezium::envelope::now_micros();
            }
            records.push(SnapshotRow {
                record: context.record(&self.row, offset, now)?,
                place,
            });
        }
        Ok(records)
    }
}

/// How many snapshot rows share one reading of the clock for their `ts_ms`/`ts_us`/`ts_ns`.
const CLOCK_EVERY_ROWS: usize = 64;

/// How many rows go out between two progress updates within a chunk.
const PUBLISH_EVERY_ROWS: u64 = 1024;

/// Where read records go: the task's queue, counted per table and published as progress.
/// Each table's newest record is held back until the next arrives, so the last one can be
/// marked `last_in_data_collection`; the first is marked `first` (the snapshot's first) or
/// `first_in_data_collection`, as Debezium marks them (`last`, the snapshot's very last, is
/// the reader's to mark).
struct Outlet<'a> {
    sender: &'a mpsc::Sender<Vec<SnapshotRow>>,
    /// The most records one message carries (the task's poll batch).
    run_size: usize,
    counter: &'a AtomicU64,
    progress: &'a SnapshotProgress,
    pending: Option<SnapshotRow>,
    first_of_snapshot: &'a mut bool,
}

impl Outlet<'_> {
    /// Hands records to the task; `false` when it stopped listening. The records move once,
    /// in bulk, into the runs sent: a record is a few hundred bytes, and moving each through
    /// the held-back slot cost more than building it.
    async fn deliver(&mut self, records: Vec<SnapshotRow>) -> bool {
        let mut records = records.into_iter();
        if self.pending.is_none() {
            // The table's first record.
            let Some(mut first) = records.next() else {
                self.progress.publish();
                return true;
            };
            let marker = if std::mem::take(self.first_of_snapshot) {
                "first"
            } else {
                "first_in_data_collection"
            };
            mark_snapshot(&mut first.record, marker);
            self.pending = Some(first);
        }
        // The newest record is held back; the one held before goes out first.
        let Some(newest) = records.next_back() else {
            self.progress.publish();
            return true;
        };
        let held = self.pending.replace(newest).expect("set above");
        let mut run = Vec::with_capacity((records.len() + 1).min(self.run_size));
        run.push(held);
        for record in records {
            if run.len() >= self.run_size && !self.send(&mut run).await {
                return false;
            }
            run.push(record);
        }
        let sent = self.send(&mut run).await;
        self.progress.publish();
        sent
    }

    /// Sends `run` (emptied) as one message, counting it; `false` when the task stopped
    /// listening.
    async fn send(&mut self, run: &mut Vec<SnapshotRow>) -> bool {
        if run.is_empty() {
            return true;
        }
        let count = run.len() as u64;
        let capacity = run.capacity();
        let run = std::mem::replace(run, Vec::with_capacity(capacity));
        if self.sender.send(run).await.is_err() {
            return false;
        }
        // Published along the way too: a chunk larger than the queue waits for the task
        // mid-way, and its progress shows meanwhile.
        let before = self.counter.fetch_add(count, Ordering::Relaxed);
        if before / PUBLISH_EVERY_ROWS != (before + count) / PUBLISH_EVERY_ROWS {
            self.progress.publish();
        }
        true
    }

    /// Sends the table's last record, marked; `false` when the task stopped listening.
    async fn finish_table(&mut self) -> bool {
        let Some(mut last) = self.pending.take() else {
            return true;
        };
        if snapshot_marker(&last.record) != Some("first") {
            mark_snapshot(&mut last.record, "last_in_data_collection");
        }
        if self.sender.send(vec![last]).await.is_err() {
            return false;
        }
        self.counter.fetch_add(1, Ordering::Relaxed);
        self.progress.publish();
        true
    }
}

/// The record's `source.snapshot`.
fn snapshot_marker(record: &SourceRecord) -> Option<&str> {
    let Value::Struct(envelope) = &record.record.value else {
        return None;
    };
    let Some(Value::Struct(source)) = envelope.get("source") else {
        return None;
    };
    match source.get("snapshot") {
        Some(Value::String(marker)) => Some(marker.as_str()),
        _ => None,
    }
}

fn row_literal(values: &[Option<String>]) -> String {
    values
        .iter()
        .map(|v| {
            v.as_deref()
                .map(quote_literal)
                .unwrap_or_else(|| "NULL".into())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn read_chunked(
    coordinator: &Arc<Client>,
    readers: &[Arc<Client>],
    table: &SnapshotTable,
    after_key: Option<Vec<String>>,
    context: &RowContext,
    outlet: &mut Outlet<'_>,
) -> Result<bool> {
    let config = &context.config;
    let keys = table.key_list();
    let name = table.sql_name();
    let chunk = config.snapshot_fetch_size.max(1);
    // Chunk bounds `(low, high]` by key, found by walking the key index ahead of the readers.
    let first_low: Option<Vec<Option<String>>> =
        after_key.map(|k| k.into_iter().map(Some).collect());
    let bounds = futures_util::stream::unfold(Some(first_low), {
        let coordinator = Arc::clone(coordinator);
        let keys = keys.clone();
        let name = name.clone();
        let config = config.clone();
        move |low| {
            let coordinator = Arc::clone(&coordinator);
            let keys = keys.clone();
            let name = name.clone();
            let config = config.clone();
            async move {
                let low = low?;
                let filter = low
                    .as_ref()
                    .map(|l| format!("where ({keys}) > ({})", row_literal(l)))
                    .unwrap_or_default();
                let high = query(
                    &coordinator,
                    &config,
                    "finding snapshot chunk bounds",
                    &format!(
                        "select {keys} from {name} {filter} order by {keys} offset {} limit 1",
                        chunk - 1
                    ),
                )
                .await
                .map(|rows| rows.into_iter().next());
                match high {
                    Err(e) => Some((Err(e), None)),
                    Ok(Some(high)) => Some((Ok((low, Some(high.clone()))), Some(Some(high)))),
                    Ok(None) => Some((Ok((low, None)), None)),
                }
            }
        }
    });
    let selects = bounds.map(move |bound| {
        let (low, high) = bound?;
        let mut filters = Vec::new();
        if let Some(low) = &low {
            filters.push(format!("({keys}) > ({})", row_literal(low)));
        }
        if let Some(high) = &high {
            filters.push(format!("({keys}) <= ({})", row_literal(high)));
        }
        let filter = if filters.is_empty() {
            String::new()
        } else {
            format!("where {}", filters.join(" and "))
        };
        Ok((
            format!("select * from {name} {filter} order by {keys}"),
            None,
        ))
    });
    read_chunks(selects, readers, table, context, outlet).await
}

/// Reads the chunks `selects` names (with their page range, if they are one), each with one
/// `COPY` on the next reader (in turn, as many at once as there are readers), and hands them
/// out in the order of `selects`.
async fn read_chunks(
    selects: impl futures_util::Stream<Item = Result<(String, Option<PageMark>)>>,
    readers: &[Arc<Client>],
    table: &SnapshotTable,
    context: &RowContext,
    outlet: &mut Outlet<'_>,
) -> Result<bool> {
    let mut chunks = std::pin::pin!(
        selects
            .enumerate()
            .map(|(index, select)| {
                let reader = Arc::clone(&readers[index % readers.len()]);
                let context = context.clone();
                tokio::spawn(async move {
                    let (select, pages) = select?;
                    CopyReader::open(&context, &reader, &select, pages)
                        .await?
                        .next_batch(usize::MAX)
                        .await
                })
            })
            .buffered(readers.len())
    );
    let mut last_log = Instant::now();
    while let Some(joined) = chunks.next().await {
        let records =
            joined.map_err(|e| Error::fatal(format!("a snapshot reader panicked: {e}")))??;
        if !outlet.deliver(records).await {
            return Ok(false);
        }
        if last_log.elapsed() >= Duration::from_secs(2) {
            last_log = Instant::now();
            tracing::info!(table = %context.qualified, rows = outlet.counter.load(Ordering::Relaxed), estimated = table.estimated_rows.max(0), "snapshot progress");
        }
    }
    Ok(true)
}

/// A table without a primary key: `ctid` page ranges of about `snapshot.fetch.size` rows each
/// (by `pg_class`'s rows per page), computed up front from the table's size, so the readers
/// read them in parallel without waiting on each other (a TID range scan each) and they are
/// handed out in page order. The last range is open-ended: pages added since the size was read
/// hold no row the snapshot sees, but nothing is assumed. A resume reads on from the range its
/// last committed row was in (see [`PageMark`]), if the table still has the same file.
async fn read_page_ranges(
    coordinator: &Client,
    readers: &[Arc<Client>],
    table: &SnapshotTable,
    from: Option<PageMark>,
    context: &RowContext,
    outlet: &mut Outlet<'_>,
) -> Result<bool> {
    let config = &context.config;
    let name = table.sql_name();
    let class = format!("{}::regclass", quote_literal(&name));
    let size = query(
        coordinator,
        config,
        "reading the table's size",
        &format!(
            "select (pg_relation_size({class}) / current_setting('block_size')::int8)::text, \
             greatest(reltuples, 0)::int8::text, greatest(relpages, 1)::text, \
             pg_relation_filenode({class})::text, \
             (select count(*) from pg_publication where pubname = {} and pubupdate)::text \
             from pg_class where oid = {class}",
            quote_literal(&config.publication)
        ),
    )
    .await?;
    let field = |i: usize| {
        size.first()
            .and_then(|r| r.get(i).cloned().flatten())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let (pages, rows, counted_pages, filenode) = (field(0), field(1), field(2).max(1), field(3));
    let updates_streamed = config.snapshot != SnapshotMode::InitialOnly && field(4) == 1;
    let first_page = match from {
        Some(_) if !updates_streamed => {
            tracing::info!(table = %context.qualified, "the snapshot of the table reads it again from its start: no stream of its updates follows (snapshot.mode=initial_only, or a publication without updates), and rows updated since may have moved to earlier pages");
            0
        }
        Some(mark) if mark.filenode == filenode => {
            tracing::info!(table = %context.qualified, page = mark.page, "the snapshot of the table resumes at the page range it stopped in");
            mark.page
        }
        Some(mark) => {
            tracing::warn!(table = %context.qualified, was = mark.filenode, now = filenode, "the table was rewritten since its snapshot stopped (its rows may have moved between pages); reading it again from its start");
            0
        }
        None => 0,
    };
    // Never analysed: a guess of 100 rows of a page.
    let rows_per_page = if rows == 0 {
        100
    } else {
        rows.div_ceil(counted_pages).max(1)
    };
    let pages_per_chunk = (config.snapshot_fetch_size.max(1) as u64)
        .div_ceil(rows_per_page)
        .max(1);
    let ranges = page_ranges(first_page, pages, pages_per_chunk);
    tracing::info!(table = %context.qualified, pages, chunks = ranges.len(), "snapshot reads the table by ctid page ranges (no primary key)");
    let selects = ranges.into_iter().map(move |(low, high)| {
        let mut filter = format!("ctid >= '({low},0)'::tid");
        if let Some(high) = high {
            filter.push_str(&format!(" and ctid < '({high},0)'::tid"));
        }
        let mark = PageMark {
            page: low,
            filenode,
        };
        Ok((format!("select * from {name} where {filter}"), Some(mark)))
    });
    read_chunks(
        futures_util::stream::iter(selects),
        readers,
        table,
        context,
        outlet,
    )
    .await
}

/// `[low, high)` page ranges of `pages_per_chunk` pages from `first_page` on, over a table of
/// `pages` pages; the last one open-ended (`None`).
fn page_ranges(first_page: u64, pages: u64, pages_per_chunk: u64) -> Vec<(u64, Option<u64>)> {
    let mut ranges = Vec::new();
    let mut low = first_page;
    while low + pages_per_chunk < pages {
        ranges.push((low, Some(low + pages_per_chunk)));
        low += pages_per_chunk;
    }
    ranges.push((low, None));
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_ranges_cover_every_page_and_the_last_is_open_ended() {
        assert_eq!(page_ranges(0, 0, 4), vec![(0, None)]);
        assert_eq!(page_ranges(0, 4, 4), vec![(0, None)]);
        // A resume from page 8 of a 10-page table, and from past its end (it grew meanwhile).
        assert_eq!(page_ranges(8, 10, 4), vec![(8, None)]);
        assert_eq!(page_ranges(12, 10, 4), vec![(12, None)]);
        assert_eq!(page_ranges(2, 10, 4), vec![(2, Some(6)), (6, None)]);
        assert_eq!(
            page_ranges(0, 10, 4),
            vec![(0, Some(4)), (4, Some(8)), (8, None)]
        );
    }
}
