//! Settings of the Elasticsearch sink, with the key names and defaults of Confluent's
//! `ElasticsearchSinkConnector`; the few sluice additions say so in their documentation.

use std::time::Duration;

use sluice_api::config::{
    Config, ConfigDef, ConfigKey, ConfigType, FieldError, Importance, Props, Validator,
};
use sluice_api::{Error, Result, Secret};

const GROUP_CONNECTION: &str = "Connector";
const GROUP_DATA: &str = "Data Conversion";

fn int_key(name: &str, default: &str, min: i64, documentation: &str) -> ConfigKey {
    ConfigKey::optional(
        name,
        ConfigType::Int,
        default,
        Importance::Low,
        documentation,
    )
    .validate_with(Validator::Range {
        min,
        max: i64::from(i32::MAX),
    })
}

/// Every key the connector understands.
pub(crate) fn config_def() -> ConfigDef {
    ConfigDef::new()
        .key(
            ConfigKey::required(
                "connection.url",
                ConfigType::List,
                Importance::High,
                "Comma-separated Elasticsearch or OpenSearch URLs, e.g. \
                 `http://es1:9200,http://es2:9200`. Requests go to the first that answers; a \
                 node that cannot be reached is skipped until the others fail too.",
            )
            .validate_with(Validator::NonEmpty)
            .in_group(GROUP_CONNECTION),
        )
        .key(
            ConfigKey::optional(
                "connection.username",
                ConfigType::String,
                "",
                Importance::Medium,
                "User for HTTP basic authentication; empty sends no credentials.",
            )
            .in_group(GROUP_CONNECTION),
        )
        .key(
            ConfigKey::optional(
                "connection.password",
                ConfigType::Password,
                "",
                Importance::Medium,
                "Password for HTTP basic authentication.",
            )
            .in_group(GROUP_CONNECTION),
        )
        .key(
            int_key(
                "connection.timeout.ms",
                "1000",
                1,
                "How long to wait for a TCP connection to a node.",
            )
            .in_group(GROUP_CONNECTION),
        )
        .key(
            int_key(
                "read.timeout.ms",
                "3000",
                1,
                "How long to wait for a node's answer to one request.",
            )
            .in_group(GROUP_CONNECTION),
        )
        .key(
            ConfigKey::optional(
                "elastic.https.ssl.ca.location",
                ConfigType::String,
                "",
                Importance::Medium,
                "(sluice) A PEM file of certificate authorities trusted for `https://` URLs, in \
                 addition to the usual public roots; for clusters with their own CA. Replaces \
                 Confluent's JKS `elastic.https.ssl.truststore.location`.",
            )
            .in_group(GROUP_CONNECTION),
        )
        .key(
            ConfigKey::optional(
                "batch.size",
                ConfigType::Int,
                "2000",
                Importance::Medium,
                "The most records sent in one `_bulk` request.",
            )
            .validate_with(Validator::Range {
                min: 1,
                max: 1_000_000,
            })
            .in_group(GROUP_CONNECTION),
        )
        .key(
            ConfigKey::optional(
                "bulk.size.bytes",
                ConfigType::Long,
                "5242880",
                Importance::Low,
                "The largest `_bulk` request body; a batch is sent once it would grow past this.",
            )
            .validate_with(Validator::Range {
                min: 1,
                max: i64::MAX,
            })
            .in_group(GROUP_CONNECTION),
        )
        .key(
            int_key(
                "max.in.flight.requests",
                "5",
                1,
                "How many `_bulk` requests may be outstanding at once. Writes to one document \
                 are never in two requests at the same time, so they apply in record order.",
            )
            .in_group(GROUP_CONNECTION),
        )
        .key(
            int_key(
                "max.buffered.records",
                "20000",
                1,
                "How many records may wait unsent before `put` waits for requests to finish.",
            )
            .in_group(GROUP_CONNECTION),
        )
        .key(
            int_key(
                "linger.ms",
                "1",
                0,
                "How long a partly filled batch may wait for more records before it is sent.",
            )
            .in_group(GROUP_CONNECTION),
        )
        .key(
            int_key(
                "flush.timeout.ms",
                "180000",
                1,
                "How long a flush may wait for outstanding requests; past it the task fails \
                 (and its records are delivered again after restart).",
            )
            .in_group(GROUP_CONNECTION),
        )
        .key(
            int_key(
                "max.retries",
                "5",
                0,
                "How many times a request or item is retried after a 429, a 5xx or a \
                 connection error.",
            )
            .in_group(GROUP_CONNECTION),
        )
        .key(
            int_key(
                "retry.backoff.ms",
                "100",
                0,
                "The wait before the first retry; it doubles with every attempt (with jitter).",
            )
            .in_group(GROUP_CONNECTION),
        )
        .key(
            ConfigKey::optional(
                "key.ignore",
                ConfigType::Boolean,
                "false",
                Importance::High,
                "`false`: the record key is the document id (primitive keys as text, struct and \
                 map keys as compact JSON with fields in schema order). `true`: the id is \
                 `topic+partition+offset`.",
            )
            .in_group(GROUP_DATA),
        )
        .key(
            ConfigKey::optional(
                "topic.key.ignore",
                ConfigType::List,
                "",
                Importance::Low,
                "Topics for which `key.ignore=true` applies whatever `key.ignore` says.",
            )
            .in_group(GROUP_DATA),
        )
        .key(
            ConfigKey::optional(
                "schema.ignore",
                ConfigType::Boolean,
                "false",
                Importance::Low,
                "Accepted for compatibility: sluice never creates mappings from record \
                 schemas, so indices use the cluster's dynamic mapping or their templates.",
            )
            .in_group(GROUP_DATA),
        )
        .key(
            ConfigKey::optional(
                "write.method",
                ConfigType::String,
                "insert",
                Importance::Low,
                "`insert` replaces the whole document (`index`); `upsert` merges the record's \
                 fields into it (`update` with `doc_as_upsert`).",
            )
            .validate_with(Validator::OneOf(vec!["insert", "upsert"]))
            .in_group(GROUP_DATA),
        )
        .key(
            ConfigKey::optional(
                "behavior.on.null.values",
                ConfigType::String,
                "fail",
                Importance::Low,
                "A record with a null value (a tombstone): `delete` deletes the document with \
                 that id (CDC deletes), `ignore` skips it, `fail` fails the task.",
            )
            .validate_with(Validator::OneOf(vec!["ignore", "delete", "fail"]))
            .in_group(GROUP_DATA),
        )
        .key(
            ConfigKey::optional(
                "behavior.on.malformed.documents",
                ConfigType::String,
                "fail",
                Importance::Low,
                "A document Elasticsearch rejects as malformed (mapping conflict, not an \
                 object…): `ignore` skips it, `warn` skips it with a warning, `fail` fails the \
                 task. Skipped documents also go to the dead letter queue when one is set.",
            )
            .validate_with(Validator::OneOf(vec!["ignore", "warn", "fail"]))
            .in_group(GROUP_DATA),
        )
        .key(
            ConfigKey::optional(
                "external.version.header",
                ConfigType::String,
                "",
                Importance::Low,
                "A record header holding a whole number used as the document's external \
                 version: Elasticsearch then refuses a write older than the one it has, so a \
                 replayed stream never overwrites newer data. Needs `write.method=insert`.",
            )
            .in_group(GROUP_DATA),
        )
        .key(
            ConfigKey::optional(
                "external.version.from.kafka.offset",
                ConfigType::Boolean,
                "false",
                Importance::Low,
                "(sluice) Use the record's Kafka offset as the external version. A key always \
                 maps to one partition, so replaying a topic (a new consumer group, an offset \
                 reset, a crash) never moves a document back. Only meaningful on the Kafka \
                 transport; needs `write.method=insert`.",
            )
            .in_group(GROUP_DATA),
        )
        .key(
            ConfigKey::optional(
                "auto.create.indices.at.start",
                ConfigType::Boolean,
                "true",
                Importance::Low,
                "Create the index of every configured topic at start when it is missing. \
                 With `false` a missing index fails the task at start with its name.",
            )
            .in_group(GROUP_DATA),
        )
}

