//! The schema history: each table's schema versions with the binlog position they hold from,
//! in Debezium's record layout (`source`, `position`, `ts_ms`, `databaseName`, `ddl`,
//! `tableChanges`), so a restart decodes events written before a DDL with the schema they were
//! written under. Kept where Debezium keeps it ([`HistoryStore`]): one JSON document per line
//! as its `FileSchemaHistory` writes them (`schema.history.internal.file.filename`), or one per
//! unkeyed record of a one-partition topic as its `KafkaSchemaHistory` does
//! (`schema.history.internal.kafka.topic`).
//!
//! Two kinds of record: a DDL statement read from the binlog (`tableChanges` empty: Debezium
//! parses the statement, sluice marks the tables it names stale), and a table's schema as
//! established before its next rows were decoded (`tableChanges` with the table's columns).
//!
//! # Contract
//! * A record is durable (a file's written and fsynced; a topic's acknowledged by every in-sync
//!   replica) before the stream position moves past it, so no committed offset is ahead of the
//!   history.
//! * Records are appended in binlog order; a restart replays those at or before its position.
//!   Later ones were written before a crash that lost their offsets, and are written again
//!   when their events are read again: the file drops them then; a topic, which cannot drop
//!   records, keeps them, and a later restart replays them before their second writing, which
//!   thus wins, as in Debezium.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value as Json, json};
use sluice_api::connector::HistoryTopic;
use sluice_api::{Error, Result};

use crate::table::ColumnInfo;

/// A binlog position as the history compares them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct At {
    pub file: String,
    pub pos: u64,
}

/// Where a record was read from, with what Debezium's history position also carries.
#[derive(Debug, Clone)]
pub struct Origin {
    /// `topic.prefix`: the record's `source.server`.
    pub prefix: String,
    pub at: At,
    /// The GTID state (`gtids`); empty without GTIDs.
    pub gtids: String,
    pub server_id: u32,
    pub ts_ms: i64,
}

fn envelope(origin: &Origin, db: &str, ddl: &str, changes: Vec<Json>) -> Json {
    let mut position = json!({
        "file": origin.at.file,
        "pos": origin.at.pos,
        "server_id": origin.server_id,
        "ts_sec": origin.ts_ms / 1000,
    });
    if !origin.gtids.is_empty() {
        position["gtids"] = json!(origin.gtids);
    }
    json!({
        "source": {"server": origin.prefix},
        "position": position,
        "ts_ms": origin.ts_ms,
        "databaseName": db,
        "ddl": ddl,
        "tableChanges": changes,
    })
}

/// A DDL statement read from the binlog, run in database `db`.
pub fn ddl_record(origin: &Origin, db: &str, ddl: &str) -> Json {
    envelope(origin, db, ddl, Vec::new())
}

/// Table `db.table`'s schema from `origin` on; `ddl` is the statement it came from (or the
/// table's `SHOW CREATE TABLE`), `change` Debezium's `CREATE` or `ALTER`.
pub fn version_record(
    origin: &Origin,
    db: &str,
    table: &str,
    ddl: &str,
    change: &str,
    columns: &[ColumnInfo],
) -> Json {
    envelope(
        origin,
        db,
        ddl,
        vec![table_change(db, table, change, columns)],
    )
}

/// One `tableChanges` entry: Debezium's `CREATE` or `ALTER` of `db.table` with `columns`.
pub fn table_change(db: &str, table: &str, change: &str, columns: &[ColumnInfo]) -> Json {
    let primary: Vec<&str> = columns
        .iter()
        .filter(|c| c.primary)
        .map(|c| c.name.as_str())
        .collect();
    let columns: Vec<Json> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| column_json(i, c))
        .collect();
    json!({
        "type": change,
        "id": format!("\"{db}\".\"{table}\""),
        "table": {
            "defaultCharsetName": null,
            "primaryKeyColumnNames": primary,
            "columns": columns,
            "attributes": [],
        },
        "comment": null,
    })
}

/// One `tableChanges` entry for a dropped table.
pub fn dropped_change(db: &str, table: &str) -> Json {
    json!({"type": "DROP", "id": format!("\"{db}\".\"{table}\""), "table": null, "comment": null})
}

