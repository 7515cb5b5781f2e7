//! The transform step both runners share: apply the connector's chain to a batch, then sort
//! out the records that failed it (stage `TRANSFORMATION`) per the connector's error
//! tolerance — fail the task, or skip the record, log it and dead-letter it.

use sluice_api::record::{Record, SinkRecord};
use sluice_api::{Error, Result};

use crate::config::ConnectorSettings;
use crate::pipeline::SinkInput;
use crate::transforms::TransformChain;

/// The stage a transform failure is reported under, as in Kafka Connect.
pub(crate) const TRANSFORMATION: &str = "TRANSFORMATION";

/// A batch's chain results, sorted.
#[derive(Debug, Default)]
pub(crate) struct Settled {
    /// What goes on: each input's outputs, with the input's index.
    pub(crate) kept: Vec<(usize, Vec<Record>)>,
    /// Inputs that failed and are tolerated (already logged): to dead-letter, by index.
    pub(crate) skipped: Vec<(usize, Error)>,
}

/// Sorts a batch's chain results (one per input record, in order). The first failure that is
/// not tolerated is the error; tolerated ones are logged (with `describe(index)` under
/// `errors.log.include.messages`) and listed for the dead letter queue.
pub(crate) fn settle(
    settings: &ConnectorSettings,
    results: Vec<Result<Vec<Record>>>,
    describe: impl Fn(usize) -> String,
) -> Result<Settled> {
    let mut settled = Settled {
        kept: Vec::with_capacity(results.len()),
        skipped: Vec::new(),
    };
    for (index, result) in results.into_iter().enumerate() {
        match result {
            Ok(records) => settled.kept.push((index, records)),
            Err(error) => {
                settings
                    .tolerance
                    .handle(&settings.name, TRANSFORMATION, &error, || describe(index))?;
                settled.skipped.push((index, error));
            }
        }
    }
    Ok(settled)
}

/// A sink batch through the chain: each output keeps the Kafka position of the record it
/// came from, so offsets commit as if nothing was transformed; a failed record is
/// dead-lettered as the input holds it.
pub(crate) async fn transform_sink_batch(
    chain: &mut TransformChain,
    settings: &ConnectorSettings,
    records: Vec<SinkRecord>,
    input: &SinkInput,
) -> Result<Vec<SinkRecord>> {
    if chain.is_empty() {
        return Ok(records);
    }
    // Each input's position, for the outputs and for a failure's message. A batch's records
    // share a topic or a few, so each topic is kept once rather than copied per record.
    let mut topics: Vec<sluice_api::Text> = Vec::new();
    let mut positions = Vec::with_capacity(records.len());
    let mut descriptions = Vec::new();
    let mut inners = Vec::with_capacity(records.len());
    for record in records {
        if settings.tolerance.log_messages {
            descriptions.push(format!("{:?}", record.record));
        }
        if topics.last() != Some(&record.record.topic) {
            topics.push(record.record.topic.clone());
        }
        positions.push((
            topics.len() - 1,
            record.kafka_partition,
            record.kafka_offset,
        ));
        inners.push(record.record);
    }
    let results = chain
        .apply_batch(inners)
        .into_iter()
        .zip(&positions)
        .map(|(result, &(topic, partition, offset))| {
            result.map_err(|e| {
                let topic = &topics[topic];
                e.context(format!(
                    "record at topic {topic} partition {partition} offset {offset}"
                ))
            })
        })
        .collect();
    let describe = |index: usize| descriptions.get(index).cloned().unwrap_or_default();
    let settled = settle(settings, results, describe)?;
    for (index, error) in &settled.skipped {
        input.dead_letter(*index, TRANSFORMATION, error).await?;
    }
    let mut out = Vec::with_capacity(settled.kept.len());
    for (index, records) in settled.kept {
        let (_, kafka_partition, kafka_offset) = positions[index];
        out.extend(records.into_iter().map(|record| SinkRecord {
            record,
            kafka_partition,
            kafka_offset,
        }));
    }
    Ok(out)
}
