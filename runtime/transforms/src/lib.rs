//! Kafka Connect's built-in single-message transforms and predicates, under their class names
//! (and `$Key`/`$Value` variants), plus Debezium's `ExtractNewRecordState`. Each works on
//! schemaful records (structs with Connect schemas, rewritten consistently) and schemaless ones
//! (maps with string keys, as JsonConverter with `schemas.enable=false` produces).
//!
//! Depends on `sluice-api` alone, like a plugin would.

mod fields;
mod part;
mod predicates;
mod records;
mod unwrap;

use sluice_api::config::ConfigDef;
use sluice_api::transform::{PredicatePlugin, TransformPlugin};

use crate::part::Part;

macro_rules! keyed {
    ($key:ident, $value:ident, $class:literal, $def:path, $ty:path) => {
        pub const $key: TransformPlugin = TransformPlugin {
            class: concat!("org.apache.kafka.connect.transforms.", $class, "$Key"),
            aliases: &[],
            config_def: $def,
            create: |props| <$ty>::create(props, Part::Key),
        };
        pub const $value: TransformPlugin = TransformPlugin {
            class: concat!("org.apache.kafka.connect.transforms.", $class, "$Value"),
            aliases: &[],
            config_def: $def,
            create: |props| <$ty>::create(props, Part::Value),
        };
    };
}

keyed!(
    INSERT_FIELD_KEY,
    INSERT_FIELD_VALUE,
    "InsertField",
    fields::insert_field_def,
    fields::InsertField
);
keyed!(
    REPLACE_FIELD_KEY,
    REPLACE_FIELD_VALUE,
    "ReplaceField",
    fields::replace_field_def,
    fields::ReplaceField
);
keyed!(
    MASK_FIELD_KEY,
    MASK_FIELD_VALUE,
    "MaskField",
    fields::mask_field_def,
    fields::MaskField
);
keyed!(
    EXTRACT_FIELD_KEY,
    EXTRACT_FIELD_VALUE,
    "ExtractField",
    fields::extract_field_def,
    fields::ExtractField
);
keyed!(
    HOIST_FIELD_KEY,
    HOIST_FIELD_VALUE,
    "HoistField",
    fields::hoist_field_def,
    fields::HoistField
);
keyed!(
    FLATTEN_KEY,
    FLATTEN_VALUE,
    "Flatten",
    fields::flatten_def,
    fields::Flatten
);
keyed!(CAST_KEY, CAST_VALUE, "Cast", fields::cast_def, fields::Cast);
keyed!(
    HEADER_FROM_KEY,
    HEADER_FROM_VALUE,
    "HeaderFrom",
    records::header_from_def,
    records::HeaderFrom
);

pub const VALUE_TO_KEY: TransformPlugin = TransformPlugin {
    class: "org.apache.kafka.connect.transforms.ValueToKey",
    aliases: &[],
    config_def: fields::value_to_key_def,
    create: fields::ValueToKey::create,
};

pub const REGEX_ROUTER: TransformPlugin = TransformPlugin {
    class: "org.apache.kafka.connect.transforms.RegexRouter",
    aliases: &[],
    config_def: records::regex_router_def,
    create: records::RegexRouter::create,
};

pub const TIMESTAMP_ROUTER: TransformPlugin = TransformPlugin {
    class: "org.apache.kafka.connect.transforms.TimestampRouter",
    aliases: &[],
    config_def: records::timestamp_router_def,
    create: records::TimestampRouter::create,
};

pub const FILTER: TransformPlugin = TransformPlugin {
    class: "org.apache.kafka.connect.transforms.Filter",
    aliases: &[],
    config_def: ConfigDef::new,
    create: |_| Ok(Box::new(records::Filter)),
};

pub const INSERT_HEADER: TransformPlugin = TransformPlugin {
    class: "org.apache.kafka.connect.transforms.InsertHeader",
    aliases: &[],
    config_def: records::insert_header_def,
    create: records::InsertHeader::create,
};

pub const DROP_HEADERS: TransformPlugin = TransformPlugin {
    class: "org.apache.kafka.connect.transforms.DropHeaders",
    aliases: &[],
    config_def: records::drop_headers_def,
    create: records::DropHeaders::create,
};

pub const EXTRACT_NEW_RECORD_STATE: TransformPlugin = TransformPlugin {
    class: "io.debezium.transforms.ExtractNewRecordState",
    aliases: &["unwrap"],
    config_def: unwrap::extract_new_record_state_def,
    create: unwrap::ExtractNewRecordState::create,
};

pub const TOPIC_NAME_MATCHES: PredicatePlugin = PredicatePlugin {
    class: "org.apache.kafka.connect.transforms.predicates.TopicNameMatches",
    aliases: &[],
    config_def: predicates::topic_name_matches_def,
    create: predicates::TopicNameMatches::create,
};

pub const HAS_HEADER_KEY: PredicatePlugin = PredicatePlugin {
    class: "org.apache.kafka.connect.transforms.predicates.HasHeaderKey",
    aliases: &[],
    config_def: predicates::has_header_key_def,
    create: predicates::HasHeaderKey::create,
};

pub const RECORD_IS_TOMBSTONE: PredicatePlugin = PredicatePlugin {
    class: "org.apache.kafka.connect.transforms.predicates.RecordIsTombstone",
    aliases: &[],
    config_def: ConfigDef::new,
    create: |_| Ok(Box::new(predicates::RecordIsTombstone)),
};

/// Every built-in transform.
pub fn transforms() -> Vec<TransformPlugin> {
    vec![
        INSERT_FIELD_KEY,
        INSERT_FIELD_VALUE,
        REPLACE_FIELD_KEY,
        REPLACE_FIELD_VALUE,
        MASK_FIELD_KEY,
        MASK_FIELD_VALUE,
        VALUE_TO_KEY,
        EXTRACT_FIELD_KEY,
        EXTRACT_FIELD_VALUE,
        HOIST_FIELD_KEY,
        HOIST_FIELD_VALUE,
        FLATTEN_KEY,
        FLATTEN_VALUE,
        CAST_KEY,
        CAST_VALUE,
        REGEX_ROUTER,
        TIMESTAMP_ROUTER,
        FILTER,
        INSERT_HEADER,
        DROP_HEADERS,
        HEADER_FROM_KEY,
        HEADER_FROM_VALUE,
        EXTRACT_NEW_RECORD_STATE,
    ]
}

/// Every built-in predicate.
pub fn predicates() -> Vec<PredicatePlugin> {
    vec![TOPIC_NAME_MATCHES, HAS_HEADER_KEY, RECORD_IS_TOMBSTONE]
}

#[cfg(test)]
mod tests;
