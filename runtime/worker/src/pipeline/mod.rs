//! How records travel between tasks: the embedded direct bus or Kafka. A task runner sees
//! only the two ends defined here — [`SourceOutput`] where a source task's records go, and
//! [`SinkInput`] where a sink task's records come from — each one enum over the two
//! transports, so the runners in [`crate::task`] have one loop each.
//!
//! * [`ack`]: which of a source task's poll batches are durable downstream.
//! * [`topics`]: `topics` / `topics.regex` and topic creation.
//! * [`direct`]: the in-process bus of the embedded pipeline.
//! * [`kafka`]: producer, consumer, dead letter queue, client settings.

pub(crate) mod ack;
pub(crate) mod direct;
pub(crate) mod kafka;
pub(crate) mod topics;

use std::collections::HashMap;
use std::sync::Arc;

use sluice_api::Result;
use sluice_api::config::Props;
use sluice_api::connector::ErrantRecordReporter;
use sluice_api::record::{Record, SinkRecord, TopicPartition};
use tokio::sync::watch;

use self::ack::{AckTracker, PartitionOffsets};
use self::direct::{Delivery, DirectInput, DirectOutput};
use self::kafka::consumer::KafkaSinkInput;
use self::kafka::producer::KafkaSource;
use crate::config::ConnectorSettings;
use crate::metrics::HighWatermarks;
use crate::task::TaskControl;
use crate::worker::WorkerContext;

/// How sending a poll batch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    /// Every record was handed on (or deliberately dropped) and the batch registered.
    Done,
    /// A stop request cut the send short. `abandoned`: the batch was registered but not
    /// every delivery went out, so a clean stop must not wait for it.
    Stopping { abandoned: Option<u64> },
}

/// Where a source task's records go.
pub(crate) enum SourceOutput {
    /// To the sinks subscribed on the direct bus.
    Direct(DirectOutput),
    /// To Kafka, through an idempotent producer.
    Kafka(Box<KafkaSource>),
}

impl SourceOutput {
    /// The output of task `task` of the source connector `settings` describes, on the
    /// worker's transport.
    pub(crate) async fn open(
        ctx: &WorkerContext,
        settings: &ConnectorSettings,
        task: u32,
        config: &Props,
    ) -> Result<SourceOutput> {
        Ok(match &ctx.kafka {
            Some(kafka) => SourceOutput::Kafka(Box::new(
                KafkaSource::new(kafka, settings, task, config).await?,
            )),
            None => SourceOutput::Direct(DirectOutput::new(Arc::clone(&ctx.bus), &settings.name)),
        })
    }

    /// Whether failed records are dead-lettered, so the runner keeps each polled record as
    /// it was until its batch is sent.
    pub(crate) fn keeps_originals(&self) -> bool {
        match self {
            SourceOutput::Direct(_) => false,
            SourceOutput::Kafka(kafka) => kafka.has_dead_letter_queue(),
        }
    }

    /// Writes a record that failed at `stage` to the dead letter queue, if there is one.
    pub(crate) async fn dead_letter(
        &self,
        record: &Record,
        stage: &str,
        error: &sluice_api::Error,
    ) -> Result<()> {
        match self {
            SourceOutput::Direct(_) => Ok(()),
            SourceOutput::Kafka(kafka) => kafka.dead_letter(record, stage, error).await,
        }
    }

    /// Sends one poll batch and registers it with `tracker`, which acknowledges it once it
    /// is durable downstream.
    pub(crate) async fn send(
        &mut self,
        records: Vec<Record>,
        offsets: PartitionOffsets,
        tracker: &Arc<AckTracker>,
        settings: &ConnectorSettings,
        control: &mut watch::Receiver<TaskControl>,
    ) -> Result<Sent> {
        match self {
            SourceOutput::Direct(direct) => {
                Ok(direct.send(records, offsets, tracker, control).await)
            }
            SourceOutput::Kafka(kafka) => {
                kafka
                    .send(records, offsets, tracker, &settings.tolerance)
                    .await?;
                Ok(Sent::Done)
            }
        }
    }

