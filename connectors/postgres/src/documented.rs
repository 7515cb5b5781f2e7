//! Every other key Debezium's PostgreSQL connector documents (3.x reference): accepted and
//! named once at start with why it has no effect in sluice, or, where ignoring a non-default
//! value would silently change the data, accepted only at its documented default and refused
//! otherwise, saying why. Keys neither Debezium nor Kafka Connect documents stay errors with a
//! did-you-mean.

use sluice_api::config::{ConfigDef, ConfigKey, ConfigType, Importance, Validator};

/// A documented key accepted without effect.
fn ignored(name: &str, config_type: ConfigType, default: &str, why: &str) -> ConfigKey {
    ConfigKey::optional(name, config_type, default, Importance::Low, why).ignored(why)
}

/// A documented key accepted only at its default.
fn default_only(
    name: &str,
    config_type: ConfigType,
    default: &str,
    why: &'static str,
) -> ConfigKey {
    ConfigKey::optional(name, config_type, default, Importance::Low, why)
        .validate_with(Validator::DefaultOnly(why))
}

const NO_INCREMENTAL: &str = "sluice has no incremental snapshots or signals yet";
const OWN_BUFFERS: &str =
    "sluice bounds its queues itself (max.batch.size and the worker's buffers)";
const METRICS: &str = "sluice's metrics are served at /metrics";

