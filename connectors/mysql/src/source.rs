//! The MySQL/MariaDB source: a consistent snapshot (see [`crate::snapshot`]), then the binlog
//! from the snapshot's position, one poll batch of whole transactions at a time. A
//! transaction's records are held until its commit (XID) event; the last record carries the
//! offset `{file, pos}` of the position after the commit, so a committed offset always covers
//! whole transactions and the stream resumes exactly there.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use mysql_async::prelude::*;
use mysql_async::{BinlogStream, BinlogStreamRequest, Conn};
use serde_json::json;
use sluice_api::config::Props;
use sluice_api::connector::{SourceConnector, SourceTask, SourceTaskContext};
use sluice_api::data::{SchemaRef, Text, Value};
use sluice_api::metrics::DebeziumMetrics;
use sluice_api::record::{Record, SourceOffset, SourcePartition, SourceRecord};
use sluice_api::{Error, ErrorKind, Result};
use sluice_debezium::envelope::{envelope_value, mark_snapshot};
use sluice_debezium::headers;
use sluice_debezium::heartbeat::Heartbeats;
use sluice_debezium::operations::Operation;
use sluice_debezium::transaction::{TransactionCounts, TransactionMetadata};
use tokio::sync::mpsc;

use crate::config::HistoryConfig;
use crate::config::{MySqlConfig, SnapshotMode, config_def};
use crate::envelope::{SourceInfo, SourceNames, source_schema, source_value};
use crate::history::{At, FileHistory, HistoryStore, Origin};
use crate::rows::{RowsKind, decode_rows};
use crate::schemas::MapColumns;
use crate::snapshot::{Position, Snapshot};
use crate::sql::{check_server, connect, my_error};
use crate::table::TableSchema;
use crate::tracker::Tracker;
use crate::transaction::{MetadataContext, Transaction, TransactionControl};

/// How long a poll waits for the binlog before returning what it has.
const POLL_WAIT: Duration = Duration::from_millis(100);

/// How often an idle server sends a heartbeat event (`@master_heartbeat_period`).
const SERVER_HEARTBEAT: Duration = Duration::from_secs(5);

/// A stream silent for this long (no event, no heartbeat) is taken as lost and reconnected:
/// a half-open connection never errors by itself.
const SILENCE_LIMIT: Duration = Duration::from_secs(20);

/// The connector: one task (one binlog reader).
pub struct MySqlSourceConnector {
    props: Props,
    flavour: &'static str,
}

impl MySqlSourceConnector {
    /// A connector of flavour `mysql` or `mariadb`.
    pub fn new(flavour: &'static str) -> MySqlSourceConnector {
        MySqlSourceConnector {
            props: Props::new(),
            flavour,
        }
    }
}

impl fmt::Debug for MySqlSourceConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MySqlSourceConnector")
            .field("props", &config_def().redact(&self.props))
            .field("flavour", &self.flavour)
            .finish()
    }
}

#[async_trait]
impl SourceConnector for MySqlSourceConnector {
    async fn start(&mut self, config: &Props) -> Result<()> {
        MySqlConfig::from_props(config, self.flavour)?;
        self.props = config.clone();
        Ok(())
    }

    fn task_configs(&self, _max_tasks: usize) -> Result<Vec<Props>> {
        Ok(vec![self.props.clone()])
    }

    fn create_task(&self) -> Box<dyn SourceTask> {
        Box::new(MySqlSourceTask::new(self.flavour))
    }
}

/// Milliseconds since the Unix epoch, now.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The catalog connection (INFORMATION_SCHEMA, heartbeat queries) kept in `slot`, opened on
/// first use.
async fn catalog<'a>(slot: &'a mut Option<Conn>, config: &MySqlConfig) -> Result<&'a mut Conn> {
    if slot.is_none() {
        *slot = Some(connect(config).await?);
    }
    Ok(slot.as_mut().expect("connected above"))
}

/// Where a statement's query event is in the binlog, and when and by whom it was written.
#[derive(Clone, Copy)]
struct StatementAt {
    start: u64,
    end: u64,
    ts_ms: i64,
    server_id: u32,
}

/// The task.
pub struct MySqlSourceTask {
    flavour: &'static str,
    config: Option<MySqlConfig>,
    partition: Arc<SourcePartition>,
    source: Option<SchemaRef>,
    snapshot: Option<mpsc::Receiver<Result<Snapshot>>>,
    /// The snapshot's newest record, held back to mark the very last one.
    held: Option<SourceRecord>,
    /// Records to hand out before the stream's (a schema-only snapshot's schema change events).
    queued: Vec<SourceRecord>,
    stream: Option<BinlogStream>,
    /// Where the stream resumes: after the last transaction handed out.
    resume: Option<Position>,
    /// The binlog file being read and the position after the last event.
    file: String,
    transaction: Option<Transaction>,
    /// Each captured table's schema across DDL.
    tables: Tracker,
    catalog: Option<Conn>,
    reconnect_at: Option<tokio::time::Instant>,
    initial_only: bool,
    /// Whether the server writes checksums into its events (`binlog_checksum`).
    checksums: bool,
    /// The last GTID handed out per replication domain (MariaDB): where a GTID-positioned
    /// stream resumes, and the offset's `gtids`.
    gtids: std::collections::BTreeMap<u32, String>,
    /// After a restart (or reconnection) inside a large transaction: where it starts, how
    /// many of its rows events went out already, and (with transaction metadata) its counts.
    resume_skip: Option<(Position, u64, Option<TransactionCounts>)>,
    /// While a large transaction is partly handed out: where a reconnection resumes inside it.
    pending_skip: Option<(Position, u64, Option<TransactionCounts>)>,
    /// The schemas of `provide.transaction.metadata`'s records.
    transaction_metadata: TransactionMetadata,
    /// `heartbeat.interval.ms` > 0.
    heartbeats: Option<Heartbeats>,
    /// Debezium's streaming metrics (`MilliSecondsBehindSource`, …) under its names.
    debezium: Option<DebeziumMetrics>,
    server_id: u32,
    /// When the stream last delivered an event (or the server's heartbeat).
    last_event_at: tokio::time::Instant,
}

impl fmt::Debug for MySqlSourceTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MySqlSourceTask")
            .field("config", &self.config)
            .field("snapshotting", &self.snapshot.is_some())
            .field("streaming", &self.stream.is_some())
            .field("resume", &self.resume)
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

/// A change event record of `table`, with the table's context headers.
pub(crate) fn record(
    table: &TableSchema,
    key: Value,
    value: Value,
    partition: &Arc<SourcePartition>,
    offset: SourceOffset,
    ts_ms: i64,
) -> SourceRecord {
    let mut record = Record::new(
        table.topic.clone(),
        value,
        Some(Arc::clone(&table.envelope)),
    );
    if record.value.is_null() {
        record.value_schema = None;
    }
    record.key_schema = if key.is_null() {
        None
    } else {
        table.key.clone()
    };
    record.key = key;
    record.timestamp_ms = Some(ts_ms);
    if let Some(context) = &table.context {
        context.stamp(&mut record);
    }
    SourceRecord {
        record,
        source_partition: Arc::clone(partition),
        source_offset: offset,
    }
}

