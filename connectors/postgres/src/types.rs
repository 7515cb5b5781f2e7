//! Postgres values (text form, as pgoutput and snapshots deliver them with `DateStyle=ISO`,
//! `TimeZone=UTC`, `IntervalStyle=iso_8601`) mapped to Debezium's default types and semantic
//! schema names. Unknown types fall back to their text form — never an error.

use std::sync::Arc;

use base64::Engine;
use sluice_api::calendar::{civil_from_days, days_from_civil};
use sluice_api::data::{Schema, SchemaRef, SchemaType, Value};
use sluice_api::{Error, Result};
use sluice_debezium::BinaryMode;
use sluice_debezium::decimal::{parse_decimal, twos_complement};

/// How `numeric` columns are emitted (`decimal.handling.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalMode {
    /// `org.apache.kafka.connect.data.Decimal` bytes (fixed scale) or
    /// `io.debezium.data.VariableScaleDecimal` (unconstrained numeric).
    Precise,
    Double,
    String,
}

/// How `date`, `time` and `timestamp` columns are emitted (`time.precision.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimePrecision {
    /// By the column's precision: milliseconds (`io.debezium.time.Time`, `Timestamp`) up to 3
    /// fractional digits, microseconds (`MicroTime`, `MicroTimestamp`) above.
    Adaptive,
    /// As adaptive, but `time` always in microseconds (`io.debezium.time.MicroTime`).
    AdaptiveTimeMicroseconds,
    /// Kafka Connect's logical types (`org.apache.kafka.connect.data.Date`, `Time`,
    /// `Timestamp`): milliseconds whatever the precision, so microseconds are cut.
    Connect,
}

/// The mapping choices the connector's settings make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueModes {
    pub decimals: DecimalMode,
    pub time: TimePrecision,
    /// `hstore.handling.mode=map`: hstore as a Connect map (else a JSON string).
    pub hstore_map: bool,
    /// `interval.handling.mode=string`: intervals as `io.debezium.time.Interval` ISO strings
    /// (else `MicroDuration`).
    pub interval_string: bool,
    /// `binary.handling.mode`: bytea (and unknown types) as bytes or an encoded string.
    pub binary: BinaryMode,
}

impl Default for ValueModes {
    fn default() -> Self {
        ValueModes {
            decimals: DecimalMode::Precise,
            time: TimePrecision::Adaptive,
            hstore_map: false,
            interval_string: false,
            binary: BinaryMode::Bytes,
        }
    }
}

/// Well-known type OIDs.
pub mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const CHAR: u32 = 18;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const OID: u32 = 26;
    pub const JSON: u32 = 114;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const NUMERIC: u32 = 1700;
    pub const UUID: u32 = 2950;
    pub const JSONB: u32 = 3802;
    pub const MONEY: u32 = 790;
    pub const INTERVAL: u32 = 1186;
    pub const BIT: u32 = 1560;
    pub const VARBIT: u32 = 1562;
}

/// The OIDs the mapping handles itself; any other type is looked up in `pg_type` (arrays,
/// enums, domains, extension types) and otherwise falls back to its text form.
pub fn is_builtin_scalar(type_oid: u32) -> bool {
    use oid::*;
    matches!(
        type_oid,
        BOOL | BYTEA
            | CHAR
            | NAME
            | INT8
            | INT2
            | INT4
            | TEXT
            | OID
            | JSON
            | FLOAT4
            | FLOAT8
            | BPCHAR
            | VARCHAR
            | DATE
            | TIME
            | TIMESTAMP
            | TIMESTAMPTZ
            | NUMERIC
            | UUID
            | JSONB
            | MONEY
            | INTERVAL
            | BIT
            | VARBIT
    )
}

/// Whether Debezium maps a type sluice emits as its text form (network addresses, ranges,
/// `timetz`, `xml`, geometric types, `tsvector`, and the extension types it knows by name);
/// any other non-built-in type is unknown to it.
pub fn debezium_maps(type_oid: u32, name: &str) -> bool {
    const TEXT_MAPPED: &[u32] = &[
        142, 600, 601, 602, 603, 604, 628, 650, 718, 774, 829, 869, 1266, 3614, 3904, 3906, 3908,
        3910, 3912, 3926,
    ];
    const BY_NAME: &[&str] = &[
        "citext",
        "ltree",
        "isbn",
        "isbn13",
        "ean13",
        "ismn",
        "ismn13",
        "issn",
        "issn13",
        "upc",
        "geometry",
        "geography",
        "vector",
        "halfvec",
        "sparsevec",
    ];
    is_builtin_scalar(type_oid) || TEXT_MAPPED.contains(&type_oid) || BY_NAME.contains(&name)
}

/// What the catalog says a column holds beyond its scalar OID.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// A built-in scalar (or a type shown as its text form).
    Scalar,
    /// A one-dimensional array of the element type.
    Array(Box<ColumnType>),
    /// An enum, with its labels in sort order.
    Enum(Arc<[String]>),
    /// The `hstore` extension type: a JSON object, or a map (`hstore.handling.mode`).
    Hstore,
    /// A type Debezium has no mapping for (`tsquery`, `pg_lsn`, composite types, …): left
    /// out unless `include.unknown.datatypes`, then its text form as binary.
    Unknown,
}

/// A column's type as the mapping needs it (domains already resolved to their base type).
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnType {
    pub oid: u32,
    /// `atttypmod`: precision/scale of numeric, fractional digits of time types, bit length;
    /// -1 when unset.
    pub modifier: i32,
    pub shape: Shape,
}

impl ColumnType {
    /// A scalar type.
    pub fn scalar(oid: u32, modifier: i32) -> ColumnType {
        ColumnType {
            oid,
            modifier,
            shape: Shape::Scalar,
        }
    }

    fn numeric_scale(&self) -> Option<i32> {
        (self.oid == oid::NUMERIC && self.modifier >= 4).then(|| (self.modifier - 4) & 0xFFFF)
    }

    fn time_precision(&self) -> i32 {
        if self.modifier >= 0 { self.modifier } else { 6 }
    }
}

fn named(schema_type: SchemaType, name: &str) -> Schema {
    Schema::of(schema_type).named(name).versioned(1)
}

