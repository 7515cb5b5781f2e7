//! Membership conformance against the in-process coordinator with Apache Kafka's semantics
//! ([`FakeCoordinator`]): generations, leader, join barrier, session expiry, leaving.

use std::time::Duration;

use bytes::Bytes;

use super::broker_security::BrokerSecurity;
use super::fake_coordinator::FakeCoordinator;
use super::group::{GroupMember, GroupSettings, Joined, Outcome};

fn settings(coordinator: &FakeCoordinator) -> GroupSettings {
    GroupSettings {
        bootstrap: vec![coordinator.address.clone()],
        group_id: "connect-cluster".into(),
        client_id: "sluice-test".into(),
        session_timeout: Duration::from_millis(1000),
        rebalance_timeout: Duration::from_millis(1500),
        request_timeout: Duration::from_secs(5),
        security: BrokerSecurity::plaintext(),
    }
}

fn protocols(worker: &str) -> Vec<(&'static str, Bytes)> {
    vec![
        ("sessioned", Bytes::from(format!("{worker}/v2"))),
        ("compatible", Bytes::from(format!("{worker}/v1"))),
    ]
}

/// Joins every member at once; each member with its generation.
pub(super) async fn join_all(
    members: Vec<(String, GroupMember)>,
) -> Vec<(String, GroupMember, Joined)> {
    let handles: Vec<_> = members
        .into_iter()
        .map(|(name, mut member)| {
            tokio::spawn(async move {
                let joined = member.join(&protocols(&name)).await.unwrap();
                (name, member, joined)
            })
        })
        .collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

/// Syncs every member (the leader assigning `worker-name` bytes to each); each assignment.
pub(super) async fn sync_all(
    joined: Vec<(String, GroupMember, Joined)>,
) -> Vec<(String, GroupMember, Joined, Outcome<Bytes>)> {
    let names: std::collections::BTreeMap<String, String> = joined
        .iter()
        .map(|(name, _, j)| (j.member_id.clone(), name.clone()))
        .collect();
    let handles: Vec<_> = joined
        .into_iter()
        .map(|(name, mut member, j)| {
            let names = names.clone();
            tokio::spawn(async move {
                let assignments = if j.is_leader() {
                    j.members
                        .iter()
                        .map(|(id, _)| {
                            let worker = names.get(id).map_or("a former member", String::as_str);
                            (id.clone(), Bytes::from(format!("work-of-{worker}")))
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                let outcome = member.sync(&j, assignments).await.unwrap();
                (name, member, j, outcome)
            })
        })
        .collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

/// Joins and syncs everyone until all hold an assignment of one generation (a member told to
/// rejoin makes everyone rejoin, as a rebalance does); with the rounds it took.
pub(super) async fn form(
    mut members: Vec<(String, GroupMember)>,
) -> (Vec<(String, GroupMember, Joined, Bytes)>, usize) {
    for round in 1..=6 {
        let synced = sync_all(join_all(members).await).await;
        let generation = synced[0].2.generation;
        let settled = synced
            .iter()
            .all(|(_, _, j, o)| j.generation == generation && matches!(o, Outcome::Done(_)));
        if settled {
            let done = synced
                .into_iter()
                .map(|(name, member, j, outcome)| match outcome {
                    Outcome::Done(bytes) => (name, member, j, bytes),
                    Outcome::Rejoin(_) => unreachable!("settled"),
                })
                .collect();
            return (done, round);
        }
        for (name, _, j, outcome) in &synced {
            eprintln!(
                "round {round}: {name} generation {} sync {outcome:?}",
                j.generation
            );
        }
        members = synced
            .into_iter()
            .map(|(name, member, _, _)| (name, member))
            .collect();
    }
    panic!("the group did not settle in 6 rounds");
}

fn three(coordinator: &FakeCoordinator) -> Vec<(String, GroupMember)> {
    ["w1", "w2", "w3"]
        .iter()
        .map(|n| ((*n).to_owned(), GroupMember::new(settings(coordinator))))
        .collect()
}

/// Heartbeats `member` every 100 ms until the coordinator says rejoin (within `limit`).
pub(super) async fn beat_until_rejoin(member: &mut GroupMember, limit: Duration) -> String {
    let mut beats = member.heartbeater().await.unwrap();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let beat = beats
            .beat(member.member_id(), member.generation())
            .await
            .unwrap();
        member.heard(&beat);
        if let Outcome::Rejoin(why) = beat {
            return why;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no rebalance within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every member heartbeats (concurrently, so none lets its session lapse) until told to
/// rejoin; the members, ready to rejoin.
pub(super) async fn all_beat_until_rejoin(
    members: Vec<(String, GroupMember)>,
    limit: Duration,
) -> Vec<(String, GroupMember)> {
    let handles: Vec<_> = members
        .into_iter()
        .map(|(name, mut member)| {
            tokio::spawn(async move {
                let why = beat_until_rejoin(&mut member, limit).await;
                assert!(why.contains("Rebalance"), "{name}: {why}");
                (name, member)
            })
        })
        .collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

/// Drops what a sync returned besides the members.
pub(super) fn members_of(
    synced: Vec<(String, GroupMember, Joined, Bytes)>,
) -> Vec<(String, GroupMember)> {
    synced
        .into_iter()
        .map(|(name, member, _, _)| (name, member))
        .collect()
}

#[tokio::test]
async fn three_workers_agree_on_one_generation_and_leader_and_get_their_assignments() {
    let coordinator = FakeCoordinator::start().await;
    let joined = join_all(three(&coordinator)).await;
    let generation = joined[0].2.generation;
    assert!(joined.iter().all(|(_, _, j)| j.generation == generation));
    let leaders: Vec<&Joined> = joined
        .iter()
        .map(|(_, _, j)| j)
        .filter(|j| j.is_leader())
        .collect();
    assert_eq!(leaders.len(), 1, "one leader");
    assert!(
        joined
            .iter()
            .all(|(_, _, j)| j.leader == leaders[0].member_id)
    );
    assert!(joined.iter().all(|(_, _, j)| j.protocol == "sessioned"));
    // Only the leader sees the members, each with its metadata for the chosen protocol.
    let mut seen: Vec<Bytes> = leaders[0].members.iter().map(|(_, m)| m.clone()).collect();
    seen.sort();
    assert_eq!(
        seen,
        ["w1/v2", "w2/v2", "w3/v2"].map(|s| Bytes::from_static(s.as_bytes()))
    );
    assert!(
        joined
            .iter()
            .filter(|(_, _, j)| !j.is_leader())
            .all(|(_, _, j)| j.members.is_empty())
    );

    // One round, as Kafka's barrier makes it: every sync answered with its assignment.
    for (name, _, _, outcome) in sync_all(joined).await {
        assert_eq!(
            outcome,
            Outcome::Done(Bytes::from(format!("work-of-{name}")))
        );
    }
    assert_eq!(coordinator.snapshot().await.0, generation);
}

#[tokio::test]
async fn a_member_leaving_starts_a_new_generation_for_the_others() {
    let coordinator = FakeCoordinator::start().await;
    let mut synced = form(three(&coordinator)).await.0;
    let generation = synced[0].2.generation;
    let (_, mut gone, _, _) = synced.remove(0);
    gone.leave().await;
    let rejoining = all_beat_until_rejoin(members_of(synced), Duration::from_secs(5)).await;
    let joined = join_all(rejoining).await;
    assert!(
        joined
            .iter()
            .all(|(_, _, j)| j.generation == generation + 1)
    );
    let leader = joined.iter().find(|(_, _, j)| j.is_leader()).unwrap();
    assert_eq!(leader.2.members.len(), 2);
}

#[tokio::test]
async fn a_silent_member_is_expired_after_its_session_and_the_rest_rebalance() {
    let coordinator = FakeCoordinator::start().await;
    let mut synced = form(three(&coordinator)).await.0;
    let generation = synced[0].2.generation;
    // w1 dies: no heartbeat, no leave. The others keep heartbeating.
    let (_, dead, _, _) = synced.remove(0);
    let dead_id = dead.member_id().to_owned();
    drop(dead);
    let started = tokio::time::Instant::now();
    let rejoining = all_beat_until_rejoin(members_of(synced), Duration::from_secs(5)).await;
    let noticed = started.elapsed();
    let joined = join_all(rejoining).await;
    assert!(
        joined
            .iter()
            .all(|(_, _, j)| j.generation == generation + 1)
    );
    let (_, members) = coordinator.snapshot().await;
    assert!(!members.contains(&dead_id));
    assert_eq!(members.len(), 2);
    assert!(
        noticed >= Duration::from_millis(800),
        "expired only after the session: {noticed:?}"
    );
}

#[tokio::test]
async fn a_member_that_does_not_rejoin_within_the_rebalance_timeout_is_left_out_and_must_join_anew()
{
    let coordinator = FakeCoordinator::start().await;
    let mut synced = form(three(&coordinator)).await.0;
    let generation = synced[0].2.generation;
    let (_, mut laggard, _, _) = synced.remove(0);
    let (laggard_id, laggard_generation) = (laggard.member_id().to_owned(), laggard.generation());
    // w1 stays alive (it heartbeats, so its session does not lapse) but does not rejoin when
    // the others do: only the join barrier's timeout leaves it out.
    let mut beats = laggard.heartbeater().await.unwrap();
    let (stop_beating, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let beating = {
        let id = laggard_id.clone();
        tokio::spawn(async move {
            loop {
                let _ = beats.beat(&id, laggard_generation).await;
                tokio::select! {
                    _ = &mut stopped => return beats,
                    () = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
        })
    };
    let started = tokio::time::Instant::now();
    let joined = join_all(members_of(synced)).await;
    let held = started.elapsed();
    let _ = stop_beating.send(());
    let mut beats = beating.await.unwrap();
    assert!(
        held >= Duration::from_millis(1400),
        "the barrier held the rejoin: {held:?}"
    );
    assert!(
        joined
            .iter()
            .all(|(_, _, j)| j.generation == generation + 1)
    );
    assert_eq!(
        joined
            .iter()
            .find(|(_, _, j)| j.is_leader())
            .unwrap()
            .2
            .members
            .len(),
        2
    );
    // w1 is out: its next heartbeat says so, and its rejoin comes in as a new member.
    let beat = beats.beat(&laggard_id, laggard_generation).await.unwrap();
    assert!(
        matches!(&beat, Outcome::Rejoin(why) if why.contains("UnknownMember")),
        "{beat:?}"
    );
    laggard.heard(&beat);
    let mut all = vec![("w1".to_owned(), laggard)];
    all.extend(joined.into_iter().map(|(name, member, _)| (name, member)));
    let again = join_all(all).await;
    // w1 comes in as a new member of a later generation (the others may be a round behind,
    // told to rejoin by their next heartbeat, as in Kafka).
    let w1 = &again[0];
    assert_ne!(w1.1.member_id(), laggard_id, "w1 joined anew");
    assert!(w1.2.generation >= generation + 2);
    let (_, members) = coordinator.snapshot().await;
    assert!(
        members.contains(&w1.1.member_id().to_owned()),
        "{members:?}"
    );
}

/// A member living as a worker does: join, sync, heartbeat every `beat`; rejoin when told.
pub(super) struct Living {
    pub(super) name: String,
    /// After each sync: (generation, member id, assignment, members the leader saw); `None`
    /// while rejoining.
    pub(super) state: tokio::sync::watch::Receiver<Option<(i32, String, Bytes, usize)>>,
    handle: tokio::task::JoinHandle<GroupMember>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Living {
    /// Dies: no leave, no more heartbeats (as kill -9).
    pub(super) fn kill(self) {
        self.handle.abort();
    }

    /// Stops and hands the member back (without leaving).
    pub(super) async fn stop(self) -> GroupMember {
        let _ = self.stop.send(true);
        self.handle.await.unwrap()
    }
}

pub(super) fn live(name: &str, mut member: GroupMember, beat: Duration) -> Living {
    let (publish, state) = tokio::sync::watch::channel(None);
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let worker = name.to_owned();
    let handle = tokio::spawn(async move {
        let offered = protocols(&worker);
        loop {
            let joined = tokio::select! {
                j = member.join(&offered) => j.unwrap(),
                _ = stopped.changed() => return member,
            };
            let assignments = if joined.is_leader() {
                joined
                    .members
                    .iter()
                    .map(|(id, metadata)| {
                        let text = String::from_utf8_lossy(metadata);
                        let owner = text.split('/').next().unwrap_or_default().to_owned();
                        (id.clone(), Bytes::from(format!("work-of-{owner}")))
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let Outcome::Done(bytes) = member.sync(&joined, assignments).await.unwrap() else {
                continue;
            };
            let _ = publish.send(Some((
                joined.generation,
                joined.member_id.clone(),
                bytes,
                joined.members.len(),
            )));
            let mut beats = member.heartbeater().await.unwrap();
            loop {
                tokio::select! {
                    () = tokio::time::sleep(beat) => {}
                    _ = stopped.changed() => return member,
                }
                let outcome = match beats.beat(member.member_id(), member.generation()).await {
                    Ok(o) => o,
                    Err(e) => Outcome::Rejoin(e.message().to_owned()),
                };
                member.heard(&outcome);
                if let Outcome::Rejoin(_) = outcome {
                    let _ = publish.send(None);
                    break;
                }
            }
        }
    });
    Living {
        name: name.to_owned(),
        state,
        handle,
        stop,
    }
}

/// Waits until every one of `livings` holds an assignment of one generation in which the
/// leader saw exactly them; that generation, and how long it took.
pub(super) async fn settled(livings: &[Living], limit: Duration) -> (i32, Duration) {
    let started = tokio::time::Instant::now();
    loop {
        let states: Vec<_> = livings.iter().map(|l| l.state.borrow().clone()).collect();
        if let Some(Some((generation, _, _, _))) = states.first()
            && states
                .iter()
                .all(|s| s.as_ref().is_some_and(|(g, _, _, _)| g == generation))
            && states.iter().any(|s| {
                s.as_ref()
                    .is_some_and(|(_, _, _, seen)| *seen == livings.len())
            })
        {
            for (living, state) in livings.iter().zip(&states) {
                let (_, _, bytes, _) = state.as_ref().unwrap();
                assert_eq!(bytes, &Bytes::from(format!("work-of-{}", living.name)));
            }
            return (*generation, started.elapsed());
        }
        assert!(
            started.elapsed() < limit,
            "not settled within {limit:?}: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Workers living as in the herder (join, sync, heartbeat, rejoin when told) settle, and after
/// one dies the rest settle without it; with Kafka's semantics no rejoin ever has to start
/// over as a new member (the Tansu remedy never fires; tansu_tests shows Tansu needs it).
#[tokio::test]
async fn living_workers_settle_and_outlive_a_dead_one_without_starting_over() {
    let coordinator = FakeCoordinator::start().await;
    let mut livings: Vec<Living> = ["w1", "w2", "w3"]
        .iter()
        .map(|n| {
            live(
                n,
                GroupMember::new(settings(&coordinator)),
                Duration::from_millis(200),
            )
        })
        .collect();
    let (before, _) = settled(&livings, Duration::from_secs(10)).await;
    livings.remove(1).kill();
    let (after, took) = settled(&livings, Duration::from_secs(10)).await;
    assert_eq!(after, before + 1, "one new generation");
    assert!(
        took >= Duration::from_millis(800),
        "only after the session: {took:?}"
    );
    for living in livings {
        assert_eq!(living.stop().await.restarts_as_new(), 0);
    }
}

/// The group client's own SASL paths at run time, against a `SASL_PLAINTEXT` listener that
/// answers as Kafka's: the right PLAIN credentials join; after the broker's password is
/// rotated, the member's next connections (for its heartbeats) are refused as a config
/// error that names `sasl.jaas.config` and carries the broker's message; a mechanism the
/// listener does not offer names `sasl.mechanism`; a client without SASL is cut off.
#[tokio::test]
async fn sasl_plain_joins_and_each_refusal_names_the_setting_to_fix() {
    let coordinator = FakeCoordinator::start().await;
    coordinator.require_plain("connect", "first-pass");
    let with = |list: &[(&str, &str)]| {
        let pairs: Vec<(String, String)> = list
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        GroupSettings {
            security: BrokerSecurity::from_client_settings(&pairs).unwrap(),
            ..settings(&coordinator)
        }
    };
    let sasl = |mechanism: &'static str, password: &'static str| {
        with(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanisms", mechanism),
            ("sasl.username", "connect"),
            ("sasl.password", password),
        ])
    };

    let mut member = GroupMember::new(sasl("PLAIN", "first-pass"));
    let joined = member.join(&protocols("w1")).await.unwrap();
    assert_eq!(joined.generation, 1);

    coordinator.require_plain("connect", "rotated-pass");
    let refused = member.heartbeater().await.unwrap_err();
    assert_eq!(refused.kind(), sluice_api::ErrorKind::Config, "{refused}");
    let text = refused.to_string();
    assert!(text.contains("refused SASL authentication"), "{text}");
    assert!(text.contains("Invalid username or password"), "{text}");
    assert!(text.contains("`sasl.jaas.config`"), "{text}");
    assert!(!text.contains("first-pass"), "{text}");

    let mut scram = GroupMember::new(sasl("SCRAM-SHA-256", "rotated-pass"));
    let refused = scram.join(&protocols("w2")).await.unwrap_err().to_string();
    assert!(refused.contains("`sasl.mechanism`"), "{refused}");
    assert!(refused.contains("PLAIN"), "{refused}");

    let mut plaintext = GroupMember::new(with(&[]));
    assert!(plaintext.join(&protocols("w3")).await.is_err());

    let mut rotated = GroupMember::new(sasl("PLAIN", "rotated-pass"));
    assert!(rotated.join(&protocols("w4")).await.is_ok());
}

/// Runs `openssl` in `dir` (Debian's openssl package, as the TLS tests use).
pub(super) fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (Debian's openssl package) runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed P-256 certificate for `subject` in `dir`: `{name}.crt` and its unencrypted
/// key `{name}.key`.
pub(super) fn self_signed(dir: &std::path::Path, name: &str, subject: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-subj",
            subject,
            "-days",
            "1",
            "-out",
            &format!("{name}.crt"),
        ],
    );
}

/// The group client's TLS at run time, against a listener whose certificate (made by openssl
/// here) names only `localhost`: a truststore without its CA is refused as a config error
/// naming `ssl.truststore.location`; dialling `127.0.0.1` is refused naming the host check;
/// neither is retried as a passing network fault.
#[tokio::test]
async fn tls_refusals_name_the_setting_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    for ca in ["ca", "other-ca"] {
        self_signed(path, ca, &format!("/CN={ca}"));
    }
    std::fs::write(path.join("ext"), "subjectAltName = DNS:localhost\n").unwrap();
    openssl(
        path,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "broker.key",
            "-subj",
            "/CN=localhost",
            "-out",
            "broker.csr",
        ],
    );
    openssl(
        path,
        &[
            "x509",
            "-req",
            "-in",
            "broker.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "ext",
            "-out",
            "broker.crt",
        ],
    );

    let chain = sluice_tls::read_certificates(&path.join("broker.crt"), "broker").unwrap();
    let key = sluice_tls::read_private_key(
        &path.join("broker.key"),
        &sluice_api::Secret::default(),
        "broker",
        "broker.password",
    )
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = acceptor.accept(stream).await;
        }
    });

    let refusal = |host: &str, ca: &str| {
        let security = BrokerSecurity::from_client_settings(&[
            ("security.protocol".to_owned(), "SSL".to_owned()),
            (
                "ssl.ca.location".to_owned(),
                path.join(ca).display().to_string(),
            ),
        ])
        .unwrap();
        let address = format!("{host}:{port}");
        async move {
            let mut member = GroupMember::new(GroupSettings {
                bootstrap: vec![address],
                group_id: "connect-cluster".into(),
                client_id: "sluice-test".into(),
                session_timeout: Duration::from_millis(1000),
                rebalance_timeout: Duration::from_millis(1500),
                request_timeout: Duration::from_secs(5),
                security,
            });
            member.join(&protocols("w1")).await.unwrap_err()
        }
    };
    let untrusted = refusal("localhost", "other-ca.crt").await;
    assert_eq!(
        untrusted.kind(),
        sluice_api::ErrorKind::Config,
        "{untrusted}"
    );
    assert!(
        untrusted.to_string().contains("`ssl.truststore.location`"),
        "{untrusted}"
    );
    let unnamed = refusal("127.0.0.1", "ca.crt").await;
    assert_eq!(unnamed.kind(), sluice_api::ErrorKind::Config, "{unnamed}");
    assert!(
        unnamed
            .to_string()
            .contains("does not name the host dialled"),
        "{unnamed}"
    );
}
