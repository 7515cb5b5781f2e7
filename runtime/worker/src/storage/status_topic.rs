//! Connector and task statuses in a compacted topic, in Kafka Connect's format:
//! `status-connector-<name>` / `status-task-<name>-<n>` →
//! `{"state":…,"trace":…,"worker_id":"host:port","generation":N}`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value as Json, json};
use sluice_api::Result;

use super::config_topic::entry;
use super::log::{KafkaLog, LogEntry, TopicRules};
use crate::pipeline::kafka::KafkaSettings;
use crate::state::State;

/// A status record of a connector (`task: None`) or one of its tasks.
pub fn status_record(
    name: &str,
    task: Option<u32>,
    state: State,
    trace: Option<&str>,
    worker_id: &str,
    generation: i64,
) -> LogEntry {
    let key = match task {
        None => format!("status-connector-{name}"),
        Some(task) => format!("status-task-{name}-{task}"),
    };
    entry(
        key,
        Some(
            json!({"state": state, "trace": trace, "worker_id": worker_id, "generation": generation}),
        ),
    )
}

/// The status topic.
#[derive(Debug)]
pub struct KafkaStatusStore {
    log: KafkaLog,
    worker_id: String,
    /// What was read so far, folded.
    statuses: Mutex<BTreeMap<String, Json>>,
}

impl KafkaStatusStore {
    /// Opens the status topic (compacted), creating it when missing.
    pub async fn open(
        settings: Arc<KafkaSettings>,
        topic: &str,
        partitions: i32,
        replication_factor: i32,
        worker_id: &str,
    ) -> Result<KafkaStatusStore> {
        Ok(KafkaStatusStore {
            log: KafkaLog::open(
                settings,
                topic,
                TopicRules {
                    partitions,
                    replication_factor,
                    exact_partitions: false,
                },
            )
            .await?,
            statuses: Mutex::new(BTreeMap::new()),
            worker_id: worker_id.to_owned(),
        })
    }

    /// Records a connector's or task's state.
    pub async fn put(
        &self,
        name: &str,
        task: Option<u32>,
        state: State,
        trace: Option<&str>,
        generation: i64,
    ) -> Result<()> {
        self.log
            .write(vec![status_record(
                name,
                task,
                state,
                trace,
                &self.worker_id,
                generation,
            )])
            .await
    }

    /// The last status per key (`status-connector-<name>`, `status-task-<name>-<n>`), after
    /// reading what arrived since the previous call.
    pub async fn snapshot(&self) -> Result<BTreeMap<String, Json>> {
        let read = self.log.read_to_end().await?;
        let mut out = self.statuses.lock().expect("status lock");
        for (key, value) in read.entries {
            let key = String::from_utf8_lossy(&key).into_owned();
            match value.and_then(|v| serde_json::from_slice(&v).ok()) {
                Some(json) => {
                    out.insert(key, json);
                }
                None => {
                    out.remove(&key);
                }
            }
        }
        Ok(out.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_records_use_kafka_connect_keys_and_values() {
        let (key, value) = status_record(
            "src",
            Some(0),
            State::Failed,
            Some("boom"),
            "127.0.0.1:8083",
            3,
        );
        assert_eq!(key, b"status-task-src-0");
        assert_eq!(
            String::from_utf8(value.unwrap()).unwrap(),
            r#"{"state":"FAILED","trace":"boom","worker_id":"127.0.0.1:8083","generation":3}"#
        );
    }
}
