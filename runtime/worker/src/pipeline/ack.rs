//! End-to-end acknowledgement of a source task's poll batches, on either transport: a batch's
//! offsets become committable only when every delivery it produced is durable downstream
//! (flushed by every sink on the direct bus; acknowledged by Kafka on the Kafka transport).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use sluice_api::record::{SourceOffset, SourcePartition};
use tokio::sync::Notify;

/// The last offset per source partition, in first-seen order.
pub(crate) type PartitionOffsets = Vec<(Arc<SourcePartition>, SourceOffset)>;

/// Records `offset` as the latest of `partition`.
pub(crate) fn upsert(
    offsets: &mut PartitionOffsets,
    partition: Arc<SourcePartition>,
    offset: SourceOffset,
) {
    match offsets
        .iter_mut()
        .find(|(p, _)| Arc::ptr_eq(p, &partition) || **p == *partition)
    {
        Some(entry) => entry.1 = offset,
        None => offsets.push((partition, offset)),
    }
}

struct Pending {
    /// Deliveries of this batch not yet acknowledged.
    remaining: u32,
    offsets: PartitionOffsets,
}

#[derive(Default)]
struct TrackerState {
    /// Sequence number of `pending[0]`.
    base: u64,
    pending: VecDeque<Pending>,
    /// Latest fully acknowledged offset per partition, not yet committed.
    acked: PartitionOffsets,
    failure: Option<String>,
}

impl TrackerState {
    fn advance(&mut self) {
        while self.pending.front().is_some_and(|p| p.remaining == 0) {
            let done = self.pending.pop_front().expect("front exists");
            self.base += 1;
            for (partition, offset) in done.offsets {
                upsert(&mut self.acked, partition, offset);
            }
        }
    }
}

/// Tracks which of one source task's poll batches every sink has made durable.
///
/// A sink acknowledges whole deliveries, and a delivery never spans two poll batches, so the
/// tracker keeps one small entry per batch (its delivery count and last offset per partition)
/// rather than one per record: memory stays flat however far sinks' flushes lag behind.
#[derive(Default)]
pub(crate) struct AckTracker {
    state: Mutex<TrackerState>,
    progress: Notify,
}

impl std::fmt::Debug for AckTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckTracker")
            .field("outstanding", &self.outstanding())
            .finish()
    }
}

impl AckTracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, TrackerState> {
        self.state.lock().expect("ack tracker lock")
    }

    /// Registers the next poll batch: its last offset per partition and how many deliveries
    /// it was sent as (0: nothing to wait for, e.g. all filtered). Returns its sequence number.
    pub(crate) fn register(&self, offsets: PartitionOffsets, deliveries: u32) -> u64 {
        let mut state = self.lock();
        let seq = state.base + state.pending.len() as u64;
        state.pending.push_back(Pending {
            remaining: deliveries,
            offsets,
        });
        state.advance();
        seq
    }

    /// One delivery of batch `seq` is durable.
    pub(crate) fn ack(&self, seq: u64) {
        {
            let mut state = self.lock();
            if let Some(index) = seq.checked_sub(state.base)
                && let Some(pending) = state.pending.get_mut(index as usize)
            {
                pending.remaining = pending.remaining.saturating_sub(1);
            }
            state.advance();
        }
        self.progress.notify_waiters();
    }

    /// A sink lost records before making them durable: the source must re-read.
    pub(crate) fn nack(&self, reason: impl Into<String>) {
        let mut state = self.lock();
        if state.failure.is_none() {
            state.failure = Some(reason.into());
        }
        drop(state);
        self.progress.notify_waiters();
    }

    /// Why records were lost downstream, if they were.
    pub(crate) fn failure(&self) -> Option<String> {
        self.lock().failure.clone()
    }

    /// The sequence number of the oldest batch not yet fully acknowledged.
    pub(crate) fn first_unacked(&self) -> u64 {
        self.lock().base
    }

    /// The sequence number the next registered batch gets.
    pub(crate) fn next_seq(&self) -> u64 {
        let state = self.lock();
        state.base + state.pending.len() as u64
    }

    /// Batches registered and not yet fully acknowledged.
    pub(crate) fn outstanding(&self) -> usize {
        self.lock().pending.len()
    }

    /// Takes the latest committable offset per partition.
    pub(crate) fn take_committable(&self) -> Vec<(SourcePartition, SourceOffset)> {
        self.lock()
            .acked
            .drain(..)
            .map(|(p, o)| (Arc::unwrap_or_clone(p), o))
            .collect()
    }

    /// Puts back offsets whose commit failed, unless newer ones arrived meanwhile.
    pub(crate) fn restore(&self, offsets: Vec<(SourcePartition, SourceOffset)>) {
        let mut state = self.lock();
        for (partition, offset) in offsets {
            if !state.acked.iter().any(|(p, _)| **p == partition) {
                state.acked.push((Arc::new(partition), offset));
            }
        }
    }

    /// Waits until some acknowledgement or failure arrives.
    pub(crate) async fn progressed(&self) {
        self.progress.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn offsets(partition: &Arc<SourcePartition>, position: u64) -> PartitionOffsets {
        vec![(
            Arc::clone(partition),
            json!({"position": position}).as_object().unwrap().clone(),
        )]
    }

    #[test]
    fn offsets_commit_only_after_every_earlier_batch_is_acked() {
        let partition = Arc::new(json!({"filename": "f"}).as_object().unwrap().clone());
        let tracker = AckTracker::default();
        let first = tracker.register(offsets(&partition, 10), 2);
        let filtered = tracker.register(offsets(&partition, 20), 0);
        let third = tracker.register(offsets(&partition, 30), 1);
        assert_eq!((first, filtered, third), (0, 1, 2));
        assert!(tracker.take_committable().is_empty());
        tracker.ack(third);
        assert!(
            tracker.take_committable().is_empty(),
            "batch 0 still waits for its sinks"
        );
        tracker.ack(first);
        assert!(
            tracker.take_committable().is_empty(),
            "batch 0 went to two sinks"
        );
        tracker.ack(first);
        let committable = tracker.take_committable();
        assert_eq!(committable.len(), 1);
        assert_eq!(committable[0].1["position"], json!(30));
        assert_eq!((tracker.outstanding(), tracker.first_unacked()), (0, 3));
    }

    #[test]
    fn a_failed_commit_is_restored_unless_newer_offsets_arrived() {
        let partition = Arc::new(json!({"filename": "f"}).as_object().unwrap().clone());
        let tracker = AckTracker::default();
        tracker.register(offsets(&partition, 1), 0);
        let taken = tracker.take_committable();
        tracker.restore(taken.clone());
        assert_eq!(tracker.take_committable(), taken);
        tracker.register(offsets(&partition, 5), 0);
        tracker.restore(taken);
        assert_eq!(tracker.take_committable()[0].1["position"], json!(5));
    }
}
