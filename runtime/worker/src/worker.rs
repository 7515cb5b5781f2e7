//! Kafka Connect's `Worker`: runs connector instances and their tasks in this process, and
//! administers their offsets. It holds no configs of its own beyond what it runs and makes
//! no decisions about what should run: a herder ([`crate::herder`]) tells it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sluice_api::config::Props;
use sluice_api::connector::{
    ConnectorFactory, ConnectorKind, ConnectorPlugin, SinkConnector, SourceConnector,
};
use sluice_api::{Error, Result};
use tokio::sync::{Mutex, mpsc};

use crate::config::connector::{full_def, tasks_max};
use crate::config::settings::consumer_group;
use crate::pipeline::direct::DirectBus;
use crate::pipeline::kafka::KafkaSettings;
use crate::registry::Registry;
use crate::state::{PartitionOffset, State, Status, StatusCell, TargetState};
use crate::storage::group_offsets;
use crate::storage::offsets::OffsetStore;
use crate::task::{TaskControl, TaskHandle, TaskSpec};

/// What every task runner of a worker shares.
pub(crate) struct WorkerContext {
    /// `host:port`, shown as `worker_id` in statuses.
    pub(crate) worker_id: String,
    /// The plugins this worker can run.
    pub(crate) registry: Registry,
    /// Where committed source offsets live.
    pub(crate) offsets: Arc<dyn OffsetStore>,
    /// The embedded direct pipeline's bus (unused on the Kafka transport).
    pub(crate) bus: Arc<DirectBus>,
    /// The Kafka transport, when the worker has `bootstrap.servers`; `None`: the embedded
    /// direct pipeline (`bus`).
    pub(crate) kafka: Option<Arc<KafkaSettings>>,
    /// How often sinks flush and sources commit (`offset.flush.interval.ms`).
    pub(crate) flush_interval: Duration,
    /// How long a stopping task may take to flush and commit.
    pub(crate) shutdown_timeout: Duration,
    /// What `GET /metrics` serves.
    pub(crate) metrics: Arc<crate::metrics::WorkerMetrics>,
    /// The topics each connector's tasks used (KIP-558).
    pub(crate) topics: Arc<crate::storage::topics::ActiveTopics>,
    /// Fills in connector configs' `${provider:path:key}` placeholders.
    pub(crate) providers: Arc<crate::config::providers::ConfigProviders>,
}

impl std::fmt::Debug for WorkerContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerContext")
            .field("worker_id", &self.worker_id)
            .field("kafka", &self.kafka.is_some())
            .field("flush_interval", &self.flush_interval)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .finish_non_exhaustive()
    }
}

enum Instance {
    Source(Box<dyn SourceConnector>),
    Sink(Box<dyn SinkConnector>),
}

/// A connector this worker was told about: its instance and tasks while it runs.
struct Running {
    plugin: ConnectorPlugin,
    config: Props,
    status: StatusCell,
    instance: Option<Instance>,
    tasks: Vec<TaskHandle>,
    /// Whether the connector's instance is this worker's to run (always in standalone mode;
    /// in distributed mode only where the group assigned it).
    owns_instance: bool,
    /// The files its config's provider placeholders read, as they were when it started.
    fingerprint: Vec<(std::path::PathBuf, Option<std::time::SystemTime>)>,
    /// Whether this worker runs the connector whole, instance and tasks (standalone mode).
    whole: bool,
    /// A changed fingerprint seen once: the restart waits until it holds for a second
    /// check, so a file caught half-written is not read.
    settling: Option<Vec<(std::path::PathBuf, Option<std::time::SystemTime>)>>,
}

/// One task's state as the worker sees it.
#[derive(Clone)]
pub(crate) struct TaskReport {
    pub(crate) id: u32,
    pub(crate) status: Status,
    pub(crate) config: Props,
    pub(crate) metrics: sluice_api::metrics::TaskMetrics,
}

/// Shows the task config with secret-looking values hidden.
impl std::fmt::Debug for TaskReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskReport")
            .field("id", &self.id)
            .field("status", &self.status)
            .field("config", &crate::config::shown(&self.config))
            .finish_non_exhaustive()
    }
}

