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

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

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

use sluice_plugin_frame as frame;

/// A record key or value: JSON, parsed only when the plugin looks at it. A record the plugin
/// passes on without touching its key or value goes back as the very text that came in, with
/// no parse and no re-serialisation (and the host then keeps its schema exactly).
#[derive(Clone, Default)]
pub struct Payload {
    /// The text as received (a view into the batch, not a copy), while the plugin has not
    /// asked to change it.
    received: Option<Received>,
    parsed: OnceCell<Option<Json>>,
    changed: bool,
    /// Which input record it came from, so "unchanged" is only ever said to the host about
    /// the record it was received with (a plugin may keep payloads across calls).
    origin: Option<u64>,
}

/// Where a received payload's text sits in its batch. Kept past the call (a plugin holding a
/// record), it keeps that batch alive.
#[derive(Clone)]
struct Received {
    batch: Arc<Vec<u8>>,
    start: usize,
    end: usize,
}

impl Received {
    fn new(batch: &Arc<Vec<u8>>, text: &str) -> Received {
        let start = text.as_ptr() as usize - batch.as_ptr() as usize;
        Received {
            batch: Arc::clone(batch),
            start,
            end: start + text.len(),
        }
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.batch[self.start..self.end])
            .expect("validated when the batch was read")
    }
}

impl Payload {
    fn received(batch: &Arc<Vec<u8>>, text: Option<&str>, origin: u64) -> Payload {
        Payload {
            received: text.map(|text| Received::new(batch, text)),
            parsed: OnceCell::new(),
            changed: false,
            origin: Some(origin),
        }
    }

    /// The JSON, `None` for null.
    pub fn get(&self) -> Option<&Json> {
        self.parsed
            .get_or_init(|| {
                self.received.as_ref().map(|received| {
                    // The host only ever sends what serde_json wrote.
                    serde_json::from_str(received.text()).expect("the sluice host sends valid JSON")
                })
            })
            .as_ref()
    }

    /// The JSON for changing in place; the payload is re-serialised when it goes back.
    pub fn get_mut(&mut self) -> &mut Option<Json> {
        self.get();
        self.changed = true;
        self.received = None;
        self.parsed.get_mut().expect("parsed just above")
    }

    /// Replaces the JSON (`None` for null).
    pub fn set(&mut self, json: Option<Json>) {
        self.received = None;
        self.parsed = OnceCell::from(json);
        self.changed = true;
    }

    /// How it goes back to the host as part of the output of input record `origin`;
    /// `written` holds the JSON text of a changed payload.
    fn outgoing<'a>(&'a self, origin: u64, written: &'a mut String) -> frame::Payload<'a> {
        if !self.changed && self.origin == Some(origin) {
            return frame::Payload::Unchanged;
        }
        match (&self.received, self.parsed.get()) {
            (Some(received), _) => frame::Payload::Json(received.text()),
            (None, Some(Some(json))) => {
                *written = json.to_string();
                frame::Payload::Json(written)
            }
            (None, _) => frame::Payload::Null,
        }
    }
}

impl From<Option<Json>> for Payload {
    fn from(json: Option<Json>) -> Payload {
        let mut payload = Payload::default();
        payload.set(json);
        payload
    }
}

impl From<Json> for Payload {
    fn from(json: Json) -> Payload {
        Payload::from(Some(json))
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Payload) -> bool {
        self.get() == other.get()
    }
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

/// A record: key and value as JSON [`Payload`]s (the payload JsonConverter would write, `None`
/// for null), header values as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub topic: String,
    pub partition: Option<i32>,
    pub key: Payload,
    pub value: Payload,
    pub timestamp_ms: Option<i64>,
    pub headers: Vec<(String, Option<Json>)>,
}

/// The plugin's settings: `transforms.<alias>.config.*` with that prefix removed.
pub type Config = BTreeMap<String, String>;

impl Record {
    /// A new record for `topic` (fan-out): no partition, timestamp or headers.
    pub fn new(topic: impl Into<String>, key: Option<Json>, value: Option<Json>) -> Record {
        Record {
            topic: topic.into(),
            partition: None,
            key: key.into(),
            value: value.into(),
            timestamp_ms: None,
            headers: Vec::new(),
        }
    }

