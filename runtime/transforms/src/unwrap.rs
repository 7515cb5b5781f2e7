//! Debezium's `io.debezium.transforms.ExtractNewRecordState`: a change event's envelope
//! becomes its row state (`after`), with deletes and tombstones handled as configured and
//! envelope/source fields optionally added as `__<field>` fields or headers.

use std::sync::Arc;

use sluice_api::config::{ConfigDef, ConfigKey, ConfigType, Importance, Props, Validator};
use sluice_api::data::{Field, Schema, SchemaRef, Struct, Value};
use sluice_api::record::{Header, Record};
use sluice_api::transform::Transform;
use sluice_api::{Error, Result};

use crate::part::{SchemaCache, map_get, map_set, parse, struct_like, struct_of};

pub(crate) fn extract_new_record_state_def() -> ConfigDef {
    ConfigDef::new()
        .key(ConfigKey::optional(
            "drop.tombstones",
            ConfigType::Boolean,
            "true",
            Importance::Medium,
            "Drop tombstones (deprecated by Debezium in favour of delete.tombstone.handling.mode).",
        ))
        .key(
            ConfigKey::optional(
                "delete.handling.mode",
                ConfigType::String,
                "drop",
                Importance::Medium,
                "drop, rewrite (add __deleted) or none (a null value); deprecated by Debezium in favour of delete.tombstone.handling.mode.",
            )
            .validate_with(Validator::OneOf(vec!["drop", "rewrite", "none"])),
        )
        .key(
            ConfigKey::optional(
                "delete.tombstone.handling.mode",
                ConfigType::String,
                "",
                Importance::Medium,
                "drop (deletes and tombstones), tombstone (drop deletes, keep tombstones), rewrite (__deleted field, drop tombstones), rewrite-with-tombstone; overrides the two keys above when set.",
            )
            .validate_with(Validator::OneOf(vec![
                "",
                "drop",
                "tombstone",
                "rewrite",
                "rewrite-with-tombstone",
            ])),
        )
        .key(ConfigKey::optional(
            "add.fields",
            ConfigType::List,
            "",
            Importance::Medium,
            "Envelope or source fields to add to the row (op, table, lsn, source.ts_ms, …).",
        ))
        .key(ConfigKey::optional(
            "add.fields.prefix",
            ConfigType::String,
            "__",
            Importance::Low,
            "Prefix of added fields.",
        ))
        .key(ConfigKey::optional(
            "add.headers",
            ConfigType::List,
            "",
            Importance::Medium,
            "Envelope or source fields to add as headers.",
        ))
        .key(ConfigKey::optional(
            "add.headers.prefix",
            ConfigType::String,
            "__",
            Importance::Low,
            "Prefix of added headers.",
        ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deletes {
    Drop,
    Rewrite,
    Null,
}

/// One `add.fields`/`add.headers` entry: where to read it and the name it gets.
struct Addition {
    /// `Some("source")` for `source.ts_ms`; `None` looks in the envelope, then in `source`.
    within: Option<String>,
    field: String,
    name: String,
}

impl Addition {
    fn parse(entry: &str, prefix: &str) -> Addition {
        let (within, field) = match entry.split_once('.') {
            Some((within, field)) => (Some(within.to_owned()), field.to_owned()),
            None => (None, entry.to_owned()),
        };
        Addition {
            name: format!("{prefix}{}", entry.replace('.', "_")),
            within,
            field,
        }
    }

    /// The field's value and schema in a struct envelope.
    fn read_struct(&self, envelope: &Struct) -> Option<(Value, SchemaRef)> {
        let lookup = |s: &Struct, name: &str| -> Option<(Value, SchemaRef)> {
            let index = s.schema.field_index(name)?;
            Some((
                s.values[index].clone(),
                Arc::clone(&s.schema.fields[index].schema),
            ))
        };
        let nested = |within: &str| match envelope.get(within) {
            Some(Value::Struct(inner)) => lookup(inner, &self.field),
            _ => None,
        };
        match &self.within {
            Some(within) => nested(within),
            None => lookup(envelope, &self.field).or_else(|| nested("source")),
        }
    }

    /// The field's value in a schemaless envelope.
    fn read_map(&self, envelope: &[(Value, Value)]) -> Value {
        let nested = |within: &str| match map_get(envelope, within) {
            Some(Value::Map(inner)) => map_get(inner, &self.field).cloned(),
            _ => None,
        };
        match &self.within {
            Some(within) => nested(within),
            None => map_get(envelope, &self.field)
                .cloned()
                .or_else(|| nested("source")),
        }
        .unwrap_or_default()
    }
}

pub(crate) struct ExtractNewRecordState {
    deletes: Deletes,
    keep_tombstones: bool,
    fields: Vec<Addition>,
    headers: Vec<Addition>,
    cache: SchemaCache,
}

impl ExtractNewRecordState {
    pub(crate) fn create(props: &Props) -> Result<Box<dyn Transform>> {
        let config = parse(extract_new_record_state_def(), props)?;
        let (deletes, keep_tombstones) =
            match config.string("delete.tombstone.handling.mode")?.as_str() {
                "drop" => (Deletes::Drop, false),
                "tombstone" => (Deletes::Drop, true),
                "rewrite" => (Deletes::Rewrite, false),
                "rewrite-with-tombstone" => (Deletes::Rewrite, true),
                _ => (
                    match config.string("delete.handling.mode")?.as_str() {
                        "rewrite" => Deletes::Rewrite,
                        "none" => Deletes::Null,
                        _ => Deletes::Drop,
                    },
                    !config.bool("drop.tombstones")?,
                ),
            };
        let field_prefix = config.string("add.fields.prefix")?;
        let header_prefix = config.string("add.headers.prefix")?;
        Ok(Box::new(ExtractNewRecordState {
            deletes,
            keep_tombstones,
            fields: config
                .list("add.fields")
                .iter()
                .map(|e| Addition::parse(e, &field_prefix))
                .collect(),
            headers: config
                .list("add.headers")
                .iter()
                .map(|e| Addition::parse(e, &header_prefix))
                .collect(),
            cache: SchemaCache::default(),
        }))
    }

    fn deleted_name(&self) -> String {
        "__deleted".to_owned()
    }

    /// The row schema with the added fields (optional, as their values may be missing).
    fn row_schema(&self, envelope: &Struct, row: &SchemaRef) -> SchemaRef {
        let mut fields = row.fields.clone();
        for addition in &self.fields {
            let schema = addition
                .read_struct(envelope)
                .map(|(_, s)| s)
                .unwrap_or_else(|| Arc::new(Schema::string()));
            let mut schema = (*schema).clone();
            schema.optional = true;
            fields.push(Field {
                name: addition.name.clone(),
                schema: Arc::new(schema),
            });
        }
        if self.deletes == Deletes::Rewrite {
            fields.push(Field {
                name: self.deleted_name(),
                schema: Arc::new(Schema::string().optional()),
            });
        }
        struct_like(row, fields)
    }

    fn unwrap_struct(&mut self, record: &mut Record, envelope: Struct, op: &str) -> Result<bool> {
        let deleted = op == "d";
        let state_field = if deleted { "before" } else { "after" };
        for addition in &self.headers {
            let (value, schema) = addition
                .read_struct(&envelope)
                .map(|(v, s)| (v, Some(s)))
                .unwrap_or((Value::Null, None));
            record.headers.push(Header {
                key: addition.name.as_str().into(),
                value,
                schema,
            });
        }
        let index = envelope.schema.field_index(state_field).ok_or_else(|| {
            Error::data(format!(
                "ExtractNewRecordState: the envelope has no `{state_field}` field"
            ))
        })?;
        let row_schema = Arc::clone(&envelope.schema.fields[index].schema);
        let row = match &envelope.values[index] {
            Value::Struct(row) => row.clone(),
            _ => Struct::new(Arc::clone(&row_schema)),
        };
        let schema = self.cache.get_or(&envelope.schema, || {
            Ok(self.row_schema(&envelope, &row_schema))
        })?;
        let mut values = row.values;
        for addition in &self.fields {
            values.push(
                addition
                    .read_struct(&envelope)
                    .map(|(v, _)| v)
                    .unwrap_or_default(),
            );
        }
        if self.deletes == Deletes::Rewrite {
            values.push(Value::from(if deleted { "true" } else { "false" }));
        }
        record.value = struct_of(Arc::clone(&schema), values);
        record.value_schema = Some(schema);
        Ok(true)
    }

    fn unwrap_map(&self, record: &mut Record, envelope: Vec<(Value, Value)>, op: &str) {
        let deleted = op == "d";
        for addition in &self.headers {
            record.headers.push(Header {
                key: addition.name.as_str().into(),
                value: addition.read_map(&envelope),
                schema: None,
            });
        }
        let state = map_get(&envelope, if deleted { "before" } else { "after" }).cloned();
        let mut row = match state {
            Some(Value::Map(row)) => row,
            _ => Vec::new(),
        };
        for addition in &self.fields {
            map_set(&mut row, &addition.name, addition.read_map(&envelope));
        }
        if self.deletes == Deletes::Rewrite {
            map_set(
                &mut row,
                &self.deleted_name(),
                Value::from(if deleted { "true" } else { "false" }),
            );
        }
        record.value = Value::Map(row);
        record.value_schema = None;
    }
}

/// The `op` of a change-event envelope; `None` for anything else (transaction metadata,
/// logical messages, heartbeats), which passes through untouched.
fn envelope_op(value: &Value) -> Option<String> {
    match value {
        Value::Struct(s) if s.schema.field_index("after").is_some() => {
            s.get("op").and_then(Value::as_str).map(str::to_owned)
        }
        Value::Map(entries) if map_get(entries, "after").is_some() => map_get(entries, "op")
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    }
}

impl Transform for ExtractNewRecordState {
    fn apply(&mut self, mut record: Record, out: &mut Vec<Record>) -> Result<()> {
        if record.value.is_null() {
            if self.keep_tombstones {
                out.push(record);
            }
            return Ok(());
        }
        let Some(op) = envelope_op(&record.value) else {
            out.push(record);
            return Ok(());
        };
        match op.as_str() {
            // A truncate has no row state to extract.
            "t" => return Ok(()),
            "d" if self.deletes == Deletes::Drop => return Ok(()),
            "d" if self.deletes == Deletes::Null => {
                record.value = Value::Null;
                record.value_schema = None;
                out.push(record);
                return Ok(());
            }
            _ => {}
        }
        match std::mem::take(&mut record.value) {
            Value::Struct(envelope) => {
                self.unwrap_struct(&mut record, envelope, &op)?;
            }
            Value::Map(envelope) => self.unwrap_map(&mut record, envelope, &op),
            _ => unreachable!("envelope_op matched a struct or a map"),
        }
        out.push(record);
        Ok(())
    }
}

/// The envelope's field schema type, for tests of schema consistency.
#[cfg(test)]
pub(crate) fn field_type(schema: &Schema, name: &str) -> Option<sluice_api::data::SchemaType> {
    schema
        .field_index(name)
        .map(|i| schema.fields[i].schema.schema_type)
}
