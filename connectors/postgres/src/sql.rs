//! Plain-SQL helpers shared by the snapshot and the stream: connecting, running queries with
//! errors that say what was being done, quoting, and the type catalog.

use std::collections::HashMap;
use std::sync::Arc;

use sluice_api::{Error, Result};
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::config::PostgresConfig;
use crate::types::{ColumnType, Shape};

pub fn pg_error(what: &str, config: &PostgresConfig, error: tokio_postgres::Error) -> Error {
    let message = format!(
        "{what} failed on Postgres {}:{} database {} as {}: {}",
        config.host,
        config.port,
        config.dbname,
        config.user,
        error
            .as_db_error()
            .map(|e| e.message().to_owned())
            .unwrap_or_else(|| error.to_string())
    );
    match error.as_db_error() {
        Some(db) if !is_connection_loss(db.code().code()) => Error::config(message),
        _ => Error::retriable(message),
    }
}

/// A failed connect: a TLS reason (certificate, a server that needs or refuses TLS) as a
/// config error naming the key to change; anything else as [`pg_error`] says.
fn connect_error(config: &PostgresConfig, error: tokio_postgres::Error) -> Error {
    let detail = error
        .as_db_error()
        .map(|e| e.message().to_owned())
        .unwrap_or_else(|| crate::tls::error_chain(&error));
    match crate::tls::hint(&detail, &config.tls, &config.host) {
        Some(hint) => Error::config(format!(
            "connecting to Postgres {}:{} database {} as {} failed: {detail}; {hint}",
            config.host, config.port, config.dbname, config.user
        )),
        None => pg_error(
            "connecting (check database.hostname, database.port, database.user, database.password)",
            config,
            error,
        ),
    }
}

/// Whether a server error means the session was cut rather than the request refused: a
/// connection exception (class 08) or a server shutting down or starting up (57P01-57P03),
/// which is what a Postgres restart or `pg_terminate_backend` sends. Reconnecting fixes these.
fn is_connection_loss(sqlstate: &str) -> bool {
    sqlstate.starts_with("08") || matches!(sqlstate, "57P01" | "57P02" | "57P03")
}

pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Runs SQL and returns its rows as text, with an error that says what was being done.
pub async fn query(
    client: &Client,
    config: &PostgresConfig,
    what: &str,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>> {
    client
        .simple_query(sql)
        .await
        .map(rows)
        .map_err(|e| pg_error(what, config, e))
}

pub fn rows(messages: Vec<SimpleQueryMessage>) -> Vec<Vec<Option<String>>> {
    messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// A normal (query) connection with the session settings the value parsing expects.
pub async fn connect(config: &PostgresConfig) -> Result<Client> {
    let tls = crate::tls::MakeRustlsConnect::new(&config.tls)?;
    let (client, connection) = tokio_postgres::connect(&config.connection_string(), tls)
        .await
        .map_err(|e| connect_error(config, e))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "postgres connection ended");
        }
    });
    Ok(client)
}

/// Column types resolved through `pg_type`, cached per OID: domains become their base type,
/// arrays carry their element type, enums their labels; the hstore extension type is known by
/// name. Built-in scalars need no look-up.
#[derive(Debug, Default)]
pub struct TypeCatalog {
    entries: HashMap<u32, CatalogEntry>,
}

#[derive(Debug, Clone)]
struct CatalogEntry {
    kind: String,
    category: String,
    element: u32,
    base: u32,
    base_modifier: i32,
    name: String,
    labels: Arc<[String]>,
}

