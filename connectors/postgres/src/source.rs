//! The Postgres source: an initial snapshot read through the snapshot the replication slot
//! exported at its creation (so snapshot and stream meet without gap or overlap), then the
//! slot's pgoutput stream, one poll batch per committed transaction.
//!
//! Offsets follow Debezium's layout (`lsn`, `lsn_commit`, `lsn_proc`, `txId`, `ts_usec`, and
//! `snapshot`/`last_snapshot_record` while snapshotting) under partition
//! `{"server": <topic.prefix>}`. A transaction's records share its end LSN as `lsn`, so a
//! committed offset always covers whole transactions; the slot's confirmed position moves only
//! in [`SourceTask::offsets_committed`], i.e. after the records are durable downstream.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use sluice_api::config::Props;
use sluice_api::connector::{SourceConnector, SourceTask, SourceTaskContext};
use sluice_api::data::{Schema, SchemaRef, SchemaType, Struct, Value};
use sluice_api::metrics::{DebeziumMetrics, TaskMetrics};
use sluice_api::record::{Record, SourceOffset, SourcePartition, SourceRecord};
use sluice_api::{Error, ErrorKind, Result};
use tokio_postgres::Client;

use crate::config::{PostgresConfig, SnapshotMode, config_def};
use crate::envelope::{SourceInfo, TableColumn, TableSchema, source_schema, source_value};
use crate::lsn::Lsn;
use crate::pgoutput::{Decoder, Message, OldTuple, Relation, ReplicaIdentity, unix_micros};
use crate::snapshot::{ResumePoint, SnapshotJob, SnapshotProgress, SnapshotReader, SnapshotTable};
use crate::spool::{Spool, SpoolReplay};
use crate::sql::{
    CatalogColumn, TypeCatalog, connect, describe_columns, pg_error, query, quote_ident,
    quote_literal, unix_now_micros,
};
use crate::transaction::{TransactionCounts, TransactionInfo, TransactionMetadata};
use crate::types::ColumnType;
use crate::wire::{ReplicationClient, WireEvent, slot_in_use};
use sluice_debezium::FailureMode;
use sluice_debezium::headers;
use sluice_debezium::heartbeat::Heartbeats;
use sluice_debezium::operations::Operation;

/// How long one poll waits for the stream before returning an empty batch. The worker commits
/// offsets between polls, so this bounds how long the last records' offsets (and with them the
/// slot) wait once the stream goes quiet; an empty poll costs next to nothing.
const POLL_WAIT: Duration = Duration::from_millis(100);

/// How long a poll that already holds records waits for more. While the server sends a
/// backlog the next message is always this close, so batches still fill up; once the stream
/// is caught up the records go out at once instead of waiting out [`POLL_WAIT`].
const BATCH_LINGER: Duration = Duration::from_millis(10);

/// The connector: one task (a slot has one reader).
#[derive(Default)]
pub struct PostgresSourceConnector {
    props: Props,
}

/// Shows the config with the password (and any other secret) hidden.
impl fmt::Debug for PostgresSourceConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSourceConnector")
            .field("props", &config_def().redact(&self.props))
            .finish()
    }
}

#[async_trait]
impl SourceConnector for PostgresSourceConnector {
    async fn start(&mut self, config: &Props) -> Result<()> {
        PostgresConfig::from_props(config)?;
        self.props = config.clone();
        Ok(())
    }

    fn task_configs(&self, _max_tasks: usize) -> Result<Vec<Props>> {
        Ok(vec![self.props.clone()])
    }

    fn create_task(&self) -> Box<dyn SourceTask> {
        Box::new(PostgresSourceTask::default())
    }

    /// Debezium's partition `{"server": <topic.prefix>}` and an offset with an integer `lsn`
    /// (see [`crate::offsets`]).
    fn validate_offsets(
        &self,
        config: &Props,
        offsets: &[(SourcePartition, Option<SourceOffset>)],
    ) -> Result<()> {
        let config = PostgresConfig::from_props(config)?;
        crate::offsets::validate(&config.topic_prefix, offsets)
    }

    /// Drops the replication slot, so it holds no WAL back after the connector is gone (the
    /// publication stays: other connectors may share it).
    async fn cleanup(&mut self, config: &Props) -> Result<()> {
        let config = PostgresConfig::from_props(config)?;
        drop_slot(
            &config,
            "dropping the replication slot (DELETE ?cleanup=true)",
        )
        .await
    }
}

/// A committed transaction being decoded: live (protocol 1, or one the server did not stream)
/// or read back from its spool after `Stream Commit`.
struct Transaction {
    xid: u32,
    commit_lsn: u64,
    commit_micros: i64,
    /// Decoded records not handed out yet.
    records: Vec<SourceRecord>,
    /// The WAL position of the last change decoded.
    last_change_lsn: u64,
    /// Set once part of the transaction went out: up to which change.
    sent_through: Option<u64>,
    /// After a restart in the middle of this transaction: changes up to here went out already.
    skip_through: Option<u64>,
    /// The metadata counts, once `BEGIN` went out (`provide.transaction.metadata`).
    counts: Option<TransactionCounts>,
}

/// A streamed transaction being read back from its spool after its `Stream Commit`.
struct Replay {
    spool: SpoolReplay,
    decoder: Decoder,
    /// The relations sent inside the stream (the server sends them per streamed
    /// transaction, apart from those of the normal stream).
    tables: HashMap<u32, TableSchema>,
    commit_lsn: u64,
    end_lsn: u64,
}

/// The task.
#[derive(Default)]
pub struct PostgresSourceTask {
    config: Option<PostgresConfig>,
    partition: Arc<SourcePartition>,
    source_schema: Option<SchemaRef>,
    tables: HashMap<u32, TableSchema>,
    snapshot: Option<SnapshotReader>,
    snapshot_progress: Arc<SnapshotProgress>,
    /// What starts the stream once the snapshot is read.
    after_snapshot: Option<AfterSnapshot>,
    stream: Option<ReplicationClient>,
    decoder: Decoder,
    transaction: Option<Transaction>,
    /// Streamed in-progress transactions, by top-level xid.
    streams: HashMap<u32, Spool>,
    /// Between `Stream Start` and `Stream Stop`: whose messages arrive.
    stream_block: Option<u32>,
    replay: Option<Replay>,
    last_commit_lsn: Option<u64>,
    /// The end of the last transaction decoded whole: where a stream may resume.
    last_end_lsn: Option<u64>,
    /// After a restart in the middle of a large transaction (its commit LSN, and the last change
    /// that went out): those changes are not sent again.
    skip: Option<(u64, u64)>,
    /// The offset of the last record handed out, and whether it has since been committed: only
    /// then may the slot be moved past it on the server's keepalives.
    last_emitted: Option<SourceOffset>,
    everything_committed: bool,
    /// The position most recently confirmed to the server.
    confirmed_lsn: u64,
    /// A normal (query) connection, kept for catalog look-ups while streaming.
    client: Option<Arc<Client>>,
    types: TypeCatalog,
    transaction_metadata: TransactionMetadata,
    /// Set while the connection is lost.
    reconnect: Option<Reconnect>,
    metrics: TaskMetrics,
    /// Debezium's streaming metrics (`MilliSecondsBehindSource`, …) under its names.
    debezium: Option<DebeziumMetrics>,
    /// When the slot's lag was last measured.
    lag_measured: Option<tokio::time::Instant>,
    /// Where a new stream resumes: the end of the last transaction handed out, else where
    /// this run started streaming.
    resume_lsn: Option<u64>,
    start_lsn: Option<u64>,
    /// `heartbeat.interval.ms` > 0.
    heartbeats: Option<Heartbeats>,
    /// The server's decoding position at the last keepalive that found no transaction open:
    /// everything before it was decoded (changes to tables outside the publication decode to
    /// nothing).
    idle_position: Option<u64>,
}

