//! A distributed worker's settings: Kafka Connect's `connect-distributed.properties` read
//! unchanged. Every key Kafka Connect's `WorkerConfig` and `DistributedConfig` document is
//! recognised: the group and internal-topic keys are used, the others are accepted and named
//! once at start-up with why they have no effect here; only keys neither documents are errors
//! (with a did-you-mean).

use std::time::Duration;

use sluice_api::config::{Config, ConfigDef, ConfigKey, ConfigType, Importance, Props, Validator};
use sluice_api::{Error, Result};

use super::worker::{WorkerConfig, millis, worker_config_def};
use crate::herder::distributed::protocol::Protocol;
use crate::herder::distributed::signature::HMAC_SHA256;

/// Keys Kafka Connect documents that have no effect in sluice, and why.
const NO_EFFECT: &[(&str, &str)] = &[
    (
        "client.dns.lookup",
        "sluice's clients resolve every address of a name",
    ),
    ("plugin.discovery", "sluice's plugins are built in"),
    (
        "metrics.sample.window.ms",
        "sluice's metrics are served at /metrics, not through Kafka's metrics library",
    ),
    (
        "metrics.num.samples",
        "sluice's metrics are served at /metrics",
    ),
    (
        "metrics.recording.level",
        "sluice's metrics are served at /metrics",
    ),
    (
        "metric.reporters",
        "sluice has no JMX; metrics are served at /metrics",
    ),
    ("config.providers", "config providers are not supported yet"),
    (
        "connector.client.config.override.policy",
        "connectors' client overrides are not supported yet",
    ),
    ("rest.advertised.listener", "sluice's REST API is HTTP only"),
    ("access.control.allow.origin", "CORS headers are not sent"),
    ("access.control.allow.methods", "CORS headers are not sent"),
    (
        "response.http.headers.config",
        "extra response headers are not supported",
    ),
    ("ssl.client.auth", "sluice's REST API is HTTP only"),
    ("rest.extension.classes", "REST extensions are Java classes"),
    (
        "admin.listeners",
        "the admin endpoints are served on `listeners`",
    ),
    (
        "exactly.once.source.support",
        "exactly-once sources are not supported (Tansu has no transactions)",
    ),
    ("metadata.max.age.ms", "librdkafka's own default applies"),
    (
        "metadata.recovery.strategy",
        "librdkafka's own default applies",
    ),
    ("send.buffer.bytes", "the OS default applies"),
    ("receive.buffer.bytes", "the OS default applies"),
    (
        "reconnect.backoff.ms",
        "sluice's group client backs off 100 ms",
    ),
    (
        "reconnect.backoff.max.ms",
        "sluice's group client backs off 100 ms",
    ),
    ("retry.backoff.ms", "sluice's group client backs off 100 ms"),
    (
        "retry.backoff.max.ms",
        "sluice's group client backs off 100 ms",
    ),
    (
        "socket.connection.setup.timeout.ms",
        "`request.timeout.ms` bounds connecting",
    ),
    (
        "socket.connection.setup.timeout.max.ms",
        "`request.timeout.ms` bounds connecting",
    ),
    (
        "connections.max.idle.ms",
        "the group client keeps its coordinator connections",
    ),
    (
        "inter.worker.key.generation.algorithm",
        "keys are always HmacSHA256",
    ),
    ("inter.worker.key.size", "keys are always 256 bits"),
];

