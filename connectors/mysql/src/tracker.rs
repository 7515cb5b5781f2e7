//! The schema each captured table's binlog rows are decoded with, across DDL.
//!
//! * A table is described from INFORMATION_SCHEMA when first seen, and that schema is checked
//!   against the rows' TABLE_MAP before use.
//! * A DDL statement marks the tables it names stale ([`crate::ddl`]) and is kept with them; a
//!   stale table's schema is established again before its next rows, and checked the same way.
//! * Established from, in this order, the first that fits the rows' TABLE_MAP:
//!   1. the last known schema with the statements since applied ([`crate::ddl_columns`]): right
//!      even when DDL ran since those rows were written (the connector is behind), as far as
//!      the statements are understood;
//!   2. INFORMATION_SCHEMA, which shows the table as it is now;
//!   3. a TABLE_MAP with full metadata (`binlog_row_metadata=FULL`, [`crate::schemas`]);
//!   4. none: `inconsistent.schema.handling.mode` decides: fail (naming the fix), warn or skip.
//! * Every schema put to use and every DDL read is appended to the schema history (file or
//!   topic) when one is configured ([`crate::history`]); a restart replays it up to its position, so
//!   events written before a DDL are decoded with the schema they were written under.

use std::collections::HashMap;
use std::sync::Arc;

use mysql_async::Conn;
use sluice_api::data::SchemaRef;
use sluice_api::{Error, Result};

use crate::config::{Inconsistent, MySqlConfig};
use crate::ddl::{self, Effect};
use crate::ddl_columns;
use crate::history::{self, At, Entry, HistoryStore, Origin};
use crate::schemas::{MapColumns, columns_from_map, disagreement};
use crate::sql::{describe, list_tables, show_create, table_charset};
use crate::table::ColumnInfo;
use crate::table::TableSchema;

/// A table's schema as tracked.
#[derive(Debug)]
struct Tracked {
    /// The schema last established; `None` for a table first named by a DDL statement read
    /// since (its CREATE, or an ALTER of a table not tracked before).
    schema: Option<Arc<TableSchema>>,
    /// The DDL statements that named the table since then, in order: the table is stale while
    /// there are any.
    pending: Vec<String>,
}

impl Tracked {
    fn fresh(schema: Arc<TableSchema>) -> Tracked {
        Tracked {
            schema: Some(schema),
            pending: Vec::new(),
        }
    }

    /// Adds a statement that named the table (once: ALTER … RENAME names it twice).
    fn named_by(&mut self, ddl: &str) {
        if self.pending.last().map(String::as_str) != Some(ddl) {
            self.pending.push(ddl.to_owned());
        }
    }
}

/// The tracked schemas (see the module's doc).
#[derive(Debug, Default)]
pub struct Tracker {
    tables: HashMap<(String, String), Tracked>,
    history: Option<HistoryStore>,
}

fn key(db: &str, table: &str) -> (String, String) {
    (db.to_owned(), table.to_owned())
}

impl Tracker {
    /// A tracker writing to `history` (none: in memory only).
    pub fn new(history: Option<HistoryStore>) -> Tracker {
        Tracker {
            tables: HashMap::new(),
            history,
        }
    }

    /// Replays the history up to `upto` (the position the stream resumes from); the number
    /// of records replayed.
    pub async fn recover(
        &mut self,
        config: &MySqlConfig,
        source: &SchemaRef,
        upto: &At,
    ) -> Result<usize> {
        let Some(history) = &self.history else {
            return Ok(0);
        };
        let entries = history.load(&config.topic_prefix).await?;
        let mut replayed = 0;
        for (at, entry) in entries {
            if &at > upto {
                continue;
            }
            replayed += 1;
            match entry {
                Entry::Ddl { db, ddl } => self.apply(&ddl::effects(&ddl, &db), &ddl),
                Entry::Version { db, table, columns } => {
                    let schema = TableSchema::new(config, &db, &table, columns, source);
                    self.tables
                        .insert(key(&db, &table), Tracked::fresh(Arc::new(schema)));
                }
            }
        }
        Ok(replayed)
    }

