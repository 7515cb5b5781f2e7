//! The leader's incremental cooperative assignment (Kafka Connect's KIP-415), as a pure
//! function of the members' metadata, the configured work, the assignor's memory and the
//! clock, so it is tested without a broker.
//!
//! Per kind (connectors, tasks) the work is spread evenly — loads differ by at most one — and
//! moves only to restore balance:
//! * Work a member runs stays with it. Work no member runs goes back to the worker that ran
//!   it when that worker (by URL, so a restarted worker counts) is a member again; work of a
//!   worker that left is held for `scheduled.rebalance.max.delay.ms` (members are told to
//!   rejoin when the delay ends), then given to the least-loaded members; new work goes to the
//!   least-loaded members at once.
//! * Work run by two members (a zombie, a split) keeps one instance, on the member that ran it
//!   last; Kafka Connect revokes it everywhere.
//! * A member over its share is asked to revoke the excess; revoked work is assigned only in
//!   the next round, after its owner has stopped it, so nothing ever runs twice.
//! * As in Kafka Connect: no revocation for balance while work is held for a departed worker
//!   (the returning worker would only unbalance it again), and rounds that keep revoking back
//!   off — the second revoking round in a row waits 40 ms, the third 1.6 s, then 64 s, each
//!   capped by `scheduled.rebalance.max.delay.ms` (revoking at once when that is 0) — so a
//!   flapping membership cannot keep tasks stopping and starting.
//!
//! Better than Kafka Connect in two ways: stickiness is by worker URL (Kafka Connect forgets a
//! worker that restarts with a new member id), and lost work whose owner is still a member goes
//! straight back to it.

use std::collections::{BTreeMap, BTreeSet};

/// A unit of work: a connector instance, or one of its tasks.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Work {
    /// The connector itself (task `-1` on the wire).
    Connector(String),
    /// Task `n` of a connector.
    Task(String, u32),
}

impl Work {
    fn is_connector(&self) -> bool {
        matches!(self, Work::Connector(_))
    }
}

/// A group member as the leader sees it in JoinGroup.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub id: String,
    /// The worker's advertised REST URL: its identity across restarts.
    pub url: String,
    /// What it runs now (its metadata's allocation).
    pub owned: BTreeSet<Work>,
}

/// What one member is told in SyncGroup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MemberPlan {
    /// Work to start, beyond what it already runs.
    pub assigned: BTreeSet<Work>,
    /// Work to stop now.
    pub revoked: BTreeSet<Work>,
}

/// The leader's answer for one round.
#[derive(Debug, Clone, Default)]
pub(crate) struct Plan {
    /// By member id.
    pub members: BTreeMap<String, MemberPlan>,
    /// When work is held for departed workers: milliseconds until members should rejoin so it
    /// can be reassigned; 0 otherwise.
    pub delay_ms: u64,
}

impl Plan {
    /// True when no member is told to start or stop anything.
    #[cfg(test)]
    pub(crate) fn is_quiet(&self) -> bool {
        self.members
            .values()
            .all(|p| p.assigned.is_empty() && p.revoked.is_empty())
    }
}

/// What the leader remembers between rounds (lost when leadership moves, as in Kafka Connect).
#[derive(Debug, Clone, Default)]
pub(crate) struct Memory {
    /// The URL of the worker each piece of work was last assigned to.
    last_owner: BTreeMap<Work, String>,
    /// When each departed worker (by URL) was first found missing, in ms.
    departed_at: BTreeMap<String, u64>,
    /// Whether the last round revoked work for balance.
    revoked_in_previous: bool,
    /// Revoking rounds in a row beyond the first (the back-off's exponent).
    successive_revoking_rounds: u32,
    /// Until when balancing revocations wait (ms), after back-to-back revoking rounds.
    revocations_paused_until: Option<u64>,
}

/// Kafka Connect's back-off between revoking rounds: `40^n` ms (its `ExponentialBackoff(1,
/// 40, max)`), capped by the maximum delay; 0 (revoke at once) when that is 0.
fn revoking_backoff_ms(rounds: u32, max_delay_ms: u64) -> u64 {
    if max_delay_ms == 0 {
        return 0;
    }
    40u64
        .checked_pow(rounds)
        .unwrap_or(u64::MAX)
        .min(max_delay_ms)
}

