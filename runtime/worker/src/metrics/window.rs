//! Kafka's windowed statistics: the `-avg`, `-max` and `-rate` figures of Kafka Connect's
//! metrics cover the last two samples of 30 s each (`metrics.sample.window.ms=30000`,
//! `metrics.num.samples=2`), so they follow what the task does now rather than since it
//! started. With no sample in the window the average and maximum are NaN, as in Kafka.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One sample's length.
const SAMPLE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
struct Sample {
    started: Instant,
    count: u64,
    sum: f64,
    max: f64,
}

impl Sample {
    fn new(started: Instant) -> Sample {
        Sample {
            started,
            count: 0,
            sum: 0.0,
            max: f64::NAN,
        }
    }
}

/// What a window holds now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Reading {
    /// The mean of the values recorded (NaN without any).
    pub(crate) avg: f64,
    /// The largest value recorded (NaN without any).
    pub(crate) max: f64,
    /// The values' sum per second over the window (at least one sample long, as Kafka's
    /// `Rate` measures it).
    pub(crate) rate: f64,
}

/// Values recorded into two rolling samples; one lock per record call, taken once per batch.
#[derive(Debug)]
pub(crate) struct Windowed {
    samples: Mutex<[Sample; 2]>,
}

impl Default for Windowed {
    fn default() -> Windowed {
        let now = Instant::now();
        Windowed {
            samples: Mutex::new([Sample::new(now), Sample::new(now)]),
        }
    }
}

impl Windowed {
    /// Adds `value` (a batch's size, a call's milliseconds) to the current sample.
    pub(crate) fn record(&self, value: f64) {
        self.record_at(value, Instant::now());
    }

    /// Adds `value` as of `now` (one clock read shared by a batch's figures).
    pub(crate) fn record_at(&self, value: f64, now: Instant) {
        let mut samples = self.samples.lock().expect("window lock");
        if now.duration_since(samples[1].started) >= SAMPLE {
            samples[0] = samples[1];
            samples[1] = Sample::new(now);
            if now.duration_since(samples[0].started) >= 2 * SAMPLE {
                samples[0] = Sample::new(now);
            }
        }
        let current = &mut samples[1];
        current.count += 1;
        current.sum += value;
        current.max = if current.max.is_nan() {
            value
        } else {
            current.max.max(value)
        };
    }

    /// The average, maximum and rate over the samples still in the window.
    pub(crate) fn read(&self) -> Reading {
        self.read_at(Instant::now())
    }

    fn read_at(&self, now: Instant) -> Reading {
        let samples = *self.samples.lock().expect("window lock");
        let live: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.count > 0 && now.duration_since(s.started) < 2 * SAMPLE)
            .collect();
        let count: u64 = live.iter().map(|s| s.count).sum();
        let sum: f64 = live.iter().map(|s| s.sum).sum();
        let max = live
            .iter()
            .map(|s| s.max)
            .fold(f64::NAN, |a, b| if a.is_nan() { b } else { a.max(b) });
        let oldest = live.iter().map(|s| s.started).min().unwrap_or(now);
        let elapsed = now.duration_since(oldest).max(SAMPLE).as_secs_f64();
        Reading {
            avg: if count == 0 {
                f64::NAN
            } else {
                sum / count as f64
            },
            max,
            rate: sum / elapsed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_keeps_two_samples_and_forgets_older_values() {
        let window = Windowed::default();
        let start = Instant::now();
        let empty = window.read_at(start);
        assert!(empty.avg.is_nan() && empty.max.is_nan());
        assert_eq!(empty.rate, 0.0);
        window.record_at(10.0, start);
        window.record_at(30.0, start + Duration::from_secs(1));
        let both = window.read_at(start + Duration::from_secs(2));
        assert_eq!((both.avg, both.max), (20.0, 30.0));
        assert_eq!(
            both.rate,
            40.0 / 30.0,
            "a young window counts as one sample long"
        );
        // A new sample; the first is still inside the window.
        window.record_at(2.0, start + Duration::from_secs(31));
        let rolled = window.read_at(start + Duration::from_secs(40));
        assert_eq!((rolled.avg, rolled.max), (14.0, 30.0));
        // Two windows later only the newest values count.
        window.record_at(4.0, start + Duration::from_secs(65));
        let later = window.read_at(start + Duration::from_secs(66));
        assert_eq!((later.avg, later.max), (3.0, 4.0));
        let idle = window.read_at(start + Duration::from_secs(200));
        assert!(idle.avg.is_nan(), "nothing recorded in the window");
    }
}
