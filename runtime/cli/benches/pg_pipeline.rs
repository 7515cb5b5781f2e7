//! Benchmark: Postgres CDC through one standalone worker on the embedded default, against
//! `pg_recvlogical` on the same server. Prints figures, asserts nothing.
//!
//! * **Streaming**: `--rows` rows of ~200 B inserted in 100-row transactions while neither
//!   reader runs; then sluice (Debezium-config connector, records dropped after the transform
//!   chain as no sink subscribes: a no-op sink) and `pg_recvlogical` (pgoutput to /dev/null)
//!   each drain the same changes from their own slot. Rows/s of both and their ratio.
//! * **Snapshot**: `--snapshot-rows` rows read by the initial snapshot of a new connector
//!   (the table vacuumed and checkpointed first, so the server's after-load chores are not
//!   measured), against the physical anchors: `COPY … TO STDOUT` of the same table in text and
//!   binary through `psql` to /dev/null. The worker's CPU per row (all threads, from /proc).
//! * Peak RSS of the worker in each run.
//!
//! `PERF_OUT=<file>` records a `perf` profile (DWARF call graphs) of the snapshot's worker.
//!
//! Run it with:
//!
//!     cargo bench -p sluice --bench pg_pipeline                            # 500k + 1M rows
//!     cargo bench -p sluice --bench pg_pipeline -- --rows 20000 --snapshot-rows 50000
//!     cargo bench -p sluice --bench pg_pipeline -- --snapshot-threads 1   # snapshot.max.threads

mod common;

// The same throwaway cluster the end-to-end tests use.
#[allow(dead_code)]
#[path = "../../../tests/support/postgres.rs"]
mod cluster;

use std::path::{Path, PathBuf};
use std::process::Command;

use cluster::Cluster;
use std::time::{Duration, Instant};

fn pg_bin(tool: &str) -> PathBuf {
    [
        "/usr/lib/postgresql/15/bin",
        "/usr/lib/postgresql/16/bin",
        "/usr/bin",
    ]
    .iter()
    .map(|d| Path::new(d).join(tool))
    .find(|p| p.exists())
    .unwrap_or_else(|| PathBuf::from(tool))
}

fn connector(pg: &Cluster, slot: &str, prefix: &str, table: &str, snapshot: &str) -> String {
    // `--snapshot-threads N` sets snapshot.max.threads (0, the connector's default: one per core).
    let threads = common::arg("--snapshot-threads", 0);
    serde_json::json!({"name": prefix, "config": {
        "snapshot.max.threads": threads.to_string(),
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "database.hostname": "127.0.0.1", "database.port": pg.port.to_string(),
        "database.user": "postgres", "database.dbname": "postgres",
        "topic.prefix": prefix, "slot.name": slot, "publication.name": format!("{prefix}_pub"),
        "publication.autocreate.mode": "filtered", "table.include.list": table,
        "snapshot.mode": snapshot,
    }})
    .to_string()
}

fn committed_lsn(dir: &Path) -> u64 {
    common::committed_offset(dir)["lsn"].as_u64().unwrap_or(0)
}

fn lsn_value(text: &str) -> u64 {
    let (high, low) = text.trim().split_once('/').unwrap();
    (u64::from_str_radix(high, 16).unwrap() << 32) | u64::from_str_radix(low, 16).unwrap()
}

