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
