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
use crate::history::table_change;
use crate::schema_change::SchemaChangeSchemas;
use crate::sql::{connect, describe, list_tables, my_error, quote_ident, show_create};
use crate::table::{ColumnInfo, TableSchema};

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
    /// session's `sql_mode` has NO_BACKSLASH_ESCAPES (how the literals must be escaped).
    fn select(
        &self,
        schema: &TableSchema,
        after: Option<&[String]>,
        no_backslash_escapes: bool,
    ) -> String {
        let mut sql = format!(
            "SELECT * FROM {}.{}",
            quote_ident(&schema.db),
            quote_ident(&schema.table)
        );
        let names: Vec<String> = self
            .columns
            .iter()
            .map(|i| quote_ident(&schema.columns[*i].name))
            .collect();
        let literals = after
            .filter(|a| self.resumable && a.len() == names.len())
            .and_then(|after| {
                after
                    .iter()
                    .zip(&self.columns)
                    .map(|(value, i)| {
                        literal(&schema.columns[*i].data_type, value, no_backslash_escapes)
                    })
                    .collect::<Option<Vec<String>>>()
            });
        if let Some(values) = literals {
            // `a > x OR (a = x AND b > y) …`: exact for every type (a row constructor
            // compares numbers with strings as doubles) and a range on the key's index.
            let alternatives: Vec<String> = (0..names.len())
                .map(|last| {
                    let mut terms: Vec<String> = (0..last)
                        .map(|i| format!("{} = {}", names[i], values[i]))
                        .collect();
                    terms.push(format!("{} > {}", names[last], values[last]));
                    format!("({})", terms.join(" AND "))
                })
                .collect();
            sql.push_str(&format!(" WHERE {}", alternatives.join(" OR ")));
        }
        if !names.is_empty() {
            sql.push_str(&format!(" ORDER BY {}", names.join(", ")));
        }
        sql
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

async fn read(
    config: &MySqlConfig,
    source: &sluice_api::data::SchemaRef,
    partition: &Arc<SourcePartition>,
    sender: &mpsc::Sender<Result<Snapshot>>,
    interrupted: Option<Position>,
    resume: Option<ResumeAt>,
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
    let view_is_position = interrupted.is_none();
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
        for (db, table) in &tables {
            let at = SnapshotAt {
                file: &file,
                pos,
                server_id: 0,
                ts_ms: snapshot_ms,
            };
            let record = schema_change_event(
                &mut conn,
                config,
                source,
                partition,
                (db, table),
                &at,
                schema_offset.clone(),
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
    // Every table's columns first, in the view, as Debezium's snapshot reads the schemas before
    // the data: the schema history then holds all of them at the stream's start before any row
    // is sent, so a restart (even one cut short mid-snapshot) knows each table from there on.
    let mut described = Vec::with_capacity(tables.len());
    for (db, table) in &tables {
        let columns = describe(&mut conn, config, db, table).await?;
        if view_is_position {
            let message = Snapshot::Table {
                db: db.clone(),
                table: table.clone(),
                columns: columns.clone(),
                ddl: show_create(&mut conn, db, table).await,
            };
            if sender.send(Ok(message)).await.is_err() {
                return Ok(());
            }
        }
        described.push(columns);
    }
    let mut total = 0u64;
    if let Some(debezium) = debezium {
        debezium.set("snapshot", "TotalTableCount", tables.len() as f64);
    }
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
        let mut result = conn
            .query_iter(order.select(&schema, after.as_deref(), no_backslash_escapes))
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
            let key = order.key_of(&values);
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
                (&file, pos),
                (&qualified, key),
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

/// The position and time a snapshot's schema change events stand for.
#[derive(Debug, Clone, Copy)]
pub struct SnapshotAt<'a> {
    pub file: &'a str,
    pub pos: u64,
    pub server_id: u32,
    pub ts_ms: i64,
}

/// With `include.schema.changes`: a captured table's schema change event as a snapshot sends
/// it (inside its view, before any rows; or alone, for a snapshot of the schemas only):
/// `SHOW CREATE TABLE` and the table as INFORMATION_SCHEMA shows it (`CREATE`), marked as of
/// the snapshot, as Debezium sends one per table. (Debezium also sends the `SET`, `DROP … IF
/// EXISTS`, `CREATE DATABASE` and `USE` statements it writes around them to its history;
/// those name no table structure and are left out.)
pub async fn schema_change_event(
    conn: &mut mysql_async::Conn,
    config: &MySqlConfig,
    source: &sluice_api::data::SchemaRef,
    partition: &Arc<SourcePartition>,
    (db, table): (&str, &str),
    at: &SnapshotAt<'_>,
    offset: SourceOffset,
) -> Result<SourceRecord> {
    let SnapshotAt {
        file,
        pos,
        server_id,
        ts_ms,
    } = *at;
    let columns = describe(conn, config, db, table).await?;
    let ddl = show_create(conn, db, table).await;
    let changes = [table_change(db, table, "CREATE", &columns)];
    let info = SourceInfo {
        flavour: config.flavour,
        names: SourceNames::owned(&config.topic_prefix, db, table),
        ts_ms,
        snapshot: "true",
        server_id,
        gtid: None,
        file: file.into(),
        pos,
        row: 0,
        thread: None,
    };
    let schemas = SchemaChangeSchemas::new(config.flavour, source);
    let value = schemas.value(source_value(source, &info), ts_ms, db, &ddl, &changes);
    Ok(schemas.record(&config.topic_prefix, db, value, ts_ms, partition, offset))
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
    (file, pos): (&str, u64),
    (table, row_key): (&str, Option<Vec<String>>),
    ts_ms: i64,
    marker: &'static str,
) -> SourceRecord {
    let info = SourceInfo {
        flavour: config.flavour,
        names: schema.source_names.clone(),
        ts_ms,
        snapshot: marker,
        server_id: 0,
        gtid: None,
        file: file.into(),
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
    // Where a snapshot cut short after this record reads on from.
    let mut offset = snapshot_offset(file, pos);
    offset.insert("snapshot_table".into(), json!(table));
    if let Some(row_key) = row_key {
        offset.insert("snapshot_key".into(), json!(row_key));
    }
    crate::source::record(schema, key, value, partition, offset, ts_ms)
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