/// Runs connectors and tasks on this process.
pub struct Worker {
    ctx: Arc<WorkerContext>,
    connectors: Mutex<BTreeMap<String, Running>>,
    /// Distributed mode: where the names of connector instances to restart for changed
    /// provider files go, to the membership loop ([`Worker::subscribe_instance_restarts`]).
    instance_restarts: std::sync::Mutex<Option<mpsc::UnboundedSender<String>>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("ctx", &self.ctx)
            .finish_non_exhaustive()
    }
}

fn control_for(target: TargetState) -> TaskControl {
    match target {
        TargetState::Started => TaskControl::Run,
        TargetState::Paused => TaskControl::Pause,
        TargetState::Stopped => TaskControl::Stop,
    }
}

fn not_running(name: &str) -> Error {
    Error::not_found(format!("Connector {name} not found"))
}

/// Awaits all futures concurrently.
async fn join_all<F: std::future::Future<Output = ()> + Send + 'static>(futures: Vec<F>) {
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    for handle in handles {
        let _ = handle.await;
    }
}

impl Worker {
    /// A worker with nothing running.
    pub(crate) fn new(ctx: Arc<WorkerContext>) -> Worker {
        Worker {
            ctx,
            connectors: Mutex::new(BTreeMap::new()),
            instance_restarts: std::sync::Mutex::new(None),
        }
    }

    /// Distributed mode: from now on the returned channel names each connector instance held
    /// here that is to restart because a config provider's file under its config changed
    /// ([`Worker::reload_changed_providers`]). The membership loop restarts it, as it starts
    /// and stops every instance it holds: what it recorded of the instance (the task configs
    /// it generated) stays true, and task configs that change reach the leader. A later call
    /// replaces the earlier channel.
    pub(crate) fn subscribe_instance_restarts(&self) -> mpsc::UnboundedReceiver<String> {
        let (sender, receiver) = mpsc::unbounded_channel();
        *self
            .instance_restarts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(sender);
        receiver
    }

    /// Asks the membership loop to restart the instance of connector `name`
    /// ([`Worker::subscribe_instance_restarts`]).
    fn ask_instance_restart(&self, name: &str) {
        let asked = self
            .instance_restarts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .is_some_and(|restarts| restarts.send(name.to_owned()).is_ok());
        if !asked {
            tracing::warn!(
                connector = name,
                "the connector instance keeps its old provider values: no membership loop \
                 takes restart requests (the worker is stopping)"
            );
        }
    }

    /// `host:port` of this worker.
    pub(crate) fn worker_id(&self) -> &str {
        &self.ctx.worker_id
    }

    /// The plugins this worker can run.
    pub(crate) fn registry(&self) -> &Registry {
        &self.ctx.registry
    }

    /// This worker's metrics.
    pub(crate) fn metrics(&self) -> Arc<crate::metrics::WorkerMetrics> {
        Arc::clone(&self.ctx.metrics)
    }

    /// The topics this worker's tasks used.
    pub(crate) fn topics(&self) -> Arc<crate::storage::topics::ActiveTopics> {
        Arc::clone(&self.ctx.topics)
    }

    /// Starts connector `name` — its instance, then its tasks — in `target` state, replacing
    /// whatever ran under that name. A connector that fails to start is marked FAILED; that
    /// is its state, not an error of the call.
    pub(crate) async fn start(
        &self,
        name: &str,
        plugin: ConnectorPlugin,
        config: Props,
        target: TargetState,
    ) {
        let mut connectors = self.connectors.lock().await;
        if let Some(mut old) = connectors.remove(name) {
            self.stop_running(name, &mut old).await;
        }
        let mut running = Running {
            plugin,
            config,
            status: StatusCell::new(State::Unassigned),
            instance: None,
            tasks: Vec::new(),
            owns_instance: true,
            fingerprint: Vec::new(),
            whole: true,
            settling: None,
        };
        self.start_running(name, &mut running, target).await;
        connectors.insert(name.to_owned(), running);
    }

