//! The binary forms (`COPY … (FORMAT binary)`, the types' `send` functions) of the types whose
//! value is cheaper to read that way, decoded to exactly the value [`column_value`] makes of
//! the same column's text form. A table is read in binary only when every column has a
//! decoder here and every key column can be written back as text (for resume offsets and
//! chunk bounds); any other table is read in text.
//!
//! [`column_value`]: crate::types::column_value

use std::borrow::Cow;

use sluice_api::data::Value;
use sluice_api::{Error, Result};
use sluice_debezium::uuid::uuid_text;

use crate::types::{ColumnType, Shape, Temporal, ValueModes, binary_value, oid, temporal_unit};

/// Days from 1970-01-01 to Postgres's epoch, 2000-01-01.
const POSTGRES_EPOCH_DAYS: i64 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
const POSTGRES_EPOCH_MICROS: i64 = POSTGRES_EPOCH_DAYS * 86_400_000_000;

/// Whether [`binary_column_value`] reads this column's binary form.
pub(crate) fn has_binary_decoder(column: &ColumnType) -> bool {
    match column.shape {
        Shape::Enum(_) => true,
        Shape::Scalar => matches!(
            column.oid,
            oid::BOOL
                | oid::INT2
                | oid::INT4
                | oid::INT8
                | oid::OID
                | oid::FLOAT8
                | oid::BYTEA
                | oid::DATE
                | oid::TIMESTAMP
                | oid::TEXT
                | oid::VARCHAR
                | oid::BPCHAR
                | oid::NAME
                | oid::UUID
                | oid::JSON
                | oid::JSONB
        ),
        _ => false,
    }
}

/// A key column's binary form as the text a `SELECT` shows (what resume offsets and chunk
/// bounds hold); `None` for a type this is not done for (its table is read in text).
pub(crate) fn binary_key_text(column: &ColumnType, bytes: &[u8]) -> Option<String> {
    if matches!(column.shape, Shape::Enum(_)) {
        return Some(utf8(bytes).into_owned());
    }
    if !matches!(column.shape, Shape::Scalar) {
        return None;
    }
    Some(match column.oid {
        oid::INT2 => i16::from_be_bytes(bytes.try_into().ok()?).to_string(),
        oid::INT4 => i32::from_be_bytes(bytes.try_into().ok()?).to_string(),
        oid::INT8 => i64::from_be_bytes(bytes.try_into().ok()?).to_string(),
        oid::OID => u32::from_be_bytes(bytes.try_into().ok()?).to_string(),
        oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME => utf8(bytes).into_owned(),
        oid::UUID => uuid_text(bytes.try_into().ok()?),
        _ => return None,
    })
}

/// An integer key column's binary form as its value (whose decimal text is what
/// [`binary_key_text`] gives); `None` for other types.
pub(crate) fn binary_key_integer(column: &ColumnType, bytes: &[u8]) -> Option<i64> {
    if !matches!(column.shape, Shape::Scalar) {
        return None;
    }
    Some(match column.oid {
        oid::INT2 => i16::from_be_bytes(bytes.try_into().ok()?).into(),
        oid::INT4 => i32::from_be_bytes(bytes.try_into().ok()?).into(),
        oid::INT8 => i64::from_be_bytes(bytes.try_into().ok()?),
        oid::OID => u32::from_be_bytes(bytes.try_into().ok()?).into(),
        _ => return None,
    })
}

/// Whether a key column of this type can be written back as text by [`binary_key_text`].
pub(crate) fn has_binary_key_text(column: &ColumnType) -> bool {
    matches!(column.shape, Shape::Enum(_))
        || matches!(column.shape, Shape::Scalar)
            && matches!(
                column.oid,
                oid::INT2
                    | oid::INT4
                    | oid::INT8
                    | oid::OID
                    | oid::TEXT
                    | oid::VARCHAR
                    | oid::BPCHAR
                    | oid::NAME
                    | oid::UUID
            )
}