    /// A stopping source asks its downstream to make what it sent durable now, instead of at
    /// the next periodic flush.
    pub(crate) fn request_flush(&self) {
        match self {
            SourceOutput::Direct(direct) => direct.request_flush(),
            // The producer acknowledges on its own, as soon as Kafka has the records.
            SourceOutput::Kafka(_) => {}
        }
    }

    /// Logs what is worth knowing when the task stops.
    pub(crate) fn report(&self, connector: &str, task: u32) {
        if let SourceOutput::Kafka(kafka) = self {
            let latency = &kafka.latency;
            tracing::info!(
                connector,
                task,
                records = latency.count(),
                p50_ms = latency.quantile(0.5).as_secs_f64() * 1e3,
                p99_ms = latency.quantile(0.99).as_secs_f64() * 1e3,
                "produce latency"
            );
        }
    }
}

/// One arrival at a sink task, before it is taken.
pub(crate) enum Arrival {
    /// A batch from the direct bus.
    Delivery(Delivery),
    /// The first message of a batch from Kafka.
    Message(rdkafka::message::OwnedMessage),
}

/// Where a sink task's records come from.
pub(crate) enum SinkInput {
    /// Its subscription on the direct bus.
    Direct(DirectInput),
    /// Its consumer in the connector's consumer group.
    Kafka(Box<KafkaSinkInput>),
}

impl SinkInput {
    /// The input of task `task` of the sink connector `settings` describes, on the worker's
    /// transport.
    pub(crate) async fn open(
        ctx: &WorkerContext,
        settings: &ConnectorSettings,
        task: u32,
        config: &Props,
    ) -> Result<SinkInput> {
        let topics = settings
            .topics
            .clone()
            .ok_or_else(|| sluice_api::Error::fatal("a sink connector without topics"))?;
        Ok(match &ctx.kafka {
            Some(kafka) => SinkInput::Kafka(Box::new(
                KafkaSinkInput::new(kafka, settings, &topics, task, config).await?,
            )),
            None => SinkInput::Direct(DirectInput::subscribe(
                Arc::clone(&ctx.bus),
                &settings.name,
                topics,
            )),
        })
    }

    /// The reporter a sink task dead-letters records with (`SinkTaskContext::errant_records`):
    /// present when the connector has a dead letter queue.
    pub(crate) fn errant_reporter(
        &self,
        ctx: &WorkerContext,
        settings: &ConnectorSettings,
        config: &Props,
    ) -> Result<Option<Arc<dyn ErrantRecordReporter>>> {
        match (self, &ctx.kafka) {
            (SinkInput::Kafka(input), Some(kafka)) => {
                input.errant_reporter(kafka, config, settings.tolerance.clone())
            }
            _ => Ok(None),
        }
    }

    /// Waits for the next arrival; `None` when the input is closed. Cancel-safe.
    pub(crate) async fn next(&self) -> Result<Option<Arrival>> {
        match self {
            SinkInput::Direct(direct) => Ok(direct.next().await.map(Arrival::Delivery)),
            SinkInput::Kafka(kafka) => kafka.recv().await.map(|m| Some(Arrival::Message(m))),
        }
    }

    /// Takes an arrival (and on Kafka whatever else is already there) as records, converted.
    /// Records that fail conversion are skipped or fail the batch, per the tolerance. Not
    /// cancel-safe.
    pub(crate) async fn take(
        &mut self,
        arrival: Arrival,
        settings: &ConnectorSettings,
    ) -> Result<Vec<SinkRecord>> {
        match (self, arrival) {
            (SinkInput::Direct(direct), Arrival::Delivery(delivery)) => {
                let records = direct.take(delivery);
                if let Some(stats) = &settings.tolerance.stats {
                    stats.taken(records.len(), std::time::Duration::ZERO);
                }
                Ok(records)
            }
            (SinkInput::Kafka(kafka), Arrival::Message(first)) => {
                kafka.take(first, 1000, &settings.tolerance).await
            }
            _ => Err(sluice_api::Error::fatal(
                "a sink input was handed an arrival of the other transport",
            )),
        }
    }

    /// Dead-letters record `index` of the last [`SinkInput::take`], which failed at `stage`
    /// and is tolerated.
    pub(crate) async fn dead_letter(
        &self,
        index: usize,
        stage: &str,
        error: &sluice_api::Error,
    ) -> Result<()> {
        match self {
            SinkInput::Direct(_) => Ok(()),
            SinkInput::Kafka(kafka) => kafka.dead_letter_taken(index, stage, error).await,
        }
    }