/// The Connect schema of a column (optional unless `required`).
pub fn column_schema(column: &ColumnType, modes: ValueModes, required: bool) -> SchemaRef {
    let schema = match &column.shape {
        Shape::Array(element) => Schema::array(column_schema(element, modes, false)),
        Shape::Enum(labels) => named(SchemaType::String, "io.debezium.data.Enum")
            .parameter("allowed", labels.join(",")),
        Shape::Hstore if modes.hstore_map => Schema::map(
            Schema::string().into_ref(),
            Schema::string().optional().into_ref(),
        ),
        Shape::Hstore => named(SchemaType::String, "io.debezium.data.Json"),
        Shape::Unknown => binary_schema(modes.binary),
        Shape::Scalar => scalar_schema(column, modes),
    };
    Arc::new(if required { schema } else { schema.optional() })
}

fn scalar_schema(column: &ColumnType, modes: ValueModes) -> Schema {
    let decimals = modes.decimals;
    match column.oid {
        oid::BOOL => Schema::of(SchemaType::Boolean),
        oid::INT2 => Schema::of(SchemaType::Int16),
        oid::INT4 => Schema::of(SchemaType::Int32),
        oid::INT8 | oid::OID => Schema::of(SchemaType::Int64),
        oid::FLOAT4 => Schema::of(SchemaType::Float32),
        oid::FLOAT8 => Schema::of(SchemaType::Float64),
        oid::BYTEA => binary_schema(modes.binary),
        oid::UUID => named(SchemaType::String, "io.debezium.data.Uuid"),
        oid::JSON | oid::JSONB => named(SchemaType::String, "io.debezium.data.Json"),
        oid::DATE | oid::TIME | oid::TIMESTAMP => {
            let (schema_type, name) = match temporal_unit(column, modes.time) {
                Temporal::Date => (SchemaType::Int32, "io.debezium.time.Date"),
                Temporal::Millis if column.oid == oid::TIME => {
                    (SchemaType::Int32, "io.debezium.time.Time")
                }
                Temporal::Millis => (SchemaType::Int64, "io.debezium.time.Timestamp"),
                Temporal::Micros if column.oid == oid::TIME => {
                    (SchemaType::Int64, "io.debezium.time.MicroTime")
                }
                Temporal::Micros => (SchemaType::Int64, "io.debezium.time.MicroTimestamp"),
                Temporal::ConnectDate => (SchemaType::Int32, "org.apache.kafka.connect.data.Date"),
                Temporal::ConnectMillis if column.oid == oid::TIME => {
                    (SchemaType::Int32, "org.apache.kafka.connect.data.Time")
                }
                Temporal::ConnectMillis => {
                    (SchemaType::Int64, "org.apache.kafka.connect.data.Timestamp")
                }
            };
            named(schema_type, name)
        }
        oid::TIMESTAMPTZ => named(SchemaType::String, "io.debezium.time.ZonedTimestamp"),
        oid::NUMERIC => match (decimals, column.numeric_scale()) {
            (DecimalMode::Double, _) => Schema::of(SchemaType::Float64),
            (DecimalMode::String, _) => Schema::of(SchemaType::String),
            (DecimalMode::Precise, Some(scale)) => {
                let precision = ((column.modifier - 4) >> 16) & 0xFFFF;
                Schema::of(SchemaType::Bytes)
                    .named("org.apache.kafka.connect.data.Decimal")
                    .versioned(1)
                    .parameter("scale", scale.to_string())
                    .parameter("connect.decimal.precision", precision.to_string())
            }
            (DecimalMode::Precise, None) => {
                let mut schema =
                    Schema::struct_named("io.debezium.data.VariableScaleDecimal").versioned(1);
                schema.doc = Some("Variable scaled decimal".to_owned());
                schema
                    .field("scale", Schema::of(SchemaType::Int32).into_ref())
                    .field("value", Schema::of(SchemaType::Bytes).into_ref())
            }
        },
        oid::MONEY => match decimals {
            DecimalMode::Double => Schema::of(SchemaType::Float64),
            DecimalMode::String => Schema::of(SchemaType::String),
            DecimalMode::Precise => Schema::of(SchemaType::Bytes)
                .named("org.apache.kafka.connect.data.Decimal")
                .versioned(1)
                .parameter("scale", MONEY_FRACTION_DIGITS.to_string()),
        },
        oid::INTERVAL if modes.interval_string => {
            named(SchemaType::String, "io.debezium.time.Interval")
        }
        oid::INTERVAL => named(SchemaType::Int64, "io.debezium.time.MicroDuration"),
        oid::BIT if column.modifier <= 1 => Schema::of(SchemaType::Boolean),
        oid::BIT | oid::VARBIT if column.modifier > 0 => {
            named(SchemaType::Bytes, "io.debezium.data.Bits")
                .parameter("length", column.modifier.to_string())
        }
        oid::BIT | oid::VARBIT => named(SchemaType::Bytes, "io.debezium.data.Bits"),
        _ => Schema::of(SchemaType::String),
    }
}

/// Bytes, or a string under the encoding `binary.handling.mode` names.
fn binary_schema(mode: BinaryMode) -> Schema {
    match mode {
        BinaryMode::Bytes => Schema::of(SchemaType::Bytes),
        _ => Schema::of(SchemaType::String),
    }
}

/// Binary data as `binary.handling.mode` emits it.
pub(crate) fn binary_value(mode: BinaryMode, bytes: Vec<u8>) -> Value {
    match mode {
        BinaryMode::Bytes => Value::Bytes(bytes),
        BinaryMode::Base64 => Value::from(base64::engine::general_purpose::STANDARD.encode(bytes)),
        BinaryMode::Base64UrlSafe => {
            Value::from(base64::engine::general_purpose::URL_SAFE.encode(bytes))
        }
        BinaryMode::Hex => {
            Value::from(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
        }
    }
}

/// The unit a `date`, `time` or `timestamp` column is emitted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Temporal {
    Date,
    Millis,
    Micros,
    ConnectDate,
    ConnectMillis,
}

pub(crate) fn temporal_unit(column: &ColumnType, mode: TimePrecision) -> Temporal {
    match (mode, column.oid) {
        (TimePrecision::Connect, oid::DATE) => Temporal::ConnectDate,
        (TimePrecision::Connect, _) => Temporal::ConnectMillis,
        (_, oid::DATE) => Temporal::Date,
        (TimePrecision::AdaptiveTimeMicroseconds, oid::TIME) => Temporal::Micros,
        _ if column.time_precision() <= 3 => Temporal::Millis,
        _ => Temporal::Micros,
    }
}

