//! Debezium's schema change events (`include.schema.changes`; off by default here, on in Debezium: see the README): a record on the
//! `<topic.prefix>` topic per DDL statement that touches a captured table, keyed by database
//! (`io.debezium.connector.<mysql|mariadb>.SchemaChangeKey`) and carrying the statement and
//! the tables' structures after it (`…SchemaChangeValue`: `source`, `ts_ms`, `databaseName`,
//! `schemaName`, `ddl`, `tableChanges` of Debezium's `io.debezium.connector.schema.Change`).
//!
//! The `tableChanges` are the same entries the schema history holds ([`crate::history`]),
//! converted to Connect values against Debezium's schemas.

use std::sync::Arc;

use serde_json::Value as Json;
use sluice_api::data::{Schema, SchemaRef, SchemaType, Struct, Value};
use sluice_api::record::{Record, SourceOffset, SourcePartition, SourceRecord};

/// The key and value schemas of connector flavour `mysql` or `mariadb`.
#[derive(Debug, Clone)]
pub struct SchemaChangeSchemas {
    pub key: SchemaRef,
    pub value: SchemaRef,
}

fn optional(schema_type: SchemaType) -> SchemaRef {
    Schema::of(schema_type).optional().into_ref()
}

fn required(schema_type: SchemaType) -> SchemaRef {
    Schema::of(schema_type).into_ref()
}

fn strings() -> SchemaRef {
    Schema::array(required(SchemaType::String))
        .optional()
        .into_ref()
}

impl SchemaChangeSchemas {
    /// Debezium's schemas (`SchemaFactory.schemaHistoryConnector{Key,Value}Schema`), with the
    /// connector's `source` schema.
    pub fn new(flavour: &str, source: &SchemaRef) -> SchemaChangeSchemas {
        use SchemaType::*;
        let column = Schema::struct_named("io.debezium.connector.schema.Column")
            .versioned(1)
            .field("name", required(String))
            .field("jdbcType", required(Int32))
            .field("nativeType", optional(Int32))
            .field("typeName", required(String))
            .field("typeExpression", optional(String))
            .field("charsetName", optional(String))
            .field("length", optional(Int32))
            .field("scale", optional(Int32))
            .field("position", required(Int32))
            .field("optional", optional(Boolean))
            .field("autoIncremented", optional(Boolean))
            .field("generated", optional(Boolean))
            .field("comment", optional(String))
            .field("defaultValueExpression", optional(String))
            .field("enumValues", strings())
            .into_ref();
        let table = Schema::struct_named("io.debezium.connector.schema.Table")
            .versioned(1)
            .optional()
            .field("defaultCharsetName", optional(String))
            .field("primaryKeyColumnNames", strings())
            .field("columns", Schema::array(column).into_ref())
            .field("comment", optional(String))
            .into_ref();
        let change = Schema::struct_named("io.debezium.connector.schema.Change")
            .versioned(1)
            .field("type", required(String))
            .field("id", required(String))
            .field("table", table)
            .into_ref();
        SchemaChangeSchemas {
            key: Schema::struct_named(format!("io.debezium.connector.{flavour}.SchemaChangeKey"))
                .versioned(1)
                .field("databaseName", required(String))
                .into_ref(),
            value: Schema::struct_named(format!(
                "io.debezium.connector.{flavour}.SchemaChangeValue"
            ))
            .versioned(1)
            .field("source", Arc::clone(source))
            .field("ts_ms", required(Int64))
            .field("databaseName", optional(String))
            .field("schemaName", optional(String))
            .field("ddl", optional(String))
            .field("tableChanges", Schema::array(change).into_ref())
            .into_ref(),
        }
    }

    /// The key of a change in database `db`.
    pub fn key(&self, db: &str) -> Value {
        Value::Struct(Struct {
            schema: Arc::clone(&self.key),
            values: vec![Value::from(db)],
        })
    }

    /// The value: `source` (the event's source block), the statement, and its table changes
    /// in the history's JSON form (`tableChanges` entries).
    pub fn value(&self, source: Value, ts_ms: i64, db: &str, ddl: &str, changes: &[Json]) -> Value {
        let change_schema = self.value.fields[5]
            .schema
            .value_schema
            .clone()
            .expect("an array of changes");
        Value::Struct(Struct {
            schema: Arc::clone(&self.value),
            values: vec![
                source,
                Value::Int64(ts_ms),
                Value::from(db),
                Value::Null,
                Value::from(ddl),
                Value::Array(
                    changes
                        .iter()
                        .map(|c| from_json(&change_schema, c))
                        .collect(),
                ),
            ],
        })
    }
}

