//! Values and their optional schemas, after Kafka Connect's `org.apache.kafka.connect.data`.
//!
//! A [`Value`] may travel with or without a [`Schema`]. Schemaless values use
//! [`Value::Map`] with string keys for objects, the way Kafka Connect uses `java.util.Map`.
//! Schemaful structured values use [`Value::Struct`], whose fields are positional against the
//! struct's schema.

use std::sync::Arc;

pub use crate::text::Text;

/// Schemas are shared by every record that carries them, so they are reference counted.
pub type SchemaRef = Arc<Schema>;

/// Kafka Connect's schema types; logical types (Decimal, Date, Timestamp, Debezium's semantic
/// types) are one of these plus a [`Schema::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaType {
    /// A signed 8-bit integer ([`Value::Int8`]).
    Int8,
    /// A signed 16-bit integer ([`Value::Int16`]).
    Int16,
    /// A signed 32-bit integer ([`Value::Int32`]); also Connect's `Date` and `Time`.
    Int32,
    /// A signed 64-bit integer ([`Value::Int64`]); also Connect's `Timestamp`.
    Int64,
    /// A 32-bit float ([`Value::Float32`]), `float` in JSON schemas.
    Float32,
    /// A 64-bit float ([`Value::Float64`]), `double` in JSON schemas.
    Float64,
    /// A boolean ([`Value::Boolean`]).
    Boolean,
    /// UTF-8 text ([`Value::String`]).
    String,
    /// Raw bytes ([`Value::Bytes`]); also Connect's `Decimal`.
    Bytes,
    /// A list of items of [`Schema::value_schema`] ([`Value::Array`]).
    Array,
    /// Entries from [`Schema::key_schema`] to [`Schema::value_schema`] ([`Value::Map`]).
    Map,
    /// Named fields in order, [`Schema::fields`] ([`Value::Struct`]).
    Struct,
}

impl SchemaType {
    /// The lower-case name Kafka Connect's JsonConverter writes in `"type"`.
    pub fn name(self) -> &'static str {
        match self {
            SchemaType::Int8 => "int8",
            SchemaType::Int16 => "int16",
            SchemaType::Int32 => "int32",
            SchemaType::Int64 => "int64",
            SchemaType::Float32 => "float",
            SchemaType::Float64 => "double",
            SchemaType::Boolean => "boolean",
            SchemaType::String => "string",
            SchemaType::Bytes => "bytes",
            SchemaType::Array => "array",
            SchemaType::Map => "map",
            SchemaType::Struct => "struct",
        }
    }

    /// Parses a JsonConverter type name (`int32`, `float`, `double`, …).
    pub fn from_name(name: &str) -> Option<SchemaType> {
        Some(match name {
            "int8" => SchemaType::Int8,
            "int16" => SchemaType::Int16,
            "int32" => SchemaType::Int32,
            "int64" => SchemaType::Int64,
            "float" => SchemaType::Float32,
            "double" => SchemaType::Float64,
            "boolean" => SchemaType::Boolean,
            "string" => SchemaType::String,
            "bytes" => SchemaType::Bytes,
            "array" => SchemaType::Array,
            "map" => SchemaType::Map,
            "struct" => SchemaType::Struct,
            _ => return None,
        })
    }
}

/// A field of a struct schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The field's name, unique within its struct.
    pub name: String,
    /// The field's schema.
    pub schema: SchemaRef,
}

/// A Kafka Connect schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    /// The underlying type (a logical type adds a [`Schema::name`] to it).
    pub schema_type: SchemaType,
    /// Whether a value may be null.
    pub optional: bool,
    /// Logical or record name, e.g. `org.apache.kafka.connect.data.Decimal` or
    /// `dbserver1.inventory.customers.Value`.
    pub name: Option<String>,
    /// The schema's version, when it has one (Debezium's envelopes do).
    pub version: Option<i32>,
    /// A description of the schema, when it has one.
    pub doc: Option<String>,
    /// Schema parameters in insertion order (JsonConverter writes them in that order).
    pub parameters: Vec<(String, String)>,
    /// The value to use when a field of this schema is absent.
    pub default: Option<Value>,
    /// Fields of a struct, in order.
    pub fields: Vec<Field>,
    /// Key schema of a map.
    pub key_schema: Option<SchemaRef>,
    /// Value schema of a map, or item schema of an array.
    pub value_schema: Option<SchemaRef>,
}