/// Debezium's `money.fraction.digits` default.
const MONEY_FRACTION_DIGITS: i32 = 2;

/// Debezium's average month for `io.debezium.time.MicroDuration` (365.25 / 12 days).
const DAYS_PER_MONTH_AVG: f64 = 365.25 / 12.0;

/// Converts a value's text form to the value `column_schema` describes.
pub fn column_value(
    column: &ColumnType,
    modes: ValueModes,
    schema: &SchemaRef,
    text: &str,
) -> Result<Value> {
    let decimals = modes.decimals;
    let bad = |what: &str| Error::data(format!("cannot read `{text}` as {what}"));
    match &column.shape {
        Shape::Scalar => {}
        Shape::Enum(_) => return Ok(Value::from(text.to_owned())),
        Shape::Hstore => {
            let map = parse_hstore(text).ok_or_else(|| bad("hstore"))?;
            if modes.hstore_map {
                return Ok(Value::Map(
                    map.into_iter()
                        .map(|(k, v)| {
                            let v = v.as_str().map_or(Value::Null, Value::from);
                            (Value::from(k), v)
                        })
                        .collect(),
                ));
            }
            return Ok(Value::from(serde_json::Value::Object(map).to_string()));
        }
        Shape::Unknown => return Ok(binary_value(modes.binary, text.as_bytes().to_vec())),
        Shape::Array(element) => {
            let items = parse_array(text).ok_or_else(|| {
                let nested = text.starts_with("{{") || text.starts_with('[');
                if nested {
                    Error::data(format!(
                        "`{text}` is a multi-dimensional array (or has explicit bounds), which has no \
                         Debezium mapping (an array column's schema is one list of its element type); \
                         store one-dimensional arrays, or leave the column out with column.exclude.list"
                    ))
                } else {
                    bad("an array")
                }
            })?;
            let element_schema = schema
                .value_schema
                .clone()
                .unwrap_or_else(|| column_schema(element, modes, false));
            return items
                .into_iter()
                .map(|item| match item {
                    None => Ok(Value::Null),
                    Some(item) => column_value(element, modes, &element_schema, &item),
                })
                .collect::<Result<Vec<_>>>()
                .map(Value::Array);
        }
    }
    Ok(match column.oid {
        oid::BOOL => Value::Boolean(text == "t" || text == "true"),
        oid::INT2 => Value::Int16(text.parse().map_err(|_| bad("int2"))?),
        oid::INT4 => Value::Int32(text.parse().map_err(|_| bad("int4"))?),
        oid::INT8 | oid::OID => Value::Int64(text.parse().map_err(|_| bad("int8"))?),
        oid::FLOAT4 => Value::Float32(parse_float(text).ok_or_else(|| bad("float4"))? as f32),
        oid::FLOAT8 => Value::Float64(parse_float(text).ok_or_else(|| bad("float8"))?),
        oid::BYTEA => binary_value(modes.binary, parse_bytea(text).ok_or_else(|| bad("bytea"))?),
        oid::DATE => Value::Int32(parse_date(text).ok_or_else(|| bad("date"))? as i32),
        oid::TIME => {
            let micros = parse_time(text).ok_or_else(|| bad("time"))?;
            match temporal_unit(column, modes.time) {
                Temporal::Micros => Value::Int64(micros),
                _ => Value::Int32((micros / 1000) as i32),
            }
        }
        oid::TIMESTAMP => {
            let micros = parse_timestamp(text).ok_or_else(|| bad("timestamp"))?;
            match temporal_unit(column, modes.time) {
                Temporal::Micros => Value::Int64(micros),
                _ => Value::Int64(micros.div_euclid(1000)),
            }
        }
        oid::TIMESTAMPTZ => Value::from(zoned_timestamp(text).ok_or_else(|| bad("timestamptz"))?),
        oid::NUMERIC => match decimals {
            DecimalMode::Double => Value::Float64(parse_float(text).ok_or_else(|| bad("numeric"))?),
            DecimalMode::String => Value::from(text.to_owned()),
            DecimalMode::Precise => {
                let (unscaled, scale) = parse_decimal(text).ok_or_else(|| bad("numeric"))?;
                match column.numeric_scale() {
                    Some(fixed) => Value::Bytes(twos_complement(
                        unscaled * 10i128.pow((fixed - scale).max(0) as u32),
                    )),
                    None => {
                        let mut s = sluice_api::data::Struct::new(Arc::clone(schema));
                        s.put("scale", Value::Int32(scale))?;
                        s.put("value", Value::Bytes(twos_complement(unscaled)))?;
                        Value::Struct(s)
                    }
                }
            }
        },
        oid::MONEY => {
            let plain: String = text
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
                .collect();
            let negative = text.contains('(') || plain.starts_with('-');
            let (unscaled, scale) =
                parse_decimal(plain.trim_start_matches('-')).ok_or_else(|| bad("money"))?;
            let unscaled = if negative { -unscaled } else { unscaled };
            match decimals {
                DecimalMode::Double => Value::Float64(unscaled as f64 / 10f64.powi(scale)),
                DecimalMode::String => Value::from(format!(
                    "{}{}",
                    if negative { "-" } else { "" },
                    plain.trim_start_matches('-')
                )),
                DecimalMode::Precise => Value::Bytes(twos_complement(
                    unscaled * 10i128.pow((MONEY_FRACTION_DIGITS - scale).max(0) as u32),
                )),
            }
        }
        oid::INTERVAL if modes.interval_string => {
            Value::from(interval_string(text).ok_or_else(|| bad("interval"))?)
        }
        oid::INTERVAL => Value::Int64(parse_interval(text).ok_or_else(|| bad("interval"))?),
        oid::BIT if column.modifier <= 1 => Value::Boolean(text == "1"),
        oid::BIT | oid::VARBIT => Value::Bytes(parse_bits(text).ok_or_else(|| bad("bit string"))?),
        _ => Value::from(text.to_owned()),
    })
}

