//! Checking a table's tracked columns against the binlog's TABLE_MAP, and building them from
//! it when the server writes full metadata (`binlog_row_metadata=FULL`).
//!
//! A TABLE_MAP always carries each column's binlog type, its type metadata (widths, precision,
//! fractional digits) and nullability; with `binlog_row_metadata=FULL` also names, signedness,
//! ENUM/SET labels, charsets and the primary key. A schema read from INFORMATION_SCHEMA is the
//! table's schema *now*, which is ahead of the binlog when DDL ran since the event was written:
//! this module tells whether the two agree, and with full metadata the TABLE_MAP wins.

use mysql_async::binlog::events::{OptionalMetadataField, TableMapEvent};

use crate::rows::{ColumnSpec, code};
use crate::table::ColumnInfo;

/// What a TABLE_MAP says of a table's columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapColumns {
    /// Binlog type code and type metadata per column (what the row decoder reads by).
    pub types: Vec<ColumnSpec>,
    pub nullable: Vec<bool>,
    /// With `binlog_row_metadata=FULL` only:
    pub names: Option<Vec<String>>,
    /// One flag per numeric column, in column order.
    pub unsigned: Option<Vec<bool>>,
    /// Labels of each ENUM column, in column order among ENUM columns.
    pub enums: Vec<Vec<String>>,
    /// Labels of each SET column, in column order among SET columns.
    pub sets: Vec<Vec<String>>,
    pub primary: Option<Vec<usize>>,
    /// Charset number per character column (in column order among them), when given.
    pub charsets: Vec<u16>,
    pub default_charset: Option<u16>,
    /// With a default charset: the character columns that differ from it, by their index
    /// among the character columns (as the binlog numbers them).
    pub charset_exceptions: Vec<(usize, u16)>,
}

/// The charset number of `binary` (columns of it hold bytes, not text).
const BINARY_CHARSET: u16 = 63;

impl MapColumns {
    /// Reads a TABLE_MAP event; malformed optional metadata is treated as absent.
    pub fn read(map: &TableMapEvent<'_>) -> MapColumns {
        let count = map.columns_count() as usize;
        let types = (0..count)
            .map(|i| ColumnSpec {
                type_code: map
                    .get_raw_column_type(i)
                    .ok()
                    .flatten()
                    .map_or(0, |t| t as u8),
                meta: map
                    .get_column_metadata(i)
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default(),
            })
            .collect();
        let nulls = map.null_bitmask();
        let nullable = (0..count)
            .map(|i| nulls.get(i).is_some_and(|b| *b))
            .collect();
        let mut out = MapColumns {
            types,
            nullable,
            names: None,
            unsigned: None,
            enums: Vec::new(),
            sets: Vec::new(),
            primary: None,
            charsets: Vec::new(),
            default_charset: None,
            charset_exceptions: Vec::new(),
        };
        for field in map.iter_optional_meta() {
            let Ok(field) = field else { break };
            match field {
                OptionalMetadataField::ColumnName(names) => {
                    out.names = names
                        .iter_names()
                        .map(|n| n.ok().map(|n| n.name().into_owned()))
                        .collect();
                }
                OptionalMetadataField::Signedness(bits) => {
                    out.unsigned = Some(bits.iter().map(|b| *b).collect());
                }
                OptionalMetadataField::EnumStrValue(values) => {
                    out.enums = values
                        .iter_values()
                        .filter_map(Result::ok)
                        .map(|v| v.values().iter().map(|s| s.value().into_owned()).collect())
                        .collect();
                }
                OptionalMetadataField::SetStrValue(values) => {
                    out.sets = values
                        .iter_values()
                        .filter_map(Result::ok)
                        .map(|v| v.values().iter().map(|s| s.value().into_owned()).collect())
                        .collect();
                }
                OptionalMetadataField::SimplePrimaryKey(key) => {
                    out.primary = Some(
                        key.iter_indexes()
                            .filter_map(Result::ok)
                            .map(|i| i as usize)
                            .collect(),
                    );
                }
                OptionalMetadataField::PrimaryKeyWithPrefix(key) => {
                    out.primary = Some(
                        key.iter_keys()
                            .filter_map(Result::ok)
                            .map(|k| k.column_index() as usize)
                            .collect(),
                    );
                }
                OptionalMetadataField::DefaultCharset(charset) => {
                    out.default_charset = Some(charset.default_charset());
                    out.charset_exceptions = charset
                        .iter_non_default()
                        .filter_map(Result::ok)
                        .map(|c| (c.column_index() as usize, c.charset()))
                        .collect();
                }
                OptionalMetadataField::ColumnCharset(charsets) => {
                    out.charsets = charsets.iter_charsets().filter_map(Result::ok).collect();
                }
                _ => {}
            }
        }
        out
    }

