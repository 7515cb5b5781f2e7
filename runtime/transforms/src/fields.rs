//! Kafka Connect's field transforms: InsertField, ReplaceField, MaskField, ValueToKey,
//! ExtractField, HoistField, Flatten and Cast. Each works on schemaful values (structs, whose
//! schema it rewrites consistently) and schemaless ones (maps with string keys).

use std::sync::Arc;

use sluice_api::config::{ConfigDef, ConfigKey, ConfigType, Importance, Props};
use sluice_api::data::{Field, Schema, SchemaRef, SchemaType, Struct, Text, Value};
use sluice_api::record::Record;
use sluice_api::transform::Transform;
use sluice_api::{Error, Result};

use crate::part::{
    Part, SchemaCache, describe, expected, map_get, map_set, parse, struct_like, struct_of,
};

fn list_key(name: &str, doc: &str) -> ConfigKey {
    ConfigKey::optional(name, ConfigType::List, "", Importance::Medium, doc)
}

fn string_key(name: &str, doc: &str) -> ConfigKey {
    ConfigKey::optional(name, ConfigType::String, "", Importance::Medium, doc)
}

// ---------------------------------------------------------------------------------------------
// InsertField

/// `InsertField$Key` / `$Value`: adds the record's topic, partition, offset, timestamp and/or a
/// static value as fields. A field name ending in `!` is required, `?` (the default) optional.
pub(crate) fn insert_field_def() -> ConfigDef {
    ConfigDef::new()
        .key(string_key("topic.field", "Field for the topic."))
        .key(string_key(
            "partition.field",
            "Field for the Kafka partition.",
        ))
        .key(string_key(
            "offset.field",
            "Field for the Kafka offset (sink records).",
        ))
        .key(string_key(
            "timestamp.field",
            "Field for the record timestamp.",
        ))
        .key(string_key("static.field", "Field for a static value."))
        .key(string_key("static.value", "The static value."))
}

struct InsertSpec {
    name: String,
    required: bool,
}

impl InsertSpec {
    fn parse(text: &str) -> Option<InsertSpec> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        let (name, required) = match text.strip_suffix('!') {
            Some(name) => (name, true),
            None => (text.strip_suffix('?').unwrap_or(text), false),
        };
        Some(InsertSpec {
            name: name.to_owned(),
            required,
        })
    }

    fn schema(&self, schema_type: SchemaType, name: Option<&str>) -> SchemaRef {
        let mut schema = Schema::of(schema_type);
        schema.name = name.map(str::to_owned);
        if name.is_some() {
            schema.version = Some(1);
        }
        schema.optional = !self.required;
        Arc::new(schema)
    }
}

pub(crate) struct InsertField {
    part: Part,
    topic: Option<InsertSpec>,
    partition: Option<InsertSpec>,
    offset: Option<InsertSpec>,
    timestamp: Option<InsertSpec>,
    static_field: Option<InsertSpec>,
    static_value: String,
    cache: SchemaCache,
}

impl InsertField {
    pub(crate) fn create(props: &Props, part: Part) -> Result<Box<dyn Transform>> {
        let config = parse(insert_field_def(), props)?;
        let spec = |key: &str| config.get(key).and_then(InsertSpec::parse);
        let transform = InsertField {
            part,
            topic: spec("topic.field"),
            partition: spec("partition.field"),
            offset: spec("offset.field"),
            timestamp: spec("timestamp.field"),
            static_field: spec("static.field"),
            static_value: config.string("static.value")?,
            cache: SchemaCache::default(),
        };
        if transform.additions(&Record::default()).is_empty() {
            return Err(Error::config(
                "InsertField: set at least one of topic.field, partition.field, offset.field, timestamp.field, static.field",
            ));
        }
        Ok(Box::new(transform))
    }

