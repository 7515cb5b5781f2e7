//! Error tolerance (`errors.tolerance`, `errors.log.*`) and retries (`errors.retry.*`),
//! shared by both task runners and both transports.

use std::sync::Arc;

use sluice_api::config::Props;
use sluice_api::{Error, Result};

use crate::metrics::TaskStats;

use super::{Choice, flag, int};

/// `errors.tolerance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorTolerance {
    /// A record that fails fails the task.
    None,
    /// A record that fails is skipped (and logged, and dead-lettered when configured).
    All,
}

impl Choice for ErrorTolerance {
    const CHOICES: &'static [(&'static str, Self)] =
        &[("none", ErrorTolerance::None), ("all", ErrorTolerance::All)];
}

/// How a connector treats a record that fails conversion or a transform.
#[derive(Debug, Clone)]
pub(crate) struct Tolerance {
    /// `errors.tolerance=all`: skip the record (and dead-letter it when configured).
    pub(crate) skip: bool,
    /// `errors.log.enable`: log each skipped record's error.
    pub(crate) log: bool,
    /// `errors.log.include.messages`: include the record in that line.
    pub(crate) log_messages: bool,
    /// The task's figures (`task-error-metrics`), once a task runs with these settings.
    pub(crate) stats: Option<Arc<TaskStats>>,
}

impl Tolerance {
    /// Reads `errors.tolerance`, `errors.log.enable`, `errors.log.include.messages`.
    pub(crate) fn of(props: &Props) -> Tolerance {
        Tolerance {
            skip: ErrorTolerance::of(props, "errors.tolerance", ErrorTolerance::None)
                == ErrorTolerance::All,
            log: flag(props, "errors.log.enable", false),
            log_messages: flag(props, "errors.log.include.messages", false),
            stats: None,
        }
    }

    /// `Ok` when the record may be skipped; the error, marked for the trace, otherwise.
    /// `describe` renders the record, only called when `errors.log.include.messages` is on.
    pub(crate) fn handle(
        &self,
        connector: &str,
        stage: &str,
        error: &Error,
        describe: impl FnOnce() -> String,
    ) -> Result<()> {
        if let Some(stats) = &self.stats {
            stats.record_error();
            if self.skip {
                stats.record_skipped(self.log);
            } else {
                stats.record_failed();
            }
        }
        if !self.skip {
            return Err(Error::new(
                error.kind(),
                format!(
                    "{stage} failed and errors.tolerance=none: {}",
                    error.message()
                ),
            ));
        }
        if self.log {
            if self.log_messages {
                tracing::warn!(connector, stage, error = %error, record = %describe(), "record skipped (errors.tolerance=all)");
            } else {
                tracing::warn!(connector, stage, error = %error, "record skipped (errors.tolerance=all)");
            }
        }
        Ok(())
    }
}

/// Retries of retriable failures (`errors.retry.timeout`, `errors.retry.delay.max.ms`), with
/// exponential backoff starting at 300 ms, as Kafka Connect does.
#[derive(Debug, Clone)]
pub(crate) struct RetryPolicy {
    /// `None`: retry forever (`errors.retry.timeout=-1`); zero: never.
    pub(crate) timeout: Option<std::time::Duration>,
    /// `errors.retry.delay.max.ms`: the longest pause between two attempts.
    pub(crate) max_delay: std::time::Duration,
    /// The task's figures (`total-retries`), once a task runs with these settings.
    pub(crate) stats: Option<Arc<TaskStats>>,
}

impl RetryPolicy {
    const INITIAL_DELAY: std::time::Duration = std::time::Duration::from_millis(300);

    /// Reads `errors.retry.timeout` (default 0) and `errors.retry.delay.max.ms` (60000).
    pub(crate) fn of(props: &Props) -> RetryPolicy {
        let timeout: i64 = int(props, "errors.retry.timeout", 0);
        let max_delay: i64 = int(props, "errors.retry.delay.max.ms", 60_000);
        RetryPolicy {
            timeout: (timeout >= 0).then(|| std::time::Duration::from_millis(timeout as u64)),
            max_delay: std::time::Duration::from_millis(max_delay.max(0) as u64),
            stats: None,
        }
    }

