//! Helpers shared by the benchmarks.

/// The value after `name` on the command line (`-- --lines 1000`), or `default`.
pub fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A `/proc/<pid>/status` field in kB (`VmRSS:`, `VmHWM:`), 0 when unreadable.
pub fn proc_status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Stops `child` with SIGTERM and waits for it, at most `grace`; past that it is killed, so a
/// worker that hangs on shutdown is reported instead of hanging the run.
pub fn terminate(child: &mut std::process::Child, grace: std::time::Duration) {
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