impl Memory {
    /// Whether it remembers nothing (a worker that just became leader).
    pub(crate) fn is_empty(&self) -> bool {
        self.last_owner.is_empty() && self.departed_at.is_empty()
    }

    /// Remembers `url` as the last owner of `work` (a new leader learning from the status
    /// topic who ran what, so that work held for a departed worker stays held).
    pub(crate) fn remember(&mut self, work: Work, url: String) {
        self.last_owner.insert(work, url);
    }
}

/// Computes a round's assignment. `configured` is all work the config snapshot defines;
/// `max_delay_ms` is `scheduled.rebalance.max.delay.ms`; `now_ms` any monotonic clock.
pub(crate) fn assign(
    members: &[Member],
    configured: &BTreeSet<Work>,
    memory: &mut Memory,
    now_ms: u64,
    max_delay_ms: u64,
) -> Plan {
    let mut members: Vec<&Member> = members.iter().collect();
    members.sort_by(|a, b| (&a.url, &a.id).cmp(&(&b.url, &b.id)));
    let mut plan = Plan {
        members: members
            .iter()
            .map(|m| (m.id.clone(), MemberPlan::default()))
            .collect(),
        delay_ms: 0,
    };
    if members.is_empty() {
        return plan;
    }
    let urls: BTreeSet<&str> = members.iter().map(|m| m.url.as_str()).collect();
    memory
        .departed_at
        .retain(|url, _| !urls.contains(url.as_str()));

    // What each member keeps: its configured work, each piece on one member only.
    let mut kept: Vec<BTreeSet<Work>> = vec![BTreeSet::new(); members.len()];
    let mut holders: BTreeMap<&Work, Vec<usize>> = BTreeMap::new();
    for (i, member) in members.iter().enumerate() {
        for work in &member.owned {
            if configured.contains(work) {
                holders.entry(work).or_default().push(i);
            } else {
                revoke(&mut plan, member, work);
            }
        }
    }
    for (work, holding) in holders {
        let last = memory.last_owner.get(work);
        let keeper = holding
            .iter()
            .copied()
            .find(|&i| Some(&members[i].url) == last)
            .unwrap_or(holding[0]);
        for &i in &holding {
            if i == keeper {
                kept[i].insert(work.clone());
            } else {
                revoke(&mut plan, members[i], work);
            }
        }
    }

    // Work nobody runs: back to its last owner if present, held if that owner left within
    // the delay, otherwise to be placed.
    let running: BTreeSet<Work> = kept.iter().flatten().cloned().collect();
    let mut to_place: Vec<Work> = Vec::new();
    let mut held_until: Option<u64> = None;
    for work in configured.iter().filter(|w| !running.contains(w)) {
        match memory.last_owner.get(work) {
            Some(url) if urls.contains(url.as_str()) => {
                let owner = members
                    .iter()
                    .position(|m| &m.url == url)
                    .expect("a member");
                kept[owner].insert(work.clone());
                plan.members
                    .get_mut(&members[owner].id)
                    .expect("planned")
                    .assigned
                    .insert(work.clone());
            }
            Some(url) if max_delay_ms > 0 => {
                let since = *memory.departed_at.entry(url.clone()).or_insert(now_ms);
                let until = since.saturating_add(max_delay_ms);
                if now_ms < until {
                    held_until = Some(held_until.map_or(until, |h| h.min(until)));
                } else {
                    to_place.push(work.clone());
                }
            }
            _ => to_place.push(work.clone()),
        }
    }
    let mut excess = Vec::new();
    for connectors in [true, false] {
        excess.extend(place(
            &members,
            &mut kept,
            &mut plan,
            to_place.iter().filter(|w| w.is_connector() == connectors),
            connectors,
        ));
    }

    // Revocations for balance, unless work is held or revoking rounds must back off.
    let mut rejoin_at = held_until;
    if held_until.is_some() {
        memory.revoked_in_previous = false;
    } else {
        if memory
            .revocations_paused_until
            .is_some_and(|until| now_ms >= until)
        {
            // The back-off is over: revoke now (the count of rounds carries on).
            memory.revocations_paused_until = None;
            memory.revoked_in_previous = false;
        }
        if let Some(until) = memory.revocations_paused_until {
            if !excess.is_empty() {
                rejoin_at = Some(until);
            }
        } else if excess.is_empty() {
            // Balanced: the back-off starts over, also when a pause ended on a balanced group
            // (Kafka Connect resets its count whenever a round has nothing to revoke).
            memory.revoked_in_previous = false;
            memory.successive_revoking_rounds = 0;
        } else {
            let backoff = if memory.revoked_in_previous {
                memory.successive_revoking_rounds += 1;
                revoking_backoff_ms(memory.successive_revoking_rounds, max_delay_ms)
            } else {
                0
            };
            if backoff > 0 {
                let until = now_ms.saturating_add(backoff);
                memory.revocations_paused_until = Some(until);
                rejoin_at = Some(until);
            } else {
                for (i, work) in excess {
                    kept[i].remove(&work);
                    revoke(&mut plan, members[i], &work);
                }
                memory.revoked_in_previous = true;
            }
        }
    }
    plan.delay_ms = rejoin_at.map_or(0, |until| until.saturating_sub(now_ms));

    // Remember owners; revoked work is placed afresh next round (not handed back).
    memory
        .last_owner
        .retain(|work, _| configured.contains(work));
    for (i, member) in members.iter().enumerate() {
        for work in &kept[i] {
            memory.last_owner.insert(work.clone(), member.url.clone());
        }
        for work in &plan.members[&member.id].revoked {
            if memory.last_owner.get(work) == Some(&member.url) {
                memory.last_owner.remove(work);
            }
        }
    }
    plan
}

