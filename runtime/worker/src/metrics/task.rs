//! One task's figures, updated by its runner once per batch (a few atomic adds and one
//! window lock), read at each scrape. The runner owns the [`TaskStats`]; when the task ends
//! its figures leave `/metrics` with it, as Kafka Connect removes a task's metric groups.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::metrics::histogram::Histogram;
use sluice_api::metrics::TaskMetrics;

use super::window::{Reading, Windowed};
use crate::clock::now_ms;
use crate::state::State;

/// Whether a task reads a source or writes a sink: it decides which of Kafka Connect's metric
/// groups (`source-task-metrics`, `sink-task-metrics`) the task's figures appear in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TaskKind {
    Source,
    Sink,
}

/// Time spent running and paused since the task started (`running-ratio`, `pause-ratio`).
#[derive(Debug)]
struct StateClock {
    started: Instant,
    since: Instant,
    state: State,
    running: Duration,
    paused: Duration,
}

impl StateClock {
    fn settle(&mut self, now: Instant) {
        let spent = now.duration_since(self.since);
        match self.state {
            State::Running => self.running += spent,
            State::Paused => self.paused += spent,
            _ => {}
        }
        self.since = now;
    }
}

/// A sink task's position in one topic partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartitionFigures {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    /// The next offset to read, committed after the task's last flush.
    pub(crate) committed_offset: i64,
    /// Records in the partition past it: the partition's high watermark as the consumer last
    /// reported it, minus the committed offset; `None` when no high watermark is known (the
    /// direct transport, or before the consumer's first statistics).
    pub(crate) records_lag: Option<i64>,
}

/// High watermarks per topic partition, kept up to date by a sink's Kafka consumer.
pub(crate) type HighWatermarks =
    std::sync::Arc<Mutex<std::collections::HashMap<(String, i32), i64>>>;

/// The figures of one task.
#[derive(Debug)]
pub struct TaskStats {
    pub(crate) connector: String,
    pub(crate) task: u32,
    pub(crate) kind: TaskKind,
    /// Records polled (sources) or read (sinks).
    taken_total: AtomicU64,
    taken: Windowed,
    /// Records written on (sources) or put into the sink (sinks), after the transforms.
    passed_total: AtomicU64,
    passed: Windowed,
    /// Milliseconds per poll (sources) or put (sinks).
    batch_time: Windowed,
    batch_size: Windowed,
    commit_time: Windowed,
    commit_completions: AtomicU64,
    commit_skips: AtomicU64,
    /// Records handed on and not yet durable downstream (sources) or not yet flushed (sinks).
    active: AtomicI64,
    clock: Mutex<StateClock>,
    record_errors: AtomicU64,
    record_failures: AtomicU64,
    records_skipped: AtomicU64,
    errors_logged: AtomicU64,
    dead_letter_requests: AtomicU64,
    dead_letter_failures: AtomicU64,
    retries: AtomicU64,
    last_error_ms: AtomicI64,
    /// Sources: when the oldest record polled and not yet committed was polled (0: none).
    uncommitted_since_ms: AtomicI64,
    /// Sinks: for each flushed put batch, milliseconds from its first record's timestamp
    /// (the source's event time, or when it was polled) to the flush.
    pub(crate) latency: Histogram,
    /// Sinks: the first record timestamp of each batch put since the last flush, per put batch.
    unflushed_oldest: Mutex<Vec<i64>>,
    /// Sinks: each topic partition's committed offset (topic, partition, offset) at the last
    /// commit.
    committed: Mutex<Vec<(String, i32, i64)>>,
    /// Sinks on Kafka: the partitions' high watermarks, for the lag.
    high_watermarks: Mutex<Option<HighWatermarks>>,
    /// The gauges the task publishes itself (slot lag, snapshot progress, …).
    pub(crate) gauges: TaskMetrics,
    /// `metrics.enabled`: false makes every update a no-op.
    enabled: bool,
}

/// The figures a scrape reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Snapshot {
    pub(crate) taken_total: u64,
    pub(crate) taken: Reading,
    pub(crate) passed_total: u64,
    pub(crate) passed: Reading,
    pub(crate) batch_time: Reading,
    pub(crate) batch_size: Reading,
    pub(crate) commit_time: Reading,
    pub(crate) commit_completions: u64,
    pub(crate) commit_skips: u64,
    pub(crate) active: i64,
    pub(crate) running_ratio: f64,
    pub(crate) pause_ratio: f64,
    pub(crate) record_errors: u64,
    pub(crate) record_failures: u64,
    pub(crate) records_skipped: u64,
    pub(crate) errors_logged: u64,
    pub(crate) dead_letter_requests: u64,
    pub(crate) dead_letter_failures: u64,
    pub(crate) retries: u64,
    pub(crate) last_error_ms: i64,
    pub(crate) committed_offset_age_ms: i64,
}

