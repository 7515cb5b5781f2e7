//! The embedded direct pipeline: with no Kafka, sources hand records straight to the sinks
//! subscribed to their topics, in-process.
//!
//! * **Routing**: each sink task subscribes with its connector's `topics` / `topics.regex`.
//!   A record goes to one task of every sink connector whose subscription matches its topic.
//! * **Backpressure**: each sink task has a bounded queue, in batches
//!   (`direct.buffer.batches`) and in bytes (`direct.buffer.bytes`, estimated with
//!   [`Record::approx_bytes`]); a source that fills it waits. So a sink task's queue holds at
//!   most that many bytes, plus one batch when a single batch is larger than the whole budget
//!   (it then travels alone rather than never).
//! * **End-to-end acknowledgement**: every source record is registered with its task's
//!   [`AckTracker`](super::ack::AckTracker) with the number of sink deliveries it produced. A sink acknowledges records
//!   only after its `flush` succeeded; a source offset becomes committable only when its record
//!   and every earlier record of the task are fully acknowledged. So a committed offset always
//!   means "durable in every sink", and a crash loses nothing.
//! * **Failure**: a sink that fails before flushing *nacks* the trackers of the records it held;
//!   their source tasks restart from the last committed offset and deliver them again.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use sluice_api::record::{Record, SinkRecord, TopicPartition};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};

use super::Sent;
use super::ack::{AckTracker, PartitionOffsets};
use super::topics::TopicFilter;
use crate::config::worker::UnroutedPolicy;
use crate::task::{TaskControl, wait_for_stop};

/// A batch of records for one sink task, with what to acknowledge once it is flushed.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub records: Vec<SinkRecord>,
    pub tracker: Arc<AckTracker>,
    /// The source poll batch these records came from.
    pub batch: u64,
    /// The bytes these records hold of their sink task's queue budget, returned when the
    /// task takes them.
    pub budget: Option<OwnedSemaphorePermit>,
}

/// Where records for one subscription go.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub subscription: u64,
    pub sender: mpsc::Sender<Delivery>,
    /// The subscription's queue budget in bytes.
    pub budget: Arc<Semaphore>,
}

struct Subscription {
    id: u64,
    connector: String,
    filter: TopicFilter,
    sender: mpsc::Sender<Delivery>,
    budget: Arc<Semaphore>,
}

/// The in-process topic bus of the embedded pipeline.
pub(crate) struct DirectBus {
    subscriptions: RwLock<Vec<Subscription>>,
    generation: AtomicU64,
    next_id: AtomicU64,
    next_offsets: Mutex<HashMap<String, i64>>,
    routes_changed: Notify,
    flush_requests: watch::Sender<u64>,
    pub policy: UnroutedPolicy,
    buffer_batches: usize,
    buffer_bytes: u32,
}

impl DirectBus {
    /// A bus whose sink queues hold `buffer_batches` batches and `buffer_bytes` bytes each.
    pub(crate) fn new(
        policy: UnroutedPolicy,
        buffer_batches: usize,
        buffer_bytes: u32,
    ) -> DirectBus {
        DirectBus {
            subscriptions: RwLock::new(Vec::new()),
            generation: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
            next_offsets: Mutex::new(HashMap::new()),
            routes_changed: Notify::new(),
            flush_requests: watch::channel(0).0,
            policy,
            buffer_batches: buffer_batches.max(1),
            buffer_bytes: buffer_bytes.max(1),
        }
    }

