//! The distributed herder: Kafka Connect's REST API on every worker of a group. Reads are
//! answered from this worker's view of the config and status topics; changes are carried out
//! by the leader (forwarded to it when this worker follows), after waiting for the group to be
//! stable rather than answering 409.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Value as Json, json};
use sluice_api::config::Props;
use sluice_api::connector::{ConnectorKind, ConnectorPlugin};
use sluice_api::{Error, ErrorKind, Result};

use super::cluster::{Cluster, REST_WAIT, Route};
use super::signature;
use crate::config::connector::{self, full_def};
use crate::config::settings::consumer_group;
use crate::herder::{Herder, check_name, plugins, prepare_config};
use crate::state::{
    ConnectorInfo, ConnectorStatus, PartitionOffset, PluginInfo, State, StateInfo, TargetState,
    TaskId, TaskInfo, TaskState,
};
use crate::storage::config_topic::{
    ConfigSnapshot, connector_deletion_records, connector_record, restart_request_record,
    target_state_record, task_config_records,
};
use crate::storage::status_topic::status_key;

/// The REST side of a distributed worker.
#[derive(Debug)]
pub(crate) struct DistributedHerder {
    cluster: Arc<Cluster>,
}

fn not_found(name: &str) -> Error {
    Error::not_found(format!("Connector {name} not found"))
}

