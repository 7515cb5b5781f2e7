//! A captured table as INFORMATION_SCHEMA describes it, its Connect schemas under Debezium's
//! MySQL type mapping, and its values — from the binlog's decoded cells or from the snapshot's
//! text — as Debezium emits them.

use std::sync::Arc;

use sluice_api::calendar::days_from_civil;
use sluice_api::data::{Schema, SchemaRef, SchemaType, Struct, Text, Value};
use sluice_api::{Error, Result};
use sluice_debezium::decimal::decimal_bytes;

use crate::config::MySqlConfig;
use crate::envelope::SourceNames;
use crate::rows::Cell;

/// One column, from `INFORMATION_SCHEMA.COLUMNS`.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnInfo {
    pub name: String,
    /// `DATA_TYPE`: `int`, `varchar`, `datetime`, …
    pub data_type: String,
    /// `COLUMN_TYPE`: `int(10) unsigned`, `enum('a','b')`, `tinyint(1)`, …
    pub column_type: String,
    pub nullable: bool,
    pub primary: bool,
    pub precision: Option<u32>,
    pub scale: Option<u32>,
    /// Fractional digits of TIME/DATETIME/TIMESTAMP.
    pub fsp: u32,
    /// `CHARACTER_SET_NAME` (`None` for binary and non-text columns).
    pub charset: Option<String>,
}

#[cfg(test)]
impl ColumnInfo {
    /// A nullable, non-key column without precision, fractional digits or charset (tests).
    pub(crate) fn plain(name: &str, data_type: &str, column_type: &str) -> ColumnInfo {
        ColumnInfo {
            name: name.into(),
            data_type: data_type.into(),
            column_type: column_type.into(),
            nullable: true,
            primary: false,
            precision: None,
            scale: None,
            fsp: 0,
            charset: None,
        }
    }
}

impl ColumnInfo {
    pub(crate) fn unsigned(&self) -> bool {
        self.column_type.contains("unsigned")
    }

    /// ENUM/SET labels from `COLUMN_TYPE` (`enum('a','b''c')`).
    pub(crate) fn labels(&self) -> Vec<String> {
        let Some(inner) = self
            .column_type
            .split_once('(')
            .and_then(|(_, rest)| rest.rsplit_once(')'))
            .map(|(inner, _)| inner)
        else {
            return Vec::new();
        };
        let mut labels = Vec::new();
        let mut chars = inner.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '\'' {
                continue;
            }
            let mut label = String::new();
            while let Some(c) = chars.next() {
                if c == '\'' {
                    if chars.peek() == Some(&'\'') {
                        chars.next();
                        label.push('\'');
                        continue;
                    }
                    break;
                }
                label.push(c);
            }
            labels.push(label);
        }
        labels
    }

    fn bits(&self) -> u32 {
        self.precision.unwrap_or(1)
    }
}

/// How a column's values are emitted.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Boolean,
    Int8,
    Int16,
    Int32,
    Int64,
    /// BIGINT UNSIGNED under `bigint.unsigned.handling.mode=precise`.
    UnsignedDecimal,
    Float32,
    Float64,
    Decimal {
        scale: u32,
    },
    DecimalDouble,
    DecimalString,
    Text {
        latin1: bool,
    },
    Binary,
    Json,
    Enum(Vec<String>),
    Set(Vec<String>),
    Date,
    MicroTime,
    Timestamp,
    MicroTimestamp,
    Zoned {
        fsp: u32,
    },
    Year,
    Bits,
    /// MariaDB's UUID (`io.debezium.data.Uuid`).
    Uuid,
    /// MariaDB's INET6: its text form, as the server shows it.
    Inet6,
    /// POINT (`io.debezium.data.geometry.Point`).
    Point,
    /// Other spatial types (`io.debezium.data.geometry.Geometry`).
    Geometry,
    /// A type without a mapping here: its text form (snapshot) or bytes as text (stream).
    Fallback,
}

fn named(schema_type: SchemaType, name: &str) -> Schema {
    Schema::of(schema_type).named(name).versioned(1)
}

