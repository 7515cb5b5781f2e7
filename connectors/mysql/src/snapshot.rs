//! The consistent snapshot: one `START TRANSACTION WITH CONSISTENT SNAPSHOT` view, whose
//! binlog position MariaDB reports (`binlog_snapshot_file`/`_position`) without any lock, read
//! table by table in the background; the stream then starts exactly at that position.

use std::sync::Arc;

use mysql_async::prelude::*;
use serde_json::json;
use sluice_api::data::Value;
use sluice_api::metrics::DebeziumMetrics;
use sluice_api::record::{SourceOffset, SourcePartition, SourceRecord};
use sluice_api::{Error, Result};
use tokio::sync::mpsc;

use crate::config::MySqlConfig;
use sluice_debezium::envelope::{envelope_value, mark_snapshot};

use crate::envelope::{SourceInfo, SourceNames, source_value};
use crate::history::{dropped_change, table_change};
use crate::schema_change::SchemaChangeSchemas;
use crate::sql::{connect, describe, list_tables_where, my_error, quote_ident, show_create};
use crate::table::{ColumnInfo, TableSchema};

/// The server's tables, listed once, and the columns and `SHOW CREATE TABLE` statement of each
/// one asked for, read once: the snapshot's schema change events and its data read the same
/// tables.
#[derive(Debug)]
pub struct Catalog {
    /// Every base table outside the system databases, ordered by the server.
    tables: Vec<(String, String)>,
    described: std::collections::HashMap<(String, String), (Vec<ColumnInfo>, String)>,
}

impl Catalog {
    /// Lists the server's tables.
    pub async fn list(conn: &mut mysql_async::Conn, config: &MySqlConfig) -> Result<Self> {
        Ok(Self {
            tables: list_tables_where(conn, config, |_, _| true).await?,
            described: Default::default(),
        })
    }

    /// The tables `keep(db, table)` keeps, in the server's order.
    fn tables(&self, keep: impl Fn(&str, &str) -> bool) -> Vec<(String, String)> {
        self.tables
            .iter()
            .filter(|(db, table)| keep(db, table))
            .cloned()
            .collect()
    }

    /// [`Self::describe`]'s answer, no longer kept.
    async fn take(
        &mut self,
        conn: &mut mysql_async::Conn,
        config: &MySqlConfig,
        db: &str,
        table: &str,
    ) -> Result<(Vec<ColumnInfo>, String)> {
        self.describe(conn, config, db, table).await?;
        Ok(self
            .described
            .remove(&(db.to_string(), table.to_string()))
            .expect("described just above"))
    }

    /// A table's columns and statement (both empty when it is gone), read on first ask.
    async fn describe(
        &mut self,
        conn: &mut mysql_async::Conn,
        config: &MySqlConfig,
        db: &str,
        table: &str,
    ) -> Result<&(Vec<ColumnInfo>, String)> {
        let name = (db.to_string(), table.to_string());
        if !self.described.contains_key(&name) {
            let columns = describe(conn, config, db, table).await?;
            let ddl = show_create(conn, db, table).await;
            self.described.insert(name.clone(), (columns, ddl));
        }
        Ok(&self.described[&name])
    }
}

/// The position a snapshot stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub file: String,
    pub pos: u64,
}

/// Where an interrupted snapshot's last stored record stood, read from its offset
/// (`snapshot_table`, `snapshot_key`): the tables listed before that one were read whole, and
/// that one up to the key. A new snapshot reads on from there instead of from the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeAt {
    /// `db.table`.
    pub table: String,
    /// The record's primary key values as the server's text, in column order; `None` when the
    /// table cannot be read on by key (no primary key, or a key type whose text order is not
    /// its index order): it is read again whole.
    pub key: Option<Vec<String>>,
}

impl ResumeAt {
    /// The resume point an interrupted snapshot's offset holds, if any.
    pub fn from_offset(offset: &SourceOffset) -> Option<ResumeAt> {
        let table = offset.get("snapshot_table")?.as_str()?.to_owned();
        let key = offset.get("snapshot_key").and_then(|k| {
            k.as_array()?
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<String>>>()
        });
        Some(ResumeAt { table, key })
    }
}

/// Primary key types whose text form, compared as the column compares it, orders as the key
/// index does (ENUM, SET, BIT and floating point do not), so `WHERE (key) > (text)` reads on
/// exactly after a row.
fn orders_by_text(data_type: &str) -> bool {
    matches!(
        data_type,
        "tinyint"
            | "smallint"
            | "mediumint"
            | "int"
            | "integer"
            | "bigint"
            | "decimal"
            | "char"
            | "varchar"
            | "binary"
            | "varbinary"
            | "date"
            | "datetime"
            | "timestamp"
            | "time"
            | "year"
    )
}

/// How a table is read: in primary-key order when it has one and is InnoDB (whose rows are
/// stored in that order, so ordering costs nothing; other engines would sort the table), so a
/// snapshot can read on after the last row an interrupted one stored.
struct KeyOrder {
    /// The primary key's columns (indexes into the row), in the key's order.
    columns: Vec<usize>,
    /// Whether their text form orders as the key does.
    resumable: bool,
}

impl KeyOrder {
    /// `key`: the primary key's column names in its order (`SEQ_IN_INDEX`).
    fn of(schema: &TableSchema, key: &[String], innodb: bool) -> KeyOrder {
        let columns: Vec<usize> = key
            .iter()
            .filter(|_| innodb)
            .filter_map(|name| schema.columns.iter().position(|c| c.name == *name))
            .collect();
        let columns = if columns.len() == key.len() {
            columns
        } else {
            Vec::new()
        };
        let resumable = !columns.is_empty()
            && columns
                .iter()
                .all(|i| orders_by_text(&schema.columns[*i].data_type));
        KeyOrder { columns, resumable }
    }

    /// `SELECT * … [WHERE (key) > (after)] [ORDER BY key]`; `no_backslash_escapes`: the
    /// session's `sql_mode` has NO_BACKSLASH_ESCAPES (how the literals must be escaped). A
    /// stored key that cannot be a literal (not this key's shape) reads the table from its start.
    fn select(
        &self,
        schema: &TableSchema,
        after: Option<&[String]>,
        no_backslash_escapes: bool,
    ) -> String {
        let predicate = after.and_then(|after| self.after(schema, after, no_backslash_escapes));
        self.select_where(schema, predicate.as_deref())
    }