/// Debezium's JDBC type number for a MySQL type (`java.sql.Types`).
fn jdbc_type(data_type: &str) -> i32 {
    match data_type {
        "bit" => -7,
        "tinyint" => -6,
        "smallint" => 5,
        "mediumint" | "int" | "integer" => 4,
        "bigint" => -5,
        "float" => 7,
        "double" | "real" => 8,
        "decimal" | "numeric" => 3,
        "char" | "enum" | "set" => 1,
        "varchar" => 12,
        "tinytext" | "text" | "mediumtext" | "longtext" | "json" => -1,
        "binary" => -2,
        "varbinary" => -3,
        "tinyblob" | "blob" | "mediumblob" | "longblob" => -4,
        "date" => 91,
        "time" => 92,
        "datetime" => 93,
        "timestamp" => 2014,
        "year" => 4,
        _ => 1111,
    }
}

/// A column as Debezium's `JsonTableChangeSerializer` writes it; `length` carries the
/// display width, precision or fractional digits as Debezium's column does.
fn column_json(index: usize, column: &ColumnInfo) -> Json {
    let unsigned = column.column_type.contains("unsigned");
    let type_name = if unsigned {
        format!("{} UNSIGNED", column.data_type.to_ascii_uppercase())
    } else {
        column.data_type.to_ascii_uppercase()
    };
    let width = column
        .column_type
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .and_then(|(inside, _)| inside.split(',').next()?.trim().parse::<u32>().ok());
    let length = match column.data_type.as_str() {
        "time" | "datetime" | "timestamp" => Some(column.fsp),
        "decimal" | "numeric" | "bit" => column.precision,
        "enum" | "set" => None,
        _ => width,
    };
    let labels: Vec<String> = if matches!(column.data_type.as_str(), "enum" | "set") {
        column
            .column_type
            .split_once('(')
            .map_or(Vec::new(), |(_, rest)| {
                split_labels(rest.trim_end_matches([')', ' ', '\t']))
            })
    } else {
        Vec::new()
    };
    json!({
        "name": column.name,
        "jdbcType": jdbc_type(&column.data_type),
        "typeName": type_name,
        "typeExpression": type_name,
        "charsetName": column.charset,
        "length": length,
        "scale": column.scale,
        "position": index + 1,
        "optional": column.nullable,
        "autoIncremented": false,
        "generated": false,
        "comment": null,
        "hasDefaultValue": false,
        "enumValues": labels,
    })
}

/// `'a','b''c'` → `['a'`, `'b''c'`] (each label still quoted, as Debezium keeps them).
fn split_labels(inner: &str) -> Vec<String> {
    let mut labels = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' if quoted && chars.peek() == Some(&'\'') => {
                current.push_str("''");
                chars.next();
            }
            '\'' => {
                quoted = !quoted;
                current.push('\'');
            }
            ',' if !quoted => labels.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    if !current.is_empty() {
        labels.push(current);
    }
    labels
}

/// The columns of a `tableChanges` entry this module wrote (the inverse of `column_json`).
fn columns_of(table: &Json) -> Option<Vec<ColumnInfo>> {
    let primary: Vec<&str> = table["primaryKeyColumnNames"]
        .as_array()?
        .iter()
        .filter_map(Json::as_str)
        .collect();
    table["columns"]
        .as_array()?
        .iter()
        .map(|c| {
            let type_name = c["typeName"].as_str()?.to_ascii_lowercase();
            let unsigned = type_name.ends_with(" unsigned");
            let data_type = type_name.trim_end_matches(" unsigned").to_owned();
            let length = c["length"].as_u64().map(|l| l as u32);
            let scale = c["scale"].as_u64().map(|s| s as u32);
            let labels: Vec<&str> = c["enumValues"]
                .as_array()
                .map(|v| v.iter().filter_map(Json::as_str).collect())
                .unwrap_or_default();
            let mut column_type = match (data_type.as_str(), length) {
                ("enum" | "set", _) => format!("{data_type}({})", labels.join(",")),
                ("decimal" | "numeric", Some(p)) => {
                    format!("{data_type}({p},{})", scale.unwrap_or(0))
                }
                ("time" | "datetime" | "timestamp", _) => data_type.clone(),
                (_, Some(width)) => format!("{data_type}({width})"),
                (_, None) => data_type.clone(),
            };
            if unsigned {
                column_type.push_str(" unsigned");
            }
            let name = c["name"].as_str()?.to_owned();
            let temporal = matches!(data_type.as_str(), "time" | "datetime" | "timestamp");
            Some(ColumnInfo {
                primary: primary.contains(&name.as_str()),
                name,
                precision: match data_type.as_str() {
                    "decimal" | "numeric" | "bit" => length,
                    _ => None,
                },
                scale,
                fsp: if temporal { length.unwrap_or(0) } else { 0 },
                charset: c["charsetName"].as_str().map(str::to_owned),
                nullable: c["optional"].as_bool().unwrap_or(true),
                data_type,
                column_type,
            })
        })
        .collect()
}

