//! Which schema change events a streamed DDL statement becomes, as Debezium's DDL parser
//! signals them: one per table it creates, alters or drops, one per pair it renames and one per
//! database it creates or drops, each with the text Debezium gives it, grouped by database.
//!
//! Debezium (`BinlogDatabaseSchema.parseDdl`, v3.6): `DROP TABLE a, b` is two events whose
//! statements are the text before the first table followed by each table's quoted name;
//! `RENAME TABLE a TO b, c TO d` is one `ALTER` of each new name, stated as `RENAME TABLE `
//! and that pair; `ALTER TABLE a RENAME TO b` one `ALTER` of `b`; `CREATE INDEX` an `ALTER`.
//! An event's database is its table's, not the session's; its `source.table` names every
//! table of the run of events on that database, in the order of Java's `HashSet` of their ids.

use crate::ddl::{Effect, TableName};

/// What an event does to its table, as Debezium's table change `type` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Create,
    Alter,
    Drop,
    /// A statement on the database itself: no table change.
    Database,
}

impl ChangeKind {
    /// Debezium's table change `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Create => "CREATE",
            ChangeKind::Alter => "ALTER",
            ChangeKind::Drop => "DROP",
            ChangeKind::Database => "DATABASE",
        }
    }
}

/// One schema change event of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DdlEvent {
    /// Its `databaseName` and key.
    pub db: String,
    /// The table it changes (`None`: the database itself).
    pub table: Option<String>,
    pub kind: ChangeKind,
    /// Its `ddl`.
    pub ddl: String,
    /// Its `source.table`: the tables of its run of events on `db`, comma-joined.
    pub source_tables: Option<String>,
}

/// The events of `sql`, run in database `default_db`, whose effects the tokenizer found, in
/// statement order.
pub fn ddl_events(sql: &str, default_db: &str, effects: &[Effect]) -> Vec<DdlEvent> {
    let words = leading_words(sql);
    let first = words.first().map(String::as_str).unwrap_or_default();
    let creates_table = first == "CREATE"
        && words
            .iter()
            .skip(1)
            .map(String::as_str)
            .find(|w| !matches!(*w, "OR" | "REPLACE" | "TEMPORARY"))
            == Some("TABLE");
    let event = |t: &TableName, kind, ddl: String| DdlEvent {
        db: t.db.clone(),
        table: Some(t.table.clone()),
        kind,
        ddl,
        source_tables: None,
    };
    let mut events = Vec::new();
    match first {
        // Debezium's parser signals nothing for it: its fallback is an event of the session's
        // database, whose source names an empty table.
        "ALTER"
            if matches!(
                words.get(1).map(String::as_str),
                Some("DATABASE" | "SCHEMA")
            ) =>
        {
            events.push(DdlEvent {
                db: default_db.to_owned(),
                table: None,
                kind: ChangeKind::Database,
                ddl: sql.to_owned(),
                source_tables: Some(String::new()),
            });
        }
        "ALTER" => {
            // A rename within ALTER TABLE alters the table under its new name only.
            let renamed = effects.iter().find_map(|e| match e {
                Effect::Renamed { to, .. } => Some(to),
                _ => None,
            });
            let altered = renamed.or_else(|| {
                effects.iter().find_map(|e| match e {
                    Effect::Changed(t) => Some(t),
                    _ => None,
                })
            });
            events.extend(altered.map(|t| event(t, ChangeKind::Alter, sql.to_owned())));
        }
        "RENAME" => {
            let pairs = rename_pairs(sql);
            let renames: Vec<&TableName> = effects
                .iter()
                .filter_map(|e| match e {
                    Effect::Renamed { to, .. } => Some(to),
                    _ => None,
                })
                .collect();
            for (index, to) in renames.iter().enumerate() {
                // The pair's own text; the whole statement should the split not match.
                let ddl = match pairs.get(index) {
                    Some(pair) if pairs.len() == renames.len() => format!("RENAME TABLE {pair}"),
                    _ => sql.to_owned(),
                };
                events.push(event(to, ChangeKind::Alter, ddl));
            }
        }
        _ => {
            // Debezium's text of each dropped table: the statement up to its first table.
            let drop_prefix = &sql[..after_keywords(
                sql,
                &["DROP", "TEMPORARY", "TABLE", "TABLES", "IF", "EXISTS"],
            )];
            for effect in effects {
                match effect {
                    Effect::Changed(t) => {
                        let kind = if creates_table {
                            ChangeKind::Create
                        } else {
                            ChangeKind::Alter
                        };
                        events.push(event(t, kind, sql.to_owned()));
                    }
                    Effect::Dropped(t) => {
                        let ddl = format!(
                            "{drop_prefix}{}.{}",
                            crate::sql::quote_ident(&t.db),
                            crate::sql::quote_ident(&t.table)
                        );
                        events.push(event(t, ChangeKind::Drop, ddl));
                    }
                    Effect::CreatedDatabase(db) | Effect::DroppedDatabase(db) => {
                        events.push(DdlEvent {
                            db: db.clone(),
                            table: None,
                            kind: ChangeKind::Database,
                            ddl: sql.to_owned(),
                            source_tables: None,
                        })
                    }
                    Effect::Renamed { .. } | Effect::Truncated(_) => {}
                }
            }
        }
    }
    // Runs of events on one database share their `source.table`.
    let mut start = 0;
    while start < events.len() {
        let end = start
            + events[start..]
                .iter()
                .take_while(|e| e.db == events[start].db)
                .count();
        let tables: Vec<&str> = events[start..end]
            .iter()
            .filter_map(|e| e.table.as_deref())
            .collect();
        if !tables.is_empty() {
            let joined = java_hash_set_order(&events[start].db, &tables).join(",");
            for event in &mut events[start..end] {
                event.source_tables = Some(joined.clone());
            }
        }
        start = end;
    }
    events
}

