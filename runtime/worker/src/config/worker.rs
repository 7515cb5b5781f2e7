//! The worker's own settings (`worker.properties`), with Kafka Connect's names and defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sluice_api::config::{Config, ConfigDef, ConfigKey, ConfigType, Importance, Props, Validator};
use sluice_api::{Error, Result};

use super::Choice;
use super::rest_security::Scheme;
use crate::rest::RestLimits;

pub use sluice_api::convert::{CONVERTERS, resolve_converter};

/// The worker config definition.
pub fn worker_config_def() -> ConfigDef {
    use ConfigType::*;
    use Importance::*;
    super::rest_security::rest_security_keys(ConfigDef::new())
        .key(ConfigKey::optional("bootstrap.servers", List, "", High,
            "Kafka brokers. Empty runs the embedded direct pipeline (sources feed sinks in-process)."))
        .key(ConfigKey::optional("key.converter", Class, CONVERTERS[0], High,
            "Converter for record keys on the Kafka transport."))
        .key(ConfigKey::optional("value.converter", Class, CONVERTERS[0], High,
            "Converter for record values on the Kafka transport."))
        .key(ConfigKey::optional("header.converter", Class, "org.apache.kafka.connect.storage.SimpleHeaderConverter", Low,
            "Converter for record headers on the Kafka transport."))
        .key(ConfigKey::optional("offset.storage.file.filename", String, "", High,
            "File where a standalone worker keeps committed source offsets (written atomically)."))
        .key(ConfigKey::optional("offset.flush.interval.ms", Long, "60000", Low,
            "How often sinks are flushed and source offsets committed.")
            .validate_with(Validator::Range { min: 1, max: i64::MAX }))
        .key(ConfigKey::optional("offset.flush.timeout.ms", Long, "5000", Low,
            "How long an offset commit may take before it is abandoned and retried later."))
        .key(ConfigKey::optional("task.shutdown.graceful.timeout.ms", Long, "5000", Low,
            "How long stopping tasks may take at shutdown (flush and commit included)."))
        .key(ConfigKey::optional("listeners", List, "", High,
            "REST listeners, e.g. `http://127.0.0.1:8083` or `https://0.0.0.0:8443` (see listeners.https.*). Default: 127.0.0.1 on `rest.port`. \
             An empty host (`http://:8083`) binds 127.0.0.1; say `0.0.0.0` to listen everywhere."))
        .key(ConfigKey::optional("rest.port", Int, "8083", Low,
            "REST port when `listeners` is not set (deprecated in Kafka Connect, still honoured)."))
        .key(ConfigKey::optional("rest.host.name", String, "", Low,
            "REST bind host when `listeners` is not set."))
        .key(ConfigKey::optional("rest.advertised.host.name", String, "", Low,
            "Host name other workers use to reach this one (worker_id in status)."))
        .key(ConfigKey::optional("rest.advertised.port", Int, "0", Low,
            "Port other workers use to reach this one."))
        .key(ConfigKey::optional("rest.idle.timeout.ms", Long, "30000", Low,
            "How long a REST connection may wait for a request's headers (an idle keep-alive \
             connection included) before it is closed, and for its body before it is answered \
             408.")
            .validate_with(Validator::Range { min: 1, max: i64::MAX }))
        .key(ConfigKey::optional("rest.max.connections", Int, "256", Low,
            "Most REST connections open at once; more wait until one closes. Never more than \
             half the process's open-file limit, so the offset store keeps descriptors.")
            .validate_with(Validator::Range { min: 1, max: 1_000_000 }))
        .key(ConfigKey::optional("plugin.path", List, "", Low,
            "Accepted for compatibility and ignored: sluice's plugins are built in (WASM \
             transforms are configured per connector)."))
        .key(ConfigKey::optional("topic.tracking.enable", Boolean, "true", Low,
            "Track the topics each connector uses (`GET /connectors/{c}/topics`, KIP-558)."))
        .key(ConfigKey::optional("topic.tracking.allow.reset", Boolean, "true", Low,
            "Allow `PUT /connectors/{c}/topics/reset`."))
        .key(ConfigKey::optional("metrics.enabled", Boolean, "true", Low,
            "sluice's: `false` makes tasks count nothing, so `GET /metrics` serves only the \
             worker's start-up counters and statuses. For measuring what the metrics cost \
             (the file_pipeline benchmark runs both ways)."))
        .key(ConfigKey::optional("direct.unrouted.records", String, "wait", Medium,
            "Embedded pipeline only: what a source does with a record whose topic no sink \
             subscribes to. `wait` holds the source (nothing is lost) until a sink subscribes; \
             `drop` discards the record and moves on.")
            .validate_with(UnroutedPolicy::validator()))
        .key(ConfigKey::optional("direct.buffer.batches", Int, "8", Low,
            "Embedded pipeline only: batches buffered per sink task before sources are held \
             back (bounds memory).")
            .validate_with(Validator::Range { min: 1, max: 1_000_000 }))
        .key(ConfigKey::optional("direct.buffer.bytes", Long, "33554432", Low,
            "Embedded pipeline only: bytes of records buffered per sink task before sources \
             are held back (32 MiB, as a Kafka producer's `buffer.memory`). A single batch \
             larger than this still goes through, alone.")
            .validate_with(Validator::Range { min: 1, max: u32::MAX as i64 }))
        .key(ConfigKey::optional("group.id", String, "", Low, "Distributed mode: worker group."))
        .key(ConfigKey::optional("offset.storage.topic", String, "", Low, "Offset topic (Kafka transport)."))
        .key(ConfigKey::optional("config.storage.topic", String, "", Low, "Config topic (Kafka transport)."))
        .key(ConfigKey::optional("status.storage.topic", String, "", Low, "Status topic (Kafka transport)."))
        .key(ConfigKey::optional("offset.storage.replication.factor", Int, "-1", Low, "Offset topic replication factor."))
        .key(ConfigKey::optional("config.storage.replication.factor", Int, "-1", Low, "Config topic replication factor."))
        .key(ConfigKey::optional("status.storage.replication.factor", Int, "-1", Low, "Status topic replication factor."))
        .key(ConfigKey::optional("offset.storage.partitions", Int, "25", Low, "Offset topic partitions."))
        .key(ConfigKey::optional("status.storage.partitions", Int, "5", Low, "Status topic partitions."))
        .key(ConfigKey::optional("security.protocol", String, "PLAINTEXT", Low, "Kafka client security protocol."))
        .key(ConfigKey::optional("client.id", String, "", Low, "Kafka client id."))
        .key(ConfigKey::optional("config.providers", List, "", Medium,
            "Config providers (KIP-297) for `${name:path:key}` placeholders in worker and connector configs; each \
             with config.providers.<name>.class (Kafka's FileConfigProvider, EnvVarConfigProvider, \
             DirectoryConfigProvider) and config.providers.<name>.param.* (allowed.paths, allowlist.pattern)."))
        .open_prefix("config.providers.")
        .open_prefix("key.converter.")
        .open_prefix("value.converter.")
        .open_prefix("header.converter.")
        .open_prefix("producer.")
        .open_prefix("consumer.")
        .open_prefix("admin.")
        .open_prefix("ssl.")
        .open_prefix("sasl.")
}

