//! A private Tansu broker per test (in-memory storage, free port) and plain Kafka clients to
//! look at topics the way any Kafka user would.

use std::process::Child;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::certs::{Certs, acceptor};
use super::kafka_front::KafkaFront;
use super::tansu::{free_port, spawn_tansu, spawn_tansu_advertising};

/// A record to produce: key and value, either may be null.
pub(crate) type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// A running broker, stopped when dropped.
pub(crate) struct Broker {
    child: Child,
    pub(crate) addr: String,
    /// `--storage-engine`, and the environment that storage needs.
    storage: String,
    env: Vec<(&'static str, String)>,
    /// What clients need to reach it (security settings), beyond `bootstrap.servers`.
    client_settings: Vec<(String, String)>,
}

/// The user and password the secured broker ([`Broker::start_secured`]) accepts.
pub(crate) const SASL_USER: (&str, &str) = ("sluice-worker", "s3cret-broker-password");

impl Broker {
    /// Starts a broker on in-memory storage (lost when the broker stops) and waits until it
    /// accepts connections.
    pub(crate) fn start() -> Broker {
        Broker::start_on("memory://tansu/", Vec::new())
    }

    /// Starts a broker whose storage is the S3 fake, so it survives [`Broker::restart`].
    pub(crate) fn start_on_s3(s3: &super::s3_fake::S3Fake) -> Broker {
        Broker::start_on("s3://tansu/", s3.client_env())
    }

    fn start_on(storage: &str, env: Vec<(&'static str, String)>) -> Broker {
        let addr = format!("127.0.0.1:{}", free_port());
        let child = spawn_tansu(&addr, storage, &env);
        Broker {
            child,
            addr,
            storage: storage.to_owned(),
            env,
            client_settings: Vec::new(),
        }
    }

    /// A broker reached only over `SASL_SSL` (PLAIN, [`SASL_USER`]) through the in-test front
    /// (tests/support/kafka_front.rs; Tansu 0.6 has neither TLS nor SASL): `addr` is the
    /// front's `localhost:port`, the name in `certs`' server certificate, and Tansu advertises
    /// it. The broker's own clients here ([`Broker::client`]) use the same settings.
    pub(crate) fn start_secured(certs: &Certs) -> (Broker, KafkaFront) {
        let inner = format!("127.0.0.1:{}", free_port());
        let front_port = free_port();
        let addr = format!("localhost:{front_port}");
        let child = spawn_tansu_advertising(&inner, &addr, "memory://tansu/", &[]);
        let front = KafkaFront::start(
            &format!("127.0.0.1:{front_port}"),
            &inner,
            acceptor(&certs.server_cert, &certs.server_key),
            SASL_USER.0,
            SASL_USER.1,
        );
        let client_settings = [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanisms", "PLAIN"),
            ("sasl.username", SASL_USER.0),
            ("sasl.password", SASL_USER.1),
            ("ssl.ca.location", certs.ca.to_str().unwrap()),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let broker = Broker {
            child,
            addr,
            storage: "memory://tansu/".to_owned(),
            env: Vec::new(),
            client_settings,
        };
        (broker, front)
    }

    /// Kills the broker process (-9) and starts it again on the same address and storage.
    pub(crate) fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn_tansu(&self.addr, &self.storage, &self.env);
    }

    /// A client config pointing at this broker.
    pub(crate) fn client(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.addr);
        for (key, value) in &self.client_settings {
            config.set(key, value);
        }
        config
    }

    /// Creates a topic (Tansu does not auto-create).
    pub(crate) fn create_topic(&self, topic: &str, partitions: i32) {
        self.create_topic_with(topic, partitions, &[]);
    }

    /// Creates a topic with topic configs (`cleanup.policy`, …).
    pub(crate) fn create_topic_with(&self, topic: &str, partitions: i32, configs: &[(&str, &str)]) {
        let admin: AdminClient<DefaultClientContext> = self.client().create().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let results = runtime
            .block_on(admin.create_topics(
                [&configs.iter().fold(
                    NewTopic::new(topic, partitions, TopicReplication::Fixed(-1)),
                    |topic, (key, value)| topic.set(key, value),
                )],
                &AdminOptions::new(),
            ))
            .unwrap();
        for result in results {
            result.unwrap();
        }
    }

    /// Produces records (key, value) to `topic` and waits until the broker has them.
    pub(crate) fn produce(&self, topic: &str, records: &[KeyValue<'_>]) {
        // Java's default partitioner, as Kafka Connect itself would place the records.
        let producer: BaseProducer = self
            .client()
            .set("partitioner", "murmur2_random")
            .create()
            .unwrap();
        for (key, value) in records {
            let mut record = BaseRecord::<[u8], [u8]>::to(topic);
            if let Some(key) = key {
                record = record.key(*key);
            }
            if let Some(value) = value {
                record = record.payload(*value);
            }
            producer.send(record).map_err(|(e, _)| e).unwrap();
        }
        producer.flush(Duration::from_secs(30)).unwrap();
    }

    /// Reads `topic` from the beginning until `count` records arrived (all partitions).
    pub(crate) fn read(&self, topic: &str, count: usize) -> Vec<Consumed> {
        self.read_until(topic, &format!("{count} records"), |read| {
            read.len() >= count
        })
    }

    /// Reads `topic` from the beginning (all partitions) until what was read satisfies `done`.
    pub(crate) fn read_until(
        &self,
        topic: &str,
        what: &str,
        done: impl Fn(&[Consumed]) -> bool,
    ) -> Vec<Consumed> {
        let consumer: BaseConsumer = self
            .client()
            .set("group.id", "sluice-test-reader")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        // The topic may be created by the worker after this call starts (a dead letter queue
        // appears when its task starts): wait for its partitions rather than assign none.
        let partitions = loop {
            let metadata = consumer
                .fetch_metadata(Some(topic), Duration::from_secs(10))
                .unwrap();
            let found = metadata.topics().first().filter(|t| t.error().is_none());
            let ids: Vec<i32> = found
                .map(|t| t.partitions().iter().map(|p| p.id()).collect())
                .unwrap_or_default();
            if !ids.is_empty() {
                break ids;
            }
            assert!(Instant::now() < deadline, "topic {topic} was never created");
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut assignment = TopicPartitionList::new();
        for partition in partitions {
            assignment
                .add_partition_offset(topic, partition, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&assignment).unwrap();
        let mut out = Vec::new();
        while !done(&out) {
            assert!(
                Instant::now() < deadline,
                "{topic} never held {what}: {} records arrived",
                out.len()
            );
            if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                let message = message.unwrap();
                out.push(Consumed {
                    partition: message.partition(),
                    offset: message.offset(),
                    key: message.key().map(<[u8]>::to_vec),
                    value: message.payload().map(<[u8]>::to_vec),
                    headers: message
                        .headers()
                        .map(|h| {
                            h.iter()
                                .map(|h| {
                                    (
                                        h.key.to_owned(),
                                        h.value.map(|v| String::from_utf8_lossy(v).into_owned()),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                });
            }
        }
        out
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A record as a plain consumer sees it.
#[derive(Debug, Clone)]
pub(crate) struct Consumed {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) headers: Vec<(String, Option<String>)>,
}

impl Consumed {
    /// The value as text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(self.value.as_deref().unwrap_or_default()).into_owned()
    }

    /// A header's text value.
    pub(crate) fn header(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_deref())
    }
}