    /// Drops the history records past `upto`, the position a stream just opened at: written
    /// before a crash lost the offsets that covered them, they are written again when their
    /// events are read again. (Only once the stream opened, so a start that fails, such as on
    /// a purged binlog, keeps them.)
    pub async fn prune(&self, config: &MySqlConfig, upto: &At) -> Result<()> {
        let Some(history) = &self.history else {
            return Ok(());
        };
        let pruned = history.prune(&config.topic_prefix, upto).await?;
        if pruned > 0 {
            tracing::info!(
                records = pruned,
                file = %upto.file,
                pos = upto.pos,
                "pruned schema history records past the resume position"
            );
        }
        Ok(())
    }

    /// `snapshot.mode=recovery`: replaces this server's history with the captured tables'
    /// schemas as INFORMATION_SCHEMA shows them now, standing at `origin` (where the stream
    /// resumes), as Debezium rebuilds a lost or corrupted history. Right only when no DDL ran
    /// on them since that position, which Debezium's documentation demands too. Returns how
    /// many tables it wrote (0 without a history file: the schemas are read anew anyway).
    pub async fn rebuild(
        &mut self,
        conn: &mut Conn,
        config: &MySqlConfig,
        origin: &Origin,
    ) -> Result<usize> {
        let Some(history) = &self.history else {
            return Ok(0);
        };
        let mut records = Vec::new();
        for (db, table) in list_tables(conn, config).await? {
            let columns = describe(conn, config, &db, &table).await?;
            let ddl = show_create(conn, &db, &table).await;
            records.push(history::version_record(
                origin, &db, &table, &ddl, "CREATE", &columns,
            ));
        }
        history.replace(&config.topic_prefix, &records).await?;
        Ok(records.len())
    }

    fn apply(&mut self, effects: &[Effect], ddl: &str) {
        for effect in effects {
            match effect {
                Effect::Changed(t) => self
                    .tables
                    .entry(key(&t.db, &t.table))
                    .or_insert(Tracked {
                        schema: None,
                        pending: Vec::new(),
                    })
                    .named_by(ddl),
                Effect::Dropped(t) => {
                    self.tables.remove(&key(&t.db, &t.table));
                }
                Effect::Renamed { from, to } => {
                    // The table keeps its columns under its new name.
                    let moved = self.tables.remove(&key(&from.db, &from.table));
                    self.tables.remove(&key(&to.db, &to.table));
                    if let Some(mut tracked) = moved {
                        tracked.named_by(ddl);
                        self.tables.insert(key(&to.db, &to.table), tracked);
                    }
                }
                Effect::Truncated(_) | Effect::CreatedDatabase(_) => {}
                Effect::DroppedDatabase(db) => self.tables.retain(|(d, _), _| d != db),
            }
        }
    }

    /// A DDL statement read from the binlog at `origin` (run in database `default_db`): the
    /// tables it names are stale, their schema established again before their next rows (this
    /// statement among those it is derived from), and the statement goes to
    /// the history when it names a captured table. Returns what the statement does.
    pub async fn on_ddl(
        &mut self,
        config: &MySqlConfig,
        sql: &str,
        default_db: &str,
        origin: &Origin,
    ) -> Result<Vec<Effect>> {
        let effects = ddl::effects(sql, default_db);
        let captured = effects.iter().any(|e| match e {
            Effect::Changed(t) | Effect::Dropped(t) | Effect::Truncated(t) => {
                config.captures(&t.db, &t.table)
            }
            Effect::Renamed { from, to } => {
                config.captures(&from.db, &from.table) || config.captures(&to.db, &to.table)
            }
            Effect::DroppedDatabase(_) => true,
            Effect::CreatedDatabase(_) => false,
        });
        if !captured {
            return Ok(effects);
        }
        tracing::info!(
            ddl = sql,
            "DDL on a captured table: its schema is read again before its next rows"
        );
        self.apply(&effects, sql);
        if let Some(history) = &self.history {
            // The statement's database: its default one, else the first table's.
            let db = if default_db.is_empty() {
                effects
                    .first()
                    .map(|e| match e {
                        Effect::Changed(t)
                        | Effect::Dropped(t)
                        | Effect::Truncated(t)
                        | Effect::Renamed { from: t, .. } => t.db.as_str(),
                        Effect::DroppedDatabase(db) | Effect::CreatedDatabase(db) => db.as_str(),
                    })
                    .unwrap_or_default()
            } else {
                default_db
            };
            history
                .append(&history::ddl_record(origin, db, sql))
                .await?;
        }
        Ok(effects)
    }

