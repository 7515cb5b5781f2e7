//! The embedded direct pipeline: with no Kafka, sources hand records straight to the sinks
//! subscribed to their topics, in-process.
//!
//! * **Routing**: each sink task subscribes with its connector's `topics` / `topics.regex`.
//!   A record goes to one task of every sink connector whose subscription matches its topic.
//! * **Backpressure**: each sink task has a bounded queue of batches; a source that fills it
//!   waits, so memory stays bounded by `direct.buffer.batches` × batch size per sink task.
//! * **End-to-end acknowledgement**: every source record is registered with its task's
//!   [`AckTracker`] with the number of sink deliveries it produced. A sink acknowledges records
//!   only after its `flush` succeeded; a source offset becomes committable only when its record
//!   and every earlier record of the task are fully acknowledged. So a committed offset always
//!   means "durable in every sink", and a crash loses nothing.
//! * **Failure**: a sink that fails before flushing *nacks* the trackers of the records it held;
//!   their source tasks restart from the last committed offset and deliver them again.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use regex::Regex;
use sluice_api::record::{SinkRecord, SourceOffset, SourcePartition};
use tokio::sync::{Notify, mpsc, watch};

use crate::worker_config::UnroutedPolicy;

/// Which topics a sink task takes.
#[derive(Debug, Clone)]
pub enum TopicFilter {
    Topics(Vec<String>),
    Regex(Regex),
}

impl TopicFilter {
    /// True when `topic` belongs to this subscription.
    pub fn matches(&self, topic: &str) -> bool {
        match self {
            TopicFilter::Topics(topics) => topics.iter().any(|t| t == topic),
            TopicFilter::Regex(regex) => regex.is_match(topic),
        }
    }
}

/// A batch of records for one sink task, with what to acknowledge once it is flushed.
#[derive(Debug)]
pub struct Delivery {
    pub records: Vec<SinkRecord>,
    pub tracker: Arc<AckTracker>,
    /// The source poll batch these records came from.
    pub batch: u64,
}

/// The last offset per source partition, in first-seen order.
pub type PartitionOffsets = Vec<(Arc<SourcePartition>, SourceOffset)>;

