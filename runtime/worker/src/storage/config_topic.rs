//! Connector configs in a compacted topic, in Kafka Connect's key and value formats (so a
//! Kafka Connect cluster and sluice read each other's records): `connector-<name>` →
//! `{"properties":{…}}`, `task-<name>-<n>` → `{"properties":{…}}`, `commit-<name>` →
//! `{"tasks":N}`, `target-state-<name>` → `{"state":"STARTED|PAUSED|STOPPED"}`; a deleted
//! connector is a null `connector-<name>`. Also `session-key` (the leader's key for signed
//! internal requests) and `restart-connector-<name>` → `{"include-tasks","only-failed"}`;
//! `tasks-fencing-<name>` and `logger-cluster-<namespace>` are kept as they are and not acted on.
//!
//! The standalone worker keeps configs in memory; the distributed herder runs on this.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value as Json, json};
use sluice_api::Result;
use sluice_api::config::Props;

use super::log::{Cleanup, KafkaLog, LogEntry, LogRead, TopicRules};
use crate::pipeline::kafka::KafkaSettings;
use crate::state::TargetState;

pub(super) fn entry(key: String, value: Option<Json>) -> LogEntry {
    (key.into_bytes(), value.map(|v| v.to_string().into_bytes()))
}

/// The records that store a connector's config and its task configs, in Kafka Connect's
/// order: the connector, each task, then the commit that makes the task set visible.
pub fn connector_config_records(name: &str, config: &Props, tasks: &[Props]) -> Vec<LogEntry> {
    let mut records = vec![connector_record(name, config)];
    records.extend(task_config_records(name, tasks));
    records
}

/// The record of a connector's config alone (distributed mode: its tasks come later, from
/// the worker that runs the connector).
pub fn connector_record(name: &str, config: &Props) -> LogEntry {
    entry(
        format!("connector-{name}"),
        Some(json!({"properties": config})),
    )
}

/// The records of a connector's task configs: each task, then the commit that makes the set
/// visible.
pub fn task_config_records(name: &str, tasks: &[Props]) -> Vec<LogEntry> {
    let mut records = Vec::with_capacity(tasks.len() + 1);
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

/// The record of a connector's target state. As Kafka Connect writes it: `state.v2` holds the
/// state, and `state` the same except that STOPPED is written PAUSED there, which workers
/// older than KIP-875 understand.
pub fn target_state_record(name: &str, state: TargetState) -> LogEntry {
    let compatible = match state {
        TargetState::Stopped => TargetState::Paused,
        other => other,
    };
    entry(
        format!("target-state-{name}"),
        Some(json!({"state": compatible, "state.v2": state})),
    )
}

/// The record of a restart request (`POST /connectors/{c}/restart` in distributed mode).
pub fn restart_request_record(name: &str, include_tasks: bool, only_failed: bool) -> LogEntry {
    entry(
        format!("restart-connector-{name}"),
        Some(json!({"include-tasks": include_tasks, "only-failed": only_failed})),
    )
}

/// The `session-key` record (its value built by the distributed herder's signature module).
pub fn session_key_record(value: Json) -> LogEntry {
    entry("session-key".to_owned(), Some(value))
}

/// A restart request read from the config topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartRequest {
    pub include_tasks: bool,
    pub only_failed: bool,
    /// Counts requests for the connector, so a reader sees a new one even if it equals the last.
    pub sequence: u64,
}

/// The records that delete a connector.
pub fn connector_deletion_records(name: &str) -> Vec<LogEntry> {
    vec![
        entry(format!("connector-{name}"), None),
        entry(format!("target-state-{name}"), None),
    ]
}

/// What a config topic says, read to its end.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigSnapshot {
    /// Each connector's config.
    pub connectors: BTreeMap<String, Props>,
    /// Committed task configs per connector (only sets whose `commit-` record arrived).
    pub tasks: BTreeMap<String, Vec<Props>>,
    /// Each connector's target state.
    pub target_states: BTreeMap<String, TargetState>,
    /// The offset of the last record read plus one; -1 before any (Kafka Connect's config
    /// offset, which distributed workers compare before running anything).
    pub offset: i64,
    /// The latest `session-key` record's value.
    pub session_key: Option<Json>,
    /// The latest restart request per connector.
    pub restart_requests: BTreeMap<String, RestartRequest>,
    /// Records sluice keeps but does not act on (`tasks-fencing-…`, `logger-cluster-…`, and
    /// keys it does not know), so nothing Kafka Connect wrote is lost on a rewrite.
    pub other: BTreeMap<String, Json>,
}

