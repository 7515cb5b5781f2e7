//! The sluice worker runtime: Kafka Connect's worker, in folders by concern.
//!
//! * [`config`]: config files and the keys the worker understands (worker, every connector).
//! * [`registry`]: the explicit list of connector, transform and predicate plugins.
//! * [`transforms`]: a connector's transform chain.
//! * `pipeline`: how records travel — the embedded direct bus or Kafka — behind one source end
//!   and one sink end.
//! * `task`: the source and sink task runners, one loop each, blind to the transport.
//! * [`storage`]: offsets (file, memory, topic), config and status topics, consumer groups.
//! * [`worker`]: Kafka Connect's `Worker`: starts and stops connectors and tasks, administers
//!   offsets.
//! * [`herder`]: the control plane the REST API talks to; the standalone herder implements it.
//! * [`logging`]: the process's log output and its levels, changeable while it runs.
//! * [`metrics`]: Kafka Connect's metrics (and sluice's own) for `GET /metrics`.
//! * [`rest`]: Kafka Connect's REST API.
//! * [`state`]: connector and task states and the shapes they are reported in.
//! * [`process`]: a whole worker process assembled from its config file.

mod clock;
pub mod config;
pub mod herder;
pub mod logging;
pub mod metrics;
pub(crate) mod pipeline;
pub mod process;
mod random;
pub mod registry;
pub mod rest;
pub mod state;
pub mod storage;
pub(crate) mod task;
pub mod transforms;
pub mod worker;
#[cfg(test)]
mod worker_tests;

pub use herder::distributed::process::DistributedProcess;
pub use pipeline::kafka::KafkaSettings;
pub use process::StandaloneProcess;
pub use registry::Registry;
