//! Connections and the catalog: server checks, table descriptions from INFORMATION_SCHEMA.

use mysql_async::prelude::*;
use mysql_async::{Conn, OptsBuilder, Row};
use sluice_api::{Error, ErrorKind, Result};

use crate::config::MySqlConfig;
use crate::table::ColumnInfo;
use crate::tls::SslMode;

/// A MySQL error as sluice's: lost connections are retriable, the rest name what failed.
pub fn my_error(what: &str, config: &MySqlConfig, error: mysql_async::Error) -> Error {
    let text = format!("{what} on {}:{}: {error}", config.host, config.port);
    match error {
        mysql_async::Error::Io(_) => Error::retriable(text),
        mysql_async::Error::Server(ref e) if e.code == 1045 => {
            Error::config(format!("{text}; check database.user and database.password"))
        }
        _ => Error::config(text),
    }
}

/// A new connection, over TLS as `database.ssl.mode` asks, with the session settings every
/// query relies on (UTC timestamps).
pub async fn connect(config: &MySqlConfig) -> Result<Conn> {
    let opts = OptsBuilder::default()
        .ip_or_hostname(config.host.clone())
        .tcp_port(config.port)
        .user(Some(config.user.clone()))
        .pass(Some(config.password.expose().to_owned()))
        .prefer_socket(false);
    // verify_ca: a check of sluice's own before the connection (see ca_check); a server
    // that then shows another certificate (one of several behind a name) is tried once more.
    let mut attempts = if config.tls.mode == SslMode::VerifyCa {
        2
    } else {
        1
    };
    let connected = loop {
        attempts -= 1;
        let mut opts = opts.clone();
        let verified = match config.tls.mode {
            SslMode::VerifyCa => {
                let roots = config.tls.roots()?.unwrap_or_default();
                crate::ca_check::name_to_verify(
                    &config.host,
                    config.port,
                    &roots,
                    config.tls.client_certificate(),
                )
                .await
                .map_err(|e| match e.kind() {
                    ErrorKind::Config => tls_error(config, e.message()),
                    _ => e,
                })?
            }
            _ => None,
        };
        let mut name = None;
        if let Some(crate::ca_check::Verified {
            address,
            name: Some(listed),
        }) = verified
        {
            // The same server the probe checked, under a name its certificate lists.
            opts = opts.ip_or_hostname(address.to_string());
            name = Some(listed);
        }
        let ssl_opts = config.tls.ssl_opts(name)?;
        let connected = match Conn::new(opts.clone().ssl_opts(ssl_opts)).await {
            // preferred: plain TCP when the server offers no TLS, as MySQL's own client.
            Err(mysql_async::Error::Driver(
                mysql_async::DriverError::NoClientSslFlagFromServer,
            )) if config.tls.mode == SslMode::Preferred => {
                tracing::info!(host = %config.host, "the server offers no TLS; database.ssl.mode=preferred connects in plain text");
                Conn::new(opts).await
            }
            // preferred, and a TLS the client cannot negotiate (a server offering only TLS
            // 1.0 or 1.1): plain TCP too, rather than retrying the handshake for ever.
            Err(mysql_async::Error::Io(mysql_async::IoError::Tls(e)))
                if config.tls.mode == SslMode::Preferred =>
            {
                tracing::warn!(host = %config.host, error = %e, "the TLS handshake failed; database.ssl.mode=preferred connects in plain text (set required or a verify mode to insist on TLS)");
                Conn::new(opts).await
            }
            other => other,
        };
        match connected {
            Err(e) if attempts > 0 && sluice_tls::names_mismatch(&e.to_string()) => {
                tracing::warn!(host = %config.host, error = %e, "the server showed another certificate than the one just checked; checking again");
            }
            other => break other,
        }
    };
    let mut conn = connected.map_err(|e| connect_error(config, e))?;
    conn.query_drop("SET time_zone = '+00:00', NAMES utf8mb4")
        .await
        .map_err(|e| my_error("setting the session", config, e))?;
    Ok(conn)
}

/// A failed connection: a TLS failure is a config error naming the setting to change (it
/// would fail the same way again); the rest as [`my_error`].
fn connect_error(config: &MySqlConfig, error: mysql_async::Error) -> Error {
    let text = error.to_string();
    if config.tls.hint(&text, &config.host).is_some() {
        return tls_error(config, &text);
    }
    let refused = matches!(&error, mysql_async::Error::Server(e) if e.code == 1045);
    let error = my_error("connecting", config, error);
    if refused && config.tls.mode == SslMode::Disabled {
        // A user created with REQUIRE SSL is refused like a wrong password.
        return Error::config(format!(
            "{}; if the user must connect over TLS (REQUIRE SSL), set database.ssl.mode",
            error.message()
        ));
    }
    if refused && !config.tls.has_client_certificate() {
        // So is one created with REQUIRE X509 that presented no certificate.
        return Error::config(format!(
            "{}; if the user must present a client certificate (REQUIRE X509 or SUBJECT), set \
             database.ssl.keystore to a PEM file with the certificate and its key",
            error.message()
        ));
    }
    error
}

/// A TLS failure as a config error, with the reason and the key to change when known.
fn tls_error(config: &MySqlConfig, text: &str) -> Error {
    let hint = config
        .tls
        .hint(text, &config.host)
        .map(|hint| format!("; {hint}"))
        .unwrap_or_default();
    Error::config(format!(
        "connecting over TLS to {}:{}: {text}{hint}",
        config.host, config.port
    ))
}

