//! A throwaway PostgreSQL 15 cluster per test, started with `scripts/pg-start.sh` (own data
//! directory, free port, `wal_level=logical`) and stopped and deleted when dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts")
}

/// A running cluster.
pub(crate) struct Cluster {
    dir: tempfile::TempDir,
    pub(crate) port: u16,
}

impl Cluster {
    /// Starts a cluster; installs Debian's postgresql first when the machine lacks it.
    ///
    /// The port is one the OS said was free a moment before; another test's server restarting
    /// on a port it held (the restart tests) can take it in between, so a failed start is tried
    /// again on another port (up to three times, each failure's server log printed).
    pub(crate) fn start() -> Cluster {
        for attempt in 1..=3 {
            let dir = tempfile::tempdir().unwrap();
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let status = Command::new(scripts().join("pg-start.sh"))
                .env("SLUICE_PG_DIR", dir.path())
                .env("SLUICE_PG_PORT", port.to_string())
                .stdout(Stdio::null())
                .status()
                .unwrap();
            if status.success() {
                return Cluster { dir, port };
            }
            let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
            eprintln!(
                "scripts/pg-start.sh failed on port {port} (attempt {attempt}); its log:\n{log}"
            );
        }
        panic!("scripts/pg-start.sh failed three times; the logs are above");
    }

    /// The directory the cluster's files live in (its data directory is `data/` there), owned
    /// by the postgres user.
    #[allow(dead_code)]
    pub(crate) fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Creates `accounts (id, owner, balance)`, the table the CDC tests and
    /// [`Cluster::mixed_workload`] use.
    pub(crate) fn create_accounts(&self) {
        self.sql("create table accounts (id bigint primary key, owner text not null, balance bigint not null)");
    }

    /// A deterministic mixed workload on `accounts (id, owner, balance)`: single- and
    /// multi-row transactions of inserts, updates and deletes over ids 1..=40.
    pub(crate) fn mixed_workload(&self, seed: u64, rounds: usize) {
        let mut state = seed;
        let mut next = move |n: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        for _ in 0..rounds {
            let mut statements = Vec::new();
            for _ in 0..=next(4) {
                let id = next(40) + 1;
                statements.push(match next(3) {
                    0 => format!("insert into accounts values ({id}, 'owner-{id}', {}) on conflict (id) do update set balance = accounts.balance + 1", next(1000)),
                    1 => format!("update accounts set balance = balance + {}, owner = 'o{}' where id = {id}", next(50), next(9)),
                    _ => format!("delete from accounts where id = {id}"),
                });
            }
            self.sql(&format!("begin; {}; commit", statements.join("; ")));
        }
    }

    /// Runs SQL (several statements run as one transaction) and returns the rows, `|`-separated.
    pub(crate) fn sql(&self, sql: &str) -> Vec<String> {
        self.sql_as("postgres", sql)
    }

    /// Like [`Cluster::sql`] as another user.
    pub(crate) fn sql_as(&self, user: &str, sql: &str) -> Vec<String> {
        let out = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                user,
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-Atc",
                sql,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Cluster {
    /// Waits until a connector has created replication slot `slot`: a change committed after
    /// that is streamed (`op` c/u/d), never part of the initial snapshot (`op` r). Without this
    /// wait a test's first insert races the connector's start-up.
    pub(crate) fn wait_for_slot(&self, slot: &str) {
        // A loop of its own rather than support::wait_until: the benchmarks include this file
        // without the rest of the test support.
        self.wait_for_rows(
            &format!("select 1 from pg_replication_slots where slot_name = '{slot}'"),
            &format!("replication slot {slot}"),
        );
    }

    /// Waits (at most 30 s) until `query` returns a row.
    fn wait_for_rows(&self, query: &str, what: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while self.sql(query).is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out after 30s waiting for {what}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Holds `ACCESS EXCLUSIVE` on `table` in an open transaction (so reads of it wait) until
    /// the returned guard is dropped or the server cuts the session.
    pub(crate) fn hold_exclusive_lock(&self, table: &str) -> LockHolder {
        let mut psql = Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", "postgres", "-q"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write;
        let mut stdin = psql.stdin.take().unwrap();
        writeln!(stdin, "begin; lock table {table} in access exclusive mode;").unwrap();
        self.wait_for_rows(
            &format!(
                "select 1 from pg_locks where relation = '{table}'::regclass and mode = 'AccessExclusiveLock' and granted"
            ),
            &format!("the lock on {table}"),
        );
        LockHolder {
            psql,
            _stdin: stdin,
        }
    }

    /// Stops the server (fast shutdown: sessions are cut), keeping its data.
    pub(crate) fn stop(&self) {
        let status = Command::new(scripts().join("pg-stop.sh"))
            .env("SLUICE_PG_DIR", self.dir.path())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "scripts/pg-stop.sh failed");
    }

    /// Starts the stopped server again on the same port.
    pub(crate) fn start_again(&self) {
        let status = Command::new(scripts().join("pg-start.sh"))
            .env("SLUICE_PG_DIR", self.dir.path())
            .env("SLUICE_PG_PORT", self.port.to_string())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "scripts/pg-start.sh failed");
    }
}

/// A psql session holding a lock; dropping it ends the session.
pub(crate) struct LockHolder {
    psql: std::process::Child,
    /// Kept open: psql ends the transaction at end of input.
    _stdin: std::process::ChildStdin,
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        let _ = self.psql.kill();
        let _ = self.psql.wait();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(scripts().join("pg-stop.sh"))
            .env("SLUICE_PG_DIR", self.dir.path())
            .status();
    }
}
