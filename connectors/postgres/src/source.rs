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
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pgwire_replication::{Lsn as WireLsn, ReplicationClient, ReplicationConfig, ReplicationEvent};
use serde_json::json;
use sluice_api::config::Props;
use sluice_api::connector::{SourceConnector, SourceTask, SourceTaskContext};
use sluice_api::data::{Schema, SchemaRef, SchemaType, Struct, Value};
use sluice_api::metrics::TaskMetrics;
use sluice_api::record::{Record, SourceOffset, SourcePartition, SourceRecord};
use sluice_api::{Error, ErrorKind, Result};
use tokio_postgres::Client;

use crate::config::{PostgresConfig, SESSION_OPTIONS, SnapshotMode};
use crate::envelope::{SourceInfo, TableColumn, TableSchema, source_schema, source_value};
use crate::lsn::Lsn;
use crate::pgoutput::{Decoder, Message, OldTuple, Relation, unix_micros};
use crate::snapshot::{ResumePoint, SnapshotJob, SnapshotProgress, SnapshotReader, SnapshotTable};
use crate::sql::{
    TypeCatalog, connect, pg_error, query, quote_ident, quote_literal, replication_error,
    unix_now_micros,
};
use crate::transaction::{TransactionInfo, TransactionSchemas};
use crate::types::ColumnType;

/// How long one poll waits for the stream before returning an empty batch.
const POLL_WAIT: Duration = Duration::from_millis(500);

/// The connector: one task (a slot has one reader).
#[derive(Default)]
pub struct PostgresSourceConnector {
    props: Props,
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
}

struct Transaction {
    xid: u32,
    commit_micros: i64,
    records: Vec<SourceRecord>,
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
    last_commit_lsn: Option<u64>,
    /// The offset of the last record handed out, and whether it has since been committed: only
    /// then may the slot be moved past it on the server's keepalives.
    last_emitted: Option<SourceOffset>,
    everything_committed: bool,
    /// The position most recently confirmed to the server.
    confirmed_lsn: u64,
    /// A normal (query) connection, kept for catalog look-ups while streaming.
    client: Option<Arc<Client>>,
    types: TypeCatalog,
    transaction_schemas: TransactionSchemas,
    /// Set while the connection is lost.
    reconnect: Option<Reconnect>,
    metrics: TaskMetrics,
    /// When the slot's lag was last measured.
    lag_measured: Option<tokio::time::Instant>,
    /// Where a new stream resumes: the end of the last transaction handed out, else where
    /// this run started streaming.
    resume_lsn: Option<u64>,
    start_lsn: Option<u64>,
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

    fn replication_config(config: &PostgresConfig, start: Option<u64>) -> ReplicationConfig {
        let mut wire = ReplicationConfig::new(
            &config.host,
            &config.user,
            &config.password,
            &config.dbname,
            &config.slot,
            config.publication.as_str(),
        );
        wire.port = config.port;
        wire.start_lsn = WireLsn(start.unwrap_or(0));
        wire.ack_lsn = start.map(WireLsn);
        wire.options = Some(SESSION_OPTIONS.to_owned());
        wire.status_interval = Duration::from_secs(1);
        wire.idle_wakeup_interval = Duration::from_secs(1);
        // With an observer the client tracks unsent confirmations, which `stop` waits for.
        wire.feedback_observer = Some(pgwire_replication::FeedbackObserver::new(|sent| {
            tracing::debug!(
                withheld_ms = sent.pending_for.as_millis() as u64,
                "slot position confirmed to Postgres"
            );
        }));
        wire
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
            let columns = query(client, &config, "reading table columns", &format!(
                        "select a.attname, a.atttypid::int8, a.atttypmod, array_position(i.indkey::int2[], a.attnum) \
                         from pg_attribute a left join pg_index i on i.indrelid = a.attrelid and i.indisprimary \
                         where a.attrelid = {}::regclass and a.attnum > 0 and not a.attisdropped order by a.attnum",
                        quote_literal(&format!("{}.{}", quote_ident(&schema), quote_ident(&name)))
                    )).await?;
            let mut table_columns = Vec::with_capacity(columns.len());
            let mut keys: Vec<(i64, usize)> = Vec::new();
            for (position, c) in columns.into_iter().enumerate() {
                let oid = c[1].as_deref().and_then(|v| v.parse().ok()).unwrap_or(0);
                let modifier = c[2].as_deref().and_then(|v| v.parse().ok()).unwrap_or(-1);
                let key_order: Option<i64> = c[3].as_deref().and_then(|v| v.parse().ok());
                if let Some(order) = key_order {
                    keys.push((order, position));
                }
                let column_name = c[0].clone().unwrap_or_default();
                table_columns.push(TableColumn {
                    emitted: config.filters.emits_column(&schema, &name, &column_name),
                    name: column_name,
                    column_type: self.types.resolve(client, &config, oid, modifier).await?,
                    key: key_order.is_some(),
                });
            }
            keys.sort();
            let table_schema = TableSchema::new(
                &config.topic_prefix,
                &schema,
                &name,
                table_columns,
                config.decimals,
                &source,
            );
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
                wire.start()
                    .await
                    .map_err(|e| Error::retriable(format!("starting replication: {e}")))?;
                self.stream = Some(wire);
            }
            Some(AfterSnapshot::Connect(start)) => {
                let wire = ReplicationClient::connect(Self::replication_config(&config, start))
                    .await
                    .map_err(|e| replication_error(&config, e))?;
                tracing::info!(slot = %config.slot, from = %start.map(Lsn).unwrap_or_default(), "streaming from the slot");
                self.stream = Some(wire);
            }
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

