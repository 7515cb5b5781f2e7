//! Soak: a file → file stream on the embedded pipeline, with Kafka Connect's default
//! `offset.flush.interval.ms` (60 s, so only stops commit), stopped again and again at random
//! moments: kill -9 and SIGTERM in a shuffled order while a writer keeps appending. Nothing
//! may be lost, and a restart after a SIGTERM may repeat nothing; only a restart after a
//! kill -9 may replay (from the last commit).
//!
//! Short by default (4 kills + 4 SIGTERMs over 200,000 lines) so CI runs it every time;
//! `SLUICE_SOAK=full` runs the figures (20 + 20 over 1,000,000 lines).
//! `SLUICE_SOAK_SEED=N` replays a run's order and moments (each run prints its seed).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use support::{Worker, append_lines, config, lines, numbered, replay_starts};

/// A small deterministic generator (xorshift), so a failing run can be replayed by its seed.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Stop {
    Kill9,
    Term,
}

#[test]
fn kill_9_and_sigterm_at_random_moments_lose_nothing_and_clean_restarts_repeat_nothing() {
    let full = std::env::var("SLUICE_SOAK").is_ok_and(|v| v == "full");
    let (stops_each, total) = if full { (20, 1_000_000) } else { (4, 200_000) };
    let seed = std::env::var("SLUICE_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!(
        "soak: seed {seed} (SLUICE_SOAK_SEED={seed} replays it), {stops_each} kill -9s and {stops_each} SIGTERMs over {total} lines"
    );
    let mut random = Random(seed);
    let mut stops: Vec<Stop> = std::iter::repeat_n(Stop::Kill9, stops_each)
        .chain(std::iter::repeat_n(Stop::Term, stops_each))
        .collect();
    for i in (1..stops.len()).rev() {
        stops.swap(i, random.below(i as u64 + 1) as usize);
    }

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let source_path = d.join("test.txt");
    let sink_path = d.join("test.sink.txt");
    let source = Arc::new(numbered(0..total));
    let env = [("SLUICE__OFFSET_FLUSH_INTERVAL_MS", "60000")];
    let args = [
        config("quickstart/connect-standalone.properties"),
        config("quickstart/connect-file-source.properties"),
        config("quickstart/connect-file-sink.properties"),
    ];

    // The writer spreads the stream over the stops: a tenth up front, the rest in chunks.
    let written = total / 10;
    append_lines(&source_path, source[..written].to_vec());
    let writing_done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (source, path, done) = (
            Arc::clone(&source),
            source_path.clone(),
            Arc::clone(&writing_done),
        );
        let chunks = stops.len() * 4;
        std::thread::spawn(move || {
            let per_chunk = (total - written).div_ceil(chunks);
            for start in (written..total).step_by(per_chunk) {
                append_lines(
                    &path,
                    source[start..(start + per_chunk).min(total)].to_vec(),
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            done.store(true, Ordering::Release);
        })
    };

    // Sink lengths at each restart, by how the previous run ended.
    let mut after_term = Vec::new();
    let mut after_kill = Vec::new();
    for (n, stop) in stops.iter().enumerate() {
        let worker = Worker::start_with_env(d, &args, &env);
        let before = lines(&sink_path).len();
        // Under way: the sink grows, unless it already holds all there is (the writer done).
        worker.wait_until("the sink to grow", Duration::from_secs(60), || {
            let sink = lines(&sink_path);
            sink.len() > before
                || (writing_done.load(Ordering::Acquire) && sink.last() == source.last())
        });
        // The random moment: up to 300 ms further into the stream.
        std::thread::sleep(Duration::from_millis(random.below(300)));
        match stop {
            Stop::Kill9 => {
                worker.kill9();
                after_kill.push(lines(&sink_path).len());
            }
            Stop::Term => {
                let (exit, logs) = worker.terminate();
                assert!(
                    exit.success(),
                    "stop {n}: SIGTERM did not stop cleanly:\n{logs}"
                );
                after_term.push(lines(&sink_path).len());
            }
        }
    }
    writer.join().unwrap();
    assert!(writing_done.load(Ordering::Acquire));

    let worker = Worker::start_with_env(d, &args, &env);
    let last = source.last().unwrap().clone();
    worker.wait_until(
        "the last line reaches the sink",
        Duration::from_secs(300),
        || lines(&sink_path).last() == Some(&last),
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");

    let sink = lines(&sink_path);
    let replays = replay_starts(&sink, &source);
    for at in &replays {
        assert!(
            !after_term.contains(at),
            "the restart after a SIGTERM (sink at {at} lines) repeated lines: {:?}",
            &sink[*at..(*at + 3).min(sink.len())]
        );
        assert!(
            after_kill.contains(at),
            "a replay at sink line {at} that no kill -9 explains"
        );
    }
    eprintln!(
        "soak: {} sink lines for {} source lines; {} replay(s), all right after a kill -9; \
         0 lost; 0 repeated after {} SIGTERMs",
        sink.len(),
        total,
        replays.len(),
        stops_each
    );
}
