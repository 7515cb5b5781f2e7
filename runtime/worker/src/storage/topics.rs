//! KIP-558's active topics: the topics each connector's tasks wrote (sources) or read
//! (sinks) since the connector was created or its topics were reset
//! (`GET /connectors/{c}/topics`, `PUT /connectors/{c}/topics/reset`).
//!
//! A worker keeps them in memory, as Kafka Connect's standalone worker does; a distributed
//! worker also writes each discovery to the status topic in Kafka Connect's format
//! (`status-topic-<topic>:connector-<connector>` →
//! `{"topic":{"name","connector","task","discoverTimestamp"}}`), where every worker of the
//! group reads them. Tasks report a topic when it differs from the last one they reported,
//! so the hot path compares one string per record.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use crate::clock::now_ms;

/// A topic a task used, and when it was first seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    pub connector: String,
    pub topic: String,
    pub task: u32,
    pub discovered_ms: i64,
}

/// The active topics of every connector this worker runs tasks of.
#[derive(Debug)]
pub struct ActiveTopics {
    /// `topic.tracking.enable`.
    enabled: bool,
    /// `topic.tracking.allow.reset`.
    allow_reset: bool,
    /// connector → topic → discovery.
    topics: Mutex<BTreeMap<String, BTreeMap<String, Discovery>>>,
    /// Bumped by every reset, so tasks report again the topic they last reported.
    generation: AtomicU64,
    /// Distributed workers: where discoveries go to be written to the status topic.
    publisher: Mutex<Option<mpsc::UnboundedSender<Discovery>>>,
}

impl Default for ActiveTopics {
    fn default() -> ActiveTopics {
        ActiveTopics::new(true, true)
    }
}

impl ActiveTopics {
    /// Tracking per `topic.tracking.enable` and `topic.tracking.allow.reset`.
    pub fn new(enabled: bool, allow_reset: bool) -> ActiveTopics {
        ActiveTopics {
            enabled,
            allow_reset,
            topics: Mutex::new(BTreeMap::new()),
            generation: AtomicU64::new(0),
            publisher: Mutex::new(None),
        }
    }

    /// `topic.tracking.enable`.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// `topic.tracking.allow.reset`.
    pub fn allow_reset(&self) -> bool {
        self.allow_reset
    }

    /// Sends every new discovery to `publisher` too (the distributed worker's status topic).
    pub(crate) fn publish_to(&self, publisher: mpsc::UnboundedSender<Discovery>) {
        *self.publisher.lock().expect("topics lock") = Some(publisher);
    }

    /// Changes with every reset; a task reports its topics again when it moved.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Task `task` of `connector` used `topic`; recorded unless it was already.
    pub(crate) fn record(&self, connector: &str, task: u32, topic: &str) {
        if !self.enabled {
            return;
        }
        let mut topics = self.topics.lock().expect("topics lock");
        let known = topics.entry(connector.to_owned()).or_default();
        if known.contains_key(topic) {
            return;
        }
        let discovery = Discovery {
            connector: connector.to_owned(),
            topic: topic.to_owned(),
            task,
            discovered_ms: now_ms(),
        };
        known.insert(topic.to_owned(), discovery.clone());
        tracing::debug!(connector, task, topic, "active topic discovered");
        if let Some(publisher) = self.publisher.lock().expect("topics lock").as_ref() {
            let _ = publisher.send(discovery);
        }
    }

    /// The topics recorded for `connector` on this worker, sorted.
    pub fn topics(&self, connector: &str) -> Vec<String> {
        self.topics
            .lock()
            .expect("topics lock")
            .get(connector)
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Forgets `connector`'s topics; its tasks report them again as they use them.
    pub fn reset(&self, connector: &str) {
        self.topics.lock().expect("topics lock").remove(connector);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

/// What a task last reported, so it reports a topic only when it changes.
#[derive(Debug, Default)]
pub(crate) struct TopicReporter {
    last: String,
    generation: u64,
}

impl TopicReporter {
    /// Reports `topic` for task `task` of `connector` when it is not the last one reported
    /// since the last reset.
    pub(crate) fn saw(&mut self, topics: &ActiveTopics, connector: &str, task: u32, topic: &str) {
        let generation = topics.generation();
        if self.last == topic && self.generation == generation {
            return;
        }
        topics.record(connector, task, topic);
        topic.clone_into(&mut self.last);
        self.generation = generation;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_recorded_once_reset_and_reported_again() {
        let topics = ActiveTopics::default();
        let (sender, mut published) = mpsc::unbounded_channel();
        topics.publish_to(sender);
        let mut reporter = TopicReporter::default();
        for topic in ["a", "a", "b", "a"] {
            reporter.saw(&topics, "c", 0, topic);
        }
        assert_eq!(topics.topics("c"), ["a", "b"]);
        assert_eq!(published.try_recv().unwrap().topic, "a");
        assert_eq!(published.try_recv().unwrap().topic, "b");
        assert!(published.try_recv().is_err(), "each topic once");
        topics.reset("c");
        assert!(topics.topics("c").is_empty());
        reporter.saw(&topics, "c", 0, "a");
        assert_eq!(topics.topics("c"), ["a"], "reported again after the reset");
        let off = ActiveTopics::new(false, true);
        off.record("c", 0, "a");
        assert!(off.topics("c").is_empty());
    }
}
