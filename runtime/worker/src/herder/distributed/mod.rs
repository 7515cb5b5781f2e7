//! Distributed mode: a worker group coordinated by Kafka's group coordinator with Kafka
//! Connect's protocol.
//!
//! * `protocol`, `assignor`, `signature`: the wire formats, the leader's assignment and the
//!   signing of internal requests, all pure.
//! * `wire`, `group`, `heartbeat`: membership over the group coordinator; `broker_security`
//!   and `scram`: TLS and SASL on its connections.
//! * `cluster`: what the REST side and the membership loop share; `herder`: the REST side;
//!   `member`: the membership loop; `duties`: the work this worker runs.
//! * `process`: a distributed worker assembled from its config file.

pub(crate) mod assignor;
mod broker_security;
mod cluster;
mod duties;
#[cfg(test)]
mod fake_coordinator;
pub(crate) mod group;
#[cfg(test)]
mod group_tests;
mod heartbeat;
mod herder;
#[cfg(test)]
mod herder_tests;
mod member;
pub(crate) mod process;
pub(crate) mod protocol;
mod scram;
pub(crate) mod signature;
#[cfg(test)]
mod tansu_tests;
pub(crate) mod wire;
