//! The whole distributed herder — three in-process workers, each with its REST API — with the
//! group coordinated by the in-test coordinator that has Apache Kafka's group semantics (join
//! barrier, generations, session expiry; `fake_coordinator.rs`), while the internal topics
//! and the data stay on a Tansu broker. This shows what the herder does where the group
//! behaves as on Kafka; `tests/distributed.rs` runs `sluice distributed` processes on Tansu
//! alone, whose coordinator differs (see the README).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};
use sluice_api::config::props;

use super::fake_coordinator::FakeCoordinator;
use super::process::DistributedProcess;
use super::tansu_tests::broker;
use crate::config::distributed::DistributedConfig;
use crate::registry::Registry;

async fn start_worker(broker: &str, coordinator: &FakeCoordinator) -> DistributedProcess {
    let settings = DistributedConfig::parse(props(&[
        ("bootstrap.servers", broker),
        ("group.id", "herder"),
        ("config.storage.topic", "herder-configs"),
        ("offset.storage.topic", "herder-offsets"),
        ("status.storage.topic", "herder-status"),
        ("offset.storage.partitions", "3"),
        ("status.storage.partitions", "2"),
        ("listeners", "http://127.0.0.1:0"),
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "1000"),
        ("rebalance.timeout.ms", "10000"),
        ("scheduled.rebalance.max.delay.ms", "0"),
        ("offset.flush.interval.ms", "1000"),
        (
            "key.converter",
            "org.apache.kafka.connect.json.JsonConverter",
        ),
        (
            "value.converter",
            "org.apache.kafka.connect.json.JsonConverter",
        ),
    ]))
    .unwrap();
    let registry = Registry::with_builtins()
        .connector(sluice_connector_file::FILE_SOURCE)
        .connector(sluice_connector_file::FILE_SINK);
    DistributedProcess::start_with(settings, registry, Some(vec![coordinator.address.clone()]))
        .await
        .unwrap()
}

async fn call(method: reqwest::Method, url: String, body: Option<Json>) -> (u16, Json) {
    let mut request = reqwest::Client::new().request(method, &url);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Json::Null))
}

fn base(worker: &DistributedProcess) -> String {
    format!("http://{}", worker.rest_addr())
}

/// Each connector's and task's state and worker, as `worker` reports them.
async fn placements(
    worker: &DistributedProcess,
    names: &[String],
) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out = BTreeMap::new();
    for name in names {
        let (_, status) = call(
            reqwest::Method::GET,
            format!("{}/connectors/{name}/status", base(worker)),
            None,
        )
        .await;
        let mut pieces = vec![(
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
            pieces.push((
                task["state"].as_str().unwrap_or("").to_owned(),
                task["worker_id"].as_str().unwrap_or("").to_owned(),
            ));
        }
        out.insert(name.clone(), pieces);
    }
    out
}

/// True when every connector and its one task run on one of `on`.
fn all_running(
    placements: &BTreeMap<String, Vec<(String, String)>>,
    on: &BTreeSet<String>,
) -> bool {
    placements.values().all(|pieces| {
        pieces.len() == 2
            && pieces
                .iter()
                .all(|(state, id)| state == "RUNNING" && on.contains(id))
    })
}

/// Waits (up to a minute) until `worker` reports every connector and task RUNNING on `on`.
async fn running_on(
    worker: &DistributedProcess,
    names: &[String],
    on: &BTreeSet<String>,
    what: &str,
) -> BTreeMap<String, Vec<(String, String)>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = placements(worker, names).await;
        if all_running(&now, on) {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting until {what}: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn spread(counts: &BTreeMap<String, usize>) -> usize {
    counts.values().max().unwrap() - counts.values().min().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_kafkas_group_semantics_the_herder_spreads_work_settles_and_fails_over() {
    // The three workers' logs, interleaved (RUST_LOG=sluice_runtime=info to see them).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let broker = broker();
    let coordinator = FakeCoordinator::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut workers = Vec::new();
    for _ in 0..3 {
        workers.push(start_worker(&broker.address, &coordinator).await);
    }
    let ids: BTreeSet<String> = workers.iter().map(|w| w.rest_addr().to_string()).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let views: Vec<_> = workers.iter().map(DistributedProcess::view).collect();
        if views.iter().all(|v| {
            v.stable && v.generation == views[0].generation && v.leader_url == views[0].leader_url
        }) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "three workers agree on a generation and a leader: {views:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let formed = coordinator.snapshot().await.0;

    // Seven sources created at once through all three workers.
    let names: Vec<String> = (0..7).map(|i| format!("source-{i}")).collect();
    let creates = names.iter().enumerate().map(|(i, name)| {
        let file = dir.path().join(format!("{name}.txt"));
        std::fs::write(&file, "one\ntwo\n").unwrap();
        let body = json!({"name": name, "config": {
            "connector.class": "FileStreamSource", "file": file.to_str().unwrap(), "topic": name,
        }});
        call(
            reqwest::Method::POST,
            format!("{}/connectors", base(&workers[i % 3])),
            Some(body),
        )
    });
    let created = Instant::now();
    for (status, body) in futures_join(creates).await {
        assert_eq!(status, 201, "{body}");
    }
    let last = running_on(&workers[0], &names, &ids, "every connector and task runs").await;
    let generations = coordinator.snapshot().await.0 - formed;
    eprintln!(
        "7 concurrent creates to every task RUNNING: {:?}, {generations} generation(s) on Kafka's semantics",
        created.elapsed()
    );
    let (mut connectors, mut tasks) = (BTreeMap::new(), BTreeMap::new());
    for pieces in last.values() {
        *connectors.entry(pieces[0].1.clone()).or_insert(0usize) += 1;
        *tasks.entry(pieces[1].1.clone()).or_insert(0usize) += 1;
    }
    assert_eq!(connectors.len(), 3, "{connectors:?}");
    assert!(
        spread(&connectors) <= 1 && spread(&tasks) <= 1,
        "{connectors:?} {tasks:?}"
    );
    // Every worker answers alike.
    for worker in &workers[1..] {
        assert_eq!(placements(worker, &names).await, last);
    }
    // Settled: no further generation while nothing changes.
    let settled = coordinator.snapshot().await.0;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        coordinator.snapshot().await.0,
        settled,
        "no rebalance once converged"
    );

    // A worker dies: its work runs on the other two after its session expires.
    let victim = workers.remove(0);
    let victim_id = victim.rest_addr().to_string();
    let crashed = Instant::now();
    victim.crash().await;
    let survivors: BTreeSet<String> = ids.iter().filter(|id| **id != victim_id).cloned().collect();
    running_on(
        &workers[0],
        &names,
        &survivors,
        "the dead worker's work runs on the survivors",
    )
    .await;
    eprintln!(
        "crash to every task RUNNING on the survivors: {:?} (session timeout 6 s)",
        crashed.elapsed()
    );
    for worker in workers {
        worker.stop().await;
    }
}

/// Awaits futures concurrently, in order of their results.
async fn futures_join<F: std::future::Future + Send + 'static>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}