    /// One chunk: `SELECT * … WHERE (key) > (after) AND NOT (key) > (until) ORDER BY key`, either
    /// bound optional; `None` when a bound cannot be a literal (read by key only when it can).
    fn select_chunk(
        &self,
        schema: &TableSchema,
        after: Option<&[String]>,
        until: Option<&[String]>,
        no_backslash_escapes: bool,
    ) -> Option<String> {
        let lower = match after {
            Some(after) => Some(self.after(schema, after, no_backslash_escapes)?),
            None => None,
        };
        let upper = match until {
            Some(until) => Some(self.after(schema, until, no_backslash_escapes)?),
            None => None,
        };
        let predicate = match (lower, upper) {
            (Some(lower), Some(upper)) => Some(format!("({lower}) AND NOT ({upper})")),
            (Some(lower), None) => Some(lower),
            (None, Some(upper)) => Some(format!("NOT ({upper})")),
            (None, None) => None,
        };
        Some(self.select_where(schema, predicate.as_deref()))
    }

    /// The key of the `rows`-th row after `after` (from the start when `None`), the last of the
    /// chunk that begins there: `SELECT key … LIMIT 1 OFFSET rows - 1`, an index range scan.
    fn chunk_end(
        &self,
        schema: &TableSchema,
        after: Option<&[String]>,
        rows: usize,
        no_backslash_escapes: bool,
    ) -> Option<String> {
        let names = self.names(schema).join(", ");
        let mut sql = format!(
            "SELECT {names} FROM {}.{}",
            quote_ident(&schema.db),
            quote_ident(&schema.table)
        );
        if let Some(after) = after {
            sql.push_str(&format!(
                " WHERE {}",
                self.after(schema, after, no_backslash_escapes)?
            ));
        }
        sql.push_str(&format!(
            " ORDER BY {names} LIMIT 1 OFFSET {}",
            rows.saturating_sub(1)
        ));
        Some(sql)
    }

    fn names(&self, schema: &TableSchema) -> Vec<String> {
        self.columns
            .iter()
            .map(|i| quote_ident(&schema.columns[*i].name))
            .collect()
    }

    /// `(key) > (values)` as a range on the key's index; `None` when the values cannot be
    /// literals of the key (or the key does not order by its text).
    fn after(
        &self,
        schema: &TableSchema,
        values: &[String],
        no_backslash_escapes: bool,
    ) -> Option<String> {
        let names = self.names(schema);
        if !self.resumable || values.len() != names.len() {
            return None;
        }
        let values = values
            .iter()
            .zip(&self.columns)
            .map(|(value, i)| literal(&schema.columns[*i].data_type, value, no_backslash_escapes))
            .collect::<Option<Vec<String>>>()?;
        // `a > x OR (a = x AND b > y) …`: exact for every type (a row constructor compares
        // numbers with strings as doubles) and a range on the key's index.
        let alternatives: Vec<String> = (0..names.len())
            .map(|last| {
                let mut terms: Vec<String> = (0..last)
                    .map(|i| format!("{} = {}", names[i], values[i]))
                    .collect();
                terms.push(format!("{} > {}", names[last], values[last]));
                format!("({})", terms.join(" AND "))
            })
            .collect();
        Some(alternatives.join(" OR "))
    }

    fn select_where(&self, schema: &TableSchema, predicate: Option<&str>) -> String {
        let mut sql = format!(
            "SELECT * FROM {}.{}",
            quote_ident(&schema.db),
            quote_ident(&schema.table)
        );
        if let Some(predicate) = predicate {
            sql.push_str(&format!(" WHERE {predicate}"));
        }
        let names = self.names(schema);
        if !names.is_empty() {
            sql.push_str(&format!(" ORDER BY {}", names.join(", ")));
        }
        sql
    }

    /// Whether the table can be cut into chunks along the key: its key orders by its text, and
    /// that text is the server's UTF-8 (binary strings are not).
    fn chunkable(&self, schema: &TableSchema) -> bool {
        self.resumable
            && self.columns.iter().all(|i| {
                !matches!(
                    schema.columns[*i].data_type.as_str(),
                    "binary" | "varbinary"
                )
            })
    }

    /// The key of a row read as text, for its offset; `None` when it cannot resume.
    fn key_of(&self, values: &[Option<Vec<u8>>]) -> Option<Vec<String>> {
        if !self.resumable {
            return None;
        }
        self.columns
            .iter()
            .map(|i| {
                let bytes = values.get(*i)?.as_ref()?;
                String::from_utf8(bytes.clone()).ok()
            })
            .collect()
    }
}

/// A key value's SQL literal: numbers (integers, DECIMAL, YEAR) unquoted, so they compare
/// exactly (`None` if the text is not a number); the others as escaped strings.
fn literal(data_type: &str, text: &str, no_backslash_escapes: bool) -> Option<String> {
    let numeric = matches!(
        data_type,
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "decimal" | "year"
    );
    if !numeric {
        return Some(
            mysql_async::Value::Bytes(text.as_bytes().to_vec()).as_sql(no_backslash_escapes),
        );
    }
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    let is_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    (is_digits(whole) && is_digits(fraction)).then(|| text.to_owned())
}

/// What the background reader sends.
#[derive(Debug)]
pub enum Snapshot {
    /// The snapshot's binlog position, first.
    Position(Position),
    /// A table's columns as its rows are read (before them), with its `SHOW CREATE TABLE`:
    /// sent only when the view is the stream's position (not after an interrupted snapshot),
    /// so the schema history can hold them from that position on, as Debezium's snapshot
    /// records each captured table.
    Table {
        db: String,
        table: String,
        columns: Vec<ColumnInfo>,
        ddl: String,
    },
    Record(Box<SourceRecord>),
}

/// Opens the snapshot's view, reports its position, then sends every captured row as a read
/// event. Ends (dropping the sender) when all is sent or the receiver is gone.
///
/// `interrupted`: the stream position of a snapshot a crash cut short. Its view is gone, so
/// this one reads anew, but the stream starts from the interrupted one's position (its
/// offsets say so from the first record on): the changes made in between — deletes of rows the
/// first snapshot sent among them — are streamed, never lost.
pub async fn run(
    config: MySqlConfig,
    source: sluice_api::data::SchemaRef,
    partition: Arc<SourcePartition>,
    sender: mpsc::Sender<Result<Snapshot>>,
    interrupted: Option<Position>,
    resume: Option<ResumeAt>,
    debezium: Option<DebeziumMetrics>,
) {
    if let Some(debezium) = &debezium {
        debezium.set("snapshot", "SnapshotRunning", 1.0);
        debezium.set("snapshot", "SnapshotCompleted", 0.0);
    }
    let read = read(
        &config,
        &source,
        &partition,
        &sender,
        interrupted,
        resume,
        debezium.as_ref(),
    )
    .await;
    if let Err(e) = read {
        let _ = sender.send(Err(e)).await;
    }
}