/// Quotes an identifier with backticks.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// The binlog settings Debezium needs, each refused with its fix.
pub async fn check_server(conn: &mut Conn, config: &MySqlConfig) -> Result<()> {
    let row: Option<(Option<String>, Option<String>, Option<String>)> = conn
        .query_first("SELECT @@log_bin, @@binlog_format, @@binlog_row_image")
        .await
        .map_err(|e| my_error("reading the binlog settings", config, e))?;
    let (log_bin, format, image) = row.unwrap_or_default();
    let on = matches!(log_bin.as_deref(), Some("1") | Some("ON"));
    if !on {
        return Err(Error::config(format!(
            "{}:{} runs without a binary log (log_bin is off); start it with --log-bin (and --binlog-format=ROW \
             --binlog-row-image=FULL)",
            config.host, config.port
        )));
    }
    if format.as_deref() != Some("ROW") {
        return Err(Error::config(format!(
            "binlog_format is {}, CDC needs ROW: SET GLOBAL binlog_format = 'ROW' (and in the server's config)",
            format.unwrap_or_default()
        )));
    }
    if image.as_deref() != Some("FULL") {
        return Err(Error::config(format!(
            "binlog_row_image is {}, CDC needs FULL: SET GLOBAL binlog_row_image = 'FULL' (and in the server's config)",
            image.unwrap_or_default()
        )));
    }
    Ok(())
}

/// The tables of every database the filters capture.
pub async fn list_tables(conn: &mut Conn, config: &MySqlConfig) -> Result<Vec<(String, String)>> {
    list_tables_where(conn, config, |db, table| config.captures(db, table)).await
}

/// The base tables outside the system databases that `keep(db, table)` keeps, by database and
/// name.
pub async fn list_tables_where(
    conn: &mut Conn,
    config: &MySqlConfig,
    keep: impl Fn(&str, &str) -> bool,
) -> Result<Vec<(String, String)>> {
    let system: Vec<String> = crate::config::SYSTEM_DATABASES
        .iter()
        .map(|db| format!("'{db}'"))
        .collect();
    let rows: Vec<(String, String)> = conn
        .query(format!(
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_TYPE = 'BASE TABLE' \
             AND TABLE_SCHEMA NOT IN ({}) ORDER BY TABLE_SCHEMA, TABLE_NAME",
            system.join(", ")
        ))
        .await
        .map_err(|e| my_error("listing tables", config, e))?;
    Ok(rows
        .into_iter()
        .filter(|(db, table)| keep(db, table))
        .collect())
}

/// A table's columns, in order.
pub async fn describe(
    conn: &mut Conn,
    config: &MySqlConfig,
    db: &str,
    table: &str,
) -> Result<Vec<ColumnInfo>> {
    let rows: Vec<Row> = conn
        .exec(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY, NUMERIC_PRECISION, NUMERIC_SCALE, \
             DATETIME_PRECISION, CHARACTER_SET_NAME FROM INFORMATION_SCHEMA.COLUMNS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (db, table),
        )
        .await
        .map_err(|e| my_error(&format!("describing {db}.{table}"), config, e))?;
    let text = |row: &Row, i: usize| -> Option<String> {
        row.get_opt::<Option<String>, _>(i)
            .and_then(|v| v.ok())
            .flatten()
    };
    let number = |row: &Row, i: usize| -> Option<u32> {
        row.get_opt::<Option<u64>, _>(i)
            .and_then(|v| v.ok())
            .flatten()
            .and_then(|v| u32::try_from(v).ok())
    };
    Ok(rows
        .iter()
        .map(|row| ColumnInfo {
            name: text(row, 0).unwrap_or_default(),
            data_type: text(row, 1).unwrap_or_default().to_ascii_lowercase(),
            column_type: text(row, 2).unwrap_or_default().to_ascii_lowercase(),
            nullable: text(row, 3).as_deref() == Some("YES"),
            primary: text(row, 4).as_deref() == Some("PRI"),
            precision: number(row, 5),
            scale: number(row, 6),
            fsp: number(row, 7).unwrap_or(0),
            charset: text(row, 8),
        })
        .collect())
}

/// The default character set of `db.table` now: what a text column added without one takes.
/// A table that is gone (dropped or renamed since) has its database's, else the server's;
/// `None` when none can be read.
pub async fn table_charset(conn: &mut Conn, db: &str, table: &str) -> Option<String> {
    let of_table: Option<String> = conn
        .exec_first(
            "SELECT c.CHARACTER_SET_NAME FROM INFORMATION_SCHEMA.TABLES t \
             JOIN INFORMATION_SCHEMA.COLLATION_CHARACTER_SET_APPLICABILITY c ON c.COLLATION_NAME = t.TABLE_COLLATION \
             WHERE t.TABLE_SCHEMA = ? AND t.TABLE_NAME = ?",
            (db, table),
        )
        .await
        .ok()
        .flatten();
    if of_table.is_some() {
        return of_table;
    }
    let of_database: Option<String> = conn
        .exec_first(
            "SELECT DEFAULT_CHARACTER_SET_NAME FROM INFORMATION_SCHEMA.SCHEMATA WHERE SCHEMA_NAME = ?",
            (db,),
        )
        .await
        .ok()
        .flatten();
    if of_database.is_some() {
        return of_database;
    }
    conn.query_first("SELECT @@character_set_server")
        .await
        .ok()
        .flatten()
}

/// `SHOW CREATE TABLE`'s statement, for the history's and schema change events' `ddl` (empty
/// when it cannot be read).
pub async fn show_create(conn: &mut Conn, db: &str, table: &str) -> String {
    let row: Option<(String, String)> = conn
        .query_first(format!(
            "SHOW CREATE TABLE {}.{}",
            quote_ident(db),
            quote_ident(table)
        ))
        .await
        .ok()
        .flatten();
    row.map(|(_, ddl)| ddl).unwrap_or_default()
}
