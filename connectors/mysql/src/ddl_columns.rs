//! What a DDL statement does to a table's columns: CREATE TABLE's column list, and ALTER
//! TABLE's ADD, DROP, MODIFY, CHANGE and RENAME COLUMN and its primary key changes, applied to
//! the columns the table had before; each column comes out as INFORMATION_SCHEMA describes it
//! (`DATA_TYPE`, `COLUMN_TYPE`, precision, scale, fractional digits, character set).
//!
//! Why: a connector that lags DDL on a server without full row metadata
//! (`binlog_row_metadata=FULL`) cannot learn from INFORMATION_SCHEMA the columns of rows written
//! between two DDL statements — it shows the table after the last one. The tracker applies
//! each statement it read to the schema it had, as Debezium does with its DDL parser.
//!
//! A small parser over [`crate::ddl`]'s tokens, not a SQL grammar. What it does not understand
//! and what could change columns (`CREATE TABLE … LIKE` or `… SELECT`, `CONVERT TO CHARACTER
//! SET`, system versioning, a type it does not know) gives `None`, and the caller falls back to
//! what it did without: INFORMATION_SCHEMA, or failing naming the fix. Clauses that leave the
//! columns as they are (indexes, foreign keys, checks, table options, partitions, defaults) are
//! skipped.

use crate::ddl::{Cursor, Token, tokens};
use crate::table::ColumnInfo;

/// What the server would fill in that a statement does not say.
#[derive(Debug, Clone, Copy)]
pub struct Defaults<'a> {
    /// The character set of a text column that names none: the table's default.
    pub charset: &'a str,
    /// MariaDB (JSON is a LONGTEXT there) rather than MySQL.
    pub mariadb: bool,
}

/// `columns` after `sql`, a statement that named their table; `None` when the statement does
/// something to columns this module does not follow (see the module's doc). Statements other
/// than CREATE TABLE and ALTER TABLE (`RENAME TABLE`, `TRUNCATE`, `CREATE INDEX`) leave the
/// columns as they are.
pub fn apply(
    columns: &[ColumnInfo],
    sql: &str,
    defaults: &Defaults<'_>,
) -> Option<Vec<ColumnInfo>> {
    let tokens = tokens(sql);
    let mut c = cursor(&tokens);
    if c.eat("CREATE") {
        c.skip_any(&["OR", "REPLACE", "TEMPORARY"]);
        if !c.eat("TABLE") {
            return Some(columns.to_vec());
        }
        c.skip_any(&["IF", "NOT", "EXISTS"]);
        c.table()?;
        create(&mut c, defaults)
    } else if c.eat("ALTER") {
        c.skip_any(&["ONLINE", "OFFLINE", "IGNORE"]);
        if !c.eat("TABLE") {
            return Some(columns.to_vec());
        }
        c.skip_any(&["IF", "EXISTS"]);
        c.table()?;
        // A new table default applies to the columns the same statement adds or redefines.
        let charset = sets_default_charset(sql);
        let defaults = Defaults {
            charset: charset.as_deref().unwrap_or(defaults.charset),
            ..*defaults
        };
        alter(&mut c, columns.to_vec(), &defaults)
    } else {
        Some(columns.to_vec())
    }
}

/// A cursor at the start of a statement's tokens (table names are not resolved here).
fn cursor(tokens: &[Token]) -> Cursor<'_> {
    Cursor {
        tokens,
        at: 0,
        default_db: "",
    }
}

/// What kind of CREATE TABLE `sql` is, if it is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// Not a CREATE TABLE.
    No,
    /// `CREATE [OR REPLACE] TABLE`: the table's columns are the statement's.
    Always,
    /// `CREATE TABLE IF NOT EXISTS`: the statement's columns only if the table did not exist
    /// (the binlog has it either way).
    IfMissing,
}

/// Whether (and how) `sql` creates a table.
pub fn create_kind(sql: &str) -> Create {
    let tokens = tokens(sql);
    let mut c = cursor(&tokens);
    if !c.eat("CREATE") {
        return Create::No;
    }
    c.skip_any(&["OR", "REPLACE", "TEMPORARY"]);
    if !c.eat("TABLE") {
        return Create::No;
    }
    if c.eat("IF") {
        Create::IfMissing
    } else {
        Create::Always
    }
}