/// Shows the config (password hidden), the phase and the stream positions; schemas, the
/// decoder and transactions in progress are left out.
impl fmt::Debug for PostgresSourceTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSourceTask")
            .field("config", &self.config)
            .field("partition", &self.partition)
            .field("snapshotting", &self.snapshot.is_some())
            .field("snapshot_progress", &self.snapshot_progress)
            .field("stream", &self.stream)
            .field("tables", &self.tables.len())
            .field("in_transaction", &self.transaction.is_some())
            .field("streamed_transactions", &self.streams.len())
            .field("replaying", &self.replay.is_some())
            .field("last_commit_lsn", &self.last_commit_lsn)
            .field("last_end_lsn", &self.last_end_lsn)
            .field("skip", &self.skip)
            .field("everything_committed", &self.everything_committed)
            .field("confirmed_lsn", &self.confirmed_lsn)
            .field("resume_lsn", &self.resume_lsn)
            .field("start_lsn", &self.start_lsn)
            .field(
                "reconnect_attempt",
                &self.reconnect.as_ref().map(|r| r.attempt),
            )
            .field("heartbeats", &self.heartbeats)
            .field("idle_position", &self.idle_position)
            .finish_non_exhaustive()
    }
}

enum AfterSnapshot {
    /// Start the slot's session, kept idle so its exported snapshot stays importable.
    Start(ReplicationClient),
    /// Connect to the existing slot, from this position.
    Connect(Option<u64>),
}

struct Reconnect {
    attempt: u32,
    next_at: tokio::time::Instant,
    cause: Error,
    what: Resumption,
}

/// What a reconnection starts again.
enum Resumption {
    /// The stream, after the last transaction handed out.
    Stream,
    /// The snapshot, in a new view, after the last row handed out (`None`: from its start).
    /// The slot stays where it was, so changes between the old view and the new one arrive
    /// from the stream as well: at least once, none missed.
    Snapshot(Option<ResumePoint>),
}

/// How often the slot's lag is measured.
const SLOT_LAG_INTERVAL: Duration = Duration::from_secs(5);

/// Reconnection backoff: doubling from the first delay up to the cap.
const RECONNECT_BACKOFF_FIRST: Duration = Duration::from_millis(250);
const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(30);

impl PostgresSourceTask {
    fn config(&self) -> Result<&PostgresConfig> {
        self.config
            .as_ref()
            .ok_or_else(|| Error::fatal("Postgres task used before start"))
    }

    async fn check_server(client: &Client, config: &PostgresConfig) -> Result<()> {
        let wal_level = query(client, config, "show wal_level", "show wal_level").await?;
        let level = wal_level
            .first()
            .and_then(|r| r[0].clone())
            .unwrap_or_default();
        if level != "logical" {
            return Err(Error::config(format!(
                "Postgres {}:{} runs with wal_level={level}; logical decoding needs wal_level=logical in postgresql.conf (then restart Postgres)",
                config.host, config.port
            )));
        }
        let role = query(
            client,
            config,
            "reading the user's privileges",
            &format!(
                "select rolreplication or rolsuper from pg_roles where rolname = {}",
                quote_literal(&config.user)
            ),
        )
        .await?;
        if role.first().and_then(|r| r[0].as_deref()) != Some("t") {
            return Err(Error::config(format!(
                "user {} lacks the REPLICATION privilege; run ALTER ROLE {} REPLICATION",
                config.user,
                quote_ident(&config.user)
            )));
        }
        Ok(())
    }

    /// Every captured table must identify the rows its updates and deletes change: Postgres
    /// refuses those writes to a table that publishes them without a replica identity (no
    /// primary key and `REPLICA IDENTITY DEFAULT`, or `NOTHING`), and a stream could not key
    /// them. Said at start, naming the tables and the fix.
    async fn check_replica_identity(client: &Client, config: &PostgresConfig) -> Result<()> {
        let tables = query(
            client,
            config,
            "checking the captured tables' replica identity",
            &format!(
                "select p.schemaname, p.tablename, c.relreplident::text from pg_publication_tables p \
                 join pg_publication pub on pub.pubname = p.pubname \
                 join pg_class c on c.oid = (quote_ident(p.schemaname) || '.' || quote_ident(p.tablename))::regclass \
                 where p.pubname = {} and (pub.pubupdate or pub.pubdelete) \
                 and (c.relreplident = 'n' or (c.relreplident = 'd' and not exists \
                   (select 1 from pg_index i where i.indrelid = c.oid and i.indisprimary))) \
                 order by 1, 2",
                quote_literal(&config.publication)
            ),
        )
        .await?;
        let unidentified: Vec<String> = tables
            .into_iter()
            .filter_map(|t| Some((t.first()?.clone()?, t.get(1)?.clone()?)))
            .filter(|(schema, table)| config.filters.captures_table(schema, table))
            .map(|(schema, table)| format!("{}.{}", quote_ident(&schema), quote_ident(&table)))
            .collect();
        if unidentified.is_empty() {
            return Ok(());
        }
        Err(Error::config(format!(
            "captured table(s) {} have no primary key and no replica identity, so their updates and deletes \
             cannot be streamed (Postgres refuses them); add a primary key, or run ALTER TABLE {} REPLICA IDENTITY FULL, \
             or leave the table out with table.exclude.list",
            unidentified.join(", "),
            unidentified[0]
        )))
    }

    async fn publication_exists(client: &Client, config: &PostgresConfig) -> Result<bool> {
        let found = query(
            client,
            config,
            "looking up the publication",
            &format!(
                "select 1 from pg_publication where pubname = {}",
                quote_literal(&config.publication)
            ),
        )
        .await?;
        Ok(!found.is_empty())
    }

    async fn ensure_publication(client: &Client, config: &PostgresConfig) -> Result<()> {
        if Self::publication_exists(client, config).await? {
            return Ok(());
        }
        let target = match config.autocreate.as_str() {
            "all_tables" => "FOR ALL TABLES".to_owned(),
            "filtered" if config.filters.filters_tables() => {
                let tables = query(
                    client,
                    config,
                    "listing tables for the publication",
                    "select schemaname, tablename from pg_tables \
                     where schemaname not in ('pg_catalog', 'information_schema') order by 1, 2",
                )
                .await?;
                let captured: Vec<String> = tables
                    .into_iter()
                    .filter_map(|t| Some((t.first()?.clone()?, t.get(1)?.clone()?)))
                    .filter(|(schema, table)| config.filters.captures_table(schema, table))
                    .map(|(schema, table)| {
                        format!("{}.{}", quote_ident(&schema), quote_ident(&table))
                    })
                    .collect();
                if captured.is_empty() {
                    return Err(Error::config(
                        "publication.autocreate.mode=filtered: no existing table matches the schema/table include \
                         and exclude lists; create the tables first or fix the lists",
                    ));
                }
                format!("FOR TABLE {}", captured.join(", "))
            }
            "filtered" => {
                return Err(Error::config(
                    "publication.autocreate.mode=filtered needs table.include.list (or schema.include.list, or an exclude list)",
                ));
            }
            _ => {
                return Err(Error::config(format!(
                    "publication {} does not exist and publication.autocreate.mode=disabled; create it \
                     (CREATE PUBLICATION {} FOR ALL TABLES) or change the mode",
                    config.publication,
                    quote_ident(&config.publication)
                )));
            }
        };
        let created = client
            .simple_query(&format!(
                "CREATE PUBLICATION {} {target}",
                quote_ident(&config.publication)
            ))
            .await;
        if let Err(e) = created {
            // Another connector on the same database may have created it just now.
            if Self::publication_exists(client, config).await? {
                return Ok(());
            }
            return Err(pg_error("creating the publication", config, e));
        }
        tracing::info!(publication = %config.publication, "created publication");
        Ok(())
    }