fn kind_of(column: &ColumnInfo, config: &MySqlConfig) -> Kind {
    let unsigned = column.unsigned();
    match column.data_type.as_str() {
        "tinyint" if column.column_type.starts_with("tinyint(1)") => Kind::Int8,
        "tinyint" => Kind::Int16,
        "smallint" if unsigned => Kind::Int32,
        "smallint" => Kind::Int16,
        "mediumint" => Kind::Int32,
        "int" | "integer" if unsigned => Kind::Int64,
        "int" | "integer" => Kind::Int32,
        "bigint" if unsigned && config.bigint_precise => Kind::UnsignedDecimal,
        "bigint" => Kind::Int64,
        "float" => Kind::Float32,
        "double" | "real" => Kind::Float64,
        "decimal" | "numeric" if config.decimal_double => Kind::DecimalDouble,
        "decimal" | "numeric" if config.decimal_string => Kind::DecimalString,
        "decimal" | "numeric" => Kind::Decimal {
            scale: column.scale.unwrap_or(0),
        },
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => Kind::Text {
            latin1: column.charset.as_deref() == Some("latin1"),
        },
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => Kind::Binary,
        "json" => Kind::Json,
        "enum" => Kind::Enum(column.labels()),
        "set" => Kind::Set(column.labels()),
        "date" => Kind::Date,
        "time" => Kind::MicroTime,
        "datetime" if column.fsp <= 3 => Kind::Timestamp,
        "datetime" => Kind::MicroTimestamp,
        "timestamp" => Kind::Zoned { fsp: column.fsp },
        "year" => Kind::Year,
        "bit" if column.bits() <= 1 => Kind::Boolean,
        "bit" => Kind::Bits,
        "uuid" => Kind::Uuid,
        "inet6" => Kind::Inet6,
        "point" => Kind::Point,
        "geometry" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" | "geomcollection" => Kind::Geometry,
        _ => Kind::Fallback,
    }
}

fn schema_of(kind: &Kind, column: &ColumnInfo) -> Schema {
    match kind {
        Kind::Boolean => Schema::of(SchemaType::Boolean),
        Kind::Int8 => Schema::of(SchemaType::Int8),
        Kind::Int16 => Schema::of(SchemaType::Int16),
        Kind::Int32 => Schema::of(SchemaType::Int32),
        Kind::Int64 => Schema::of(SchemaType::Int64),
        Kind::UnsignedDecimal => Schema::of(SchemaType::Bytes)
            .named("org.apache.kafka.connect.data.Decimal")
            .versioned(1)
            .parameter("scale", "0")
            .parameter("connect.decimal.precision", "20"),
        Kind::Float32 => Schema::of(SchemaType::Float32),
        Kind::Float64 | Kind::DecimalDouble => Schema::of(SchemaType::Float64),
        Kind::Decimal { scale } => Schema::of(SchemaType::Bytes)
            .named("org.apache.kafka.connect.data.Decimal")
            .versioned(1)
            .parameter("scale", scale.to_string())
            .parameter(
                "connect.decimal.precision",
                column.precision.unwrap_or(10).to_string(),
            ),
        Kind::DecimalString | Kind::Text { .. } | Kind::Fallback => Schema::string(),
        Kind::Binary => Schema::of(SchemaType::Bytes),
        Kind::Json => named(SchemaType::String, "io.debezium.data.Json"),
        Kind::Enum(labels) => named(SchemaType::String, "io.debezium.data.Enum")
            .parameter("allowed", labels.join(",")),
        Kind::Set(labels) => named(SchemaType::String, "io.debezium.data.EnumSet")
            .parameter("allowed", labels.join(",")),
        Kind::Date => named(SchemaType::Int32, "io.debezium.time.Date"),
        Kind::MicroTime => named(SchemaType::Int64, "io.debezium.time.MicroTime"),
        Kind::Timestamp => named(SchemaType::Int64, "io.debezium.time.Timestamp"),
        Kind::MicroTimestamp => named(SchemaType::Int64, "io.debezium.time.MicroTimestamp"),
        Kind::Zoned { .. } => named(SchemaType::String, "io.debezium.time.ZonedTimestamp"),
        Kind::Year => named(SchemaType::Int32, "io.debezium.time.Year"),
        Kind::Bits => named(SchemaType::Bytes, "io.debezium.data.Bits")
            .parameter("length", column.bits().to_string()),
        Kind::Uuid => named(SchemaType::String, "io.debezium.data.Uuid"),
        Kind::Inet6 => Schema::of(SchemaType::String),
        Kind::Point => Schema::struct_named("io.debezium.data.geometry.Point")
            .versioned(1)
            .field("x", Schema::of(SchemaType::Float64).into_ref())
            .field("y", Schema::of(SchemaType::Float64).into_ref())
            .field("wkb", Schema::of(SchemaType::Bytes).optional().into_ref())
            .field("srid", Schema::of(SchemaType::Int32).optional().into_ref()),
        Kind::Geometry => Schema::struct_named("io.debezium.data.geometry.Geometry")
            .versioned(2)
            .field("wkb", Schema::of(SchemaType::Bytes).into_ref())
            .field("srid", Schema::of(SchemaType::Int32).optional().into_ref())
            .field(
                "extensions",
                Schema::map(Schema::string().into_ref(), Schema::string().into_ref())
                    .optional()
                    .into_ref(),
            ),
    }
}