    async fn start_running(&self, name: &str, running: &mut Running, target: TargetState) {
        if target == TargetState::Stopped {
            running.status.set(State::Stopped);
            return;
        }
        let redacted = full_def(&running.plugin).redact(&running.config);
        tracing::info!(connector = name, config = ?redacted, "starting connector");
        let max_tasks = tasks_max(&running.config);
        running.fingerprint = self.ctx.providers.fingerprint(&running.config);
        let started = launch_instance(
            &self.ctx.providers,
            running.plugin,
            &running.config,
            max_tasks,
        )
        .await;
        self.ctx.metrics.connector_started(started.is_ok());
        let (instance, task_configs) = match started {
            Ok(started) => started,
            Err(error) => {
                tracing::error!(connector = name, error = %error.trace(), "connector failed to start");
                running.status.fail(error.trace());
                return;
            }
        };
        running.instance = Some(instance);
        let control = control_for(target);
        running.tasks = task_configs
            .into_iter()
            .take(max_tasks)
            .enumerate()
            .map(|(id, task_config)| {
                let spec = TaskSpec {
                    connector: name.to_owned(),
                    plugin: running.plugin,
                    connector_config: running.config.clone(),
                    task_id: id as u32,
                    task_config,
                };
                TaskHandle::spawn(Arc::clone(&self.ctx), spec, control)
            })
            .collect();
        running.status.set(if target == TargetState::Paused {
            State::Paused
        } else {
            State::Running
        });
    }

    /// Stops the tasks (each flushing and committing, within the grace period) and the
    /// connector instance.
    async fn stop_running(&self, name: &str, running: &mut Running) {
        let timeout = self.ctx.shutdown_timeout;
        let stops: Vec<_> = running.tasks.drain(..).map(|t| t.stop(timeout)).collect();
        join_all(stops).await;
        stop_instance(name, running).await;
        running.status.set(State::Unassigned);
    }

    /// Stops connector `name` and its tasks; it stays known, in state `state`.
    pub(crate) async fn stop(&self, name: &str, state: State) -> Result<()> {
        let mut connectors = self.connectors.lock().await;
        let running = connectors.get_mut(name).ok_or_else(|| not_running(name))?;
        self.stop_running(name, running).await;
        running.status.set(state);
        Ok(())
    }

    /// Stops connector `name` and its tasks and forgets it.
    pub(crate) async fn remove(&self, name: &str) -> Result<()> {
        let mut connectors = self.connectors.lock().await;
        let mut running = connectors.remove(name).ok_or_else(|| not_running(name))?;
        self.stop_running(name, &mut running).await;
        Ok(())
    }

    /// Restarts connector `name` (instance and tasks) in `target` state; with
    /// `only_failed`, only when the connector or (with `include_tasks`) one of its tasks
    /// failed.
    pub(crate) async fn restart(
        &self,
        name: &str,
        target: TargetState,
        include_tasks: bool,
        only_failed: bool,
    ) -> Result<()> {
        let mut connectors = self.connectors.lock().await;
        let running = connectors.get_mut(name).ok_or_else(|| not_running(name))?;
        let connector_failed = running.status.get().state == State::Failed;
        let any_task_failed = running
            .tasks
            .iter()
            .any(|t| t.status.get().state == State::Failed);
        let restart = !only_failed || connector_failed || (include_tasks && any_task_failed);
        if restart {
            running.status.set(State::Restarting);
            self.stop_running(name, running).await;
            self.start_running(name, running, target).await;
        }
        Ok(())
    }

    /// Restarts one task with its current config, in `target` state.
    pub(crate) async fn restart_task(
        &self,
        name: &str,
        task: u32,
        target: TargetState,
    ) -> Result<()> {
        let mut connectors = self.connectors.lock().await;
        let running = connectors.get_mut(name).ok_or_else(|| not_running(name))?;
        let task_config = running
            .tasks
            .iter()
            .find(|t| t.id == task)
            .map(|t| t.config.clone())
            .ok_or_else(|| Error::not_found(format!("Task {name}-{task} not found")))?;
        self.respawn_task(name, running, task, task_config, target)
            .await;
        Ok(())
    }

