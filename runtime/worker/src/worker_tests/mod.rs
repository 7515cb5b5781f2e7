//! The worker inside one process: in-memory test connectors drive [`Worker`] directly on the
//! embedded direct pipeline, without the binary, Postgres or a broker, and check the delivery
//! contract of `sluice_api::connector` in milliseconds: offsets are committed only once every
//! sink that took a record flushed it; a failed flush means redelivery and no commit; pause
//! holds the flow; a clean stop commits what was delivered.

mod connectors;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sluice_api::config::{Props, props};

use self::connectors::{Answer, NUMBERED_SINK, NUMBERED_SOURCE, partition, probe};
use crate::config::providers::ConfigProviders;
use crate::config::worker::UnroutedPolicy;
use crate::herder::Herder;
use crate::herder::standalone::StandaloneHerder;
use crate::pipeline::direct::DirectBus;
use crate::registry::Registry;
use crate::state::{State, TargetState};
use crate::storage::offsets::{MemoryOffsetStore, OffsetStore};
use crate::worker::{Worker, WorkerContext};

/// A worker on the embedded pipeline with the test connectors, flushing every
/// `flush_interval`, and its offset store.
fn worker(flush_interval: Duration) -> (Worker, Arc<MemoryOffsetStore>) {
    worker_with_providers(flush_interval, ConfigProviders::default())
}

/// [`worker`] filling in connector configs' placeholders from `providers`.
fn worker_with_providers(
    flush_interval: Duration,
    providers: ConfigProviders,
) -> (Worker, Arc<MemoryOffsetStore>) {
    let offsets = Arc::new(MemoryOffsetStore::default());
    let ctx = WorkerContext {
        worker_id: "test:0".into(),
        registry: Registry::new()
            .connector(NUMBERED_SOURCE)
            .connector(NUMBERED_SINK),
        offsets: Arc::clone(&offsets) as Arc<dyn OffsetStore>,
        bus: Arc::new(DirectBus::new(UnroutedPolicy::Wait, 4, 32 << 20)),
        kafka: None,
        flush_interval,
        shutdown_timeout: Duration::from_secs(10),
        metrics: Default::default(),
        topics: Default::default(),
        providers: Arc::new(providers),
    };
    (Worker::new(Arc::new(ctx)), offsets)
}

fn config(name: &str, class: &str, extra: &[(&str, &str)]) -> Props {
    let mut config = props(&[("name", name), ("connector.class", class), ("probe", name)]);
    config.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    config
}

async fn start_source(worker: &Worker, name: &str, extra: &[(&str, &str)]) {
    let config = config(name, NUMBERED_SOURCE.class, extra);
    worker
        .start(name, NUMBERED_SOURCE, config, TargetState::Started)
        .await;
}

async fn start_sink(worker: &Worker, name: &str, extra: &[(&str, &str)]) {
    let mut all = vec![("topics", "numbers")];
    all.extend_from_slice(extra);
    let config = config(name, NUMBERED_SINK.class, &all);
    worker
        .start(name, NUMBERED_SINK, config, TargetState::Started)
        .await;
}

/// The offset the store holds for the test source `name`.
async fn stored(offsets: &MemoryOffsetStore, name: &str) -> Option<u64> {
    offsets
        .get(name, &partition())
        .await
        .unwrap()
        .and_then(|o| o["n"].as_u64())
}

/// Retries a failed flush forever, quickly: the sink stays up while a test holds its flush.
const RETRY_FOREVER: [(&str, &str); 2] = [
    ("errors.retry.timeout", "-1"),
    ("errors.retry.delay.max.ms", "20"),
];

async fn task_state(worker: &Worker, name: &str) -> Option<State> {
    let (_, tasks) = worker.report(name).await.ok()?;
    tasks.first().map(|t| t.status.state)
}

