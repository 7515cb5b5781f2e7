//! Turning records into `_bulk` actions and reading each item's answer.

use serde_json::{Map, Value as Json, json};
use sluice_api::data::Value;
use sluice_api::json::{value_to_json, value_to_json_text};
use sluice_api::record::SinkRecord;

use crate::client::BulkItem;

/// One write of one document, encoded as its `_bulk` lines.
#[derive(Debug, Clone)]
pub(crate) struct Write {
    pub index: String,
    pub id: String,
    /// The action line and, except for deletes, the document line; each ends in `\n`.
    pub lines: Vec<u8>,
    /// The record it came from, for errors and the dead letter queue.
    pub record: SinkRecord,
}

/// What a write does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// `index`: replace the document.
    Index,
    /// `update` with `doc_as_upsert`: merge into the document, creating it when missing.
    Upsert,
    /// `delete`.
    Delete,
}

impl Write {
    /// Encodes a write; `document` is the JSON object for `Index`/`Upsert`.
    pub(crate) fn new(
        action: Action,
        index: String,
        id: String,
        version: Option<i64>,
        document: Option<&[u8]>,
        record: SinkRecord,
    ) -> Write {
        let mut meta = Map::new();
        meta.insert("_index".into(), Json::String(index.clone()));
        meta.insert("_id".into(), Json::String(id.clone()));
        if let Some(version) = version {
            meta.insert("version".into(), json!(version));
            meta.insert("version_type".into(), json!("external"));
        }
        let name = match action {
            Action::Index => "index",
            Action::Upsert => "update",
            Action::Delete => "delete",
        };
        let mut lines = serde_json::to_vec(&json!({ name: meta })).unwrap_or_default();
        lines.push(b'\n');
        match (action, document) {
            (Action::Index, Some(document)) => {
                lines.extend_from_slice(document);
                lines.push(b'\n');
            }
            (Action::Upsert, Some(document)) => {
                lines.extend_from_slice(b"{\"doc\":");
                lines.extend_from_slice(document);
                lines.extend_from_slice(b",\"doc_as_upsert\":true}\n");
            }
            _ => {}
        }
        Write {
            index,
            id,
            lines,
            record,
        }
    }

    /// Where the record came from, for messages.
    pub(crate) fn origin(&self) -> String {
        format!(
            "record {}-{}@{} (index {}, id {})",
            self.record.record.topic,
            self.record.kafka_partition,
            self.record.kafka_offset,
            self.index,
            self.id
        )
    }
}

/// The error types Elasticsearch gives documents it cannot take, whatever the cluster's state
/// (Confluent's list, plus ES 8's name for a mapping failure).
const MALFORMED: &[&str] = &[
    "mapper_parsing_exception",
    "document_parsing_exception",
    "illegal_argument_exception",
    "action_request_validation_exception",
    "strict_dynamic_mapping_exception",
];

/// How one item came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Applied, or already superseded: created/updated/deleted, a delete of a missing
    /// document, or a version conflict (a newer version is there: replays are idempotent).
    Done,
    /// Try again later: 429 (queue full) or a 5xx.
    Retry(String),
    /// The document cannot be indexed as it is.
    Malformed(String),
    /// Anything else: the task fails with this reason.
    Failed(String),
}

/// Classifies an item.
pub(crate) fn outcome(item: &BulkItem) -> Outcome {
    let reason = || {
        format!(
            "{} {}: {}",
            item.status,
            item.error_type.as_deref().unwrap_or("error"),
            item.reason.as_deref().unwrap_or("(no reason given)")
        )
    };
    match item.status {
        200..=299 => Outcome::Done,
        409 => Outcome::Done,
        404 if item.result.as_deref() == Some("not_found") && item.error_type.is_none() => {
            Outcome::Done
        }
        429 | 500..=599 => Outcome::Retry(reason()),
        _ if item
            .error_type
            .as_deref()
            .is_some_and(|t| MALFORMED.contains(&t)) =>
        {
            Outcome::Malformed(reason())
        }
        _ => Outcome::Failed(reason()),
    }
}

/// The document id from a record key: primitives as text, structs and maps as compact JSON
/// (struct fields in schema order, map entries sorted), so the same key always gives the
/// same id.
pub(crate) fn key_id(key: &Value) -> Option<String> {
    match key {
        Value::Null => None,
        Value::Array(_) | Value::Map(_) | Value::Struct(_) | Value::Bytes(_) => {
            Some(sorted(value_to_json(key)).to_string())
        }
        primitive => primitive.primitive_text(),
    }
}