/// How often the snapshot's connections try to open their views at one binlog position
/// before the largest group of them that did reads alone.
const ALIGN_ATTEMPTS: usize = 5;

/// The snapshot's connections, each inside a consistent snapshot at one binlog position: the
/// coordinator lists and describes the tables, finds chunk boundaries and reads the tables
/// that are not read in chunks; the readers read chunks.
struct Views {
    coordinator: mysql_async::Conn,
    readers: Vec<mysql_async::Conn>,
    position: Position,
}

/// Opens a repeatable-read consistent snapshot on `conn`: the binlog position its view is at.
async fn begin_view(conn: &mut mysql_async::Conn, config: &MySqlConfig) -> Result<Position> {
    conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .await
        .map_err(|e| my_error("beginning the snapshot", config, e))?;
    conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        .await
        .map_err(|e| my_error("beginning the snapshot", config, e))?;
    let status: Vec<(String, String)> = conn
        .query("SHOW STATUS LIKE 'binlog_snapshot_%'")
        .await
        .map_err(|e| my_error("reading the snapshot's binlog position", config, e))?;
    let value = |name: &str| {
        status
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    match (
        value("Binlog_snapshot_file").filter(|f| !f.is_empty()),
        value("Binlog_snapshot_position").and_then(|p| p.parse::<u64>().ok()),
    ) {
        (Some(file), Some(pos)) => Ok(Position { file, pos }),
        _ => Err(Error::config(
            "the server does not report binlog_snapshot_file/position (MariaDB does; a lock-free consistent \
             snapshot on MySQL is not built yet): use MariaDB, or snapshot.mode=no_data",
        )),
    }
}

/// Opens the coordinator's view and up to `readers` readers' views at the same binlog position,
/// without any lock. MariaDB binlogs and commits transactions in one order and reports the
/// binlog position a consistent snapshot stands at, so two views at one position see the same
/// committed transactions. The views are opened together; while writes land between them,
/// all are opened again (up to [`ALIGN_ATTEMPTS`] times), then the largest group at one position
/// is kept. A reader that cannot connect (`max_connections`) is left out with a warning.
async fn open_views(config: &MySqlConfig, readers: usize) -> Result<Views> {
    let mut conns = vec![connect(config).await?];
    for _ in 0..readers {
        match connect(config).await {
            Ok(conn) => conns.push(conn),
            Err(e) => {
                tracing::warn!(error = %e, readers = conns.len() - 1, "a snapshot reader could not connect; reading with fewer");
                break;
            }
        }
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        let positions: Vec<Position> =
            futures_util::future::try_join_all(conns.iter_mut().map(|c| begin_view(c, config)))
                .await?;
        let aligned = positions.iter().all(|p| *p == positions[0]);
        if aligned || attempt == ALIGN_ATTEMPTS {
            // The largest group at one position (the first connection's on a tie).
            let count = |p: &Position| positions.iter().filter(|q| *q == p).count();
            let chosen = positions
                .iter()
                .max_by_key(|p| {
                    let first = positions.iter().position(|q| q == *p);
                    (count(p), std::cmp::Reverse(first))
                })
                .expect("a connection")
                .clone();
            let mut group = conns
                .into_iter()
                .zip(&positions)
                .filter(|(_, p)| **p == chosen)
                .map(|(c, _)| c);
            let coordinator = group.next().expect("the chosen position's connection");
            let mut readers: Vec<mysql_async::Conn> = group.collect();
            for reader in &mut readers {
                // Idle while the coordinator reads a table alone: kept open; a metadata lock
                // not granted soon hands the chunk to the coordinator (see `ChunkFailed`).
                reader
                    .query_drop(format!(
                        "SET SESSION wait_timeout = 31536000, lock_wait_timeout = {READER_LOCK_WAIT_SECONDS}"
                    ))
                    .await
                    .map_err(|e| my_error("setting up a snapshot reader", config, e))?;
            }
            if !aligned {
                tracing::info!(
                    readers = readers.len(),
                    attempts = attempt,
                    "writes kept landing while the snapshot readers opened their views; reading with those at one position"
                );
            }
            return Ok(Views {
                coordinator,
                readers,
                position: chosen,
            });
        }
        for conn in &mut conns {
            conn.query_drop("ROLLBACK")
                .await
                .map_err(|e| my_error("reopening the snapshot views", config, e))?;
        }
    }
}

/// What reading one table needs, shared with the chunk readers.
struct TableRead {
    config: MySqlConfig,
    schema: TableSchema,
    order: KeyOrder,
    source: sluice_api::data::SchemaRef,
    partition: Arc<SourcePartition>,
    position: Position,
    /// `db.table`.
    qualified: String,
    snapshot_ms: i64,
    no_backslash_escapes: bool,
}

impl TableRead {
    /// A row (text protocol) as its read event, marked as a snapshot record in the middle of
    /// the snapshot (the [`Emitter`] marks the first and last ones).
    fn record(&self, row: mysql_async::Row) -> Result<SourceRecord> {
        let values: Vec<Option<Vec<u8>>> = row
            .unwrap()
            .into_iter()
            .map(|v| match v {
                mysql_async::Value::NULL => None,
                mysql_async::Value::Bytes(b) => Some(b),
                other => Some(other.as_sql(true).into_bytes()),
            })
            .collect();
        let row_key = self.order.key_of(&values);
        let after = self.schema.row_from_text(&values)?;
        let info = SourceInfo {
            flavour: self.config.flavour,
            names: self.schema.source_names.clone(),
            ts_ms: self.snapshot_ms,
            snapshot: "true",
            server_id: 0,
            gtid: None,
            file: self.position.file.as_str().into(),
            pos: self.position.pos,
            row: 0,
            thread: None,
        };
        let key = self.schema.key_of(&after);
        let value = envelope_value(
            &self.schema.envelope,
            Value::Null,
            after,
            source_value(&self.source, &info),
            "r",
        );
        // Where a snapshot cut short after this record reads on from.
        let mut offset = snapshot_offset(&self.position.file, self.position.pos);
        offset.insert("snapshot_table".into(), json!(self.qualified));
        if let Some(row_key) = row_key {
            offset.insert("snapshot_key".into(), json!(row_key));
        }
        Ok(crate::source::record(
            &self.schema,
            key,
            value,
            &self.partition,
            offset,
            self.snapshot_ms,
        ))
    }

    fn error(&self, e: mysql_async::Error) -> Error {
        my_error(&format!("reading {}", self.qualified), &self.config, e)
    }
}

/// A chunk: the rows after `after` up to `until` (inclusive; `None`: to the table's end).
#[derive(Debug, Clone)]
struct Chunk {
    after: Option<Vec<String>>,
    until: Option<Vec<String>>,
}

/// A chunk for a reader, with where its records go.
struct ChunkJob {
    table: Arc<TableRead>,
    chunk: Chunk,
    reply: tokio::sync::oneshot::Sender<std::result::Result<Vec<SourceRecord>, ChunkFailed>>,
}

/// Why a reader did not read a chunk.
enum ChunkFailed {
    /// The table's metadata lock was not granted within the reader's `lock_wait_timeout`: a
    /// DDL statement waits for the coordinator's lock on the table, and the reader queues
    /// behind it. The coordinator, which holds the lock, reads the chunk (and the rest of the
    /// table) itself; waiting would deadlock in a way the server cannot see.
    LockWait,
    Error(Error),
}

/// How long a reader waits for a table's metadata lock before the coordinator reads its chunk.
const READER_LOCK_WAIT_SECONDS: u32 = 10;

/// A reader: takes chunks until the jobs end, each read in its view and built into records
/// here (in parallel with the other readers), then ends its transaction.
async fn chunk_reader(
    mut conn: mysql_async::Conn,
    jobs: Arc<tokio::sync::Mutex<mpsc::Receiver<ChunkJob>>>,
) {
    loop {
        let job = jobs.lock().await.recv().await;
        let Some(job) = job else { break };
        if job.reply.is_closed() {
            continue;
        }
        let read = match read_chunk(&mut conn, &job.table, &job.chunk).await {
            Ok(records) => Ok(records),
            Err(e) if e.lock_wait => Err(ChunkFailed::LockWait),
            Err(e) => Err(ChunkFailed::Error(e.error)),
        };
        let failed = matches!(read, Err(ChunkFailed::Error(_)));
        let _ = job.reply.send(read);
        if failed {
            break;
        }
    }
    let _ = conn.query_drop("COMMIT").await;
}

/// A chunk read that failed, and whether it was a metadata lock wait timeout (1205).
struct ReadFailed {
    error: Error,
    lock_wait: bool,
}

impl From<Error> for ReadFailed {
    fn from(error: Error) -> ReadFailed {
        ReadFailed {
            error,
            lock_wait: false,
        }
    }
}

/// Reads one chunk in `conn`'s view. A chunk with an end holds exactly `snapshot.fetch.size`
/// rows (the coordinator counted them in its view): any other count means the views differ,
/// and the snapshot starts over rather than send a torn table.
async fn read_chunk(
    conn: &mut mysql_async::Conn,
    table: &TableRead,
    chunk: &Chunk,
) -> std::result::Result<Vec<SourceRecord>, ReadFailed> {
    let sql = table
        .order
        .select_chunk(
            &table.schema,
            chunk.after.as_deref(),
            chunk.until.as_deref(),
            table.no_backslash_escapes,
        )
        .ok_or_else(|| {
            Error::config(format!(
                "a snapshot chunk boundary of {} is not a literal of its primary key ({:?} .. {:?})",
                table.qualified, chunk.after, chunk.until
            ))
        })?;
    let failed = |e: mysql_async::Error| ReadFailed {
        lock_wait: matches!(&e, mysql_async::Error::Server(s) if s.code == 1205),
        error: table.error(e),
    };
    let mut result = conn.query_iter(sql).await.map_err(failed)?;
    let mut records = Vec::new();
    while let Some(row) = result.next().await.map_err(failed)? {
        records.push(table.record(row)?);
    }
    if chunk.until.is_some() && records.len() != table.config.snapshot_fetch_size {
        return Err(Error::retriable(format!(
            "a snapshot chunk of {} ({:?} .. {:?}] held {} rows where the coordinator's view counted {}: \
             the readers' views differ; the snapshot starts over",
            table.qualified,
            chunk.after,
            chunk.until,
            records.len(),
            table.config.snapshot_fetch_size
        ))
        .into());
    }
    Ok(records)
}

/// Sends the snapshot's records in order, marking the snapshot's first record, each later
/// table's first and each table's last but the last table's as Debezium does (the source marks
/// the snapshot's very last one), and counts rows per table for the metrics.
struct Emitter<'a> {
    sender: &'a mpsc::Sender<Result<Snapshot>>,
    debezium: Option<&'a DebeziumMetrics>,
    /// Rows of the tables done.
    total: u64,
    /// Rows of the table being read.
    rows: u64,
    /// The last record, held until it is known whether it ends its table.
    pending: Option<SourceRecord>,
}

