//! Debezium's transaction metadata for Postgres: the records and blocks are the shared ones
//! ([`sluice_debezium::transaction`]); what is Postgres's own is the transaction id,
//! `<txId>:<LSN>`, and that a transaction without captured changes gets no `BEGIN`/`END`.

use std::sync::Arc;

use sluice_api::data::Value;
use sluice_api::record::{SourceOffset, SourcePartition, SourceRecord};

use sluice_debezium::transaction::Marker;
pub(crate) use sluice_debezium::transaction::{TransactionCounts, TransactionMetadata};

/// One committed transaction, as the metadata describes it.
#[derive(Debug)]
pub struct TransactionInfo<'a> {
    pub xid: u32,
    pub commit_lsn: u64,
    pub commit_micros: i64,
    pub topic_prefix: &'a str,
}

impl TransactionInfo<'_> {
    /// Debezium's transaction id for Postgres: `<txId>:<LSN>`, where the LSN is the last one
    /// seen when the record was made: each change event's own, `BEGIN`'s that of the first
    /// change, `END`'s the commit's.
    fn id(&self, lsn: u64) -> String {
        format!("{}:{}", self.xid, lsn)
    }

    fn marker<'a>(&'a self, id: &'a str) -> Marker<'a> {
        Marker {
            topic_prefix: self.topic_prefix,
            id,
            ts_ms: self.commit_micros / 1000,
        }
    }

    /// The `BEGIN` record, with the partition and offset of `like` (the first record after it).
    pub fn begin(&self, metadata: &TransactionMetadata, like: &SourceRecord) -> SourceRecord {
        let id = self.id(event_lsn(like).unwrap_or(self.commit_lsn));
        metadata.begin(
            self.marker(&id),
            &like.source_partition,
            like.source_offset.clone(),
        )
    }

    /// Stamps each change event of `records` with its `transaction` block, counting on from
    /// `counts`.
    pub fn stamp(
        &self,
        metadata: &TransactionMetadata,
        counts: &mut TransactionCounts,
        records: &mut [SourceRecord],
    ) {
        for record in records {
            let id = self.id(event_lsn(record).unwrap_or(self.commit_lsn));
            metadata.stamp(&id, counts, record);
        }
    }

    /// The `END` record with the counts, carrying `offset` (the one that covers the whole
    /// transaction).
    pub fn end(
        &self,
        metadata: &TransactionMetadata,
        counts: TransactionCounts,
        partition: &Arc<SourcePartition>,
        offset: SourceOffset,
    ) -> SourceRecord {
        let id = self.id(self.commit_lsn);
        metadata.end(self.marker(&id), counts, partition, offset)
    }
}

/// The `source.lsn` of a change event.
fn event_lsn(record: &SourceRecord) -> Option<u64> {
    let Value::Struct(envelope) = &record.record.value else {
        return None;
    };
    let Some(Value::Struct(source)) = envelope.get("source") else {
        return None;
    };
    match source.get("lsn") {
        Some(Value::Int64(lsn)) => u64::try_from(*lsn).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_the_transaction_and_the_lsn_last_seen() {
        let info = TransactionInfo {
            xid: 571,
            commit_lsn: 900,
            commit_micros: 0,
            topic_prefix: "p",
        };
        assert_eq!(info.id(53195829), "571:53195829");
    }
}
