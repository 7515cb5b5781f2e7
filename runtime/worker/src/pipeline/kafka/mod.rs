//! The Kafka transport: when the worker has `bootstrap.servers`, sources produce to Kafka and
//! sinks consume from it, as in Kafka Connect. Here: the client settings every Kafka client of
//! the worker is made from, and topic creation.
//!
//! * [`producer`]: a source task's producer.
//! * [`consumer`]: a sink task's consumer.
//! * [`dlq`]: dead letter queues.
//! * [`latency`]: the produce-latency histogram.

pub(crate) mod consumer;
pub(crate) mod dlq;
pub(crate) mod latency;
pub(crate) mod producer;
mod security;

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::ClientContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use sluice_api::config::{Props, with_prefix};
use sluice_api::convert::{Converter, converter};
use sluice_api::{Error, Result};

/// Worker settings that concern Kafka clients.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    pub bootstrap_servers: String,
    /// Settings every client gets (`security.protocol`, `ssl.*`, `sasl.*`, `client.id`).
    common: Vec<(String, String)>,
    /// `producer.*` worker settings, prefix removed.
    producer: Vec<(String, String)>,
    /// `consumer.*` worker settings, prefix removed.
    consumer: Vec<(String, String)>,
    /// `admin.*` worker settings, prefix removed.
    admin: Vec<(String, String)>,
    /// The worker's converter settings (`key.converter`, `value.converter` and their prefixes).
    worker_props: Props,
}

impl KafkaSettings {
    /// Reads the Kafka client settings out of the worker config, Kafka Connect's security
    /// keys translated for librdkafka (a JKS store is an error naming the fix).
    pub fn from_worker(props: &Props, bootstrap_servers: &[String]) -> Result<KafkaSettings> {
        let common: Vec<(String, String)> = props
            .iter()
            .filter(|(k, _)| {
                k.starts_with("ssl.")
                    || k.starts_with("sasl.")
                    || *k == "security.protocol"
                    || *k == "client.id"
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let prefixed = |prefix: &str| -> Result<Vec<(String, String)>> {
            let settings: Vec<(String, String)> = with_prefix(props, prefix).into_iter().collect();
            security::translate(&settings, prefix)
        };
        Ok(KafkaSettings {
            bootstrap_servers: bootstrap_servers.join(","),
            common: security::translate(&common, "")?,
            producer: prefixed("producer.")?,
            consumer: prefixed("consumer.")?,
            admin: prefixed("admin.")?,
            worker_props: props.clone(),
        })
    }

    /// These settings with `producer.*` and `consumer.*` keys of `client` (prefix removed)
    /// added after the worker's own, translated as they are.
    pub(crate) fn with_client_overrides(&self, client: &Props) -> Result<KafkaSettings> {
        let mut settings = self.clone();
        for (prefix, into) in [
            ("producer.", &mut settings.producer),
            ("consumer.", &mut settings.consumer),
        ] {
            let added: Vec<(String, String)> = with_prefix(client, prefix).into_iter().collect();
            into.extend(security::translate(&added, prefix)?);
        }
        Ok(settings)
    }

    /// A connector's client overrides, translated as the worker's are; what cannot be
    /// translated is passed on as written (the client then refuses it, naming the key).
    fn overrides(overrides: &[(String, String)]) -> Vec<(String, String)> {
        security::translate(overrides, "…override.").unwrap_or_else(|e| {
            tracing::warn!(error = %e, "a client override could not be translated for librdkafka");
            overrides.to_vec()
        })
    }

    /// The security settings every client gets (`security.protocol`, `ssl.*`, `sasl.*`), in
    /// librdkafka's names.
    pub(crate) fn client_security(&self) -> &[(String, String)] {
        &self.common
    }

    fn base(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        for (k, v) in &self.common {
            config.set(k, v);
        }
        config
    }

    /// A producer config: idempotent, `acks=all`, then worker `producer.*`, then the
    /// connector's `producer.override.*`.
    pub fn producer_config(&self, overrides: &[(String, String)]) -> ClientConfig {
        let mut config = self.base();
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            // Java's default partitioner, so keys land where Kafka Connect would put them.
            .set("partitioner", "murmur2_random");
        for (k, v) in self.producer.iter().chain(&Self::overrides(overrides)) {
            config.set(k, v);
        }
        config
    }

    /// A consumer config for `group`: manual commits, start from the earliest offset (Kafka
    /// Connect's sink default), then worker `consumer.*`, then `consumer.override.*`.
    pub fn consumer_config(&self, group: &str, overrides: &[(String, String)]) -> ClientConfig {
        let mut config = self.base();
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest");
        for (k, v) in self.consumer.iter().chain(&Self::overrides(overrides)) {
            config.set(k, v);
        }
        config
    }

    /// An admin client.
    pub fn admin(&self) -> Result<AdminClient<DefaultClientContext>> {
        let mut config = self.base();
        for (k, v) in &self.admin {
            config.set(k, v);
        }
        config.create().map_err(|e| client_error("admin client", e))
    }

    /// `error` (a request to the brokers that timed out) with why the brokers do not answer
    /// when a client can tell: a refused SASL login or a failed TLS handshake reaches a
    /// librdkafka client only as a logged error while its requests wait, and the admin client
    /// does not surface those. A short-lived consumer asks for metadata and reports the last
    /// error it logged.
    pub(crate) async fn explain_timeout(&self, error: Error) -> Error {
        let config = self.base();
        let found = tokio::task::spawn_blocking(move || {
            let consumer: BaseConsumer<ProbeContext> =
                config.create_with_context(ProbeContext::default()).ok()?;
            let answered = consumer
                .fetch_metadata(None, Duration::from_secs(5))
                .is_ok();
            // Hands the log lines librdkafka queued to the context.
            for _ in 0..5 {
                let _ = consumer.poll(Duration::from_millis(20));
            }
            let last = consumer.context().last_error.lock().ok()?.clone();
            (!answered).then_some(last).flatten()
        })
        .await
        .ok()
        .flatten();
        match found {
            Some(why) => Error::new(
                error.kind(),
                format!("{} (the Kafka client reports: {why})", error.message()),
            ),
            None => error,
        }
    }

    /// The key and value converters of a connector: its own `key.converter` /
    /// `value.converter` when set, the worker's otherwise.
    pub fn converters(
        &self,
        connector: &Props,
    ) -> Result<(Box<dyn Converter>, Box<dyn Converter>)> {
        let pick = |which: &str| -> Result<Box<dyn Converter>> {
            let own = connector.get(which).filter(|c| !c.trim().is_empty());
            let (class, source) = match own {
                Some(class) => (class.clone(), connector),
                None => (
                    self.worker_props
                        .get(which)
                        .cloned()
                        .unwrap_or_else(|| sluice_api::convert::JSON_CONVERTER.to_owned()),
                    &self.worker_props,
                ),
            };
            let settings = with_prefix(source, &format!("{which}."));
            converter(&class, &settings).map_err(|e| e.context(which))
        };
        Ok((pick("key.converter")?, pick("value.converter")?))
    }
}

/// A Kafka client error as a sluice error, naming what failed.
pub(crate) fn client_error(what: &str, error: rdkafka::error::KafkaError) -> Error {
    let message = format!("Kafka {what}: {error}");
    match error.rdkafka_error_code() {
        Some(RDKafkaErrorCode::InvalidArgument) | None => Error::config(message),
        _ => Error::retriable(message),
    }
}

/// Whether a consumer error only reports that the broker is out of reach for now. librdkafka
/// reconnects, rejoins the group and resumes fetching by itself after these (they are
/// informational, as its consumer documentation says), so a sink waits them out, as the Java
/// consumer under Kafka Connect does, rather than failing its task on a broker restart.
pub(crate) fn is_transient_consumer_error(error: &rdkafka::error::KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::Resolve
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::NetworkException
                | RDKafkaErrorCode::CoordinatorNotAvailable
                | RDKafkaErrorCode::NotCoordinator
                | RDKafkaErrorCode::CoordinatorLoadInProgress
                | RDKafkaErrorCode::LeaderNotAvailable
                | RDKafkaErrorCode::NotLeaderForPartition
        )
    )
}

