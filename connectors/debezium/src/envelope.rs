//! Debezium's change-event envelope as both connectors build it: the `source` block's common
//! fields, the `transaction` block, the envelope schema and value, and the snapshot marker.

use std::sync::Arc;

use sluice_api::data::{Schema, SchemaRef, SchemaType, Struct, Text, Value};
use sluice_api::record::SourceRecord;

/// The `source` schema named `name` with the fields every Debezium connector's source block
/// starts with (`version` … `ts_ns`, `snapshot` as Debezium's `Enum` defaulting to `false`);
/// the connector adds its own fields after them.
pub fn source_schema_builder(name: &str) -> Schema {
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
    Schema::struct_named(name)
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
}

/// Debezium's `transaction` block of a change event (`event.block`).
pub fn transaction_schema() -> SchemaRef {
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

/// The envelope schema (version 2) named `name` over a table's row schema.
pub fn envelope_schema(name: &str, row: &SchemaRef, source: &SchemaRef) -> SchemaRef {
    Schema::struct_named(name)
        .versioned(2)
        .field("before", Arc::clone(row))
        .field("after", Arc::clone(row))
        .field("source", Arc::clone(source))
        .field("transaction", transaction_schema())
        .field("op", Schema::string().into_ref())
        .field("ts_ms", Schema::of(SchemaType::Int64).optional().into_ref())
        .field("ts_us", Schema::of(SchemaType::Int64).optional().into_ref())
        .field("ts_ns", Schema::of(SchemaType::Int64).optional().into_ref())
        .into_ref()
}

/// An envelope value of [`envelope_schema`]; `ts_ms`/`ts_us`/`ts_ns` are when it is built
/// (the processing time; the change's own time is `source.ts_*`).
pub fn envelope_value(
    schema: &SchemaRef,
    before: Value,
    after: Value,
    source: Value,
    op: &'static str,
) -> Value {
    envelope_value_at(schema, before, after, source, op, now_micros())
}

/// Microseconds since the Unix epoch, now.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default()
}

/// [`envelope_value`] processed at `now` (microseconds since the Unix epoch): for a run of
/// events built within microseconds of each other, which read the clock once.
pub fn envelope_value_at(
    schema: &SchemaRef,
    before: Value,
    after: Value,
    source: Value,
    op: &'static str,
    now: i64,
) -> Value {
    // In the envelope schema's field order: before, after, source, transaction, op, ts_*.
    Value::Struct(Struct {
        schema: Arc::clone(schema),
        values: vec![
            before,
            after,
            source,
            Value::Null,
            Value::String(Text::from_static(op)),
            Value::Int64(now / 1000),
            Value::Int64(now),
            Value::Int64(now.saturating_mul(1000)),
        ],
    })
}

/// Sets a change event's `source.snapshot` (`first`, `last_in_data_collection`, `last`, …).
pub fn mark_snapshot(record: &mut SourceRecord, marker: &str) {
    if let Value::Struct(envelope) = &mut record.record.value
        && let Some(Value::Struct(mut source)) = envelope.get("source").cloned()
    {
        let _ = source.put("snapshot", Value::from(marker));
        let _ = envelope.put("source", Value::Struct(source));
    }
}
