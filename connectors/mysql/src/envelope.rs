//! Debezium's MySQL change event: the envelope and the `source` block
//! (`io.debezium.connector.mysql.Source`, or `…mariadb.Source` for the MariaDB connector).

use std::sync::Arc;

use sluice_api::data::{Schema, SchemaRef, SchemaType, Struct, Value};

/// The `source` schema of connector flavour `mysql` or `mariadb`.
pub fn source_schema(flavour: &str) -> SchemaRef {
    let string = || Schema::string().into_ref();
    let optional_string = || Schema::string().optional().into_ref();
    let int64 = || Schema::of(SchemaType::Int64).into_ref();
    let optional_int64 = || Schema::of(SchemaType::Int64).optional().into_ref();
    let mut snapshot = Schema::string()
        .optional()
        .named("io.debezium.data.Enum")
        .versioned(1)
        .parameter(
            "allowed",
            "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental",
        );
    snapshot.default = Some(Value::from("false"));
    Schema::struct_named(format!("io.debezium.connector.{flavour}.Source"))
        .versioned(1)
        .field("version", string())
        .field("connector", string())
        .field("name", string())
        .field("ts_ms", int64())
        .field("snapshot", snapshot.into_ref())
        .field("db", string())
        .field("sequence", optional_string())
        .field("ts_us", optional_int64())
        .field("ts_ns", optional_int64())
        .field("table", optional_string())
        .field("server_id", int64())
        .field("gtid", optional_string())
        .field("file", string())
        .field("pos", int64())
        .field("row", Schema::of(SchemaType::Int32).into_ref())
        .field("thread", optional_int64())
        .field("query", optional_string())
        .into_ref()
}

/// The envelope schema (version 2) over a table's row schema.
pub fn envelope_schema(name: &str, row: &SchemaRef, source: &SchemaRef) -> SchemaRef {
    Schema::struct_named(name)
        .versioned(2)
        .field("before", Arc::clone(row))
        .field("after", Arc::clone(row))
        .field("source", Arc::clone(source))
        .field("transaction", sluice_debezium_block())
        .field("op", Schema::string().into_ref())
        .field("ts_ms", Schema::of(SchemaType::Int64).optional().into_ref())
        .field("ts_us", Schema::of(SchemaType::Int64).optional().into_ref())
        .field("ts_ns", Schema::of(SchemaType::Int64).optional().into_ref())
        .into_ref()
}

fn sluice_debezium_block() -> SchemaRef {
    Schema::struct_named("event.block")
        .versioned(1)
        .field("id", Schema::string().into_ref())
        .field("total_order", Schema::of(SchemaType::Int64).into_ref())
        .field(
            "data_collection_order",
            Schema::of(SchemaType::Int64).into_ref(),
        )
        .optional()
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
        Value::from(sluice_debezium::version::source_version()),
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

/// An envelope value; `ts_*` are the processing time.
pub fn envelope_value(
    schema: &SchemaRef,
    before: Value,
    after: Value,
    source: Value,
    op: &str,
) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default();
    Value::Struct(Struct {
        schema: Arc::clone(schema),
        values: vec![
            before,
            after,
            source,
            Value::Null,
            Value::from(op),
            Value::Int64(now / 1000),
            Value::Int64(now),
            Value::Int64(now.saturating_mul(1000)),
        ],
    })
}
