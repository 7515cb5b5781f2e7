//! The built-in transforms on schemaful and schemaless records, with Kafka Connect's
//! documented examples where it gives them.

use std::sync::Arc;

use sluice_api::config::props;
use sluice_api::data::{Schema, SchemaRef, SchemaType, Struct, Value};
use sluice_api::record::{Header, Record};
use sluice_api::transform::TransformPlugin;

use super::*;

fn build(
    plugin: TransformPlugin,
    settings: &[(&str, &str)],
) -> Box<dyn sluice_api::transform::Transform> {
    (plugin.create)(&props(settings)).unwrap()
}

fn apply(plugin: TransformPlugin, settings: &[(&str, &str)], record: Record) -> Vec<Record> {
    let mut transform = build(plugin, settings);
    let mut out = Vec::new();
    transform.apply(record, &mut out).unwrap();
    out
}

fn one(plugin: TransformPlugin, settings: &[(&str, &str)], record: Record) -> Record {
    let mut out = apply(plugin, settings, record);
    assert_eq!(out.len(), 1);
    out.remove(0)
}

fn int64() -> SchemaRef {
    Arc::new(Schema::of(SchemaType::Int64))
}

fn string() -> SchemaRef {
    Arc::new(Schema::string())
}

/// A schemaful value `{id: int64, name: string, email: string}`.
fn person() -> Record {
    let schema = Schema::struct_named("person")
        .field("id", int64())
        .field("name", string())
        .field("email", string())
        .into_ref();
    let value = Value::Struct(Struct {
        schema: Arc::clone(&schema),
        values: vec![
            Value::Int64(7),
            Value::from("Ada"),
            Value::from("ada@example.com"),
        ],
    });
    let mut record = Record::new("people", value, Some(schema));
    record.timestamp_ms = Some(1_709_251_198_123);
    record.partition = Some(3);
    record
}

/// The same as a schemaless map.
fn person_map() -> Record {
    let value = Value::Map(vec![
        (Value::from("id"), Value::Int64(7)),
        (Value::from("name"), Value::from("Ada")),
        (Value::from("email"), Value::from("ada@example.com")),
    ]);
    let mut record = Record::new("people", value, None);
    record.timestamp_ms = Some(1_709_251_198_123);
    record
}

fn field_names(schema: &Option<SchemaRef>) -> Vec<String> {
    schema
        .as_ref()
        .unwrap()
        .fields
        .iter()
        .map(|f| f.name.clone())
        .collect()
}

fn get<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    match value {
        Value::Struct(s) => s.get(name),
        Value::Map(entries) => part::map_get(entries, name),
        _ => None,
    }
}

/// A schemaful value must match its schema field for field.
fn assert_consistent(record: &Record) {
    if let (Value::Struct(s), Some(schema)) = (&record.value, &record.value_schema) {
        assert!(Arc::ptr_eq(&s.schema, schema) || *s.schema == **schema);
        assert_eq!(s.values.len(), schema.fields.len());
    }
}

#[test]
fn insert_field_adds_topic_partition_timestamp_and_static_values() {
    // Kafka Connect's doc example: topic.field, static.field/static.value.
    let settings = [
        ("topic.field", "topic!"),
        ("partition.field", "partition"),
        ("timestamp.field", "ts"),
        ("static.field", "MessageSource"),
        ("static.value", "Kafka Connect framework"),
    ];
    let out = one(INSERT_FIELD_VALUE, &settings, person());
    assert_consistent(&out);
    assert_eq!(
        field_names(&out.value_schema),
        [
            "id",
            "name",
            "email",
            "topic",
            "partition",
            "ts",
            "MessageSource"
        ]
    );
    assert_eq!(get(&out.value, "topic"), Some(&Value::from("people")));
    assert_eq!(get(&out.value, "partition"), Some(&Value::Int32(3)));
    assert_eq!(
        get(&out.value, "ts"),
        Some(&Value::Int64(1_709_251_198_123))
    );
    let schema = out.value_schema.as_ref().unwrap();
    assert!(!schema.fields[3].schema.optional, "`!` makes it required");
    assert!(schema.fields[4].schema.optional);
    assert_eq!(
        schema.fields[5].schema.name.as_deref(),
        Some("org.apache.kafka.connect.data.Timestamp")
    );

    let out = one(INSERT_FIELD_VALUE, &settings, person_map());
    assert_eq!(
        get(&out.value, "MessageSource"),
        Some(&Value::from("Kafka Connect framework"))
    );
    assert_eq!(get(&out.value, "topic"), Some(&Value::from("people")));
    assert!(
        (INSERT_FIELD_VALUE.create)(&props(&[])).is_err(),
        "nothing to insert"
    );
}

