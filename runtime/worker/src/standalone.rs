//! The standalone herder: one worker, connectors kept in memory (those from the command line
//! are re-read at every start, as in Kafka Connect), offsets in the worker's offset store.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value as Json, json};
use sluice_api::config::{Props, REDACTED};
use sluice_api::connector::{
    ConnectorFactory, ConnectorKind, ConnectorPlugin, SinkConnector, SourceConnector,
};
use sluice_api::{Error, Result};
use tokio::sync::Mutex;

use crate::connector_config::{self, full_def, tasks_max};
use crate::herder::{
    ConnectorInfo, ConnectorStatus, Herder, PartitionOffset, PluginInfo, StateInfo, TargetState,
    TaskId, TaskInfo, TaskState,
};
use crate::kafka::group_offsets;
use crate::status::{State, StatusCell};
use crate::worker::{TaskControl, TaskHandle, TaskSpec, WorkerContext};

enum Instance {
    Source(Box<dyn SourceConnector>),
    Sink(Box<dyn SinkConnector>),
}

struct Entry {
    config: Props,
    plugin: ConnectorPlugin,
    target: TargetState,
    status: StatusCell,
    instance: Option<Instance>,
    tasks: Vec<TaskHandle>,
}

impl Entry {
    fn redacted_config(&self) -> Props {
        full_def(&self.plugin).redact(&self.config)
    }

    fn info(&self, name: &str) -> ConnectorInfo {
        ConnectorInfo {
            name: name.to_owned(),
            config: self.redacted_config(),
            tasks: self
                .tasks
                .iter()
                .map(|t| TaskId {
                    connector: name.to_owned(),
                    task: t.id,
                })
                .collect(),
            kind: self.plugin.kind().as_str(),
        }
    }
}

/// Runs connectors on this one worker.
pub struct StandaloneHerder {
    ctx: Arc<WorkerContext>,
    connectors: Mutex<BTreeMap<String, Entry>>,
}

fn not_found(name: &str) -> Error {
    Error::not_found(format!("Connector {name} not found"))
}

impl StandaloneHerder {
    /// A herder with no connectors yet.
    pub fn new(ctx: Arc<WorkerContext>) -> StandaloneHerder {
        StandaloneHerder {
            ctx,
            connectors: Mutex::new(BTreeMap::new()),
        }
    }

    /// The worker context the herder runs tasks with.
    pub fn context(&self) -> &Arc<WorkerContext> {
        &self.ctx
    }

    /// Validates a config and returns its plugin, or one error naming every bad field.
    pub fn check(&self, config: &Props) -> Result<ConnectorPlugin> {
        connector_config::validate(&self.ctx.registry, config).into_result()
    }

    fn control_for(target: TargetState) -> TaskControl {
        match target {
            TargetState::Started => TaskControl::Run,
            TargetState::Paused => TaskControl::Pause,
            TargetState::Stopped => TaskControl::Stop,
        }
    }

    /// Starts the connector instance and its tasks according to the target state. A failure
    /// of the connector itself marks it FAILED; it is not an error of the request.
    async fn start_entry(&self, name: &str, entry: &mut Entry) {
        if entry.target == TargetState::Stopped {
            entry.status.set(State::Stopped);
            return;
        }
        let redacted = entry.redacted_config();
        tracing::info!(connector = name, config = ?redacted, "starting connector");
        let max_tasks = tasks_max(&entry.config);
        let started = match entry.plugin.factory {
            ConnectorFactory::Source(factory) => {
                let mut connector = factory();
                match connector.start(&entry.config).await {
                    Ok(()) => connector
                        .task_configs(max_tasks)
                        .map(|t| (Instance::Source(connector), t)),
                    Err(e) => Err(e),
                }
            }
            ConnectorFactory::Sink(factory) => {
                let mut connector = factory();
                match connector.start(&entry.config).await {
                    Ok(()) => connector
                        .task_configs(max_tasks)
                        .map(|t| (Instance::Sink(connector), t)),
                    Err(e) => Err(e),
                }
            }
        };
        let (instance, task_configs) = match started {
            Ok(started) => started,
            Err(error) => {
                tracing::error!(connector = name, error = %error.trace(), "connector failed to start");
                entry.status.fail(error.trace());
                return;
            }
        };
        entry.instance = Some(instance);
        let control = Self::control_for(entry.target);
        entry.tasks = task_configs
            .into_iter()
            .take(max_tasks)
            .enumerate()
            .map(|(id, task_config)| {
                let spec = TaskSpec {
                    connector: name.to_owned(),
                    plugin: entry.plugin,
                    connector_config: entry.config.clone(),
                    task_id: id as u32,
                    task_config,
                };
                TaskHandle::spawn(Arc::clone(&self.ctx), spec, control)
            })
            .collect();
        entry.status.set(if entry.target == TargetState::Paused {
            State::Paused
        } else {
            State::Running
        });
    }