/// A BINARY(n) value at its full width: the binlog drops a fixed-width binary value's trailing
/// zero bytes, which Debezium puts back (DBZ-254); other binary values as they are.
fn fixed_width(column: &ColumnInfo, bytes: &[u8]) -> Vec<u8> {
    let width = (column.data_type == "binary")
        .then(|| {
            column
                .column_type
                .strip_prefix("binary(")?
                .split_once(')')?
                .0
                .parse::<usize>()
                .ok()
        })
        .flatten()
        .unwrap_or(0);
    let mut value = bytes.to_vec();
    if value.len() < width {
        value.resize(width, 0);
    }
    value
}

/// A UUID's 16 bytes (as MariaDB writes them, read big-endian as Debezium does) in text form.
/// The binlog drops a fixed-width binary value's trailing zero bytes; they are put back.
fn uuid_text(bytes: &[u8]) -> Option<String> {
    if bytes.len() > 16 {
        return None;
    }
    let mut full = [0u8; 16];
    full[..bytes.len()].copy_from_slice(bytes);
    Some(sluice_debezium::uuid::uuid_text(&full))
}

/// MariaDB's INET6 value (16 bytes in network order; the binlog drops trailing zero bytes, as
/// for BINARY) in the server's text form: the longest run of zero groups (the first of equal
/// ones) compressed to `::` even when it is a single group (unlike RFC 5952), and an
/// IPv4-mapped or IPv4-compatible address with its IPv4 part dotted (`::ffff:192.0.2.1`,
/// `::192.0.2.1`).
fn inet6_text(bytes: &[u8]) -> Option<String> {
    if bytes.len() > 16 {
        return None;
    }
    let mut full = [0u8; 16];
    full[..bytes.len()].copy_from_slice(bytes);
    let v4 = format!("{}.{}.{}.{}", full[12], full[13], full[14], full[15]);
    let zero_prefix = full[..10].iter().all(|b| *b == 0);
    if zero_prefix && full[10] == 0xff && full[11] == 0xff {
        return Some(format!("::ffff:{v4}"));
    }
    let special = full[12..15].iter().all(|b| *b == 0) && full[15] <= 1;
    if zero_prefix && full[10] == 0 && full[11] == 0 && !special {
        return Some(format!("::{v4}"));
    }
    let groups: Vec<u16> = full
        .chunks(2)
        .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
        .collect();
    // The longest run of zero groups, the first of equally long ones.
    let (mut best, mut run) = ((0, 0), None::<usize>);
    for (i, group) in groups.iter().enumerate() {
        match (group, run) {
            (0, None) => run = Some(i),
            (0, Some(_)) => {}
            (_, Some(from)) => {
                if i - from > best.1 {
                    best = (from, i - from);
                }
                run = None;
            }
            (_, None) => {}
        }
    }
    if let Some(from) = run
        && groups.len() - from > best.1
    {
        best = (from, groups.len() - from);
    }
    let hex = |groups: &[u16]| {
        groups
            .iter()
            .map(|g| format!("{g:x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    Some(if best.1 == 0 {
        hex(&groups)
    } else {
        format!(
            "{}::{}",
            hex(&groups[..best.0]),
            hex(&groups[best.0 + best.1..])
        )
    })
}

/// MySQL's internal geometry value — the SRID (4 bytes, little-endian) and the WKB — as
/// Debezium's Point (with its coordinates) or Geometry struct; `None` when malformed.
fn geometry_value(schema: &SchemaRef, bytes: &[u8], point: bool) -> Option<Value> {
    let srid = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?);
    let wkb = bytes.get(4..)?.to_vec();
    let srid = if srid == 0 {
        Value::Null
    } else {
        Value::Int32(srid as i32)
    };
    let values = if point {
        // WKB point: byte order (1 = little-endian), type 1, then x and y.
        let little = *wkb.first()? == 1;
        let coordinate = |at: usize| -> Option<f64> {
            let raw: [u8; 8] = wkb.get(at..at + 8)?.try_into().ok()?;
            Some(if little {
                f64::from_le_bytes(raw)
            } else {
                f64::from_be_bytes(raw)
            })
        };
        vec![
            Value::Float64(coordinate(5)?),
            Value::Float64(coordinate(13)?),
            Value::Bytes(wkb),
            srid,
        ]
    } else {
        vec![Value::Bytes(wkb), srid, Value::Null]
    };
    Some(Value::Struct(Struct {
        schema: Arc::clone(schema),
        values,
    }))
}

