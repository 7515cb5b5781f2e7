//! Connector and task statuses in a compacted topic, in Kafka Connect's format:
//! `status-connector-<name>` / `status-task-<name>-<n>` →
//! `{"state":…,"trace":…,"worker_id":"host:port","generation":N}`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value as Json, json};
use sluice_api::Result;

use super::config_topic::entry;
use super::log::{Cleanup, KafkaLog, LogEntry, LogRead, TopicRules};
use super::topics::Discovery;
use crate::pipeline::kafka::KafkaSettings;
use crate::state::State;

const TOPIC_PREFIX: &str = "status-topic-";
const TOPIC_SEPARATOR: &str = ":connector-";

/// The key of an active topic's record (KIP-558).
pub fn topic_key(topic: &str, connector: &str) -> String {
    format!("{TOPIC_PREFIX}{topic}{TOPIC_SEPARATOR}{connector}")
}

/// The key of a connector's (`task: None`) or task's status record.
pub fn status_key(name: &str, task: Option<u32>) -> String {
    match task {
        None => format!("status-connector-{name}"),
        Some(task) => format!("status-task-{name}-{task}"),
    }
}

/// Kafka Connect's rule for a safe status write: nothing there yet, or written by this same
/// worker, or of a generation no newer than ours.
pub fn can_write_safely(existing: Option<&Json>, worker_id: &str, generation: i64) -> bool {
    let Some(existing) = existing else {
        return true;
    };
    existing.get("worker_id").and_then(Json::as_str) == Some(worker_id)
        || existing
            .get("generation")
            .and_then(Json::as_i64)
            .is_none_or(|theirs| theirs <= generation)
}

/// A status record of a connector (`task: None`) or one of its tasks.
pub fn status_record(
    name: &str,
    task: Option<u32>,
    state: State,
    trace: Option<&str>,
    worker_id: &str,
    generation: i64,
) -> LogEntry {
    entry(
        status_key(name, task),
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
                    cleanup: Cleanup::Compact,
                },
            )
            .await?,
            statuses: Mutex::new(BTreeMap::new()),
            worker_id: worker_id.to_owned(),
        })
    }

    /// Records that task `task` of `connector` used `topic` (KIP-558), as Kafka Connect does:
    /// `status-topic-<topic>:connector-<connector>` →
    /// `{"topic":{"name","connector","task","discoverTimestamp"}}`.
    pub async fn put_topic(&self, discovery: &Discovery) -> Result<()> {
        self.log
            .write(vec![entry(
                topic_key(&discovery.topic, &discovery.connector),
                Some(json!({"topic": {
                    "name": discovery.topic,
                    "connector": discovery.connector,
                    "task": discovery.task,
                    "discoverTimestamp": discovery.discovered_ms,
                }})),
            )])
            .await
    }

    /// The topics recorded for `connector`, sorted.
    pub async fn topics_of(&self, connector: &str) -> Result<Vec<String>> {
        let suffix = format!("{TOPIC_SEPARATOR}{connector}");
        Ok(self
            .snapshot()
            .await?
            .keys()
            .filter_map(|key| key.strip_prefix(TOPIC_PREFIX)?.strip_suffix(&suffix))
            .map(str::to_owned)
            .collect())
    }

    /// Removes the topics recorded for `connector` (tombstones, as Kafka Connect's reset).
    pub async fn remove_topics(&self, connector: &str) -> Result<()> {
        let records: Vec<LogEntry> = self
            .topics_of(connector)
            .await?
            .iter()
            .map(|topic| entry(topic_key(topic, connector), None))
            .collect();
        if records.is_empty() {
            return Ok(());
        }
        self.log.write(records).await
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

    /// Removes the status of one piece of a deleted connector (`task` `None`: the connector
    /// itself), as a worker that stopped it does (Kafka Connect's `DESTROYED` state, written
    /// as a tombstone).
    pub async fn remove_one(&self, name: &str, task: Option<u32>) -> Result<()> {
        self.log
            .write(vec![entry(status_key(name, task), None)])
            .await
    }

    /// Removes a deleted connector's status and those of its tasks `0..tasks`.
    pub async fn remove(&self, name: &str, tasks: u32) -> Result<()> {
        let mut records = vec![entry(status_key(name, None), None)];
        records.extend((0..tasks).map(|t| entry(status_key(name, Some(t)), None)));
        self.log.write(records).await
    }

    /// Records a state unless another worker has written one of a newer generation (Kafka
    /// Connect's `putSafe`: a worker that lost its work in a rebalance must not overwrite
    /// the new owner's status). Returns whether it wrote.
    pub async fn put_safe(
        &self,
        name: &str,
        task: Option<u32>,
        state: State,
        trace: Option<&str>,
        generation: i64,
    ) -> Result<bool> {
        let statuses = self.snapshot().await?;
        let key = status_key(name, task);
        if !can_write_safely(statuses.get(&key), &self.worker_id, generation) {
            return Ok(false);
        }
        self.put(name, task, state, trace, generation).await?;
        Ok(true)
    }

    /// The last status per key (`status-connector-<name>`, `status-task-<name>-<n>`), after
    /// reading what arrived since the previous call.
    pub async fn snapshot(&self) -> Result<BTreeMap<String, Json>> {
        let read = self.log.read_to_end().await?;
        let mut out = self.statuses.lock().expect("status lock");
        apply_status_records(&mut out, read, self.log.topic());
        Ok(out.clone())
    }
}

/// Folds status records into `statuses` (the last value per key; a tombstone removes it). A
/// value that is not a JSON object — garbage, or another program's record — changes nothing
/// and is skipped with a warning naming the record.
pub fn apply_status_records(statuses: &mut BTreeMap<String, Json>, mut read: LogRead, topic: &str) {
    for (index, (key, value)) in std::mem::take(&mut read.entries).into_iter().enumerate() {
        let key = String::from_utf8_lossy(&key).into_owned();
        let Some(value) = value else {
            statuses.remove(&key);
            continue;
        };
        match serde_json::from_slice::<Json>(&value) {
            Ok(json) if json.is_object() => {
                statuses.insert(key, json);
            }
            _ => read.warn_skipped(
                index,
                topic,
                &key,
                "status topic record skipped: its value is not a JSON object",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_generation_from_another_worker_is_not_overwritten() {
        let by = |worker: &str, generation: i64| json!({"state": "RUNNING", "trace": null, "worker_id": worker, "generation": generation});
        assert!(can_write_safely(None, "a:8083", 1));
        assert!(
            can_write_safely(Some(&by("b:8083", 4)), "a:8083", 4),
            "same generation"
        );
        assert!(
            can_write_safely(Some(&by("b:8083", 3)), "a:8083", 4),
            "older generation"
        );
        assert!(
            !can_write_safely(Some(&by("b:8083", 5)), "a:8083", 4),
            "newer, another worker"
        );
        assert!(
            can_write_safely(Some(&by("a:8083", 5)), "a:8083", 4),
            "its own record"
        );
    }

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