    /// Stops task `id` of `running` (when it runs here) and starts it again with
    /// `task_config` in `target` state; the task list stays in id order.
    async fn respawn_task(
        &self,
        name: &str,
        running: &mut Running,
        id: u32,
        task_config: Props,
        target: TargetState,
    ) {
        if let Some(index) = running.tasks.iter().position(|t| t.id == id) {
            running
                .tasks
                .remove(index)
                .stop(self.ctx.shutdown_timeout)
                .await;
        }
        let spec = TaskSpec {
            connector: name.to_owned(),
            plugin: running.plugin,
            connector_config: running.config.clone(),
            task_id: id,
            task_config,
        };
        let handle = TaskHandle::spawn(Arc::clone(&self.ctx), spec, control_for(target));
        running.tasks.push(handle);
        running.tasks.sort_by_key(|t| t.id);
    }

    /// Pauses or resumes a running connector's tasks (stopping goes through [`Worker::stop`]).
    pub(crate) async fn set_running_state(&self, name: &str, target: TargetState) -> Result<()> {
        let connectors = self.connectors.lock().await;
        let running = connectors.get(name).ok_or_else(|| not_running(name))?;
        running
            .tasks
            .iter()
            .for_each(|t| t.set(control_for(target)));
        if running.status.get().state != State::Failed {
            running.status.set(match target {
                TargetState::Paused => State::Paused,
                TargetState::Started => State::Running,
                TargetState::Stopped => State::Stopped,
            });
        }
        Ok(())
    }

    /// The state of connector `name` and of each of its tasks.
    pub(crate) async fn report(&self, name: &str) -> Result<(Status, Vec<TaskReport>)> {
        let connectors = self.connectors.lock().await;
        let running = connectors.get(name).ok_or_else(|| not_running(name))?;
        let tasks = running
            .tasks
            .iter()
            .map(|t| TaskReport {
                id: t.id,
                status: t.status.get(),
                config: t.config.clone(),
                metrics: t.status.metrics.clone(),
            })
            .collect();
        Ok((running.status.get(), tasks))
    }

    /// Stops everything: sources first, so that sinks are still there to flush what the
    /// sources already sent and the final offsets cover it; then sinks; then the connector
    /// instances.
    pub(crate) async fn shutdown(&self) {
        let mut connectors = self.connectors.lock().await;
        let timeout = self.ctx.shutdown_timeout;
        for kind in [ConnectorKind::Source, ConnectorKind::Sink] {
            let mut stops = Vec::new();
            for (name, running) in connectors
                .iter_mut()
                .filter(|(_, r)| r.plugin.kind() == kind)
            {
                tracing::info!(connector = %name, "stopping connector");
                stops.extend(running.tasks.drain(..).map(|t| t.stop(timeout)));
            }
            join_all(stops).await;
        }
        for (name, running) in connectors.iter_mut() {
            self.stop_running(name, running).await;
        }
    }

    /// Distributed mode runs a connector's instance and its tasks apart, each where the group
    /// assigned it. Starts (or restarts) only the instance of connector `name` and returns the
    /// task configs it generates (none when it failed, or when `target` is STOPPED: a stopped
    /// connector has no tasks, as in Kafka Connect). Tasks of `name` running here are kept.
    pub(crate) async fn start_instance(
        &self,
        name: &str,
        plugin: ConnectorPlugin,
        config: Props,
        target: TargetState,
    ) -> Vec<Props> {
        let mut connectors = self.connectors.lock().await;
        let running = connectors
            .entry(name.to_owned())
            .or_insert_with(|| Running {
                plugin,
                config: config.clone(),
                status: StatusCell::new(State::Unassigned),
                instance: None,
                tasks: Vec::new(),
                owns_instance: false,
                fingerprint: Vec::new(),
                whole: false,
                settling: None,
            });
        stop_instance(name, running).await;
        running.plugin = plugin;
        running.config = config;
        running.owns_instance = true;
        if target == TargetState::Stopped {
            running.status.set(State::Stopped);
            return Vec::new();
        }
        let max_tasks = tasks_max(&running.config);
        if running.tasks.is_empty() {
            // With tasks of the connector running here, the provider watch keeps the
            // fingerprint: it is what those tasks filled their placeholders from, and taking
            // the files' state now would hide a change they have not seen yet.
            running.fingerprint = self.ctx.providers.fingerprint(&running.config);
        }
        let started =
            launch_instance(&self.ctx.providers, plugin, &running.config, max_tasks).await;
        self.ctx.metrics.connector_started(started.is_ok());
        match started {
            Ok((instance, mut tasks)) => {
                tracing::info!(
                    connector = name,
                    tasks = tasks.len().min(max_tasks),
                    "connector instance started"
                );
                running.instance = Some(instance);
                running.status.set(if target == TargetState::Paused {
                    State::Paused
                } else {
                    State::Running
                });
                tasks.truncate(max_tasks);
                tasks
            }
            Err(error) => {
                tracing::error!(connector = name, error = %error.trace(), "connector failed to start");
                running.status.fail(error.trace());
                Vec::new()
            }
        }
    }