impl TaskStats {
    pub(crate) fn new(
        connector: &str,
        task: u32,
        kind: TaskKind,
        gauges: TaskMetrics,
        enabled: bool,
    ) -> Self {
        let now = Instant::now();
        TaskStats {
            connector: connector.to_owned(),
            task,
            kind,
            taken_total: AtomicU64::new(0),
            taken: Windowed::default(),
            passed_total: AtomicU64::new(0),
            passed: Windowed::default(),
            batch_time: Windowed::default(),
            batch_size: Windowed::default(),
            commit_time: Windowed::default(),
            commit_completions: AtomicU64::new(0),
            commit_skips: AtomicU64::new(0),
            active: AtomicI64::new(0),
            clock: Mutex::new(StateClock {
                started: now,
                since: now,
                state: State::Unassigned,
                running: Duration::ZERO,
                paused: Duration::ZERO,
            }),
            record_errors: AtomicU64::new(0),
            record_failures: AtomicU64::new(0),
            records_skipped: AtomicU64::new(0),
            errors_logged: AtomicU64::new(0),
            dead_letter_requests: AtomicU64::new(0),
            dead_letter_failures: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            last_error_ms: AtomicI64::new(0),
            uncommitted_since_ms: AtomicI64::new(0),
            latency: Histogram::new([
                1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1_000.0, 2_500.0, 5_000.0,
                10_000.0, 30_000.0, 60_000.0,
            ]),
            unflushed_oldest: Mutex::new(Vec::new()),
            committed: Mutex::new(Vec::new()),
            high_watermarks: Mutex::new(None),
            gauges,
            enabled,
        }
    }

