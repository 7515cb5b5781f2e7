//! Transforms on whole records: RegexRouter, TimestampRouter, Filter, and the header
//! transforms InsertHeader, DropHeaders and HeaderFrom.

use std::sync::Arc;

use regex::Regex;
use sluice_api::calendar::civil_from_days;
use sluice_api::config::{ConfigDef, ConfigKey, ConfigType, Importance, Props};
use sluice_api::data::{Schema, Value};
use sluice_api::record::{Header, Record};
use sluice_api::transform::Transform;
use sluice_api::{Error, Result};

use crate::part::{Part, SchemaCache, expected, parse, struct_like, struct_of};

/// Java's `Matcher.matches()` semantics: the pattern must cover the whole input.
pub(crate) fn full_match_regex(pattern: &str, key: &str) -> Result<Regex> {
    Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| Error::config(format!("`{key}` is not a valid regular expression: {e}")))
}

/// Java writes `$1x` for group 1 followed by `x`; Rust would read a group named `1x`.
fn java_replacement(replacement: &str) -> String {
    let group = Regex::new(r"\$(\d+)").expect("static regex");
    group.replace_all(replacement, "$${$1}").into_owned()
}

// ---------------------------------------------------------------------------------------------
// RegexRouter

/// `RegexRouter`: when the whole topic matches `regex`, it becomes `replacement`.
pub(crate) fn regex_router_def() -> ConfigDef {
    ConfigDef::new()
        .key(ConfigKey::required(
            "regex",
            ConfigType::String,
            Importance::High,
            "Regular expression matched against the whole topic.",
        ))
        .key(ConfigKey::required(
            "replacement",
            ConfigType::String,
            Importance::High,
            "Replacement topic; `$1` refers to a group.",
        ))
}

pub(crate) struct RegexRouter {
    regex: Regex,
    replacement: String,
}

impl RegexRouter {
    pub(crate) fn create(props: &Props) -> Result<Box<dyn Transform>> {
        let config = parse(regex_router_def(), props)?;
        Ok(Box::new(RegexRouter {
            regex: full_match_regex(&config.string("regex")?, "regex")?,
            replacement: java_replacement(&config.string("replacement")?),
        }))
    }
}

impl Transform for RegexRouter {
    fn apply(&mut self, mut record: Record, out: &mut Vec<Record>) -> Result<()> {
        if self.regex.is_match(&record.topic) {
            record.topic = self
                .regex
                .replace(&record.topic, self.replacement.as_str())
                .into_owned()
                .into();
        }
        out.push(record);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// TimestampRouter

/// `TimestampRouter`: the topic becomes `topic.format` with `${topic}` and `${timestamp}`
/// (the record timestamp in UTC, formatted by `timestamp.format`, a Java `SimpleDateFormat`
/// pattern of `yyyy`, `yy`, `MM`, `dd`, `HH`, `mm`, `ss`, `SSS` and literal text).
pub(crate) fn timestamp_router_def() -> ConfigDef {
    ConfigDef::new()
        .key(ConfigKey::optional(
            "topic.format",
            ConfigType::String,
            "${topic}-${timestamp}",
            Importance::High,
            "Topic pattern with ${topic} and ${timestamp}.",
        ))
        .key(ConfigKey::optional(
            "timestamp.format",
            ConfigType::String,
            "yyyyMMdd",
            Importance::High,
            "SimpleDateFormat pattern for ${timestamp} (UTC).",
        ))
}

pub(crate) struct TimestampRouter {
    topic_format: String,
    timestamp_format: Vec<DatePart>,
}

#[derive(Debug, Clone, PartialEq)]
enum DatePart {
    Year4,
    Year2,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Millis,
    Literal(String),
}

fn parse_date_format(pattern: &str) -> Result<Vec<DatePart>> {
    let mut parts = Vec::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            let end = chars[i + 1..]
                .iter()
                .position(|&c| c == '\'')
                .map(|p| i + 1 + p)
                .ok_or_else(|| {
                    Error::config(format!(
                        "`timestamp.format={pattern}` has an unclosed quote"
                    ))
                })?;
            parts.push(DatePart::Literal(chars[i + 1..end].iter().collect()));
            i = end + 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&x| x == c).count();
        let part = match (c, run) {
            ('y', 2) => DatePart::Year2,
            ('y', _) => DatePart::Year4,
            ('M', _) => DatePart::Month,
            ('d', _) => DatePart::Day,
            ('H', _) => DatePart::Hour,
            ('m', _) => DatePart::Minute,
            ('s', _) => DatePart::Second,
            ('S', _) => DatePart::Millis,
            (c, _) if c.is_ascii_alphabetic() => {
                return Err(Error::config(format!(
                    "`timestamp.format={pattern}`: the letter `{c}` is not supported; use yyyy, yy, MM, dd, HH, mm, ss, SSS"
                )));
            }
            (c, run) => DatePart::Literal(std::iter::repeat_n(c, run).collect()),
        };
        parts.push(part);
        i += run;
    }
    Ok(parts)
}