    /// Plans the snapshot (captured tables, their schemas and key columns) and starts reading
    /// it in the background, inside `exported` (the slot's exported snapshot) or a fresh view.
    async fn start_snapshot(
        &mut self,
        client: &Client,
        exported: Option<String>,
        lsn: u64,
        resume: Option<ResumePoint>,
    ) -> Result<()> {
        let config = self.config()?.clone();
        let listed = query(client, &config, "listing the publication's tables", &format!(
                    "select p.schemaname, p.tablename, greatest(c.reltuples, -1)::int8 from pg_publication_tables p \
                     join pg_class c on c.oid = (quote_ident(p.schemaname) || '.' || quote_ident(p.tablename))::regclass \
                     where p.pubname = {} order by 1, 2",
                    quote_literal(&config.publication)
                )).await?;
        let source = self.source_schema.clone().unwrap_or_else(source_schema);
        let mut tables = Vec::new();
        for table in listed {
            let (Some(schema), Some(name)) = (table[0].clone(), table[1].clone()) else {
                continue;
            };
            if !config.filters.captures_table(&schema, &name) {
                continue;
            }
            let estimated_rows = table[2]
                .as_deref()
                .and_then(|v| v.parse().ok())
                .unwrap_or(-1);
            let relation = format!(
                "{}::regclass",
                quote_literal(&format!("{}.{}", quote_ident(&schema), quote_ident(&name)))
            );
            let columns = describe_columns(client, &config, &relation).await?;
            let mut table_columns = Vec::with_capacity(columns.len());
            let mut keys: Vec<(i64, usize)> = Vec::new();
            for (position, c) in columns.into_iter().enumerate() {
                if let Some(order) = c.key_order {
                    keys.push((order, position));
                }
                table_columns.push(TableColumn {
                    emitted: config.filters.emits_column(&schema, &name, &c.name),
                    column_type: self
                        .types
                        .resolve(client, &config, c.type_oid, c.modifier)
                        .await?,
                    key: c.key_order.is_some(),
                    optional: !c.not_null,
                    default_expression: c.default_expression,
                    type_name: c.type_name,
                    name: c.name,
                });
            }
            keys.sort();
            let table_schema = TableSchema::new(&config, &schema, &name, table_columns, &source);
            tables.push(SnapshotTable {
                schema,
                name,
                table: Arc::new(table_schema),
                key_positions: keys.into_iter().map(|(_, position)| position).collect(),
                estimated_rows,
            });
        }
        self.snapshot = Some(SnapshotReader::start(SnapshotJob {
            config,
            tables,
            exported,
            lsn,
            resume,
            source,
            partition: Arc::clone(&self.partition),
            progress: Arc::clone(&self.snapshot_progress),
        }));
        Ok(())
    }

    /// Starts the stream once the snapshot is read.
    async fn begin_streaming(&mut self) -> Result<()> {
        let config = self.config()?.clone();
        match self.after_snapshot.take() {
            Some(AfterSnapshot::Start(mut wire)) => {
                wire.start(&config, None).await?;
                self.stream = Some(wire);
            }
            Some(AfterSnapshot::Connect(start)) => match open_stream(&config, start).await {
                Ok(wire) => {
                    tracing::info!(slot = %config.slot, from = %start.map(Lsn).unwrap_or_default(), "streaming from the slot");
                    self.stream = Some(wire);
                }
                // Another backend streams from the slot: wait for it with the reconnection
                // backoff (the task runs meanwhile; its reconnect_attempt gauge counts).
                Err(e) if slot_in_use(&e) => {
                    tracing::warn!(slot = %config.slot, error = %e, "the replication slot is held by another backend; retrying with backoff");
                    self.schedule_reconnect(e, Resumption::Stream);
                }
                Err(e) => return Err(e),
            },
            None => {}
        }
        Ok(())
    }

    fn record(
        &self,
        table: &TableSchema,
        key: Value,
        value: Value,
        offset: SourceOffset,
        micros: i64,
    ) -> SourceRecord {
        table.source_record(key, value, &self.partition, offset, micros)
    }

    /// The schema of a relation the stream described.
    async fn table_schema(&mut self, relation: Relation) -> Result<TableSchema> {
        let config = self.config()?.clone();
        let source = self.source_schema.clone().unwrap_or_else(source_schema);
        let client = self
            .client
            .clone()
            .ok_or_else(|| Error::fatal("Postgres task streaming without a query connection"))?;
        // A table the filters leave out (under a FOR ALL TABLES publication) is remembered
        // only so its changes can be recognised and dropped; its types need no look-up.
        let captured = config
            .filters
            .captures_table(&relation.namespace, &relation.name);
        // The catalog adds what the Relation message lacks: NOT NULL, defaults, type names and
        // the primary key. Under REPLICA IDENTITY FULL pgoutput marks every column as
        // identity; the event key is still the primary key (none: a null key), as in Debezium
        // and in the snapshot.
        let catalog: HashMap<String, CatalogColumn> = if captured {
            describe_columns(&client, &config, &relation.oid.to_string())
                .await?
                .into_iter()
                .map(|c| (c.name.clone(), c))
                .collect()
        } else {
            HashMap::new()
        };
        let full = relation.replica_identity == ReplicaIdentity::Full;
        let mut columns = Vec::with_capacity(relation.columns.len());
        for c in &relation.columns {
            let column_type = if captured {
                self.types
                    .resolve(&client, &config, c.type_oid, c.type_modifier)
                    .await?
            } else {
                ColumnType::scalar(c.type_oid, c.type_modifier)
            };
            let known = catalog.get(&c.name);
            columns.push(TableColumn {
                emitted: config
                    .filters
                    .emits_column(&relation.namespace, &relation.name, &c.name),
                name: c.name.clone(),
                column_type,
                key: if full {
                    known.is_some_and(|k| k.key_order.is_some())
                } else {
                    c.key
                },
                optional: !known.is_some_and(|k| k.not_null),
                default_expression: known.and_then(|k| k.default_expression.clone()),
                type_name: known.map(|k| k.type_name.clone()).unwrap_or_default(),
            });
        }
        let mut table = TableSchema::new(
            &config,
            &relation.namespace,
            &relation.name,
            columns,
            &source,
        );
        table.captured = captured;
        Ok(table)
    }

    fn table(&self, oid: u32) -> Result<&TableSchema> {
        let streamed = self.replay.as_ref().and_then(|r| r.tables.get(&oid));
        streamed.or_else(|| self.tables.get(&oid)).ok_or_else(|| {
            Error::data(format!(
                "pgoutput: a change for relation {oid} arrived before its Relation message"
            ))
        })
    }

    fn on_change(&mut self, message: Message, lsn: u64) -> Result<()> {
        let Some(transaction) = self.transaction.as_ref() else {
            return Err(Error::data(
                "pgoutput: a change arrived outside a transaction",
            ));
        };
        let (xid, micros) = (transaction.xid, transaction.commit_micros);
        if transaction
            .skip_through
            .is_some_and(|through| lsn <= through)
        {
            return Ok(());
        }
        let Some(config) = self.config.as_ref() else {
            return Err(Error::fatal("Postgres task used before start"));
        };
        let skipped = config.events.skipped;
        let tombstones = config.tombstones;
        let mut out = Vec::new();
        // One change event (and a delete's tombstone); `None` when `skipped.operations`
        // leaves the operation out (a skipped delete loses its tombstone too).
        let event = |table: &TableSchema, op: Operation, before: Value, after: Value| {
            if skipped.skips(op) {
                return None;
            }
            let key = table.key_of(if op == Operation::Delete {
                &before
            } else {
                &after
            });
            let value = table.envelope(
                before,
                after,
                self.stream_source(table, xid, micros, lsn),
                op.code(),
            );
            let mut records =
                vec![self.record(table, key.clone(), value, self.change_offset(lsn), micros)];
            if op == Operation::Delete && tombstones {
                records.push(self.record(table, key, Value::Null, self.change_offset(lsn), micros));
            }
            Some(records)
        };
        let on_failure = config.events.on_failure;
        let converted = (|| -> Result<()> {
            match message {
                Message::Insert { relation, new, .. } => {
                    let table = self.table(relation)?;
                    if table.captured {
                        out.extend(
                            event(table, Operation::Create, Value::Null, table.row(&new)?)
                                .into_iter()
                                .flatten(),
                        );
                    }
                }
                Message::Update {
                    relation, old, new, ..
                } => {
                    let table = self.table(relation)?;
                    if table.captured {
                        let before = match old {
                            Some(OldTuple::Key(t) | OldTuple::Full(t)) => table.row(&t)?,
                            None => Value::Null,
                        };
                        let after = table.row(&new)?;
                        let old_key = table.key_of(&before);
                        let new_key = table.key_of(&after);
                        if !old_key.is_null() && old_key != new_key {
                            // The key changed: as Debezium does, a delete (and tombstone) under the
                            // old key naming the new one in `__debezium.newkey`, then a create
                            // under the new key naming the old one in `__debezium.oldkey`.
                            let mut delete = event(table, Operation::Delete, before, Value::Null)
                                .unwrap_or_default();
                            let mut create = event(table, Operation::Create, Value::Null, after)
                                .unwrap_or_default();
                            let key_schema = table.key.as_ref();
                            for record in &mut delete {
                                headers::mark_new_key(&mut record.record, &new_key, key_schema);
                            }
                            for record in &mut create {
                                headers::mark_old_key(&mut record.record, &old_key, key_schema);
                            }
                            out.extend(delete);
                            out.extend(create);
                        } else {
                            out.extend(
                                event(table, Operation::Update, before, after)
                                    .into_iter()
                                    .flatten(),
                            );
                        }
                    }
                }
                Message::Delete { relation, old, .. } => {
                    let table = self.table(relation)?;
                    if table.captured {
                        let (OldTuple::Key(t) | OldTuple::Full(t)) = old;
                        out.extend(
                            event(table, Operation::Delete, table.row(&t)?, Value::Null)
                                .into_iter()
                                .flatten(),
                        );
                    }
                }
                Message::Truncate { relations, .. } if !skipped.skips(Operation::Truncate) => {
                    for oid in relations {
                        let table = self.table(oid)?;
                        if !table.captured {
                            continue;
                        }
                        let value = table.envelope(
                            Value::Null,
                            Value::Null,
                            self.stream_source(table, xid, micros, lsn),
                            Operation::Truncate.code(),
                        );
                        out.push(self.record(
                            table,
                            Value::Null,
                            value,
                            self.change_offset(lsn),
                            micros,
                        ));
                    }
                }
                _ => {}
            }
            Ok(())
        })();
        match converted {
            Ok(()) => {}
            // `event.processing.failure.handling.mode`: a value that cannot be converted
            // fails the task (the default), or the event is left out, logged at warn or debug.
            Err(e) if e.kind() == ErrorKind::Data && on_failure != FailureMode::Fail => {
                if on_failure == FailureMode::Warn {
                    tracing::warn!(lsn = %Lsn(lsn), error = %e, "event.processing.failure.handling.mode=warn: skipping an event that cannot be converted");
                } else {
                    tracing::debug!(lsn = %Lsn(lsn), error = %e, "skipping an event that cannot be converted");
                }
                out.clear();
            }
            Err(e) => return Err(e),
        }
        self.push(out);
        if let Some(transaction) = self.transaction.as_mut() {
            transaction.last_change_lsn = lsn;
        }
        Ok(())
    }

