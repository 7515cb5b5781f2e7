//! Debezium's transaction metadata (`provide.transaction.metadata=true`): a `BEGIN` and an
//! `END` record per transaction on `<topic.prefix>.transaction`, and a `transaction` block
//! (`id`, `total_order`, `data_collection_order`) in every change event between them. A large
//! transaction may be sent over several poll batches: `BEGIN` goes out with the first, the
//! counts are kept, and `END` goes out with the last.

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_api::data::{Schema, SchemaRef, SchemaType, Struct, Value};
use sluice_api::record::{Record, SourceOffset, SourcePartition, SourceRecord};

use sluice_debezium::envelope::transaction_schema;

/// The schemas of the metadata records, built once per task.
#[derive(Debug)]
pub struct TransactionSchemas {
    key: SchemaRef,
    value: SchemaRef,
    collection: SchemaRef,
    block: SchemaRef,
}

impl Default for TransactionSchemas {
    fn default() -> Self {
        let collection = Schema::struct_named("event.collection")
            .optional()
            .versioned(1)
            .field("data_collection", Schema::string().into_ref())
            .field("event_count", Schema::of(SchemaType::Int64).into_ref())
            .into_ref();
        TransactionSchemas {
            key: Schema::struct_named("io.debezium.connector.common.TransactionMetadataKey")
                .versioned(1)
                .field("id", Schema::string().into_ref())
                .into_ref(),
            value: Schema::struct_named("io.debezium.connector.common.TransactionMetadataValue")
                .versioned(1)
                .field("status", Schema::string().into_ref())
                .field("id", Schema::string().into_ref())
                .field(
                    "event_count",
                    Schema::of(SchemaType::Int64).optional().into_ref(),
                )
                .field(
                    "data_collections",
                    Schema::array(Arc::clone(&collection)).optional().into_ref(),
                )
                .field("ts_ms", Schema::of(SchemaType::Int64).into_ref())
                .into_ref(),
            collection,
            block: transaction_schema(),
        }
    }
}

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

/// The event counts of a transaction whose `BEGIN` went out, kept while its changes are sent
/// (possibly over several poll batches) until its `END`.
#[derive(Debug, Default)]
pub struct TransactionCounts {
    total: i64,
    per_collection: BTreeMap<String, i64>,
}

impl TransactionSchemas {
    /// The `BEGIN` record, with the partition and offset of `like` (the first record after it).
    pub fn begin(&self, info: &TransactionInfo<'_>, like: &SourceRecord) -> SourceRecord {
        self.metadata(
            info,
            &info.id(event_lsn(like).unwrap_or(info.commit_lsn)),
            "BEGIN",
            None,
            &like.source_partition,
            like.source_offset.clone(),
        )
    }

    /// Stamps each change event of `records` with its `transaction` block, counting on from
    /// `counts`. Tombstones carry no block and are not counted, as in Debezium.
    pub fn stamp(
        &self,
        info: &TransactionInfo<'_>,
        counts: &mut TransactionCounts,
        records: &mut [SourceRecord],
    ) {
        for record in records {
            let id = info.id(event_lsn(record).unwrap_or(info.commit_lsn));
            if let Value::Struct(envelope) = &mut record.record.value
                && let Some(collection) = data_collection(envelope)
            {
                counts.total += 1;
                let order = counts.per_collection.entry(collection).or_default();
                *order += 1;
                let mut block = Struct::new(Arc::clone(&self.block));
                let _ = block.put("id", Value::from(id.as_str()));
                let _ = block.put("total_order", Value::Int64(counts.total));
                let _ = block.put("data_collection_order", Value::Int64(*order));
                let _ = envelope.put("transaction", Value::Struct(block));
            }
        }
    }

    /// The `END` record with the counts, carrying `offset` (the one that covers the whole
    /// transaction).
    pub fn end(
        &self,
        info: &TransactionInfo<'_>,
        counts: TransactionCounts,
        partition: &Arc<SourcePartition>,
        offset: SourceOffset,
    ) -> SourceRecord {
        self.metadata(
            info,
            &info.id(info.commit_lsn),
            "END",
            Some(counts),
            partition,
            offset,
        )
    }

    fn metadata(
        &self,
        info: &TransactionInfo<'_>,
        id: &str,
        status: &str,
        counts: Option<TransactionCounts>,
        partition: &Arc<SourcePartition>,
        offset: SourceOffset,
    ) -> SourceRecord {
        let mut value = Struct::new(Arc::clone(&self.value));
        let _ = value.put("status", Value::from(status));
        let _ = value.put("id", Value::from(id));
        let _ = value.put("ts_ms", Value::Int64(info.commit_micros / 1000));
        if let Some(TransactionCounts {
            total,
            per_collection,
        }) = counts
        {
            let _ = value.put("event_count", Value::Int64(total));
            let collections = per_collection
                .into_iter()
                .map(|(name, count)| {
                    let mut entry = Struct::new(Arc::clone(&self.collection));
                    let _ = entry.put("data_collection", Value::String(name));
                    let _ = entry.put("event_count", Value::Int64(count));
                    Value::Struct(entry)
                })
                .collect();
            let _ = value.put("data_collections", Value::Array(collections));
        }
        let mut key = Struct::new(Arc::clone(&self.key));
        let _ = key.put("id", Value::from(id));
        let mut record = Record::new(
            format!("{}.transaction", info.topic_prefix),
            Value::Struct(value),
            Some(Arc::clone(&self.value)),
        );
        record.key = Value::Struct(key);
        record.key_schema = Some(Arc::clone(&self.key));
        record.timestamp_ms = Some(info.commit_micros / 1000);
        SourceRecord {
            record,
            source_partition: Arc::clone(partition),
            source_offset: offset,
        }
    }
}

/// `schema.table` of a change event (one with a `source` block naming a table).
fn data_collection(envelope: &Struct) -> Option<String> {
    let Some(Value::Struct(source)) = envelope.get("source") else {
        return None;
    };
    match (source.get("schema"), source.get("table")) {
        (Some(Value::String(schema)), Some(Value::String(table))) if !table.is_empty() => {
            Some(format!("{schema}.{table}"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_schemas_are_versioned_and_collection_items_optional() {
        let schemas = TransactionSchemas::default();
        assert_eq!(schemas.key.version, Some(1));
        assert_eq!(schemas.value.version, Some(1));
        let collections = schemas
            .value
            .fields
            .iter()
            .find(|f| f.name == "data_collections")
            .unwrap();
        assert!(collections.schema.optional);
        let item = collections.schema.value_schema.as_ref().unwrap();
        assert!(item.optional, "event.collection items are optional structs");
        assert_eq!(item.version, Some(1));
        let info = TransactionInfo {
            xid: 571,
            commit_lsn: 900,
            commit_micros: 0,
            topic_prefix: "p",
        };
        assert_eq!(info.id(53195829), "571:53195829");
    }
}