/// Debezium's MySQL offset: resume at `position`, skipping `event` rows events of the
/// transaction there (0: `position` is after a commit).
fn binlog_offset(
    position: &Position,
    gtids: &str,
    ts_ms: i64,
    server_id: u32,
    event: u64,
) -> SourceOffset {
    let mut offset = SourceOffset::new();
    offset.insert("ts_sec".into(), json!(ts_ms / 1000));
    offset.insert("file".into(), json!(position.file));
    offset.insert("pos".into(), json!(position.pos));
    if !gtids.is_empty() {
        offset.insert("gtids".into(), json!(gtids));
    }
    offset.insert("row".into(), json!(0));
    offset.insert("server_id".into(), json!(server_id));
    offset.insert("event".into(), json!(event));
    offset
}

/// Checks an event's CRC32 against its bytes (the client library strips the checksum without
/// checking it). Artificial events (the fake ROTATE, MariaDB's GTID list at a stream's start),
/// the format description (whose checksum covers its algorithm byte) and heartbeats are not
/// checked.
fn verify_checksum(event: &mysql_async::binlog::events::Event, file: &str) -> Result<()> {
    use mysql_async::binlog::BinlogChecksumAlg;
    let header = event.header();
    let artificial = header.flags_raw() & 0x20 != 0 || header.log_pos() == 0;
    if artificial || matches!(header.event_type_raw(), 15 | 27) {
        return Ok(());
    }
    let Some(stored) = event.checksum() else {
        return Ok(());
    };
    let computed = event.calc_checksum(BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_CRC32);
    if u32::from_le_bytes(stored) != computed {
        let start = u64::from(header.log_pos()).saturating_sub(u64::from(header.event_size()));
        return Err(Error::data(format!(
            "binlog {file}:{start}: the event's CRC32 {:08x} does not match its bytes ({computed:08x}); \
             the event was corrupted between the server and sluice",
            u32::from_le_bytes(stored)
        )));
    }
    Ok(())
}

/// A ROTATE's file name. The fake ROTATE at a stream's start (log position 0) comes before the
/// format description, so the client library cannot know the events carry checksums and leaves
/// the 4 CRC bytes at the end of the name: they are cut off when the server writes checksums.
fn rotate_file_name(raw: &[u8], fake: bool, checksums: bool) -> String {
    let name = if fake && checksums && raw.len() > 4 {
        &raw[..raw.len() - 4]
    } else {
        raw
    };
    String::from_utf8_lossy(name).into_owned()
}

impl MySqlSourceTask {
    fn new(flavour: &'static str) -> MySqlSourceTask {
        MySqlSourceTask {
            flavour,
            config: None,
            partition: Arc::default(),
            source: None,
            snapshot: None,
            held: None,
            queued: Vec::new(),
            stream: None,
            resume: None,
            file: String::new(),
            transaction: None,
            tables: Tracker::default(),
            catalog: None,
            reconnect_at: None,
            initial_only: false,
            checksums: false,
            gtids: std::collections::BTreeMap::new(),
            resume_skip: None,
            pending_skip: None,
            transaction_metadata: TransactionMetadata::default(),
            heartbeats: None,
            debezium: None,
            server_id: 0,
            last_event_at: tokio::time::Instant::now(),
        }
    }

    fn config(&self) -> Result<&MySqlConfig> {
        self.config
            .as_ref()
            .ok_or_else(|| Error::fatal("MySQL task used before start"))
    }

    /// Opens the binlog at `position`.
    async fn open_stream(&mut self, position: &Position) -> Result<()> {
        let config = self.config()?.clone();
        let mut conn = connect(&config).await?;
        // MariaDB sends its GTID events only to replicas that say they understand them.
        conn.query_drop("SET @mariadb_slave_capability = 4")
            .await
            .map_err(|e| my_error("announcing the replica's capabilities", &config, e))?;
        // The server sends a heartbeat event after this long without events, so a connection
        // that went silent is noticed (see SILENCE_LIMIT).
        conn.query_drop(format!(
            "SET @master_heartbeat_period = {}",
            SERVER_HEARTBEAT.as_nanos()
        ))
        .await
        .map_err(|e| my_error("setting the server's heartbeat period", &config, e))?;
        let checksum: Option<String> = conn
            .query_first("SELECT @@global.binlog_checksum")
            .await
            .map_err(|e| my_error("reading binlog_checksum", &config, e))?;
        self.checksums = checksum.is_some_and(|c| !c.eq_ignore_ascii_case("NONE"));
        // With GTIDs (MariaDB's `domain-server-sequence`) the stream resumes after the last
        // transaction handed out wherever the server now keeps it — also when the binlog file
        // the offset names was purged after a rotation. Without, by file and position.
        // A restart inside a large transaction resumes at its start by file and position,
        // skipping what went out; a GTID position would skip the whole transaction.
        let by_gtid = !self.gtids.is_empty()
            && self.resume_skip.is_none()
            && Self::server_has_gtids(&mut conn, &config).await?;
        let state = self.gtid_state();
        let request = if by_gtid {
            conn.query_drop(format!(
                "SET @slave_connect_state = '{state}', @slave_gtid_strict_mode = 1, \
                 @slave_gtid_ignore_duplicates = 0"
            ))
            .await
            .map_err(|e| my_error("setting the replica's GTID position", &config, e))?;
            BinlogStreamRequest::new(config.server_id)
        } else {
            BinlogStreamRequest::new(config.server_id)
                .with_filename(position.file.as_bytes())
                .with_pos(position.pos)
        };
        let stream = conn.get_binlog_stream(request).await.map_err(|e| {
            let message = e.to_string();
            if message.contains("1236") || message.contains("Could not find first log file") {
                let at = if by_gtid {
                    format!("GTID position {state}")
                } else {
                    format!("binlog position {}:{}", position.file, position.pos)
                };
                Error::config(format!(
                    "the {at} is gone from the server ({message}); set snapshot.mode=when_needed \
                     to take a new snapshot, or reset the connector's offsets"
                ))
            } else {
                my_error("starting the binlog stream", &config, e)
            }
        })?;
        // The catalog connection is opened now rather than at the first DDL: a table is
        // described from INFORMATION_SCHEMA as soon as its DDL is read, and a connection set
        // up then (a TLS negotiation included) would leave more time for a later DDL to
        // change the table first.
        catalog(&mut self.catalog, &config).await?;
        if by_gtid {
            tracing::info!(gtids = %state, "streaming the binlog from a GTID position");
        } else {
            tracing::info!(file = %position.file, pos = position.pos, "streaming the binlog");
        }
        self.file = position.file.clone();
        self.stream = Some(stream);
        self.last_event_at = tokio::time::Instant::now();
        self.transaction = None;
        Ok(())
    }