fn format_timestamp(parts: &[DatePart], millis: i64) -> String {
    let days = millis.div_euclid(86_400_000);
    let in_day = millis.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let mut out = String::new();
    for part in parts {
        match part {
            DatePart::Year4 => out.push_str(&format!("{year:04}")),
            DatePart::Year2 => out.push_str(&format!("{:02}", year.rem_euclid(100))),
            DatePart::Month => out.push_str(&format!("{month:02}")),
            DatePart::Day => out.push_str(&format!("{day:02}")),
            DatePart::Hour => out.push_str(&format!("{:02}", in_day / 3_600_000)),
            DatePart::Minute => out.push_str(&format!("{:02}", in_day / 60_000 % 60)),
            DatePart::Second => out.push_str(&format!("{:02}", in_day / 1000 % 60)),
            DatePart::Millis => out.push_str(&format!("{:03}", in_day % 1000)),
            DatePart::Literal(text) => out.push_str(text),
        }
    }
    out
}

impl TimestampRouter {
    pub(crate) fn create(props: &Props) -> Result<Box<dyn Transform>> {
        let config = parse(timestamp_router_def(), props)?;
        Ok(Box::new(TimestampRouter {
            topic_format: config.string("topic.format")?,
            timestamp_format: parse_date_format(&config.string("timestamp.format")?)?,
        }))
    }
}

