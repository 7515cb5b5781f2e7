//! A group coordinator with Apache Kafka's documented classic-group semantics, in process,
//! for tests: the membership client is proven against Kafka's behaviour independently of the
//! test broker's quirks (Tansu 0.6 has no join barrier and keeps a generation after a member
//! expires).
//!
//! What it implements (Kafka's `GroupCoordinator`, classic protocol):
//! * JoinGroup with an empty member id (v4+) is answered MEMBER_ID_REQUIRED with a new id.
//! * A join moves the group to PreparingRebalance; JoinGroup answers are held until every
//!   known member has rejoined or the rebalance timeout passes (then the missing are removed).
//!   The generation then increases, the protocol is the first of the leader's list every
//!   member supports, and only the leader's answer lists the members.
//! * SyncGroup is held until the leader's arrives with the assignments; in PreparingRebalance
//!   it is REBALANCE_IN_PROGRESS; a wrong generation is ILLEGAL_GENERATION.
//! * Heartbeat: UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS while preparing.
//! * A member heard from by no request for its session timeout is removed and, if others
//!   remain, a rebalance begins. LeaveGroup removes at once.
//! * With [`FakeCoordinator::require_plain`], SASL as a Kafka listener with `SASL_PLAINTEXT`
//!   and PLAIN: SaslHandshake v1 answers UNSUPPORTED_SASL_MECHANISM for another mechanism,
//!   SaslAuthenticate answers SASL_AUTHENTICATION_FAILED with Kafka's message for wrong
//!   credentials, and a connection that sends any other request (but ApiVersions) before
//!   authenticating is closed, as Kafka closes it. The credentials can change while it runs
//!   (a rotated password).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, FindCoordinatorRequest, FindCoordinatorResponse, HeartbeatRequest,
    HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse,
    RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, oneshot};
use tokio::time::Instant;

/// Kafka's `group.initial.rebalance.delay.ms` (3 s by default), shortened for tests: the first
/// generation of an empty group waits this long for more members.
const INITIAL_REBALANCE_DELAY: Duration = Duration::from_millis(300);

#[derive(Debug)]
struct MemberState {
    protocols: Vec<(String, Bytes)>,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    last_heard: Instant,
    joined: bool,
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Phase {
    Empty,
    /// Waiting for members to rejoin: done when all have (not before `not_before`, Kafka's
    /// `group.initial.rebalance.delay.ms` for a group that was empty) or at `deadline`.
    Preparing {
        deadline: Instant,
        not_before: Instant,
    },
    Completing,
    Stable,
}

#[derive(Debug)]
struct Group {
    members: BTreeMap<String, MemberState>,
    generation: i32,
    phase: Phase,
    leader: Option<String>,
    protocol: Option<String>,
    pending_joins: Vec<(String, oneshot::Sender<JoinGroupResponse>)>,
    pending_syncs: Vec<(String, oneshot::Sender<SyncGroupResponse>)>,
    assignments: BTreeMap<String, Bytes>,
    next_member: u64,
    /// Member ids handed out with MEMBER_ID_REQUIRED, not joined yet.
    issued: std::collections::BTreeSet<String>,
}

/// The PLAIN username and password a SASL listener takes (`None`: no SASL).
type PlainCredentials = Arc<std::sync::Mutex<Option<(String, String)>>>;

/// A running fake coordinator of one group.
#[derive(Debug, Clone)]
pub(crate) struct FakeCoordinator {
    group: Arc<Mutex<Group>>,
    pub(crate) address: String,
    plain: PlainCredentials,
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

impl FakeCoordinator {
    /// Listens on a free loopback port.
    pub(crate) async fn start() -> FakeCoordinator {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let group = Arc::new(Mutex::new(Group {
            members: BTreeMap::new(),
            generation: 0,
            phase: Phase::Empty,
            leader: None,
            protocol: None,
            pending_joins: Vec::new(),
            pending_syncs: Vec::new(),
            assignments: BTreeMap::new(),
            next_member: 1,
            issued: std::collections::BTreeSet::new(),
        }));
        let plain: PlainCredentials = Arc::default();
        let fake = FakeCoordinator {
            group: Arc::clone(&group),
            address: address.clone(),
            plain: Arc::clone(&plain),
        };
        let (host, port) = address
            .rsplit_once(':')
            .map(|(h, p)| (h.to_owned(), p.parse::<i32>().unwrap()))
            .unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(
                    stream,
                    Arc::clone(&group),
                    Arc::clone(&plain),
                    host.clone(),
                    port,
                ));
            }
        });
        let ticking = Arc::clone(&fake.group);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                ticking.lock().await.tick();
            }
        });
        fake
    }

    /// From now on every new connection must authenticate with SASL PLAIN as `user` with
    /// `password` (connections already authenticated stay).
    pub(crate) fn require_plain(&self, user: &str, password: &str) {
        *self.plain.lock().unwrap() = Some((user.to_owned(), password.to_owned()));
    }

    /// The current generation and member ids.
    pub(crate) async fn snapshot(&self) -> (i32, Vec<String>) {
        let group = self.group.lock().await;
        (group.generation, group.members.keys().cloned().collect())
    }
}

