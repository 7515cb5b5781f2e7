//! Settings of the file connectors, with Kafka Connect's key names and defaults.

use sluice_api::config::{Config, ConfigDef, ConfigKey, ConfigType, Importance, Props, Validator};
use sluice_api::{Error, Result};

/// The `FileStreamSource` definition.
pub(crate) fn source_config_def() -> ConfigDef {
    ConfigDef::new()
        .key(
            ConfigKey::required(
                "file",
                ConfigType::String,
                Importance::High,
                "Source filename to tail. Lines appended later are picked up.",
            )
            .validate_with(Validator::NonEmpty),
        )
        .key(
            ConfigKey::required(
                "topic",
                ConfigType::List,
                Importance::High,
                "The topic to publish each line to.",
            )
            .validate_with(Validator::NonEmpty),
        )
        .key(
            ConfigKey::optional(
                "batch.size",
                ConfigType::Int,
                "2000",
                Importance::Low,
                "The maximum number of lines returned by one poll.",
            )
            .validate_with(Validator::Range {
                min: 1,
                max: i64::from(i32::MAX),
            }),
        )
        .key(
            ConfigKey::optional(
                "max.line.bytes",
                ConfigType::Int,
                "1048576",
                Importance::Low,
                "The longest line read, in bytes (sluice's own key). A longer line fails the \
                 task naming its byte offset, or with errors.tolerance=all is skipped and logged; \
                 it bounds the memory a line without end (or /dev/zero) can take.",
            )
            .validate_with(Validator::Range {
                min: 1,
                max: i64::from(i32::MAX),
            }),
        )
}

/// The `FileStreamSink` definition.
pub(crate) fn sink_config_def() -> ConfigDef {
    ConfigDef::new()
        .key(ConfigKey::optional(
            "file",
            ConfigType::String,
            "",
            Importance::High,
            "Destination filename. Empty writes to standard output.",
        ))
        .key(
            ConfigKey::optional(
                "format",
                ConfigType::String,
                "text",
                Importance::Low,
                "`text`: the value as a line (strings as-is, other values as JSON). \
                 `json`: one JSON object per record with topic, partition, offset, timestamp, \
                 key, value and headers.",
            )
            .validate_with(Validator::OneOf(vec!["text", "json"])),
        )
}

/// Settings of one `FileStreamSource` task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSourceConfig {
    /// The file to tail.
    pub file: String,
    /// The topic every line goes to.
    pub topic: String,
    /// At most this many lines per poll.
    pub batch_size: usize,
    /// The longest line read, in bytes.
    pub max_line_bytes: usize,
}

impl FileSourceConfig {
    /// Reads and checks the settings.
    pub fn from_props(props: &Props) -> Result<FileSourceConfig> {
        let config = Config::parse_own(source_config_def(), props)?;
        let topics = config.list("topic");
        if topics.len() != 1 {
            return Err(Error::config(format!(
                "`topic` must name exactly one topic, got `{}`",
                config.get("topic").unwrap_or_default()
            )));
        }
        Ok(FileSourceConfig {
            file: config.string("file")?,
            topic: topics[0].clone(),
            batch_size: usize::try_from(config.i64("batch.size")?).unwrap_or(2000),
            max_line_bytes: usize::try_from(config.i64("max.line.bytes")?).unwrap_or(1 << 20),
        })
    }
}

/// How the sink writes each record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkFormat {
    /// The value as one line.
    Text,
    /// One JSON object per record (the test oracle of the CDC connectors).
    Json,
}

/// Settings of one `FileStreamSink` task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSinkConfig {
    /// The file to append to; `None` writes to standard output.
    pub file: Option<String>,
    /// Line format.
    pub format: SinkFormat,
}

impl FileSinkConfig {
    /// Reads and checks the settings.
    pub fn from_props(props: &Props) -> Result<FileSinkConfig> {
        let config = Config::parse_own(sink_config_def(), props)?;
        let file = config.string("file")?;
        let format = if config.string("format")?.eq_ignore_ascii_case("json") {
            SinkFormat::Json
        } else {
            SinkFormat::Text
        };
        Ok(FileSinkConfig {
            file: (!file.trim().is_empty()).then_some(file),
            format,
        })
    }
}
