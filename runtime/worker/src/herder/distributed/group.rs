//! Membership of a Kafka consumer group of protocol type `connect`, as a worker: find the
//! coordinator, join (the leader gets every member's metadata), sync (every member gets its
//! assignment), heartbeat, leave.
//!
//! # Contract
//! * [`GroupMember::join`] returns once the coordinator has formed a generation. It answers
//!   MEMBER_ID_REQUIRED by joining again with the id given, retries REBALANCE_IN_PROGRESS and
//!   coordinator moves (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, a dropped connection) with
//!   a short back-off, and starts over as a new member on UNKNOWN_MEMBER_ID.
//! * [`GroupMember::sync`] and [`GroupMember::heartbeat`] report a rebalance as
//!   [`Outcome::Rejoin`]; the caller keeps running its work (cooperative protocol) and joins
//!   again. Fencing (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID) is a rejoin too.
//! * A rejoin after a rebalance was signalled must start a new generation. Tansu 0.6 keeps the
//!   old generation (and hands back the old assignment) after a member's session expires; when
//!   a signalled rejoin returns the generation it had, the member leaves and joins as a new
//!   member. Apache Kafka always starts a new generation there, so this never fires on it.
//! * A member never leaves while it leads a generation it has not synced: Tansu 0.6 keeps a
//!   member that leaves a forming generation as that generation's leader, so no member could
//!   lead it again and every sync would be answered REBALANCE_IN_PROGRESS for good. Before
//!   leaving, such a member ends the generation with a sync that assigns nothing; the others
//!   are told to rejoin by the leave that follows.
//! * Heartbeats go on their own connection ([`GroupMember::heartbeater`]), so a long JoinGroup
//!   held by the coordinator never delays them.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, FindCoordinatorRequest, FindCoordinatorResponse, GroupId, HeartbeatRequest,
    HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse,
    SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use sluice_api::{Error, Result};

use super::broker_security::BrokerSecurity;
use super::protocol::PROTOCOL_TYPE;
use super::wire::Connection;

/// How the member talks to the group.
#[derive(Debug, Clone)]
pub(crate) struct GroupSettings {
    /// `host:port` of brokers to find the coordinator through.
    pub bootstrap: Vec<String>,
    pub group_id: String,
    pub client_id: String,
    /// `session.timeout.ms`: how long the coordinator waits for a heartbeat.
    pub session_timeout: Duration,
    /// `rebalance.timeout.ms`: how long a rebalance waits for members to rejoin.
    pub rebalance_timeout: Duration,
    /// How long a plain request may take.
    pub request_timeout: Duration,
    /// TLS and SASL for every connection to a broker.
    pub security: BrokerSecurity,
}

/// Where the group's coordinator is looked up, and how connections to brokers are secured.
#[derive(Debug, Clone)]
pub(crate) struct GroupBrokers {
    /// `host:port` of brokers to find the coordinator through (`bootstrap.servers`).
    pub bootstrap: Vec<String>,
    pub security: BrokerSecurity,
}

/// What a join formed.
#[derive(Debug, Clone)]
pub(crate) struct Joined {
    pub generation: i32,
    pub member_id: String,
    pub leader: String,
    /// The protocol the coordinator chose (`sessioned`, `compatible`, `default`).
    pub protocol: String,
    /// Every member's id and metadata for the chosen protocol; empty unless this member leads.
    pub members: Vec<(String, Bytes)>,
}

impl Joined {
    pub(crate) fn is_leader(&self) -> bool {
        self.leader == self.member_id
    }
}

/// A sync or heartbeat's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome<T> {
    Done(T),
    /// The group is rebalancing, or this member is fenced: join again. Says why.
    Rejoin(String),
}

/// API versions this client speaks (min, max), negotiated down to what the broker has.
const APIS: [(ApiKey, i16, i16); 5] = [
    (ApiKey::FindCoordinator, 1, 3),
    (ApiKey::JoinGroup, 4, 5),
    (ApiKey::SyncGroup, 1, 3),
    (ApiKey::Heartbeat, 1, 3),
    (ApiKey::LeaveGroup, 1, 3),
];