    /// (spec, value, schema type, logical name) of every field to add.
    fn additions(
        &self,
        record: &Record,
    ) -> Vec<(&InsertSpec, Value, SchemaType, Option<&'static str>)> {
        let mut out = Vec::new();
        if let Some(spec) = &self.topic {
            out.push((
                spec,
                Value::from(record.topic.as_str()),
                SchemaType::String,
                None,
            ));
        }
        if let Some(spec) = &self.partition {
            let value = record.partition.map(Value::Int32).unwrap_or(Value::Null);
            out.push((spec, value, SchemaType::Int32, None));
        }
        if let Some(spec) = &self.offset {
            // Source-side records have no Kafka offset yet; Kafka Connect rejects the field
            // there, sluice leaves it null.
            out.push((spec, Value::Null, SchemaType::Int64, None));
        }
        if let Some(spec) = &self.timestamp {
            let value = record.timestamp_ms.map(Value::Int64).unwrap_or(Value::Null);
            out.push((
                spec,
                value,
                SchemaType::Int64,
                Some("org.apache.kafka.connect.data.Timestamp"),
            ));
        }
        if let Some(spec) = &self.static_field {
            out.push((
                spec,
                Value::from(self.static_value.as_str()),
                SchemaType::String,
                None,
            ));
        }
        out
    }
}

