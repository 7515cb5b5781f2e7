//! The membership client against Tansu 0.6, the broker these machines run. Where Tansu
//! differs from Kafka the test asserts what Tansu does, so a change in Tansu shows here.

use std::time::Duration;

use bytes::Bytes;

use super::broker_security::BrokerSecurity;
use super::group::{GroupMember, GroupSettings, Joined, Outcome};
use super::group_tests::{Living, live, settled};

#[path = "../../../../../tests/support/tansu.rs"]
mod tansu;

/// A private Tansu broker, stopped when dropped.
pub(super) struct Broker {
    child: std::process::Child,
    pub(super) address: String,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(super) fn broker() -> Broker {
    let address = format!("127.0.0.1:{}", tansu::free_port());
    let child = tansu::spawn_tansu(&address, "memory://tansu/", &[]);
    Broker { child, address }
}

fn on(broker: &Broker, group: &str) -> GroupSettings {
    GroupSettings {
        bootstrap: vec![broker.address.clone()],
        group_id: group.into(),
        client_id: "sluice-test".into(),
        session_timeout: Duration::from_millis(6000),
        rebalance_timeout: Duration::from_millis(6000),
        request_timeout: Duration::from_secs(10),
        security: BrokerSecurity::plaintext(),
    }
}

fn workers(broker: &Broker, names: &[&str]) -> Vec<Living> {
    names
        .iter()
        .map(|n| {
            live(
                n,
                GroupMember::new(on(broker, "connect-cluster")),
                Duration::from_millis(500),
            )
        })
        .collect()
}

/// Three workers settle on one generation, each with its assignment. Tansu has no join
/// barrier: members answer from different generations and are told to rejoin until one
/// generation holds all three (Kafka's barrier makes it one round; see group_tests).
#[tokio::test]
async fn three_workers_settle_on_one_generation() {
    let broker = broker();
    let livings = workers(&broker, &["w1", "w2", "w3"]);
    let (generation, took) = settled(&livings, Duration::from_secs(60)).await;
    eprintln!("Tansu: three workers settled on generation {generation} in {took:?}");
    let mut restarts = 0;
    for living in livings {
        restarts += living.stop().await.restarts_as_new();
    }
    // Tansu may hand a rejoin its old generation even while forming; the members then start
    // over (Kafka never does: see group_tests).
    eprintln!("Tansu: {restarts} rejoin(s) started over while forming");
}

/// A worker dies (no leave): after its session the survivors are told to rebalance. Tansu
/// then keeps the generation and hands back the old assignment to a plain rejoin; the
/// survivors see that, leave and join as new members, and settle without the dead one.
#[tokio::test]
async fn a_dead_worker_is_dropped_and_the_survivors_settle_without_it() {
    let broker = broker();
    let mut livings = workers(&broker, &["w1", "w2", "w3"]);
    let (before, _) = settled(&livings, Duration::from_secs(60)).await;
    livings.remove(0).kill();
    let (after, took) = settled(&livings, Duration::from_secs(90)).await;
    eprintln!(
        "Tansu: after a worker died, generation {before} -> {after} in {took:?} (session 6 s)"
    );
    assert!(after > before);
    let mut restarts = 0;
    for living in livings {
        restarts += living.stop().await.restarts_as_new();
    }
    eprintln!("Tansu: {restarts} rejoin(s) came back with the old generation and started over");
    // Tansu's quirk, shown: without starting over the survivors would get the dead member's
    // generation back. (The same test on the Kafka-semantics fake never starts over.)
    assert!(
        restarts >= 1,
        "Tansu started a new generation by itself: the remedy can go"
    );
}

/// Brings group `group` to Tansu's forming state with `a` as its leader at the generation `a`
/// last synced: `a` leads and syncs with `b` in the group; `b` then dies, `a` keeps its own
/// session alive with heartbeats until just before `b`'s runs out, and `a`'s next join is the
/// request that expires `b`. Tansu then forms again under whoever joins first, at the same
/// generation (the metadata did not change). Returns `a`'s join, `a` leading it.
async fn a_leads_a_forming_generation(broker: &Broker, group: &str) -> (GroupMember, Joined) {
    let protocols = |name: &str| vec![("sessioned", Bytes::from(format!("{name}/v2")))];
    let mut a = GroupMember::new(on(broker, group));
    let mut b = GroupMember::new(on(broker, group));
    let first = a.join(&protocols("a")).await.unwrap();
    assert!(first.is_leader());
    assert!(matches!(
        a.sync(&first, Vec::new()).await.unwrap(),
        Outcome::Done(_)
    ));
    // b joins (Tansu's last contact for it is now): the generation moves on, and a leads it.
    let b_joined = tokio::spawn(async move {
        let joined = b.join(&protocols("b")).await.unwrap();
        (b, joined)
    });
    let b_contact = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let led = a.join(&protocols("a")).await.unwrap();
    assert!(led.is_leader(), "{led:?}");
    let assignments = led
        .members
        .iter()
        .map(|(id, _)| (id.clone(), Bytes::from_static(b"work")))
        .collect();
    assert!(matches!(
        a.sync(&led, assignments).await.unwrap(),
        Outcome::Done(_)
    ));
    let (b, _) = b_joined.await.unwrap();
    drop(b); // dies: no heartbeat, no leave
    let mut beats = a.heartbeater().await.unwrap();
    let session = Duration::from_millis(6000);
    while b_contact.elapsed() < session - Duration::from_millis(1500) {
        beats.beat(&led.member_id, led.generation).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep_until(b_contact + session + Duration::from_millis(700)).await;
    let forming = a.join(&protocols("a")).await.unwrap();
    assert!(forming.is_leader(), "{forming:?}");
    assert_eq!(
        forming.generation, led.generation,
        "Tansu kept the generation when it dropped b"
    );
    (a, forming)
}

/// Tansu 0.6 keeps a member that leaves a forming generation it leads as that generation's
/// leader: the member, joining again as a new one, is not the leader, and nobody can sync the
/// generation any more (Apache Kafka picks another leader when the leader leaves). Shown with
/// a plain LeaveGroup; this is the state a worker group on Tansu stayed in for good when a
/// survivor of a kill -9 left to start over as a new member.
#[tokio::test]
async fn tansu_keeps_a_member_that_left_a_forming_generation_as_its_leader() {
    let broker = broker();
    let (mut a, forming) = a_leads_a_forming_generation(&broker, "stale-leader").await;
    a.forget_leading();
    a.leave().await;
    let protocols = vec![("sessioned", Bytes::from_static(b"a/v2"))];
    let again = a.join(&protocols).await.unwrap();
    assert_eq!(
        again.leader, forming.member_id,
        "Tansu named a live leader after the leader left: sluice's sync before leaving can go"
    );
    assert!(!again.is_leader());
    let outcome = a.sync(&again, Vec::new()).await.unwrap();
    assert!(matches!(outcome, Outcome::Rejoin(_)), "{outcome:?}");
    eprintln!(
        "Tansu: after the leader of a forming generation left, the group's leader is still \
         the member that left ({}); the sync of the only live member: {outcome:?}",
        forming.member_id
    );
}

/// The same state, and sluice's way out: the leader ends the forming generation with a sync
/// before it leaves, so joining again as a new member makes it the leader of the next
/// generation, which it can sync.
#[tokio::test]
async fn a_member_that_leads_a_forming_generation_syncs_before_leaving_and_leads_again() {
    let broker = broker();
    let (mut a, forming) = a_leads_a_forming_generation(&broker, "sync-then-leave").await;
    a.leave().await;
    let protocols = vec![("sessioned", Bytes::from_static(b"a/v2"))];
    let again = a.join(&protocols).await.unwrap();
    assert!(again.is_leader(), "{again:?}");
    assert!(again.generation > forming.generation);
    let assignments = vec![(again.member_id.clone(), Bytes::from_static(b"work"))];
    let outcome = a.sync(&again, assignments).await.unwrap();
    assert_eq!(outcome, Outcome::Done(Bytes::from_static(b"work")));
}