/// How a tombstone is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NullValues {
    Ignore,
    Delete,
    Fail,
}

/// What happens to a document Elasticsearch rejects as malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MalformedDocuments {
    Ignore,
    Warn,
    Fail,
}

/// Where a document's external version comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Versioning {
    /// Elasticsearch's own internal versions.
    Internal,
    /// The named header's whole-number value.
    Header(String),
    /// The record's Kafka offset.
    KafkaOffset,
}

/// Parsed settings of one sink task. `{:?}` is safe to log: the password prints as `[hidden]`.
#[derive(Debug, Clone)]
pub struct ElasticsearchSinkConfig {
    pub urls: Vec<String>,
    pub username: Option<String>,
    /// `connection.password`.
    pub password: Secret,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub ca_file: Option<String>,
    pub batch_size: usize,
    pub bulk_size_bytes: usize,
    pub max_in_flight: usize,
    pub max_buffered_records: usize,
    pub linger: Duration,
    pub flush_timeout: Duration,
    pub max_retries: u32,
    pub retry_backoff: Duration,
    pub key_ignore: bool,
    pub topic_key_ignore: Vec<String>,
    pub upsert: bool,
    pub null_values: NullValues,
    pub malformed: MalformedDocuments,
    pub versioning: Versioning,
    pub create_indices: bool,
    /// The connector's `topics` (empty with `topics.regex`): indices created at start.
    pub topics: Vec<String>,
}