/// A table's columns and schemas.
#[derive(Debug, Clone)]
pub struct TableSchema {
    pub db: String,
    pub table: String,
    /// Interned: every record of the table carries it.
    pub topic: Text,
    /// What its events' `source` blocks name.
    pub source_names: SourceNames,
    pub columns: Vec<ColumnInfo>,
    kinds: Vec<Kind>,
    pub key: Option<SchemaRef>,
    pub row: SchemaRef,
    pub envelope: SchemaRef,
    key_fields: Vec<usize>,
    /// `__debezium.context.*` headers (`extended.headers.enabled`), built once per table.
    pub context: Option<Arc<sluice_debezium::headers::ContextHeaders>>,
}

/// Microseconds of a civil date and time.
fn civil_micros(year: i64, month: i64, day: i64, h: i64, m: i64, s: i64, micros: i64) -> i64 {
    days_from_civil(year, month, day) * 86_400_000_000
        + ((h * 60 + m) * 60 + s) * 1_000_000
        + micros
}

/// `YYYY-MM-DDTHH:MM:SS[.fff…]Z` with `fsp` fraction digits, from seconds and microseconds
/// since the epoch.
fn zoned(seconds: i64, micros: u32, fsp: u32) -> String {
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = sluice_api::calendar::civil_from_days(days);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    );
    if fsp > 0 {
        let digits = format!("{micros:06}");
        out.push('.');
        out.push_str(&digits[..(fsp.min(6) as usize)]);
    }
    out.push('Z');
    out
}

