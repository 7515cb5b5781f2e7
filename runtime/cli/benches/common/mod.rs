//! Helpers shared by the benchmarks.

// Each benchmark uses a subset of these helpers.
#![allow(dead_code)]

/// The value after `name` on the command line (`-- --lines 1000`), or `default`.
pub(crate) fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A `/proc/<pid>/status` field in kB (`VmRSS:`, `VmHWM:`), 0 when unreadable.
pub(crate) fn proc_status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// User plus system CPU time a process has used so far, in seconds (0 when unreadable).
pub(crate) fn proc_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // The kernel reports in USER_HZ, 100 on every Linux this runs on.
    (ticks(11) + ticks(12)) / 100.0
}

/// Stops `child` with SIGTERM and waits for it, at most `grace`; past that it is killed, so a
/// worker that hangs on shutdown is reported instead of hanging the run.
pub(crate) fn terminate(child: &mut std::process::Child, grace: std::time::Duration) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = std::time::Instant::now() + grace;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    eprintln!(
        "process {} did not stop within {grace:?} of SIGTERM; killed",
        child.id()
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// Starts `sluice standalone <args>` in `dir` and waits until it logs "worker started"; returns
/// the process and how long start-up took. Its log is drained in the background.
pub(crate) fn start_worker(
    dir: &std::path::Path,
    args: &[&str],
) -> (std::process::Child, std::time::Duration) {
    use std::io::BufRead;
    let spawned = std::time::Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("standalone")
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn sluice");
    let mut stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).expect("worker log") > 0,
            "worker exited during start-up"
        );
        if line.contains("worker started") {
            break;
        }
    }
    let startup = spawned.elapsed();
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    (child, startup)
}

/// `sluice standalone` on the embedded pipeline with one connector and no sink (records are
/// dropped after the transform chain: a no-op sink), its log arriving on a channel. For the
/// CDC benchmarks.
pub(crate) struct ConnectorWorker {
    pub(crate) child: std::process::Child,
    log: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
    /// The benchmark's name, for its failure message.
    bench: &'static str,
}

impl ConnectorWorker {
    /// Starts a worker in `dir` running `connector` (a connector JSON), offsets in
    /// `dir/connect.offsets` flushed every 100 ms.
    pub(crate) fn start(
        bench: &'static str,
        dir: &std::path::Path,
        connector: &str,
    ) -> ConnectorWorker {
        use std::io::BufRead;
        std::fs::write(
            dir.join("worker.properties"),
            "offset.storage.file.filename=connect.offsets\noffset.flush.interval.ms=100\n\
             listeners=http://127.0.0.1:0\ndirect.unrouted.records=drop\n",
        )
        .unwrap();
        std::fs::write(dir.join("connector.json"), connector).unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["standalone", "worker.properties", "connector.json"])
            .current_dir(dir)
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let (sender, log) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        ConnectorWorker {
            child,
            log,
            seen: Vec::new(),
            bench,
        }
    }

    /// Waits for a log line containing `needle`, at most `limit`; exits the bench on a stall.
    pub(crate) fn wait_for(&mut self, needle: &str, limit: std::time::Duration) -> String {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(line) = self.seen.iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self
                .log
                .recv_timeout(left.min(std::time::Duration::from_millis(200)))
            {
                Ok(line) => self.seen.push(line),
                Err(_) if std::time::Instant::now() >= deadline => {
                    self.fail(&format!("no `{needle}`"))
                }
                Err(_) => {}
            }
        }
    }

    /// Polls `done` every 5 ms until it holds, at most `limit`; exits the bench with `what`.
    pub(crate) fn wait_until(
        &mut self,
        what: &str,
        limit: std::time::Duration,
        mut done: impl FnMut() -> bool,
    ) {
        let deadline = std::time::Instant::now() + limit;
        while !done() {
            if std::time::Instant::now() > deadline {
                self.fail(what);
            }
            self.seen.extend(self.log.try_iter());
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Kills the worker, prints its log and ends the benchmark with `what`.
    pub(crate) fn fail(&mut self, what: &str) -> ! {
        let _ = self.child.kill();
        self.seen.extend(self.log.try_iter());
        eprintln!("{}", self.seen.join("\n"));
        eprintln!(
            "{}: {what} within the deadline; the worker's log is above",
            self.bench
        );
        std::process::exit(1);
    }

    pub(crate) fn peak_rss_mb(&self) -> f64 {
        proc_status_kb(self.child.id(), "VmHWM:") as f64 / 1024.0
    }
}

/// The first stored offset of a worker whose offsets file is `dir/connect.offsets` (null before
/// the first commit).
pub(crate) fn committed_offset(dir: &std::path::Path) -> serde_json::Value {
    std::fs::read_to_string(dir.join("connect.offsets"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .map(|o| o["offsets"][0]["value"].clone())
        .unwrap_or_default()
}

/// With `PERF_OUT=<file>`: `perf record` (DWARF call graphs) of process `pid` until
/// [`perf_stop`].
pub(crate) fn perf_record(pid: u32) -> Option<std::process::Child> {
    let out = std::env::var("PERF_OUT").ok()?;
    Some(
        std::process::Command::new("perf")
            .args(["record", "-F", "999", "--call-graph", "dwarf,16384", "-o"])
            .arg(out)
            .args(["-p", &pid.to_string()])
            .spawn()
            .unwrap(),
    )
}

/// Stops a [`perf_record`] and waits for its file.
pub(crate) fn perf_stop(perf: Option<&mut std::process::Child>) {
    if let Some(perf) = perf {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &perf.id().to_string()])
            .status();
        let _ = perf.wait();
    }
}
