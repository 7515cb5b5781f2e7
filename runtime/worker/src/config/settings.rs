//! The settings the worker itself reads from every connector config — error tolerance,
//! retries, dead letter queue, topics, topic creation, consumer group — parsed once into
//! [`ConnectorSettings`], which both task runners, both transports, the offsets API and
//! validation use.

use sluice_api::config::{FieldError, Props};
use sluice_api::connector::ConnectorKind;

use super::tolerance::{RetryPolicy, Tolerance};
use super::{flag, int};
use crate::pipeline::topics::{TopicCreation, TopicFilter};

/// A connector's dead letter queue (`errors.deadletterqueue.*`, Kafka transport).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeadLetterSettings {
    /// `errors.deadletterqueue.topic.name`.
    pub(crate) topic: String,
    /// `errors.deadletterqueue.topic.replication.factor` (-1: the broker's default).
    pub(crate) replication_factor: i32,
    /// `errors.deadletterqueue.context.headers.enable`.
    pub(crate) context_headers: bool,
}

/// What the worker needs from a connector's config, parsed once.
#[derive(Debug, Clone)]
pub(crate) struct ConnectorSettings {
    /// The connector's name.
    pub(crate) name: String,
    /// `errors.tolerance`, `errors.log.*`.
    pub(crate) tolerance: Tolerance,
    /// `errors.retry.*`.
    pub(crate) retry: RetryPolicy,
    /// Sinks: the topics they read. `None` for sources.
    pub(crate) topics: Option<TopicFilter>,
    /// Sources: how missing topics are created.
    pub(crate) topic_creation: TopicCreation,
    /// The dead letter queue, when one is configured.
    pub(crate) dead_letter: Option<DeadLetterSettings>,
    /// Sinks on Kafka: `consumer.override.group.id`, else `connect-<name>`.
    pub(crate) consumer_group: String,
}

impl ConnectorSettings {
    /// Counts what the error handling does (`task-error-metrics`) into a task's figures.
    pub(crate) fn attach(&mut self, stats: &std::sync::Arc<crate::metrics::TaskStats>) {
        self.tolerance.stats = Some(std::sync::Arc::clone(stats));
        self.retry.stats = Some(std::sync::Arc::clone(stats));
    }

    /// Reads the settings of connector `name` of `kind`. The config was validated already;
    /// the only error left is a sink's topics, which the error names.
    pub(crate) fn of(
        name: &str,
        kind: ConnectorKind,
        config: &Props,
    ) -> Result<ConnectorSettings, FieldError> {
        let topics = match kind {
            ConnectorKind::Sink => Some(TopicFilter::of(config)?),
            ConnectorKind::Source => None,
        };
        let dead_letter = config
            .get("errors.deadletterqueue.topic.name")
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
            .map(|topic| DeadLetterSettings {
                topic: topic.to_owned(),
                replication_factor: int(
                    config,
                    "errors.deadletterqueue.topic.replication.factor",
                    -1,
                ),
                context_headers: flag(
                    config,
                    "errors.deadletterqueue.context.headers.enable",
                    false,
                ),
            });
        Ok(ConnectorSettings {
            name: name.to_owned(),
            tolerance: Tolerance::of(config),
            retry: RetryPolicy::of(config),
            topics,
            topic_creation: TopicCreation::of(config),
            dead_letter,
            consumer_group: consumer_group(name, config),
        })
    }
}

/// The consumer group of a sink connector: `consumer.override.group.id` or `connect-<name>`.
pub(crate) fn consumer_group(name: &str, config: &Props) -> String {
    config
        .get("consumer.override.group.id")
        .filter(|g| !g.trim().is_empty())
        .cloned()
        .unwrap_or_else(|| format!("connect-{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_api::config::props;

    #[test]
    fn every_common_setting_is_read_once() {
        let config = props(&[
            ("topics", "a"),
            ("errors.tolerance", "ALL"),
            ("errors.retry.timeout", "0"),
            ("errors.deadletterqueue.topic.name", " dlq "),
            ("errors.deadletterqueue.context.headers.enable", "true"),
            ("consumer.override.group.id", "g"),
        ]);
        let settings = ConnectorSettings::of("s", ConnectorKind::Sink, &config).unwrap();
        assert!(settings.tolerance.skip);
        assert!(settings.retry.is_off());
        assert!(settings.topics.unwrap().matches("a"));
        let dlq = settings.dead_letter.unwrap();
        assert_eq!(
            (
                dlq.topic.as_str(),
                dlq.replication_factor,
                dlq.context_headers
            ),
            ("dlq", -1, true)
        );
        assert_eq!(settings.consumer_group, "g");
        let source = ConnectorSettings::of("s", ConnectorKind::Source, &props(&[])).unwrap();
        assert!(source.topics.is_none() && source.dead_letter.is_none());
        assert_eq!(source.consumer_group, "connect-s");
        assert_eq!(source.topic_creation.partitions, 1);
        assert!(ConnectorSettings::of("k", ConnectorKind::Sink, &props(&[])).is_err());
    }
}
