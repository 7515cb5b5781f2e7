//! Benchmark: end-to-end latency per record at fixed, open-loop rates, source emit → sink
//! file, through (a) the embedded direct pipeline and (b) the Kafka transport (a Tansu broker
//! on loopback, in-memory storage, JsonConverter with schemas). Prints figures; asserts
//! nothing.
//!
//! **The load.** A writer thread appends ~200 B lines to the FileStreamSource's input file on a
//! fixed schedule (line `i` of a rate `r` is due at `start + i / r`), writing whatever is due
//! each time it wakes. Every line carries its own scheduled time. The writer never waits for
//! the pipeline (open loop): a pipeline that lags sees its backlog grow, and the lag shows in
//! the figures instead of slowing the load down.
//!
//! **What is measured.** For each line: from its *scheduled* append to the input file to the
//! moment this bench sees the whole line in FileStreamSink's output file. A thread tails the
//! sink file, reading again at once while data comes and every 0.5 ms when none does, so a
//! figure is at most about 0.5 ms late. FileStreamSink hands its lines to the OS at the end of
//! each `put` (and whenever its 64 KB buffer fills), so "visible" means: the sink has written
//! the line, which another process can read — not that it is on disk. The sink fsyncs on
//! flush, which the worker calls every `offset.flush.interval.ms`; this bench sets that to
//! `--flush-ms` (default 100), so each line is also on disk at most that much (plus the fsync)
//! after the time measured. A writer that runs late (a busy machine) adds its lateness to the
//! figures, since they count from the schedule; the bench prints it when it passes 5 ms.
//!
//! **The rates.** 1k, 5k and 20k records/s always, then 50k, 100k, 200k, 500k, 1M while the
//! rate before was sustained: p99 below `--p99-limit-ms` (default 100) and every line in the
//! sink file within 10 s of the last one's schedule. A rate whose lines do not all arrive by
//! then ends the pipeline's run (the next rate would start on its backlog). Each pipeline's
//! worker is started once and warmed up (first lines through, Kafka topic and group set up)
//! before the first rate; the worker idles 1 s between rates.
//!
//!     cargo bench -p sluice --bench latency                  # 5 s per rate
//!     cargo bench -p sluice --bench latency -- --seconds 1   # smoke run
//!
//! Other options: `--flush-ms N`, `--p99-limit-ms N`, `--max-rate N` (highest rate tried), and
//! `--fetch-wait-ms N`, which sets the sink consumer's `fetch.wait.max.ms` on the Kafka
//! pipeline (unset: librdkafka's 500). Tansu 0.6 holds every fetch's answer back whether
//! records wait or not (half of `fetch.wait.max.ms` from 250 ms up, all of it below), then
//! answers with what was there when the fetch came in; so at the default most of the Kafka
//! pipeline's latency is the broker's, and a small value shows the rest.
//! The Kafka part needs the Tansu broker (`SLUICE_TANSU`, or scripts/tansu-install.sh's
//! /opt/sluice-tools/tansu/bin/tansu); without it that part is skipped, saying so.

mod common;

#[path = "../../../tests/support/tansu.rs"]
mod tansu;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Rates run whatever their figures.
const FIXED_RATES: [usize; 3] = [1_000, 5_000, 20_000];
/// Rates tried upward after those while the rate before was sustained.
const CLIMB_RATES: [usize; 5] = [50_000, 100_000, 200_000, 500_000, 1_000_000];
/// Bytes per line, newline included.
const LINE_BYTES: usize = 200;
/// How long the tail sleeps when the sink file has nothing new.
const TAIL_POLL: Duration = Duration::from_micros(500);
/// How long after the last line's schedule every line must be in the sink file.
const DRAIN: Duration = Duration::from_secs(10);
/// Run number of the warm-up lines (not measured).
const WARM_UP: usize = 0;

/// Latencies in µs seen by the tail, per run number.
type Tally = Arc<Mutex<Vec<Vec<u32>>>>;

/// Line `seq` of run `run`, due `scheduled_us` after the bench's epoch: ~200 B, newline
/// included.
fn line(out: &mut Vec<u8>, run: usize, seq: usize, scheduled_us: u64) {
    let start = out.len();
    write!(out, "{run:02} {seq:010} {scheduled_us:013} ").unwrap();
    let pad = LINE_BYTES - 1 - (out.len() - start);
    out.extend(std::iter::repeat_n(b'x', pad));
    out.push(b'\n');
}