#[test]
fn replace_field_includes_excludes_and_renames() {
    let out = one(
        REPLACE_FIELD_VALUE,
        &[("exclude", "email"), ("renames", "name:full_name")],
        person(),
    );
    assert_consistent(&out);
    assert_eq!(field_names(&out.value_schema), ["id", "full_name"]);
    assert_eq!(get(&out.value, "full_name"), Some(&Value::from("Ada")));

    let out = one(
        REPLACE_FIELD_VALUE,
        &[("include", "id,email")],
        person_map(),
    );
    assert_eq!(get(&out.value, "name"), None);
    assert_eq!(
        get(&out.value, "email"),
        Some(&Value::from("ada@example.com"))
    );
    assert!((REPLACE_FIELD_VALUE.create)(&props(&[("renames", "broken")])).is_err());
}

#[test]
fn mask_field_empties_values_or_uses_the_replacement() {
    let out = one(MASK_FIELD_VALUE, &[("fields", "id,email")], person());
    assert_consistent(&out);
    assert_eq!(get(&out.value, "id"), Some(&Value::Int64(0)));
    assert_eq!(get(&out.value, "email"), Some(&Value::from("")));
    let out = one(
        MASK_FIELD_VALUE,
        &[("fields", "email"), ("replacement", "<redacted>")],
        person_map(),
    );
    assert_eq!(get(&out.value, "email"), Some(&Value::from("<redacted>")));
    let mut transform = build(MASK_FIELD_VALUE, &[("fields", "id"), ("replacement", "x")]);
    let err = transform.apply(person(), &mut Vec::new()).unwrap_err();
    assert!(err.message().contains("field `id`"), "{err}");
}

#[test]
fn value_to_key_and_extract_field_build_keys_like_the_jdbc_example() {
    // Kafka Connect's doc example: ValueToKey(fields=id) then ExtractField$Key(field=id).
    let keyed = one(VALUE_TO_KEY, &[("fields", "id")], person());
    assert_eq!(field_names(&keyed.key_schema), ["id"]);
    let out = one(EXTRACT_FIELD_KEY, &[("field", "id")], keyed);
    assert_eq!(out.key, Value::Int64(7));
    assert_eq!(out.key_schema.unwrap().schema_type, SchemaType::Int64);

    let keyed = one(VALUE_TO_KEY, &[("fields", "id,name")], person_map());
    assert_eq!(get(&keyed.key, "name"), Some(&Value::from("Ada")));
    let out = one(EXTRACT_FIELD_VALUE, &[("field", "name")], person_map());
    assert_eq!(out.value, Value::from("Ada"));
    assert!(out.value_schema.is_none());
    let mut transform = build(VALUE_TO_KEY, &[("fields", "missing")]);
    assert!(transform.apply(person(), &mut Vec::new()).is_err());
}

#[test]
fn hoist_field_wraps_the_value() {
    // Kafka Connect's doc example: HoistField$Value(field=line) on a string value.
    let record = Record::new("t", Value::from("hello"), Some(string()));
    let out = one(HOIST_FIELD_VALUE, &[("field", "line")], record);
    assert_consistent(&out);
    assert_eq!(field_names(&out.value_schema), ["line"]);
    assert_eq!(get(&out.value, "line"), Some(&Value::from("hello")));
    let out = one(
        HOIST_FIELD_VALUE,
        &[("field", "line")],
        Record::new("t", Value::from("x"), None),
    );
    assert_eq!(
        out.value,
        Value::Map(vec![(Value::from("line"), Value::from("x"))])
    );
}