    /// Next offset per topic partition of everything taken, for `SinkTask::flush`.
    pub(crate) fn positions(&self) -> &HashMap<TopicPartition, i64> {
        match self {
            SinkInput::Direct(direct) => &direct.positions,
            SinkInput::Kafka(kafka) => &kafka.positions,
        }
    }

    /// The committed next offset per (topic, partition): on Kafka what the group last
    /// accepted (a commit refused during a rebalance does not count), on the direct bus
    /// everything taken (a flush acknowledges it).
    pub(crate) fn committed_offsets(&self) -> Vec<(String, i32, i64)> {
        let committed = match self {
            SinkInput::Direct(direct) => &direct.positions,
            SinkInput::Kafka(kafka) => &kafka.committed,
        };
        committed
            .iter()
            .map(|(tp, next)| (tp.topic.clone(), tp.partition, *next))
            .collect()
    }

    /// The partitions' high watermarks as the Kafka consumer learns them; `None` on the direct
    /// bus.
    pub(crate) fn high_watermarks(&self) -> Option<HighWatermarks> {
        match self {
            SinkInput::Direct(_) => None,
            SinkInput::Kafka(kafka) => Some(kafka.high_watermarks()),
        }
    }

    /// Whether anything was taken since the last flush.
    pub(crate) fn has_unflushed(&self) -> bool {
        match self {
            SinkInput::Direct(direct) => direct.has_unflushed(),
            SinkInput::Kafka(kafka) => kafka.has_unflushed(),
        }
    }

    /// The task flushed everything taken: acknowledge it to the sources (direct) or commit
    /// the consumer offsets (Kafka).
    pub(crate) fn flushed(&mut self) -> Result<()> {
        match self {
            SinkInput::Direct(direct) => {
                direct.flushed();
                Ok(())
            }
            SinkInput::Kafka(kafka) => kafka.commit(),
        }
    }

    /// Resolves when the task should flush now: a stopping source waits for it (direct), or a
    /// rebalance takes partitions away (Kafka). Cancel-safe.
    pub(crate) async fn flush_requested(&self) {
        match self {
            SinkInput::Direct(direct) => direct.flush_requested().await,
            SinkInput::Kafka(kafka) => kafka.revoke_requested().await,
        }
    }

    /// After the flush [`SinkInput::flush_requested`] asked for: give revoked partitions up.
    pub(crate) fn after_requested_flush(&mut self) -> Result<()> {
        match self {
            SinkInput::Direct(_) => Ok(()),
            SinkInput::Kafka(kafka) => kafka.release_revoked(),
        }
    }

    /// Stops fetching (pause) or starts again (resume). The direct bus needs nothing: a
    /// paused task takes no deliveries, and its full queue holds the sources back.
    pub(crate) fn set_paused(&self, paused: bool) -> Result<()> {
        match self {
            SinkInput::Direct(_) => Ok(()),
            SinkInput::Kafka(kafka) => kafka.set_paused(paused),
        }
    }

    /// The task is stopping: takes no new arrivals. What the direct bus already queued for it
    /// comes from [`SinkInput::next_queued`], to be put and flushed.
    pub(crate) fn close(&mut self) {
        match self {
            SinkInput::Direct(direct) => direct.close(),
            SinkInput::Kafka(_) => {}
        }
    }

    /// After [`SinkInput::close`]: the next arrival already queued, without waiting.
    pub(crate) async fn next_queued(&mut self) -> Option<Arrival> {
        match self {
            SinkInput::Direct(direct) => direct.next().await.map(Arrival::Delivery),
            // Unread messages stay in Kafka: the next owner reads them after the last commit.
            SinkInput::Kafka(_) => None,
        }
    }

    /// The task failed: what it took but did not flush must be read again (direct sources
    /// rewind; on Kafka the uncommitted offsets do that by themselves).
    pub(crate) async fn fail(&mut self, reason: &str) {
        if let SinkInput::Direct(direct) = self {
            direct.fail(reason).await;
        }
    }
}
