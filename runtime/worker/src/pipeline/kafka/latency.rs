//! A small log-bucketed latency histogram (about 9 % resolution), for produce latency.

use std::sync::Mutex;
use std::time::Duration;

const BUCKETS_PER_DOUBLING: f64 = 8.0;
const BUCKETS: usize = 8 * 40;

/// Counts durations in logarithmic buckets of microseconds.
pub(crate) struct Histogram {
    counts: Mutex<Vec<u64>>,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            counts: Mutex::new(vec![0; BUCKETS]),
        }
    }
}

impl Histogram {
    /// Adds one observation.
    pub(crate) fn record(&self, duration: Duration) {
        let micros = duration.as_micros().max(1) as f64;
        let bucket = ((micros.log2() * BUCKETS_PER_DOUBLING) as usize).min(BUCKETS - 1);
        self.counts.lock().expect("histogram lock")[bucket] += 1;
    }

    /// Number of observations.
    pub(crate) fn count(&self) -> u64 {
        self.counts.lock().expect("histogram lock").iter().sum()
    }

    /// The duration below which `quantile` (0..=1) of observations fall (upper bucket edge).
    pub(crate) fn quantile(&self, quantile: f64) -> Duration {
        let counts = self.counts.lock().expect("histogram lock");
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return Duration::ZERO;
        }
        let target = ((total as f64) * quantile).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bucket, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= target {
                let micros = 2f64.powf((bucket as f64 + 1.0) / BUCKETS_PER_DOUBLING);
                return Duration::from_micros(micros as u64);
            }
        }
        Duration::MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_land_within_a_bucket_of_the_truth() {
        let histogram = Histogram::default();
        for ms in 1..=100 {
            histogram.record(Duration::from_millis(ms));
        }
        let p50 = histogram.quantile(0.5).as_secs_f64() * 1000.0;
        let p99 = histogram.quantile(0.99).as_secs_f64() * 1000.0;
        assert!((50.0..=50.0 * 1.1).contains(&p50), "p50 {p50}");
        assert!((99.0..=99.0 * 1.1).contains(&p99), "p99 {p99}");
        assert_eq!(histogram.count(), 100);
    }
}
