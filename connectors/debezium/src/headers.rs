//! The headers Debezium puts on change events: the other key of a primary-key change, and
//! (`extended.headers.enabled`, on by default) which connector and task produced the event.

use sluice_api::data::{SchemaRef, Text, Value};
use sluice_api::record::{Header, Record};

/// On the delete event of a primary-key change: the row's new key.
pub const NEW_KEY: &str = "__debezium.newkey";
/// On the create event of a primary-key change: the row's old key.
pub const OLD_KEY: &str = "__debezium.oldkey";

/// Marks an event of the delete half of a primary-key change (the delete and its tombstone)
/// with the row's new key in [`NEW_KEY`]: the key struct under the key schema, as the header
/// converter then writes it (`{"id":1004}` with Kafka's `SimpleHeaderConverter`).
pub fn mark_new_key(record: &mut Record, new_key: &Value, key_schema: Option<&SchemaRef>) {
    // First, before the context headers, as Debezium adds it when it creates the event.
    record.headers.insert(
        0,
        Header {
            key: Text::from_static(NEW_KEY),
            value: new_key.clone(),
            schema: key_schema.cloned(),
        },
    );
}

/// Marks the create half of a primary-key change with the row's old key in [`OLD_KEY`].
pub fn mark_old_key(record: &mut Record, old_key: &Value, key_schema: Option<&SchemaRef>) {
    record.headers.insert(
        0,
        Header {
            key: Text::from_static(OLD_KEY),
            value: old_key.clone(),
            schema: key_schema.cloned(),
        },
    );
}

/// `__debezium.context.*`: the connector's logical name (`topic.prefix`), the task id and the
/// connector's type name, as string headers on every change event.
#[derive(Debug, Clone)]
pub struct ContextHeaders {
    headers: Vec<Header>,
}

impl ContextHeaders {
    /// The headers of task `task_id` of a connector of type `connector` (`postgresql`,
    /// `mysql`, …) whose `topic.prefix` is `logical_name`.
    pub fn new(logical_name: &str, task_id: u32, connector: &str) -> ContextHeaders {
        // Static names, interned values and no schema object: stamping copies them onto every
        // event, and the thread that drops the event is not the one that built it, so a shared
        // reference count would be two contended atomic operations per header and event. The
        // bytes are the same: Kafka Connect's header converter writes a string header as its
        // text whether its schema is STRING or inferred from the value.
        let header = |key: &'static str, value: String| Header {
            key: Text::from_static(key),
            value: Value::String(Text::interned(&value)),
            schema: None,
        };
        ContextHeaders {
            headers: vec![
                header(
                    "__debezium.context.connectorLogicalName",
                    logical_name.to_owned(),
                ),
                header("__debezium.context.taskId", task_id.to_string()),
                header("__debezium.context.connectorName", connector.to_owned()),
            ],
        }
    }

    /// Adds the headers to `record`.
    pub fn stamp(&self, record: &mut Record) {
        record.headers.extend(self.headers.iter().cloned());
    }
}