    /// The type of column `i` as the row decoder reads it: STRING columns carry their real
    /// type (ENUM, SET, STRING) in the first metadata byte.
    fn real_type(&self, i: usize) -> u8 {
        let ColumnSpec {
            type_code: code,
            meta,
        } = &self.types[i];
        if *code == code::STRING
            && let Some(&real) = meta.first()
            && matches!(
                real,
                code::ENUM | code::SET | code::STRING | code::VAR_STRING
            )
        {
            return real;
        }
        *code
    }
}

/// The binlog type codes a column described as `column` may be written with.
fn expected_codes(column: &ColumnInfo) -> Option<&'static [u8]> {
    use code::*;
    Some(match column.data_type.as_str() {
        "tinyint" | "bool" | "boolean" => &[TINY],
        "smallint" => &[SHORT],
        "mediumint" => &[INT24],
        "int" | "integer" => &[LONG],
        "bigint" => &[LONGLONG],
        "float" => &[FLOAT],
        "double" | "real" => &[DOUBLE],
        "decimal" | "numeric" => &[NEWDECIMAL],
        "date" => &[DATE, NEWDATE],
        "time" => &[TIME, TIME2],
        "datetime" => &[DATETIME, DATETIME2],
        "timestamp" => &[TIMESTAMP, TIMESTAMP2],
        "year" => &[YEAR],
        "bit" => &[BIT],
        "varchar" | "varbinary" => &[VARCHAR, VAR_STRING],
        "char" | "binary" | "uuid" | "inet6" | "inet4" => &[STRING, VAR_STRING],
        "enum" => &[ENUM],
        "set" => &[SET],
        "tinytext" | "text" | "mediumtext" | "longtext" | "tinyblob" | "blob" | "mediumblob"
        | "longblob" => &[BLOB],
        "json" => &[JSON, BLOB],
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" => &[GEOMETRY],
        _ => return None,
    })
}

/// Why `columns` (the tracked or freshly described schema) cannot decode rows written under
/// `map`; `None` when they agree in count, types and — when the map has them — names.
pub fn disagreement(columns: &[ColumnInfo], map: &MapColumns) -> Option<String> {
    if columns.len() != map.types.len() {
        return Some(format!(
            "the binlog's rows have {} columns, the schema read for the table has {}",
            map.types.len(),
            columns.len()
        ));
    }
    for (i, column) in columns.iter().enumerate() {
        let written = map.real_type(i);
        if let Some(codes) = expected_codes(column)
            && !codes.contains(&written)
        {
            return Some(format!(
                "column {} ({}) is {} in the schema read, but the binlog writes type code {written}",
                i + 1,
                column.name,
                column.data_type
            ));
        }
        if let Some(reason) = width_disagreement(column, written, &map.types[i].meta) {
            return Some(format!("column {} ({}): {reason}", i + 1, column.name));
        }
        if let Some(names) = &map.names
            && names.get(i) != Some(&column.name)
        {
            return Some(format!(
                "column {} is {} in the schema read, but {} in the binlog",
                i + 1,
                column.name,
                names.get(i).map_or("unnamed", String::as_str)
            ));
        }
    }
    metadata_disagreement(columns, map)
}

/// Binlog types whose columns full metadata gives a signedness flag, in column order.
fn is_numeric(real: u8) -> bool {
    matches!(
        real,
        code::TINY
            | code::SHORT
            | code::INT24
            | code::LONG
            | code::LONGLONG
            | code::FLOAT
            | code::DOUBLE
            | code::NEWDECIMAL
    )
}