fn main() {
    let rows = common::arg("--rows", 500_000);
    let snapshot_rows = common::arg("--snapshot-rows", 1_000_000);
    let pg = Cluster::start();
    let payload = "p".repeat(170);

    // Streaming: both slots exist before the load, so both readers see exactly the same changes.
    pg.sql(
        "create table stream_rows (id bigint primary key, n int not null, payload text not null)",
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = connector(
        &pg,
        "sluice_bench",
        "bench",
        "public.stream_rows",
        "no_data",
    );
    let mut worker = common::ConnectorWorker::start("pg_pipeline", dir.path(), &spec);
    worker.wait_for("created replication slot", Duration::from_secs(60));
    common::terminate(&mut worker.child, Duration::from_secs(30));
    pg.sql("select pg_create_logical_replication_slot('recvlogical_bench', 'pgoutput')");

    let transactions = rows.div_ceil(100);
    let mut script = String::new();
    for t in 0..transactions {
        let first = t * 100 + 1;
        let last = ((t + 1) * 100).min(rows);
        script.push_str(&format!(
            "begin; insert into stream_rows select g, g % 1000, '{payload}' from generate_series({first}, {last}) g; commit;\n"
        ));
    }
    let last_first = (transactions - 1) * 100 + 1;
    script.push_str(&format!(
        "begin; delete from stream_rows where id = {last_first}; select pg_current_wal_insert_lsn(); commit;\n"
    ));
    let script_path = dir.path().join("load.sql");
    std::fs::write(&script_path, script).unwrap();
    let loaded = Instant::now();
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &pg.port.to_string(),
            "-U",
            "postgres",
        ])
        .args(["-d", "postgres", "-v", "ON_ERROR_STOP=1", "-Atq", "-f"])
        .arg(&script_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before_last_commit =
        lsn_value(String::from_utf8_lossy(&out.stdout).lines().last().unwrap());
    let load_seconds = loaded.elapsed().as_secs_f64();
    let end = pg.sql("select pg_current_wal_lsn()")[0].clone();
    let changes = rows + 1;

    let started = Instant::now();
    let status = Command::new(pg_bin("pg_recvlogical"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &pg.port.to_string(),
            "-U",
            "postgres",
        ])
        .args(["-d", "postgres", "--slot", "recvlogical_bench", "--start"])
        .args([
            "--endpos",
            &end,
            "-o",
            "proto_version=1",
            "-o",
            "publication_names=bench_pub",
        ])
        .args(["--no-loop", "-f", "/dev/null"])
        .status()
        .unwrap();
    assert!(status.success(), "pg_recvlogical failed");
    let recvlogical_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut worker = common::ConnectorWorker::start("pg_pipeline", dir.path(), &spec);
    let deadline = started + Duration::from_secs(600);
    while committed_lsn(dir.path()) <= before_last_commit {
        if Instant::now() > deadline {
            worker.fail("the stream was not drained");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let sluice_seconds = started.elapsed().as_secs_f64();
    let stream_peak = worker.peak_rss_mb();
    common::terminate(&mut worker.child, Duration::from_secs(30));

    // Snapshot: a new connector on a table filled beforehand.
    pg.sql(&format!(
        "create table snapshot_rows (id bigint primary key, n int not null, payload text not null); \
         insert into snapshot_rows select g, g % 1000, '{payload}' from generate_series(1, {snapshot_rows}) g"
    ));
    // The server's after-load chores, done now rather than during the measured read: the
    // first read of fresh rows sets their hint bits (writing every page), autovacuum would
    // visit both tables, and a checkpoint would flush the load's WAL. A table a connector
    // snapshots has usually lived long enough to have had all three.
    pg.sql("vacuum (freeze, analyze) snapshot_rows");
    pg.sql("vacuum (analyze) stream_rows");
    pg.sql("checkpoint");
    // The physical anchors: what one connection of Postgres can send of this table, in text
    // and in binary COPY, through psql to /dev/null (a first read warms the caches for all).
    let copy_seconds = |format: &str| {
        let started = Instant::now();
        pg.sql(&format!(
            "\\copy (select * from snapshot_rows) to '/dev/null' with (format {format})"
        ));
        started.elapsed().as_secs_f64()
    };
    copy_seconds("text");
    let copy_text_rate = snapshot_rows as f64 / copy_seconds("text");
    let copy_binary_rate = snapshot_rows as f64 / copy_seconds("binary");
    let snapshot_dir = tempfile::tempdir().unwrap();
    let spec = connector(
        &pg,
        "sluice_snapshot",
        "snap",
        "public.snapshot_rows",
        "initial",
    );
    let mut worker = common::ConnectorWorker::start("pg_pipeline", snapshot_dir.path(), &spec);
    let mut perf = common::perf_record(worker.child.id());
    let complete = worker.wait_for("snapshot complete", Duration::from_secs(600));
    let rate = regex::Regex::new(r"rows=(\d+) seconds=([0-9.]+) rows_per_second=(\d+)").unwrap();
    let figures = rate
        .captures(&complete)
        .map(|c| (c[1].to_owned(), c[2].to_owned(), c[3].to_owned()));
    let threads = worker
        .wait_for("snapshot started", Duration::from_secs(1))
        .split("threads=")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .unwrap_or("?")
        .to_owned();
    // Handed out too (the task reads ahead of the pipeline only by the bounded queue).
    let deadline = Instant::now() + Duration::from_secs(600);
    while common::committed_offset(snapshot_dir.path())["last_snapshot_record"] != true {
        if Instant::now() > deadline {
            worker.fail("the snapshot's last record was not committed");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let snapshot_peak = worker.peak_rss_mb();
    let snapshot_cpu = common::proc_cpu_seconds(worker.child.id());
    common::perf_stop(perf.as_mut());
    common::terminate(&mut worker.child, Duration::from_secs(30));

    println!("Postgres 15 CDC -> sluice (embedded default, no-op sink), release build");
    println!(
        "  load             {changes} changes in {transactions} transactions of 100 rows, ~200 B each ({load_seconds:.1} s to write)"
    );
    let sluice_rate = changes as f64 / sluice_seconds;
    let recvlogical_rate = changes as f64 / recvlogical_seconds;
    println!(
        "  pg_recvlogical   {recvlogical_rate:.0} rows/s ({recvlogical_seconds:.2} s, pgoutput to /dev/null)"
    );
    println!(
        "  sluice stream    {sluice_rate:.0} rows/s ({sluice_seconds:.2} s incl. start-up, decoded into Debezium records, offsets committed)"
    );
    println!(
        "  ratio            {:.2} (sluice / pg_recvlogical; target >= 0.8)",
        sluice_rate / recvlogical_rate
    );
    println!("  peak RSS         {stream_peak:.1} MB (worker, streaming)");
    println!(
        "  COPY text        {copy_text_rate:.0} rows/s (psql \\copy of the snapshot table to /dev/null, one connection)"
    );
    println!("  COPY binary      {copy_binary_rate:.0} rows/s (the same, format binary)");
    match figures {
        Some((rows, seconds, per_second)) => {
            let per_second: f64 = per_second.parse().unwrap_or(0.0);
            let rows: f64 = rows.parse().unwrap_or(0.0);
            println!(
                "  snapshot         {per_second:.0} rows/s ({rows} rows in {seconds} s, {threads} reader connections)"
            );
            println!(
                "  ratio            {:.2} (snapshot / COPY text; target >= 0.8)",
                per_second / copy_text_rate
            );
            println!(
                "  worker CPU       {:.2} us per row (all threads, start to last offset committed; target <= 1.5)",
                snapshot_cpu * 1e6 / rows.max(1.0)
            );
        }
        None => println!("  snapshot         not reported"),
    }
    println!("  peak RSS         {snapshot_peak:.1} MB (worker, snapshot; target < 150 MB)");
}