impl SchemaChangeSchemas {
    /// The event's record on the `<topic.prefix>` topic, keyed by `db`; `value` is
    /// [`SchemaChangeSchemas::value`]'s.
    pub fn record(
        &self,
        topic_prefix: &str,
        db: &str,
        value: Value,
        ts_ms: i64,
        partition: &Arc<SourcePartition>,
        offset: SourceOffset,
    ) -> SourceRecord {
        let mut record = Record::new(topic_prefix, value, Some(Arc::clone(&self.value)));
        record.key = self.key(db);
        record.key_schema = Some(Arc::clone(&self.key));
        record.timestamp_ms = Some(ts_ms);
        SourceRecord {
            record,
            source_partition: Arc::clone(partition),
            source_offset: offset,
        }
    }
}

/// A JSON document as a Connect value of `schema` (structs by field name; absent or
/// mistyped fields are null).
fn from_json(schema: &SchemaRef, json: &Json) -> Value {
    match schema.schema_type {
        SchemaType::Struct => {
            if !json.is_object() {
                return Value::Null;
            }
            Value::Struct(Struct {
                schema: Arc::clone(schema),
                values: schema
                    .fields
                    .iter()
                    .map(|f| from_json(&f.schema, &json[f.name.as_str()]))
                    .collect(),
            })
        }
        SchemaType::Array => match (json.as_array(), &schema.value_schema) {
            (Some(items), Some(item)) => {
                Value::Array(items.iter().map(|i| from_json(item, i)).collect())
            }
            _ => Value::Null,
        },
        SchemaType::String => json.as_str().map(Value::from).unwrap_or(Value::Null),
        SchemaType::Int32 => json
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .map(Value::Int32)
            .unwrap_or(Value::Null),
        SchemaType::Int64 => json.as_i64().map(Value::Int64).unwrap_or(Value::Null),
        SchemaType::Boolean => json.as_bool().map(Value::Boolean).unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{At, Origin, version_record};
    use crate::table::ColumnInfo;

    #[test]
    fn table_changes_become_debezium_s_change_structs() {
        let source = crate::envelope::source_schema("mariadb");
        let schemas = SchemaChangeSchemas::new("mariadb", &source);
        assert_eq!(
            schemas.value.name.as_deref(),
            Some("io.debezium.connector.mariadb.SchemaChangeValue")
        );
        let origin = Origin {
            prefix: "dbserver1".into(),
            at: At {
                file: "b.000001".into(),
                pos: 4,
            },
            gtids: String::new(),
            server_id: 1,
            ts_ms: 0,
        };
        let columns = vec![ColumnInfo {
            nullable: false,
            primary: true,
            ..ColumnInfo::plain("id", "bigint", "bigint(20)")
        }];
        let record = version_record(&origin, "app", "t", "CREATE TABLE t", "CREATE", &columns);
        let changes = record["tableChanges"].as_array().unwrap();
        let value = schemas.value(Value::Null, 5, "app", "CREATE TABLE t", changes);
        let Value::Struct(value) = value else {
            panic!()
        };
        let Some(Value::Array(changes)) = value.get("tableChanges") else {
            panic!()
        };
        let Value::Struct(change) = &changes[0] else {
            panic!()
        };
        assert_eq!(change.get("type"), Some(&Value::from("CREATE")));
        assert_eq!(change.get("id"), Some(&Value::from("\"app\".\"t\"")));
        let Some(Value::Struct(table)) = change.get("table") else {
            panic!()
        };
        assert_eq!(
            table.get("primaryKeyColumnNames"),
            Some(&Value::Array(vec![Value::from("id")]))
        );
        let Some(Value::Array(columns)) = table.get("columns") else {
            panic!()
        };
        let Value::Struct(id) = &columns[0] else {
            panic!()
        };
        assert_eq!(id.get("typeName"), Some(&Value::from("BIGINT")));
        assert_eq!(id.get("length"), Some(&Value::Int32(20)));
        assert_eq!(id.get("position"), Some(&Value::Int32(1)));
        assert_eq!(id.get("optional"), Some(&Value::Boolean(false)));
    }
}
