//! Debezium's change-event envelope for Postgres: key struct, value struct with `before`,
//! `after`, `source`, `op`, `ts_ms`/`ts_us`/`ts_ns`, and their Connect schemas (named as
//! Debezium names them, so JsonConverter output matches).

use std::sync::Arc;

use sluice_api::Result;
use sluice_api::data::{Schema, SchemaRef, SchemaType, Struct, Text, Value};
use sluice_api::record::{Record, SourceOffset, SourcePartition, SourceRecord};
use sluice_debezium::columns::{ColumnFacts, ColumnRule};
use sluice_debezium::envelope::{envelope_schema, envelope_value, source_schema_builder};
use sluice_debezium::headers::ContextHeaders;

use crate::binary_types::binary_column_value;
use crate::config::PostgresConfig;
use crate::pgoutput::Column;
use crate::types::{
    ColumnType, Shape, ValueModes, column_schema, column_value, declared_length, default_value,
    fallback_value, is_character, source_length_and_scale,
};

/// One captured column, with what the catalog says of it.
#[derive(Debug, Clone)]
pub struct TableColumn {
    pub name: String,
    pub column_type: ColumnType,
    /// Part of the primary key (or, without one, of the replica identity).
    pub key: bool,
    /// False for a column left out by `column.include.list`/`column.exclude.list`.
    pub emitted: bool,
    /// False for a `NOT NULL` column.
    pub optional: bool,
    /// The catalog's default expression (`pg_get_expr`), if any.
    pub default_expression: Option<String>,
    /// The type's name in `pg_type` (`varchar`, `int4`, a domain's or enum's name).
    pub type_name: String,
}

/// A table's schemas, built once per relation (and again when its columns change).
#[derive(Debug, Clone)]
pub struct TableSchema {
    pub schema: String,
    pub table: String,
    /// Interned: every record of the table carries it.
    pub topic: Text,
    pub columns: Vec<TableColumn>,
    pub key: Option<SchemaRef>,
    pub row: SchemaRef,
    pub envelope: SchemaRef,
    /// False for a table the schema/table filters leave out (its changes are dropped).
    pub captured: bool,
    column_schemas: Vec<SchemaRef>,
    /// Each column's field in the row struct (`None`: not emitted).
    fields: Vec<Option<usize>>,
    /// Each column's masking/truncation rule.
    rules: Vec<ColumnRule>,
    /// The event key: which row fields, in key order.
    key_fields: Vec<usize>,
    modes: ValueModes,
    /// `__debezium.context.*` headers (`extended.headers.enabled`).
    context: Option<Arc<ContextHeaders>>,
}

/// The value-modes and defaults a column's schema gets: its type's schema, optional unless
/// `NOT NULL`, with the catalog default as Debezium reads it.
fn field_schema(column: &TableColumn, modes: ValueModes) -> Schema {
    let base = column_schema(&column.column_type, modes, !column.optional);
    let mut schema = (*base).clone();
    schema.default = column
        .default_expression
        .as_deref()
        .and_then(|expression| default_value(&column.column_type, modes, &base, expression));
    schema
}

/// Debezium's `io.debezium.connector.postgresql.Source` schema.
pub fn source_schema() -> SchemaRef {
    let string = || Schema::string().into_ref();
    let optional_int64 = || Schema::of(SchemaType::Int64).optional().into_ref();
    source_schema_builder("io.debezium.connector.postgresql.Source")
        .field("schema", string())
        .field("table", string())
        .field("txId", optional_int64())
        .field("lsn", optional_int64())
        .field("xmin", optional_int64())
        .into_ref()
}