/// Types whose catalog default Debezium reads (`PostgresDefaultValueConverter`), with the
/// value it takes for a default computed by a function (`nextval(…)`, `now()`, …), in the text
/// form [`column_value`] reads. Other types (bytea, money, hstore, arrays, …) get no default.
fn default_placeholder(column: &ColumnType) -> Option<&'static str> {
    if matches!(column.shape, Shape::Enum(_)) {
        return Some("");
    }
    if column.shape != Shape::Scalar {
        return None;
    }
    Some(match column.oid {
        oid::BIT | oid::VARBIT => "0",
        oid::BOOL => "false",
        oid::BPCHAR | oid::VARCHAR | oid::TEXT | XML => "",
        oid::NUMERIC | oid::FLOAT4 | oid::FLOAT8 | oid::INT2 | oid::INT4 | oid::INT8 => "0",
        oid::JSON | oid::JSONB => "{}",
        oid::UUID => "00000000-0000-0000-0000-000000000000",
        oid::DATE => "1970-01-01",
        oid::TIME => "00:00:00",
        oid::TIMESTAMP => "1970-01-01 00:00:00",
        oid::TIMESTAMPTZ => "1970-01-01 00:00:00+00",
        oid::INTERVAL => "PT0S",
        _ => return None,
    })
}

/// The `xml` type's OID.
const XML: u32 = 142;

/// The schema `default` of a column whose catalog default (`pg_get_expr`) is `expression`, as
/// Debezium reads it: a quoted literal (`'new'::character varying` → `new`) or a bare one
/// (`7`, `true`), converted like the column's values; a function call (`nextval(…)`, `now()`)
/// or `CURRENT_*` gives the type's placeholder (a serial's default is 0). Anything else, and a
/// struct-valued default (Connect cannot hold one), gives none.
pub fn default_value(
    column: &ColumnType,
    modes: ValueModes,
    schema: &SchemaRef,
    expression: &str,
) -> Option<Value> {
    let placeholder = default_placeholder(column)?;
    let expression = expression.trim();
    let lower = expression.to_ascii_lowercase();
    let is_function = {
        let body = expression.strip_prefix('(').unwrap_or(expression);
        let name_end = body
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(body.len());
        name_end > 0 && body[name_end..].starts_with('(') && expression.contains(')')
    };
    let current = [
        "current_timestamp",
        "current_time",
        "current_date",
        "localtime",
        "localtimestamp",
    ];
    let text: String = if is_function || current.contains(&lower.as_str()) {
        placeholder.to_owned()
    } else if let Some(start) = expression.find('\'') {
        // The first quoted literal, with doubled quotes undone.
        let mut literal = String::new();
        let mut chars = expression[start + 1..].chars().peekable();
        loop {
            match chars.next()? {
                '\'' if chars.peek() == Some(&'\'') => {
                    chars.next();
                    literal.push('\'');
                }
                '\'' => break,
                c => literal.push(c),
            }
        }
        literal
    } else if lower.starts_with("null::") || lower == "null" {
        return None;
    } else {
        expression.to_owned()
    };
    match column_value(column, modes, schema, &text) {
        Ok(Value::Struct(_)) | Err(_) => None,
        Ok(value) => Some(value),
    }
}

/// What a NOT NULL column holds where the stream sent no value (a delete's `before` under
/// `REPLICA IDENTITY DEFAULT` carries only the key): its schema's default, else the type's
/// empty value, as Debezium's converters fall back (`""`, `0`, `false`, epoch, `{}`, `[]`).
pub fn fallback_value(schema: &Schema) -> Value {
    if let Some(default) = &schema.default {
        return default.clone();
    }
    match schema.schema_type {
        SchemaType::Boolean => Value::Boolean(false),
        SchemaType::Int8 => Value::Int8(0),
        SchemaType::Int16 => Value::Int16(0),
        SchemaType::Int32 => Value::Int32(0),
        SchemaType::Int64 => Value::Int64(0),
        SchemaType::Float32 => Value::Float32(0.0),
        SchemaType::Float64 => Value::Float64(0.0),
        SchemaType::String => Value::from(match schema.name.as_deref() {
            Some("io.debezium.data.Json") => "{}",
            Some("io.debezium.time.ZonedTimestamp") => "1970-01-01T00:00:00Z",
            Some("io.debezium.time.Interval") => "P0Y0M0DT0H0M0S",
            _ => "",
        }),
        SchemaType::Bytes
            if schema.name.as_deref() == Some("org.apache.kafka.connect.data.Decimal") =>
        {
            Value::Bytes(vec![0])
        }
        SchemaType::Bytes => Value::Bytes(Vec::new()),
        SchemaType::Array => Value::Array(Vec::new()),
        SchemaType::Map => Value::Map(Vec::new()),
        SchemaType::Struct => {
            let mut zero = sluice_api::data::Struct::new(Arc::new(schema.clone()));
            let _ = zero.put("scale", Value::Int32(0));
            let _ = zero.put("value", Value::Bytes(vec![0]));
            Value::Struct(zero)
        }
    }
}

/// `pgjdbc`'s length and scale of a column (what Debezium's `column.propagate.source.type`
/// reports as `__debezium.source.column.length` / `.scale`), for the common types; `None`
/// where sluice does not know the driver's figure.
pub fn source_length_and_scale(column: &ColumnType) -> Option<(i64, i64)> {
    let unbounded = 2_147_483_647;
    Some(match column.oid {
        oid::BPCHAR | oid::VARCHAR if column.modifier >= 4 => (i64::from(column.modifier - 4), 0),
        oid::BPCHAR | oid::VARCHAR | oid::TEXT => (unbounded, 0),
        oid::NUMERIC if column.modifier >= 4 => (
            i64::from(((column.modifier - 4) >> 16) & 0xFFFF),
            i64::from((column.modifier - 4) & 0xFFFF),
        ),
        oid::INT2 => (5, 0),
        oid::INT4 => (10, 0),
        oid::INT8 => (19, 0),
        oid::FLOAT4 => (8, 8),
        oid::FLOAT8 => (17, 17),
        oid::BOOL => (1, 0),
        _ if matches!(column.shape, Shape::Enum(_)) => (unbounded, 0),
        _ => return None,
    })
}

/// The declared length of a character column (`varchar(20)`: 20), `None` when unbounded.
pub fn declared_length(column: &ColumnType) -> Option<i64> {
    (matches!(column.oid, oid::BPCHAR | oid::VARCHAR) && column.modifier >= 4)
        .then(|| i64::from(column.modifier - 4))
}