/// What a source does with a record no sink subscribes to, in the embedded pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnroutedPolicy {
    /// Hold the source until a sink subscribes (nothing is lost).
    Wait,
    /// Discard the record and go on.
    Drop,
}

impl Choice for UnroutedPolicy {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("wait", UnroutedPolicy::Wait),
        ("drop", UnroutedPolicy::Drop),
    ];
}

/// The parsed worker settings.
#[derive(Clone)]
pub struct WorkerConfig {
    pub props: Props,
    /// Kafka brokers; empty means the embedded direct pipeline.
    pub bootstrap_servers: Vec<String>,
    pub offset_file: Option<PathBuf>,
    pub flush_interval: Duration,
    pub shutdown_timeout: Duration,
    pub rest_addr: SocketAddr,
    pub rest_limits: RestLimits,
    /// https, authentication and CORS for the REST API.
    pub rest_security: super::rest_security::RestSecurity,
    /// `host:port` shown as `worker_id` in statuses.
    pub worker_id: String,
    pub unrouted: UnroutedPolicy,
    pub buffer_batches: usize,
    pub buffer_bytes: u32,
    /// `metrics.enabled`: whether tasks count their figures.
    pub metrics_enabled: bool,
    /// `topic.tracking.enable`, `topic.tracking.allow.reset`.
    pub topic_tracking: (bool, bool),
    /// The config providers (`config.providers`), for connector configs' placeholders.
    pub providers: std::sync::Arc<super::providers::ConfigProviders>,
}

