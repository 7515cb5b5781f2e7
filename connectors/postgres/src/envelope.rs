//! Debezium's change-event envelope for Postgres: key struct, value struct with `before`,
//! `after`, `source`, `op`, `ts_ms`/`ts_us`/`ts_ns`, and their Connect schemas (named as
//! Debezium names them, so JsonConverter output matches).

use std::sync::Arc;

use sluice_api::Result;
use sluice_api::data::{Schema, SchemaRef, SchemaType, Struct, Value};
use sluice_api::record::{Record, SourceOffset, SourcePartition, SourceRecord};

use crate::pgoutput::Column;
use crate::types::{ColumnType, ValueModes, column_schema, column_value};

/// The value of `source.version`.
pub const DEBEZIUM_COMPAT_VERSION: &str = concat!("sluice-", env!("CARGO_PKG_VERSION"));

/// One captured column.
#[derive(Debug, Clone)]
pub struct TableColumn {
    pub name: String,
    pub column_type: ColumnType,
    pub key: bool,
    /// False for a column left out by `column.include.list`/`column.exclude.list`.
    pub emitted: bool,
}

/// A table's schemas, built once per relation (and again when its columns change).
#[derive(Debug, Clone)]
pub struct TableSchema {
    pub schema: String,
    pub table: String,
    pub topic: String,
    pub columns: Vec<TableColumn>,
    pub key: Option<SchemaRef>,
    pub row: SchemaRef,
    pub envelope: SchemaRef,
    /// False for a table the schema/table filters leave out (its changes are dropped).
    pub captured: bool,
    column_schemas: Vec<SchemaRef>,
    /// Each column's field in the row struct (`None`: not emitted).
    fields: Vec<Option<usize>>,
    modes: ValueModes,
}

