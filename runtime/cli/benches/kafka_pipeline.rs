//! Benchmark: file → Kafka (a Tansu broker on loopback, in-memory storage) → file through one
//! standalone worker, with the unchanged quickstart converters (JsonConverter, schemas on).
//! Prints lines/s, produce latency p50/p99 (enqueue → broker acknowledgement, measured inside
//! the worker) and peak RSS; asserts nothing.
//!
//!     cargo bench -p sluice --bench kafka_pipeline                 # 200,000 lines of ~100 B
//!     cargo bench -p sluice --bench kafka_pipeline -- --lines 20000

mod common;

#[path = "../../../tests/support/tansu.rs"]
mod tansu;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let lines = common::arg("--lines", 200_000);
    let port = tansu::free_port();
    let mut broker = tansu::spawn_tansu(&format!("127.0.0.1:{port}"), "memory://tansu/", &[]);

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("worker.properties"),
        format!(
            "bootstrap.servers=127.0.0.1:{port}\nkey.converter=org.apache.kafka.connect.json.JsonConverter\n\
             value.converter=org.apache.kafka.connect.json.JsonConverter\noffset.storage.file.filename=connect.offsets\n\
             offset.flush.interval.ms=1000\nlisteners=http://127.0.0.1:0\n"
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("source.properties"),
        "name=src\nconnector.class=FileStreamSource\nfile=in.txt\ntopic=bench\n",
    )
    .unwrap();
    std::fs::write(
        d.join("sink.properties"),
        "name=snk\nconnector.class=FileStreamSink\nfile=out.txt\ntopics=bench\n",
    )
    .unwrap();
    let payload = "x".repeat(88);
    let mut data = Vec::with_capacity(lines * 100);
    for i in 0..lines {
        writeln!(data, "{i:010} {payload}").unwrap();
    }
    let bytes = data.len() as u64;
    std::fs::write(d.join("in.txt"), b"").unwrap();

    let mut worker = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "standalone",
            "worker.properties",
            "sink.properties",
            "source.properties",
        ])
        .current_dir(d)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = worker.id();
    let stderr = BufReader::new(worker.stderr.take().unwrap());
    let (log_tx, log_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = log_tx.send(line);
        }
    });
    let mut log = Vec::new();
    while !log.iter().any(|l: &String| l.contains("worker started")) {
        log.push(
            log_rx
                .recv_timeout(Duration::from_secs(30))
                .expect("worker start-up"),
        );
    }

    let started = Instant::now();
    std::fs::OpenOptions::new()
        .append(true)
        .open(d.join("in.txt"))
        .unwrap()
        .write_all(&data)
        .unwrap();
    // A stalled pipeline must end the run with the worker's log, not hang CI.
    let deadline = started + Duration::from_secs(common::arg("--deadline-secs", 180) as u64);
    loop {
        let copied = std::fs::metadata(d.join("out.txt"))
            .map(|m| m.len())
            .unwrap_or(0);
        if copied >= bytes {
            break;
        }
        if Instant::now() > deadline {
            let _ = worker.kill();
            let _ = broker.kill();
            log.extend(log_rx.recv_timeout(Duration::from_secs(1)));
            log.extend(log_rx.try_iter());
            eprintln!("{}", log.join("\n"));
            eprintln!(
                "kafka_pipeline: only {copied} of {bytes} bytes reached the sink file before the deadline; the worker's log is above"
            );
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let peak = common::proc_status_kb(pid, "VmHWM:") as f64 / 1024.0;
    common::terminate(&mut worker, Duration::from_secs(30));
    log.extend(log_rx.try_iter());
    let _ = broker.kill();
    let _ = broker.wait();

    let latency = regex::Regex::new(r"records=(\d+) p50_ms=([0-9.]+) p99_ms=([0-9.]+)").unwrap();
    let figures = log
        .iter()
        .find_map(|l| latency.captures(l))
        .map(|c| (c[1].to_owned(), c[2].to_owned(), c[3].to_owned()));
    println!("file -> Kafka (Tansu, in-memory) -> file, JsonConverter, release build");
    println!("  lines            {lines} of {} B", bytes / lines as u64);
    println!(
        "  throughput       {:.0} lines/s end to end, {:.1} MB/s",
        lines as f64 / elapsed,
        bytes as f64 / elapsed / 1e6
    );
    match figures {
        Some((records, p50, p99)) => {
            let p50: f64 = p50.parse().unwrap_or(0.0);
            let p99: f64 = p99.parse().unwrap_or(0.0);
            println!(
                "  produce latency  p50 {p50:.2} ms, p99 {p99:.2} ms over {records} records (enqueue -> ack)"
            );
        }
        None => println!("  produce latency  not reported (no `produce latency` log line)"),
    }
    println!("  peak RSS         {peak:.1} MB (worker)");
}