/// Shows the settings with secret-looking values (`sasl.jaas.config`, `ssl.key.password`, …)
/// hidden.
impl std::fmt::Debug for WorkerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerConfig")
            .field("props", &super::shown(&self.props))
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("rest_addr", &self.rest_addr)
            .field("worker_id", &self.worker_id)
            .finish_non_exhaustive()
    }
}

impl WorkerConfig {
    /// Validates the worker settings; the error lists every bad key with its fix.
    pub fn parse(props: Props) -> Result<WorkerConfig> {
        WorkerConfig::parse_with(&worker_config_def(), props)
    }

    /// Validates against `def`, a definition that extends [`worker_config_def`] (the
    /// distributed worker's).
    pub fn parse_with(def: &ConfigDef, props: Props) -> Result<WorkerConfig> {
        // The worker's own placeholders are filled in before anything reads its settings.
        let providers = super::providers::ConfigProviders::from_worker(&props)?;
        let props = providers.resolve(&props)?;
        let errors = def.validate(&props);
        if !errors.is_empty() {
            let lines: Vec<String> = errors
                .iter()
                .map(|e| {
                    if def.accepts(&e.field) {
                        e.to_string()
                    } else {
                        format!(
                            "{}; Kafka client settings belong under `producer.`, `consumer.` or \
                             `admin.`",
                            e
                        )
                    }
                })
                .collect();
            return Err(Error::config(format!(
                "invalid worker config: {}",
                lines.join("; ")
            )));
        }
        let config = Config::parse(def.clone(), props)?;
        for key in ["key.converter", "value.converter"] {
            let class = config.string(key)?;
            if resolve_converter(&class).is_none() {
                return Err(Error::config(format!(
                    "`{key}={class}` is not a converter sluice has; use one of {}",
                    CONVERTERS.join(", ")
                )));
            }
        }
        let (rest_addr, scheme) = rest_address(&config)?;
        let rest_security = super::rest_security::RestSecurity::parse(&config, scheme)?;
        let advertised_host = config.string("rest.advertised.host.name")?;
        let advertised_port = config.i64("rest.advertised.port")?;
        let worker_id = format!(
            "{}:{}",
            if advertised_host.is_empty() {
                rest_addr.ip().to_string()
            } else {
                advertised_host
            },
            if advertised_port > 0 {
                advertised_port
            } else {
                i64::from(rest_addr.port())
            }
        );
        let offset_file = config.string("offset.storage.file.filename")?;
        Ok(WorkerConfig {
            bootstrap_servers: config.list("bootstrap.servers"),
            offset_file: (!offset_file.trim().is_empty()).then(|| PathBuf::from(offset_file)),
            flush_interval: millis(&config, "offset.flush.interval.ms")?,
            shutdown_timeout: millis(&config, "task.shutdown.graceful.timeout.ms")?,
            rest_addr,
            rest_limits: RestLimits {
                idle_timeout: millis(&config, "rest.idle.timeout.ms")?,
                max_connections: usize::try_from(config.i64("rest.max.connections")?)
                    .unwrap_or(256),
            },
            rest_security,
            worker_id,
            unrouted: UnroutedPolicy::of(
                config.props(),
                "direct.unrouted.records",
                UnroutedPolicy::Wait,
            ),
            buffer_batches: usize::try_from(config.i64("direct.buffer.batches")?).unwrap_or(8),
            buffer_bytes: u32::try_from(config.i64("direct.buffer.bytes")?).unwrap_or(u32::MAX),
            metrics_enabled: config.bool("metrics.enabled")?,
            topic_tracking: (
                config.bool("topic.tracking.enable")?,
                config.bool("topic.tracking.allow.reset")?,
            ),
            props: config.props().clone(),
            providers: std::sync::Arc::new(providers),
        })
    }

    /// True when the worker runs the embedded direct pipeline (no Kafka).
    pub fn is_embedded(&self) -> bool {
        self.bootstrap_servers.is_empty()
    }
}

/// A millisecond key as a duration; a negative value is an error naming the key.
pub(super) fn millis(config: &Config, key: &str) -> Result<Duration> {
    let ms = config.i64(key)?;
    u64::try_from(ms)
        .map(Duration::from_millis)
        .map_err(|_| Error::config(format!("`{key}` must not be negative, got {ms}")))
}

