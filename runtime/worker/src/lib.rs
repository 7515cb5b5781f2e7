//! The sluice worker runtime.
//!
//! * [`config_file`]: reads worker and connector configs (`.properties`, JSON, TOML, YAML).
//! * [`worker_config`] / [`connector_config`]: the keys the worker understands.
//! * [`registry`]: the explicit list of connector, transform and predicate plugins.
//! * [`offsets`]: where committed source offsets live ([`offsets::OffsetStore`]).
//! * [`direct`]: the embedded pipeline connecting sources to sinks in-process.
//! * [`worker`]: runs connectors and their tasks.
//! * [`herder`]: the control plane the REST API talks to; [`standalone`] implements it.
//! * [`rest`]: Kafka Connect's REST API.

pub mod config_file;
pub mod connector_config;
pub mod direct;
pub mod errors;
pub mod herder;
pub mod kafka;
pub mod offsets;
pub mod registry;
pub mod rest;
pub mod standalone;
pub mod status;
pub mod transforms;
pub mod worker;
pub mod worker_config;