impl ElasticsearchSinkConfig {
    /// Reads the connector's own keys (the worker checked the common ones).
    pub fn from_props(props: &Props) -> Result<ElasticsearchSinkConfig> {
        let config = Config::parse_own(config_def(), props)?;
        let errors = cross_field_errors(&config);
        if !errors.is_empty() {
            return Err(Error::config(
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            ));
        }
        let ms = |name: &str| -> Result<Duration> {
            Ok(Duration::from_millis(
                u64::try_from(config.i64(name)?).unwrap_or(0),
            ))
        };
        let count = |name: &str| -> Result<usize> {
            Ok(usize::try_from(config.i64(name)?).unwrap_or(1).max(1))
        };
        let username = config.string("connection.username")?;
        let ca_file = config.string("elastic.https.ssl.ca.location")?;
        let header = config.string("external.version.header")?;
        let versioning = if config.bool("external.version.from.kafka.offset")? {
            Versioning::KafkaOffset
        } else if header.trim().is_empty() {
            Versioning::Internal
        } else {
            Versioning::Header(header.trim().to_owned())
        };
        Ok(ElasticsearchSinkConfig {
            urls: config
                .list("connection.url")
                .into_iter()
                .map(|u| u.trim_end_matches('/').to_owned())
                .collect(),
            username: (!username.is_empty()).then_some(username),
            password: config.secret("connection.password")?,
            connect_timeout: ms("connection.timeout.ms")?,
            read_timeout: ms("read.timeout.ms")?,
            ca_file: (!ca_file.trim().is_empty()).then(|| ca_file.trim().to_owned()),
            batch_size: count("batch.size")?,
            bulk_size_bytes: count("bulk.size.bytes")?,
            max_in_flight: count("max.in.flight.requests")?,
            max_buffered_records: count("max.buffered.records")?,
            linger: ms("linger.ms")?,
            flush_timeout: ms("flush.timeout.ms")?,
            max_retries: u32::try_from(config.i64("max.retries")?).unwrap_or(0),
            retry_backoff: ms("retry.backoff.ms")?,
            key_ignore: config.bool("key.ignore")?,
            topic_key_ignore: config.list("topic.key.ignore"),
            upsert: config
                .string("write.method")?
                .eq_ignore_ascii_case("upsert"),
            null_values: match config
                .string("behavior.on.null.values")?
                .to_ascii_lowercase()
                .as_str()
            {
                "ignore" => NullValues::Ignore,
                "delete" => NullValues::Delete,
                _ => NullValues::Fail,
            },
            malformed: match config
                .string("behavior.on.malformed.documents")?
                .to_ascii_lowercase()
                .as_str()
            {
                "ignore" => MalformedDocuments::Ignore,
                "warn" => MalformedDocuments::Warn,
                _ => MalformedDocuments::Fail,
            },
            versioning,
            create_indices: config.bool("auto.create.indices.at.start")?,
            topics: props
                .get("topics")
                .map(|t| sluice_api::config::split_list(t))
                .unwrap_or_default(),
        })
    }

