//! A binlog transaction while it is read: its records (held until its commit), where it
//! started, and the statements inside it that steer it (BEGIN, COMMIT, ROLLBACK, savepoints,
//! XA) rather than change a schema.
//!
//! What a rollback leaves in the binlog: a transaction that only changed transactional
//! tables (InnoDB) and rolled back is not written at all, and a ROLLBACK TO SAVEPOINT cuts the
//! rows after the savepoint out of it. Only when it also changed a non-transactional table
//! (MyISAM, Aria, MEMORY) does the server write the rows with a ROLLBACK (or ROLLBACK TO) query
//! event: the non-transactional changes stay, the transactional ones were undone. So on such a
//! rollback the records of transactional tables are dropped and the others kept.

use std::sync::Arc;

use sluice_api::data::Value;
use sluice_api::record::{SourceOffset, SourcePartition, SourceRecord};
use sluice_debezium::transaction::{
    Marker, TransactionCounts, TransactionMetadata, is_change_event,
};

use crate::snapshot::Position;

/// What [`Transaction::with_metadata`] needs of the task.
pub(crate) struct MetadataContext<'a> {
    pub(crate) records: &'a TransactionMetadata,
    pub(crate) topic_prefix: &'a str,
    pub(crate) partition: &'a Arc<SourcePartition>,
}

/// A transaction being read from the binlog.
#[derive(Default)]
pub(crate) struct Transaction {
    pub(crate) records: Vec<SourceRecord>,
    pub(crate) gtid: Option<String>,
    /// Where the transaction starts (its GTID or BEGIN event).
    pub(crate) start: Option<Position>,
    /// Rows events of this transaction read so far (captured tables or not).
    pub(crate) rows_events: u64,
    /// After a restart inside this transaction: how many of its rows events went out already.
    pub(crate) skip_events: u64,
    /// Opened by BEGIN (MySQL) or a MariaDB GTID event without the standalone flag: it ends
    /// only at its XID event, COMMIT, ROLLBACK or XA PREPARE, and statements inside it
    /// (SAVEPOINT, ROLLBACK TO, XA START/END) do not end it.
    pub(crate) explicit: bool,
    /// Savepoints by upper-cased name, with how many of `records` preceded them.
    savepoints: Vec<(String, usize)>,
    /// Records of this transaction already handed out (a large transaction's parts): a
    /// rollback can no longer take them back.
    pub(crate) released: bool,
    /// With transaction metadata: the counts so far, once its `BEGIN` went out.
    pub(crate) counts: Option<TransactionCounts>,
}

impl Transaction {
    /// A transaction whose first event is at `start`.
    pub(crate) fn open(
        gtid: Option<String>,
        start: Position,
        skip_events: u64,
        explicit: bool,
    ) -> Transaction {
        Transaction {
            gtid,
            start: Some(start),
            skip_events,
            explicit,
            ..Transaction::default()
        }
    }

    /// Debezium's MySQL transaction id: the GTID, else `file=<file>,pos=<start>` (the position
    /// of its BEGIN; `at` when the stream joined it after its start).
    pub(crate) fn id(&self, at: &Position) -> String {
        match (&self.gtid, &self.start) {
            (Some(gtid), _) => gtid.clone(),
            (None, Some(start)) => format!("file={},pos={}", start.file, start.pos),
            (None, None) => format!("file={},pos={}", at.file, at.pos),
        }
    }

    /// With `provide.transaction.metadata`: `records` (this transaction's, or a part of it)
    /// with `BEGIN` before the first part, each change event's `transaction` block, and `END`
    /// after the last part (`end`: the offset after the commit). A part's last record gets
    /// the counts in its offset, under Debezium's keys, so a restart inside the transaction
    /// counts on without a second `BEGIN`.
    ///
    /// As Debezium's MySQL connector does, every transaction the binlog opens with BEGIN (or a
    /// MariaDB GTID event) gets `BEGIN`/`END`, also one that changed no captured table; a
    /// statement outside a transaction (DDL) gets them only when it made change events (a
    /// TRUNCATE's).
    pub(crate) fn with_metadata(
        &mut self,
        metadata: &MetadataContext<'_>,
        at: &Position,
        ts_ms: i64,
        records: Vec<SourceRecord>,
        end: Option<SourceOffset>,
    ) -> Vec<SourceRecord> {
        let id = self.id(at);
        let marker = Marker {
            topic_prefix: metadata.topic_prefix,
            id: &id,
            ts_ms,
        };
        let mut out = Vec::with_capacity(records.len() + 2);
        let counts = match self.counts.as_mut() {
            Some(counts) => counts,
            None => {
                if !self.explicit && !records.iter().any(is_change_event) {
                    return records;
                }
                out.push(
                    metadata
                        .records
                        .begin(marker, metadata.partition, SourceOffset::new()),
                );
                self.counts.insert(TransactionCounts::default())
            }
        };
        for mut record in records {
            metadata.records.stamp(&id, counts, &mut record);
            out.push(record);
        }
        match end {
            Some(offset) => {
                let counts = self.counts.take().unwrap_or_default();
                out.push(
                    metadata
                        .records
                        .end(marker, counts, metadata.partition, offset),
                );
            }
            None => {
                if let Some(last) = out.last_mut() {
                    counts.store(&id, &mut last.source_offset);
                }
            }
        }
        out
    }