#[test]
fn flatten_joins_nested_names_with_the_delimiter() {
    let inner = Schema::struct_named("addr")
        .field("city", string())
        .field("zip", string())
        .optional()
        .into_ref();
    let schema = Schema::struct_named("p")
        .field("id", int64())
        .field("addr", Arc::clone(&inner))
        .into_ref();
    let value = Value::Struct(Struct {
        schema: Arc::clone(&schema),
        values: vec![
            Value::Int64(1),
            Value::Struct(Struct {
                schema: inner,
                values: vec![Value::from("Oslo"), Value::from("0150")],
            }),
        ],
    });
    let out = one(
        FLATTEN_VALUE,
        &[("delimiter", "_")],
        Record::new("t", value, Some(schema)),
    );
    assert_consistent(&out);
    assert_eq!(
        field_names(&out.value_schema),
        ["id", "addr_city", "addr_zip"]
    );
    assert!(
        out.value_schema.as_ref().unwrap().fields[1].schema.optional,
        "inside an optional struct"
    );
    assert_eq!(get(&out.value, "addr_city"), Some(&Value::from("Oslo")));

    let nested = Value::Map(vec![
        (Value::from("id"), Value::Int64(1)),
        (
            Value::from("addr"),
            Value::Map(vec![(Value::from("city"), Value::from("Oslo"))]),
        ),
    ]);
    let out = one(FLATTEN_VALUE, &[], Record::new("t", nested, None));
    assert_eq!(get(&out.value, "addr.city"), Some(&Value::from("Oslo")));
}

#[test]
fn cast_converts_fields_or_the_whole_value() {
    // Kafka Connect's doc example: spec=id:string (and a whole-value cast).
    let out = one(CAST_VALUE, &[("spec", "id:string")], person());
    assert_consistent(&out);
    assert_eq!(get(&out.value, "id"), Some(&Value::from("7")));
    assert_eq!(
        out.value_schema.as_ref().unwrap().fields[0]
            .schema
            .schema_type,
        SchemaType::String
    );
    let out = one(CAST_VALUE, &[("spec", "id:float64")], person_map());
    assert_eq!(get(&out.value, "id"), Some(&Value::Float64(7.0)));
    let out = one(
        CAST_VALUE,
        &[("spec", "int32")],
        Record::new("t", Value::from("42"), Some(string())),
    );
    assert_eq!(out.value, Value::Int32(42));
    assert!((CAST_VALUE.create)(&props(&[("spec", "id:date")])).is_err());
    let mut transform = build(CAST_VALUE, &[("spec", "name:int32")]);
    let err = transform.apply(person(), &mut Vec::new()).unwrap_err();
    assert!(err.message().contains("cannot cast"), "{err}");
}

#[test]
fn routers_filter_and_headers() {
    let out = one(TIMESTAMP_ROUTER, &[], person());
    assert_eq!(
        out.topic, "people-20240229",
        "the documented default format"
    );
    let out = one(
        TIMESTAMP_ROUTER,
        &[
            ("topic.format", "${timestamp}.${topic}"),
            ("timestamp.format", "yyyy-MM"),
        ],
        person(),
    );
    assert_eq!(out.topic, "2024-02.people");
    let out = one(
        REGEX_ROUTER,
        &[("regex", "peo(.*)"), ("replacement", "x$1")],
        person(),
    );
    assert_eq!(out.topic, "xple");
    assert!(apply(FILTER, &[], person()).is_empty());

    let out = one(
        INSERT_HEADER,
        &[("header", "source"), ("value.literal", "sluice")],
        person(),
    );
    assert_eq!(out.header("source").unwrap().value, Value::from("sluice"));
    let out = one(DROP_HEADERS, &[("headers", "source,other")], out);
    assert!(out.headers.is_empty());

    let out = one(
        HEADER_FROM_VALUE,
        &[
            ("fields", "id,email"),
            ("headers", "hid,hemail"),
            ("operation", "move"),
        ],
        person(),
    );
    assert_consistent(&out);
    assert_eq!(out.header("hid").unwrap().value, Value::Int64(7));
    assert_eq!(field_names(&out.value_schema), ["name"]);
    let out = one(
        HEADER_FROM_VALUE,
        &[("fields", "id"), ("headers", "hid"), ("operation", "copy")],
        person_map(),
    );
    assert_eq!(out.header("hid").unwrap().value, Value::Int64(7));
    assert_eq!(get(&out.value, "id"), Some(&Value::Int64(7)));
    assert!(
        (HEADER_FROM_VALUE.create)(&props(&[
            ("fields", "a,b"),
            ("headers", "x"),
            ("operation", "copy")
        ]))
        .is_err()
    );
}

