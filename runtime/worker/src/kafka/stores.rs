//! Connector configs and statuses in compacted topics, with Kafka Connect's key and value
//! formats (so a Kafka Connect cluster and sluice read each other's records):
//!
//! * config topic: `connector-<name>` → `{"properties":{…}}`, `task-<name>-<n>` →
//!   `{"properties":{…}}`, `commit-<name>` → `{"tasks":N}`, `target-state-<name>` →
//!   `{"state":"STARTED|PAUSED|STOPPED"}`; a deleted connector is a null `connector-<name>`.
//! * status topic: `status-connector-<name>` / `status-task-<name>-<n>` →
//!   `{"state":…,"trace":…,"worker_id":"host:port","generation":N}`.
//!
//! The standalone worker keeps both in memory; the distributed herder will run on these.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value as Json, json};
use sluice_api::Result;
use sluice_api::config::Props;

use super::KafkaSettings;
use super::log::{KafkaLog, LogEntry};
use crate::herder::TargetState;
use crate::status::State;

fn entry(key: String, value: Option<Json>) -> LogEntry {
    (key.into_bytes(), value.map(|v| v.to_string().into_bytes()))
}

/// The records that store a connector's config and its task configs, in Kafka Connect's
/// order: the connector, each task, then the commit that makes the task set visible.
pub fn connector_config_records(name: &str, config: &Props, tasks: &[Props]) -> Vec<LogEntry> {
    let mut records = vec![entry(
        format!("connector-{name}"),
        Some(json!({"properties": config})),
    )];
    for (index, task) in tasks.iter().enumerate() {
        records.push(entry(
            format!("task-{name}-{index}"),
            Some(json!({"properties": task})),
        ));
    }
    records.push(entry(
        format!("commit-{name}"),
        Some(json!({"tasks": tasks.len()})),
    ));
    records
}

/// The record of a connector's target state.
pub fn target_state_record(name: &str, state: TargetState) -> LogEntry {
    entry(
        format!("target-state-{name}"),
        Some(json!({"state": state})),
    )
}

/// The records that delete a connector.
pub fn connector_deletion_records(name: &str) -> Vec<LogEntry> {
    vec![
        entry(format!("connector-{name}"), None),
        entry(format!("target-state-{name}"), None),
    ]
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

/// What a config topic says, read to its end.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ConfigSnapshot {
    pub connectors: BTreeMap<String, Props>,
    /// Committed task configs per connector (only sets whose `commit-` record arrived).
    pub tasks: BTreeMap<String, Vec<Props>>,
    pub target_states: BTreeMap<String, TargetState>,
}

fn properties(value: &Json) -> Option<Props> {
    value.get("properties")?.as_object().map(|o| {
        o.iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string()),
                )
            })
            .collect()
    })
}

/// Folds config records into the current state, as Kafka Connect's config backing store does.
pub fn read_config_records(records: &[LogEntry]) -> ConfigSnapshot {
    let mut snapshot = ConfigSnapshot::default();
    let mut pending_tasks: BTreeMap<String, BTreeMap<usize, Props>> = BTreeMap::new();
    for (key, value) in records {
        let key = String::from_utf8_lossy(key);
        let value: Option<Json> = value.as_ref().and_then(|v| serde_json::from_slice(v).ok());
        if let Some(name) = key.strip_prefix("connector-") {
            match value.as_ref().and_then(properties) {
                Some(props) => {
                    snapshot.connectors.insert(name.to_owned(), props);
                }
                None => {
                    snapshot.connectors.remove(name);
                    snapshot.tasks.remove(name);
                    snapshot.target_states.remove(name);
                }
            }
        } else if let Some(rest) = key.strip_prefix("task-") {
            let Some((name, index)) = rest.rsplit_once('-') else {
                continue;
            };
            if let (Ok(index), Some(props)) =
                (index.parse::<usize>(), value.as_ref().and_then(properties))
            {
                pending_tasks
                    .entry(name.to_owned())
                    .or_default()
                    .insert(index, props);
            }
        } else if let Some(name) = key.strip_prefix("commit-") {
            let count = value
                .as_ref()
                .and_then(|v| v["tasks"].as_u64())
                .unwrap_or(0) as usize;
            let pending = pending_tasks.remove(name).unwrap_or_default();
            let tasks: Vec<Props> = (0..count)
                .filter_map(|i| pending.get(&i).cloned())
                .collect();
            if tasks.len() == count {
                snapshot.tasks.insert(name.to_owned(), tasks);
            }
        } else if let Some(name) = key.strip_prefix("target-state-") {
            let state = match value.as_ref().and_then(|v| v["state"].as_str()) {
                Some("PAUSED") => Some(TargetState::Paused),
                Some("STOPPED") => Some(TargetState::Stopped),
                Some("STARTED") => Some(TargetState::Started),
                _ => None,
            };
            match state {
                Some(state) => {
                    snapshot.target_states.insert(name.to_owned(), state);
                }
                None => {
                    snapshot.target_states.remove(name);
                }
            }
        }
    }
    snapshot
}