    /// The `source` block of a streamed change to `table`.
    fn stream_source(&self, table: &TableSchema, xid: u32, micros: i64, lsn: u64) -> Value {
        let Some(config) = self.config.as_ref() else {
            return Value::Null;
        };
        let schema = self.source_schema.clone().unwrap_or_else(source_schema);
        let info = SourceInfo {
            prefix: &config.topic_prefix,
            db: &config.dbname,
            schema: &table.schema,
            table: &table.table,
            commit_micros: micros,
            snapshot: "false",
            tx_id: Some(i64::from(xid)),
            lsn: Some(lsn),
            last_commit_lsn: self.last_commit_lsn,
        };
        source_value(&schema, &info)
    }

    fn change_offset(&self, lsn: u64) -> SourceOffset {
        let mut offset = SourceOffset::new();
        offset.insert("lsn_proc".into(), json!(lsn));
        offset
    }

    fn push(&mut self, records: Vec<SourceRecord>) {
        if let Some(transaction) = self.transaction.as_mut() {
            transaction.records.extend(records);
        }
    }

    fn begin_transaction(&mut self, xid: u32, commit_lsn: u64, commit_micros: i64) {
        let skip_through = self
            .skip
            .filter(|(commit, _)| *commit == commit_lsn)
            .map(|(_, through)| through);
        self.transaction = Some(Transaction {
            xid,
            commit_lsn,
            commit_micros,
            records: Vec::new(),
            last_change_lsn: 0,
            sent_through: None,
            skip_through,
            counts: None,
        });
    }

    /// Hands out what a large transaction decoded so far (once it holds `max.batch.size`
    /// records), so a transaction of any size passes in bounded memory. The last record gets
    /// an offset that resumes before the transaction (`lsn`: the end of the one before) and
    /// says how far into it the records went (`lsn_commit`, `lsn_proc`), so a restart skips
    /// what was delivered, as Debezium's offsets do.
    fn release_part(&mut self, batch: &mut Vec<SourceRecord>) -> bool {
        let max = self.config.as_ref().map_or(2048, |c| c.max_batch);
        let resume = self.last_end_lsn.or(self.start_lsn).unwrap_or(0);
        let Some(mut transaction) = self.transaction.take_if(|t| t.records.len() >= max) else {
            return false;
        };
        let mut records = std::mem::take(&mut transaction.records);
        if let Some(last) = records.last_mut() {
            let offset = &mut last.source_offset;
            offset.insert("lsn".into(), json!(resume));
            offset.insert("lsn_commit".into(), json!(transaction.commit_lsn));
            offset.insert("txId".into(), json!(transaction.xid));
            offset.insert("ts_usec".into(), json!(transaction.commit_micros));
        }
        transaction.sent_through = Some(transaction.last_change_lsn);
        batch.extend(self.with_metadata(&mut transaction, records, None));
        self.transaction = Some(transaction);
        true
    }

    /// Completes the open transaction: its last record gets the offset that covers it whole.
    fn on_commit(&mut self, commit_lsn: u64, end_lsn: u64) -> Vec<SourceRecord> {
        let Some(mut transaction) = self.transaction.take() else {
            return Vec::new();
        };
        let mut records = std::mem::take(&mut transaction.records);
        tracing::debug!(
            xid = transaction.xid,
            commit_lsn = %Lsn(commit_lsn),
            records = records.len(),
            "transaction committed"
        );
        if let Some(debezium) = &self.debezium {
            let behind_ms = (unix_now_micros() - transaction.commit_micros).max(0) / 1000;
            debezium.add("streaming", "TotalNumberOfEventsSeen", records.len() as f64);
            debezium.add("streaming", "NumberOfCommittedTransactions", 1.0);
            debezium.set("streaming", "LastTransactionId", f64::from(transaction.xid));
            debezium.set("streaming", "MilliSecondsBehindSource", behind_ms as f64);
        }
        // Poll batches end on transaction boundaries (or carry a large transaction's resume
        // offset), so only a transaction's last record's offset is ever committed: it alone
        // gets the full offset (the others keep their `lsn_proc`), which spares four map
        // inserts per change.
        let mut offset = self.change_offset(transaction.last_change_lsn);
        offset.insert("lsn".into(), json!(end_lsn));
        offset.insert("lsn_commit".into(), json!(commit_lsn));
        offset.insert("txId".into(), json!(transaction.xid));
        offset.insert("ts_usec".into(), json!(transaction.commit_micros));
        if let Some(last) = records.last_mut() {
            last.source_offset = offset.clone();
        }
        self.last_commit_lsn = Some(commit_lsn);
        self.last_end_lsn = Some(end_lsn);
        if self.skip.is_some_and(|(commit, _)| commit_lsn >= commit) {
            self.skip = None;
        }
        self.with_metadata(&mut transaction, records, Some(offset))
    }

    /// With `provide.transaction.metadata`: `BEGIN` before the transaction's first records, the
    /// `transaction` block in each, and (`end` holding the final offset) `END` after the last.
    fn with_metadata(
        &self,
        transaction: &mut Transaction,
        records: Vec<SourceRecord>,
        end: Option<SourceOffset>,
    ) -> Vec<SourceRecord> {
        let Some(config) = self.config.as_ref().filter(|c| c.transaction_metadata) else {
            return records;
        };
        let info = TransactionInfo {
            xid: transaction.xid,
            commit_lsn: transaction.commit_lsn,
            commit_micros: transaction.commit_micros,
            topic_prefix: &config.topic_prefix,
        };
        let mut out = Vec::with_capacity(records.len() + 2);
        let counts = match transaction.counts.as_mut() {
            Some(counts) => counts,
            None => {
                // A transaction without captured changes gets no BEGIN/END, as in Debezium.
                let Some(first) = records.first() else {
                    return records;
                };
                out.push(info.begin(&self.transaction_metadata, first));
                transaction.counts.insert(TransactionCounts::default())
            }
        };
        let mut records = records;
        info.stamp(&self.transaction_metadata, counts, &mut records);
        out.extend(records);
        if let Some(offset) = end {
            let counts = transaction.counts.take().unwrap_or_default();
            out.push(info.end(&self.transaction_metadata, counts, &self.partition, offset));
        }
        out
    }

