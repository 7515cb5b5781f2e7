//! Converters between sluice values and bytes on the wire, with Kafka Connect's class names
//! and exact output: `org.apache.kafka.connect.json.JsonConverter`,
//! `org.apache.kafka.connect.storage.StringConverter`,
//! `org.apache.kafka.connect.converters.ByteArrayConverter`.

use std::sync::Arc;

use serde_json::Value as Json;

use crate::config::Props;
use crate::data::{Field, Schema, SchemaRef, SchemaType, Struct, Value};
use crate::json::{ConnectPayload, envelope_text_with, json_to_value, value_to_json_text};
use crate::{Error, Result};

/// Turns a value into bytes and back.
///
/// # Contract
/// `None` bytes stand for a null (tombstone) value. Errors are
/// [`ErrorKind::Data`](crate::ErrorKind::Data) errors that name the converter and what was
/// wrong, so the error-tolerance path can route the record to a dead letter queue.
pub trait Converter: Send + Sync {
    /// Serializes a value (with its schema, when it has one): Kafka's `fromConnectData`.
    fn serialize(
        &self,
        topic: &str,
        schema: Option<&Schema>,
        value: &Value,
    ) -> Result<Option<Vec<u8>>>;

    /// Deserializes bytes into a value and, when the format carries one, its schema: Kafka's
    /// `toConnectData`.
    fn deserialize(&self, topic: &str, bytes: Option<&[u8]>) -> Result<(Option<SchemaRef>, Value)>;
}

/// The full class name of [`JsonConverter`].
pub const JSON_CONVERTER: &str = "org.apache.kafka.connect.json.JsonConverter";
/// The full class name of [`StringConverter`].
pub const STRING_CONVERTER: &str = "org.apache.kafka.connect.storage.StringConverter";
/// The full class name of [`ByteArrayConverter`].
pub const BYTE_ARRAY_CONVERTER: &str = "org.apache.kafka.connect.converters.ByteArrayConverter";

/// Every converter class, for validation messages.
pub const CONVERTERS: &[&str] = &[JSON_CONVERTER, STRING_CONVERTER, BYTE_ARRAY_CONVERTER];

/// The full class name of a converter given by full or simple name.
pub fn resolve_converter(name: &str) -> Option<&'static str> {
    CONVERTERS
        .iter()
        .copied()
        .find(|c| *c == name || c.rsplit('.').next() == Some(name))
}

/// A converter's true/false setting `key` (case-insensitive), `default` when unset.
fn boolean_setting(settings: &Props, key: &str, default: bool) -> Result<bool> {
    match settings.get(key).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if v == "true" => Ok(true),
        Some(v) if v == "false" => Ok(false),
        Some(v) => Err(Error::config(format!(
            "`{key}` must be true or false, got `{v}`"
        ))),
    }
}

/// Builds a converter from its class and its own settings (`schemas.enable`, …: the
/// `key.converter.` / `value.converter.` prefix removed).
pub fn converter(class: &str, settings: &Props) -> Result<Box<dyn Converter>> {
    match resolve_converter(class) {
        Some(JSON_CONVERTER) => {
            let schemas_enable = boolean_setting(settings, "schemas.enable", true)?;
            let replace_null_with_default =
                boolean_setting(settings, "replace.null.with.default", true)?;
            Ok(Box::new(JsonConverter {
                schemas_enable,
                replace_null_with_default,
            }))
        }
        Some(STRING_CONVERTER) => Ok(Box::new(StringConverter)),
        Some(BYTE_ARRAY_CONVERTER) => Ok(Box::new(ByteArrayConverter)),
        _ => Err(Error::config(format!(
            "`{class}` is not a converter sluice has; use one of {}",
            CONVERTERS.join(", ")
        ))),
    }
}

