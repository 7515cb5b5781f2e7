//! Debezium's transaction metadata (`provide.transaction.metadata=true`): a `BEGIN` and an
//! `END` record per transaction on `<topic.prefix>.transaction`, and a `transaction` block
//! (`id`, `total_order`, `data_collection_order`) in every change event between them.

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_api::data::{Schema, SchemaRef, SchemaType, Struct, Value};
use sluice_api::record::{Record, SourceRecord};

use crate::envelope::transaction_schema;

/// The schemas of the metadata records, built once per task.
pub struct TransactionSchemas {
    key: SchemaRef,
    value: SchemaRef,
    collection: SchemaRef,
    block: SchemaRef,
}

impl Default for TransactionSchemas {
    fn default() -> Self {
        let collection = Schema::struct_named("event.collection")
            .versioned(1)
            .field("data_collection", Schema::string().into_ref())
            .field("event_count", Schema::of(SchemaType::Int64).into_ref())
            .into_ref();
        TransactionSchemas {
            key: Schema::struct_named("io.debezium.connector.common.TransactionMetadataKey")
                .field("id", Schema::string().into_ref())
                .into_ref(),
            value: Schema::struct_named("io.debezium.connector.common.TransactionMetadataValue")
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
pub struct TransactionInfo<'a> {
    pub xid: u32,
    pub commit_lsn: u64,
    pub commit_micros: i64,
    pub topic_prefix: &'a str,
}

impl TransactionSchemas {
    /// Stamps each change event of `records` with its `transaction` block and wraps them in
    /// `BEGIN` … `END` records (which take the offset of the first and last record, so the
    /// transaction is still committed as a whole). Tombstones carry no block and are not
    /// counted, as in Debezium.
    pub fn wrap(
        &self,
        info: &TransactionInfo<'_>,
        records: Vec<SourceRecord>,
    ) -> Vec<SourceRecord> {
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return records;
        };
        let id = format!("{}:{}", info.xid, info.commit_lsn);
        let begin = self.metadata(info, &id, "BEGIN", None, first);
        let end_template = last.clone();
        let mut total = 0i64;
        let mut per_collection: BTreeMap<String, i64> = BTreeMap::new();
        let mut out = Vec::with_capacity(records.len() + 2);
        out.push(begin);
        for mut record in records {
            if let Value::Struct(envelope) = &mut record.record.value
                && let Some(collection) = data_collection(envelope)
            {
                total += 1;
                let order = per_collection.entry(collection).or_default();
                *order += 1;
                let mut block = Struct::new(Arc::clone(&self.block));
                let _ = block.put("id", Value::from(id.as_str()));
                let _ = block.put("total_order", Value::Int64(total));
                let _ = block.put("data_collection_order", Value::Int64(*order));
                let _ = envelope.put("transaction", Value::Struct(block));
            }
            out.push(record);
        }
        out.push(self.metadata(
            info,
            &id,
            "END",
            Some((total, per_collection)),
            &end_template,
        ));
        out
    }

    fn metadata(
        &self,
        info: &TransactionInfo<'_>,
        id: &str,
        status: &str,
        counts: Option<(i64, BTreeMap<String, i64>)>,
        like: &SourceRecord,
    ) -> SourceRecord {
        let mut value = Struct::new(Arc::clone(&self.value));
        let _ = value.put("status", Value::from(status));
        let _ = value.put("id", Value::from(id));
        let _ = value.put("ts_ms", Value::Int64(info.commit_micros / 1000));
        if let Some((total, per_collection)) = counts {
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
            source_partition: Arc::clone(&like.source_partition),
            source_offset: like.source_offset.clone(),
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
