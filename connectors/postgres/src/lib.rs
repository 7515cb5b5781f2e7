//! The Postgres CDC source, in progress. What exists:
//!
//! * [`pgoutput`]: a decoder of the `pgoutput` logical decoding protocol (v1, and v2's
//!   streamed in-progress transactions), owned here rather than taken from a replication crate
//!   so the mapping to records is ours and can be fuzzed: it never panics on any input.
//! * [`lsn`]: Postgres log sequence numbers and their `X/Y` text form.
//!
//! The connector itself (replication stream, snapshot, Debezium envelopes) is not registered
//! with the worker yet.

pub mod config;
pub mod envelope;
pub mod lsn;
pub mod pgoutput;
pub mod types;

pub mod snapshot;
pub mod source;
pub mod sql;
pub mod transaction;

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