/// Appends `count` lines of run `run` to `input` at `rate` lines/s, starting 1 ms from now,
/// writing whatever is due whenever it wakes; never waits for anything but the clock. Returns
/// how late the writer ran at worst.
fn write_on_schedule(
    input: &Path,
    run: usize,
    rate: usize,
    count: usize,
    epoch: Instant,
) -> Duration {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(input)
        .unwrap();
    let start_ns = epoch.elapsed().as_nanos() as u64 + 1_000_000;
    let period_ns = 1e9 / rate as f64;
    let due_ns = |i: usize| start_ns + (i as f64 * period_ns) as u64;
    let mut next = 0;
    let mut buf = Vec::new();
    let mut worst = 0;
    while next < count {
        let now = epoch.elapsed().as_nanos() as u64;
        let due = due_ns(next);
        if due > now {
            std::thread::sleep(Duration::from_nanos(due - now));
            continue;
        }
        worst = worst.max(now - due);
        buf.clear();
        while next < count && due_ns(next) <= now {
            line(&mut buf, run, next, due_ns(next) / 1000);
            next += 1;
        }
        file.write_all(&buf).unwrap();
    }
    Duration::from_nanos(worst)
}

/// Tails `path` until `stop`: for each complete line, the time from its schedule to now, into
/// `tally` under its run number. Lines of another shape are ignored.
fn tail(path: PathBuf, epoch: Instant, tally: Tally, stop: Arc<AtomicBool>) {
    let mut file = loop {
        if let Ok(file) = std::fs::File::open(&path) {
            break file;
        }
        if stop.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut pending = Vec::new();
    let mut seen: Vec<(usize, u32)> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let n = file.read(&mut buf).unwrap_or(0);
        if n == 0 {
            std::thread::sleep(TAIL_POLL);
            continue;
        }
        let now_us = epoch.elapsed().as_micros() as u64;
        pending.extend_from_slice(&buf[..n]);
        let mut used = 0;
        while let Some(end) = pending[used..].iter().position(|&b| b == b'\n') {
            let text = &pending[used..used + end];
            used += end + 1;
            let mut fields = std::str::from_utf8(text).unwrap_or("").split(' ');
            let run = fields.next().and_then(|f| f.parse::<usize>().ok());
            let scheduled = fields.nth(1).and_then(|f| f.parse::<u64>().ok());
            if let (Some(run), Some(scheduled)) = (run, scheduled) {
                seen.push((run, now_us.saturating_sub(scheduled) as u32));
            }
        }
        pending.drain(..used);
        let mut tally = tally.lock().unwrap();
        for (run, latency) in seen.drain(..) {
            if tally.len() <= run {
                tally.resize(run + 1, Vec::new());
            }
            tally[run].push(latency);
        }
    }
}

fn arrived(tally: &Tally, run: usize) -> usize {
    tally.lock().unwrap().get(run).map_or(0, Vec::len)
}

