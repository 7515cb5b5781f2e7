//! Benchmark: a group of `sluice distributed` workers (release build) on a Tansu broker on
//! loopback, with Kafka Connect's connect-distributed.properties and Kafka's default group
//! timings (`session.timeout.ms` 10 s, `heartbeat.interval.ms` 3 s) but lost work reassigned
//! at once (`scheduled.rebalance.max.delay.ms=0`; Kafka Connect's default holds it 300 s).
//! Prints, asserts nothing:
//! * the time for three workers to agree on a generation, and each idle worker's RSS;
//! * `POST /connectors` of a six-task sink to all six RUNNING;
//! * N connectors (one task each) created through the three workers to all RUNNING;
//! * a fourth worker joining those N connectors: to it running its share, and how many pieces
//!   of work moved;
//! * kill -9 of a worker to all its work RUNNING elsewhere.
//!
//! Each time is also given as a ratio to the clocks that bound it: the heartbeat interval (a
//! member learns of a rebalance another started at its next heartbeat) and, for the failover,
//! the session timeout (no coordinator can notice a dead member sooner). The physical anchor,
//! a write the broker acknowledges (what every config, status or offset write costs), is
//! measured in the same run and printed beside them.
//!
//!     cargo bench -p sluice --bench distributed                     # 50 connectors
//!     cargo bench -p sluice --bench distributed -- --connectors 10  # quick smoke run

mod common;
#[path = "../../../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::json;
use support::Worker;
use support::es_fake::EsFake;
use support::kafka::Broker;

const SESSION_TIMEOUT_MS: u64 = 10_000;
const HEARTBEAT_MS: u64 = 3_000;
/// However slow the machine, a stuck group ends the run with its logs rather than hanging.
const STEP_LIMIT: Duration = Duration::from_secs(240);

