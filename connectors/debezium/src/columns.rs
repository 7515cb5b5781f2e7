//! Per-column rules from Debezium's pattern keys: `column.mask.with.<n>.chars`,
//! `column.mask.hash.<algorithm>.with.salt.<salt>` (and its `v2` form),
//! `column.truncate.to.<n>.chars`, and `column.propagate.source.type` /
//! `datatype.propagate.source.type`. Each holds comma-separated regular expressions matching
//! whole fully-qualified column names (`schema.table.column`; for MySQL `db.table.column`).
//! Masking and truncation apply to character columns only, as in Debezium.

use regex::Regex;
use sha2::Digest;
use sluice_api::config::{Props, split_list};
use sluice_api::data::Value;
use sluice_api::{Error, Result};

/// Prefix of `column.mask.with.<n>.chars`.
pub const MASK_WITH: &str = "column.mask.with.";
/// Prefix of `column.mask.hash.<algorithm>.with.salt.<salt>`.
pub const MASK_HASH: &str = "column.mask.hash.";
/// Prefix of `column.truncate.to.<n>.chars`.
pub const TRUNCATE_TO: &str = "column.truncate.to.";

/// A hash algorithm of `column.mask.hash.*`, by its Java name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Md5,
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Algorithm {
    fn parse(name: &str) -> Option<Algorithm> {
        match name.to_ascii_uppercase().as_str() {
            "MD5" => Some(Algorithm::Md5),
            "SHA-1" | "SHA1" | "SHA" => Some(Algorithm::Sha1),
            "SHA-256" | "SHA256" => Some(Algorithm::Sha256),
            "SHA-384" | "SHA384" => Some(Algorithm::Sha384),
            "SHA-512" | "SHA512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }

    fn digest(self, salt: &[u8], data: &[u8]) -> Vec<u8> {
        fn run<D: Digest>(salt: &[u8], data: &[u8]) -> Vec<u8> {
            let mut digest = D::new();
            digest.update(salt);
            digest.update(data);
            digest.finalize().to_vec()
        }
        match self {
            Algorithm::Md5 => run::<md5::Md5>(salt, data),
            Algorithm::Sha1 => run::<sha1::Sha1>(salt, data),
            Algorithm::Sha256 => run::<sha2::Sha256>(salt, data),
            Algorithm::Sha384 => run::<sha2::Sha384>(salt, data),
            Algorithm::Sha512 => run::<sha2::Sha512>(salt, data),
        }
    }
}

/// What is hashed: Debezium's `v1` hashes the value's Java serialization (what
/// `ObjectOutputStream.writeObject` writes for a `String`), `v2` its UTF-8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HashInput {
    V1,
    V2,
}

/// How `column.mask.hash.*` hashes: algorithm, input form and salt.
#[derive(Debug, Clone)]
pub struct Hashing {
    algorithm: Algorithm,
    input: HashInput,
    salt: Vec<u8>,
}

impl Hashing {
    fn hash(&self, text: &str) -> String {
        let data = match self.input {
            HashInput::V1 => java_serialized_string(text),
            HashInput::V2 => text.as_bytes().to_vec(),
        };
        self.algorithm
            .digest(&self.salt, &data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// A `String` as Java's `ObjectOutputStream.writeObject` writes it: stream header, then
/// `TC_STRING` with a 2-byte length of the modified UTF-8 bytes (`TC_LONGSTRING` and an 8-byte
/// length from 64 KiB on).
fn java_serialized_string(text: &str) -> Vec<u8> {
    let mut encoded = Vec::with_capacity(text.len());
    for unit in text.encode_utf16() {
        let unit = u32::from(unit);
        match unit {
            0x0001..=0x007F => encoded.push(unit as u8),
            0x0000 | 0x0080..=0x07FF => {
                encoded.push((0xC0 | (unit >> 6)) as u8);
                encoded.push((0x80 | (unit & 0x3F)) as u8);
            }
            _ => {
                encoded.push((0xE0 | (unit >> 12)) as u8);
                encoded.push((0x80 | ((unit >> 6) & 0x3F)) as u8);
                encoded.push((0x80 | (unit & 0x3F)) as u8);
            }
        }
    }
    let mut out = vec![0xAC, 0xED, 0x00, 0x05];
    if encoded.len() <= 0xFFFF {
        out.push(0x74);
        out.extend_from_slice(&(encoded.len() as u16).to_be_bytes());
    } else {
        out.push(0x7C);
        out.extend_from_slice(&(encoded.len() as u64).to_be_bytes());
    }
    out.extend_from_slice(&encoded);
    out
}

/// What the catalog says of a column, as the rules need it.
#[derive(Debug, Clone, Copy)]
pub struct ColumnFacts<'a> {
    /// `schema.table.column` (MySQL: `db.table.column`).
    pub qualified: &'a str,
    /// `schema.table` (MySQL: `db.table`).
    pub table: &'a str,
    /// The database's type name (`varchar`, `int4`, …).
    pub type_name: &'a str,
    /// Whether the column holds text: only such columns are masked or hashed.
    pub character: bool,
    /// The declared length (`varchar(20)`: 20); `None` when unbounded.
    pub length: Option<i64>,
}

/// The rule one column follows. As in Debezium only one applies per column, the first that
/// matches in this order: truncate, mask with characters, propagate the source type (by
/// column, then by type), hash.
#[derive(Debug, Clone, Default)]
pub enum ColumnRule {
    /// Values pass unchanged.
    #[default]
    None,
    /// `column.truncate.to.<n>.chars`: text (and bytes) cut to `n` characters.
    Truncate(usize),
    /// `column.mask.with.<n>.chars`: every value (null too) becomes `n` asterisks.
    MaskWith(usize),
    /// `column.mask.hash.*`: the hash of the value, as hex, cut to the column's length.
    Hash {
        /// Salt, algorithm and input form.
        hashing: Hashing,
        /// The column's declared length, when bounded.
        length: Option<usize>,
    },
    /// The schema carries the source type as `__debezium.source.column.*` parameters.
    PropagateSourceType,
}

impl ColumnRule {
    /// Whether values pass unchanged.
    pub fn is_identity(&self) -> bool {
        matches!(self, ColumnRule::None | ColumnRule::PropagateSourceType)
    }

    /// The schema parameter the rule adds, if any (`masked`, `truncateLength`); the source
    /// type parameters are the connector's to add, since it knows the type's details.
    pub fn schema_parameter(&self) -> Option<(&'static str, String)> {
        match self {
            ColumnRule::MaskWith(_) | ColumnRule::Hash { .. } => Some(("masked", "true".into())),
            ColumnRule::Truncate(n) => Some(("truncateLength", n.to_string())),
            _ => None,
        }
    }

    /// Applies the rule to a converted value.
    pub fn apply(&self, value: Value) -> Value {
        match (self, value) {
            (ColumnRule::MaskWith(n), _) => Value::from("*".repeat(*n)),
            (ColumnRule::Truncate(n), Value::String(mut text)) => {
                if let Some((cut, _)) = text.char_indices().nth(*n) {
                    text.make_mut().truncate(cut);
                }
                Value::String(text)
            }
            (ColumnRule::Truncate(n), Value::Bytes(mut bytes)) => {
                bytes.truncate(*n);
                Value::Bytes(bytes)
            }
            (ColumnRule::Hash { hashing, length }, Value::String(text)) => {
                let mut hash = hashing.hash(&text);
                if let Some(length) = length {
                    hash.truncate(*length);
                }
                Value::from(hash)
            }
            (_, value) => value,
        }
    }
}

fn patterns(key: &str, value: &str) -> Result<Option<Regex>> {
    let list = split_list(value);
    if list.is_empty() {
        return Ok(None);
    }
    let alternatives: Vec<String> = list.iter().map(|p| format!("(?:{p})")).collect();
    Regex::new(&format!("(?i)^(?:{})$", alternatives.join("|")))
        .map(Some)
        .map_err(|e| Error::config(format!("`{key}` holds an invalid regular expression: {e}")))
}

/// Every column rule of a connector config.
#[derive(Debug, Clone, Default)]
pub struct ColumnRules {
    truncate: Vec<(Regex, usize)>,
    mask: Vec<(Regex, usize)>,
    hash: Vec<(Regex, Hashing)>,
    propagate_columns: Option<Regex>,
    propagate_types: Option<Regex>,
}

impl ColumnRules {
    /// Reads the pattern keys from `props`; a key of one of the families that does not parse
    /// is an error naming it.
    pub fn from_props(props: &Props) -> Result<ColumnRules> {
        let mut rules = ColumnRules::default();
        let count = |key: &str, rest: &str| -> Result<usize> {
            rest.strip_suffix(".chars")
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| {
                    Error::config(format!(
                        "`{key}`: write the length as a whole number, e.g. column.mask.with.8.chars \
                         or column.truncate.to.20.chars"
                    ))
                })
        };
        for (key, value) in props {
            if let Some(rest) = key.strip_prefix(TRUNCATE_TO) {
                let n = count(key, rest)?;
                if let Some(pattern) = patterns(key, value)? {
                    rules.truncate.push((pattern, n));
                }
            } else if let Some(rest) = key.strip_prefix(MASK_WITH) {
                let n = count(key, rest)?;
                if let Some(pattern) = patterns(key, value)? {
                    rules.mask.push((pattern, n));
                }
            } else if let Some(rest) = key.strip_prefix(MASK_HASH) {
                let (input, rest) = match rest.strip_prefix("v2.") {
                    Some(rest) => (HashInput::V2, rest),
                    None => (HashInput::V1, rest),
                };
                let Some((algorithm, salt)) = rest.split_once(".with.salt.") else {
                    return Err(Error::config(format!(
                        "`{key}`: write column.mask.hash.<algorithm>.with.salt.<salt>, e.g. \
                         column.mask.hash.SHA-256.with.salt.CzQMA0cB5K"
                    )));
                };
                let Some(algorithm) = Algorithm::parse(algorithm) else {
                    return Err(Error::config(format!(
                        "`{key}`: hash algorithm `{algorithm}` is not one sluice has; use MD5, \
                         SHA-1, SHA-256, SHA-384 or SHA-512"
                    )));
                };
                if let Some(pattern) = patterns(key, value)? {
                    rules.hash.push((
                        pattern,
                        Hashing {
                            algorithm,
                            input,
                            salt: salt.as_bytes().to_vec(),
                        },
                    ));
                }
            }
        }
        // v1 rules before v2 ones, as Debezium registers them.
        rules.hash.sort_by_key(|(_, h)| h.input == HashInput::V2);
        let get = |key: &str| props.get(key).map(String::as_str).unwrap_or_default();
        rules.propagate_columns = patterns(
            "column.propagate.source.type",
            get("column.propagate.source.type"),
        )?;
        rules.propagate_types = patterns(
            "datatype.propagate.source.type",
            get("datatype.propagate.source.type"),
        )?;
        Ok(rules)
    }

    /// The rule of a column (key columns follow none: the caller does not ask for them).
    pub fn for_column(&self, column: ColumnFacts<'_>) -> ColumnRule {
        let hit = |pattern: &Regex| pattern.is_match(column.qualified);
        if let Some((_, n)) = self.truncate.iter().find(|(p, _)| hit(p)) {
            // The rule is this column's even where there is nothing to cut.
            return if column.length.is_none_or(|length| length > *n as i64) {
                ColumnRule::Truncate(*n)
            } else {
                ColumnRule::None
            };
        }
        if let Some((_, n)) = self.mask.iter().find(|(p, _)| hit(p))
            && column.character
        {
            return ColumnRule::MaskWith(*n);
        }
        if self.propagate_columns.as_ref().is_some_and(hit)
            || self
                .propagate_types
                .as_ref()
                .is_some_and(|p| p.is_match(&format!("{}.{}", column.table, column.type_name)))
        {
            return ColumnRule::PropagateSourceType;
        }
        if let Some((_, hashing)) = self.hash.iter().find(|(p, _)| hit(p))
            && column.character
        {
            return ColumnRule::Hash {
                hashing: hashing.clone(),
                length: column
                    .length
                    .and_then(|l| usize::try_from(l).ok())
                    .filter(|l| *l > 0),
            };
        }
        ColumnRule::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_api::config::props;

    fn facts<'a>(qualified: &'a str, type_name: &'a str, length: Option<i64>) -> ColumnFacts<'a> {
        ColumnFacts {
            qualified,
            table: "public.customers",
            type_name,
            character: type_name != "int4",
            length,
        }
    }

    #[test]
    fn one_rule_per_column_applies_in_debezium_s_order() {
        let rules = ColumnRules::from_props(&props(&[
            ("column.mask.with.5.chars", "public.customers.email"),
            (
                "column.truncate.to.3.chars",
                "public\\.customers\\.first_.*",
            ),
            (
                "column.mask.hash.SHA-256.with.salt.CzQMA0cB5K",
                "public.customers.last_name",
            ),
            ("datatype.propagate.source.type", ".+\\.VARCHAR"),
        ]))
        .unwrap();
        let email = rules.for_column(facts("public.customers.email", "varchar", Some(255)));
        assert_eq!(
            email.apply(Value::Null),
            Value::from("*****"),
            "nulls are masked too"
        );
        let first = rules.for_column(facts("public.customers.first_name", "text", None));
        assert_eq!(first.apply(Value::from("Sally")), Value::from("Sal"));
        assert_eq!(
            first.schema_parameter(),
            Some(("truncateLength", "3".into()))
        );
        let short = rules.for_column(facts("public.customers.first_code", "varchar", Some(2)));
        assert!(
            matches!(short, ColumnRule::None),
            "nothing to cut: {short:?}"
        );
        // Debezium's own test vector (PostgresConnectorIT, salt CzQMA0cB5K, varchar(20)).
        let last = rules.for_column(facts("public.customers.last_name", "bpchar", Some(20)));
        assert_eq!(
            last.apply(Value::from("test")),
            Value::from("8e68c68edbbac316dfe2")
        );
        let other = rules.for_column(facts("public.customers.city", "varchar", Some(20)));
        assert!(matches!(other, ColumnRule::PropagateSourceType));
        let id = rules.for_column(facts("public.customers.email", "int4", None));
        assert!(id.is_identity(), "non-text columns are never masked");
    }

    #[test]
    fn v1_hashes_java_s_serialization_of_the_string() {
        assert_eq!(
            java_serialized_string("ab"),
            vec![0xAC, 0xED, 0x00, 0x05, 0x74, 0x00, 0x02, b'a', b'b']
        );
        assert_eq!(
            java_serialized_string("\0é")[7..],
            [0xC0, 0x80, 0xC3, 0xA9],
            "modified UTF-8"
        );
        let bad = ColumnRules::from_props(&props(&[(
            "column.mask.hash.WHIRLPOOL.with.salt.x",
            "a.b.c",
        )]))
        .unwrap_err();
        assert!(bad.message().contains("WHIRLPOOL"), "{bad}");
    }
}
