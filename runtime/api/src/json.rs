//! Kafka Connect's JsonConverter rendering: schemas as JSON, values as JSON, and the
//! `{"schema": …, "payload": …}` envelope used when `schemas.enable=true`.
//!
//! Key order matters to users who diff our output with Kafka Connect's, so it is reproduced:
//! `type`, then `items` / `keys`,`values` / `fields`, then `optional`, `name`, `version`,
//! `doc`, `parameters`, `default`; a struct field's schema ends with `"field": <name>`.

use base64::Engine as _;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value as Json, json};

use crate::data::{Schema, SchemaType, Value};

/// The JsonConverter form of a schema.
pub fn schema_to_json(schema: &Schema) -> Json {
    let mut out = Map::new();
    out.insert("type".into(), Json::from(schema.schema_type.name()));
    match schema.schema_type {
        SchemaType::Array => {
            if let Some(items) = &schema.value_schema {
                out.insert("items".into(), schema_to_json(items));
            }
        }
        SchemaType::Map => {
            if let Some(keys) = &schema.key_schema {
                out.insert("keys".into(), schema_to_json(keys));
            }
            if let Some(values) = &schema.value_schema {
                out.insert("values".into(), schema_to_json(values));
            }
        }
        SchemaType::Struct => {
            let fields = schema
                .fields
                .iter()
                .map(|field| {
                    let mut field_json = schema_to_json(&field.schema);
                    if let Json::Object(map) = &mut field_json {
                        map.insert("field".into(), Json::from(field.name.as_str()));
                    }
                    field_json
                })
                .collect();
            out.insert("fields".into(), Json::Array(fields));
        }
        _ => {}
    }
    out.insert("optional".into(), Json::Bool(schema.optional));
    if let Some(name) = &schema.name {
        out.insert("name".into(), Json::from(name.as_str()));
    }
    if let Some(version) = schema.version {
        out.insert("version".into(), Json::from(version));
    }
    if let Some(doc) = &schema.doc {
        out.insert("doc".into(), Json::from(doc.as_str()));
    }
    if !schema.parameters.is_empty() {
        let parameters = schema
            .parameters
            .iter()
            .map(|(k, v)| (k.clone(), Json::from(v.as_str())))
            .collect();
        out.insert("parameters".into(), Json::Object(parameters));
    }
    if let Some(default) = &schema.default {
        out.insert("default".into(), value_to_json(default));
    }
    Json::Object(out)
}

/// The JsonConverter payload form of a value. Structs carry their own schema, so no schema
/// argument is needed: bytes become base64, NaN and infinities become strings (as Jackson
/// writes them), maps with string keys become objects and other maps arrays of `[key, value]`.
pub fn value_to_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Boolean(v) => Json::Bool(*v),
        Value::Int8(v) => json!(v),
        Value::Int16(v) => json!(v),
        Value::Int32(v) => json!(v),
        Value::Int64(v) => json!(v),
        Value::Float32(v) => float_to_json(f64::from(*v)),
        Value::Float64(v) => float_to_json(*v),
        Value::String(v) => Json::String(v.to_string()),
        Value::Bytes(v) => Json::String(base64::engine::general_purpose::STANDARD.encode(v)),
        Value::Array(items) => Json::Array(items.iter().map(value_to_json).collect()),
        Value::Map(entries) => {
            if entries.iter().all(|(k, _)| matches!(k, Value::String(_))) {
                let object = entries
                    .iter()
                    .map(|(k, v)| (k.as_str().unwrap_or_default().to_owned(), value_to_json(v)))
                    .collect();
                Json::Object(object)
            } else {
                Json::Array(
                    entries
                        .iter()
                        .map(|(k, v)| Json::Array(vec![value_to_json(k), value_to_json(v)]))
                        .collect(),
                )
            }
        }
        Value::Struct(s) => {
            let object = s
                .schema
                .fields
                .iter()
                .zip(&s.values)
                .map(|(field, v)| (field.name.clone(), value_to_json(v)))
                .collect();
            Json::Object(object)
        }
    }
}

fn float_to_json(v: f64) -> Json {
    if v.is_nan() {
        Json::from("NaN")
    } else if v.is_infinite() {
        Json::from(if v > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        json!(v)
    }
}

/// A value serialised as JsonConverter's payload: the same text as [`value_to_json`] renders,
/// written straight out without building a `serde_json::Value` tree first — converters, sinks
/// and plugin calls do this for every record. Null struct fields stay null; see
/// [`ConnectPayload`] for JsonConverter's default replacement of nulls.
#[derive(Debug, Clone, Copy)]
pub struct AsJson<'a>(pub &'a Value);