    /// Stops the tasks (flushing and committing) and the connector instance.
    async fn stop_entry(&self, name: &str, entry: &mut Entry) {
        let timeout = self.ctx.shutdown_timeout;
        let stops: Vec<_> = entry.tasks.drain(..).map(|t| t.stop(timeout)).collect();
        futures_join(stops).await;
        let result = match entry.instance.take() {
            Some(Instance::Source(mut c)) => c.stop().await,
            Some(Instance::Sink(mut c)) => c.stop().await,
            None => Ok(()),
        };
        if let Err(e) = result {
            tracing::warn!(connector = name, error = %e, "connector stop failed");
        }
        entry.status.set(State::Unassigned);
    }

    /// Creates and starts a connector from a command-line config.
    pub async fn add_connector(&self, name: &str, config: Props) -> Result<()> {
        self.put_connector(name, config, false).await.map(|_| ())
    }

    /// Stops every connector: sources first, so that sinks are still there to flush what the
    /// sources already sent and the final offsets cover it; then sinks.
    pub async fn shutdown(&self) {
        let mut connectors = self.connectors.lock().await;
        let timeout = self.ctx.shutdown_timeout;
        for kind in [ConnectorKind::Source, ConnectorKind::Sink] {
            let mut stops = Vec::new();
            for (name, entry) in connectors
                .iter_mut()
                .filter(|(_, e)| e.plugin.kind() == kind)
            {
                tracing::info!(connector = %name, "stopping connector");
                stops.extend(entry.tasks.drain(..).map(|t| t.stop(timeout)));
            }
            futures_join(stops).await;
        }
        for (name, entry) in connectors.iter_mut() {
            self.stop_entry(name, entry).await;
        }
    }
}

/// Awaits all futures concurrently.
async fn futures_join<F: std::future::Future<Output = ()> + Send + 'static>(futures: Vec<F>) {
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    for handle in handles {
        let _ = handle.await;
    }
}

#[async_trait]
impl Herder for StandaloneHerder {
    fn worker_id(&self) -> String {
        self.ctx.worker_id.clone()
    }

    async fn connector_names(&self) -> Vec<String> {
        self.connectors.lock().await.keys().cloned().collect()
    }

    async fn connector_info(&self, name: &str) -> Result<ConnectorInfo> {
        let connectors = self.connectors.lock().await;
        connectors
            .get(name)
            .map(|e| e.info(name))
            .ok_or_else(|| not_found(name))
    }

