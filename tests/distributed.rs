//! Distributed mode end to end: `sluice distributed` processes forming one worker group on a
//! private Tansu broker (tests/support/tansu.rs), with Kafka Connect's
//! connect-distributed.properties from configs/distributed/ (only the broker address, group
//! timings and the REST port are overridden through the documented environment variables).
//!
//! Tansu's group coordinator differs from Apache Kafka's (see the README and the membership
//! tests in runtime/worker/src/herder/distributed/): it forms groups without a join barrier,
//! so a group of three settles over a few generations, and after a member dies its survivors
//! are told to rebalance but rejoin into the same generation until one leaves and joins as a
//! new member. These tests wait for agreement rather than counting generations.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};
use support::es_fake::EsFake;
use support::kafka::Broker;
use support::plugins::plugin;
use support::{Worker, append_lines, assert_replays_only, config, lines, numbered, wait_until};

const DISTRIBUTED: &str = "distributed/connect-distributed.properties";

/// Group timings short enough for a test: a dead worker is noticed after 6 s, and its work
/// moves at once (`scheduled.rebalance.max.delay.ms=0`).
fn env(broker: &Broker, group: &str) -> Vec<(&'static str, String)> {
    vec![
        ("SLUICE__BOOTSTRAP_SERVERS", broker.addr.clone()),
        ("SLUICE__GROUP_ID", group.to_owned()),
        ("SLUICE__SESSION_TIMEOUT_MS", "6000".to_owned()),
        ("SLUICE__HEARTBEAT_INTERVAL_MS", "1000".to_owned()),
        ("SLUICE__REBALANCE_TIMEOUT_MS", "20000".to_owned()),
        ("SLUICE__SCHEDULED_REBALANCE_MAX_DELAY_MS", "0".to_owned()),
        ("SLUICE__OFFSET_FLUSH_INTERVAL_MS", "1000".to_owned()),
        ("SLUICE__OFFSET_STORAGE_PARTITIONS", "5".to_owned()),
        ("SLUICE__STATUS_STORAGE_PARTITIONS", "2".to_owned()),
    ]
}

fn start_worker(dir: &Path, broker: &Broker, group: &str) -> Worker {
    start_worker_with(dir, broker, group, &[])
}

