//! Test harness: runs the real `sluice` binary in a temporary directory, finds its REST
//! address in its log, talks to it over HTTP and waits for conditions (never fixed sleeps
//! where a condition can be observed).

#![allow(dead_code)]

pub(crate) mod certs;
pub(crate) mod es_fake;
pub(crate) mod kafka;
pub(crate) mod kafka_front;
pub(crate) mod mariadb;
pub(crate) mod plugins;
pub(crate) mod postgres;
pub(crate) mod s3_fake;
pub(crate) mod tansu;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

/// The project's `scripts/` directory (service starters). `postgres.rs` keeps its own copy:
/// the Postgres connector's tests include that file alone.
pub(crate) fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts")
}

/// The binary under test.
pub(crate) fn sluice_bin() -> &'static str {
    env!("CARGO_BIN_EXE_sluice")
}

/// The repository's `configs/` folder.
pub(crate) fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs")
}

/// A config from `configs/`.
pub(crate) fn config(relative: &str) -> String {
    configs_dir().join(relative).to_string_lossy().into_owned()
}

/// Polls `condition` until it holds, failing the test with `what` after `timeout`.
pub(crate) fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `line-000000`, `line-000001`, … for the given range.
pub(crate) fn numbered(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("line-{i:06}")).collect()
}

/// Checks that the sink holds the source with replays only: every jump goes back to an
/// earlier line (a restart from a committed offset at or before the point reached), never
/// forward past one, and the last source line is the last sink line. Returns the replays.
pub(crate) fn assert_replays_only(sink: &[String], source: &[String]) -> usize {
    let (starts, expected_next) = walk_replays(sink, source);
    assert_eq!(
        expected_next,
        source.len(),
        "the sink ends with the source's last line"
    );
    starts.len()
}

/// Where the sink's stream jumps back (a replay begins): the sink indices of those lines.
/// Fails on a line the source never had or a jump forward (lines lost).
pub(crate) fn replay_starts(sink: &[String], source: &[String]) -> Vec<usize> {
    walk_replays(sink, source).0
}

/// Walks the sink against the source: the replay starts, and the source index after the
/// sink's last line.
fn walk_replays(sink: &[String], source: &[String]) -> (Vec<usize>, usize) {
    let index: std::collections::HashMap<&String, usize> =
        source.iter().enumerate().map(|(i, s)| (s, i)).collect();
    let mut expected_next = 0;
    let mut starts = Vec::new();
    for (at, line) in sink.iter().enumerate() {
        let from = *index
            .get(line)
            .unwrap_or_else(|| panic!("the sink has a line the source never had: {line}"));
        if from != expected_next {
            assert!(
                from < expected_next,
                "line {line} skipped ahead: lines {expected_next}..{from} were lost"
            );
            starts.push(at);
        }
        expected_next = from + 1;
    }
    (starts, expected_next)
}

/// The complete lines of a file (empty when it does not exist yet). An unterminated last line
/// is being written (or was cut by a kill) and is left out.
pub(crate) fn lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    complete.lines().map(str::to_owned).collect()
}

/// Appends lines to a file, creating it when needed.
pub(crate) fn append_lines(path: &Path, lines: impl IntoIterator<Item = String>) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let mut text = String::new();
    for line in lines {
        text.push_str(&line);
        text.push('\n');
    }
    file.write_all(text.as_bytes()).unwrap();
}

