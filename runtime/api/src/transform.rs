//! Single-message transforms and predicates, configured the Kafka Connect way
//! (`transforms=a,b`, `transforms.a.type=…`, `predicates=p`, `transforms.a.predicate=p`).

use crate::Result;
use crate::config::{ConfigDef, Props};
use crate::record::Record;

/// Turns one record into zero or more records.
///
/// # Contract
/// * Called on the task's own thread, one record at a time, in delivery order; a transform
///   may keep state but must not block.
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
    pub aliases: &'static [&'static str],
    pub config_def: fn() -> ConfigDef,
    /// Builds the transform from its own settings (the `transforms.<alias>.` prefix removed).
    pub create: fn(&Props) -> Result<Box<dyn Transform>>,
}

/// A predicate plugin.
#[derive(Clone, Copy)]
pub struct PredicatePlugin {
    pub class: &'static str,
    pub aliases: &'static [&'static str],
    pub config_def: fn() -> ConfigDef,
    /// Builds the predicate from its own settings (the `predicates.<alias>.` prefix removed).
    pub create: fn(&Props) -> Result<Box<dyn Predicate>>,
}

/// Whether `name` designates a plugin with this class and these aliases: the full class, its
/// last segment, or an alias (ignoring case).
pub fn class_answers_to(class: &str, aliases: &[&str], name: &str) -> bool {
    name == class
        || class.rsplit('.').next() == Some(name)
        || aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
}
