//! The MySQL / MariaDB CDC source (Debezium's MySQL and MariaDB connectors): a lock-free
//! consistent snapshot, then the binlog as Debezium change events.
//!
//! * [`rows`]: our own decoder of the binlog's row images (strict, total, fuzzed);
//! * [`table`]: tables from INFORMATION_SCHEMA and Debezium's type mapping;
//! * [`ddl`], [`ddl_columns`], [`schemas`], [`history`], [`tracker`]: tracking each table's schema across
//!   DDL — the tables a statement names and what it does to their columns, checking (and with full metadata, building) a schema against the
//!   binlog's TABLE_MAP, and the schema history file in Debezium's layout;
//! * [`schema_change`]: Debezium's schema change events (`include.schema.changes`);
//! * [`transaction`]: a binlog transaction while it is read, and the statements that steer it;
//! * [`snapshot`], [`source`], [`envelope`], [`sql`], [`tls`]: the snapshot reader, the task,
//!   the event envelope, connections (TLS under `database.ssl.*`) and catalog queries.

mod ca_check;
pub mod config;
pub mod ddl;
pub mod ddl_columns;
pub mod ddl_events;
pub mod envelope;
pub mod history;
pub mod rows;
pub mod schema_change;
pub mod schemas;
pub mod snapshot;
pub mod source;
pub mod sql;
pub mod table;
pub mod tls;
pub mod tracker;
mod transaction;

use sluice_api::connector::{ConnectorFactory, ConnectorPlugin};

/// Debezium's MySQL connector, by its class name and the alias `mysql`.
pub const MYSQL_SOURCE: ConnectorPlugin = ConnectorPlugin {
    class: "io.debezium.connector.mysql.MySqlConnector",
    aliases: &["mysql"],
    version: env!("CARGO_PKG_VERSION"),
    config_def: config::config_def,
    validate: |_| Vec::new(),
    factory: ConnectorFactory::Source(|| Box::new(source::MySqlSourceConnector::new("mysql"))),
};

/// Debezium's MariaDB connector, by its class name and the alias `mariadb`.
pub const MARIADB_SOURCE: ConnectorPlugin = ConnectorPlugin {
    class: "io.debezium.connector.mariadb.MariaDbConnector",
    aliases: &["mariadb"],
    version: env!("CARGO_PKG_VERSION"),
    config_def: config::config_def,
    validate: |_| Vec::new(),
    factory: ConnectorFactory::Source(|| Box::new(source::MySqlSourceConnector::new("mariadb"))),
};