    /// Subscribes a sink task; returns its subscription id and queue.
    pub(crate) fn subscribe(
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
                budget: Arc::new(Semaphore::new(self.buffer_bytes as usize)),
            });
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.routes_changed.notify_waiters();
        (id, receiver)
    }

    /// Removes a subscription; records already queued stay in its queue for draining.
    pub(crate) fn unsubscribe(&self, id: u64) {
        self.subscriptions
            .write()
            .expect("bus lock")
            .retain(|s| s.id != id);
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.routes_changed.notify_waiters();
    }

    /// Changes whenever subscriptions change, so routing caches know to refresh.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// One route per sink connector subscribed to `topic` (its tasks share topics by hash).
    pub(crate) fn routes(&self, topic: &str) -> Vec<Route> {
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
                    budget: Arc::clone(&chosen.budget),
                }
            })
            .collect()
    }

    /// Waits until subscriptions change.
    pub(crate) async fn routes_changed(&self) {
        self.routes_changed.notified().await;
    }

    /// The first of `count` consecutive offsets of `topic` (the direct pipeline numbers
    /// records per topic).
    pub(crate) fn reserve_offsets(&self, topic: &str, count: i64) -> i64 {
        let mut offsets = self.next_offsets.lock().expect("offset counter lock");
        match offsets.get_mut(topic) {
            Some(next) => {
                *next += count;
                *next - count
            }
            None => {
                offsets.insert(topic.to_owned(), count);
                0
            }
        }
    }

    /// Asks every sink task to flush now (a source is stopping and waits for its acks).
    pub(crate) fn request_flush(&self) {
        self.flush_requests.send_modify(|n| *n += 1);
    }

    /// Notified on every [`DirectBus::request_flush`].
    pub(crate) fn flush_requests(&self) -> watch::Receiver<u64> {
        self.flush_requests.subscribe()
    }
}

/// A source task's end of the bus: routes each record to one task of every sink connector
/// subscribed to its topic, waiting (under the `wait` policy) for a subscriber.
pub(crate) struct DirectOutput {
    bus: Arc<DirectBus>,
    connector: String,
    routes: HashMap<String, Vec<Route>>,
    routes_generation: u64,
    warned_unrouted: HashSet<String>,
}

impl DirectOutput {
    /// The end of `bus` for a source task of `connector`.
    pub(crate) fn new(bus: Arc<DirectBus>, connector: &str) -> DirectOutput {
        DirectOutput {
            bus,
            connector: connector.to_owned(),
            routes: HashMap::new(),
            routes_generation: u64::MAX,
            warned_unrouted: HashSet::new(),
        }
    }

    /// Asks every sink to flush now (a source is stopping and waits for its acks).
    pub(crate) fn request_flush(&self) {
        self.bus.request_flush();
    }

    fn routes_for(&mut self, topic: &str) -> Vec<Route> {
        let generation = self.bus.generation();
        if generation != self.routes_generation {
            self.routes.clear();
            self.routes_generation = generation;
        }
        if let Some(routes) = self.routes.get(topic) {
            return routes.clone();
        }
        let routes = self.bus.routes(topic);
        self.routes.insert(topic.to_owned(), routes.clone());
        routes
    }

