//! Kafka Connect's file connectors: [`FILE_SOURCE`] tails a file line by line, [`FILE_SINK`]
//! appends one line per record (or one JSON object per record with `format=json`).

mod config;
mod sink;
mod source;

pub use config::{FileSinkConfig, FileSourceConfig, SinkFormat};
pub use sink::{FileSinkConnector, FileSinkTask};
pub use source::{FileSourceConnector, FileSourceTask};

use sluice_api::connector::{ConnectorFactory, ConnectorPlugin, no_cross_field_checks};
use sluice_api::{Error, Result};

/// Runs blocking file work (`what`, for errors) on tokio's blocking pool, so that a file that
/// blocks — a FIFO with no reader or writer, a hung mount — holds one pool thread, never the
/// async threads that run REST and the other tasks.
pub(crate) async fn off_thread<T: Send + 'static>(
    what: String,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::fatal(format!("{what} ended abnormally: {e}")))
}

/// `FileStreamSource`: one record per line, offset = byte position after the line.
pub const FILE_SOURCE: ConnectorPlugin = ConnectorPlugin {
    class: "org.apache.kafka.connect.file.FileStreamSourceConnector",
    aliases: &["file"],
    version: env!("CARGO_PKG_VERSION"),
    config_def: config::source_config_def,
    validate: no_cross_field_checks,
    factory: ConnectorFactory::Source(|| Box::new(FileSourceConnector::default())),
};

/// `FileStreamSink`: one line per record, synced on flush.
pub const FILE_SINK: ConnectorPlugin = ConnectorPlugin {
    class: "org.apache.kafka.connect.file.FileStreamSinkConnector",
    aliases: &["file"],
    version: env!("CARGO_PKG_VERSION"),
    config_def: config::sink_config_def,
    validate: no_cross_field_checks,
    factory: ConnectorFactory::Sink(|| Box::new(FileSinkConnector::default())),
};
