//! Benchmark: the standalone worker's start-up time, file→file throughput on the embedded
//! direct pipeline, and memory (idle RSS and peak RSS). Prints figures; asserts nothing.
//! The copy runs five times with the tasks' metrics on and five times with them off
//! (`metrics.enabled=false`), alternating, and the best of each is reported: what the
//! metrics cost.
//!
//!     cargo bench -p sluice --bench file_pipeline            # 1,000,000 lines of ~100 B
//!     cargo bench -p sluice --bench file_pipeline -- --lines 50000   # quick smoke run

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

/// What one copy measured.
struct Copy {
    startup: Duration,
    elapsed: Duration,
    idle_start_kb: u64,
    peak_kb: u64,
    idle_kb: u64,
}

fn main() {
    let lines = common::arg("--lines", 1_000_000);
    let payload = "x".repeat(88);
    let mut data = Vec::with_capacity(lines * 100);
    for i in 0..lines {
        writeln!(data, "{i:010} {payload}").unwrap();
    }
    let bytes = data.len() as u64;
    let mut on: Vec<Copy> = Vec::new();
    let mut off: Vec<Copy> = Vec::new();
    for _ in 0..5 {
        on.push(copy(&data, true));
        off.push(copy(&data, false));
    }
    let best = |runs: &[Copy]| runs.iter().map(|r| r.elapsed).min().expect("five runs");
    let (with, without) = (best(&on), best(&off));
    let first = &on[0];
    let seconds = with.as_secs_f64();
    println!("file -> file (embedded direct pipeline, release build)");
    println!("  lines            {lines} of {} B", bytes / lines as u64);
    println!(
        "  start-up         {:.1} ms (spawn to connectors running)",
        first.startup.as_secs_f64() * 1000.0
    );
    println!(
        "  throughput       {:.0} lines/s, {:.1} MB/s (best of 5, metrics on)",
        lines as f64 / seconds,
        bytes as f64 / seconds / 1e6
    );
    println!(
        "  metrics off      {:.0} lines/s (best of 5, metrics.enabled=false); on/off = {:.3}",
        lines as f64 / without.as_secs_f64(),
        without.as_secs_f64() / seconds
    );
    println!(
        "  idle RSS         {:.1} MB (connectors running, before any traffic)",
        first.idle_start_kb as f64 / 1024.0
    );
    println!(
        "  peak RSS         {:.1} MB (during the copy)",
        first.peak_kb as f64 / 1024.0
    );
    println!(
        "  idle RSS after   {:.1} MB (3 s after the copy)",
        first.idle_kb as f64 / 1024.0
    );
}

/// One worker copying `data` from a file to a file, with its tasks' metrics on or off.
fn copy(data: &[u8], metrics: bool) -> Copy {
    let bytes = data.len() as u64;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("worker.properties"),
        format!(
            "offset.storage.file.filename=connect.offsets\noffset.flush.interval.ms=1000\n\
             listeners=http://127.0.0.1:0\nmetrics.enabled={metrics}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("source.properties"),
        "name=src\nconnector.class=FileStreamSource\nfile=in.txt\ntopic=t\n",
    )
    .unwrap();
    std::fs::write(
        d.join("sink.properties"),
        "name=snk\nconnector.class=FileStreamSink\nfile=out.txt\ntopics=t\n",
    )
    .unwrap();

    std::fs::write(d.join("in.txt"), b"").unwrap();

    let (mut child, startup) = common::start_worker(
        d,
        &["worker.properties", "sink.properties", "source.properties"],
    );
    let pid = child.id();

    // Idle before any traffic: both connectors running, nothing to copy.
    std::thread::sleep(Duration::from_secs(2));
    let idle_start_kb = common::proc_status_kb(pid, "VmRSS:");

    let copy_started = Instant::now();
    std::fs::OpenOptions::new()
        .append(true)
        .open(d.join("in.txt"))
        .unwrap()
        .write_all(data)
        .unwrap();
    let out = d.join("out.txt");
    let deadline = copy_started + Duration::from_secs(120);
    while std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0) < bytes {
        if Instant::now() > deadline {
            let _ = child.kill();
            eprintln!("file_pipeline: the copy did not finish within 120 s");
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = copy_started.elapsed();
    let peak_kb = common::proc_status_kb(pid, "VmHWM:");

    // Idle after the copy: let the worker settle, then read its resident set.
    std::thread::sleep(Duration::from_secs(3));
    let idle_kb = common::proc_status_kb(pid, "VmRSS:");
    common::terminate(&mut child, Duration::from_secs(30));
    Copy {
        startup,
        elapsed,
        idle_start_kb,
        peak_kb,
        idle_kb,
    }
}