fn revoke(plan: &mut Plan, member: &Member, work: &Work) {
    plan.members
        .get_mut(&member.id)
        .expect("planned")
        .revoked
        .insert(work.clone());
}

/// Places `to_place` (of one kind) on the members with most room, and returns what members
/// over their share would have to revoke to restore balance (by member index). Shares:
/// `total / n` each, one more for the `total % n` members already running the most (so the
/// fewest pieces move).
fn place<'w>(
    members: &[&Member],
    kept: &mut [BTreeSet<Work>],
    plan: &mut Plan,
    to_place: impl Iterator<Item = &'w Work>,
    connectors: bool,
) -> Vec<(usize, Work)> {
    let to_place: Vec<&Work> = to_place.collect();
    let load = |set: &BTreeSet<Work>| {
        set.iter()
            .filter(|w| w.is_connector() == connectors)
            .count()
    };
    let loads: Vec<usize> = kept.iter().map(load).collect();
    let total = loads.iter().sum::<usize>() + to_place.len();
    let n = members.len();
    let mut by_load: Vec<usize> = (0..n).collect();
    by_load.sort_by_key(|&i| std::cmp::Reverse(loads[i]));
    let mut share = vec![total / n; n];
    for &i in by_load.iter().take(total % n) {
        share[i] += 1;
    }
    let mut loads = loads;
    for work in to_place {
        let target = (0..n)
            .max_by_key(|&i| (share[i] as isize - loads[i] as isize, std::cmp::Reverse(i)))
            .expect("members");
        loads[target] += 1;
        kept[target].insert(work.clone());
        plan.members
            .get_mut(&members[target].id)
            .expect("planned")
            .assigned
            .insert(work.clone());
    }
    let mut excess = Vec::new();
    for i in 0..n {
        let over = loads[i].saturating_sub(share[i]);
        if over == 0 {
            continue;
        }
        let member_plan = &plan.members[&members[i].id];
        // Revoke what it ran before this round, newest names last: the end of the order.
        excess.extend(
            kept[i]
                .iter()
                .filter(|w| w.is_connector() == connectors && !member_plan.assigned.contains(w))
                .rev()
                .take(over)
                .map(|w| (i, w.clone())),
        );
    }
    excess
}

#[cfg(test)]
mod tests {
    use super::*;

    fn work(connectors: &[(&str, u32)]) -> BTreeSet<Work> {
        let mut all = BTreeSet::new();
        for (name, tasks) in connectors {
            all.insert(Work::Connector((*name).to_owned()));
            for t in 0..*tasks {
                all.insert(Work::Task((*name).to_owned(), t));
            }
        }
        all
    }