    async fn on_relation(&mut self, relation: Relation) -> Result<()> {
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
        let mut columns = Vec::with_capacity(relation.columns.len());
        for c in &relation.columns {
            let column_type = if captured {
                self.types
                    .resolve(&client, &config, c.type_oid, c.type_modifier)
                    .await?
            } else {
                ColumnType::scalar(c.type_oid, c.type_modifier)
            };
            columns.push(TableColumn {
                emitted: config
                    .filters
                    .emits_column(&relation.namespace, &relation.name, &c.name),
                name: c.name.clone(),
                column_type,
                key: c.key,
            });
        }
        let mut table = TableSchema::new(
            &config.topic_prefix,
            &relation.namespace,
            &relation.name,
            columns,
            config.decimals,
            &source,
        );
        table.captured = captured;
        self.tables.insert(relation.oid, table);
        Ok(())
    }

    fn table(&self, oid: u32) -> Result<&TableSchema> {
        self.tables.get(&oid).ok_or_else(|| {
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
        let mut out = Vec::new();
        let emit =
            |task: &Self, out: &mut Vec<SourceRecord>, table: &TableSchema, op, before, after| {
                let key = table.key_of(if op == "d" { &before } else { &after });
                let value = table.envelope(
                    before,
                    after,
                    task.stream_source(table, xid, micros, lsn),
                    op,
                    micros,
                );
                out.push(task.record(table, key.clone(), value, task.change_offset(lsn), micros));
                if op == "d" && task.config.as_ref().is_some_and(|c| c.tombstones) {
                    let mut tombstone =
                        task.record(table, key, Value::Null, task.change_offset(lsn), micros);
                    tombstone.record.value_schema = None;
                    out.push(tombstone);
                }
            };
        match message {
            Message::Insert { relation, new, .. } => {
                let table = self.table(relation)?;
                if table.captured {
                    emit(self, &mut out, table, "c", Value::Null, table.row(&new)?);
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
                    if !old_key.is_null() && old_key != table.key_of(&after) {
                        // The key changed: as Debezium does, a delete (and tombstone) under the
                        // old key, then a create under the new one.
                        emit(self, &mut out, table, "d", before, Value::Null);
                        emit(self, &mut out, table, "c", Value::Null, after);
                    } else {
                        emit(self, &mut out, table, "u", before, after);
                    }
                }
            }
            Message::Delete { relation, old, .. } => {
                let table = self.table(relation)?;
                if table.captured {
                    let (OldTuple::Key(t) | OldTuple::Full(t)) = old;
                    emit(self, &mut out, table, "d", table.row(&t)?, Value::Null);
                }
            }
            Message::Truncate { relations, .. } => {
                for oid in relations {
                    let table = self.table(oid)?;
                    if !table.captured {
                        continue;
                    }
                    let value = table.envelope(
                        Value::Null,
                        Value::Null,
                        self.stream_source(table, xid, micros, lsn),
                        "t",
                        micros,
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
        self.push(out);
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
            tx_id: Some(xid),
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

    /// Completes the open transaction: every record gets the commit's offset.
    fn on_commit(&mut self, commit_lsn: u64, end_lsn: u64) -> Vec<SourceRecord> {
        let Some(transaction) = self.transaction.take() else {
            return Vec::new();
        };
        let mut records = transaction.records;
        // Poll batches end on transaction boundaries, so only a transaction's last record's
        // offset is ever committed: it alone gets the full offset (the others keep their
        // `lsn_proc`), which spares four map inserts per change.
        if let Some(last) = records.last_mut() {
            let offset = &mut last.source_offset;
            offset.insert("lsn".into(), json!(end_lsn));
            offset.insert("lsn_commit".into(), json!(commit_lsn));
            offset.insert("txId".into(), json!(transaction.xid));
            offset.insert("ts_usec".into(), json!(transaction.commit_micros));
        }
        self.last_commit_lsn = Some(commit_lsn);
        match self.config.as_ref().filter(|c| c.transaction_metadata) {
            Some(config) => {
                let info = TransactionInfo {
                    xid: transaction.xid,
                    commit_lsn,
                    commit_micros: transaction.commit_micros,
                    topic_prefix: &config.topic_prefix,
                };
                self.transaction_schemas.wrap(&info, records)
            }
            None => records,
        }
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
            tx_id: self.transaction.as_ref().map(|t| t.xid),
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
        self.transaction = None;
        self.decoder = Decoder::default();
        self.reconnect = Some(Reconnect {
            attempt: 0,
            next_at: tokio::time::Instant::now(),
            cause,
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
        let resume = self.resume_lsn.or(self.start_lsn);
        let connected = async {
            let client = connect(&config).await?;
            let wire = ReplicationClient::connect(Self::replication_config(&config, resume))
                .await
                .map_err(|e| replication_error(&config, e))?;
            Ok::<_, Error>((client, wire))
        }
        .await;
        match connected {
            Ok((client, wire)) => {
                tracing::info!(attempt = attempt + 1, from = %resume.map(Lsn).unwrap_or_default(), "reconnected to Postgres; streaming again");
                self.client = Some(Arc::new(client));
                self.stream = Some(wire);
                self.reconnect = None;
                Ok(())
            }
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

    /// Every few seconds while streaming: how much WAL the slot holds back (the server's
    /// current position minus the slot's confirmed one), as the `slot_lag_bytes` gauge.
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
            "select (pg_current_wal_lsn() - confirmed_flush_lsn)::int8 from pg_replication_slots where slot_name = {}",
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
            }
            Err(e) => tracing::debug!(error = %e, "could not measure the slot's lag"),
        }
    }

    /// Tells the server the slot may move to `lsn` (never backwards).
    fn confirm(&mut self, lsn: u64) {
        if lsn <= self.confirmed_lsn {
            return;
        }
        if let Some(stream) = &self.stream {
            stream.update_applied_lsn(WireLsn(lsn));
            self.confirmed_lsn = lsn;
        }
    }

    /// A keepalive carries the server's decoding position. When no transaction is open, no
    /// snapshot row is queued and every record handed out is committed downstream, nothing
    /// before that position is still owed to anyone (changes to tables outside the
    /// publication decode to nothing), so the slot may advance to it. This keeps WAL from
    /// piling up behind a slot whose tables are idle while the rest of the database is not.
    fn on_keepalive(&mut self, wal_end: u64) {
        let idle = self.transaction.is_none() && self.snapshot.is_none();
        let caught_up = self.last_emitted.is_none() || self.everything_committed;
        if idle && caught_up && wal_end > self.confirmed_lsn {
            tracing::debug!(lsn = %Lsn(wal_end), "nothing pending: slot advanced on keepalive");
            self.confirm(wal_end);
        }
    }

    /// The next batch: queued snapshot rows first, then whole committed transactions from the
    /// stream (up to `max.batch.size`, or what arrived within [`POLL_WAIT`]).
    async fn next_batch(&mut self) -> Result<Vec<SourceRecord>> {
        if let Some(reader) = self.snapshot.as_mut() {
            let max = self.config.as_ref().map_or(2048, |c| c.max_batch);
            match reader.next_batch(max, POLL_WAIT).await? {
                Some(batch) => return Ok(batch),
                None => {
                    self.snapshot = None;
                    self.begin_streaming().await?;
                }
            }
        }
        let deadline = tokio::time::Instant::now() + POLL_WAIT;
        let mut batch = Vec::new();
        loop {
            let Some(stream) = self.stream.as_mut() else {
                // snapshot.mode=initial_only: nothing more will come.
                tokio::time::sleep_until(deadline).await;
                return Ok(batch);
            };
            let event = match tokio::time::timeout_at(deadline, stream.recv()).await {
                Err(_) => return Ok(batch),
                Ok(Err(e)) => {
                    return Err(Error::retriable(format!("replication stream failed: {e}")));
                }
                Ok(Ok(None)) => return Err(Error::retriable("the replication stream ended")),
                Ok(Ok(Some(event))) => event,
            };
            match event {
                ReplicationEvent::Begin {
                    xid,
                    commit_time_micros,
                    ..
                } => {
                    self.transaction = Some(Transaction {
                        xid,
                        commit_micros: unix_micros(commit_time_micros),
                        records: Vec::new(),
                    });
                }
                ReplicationEvent::XLogData {
                    data, wal_start, ..
                } => match self.decoder.decode(&data)? {
                    Message::Relation { relation, .. } => self.on_relation(relation).await?,
                    change @ (Message::Insert { .. }
                    | Message::Update { .. }
                    | Message::Delete { .. }
                    | Message::Truncate { .. }) => self.on_change(change, u64::from(wal_start))?,
                    _ => {}
                },
                ReplicationEvent::Commit { lsn, end_lsn, .. } => {
                    batch.extend(self.on_commit(u64::from(lsn), u64::from(end_lsn)));
                    if batch.len() >= self.config()?.max_batch {
                        return Ok(batch);
                    }
                }
                ReplicationEvent::KeepAlive { wal_end, .. } => {
                    self.on_keepalive(u64::from(wal_end));
                }
                ReplicationEvent::Message {
                    transactional,
                    lsn,
                    prefix,
                    content,
                } => {
                    if let Some(record) =
                        self.on_message(transactional, u64::from(lsn), &prefix, &content)
                    {
                        if transactional && self.transaction.is_some() {
                            self.push(vec![record]);
                        } else {
                            batch.push(record);
                        }
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
        let config = PostgresConfig::from_props(&context.config)?;
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
        self.partition = Arc::new(partition);
        self.metrics = context.metrics.clone();
        self.snapshot_progress = Arc::new(SnapshotProgress::new(context.metrics.clone()));
        self.source_schema = Some(source_schema());
        self.config = Some(config.clone());

        let client = Arc::new(connect(&config).await?);
        self.client = Some(Arc::clone(&client));
        Self::check_server(&client, &config).await?;
        Self::ensure_publication(&client, &config).await?;
        let slot = query(&client, &config, "looking up the replication slot", &format!(
                    "select confirmed_flush_lsn::text from pg_replication_slots where slot_name = {} and database = current_database()",
                    quote_literal(&config.slot)
                )).await?;
        let slot_exists = !slot.is_empty();
        // A snapshot interrupted by a crash goes on after its last committed row.
        let resume = committed.as_ref().and_then(ResumePoint::from_offset);
        if let Some(resume) = &resume {
            tracing::info!(table = %resume.table, after_key = ?resume.after_key, "resuming an interrupted snapshot");
        }
        let snapshot_now = config.snapshot.snapshot_now(snapshot_done, slot_exists);
        if config.snapshot == SnapshotMode::InitialOnly {
            // No stream will follow, so no slot is needed: a plain repeatable-read view is the
            // snapshot, stamped with the WAL position it reflects.
            if snapshot_now {
                let lsn = query(
                    &client,
                    &config,
                    "reading the WAL position",
                    "select pg_current_wal_lsn()::text",
                )
                .await?;
                let lsn = lsn
                    .first()
                    .and_then(|r| r[0].as_deref())
                    .unwrap_or_default()
                    .parse::<Lsn>()
                    .map_err(Error::data)?;
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
            let mut wire =
                ReplicationClient::connect_gated(Self::replication_config(&config, None))
                    .await
                    .map_err(|e| replication_error(&config, e))?;
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
            let text = |i: usize| {
                created
                    .first()
                    .and_then(|r| r.get(i))
                    .and_then(|v| v.as_ref())
                    .map(|b| String::from_utf8_lossy(b).into_owned())
            };
            let consistent: Lsn = text(1).unwrap_or_default().parse().map_err(Error::data)?;
            tracing::info!(slot = %config.slot, consistent_point = %consistent, "created replication slot");
            if snapshot_now {
                // The session stays idle (gated) until the snapshot is read, keeping its
                // exported snapshot importable by the readers; then it starts streaming.
                self.start_snapshot(&client, text(2), consistent.0, None)
                    .await?;
                self.after_snapshot = Some(AfterSnapshot::Start(wire));
            } else {
                wire.start()
                    .await
                    .map_err(|e| Error::retriable(format!("starting replication: {e}")))?;
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
        if self.reconnect.is_some() {
            return self.try_reconnect().await.map(|()| Vec::new());
        }
        self.measure_slot_lag().await;
        let batch = match self.next_batch().await {
            Ok(batch) => batch,
            Err(e) if e.kind() == ErrorKind::Retriable && self.stream.is_some() => {
                self.lose_connection(e);
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
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
        if let Some(mut stream) = self.stream.take() {
            // Let the last confirmed position reach the server before closing, so the slot
            // stands exactly at what is durable downstream (bounded: the server may be gone).
            let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
            while stream.feedback_pending_since().is_some()
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = stream.shutdown().await;
        }
        if let Some(config) = self.config.clone().filter(|c| c.drop_slot_on_stop) {
            let client = connect(&config).await?;
            client
                .simple_query(&format!(
                    "select pg_drop_replication_slot({})",
                    quote_literal(&config.slot)
                ))
                .await
                .map_err(|e| pg_error("dropping the slot (slot.drop.on.stop)", &config, e))?;
        }
        Ok(())
    }
}
