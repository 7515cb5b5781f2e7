//! The membership loop of a distributed worker: join the group with Kafka Connect's metadata,
//! assign when leading, apply the assignment, then heartbeat and follow the config topic until
//! the group rebalances.
//!
//! # Contract
//! * Runs on one task for the worker's life; [`run`] returns after stopping all work and
//!   leaving the group once `stop` turns true.
//! * Nothing starts before this worker's config view has reached the config offset the
//!   assignment was computed at (bounded by `worker.sync.timeout.ms`; behind → rejoin after
//!   `worker.unsync.backoff.ms`): no work runs on a stale config.
//! * Revoked work stops before this worker syncs again, and a worker that has not heard from
//!   the coordinator for a whole session stops all its work, as the group will have given it
//!   to others: no task runs on two workers.
//! * Every member rejoins when the configured work changes (connectors created or deleted,
//!   task counts changed), as Kafka Connect's workers do on reading the config topic, rather
//!   than waiting for a heartbeat to tell it the leader started a rebalance; the leader also
//!   rotates the session key after `inter.worker.key.ttl.ms`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sluice_api::Result;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::assignor::{self, Member, Memory, Work};
use super::cluster::Cluster;
use super::duties::Duties;
use super::group::{GroupMember, GroupSettings, Joined, Outcome};
use super::heartbeat::{Beat, Heartbeats};
use super::protocol::{self, Assignment, CONFIG_MISMATCH, NO_ERROR, Protocol, WorkerMetadata};
use super::signature::{HMAC_SHA256, SessionKey};
use crate::clock::now_ms;
use crate::state::State;
use crate::storage::config_topic::{ConfigSnapshot, session_key_record};
use crate::storage::status_topic::status_key;

/// How soon the group rejoins when the leader held work for absent members.
const ABSENT_RECHECK: Duration = Duration::from_secs(3);

/// How long the leader waits after a change of connectors or task counts for more before it
/// rebalances.
const COALESCE: Duration = Duration::from_millis(500);

/// How often the config topic is read for changes between heartbeats.
const FOLLOW_EVERY: Duration = Duration::from_millis(300);

/// Every piece of work a config snapshot defines.
fn configured(snapshot: &ConfigSnapshot) -> BTreeSet<Work> {
    let mut work = BTreeSet::new();
    for name in snapshot.connectors.keys() {
        work.insert(Work::Connector(name.clone()));
        let tasks = snapshot.tasks.get(name).map_or(0, Vec::len) as u32;
        work.extend((0..tasks).map(|t| Work::Task(name.clone(), t)));
    }
    work
}

/// The loop's state between generations.
struct Loop {
    cluster: Arc<Cluster>,
    member: GroupMember,
    duties: Duties,
    /// The leader's memory of owners and departures (lost when leadership moves).
    memory: Memory,
    /// The work the last assignment was computed for (the leader's).
    assigned_for: BTreeSet<Work>,
    /// What each member (by URL) holds after the leader's last assignment.
    last_members: std::collections::BTreeMap<String, BTreeSet<Work>>,
    started: Instant,
    heartbeats: Heartbeats,
    /// The connector instances the worker asks to restart because a config provider's file
    /// under them changed ([`crate::worker::Worker::subscribe_instance_restarts`]).
    instance_restarts: mpsc::UnboundedReceiver<String>,
}