impl TableSchema {
    /// Builds the schemas of `schema.table` under `config` (topic prefix, value modes, key
    /// columns, column rules, name adjustment, headers).
    pub fn new(
        config: &PostgresConfig,
        schema: &str,
        table: &str,
        columns: Vec<TableColumn>,
        source: &SchemaRef,
    ) -> TableSchema {
        let events = &config.events;
        let modes = config.value_modes();
        let base = format!("{}.{schema}.{table}", config.topic_prefix);
        let qualified_table = format!("{schema}.{table}");
        let key_override = events.key_columns.for_table(&qualified_table);
        let is_key = |column: &TableColumn| match key_override {
            Some(names) => names.iter().any(|n| n == &column.name),
            None => column.key,
        };
        let adjusted = |name: &str| events.schema_names.schema_name(name);
        let mut row = Schema::struct_named(adjusted(&format!("{base}.Value"))).optional();
        let mut key_schemas: Vec<(String, usize, SchemaRef)> = Vec::new();
        let mut column_schemas = Vec::with_capacity(columns.len());
        let mut fields = Vec::with_capacity(columns.len());
        let mut rules = Vec::with_capacity(columns.len());
        let mut emitted = 0;
        for column in &columns {
            let field = field_schema(column, modes);
            let key = is_key(column);
            let unknown = column.column_type.shape == Shape::Unknown && !events.include_unknown;
            let rule = if key {
                ColumnRule::None
            } else {
                events.columns.for_column(ColumnFacts {
                    qualified: &format!("{qualified_table}.{}", column.name),
                    table: &qualified_table,
                    type_name: &column.type_name,
                    character: is_character(&column.column_type),
                    length: declared_length(&column.column_type),
                })
            };
            let mut value_field = field.clone();
            if let Some((name, value)) = rule.schema_parameter() {
                value_field = value_field.parameter(name, value);
            }
            if matches!(rule, ColumnRule::PropagateSourceType) {
                value_field = value_field.parameter(
                    "__debezium.source.column.type",
                    column.type_name.to_uppercase(),
                );
                if let Some((length, scale)) = source_length_and_scale(&column.column_type) {
                    value_field = value_field
                        .parameter("__debezium.source.column.length", length.to_string())
                        .parameter("__debezium.source.column.scale", scale.to_string());
                }
                value_field = value_field.parameter("__debezium.source.column.name", &column.name);
            }
            let value_field = Arc::new(value_field);
            column_schemas.push(Arc::clone(&value_field));
            rules.push(rule);
            if unknown || (!column.emitted && !key) {
                fields.push(None);
                continue;
            }
            let field_name = events.field_names.field_name(&column.name);
            fields.push(Some(emitted));
            if key {
                key_schemas.push((column.name.clone(), emitted, Arc::new(field.clone())));
            }
            emitted += 1;
            row = row.field(&field_name, value_field);
        }
        if let Some(names) = key_override {
            key_schemas.sort_by_key(|(name, ..)| names.iter().position(|n| n == name));
        }
        let key_fields = key_schemas.iter().map(|(_, field, _)| *field).collect();
        let key = (!key_schemas.is_empty()).then(|| {
            key_schemas
                .into_iter()
                .fold(
                    Schema::struct_named(adjusted(&format!("{base}.Key"))),
                    |key, (name, _, schema)| {
                        key.field(events.field_names.field_name(&name), schema)
                    },
                )
                .into_ref()
        });
        let row = row.into_ref();
        let envelope = envelope_schema(&adjusted(&format!("{base}.Envelope")), &row, source);
        TableSchema {
            schema: schema.to_owned(),
            table: table.to_owned(),
            topic: Text::interned(&base),
            key,
            row,
            envelope,
            captured: true,
            column_schemas,
            fields,
            rules,
            key_fields,
            columns,
            modes,
            context: events.extended_headers.then(|| {
                Arc::new(ContextHeaders::new(
                    &config.topic_prefix,
                    config.task_id,
                    "postgresql",
                ))
            }),
        }
    }

    /// A row value from pgoutput columns (text form). Unchanged TOAST values become
    /// `__debezium_unavailable_value` for text-like columns, as Debezium does; a `NOT NULL`
    /// column the tuple does not carry (a key-only old tuple) takes its fallback value.
    pub fn row(&self, tuple: &[Column]) -> Result<Value> {
        self.row_from(|index| match tuple.get(index) {
            None | Some(Column::Null) => ColumnData::Null,
            Some(Column::UnchangedToast) => ColumnData::UnchangedToast,
            Some(Column::Text(bytes)) | Some(Column::Binary(bytes)) => ColumnData::Text(bytes),
        })
    }

