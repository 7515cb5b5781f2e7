//! Task runners: one loop for source tasks ([`source`]) and one for sink tasks ([`sink`]),
//! each blind to the transport (they talk to [`SourceOutput`](crate::pipeline::SourceOutput)
//! and [`SinkInput`](crate::pipeline::SinkInput)), and the transform step they share
//! ([`chain`]). A running task is a [`TaskHandle`]: the worker asks it to run, pause or stop.

pub(crate) mod chain;
pub(crate) mod sink;
pub(crate) mod source;

use std::sync::Arc;
use std::time::Duration;

use sluice_api::config::Props;
use sluice_api::connector::{ConnectorFactory, ConnectorPlugin};
use sluice_api::{Error, Result};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::ConnectorSettings;
use crate::metrics::{TaskKind, TaskStats};
use crate::state::{State, StatusCell};
use crate::storage::topics::TopicReporter;
use crate::transforms::TransformChain;
use crate::worker::WorkerContext;

/// What the worker asks a running task to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TaskControl {
    /// Poll (sources) or take records (sinks).
    Run,
    /// Hold: sources stop polling, sinks stop taking records; both keep flushing/committing.
    Pause,
    /// Flush, commit and end.
    Stop,
}

/// Everything a task runner needs to (re)create its task.
#[derive(Clone)]
pub(crate) struct TaskSpec {
    /// The connector's name.
    pub(crate) connector: String,
    /// The connector's plugin.
    pub(crate) plugin: ConnectorPlugin,
    /// The connector's full config (transforms, error handling, topics).
    pub(crate) connector_config: Props,
    /// The task's number within the connector.
    pub(crate) task_id: u32,
    /// The task's own config, from `Connector::task_configs`.
    pub(crate) task_config: Props,
}

/// What both runners hold: the task's spec, the worker's shared context, the task's status
/// and control, and what its connector config gives (chain and settings), read once.
pub(crate) struct TaskRun {
    pub(crate) ctx: Arc<WorkerContext>,
    pub(crate) spec: TaskSpec,
    pub(crate) status: StatusCell,
    pub(crate) control: watch::Receiver<TaskControl>,
    pub(crate) chain: TransformChain,
    pub(crate) settings: ConnectorSettings,
    /// The task's figures for `GET /metrics`, served while the runner holds them.
    pub(crate) stats: Arc<TaskStats>,
    /// The topic the task last reported as active (KIP-558).
    pub(crate) topics: TopicReporter,
}

impl TaskRun {
    /// Reads the connector config of `spec` into a transform chain and settings.
    fn prepare(
        ctx: Arc<WorkerContext>,
        mut spec: TaskSpec,
        status: StatusCell,
        control: watch::Receiver<TaskControl>,
    ) -> Result<TaskRun> {
        // Placeholders are filled in here, in the task alone: the configs kept elsewhere (and
        // in the task's handle, shown over REST) keep them as written.
        spec.connector_config = ctx.providers.resolve(&spec.connector_config)?;
        spec.task_config = ctx.providers.resolve(&spec.task_config)?;
        let chain = TransformChain::from_config(&ctx.registry, &spec.connector_config)?;
        let mut settings =
            ConnectorSettings::of(&spec.connector, spec.plugin.kind(), &spec.connector_config)
                .map_err(|e| Error::config(e.to_string()))?;
        let kind = match spec.plugin.factory {
            ConnectorFactory::Source(_) => TaskKind::Source,
            ConnectorFactory::Sink(_) => TaskKind::Sink,
        };
        let stats = ctx
            .metrics
            .task(&spec.connector, spec.task_id, kind, status.metrics.clone());
        settings.attach(&stats);
        Ok(TaskRun {
            ctx,
            spec,
            status,
            control,
            chain,
            settings,
            stats,
            topics: TopicReporter::default(),
        })
    }

    /// Reports the topics of `records` as active for this task (cheap when unchanged).
    pub(crate) fn saw_topics<'a>(&mut self, topics: impl Iterator<Item = &'a str>) {
        for topic in topics {
            self.topics.saw(
                &self.ctx.topics,
                &self.spec.connector,
                self.spec.task_id,
                topic,
            );
        }
    }

    /// Sets the task's state, in its status and its figures (`running-ratio`).
    pub(crate) fn set_state(&self, state: State) {
        self.status.set(state);
        self.stats.state(state);
    }

    /// Counts the task's start (`task-startup-*`) and passes its result on.
    pub(crate) fn started<T>(&self, result: Result<T>) -> Result<T> {
        self.ctx.metrics.task_started(result.is_ok());
        result
    }
}

/// A running task.
pub(crate) struct TaskHandle {
    /// The task's number within its connector.
    pub(crate) id: u32,
    /// `<connector>-<id>`, for logs.
    name: String,
    /// The task's own config.
    pub(crate) config: Props,
    /// Its state, shared with the runner.
    pub(crate) status: StatusCell,
    control: watch::Sender<TaskControl>,
    join: JoinHandle<()>,
}

impl TaskHandle {
    /// Starts a task runner for `spec`, running or paused.
    pub(crate) fn spawn(
        ctx: Arc<WorkerContext>,
        spec: TaskSpec,
        initial: TaskControl,
    ) -> TaskHandle {
        let status = StatusCell::new(State::Unassigned);
        let (control, receiver) = watch::channel(initial);
        let id = spec.task_id;
        let name = format!("{}-{}", spec.connector, spec.task_id);
        let config = spec.task_config.clone();
        let runner_status = status.clone();
        let runner_name = name.clone();
        tracing::info!(task = %name, "task starting");
        let join = tokio::spawn(async move {
            let factory = spec.plugin.factory;
            let result = match TaskRun::prepare(ctx, spec, runner_status.clone(), receiver) {
                Ok(run) => match factory {
                    ConnectorFactory::Source(_) => source::SourceRunner::run(run).await,
                    ConnectorFactory::Sink(_) => sink::SinkRunner::new(run).run().await,
                },
                Err(error) => Err(error),
            };
            if let Err(error) = result {
                tracing::error!(task = %runner_name, error = %error.trace(), "task failed");
                runner_status.fail(error.trace());
            }
        });
        TaskHandle {
            id,
            name,
            config,
            status,
            control,
            join,
        }
    }

    /// Asks the task to run or pause.
    pub(crate) fn set(&self, control: TaskControl) {
        self.control.send_replace(control);
    }

    /// What the task was last asked to do.
    pub(crate) fn control(&self) -> TaskControl {
        *self.control.borrow()
    }

    /// Asks the task to stop and waits up to `timeout` for it to flush, commit and stop;
    /// after that it is aborted (what it had not committed is delivered again later).
    pub(crate) async fn stop(self, timeout: Duration) {
        self.control.send_replace(TaskControl::Stop);
        let abort = self.join.abort_handle();
        if tokio::time::timeout(timeout, self.join).await.is_err() {
            tracing::warn!(
                task = %self.name, timeout_ms = timeout.as_millis() as u64,
                "task did not stop within task.shutdown.graceful.timeout.ms (it is blocked, e.g. \
                 in a file call that does not return); abandoned: what it had not committed is \
                 read again on restart, and a blocking call it is in keeps its thread until the \
                 call returns"
            );
            abort.abort();
        }
        tracing::info!(task = %self.name, "task ended");
    }
}

/// Resolves once the task is asked to stop (or its handle is gone).
pub(crate) async fn wait_for_stop(control: &mut watch::Receiver<TaskControl>) {
    while *control.borrow_and_update() != TaskControl::Stop {
        if control.changed().await.is_err() {
            return;
        }
    }
}