/// Runs the worker's membership until `stop` turns true.
pub(crate) async fn run(cluster: Arc<Cluster>, mut stop: watch::Receiver<bool>) {
    let settings = &cluster.settings;
    let group = GroupSettings {
        bootstrap: cluster.group_brokers.bootstrap.clone(),
        security: cluster.group_brokers.security.clone(),
        group_id: settings.group_id.clone(),
        client_id: format!("sluice-{}", cluster.worker.worker_id()),
        session_timeout: settings.session_timeout,
        rebalance_timeout: settings.rebalance_timeout,
        request_timeout: settings.request_timeout,
    };
    let mut state = Loop {
        heartbeats: Heartbeats::start(group.clone(), settings.heartbeat_interval),
        member: GroupMember::new(group),
        duties: Duties::new(Arc::clone(&cluster)),
        memory: Memory::default(),
        assigned_for: BTreeSet::new(),
        last_members: std::collections::BTreeMap::new(),
        started: Instant::now(),
        instance_restarts: cluster.worker.subscribe_instance_restarts(),
        cluster,
    };
    loop {
        tokio::select! {
            biased;
            _ = async { let _ = stop.wait_for(|stop| *stop).await; } => break,
            round = state.round() => {
                if let Err(e) = round {
                    if e.kind() == sluice_api::ErrorKind::Config {
                        // A refused password or certificate (rotated under a running worker):
                        // it will not pass by itself, but a fix of the broker's side will.
                        tracing::error!(error = %e, "the broker refuses the group client (fix the setting named); joining again");
                    } else {
                        tracing::warn!(error = %e, "rebalance round failed; joining again");
                    }
                    tokio::time::sleep(state.cluster.settings.worker_unsync_backoff.min(Duration::from_secs(1))).await;
                }
            }
        }
        state.cluster.update_view(|v| v.stable = false);
        if *stop.borrow() {
            break;
        }
    }
    state.duties.drop_all().await;
    state.member.leave().await;
    state.cluster.update_view(|v| {
        v.stable = false;
        v.owned.clear();
    });
    tracing::info!("left the worker group");
}

impl Loop {
    /// One generation: join, sync, apply, then heartbeat and follow until a rebalance.
    async fn round(&mut self) -> Result<()> {
        self.cluster.worker.metrics().rebalance_started();
        let settings = Arc::clone(&self.cluster.settings);
        self.lose_work_if_out_of_touch().await;
        let snapshot = self.cluster.snapshot().await?;
        let owned = self.duties.owned();
        let metadata = WorkerMetadata {
            url: self.cluster.url.clone(),
            config_offset: snapshot.offset,
            allocation: Some(Assignment {
                assigned: owned.clone(),
                ..Assignment::default()
            }),
        };
        let protocols: Vec<(&str, Bytes)> = settings
            .protocols
            .iter()
            .filter_map(|name| Protocol::from_name(name).map(|p| (*name, p)))
            .map(|(name, p)| (name, Bytes::from(protocol::encode_metadata(&metadata, p))))
            .collect();
        // While the join waits on an unreachable coordinator, the session may run out: the
        // work held here is then another worker's, and stops.
        let session = settings.session_timeout;
        let joined = {
            let join = self.member.join(&protocols);
            tokio::pin!(join);
            let mut check = tokio::time::interval(Duration::from_millis(500));
            loop {
                tokio::select! {
                    joined = &mut join => break joined?,
                    _ = check.tick(), if !self.duties.owned().is_empty()
                        && self.heartbeats.last_contact().elapsed() > session => {
                        tracing::warn!(
                            session_ms = session.as_millis() as u64,
                            "no answer from the group coordinator for a whole session: stopping all \
                             work here, as the group has given it to other workers"
                        );
                        self.duties.drop_all().await;
                        self.cluster.update_view(|v| v.owned.clear());
                    }
                }
            }
        };
        self.heartbeats.follow(&joined.member_id, joined.generation);
        self.heartbeats.touched();
        let chosen = Protocol::from_name(&joined.protocol).unwrap_or(Protocol::Compatible);
        let assignments = if joined.is_leader() {
            self.lead(&joined, chosen).await?
        } else {
            Vec::new()
        };
        let assignment = match self.member.sync(&joined, assignments).await? {
            Outcome::Done(bytes) if bytes.is_empty() => {
                // The leader's assignment left this member out: it joined after the leader
                // did. Kafka's join barrier makes that impossible; Tansu 0.6 has none, keeps
                // the generation and answers every further sync with nothing, so the member
                // starts over as a new one, which makes the group form again.
                tracing::info!(
                    generation = joined.generation,
                    "the leader's assignment left this worker out (a broker without a join \
                     barrier, as Tansu 0.6); leaving and joining as a new member"
                );
                self.member.leave().await;
                return Ok(());
            }
            Outcome::Done(bytes) => protocol::decode_assignment(&bytes)?,
            Outcome::Rejoin(why) => {
                tracing::info!(why, "sync answered with a rebalance; joining again");
                return Ok(());
            }
        };
        self.heartbeats.touched();
        if assignment.error == CONFIG_MISMATCH {
            tracing::info!(
                "the leader's config offset differs; reading the config topic and joining again"
            );
            return Ok(());
        }
        // Never start anything on a config older than the one the assignment was made for.
        let snapshot = match self.catch_up(assignment.config_offset).await? {
            Some(snapshot) => snapshot,
            None => {
                tracing::warn!(
                    offset = assignment.config_offset,
                    "could not read the config topic up to the assignment's offset within \
                     worker.sync.timeout.ms; joining again after worker.unsync.backoff.ms"
                );
                tokio::time::sleep(settings.worker_unsync_backoff).await;
                return Ok(());
            }
        };
        let (revoked, assigned) = if chosen == Protocol::Eager {
            let keep = &assignment.assigned;
            (
                owned.difference(keep).cloned().collect(),
                keep.difference(&owned).cloned().collect(),
            )
        } else {
            (assignment.revoked.clone(), assignment.assigned.clone())
        };
        if !joined.is_leader() {
            // What this assignment covers; a change past it makes this member rejoin.
            self.assigned_for = configured(&snapshot);
        }
        self.duties.generation = i64::from(joined.generation);
        self.duties.revoke(&revoked).await;
        self.duties.forget_deleted(&revoked, &snapshot).await;
        self.duties.assign(&assigned, &snapshot).await;
        self.duties.republish();
        self.cluster
            .worker
            .metrics()
            .rebalance_completed(i64::from(joined.generation));
        let owned = self.duties.owned();
        tracing::info!(
            generation = joined.generation,
            leader = %assignment.leader_url,
            is_leader = joined.is_leader(),
            protocol = joined.protocol,
            assigned = ?assigned,
            revoked = ?revoked,
            running = ?owned,
            "joined the worker group"
        );
        self.cluster.update_view(|v| {
            v.stable = true;
            v.generation = joined.generation;
            v.is_leader = joined.is_leader();
            if !joined.is_leader() {
                // A former leader's member list would be stale: only the leader keeps one.
                v.member_urls.clear();
            }
            v.leader_url = Some(assignment.leader_url.clone());
            v.owned = owned;
        });
        if !revoked.is_empty() && chosen != Protocol::Eager {
            // Cooperative: what was revoked is placed in the next round, at once.
            return Ok(());
        }
        let rejoin_at = (assignment.delay_ms > 0)
            .then(|| Instant::now() + Duration::from_millis(assignment.delay_ms as u64));
        self.steady(joined.generation, joined.is_leader(), rejoin_at)
            .await
    }