    /// Whether the server writes GTIDs (MariaDB: a non-empty `gtid_binlog_pos`).
    async fn server_has_gtids(conn: &mut Conn, config: &MySqlConfig) -> Result<bool> {
        let position: Option<Option<String>> = conn
            .query_first("SELECT @@global.gtid_binlog_pos")
            .await
            .map_err(|e| my_error("reading gtid_binlog_pos", config, e))?;
        Ok(position.flatten().is_some_and(|p| !p.is_empty()))
    }

    /// The GTID state as MariaDB writes it: one `domain-server-sequence` per domain.
    fn gtid_state(&self) -> String {
        self.gtids.values().cloned().collect::<Vec<_>>().join(",")
    }

    /// Where an event at `pos` of the current binlog file was read, for the history.
    fn origin(&self, pos: u64, server_id: u32, ts_ms: i64) -> Result<Origin> {
        Ok(Origin {
            prefix: self.config()?.topic_prefix.clone(),
            at: At {
                file: self.file.clone(),
                pos,
            },
            gtids: self.gtid_state(),
            server_id,
            ts_ms,
        })
    }

    /// Snapshot records, then the stream's start once the snapshot is done.
    async fn next_snapshot_batch(&mut self) -> Result<Option<Vec<SourceRecord>>> {
        let max = self.config()?.max_batch;
        let Some(receiver) = self.snapshot.as_mut() else {
            return Ok(None);
        };
        let mut batch = Vec::new();
        let deadline = tokio::time::Instant::now() + POLL_WAIT;
        loop {
            let message = if batch.is_empty() {
                match tokio::time::timeout_at(deadline, receiver.recv()).await {
                    Ok(message) => message,
                    Err(_) => return Ok(Some(batch)),
                }
            } else {
                match receiver.try_recv() {
                    Ok(message) => Some(message),
                    Err(mpsc::error::TryRecvError::Empty) => return Ok(Some(batch)),
                    Err(mpsc::error::TryRecvError::Disconnected) => None,
                }
            };
            match message {
                Some(Ok(Snapshot::Position(position))) => self.resume = Some(position),
                Some(Ok(Snapshot::Table {
                    db,
                    table,
                    columns,
                    ddl,
                })) => {
                    let (Some(config), Some(source), Some(position)) =
                        (&self.config, &self.source, &self.resume)
                    else {
                        return Err(Error::fatal(
                            "a snapshot table before the snapshot's position",
                        ));
                    };
                    let origin = Origin {
                        prefix: config.topic_prefix.clone(),
                        at: At {
                            file: position.file.clone(),
                            pos: position.pos,
                        },
                        gtids: String::new(),
                        server_id: 0,
                        ts_ms: now_ms(),
                    };
                    self.tables
                        .snapshotted(config, source, (&db, &table), columns, &ddl, &origin)
                        .await?;
                }
                Some(Ok(Snapshot::Record(record))) => {
                    if let Some(previous) = self.held.replace(*record) {
                        batch.push(previous);
                    }
                    if batch.len() >= max {
                        return Ok(Some(batch));
                    }
                }
                Some(Err(e)) => return Err(e),
                None => {
                    // The snapshot is complete: its last record carries the offset the stream
                    // starts from, without `snapshot`.
                    self.snapshot = None;
                    if let Some(mut last) = self.held.take() {
                        mark_snapshot(&mut last, "last");
                        for key in ["snapshot", "snapshot_table", "snapshot_key"] {
                            last.source_offset.remove(key);
                        }
                        batch.push(last);
                    } else if let Some(position) = self.resume.clone() {
                        // No rows at all: an offset record-less start; streaming begins here.
                        tracing::info!(file = %position.file, pos = position.pos, "the snapshot found no rows");
                    }
                    if !self.initial_only
                        && let Some(position) = self.resume.clone()
                    {
                        self.open_stream(&position).await?;
                    }
                    return Ok(Some(batch));
                }
            }
        }
    }

    /// Whole transactions from the binlog, until the batch is full or the wait is over.
    async fn next_stream_batch(&mut self) -> Result<Vec<SourceRecord>> {
        let mut batch = Vec::new();
        let deadline = tokio::time::Instant::now() + POLL_WAIT;
        let max = self.config()?.max_batch;
        loop {
            let Some(stream) = self.stream.as_mut() else {
                tokio::time::sleep_until(deadline).await;
                return Ok(batch);
            };
            let event = match tokio::time::timeout_at(deadline, stream.next()).await {
                Err(_) if self.last_event_at.elapsed() > SILENCE_LIMIT => {
                    return Err(Error::retriable(format!(
                        "no binlog event and no heartbeat from the server for {} s",
                        SILENCE_LIMIT.as_secs()
                    )));
                }
                Err(_) => return Ok(batch),
                Ok(None) => return Err(Error::retriable("the binlog stream ended")),
                Ok(Some(Err(e))) => {
                    let config = self.config()?;
                    return Err(my_error("reading the binlog", config, e));
                }
                Ok(Some(Ok(event))) => event,
            };
            if self.on_event(event, &mut batch).await? && batch.len() >= max {
                return Ok(batch);
            }
        }
    }