/// The distributed worker's definition: the worker keys plus Kafka Connect's distributed ones.
pub fn distributed_config_def() -> ConfigDef {
    use ConfigType::*;
    use Importance::*;
    let mut def = worker_config_def()
        .key(
            ConfigKey::required(
                "group.id",
                String,
                High,
                "The worker group: workers with the same group.id share connectors. Must not be a \
             sink connector's consumer group (connect-<name>).",
            )
            .validate_with(Validator::NonEmpty),
        )
        .key(
            ConfigKey::required(
                "config.storage.topic",
                String,
                High,
                "Topic of connector and task configs (one partition, compacted).",
            )
            .validate_with(Validator::NonEmpty),
        )
        .key(
            ConfigKey::required(
                "offset.storage.topic",
                String,
                High,
                "Topic of source offsets (compacted).",
            )
            .validate_with(Validator::NonEmpty),
        )
        .key(
            ConfigKey::required(
                "status.storage.topic",
                String,
                High,
                "Topic of connector and task statuses (compacted).",
            )
            .validate_with(Validator::NonEmpty),
        )
        .key(
            ConfigKey::optional(
                "session.timeout.ms",
                Int,
                "10000",
                High,
                "A worker not heard from for this long is out of the group and its work moves.",
            )
            .validate_with(Validator::Range {
                min: 1,
                max: i32::MAX as i64,
            }),
        )
        .key(
            ConfigKey::optional(
                "heartbeat.interval.ms",
                Int,
                "3000",
                High,
                "How often a worker tells the coordinator it is alive; below session.timeout.ms.",
            )
            .validate_with(Validator::Range {
                min: 1,
                max: i32::MAX as i64,
            }),
        )
        .key(
            ConfigKey::optional(
                "rebalance.timeout.ms",
                Int,
                "60000",
                High,
                "How long a rebalance waits for every worker to rejoin.",
            )
            .validate_with(Validator::Range {
                min: 1,
                max: i32::MAX as i64,
            }),
        )
        .key(ConfigKey::optional(
            "worker.sync.timeout.ms",
            Int,
            "3000",
            Medium,
            "How long a worker may take to read the config topic up to its assignment before \
             it rejoins instead of running on a stale config.",
        ))
        .key(ConfigKey::optional(
            "worker.unsync.backoff.ms",
            Int,
            "300000",
            Medium,
            "How long a worker that could not catch up waits before rejoining.",
        ))
        .key(
            ConfigKey::optional(
                "connect.protocol",
                String,
                "sessioned",
                Low,
                "Protocols offered: `sessioned` (cooperative, signed requests), `compatible` \
             (cooperative), `eager`.",
            )
            .validate_with(Validator::OneOf(vec!["sessioned", "compatible", "eager"])),
        )
        .key(
            ConfigKey::optional(
                "scheduled.rebalance.max.delay.ms",
                Int,
                "300000",
                Medium,
                "How long the work of a departed worker waits for it to come back before it is \
             given to others (0: at once).",
            )
            .validate_with(Validator::Range {
                min: 0,
                max: i32::MAX as i64,
            }),
        )
        .key(
            ConfigKey::optional(
                "inter.worker.key.ttl.ms",
                Int,
                "3600000",
                Low,
                "How long the key signing internal requests lives before the leader replaces it.",
            )
            .validate_with(Validator::Range {
                min: 0,
                max: i32::MAX as i64,
            }),
        )
        .key(ConfigKey::optional(
            "inter.worker.signature.algorithm",
            String,
            HMAC_SHA256,
            Low,
            "The algorithm signing internal requests (sluice has HmacSHA256).",
        ))
        .key(ConfigKey::optional(
            "inter.worker.verification.algorithms",
            List,
            HMAC_SHA256,
            Low,
            "Algorithms accepted on internal requests; must include the signature algorithm.",
        ))
        .key(
            ConfigKey::optional(
                "request.timeout.ms",
                Int,
                "40000",
                Low,
                "How long a request to the group coordinator may take.",
            )
            .validate_with(Validator::Range {
                min: 1,
                max: i32::MAX as i64,
            }),
        )
        .key(ConfigKey::optional(
            "config.storage.replication.factor",
            Int,
            "3",
            Low,
            "Replication factor when creating the config topic (-1: the broker's default).",
        ))
        .key(ConfigKey::optional(
            "offset.storage.replication.factor",
            Int,
            "3",
            Low,
            "Replication factor when creating the offset topic (-1: the broker's default).",
        ))
        .key(ConfigKey::optional(
            "status.storage.replication.factor",
            Int,
            "3",
            Low,
            "Replication factor when creating the status topic (-1: the broker's default).",
        ))
        .open_prefix("config.storage.")
        .open_prefix("offset.storage.")
        .open_prefix("status.storage.");
    for (key, why) in NO_EFFECT {
        def = def.key(ConfigKey::optional(
            key,
            String,
            "",
            Low,
            &format!("No effect in sluice: {why}."),
        ));
    }
    def
}