/// What a history record says, once read back.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// A DDL statement run in `db`.
    Ddl { db: String, ddl: String },
    /// `db.table`'s columns from here on.
    Version {
        db: String,
        table: String,
        columns: Vec<ColumnInfo>,
    },
}

/// Reads one record back: its position and what it says.
pub fn entry_of(record: &Json) -> Option<(At, Entry)> {
    let at = At {
        file: record["position"]["file"].as_str()?.to_owned(),
        pos: record["position"]["pos"].as_u64()?,
    };
    let db = record["databaseName"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let change = record["tableChanges"].as_array().and_then(|c| c.first());
    let entry = match change {
        None => Entry::Ddl {
            db,
            ddl: record["ddl"].as_str()?.to_owned(),
        },
        Some(change) => {
            let id = change["id"].as_str()?;
            let (db, table) = id.split_once("\".\"")?;
            Entry::Version {
                db: db.trim_matches('"').to_owned(),
                table: table.trim_matches('"').to_owned(),
                columns: columns_of(&change["table"])?,
            }
        }
    };
    Some((at, entry))
}

/// Where the file's last complete line ends: its length, unless a crash tore its last line.
fn complete_lines_end(file: &mut std::fs::File) -> std::io::Result<u64> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(0);
    }
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(len - 1))?;
    file.read_exact(&mut last)?;
    if last[0] == b'\n' {
        return Ok(len);
    }
    let mut text = Vec::new();
    file.seek(SeekFrom::Start(0))?;
    file.read_to_end(&mut text)?;
    Ok(text
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |at| at as u64 + 1))
}

/// Server `prefix`'s entries among `records` (JSON texts, in order), the others skipped;
/// `place(i)` names record `i` in an error, such as "the schema history f line 3".
fn entries_of<'a>(
    records: impl IntoIterator<Item = &'a str>,
    prefix: &str,
    place: impl Fn(usize) -> String,
) -> Result<Vec<(At, Entry)>> {
    let mut out = Vec::new();
    for (i, text) in records.into_iter().enumerate() {
        let record: Json = serde_json::from_str(text)
            .map_err(|e| Error::config(format!("{} is not a history record: {e}", place(i))))?;
        if record["source"]["server"].as_str() != Some(prefix) {
            continue;
        }
        let entry = entry_of(&record).ok_or_else(|| {
            Error::config(format!(
                "{} lacks the position, ddl or table fields of a history record",
                place(i)
            ))
        })?;
        out.push(entry);
    }
    Ok(out)
}