    /// True when documents of `topic` are keyed by `topic+partition+offset`.
    pub fn ignores_key(&self, topic: &str) -> bool {
        self.key_ignore || self.topic_key_ignore.iter().any(|t| t == topic)
    }
}

/// URLs that are not `http(s)://host[:port]`, and external versions combined with upserts
/// (Elasticsearch's update API takes no external version).
fn cross_field_errors(config: &Config) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for url in config.list("connection.url") {
        if let Err(problem) = check_url(&url) {
            errors.push(FieldError::new("connection.url", problem));
        }
    }
    let upsert = config
        .get("write.method")
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("upsert"));
    let versioned = config
        .get("external.version.header")
        .is_some_and(|h| !h.trim().is_empty())
        || config
            .bool("external.version.from.kafka.offset")
            .unwrap_or(false);
    if upsert && versioned {
        errors.push(FieldError::new(
            "write.method",
            "external versions need `write.method=insert`: Elasticsearch's update API \
             (used for upserts) does not accept them; drop `external.version.*` or use insert",
        ));
    }
    errors
}

fn check_url(url: &str) -> std::result::Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| {
        format!("`{url}` is not a URL ({e}); write it like `http://localhost:9200`")
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!(
            "`{url}` must be an http:// or https:// URL with a host, like `http://localhost:9200`"
        ));
    }
    Ok(())
}

/// The connector's checks across keys, for `ConnectorPlugin::validate`.
pub(crate) fn validate(props: &Props) -> Vec<FieldError> {
    match Config::parse_own(config_def(), props) {
        Ok(config) => cross_field_errors(&config),
        Err(_) => Vec::new(), // the per-key checks report those
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_api::config::props;

    #[test]
    fn defaults_follow_confluent() {
        let config =
            ElasticsearchSinkConfig::from_props(&props(&[("connection.url", "http://es:9200/")]))
                .unwrap();
        assert_eq!(config.urls, ["http://es:9200"]);
        assert_eq!(config.batch_size, 2000);
        assert_eq!(config.bulk_size_bytes, 5 * 1024 * 1024);
        assert_eq!(config.max_in_flight, 5);
        assert_eq!(config.max_retries, 5);
        assert_eq!(config.retry_backoff, Duration::from_millis(100));
        assert_eq!(config.null_values, NullValues::Fail);
        assert_eq!(config.malformed, MalformedDocuments::Fail);
        assert!(!config.upsert && !config.key_ignore && config.create_indices);
        assert_eq!(config.versioning, Versioning::Internal);
    }

    #[test]
    fn debug_of_a_parsed_config_hides_the_password() {
        let config = ElasticsearchSinkConfig::from_props(&props(&[
            ("connection.url", "http://es:9200"),
            ("connection.username", "elastic"),
            ("connection.password", "es-Pa55word"),
        ]))
        .unwrap();
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("es-Pa55word") && shown.contains("elastic"),
            "{shown}"
        );
        assert_eq!(config.password.expose(), "es-Pa55word");
        let client = format!("{:?}", crate::EsClient::new(&config).unwrap());
        assert!(
            !client.contains("es-Pa55word") && client.contains("elastic"),
            "{client}"
        );
    }

    #[test]
    fn bad_urls_and_versioned_upserts_are_named_with_the_fix() {
        let errors = validate(&props(&[
            ("connection.url", "localhost:9200,ftp://x"),
            ("write.method", "upsert"),
            ("external.version.header", "lsn"),
        ]));
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 3, "{text:?}");
        assert!(text[0].contains("localhost:9200") && text[0].contains("http://localhost:9200"));
        assert!(text[1].contains("ftp://x"));
        assert!(text[2].contains("write.method=insert"));
    }
}
