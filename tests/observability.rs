//! `GET /metrics`: Kafka Connect's metric names (as the Prometheus JMX exporter renders them)
//! with figures that agree with what really flowed, parsed by a Prometheus text parser.

mod support;

use std::path::Path;
use std::time::Duration;

use support::{Worker, append_lines, lines, wait_until};

const SOURCE: &str = "kafka_connect_source_task_metrics";
const SINK: &str = "kafka_connect_sink_task_metrics";
const TASK: &str = "kafka_connect_connector_task_metrics";
const ERRORS: &str = "kafka_connect_task_error_metrics";
const WORKER: &str = "kafka_connect_connect_worker_metrics";

/// A file source whose every line is cast to an int32, tolerating lines that are not numbers,
/// and a file sink of its topic, on the embedded pipeline.
fn write_configs(dir: &Path) -> Vec<String> {
    let files = [
        (
            "worker.properties",
            "offset.storage.file.filename=connect.offsets\noffset.flush.interval.ms=200\n",
        ),
        (
            "numbers.properties",
            "name=numbers\nconnector.class=FileStreamSource\nfile=in.txt\ntopic=numbers\n\
             transforms=cast\ntransforms.cast.type=org.apache.kafka.connect.transforms.Cast$Value\n\
             transforms.cast.spec=int32\nerrors.tolerance=all\nerrors.log.enable=true\n",
        ),
        (
            "out.properties",
            "name=out\nconnector.class=FileStreamSink\nfile=out.txt\ntopics=numbers\n",
        ),
    ];
    files
        .iter()
        .map(|(name, text)| {
            std::fs::write(dir.join(name), text).unwrap();
            dir.join(name).to_string_lossy().into_owned()
        })
        .collect()
}

fn metric(group: &str, name: &str) -> String {
    format!("{group}_{name}")
}