/// Debezium's `io.debezium.connector.postgresql.Source` schema.
pub fn source_schema() -> SchemaRef {
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
    Schema::struct_named("io.debezium.connector.postgresql.Source")
        .field("version", string())
        .field("connector", string())
        .field("name", string())
        .field("ts_ms", int64())
        .field("snapshot", snapshot.into_ref())
        .field("db", string())
        .field("sequence", optional_string())
        .field("ts_us", optional_int64())
        .field("ts_ns", optional_int64())
        .field("schema", string())
        .field("table", string())
        .field("txId", optional_int64())
        .field("lsn", optional_int64())
        .field("xmin", optional_int64())
        .into_ref()
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

impl TableSchema {
    /// Builds the schemas of `schema.table` for topic prefix `prefix`.
    pub fn new(
        prefix: &str,
        schema: &str,
        table: &str,
        columns: Vec<TableColumn>,
        modes: ValueModes,
        source: &SchemaRef,
    ) -> TableSchema {
        let base = format!("{prefix}.{schema}.{table}");
        let column_schemas: Vec<SchemaRef> = columns
            .iter()
            .map(|c| column_schema(&c.column_type, modes, c.key))
            .collect();
        let mut row = Schema::struct_named(format!("{base}.Value")).optional();
        let mut key = Schema::struct_named(format!("{base}.Key"));
        let mut fields = Vec::with_capacity(columns.len());
        let mut emitted = 0;
        for (column, schema) in columns.iter().zip(&column_schemas) {
            if !column.emitted && !column.key {
                fields.push(None);
                continue;
            }
            fields.push(Some(emitted));
            emitted += 1;
            row = row.field(&column.name, Arc::clone(schema));
            if column.key {
                key = key.field(&column.name, Arc::clone(schema));
            }
        }
        let row = row.into_ref();
        let envelope = Schema::struct_named(format!("{base}.Envelope"))
            .versioned(2)
            .field("before", Arc::clone(&row))
            .field("after", Arc::clone(&row))
            .field("source", Arc::clone(source))
            .field("transaction", transaction_schema())
            .field("op", Schema::string().into_ref())
            .field("ts_ms", Schema::of(SchemaType::Int64).optional().into_ref())
            .field("ts_us", Schema::of(SchemaType::Int64).optional().into_ref())
            .field("ts_ns", Schema::of(SchemaType::Int64).optional().into_ref())
            .into_ref();
        TableSchema {
            schema: schema.to_owned(),
            table: table.to_owned(),
            topic: base,
            key: (!key.fields.is_empty()).then(|| key.into_ref()),
            row,
            envelope,
            captured: true,
            column_schemas,
            fields,
            columns,
            modes,
        }
    }

    /// A row value from pgoutput columns (text form). Unchanged TOAST values become
    /// `__debezium_unavailable_value` for text-like columns, as Debezium does.
    pub fn row(&self, tuple: &[Column]) -> Result<Value> {
        let mut row = Struct::new(Arc::clone(&self.row));
        for (index, column) in self.columns.iter().enumerate() {
            let Some(field) = self.fields[index] else {
                continue;
            };
            let value = match tuple.get(index) {
                None | Some(Column::Null) => Value::Null,
                Some(Column::UnchangedToast) => match self.column_schemas[index].schema_type {
                    SchemaType::String => Value::from("__debezium_unavailable_value"),
                    SchemaType::Bytes => Value::Bytes(b"__debezium_unavailable_value".to_vec()),
                    _ => Value::Null,
                },
                Some(Column::Text(bytes)) | Some(Column::Binary(bytes)) => {
                    let text = match std::str::from_utf8(bytes) {
                        Ok(text) => std::borrow::Cow::Borrowed(text),
                        Err(_) => String::from_utf8_lossy(bytes),
                    };
                    column_value(
                        &column.column_type,
                        self.modes,
                        &self.column_schemas[index],
                        &text,
                    )
                    .map_err(|e| {
                        e.context(format!(
                            "{}.{} column {}",
                            self.schema, self.table, column.name
                        ))
                    })?
                }
            };
            row.values[field] = value;
        }
        Ok(Value::Struct(row))
    }

    /// A source record of this table: `value` (an envelope, or null for a tombstone) under
    /// `key`, stamped with the event time.
    pub fn source_record(
        &self,
        key: Value,
        value: Value,
        partition: &Arc<SourcePartition>,
        offset: SourceOffset,
        micros: i64,
    ) -> SourceRecord {
        let mut record = Record::new(&self.topic, value, Some(Arc::clone(&self.envelope)));
        record.key_schema = if key.is_null() {
            None
        } else {
            self.key.clone()
        };
        record.key = key;
        record.timestamp_ms = Some(micros / 1000);
        SourceRecord {
            record,
            source_partition: Arc::clone(partition),
            source_offset: offset,
        }
    }

    /// The key of a row value (the key columns), or null for a table without a key.
    pub fn key_of(&self, row: &Value) -> Value {
        let (Some(key_schema), Value::Struct(row)) = (&self.key, row) else {
            return Value::Null;
        };
        let mut key = Struct::new(Arc::clone(key_schema));
        for (index, field) in key_schema.fields.iter().enumerate() {
            key.values[index] = row.get(&field.name).cloned().unwrap_or_default();
        }
        Value::Struct(key)
    }

    /// The envelope value.
    pub fn envelope(
        &self,
        before: Value,
        after: Value,
        source: Value,
        op: &str,
        ts_micros: i64,
    ) -> Value {
        // In the envelope schema's field order: before, after, source, transaction, op, ts_*.
        Value::Struct(Struct {
            schema: Arc::clone(&self.envelope),
            values: vec![
                before,
                after,
                source,
                Value::Null,
                Value::from(op),
                Value::Int64(ts_micros / 1000),
                Value::Int64(ts_micros),
                Value::Int64(ts_micros.saturating_mul(1000)),
            ],
        })
    }
}

/// What goes into `source`.
#[derive(Debug, Clone)]
pub struct SourceInfo<'a> {
    pub prefix: &'a str,
    pub db: &'a str,
    pub schema: &'a str,
    pub table: &'a str,
    pub commit_micros: i64,
    pub snapshot: &'a str,
    pub tx_id: Option<u32>,
    pub lsn: Option<u64>,
    pub last_commit_lsn: Option<u64>,
}

/// The `source` block. Built field by field in the order of [`source_schema`] (it runs for
/// every event, so no look-ups by name).
pub fn source_value(schema: &SchemaRef, info: &SourceInfo<'_>) -> Value {
    let text = |l: Option<u64>| {
        l.map(|l| format!("\"{l}\""))
            .unwrap_or_else(|| "null".into())
    };
    let sequence = format!("[{},{}]", text(info.last_commit_lsn), text(info.lsn));
    let values = vec![
        Value::from(DEBEZIUM_COMPAT_VERSION),
        Value::from("postgresql"),
        Value::from(info.prefix),
        Value::Int64(info.commit_micros / 1000),
        Value::from(info.snapshot),
        Value::from(info.db),
        Value::String(sequence),
        Value::Int64(info.commit_micros),
        Value::Int64(info.commit_micros.saturating_mul(1000)),
        Value::from(info.schema),
        Value::from(info.table),
        info.tx_id
            .map(|x| Value::Int64(i64::from(x)))
            .unwrap_or(Value::Null),
        info.lsn
            .map(|l| Value::Int64(l as i64))
            .unwrap_or(Value::Null),
        Value::Null,
    ];
    debug_assert_eq!(values.len(), schema.fields.len());
    Value::Struct(Struct {
        schema: Arc::clone(schema),
        values,
    })
}