impl Serialize for AsJson<'_> {
    fn serialize<S: Serializer>(&self, out: S) -> Result<S::Ok, S::Error> {
        ConnectPayload {
            value: self.0,
            replace_null_with_default: false,
        }
        .serialize(out)
    }
}

/// A payload as JsonConverter writes it: with `replace_null_with_default` (JsonConverter's
/// `replace.null.with.default`, true by default since Kafka 3.5) a null struct field whose
/// schema has a default is written as that default, as Kafka Connect does.
#[derive(Debug, Clone, Copy)]
pub struct ConnectPayload<'a> {
    /// The value.
    pub value: &'a Value,
    /// Write a null struct field's schema default instead of null.
    pub replace_null_with_default: bool,
}

impl ConnectPayload<'_> {
    fn nested<'b>(&self, value: &'b Value) -> ConnectPayload<'b> {
        ConnectPayload {
            value,
            replace_null_with_default: self.replace_null_with_default,
        }
    }
}

impl Serialize for ConnectPayload<'_> {
    fn serialize<S: Serializer>(&self, out: S) -> Result<S::Ok, S::Error> {
        match self.value {
            Value::Null => out.serialize_unit(),
            Value::Boolean(v) => out.serialize_bool(*v),
            Value::Int8(v) => out.serialize_i64(i64::from(*v)),
            Value::Int16(v) => out.serialize_i64(i64::from(*v)),
            Value::Int32(v) => out.serialize_i64(i64::from(*v)),
            Value::Int64(v) => out.serialize_i64(*v),
            Value::Float32(v) => serialize_float(f64::from(*v), out),
            Value::Float64(v) => serialize_float(*v, out),
            Value::String(v) => out.serialize_str(v),
            Value::Bytes(v) => {
                out.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
            }
            Value::Array(items) => out.collect_seq(items.iter().map(|v| self.nested(v))),
            Value::Map(entries) => {
                if entries.iter().all(|(k, _)| matches!(k, Value::String(_))) {
                    out.collect_map(
                        entries
                            .iter()
                            .map(|(k, v)| (k.as_str().unwrap_or_default(), self.nested(v))),
                    )
                } else {
                    out.collect_seq(
                        entries
                            .iter()
                            .map(|(k, v)| [self.nested(k), self.nested(v)]),
                    )
                }
            }
            Value::Struct(s) => {
                out.collect_map(s.schema.fields.iter().zip(&s.values).map(|(field, v)| {
                    let shown = match (&field.schema.default, v) {
                        (Some(default), Value::Null) if self.replace_null_with_default => default,
                        _ => v,
                    };
                    (field.name.as_str(), self.nested(shown))
                }))
            }
        }
    }
}

fn serialize_float<S: Serializer>(v: f64, out: S) -> Result<S::Ok, S::Error> {
    if v.is_nan() {
        out.serialize_str("NaN")
    } else if v.is_infinite() {
        out.serialize_str(if v > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        out.serialize_f64(v)
    }
}

/// The JSON text of a value's payload form (see [`AsJson`]).
pub fn value_to_json_text(value: &Value) -> String {
    serde_json::to_string(&AsJson(value)).expect("a value always serialises")
}

/// The JSON text of `{"schema": …, "payload": …}` (see [`envelope`]).
pub fn envelope_text(schema: Option<&Schema>, value: &Value) -> Vec<u8> {
    envelope_text_with(schema, value, false)
}

/// [`envelope_text`] as JsonConverter writes it, replacing null struct fields by their
/// schema's default when `replace_null_with_default` ([`ConnectPayload`]).
pub fn envelope_text_with(
    schema: Option<&Schema>,
    value: &Value,
    replace_null_with_default: bool,
) -> Vec<u8> {
    #[derive(Serialize)]
    struct Envelope<'a> {
        schema: Json,
        payload: ConnectPayload<'a>,
    }
    let envelope = Envelope {
        schema: schema.map(schema_to_json).unwrap_or(Json::Null),
        payload: ConnectPayload {
            value,
            replace_null_with_default,
        },
    };
    serde_json::to_vec(&envelope).expect("an envelope always serialises")
}