async fn wait_for_task_state(worker: &Worker, name: &str, state: State) {
    let waited = tokio::time::timeout(Duration::from_secs(20), async {
        while task_state(worker, name).await != Some(state) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "{name}'s task never became {state:?} (it is {:?})",
        task_state(worker, name).await
    );
}

#[tokio::test]
async fn offsets_are_committed_only_after_the_sink_flushed() {
    let (worker, offsets) = worker(Duration::from_millis(50));
    let (source, sink) = (probe("t1-source"), probe("t1-sink"));
    sink.answer_flush(Answer::Retriable);
    start_sink(&worker, "t1-sink", &RETRY_FOREVER).await;
    start_source(&worker, "t1-source", &[("count", "50")]).await;
    sink.wait_for("all 50 records put", |p| p.put.lock().unwrap().len() == 50)
        .await;
    sink.wait_for("three failed flushes", |p| {
        p.flush_calls.load(Ordering::Acquire) >= 3
    })
    .await;
    assert_eq!(source.last_committed(), None, "nothing is flushed yet");
    assert_eq!(stored(&offsets, "t1-source").await, None);

    sink.answer_flush(Answer::Ok);
    source
        .wait_for("the last offset committed", |p| {
            p.last_committed() == Some(49)
        })
        .await;
    assert_eq!(stored(&offsets, "t1-source").await, Some(49));
    assert_eq!(sink.flushed.lock().unwrap().len(), 50);
    worker.shutdown().await;
}

#[tokio::test]
async fn a_failing_flush_means_redelivery_and_no_commit() {
    let (worker, offsets) = worker(Duration::from_millis(50));
    let (source, sink) = (probe("t2-source"), probe("t2-sink"));
    sink.answer_flush(Answer::Fatal);
    start_sink(&worker, "t2-sink", &[]).await;
    start_source(&worker, "t2-source", &[("count", "20")]).await;
    wait_for_task_state(&worker, "t2-sink", State::Failed).await;
    assert!(sink.flushed.lock().unwrap().is_empty());
    assert_eq!(
        source.last_committed(),
        None,
        "a failed flush commits nothing"
    );
    assert_eq!(stored(&offsets, "t2-source").await, None);

    // The restarted sink gets every record again: the source re-read from its last commit.
    sink.answer_flush(Answer::Ok);
    worker
        .restart_task("t2-sink", 0, TargetState::Started)
        .await
        .unwrap();
    source
        .wait_for("the last offset committed", |p| {
            p.last_committed() == Some(19)
        })
        .await;
    let put = sink.put.lock().unwrap().clone();
    assert!(
        put.iter().filter(|n| **n == 0).count() >= 2,
        "record 0 was delivered again after the failed flush: {put:?}"
    );
    assert_eq!(stored(&offsets, "t2-source").await, Some(19));
    worker.shutdown().await;
}

#[tokio::test]
async fn pause_stops_the_flow_and_resume_restarts_it() {
    let (worker, _offsets) = worker(Duration::from_millis(50));
    let source = probe("t3-source");
    start_sink(&worker, "t3-sink", &[]).await;
    start_source(&worker, "t3-source", &[("batch", "5")]).await;
    source
        .wait_for("a flowing source", |p| {
            p.polled.load(Ordering::Acquire) >= 100
        })
        .await;

    worker
        .set_running_state("t3-source", TargetState::Paused)
        .await
        .unwrap();
    wait_for_task_state(&worker, "t3-source", State::Paused).await;
    let paused_at = source.polled.load(Ordering::Acquire);
    // Proving that nothing happens needs a window: several flush intervals.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        source.polled.load(Ordering::Acquire),
        paused_at,
        "a paused source polls nothing"
    );

    worker
        .set_running_state("t3-source", TargetState::Started)
        .await
        .unwrap();
    source
        .wait_for("the flow to resume", |p| {
            p.polled.load(Ordering::Acquire) >= paused_at + 100
        })
        .await;
    worker.shutdown().await;
}