/// Whether the column holds text (masking and hashing apply only to such columns).
pub fn is_character(column: &ColumnType) -> bool {
    column.shape == Shape::Scalar
        && matches!(
            column.oid,
            oid::BPCHAR | oid::VARCHAR | oid::TEXT | oid::CHAR | oid::NAME
        )
}

/// A one-dimensional array literal (`{1,NULL,"a b","q\"x"}`) into its elements' text forms.
/// `None` for anything else, including nested (multi-dimensional) arrays.
fn parse_array(text: &str) -> Option<Vec<Option<String>>> {
    let inner = text.strip_prefix('{')?.strip_suffix('}')?;
    let mut items = Vec::new();
    if inner.is_empty() {
        return Some(items);
    }
    let mut chars = inner.chars().peekable();
    loop {
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut item = String::new();
            loop {
                match chars.next()? {
                    '\\' => item.push(chars.next()?),
                    '"' => break,
                    c => item.push(c),
                }
            }
            items.push(Some(item));
        } else {
            let mut item = String::new();
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                if c == '{' || c == '}' || c == '"' {
                    return None;
                }
                item.push(c);
                chars.next();
            }
            let item = item.trim().to_owned();
            items.push((item != "NULL").then_some(item));
        }
        match chars.next() {
            None => return Some(items),
            Some(',') => {}
            Some(_) => return None,
        }
    }
}

/// hstore's text form (`"a"=>"1", "b"=>NULL`) into a JSON object.
fn parse_hstore(text: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    fn quoted(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<String> {
        if chars.next()? != '"' {
            return None;
        }
        let mut out = String::new();
        loop {
            match chars.next()? {
                '\\' => out.push(chars.next()?),
                '"' => return Some(out),
                c => out.push(c),
            }
        }
    }
    let mut map = serde_json::Map::new();
    let mut chars = text.trim().chars().peekable();
    while chars.peek().is_some() {
        let key = quoted(&mut chars)?;
        if chars.next()? != '=' || chars.next()? != '>' {
            return None;
        }
        let value = if chars.peek() == Some(&'"') {
            serde_json::Value::String(quoted(&mut chars)?)
        } else {
            let word: String = chars.by_ref().take(4).collect();
            if word != "NULL" {
                return None;
            }
            serde_json::Value::Null
        };
        map.insert(key, value);
        match chars.next() {
            None => break,
            Some(',') => {
                while chars.peek() == Some(&' ') {
                    chars.next();
                }
            }
            Some(_) => return None,
        }
    }
    Some(map)
}

/// An ISO 8601 interval (`P1Y2M3DT4H5M6.5S`, components may be negative) as Debezium's
/// `MicroDuration`: months count as 365.25/12 days.
fn parse_interval(text: &str) -> Option<i64> {
    let body = text.strip_prefix('P')?;
    let (date, time) = body.split_once('T').unwrap_or((body, ""));
    let mut micros = 0f64;
    for (part, units) in [(date, "YMWD"), (time, "HMS")] {
        let mut number = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' || c == '-' {
                number.push(c);
                continue;
            }
            if !units.contains(c) {
                return None;
            }
            let n: f64 = number.parse().ok()?;
            number.clear();
            let day = 86_400e6;
            micros += n * match (units, c) {
                ("YMWD", 'Y') => 12.0 * DAYS_PER_MONTH_AVG * day,
                ("YMWD", 'M') => DAYS_PER_MONTH_AVG * day,
                ("YMWD", 'W') => 7.0 * day,
                ("YMWD", _) => day,
                (_, 'H') => 3_600e6,
                (_, 'M') => 60e6,
                _ => 1e6,
            };
        }
        if !number.is_empty() {
            return None;
        }
    }
    Some(micros.round() as i64)
}

/// An ISO 8601 interval as Debezium's `io.debezium.time.Interval` writes it: every component,
/// seconds without trailing zeros (`P1D` → `P0Y0M1DT0H0M0S`).
fn interval_string(text: &str) -> Option<String> {
    let body = text.strip_prefix('P')?;
    let (date, time) = body.split_once('T').unwrap_or((body, ""));
    let mut parts = [0i64; 5];
    let mut seconds = String::from("0");
    for (part, units) in [(date, "YMWD"), (time, "HMS")] {
        let mut number = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' || c == '-' {
                number.push(c);
                continue;
            }
            let whole = || number.parse::<i64>().ok();
            match (units, c) {
                ("YMWD", 'Y') => parts[0] += whole()?,
                ("YMWD", 'M') => parts[1] += whole()?,
                ("YMWD", 'W') => parts[2] += 7 * whole()?,
                ("YMWD", 'D') => parts[2] += whole()?,
                ("HMS", 'H') => parts[3] += whole()?,
                ("HMS", 'M') => parts[4] += whole()?,
                ("HMS", 'S') => {
                    number.parse::<f64>().ok()?;
                    seconds = if number.contains('.') {
                        number
                            .trim_end_matches('0')
                            .trim_end_matches('.')
                            .to_owned()
                    } else {
                        number.clone()
                    };
                    if seconds.is_empty() || seconds == "-" || seconds == "-0" {
                        seconds = "0".into();
                    }
                }
                _ => return None,
            }
            number.clear();
        }
        if !number.is_empty() {
            return None;
        }
    }
    let [y, m, d, h, min] = parts;
    Some(format!("P{y}Y{m}M{d}DT{h}H{min}M{seconds}S"))
}

/// A bit string (`0101`) as Debezium's `io.debezium.data.Bits`: the bits as an unsigned
/// number, little-endian, in as many bytes as the bits need.
fn parse_bits(text: &str) -> Option<Vec<u8>> {
    let bits = text.as_bytes();
    let mut bytes = vec![0u8; bits.len().div_ceil(8).max(1)];
    for (i, bit) in bits.iter().rev().enumerate() {
        match bit {
            b'1' => bytes[i / 8] |= 1 << (i % 8),
            b'0' => {}
            _ => return None,
        }
    }
    Some(bytes)
}

