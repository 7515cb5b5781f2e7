//! The standalone herder: one worker, connectors kept in memory (those from the command line
//! are re-read at every start, as in Kafka Connect). It keeps each connector's config and
//! target state and tells the [`Worker`] what to run; the worker runs it.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value as Json;
use sluice_api::config::Props;
use sluice_api::connector::{ConnectorKind, ConnectorPlugin};
use sluice_api::{Error, Result};
use tokio::sync::Mutex;

use super::Herder;
use crate::config::connector::{self, full_def};
use crate::state::{
    ConnectorInfo, ConnectorStatus, PartitionOffset, PluginInfo, State, StateInfo, TargetState,
    TaskId, TaskInfo, TaskState,
};
use crate::worker::Worker;

/// What the herder knows of a connector.
#[derive(Clone)]
struct Entry {
    config: Props,
    plugin: ConnectorPlugin,
    target: TargetState,
}

/// Runs connectors on this one worker.
pub(crate) struct StandaloneHerder {
    worker: Arc<Worker>,
    /// Held for the whole of every change, so changes to connectors happen one at a time.
    connectors: Mutex<BTreeMap<String, Entry>>,
}

impl std::fmt::Debug for StandaloneHerder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandaloneHerder")
            .field("worker", &self.worker)
            .finish_non_exhaustive()
    }
}

fn not_found(name: &str) -> Error {
    Error::not_found(format!("Connector {name} not found"))
}

fn must_be_stopped(name: &str) -> Error {
    Error::config(format!(
        "Connectors must be in the STOPPED state before their offsets can be modified. \
         Stop it first with PUT /connectors/{name}/stop"
    ))
}

impl StandaloneHerder {
    /// A herder with no connectors yet, running them on `worker`.
    pub(crate) fn new(worker: Arc<Worker>) -> StandaloneHerder {
        StandaloneHerder {
            worker,
            connectors: Mutex::new(BTreeMap::new()),
        }
    }

    /// Validates a config and returns its plugin, or one error naming every bad field.
    fn check(&self, config: &Props) -> Result<ConnectorPlugin> {
        let resolved = self.worker.resolve(config)?;
        connector::validate(self.worker.registry(), &resolved).into_result()
    }

    /// Creates and starts a connector from a command-line config.
    pub(crate) async fn add_connector(&self, name: &str, config: Props) -> Result<()> {
        self.put_connector(name, config, false).await.map(|_| ())
    }

    /// Stops every connector (see [`Worker::shutdown`]).
    pub(crate) async fn shutdown(&self) {
        let _connectors = self.connectors.lock().await;
        self.worker.shutdown().await;
    }

    async fn entry(&self, name: &str) -> Result<Entry> {
        let connectors = self.connectors.lock().await;
        connectors.get(name).cloned().ok_or_else(|| not_found(name))
    }

    fn info(&self, name: &str, entry: &Entry, tasks: usize) -> ConnectorInfo {
        ConnectorInfo {
            name: name.to_owned(),
            config: full_def(&entry.plugin).redact(&entry.config),
            tasks: (0..tasks as u32)
                .map(|task| TaskId {
                    connector: name.to_owned(),
                    task,
                })
                .collect(),
            kind: entry.plugin.kind().as_str(),
        }
    }

    async fn task_count(&self, name: &str) -> usize {
        self.worker
            .report(name)
            .await
            .map(|(_, tasks)| tasks.len())
            .unwrap_or(0)
    }

    /// The entry of a STOPPED connector, for the offsets API.
    async fn stopped(&self, name: &str) -> Result<Entry> {
        let entry = self.entry(name).await?;
        if entry.target != TargetState::Stopped {
            return Err(must_be_stopped(name));
        }
        Ok(entry)
    }
}

#[async_trait]
impl Herder for StandaloneHerder {
    fn worker_id(&self) -> String {
        self.worker.worker_id().to_owned()
    }

    fn metrics(&self) -> Arc<crate::metrics::WorkerMetrics> {
        self.worker.metrics()
    }

    fn active_topics(&self) -> Arc<crate::storage::topics::ActiveTopics> {
        self.worker.topics()
    }

    async fn connector_names(&self) -> Vec<String> {
        self.connectors.lock().await.keys().cloned().collect()
    }

    async fn connector_info(&self, name: &str) -> Result<ConnectorInfo> {
        let entry = self.entry(name).await?;
        let tasks = self.task_count(name).await;
        Ok(self.info(name, &entry, tasks))
    }

    async fn connector_status(&self, name: &str) -> Result<ConnectorStatus> {
        let entry = self.entry(name).await?;
        let worker_id = self.worker_id();
        let (connector, tasks) = self.worker.report(name).await?;
        Ok(ConnectorStatus {
            name: name.to_owned(),
            connector: StateInfo {
                state: connector.state,
                worker_id: worker_id.clone(),
                trace: connector.trace,
            },
            tasks: tasks
                .into_iter()
                .map(|t| TaskState {
                    id: t.id,
                    state: t.status.state,
                    worker_id: worker_id.clone(),
                    trace: t.status.trace,
                    metrics: t.metrics.to_json(),
                    gauges: t.metrics.gauges(),
                })
                .collect(),
            kind: entry.plugin.kind().as_str(),
        })
    }