fn main() {
    let connectors = common::arg("--connectors", 50);
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let anchor = acknowledged_write(&broker);

    let spawned = Instant::now();
    let mut workers: Vec<Option<Worker>> =
        (0..3).map(|_| Some(start(dir.path(), &broker))).collect();
    wait("three workers agree on a generation", &workers, || {
        agreed(&workers, 3)
    });
    let agreement = spawned.elapsed();
    let idle_rss: Vec<f64> = workers
        .iter()
        .flatten()
        .map(|w| common::proc_status_kb(w.pid(), "VmRSS:") as f64 / 1024.0)
        .collect();

    // One connector with six tasks (an Elasticsearch sink into the in-repo API fake).
    let es = EsFake::start();
    let first = workers[0].as_ref().unwrap();
    let posted = Instant::now();
    let (code, body) = first.post(
        "/connectors",
        Some(&json!({"name": "spread", "config": {
            "connector.class": "io.confluent.connect.elasticsearch.ElasticsearchSinkConnector",
            "tasks.max": "6", "topics": "spread", "connection.url": es.url(),
        }})),
    );
    assert_eq!(code, 201, "{body}");
    wait("six tasks RUNNING", &workers, || running(first, 7));
    let six_tasks = posted.elapsed();

    // N one-task connectors, created through the three workers in turn.
    let posted = Instant::now();
    for i in 0..connectors {
        let input = dir.path().join(format!("in-{i}.txt"));
        std::fs::write(&input, b"").unwrap();
        let via = workers[i % 3].as_ref().unwrap();
        let (code, body) = via.post(
            "/connectors",
            Some(&json!({"name": format!("source-{i:03}"), "config": {
                "connector.class": "FileStreamSource", "topic": format!("t-{i}"),
                "file": input.to_str().unwrap(),
            }})),
        );
        assert_eq!(code, 201, "{body}");
    }
    let total_work = 7 + 2 * connectors;
    wait("every connector and task RUNNING", &workers, || {
        running(first, total_work)
    });
    let n_created = posted.elapsed();
    let before = placements(first);

    // A fourth worker joins.
    let joined_at = Instant::now();
    workers.push(Some(start(dir.path(), &broker)));
    let first = workers[0].as_ref().unwrap();
    let newcomer = workers[3].as_ref().unwrap();
    let newcomer_id = newcomer.rest.trim_start_matches("http://").to_owned();
    let share = total_work / 4;
    wait(
        "the fourth worker runs its share, everything RUNNING",
        &workers,
        || {
            agreed(&workers, 4)
                && running(first, total_work)
                && placements(first)
                    .values()
                    .filter(|w| **w == newcomer_id)
                    .count()
                    >= share
        },
    );
    let fourth_join = joined_at.elapsed();
    let after = placements(first);
    let moved = before
        .iter()
        .filter(|(work, owner)| after.get(*work) != Some(owner))
        .count();

    // kill -9 of a worker that is not the leader.
    let leader = leader_url(&workers).expect("a leader");
    let victim = workers
        .iter()
        .position(|w| w.as_ref().is_some_and(|w| w.rest != leader))
        .unwrap();
    let victim_id = workers[victim]
        .as_ref()
        .unwrap()
        .rest
        .trim_start_matches("http://")
        .to_owned();
    let lost = after.values().filter(|w| **w == victim_id).count();
    let killed_at = Instant::now();
    workers[victim].take().unwrap().kill9();
    let survivor = workers.iter().flatten().next().unwrap();
    wait("the dead worker's work RUNNING elsewhere", &workers, || {
        running(survivor, total_work) && placements(survivor).values().all(|w| *w != victim_id)
    });
    let failover = killed_at.elapsed();

    for worker in workers.into_iter().flatten() {
        let rest = worker.rest.clone();
        let (_, logs) = worker.terminate();
        // To see where the time goes: SLUICE_BENCH_LOGS=DIR keeps each worker's log.
        if let Ok(keep) = std::env::var("SLUICE_BENCH_LOGS") {
            let name = rest.trim_start_matches("http://").replace(':', "_");
            std::fs::write(Path::new(&keep).join(format!("{name}.log")), logs).unwrap();
        }
    }

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let beats = |d: Duration| ms(d) / HEARTBEAT_MS as f64;
    println!(
        "distributed workers (release build) on Tansu 0.6 (loopback, in-memory), session {} s, heartbeat {} s, \
         scheduled.rebalance.max.delay.ms 0",
        SESSION_TIMEOUT_MS / 1000,
        HEARTBEAT_MS / 1000
    );
    println!(
        "  anchor               a broker-acknowledged write: {:.2} ms (median of 20)",
        ms(anchor)
    );
    println!(
        "  three workers agree  {:.0} ms from the first spawn",
        ms(agreement)
    );
    println!(
        "  idle RSS             {} MB per worker",
        idle_rss
            .iter()
            .map(|r| format!("{r:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  POST → 6 tasks       {:.0} ms ({:.1} heartbeat intervals)",
        ms(six_tasks),
        beats(six_tasks)
    );
    println!(
        "  {connectors} creates → RUNNING  {:.0} ms ({:.1} heartbeat intervals, {} pieces of work)",
        ms(n_created),
        beats(n_created),
        total_work
    );
    println!(
        "  4th worker joins     {:.0} ms to its {share} pieces RUNNING ({:.1} heartbeat intervals); {moved} of {} pieces moved",
        ms(fourth_join),
        beats(fourth_join),
        before.len()
    );
    println!(
        "  kill -9 → RUNNING    {:.0} ms for its {lost} pieces ({:.2}× the session timeout; Kafka Connect's \
         default delay alone is 300 s)",
        ms(failover),
        failover.as_secs_f64() * 1000.0 / SESSION_TIMEOUT_MS as f64
    );
}

/// A distributed worker with this bench's group settings; returns once its REST API listens.
fn start(dir: &Path, broker: &Broker) -> Worker {
    let env = [
        ("SLUICE__BOOTSTRAP_SERVERS", broker.addr.clone()),
        ("SLUICE__GROUP_ID", "bench".to_owned()),
        ("SLUICE__SESSION_TIMEOUT_MS", SESSION_TIMEOUT_MS.to_string()),
        ("SLUICE__HEARTBEAT_INTERVAL_MS", HEARTBEAT_MS.to_string()),
        ("SLUICE__SCHEDULED_REBALANCE_MAX_DELAY_MS", "0".to_owned()),
        ("SLUICE__OFFSET_STORAGE_PARTITIONS", "5".to_owned()),
        ("SLUICE__STATUS_STORAGE_PARTITIONS", "2".to_owned()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let config = support::config("distributed/connect-distributed.properties");
    Worker::distributed(dir, Path::new(&config), &env)
}

/// Counts the broker's acknowledgements.
struct Acks(std::sync::atomic::AtomicUsize);

impl rdkafka::ClientContext for Acks {}

impl rdkafka::producer::ProducerContext for Acks {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &rdkafka::producer::DeliveryResult<'_>, _: ()) {
        result.as_ref().expect("the anchor write is acknowledged");
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The median time of 20 one-record writes to the broker, each awaited until acknowledged
/// (`acks=all`, no linger; the acknowledgement is polled for every 100 µs, as `flush` would
/// wait in 100 ms steps).
fn acknowledged_write(broker: &Broker) -> Duration {
    broker.create_topic("anchor", 1);
    let producer: BaseProducer<Acks> = broker
        .client()
        .set("acks", "all")
        .set("linger.ms", "0")
        .create_with_context(Acks(std::sync::atomic::AtomicUsize::new(0)))
        .unwrap();
    let mut times: Vec<Duration> = (0..21)
        .filter_map(|i| {
            let started = Instant::now();
            producer
                .send(BaseRecord::<(), str>::to("anchor").payload("x"))
                .unwrap();
            while producer
                .context()
                .0
                .load(std::sync::atomic::Ordering::SeqCst)
                <= i
            {
                producer.poll(Duration::from_micros(100));
            }
            (i > 0).then(|| started.elapsed())
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// Polls `condition` every 20 ms; past [`STEP_LIMIT`] prints every worker's log and exits.
fn wait(what: &str, workers: &[Option<Worker>], mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + STEP_LIMIT;
    while !condition() {
        if Instant::now() > deadline {
            for worker in workers.iter().flatten() {
                eprintln!("--- {} ---\n{}", worker.rest, worker.logs());
            }
            eprintln!("distributed bench: `{what}` did not happen within {STEP_LIMIT:?}");
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The generation and leader of a worker's last `joined the worker group` line.
fn last_join(worker: &Worker) -> Option<(u32, String)> {
    let pattern =
        regex::Regex::new(r"joined the worker group generation=(\d+) leader=(\S+)").unwrap();
    let logs = worker.logs();
    let captures = pattern.captures_iter(&logs).last()?;
    Some((captures[1].parse().ok()?, captures[2].to_owned()))
}

/// Whether `count` live workers last joined the same generation under the same leader.
fn agreed(workers: &[Option<Worker>], count: usize) -> bool {
    let joins: Vec<Option<(u32, String)>> = workers.iter().flatten().map(last_join).collect();
    joins.len() == count && joins[0].is_some() && joins.iter().all(|j| j == &joins[0])
}

fn leader_url(workers: &[Option<Worker>]) -> Option<String> {
    workers.iter().flatten().find_map(last_join).map(|(_, l)| l)
}

/// Where each connector and task runs (`name` or `name/n` → worker id), RUNNING ones only.
fn placements(worker: &Worker) -> BTreeMap<String, String> {
    let (code, all) = worker.get("/connectors?expand=status");
    let mut out = BTreeMap::new();
    if code != 200 {
        return out;
    }
    for (name, entry) in all.as_object().into_iter().flatten() {
        let status = &entry["status"];
        let pieces = std::iter::once((name.clone(), &status["connector"])).chain(
            status["tasks"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| (format!("{name}/{}", t["id"]), t)),
        );
        for (piece, state) in pieces {
            if state["state"] == "RUNNING"
                && let Some(id) = state["worker_id"].as_str()
            {
                out.insert(piece, id.to_owned());
            }
        }
    }
    out
}

/// Whether `count` connectors and tasks in all are RUNNING.
fn running(worker: &Worker, count: usize) -> bool {
    placements(worker).len() >= count
}