impl Emitter<'_> {
    /// Queues a record of `qualified`; false when the receiver is gone.
    async fn push(&mut self, mut record: SourceRecord, qualified: &str) -> bool {
        match (self.total + self.rows, self.rows) {
            (0, _) => mark_snapshot(&mut record, "first"),
            (_, 0) => mark_snapshot(&mut record, "first_in_data_collection"),
            _ => {}
        }
        self.rows += 1;
        if let Some(debezium) = self.debezium
            && self.rows.is_multiple_of(1024)
        {
            debezium.set_table("snapshot", "RowsScanned", qualified, self.rows as f64);
        }
        match self.pending.replace(record) {
            Some(previous) => self
                .sender
                .send(Ok(Snapshot::Record(Box::new(previous))))
                .await
                .is_ok(),
            None => true,
        }
    }

    /// Ends a table (`more`: others follow); false when the receiver is gone.
    async fn end_table(&mut self, qualified: &str, more: bool) -> bool {
        if let Some(debezium) = self.debezium {
            debezium.set_table("snapshot", "RowsScanned", qualified, self.rows as f64);
        }
        let rows = std::mem::take(&mut self.rows);
        self.total += rows;
        tracing::info!(table = %qualified, rows, "snapshot read table");
        if let Some(mut last) = self.pending.take() {
            if more && rows > 1 {
                mark_snapshot(&mut last, "last_in_data_collection");
            }
            return self
                .sender
                .send(Ok(Snapshot::Record(Box::new(last))))
                .await
                .is_ok();
        }
        true
    }
}