fn parse_float(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

fn parse_bytea(text: &str) -> Option<Vec<u8>> {
    let hex = text.strip_prefix("\\x")?;
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

fn parse_date(text: &str) -> Option<i64> {
    let (text, bc) = match text.strip_suffix(" BC") {
        Some(t) => (t, true),
        None => (text, false),
    };
    let mut parts = text.splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: i64 = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.parse().ok()?;
    Some(days_from_civil(
        if bc { 1 - year } else { year },
        month,
        day,
    ))
}

/// Microseconds since midnight of `HH:MM:SS[.ffffff]`.
fn parse_time(text: &str) -> Option<i64> {
    let mut parts = text.splitn(3, ':');
    let hours: i64 = parts.next()?.parse().ok()?;
    let minutes: i64 = parts.next()?.parse().ok()?;
    let (seconds, fraction) = match parts.next()?.split_once('.') {
        Some((s, f)) => (s, f),
        None => (parts_rest(text)?, ""),
    };
    let seconds: i64 = seconds.parse().ok()?;
    let micros: i64 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<6}").get(..6)?.parse().ok()?
    };
    Some(((hours * 60 + minutes) * 60 + seconds) * 1_000_000 + micros)
}

fn parts_rest(text: &str) -> Option<&str> {
    text.rsplit(':').next()
}