    async fn connector_status(&self, name: &str) -> Result<ConnectorStatus> {
        let connectors = self.connectors.lock().await;
        let entry = connectors.get(name).ok_or_else(|| not_found(name))?;
        let worker_id = self.worker_id();
        let connector = entry.status.get();
        Ok(ConnectorStatus {
            name: name.to_owned(),
            connector: StateInfo {
                state: connector.state,
                worker_id: worker_id.clone(),
                trace: connector.trace,
            },
            tasks: entry
                .tasks
                .iter()
                .map(|t| {
                    let status = t.status.get();
                    TaskState {
                        id: t.id,
                        state: status.state,
                        worker_id: worker_id.clone(),
                        trace: status.trace,
                        metrics: t.status.metrics.to_json(),
                        gauges: t.status.metrics.gauges(),
                    }
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
        if let Some(inner) = config.get("name").filter(|n| n.as_str() != name) {
            return Err(Error::config(format!(
                "connector name `{name}` does not match config.name `{inner}`; make them equal"
            )));
        }
        config.insert("name".into(), name.to_owned());
        let mut connectors = self.connectors.lock().await;
        if !replace && connectors.contains_key(name) {
            return Err(Error::conflict(format!("Connector {name} already exists")));
        }
        let existing = connectors.remove(name);
        // A secret shown as [hidden] and sent back unchanged keeps its stored value.
        if let Some(old) = &existing {
            let def = full_def(&old.plugin);
            for (key, value) in config.iter_mut() {
                if value == REDACTED
                    && def.is_secret(key)
                    && let Some(stored) = old.config.get(key)
                {
                    value.clone_from(stored);
                }
            }
        }
        let plugin = match self.check(&config) {
            Ok(plugin) => plugin,
            Err(e) => {
                if let Some(old) = existing {
                    connectors.insert(name.to_owned(), old);
                }
                return Err(e);
            }
        };
        let created = existing.is_none();
        let target = match existing {
            Some(mut old) => {
                self.stop_entry(name, &mut old).await;
                old.target
            }
            None => TargetState::Started,
        };
        let mut entry = Entry {
            config,
            plugin,
            target,
            status: StatusCell::new(State::Unassigned),
            instance: None,
            tasks: Vec::new(),
        };
        self.start_entry(name, &mut entry).await;
        let info = entry.info(name);
        connectors.insert(name.to_owned(), entry);
        Ok((info, created))
    }

    async fn patch_connector(
        &self,
        name: &str,
        patch: Vec<(String, Option<String>)>,
    ) -> Result<ConnectorInfo> {
        let mut config = {
            let connectors = self.connectors.lock().await;
            connectors
                .get(name)
                .ok_or_else(|| not_found(name))?
                .config
                .clone()
        };
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
        let mut entry = connectors.remove(name).ok_or_else(|| not_found(name))?;
        self.stop_entry(name, &mut entry).await;
        tracing::info!(connector = name, "connector deleted");
        if let (true, ConnectorFactory::Source(factory)) = (cleanup, entry.plugin.factory) {
            factory().cleanup(&entry.config).await.map_err(|e| {
                e.context(format!(
                    "connector {name} was deleted, but cleaning up its external state failed"
                ))
            })?;
            tracing::info!(connector = name, "connector's external state cleaned up");
        }
        Ok(())
    }

    async fn task_infos(&self, name: &str) -> Result<Vec<TaskInfo>> {
        let connectors = self.connectors.lock().await;
        let entry = connectors.get(name).ok_or_else(|| not_found(name))?;
        let def = full_def(&entry.plugin);
        Ok(entry
            .tasks
            .iter()
            .map(|t| TaskInfo {
                id: TaskId {
                    connector: name.to_owned(),
                    task: t.id,
                },
                config: def.redact(&t.config),
            })
            .collect())
    }

    async fn task_status(&self, name: &str, task: u32) -> Result<TaskState> {
        self.connector_status(name)
            .await?
            .tasks
            .into_iter()
            .find(|t| t.id == task)
            .ok_or_else(|| Error::not_found(format!("Task {name}-{task} not found")))
    }

    async fn restart_connector(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> Result<()> {
        let mut connectors = self.connectors.lock().await;
        let entry = connectors.get_mut(name).ok_or_else(|| not_found(name))?;
        let connector_failed = entry.status.get().state == State::Failed;
        let any_task_failed = entry
            .tasks
            .iter()
            .any(|t| t.status.get().state == State::Failed);
        let restart = if only_failed {
            connector_failed || (include_tasks && any_task_failed)
        } else {
            true
        };
        if restart {
            entry.status.set(State::Restarting);
            self.stop_entry(name, entry).await;
            self.start_entry(name, entry).await;
        }
        Ok(())
    }

    async fn restart_task(&self, name: &str, task: u32) -> Result<()> {
        let mut connectors = self.connectors.lock().await;
        let entry = connectors.get_mut(name).ok_or_else(|| not_found(name))?;
        let index = entry
            .tasks
            .iter()
            .position(|t| t.id == task)
            .ok_or_else(|| Error::not_found(format!("Task {name}-{task} not found")))?;
        let old = entry.tasks.remove(index);
        let task_config = old.config.clone();
        old.stop(self.ctx.shutdown_timeout).await;
        let spec = TaskSpec {
            connector: name.to_owned(),
            plugin: entry.plugin,
            connector_config: entry.config.clone(),
            task_id: task,
            task_config,
        };
        let handle =
            TaskHandle::spawn(Arc::clone(&self.ctx), spec, Self::control_for(entry.target));
        entry.tasks.insert(index, handle);
        Ok(())
    }

    async fn set_target_state(&self, name: &str, target: TargetState) -> Result<()> {
        let mut connectors = self.connectors.lock().await;
        let entry = connectors.get_mut(name).ok_or_else(|| not_found(name))?;
        let previous = entry.target;
        entry.target = target;
        match (previous, target) {
            (_, TargetState::Stopped) => {
                self.stop_entry(name, entry).await;
                entry.status.set(State::Stopped);
            }
            (TargetState::Stopped, _) => self.start_entry(name, entry).await,
            (_, TargetState::Paused) => {
                entry.tasks.iter().for_each(|t| t.set(TaskControl::Pause));
                if entry.status.get().state != State::Failed {
                    entry.status.set(State::Paused);
                }
            }
            (_, TargetState::Started) => {
                entry.tasks.iter().for_each(|t| t.set(TaskControl::Run));
                if entry.status.get().state != State::Failed {
                    entry.status.set(State::Running);
                }
            }
        }
        tracing::info!(connector = name, ?target, "target state changed");
        Ok(())
    }

    async fn offsets(&self, name: &str) -> Result<Vec<PartitionOffset>> {
        let kind = {
            let connectors = self.connectors.lock().await;
            connectors
                .get(name)
                .ok_or_else(|| not_found(name))?
                .plugin
                .kind()
        };
        if kind == ConnectorKind::Sink {
            let Some(settings) = self.ctx.kafka.clone() else {
                // Sinks of the embedded pipeline consume no durable topic: no offsets.
                return Ok(Vec::new());
            };
            let config = self.config_of(name).await?;
            let committed =
                group_offsets::committed(settings, group_offsets::group_of(name, &config), config)
                    .await?;
            return Ok(committed
                .into_iter()
                .map(|(partition, offset)| PartitionOffset { partition, offset })
                .collect());
        }
        Ok(self
            .ctx
            .offsets
            .connector_offsets(name)
            .await?
            .into_iter()
            .map(|(partition, offset)| PartitionOffset {
                partition,
                offset: Some(offset),
            })
            .collect())
    }

    async fn alter_offsets(&self, name: &str, offsets: Vec<PartitionOffset>) -> Result<()> {
        if let Some(settings) = self.stopped_kafka_sink(name).await? {
            let group = group_offsets::group_of(name, &self.config_of(name).await?);
            let entries = offsets
                .into_iter()
                .map(|o| (o.partition, o.offset))
                .collect();
            return group_offsets::alter(settings, group, entries).await;
        }
        self.require_stopped_source(name).await?;
        let writes = offsets
            .into_iter()
            .map(|o| (o.partition, o.offset))
            .collect();
        self.ctx.offsets.put(name, writes).await
    }

    async fn reset_offsets(&self, name: &str) -> Result<()> {
        if let Some(settings) = self.stopped_kafka_sink(name).await? {
            let config = self.config_of(name).await?;
            let group = group_offsets::group_of(name, &config);
            let committed =
                group_offsets::committed(Arc::clone(&settings), group.clone(), config).await?;
            let resets = committed
                .into_iter()
                .map(|(partition, _)| (partition, None))
                .collect();
            return group_offsets::alter(settings, group, resets).await;
        }
        self.require_stopped_source(name).await?;
        let writes = self
            .ctx
            .offsets
            .connector_offsets(name)
            .await?
            .into_iter()
            .map(|(partition, _)| (partition, None))
            .collect();
        self.ctx.offsets.put(name, writes).await
    }

    fn plugins(&self) -> Vec<PluginInfo> {
        self.ctx
            .registry
            .connectors()
            .iter()
            .map(|p| PluginInfo {
                class: p.class,
                kind: p.kind().as_str(),
                version: p.version,
            })
            .collect()
    }

    fn plugin_config(&self, plugin: &str) -> Result<Json> {
        let plugin = self
            .ctx
            .registry
            .find_connector(plugin)
            .ok_or_else(|| Error::not_found(format!("Unknown plugin {plugin}")))?;
        let keys: Vec<Json> = (plugin.config_def)()
            .keys()
            .iter()
            .enumerate()
            .map(|(order, key)| {
                json!({
                    "name": key.name, "type": key.config_type.name(), "required": key.is_required(),
                    "default_value": key.default, "importance": key.importance.name(),
                    "documentation": key.documentation, "group": key.group, "width": "NONE",
                    "display_name": key.name, "dependents": [], "order": order + 1,
                })
            })
            .collect();
        Ok(Json::Array(keys))
    }

    async fn validate(&self, plugin: &str, mut config: Props) -> Result<Json> {
        let found = self
            .ctx
            .registry
            .find_connector(plugin)
            .ok_or_else(|| Error::not_found(format!("Unknown plugin {plugin}")))?;
        if let Some(included) = config.get("connector.class") {
            let matches = self
                .ctx
                .registry
                .resolve_connector(included, &config)
                .map(|p| p.class);
            if matches.ok() != Some(found.class) && !found.answers_to(included) {
                return Err(Error::config(format!(
                    "Included connector type {included} does not match request type {plugin}"
                )));
            }
        } else {
            config.insert("connector.class".into(), found.class.to_owned());
        }
        // Includes the plugin's checks across keys (`ConnectorPlugin::validate`).
        let validation = connector_config::validate(&self.ctx.registry, &config);
        Ok(validation.to_config_infos(&config))
    }
}

impl StandaloneHerder {
    async fn config_of(&self, name: &str) -> Result<Props> {
        let connectors = self.connectors.lock().await;
        Ok(connectors
            .get(name)
            .ok_or_else(|| not_found(name))?
            .config
            .clone())
    }

    /// The Kafka settings when `name` is a STOPPED sink on the Kafka transport; an error when
    /// it is a sink that is not stopped; `None` for anything else.
    async fn stopped_kafka_sink(
        &self,
        name: &str,
    ) -> Result<Option<Arc<crate::kafka::KafkaSettings>>> {
        let connectors = self.connectors.lock().await;
        let entry = connectors.get(name).ok_or_else(|| not_found(name))?;
        match (&self.ctx.kafka, entry.plugin.kind()) {
            (Some(settings), ConnectorKind::Sink) => {
                if entry.target != TargetState::Stopped {
                    return Err(Error::config(format!(
                        "Connectors must be in the STOPPED state before their offsets can be modified. \
                         Stop it first with PUT /connectors/{name}/stop"
                    )));
                }
                Ok(Some(Arc::clone(settings)))
            }
            _ => Ok(None),
        }
    }

    async fn require_stopped_source(&self, name: &str) -> Result<()> {
        let connectors = self.connectors.lock().await;
        let entry = connectors.get(name).ok_or_else(|| not_found(name))?;
        if entry.target != TargetState::Stopped {
            return Err(Error::config(format!(
                "Connectors must be in the STOPPED state before their offsets can be modified. \
                 Stop it first with PUT /connectors/{name}/stop"
            )));
        }
        if entry.plugin.kind() == ConnectorKind::Sink {
            return Err(Error::config(format!(
                "{name} is a sink of the embedded pipeline, which keeps no consumer offsets"
            )));
        }
        Ok(())
    }
}
