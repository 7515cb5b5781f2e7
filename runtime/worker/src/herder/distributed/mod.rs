//! Distributed mode (issue 17), landing piece by piece: a worker group coordinated by Kafka's
//! group coordinator with Kafka Connect's protocol. What is here so far is pure and tested
//! without a broker; the herder that uses it is not built yet, hence `dead_code` allowed
//! outside tests.

#![cfg_attr(not(test), allow(dead_code))]

pub(crate) mod assignor;
#[cfg(test)]
mod fake_coordinator;
pub(crate) mod group;
#[cfg(test)]
mod group_tests;
pub(crate) mod protocol;
pub(crate) mod signature;
#[cfg(test)]
mod tansu_tests;
pub(crate) mod wire;
