//! Benchmark: what a WASM transform costs. Prints figures, asserts nothing.
//!
//! 1. **In the pipeline**: file → file through one worker (embedded default) with ~200 B JSON
//!    lines, three times: no transform, a native built-in (`RegexRouter` matching every
//!    record), and the identity WASM plugin, in turn, three rounds. Records/s of each (timed
//!    from the first output line to the last; the best round counts), the WASM/none ratio, and
//!    the worker's CPU time per record (all threads; the least of the rounds), which shows what
//!    a transform costs even when spare cores hide it from the rate.
//! 2. **Per record**: the transforms alone, in this process, fed batches as the worker feeds
//!    them, on a schemaless ~200 B JSON value: ns/record of a pass-through, of the native
//!    transform and of the identity plugin (in turn, best of three rounds each), and the
//!    plugin's overhead (identity minus pass-through).
//! 3. **Memory**: resident memory added per plugin instance.
//!
//! Run it with (the plugins are built first: `rustup target add wasm32-wasip2`):
//!
//!     cargo bench -p sluice --bench transform_pipeline                    # 1,000,000 records
//!     cargo bench -p sluice --bench transform_pipeline -- --records 20000

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sluice_api::config::props;
use sluice_api::record::Record;
use sluice_api::transform::Transform;

fn plugin(name: &str) -> PathBuf {
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins");
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(plugins.join("Cargo.toml"))
        .env_remove("CARGO_TARGET_DIR")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "building the plugins failed (rustup target add wasm32-wasip2?)"
    );
    plugins.join(format!("target/wasm32-wasip2/release/{name}.wasm"))
}

fn line(i: usize) -> String {
    format!(
        r#"{{"id":{i},"email":"user{i:07}@example.com","name":"Customer number {i:07}","balance":{},"active":true,"tags":["a","b","c"],"note":"{}"}}"#,
        i * 7 % 100_000,
        "n".repeat(40)
    )
}

/// What one pipeline run measured.
#[derive(Clone, Copy, Default)]
struct Run {
    /// Records/s, from the first output line to the last.
    rate: f64,
    /// CPU time the worker spent per record (user + system, every thread), in µs: what the
    /// records cost, whatever the neighbours did to the wall clock.
    cpu_us: f64,
}