    /// Handles one binlog event; `true` when a transaction was completed into `batch`.
    async fn on_event(
        &mut self,
        event: mysql_async::binlog::events::Event,
        batch: &mut Vec<SourceRecord>,
    ) -> Result<bool> {
        use mysql_async::binlog::events::{EventData, RowsEventData};
        self.last_event_at = tokio::time::Instant::now();
        let header = event.header();
        let raw_type = header.event_type_raw();
        if self.checksums {
            verify_checksum(&event, &self.file)?;
        }
        let end = u64::from(header.log_pos());
        let start = end.saturating_sub(u64::from(header.event_size()));
        let ts_ms = i64::from(header.timestamp()) * 1000;
        let at = |file: &str| format!("binlog {file}:{start}");
        match raw_type {
            // MariaDB's GTID event opens a transaction: domain-server-sequence.
            0xA2 => {
                let data = event.data();
                let gtid = (data.len() >= 12).then(|| {
                    let seq = u64::from_le_bytes(data[0..8].try_into().expect("8 bytes"));
                    let domain = u32::from_le_bytes(data[8..12].try_into().expect("4 bytes"));
                    format!("{domain}-{}-{seq}", header.server_id())
                });
                // FL_STANDALONE: a statement (DDL) without BEGIN/COMMIT follows.
                let standalone = data.get(12).is_some_and(|flags| flags & 1 != 0);
                self.begin(gtid, start, !standalone);
                return Ok(false);
            }
            0xA5..=0xAA => {
                return Err(Error::config(format!(
                    "{}: a compressed binlog event (log_bin_compress=ON) sluice cannot read yet; set log_bin_compress=OFF",
                    at(&self.file)
                )));
            }
            0xA0..=0xAB => return Ok(false),
            _ => {}
        }
        let data = event
            .read_data()
            .map_err(|e| Error::data(format!("{}: unreadable event: {e}", at(&self.file))))?;
        match data {
            Some(EventData::RotateEvent(rotate)) => {
                self.file =
                    rotate_file_name(rotate.name_raw(), header.log_pos() == 0, self.checksums);
                Ok(false)
            }
            Some(EventData::QueryEvent(query)) => {
                let text = query.query();
                let upper = text.trim().to_ascii_uppercase();
                let explicit = self.transaction.as_ref().is_some_and(|t| t.explicit);
                let server_id = header.server_id();
                match TransactionControl::of(&upper) {
                    Some(TransactionControl::Begin) => {
                        match self.transaction.as_mut() {
                            Some(transaction) => transaction.explicit = true,
                            None => self.begin(None, start, true),
                        }
                        Ok(false)
                    }
                    Some(TransactionControl::Commit) => {
                        Ok(self.commit(end, ts_ms, server_id, batch))
                    }
                    Some(TransactionControl::Rollback) => {
                        self.undo(None, &at(&self.file)).await?;
                        Ok(self.commit(end, ts_ms, server_id, batch))
                    }
                    Some(TransactionControl::Savepoint(name)) if explicit => {
                        if let Some(transaction) = self.transaction.as_mut() {
                            transaction.savepoint(name);
                        }
                        Ok(false)
                    }
                    Some(TransactionControl::RollbackTo(name)) if explicit => {
                        self.undo(Some(&name), &at(&self.file)).await?;
                        Ok(false)
                    }
                    Some(TransactionControl::Inside) if explicit => Ok(false),
                    // A prepared XA transaction's rows went out at its XA PREPARE; its
                    // completion is a group of its own that only moves the position.
                    Some(TransactionControl::XaCompletion { rollback }) => {
                        if rollback {
                            tracing::warn!(
                                at = %at(&self.file),
                                "an XA transaction was rolled back after its XA PREPARE, when its changes had gone out"
                            );
                        }
                        Ok(self.commit(end, ts_ms, server_id, batch))
                    }
                    _ => {
                        let event = StatementAt {
                            start,
                            end,
                            ts_ms,
                            server_id,
                        };
                        let default_db = query.schema().into_owned();
                        self.on_statement(&text, &default_db, explicit, event, batch)
                            .await
                    }
                }
            }
            Some(EventData::XaPrepareLogEvent(_)) => {
                Ok(self.commit(end, ts_ms, header.server_id(), batch))
            }
            Some(EventData::XidEvent(_)) => Ok(self.commit(end, ts_ms, header.server_id(), batch)),
            Some(EventData::RowsEvent(rows)) => {
                let kind = match &rows {
                    RowsEventData::WriteRowsEvent(_) | RowsEventData::WriteRowsEventV1(_) => {
                        RowsKind::Write
                    }
                    RowsEventData::UpdateRowsEvent(_) | RowsEventData::UpdateRowsEventV1(_) => {
                        RowsKind::Update
                    }
                    RowsEventData::DeleteRowsEvent(_) | RowsEventData::DeleteRowsEventV1(_) => {
                        RowsKind::Delete
                    }
                    RowsEventData::PartialUpdateRowsEvent(_) => {
                        return Err(Error::config(format!(
                            "{}: a partial JSON update (binlog_row_value_options=PARTIAL_JSON); set it to ''",
                            at(&self.file)
                        )));
                    }
                };
                let transaction = self.transaction.get_or_insert_with(Transaction::default);
                transaction.rows_events += 1;
                if transaction.rows_events <= transaction.skip_events {
                    // Went out before the restart.
                    return Ok(false);
                }
                let Some(stream) = self.stream.as_ref() else {
                    return Ok(false);
                };
                let Some(map) = stream.get_tme(rows.table_id()) else {
                    return Err(Error::data(format!(
                        "{}: a rows event without its TABLE_MAP",
                        at(&self.file)
                    )));
                };
                let (db, table_name) = (
                    map.database_name().into_owned(),
                    map.table_name().into_owned(),
                );
                let config = self.config()?.clone();
                if !config.captures(&db, &table_name) {
                    return Ok(false);
                }
                let map_columns = MapColumns::read(map);

                let before: Vec<bool> = rows
                    .columns_before_image()
                    .map(|b| b.iter().map(|bit| *bit).collect())
                    .unwrap_or_default();
                let after: Vec<bool> = rows
                    .columns_after_image()
                    .map(|b| b.iter().map(|bit| *bit).collect())
                    .unwrap_or_default();
                let changes =
                    decode_rows(kind, &map_columns.types, &before, &after, rows.rows_data())
                        .map_err(|e| {
                            Error::data(format!("{db}.{table_name} at {}: {e}", at(&self.file)))
                        })?;
                drop(rows);
                let table = match self.tables.fitting(&db, &table_name, &map_columns) {
                    Some(table) => table,
                    None => {
                        let origin = self.origin(start, header.server_id(), ts_ms)?;
                        let catalog = catalog(&mut self.catalog, &config).await?;
                        let source = self
                            .source
                            .clone()
                            .unwrap_or_else(|| source_schema(self.flavour));
                        let established = self
                            .tables
                            .establish(
                                catalog,
                                &config,
                                &source,
                                &db,
                                &table_name,
                                &map_columns,
                                &origin,
                            )
                            .await?;
                        let Some(table) = established else {
                            return Ok(false);
                        };
                        table
                    }
                };
                // Shared by the event's rows.
                let file = Text::shared(&self.file);
                let gtid = self
                    .transaction
                    .as_ref()
                    .and_then(|t| t.gtid.as_deref())
                    .map(Text::shared);
                let mut records = Vec::new();
                for (row, change) in changes.into_iter().enumerate() {
                    let before = change.before.map(|c| table.row_from_cells(c)).transpose()?;
                    let after = change.after.map(|c| table.row_from_cells(c)).transpose()?;
                    let info = SourceInfo {
                        flavour: config.flavour,
                        names: table.source_names.clone(),
                        ts_ms,
                        snapshot: "false",
                        server_id: header.server_id(),
                        gtid: gtid.clone(),
                        file: file.clone(),
                        pos: start,
                        row: row as i32,
                        thread: None,
                    };
                    self.change_records(&config, &table, before, after, &info, &mut records);
                }
                let transaction = self.transaction.get_or_insert_with(Transaction::default);
                transaction.records.extend(records);
                if transaction.records.len() >= config.max_batch {
                    return Ok(self.release_part(ts_ms, header.server_id(), batch));
                }
                Ok(false)
            }
            _ => Ok(false),
        }
    }

    /// The `source` of an event a statement at `pos` of the binlog file being read wrote (in the
    /// open transaction, whose GTID it carries).
    fn statement_source(
        &self,
        config: &MySqlConfig,
        names: SourceNames,
        pos: u64,
        ts_ms: i64,
        server_id: u32,
    ) -> SourceInfo {
        SourceInfo {
            flavour: config.flavour,
            names,
            ts_ms,
            snapshot: "false",
            server_id,
            gtid: self
                .transaction
                .as_ref()
                .and_then(|t| t.gtid.as_deref())
                .map(Text::from),
            file: Text::from(self.file.as_str()),
            pos,
            row: 0,
            thread: None,
        }
    }

