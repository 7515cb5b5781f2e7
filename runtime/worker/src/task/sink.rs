//! The sink task runner: take → transform → put → flush → acknowledge. One loop for both
//! transports: records come from a [`SinkInput`]; after every successful `flush` the input
//! acknowledges them (their sources may commit, on the direct bus) or commits the consumer
//! offsets (on Kafka). Flushes happen every `offset.flush.interval.ms`, at pause, at stop,
//! when a stopping source asks for one and before a rebalance takes partitions away.

use std::time::Instant;

use sluice_api::connector::{ConnectorFactory, SinkTask, SinkTaskContext};
use sluice_api::record::SinkRecord;
use sluice_api::{Error, Result};

use super::chain::transform_sink_batch;
use super::{TaskControl, TaskRun};
use crate::config::ConnectorSettings;
use crate::pipeline::SinkInput;
use crate::state::State;

/// Runs one sink task until it is stopped or fails.
pub(crate) struct SinkRunner {
    run: TaskRun,
    /// Records put since the last flush (`sink-record-active-count`).
    unflushed: usize,
}

impl SinkRunner {
    /// A runner of the task `run` describes.
    pub(crate) fn new(run: TaskRun) -> SinkRunner {
        SinkRunner { run, unflushed: 0 }
    }

    /// Runs the task until it is stopped (`Ok`) or fails.
    pub(crate) async fn run(mut self) -> Result<()> {
        let ConnectorFactory::Sink(factory) = self.run.spec.plugin.factory else {
            return Err(Error::fatal("a source plugin was started as a sink task"));
        };
        let settings = self.run.settings.clone();
        // The input (and the dead letter queue the task reports to) before the task, as in
        // Kafka Connect.
        let mut input = SinkInput::open(
            &self.run.ctx,
            &settings,
            self.run.spec.task_id,
            &self.run.spec.connector_config,
        )
        .await?;
        if let Some(high_watermarks) = input.high_watermarks() {
            self.run.stats.watch_high_watermarks(high_watermarks);
        }
        let mut task = factory().create_task();
        let reporter =
            input.errant_reporter(&self.run.ctx, &settings, &self.run.spec.connector_config);
        let started = match reporter {
            Ok(errant_records) => task
                .start(SinkTaskContext {
                    connector: self.run.spec.connector.clone(),
                    task_id: self.run.spec.task_id,
                    config: self.run.spec.task_config.clone(),
                    metrics: self.run.status.metrics.clone(),
                    errant_records,
                })
                .await
                .map(|()| self.run.ctx.metrics.task_started(true))
                .inspect_err(|_| self.run.ctx.metrics.task_started(false)),
            Err(error) => Err(error),
        };
        let mut result = match started {
            Ok(()) => self.consume(task.as_mut(), &mut input, &settings).await,
            Err(error) => {
                // Whatever the bus queued meanwhile goes back to its sources.
                input
                    .fail(&format!("sink {} did not start", self.run.spec.connector))
                    .await;
                return Err(error);
            }
        };
        input.close();
        if result.is_ok() {
            result = self.drain(task.as_mut(), &mut input, &settings).await;
        }
        match result {
            Ok(()) => task.stop().await,
            Err(error) => {
                let reason = format!(
                    "sink {} task {} failed: {}",
                    self.run.spec.connector,
                    self.run.spec.task_id,
                    error.message()
                );
                input.fail(&reason).await;
                let _ = task.stop().await;
                Err(error)
            }
        }
    }