/// A file → file run with `transforms` (connector config lines).
fn pipeline(records: usize, transforms: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("worker.properties"),
        "offset.storage.file.filename=connect.offsets\noffset.flush.interval.ms=1000\nlisteners=http://127.0.0.1:0\n",
    )
    .unwrap();
    std::fs::write(
        d.join("source.properties"),
        format!("name=src\nconnector.class=FileStreamSource\nfile=in.txt\ntopic=t\n{transforms}"),
    )
    .unwrap();
    std::fs::write(
        d.join("sink.properties"),
        "name=snk\nconnector.class=FileStreamSink\nfile=out.txt\ntopics=t\n",
    )
    .unwrap();
    let mut data = Vec::new();
    for i in 0..records {
        writeln!(data, "{}", line(i)).unwrap();
    }
    let bytes = data.len() as u64;
    std::fs::write(d.join("in.txt"), b"").unwrap();
    let (mut child, _) = common::start_worker(
        d,
        &["worker.properties", "sink.properties", "source.properties"],
    );
    let written = || {
        std::fs::metadata(d.join("out.txt"))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    let wait_until = |done: &dyn Fn(u64) -> bool| loop {
        let now = written();
        if done(now) {
            return now;
        }
        if Instant::now() > deadline {
            eprintln!("transform_pipeline: the copy did not finish within 300 s ({transforms:?})");
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let appended = Instant::now();
    let cpu_before = common::proc_cpu_seconds(child.id());
    std::fs::OpenOptions::new()
        .append(true)
        .open(d.join("in.txt"))
        .unwrap()
        .write_all(&data)
        .unwrap();
    // Timed from the first output on: the source may be in its idle wait (100 ms) when the
    // input lands, which says nothing about throughput.
    let first = wait_until(&|now| now > 0);
    let started = Instant::now();
    wait_until(&|now| now >= bytes);
    let rate = if first < bytes {
        records as f64 * ((bytes - first) as f64 / bytes as f64) / started.elapsed().as_secs_f64()
    } else {
        // All of it came out at once (a smoke run of a few records).
        records as f64 / appended.elapsed().as_secs_f64()
    };
    let cpu_us = (common::proc_cpu_seconds(child.id()) - cpu_before) * 1e6 / records as f64;
    common::terminate(&mut child, Duration::from_secs(30));
    Run { rate, cpu_us }
}

/// Records a worker hands its transform chain at once (a source poll's worth).
const BATCH: usize = 1000;

/// ns per record through each of `transforms`, fed batches of [`BATCH`] fresh records as a
/// worker feeds its chain straight after a source poll (building the records is not timed;
/// handing them over, transforming and dropping the results is).
fn per_record<const N: usize>(transforms: [&mut dyn Transform; N], records: usize) -> [f64; N] {
    let texts: Vec<String> = (0..records).map(line).collect();
    let batch = |from: usize| -> Vec<Record> {
        texts[from..(from + BATCH).min(records)]
            .iter()
            .map(|text| {
                let json: serde_json::Value = serde_json::from_str(text).unwrap();
                Record::new("t", sluice_api::json::json_to_value(&json), None)
            })
            .collect()
    };
    let mut transforms = transforms;
    for transform in transforms.iter_mut() {
        for result in transform.apply_batch(batch(0)) {
            result.unwrap();
        }
    }
    // Rounds of each in turn, the best of each counting: this machine's neighbours come and
    // go, the work does not, and the overhead is a difference of two of these figures.
    let mut best = [f64::INFINITY; N];
    for _ in 0..ROUNDS {
        for (best, transform) in best.iter_mut().zip(transforms.iter_mut()) {
            let mut spent = Duration::ZERO;
            for from in (0..records).step_by(BATCH) {
                let records = batch(from);
                let started = Instant::now();
                for result in transform.apply_batch(records) {
                    std::hint::black_box(result.unwrap());
                }
                spent += started.elapsed();
            }
            *best = best.min(spent.as_nanos() as f64 / records as f64);
        }
    }
    best
}

/// Fewer records than this make a smoke run, whose pipeline figures say nothing.
const SMOKE_BELOW: usize = 100_000;

/// Rounds of the per-record measurement; the fastest counts.
const ROUNDS: usize = 3;

fn rss_kb() -> u64 {
    common::proc_status_kb(std::process::id(), "VmRSS:")
}

fn main() {
    let records = common::arg("--records", 1_000_000);
    let identity = plugin("identity");

    let chains = [
        String::new(),
        "transforms=route\ntransforms.route.type=RegexRouter\ntransforms.route.regex=(.*)\ntransforms.route.replacement=$1\n".to_owned(),
        format!(
            "transforms=id\ntransforms.id.type=wasm\ntransforms.id.module={}\n",
            identity.display()
        ),
    ];
    // Rounds of the three runs in turn, the best of each counting: a neighbour busy during one
    // run would otherwise decide the ratio (one such run measured RegexRouter at 0.81 of none).
    let mut best = [Run {
        rate: 0.0,
        cpu_us: f64::INFINITY,
    }; 3];
    for _ in 0..ROUNDS {
        for (best, chain) in best.iter_mut().zip(&chains) {
            let run = pipeline(records, chain);
            best.rate = best.rate.max(run.rate);
            best.cpu_us = best.cpu_us.min(run.cpu_us);
        }
    }
    let [none, native, wasm] = best;

    let mut router = (sluice_transforms::REGEX_ROUTER.create)(&props(&[
        ("regex", "(.*)"),
        ("replacement", "$1"),
    ]))
    .unwrap();
    let settings = props(&[
        ("module", identity.to_str().unwrap()),
        ("max.duration.ms", "100000"),
    ]);
    let mut plugin = (sluice_wasm::WASM_TRANSFORM.create)(&settings).unwrap();
    let measured = records.min(100_000);
    let [nothing_ns, native_ns, wasm_ns] = per_record(
        [&mut Passthrough, router.as_mut(), plugin.as_mut()],
        measured,
    );

    let before = rss_kb();
    let instances: Vec<_> = (0..10)
        .map(|_| (sluice_wasm::WASM_TRANSFORM.create)(&settings).unwrap())
        .collect();
    let per_instance = rss_kb().saturating_sub(before) as f64 / 10.0 / 1024.0;
    drop(instances);

    println!("WASM transforms (wasmtime 48, identity plugin built with the SDK), release build");
    println!(
        "  pipeline, file -> file, {records} JSON lines of ~{} B:",
        line(0).len()
    );
    if records < SMOKE_BELOW {
        // A smoke run checks the bench works; its pipeline figures measure their own edges.
        println!(
            "    (a smoke run: {records} lines pass in a few ms, so the first and last poll and \
             the 10 ms CPU ticks decide these figures; run without --records for real ones)"
        );
    }
    println!(
        "    no transform          {:.0} records/s, {:.2} µs CPU/record",
        none.rate, none.cpu_us
    );
    println!(
        "    RegexRouter (native)  {:.0} records/s ({:.2} of none), {:.2} µs CPU/record",
        native.rate,
        native.rate / none.rate,
        native.cpu_us
    );
    println!(
        "    identity WASM         {:.0} records/s ({:.2} of none; target >= 0.9), {:.2} µs CPU/record",
        wasm.rate,
        wasm.rate / none.rate,
        wasm.cpu_us
    );
    println!("  per record, in process, batches of {BATCH}, schemaless ~200 B value:");
    println!("    pass-through          {nothing_ns:.0} ns/record (record handling alone)");
    println!("    RegexRouter (native)  {native_ns:.0} ns/record");
    println!(
        "    identity WASM         {wasm_ns:.0} ns/record: {:.0} ns of plugin overhead (target < 1000)",
        wasm_ns - nothing_ns
    );
    println!("  memory per plugin instance  {per_instance:.2} MB resident");
}

struct Passthrough;

impl Transform for Passthrough {
    fn apply(&mut self, record: Record, out: &mut Vec<Record>) -> sluice_api::Result<()> {
        out.push(record);
        Ok(())
    }
}