impl Group {
    fn tick(&mut self) {
        let now = Instant::now();
        // A member waiting in JoinGroup or SyncGroup is alive (Kafka completes its heartbeat).
        let waiting = |id: &String| {
            self.pending_joins.iter().any(|(w, _)| w == id)
                || self.pending_syncs.iter().any(|(w, _)| w == id)
        };
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|(id, m)| !waiting(id) && now.duration_since(m.last_heard) > m.session_timeout)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            self.remove(&id);
        }
        if let Phase::Preparing {
            deadline,
            not_before,
        } = self.phase
        {
            if now < not_before {
                return;
            }
            if now >= deadline {
                // The barrier's time is up: members that did not rejoin are out.
                let missing: Vec<String> = self
                    .members
                    .iter()
                    .filter(|(_, m)| !m.joined)
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in missing {
                    self.members.remove(&id);
                }
                self.complete_join();
            } else if !self.members.is_empty() && self.members.values().all(|m| m.joined) {
                self.complete_join();
            }
        }
    }

    fn remove(&mut self, id: &str) {
        if self.members.remove(id).is_none() {
            return;
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = None;
        }
        if self.members.is_empty() {
            self.phase = Phase::Empty;
            self.generation += 1;
        } else {
            self.prepare();
        }
    }

    fn prepare(&mut self) {
        if matches!(self.phase, Phase::Preparing { .. }) {
            return;
        }
        let timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        let now = Instant::now();
        let not_before = if self.phase == Phase::Empty {
            now + INITIAL_REBALANCE_DELAY
        } else {
            now
        };
        self.phase = Phase::Preparing {
            deadline: now + timeout.max(INITIAL_REBALANCE_DELAY),
            not_before,
        };
        for m in self.members.values_mut() {
            m.joined = false;
        }
        // Syncs waiting on the old generation are told to rejoin.
        for (_, waiting) in self.pending_syncs.drain(..) {
            let _ = waiting.send(
                SyncGroupResponse::default()
                    .with_error_code(code(ResponseError::RebalanceInProgress)),
            );
        }
    }

    fn complete_join(&mut self) {
        if self.members.is_empty() {
            self.phase = Phase::Empty;
            return;
        }
        self.generation += 1;
        self.phase = Phase::Completing;
        self.assignments.clear();
        if self
            .leader
            .as_ref()
            .is_none_or(|l| !self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        let leader = self.leader.clone().expect("a member");
        let protocol = self.members[&leader]
            .protocols
            .iter()
            .map(|(name, _)| name.clone())
            .find(|name| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == name))
            });
        self.protocol = protocol.clone();
        let listing: Vec<JoinGroupResponseMember> = self
            .members
            .iter()
            .map(|(id, m)| {
                let metadata = m
                    .protocols
                    .iter()
                    .find(|(n, _)| Some(n) == protocol.as_ref())
                    .map(|(_, b)| b.clone())
                    .unwrap_or_default();
                JoinGroupResponseMember::default()
                    .with_member_id(StrBytes::from_string(id.clone()))
                    .with_metadata(metadata)
            })
            .collect();
        for (id, answer) in self.pending_joins.drain(..) {
            let mut response = JoinGroupResponse::default()
                .with_generation_id(self.generation)
                .with_protocol_name(protocol.clone().map(StrBytes::from_string))
                .with_leader(StrBytes::from_string(leader.clone()))
                .with_member_id(StrBytes::from_string(id.clone()));
            if id == leader {
                response = response.with_members(listing.clone());
            }
            let _ = answer.send(response);
        }
    }
}

