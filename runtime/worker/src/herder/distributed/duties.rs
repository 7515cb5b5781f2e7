//! What one distributed worker runs, and keeping it in line with the config topic: start what
//! the group assigns, stop what it revokes, follow config, target-state and restart records for
//! the work it holds, restart the connector instances it holds whose config provider files
//! changed, hand task configs its connectors generate to the leader, and write the status of
//! its work to the status topic.
//!
//! # Contract
//! * Only the membership loop calls these, one call at a time.
//! * Revoked tasks are stopped (flushing and committing) before the call returns, so the next
//!   owner never runs a task while this worker still does.
//! * Status records are written only for work held here, with the generation it was assigned
//!   in; a worker that lost work writes nothing more for it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use sluice_api::config::Props;
use sluice_api::connector::ConnectorPlugin;

use super::assignor::Work;
use super::cluster::Cluster;
use super::herder::publish_task_configs;
use crate::state::{State, TargetState};
use crate::storage::config_topic::ConfigSnapshot;

/// What a piece of work runs with here.
#[derive(Debug, Clone)]
struct Applied {
    connector_config: Props,
    /// A task's own config (`None` for a connector instance).
    task_config: Option<Props>,
    target: TargetState,
    /// The restart request sequence already honoured.
    restarts: u64,
    /// The task configs a connector instance generated (connector instances only).
    generated: Vec<Props>,
}

/// The work this worker holds.
#[derive(Debug)]
pub(crate) struct Duties {
    cluster: Arc<Cluster>,
    applied: BTreeMap<Work, Applied>,
    /// The last status written per piece.
    published: BTreeMap<Work, (State, Option<String>)>,
    /// The generation the current assignment came with (status records carry it).
    pub generation: i64,
}

fn target_of(snapshot: &ConfigSnapshot, name: &str) -> TargetState {
    snapshot
        .target_states
        .get(name)
        .copied()
        .unwrap_or(TargetState::Started)
}

fn restarts_of(snapshot: &ConfigSnapshot, name: &str) -> u64 {
    snapshot
        .restart_requests
        .get(name)
        .map_or(0, |r| r.sequence)
}

impl Duties {
    pub(crate) fn new(cluster: Arc<Cluster>) -> Duties {
        Duties {
            cluster,
            applied: BTreeMap::new(),
            published: BTreeMap::new(),
            generation: -1,
        }
    }

    /// What this worker holds now.
    pub(crate) fn owned(&self) -> BTreeSet<Work> {
        self.applied.keys().cloned().collect()
    }

    fn plugin_of(&self, config: &Props) -> Option<ConnectorPlugin> {
        let class = config.get("connector.class")?;
        match self
            .cluster
            .worker
            .registry()
            .resolve_connector(class, config)
        {
            Ok(plugin) => Some(plugin),
            Err(e) => {
                tracing::error!(class, error = %e, "cannot run a connector of this class");
                None
            }
        }
    }

    /// Stops `work` (tasks together, then connector instances).
    pub(crate) async fn revoke(&mut self, work: &BTreeSet<Work>) {
        let tasks: Vec<(String, u32)> = work
            .iter()
            .filter_map(|w| match w {
                Work::Task(c, n) => Some((c.clone(), *n)),
                Work::Connector(_) => None,
            })
            .collect();
        self.cluster.worker.stop_tasks(&tasks).await;
        for piece in work {
            if let Work::Connector(name) = piece {
                self.cluster.worker.stop_instance(name).await;
            }
            self.applied.remove(piece);
            self.published.remove(piece);
        }
    }

    /// Stops everything held (the coordinator is out of reach, or the worker stops).
    pub(crate) async fn drop_all(&mut self) {
        let all = self.owned();
        self.revoke(&all).await;
    }

    /// Starts `work` from `snapshot` (connector instances first, then tasks).
    pub(crate) async fn assign(&mut self, work: &BTreeSet<Work>, snapshot: &ConfigSnapshot) {
        for piece in work.iter().filter(|w| matches!(w, Work::Connector(_))) {
            if let Work::Connector(name) = piece {
                self.start_connector(name, snapshot).await;
            }
        }
        for piece in work {
            if let Work::Task(name, task) = piece {
                self.start_task(name, *task, snapshot).await;
            }
        }
    }