/// The statement's leading bare words, upper-cased (up to the first thing that is not one:
/// a quoted name, a dot, a parenthesis).
fn leading_words(sql: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut at = 0;
    while let Some((word, end)) = bare_word(sql, at) {
        words.push(word.to_ascii_uppercase());
        at = end;
    }
    words
}

/// The bare word starting at the first non-blank character from `at`, and where it ends;
/// `None` when something else starts there or the word runs into a `.`, `,` or `(`.
fn bare_word(sql: &str, at: usize) -> Option<(&str, usize)> {
    let start = at + sql[at..].find(|c: char| !c.is_whitespace())?;
    let rest = &sql[start..];
    if !rest.starts_with(|c: char| c.is_alphabetic() || c == '_') {
        return None;
    }
    let len = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .unwrap_or(rest.len());
    if rest[len..].starts_with(['.', ',', '(', '`']) {
        return None;
    }
    Some((&rest[..len], start + len))
}

/// Where the statement's first token that is not one of `keywords` starts (the text before
/// it is the keywords and the blanks after them).
fn after_keywords(sql: &str, keywords: &[&str]) -> usize {
    let mut at = 0;
    while let Some((word, end)) = bare_word(sql, at) {
        if !keywords.iter().any(|k| word.eq_ignore_ascii_case(k)) {
            break;
        }
        at = end;
    }
    at + sql[at..]
        .find(|c: char| !c.is_whitespace())
        .unwrap_or(sql.len() - at)
}

/// The `a TO b` pairs of a `RENAME TABLE` statement, as written.
fn rename_pairs(sql: &str) -> Vec<String> {
    split_pairs(&sql[after_keywords(sql, &["RENAME", "TABLE", "TABLES"])..])
}

/// `text` split at the commas outside quotes, each part trimmed.
fn split_pairs(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                current.push(c);
            }
            (Some(_), c) => current.push(c),
            (None, '`' | '"' | '\'') => {
                quote = Some(c);
                current.push(c);
            }
            (None, ',') => parts.push(std::mem::take(&mut current).trim().to_owned()),
            (None, c) => current.push(c),
        }
    }
    let last = current.trim().trim_end_matches(';').trim();
    if !last.is_empty() {
        parts.push(last.to_owned());
    }
    parts
}

/// `tables` of database `db`, once each, in the iteration order of a Java `HashSet` of their
/// Debezium table ids (`db.table`) built from them in this order: by hash bucket, then by
/// insertion.
fn java_hash_set_order<'a>(db: &str, tables: &[&'a str]) -> Vec<&'a str> {
    let mut unique: Vec<&str> = Vec::new();
    for table in tables {
        if !unique.contains(table) {
            unique.push(table);
        }
    }
    // `new HashSet<>(collection)`: capacity max(n / 0.75 + 1, 16), rounded up to a power of two.
    let wanted = ((unique.len() as f32 / 0.75) as usize + 1).max(16);
    let capacity = wanted.next_power_of_two();
    let bucket = |table: &str| {
        let hash = java_string_hash(&format!("{db}.{table}"));
        let spread = hash ^ ((hash as u32) >> 16) as i32;
        (spread as u32 as usize) & (capacity - 1)
    };
    let mut ordered: Vec<(usize, usize, &str)> = unique
        .iter()
        .enumerate()
        .map(|(index, table)| (bucket(table), index, *table))
        .collect();
    ordered.sort();
    ordered.into_iter().map(|(_, _, table)| table).collect()
}

