//! The binlog's row images decoded over a TABLE_MAP's column types and metadata: strict (every
//! length checked, trailing bytes refused) and total (any input gives a value or an error, never
//! a panic), so a malformed event names its column instead of crashing the task. Our own rather
//! than `mysql_common`'s `BinlogRow`, which mis-decodes negative `TIME(1)`/`TIME(2)`, panics on
//! malformed metadata and allocates a column description per row.

use std::fmt;

/// Column type codes of the binlog (`enum_field_types`).
pub mod code {
    pub const DECIMAL: u8 = 0;
    pub const TINY: u8 = 1;
    pub const SHORT: u8 = 2;
    pub const LONG: u8 = 3;
    pub const FLOAT: u8 = 4;
    pub const DOUBLE: u8 = 5;
    pub const NULL: u8 = 6;
    pub const TIMESTAMP: u8 = 7;
    pub const LONGLONG: u8 = 8;
    pub const INT24: u8 = 9;
    pub const DATE: u8 = 10;
    pub const TIME: u8 = 11;
    pub const DATETIME: u8 = 12;
    pub const YEAR: u8 = 13;
    /// DATE's internal type; TABLE_MAPs carry DATE (10), accepted both ways.
    pub const NEWDATE: u8 = 14;
    pub const VARCHAR: u8 = 15;
    pub const BIT: u8 = 16;
    pub const TIMESTAMP2: u8 = 17;
    pub const DATETIME2: u8 = 18;
    pub const TIME2: u8 = 19;
    pub const JSON: u8 = 245;
    pub const NEWDECIMAL: u8 = 246;
    pub const ENUM: u8 = 247;
    pub const SET: u8 = 248;
    pub const TINY_BLOB: u8 = 249;
    pub const MEDIUM_BLOB: u8 = 250;
    pub const LONG_BLOB: u8 = 251;
    pub const BLOB: u8 = 252;
    pub const VAR_STRING: u8 = 253;
    pub const STRING: u8 = 254;
    pub const GEOMETRY: u8 = 255;
}

/// One column as the TABLE_MAP describes it: its type code and metadata bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    pub type_code: u8,
    pub meta: Vec<u8>,
}

/// A decoded value, before it is mapped to the event's types (which needs the schema:
/// signedness, ENUM/SET labels, precision).
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    /// An integer as stored; `bytes` says its width, for reading it unsigned.
    Int {
        value: i64,
        bytes: u8,
    },
    Float(f32),
    Double(f64),
    /// A DECIMAL as its text form (`-12.340`).
    Decimal(String),
    /// Character and binary strings, BLOB/TEXT, JSON text (MariaDB), GEOMETRY (SRID + WKB).
    Bytes(Vec<u8>),
    Date {
        year: u16,
        month: u8,
        day: u8,
    },
    /// A TIME: its sign and magnitude.
    Time {
        negative: bool,
        hours: u32,
        minutes: u8,
        seconds: u8,
        micros: u32,
    },
    DateTime {
        year: u16,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        micros: u32,
    },
    /// A TIMESTAMP: seconds since the epoch (UTC) and microseconds.
    Timestamp {
        seconds: i64,
        micros: u32,
    },
    Year(u16),
    /// BIT(n): big-endian bytes as stored.
    Bit(Vec<u8>),
    /// ENUM: the 1-based index of the label (0: the empty error value).
    Enum(u16),
    /// SET: a bit per label.
    Set(u64),
    /// MySQL's binary JSON (left to the caller to render).
    Json(Vec<u8>),
}