/// UTF-8 text with invalid sequences replaced. Valid text (the common case) goes through
/// `from_utf8`'s word-at-a-time check and one copy; `from_utf8_lossy` walks it in chunks
/// (7% of a streaming profile).
fn utf8_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// [`utf8_text`] of bytes already owned: valid text becomes the string without a copy.
fn utf8_owned(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn latin1(bytes: &[u8]) -> String {
    // ASCII text (the common case) is the same in latin1 and UTF-8: one copy, no per-char work.
    if bytes.is_ascii() {
        return utf8_text(bytes);
    }
    let mut text = String::with_capacity(bytes.len() + bytes.len() / 4);
    text.extend(bytes.iter().map(|b| char::from(*b)));
    text
}

impl TableSchema {
    /// The schemas of `db.table` with `columns`, under `config`.
    pub fn new(
        config: &MySqlConfig,
        db: &str,
        table: &str,
        columns: Vec<ColumnInfo>,
        source: &SchemaRef,
    ) -> TableSchema {
        let base = format!("{}.{db}.{table}", config.topic_prefix);
        let names = config.events.schema_names;
        let mut row = Schema::struct_named(names.schema_name(&format!("{base}.Value"))).optional();
        let mut key = Schema::struct_named(names.schema_name(&format!("{base}.Key")));
        let mut kinds = Vec::with_capacity(columns.len());
        let mut key_fields = Vec::new();
        for (index, column) in columns.iter().enumerate() {
            let kind = kind_of(column, config);
            let mut schema = schema_of(&kind, column);
            if column.nullable {
                schema = schema.optional();
            }
            let schema = Arc::new(schema);
            let field = config.events.field_names.field_name(&column.name);
            if column.primary {
                key = key.field(&field, Arc::clone(&schema));
                key_fields.push(index);
            }
            row = row.field(&field, schema);
            kinds.push(kind);
        }
        let row = row.into_ref();
        let envelope = sluice_debezium::envelope::envelope_schema(
            &names.schema_name(&format!("{base}.Envelope")),
            &row,
            source,
        );
        TableSchema {
            db: db.to_owned(),
            table: table.to_owned(),
            topic: Text::interned(&base),
            source_names: SourceNames::interned(&config.topic_prefix, db, table),
            key: (!key_fields.is_empty()).then(|| key.into_ref()),
            columns,
            kinds,
            row,
            envelope,
            key_fields,
            context: config.events.extended_headers.then(|| {
                Arc::new(sluice_debezium::headers::ContextHeaders::new(
                    &config.topic_prefix,
                    config.task_id,
                    config.flavour,
                ))
            }),
        }
    }

    fn zero_date(&self, index: usize) -> Value {
        if self.columns[index].nullable {
            Value::Null
        } else {
            match self.kinds[index] {
                Kind::Zoned { fsp } => Value::from(zoned(0, 0, fsp)),
                Kind::Date => Value::Int32(0),
                _ => Value::Int64(0),
            }
        }
    }

    /// A row value from the binlog's cells (one per column, in table order).
    pub fn row_from_cells(&self, cells: Vec<Cell>) -> Result<Value> {
        if cells.len() != self.columns.len() {
            return Err(Error::data(format!(
                "{}.{}: the binlog row has {} columns, the table's schema {} (the TABLE_MAP and the row disagree)",
                self.db,
                self.table,
                cells.len(),
                self.columns.len()
            )));
        }
        let mut row = Struct::new(Arc::clone(&self.row));
        for (index, cell) in cells.into_iter().enumerate() {
            row.values[index] = match (&self.kinds[index], cell) {
                // UTF-8 text takes the decoded bytes over: no copy (most of a row's bytes).
                (
                    Kind::Text { latin1: false }
                    | Kind::Json
                    | Kind::Fallback
                    | Kind::DecimalString,
                    Cell::Bytes(b),
                ) => Value::from(utf8_owned(b)),
                // ASCII is the same in latin1.
                (Kind::Text { latin1: true }, Cell::Bytes(b)) if b.is_ascii() => {
                    Value::from(utf8_owned(b))
                }
                (_, cell) => self.cell_value(index, &cell).map_err(|e| {
                    e.context(format!(
                        "{}.{} column {}",
                        self.db, self.table, self.columns[index].name
                    ))
                })?,
            };
        }
        Ok(Value::Struct(row))
    }

    fn cell_value(&self, index: usize, cell: &Cell) -> Result<Value> {
        let column = &self.columns[index];
        let kind = &self.kinds[index];
        let bad = || {
            Error::data(format!(
                "a binlog value {cell:?} does not fit the column's type {}",
                column.column_type
            ))
        };
        let unsigned = column.unsigned();
        Ok(match (kind, cell) {
            (_, Cell::Null) => Value::Null,
            (_, Cell::Int { value, bytes }) => {
                let wide: i128 = if unsigned {
                    i128::from((*value as u64) & (u64::MAX >> (64 - 8 * u32::from(*bytes))))
                } else {
                    i128::from(*value)
                };
                match kind {
                    Kind::Int8 => Value::Int8(wide as i8),
                    Kind::Int16 => Value::Int16(wide as i16),
                    Kind::Int32 => Value::Int32(wide as i32),
                    Kind::Int64 => Value::Int64(wide as i64),
                    Kind::UnsignedDecimal => {
                        Value::Bytes(sluice_debezium::decimal::twos_complement(wide))
                    }
                    Kind::Boolean => Value::Boolean(wide != 0),
                    _ => return Err(bad()),
                }
            }
            (Kind::Float32, Cell::Float(v)) => Value::Float32(*v),
            (Kind::Float64, Cell::Double(v)) => Value::Float64(*v),
            (Kind::Float64, Cell::Float(v)) => Value::Float64(f64::from(*v)),
            (_, Cell::Decimal(text)) => self.decimal(kind, text).ok_or_else(bad)?,
            (Kind::Text { latin1: true }, Cell::Bytes(b)) => Value::from(latin1(b)),
            // (UTF-8 text is taken over by `row_from_cells`.)
            (Kind::Binary, Cell::Bytes(b)) => Value::Bytes(fixed_width(column, b)),
            (Kind::Uuid, Cell::Bytes(b)) => Value::from(uuid_text(b).ok_or_else(bad)?),
            (Kind::Inet6, Cell::Bytes(b)) => Value::from(inet6_text(b).ok_or_else(bad)?),
            (Kind::Point | Kind::Geometry, Cell::Bytes(b)) => {
                geometry_value(&self.row.fields[index].schema, b, *kind == Kind::Point)
                    .ok_or_else(bad)?
            }
            (Kind::Enum(labels), Cell::Enum(i)) => Value::from(
                usize::from(*i)
                    .checked_sub(1)
                    .and_then(|i| labels.get(i))
                    .cloned()
                    .unwrap_or_default(),
            ),
            (Kind::Set(labels), Cell::Set(bits)) => Value::from(
                labels
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i < 64 && bits & (1 << i) != 0)
                    .map(|(_, l)| l.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            (Kind::Date, Cell::Date { year, month, day }) => {
                if *month == 0 || *day == 0 {
                    return Ok(self.zero_date(index));
                }
                Value::Int32(
                    days_from_civil(i64::from(*year), i64::from(*month), i64::from(*day)) as i32,
                )
            }
            (
                Kind::MicroTime,
                Cell::Time {
                    negative,
                    hours,
                    minutes,
                    seconds,
                    micros,
                },
            ) => {
                let magnitude = ((i64::from(*hours) * 60 + i64::from(*minutes)) * 60
                    + i64::from(*seconds))
                    * 1_000_000
                    + i64::from(*micros);
                Value::Int64(if *negative { -magnitude } else { magnitude })
            }
            (
                Kind::Timestamp | Kind::MicroTimestamp,
                Cell::DateTime {
                    year,
                    month,
                    day,
                    hour,
                    minute,
                    second,
                    micros,
                },
            ) => {
                if *month == 0 || *day == 0 {
                    return Ok(self.zero_date(index));
                }
                let at = civil_micros(
                    i64::from(*year),
                    i64::from(*month),
                    i64::from(*day),
                    i64::from(*hour),
                    i64::from(*minute),
                    i64::from(*second),
                    i64::from(*micros),
                );
                Value::Int64(if *kind == Kind::Timestamp {
                    at.div_euclid(1000)
                } else {
                    at
                })
            }
            (Kind::Zoned { fsp }, Cell::Timestamp { seconds, micros }) => {
                if *seconds == 0 && *micros == 0 {
                    return Ok(self.zero_date(index));
                }
                Value::from(zoned(*seconds, *micros, *fsp))
            }
            (Kind::Year, Cell::Year(y)) => Value::Int32(i32::from(*y)),
            (Kind::Boolean, Cell::Bit(bytes)) => Value::Boolean(bytes.iter().any(|b| *b != 0)),
            (Kind::Bits, Cell::Bit(bytes)) => Value::Bytes(bytes.iter().rev().copied().collect()),
            (Kind::Fallback, other) => Value::from(format!("{other:?}")),
            _ => return Err(bad()),
        })
    }

    fn decimal(&self, kind: &Kind, text: &str) -> Option<Value> {
        Some(match kind {
            Kind::Decimal { scale } => {
                Value::Bytes(decimal_bytes(text, i32::try_from(*scale).ok()?)?)
            }
            Kind::DecimalDouble => Value::Float64(text.parse().ok()?),
            Kind::DecimalString => Value::from(text.to_owned()),
            _ => return None,
        })
    }

    /// A row value from the snapshot's text protocol (`None`: SQL NULL).
    pub fn row_from_text(&self, values: &[Option<Vec<u8>>]) -> Result<Value> {
        let mut row = Struct::new(Arc::clone(&self.row));
        for (index, value) in values.iter().enumerate().take(self.columns.len()) {
            row.values[index] = match value {
                None => Value::Null,
                Some(bytes) => self.text_value(index, bytes).map_err(|e| {
                    e.context(format!(
                        "{}.{} column {}",
                        self.db, self.table, self.columns[index].name
                    ))
                })?,
            };
        }
        Ok(Value::Struct(row))
    }

    fn text_value(&self, index: usize, bytes: &[u8]) -> Result<Value> {
        let column = &self.columns[index];
        let kind = &self.kinds[index];
        let text = || utf8_text(bytes);
        let bad = || {
            Error::data(format!(
                "cannot read `{}` as {}",
                text(),
                column.column_type
            ))
        };
        let int = || text().parse::<i128>().map_err(|_| bad());
        Ok(match kind {
            Kind::Int8 => Value::Int8(int()? as i8),
            Kind::Int16 => Value::Int16(int()? as i16),
            Kind::Int32 => Value::Int32(int()? as i32),
            Kind::Int64 => Value::Int64(int()? as i64),
            Kind::UnsignedDecimal => {
                Value::Bytes(sluice_debezium::decimal::twos_complement(int()?))
            }
            Kind::Float32 => Value::Float32(text().parse().map_err(|_| bad())?),
            Kind::Float64 => Value::Float64(text().parse().map_err(|_| bad())?),
            Kind::Decimal { .. } | Kind::DecimalDouble | Kind::DecimalString => {
                self.decimal(kind, &text()).ok_or_else(bad)?
            }
            Kind::Text { latin1: true } => Value::from(text()),
            Kind::Text { .. } | Kind::Json | Kind::Fallback | Kind::Enum(_) | Kind::Set(_) => {
                Value::from(text())
            }
            Kind::Binary => Value::Bytes(bytes.to_vec()),
            // The text protocol gives a UUID in its text form already.
            Kind::Uuid => Value::from(text().to_ascii_lowercase()),
            // The text protocol gives INET6 in the server's text form.
            Kind::Inet6 => Value::from(text()),
            Kind::Point | Kind::Geometry => {
                geometry_value(&self.row.fields[index].schema, bytes, *kind == Kind::Point)
                    .ok_or_else(bad)?
            }
            Kind::Year => Value::Int32(int()? as i32),
            Kind::Boolean => Value::Boolean(bytes.iter().any(|b| *b != 0)),
            Kind::Bits => Value::Bytes(bytes.iter().rev().copied().collect()),
            Kind::Date => {
                let t = text();
                let (y, m, d) = parse_date(&t).ok_or_else(bad)?;
                if m == 0 || d == 0 {
                    return Ok(self.zero_date(index));
                }
                Value::Int32(days_from_civil(y, m, d) as i32)
            }
            Kind::MicroTime => Value::Int64(parse_time(&text()).ok_or_else(bad)?),
            Kind::Timestamp | Kind::MicroTimestamp | Kind::Zoned { .. } => {
                let t = text();
                let (date, time) = t.split_once(' ').ok_or_else(bad)?;
                let (y, m, d) = parse_date(date).ok_or_else(bad)?;
                if m == 0 || d == 0 {
                    return Ok(self.zero_date(index));
                }
                let at =
                    days_from_civil(y, m, d) * 86_400_000_000 + parse_time(time).ok_or_else(bad)?;
                match kind {
                    Kind::Timestamp => Value::Int64(at.div_euclid(1000)),
                    Kind::MicroTimestamp => Value::Int64(at),
                    Kind::Zoned { fsp } => Value::from(zoned(
                        at.div_euclid(1_000_000),
                        at.rem_euclid(1_000_000) as u32,
                        *fsp,
                    )),
                    _ => unreachable!("matched above"),
                }
            }
        })
    }

    /// The event key of a row (its primary-key columns), or null without a primary key.
    pub fn key_of(&self, row: &Value) -> Value {
        let (Some(schema), Value::Struct(row)) = (&self.key, row) else {
            return Value::Null;
        };
        let mut key = Struct::new(Arc::clone(schema));
        for (i, field) in self.key_fields.iter().enumerate() {
            key.values[i] = row.values.get(*field).cloned().unwrap_or_default();
        }
        Value::Struct(key)
    }
}

fn parse_date(text: &str) -> Option<(i64, i64, i64)> {
    let mut parts = text.splitn(3, '-');
    Some((
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    ))
}

/// Microseconds of `[-]H+:MM:SS[.ffffff]`.
fn parse_time(text: &str) -> Option<i64> {
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let mut parts = text.splitn(3, ':');
    let hours: i64 = parts.next()?.parse().ok()?;
    let minutes: i64 = parts.next()?.parse().ok()?;
    let (seconds, fraction) = parts
        .next()?
        .split_once('.')
        .unwrap_or((text.rsplit(':').next()?, ""));
    let seconds: i64 = seconds.parse().ok()?;
    let micros: i64 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<6}").get(..6)?.parse().ok()?
    };
    let magnitude = ((hours * 60 + minutes) * 60 + seconds) * 1_000_000 + micros;
    Some(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_labels_times_and_zoned_timestamps() {
        let column = ColumnInfo::plain("c", "enum", "enum('a','b''c')");
        assert_eq!(column.labels(), ["a", "b'c"]);
        assert_eq!(
            parse_time("-838:59:59.5"),
            Some(-(838 * 3600 + 59 * 60 + 59) * 1_000_000 - 500_000)
        );
        assert_eq!(zoned(86_400, 123_456, 3), "1970-01-02T00:00:00.123Z");
        assert_eq!(zoned(0, 0, 0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn fixed_width_binary_gets_its_trailing_zero_bytes_back() {
        let column =
            |data_type: &str, column_type: &str| ColumnInfo::plain("b", data_type, column_type);
        assert_eq!(
            fixed_width(&column("binary", "binary(4)"), &[1]),
            [1, 0, 0, 0]
        );
        assert_eq!(fixed_width(&column("binary", "binary(2)"), &[1, 2]), [1, 2]);
        assert_eq!(fixed_width(&column("varbinary", "varbinary(4)"), &[1]), [1]);
        assert_eq!(
            uuid_text(&[0x12, 0x3e]).unwrap(),
            "123e0000-0000-0000-0000-000000000000"
        );
    }

    #[test]
    fn inet6_values_read_as_mariadb_writes_them() {
        let parse = |text: &str| text.parse::<std::net::Ipv6Addr>().unwrap().octets();
        for (address, shown) in [
            ("2001:db8:0:1:1:1:1:1", "2001:db8::1:1:1:1:1"),
            ("fe80:0:0:0:1:0:0:0", "fe80::1:0:0:0"),
            ("::ffff:192.0.2.1", "::ffff:192.0.2.1"),
            ("::192.0.2.1", "::192.0.2.1"),
            ("::", "::"),
            ("::1", "::1"),
            ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
        ] {
            assert_eq!(inet6_text(&parse(address)).unwrap(), shown, "{address}");
        }
        // Trailing zero bytes dropped by the binlog, as for BINARY.
        assert_eq!(inet6_text(&[0x20, 0x01, 0x0d, 0xb8]).unwrap(), "2001:db8::");
        assert_eq!(inet6_text(&[0; 17]), None);
    }
}