    /// Stops only the instance of connector `name` (distributed mode); its tasks here keep
    /// running. Forgets the connector when nothing of it runs here any more.
    pub(crate) async fn stop_instance(&self, name: &str) {
        let mut connectors = self.connectors.lock().await;
        if let Some(running) = connectors.get_mut(name) {
            stop_instance(name, running).await;
            running.owns_instance = false;
            if running.tasks.is_empty() {
                connectors.remove(name);
            }
        }
    }

    /// Starts task `task` of connector `name` with `task_config` (distributed mode), replacing
    /// one of that number running here.
    pub(crate) async fn start_task(
        &self,
        name: &str,
        plugin: ConnectorPlugin,
        connector_config: Props,
        task: u32,
        task_config: Props,
        target: TargetState,
    ) {
        let mut connectors = self.connectors.lock().await;
        let running = connectors
            .entry(name.to_owned())
            .or_insert_with(|| Running {
                plugin,
                config: connector_config.clone(),
                status: StatusCell::new(State::Unassigned),
                instance: None,
                tasks: Vec::new(),
                owns_instance: false,
                fingerprint: self.ctx.providers.fingerprint(&connector_config),
                whole: false,
                settling: None,
            });
        if !running.owns_instance {
            // The provider watch follows the connector config the tasks here run with (where
            // the instance runs here, starting it updated the config).
            running.config = connector_config.clone();
            if running.tasks.is_empty() {
                running.fingerprint = self.ctx.providers.fingerprint(&connector_config);
            }
        }
        if let Some(index) = running.tasks.iter().position(|t| t.id == task) {
            running
                .tasks
                .remove(index)
                .stop(self.ctx.shutdown_timeout)
                .await;
        }
        let spec = TaskSpec {
            connector: name.to_owned(),
            plugin,
            connector_config,
            task_id: task,
            task_config,
        };
        let handle = TaskHandle::spawn(Arc::clone(&self.ctx), spec, control_for(target));
        running.tasks.push(handle);
        running.tasks.sort_by_key(|t| t.id);
    }

    /// `config` with its provider placeholders filled in (for validation).
    pub(crate) fn resolve(&self, config: &Props) -> Result<Props> {
        self.ctx.providers.resolve(config)
    }