#[derive(Debug, Clone, Copy)]
struct Versions {
    find: i16,
    join: i16,
    sync: i16,
    heartbeat: i16,
    leave: i16,
}

/// A worker's membership.
#[derive(Debug)]
pub(crate) struct GroupMember {
    settings: GroupSettings,
    coordinator: Option<(Connection, Versions)>,
    member_id: String,
    generation: i32,
    /// Set when a heartbeat or sync said the group rebalances: the next join must bring a
    /// new generation.
    rebalance_signalled: bool,
    /// How often a rejoin came back with the old generation and the member started over.
    restarts_as_new: u32,
    /// The generation this member was made leader of by its last join, until it syncs.
    leading_unsynced: Option<i32>,
}

fn str(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn error(code: i16) -> Option<ResponseError> {
    ResponseError::try_from_code(code)
}

/// Errors after which the coordinator is looked up again.
fn coordinator_moved(e: ResponseError) -> bool {
    matches!(
        e,
        ResponseError::NotCoordinator
            | ResponseError::CoordinatorNotAvailable
            | ResponseError::CoordinatorLoadInProgress
    )
}

const BACKOFF: Duration = Duration::from_millis(100);

/// How soon a follower syncs again when its generation stands but the leader has not synced.
const SYNC_RETRY: Duration = Duration::from_millis(200);

impl GroupMember {
    /// A member that has not joined yet.
    pub(crate) fn new(settings: GroupSettings) -> GroupMember {
        GroupMember {
            settings,
            coordinator: None,
            member_id: String::new(),
            generation: -1,
            rebalance_signalled: false,
            restarts_as_new: 0,
            leading_unsynced: None,
        }
    }

    /// Forgets that this member leads an unsynced generation, so [`GroupMember::leave`] sends
    /// a plain LeaveGroup (to show what the broker does with one).
    #[cfg(test)]
    pub(crate) fn forget_leading(&mut self) {
        self.leading_unsynced = None;
    }

    /// How often a signalled rejoin returned the old generation, so the member left and
    /// joined as a new one (Tansu; never on Apache Kafka).
    #[cfg(test)]
    pub(crate) fn restarts_as_new(&self) -> u32 {
        self.restarts_as_new
    }

    /// The member id the coordinator gave (empty before the first join).
    #[cfg(test)]
    pub(crate) fn member_id(&self) -> &str {
        &self.member_id
    }

    /// The generation of the last join.
    #[cfg(test)]
    pub(crate) fn generation(&self) -> i32 {
        self.generation
    }

    /// The coordinator's address, looked up through the bootstrap brokers.
    async fn find_coordinator(&self) -> Result<(String, Versions)> {
        let mut last = None;
        for broker in &self.settings.bootstrap {
            match self.ask_for_coordinator(broker).await {
                Ok(found) => return Ok(found),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            Error::config("no bootstrap.servers to find the group coordinator through")
        }))
    }

    async fn ask_for_coordinator(&self, broker: &str) -> Result<(String, Versions)> {
        let timeout = self.settings.request_timeout;
        let mut connection = Connection::open(
            broker,
            &self.settings.client_id,
            timeout,
            &self.settings.security,
        )
        .await?;
        let v = connection.negotiate(&APIS, timeout).await?;
        let versions = Versions {
            find: v[0],
            join: v[1],
            sync: v[2],
            heartbeat: v[3],
            leave: v[4],
        };
        let request = FindCoordinatorRequest::default()
            .with_key(str(&self.settings.group_id))
            .with_key_type(0);
        let response: FindCoordinatorResponse = connection
            .call(ApiKey::FindCoordinator, versions.find, &request, timeout)
            .await?;
        if let Some(e) = error(response.error_code) {
            return Err(Error::retriable(format!(
                "broker {broker} cannot name the coordinator of group {}: {e}",
                self.settings.group_id
            )));
        }
        Ok((
            format!("{}:{}", response.host.as_str(), response.port),
            versions,
        ))
    }

    /// The connection to the coordinator, opened when needed.
    async fn coordinator(&mut self) -> Result<&mut (Connection, Versions)> {
        if self.coordinator.is_none() {
            let (address, versions) = self.find_coordinator().await?;
            let connection = Connection::open(
                &address,
                &self.settings.client_id,
                self.settings.request_timeout,
                &self.settings.security,
            )
            .await?;
            self.coordinator = Some((connection, versions));
        }
        Ok(self.coordinator.as_mut().expect("just set"))
    }

    /// A separate connection to the coordinator for heartbeats.
    pub(crate) async fn heartbeater(&self) -> Result<Heartbeater> {
        let (address, versions) = self.find_coordinator().await?;
        let connection = Connection::open(
            &address,
            &self.settings.client_id,
            self.settings.request_timeout,
            &self.settings.security,
        )
        .await?;
        Ok(Heartbeater {
            connection,
            version: versions.heartbeat,
            group_id: self.settings.group_id.clone(),
            request_timeout: self.settings.request_timeout,
        })
    }

    /// Joins (or rejoins) with `protocols` (name, metadata) in preference order; returns the
    /// generation formed. Retries what is retriable until `deadline` passes.
    pub(crate) async fn join(&mut self, protocols: &[(&str, Bytes)]) -> Result<Joined> {
        let deadline = tokio::time::Instant::now() + self.settings.rebalance_timeout * 2;
        let previous = self.generation;
        let mut restarted = false;
        loop {
            let joined = match self.join_once(protocols).await {
                Ok(Some(joined)) => {
                    self.leading_unsynced = joined.is_leader().then_some(joined.generation);
                    joined
                }
                Ok(None) => {
                    if tokio::time::Instant::now() > deadline {
                        return Err(Error::retriable(format!(
                            "could not join group {} within {:?}",
                            self.settings.group_id,
                            self.settings.rebalance_timeout * 2
                        )));
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            if self.rebalance_signalled && joined.generation == previous && !restarted {
                // Tansu: the rebalance kept the generation. Start over as a new member.
                tracing::info!(
                    group = %self.settings.group_id,
                    generation = joined.generation,
                    "the rejoin after a rebalance returned the same generation (a broker that does not \
                     start a new one, as Tansu 0.6); leaving and joining as a new member"
                );
                self.leave().await;
                self.restarts_as_new += 1;
                restarted = true;
                continue;
            }
            self.rebalance_signalled = false;
            self.generation = joined.generation;
            return Ok(joined);
        }
    }

    /// One JoinGroup; `None` when it should be tried again.
    async fn join_once(&mut self, protocols: &[(&str, Bytes)]) -> Result<Option<Joined>> {
        let settings = self.settings.clone();
        let member_id = self.member_id.clone();
        let (connection, versions) = match self.coordinator().await {
            Ok(c) => c,
            Err(e) if e.kind() == sluice_api::ErrorKind::Retriable => {
                tracing::warn!(error = %e, "group coordinator unreachable; retrying");
                tokio::time::sleep(BACKOFF).await;
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let request = JoinGroupRequest::default()
            .with_group_id(GroupId(str(&settings.group_id)))
            .with_session_timeout_ms(settings.session_timeout.as_millis() as i32)
            .with_rebalance_timeout_ms(settings.rebalance_timeout.as_millis() as i32)
            .with_member_id(str(&member_id))
            .with_protocol_type(str(PROTOCOL_TYPE))
            .with_protocols(
                protocols
                    .iter()
                    .map(|(name, metadata)| {
                        JoinGroupRequestProtocol::default()
                            .with_name(str(name))
                            .with_metadata(metadata.clone())
                    })
                    .collect(),
            );
        // The coordinator holds a JoinGroup for up to the rebalance timeout.
        let timeout = settings.rebalance_timeout + settings.request_timeout;
        let version = versions.join;
        let response: JoinGroupResponse = match connection
            .call(ApiKey::JoinGroup, version, &request, timeout)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "JoinGroup failed; finding the coordinator again");
                self.coordinator = None;
                tokio::time::sleep(BACKOFF).await;
                return Ok(None);
            }
        };
        match error(response.error_code) {
            None => Ok(Some(Joined {
                generation: response.generation_id,
                member_id: {
                    self.member_id = response.member_id.as_str().to_owned();
                    self.member_id.clone()
                },
                leader: response.leader.as_str().to_owned(),
                protocol: response
                    .protocol_name
                    .as_ref()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default(),
                members: response
                    .members
                    .iter()
                    .map(|m| (m.member_id.as_str().to_owned(), m.metadata.clone()))
                    .collect(),
            })),
            Some(ResponseError::MemberIdRequired) => {
                self.member_id = response.member_id.as_str().to_owned();
                Ok(None)
            }
            Some(ResponseError::UnknownMemberId) => {
                self.member_id.clear();
                self.generation = -1;
                Ok(None)
            }
            Some(ResponseError::RebalanceInProgress) => {
                tokio::time::sleep(BACKOFF).await;
                Ok(None)
            }
            Some(e) if coordinator_moved(e) => {
                self.coordinator = None;
                tokio::time::sleep(BACKOFF).await;
                Ok(None)
            }
            Some(e) => Err(Error::config(format!(
                "group {} refused this worker: {e} (check group.id, session.timeout.ms against \
                 the broker's group.min/max.session.timeout.ms, and that no consumer group of \
                 another kind uses the same id)",
                settings.group_id
            ))),
        }
    }

    /// Sends the leader's assignments (empty for a follower) and returns this member's.
    ///
    /// Apache Kafka holds a follower's SyncGroup until the leader has synced. Tansu 0.6
    /// answers it REBALANCE_IN_PROGRESS at once instead, the same code as for a real
    /// rebalance; rejoining then costs a follower ~3 s (Tansu delays followers' joins) and
    /// can start the cycle again. So a follower told REBALANCE_IN_PROGRESS asks with a
    /// heartbeat whether its generation still stands, and if it does syncs again shortly
    /// (within the rebalance timeout). On Kafka the heartbeat answers the same rebalance and
    /// nothing changes.
    pub(crate) async fn sync(
        &mut self,
        joined: &Joined,
        assignments: Vec<(String, Bytes)>,
    ) -> Result<Outcome<Bytes>> {
        let deadline = tokio::time::Instant::now() + self.settings.rebalance_timeout;
        self.leading_unsynced = None;
        loop {
            let code = match self.sync_once(joined, assignments.clone()).await? {
                Ok(assignment) => return Ok(Outcome::Done(assignment)),
                Err(code) => code,
            };
            let leader_not_synced_yet = code == ResponseError::RebalanceInProgress.code()
                && !joined.is_leader()
                && tokio::time::Instant::now() < deadline
                && self.generation_stands(joined).await;
            if !leader_not_synced_yet {
                return Ok(self.outcome(code, "SyncGroup", Bytes::new()));
            }
            tokio::time::sleep(SYNC_RETRY).await;
        }
    }

    /// One SyncGroup: this member's assignment, or the error code.
    async fn sync_once(
        &mut self,
        joined: &Joined,
        assignments: Vec<(String, Bytes)>,
    ) -> Result<std::result::Result<Bytes, i16>> {
        let settings = self.settings.clone();
        let (connection, versions) = self.coordinator().await?;
        let request = SyncGroupRequest::default()
            .with_group_id(GroupId(str(&settings.group_id)))
            .with_generation_id(joined.generation)
            .with_member_id(str(&joined.member_id))
            .with_assignments(
                assignments
                    .into_iter()
                    .map(|(member, bytes)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(str(&member))
                            .with_assignment(bytes)
                    })
                    .collect(),
            );
        let timeout = settings.rebalance_timeout + settings.request_timeout;
        let version = versions.sync;
        match connection
            .call::<_, SyncGroupResponse>(ApiKey::SyncGroup, version, &request, timeout)
            .await
        {
            Ok(response) if response.error_code == 0 => Ok(Ok(response.assignment)),
            Ok(response) => Ok(Err(response.error_code)),
            Err(_) => {
                self.coordinator = None;
                Ok(Err(ResponseError::CoordinatorNotAvailable.code()))
            }
        }
    }

    /// Whether `joined`'s generation still stands: a heartbeat in it is answered without
    /// error.
    async fn generation_stands(&mut self, joined: &Joined) -> bool {
        let settings = self.settings.clone();
        let Ok((connection, versions)) = self.coordinator().await else {
            return false;
        };
        let request = HeartbeatRequest::default()
            .with_group_id(GroupId(str(&settings.group_id)))
            .with_generation_id(joined.generation)
            .with_member_id(str(&joined.member_id));
        let version = versions.heartbeat;
        matches!(
            connection
                .call::<_, HeartbeatResponse>(ApiKey::Heartbeat, version, &request, settings.request_timeout)
                .await,
            Ok(response) if response.error_code == 0
        )
    }

    /// Turns an error code into an outcome, remembering a rebalance was signalled.
    fn outcome<T>(&mut self, code: i16, what: &str, value: T) -> Outcome<T> {
        match error(code) {
            None => Outcome::Done(value),
            Some(e) => {
                if matches!(e, ResponseError::UnknownMemberId) {
                    self.member_id.clear();
                }
                if coordinator_moved(e) {
                    self.coordinator = None;
                }
                self.rebalance_signalled = true;
                Outcome::Rejoin(format!("{what}: {e}"))
            }
        }
    }

    /// Records a heartbeat's answer (from a [`Heartbeater`]): a rebalance signal makes the
    /// next join insist on a new generation.
    pub(crate) fn heard(&mut self, beat: &Outcome<()>) {
        if let Outcome::Rejoin(_) = beat {
            self.rebalance_signalled = true;
        }
    }

    /// Leaves the group (clean shutdown, or starting over); best effort.
    pub(crate) async fn leave(&mut self) {
        if self.member_id.is_empty() {
            return;
        }
        if let Some(generation) = self.leading_unsynced.take() {
            // Tansu 0.6 would keep this member as the leader of the forming generation after
            // it left (see the contract); a sync ends that generation first.
            let ended = Joined {
                generation,
                member_id: self.member_id.clone(),
                leader: self.member_id.clone(),
                protocol: String::new(),
                members: Vec::new(),
            };
            if let Err(e) = self.sync_once(&ended, Vec::new()).await {
                tracing::debug!(error = %e, "ending the generation this member leads failed");
            }
        }
        let settings = self.settings.clone();
        let member_id = std::mem::take(&mut self.member_id);
        self.generation = -1;
        let Ok((connection, versions)) = self.coordinator().await else {
            return;
        };
        let version = versions.leave;
        let mut request =
            LeaveGroupRequest::default().with_group_id(GroupId(str(&settings.group_id)));
        if version >= 3 {
            request = request.with_members(vec![
                MemberIdentity::default().with_member_id(str(&member_id)),
            ]);
        } else {
            request = request.with_member_id(str(&member_id));
        }
        let left: Result<LeaveGroupResponse> = connection
            .call(
                ApiKey::LeaveGroup,
                version,
                &request,
                settings.request_timeout,
            )
            .await;
        if let Err(e) = left {
            tracing::debug!(error = %e, "LeaveGroup failed; the session will expire instead");
        }
    }
}

/// Heartbeats on a connection of their own.
#[derive(Debug)]
pub(crate) struct Heartbeater {
    connection: Connection,
    version: i16,
    group_id: String,
    request_timeout: Duration,
}

impl Heartbeater {
    /// One heartbeat for `member_id` in `generation`.
    pub(crate) async fn beat(&mut self, member_id: &str, generation: i32) -> Result<Outcome<()>> {
        let request = HeartbeatRequest::default()
            .with_group_id(GroupId(str(&self.group_id)))
            .with_generation_id(generation)
            .with_member_id(str(member_id));
        let response: HeartbeatResponse = self
            .connection
            .call(
                ApiKey::Heartbeat,
                self.version,
                &request,
                self.request_timeout,
            )
            .await?;
        Ok(match error(response.error_code) {
            None => Outcome::Done(()),
            Some(e) => Outcome::Rejoin(format!("Heartbeat: {e}")),
        })
    }
}