async fn read(
    config: &MySqlConfig,
    source: &sluice_api::data::SchemaRef,
    partition: &Arc<SourcePartition>,
    sender: &mpsc::Sender<Result<Snapshot>>,
    interrupted: Option<Position>,
    resume: Option<ResumeAt>,
    debezium: Option<&DebeziumMetrics>,
) -> Result<()> {
    let threads = config.snapshot_threads();
    let Views {
        coordinator: mut conn,
        readers,
        position: view,
    } = open_views(config, if threads > 1 { threads } else { 0 }).await?;
    let view_is_position = interrupted.is_none();
    let (file, pos) = match interrupted {
        Some(earlier) => {
            tracing::info!(
                view = %format!("{}:{}", view.file, view.pos),
                stream_from = %format!("{}:{}", earlier.file, earlier.pos),
                "snapshotting again after an interrupted snapshot; the stream starts where that one stood, so \
                 the changes made since are streamed too"
            );
            (earlier.file, earlier.pos)
        }
        None => (view.file, view.pos),
    };
    let snapshot_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    if sender
        .send(Ok(Snapshot::Position(Position {
            file: file.clone(),
            pos,
        })))
        .await
        .is_err()
    {
        return Ok(());
    }
    let mut catalog = Catalog::list(&mut conn, config).await?;
    let tables = catalog.tables(|db, table| config.captures(db, table));
    tracing::info!(tables = tables.len(), file = %file, pos, readers = readers.len(), "snapshot started");
    let no_backslash_escapes: bool = conn
        .query_first("SELECT @@SESSION.sql_mode LIKE '%NO_BACKSLASH_ESCAPES%'")
        .await
        .map_err(|e| my_error("reading sql_mode", config, e))?
        .unwrap_or(false);
    // An interrupted snapshot's tables before the one it stood in were read whole.
    let resumed = resume.as_ref().filter(|at| {
        tables
            .iter()
            .any(|(db, table)| format!("{db}.{table}") == at.table)
    });
    let (first_table, mut resume_key) = match resumed {
        Some(at) => match tables
            .iter()
            .position(|(db, table)| format!("{db}.{table}") == at.table)
        {
            Some(index) => {
                tracing::info!(
                    table = %at.table,
                    after_key = ?at.key,
                    tables_done = index,
                    "resuming the interrupted snapshot where its last stored record stood"
                );
                (index, at.key.clone())
            }
            None => (0, None),
        },
        None => (0, None),
    };
    // The schema change events before the rows keep the resume point in their offsets, so a
    // crash before the next row still reads on from it.
    let mut schema_offset = snapshot_offset(&file, pos);
    if let Some(at) = resumed {
        schema_offset.insert("snapshot_table".into(), json!(at.table));
        if let Some(key) = &at.key {
            schema_offset.insert("snapshot_key".into(), json!(key));
        }
    }
    if config.schema_changes {
        let at = SnapshotAt {
            file: &file,
            pos,
            server_id: 0,
            ts_ms: snapshot_ms,
        };
        let events = schema_change_events(
            &mut conn,
            &mut catalog,
            config,
            source,
            partition,
            &at,
            schema_offset.clone(),
        )
        .await?;
        for record in events {
            if sender
                .send(Ok(Snapshot::Record(Box::new(record))))
                .await
                .is_err()
            {
                return Ok(());
            }
        }
    }
    // Every table's columns first, in the view, as Debezium's snapshot reads the schemas before
    // the data: the schema history then holds all of them at the stream's start before any row
    // is sent, so a restart (even one cut short mid-snapshot) knows each table from there on.
    let mut described = Vec::with_capacity(tables.len());
    for (db, table) in &tables {
        let (columns, ddl) = catalog.take(&mut conn, config, db, table).await?;
        if view_is_position {
            let message = Snapshot::Table {
                db: db.clone(),
                table: table.clone(),
                columns: columns.clone(),
                ddl,
            };
            if sender.send(Ok(message)).await.is_err() {
                return Ok(());
            }
        }
        described.push(columns);
    }
    if let Some(debezium) = debezium {
        debezium.set("snapshot", "TotalTableCount", tables.len() as f64);
    }
    // The readers live for the whole snapshot and end when the jobs do.
    let reader_count = readers.len();
    let (jobs, job_queue) = mpsc::channel::<ChunkJob>(reader_count.max(1));
    let job_queue = Arc::new(tokio::sync::Mutex::new(job_queue));
    let reader_tasks: Vec<_> = readers
        .into_iter()
        .map(|reader| tokio::spawn(chunk_reader(reader, Arc::clone(&job_queue))))
        .collect();
    // Held by the readers only: should they all stop, queuing a chunk fails instead of waiting.
    drop(job_queue);
    let mut emitter = Emitter {
        sender,
        debezium,
        total: 0,
        rows: 0,
        pending: None,
    };
    for (index, (db, table)) in tables.iter().enumerate() {
        if index < first_table {
            continue;
        }
        if let Some(debezium) = debezium {
            debezium.set(
                "snapshot",
                "RemainingTableCount",
                (tables.len() - index) as f64,
            );
        }
        let qualified = format!("{db}.{table}");
        let columns = std::mem::take(&mut described[index]);
        let schema = TableSchema::new(config, db, table, columns, source);
        let engine: Option<String> = conn
            .exec_first(
                "SELECT ENGINE FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (db, table),
            )
            .await
            .map_err(|e| my_error(&format!("reading {db}.{table}'s engine"), config, e))?;
        let key: Vec<String> = conn
            .exec(
                "SELECT COLUMN_NAME FROM INFORMATION_SCHEMA.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
                 AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX",
                (db, table),
            )
            .await
            .map_err(|e| my_error(&format!("reading {db}.{table}'s primary key"), config, e))?;
        let order = KeyOrder::of(&schema, &key, engine.as_deref() == Some("InnoDB"));
        let after = if index == first_table {
            resume_key.take()
        } else {
            None
        };
        let read = Arc::new(TableRead {
            config: config.clone(),
            schema,
            order,
            source: Arc::clone(source),
            partition: Arc::clone(partition),
            position: Position {
                file: file.clone(),
                pos,
            },
            qualified: qualified.clone(),
            snapshot_ms,
            no_backslash_escapes,
        });
        let delivered = if reader_count > 0 && read.order.chunkable(&read.schema) {
            read_in_chunks(&mut conn, &read, after, &jobs, reader_count, &mut emitter).await?
        } else {
            read_whole(&mut conn, &read, after, &mut emitter).await?
        };
        if !delivered
            || !emitter
                .end_table(&qualified, index + 1 < tables.len())
                .await
        {
            return Ok(());
        }
    }
    drop(jobs);
    for task in reader_tasks {
        let _ = task.await;
    }
    let _ = conn.query_drop("COMMIT").await;
    if let Some(debezium) = debezium {
        debezium.set("snapshot", "RemainingTableCount", 0.0);
        debezium.set("snapshot", "SnapshotRunning", 0.0);
        debezium.set("snapshot", "SnapshotCompleted", 1.0);
    }
    tracing::info!(rows = emitter.total, "snapshot complete");
    Ok(())
}

