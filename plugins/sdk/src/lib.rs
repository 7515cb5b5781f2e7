//! The sluice plugin SDK: a transform plugin is one function from a [`Record`] to the records
//! it becomes.
//!
//! ```ignore
//! use sluice_plugin::{Config, Record};
//!
//! fn apply(mut record: Record, _config: &Config) -> Result<Vec<Record>, String> {
//!     record.topic = format!("audit.{}", record.topic);
//!     Ok(vec![record])
//! }
//!
//! sluice_plugin::transform!(apply);
//! ```
//!
//! Build it as a `cdylib` with `cargo build --release --target wasm32-wasip2` and point a
//! connector at the `.wasm` file: `transforms.x.type=wasm`, `transforms.x.module=…`, settings
//! under `transforms.x.config.*`. The interface is `plugins/wit/transform.wit`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

pub use serde_json::{self, Value as Json};

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "transform",
        pub_export_macro: true,
        default_bindings_module: "sluice_plugin::bindings",
    });
}

use bindings::sluice::plugin::types as wit;

/// A record: key, value and header values as JSON (`None` for null), as JsonConverter's
/// payload would show them.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub topic: String,
    pub partition: Option<i32>,
    pub key: Option<Json>,
    pub value: Option<Json>,
    pub timestamp_ms: Option<i64>,
    pub headers: Vec<(String, Option<Json>)>,
}

/// The plugin's settings: `transforms.<alias>.config.*` with that prefix removed.
pub type Config = BTreeMap<String, String>;

fn parse(text: Option<String>, what: &str) -> Result<Option<Json>, String> {
    text.map(|t| {
        serde_json::from_str(&t)
            .map_err(|e| format!("the host sent a {what} that is not JSON: {e}"))
    })
    .transpose()
}

impl Record {
    #[doc(hidden)]
    pub fn from_wit(record: wit::Record) -> Result<Record, String> {
        Ok(Record {
            topic: record.topic,
            partition: record.partition,
            key: parse(record.key, "key")?,
            value: parse(record.value, "value")?,
            timestamp_ms: record.timestamp_ms,
            headers: record
                .headers
                .into_iter()
                .map(|h| Ok((h.key, parse(h.value, "header")?)))
                .collect::<Result<_, String>>()?,
        })
    }

    #[doc(hidden)]
    pub fn into_wit(self) -> wit::Record {
        wit::Record {
            topic: self.topic,
            partition: self.partition,
            key: self.key.map(|k| k.to_string()),
            value: self.value.map(|v| v.to_string()),
            timestamp_ms: self.timestamp_ms,
            headers: self
                .headers
                .into_iter()
                .map(|(key, value)| wit::Header {
                    key,
                    value: value.map(|v| v.to_string()),
                })
                .collect(),
        }
    }

    /// The row state of a Debezium change event (`after`, or `before` for a delete), or the
    /// value itself for anything else: where plugins usually look for fields.
    pub fn row_mut(&mut self) -> Option<&mut serde_json::Map<String, Json>> {
        let value = self.value.as_mut()?.as_object_mut()?;
        let field = match value.get("op").and_then(Json::as_str) {
            Some("d") => "before",
            Some(_) if value.contains_key("after") => "after",
            _ => return Some(value),
        };
        value.get_mut(field)?.as_object_mut()
    }
}

#[doc(hidden)]
pub static CONFIG: OnceLock<Config> = OnceLock::new();

#[doc(hidden)]
pub fn run_init(
    config: Vec<(String, String)>,
    check: fn(&Config) -> Result<(), String>,
) -> Result<(), String> {
    let config: Config = config.into_iter().collect();
    check(&config)?;
    let _ = CONFIG.set(config);
    Ok(())
}

#[doc(hidden)]
pub fn run_apply(
    batch: Vec<wit::Record>,
    apply: fn(Record, &Config) -> Result<Vec<Record>, String>,
) -> Vec<Result<Vec<wit::Record>, String>> {
    let empty = Config::new();
    let config = CONFIG.get().unwrap_or(&empty);
    batch
        .into_iter()
        .map(|record| {
            let record = Record::from_wit(record)?;
            Ok(apply(record, config)?
                .into_iter()
                .map(Record::into_wit)
                .collect())
        })
        .collect()
}

/// Accepts any config.
pub fn accept_any_config(_: &Config) -> Result<(), String> {
    Ok(())
}

/// Exports a plugin: `transform!(apply)` or `transform!(apply, check_config)`, where
/// `apply: fn(Record, &Config) -> Result<Vec<Record>, String>` and
/// `check_config: fn(&Config) -> Result<(), String>` (an error rejects the connector config).
#[macro_export]
macro_rules! transform {
    ($apply:path) => {
        $crate::transform!($apply, $crate::accept_any_config);
    };
    ($apply:path, $check:path) => {
        struct SluicePlugin;

        impl $crate::bindings::Guest for SluicePlugin {
            fn init(config: Vec<(String, String)>) -> Result<(), String> {
                $crate::run_init(config, $check)
            }

            fn apply(
                batch: Vec<$crate::bindings::sluice::plugin::types::Record>,
            ) -> Vec<Result<Vec<$crate::bindings::sluice::plugin::types::Record>, String>> {
                $crate::run_apply(batch, $apply)
            }
        }

        $crate::bindings::export!(SluicePlugin with_types_in $crate::bindings);
    };
}