    async fn start_connector(&mut self, name: &str, snapshot: &ConfigSnapshot) {
        let Some(config) = snapshot.connectors.get(name) else {
            return;
        };
        let Some(plugin) = self.plugin_of(config) else {
            return;
        };
        let target = target_of(snapshot, name);
        let generated = self
            .cluster
            .worker
            .start_instance(name, plugin, config.clone(), target)
            .await;
        self.hand_over_tasks(name, &generated, snapshot);
        self.applied.insert(
            Work::Connector(name.to_owned()),
            Applied {
                connector_config: config.clone(),
                task_config: None,
                target,
                restarts: restarts_of(snapshot, name),
                generated,
            },
        );
    }

    /// Restarts the connector instances among `names` held here because a config provider's
    /// file their config reads changed (the worker checked the files and
    /// `config.action.reload=restart`, and restarted the connectors' tasks here itself). As
    /// Kafka Connect's DistributedHerder restarts a connector on the worker that owns it: the
    /// instance fills its placeholders in again, in the target state `snapshot` has, and task
    /// configs it now generates that differ from the committed ones go to the leader, whose
    /// write restarts the tasks wherever they run. A connector no longer held here, deleted,
    /// or STOPPED is left alone ([`Duties::follow`] deals with it).
    pub(crate) async fn restart_for_changed_providers(
        &mut self,
        names: &BTreeSet<String>,
        snapshot: &ConfigSnapshot,
    ) {
        for name in names {
            let held = self.applied.contains_key(&Work::Connector(name.clone()));
            if !held
                || !snapshot.connectors.contains_key(name)
                || target_of(snapshot, name) == TargetState::Stopped
            {
                continue;
            }
            tracing::info!(connector = %name, "restarting connector instance (a config provider's file changed)");
            self.start_connector(name, snapshot).await;
        }
    }

    /// Sends task configs to the leader when they differ from the committed ones (in the
    /// background: the leader may be rebalancing, which this worker's loop takes part in).
    fn hand_over_tasks(&self, name: &str, generated: &[Props], snapshot: &ConfigSnapshot) {
        let committed = snapshot.tasks.get(name).map(Vec::as_slice);
        let failed = generated.is_empty() && target_of(snapshot, name) != TargetState::Stopped;
        if committed == Some(generated) || (failed && committed.is_some()) {
            return;
        }
        let cluster = Arc::clone(&self.cluster);
        let (name, tasks) = (name.to_owned(), generated.to_vec());
        tokio::spawn(async move {
            if let Err(e) = publish_task_configs(&cluster, &name, &tasks).await {
                tracing::warn!(connector = %name, error = %e, "task configs could not be handed to the leader; retried at the next change");
            }
        });
    }

    async fn start_task(&mut self, name: &str, task: u32, snapshot: &ConfigSnapshot) {
        let (Some(config), Some(task_config)) = (
            snapshot.connectors.get(name),
            snapshot.tasks.get(name).and_then(|t| t.get(task as usize)),
        ) else {
            return;
        };
        let Some(plugin) = self.plugin_of(config) else {
            return;
        };
        let target = target_of(snapshot, name);
        self.cluster
            .worker
            .start_task(
                name,
                plugin,
                config.clone(),
                task,
                task_config.clone(),
                target,
            )
            .await;
        self.applied.insert(
            Work::Task(name.to_owned(), task),
            Applied {
                connector_config: config.clone(),
                task_config: Some(task_config.clone()),
                target,
                restarts: restarts_of(snapshot, name),
                generated: Vec::new(),
            },
        );
    }