/// The table default character set an ALTER TABLE sets (`[DEFAULT] CHARACTER SET x`,
/// `CHARSET x`, `COLLATE x` among its specs), if it sets one.
pub fn sets_default_charset(sql: &str) -> Option<String> {
    let tokens = tokens(sql);
    let mut c = cursor(&tokens);
    if !c.eat("ALTER") {
        return None;
    }
    c.skip_any(&["ONLINE", "OFFLINE", "IGNORE"]);
    if !c.eat("TABLE") {
        return None;
    }
    c.skip_any(&["IF", "EXISTS"]);
    c.table()?;
    let mut charset = None;
    while c.at < c.tokens.len() {
        // A clause about a column or an index has its own CHARACTER SET and COLLATE; any other
        // is table options, space-separated (`ENGINE=InnoDB DEFAULT CHARSET=latin1`).
        let of_columns = matches!(
            c.peek_word().as_deref(),
            Some("ADD" | "MODIFY" | "CHANGE" | "ALTER" | "DROP" | "RENAME" | "CONVERT")
        );
        let mut depth = 0usize;
        while let Some(token) = c.tokens.get(c.at) {
            match token {
                Token::Punct('(') => depth += 1,
                Token::Punct(')') => depth = depth.saturating_sub(1),
                Token::Punct(',') if depth == 0 => break,
                Token::Word(_) if depth == 0 && !of_columns => {
                    if c.eat("CHARSET") || (c.eat("CHARACTER") && c.eat("SET")) {
                        charset = option_value(&mut c).map(|cs| normal_charset(&cs));
                        continue;
                    }
                    if c.eat("COLLATE") {
                        charset =
                            option_value(&mut c).map(|collation| charset_of_collation(&collation));
                        continue;
                    }
                }
                _ => {}
            }
            c.at += 1;
        }
        c.eat_punct(',');
    }
    charset
}

/// `( create_definition, … ) [table_options]` of CREATE TABLE.
fn create(c: &mut Cursor<'_>, defaults: &Defaults<'_>) -> Option<Vec<ColumnInfo>> {
    if !c.eat_punct('(') {
        // `LIKE other` or `AS SELECT …`: columns from elsewhere.
        return None;
    }
    let mut columns: Vec<ColumnInfo> = Vec::new();
    let mut primary: Vec<String> = Vec::new();
    let mut uniques: Vec<Vec<String>> = Vec::new();
    let mut unsaid_charset: Vec<usize> = Vec::new();
    loop {
        if c.eat("CONSTRAINT") && !is_constraint_kind(c) {
            c.ident();
        }
        match c.peek_word().as_deref() {
            Some("PRIMARY") => {
                c.at += 1;
                c.eat("KEY");
                primary = key_columns(c)?;
                skip_clause(c);
            }
            Some("UNIQUE") => {
                uniques.push(key_columns(c)?);
                skip_clause(c);
            }
            Some("INDEX" | "KEY" | "FULLTEXT" | "SPATIAL" | "FOREIGN" | "CHECK") => skip_clause(c),
            // PERIOD FOR … (a column may be named `period`).
            Some("PERIOD") if word_after(c) == Some("FOR") => skip_clause(c),
            _ => {
                let name = c.ident()?;
                let definition = definition(c, name, defaults)?;
                if !definition.charset_said {
                    unsaid_charset.push(columns.len());
                }
                if definition.unique {
                    uniques.push(vec![definition.column.name.clone()]);
                }
                columns.push(definition.column);
            }
        }
        if c.eat_punct(',') {
            continue;
        }
        if c.eat_punct(')') {
            break;
        }
        return None;
    }
    // Table options: the default character set, and what would bring columns of its own.
    let mut charset = None;
    while c.at < c.tokens.len() {
        match c.peek_word().as_deref() {
            Some("SELECT" | "AS" | "LIKE" | "IGNORE" | "REPLACE" | "WITH") => return None,
            Some("CHARSET") => {
                c.at += 1;
                charset = option_value(c);
            }
            Some("CHARACTER") => {
                c.at += 1;
                c.eat("SET");
                charset = option_value(c);
            }
            Some("COLLATE") if charset.is_none() => {
                c.at += 1;
                charset = option_value(c).map(|collation| charset_of_collation(&collation));
            }
            Some("PARTITION") => break,
            _ => c.at += 1,
        }
    }
    let charset = charset.unwrap_or_else(|| defaults.charset.to_owned());
    for i in unsaid_charset {
        if columns[i].charset.is_some() {
            columns[i].charset = Some(charset.clone());
        }
    }
    if !primary.is_empty() {
        set_primary(&mut columns, &primary);
    }
    promote_unique(&mut columns, &uniques);
    Some(columns)
}

/// The columns an ALTER TABLE works on, each with its name before the statement (`None`: added
/// by it). MySQL resolves the columns CHANGE, MODIFY, RENAME COLUMN and DROP name against the
/// table as it was before the statement (`RENAME COLUMN a TO b, RENAME COLUMN b TO a` swaps
/// them), and FIRST/AFTER against the columns as they are becoming.
struct Altering {
    columns: Vec<(Option<String>, ColumnInfo)>,
    /// The primary key the statement sets (`DROP PRIMARY KEY`: none), applied at its end.
    primary: Option<Vec<String>>,
    /// Columns the statement defines with `PRIMARY KEY` (added to `primary`).
    defined_primary: Vec<String>,
    uniques: Vec<Vec<String>>,
}