/// Kafka Connect's JsonConverter. With `schemas.enable=true` (the default) values travel as
/// `{"schema": …, "payload": …}`; without, as bare JSON.
#[derive(Debug, Clone, Copy)]
pub struct JsonConverter {
    /// `schemas.enable`: whether values travel in the schema-and-payload envelope.
    pub schemas_enable: bool,
    /// `replace.null.with.default` (default true, as in Kafka 3.5+): a null struct field whose
    /// schema has a default is written as the default.
    pub replace_null_with_default: bool,
}

impl Converter for JsonConverter {
    fn serialize(
        &self,
        _topic: &str,
        schema: Option<&Schema>,
        value: &Value,
    ) -> Result<Option<Vec<u8>>> {
        if schema.is_none() && value.is_null() {
            return Ok(None);
        }
        Ok(Some(if self.schemas_enable {
            envelope_text_with(schema, value, self.replace_null_with_default)
        } else {
            serde_json::to_vec(&ConnectPayload {
                value,
                replace_null_with_default: self.replace_null_with_default,
            })
            .expect("a value always serialises")
        }))
    }

    fn deserialize(&self, topic: &str, bytes: Option<&[u8]>) -> Result<(Option<SchemaRef>, Value)> {
        let Some(bytes) = bytes else {
            return Ok((None, Value::Null));
        };
        let json: Json = serde_json::from_slice(bytes).map_err(|e| {
            Error::data(format!(
                "JsonConverter: converting byte[] to Kafka Connect data failed due to serialization error of topic {topic}: {e}"
            ))
        })?;
        if !self.schemas_enable {
            return Ok((None, json_to_value(&json)));
        }
        let shaped = json
            .as_object()
            .filter(|o| o.len() == 2 && o.contains_key("schema") && o.contains_key("payload"));
        let Some(object) = shaped else {
            return Err(Error::data(
                "JsonConverter with schemas.enable requires \"schema\" and \"payload\" fields and may not contain \
                 additional fields. If you are trying to deserialize plain JSON data, set schemas.enable=false in \
                 your converter configuration.",
            ));
        };
        if object["schema"].is_null() {
            return Ok((None, json_to_value(&object["payload"])));
        }
        let schema = Arc::new(schema_from_json(&object["schema"])?);
        let value = value_with_schema(&object["payload"], &schema)?;
        Ok((Some(schema), value))
    }
}

/// Parses a JsonConverter schema.
pub fn schema_from_json(json: &Json) -> Result<Schema> {
    let bad = |why: &str| Error::data(format!("JsonConverter: invalid schema {json}: {why}"));
    let type_name = json
        .get("type")
        .and_then(Json::as_str)
        .ok_or_else(|| bad("no `type`"))?;
    let schema_type = SchemaType::from_name(type_name).ok_or_else(|| bad("unknown `type`"))?;
    let mut schema = Schema::of(schema_type);
    schema.optional = json
        .get("optional")
        .and_then(Json::as_bool)
        .unwrap_or(false);
    schema.name = json.get("name").and_then(Json::as_str).map(str::to_owned);
    schema.version = json
        .get("version")
        .and_then(Json::as_i64)
        .and_then(|v| i32::try_from(v).ok());
    schema.doc = json.get("doc").and_then(Json::as_str).map(str::to_owned);
    if let Some(parameters) = json.get("parameters").and_then(Json::as_object) {
        schema.parameters = parameters
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string()),
                )
            })
            .collect();
    }
    match schema_type {
        SchemaType::Array => {
            let items = json
                .get("items")
                .ok_or_else(|| bad("array without `items`"))?;
            schema.value_schema = Some(Arc::new(schema_from_json(items)?));
        }
        SchemaType::Map => {
            let keys = json.get("keys").ok_or_else(|| bad("map without `keys`"))?;
            let values = json
                .get("values")
                .ok_or_else(|| bad("map without `values`"))?;
            schema.key_schema = Some(Arc::new(schema_from_json(keys)?));
            schema.value_schema = Some(Arc::new(schema_from_json(values)?));
        }
        SchemaType::Struct => {
            let fields = json
                .get("fields")
                .and_then(Json::as_array)
                .ok_or_else(|| bad("struct without `fields`"))?;
            for field in fields {
                let name = field
                    .get("field")
                    .and_then(Json::as_str)
                    .ok_or_else(|| bad("field without `field` name"))?;
                schema.fields.push(Field {
                    name: name.to_owned(),
                    schema: Arc::new(schema_from_json(field)?),
                });
            }
        }
        _ => {}
    }
    if let Some(default) = json.get("default").filter(|d| !d.is_null()) {
        schema.default = Some(value_with_schema(
            default,
            &Schema {
                default: None,
                ..schema.clone()
            },
        )?);
    }
    Ok(schema)
}

