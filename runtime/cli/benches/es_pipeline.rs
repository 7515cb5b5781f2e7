//! Benchmark: file → Elasticsearch sink on the embedded direct pipeline, into the in-repo
//! Elasticsearch API fake (tests/support/es_fake.rs — not a real cluster: it applies `_bulk`
//! items in memory, so these figures are the sink's own cost, not a cluster's indexing speed).
//! ~200 B JSON documents at `batch.size` 500, 2000 and 5000; prints docs/s, request bytes/s and
//! the worker's CPU time per 10k documents. Asserts nothing.
//!
//!     cargo bench -p sluice --bench es_pipeline                 # 200,000 documents per run
//!     cargo bench -p sluice --bench es_pipeline -- --docs 20000  # quick smoke run

// The fake's https listener takes its TLS server side from the tests' certificate helpers.
#[allow(dead_code)]
#[path = "../../../tests/support/certs.rs"]
mod certs;
mod common;
#[allow(dead_code)]
#[path = "../../../tests/support/es_fake.rs"]
mod es_fake;

use std::io::Write;
use std::time::{Duration, Instant};

fn main() {
    let docs = common::arg("--docs", 200_000);
    let deadline = Duration::from_secs(common::arg("--deadline-secs", 300) as u64);
    let fake = es_fake::EsFake::start();
    let mut data = Vec::with_capacity(docs * 210);
    for i in 0..docs {
        writeln!(
            data,
            r#"{{"id":{i},"name":"customer-{i:08}","email":"customer{i:08}@example.com","city":"Amsterdam","tier":"gold","balance":{},"note":"{}"}}"#,
            i * 7 % 10_000,
            "x".repeat(64)
        )
        .unwrap();
    }
    println!(
        "file -> Elasticsearch sink (embedded direct pipeline, release build, into the in-repo ES fake)"
    );
    println!(
        "  documents        {docs} of {} B",
        data.len() as u64 / docs as u64
    );
    for batch_size in [500usize, 2000, 5000] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let index = format!("bench-{batch_size}");
        std::fs::write(
            d.join("worker.properties"),
            "offset.storage.file.filename=connect.offsets\noffset.flush.interval.ms=1000\nlisteners=http://127.0.0.1:0\n",
        )
        .unwrap();
        std::fs::write(
            d.join("source.properties"),
            format!("name=src\nconnector.class=FileStreamSource\nfile=in.txt\ntopic={index}\nbatch.size=5000\n"),
        )
        .unwrap();
        std::fs::write(
            d.join("sink.properties"),
            format!(
                "name=es\nconnector.class=elasticsearch\nconnection.url={}\ntopics={index}\n\
                 key.ignore=true\nbatch.size={batch_size}\n",
                fake.url()
            ),
        )
        .unwrap();
        std::fs::write(d.join("in.txt"), b"").unwrap();
        let (mut child, _) = common::start_worker(
            d,
            &["worker.properties", "sink.properties", "source.properties"],
        );
        let pid = child.id();
        let before = fake.stats();
        let cpu_before = common::proc_cpu_seconds(pid);
        let started = Instant::now();
        std::fs::OpenOptions::new()
            .append(true)
            .open(d.join("in.txt"))
            .unwrap()
            .write_all(&data)
            .unwrap();
        while fake.count(&index) < docs {
            if started.elapsed() > deadline {
                let _ = child.kill();
                eprintln!(
                    "es_pipeline: only {} of {docs} documents arrived within {deadline:?}",
                    fake.count(&index)
                );
                std::process::exit(1);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let seconds = started.elapsed().as_secs_f64();
        let cpu = common::proc_cpu_seconds(pid) - cpu_before;
        let after = fake.stats();
        common::terminate(&mut child, Duration::from_secs(30));
        let bytes = (after.bytes - before.bytes) as f64;
        println!(
            "  batch.size {batch_size:>5}  {:>8.0} docs/s  {:>6.1} MB/s of _bulk bodies  {:>5} requests  {:>6.1} ms worker CPU per 10k docs (file source + ES sink)",
            docs as f64 / seconds,
            bytes / seconds / 1e6,
            after.bulk_requests - before.bulk_requests,
            cpu * 1000.0 / (docs as f64 / 10_000.0),
        );
    }
}
