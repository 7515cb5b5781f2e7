//! The Postgres CDC source, in progress. What exists:
//!
//! * [`pgoutput`]: a decoder of the `pgoutput` logical decoding protocol (v1, and v2's
//!   streamed in-progress transactions), owned here rather than taken from a replication crate
//!   so the mapping to records is ours and can be fuzzed: it never panics on any input.
//! * [`lsn`]: Postgres log sequence numbers and their `X/Y` text form.
//!
//! The connector itself (replication stream, snapshot, Debezium envelopes) is not registered
//! with the worker yet.

pub mod lsn;
pub mod pgoutput;
pub mod types;