    /// A worker as the simulation keeps it.
    #[derive(Debug, Clone)]
    struct Worker {
        id: String,
        url: String,
        running: BTreeSet<Work>,
    }

    fn members(workers: &[Worker]) -> Vec<Member> {
        workers
            .iter()
            .map(|w| Member {
                id: w.id.clone(),
                url: w.url.clone(),
                owned: w.running.clone(),
            })
            .collect()
    }

    /// Applies a plan: revoked work stops, assigned work starts. Panics if a member is told to
    /// start what another member still runs (that would run it twice).
    fn apply(workers: &mut [Worker], plan: &Plan) {
        for w in workers.iter_mut() {
            let p = &plan.members[&w.id];
            for r in &p.revoked {
                w.running.remove(r);
            }
        }
        for i in 0..workers.len() {
            let p = plan.members[&workers[i].id].clone();
            for a in &p.assigned {
                for (j, other) in workers.iter().enumerate() {
                    assert!(
                        j == i || !other.running.contains(a),
                        "{a:?} assigned to {} while {} still runs it",
                        workers[i].url,
                        other.url
                    );
                }
            }
            workers[i].running.extend(p.assigned);
        }
    }

    /// Rounds until quiet (the clock moves past any delay); the rounds it took.
    fn converge(
        workers: &mut [Worker],
        configured: &BTreeSet<Work>,
        memory: &mut Memory,
        now: &mut u64,
        delay: u64,
    ) -> usize {
        for round in 1..=10 {
            let plan = assign(&members(workers), configured, memory, *now, delay);
            apply(workers, &plan);
            if plan.is_quiet() && plan.delay_ms == 0 {
                return round;
            }
            *now += plan.delay_ms.max(1);
        }
        panic!("no convergence in 10 rounds");
    }

    fn check_converged(workers: &[Worker], configured: &BTreeSet<Work>) {
        let mut seen = BTreeSet::new();
        for w in workers {
            for work in &w.running {
                assert!(seen.insert(work.clone()), "{work:?} runs twice");
            }
        }
        assert_eq!(&seen, configured, "every piece of work runs exactly once");
        for connectors in [true, false] {
            let loads: Vec<usize> = workers
                .iter()
                .map(|w| {
                    w.running
                        .iter()
                        .filter(|x| x.is_connector() == connectors)
                        .count()
                })
                .collect();
            let (min, max) = (loads.iter().min().unwrap(), loads.iter().max().unwrap());
            assert!(
                max - min <= 1,
                "unbalanced {}: {loads:?}",
                if connectors { "connectors" } else { "tasks" }
            );
        }
    }

    fn worker(n: usize) -> Worker {
        Worker {
            id: format!("member-{n}"),
            url: format!("http://w{n}:8083"),
            running: BTreeSet::new(),
        }
    }

    #[test]
    fn six_tasks_spread_two_per_worker_and_a_quiet_round_moves_nothing() {
        let configured = work(&[("c", 6)]);
        let mut workers = vec![worker(1), worker(2), worker(3)];
        let (mut memory, mut now) = (Memory::default(), 0);
        converge(&mut workers, &configured, &mut memory, &mut now, 0);
        check_converged(&workers, &configured);
        for w in &workers {
            assert_eq!(w.running.iter().filter(|x| !x.is_connector()).count(), 2);
        }
        let again = assign(&members(&workers), &configured, &mut memory, now, 0);
        assert!(again.is_quiet());
    }

    #[test]
    fn a_departed_workers_tasks_wait_for_the_delay_and_go_back_if_it_returns() {
        let configured = work(&[("c", 6)]);
        let mut workers = vec![worker(1), worker(2), worker(3)];
        let (mut memory, mut now) = (Memory::default(), 0);
        converge(&mut workers, &configured, &mut memory, &mut now, 20_000);
        let gone = workers.remove(2);
        let plan = assign(&members(&workers), &configured, &mut memory, now, 20_000);
        assert!(plan.is_quiet(), "nothing moves within the delay: {plan:?}");
        assert_eq!(plan.delay_ms, 20_000);
        // It comes back (a new member id, the same URL) within the delay: its own work back.
        now += 5_000;
        let back = Worker {
            id: "member-3-again".into(),
            running: BTreeSet::new(),
            ..gone.clone()
        };
        workers.push(back);
        let plan = assign(&members(&workers), &configured, &mut memory, now, 20_000);
        assert_eq!(plan.members["member-3-again"].assigned, gone.running);
        assert_eq!(plan.delay_ms, 0);
    }

