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

use crate::envelope::{SourceInfo, source_value};
use crate::history::table_change;
use crate::schema_change::SchemaChangeSchemas;
use crate::sql::{connect, describe, list_tables, my_error, quote_ident, show_create};
use crate::table::TableSchema;

/// The position a snapshot stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub file: String,
    pub pos: u64,
}

/// What the background reader sends.
#[derive(Debug)]
pub enum Snapshot {
    /// The snapshot's binlog position, first.
    Position(Position),
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
        debezium.as_ref(),
    )
    .await;
    if let Err(e) = read {
        let _ = sender.send(Err(e)).await;
    }
}

async fn read(
    config: &MySqlConfig,
    source: &sluice_api::data::SchemaRef,
    partition: &Arc<SourcePartition>,
    sender: &mpsc::Sender<Result<Snapshot>>,
    interrupted: Option<Position>,
    debezium: Option<&DebeziumMetrics>,
) -> Result<()> {
    let mut conn = connect(config).await?;
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
    let (Some(file), Some(pos)) = (
        value("Binlog_snapshot_file").filter(|f| !f.is_empty()),
        value("Binlog_snapshot_position").and_then(|p| p.parse::<u64>().ok()),
    ) else {
        return Err(Error::config(
            "the server does not report binlog_snapshot_file/position (MariaDB does; a lock-free consistent \
             snapshot on MySQL is not built yet): use MariaDB, or snapshot.mode=no_data",
        ));
    };
    let (file, pos) = match interrupted {
        Some(earlier) => {
            tracing::info!(
                view = %format!("{file}:{pos}"),
                stream_from = %format!("{}:{}", earlier.file, earlier.pos),
                "snapshotting again after an interrupted snapshot; the stream starts where that one stood, so \
                 the changes made since are streamed too"
            );
            (earlier.file, earlier.pos)
        }
        None => (file, pos),
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
    let tables = list_tables(&mut conn, config).await?;
    tracing::info!(tables = tables.len(), file = %file, pos, "snapshot started");
    if config.schema_changes {
        for (db, table) in &tables {
            let record = schema_change_event(
                &mut conn,
                config,
                source,
                partition,
                (db, table),
                (&file, pos),
                snapshot_ms,
            )
            .await?;
            if sender
                .send(Ok(Snapshot::Record(Box::new(record))))
                .await
                .is_err()
            {
                return Ok(());
            }
        }
    }
    let mut total = 0u64;
    if let Some(debezium) = debezium {
        debezium.set("snapshot", "TotalTableCount", tables.len() as f64);
    }
    for (index, (db, table)) in tables.iter().enumerate() {
        if let Some(debezium) = debezium {
            debezium.set(
                "snapshot",
                "RemainingTableCount",
                (tables.len() - index) as f64,
            );
        }
        let qualified = format!("{db}.{table}");
        let columns = describe(&mut conn, config, db, table).await?;
        let schema = TableSchema::new(config, db, table, columns, source);
        let mut result = conn
            .query_iter(format!(
                "SELECT * FROM {}.{}",
                quote_ident(db),
                quote_ident(table)
            ))
            .await
            .map_err(|e| my_error(&format!("reading {db}.{table}"), config, e))?;
        let mut rows = 0u64;
        let mut pending: Option<SourceRecord> = None;
        while let Some(row) = result
            .next()
            .await
            .map_err(|e| my_error(&format!("reading {db}.{table}"), config, e))?
        {
            let values: Vec<Option<Vec<u8>>> = row
                .unwrap()
                .into_iter()
                .map(|v| match v {
                    mysql_async::Value::NULL => None,
                    mysql_async::Value::Bytes(b) => Some(b),
                    other => Some(other.as_sql(true).into_bytes()),
                })
                .collect();
            let after = schema.row_from_text(&values)?;
            let marker = match (total + rows, rows) {
                (0, _) => "first",
                (_, 0) => "first_in_data_collection",
                _ => "true",
            };
            let record = read_event(
                config,
                &schema,
                source,
                partition,
                after,
                &file,
                pos,
                snapshot_ms,
                marker,
            );
            if let Some(previous) = pending.replace(record)
                && sender
                    .send(Ok(Snapshot::Record(Box::new(previous))))
                    .await
                    .is_err()
            {
                return Ok(());
            }
            rows += 1;
            if let Some(debezium) = debezium
                && rows.is_multiple_of(1024)
            {
                debezium.set_table("snapshot", "RowsScanned", &qualified, rows as f64);
            }
        }
        if let Some(debezium) = debezium {
            debezium.set_table("snapshot", "RowsScanned", &qualified, rows as f64);
        }
        if let Some(mut last) = pending.take() {
            if index + 1 < tables.len() && rows > 1 {
                mark_snapshot(&mut last, "last_in_data_collection");
            }
            if sender
                .send(Ok(Snapshot::Record(Box::new(last))))
                .await
                .is_err()
            {
                return Ok(());
            }
        }
        total += rows;
        tracing::info!(table = %qualified, rows, "snapshot read table");
    }
    let _ = conn.query_drop("COMMIT").await;
    if let Some(debezium) = debezium {
        debezium.set("snapshot", "RemainingTableCount", 0.0);
        debezium.set("snapshot", "SnapshotRunning", 0.0);
        debezium.set("snapshot", "SnapshotCompleted", 1.0);
    }
    tracing::info!(rows = total, "snapshot complete");
    Ok(())
}

/// With `include.schema.changes`: a captured table's schema change event, read inside the
/// snapshot's view before any rows: `SHOW CREATE TABLE` and the table as INFORMATION_SCHEMA
/// shows it (`CREATE`), marked as of the snapshot, as Debezium sends one per table. (Debezium
/// also sends the `SET`, `DROP … IF EXISTS`, `CREATE DATABASE` and `USE` statements it writes
/// around them to its history; those name no table structure and are left out.)
async fn schema_change_event(
    conn: &mut mysql_async::Conn,
    config: &MySqlConfig,
    source: &sluice_api::data::SchemaRef,
    partition: &Arc<SourcePartition>,
    (db, table): (&str, &str),
    (file, pos): (&str, u64),
    ts_ms: i64,
) -> Result<SourceRecord> {
    let columns = describe(conn, config, db, table).await?;
    let ddl = show_create(conn, db, table).await;
    let changes = [table_change(db, table, "CREATE", &columns)];
    let info = SourceInfo {
        flavour: config.flavour,
        prefix: &config.topic_prefix,
        db,
        table,
        ts_ms,
        snapshot: "true",
        server_id: 0,
        gtid: None,
        file,
        pos,
        row: 0,
        thread: None,
    };
    let schemas = SchemaChangeSchemas::new(config.flavour, source);
    let value = schemas.value(source_value(source, &info), ts_ms, db, &ddl, &changes);
    Ok(schemas.record(
        &config.topic_prefix,
        db,
        value,
        ts_ms,
        partition,
        snapshot_offset(file, pos),
    ))
}

/// The offset of a snapshot record: the position the snapshot stands for, still snapshotting.
fn snapshot_offset(file: &str, pos: u64) -> SourceOffset {
    let mut offset = SourceOffset::new();
    offset.insert("file".into(), json!(file));
    offset.insert("pos".into(), json!(pos));
    offset.insert("snapshot".into(), json!(true));
    offset
}

#[allow(clippy::too_many_arguments)]
fn read_event(
    config: &MySqlConfig,
    schema: &TableSchema,
    source: &sluice_api::data::SchemaRef,
    partition: &Arc<SourcePartition>,
    after: Value,
    file: &str,
    pos: u64,
    ts_ms: i64,
    marker: &str,
) -> SourceRecord {
    let info = SourceInfo {
        flavour: config.flavour,
        prefix: &config.topic_prefix,
        db: &schema.db,
        table: &schema.table,
        ts_ms,
        snapshot: marker,
        server_id: 0,
        gtid: None,
        file,
        pos,
        row: 0,
        thread: None,
    };
    let key = schema.key_of(&after);
    let value = envelope_value(
        &schema.envelope,
        Value::Null,
        after,
        source_value(source, &info),
        "r",
    );
    crate::source::record(
        schema,
        key,
        value,
        partition,
        snapshot_offset(file, pos),
        ts_ms,
    )
}