    /// Restarts what runs here of every connector whose provider files changed since it
    /// started and whose `config.action.reload` is `restart` (the default), so that it fills
    /// its placeholders in again:
    /// * standalone mode: the connector, instance and tasks, as a REST restart (unless it is
    ///   STOPPED);
    /// * distributed mode: its tasks here at once, each in the state (running or paused) it
    ///   was in; and its instance, when it is held here and not STOPPED, through the
    ///   membership loop ([`Worker::subscribe_instance_restarts`]), which hands task configs
    ///   that now differ from the committed ones to the leader, as Kafka Connect's
    ///   DistributedHerder restarts a connector on the worker that owns it. Tasks running on
    ///   other workers are restarted by those workers' own checks.
    ///
    /// A change counts once it held for two checks (a file caught half-written is not read).
    /// Called every second by the process ([`watch_providers`]).
    pub(crate) async fn reload_changed_providers(&self) {
        if self.ctx.providers.is_empty() {
            return;
        }
        let mut connectors = self.connectors.lock().await;
        let names: Vec<String> = connectors.keys().cloned().collect();
        for name in names {
            let Some(running) = connectors.get_mut(&name) else {
                continue;
            };
            let now = self.ctx.providers.fingerprint(&running.config);
            if now == running.fingerprint {
                running.settling = None;
                continue;
            }
            if running.settling.as_ref() != Some(&now) {
                running.settling = Some(now);
                continue;
            }
            running.settling = None;
            running.fingerprint = now;
            let reload = running
                .config
                .get("config.action.reload")
                .map(|v| v.trim().to_ascii_lowercase());
            if reload.as_deref() == Some("none") {
                tracing::info!(connector = %name, "a config provider's file changed; config.action.reload=none: left running");
                continue;
            }
            tracing::info!(connector = %name, "a config provider's file changed; restarting with the new values (config.action.reload=restart)");
            if running.whole {
                let target = match running.status.get().state {
                    State::Stopped => continue,
                    State::Paused => TargetState::Paused,
                    _ => TargetState::Started,
                };
                // Standalone: the whole connector, as a REST restart.
                running.status.set(State::Restarting);
                self.stop_running(&name, running).await;
                self.start_running(&name, running, target).await;
                continue;
            }
            // Distributed: the connector's status here is its instance's (or nothing, where
            // only tasks run), so each task keeps the state it was asked to be in.
            let restarts: Vec<(u32, Props, TargetState)> = running
                .tasks
                .iter()
                .map(|t| {
                    let task_target = if t.control() == TaskControl::Pause {
                        TargetState::Paused
                    } else {
                        TargetState::Started
                    };
                    (t.id, t.config.clone(), task_target)
                })
                .collect();
            for (id, task_config, task_target) in restarts {
                self.respawn_task(&name, running, id, task_config, task_target)
                    .await;
            }
            if running.owns_instance && running.status.get().state != State::Stopped {
                self.ask_instance_restart(&name);
            }
        }
    }

    /// Stops the given tasks (distributed mode), all at once, each flushing and committing
    /// within the grace period. Forgets a connector when nothing of it runs here any more.
    pub(crate) async fn stop_tasks(&self, tasks: &[(String, u32)]) {
        let mut connectors = self.connectors.lock().await;
        let mut stops = Vec::new();
        for (name, task) in tasks {
            if let Some(running) = connectors.get_mut(name)
                && let Some(index) = running.tasks.iter().position(|t| t.id == *task)
            {
                stops.push(running.tasks.remove(index).stop(self.ctx.shutdown_timeout));
            }
        }
        join_all(stops).await;
        connectors.retain(|_, r| r.owns_instance || !r.tasks.is_empty());
    }

    /// What runs here (distributed mode): per connector, its instance's status when the
    /// instance runs here, and each task running here.
    pub(crate) async fn running_here(&self) -> BTreeMap<String, (Option<Status>, Vec<TaskReport>)> {
        let connectors = self.connectors.lock().await;
        connectors
            .iter()
            .map(|(name, running)| {
                let tasks = running
                    .tasks
                    .iter()
                    .map(|t| TaskReport {
                        id: t.id,
                        status: t.status.get(),
                        config: t.config.clone(),
                        metrics: t.status.metrics.clone(),
                    })
                    .collect();
                (
                    name.clone(),
                    (running.owns_instance.then(|| running.status.get()), tasks),
                )
            })
            .collect()
    }

    /// Lets a deleted source connector remove what it keeps in its external system
    /// (`SourceConnector::cleanup`), on a fresh instance.
    pub(crate) async fn cleanup(&self, plugin: ConnectorPlugin, config: &Props) -> Result<()> {
        match plugin.factory {
            ConnectorFactory::Source(factory) => factory().cleanup(config).await,
            ConnectorFactory::Sink(_) => Ok(()),
        }
    }