    fn on_message(
        &mut self,
        transactional: bool,
        lsn: u64,
        prefix: &str,
        content: &[u8],
    ) -> Option<SourceRecord> {
        let config = self.config.as_ref()?;
        let message_schema = Schema::struct_named("io.debezium.connector.postgresql.Message")
            .field("prefix", Schema::string().into_ref())
            .field(
                "content",
                Schema::of(SchemaType::Bytes).optional().into_ref(),
            )
            .into_ref();
        let source = self.source_schema.clone().unwrap_or_else(source_schema);
        let value_schema = Schema::struct_named("io.debezium.connector.postgresql.MessageValue")
            .field("op", Schema::string().into_ref())
            .field("ts_ms", Schema::of(SchemaType::Int64).optional().into_ref())
            .field("source", Arc::clone(&source))
            .field("message", Arc::clone(&message_schema))
            .into_ref();
        let key_schema = Schema::struct_named("io.debezium.connector.postgresql.MessageKey")
            .field("prefix", Schema::string().into_ref())
            .into_ref();
        let micros = self
            .transaction
            .as_ref()
            .map(|t| t.commit_micros)
            .unwrap_or_else(unix_now_micros);
        let info = SourceInfo {
            prefix: &config.topic_prefix,
            db: &config.dbname,
            schema: "",
            table: "",
            commit_micros: micros,
            snapshot: "false",
            tx_id: self.transaction.as_ref().map(|t| i64::from(t.xid)),
            lsn: Some(lsn),
            last_commit_lsn: self.last_commit_lsn,
        };
        let mut message = Struct::new(message_schema);
        let _ = message.put("prefix", Value::from(prefix));
        let _ = message.put("content", Value::Bytes(content.to_vec()));
        let mut value = Struct::new(Arc::clone(&value_schema));
        let _ = value.put("op", Value::from("m"));
        let _ = value.put("ts_ms", Value::Int64(micros / 1000));
        let _ = value.put("source", source_value(&source, &info));
        let _ = value.put("message", Value::Struct(message));
        let mut key = Struct::new(Arc::clone(&key_schema));
        let _ = key.put("prefix", Value::from(prefix));
        let mut record = Record::new(
            format!("{}.message", config.topic_prefix),
            Value::Struct(value),
            Some(value_schema),
        );
        record.key = Value::Struct(key);
        record.key_schema = Some(key_schema);
        record.timestamp_ms = Some(micros / 1000);
        let mut offset = self.change_offset(lsn);
        if !transactional {
            offset.insert("lsn".into(), json!(lsn));
        }
        Some(SourceRecord {
            record,
            source_partition: Arc::clone(&self.partition),
            source_offset: offset,
        })
    }

    /// The stream (or the query connection) failed: drop both and the half-read transaction,
    /// and schedule reconnecting. Records already handed out are in the pipeline; everything
    /// after them is read again from the slot.
    fn lose_connection(&mut self, cause: Error) {
        tracing::warn!(error = %cause, "lost the connection to Postgres; reconnecting with backoff");
        self.stream = None;
        self.client = None;
        if let Some(transaction) = self.transaction.take()
            && let Some(through) = transaction.sent_through
        {
            // The server sends the transaction again from its start: skip what went out.
            self.skip = Some((transaction.commit_lsn, through));
        }
        self.streams.clear();
        self.stream_block = None;
        self.replay = None;
        self.decoder = Decoder::default();
        self.schedule_reconnect(cause, Resumption::Stream);
    }

    /// A snapshot reader lost its connection: the view it read is gone with it (and the slot's
    /// exported snapshot with the idle replication session), so the snapshot is read again in a
    /// new view after the last row handed out, as after a crash but without losing the rows
    /// already in the pipeline.
    fn lose_snapshot_connection(&mut self, cause: Error) {
        tracing::warn!(error = %cause, "lost the connection to Postgres during the snapshot; reconnecting with backoff");
        let resume = self
            .snapshot
            .take()
            .and_then(|reader| reader.resume_point());
        self.after_snapshot = None;
        self.client = None;
        self.schedule_reconnect(cause, Resumption::Snapshot(resume));
    }

    fn schedule_reconnect(&mut self, cause: Error, what: Resumption) {
        self.reconnect = Some(Reconnect {
            attempt: 0,
            next_at: tokio::time::Instant::now(),
            cause,
            what,
        });
    }

    /// One reconnection attempt when it is due (waiting at most one poll interval for it).
    async fn try_reconnect(&mut self) -> Result<()> {
        let config = self.config()?.clone();
        let Some(state) = self.reconnect.as_mut() else {
            return Ok(());
        };
        let now = tokio::time::Instant::now();
        if state.next_at > now {
            tokio::time::sleep_until(state.next_at.min(now + POLL_WAIT)).await;
            return Ok(());
        }
        let attempt = state.attempt;
        let connected = match &state.what {
            Resumption::Stream => self.restart_stream(&config).await,
            Resumption::Snapshot(resume) => {
                let resume = resume.clone();
                self.restart_snapshot(&config, resume).await
            }
        };
        match connected {
            Ok(()) => {
                tracing::info!(attempt = attempt + 1, "reconnected to Postgres");
                self.reconnect = None;
                Ok(())
            }
            Err(e) if e.kind() != ErrorKind::Retriable => Err(e),
            Err(e) => {
                let state = self.reconnect.as_mut().expect("reconnecting");
                state.attempt += 1;
                if config.max_retries >= 0 && i64::from(state.attempt) > config.max_retries {
                    return Err(Error::retriable(format!(
                        "gave up reconnecting to Postgres after {} attempts (errors.max.retries={}); first failure: {}; last: {}",
                        state.attempt,
                        config.max_retries,
                        state.cause.message(),
                        e.message()
                    )));
                }
                let delay = RECONNECT_BACKOFF_FIRST
                    .saturating_mul(1 << state.attempt.min(10))
                    .min(RECONNECT_BACKOFF_MAX);
                tracing::warn!(attempt = state.attempt, retry_in_ms = delay.as_millis() as u64, error = %e, "reconnecting to Postgres failed");
                state.next_at = tokio::time::Instant::now() + delay;
                Ok(())
            }
        }
    }

    /// Connects again and streams from after the last transaction handed out.
    async fn restart_stream(&mut self, config: &PostgresConfig) -> Result<()> {
        let resume = self.resume_lsn.or(self.start_lsn);
        let client = connect(config).await?;
        let wire = open_stream(config, resume).await?;
        tracing::info!(from = %resume.map(Lsn).unwrap_or_default(), "streaming again");
        self.client = Some(Arc::new(client));
        self.stream = Some(wire);
        Ok(())
    }

    /// The WAL position a snapshot read in a new view now is stamped with: the server's
    /// current one when no stream follows (`initial_only`, no slot), else the slot's, where
    /// the stream after the snapshot starts.
    async fn snapshot_position(client: &Client, config: &PostgresConfig) -> Result<Lsn> {
        let position = if config.snapshot == SnapshotMode::InitialOnly {
            "select pg_current_wal_lsn()::text".to_owned()
        } else {
            slot_position_sql(config)
        };
        let rows = query(
            client,
            config,
            "reading the snapshot's WAL position",
            &position,
        )
        .await?;
        let Some(lsn) = rows.first().and_then(|r| r[0].as_deref()) else {
            return Err(Error::config(format!(
                "replication slot {} disappeared while the snapshot was read; restart the connector to take a new one",
                config.slot
            )));
        };
        lsn.parse().map_err(Error::data)
    }

