//! `skipped.operations`: which kinds of change events a connector leaves out.

use sluice_api::{Error, Result};

/// The `op` of a Debezium change event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `r`: a row read by a snapshot.
    Read,
    /// `c`: an insert (and the second half of a primary-key change).
    Create,
    /// `u`: an update.
    Update,
    /// `d`: a delete (and the first half of a primary-key change).
    Delete,
    /// `t`: a truncate.
    Truncate,
    /// `m`: a logical decoding message.
    Message,
}

impl Operation {
    /// The code in the envelope's `op` field.
    pub fn code(self) -> &'static str {
        match self {
            Operation::Read => "r",
            Operation::Create => "c",
            Operation::Update => "u",
            Operation::Delete => "d",
            Operation::Truncate => "t",
            Operation::Message => "m",
        }
    }
}

/// The operations `skipped.operations` names. Debezium's default, `t`, leaves truncates out:
/// a truncate event has no key, which a compacted topic refuses and several consumers
/// (Flink's debezium-json among them) fail on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkippedOperations {
    create: bool,
    update: bool,
    delete: bool,
    truncate: bool,
}

impl Default for SkippedOperations {
    fn default() -> Self {
        SkippedOperations::parse("t").expect("the default parses")
    }
}

impl SkippedOperations {
    /// Reads the key's value: a comma-separated list of `c`, `u`, `d`, `t` (and `r`, which
    /// Debezium accepts and which skips nothing: snapshots are never filtered), or `none` alone.
    pub fn parse(value: &str) -> Result<SkippedOperations> {
        let listed: Vec<&str> = value
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .collect();
        if listed.len() > 1 && listed.iter().any(|o| o.eq_ignore_ascii_case("none")) {
            return Err(Error::config(format!(
                "`skipped.operations={value}`: `none` cannot be combined with other operations"
            )));
        }
        let mut skipped = SkippedOperations {
            create: false,
            update: false,
            delete: false,
            truncate: false,
        };
        for op in value.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            match op.to_ascii_lowercase().as_str() {
                "c" => skipped.create = true,
                "u" => skipped.update = true,
                "d" => skipped.delete = true,
                "t" => skipped.truncate = true,
                "r" | "none" => {}
                other => {
                    return Err(Error::config(format!(
                        "`skipped.operations` holds `{other}`; the operations that can be skipped are \
                         c (creates), u (updates), d (deletes) and t (truncates), or none"
                    )));
                }
            }
        }
        Ok(skipped)
    }

    /// Whether events of `op` are left out. Snapshot reads and messages never are.
    pub fn skips(self, op: Operation) -> bool {
        match op {
            Operation::Create => self.create,
            Operation::Update => self.update,
            Operation::Delete => self.delete,
            Operation::Truncate => self.truncate,
            Operation::Read | Operation::Message => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_are_skipped_by_default_and_none_skips_nothing() {
        let default = SkippedOperations::default();
        assert!(default.skips(Operation::Truncate));
        assert!(!default.skips(Operation::Delete));
        let none = SkippedOperations::parse("none").unwrap();
        assert!(!none.skips(Operation::Truncate));
        let some = SkippedOperations::parse("c, d").unwrap();
        assert!(some.skips(Operation::Create) && some.skips(Operation::Delete));
        assert!(!some.skips(Operation::Update) && !some.skips(Operation::Truncate));
        assert!(!some.skips(Operation::Read));
        let err = SkippedOperations::parse("t,x").unwrap_err();
        assert!(err.message().contains("`x`"), "{err}");
    }
}