    /// Debezium's schema change events of a DDL statement (see [`crate::ddl_events`]) for the
    /// tables and databases the `schema.history.internal.store.only.captured.*` keys keep, each
    /// table with its structure after the statement.
    async fn schema_change_records(
        &mut self,
        config: &MySqlConfig,
        effects: &[crate::ddl::Effect],
        ddl: &str,
        default_db: &str,
        at: StatementAt,
    ) -> Result<Vec<SourceRecord>> {
        let StatementAt {
            start: pos,
            ts_ms,
            server_id,
            ..
        } = at;
        use crate::ddl_events::ChangeKind;
        use crate::history::{dropped_change, table_change};
        let source = self
            .source
            .clone()
            .unwrap_or_else(|| source_schema(self.flavour));
        let schemas = crate::schema_change::SchemaChangeSchemas::new(self.flavour, &source);
        let mut records = Vec::new();
        for event in crate::ddl_events::ddl_events(ddl, default_db, effects) {
            if !config.keeps_schema_changes_of(&event.db, event.table.as_deref()) {
                continue;
            }
            let changes = match (&event.table, event.kind) {
                (_, ChangeKind::Database) | (None, _) => Vec::new(),
                (Some(table), ChangeKind::Drop) => vec![dropped_change(&event.db, table)],
                (Some(table), kind) => {
                    let conn = catalog(&mut self.catalog, config).await?;
                    let columns = crate::sql::describe(conn, config, &event.db, table).await?;
                    vec![table_change(&event.db, table, kind.as_str(), &columns)]
                }
            };
            let names = SourceNames::owned(
                &config.topic_prefix,
                &event.db,
                event.source_tables.as_deref().unwrap_or_default(),
            );
            let info = self.statement_source(config, names, pos, ts_ms, server_id);
            let mut source_block = source_value(&source, &info);
            if event.source_tables.is_none()
                && let Value::Struct(block) = &mut source_block
            {
                let _ = block.put("table", Value::Null);
            }
            let value = schemas.value(source_block, ts_ms, &event.db, &event.ddl, &changes);
            records.push(schemas.record(
                &config.topic_prefix,
                &event.db,
                value,
                ts_ms,
                &self.partition,
                SourceOffset::new(),
            ));
        }
        Ok(records)
    }

    /// Debezium's truncate events (`op` `t`, no key, no row images) for the captured tables a
    /// statement truncates, unless `skipped.operations` skips them (it does by default).
    async fn truncate_records(
        &mut self,
        config: &MySqlConfig,
        effects: &[crate::ddl::Effect],
        pos: u64,
        ts_ms: i64,
        server_id: u32,
    ) -> Result<Vec<SourceRecord>> {
        let mut out = Vec::new();
        if config.events.skipped.skips(Operation::Truncate) {
            return Ok(out);
        }
        let source = self
            .source
            .clone()
            .unwrap_or_else(|| source_schema(self.flavour));
        for effect in effects {
            let crate::ddl::Effect::Truncated(name) = effect else {
                continue;
            };
            if !config.captures(&name.db, &name.table) {
                continue;
            }
            let conn = catalog(&mut self.catalog, config).await?;
            let table = self
                .tables
                .schema_now(conn, config, &source, &name.db, &name.table)
                .await?;
            let names = SourceNames::owned(&config.topic_prefix, &name.db, &name.table);
            let info = self.statement_source(config, names, pos, ts_ms, server_id);
            let value = envelope_value(
                &table.envelope,
                Value::Null,
                Value::Null,
                source_value(&source, &info),
                Operation::Truncate.code(),
            );
            out.push(record(
                &table,
                Value::Null,
                value,
                &self.partition,
                SourceOffset::new(),
                ts_ms,
            ));
        }
        Ok(out)
    }

    /// The events of one changed row: create, update, delete (and tombstone), or a key change
    /// as delete + tombstone + create with Debezium's key headers.
    fn change_records(
        &self,
        config: &MySqlConfig,
        table: &TableSchema,
        before: Option<Value>,
        after: Option<Value>,
        info: &SourceInfo,
        out: &mut Vec<SourceRecord>,
    ) {
        let source = self
            .source
            .clone()
            .unwrap_or_else(|| source_schema(self.flavour));
        let skipped = config.events.skipped;
        let event =
            |op: Operation, before: Value, after: Value, out: &mut Vec<SourceRecord>| -> usize {
                if skipped.skips(op) {
                    return 0;
                }
                let key = table.key_of(if op == Operation::Delete {
                    &before
                } else {
                    &after
                });
                let value = envelope_value(
                    &table.envelope,
                    before,
                    after,
                    source_value(&source, info),
                    op.code(),
                );
                out.push(record(
                    table,
                    key.clone(),
                    value,
                    &self.partition,
                    SourceOffset::new(),
                    info.ts_ms,
                ));
                if op == Operation::Delete && config.tombstones {
                    out.push(record(
                        table,
                        key,
                        Value::Null,
                        &self.partition,
                        SourceOffset::new(),
                        info.ts_ms,
                    ));
                    return 2;
                }
                1
            };
        match (before, after) {
            (None, Some(after)) => {
                event(Operation::Create, Value::Null, after, out);
            }
            (Some(before), None) => {
                event(Operation::Delete, before, Value::Null, out);
            }
            (Some(before), Some(after)) => {
                let (old_key, new_key) = (table.key_of(&before), table.key_of(&after));
                if !old_key.is_null() && old_key != new_key {
                    let from = out.len();
                    let deleted = event(Operation::Delete, before, Value::Null, out);
                    for record in &mut out[from..from + deleted] {
                        headers::mark_new_key(&mut record.record, &new_key, table.key.as_ref());
                    }
                    let from = out.len();
                    event(Operation::Create, Value::Null, after, out);
                    for record in &mut out[from..] {
                        headers::mark_old_key(&mut record.record, &old_key, table.key.as_ref());
                    }
                } else {
                    event(Operation::Update, before, after, out);
                }
            }
            (None, None) => {}
        }
    }

    /// Appends a heartbeat when one is due and the stream stands between transactions: its
    /// offset is the position after the last transaction read (handed out, or of tables not
    /// captured), so committing it moves the stored offset past uncaptured traffic.
    async fn add_heartbeat(&mut self, batch: &mut Vec<SourceRecord>) -> Result<()> {
        let between =
            self.stream.is_some() && self.transaction.is_none() && self.pending_skip.is_none();
        let Some(heartbeats) = self.heartbeats.as_mut() else {
            return Ok(());
        };
        if !between || !heartbeats.due(tokio::time::Instant::now()) {
            return Ok(());
        }
        let Some(position) = self.resume.clone() else {
            return Ok(());
        };
        if let Some(sql) = heartbeats.action_query().map(str::to_owned) {
            let config = self.config()?.clone();
            let conn = catalog(&mut self.catalog, &config).await?;
            conn.query_drop(sql)
                .await
                .map_err(|e| my_error("running heartbeat.action.query", &config, e))?;
        }
        let now_ms = now_ms();
        let mut offset = SourceOffset::new();
        offset.insert("ts_sec".into(), json!(now_ms / 1000));
        offset.insert("file".into(), json!(position.file));
        offset.insert("pos".into(), json!(position.pos));
        let state = self.gtid_state();
        if !state.is_empty() {
            offset.insert("gtids".into(), json!(state));
        }
        offset.insert("row".into(), json!(0));
        offset.insert("server_id".into(), json!(self.server_id));
        offset.insert("event".into(), json!(0));
        if let Some(heartbeats) = self.heartbeats.as_mut() {
            batch.push(heartbeats.record(&self.partition, offset, now_ms));
        }
        Ok(())
    }