impl Schema {
    /// A required schema of a primitive type.
    pub fn of(schema_type: SchemaType) -> Schema {
        Schema {
            schema_type,
            optional: false,
            name: None,
            version: None,
            doc: None,
            parameters: Vec::new(),
            default: None,
            fields: Vec::new(),
            key_schema: None,
            value_schema: None,
        }
    }

    /// Kafka Connect's `Schema.STRING_SCHEMA`.
    pub fn string() -> Schema {
        Schema::of(SchemaType::String)
    }

    /// An empty struct schema with a name, to be filled with [`Schema::field`].
    pub fn struct_named(name: impl Into<String>) -> Schema {
        Schema::of(SchemaType::Struct).named(name)
    }

    /// An array of `items`.
    pub fn array(items: SchemaRef) -> Schema {
        let mut schema = Schema::of(SchemaType::Array);
        schema.value_schema = Some(items);
        schema
    }

    /// A map from `keys` to `values`.
    pub fn map(keys: SchemaRef, values: SchemaRef) -> Schema {
        let mut schema = Schema::of(SchemaType::Map);
        schema.key_schema = Some(keys);
        schema.value_schema = Some(values);
        schema
    }

    /// Marks the schema optional (nullable).
    pub fn optional(mut self) -> Schema {
        self.optional = true;
        self
    }

    /// Sets the schema name.
    pub fn named(mut self, name: impl Into<String>) -> Schema {
        self.name = Some(name.into());
        self
    }

    /// Sets the schema version.
    pub fn versioned(mut self, version: i32) -> Schema {
        self.version = Some(version);
        self
    }

    /// Adds a parameter.
    pub fn parameter(mut self, key: impl Into<String>, value: impl Into<String>) -> Schema {
        self.parameters.push((key.into(), value.into()));
        self
    }

    /// Appends a field to a struct schema.
    pub fn field(mut self, name: impl Into<String>, schema: impl Into<SchemaRef>) -> Schema {
        self.fields.push(Field {
            name: name.into(),
            schema: schema.into(),
        });
        self
    }

    /// Shares the schema.
    pub fn into_ref(self) -> SchemaRef {
        Arc::new(self)
    }

    /// The index of a struct field by name.
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }
}

/// A struct value: values positional against its schema's fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Struct {
    /// The struct schema the values follow.
    pub schema: SchemaRef,
    /// One value per field of [`Struct::schema`], in field order.
    pub values: Vec<Value>,
}

impl Struct {
    /// A struct whose every field is null, ready to be filled with [`Struct::put`].
    pub fn new(schema: SchemaRef) -> Struct {
        let values = vec![Value::Null; schema.fields.len()];
        Struct { schema, values }
    }

    /// Sets a field by name; an unknown name is a data error naming the field.
    pub fn put(&mut self, name: &str, value: Value) -> crate::Result<()> {
        match self.schema.field_index(name) {
            Some(index) => {
                self.values[index] = value;
                Ok(())
            }
            None => Err(crate::Error::data(format!(
                "struct {} has no field `{name}`",
                self.schema.name.as_deref().unwrap_or("(unnamed)")
            ))),
        }
    }

    /// Reads a field by name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.schema.field_index(name).map(|i| &self.values[i])
    }
}