/// Reads a table in one query on the coordinator's connection (after `after` when it resumes
/// by key); false when the receiver is gone.
async fn read_whole(
    conn: &mut mysql_async::Conn,
    table: &TableRead,
    after: Option<Vec<String>>,
    emitter: &mut Emitter<'_>,
) -> Result<bool> {
    let sql = table
        .order
        .select(&table.schema, after.as_deref(), table.no_backslash_escapes);
    let mut result = conn.query_iter(sql).await.map_err(|e| table.error(e))?;
    while let Some(row) = result.next().await.map_err(|e| table.error(e))? {
        if !emitter.push(table.record(row)?, &table.qualified).await {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Reads a table in chunks of `snapshot.fetch.size` rows by primary key: the coordinator finds
/// each chunk's last key and queues the chunk for the readers, keeping one more chunk than
/// there are readers in flight (memory is bounded by those), and the records go out strictly
/// in key order, so every record's offset still names the last row delivered. When a reader
/// cannot get the table's metadata lock (see [`ChunkFailed::LockWait`]) the coordinator reads
/// that chunk and the rest of the table itself. False when the receiver is gone.
async fn read_in_chunks(
    conn: &mut mysql_async::Conn,
    table: &Arc<TableRead>,
    after: Option<Vec<String>>,
    jobs: &mpsc::Sender<ChunkJob>,
    readers: usize,
    emitter: &mut Emitter<'_>,
) -> Result<bool> {
    let order = &table.order;
    let mut after = match after {
        Some(key)
            if order
                .after(&table.schema, &key, table.no_backslash_escapes)
                .is_none() =>
        {
            tracing::warn!(table = %table.qualified, ?key, "the stored snapshot key does not fit the table's primary key; reading the table from its start");
            None
        }
        after => after,
    };
    let mut in_flight = std::collections::VecDeque::new();
    let mut boundaries_done = false;
    // Set once a reader could not lock the table: the coordinator reads the rest.
    let mut alone = false;
    loop {
        while !boundaries_done && !alone && in_flight.len() <= readers {
            let sql = order
                .chunk_end(
                    &table.schema,
                    after.as_deref(),
                    table.config.snapshot_fetch_size,
                    table.no_backslash_escapes,
                )
                .ok_or_else(|| {
                    Error::config(format!(
                        "a snapshot chunk boundary of {} is not a literal of its primary key: {after:?}",
                        table.qualified
                    ))
                })?;
            let end: Option<mysql_async::Row> =
                conn.query_first(sql).await.map_err(|e| table.error(e))?;
            let until = match end {
                Some(row) => Some(boundary_key(table, row)?),
                None => None,
            };
            if until.is_some() && until == after {
                // `(key) > (after)` found `after` again: its text does not round-trip (a lossy
                // conversion); reading on would queue the same chunk forever.
                return Err(Error::config(format!(
                    "the snapshot of {} found chunk boundary {until:?} twice: its primary key's text does not \
                     compare as the key; read it with snapshot.max.threads=1",
                    table.qualified
                )));
            }
            let chunk = Chunk {
                after: after.clone(),
                until: until.clone(),
            };
            let (reply, answer) = tokio::sync::oneshot::channel();
            let job = ChunkJob {
                table: Arc::clone(table),
                chunk: chunk.clone(),
                reply,
            };
            if jobs.send(job).await.is_err() {
                // Every reader stopped (a queued answer says why): the coordinator reads on.
                alone = true;
                break;
            }
            in_flight.push_back((chunk, answer));
            match until {
                Some(until) => after = Some(until),
                None => boundaries_done = true,
            }
        }
        let records = match in_flight.pop_front() {
            Some((chunk, answer)) => match tokio::select! {
                answer = answer => answer,
                // A task that stopped listening ends the snapshot now, not once a reader
                // (perhaps waiting on a lock) has finished its chunk.
                () = emitter.sender.closed() => return Ok(false),
            } {
                Ok(Ok(records)) => records,
                Ok(Err(ChunkFailed::LockWait)) => {
                    tracing::info!(table = %table.qualified, "a snapshot reader waited too long for the table's metadata lock (a DDL statement is queued behind the snapshot); the coordinator reads the rest of the table");
                    alone = true;
                    read_chunk(conn, table, &chunk).await.map_err(|e| e.error)?
                }
                Ok(Err(ChunkFailed::Error(e))) => return Err(e),
                Err(_) => {
                    return Err(Error::retriable(format!(
                        "a snapshot reader of {} stopped mid-chunk",
                        table.qualified
                    )));
                }
            },
            None if alone && !boundaries_done => {
                // The rest of the table, after the last chunk queued, on the coordinator.
                return read_whole(conn, table, after, emitter).await;
            }
            None => return Ok(true),
        };
        for record in records {
            if !emitter.push(record, &table.qualified).await {
                return Ok(false);
            }
        }
    }
}

/// A chunk's last key, as the server's text.
fn boundary_key(table: &TableRead, row: mysql_async::Row) -> Result<Vec<String>> {
    row.unwrap()
        .into_iter()
        .map(|v| match v {
            mysql_async::Value::Bytes(b) => String::from_utf8(b).map_err(|_| {
                Error::config(format!(
                    "a primary key value of {} is not UTF-8 text; read it with snapshot.max.threads=1",
                    table.qualified
                ))
            }),
            other => Ok(other.as_sql(true)),
        })
        .collect()
}

/// The position and time a snapshot's schema change events stand for.
#[derive(Debug, Clone, Copy)]
pub struct SnapshotAt<'a> {
    pub file: &'a str,
    pub pos: u64,
    pub server_id: u32,
    pub ts_ms: i64,
}

/// With `include.schema.changes`: the schema change events a snapshot sends (inside its view,
/// before any rows; or alone, for a snapshot of the schemas only), as Debezium's snapshot sends
/// them, all marked as of the snapshot:
/// 1. the server's default character set, `SET character_set_server=…, collation_server=…`
///    (database `""`);
/// 2. `DROP TABLE IF EXISTS` for each table (a `DROP` change);
/// 3. per database: `DROP DATABASE IF EXISTS`, `CREATE DATABASE … CHARSET … COLLATE …` and
///    `USE` (no table changes), then each of its tables' `SHOW CREATE TABLE` with the table as
///    INFORMATION_SCHEMA shows it (a `CREATE` change).
///
/// The tables are those `schema.history.internal.store.only.captured.tables.ddl` and
/// `….store.only.captured.databases.ddl` select, as in Debezium: by default every table of
/// every database but the system ones.
pub async fn schema_change_events(
    conn: &mut mysql_async::Conn,
    catalog: &mut Catalog,
    config: &MySqlConfig,
    source: &sluice_api::data::SchemaRef,
    partition: &Arc<SourcePartition>,
    at: &SnapshotAt<'_>,
    offset: SourceOffset,
) -> Result<Vec<SourceRecord>> {
    let events = SchemaEvents {
        config,
        source,
        partition,
        at,
        offset,
        schemas: SchemaChangeSchemas::new(config.flavour, source),
    };
    let mut listed = catalog.tables(|db, table| config.keeps_schema_changes_of(db, Some(table)));
    // By the names' bytes, as Debezium orders its table ids (the server's ORDER BY follows its
    // collation, under which `Foo` and `foo` could interleave).
    listed.sort();
    // Each table's structure and statement first: one dropped or unreadable meanwhile (SHOW
    // CREATE TABLE and INFORMATION_SCHEMA are not read in the view) is left out, with a warning,
    // rather than sent empty.
    let mut tables = Vec::with_capacity(listed.len());
    for (db, table) in listed {
        let (columns, ddl) = catalog.describe(conn, config, &db, &table).await?;
        if columns.is_empty() || ddl.is_empty() {
            tracing::warn!(table = %format!("{db}.{table}"), "a table listed for the snapshot's schema change events could not be read (dropped meanwhile, or no privilege on its columns); it has no events");
            continue;
        }
        let (columns, ddl) = (columns.clone(), ddl.clone());
        tables.push((db, table, columns, ddl));
    }
    let variables: Vec<(String, String)> = conn
        .query("SHOW VARIABLES WHERE Variable_name IN ('character_set_server', 'collation_server')")
        .await
        .map_err(|e| my_error("reading the server's character set", config, e))?;
    let locales: Vec<(String, Option<String>, Option<String>)> = conn
        .query(
            "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM INFORMATION_SCHEMA.SCHEMATA",
        )
        .await
        .map_err(|e| my_error("reading the databases' default character sets", config, e))?;
    let mut out = vec![events.event("", None, &set_statement(variables), &[])];
    for (db, table, _, _) in &tables {
        let ddl = format!(
            "DROP TABLE IF EXISTS {}.{}",
            quote_ident(db),
            quote_ident(table)
        );
        out.push(events.event(db, Some(table), &ddl, &[dropped_change(db, table)]));
    }
    for in_db in tables.chunk_by(|a, b| a.0 == b.0) {
        let db = in_db[0].0.as_str();
        let mut create = format!("CREATE DATABASE {}", quote_ident(db));
        if let Some((_, charset, collation)) = locales.iter().find(|(name, _, _)| name == db) {
            if let Some(charset) = charset {
                create.push_str(&format!(" CHARSET {charset}"));
            }
            if let Some(collation) = collation {
                create.push_str(&format!(" COLLATE {collation}"));
            }
        }
        for ddl in [
            format!("DROP DATABASE IF EXISTS {}", quote_ident(db)),
            create,
            format!("USE {}", quote_ident(db)),
        ] {
            out.push(events.event(db, None, &ddl, &[]));
        }
        for (_, table, columns, ddl) in in_db {
            let changes = [table_change(db, table, "CREATE", columns)];
            out.push(events.event(db, Some(table), ddl, &changes));
        }
    }
    Ok(out)
}

/// Debezium's `SET` statement for server variables: sorted by name, a value quoted only when
/// it holds `,` or `;` (the parsed statement, without the `;` Debezium's text ends with).
fn set_statement(mut variables: Vec<(String, String)>) -> String {
    variables.sort();
    let assignments: Vec<String> = variables
        .into_iter()
        .map(|(name, value)| {
            if value.contains([',', ';']) {
                format!("{name}='{value}'")
            } else {
                format!("{name}={value}")
            }
        })
        .collect();
    format!("SET {}", assignments.join(", "))
}

/// What a snapshot's schema change events share.
struct SchemaEvents<'a> {
    config: &'a MySqlConfig,
    source: &'a sluice_api::data::SchemaRef,
    partition: &'a Arc<SourcePartition>,
    at: &'a SnapshotAt<'a>,
    offset: SourceOffset,
    schemas: SchemaChangeSchemas,
}

impl SchemaEvents<'_> {
    /// One event: `db` its key and `databaseName`; `table` its `source.table` (null for a
    /// statement on no table).
    fn event(
        &self,
        db: &str,
        table: Option<&str>,
        ddl: &str,
        changes: &[serde_json::Value],
    ) -> SourceRecord {
        let SnapshotAt {
            file,
            pos,
            server_id,
            ts_ms,
        } = *self.at;
        let info = SourceInfo {
            flavour: self.config.flavour,
            names: SourceNames::owned(&self.config.topic_prefix, db, table.unwrap_or_default()),
            ts_ms,
            snapshot: "true",
            server_id,
            gtid: None,
            file: file.into(),
            pos,
            row: 0,
            thread: None,
        };
        let mut source = source_value(self.source, &info);
        if table.is_none()
            && let Value::Struct(block) = &mut source
        {
            let _ = block.put("table", Value::Null);
        }
        let value = self.schemas.value(source, ts_ms, db, ddl, changes);
        self.schemas.record(
            &self.config.topic_prefix,
            db,
            value,
            ts_ms,
            self.partition,
            self.offset.clone(),
        )
    }
}

