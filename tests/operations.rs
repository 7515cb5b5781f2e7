//! Operating a worker: failed tasks are isolated and reported, logs can be JSON, shutdown
//! is graceful.

mod support;

use std::time::Duration;

use support::{Worker, all_tasks, append_lines, lines, wait_until};

fn write(dir: &std::path::Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn a_failed_task_reports_its_trace_and_other_connectors_keep_flowing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "w.properties",
        "offset.storage.file.filename=connect.offsets\noffset.flush.interval.ms=200\n",
    );
    write(
        d,
        "good-src.properties",
        "name=good-src\nconnector.class=FileStreamSource\nfile=good.txt\ntopic=good\n",
    );
    write(
        d,
        "good-snk.properties",
        "name=good-snk\nconnector.class=FileStreamSink\nfile=good.out\ntopics=good\n",
    );
    write(
        d,
        "bad-snk.properties",
        "name=bad-snk\nconnector.class=FileStreamSink\nfile=no-such-dir/bad.out\ntopics=bad\n",
    );
    let worker = Worker::start(
        d,
        &[
            "w.properties",
            "good-src.properties",
            "good-snk.properties",
            "bad-snk.properties",
        ],
    );

    let status =
        worker.wait_for_status("bad-snk", "the bad sink fails", |s| all_tasks(s, "FAILED"));
    let trace = status["tasks"][0]["trace"].as_str().unwrap();
    assert!(
        trace.contains("cannot open sink file no-such-dir/bad.out for appending (check `file`)"),
        "{trace}"
    );
    assert_eq!(
        worker.get("/connectors/bad-snk/tasks/0/status").1["trace"],
        status["tasks"][0]["trace"]
    );
    assert!(
        status["tasks"][0]["worker_id"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );

    append_lines(
        &d.join("good.txt"),
        ["still".to_owned(), "flowing".to_owned()],
    );
    wait_until(
        "the healthy pipeline keeps flowing",
        Duration::from_secs(20),
        || lines(&d.join("good.out")) == ["still", "flowing"],
    );
    assert!(all_tasks(
        &worker.get("/connectors/good-src/status").1,
        "RUNNING"
    ));

    // Fixing the cause and restarting the task brings it back.
    std::fs::create_dir(d.join("no-such-dir")).unwrap();
    assert_eq!(
        worker.post("/connectors/bad-snk/tasks/0/restart", None).0,
        204
    );
    worker.wait_for_status("bad-snk", "the sink recovers", |s| all_tasks(s, "RUNNING"));
    let (code, status) = worker.post(
        "/connectors/bad-snk/restart?includeTasks=true&onlyFailed=true",
        None,
    );
    assert_eq!(code, 202);
    assert_eq!(
        status["tasks"][0]["state"], "RUNNING",
        "nothing had failed, so nothing restarted"
    );
}

#[test]
fn json_logs_are_one_object_per_line_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "w.properties",
        "offset.storage.file.filename=connect.offsets\n",
    );
    // `--log-format` is global, so it may follow the subcommand.
    let worker = Worker::spawn(d, &["--log-format", "json", "w.properties"], &[]);
    worker.wait_for_log("start-up", "worker started");
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
    for line in logs.lines() {
        let record: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            record["level"].is_string() && record["fields"]["message"].is_string(),
            "{line}"
        );
    }
    assert!(logs.contains(r#""message":"stopped""#), "{logs}");
}
