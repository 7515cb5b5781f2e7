//! Debezium's transaction metadata (`provide.transaction.metadata=true`), shared by the
//! Postgres and MySQL connectors: a `BEGIN` and an `END` record per transaction on
//! `<topic.prefix>.transaction`, and a `transaction` block (`id`, `total_order`,
//! `data_collection_order`) in every change event between them.
//!
//! What differs per database is only the transaction's id (Postgres: `<txId>:<LSN>`, MySQL:
//! the GTID or `file=…,pos=…`) and which transactions get records at all; the connectors
//! decide both. A large transaction may go out over several poll batches: the caller keeps its
//! [`TransactionCounts`] between them, sends `BEGIN` with the first and `END` with the last.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use sluice_api::data::{Schema, SchemaRef, SchemaType, Struct, Value};
use sluice_api::record::{Record, SourceOffset, SourcePartition, SourceRecord};

use crate::envelope::transaction_schema;

/// The offset key holding the id of a transaction partly sent (Debezium's `transaction_id`).
const OFFSET_ID: &str = "transaction_id";
/// The prefix of the offset keys holding a partly sent transaction's per-collection counts
/// (Debezium's `transaction_data_collection_order_<collection>`).
const OFFSET_COLLECTION_PREFIX: &str = "transaction_data_collection_order_";

/// The schemas of the metadata records, built once per task.
#[derive(Debug)]
pub struct TransactionMetadata {
    key: SchemaRef,
    value: SchemaRef,
    collection: SchemaRef,
    block: SchemaRef,
}

impl Default for TransactionMetadata {
    fn default() -> Self {
        let collection = Schema::struct_named("event.collection")
            .optional()
            .versioned(1)
            .field("data_collection", Schema::string().into_ref())
            .field("event_count", Schema::of(SchemaType::Int64).into_ref())
            .into_ref();
        TransactionMetadata {
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

/// The event counts of a transaction whose `BEGIN` went out, kept while its changes are sent
/// (possibly over several poll batches) until its `END`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TransactionCounts {
    total: i64,
    per_collection: BTreeMap<String, i64>,
}

impl TransactionCounts {
    /// Writes the counts and `id` into `offset` under Debezium's keys, so a restart inside the
    /// transaction goes on counting instead of sending a second `BEGIN`.
    pub fn store(&self, id: &str, offset: &mut SourceOffset) {
        offset.insert(OFFSET_ID.into(), json!(id));
        for (collection, count) in &self.per_collection {
            offset.insert(
                format!("{OFFSET_COLLECTION_PREFIX}{collection}"),
                json!(count),
            );
        }
    }

    /// The transaction id and counts [`store`](Self::store) wrote into `offset`, if any.
    pub fn load(offset: &SourceOffset) -> Option<(String, TransactionCounts)> {
        let id = offset.get(OFFSET_ID)?.as_str()?.to_owned();
        let per_collection: BTreeMap<String, i64> = offset
            .iter()
            .filter_map(|(key, value)| {
                let collection = key.strip_prefix(OFFSET_COLLECTION_PREFIX)?;
                Some((collection.to_owned(), value.as_i64()?))
            })
            .collect();
        let total = per_collection.values().sum();
        Some((
            id,
            TransactionCounts {
                total,
                per_collection,
            },
        ))
    }
}

/// What the `BEGIN` and `END` records of one transaction say besides their counts.
#[derive(Debug, Clone, Copy)]
pub struct Marker<'a> {
    /// `<topic.prefix>`: the records go to `<topic.prefix>.transaction`.
    pub topic_prefix: &'a str,
    /// The transaction's id as the database's Debezium connector writes it.
    pub id: &'a str,
    /// The record's `ts_ms` and timestamp.
    pub ts_ms: i64,
}

impl TransactionMetadata {
    /// The `BEGIN` record, carrying `offset`.
    pub fn begin(
        &self,
        marker: Marker<'_>,
        partition: &Arc<SourcePartition>,
        offset: SourceOffset,
    ) -> SourceRecord {
        self.metadata(marker, "BEGIN", None, partition, offset)
    }

