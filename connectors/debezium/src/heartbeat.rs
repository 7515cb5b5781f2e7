//! Debezium's heartbeats (`heartbeat.interval.ms`): while streaming, a record on
//! `<topic.heartbeat.prefix>.<topic.prefix>` every interval, keyed by the server name and
//! carrying the position read so far as its offset. Committing it moves the stored offset (a
//! Postgres slot, a MySQL binlog position) past changes that produced no events — writes to
//! tables that are not captured — and shows downstream that the connector is alive.
//! `heartbeat.action.query` runs on the database before each one, to make traffic in a quiet
//! database.

use std::sync::Arc;
use std::time::Duration;

use sluice_api::data::{Schema, SchemaRef, SchemaType, Struct, Value};
use sluice_api::record::{Record, SourceOffset, SourcePartition, SourceRecord};
use tokio::time::Instant;

/// The heartbeat settings and schemas, and when the last one went out.
#[derive(Debug)]
pub struct Heartbeats {
    interval: Duration,
    topic: String,
    server_name: String,
    action_query: Option<String>,
    key_schema: SchemaRef,
    value_schema: SchemaRef,
    last: Option<Instant>,
}

impl Heartbeats {
    /// Heartbeats every `interval` (`None`, i.e. `heartbeat.interval.ms=0`, Debezium's
    /// default: none) on `<topic_heartbeat_prefix>.<topic_prefix>`.
    pub fn new(
        interval: Option<Duration>,
        topic_heartbeat_prefix: &str,
        topic_prefix: &str,
        action_query: Option<String>,
    ) -> Option<Heartbeats> {
        let interval = interval?;
        Some(Heartbeats {
            interval,
            topic: format!("{topic_heartbeat_prefix}.{topic_prefix}"),
            server_name: topic_prefix.to_owned(),
            action_query,
            key_schema: Schema::struct_named("io.debezium.connector.common.ServerNameKey")
                .field("serverName", Schema::string().into_ref())
                .into_ref(),
            value_schema: Schema::struct_named("io.debezium.connector.common.Heartbeat")
                .field("ts_ms", Schema::of(SchemaType::Int64).into_ref())
                .into_ref(),
            last: None,
        })
    }

    /// Whether the interval has passed since the last heartbeat (the first one is due one
    /// interval after streaming starts).
    pub fn due(&mut self, now: Instant) -> bool {
        match self.last {
            None => {
                self.last = Some(now);
                false
            }
            Some(last) => now.duration_since(last) >= self.interval,
        }
    }

    /// The statement to run before a heartbeat, if any.
    pub fn action_query(&self) -> Option<&str> {
        self.action_query.as_deref()
    }

    /// The heartbeat record carrying `offset` (a position everything before which was handed
    /// out or produced no change event), sent at `now_ms`.
    pub fn record(
        &mut self,
        partition: &Arc<SourcePartition>,
        offset: SourceOffset,
        now_ms: i64,
    ) -> SourceRecord {
        self.last = Some(Instant::now());
        let mut key = Struct::new(Arc::clone(&self.key_schema));
        let _ = key.put("serverName", Value::from(self.server_name.as_str()));
        let mut value = Struct::new(Arc::clone(&self.value_schema));
        let _ = value.put("ts_ms", Value::Int64(now_ms));
        let mut record = Record::new(
            self.topic.clone(),
            Value::Struct(value),
            Some(Arc::clone(&self.value_schema)),
        );
        record.key = Value::Struct(key);
        record.key_schema = Some(Arc::clone(&self.key_schema));
        record.timestamp_ms = Some(now_ms);
        SourceRecord {
            record,
            source_partition: Arc::clone(partition),
            source_offset: offset,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn off_by_default_as_in_debezium() {
        assert!(Heartbeats::new(None, "__debezium-heartbeat", "dbserver1", None).is_none());
    }

    #[test]
    fn a_heartbeat_is_due_once_per_interval_with_debezium_s_topic_key_and_value() {
        let mut heartbeats = Heartbeats::new(
            Some(Duration::from_millis(1000)),
            "beats",
            "dbserver1",
            None,
        )
        .unwrap();
        let start = Instant::now();
        assert!(!heartbeats.due(start), "not at once");
        assert!(!heartbeats.due(start + Duration::from_millis(999)));
        assert!(heartbeats.due(start + Duration::from_millis(1000)));
        let partition = Arc::new(SourcePartition::new());
        let mut offset = SourceOffset::new();
        offset.insert("lsn".into(), json!(4242));
        let record = heartbeats.record(&partition, offset, 1_700_000_000_000);
        assert!(!heartbeats.due(Instant::now()), "the interval starts again");
        assert_eq!(record.record.topic, "beats.dbserver1");
        let Value::Struct(key) = &record.record.key else {
            panic!("a struct key")
        };
        assert_eq!(key.get("serverName"), Some(&Value::from("dbserver1")));
        assert_eq!(
            record.record.key_schema.as_ref().unwrap().name.as_deref(),
            Some("io.debezium.connector.common.ServerNameKey")
        );
        let Value::Struct(value) = &record.record.value else {
            panic!("a struct value")
        };
        assert_eq!(value.get("ts_ms"), Some(&Value::Int64(1_700_000_000_000)));
        assert_eq!(record.source_offset.get("lsn"), Some(&json!(4242)));
    }
}