/// Binlog types whose columns full metadata gives a collation, in column order.
fn is_character(real: u8) -> bool {
    matches!(
        real,
        code::VARCHAR | code::VAR_STRING | code::STRING | code::BLOB
    )
}

impl MapColumns {
    /// The collation of the `character`-th character column, if the metadata gives one.
    fn collation(&self, character: usize) -> Option<u16> {
        self.charsets
            .get(character)
            .copied()
            .or_else(|| {
                self.charset_exceptions
                    .iter()
                    .find(|(index, _)| *index == character)
                    .map(|(_, charset)| *charset)
            })
            .or(self.default_charset)
    }
}

/// The collations of latin1 (a text column's bytes decode as latin1 or as UTF-8).
const LATIN1_COLLATIONS: [u16; 8] = [5, 8, 15, 31, 47, 48, 49, 94];

/// What full metadata says that changes how values decode and `columns` (of the TABLE_MAP's
/// count) says otherwise: signedness, ENUM/SET labels, latin1 text. `None` without it.
fn metadata_disagreement(columns: &[ColumnInfo], map: &MapColumns) -> Option<String> {
    map.names.as_ref()?;
    let (mut numeric, mut character, mut enums, mut sets) = (0, 0, 0, 0);
    for (i, column) in columns.iter().enumerate() {
        let real = map.real_type(i);
        let why = match real {
            _ if is_numeric(real) => {
                let written = map
                    .unsigned
                    .as_ref()
                    .and_then(|flags| flags.get(numeric))
                    .copied();
                numeric += 1;
                written
                    .filter(|unsigned| *unsigned != column.unsigned())
                    .map(|unsigned| {
                        format!(
                            "the binlog writes it {}signed",
                            if unsigned { "un" } else { "" }
                        )
                    })
            }
            _ if is_character(real) => {
                let collation = map.collation(character);
                character += 1;
                let latin1 = column.charset.as_deref() == Some("latin1");
                collation
                    .filter(|id| *id != BINARY_CHARSET && LATIN1_COLLATIONS.contains(id) != latin1)
                    .map(|id| format!("the binlog writes it in collation {id}"))
            }
            code::ENUM | code::SET => {
                let (labels, index) = if real == code::ENUM {
                    (&map.enums, &mut enums)
                } else {
                    (&map.sets, &mut sets)
                };
                let written = labels.get(*index);
                *index += 1;
                written
                    .filter(|labels| !labels.is_empty() && **labels != column.labels())
                    .map(|labels| format!("the binlog writes its labels as {labels:?}"))
            }
            _ => None,
        };
        if let Some(why) = why {
            return Some(format!("column {} ({}): {why}", i + 1, column.name));
        }
    }
    None
}

/// Why a column's precision, scale or fractional digits, which fix how many bytes its binlog
/// value takes, differ from the TABLE_MAP's metadata for it (decoding with the wrong ones
/// would read wrong values, not fail).
fn width_disagreement(column: &ColumnInfo, written: u8, meta: &[u8]) -> Option<String> {
    match written {
        code::NEWDECIMAL => {
            let (precision, scale) = (u32::from(*meta.first()?), u32::from(*meta.get(1)?));
            let read = (column.precision?, column.scale.unwrap_or(0));
            (read != (precision, scale)).then(|| {
                format!(
                    "decimal({},{}) in the schema read, but the binlog writes decimal({precision},{scale})",
                    read.0, read.1
                )
            })
        }
        code::TIME2 | code::DATETIME2 | code::TIMESTAMP2 => {
            let fsp = u32::from(*meta.first()?);
            (column.fsp != fsp).then(|| {
                format!(
                    "{} fractional digits in the schema read, but the binlog writes {fsp}",
                    column.fsp
                )
            })
        }
        _ => None,
    }
}