/// A value, schemaful or schemaless.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// No value: a null field, a missing key, or (as a record's value) a tombstone.
    #[default]
    Null,
    /// A boolean.
    Boolean(bool),
    /// An 8-bit integer.
    Int8(i8),
    /// A 16-bit integer.
    Int16(i16),
    /// A 32-bit integer.
    Int32(i32),
    /// A 64-bit integer; schemaless JSON integers become this.
    Int64(i64),
    /// A 32-bit float.
    Float32(f32),
    /// A 64-bit float; schemaless JSON numbers that are not 64-bit integers become this.
    Float64(f64),
    /// UTF-8 text, owned or shared ([`Text`]).
    String(Text),
    /// Raw bytes (base64 in JSON).
    Bytes(Vec<u8>),
    /// A list of values.
    Array(Vec<Value>),
    /// A map; for schemaless objects the keys are strings. Entry order is kept.
    Map(Vec<(Value, Value)>),
    /// A struct: values positional against its schema's fields.
    Struct(Struct),
}

impl Value {
    /// Roughly how many bytes this value occupies in memory (its own size and what it owns
    /// on the heap; shared schemas not counted). For memory budgets, not exact accounting.
    pub fn approx_bytes(&self) -> usize {
        let owned = match self {
            Value::String(s) => s.owned_bytes(),
            Value::Bytes(b) => b.capacity(),
            Value::Array(items) => items.iter().map(Value::approx_bytes).sum(),
            Value::Map(entries) => entries
                .iter()
                .map(|(k, v)| k.approx_bytes() + v.approx_bytes())
                .sum(),
            Value::Struct(s) => s.values.iter().map(Value::approx_bytes).sum(),
            _ => 0,
        };
        std::mem::size_of::<Value>() + owned
    }

    /// Makes every string in this value (nested ones too) interned ([`Text::interned`]): for
    /// a value made of names that one thread puts on many records another drops, such as
    /// Debezium's `source` block of a snapshot. Its strings stay for the life of the process.
    pub fn intern_strings(&mut self) {
        match self {
            Value::String(text) => *text = Text::interned(text),
            Value::Array(items) => items.iter_mut().for_each(Value::intern_strings),
            Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
                k.intern_strings();
                v.intern_strings();
            }),
            Value::Struct(s) => s.values.iter_mut().for_each(Value::intern_strings),
            _ => {}
        }
    }

    /// True for [`Value::Null`]: a tombstone when it is a record's value.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The string inside a [`Value::String`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// What kind of value this is, for messages: `null`, `boolean`, `integer`, `float`,
    /// `string`, `bytes`, `array`, `map` or `struct`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Boolean(_) => "boolean",
            Value::Int8(_) | Value::Int16(_) | Value::Int32(_) | Value::Int64(_) => "integer",
            Value::Float32(_) | Value::Float64(_) => "float",
            Value::String(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
            Value::Struct(_) => "struct",
        }
    }

    /// A string, boolean or number as text (`Cast` to string, document ids); `None` for
    /// null, bytes and containers.
    pub fn primitive_text(&self) -> Option<String> {
        Some(match self {
            Value::String(s) => s.to_string(),
            Value::Boolean(b) => b.to_string(),
            Value::Int8(n) => n.to_string(),
            Value::Int16(n) => n.to_string(),
            Value::Int32(n) => n.to_string(),
            Value::Int64(n) => n.to_string(),
            Value::Float32(n) => n.to_string(),
            Value::Float64(n) => n.to_string(),
            _ => return None,
        })
    }

    /// The value as an `i64`, for any integer variant.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int8(v) => Some(v.into()),
            Value::Int16(v) => Some(v.into()),
            Value::Int32(v) => Some(v.into()),
            Value::Int64(v) => Some(v),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Value::String(value.into())
    }
}

impl From<String> for Value {
    fn from(value: String) -> Self {
        Value::String(value.into())
    }
}

impl From<Text> for Value {
    fn from(value: Text) -> Self {
        Value::String(value)
    }
}

impl From<i32> for Value {
    fn from(value: i32) -> Self {
        Value::Int32(value)
    }
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Value::Int64(value)
    }
}

impl From<bool> for Value {
    fn from(value: bool) -> Self {
        Value::Boolean(value)
    }
}
