//! The event-shaping keys every Debezium connector documents, parsed once: which operations
//! are skipped, headers, message keys, column rules, name adjustment, binary values and what
//! a failing event does.

use sluice_api::config::{Config, Props};
use sluice_api::{Error, Result};

use crate::columns::ColumnRules;
use crate::key_columns::MessageKeyColumns;
use crate::names::NameAdjustment;
use crate::operations::SkippedOperations;

/// `binary.handling.mode`: how binary columns are emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BinaryMode {
    /// Connect `bytes` (JsonConverter writes base64).
    #[default]
    Bytes,
    /// A base64 string.
    Base64,
    /// A URL-safe base64 string.
    Base64UrlSafe,
    /// A hexadecimal string.
    Hex,
}

/// `event.processing.failure.handling.mode`: what an event that cannot be converted does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailureMode {
    /// The task fails, naming the event (the default: nothing is lost silently).
    #[default]
    Fail,
    /// The event is logged with the problem and left out.
    Warn,
    /// The event is left out (counted, logged at debug level).
    Skip,
}

/// The parsed keys.
#[derive(Debug, Clone, Default)]
pub struct EventOptions {
    /// `skipped.operations`.
    pub skipped: SkippedOperations,
    /// `extended.headers.enabled`.
    pub extended_headers: bool,
    /// `message.key.columns`.
    pub key_columns: MessageKeyColumns,
    /// The `column.*` pattern keys and the source-type propagation lists.
    pub columns: ColumnRules,
    /// `schema.name.adjustment.mode`.
    pub schema_names: NameAdjustment,
    /// `field.name.adjustment.mode`.
    pub field_names: NameAdjustment,
    /// `binary.handling.mode`.
    pub binary: BinaryMode,
    /// `event.processing.failure.handling.mode`.
    pub on_failure: FailureMode,
    /// `include.unknown.datatypes`.
    pub include_unknown: bool,
}

impl EventOptions {
    /// Reads the keys from a config validated against a definition holding
    /// [`crate::config::event_keys`], and the pattern keys from the raw `props`.
    pub fn new(config: &Config, props: &Props) -> Result<EventOptions> {
        Ok(EventOptions {
            skipped: SkippedOperations::parse(&config.string("skipped.operations")?)?,
            extended_headers: config.bool("extended.headers.enabled")?,
            key_columns: MessageKeyColumns::parse(&config.string("message.key.columns")?)?,
            columns: ColumnRules::from_props(props)?,
            schema_names: NameAdjustment::parse(
                "schema.name.adjustment.mode",
                &config.string("schema.name.adjustment.mode")?,
            )?,
            field_names: NameAdjustment::parse(
                "field.name.adjustment.mode",
                &config.string("field.name.adjustment.mode")?,
            )?,
            binary: match config
                .string("binary.handling.mode")?
                .to_ascii_lowercase()
                .as_str()
            {
                "base64" => BinaryMode::Base64,
                "base64-url-safe" => BinaryMode::Base64UrlSafe,
                "hex" => BinaryMode::Hex,
                "bytes" => BinaryMode::Bytes,
                other => {
                    return Err(Error::config(format!(
                        "`binary.handling.mode={other}`: the modes are bytes, base64, base64-url-safe and hex"
                    )));
                }
            },
            on_failure: match config
                .string("event.processing.failure.handling.mode")?
                .to_ascii_lowercase()
                .as_str()
            {
                "warn" => FailureMode::Warn,
                "skip" | "ignore" => FailureMode::Skip,
                _ => FailureMode::Fail,
            },
            include_unknown: config.bool("include.unknown.datatypes")?,
        })
    }
}
