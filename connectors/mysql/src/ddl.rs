//! Which tables a DDL statement from the binlog touches: a small tokenizer for CREATE, ALTER,
//! DROP, RENAME and TRUNCATE and their table names — not a SQL grammar. The tracked schema of
//! a table it names is read again before the table's next rows are decoded (see `schemas`);
//! what the statement does to the table's columns is [`crate::ddl_columns`]' job.

/// A table named in a statement; `db` is the statement's default database when unqualified.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableName {
    pub db: String,
    pub table: String,
}

/// What a statement does to tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Created or altered (columns, keys or options may differ now).
    Changed(TableName),
    Dropped(TableName),
    Renamed {
        from: TableName,
        to: TableName,
    },
    Truncated(TableName),
    /// `DROP DATABASE`: every table in it is gone.
    DroppedDatabase(String),
    /// `CREATE DATABASE`: no table yet.
    CreatedDatabase(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    /// A bare word (keywords included), as written.
    Word(String),
    /// A `quoted` identifier.
    Quoted(String),
    Punct(char),
    /// A string literal, its content unescaped (never a table name).
    Literal(String),
}

pub(crate) fn tokens(sql: &str) -> Vec<Token> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '#' || (c == '-' && chars.get(i + 1) == Some(&'-')) {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            // Executable comments (`/*!50100 … */`, `/*M! … */`) hold options, never names.
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
        } else if c == '`' {
            let mut name = String::new();
            i += 1;
            while i < chars.len() {
                if chars[i] == '`' {
                    if chars.get(i + 1) == Some(&'`') {
                        name.push('`');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                name.push(chars[i]);
                i += 1;
            }
            out.push(Token::Quoted(name));
        } else if c == '\'' || c == '"' {
            let mut text = String::new();
            i += 1;
            while i < chars.len() {
                if chars[i] == '\\' {
                    text.extend(chars.get(i + 1));
                    i += 2;
                    continue;
                }
                if chars[i] == c {
                    if chars.get(i + 1) == Some(&c) {
                        text.push(c);
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                text.push(chars[i]);
                i += 1;
            }
            out.push(Token::Literal(text));
        } else if c.is_alphanumeric() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            out.push(Token::Word(chars[start..i].iter().collect()));
        } else {
            out.push(Token::Punct(c));
            i += 1;
        }
    }
    out
}

/// A cursor over a statement's tokens.
pub(crate) struct Cursor<'a> {
    pub(crate) tokens: &'a [Token],
    pub(crate) at: usize,
    pub(crate) default_db: &'a str,
}

