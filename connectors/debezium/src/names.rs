//! `schema.name.adjustment.mode` and `field.name.adjustment.mode`: schema and field names made
//! valid for Avro (Debezium's `SchemaNameAdjuster`). `none`, the default, leaves them as they
//! are; `avro` replaces each character Avro does not allow with `_`; `avro_unicode` with
//! `_uxxxx` (its UTF-16 code unit in hex).

use sluice_api::{Error, Result};

/// One of the adjustment modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NameAdjustment {
    /// Names as the database has them.
    #[default]
    None,
    /// Invalid characters become `_`.
    Avro,
    /// Invalid characters become `_uxxxx`.
    AvroUnicode,
}

impl NameAdjustment {
    /// Reads `none`, `avro` or `avro_unicode` (the value of `key`).
    pub fn parse(key: &str, value: &str) -> Result<NameAdjustment> {
        match value.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(NameAdjustment::None),
            "avro" => Ok(NameAdjustment::Avro),
            "avro_unicode" => Ok(NameAdjustment::AvroUnicode),
            other => Err(Error::config(format!(
                "`{key}={other}`: the modes are none, avro and avro_unicode"
            ))),
        }
    }

    /// A full schema name (dot-separated parts, e.g. `dbserver1.public.my-table.Value`).
    pub fn schema_name(self, name: &str) -> String {
        self.adjust(name, true)
    }

    /// A field name (no dots allowed).
    pub fn field_name(self, name: &str) -> String {
        self.adjust(name, false)
    }

    fn adjust(self, name: &str, dots: bool) -> String {
        if self == NameAdjustment::None {
            return name.to_owned();
        }
        let mut out = String::with_capacity(name.len());
        let mut part_start = true;
        for c in name.chars() {
            let valid = c == '_'
                || c.is_ascii_alphabetic()
                || (c.is_ascii_digit() && !part_start)
                || (dots && c == '.' && !out.is_empty());
            if valid {
                out.push(c);
            } else if self == NameAdjustment::Avro {
                out.push('_');
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("_u{unit:04x}"));
                }
            }
            part_start = dots && c == '.';
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avro_modes_replace_what_avro_refuses() {
        assert_eq!(
            NameAdjustment::None.schema_name("a.my-table.Value"),
            "a.my-table.Value"
        );
        assert_eq!(
            NameAdjustment::Avro.schema_name("a.my-table.Value"),
            "a.my_table.Value"
        );
        assert_eq!(
            NameAdjustment::AvroUnicode.schema_name("a.my-table.Value"),
            "a.my_u002dtable.Value"
        );
        assert_eq!(NameAdjustment::Avro.field_name("1st.col"), "_st_col");
        assert_eq!(NameAdjustment::AvroUnicode.field_name("é"), "_u00e9");
    }
}