/// The offset of a snapshot record: the position the snapshot stands for, still snapshotting.
fn snapshot_offset(file: &str, pos: u64) -> SourceOffset {
    let mut offset = SourceOffset::new();
    offset.insert("file".into(), json!(file));
    offset.insert("pos".into(), json!(pos));
    offset.insert("snapshot".into(), json!(true));
    offset
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::ColumnInfo;

    fn table(columns: Vec<ColumnInfo>) -> TableSchema {
        let props: sluice_api::config::Props = [
            ("database.hostname", "db"),
            ("database.user", "u"),
            ("database.server.id", "5401"),
            ("topic.prefix", "t"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let config = MySqlConfig::from_props(&props, "mariadb").unwrap();
        let source = crate::envelope::source_schema("mariadb");
        TableSchema::new(&config, "app", "t", columns, &source)
    }

    fn key(name: &str, data_type: &str) -> ColumnInfo {
        ColumnInfo {
            primary: true,
            nullable: false,
            ..ColumnInfo::plain(name, data_type, data_type)
        }
    }

    #[test]
    fn a_table_is_read_in_key_order_and_on_after_a_stored_key() {
        let schema = table(vec![
            key("region", "varchar"),
            ColumnInfo::plain("note", "text", "text"),
            key("id", "bigint"),
        ]);
        // PRIMARY KEY (id, region): the key's order, not the columns'.
        let order = KeyOrder::of(&schema, &["id".into(), "region".into()], true);
        assert_eq!(
            order.select(&schema, None, false),
            "SELECT * FROM `app`.`t` ORDER BY `id`, `region`"
        );
        // Numbers unquoted: quoted, one would compare as a double (2^53 + 1 == 2^53).
        let after = ["9007199254740993".to_owned(), "it's\\".to_owned()];
        assert_eq!(
            order.select(&schema, Some(&after), false),
            "SELECT * FROM `app`.`t` WHERE (`id` > 9007199254740993) OR (`id` = 9007199254740993 AND `region` > 'it\\'s\\\\') ORDER BY `id`, `region`"
        );
        assert_eq!(
            order.select(&schema, Some(&after), true),
            "SELECT * FROM `app`.`t` WHERE (`id` > 9007199254740993) OR (`id` = 9007199254740993 AND `region` > 'it''s\\') ORDER BY `id`, `region`"
        );
        let not_a_number = ["1; drop table t".to_owned(), "x".to_owned()];
        assert_eq!(
            order.select(&schema, Some(&not_a_number), false),
            "SELECT * FROM `app`.`t` ORDER BY `id`, `region`",
            "a stored key that is not a number reads the table again whole"
        );
        // A chunk: after one key, up to another (inclusive); its end found by an index scan.
        let until = ["9007199254740999".to_owned(), "eu".to_owned()];
        assert_eq!(
            order
                .select_chunk(&schema, Some(&after), Some(&until), false)
                .unwrap(),
            "SELECT * FROM `app`.`t` WHERE ((`id` > 9007199254740993) OR (`id` = 9007199254740993 AND `region` > 'it\\'s\\\\')) AND NOT ((`id` > 9007199254740999) OR (`id` = 9007199254740999 AND `region` > 'eu')) ORDER BY `id`, `region`"
        );
        assert_eq!(
            order
                .select_chunk(&schema, None, Some(&until), false)
                .unwrap(),
            "SELECT * FROM `app`.`t` WHERE NOT ((`id` > 9007199254740999) OR (`id` = 9007199254740999 AND `region` > 'eu')) ORDER BY `id`, `region`"
        );
        assert_eq!(
            order.select_chunk(&schema, None, None, false).unwrap(),
            "SELECT * FROM `app`.`t` ORDER BY `id`, `region`"
        );
        assert_eq!(
            order.select_chunk(&schema, Some(&not_a_number), None, false),
            None,
            "a chunk never widens to the whole table"
        );
        assert_eq!(
            order.chunk_end(&schema, Some(&until), 100, false).unwrap(),
            "SELECT `id`, `region` FROM `app`.`t` WHERE (`id` > 9007199254740999) OR (`id` = 9007199254740999 AND `region` > 'eu') ORDER BY `id`, `region` LIMIT 1 OFFSET 99"
        );
        assert_eq!(
            order.chunk_end(&schema, None, 1, false).unwrap(),
            "SELECT `id`, `region` FROM `app`.`t` ORDER BY `id`, `region` LIMIT 1 OFFSET 0"
        );
        let row = [Some(b"eu".to_vec()), None, Some(b"7".to_vec())];
        assert_eq!(order.key_of(&row), Some(vec!["7".into(), "eu".into()]));
    }

    #[test]
    fn keys_whose_text_does_not_order_as_the_index_read_the_table_again_whole() {
        let schema = table(vec![
            key("kind", "enum"),
            ColumnInfo::plain("v", "int", "int"),
        ]);
        let order = KeyOrder::of(&schema, &["kind".into()], true);
        let after = ["b".to_owned()];
        assert_eq!(
            order.select(&schema, Some(&after), false),
            "SELECT * FROM `app`.`t` ORDER BY `kind`"
        );
        assert_eq!(order.key_of(&[Some(b"b".to_vec()), None]), None);
        let aria = table(vec![key("id", "bigint")]);
        assert_eq!(
            KeyOrder::of(&aria, &["id".into()], false).select(&aria, Some(&after), false),
            "SELECT * FROM `app`.`t`",
            "not InnoDB: read in storage order, again whole"
        );
        let keyless = table(vec![ColumnInfo::plain("v", "int", "int")]);
        assert_eq!(
            KeyOrder::of(&keyless, &[], true).select(&keyless, None, false),
            "SELECT * FROM `app`.`t`"
        );
    }

    #[test]
    fn the_server_s_charset_is_debezium_s_set_statement() {
        let variables = vec![
            (
                "collation_server".to_owned(),
                "utf8mb4_general_ci".to_owned(),
            ),
            ("character_set_server".to_owned(), "utf8mb4".to_owned()),
        ];
        assert_eq!(
            set_statement(variables),
            "SET character_set_server=utf8mb4, collation_server=utf8mb4_general_ci"
        );
        let odd = vec![("character_set_server".to_owned(), "a,b".to_owned())];
        assert_eq!(set_statement(odd), "SET character_set_server='a,b'");
    }

    #[test]
    fn the_resume_point_is_read_from_a_snapshot_offset() {
        let mut offset = snapshot_offset("b.000001", 4);
        assert_eq!(ResumeAt::from_offset(&offset), None);
        offset.insert("snapshot_table".into(), json!("app.t"));
        offset.insert("snapshot_key".into(), json!(["eu", "7"]));
        assert_eq!(
            ResumeAt::from_offset(&offset),
            Some(ResumeAt {
                table: "app.t".into(),
                key: Some(vec!["eu".into(), "7".into()]),
            })
        );
    }
}