/// Converts a value's binary form to the value the text path makes of the same column.
pub(crate) fn binary_column_value(
    column: &ColumnType,
    modes: ValueModes,
    bytes: &[u8],
) -> Result<Value> {
    let size = |what: &str| {
        Error::data(format!(
            "a binary {what} of {} bytes (the server's binary form was not what was expected)",
            bytes.len()
        ))
    };
    if matches!(column.shape, Shape::Enum(_)) {
        return Ok(Value::from(utf8(bytes).into_owned()));
    }
    Ok(match column.oid {
        oid::BOOL => match bytes {
            [b] => Value::Boolean(*b != 0),
            _ => return Err(size("bool")),
        },
        oid::INT2 => Value::Int16(i16::from_be_bytes(
            bytes.try_into().map_err(|_| size("int2"))?,
        )),
        oid::INT4 => Value::Int32(i32::from_be_bytes(
            bytes.try_into().map_err(|_| size("int4"))?,
        )),
        oid::INT8 => Value::Int64(i64::from_be_bytes(
            bytes.try_into().map_err(|_| size("int8"))?,
        )),
        oid::OID => Value::Int64(i64::from(u32::from_be_bytes(
            bytes.try_into().map_err(|_| size("oid"))?,
        ))),
        oid::FLOAT8 => Value::Float64(f64::from_be_bytes(
            bytes.try_into().map_err(|_| size("float8"))?,
        )),
        oid::BYTEA => binary_value(modes.binary, bytes.to_vec()),
        oid::DATE => {
            let days = i32::from_be_bytes(bytes.try_into().map_err(|_| size("date"))?);
            // The text path cannot read `infinity` either; the same error.
            if days == i32::MAX || days == i32::MIN {
                let text = if days == i32::MAX {
                    "infinity"
                } else {
                    "-infinity"
                };
                return Err(Error::data(format!("cannot read `{text}` as date")));
            }
            Value::Int32((i64::from(days) + POSTGRES_EPOCH_DAYS) as i32)
        }
        oid::TIMESTAMP => {
            let raw = i64::from_be_bytes(bytes.try_into().map_err(|_| size("timestamp"))?);
            // `infinity` and `-infinity` are the extremes in both forms.
            let micros = match raw {
                i64::MAX | i64::MIN => raw,
                // Past year ~294,000 the Unix-epoch microseconds leave i64, as in the text path.
                _ => raw.checked_add(POSTGRES_EPOCH_MICROS).ok_or_else(|| {
                    Error::data("a timestamp beyond what microseconds since 1970 hold in 64 bits")
                })?,
            };
            match temporal_unit(column, modes.time) {
                Temporal::Micros => Value::Int64(micros),
                _ => Value::Int64(micros.div_euclid(1000)),
            }
        }
        oid::UUID => Value::from(uuid_text(bytes.try_into().map_err(|_| size("uuid"))?)),
        // jsonb's binary form is a version byte (1) before the same text.
        oid::JSONB => match bytes.split_first() {
            Some((1, text)) => Value::from(utf8(text).into_owned()),
            _ => {
                return Err(Error::data(
                    "a binary jsonb value of an unknown version (only version 1 is read)",
                ));
            }
        },
        oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME | oid::JSON => {
            Value::from(utf8(bytes).into_owned())
        }
        other => {
            return Err(Error::data(format!(
                "no binary decoder for type oid {other} (the table should have been read in text)"
            )));
        }
    })
}