    /// A query event that is not a transaction's own statement: DDL, whose tables are described
    /// again before their next rows (and with `include.schema.changes`, announced). Outside a
    /// transaction the statement commits by itself: its position (and GTID) is where a restart
    /// resumes, and its TRUNCATE events go out with that offset. Inside one (MariaDB lets some
    /// DDL into a transaction) the transaction's commit carries them.
    async fn on_statement(
        &mut self,
        text: &str,
        default_db: &str,
        explicit: bool,
        event: StatementAt,
        batch: &mut Vec<SourceRecord>,
    ) -> Result<bool> {
        let StatementAt {
            start,
            end,
            ts_ms,
            server_id,
        } = event;
        let config = self.config()?.clone();
        let origin = self.origin(end, server_id, ts_ms)?;
        let effects = self
            .tables
            .on_ddl(&config, text, default_db, &origin)
            .await?;
        let mut records = if config.schema_changes {
            self.schema_change_records(&config, &effects, text, default_db, event)
                .await?
        } else {
            Vec::new()
        };
        records.extend(
            self.truncate_records(&config, &effects, start, ts_ms, server_id)
                .await?,
        );
        self.transaction
            .get_or_insert_with(Transaction::default)
            .records
            .extend(records);
        if explicit {
            return Ok(false);
        }
        Ok(self.commit(end, ts_ms, server_id, batch))
    }

    /// A ROLLBACK (`savepoint` None) or ROLLBACK TO in the binlog: the server wrote the rows
    /// because the transaction also changed a non-transactional table, whose changes stay;
    /// the records of transactional tables (by their engine now) after the savepoint are
    /// dropped.
    async fn undo(&mut self, savepoint: Option<&str>, at: &str) -> Result<()> {
        let Some(transaction) = self.transaction.as_ref() else {
            return Ok(());
        };
        let Some(from) = transaction.rolled_back_from(savepoint) else {
            tracing::warn!(%at, savepoint, "a ROLLBACK TO a savepoint this transaction did not set here; its rows are kept");
            return Ok(());
        };
        if transaction.released {
            tracing::warn!(%at, "a transaction too large to hold was rolled back after parts of it had gone out; those parts stay emitted");
        }
        let tables = transaction.tables_from(from);
        let mut transactional = Vec::new();
        if !tables.is_empty() {
            let config = self.config()?.clone();
            let conn = catalog(&mut self.catalog, &config).await?;
            for (db, table) in tables {
                let answer: Option<String> = conn
                    .exec_first(
                        "SELECT e.TRANSACTIONS FROM information_schema.TABLES t \
                         JOIN information_schema.ENGINES e ON e.ENGINE = t.ENGINE \
                         WHERE t.TABLE_SCHEMA = ? AND t.TABLE_NAME = ?",
                        (&db, &table),
                    )
                    .await
                    .map_err(|e| my_error("reading a rolled-back table's engine", &config, e))?;
                // An unknown engine (the table is gone): keep its rows rather than lose them.
                if answer.as_deref() == Some("YES") {
                    transactional.push((db, table));
                }
            }
        }
        let transaction = self.transaction.as_mut().expect("checked above");
        let dropped = transaction.drop_undone(from, |db, table| {
            transactional.iter().any(|(d, t)| d == db && t == table)
        });
        tracing::info!(%at, dropped, "a rollback in the binlog: the rolled-back changes of transactional tables are dropped, those of non-transactional ones kept");
        Ok(())
    }

    /// Opens a transaction starting at `start` (its GTID or BEGIN event); one the stored
    /// offset says was partly sent skips those rows events.
    fn begin(&mut self, gtid: Option<String>, start: u64, explicit: bool) {
        let start = Position {
            file: self.file.clone(),
            pos: start,
        };
        let (skip_events, counts) = match self.resume_skip.take() {
            Some((at, events, counts)) if at == start => (events, counts),
            Some((other, _, _)) => {
                tracing::warn!(expected = ?other, found = ?start, "the transaction to resume inside was not found where the offset said; nothing skipped");
                (0, None)
            }
            None => (0, None),
        };
        let mut transaction = Transaction::open(gtid, start, skip_events, explicit);
        transaction.counts = counts;
        self.transaction = Some(transaction);
    }

    /// Hands out what a large transaction decoded so far (every rows event read), so a
    /// transaction of any size passes in bounded memory. The last record's offset resumes at
    /// the transaction's start and skips the rows events that went out (`event`), as
    /// Debezium's `event` count does.
    fn release_part(&mut self, ts_ms: i64, server_id: u32, batch: &mut Vec<SourceRecord>) -> bool {
        let state = self.gtid_state();
        let Some(transaction) = self.transaction.as_mut() else {
            return false;
        };
        let Some(start) = transaction.start.clone() else {
            // Without a known start the part cannot be resumed: keep it until the commit.
            return false;
        };
        let mut records = std::mem::take(&mut transaction.records);
        transaction.released |= !records.is_empty();
        if let Some(last) = records.last_mut() {
            last.source_offset =
                binlog_offset(&start, &state, ts_ms, server_id, transaction.rows_events);
        }
        if let Some(config) = self.config.as_ref().filter(|c| c.transaction_metadata) {
            let context = MetadataContext {
                records: &self.transaction_metadata,
                topic_prefix: &config.topic_prefix,
                partition: &self.partition,
            };
            records = transaction.with_metadata(&context, &start, ts_ms, records, None);
        }
        self.resume = Some(start.clone());
        let events = transaction.rows_events;
        let any = !records.is_empty();
        batch.append(&mut records);
        // A reconnection resumes inside this transaction, after what went out.
        self.pending_skip = Some((start, events, transaction.counts.clone()));
        any
    }