impl Altering {
    /// Where the column named `name` before the statement is now.
    fn original(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|(original, _)| {
            original
                .as_deref()
                .is_some_and(|original| original.eq_ignore_ascii_case(name))
        })
    }

    /// Where the column named `name` now is.
    fn current(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|(_, column)| column.name.eq_ignore_ascii_case(name))
    }

    /// Where a column placed at `place` goes (`None`: AFTER a column that is not there).
    fn place(&self, place: &Place, otherwise: usize) -> Option<usize> {
        match place {
            Place::First => Some(0),
            Place::After(after) => Some(self.current(after)? + 1),
            Place::Same => Some(otherwise),
        }
    }
}

/// The specs of ALTER TABLE, applied to `columns` (see [`Altering`]); `None` also when one names
/// a column the table does not have (unless `IF EXISTS`), or leaves two columns one name.
fn alter(
    c: &mut Cursor<'_>,
    columns: Vec<ColumnInfo>,
    defaults: &Defaults<'_>,
) -> Option<Vec<ColumnInfo>> {
    if c.eat("WAIT") {
        c.at += 1;
    }
    c.eat("NOWAIT");
    let mut altering = Altering {
        columns: columns
            .into_iter()
            .map(|column| (Some(column.name.clone()), column))
            .collect(),
        primary: None,
        defined_primary: Vec::new(),
        uniques: Vec::new(),
    };
    while c.at < c.tokens.len() {
        let Some(word) = c.peek_word() else {
            next_spec(c);
            continue;
        };
        c.at += 1;
        match word.as_str() {
            "ADD" => add(c, &mut altering, defaults)?,
            "DROP" => {
                c.eat("COLUMN");
                match c.peek_word().as_deref() {
                    Some("PRIMARY") => altering.primary = Some(Vec::new()),
                    Some("INDEX" | "KEY") => {
                        c.at += 1;
                        c.skip_any(&["IF", "EXISTS"]);
                        // A unique key standing in for a missing primary key is named after its
                        // first column by default; whether this index was one (or a secondary
                        // index of a real primary key's column) is not known here.
                        let index = c.ident()?;
                        if index.eq_ignore_ascii_case("PRIMARY") {
                            altering.primary = Some(Vec::new());
                            next_spec(c);
                            continue;
                        }
                        let key_column = altering.columns.iter().any(|(_, column)| {
                            column.primary && column.name.eq_ignore_ascii_case(&index)
                        });
                        if key_column {
                            return None;
                        }
                    }
                    Some("FOREIGN" | "CONSTRAINT" | "CHECK" | "PARTITION" | "PERIOD") => {}
                    Some("SYSTEM") => return None,
                    _ => {
                        let if_exists = c.peek_word().as_deref() == Some("IF");
                        c.skip_any(&["IF", "EXISTS"]);
                        let name = c.ident()?;
                        match altering.original(&name) {
                            Some(at) => {
                                altering.columns.remove(at);
                            }
                            None if if_exists => {}
                            None => return None,
                        }
                    }
                }
            }
            "MODIFY" | "CHANGE" => {
                c.eat("COLUMN");
                let if_exists = c.peek_word().as_deref() == Some("IF");
                c.skip_any(&["IF", "EXISTS"]);
                let old = c.ident()?;
                let name = if word == "CHANGE" {
                    c.ident()?
                } else {
                    old.clone()
                };
                let definition = definition(c, name, defaults)?;
                match altering.original(&old) {
                    Some(at) => replace(&mut altering, at, definition)?,
                    None if if_exists => {}
                    None => return None,
                }
            }
            // RENAME COLUMN; RENAME TO, INDEX or KEY leave the columns.
            "RENAME" if c.eat("COLUMN") => {
                let old = c.ident()?;
                if !c.eat("TO") {
                    return None;
                }
                let new = c.ident()?;
                let at = altering.original(&old)?;
                altering.columns[at].1.name = new;
            }
            // Character set conversion can widen TEXT types; system versioning adds columns.
            "CONVERT" | "WITH" | "WITHOUT" => return None,
            // ALTER COLUMN (defaults, visibility), keys, table options, partitions.
            _ => {}
        }
        next_spec(c);
    }
    let Altering {
        columns,
        primary,
        defined_primary,
        uniques,
    } = altering;
    let mut columns: Vec<ColumnInfo> = columns.into_iter().map(|(_, column)| column).collect();
    let mut names: Vec<String> = columns
        .iter()
        .map(|column| column.name.to_lowercase())
        .collect();
    names.sort();
    names.dedup();
    if names.len() != columns.len() {
        return None;
    }
    if let Some(mut primary) = primary {
        primary.extend(defined_primary);
        set_primary(&mut columns, &primary);
    }
    promote_unique(&mut columns, &uniques);
    Some(columns)
}