/// Why a row image could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// The column (0-based) being read, if any.
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(column) => write!(f, "column {}: {}", column + 1, self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for DecodeError {}

fn error(column: Option<usize>, message: impl Into<String>) -> DecodeError {
    DecodeError {
        column,
        message: message.into(),
    }
}

struct Cursor<'a> {
    data: &'a [u8],
    at: usize,
    column: Option<usize>,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.at.checked_add(n).filter(|end| *end <= self.data.len());
        let Some(end) = end else {
            return Err(error(
                self.column,
                format!(
                    "the row image ends after {} bytes, {} more needed",
                    self.data.len(),
                    n.saturating_sub(self.data.len() - self.at)
                ),
            ));
        };
        let bytes = &self.data[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn le(&mut self, n: usize) -> Result<u64, DecodeError> {
        Ok(self
            .take(n)?
            .iter()
            .rev()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn be(&mut self, n: usize) -> Result<u64, DecodeError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn done(&self) -> bool {
        self.at == self.data.len()
    }
}

fn meta(spec: &ColumnSpec, column: usize, n: usize) -> Result<&[u8], DecodeError> {
    spec.meta.get(..n).ok_or_else(|| {
        error(
            Some(column),
            format!(
                "type {} needs {n} metadata bytes, the TABLE_MAP has {}",
                spec.type_code,
                spec.meta.len()
            ),
        )
    })
}

/// The fractional part of TIME2/DATETIME2/TIMESTAMP2 for `fsp` digits: how many bytes, and the
/// factor making it microseconds.
fn fraction_layout(fsp: u8, column: usize) -> Result<(usize, u32), DecodeError> {
    Ok(match fsp {
        0 => (0, 0),
        1 | 2 => (1, 10_000),
        3 | 4 => (2, 100),
        5 | 6 => (3, 1),
        _ => {
            return Err(error(
                Some(column),
                format!("fractional precision {fsp} is beyond 6"),
            ));
        }
    })
}

/// Bytes of a DECIMAL's leftover digits (`dig2bytes`).
const DIGITS_BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

fn decimal(
    cursor: &mut Cursor<'_>,
    precision: u8,
    scale: u8,
    column: usize,
) -> Result<String, DecodeError> {
    if precision == 0 || precision > 65 || scale > 30 || scale > precision {
        return Err(error(
            Some(column),
            format!("DECIMAL({precision},{scale}) is not a valid precision and scale"),
        ));
    }
    let integral = usize::from(precision - scale);
    let fractional = usize::from(scale);
    let sizes = |digits: usize| (digits / 9, DIGITS_BYTES[digits % 9]);
    let (int_words, int_rest) = sizes(integral);
    let (frac_words, frac_rest) = sizes(fractional);
    let length = int_rest + int_words * 4 + frac_words * 4 + frac_rest;
    let mut bytes = cursor.take(length)?.to_vec();
    let Some(first) = bytes.first_mut() else {
        return Err(error(Some(column), "an empty DECIMAL"));
    };
    let negative = *first & 0x80 == 0;
    *first ^= 0x80;
    if negative {
        for b in &mut bytes {
            *b = !*b;
        }
    }
    let mut reader = Cursor {
        data: &bytes,
        at: 0,
        column: Some(column),
    };
    let mut digits = String::new();
    let push = |value: u64, width: usize, digits: &mut String| -> Result<(), DecodeError> {
        if value >= 10u64.pow(width as u32) {
            return Err(error(
                Some(column),
                "a DECIMAL word holds more digits than it may",
            ));
        }
        digits.push_str(&format!("{value:0width$}"));
        Ok(())
    };
    if int_rest > 0 {
        push(reader.be(int_rest)?, integral % 9, &mut digits)?;
    }
    for _ in 0..int_words {
        push(reader.be(4)?, 9, &mut digits)?;
    }
    let whole = digits.trim_start_matches('0');
    let mut text = String::new();
    if negative {
        text.push('-');
    }
    text.push_str(if whole.is_empty() { "0" } else { whole });
    if fractional > 0 {
        let mut fraction = String::new();
        for _ in 0..frac_words {
            push(reader.be(4)?, 9, &mut fraction)?;
        }
        if frac_rest > 0 {
            push(reader.be(frac_rest)?, fractional % 9, &mut fraction)?;
        }
        text.push('.');
        text.push_str(&fraction);
    }
    Ok(text)
}

fn cell(cursor: &mut Cursor<'_>, spec: &ColumnSpec, column: usize) -> Result<Cell, DecodeError> {
    use code::*;
    let signed = |value: u64, bytes: u8| {
        let shift = 64 - 8 * u32::from(bytes);
        Cell::Int {
            value: ((value << shift) as i64) >> shift,
            bytes,
        }
    };
    Ok(match spec.type_code {
        TINY => signed(cursor.le(1)?, 1),
        SHORT => signed(cursor.le(2)?, 2),
        INT24 => signed(cursor.le(3)?, 3),
        LONG => signed(cursor.le(4)?, 4),
        LONGLONG => signed(cursor.le(8)?, 8),
        FLOAT => Cell::Float(f32::from_bits(cursor.le(4)? as u32)),
        DOUBLE => Cell::Double(f64::from_bits(cursor.le(8)?)),
        NULL => Cell::Null,
        YEAR => match cursor.le(1)? {
            0 => Cell::Year(0),
            y => Cell::Year(1900 + y as u16),
        },
        DATE => {
            let v = cursor.le(3)?;
            Cell::Date {
                year: (v >> 9) as u16,
                month: ((v >> 5) & 15) as u8,
                day: (v & 31) as u8,
            }
        }
        TIMESTAMP => Cell::Timestamp {
            seconds: cursor.le(4)? as i64,
            micros: 0,
        },
        TIMESTAMP2 => {
            let fsp = meta(spec, column, 1)?[0];
            let (bytes, factor) = fraction_layout(fsp, column)?;
            let seconds = cursor.be(4)? as i64;
            let micros = if bytes == 0 {
                0
            } else {
                cursor.be(bytes)? as u32 * factor
            };
            Cell::Timestamp { seconds, micros }
        }
        DATETIME2 => {
            let fsp = meta(spec, column, 1)?[0];
            let (bytes, factor) = fraction_layout(fsp, column)?;
            let packed = cursor.be(5)? as i64 - 0x80_0000_0000;
            let micros = if bytes == 0 {
                0
            } else {
                cursor.be(bytes)? as u32 * factor
            };
            if packed < 0 {
                return Err(error(Some(column), "a negative DATETIME"));
            }
            let ymd = packed >> 17;
            let ym = ymd >> 5;
            let hms = packed % (1 << 17);
            Cell::DateTime {
                year: (ym / 13) as u16,
                month: (ym % 13) as u8,
                day: (ymd & 31) as u8,
                hour: (hms >> 12) as u8,
                minute: ((hms >> 6) & 63) as u8,
                second: (hms & 63) as u8,
                micros,
            }
        }
        DATETIME => {
            let v = cursor.le(8)?;
            let (date, time) = (v / 1_000_000, v % 1_000_000);
            Cell::DateTime {
                year: (date / 10_000) as u16,
                month: (date / 100 % 100) as u8,
                day: (date % 100) as u8,
                hour: (time / 10_000) as u8,
                minute: (time / 100 % 100) as u8,
                second: (time % 100) as u8,
                micros: 0,
            }
        }
        TIME => {
            let v = signed(cursor.le(3)?, 3);
            let Cell::Int { value, .. } = v else {
                unreachable!("signed gives an Int")
            };
            let magnitude = value.unsigned_abs();
            Cell::Time {
                negative: value < 0,
                hours: (magnitude / 10_000) as u32,
                minutes: (magnitude / 100 % 100) as u8,
                seconds: (magnitude % 100) as u8,
                micros: 0,
            }
        }
        TIME2 => {
            // MySQL's my_time_packed_from_binary: the integral part is offset by 0x800000 and,
            // for a negative value with a fraction, borrows one from it.
            let fsp = meta(spec, column, 1)?[0];
            let packed: i64 = match fsp {
                0 => (cursor.be(3)? as i64 - 0x80_0000) << 24,
                1 | 2 => {
                    let mut int = cursor.be(3)? as i64 - 0x80_0000;
                    let mut frac = cursor.be(1)? as i64;
                    if int < 0 && frac != 0 {
                        int += 1;
                        frac -= 0x100;
                    }
                    (int << 24) + frac * 10_000
                }
                3 | 4 => {
                    let mut int = cursor.be(3)? as i64 - 0x80_0000;
                    let mut frac = cursor.be(2)? as i64;
                    if int < 0 && frac != 0 {
                        int += 1;
                        frac -= 0x1_0000;
                    }
                    (int << 24) + frac * 100
                }
                5 | 6 => cursor.be(6)? as i64 - 0x8000_0000_0000,
                _ => {
                    return Err(error(
                        Some(column),
                        format!("fractional precision {fsp} is beyond 6"),
                    ));
                }
            };
            let magnitude = packed.unsigned_abs();
            let hms = magnitude >> 24;
            Cell::Time {
                negative: packed < 0,
                hours: ((hms >> 12) % (1 << 10)) as u32,
                minutes: ((hms >> 6) % (1 << 6)) as u8,
                seconds: (hms % (1 << 6)) as u8,
                micros: (magnitude % (1 << 24)) as u32,
            }
        }
        NEWDECIMAL => {
            let m = meta(spec, column, 2)?;
            Cell::Decimal(decimal(cursor, m[0], m[1], column)?)
        }
        VARCHAR | VAR_STRING => {
            let m = meta(spec, column, 2)?;
            let max = u16::from_le_bytes([m[0], m[1]]);
            let length = cursor.le(if max < 256 { 1 } else { 2 })? as usize;
            Cell::Bytes(cursor.take(length)?.to_vec())
        }
        BIT => {
            let m = meta(spec, column, 2)?;
            let bytes = usize::from(m[1]) + usize::from(m[0] % 8 != 0);
            Cell::Bit(cursor.take(bytes)?.to_vec())
        }
        TINY_BLOB | MEDIUM_BLOB | LONG_BLOB | BLOB | GEOMETRY => {
            let width = meta(spec, column, 1)?[0];
            if !(1..=4).contains(&width) {
                return Err(error(
                    Some(column),
                    format!("a BLOB length of {width} bytes"),
                ));
            }
            let length = cursor.le(usize::from(width))? as usize;
            Cell::Bytes(cursor.take(length)?.to_vec())
        }
        JSON => {
            let width = meta(spec, column, 1)?[0];
            if !(1..=4).contains(&width) {
                return Err(error(
                    Some(column),
                    format!("a JSON length of {width} bytes"),
                ));
            }
            let length = cursor.le(usize::from(width))? as usize;
            Cell::Json(cursor.take(length)?.to_vec())
        }
        STRING => {
            let m = meta(spec, column, 2)?;
            let (real, low) = (m[0], m[1]);
            match real {
                ENUM => Cell::Enum(cursor.le(usize::from(low.clamp(1, 2)))? as u16),
                SET => {
                    if !(1..=8).contains(&low) {
                        return Err(error(Some(column), format!("a SET of {low} bytes")));
                    }
                    Cell::Set(cursor.le(usize::from(low))?)
                }
                _ => {
                    // CHAR: the maximum length's high bits hide in the type byte.
                    let max = (((u16::from(real) & 0x30) ^ 0x30) << 4) | u16::from(low);
                    let length = cursor.le(if max < 256 { 1 } else { 2 })? as usize;
                    Cell::Bytes(cursor.take(length)?.to_vec())
                }
            }
        }
        other => {
            return Err(error(
                Some(column),
                format!(
                    "column type {other} cannot be decoded (not a type MySQL 5.6+ or MariaDB 10.x writes in row events)"
                ),
            ));
        }
    })
}

/// Reads one row image: the null bitmap over the present columns, then their values.
fn image(
    cursor: &mut Cursor<'_>,
    columns: &[ColumnSpec],
    present: &[bool],
) -> Result<Vec<Cell>, DecodeError> {
    cursor.column = None;
    let count = present.iter().filter(|p| **p).count();
    let nulls = cursor.take(count.div_ceil(8))?;
    let mut row = Vec::with_capacity(columns.len());
    let mut nth = 0;
    for (column, spec) in columns.iter().enumerate() {
        if !present.get(column).copied().unwrap_or(false) {
            row.push(Cell::Null);
            continue;
        }
        let null = nulls[nth / 8] & (1 << (nth % 8)) != 0;
        nth += 1;
        if null {
            row.push(Cell::Null);
            continue;
        }
        cursor.column = Some(column);
        row.push(cell(cursor, spec, column)?);
    }
    Ok(row)
}

/// What a rows event holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowsKind {
    Write,
    Update,
    Delete,
}

/// One changed row: its before and after images (`None` where the event has none).
#[derive(Debug, Clone, PartialEq)]
pub struct RowChange {
    pub before: Option<Vec<Cell>>,
    pub after: Option<Vec<Cell>>,
}

/// Decodes every row of a rows event's data. `before`/`after` are the events' column
/// bitmaps (which columns each image holds).
pub fn decode_rows(
    kind: RowsKind,
    columns: &[ColumnSpec],
    before: &[bool],
    after: &[bool],
    data: &[u8],
) -> Result<Vec<RowChange>, DecodeError> {
    let mut cursor = Cursor {
        data,
        at: 0,
        column: None,
    };
    let mut rows = Vec::new();
    while !cursor.done() {
        let at = cursor.at;
        let change = match kind {
            RowsKind::Write => RowChange {
                before: None,
                after: Some(image(&mut cursor, columns, after)?),
            },
            RowsKind::Delete => RowChange {
                before: Some(image(&mut cursor, columns, before)?),
                after: None,
            },
            RowsKind::Update => {
                let old = image(&mut cursor, columns, before)?;
                let new = image(&mut cursor, columns, after)?;
                RowChange {
                    before: Some(old),
                    after: Some(new),
                }
            }
        };
        if cursor.at == at {
            // An image of no bytes (no column present) would repeat forever.
            return Err(error(
                None,
                "a row image holds no bytes while the event has more",
            ));
        }
        rows.push(change);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(type_code: u8, meta: &[u8]) -> ColumnSpec {
        ColumnSpec {
            type_code,
            meta: meta.to_vec(),
        }
    }

    fn one(spec: ColumnSpec, bytes: &[u8]) -> Cell {
        let mut data = vec![0u8];
        data.extend_from_slice(bytes);
        let rows = decode_rows(RowsKind::Write, &[spec], &[true], &[true], &data).unwrap();
        rows[0].after.as_ref().unwrap()[0].clone()
    }

    #[test]
    fn integers_decimals_and_strings() {
        assert_eq!(
            one(spec(code::TINY, &[]), &[0xFF]),
            Cell::Int {
                value: -1,
                bytes: 1
            }
        );
        assert_eq!(
            one(spec(code::INT24, &[]), &[0xFE, 0xFF, 0xFF]),
            Cell::Int {
                value: -2,
                bytes: 3
            }
        );
        assert_eq!(
            one(spec(code::LONGLONG, &[]), &[0xFF; 8]),
            Cell::Int {
                value: -1,
                bytes: 8
            },
            "BIGINT UNSIGNED max reads as -1 signed; the schema makes it unsigned"
        );
        // DECIMAL(10,2) 1234.56 and -1234.56 (MySQL's decimal2bin layout).
        assert_eq!(
            one(
                spec(code::NEWDECIMAL, &[10, 2]),
                &[0x80, 0x00, 0x04, 0xD2, 0x38]
            ),
            Cell::Decimal("1234.56".into())
        );
        assert_eq!(
            one(
                spec(code::NEWDECIMAL, &[10, 2]),
                &[0x7F, 0xFF, 0xFB, 0x2D, 0xC7]
            ),
            Cell::Decimal("-1234.56".into())
        );
        assert_eq!(
            one(spec(code::VARCHAR, &[20, 0]), &[2, b'h', b'i']),
            Cell::Bytes(b"hi".to_vec())
        );
        assert_eq!(
            one(spec(code::BLOB, &[2]), &[1, 0, b'x']),
            Cell::Bytes(b"x".to_vec())
        );
        assert_eq!(
            one(spec(code::STRING, &[code::ENUM, 1]), &[2]),
            Cell::Enum(2)
        );
        assert_eq!(
            one(spec(code::STRING, &[0xFE, 12]), &[1, b'a']),
            Cell::Bytes(b"a".to_vec())
        );
    }

    #[test]
    fn temporal_types_including_negative_fractional_time() {
        // TIME(2) '-00:00:01.50': MySQL stores intpart 0x7FFFFF (-1 s) and fraction 0x32 (50),
        // which reads as -1 s + 0.50 unless the borrow is undone.
        assert_eq!(
            one(spec(code::TIME2, &[2]), &[0x7F, 0xFF, 0xFF, 0xCE]),
            Cell::Time {
                negative: true,
                hours: 0,
                minutes: 0,
                seconds: 0,
                micros: 500_000
            }
        );
        assert_eq!(
            one(spec(code::TIME2, &[0]), &[0x80, 0x10, 0x83]),
            Cell::Time {
                negative: false,
                hours: 1,
                minutes: 2,
                seconds: 3,
                micros: 0
            }
        );
        // DATETIME(0) 2024-02-29 10:20:30.
        let ym = 2024 * 13 + 2;
        let packed: u64 = 0x80_0000_0000 + (((ym << 5 | 29) << 17) | (10 << 12) | (20 << 6) | 30);
        let bytes = &packed.to_be_bytes()[3..];
        assert_eq!(
            one(spec(code::DATETIME2, &[0]), bytes),
            Cell::DateTime {
                year: 2024,
                month: 2,
                day: 29,
                hour: 10,
                minute: 20,
                second: 30,
                micros: 0
            }
        );
        assert_eq!(
            one(spec(code::DATE, &[]), &[0x5D, 0xD0, 0x0F]),
            Cell::Date {
                year: 2024,
                month: 2,
                day: 29
            }
        );
        assert_eq!(
            one(spec(code::YEAR, &[]), &[0]),
            Cell::Year(0),
            "YEAR 0 stays 0"
        );
        assert_eq!(
            one(
                spec(code::TIMESTAMP2, &[3]),
                &[0x65, 0xE0, 0x5A, 0x1E, 0x04, 0xCE]
            ),
            Cell::Timestamp {
                seconds: 0x65E0_5A1E,
                micros: 123_000
            }
        );
    }

    #[test]
    fn nulls_updates_and_truncated_images() {
        let columns = [spec(code::LONG, &[]), spec(code::VARCHAR, &[10, 0])];
        let data = [0b10, 7, 0, 0, 0, 0b00, 8, 0, 0, 0, 1, b'z'];
        let rows = decode_rows(
            RowsKind::Update,
            &columns,
            &[true, true],
            &[true, true],
            &data,
        )
        .unwrap();
        assert_eq!(
            rows[0].before.as_ref().unwrap(),
            &[Cell::Int { value: 7, bytes: 4 }, Cell::Null]
        );
        assert_eq!(
            rows[0].after.as_ref().unwrap()[1],
            Cell::Bytes(b"z".to_vec())
        );
        let err = decode_rows(
            RowsKind::Update,
            &columns,
            &[true, true],
            &[true, true],
            &data[..11],
        )
        .unwrap_err();
        assert_eq!(err.column, Some(1), "{err}");
        assert!(err.to_string().contains("column 2"), "{err}");
    }

    /// Every prefix and many random byte strings against every type: an error or a value,
    /// never a panic.
    #[test]
    fn any_input_decodes_or_fails_cleanly() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let codes = [
            0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 245, 246,
            247, 248, 249, 250, 251, 252, 253, 254, 255,
        ];
        for _ in 0..20_000 {
            let columns: Vec<ColumnSpec> = (0..(next() % 4 + 1))
                .map(|_| {
                    let meta: Vec<u8> = (0..(next() % 3)).map(|_| next() as u8).collect();
                    spec(codes[(next() % codes.len() as u64) as usize], &meta)
                })
                .collect();
            let present: Vec<bool> = columns.iter().map(|_| next() % 4 != 0).collect();
            let data: Vec<u8> = (0..(next() % 40)).map(|_| next() as u8).collect();
            for kind in [RowsKind::Write, RowsKind::Update, RowsKind::Delete] {
                let _ = decode_rows(kind, &columns, &present, &present, &data);
            }
        }
    }
}
