//! A sink connector's consumer-group offsets, for `GET|PATCH|DELETE /connectors/{c}/offsets`
//! (Kafka Connect's shape: partition `{"kafka_topic","kafka_partition"}`, offset
//! `{"kafka_offset"}`). Altering and resetting need the connector STOPPED, so the group has no
//! members and plain commits apply.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde_json::json;
use sluice_api::config::Props;
use sluice_api::record::{SourceOffset, SourcePartition};
use sluice_api::{Error, Result};

use crate::pipeline::kafka::{KafkaSettings, client_error};
use crate::pipeline::topics::TopicFilter;

const TIMEOUT: Duration = Duration::from_secs(15);

/// One committed position as the REST API shows it.
pub(crate) type GroupOffset = (SourcePartition, Option<SourceOffset>);

fn consumer(settings: &KafkaSettings, group: &str) -> Result<BaseConsumer> {
    settings
        .consumer_config(group, &[])
        .create()
        .map_err(|e| client_error("offsets consumer", e))
}

/// Every partition of the topics the sink reads.
fn partitions(consumer: &BaseConsumer, config: &Props) -> Result<TopicPartitionList> {
    let metadata = consumer
        .fetch_metadata(None, TIMEOUT)
        .map_err(|e| client_error("metadata", e))?;
    let filter = TopicFilter::of(config).map_err(|e| Error::config(e.to_string()))?;
    let mut list = TopicPartitionList::new();
    for topic in metadata.topics() {
        if filter.matches(topic.name()) {
            for partition in topic.partitions() {
                list.add_partition(topic.name(), partition.id());
            }
        }
    }
    Ok(list)
}

fn rest_partition(topic: &str, partition: i32) -> SourcePartition {
    json!({"kafka_topic": topic, "kafka_partition": partition})
        .as_object()
        .cloned()
        .unwrap_or_default()
}

/// The group's committed offsets.
pub(crate) async fn committed(
    settings: Arc<KafkaSettings>,
    group: String,
    config: Props,
) -> Result<Vec<GroupOffset>> {
    tokio::task::spawn_blocking(move || {
        let consumer = consumer(&settings, &group)?;
        let list = partitions(&consumer, &config)?;
        let committed = consumer
            .committed_offsets(list, TIMEOUT)
            .map_err(|e| client_error("committed offsets", e))?;
        Ok(committed
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(offset) => Some((
                    rest_partition(e.topic(), e.partition()),
                    json!({"kafka_offset": offset}).as_object().cloned(),
                )),
                _ => None,
            })
            .collect())
    })
    .await
    .map_err(|e| Error::fatal(format!("offsets lookup: {e}")))?
}

/// Commits new positions for the group. A `None` offset resets the partition to its earliest
/// offset, where a sink without a committed offset starts anyway.
pub(crate) async fn alter(
    settings: Arc<KafkaSettings>,
    group: String,
    entries: Vec<GroupOffset>,
) -> Result<()> {
    tokio::task::spawn_blocking(move || {
        let consumer = consumer(&settings, &group)?;
        let mut list = TopicPartitionList::new();
        for (partition, offset) in entries {
            let bad = || Error::config(format!(
                "sink offsets take {{\"partition\": {{\"kafka_topic\": …, \"kafka_partition\": …}}, \"offset\": {{\"kafka_offset\": …}} | null}}; got partition {}",
                serde_json::Value::Object(partition.clone())
            ));
            let topic = partition.get("kafka_topic").and_then(|t| t.as_str()).ok_or_else(bad)?;
            let number = partition.get("kafka_partition").and_then(|p| p.as_i64()).ok_or_else(bad)? as i32;
            let position = match offset {
                Some(offset) => offset.get("kafka_offset").and_then(|o| o.as_i64()).ok_or_else(bad)?,
                None => consumer.fetch_watermarks(topic, number, TIMEOUT).map_err(|e| client_error("earliest offset", e))?.0,
            };
            list.add_partition_offset(topic, number, Offset::Offset(position)).map_err(|e| client_error("offsets", e))?;
        }
        if list.count() > 0 {
            consumer.commit(&list, CommitMode::Sync).map_err(|e| client_error(&format!("commit offsets of group {group}"), e))?;
        }
        Ok(())
    })
    .await
    .map_err(|e| Error::fatal(format!("offsets update: {e}")))?
}