/// ADD of ALTER TABLE: a column (`[COLUMN] [IF NOT EXISTS] definition [FIRST|AFTER x]`), a
/// parenthesised list of them, a primary key, or an index or constraint (skipped).
fn add(c: &mut Cursor<'_>, altering: &mut Altering, defaults: &Defaults<'_>) -> Option<()> {
    if c.eat("CONSTRAINT") && !is_constraint_kind(c) {
        c.ident();
    }
    match c.peek_word().as_deref() {
        Some("PRIMARY") => {
            c.at += 1;
            c.eat("KEY");
            altering.primary = Some(key_columns(c)?);
            return Some(());
        }
        Some("UNIQUE") => {
            altering.uniques.push(key_columns(c)?);
            return Some(());
        }
        Some("INDEX" | "KEY" | "FULLTEXT" | "SPATIAL" | "FOREIGN" | "CHECK" | "PARTITION") => {
            return Some(());
        }
        Some("PERIOD" | "SYSTEM") => return None,
        _ => {}
    }
    c.eat("COLUMN");
    let if_missing = c.peek_word().as_deref() == Some("IF");
    c.skip_any(&["IF", "NOT", "EXISTS"]);
    let mut add_one = |c: &mut Cursor<'_>| -> Option<()> {
        let name = c.ident()?;
        let definition = definition(c, name, defaults)?;
        if altering.current(&definition.column.name).is_some() {
            // IF NOT EXISTS on a column that exists does nothing; without it the server
            // refused the statement, and it is not in the binlog.
            return if_missing.then_some(());
        }
        if definition.unique {
            altering.uniques.push(vec![definition.column.name.clone()]);
        }
        if definition.column.primary {
            altering
                .defined_primary
                .push(definition.column.name.clone());
        }
        let at = altering.place(&definition.place, altering.columns.len())?;
        altering.columns.insert(at, (None, definition.column));
        Some(())
    };
    if c.eat_punct('(') {
        loop {
            add_one(c)?;
            if c.eat_punct(',') {
                continue;
            }
            c.eat_punct(')');
            return Some(());
        }
    }
    add_one(c)
}

/// A MODIFY or CHANGE of the column at `at`: its new definition, where it says.
fn replace(altering: &mut Altering, at: usize, definition: Definition) -> Option<()> {
    let (original, old) = altering.columns.remove(at);
    let mut column = definition.column;
    if column.primary {
        altering.defined_primary.push(column.name.clone());
    }
    // A key is an index's property, not the definition's: it stays.
    column.primary |= old.primary;
    if column.primary {
        column.nullable = false;
    }
    let to = altering.place(&definition.place, at)?;
    altering.columns.insert(to, (original, column));
    Some(())
}

/// Makes `primary` (names; none: no primary key) the primary key: its columns become NOT NULL.
fn set_primary(columns: &mut [ColumnInfo], primary: &[String]) {
    for column in columns.iter_mut() {
        column.primary = primary
            .iter()
            .any(|name| name.eq_ignore_ascii_case(&column.name));
        if column.primary {
            column.nullable = false;
        }
    }
}

/// A table without a primary key shows its first unique key whose columns are all NOT NULL as
/// its primary key (InnoDB uses it as one), in INFORMATION_SCHEMA and to Debezium alike.
/// `uniques`: the unique keys a statement added, in order (those the table had before are
/// not known here: an ALTER that drops the primary key of a table with such a key is the gap).
fn promote_unique(columns: &mut [ColumnInfo], uniques: &[Vec<String>]) {
    if columns.iter().any(|column| column.primary) {
        return;
    }
    let usable = |key: &&Vec<String>| {
        key.iter().all(|name| {
            columns
                .iter()
                .any(|column| column.name.eq_ignore_ascii_case(name) && !column.nullable)
        })
    };
    if let Some(key) = uniques.iter().find(usable) {
        let key = key.clone();
        set_primary(columns, &key);
    }
}

