//! Benchmark: MariaDB binlog CDC through one standalone worker on the embedded default, against
//! `mariadb-binlog` reading the same binlog from the same server. Prints figures, asserts
//! nothing.
//!
//! * **Streaming**: `--rows` rows of ~200 B inserted in 100-row transactions while sluice does
//!   not run; then, over the same binlog range:
//!   * `mariadb-binlog --read-from-remote-server --raw`: the transport limit (events copied to
//!     a file, nothing decoded);
//!   * `mariadb-binlog --read-from-remote-server -v`: MariaDB's C decoder printing every row;
//!   * sluice (a Debezium MariaDB connector config; records dropped after the transform chain
//!     as no sink subscribes: a no-op sink), until its committed offset reaches the end.
//!
//!   Rows/s of each and sluice's ratios to both (target: ≥ 1.0× `mariadb-binlog -v`).
//! * **Snapshot**: `--snapshot-rows` rows read by the initial snapshot of a new connector
//!   (target ≥ 150k rows/s).
//! * Peak RSS of the worker in each run (target < 150 MB).
//!
//! `PERF_OUT=<file>` records a `perf` profile (DWARF call graphs) of the streaming worker.
//!
//! Run it with:
//!
//!     cargo bench -p sluice --bench mysql_pipeline                            # 500k + 1M rows
//!     cargo bench -p sluice --bench mysql_pipeline -- --rows 20000 --snapshot-rows 50000
//!     cargo bench -p sluice --bench mysql_pipeline -- --snapshot-threads 1   # snapshot.max.threads

mod common;
#[path = "../../../tests/support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::mariadb::Server;

fn connector(db: &Server, prefix: &str, table: &str, snapshot: &str) -> String {
    // `--snapshot-threads N` sets snapshot.max.threads (1, the connector's default; 0: one per core).
    let threads = common::arg("--snapshot-threads", 1);
    serde_json::json!({"name": prefix, "config": {
        "snapshot.max.threads": threads.to_string(),
        "connector.class": "io.debezium.connector.mariadb.MariaDbConnector",
        "database.hostname": "127.0.0.1", "database.port": db.port.to_string(),
        "database.user": "root", "database.password": "", "database.server.id": "5402",
        "topic.prefix": prefix, "table.include.list": table, "snapshot.mode": snapshot,
    }})
    .to_string()
}

/// `SHOW MASTER STATUS`: the binlog file and the position after its last event.
fn binlog_end(db: &Server) -> (String, u64) {
    let row = db.sql("show master status")[0].clone();
    let mut fields = row.split('\t');
    (
        fields.next().unwrap().to_owned(),
        fields.next().unwrap().parse().unwrap(),
    )
}