/// The parsed distributed settings.
#[derive(Debug, Clone)]
pub struct DistributedConfig {
    /// What every worker has (REST, converters, flush interval, Kafka clients).
    pub worker: WorkerConfig,
    pub group_id: String,
    pub config_topic: String,
    pub offset_topic: String,
    pub status_topic: String,
    pub session_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub rebalance_timeout: Duration,
    pub worker_sync_timeout: Duration,
    pub worker_unsync_backoff: Duration,
    pub scheduled_rebalance_max_delay: Duration,
    pub inter_worker_key_ttl: Duration,
    pub request_timeout: Duration,
    /// The protocol names offered in JoinGroup, most preferred first (`sessioned`,
    /// `compatible`, `default`).
    pub protocols: Vec<&'static str>,
    pub verification_algorithms: Vec<String>,
    /// One line per key that was set but has no effect here, for the start-up log.
    pub no_effect: Vec<String>,
}

impl DistributedConfig {
    /// Validates the settings; the error names every bad key with its fix.
    pub fn parse(props: Props) -> Result<DistributedConfig> {
        let def = distributed_config_def();
        let worker = WorkerConfig::parse_with(&def, props)?;
        let config = Config::parse(def, worker.props.clone())?;
        let ms = |key: &str| millis(&config, key);
        let session_timeout = ms("session.timeout.ms")?;
        let heartbeat_interval = ms("heartbeat.interval.ms")?;
        if heartbeat_interval >= session_timeout {
            return Err(Error::config(format!(
                "`heartbeat.interval.ms={}` must be below `session.timeout.ms={}` (Kafka Connect's \
                 defaults are 3000 and 10000)",
                heartbeat_interval.as_millis(),
                session_timeout.as_millis()
            )));
        }
        let topics = [
            (
                "config.storage.topic",
                config.string("config.storage.topic")?,
            ),
            (
                "offset.storage.topic",
                config.string("offset.storage.topic")?,
            ),
            (
                "status.storage.topic",
                config.string("status.storage.topic")?,
            ),
        ];
        for (i, (key, topic)) in topics.iter().enumerate() {
            if let Some((other, _)) = topics[..i].iter().find(|(_, t)| t == topic) {
                return Err(Error::config(format!(
                    "`{key}` and `{other}` are both `{topic}`; the three internal topics must \
                     differ (e.g. connect-configs, connect-offsets, connect-status)"
                )));
            }
        }
        let signature = config.string("inter.worker.signature.algorithm")?;
        let verification = config.list("inter.worker.verification.algorithms");
        if signature != HMAC_SHA256 || verification.iter().any(|a| a != HMAC_SHA256) {
            return Err(Error::config(format!(
                "`inter.worker.signature.algorithm` and `inter.worker.verification.algorithms` \
                 must be {HMAC_SHA256}, the algorithm sluice signs with"
            )));
        }
        let protocols = Protocol::offered(&config.string("connect.protocol")?)
            .expect("validated by the definition")
            .iter()
            .map(|p| p.name())
            .collect();
        let no_effect = NO_EFFECT
            .iter()
            .filter(|(key, _)| worker.props.contains_key(*key))
            .map(|(key, why)| format!("`{key}` has no effect in sluice: {why}"))
            .collect();
        let [(_, config_topic), (_, offset_topic), (_, status_topic)] = topics;
        Ok(DistributedConfig {
            group_id: config.string("group.id")?,
            config_topic,
            offset_topic,
            status_topic,
            session_timeout,
            heartbeat_interval,
            rebalance_timeout: ms("rebalance.timeout.ms")?,
            worker_sync_timeout: ms("worker.sync.timeout.ms")?,
            worker_unsync_backoff: ms("worker.unsync.backoff.ms")?,
            scheduled_rebalance_max_delay: ms("scheduled.rebalance.max.delay.ms")?,
            inter_worker_key_ttl: ms("inter.worker.key.ttl.ms")?,
            request_timeout: ms("request.timeout.ms")?,
            protocols,
            verification_algorithms: verification,
            no_effect,
            worker,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::file;

    fn shipped() -> Props {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../configs/distributed/connect-distributed.properties");
        file::read_worker_props(&path).unwrap()
    }

    fn with(changes: &[(&str, &str)]) -> Props {
        let mut props = shipped();
        for (k, v) in changes {
            props.insert((*k).to_owned(), (*v).to_owned());
        }
        props
    }

    fn refused(changes: &[(&str, &str)]) -> String {
        DistributedConfig::parse(with(changes))
            .unwrap_err()
            .message()
            .to_owned()
    }

    #[test]
    fn kafkas_own_distributed_file_is_read_unchanged() {
        let config = DistributedConfig::parse(shipped()).unwrap();
        assert_eq!(config.group_id, "connect-cluster");
        assert_eq!(
            (
                config.config_topic.as_str(),
                config.offset_topic.as_str(),
                config.status_topic.as_str()
            ),
            ("connect-configs", "connect-offsets", "connect-status")
        );
        assert_eq!(config.worker.bootstrap_servers, ["localhost:9092"]);
        assert_eq!(config.worker.flush_interval, Duration::from_secs(10));
        assert_eq!(
            (
                config.session_timeout,
                config.heartbeat_interval,
                config.rebalance_timeout
            ),
            (
                Duration::from_secs(10),
                Duration::from_secs(3),
                Duration::from_secs(60)
            )
        );
        assert_eq!(
            config.scheduled_rebalance_max_delay,
            Duration::from_secs(300)
        );
        assert_eq!(config.protocols, ["sessioned", "compatible", "default"]);
        assert!(config.no_effect.is_empty());
    }

    #[test]
    fn documented_keys_without_effect_are_accepted_and_named_with_why() {
        let config = DistributedConfig::parse(with(&[
            (
                "metric.reporters",
                "org.apache.kafka.common.metrics.JmxReporter",
            ),
            ("exactly.once.source.support", "disabled"),
            ("plugin.path", "/opt/connectors"),
        ]))
        .unwrap();
        assert_eq!(config.no_effect.len(), 2, "{:?}", config.no_effect);
        assert!(config.no_effect[0].contains("`metric.reporters` has no effect in sluice"));
        assert_eq!(
            DistributedConfig::parse(with(&[("connect.protocol", "eager")]))
                .unwrap()
                .protocols,
            ["default"]
        );
    }

    #[test]
    fn bad_settings_are_refused_naming_the_key_and_the_fix() {
        let mut missing = shipped();
        missing.remove("group.id");
        assert!(
            DistributedConfig::parse(missing)
                .unwrap_err()
                .message()
                .contains("group.id")
        );
        assert!(refused(&[("connect.protocol", "cooperative")]).contains("connect.protocol"));
        assert!(
            refused(&[("heartbeat.interval.ms", "10000")])
                .contains("must be below `session.timeout.ms=10000`")
        );
        assert!(refused(&[("status.storage.topic", "connect-configs")]).contains("must differ"));
        assert!(
            refused(&[("inter.worker.signature.algorithm", "HmacSHA512")]).contains("HmacSHA256")
        );
        assert!(
            refused(&[("sesion.timeout.ms", "1")]).contains("session.timeout.ms"),
            "did you mean"
        );
    }
}