async fn serve(
    mut stream: TcpStream,
    group: Arc<Mutex<Group>>,
    plain: PlainCredentials,
    host: String,
    port: i32,
) {
    let mut authenticated = plain.lock().unwrap().is_none();
    loop {
        let Ok(len) = stream.read_i32().await else {
            return;
        };
        let mut raw = vec![0u8; len.max(0) as usize];
        if stream.read_exact(&mut raw).await.is_err() {
            return;
        }
        let mut frame = Bytes::from(raw);
        let key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let Ok(key) = ApiKey::try_from(key) else {
            return;
        };
        let header =
            RequestHeader::decode(&mut frame, key.request_header_version(version)).unwrap();
        let mut out = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(header.correlation_id)
            .encode(&mut out, key.response_header_version(version))
            .unwrap();
        let sasl_api = matches!(key, ApiKey::SaslHandshake | ApiKey::SaslAuthenticate);
        if !authenticated && !sasl_api && key != ApiKey::ApiVersions {
            // Kafka closes a SASL listener's connection that skips authentication.
            return;
        }
        match key {
            ApiKey::SaslHandshake => {
                let request = SaslHandshakeRequest::decode(&mut frame, version).unwrap();
                let error = if request.mechanism.as_str() == "PLAIN" {
                    0
                } else {
                    code(ResponseError::UnsupportedSaslMechanism)
                };
                SaslHandshakeResponse::default()
                    .with_error_code(error)
                    .with_mechanisms(vec![StrBytes::from_static_str("PLAIN")])
                    .encode(&mut out, version)
                    .unwrap();
            }
            ApiKey::SaslAuthenticate => {
                let request = SaslAuthenticateRequest::decode(&mut frame, version).unwrap();
                // PLAIN: authzid NUL username NUL password.
                let token = String::from_utf8_lossy(&request.auth_bytes).into_owned();
                let mut fields = token.split('\0').skip(1);
                let given = (fields.next(), fields.next());
                let expected = plain.lock().unwrap().clone();
                let accepted = expected
                    .as_ref()
                    .is_some_and(|(u, p)| given == (Some(u.as_str()), Some(p.as_str())));
                let response = if accepted {
                    authenticated = true;
                    SaslAuthenticateResponse::default()
                } else {
                    SaslAuthenticateResponse::default()
                        .with_error_code(code(ResponseError::SaslAuthenticationFailed))
                        .with_error_message(Some(StrBytes::from_static_str(
                            "Authentication failed: Invalid username or password",
                        )))
                };
                response.encode(&mut out, version).unwrap();
            }
            ApiKey::ApiVersions => {
                let apis = [
                    (ApiKey::FindCoordinator, 0, 3),
                    (ApiKey::JoinGroup, 0, 5),
                    (ApiKey::SyncGroup, 0, 3),
                    (ApiKey::Heartbeat, 0, 3),
                    (ApiKey::LeaveGroup, 0, 3),
                    (ApiKey::ApiVersions, 0, 0),
                    (ApiKey::SaslHandshake, 0, 1),
                    (ApiKey::SaslAuthenticate, 0, 2),
                ];
                ApiVersionsResponse::default()
                    .with_api_keys(
                        apis.iter()
                            .map(|&(k, min, max)| {
                                ApiVersion::default()
                                    .with_api_key(k as i16)
                                    .with_min_version(min)
                                    .with_max_version(max)
                            })
                            .collect(),
                    )
                    .encode(&mut out, version)
                    .unwrap();
            }
            ApiKey::FindCoordinator => {
                let _ = FindCoordinatorRequest::decode(&mut frame, version).unwrap();
                FindCoordinatorResponse::default()
                    .with_node_id(1.into())
                    .with_host(StrBytes::from_string(host.clone()))
                    .with_port(port)
                    .encode(&mut out, version)
                    .unwrap();
            }
            ApiKey::JoinGroup => {
                let request = JoinGroupRequest::decode(&mut frame, version).unwrap();
                join(&group, request)
                    .await
                    .encode(&mut out, version)
                    .unwrap();
            }
            ApiKey::SyncGroup => {
                let request = SyncGroupRequest::decode(&mut frame, version).unwrap();
                sync(&group, request)
                    .await
                    .encode(&mut out, version)
                    .unwrap();
            }
            ApiKey::Heartbeat => {
                let request = HeartbeatRequest::decode(&mut frame, version).unwrap();
                heartbeat(&group, request)
                    .await
                    .encode(&mut out, version)
                    .unwrap();
            }
            ApiKey::LeaveGroup => {
                let request = LeaveGroupRequest::decode(&mut frame, version).unwrap();
                let mut g = group.lock().await;
                let ids: Vec<String> = if request.members.is_empty() {
                    vec![request.member_id.as_str().to_owned()]
                } else {
                    request
                        .members
                        .iter()
                        .map(|m| m.member_id.as_str().to_owned())
                        .collect()
                };
                for id in ids {
                    g.remove(&id);
                }
                LeaveGroupResponse::default()
                    .encode(&mut out, version)
                    .unwrap();
            }
            _ => return,
        }
        let mut framed = BytesMut::with_capacity(out.len() + 4);
        framed.put_i32(out.len() as i32);
        framed.extend_from_slice(&out);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}

async fn join(group: &Mutex<Group>, request: JoinGroupRequest) -> JoinGroupResponse {
    let waiting = {
        let mut g = group.lock().await;
        let mut id = request.member_id.as_str().to_owned();
        if id.is_empty() {
            id = format!("member-{}", g.next_member);
            g.next_member += 1;
            g.issued.insert(id.clone());
            // Known from now on, so its session runs; it joins with the id next.
            return JoinGroupResponse::default()
                .with_error_code(code(ResponseError::MemberIdRequired))
                .with_member_id(StrBytes::from_string(id));
        }
        let known = g.members.contains_key(&id) || g.issued.remove(&id);
        if !known {
            return JoinGroupResponse::default()
                .with_error_code(code(ResponseError::UnknownMemberId));
        }
        let state = MemberState {
            protocols: request
                .protocols
                .iter()
                .map(|p| (p.name.as_str().to_owned(), p.metadata.clone()))
                .collect(),
            session_timeout: Duration::from_millis(request.session_timeout_ms.max(0) as u64),
            rebalance_timeout: Duration::from_millis(request.rebalance_timeout_ms.max(0) as u64),
            last_heard: Instant::now(),
            joined: true,
        };
        g.members.insert(id.clone(), state);
        g.prepare();
        if let Some(m) = g.members.get_mut(&id) {
            m.joined = true;
        }
        let (answer, waiting) = oneshot::channel();
        g.pending_joins.retain(|(other, _)| other != &id);
        g.pending_joins.push((id, answer));
        g.tick();
        waiting
    };
    waiting.await.unwrap_or_else(|_| {
        JoinGroupResponse::default().with_error_code(code(ResponseError::UnknownMemberId))
    })
}

async fn sync(group: &Mutex<Group>, request: SyncGroupRequest) -> SyncGroupResponse {
    let waiting = {
        let mut g = group.lock().await;
        let id = request.member_id.as_str().to_owned();
        let Some(member) = g.members.get_mut(&id) else {
            return SyncGroupResponse::default()
                .with_error_code(code(ResponseError::UnknownMemberId));
        };
        member.last_heard = Instant::now();
        if request.generation_id != g.generation {
            return SyncGroupResponse::default()
                .with_error_code(code(ResponseError::IllegalGeneration));
        }
        match g.phase {
            Phase::Preparing { .. } | Phase::Empty => {
                return SyncGroupResponse::default()
                    .with_error_code(code(ResponseError::RebalanceInProgress));
            }
            Phase::Stable => {
                let assignment = g.assignments.get(&id).cloned().unwrap_or_default();
                return SyncGroupResponse::default().with_assignment(assignment);
            }
            Phase::Completing => {}
        }
        if g.leader.as_deref() == Some(id.as_str()) {
            g.assignments = request
                .assignments
                .iter()
                .map(|a| (a.member_id.as_str().to_owned(), a.assignment.clone()))
                .collect();
            g.phase = Phase::Stable;
            let assignments = g.assignments.clone();
            for (member, answer) in g.pending_syncs.drain(..) {
                let bytes = assignments.get(&member).cloned().unwrap_or_default();
                let _ = answer.send(SyncGroupResponse::default().with_assignment(bytes));
            }
            return SyncGroupResponse::default()
                .with_assignment(assignments.get(&id).cloned().unwrap_or_default());
        }
        let (answer, waiting) = oneshot::channel();
        g.pending_syncs.push((id, answer));
        waiting
    };
    waiting.await.unwrap_or_else(|_| {
        SyncGroupResponse::default().with_error_code(code(ResponseError::RebalanceInProgress))
    })
}

async fn heartbeat(group: &Mutex<Group>, request: HeartbeatRequest) -> HeartbeatResponse {
    let mut g = group.lock().await;
    let id = request.member_id.as_str().to_owned();
    let generation = g.generation;
    let phase = g.phase;
    let Some(member) = g.members.get_mut(&id) else {
        return HeartbeatResponse::default().with_error_code(code(ResponseError::UnknownMemberId));
    };
    member.last_heard = Instant::now();
    if request.generation_id != generation {
        return HeartbeatResponse::default()
            .with_error_code(code(ResponseError::IllegalGeneration));
    }
    if matches!(phase, Phase::Preparing { .. }) {
        return HeartbeatResponse::default()
            .with_error_code(code(ResponseError::RebalanceInProgress));
    }
    HeartbeatResponse::default()
}