/// The documented keys sluice does not act on.
pub(crate) fn documented_keys() -> ConfigDef {
    use ConfigType::*;
    ConfigDef::new()
        .key(ignored("slot.failover", Boolean, "false", "failover slots (Postgres 17) are not created by sluice"))
        .key(default_only("offset.mismatch.strategy", String, "no_validation",
            "sluice resumes from its stored offset, checked against the slot at start"))
        .key(default_only("database.connection.factory.class", Class, "",
            "connections are made by sluice's own client"))
        .key(default_only("skip.messages.without.change", Boolean, "false",
            "every update is emitted, also one that changes no included column"))
        .key(default_only("database.sslfactory", Class, "",
            "TLS is sluice's own (rustls, database.sslmode and friends); Java socket factories do not apply"))
        .key(ignored("database.tcpKeepAlive", Boolean, "true", "sluice's connections rely on the replication protocol's keepalives"))
        .key(default_only("replica.identity.autoset.values", String, "",
            "sluice does not alter tables' replica identity; set it with ALTER TABLE … REPLICA IDENTITY"))
        .key(default_only("money.fraction.digits", Int, "2", "money values are emitted with 2 fraction digits"))
        .key(default_only("message.prefix.include.list", List, "", "every logical decoding message is emitted"))
        .key(default_only("message.prefix.exclude.list", List, "", "every logical decoding message is emitted"))
        .key(default_only("converters", List, "", "custom converters are Java classes; use transforms or a WASM plugin"))
        .key(ignored("snapshot.isolation.mode", String, "serializable",
            "sluice's snapshot reads one repeatable-read view: the slot's exported snapshot"))
        .key(ignored("snapshot.mode.configuration.based.snapshot.data", Boolean, "false", "snapshot.mode=configuration_based is not supported"))
        .key(ignored("snapshot.mode.configuration.based.snapshot.schema", Boolean, "false", "snapshot.mode=configuration_based is not supported"))
        .key(ignored("snapshot.mode.configuration.based.start.stream", Boolean, "false", "snapshot.mode=configuration_based is not supported"))
        .key(ignored("snapshot.mode.configuration.based.snapshot.on.schema.error", Boolean, "false", "snapshot.mode=configuration_based is not supported"))
        .key(ignored("snapshot.mode.configuration.based.snapshot.on.data.error", Boolean, "false", "snapshot.mode=configuration_based is not supported"))
        .key(ignored("snapshot.mode.custom.name", String, "", "snapshot.mode=custom is not supported"))
        .key(ignored("snapshot.locking.mode", String, "none", "sluice's snapshot takes no table locks (it reads the slot's exported snapshot)"))
        .key(ignored("snapshot.locking.mode.custom.name", String, "", "sluice's snapshot takes no table locks"))
        .key(default_only("snapshot.query.mode", String, "select_all", "the snapshot reads every column of each table"))
        .key(ignored("snapshot.query.mode.custom.name", String, "", "snapshot.query.mode=custom is not supported"))
        .key(default_only("snapshot.include.collection.list", List, "",
            "the snapshot reads every captured table; narrow table.include.list instead"))
        .key(ignored("snapshot.lock.timeout.ms", Long, "10000", "sluice's snapshot takes no table locks"))
        .key(default_only("snapshot.select.statement.overrides", String, "", "the snapshot reads whole tables"))
        .key(ignored("max.queue.size", Int, "8192", OWN_BUFFERS))
        .key(ignored("max.queue.size.in.bytes", Long, "0", OWN_BUFFERS))
        .key(ignored("poll.interval.ms", Long, "500", "sluice's polls return as soon as records arrive"))
        .key(ignored("poll.dispatch.interval.ms", Long, "0", "sluice's polls return as soon as records arrive"))
        .key(default_only("database.initial.statements", String, "", "sluice runs no statements on its connections"))
        .key(ignored("status.update.interval.ms", Long, "10000",
            "sluice confirms the slot's position when offsets are committed and on keepalives"))
        .key(ignored("schema.refresh.mode", String, "columns_diff",
            "sluice rebuilds a table's schema from every Relation message the server sends"))
        .key(ignored("snapshot.delay.ms", Long, "0", "the snapshot starts at once"))
        .key(ignored("statistics.metrics.enabled", Boolean, "true", METRICS))
        .key(ignored("streaming.delay.ms", Long, "0", "streaming starts at once"))
        .key(default_only("slot.stream.params", String, "", "pgoutput is started with sluice's own parameters"))
        .key(ignored("slot.max.retries", Int, "6", "sluice retries a held or missing slot with errors.max.retries"))
        .key(ignored("slot.retry.delay.ms", Long, "10000", "sluice retries with its own backoff (250 ms to 30 s)"))
        .key(default_only("unavailable.value.placeholder", String, "__debezium_unavailable_value",
            "unchanged TOASTed values carry Debezium's default placeholder"))
        .key(default_only("publish.via.partition.root", Boolean, "false",
            "the publication is created without publish_via_partition_root"))
        .key(default_only("flush.lsn.source", Boolean, "true",
            "sluice always confirms the slot's position once offsets are durable"))
        .key(default_only("lsn.flush.mode", String, "connector",
            "sluice always confirms the slot's position once offsets are durable"))
        .key(ignored("retriable.restart.connector.wait.ms", Long, "10000",
            "sluice reconnects with its own backoff (250 ms to 30 s)"))
        .key(ignored("signal.data.collection", String, "", NO_INCREMENTAL))
        .key(ignored("signal.enabled.channels", List, "source", NO_INCREMENTAL))
        .key(ignored("notification.enabled.channels", List, "", "sluice has no notification channels; see the task's REST status"))
        .key(ignored("incremental.snapshot.chunk.size", Int, "1024", NO_INCREMENTAL))
        .key(ignored("incremental.snapshot.watermarking.strategy", String, "insert_insert", NO_INCREMENTAL))
        .key(ignored("read.only", Boolean, "false", NO_INCREMENTAL))
        .key(ignored("xmin.fetch.interval.ms", Long, "0", "source.xmin is always null"))
        .key(default_only("topic.naming.strategy", Class, "io.debezium.schema.SchemaTopicNamingStrategy",
            "topics are named <topic.prefix>.<schema>.<table>"))
        .key(default_only("topic.delimiter", String, ".", "topics are named <topic.prefix>.<schema>.<table>"))
        .key(ignored("topic.cache.size", Int, "10000", "topic names are built per table"))
        .key(default_only("topic.heartbeat.name", String, "",
            "heartbeats go to <topic.heartbeat.prefix>.<topic.prefix>"))
        .key(default_only("topic.transaction", String, "transaction",
            "transaction metadata goes to <topic.prefix>.transaction"))
        .key(ignored("legacy.snapshot.max.threads", Boolean, "false",
            "sluice's snapshot reads chunks in parallel in one consistent view"))
        .key(ignored("custom.metric.tags", String, "", METRICS))
        .key(ignored("custom.sanitize.pattern", String, "", "sluice hides secrets by key type and name"))
        .key(ignored("database.query.timeout.ms", Long, "600000", "sluice's queries are not time-limited"))
        .key(ignored("guardrail.collections.max", Int, "0", "sluice has no collection guardrail"))
        .key(ignored("guardrail.collections.limit.action", String, "warn", "sluice has no collection guardrail"))
        .key(ignored("database.autosave", String, "", "a driver setting of Debezium's JDBC connection"))
        .open_prefix("signal.kafka.")
        .open_prefix("signal.consumer.")
        .open_prefix("notification.sink.")
        .open_prefix("driver.")
}