/// A topic's entries as a pruned file would hold them. Entries come in binlog order, except
/// where a restart read events again from an earlier position and wrote their records again:
/// an entry before the last one kept (or the same as one kept at its position) starts such a
/// second writing, and the entries it supersedes (past it, and its earlier copy) are dropped.
/// The same DDL statement would otherwise be replayed twice.
fn without_rewritten(entries: Vec<(At, Entry)>) -> Vec<(At, Entry)> {
    let mut kept: Vec<(At, Entry)> = Vec::with_capacity(entries.len());
    for (at, entry) in entries {
        // Kept entries stay in position order, so those at `at` or past it are at the end.
        let tail = kept
            .iter()
            .rposition(|(kept_at, _)| kept_at < &at)
            .map_or(0, |i| i + 1);
        let copy = kept[tail..]
            .iter()
            .position(|(kept_at, kept_entry)| kept_at == &at && kept_entry == &entry);
        match copy {
            // Written again from its earlier copy on: everything from that copy is superseded.
            Some(i) => kept.truncate(tail + i),
            // Written again from an earlier position: what lies past it is superseded.
            None => {
                let past = kept
                    .iter()
                    .rposition(|(kept_at, _)| kept_at <= &at)
                    .map_or(0, |i| i + 1);
                kept.truncate(past);
            }
        }
        kept.push((at, entry));
    }
    kept
}

/// Where the schema history is kept.
pub enum HistoryStore {
    /// `schema.history.internal.file.filename`.
    File(FileHistory),
    /// `schema.history.internal.kafka.topic`.
    Topic(Box<dyn HistoryTopic>),
}

impl std::fmt::Debug for HistoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HistoryStore::File(file) => f.debug_tuple("File").field(&file.path).finish(),
            HistoryStore::Topic(topic) => f.debug_tuple("Topic").field(&topic.topic()).finish(),
        }
    }
}

impl HistoryStore {
    /// The records of server `prefix` (`source.server`), in order.
    pub async fn load(&self, prefix: &str) -> Result<Vec<(At, Entry)>> {
        match self {
            HistoryStore::File(file) => file.load(prefix),
            HistoryStore::Topic(topic) => {
                let records = topic.read_all().await?;
                let entries = entries_of(records.iter().map(String::as_str), prefix, |i| {
                    format!("the schema history topic {} record {i}", topic.topic())
                })?;
                Ok(without_rewritten(entries))
            }
        }
    }

    /// Appends `record`; on disk (or acknowledged by the brokers) on `Ok`.
    pub async fn append(&self, record: &Json) -> Result<()> {
        match self {
            HistoryStore::File(file) => file.append(record),
            HistoryStore::Topic(topic) => topic.append(record.to_string()).await,
        }
    }

    /// Drops server `prefix`'s records past `upto`, the position a stream just opened at, from
    /// a file (see the module's contract); a topic keeps them. Returns how many were dropped.
    pub async fn prune(&self, prefix: &str, upto: &At) -> Result<usize> {
        match self {
            HistoryStore::File(file) => {
                if file.load(prefix)?.iter().any(|(at, _)| at > upto) {
                    file.rewrite(prefix, |at| at <= upto, &[])
                } else {
                    Ok(0)
                }
            }
            HistoryStore::Topic(_) => Ok(0),
        }
    }

    /// Server `prefix`'s history from now on is `records` (`snapshot.mode=recovery`): a file is
    /// rewritten with them in place of its records; a topic gets them appended, and a replay
    /// takes them over the older ones before them.
    pub async fn replace(&self, prefix: &str, records: &[Json]) -> Result<()> {
        match self {
            HistoryStore::File(file) => file.rewrite(prefix, |_| false, records).map(drop),
            HistoryStore::Topic(topic) => {
                for record in records {
                    topic.append(record.to_string()).await?;
                }
                Ok(())
            }
        }
    }
}

/// `schema.history.internal.file.filename`.
#[derive(Debug, Clone)]
pub struct FileHistory {
    path: PathBuf,
}

impl FileHistory {
    pub fn new(path: impl AsRef<Path>) -> FileHistory {
        FileHistory {
            path: path.as_ref().to_path_buf(),
        }
    }

    /// Appends `record` and waits until it is on disk.
    pub fn append(&self, record: &Json) -> Result<()> {
        let fail = |e: std::io::Error| {
            Error::retriable(format!(
                "writing the schema history {}: {e} (schema.history.internal.file.filename)",
                self.path.display()
            ))
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&self.path)
            .map_err(fail)?;
        let end = complete_lines_end(&mut file).map_err(fail)?;
        if end < file.metadata().map_err(fail)?.len() {
            // A crash tore the last append: the new record must not be glued to it.
            tracing::warn!(history = %self.path.display(), "cutting a torn last line off the schema history");
            file.set_len(end).map_err(fail)?;
        }
        file.seek(SeekFrom::Start(end)).map_err(fail)?;
        let mut line = record.to_string();
        line.push('\n');
        file.write_all(line.as_bytes()).map_err(fail)?;
        file.sync_data().map_err(fail)
    }

