//! Kafka Connect's predicates: TopicNameMatches, HasHeaderKey, RecordIsTombstone.

use regex::Regex;
use sluice_api::Result;
use sluice_api::config::{ConfigDef, ConfigKey, ConfigType, Importance, Props};
use sluice_api::record::Record;
use sluice_api::transform::Predicate;

use crate::part::parse;
use crate::records::full_match_regex;

/// `TopicNameMatches`: the whole topic matches `pattern`.
pub(crate) fn topic_name_matches_def() -> ConfigDef {
    ConfigDef::new().key(ConfigKey::required(
        "pattern",
        ConfigType::String,
        Importance::Medium,
        "Regular expression matched against the whole topic.",
    ))
}

pub(crate) struct TopicNameMatches(Regex);

impl TopicNameMatches {
    pub(crate) fn create(props: &Props) -> Result<Box<dyn Predicate>> {
        let config = parse(topic_name_matches_def(), props)?;
        Ok(Box::new(TopicNameMatches(full_match_regex(
            &config.string("pattern")?,
            "pattern",
        )?)))
    }
}

impl Predicate for TopicNameMatches {
    fn test(&self, record: &Record) -> bool {
        self.0.is_match(&record.topic)
    }
}

/// `HasHeaderKey`: the record has at least one header named `name`.
pub(crate) fn has_header_key_def() -> ConfigDef {
    ConfigDef::new().key(ConfigKey::required(
        "name",
        ConfigType::String,
        Importance::Medium,
        "Header name.",
    ))
}

pub(crate) struct HasHeaderKey(String);

impl HasHeaderKey {
    pub(crate) fn create(props: &Props) -> Result<Box<dyn Predicate>> {
        let config = parse(has_header_key_def(), props)?;
        Ok(Box::new(HasHeaderKey(config.string("name")?)))
    }
}

impl Predicate for HasHeaderKey {
    fn test(&self, record: &Record) -> bool {
        record.headers.iter().any(|h| h.key == self.0)
    }
}

/// `RecordIsTombstone`: the value is null.
pub(crate) struct RecordIsTombstone;

impl Predicate for RecordIsTombstone {
    fn test(&self, record: &Record) -> bool {
        record.value.is_null()
    }
}