/// Microseconds since the epoch of `YYYY-MM-DD HH:MM:SS[.ffffff]` (no zone).
fn parse_timestamp(text: &str) -> Option<i64> {
    match text {
        "infinity" => return Some(i64::MAX),
        "-infinity" => return Some(i64::MIN),
        _ => {}
    }
    // A year before 1 AD ends the whole value: `0044-03-15 10:00:00 BC`.
    let (text, bc) = match text.strip_suffix(" BC") {
        Some(t) => (t, true),
        None => (text, false),
    };
    let (date, time) = text.split_once(' ')?;
    let days = if bc {
        parse_date(&format!("{date} BC"))?
    } else {
        parse_date(date)?
    };
    // Past year ~294,000 the microseconds leave i64: not a value, rather than a wrapped one.
    days.checked_mul(86_400_000_000)?
        .checked_add(parse_time(time)?)
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]+HH[:MM]` (with `TimeZone=UTC` the offset is `+00`) as
/// Debezium's ZonedTimestamp: ISO-8601 in UTC, e.g. `2024-03-01T10:20:30.500000Z`.
fn zoned_timestamp(text: &str) -> Option<String> {
    let split = text.rfind(['+', '-']).filter(|i| *i > 10)?;
    let (local, offset) = text.split_at(split);
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let mut fields = offset[1..].split(':');
    let hours: i64 = fields.next()?.parse().ok()?;
    let minutes: i64 = fields.next().map(|m| m.parse().ok()).unwrap_or(Some(0))?;
    let micros = parse_timestamp(local)? - sign * (hours * 60 + minutes) * 60_000_000;
    let (days, of_day) = (
        micros.div_euclid(86_400_000_000),
        micros.rem_euclid(86_400_000_000),
    );
    let (year, month, day) = civil_from_days(days);
    let seconds = of_day / 1_000_000;
    let fraction = of_day % 1_000_000;
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    );
    // Six digits always: Debezium formats by the column's precision, which the JDBC driver
    // reports as 6 for `timestamptz`.
    out.push_str(&format!(".{fraction:06}Z"));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(decimals: DecimalMode) -> ValueModes {
        ValueModes {
            decimals,
            ..ValueModes::default()
        }
    }

    /// The schema name and value of `text` in a column of type `oid(modifier)` under `time`.
    fn temporal(time: TimePrecision, oid: u32, modifier: i32, text: &str) -> (String, Value) {
        let modes = ValueModes {
            time,
            ..ValueModes::default()
        };
        let column = ColumnType::scalar(oid, modifier);
        let schema = column_schema(&column, modes, false);
        let value = column_value(&column, modes, &schema, text).unwrap();
        (schema.name.clone().unwrap_or_default(), value)
    }

    #[test]
    fn time_precision_mode_picks_debezium_s_or_connect_s_temporal_types() {
        use TimePrecision::*;
        let day = "2024-02-29";
        let time = "10:20:30.123456";
        let stamp = "1969-12-31 23:59:59.9995";
        let named = |name: &str, value: Value| (name.to_owned(), value);
        let cases = [
            (
                Adaptive,
                oid::DATE,
                -1,
                day,
                named("io.debezium.time.Date", Value::Int32(19782)),
            ),
            (
                Adaptive,
                oid::TIME,
                3,
                "10:20:30.123",
                named("io.debezium.time.Time", Value::Int32(37_230_123)),
            ),
            (
                Adaptive,
                oid::TIME,
                -1,
                time,
                named("io.debezium.time.MicroTime", Value::Int64(37_230_123_456)),
            ),
            (
                Adaptive,
                oid::TIMESTAMP,
                3,
                "1969-12-31 23:59:59.999",
                named("io.debezium.time.Timestamp", Value::Int64(-1)),
            ),
            (
                Adaptive,
                oid::TIMESTAMP,
                -1,
                stamp,
                named("io.debezium.time.MicroTimestamp", Value::Int64(-500)),
            ),
            (
                AdaptiveTimeMicroseconds,
                oid::TIME,
                3,
                "10:20:30.123",
                named("io.debezium.time.MicroTime", Value::Int64(37_230_123_000)),
            ),
            (
                AdaptiveTimeMicroseconds,
                oid::TIMESTAMP,
                3,
                "1969-12-31 23:59:59.999",
                named("io.debezium.time.Timestamp", Value::Int64(-1)),
            ),
            (
                Connect,
                oid::DATE,
                -1,
                day,
                named("org.apache.kafka.connect.data.Date", Value::Int32(19782)),
            ),
            (
                Connect,
                oid::TIME,
                -1,
                time,
                named(
                    "org.apache.kafka.connect.data.Time",
                    Value::Int32(37_230_123),
                ),
            ),
            // Milliseconds, rounded down as Connect's Timestamp (a java.util.Date) holds them.
            (
                Connect,
                oid::TIMESTAMP,
                -1,
                stamp,
                named("org.apache.kafka.connect.data.Timestamp", Value::Int64(-1)),
            ),
        ];
        for (mode, oid, modifier, text, expected) in cases {
            assert_eq!(
                temporal(mode, oid, modifier, text),
                expected,
                "{mode:?} {oid} {text}"
            );
        }
        let (name, _) = temporal(Connect, oid::TIMESTAMPTZ, -1, "2024-03-01 01:00:00+02");
        assert_eq!(
            name, "io.debezium.time.ZonedTimestamp",
            "timestamptz keeps its zone in every mode"
        );
    }

    fn value(oid: u32, modifier: i32, text: &str) -> Value {
        let column = ColumnType::scalar(oid, modifier);
        let schema = column_schema(&column, with(DecimalMode::Precise), false);
        column_value(&column, with(DecimalMode::Precise), &schema, text).unwrap()
    }

    #[test]
    fn arrays_hstore_intervals_bits_and_money() {
        assert_eq!(
            parse_array(r#"{1,NULL,"a b","q\"x",""}"#),
            Some(vec![
                Some("1".into()),
                None,
                Some("a b".into()),
                Some("q\"x".into()),
                Some(String::new())
            ])
        );
        assert_eq!(parse_array("{}"), Some(vec![]));
        assert_eq!(parse_array("{{1,2},{3,4}}"), None, "multi-dimensional");
        let ints = ColumnType {
            oid: 1007,
            modifier: -1,
            shape: Shape::Array(Box::new(ColumnType::scalar(oid::INT4, -1))),
        };
        let schema = column_schema(&ints, with(DecimalMode::Precise), false);
        assert_eq!(schema.schema_type, SchemaType::Array);
        assert_eq!(
            column_value(&ints, with(DecimalMode::Precise), &schema, "{1,NULL,-3}").unwrap(),
            Value::Array(vec![Value::Int32(1), Value::Null, Value::Int32(-3)])
        );
        for nested in ["{{1,2},{3,4}}", "[0:1]={7,8}"] {
            let err = column_value(&ints, with(DecimalMode::Precise), &schema, nested).unwrap_err();
            assert!(err.message().contains("multi-dimensional"), "{err}");
            assert!(err.message().contains("column.exclude.list"), "{err}");
        }

        let hstore = parse_hstore(r#""a"=>"1", "b"=>NULL, "c \"q\""=>"x,y""#).unwrap();
        assert_eq!(
            serde_json::Value::Object(hstore),
            serde_json::json!({"a": "1", "b": null, "c \"q\"": "x,y"})
        );
        assert_eq!(parse_hstore(""), Some(serde_json::Map::new()));

        assert_eq!(
            value(oid::INTERVAL, -1, "PT1H2M3.5S"),
            Value::Int64(3_723_500_000)
        );
        assert_eq!(
            value(oid::INTERVAL, -1, "P1D"),
            Value::Int64(86_400_000_000)
        );
        assert_eq!(
            value(oid::INTERVAL, -1, "P1M"),
            Value::Int64(2_629_800_000_000),
            "a month is 365.25/12 days, as in Debezium"
        );
        assert_eq!(
            value(oid::INTERVAL, -1, "P-1DT-1H"),
            Value::Int64(-90_000_000_000)
        );

        assert_eq!(value(oid::BIT, 1, "1"), Value::Boolean(true));
        assert_eq!(value(oid::BIT, 3, "101"), Value::Bytes(vec![0x05]));
        assert_eq!(
            value(oid::VARBIT, 16, "0000000100000010"),
            Value::Bytes(vec![0x02, 0x01]),
            "little-endian"
        );
        assert_eq!(
            value(oid::MONEY, -1, "$1,234.50"),
            Value::Bytes(vec![0x01, 0xE2, 0x3A])
        );
        assert_eq!(value(oid::MONEY, -1, "-$0.05"), Value::Bytes(vec![0xFB]));
    }

    #[test]
    fn numbers_booleans_and_text() {
        assert_eq!(value(oid::INT2, -1, "-7"), Value::Int16(-7));
        assert_eq!(
            value(oid::INT8, -1, "9007199254740993"),
            Value::Int64(9_007_199_254_740_993)
        );
        assert_eq!(value(oid::BOOL, -1, "t"), Value::Boolean(true));
        assert!(matches!(value(oid::FLOAT8, -1, "NaN"), Value::Float64(v) if v.is_nan()));
        assert_eq!(
            value(oid::FLOAT8, -1, "-Infinity"),
            Value::Float64(f64::NEG_INFINITY)
        );
        assert_eq!(
            value(oid::BYTEA, -1, "\\x00ff10"),
            Value::Bytes(vec![0, 255, 16])
        );
        assert_eq!(
            value(600, -1, "(1,2)"),
            Value::from("(1,2)"),
            "unknown types keep their text form"
        );
    }

    #[test]
    fn decimals_follow_decimal_handling_mode() {
        // numeric(10,2): modifier = ((10 << 16) | 2) + 4
        let modifier = ((10 << 16) | 2) + 4;
        assert_eq!(
            value(oid::NUMERIC, modifier, "12.5"),
            Value::Bytes(vec![0x04, 0xE2]),
            "1250 at scale 2"
        );
        assert_eq!(
            value(oid::NUMERIC, modifier, "-1.00"),
            Value::Bytes(vec![0x9C]),
            "-100 is one byte, as Java's BigInteger writes it"
        );
        let schema = column_schema(
            &ColumnType::scalar(oid::NUMERIC, modifier),
            with(DecimalMode::Precise),
            false,
        );
        assert_eq!(
            schema.name.as_deref(),
            Some("org.apache.kafka.connect.data.Decimal")
        );
        assert_eq!(
            schema.parameters,
            [
                ("scale".to_owned(), "2".to_owned()),
                ("connect.decimal.precision".to_owned(), "10".to_owned())
            ]
        );
        let Value::Struct(variable) = value(oid::NUMERIC, -1, "3.14159") else {
            panic!()
        };
        assert_eq!(variable.get("scale"), Some(&Value::Int32(5)));
        assert_eq!(
            variable.get("value"),
            Some(&Value::Bytes(vec![0x04, 0xCB, 0x2F]))
        );
        let column = ColumnType::scalar(oid::NUMERIC, modifier);
        let double = column_schema(&column, with(DecimalMode::Double), false);
        assert_eq!(
            column_value(&column, with(DecimalMode::Double), &double, "12.5").unwrap(),
            Value::Float64(12.5)
        );
        let string = column_schema(&column, with(DecimalMode::String), false);
        assert_eq!(
            column_value(&column, with(DecimalMode::String), &string, "12.50").unwrap(),
            Value::from("12.50")
        );
    }

    #[test]
    fn temporal_types_use_debezium_adaptive_precision() {
        assert_eq!(value(oid::DATE, -1, "1970-01-02"), Value::Int32(1));
        assert_eq!(value(oid::DATE, -1, "2024-02-29"), Value::Int32(19_782));
        assert_eq!(value(oid::DATE, -1, "1969-12-31"), Value::Int32(-1));
        assert_eq!(
            value(oid::TIME, -1, "10:20:30.5"),
            Value::Int64(37_230_500_000)
        );
        assert_eq!(value(oid::TIME, 3, "00:00:01.25"), Value::Int32(1250));
        assert_eq!(
            value(oid::TIMESTAMP, -1, "2024-02-29 10:20:30.123456"),
            Value::Int64(1_709_202_030_123_456)
        );
        assert_eq!(
            value(oid::TIMESTAMP, 0, "1970-01-01 00:00:01"),
            Value::Int64(1000)
        );
        assert_eq!(
            value(oid::TIMESTAMPTZ, -1, "2024-02-29 10:20:30.5+00"),
            Value::from("2024-02-29T10:20:30.500000Z")
        );
        assert_eq!(
            value(oid::TIMESTAMPTZ, -1, "2024-03-01 01:00:00+02"),
            Value::from("2024-02-29T23:00:00.000000Z")
        );
        assert_eq!(
            column_schema(
                &ColumnType::scalar(oid::TIMESTAMP, -1),
                with(DecimalMode::Precise),
                false
            )
            .name
            .as_deref(),
            Some("io.debezium.time.MicroTimestamp")
        );
    }

    #[test]
    fn defaults_are_read_as_debezium_reads_them() {
        let modes = ValueModes::default();
        let default = |oid: u32, modifier: i32, expression: &str| {
            let column = ColumnType::scalar(oid, modifier);
            let schema = column_schema(&column, modes, true);
            default_value(&column, modes, &schema, expression)
        };
        assert_eq!(
            default(oid::VARCHAR, -1, "'new'::character varying"),
            Some(Value::from("new"))
        );
        assert_eq!(
            default(oid::TEXT, -1, "'can''t'::text"),
            Some(Value::from("can't"))
        );
        assert_eq!(default(oid::INT4, -1, "7"), Some(Value::Int32(7)));
        assert_eq!(
            default(oid::INT4, -1, "'-1'::integer"),
            Some(Value::Int32(-1))
        );
        assert_eq!(
            default(oid::INT4, -1, "nextval('customers_id_seq'::regclass)"),
            Some(Value::Int32(0)),
            "a serial's default is 0"
        );
        assert_eq!(default(oid::BOOL, -1, "true"), Some(Value::Boolean(true)));
        assert_eq!(
            default(oid::TIMESTAMPTZ, -1, "now()"),
            Some(Value::from("1970-01-01T00:00:00.000000Z"))
        );
        assert_eq!(
            default(oid::INT4, -1, "(1 + 2)"),
            None,
            "expressions are not evaluated"
        );
        assert_eq!(default(oid::TEXT, -1, "NULL::text"), None);
        assert_eq!(
            default(oid::BYTEA, -1, "'\\x00'::bytea"),
            None,
            "bytea has no default mapper"
        );
        assert_eq!(
            default(oid::NUMERIC, -1, "0"),
            None,
            "a struct cannot be a default"
        );
    }

    #[test]
    fn not_null_columns_without_a_value_take_the_type_s_empty_value() {
        let modes = ValueModes::default();
        let fallback =
            |oid: u32| fallback_value(&column_schema(&ColumnType::scalar(oid, -1), modes, true));
        assert_eq!(fallback(oid::VARCHAR), Value::from(""));
        assert_eq!(fallback(oid::INT2), Value::Int16(0));
        assert_eq!(fallback(oid::BOOL), Value::Boolean(false));
        assert_eq!(fallback(oid::JSONB), Value::from("{}"));
        assert_eq!(
            fallback(oid::TIMESTAMPTZ),
            Value::from("1970-01-01T00:00:00Z")
        );
        let mut with_default =
            (*column_schema(&ColumnType::scalar(oid::TEXT, -1), modes, true)).clone();
        with_default.default = Some(Value::from("new"));
        assert_eq!(fallback_value(&with_default), Value::from("new"));
    }

    #[test]
    fn interval_binary_and_hstore_modes() {
        assert_eq!(
            interval_string("P1Y2M3DT4H5M6.78S").as_deref(),
            Some("P1Y2M3DT4H5M6.78S")
        );
        assert_eq!(interval_string("P1D").as_deref(), Some("P0Y0M1DT0H0M0S"));
        assert_eq!(
            interval_string("PT-1H-30M").as_deref(),
            Some("P0Y0M0DT-1H-30M0S")
        );
        let hex = ValueModes {
            binary: BinaryMode::Hex,
            ..ValueModes::default()
        };
        let bytea = ColumnType::scalar(oid::BYTEA, -1);
        let schema = column_schema(&bytea, hex, false);
        assert_eq!(schema.schema_type, SchemaType::String);
        assert_eq!(
            column_value(&bytea, hex, &schema, "\\x00ff").unwrap(),
            Value::from("00ff")
        );
        let base64 = ValueModes {
            binary: BinaryMode::Base64,
            ..ValueModes::default()
        };
        let unknown = ColumnType {
            oid: 3615,
            modifier: -1,
            shape: Shape::Unknown,
        };
        let schema = column_schema(&unknown, base64, false);
        assert_eq!(
            column_value(&unknown, base64, &schema, "'fat' <-> 'cat'").unwrap(),
            Value::from("J2ZhdCcgPC0+ICdjYXQn"),
            "Debezium's test vector"
        );
        let map = ValueModes {
            hstore_map: true,
            ..ValueModes::default()
        };
        let hstore = ColumnType {
            oid: 99999,
            modifier: -1,
            shape: Shape::Hstore,
        };
        let schema = column_schema(&hstore, map, false);
        assert_eq!(schema.schema_type, SchemaType::Map);
        assert_eq!(
            column_value(&hstore, map, &schema, r#""a"=>"1", "b"=>NULL"#).unwrap(),
            Value::Map(vec![
                (Value::from("a"), Value::from("1")),
                (Value::from("b"), Value::Null)
            ])
        );
    }

    #[test]
    fn bad_text_is_a_data_error_naming_the_value() {
        let column = ColumnType::scalar(oid::INT4, -1);
        let schema = column_schema(&column, with(DecimalMode::Precise), true);
        let err = column_value(&column, with(DecimalMode::Precise), &schema, "x").unwrap_err();
        assert!(err.message().contains("cannot read `x` as int4"), "{err}");
    }
}