#[tokio::test]
async fn a_stop_commits_what_was_delivered() {
    // No periodic flush during the test: only the stop can make the records durable.
    let (worker, offsets) = worker(Duration::from_secs(3600));
    let (source, sink) = (probe("t4-source"), probe("t4-sink"));
    start_sink(&worker, "t4-sink", &[]).await;
    start_source(&worker, "t4-source", &[("count", "30")]).await;
    sink.wait_for("all 30 records put", |p| p.put.lock().unwrap().len() == 30)
        .await;
    assert_eq!(
        source.last_committed(),
        None,
        "nothing flushed before the stop"
    );

    worker.stop("t4-source", State::Stopped).await.unwrap();
    assert_eq!(
        stored(&offsets, "t4-source").await,
        Some(29),
        "the stop flushed the sink and committed"
    );
    assert_eq!(source.last_committed(), Some(29));
    assert_eq!(sink.flushed.lock().unwrap().len(), 30);
    worker.shutdown().await;
}

#[tokio::test]
async fn a_fanned_out_record_is_acknowledged_only_when_both_sinks_flushed() {
    let (worker, offsets) = worker(Duration::from_millis(50));
    let (source, quick, slow) = (probe("t5-source"), probe("t5-quick"), probe("t5-slow"));
    slow.answer_flush(Answer::Retriable);
    start_sink(&worker, "t5-quick", &[]).await;
    start_sink(&worker, "t5-slow", &RETRY_FOREVER).await;
    start_source(&worker, "t5-source", &[("count", "10")]).await;
    quick
        .wait_for("the quick sink flushed all 10", |p| {
            p.flushed.lock().unwrap().len() == 10
        })
        .await;
    slow.wait_for("the slow sink took all 10 and failed flushes", |p| {
        p.put.lock().unwrap().len() == 10 && p.flush_calls.load(Ordering::Acquire) >= 3
    })
    .await;
    assert_eq!(
        source.last_committed(),
        None,
        "one of two sinks flushed: nothing is committed"
    );
    assert_eq!(stored(&offsets, "t5-source").await, None);

    slow.answer_flush(Answer::Ok);
    source
        .wait_for("the last offset committed", |p| {
            p.last_committed() == Some(9)
        })
        .await;
    assert_eq!(stored(&offsets, "t5-source").await, Some(9));
    worker.shutdown().await;
}

#[tokio::test]
async fn a_retriable_put_is_offered_again_and_nothing_is_lost() {
    let (worker, offsets) = worker(Duration::from_millis(50));
    let (source, sink) = (probe("t6-source"), probe("t6-sink"));
    sink.answer_put(Answer::Retriable);
    start_sink(&worker, "t6-sink", &RETRY_FOREVER).await;
    start_source(&worker, "t6-source", &[("count", "10"), ("batch", "10")]).await;
    sink.wait_for("three failed puts", |p| {
        p.put_calls.load(Ordering::Acquire) >= 3
    })
    .await;
    assert!(sink.put.lock().unwrap().is_empty());
    assert_eq!(source.last_committed(), None);

    sink.answer_put(Answer::Ok);
    source
        .wait_for("the last offset committed", |p| {
            p.last_committed() == Some(9)
        })
        .await;
    assert_eq!(
        *sink.put.lock().unwrap(),
        (0..10).collect::<Vec<u64>>(),
        "the same batch, once, after the retries"
    );
    assert_eq!(stored(&offsets, "t6-source").await, Some(9));
    worker.shutdown().await;
}