/// `{"schema": <schema or null>, "payload": <value>}`: JsonConverter with `schemas.enable=true`.
pub fn envelope(schema: Option<&Schema>, value: &Value) -> Json {
    let mut out = Map::new();
    out.insert(
        "schema".into(),
        schema.map(schema_to_json).unwrap_or(Json::Null),
    );
    out.insert("payload".into(), value_to_json(value));
    Json::Object(out)
}

/// A schemaless value from JSON: objects become string-keyed maps, integral numbers `Int64`,
/// other numbers `Float64` (what JsonConverter does with `schemas.enable=false`).
pub fn json_to_value(json: &Json) -> Value {
    match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int64(i),
            None => Value::Float64(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::String(s.as_str().into()),
        Json::Array(items) => Value::Array(items.iter().map(json_to_value).collect()),
        Json::Object(map) => Value::Map(
            map.iter()
                .map(|(k, v)| (Value::String(k.as_str().into()), json_to_value(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::data::Struct;

    #[test]
    fn string_envelope_matches_kafka_connect_byte_for_byte() {
        let out = envelope(Some(&Schema::string()), &Value::from("foo"));
        assert_eq!(
            serde_json::to_string(&out).unwrap(),
            r#"{"schema":{"type":"string","optional":false},"payload":"foo"}"#
        );
    }

    #[test]
    fn struct_schema_orders_keys_like_json_converter() {
        let schema = Schema::struct_named("srv.public.t.Value")
            .field("id", Schema::of(SchemaType::Int32).into_ref())
            .field("name", Schema::string().optional().into_ref())
            .optional();
        assert_eq!(
            serde_json::to_string(&schema_to_json(&schema)).unwrap(),
            concat!(
                r#"{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"},"#,
                r#"{"type":"string","optional":true,"field":"name"}],"optional":true,"#,
                r#""name":"srv.public.t.Value"}"#
            )
        );
    }

    #[test]
    fn values_render_like_json_converter() {
        let schema = Schema::struct_named("s")
            .field("b", Schema::of(SchemaType::Bytes).into_ref())
            .field("f", Schema::of(SchemaType::Float64).into_ref())
            .into_ref();
        let mut s = Struct::new(schema);
        s.put("b", Value::Bytes(vec![1, 2, 3])).unwrap();
        s.put("f", Value::Float64(f64::NAN)).unwrap();
        assert_eq!(
            value_to_json(&Value::Struct(s)),
            json!({"b": "AQID", "f": "NaN"})
        );
        let map = Value::Map(vec![(Value::Int32(1), Value::from("x"))]);
        assert_eq!(value_to_json(&map), json!([[1, "x"]]));
    }

    #[test]
    fn direct_text_is_exactly_what_the_json_tree_renders() {
        let schema = Schema::struct_named("s")
            .field("i", Schema::of(SchemaType::Int16).into_ref())
            .field("f", Schema::of(SchemaType::Float32).into_ref())
            .field("d", Schema::of(SchemaType::Float64).into_ref())
            .field("b", Schema::of(SchemaType::Bytes).into_ref())
            .field("n", Schema::string().optional().into_ref())
            .into_ref();
        let mut s = Struct::new(Arc::clone(&schema));
        s.put("i", Value::Int16(-7)).unwrap();
        s.put("f", Value::Float32(0.1)).unwrap();
        s.put("d", Value::Float64(f64::NEG_INFINITY)).unwrap();
        s.put("b", Value::Bytes(vec![0, 255])).unwrap();
        let values = [
            Value::Struct(s),
            Value::Map(vec![(Value::Int32(1), Value::Float64(1.0))]),
            Value::Map(vec![(
                Value::from("é\"\n"),
                Value::Array(vec![Value::Null]),
            )]),
            Value::Float64(f64::NAN),
            Value::Int64(i64::MIN),
            json_to_value(&json!({"a": [1, 2.5e300, "x", null, true], "b": {"c": -0.0}})),
        ];
        for value in &values {
            assert_eq!(
                value_to_json_text(value),
                value_to_json(value).to_string(),
                "{value:?}"
            );
            assert_eq!(
                envelope_text(Some(&schema), value),
                serde_json::to_vec(&envelope(Some(&schema), value)).unwrap()
            );
        }
    }

    #[test]
    fn schemaless_json_round_trips() {
        let json = json!({"a": [1, 2.5, "x", null, true], "b": {"c": 1}});
        assert_eq!(value_to_json(&json_to_value(&json)), json);
    }
}
