//! Where the worker keeps what must outlive it, in Kafka Connect's formats.
//!
//! * [`offsets`]: the [`OffsetStore`](offsets::OffsetStore) contract, its memory and file
//!   backends and the reader source tasks get.
//! * [`offsets_topic`]: committed source offsets in a compacted topic.
//! * [`config_topic`] / [`status_topic`]: connector configs and statuses in compacted topics.
//! * [`log`]: the topic log all the topic stores stand on.
//! * [`history_topic`]: Debezium's schema history topics, opened for source tasks.
//! * [`group_offsets`]: a sink connector's consumer-group offsets, for the offsets API.
//! * [`topics`]: the topics each connector used (KIP-558's active topics).

pub mod config_topic;
pub(crate) mod group_offsets;
pub mod history_topic;
pub mod log;
pub mod offsets;
pub mod offsets_topic;
pub mod status_topic;
pub mod topics;
