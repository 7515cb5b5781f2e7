//! Wall-clock time as the worker records it (timestamps, discovery times, last errors).

/// Milliseconds since the Unix epoch, now (0 on a clock set before 1970).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