/// Waits until `count` lines of `run` are in the sink file, or `deadline`; true if they are.
fn wait_for(tally: &Tally, run: usize, count: usize, deadline: Instant) -> bool {
    while arrived(tally, run) < count {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// The figures of one rate.
struct Outcome {
    rate: usize,
    sent: usize,
    measured: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// CPU time per wall second of each watched process, in % of one core.
    cpu: Vec<f64>,
    writer_late: Duration,
}

impl Outcome {
    fn drained(&self) -> bool {
        self.measured >= self.sent
    }

    fn sustained(&self, p99_limit_ms: f64) -> bool {
        self.drained() && self.p99_ms < p99_limit_ms
    }
}

/// Nearest-rank percentile of sorted `values` (µs), in ms.
fn percentile_ms(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    f64::from(sorted[rank.min(sorted.len()) - 1]) / 1000.0
}

struct Pipeline<'a> {
    dir: &'a Path,
    epoch: Instant,
    tally: Tally,
    /// Processes whose CPU time is reported: (column name, pid).
    watched: Vec<(&'static str, u32)>,
}

impl Pipeline<'_> {
    fn input(&self) -> PathBuf {
        self.dir.join("in.txt")
    }

    fn run_rate(&self, run: usize, rate: usize, seconds: usize) -> Outcome {
        let sent = rate * seconds;
        let cpu_before: Vec<f64> = self
            .watched
            .iter()
            .map(|(_, pid)| common::proc_cpu_seconds(*pid))
            .collect();
        let started = Instant::now();
        let writer_late = write_on_schedule(&self.input(), run, rate, sent, self.epoch);
        wait_for(&self.tally, run, sent, Instant::now() + DRAIN);
        let wall = started.elapsed().as_secs_f64();
        let cpu = self
            .watched
            .iter()
            .zip(cpu_before)
            .map(|((_, pid), before)| (common::proc_cpu_seconds(*pid) - before) / wall * 100.0)
            .collect();
        let mut latencies = self
            .tally
            .lock()
            .unwrap()
            .get(run)
            .cloned()
            .unwrap_or_default();
        latencies.sort_unstable();
        Outcome {
            rate,
            sent,
            measured: latencies.len(),
            p50_ms: percentile_ms(&latencies, 50.0),
            p99_ms: percentile_ms(&latencies, 99.0),
            max_ms: percentile_ms(&latencies, 100.0),
            cpu,
            writer_late,
        }
    }

    /// Warms the pipeline up with 200 lines over 0.2 s; how long until all were through, or
    /// `None` when they were not within 60 s.
    fn warm_up(&self) -> Option<Duration> {
        let started = Instant::now();
        write_on_schedule(&self.input(), WARM_UP, 1000, 200, self.epoch);
        wait_for(&self.tally, WARM_UP, 200, started + Duration::from_secs(60))
            .then(|| started.elapsed())
    }

    /// The rates in turn, printing a row each; the rows.
    fn ladder(&self, seconds: usize, p99_limit_ms: f64, max_rate: usize) -> Vec<Outcome> {
        let cpu_heads: String = self
            .watched
            .iter()
            .map(|(name, _)| {
                let head = format!("{name} CPU");
                format!("  {head:>10}")
            })
            .collect();
        println!(
            "  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}{cpu_heads}",
            "rate/s", "records", "p50 ms", "p99 ms", "max ms"
        );
        let mut outcomes: Vec<Outcome> = Vec::new();
        let rates = FIXED_RATES.iter().chain(CLIMB_RATES.iter());
        for (i, &rate) in rates.enumerate() {
            if rate > max_rate {
                break;
            }
            if !FIXED_RATES.contains(&rate)
                && outcomes.last().is_some_and(|o| !o.sustained(p99_limit_ms))
            {
                break;
            }
            if i > 0 {
                std::thread::sleep(Duration::from_secs(1));
            }
            let o = self.run_rate(i + 1, rate, seconds);
            let cpu: String = o.cpu.iter().map(|c| format!("  {c:>9.0}%")).collect();
            let mut notes = Vec::new();
            if !o.drained() {
                notes.push(format!(
                    "fell behind: {} of {} lines in the sink file {} s after the last was due",
                    o.measured,
                    o.sent,
                    DRAIN.as_secs()
                ));
            }
            if o.writer_late > Duration::from_millis(5) {
                notes.push(format!(
                    "the writer ran up to {:.1} ms late",
                    o.writer_late.as_secs_f64() * 1000.0
                ));
            }
            let notes = if notes.is_empty() {
                String::new()
            } else {
                format!("  ({})", notes.join("; "))
            };
            println!(
                "  {:>9}  {:>9}  {:>9.1}  {:>9.1}  {:>9.1}{cpu}{notes}",
                o.rate, o.measured, o.p50_ms, o.p99_ms, o.max_ms
            );
            let stop = !o.drained();
            outcomes.push(o);
            if stop {
                break;
            }
        }
        outcomes
    }
}

/// Starts the tail, warms up, runs the ladder, prints the summary; stops the worker.
fn measure(
    d: &Path,
    mut worker: Child,
    mut watched: Vec<(&'static str, u32)>,
    seconds: usize,
    p99_limit_ms: f64,
    max_rate: usize,
) {
    let epoch = Instant::now();
    let tally: Tally = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let tail_thread = {
        let (path, tally, stop) = (d.join("out.txt"), Arc::clone(&tally), Arc::clone(&stop));
        std::thread::spawn(move || tail(path, epoch, tally, stop))
    };
    let pid = worker.id();
    watched.insert(0, ("worker", pid));
    let pipeline = Pipeline {
        dir: d,
        epoch,
        tally,
        watched,
    };
    match pipeline.warm_up() {
        Some(took) => {
            println!(
                "  warm-up          200 lines through in {:.0} ms (not measured)",
                took.as_secs_f64() * 1000.0
            );
            let outcomes = pipeline.ladder(seconds, p99_limit_ms, max_rate);
            let best = outcomes
                .iter()
                .filter(|o| o.sustained(p99_limit_ms))
                .map(|o| o.rate)
                .max();
            let tried = outcomes.last().map_or(0, |o| o.rate);
            match best {
                Some(rate) => println!(
                    "  highest rate with p99 < {p99_limit_ms:.0} ms: {rate}/s (tried up to {tried}/s)"
                ),
                None => println!(
                    "  highest rate with p99 < {p99_limit_ms:.0} ms: none of those tried (up to {tried}/s)"
                ),
            }
        }
        None => println!(
            "  warm-up          the first 200 lines did not reach the sink file within 60 s; no figures"
        ),
    }
    println!(
        "  worker peak RSS  {:.1} MB",
        common::proc_status_kb(pid, "VmHWM:") as f64 / 1024.0
    );
    common::terminate(&mut worker, Duration::from_secs(30));
    stop.store(true, Ordering::Relaxed);
    let _ = tail_thread.join();
}

fn write_configs(d: &Path, worker: &str, topic: &str) {
    std::fs::write(d.join("worker.properties"), worker).unwrap();
    std::fs::write(
        d.join("source.properties"),
        format!("name=src\nconnector.class=FileStreamSource\nfile=in.txt\ntopic={topic}\n"),
    )
    .unwrap();
    std::fs::write(
        d.join("sink.properties"),
        format!("name=snk\nconnector.class=FileStreamSink\nfile=out.txt\ntopics={topic}\n"),
    )
    .unwrap();
    std::fs::write(d.join("in.txt"), b"").unwrap();
}

const WORKER_ARGS: [&str; 3] = ["worker.properties", "sink.properties", "source.properties"];

fn main() {
    let seconds = common::arg("--seconds", 5).max(1);
    let flush_ms = common::arg("--flush-ms", 100);
    let p99_limit_ms = common::arg("--p99-limit-ms", 100) as f64;
    let max_rate = common::arg("--max-rate", 1_000_000);
    let fetch_wait_ms = common::arg("--fetch-wait-ms", 0);

    println!(
        "latency per record, source emit -> sink file, open loop, {LINE_BYTES} B lines, {seconds} s per rate, release build"
    );
    println!(
        "  from each line's scheduled append to the source file to the moment it is readable in the sink \
         file (written at the end of the sink's put; tail polled every 0.5 ms); fsynced at the sink's next \
         flush, at most offset.flush.interval.ms={flush_ms} later"
    );
    if seconds < 5 {
        println!(
            "  (a smoke run: {seconds} s per rate, so the tail percentiles rest on few records)"
        );
    }

    // (a) The embedded direct pipeline.
    {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_configs(
            d,
            &format!(
                "offset.storage.file.filename=connect.offsets\noffset.flush.interval.ms={flush_ms}\n\
                 listeners=http://127.0.0.1:0\n"
            ),
            "lat",
        );
        println!("file -> file (embedded direct pipeline)");
        let (worker, _) = common::start_worker(d, &WORKER_ARGS);
        measure(d, worker, Vec::new(), seconds, p99_limit_ms, max_rate);
    }

    // (b) The Kafka transport.
    let fetch_wait = if fetch_wait_ms > 0 {
        format!("consumer.fetch.wait.max.ms={fetch_wait_ms}\n")
    } else {
        String::new()
    };
    println!(
        "file -> Kafka (Tansu on loopback, in-memory) -> file, JsonConverter{}",
        if fetch_wait.is_empty() {
            String::new()
        } else {
            format!(", {}", fetch_wait.trim())
        }
    );
    let tansu_bin = std::env::var("SLUICE_TANSU")
        .unwrap_or_else(|_| "/opt/sluice-tools/tansu/bin/tansu".to_owned());
    if !Path::new(&tansu_bin).exists() {
        println!(
            "  SKIPPED: no Tansu broker at {tansu_bin} (run scripts/tansu-install.sh or set SLUICE_TANSU)"
        );
        return;
    }
    let port = tansu::free_port();
    let mut broker = tansu::spawn_tansu(&format!("127.0.0.1:{port}"), "memory://tansu/", &[]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_configs(
        d,
        &format!(
            "bootstrap.servers=127.0.0.1:{port}\nkey.converter=org.apache.kafka.connect.json.JsonConverter\n\
             value.converter=org.apache.kafka.connect.json.JsonConverter\noffset.storage.file.filename=connect.offsets\n\
             offset.flush.interval.ms={flush_ms}\nlisteners=http://127.0.0.1:0\n{fetch_wait}"
        ),
        "lat",
    );
    let (worker, _) = common::start_worker(d, &WORKER_ARGS);
    measure(
        d,
        worker,
        vec![("broker", broker.id())],
        seconds,
        p99_limit_ms,
        max_rate,
    );
    let _ = broker.kill();
    let _ = broker.wait();
}