fn rest_address(config: &Config) -> Result<(SocketAddr, Scheme)> {
    let listeners = config.list("listeners");
    if let Some(first) = listeners.first() {
        // Kafka Connect's own file writes `HTTP://:8083`: the scheme is case-insensitive.
        let lower = first.to_ascii_lowercase();
        let (rest, scheme) = if lower.starts_with("http://") {
            (&first["http://".len()..], Scheme::Http)
        } else if lower.starts_with("https://") {
            (&first["https://".len()..], Scheme::Https)
        } else {
            return Err(Error::config(format!(
                "`listeners={first}`: write http://HOST:PORT or https://HOST:PORT, e.g. \
                 `listeners=http://127.0.0.1:8083`"
            )));
        };
        let (host, port) = rest.rsplit_once(':').ok_or_else(|| {
            Error::config(format!(
                "`listeners={first}` has no port; write `http://HOST:PORT`"
            ))
        })?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = if host.is_empty() { "127.0.0.1" } else { host };
        let host = if host == "localhost" {
            "127.0.0.1"
        } else {
            host
        };
        return format!(
            "{}:{port}",
            if host.contains(':') {
                format!("[{host}]")
            } else {
                host.to_owned()
            }
        )
        .parse()
        .map(|addr| (addr, scheme))
        .map_err(|_| {
            Error::config(format!(
                "`listeners={first}` is not HOST:PORT with an IP address host; write e.g. \
                     `http://0.0.0.0:8083`"
            ))
        });
    }
    let host = config.string("rest.host.name")?;
    let host = if host.is_empty() || host == "localhost" {
        "127.0.0.1".to_owned()
    } else {
        host
    };
    let port = config.i64("rest.port")?;
    format!("{host}:{port}")
        .parse()
        .map(|addr| (addr, Scheme::Http))
        .map_err(|_| {
            Error::config(format!(
                "`rest.host.name={host}` / `rest.port={port}` do not form a bindable address"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_api::config::props;

    #[test]
    fn quickstart_worker_parses_with_defaults() {
        let config = WorkerConfig::parse(props(&[
            (
                "key.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            ("value.converter.schemas.enable", "true"),
            ("offset.storage.file.filename", "/tmp/connect.offsets"),
            ("offset.flush.interval.ms", "10000"),
        ]))
        .unwrap();
        assert!(config.is_embedded());
        assert_eq!(config.rest_addr.to_string(), "127.0.0.1:8083");
        assert_eq!(config.flush_interval, Duration::from_secs(10));
        assert_eq!(config.worker_id, "127.0.0.1:8083");
    }

    #[test]
    fn listeners_pick_the_bind_address() {
        let config = WorkerConfig::parse(props(&[("listeners", "http://0.0.0.0:9000")])).unwrap();
        assert_eq!(config.rest_addr.to_string(), "0.0.0.0:9000");
        let config = WorkerConfig::parse(props(&[("listeners", "HTTP://:9001")])).unwrap();
        assert_eq!(config.rest_addr.to_string(), "127.0.0.1:9001");
        let err = WorkerConfig::parse(props(&[("listeners", "https://127.0.0.1:1")])).unwrap_err();
        assert!(err.message().contains("ssl.certificate.location"), "{err}");
        let err = WorkerConfig::parse(props(&[("listeners", "ftp://127.0.0.1:1")])).unwrap_err();
        assert!(err.message().contains("https://HOST:PORT"), "{err}");
        let err = WorkerConfig::parse(props(&[
            ("listeners", "https://127.0.0.1:1"),
            ("listeners.https.ssl.keystore.type", "JKS"),
        ]))
        .unwrap_err();
        assert!(err.message().contains("PEM"), "{err}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let err = WorkerConfig::parse(props(&[("offset.flush.interval", "5"), ("rest.port", "x")]))
            .unwrap_err();
        let msg = err.message();
        assert!(
            msg.contains("did you mean `offset.flush.interval.ms`"),
            "{msg}"
        );
        assert!(
            msg.contains("Invalid value x for configuration rest.port"),
            "{msg}"
        );
        let err = WorkerConfig::parse(props(&[(
            "value.converter",
            "io.confluent.connect.avro.AvroConverter",
        )]))
        .unwrap_err();
        assert!(
            err.message().contains("not a converter sluice has"),
            "{err}"
        );
    }
}
