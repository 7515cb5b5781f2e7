//! Which topics a connector reads and how the topics it writes are created: `topics` /
//! `topics.regex` for sinks, `topic.creation.default.*` (KIP-158) for sources. Parsed here once
//! for the direct bus, the Kafka consumer, the offsets API and validation.

use regex::Regex;
use sluice_api::config::{FieldError, Props, split_list};

use crate::config::int;

/// Which topics a sink connector takes: `topics` (a list) or `topics.regex` (a whole-name
/// match).
#[derive(Debug, Clone)]
pub(crate) enum TopicFilter {
    /// `topics=a,b`.
    Topics(Vec<String>),
    /// `topics.regex=…` as written, and compiled anchored at both ends.
    Regex(String, Regex),
}

impl TopicFilter {
    /// Reads `topics` / `topics.regex`; exactly one must be set. The error names the field.
    pub(crate) fn of(config: &Props) -> Result<TopicFilter, FieldError> {
        let set = |key: &str| config.get(key).filter(|v| !v.trim().is_empty());
        match (set("topics"), set("topics.regex")) {
            (Some(topics), None) => Ok(TopicFilter::Topics(split_list(topics))),
            (None, Some(pattern)) => Regex::new(&format!("^(?:{pattern})$"))
                .map(|regex| TopicFilter::Regex(pattern.trim().to_owned(), regex))
                .map_err(|e| {
                    FieldError::new(
                        "topics.regex",
                        format!("not a valid regular expression: {e}"),
                    )
                }),
            (None, None) => Err(FieldError::new(
                "topics",
                "Must configure one of topics or topics.regex",
            )),
            (Some(_), Some(_)) => Err(FieldError::new(
                "topics",
                "topics and topics.regex are mutually exclusive; keep one",
            )),
        }
    }

    /// True when `topic` belongs to this subscription.
    pub(crate) fn matches(&self, topic: &str) -> bool {
        match self {
            TopicFilter::Topics(topics) => topics.iter().any(|t| t == topic),
            TopicFilter::Regex(_, regex) => regex.is_match(topic),
        }
    }

    /// The subscription in librdkafka's terms: topic names, or one pattern (a topic starting
    /// with `^` is a regular expression to librdkafka, whose engine knows no `(?:`).
    pub(crate) fn subscription(&self) -> Vec<String> {
        match self {
            TopicFilter::Topics(topics) => topics.clone(),
            TopicFilter::Regex(pattern, _) => vec![format!(
                "^{}$",
                pattern.trim_start_matches('^').trim_end_matches('$')
            )],
        }
    }
}

/// KIP-158 settings for the topics a source writes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicCreation {
    pub(crate) partitions: i32,
    pub(crate) replication_factor: i32,
    /// Topic configs (`cleanup.policy`, …) from `topic.creation.default.<config>`.
    pub(crate) configs: Vec<(String, String)>,
}

impl TopicCreation {
    /// `topic.creation.default.*` from the connector. Without them sluice still creates a
    /// missing topic (one partition, the broker's replication factor), since brokers may not
    /// auto-create topics.
    pub(crate) fn of(config: &Props) -> TopicCreation {
        const PREFIX: &str = "topic.creation.default.";
        let configs = config
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(PREFIX)
                    .map(|rest| (rest.to_owned(), v.clone()))
            })
            .filter(|(k, _)| k != "partitions" && k != "replication.factor")
            .collect();
        TopicCreation {
            partitions: int(config, "topic.creation.default.partitions", 1),
            replication_factor: int(config, "topic.creation.default.replication.factor", -1),
            configs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_api::config::props;

    #[test]
    fn exactly_one_of_topics_and_topics_regex() {
        let listed = TopicFilter::of(&props(&[("topics", "a, b")])).unwrap();
        assert!(listed.matches("a") && listed.matches("b") && !listed.matches("ab"));
        let regex = TopicFilter::of(&props(&[("topics.regex", "db\\..*")])).unwrap();
        assert!(regex.matches("db.x") && !regex.matches("xdb.x"));
        assert_eq!(regex.subscription(), ["^db\\..*$"]);
        assert_eq!(TopicFilter::of(&props(&[])).unwrap_err().field, "topics");
        let both = props(&[("topics", "a"), ("topics.regex", "b")]);
        assert!(
            TopicFilter::of(&both)
                .unwrap_err()
                .message
                .contains("exclusive")
        );
        let bad = TopicFilter::of(&props(&[("topics.regex", "(")])).unwrap_err();
        assert_eq!(bad.field, "topics.regex");
    }
}
