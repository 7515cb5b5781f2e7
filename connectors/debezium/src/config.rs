//! Keys every Debezium connector documents. [`event_keys`] are implemented (they shape the
//! events); [`pattern_prefixes`] are the key families read by [`crate::columns`].

use sluice_api::config::{ConfigDef, ConfigKey, ConfigType, Importance, Validator};

/// The event-shaping keys [`crate::EventOptions`] reads.
pub fn event_keys() -> ConfigDef {
    use ConfigType::*;
    use Importance::*;
    ConfigDef::new()
        .key(ConfigKey::optional("skipped.operations", List, "t", Medium,
            "Operations left out of the stream: c (creates), u (updates), d (deletes), t (truncates), or none. \
             Truncate events have no key, which compacted topics refuse."))
        .key(ConfigKey::optional("extended.headers.enabled", Boolean, "true", Low,
            "Add __debezium.context.connectorLogicalName, .taskId and .connectorName headers to each change event."))
        .key(ConfigKey::optional("tombstones.on.delete", Boolean, "true", Medium,
            "Follow each delete with a tombstone (same key, null value)."))
        .key(ConfigKey::optional("message.key.columns", String, "", Low,
            "The columns making each table's event key instead of its primary key: \
             <table regex>:<column>,<column>;… (e.g. inventory.customers:id,email)."))
        .key(ConfigKey::optional("column.propagate.source.type", List, "", Low,
            "Regular expressions of columns (schema.table.column) whose schemas carry the source type as \
             __debezium.source.column.type/length/scale parameters."))
        .key(ConfigKey::optional("datatype.propagate.source.type", List, "", Low,
            "Regular expressions of database type names whose columns' schemas carry the source type parameters."))
        .key(ConfigKey::optional("binary.handling.mode", String, "bytes", Low,
            "Binary columns as bytes, base64, base64-url-safe or hex strings.")
            .validate_with(Validator::OneOf(vec!["bytes", "base64", "base64-url-safe", "hex"])))
        .key(ConfigKey::optional("schema.name.adjustment.mode", String, "none", Low,
            "Schema names as they are (none), or made valid for Avro: avro replaces invalid characters with _, \
             avro_unicode with _uxxxx.")
            .validate_with(Validator::OneOf(vec!["none", "avro", "avro_unicode"])))
        .key(ConfigKey::optional("field.name.adjustment.mode", String, "none", Low,
            "Field names as they are (none), or made valid for Avro (avro, avro_unicode).")
            .validate_with(Validator::OneOf(vec!["none", "avro", "avro_unicode"])))
        .key(ConfigKey::optional("event.processing.failure.handling.mode", String, "fail", Low,
            "An event that cannot be converted fails the task (fail), is logged and left out (warn), or is left out (skip).")
            .validate_with(Validator::OneOf(vec!["fail", "warn", "skip", "ignore"])))
        .key(ConfigKey::optional("include.unknown.datatypes", Boolean, "false", Low,
            "Emit columns of types sluice has no mapping for (as their text form); false leaves them out."))
}

/// The families of pattern keys (`column.mask.with.<n>.chars`, …): accepted here and read by
/// [`crate::columns::ColumnRules`], which names a malformed one.
pub fn pattern_prefixes(def: ConfigDef) -> ConfigDef {
    def.open_prefix(crate::columns::MASK_WITH)
        .open_prefix(crate::columns::MASK_HASH)
        .open_prefix(crate::columns::TRUNCATE_TO)
}