    /// Marks a savepoint at the current end of the records.
    pub(crate) fn savepoint(&mut self, name: String) {
        self.savepoints.retain(|(existing, _)| *existing != name);
        self.savepoints.push((name, self.records.len()));
    }

    /// The records from savepoint `name` on (all of them for a whole rollback, `None`), which
    /// a rollback undoes for transactional tables; `None` when the savepoint is unknown or
    /// its records were already handed out.
    pub(crate) fn rolled_back_from(&self, savepoint: Option<&str>) -> Option<usize> {
        match savepoint {
            None => Some(0),
            Some(name) => self
                .savepoints
                .iter()
                .find(|(existing, _)| existing == name)
                .map(|(_, at)| *at)
                .filter(|at| *at <= self.records.len()),
        }
    }

    /// Drops the records from `from` on whose table `transactional` says a rollback undid;
    /// a tombstone follows its delete. Returns how many were dropped.
    pub(crate) fn drop_undone(
        &mut self,
        from: usize,
        transactional: impl Fn(&str, &str) -> bool,
    ) -> usize {
        let tail = self.records.split_off(from.min(self.records.len()));
        let before = tail.len();
        let mut keep_previous = true;
        for record in tail {
            let keep = match source_table(&record) {
                Some((db, table)) => !transactional(db, table),
                None if record.record.value.is_null() => keep_previous,
                None => true,
            };
            keep_previous = keep;
            if keep {
                self.records.push(record);
            }
        }
        self.savepoints.retain(|(_, at)| *at <= self.records.len());
        before - (self.records.len() - from.min(self.records.len()))
    }

    /// The tables the records from `from` on belong to, once each.
    pub(crate) fn tables_from(&self, from: usize) -> Vec<(String, String)> {
        let mut tables: Vec<(String, String)> = Vec::new();
        for record in self.records.iter().skip(from) {
            if let Some((db, table)) = source_table(record)
                && !tables.iter().any(|(d, t)| d == db && t == table)
            {
                tables.push((db.to_owned(), table.to_owned()));
            }
        }
        tables
    }
}

/// The `source.db` and `source.table` of a change event.
fn source_table(record: &SourceRecord) -> Option<(&str, &str)> {
    let Value::Struct(value) = &record.record.value else {
        return None;
    };
    let Some(Value::Struct(source)) = value.get("source") else {
        return None;
    };
    Some((source.get("db")?.as_str()?, source.get("table")?.as_str()?))
}

/// The statements of a binlog query event that steer a transaction rather than change a
/// schema.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TransactionControl {
    Begin,
    Commit,
    /// A whole rollback: the binlog has one only for a transaction that also changed a
    /// non-transactional table.
    Rollback,
    /// SAVEPOINT name.
    Savepoint(String),
    /// ROLLBACK [WORK] TO [SAVEPOINT] name.
    RollbackTo(String),
    /// RELEASE SAVEPOINT name, XA START and XA END: nothing to do inside the transaction
    /// (XA PREPARE, its own event, ends an XA transaction's group).
    Inside,
    /// XA COMMIT or XA ROLLBACK of a transaction prepared earlier: a group of its own.
    XaCompletion {
        rollback: bool,
    },
}

