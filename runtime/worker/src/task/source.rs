//! The source task runner: poll → transform → send → commit what is durable downstream. One
//! loop for both transports: records go to a [`SourceOutput`], and offsets are committed only
//! once the [`AckTracker`] says every record up to them is durable (flushed by every sink on
//! the direct bus, acknowledged by Kafka on the Kafka transport).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_api::connector::{ConnectorFactory, HistoryTopics, SourceTask, SourceTaskContext};
use sluice_api::record::{Record, SourceRecord};
use sluice_api::{Error, Result};
use tokio::task::JoinHandle;

use super::chain::{TRANSFORMATION, settle};
use super::{TaskControl, TaskRun};
use crate::clock::now_ms;
use crate::pipeline::ack::{AckTracker, PartitionOffsets, upsert};
use crate::pipeline::{Sent, SourceOutput};
use crate::state::State;
use crate::storage::history_topic::KafkaHistoryTopics;
use crate::storage::offsets::ConnectorOffsetReader;
use crate::transforms::TransformChain;

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
            results: Results::PerRecord(results),
        }
    }

    /// `records` as polled: no transform is configured.
    fn untransformed(self, records: Vec<Record>) -> Transformed {
        Transformed {
            polled: self,
            results: Results::Unchanged(records),
        }
    }
}

/// A polled batch after the transform chain: per record, what it became or why it failed.
struct Transformed {
    polled: Polled,
    results: Results,
}

/// What the chain made of a batch.
enum Results {
    /// Per record, what it became or why it failed.
    PerRecord(Vec<Result<Vec<Record>>>),
    /// No chain: the records as they were polled (spares a vector per record, which cost as
    /// much as the rest of the hand-off in a snapshot).
    Unchanged(Vec<Record>),
}

/// A batch being transformed on a blocking thread; the chain travels with it and comes back.
type InFlight = JoinHandle<(TransformChain, Transformed)>;

/// Polls of at least this many records are transformed on another thread while the next poll
/// runs, so a costly chain (a WASM plugin, say) overlaps reading instead of adding to it. A
/// smaller poll means the source is keeping up: it is transformed in line, saving the hand-off.
const TRANSFORM_ASIDE_AT: usize = 256;

/// Runs one source task until it is stopped or fails.
pub(crate) struct SourceRunner {
    run: TaskRun,
    output: SourceOutput,
    /// The poll batch a stop request left partly unsent: a clean stop waits only for the
    /// batches before it.
    abandoned_from: Option<u64>,
    /// Records sent and not yet acknowledged, per batch sequence number, and their sum
    /// (`source-record-active-count`).
    unacked: std::collections::VecDeque<(u64, usize)>,
    unacked_records: usize,
}

impl SourceRunner {
    async fn start_task(&mut self) -> Result<Box<dyn SourceTask>> {
        let ConnectorFactory::Source(factory) = self.run.spec.plugin.factory else {
            return Err(Error::fatal("a sink plugin was started as a source task"));
        };
        let mut task = factory().create_task();
        let started = task
            .start(SourceTaskContext {
                connector: self.run.spec.connector.clone(),
                task_id: self.run.spec.task_id,
                config: self.run.spec.task_config.clone(),
                offsets: Arc::new(ConnectorOffsetReader {
                    connector: self.run.spec.connector.clone(),
                    store: Arc::clone(&self.run.ctx.offsets),
                }),
                metrics: self.run.status.metrics.clone(),
                history_topics: self.run.ctx.kafka.as_ref().map(|worker| {
                    Arc::new(KafkaHistoryTopics::new(Arc::clone(worker))) as Arc<dyn HistoryTopics>
                }),
            })
            .await;
        self.run.started(started)?;
        Ok(task)
    }

    /// Runs the task `run` describes until it is stopped (`Ok`) or fails.
    pub(crate) async fn run(run: TaskRun) -> Result<()> {
        let output = SourceOutput::open(
            &run.ctx,
            &run.settings,
            run.spec.task_id,
            &run.spec.connector_config,
        )
        .await?;
        SourceRunner {
            run,
            output,
            abandoned_from: None,
            unacked: Default::default(),
            unacked_records: 0,
        }
        .run_loop()
        .await
    }