    /// A poll (sources) or a take from the input (sinks) of `records`, which took `spent`.
    /// A source's poll that returned nothing is not a batch, as in Kafka Connect.
    pub(crate) fn taken(&self, records: usize, spent: Duration) {
        if !self.enabled {
            return;
        }
        if records == 0 {
            return;
        }
        self.taken_total
            .fetch_add(records as u64, Ordering::Relaxed);
        let now = Instant::now();
        self.taken.record_at(records as f64, now);
        self.batch_size.record_at(records as f64, now);
        if self.kind == TaskKind::Source {
            self.batch_time.record_at(spent.as_secs_f64() * 1000.0, now);
            let _ = self.uncommitted_since_ms.compare_exchange(
                0,
                now_ms(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// `records` went on: sent to the bus or Kafka (sources), or put into the sink, which took
    /// `spent` (sinks; `oldest_ms` is the batch's first record timestamp).
    pub(crate) fn passed(&self, records: usize, spent: Duration, oldest_ms: Option<i64>) {
        if !self.enabled {
            return;
        }
        self.passed_total
            .fetch_add(records as u64, Ordering::Relaxed);
        let now = Instant::now();
        self.passed.record_at(records as f64, now);
        if self.kind == TaskKind::Sink {
            self.batch_time.record_at(spent.as_secs_f64() * 1000.0, now);
            if let Some(oldest) = oldest_ms {
                self.unflushed_oldest
                    .lock()
                    .expect("stats lock")
                    .push(oldest);
            }
        }
    }

    /// How many records are in flight now.
    pub(crate) fn set_active(&self, records: usize) {
        if !self.enabled {
            return;
        }
        self.active.store(records as i64, Ordering::Relaxed);
    }

    /// An offset commit (sources) or flush (sinks) that took `spent`; `everything` when
    /// nothing polled is left uncommitted after it.
    pub(crate) fn committed(&self, spent: Duration, everything: bool) {
        if !self.enabled {
            return;
        }
        self.commit_completions.fetch_add(1, Ordering::Relaxed);
        self.commit_time.record(spent.as_secs_f64() * 1000.0);
        if self.kind == TaskKind::Source {
            let next = if everything { 0 } else { now_ms() };
            self.uncommitted_since_ms.store(next, Ordering::Relaxed);
        } else {
            let flushed = std::mem::take(&mut *self.unflushed_oldest.lock().expect("stats lock"));
            let now = now_ms();
            for oldest in flushed {
                self.latency.observe((now - oldest).max(0) as f64);
            }
        }
    }

    /// A sink's offsets were committed: the next offset per (topic, partition).
    pub(crate) fn partitions_committed(&self, committed: impl FnOnce() -> Vec<(String, i32, i64)>) {
        if !self.enabled {
            return;
        }
        *self.committed.lock().expect("stats lock") = committed();
    }

    /// Where the partitions end, as the sink's consumer learns it.
    pub(crate) fn watch_high_watermarks(&self, high_watermarks: HighWatermarks) {
        *self.high_watermarks.lock().expect("stats lock") = Some(high_watermarks);
    }

    /// Where a sink stands in each partition: its last commit, and the lag behind the end.
    pub(crate) fn partitions(&self) -> Vec<PartitionFigures> {
        let committed = self.committed.lock().expect("stats lock").clone();
        let high = self.high_watermarks.lock().expect("stats lock").clone();
        let high = high
            .as_ref()
            .map(|h| h.lock().expect("watermarks lock").clone());
        let mut figures: Vec<PartitionFigures> = committed
            .into_iter()
            .map(|(topic, partition, offset)| PartitionFigures {
                records_lag: high
                    .as_ref()
                    .and_then(|h| h.get(&(topic.clone(), partition)))
                    .map(|end| (end - offset).max(0)),
                topic,
                partition,
                committed_offset: offset,
            })
            .collect();
        figures.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        figures
    }

    /// A commit or flush with nothing to commit.
    pub(crate) fn commit_skipped(&self) {
        if !self.enabled {
            return;
        }
        self.commit_skips.fetch_add(1, Ordering::Relaxed);
    }

    /// The task's state changed (RUNNING, PAUSED, …).
    pub(crate) fn state(&self, state: State) {
        if !self.enabled {
            return;
        }
        let mut clock = self.clock.lock().expect("stats lock");
        clock.settle(Instant::now());
        clock.state = state;
    }

    /// A record failed a stage (conversion, a transform, the producer).
    pub(crate) fn record_error(&self) {
        if !self.enabled {
            return;
        }
        self.record_errors.fetch_add(1, Ordering::Relaxed);
        self.last_error_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// A record failed and was skipped (`errors.tolerance=all`), logged when `logged`.
    pub(crate) fn record_skipped(&self, logged: bool) {
        if !self.enabled {
            return;
        }
        self.records_skipped.fetch_add(1, Ordering::Relaxed);
        if logged {
            self.errors_logged.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A record failed and failed the task (`errors.tolerance=none`).
    pub(crate) fn record_failed(&self) {
        if !self.enabled {
            return;
        }
        self.record_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// A retry of a retriable failure (`errors.retry.*`).
    pub(crate) fn retried(&self) {
        if !self.enabled {
            return;
        }
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// A dead letter written (`ok`) or not.
    pub(crate) fn dead_lettered(&self, ok: bool) {
        if !self.enabled {
            return;
        }
        self.dead_letter_requests.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.dead_letter_failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        let now = Instant::now();
        let (running_ratio, pause_ratio) = {
            let mut clock = self.clock.lock().expect("stats lock");
            clock.settle(now);
            let age = now.duration_since(clock.started).as_secs_f64();
            if age == 0.0 {
                (0.0, 0.0)
            } else {
                (
                    clock.running.as_secs_f64() / age,
                    clock.paused.as_secs_f64() / age,
                )
            }
        };
        let since = self.uncommitted_since_ms.load(Ordering::Relaxed);
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Snapshot {
            taken_total: load(&self.taken_total),
            taken: self.taken.read(),
            passed_total: load(&self.passed_total),
            passed: self.passed.read(),
            batch_time: self.batch_time.read(),
            batch_size: self.batch_size.read(),
            commit_time: self.commit_time.read(),
            commit_completions: load(&self.commit_completions),
            commit_skips: load(&self.commit_skips),
            active: self.active.load(Ordering::Relaxed),
            running_ratio,
            pause_ratio,
            record_errors: load(&self.record_errors),
            record_failures: load(&self.record_failures),
            records_skipped: load(&self.records_skipped),
            errors_logged: load(&self.errors_logged),
            dead_letter_requests: load(&self.dead_letter_requests),
            dead_letter_failures: load(&self.dead_letter_failures),
            retries: load(&self.retries),
            last_error_ms: self.last_error_ms.load(Ordering::Relaxed),
            committed_offset_age_ms: if since == 0 {
                0
            } else {
                (now_ms() - since).max(0)
            },
        }
    }
}