/// The word after the next token, upper-cased.
fn word_after(c: &Cursor<'_>) -> Option<&'static str> {
    match c.tokens.get(c.at + 1) {
        Some(Token::Word(w)) if w.eq_ignore_ascii_case("FOR") => Some("FOR"),
        _ => None,
    }
}

/// Whether the next word starts a constraint's kind (`CONSTRAINT` without a name).
fn is_constraint_kind(c: &Cursor<'_>) -> bool {
    matches!(
        c.peek_word().as_deref(),
        Some("PRIMARY" | "UNIQUE" | "FOREIGN" | "CHECK")
    )
}

/// `[USING …] (a, b(10) DESC, …)`: the key's column names.
fn key_columns(c: &mut Cursor<'_>) -> Option<Vec<String>> {
    while c.at < c.tokens.len() && !c.eat_punct('(') {
        c.at += 1;
    }
    let mut names = Vec::new();
    loop {
        names.push(c.ident()?);
        // A prefix length, ASC/DESC.
        let mut depth = 0usize;
        loop {
            match c.tokens.get(c.at)? {
                Token::Punct('(') => depth += 1,
                Token::Punct(')') if depth == 0 => {
                    c.at += 1;
                    return Some(names);
                }
                Token::Punct(')') => depth -= 1,
                Token::Punct(',') if depth == 0 => {
                    c.at += 1;
                    break;
                }
                _ => {}
            }
            c.at += 1;
        }
    }
}

/// Skips to the end of the current clause: the next `,` or `)` outside parentheses (not
/// consumed).
fn skip_clause(c: &mut Cursor<'_>) {
    let mut depth = 0usize;
    while let Some(token) = c.tokens.get(c.at) {
        match token {
            Token::Punct('(') => depth += 1,
            Token::Punct(')') if depth == 0 => return,
            Token::Punct(')') => depth -= 1,
            Token::Punct(',') if depth == 0 => return,
            _ => {}
        }
        c.at += 1;
    }
}

/// Moves past the rest of an ALTER TABLE spec and the `,` (or stray `)`) after it, so each turn
/// of the spec loop moves on.
fn next_spec(c: &mut Cursor<'_>) {
    skip_clause(c);
    if c.at < c.tokens.len() {
        c.at += 1;
    }
}

/// Skips a parenthesised group starting at the cursor.
fn skip_group(c: &mut Cursor<'_>) {
    let mut depth = 0usize;
    while let Some(token) = c.tokens.get(c.at) {
        c.at += 1;
        match token {
            Token::Punct('(') => depth += 1,
            Token::Punct(')') => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return;
                }
            }
            _ => {}
        }
    }
}

/// Skips one value: `'text'`, `-1`, `NULL`, `current_timestamp(6)`, `(expression)`.
fn skip_value(c: &mut Cursor<'_>) {
    if matches!(c.tokens.get(c.at), Some(Token::Punct('-' | '+'))) {
        c.at += 1;
    }
    match c.tokens.get(c.at) {
        Some(Token::Punct('(')) => skip_group(c),
        Some(_) => {
            c.at += 1;
            // A decimal point, or a function's arguments.
            if c.eat_punct('.') {
                c.at += 1;
            }
            if matches!(c.tokens.get(c.at), Some(Token::Punct('('))) {
                skip_group(c);
            }
        }
        None => {}
    }
}

/// A table option's value: `[=] name`.
fn option_value(c: &mut Cursor<'_>) -> Option<String> {
    c.eat_punct('=');
    name_or_text(c)
}

fn name_or_text(c: &mut Cursor<'_>) -> Option<String> {
    let value = match c.tokens.get(c.at)? {
        Token::Word(w) | Token::Quoted(w) | Token::Literal(w) => w.to_ascii_lowercase(),
        Token::Punct(_) => return None,
    };
    c.at += 1;
    Some(value)
}

/// The character set a collation belongs to (`latin1_swedish_ci` → `latin1`).
fn charset_of_collation(collation: &str) -> String {
    let charset = collation.split('_').next().unwrap_or(collation);
    normal_charset(charset)
}

/// MariaDB's name for a character set (`utf8` is `utf8mb3` there).
fn normal_charset(charset: &str) -> String {
    match charset {
        "utf8" => "utf8mb3".to_owned(),
        other => other.to_owned(),
    }
}

/// Where ADD, MODIFY or CHANGE puts its column.
#[derive(Debug, Default, PartialEq)]
enum Place {
    /// Appended (ADD) or where it was (MODIFY, CHANGE).
    #[default]
    Same,
    First,
    After(String),
}

/// A column definition as read.
#[derive(Debug)]
struct Definition {
    column: ColumnInfo,
    /// Whether it named its character set (or collation); if not, a CREATE TABLE's default
    /// character set, read after the columns, applies.
    charset_said: bool,
    /// `UNIQUE [KEY]` or `SERIAL`: a unique key of its own.
    unique: bool,
    place: Place,
}

/// A type argument: `(10,2)`, `('a','b')`.
enum Argument {
    Number(u32),
    Text(String),
}

/// `name type [attributes] [FIRST | AFTER x]`, the name already read.
fn definition(c: &mut Cursor<'_>, name: String, defaults: &Defaults<'_>) -> Option<Definition> {
    let mut word = c.peek_word()?;
    c.at += 1;
    let mut national = false;
    if word == "NATIONAL" {
        national = true;
        word = c.peek_word()?;
        c.at += 1;
    }
    let base = match word.as_str() {
        "DOUBLE" => {
            c.eat("PRECISION");
            "double"
        }
        "CHARACTER" | "CHAR" if c.eat("VARYING") => "varchar",
        "LONG" => {
            if c.eat("VARBINARY") {
                "mediumblob"
            } else {
                c.eat("VARCHAR");
                "mediumtext"
            }
        }
        "NCHAR" => {
            national = true;
            if c.eat("VARYING") { "varchar" } else { "char" }
        }
        "NVARCHAR" => {
            national = true;
            "varchar"
        }
        other => return typed(c, name, &other.to_ascii_lowercase(), national, defaults),
    };
    typed(c, name, base, national, defaults)
}