/// Java's `String.hashCode`: over UTF-16 code units, `31 * h + c`, wrapping.
fn java_string_hash(text: &str) -> i32 {
    text.encode_utf16()
        .fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(unit as i32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ddl::effects;

    /// An event as (db, table, kind, ddl, source.table).
    type Row = (String, Option<String>, &'static str, String, Option<String>);

    fn events(sql: &str) -> Vec<Row> {
        ddl_events(sql, "inventory", &effects(sql, "inventory"))
            .into_iter()
            .map(|e| (e.db, e.table, e.kind.as_str(), e.ddl, e.source_tables))
            .collect()
    }

    fn some(text: &str) -> Option<String> {
        Some(text.to_owned())
    }

    #[test]
    fn a_drop_of_two_tables_is_two_events_each_naming_its_table() {
        assert_eq!(
            events("drop table if exists a, other.b"),
            [
                (
                    "inventory".into(),
                    some("a"),
                    "DROP",
                    "drop table if exists `inventory`.`a`".into(),
                    some("a")
                ),
                (
                    "other".into(),
                    some("b"),
                    "DROP",
                    "drop table if exists `other`.`b`".into(),
                    some("b")
                ),
            ]
        );
        // One database: both events name both tables, in Java's HashSet order.
        let both = events("DROP TABLE a, b");
        assert_eq!(both[0].3, "DROP TABLE `inventory`.`a`");
        assert_eq!(both[1].3, "DROP TABLE `inventory`.`b`");
        assert_eq!(both[0].4, some("a,b"));
        assert_eq!(both[1].4, some("a,b"));
    }

    #[test]
    fn renames_alter_the_new_names() {
        // ("inventory.z" is in hash bucket 7, "inventory.ledger" in 13.)
        assert_eq!(
            events("RENAME TABLE inventory.accounts TO inventory.ledger, `x y` TO z"),
            [
                (
                    "inventory".into(),
                    some("ledger"),
                    "ALTER",
                    "RENAME TABLE inventory.accounts TO inventory.ledger".into(),
                    some("z,ledger")
                ),
                (
                    "inventory".into(),
                    some("z"),
                    "ALTER",
                    "RENAME TABLE `x y` TO z".into(),
                    some("z,ledger")
                ),
            ]
        );
        assert_eq!(
            events("alter table accounts rename to ledger"),
            [(
                "inventory".into(),
                some("ledger"),
                "ALTER",
                "alter table accounts rename to ledger".into(),
                some("ledger")
            )]
        );
    }

    #[test]
    fn creates_databases_and_indexes_are_what_debezium_calls_them() {
        assert_eq!(events("create table other.t (x int)")[0].2, "CREATE");
        assert_eq!(events("create or replace table t (x int)")[0].2, "CREATE");
        assert_eq!(events("create index i on t (x)")[0].2, "ALTER");
        assert_eq!(
            events("drop database shop"),
            [(
                "shop".into(),
                None,
                "DATABASE",
                "drop database shop".into(),
                None
            )]
        );
        assert!(events("grant select on *.* to u").is_empty());
        assert_eq!(
            events("ALTER DATABASE shop CHARACTER SET utf8mb4"),
            [(
                "inventory".into(),
                None,
                "DATABASE",
                "ALTER DATABASE shop CHARACTER SET utf8mb4".into(),
                some("")
            )]
        );
    }

    #[test]
    fn the_hash_set_order_is_java_s() {
        // Java: "inventory.a" lands in bucket 0 of 16, "inventory.b" in bucket 15.
        assert_eq!(java_hash_set_order("inventory", &["b", "a"]), ["a", "b"]);
        // "inventory.accounts" in bucket 2, "inventory.ledger" in 13.
        assert_eq!(
            java_hash_set_order("inventory", &["ledger", "accounts", "ledger"]),
            ["accounts", "ledger"]
        );
        assert_eq!(java_string_hash("hello"), 99162322);
        assert_eq!(java_string_hash(""), 0);
    }
}