impl Transform for TimestampRouter {
    fn apply(&mut self, mut record: Record, out: &mut Vec<Record>) -> Result<()> {
        let millis = record.timestamp_ms.ok_or_else(|| {
            Error::data(format!(
                "TimestampRouter: a record of topic {} has no timestamp",
                record.topic
            ))
        })?;
        record.topic = self
            .topic_format
            .replace("${topic}", &record.topic)
            .replace(
                "${timestamp}",
                &format_timestamp(&self.timestamp_format, millis),
            )
            .into();
        out.push(record);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Filter

/// `Filter`: drops every record it applies to (give it a predicate).
pub(crate) struct Filter;

impl Transform for Filter {
    fn apply(&mut self, _record: Record, _out: &mut Vec<Record>) -> Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Headers

/// `InsertHeader`: adds header `header` with the string `value.literal`.
pub(crate) fn insert_header_def() -> ConfigDef {
    ConfigDef::new()
        .key(ConfigKey::required(
            "header",
            ConfigType::String,
            Importance::High,
            "Header name.",
        ))
        .key(ConfigKey::required(
            "value.literal",
            ConfigType::String,
            Importance::High,
            "Header value.",
        ))
}

pub(crate) struct InsertHeader {
    header: String,
    value: String,
}

impl InsertHeader {
    pub(crate) fn create(props: &Props) -> Result<Box<dyn Transform>> {
        let config = parse(insert_header_def(), props)?;
        Ok(Box::new(InsertHeader {
            header: config.string("header")?,
            value: config.string("value.literal")?,
        }))
    }
}

impl Transform for InsertHeader {
    fn apply(&mut self, mut record: Record, out: &mut Vec<Record>) -> Result<()> {
        record.headers.push(Header {
            key: self.header.as_str().into(),
            value: Value::from(self.value.as_str()),
            schema: Some(Arc::new(Schema::string())),
        });
        out.push(record);
        Ok(())
    }
}

/// `DropHeaders`: removes every header named in `headers`.
pub(crate) fn drop_headers_def() -> ConfigDef {
    ConfigDef::new().key(ConfigKey::required(
        "headers",
        ConfigType::List,
        Importance::High,
        "Header names to remove.",
    ))
}

pub(crate) struct DropHeaders {
    headers: Vec<String>,
}

impl DropHeaders {
    pub(crate) fn create(props: &Props) -> Result<Box<dyn Transform>> {
        let config = parse(drop_headers_def(), props)?;
        Ok(Box::new(DropHeaders {
            headers: config.list("headers"),
        }))
    }
}

impl Transform for DropHeaders {
    fn apply(&mut self, mut record: Record, out: &mut Vec<Record>) -> Result<()> {
        record
            .headers
            .retain(|h| !self.headers.iter().any(|name| h.key == *name));
        out.push(record);
        Ok(())
    }
}

/// `HeaderFrom$Key` / `$Value`: copies (or moves) `fields` into `headers` (same order).
pub(crate) fn header_from_def() -> ConfigDef {
    ConfigDef::new()
        .key(ConfigKey::required(
            "fields",
            ConfigType::List,
            Importance::High,
            "Fields to copy.",
        ))
        .key(ConfigKey::required(
            "headers",
            ConfigType::List,
            Importance::High,
            "Header names, one per field.",
        ))
        .key(ConfigKey::required(
            "operation",
            ConfigType::String,
            Importance::High,
            "copy or move.",
        ))
}

pub(crate) struct HeaderFrom {
    part: Part,
    pairs: Vec<(String, String)>,
    moves: bool,
    cache: SchemaCache,
}

impl HeaderFrom {
    pub(crate) fn create(props: &Props, part: Part) -> Result<Box<dyn Transform>> {
        let config = parse(header_from_def(), props)?;
        let fields = config.list("fields");
        let headers = config.list("headers");
        if fields.len() != headers.len() {
            return Err(Error::config(format!(
                "HeaderFrom: `fields` has {} names and `headers` {}; give one header per field",
                fields.len(),
                headers.len()
            )));
        }
        let moves = match config.string("operation")?.as_str() {
            "copy" => false,
            "move" => true,
            other => {
                return Err(Error::config(format!(
                    "HeaderFrom: `operation={other}` must be copy or move"
                )));
            }
        };
        Ok(Box::new(HeaderFrom {
            part,
            pairs: fields.into_iter().zip(headers).collect(),
            moves,
            cache: SchemaCache::default(),
        }))
    }

    fn is_moved(&self, field: &str) -> bool {
        self.moves && self.pairs.iter().any(|(f, _)| f == field)
    }
}

impl Transform for HeaderFrom {
    fn apply(&mut self, mut record: Record, out: &mut Vec<Record>) -> Result<()> {
        let (value, schema) = self.part.take(&mut record);
        let (value, schema) = match (value, schema) {
            (Value::Null, schema) => (Value::Null, schema),
            (Value::Struct(s), Some(schema)) => {
                for (field, header) in &self.pairs {
                    let index = schema.field_index(field).ok_or_else(|| {
                        Error::data(format!(
                            "HeaderFrom: the {} has no field `{field}`",
                            self.part.name()
                        ))
                    })?;
                    record.headers.push(Header {
                        key: header.as_str().into(),
                        value: s.values[index].clone(),
                        schema: Some(Arc::clone(&schema.fields[index].schema)),
                    });
                }
                if self.moves {
                    let new_schema = self.cache.get_or(&schema, || {
                        let fields = schema
                            .fields
                            .iter()
                            .filter(|f| !self.is_moved(&f.name))
                            .cloned()
                            .collect();
                        Ok(struct_like(&schema, fields))
                    })?;
                    let values = schema
                        .fields
                        .iter()
                        .zip(s.values)
                        .filter(|(f, _)| !self.is_moved(&f.name))
                        .map(|(_, v)| v)
                        .collect();
                    (struct_of(Arc::clone(&new_schema), values), Some(new_schema))
                } else {
                    (Value::Struct(s), Some(schema))
                }
            }
            (Value::Map(entries), None) => {
                for (field, header) in &self.pairs {
                    let value = crate::part::map_get(&entries, field)
                        .cloned()
                        .unwrap_or_default();
                    record.headers.push(Header {
                        key: header.as_str().into(),
                        value,
                        schema: None,
                    });
                }
                let entries = entries
                    .into_iter()
                    .filter(|(k, _)| k.as_str().is_none_or(|k| !self.is_moved(k)))
                    .collect();
                (Value::Map(entries), None)
            }
            (other, _) => {
                return Err(expected(
                    "HeaderFrom",
                    self.part,
                    "a struct or a map",
                    &other,
                ));
            }
        };
        self.part.put(&mut record, value, schema);
        out.push(record);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_format_like_simple_date_format_in_utc() {
        let parts = parse_date_format("yyyyMMdd").unwrap();
        // 2024-02-29T23:59:58.123Z
        assert_eq!(format_timestamp(&parts, 1_709_251_198_123), "20240229");
        let parts = parse_date_format("yyyy-MM-dd'T'HH:mm:ss.SSS").unwrap();
        assert_eq!(
            format_timestamp(&parts, 1_709_251_198_123),
            "2024-02-29T23:59:58.123"
        );
        assert!(parse_date_format("EEE").is_err());
    }
}
