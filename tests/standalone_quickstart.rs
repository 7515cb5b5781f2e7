//! Kafka Connect's quickstart trio (worker, FileStreamSource, FileStreamSink), the files in
//! `configs/quickstart/` unchanged but for `bootstrap.servers` removed, on the embedded
//! direct pipeline. The REST port and offsets file are moved per test through the documented
//! `SLUICE__…` environment overrides, so tests can run side by side.

mod support;

use std::path::Path;
use std::time::Duration;

use support::{Worker, append_lines, assert_replays_only, config, lines, numbered, wait_until};

const WORKER: &str = "quickstart/connect-standalone.properties";

fn start_trio(dir: &Path, source: &str, sink: &str) -> Worker {
    Worker::start(dir, &[&config(WORKER), &config(source), &config(sink)])
}

fn wait_for_sink(dir: &Path, count: usize) {
    let sink = dir.join("test.sink.txt");
    wait_until(
        &format!("the sink holds {count} lines"),
        Duration::from_secs(60),
        || lines(&sink).len() >= count,
    );
}

#[test]
fn lines_flow_in_order_exactly_once_and_a_clean_restart_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("test.txt");
    append_lines(&source, numbered(0..3));
    let worker = start_trio(
        dir.path(),
        "quickstart/connect-file-source.properties",
        "quickstart/connect-file-sink.properties",
    );
    append_lines(&source, numbered(3..1000));
    wait_for_sink(dir.path(), 1000);
    assert_eq!(lines(&dir.path().join("test.sink.txt")), numbered(0..1000));

    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "clean stop failed:\n{logs}");
    let offsets = std::fs::read_to_string(dir.path().join("connect.offsets")).unwrap();
    assert!(
        offsets.contains("\"position\": 12000"),
        "the clean stop committed every line:\n{offsets}"
    );

    append_lines(&source, numbered(1000..1500));
    let worker = start_trio(
        dir.path(),
        "quickstart/connect-file-source.properties",
        "quickstart/connect-file-sink.properties",
    );
    wait_for_sink(dir.path(), 1500);
    assert!(worker.logs().contains("resuming from committed offset"));
    drop(worker);
    assert_eq!(
        lines(&dir.path().join("test.sink.txt")),
        numbered(0..1500),
        "no line lost or repeated"
    );
}

#[test]
fn kill_9_mid_stream_loses_no_line_and_only_replays_from_the_last_commit() {
    let dir = tempfile::tempdir().unwrap();
    let source_path = dir.path().join("test.txt");
    let sink_path = dir.path().join("test.sink.txt");
    let total = 100_000;
    let source = numbered(0..total);
    // Offsets are committed every second, so the kills land between commits with data in flight.
    let env = [("SLUICE__OFFSET_FLUSH_INTERVAL_MS", "1000")];
    let args = [
        config(WORKER),
        config("quickstart/connect-file-source.properties"),
        config("quickstart/connect-file-sink.properties"),
    ];
    let chunk = total / 4;
    for round in 0..3 {
        append_lines(
            &source_path,
            source[round * chunk..(round + 1) * chunk].to_vec(),
        );
        let worker = Worker::start_with_env(dir.path(), &args, &env);
        let before = lines(&sink_path).len();
        wait_until("the sink to grow", Duration::from_secs(60), || {
            lines(&sink_path).len() > before
        });
        worker.kill9();
    }
    append_lines(&source_path, source[3 * chunk..].to_vec());
    let worker = Worker::start_with_env(dir.path(), &args, &env);
    let last = source.last().unwrap().clone();
    wait_until(
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

    // After the clean stop, a restart adds nothing.
    let before = lines(&sink_path);
    append_lines(&source_path, ["after-restart".to_owned()]);
    let worker = Worker::start_with_env(dir.path(), &args, &env);
    wait_until("the new line arrives", Duration::from_secs(30), || {
        lines(&sink_path).len() > before.len()
    });
    drop(worker);
    let after = lines(&sink_path);
    assert_eq!(after[..before.len()], before[..]);
    assert_eq!(
        after[before.len()..],
        ["after-restart".to_owned()],
        "nothing but the new line was added"
    );
}

#[test]
fn a_clean_stop_under_load_with_the_default_flush_interval_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let source_path = dir.path().join("test.txt");
    let sink_path = dir.path().join("test.sink.txt");
    let total = 1_000_000;
    let source = numbered(0..total);
    append_lines(&source_path, source.clone());
    // Kafka Connect's default: nothing is committed periodically during the test, so only
    // the stops themselves can make what was delivered durable.
    let env = [("SLUICE__OFFSET_FLUSH_INTERVAL_MS", "60000")];
    let args = [
        config(WORKER),
        config("quickstart/connect-file-source.properties"),
        config("quickstart/connect-file-sink.properties"),
    ];
    for signal in ["HUP", "TERM"] {
        let worker = Worker::start_with_env(dir.path(), &args, &env);
        let before = lines(&sink_path).len();
        wait_until(
            "the stream to be under way",
            Duration::from_secs(60),
            || lines(&sink_path).len() > before + 50_000,
        );
        let (exit, logs) = worker.stop_with(signal);
        assert!(exit.success(), "SIG{signal} did not stop cleanly:\n{logs}");
        let stopped_at = lines(&sink_path).len();
        assert!(
            stopped_at < total,
            "the copy finished before SIG{signal}: the test needs a bigger source"
        );
        assert_eq!(
            lines(&sink_path),
            source[..stopped_at],
            "after SIG{signal}: nothing repeated, nothing missing"
        );
    }
    let worker = Worker::start_with_env(dir.path(), &args, &env);
    let last = source.last().unwrap().clone();
    wait_until("the last line", Duration::from_secs(120), || {
        lines(&sink_path).last() == Some(&last)
    });
    drop(worker);
    assert_eq!(
        lines(&sink_path),
        source,
        "two clean stops under load repeated no line"
    );
}