/// Runs `mariadb-binlog` over the server's binlog from `start` on; its seconds.
fn mariadb_binlog(db: &Server, start: &(String, u64), files: &[String], args: &[&str]) -> f64 {
    let started = Instant::now();
    let out = Command::new("mariadb-binlog")
        .args([
            "--read-from-remote-server",
            "--host=127.0.0.1",
            "--user=root",
        ])
        .arg(format!("--port={}", db.port))
        .arg(format!("--start-position={}", start.1))
        .args(args)
        .args(files)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mariadb-binlog {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    started.elapsed().as_secs_f64()
}

fn main() {
    let rows = common::arg("--rows", 500_000);
    let snapshot_rows = common::arg("--snapshot-rows", 1_000_000);
    let db = Server::start();
    db.sql("create database bench; create table bench.stream_rows (id bigint primary key, n int not null, payload varchar(200) not null)");

    // sluice's offset stands before the load, on a first row.
    let dir = tempfile::tempdir().unwrap();
    let spec = connector(&db, "bench", "bench.stream_rows", "no_data");
    let mut worker = common::ConnectorWorker::start("mysql_pipeline", dir.path(), &spec);
    worker.wait_for("streaming the binlog", Duration::from_secs(60));
    db.sql("insert into bench.stream_rows values (0, 0, 'first')");
    worker.wait_until("the first row's offset", Duration::from_secs(60), || {
        common::committed_offset(dir.path())["pos"].is_u64()
    });
    common::terminate(&mut worker.child, Duration::from_secs(30));
    let start = binlog_end(&db);

    let transactions = rows.div_ceil(100);
    let mut script = String::from("use bench;\n");
    for t in 0..transactions {
        let first = t * 100 + 1;
        let last = ((t + 1) * 100).min(rows);
        script.push_str(&format!(
            "begin; insert into stream_rows select seq, seq % 1000, repeat('p', 170) from seq_{first}_to_{last}; commit;\n"
        ));
    }
    let script_path = dir.path().join("load.sql");
    std::fs::write(&script_path, script).unwrap();
    let loaded = Instant::now();
    let status = Command::new("mariadb")
        .args(["--protocol=tcp", "-h", "127.0.0.1", "-u", "root"])
        .arg(format!("--port={}", db.port))
        .stdin(std::fs::File::open(&script_path).unwrap())
        .status()
        .unwrap();
    assert!(status.success(), "loading the rows failed");
    let load_seconds = loaded.elapsed().as_secs_f64();
    let end = binlog_end(&db);
    let files: Vec<String> = db
        .sql("show binary logs")
        .iter()
        .map(|row| row.split('\t').next().unwrap().to_owned())
        .filter(|file| *file >= start.0)
        .collect();

    let raw_dir = tempfile::tempdir().unwrap();
    let raw_seconds = mariadb_binlog(
        &db,
        &start,
        &files,
        &[
            "--raw",
            &format!("--result-file={}/", raw_dir.path().display()),
        ],
    );
    drop(raw_dir);
    let verbose_seconds = mariadb_binlog(&db, &start, &files, &["-v"]);

    let started = Instant::now();
    let mut worker = common::ConnectorWorker::start("mysql_pipeline", dir.path(), &spec);
    let mut perf = common::perf_record(worker.child.id());
    worker.wait_until(
        "the stream was not drained",
        Duration::from_secs(600),
        || {
            let offset = common::committed_offset(dir.path());
            let file = offset["file"].as_str().unwrap_or_default().to_owned();
            let pos = offset["pos"].as_u64().unwrap_or(0);
            (file.as_str(), pos) >= (end.0.as_str(), end.1)
        },
    );
    let sluice_seconds = started.elapsed().as_secs_f64();
    let stream_peak = worker.peak_rss_mb();
    common::perf_stop(perf.as_mut());
    common::terminate(&mut worker.child, Duration::from_secs(30));

    // Snapshot: a new connector on a table filled beforehand.
    db.sql(&format!(
        "use bench; create table snapshot_rows (id bigint primary key, n int not null, payload varchar(200) not null); \
         insert into snapshot_rows select seq, seq % 1000, repeat('p', 170) from seq_1_to_{snapshot_rows}"
    ));
    let snapshot_dir = tempfile::tempdir().unwrap();
    let spec = connector(&db, "snap", "bench.snapshot_rows", "initial");
    let started = Instant::now();
    let mut worker = common::ConnectorWorker::start("mysql_pipeline", snapshot_dir.path(), &spec);
    worker.wait_until(
        "the snapshot's last record was not committed",
        Duration::from_secs(600),
        || {
            let offset = common::committed_offset(snapshot_dir.path());
            offset["pos"].is_u64() && offset.get("snapshot").is_none()
        },
    );
    let snapshot_seconds = started.elapsed().as_secs_f64();
    let snapshot_peak = worker.peak_rss_mb();
    common::terminate(&mut worker.child, Duration::from_secs(30));

    let rate = |seconds: f64| rows as f64 / seconds;
    println!("MariaDB 10.11 binlog CDC -> sluice (embedded default, no-op sink), release build");
    println!(
        "  load               {rows} rows in {transactions} transactions of 100 rows, ~200 B each ({load_seconds:.1} s to write)"
    );
    println!(
        "  mariadb-binlog raw {:.0} rows/s ({raw_seconds:.2} s: the transport, events copied to a file)",
        rate(raw_seconds)
    );
    println!(
        "  mariadb-binlog -v  {:.0} rows/s ({verbose_seconds:.2} s: MariaDB's C decoder, rows printed)",
        rate(verbose_seconds)
    );
    println!(
        "  sluice stream      {:.0} rows/s ({sluice_seconds:.2} s incl. start-up, decoded into Debezium records, offsets committed)",
        rate(sluice_seconds)
    );
    println!(
        "  ratios             {:.2}× mariadb-binlog -v (target >= 1.0), {:.2}× the raw transport",
        verbose_seconds / sluice_seconds,
        raw_seconds / sluice_seconds
    );
    println!("  peak RSS           {stream_peak:.1} MB (worker, streaming; target < 150 MB)");
    println!(
        "  snapshot           {:.0} rows/s ({snapshot_rows} rows in {snapshot_seconds:.2} s incl. start-up; target >= 150k rows/s)",
        snapshot_rows as f64 / snapshot_seconds
    );
    println!("  peak RSS           {snapshot_peak:.1} MB (worker, snapshot; target < 150 MB)");
}