/// The columns a TABLE_MAP with full metadata describes. A column `hints` (the schema read
/// from INFORMATION_SCHEMA) has under the same name and type keeps what the binlog does not
/// carry (`TINYINT(1)`'s display width, the JSON type on MariaDB); the rest come from the
/// binlog alone. `None` without full metadata (no column names).
pub fn columns_from_map(map: &MapColumns, hints: &[ColumnInfo]) -> Option<Vec<ColumnInfo>> {
    let names = map.names.as_ref()?;
    if names.len() != map.types.len() {
        // Metadata that does not fit its own column count describes nothing.
        return None;
    }
    let mut numeric_index = 0;
    let mut character_index = 0;
    let (mut enum_index, mut set_index) = (0, 0);
    let mut columns = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let real = map.real_type(i);
        let meta = &map.types[i].meta;
        let numeric = is_numeric(real);
        let unsigned = numeric
            && map
                .unsigned
                .as_ref()
                .and_then(|u| u.get(numeric_index))
                .copied()
                .unwrap_or(false);
        if numeric {
            numeric_index += 1;
        }
        let charset = if is_character(real) {
            let charset = map.collation(character_index);
            character_index += 1;
            charset
        } else {
            None
        };
        let binary = charset == Some(BINARY_CHARSET);
        let primary = map.primary.as_ref().is_some_and(|key| key.contains(&i));
        let (data_type, mut column_type, precision, scale, fsp) = match real {
            code::TINY => ("tinyint", "tinyint".to_owned(), None, None, 0),
            code::SHORT => ("smallint", "smallint".to_owned(), None, None, 0),
            code::INT24 => ("mediumint", "mediumint".to_owned(), None, None, 0),
            code::LONG => ("int", "int".to_owned(), None, None, 0),
            code::LONGLONG => ("bigint", "bigint".to_owned(), None, None, 0),
            code::FLOAT => ("float", "float".to_owned(), None, None, 0),
            code::DOUBLE => ("double", "double".to_owned(), None, None, 0),
            code::NEWDECIMAL => {
                let (p, s) = (
                    meta.first().copied().unwrap_or(10),
                    meta.get(1).copied().unwrap_or(0),
                );
                (
                    "decimal",
                    format!("decimal({p},{s})"),
                    Some(u32::from(p)),
                    Some(u32::from(s)),
                    0,
                )
            }
            code::DATE | code::NEWDATE => ("date", "date".to_owned(), None, None, 0),
            code::TIME | code::TIME2 => {
                let fsp = u32::from(meta.first().copied().unwrap_or(0));
                ("time", "time".to_owned(), None, None, fsp)
            }
            code::DATETIME | code::DATETIME2 => {
                let fsp = u32::from(meta.first().copied().unwrap_or(0));
                ("datetime", "datetime".to_owned(), None, None, fsp)
            }
            code::TIMESTAMP | code::TIMESTAMP2 => {
                let fsp = u32::from(meta.first().copied().unwrap_or(0));
                ("timestamp", "timestamp".to_owned(), None, None, fsp)
            }
            code::YEAR => ("year", "year".to_owned(), None, None, 0),
            code::BIT => {
                let bits = u32::from(meta.first().copied().unwrap_or(0))
                    + 8 * u32::from(meta.get(1).copied().unwrap_or(0));
                ("bit", format!("bit({bits})"), Some(bits), None, 0)
            }
            code::VARCHAR | code::VAR_STRING if binary => {
                ("varbinary", "varbinary".to_owned(), None, None, 0)
            }
            code::VARCHAR | code::VAR_STRING => ("varchar", "varchar".to_owned(), None, None, 0),
            code::STRING if binary => ("binary", "binary".to_owned(), None, None, 0),
            code::STRING => ("char", "char".to_owned(), None, None, 0),
            code::ENUM => {
                let labels = map.enums.get(enum_index).cloned().unwrap_or_default();
                enum_index += 1;
                ("enum", format!("enum({})", quoted(&labels)), None, None, 0)
            }
            code::SET => {
                let labels = map.sets.get(set_index).cloned().unwrap_or_default();
                set_index += 1;
                ("set", format!("set({})", quoted(&labels)), None, None, 0)
            }
            code::BLOB if binary => ("longblob", "longblob".to_owned(), None, None, 0),
            code::BLOB => ("longtext", "longtext".to_owned(), None, None, 0),
            code::JSON => ("json", "json".to_owned(), None, None, 0),
            code::GEOMETRY => ("geometry", "geometry".to_owned(), None, None, 0),
            _ => ("unknown", "unknown".to_owned(), None, None, 0),
        };
        if unsigned {
            column_type.push_str(" unsigned");
        }
        let built = ColumnInfo {
            name: name.clone(),
            data_type: data_type.to_owned(),
            column_type,
            nullable: map.nullable.get(i).copied().unwrap_or(true),
            primary,
            precision,
            scale,
            fsp,
            charset: charset
                .filter(|c| *c != BINARY_CHARSET)
                .map(|c| charset_name(c).to_owned()),
        };
        // The described column of the same name and binlog type knows more (display width,
        // the exact text/blob size, MariaDB's JSON), but it was read later than the rows were
        // written: it is taken only where it agrees with what the binlog carries (signedness,
        // precision and scale, fractional digits, ENUM/SET labels), and the binlog's charset
        // wins.
        let hint = hints.iter().find(|h| {
            h.name == *name
                && expected_codes(h).is_some_and(|codes| codes.contains(&real))
                && agrees(h, &built)
        });
        columns.push(match hint {
            Some(hint) => ColumnInfo {
                nullable: built.nullable,
                primary: built.primary,
                charset: if binary {
                    None
                } else {
                    built.charset.clone().or_else(|| hint.charset.clone())
                },
                ..hint.clone()
            },
            None => built,
        });
    }
    Some(columns)
}

