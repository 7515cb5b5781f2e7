//! What sluice's Debezium-compatible CDC sources share, so the Postgres and MySQL connectors
//! shape events the same way:
//!
//! * [`config`]: the keys every Debezium connector documents, implemented or named as
//!   without effect;
//! * [`options`]: those keys parsed ([`EventOptions`]);
//! * [`operations`]: the `skipped.operations` key;
//! * [`columns`]: masking, hashing and truncation of columns, source-type propagation;
//! * [`names`]: Avro name adjustment;
//! * [`key_columns`]: the `message.key.columns` key;
//! * [`envelope`]: the envelope, `source` and `transaction` schemas and values;
//! * [`filters`]: include/exclude lists;
//! * [`headers`]: primary-key change and `__debezium.context.*` headers;
//! * [`heartbeat`]: heartbeat records;
//! * [`transaction`]: transaction metadata (`BEGIN`/`END` records, the `transaction` block);
//! * [`uuid`]: a UUID's text form;
//! * [`version`]: what `source.version` says.

pub mod columns;
pub mod config;
pub mod decimal;
pub mod envelope;
pub mod filters;
pub mod headers;
pub mod heartbeat;
pub mod key_columns;
pub mod names;
pub mod operations;
pub mod options;
pub mod transaction;
pub mod uuid;
pub mod version;

pub use options::{BinaryMode, EventOptions, FailureMode};