impl TypeCatalog {
    async fn entry(
        &mut self,
        client: &Client,
        config: &PostgresConfig,
        oid: u32,
    ) -> Result<Option<CatalogEntry>> {
        if let Some(entry) = self.entries.get(&oid) {
            return Ok(Some(entry.clone()));
        }
        let rows = query(
            client,
            config,
            "looking up a column type in pg_type",
            &format!(
                "select t.typtype::text, t.typcategory::text, t.typelem::int8, t.typbasetype::int8, t.typtypmod, t.typname::text, \
                 coalesce((select string_agg(e.enumlabel, E'\\x1f' order by e.enumsortorder) from pg_enum e where e.enumtypid = t.oid), '') \
                 from pg_type t where t.oid = {oid}"
            ),
        )
        .await?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(None);
        };
        let text = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
        let labels = text(6);
        let entry = CatalogEntry {
            kind: text(0),
            category: text(1),
            element: text(2).parse().unwrap_or(0),
            base: text(3).parse().unwrap_or(0),
            base_modifier: text(4).parse().unwrap_or(-1),
            name: text(5),
            labels: if labels.is_empty() {
                Arc::from(Vec::new())
            } else {
                labels.split('\u{1f}').map(str::to_owned).collect()
            },
        };
        self.entries.insert(oid, entry.clone());
        Ok(Some(entry))
    }

    /// A non-array type: domains (possibly nested) down to their base type.
    async fn scalar(
        &mut self,
        client: &Client,
        config: &PostgresConfig,
        mut oid: u32,
        mut modifier: i32,
    ) -> Result<ColumnType> {
        for _ in 0..16 {
            if crate::types::is_builtin_scalar(oid) {
                break;
            }
            let Some(entry) = self.entry(client, config, oid).await? else {
                break;
            };
            match entry.kind.as_str() {
                "d" => {
                    if modifier < 0 {
                        modifier = entry.base_modifier;
                    }
                    oid = entry.base;
                }
                "e" => {
                    return Ok(ColumnType {
                        oid,
                        modifier,
                        shape: Shape::Enum(entry.labels),
                    });
                }
                _ if entry.name == "hstore" => {
                    return Ok(ColumnType {
                        oid,
                        modifier,
                        shape: Shape::Hstore,
                    });
                }
                _ if crate::types::debezium_maps(oid, &entry.name) => break,
                // A type Debezium has no mapping for: left out of events unless
                // include.unknown.datatypes.
                _ => {
                    return Ok(ColumnType {
                        oid,
                        modifier,
                        shape: Shape::Unknown,
                    });
                }
            }
        }
        Ok(ColumnType::scalar(oid, modifier))
    }

    /// A column's type: arrays of any scalar (domain, enum, hstore included), or a scalar.
    pub async fn resolve(
        &mut self,
        client: &Client,
        config: &PostgresConfig,
        oid: u32,
        modifier: i32,
    ) -> Result<ColumnType> {
        if crate::types::is_builtin_scalar(oid) {
            return Ok(ColumnType::scalar(oid, modifier));
        }
        let array_of = match self.entry(client, config, oid).await? {
            Some(entry) if entry.category == "A" && entry.element != 0 => Some(entry.element),
            _ => None,
        };
        match array_of {
            Some(element) => {
                let element = self.scalar(client, config, element, modifier).await?;
                Ok(ColumnType {
                    oid,
                    modifier,
                    shape: Shape::Array(Box::new(element)),
                })
            }
            None => self.scalar(client, config, oid, modifier).await,
        }
    }
}

/// What the catalog says of one column of a table.
#[derive(Debug, Clone)]
pub struct CatalogColumn {
    pub name: String,
    pub type_oid: u32,
    pub modifier: i32,
    /// Position in the primary key (1-based), if part of it.
    pub key_order: Option<i64>,
    pub not_null: bool,
    /// `pg_get_expr` of the column's default.
    pub default_expression: Option<String>,
    pub type_name: String,
}

/// The columns of the table `relation` (a SQL expression of its OID: `16384` or
/// `'public.t'::regclass`), in column order: types, primary-key order, `NOT NULL`, defaults.
pub async fn describe_columns(
    client: &Client,
    config: &PostgresConfig,
    relation: &str,
) -> Result<Vec<CatalogColumn>> {
    let rows = query(
        client,
        config,
        "reading table columns",
        &format!(
            "select a.attname, a.atttypid::int8, a.atttypmod, array_position(i.indkey::int2[], a.attnum), \
             a.attnotnull::text, pg_get_expr(d.adbin, d.adrelid), t.typname::text \
             from pg_attribute a join pg_type t on t.oid = a.atttypid \
             left join pg_index i on i.indrelid = a.attrelid and i.indisprimary \
             left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum \
             where a.attrelid = {relation} and a.attnum > 0 and not a.attisdropped order by a.attnum"
        ),
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|c| {
            let text = |i: usize| c.get(i).cloned().flatten();
            CatalogColumn {
                name: text(0).unwrap_or_default(),
                type_oid: text(1).and_then(|v| v.parse().ok()).unwrap_or(0),
                modifier: text(2).and_then(|v| v.parse().ok()).unwrap_or(-1),
                key_order: text(3).and_then(|v| v.parse().ok()),
                not_null: text(4).as_deref() == Some("true"),
                default_expression: text(5),
                type_name: text(6).unwrap_or_default(),
            }
        })
        .collect())
}

/// Microseconds since the Unix epoch, now.
pub fn unix_now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::is_connection_loss;

    #[test]
    fn cut_sessions_are_connection_losses_and_refusals_are_not() {
        for cut in ["08006", "08003", "57P01", "57P02", "57P03"] {
            assert!(is_connection_loss(cut), "{cut}");
        }
        for refused in ["42P01", "42501", "55000", "3D000", "28P01"] {
            assert!(!is_connection_loss(refused), "{refused}");
        }
    }
}