    /// Keeps, of server `prefix`'s records, those `keep` says yes to, and adds `added` after
    /// them; other servers' records stay as they are, lines that are not JSON go. The file is replaced whole (written
    /// beside it, fsynced, renamed over it), so a crash leaves the old or the new one. Returns
    /// how many of `prefix`'s records were dropped.
    pub fn rewrite(
        &self,
        prefix: &str,
        keep: impl Fn(&At) -> bool,
        added: &[Json],
    ) -> Result<usize> {
        let fail = |e: std::io::Error| {
            Error::retriable(format!(
                "rewriting the schema history {}: {e} (schema.history.internal.file.filename)",
                self.path.display()
            ))
        };
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(fail(e)),
        };
        let mut out = String::with_capacity(text.len());
        let mut dropped = 0;
        // A torn last line (no newline) is dropped with the rest of what a crash cut short.
        let complete = match text.rfind('\n') {
            Some(end) => &text[..=end],
            None => "",
        };
        for line in complete.lines().filter(|l| !l.trim().is_empty()) {
            // A line that is not JSON is nobody's record (a corrupted history being rebuilt).
            let kept = match serde_json::from_str::<Json>(line) {
                Err(_) => false,
                Ok(record) if record["source"]["server"].as_str() == Some(prefix) => {
                    entry_of(&record).is_some_and(|(at, _)| keep(&at))
                }
                Ok(_) => true,
            };
            if kept {
                out.push_str(line);
                out.push('\n');
            } else {
                dropped += 1;
            }
        }
        for record in added {
            out.push_str(&record.to_string());
            out.push('\n');
        }
        // A name of its own, so two rewrites cannot write into one file.
        let mut temporary = self.path.clone().into_os_string();
        temporary.push(format!(
            ".rewrite-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        ));
        let temporary = PathBuf::from(temporary);
        let mut file = std::fs::File::create(&temporary).map_err(fail)?;
        file.write_all(out.as_bytes()).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        std::fs::rename(&temporary, &self.path).map_err(fail)?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(fail)?;
        }
        Ok(dropped)
    }