/// Text as the text path reads it: UTF-8, or with invalid bytes replaced.
fn utf8(bytes: &[u8]) -> Cow<'_, str> {
    // Valid text (nearly always) takes the standard library's fast check; only invalid
    // bytes pay for the replacing walk.
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::column_value;

    fn modes() -> ValueModes {
        ValueModes::default()
    }

    /// The binary and the text form of one value give the same value.
    fn same(oid: u32, binary: &[u8], text: &str) {
        let column = ColumnType::scalar(oid, -1);
        let schema = crate::types::column_schema(&column, modes(), false);
        assert_eq!(
            binary_column_value(&column, modes(), binary).unwrap(),
            column_value(&column, modes(), &schema, text).unwrap(),
            "oid {oid}: {text}"
        );
    }

    #[test]
    fn binary_forms_give_the_text_forms_values() {
        same(oid::BOOL, &[1], "t");
        same(oid::BOOL, &[0], "f");
        same(oid::INT2, &(-7i16).to_be_bytes(), "-7");
        same(oid::INT4, &123456i32.to_be_bytes(), "123456");
        same(oid::INT8, &i64::MIN.to_be_bytes(), &i64::MIN.to_string());
        same(oid::OID, &u32::MAX.to_be_bytes(), &u32::MAX.to_string());
        same(oid::FLOAT8, &0.1f64.to_be_bytes(), "0.1");
        same(oid::DATE, &0i32.to_be_bytes(), "2000-01-01");
        same(oid::DATE, &(-730_119i32).to_be_bytes(), "0001-01-01");
        same(
            oid::TIMESTAMP,
            &1_500_000i64.to_be_bytes(),
            "2000-01-01 00:00:01.5",
        );
        same(oid::TIMESTAMP, &i64::MAX.to_be_bytes(), "infinity");
        same(
            oid::TIMESTAMP,
            &(-730_485i64 * 86_400_000_000 + 1).to_be_bytes(),
            "0001-01-01 00:00:00.000001 BC",
        );
        same(oid::TEXT, "grüße\tx".as_bytes(), "grüße\tx");
        let uuid = [
            0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38,
            0x0a, 0x11,
        ];
        same(oid::UUID, &uuid, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
        same(oid::JSONB, b"\x01{\"a\": 1}", "{\"a\": 1}");
    }

    #[test]
    fn bad_binary_input_is_an_error_not_a_panic() {
        let int4 = ColumnType::scalar(oid::INT4, -1);
        assert!(binary_column_value(&int4, modes(), &[1, 2]).is_err());
        let jsonb = ColumnType::scalar(oid::JSONB, -1);
        assert!(binary_column_value(&jsonb, modes(), b"\x02{}").is_err());
        let date = ColumnType::scalar(oid::DATE, -1);
        assert!(binary_column_value(&date, modes(), &i32::MAX.to_be_bytes()).is_err());
        // Past what microseconds since 1970 hold: an error in both forms, never a wrap.
        let timestamp = ColumnType::scalar(oid::TIMESTAMP, -1);
        let beyond = (i64::MAX - 1).to_be_bytes();
        assert!(binary_column_value(&timestamp, modes(), &beyond).is_err());
        let schema = crate::types::column_schema(&timestamp, modes(), false);
        assert!(column_value(&timestamp, modes(), &schema, "294277-01-01 00:00:00").is_err());
        assert_eq!(
            binary_key_text(&int4, &42i32.to_be_bytes()).as_deref(),
            Some("42")
        );
        assert_eq!(binary_key_text(&int4, &[1]), None);
    }

    /// An integer key kept as its value writes the same text the key's text form holds.
    #[test]
    fn integer_keys_give_the_text_of_their_binary_form() {
        let cases: [(u32, Vec<u8>); 5] = [
            (oid::INT2, (-7i16).to_be_bytes().to_vec()),
            (oid::INT4, i32::MIN.to_be_bytes().to_vec()),
            (oid::INT8, i64::MAX.to_be_bytes().to_vec()),
            (oid::INT8, (-1i64).to_be_bytes().to_vec()),
            (oid::OID, u32::MAX.to_be_bytes().to_vec()),
        ];
        for (type_oid, bytes) in cases {
            let column = ColumnType::scalar(type_oid, -1);
            let value = binary_key_integer(&column, &bytes).expect("an integer key");
            assert_eq!(
                Some(value.to_string()),
                binary_key_text(&column, &bytes),
                "{type_oid}"
            );
        }
        let text = ColumnType::scalar(oid::TEXT, -1);
        assert_eq!(binary_key_integer(&text, b"12"), None);
        let int4 = ColumnType::scalar(oid::INT4, -1);
        assert_eq!(binary_key_integer(&int4, &[1]), None);
    }
}