/// The config topic.
pub struct KafkaConfigStore {
    log: KafkaLog,
}

impl KafkaConfigStore {
    /// Opens the config topic (one partition, compacted), creating it when missing.
    pub async fn open(
        settings: Arc<KafkaSettings>,
        topic: &str,
        replication_factor: i32,
    ) -> Result<KafkaConfigStore> {
        Ok(KafkaConfigStore {
            log: KafkaLog::open(settings, topic, 1, replication_factor).await?,
        })
    }

    /// Stores a connector's config and task configs.
    pub async fn put_connector(&self, name: &str, config: &Props, tasks: &[Props]) -> Result<()> {
        self.log
            .write(connector_config_records(name, config, tasks))
            .await
    }

    /// Stores a target state.
    pub async fn put_target_state(&self, name: &str, state: TargetState) -> Result<()> {
        self.log.write(vec![target_state_record(name, state)]).await
    }

    /// Deletes a connector.
    pub async fn remove_connector(&self, name: &str) -> Result<()> {
        self.log.write(connector_deletion_records(name)).await
    }

    /// Reads everything to the end.
    pub async fn snapshot(&self) -> Result<ConfigSnapshot> {
        Ok(read_config_records(&self.log.read_to_end().await?))
    }
}

/// The status topic.
pub struct KafkaStatusStore {
    log: KafkaLog,
    worker_id: String,
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
            log: KafkaLog::open(settings, topic, partitions, replication_factor).await?,
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

    /// The last status per key (`status-connector-<name>`, `status-task-<name>-<n>`).
    pub async fn snapshot(&self) -> Result<BTreeMap<String, Json>> {
        let mut out = BTreeMap::new();
        for (key, value) in self.log.read_to_end().await? {
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
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_api::config::props;

    #[test]
    fn records_use_kafka_connect_keys_and_values() {
        let records =
            connector_config_records("src", &props(&[("file", "a")]), &[props(&[("file", "a")])]);
        let text: Vec<(String, String)> = records
            .iter()
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(k).into_owned(),
                    String::from_utf8_lossy(v.as_ref().unwrap()).into_owned(),
                )
            })
            .collect();
        assert_eq!(
            text,
            [
                (
                    "connector-src".to_owned(),
                    r#"{"properties":{"file":"a"}}"#.to_owned()
                ),
                (
                    "task-src-0".to_owned(),
                    r#"{"properties":{"file":"a"}}"#.to_owned()
                ),
                ("commit-src".to_owned(), r#"{"tasks":1}"#.to_owned()),
            ]
        );
        let (key, value) = target_state_record("src", TargetState::Paused);
        assert_eq!(
            (key.as_slice(), value.unwrap().as_slice()),
            (&b"target-state-src"[..], &br#"{"state":"PAUSED"}"#[..])
        );
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

    #[test]
    fn folding_keeps_committed_tasks_and_honours_deletions() {
        let mut records = connector_config_records(
            "a",
            &props(&[("x", "1")]),
            &[props(&[("t", "0")]), props(&[("t", "1")])],
        );
        records.push(target_state_record("a", TargetState::Stopped));
        records.extend(connector_config_records("b", &props(&[("y", "2")]), &[]));
        // An uncommitted task set (no commit- record yet) is not visible.
        records.push(entry(
            "task-b-0".into(),
            Some(json!({"properties": {"late": "1"}})),
        ));
        records.extend(connector_deletion_records("a"));
        let snapshot = read_config_records(&records);
        assert_eq!(snapshot.connectors.keys().collect::<Vec<_>>(), ["b"]);
        assert_eq!(snapshot.tasks.get("b"), Some(&Vec::new()));
        assert!(snapshot.target_states.is_empty());
        let snapshot = read_config_records(&records[..5]);
        assert_eq!(snapshot.tasks["a"].len(), 2);
        assert_eq!(snapshot.target_states["a"], TargetState::Stopped);
    }
}
