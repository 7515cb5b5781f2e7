//! What the field transforms share: which part of a record they work on (`$Key` or
//! `$Value`), how to read a config, and struct/map helpers for schemaful and schemaless data.

use std::sync::Arc;

use sluice_api::config::{Config, ConfigDef, Props};
use sluice_api::data::{Field, Schema, SchemaRef, SchemaType, Struct, Value};
use sluice_api::record::Record;
use sluice_api::{Error, Result};

/// The record part a `$Key`/`$Value` transform works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Key,
    Value,
}

impl Part {
    /// Takes the part's value and schema out of the record.
    pub(crate) fn take(self, record: &mut Record) -> (Value, Option<SchemaRef>) {
        match self {
            Part::Key => (std::mem::take(&mut record.key), record.key_schema.take()),
            Part::Value => (
                std::mem::take(&mut record.value),
                record.value_schema.take(),
            ),
        }
    }

    /// Puts a value and schema back.
    pub(crate) fn put(self, record: &mut Record, value: Value, schema: Option<SchemaRef>) {
        match self {
            Part::Key => {
                record.key = value;
                record.key_schema = schema;
            }
            Part::Value => {
                record.value = value;
                record.value_schema = schema;
            }
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Part::Key => "key",
            Part::Value => "value",
        }
    }
}

/// Parses a transform's settings against its definition.
pub(crate) fn parse(def: ConfigDef, props: &Props) -> Result<Config> {
    Config::parse(def, props.clone())
}

/// A data error naming the transform and what it expected.
pub(crate) fn expected(transform: &str, part: Part, what: &str, found: &Value) -> Error {
    Error::data(format!(
        "{transform}: the record's {} must be {what}, found {}",
        part.name(),
        describe(found)
    ))
}

/// A short description of a value's kind, for errors.
pub(crate) fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Boolean(_) => "a boolean",
        Value::Int8(_) | Value::Int16(_) | Value::Int32(_) | Value::Int64(_) => "an integer",
        Value::Float32(_) | Value::Float64(_) => "a floating-point number",
        Value::String(_) => "a string",
        Value::Bytes(_) => "bytes",
        Value::Array(_) => "an array",
        Value::Map(_) => "a map",
        Value::Struct(_) => "a struct",
    }
}

/// A new struct schema with `schema`'s name, version, doc, parameters and optionality, and
/// the given fields.
pub(crate) fn struct_like(schema: &Schema, fields: Vec<Field>) -> SchemaRef {
    let mut out = Schema::of(SchemaType::Struct);
    out.name = schema.name.clone();
    out.version = schema.version;
    out.doc = schema.doc.clone();
    out.parameters = schema.parameters.clone();
    out.optional = schema.optional;
    out.fields = fields;
    Arc::new(out)
}

/// The entries of a schemaless map whose keys are strings.
pub(crate) fn map_get<'a>(entries: &'a [(Value, Value)], name: &str) -> Option<&'a Value> {
    entries
        .iter()
        .find(|(k, _)| k.as_str() == Some(name))
        .map(|(_, v)| v)
}

/// Sets (or adds) a schemaless map entry.
pub(crate) fn map_set(entries: &mut Vec<(Value, Value)>, name: &str, value: Value) {
    match entries.iter_mut().find(|(k, _)| k.as_str() == Some(name)) {
        Some(entry) => entry.1 = value,
        None => entries.push((Value::from(name), value)),
    }
}

/// A struct with `schema` and these values, in field order.
pub(crate) fn struct_of(schema: SchemaRef, values: Vec<Value>) -> Value {
    Value::Struct(Struct { schema, values })
}

/// Remembers the output schema built for the last input schema, so a transform builds each
/// new schema once per input schema rather than once per record. Interior mutability lets the
/// schema builder borrow the transform's settings while the cache is updated.
#[derive(Default)]
pub(crate) struct SchemaCache {
    last: std::cell::RefCell<Option<(SchemaRef, SchemaRef)>>,
}

impl SchemaCache {
    pub(crate) fn get_or(
        &self,
        input: &SchemaRef,
        build: impl FnOnce() -> Result<SchemaRef>,
    ) -> Result<SchemaRef> {
        if let Some((from, to)) = &*self.last.borrow()
            && (Arc::ptr_eq(from, input) || **from == **input)
        {
            return Ok(Arc::clone(to));
        }
        let built = build()?;
        *self.last.borrow_mut() = Some((Arc::clone(input), Arc::clone(&built)));
        Ok(built)
    }
}