    fn received(
        batch: &Arc<Vec<u8>>,
        record: frame::InputRecord<'_>,
        origin: u64,
    ) -> Result<Record, String> {
        Ok(Record {
            topic: record.topic.to_owned(),
            partition: record.partition,
            key: Payload::received(batch, record.key, origin),
            value: Payload::received(batch, record.value, origin),
            timestamp_ms: record.timestamp_ms,
            headers: record
                .headers
                .into_iter()
                .map(|(key, text)| {
                    let value = text
                        .map(serde_json::from_str)
                        .transpose()
                        .map_err(|e| format!("the host sent header {key} that is not JSON: {e}"))?;
                    Ok((key.to_owned(), value))
                })
                .collect::<Result<_, String>>()?,
        })
    }

    /// Writes it as an output of input record `origin`.
    fn put(&self, out: &mut Vec<u8>, origin: u64) {
        let (mut key_text, mut value_text) = (String::new(), String::new());
        let headers: Vec<(&str, Option<String>)> = self
            .headers
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_ref().map(Json::to_string)))
            .collect();
        let record = frame::OutputRecord {
            topic: &self.topic,
            partition: self.partition,
            timestamp_ms: self.timestamp_ms,
            key: self.key.outgoing(origin, &mut key_text),
            value: self.value.outgoing(origin, &mut value_text),
            headers: headers.iter().map(|(k, v)| (*k, v.as_deref())).collect(),
        };
        frame::put_output_record(out, &record);
    }

    /// The row state of a Debezium change event (`after`, or `before` for a delete), or the
    /// value itself for anything else: where plugins usually look for fields.
    pub fn row(&self) -> Option<&serde_json::Map<String, Json>> {
        let value = self.value.get()?.as_object()?;
        match row_field(value) {
            Some(field) => value.get(field)?.as_object(),
            None => Some(value),
        }
    }

    /// [`row`](Record::row), for changing it (the value is re-serialised when it goes back).
    pub fn row_mut(&mut self) -> Option<&mut serde_json::Map<String, Json>> {
        let value = self.value.get_mut().as_mut()?.as_object_mut()?;
        match row_field(value) {
            Some(field) => value.get_mut(field)?.as_object_mut(),
            None => Some(value),
        }
    }
}

/// Where a Debezium change event keeps its row; `None` when the value is not one.
fn row_field(value: &serde_json::Map<String, Json>) -> Option<&'static str> {
    match value.get("op").and_then(Json::as_str) {
        Some("d") => Some("before"),
        Some(_) if value.contains_key("after") => Some("after"),
        _ => None,
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
    batch: Vec<u8>,
    apply: fn(Record, &Config) -> Result<Vec<Record>, String>,
) -> Vec<u8> {
    static RECEIVED: AtomicU64 = AtomicU64::new(0);
    let empty = Config::new();
    let config = CONFIG.get().unwrap_or(&empty);
    let batch = Arc::new(batch);
    let mut reader = frame::Reader::new(&batch);
    // The host writes what it reads; a batch it could not have written is a broken host.
    let count = reader
        .count(frame::MIN_RECORD_SIZE)
        .expect("a batch from the sluice host");
    let mut out = Vec::with_capacity(batch.len());
    for _ in 0..count {
        let input = reader.input_record().expect("a batch from the sluice host");
        let origin = RECEIVED.fetch_add(1, Ordering::Relaxed);
        match Record::received(&batch, input, origin).and_then(|record| apply(record, config)) {
            Ok(records) => {
                frame::put_u8(&mut out, frame::RECORD_BECAME);
                frame::put_len(&mut out, records.len());
                for record in &records {
                    record.put(&mut out, origin);
                }
            }
            Err(message) => {
                frame::put_u8(&mut out, frame::RECORD_FAILED);
                frame::put_str(&mut out, &message);
            }
        }
    }
    out
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

            fn apply(batch: Vec<u8>) -> Vec<u8> {
                $crate::run_apply(batch, $apply)
            }
        }

        $crate::bindings::export!(SluicePlugin with_types_in $crate::bindings);
    };
}
