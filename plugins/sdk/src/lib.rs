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

/// A record key or value: JSON, fetched from the host and parsed only when the plugin looks
/// at it. A record the plugin passes on without touching its key or value costs no JSON at all:
/// it goes back as "unchanged" and the host keeps its original value and schema exactly.
#[derive(Clone, Default)]
pub struct Payload {
    /// Where the received key or value is, while the plugin has not asked to change it.
    received: Option<Received>,
    /// Its JSON text, once fetched.
    text: OnceCell<Option<String>>,
    parsed: OnceCell<Option<Json>>,
    changed: bool,
}

/// A key or value of an input record: which batch, which record, which of the two.
#[derive(Clone)]
struct Received {
    batch: Arc<Batch>,
    index: u32,
    key: bool,
    present: bool,
}

/// The batch an `apply` call is running on, as its payloads see it.
#[derive(Default)]
struct Batch {
    /// The host answers `host.payload` only during the call. When records of the batch outlive
    /// it (a plugin that keeps records), their texts are fetched into here before it returns.
    kept: OnceLock<Vec<(Option<String>, Option<String>)>>,
}

impl Received {
    fn fetch(&self) -> Option<String> {
        if !self.present {
            return None;
        }
        match self.batch.kept.get() {
            Some(kept) => {
                let (key, value) = &kept[self.index as usize];
                if self.key { key.clone() } else { value.clone() }
            }
            None => bindings::sluice::plugin::host::payload(self.index, self.key),
        }
    }

    fn is(&self, batch: &Arc<Batch>, index: u32, key: bool) -> bool {
        Arc::ptr_eq(&self.batch, batch) && self.index == index && self.key == key
    }
}

impl Payload {
    fn received(batch: &Arc<Batch>, index: u32, key: bool, present: bool) -> Payload {
        Payload {
            received: Some(Received {
                batch: Arc::clone(batch),
                index,
                key,
                present,
            }),
            ..Payload::default()
        }
    }

    fn text(&self) -> Option<&str> {
        self.text
            .get_or_init(|| self.received.as_ref().and_then(Received::fetch))
            .as_deref()
    }

    /// The JSON (`None` for null), parsed on first use.
    pub fn get(&self) -> Option<&Json> {
        self.parsed
            .get_or_init(|| {
                // The host only ever sends what serde_json wrote.
                self.text().map(|text| {
                    serde_json::from_str(text).expect("the sluice host sends valid JSON")
                })
            })
            .as_ref()
    }

    /// The JSON to change in place; the record then carries the changed JSON.
    pub fn get_mut(&mut self) -> &mut Option<Json> {
        self.get();
        self.changed = true;
        self.received = None;
        self.parsed.get_mut().expect("parsed just above")
    }

    /// Replaces the JSON (`None` for null).
    pub fn set(&mut self, json: Option<Json>) {
        self.received = None;
        self.text = OnceCell::new();
        self.parsed = OnceCell::from(json);
        self.changed = true;
    }

    /// Whether it is, untouched, the key (`key`) or value of input record `index` of `batch`.
    fn is_own(&self, batch: &Arc<Batch>, index: u32, key: bool) -> bool {
        !self.changed
            && self
                .received
                .as_ref()
                .is_some_and(|r| r.is(batch, index, key))
    }

    /// How it goes back as the key (`key`) or value of an output of input record `index` of
    /// `batch`: "unchanged" when it is exactly that record's own, else its text (`written`
    /// holds text serialised here).
    fn outgoing<'a>(
        &'a self,
        batch: &Arc<Batch>,
        index: u32,
        key: bool,
        written: &'a mut String,
    ) -> frame::Payload<'a> {
        if self.is_own(batch, index, key) {
            return frame::Payload::Unchanged;
        }
        if self.received.is_some() {
            return match self.text() {
                Some(text) => frame::Payload::Json(text),
                None => frame::Payload::Null,
            };
        }
        match self.parsed.get() {
            Some(Some(json)) => {
                *written = json.to_string();
                frame::Payload::Json(written)
            }
            _ => frame::Payload::Null,
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
        batch: &Arc<Batch>,
        index: u32,
        record: &frame::InputRecord<'_>,
    ) -> Result<Record, String> {
        Ok(Record {
            topic: record.topic.to_owned(),
            partition: record.partition,
            key: Payload::received(batch, index, true, record.has_key),
            value: Payload::received(batch, index, false, record.has_value),
            timestamp_ms: record.timestamp_ms,
            headers: record
                .headers
                .iter()
                .map(|&(key, text)| {
                    let value = text
                        .map(serde_json::from_str)
                        .transpose()
                        .map_err(|e| format!("the host sent header {key} that is not JSON: {e}"))?;
                    Ok((key.to_owned(), value))
                })
                .collect::<Result<_, String>>()?,
        })
    }

    /// Whether it is input record `index` of `batch` exactly as it came (`input` is that
    /// record as read from the batch), so it can go back as "kept".
    fn is_kept(&self, input: &frame::InputRecord<'_>, batch: &Arc<Batch>, index: u32) -> bool {
        // Headers are compared only when there are none: they arrive parsed, and proving a
        // parsed header unchanged would cost more than sending it back.
        self.headers.is_empty()
            && input.headers.is_empty()
            && self.topic == input.topic
            && self.partition == input.partition
            && self.timestamp_ms == input.timestamp_ms
            && self.key.is_own(batch, index, true)
            && self.value.is_own(batch, index, false)
    }

    /// Writes it as an output of input record `index` of `batch`.
    fn put(&self, out: &mut Vec<u8>, batch: &Arc<Batch>, index: u32) {
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
            key: self.key.outgoing(batch, index, true, &mut key_text),
            value: self.value.outgoing(batch, index, false, &mut value_text),
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
    bytes: Vec<u8>,
    apply: fn(Record, &Config) -> Result<Vec<Record>, String>,
) -> Vec<u8> {
    let empty = Config::new();
    let config = CONFIG.get().unwrap_or(&empty);
    let batch = Arc::new(Batch::default());
    let mut reader = frame::Reader::new(&bytes);
    // The host writes what it reads; a batch it could not have written is a broken host.
    let count = reader
        .count(frame::MIN_RECORD_SIZE)
        .expect("a batch from the sluice host");
    let mut out = Vec::with_capacity(bytes.len());
    for index in 0..count as u32 {
        let input = reader.input_record().expect("a batch from the sluice host");
        match Record::received(&batch, index, &input).and_then(|record| apply(record, config)) {
            Ok(records) if records.len() == 1 && records[0].is_kept(&input, &batch, index) => {
                frame::put_u8(&mut out, frame::RECORD_KEPT);
            }
            Ok(records) => {
                frame::put_u8(&mut out, frame::RECORD_BECAME);
                frame::put_len(&mut out, records.len());
                for record in &records {
                    record.put(&mut out, &batch, index);
                }
            }
            Err(message) => {
                frame::put_u8(&mut out, frame::RECORD_FAILED);
                frame::put_str(&mut out, &message);
            }
        }
    }
    if Arc::strong_count(&batch) > 1 {
        // The plugin kept records of this batch: after this call the host can no longer be
        // asked for their keys and values, so fetch them now.
        let kept = (0..count as u32)
            .map(|index| {
                let fetch = |key| bindings::sluice::plugin::host::payload(index, key);
                (fetch(true), fetch(false))
            })
            .collect();
        let _ = batch.kept.set(kept);
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

        impl $crate::bindings::exports::sluice::plugin::transformer::Guest for SluicePlugin {
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
