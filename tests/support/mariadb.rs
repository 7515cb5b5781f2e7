//! A throwaway MariaDB 10.11 server per test, started with `scripts/mariadb-start.sh` (own
//! data directory, free port, ROW binlog with FULL images) and stopped and deleted when
//! dropped.

use super::scripts;
use super::tansu::free_port;
use std::process::{Command, Stdio};

/// A running server.
pub(crate) struct Server {
    dir: tempfile::TempDir,
    pub(crate) port: u16,
    /// More mariadbd options (`SLUICE_MARIADB_ARGS`).
    args: String,
}

impl Server {
    /// Starts a server; installs Debian's mariadb-server first when the machine lacks it.
    /// A failed start (another test's server may take the port between the probe and the
    /// start) is tried again on another port, up to three times.
    pub(crate) fn start() -> Server {
        Server::start_with(|_| String::new())
    }

    /// [`Server::start`] with more mariadbd options, made by `args` from the server's own
    /// directory (where files the server must read can go: it is the server's).
    pub(crate) fn start_with(args: impl Fn(&std::path::Path) -> String) -> Server {
        for attempt in 1..=3 {
            let dir = tempfile::tempdir().unwrap();
            let port = free_port();
            let args = args(dir.path());
            let server = Server { dir, port, args };
            if server.try_start() {
                return server;
            }
            eprintln!("scripts/mariadb-start.sh failed on port {port} (attempt {attempt})");
        }
        panic!("scripts/mariadb-start.sh failed three times; its output is above");
    }

    fn try_start(&self) -> bool {
        Command::new(scripts().join("mariadb-start.sh"))
            .env("SLUICE_MARIADB_DIR", self.dir.path())
            .env("SLUICE_MARIADB_PORT", self.port.to_string())
            .env("SLUICE_MARIADB_ARGS", &self.args)
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success()
    }

    /// The server's directory (data, socket, log, and what [`Server::start_with`] put there).
    pub(crate) fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Starts the stopped server again on the same port and data directory.
    pub(crate) fn start_again(&self) {
        assert!(self.try_start(), "scripts/mariadb-start.sh failed");
    }

    /// Stops the server (its sessions are cut), keeping its data.
    pub(crate) fn stop(&self) {
        let status = Command::new(scripts().join("mariadb-stop.sh"))
            .env("SLUICE_MARIADB_DIR", self.dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "scripts/mariadb-stop.sh failed");
    }

    /// Runs SQL as root and returns the rows, tab-separated (`NULL` for nulls).
    pub(crate) fn sql(&self, sql: &str) -> Vec<String> {
        let out = Command::new("mariadb")
            .args([
                "--protocol=tcp",
                "-h",
                "127.0.0.1",
                "-P",
                &self.port.to_string(),
                "-u",
                "root",
                "-N",
                "-B",
                "-e",
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

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new(scripts().join("mariadb-stop.sh"))
            .env("SLUICE_MARIADB_DIR", self.dir.path())
            .arg("--purge")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