/// Converts a JSON payload into a value typed by `schema`.
pub fn value_with_schema(json: &Json, schema: &Schema) -> Result<Value> {
    if json.is_null() {
        return match (&schema.default, schema.optional) {
            (Some(default), _) => Ok(default.clone()),
            (None, true) => Ok(Value::Null),
            (None, false) => Err(Error::data(
                "JsonConverter: null for a required (non-optional) schema",
            )),
        };
    }
    let mismatch = || {
        Error::data(format!(
            "JsonConverter: {json} does not match schema type {}",
            schema.schema_type.name()
        ))
    };
    let int = || json.as_i64().ok_or_else(mismatch);
    let float = || match json {
        Json::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            _ => Err(mismatch()),
        },
        other => other.as_f64().ok_or_else(mismatch),
    };
    Ok(match schema.schema_type {
        SchemaType::Int8 => Value::Int8(i8::try_from(int()?).map_err(|_| mismatch())?),
        SchemaType::Int16 => Value::Int16(i16::try_from(int()?).map_err(|_| mismatch())?),
        SchemaType::Int32 => Value::Int32(i32::try_from(int()?).map_err(|_| mismatch())?),
        SchemaType::Int64 => Value::Int64(int()?),
        SchemaType::Float32 => Value::Float32(float()? as f32),
        SchemaType::Float64 => Value::Float64(float()?),
        SchemaType::Boolean => Value::Boolean(json.as_bool().ok_or_else(mismatch)?),
        SchemaType::String => Value::String(json.as_str().ok_or_else(mismatch)?.into()),
        SchemaType::Bytes => {
            use base64::Engine as _;
            let text = json.as_str().ok_or_else(mismatch)?;
            Value::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|_| mismatch())?,
            )
        }
        SchemaType::Array => {
            let items = schema.value_schema.as_deref().ok_or_else(mismatch)?;
            let array = json.as_array().ok_or_else(mismatch)?;
            Value::Array(
                array
                    .iter()
                    .map(|item| value_with_schema(item, items))
                    .collect::<Result<_>>()?,
            )
        }
        SchemaType::Map => {
            let (keys, values) = (
                schema.key_schema.as_deref().ok_or_else(mismatch)?,
                schema.value_schema.as_deref().ok_or_else(mismatch)?,
            );
            match json {
                Json::Object(object) => Value::Map(
                    object
                        .iter()
                        .map(|(k, v)| {
                            Ok((
                                value_with_schema(&Json::String(k.clone()), keys)?,
                                value_with_schema(v, values)?,
                            ))
                        })
                        .collect::<Result<_>>()?,
                ),
                Json::Array(pairs) => Value::Map(
                    pairs
                        .iter()
                        .map(|pair| match pair.as_array().map(Vec::as_slice) {
                            Some([k, v]) => {
                                Ok((value_with_schema(k, keys)?, value_with_schema(v, values)?))
                            }
                            _ => Err(mismatch()),
                        })
                        .collect::<Result<_>>()?,
                ),
                _ => return Err(mismatch()),
            }
        }
        SchemaType::Struct => {
            let object = json.as_object().ok_or_else(mismatch)?;
            let schema_ref = Arc::new(schema.clone());
            let mut out = Struct::new(Arc::clone(&schema_ref));
            for (index, field) in schema.fields.iter().enumerate() {
                out.values[index] = value_with_schema(
                    object.get(&field.name).unwrap_or(&Json::Null),
                    &field.schema,
                )
                .map_err(|e| e.context(format!("field `{}`", field.name)))?;
            }
            Value::Struct(out)
        }
    })
}