impl Transform for InsertField {
    fn apply(&mut self, mut record: Record, out: &mut Vec<Record>) -> Result<()> {
        let (value, schema) = self.part.take(&mut record);
        let additions = self.additions(&record);
        let (value, schema) = match (value, schema) {
            (Value::Null, schema) => (Value::Null, schema), // tombstones pass unchanged
            (Value::Struct(s), Some(schema)) => {
                let new_schema = self.cache.get_or(&schema, || {
                    let mut fields = schema.fields.clone();
                    for (spec, _, schema_type, name) in &additions {
                        fields.push(Field {
                            name: spec.name.clone(),
                            schema: spec.schema(*schema_type, *name),
                        });
                    }
                    Ok(struct_like(&schema, fields))
                })?;
                let mut values = s.values;
                for (spec, value, _, _) in additions {
                    if spec.required && value.is_null() {
                        return Err(Error::data(format!(
                            "InsertField: required field `{}` has no value for this record",
                            spec.name
                        )));
                    }
                    values.push(value);
                }
                (struct_of(Arc::clone(&new_schema), values), Some(new_schema))
            }
            (Value::Map(mut entries), None) => {
                for (spec, value, _, _) in additions {
                    map_set(&mut entries, &spec.name, value);
                }
                (Value::Map(entries), None)
            }
            (other, _) => {
                return Err(expected(
                    "InsertField",
                    self.part,
                    "a struct (with a schema) or a map (without one)",
                    &other,
                ));
            }
        };
        self.part.put(&mut record, value, schema);
        out.push(record);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// ReplaceField

/// `ReplaceField$Key` / `$Value`: keeps only `include`, drops `exclude`, renames `a:b`.
pub(crate) fn replace_field_def() -> ConfigDef {
    ConfigDef::new()
        .key(list_key("exclude", "Fields to drop."))
        .key(list_key(
            "include",
            "Fields to keep (all when empty); exclude wins.",
        ))
        .key(list_key(
            "renames",
            "Renames as old:new pairs, e.g. `foo:bar,abc:xyz`.",
        ))
}

pub(crate) struct ReplaceField {
    part: Part,
    exclude: Vec<String>,
    include: Vec<String>,
    renames: Vec<(String, String)>,
    cache: SchemaCache,
}

impl ReplaceField {
    pub(crate) fn create(props: &Props, part: Part) -> Result<Box<dyn Transform>> {
        let config = parse(replace_field_def(), props)?;
        let renames = config
            .list("renames")
            .into_iter()
            .map(|pair| match pair.split_once(':') {
                Some((from, to)) if !from.is_empty() && !to.is_empty() => {
                    Ok((from.to_owned(), to.to_owned()))
                }
                _ => Err(Error::config(format!(
                    "ReplaceField: `renames` entry `{pair}` must be old:new"
                ))),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Box::new(ReplaceField {
            part,
            exclude: config.list("exclude"),
            include: config.list("include"),
            renames,
            cache: SchemaCache::default(),
        }))
    }

    fn keeps(&self, name: &str) -> bool {
        !self.exclude.iter().any(|e| e == name)
            && (self.include.is_empty() || self.include.iter().any(|i| i == name))
    }

    fn renamed<'a>(&'a self, name: &'a str) -> &'a str {
        self.renames
            .iter()
            .find(|(from, _)| from == name)
            .map(|(_, to)| to.as_str())
            .unwrap_or(name)
    }
}

impl Transform for ReplaceField {
    fn apply(&mut self, mut record: Record, out: &mut Vec<Record>) -> Result<()> {
        let (value, schema) = self.part.take(&mut record);
        let (value, schema) = match (value, schema) {
            (Value::Null, schema) => (Value::Null, schema),
            (Value::Struct(s), Some(schema)) => {
                let new_schema = self.cache.get_or(&schema, || {
                    let fields = schema
                        .fields
                        .iter()
                        .filter(|f| self.keeps(&f.name))
                        .map(|f| Field {
                            name: self.renamed(&f.name).to_owned(),
                            schema: Arc::clone(&f.schema),
                        })
                        .collect();
                    Ok(struct_like(&schema, fields))
                })?;
                let values = schema
                    .fields
                    .iter()
                    .zip(s.values)
                    .filter(|(f, _)| self.keeps(&f.name))
                    .map(|(_, v)| v)
                    .collect();
                (struct_of(Arc::clone(&new_schema), values), Some(new_schema))
            }
            (Value::Map(entries), None) => {
                let entries = entries
                    .into_iter()
                    .filter(|(k, _)| k.as_str().is_none_or(|k| self.keeps(k)))
                    .map(|(k, v)| match k.as_str() {
                        Some(name) => (Value::from(self.renamed(name)), v),
                        None => (k, v),
                    })
                    .collect();
                (Value::Map(entries), None)
            }
            (other, _) => {
                return Err(expected(
                    "ReplaceField",
                    self.part,
                    "a struct or a map",
                    &other,
                ));
            }
        };
        self.part.put(&mut record, value, schema);
        out.push(record);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// MaskField

/// `MaskField$Key` / `$Value`: replaces `fields` with their type's empty value (0, false,
/// "", empty bytes/array/map) or with `replacement`.
pub(crate) fn mask_field_def() -> ConfigDef {
    ConfigDef::new()
        .key(ConfigKey::required(
            "fields",
            ConfigType::List,
            Importance::High,
            "Fields to mask.",
        ))
        .key(ConfigKey::optional(
            "replacement",
            ConfigType::String,
            "",
            Importance::Low,
            "Replacement for masked values (numbers and strings); empty: the type's empty value.",
        ))
}

pub(crate) struct MaskField {
    part: Part,
    fields: Vec<String>,
    replacement: Option<String>,
}

impl MaskField {
    pub(crate) fn create(props: &Props, part: Part) -> Result<Box<dyn Transform>> {
        let config = parse(mask_field_def(), props)?;
        let replacement = Some(config.string("replacement")?).filter(|r| !r.is_empty());
        Ok(Box::new(MaskField {
            part,
            fields: config.list("fields"),
            replacement,
        }))
    }

    fn masked(&self, field: &str, value: &Value) -> Result<Value> {
        let bad = |what: &str| {
            Error::data(format!(
                "MaskField: `replacement` cannot stand for field `{field}`, which holds {what}"
            ))
        };
        Ok(match (value, &self.replacement) {
            (Value::Null, _) => Value::Null,
            (Value::String(_), Some(r)) => Value::from(r.as_str()),
            (Value::String(_), None) => Value::String(Text::default()),
            (Value::Boolean(_), _) => Value::Boolean(false),
            (Value::Int8(_), r) => Value::Int8(parse_or_zero(r, || bad("an int8"))?),
            (Value::Int16(_), r) => Value::Int16(parse_or_zero(r, || bad("an int16"))?),
            (Value::Int32(_), r) => Value::Int32(parse_or_zero(r, || bad("an int32"))?),
            (Value::Int64(_), r) => Value::Int64(parse_or_zero(r, || bad("an int64"))?),
            (Value::Float32(_), r) => Value::Float32(parse_or_zero(r, || bad("a float"))?),
            (Value::Float64(_), r) => Value::Float64(parse_or_zero(r, || bad("a double"))?),
            (Value::Bytes(_), None) => Value::Bytes(Vec::new()),
            (Value::Array(_), None) => Value::Array(Vec::new()),
            (Value::Map(_), None) => Value::Map(Vec::new()),
            (other, Some(_)) => return Err(bad(describe(other))),
            (other, None) => {
                return Err(Error::data(format!(
                    "MaskField: field `{field}` holds {}, which cannot be masked",
                    describe(other)
                )));
            }
        })
    }
}

fn parse_or_zero<T: std::str::FromStr + Default>(
    replacement: &Option<String>,
    bad: impl Fn() -> Error,
) -> Result<T> {
    match replacement {
        None => Ok(T::default()),
        Some(r) => r.trim().parse().map_err(|_| bad()),
    }
}

impl Transform for MaskField {
    fn apply(&mut self, mut record: Record, out: &mut Vec<Record>) -> Result<()> {
        let (value, schema) = self.part.take(&mut record);
        let value = match value {
            Value::Null => Value::Null,
            Value::Struct(mut s) => {
                for field in &self.fields {
                    if let Some(index) = s.schema.field_index(field) {
                        s.values[index] = self.masked(field, &s.values[index])?;
                    }
                }
                Value::Struct(s)
            }
            Value::Map(mut entries) => {
                for field in &self.fields {
                    if let Some((_, v)) =
                        entries.iter_mut().find(|(k, _)| k.as_str() == Some(field))
                    {
                        *v = self.masked(field, v)?;
                    }
                }
                Value::Map(entries)
            }
            other => {
                return Err(expected(
                    "MaskField",
                    self.part,
                    "a struct or a map",
                    &other,
                ));
            }
        };
        self.part.put(&mut record, value, schema);
        out.push(record);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// ValueToKey

/// `ValueToKey`: the key becomes a struct (or map) of the value's `fields`.
pub(crate) fn value_to_key_def() -> ConfigDef {
    ConfigDef::new().key(ConfigKey::required(
        "fields",
        ConfigType::List,
        Importance::High,
        "Value fields that make up the key.",
    ))
}

pub(crate) struct ValueToKey {
    fields: Vec<String>,
    cache: SchemaCache,
}

impl ValueToKey {
    pub(crate) fn create(props: &Props) -> Result<Box<dyn Transform>> {
        let config = parse(value_to_key_def(), props)?;
        Ok(Box::new(ValueToKey {
            fields: config.list("fields"),
            cache: SchemaCache::default(),
        }))
    }
}

impl Transform for ValueToKey {
    fn apply(&mut self, mut record: Record, out: &mut Vec<Record>) -> Result<()> {
        match (&record.value, &record.value_schema) {
            (Value::Struct(s), Some(schema)) => {
                let key_schema = self.cache.get_or(schema, || {
                    let mut key = Schema::of(SchemaType::Struct);
                    for name in &self.fields {
                        let index = schema.field_index(name).ok_or_else(|| {
                            Error::data(format!("ValueToKey: the value has no field `{name}`"))
                        })?;
                        key.fields.push(schema.fields[index].clone());
                    }
                    Ok(Arc::new(key))
                })?;
                let values = self
                    .fields
                    .iter()
                    .map(|name| s.get(name).cloned().unwrap_or_default())
                    .collect();
                record.key = struct_of(Arc::clone(&key_schema), values);
                record.key_schema = Some(key_schema);
            }
            (Value::Map(entries), None) => {
                let key = self
                    .fields
                    .iter()
                    .map(|name| {
                        (
                            Value::from(name.as_str()),
                            map_get(entries, name).cloned().unwrap_or_default(),
                        )
                    })
                    .collect();
                record.key = Value::Map(key);
                record.key_schema = None;
            }
            (other, _) => {
                return Err(expected(
                    "ValueToKey",
                    Part::Value,
                    "a struct or a map",
                    other,
                ));
            }
        }
        out.push(record);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// ExtractField / HoistField

/// `ExtractField$Key` / `$Value`: the key or value becomes one of its fields.
pub(crate) fn extract_field_def() -> ConfigDef {
    ConfigDef::new().key(ConfigKey::required(
        "field",
        ConfigType::String,
        Importance::Medium,
        "Field to extract.",
    ))
}

pub(crate) struct ExtractField {
    part: Part,
    field: String,
}

impl ExtractField {
    pub(crate) fn create(props: &Props, part: Part) -> Result<Box<dyn Transform>> {
        let config = parse(extract_field_def(), props)?;
        Ok(Box::new(ExtractField {
            part,
            field: config.string("field")?,
        }))
    }
}

impl Transform for ExtractField {
    fn apply(&mut self, mut record: Record, out: &mut Vec<Record>) -> Result<()> {
        let (value, schema) = self.part.take(&mut record);
        let (value, schema) = match (value, schema) {
            (Value::Null, schema) => (Value::Null, schema),
            (Value::Struct(mut s), Some(schema)) => {
                let index = schema.field_index(&self.field).ok_or_else(|| {
                    Error::data(format!(
                        "ExtractField: the {} has no field `{}`",
                        self.part.name(),
                        self.field
                    ))
                })?;
                let field_schema = Arc::clone(&schema.fields[index].schema);
                (std::mem::take(&mut s.values[index]), Some(field_schema))
            }
            (Value::Map(entries), None) => {
                let value = entries
                    .into_iter()
                    .find(|(k, _)| k.as_str() == Some(&self.field))
                    .map(|(_, v)| v)
                    .unwrap_or_default();
                (value, None)
            }
            (other, _) => {
                return Err(expected(
                    "ExtractField",
                    self.part,
                    "a struct or a map",
                    &other,
                ));
            }
        };
        self.part.put(&mut record, value, schema);
        out.push(record);
        Ok(())
    }
}

/// `HoistField$Key` / `$Value`: wraps the key or value in a struct (or map) under `field`.
pub(crate) fn hoist_field_def() -> ConfigDef {
    ConfigDef::new().key(ConfigKey::required(
        "field",
        ConfigType::String,
        Importance::Medium,
        "Field name for the wrapped value.",
    ))
}

pub(crate) struct HoistField {
    part: Part,
    field: String,
    cache: SchemaCache,
}

impl HoistField {
    pub(crate) fn create(props: &Props, part: Part) -> Result<Box<dyn Transform>> {
        let config = parse(hoist_field_def(), props)?;
        Ok(Box::new(HoistField {
            part,
            field: config.string("field")?,
            cache: SchemaCache::default(),
        }))
    }
}

impl Transform for HoistField {
    fn apply(&mut self, mut record: Record, out: &mut Vec<Record>) -> Result<()> {
        let (value, schema) = self.part.take(&mut record);
        let (value, schema) = match schema {
            Some(schema) => {
                let wrapper = self.cache.get_or(&schema, || {
                    Ok(Arc::new(
                        Schema::of(SchemaType::Struct)
                            .field(self.field.clone(), Arc::clone(&schema)),
                    ))
                })?;
                (struct_of(Arc::clone(&wrapper), vec![value]), Some(wrapper))
            }
            None => (
                Value::Map(vec![(Value::from(self.field.as_str()), value)]),
                None,
            ),
        };
        self.part.put(&mut record, value, schema);
        out.push(record);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Flatten

/// `Flatten$Key` / `$Value`: nested structs (or maps) become top-level fields named
/// `outer<delimiter>inner`.
pub(crate) fn flatten_def() -> ConfigDef {
    ConfigDef::new().key(ConfigKey::optional(
        "delimiter",
        ConfigType::String,
        ".",
        Importance::Medium,
        "Between the names of nested fields.",
    ))
}

pub(crate) struct Flatten {
    part: Part,
    delimiter: String,
    cache: SchemaCache,
}

impl Flatten {
    pub(crate) fn create(props: &Props, part: Part) -> Result<Box<dyn Transform>> {
        let config = parse(flatten_def(), props)?;
        Ok(Box::new(Flatten {
            part,
            delimiter: config.string("delimiter")?,
            cache: SchemaCache::default(),
        }))
    }

    fn flat_fields(&self, prefix: &str, schema: &Schema, optional: bool, out: &mut Vec<Field>) {
        for field in &schema.fields {
            let name = self.join(prefix, &field.name);
            if field.schema.schema_type == SchemaType::Struct {
                self.flat_fields(&name, &field.schema, optional || field.schema.optional, out);
            } else {
                let mut field_schema = (*field.schema).clone();
                field_schema.optional |= optional;
                out.push(Field {
                    name,
                    schema: Arc::new(field_schema),
                });
            }
        }
    }

    fn flat_values(&self, schema: &Schema, value: Option<Struct>, out: &mut Vec<Value>) {
        for (index, field) in schema.fields.iter().enumerate() {
            let inner = value.as_ref().map(|s| s.values[index].clone());
            if field.schema.schema_type == SchemaType::Struct {
                let nested = match inner {
                    Some(Value::Struct(s)) => Some(s),
                    _ => None,
                };
                self.flat_values(&field.schema, nested, out);
            } else {
                out.push(inner.unwrap_or_default());
            }
        }
    }

    fn flat_map(&self, prefix: &str, entries: Vec<(Value, Value)>, out: &mut Vec<(Value, Value)>) {
        for (key, value) in entries {
            let name = self.join(prefix, key.as_str().unwrap_or_default());
            match value {
                Value::Map(inner) => self.flat_map(&name, inner, out),
                other => out.push((Value::from(name), other)),
            }
        }
    }

    fn join(&self, prefix: &str, name: &str) -> String {
        if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}{}{name}", self.delimiter)
        }
    }
}

impl Transform for Flatten {
    fn apply(&mut self, mut record: Record, out: &mut Vec<Record>) -> Result<()> {
        let (value, schema) = self.part.take(&mut record);
        let (value, schema) = match (value, schema) {
            (Value::Null, schema) => (Value::Null, schema),
            (Value::Struct(s), Some(schema)) => {
                let flat = self.cache.get_or(&schema, || {
                    let mut fields = Vec::new();
                    self.flat_fields("", &schema, false, &mut fields);
                    Ok(struct_like(&schema, fields))
                })?;
                let mut values = Vec::with_capacity(flat.fields.len());
                self.flat_values(&schema, Some(s), &mut values);
                (struct_of(Arc::clone(&flat), values), Some(flat))
            }
            (Value::Map(entries), None) => {
                let mut flat = Vec::new();
                self.flat_map("", entries, &mut flat);
                (Value::Map(flat), None)
            }
            (other, _) => {
                return Err(expected("Flatten", self.part, "a struct or a map", &other));
            }
        };
        self.part.put(&mut record, value, schema);
        out.push(record);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Cast

/// `Cast$Key` / `$Value`: `spec` is `field:type,…`, or one type for the whole key/value.
/// Types: int8, int16, int32, int64, float32, float64, boolean, string.
pub(crate) fn cast_def() -> ConfigDef {
    ConfigDef::new().key(ConfigKey::required(
        "spec",
        ConfigType::List,
        Importance::High,
        "field:type pairs, or a single type for the whole key/value.",
    ))
}

pub(crate) struct Cast {
    part: Part,
    whole: Option<SchemaType>,
    fields: Vec<(String, SchemaType)>,
    cache: SchemaCache,
}

fn cast_type(name: &str) -> Result<SchemaType> {
    Ok(match name.trim() {
        "int8" => SchemaType::Int8,
        "int16" => SchemaType::Int16,
        "int32" => SchemaType::Int32,
        "int64" => SchemaType::Int64,
        "float32" => SchemaType::Float32,
        "float64" => SchemaType::Float64,
        "boolean" => SchemaType::Boolean,
        "string" => SchemaType::String,
        other => {
            return Err(Error::config(format!(
                "Cast: `{other}` is not a type Cast converts to; use int8, int16, int32, int64, float32, float64, boolean or string"
            )));
        }
    })
}

impl Cast {
    pub(crate) fn create(props: &Props, part: Part) -> Result<Box<dyn Transform>> {
        let config = parse(cast_def(), props)?;
        let spec = config.list("spec");
        let mut whole = None;
        let mut fields = Vec::new();
        for entry in &spec {
            match entry.split_once(':') {
                Some((field, to)) => fields.push((field.trim().to_owned(), cast_type(to)?)),
                None if spec.len() == 1 => whole = Some(cast_type(entry)?),
                None => {
                    return Err(Error::config(format!(
                        "Cast: `spec` entry `{entry}` must be field:type (a bare type only as the whole spec)"
                    )));
                }
            }
        }
        Ok(Box::new(Cast {
            part,
            whole,
            fields,
            cache: SchemaCache::default(),
        }))
    }

    fn target(&self, field: &str) -> Option<SchemaType> {
        self.fields
            .iter()
            .find(|(name, _)| name == field)
            .map(|(_, t)| *t)
    }
}

/// Converts a primitive value to `to`, as Kafka Connect's Cast does.
pub(crate) fn cast_value(value: Value, to: SchemaType) -> Result<Value> {
    let number = |v: &Value| -> Option<f64> {
        Some(match v {
            Value::Int8(n) => f64::from(*n),
            Value::Int16(n) => f64::from(*n),
            Value::Int32(n) => f64::from(*n),
            Value::Int64(n) => *n as f64,
            Value::Float32(n) => f64::from(*n),
            Value::Float64(n) => *n,
            Value::Boolean(b) => f64::from(u8::from(*b)),
            Value::String(s) => s.trim().parse().ok()?,
            _ => return None,
        })
    };
    let integer = |v: &Value| -> Option<i64> {
        match v {
            Value::Int8(n) => Some(i64::from(*n)),
            Value::Int16(n) => Some(i64::from(*n)),
            Value::Int32(n) => Some(i64::from(*n)),
            Value::Int64(n) => Some(*n),
            Value::String(s) => s.trim().parse().ok(),
            other => number(other).map(|n| n as i64),
        }
    };
    if value.is_null() {
        return Ok(Value::Null);
    }
    let bad = || {
        Error::data(format!(
            "Cast: cannot cast {} to {}",
            describe(&value),
            to.name()
        ))
    };
    Ok(match to {
        SchemaType::Int8 => Value::Int8(integer(&value).ok_or_else(bad)? as i8),
        SchemaType::Int16 => Value::Int16(integer(&value).ok_or_else(bad)? as i16),
        SchemaType::Int32 => Value::Int32(integer(&value).ok_or_else(bad)? as i32),
        SchemaType::Int64 => Value::Int64(integer(&value).ok_or_else(bad)?),
        SchemaType::Float32 => Value::Float32(number(&value).ok_or_else(bad)? as f32),
        SchemaType::Float64 => Value::Float64(number(&value).ok_or_else(bad)?),
        SchemaType::Boolean => Value::Boolean(match &value {
            Value::String(s) => match s.trim() {
                "true" => true,
                "false" => false,
                _ => return Err(bad()),
            },
            other => number(other).ok_or_else(bad)? != 0.0,
        }),
        SchemaType::String => Value::from(value.primitive_text().ok_or_else(bad)?),
        _ => return Err(bad()),
    })
}

fn cast_schema(schema: &Schema, to: SchemaType) -> SchemaRef {
    let mut cast = Schema::of(to);
    cast.optional = schema.optional;
    Arc::new(cast)
}

impl Transform for Cast {
    fn apply(&mut self, mut record: Record, out: &mut Vec<Record>) -> Result<()> {
        let (value, schema) = self.part.take(&mut record);
        let (value, schema) = match (value, schema, self.whole) {
            (value, schema, Some(to)) => {
                let schema = schema.map(|s| cast_schema(&s, to));
                (cast_value(value, to)?, schema)
            }
            (Value::Null, schema, None) => (Value::Null, schema),
            (Value::Struct(s), Some(schema), None) => {
                let new_schema = self.cache.get_or(&schema, || {
                    let fields = schema
                        .fields
                        .iter()
                        .map(|f| Field {
                            name: f.name.clone(),
                            schema: match self.target(&f.name) {
                                Some(to) => cast_schema(&f.schema, to),
                                None => Arc::clone(&f.schema),
                            },
                        })
                        .collect();
                    Ok(struct_like(&schema, fields))
                })?;
                let values = schema
                    .fields
                    .iter()
                    .zip(s.values)
                    .map(|(f, v)| match self.target(&f.name) {
                        Some(to) => cast_value(v, to),
                        None => Ok(v),
                    })
                    .collect::<Result<Vec<_>>>()?;
                (struct_of(Arc::clone(&new_schema), values), Some(new_schema))
            }
            (Value::Map(entries), None, None) => {
                let entries = entries
                    .into_iter()
                    .map(
                        |(k, v)| match k.as_str().and_then(|name| self.target(name)) {
                            Some(to) => Ok((k, cast_value(v, to)?)),
                            None => Ok((k, v)),
                        },
                    )
                    .collect::<Result<Vec<_>>>()?;
                (Value::Map(entries), None)
            }
            (other, _, None) => {
                return Err(expected("Cast", self.part, "a struct or a map", &other));
            }
        };
        self.part.put(&mut record, value, schema);
        out.push(record);
        Ok(())
    }
}