    /// The schema `db.table` is known by now (stale or not), else as INFORMATION_SCHEMA
    /// describes it: for events that carry no row (TRUNCATE).
    pub async fn schema_now(
        &mut self,
        conn: &mut Conn,
        config: &MySqlConfig,
        source: &SchemaRef,
        db: &str,
        table: &str,
    ) -> Result<Arc<TableSchema>> {
        if let Some(schema) = self
            .tables
            .get(&key(db, table))
            .and_then(|tracked| tracked.schema.as_ref())
        {
            return Ok(Arc::clone(schema));
        }
        let columns = describe(conn, config, db, table).await?;
        Ok(Arc::new(TableSchema::new(
            config, db, table, columns, source,
        )))
    }

    /// The tracked schema of `db.table` when it is not stale and fits rows written under
    /// `map`: the common case, with no I/O. `None`: it must be [established](Self::establish).
    pub fn fitting(&self, db: &str, table: &str, map: &MapColumns) -> Option<Arc<TableSchema>> {
        let tracked = self.tables.get(&key(db, table))?;
        let schema = tracked
            .schema
            .as_ref()
            .filter(|_| tracked.pending.is_empty())?;
        match disagreement(&schema.columns, map) {
            None => Some(Arc::clone(schema)),
            Some(why) => {
                tracing::info!(
                    db,
                    table,
                    why,
                    "the binlog's rows no longer fit the tracked schema; reading it again"
                );
                None
            }
        }
    }

    /// Establishes the schema to decode `db.table`'s rows written under `map` with, at
    /// `origin` (when [`Tracker::fitting`] has none); `None` when they are to be skipped
    /// (`inconsistent.schema.handling.mode` warn or skip).
    #[allow(clippy::too_many_arguments)]
    pub async fn establish(
        &mut self,
        conn: &mut Conn,
        config: &MySqlConfig,
        source: &SchemaRef,
        db: &str,
        table: &str,
        map: &MapColumns,
        origin: &Origin,
    ) -> Result<Option<Arc<TableSchema>>> {
        let stale_by = self
            .tables
            .get(&key(db, table))
            .and_then(|tracked| tracked.pending.last().cloned());
        let described = describe(conn, config, db, table).await?;
        // With full metadata, `disagreement` also checks names, signedness, ENUM/SET labels
        // and latin1 text against it.
        let derived = self
            .derived(conn, config, db, table)
            .await
            .filter(|derived| disagreement(derived, map).is_none());
        let (columns, ddl) = match (derived, disagreement(&described, map)) {
            (Some(derived), _) => {
                if derived != described {
                    tracing::info!(
                        db,
                        table,
                        "decoding these rows by the columns the DDL read since gives (the table has changed since)"
                    );
                }
                (derived, stale_by.clone().unwrap_or_default())
            }
            (None, None) => {
                let ddl = match &stale_by {
                    Some(ddl) => ddl.clone(),
                    None => show_create(conn, db, table).await,
                };
                (described, ddl)
            }
            (None, Some(why)) => match columns_from_map(map, &described) {
                Some(columns) => {
                    tracing::info!(
                        db,
                        table,
                        why,
                        "the table changed since these rows were written; decoding them by the binlog's full metadata"
                    );
                    (columns, stale_by.clone().unwrap_or_default())
                }
                None => {
                    let message = format!(
                        "{db}.{table}: the rows at binlog {}:{} do not fit the table's schema ({why}); DDL ran \
                         since they were written, the statements read since do not give their columns, and the \
                         server does not write full metadata to decode them by. \
                         Set binlog_row_metadata=FULL on the server (SET GLOBAL binlog_row_metadata='FULL' and in \
                         its config), or set inconsistent.schema.handling.mode=warn to skip such events",
                        origin.at.file, origin.at.pos
                    );
                    return match config.inconsistent {
                        Inconsistent::Fail => Err(Error::config(message)),
                        Inconsistent::Warn => {
                            tracing::warn!(
                                "{message}; skipped (inconsistent.schema.handling.mode=warn)"
                            );
                            Ok(None)
                        }
                        Inconsistent::Skip => Ok(None),
                    };
                }
            },
        };
        if let Some(history) = &self.history {
            let known = self
                .tables
                .get(&key(db, table))
                .is_some_and(|tracked| tracked.schema.is_some());
            let change = if known { "ALTER" } else { "CREATE" };
            history
                .append(&history::version_record(
                    origin, db, table, &ddl, change, &columns,
                ))
                .await?;
        }
        let schema = Arc::new(TableSchema::new(config, db, table, columns, source));
        self.tables
            .insert(key(db, table), Tracked::fresh(Arc::clone(&schema)));
        Ok(Some(schema))
    }

