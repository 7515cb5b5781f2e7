//! Debezium's MySQL change event: the envelope and the `source` block
//! (`io.debezium.connector.mysql.Source`, or `…mariadb.Source` for the MariaDB connector).

use std::sync::Arc;

use sluice_api::data::{Schema, SchemaRef, SchemaType, Struct, Text, Value};
use sluice_debezium::envelope::source_schema_builder;

/// The `source` schema of connector flavour `mysql` or `mariadb`.
pub fn source_schema(flavour: &str) -> SchemaRef {
    let optional_string = || Schema::string().optional().into_ref();
    let optional_int64 = || Schema::of(SchemaType::Int64).optional().into_ref();
    source_schema_builder(&format!("io.debezium.connector.{flavour}.Source"))
        .field("table", optional_string())
        .field("server_id", Schema::of(SchemaType::Int64).into_ref())
        .field("gtid", optional_string())
        .field("file", Schema::string().into_ref())
        .field("pos", Schema::of(SchemaType::Int64).into_ref())
        .field("row", Schema::of(SchemaType::Int32).into_ref())
        .field("thread", optional_int64())
        .field("query", optional_string())
        .into_ref()
}

/// What goes into `source`.
#[derive(Debug, Clone)]
pub struct SourceInfo {
    pub flavour: &'static str,
    /// The names, as [`SourceNames`] (interned: every event of a table carries them).
    pub names: SourceNames,
    /// The event's time (the binlog event's, in seconds; the snapshot's start).
    pub ts_ms: i64,
    pub snapshot: &'static str,
    pub server_id: u32,
    pub gtid: Option<Text>,
    pub file: Text,
    pub pos: u64,
    pub row: i32,
    pub thread: Option<u32>,
}

/// The names in a table's `source` blocks: `topic.prefix`, database and table.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceNames {
    pub prefix: Text,
    pub db: Text,
    pub table: Text,
}

impl SourceNames {
    /// Names kept once for the process ([`Text::interned`]), for a table's every event.
    pub fn interned(prefix: &str, db: &str, table: &str) -> SourceNames {
        SourceNames {
            prefix: Text::interned(prefix),
            db: Text::interned(db),
            table: Text::interned(table),
        }
    }

    /// Names for a single event (a schema change, a truncate).
    pub fn owned(prefix: &str, db: &str, table: &str) -> SourceNames {
        SourceNames {
            prefix: prefix.into(),
            db: db.into(),
            table: table.into(),
        }
    }
}

/// The `source` value, in [`source_schema`]'s field order.
pub fn source_value(schema: &SchemaRef, info: &SourceInfo) -> Value {
    let values = vec![
        Value::String(Text::from_static(sluice_debezium::version::source_version())),
        Value::String(Text::from_static(info.flavour)),
        Value::String(info.names.prefix.clone()),
        Value::Int64(info.ts_ms),
        Value::String(Text::from_static(info.snapshot)),
        Value::String(info.names.db.clone()),
        Value::Null,
        Value::Int64(info.ts_ms.saturating_mul(1000)),
        Value::Int64(info.ts_ms.saturating_mul(1_000_000)),
        Value::String(info.names.table.clone()),
        Value::Int64(i64::from(info.server_id)),
        info.gtid.clone().map(Value::String).unwrap_or(Value::Null),
        Value::String(info.file.clone()),
        Value::Int64(info.pos as i64),
        Value::Int32(info.row),
        info.thread
            .map(|t| Value::Int64(i64::from(t)))
            .unwrap_or(Value::Null),
        Value::Null,
    ];
    debug_assert_eq!(values.len(), schema.fields.len());
    Value::Struct(Struct {
        schema: Arc::clone(schema),
        values,
    })
}