/// Whether a described column agrees with the one built from the binlog on everything the
/// binlog carries, so its extra knowledge may be used.
fn agrees(hint: &ColumnInfo, built: &ColumnInfo) -> bool {
    let unsigned = |c: &ColumnInfo| c.column_type.contains("unsigned");
    unsigned(hint) == unsigned(built)
        && (built.precision.is_none()
            || (hint.precision, hint.scale.unwrap_or(0))
                == (built.precision, built.scale.unwrap_or(0)))
        && hint.fsp == built.fsp
        && (!matches!(built.data_type.as_str(), "enum" | "set")
            || hint.column_type == built.column_type)
}

fn quoted(labels: &[String]) -> String {
    labels
        .iter()
        .map(|l| format!("'{}'", l.replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(",")
}

/// The name of a collation number's charset, for the ones that change how text is decoded
/// (latin1); others are read as UTF-8.
fn charset_name(collation: u16) -> &'static str {
    match collation {
        5 | 8 | 15 | 31 | 47 | 48 | 49 | 94 => "latin1",
        _ => "utf8mb4",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(types: &[(u8, &[u8])], names: Option<&[&str]>) -> MapColumns {
        MapColumns {
            types: types
                .iter()
                .map(|(c, m)| ColumnSpec {
                    type_code: *c,
                    meta: m.to_vec(),
                })
                .collect(),
            nullable: vec![true; types.len()],
            names: names.map(|n| n.iter().map(|s| (*s).to_owned()).collect()),
            unsigned: Some(vec![true, false]),
            enums: vec![vec!["a".into(), "b'c".into()]],
            sets: Vec::new(),
            primary: Some(vec![0]),
            charsets: Vec::new(),
            default_charset: Some(45),
            charset_exceptions: Vec::new(),
        }
    }

    #[test]
    fn counts_types_and_names_must_agree() {
        let described = vec![
            ColumnInfo::plain("id", "int", "int(11) unsigned"),
            ColumnInfo::plain("v", "varchar", "varchar(20)"),
        ];
        let same = map(&[(code::LONG, &[]), (code::VARCHAR, &[80, 0])], None);
        assert_eq!(disagreement(&described, &same), None);
        let widened = map(&[(code::LONGLONG, &[]), (code::VARCHAR, &[80, 0])], None);
        assert!(
            disagreement(&described, &widened)
                .unwrap()
                .contains("type code 8")
        );
        let fewer = map(&[(code::LONG, &[])], None);
        assert!(
            disagreement(&described, &fewer)
                .unwrap()
                .contains("1 columns")
        );
        let renamed = map(
            &[(code::LONG, &[]), (code::VARCHAR, &[80, 0])],
            Some(&["id", "w"]),
        );
        assert!(
            disagreement(&described, &renamed)
                .unwrap()
                .contains("w in the binlog")
        );
    }

    #[test]
    fn decimal_widths_and_fractional_digits_must_agree() {
        let mut price = ColumnInfo::plain("price", "decimal", "decimal(10,2)");
        (price.precision, price.scale) = (Some(10), Some(2));
        let mut at = ColumnInfo::plain("at", "datetime", "datetime(3)");
        at.fsp = 3;
        let described = vec![price, at];
        let same = map(
            &[(code::NEWDECIMAL, &[10, 2]), (code::DATETIME2, &[3])],
            None,
        );
        assert_eq!(disagreement(&described, &same), None);
        let rescaled = map(
            &[(code::NEWDECIMAL, &[12, 4]), (code::DATETIME2, &[3])],
            None,
        );
        assert!(
            disagreement(&described, &rescaled)
                .unwrap()
                .contains("binlog writes decimal(12,4)")
        );
        let finer = map(
            &[(code::NEWDECIMAL, &[10, 2]), (code::DATETIME2, &[6])],
            None,
        );
        assert!(
            disagreement(&described, &finer)
                .unwrap()
                .contains("the binlog writes 6")
        );
    }

    #[test]
    fn a_description_that_disagrees_with_the_binlog_is_not_used() {
        let full = map(
            &[(code::LONG, &[]), (code::STRING, &[code::ENUM, 1])],
            Some(&["id", "kind"]),
        );
        // Described after a DDL: the id is signed now and the enum has a third label.
        let hints = vec![
            ColumnInfo::plain("id", "int", "int(11)"),
            ColumnInfo::plain("kind", "enum", "enum('a','b''c','d')"),
        ];
        let built = columns_from_map(&full, &hints).unwrap();
        assert_eq!(
            built[0].column_type, "int unsigned",
            "the binlog's signedness"
        );
        assert_eq!(
            built[1].column_type, "enum('a','b''c')",
            "the binlog's labels"
        );
        let agreeing = vec![ColumnInfo::plain("id", "int", "int(10) unsigned")];
        let built = columns_from_map(&full, &agreeing).unwrap();
        assert_eq!(
            built[0].column_type, "int(10) unsigned",
            "the display width kept"
        );
    }

    #[test]
    fn a_character_column_off_the_default_charset_gets_its_own() {
        let mut full = map(
            &[
                (code::LONG, &[]),
                (code::VARCHAR, &[80, 0]),
                (code::VARCHAR, &[80, 0]),
            ],
            Some(&["id", "name", "legacy"]),
        );
        // utf8mb4 by default; the second character column is latin1 (collation 8).
        full.charset_exceptions = vec![(1, 8)];
        let built = columns_from_map(&full, &[]).unwrap();
        assert_eq!(built[1].charset.as_deref(), Some("utf8mb4"));
        assert_eq!(built[2].charset.as_deref(), Some("latin1"));
    }

    #[test]
    fn names_that_do_not_fit_the_column_count_build_nothing() {
        let torn = map(&[(code::LONG, &[])], Some(&["id", "extra"]));
        assert_eq!(columns_from_map(&torn, &[]), None);
    }

    #[test]
    fn full_metadata_builds_the_columns_keeping_what_the_described_ones_know() {
        let full = map(
            &[
                (code::LONG, &[]),
                (code::TINY, &[]),
                (code::STRING, &[code::ENUM, 1]),
                (code::NEWDECIMAL, &[10, 2]),
            ],
            Some(&["id", "flag", "kind", "price"]),
        );
        let hints = vec![ColumnInfo::plain("flag", "tinyint", "tinyint(1)")];
        let built = columns_from_map(&full, &hints).unwrap();
        assert_eq!(built[0].column_type, "int unsigned");
        assert!(built[0].primary);
        assert_eq!(
            built[1].column_type, "tinyint(1)",
            "the display width from the hint"
        );
        assert_eq!(built[2].column_type, "enum('a','b''c')");
        assert_eq!((built[3].precision, built[3].scale), (Some(10), Some(2)));
        assert_eq!(disagreement(&built, &full), None);
        assert_eq!(
            columns_from_map(&map(&[(code::LONG, &[])], None), &[]),
            None
        );
    }
}