#[test]
fn counters_agree_with_what_flowed_through_a_file_pipeline_with_skipped_records() {
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs(dir.path());
    // 300 lines, every tenth not a number: 270 pass the cast, 30 are skipped.
    let input: Vec<String> = (1..=300)
        .map(|i| {
            if i % 10 == 0 {
                format!("x{i}")
            } else {
                i.to_string()
            }
        })
        .collect();
    append_lines(&dir.path().join("in.txt"), input);
    let worker = Worker::start(dir.path(), &args);
    wait_until("the sink holds 270 lines", Duration::from_secs(30), || {
        lines(&dir.path().join("out.txt")).len() == 270
    });
    // Everything polled is committed once the sink flushed it.
    let mut scrape = worker.scrape();
    wait_until(
        "the source's oldest uncommitted record is committed",
        Duration::from_secs(30),
        || {
            scrape = worker.scrape();
            scrape.task("sluice_source_task_committed_offset_age_ms", "numbers", 0) == 0.0
                && scrape.task(&metric(SINK, "offset_commit_completion_total"), "out", 0) >= 1.0
        },
    );
    let source = |name: &str| scrape.task(name, "numbers", 0);
    let sink = |name: &str| scrape.task(name, "out", 0);
    let polled = source(&metric(SOURCE, "source_record_poll_total"));
    let written = source(&metric(SOURCE, "source_record_write_total"));
    let skipped = source(&metric(ERRORS, "total_records_skipped"));
    assert_eq!(
        (polled, written, skipped),
        (300.0, 270.0, 30.0),
        "{}",
        scrape.text
    );
    assert_eq!(
        polled,
        written + skipped,
        "records polled = written + filtered"
    );
    assert_eq!(source(&metric(ERRORS, "total_record_errors")), 30.0);
    assert_eq!(source(&metric(ERRORS, "total_errors_logged")), 30.0);
    assert_eq!(source(&metric(ERRORS, "total_record_failures")), 0.0);
    assert!(source(&metric(ERRORS, "last_error_timestamp")) > 0.0);
    assert_eq!(source(&metric(SOURCE, "source_record_active_count")), 0.0);
    assert!(source(&metric(SOURCE, "poll_batch_max_time_ms")) >= 0.0);
    assert!(source(&metric(SOURCE, "source_record_poll_rate")) > 0.0);
    assert!(source(&metric(TASK, "batch_size_max")) >= 1.0);
    assert!(source(&metric(TASK, "running_ratio")) > 0.0);
    assert_eq!(sink(&metric(SINK, "sink_record_read_total")), 270.0);
    assert_eq!(sink(&metric(SINK, "sink_record_send_total")), 270.0);
    assert_eq!(sink(&metric(SINK, "sink_record_active_count")), 0.0);
    assert_eq!(
        sink(&metric(ERRORS, "deadletterqueue_produce_requests")),
        0.0
    );
    assert!(
        scrape
            .text
            .contains("sluice_sink_task_end_to_end_latency_ms_count{connector=\"out\",task=\"0\"}"),
        "{}",
        scrape.text
    );
    let worker_figure = |name: &str| {
        scrape
            .value(&metric(WORKER, name), &[])
            .unwrap_or_else(|| panic!("no {name}:\n{}", scrape.text))
    };
    assert_eq!(worker_figure("connector_count"), 2.0);
    assert_eq!(worker_figure("task_count"), 2.0);
    assert_eq!(worker_figure("connector_startup_success_total"), 2.0);
    assert_eq!(worker_figure("task_startup_success_total"), 2.0);
    assert_eq!(worker_figure("task_startup_failure_total"), 0.0);
    assert_eq!(
        scrape.value(
            "kafka_connect_connector_metrics_status",
            &[("connector", "numbers"), ("status", "running")]
        ),
        Some(1.0)
    );

    // KIP-558: the topics each connector used; a reset empties them until they are used again.
    assert_eq!(
        worker.get("/connectors/numbers/topics").1,
        serde_json::json!({"numbers": {"topics": ["numbers"]}})
    );
    assert_eq!(
        worker.get("/connectors/out/topics").1,
        serde_json::json!({"out": {"topics": ["numbers"]}})
    );
    assert_eq!(
        worker.get("/connectors/nobody/topics").1,
        serde_json::json!({"nobody": {"topics": []}}),
        "as in Kafka Connect, a connector that does not exist has none"
    );
    assert_eq!(worker.put("/connectors/numbers/topics/reset", None).0, 202);
    assert_eq!(
        worker.get("/connectors/numbers/topics").1,
        serde_json::json!({"numbers": {"topics": []}})
    );
    append_lines(&dir.path().join("in.txt"), ["301".to_owned()]);
    wait_until(
        "the source reports its topic again",
        Duration::from_secs(30),
        || {
            worker.get("/connectors/numbers/topics").1["numbers"]["topics"]
                == serde_json::json!(["numbers"])
        },
    );
    wait_until("the sink holds 271 lines", Duration::from_secs(30), || {
        lines(&dir.path().join("out.txt")).len() == 271
    });

    // `sluice status` prints the table and exits 0 while nothing has failed, 1 once a task
    // has FAILED.
    let status = |url: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["status", "--url", url])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = status(&worker.rest);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.starts_with("CONNECTOR"), "{stdout}");
    let numbers = stdout.lines().find(|l| l.starts_with("numbers")).unwrap();
    assert!(
        numbers.contains("RUNNING") && numbers.contains("301"),
        "{stdout}"
    );
    let broken = serde_json::json!({"name": "broken", "config": {
        "connector.class": "FileStreamSink", "topics": "numbers",
        "file": dir.path().join("missing-dir/out.txt").to_str().unwrap(),
    }});
    assert_eq!(worker.post("/connectors", Some(&broken)).0, 201);
    worker.failed_trace("broken");
    let (code, stdout, stderr) = status(&worker.rest);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("broken") && l.contains("FAILED")),
        "{stdout}"
    );
    assert!(
        stderr.contains("a connector or task has FAILED"),
        "{stderr}"
    );
    assert_eq!(worker.delete("/connectors/broken").0, 204);
    let (code, _, stderr) = status("http://127.0.0.1:1");
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("is a worker listening at --url?"),
        "{stderr}"
    );

    // Paused, the task says so and its pause ratio grows.
    assert_eq!(worker.put("/connectors/numbers/pause", None).0, 202);
    wait_until("the pause shows", Duration::from_secs(30), || {
        let scrape = worker.scrape();
        scrape.value(
            &metric(TASK, "status"),
            &[
                ("connector", "numbers"),
                ("task", "0"),
                ("status", "paused"),
            ],
        ) == Some(1.0)
            && scrape.task(&metric(TASK, "pause_ratio"), "numbers", 0) > 0.0
    });
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// `topic.tracking.enable=false` turns the topics API off, `topic.tracking.allow.reset=false`
/// only its reset, both with Kafka Connect's 403 messages.
#[test]
fn topic_tracking_can_be_turned_off_or_kept_from_resets() {
    for (settings, get, reset) in [
        ("topic.tracking.enable=false\n", 403, 403),
        ("topic.tracking.allow.reset=false\n", 200, 403),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let worker_props = dir.path().join("worker.properties");
        std::fs::write(
            &worker_props,
            format!("offset.storage.file.filename=connect.offsets\n{settings}"),
        )
        .unwrap();
        let worker = Worker::start(dir.path(), &[worker_props.to_str().unwrap()]);
        let (code, body) = worker.get("/connectors/any/topics");
        assert_eq!(code, get, "{settings}: {body}");
        let (code, body) = worker.put("/connectors/any/topics/reset", None);
        assert_eq!(code, reset, "{settings}: {body}");
        let expected = if get == 403 {
            "Topic tracking is disabled."
        } else {
            "Topic tracking reset is disabled."
        };
        assert_eq!(body["message"], expected, "{body}");
        let (exit, logs) = worker.terminate();
        assert!(exit.success(), "{logs}");
    }
}
