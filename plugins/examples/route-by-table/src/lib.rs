//! Routes Debezium change events by table: the topic becomes `<prefix><table>` (the table from
//! `source.table`, or from an unwrapped row's `__table`). Other records keep their topic.
//!
//! Config: `prefix` (default `table.`).

use sluice_plugin::{Config, Json, Record};

fn apply(mut record: Record, config: &Config) -> Result<Vec<Record>, String> {
    let value = record.value.get();
    let table = value
        .and_then(|v| v.get("source"))
        .and_then(|s| s.get("table"))
        .or_else(|| value.and_then(|v| v.get("__table")))
        .and_then(Json::as_str);
    if let Some(table) = table {
        let prefix = config.get("prefix").map(String::as_str).unwrap_or("table.");
        record.topic = format!("{prefix}{table}");
    }
    Ok(vec![record])
}

sluice_plugin::transform!(apply);
