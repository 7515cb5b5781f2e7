//! The Postgres CDC source (Debezium's PostgreSQL connector): a consistent snapshot through
//! the slot's exported snapshot, then the slot's pgoutput stream as Debezium change events.
//!
//! * [`wire`]: the replication connection (own protocol client: pgoutput protocol 2 with
//!   streaming of large in-progress transactions on Postgres 14+, else 1).
//! * [`pgoutput`]: a decoder of pgoutput, owned here so the mapping to records is ours and can
//!   be fuzzed: it never panics on any input.
//! * [`spool`]: streamed in-progress transactions kept on disk until they end.
//! * [`snapshot`], [`source`], [`envelope`], [`types`], [`transaction`]: the snapshot reader,
//!   the task, Debezium's envelope, the type mapping and transaction metadata.

mod binary_types;
pub mod config;
mod copy;
mod documented;
pub mod envelope;
pub mod lsn;
mod offsets;
pub mod pgoutput;
pub mod types;

pub mod snapshot;
pub mod source;
pub mod spool;
pub mod sql;
pub mod tls;
pub mod transaction;
pub mod wire;

use sluice_api::connector::{ConnectorFactory, ConnectorPlugin};

/// Debezium's PostgreSQL connector, by its class name and the alias `postgres`.
pub const POSTGRES_SOURCE: ConnectorPlugin = ConnectorPlugin {
    class: "io.debezium.connector.postgresql.PostgresConnector",
    aliases: &["postgres"],
    version: env!("CARGO_PKG_VERSION"),
    config_def: config::config_def,
    validate: config::validate,
    factory: ConnectorFactory::Source(|| Box::new(source::PostgresSourceConnector::default())),
};