    #[test]
    fn after_the_delay_lost_work_goes_to_the_survivors() {
        let configured = work(&[("a", 3), ("b", 3)]);
        let mut workers = vec![worker(1), worker(2), worker(3)];
        let (mut memory, mut now) = (Memory::default(), 0);
        converge(&mut workers, &configured, &mut memory, &mut now, 20_000);
        workers.remove(0);
        let plan = assign(&members(&workers), &configured, &mut memory, now, 20_000);
        assert!(plan.is_quiet());
        now += plan.delay_ms;
        converge(&mut workers, &configured, &mut memory, &mut now, 20_000);
        check_converged(&workers, &configured);
    }

    #[test]
    fn work_running_twice_keeps_one_instance() {
        let configured = work(&[("c", 2)]);
        let mut workers = vec![worker(1), worker(2)];
        let (mut memory, mut now) = (Memory::default(), 0);
        converge(&mut workers, &configured, &mut memory, &mut now, 0);
        let task = Work::Task("c".into(), 0);
        let holder = workers
            .iter()
            .position(|w| w.running.contains(&task))
            .unwrap();
        workers[1 - holder].running.insert(task.clone());
        let plan = assign(&members(&workers), &configured, &mut memory, now, 0);
        assert!(plan.members[&workers[holder].id].revoked.is_empty());
        assert!(
            plan.members[&workers[1 - holder].id]
                .revoked
                .contains(&task)
        );
    }

    /// Kafka Connect's rule: while lost work is held for a departed worker, nothing is revoked
    /// for balance, not even for a worker that just joined empty-handed.
    #[test]
    fn nothing_is_revoked_for_balance_while_lost_work_is_held() {
        let configured = work(&[("c", 6)]);
        let mut workers = vec![worker(1), worker(2), worker(3)];
        let (mut memory, mut now) = (Memory::default(), 0);
        converge(&mut workers, &configured, &mut memory, &mut now, 20_000);
        workers.remove(0);
        workers.push(worker(4));
        let plan = assign(&members(&workers), &configured, &mut memory, now, 20_000);
        assert!(plan.is_quiet(), "held: {plan:?}");
        assert_eq!(plan.delay_ms, 20_000);
        now += 20_000;
        converge(&mut workers, &configured, &mut memory, &mut now, 20_000);
        check_converged(&workers, &configured);
    }

    /// Kafka Connect's back-off: the second revoking round in a row waits 40 ms, the third
    /// 1.6 s, capped by the maximum delay; with a maximum delay of 0 every round revokes.
    #[test]
    fn back_to_back_revoking_rounds_back_off_forty_fold() {
        let revoked =
            |plan: &Plan| -> usize { plan.members.values().map(|p| p.revoked.len()).sum() };
        for (max_delay, expected_waits) in [
            (300_000, vec![0, 40, 1_600]),
            (1_000, vec![0, 40, 1_000]),
            (0, vec![0, 0, 0]),
        ] {
            let configured = work(&[("c", 24)]);
            let mut workers = vec![worker(1)];
            let (mut memory, mut now) = (Memory::default(), 0);
            converge(&mut workers, &configured, &mut memory, &mut now, max_delay);
            for (joined, wait) in expected_waits.into_iter().enumerate() {
                // A worker joins right after each revoking round: the next round revokes again.
                workers.push(worker(10 + joined));
                let plan = assign(&members(&workers), &configured, &mut memory, now, max_delay);
                if wait > 0 {
                    assert_eq!(revoked(&plan), 0, "round {joined} backs off: {plan:?}");
                    assert_eq!(plan.delay_ms, wait, "round {joined}");
                    now += wait;
                    let plan = assign(&members(&workers), &configured, &mut memory, now, max_delay);
                    assert!(revoked(&plan) > 0, "round {joined} revokes after the wait");
                    apply(&mut workers, &plan);
                } else {
                    assert!(
                        revoked(&plan) > 0,
                        "round {joined} revokes at once: {plan:?}"
                    );
                    assert_eq!(plan.delay_ms, 0);
                    apply(&mut workers, &plan);
                }
            }
            converge(&mut workers, &configured, &mut memory, &mut now, max_delay);
            check_converged(&workers, &configured);
            // Balanced again: the count starts over, so the next revoking round is immediate.
            workers.push(worker(99));
            let plan = assign(&members(&workers), &configured, &mut memory, now, max_delay);
            assert!(revoked(&plan) > 0 && plan.delay_ms == 0, "{plan:?}");
        }
    }