    /// The columns of `db.table` after the DDL statements read since its schema was last
    /// established (or since its CREATE), applied to that schema; `None` when there are none,
    /// no base to apply them to, or one is not understood.
    async fn derived(
        &self,
        conn: &mut Conn,
        config: &MySqlConfig,
        db: &str,
        table: &str,
    ) -> Option<Vec<ColumnInfo>> {
        use ddl_columns::Create;
        let tracked = self.tables.get(&key(db, table))?;
        if tracked.pending.is_empty() {
            return None;
        }
        // From the last CREATE on (its columns are the statement's), or else from the schema
        // last established. CREATE … IF NOT EXISTS of a table known by then does nothing; of one
        // not known, it is not known whether it did.
        let mut from = None;
        let mut known = tracked.schema.is_some();
        for (i, sql) in tracked.pending.iter().enumerate() {
            match ddl_columns::create_kind(sql) {
                Create::Always => {
                    from = Some(i);
                    known = true;
                }
                Create::IfMissing if !known => return None,
                _ => {}
            }
        }
        let (mut columns, statements) = match (from, &tracked.schema) {
            (Some(from), _) => (Vec::new(), &tracked.pending[from..]),
            (None, Some(schema)) => (schema.columns.clone(), &tracked.pending[..]),
            (None, None) => return None,
        };
        let charset = table_charset(conn, db, table).await?;
        // The table's default character set now is the one a statement ran under only when no
        // later statement changed it.
        let last_change = statements
            .iter()
            .rposition(|sql| ddl_columns::sets_default_charset(sql).is_some());
        let defaults = ddl_columns::Defaults {
            charset: &charset,
            mariadb: config.flavour == "mariadb",
        };
        for (i, sql) in statements.iter().enumerate() {
            if ddl_columns::create_kind(sql) == Create::IfMissing {
                continue;
            }
            let derived = match last_change {
                Some(change) if i < change => None,
                _ => ddl_columns::apply(&columns, sql, &defaults),
            };
            match derived {
                Some(next) => columns = next,
                None => {
                    tracing::info!(
                        db,
                        table,
                        ddl = sql.as_str(),
                        "what this DDL does to the columns is not followed; the table's schema is read from the server"
                    );
                    return None;
                }
            }
        }
        Some(columns)
    }

    /// `db.table` as a snapshot read it (`columns`, `SHOW CREATE TABLE`'s `ddl`) in a view
    /// standing at `origin`, the stream's start: tracked from there on, and a version in the
    /// history, as Debezium's snapshot records each captured table's schema. A restart behind
    /// DDL then knows the columns the table had before it.
    pub async fn snapshotted(
        &mut self,
        config: &MySqlConfig,
        source: &SchemaRef,
        (db, table): (&str, &str),
        columns: Vec<ColumnInfo>,
        ddl: &str,
        origin: &Origin,
    ) -> Result<()> {
        if let Some(history) = &self.history {
            history
                .append(&history::version_record(
                    origin, db, table, ddl, "CREATE", &columns,
                ))
                .await?;
        }
        let schema = TableSchema::new(config, db, table, columns, source);
        self.tables
            .insert(key(db, table), Tracked::fresh(Arc::new(schema)));
        Ok(())
    }

    /// Forgets every schema (a fresh snapshot describes the tables anew).
    pub fn clear(&mut self) {
        self.tables.clear();
    }
}