    /// The leader's part of a round: read every member's metadata and compute assignments.
    async fn lead(&mut self, joined: &Joined, chosen: Protocol) -> Result<Vec<(String, Bytes)>> {
        let mut members = Vec::new();
        let mut highest = -1;
        for (id, bytes) in &joined.members {
            let metadata = protocol::decode_metadata(bytes)?;
            highest = highest.max(metadata.config_offset);
            members.push(Member {
                id: id.clone(),
                url: metadata.url,
                owned: metadata.allocation.map(|a| a.assigned).unwrap_or_default(),
            });
        }
        let mut snapshot = self.cluster.snapshot().await?;
        if snapshot.offset < highest {
            snapshot = self.catch_up(highest).await?.unwrap_or(snapshot);
        }
        if snapshot.offset < highest {
            // The leader cannot assign on an older config than a member has; everyone
            // reads further and rejoins (Kafka Connect's CONFIG_MISMATCH).
            let mismatch = Assignment {
                error: CONFIG_MISMATCH,
                leader: joined.member_id.clone(),
                leader_url: self.cluster.url.clone(),
                config_offset: snapshot.offset,
                ..Assignment::default()
            };
            let bytes = Bytes::from(protocol::encode_assignment(&mismatch, chosen));
            return Ok(members.into_iter().map(|m| (m.id, bytes.clone())).collect());
        }
        self.ensure_session_key(&snapshot).await;
        let phantoms = self.absent_but_alive(&members).await;
        let real = members.len();
        members.extend(phantoms);
        let configured = configured(&snapshot);
        if self.memory.is_empty() {
            self.recall_owners(&configured).await;
        }
        let now = self.started.elapsed().as_millis() as u64;
        let max_delay = self
            .cluster
            .settings
            .scheduled_rebalance_max_delay
            .as_millis() as u64;
        let mut plan = assignor::assign(&members, &configured, &mut self.memory, now, max_delay);
        if members.len() > real {
            // Held for absent members that still answer: join again soon, when they are back.
            plan.delay_ms = plan.delay_ms.max(ABSENT_RECHECK.as_millis() as u64);
        }
        self.assigned_for = configured.clone();
        let mut running_after: BTreeSet<Work> = BTreeSet::new();
        let mut out = Vec::new();
        self.last_members.clear();
        for (index, member) in members.iter().enumerate() {
            if index >= real {
                // An absent member keeps what it had; it is told nothing in this generation.
                running_after.extend(member.owned.iter().cloned());
                self.last_members
                    .insert(member.url.clone(), member.owned.clone());
                continue;
            }
            let mine = plan.members.get(&member.id).cloned().unwrap_or_default();
            let mut all: BTreeSet<Work> = member.owned.difference(&mine.revoked).cloned().collect();
            all.extend(mine.assigned.iter().cloned());
            running_after.extend(all.iter().cloned());
            self.last_members.insert(member.url.clone(), all.clone());
            let assignment = Assignment {
                error: NO_ERROR,
                leader: joined.member_id.clone(),
                leader_url: self.cluster.url.clone(),
                config_offset: snapshot.offset,
                assigned: if chosen == Protocol::Eager {
                    all
                } else {
                    mine.assigned
                },
                revoked: mine.revoked,
                delay_ms: plan.delay_ms.min(i32::MAX as u64) as i32,
            };
            out.push((
                member.id.clone(),
                Bytes::from(protocol::encode_assignment(&assignment, chosen)),
            ));
        }
        let member_urls = members.iter().map(|m| m.url.clone()).collect();
        self.cluster.update_view(|v| v.member_urls = member_urls);
        tracing::info!(
            generation = joined.generation,
            members = members.len(),
            work = configured.len(),
            delay_ms = plan.delay_ms,
            "computed the group's assignment"
        );
        // Work held for a departed worker: marked UNASSIGNED meanwhile (Kafka Connect leaves
        // it RUNNING under the dead worker until it is reassigned).
        let lost: Vec<Work> = configured.difference(&running_after).cloned().collect();
        if !lost.is_empty() {
            let cluster = Arc::clone(&self.cluster);
            let generation = i64::from(joined.generation);
            tokio::spawn(async move {
                for work in lost {
                    let (name, task) = match &work {
                        Work::Connector(c) => (c.clone(), None),
                        Work::Task(c, n) => (c.clone(), Some(*n)),
                    };
                    if let Err(e) = cluster
                        .statuses
                        .put_safe(&name, task, State::Unassigned, None, generation)
                        .await
                    {
                        tracing::warn!(error = %e, "marking lost work UNASSIGNED failed");
                    }
                }
            });
        }
        Ok(out)
    }