    /// The records of server `prefix` (`source.server`), in order. A missing file is an empty
    /// history; a torn last line (a crash while appending) is left out.
    pub fn load(&self, prefix: &str) -> Result<Vec<(At, Entry)>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(Error::config(format!(
                    "reading the schema history {}: {e}",
                    self.path.display()
                )));
            }
        };
        let mut lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let torn = !text.ends_with('\n')
            && lines
                .last()
                .is_some_and(|last| serde_json::from_str::<Json>(last).is_err());
        if torn {
            lines.pop();
        }
        entries_of(lines, prefix, |i| {
            format!("the schema history {} line {}", self.path.display(), i + 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, data_type: &str, column_type: &str) -> ColumnInfo {
        ColumnInfo {
            nullable: false,
            ..ColumnInfo::plain(name, data_type, column_type)
        }
    }

    #[test]
    fn versions_round_trip_in_debeziums_layout() {
        let origin = Origin {
            prefix: "dbserver1".into(),
            at: At {
                file: "mariadb-bin.000002".into(),
                pos: 4711,
            },
            gtids: "0-1-42".into(),
            server_id: 1,
            ts_ms: 1_700_000_000_123,
        };
        let columns = vec![
            ColumnInfo {
                primary: true,
                ..column("id", "int", "int(10) unsigned")
            },
            column("flag", "tinyint", "tinyint(1)"),
            ColumnInfo {
                precision: Some(10),
                scale: Some(2),
                ..column("price", "decimal", "decimal(10,2)")
            },
            column("kind", "enum", "enum('a','b''c')"),
            ColumnInfo {
                fsp: 3,
                nullable: true,
                ..column("at", "datetime", "datetime")
            },
            ColumnInfo {
                charset: Some("latin1".into()),
                ..column("name", "varchar", "varchar(20)")
            },
        ];
        let record = version_record(
            &origin,
            "app",
            "t",
            "ALTER TABLE t ADD at datetime(3)",
            "ALTER",
            &columns,
        );
        assert_eq!(record["source"]["server"], "dbserver1");
        assert_eq!(record["position"]["file"], "mariadb-bin.000002");
        assert_eq!(record["position"]["pos"], 4711);
        assert_eq!(record["position"]["gtids"], "0-1-42");
        assert_eq!(record["position"]["ts_sec"], 1_700_000_000);
        assert_eq!(record["databaseName"], "app");
        let change = &record["tableChanges"][0];
        assert_eq!(change["type"], "ALTER");
        assert_eq!(change["id"], "\"app\".\"t\"");
        assert_eq!(change["table"]["primaryKeyColumnNames"], json!(["id"]));
        let id = &change["table"]["columns"][0];
        assert_eq!(id["typeName"], "INT UNSIGNED");
        assert_eq!(id["jdbcType"], 4);
        assert_eq!(id["position"], 1);
        assert_eq!(id["optional"], false);
        assert_eq!(
            change["table"]["columns"][3]["enumValues"],
            json!(["'a'", "'b''c'"])
        );
        let (at, entry) = entry_of(&record).unwrap();
        assert_eq!(at, origin.at);
        let Entry::Version {
            db,
            table,
            columns: back,
        } = entry
        else {
            panic!("a version")
        };
        assert_eq!((db.as_str(), table.as_str()), ("app", "t"));
        assert_eq!(back, columns);
    }

    #[test]
    fn a_file_keeps_its_server_s_records_and_survives_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let history = FileHistory::new(dir.path().join("history.jsonl"));
        assert!(history.load("a").unwrap().is_empty(), "no file: empty");
        let origin = |prefix: &str| Origin {
            prefix: prefix.into(),
            at: At {
                file: "b.000001".into(),
                pos: 4,
            },
            gtids: String::new(),
            server_id: 1,
            ts_ms: 0,
        };
        history
            .append(&ddl_record(&origin("a"), "app", "DROP TABLE t"))
            .unwrap();
        history
            .append(&ddl_record(&origin("other"), "app", "DROP TABLE u"))
            .unwrap();
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("history.jsonl"))
            .unwrap();
        file.write_all(b"{\"source\":{\"ser").unwrap();
        let dropped = |table: &str| {
            (
                origin("a").at,
                Entry::Ddl {
                    db: "app".into(),
                    ddl: format!("DROP TABLE {table}"),
                },
            )
        };
        assert_eq!(history.load("a").unwrap(), vec![dropped("t")]);
        // The next append cuts the torn line off instead of continuing it.
        history
            .append(&ddl_record(&origin("a"), "app", "DROP TABLE v"))
            .unwrap();
        assert_eq!(history.load("a").unwrap(), vec![dropped("t"), dropped("v")]);
    }

    /// Server `prefix`'s position `pos` of binlog `b.000001`.
    fn origin(prefix: &str, pos: u64) -> Origin {
        Origin {
            prefix: prefix.into(),
            at: At {
                file: "b.000001".into(),
                pos,
            },
            gtids: String::new(),
            server_id: 1,
            ts_ms: 0,
        }
    }

    /// `DROP TABLE table` read at `pos` by server `prefix`.
    fn drop_record(prefix: &str, pos: u64, table: &str) -> Json {
        ddl_record(&origin(prefix, pos), "app", &format!("DROP TABLE {table}"))
    }

    /// Two records of server `a` around one of another server.
    const THREE_DROPS: [(&str, u64, &str); 3] =
        [("a", 4, "t"), ("other", 900, "u"), ("a", 900, "v")];

    /// A history topic as the worker gives one: records in memory, in order.
    #[derive(Default)]
    struct MemoryTopic(std::sync::Mutex<Vec<String>>);

    #[async_trait::async_trait]
    impl HistoryTopic for MemoryTopic {
        fn topic(&self) -> &str {
            "history"
        }
        async fn read_all(&self) -> Result<Vec<String>> {
            Ok(self.0.lock().unwrap().clone())
        }
        async fn append(&self, record: String) -> Result<()> {
            self.0.lock().unwrap().push(record);
            Ok(())
        }
    }

    /// A topic cannot drop records: pruning keeps them, and a recovery's records are appended
    /// after the old ones. Reading them back drops what a later writing superseded (records past
    /// the position a restart wrote again from, and copies), as a pruned file would; a record
    /// that is not JSON is an error naming the topic and the record.
    #[tokio::test]
    async fn a_topic_keeps_every_record_and_names_a_bad_one() {
        let store = HistoryStore::Topic(Box::<MemoryTopic>::default());
        for (prefix, pos, table) in THREE_DROPS {
            store
                .append(&drop_record(prefix, pos, table))
                .await
                .unwrap();
        }
        let upto = At {
            file: "b.000001".into(),
            pos: 500,
        };
        assert_eq!(store.prune("a", &upto).await.unwrap(), 0);
        store
            .replace("a", &[ddl_record(&origin("a", 500), "app", "DROP TABLE w")])
            .await
            .unwrap();
        let ddls: Vec<(u64, String)> = store
            .load("a")
            .await
            .unwrap()
            .into_iter()
            .map(|(at, entry)| match entry {
                Entry::Ddl { ddl, .. } => (at.pos, ddl),
                Entry::Version { .. } => panic!("a DDL"),
            })
            .collect();
        assert_eq!(
            ddls,
            [
                (4, "DROP TABLE t".to_owned()),
                (500, "DROP TABLE w".to_owned())
            ]
        );
        // A copy at the same position (read again after a restart there) starts a second
        // writing of what followed it; different records at one position (a snapshot's
        // tables) all stay.
        let at_500 = || async {
            store
                .load("a")
                .await
                .unwrap()
                .into_iter()
                .filter(|(at, _)| at.pos == 500)
                .map(|(_, entry)| match entry {
                    Entry::Ddl { ddl, .. } => ddl,
                    Entry::Version { .. } => panic!("a DDL"),
                })
                .collect::<Vec<String>>()
        };
        store
            .append(&ddl_record(&origin("a", 500), "app", "DROP TABLE x"))
            .await
            .unwrap();
        assert_eq!(at_500().await, ["DROP TABLE w", "DROP TABLE x"]);
        store
            .append(&ddl_record(&origin("a", 500), "app", "DROP TABLE w"))
            .await
            .unwrap();
        // w, x, then w again: the second writing began at w's copy, so x goes too.
        assert_eq!(at_500().await, ["DROP TABLE w"]);
        let HistoryStore::Topic(topic) = &store else {
            unreachable!()
        };
        topic.append("not json".into()).await.unwrap();
        let error = store.load("a").await.unwrap_err().to_string();
        assert!(
            error.contains("the schema history topic history record 6 is not a history record"),
            "{error}"
        );
    }

    #[test]
    fn a_rewrite_drops_only_its_server_s_records_it_is_told_to_and_adds_after_them() {
        let dir = tempfile::tempdir().unwrap();
        let history = FileHistory::new(dir.path().join("history.jsonl"));
        for (prefix, pos, table) in THREE_DROPS {
            history.append(&drop_record(prefix, pos, table)).unwrap();
        }
        let upto = At {
            file: "b.000001".into(),
            pos: 500,
        };
        let added = ddl_record(&origin("a", 500), "app", "DROP TABLE w");
        assert_eq!(history.rewrite("a", |at| *at <= upto, &[added]).unwrap(), 1);
        let ddls = |prefix: &str| -> Vec<String> {
            history
                .load(prefix)
                .unwrap()
                .into_iter()
                .map(|(_, entry)| match entry {
                    Entry::Ddl { ddl, .. } => ddl,
                    Entry::Version { table, .. } => table,
                })
                .collect()
        };
        assert_eq!(ddls("a"), ["DROP TABLE t", "DROP TABLE w"]);
        assert_eq!(
            ddls("other"),
            ["DROP TABLE u"],
            "another server's records stay"
        );
    }
}