fn sorted(json: Json) -> Json {
    match json {
        Json::Object(map) => {
            let mut entries: Vec<(String, Json)> = map.into_iter().collect();
            // Struct fields come in schema order already; only free-form maps need sorting,
            // but sorting both keeps one rule.
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Json::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Json::Array(items) => Json::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// The document for a record value: structs and maps as JSON objects, a string holding a JSON
/// object as it is. Anything else cannot be a document.
pub(crate) fn document(value: &Value) -> Result<Vec<u8>, String> {
    match value {
        Value::Struct(_) | Value::Map(_) => Ok(value_to_json_text(value).into_bytes()),
        Value::String(text) => match serde_json::from_str::<Json>(text) {
            Ok(Json::Object(_)) => Ok(text.as_bytes().to_vec()),
            _ => Err(
                "the value is a string that is not a JSON object; a document must be an object \
                 (wrap it with HoistField$Value, or use JsonConverter)"
                    .to_owned(),
            ),
        },
        other => Err(format!(
            "a {} value cannot be a document; a document must be an object (wrap it with \
             HoistField$Value)",
            other.kind_name()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_api::data::{Schema, Struct};
    use sluice_api::record::Record;

    fn item(status: u16, result: Option<&str>, error_type: Option<&str>) -> BulkItem {
        BulkItem {
            status,
            result: result.map(str::to_owned),
            error_type: error_type.map(str::to_owned),
            reason: error_type.map(|_| "because".to_owned()),
        }
    }

    #[test]
    fn items_are_classified_as_elasticsearch_documents_them() {
        assert_eq!(outcome(&item(201, Some("created"), None)), Outcome::Done);
        assert_eq!(
            outcome(&item(409, None, Some("version_conflict_engine_exception"))),
            Outcome::Done
        );
        assert_eq!(outcome(&item(404, Some("not_found"), None)), Outcome::Done);
        assert!(matches!(
            outcome(&item(404, None, Some("index_not_found_exception"))),
            Outcome::Failed(_)
        ));
        assert!(matches!(
            outcome(&item(429, None, Some("es_rejected_execution_exception"))),
            Outcome::Retry(_)
        ));
        assert!(matches!(
            outcome(&item(503, None, Some("unavailable_shards_exception"))),
            Outcome::Retry(_)
        ));
        let Outcome::Malformed(reason) =
            outcome(&item(400, None, Some("mapper_parsing_exception")))
        else {
            panic!("not malformed")
        };
        assert_eq!(reason, "400 mapper_parsing_exception: because");
    }

    #[test]
    fn ids_are_deterministic() {
        let schema = Schema::struct_named("k")
            .field("b", Schema::string())
            .field("a", Schema::of(sluice_api::data::SchemaType::Int32))
            .into_ref();
        let mut key = Struct::new(schema);
        key.put("b", Value::String("x".into())).unwrap();
        key.put("a", Value::Int32(1)).unwrap();
        assert_eq!(key_id(&Value::Struct(key)).unwrap(), r#"{"a":1,"b":"x"}"#);
        let map = Value::Map(vec![
            (Value::String("z".into()), Value::Int64(2)),
            (Value::String("y".into()), Value::Int64(1)),
        ]);
        assert_eq!(key_id(&map).unwrap(), r#"{"y":1,"z":2}"#);
        assert_eq!(key_id(&Value::Int64(42)).unwrap(), "42");
        assert_eq!(key_id(&Value::Null), None);
    }

    #[test]
    fn bulk_lines_follow_the_documented_format() {
        let record = SinkRecord {
            record: Record::new("t", Value::Null, None),
            kafka_partition: 0,
            kafka_offset: 7,
        };
        let index = Write::new(
            Action::Index,
            "t".into(),
            "1".into(),
            Some(7),
            Some(br#"{"a":1}"#),
            record.clone(),
        );
        assert_eq!(
            String::from_utf8(index.lines).unwrap(),
            "{\"index\":{\"_index\":\"t\",\"_id\":\"1\",\"version\":7,\"version_type\":\"external\"}}\n{\"a\":1}\n"
        );
        let upsert = Write::new(
            Action::Upsert,
            "t".into(),
            "1".into(),
            None,
            Some(br#"{"a":1}"#),
            record.clone(),
        );
        assert_eq!(
            String::from_utf8(upsert.lines).unwrap(),
            "{\"update\":{\"_index\":\"t\",\"_id\":\"1\"}}\n{\"doc\":{\"a\":1},\"doc_as_upsert\":true}\n"
        );
        let delete = Write::new(Action::Delete, "t".into(), "1".into(), None, None, record);
        assert_eq!(
            String::from_utf8(delete.lines).unwrap(),
            "{\"delete\":{\"_index\":\"t\",\"_id\":\"1\"}}\n"
        );
        assert!(document(&Value::String("[1]".into())).is_err());
        assert_eq!(
            document(&Value::String(r#"{"a":1}"#.into())).unwrap(),
            br#"{"a":1}"#
        );
    }
}