    async fn put_connector(
        &self,
        name: &str,
        mut config: Props,
        replace: bool,
    ) -> Result<(ConnectorInfo, bool)> {
        super::check_name(name)?;
        let mut connectors = self.connectors.lock().await;
        let existing = connectors.get(name).cloned();
        if !replace && existing.is_some() {
            return Err(Error::conflict(format!("Connector {name} already exists")));
        }
        super::prepare_config(
            name,
            &mut config,
            existing.as_ref().map(|e| (&e.config, e.plugin)),
        )?;
        let plugin = self.check(&config)?;
        let target = existing.map_or(TargetState::Started, |old| old.target);
        let entry = Entry {
            config,
            plugin,
            target,
        };
        self.worker
            .start(name, plugin, entry.config.clone(), target)
            .await;
        let info = self.info(name, &entry, self.task_count(name).await);
        let created = connectors.insert(name.to_owned(), entry).is_none();
        Ok((info, created))
    }

    async fn patch_connector(
        &self,
        name: &str,
        patch: Vec<(String, Option<String>)>,
    ) -> Result<ConnectorInfo> {
        let mut config = self.entry(name).await?.config;
        for (key, value) in patch {
            match value {
                Some(value) => config.insert(key, value),
                None => config.remove(&key),
            };
        }
        self.put_connector(name, config, true)
            .await
            .map(|(info, _)| info)
    }

    async fn delete_connector(&self, name: &str, cleanup: bool) -> Result<()> {
        let mut connectors = self.connectors.lock().await;
        let entry = connectors.remove(name).ok_or_else(|| not_found(name))?;
        self.worker.remove(name).await?;
        self.worker.topics().reset(name);
        tracing::info!(connector = name, "connector deleted");
        if cleanup && entry.plugin.kind() == ConnectorKind::Source {
            self.worker
                .cleanup(entry.plugin, &entry.config)
                .await
                .map_err(|e| {
                    e.context(format!(
                        "connector {name} was deleted, but cleaning up its external state failed"
                    ))
                })?;
            tracing::info!(connector = name, "connector's external state cleaned up");
        }
        Ok(())
    }

    async fn task_infos(&self, name: &str) -> Result<Vec<TaskInfo>> {
        let entry = self.entry(name).await?;
        let def = full_def(&entry.plugin);
        let (_, tasks) = self.worker.report(name).await?;
        Ok(tasks
            .into_iter()
            .map(|t| TaskInfo {
                id: TaskId {
                    connector: name.to_owned(),
                    task: t.id,
                },
                config: def.redact(&t.config),
            })
            .collect())
    }

    async fn restart_connector(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> Result<()> {
        let connectors = self.connectors.lock().await;
        let entry = connectors.get(name).ok_or_else(|| not_found(name))?;
        self.worker
            .restart(name, entry.target, include_tasks, only_failed)
            .await
    }

    async fn restart_task(&self, name: &str, task: u32) -> Result<()> {
        let connectors = self.connectors.lock().await;
        let entry = connectors.get(name).ok_or_else(|| not_found(name))?;
        self.worker.restart_task(name, task, entry.target).await
    }

    async fn set_target_state(&self, name: &str, target: TargetState) -> Result<()> {
        let mut connectors = self.connectors.lock().await;
        let entry = connectors.get_mut(name).ok_or_else(|| not_found(name))?;
        let previous = entry.target;
        entry.target = target;
        match (previous, target) {
            (_, TargetState::Stopped) => self.worker.stop(name, State::Stopped).await?,
            (TargetState::Stopped, _) => {
                self.worker
                    .start(name, entry.plugin, entry.config.clone(), target)
                    .await
            }
            (_, TargetState::Paused | TargetState::Started) => {
                self.worker.set_running_state(name, target).await?
            }
        }
        tracing::info!(connector = name, ?target, "target state changed");
        Ok(())
    }

    async fn offsets(&self, name: &str) -> Result<Vec<PartitionOffset>> {
        let entry = self.entry(name).await?;
        self.worker
            .offsets(name, entry.plugin.kind(), &entry.config)
            .await
    }

    async fn alter_offsets(&self, name: &str, offsets: Vec<PartitionOffset>) -> Result<()> {
        let entry = self.stopped(name).await?;
        self.worker
            .alter_offsets(name, entry.plugin, &entry.config, offsets)
            .await
    }

    async fn reset_offsets(&self, name: &str) -> Result<()> {
        let entry = self.stopped(name).await?;
        self.worker
            .reset_offsets(name, entry.plugin, &entry.config)
            .await
    }

    fn plugins(&self) -> Vec<PluginInfo> {
        super::plugins::list(self.worker.registry())
    }

    fn plugin_config(&self, plugin: &str) -> Result<Json> {
        super::plugins::config_of(self.worker.registry(), plugin)
    }

    async fn validate(&self, plugin: &str, config: Props) -> Result<Json> {
        super::plugins::validate(self.worker.registry(), plugin, config)
    }
}
