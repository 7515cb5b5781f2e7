//! Runs tasks: the source loop (poll → transform → route → commit acknowledged offsets) and the
//! sink loop (receive → transform → put → flush → acknowledge), on the embedded direct
//! pipeline.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use regex::Regex;
use sluice_api::config::{Props, split_list};
use sluice_api::connector::{
    ConnectorFactory, ConnectorPlugin, SinkTask, SinkTaskContext, SourceTask, SourceTaskContext,
};
use sluice_api::record::{Record, SinkRecord, SourceRecord, TopicPartition};
use sluice_api::{Error, Result};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::direct::{
    AckTracker, Delivery, DirectBus, PartitionOffsets, Route, TopicFilter, upsert,
};
use crate::errors::{RetryPolicy, Tolerance};
use crate::kafka::KafkaSettings;
use crate::kafka::sink::KafkaSinkInput;
use crate::kafka::source::KafkaSource;
use crate::offsets::{ConnectorOffsetReader, OffsetStore};
use crate::registry::Registry;
use crate::status::{State, StatusCell};
use crate::transforms::TransformChain;
use crate::worker_config::UnroutedPolicy;

/// What every task runner shares.
pub struct WorkerContext {
    pub worker_id: String,
    pub registry: Registry,
    pub offsets: Arc<dyn OffsetStore>,
    pub bus: Arc<DirectBus>,
    /// The Kafka transport, when the worker has `bootstrap.servers`; `None`: the embedded
    /// direct pipeline (`bus`).
    pub kafka: Option<Arc<KafkaSettings>>,
    /// How often sinks flush and sources commit (`offset.flush.interval.ms`).
    pub flush_interval: Duration,
    /// How long a stopping task may take to flush and commit.
    pub shutdown_timeout: Duration,
}

/// What the herder asks a running task to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskControl {
    Run,
    Pause,
    Stop,
}

/// Everything a task runner needs to (re)create its task.
#[derive(Clone)]
pub struct TaskSpec {
    pub connector: String,
    pub plugin: ConnectorPlugin,
    /// The connector's full config (transforms, error handling, topics).
    pub connector_config: Props,
    pub task_id: u32,
    pub task_config: Props,
}

/// A running task.
pub struct TaskHandle {
    pub id: u32,
    pub config: Props,
    pub status: StatusCell,
    control: watch::Sender<TaskControl>,
    join: JoinHandle<()>,
}

impl TaskHandle {
    /// Starts a task runner for `spec`, running or paused.
    pub fn spawn(ctx: Arc<WorkerContext>, spec: TaskSpec, initial: TaskControl) -> TaskHandle {
        let status = StatusCell::new(State::Unassigned);
        let (control, receiver) = watch::channel(initial);
        let id = spec.task_id;
        let config = spec.task_config.clone();
        let runner_status = status.clone();
        let join = tokio::spawn(async move {
            let name = format!("{}-{}", spec.connector, spec.task_id);
            let result = match spec.plugin.factory {
                ConnectorFactory::Source(_) => {
                    SourceRunner::new(ctx, spec, runner_status.clone(), receiver)
                        .run()
                        .await
                }
                ConnectorFactory::Sink(_) => {
                    SinkRunner::new(ctx, spec, runner_status.clone(), receiver)
                        .run()
                        .await
                }
            };
            if let Err(error) = result {
                tracing::error!(task = %name, error = %error.trace(), "task failed");
                runner_status.fail(error.trace());
            }
        });
        TaskHandle {
            id,
            config,
            status,
            control,
            join,
        }
    }

    /// Asks the task to run or pause.
    pub fn set(&self, control: TaskControl) {
        self.control.send_replace(control);
    }

