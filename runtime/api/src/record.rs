//! Records as they flow through sluice: the common [`Record`], and its source and sink forms.

use std::sync::Arc;

use crate::data::{SchemaRef, Text, Value};

/// A source partition (`{"filename": "test.txt"}`, `{"server": "dbserver1"}`): which stream of
/// the external system a record came from. JSON-shaped, as in Kafka Connect.
pub type SourcePartition = serde_json::Map<String, serde_json::Value>;

/// A source offset (`{"position": 1024}`, `{"lsn": 123, "txId": 7}`): how far into its source
/// partition a record is. Committing it means "everything up to here is durable downstream".
pub type SourceOffset = serde_json::Map<String, serde_json::Value>;

/// A record header.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// The header's name; several headers may share one. Usually static or shared (a
    /// source puts the same names on every record).
    pub key: Text,
    /// The header's value.
    pub value: Value,
    /// The value's schema, when it has one.
    pub schema: Option<SchemaRef>,
}

/// The part of a record every stage sees: Kafka Connect's `ConnectRecord`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Record {
    /// The topic: where a source record is sent; for a sink record, the topic it was read
    /// from (or the name a transform gave it). Shared or static when a source sends many
    /// records to one topic ([`Text`]).
    pub topic: Text,
    /// Kafka partition, when the source or a transform chose one.
    pub partition: Option<i32>,
    /// The record key; [`Value::Null`] when it has none.
    pub key: Value,
    /// The key's schema; `None` for a schemaless key.
    pub key_schema: Option<SchemaRef>,
    /// [`Value::Null`] makes the record a tombstone.
    pub value: Value,
    /// The value's schema; `None` for a schemaless value.
    pub value_schema: Option<SchemaRef>,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: Option<i64>,
    /// The headers, in order.
    pub headers: Vec<Header>,
}

impl Record {
    /// Roughly how many bytes this record occupies in memory: topic, key, value and headers
    /// with what they own. For memory budgets (`direct.buffer.bytes`), not exact accounting.
    pub fn approx_bytes(&self) -> usize {
        std::mem::size_of::<Record>()
            + self.topic.owned_bytes()
            + self.key.approx_bytes()
            + self.value.approx_bytes()
            + self
                .headers
                .iter()
                .map(|h| h.key.owned_bytes() + h.value.approx_bytes())
                .sum::<usize>()
    }

    /// A record with a value and no key.
    pub fn new(topic: impl Into<Text>, value: Value, value_schema: Option<SchemaRef>) -> Record {
        Record {
            topic: topic.into(),
            value,
            value_schema,
            ..Record::default()
        }
    }

    /// The last header with this key.
    pub fn header(&self, key: &str) -> Option<&Header> {
        self.headers.iter().rev().find(|h| h.key == key)
    }
}

/// A record produced by a source task, with the position it was read at.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRecord {
    /// The record itself.
    pub record: Record,
    /// Shared by every record of the same partition, hence reference counted.
    pub source_partition: Arc<SourcePartition>,
    /// The offset to resume *after* this record.
    pub source_offset: SourceOffset,
}

/// A Kafka topic and partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic's name.
    pub topic: String,
    /// The partition's number within the topic, from 0.
    pub partition: i32,
}

/// A record delivered to a sink task, with its position in the (Kafka or direct) topic.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkRecord {
    /// The record itself.
    pub record: Record,
    /// The partition of [`Record::topic`] it was read from.
    pub kafka_partition: i32,
    /// Its offset within that partition.
    pub kafka_offset: i64,
}

impl SinkRecord {
    /// The topic partition this record was read from.
    pub fn topic_partition(&self) -> TopicPartition {
        TopicPartition {
            topic: self.record.topic.to_string(),
            partition: self.kafka_partition,
        }
    }
}