    /// A connector's committed offsets: a source's from the offset store, a sink's from its
    /// consumer group (none on the embedded pipeline, where sinks read no durable topic).
    pub(crate) async fn offsets(
        &self,
        name: &str,
        kind: ConnectorKind,
        config: &Props,
    ) -> Result<Vec<PartitionOffset>> {
        if kind == ConnectorKind::Sink {
            let Some(settings) = self.ctx.kafka.clone() else {
                return Ok(Vec::new());
            };
            let committed =
                group_offsets::committed(settings, consumer_group(name, config), config.clone())
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

    /// Alters (`offset: None` removes) the offsets of a connector the caller stopped. A
    /// source's connector checks them first (`SourceConnector::validate_offsets`).
    pub(crate) async fn alter_offsets(
        &self,
        name: &str,
        plugin: ConnectorPlugin,
        config: &Props,
        offsets: Vec<PartitionOffset>,
    ) -> Result<()> {
        let entries: Vec<_> = offsets
            .into_iter()
            .map(|o| (o.partition, o.offset))
            .collect();
        match (plugin.factory, self.ctx.kafka.clone()) {
            (ConnectorFactory::Sink(_), Some(settings)) => {
                group_offsets::alter(settings, consumer_group(name, config), entries).await
            }
            (ConnectorFactory::Sink(_), None) => Err(embedded_sink_offsets(name)),
            (ConnectorFactory::Source(factory), _) => {
                factory().validate_offsets(config, &entries)?;
                self.ctx.offsets.put(name, entries).await
            }
        }
    }

    /// Removes every offset of a connector the caller stopped.
    pub(crate) async fn reset_offsets(
        &self,
        name: &str,
        plugin: ConnectorPlugin,
        config: &Props,
    ) -> Result<()> {
        let kind = plugin.kind();
        if kind == ConnectorKind::Sink && self.ctx.kafka.is_none() {
            return Err(embedded_sink_offsets(name));
        }
        let resets = self
            .offsets(name, kind, config)
            .await?
            .into_iter()
            .map(|o| PartitionOffset {
                partition: o.partition,
                offset: None,
            })
            .collect();
        self.alter_offsets(name, plugin, config, resets).await
    }
}

/// Checks every second, for as long as `worker` lives, whether a config provider's file
/// changed under a running connector ([`Worker::reload_changed_providers`]).
pub(crate) fn watch_providers(worker: &Arc<Worker>) {
    if worker.ctx.providers.is_empty() {
        return;
    }
    let worker = Arc::downgrade(worker);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let Some(worker) = worker.upgrade() else {
                return;
            };
            worker.reload_changed_providers().await;
        }
    });
}

/// Starts a connector instance with its placeholders filled in and asks it for up to
/// `max_tasks` task configs, in which a filled-in value goes back to its placeholder (so no
/// secret reaches the config topic; tasks fill them in again when they start).
async fn launch_instance(
    providers: &crate::config::providers::ConfigProviders,
    plugin: ConnectorPlugin,
    raw: &Props,
    max_tasks: usize,
) -> Result<(Instance, Vec<Props>)> {
    let config = &providers.resolve(raw)?;
    let (instance, tasks) = launch_resolved(plugin, config, max_tasks).await?;
    let tasks = tasks
        .into_iter()
        .map(|task| {
            task.into_iter()
                .map(|(key, value)| {
                    let placeholder = raw
                        .get(&key)
                        .filter(|r| config.get(&key) == Some(&value) && **r != value);
                    (key, placeholder.cloned().unwrap_or(value))
                })
                .collect()
        })
        .collect();
    Ok((instance, tasks))
}

async fn launch_resolved(
    plugin: ConnectorPlugin,
    config: &Props,
    max_tasks: usize,
) -> Result<(Instance, Vec<Props>)> {
    for line in crate::config::connector::full_def(&plugin).without_effect(config) {
        tracing::warn!(
            connector = config.get("name").map(String::as_str).unwrap_or_default(),
            "{line}"
        );
    }
    match plugin.factory {
        ConnectorFactory::Source(factory) => {
            let mut connector = factory();
            connector.start(config).await?;
            connector
                .task_configs(max_tasks)
                .map(|t| (Instance::Source(connector), t))
        }
        ConnectorFactory::Sink(factory) => {
            let mut connector = factory();
            connector.start(config).await?;
            connector
                .task_configs(max_tasks)
                .map(|t| (Instance::Sink(connector), t))
        }
    }
}

/// Stops a connector's instance, leaving its tasks.
async fn stop_instance(name: &str, running: &mut Running) {
    let result = match running.instance.take() {
        Some(Instance::Source(mut c)) => c.stop().await,
        Some(Instance::Sink(mut c)) => c.stop().await,
        None => Ok(()),
    };
    if let Err(e) = result {
        tracing::warn!(connector = name, error = %e, "connector stop failed");
    }
}

fn embedded_sink_offsets(name: &str) -> Error {
    Error::config(format!(
        "{name} is a sink of the embedded pipeline, which keeps no consumer offsets"
    ))
}