/// The context of [`KafkaSettings::explain_timeout`]'s consumer: keeps the last error
/// librdkafka logged.
#[derive(Debug, Default)]
struct ProbeContext {
    last_error: std::sync::Mutex<Option<String>>,
}

impl ProbeContext {
    /// Keeps `what`, unless it only says that every broker is down (the consequence of the
    /// error worth reporting, which librdkafka logs after it).
    fn remember(&self, what: String) {
        let consequence = what.contains("brokers are down") || what.contains("AllBrokersDown");
        if let Ok(mut last) = self.last_error.lock()
            && (last.is_none() || !consequence)
        {
            *last = Some(what);
        }
    }
}

impl ClientContext for ProbeContext {
    fn log(&self, level: RDKafkaLogLevel, _facility: &str, message: &str) {
        if (level as i32) <= (RDKafkaLogLevel::Error as i32) {
            self.remember(message.to_owned());
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.remember(format!("{error}: {reason}"));
    }
}

impl ConsumerContext for ProbeContext {}

/// Creates `topic` unless it exists; `true` when this call created it. Brokers may not
/// auto-create topics (Tansu does not), so sluice creates what it writes to.
pub(crate) async fn ensure_topic(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    partitions: i32,
    replication_factor: i32,
    configs: &[(&str, &str)],
) -> Result<bool> {
    let mut new_topic = NewTopic::new(
        topic,
        partitions,
        TopicReplication::Fixed(replication_factor),
    );
    for (k, v) in configs {
        new_topic = new_topic.set(k, v);
    }
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics([&new_topic], &options)
        .await
        .map_err(|e| client_error(&format!("create topic {topic}"), e))?;
    let mut created = false;
    for result in results {
        match result {
            Ok(_) => {
                tracing::info!(topic, partitions, "created topic");
                created = true;
            }
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(Error::retriable(format!(
                    "cannot create topic {name}: {code}; create it yourself or check the broker's permissions"
                )));
            }
        }
    }
    Ok(created)
}