#[tokio::test]
async fn a_clean_stop_under_load_commits_all_it_sent_so_a_restart_repeats_nothing() {
    // As with the default flush interval (60 s): only the stop can make the records durable.
    let (worker, offsets) = worker(Duration::from_secs(3600));
    let (source, sink) = (probe("t7-source"), probe("t7-sink"));
    // A sink slower than the source, so deliveries wait in its queue when the stop comes.
    start_sink(&worker, "t7-sink", &[("put.delay.ms", "5")]).await;
    start_source(&worker, "t7-source", &[("batch", "100")]).await;
    sink.wait_for("a stream under way", |p| {
        p.put.lock().unwrap().len() >= 2_000
    })
    .await;

    worker.stop("t7-source", State::Stopped).await.unwrap();
    let committed = stored(&offsets, "t7-source").await;
    let put_before = sink.put.lock().unwrap().len() as u64;
    assert_eq!(
        committed,
        Some(put_before - 1),
        "the stop flushed and committed everything the sink had taken"
    );

    start_source(&worker, "t7-source", &[("batch", "100")]).await;
    sink.wait_for("the stream to go on", |p| {
        p.put.lock().unwrap().len() as u64 >= put_before + 500
    })
    .await;
    worker.shutdown().await;
    let put = sink.put.lock().unwrap().clone();
    let mut distinct = put.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        put.len(),
        "a clean restart repeated {} records",
        put.len() - distinct.len()
    );
    assert!(
        source
            .committed
            .lock()
            .unwrap()
            .contains(&committed.unwrap()),
        "the task was told what was committed at the stop"
    );
}

#[tokio::test]
async fn a_change_whose_client_gives_up_still_runs_to_completion() {
    use tower::ServiceExt;

    let (worker, _offsets) = worker(Duration::from_millis(50));
    let herder = Arc::new(StandaloneHerder::new(Arc::new(worker)));
    let router = crate::rest::router(Arc::clone(&herder) as Arc<dyn Herder>);
    let source = probe("t9-source");
    let sink_config = config("t9-sink", NUMBERED_SINK.class, &[("topics", "numbers")]);
    herder
        .put_connector("t9-sink", sink_config, false)
        .await
        .unwrap();
    // Its tasks take 300 ms to stop, so a client giving up after 50 ms leaves mid-change.
    let slow_stop = [("stop.delay.ms", "300")];
    let source_config = config("t9-source", NUMBERED_SOURCE.class, &slow_stop);
    herder
        .put_connector("t9-source", source_config.clone(), false)
        .await
        .unwrap();
    source
        .wait_for("a flowing source", |p| {
            p.polled.load(Ordering::Acquire) >= 50
        })
        .await;

    // The client sends a new config and goes away after 50 ms: hyper drops the handler.
    let mut changed = source_config.clone();
    changed.insert("batch".into(), "7".into());
    let request = axum::http::Request::put("/connectors/t9-source/config")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            serde_json::to_vec(&changed).unwrap(),
        ))
        .unwrap();
    let cut =
        tokio::time::timeout(Duration::from_millis(50), router.clone().oneshot(request)).await;
    assert!(cut.is_err(), "the client gave up before the answer");
    wait_for(&herder, "the new config running", |status, info| {
        info.config.get("batch").map(String::as_str) == Some("7")
            && status.tasks.len() == 1
            && status.tasks.iter().all(|t| t.state == State::Running)
    })
    .await;

    // A stop cut the same way still stops the connector.
    let request = axum::http::Request::put("/connectors/t9-source/stop")
        .body(axum::body::Body::empty())
        .unwrap();
    let cut = tokio::time::timeout(Duration::from_millis(50), router.oneshot(request)).await;
    assert!(cut.is_err(), "the client gave up before the answer");
    wait_for(&herder, "the connector stopped", |status, _| {
        status.connector.state == State::Stopped && status.tasks.is_empty()
    })
    .await;
    herder.shutdown().await;
}

/// Waits (at most 20 s) until the connector `t9-source` satisfies `condition`.
async fn wait_for(
    herder: &StandaloneHerder,
    what: &str,
    condition: impl Fn(&crate::state::ConnectorStatus, &crate::state::ConnectorInfo) -> bool,
) {
    let waited = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let (Ok(status), Ok(info)) = (
                herder.connector_status("t9-source").await,
                herder.connector_info("t9-source").await,
            ) && condition(&status, &info)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let status = herder.connector_status("t9-source").await;
    assert!(
        waited.is_ok(),
        "timed out waiting for {what}; status: {status:?}"
    );
}

