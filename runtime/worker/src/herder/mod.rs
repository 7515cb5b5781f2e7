//! The control plane the REST API talks to: the [`Herder`] trait. The standalone herder
//! implements it over one [`Worker`](crate::worker::Worker); the distributed herder implements
//! the same trait over the same worker with a group of workers behind it, so the REST layer
//! is shared.

pub(crate) mod distributed;
mod plugins;
pub(crate) mod standalone;

use async_trait::async_trait;
use serde_json::Value as Json;
use sluice_api::Error;
use sluice_api::Result;
use sluice_api::config::{Props, REDACTED};
use sluice_api::connector::ConnectorPlugin;

use crate::config::connector::full_def;

use crate::state::{
    ConnectorInfo, ConnectorStatus, PartitionOffset, PluginInfo, TargetState, TaskInfo, TaskState,
};

/// What the REST API can ask of a worker (or worker group).
///
/// Every method that names a connector fails with
/// [`ErrorKind::NotFound`](sluice_api::ErrorKind::NotFound) when there is none, and configs in
/// answers have their secrets redacted.
#[async_trait]
pub trait Herder: Send + Sync {
    /// `host:port` of this worker.
    fn worker_id(&self) -> String;

    /// This worker's metrics (`GET /metrics`).
    fn metrics(&self) -> std::sync::Arc<crate::metrics::WorkerMetrics>;

    /// The topics this worker's tasks used, and the `topic.tracking.*` settings.
    fn active_topics(&self) -> std::sync::Arc<crate::storage::topics::ActiveTopics>;

    /// The topics connector `name` used since it was created or reset (KIP-558), sorted. As
    /// in Kafka Connect, a connector that does not exist has none.
    async fn connector_topics(&self, name: &str) -> Result<Vec<String>> {
        Ok(self.active_topics().topics(name))
    }

    /// Forgets the topics connector `name` used; its tasks report them again as they go on.
    async fn reset_connector_topics(&self, name: &str) -> Result<()> {
        self.active_topics().reset(name);
        Ok(())
    }

    /// Names of all connectors, sorted.
    async fn connector_names(&self) -> Vec<String>;

    /// A connector's config and tasks.
    async fn connector_info(&self, name: &str) -> Result<ConnectorInfo>;

    /// A connector's and its tasks' states.
    async fn connector_status(&self, name: &str) -> Result<ConnectorStatus>;

    /// Every connector's status, in name order; one deleted while they are read is left out.
    async fn statuses(&self) -> Vec<ConnectorStatus> {
        let mut statuses = Vec::new();
        for name in self.connector_names().await {
            if let Ok(status) = self.connector_status(&name).await {
                statuses.push(status);
            }
        }
        statuses
    }

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

    /// One task's state, from [`Herder::connector_status`].
    async fn task_status(&self, name: &str, task: u32) -> Result<TaskState> {
        self.connector_status(name)
            .await?
            .tasks
            .into_iter()
            .find(|t| t.id == task)
            .ok_or_else(|| Error::not_found(format!("Task {name}-{task} not found")))
    }

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

    /// Kafka Connect's internal `POST /connectors/{c}/tasks`: in a worker group, the worker
    /// running a connector hands the task configs it generated to the leader, signed with the
    /// group's session key (KIP-507). `signature` and `algorithm` are the request's
    /// `X-Connect-Authorization` and `X-Connect-Request-Signature-Algorithm` headers. Fails
    /// with the HTTP status to answer: 400 unsigned, 403 wrongly signed, 503 no key yet, 404
    /// where there is no group (standalone).
    async fn put_task_configs(
        &self,
        name: &str,
        body: &[u8],
        signature: Option<&str>,
        algorithm: Option<&str>,
    ) -> std::result::Result<(), (u16, String)> {
        let _ = (body, signature, algorithm);
        Err((
            404,
            format!("Connector {name}: task configs are only posted between workers of a group"),
        ))
    }
}

/// Readies a connector config received over REST for storing: `name` must match the config's
/// `name` when it has one (and is set from it), and a secret shown as `[hidden]` and sent back
/// unchanged keeps its stored value (`existing`: the stored config and its plugin).
pub(crate) fn prepare_config(
    name: &str,
    config: &mut Props,
    existing: Option<(&Props, ConnectorPlugin)>,
) -> Result<()> {
    if let Some(inner) = config.get("name").filter(|n| n.as_str() != name) {
        return Err(Error::config(format!(
            "connector name `{name}` does not match config.name `{inner}`; make them equal"
        )));
    }
    config.insert("name".into(), name.to_owned());
    if let Some((stored, plugin)) = existing {
        let def = full_def(&plugin);
        for (key, value) in config.iter_mut() {
            if value == REDACTED
                && def.is_secret(key)
                && let Some(kept) = stored.get(key)
            {
                value.clone_from(kept);
            }
        }
    }
    Ok(())
}

/// The longest connector name: it becomes part of topic and consumer-group names
/// (`connect-<name>`), which Kafka limits to 249 characters.
const MAX_NAME_BYTES: usize = 249;

/// Refuses connector names Kafka Connect refuses (empty, control characters) and those that
/// cannot be used in sluice's paths and Kafka names (`/`, longer than 249 bytes).
pub(crate) fn check_name(name: &str) -> Result<()> {
    let problem = if name.trim().is_empty() {
        Some("must not be empty".to_owned())
    } else if name.chars().any(char::is_control) {
        Some("must not contain control characters".to_owned())
    } else if name.contains('/') {
        Some("must not contain `/` (it could not be addressed as /connectors/{name})".to_owned())
    } else if name.len() > MAX_NAME_BYTES {
        Some(format!(
            "is {} bytes long; at most {MAX_NAME_BYTES} are allowed (it becomes part of Kafka \
             topic and consumer group names)",
            name.len()
        ))
    } else {
        None
    };
    match problem {
        Some(problem) => Err(Error::config(format!(
            "Connector name {name:?} {problem}; choose another name"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::check_name;

    #[test]
    fn names_kafka_connect_or_kafka_would_refuse_are_refused() {
        assert!(check_name("inventory-connector.v2").is_ok());
        assert!(check_name(&"a".repeat(249)).is_ok());
        for bad in ["", " ", "a/b", "bell\u{7}", "new\nline", &"a".repeat(250)] {
            let error = check_name(bad).unwrap_err();
            assert!(
                error.message().contains("choose another name"),
                "{bad:?}: {error}"
            );
        }
    }
}