#[test]
fn predicates_test_topics_headers_and_tombstones() {
    let matches = (TOPIC_NAME_MATCHES.create)(&props(&[("pattern", "peo.*")])).unwrap();
    assert!(matches.test(&person()));
    let has = (HAS_HEADER_KEY.create)(&props(&[("name", "h")])).unwrap();
    let mut record = person();
    assert!(!has.test(&record));
    record.headers.push(Header {
        key: "h".into(),
        value: Value::Null,
        schema: None,
    });
    assert!(has.test(&record));
    let tombstone = (RECORD_IS_TOMBSTONE.create)(&props(&[])).unwrap();
    assert!(!tombstone.test(&record));
    assert!(tombstone.test(&Record::new("t", Value::Null, None)));
}

/// A Debezium-shaped envelope: before/after rows, source {table, lsn, ts_ms}, op, ts_ms.
fn envelope(op: &str, before: Option<(i64, &str)>, after: Option<(i64, &str)>) -> Record {
    let row = Schema::struct_named("db.public.t.Value")
        .field("id", int64())
        .field("name", string())
        .optional()
        .into_ref();
    let source = Schema::struct_named("source")
        .field("table", string())
        .field("lsn", int64())
        .field("ts_ms", int64())
        .into_ref();
    let schema = Schema::struct_named("db.public.t.Envelope")
        .field("before", Arc::clone(&row))
        .field("after", Arc::clone(&row))
        .field("source", Arc::clone(&source))
        .field("op", string())
        .field("ts_ms", int64())
        .into_ref();
    let row_value = |r: Option<(i64, &str)>| match r {
        Some((id, name)) => Value::Struct(Struct {
            schema: Arc::clone(&row),
            values: vec![Value::Int64(id), Value::from(name)],
        }),
        None => Value::Null,
    };
    let value = Value::Struct(Struct {
        schema: Arc::clone(&schema),
        values: vec![
            row_value(before),
            row_value(after),
            Value::Struct(Struct {
                schema: source,
                values: vec![Value::from("t"), Value::Int64(99), Value::Int64(5)],
            }),
            Value::from(op),
            Value::Int64(6),
        ],
    });
    Record::new("db.public.t", value, Some(schema))
}