impl Default for ConfigSnapshot {
    fn default() -> ConfigSnapshot {
        ConfigSnapshot {
            connectors: BTreeMap::new(),
            tasks: BTreeMap::new(),
            target_states: BTreeMap::new(),
            offset: -1,
            session_key: None,
            restart_requests: BTreeMap::new(),
            other: BTreeMap::new(),
        }
    }
}

/// A config topic being folded: the snapshot so far, and task configs written but not yet
/// committed (they become visible with their `commit-` record).
#[derive(Debug, Clone, Default)]
pub struct ConfigState {
    snapshot: ConfigSnapshot,
    pending_tasks: BTreeMap<String, BTreeMap<usize, Props>>,
}

fn target_state(value: &Json) -> Option<TargetState> {
    // `state.v2` first: Kafka Connect writes a STOPPED connector as `"state":"PAUSED"` there.
    let named = value
        .get("state.v2")
        .and_then(Json::as_str)
        .or_else(|| value.get("state").and_then(Json::as_str))?;
    match named {
        "PAUSED" => Some(TargetState::Paused),
        "STOPPED" => Some(TargetState::Stopped),
        "STARTED" => Some(TargetState::Started),
        _ => None,
    }
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

/// Folds config records into a fresh state, as Kafka Connect's config backing store does.
pub fn read_config_records(records: &[LogEntry]) -> ConfigSnapshot {
    let mut state = ConfigState::default();
    state.apply(records);
    state.snapshot().clone()
}

impl ConfigState {
    /// The state after everything applied so far.
    pub fn snapshot(&self) -> &ConfigSnapshot {
        &self.snapshot
    }

    /// Applies records read after those applied so far; a record that is not what its key
    /// says (garbage, another program's) is skipped with a warning.
    pub fn apply(&mut self, records: &[LogEntry]) {
        for (key, value) in records {
            let key = String::from_utf8_lossy(key);
            if let Some(why) = self.apply_one(&key, value.as_deref()) {
                tracing::warn!(key = %key, "config topic record skipped: {why}");
            }
        }
    }

    /// [`ConfigState::apply`] of a read of `topic`, the warnings naming each skipped
    /// record's partition and offset.
    pub fn apply_read(&mut self, read: &LogRead, topic: &str) {
        for (index, (key, value)) in read.entries.iter().enumerate() {
            let key = String::from_utf8_lossy(key);
            if let Some(why) = self.apply_one(&key, value.as_deref()) {
                read.warn_skipped(
                    index,
                    topic,
                    &key,
                    &format!("config topic record skipped: {why}"),
                );
            }
        }
    }

    /// Applies one record; why it was skipped, when it was.
    fn apply_one(&mut self, key: &str, value: Option<&[u8]>) -> Option<&'static str> {
        let snapshot = &mut self.snapshot;
        // A tombstone (no value) is a deletion; a value that is not JSON is nobody's record
        // and deletes nothing.
        let value: Option<Json> = match value {
            None => None,
            Some(bytes) => match serde_json::from_slice(bytes) {
                Ok(json) => Some(json),
                Err(_) => return Some("its value is not JSON"),
            },
        };
        if let Some(name) = key.strip_prefix("connector-") {
            match &value {
                Some(json) => match properties(json) {
                    Some(props) => {
                        snapshot.connectors.insert(name.to_owned(), props);
                    }
                    None => return Some("a connector record without a `properties` object"),
                },
                None => {
                    snapshot.connectors.remove(name);
                    snapshot.tasks.remove(name);
                    snapshot.target_states.remove(name);
                }
            }
        } else if let Some(rest) = key.strip_prefix("task-") {
            let Some(index) = rest
                .rsplit_once('-')
                .and_then(|(name, index)| Some((name, index.parse::<usize>().ok()?)))
            else {
                return Some("a task key without a task number");
            };
            let (name, index) = index;
            if let Some(json) = &value {
                let Some(props) = properties(json) else {
                    return Some("a task record without a `properties` object");
                };
                self.pending_tasks
                    .entry(name.to_owned())
                    .or_default()
                    .insert(index, props);
            }
        } else if let Some(name) = key.strip_prefix("commit-") {
            if value.as_ref().is_some_and(|v| !v["tasks"].is_u64()) {
                return Some("a commit record without a `tasks` count");
            }
            let count = value
                .as_ref()
                .and_then(|v| v["tasks"].as_u64())
                .unwrap_or(0) as usize;
            let pending = self.pending_tasks.remove(name).unwrap_or_default();
            let tasks: Vec<Props> = (0..count)
                .filter_map(|i| pending.get(&i).cloned())
                .collect();
            if tasks.len() == count {
                snapshot.tasks.insert(name.to_owned(), tasks);
            }
        } else if let Some(name) = key.strip_prefix("target-state-") {
            match &value {
                Some(json) => match target_state(json) {
                    Some(state) => {
                        snapshot.target_states.insert(name.to_owned(), state);
                    }
                    None => return Some("a target state record without a known `state`"),
                },
                None => {
                    snapshot.target_states.remove(name);
                }
            }
        } else if let Some(name) = key.strip_prefix("restart-connector-") {
            let flag = |field: &str| {
                value
                    .as_ref()
                    .and_then(|v| v.get(field))
                    .and_then(Json::as_bool)
                    .unwrap_or(false)
            };
            let sequence = snapshot
                .restart_requests
                .get(name)
                .map_or(1, |r| r.sequence + 1);
            snapshot.restart_requests.insert(
                name.to_owned(),
                RestartRequest {
                    include_tasks: flag("include-tasks"),
                    only_failed: flag("only-failed"),
                    sequence,
                },
            );
        } else if key == "session-key" {
            if value.is_some() {
                snapshot.session_key = value;
            }
        } else {
            // `tasks-fencing-…`, `logger-cluster-…` and anything newer: kept, not acted on.
            match value {
                Some(value) => {
                    snapshot.other.insert(key.to_owned(), value);
                }
                None => {
                    snapshot.other.remove(key);
                }
            }
        }
        None
    }
}