    /// Takes, transforms and puts records until stopped; flushes on the interval, at pause
    /// and whenever the input asks for it.
    async fn consume(
        &mut self,
        task: &mut dyn SinkTask,
        input: &mut SinkInput,
        settings: &ConnectorSettings,
    ) -> Result<()> {
        let mut tick = tokio::time::interval(self.run.ctx.flush_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut paused = false;
        loop {
            let control = *self.run.control.borrow_and_update();
            match control {
                TaskControl::Stop => return Ok(()),
                TaskControl::Pause if !paused => {
                    self.flush(task, input, settings).await?;
                    input.set_paused(true)?;
                    paused = true;
                    self.run.set_state(State::Paused);
                }
                TaskControl::Run if paused || self.run.status.get().state != State::Running => {
                    if paused {
                        input.set_paused(false)?;
                        paused = false;
                    }
                    self.run.set_state(State::Running);
                }
                _ => {}
            }
            let arrival = tokio::select! {
                changed = self.run.control.changed() => {
                    if changed.is_err() { return Ok(()); }
                    continue;
                }
                _ = tick.tick() => {
                    self.flush(task, input, settings).await?;
                    continue;
                }
                _ = input.flush_requested() => {
                    self.flush(task, input, settings).await?;
                    input.after_requested_flush()?;
                    // Revoked partitions leave the per-partition figures with the task's hold.
                    self.run
                        .stats
                        .partitions_committed(|| input.committed_offsets());
                    continue;
                }
                arrival = input.next(), if control == TaskControl::Run => match arrival? {
                    Some(arrival) => arrival,
                    None => return Ok(()),
                },
            };
            let records = input.take(arrival, settings).await?;
            self.put(task, input, settings, records).await?;
        }
    }

    /// After a stop: puts what the input had already queued, then flushes everything.
    async fn drain(
        &mut self,
        task: &mut dyn SinkTask,
        input: &mut SinkInput,
        settings: &ConnectorSettings,
    ) -> Result<()> {
        while let Some(arrival) = input.next_queued().await {
            let records = input.take(arrival, settings).await?;
            self.put(task, input, settings, records).await?;
        }
        self.flush(task, input, settings).await
    }

    async fn put(
        &mut self,
        task: &mut dyn SinkTask,
        input: &SinkInput,
        settings: &ConnectorSettings,
        records: Vec<SinkRecord>,
    ) -> Result<()> {
        let records = transform_sink_batch(&mut self.run.chain, settings, records, input).await?;
        if records.is_empty() {
            return Ok(());
        }
        let count = records.len();
        self.run
            .saw_topics(records.iter().map(|r| r.record.topic.as_str()));
        // The batch's first record stands for its oldest: a partition's records come in order,
        // and reading every record's timestamp would cost per record.
        let oldest = records.first().and_then(|r| r.record.timestamp_ms);
        let started = Instant::now();
        put_retrying(settings, task, records).await?;
        self.run.stats.passed(count, started.elapsed(), oldest);
        self.unflushed += count;
        self.run.stats.set_active(self.unflushed);
        Ok(())
    }

    /// Flushes the task (retried per `errors.retry.*`) and, only once that succeeded, tells
    /// the input everything it handed out is durable.
    async fn flush(
        &mut self,
        task: &mut dyn SinkTask,
        input: &mut SinkInput,
        settings: &ConnectorSettings,
    ) -> Result<()> {
        if !input.has_unflushed() {
            self.run.stats.commit_skipped();
            return Ok(());
        }
        let started = Instant::now();
        let mut attempts = settings.retry.attempts();
        while let Err(error) = task.flush(input.positions()).await {
            attempts
                .after_failure(&settings.name, "flush", error)
                .await?;
        }
        input.flushed()?;
        self.run.stats.committed(started.elapsed(), true);
        self.run
            .stats
            .partitions_committed(|| input.committed_offsets());
        self.unflushed = 0;
        self.run.stats.set_active(0);
        Ok(())
    }
}

/// `put`, retried per `errors.retry.*` when it fails with a retriable error.
async fn put_retrying(
    settings: &ConnectorSettings,
    task: &mut dyn SinkTask,
    records: Vec<SinkRecord>,
) -> Result<()> {
    if settings.retry.is_off() {
        return task.put(records).await;
    }
    let mut attempts = settings.retry.attempts();
    while let Err(error) = task.put(records.clone()).await {
        attempts.after_failure(&settings.name, "put", error).await?;
    }
    Ok(())
}
