//! The Kafka transport against a real Kafka-protocol broker: Tansu, started privately by each
//! test (in-memory storage; the broker-restart tests keep it in an S3 API fake instead, see
//! tests/support/s3_fake.rs). Where Tansu differs from Apache Kafka it is said at the spot:
//! Tansu does not auto-create topics (sluice creates what it writes to), and its in-memory
//! storage does not compact, so readers of the compacted topics see every record and keep the
//! last value per key, as Kafka Connect's readers do.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use support::kafka::Broker;
use support::{
    Worker, all_tasks, append_lines, assert_replays_only, config, lines, numbered, wait_until,
};

const KAFKA_WORKER: &str = "kafka/connect-standalone.properties";
const SOURCE: &str = "quickstart/connect-file-source.properties";
const SINK: &str = "quickstart/connect-file-sink.properties";

/// The quickstart worker file is used unchanged; only the broker address is pointed at the
/// test's broker through the documented environment override.
fn kafka_env(broker: &Broker) -> Vec<(&'static str, String)> {
    vec![("SLUICE__BOOTSTRAP_SERVERS", broker.addr.clone())]
}

fn start(
    dir: &Path,
    broker: &Broker,
    args: &[impl AsRef<str>],
    extra: &[(&'static str, &str)],
) -> Worker {
    let mut env: Vec<(&str, String)> = kafka_env(broker);
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Worker::start_with_env(dir, args, &env)
}

#[test]
fn quickstart_trio_runs_unchanged_through_kafka_with_json_converter_values() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("test.txt");
    append_lines(&source, ["foo".to_owned(), "bar".to_owned()]);
    let worker = start(
        dir.path(),
        &broker,
        &[&config(KAFKA_WORKER), &config(SOURCE), &config(SINK)],
        &[],
    );
    append_lines(&source, numbered(0..100));
    let sink = dir.path().join("test.sink.txt");
    wait_until(
        "every line reaches test.sink.txt",
        Duration::from_secs(30),
        || lines(&sink).len() == 102,
    );
    let mut expected = vec!["foo".to_owned(), "bar".to_owned()];
    expected.extend(numbered(0..100));
    assert_eq!(lines(&sink), expected);

    let topic = broker.read("connect-test", 102);
    assert_eq!(
        topic[0].text(),
        r#"{"schema":{"type":"string","optional":false},"payload":"foo"}"#
    );
    assert_eq!(
        topic[1].text(),
        r#"{"schema":{"type":"string","optional":false},"payload":"bar"}"#
    );
    assert_eq!(topic[0].key, None, "FileStreamSource records have no key");
    assert!(
        worker
            .logs()
            .contains("created topic topic=\"connect-test\""),
        "Tansu does not auto-create: sluice did"
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
    assert!(logs.contains("produce latency"), "{logs}");
}

#[test]
fn kill_9_during_a_100k_line_stream_loses_nothing_and_a_clean_restart_repeats_nothing() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let source_path = dir.path().join("test.txt");
    let sink_path = dir.path().join("test.sink.txt");
    let source = numbered(0..100_000);
    let args = [config(KAFKA_WORKER), config(SOURCE), config(SINK)];
    // Commits every second, so kills land between commits with records in flight.
    //
    // A killed worker's consumer stays in the group until its session (6 s here) times out.
    // Apache Kafka then starts a new generation and the restarted worker gets the partition.
    // Tansu 0.6 can strand it instead: if the restarted member forms a generation while the
    // dead one is still listed, the range assignor gives the partition to the dead one, and
    // when a heartbeat later expels it Tansu answers REBALANCE_IN_PROGRESS yet keeps the
    // generation and its stored assignments (its Formed-state heartbeat drops the member
    // without going back to Forming), so every rejoin hands the survivor the same empty
    // assignment: "partitions assigned by a rebalance partitions=[]" in the log, then nothing
    // (about one run in three under load). Tansu expels a dead member correctly when the
    // expiry is found at a JoinGroup, so each restart waits out the dead session first; there
    // is no condition to poll, since Tansu's DescribeGroups lists no members. (Static
    // membership does not help: Tansu 0.6 answered a static member's first JoinGroup with two
    // member ids and failed every SyncGroup.)
    const SESSION: Duration = Duration::from_secs(6);
    let extra = [
        ("SLUICE__OFFSET_FLUSH_INTERVAL_MS", "1000"),
        ("SLUICE__CONSUMER_SESSION_TIMEOUT_MS", "6000"),
    ];
    let chunk = source.len() / 4;
    let outlive_dead_session = |killed_at: Option<std::time::Instant>| {
        if let Some(killed_at) = killed_at {
            let expired_at = killed_at + SESSION + Duration::from_millis(250);
            std::thread::sleep(expired_at.saturating_duration_since(std::time::Instant::now()));
        }
    };
    let mut killed_at = None;
    for round in 0..3 {
        append_lines(
            &source_path,
            source[round * chunk..(round + 1) * chunk].to_vec(),
        );
        outlive_dead_session(killed_at);
        let worker = start(dir.path(), &broker, &args, &extra);
        let before = lines(&sink_path).len();
        let t0 = std::time::Instant::now();
        worker.wait_until("the sink grows", Duration::from_secs(60), || {
            lines(&sink_path).len() > before
        });
        eprintln!("round {round}: the sink grew after {:?}", t0.elapsed());
        worker.kill9();
        killed_at = Some(std::time::Instant::now());
    }
    append_lines(&source_path, source[3 * chunk..].to_vec());
    outlive_dead_session(killed_at);
    let worker = start(dir.path(), &broker, &args, &extra);
    let last = source.last().unwrap().clone();
    worker.wait_until(
        "the last line reaches the sink",
        Duration::from_secs(120),
        || lines(&sink_path).last() == Some(&last),
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
    let replays = assert_replays_only(&lines(&sink_path), &source);
    eprintln!(
        "{} sink lines for {} source lines, {replays} replay(s)",
        lines(&sink_path).len(),
        source.len()
    );

    let before = lines(&sink_path);
    append_lines(&source_path, ["after-clean-restart".to_owned()]);
    let worker = start(dir.path(), &broker, &args, &extra);
    wait_until("the new line arrives", Duration::from_secs(30), || {
        lines(&sink_path).len() > before.len()
    });
    let (exit, _) = worker.terminate();
    assert!(exit.success());
    let after = lines(&sink_path);
    assert_eq!(
        after[before.len()..],
        ["after-clean-restart".to_owned()],
        "a clean restart repeats nothing"
    );
}

/// Tansu's in-memory storage dies with its process, so this broker keeps its topics in the
/// S3 fake (tests/support/s3_fake.rs: an S3 API fake in this test process, not S3) and is
/// killed (-9) and started again while the worker keeps running. What the worker must do is
/// ride it out: the producer retries its unacknowledged batches, the sink's consumer rejoins
/// its group and resumes from the committed offsets the broker kept, and no task fails.
///
/// The producer is not idempotent here, unlike sluice's default: Tansu 0.6 loses a retried
/// idempotent batch when it dies at the wrong moment (the next test shows exactly how), which
/// Apache Kafka cannot, since it appends a batch and its producer state in one log write. Plain
/// retries keep at-least-once across the restart; one request in flight keeps them in order.
#[test]
fn a_broker_restart_mid_stream_loses_nothing() {
    let s3 = support::s3_fake::S3Fake::start();
    let mut broker = Broker::start_on_s3(&s3);
    let dir = tempfile::tempdir().unwrap();
    let source_path = dir.path().join("test.txt");
    let sink_path = dir.path().join("test.sink.txt");
    let source = numbered(0..100_000);
    let half = source.len() / 2;
    append_lines(&source_path, source[..half].to_vec());
    let worker = start(
        dir.path(),
        &broker,
        &[config(KAFKA_WORKER), config(SOURCE), config(SINK)],
        &[
            ("SLUICE__OFFSET_FLUSH_INTERVAL_MS", "1000"),
            ("SLUICE__PRODUCER_ENABLE_IDEMPOTENCE", "false"),
            (
                "SLUICE__PRODUCER_MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION",
                "1",
            ),
        ],
    );
    worker.wait_until("the sink grows", Duration::from_secs(60), || {
        !lines(&sink_path).is_empty()
    });
    let before_restart = lines(&sink_path).len();
    broker.restart();
    eprintln!("broker restarted with {before_restart} lines in the sink");
    append_lines(&source_path, source[half..].to_vec());
    let last = source.last().unwrap().clone();
    worker.wait_until(
        "the last line reaches the sink",
        Duration::from_secs(180),
        || lines(&sink_path).last() == Some(&last),
    );
    for connector in ["local-file-source", "local-file-sink"] {
        let (_, status) = worker.get(&format!("/connectors/{connector}/status"));
        assert!(all_tasks(&status, "RUNNING"), "{status}");
    }
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
    let replays = assert_replays_only(&lines(&sink_path), &source);
    eprintln!(
        "{} sink lines for {} source lines, {replays} replay(s); S3 fake: {:?} (objects, writes)",
        lines(&sink_path).len(),
        source.len(),
        s3.counts()
    );
}

/// A Tansu difference, shown exactly (the test above avoids it). Tansu 0.6's object-store
/// engine handles an idempotent produce in three writes: the producer's sequence number, the
/// partition's high watermark, then the batch itself. When it dies after the first and before
/// the last, the restarted broker answers the producer's retry of that batch
/// DUPLICATE_SEQUENCE_NUMBER, which by the Kafka protocol means "already stored", so the client
/// reports it delivered; the batch is not in the topic, and its offset is a hole. Here the S3
/// fake refuses the batch write, so the broker is held between the writes when it is killed.
/// Should Tansu fix this, this test fails, and the restart test above can drop its
/// non-idempotent producer.
#[test]
fn tansu_acknowledges_a_retried_idempotent_batch_it_never_stored() {
    use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
    let s3 = support::s3_fake::S3Fake::start();
    let mut broker = Broker::start_on_s3(&s3);
    broker.create_topic("held", 1);
    let producer: FutureProducer = broker
        .client()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()
        .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let send = |text: &'static str| {
        producer
            .send_result(FutureRecord::<(), str>::to("held").payload(text))
            .map_err(|(e, _)| e)
            .unwrap()
    };
    let delivered =
        |delivery: DeliveryFuture| runtime.block_on(delivery).unwrap().map_err(|(e, _)| e);
    assert!(delivered(send("first")).is_ok());

    s3.refuse_writes("/records/");
    let held = send("held");
    wait_until(
        "the broker tries to store the held batch",
        Duration::from_secs(30),
        || s3.refused() > 0,
    );
    broker.restart();
    s3.accept_writes();
    let held = delivered(held);
    assert!(
        held.is_ok(),
        "the client was told the held batch is stored: {held:?}"
    );
    assert!(delivered(send("after")).is_ok());

    let topic = broker.read("held", 2);
    let stored: Vec<(i64, String)> = topic.iter().map(|c| (c.offset, c.text())).collect();
    assert_eq!(
        stored,
        [(0, "first".to_owned()), (2, "after".to_owned())],
        "Tansu kept the acknowledged batch after all (offset 1 should be a hole)"
    );
}

#[test]
fn offsets_in_a_topic_use_kafka_connect_s_format_both_ways() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let worker_file = dir.path().join("worker.properties");
    std::fs::write(
        &worker_file,
        std::fs::read_to_string(config(KAFKA_WORKER)).unwrap()
            + "offset.storage.topic=connect-offsets\noffset.storage.partitions=3\n",
    )
    .unwrap();
    // Kafka Connect wrote this offset for the same connector: sluice must resume after "skip\n".
    // (Compacted, as Kafka Connect requires of its offset topic, and sluice checks.)
    broker.create_topic_with("connect-offsets", 3, &[("cleanup.policy", "compact")]);
    broker.produce(
        "connect-offsets",
        &[(
            Some(br#"["local-file-source",{"filename":"test.txt"}]"#),
            Some(br#"{"position":5}"#),
        )],
    );
    let source = dir.path().join("test.txt");
    append_lines(
        &source,
        ["skip".to_owned(), "one".to_owned(), "two".to_owned()],
    );
    let args = [
        worker_file.to_str().unwrap().to_owned(),
        config(SOURCE),
        config(SINK),
    ];
    let worker = start(dir.path(), &broker, &args, &[]);
    let sink = dir.path().join("test.sink.txt");
    wait_until(
        "the lines after the committed position arrive",
        Duration::from_secs(30),
        || lines(&sink).len() == 2,
    );
    assert_eq!(
        lines(&sink),
        ["one", "two"],
        "resumed from Kafka Connect's offset"
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");

    // sluice's own commit, read with a plain consumer: Kafka Connect's key and value bytes.
    let size = std::fs::metadata(&source).unwrap().len();
    let records = broker.read("connect-offsets", 2);
    let ours = records.last().unwrap();
    assert_eq!(
        String::from_utf8_lossy(ours.key.as_deref().unwrap()),
        r#"["local-file-source",{"filename":"test.txt"}]"#
    );
    // Kafka Connect's `position`, then the file's identity (sluice's addition, which Kafka
    // Connect's FileStreamSource ignores; sluice notices a rotated file with it).
    let value: serde_json::Value = serde_json::from_str(&ours.text()).unwrap();
    assert!(
        ours.text().starts_with(&format!(r#"{{"position":{size},"#)),
        "{}",
        ours.text()
    );
    assert!(
        value["device"].is_u64() && value["inode"].is_u64(),
        "{value}"
    );
    assert_eq!(
        ours.partition, records[0].partition,
        "same key, same partition (Java's murmur2 partitioner)"
    );

    append_lines(&source, ["three".to_owned()]);
    let fast_commits = [("SLUICE__OFFSET_FLUSH_INTERVAL_MS", "300")];
    let worker = start(dir.path(), &broker, &args, &fast_commits);
    wait_until("the new line arrives", Duration::from_secs(30), || {
        lines(&sink).len() == 3
    });
    assert_eq!(lines(&sink), ["one", "two", "three"]);

    // The offsets REST API works on the topic store: read, alter, reset, each when STOPPED.
    let connector = "/connectors/local-file-source";
    let at = |position: Option<u64>| json!({"offsets": position.map(|p| json!({"partition": {"filename": "test.txt"}, "offset": {"position": p}})).into_iter().collect::<Vec<_>>()});
    // The offsets as the API shows them, with the file identity sluice adds left out.
    let shown = |worker: &Worker| {
        let mut body = worker.get(&format!("{connector}/offsets")).1;
        for entry in body["offsets"].as_array_mut().into_iter().flatten() {
            if let Some(offset) = entry["offset"].as_object_mut() {
                offset.retain(|key, _| key == "position");
            }
        }
        body
    };
    let size = std::fs::metadata(&source).unwrap().len();
    wait_until("the offset is committed", Duration::from_secs(30), || {
        shown(&worker) == at(Some(size))
    });
    worker.stop_connector("local-file-source");
    let before_two = "skip\none\n".len() as u64;
    let (code, body) = worker.patch(&format!("{connector}/offsets"), &at(Some(before_two)));
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        worker.get(&format!("{connector}/offsets")).1,
        at(Some(before_two))
    );
    assert_eq!(worker.put(&format!("{connector}/resume"), None).0, 202);
    wait_until(
        "the altered source re-reads from two",
        Duration::from_secs(30),
        || lines(&sink).len() == 5,
    );
    assert_eq!(lines(&sink)[3..], ["two", "three"]);

    wait_until(
        "the offset is committed again",
        Duration::from_secs(30),
        || shown(&worker) == at(Some(size)),
    );
    worker.stop_connector("local-file-source");
    let (code, body) = worker.delete(&format!("{connector}/offsets"));
    assert_eq!(code, 200, "{body}");
    assert_eq!(worker.get(&format!("{connector}/offsets")).1, at(None));
    let records = broker.read_until("connect-offsets", "a tombstone", |read| {
        read.iter().any(|r| r.value.is_none())
    });
    let reset = records.last().unwrap();
    assert_eq!(
        (reset.key.as_deref(), reset.value.as_deref()),
        (
            Some(&br#"["local-file-source",{"filename":"test.txt"}]"#[..]),
            None
        ),
        "a reset is Kafka Connect's tombstone for the key"
    );
    assert_eq!(worker.put(&format!("{connector}/resume"), None).0, 202);
    wait_until(
        "the reset source reads the file from the start",
        Duration::from_secs(30),
        || lines(&sink).len() == 9,
    );
    assert_eq!(lines(&sink)[5..], ["skip", "one", "two", "three"]);
}

/// A string as JsonConverter writes it with schemas enabled.
fn string_envelope(text: &str) -> String {
    format!(r#"{{"schema":{{"type":"string","optional":false}},"payload":"{text}"}}"#)
}

/// Produces each text as a JsonConverter string value without a key.
fn produce_strings(broker: &Broker, topic: &str, texts: impl IntoIterator<Item = String>) {
    let values: Vec<String> = texts.into_iter().map(|t| string_envelope(&t)).collect();
    let records: Vec<_> = values.iter().map(|v| (None, Some(v.as_bytes()))).collect();
    broker.produce(topic, &records);
}

fn sink_config(dir: &Path, name: &str, extra: &str) -> String {
    let path = dir.join(format!("{name}.properties"));
    std::fs::write(
        &path,
        format!(
            "name={name}\nconnector.class=FileStreamSink\nfile={name}.txt\ntopics=orders\n{extra}"
        ),
    )
    .unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn a_poison_record_goes_to_the_dead_letter_queue_or_fails_the_task() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    broker.create_topic("orders", 1);
    let (good1, good2) = (string_envelope("good-1"), string_envelope("good-2"));
    broker.produce(
        "orders",
        &[
            (None, Some(good1.as_bytes())),
            (None, Some(b"not json")),
            (None, Some(good2.as_bytes())),
        ],
    );
    let tolerant = sink_config(
        dir.path(),
        "tolerant",
        "errors.tolerance=all\nerrors.log.enable=true\nerrors.deadletterqueue.topic.name=orders-dlq\n\
         errors.deadletterqueue.topic.replication.factor=1\nerrors.deadletterqueue.context.headers.enable=true\n",
    );
    let strict = sink_config(dir.path(), "strict", "");
    let worker = start(
        dir.path(),
        &broker,
        &[&config(KAFKA_WORKER), &tolerant, &strict],
        &[],
    );

    wait_until("the good records pass", Duration::from_secs(30), || {
        lines(&dir.path().join("tolerant.txt")).len() == 2
    });
    assert_eq!(
        lines(&dir.path().join("tolerant.txt")),
        ["good-1", "good-2"]
    );
    let dead = broker.read("orders-dlq", 1);
    assert_eq!(dead[0].text(), "not json");
    assert_eq!(dead[0].key, None);
    assert_eq!(dead[0].header("__connect.errors.topic"), Some("orders"));
    assert_eq!(dead[0].header("__connect.errors.partition"), Some("0"));
    assert_eq!(dead[0].header("__connect.errors.offset"), Some("1"));
    assert_eq!(
        dead[0].header("__connect.errors.stage"),
        Some("VALUE_CONVERTER")
    );
    assert_eq!(
        dead[0].header("__connect.errors.connector.name"),
        Some("tolerant")
    );
    assert_eq!(dead[0].header("__connect.errors.task.id"), Some("0"));
    assert_eq!(
        dead[0].header("__connect.errors.exception.class.name"),
        Some("org.apache.kafka.connect.errors.DataException")
    );
    assert!(
        dead[0]
            .header("__connect.errors.exception.message")
            .unwrap()
            .contains("JsonConverter")
    );
    // The task's error figures count exactly the dead letters written; `sink-record-read`
    // counts what was read, before conversion, as in Kafka Connect.
    let scrape = worker.scrape();
    let tolerant = |name: &str| scrape.task(name, "tolerant", 0);
    assert_eq!(
        tolerant("kafka_connect_task_error_metrics_deadletterqueue_produce_requests"),
        dead.len() as f64,
        "{}",
        scrape.text
    );
    assert_eq!(
        tolerant("kafka_connect_task_error_metrics_deadletterqueue_produce_failures"),
        0.0
    );
    assert_eq!(
        tolerant("kafka_connect_task_error_metrics_total_records_skipped"),
        1.0
    );
    assert_eq!(
        tolerant("kafka_connect_sink_task_metrics_sink_record_read_total"),
        3.0
    );
    assert_eq!(
        tolerant("kafka_connect_sink_task_metrics_sink_record_send_total"),
        2.0
    );
    // Per topic partition: the committed offset (past all three records, the dead one
    // included) and no lag behind the partition's end, once the sink has committed.
    let partition = [
        ("connector", "tolerant"),
        ("task", "0"),
        ("topic", "orders"),
        ("partition", "0"),
    ];
    let mut committed = None;
    wait_until(
        "the tolerant sink's committed offset shows at /metrics",
        Duration::from_secs(30),
        || {
            let scrape = worker.scrape();
            committed = scrape
                .value("sluice_sink_task_partition_committed_offset", &partition)
                .zip(scrape.value("sluice_sink_task_partition_records_lag", &partition));
            committed == Some((3.0, 0.0))
        },
    );

    let trace = worker.failed_trace("strict");
    assert!(
        trace.contains("VALUE_CONVERTER failed and errors.tolerance=none"),
        "{trace}"
    );
    assert!(
        trace.contains("serialization error of topic orders"),
        "{trace}"
    );
    assert!(
        trace.contains("record at topic orders partition 0 offset 1"),
        "the trace names the record: {trace}"
    );
    // As in Kafka Connect, a polled batch is converted before `put`, so nothing past the poison
    // record (here: nothing of its batch) reaches the strict sink.
    assert!(!lines(&dir.path().join("strict.txt")).contains(&"good-2".to_owned()));
}

#[test]
fn config_and_status_records_use_kafka_connect_s_formats() {
    use sluice_runtime::state::{State, TargetState};
    use sluice_runtime::storage::config_topic::KafkaConfigStore;
    use sluice_runtime::storage::status_topic::KafkaStatusStore;
    use std::sync::Arc;

    let broker = Broker::start();
    let (settings, runtime, props) = store_client(&broker);
    runtime.block_on(async {
        let configs = KafkaConfigStore::open(Arc::clone(&settings), "connect-configs", -1).await.unwrap();
        configs.put_connector("src", &props, std::slice::from_ref(&props)).await.unwrap();
        configs.put_target_state("src", TargetState::Paused).await.unwrap();
        let snapshot = configs.snapshot().await.unwrap();
        assert_eq!(snapshot.connectors["src"], props);
        assert_eq!(snapshot.tasks["src"], vec![props.clone()]);
        assert_eq!(snapshot.target_states["src"], TargetState::Paused);

        let statuses = KafkaStatusStore::open(Arc::clone(&settings), "connect-status", 5, -1, "127.0.0.1:8083").await.unwrap();
        statuses.put("src", None, State::Running, None, 1).await.unwrap();
        statuses.put("src", Some(0), State::Failed, Some("boom"), 1).await.unwrap();
        let snapshot = statuses.snapshot().await.unwrap();
        assert_eq!(snapshot["status-task-src-0"], json!({"state": "FAILED", "trace": "boom", "worker_id": "127.0.0.1:8083", "generation": 1}));

        // putSafe: a worker of an older generation does not overwrite the new owner's status.
        let other = KafkaStatusStore::open(Arc::clone(&settings), "connect-status", 5, -1, "127.0.0.1:8084").await.unwrap();
        assert!(other.put_safe("src", Some(0), State::Running, None, 2).await.unwrap(), "newer generation");
        assert!(!statuses.put_safe("src", Some(0), State::Unassigned, None, 1).await.unwrap(), "stale");
        assert_eq!(statuses.snapshot().await.unwrap()["status-task-src-0"]["worker_id"], "127.0.0.1:8084");
    });
    let records = broker.read("connect-configs", 4);
    let pairs: Vec<(String, String)> = records
        .iter()
        .map(|r| {
            (
                String::from_utf8_lossy(r.key.as_deref().unwrap()).into_owned(),
                r.text(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        [
            (
                "connector-src".to_owned(),
                r#"{"properties":{"connector.class":"FileStreamSource"}}"#.to_owned()
            ),
            (
                "task-src-0".to_owned(),
                r#"{"properties":{"connector.class":"FileStreamSource"}}"#.to_owned()
            ),
            ("commit-src".to_owned(), r#"{"tasks":1}"#.to_owned()),
            (
                "target-state-src".to_owned(),
                r#"{"state":"PAUSED","state.v2":"PAUSED"}"#.to_owned()
            ),
        ]
    );
    // Three records: the connector, the task, and the task again by the newer worker.
    let status = broker.read("connect-status", 3);
    assert!(status.iter().any(|r| r.key.as_deref() == Some(&b"status-connector-src"[..])
        && r.text() == r#"{"state":"RUNNING","trace":null,"worker_id":"127.0.0.1:8083","generation":1}"#));
}

#[test]
fn internal_topics_are_verified_and_read_incrementally() {
    use sluice_runtime::state::TargetState;
    use sluice_runtime::storage::config_topic::KafkaConfigStore;
    use sluice_runtime::storage::status_topic::KafkaStatusStore;
    use std::sync::Arc;

    let broker = Broker::start();
    broker.create_topic_with(
        "three-partition-configs",
        3,
        &[("cleanup.policy", "compact")],
    );
    broker.create_topic_with("deleting-status", 1, &[("cleanup.policy", "delete")]);
    broker.create_topic_with("deleting-offsets", 1, &[("cleanup.policy", "delete")]);
    let (settings, runtime, props) = store_client(&broker);
    runtime.block_on(async {
        let error = KafkaConfigStore::open(Arc::clone(&settings), "three-partition-configs", -1)
            .await
            .unwrap_err();
        let message = error.message();
        assert!(
            message.contains("three-partition-configs")
                && message.contains("has 3 partitions")
                && message.contains("exactly 1"),
            "{message}"
        );
        let error = KafkaStatusStore::open(Arc::clone(&settings), "deleting-status", 1, -1, "w:1")
            .await
            .unwrap_err();
        let message = error.message();
        assert!(
            message.contains("deleting-status")
                && message.contains("cleanup.policy=delete")
                && message.contains("compact"),
            "{message}"
        );

        // A topic the store creates itself passes; every read continues where the last ended
        // and reports the config offset (last offset + 1; -1 while empty).
        let configs = KafkaConfigStore::open(Arc::clone(&settings), "fresh-configs", -1)
            .await
            .unwrap();
        assert_eq!(configs.snapshot().await.unwrap().offset, -1);
        configs
            .put_connector("src", &props, std::slice::from_ref(&props))
            .await
            .unwrap();
        let snapshot = configs.snapshot().await.unwrap();
        assert_eq!(
            (snapshot.offset, snapshot.tasks.get("src").map(Vec::len)),
            (3, Some(1)),
            "{snapshot:?}"
        );
        configs
            .put_target_state("src", TargetState::Stopped)
            .await
            .unwrap();
        let snapshot = configs.snapshot().await.unwrap();
        assert_eq!(snapshot.offset, 4);
        assert_eq!(snapshot.target_states["src"], TargetState::Stopped);
        assert_eq!(snapshot.connectors["src"], props, "earlier reads are kept");
    });
    let stopped = broker.read("fresh-configs", 4);
    assert_eq!(
        stopped[3].text(),
        r#"{"state":"PAUSED","state.v2":"STOPPED"}"#,
        "STOPPED is written as Kafka Connect writes it"
    );

    // The worker refuses an offset topic that is not compacted, at start, naming it.
    let dir = tempfile::tempdir().unwrap();
    let worker_file = dir.path().join("worker.properties");
    std::fs::write(
        &worker_file,
        std::fs::read_to_string(config(KAFKA_WORKER)).unwrap()
            + "offset.storage.topic=deleting-offsets\n",
    )
    .unwrap();
    let output = std::process::Command::new(support::sluice_bin())
        .args(["standalone", worker_file.to_str().unwrap()])
        .env("SLUICE__BOOTSTRAP_SERVERS", &broker.addr)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "the worker must not start: {stderr}"
    );
    assert!(
        stderr.contains("deleting-offsets") && stderr.contains("cleanup.policy=delete"),
        "{stderr}"
    );
}

/// Debezium's schema history topic as source tasks get it: created with one partition and
/// every record kept, written unkeyed and read back whole, in order, by a later opening; an
/// existing topic that is compacted (which would refuse unkeyed records) or split is refused
/// naming the fix.
#[test]
fn schema_history_topics_keep_every_record_in_order_and_refuse_a_compacted_or_split_topic() {
    use sluice_api::connector::HistoryTopics;
    use sluice_runtime::storage::history_topic::KafkaHistoryTopics;

    let broker = Broker::start();
    broker.create_topic_with("compacted-history", 1, &[("cleanup.policy", "compact")]);
    broker.create_topic_with("split-history", 3, &[("cleanup.policy", "delete")]);
    let (settings, runtime, _) = store_client(&broker);
    let topics = KafkaHistoryTopics::new(settings);
    let none = sluice_api_props::Props::new();
    runtime.block_on(async {
        let message = topics
            .open("compacted-history", &none)
            .await
            .err()
            .expect("a compacted topic is refused")
            .message()
            .to_owned();
        assert!(
            message.contains("compacted-history has cleanup.policy=compact")
                && message.contains("--add-config cleanup.policy=delete,retention.ms=-1"),
            "{message}"
        );
        let message = topics
            .open("split-history", &none)
            .await
            .err()
            .expect("a split topic is refused")
            .message()
            .to_owned();
        assert!(
            message.contains("split-history has 3 partitions")
                && message.contains("schema.history.internal.kafka.topic"),
            "{message}"
        );

        let history = topics.open("schema-history", &none).await.unwrap();
        assert!(history.read_all().await.unwrap().is_empty());
        for record in ["{\"n\":1}", "{\"n\":2}", "{\"n\":3}"] {
            history.append(record.to_owned()).await.unwrap();
        }
        assert_eq!(history.read_all().await.unwrap().len(), 3);
        // The connector's own brokers, as `schema.history.internal.kafka.bootstrap.servers`
        // names them: a fresh reader of the same topic.
        let own = [("bootstrap.servers".to_owned(), broker.addr.clone())].into();
        let again = topics.open("schema-history", &own).await.unwrap();
        again.append("{\"n\":4}".to_owned()).await.unwrap();
        assert_eq!(
            again.read_all().await.unwrap(),
            ["{\"n\":1}", "{\"n\":2}", "{\"n\":3}", "{\"n\":4}"]
        );
    });
    let read = broker.read("schema-history", 4);
    assert!(
        read.iter().all(|r| r.key.is_none() && r.partition == 0),
        "{read:?}"
    );
}

/// What the config/status store tests drive the stores with: Kafka client settings for the
/// test broker, a runtime, and a connector config to store.
fn store_client(
    broker: &Broker,
) -> (
    std::sync::Arc<sluice_runtime::KafkaSettings>,
    tokio::runtime::Runtime,
    sluice_api_props::Props,
) {
    let settings = sluice_runtime::KafkaSettings::from_worker(
        &Default::default(),
        std::slice::from_ref(&broker.addr),
    )
    .unwrap();
    let props = [("connector.class".to_owned(), "FileStreamSource".to_owned())].into();
    (
        std::sync::Arc::new(settings),
        tokio::runtime::Runtime::new().unwrap(),
        props,
    )
}

mod sluice_api_props {
    pub(crate) type Props = std::collections::BTreeMap<String, String>;
}

#[test]
fn a_source_record_that_fails_conversion_is_dead_lettered_and_the_stream_goes_on() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source.properties");
    // ByteArrayConverter cannot serialize the string lines FileStreamSource emits.
    std::fs::write(
        &source,
        "name=src\nconnector.class=FileStreamSource\nfile=in.txt\ntopic=lines\n\
         value.converter=org.apache.kafka.connect.converters.ByteArrayConverter\n\
         errors.tolerance=all\nerrors.deadletterqueue.topic.name=src-dlq\n\
         errors.deadletterqueue.context.headers.enable=true\n",
    )
    .unwrap();
    append_lines(&dir.path().join("in.txt"), ["a".to_owned(), "b".to_owned()]);
    let worker = start(
        dir.path(),
        &broker,
        &[&config(KAFKA_WORKER), source.to_str().unwrap()],
        &[],
    );
    let dead = broker.read("src-dlq", 2);
    assert_eq!([dead[0].text(), dead[1].text()], [r#""a""#, r#""b""#]);
    assert_eq!(
        dead[0].header("__connect.errors.stage"),
        Some("VALUE_CONVERTER")
    );
    assert_eq!(dead[0].header("__connect.errors.topic"), Some("lines"));
    assert_eq!(
        dead[0].header("__connect.errors.connector.name"),
        Some("src")
    );
    assert!(
        dead[0]
            .header("__connect.errors.exception.message")
            .unwrap()
            .contains("ByteArrayConverter is not compatible")
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
    let offsets = std::fs::read_to_string(dir.path().join("connect.offsets")).unwrap();
    assert!(
        offsets.contains("\"position\": 4"),
        "skipped records still advance the offset:\n{offsets}"
    );
}

/// Tansu difference, shown rather than skipped: after an offset commit made outside the group
/// (what PATCH/DELETE do on a STOPPED sink, and what Apache Kafka accepts for a group with no
/// members), the group's next member was not given its partitions by Tansu within 30 s, so
/// this test checks the committed offsets the REST API reads and writes, not a re-consumption
/// after such a commit. A stop and resume *without* one does resume consuming (checked first).
#[test]
fn sink_offsets_are_the_consumer_group_s_and_can_be_altered_and_reset_when_stopped() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    broker.create_topic("orders", 1);
    produce_strings(&broker, "orders", (0..3).map(|i| format!("o-{i}")));
    let sink = sink_config(dir.path(), "snk", "");
    let env = [("SLUICE__OFFSET_FLUSH_INTERVAL_MS", "200")];
    let worker = start(dir.path(), &broker, &[&config(KAFKA_WORKER), &sink], &env);
    let out = dir.path().join("snk.txt");
    wait_until("three records arrive", Duration::from_secs(30), || {
        lines(&out).len() == 3
    });
    let committed = |offset: i64| json!({"offsets": [{"partition": {"kafka_topic": "orders", "kafka_partition": 0}, "offset": {"kafka_offset": offset}}]});
    wait_until(
        "the group commits offset 3",
        Duration::from_secs(30),
        || worker.get("/connectors/snk/offsets").1 == committed(3),
    );

    worker.stop_connector("snk");
    assert_eq!(worker.put("/connectors/snk/resume", None).0, 202);
    produce_strings(&broker, "orders", ["o-3".to_owned()]);
    wait_until(
        "consuming resumes after stop/resume",
        Duration::from_secs(30),
        || lines(&out).len() == 4,
    );
    assert_eq!(
        lines(&out),
        ["o-0", "o-1", "o-2", "o-3"],
        "resumed at the committed offset: nothing repeated"
    );
    wait_until(
        "the group commits offset 4",
        Duration::from_secs(30),
        || worker.get("/connectors/snk/offsets").1 == committed(4),
    );

    let rewind = json!({"offsets": [{"partition": {"kafka_topic": "orders", "kafka_partition": 0}, "offset": {"kafka_offset": 1}}]});
    let (code, body) = worker.patch("/connectors/snk/offsets", &rewind);
    assert_eq!(code, 400, "a running sink's offsets cannot change: {body}");
    worker.stop_connector("snk");
    let (code, body) = worker.patch("/connectors/snk/offsets", &rewind);
    assert_eq!(code, 200, "{body}");
    assert_eq!(worker.get("/connectors/snk/offsets").1, committed(1));
    let (code, body) = worker.delete("/connectors/snk/offsets");
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        worker.get("/connectors/snk/offsets").1,
        committed(0),
        "reset to the earliest offset"
    );
    assert_eq!(worker.put("/connectors/snk/resume", None).0, 202);
    wait_until(
        "the sink reads the topic again from the start",
        Duration::from_secs(60),
        || lines(&out).len() == 8,
    );
    assert_eq!(lines(&out)[4..], ["o-0", "o-1", "o-2", "o-3"]);

    wait_until(
        "the group commits offset 4 again",
        Duration::from_secs(30),
        || worker.get("/connectors/snk/offsets").1 == committed(4),
    );
    worker.stop_connector("snk");
    let (code, body) = worker.patch("/connectors/snk/offsets", &committed(3));
    assert_eq!(code, 200, "{body}");
    assert_eq!(worker.put("/connectors/snk/resume", None).0, 202);
    wait_until(
        "the sink reads again from the altered offset",
        Duration::from_secs(60),
        || lines(&out).len() == 9,
    );
    assert_eq!(lines(&out)[8], "o-3");
}

/// A second worker joining a sink's group makes the first give partitions up. Before it does,
/// it flushes what it read from them and commits their offsets (Kafka Connect's
/// `onPartitionsRevoked`), so their next owner starts after them: no record is read twice
/// although the flush interval (10 min here) never came. Without that flush the new owner
/// would read everything again from the start.
#[test]
fn a_rebalance_flushes_and_commits_before_partitions_move_so_nothing_is_read_twice() {
    let broker = Broker::start();
    broker.create_topic("orders", 2);
    let produce = |range: std::ops::Range<usize>| {
        produce_strings(&broker, "orders", range.map(|i| format!("o-{i}")));
    };
    let env = [("SLUICE__OFFSET_FLUSH_INTERVAL_MS", "600000")];
    let first_dir = tempfile::tempdir().unwrap();
    let second_dir = tempfile::tempdir().unwrap();
    let first_out = first_dir.path().join("snk.txt");
    let second_out = second_dir.path().join("snk.txt");
    let everything = || {
        let mut all = lines(&first_out);
        all.extend(lines(&second_out));
        all
    };

    let sink_worker = |dir: &Path| {
        let sink = sink_config(dir, "snk", "");
        start(dir, &broker, &[&config(KAFKA_WORKER), &sink], &env)
    };

    produce(0..100);
    let first = sink_worker(first_dir.path());
    first.wait_until(
        "the first worker has read all",
        Duration::from_secs(60),
        || lines(&first_out).len() == 100,
    );

    let second = sink_worker(second_dir.path());
    first.wait_for_log(
        "the first worker gives its partitions up",
        "flushing them before giving them up",
    );
    second.wait_until(
        "the second worker is given a partition",
        Duration::from_secs(60),
        || {
            second
                .logs()
                .contains("partitions assigned by a rebalance partitions=[\"orders-")
        },
    );
    produce(100..200);
    second.wait_until("every record is read", Duration::from_secs(60), || {
        everything().len() >= 200
    });
    let mut all = everything();
    all.sort();
    let mut expected: Vec<String> = (0..200).map(|i| format!("o-{i}")).collect();
    expected.sort();
    assert_eq!(all, expected, "every record once, across both workers");
    assert!(
        !lines(&second_out).is_empty(),
        "the second worker took over a partition"
    );
    for worker in [first, second] {
        let (exit, logs) = worker.terminate();
        assert!(exit.success(), "{logs}");
    }
}

/// A sink may start before its topic exists (its source has not produced yet, and Tansu, like a
/// broker with `auto.create.topics.enable=false`, does not create it on subscription). The
/// consumer then reports "unknown topic"; the sink waits for the topic instead of failing.
#[test]
fn a_sink_whose_topic_does_not_exist_yet_waits_for_it() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let worker = start(
        dir.path(),
        &broker,
        &[&config(KAFKA_WORKER), &config(SINK)],
        &[("RUST_LOG", "info,sluice_runtime::pipeline::kafka=debug")],
    );
    worker.wait_for_log(
        "the consumer to find the topic missing",
        "a subscribed topic does not exist yet",
    );
    broker.create_topic("connect-test", 1);
    produce_strings(&broker, "connect-test", (0..5).map(|i| format!("late-{i}")));
    let sink = dir.path().join("test.sink.txt");
    wait_until(
        "the late topic's records arrive",
        Duration::from_secs(30),
        || lines(&sink).len() == 5,
    );
    assert_eq!(
        lines(&sink),
        (0..5).map(|i| format!("late-{i}")).collect::<Vec<_>>()
    );
    let (status, body) = worker.get("/connectors/local-file-sink/status");
    assert_eq!(status, 200);
    assert!(all_tasks(&body, "RUNNING"), "{body}");
}