    /// The routes of `topic`, waiting for a subscriber under the `wait` policy. `None`: the
    /// task is stopping.
    async fn wait_for_routes(
        &mut self,
        topic: &str,
        control: &mut watch::Receiver<TaskControl>,
    ) -> Option<Vec<Route>> {
        loop {
            let routes = self.routes_for(topic);
            if !routes.is_empty() || self.bus.policy == UnroutedPolicy::Drop {
                return Some(routes);
            }
            if self.warned_unrouted.insert(topic.to_owned()) {
                tracing::warn!(
                    connector = %self.connector, topic,
                    "no sink subscribes to this topic; the source waits (nothing is lost). Add a sink \
                     with `topics={topic}`, or set `direct.unrouted.records=drop` in the worker config"
                );
            }
            tokio::select! {
                _ = self.bus.routes_changed() => {}
                _ = control.changed() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            if *control.borrow() == TaskControl::Stop {
                return None;
            }
        }
    }

    /// Sends one poll batch's records to their sinks and registers the batch with `tracker`
    /// (one delivery per sink task it reached). A stop request cuts the wait for routes or
    /// for room in a sink's queue short.
    pub(crate) async fn send(
        &mut self,
        records: Vec<Record>,
        offsets: PartitionOffsets,
        tracker: &Arc<AckTracker>,
        control: &mut watch::Receiver<TaskControl>,
    ) -> Sent {
        // Per topic of the batch (a source sends to few, in runs), once: its routes and its
        // offsets, reserved in one go. Per record, that was a map lookup, a clone of the
        // routes and a lock, which cost as much as building a simple record.
        let mut topics: Vec<BatchTopic> = Vec::new();
        let mut topic_of: Vec<u32> = Vec::with_capacity(records.len());
        for record in &records {
            let index = match topics.last() {
                Some(last) if last.name == record.topic.as_str() => topics.len() - 1,
                _ => match topics.iter().position(|t| t.name == record.topic.as_str()) {
                    Some(index) => index,
                    None => {
                        let Some(routes) = self.wait_for_routes(&record.topic, control).await
                        else {
                            return Sent::Stopping { abandoned: None };
                        };
                        topics.push(BatchTopic {
                            name: record.topic.as_str().to_owned(),
                            routes,
                            count: 0,
                            next: 0,
                        });
                        topics.len() - 1
                    }
                },
            };
            topics[index].count += 1;
            topic_of.push(index as u32);
        }
        for topic in &mut topics {
            if !topic.routes.is_empty() {
                topic.next = self.bus.reserve_offsets(&topic.name, topic.count);
            }
        }
        let mut outgoing: Vec<(Route, Vec<SinkRecord>)> = Vec::new();
        for (record, index) in records.into_iter().zip(topic_of) {
            let topic = &mut topics[index as usize];
            let Some((last, others)) = topic.routes.split_last() else {
                continue;
            };
            let offset = topic.next;
            topic.next += 1;
            let room = topic.count as usize;
            for route in others {
                push(&mut outgoing, route, record.clone(), offset, room);
            }
            push(&mut outgoing, last, record, offset, room);
        }
        let seq = tracker.register(offsets, outgoing.len() as u32);
        for (route, records) in outgoing {
            let bytes: usize = records.iter().map(|r| r.record.approx_bytes()).sum();
            // A batch over the whole budget waits for all of it and then travels alone.
            let wanted = u32::try_from(bytes)
                .unwrap_or(u32::MAX)
                .clamp(1, self.bus.buffer_bytes);
            let budget = tokio::select! {
                permit = Arc::clone(&route.budget).acquire_many_owned(wanted) => permit.ok(),
                _ = wait_for_stop(control) => return Sent::Stopping { abandoned: Some(seq) },
            };
            let delivery = Delivery {
                records,
                tracker: Arc::clone(tracker),
                batch: seq,
                budget,
            };
            tokio::select! {
                sent = route.sender.send(delivery) => {
                    if sent.is_err() {
                        tracker.nack("a sink task stopped before taking its records");
                    }
                }
                _ = wait_for_stop(control) => return Sent::Stopping { abandoned: Some(seq) },
            }
        }
        Sent::Done
    }
}

/// A topic of a batch being sent: its routes, how many of its records the batch holds, and the
/// offset of the next one.
struct BatchTopic {
    name: String,
    routes: Vec<Route>,
    count: i64,
    next: i64,
}

/// Adds `record` to its route's records; a route's first gets room for `room` (its topic's
/// records in the batch) up front, as growing copies every record again.
fn push(
    outgoing: &mut Vec<(Route, Vec<SinkRecord>)>,
    route: &Route,
    record: Record,
    offset: i64,
    room: usize,
) {
    let record = SinkRecord {
        kafka_partition: record.partition.unwrap_or(0),
        kafka_offset: offset,
        record,
    };
    match outgoing
        .iter_mut()
        .find(|(r, _)| r.subscription == route.subscription)
    {
        Some((_, records)) => records.push(record),
        None => {
            let mut records = Vec::with_capacity(room);
            records.push(record);
            outgoing.push((route.clone(), records));
        }
    }
}

/// A sink task's end of the bus: its subscription's queue, and the deliveries it took but
/// has not flushed yet, to acknowledge once it has.
pub(crate) struct DirectInput {
    bus: Arc<DirectBus>,
    subscription: Option<u64>,
    // Behind async mutexes so that waiting for a delivery and for a flush request can race
    // in one `select!` on a shared borrow; only the task's own loop ever locks them.
    queue: tokio::sync::Mutex<mpsc::Receiver<Delivery>>,
    flush_requests: tokio::sync::Mutex<watch::Receiver<u64>>,
    unflushed: Vec<(Arc<AckTracker>, u64)>,
    /// Next offset per topic partition of everything taken, for `SinkTask::flush`.
    pub(crate) positions: HashMap<TopicPartition, i64>,
}

impl DirectInput {
    /// Subscribes a sink task of `connector` to the topics of `filter`.
    pub(crate) fn subscribe(
        bus: Arc<DirectBus>,
        connector: &str,
        filter: TopicFilter,
    ) -> DirectInput {
        let (subscription, queue) = bus.subscribe(connector, filter);
        let flush_requests = bus.flush_requests();
        DirectInput {
            bus,
            subscription: Some(subscription),
            queue: tokio::sync::Mutex::new(queue),
            flush_requests: tokio::sync::Mutex::new(flush_requests),
            unflushed: Vec::new(),
            positions: HashMap::new(),
        }
    }