/// Distributed mode, where a connector's instance and tasks start apart: once a file under a
/// connector's placeholders changed (and held for a second check), the worker restarts its
/// tasks here, a paused one paused even where the instance runs elsewhere, and asks the
/// membership loop to restart an instance it holds; with `config.action.reload=none` it asks
/// nothing.
#[tokio::test]
async fn a_changed_provider_file_restarts_tasks_in_their_state_and_asks_for_the_instance() {
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.properties");
    std::fs::write(&values, "batch=5\n").unwrap();
    let providers = ConfigProviders::from_worker(&props(&[
        ("config.providers", "file"),
        (
            "config.providers.file.class",
            "org.apache.kafka.common.config.provider.FileConfigProvider",
        ),
    ]))
    .unwrap();
    let (worker, _offsets) = worker_with_providers(Duration::from_millis(50), providers);
    let mut instance_restarts = worker.subscribe_instance_restarts();
    let placeholder = format!("${{file:{}:batch}}", values.display());
    let batch = placeholder.as_str();
    // No records (`count` 0): nothing waits on the embedded pipeline for a sink.
    let held = config(
        "p-held",
        NUMBERED_SOURCE.class,
        &[("batch", batch), ("count", "0")],
    );
    let generated = worker
        .start_instance(
            "p-held",
            NUMBERED_SOURCE,
            held.clone(),
            TargetState::Started,
        )
        .await;
    assert_eq!(
        generated.first().and_then(|t| t.get("batch")),
        Some(&placeholder),
        "the generated task config keeps the placeholder"
    );
    worker
        .start_task(
            "p-held",
            NUMBERED_SOURCE,
            held,
            0,
            generated[0].clone(),
            TargetState::Started,
        )
        .await;
    let unmoved = config(
        "p-none",
        NUMBERED_SOURCE.class,
        &[
            ("batch", batch),
            ("count", "0"),
            ("config.action.reload", "none"),
        ],
    );
    let generated = worker
        .start_instance("p-none", NUMBERED_SOURCE, unmoved, TargetState::Started)
        .await;
    assert_eq!(generated.len(), 1);
    // Only a paused task here; its instance runs on another worker.
    let elsewhere = config(
        "p-elsewhere",
        NUMBERED_SOURCE.class,
        &[("batch", batch), ("count", "0")],
    );
    worker
        .start_task(
            "p-elsewhere",
            NUMBERED_SOURCE,
            elsewhere.clone(),
            0,
            elsewhere,
            TargetState::Paused,
        )
        .await;
    wait_for_task_state(&worker, "p-held", State::Running).await;
    wait_for_task_state(&worker, "p-elsewhere", State::Paused).await;

    worker.reload_changed_providers().await;
    assert!(instance_restarts.try_recv().is_err(), "nothing changed yet");
    std::fs::write(&values, "batch=7\n").unwrap();
    // A time of change unlike the first, whatever the file system's clock resolution.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&values)
        .unwrap()
        .set_modified(std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1))
        .unwrap();
    worker.reload_changed_providers().await;
    assert!(
        instance_restarts.try_recv().is_err(),
        "a change seen once may be a file caught half-written"
    );
    worker.reload_changed_providers().await;
    assert_eq!(instance_restarts.try_recv().ok().as_deref(), Some("p-held"));
    assert!(
        instance_restarts.try_recv().is_err(),
        "neither an instance held elsewhere nor one with reload=none restarts here"
    );
    wait_for_task_state(&worker, "p-elsewhere", State::Paused).await;
    wait_for_task_state(&worker, "p-held", State::Running).await;
    worker.shutdown().await;
}
