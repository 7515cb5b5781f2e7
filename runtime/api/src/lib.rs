//! The core API of sluice: everything a connector, transform or plugin needs and nothing else.
//!
//! The shape follows Kafka Connect's proven contract, in async Rust:
//!
//! * [`data`]: values with optional Kafka Connect schemas ([`data::Schema`], [`data::Value`]).
//! * [`record`]: [`record::Record`] (topic, key, value, headers, timestamp) wrapped as a
//!   [`record::SourceRecord`] (plus source partition and offset) or a [`record::SinkRecord`]
//!   (plus Kafka partition and offset).
//! * [`connector`]: source and sink connectors and tasks, with their delivery contracts.
//! * [`transform`]: single-message transforms and predicates.
//! * [`config`]: config definitions that validate into per-field errors.
//! * [`json`]: the JsonConverter rendering of schemas and values.
//! * [`metrics`]: gauges a task publishes about itself.
//! * [`secret`]: [`Secret`], a password or token that never shows in logs or `{:?}`.
//!
//! This crate deliberately depends on nothing heavy (no Kafka client, no WASM engine, no
//! database driver), so connectors and plugins can depend on it alone.

#![warn(missing_docs)]

pub mod calendar;
pub mod config;
pub mod connector;
pub mod convert;
pub mod data;
pub mod error;
pub mod json;
pub mod metrics;
pub mod record;
pub mod secret;
pub mod text;
pub mod transform;

pub use error::{Error, ErrorKind, Result};
pub use secret::Secret;
pub use text::Text;