    /// Follows what changed in the config topic for the work held here; work whose config is
    /// gone stops (the leader reassigns in the next rebalance).
    pub(crate) async fn follow(&mut self, snapshot: &ConfigSnapshot) {
        let held: Vec<(Work, Applied)> = self
            .applied
            .iter()
            .map(|(w, a)| (w.clone(), a.clone()))
            .collect();
        let mut gone = BTreeSet::new();
        let local = self.cluster.worker.running_here().await;
        for (work, applied) in held {
            let name = match &work {
                Work::Connector(c) | Work::Task(c, _) => c.clone(),
            };
            let Some(config) = snapshot.connectors.get(&name) else {
                gone.insert(work);
                continue;
            };
            let target = target_of(snapshot, &name);
            let restart = snapshot
                .restart_requests
                .get(&name)
                .filter(|r| r.sequence > applied.restarts);
            let stopped_changed =
                (target == TargetState::Stopped) != (applied.target == TargetState::Stopped);
            match &work {
                Work::Connector(_) => {
                    let failed = local
                        .get(&name)
                        .and_then(|(status, _)| status.as_ref())
                        .is_some_and(|s| s.state == State::Failed);
                    let restart_now = restart.is_some_and(|r| !r.only_failed || failed);
                    if config != &applied.connector_config || stopped_changed || restart_now {
                        tracing::info!(connector = %name, "restarting connector instance (config, target state or restart request)");
                        self.start_connector(&name, snapshot).await;
                    } else {
                        if target != applied.target {
                            let _ = self.cluster.worker.set_running_state(&name, target).await;
                        }
                        self.hand_over_tasks(&name, &applied.generated, snapshot);
                        let entry = self.applied.get_mut(&work).expect("held");
                        entry.target = target;
                        entry.restarts = restarts_of(snapshot, &name);
                    }
                }
                Work::Task(_, task) => {
                    let Some(task_config) = snapshot
                        .tasks
                        .get(&name)
                        .and_then(|t| t.get(*task as usize))
                    else {
                        gone.insert(work);
                        continue;
                    };
                    let failed = local.get(&name).is_some_and(|(_, tasks)| {
                        tasks
                            .iter()
                            .any(|t| t.id == *task && t.status.state == State::Failed)
                    });
                    let restart_now =
                        restart.is_some_and(|r| r.include_tasks && (!r.only_failed || failed));
                    if Some(task_config) != applied.task_config.as_ref()
                        || config != &applied.connector_config
                        || restart_now
                    {
                        tracing::info!(connector = %name, task, "restarting task (config or restart request)");
                        self.start_task(&name, *task, snapshot).await;
                    } else {
                        if target != applied.target {
                            let _ = self.cluster.worker.set_running_state(&name, target).await;
                        }
                        let entry = self.applied.get_mut(&work).expect("held");
                        entry.target = target;
                        entry.restarts = restarts_of(snapshot, &name);
                    }
                }
            }
        }
        if !gone.is_empty() {
            tracing::info!(work = ?gone, "stopping work whose config was removed");
            self.revoke(&gone).await;
            self.forget_deleted(&gone, snapshot).await;
        }
    }

    /// Removes the status of `stopped` work whose connector `snapshot` no longer has (Kafka
    /// Connect's DESTROYED), so a leader deleting the connector knows this worker has stopped
    /// it before it cleans up after it. Work stopped to move elsewhere keeps its status.
    pub(crate) async fn forget_deleted(&self, stopped: &BTreeSet<Work>, snapshot: &ConfigSnapshot) {
        for work in stopped {
            let (name, task) = match work {
                Work::Connector(c) => (c, None),
                Work::Task(c, n) => (c, Some(*n)),
            };
            if snapshot.connectors.contains_key(name) {
                continue;
            }
            if let Err(e) = self.cluster.statuses.remove_one(name, task).await {
                tracing::warn!(connector = %name, ?task, error = %e, "removing the status of deleted work failed");
            }
            // A deleted connector's active topics go with it (KIP-558).
            self.cluster.worker.topics().reset(name);
            if task.is_none()
                && let Err(e) = self.cluster.statuses.remove_topics(name).await
            {
                tracing::warn!(connector = %name, error = %e, "removing the active topics of a deleted connector failed");
            }
        }
    }

    /// Forgets what was written, so the next [`Duties::publish`] writes every status again:
    /// after a rebalance the leader may have marked work in transit UNASSIGNED.
    pub(crate) fn republish(&mut self) {
        self.published.clear();
    }

    /// Writes the status of work held here that changed since last written.
    pub(crate) async fn publish(&mut self) {
        let local = self.cluster.worker.running_here().await;
        for work in self.owned() {
            let now = match &work {
                Work::Connector(c) => local
                    .get(c)
                    .and_then(|(status, _)| status.clone())
                    .map(|s| (s.state, s.trace)),
                Work::Task(c, n) => local.get(c).and_then(|(_, tasks)| {
                    tasks
                        .iter()
                        .find(|t| t.id == *n)
                        .map(|t| (t.status.state, t.status.trace.clone()))
                }),
            };
            let Some(now) = now else { continue };
            if now.0 == State::Unassigned || self.published.get(&work) == Some(&now) {
                continue;
            }
            let (name, task) = match &work {
                Work::Connector(c) => (c.as_str(), None),
                Work::Task(c, n) => (c.as_str(), Some(*n)),
            };
            match self
                .cluster
                .statuses
                .put(name, task, now.0, now.1.as_deref(), self.generation)
                .await
            {
                Ok(()) => {
                    self.published.insert(work, now);
                }
                Err(e) => tracing::warn!(error = %e, "writing a status failed; retried"),
            }
        }
    }
}
