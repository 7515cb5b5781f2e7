//! The control plane the REST API talks to. The standalone herder implements it now; the
//! distributed herder will implement the same trait, so the REST layer is shared.

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value as Json;
use sluice_api::Result;
use sluice_api::config::Props;
use sluice_api::record::{SourceOffset, SourcePartition};

use crate::status::State;

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

/// A task's id and config (`GET /connectors/{c}/tasks`).
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

/// What the REST API can ask of a worker (or worker group).
///
/// Every method that names a connector fails with
/// [`ErrorKind::NotFound`](sluice_api::ErrorKind::NotFound) when there is none, and configs in
/// answers have their secrets redacted.
#[async_trait]
pub trait Herder: Send + Sync {
    /// `host:port` of this worker.
    fn worker_id(&self) -> String;

    /// Names of all connectors, sorted.
    async fn connector_names(&self) -> Vec<String>;

    /// A connector's config and tasks.
    async fn connector_info(&self, name: &str) -> Result<ConnectorInfo>;

    /// A connector's and its tasks' states.
    async fn connector_status(&self, name: &str) -> Result<ConnectorStatus>;

    /// Creates a connector, or with `replace` updates it. Returns the info and whether it was
    /// created. Fails with `Conflict` when it exists and `replace` is false.
    async fn put_connector(
        &self,
        name: &str,
        config: Props,
        replace: bool,
    ) -> Result<(ConnectorInfo, bool)>;

    /// Merges `patch` into a connector's config (`None` removes a key).
    async fn patch_connector(
        &self,
        name: &str,
        patch: Vec<(String, Option<String>)>,
    ) -> Result<ConnectorInfo>;

    /// Stops and removes a connector; with `cleanup`, then lets a source remove what it keeps
    /// in its external system (see `SourceConnector::cleanup`).
    async fn delete_connector(&self, name: &str, cleanup: bool) -> Result<()>;

    /// A connector's task configs.
    async fn task_infos(&self, name: &str) -> Result<Vec<TaskInfo>>;

    /// One task's state.
    async fn task_status(&self, name: &str, task: u32) -> Result<TaskState>;

    /// Restarts a connector, and with `include_tasks` its tasks (only failed ones with
    /// `only_failed`).
    async fn restart_connector(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> Result<()>;

    /// Restarts one task.
    async fn restart_task(&self, name: &str, task: u32) -> Result<()>;

    /// Pauses, resumes or stops a connector.
    async fn set_target_state(&self, name: &str, target: TargetState) -> Result<()>;

    /// A connector's committed offsets.
    async fn offsets(&self, name: &str) -> Result<Vec<PartitionOffset>>;

    /// Alters offsets of a STOPPED connector (`offset: None` removes the partition).
    async fn alter_offsets(&self, name: &str, offsets: Vec<PartitionOffset>) -> Result<()>;

    /// Removes every offset of a STOPPED connector.
    async fn reset_offsets(&self, name: &str) -> Result<()>;

    /// The connector plugins this worker has.
    fn plugins(&self) -> Vec<PluginInfo>;

    /// The config definition of a plugin (`GET /connector-plugins/{p}/config`).
    fn plugin_config(&self, plugin: &str) -> Result<Json>;

    /// Validates a config for a plugin; Kafka Connect's `ConfigInfos` JSON.
    async fn validate(&self, plugin: &str, config: Props) -> Result<Json>;
}