impl Cursor<'_> {
    /// The next token, if it is a bare word: upper-cased.
    pub(crate) fn peek_word(&self) -> Option<String> {
        match self.tokens.get(self.at) {
            Some(Token::Word(w)) => Some(w.to_ascii_uppercase()),
            _ => None,
        }
    }

    /// Consumes the keyword `word` if it comes next.
    pub(crate) fn eat(&mut self, word: &str) -> bool {
        if self.peek_word().as_deref() == Some(word) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// Consumes keywords while they are among `words`.
    pub(crate) fn skip_any(&mut self, words: &[&str]) {
        while self
            .peek_word()
            .is_some_and(|w| words.contains(&w.as_str()))
        {
            self.at += 1;
        }
    }

    pub(crate) fn eat_punct(&mut self, c: char) -> bool {
        if self.tokens.get(self.at) == Some(&Token::Punct(c)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    pub(crate) fn ident(&mut self) -> Option<String> {
        let name = match self.tokens.get(self.at)? {
            Token::Word(w) => w.clone(),
            Token::Quoted(q) => q.clone(),
            _ => return None,
        };
        self.at += 1;
        Some(name)
    }

    /// `[db.]table`.
    pub(crate) fn table(&mut self) -> Option<TableName> {
        let first = self.ident()?;
        if self.eat_punct('.') {
            let table = self.ident()?;
            Some(TableName { db: first, table })
        } else {
            Some(TableName {
                db: self.default_db.to_owned(),
                table: first,
            })
        }
    }
}

/// What `sql` (run with default database `default_db`) does to tables and databases; empty
/// for statements that touch none (`GRANT`, `CREATE VIEW`, …).
pub fn effects(sql: &str, default_db: &str) -> Vec<Effect> {
    let tokens = tokens(sql);
    let mut c = Cursor {
        tokens: &tokens,
        at: 0,
        default_db,
    };
    let mut out = Vec::new();
    if c.eat("CREATE") {
        c.skip_any(&[
            "OR",
            "REPLACE",
            "TEMPORARY",
            "UNIQUE",
            "FULLTEXT",
            "SPATIAL",
        ]);
        if c.eat("TABLE") {
            c.skip_any(&["IF", "NOT", "EXISTS"]);
            out.extend(c.table().map(Effect::Changed));
        } else if c.eat("INDEX") {
            out.extend(index_target(&mut c).map(Effect::Changed));
        } else if c.eat("DATABASE") || c.eat("SCHEMA") {
            c.skip_any(&["IF", "NOT", "EXISTS"]);
            out.extend(c.ident().map(Effect::CreatedDatabase));
        }
    } else if c.eat("ALTER") {
        c.skip_any(&["ONLINE", "OFFLINE", "IGNORE"]);
        if c.eat("TABLE") {
            c.skip_any(&["IF", "EXISTS"]);
            if let Some(table) = c.table() {
                out.push(Effect::Changed(table.clone()));
                if let Some(to) = alter_rename(&mut c) {
                    out.push(Effect::Renamed {
                        from: table,
                        to: to.clone(),
                    });
                    out.push(Effect::Changed(to));
                }
            }
        }
    } else if c.eat("DROP") {
        c.skip_any(&["TEMPORARY"]);
        if c.eat("TABLE") || c.eat("TABLES") {
            c.skip_any(&["IF", "EXISTS"]);
            while let Some(table) = c.table() {
                out.push(Effect::Dropped(table));
                if !c.eat_punct(',') {
                    break;
                }
            }
        } else if c.eat("INDEX") {
            out.extend(index_target(&mut c).map(Effect::Changed));
        } else if c.eat("DATABASE") || c.eat("SCHEMA") {
            c.skip_any(&["IF", "EXISTS"]);
            out.extend(c.ident().map(Effect::DroppedDatabase));
        }
    } else if c.eat("RENAME") {
        if c.eat("TABLE") || c.eat("TABLES") {
            while let Some(from) = c.table() {
                c.skip_any(&["WAIT", "NOWAIT"]);
                if !c.eat("TO") {
                    break;
                }
                let Some(to) = c.table() else { break };
                out.push(Effect::Renamed { from, to });
                if !c.eat_punct(',') {
                    break;
                }
            }
        }
    } else if c.eat("TRUNCATE") {
        c.eat("TABLE");
        out.extend(c.table().map(Effect::Truncated));
    }
    out
}

/// `[IF NOT EXISTS] name [USING …] ON table`: the table of CREATE/DROP INDEX.
fn index_target(c: &mut Cursor<'_>) -> Option<TableName> {
    while c.at < c.tokens.len() {
        if c.eat("ON") {
            return c.table();
        }
        c.at += 1;
    }
    None
}

/// The new name of `ALTER TABLE … RENAME [TO|AS] new` (outside parentheses, and not
/// `RENAME COLUMN|INDEX|KEY`).
fn alter_rename(c: &mut Cursor<'_>) -> Option<TableName> {
    let mut depth = 0usize;
    while c.at < c.tokens.len() {
        match &c.tokens[c.at] {
            Token::Punct('(') => depth += 1,
            Token::Punct(')') => depth = depth.saturating_sub(1),
            Token::Word(w) if depth == 0 && w.eq_ignore_ascii_case("RENAME") => {
                c.at += 1;
                if matches!(c.peek_word().as_deref(), Some("COLUMN" | "INDEX" | "KEY")) {
                    continue;
                }
                c.skip_any(&["TO", "AS"]);
                return c.table();
            }
            _ => {}
        }
        c.at += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(db: &str, table: &str) -> TableName {
        TableName {
            db: db.into(),
            table: table.into(),
        }
    }

    #[test]
    fn table_statements_name_their_tables() {
        use Effect::*;
        let cases: Vec<(&str, Vec<Effect>)> = vec![
            (
                "CREATE TABLE a (id int primary key)",
                vec![Changed(t("app", "a"))],
            ),
            (
                "create table if not exists `other`.`we``ird` (x int)",
                vec![Changed(t("other", "we`ird"))],
            ),
            (
                "CREATE OR REPLACE TABLE b LIKE a",
                vec![Changed(t("app", "b"))],
            ),
            (
                "/* by hand */ ALTER ONLINE IGNORE TABLE a ADD COLUMN c varchar(20) DEFAULT 'x RENAME y'",
                vec![Changed(t("app", "a"))],
            ),
            (
                "ALTER TABLE a RENAME COLUMN c TO d, RENAME INDEX i TO j",
                vec![Changed(t("app", "a"))],
            ),
            (
                "alter table a add column z int, rename to shop.b",
                vec![
                    Changed(t("app", "a")),
                    Renamed {
                        from: t("app", "a"),
                        to: t("shop", "b"),
                    },
                    Changed(t("shop", "b")),
                ],
            ),
            (
                "DROP TABLE IF EXISTS a, `x`.b /* generated by server */",
                vec![Dropped(t("app", "a")), Dropped(t("x", "b"))],
            ),
            (
                "RENAME TABLE a TO a_old, a_new TO a",
                vec![
                    Renamed {
                        from: t("app", "a"),
                        to: t("app", "a_old"),
                    },
                    Renamed {
                        from: t("app", "a_new"),
                        to: t("app", "a"),
                    },
                ],
            ),
            ("TRUNCATE TABLE a", vec![Truncated(t("app", "a"))]),
            ("truncate x.a", vec![Truncated(t("x", "a"))]),
            (
                "CREATE UNIQUE INDEX i ON a (c)",
                vec![Changed(t("app", "a"))],
            ),
            ("DROP INDEX i ON x.a", vec![Changed(t("x", "a"))]),
            (
                "DROP DATABASE IF EXISTS shop",
                vec![DroppedDatabase("shop".into())],
            ),
            ("CREATE DATABASE shop", vec![CreatedDatabase("shop".into())]),
            (
                "create schema if not exists `my shop`",
                vec![CreatedDatabase("my shop".into())],
            ),
            ("GRANT SELECT ON *.* TO u", vec![]),
            ("CREATE VIEW v AS SELECT * FROM a", vec![]),
            ("# a comment only\n", vec![]),
        ];
        for (sql, expected) in cases {
            assert_eq!(effects(sql, "app"), expected, "{sql}");
        }
    }

    #[test]
    fn any_text_is_read_without_panicking() {
        let mut seed: u64 = 7;
        let alphabet: Vec<char> = "CREATE ALTER DROP RENAME TABLE TO ON `'\"().,;/*-#\n abc"
            .chars()
            .collect();
        for _ in 0..20_000 {
            let len = (seed % 40) as usize;
            let text: String = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    alphabet[(seed % alphabet.len() as u64) as usize]
                })
                .collect();
            let _ = effects(&text, "db");
        }
    }
}
