//! An Elasticsearch/OpenSearch sink configured like Confluent's `ElasticsearchSinkConnector`:
//! bulk writes, the record key as document id, tombstones as deletes, per-item results read
//! one by one, retries with backoff that keep each document's writes in order, and offsets
//! committed only for what the cluster acknowledged.

mod bulk;
mod client;
mod config;
mod sink;

pub use client::{BulkItem, ClusterInfo, EsClient};
pub use config::{ElasticsearchSinkConfig, MalformedDocuments, NullValues, Versioning};
pub use sink::{ElasticsearchSinkConnector, ElasticsearchSinkTask};

use sluice_api::connector::{ConnectorFactory, ConnectorPlugin};

/// `io.confluent.connect.elasticsearch.ElasticsearchSinkConnector`, alias `elasticsearch`.
pub const ELASTICSEARCH_SINK: ConnectorPlugin = ConnectorPlugin {
    class: "io.confluent.connect.elasticsearch.ElasticsearchSinkConnector",
    aliases: &["elasticsearch"],
    version: env!("CARGO_PKG_VERSION"),
    config_def: config::config_def,
    validate: config::validate,
    factory: ConnectorFactory::Sink(|| Box::new(ElasticsearchSinkConnector::default())),
};
