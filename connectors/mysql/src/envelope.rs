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
pub struct SourceInfo<'a> {
    pub flavour: &'a str,
    pub prefix: &'a str,
    pub db: &'a str,
    pub table: &'a str,
    /// The event's time (the binlog event's, in seconds; the snapshot's start).
    pub ts_ms: i64,
    pub snapshot: &'a str,
    pub server_id: u32,
    pub gtid: Option<&'a str>,
    pub file: &'a str,
    pub pos: u64,
    pub row: i32,
    pub thread: Option<u32>,
}

/// The `source` value, in [`source_schema`]'s field order.
pub fn source_value(schema: &SchemaRef, info: &SourceInfo<'_>) -> Value {
    let values = vec![
        Value::String(Text::from_static(sluice_debezium::version::source_version())),
        Value::from(info.flavour),
        Value::from(info.prefix),
        Value::Int64(info.ts_ms),
        Value::from(info.snapshot),
        Value::from(info.db),
        Value::Null,
        Value::Int64(info.ts_ms.saturating_mul(1000)),
        Value::Int64(info.ts_ms.saturating_mul(1_000_000)),
        Value::from(info.table),
        Value::Int64(i64::from(info.server_id)),
        info.gtid.map(Value::from).unwrap_or(Value::Null),
        Value::from(info.file),
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