/// The config topic.
#[derive(Debug)]
pub struct KafkaConfigStore {
    log: KafkaLog,
    /// What was read so far, folded.
    state: Mutex<ConfigState>,
}

impl KafkaConfigStore {
    /// Opens the config topic (one partition, compacted), creating it when missing.
    pub async fn open(
        settings: Arc<KafkaSettings>,
        topic: &str,
        replication_factor: i32,
    ) -> Result<KafkaConfigStore> {
        let rules = TopicRules {
            partitions: 1,
            replication_factor,
            exact_partitions: true,
            cleanup: Cleanup::Compact,
        };
        Ok(KafkaConfigStore {
            log: KafkaLog::open(settings, topic, rules).await?,
            state: Mutex::new(ConfigState::default()),
        })
    }

    /// Writes records in order; durable on `Ok`.
    pub async fn write(&self, records: Vec<LogEntry>) -> Result<()> {
        self.log.write(records).await
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

    /// Reads what arrived since the previous call, to the end, and returns the state.
    pub async fn snapshot(&self) -> Result<ConfigSnapshot> {
        let read = self.log.read_to_end().await?;
        let mut state = self.state.lock().expect("config state lock");
        state.apply_read(&read, self.log.topic());
        state.snapshot.offset = read.offset();
        Ok(state.snapshot.clone())
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
            (
                &b"target-state-src"[..],
                &br#"{"state":"PAUSED","state.v2":"PAUSED"}"#[..]
            )
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

    #[test]
    fn a_stopped_target_state_is_written_and_read_as_kafka_connect_does() {
        let (_, value) = target_state_record("a", TargetState::Stopped);
        assert_eq!(
            String::from_utf8(value.unwrap()).unwrap(),
            r#"{"state":"PAUSED","state.v2":"STOPPED"}"#,
            "older workers read PAUSED; KIP-875 workers read state.v2"
        );
        // Kafka Connect's own records: `state.v2` wins; without it, `state` counts.
        let records = [
            entry(
                "target-state-a".into(),
                Some(json!({"state": "PAUSED", "state.v2": "STOPPED"})),
            ),
            entry("target-state-b".into(), Some(json!({"state": "PAUSED"}))),
        ];
        let snapshot = read_config_records(&records);
        assert_eq!(snapshot.target_states["a"], TargetState::Stopped);
        assert_eq!(snapshot.target_states["b"], TargetState::Paused);
    }

    /// Records as Kafka Connect writes them (built by hand from KafkaConfigBackingStore's
    /// formats): a session key, restart requests, fencing and logger records.
    #[test]
    fn kafka_connects_session_restart_fencing_and_logger_records_are_read_and_kept() {
        let raw =
            |key: &str, value: &str| (key.as_bytes().to_vec(), Some(value.as_bytes().to_vec()));
        let records = vec![
            raw(
                "session-key",
                r#"{"key":"c2VjcmV0","algorithm":"HmacSHA256","creation-timestamp":1700000000000}"#,
            ),
            raw(
                "connector-a",
                r#"{"properties":{"connector.class":"FileStreamSource"}}"#,
            ),
            raw(
                "restart-connector-a",
                r#"{"include-tasks":true,"only-failed":false}"#,
            ),
            raw(
                "restart-connector-a",
                r#"{"include-tasks":true,"only-failed":false}"#,
            ),
            raw("tasks-fencing-a", r#"{"epoch":3}"#),
            raw(
                "logger-cluster-org.apache.kafka.connect",
                r#"{"level":"DEBUG"}"#,
            ),
        ];
        let snapshot = read_config_records(&records);
        assert_eq!(
            snapshot.session_key.as_ref().unwrap()["algorithm"],
            "HmacSHA256"
        );
        assert_eq!(
            snapshot.restart_requests["a"],
            RestartRequest {
                include_tasks: true,
                only_failed: false,
                sequence: 2
            },
            "a repeated request is seen as new"
        );
        assert_eq!(snapshot.other["tasks-fencing-a"], json!({"epoch": 3}));
        assert_eq!(
            snapshot.other["logger-cluster-org.apache.kafka.connect"]["level"],
            "DEBUG"
        );
        // And what sluice writes reads back the same.
        let (key, value) = restart_request_record("a", false, true);
        assert_eq!(
            (
                String::from_utf8(key).unwrap(),
                String::from_utf8(value.unwrap()).unwrap()
            ),
            (
                "restart-connector-a".to_owned(),
                r#"{"include-tasks":false,"only-failed":true}"#.to_owned()
            )
        );
        let again = read_config_records(&[session_key_record(
            json!({"key": "eA==", "algorithm": "HmacSHA256", "creation-timestamp": 5}),
        )]);
        assert_eq!(again.session_key.unwrap()["creation-timestamp"], 5);
    }

    #[test]
    fn records_applied_in_two_reads_fold_as_in_one() {
        let records = connector_config_records("a", &props(&[("x", "1")]), &[props(&[("t", "0")])]);
        let mut state = ConfigState::default();
        // The task record arrives in the first read, its commit in the second.
        state.apply(&records[..2]);
        assert!(state.snapshot().tasks.is_empty());
        state.apply(&records[2..]);
        assert_eq!(state.snapshot(), &read_config_records(&records));
        assert_eq!(state.snapshot().tasks["a"].len(), 1);
    }

    #[test]
    fn garbage_and_foreign_records_are_skipped_and_delete_nothing() {
        let mut records =
            connector_config_records("a", &props(&[("x", "1")]), &[props(&[("t", "0")])]);
        records.extend([
            (b"connector-a".to_vec(), Some(b"\x00not json".to_vec())),
            (
                b"connector-a".to_vec(),
                Some(br#"{"config": "someone else's"}"#.to_vec()),
            ),
            (b"task-a-x".to_vec(), Some(b"{}".to_vec())),
            (b"commit-a".to_vec(), Some(br#"{"tasks": "many"}"#.to_vec())),
            (
                b"target-state-a".to_vec(),
                Some(br#"{"state": "DANCING"}"#.to_vec()),
            ),
            (b"another-program".to_vec(), Some(b"\xff\xfe".to_vec())),
        ]);
        let snapshot = read_config_records(&records);
        assert_eq!(snapshot.connectors["a"]["x"], "1");
        assert_eq!(snapshot.tasks["a"].len(), 1);
        assert!(!snapshot.target_states.contains_key("a"));
        assert!(snapshot.other.is_empty());
        // A real tombstone still deletes.
        records.push((b"connector-a".to_vec(), None));
        assert!(read_config_records(&records).connectors.is_empty());
    }
}