    /// Stamps a change event with its `transaction` block (id `id`), counting on from
    /// `counts`. Records that are not change events (tombstones, schema change events) carry
    /// no block and are not counted, as in Debezium.
    pub fn stamp(&self, id: &str, counts: &mut TransactionCounts, record: &mut SourceRecord) {
        let Some(collection) = change_event_collection(record) else {
            return;
        };
        let Value::Struct(envelope) = &mut record.record.value else {
            return;
        };
        counts.total += 1;
        let order = counts.per_collection.entry(collection).or_default();
        *order += 1;
        let mut block = Struct::new(Arc::clone(&self.block));
        let _ = block.put("id", Value::from(id));
        let _ = block.put("total_order", Value::Int64(counts.total));
        let _ = block.put("data_collection_order", Value::Int64(*order));
        let _ = envelope.put("transaction", Value::Struct(block));
    }

    /// The `END` record with the counts, carrying `offset` (the one that covers the whole
    /// transaction).
    pub fn end(
        &self,
        marker: Marker<'_>,
        counts: TransactionCounts,
        partition: &Arc<SourcePartition>,
        offset: SourceOffset,
    ) -> SourceRecord {
        self.metadata(marker, "END", Some(counts), partition, offset)
    }

    fn metadata(
        &self,
        marker: Marker<'_>,
        status: &str,
        counts: Option<TransactionCounts>,
        partition: &Arc<SourcePartition>,
        offset: SourceOffset,
    ) -> SourceRecord {
        let mut value = Struct::new(Arc::clone(&self.value));
        let _ = value.put("status", Value::from(status));
        let _ = value.put("id", Value::from(marker.id));
        let _ = value.put("ts_ms", Value::Int64(marker.ts_ms));
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
                    let _ = entry.put("data_collection", Value::from(name));
                    let _ = entry.put("event_count", Value::Int64(count));
                    Value::Struct(entry)
                })
                .collect();
            let _ = value.put("data_collections", Value::Array(collections));
        }
        let mut key = Struct::new(Arc::clone(&self.key));
        let _ = key.put("id", Value::from(marker.id));
        let mut record = Record::new(
            format!("{}.transaction", marker.topic_prefix),
            Value::Struct(value),
            Some(Arc::clone(&self.value)),
        );
        record.key = Value::Struct(key);
        record.key_schema = Some(Arc::clone(&self.key));
        record.timestamp_ms = Some(marker.ts_ms);
        SourceRecord {
            record,
            source_partition: Arc::clone(partition),
            source_offset: offset,
        }
    }
}

/// Whether `record` is a change event (one that gets a `transaction` block and is counted).
pub fn is_change_event(record: &SourceRecord) -> bool {
    change_event_collection(record).is_some()
}

/// Debezium's data collection id of a change event: `schema.table` where the `source` block
/// has a schema (Postgres), else `db.table` (MySQL). `None` for any other record.
fn change_event_collection(record: &SourceRecord) -> Option<String> {
    let Value::Struct(envelope) = &record.record.value else {
        return None;
    };
    if !envelope
        .schema
        .fields
        .iter()
        .any(|f| f.name == "transaction")
    {
        return None;
    }
    let Some(Value::Struct(source)) = envelope.get("source") else {
        return None;
    };
    let Some(Value::String(table)) = source.get("table") else {
        return None;
    };
    if table.is_empty() {
        return None;
    }
    match (source.get("schema"), source.get("db")) {
        (Some(Value::String(schema)), _)
        | (None | Some(Value::Null), Some(Value::String(schema))) => {
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
        let schemas = TransactionMetadata::default();
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
    }

    #[test]
    fn counts_survive_an_offset_under_debezium_s_keys() {
        let counts = TransactionCounts {
            total: 5,
            per_collection: [("inventory.a".into(), 2), ("inventory.b".into(), 3)].into(),
        };
        let mut offset = SourceOffset::new();
        offset.insert("file".into(), json!("mysql-bin.000001"));
        counts.store("0-1-7", &mut offset);
        assert_eq!(offset["transaction_id"], json!("0-1-7"));
        assert_eq!(
            offset["transaction_data_collection_order_inventory.b"],
            json!(3)
        );
        assert_eq!(
            TransactionCounts::load(&offset),
            Some(("0-1-7".to_owned(), counts))
        );
        offset.remove("transaction_id");
        assert_eq!(TransactionCounts::load(&offset), None);
    }
}