/// Runs `sluice` to completion (for one-shot commands such as `validate`). A command that has
/// not exited within 30 s fails the test instead of hanging the suite.
pub(crate) fn run(dir: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(sluice_bin())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("`sluice {}` did not exit within 30 s", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// A running worker.
pub(crate) struct Worker {
    child: Option<Child>,
    pub(crate) dir: PathBuf,
    log: Arc<Mutex<String>>,
    pub(crate) rest: String,
    agent: ureq::Agent,
}

impl Worker {
    /// `sluice standalone ARGS` in `dir`, REST on a free port, offsets in `dir/connect.offsets`.
    /// Waits until the worker has started its connectors. `args` may be `&str`s or `String`s.
    pub(crate) fn start(dir: &Path, args: &[impl AsRef<str>]) -> Worker {
        Worker::start_with_env(dir, args, &[])
    }

    /// Like [`Worker::start`] with extra environment variables (which may override the
    /// defaults above).
    pub(crate) fn start_with_env(
        dir: &Path,
        args: &[impl AsRef<str>],
        env: &[(&str, &str)],
    ) -> Worker {
        let worker = Worker::spawn(dir, args, env);
        worker.wait_for_log("the worker to start", "worker started");
        worker
    }

    /// Like [`Worker::start_with_env`], the process limited to `open_files` descriptors
    /// (`prlimit --nofile`, which execs the worker: the pid stays the worker's).
    pub(crate) fn start_with_open_file_limit(
        dir: &Path,
        args: &[impl AsRef<str>],
        env: &[(&str, &str)],
        open_files: u32,
    ) -> Worker {
        let mut command = Command::new("prlimit");
        command
            .arg(format!("--nofile={open_files}"))
            .arg(sluice_bin());
        let worker = Worker::spawn_command(command, dir, args, env);
        worker.wait_for_log("the worker to start", "worker started");
        worker
    }

    /// Spawns without waiting for start-up.
    pub(crate) fn spawn(dir: &Path, args: &[impl AsRef<str>], env: &[(&str, &str)]) -> Worker {
        Worker::spawn_command(Command::new(sluice_bin()), dir, args, env)
    }

    /// `sluice distributed WORKER_CONFIG` in `dir`, REST on a free port; returns once its REST
    /// API listens (it joins its group after that).
    pub(crate) fn distributed(dir: &Path, worker_config: &Path, env: &[(&str, &str)]) -> Worker {
        let mut command = Command::new(sluice_bin());
        command.arg("distributed");
        Worker::spawn_command(command, dir, &[worker_config.to_str().unwrap()], env)
    }

    fn spawn_command(
        mut command: Command,
        dir: &Path,
        args: &[impl AsRef<str>],
        env: &[(&str, &str)],
    ) -> Worker {
        let offsets = dir.join("connect.offsets");
        let distributed = command.get_args().any(|a| a == "distributed");
        if !distributed {
            command
                .arg("standalone")
                .env("SLUICE__OFFSET_STORAGE_FILE_FILENAME", &offsets);
        }
        command
            .args(args.iter().map(AsRef::as_ref))
            .current_dir(dir)
            .env("SLUICE__LISTENERS", "http://127.0.0.1:0")
            // Tests read the info log; SLUICE_WORKER_RUST_LOG widens it when chasing a
            // failure (e.g. `info,librdkafka=debug` with SLUICE__CONSUMER_DEBUG=cgrp).
            .env(
                "RUST_LOG",
                std::env::var("SLUICE_WORKER_RUST_LOG").unwrap_or_else(|_| "info".to_owned()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let mut worker = Worker {
            child: Some(child),
            dir: dir.to_path_buf(),
            log,
            rest: String::new(),
            agent,
        };
        // Human logs say `REST API listening addr=HOST:PORT`, JSON logs `…listening","addr":"HOST:PORT"`.
        let addr_pattern =
            regex::Regex::new(r#"REST API listening(?: addr=|","addr":")([0-9.:\[\]]+)"#).unwrap();
        let mut addr = None;
        wait_until("the REST API to listen", Duration::from_secs(20), || {
            addr = addr_pattern
                .captures(&worker.logs())
                .map(|c| c[1].to_owned());
            addr.is_some() || worker.has_exited()
        });
        if let Some(addr) = addr {
            worker.rest = format!("http://{addr}");
        }
        worker
    }

    /// The worker's log as it grows, to read after the worker is gone.
    pub(crate) fn log_handle(&self) -> Arc<Mutex<String>> {
        Arc::clone(&self.log)
    }

    /// Everything the worker logged so far.
    pub(crate) fn logs(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Like [`wait_until`], with the worker's log in the failure message.
    pub(crate) fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        mut condition: impl FnMut() -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        while !condition() {
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting until {what}; the worker's log:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the log contains `needle`.
    pub(crate) fn wait_for_log(&self, what: &str, needle: &str) {
        wait_until(what, Duration::from_secs(20), || {
            self.logs().contains(needle) || self.has_exited()
        });
        assert!(
            self.logs().contains(needle),
            "worker exited before {what}:\n{}",
            self.logs()
        );
    }

    fn has_exited(&self) -> bool {
        // `try_wait` needs `&mut`; /proc tells the same without reaping.
        let pid = self.child.as_ref().map(Child::id).unwrap_or(0);
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.split_whitespace().nth(2) == Some("Z"))
            .unwrap_or(true)
    }

    /// The worker's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// SIGKILL: no flush, no commit.
    pub(crate) fn kill9(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGTERM, then waits for the process to exit.
    pub(crate) fn terminate(self) -> (ExitStatus, String) {
        self.stop_with("TERM")
    }

    /// Sends `signal` (`TERM`, `HUP`, `INT`), then waits for the process to exit.
    pub(crate) fn stop_with(mut self, signal: &str) -> (ExitStatus, String) {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = child.wait().unwrap();
        // The log reader thread ends at EOF; give it the moment it needs to catch up.
        wait_until("the log to reach its end", Duration::from_secs(5), || {
            self.logs().contains("stopped") || !exit.success()
        });
        (exit, self.logs())
    }

    /// Waits for the process to exit by itself (a start-up error); its status and log.
    pub(crate) fn wait_exit(mut self) -> (ExitStatus, String) {
        let mut child = self.child.take().unwrap();
        let exit = child.wait().unwrap();
        wait_until("the log to reach its end", Duration::from_secs(5), || {
            self.logs().contains("error") || exit.success()
        });
        (exit, self.logs())
    }

    /// `POST` with extra request headers.
    pub(crate) fn post_with_headers(
        &self,
        path: &str,
        body: &Json,
        headers: &[(&str, &str)],
    ) -> (u16, Json) {
        let mut request = self.agent.post(format!("{}{}", self.rest, path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut response = request
            .send_json(body)
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Json::String(text)),
        )
    }

    fn call(&self, method: &str, path: &str, body: Option<&Json>) -> (u16, Json) {
        let url = format!("{}{}", self.rest, path);
        let result = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            ("POST", Some(b)) => self.agent.post(&url).send_json(b),
            ("POST", None) => self.agent.post(&url).send_empty(),
            ("PUT", Some(b)) => self.agent.put(&url).send_json(b),
            ("PUT", None) => self.agent.put(&url).send_empty(),
            ("PATCH", Some(b)) => self.agent.patch(&url).send_json(b),
            _ => panic!("unsupported {method}"),
        };
        let mut response = result.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let json = if text.is_empty() {
            Json::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Json::String(text))
        };
        (status, json)
    }

    pub(crate) fn get(&self, path: &str) -> (u16, Json) {
        self.call("GET", path, None)
    }

    /// `method` (POST, PUT or PATCH) of `body` as it is, declared JSON; the status and the
    /// answer's text.
    pub(crate) fn send_raw(&self, method: &str, path: &str, body: Vec<u8>) -> (u16, String) {
        let url = format!("{}{}", self.rest, path);
        let request = match method {
            "POST" => self.agent.post(&url),
            "PUT" => self.agent.put(&url),
            "PATCH" => self.agent.patch(&url),
            _ => panic!("unsupported {method}"),
        };
        let mut response = request
            .header("content-type", "application/json")
            .send(&body[..])
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = response.status().as_u16();
        (
            status,
            response.body_mut().read_to_string().unwrap_or_default(),
        )
    }

    pub(crate) fn post(&self, path: &str, body: Option<&Json>) -> (u16, Json) {
        self.call("POST", path, body)
    }

    /// `GET /metrics`, parsed by a Prometheus text-format parser (which a malformed
    /// exposition fails).
    pub(crate) fn scrape(&self) -> Scrape {
        let (status, body) = self.get("/metrics");
        assert_eq!(status, 200, "{body}");
        let text = body.as_str().unwrap_or_default().to_owned();
        let parsed =
            prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
        Scrape { text, parsed }
    }

    pub(crate) fn put(&self, path: &str, body: Option<&Json>) -> (u16, Json) {
        self.call("PUT", path, body)
    }

    pub(crate) fn patch(&self, path: &str, body: &Json) -> (u16, Json) {
        self.call("PATCH", path, Some(body))
    }

    pub(crate) fn delete(&self, path: &str) -> (u16, Json) {
        self.call("DELETE", path, None)
    }

    /// Waits until a connector's status satisfies `check`.
    pub(crate) fn wait_for_status(
        &self,
        connector: &str,
        what: &str,
        check: impl Fn(&Json) -> bool,
    ) -> Json {
        self.wait_for_status_within(connector, what, Duration::from_secs(20), check)
    }

    /// [`Worker::wait_for_status`] with a timeout of its own.
    pub(crate) fn wait_for_status_within(
        &self,
        connector: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&Json) -> bool,
    ) -> Json {
        let deadline = Instant::now() + timeout;
        loop {
            let last = self.get(&format!("/connectors/{connector}/status")).1;
            if check(&last) {
                return last;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting until {what}; the last status: {last}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops `connector` over REST (`PUT …/stop`, 204) and waits until it is STOPPED; its
    /// status then.
    pub(crate) fn stop_connector(&self, connector: &str) -> Json {
        assert_eq!(
            self.put(&format!("/connectors/{connector}/stop"), None).0,
            204
        );
        self.wait_for_status(connector, &format!("{connector} stops"), |s| {
            s["connector"]["state"] == "STOPPED"
        })
    }

    /// Waits until every task of `connector` has FAILED; the first task's trace.
    pub(crate) fn failed_trace(&self, connector: &str) -> String {
        let status =
            self.wait_for_status(connector, &format!("the tasks of {connector} fail"), |s| {
                all_tasks(s, "FAILED")
            });
        status["tasks"][0]["trace"]
            .as_str()
            .unwrap_or_else(|| panic!("a failed task has a trace: {status}"))
            .to_owned()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The CDC tests' files in `dir`: an embedded worker (offsets in `connect.offsets`, flushed
/// every 200 ms), the `oracle` sink writing every `dbserver1.*` topic to `events.jsonl` as
/// JSON lines and, when given, connector `inventory` with `config` (`extra` merged in). Their
/// paths: worker, oracle, inventory.
pub(crate) fn write_cdc_configs(dir: &Path, config: Option<Json>, extra: &Json) -> Vec<String> {
    std::fs::write(
        dir.join("worker.properties"),
        "offset.storage.file.filename=connect.offsets\noffset.flush.interval.ms=200\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("oracle.properties"),
        "name=oracle\nconnector.class=FileStreamSink\nfile=events.jsonl\nformat=json\ntopics.regex=dbserver1\\..*\n",
    )
    .unwrap();
    let mut files = vec!["worker.properties", "oracle.properties"];
    if let Some(mut config) = config {
        for (k, v) in extra.as_object().unwrap() {
            config[k] = v.clone();
        }
        std::fs::write(
            dir.join("inventory.json"),
            serde_json::json!({"name": "inventory", "config": config}).to_string(),
        )
        .unwrap();
        files.push("inventory.json");
    }
    files
        .iter()
        .map(|f| dir.join(f).to_string_lossy().into_owned())
        .collect()
}

/// Writes `dir/worker.properties` with JsonConverter keys and values (used on the Kafka
/// transport when the environment names a broker), offsets in `connect.offsets` flushed every
/// 200 ms, then `extra` (whole lines).
pub(crate) fn write_json_worker(dir: &Path, extra: &str) {
    std::fs::write(
        dir.join("worker.properties"),
        format!(
            "key.converter=org.apache.kafka.connect.json.JsonConverter\n\
             value.converter=org.apache.kafka.connect.json.JsonConverter\n\
             offset.storage.file.filename=connect.offsets\noffset.flush.interval.ms=200\n{extra}"
        ),
    )
    .unwrap();
}

/// One `GET /metrics`: the text and what the parser read from it.
pub(crate) struct Scrape {
    pub(crate) text: String,
    pub(crate) parsed: prometheus_parse::Scrape,
}

impl Scrape {
    /// The value of sample `name` whose labels include `labels`; `None` when there is none.
    pub(crate) fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.parsed
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match &s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => *v,
                other => panic!("{name} is not a single number: {other:?}"),
            })
    }

    /// Debezium's `attribute` (`debezium_metrics_<attribute>`) of `plugin` for server
    /// `dbserver1` in `context`, per `table` when given; panics with the exposition when it is
    /// missing.
    pub(crate) fn debezium(
        &self,
        plugin: &str,
        attribute: &str,
        context: &str,
        table: Option<&str>,
    ) -> f64 {
        let mut labels = vec![
            ("plugin", plugin),
            ("name", "dbserver1"),
            ("context", context),
        ];
        labels.extend(table.map(|t| ("table", t)));
        let name = format!("debezium_metrics_{attribute}");
        self.value(&name, &labels)
            .unwrap_or_else(|| panic!("no {name}:\n{}", self.text))
    }

    /// The value of sample `name` for task `task` of `connector`; panics with the exposition
    /// when it is missing.
    pub(crate) fn task(&self, name: &str, connector: &str, task: u32) -> f64 {
        let task = task.to_string();
        self.value(name, &[("connector", connector), ("task", &task)])
            .unwrap_or_else(|| panic!("no {name} for {connector}-{task} in:\n{}", self.text))
    }
}

/// Prints every worker's log when the test fails, however it fails (a group question is
/// usually answered by several workers' logs together, the killed one's included), and
/// always when `SLUICE_TEST_LOGS` is set.
pub(crate) struct LogsOnFailure(Vec<(String, Arc<Mutex<String>>)>);

impl LogsOnFailure {
    pub(crate) fn of(workers: &[&Worker]) -> LogsOnFailure {
        LogsOnFailure(
            workers
                .iter()
                .map(|w| (w.rest.clone(), w.log_handle()))
                .collect(),
        )
    }

    /// The same for a group whose members a test may take out (kill) later.
    pub(crate) fn of_group(workers: &[Option<Worker>]) -> LogsOnFailure {
        LogsOnFailure::of(&workers.iter().flatten().collect::<Vec<_>>())
    }
}

impl Drop for LogsOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("SLUICE_TEST_LOGS").is_some() {
            for (rest, log) in &self.0 {
                eprintln!("===== worker {rest} =====\n{}", log.lock().unwrap());
            }
        }
    }
}

/// True when every task of the status body is in `state`.
pub(crate) fn all_tasks(status: &Json, state: &str) -> bool {
    status["tasks"]
        .as_array()
        .is_some_and(|t| !t.is_empty() && t.iter().all(|t| t["state"] == state))
}

/// The settings (`SLUICE__…` variables) of a `sluice distributed` worker in group `group` on
/// the broker at `bootstrap`, with timings short enough for a test: 6 s sessions, lost work
/// reassigned at once, offsets flushed every 200 ms.
pub(crate) fn group_env<'a>(bootstrap: &'a str, group: &'a str) -> Vec<(&'static str, &'a str)> {
    vec![
        ("SLUICE__BOOTSTRAP_SERVERS", bootstrap),
        ("SLUICE__GROUP_ID", group),
        ("SLUICE__SESSION_TIMEOUT_MS", "6000"),
        ("SLUICE__HEARTBEAT_INTERVAL_MS", "1000"),
        ("SLUICE__SCHEDULED_REBALANCE_MAX_DELAY_MS", "0"),
        ("SLUICE__OFFSET_FLUSH_INTERVAL_MS", "200"),
        ("SLUICE__OFFSET_STORAGE_PARTITIONS", "5"),
        ("SLUICE__STATUS_STORAGE_PARTITIONS", "2"),
    ]
}

/// Three `sluice distributed` workers in `dir` on the broker at `bootstrap` (group `group`,
/// 6 s sessions, lost work reassigned at once), running the CDC connector of
/// `dir/inventory.json` and an `oracle` file sink of its `dbserver1.*` topics into `events`.
pub(crate) fn cdc_worker_group(
    dir: &Path,
    bootstrap: &str,
    group: &str,
    events: &Path,
) -> Vec<Option<Worker>> {
    let env = group_env(bootstrap, group);
    let distributed = config("distributed/connect-distributed.properties");
    let workers: Vec<Option<Worker>> = (0..3)
        .map(|_| {
            let worker = Worker::distributed(dir, Path::new(&distributed), &env);
            worker.wait_for_log("the worker to join", "joined the worker group");
            Some(worker)
        })
        .collect();
    let first = workers[0].as_ref().unwrap();
    let inventory: Json =
        serde_json::from_str(&std::fs::read_to_string(dir.join("inventory.json")).unwrap())
            .unwrap();
    let oracle = serde_json::json!({"name": "oracle", "config": {
        "connector.class": "FileStreamSink", "file": events.to_str().unwrap(), "format": "json",
        "topics.regex": "dbserver1\\..*",
    }});
    for connector in [&inventory, &oracle] {
        let (status, body) = first.post("/connectors", Some(connector));
        assert_eq!(status, 201, "{body}");
    }
    workers
}

/// The index of the worker running task 0 of `connector`, and its worker id.
pub(crate) fn task_owner(workers: &[Option<Worker>], connector: &str) -> (usize, String) {
    let any = workers.iter().flatten().next().unwrap();
    let status = any.get(&format!("/connectors/{connector}/status")).1;
    let owner = status["tasks"][0]["worker_id"].as_str().unwrap().to_owned();
    let index = workers
        .iter()
        .position(|w| w.as_ref().is_some_and(|w| w.rest.ends_with(&owner)))
        .unwrap_or_else(|| panic!("the task runs on one of the workers: {status}"));
    (index, owner)
}