    /// The next delivery; `None` once the queue is closed and empty. Cancel-safe.
    pub(crate) async fn next(&self) -> Option<Delivery> {
        self.queue.lock().await.recv().await
    }

    /// Takes a delivery's records: they are acknowledged at the next [`DirectInput::flushed`].
    pub(crate) fn take(&mut self, delivery: Delivery) -> Vec<SinkRecord> {
        let Delivery {
            records,
            tracker,
            batch,
            budget,
        } = delivery;
        drop(budget);
        self.unflushed.push((tracker, batch));
        for record in &records {
            let next = record.kafka_offset + 1;
            let entry = self
                .positions
                .entry(record.topic_partition())
                .or_insert(next);
            *entry = (*entry).max(next);
        }
        records
    }

    /// Whether anything was taken since the last flush.
    pub(crate) fn has_unflushed(&self) -> bool {
        !self.unflushed.is_empty()
    }

    /// The task flushed: everything taken is durable, so its sources may commit.
    pub(crate) fn flushed(&mut self) {
        for (tracker, batch) in self.unflushed.drain(..) {
            tracker.ack(batch);
        }
    }

    /// Resolves when a stopping source asks every sink to flush now. Cancel-safe.
    pub(crate) async fn flush_requested(&self) {
        if self.flush_requests.lock().await.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Leaves the bus: no new deliveries; those already queued can still be taken.
    pub(crate) fn close(&mut self) {
        if let Some(subscription) = self.subscription.take() {
            self.bus.unsubscribe(subscription);
        }
        self.queue.get_mut().close();
    }

    /// After a failure: every source whose records this task held must re-read them.
    pub(crate) async fn fail(&mut self, reason: &str) {
        self.close();
        for (tracker, _) in self.unflushed.drain(..) {
            tracker.nack(reason);
        }
        while let Some(delivery) = self.queue.get_mut().recv().await {
            delivery.tracker.nack(reason);
        }
    }
}

impl Drop for DirectInput {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_pick_one_task_per_sink_connector() {
        let bus = DirectBus::new(UnroutedPolicy::Wait, 4, 1 << 20);
        let (a0, _ra0) = bus.subscribe("a", TopicFilter::Topics(vec!["t".into()]));
        let (a1, _ra1) = bus.subscribe("a", TopicFilter::Topics(vec!["t".into()]));
        let filter =
            TopicFilter::of(&sluice_api::config::props(&[("topics.regex", "t|u")])).unwrap();
        let (b, _rb) = bus.subscribe("b", filter);
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
                bus.reserve_offsets("t", 1),
                bus.reserve_offsets("t", 3),
                bus.reserve_offsets("u", 2),
                bus.reserve_offsets("t", 1),
            ),
            (0, 1, 0, 4)
        );
    }
}