    /// True when no retry will happen.
    pub(crate) fn is_off(&self) -> bool {
        self.timeout == Some(std::time::Duration::ZERO)
    }

    /// A fresh backoff for one operation.
    pub(crate) fn attempts(&self) -> Attempts {
        Attempts {
            policy: self.clone(),
            started: tokio::time::Instant::now(),
            delay: Self::INITIAL_DELAY.min(self.max_delay),
            attempt: 1,
        }
    }
}

/// The retry state of one operation: call [`Attempts::after_failure`] with each error; `Ok`
/// means "try again now", `Err` gives the error back (not retriable, or out of time).
#[derive(Debug)]
pub(crate) struct Attempts {
    policy: RetryPolicy,
    started: tokio::time::Instant,
    delay: std::time::Duration,
    attempt: u32,
}

impl Attempts {
    /// Waits before the next attempt, or returns the error when retrying is over.
    pub(crate) async fn after_failure(
        &mut self,
        connector: &str,
        what: &str,
        error: Error,
    ) -> Result<()> {
        if error.kind() != sluice_api::ErrorKind::Retriable {
            return Err(error);
        }
        let remaining = self
            .policy
            .timeout
            .map(|t| t.saturating_sub(self.started.elapsed()));
        if remaining == Some(std::time::Duration::ZERO) {
            return Err(if self.attempt > 1 {
                error.context(format!(
                    "{what} still failing after {} attempts (errors.retry.timeout)",
                    self.attempt
                ))
            } else {
                error
            });
        }
        let pause = remaining.map_or(self.delay, |r| r.min(self.delay));
        if let Some(stats) = &self.policy.stats {
            stats.retried();
        }
        tracing::warn!(connector, what, attempt = self.attempt, error = %error, retry_in_ms = pause.as_millis() as u64, "retriable failure; retrying");
        tokio::time::sleep(pause).await;
        self.delay = (self.delay * 2).min(self.policy.max_delay);
        self.attempt += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(timeout: &str, max_delay: &str) -> RetryPolicy {
        RetryPolicy::of(
            &[
                ("errors.retry.timeout".to_owned(), timeout.to_owned()),
                ("errors.retry.delay.max.ms".to_owned(), max_delay.to_owned()),
            ]
            .into(),
        )
    }

    /// Runs `op` under `policy` the way the sink runner does; returns the attempt times.
    async fn attempt_times(
        policy: RetryPolicy,
        succeed_on: usize,
        error: fn() -> Error,
    ) -> (Result<()>, Vec<u128>) {
        let started = tokio::time::Instant::now();
        let mut attempts = policy.attempts();
        let mut times = Vec::new();
        loop {
            times.push(started.elapsed().as_millis());
            let outcome = if times.len() >= succeed_on {
                Ok(())
            } else {
                Err(error())
            };
            match outcome {
                Ok(()) => return (Ok(()), times),
                Err(e) => {
                    if let Err(e) = attempts.after_failure("c", "put", e).await {
                        return (Err(e), times);
                    }
                }
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retriable_failures_are_retried_with_capped_exponential_backoff() {
        let (result, times) =
            attempt_times(policy("60000", "1000"), 4, || Error::retriable("busy")).await;
        assert!(result.is_ok());
        assert_eq!(
            times,
            [0, 300, 900, 1900],
            "300 ms, doubled, capped at 1000 ms"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_timeout_ends_retries_and_other_errors_are_not_retried() {
        let (result, times) = attempt_times(policy("1000", "60000"), usize::MAX, || {
            Error::retriable("busy")
        })
        .await;
        assert!(
            result
                .unwrap_err()
                .message()
                .contains("still failing after 4 attempts")
        );
        assert_eq!(times, [0, 300, 900, 1000]);
        let (result, times) =
            attempt_times(policy("-1", "100"), usize::MAX, || Error::data("bad")).await;
        assert!(result.is_err());
        assert_eq!(times.len(), 1, "a data error is not retried");
        assert!(policy("0", "1").is_off());
    }
}