    /// Completes the open transaction at `end` (the position after its commit event): its last
    /// record gets the offset that resumes after it.
    fn commit(
        &mut self,
        end: u64,
        ts_ms: i64,
        server_id: u32,
        batch: &mut Vec<SourceRecord>,
    ) -> bool {
        let Some(mut transaction) = self.transaction.take() else {
            return false;
        };
        if let Some(debezium) = &self.debezium {
            let now_ms = now_ms();
            debezium.add(
                "streaming",
                "TotalNumberOfEventsSeen",
                transaction.records.len() as f64,
            );
            debezium.add("streaming", "NumberOfCommittedTransactions", 1.0);
            debezium.set(
                "streaming",
                "MilliSecondsBehindSource",
                (now_ms - ts_ms).max(0) as f64,
            );
        }
        let position = Position {
            file: self.file.clone(),
            pos: end,
        };
        if let Some(gtid) = &transaction.gtid
            && let Some(domain) = gtid.split('-').next().and_then(|d| d.parse::<u32>().ok())
        {
            self.gtids.insert(domain, gtid.clone());
        }
        let state = self.gtid_state();
        self.pending_skip = None;
        self.server_id = server_id;
        let offset = binlog_offset(&position, &state, ts_ms, server_id, 0);
        let mut records = std::mem::take(&mut transaction.records);
        if let Some(last) = records.last_mut() {
            last.source_offset = offset.clone();
        }
        if let Some(config) = self.config.as_ref().filter(|c| c.transaction_metadata) {
            let context = MetadataContext {
                records: &self.transaction_metadata,
                topic_prefix: &config.topic_prefix,
                partition: &self.partition,
            };
            records = transaction.with_metadata(&context, &position, ts_ms, records, Some(offset));
        }
        self.resume = Some(position);
        let any = !records.is_empty();
        batch.append(&mut records);
        any
    }
}

/// The schema history `config` names, opened: a file, or a topic on the worker's Kafka; `None`
/// keeps the schemas in memory, read anew on every start.
async fn open_history(
    config: &MySqlConfig,
    context: &SourceTaskContext,
) -> Result<Option<HistoryStore>> {
    let in_memory = "table schemas are tracked in memory, and a restart reads them anew (events \
                     written before a DDL and read after a restart may then not fit)";
    match &config.history {
        HistoryConfig::File(path) => Ok(Some(HistoryStore::File(FileHistory::new(path)))),
        HistoryConfig::Topic {
            topic,
            client,
            file,
            explicit,
        } => match &context.history_topics {
            Some(topics) => {
                let opened = topics.open(topic, client).await.map_err(|e| {
                    e.context(format!(
                        "the schema history topic {topic} (schema.history.internal.kafka.topic)"
                    ))
                })?;
                // Both keys and no class: a history kept in the file so far (before the topic was
                // built, sluice used the file then) goes on there rather than in an empty topic.
                if let Some(path) = file {
                    let in_file = FileHistory::new(path).load(&config.topic_prefix)?;
                    if !in_file.is_empty() && opened.read_all().await?.is_empty() {
                        tracing::warn!(
                            file = %path.display(),
                            topic,
                            "the schema history so far is in schema.history.internal.file.filename and the topic is \
                             empty: it stays in the file (set schema.history.internal to choose)"
                        );
                        return Ok(Some(HistoryStore::File(FileHistory::new(path))));
                    }
                }
                tracing::info!(topic, "schema history kept in a Kafka topic");
                Ok(Some(HistoryStore::Topic(opened)))
            }
            None if *explicit => Err(Error::config(
                "schema.history.internal=io.debezium.storage.kafka.history.KafkaSchemaHistory needs Kafka, and \
                 the embedded pipeline has none: run the worker on Kafka (bootstrap.servers), or keep the history \
                 in a file (io.debezium.storage.file.history.FileSchemaHistory with \
                 schema.history.internal.file.filename)",
            )),
            None => match file {
                Some(path) => {
                    tracing::info!(
                        file = %path.display(),
                        "the embedded pipeline has no Kafka: the schema history is kept in \
                         schema.history.internal.file.filename, not schema.history.internal.kafka.topic"
                    );
                    Ok(Some(HistoryStore::File(FileHistory::new(path))))
                }
                None => {
                    tracing::warn!(
                        "`schema.history.internal.kafka.topic` has no effect on the embedded pipeline, which \
                         has no Kafka: {in_memory}. Set schema.history.internal.file.filename to keep them in a file"
                    );
                    Ok(None)
                }
            },
        },
        HistoryConfig::Memory => {
            tracing::info!("no schema history configured: {in_memory}");
            Ok(None)
        }
    }
}