/// Kafka Connect's StringConverter: UTF-8 text; non-string values are written as JSON text.
#[derive(Debug, Clone, Copy)]
pub struct StringConverter;

impl Converter for StringConverter {
    fn serialize(
        &self,
        _topic: &str,
        _schema: Option<&Schema>,
        value: &Value,
    ) -> Result<Option<Vec<u8>>> {
        Ok(match value {
            Value::Null => None,
            Value::String(s) => Some(s.as_bytes().to_vec()),
            other => Some(value_to_json_text(other).into_bytes()),
        })
    }

    fn deserialize(&self, topic: &str, bytes: Option<&[u8]>) -> Result<(Option<SchemaRef>, Value)> {
        let schema = Some(Arc::new(Schema::string().optional()));
        match bytes {
            None => Ok((schema, Value::Null)),
            Some(bytes) => String::from_utf8(bytes.to_vec())
                .map(|s| (schema, Value::String(s.into())))
                .map_err(|_| {
                    Error::data(format!(
                        "StringConverter: a record of topic {topic} is not valid UTF-8"
                    ))
                }),
        }
    }
}

/// Kafka Connect's ByteArrayConverter: bytes pass through untouched.
#[derive(Debug, Clone, Copy)]
pub struct ByteArrayConverter;

impl Converter for ByteArrayConverter {
    fn serialize(
        &self,
        _topic: &str,
        _schema: Option<&Schema>,
        value: &Value,
    ) -> Result<Option<Vec<u8>>> {
        match value {
            Value::Null => Ok(None),
            Value::Bytes(bytes) => Ok(Some(bytes.clone())),
            other => Err(Error::data(format!(
                "ByteArrayConverter is not compatible with objects of type {}; use StringConverter or JsonConverter",
                other.kind_name()
            ))),
        }
    }