fn connector_configs(worker: &Worker) -> Vec<serde_json::Value> {
    ["local-file-source", "local-file-sink"]
        .iter()
        .map(|name| worker.get(&format!("/connectors/{name}/config")).1)
        .collect()
}

#[test]
fn toml_yaml_and_json_forms_behave_like_the_properties_files() {
    let reference = {
        let dir = tempfile::tempdir().unwrap();
        let worker = start_trio(
            dir.path(),
            "quickstart/connect-file-source.properties",
            "quickstart/connect-file-sink.properties",
        );
        connector_configs(&worker)
    };
    for (source, sink) in [
        (
            "quickstart/connect-file-source.toml",
            "quickstart/connect-file-sink.toml",
        ),
        (
            "quickstart/connect-file-source.yaml",
            "quickstart/connect-file-sink.yaml",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let source_path = dir.path().join("test.txt");
        append_lines(&source_path, numbered(0..100));
        let worker = start_trio(dir.path(), source, sink);
        assert_eq!(
            connector_configs(&worker),
            reference,
            "{source} + {sink} read as the same settings"
        );
        wait_for_sink(dir.path(), 100);
        let (exit, _) = worker.terminate();
        assert!(exit.success());
        append_lines(&source_path, numbered(100..150));
        let worker = start_trio(dir.path(), source, sink);
        wait_for_sink(dir.path(), 150);
        drop(worker);
        assert_eq!(
            lines(&dir.path().join("test.sink.txt")),
            numbered(0..150),
            "{source} + {sink}"
        );
    }
    // The REST body form ({"name","config"}) with the full class name works as a file too.
    let dir = tempfile::tempdir().unwrap();
    append_lines(&dir.path().join("test.txt"), numbered(0..10));
    let worker = start_trio(
        dir.path(),
        "quickstart/connect-file-source.properties",
        "quickstart/connect-file-sink.json",
    );
    wait_for_sink(dir.path(), 10);
    assert_eq!(
        worker.get("/connectors/local-file-sink/config").1["connector.class"],
        "org.apache.kafka.connect.file.FileStreamSinkConnector"
    );
}

#[test]
fn a_transform_routes_records_and_the_json_sink_records_topic_key_value_and_headers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("source.properties"),
        "name=src\nconnector.class=FileStreamSource\nfile=in.txt\ntopic=connect-test\n\
         transforms=route\ntransforms.route.type=org.apache.kafka.connect.transforms.RegexRouter\n\
         transforms.route.regex=connect-(.*)\ntransforms.route.replacement=routed-$1\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("sink.properties"),
        "name=oracle\nconnector.class=file\nfile=out.jsonl\nformat=json\ntopics.regex=routed-.*\n",
    )
    .unwrap();
    append_lines(&dir.path().join("in.txt"), ["a".to_owned(), "b".to_owned()]);
    let _worker = Worker::start(
        dir.path(),
        &[&config(WORKER), "source.properties", "sink.properties"],
    );
    let out = dir.path().join("out.jsonl");
    wait_until("both records arrive", Duration::from_secs(20), || {
        lines(&out).len() == 2
    });
    let records: Vec<serde_json::Value> = lines(&out)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records[0]["topic"], "routed-test");
    assert_eq!(records[0]["value"], "a");
    assert_eq!(records[0]["key"], serde_json::Value::Null);
    assert_eq!(records[1]["offset"], 1);
    assert!(records[0]["timestamp"].is_i64());
    assert_eq!(records[0]["headers"], serde_json::json!([]));
}