/// [`start_worker`] with more settings (`SLUICE__…` variables), which win over the defaults.
fn start_worker_with(
    dir: &Path,
    broker: &Broker,
    group: &str,
    extra: &[(&'static str, String)],
) -> Worker {
    let mut env = env(broker, group);
    env.extend(extra.iter().cloned());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let worker = Worker::distributed(dir, Path::new(&config(DISTRIBUTED)), &env);
    worker.wait_for_log("the worker to start", "sluice distributed worker started");
    worker
}

/// `host:port` of a worker, as it appears as `worker_id` in statuses.
fn id_of(worker: &Worker) -> String {
    worker.rest.trim_start_matches("http://").to_owned()
}

/// The generation and leader URL of a worker's last `joined the worker group` line.
fn last_join(worker: &Worker) -> Option<(u32, String)> {
    let pattern =
        regex::Regex::new(r"joined the worker group generation=(\d+) leader=(\S+)").unwrap();
    let logs = worker.logs();
    let captures = pattern.captures_iter(&logs).last()?;
    Some((captures[1].parse().unwrap(), captures[2].to_owned()))
}

/// Waits until every worker has joined the same generation with the same leader.
fn wait_for_agreement(workers: &[&Worker], timeout: Duration) -> (u32, String) {
    let mut agreed = None;
    wait_until(
        "the workers agree on a generation and a leader",
        timeout,
        || {
            let joins: Vec<_> = workers.iter().map(|w| last_join(w)).collect();
            agreed = joins[0]
                .clone()
                .filter(|first| joins.iter().all(|j| j.as_ref() == Some(first)));
            agreed.is_some()
        },
    );
    agreed.unwrap()
}

/// `state` and `worker_id` of the connector and each task, as one worker reports them.
fn placement(status: &Json) -> Vec<(String, String)> {
    let mut out = vec![(
        status["connector"]["state"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
        status["connector"]["worker_id"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
    )];
    for task in status["tasks"].as_array().into_iter().flatten() {
        out.push((
            task["state"].as_str().unwrap_or("").to_owned(),
            task["worker_id"].as_str().unwrap_or("").to_owned(),
        ));
    }
    out
}

fn tasks_running(status: &Json, count: usize) -> bool {
    status["connector"]["state"] == "RUNNING"
        && status["tasks"]
            .as_array()
            .is_some_and(|t| t.len() == count && t.iter().all(|t| t["state"] == "RUNNING"))
}

fn sink(name: &str, topic: &str, file: &Path) -> Json {
    json!({"name": name, "config": {
        "connector.class": "FileStreamSink", "tasks.max": "1",
        "topics": topic, "file": file.to_str().unwrap(),
    }})
}

/// An Elasticsearch sink with `tasks` tasks (it makes as many as `tasks.max` says), writing to
/// the in-repo Elasticsearch API fake: Elasticsearch itself cannot be installed here.
fn es_sink(name: &str, topic: &str, url: &str, tasks: u32) -> Json {
    json!({"name": name, "config": {
        "connector.class": "io.confluent.connect.elasticsearch.ElasticsearchSinkConnector",
        "tasks.max": tasks.to_string(), "topics": topic, "connection.url": url,
        "key.ignore": "true", "schema.ignore": "true",
    }})
}

fn source(name: &str, topic: &str, file: &Path) -> Json {
    json!({"name": name, "config": {
        "connector.class": "FileStreamSource", "tasks.max": "1",
        "topic": topic, "file": file.to_str().unwrap(),
    }})
}

#[test]
fn three_workers_agree_spread_tasks_and_answer_alike_with_no_409() {
    let broker = Broker::start();
    broker.create_topic("spread", 6);
    let dir = tempfile::tempdir().unwrap();
    let workers: Vec<Worker> = (0..3)
        .map(|_| start_worker(dir.path(), &broker, "three"))
        .collect();
    let all: Vec<&Worker> = workers.iter().collect();
    let _logs = support::LogsOnFailure::of(&all);
    let started = Instant::now();
    let (generation, leader) = wait_for_agreement(&all, Duration::from_secs(60));
    eprintln!(
        "three workers agreed on generation {generation}, leader {leader}, after {:?}",
        started.elapsed()
    );
    assert!(
        workers.iter().any(|w| w.rest == leader),
        "the leader is one of the workers: {leader}"
    );
    for worker in &workers {
        let status = std::fs::read_to_string(format!("/proc/{}/status", worker.pid())).unwrap();
        let rss = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .unwrap_or("VmRSS: ?");
        eprintln!(
            "idle distributed worker {} (debug build): {rss}",
            worker.rest
        );
    }

    // A sink with six tasks, created through a follower.
    let follower = workers.iter().find(|w| w.rest != leader).unwrap();
    let created = Instant::now();
    let es = EsFake::start();
    let (status, body) = follower.post(
        "/connectors",
        Some(&es_sink("spread", "spread", &es.url(), 6)),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["name"], "spread");
    let status = workers[0].wait_for_status_within(
        "spread",
        "six tasks run",
        Duration::from_secs(60),
        |s| tasks_running(s, 6),
    );
    eprintln!(
        "POST /connectors to six tasks RUNNING: {:?}",
        created.elapsed()
    );
    // Kafka Connect's `?forward=` hops: a request a worker got with `forward=false` goes no
    // further (503 to the worker that forwarded it, which retries; Kafka Connect answers 409);
    // with `forward=true` a follower forwards it once more and it is carried out.
    let (code, answer) = follower.post(
        "/connectors?forward=false",
        Some(&es_sink("last-hop", "last-hop", &es.url(), 1)),
    );
    assert_eq!(code, 503, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("forward=false"),
        "{answer}"
    );
    let (code, answer) = follower.post(
        "/connectors?forward=true",
        Some(&es_sink("second-hop", "second-hop", &es.url(), 1)),
    );
    assert_eq!(code, 201, "{answer}");
    assert_eq!(follower.get("/connectors/last-hop").0, 404);
    assert_eq!(follower.delete("/connectors/second-hop").0, 204);
    let mut per_worker: BTreeMap<String, usize> = BTreeMap::new();
    for task in status["tasks"].as_array().unwrap() {
        *per_worker
            .entry(task["worker_id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let ids: Vec<String> = workers.iter().map(id_of).collect();
    assert_eq!(
        per_worker.values().copied().collect::<Vec<_>>(),
        [2, 2, 2],
        "two tasks per worker: {status}"
    );
    assert!(
        per_worker.keys().all(|id| ids.contains(id)),
        "real worker ids: {per_worker:?} of {ids:?}"
    );
    // Every worker answers the same status (once the statuses written during the rebalances
    // have reached every worker's view).
    let mut answers: Vec<Vec<(String, String)>> = Vec::new();
    wait_until(
        "every worker reports the same status",
        Duration::from_secs(30),
        || {
            answers = workers
                .iter()
                .map(|w| placement(&w.get("/connectors/spread/status").1))
                .collect();
            answers.iter().all(|a| a == &answers[0])
        },
    );
    assert!(
        answers[0].iter().all(|(_, id)| ids.contains(id)),
        "{answers:?}"
    );

    // Ten concurrent creates, through every worker, none refused.
    let results: Vec<(u16, Json)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..10)
            .map(|i| {
                let worker = &workers[i % 3];
                let file = dir.path().join(format!("in-{i}.txt"));
                scope.spawn(move || {
                    worker.post(
                        "/connectors",
                        Some(&source(&format!("src-{i}"), &format!("topic-{i}"), &file)),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, (status, body)) in results.iter().enumerate() {
        assert_eq!(*status, 201, "create src-{i}: {body}");
    }
    // A second create of the same name is the one 409 left.
    let (status, body) = workers[2].post(
        "/connectors",
        Some(&source("src-0", "topic-0", &dir.path().join("in-0.txt"))),
    );
    assert_eq!(status, 409, "{body}");

    let mut expected: Vec<String> = (0..10).map(|i| format!("src-{i}")).collect();
    expected.push("spread".to_owned());
    expected.sort();
    for worker in &workers {
        let (status, names) = worker.get("/connectors");
        assert_eq!(status, 200);
        let mut names: Vec<String> = serde_json::from_value(names).unwrap();
        names.sort();
        assert_eq!(names, expected, "every worker lists every connector once");
    }
    for i in 0..10 {
        workers[0].wait_for_status_within(
            &format!("src-{i}"),
            "the source runs",
            Duration::from_secs(60),
            |s| tasks_running(s, 1),
        );
    }
    // Connectors spread within one of each other, and so do tasks; every worker answers alike.
    let (mut connectors, mut tasks) = (BTreeMap::new(), BTreeMap::new());
    for name in &expected {
        let path = format!("/connectors/{name}/status");
        let mut answers: Vec<Vec<(String, String)>> = Vec::new();
        wait_until(
            &format!("every worker reports the same status of {name}"),
            Duration::from_secs(30),
            || {
                answers = workers.iter().map(|w| placement(&w.get(&path).1)).collect();
                answers.iter().all(|a| a == &answers[0])
            },
        );
        let pieces = &answers[0];
        *connectors.entry(pieces[0].1.clone()).or_insert(0usize) += 1;
        for (_, worker) in &pieces[1..] {
            *tasks.entry(worker.clone()).or_insert(0usize) += 1;
        }
    }
    let spread = |counts: &BTreeMap<String, usize>| {
        counts.values().max().unwrap() - counts.values().min().unwrap()
    };
    assert_eq!(connectors.len(), 3, "{connectors:?}");
    assert!(spread(&connectors) <= 1, "connectors: {connectors:?}");
    assert!(spread(&tasks) <= 1, "tasks: {tasks:?}");

    // A config update through a follower reaches the task; only that connector's task restarts.
    let (status, body) = follower.put(
        "/connectors/src-3/config",
        Some(&json!({
            "connector.class": "FileStreamSource", "tasks.max": "1",
            "topic": "topic-3b", "file": dir.path().join("in-3.txt").to_str().unwrap(),
        })),
    );
    assert_eq!(status, 200, "{body}");
    wait_until(
        "the new config reaches the task",
        Duration::from_secs(30),
        || workers[0].get("/connectors/src-3/tasks").1[0]["config"]["topic"] == "topic-3b",
    );
    // The worker logs `… connector=src-3 task=0` (unquoted) for each task it restarts.
    let restarts_of = |logs: &str, name: &str| {
        logs.matches(&format!(
            "restarting task (config or restart request) connector={name} task="
        ))
        .count()
    };
    wait_until(
        "src-3's task restarts for its new config",
        Duration::from_secs(30),
        || {
            let logs: String = workers.iter().map(Worker::logs).collect();
            restarts_of(&logs, "src-3") > 0
        },
    );
    let logs: String = workers.iter().map(Worker::logs).collect();
    let restarted_tasks = |name: &str| restarts_of(&logs, name);
    let restarted: Vec<&String> = expected
        .iter()
        .filter(|name| name.as_str() != "src-3" && restarted_tasks(name) > 0)
        .collect();
    assert!(
        restarted.is_empty(),
        "only src-3's task restarts: {restarted:?}"
    );
    for worker in workers {
        let (exit, logs) = worker.terminate();
        assert!(exit.success(), "{logs}");
    }
}

/// A WASM transform in a worker group: a source whose lines are hoisted into a field and
/// hashed by the example `mask_email` plugin runs on one worker; kill -9 of that worker moves
/// the task, and the plugin, loaded from the same module on the new owner, goes on masking:
/// every address arrives, none readable.
#[test]
fn wasm_transforms_run_in_the_group_and_move_with_their_task() {
    let module = plugin("mask_email");
    let broker = Broker::start();
    broker.create_topic("emails", 1);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("emails.txt");
    let output = dir.path().join("masked.jsonl");
    let addresses: Vec<String> = (0..4_000).map(|i| format!("user{i}@example.com")).collect();
    append_lines(&input, addresses[..2_000].to_vec());
    let mut workers: Vec<Option<Worker>> = (0..2)
        .map(|_| Some(start_worker(dir.path(), &broker, "wasm")))
        .collect();
    let _logs = {
        let all: Vec<&Worker> = workers.iter().flatten().collect();
        wait_for_agreement(&all, Duration::from_secs(60));
        support::LogsOnFailure::of(&all)
    };
    let first = workers[0].as_ref().unwrap();
    let masked_source = json!({"name": "masked", "config": {
        "connector.class": "FileStreamSource", "tasks.max": "1", "topic": "emails",
        "file": input.to_str().unwrap(),
        "transforms": "hoist,mask",
        "transforms.hoist.type": "org.apache.kafka.connect.transforms.HoistField$Value",
        "transforms.hoist.field": "email",
        "transforms.mask.type": "wasm", "transforms.mask.module": module.to_str().unwrap(),
    }});
    assert_eq!(first.post("/connectors", Some(&masked_source)).0, 201);
    let mut writer = sink("writer", "emails", &output);
    writer["config"]["format"] = json!("json");
    assert_eq!(first.post("/connectors", Some(&writer)).0, 201);
    let masked_values = |output: &Path| -> Vec<String> {
        lines(output)
            .iter()
            .map(|l| {
                let event: Json = serde_json::from_str(l).unwrap();
                event["value"]["email"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    };
    wait_until(
        "the first addresses arrive",
        Duration::from_secs(120),
        || masked_values(&output).len() >= 2_000,
    );

    let status = first.get("/connectors/masked/status").1;
    let owner = status["tasks"][0]["worker_id"].as_str().unwrap().to_owned();
    let victim = workers
        .iter()
        .position(|w| w.as_ref().is_some_and(|w| id_of(w) == owner))
        .unwrap();
    workers[victim].take().unwrap().kill9();
    append_lines(&input, addresses[2_000..].to_vec());
    let survivor = workers.iter().flatten().next().unwrap();
    survivor.wait_for_status_within(
        "masked",
        "the task runs on the survivor",
        Duration::from_secs(120),
        |s| s["tasks"][0]["state"] == "RUNNING" && s["tasks"][0]["worker_id"] != owner.as_str(),
    );
    let distinct = |output: &Path| {
        masked_values(output)
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
    };
    wait_until("every address arrives", Duration::from_secs(120), || {
        distinct(&output).len() >= addresses.len()
    });
    let seen = distinct(&output);
    assert_eq!(seen.len(), addresses.len(), "one hash per address");
    assert!(
        seen.iter()
            .all(|v| v.starts_with("sha:") && !v.contains('@')),
        "every address masked, by the plugin on either worker"
    );
    for worker in workers.iter_mut().filter_map(Option::take) {
        let (exit, logs) = worker.terminate();
        assert!(exit.success(), "{logs}");
    }
}

/// A FileStreamSource → FileStreamSink stream of 100k lines; the worker running the source
/// task is killed (-9) mid-stream. Its task runs elsewhere after the dead session is noticed,
/// resuming from the offsets topic: every line arrives, repeats only from the batch that was
/// not committed yet.
#[test]
fn kill_9_of_a_worker_moves_its_tasks_and_loses_no_line() {
    let broker = Broker::start();
    broker.create_topic("lines", 1);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.txt");
    let output = dir.path().join("output.txt");
    let all_lines = numbered(0..100_000);
    append_lines(&input, all_lines[..50_000].to_vec());
    let mut workers: Vec<Option<Worker>> = (0..3)
        .map(|_| Some(start_worker(dir.path(), &broker, "kill")))
        .collect();
    let _logs = {
        let all: Vec<&Worker> = workers.iter().flatten().collect();
        wait_for_agreement(&all, Duration::from_secs(60));
        support::LogsOnFailure::of(&all)
    };
    let any =
        |workers: &[Option<Worker>]| -> usize { workers.iter().position(Option::is_some).unwrap() };
    let first = workers[0].as_ref().unwrap();
    assert_eq!(
        first
            .post("/connectors", Some(&source("reader", "lines", &input)))
            .0,
        201
    );
    assert_eq!(
        first
            .post("/connectors", Some(&sink("writer", "lines", &output)))
            .0,
        201
    );
    first.wait_for_status_within("reader", "the source runs", Duration::from_secs(180), |s| {
        tasks_running(s, 1)
    });
    wait_until("lines flow", Duration::from_secs(180), || {
        lines(&output).len() > 1000
    });
    // KIP-558: the topics the connectors used, written to the status topic by the workers
    // running their tasks, are answered alike by every worker.
    for worker in workers.iter().flatten() {
        for connector in ["reader", "writer"] {
            worker.wait_until(
                "every worker answers the connector's topics",
                Duration::from_secs(30),
                || {
                    worker.get(&format!("/connectors/{connector}/topics")).1
                        == serde_json::json!({connector: {"topics": ["lines"]}})
                },
            );
        }
    }

    // Kill the worker running the source task, mid-stream.
    let status = first.get("/connectors/reader/status").1;
    let victim_id = status["tasks"][0]["worker_id"].as_str().unwrap().to_owned();
    let victim = workers
        .iter()
        .position(|w| w.as_ref().is_some_and(|w| id_of(w) == victim_id))
        .unwrap();
    append_lines(&input, all_lines[50_000..].to_vec());
    let killed_at = Instant::now();
    workers[victim].take().unwrap().kill9();
    let survivor = workers[any(&workers)].as_ref().unwrap();
    let moved = survivor.wait_for_status_within(
        "reader",
        "the source task runs on another worker",
        Duration::from_secs(180),
        |s| s["tasks"][0]["state"] == "RUNNING" && s["tasks"][0]["worker_id"] != victim_id.as_str(),
    );
    let failover = killed_at.elapsed();
    // The group's rebalances in the survivor's metrics: the generation it last joined, and at
    // least the first join and the one after the kill.
    survivor.wait_until(
        "the survivor's rebalance figures settle",
        Duration::from_secs(60),
        || {
            let scrape = survivor.scrape();
            let (generation, _) = last_join(survivor).unwrap();
            let figure = |name: &str| {
                scrape
                    .value(
                        &format!("kafka_connect_connect_worker_rebalance_metrics_{name}"),
                        &[],
                    )
                    .unwrap_or(-1.0)
            };
            figure("epoch") == f64::from(generation)
                && figure("rebalancing") == 0.0
                && figure("completed_rebalances_total") >= 2.0
        },
    );
    eprintln!(
        "kill -9 to the source task RUNNING on {}: {failover:?} (session timeout 6 s, heartbeat 1 s)",
        moved["tasks"][0]["worker_id"]
    );
    let last = all_lines.last().unwrap().clone();
    survivor.wait_until("the last line arrives", Duration::from_secs(240), || {
        lines(&output).contains(&last)
    });
    // A reset through any worker empties the list, and the tasks, wherever they run, report
    // their topic again as they go on.
    assert_eq!(survivor.put("/connectors/writer/topics/reset", None).0, 202);
    assert_eq!(
        survivor.get("/connectors/writer/topics").1,
        serde_json::json!({"writer": {"topics": []}})
    );
    append_lines(&input, vec!["after-the-reset".to_owned()]);
    survivor.wait_until(
        "the sink reports its topic again",
        Duration::from_secs(60),
        || {
            survivor.get("/connectors/writer/topics").1
                == serde_json::json!({"writer": {"topics": ["lines"]}})
        },
    );
    let all_lines: Vec<String> = all_lines
        .into_iter()
        .chain(["after-the-reset".to_owned()])
        .collect();
    let last = all_lines.last().unwrap().clone();
    survivor.wait_until(
        "the line after the reset arrives",
        Duration::from_secs(60),
        || lines(&output).contains(&last),
    );
    let replays = assert_replays_only(&lines(&output), &all_lines);
    eprintln!(
        "{} output lines for {} input lines, {replays} replay(s)",
        lines(&output).len(),
        all_lines.len()
    );
    for worker in workers.iter_mut().filter_map(Option::take) {
        let (exit, logs) = worker.terminate();
        assert!(exit.success(), "{logs}");
    }
}

#[test]
fn bad_internal_topics_and_unsigned_internal_requests_are_refused() {
    let broker = Broker::start();
    broker.create_topic_with("connect-configs", 3, &[("cleanup.policy", "compact")]);
    let dir = tempfile::tempdir().unwrap();
    let env = env(&broker, "bad");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let worker = Worker::distributed(dir.path(), Path::new(&config(DISTRIBUTED)), &env);
    let (exit, logs) = worker.wait_exit();
    assert!(!exit.success());
    assert!(
        logs.contains("config.storage.topic connect-configs: topic connect-configs has 3 partitions, but it must have exactly 1"),
        "{logs}"
    );

    // A proper group, and internal requests to its leader without or with a wrong signature.
    let mut ok_env = self::env(&broker, "signed");
    ok_env.push(("SLUICE__CONFIG_STORAGE_TOPIC", "signed-configs".to_owned()));
    let ok_env: Vec<(&str, &str)> = ok_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let leader = Worker::distributed(dir.path(), Path::new(&config(DISTRIBUTED)), &ok_env);
    leader.wait_for_log("the worker to lead", "joined the worker group");
    let input = dir.path().join("signed.txt");
    assert_eq!(
        leader
            .post("/connectors", Some(&source("signed", "signed", &input)))
            .0,
        201
    );
    // A sink whose consumer group would be the workers' own group is refused, naming the fix.
    let clash = json!({"name": "clash", "config": {
        "connector.class": "FileStreamSink", "topics": "signed",
        "file": dir.path().join("clash.out").to_str().unwrap(),
        "consumer.override.group.id": "signed",
    }});
    let (status, answer) = leader.post("/connectors", Some(&clash));
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("consumer.override.group.id"),
        "{answer}"
    );
    let body = json!([{"topic": "elsewhere", "file": "/etc/passwd"}]);
    let (status, answer) = leader.post("/connectors/signed/tasks", Some(&body));
    assert_eq!(status, 400, "unsigned: {answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("X-Connect-Authorization"),
        "{answer}"
    );
    let (status, answer) = leader.post_with_headers(
        "/connectors/signed/tasks",
        &body,
        &[
            ("X-Connect-Authorization", "bm90IGEgc2lnbmF0dXJl"),
            ("X-Connect-Request-Signature-Algorithm", "HmacSHA256"),
        ],
    );
    assert_eq!(status, 403, "wrongly signed: {answer}");
    let tasks = leader.get("/connectors/signed/tasks").1;
    assert!(
        tasks.to_string().find("/etc/passwd").is_none(),
        "nothing was written: {tasks}"
    );
    let (exit, logs) = leader.terminate();
    assert!(exit.success(), "{logs}");
}

/// One task's life on one worker process, from its log: (task, worker process, start, end).
type Life = (String, usize, String, Option<String>);

/// Every `task starting` / `task ended` pair in `logs` (one log per worker process).
fn task_lives(logs: &[String]) -> Vec<Life> {
    let pattern =
        regex::Regex::new(r"(?m)^(\S+)\s+INFO .*task (starting|ended) task=(\S+)").unwrap();
    let mut lives: Vec<Life> = Vec::new();
    for (process, log) in logs.iter().enumerate() {
        for captures in pattern.captures_iter(log) {
            let (time, what, task) = (&captures[1], &captures[2], &captures[3]);
            if what == "starting" {
                lives.push((task.to_owned(), process, time.to_owned(), None));
            } else if let Some(life) = lives
                .iter_mut()
                .rev()
                .find(|l| l.0 == task && l.1 == process && l.3.is_none())
            {
                life.3 = Some(time.to_owned());
            }
        }
    }
    lives
}

/// How many tasks each place (`STATE:worker`) has.
fn load_by_worker(places: &BTreeMap<String, String>) -> BTreeMap<&str, usize> {
    let mut loads = BTreeMap::new();
    for place in places.values() {
        *loads.entry(place.as_str()).or_default() += 1;
    }
    loads
}

/// Where each task runs now (task name `<connector>-<n>` → worker id), from `worker`.
fn task_places(worker: &Worker, connectors: &[String]) -> BTreeMap<String, String> {
    let mut places = BTreeMap::new();
    for name in connectors {
        let status = worker.get(&format!("/connectors/{name}/status")).1;
        for task in status["tasks"].as_array().into_iter().flatten() {
            places.insert(
                format!("{name}-{}", task["id"]),
                format!(
                    "{}:{}",
                    task["state"].as_str().unwrap_or(""),
                    task["worker_id"].as_str().unwrap_or("")
                ),
            );
        }
    }
    places
}

/// A rolling restart by SIGTERM with `scheduled.rebalance.max.delay.ms=20000`, as an operator
/// upgrading a group does: while a worker is away its tasks wait for it (UNASSIGNED, not
/// moved), it gets exactly its own tasks back, tasks on the other workers are never restarted,
/// and no task ever runs on two workers at once (checked on the task start/end times each
/// worker logs).
#[test]
fn a_rolling_restart_keeps_every_task_in_place_and_never_runs_one_twice() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<u16> = (0..3).map(|_| support::tansu::free_port()).collect();
    let start = |port: u16| {
        let settings = [
            ("SLUICE__LISTENERS", format!("http://127.0.0.1:{port}")),
            (
                "SLUICE__SCHEDULED_REBALANCE_MAX_DELAY_MS",
                "20000".to_owned(),
            ),
        ];
        start_worker_with(dir.path(), &broker, "rolling", &settings)
    };
    let mut workers: Vec<Option<Worker>> = ports.iter().map(|port| Some(start(*port))).collect();
    let mut logs: Vec<String> = Vec::new();
    {
        let all: Vec<&Worker> = workers.iter().flatten().collect();
        wait_for_agreement(&all, Duration::from_secs(60));
    }
    let names: Vec<String> = (0..6).map(|i| format!("roll-{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        let file = dir.path().join(format!("{name}.txt"));
        append_lines(&file, numbered(0..10));
        let through = workers[i % 3].as_ref().unwrap();
        assert_eq!(
            through
                .post("/connectors", Some(&source(name, name, &file)))
                .0,
            201
        );
    }
    let all_running = |places: &BTreeMap<String, String>| {
        places.len() == names.len() && places.values().all(|p| p.starts_with("RUNNING:"))
    };
    // Settled: every task runs and the group is balanced (tasks per worker differ by at most
    // one). Connectors created one by one can leave a moment of 3/2/1 whose balancing
    // revocation is still backing off; a worker coming back would then get that balancing too.
    let balanced = |places: &BTreeMap<String, String>| {
        let mut loads: BTreeMap<&str, usize> = BTreeMap::new();
        for place in places.values() {
            *loads.entry(place.as_str()).or_default() += 1;
        }
        loads.len() == 3 && loads.values().max().unwrap() - loads.values().min().unwrap() <= 1
    };
    let mut placed = BTreeMap::new();
    wait_until(
        "every task runs, spread evenly",
        Duration::from_secs(90),
        || {
            placed = task_places(workers[0].as_ref().unwrap(), &names);
            all_running(&placed) && balanced(&placed)
        },
    );
    for round in 0..3 {
        let leaving = workers[round].take().unwrap();
        let away = id_of(&leaving);
        let theirs: Vec<String> = placed
            .iter()
            .filter(|(_, p)| p.ends_with(&away))
            .map(|(t, _)| t.clone())
            .collect();
        let (exit, log) = leaving.terminate();
        assert!(exit.success(), "{log}");
        logs.push(log);
        let other = workers[(round + 1) % 3].as_ref().unwrap();
        // Its tasks wait for it: UNASSIGNED, and never RUNNING elsewhere, while it is away.
        wait_until(
            "the away worker's tasks show UNASSIGNED",
            Duration::from_secs(15),
            || {
                let now = task_places(other, &names);
                theirs.iter().all(|t| now[t].starts_with("UNASSIGNED"))
            },
        );
        let now = task_places(other, &names);
        for task in &theirs {
            assert!(
                !now[task].starts_with("RUNNING"),
                "{task} moved while its worker was away: {now:?}"
            );
        }
        workers[round] = Some(start(ports[round]));
        let other = workers[(round + 1) % 3].as_ref().unwrap();
        let mut back = BTreeMap::new();
        wait_until(
            "the restarted worker has its own tasks back",
            Duration::from_secs(60),
            || {
                back = task_places(other, &names);
                all_running(&back)
            },
        );
        assert_eq!(back, placed, "round {round}: every task where it was");
        eprintln!(
            "round {round}: {} task(s) of {away} came back to it",
            theirs.len()
        );
    }
    for worker in workers.into_iter().flatten() {
        let (exit, log) = worker.terminate();
        assert!(exit.success(), "{log}");
        logs.push(log);
    }
    let lives = task_lives(&logs);
    for task in placed.keys() {
        let mut mine: Vec<&Life> = lives.iter().filter(|l| &l.0 == task).collect();
        mine.sort_by(|a, b| a.2.cmp(&b.2));
        // Started once at first and once when its own worker came back: nothing else moved it.
        assert_eq!(mine.len(), 2, "{task} ran {} time(s): {mine:?}", mine.len());
        for pair in mine.windows(2) {
            let ended = pair[0]
                .3
                .as_ref()
                .unwrap_or_else(|| panic!("{task}: no end logged: {mine:?}"));
            assert!(
                ended <= &pair[1].2,
                "{task} ran on two workers at once: {mine:?}"
            );
        }
    }
}

/// Pause, resume and stop through any worker take effect where the tasks run; the offsets API
/// works through any worker (GET anywhere; PATCH and DELETE on a STOPPED connector, carried
/// out by the leader); a delete through any worker removes the connector everywhere.
#[test]
fn pause_resume_stop_offsets_and_delete_work_through_any_worker() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let workers: Vec<Worker> = (0..3)
        .map(|_| start_worker(dir.path(), &broker, "ops"))
        .collect();
    let all: Vec<&Worker> = workers.iter().collect();
    let _logs = support::LogsOnFailure::of(&all);
    wait_for_agreement(&all, Duration::from_secs(60));
    let input = dir.path().join("ops.txt");
    append_lines(&input, numbered(0..100));
    let size = std::fs::metadata(&input).unwrap().len();
    assert_eq!(
        workers[0]
            .post("/connectors", Some(&source("ops", "ops", &input)))
            .0,
        201
    );
    let state_is = |status: &Json, state: &str| {
        status["connector"]["state"] == state
            && status["tasks"]
                .as_array()
                .is_some_and(|t| t.len() == 1 && t[0]["state"] == state)
    };
    workers[2].wait_for_status_within("ops", "the source runs", Duration::from_secs(60), |s| {
        state_is(s, "RUNNING")
    });
    wait_until(
        "the whole file is committed",
        Duration::from_secs(60),
        || workers[1].get("/connectors/ops/offsets").1["offsets"][0]["offset"]["position"] == size,
    );

    assert_eq!(workers[1].put("/connectors/ops/pause", None).0, 202);
    workers[2].wait_for_status_within(
        "ops",
        "the pause takes effect",
        Duration::from_secs(30),
        |s| state_is(s, "PAUSED"),
    );
    // The status page's data, through every worker of the group: the same connector and task
    // states and placement everywhere, and the task's figures from the worker running it.
    let owner = workers[2].get("/connectors/ops/status").1["tasks"][0]["worker_id"].clone();
    for worker in &workers {
        assert_eq!(worker.get("/ui").0, 200);
        let mut data = Json::Null;
        worker.wait_until(
            "/ui/data shows the paused connector",
            Duration::from_secs(30),
            || {
                data = worker.get("/ui/data").1;
                data["connectors"]
                    .as_array()
                    .is_some_and(|c| c.len() == 1 && c[0]["state"] == "PAUSED")
            },
        );
        let connector = &data["connectors"][0];
        assert_eq!(connector["name"], "ops", "{data}");
        assert_eq!(connector["tasks"][0]["state"], "PAUSED", "{data}");
        assert_eq!(connector["tasks"][0]["worker_id"], owner, "{data}");
        let figures = &connector["tasks"][0]["figures"];
        if data["worker_id"] == owner {
            assert_eq!(figures["records_in"], 100, "{data}");
        } else {
            assert!(
                figures.is_null(),
                "figures come from the task's worker: {data}"
            );
        }
    }
    assert_eq!(workers[2].put("/connectors/ops/resume", None).0, 202);
    workers[0].wait_for_status_within(
        "ops",
        "the resume takes effect",
        Duration::from_secs(30),
        |s| state_is(s, "RUNNING"),
    );

    // A restart through any worker restarts the task where it runs; onlyFailed with nothing
    // failed restarts nothing.
    let restarts = |workers: &[Worker]| -> usize {
        workers
            .iter()
            .map(|w| {
                w.logs()
                    .matches("restarting task (config or restart request) connector=ops")
                    .count()
            })
            .sum()
    };
    let (status, body) = workers[1].post(
        "/connectors/ops/restart?includeTasks=true&onlyFailed=true",
        None,
    );
    assert!(status == 202 || status == 204, "{status} {body}");
    let (status, body) = workers[2].post("/connectors/ops/restart?includeTasks=true", None);
    assert!(status == 202 || status == 204, "{status} {body}");
    wait_until(
        "the task restarts where it runs",
        Duration::from_secs(30),
        || restarts(&workers) == 1,
    );
    workers[0].wait_for_status_within(
        "ops",
        "the restarted task runs",
        Duration::from_secs(30),
        |s| state_is(s, "RUNNING"),
    );

    assert_eq!(workers[1].put("/connectors/ops/stop", None).0, 204);
    workers[0].wait_for_status_within(
        "ops",
        "the stop takes effect",
        Duration::from_secs(30),
        |s| {
            s["connector"]["state"] == "STOPPED" && s["tasks"].as_array().is_some_and(Vec::is_empty)
        },
    );
    let rewind =
        json!({"offsets": [{"partition": {"filename": input}, "offset": {"position": 0}}]});
    let (status, body) = workers[2].patch("/connectors/ops/offsets", &rewind);
    assert_eq!(status, 200, "{body}");
    for worker in &workers {
        assert_eq!(
            worker.get("/connectors/ops/offsets").1["offsets"][0]["offset"]["position"],
            0,
            "every worker reads the altered offset"
        );
    }
    let (status, body) = workers[0].delete("/connectors/ops/offsets");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        workers[1].get("/connectors/ops/offsets").1,
        json!({"offsets": []})
    );

    assert_eq!(workers[2].delete("/connectors/ops").0, 204);
    for worker in &workers {
        wait_until(
            "the connector is gone everywhere",
            Duration::from_secs(30),
            || {
                worker.get("/connectors").1 == json!([])
                    && worker.get("/connectors/ops/status").0 == 404
            },
        );
    }
    for worker in workers {
        let (exit, log) = worker.terminate();
        assert!(exit.success(), "{log}");
    }
}

/// A fourth worker joins a group of three running 24 sources: it gets its share (6 connectors
/// and 6 tasks), taken from the others, and nothing else moves.
#[test]
fn a_fourth_worker_takes_only_its_share() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let mut workers: Vec<Worker> = (0..3)
        .map(|_| start_worker(dir.path(), &broker, "fourth"))
        .collect();
    {
        let all: Vec<&Worker> = workers.iter().collect();
        wait_for_agreement(&all, Duration::from_secs(60));
    }
    let names: Vec<String> = (0..24).map(|i| format!("share-{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        let file = dir.path().join(format!("{name}.txt"));
        append_lines(&file, numbered(0..10));
        assert_eq!(
            workers[i % 3]
                .post("/connectors", Some(&source(name, name, &file)))
                .0,
            201
        );
    }
    let running = |places: &BTreeMap<String, String>| {
        places.len() == names.len() && places.values().all(|p| p.starts_with("RUNNING:"))
    };
    // The premise: each of the three runs its 8 (creating 24 connectors in a burst can leave
    // a revoking round for balance pending for a moment).
    let mut before = BTreeMap::new();
    wait_until(
        "every task runs, 8 on each worker",
        Duration::from_secs(120),
        || {
            before = task_places(&workers[0], &names);
            running(&before) && load_by_worker(&before).values().all(|&n| n == 8)
        },
    );
    let joined_at = Instant::now();
    workers.push(start_worker(dir.path(), &broker, "fourth"));
    let newcomer = format!("RUNNING:{}", id_of(&workers[3]));
    let mut after = BTreeMap::new();
    wait_until(
        "the fourth worker runs its share",
        Duration::from_secs(120),
        || {
            after = task_places(&workers[0], &names);
            running(&after) && after.values().filter(|p| **p == newcomer).count() == 6
        },
    );
    eprintln!(
        "a fourth worker joining a group running 24 connectors: {:?} until it ran its 6 tasks",
        joined_at.elapsed()
    );
    let moved: Vec<&String> = after
        .iter()
        .filter(|(task, place)| before[*task] != **place)
        .map(|(task, _)| task)
        .collect();
    if moved.len() != 6 {
        // What each worker saw of the rebalances, to tell a broker's quirk from the assignor's.
        let rounds: Vec<String> = workers
            .iter()
            .map(|w| {
                let logs = w.logs();
                let lines: Vec<&str> = logs
                    .lines()
                    .filter(|l| {
                        [
                            "computed",
                            "absent",
                            "left this worker out",
                            "rebalanc",
                            "revoked",
                        ]
                        .iter()
                        .any(|word| l.contains(word))
                    })
                    .collect();
                format!("--- {}\n{}", id_of(w), lines.join("\n"))
            })
            .collect();
        panic!(
            "only the newcomer's share should move, but {} did: {moved:?}\nbefore: {:?}\nafter: {:?}\n{}",
            moved.len(),
            load_by_worker(&before),
            load_by_worker(&after),
            rounds.join("\n")
        );
    }
    for worker in workers {
        let (exit, log) = worker.terminate();
        assert!(exit.success(), "{log}");
    }
}

/// kill -9 of the leader: the survivors elect another, writes through either succeed, and a
/// follower's task configs, posted to the new leader signed with the session key, verify.
#[test]
fn kill_9_of_the_leader_elects_another_and_writes_and_signed_requests_go_on() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let mut workers: Vec<Option<Worker>> = (0..3)
        .map(|_| Some(start_worker(dir.path(), &broker, "leaderless")))
        .collect();
    let (_, leader) = {
        let all: Vec<&Worker> = workers.iter().flatten().collect();
        wait_for_agreement(&all, Duration::from_secs(60))
    };
    let old = workers
        .iter()
        .position(|w| w.as_ref().unwrap().rest == leader)
        .unwrap();
    let killed_at = Instant::now();
    workers[old].take().unwrap().kill9();
    let survivors: Vec<&Worker> = workers.iter().flatten().collect();
    let _logs = support::LogsOnFailure::of(&survivors);
    let mut new_leader = String::new();
    wait_until(
        "the survivors agree on a new leader",
        Duration::from_secs(60),
        || {
            let joins: Vec<_> = survivors.iter().map(|w| last_join(w)).collect();
            match &joins[0] {
                Some((_, l)) if *l != leader && joins.iter().all(|j| j == &joins[0]) => {
                    new_leader = l.clone();
                    true
                }
                _ => false,
            }
        },
    );
    eprintln!(
        "kill -9 of the leader to a new one agreed: {:?}",
        killed_at.elapsed()
    );
    // Two sources through the follower: one instance lands on each survivor, so one hands its
    // task configs to the new leader over a signed internal request.
    let follower = survivors.iter().find(|w| w.rest != new_leader).unwrap();
    for name in ["after-a", "after-b"] {
        let file = dir.path().join(format!("{name}.txt"));
        append_lines(&file, numbered(0..10));
        let (status, body) = follower.post("/connectors", Some(&source(name, name, &file)));
        assert_eq!(status, 201, "{body}");
    }
    for name in ["after-a", "after-b"] {
        follower.wait_for_status_within(name, "the source runs", Duration::from_secs(60), |s| {
            tasks_running(s, 1)
        });
    }
    let placed: Vec<String> = ["after-a", "after-b"]
        .iter()
        .map(|name| {
            follower.get(&format!("/connectors/{name}/status")).1["connector"]["worker_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_ne!(
        placed[0], placed[1],
        "one instance on each survivor: {placed:?}"
    );
    let leader_log = survivors
        .iter()
        .find(|w| w.rest == new_leader)
        .unwrap()
        .logs();
    assert!(
        !leader_log.contains("internal request refused"),
        "{leader_log}"
    );
    for worker in workers.into_iter().flatten() {
        let (exit, log) = worker.terminate();
        assert!(exit.success(), "{log}");
    }
}

/// A worker whose broker does not answer stops at start with an error naming the internal
/// topic, the brokers and the fix (after the admin client's 60 s timeout), rather than hanging
/// or running without its topics.
#[test]
fn an_unreachable_broker_stops_the_start_naming_the_brokers() {
    let dir = tempfile::tempdir().unwrap();
    let closed = format!("127.0.0.1:{}", support::tansu::free_port());
    let output = std::process::Command::new(support::sluice_bin())
        .args(["distributed", &config(DISTRIBUTED)])
        .current_dir(dir.path())
        .env("SLUICE__BOOTSTRAP_SERVERS", &closed)
        .env("SLUICE__LISTENERS", "http://127.0.0.1:0")
        .output()
        .unwrap();
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{logs}");
    assert!(
        logs.contains(&format!(
            "no answer from bootstrap.servers={closed}: check the broker runs"
        )),
        "{logs}"
    );
    assert!(
        logs.contains("config.storage.topic connect-configs"),
        "{logs}"
    );
}

/// A group whose REST APIs listen on https with basic authentication (the certificate names
/// `localhost`, the workers advertise themselves by that name): a write through a follower
/// reaches the leader with the client's credentials and succeeds, a task restart through a
/// worker that does not run it reaches the owner, and the follower refuses a client without
/// credentials itself.
#[test]
fn a_group_with_https_and_basic_auth_forwards_writes_with_the_client_s_credentials() {
    use support::certs::{Certs, answer, client, url};
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::make(dir.path());
    let hash = {
        let mut child = std::process::Command::new(support::sluice_bin())
            .arg("hash-password")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        writeln!(child.stdin.take().unwrap(), "gr0up-pa55").unwrap();
        String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
    };
    std::fs::write(dir.path().join("users"), format!("ops: {}", hash.trim())).unwrap();
    let extra = [
        ("SLUICE__LISTENERS", "https://127.0.0.1:0".to_owned()),
        ("SLUICE__REST_ADVERTISED_HOST_NAME", "localhost".to_owned()),
        (
            "SLUICE__LISTENERS_HTTPS_SSL_CERTIFICATE_LOCATION",
            certs.server_cert.display().to_string(),
        ),
        (
            "SLUICE__LISTENERS_HTTPS_SSL_KEY_LOCATION",
            certs.server_key.display().to_string(),
        ),
        (
            "SLUICE__LISTENERS_HTTPS_SSL_TRUSTSTORE_LOCATION",
            certs.ca.display().to_string(),
        ),
        (
            "SLUICE__REST_AUTH_BASIC_CREDENTIALS_FILE",
            dir.path().join("users").display().to_string(),
        ),
    ];
    let workers: Vec<Worker> = (0..2)
        .map(|_| start_worker_with(dir.path(), &broker, "secured", &extra))
        .collect();
    let _logs = support::LogsOnFailure::of(&workers.iter().collect::<Vec<_>>());
    let (_, leader) =
        wait_for_agreement(&workers.iter().collect::<Vec<_>>(), Duration::from_secs(60));
    assert!(leader.starts_with("https://localhost:"), "{leader}");
    let addr = |w: &Worker| w.rest.trim_start_matches("http://").to_owned();
    let follower = workers
        .iter()
        .find(|w| !leader.ends_with(&format!(":{}", addr(w).rsplit_once(':').unwrap().1)))
        .unwrap();
    let follower_addr = addr(follower);
    let http = client(&certs, &follower_addr, None);
    let input = dir.path().join("in.txt");
    append_lines(&input, numbered(0..10));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let ops = |r: reqwest::RequestBuilder| r.basic_auth("ops", Some("gr0up-pa55"));
        let create = || {
            http.post(url(&follower_addr, "/connectors"))
                .header("content-type", "application/json")
                .body(source("secured-src", "secured", &input).to_string())
        };
        let (status, headers, _) = answer(create()).await;
        assert_eq!(status, 401);
        assert!(headers.contains_key("www-authenticate"));
        let (status, _, body) = answer(ops(create())).await;
        assert_eq!(
            status, 201,
            "created through the follower, forwarded to the leader: {body}"
        );
        let mut last = Json::Null;
        let deadline = Instant::now() + Duration::from_secs(60);
        while !tasks_running(&last, 1) {
            assert!(Instant::now() < deadline, "the task never ran: {last}");
            tokio::time::sleep(Duration::from_millis(100)).await;
            last = answer(ops(
                http.get(url(&follower_addr, "/connectors/secured-src/status"))
            ))
            .await
            .2;
        }
        let owner = last["tasks"][0]["worker_id"].as_str().unwrap().to_owned();
        assert!(owner.starts_with("localhost:"), "{last}");
        // Through whichever worker does not run the task: it forwards to the owner.
        let other = workers
            .iter()
            .map(addr)
            .find(|a| !owner.ends_with(a.rsplit_once(':').unwrap().1))
            .unwrap();
        let (status, _, body) = answer(ops(client(&certs, &other, None)
            .post(url(&other, "/connectors/secured-src/tasks/0/restart"))))
        .await;
        assert!(status == 204 || status == 202, "{status} {body}");
        let (status, _, body) = answer(ops(http
            .put(url(&follower_addr, "/connectors/secured-src/config"))
            .header("content-type", "application/json")
            .body(source("secured-src", "secured-2", &input)["config"].to_string())))
        .await;
        assert_eq!(status, 200, "a config change through the follower: {body}");
    });
    for worker in workers {
        let (exit, logs) = worker.terminate();
        assert!(exit.success(), "{logs}");
        assert!(!logs.contains("gr0up-pa55"));
    }
}

/// Garbage and records of another program in the three internal topics (a value that is not
/// JSON under a connector's key, a connector record without `properties`, a foreign key, a
/// status that is not an object, an offset key that is not Kafka Connect's): a worker starts
/// on them, warns naming each record's key and offset, and keeps the connector they would have
/// deleted.
#[test]
fn garbage_in_the_internal_topics_is_skipped_with_warnings_and_deletes_nothing() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let first = start_worker(dir.path(), &broker, "garbage");
    first.wait_for_log("the worker to lead", "joined the worker group");
    let input = dir.path().join("kept.txt");
    append_lines(&input, numbered(0..3));
    let (status, body) = first.post("/connectors", Some(&source("kept", "kept", &input)));
    assert_eq!(status, 201, "{body}");
    first.wait_for_status_within("kept", "the task runs", Duration::from_secs(60), |s| {
        tasks_running(s, 1)
    });
    let (exit, logs) = first.terminate();
    assert!(exit.success(), "{logs}");

    let record = |key: &'static [u8], value: &'static [u8]| (Some(key), Some(value));
    broker.produce(
        "connect-configs",
        &[
            record(b"connector-kept", b"\x00not json"),
            record(b"connector-kept", br#"{"config": "another program's"}"#),
            record(b"from-another-program", b"\xff\xfe"),
        ],
    );
    broker.produce(
        "connect-status",
        &[record(b"status-connector-kept", b"garbage")],
    );
    broker.produce("connect-offsets", &[record(b"not a key", b"{}")]);

    let second = start_worker(dir.path(), &broker, "garbage");
    second.wait_for_status_within(
        "kept",
        "the kept connector runs",
        Duration::from_secs(60),
        |s| tasks_running(s, 1),
    );
    assert_eq!(second.get("/connectors").1, json!(["kept"]));
    let logs = second.logs();
    for expected in [
        "config topic record skipped: its value is not JSON",
        "config topic record skipped: a connector record without a `properties` object",
        "status topic record skipped",
        "offset record skipped",
        "key=connector-kept",
        "key=status-connector-kept",
        "offset=",
    ] {
        assert!(logs.contains(expected), "{expected}:\n{logs}");
    }
    let (exit, logs) = second.terminate();
    assert!(exit.success(), "{logs}");
}

/// Kafka Connect's client security keys for `SASL_SSL` with `mechanism` (PLAIN or
/// SCRAM-SHA-256) and a PEM truststore, at the worker level and for the connectors' producers
/// and consumers, as Kafka Connect's docs ask, with `password`.
fn sasl_ssl_env(ca: &Path, mechanism: &str, password: &str) -> Vec<(&'static str, String)> {
    let module = match mechanism {
        "PLAIN" => "plain.PlainLoginModule",
        _ => "scram.ScramLoginModule",
    };
    let jaas = format!(
        "org.apache.kafka.common.security.{module} required \
         username=\"{}\" password=\"{password}\";",
        support::kafka::SASL_USER.0
    );
    let mut env = Vec::new();
    for (security, mechanism_key, jaas_key, store_type, store) in [
        (
            "SLUICE__SECURITY_PROTOCOL",
            "SLUICE__SASL_MECHANISM",
            "SLUICE__SASL_JAAS_CONFIG",
            "SLUICE__SSL_TRUSTSTORE_TYPE",
            "SLUICE__SSL_TRUSTSTORE_LOCATION",
        ),
        (
            "SLUICE__PRODUCER_SECURITY_PROTOCOL",
            "SLUICE__PRODUCER_SASL_MECHANISM",
            "SLUICE__PRODUCER_SASL_JAAS_CONFIG",
            "SLUICE__PRODUCER_SSL_TRUSTSTORE_TYPE",
            "SLUICE__PRODUCER_SSL_TRUSTSTORE_LOCATION",
        ),
        (
            "SLUICE__CONSUMER_SECURITY_PROTOCOL",
            "SLUICE__CONSUMER_SASL_MECHANISM",
            "SLUICE__CONSUMER_SASL_JAAS_CONFIG",
            "SLUICE__CONSUMER_SSL_TRUSTSTORE_TYPE",
            "SLUICE__CONSUMER_SSL_TRUSTSTORE_LOCATION",
        ),
    ] {
        env.push((security, "SASL_SSL".to_owned()));
        env.push((mechanism_key, mechanism.to_owned()));
        env.push((jaas_key, jaas.clone()));
        env.push((store_type, "PEM".to_owned()));
        env.push((store, ca.to_str().unwrap().to_owned()));
    }
    env
}

/// A worker group whose broker takes only `SASL_SSL` connections: every client of the worker
/// (the internal topics' readers and writers, the connectors' producers and consumers, and the
/// group membership client, which is sluice's own) authenticates over TLS. Tansu 0.6 has
/// neither TLS nor SASL, so the broker is reached through the in-test front
/// (tests/support/kafka_front.rs), which terminates TLS, checks SASL credentials (one worker
/// uses PLAIN, the other SCRAM-SHA-256) and closes any connection that sends a Kafka request
/// before authenticating; Tansu advertises the front, so no client reaches the broker any
/// other way. A worker with a wrong password or without the CA stops at start naming why.
#[test]
fn a_group_on_a_sasl_ssl_broker_authenticates_every_client_and_a_wrong_password_stops_the_start() {
    use support::kafka_front::Seen;
    let dir = tempfile::tempdir().unwrap();
    let certs = support::certs::Certs::make(dir.path());
    let (broker, front) = Broker::start_secured(&certs);
    // The test's own librdkafka admin client goes through the front too.
    broker.create_topic("secured", 1);
    let password = support::kafka::SASL_USER.1;
    let plain = sasl_ssl_env(&certs.ca, "PLAIN", password);
    let scram = sasl_ssl_env(&certs.ca, "SCRAM-SHA-256", password);
    let a = start_worker_with(dir.path(), &broker, "secured", &plain);
    let b = start_worker_with(dir.path(), &broker, "secured", &scram);
    let _logs = support::LogsOnFailure::of(&[&a, &b]);
    let (generation, leader) = wait_for_agreement(&[&a, &b], Duration::from_secs(90));
    eprintln!("two workers agreed over SASL_SSL: generation {generation}, leader {leader}");

    let input = dir.path().join("secured-in.txt");
    let output = dir.path().join("secured-out.txt");
    let sent = numbered(0..2_000);
    append_lines(&input, sent.clone());
    assert_eq!(
        a.post(
            "/connectors",
            Some(&source("secured-reader", "secured", &input))
        )
        .0,
        201
    );
    assert_eq!(
        b.post(
            "/connectors",
            Some(&sink("secured-writer", "secured", &output))
        )
        .0,
        201
    );
    wait_until(
        "every line crosses the SASL_SSL broker",
        Duration::from_secs(120),
        || lines(&output).len() >= sent.len(),
    );
    assert_replays_only(&lines(&output), &sent);
    let seen = &front.seen;
    eprintln!("the front relayed authenticated connections: {seen:?}");
    // Each worker's producer, consumers, admin client and group client.
    assert!(Seen::get(&seen.authenticated) >= 3, "{seen:?}");
    assert!(Seen::get(&seen.authenticated_scram) >= 3, "{seen:?}");
    assert_eq!(Seen::get(&seen.bad_credentials), 0, "{seen:?}");
    assert_eq!(Seen::get(&seen.unauthenticated_requests), 0, "{seen:?}");
    // (Failed handshakes are not asserted here: a short-lived client dropped mid-handshake
    // counts as one.)
    let handshakes_before = Seen::get(&seen.failed_handshakes);

    // A wrong password: refused by the broker, and the worker stops naming why.
    let wrong = sasl_ssl_env(&certs.ca, "PLAIN", "not-the-password");
    let refused = start_worker_until_exit(dir.path(), &broker, &wrong);
    assert!(Seen::get(&seen.bad_credentials) > 0, "{seen:?}");
    eprintln!("a wrong password: {refused}");
    assert!(
        refused.contains("SASL authentication error: Authentication failed"),
        "{refused}"
    );
    // A CA that did not sign the broker's certificate: the TLS handshake fails.
    let other_ca = sasl_ssl_env(&certs.other_ca, "PLAIN", password);
    let untrusted = start_worker_until_exit(dir.path(), &broker, &other_ca);
    assert!(
        Seen::get(&seen.failed_handshakes) > handshakes_before,
        "{seen:?}"
    );
    eprintln!("an untrusted broker certificate: {untrusted}");
    assert!(
        untrusted.contains("certificate verify failed"),
        "{untrusted}"
    );
}

/// Starts a worker that is expected to stop at start, within two minutes; its log.
fn start_worker_until_exit(
    dir: &Path,
    broker: &Broker,
    extra: &[(&'static str, String)],
) -> String {
    let mut env = env(broker, "secured");
    env.extend(extra.iter().cloned());
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = std::process::Command::new(support::sluice_bin())
        .args(["distributed", &config(DISTRIBUTED)])
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("SLUICE__LISTENERS", "http://127.0.0.1:0")
        .stdout(log.reopen().unwrap())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let logs = std::fs::read_to_string(log.path()).unwrap();
    assert!(
        status.is_some_and(|s| !s.success()),
        "the worker should stop with an error within 120 s ({status:?}): {logs}"
    );
    logs
}