    fn deserialize(
        &self,
        _topic: &str,
        bytes: Option<&[u8]>,
    ) -> Result<(Option<SchemaRef>, Value)> {
        let schema = Some(Arc::new(Schema::of(SchemaType::Bytes).optional()));
        Ok((
            schema,
            bytes
                .map(|b| Value::Bytes(b.to_vec()))
                .unwrap_or(Value::Null),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(schemas: bool) -> JsonConverter {
        JsonConverter {
            schemas_enable: schemas,
            replace_null_with_default: true,
        }
    }

    #[test]
    fn null_fields_with_a_default_are_written_as_the_default_unless_turned_off() {
        let mut field = Schema::of(SchemaType::Int32).optional();
        field.default = Some(Value::Int32(7));
        let row = Schema::struct_named("row")
            .field("rank", Arc::new(field))
            .field("note", Arc::new(Schema::string().optional()))
            .into_ref();
        let value = Value::Struct(crate::data::Struct::new(Arc::clone(&row)));
        let text = |settings: &[(&str, &str)]| {
            let converter = converter(JSON_CONVERTER, &crate::config::props(settings)).unwrap();
            let bytes = converter
                .serialize("t", Some(&row), &value)
                .unwrap()
                .unwrap();
            let json: Json = serde_json::from_slice(&bytes).unwrap();
            json["payload"].clone()
        };
        assert_eq!(
            text(&[]),
            serde_json::json!({"rank": 7, "note": null}),
            "Kafka's default"
        );
        assert_eq!(
            text(&[("replace.null.with.default", "false")]),
            serde_json::json!({"rank": null, "note": null})
        );
    }

    #[test]
    fn quickstart_string_values_match_kafka_connect_byte_for_byte() {
        let bytes = json(true)
            .serialize("t", Some(&Schema::string()), &Value::from("foo"))
            .unwrap()
            .unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"schema":{"type":"string","optional":false},"payload":"foo"}"#
        );
        let bytes = json(false)
            .serialize("t", Some(&Schema::string()), &Value::from("foo"))
            .unwrap()
            .unwrap();
        assert_eq!(bytes, br#""foo""#);
        assert_eq!(
            json(true).serialize("t", None, &Value::Null).unwrap(),
            None,
            "tombstones stay null"
        );
    }

    #[test]
    fn schemaful_json_round_trips_structs() {
        let schema = Schema::struct_named("srv.public.t.Value")
            .field("id", Schema::of(SchemaType::Int32).into_ref())
            .field(
                "tags",
                Schema::array(Schema::string().into_ref())
                    .optional()
                    .into_ref(),
            )
            .field("data", Schema::of(SchemaType::Bytes).optional().into_ref())
            .field("score", Schema::of(SchemaType::Float64).into_ref())
            .into_ref();
        let mut s = Struct::new(Arc::clone(&schema));
        s.put("id", Value::Int32(7)).unwrap();
        s.put("tags", Value::Array(vec![Value::from("a")])).unwrap();
        s.put("data", Value::Bytes(vec![0, 255])).unwrap();
        s.put("score", Value::Float64(f64::INFINITY)).unwrap();
        let value = Value::Struct(s);
        let bytes = json(true)
            .serialize("t", Some(&schema), &value)
            .unwrap()
            .unwrap();
        let (back_schema, back) = json(true).deserialize("t", Some(&bytes)).unwrap();
        assert_eq!(back_schema.as_deref(), Some(&*schema));
        assert_eq!(back, value);
    }

    #[test]
    fn malformed_input_gives_kafka_connect_s_messages() {
        let err = json(true).deserialize("t", Some(b"{not json")).unwrap_err();
        assert!(
            err.message().contains("serialization error of topic t"),
            "{err}"
        );
        let err = json(true)
            .deserialize("t", Some(br#"{"a":1}"#))
            .unwrap_err();
        assert!(
            err.message()
                .contains("requires \"schema\" and \"payload\""),
            "{err}"
        );
        let (_, value) = json(false).deserialize("t", Some(br#"{"a":1}"#)).unwrap();
        assert_eq!(value, Value::Map(vec![(Value::from("a"), Value::Int64(1))]));
        let err = json(true)
            .deserialize(
                "t",
                Some(br#"{"schema":{"type":"int32","optional":false},"payload":"x"}"#),
            )
            .unwrap_err();
        assert!(
            err.message().contains("does not match schema type int32"),
            "{err}"
        );
    }

    #[test]
    fn string_and_byte_array_converters() {
        assert_eq!(
            StringConverter
                .serialize("t", None, &Value::from("é"))
                .unwrap(),
            Some("é".as_bytes().to_vec())
        );
        assert_eq!(
            StringConverter.deserialize("t", Some(b"x")).unwrap().1,
            Value::from("x")
        );
        assert!(StringConverter.deserialize("t", Some(&[0xff])).is_err());
        assert_eq!(
            ByteArrayConverter
                .serialize("t", None, &Value::Bytes(vec![1]))
                .unwrap(),
            Some(vec![1])
        );
        let err = ByteArrayConverter
            .serialize("t", None, &Value::from("s"))
            .unwrap_err();
        assert!(
            err.message()
                .contains("not compatible with objects of type string"),
            "{err}"
        );
        let converter = converter(
            "JsonConverter",
            &[("schemas.enable".to_owned(), "false".to_owned())].into(),
        )
        .unwrap();
        assert_eq!(
            converter.serialize("t", None, &Value::Int64(1)).unwrap(),
            Some(b"1".to_vec())
        );
        assert!(super::converter("AvroConverter", &Props::new()).is_err());
    }
}