/// Percent-encodes a connector name for a URL path.
fn path_part(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl DistributedHerder {
    pub(crate) fn new(cluster: Arc<Cluster>) -> DistributedHerder {
        DistributedHerder { cluster }
    }

    fn plugin_of(&self, config: &Props) -> Result<ConnectorPlugin> {
        let class = config
            .get("connector.class")
            .ok_or_else(|| Error::config("connector config has no connector.class"))?;
        self.cluster
            .worker
            .registry()
            .resolve_connector(class, config)
    }

    async fn snapshot(&self) -> Result<ConfigSnapshot> {
        self.cluster.snapshot().await
    }

    fn info(&self, name: &str, snapshot: &ConfigSnapshot) -> Result<ConnectorInfo> {
        let config = snapshot
            .connectors
            .get(name)
            .ok_or_else(|| not_found(name))?;
        let plugin = self.plugin_of(config)?;
        let tasks = snapshot.tasks.get(name).map_or(0, Vec::len) as u32;
        Ok(ConnectorInfo {
            name: name.to_owned(),
            config: full_def(&plugin).redact(config),
            tasks: (0..tasks)
                .map(|task| TaskId {
                    connector: name.to_owned(),
                    task,
                })
                .collect(),
            kind: plugin.kind().as_str(),
        })
    }

    /// The info of `name` once this worker's view has the leader's write.
    async fn info_after_write(&self, name: &str) -> Result<ConnectorInfo> {
        let snapshot = self.snapshot().await?;
        self.info(name, &snapshot)
    }

    /// Creates or replaces a connector on the leader.
    async fn lead_put(
        &self,
        name: &str,
        mut config: Props,
        replace: bool,
    ) -> Result<(ConnectorInfo, bool)> {
        let _writes = self.cluster.writes.lock().await;
        let snapshot = self.snapshot().await?;
        let existing = snapshot.connectors.get(name);
        if !replace && existing.is_some() {
            return Err(Error::conflict(format!("Connector {name} already exists")));
        }
        let existing_plugin = existing
            .map(|c| self.plugin_of(c))
            .transpose()
            .ok()
            .flatten();
        prepare_config(name, &mut config, existing.zip(existing_plugin))?;
        let resolved = self.cluster.worker.resolve(&config)?;
        let plugin =
            connector::validate(self.cluster.worker.registry(), &resolved).into_result()?;
        let group = consumer_group(name, &config);
        if plugin.kind() == ConnectorKind::Sink && group == self.cluster.settings.group_id {
            return Err(Error::config(format!(
                "sink connector {name} would consume as group `{group}`, which is this worker \
                 group's group.id: the workers and the sink's consumers would join one group and \
                 disrupt each other. Rename the connector, set consumer.override.group.id, or \
                 give the workers another group.id"
            )));
        }
        let mut records = Vec::new();
        let created = existing.is_none();
        if created {
            // As Kafka Connect: the target state first, so the connector never starts in a
            // state it was not meant to have.
            records.push(target_state_record(name, TargetState::Started));
        }
        records.push(connector_record(name, &config));
        self.cluster.configs.write(records).await?;
        self.cluster.config_written.notify_one();
        tracing::info!(connector = name, created, "connector config written");
        Ok((self.info_after_write(name).await?, created))
    }

    async fn lead_delete(&self, name: &str, cleanup: bool) -> Result<()> {
        let (plugin, config, tasks) = {
            let _writes = self.cluster.writes.lock().await;
            let snapshot = self.snapshot().await?;
            let config = snapshot
                .connectors
                .get(name)
                .ok_or_else(|| not_found(name))?;
            let tasks = snapshot.tasks.get(name).map_or(0, Vec::len) as u32;
            let plugin = self.plugin_of(config)?;
            self.cluster
                .configs
                .write(connector_deletion_records(name))
                .await?;
            self.cluster.config_written.notify_one();
            (plugin, config.clone(), tasks)
        };
        tracing::info!(connector = name, "connector deleted");
        // Every worker stops what it ran of the connector as soon as it reads the deletion,
        // and then removes its status; the next generation has none of it. Cleaning up
        // after the connector (a replication slot) also waits for every live owner to have
        // removed its status; work held for a worker that is gone has no owner to wait for.
        let start = self.cluster.view().generation;
        let deadline = tokio::time::Instant::now() + REST_WAIT;
        loop {
            let view = self.cluster.view();
            let running = if cleanup {
                let statuses = self.cluster.statuses.snapshot().await?;
                running_owners(&statuses, name, tasks, &view.member_urls)
            } else {
                Default::default()
            };
            if view.stable && view.generation > start && running.is_empty() {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                tracing::warn!(
                    connector = name,
                    still_running_on = ?running,
                    "workers did not confirm stopping the deleted connector within {REST_WAIT:?}"
                );
                // No live owner holds it any more (only the next generation is late): the
                // clean-up may go ahead.
                if cleanup && !running.is_empty() {
                    return Err(Error::retriable(format!(
                        "connector {name} was deleted, but {running:?} did not confirm \
                         stopping it within {REST_WAIT:?}, so its external state was not \
                         cleaned up; remove it by hand once they have (for Postgres, \
                         pg_drop_replication_slot of its slot.name)"
                    )));
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.cluster.statuses.remove(name, tasks).await?;
        if cleanup && plugin.kind() == ConnectorKind::Source {
            self.cluster
                .worker
                .cleanup(plugin, &config)
                .await
                .map_err(|e| {
                    e.context(format!(
                        "connector {name} was deleted, but cleaning up its external state failed"
                    ))
                })?;
        }
        Ok(())
    }

    async fn write_target_state(&self, name: &str, target: TargetState) -> Result<()> {
        let snapshot = self.snapshot().await?;
        if !snapshot.connectors.contains_key(name) {
            return Err(not_found(name));
        }
        self.cluster
            .configs
            .write(vec![target_state_record(name, target)])
            .await?;
        self.cluster.config_written.notify_one();
        tracing::info!(connector = name, ?target, "target state written");
        Ok(())
    }

    /// A STOPPED connector's plugin and config, for the offsets API.
    async fn stopped(&self, name: &str) -> Result<(ConnectorPlugin, Props)> {
        let snapshot = self.snapshot().await?;
        let config = snapshot
            .connectors
            .get(name)
            .ok_or_else(|| not_found(name))?;
        if snapshot.target_states.get(name) != Some(&TargetState::Stopped) {
            return Err(Error::config(format!(
                "Connectors must be in the STOPPED state before their offsets can be modified. \
                 Stop it first with PUT /connectors/{name}/stop"
            )));
        }
        Ok((self.plugin_of(config)?, config.clone()))
    }

    /// Writes task configs the leader received or generated itself.
    pub(crate) async fn lead_task_configs(
        cluster: &Cluster,
        name: &str,
        tasks: &[Props],
    ) -> Result<()> {
        let _writes = cluster.writes.lock().await;
        let snapshot = cluster.snapshot().await?;
        if !snapshot.connectors.contains_key(name) {
            return Err(not_found(name));
        }
        if snapshot.tasks.get(name).map(Vec::as_slice) == Some(tasks) {
            return Ok(());
        }
        cluster
            .configs
            .write(task_config_records(name, tasks))
            .await?;
        cluster.config_written.notify_one();
        tracing::info!(
            connector = name,
            tasks = tasks.len(),
            "task configs written"
        );
        Ok(())
    }
}

fn as_refusal(error: Error) -> (u16, String) {
    (
        crate::rest::status_for(error.kind()).as_u16(),
        error.message().to_owned(),
    )
}

#[async_trait]
impl Herder for DistributedHerder {
    fn worker_id(&self) -> String {
        self.cluster.worker.worker_id().to_owned()
    }

    fn metrics(&self) -> std::sync::Arc<crate::metrics::WorkerMetrics> {
        self.cluster.worker.metrics()
    }

    fn active_topics(&self) -> std::sync::Arc<crate::storage::topics::ActiveTopics> {
        self.cluster.worker.topics()
    }

    /// From the status topic, where every worker of the group writes what its tasks used.
    async fn connector_topics(&self, name: &str) -> Result<Vec<String>> {
        self.cluster.statuses.topics_of(name).await
    }

    /// Removes the records from the status topic and has every worker running the
    /// connector's tasks forget them too, so those tasks report their topics again (a peer
    /// is told with `forward=false`, which makes it forget only its own).
    async fn reset_connector_topics(&self, name: &str) -> Result<()> {
        self.cluster.worker.topics().reset(name);
        if crate::rest::hop::current() == crate::rest::hop::Hop::Last {
            return Ok(());
        }
        self.cluster.statuses.remove_topics(name).await?;
        let statuses = self.cluster.statuses.snapshot().await?;
        let here = self.worker_id();
        let workers: std::collections::BTreeSet<&str> = statuses
            .iter()
            .filter(|(key, _)| {
                key.strip_prefix("status-task-")
                    .and_then(|rest| rest.rsplit_once('-'))
                    .is_some_and(|(connector, _)| connector == name)
            })
            .filter_map(|(_, status)| status["worker_id"].as_str())
            .filter(|worker| *worker != here)
            .collect();
        let path = format!("/connectors/{}/topics/reset?forward=false", path_part(name));
        for worker in workers {
            if let Err(e) = self
                .cluster
                .call(&self.cluster.worker_url(worker), Method::PUT, &path, None)
                .await
            {
                tracing::warn!(connector = name, worker, error = %e, "a worker running the connector's tasks did not take the topics reset; its tasks report their topics again when they restart");
            }
        }
        Ok(())
    }

    async fn connector_names(&self) -> Vec<String> {
        match self.snapshot().await {
            Ok(snapshot) => snapshot.connectors.keys().cloned().collect(),
            Err(e) => {
                tracing::warn!(error = %e, "reading the config topic failed");
                Vec::new()
            }
        }
    }

    async fn connector_info(&self, name: &str) -> Result<ConnectorInfo> {
        let snapshot = self.snapshot().await?;
        self.info(name, &snapshot)
    }

    async fn connector_status(&self, name: &str) -> Result<ConnectorStatus> {
        let snapshot = self.snapshot().await?;
        let config = snapshot
            .connectors
            .get(name)
            .ok_or_else(|| not_found(name))?;
        let kind = self.plugin_of(config)?.kind().as_str();
        let statuses = self.cluster.statuses.snapshot().await?;
        let here = self.cluster.worker.running_here().await;
        let local = here.get(name);
        let read = |task: Option<u32>| {
            let record = statuses.get(&status_key(name, task));
            let state = record
                .and_then(|r| serde_json::from_value::<State>(r["state"].clone()).ok())
                .unwrap_or(State::Unassigned);
            let worker_id = record
                .and_then(|r| r["worker_id"].as_str())
                .unwrap_or_default()
                .to_owned();
            let trace = record.and_then(|r| r["trace"].as_str()).map(str::to_owned);
            (state, worker_id, trace)
        };
        let (state, worker_id, trace) = read(None);
        let tasks = (0..snapshot.tasks.get(name).map_or(0, Vec::len) as u32)
            .map(|id| {
                let (state, worker_id, trace) = read(Some(id));
                let metrics = local
                    .and_then(|(_, tasks)| tasks.iter().find(|t| t.id == id))
                    .map(|t| t.metrics.clone());
                TaskState {
                    id,
                    state,
                    worker_id,
                    trace,
                    metrics: metrics.as_ref().map(|m| m.to_json()).unwrap_or_default(),
                    gauges: metrics.map(|m| m.gauges()).unwrap_or_default(),
                }
            })
            .collect();
        Ok(ConnectorStatus {
            name: name.to_owned(),
            connector: StateInfo {
                state,
                worker_id,
                trace,
            },
            tasks,
            kind,
        })
    }

    async fn put_connector(
        &self,
        name: &str,
        config: Props,
        replace: bool,
    ) -> Result<(ConnectorInfo, bool)> {
        check_name(name)?;
        let route = if replace {
            self.cluster
                .leader_or_forward(
                    Method::PUT,
                    &format!("/connectors/{}/config", path_part(name)),
                    Some(&json!(config)),
                )
                .await?
        } else {
            self.cluster
                .leader_or_forward(
                    Method::POST,
                    "/connectors",
                    Some(&json!({"name": name, "config": config})),
                )
                .await?
        };
        match route {
            Route::Here => self.lead_put(name, config, replace).await,
            Route::Forwarded(status) => Ok((self.info_after_write(name).await?, status == 201)),
        }
    }

    async fn patch_connector(
        &self,
        name: &str,
        patch: Vec<(String, Option<String>)>,
    ) -> Result<ConnectorInfo> {
        let body: serde_json::Map<String, Json> = patch
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().map_or(Json::Null, Json::String)))
            .collect();
        let route = self
            .cluster
            .leader_or_forward(
                Method::PATCH,
                &format!("/connectors/{}/config", path_part(name)),
                Some(&Json::Object(body)),
            )
            .await?;
        match route {
            Route::Here => {
                let snapshot = self.snapshot().await?;
                let mut config = snapshot
                    .connectors
                    .get(name)
                    .cloned()
                    .ok_or_else(|| not_found(name))?;
                for (key, value) in patch {
                    match value {
                        Some(value) => config.insert(key, value),
                        None => config.remove(&key),
                    };
                }
                self.lead_put(name, config, true)
                    .await
                    .map(|(info, _)| info)
            }
            Route::Forwarded(..) => self.info_after_write(name).await,
        }
    }

    async fn delete_connector(&self, name: &str, cleanup: bool) -> Result<()> {
        let path = format!("/connectors/{}?cleanup={cleanup}", path_part(name));
        match self
            .cluster
            .leader_or_forward(Method::DELETE, &path, None)
            .await?
        {
            Route::Here => self.lead_delete(name, cleanup).await,
            Route::Forwarded(..) => self.snapshot().await.map(|_| ()),
        }
    }

    async fn task_infos(&self, name: &str) -> Result<Vec<TaskInfo>> {
        let snapshot = self.snapshot().await?;
        let config = snapshot
            .connectors
            .get(name)
            .ok_or_else(|| not_found(name))?;
        let def = full_def(&self.plugin_of(config)?);
        Ok(snapshot
            .tasks
            .get(name)
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(task, config)| TaskInfo {
                id: TaskId {
                    connector: name.to_owned(),
                    task: task as u32,
                },
                config: def.redact(config),
            })
            .collect())
    }

    async fn restart_connector(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> Result<()> {
        let path = format!(
            "/connectors/{}/restart?includeTasks={include_tasks}&onlyFailed={only_failed}",
            path_part(name)
        );
        match self
            .cluster
            .leader_or_forward(Method::POST, &path, None)
            .await?
        {
            Route::Here => {
                let snapshot = self.snapshot().await?;
                if !snapshot.connectors.contains_key(name) {
                    return Err(not_found(name));
                }
                self.cluster
                    .configs
                    .write(vec![restart_request_record(
                        name,
                        include_tasks,
                        only_failed,
                    )])
                    .await?;
                self.cluster.config_written.notify_one();
                Ok(())
            }
            Route::Forwarded(..) => Ok(()),
        }
    }

    async fn restart_task(&self, name: &str, task: u32) -> Result<()> {
        // The task's owner restarts it: here, or through its own REST API.
        let status = self.task_status(name, task).await?;
        if status.worker_id == self.worker_id() {
            let snapshot = self.snapshot().await?;
            let target = snapshot
                .target_states
                .get(name)
                .copied()
                .unwrap_or(TargetState::Started);
            return self.cluster.worker.restart_task(name, task, target).await;
        }
        if status.worker_id.is_empty() || status.state == State::Unassigned {
            return Err(Error::retriable(format!(
                "task {name}-{task} is not running on any worker yet; try again once it is assigned"
            )));
        }
        self.cluster
            .call(
                &self.cluster.worker_url(&status.worker_id),
                Method::POST,
                &format!("/connectors/{}/tasks/{task}/restart", path_part(name)),
                None,
            )
            .await
            .map(|_| ())
    }

    async fn set_target_state(&self, name: &str, target: TargetState) -> Result<()> {
        if target == TargetState::Stopped {
            let path = format!("/connectors/{}/stop", path_part(name));
            if let Route::Forwarded(..) = self
                .cluster
                .leader_or_forward(Method::PUT, &path, None)
                .await?
            {
                return Ok(());
            }
        }
        // Pause and resume are written by whichever worker is asked, as in Kafka Connect.
        self.write_target_state(name, target).await
    }

    async fn offsets(&self, name: &str) -> Result<Vec<PartitionOffset>> {
        let snapshot = self.snapshot().await?;
        let config = snapshot
            .connectors
            .get(name)
            .ok_or_else(|| not_found(name))?;
        let kind = self.plugin_of(config)?.kind();
        self.cluster.worker.offsets(name, kind, config).await
    }

    async fn alter_offsets(&self, name: &str, offsets: Vec<PartitionOffset>) -> Result<()> {
        let path = format!("/connectors/{}/offsets", path_part(name));
        let body = json!({"offsets": offsets});
        match self
            .cluster
            .leader_or_forward(Method::PATCH, &path, Some(&body))
            .await?
        {
            Route::Here => {
                let (plugin, config) = self.stopped(name).await?;
                self.cluster
                    .worker
                    .alter_offsets(name, plugin, &config, offsets)
                    .await
            }
            Route::Forwarded(..) => Ok(()),
        }
    }

    async fn reset_offsets(&self, name: &str) -> Result<()> {
        let path = format!("/connectors/{}/offsets", path_part(name));
        match self
            .cluster
            .leader_or_forward(Method::DELETE, &path, None)
            .await?
        {
            Route::Here => {
                let (plugin, config) = self.stopped(name).await?;
                self.cluster
                    .worker
                    .reset_offsets(name, plugin, &config)
                    .await
            }
            Route::Forwarded(..) => Ok(()),
        }
    }

    fn plugins(&self) -> Vec<PluginInfo> {
        plugins::list(self.cluster.worker.registry())
    }

    fn plugin_config(&self, plugin: &str) -> Result<Json> {
        plugins::config_of(self.cluster.worker.registry(), plugin)
    }

    async fn validate(&self, plugin: &str, config: Props) -> Result<Json> {
        plugins::validate(self.cluster.worker.registry(), plugin, config)
    }

    async fn put_task_configs(
        &self,
        name: &str,
        body: &[u8],
        signature: Option<&str>,
        algorithm: Option<&str>,
    ) -> std::result::Result<(), (u16, String)> {
        let snapshot = self.snapshot().await.map_err(as_refusal)?;
        let key = Cluster::session_key(&snapshot);
        signature::verify(
            key.as_ref(),
            &self.cluster.settings.verification_algorithms,
            signature,
            algorithm,
            body,
        )
        .map_err(|refusal| {
            let message = match &refusal {
                signature::Refusal::BadRequest(why) => why.clone(),
                signature::Refusal::NoKeyYet => {
                    "This worker has no session key yet to verify internal requests with; try again"
                        .to_owned()
                }
                signature::Refusal::Forbidden => {
                    "Internal request contained an invalid signature".to_owned()
                }
            };
            tracing::warn!(
                connector = name,
                status = refusal.status(),
                "internal request refused: {message}"
            );
            (refusal.status(), message)
        })?;
        if !self.cluster.view().is_leader {
            return Err((
                503,
                "this worker is not the group's leader (a rebalance moved it); try again"
                    .to_owned(),
            ));
        }
        let tasks: Vec<Props> = serde_json::from_slice::<Vec<serde_json::Map<String, Json>>>(body)
            .map_err(|e| {
                (
                    400,
                    format!("task configs must be a JSON array of objects: {e}"),
                )
            })?
            .into_iter()
            .map(|task| {
                task.into_iter()
                    .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
                    .collect()
            })
            .collect();
        DistributedHerder::lead_task_configs(&self.cluster, name, &tasks)
            .await
            .map_err(as_refusal)
    }
}

/// Used by the membership loop: hands task configs generated here to the leader (writing them
/// directly when this worker leads), retrying through rebalances within [`REST_WAIT`].
pub(crate) async fn publish_task_configs(
    cluster: &Cluster,
    name: &str,
    tasks: &[Props],
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + REST_WAIT;
    loop {
        let result = match cluster.stable_leader(deadline).await? {
            None => DistributedHerder::lead_task_configs(cluster, name, tasks).await,
            Some(leader) => {
                let snapshot = cluster.snapshot().await?;
                let Some(key) = Cluster::session_key(&snapshot) else {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                let body = serde_json::to_vec(tasks).expect("task configs serialise");
                let headers = [
                    (signature::SIGNATURE_HEADER, signature::sign(&key, &body)),
                    (signature::ALGORITHM_HEADER, key.algorithm.clone()),
                ];
                cluster
                    .send(
                        &leader,
                        Method::POST,
                        &format!("/connectors/{}/tasks", path_part(name)),
                        Some(body),
                        &headers,
                    )
                    .await
                    .map(|_| ())
            }
        };
        match result {
            Err(e)
                if e.kind() == ErrorKind::Retriable && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            other => return other,
        }
    }
}

/// The workers (as `host:port`) whose status says they still run part of connector `name`
/// (it or one of its tasks `0..tasks`): a status that is not UNASSIGNED, written by a worker
/// that is a member (`member_urls`, `http://host:port`).
fn running_owners(
    statuses: &std::collections::BTreeMap<String, Json>,
    name: &str,
    tasks: u32,
    member_urls: &std::collections::BTreeSet<String>,
) -> std::collections::BTreeSet<String> {
    std::iter::once(status_key(name, None))
        .chain((0..tasks).map(|t| status_key(name, Some(t))))
        .filter_map(|key| statuses.get(&key))
        .filter(|status| status["state"] != "UNASSIGNED")
        .filter_map(|status| status["worker_id"].as_str())
        .filter(|worker| {
            let suffix = format!("://{worker}");
            member_urls.iter().any(|url| url.ends_with(&suffix))
        })
        .map(str::to_owned)
        .collect()
}