/// Records `offset` as the latest of `partition`.
pub fn upsert(
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
pub struct AckTracker {
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
    pub fn register(&self, offsets: PartitionOffsets, deliveries: u32) -> u64 {
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
    pub fn ack(&self, seq: u64) {
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
    pub fn nack(&self, reason: impl Into<String>) {
        let mut state = self.lock();
        if state.failure.is_none() {
            state.failure = Some(reason.into());
        }
        drop(state);
        self.progress.notify_waiters();
    }

    /// Why records were lost downstream, if they were.
    pub fn failure(&self) -> Option<String> {
        self.lock().failure.clone()
    }

    /// The sequence number of the oldest batch not yet fully acknowledged.
    pub fn first_unacked(&self) -> u64 {
        self.lock().base
    }

    /// The sequence number the next registered batch gets.
    pub fn next_seq(&self) -> u64 {
        let state = self.lock();
        state.base + state.pending.len() as u64
    }

    /// Batches registered and not yet fully acknowledged.
    pub fn outstanding(&self) -> usize {
        self.lock().pending.len()
    }

    /// Takes the latest committable offset per partition.
    pub fn take_committable(&self) -> Vec<(SourcePartition, SourceOffset)> {
        self.lock()
            .acked
            .drain(..)
            .map(|(p, o)| (Arc::unwrap_or_clone(p), o))
            .collect()
    }

    /// Puts back offsets whose commit failed, unless newer ones arrived meanwhile.
    pub fn restore(&self, offsets: Vec<(SourcePartition, SourceOffset)>) {
        let mut state = self.lock();
        for (partition, offset) in offsets {
            if !state.acked.iter().any(|(p, _)| **p == partition) {
                state.acked.push((Arc::new(partition), offset));
            }
        }
    }

    /// Waits until some acknowledgement or failure arrives.
    pub async fn progressed(&self) {
        self.progress.notified().await;
    }
}

/// Where records for one subscription go.
#[derive(Debug, Clone)]
pub struct Route {
    pub subscription: u64,
    pub sender: mpsc::Sender<Delivery>,
}

struct Subscription {
    id: u64,
    connector: String,
    filter: TopicFilter,
    sender: mpsc::Sender<Delivery>,
}

/// The in-process topic bus of the embedded pipeline.
pub struct DirectBus {
    subscriptions: RwLock<Vec<Subscription>>,
    generation: AtomicU64,
    next_id: AtomicU64,
    next_offsets: Mutex<HashMap<String, i64>>,
    routes_changed: Notify,
    flush_requests: watch::Sender<u64>,
    pub policy: UnroutedPolicy,
    buffer_batches: usize,
}

impl DirectBus {
    /// A bus whose sink queues hold `buffer_batches` batches each.
    pub fn new(policy: UnroutedPolicy, buffer_batches: usize) -> DirectBus {
        DirectBus {
            subscriptions: RwLock::new(Vec::new()),
            generation: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
            next_offsets: Mutex::new(HashMap::new()),
            routes_changed: Notify::new(),
            flush_requests: watch::channel(0).0,
            policy,
            buffer_batches: buffer_batches.max(1),
        }
    }

    /// Subscribes a sink task; returns its subscription id and queue.
    pub fn subscribe(
        &self,
        connector: &str,
        filter: TopicFilter,
    ) -> (u64, mpsc::Receiver<Delivery>) {
        let (sender, receiver) = mpsc::channel(self.buffer_batches);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.subscriptions
            .write()
            .expect("bus lock")
            .push(Subscription {
                id,
                connector: connector.to_owned(),
                filter,
                sender,
            });
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.routes_changed.notify_waiters();
        (id, receiver)
    }

    /// Removes a subscription; records already queued stay in its queue for draining.
    pub fn unsubscribe(&self, id: u64) {
        self.subscriptions
            .write()
            .expect("bus lock")
            .retain(|s| s.id != id);
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.routes_changed.notify_waiters();
    }

    /// Changes whenever subscriptions change, so routing caches know to refresh.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// One route per sink connector subscribed to `topic` (its tasks share topics by hash).
    pub fn routes(&self, topic: &str) -> Vec<Route> {
        let subscriptions = self.subscriptions.read().expect("bus lock");
        let mut by_connector: Vec<(&str, Vec<&Subscription>)> = Vec::new();
        for s in subscriptions.iter().filter(|s| s.filter.matches(topic)) {
            match by_connector.iter_mut().find(|(c, _)| *c == s.connector) {
                Some((_, tasks)) => tasks.push(s),
                None => by_connector.push((&s.connector, vec![s])),
            }
        }
        by_connector
            .into_iter()
            .map(|(_, tasks)| {
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                topic.hash(&mut hasher);
                let chosen = tasks[(hasher.finish() % tasks.len() as u64) as usize];
                Route {
                    subscription: chosen.id,
                    sender: chosen.sender.clone(),
                }
            })
            .collect()
    }

    /// Waits until subscriptions change.
    pub async fn routes_changed(&self) {
        self.routes_changed.notified().await;
    }

    /// The next offset of `topic` (the direct pipeline numbers records per topic).
    pub fn next_offset(&self, topic: &str) -> i64 {
        let mut offsets = self.next_offsets.lock().expect("offset counter lock");
        match offsets.get_mut(topic) {
            Some(next) => {
                *next += 1;
                *next - 1
            }
            None => {
                offsets.insert(topic.to_owned(), 1);
                0
            }
        }
    }

    /// Asks every sink task to flush now (a source is stopping and waits for its acks).
    pub fn request_flush(&self) {
        self.flush_requests.send_modify(|n| *n += 1);
    }

    /// Notified on every [`DirectBus::request_flush`].
    pub fn flush_requests(&self) -> watch::Receiver<u64> {
        self.flush_requests.subscribe()
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

    #[test]
    fn routes_pick_one_task_per_sink_connector() {
        let bus = DirectBus::new(UnroutedPolicy::Wait, 4);
        let (a0, _ra0) = bus.subscribe("a", TopicFilter::Topics(vec!["t".into()]));
        let (a1, _ra1) = bus.subscribe("a", TopicFilter::Topics(vec!["t".into()]));
        let (b, _rb) = bus.subscribe("b", TopicFilter::Regex(Regex::new("^(?:t|u)$").unwrap()));
        let routes = bus.routes("t");
        assert_eq!(routes.len(), 2);
        assert!(routes.iter().any(|r| r.subscription == b));
        assert!(
            routes
                .iter()
                .any(|r| r.subscription == a0 || r.subscription == a1)
        );
        assert_eq!(bus.routes("u").len(), 1);
        assert!(bus.routes("v").is_empty());
        let before = bus.generation();
        bus.unsubscribe(b);
        assert_ne!(bus.generation(), before);
        assert_eq!(bus.routes("u").len(), 0);
        assert_eq!(
            (
                bus.next_offset("t"),
                bus.next_offset("t"),
                bus.next_offset("u")
            ),
            (0, 1, 0)
        );
    }
}