    /// A row value from each column's data in relation order, borrowed from wherever the
    /// caller decoded it (a pgoutput tuple, a `COPY` line), so no copy is made per field.
    pub fn row_from<'a>(&self, column_data: impl Fn(usize) -> ColumnData<'a>) -> Result<Value> {
        let mut row = Struct::new(Arc::clone(&self.row));
        for (index, column) in self.columns.iter().enumerate() {
            let Some(field) = self.fields[index] else {
                continue;
            };
            let schema = &self.column_schemas[index];
            let value = match column_data(index) {
                ColumnData::Null if !schema.optional => fallback_value(schema),
                ColumnData::Null => Value::Null,
                ColumnData::UnchangedToast => match schema.schema_type {
                    SchemaType::String => Value::from("__debezium_unavailable_value"),
                    SchemaType::Bytes => Value::Bytes(b"__debezium_unavailable_value".to_vec()),
                    _ => Value::Null,
                },
                ColumnData::Binary(bytes) => {
                    binary_column_value(&column.column_type, self.modes, bytes).map_err(|e| {
                        e.context(format!(
                            "{}.{} column {}",
                            self.schema, self.table, column.name
                        ))
                    })?
                }
                ColumnData::Text(bytes) => {
                    let text = match std::str::from_utf8(bytes) {
                        Ok(text) => std::borrow::Cow::Borrowed(text),
                        Err(_) => String::from_utf8_lossy(bytes),
                    };
                    column_value(&column.column_type, self.modes, schema, &text).map_err(|e| {
                        e.context(format!(
                            "{}.{} column {}",
                            self.schema, self.table, column.name
                        ))
                    })?
                }
            };
            let rule = &self.rules[index];
            row.values[field] = if rule.is_identity() {
                value
            } else {
                rule.apply(value)
            };
        }
        Ok(Value::Struct(row))
    }

    /// A source record of this table: `value` (an envelope, or null for a tombstone) under
    /// `key`, stamped with the event time and the context headers.
    pub fn source_record(
        &self,
        key: Value,
        value: Value,
        partition: &Arc<SourcePartition>,
        offset: SourceOffset,
        micros: i64,
    ) -> SourceRecord {
        let mut record = Record::new(self.topic.clone(), value, Some(Arc::clone(&self.envelope)));
        if record.value.is_null() {
            record.value_schema = None;
        }
        record.key_schema = if key.is_null() {
            None
        } else {
            self.key.clone()
        };
        record.key = key;
        record.timestamp_ms = Some(micros / 1000);
        if let Some(context) = &self.context {
            context.stamp(&mut record);
        }
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
        Value::Struct(Struct {
            schema: Arc::clone(key_schema),
            values: self
                .key_fields
                .iter()
                .map(|field| row.values.get(*field).cloned().unwrap_or_default())
                .collect(),
        })
    }

    /// The envelope value; `ts_ms`/`ts_us`/`ts_ns` are when sluice processed the event (the
    /// commit time is `source.ts_*`), so `ts_ms - source.ts_ms` is the event's lag.
    pub fn envelope(&self, before: Value, after: Value, source: Value, op: &'static str) -> Value {
        envelope_value(&self.envelope, before, after, source, op)
    }

    /// [`Self::envelope`] processed at `now` (microseconds since the Unix epoch).
    pub fn envelope_at(
        &self,
        before: Value,
        after: Value,
        source: Value,
        op: &'static str,
        now: i64,
    ) -> Value {
        sluice_debezium::envelope::envelope_value_at(&self.envelope, before, after, source, op, now)
    }
}