    /// Connects again and reads the rest of the snapshot in a new view; the stream follows
    /// from the slot, which has not moved since the snapshot began.
    async fn restart_snapshot(
        &mut self,
        config: &PostgresConfig,
        resume: Option<ResumePoint>,
    ) -> Result<()> {
        let client = connect(config).await?;
        let lsn = Self::snapshot_position(&client, config).await?;
        tracing::info!(resume = ?resume, "reading the snapshot again in a new view");
        self.start_snapshot(&client, None, lsn.0, resume).await?;
        if config.snapshot != SnapshotMode::InitialOnly {
            self.after_snapshot = Some(AfterSnapshot::Connect(self.start_lsn));
        }
        self.client = Some(Arc::new(client));
        Ok(())
    }

    /// Every few seconds while streaming: how much WAL the slot holds back (the server's
    /// current position minus the slot's confirmed one), as the `slot_lag_bytes` gauge, and
    /// the slot's `wal_status` (`slot_wal_status{status}`).
    /// A failed measurement is only logged: the stream notices a lost connection itself.
    async fn measure_slot_lag(&mut self) {
        let due = self
            .lag_measured
            .is_none_or(|at| at.elapsed() >= SLOT_LAG_INTERVAL);
        let (Some(client), Some(config), true) = (&self.client, &self.config, due) else {
            return;
        };
        if self.stream.is_none() {
            return;
        }
        self.lag_measured = Some(tokio::time::Instant::now());
        let sql = format!(
            "select (pg_current_wal_lsn() - confirmed_flush_lsn)::int8, wal_status from pg_replication_slots where slot_name = {}",
            quote_literal(&config.slot)
        );
        match query(client, config, "measuring the slot's lag", &sql).await {
            Ok(rows) => {
                if let Some(lag) = rows
                    .first()
                    .and_then(|r| r[0].as_deref())
                    .and_then(|v| v.parse::<f64>().ok())
                {
                    self.metrics.set("slot_lag_bytes", lag);
                }
                // pg_replication_slots.wal_status: 1 for the current one, 0 for the others,
                // so a change shows as one series falling and another rising.
                if let Some(current) = rows.first().and_then(|r| r[1].as_deref()) {
                    for status in ["reserved", "extended", "unreserved", "lost"] {
                        let value = f64::from(u8::from(status == current));
                        self.metrics
                            .set_labeled("slot_wal_status", "status", status, value);
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "could not measure the slot's lag"),
        }
    }

    /// Appends a heartbeat when one is due and the stream stands between transactions, after
    /// running `heartbeat.action.query`. Its offset is the furthest position with nothing owed
    /// before it, so committing it (after every record before it, as offsets are) moves the
    /// stored offset and the slot past WAL that made no change events. None is sent while a
    /// restart is still skipping the part of a large transaction that went out (the offset
    /// would lose that), nor during a snapshot.
    async fn add_heartbeat(&mut self, batch: &mut Vec<SourceRecord>) -> Result<()> {
        let between_transactions = self.stream.is_some()
            && self.snapshot.is_none()
            && self.transaction.is_none()
            && self.replay.is_none()
            && self.skip.is_none();
        let Some(heartbeats) = self.heartbeats.as_mut() else {
            return Ok(());
        };
        if !between_transactions || !heartbeats.due(tokio::time::Instant::now()) {
            return Ok(());
        }
        let Some(position) = [self.idle_position, self.last_end_lsn, self.resume_lsn]
            .into_iter()
            .flatten()
            .max()
        else {
            return Ok(());
        };
        if let (Some(sql), Some(client), Some(config)) =
            (heartbeats.action_query(), &self.client, &self.config)
        {
            match query(client, config, "running heartbeat.action.query", sql).await {
                Ok(_) => {}
                // A statement the server refuses is the config's fault: fail with its message.
                Err(e) if e.kind() != ErrorKind::Retriable => return Err(e),
                // A lost connection shows on the stream too; this heartbeat goes without it.
                Err(e) => tracing::warn!(error = %e, "heartbeat.action.query did not run"),
            }
        }
        let now_ms = unix_now_micros() / 1000;
        let mut offset = SourceOffset::new();
        offset.insert("lsn".into(), json!(position));
        offset.insert("ts_usec".into(), json!(now_ms * 1000));
        batch.push(heartbeats.record(&self.partition, offset, now_ms));
        Ok(())
    }

    /// Tells the server the slot may move to `lsn` (never backwards).
    fn confirm(&mut self, lsn: u64) {
        if lsn <= self.confirmed_lsn {
            return;
        }
        if let Some(stream) = &self.stream {
            stream.confirm(lsn);
            self.confirmed_lsn = lsn;
        }
    }

    /// A keepalive carries the server's decoding position. When no transaction is open, no
    /// snapshot row is queued and every record handed out is committed downstream, nothing
    /// before that position is still owed to anyone (changes to tables outside the
    /// publication decode to nothing), so the slot may advance to it. This keeps WAL from
    /// piling up behind a slot whose tables are idle while the rest of the database is not.
    ///
    /// `holding` says the poll in progress holds decoded records it has not handed out: they
    /// are owed too (their transactions end before `wal_end`), so nothing moves then.
    fn on_keepalive(&mut self, wal_end: u64, holding: bool) {
        let idle = !holding && self.transaction.is_none() && self.snapshot.is_none();
        if idle && self.replay.is_none() {
            self.idle_position = self.idle_position.max(Some(wal_end));
        }
        let caught_up = self.last_emitted.is_none() || self.everything_committed;
        if idle && caught_up && wal_end > self.confirmed_lsn {
            tracing::debug!(lsn = %Lsn(wal_end), "nothing pending: slot advanced on keepalive");
            self.confirm(wal_end);
        }
    }

    /// The next batch: queued snapshot rows first, then whole committed transactions from the
    /// stream (up to `max.batch.size`, or what arrived within [`POLL_WAIT`], or sooner once no
    /// more arrives within [`BATCH_LINGER`]).
    async fn next_batch(&mut self) -> Result<Vec<SourceRecord>> {
        if let Some(reader) = self.snapshot.as_mut() {
            let max = self.config.as_ref().map_or(2048, |c| c.max_batch);
            match reader.next_batch(max, POLL_WAIT).await? {
                Some(batch) => return Ok(batch),
                None => {
                    self.snapshot = None;
                    match self.begin_streaming().await {
                        Err(e) if e.kind() == ErrorKind::Retriable => {
                            self.lose_connection(e);
                            return Ok(Vec::new());
                        }
                        started => started?,
                    }
                }
            }
        }
        let mut batch = Vec::new();
        if self.replay_some(&mut batch).await? {
            return Ok(batch);
        }
        let deadline = tokio::time::Instant::now() + POLL_WAIT;
        loop {
            let Some(stream) = self.stream.as_mut() else {
                // snapshot.mode=initial_only: nothing more will come.
                tokio::time::sleep_until(deadline).await;
                return Ok(batch);
            };
            let wait_until = if batch.is_empty() {
                deadline
            } else {
                deadline.min(tokio::time::Instant::now() + BATCH_LINGER)
            };
            let event = match tokio::time::timeout_at(wait_until, stream.recv()).await {
                Err(_) => return Ok(batch),
                Ok(Err(e)) => return Err(e),
                Ok(Ok(None)) => return Err(Error::retriable("the replication stream ended")),
                Ok(Ok(Some(event))) => event,
            };
            match event {
                WireEvent::KeepAlive { wal_end } => self.on_keepalive(wal_end, !batch.is_empty()),
                WireEvent::XLogData { start, data } => {
                    if self.on_wire_message(start, &data, &mut batch).await? {
                        return Ok(batch);
                    }
                }
            }
        }
    }

    /// Handles one pgoutput message; returns whether the batch is ready to go.
    async fn on_wire_message(
        &mut self,
        lsn: u64,
        data: &[u8],
        batch: &mut Vec<SourceRecord>,
    ) -> Result<bool> {
        if let Some(top) = self.stream_block
            && data.first() != Some(&b'E')
        {
            // Inside a stream block every message is a data message of the streamed
            // transaction, prefixed by its (sub)transaction id: kept until the transaction ends.
            let xid = data
                .get(1..5)
                .map_or(top, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            let spool = match self.streams.entry(top) {
                std::collections::hash_map::Entry::Occupied(spool) => spool.into_mut(),
                std::collections::hash_map::Entry::Vacant(slot) => slot.insert(Spool::new()?),
            };
            spool.append(xid, lsn, data)?;
            return Ok(false);
        }
        match self.decoder.decode(data)? {
            Message::Begin {
                final_lsn,
                commit_time,
                xid,
            } => self.begin_transaction(xid, final_lsn.0, unix_micros(commit_time)),
            Message::Commit {
                commit_lsn,
                end_lsn,
                ..
            } => {
                batch.extend(self.on_commit(commit_lsn.0, end_lsn.0));
                return Ok(batch.len() >= self.config()?.max_batch);
            }
            Message::Relation { relation, .. } => {
                let oid = relation.oid;
                let table = self.table_schema(relation).await?;
                self.tables.insert(oid, table);
            }
            change @ (Message::Insert { .. }
            | Message::Update { .. }
            | Message::Delete { .. }
            | Message::Truncate { .. }) => {
                self.on_change(change, lsn)?;
                return Ok(self.release_part(batch));
            }
            Message::LogicalMessage {
                transactional,
                lsn,
                prefix,
                content,
                ..
            } => {
                if let Some(record) = self.on_message(transactional, lsn.0, &prefix, &content) {
                    if transactional && self.transaction.is_some() {
                        self.push(vec![record]);
                    } else {
                        batch.push(record);
                    }
                }
            }
            Message::StreamStart { xid, .. } => self.stream_block = Some(xid),
            Message::StreamStop => self.stream_block = None,
            Message::StreamAbort { xid, subxid } => {
                if xid == subxid {
                    if let Some(spool) = self.streams.remove(&xid) {
                        tracing::info!(
                            xid,
                            messages = spool.messages(),
                            "a streamed transaction rolled back; its kept changes are dropped"
                        );
                    }
                } else if let Some(spool) = self.streams.get_mut(&xid) {
                    spool.abort_subtransaction(subxid);
                }
            }
            Message::StreamCommit {
                xid,
                commit_lsn,
                end_lsn,
                commit_time,
            } => {
                let spool = match self.streams.remove(&xid) {
                    Some(spool) => spool,
                    None => Spool::new()?,
                };
                tracing::info!(
                    xid,
                    messages = spool.messages(),
                    "a streamed transaction committed; reading its kept changes back"
                );
                self.begin_transaction(xid, commit_lsn.0, unix_micros(commit_time));
                self.replay = Some(Replay {
                    spool: spool.replay()?,
                    decoder: Decoder::inside_stream(),
                    tables: HashMap::new(),
                    commit_lsn: commit_lsn.0,
                    end_lsn: end_lsn.0,
                });
                return self.replay_some(batch).await;
            }
            _ => {}
        }
        Ok(false)
    }

    /// Decodes a committed streamed transaction from its spool, until the batch is ready or
    /// the transaction is done; returns whether the batch is ready to go.
    async fn replay_some(&mut self, batch: &mut Vec<SourceRecord>) -> Result<bool> {
        loop {
            let Some(replay) = self.replay.as_mut() else {
                return Ok(false);
            };
            let Some(kept) = replay.spool.next_message()? else {
                let (commit_lsn, end_lsn) = (replay.commit_lsn, replay.end_lsn);
                // At a stream's commit the server counts the relations it sent inside the
                // stream as sent for the normal stream too: they become the current ones.
                let streamed_tables = std::mem::take(&mut replay.tables);
                self.tables.extend(streamed_tables);
                self.replay = None;
                batch.extend(self.on_commit(commit_lsn, end_lsn));
                return Ok(batch.len() >= self.config()?.max_batch);
            };
            match replay.decoder.decode(&kept.message)? {
                Message::Relation { relation, .. } => {
                    let oid = relation.oid;
                    let table = self.table_schema(relation).await?;
                    if let Some(replay) = self.replay.as_mut() {
                        replay.tables.insert(oid, table);
                    }
                }
                _ if kept.aborted => {}
                change @ (Message::Insert { .. }
                | Message::Update { .. }
                | Message::Delete { .. }
                | Message::Truncate { .. }) => {
                    self.on_change(change, kept.lsn)?;
                    if self.release_part(batch) {
                        return Ok(true);
                    }
                }
                Message::LogicalMessage {
                    lsn,
                    prefix,
                    content,
                    ..
                } => {
                    if let Some(record) = self.on_message(true, lsn.0, &prefix, &content) {
                        self.push(vec![record]);
                    }
                }
                _ => {}
            }
        }
    }
}

#[async_trait]
impl SourceTask for PostgresSourceTask {
    async fn start(&mut self, context: SourceTaskContext) -> Result<()> {
        let mut config = PostgresConfig::from_props(&context.config)?;
        config.task_id = context.task_id;
        let mut partition = SourcePartition::new();
        partition.insert("server".into(), json!(config.topic_prefix));
        let committed = context.offsets.offset(&partition).await?;
        let committed_lsn = committed
            .as_ref()
            .and_then(|o| o.get("lsn"))
            .and_then(|l| l.as_u64());
        let snapshot_done = committed.as_ref().is_some_and(|o| {
            o.get("snapshot").and_then(|s| s.as_bool()) != Some(true)
                || o.get("last_snapshot_record").and_then(|s| s.as_bool()) == Some(true)
        });
        // An offset inside a large transaction (its commit lies beyond the resume point): the
        // server sends that transaction again, and what went out is skipped.
        self.skip = committed.as_ref().and_then(|o| {
            let field = |name: &str| o.get(name).and_then(|v| v.as_u64());
            let (resume, commit, through) =
                (field("lsn")?, field("lsn_commit")?, field("lsn_proc")?);
            (commit > resume).then_some((commit, through))
        });
        if let Some((commit, through)) = self.skip {
            tracing::info!(commit_lsn = %Lsn(commit), through = %Lsn(through), "resuming inside a large transaction: its changes up to `through` went out already");
        }
        self.partition = Arc::new(partition);
        self.metrics = context.metrics.clone();
        let debezium = context.metrics.debezium("postgres", &config.topic_prefix);
        self.snapshot_progress = Arc::new(SnapshotProgress::new(
            context.metrics.clone(),
            Some(debezium.clone()),
        ));
        self.debezium = Some(debezium);
        self.source_schema = Some(source_schema());
        self.heartbeats = Heartbeats::new(
            config.heartbeat_interval,
            &config.heartbeat_topic_prefix,
            &config.topic_prefix,
            config.heartbeat_action_query.clone(),
        );
        self.config = Some(config.clone());

        let client = Arc::new(connect(&config).await?);
        self.client = Some(Arc::clone(&client));
        Self::check_server(&client, &config).await?;
        Self::ensure_publication(&client, &config).await?;
        if config.snapshot != SnapshotMode::InitialOnly {
            Self::check_replica_identity(&client, &config).await?;
        }
        let slot = query(
            &client,
            &config,
            "looking up the replication slot",
            &slot_position_sql(&config),
        )
        .await?;
        let slot_exists = !slot.is_empty();
        // A snapshot interrupted by a crash goes on after its last committed row.
        let resume = committed.as_ref().and_then(ResumePoint::from_offset);
        if let Some(resume) = &resume {
            tracing::info!(table = %resume.table, after_key = ?resume.after_key, from_page = ?resume.from_page, "resuming an interrupted snapshot");
        }
        let snapshot_now = config.snapshot.snapshot_now(snapshot_done, slot_exists);
        if config.snapshot == SnapshotMode::InitialOnly {
            // No stream will follow, so no slot is needed: a plain repeatable-read view is the
            // snapshot, stamped with the WAL position it reflects.
            if snapshot_now {
                let lsn = Self::snapshot_position(&client, &config).await?;
                self.start_snapshot(&client, None, lsn.0, resume).await?;
            }
            tracing::info!(
                "snapshot.mode=initial_only: the snapshot is all this connector sends; not streaming"
            );
            return Ok(());
        }
        if !slot_exists {
            let may_start_over =
                config.drop_slot_on_stop || config.snapshot == SnapshotMode::WhenNeeded;
            if committed_lsn.is_some() && !may_start_over {
                return Err(Error::config(format!(
                    "replication slot {} is gone, but offsets say streaming had reached LSN {}: changes since then cannot \
                     be read any more. Set snapshot.mode=when_needed to start over with a new snapshot, or reset the \
                     connector's offsets (PUT /connectors/<name>/stop, then DELETE /connectors/<name>/offsets)",
                    config.slot,
                    Lsn(committed_lsn.unwrap_or_default())
                )));
            }
            if committed_lsn.is_some() {
                tracing::warn!(slot = %config.slot, "the slot is gone; snapshot.mode=when_needed: taking a new snapshot on a new slot");
            }
            // Create the slot on a replication session and read the snapshot it exports, so the
            // snapshot and the stream meet exactly at the slot's consistent point.
            let mut wire = ReplicationClient::connect(&config).await?;
            let created = wire
                .simple_query(&format!(
                    "CREATE_REPLICATION_SLOT {} LOGICAL pgoutput EXPORT_SNAPSHOT",
                    quote_ident(&config.slot)
                ))
                .await
                .map_err(|e| {
                    Error::config(format!(
                        "creating replication slot {} failed: {e}",
                        config.slot
                    ))
                })?;
            let text = |i: usize| created.first().and_then(|r| r.get(i)).cloned().flatten();
            let consistent: Lsn = text(1).unwrap_or_default().parse().map_err(Error::data)?;
            tracing::info!(slot = %config.slot, consistent_point = %consistent, "created replication slot");
            if snapshot_now {
                // The session stays idle (gated) until the snapshot is read, keeping its
                // exported snapshot importable by the readers; then it starts streaming.
                self.start_snapshot(&client, text(2), consistent.0, None)
                    .await?;
                self.after_snapshot = Some(AfterSnapshot::Start(wire));
            } else {
                wire.start(&config, None).await?;
                self.stream = Some(wire);
            }
        } else {
            let start = committed_lsn.filter(|_| snapshot_done);
            self.start_lsn = start;
            if snapshot_now {
                // The slot exists, so its exported snapshot is long gone: read a fresh view.
                // Changes between the slot's position and that view may be seen twice (at
                // least once, never missed).
                let lsn = slot[0][0]
                    .as_deref()
                    .and_then(|l| l.parse::<Lsn>().ok())
                    .unwrap_or_default();
                self.start_snapshot(&client, None, lsn.0, resume).await?;
                self.after_snapshot = Some(AfterSnapshot::Connect(start));
            } else {
                self.after_snapshot = Some(AfterSnapshot::Connect(start));
                self.begin_streaming().await?;
            }
        }
        Ok(())
    }

    async fn poll(&mut self) -> Result<Vec<SourceRecord>> {
        if let Some(debezium) = &self.debezium {
            let connected = self.stream.is_some() && self.reconnect.is_none();
            debezium.set("streaming", "Connected", f64::from(u8::from(connected)));
        }
        if self.reconnect.is_some() {
            return self.try_reconnect().await.map(|()| Vec::new());
        }
        self.measure_slot_lag().await;
        let mut batch = match self.next_batch().await {
            Ok(batch) => batch,
            Err(e) if e.kind() == ErrorKind::Retriable && self.snapshot.is_some() => {
                self.lose_snapshot_connection(e);
                return Ok(Vec::new());
            }
            Err(e) if e.kind() == ErrorKind::Retriable && self.stream.is_some() => {
                self.lose_connection(e);
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        self.add_heartbeat(&mut batch).await?;
        if let Some(last) = batch.last() {
            self.last_emitted = Some(last.source_offset.clone());
            self.everything_committed = false;
            if let Some(lsn) = last
                .source_offset
                .get("lsn")
                .and_then(|l| l.as_u64())
                .filter(|_| last.source_offset.get("snapshot").is_none())
            {
                self.resume_lsn = Some(lsn);
            }
        }
        Ok(batch)
    }

    async fn offsets_committed(
        &mut self,
        offsets: &[(SourcePartition, SourceOffset)],
    ) -> Result<()> {
        let durable = offsets
            .iter()
            .filter(|(p, _)| *p == *self.partition)
            .filter(|(_, o)| o.get("snapshot").and_then(|s| s.as_bool()) != Some(true))
            .filter_map(|(_, o)| o.get("lsn").and_then(|l| l.as_u64()))
            .max();
        if offsets
            .iter()
            .any(|(p, o)| *p == *self.partition && Some(o) == self.last_emitted.as_ref())
        {
            self.everything_committed = true;
        }
        if let Some(lsn) = durable {
            self.confirm(lsn);
        }
        Ok(())
    }

    async fn stop(&mut self) -> Result<()> {
        self.client = None;
        if let Some(stream) = self.stream.take() {
            // Reports the last confirmed position before closing, so the slot stands exactly
            // at what is durable downstream (bounded: the server may be gone).
            if let Err(e) = stream.shutdown().await {
                tracing::debug!(error = %e, "closing the replication connection");
            }
        }
        if let Some(config) = self.config.clone().filter(|c| c.drop_slot_on_stop) {
            drop_slot(&config, "dropping the slot (slot.drop.on.stop)").await?;
        }
        Ok(())
    }
}

/// The slot's confirmed position, as text (no row: no such slot in this database).
fn slot_position_sql(config: &PostgresConfig) -> String {
    format!(
        "select confirmed_flush_lsn::text from pg_replication_slots where slot_name = {} and database = current_database()",
        quote_literal(&config.slot)
    )
}

/// A replication session streaming slot `config.slot` from `start`. When another backend holds
/// the slot — typically the walsender of a worker that ran this task and died, which Postgres
/// keeps until `wal_sender_timeout` (60 s by default) — the error says so and is retriable;
/// with `slot.takeover` that backend is terminated and the slot taken at once.
async fn open_stream(config: &PostgresConfig, start: Option<u64>) -> Result<ReplicationClient> {
    let mut wire = ReplicationClient::connect(config).await?;
    match wire.start(config, start).await {
        Ok(()) => Ok(wire),
        Err(e) if slot_in_use(&e) && config.slot_takeover => {
            take_over_slot(config).await?;
            let mut wire = ReplicationClient::connect(config).await?;
            wire.start(config, start).await?;
            Ok(wire)
        }
        Err(e) if slot_in_use(&e) => Err(Error::retriable(format!(
            "{}: usually the walsender of a worker that ran this task and died, which Postgres \
             keeps until wal_sender_timeout (60 s by default) passes; retrying with backoff \
             (slot.takeover=true terminates it instead)",
            e.message()
        ))),
        Err(e) => Err(e),
    }
}

/// Terminates the backend holding the slot and waits (up to 10 s) until the slot is free.
async fn take_over_slot(config: &PostgresConfig) -> Result<()> {
    let client = connect(config).await?;
    let slot = quote_literal(&config.slot);
    let terminated = query(
        &client,
        config,
        "terminating the backend holding the replication slot",
        &format!(
            "select active_pid::text, pg_terminate_backend(active_pid)::text from pg_replication_slots \
             where slot_name = {slot} and active_pid is not null"
        ),
    )
    .await?;
    for row in &terminated {
        tracing::warn!(
            slot = %config.slot,
            pid = row.first().cloned().flatten().unwrap_or_default(),
            terminated = row.get(1).cloned().flatten().unwrap_or_default(),
            "slot.takeover: terminated the backend holding the replication slot"
        );
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let active = query(
            &client,
            config,
            "checking the replication slot is free",
            &format!("select 1 from pg_replication_slots where slot_name = {slot} and active"),
        )
        .await?;
        if active.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(Error::retriable(format!(
                "slot.takeover: replication slot {} is still active 10 s after its backend was \
                 terminated; retrying",
                config.slot
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Drops the connector's replication slot if it is there.
async fn drop_slot(config: &PostgresConfig, what: &str) -> Result<()> {
    // The walsender of a task that just stopped exits a moment after its client: a slot still
    // active is waited for a little; one held longer (a hung client) is reported.
    const ACTIVE_WAIT: Duration = Duration::from_secs(15);
    let client = connect(config).await?;
    let deadline = tokio::time::Instant::now() + ACTIVE_WAIT;
    let dropped = loop {
        let attempt = query(
            &client,
            config,
            what,
            &format!(
                "select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = {}",
                quote_literal(&config.slot)
            ),
        )
        .await;
        match attempt {
            Err(e)
                if e.message().contains("is active for PID")
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => break other?,
        }
    };
    tracing::info!(slot = %config.slot, found = !dropped.is_empty(), "dropped the replication slot");
    Ok(())
}