#[async_trait]
impl SourceTask for MySqlSourceTask {
    async fn start(&mut self, context: SourceTaskContext) -> Result<()> {
        let mut config = MySqlConfig::from_props(&context.config, self.flavour)?;
        config.task_id = context.task_id;
        let mut partition = SourcePartition::new();
        partition.insert("server".into(), json!(config.topic_prefix));
        let committed = context.offsets.offset(&partition).await?;
        self.partition = Arc::new(partition);
        self.source = Some(source_schema(self.flavour));
        self.heartbeats = Heartbeats::new(
            config.heartbeat_interval,
            &config.heartbeat_topic_prefix,
            &config.topic_prefix,
            config.heartbeat_action_query.clone(),
        );
        self.config = Some(config.clone());
        self.debezium = Some(context.metrics.debezium(self.flavour, &config.topic_prefix));
        self.tables = Tracker::new(open_history(&config, &context).await?);
        let mut conn = connect(&config).await?;
        check_server(&mut conn, &config).await?;
        let position = committed.as_ref().and_then(|o| {
            Some(Position {
                file: o.get("file")?.as_str()?.to_owned(),
                pos: o.get("pos")?.as_u64()?,
            })
        });
        if let Some(gtids) = committed
            .as_ref()
            .and_then(|o| o.get("gtids"))
            .and_then(|g| g.as_str())
        {
            for gtid in gtids.split(',').map(str::trim).filter(|g| !g.is_empty()) {
                if let Some(domain) = gtid.split('-').next().and_then(|d| d.parse::<u32>().ok()) {
                    self.gtids.insert(domain, gtid.to_owned());
                }
            }
        }
        // An offset inside a large transaction: resume at its start, skipping what went out.
        if let (Some(position), Some(events)) = (
            position.clone(),
            committed
                .as_ref()
                .and_then(|o| o.get("event"))
                .and_then(|e| e.as_u64())
                .filter(|e| *e > 0),
        ) {
            tracing::info!(file = %position.file, pos = position.pos, events, "resuming inside a large transaction: its first rows events went out already");
            let counts = committed
                .as_ref()
                .and_then(TransactionCounts::load)
                .map(|(_, counts)| counts);
            self.resume_skip = Some((position, events, counts));
        }
        let snapshot_done = committed
            .as_ref()
            .is_some_and(|o| o.get("snapshot").and_then(|s| s.as_bool()) != Some(true));
        // A snapshot cut short by a crash: where its stream was to start.
        let interrupted = position.clone().filter(|_| {
            committed
                .as_ref()
                .is_some_and(|o| o.get("snapshot").and_then(|s| s.as_bool()) == Some(true))
        });
        let snapshot_now = match config.snapshot {
            SnapshotMode::Initial | SnapshotMode::InitialOnly | SnapshotMode::WhenNeeded => {
                !snapshot_done
            }
            SnapshotMode::Always => true,
            SnapshotMode::NoData | SnapshotMode::Recovery => false,
        };
        // Where the interrupted snapshot stood, so the new one reads on from there.
        let resume = committed
            .as_ref()
            .filter(|_| interrupted.is_some())
            .and_then(crate::snapshot::ResumeAt::from_offset);
        if config.snapshot == SnapshotMode::Recovery && interrupted.is_some() {
            return Err(Error::config(
                "snapshot.mode=recovery: the stored offset is of a snapshot that did not finish, and recovery sends \
                 no data; use snapshot.mode=initial (or when_needed) to finish it",
            ));
        }
        self.initial_only = config.snapshot == SnapshotMode::InitialOnly;
        if snapshot_now {
            if let Some(earlier) = &interrupted {
                // The new view is not the stream's position: the tables' schemas there are
                // those the interrupted snapshot recorded.
                self.tables
                    .recover(
                        &config,
                        self.source.as_ref().expect("set above"),
                        &At {
                            file: earlier.file.clone(),
                            pos: earlier.pos,
                        },
                    )
                    .await?;
            }
            let (sender, receiver) = mpsc::channel(config.max_batch.max(1));
            tokio::spawn(crate::snapshot::run(
                config.clone(),
                self.source.clone().expect("set above"),
                Arc::clone(&self.partition),
                sender,
                interrupted,
                resume,
                self.debezium.clone(),
            ));
            self.snapshot = Some(receiver);
            return Ok(());
        }
        if self.initial_only {
            return Ok(());
        }
        let start = match position.filter(|_| snapshot_done) {
            Some(position) => position,
            None => {
                let row: Option<(String, u64)> = conn
                    .query_first("SHOW MASTER STATUS")
                    .await
                    .map_err(|e| my_error("reading the binlog position", &config, e))?
                    .map(|row: mysql_async::Row| {
                        (
                            row.get::<String, _>(0).unwrap_or_default(),
                            row.get::<u64, _>(1).unwrap_or(4),
                        )
                    });
                let (file, pos) = row.ok_or_else(|| {
                    Error::config("SHOW MASTER STATUS returned nothing: is log_bin on?")
                })?;
                Position { file, pos }
            }
        };
        // The source server's id, as the stored offset has it.
        let stored_server_id = committed
            .as_ref()
            .and_then(|o| o.get("server_id")?.as_u64())
            .and_then(|id| u32::try_from(id).ok())
            .unwrap_or_default();
        if config.snapshot == SnapshotMode::Recovery {
            let origin = Origin {
                prefix: config.topic_prefix.clone(),
                at: At {
                    file: start.file.clone(),
                    pos: start.pos,
                },
                gtids: self.gtid_state(),
                server_id: stored_server_id,
                ts_ms: now_ms(),
            };
            let tables = self.tables.rebuild(&mut conn, &config, &origin).await?;
            tracing::info!(
                tables,
                file = %start.file,
                pos = start.pos,
                "snapshot.mode=recovery: the schema history is rebuilt from the captured tables as they are now"
            );
        }
        let replayed = self
            .tables
            .recover(
                &config,
                self.source.as_ref().expect("set above"),
                &At {
                    file: start.file.clone(),
                    pos: start.pos,
                },
            )
            .await?;
        if replayed > 0 {
            tracing::info!(
                records = replayed,
                "schema history replayed up to the resume position"
            );
        }
        // Debezium's snapshot of the schemas only (no_data on a first start, recovery) sends
        // its snapshot statements as schema change events too.
        let schema_only = match config.snapshot {
            SnapshotMode::NoData => committed.is_none(),
            SnapshotMode::Recovery => true,
            _ => false,
        };
        if config.schema_changes && schema_only {
            let at = crate::snapshot::SnapshotAt {
                file: &start.file,
                pos: start.pos,
                server_id: stored_server_id,
                ts_ms: now_ms(),
            };
            let source = self.source.clone().expect("set above");
            // The stored offset as it is (it may stand inside a large transaction), else the
            // stream's start.
            let offset = committed.clone().unwrap_or_else(|| {
                binlog_offset(&start, &self.gtid_state(), at.ts_ms, stored_server_id, 0)
            });
            let mut catalog = crate::snapshot::Catalog::list(&mut conn, &config).await?;
            let events = crate::snapshot::schema_change_events(
                &mut conn,
                &mut catalog,
                &config,
                &source,
                &self.partition,
                &at,
                offset,
            )
            .await?;
            self.queued.extend(events);
        }
        self.open_stream(&start).await?;
        self.tables
            .prune(
                &config,
                &At {
                    file: start.file.clone(),
                    pos: start.pos,
                },
            )
            .await?;
        self.resume = Some(start);
        Ok(())
    }

    async fn poll(&mut self) -> Result<Vec<SourceRecord>> {
        if let Some(debezium) = &self.debezium {
            let connected = self.stream.is_some() && self.reconnect_at.is_none();
            debezium.set("streaming", "Connected", f64::from(u8::from(connected)));
        }
        if let Some(at) = self.reconnect_at {
            tokio::time::sleep_until(at.min(tokio::time::Instant::now() + POLL_WAIT)).await;
            if tokio::time::Instant::now() < at {
                return Ok(Vec::new());
            }
            self.reconnect_at = None;
            if self.resume_skip.is_none() {
                self.resume_skip = self.pending_skip.clone();
            }
            let Some(position) = self.resume.clone() else {
                return Err(Error::fatal("reconnecting without a position"));
            };
            if let Err(e) = self.open_stream(&position).await {
                if e.kind() != ErrorKind::Retriable {
                    return Err(e);
                }
                tracing::warn!(error = %e, "reconnecting to the server failed; retrying");
                self.reconnect_at = Some(tokio::time::Instant::now() + Duration::from_secs(1));
            }
            return Ok(Vec::new());
        }
        if !self.queued.is_empty() {
            return Ok(std::mem::take(&mut self.queued));
        }
        if self.snapshot.is_some() {
            return Ok(self.next_snapshot_batch().await?.unwrap_or_default());
        }
        match self.next_stream_batch().await {
            Ok(mut batch) => {
                self.add_heartbeat(&mut batch).await?;
                Ok(batch)
            }
            Err(e) if e.kind() == ErrorKind::Retriable => {
                tracing::warn!(error = %e, "lost the binlog stream; reconnecting");
                self.stream = None;
                self.catalog = None;
                self.transaction = None;
                self.reconnect_at = Some(tokio::time::Instant::now() + Duration::from_millis(250));
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    }

    async fn stop(&mut self) -> Result<()> {
        if let Some(stream) = self.stream.take() {
            let _ = stream.close().await;
        }
        if let Some(conn) = self.catalog.take() {
            let _ = conn.disconnect().await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fake_rotate_s_checksum_is_cut_from_the_file_name() {
        // Seen on MariaDB 10.11: the CRC's bytes may well be printable ("binlog.000001O…").
        assert_eq!(
            rotate_file_name(b"binlog.000001O\x12\xab\x01", true, true),
            "binlog.000001"
        );
        assert_eq!(
            rotate_file_name(b"binlog.000002", false, true),
            "binlog.000002"
        );
        assert_eq!(
            rotate_file_name(b"binlog.000003", true, false),
            "binlog.000003"
        );
    }
}
