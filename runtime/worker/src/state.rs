//! Connector and task states and the shapes the REST API reports them in, as Kafka Connect
//! names them: target states, runtime states, ids, infos and statuses.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sluice_api::config::Props;
use sluice_api::metrics::TaskMetrics;
use sluice_api::record::{SourceOffset, SourcePartition};

/// A connector's or task's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    Unassigned,
    Running,
    Paused,
    Failed,
    Restarting,
    Stopped,
}

/// A state with the failure trace, when failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub state: State,
    pub trace: Option<String>,
}

/// A status shared between a running task and whoever reports on it, with the gauges the
/// task publishes.
#[derive(Debug, Clone)]
pub struct StatusCell {
    status: Arc<Mutex<Status>>,
    pub metrics: TaskMetrics,
}

impl StatusCell {
    /// A cell starting in `state`.
    pub fn new(state: State) -> StatusCell {
        StatusCell {
            status: Arc::new(Mutex::new(Status { state, trace: None })),
            metrics: TaskMetrics::default(),
        }
    }

    /// The current status.
    pub fn get(&self) -> Status {
        self.status.lock().expect("status lock").clone()
    }

    /// Sets a non-failed state, clearing any trace.
    pub fn set(&self, state: State) {
        *self.status.lock().expect("status lock") = Status { state, trace: None };
    }

    /// Marks the task failed with its trace.
    pub fn fail(&self, trace: String) {
        *self.status.lock().expect("status lock") = Status {
            state: State::Failed,
            trace: Some(trace),
        };
    }
}

/// The state a connector is asked to be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TargetState {
    Started,
    Paused,
    Stopped,
}

/// `{"connector": …, "task": n}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskId {
    pub connector: String,
    pub task: u32,
}

/// Kafka Connect's `ConnectorInfo`: name, config (secrets redacted), tasks, type.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectorInfo {
    pub name: String,
    pub config: Props,
    pub tasks: Vec<TaskId>,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// The state of a connector or task in a status response.
#[derive(Debug, Clone, Serialize)]
pub struct StateInfo {
    pub state: State,
    pub worker_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

/// A task's state in a status response.
#[derive(Debug, Clone, Serialize)]
pub struct TaskState {
    pub id: u32,
    pub state: State,
    pub worker_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    /// The task's gauges (beyond Kafka Connect's shape; clients ignore unknown fields).
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub metrics: serde_json::Map<String, serde_json::Value>,
    #[serde(skip)]
    pub gauges: Vec<sluice_api::metrics::Gauge>,
}

/// Kafka Connect's `ConnectorStateInfo`.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectorStatus {
    pub name: String,
    pub connector: StateInfo,
    pub tasks: Vec<TaskState>,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// A task's id and config, secrets redacted (`GET /connectors/{c}/tasks`).
#[derive(Debug, Clone, Serialize)]
pub struct TaskInfo {
    pub id: TaskId,
    pub config: Props,
}

/// A connector plugin (`GET /connector-plugins`).
#[derive(Debug, Clone, Serialize)]
pub struct PluginInfo {
    pub class: &'static str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub version: &'static str,
}

/// One committed offset (`GET /connectors/{c}/offsets`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartitionOffset {
    pub partition: SourcePartition,
    pub offset: Option<SourceOffset>,
}