fn typed(
    c: &mut Cursor<'_>,
    name: String,
    base: &str,
    national: bool,
    defaults: &Defaults<'_>,
) -> Option<Definition> {
    let mut arguments = Vec::new();
    if c.eat_punct('(') {
        loop {
            match c.tokens.get(c.at)? {
                Token::Word(w) => arguments.push(Argument::Number(w.parse().ok()?)),
                Token::Literal(text) => arguments.push(Argument::Text(text.clone())),
                _ => return None,
            }
            c.at += 1;
            if c.eat_punct(',') {
                continue;
            }
            if c.eat_punct(')') {
                break;
            }
            return None;
        }
    }
    let number = |i: usize| match arguments.get(i) {
        Some(Argument::Number(n)) => Some(*n),
        _ => None,
    };
    let mut said = Said::default();
    attributes(c, &mut said);
    let unsigned = said.unsigned || said.zerofill;
    let sign = |column_type: String| {
        let mut column_type = column_type;
        if unsigned {
            column_type.push_str(" unsigned");
        }
        if said.zerofill {
            column_type.push_str(" zerofill");
        }
        column_type
    };
    let mut charset_said = said.charset.is_some() || said.collation.is_some() || national;
    let text_charset = || -> Option<String> {
        Some(if national {
            "utf8mb3".to_owned()
        } else if let Some(charset) = &said.charset {
            normal_charset(charset)
        } else if let Some(collation) = &said.collation {
            charset_of_collation(collation)
        } else {
            defaults.charset.to_owned()
        })
    };
    let mut column = ColumnInfo {
        name,
        data_type: String::new(),
        column_type: String::new(),
        nullable: said.nullable.unwrap_or(true),
        primary: said.primary,
        precision: None,
        scale: None,
        fsp: 0,
        charset: None,
    };
    let integer = |data_type: &str, widths: (u32, u32), precision: (u32, u32)| {
        let width = number(0).unwrap_or(if unsigned { widths.1 } else { widths.0 });
        (
            data_type.to_owned(),
            sign(format!("{data_type}({width})")),
            Some(if unsigned { precision.1 } else { precision.0 }),
            Some(0),
        )
    };
    let (data_type, column_type, precision, scale) = match base {
        "tinyint" | "int1" => integer("tinyint", (4, 3), (3, 3)),
        "smallint" | "int2" => integer("smallint", (6, 5), (5, 5)),
        "mediumint" | "int3" | "middleint" => integer("mediumint", (9, 8), (7, 7)),
        "int" | "integer" | "int4" => integer("int", (11, 10), (10, 10)),
        "bigint" | "int8" => integer("bigint", (20, 20), (19, 20)),
        "bool" | "boolean" => ("tinyint".into(), "tinyint(1)".into(), Some(3), Some(0)),
        "serial" => {
            column.nullable = false;
            said.unique = true;
            (
                "bigint".into(),
                "bigint(20) unsigned".into(),
                Some(20),
                Some(0),
            )
        }
        "bit" => {
            let bits = number(0).unwrap_or(1);
            ("bit".into(), format!("bit({bits})"), Some(bits), None)
        }
        "float" if number(0).is_some_and(|p| p > 24) && number(1).is_none() => {
            ("double".into(), sign("double".into()), Some(22), None)
        }
        "float" | "double" | "real" => {
            let data_type = if base == "float" { "float" } else { "double" };
            match (number(0), number(1)) {
                (Some(m), Some(d)) => (
                    data_type.into(),
                    sign(format!("{data_type}({m},{d})")),
                    Some(m),
                    Some(d),
                ),
                _ => (
                    data_type.into(),
                    sign(data_type.into()),
                    Some(if base == "float" { 12 } else { 22 }),
                    None,
                ),
            }
        }
        "decimal" | "dec" | "numeric" | "fixed" => {
            let (p, s) = (number(0).unwrap_or(10), number(1).unwrap_or(0));
            (
                "decimal".into(),
                sign(format!("decimal({p},{s})")),
                Some(p),
                Some(s),
            )
        }
        "char" | "character" | "varchar" | "binary" | "varbinary" => {
            let data_type = if base == "character" { "char" } else { base };
            let length = match number(0) {
                Some(length) => length,
                None if data_type == "char" || data_type == "binary" => 1,
                None => return None,
            };
            if data_type == "char" || data_type == "varchar" {
                column.charset = text_charset();
            }
            (
                data_type.into(),
                format!("{data_type}({length})"),
                None,
                None,
            )
        }
        "tinytext" | "text" | "mediumtext" | "longtext" | "tinyblob" | "blob" | "mediumblob"
        | "longblob" => {
            let text = base.ends_with("text");
            if text {
                column.charset = text_charset();
            }
            // TEXT(n) and BLOB(n) are the smallest type that holds n characters.
            let data_type = match number(0) {
                Some(length) if base == "text" || base == "blob" => {
                    let bytes = u64::from(length)
                        * if text {
                            bytes_per_character(column.charset.as_deref().unwrap_or_default())
                        } else {
                            1
                        };
                    let size = match bytes {
                        0..=255 => "tiny",
                        256..=65_535 => "",
                        65_536..=16_777_215 => "medium",
                        _ => "long",
                    };
                    format!("{size}{}", if text { "text" } else { "blob" })
                }
                _ => base.to_owned(),
            };
            (data_type.clone(), data_type, None, None)
        }
        "json" if defaults.mariadb => {
            // MariaDB's JSON is LONGTEXT in utf8mb4, whatever the table's default.
            column.charset = Some("utf8mb4".into());
            charset_said = true;
            ("longtext".into(), "longtext".into(), None, None)
        }
        "json" => ("json".into(), "json".into(), None, None),
        "enum" | "set" => {
            let labels: Vec<String> = arguments
                .iter()
                .map(|argument| match argument {
                    Argument::Text(label) => Some(format!("'{}'", label.replace('\'', "''"))),
                    Argument::Number(_) => None,
                })
                .collect::<Option<_>>()?;
            column.charset = text_charset();
            (
                base.into(),
                format!("{base}({})", labels.join(",")),
                None,
                None,
            )
        }
        "date" => ("date".into(), "date".into(), None, None),
        "time" | "datetime" | "timestamp" => {
            column.fsp = number(0).unwrap_or(0);
            let column_type = match number(0) {
                Some(fsp) if fsp > 0 => format!("{base}({fsp})"),
                _ => base.to_owned(),
            };
            (base.into(), column_type, None, None)
        }
        "year" => ("year".into(), "year(4)".into(), None, None),
        "uuid" | "inet6" | "inet4" | "point" | "linestring" | "polygon" | "multipoint"
        | "multilinestring" | "multipolygon" | "geometrycollection" | "geometry" => {
            (base.into(), base.into(), None, None)
        }
        _ => return None,
    };
    column.data_type = data_type;
    column.column_type = column_type;
    column.precision = precision;
    column.scale = scale;
    if column.primary {
        column.nullable = false;
    }
    Some(Definition {
        column,
        charset_said,
        unique: said.unique,
        place: said.place,
    })
}

