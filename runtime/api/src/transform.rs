//! Single-message transforms and predicates, configured the Kafka Connect way
//! (`transforms=a,b`, `transforms.a.type=…`, `predicates=p`, `transforms.a.predicate=p`).

use std::fmt;

use crate::Result;
use crate::config::{ConfigDef, Props};
use crate::record::Record;

/// Turns one record into zero or more records.
///
/// # Contract
/// * The worker calls [`apply_batch`](Transform::apply_batch) one batch at a time, in
///   delivery order, never concurrently: each task has its own instances, which travel with
///   the batch they transform. A transform may keep state across calls.
/// * Not on any one thread. A source task's poll of at least 256 records is transformed on a
///   blocking thread (Tokio's `spawn_blocking`) while the task's next poll runs; smaller
///   polls, and sink batches, are transformed in line, on whichever runtime worker thread
///   runs the task at that moment. A transform must therefore be `Send`, must not rely on
///   thread-locals, and must not rely on running inside the async runtime (it must not
///   spawn, `block_on` or otherwise use a Tokio handle). It should not block for long
///   either: in line it holds up one of the runtime's threads.
/// * Pushing nothing into `out` drops the record (its source offset still counts as handled).
///   Pushing several fans it out; every output carries the input's source position.
/// * An `Err` is a problem with this record ([`ErrorKind::Data`](crate::ErrorKind::Data));
///   the connector's error tolerance decides whether the task fails or skips the record.
pub trait Transform: Send {
    /// Transforms `record`, appending the results to `out`.
    fn apply(&mut self, record: Record, out: &mut Vec<Record>) -> Result<()>;

    /// Transforms a batch: exactly one result per input record, in input order, each what
    /// [`apply`](Transform::apply) would have given for that record alone (an error fails
    /// that record only). The default calls `apply` record by record; a transform whose calls
    /// have a fixed cost (a WASM plugin crossing into its sandbox) overrides it to pay that
    /// cost once per batch.
    fn apply_batch(&mut self, records: Vec<Record>) -> Vec<Result<Vec<Record>>> {
        records
            .into_iter()
            .map(|record| {
                let mut out = Vec::with_capacity(1);
                self.apply(record, &mut out).map(|()| out)
            })
            .collect()
    }
}

/// A condition on a record, deciding whether a transform applies.
pub trait Predicate: Send + Sync {
    /// True when the record matches.
    fn test(&self, record: &Record) -> bool;
}

/// A transform plugin: its names, config and constructor.
#[derive(Clone, Copy)]
pub struct TransformPlugin {
    /// The Kafka Connect class name, e.g. `org.apache.kafka.connect.transforms.RegexRouter`.
    pub class: &'static str,
    /// Extra short names accepted in `transforms.<alias>.type`.
    pub aliases: &'static [&'static str],
    /// The transform's own keys (without the `transforms.<alias>.` prefix).
    pub config_def: fn() -> ConfigDef,
    /// Builds the transform from its own settings (the `transforms.<alias>.` prefix removed).
    pub create: fn(&Props) -> Result<Box<dyn Transform>>,
}

/// Shows the names; the functions are left out.
impl fmt::Debug for TransformPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransformPlugin")
            .field("class", &self.class)
            .field("aliases", &self.aliases)
            .finish_non_exhaustive()
    }
}

/// A predicate plugin.
#[derive(Clone, Copy)]
pub struct PredicatePlugin {
    /// The Kafka Connect class name, e.g.
    /// `org.apache.kafka.connect.transforms.predicates.TopicNameMatches`.
    pub class: &'static str,
    /// Extra short names accepted in `predicates.<alias>.type`.
    pub aliases: &'static [&'static str],
    /// The predicate's own keys (without the `predicates.<alias>.` prefix).
    pub config_def: fn() -> ConfigDef,
    /// Builds the predicate from its own settings (the `predicates.<alias>.` prefix removed).
    pub create: fn(&Props) -> Result<Box<dyn Predicate>>,
}

/// Shows the names; the functions are left out.
impl fmt::Debug for PredicatePlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PredicatePlugin")
            .field("class", &self.class)
            .field("aliases", &self.aliases)
            .finish_non_exhaustive()
    }
}

/// Whether `name` designates a plugin with this class and these aliases: the full class, its
/// last segment, or an alias (ignoring case).
pub fn class_answers_to(class: &str, aliases: &[&str], name: &str) -> bool {
    name == class
        || class.rsplit('.').next() == Some(name)
        || aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
}