    /// A worker that just became leader learns from the status topic who last ran each
    /// piece of work, so work held for a departed worker (`scheduled.rebalance.max.delay.ms`)
    /// stays held for it, and goes back to it, across a change of leader too.
    async fn recall_owners(&mut self, configured: &BTreeSet<Work>) {
        let statuses = match self.cluster.statuses.snapshot().await {
            Ok(statuses) => statuses,
            Err(e) => {
                tracing::warn!(error = %e, "reading the status topic failed; assigning without knowing past owners");
                return;
            }
        };
        for work in configured {
            let (name, task) = match work {
                Work::Connector(c) => (c.as_str(), None),
                Work::Task(c, n) => (c.as_str(), Some(*n)),
            };
            let Some(record) = statuses.get(&status_key(name, task)) else {
                continue;
            };
            let ran = record["state"].as_str().is_some_and(|s| s != "UNASSIGNED");
            if let (true, Some(worker)) = (ran, record["worker_id"].as_str()) {
                self.memory
                    .remember(work.clone(), self.cluster.worker_url(worker));
            }
        }
    }

    /// Members of the previous assignment missing from this join whose REST API still
    /// answers, as stand-ins holding their last work. Apache Kafka's JoinGroup barrier waits
    /// for every live member, so there a missing member is one that failed to rejoin in time;
    /// Tansu 0.6 has no barrier and forms generations with whoever joined first, and
    /// reassigning a live member's work there would have two workers run it and start a
    /// cascade of revocations. A member that does not answer is gone: its work moves (after
    /// `scheduled.rebalance.max.delay.ms`).
    async fn absent_but_alive(&self, present: &[Member]) -> Vec<Member> {
        let absent = self.last_members.iter().filter(|(url, _)| {
            !present.iter().any(|m| &m.url == *url) && **url != self.cluster.url
        });
        // Probed at once, so a slow one does not hold up the round by more than one probe.
        let probes = absent.map(|(url, owned)| async move {
            self.cluster.answers(url).await.then(|| {
                tracing::info!(worker = %url, "a member of the last generation is absent from this join but answers; its work stays with it for now");
                Member {
                    id: format!("absent {url}"),
                    url: url.clone(),
                    owned: owned.clone(),
                }
            })
        });
        futures_util::future::join_all(probes)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// The leader makes a session key when there is none or it expired.
    async fn ensure_session_key(&self, snapshot: &ConfigSnapshot) {
        let ttl = self.cluster.settings.inter_worker_key_ttl.as_millis() as i64;
        let current = Cluster::session_key(snapshot);
        if current.is_some_and(|k| !k.expired(now_ms(), ttl)) {
            return;
        }
        let mut key = vec![0u8; 32];
        fill_random(&mut key);
        let key = SessionKey {
            key,
            algorithm: HMAC_SHA256.to_owned(),
            created_ms: now_ms(),
        };
        match self
            .cluster
            .configs
            .write(vec![session_key_record(key.to_record())])
            .await
        {
            Ok(()) => tracing::info!("wrote a new session key for internal requests"),
            Err(e) => {
                tracing::warn!(error = %e, "writing the session key failed; retried next round")
            }
        }
    }

    /// Reads the config topic until it reaches `offset`, within `worker.sync.timeout.ms`.
    async fn catch_up(&self, offset: i64) -> Result<Option<ConfigSnapshot>> {
        let deadline = Instant::now() + self.cluster.settings.worker_sync_timeout;
        loop {
            let snapshot = self.cluster.snapshot().await?;
            if snapshot.offset >= offset {
                return Ok(Some(snapshot));
            }
            if Instant::now() > deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A worker that has not heard from the coordinator for a whole session has been dropped
    /// from the group, and its work given to others: it stops everything.
    async fn lose_work_if_out_of_touch(&mut self) {
        let session = self.cluster.settings.session_timeout;
        if self.heartbeats.last_contact().elapsed() > session && !self.duties.owned().is_empty() {
            tracing::warn!(
                session_ms = session.as_millis() as u64,
                "no answer from the group coordinator for a whole session: stopping all work \
                 here, as the group has given it to other workers"
            );
            self.duties.drop_all().await;
            self.cluster.update_view(|v| v.owned.clear());
        }
    }

    /// Between rebalances: heartbeat, follow the config topic, publish statuses.
    async fn steady(
        &mut self,
        generation: i32,
        leading: bool,
        rejoin_at: Option<Instant>,
    ) -> Result<()> {
        let mut follow = tokio::time::interval(FOLLOW_EVERY);
        follow.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let session_timeout = self.cluster.settings.session_timeout;
        let mut probe = tokio::time::interval((session_timeout / 3).max(Duration::from_secs(1)));
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Members of the generation this worker leads that stopped answering, and since when.
        let mut silent: std::collections::BTreeMap<String, Instant> = Default::default();
        let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
        loop {
            tokio::select! {
                _ = probe.tick(), if leading => {
                    if let Some(url) = self.silent_member(&mut silent, session_timeout).await {
                        // Tansu 0.6 can drop a dead member silently: when its session expires
                        // inside another member's join or sync (not a heartbeat), the group
                        // goes back to forming at the same generation and every heartbeat
                        // still answers OK, so nobody rejoins and its work stays with the
                        // dead worker. Apache Kafka would have signalled the rebalance; a
                        // rejoin then is merely early.
                        tracing::info!(worker = %url, "a member of this generation has not answered for a session timeout; rebalancing to reassign its work");
                        // As after a signalled rebalance: should the join return the same
                        // generation (Tansu's silent drop leaves it forming), this member
                        // starts over as a new one, which makes a new generation the others
                        // hear of; a same-generation assignment would reach nobody.
                        self.member.heard(&Outcome::Rejoin(format!("member {url} silent")));
                        return Ok(());
                    }
                }
                beat = self.heartbeats.next(generation) => match beat {
                    Some(Beat::Ok) => {}
                    Some(Beat::Rejoin(why)) => {
                        tracing::info!(why, "the group is rebalancing; joining again");
                        self.member.heard(&Outcome::Rejoin(why));
                        return Ok(());
                    }
                    Some(Beat::Unreachable(why)) => {
                        tracing::info!(why, "heartbeat failed");
                    }
                    None => return Ok(()),
                },
                _ = tokio::time::sleep_until(rejoin_at.unwrap_or(far)) => {
                    tracing::info!("the delay for departed workers' work has passed; rebalancing to reassign it");
                    return Ok(());
                }
                _ = self.cluster.config_written.notified(), if leading => {
                    if self.follow_config(leading).await? {
                        return Ok(());
                    }
                }
                _ = follow.tick() => {
                    if self.follow_config(leading).await? {
                        return Ok(());
                    }
                }
            }
            if self.heartbeats.last_contact().elapsed() > self.cluster.settings.session_timeout {
                self.lose_work_if_out_of_touch().await;
                return Ok(());
            }
        }
    }

    /// Probes the other members of the generation this worker leads (their REST APIs): the
    /// first that has not answered for `session_timeout`, if any.
    async fn silent_member(
        &self,
        silent: &mut std::collections::BTreeMap<String, Instant>,
        session_timeout: Duration,
    ) -> Option<String> {
        let members = self.cluster.view().member_urls;
        silent.retain(|url, _| members.contains(url));
        for url in members.iter().filter(|url| **url != self.cluster.url) {
            if self.cluster.answers(url).await {
                silent.remove(url);
                continue;
            }
            let since = *silent.entry(url.clone()).or_insert_with(Instant::now);
            if since.elapsed() >= session_timeout {
                return Some(url.clone());
            }
        }
        None
    }

    /// Restarts the connector instances whose provider files changed, applies config changes
    /// to work held here and publishes statuses; true when the group must rebalance.
    async fn follow_config(&mut self, leading: bool) -> Result<bool> {
        let snapshot = self.cluster.snapshot().await?;
        // Taken only once the snapshot is read: a failed read leaves them for the next time.
        // Before `follow`, so that an instance whose config changed too restarts once.
        let mut reloaded = BTreeSet::new();
        while let Ok(name) = self.instance_restarts.try_recv() {
            reloaded.insert(name);
        }
        self.duties
            .restart_for_changed_providers(&reloaded, &snapshot)
            .await;
        self.duties.follow(&snapshot).await;
        self.duties.publish().await;
        let owned = self.duties.owned();
        self.cluster.update_view(|v| v.owned = owned);
        if configured(&snapshot) != self.assigned_for {
            // Changes often come in bursts (many creates, a connector and then its tasks):
            // one rebalance for the burst.
            tokio::time::sleep(COALESCE).await;
            tracing::info!(leading, "connectors or task counts changed; rebalancing");
            return Ok(true);
        }
        if leading {
            let ttl = self.cluster.settings.inter_worker_key_ttl.as_millis() as i64;
            if Cluster::session_key(&snapshot).is_none_or(|k| k.expired(now_ms(), ttl)) {
                self.ensure_session_key(&snapshot).await;
            }
        }
        Ok(false)
    }
}

/// Fills `bytes` from the operating system's random source.
fn fill_random(bytes: &mut [u8]) {
    match crate::random::os_random(bytes) {
        Ok(()) => {}
        Err(e) => {
            // No /dev/urandom: mix the clock and addresses; weaker, and said so.
            tracing::warn!(error = %e, "/dev/urandom unreadable; the session key is derived from the clock");
            let seed = now_ms() as u64 ^ (bytes.as_ptr() as u64);
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = (seed.rotate_left(i as u32 * 7) >> (i % 8)) as u8;
            }
        }
    }
}
