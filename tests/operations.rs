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

#[test]
fn a_file_that_blocks_holds_only_its_own_task_and_the_worker_still_stops() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // FIFOs nobody opens from the other side: opening them blocks for good.
    for fifo in ["out-1.fifo", "out-2.fifo", "in.fifo"] {
        let made = std::process::Command::new("mkfifo")
            .arg(d.join(fifo))
            .status()
            .unwrap();
        assert!(made.success());
    }
    write(
        d,
        "w.properties",
        "offset.storage.file.filename=connect.offsets\noffset.flush.interval.ms=200\n\
         task.shutdown.graceful.timeout.ms=1000\n",
    );
    let worker = Worker::start(d, &["w.properties"]);
    let create = |name: &str, config: serde_json::Value| {
        let (code, body) = worker.post(
            "/connectors",
            Some(&serde_json::json!({"name": name, "config": config})),
        );
        assert_eq!(code, 201, "{body}");
    };
    // Two sinks and a source stuck in their files (on the 2-core machine, two of these froze
    // every async thread when file calls ran on them).
    for (name, fifo) in [("stuck-1", "out-1.fifo"), ("stuck-2", "out-2.fifo")] {
        create(
            name,
            serde_json::json!({"connector.class": "FileStreamSink", "file": d.join(fifo), "topics": "stuck"}),
        );
    }
    create(
        "stuck-src",
        serde_json::json!({"connector.class": "FileStreamSource", "file": d.join("in.fifo"), "topic": "stuck"}),
    );
    // A healthy pipeline beside them still flows, and REST answers.
    create(
        "ok-snk",
        serde_json::json!({"connector.class": "FileStreamSink", "file": d.join("ok.out"), "topics": "ok"}),
    );
    create(
        "ok-src",
        serde_json::json!({"connector.class": "FileStreamSource", "file": d.join("ok.txt"), "topic": "ok"}),
    );
    let expected: Vec<String> = (0..1000).map(|i| format!("ok-{i}")).collect();
    append_lines(&d.join("ok.txt"), expected.clone());
    wait_until(
        "the healthy pipeline to deliver",
        Duration::from_secs(30),
        || lines(&d.join("ok.out")).len() == expected.len(),
    );
    assert_eq!(lines(&d.join("ok.out")), expected);
    assert_eq!(worker.get("/health").0, 200);

    // Deleting a stuck connector returns: its task is abandoned after the grace period.
    assert_eq!(worker.delete("/connectors/stuck-2").0, 204);
    assert_eq!(worker.get("/connectors/stuck-2").0, 404);

    let stopping = std::time::Instant::now();
    let (exit, logs) = worker.terminate();
    let took = stopping.elapsed();
    assert!(exit.success(), "{logs}");
    assert!(
        logs.contains("abandoned"),
        "the blocked tasks are named: {logs}"
    );
    // Sources' grace, then sinks' grace, then a second for blocked calls: bounded.
    assert!(took < Duration::from_secs(15), "the stop took {took:?}");
    eprintln!("stopped in {took:?} with three tasks blocked in FIFOs");
}

/// Idle and half-open REST connections cannot exhaust the worker's descriptors: beyond the
/// cap they wait in the listen backlog, idle ones are closed after `rest.idle.timeout.ms`,
/// and the offset store keeps committing. (Before the cap and timeouts, 1,100 idle
/// connections under a 1,024 limit made REST unreachable and commits failed with EMFILE.)
#[test]
fn idle_rest_connections_cannot_starve_rest_or_the_offset_store() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "w.properties",
        "offset.storage.file.filename=connect.offsets\noffset.flush.interval.ms=100\n\
         rest.idle.timeout.ms=1000\n",
    );
    write(
        d,
        "src.properties",
        "name=src\nconnector.class=FileStreamSource\nfile=in.txt\ntopic=t\n",
    );
    write(
        d,
        "snk.properties",
        "name=snk\nconnector.class=FileStreamSink\nfile=out.txt\ntopics=t\n",
    );
    let worker = Worker::start_with_open_file_limit(
        d,
        &["w.properties", "src.properties", "snk.properties"],
        &[],
        256,
    );
    let logs = worker.logs();
    assert!(
        logs.contains("open_file_limit=256") && logs.contains("rest_max_connections=128"),
        "the cap is half the open-file limit and says so: {logs}"
    );
    let addr = worker.rest.trim_start_matches("http://").to_owned();
    // Twice the limit: silent clients that never send a byte.
    let idle: Vec<std::net::TcpStream> = (0..512)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();

    // Data still flows and its offsets are committed while they hang on.
    let expected = support::numbered(0..2000);
    append_lines(&d.join("in.txt"), expected.clone());
    worker.wait_until("the sink has every line", Duration::from_secs(30), || {
        lines(&d.join("out.txt")).len() == expected.len()
    });
    let committed_end = std::fs::metadata(d.join("in.txt")).unwrap().len();
    worker.wait_until(
        "the offset of the last line is committed",
        Duration::from_secs(30),
        || {
            std::fs::read_to_string(d.join("connect.offsets"))
                .ok()
                .and_then(|o| serde_json::from_str::<serde_json::Value>(&o).ok())
                .is_some_and(|o| o["offsets"][0]["value"]["position"] == committed_end)
        },
    );
    // REST answers once the idle connections ahead of it have timed out (512 / 128 slots,
    // one second each).
    assert_eq!(worker.get("/health").0, 200);
    // The server closed the connections it accepted: a read ends (EOF or reset) instead of
    // blocking past the test's own timeout.
    let mut first = idle.into_iter().next().unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut buf = [0u8; 16];
    match first.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("an idle connection got {n} bytes instead of being closed"),
        Err(e) => assert!(
            !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "the idle connection was not closed: {e}"
        ),
    }
    // A client that sends its headers but not the body it announced is answered 408.
    let mut trickler = std::net::TcpStream::connect(&addr).unwrap();
    std::io::Write::write_all(
        &mut trickler,
        b"PUT /connectors/src/config HTTP/1.1\r\nHost: sluice\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{",
    )
    .unwrap();
    trickler
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut answer = String::new();
    let _ = trickler.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 408") && answer.contains(r#""error_code":408"#),
        "{answer}"
    );
    let logs = worker.logs();
    assert!(
        !logs.contains("Too many open files") && !logs.contains("os error 24"),
        "no descriptor ran out: {logs}"
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}