/// The most bytes one character of `charset` takes.
fn bytes_per_character(charset: &str) -> u64 {
    match charset {
        "utf8mb4" | "utf16" | "utf16le" | "utf32" => 4,
        "utf8mb3" | "utf8" => 3,
        "ucs2" | "big5" | "gbk" | "sjis" | "cp932" | "euckr" | "gb2312" => 2,
        "ujis" | "eucjpms" => 3,
        _ => 1,
    }
}

/// What a column definition's attributes said.
#[derive(Default)]
struct Said {
    unsigned: bool,
    zerofill: bool,
    charset: Option<String>,
    collation: Option<String>,
    nullable: Option<bool>,
    primary: bool,
    unique: bool,
    place: Place,
}

/// Reads a column definition's attributes up to the `,` or `)` that ends it.
fn attributes(c: &mut Cursor<'_>, said: &mut Said) {
    while let Some(token) = c.tokens.get(c.at) {
        match token {
            Token::Punct(',' | ')') => return,
            Token::Punct('(') => skip_group(c),
            Token::Word(word) => {
                let word = word.to_ascii_uppercase();
                c.at += 1;
                match word.as_str() {
                    "UNSIGNED" => said.unsigned = true,
                    "ZEROFILL" => said.zerofill = true,
                    "CHARSET" => said.charset = name_or_text(c),
                    "CHARACTER" | "CHAR" if c.eat("SET") => said.charset = name_or_text(c),
                    "ASCII" => said.charset = Some("latin1".into()),
                    "UNICODE" => said.charset = Some("ucs2".into()),
                    "COLLATE" => said.collation = name_or_text(c),
                    "NOT" if c.eat("NULL") => said.nullable = Some(false),
                    "NULL" => said.nullable = Some(true),
                    "DEFAULT" | "COMMENT" => skip_value(c),
                    "ON" => {
                        c.eat("UPDATE");
                        skip_value(c);
                    }
                    "PRIMARY" => {
                        c.eat("KEY");
                        said.primary = true;
                    }
                    "KEY" => said.primary = true,
                    "UNIQUE" => {
                        c.eat("KEY");
                        said.unique = true;
                    }
                    // A foreign key's clauses (`ON DELETE SET NULL`) say nothing of the column.
                    "REFERENCES" => skip_clause(c),
                    "FIRST" => said.place = Place::First,
                    "AFTER" => {
                        if let Some(after) = c.ident() {
                            said.place = Place::After(after);
                        }
                    }
                    // GENERATED ALWAYS AS (…), CHECK (…), REFERENCES t (…), INVISIBLE, … :
                    // nothing the columns' decoding needs; their groups are skipped above.
                    _ => {}
                }
            }
            _ => c.at += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(name: &str) -> ColumnInfo {
        ColumnInfo {
            precision: Some(10),
            scale: Some(0),
            ..ColumnInfo::plain(name, "int", "int(11)")
        }
    }

    fn names(columns: &[ColumnInfo]) -> Vec<&str> {
        columns.iter().map(|c| c.name.as_str()).collect()
    }

    const UTF8: Defaults<'static> = Defaults {
        charset: "utf8mb4",
        mariadb: true,
    };

    /// The fuzz test found these spinning forever (a stray `)` in an ALTER stopped the spec
    /// loop from moving on); each must end.
    #[test]
    fn stray_punctuation_ends() {
        for sql in [
            "ALTER TABLE t ADD b int )",
            "ALTER TABLE t ) ) ,",
            "ALTER TABLE t DROP a ) , ADD c int",
        ] {
            let _ = apply(&[int("a")], sql, &UTF8);
        }
    }

    /// Positions, renames and what other statements leave alone (the server's view of each
    /// type is checked against a real MariaDB by the `mysql_cdc` test
    /// `columns_derived_from_ddl_equal_information_schema_after_each_statement`).
    #[test]
    fn alter_moves_renames_and_drops_columns_in_order() {
        let before = [int("a"), int("b")];
        let after = apply(
            &before,
            "ALTER TABLE db.t ADD COLUMN c int FIRST, ADD d int AFTER a, DROP b, RENAME COLUMN a TO e",
            &UTF8,
        )
        .unwrap();
        assert_eq!(names(&after), ["c", "e", "d"]);
        for unchanged in [
            "RENAME TABLE t TO u",
            "TRUNCATE t",
            "CREATE INDEX i ON t (a)",
        ] {
            assert_eq!(apply(&before, unchanged, &UTF8).unwrap(), before);
        }
        assert_eq!(
            create_kind("create or replace table t (a int)"),
            Create::Always
        );
        assert_eq!(
            create_kind("create table if not exists t (a int)"),
            Create::IfMissing
        );
        assert_eq!(create_kind("alter table t add a int"), Create::No);
    }

    /// MySQL resolves the columns an ALTER names against the table before it: two renames
    /// swap; a column the table lacks, or two columns left with one name, is not followed.
    #[test]
    fn alter_names_columns_as_they_were_before_it() {
        let before = [int("a"), ColumnInfo::plain("b", "varchar", "varchar(3)")];
        let swapped = apply(
            &before,
            "ALTER TABLE t RENAME COLUMN a TO b, RENAME COLUMN b TO a",
            &UTF8,
        )
        .unwrap();
        assert_eq!(names(&swapped), ["b", "a"]);
        assert_eq!(swapped[0].data_type, "int");
        let changed = apply(
            &before,
            "ALTER TABLE t CHANGE a b int, CHANGE b a text",
            &UTF8,
        )
        .unwrap();
        assert_eq!(
            (names(&changed), changed[1].data_type.as_str()),
            (vec!["b", "a"], "text")
        );
        for unknown in [
            "ALTER TABLE t DROP COLUMN z",
            "ALTER TABLE t MODIFY z int",
            "ALTER TABLE t ADD c int AFTER z",
            "ALTER TABLE t RENAME COLUMN a TO b",
            "ALTER TABLE t DROP INDEX a",
        ] {
            let before = [
                ColumnInfo {
                    primary: true,
                    ..int("a")
                },
                int("b"),
            ];
            assert_eq!(apply(&before, unknown, &UTF8), None, "{unknown}");
        }
        assert_eq!(
            names(&apply(&before, "ALTER TABLE t DROP COLUMN IF EXISTS z", &UTF8).unwrap()),
            ["a", "b"]
        );
        assert_eq!(
            sets_default_charset("ALTER TABLE t ADD x text, DEFAULT CHARSET = latin1"),
            Some("latin1".to_owned())
        );
        assert_eq!(
            sets_default_charset("ALTER TABLE t ADD x text CHARACTER SET latin1"),
            None
        );
        assert_eq!(
            sets_default_charset(
                "ALTER TABLE t ENGINE=InnoDB DEFAULT CHARSET=latin1 COLLATE latin1_bin"
            ),
            Some("latin1".to_owned())
        );
        // A key defined on a column in the statement that drops the old one is the new key.
        for sql in [
            "ALTER TABLE t DROP PRIMARY KEY, MODIFY b int PRIMARY KEY",
            "ALTER TABLE t DROP INDEX `PRIMARY`, ADD c int PRIMARY KEY",
        ] {
            let before = [
                ColumnInfo {
                    primary: true,
                    ..int("a")
                },
                int("b"),
            ];
            let after = apply(&before, sql, &UTF8).unwrap();
            let keys: Vec<&str> = after
                .iter()
                .filter(|c| c.primary)
                .map(|c| c.name.as_str())
                .collect();
            assert_eq!(keys.len(), 1, "{sql}: {keys:?}");
            assert_ne!(keys[0], "a", "{sql}");
        }
    }
}