    /// Asks the task to stop and waits up to `timeout` for it to flush, commit and stop;
    /// after that it is aborted (what it had not committed is delivered again later).
    pub async fn stop(self, timeout: Duration) {
        self.control.send_replace(TaskControl::Stop);
        let abort = self.join.abort_handle();
        if tokio::time::timeout(timeout, self.join).await.is_err() {
            tracing::warn!(task = self.id, "task did not stop in time; aborted");
            abort.abort();
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Whether dispatch finished or was cut short by a stop request.
enum Dispatched {
    Done,
    Stopping,
}

/// What delivering a polled batch needs besides its records.
#[derive(Default)]
struct Polled {
    /// The last source offset of each partition in the batch.
    last_offsets: PartitionOffsets,
    /// Each record as it was polled, for error logs (`errors.log.include.messages`).
    descriptions: Vec<String>,
    /// Each record as it was polled, for the dead letter queue.
    originals: Vec<Record>,
}

impl Polled {
    fn transformed(self, results: Vec<Result<Vec<Record>>>) -> Transformed {
        Transformed {
            polled: self,
            results,
        }
    }
}

/// A polled batch after the transform chain: per record, what it became or why it failed.
struct Transformed {
    polled: Polled,
    results: Vec<Result<Vec<Record>>>,
}

/// A batch being transformed on a blocking thread; the chain travels with it and comes back.
type InFlight = JoinHandle<(TransformChain, Transformed)>;

/// Polls of at least this many records are transformed on another thread while the next poll
/// runs, so a costly chain (a WASM plugin, say) overlaps reading instead of adding to it. A
/// smaller poll means the source is keeping up: it is transformed in line, saving the hand-off.
const TRANSFORM_ASIDE_AT: usize = 256;

struct SourceRunner {
    ctx: Arc<WorkerContext>,
    spec: TaskSpec,
    status: StatusCell,
    control: watch::Receiver<TaskControl>,
    chain: TransformChain,
    tolerance: Tolerance,
    routes: HashMap<String, Vec<Route>>,
    routes_generation: u64,
    warned_unrouted: HashSet<String>,
    /// The producer, on the Kafka transport.
    kafka: Option<KafkaSource>,
    /// The poll batch a stop request left partly unsent: a clean stop waits only for the
    /// batches before it.
    abandoned_from: Option<u64>,
}

impl SourceRunner {
    fn new(
        ctx: Arc<WorkerContext>,
        spec: TaskSpec,
        status: StatusCell,
        control: watch::Receiver<TaskControl>,
    ) -> SourceRunner {
        let tolerance = Tolerance::of(&spec.connector_config);
        SourceRunner {
            ctx,
            spec,
            status,
            control,
            chain: TransformChain::default(),
            tolerance,
            routes: HashMap::new(),
            routes_generation: u64::MAX,
            warned_unrouted: HashSet::new(),
            abandoned_from: None,
            kafka: None,
        }
    }

    fn stopping(&self) -> bool {
        *self.control.borrow() == TaskControl::Stop
    }

    async fn start_task(&mut self) -> Result<Box<dyn SourceTask>> {
        let ConnectorFactory::Source(factory) = self.spec.plugin.factory else {
            return Err(Error::fatal("a sink plugin was started as a source task"));
        };
        let mut task = factory().create_task();
        task.start(SourceTaskContext {
            connector: self.spec.connector.clone(),
            task_id: self.spec.task_id,
            config: self.spec.task_config.clone(),
            offsets: Arc::new(ConnectorOffsetReader {
                connector: self.spec.connector.clone(),
                store: Arc::clone(&self.ctx.offsets),
            }),
            metrics: self.status.metrics.clone(),
        })
        .await?;
        Ok(task)
    }

    async fn run(mut self) -> Result<()> {
        self.chain = TransformChain::from_config(&self.ctx.registry, &self.spec.connector_config)?;
        if let Some(settings) = &self.ctx.kafka {
            let source = KafkaSource::new(
                settings,
                &self.spec.connector,
                self.spec.task_id,
                &self.spec.connector_config,
            )
            .await?;
            self.kafka = Some(source);
        }
        loop {
            let mut task = self.start_task().await?;
            let tracker = Arc::new(AckTracker::default());
            let rewind = self.poll_loop(task.as_mut(), &tracker).await;
            match rewind {
                Ok(true) => {
                    // A sink lost records before flushing them: re-read from the last commit.
                    self.commit(task.as_mut(), &tracker).await;
                    if let Err(e) = task.stop().await {
                        tracing::warn!(connector = %self.spec.connector, error = %e, "task stop failed");
                    }
                    continue;
                }
                Ok(false) => {
                    self.finish(task.as_mut(), &tracker).await;
                    if let Some(kafka) = &self.kafka {
                        let latency = &kafka.latency;
                        tracing::info!(
                            connector = %self.spec.connector, task = self.spec.task_id, records = latency.count(),
                            p50_ms = latency.quantile(0.5).as_secs_f64() * 1e3,
                            p99_ms = latency.quantile(0.99).as_secs_f64() * 1e3,
                            "produce latency"
                        );
                    }
                    return Ok(());
                }
                Err(error) => {
                    // What was acknowledged before the failure is durable: keep it.
                    self.commit(task.as_mut(), &tracker).await;
                    let _ = task.stop().await;
                    return Err(error);
                }
            }
        }
    }

    /// Polls until stopped (`Ok(false)`) or until a sink lost records (`Ok(true)`).
    async fn poll_loop(
        &mut self,
        task: &mut dyn SourceTask,
        tracker: &Arc<AckTracker>,
    ) -> Result<bool> {
        let mut in_flight = None;
        let outcome = self.polling(task, tracker, &mut in_flight).await;
        if let Some(transforming) = in_flight {
            // Not delivered, so its offsets were never registered: it is read again after a
            // restart. The chain comes back for the next run of the loop.
            if let Ok((chain, _)) = transforming.await {
                self.chain = chain;
            }
        }
        outcome
    }

    async fn polling(
        &mut self,
        task: &mut dyn SourceTask,
        tracker: &Arc<AckTracker>,
        in_flight: &mut Option<InFlight>,
    ) -> Result<bool> {
        let mut last_commit = Instant::now();
        loop {
            let control = *self.control.borrow_and_update();
            match control {
                TaskControl::Stop => return Ok(false),
                TaskControl::Pause => {
                    if let Some(transforming) = in_flight.take() {
                        let transformed = self.take_back(transforming.await)?;
                        if matches!(
                            self.deliver(transformed, tracker).await?,
                            Dispatched::Stopping
                        ) {
                            return Ok(false);
                        }
                    }
                    self.status.set(State::Paused);
                    tokio::select! {
                        _ = self.control.changed() => {}
                        _ = tokio::time::sleep(self.ctx.flush_interval) => {}
                    }
                    self.commit(task, tracker).await;
                    continue;
                }
                TaskControl::Run => {
                    if self.status.get().state != State::Running {
                        self.status.set(State::Running);
                    }
                }
            }
            if let Some(reason) = tracker.failure() {
                tracing::warn!(
                    connector = %self.spec.connector, task = self.spec.task_id, reason = %reason,
                    "records were lost downstream before being flushed; re-reading from the last committed offset"
                );
                return Ok(true);
            }
            // The previous batch is transformed on another thread while this poll runs, and is
            // delivered as soon as it is ready, even while the poll still waits for data. (The
            // poll itself is never cut short: a source need not be cancellation-safe.)
            let mut poll = task.poll();
            let batch = loop {
                let Some(transforming) = in_flight.as_mut() else {
                    break (&mut poll).await?;
                };
                tokio::select! {
                    biased;
                    transformed = transforming => {
                        *in_flight = None;
                        let transformed = self.take_back(transformed)?;
                        if matches!(self.deliver(transformed, tracker).await?, Dispatched::Stopping) {
                            return Ok(false);
                        }
                    }
                    batch = &mut poll => break batch?,
                }
            };
            drop(poll);
            // Take the chain back from the previous batch, set it on this one, then deliver the
            // previous batch while this one is transformed.
            let previous = match in_flight.take() {
                Some(transforming) => Some(self.take_back(transforming.await)?),
                None => None,
            };
            let mut in_line = None;
            if !batch.is_empty() {
                let (records, polled) = self.unpack(batch);
                if records.len() >= TRANSFORM_ASIDE_AT && !self.chain.is_empty() {
                    let mut chain = std::mem::take(&mut self.chain);
                    *in_flight = Some(tokio::task::spawn_blocking(move || {
                        let results = chain.apply_batch(records);
                        (chain, polled.transformed(results))
                    }));
                } else {
                    in_line = Some((records, polled));
                }
            }
            if let Some(transformed) = previous
                && matches!(
                    self.deliver(transformed, tracker).await?,
                    Dispatched::Stopping
                )
            {
                return Ok(false);
            }
            if let Some((records, polled)) = in_line {
                let transformed = polled.transformed(self.chain.apply_batch(records));
                if matches!(
                    self.deliver(transformed, tracker).await?,
                    Dispatched::Stopping
                ) {
                    return Ok(false);
                }
            }
            if last_commit.elapsed() >= self.ctx.flush_interval && self.commit(task, tracker).await
            {
                last_commit = Instant::now();
            }
        }
    }

    /// Takes back the chain from a batch transformed aside; the batch, ready to deliver.
    fn take_back(
        &mut self,
        joined: std::result::Result<(TransformChain, Transformed), tokio::task::JoinError>,
    ) -> Result<Transformed> {
        let (chain, transformed) = joined
            .map_err(|e| Error::fatal(format!("the transform chain panicked on a batch: {e}")))?;
        self.chain = chain;
        Ok(transformed)
    }

    fn routes_for(&mut self, topic: &str) -> Vec<Route> {
        let generation = self.ctx.bus.generation();
        if generation != self.routes_generation {
            self.routes.clear();
            self.routes_generation = generation;
        }
        if let Some(routes) = self.routes.get(topic) {
            return routes.clone();
        }
        let routes = self.ctx.bus.routes(topic);
        self.routes.insert(topic.to_owned(), routes.clone());
        routes
    }

    /// The routes of `topic`, waiting for a subscriber under the `wait` policy. `None`: the
    /// task is stopping.
    async fn wait_for_routes(&mut self, topic: &str) -> Option<Vec<Route>> {
        loop {
            let routes = self.routes_for(topic);
            if !routes.is_empty() || self.ctx.bus.policy == UnroutedPolicy::Drop {
                return Some(routes);
            }
            if self.warned_unrouted.insert(topic.to_owned()) {
                tracing::warn!(
                    connector = %self.spec.connector, topic,
                    "no sink subscribes to this topic; the source waits (nothing is lost). Add a sink \
                     with `topics={topic}`, or set `direct.unrouted.records=drop` in the worker config"
                );
            }
            tokio::select! {
                _ = self.ctx.bus.routes_changed() => {}
                _ = self.control.changed() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            if self.stopping() {
                return None;
            }
        }
    }

    /// Splits a poll into its records (timestamped) and what delivering them needs besides.
    fn unpack(&self, batch: Vec<SourceRecord>) -> (Vec<Record>, Polled) {
        let timestamp = now_ms();
        let keep_originals = self
            .kafka
            .as_ref()
            .is_some_and(|k| k.has_dead_letter_queue());
        let mut polled = Polled::default();
        let mut records = Vec::with_capacity(batch.len());
        for source in batch {
            let SourceRecord {
                mut record,
                source_partition,
                source_offset,
            } = source;
            upsert(&mut polled.last_offsets, source_partition, source_offset);
            record.timestamp_ms.get_or_insert(timestamp);
            if self.tolerance.log_messages {
                polled.descriptions.push(format!("{record:?}"));
            }
            if keep_originals {
                polled.originals.push(record.clone());
            }
            records.push(record);
        }
        (records, polled)
    }

    /// Handles the records the chain failed (tolerance, dead letter queue) and sends the rest
    /// on, registering the batch's offsets to be committed once everything sent is acknowledged.
    async fn deliver(
        &mut self,
        transformed: Transformed,
        tracker: &Arc<AckTracker>,
    ) -> Result<Dispatched> {
        let Transformed {
            polled:
                Polled {
                    last_offsets,
                    descriptions,
                    originals,
                },
            results,
        } = transformed;
        let mut descriptions = descriptions.into_iter();
        let mut originals = originals.into_iter();
        let mut outputs = Vec::with_capacity(results.len());
        for result in results {
            let description = descriptions.next().unwrap_or_default();
            let original = originals.next();
            match result {
                Ok(records) => outputs.extend(records),
                Err(error) => {
                    self.tolerance.handle(
                        &self.spec.connector,
                        "TRANSFORMATION",
                        &error,
                        || description,
                    )?;
                    if let (Some(kafka), Some(record)) = (self.kafka.as_ref(), original) {
                        kafka.dead_letter(&record, "TRANSFORMATION", &error).await?;
                    }
                }
            }
        }
        if let Some(kafka) = self.kafka.as_mut() {
            kafka
                .send(outputs, last_offsets, tracker, &self.tolerance)
                .await?;
            return Ok(Dispatched::Done);
        }
        let mut outgoing: Vec<(Route, Vec<SinkRecord>)> = Vec::new();
        for out in outputs {
            let Some(routes) = self.wait_for_routes(&out.topic).await else {
                return Ok(Dispatched::Stopping);
            };
            let Some((last, others)) = routes.split_last() else {
                continue;
            };
            let offset = self.ctx.bus.next_offset(&out.topic);
            for route in others {
                push(&mut outgoing, route, out.clone(), offset);
            }
            push(&mut outgoing, last, out, offset);
        }
        let seq = tracker.register(last_offsets, outgoing.len() as u32);
        for (route, records) in outgoing {
            let delivery = Delivery {
                records,
                tracker: Arc::clone(tracker),
                batch: seq,
            };
            tokio::select! {
                sent = route.sender.send(delivery) => {
                    if sent.is_err() {
                        tracker.nack("a sink task stopped before taking its records");
                    }
                }
                _ = wait_for_stop(&mut self.control) => {
                    self.abandoned_from = Some(seq);
                    return Ok(Dispatched::Stopping);
                }
            }
        }
        Ok(Dispatched::Done)
    }

    /// Commits what every sink has acknowledged. True when something was committed.
    async fn commit(&mut self, task: &mut dyn SourceTask, tracker: &AckTracker) -> bool {
        let offsets = tracker.take_committable();
        if offsets.is_empty() {
            return false;
        }
        let writes = offsets
            .iter()
            .map(|(p, o)| (p.clone(), Some(o.clone())))
            .collect();
        match self.ctx.offsets.put(&self.spec.connector, writes).await {
            Ok(()) => {
                tracing::debug!(connector = %self.spec.connector, ?offsets, "offsets committed");
                if let Err(e) = task.offsets_committed(&offsets).await {
                    tracing::warn!(connector = %self.spec.connector, error = %e, "offsets_committed callback failed");
                }
                true
            }
            Err(e) => {
                tracing::error!(connector = %self.spec.connector, error = %e.trace(), "offset commit failed; will retry");
                tracker.restore(offsets);
                false
            }
        }
    }

    /// Clean stop: wait (bounded) for sinks to acknowledge what was sent, commit, stop.
    async fn finish(&mut self, task: &mut dyn SourceTask, tracker: &Arc<AckTracker>) {
        self.ctx.bus.request_flush();
        let deadline = Instant::now() + self.ctx.shutdown_timeout;
        let sent_until = self.abandoned_from.unwrap_or_else(|| tracker.next_seq());
        while tracker.first_unacked() < sent_until
            && tracker.failure().is_none()
            && Instant::now() < deadline
        {
            let _ = tokio::time::timeout(Duration::from_millis(50), tracker.progressed()).await;
        }
        if tracker.first_unacked() < sent_until {
            tracing::warn!(
                connector = %self.spec.connector, outstanding = tracker.outstanding(),
                "stopping with records not yet flushed by every sink; they will be read again on restart"
            );
        }
        self.commit(task, tracker).await;
        if let Err(e) = task.stop().await {
            tracing::warn!(connector = %self.spec.connector, error = %e, "task stop failed");
        }
    }
}

fn push(outgoing: &mut Vec<(Route, Vec<SinkRecord>)>, route: &Route, record: Record, offset: i64) {
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
        None => outgoing.push((route.clone(), vec![record])),
    }
}

async fn wait_for_stop(control: &mut watch::Receiver<TaskControl>) {
    while *control.borrow_and_update() != TaskControl::Stop {
        if control.changed().await.is_err() {
            return;
        }
    }
}

/// The topics a sink connector takes: `topics` or `topics.regex` (whole-name match).
pub fn topic_filter(config: &Props) -> Result<TopicFilter> {
    match config.get("topics.regex").filter(|r| !r.trim().is_empty()) {
        Some(pattern) => Regex::new(&format!("^(?:{pattern})$"))
            .map(TopicFilter::Regex)
            .map_err(|e| {
                Error::config(format!(
                    "`topics.regex` is not a valid regular expression: {e}"
                ))
            }),
        None => Ok(TopicFilter::Topics(
            config
                .get("topics")
                .map(|t| split_list(t))
                .unwrap_or_default(),
        )),
    }
}

struct SinkRunner {
    ctx: Arc<WorkerContext>,
    spec: TaskSpec,
    status: StatusCell,
    control: watch::Receiver<TaskControl>,
    chain: TransformChain,
    tolerance: Tolerance,
    /// Retries of retriable `put`/`flush` failures.
    retry: RetryPolicy,
    /// Deliveries put but not yet flushed, to acknowledge after the next flush.
    unflushed: Vec<(Arc<AckTracker>, u64)>,
    offsets: HashMap<TopicPartition, i64>,
}

impl SinkRunner {
    fn new(
        ctx: Arc<WorkerContext>,
        spec: TaskSpec,
        status: StatusCell,
        control: watch::Receiver<TaskControl>,
    ) -> SinkRunner {
        let tolerance = Tolerance::of(&spec.connector_config);
        let retry = RetryPolicy::of(&spec.connector_config);
        SinkRunner {
            ctx,
            spec,
            status,
            control,
            chain: TransformChain::default(),
            tolerance,
            retry,
            unflushed: Vec::new(),
            offsets: HashMap::new(),
        }
    }

    async fn run(mut self) -> Result<()> {
        let ConnectorFactory::Sink(factory) = self.spec.plugin.factory else {
            return Err(Error::fatal("a source plugin was started as a sink task"));
        };
        self.chain = TransformChain::from_config(&self.ctx.registry, &self.spec.connector_config)?;
        let filter = topic_filter(&self.spec.connector_config)?;
        let mut task = factory().create_task();
        let mut context = SinkTaskContext {
            connector: self.spec.connector.clone(),
            task_id: self.spec.task_id,
            config: self.spec.task_config.clone(),
            metrics: self.status.metrics.clone(),
            errant_records: None,
        };
        if let Some(settings) = self.ctx.kafka.clone() {
            // The consumer (and the dead letter queue the task reports to) before the task,
            // as in Kafka Connect.
            let input = KafkaSinkInput::new(
                &settings,
                &self.spec.connector,
                self.spec.task_id,
                &self.spec.connector_config,
            )
            .await?;
            context.errant_records =
                input.errant_reporter(&settings, &self.spec.connector_config, self.tolerance)?;
            task.start(context).await?;
            let result = self.run_kafka(task.as_mut(), input).await;
            let stopped = task.stop().await;
            return result.and(stopped);
        }
        task.start(context).await?;
        let (subscription, mut queue) = self.ctx.bus.subscribe(&self.spec.connector, filter);
        let result = self.consume(task.as_mut(), &mut queue).await;
        self.ctx.bus.unsubscribe(subscription);
        queue.close();
        let result = match result {
            Ok(()) => self.drain(task.as_mut(), &mut queue).await,
            Err(e) => Err(e),
        };
        if let Err(error) = result {
            self.nack_all(&mut queue, &error).await;
            let _ = task.stop().await;
            return Err(error);
        }
        task.stop().await
    }

    async fn consume(
        &mut self,
        task: &mut dyn SinkTask,
        queue: &mut mpsc::Receiver<Delivery>,
    ) -> Result<()> {
        let mut flush_requests = self.ctx.bus.flush_requests();
        let mut tick = tokio::time::interval(self.ctx.flush_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            let control = *self.control.borrow_and_update();
            match control {
                TaskControl::Stop => return Ok(()),
                TaskControl::Pause => self.status.set(State::Paused),
                TaskControl::Run => {
                    if self.status.get().state != State::Running {
                        self.status.set(State::Running);
                    }
                }
            }
            tokio::select! {
                changed = self.control.changed() => {
                    if changed.is_err() { return Ok(()); }
                    if *self.control.borrow() == TaskControl::Pause {
                        self.flush(task).await?;
                    }
                }
                _ = tick.tick() => self.flush(task).await?,
                _ = flush_requests.changed() => self.flush(task).await?,
                delivery = queue.recv(), if control == TaskControl::Run => match delivery {
                    Some(delivery) => self.put(task, delivery).await?,
                    None => return Ok(()),
                },
            }
        }
    }

    /// The sink loop on the Kafka transport: consume, put, and on every flush interval (and at
    /// pause, at stop and before a rebalance takes partitions away) flush the task and then
    /// commit the consumer offsets.
    async fn run_kafka(
        &mut self,
        task: &mut dyn SinkTask,
        mut input: KafkaSinkInput,
    ) -> Result<()> {
        let mut tick = tokio::time::interval(self.ctx.flush_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut paused = false;
        let mut unflushed = false;
        loop {
            let control = *self.control.borrow_and_update();
            match control {
                TaskControl::Stop => break,
                TaskControl::Pause if !paused => {
                    flush_and_commit(
                        &self.retry,
                        &self.spec.connector,
                        task,
                        &mut input,
                        &mut unflushed,
                    )
                    .await?;
                    input.set_paused(true)?;
                    paused = true;
                    self.status.set(State::Paused);
                }
                TaskControl::Run if paused || self.status.get().state != State::Running => {
                    if paused {
                        input.set_paused(false)?;
                        paused = false;
                    }
                    self.status.set(State::Running);
                }
                _ => {}
            }
            let first = tokio::select! {
                changed = self.control.changed() => {
                    if changed.is_err() { break; }
                    continue;
                }
                _ = tick.tick() => {
                    flush_and_commit(&self.retry, &self.spec.connector, task, &mut input, &mut unflushed).await?;
                    continue;
                }
                _ = input.revoke_requested() => {
                    flush_and_commit(&self.retry, &self.spec.connector, task, &mut input, &mut unflushed).await?;
                    input.release_revoked()?;
                    continue;
                }
                message = input.recv(), if control == TaskControl::Run => message?,
            };
            let records = input
                .process(first, 1000, &mut self.chain, &self.tolerance)
                .await?;
            unflushed = true;
            if !records.is_empty() {
                put_retrying(&self.retry, &self.spec.connector, task, records).await?;
            }
        }
        flush_and_commit(
            &self.retry,
            &self.spec.connector,
            task,
            &mut input,
            &mut unflushed,
        )
        .await
    }

    async fn put(&mut self, task: &mut dyn SinkTask, delivery: Delivery) -> Result<()> {
        let Delivery {
            records,
            tracker,
            batch,
        } = delivery;
        self.unflushed.push((tracker, batch));
        for record in &records {
            let next = record.kafka_offset + 1;
            let entry = self.offsets.entry(record.topic_partition()).or_insert(next);
            *entry = (*entry).max(next);
        }
        let out = if self.chain.is_empty() {
            records
        } else {
            let mut positions = Vec::with_capacity(records.len());
            let mut descriptions = Vec::new();
            let mut inners = Vec::with_capacity(records.len());
            for record in records {
                let SinkRecord {
                    record: inner,
                    kafka_partition,
                    kafka_offset,
                } = record;
                if self.tolerance.log_messages {
                    descriptions.push(format!("{inner:?}"));
                }
                positions.push((kafka_partition, kafka_offset));
                inners.push(inner);
            }
            let mut descriptions = descriptions.into_iter();
            let mut out = Vec::with_capacity(inners.len());
            for (result, (kafka_partition, kafka_offset)) in
                self.chain.apply_batch(inners).into_iter().zip(positions)
            {
                let description = descriptions.next().unwrap_or_default();
                match result {
                    Ok(transformed) => out.extend(transformed.into_iter().map(|r| SinkRecord {
                        record: r,
                        kafka_partition,
                        kafka_offset,
                    })),
                    Err(error) => self.tolerance.handle(
                        &self.spec.connector,
                        "TRANSFORMATION",
                        &error,
                        || description,
                    )?,
                }
            }
            out
        };
        if out.is_empty() {
            return Ok(());
        }
        put_retrying(&self.retry, &self.spec.connector, task, out).await
    }

    async fn flush(&mut self, task: &mut dyn SinkTask) -> Result<()> {
        if self.unflushed.is_empty() {
            return Ok(());
        }
        let mut attempts = self.retry.attempts();
        while let Err(error) = task.flush(&self.offsets).await {
            attempts
                .after_failure(&self.spec.connector, "flush", error)
                .await?;
        }
        for (tracker, batch) in self.unflushed.drain(..) {
            tracker.ack(batch);
        }
        Ok(())
    }

    /// Takes what was queued before the subscription closed, then flushes it all.
    async fn drain(
        &mut self,
        task: &mut dyn SinkTask,
        queue: &mut mpsc::Receiver<Delivery>,
    ) -> Result<()> {
        while let Some(delivery) = queue.recv().await {
            self.put(task, delivery).await?;
        }
        self.flush(task).await
    }

    /// After a failure: every source whose records this task held must re-read them.
    async fn nack_all(&mut self, queue: &mut mpsc::Receiver<Delivery>, error: &Error) {
        let reason = format!(
            "sink {} task {} failed: {}",
            self.spec.connector,
            self.spec.task_id,
            error.message()
        );
        for (tracker, _) in self.unflushed.drain(..) {
            tracker.nack(reason.clone());
        }
        while let Some(delivery) = queue.recv().await {
            delivery.tracker.nack(reason.clone());
        }
    }
}

/// Flushes the sink task and, only if that succeeded, commits the consumer offsets.
async fn flush_and_commit(
    retry: &RetryPolicy,
    connector: &str,
    task: &mut dyn SinkTask,
    input: &mut KafkaSinkInput,
    unflushed: &mut bool,
) -> Result<()> {
    if !*unflushed {
        return Ok(());
    }
    let mut attempts = retry.attempts();
    while let Err(error) = task.flush(&input.positions).await {
        attempts.after_failure(connector, "flush", error).await?;
    }
    input.commit()?;
    *unflushed = false;
    Ok(())
}

/// `put`, retried per `errors.retry.*` when it fails with a retriable error.
async fn put_retrying(
    retry: &RetryPolicy,
    connector: &str,
    task: &mut dyn SinkTask,
    records: Vec<SinkRecord>,
) -> Result<()> {
    if retry.is_off() {
        return task.put(records).await;
    }
    let mut attempts = retry.attempts();
    while let Err(error) = task.put(records.clone()).await {
        attempts.after_failure(connector, "put", error).await?;
    }
    Ok(())
}