impl TransactionControl {
    /// The control statement `upper` (trimmed, upper-cased) is, if any.
    pub(crate) fn of(upper: &str) -> Option<TransactionControl> {
        let words: Vec<&str> = upper.split_whitespace().collect();
        let name = |word: Option<&&str>| {
            word.map(|w| w.trim_matches('`').to_owned())
                .unwrap_or_default()
        };
        Some(match words.as_slice() {
            ["BEGIN"] | ["BEGIN", "WORK"] | ["START", "TRANSACTION", ..] => {
                TransactionControl::Begin
            }
            ["COMMIT"] | ["COMMIT", "WORK"] => TransactionControl::Commit,
            ["ROLLBACK"] | ["ROLLBACK", "WORK"] => TransactionControl::Rollback,
            ["SAVEPOINT", rest @ ..] => TransactionControl::Savepoint(name(rest.last())),
            ["ROLLBACK", "WORK", "TO", rest @ ..] | ["ROLLBACK", "TO", rest @ ..] => {
                TransactionControl::RollbackTo(name(rest.last()))
            }
            ["RELEASE", "SAVEPOINT", ..] | ["XA", "START" | "BEGIN" | "END", ..] => {
                TransactionControl::Inside
            }
            ["XA", "COMMIT", ..] => TransactionControl::XaCompletion { rollback: false },
            ["XA", "ROLLBACK", ..] => TransactionControl::XaCompletion { rollback: true },
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_api::data::{Schema, Struct};
    use std::sync::Arc;

    #[test]
    fn the_id_is_the_gtid_else_the_file_and_position_of_the_start() {
        let at = Position {
            file: "mysql-bin.000003".into(),
            pos: 900,
        };
        let start = Position {
            file: "mysql-bin.000003".into(),
            pos: 154,
        };
        let with_gtid = Transaction::open(Some("0-1-42".into()), start.clone(), 0, true);
        assert_eq!(with_gtid.id(&at), "0-1-42");
        let without = Transaction::open(None, start, 0, true);
        assert_eq!(without.id(&at), "file=mysql-bin.000003,pos=154");
        assert_eq!(
            Transaction::default().id(&at),
            "file=mysql-bin.000003,pos=900"
        );
    }

    #[test]
    fn control_statements_are_told_from_ddl() {
        use TransactionControl::*;
        for (sql, expected) in [
            ("BEGIN", Some(Begin)),
            ("COMMIT", Some(Commit)),
            ("ROLLBACK", Some(Rollback)),
            ("SAVEPOINT `SP1`", Some(Savepoint("SP1".into()))),
            ("ROLLBACK TO `SP1`", Some(RollbackTo("SP1".into()))),
            (
                "ROLLBACK WORK TO SAVEPOINT SP1",
                Some(RollbackTo("SP1".into())),
            ),
            ("RELEASE SAVEPOINT `SP1`", Some(Inside)),
            ("XA START X'31',X'',1", Some(Inside)),
            ("XA END X'31',X'',1", Some(Inside)),
            (
                "XA COMMIT X'31',X'',1",
                Some(XaCompletion { rollback: false }),
            ),
            (
                "XA ROLLBACK X'31',X'',1",
                Some(XaCompletion { rollback: true }),
            ),
            ("ALTER TABLE T ADD COLUMN C INT", None),
            ("TRUNCATE TABLE T", None),
            ("ROLLBACKS", None),
        ] {
            assert_eq!(TransactionControl::of(sql), expected, "{sql}");
        }
    }

    fn record(value: Value) -> SourceRecord {
        SourceRecord {
            record: sluice_api::record::Record::new("t", value, None),
            source_partition: Arc::default(),
            source_offset: Default::default(),
        }
    }

    fn event(table: &str) -> SourceRecord {
        let source_schema = Schema::struct_named("source")
            .field("db", Schema::string())
            .field("table", Schema::string())
            .into_ref();
        let mut source = Struct::new(Arc::clone(&source_schema));
        source.put("db", Value::from("inventory")).unwrap();
        source.put("table", Value::from(table)).unwrap();
        let envelope = Schema::struct_named("envelope")
            .field("source", source_schema)
            .into_ref();
        let mut value = Struct::new(envelope);
        value.put("source", Value::Struct(source)).unwrap();
        record(Value::Struct(value))
    }

    fn tables(transaction: &Transaction) -> Vec<String> {
        transaction
            .records
            .iter()
            .map(|r| {
                source_table(r)
                    .map(|(_, t)| t.to_owned())
                    .unwrap_or("tombstone".into())
            })
            .collect()
    }

    #[test]
    fn a_rollback_drops_only_transactional_tables_records_after_its_savepoint() {
        let mut transaction = Transaction::default();
        transaction.records.push(event("innodb"));
        transaction.records.push(event("myisam"));
        transaction.savepoint("SP".into());
        transaction.records.push(event("innodb"));
        transaction.records.push(record(Value::Null)); // its tombstone
        transaction.records.push(event("myisam"));
        let transactional = |_: &str, table: &str| table == "innodb";

        let from = transaction.rolled_back_from(Some("SP")).unwrap();
        assert_eq!(transaction.drop_undone(from, transactional), 2);
        assert_eq!(tables(&transaction), ["innodb", "myisam", "myisam"]);
        assert_eq!(transaction.rolled_back_from(Some("OTHER")), None);

        let from = transaction.rolled_back_from(None).unwrap();
        assert_eq!(transaction.tables_from(from).len(), 2);
        assert_eq!(transaction.drop_undone(from, transactional), 1);
        assert_eq!(tables(&transaction), ["myisam", "myisam"]);
    }
}