#[test]
fn extract_new_record_state_unwraps_like_debezium() {
    // Defaults: the after state; deletes and tombstones dropped.
    let out = one(
        EXTRACT_NEW_RECORD_STATE,
        &[],
        envelope("u", None, Some((1, "b"))),
    );
    assert_consistent(&out);
    assert_eq!(field_names(&out.value_schema), ["id", "name"]);
    assert_eq!(get(&out.value, "name"), Some(&Value::from("b")));
    assert!(
        apply(
            EXTRACT_NEW_RECORD_STATE,
            &[],
            envelope("d", Some((1, "b")), None)
        )
        .is_empty()
    );
    assert!(
        apply(
            EXTRACT_NEW_RECORD_STATE,
            &[],
            Record::new("db.public.t", Value::Null, None)
        )
        .is_empty()
    );

    // rewrite + add.fields: __deleted and __op/__table/__lsn/__source_ts_ms.
    let settings = [
        ("delete.handling.mode", "rewrite"),
        ("add.fields", "op,table,lsn,source.ts_ms"),
        ("drop.tombstones", "false"),
    ];
    let out = one(
        EXTRACT_NEW_RECORD_STATE,
        &settings,
        envelope("d", Some((1, "b")), None),
    );
    assert_consistent(&out);
    assert_eq!(
        field_names(&out.value_schema),
        [
            "id",
            "name",
            "__op",
            "__table",
            "__lsn",
            "__source_ts_ms",
            "__deleted"
        ]
    );
    assert_eq!(get(&out.value, "__deleted"), Some(&Value::from("true")));
    assert_eq!(get(&out.value, "__op"), Some(&Value::from("d")));
    assert_eq!(get(&out.value, "__table"), Some(&Value::from("t")));
    assert_eq!(get(&out.value, "__source_ts_ms"), Some(&Value::Int64(5)));
    assert_eq!(
        get(&out.value, "id"),
        Some(&Value::Int64(1)),
        "a delete's state is `before`"
    );
    assert_eq!(
        unwrap::field_type(out.value_schema.as_ref().unwrap(), "__lsn"),
        Some(SchemaType::Int64)
    );
    let out = one(
        EXTRACT_NEW_RECORD_STATE,
        &settings,
        envelope("c", None, Some((2, "c"))),
    );
    assert_eq!(get(&out.value, "__deleted"), Some(&Value::from("false")));
    assert_eq!(
        apply(
            EXTRACT_NEW_RECORD_STATE,
            &settings,
            Record::new("t", Value::Null, None)
        )
        .len(),
        1
    );

    // delete.tombstone.handling.mode overrides; headers; non-envelopes pass untouched.
    let settings = [
        ("delete.tombstone.handling.mode", "tombstone"),
        ("add.headers", "op"),
    ];
    assert!(
        apply(
            EXTRACT_NEW_RECORD_STATE,
            &settings,
            envelope("d", Some((1, "b")), None)
        )
        .is_empty()
    );
    assert_eq!(
        apply(
            EXTRACT_NEW_RECORD_STATE,
            &settings,
            Record::new("t", Value::Null, None)
        )
        .len(),
        1
    );
    let out = one(
        EXTRACT_NEW_RECORD_STATE,
        &settings,
        envelope("r", None, Some((3, "r"))),
    );
    assert_eq!(out.header("__op").unwrap().value, Value::from("r"));
    let other = Record::new("db.transaction", Value::from("BEGIN"), Some(string()));
    assert_eq!(
        one(EXTRACT_NEW_RECORD_STATE, &settings, other.clone()),
        other
    );
    assert!(apply(EXTRACT_NEW_RECORD_STATE, &[], envelope("t", None, None)).is_empty());

    // Schemaless envelopes (JsonConverter with schemas.enable=false).
    let map = Value::Map(vec![
        (Value::from("before"), Value::Null),
        (
            Value::from("after"),
            Value::Map(vec![(Value::from("id"), Value::Int64(4))]),
        ),
        (
            Value::from("source"),
            Value::Map(vec![(Value::from("table"), Value::from("t"))]),
        ),
        (Value::from("op"), Value::from("c")),
    ]);
    let out = one(
        EXTRACT_NEW_RECORD_STATE,
        &[("add.fields", "table")],
        Record::new("t", map, None),
    );
    assert_eq!(get(&out.value, "id"), Some(&Value::Int64(4)));
    assert_eq!(get(&out.value, "__table"), Some(&Value::from("t")));
}

#[test]
fn every_key_and_value_variant_answers_to_its_kafka_connect_class_name() {
    let names: Vec<&str> = transforms().iter().map(|t| t.class).collect();
    for expected in [
        "org.apache.kafka.connect.transforms.InsertField$Value",
        "org.apache.kafka.connect.transforms.ReplaceField$Key",
        "org.apache.kafka.connect.transforms.Flatten$Value",
        "org.apache.kafka.connect.transforms.HeaderFrom$Key",
        "io.debezium.transforms.ExtractNewRecordState",
    ] {
        assert!(names.contains(&expected), "{expected}");
    }
}