    #[test]
    fn a_back_off_that_ends_on_a_balanced_group_starts_the_count_over() {
        let revoked =
            |plan: &Plan| -> usize { plan.members.values().map(|p| p.revoked.len()).sum() };
        let max_delay = 300_000;
        let configured = work(&[("c", 24)]);
        let mut workers = vec![worker(1)];
        let (mut memory, mut now) = (Memory::default(), 0);
        converge(&mut workers, &configured, &mut memory, &mut now, max_delay);
        workers.push(worker(10));
        let plan = assign(&members(&workers), &configured, &mut memory, now, max_delay);
        assert!(revoked(&plan) > 0, "{plan:?}");
        apply(&mut workers, &plan);
        workers.push(worker(11));
        let plan = assign(&members(&workers), &configured, &mut memory, now, max_delay);
        assert_eq!((revoked(&plan), plan.delay_ms), (0, 40), "backs off");
        // The newcomer leaves before the pause ends: it ends on a balanced group.
        workers.pop();
        now += 40;
        converge(&mut workers, &configured, &mut memory, &mut now, max_delay);
        check_converged(&workers, &configured);
        // A later imbalance revokes at once, and the next back-to-back round waits 40 ms
        // again, not 1.6 s.
        workers.push(worker(12));
        let plan = assign(&members(&workers), &configured, &mut memory, now, max_delay);
        assert!(revoked(&plan) > 0 && plan.delay_ms == 0, "{plan:?}");
        apply(&mut workers, &plan);
        workers.push(worker(13));
        let plan = assign(&members(&workers), &configured, &mut memory, now, max_delay);
        assert_eq!((revoked(&plan), plan.delay_ms), (0, 40), "{plan:?}");
    }

    /// Random memberships and configs: after every change, rounds converge to every piece of
    /// work running exactly once, balanced within one per kind, never assigned while another
    /// member still runs it, and a further round moves nothing.
    #[test]
    fn random_changes_converge_balanced_exactly_once_and_then_stay_still() {
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for case in 0..200 {
            let delay = [0, 10_000][case % 2];
            let mut workers: Vec<Worker> = (0..1 + next(4) as usize).map(worker).collect();
            let mut next_worker = workers.len();
            let mut connectors: Vec<(String, u32)> = (0..next(6))
                .map(|i| (format!("c{i}"), next(8) as u32))
                .collect();
            let (mut memory, mut now) = (Memory::default(), 0);
            for _step in 0..12 {
                match next(5) {
                    0 => {
                        workers.push(worker(next_worker));
                        next_worker += 1;
                    }
                    1 if workers.len() > 1 => {
                        let gone = next(workers.len() as u64) as usize;
                        workers.remove(gone);
                    }
                    2 => connectors.push((format!("c{}", next(1000)), next(8) as u32)),
                    3 if !connectors.is_empty() => {
                        let i = next(connectors.len() as u64) as usize;
                        connectors.remove(i);
                    }
                    _ if !connectors.is_empty() => {
                        let i = next(connectors.len() as u64) as usize;
                        connectors[i].1 = next(8) as u32;
                    }
                    _ => {}
                }
                connectors.sort();
                connectors.dedup_by(|a, b| a.0 == b.0);
                let spec: Vec<(&str, u32)> =
                    connectors.iter().map(|(n, t)| (n.as_str(), *t)).collect();
                let configured = work(&spec);
                converge(&mut workers, &configured, &mut memory, &mut now, delay);
                check_converged(&workers, &configured);
                let still = assign(&members(&workers), &configured, &mut memory, now, delay);
                assert!(
                    still.is_quiet() && still.delay_ms == 0,
                    "case {case}: {still:?}"
                );
            }
        }
    }
}