    async fn run_loop(mut self) -> Result<()> {
        loop {
            let mut task = self.start_task().await?;
            let tracker = Arc::new(AckTracker::default());
            let rewind = self.poll_loop(task.as_mut(), &tracker).await;
            match rewind {
                Ok(true) => {
                    // A sink lost records before flushing them: re-read from the last commit.
                    self.commit(task.as_mut(), &tracker).await;
                    if let Err(e) = task.stop().await {
                        tracing::warn!(connector = %self.run.spec.connector, error = %e, "task stop failed");
                    }
                    continue;
                }
                Ok(false) => {
                    self.finish(task.as_mut(), &tracker).await;
                    self.output
                        .report(&self.run.spec.connector, self.run.spec.task_id);
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
                self.run.chain = chain;
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
            let control = *self.run.control.borrow_and_update();
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
                    self.run.set_state(State::Paused);
                    // What was sent before the pause becomes durable now rather than at the
                    // next periodic flush, so that it is committed while the task is paused.
                    self.output.request_flush();
                    tokio::select! {
                        _ = self.run.control.changed() => {}
                        _ = tokio::time::sleep(self.run.ctx.flush_interval) => {}
                    }
                    self.commit(task, tracker).await;
                    continue;
                }
                TaskControl::Run => {
                    if self.run.status.get().state != State::Running {
                        self.run.set_state(State::Running);
                    }
                }
            }
            if let Some(reason) = tracker.failure() {
                tracing::warn!(
                    connector = %self.run.spec.connector, task = self.run.spec.task_id, reason = %reason,
                    "records were lost downstream before being flushed; re-reading from the last committed offset"
                );
                return Ok(true);
            }
            // The previous batch is transformed on another thread while this poll runs, and is
            // delivered as soon as it is ready, even while the poll still waits for data. (A
            // running task's poll is never cut short, so a source need not be cancellation-safe;
            // only when the task ends — stopped while delivering, or failed — is a pending poll
            // dropped, and that task instance is never polled again.)
            let poll_started = Instant::now();
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
            self.run.stats.taken(batch.len(), poll_started.elapsed());
            // Take the chain back from the previous batch, set it on this one, then deliver the
            // previous batch while this one is transformed.
            let previous = match in_flight.take() {
                Some(transforming) => Some(self.take_back(transforming.await)?),
                None => None,
            };
            let mut in_line = None;
            if !batch.is_empty() {
                let (records, polled) = self.unpack(batch);
                if records.len() >= TRANSFORM_ASIDE_AT && !self.run.chain.is_empty() {
                    let mut chain = std::mem::take(&mut self.run.chain);
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
                let transformed = if self.run.chain.is_empty() {
                    polled.untransformed(records)
                } else {
                    polled.transformed(self.run.chain.apply_batch(records))
                };
                if matches!(
                    self.deliver(transformed, tracker).await?,
                    Dispatched::Stopping
                ) {
                    return Ok(false);
                }
            }
            if last_commit.elapsed() >= self.run.ctx.flush_interval
                && self.commit(task, tracker).await
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
        self.run.chain = chain;
        Ok(transformed)
    }

    /// Splits a poll into its records (timestamped) and what delivering them needs besides.
    fn unpack(&self, batch: Vec<SourceRecord>) -> (Vec<Record>, Polled) {
        let timestamp = now_ms();
        let keep_originals = self.output.keeps_originals();
        let log_messages = self.run.settings.tolerance.log_messages;
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
            if log_messages {
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
        let settings = &self.run.settings;
        let output = &mut self.output;
        let records: Vec<Record> = match results {
            Results::Unchanged(records) => records,
            Results::PerRecord(results) => {
                let describe = |index: usize| descriptions.get(index).cloned().unwrap_or_default();
                let settled = settle(settings, results, describe)?;
                for (index, error) in &settled.skipped {
                    if let Some(original) = originals.get(*index) {
                        output.dead_letter(original, TRANSFORMATION, error).await?;
                    }
                }
                settled
                    .kept
                    .into_iter()
                    .flat_map(|(_, records)| records)
                    .collect()
            }
        };
        let count = records.len();
        // Field by field: `settings` borrows the run's settings meanwhile.
        for record in &records {
            self.run.topics.saw(
                &self.run.ctx.topics,
                &self.run.spec.connector,
                self.run.spec.task_id,
                &record.topic,
            );
        }
        let seq = tracker.next_seq();
        let sent = output
            .send(
                records,
                last_offsets,
                tracker,
                settings,
                &mut self.run.control,
            )
            .await?;
        self.run.stats.passed(count, Duration::ZERO, None);
        self.unacked.push_back((seq, count));
        self.unacked_records += count;
        self.count_unacked(tracker);
        match sent {
            Sent::Done => Ok(Dispatched::Done),
            Sent::Stopping { abandoned } => {
                if abandoned.is_some() {
                    self.abandoned_from = abandoned;
                }
                Ok(Dispatched::Stopping)
            }
        }
    }

    /// Drops the batches acknowledged since the last call from the active count.
    fn count_unacked(&mut self, tracker: &AckTracker) {
        let first_unacked = tracker.first_unacked();
        while let Some(&(seq, count)) = self.unacked.front()
            && seq < first_unacked
        {
            self.unacked.pop_front();
            self.unacked_records -= count;
        }
        self.run.stats.set_active(self.unacked_records);
    }

    /// Commits what every sink has acknowledged. True when something was committed.
    async fn commit(&mut self, task: &mut dyn SourceTask, tracker: &AckTracker) -> bool {
        self.count_unacked(tracker);
        let offsets = tracker.take_committable();
        if offsets.is_empty() {
            self.run.stats.commit_skipped();
            return false;
        }
        let started = Instant::now();
        let writes = offsets
            .iter()
            .map(|(p, o)| (p.clone(), Some(o.clone())))
            .collect();
        match self
            .run
            .ctx
            .offsets
            .put(&self.run.spec.connector, writes)
            .await
        {
            Ok(()) => {
                self.run
                    .stats
                    .committed(started.elapsed(), tracker.outstanding() == 0);
                tracing::debug!(connector = %self.run.spec.connector, ?offsets, "offsets committed");
                if let Err(e) = task.offsets_committed(&offsets).await {
                    tracing::warn!(connector = %self.run.spec.connector, error = %e, "offsets_committed callback failed");
                }
                true
            }
            Err(e) => {
                tracing::error!(connector = %self.run.spec.connector, error = %e.trace(), "offset commit failed; will retry");
                tracker.restore(offsets);
                false
            }
        }
    }

    /// Clean stop: wait (bounded) for sinks to acknowledge what was sent, commit, stop.
    async fn finish(&mut self, task: &mut dyn SourceTask, tracker: &Arc<AckTracker>) {
        // Leave a quarter of the grace period for the commit itself: the worker aborts a task
        // that outlives `task.shutdown.graceful.timeout.ms`, and an aborted task commits
        // nothing, so the next start would read everything since the last periodic commit.
        let deadline = Instant::now() + self.run.ctx.shutdown_timeout * 3 / 4;
        let sent_until = self.abandoned_from.unwrap_or_else(|| tracker.next_seq());
        while tracker.first_unacked() < sent_until
            && tracker.failure().is_none()
            && Instant::now() < deadline
        {
            // Asked again each round: a sink flushes what it holds when asked, and what was
            // still queued for it then is taken afterwards and needs a flush of its own.
            self.output.request_flush();
            let _ = tokio::time::timeout(Duration::from_millis(50), tracker.progressed()).await;
        }
        if tracker.first_unacked() < sent_until {
            tracing::warn!(
                connector = %self.run.spec.connector, outstanding = tracker.outstanding(),
                "stopping with records not yet flushed by every sink; they will be read again on restart"
            );
        }
        self.commit(task, tracker).await;
        if let Err(e) = task.stop().await {
            tracing::warn!(connector = %self.run.spec.connector, error = %e, "task stop failed");
        }
    }
}