/// One column of a row as [`TableSchema::row_from`] reads it.
#[derive(Debug, Clone, Copy)]
pub enum ColumnData<'a> {
    /// SQL NULL, or a column the row does not carry.
    Null,
    /// A TOASTed value that did not change, so the server did not send it.
    UnchangedToast,
    /// The value's text form (UTF-8).
    Text(&'a [u8]),
    /// The value's binary form, of a type [`crate::binary_types`] reads.
    Binary(&'a [u8]),
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
    pub tx_id: Option<i64>,
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
        Value::String(Text::from_static(sluice_debezium::version::source_version())),
        Value::String(Text::from_static("postgresql")),
        Value::from(info.prefix),
        Value::Int64(info.commit_micros / 1000),
        Value::from(info.snapshot),
        Value::from(info.db),
        Value::from(sequence),
        Value::Int64(info.commit_micros),
        Value::Int64(info.commit_micros.saturating_mul(1000)),
        Value::from(info.schema),
        Value::from(info.table),
        info.tx_id.map(Value::Int64).unwrap_or(Value::Null),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::oid;
    use sluice_api::config::props;

    fn column(name: &str, type_oid: u32, modifier: i32, type_name: &str, key: bool) -> TableColumn {
        TableColumn {
            name: name.to_owned(),
            column_type: ColumnType::scalar(type_oid, modifier),
            key,
            emitted: true,
            optional: !key,
            default_expression: None,
            type_name: type_name.to_owned(),
        }
    }

    fn text(value: &str) -> Column {
        Column::Text(value.as_bytes().to_vec())
    }

    #[test]
    fn column_rules_key_columns_and_name_adjustment_shape_the_schemas_and_rows() {
        let config = PostgresConfig::from_props(&props(&[
            ("database.hostname", "db"),
            ("database.user", "u"),
            ("database.dbname", "d"),
            ("topic.prefix", "my-server"),
            ("message.key.columns", "public.orders:email"),
            ("column.mask.with.3.chars", "public.orders.secret"),
            (
                "column.mask.hash.SHA-256.with.salt.CzQMA0cB5K",
                "public.orders.hashed",
            ),
            ("column.propagate.source.type", "public.orders.price"),
            ("field.name.adjustment.mode", "avro"),
            ("schema.name.adjustment.mode", "avro"),
            ("binary.handling.mode", "hex"),
        ]))
        .unwrap();
        let columns = vec![
            column("id", oid::INT4, -1, "int4", true),
            column("email", oid::VARCHAR, 4 + 50, "varchar", false),
            column("secret", oid::TEXT, -1, "text", false),
            column("hashed", oid::VARCHAR, 4 + 20, "varchar", false),
            column(
                "price",
                oid::NUMERIC,
                ((10 << 16) | 2) + 4,
                "numeric",
                false,
            ),
            column("raw-bytes", oid::BYTEA, -1, "bytea", false),
        ];
        let table = TableSchema::new(&config, "public", "orders", columns, &source_schema());
        assert_eq!(
            table.topic, "my-server.public.orders",
            "topics keep their names"
        );
        assert_eq!(
            table.row.name.as_deref(),
            Some("my_server.public.orders.Value")
        );
        let key = table.key.as_ref().unwrap();
        assert_eq!(key.name.as_deref(), Some("my_server.public.orders.Key"));
        let key_fields: Vec<&str> = key.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            key_fields,
            ["email"],
            "message.key.columns replaces the primary key"
        );
        assert!(
            key.fields[0].schema.optional,
            "a nullable key column is an optional key field"
        );
        let field = |name: &str| {
            table
                .row
                .fields
                .iter()
                .find(|f| f.name == name)
                .unwrap_or_else(|| panic!("no field {name}"))
                .schema
                .clone()
        };
        assert!(
            field("raw_bytes").schema_type == SchemaType::String,
            "hex binary, avro field name"
        );
        assert_eq!(
            field("price").parameters,
            [
                ("scale".to_owned(), "2".to_owned()),
                ("connect.decimal.precision".to_owned(), "10".to_owned()),
                (
                    "__debezium.source.column.type".to_owned(),
                    "NUMERIC".to_owned()
                ),
                (
                    "__debezium.source.column.length".to_owned(),
                    "10".to_owned()
                ),
                ("__debezium.source.column.scale".to_owned(), "2".to_owned()),
                (
                    "__debezium.source.column.name".to_owned(),
                    "price".to_owned()
                ),
            ]
        );
        assert_eq!(
            field("secret").parameters,
            [("masked".to_owned(), "true".to_owned())]
        );
        let row = table
            .row(&[
                text("1"),
                text("a@b.c"),
                Column::Null,
                text("test"),
                text("12.50"),
                text("\\x00ff"),
            ])
            .unwrap();
        let Value::Struct(values) = &row else {
            panic!()
        };
        assert_eq!(
            values.get("secret"),
            Some(&Value::from("***")),
            "null is masked too"
        );
        assert_eq!(
            values.get("hashed"),
            Some(&Value::from("8e68c68edbbac316dfe2"))
        );
        assert_eq!(values.get("raw_bytes"), Some(&Value::from("00ff")));
        let Value::Struct(key) = table.key_of(&row) else {
            panic!()
        };
        assert_eq!(key.get("email"), Some(&Value::from("a@b.c")));
    }
}
