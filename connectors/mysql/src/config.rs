//! The MySQL/MariaDB connector's settings under Debezium's key names and defaults (what this
//! first version implements; the keys Debezium documents for what is not built yet are refused
//! at a non-default value, saying so).

use crate::tls::TlsSettings;
use sluice_api::config::{Config, ConfigDef, ConfigKey, ConfigType, Importance, Props, Validator};
use sluice_api::{Error, Result, Secret};
use sluice_debezium::EventOptions;
use sluice_debezium::filters::Filter;

/// The connector's config definition.
pub fn config_def() -> ConfigDef {
    use ConfigType::*;
    use Importance::*;
    let def = ConfigDef::new()
        .key(ConfigKey::required("database.hostname", String, High, "MySQL/MariaDB host."))
        .key(ConfigKey::optional("database.port", Int, "3306", High, "Port."))
        .key(ConfigKey::required("database.user", String, High,
            "User with SELECT, REPLICATION SLAVE and REPLICATION CLIENT (MariaDB: BINLOG MONITOR)."))
        .key(ConfigKey::optional("database.password", Password, "", High, "Password."))
        .key(ConfigKey::optional("database.ssl.mode", String, "preferred", High,
            "TLS: disabled, preferred (TLS when the server offers it, unchecked), required (TLS, unchecked), \
             verify_ca (the certificate chains to database.ssl.truststore) or verify_identity (and names \
             database.hostname)."))
        .key(ConfigKey::optional("database.ssl.truststore", String, "", Medium,
            "The CA certificates the server's must chain to, as a PEM file (Debezium's Java truststore \
             exported with keytool -exportcert -rfc). Empty: the public web CAs."))
        .key(ConfigKey::optional("database.ssl.truststore.password", Password, "", Low,
            "Debezium's truststore password; a PEM truststore needs none."))
        .key(ConfigKey::optional("database.ssl.keystore", String, "", Medium,
            "A client certificate and its private key (plain, or encrypted PKCS#8) in one PEM file, \
             for servers that ask for one (REQUIRE X509)."))
        .key(ConfigKey::optional("database.ssl.keystore.password", Password, "", Low,
            "Password of an encrypted (PKCS#8) key in database.ssl.keystore."))
        .key(ConfigKey::required("database.server.id", Long, High,
            "The replica id this connector uses; unique among the server's replicas."))
        .key(ConfigKey::required("topic.prefix", String, High, "Logical server name: topics are <prefix>.<db>.<table>.")
            .validate_with(Validator::NonEmpty))
        .key(ConfigKey::optional("database.include.list", List, "", Medium, "Regular expressions of the databases to capture."))
        .key(ConfigKey::optional("database.exclude.list", List, "", Medium, "Regular expressions of databases not to capture."))
        .key(ConfigKey::optional("table.include.list", List, "", Medium, "Regular expressions of the tables (db.table) to capture."))
        .key(ConfigKey::optional("table.exclude.list", List, "", Medium, "Regular expressions of tables (db.table) not to capture."))
        .key(ConfigKey::optional("snapshot.mode", String, "initial", Medium,
            "initial: snapshot when none completed, then stream; always; initial_only; no_data (never, schema_only): \
             stream only; when_needed; recovery (schema_only_recovery): rebuild the schema history from the tables as \
             they are now at the stored offset, then stream from it (no data snapshot; only right when no DDL ran since).")
            .validate_with(Validator::OneOf(vec!["initial", "always", "initial_only", "no_data", "never", "schema_only",
                "when_needed", "recovery", "schema_only_recovery"])))
        .key(ConfigKey::optional("snapshot.max.threads", Int, "1", Medium,
            "Connections reading snapshot chunks at once (1, as in Debezium: the coordinator reads every table \
             itself; 0: one per CPU core). Each opens its own consistent snapshot; only those that open at the \
             same binlog position (the same view, without any lock) read, the others are closed.")
            .validate_with(Validator::Range { min: 0, max: 64 }))
        .key(ConfigKey::optional("snapshot.fetch.size", Int, "2048", Low,
            "Rows per snapshot chunk when chunks are read in parallel (tables with a primary key).")
            .validate_with(Validator::Range { min: 1, max: i64::from(i32::MAX) }))
        .key(ConfigKey::optional("decimal.handling.mode", String, "precise", Medium, "DECIMAL as precise (Decimal), double or string.")
            .validate_with(Validator::OneOf(vec!["precise", "double", "string"])))
        .key(ConfigKey::optional("time.precision.mode", String, "adaptive_time_microseconds", Medium,
            "Temporal types as Debezium's adaptive_time_microseconds (the only mode so far).")
            .validate_with(Validator::DefaultOnly("only adaptive_time_microseconds is implemented so far")))
        .key(ConfigKey::optional("bigint.unsigned.handling.mode", String, "long", Medium,
            "BIGINT UNSIGNED as long (int64; values above 2^63 wrap, as in Debezium) or precise (Decimal).")
            .validate_with(Validator::OneOf(vec!["long", "precise"])))
        .key(ConfigKey::optional("max.batch.size", Int, "2048", Low, "Most records per poll (whole transactions)."))
        .key(ConfigKey::optional("include.schema.changes", Boolean, "false", Medium,
            "Debezium's schema change events on the <topic.prefix> topic: the snapshot's statements (SET, DROP/CREATE \
             DATABASE, USE, DROP TABLE IF EXISTS and each CREATE TABLE) and, while streaming, one per DDL statement on a \
             captured table. Off by default in sluice (Debezium: on), because on the embedded pipeline a topic no sink \
             subscribes to holds the source (direct.unrouted.records=wait); set it to true where something reads them."))
        .key(ConfigKey::optional("provide.transaction.metadata", Boolean, "false", Medium,
            "A BEGIN and an END record per binlog transaction on <topic.prefix>.transaction (id: the GTID, else \
             file=<binlog file>,pos=<position of its start>), and a transaction block in each change event, as in Debezium."))
        .key(ConfigKey::optional("heartbeat.interval.ms", Int, "0", Medium,
            "While streaming, a heartbeat record to <topic.heartbeat.prefix>.<topic.prefix> this often, carrying the \
             binlog position read so far, so the stored offset moves past changes to tables that are not captured; 0: none.")
            .validate_with(Validator::Range { min: 0, max: i64::from(i32::MAX) }))
        .key(ConfigKey::optional("topic.heartbeat.prefix", String, "__debezium-heartbeat", Low,
            "Heartbeat records go to <this>.<topic.prefix>.")
            .validate_with(Validator::NonEmpty))
        .key(ConfigKey::optional("heartbeat.action.query", String, "", Low,
            "A statement run on the database before each heartbeat; empty: none."))
        .key(ConfigKey::optional("schema.history.internal.kafka.topic", String, "", Medium,
            "The schema history topic (Debezium's KafkaSchemaHistory: one partition, every record kept, unkeyed \
             records in the file's layout), created when missing. On the Kafka transport only; the embedded \
             pipeline has no Kafka and says so at start (use schema.history.internal.file.filename there)."))
        .key(ConfigKey::optional("schema.history.internal.kafka.bootstrap.servers", String, "", Low,
            "The brokers of the schema history topic, with schema.history.internal.producer.* and .consumer.* \
             client settings; empty: the worker's brokers and client settings."))
        .key(ConfigKey::optional("schema.history.internal", Class, "", Low,
            "Schema history implementation: io.debezium.storage.file.history.FileSchemaHistory \
             (schema.history.internal.file.filename) or io.debezium.storage.kafka.history.KafkaSchemaHistory \
             (schema.history.internal.kafka.topic) or io.debezium.relational.history.MemorySchemaHistory; empty: \
             the one whose key is set (both: the topic on the Kafka transport, the file on the embedded pipeline); \
             neither: schemas are tracked in memory (read anew at start)."))
        .key(ConfigKey::optional("schema.history.internal.file.filename", String, "", Medium,
            "The schema history file (Debezium's FileSchemaHistory layout, one record per line): each table's \
             schema versions with their binlog position, so a restart decodes events written before a DDL with \
             the schema they were written under. Empty: in memory only (a restart reads the schemas anew)."))
        .key(ConfigKey::optional("schema.history.internal.store.only.captured.tables.ddl", Boolean, "false", Low,
            "true: a snapshot's schema change events cover the captured tables only; false (Debezium's default): \
             every table outside the system databases (or, with ….store.only.captured.databases.ddl, every table of \
             the captured databases). The schema history holds the captured tables either way."))
        .key(ConfigKey::optional("schema.history.internal.store.only.captured.databases.ddl", Boolean, "false", Low,
            "true: a snapshot's schema change events cover every table of the captured databases (unless \
             ….store.only.captured.tables.ddl narrows them to the captured tables)."))
        .key(ConfigKey::optional("inconsistent.schema.handling.mode", String, "fail", Medium,
            "When a table's rows in the binlog do not fit its known schema and the server does not write full \
             metadata (binlog_row_metadata=FULL) to decode them by: fail (the task fails, naming the fix), warn \
             (the event is skipped with a warning) or skip (skipped silently).")
            .validate_with(Validator::OneOf(vec!["fail", "warn", "skip"])))
        .open_prefix("schema.history.internal.");
    sluice_debezium::config::pattern_prefixes(def.merge(&sluice_debezium::config::event_keys()))
}

/// `snapshot.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotMode {
    Initial,
    Always,
    InitialOnly,
    NoData,
    WhenNeeded,
    Recovery,
}

/// The server's own databases: their tables are never listed for a snapshot, nor their DDL
/// sent as schema change events.
pub const SYSTEM_DATABASES: [&str; 4] =
    ["mysql", "information_schema", "performance_schema", "sys"];

/// Which tables schema change events cover, in the snapshot and while streaming: Debezium's
/// `schema.history.internal.store.only.captured.tables.ddl` and
/// `….store.only.captured.databases.ddl` (both `false` by default: every table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaScope {
    /// Only the captured tables.
    CapturedTables,
    /// Every table of the databases `database.include.list`/`exclude.list` capture.
    CapturedDatabases,
    /// Every table outside the system databases.
    AllTables,
}

impl SchemaScope {
    fn from_config(config: &Config) -> Result<SchemaScope> {
        let tables = config.bool("schema.history.internal.store.only.captured.tables.ddl")?;
        let databases = config.bool("schema.history.internal.store.only.captured.databases.ddl")?;
        Ok(match (tables, databases) {
            (true, _) => SchemaScope::CapturedTables,
            (false, true) => SchemaScope::CapturedDatabases,
            (false, false) => SchemaScope::AllTables,
        })
    }
}

/// Where the schema history is kept (`schema.history.internal` and its keys).
#[derive(Debug, Clone, PartialEq)]
pub enum HistoryConfig {
    /// `FileSchemaHistory`: `schema.history.internal.file.filename`.
    File(std::path::PathBuf),
    /// `KafkaSchemaHistory`: `schema.history.internal.kafka.topic`, with the client settings
    /// (`bootstrap.servers`, `producer.*`, `consumer.*`) its keys give.
    Topic {
        topic: String,
        client: Props,
        /// The file to keep it in instead on the embedded pipeline, which has no Kafka (both
        /// keys set and no class named).
        file: Option<std::path::PathBuf>,
        /// Named by `schema.history.internal`: without Kafka it is an error, not a warning.
        explicit: bool,
    },
    /// Neither: in memory.
    Memory,
}

const FILE_HISTORY: &str = "io.debezium.storage.file.history.FileSchemaHistory";
const KAFKA_HISTORY: &str = "io.debezium.storage.kafka.history.KafkaSchemaHistory";
const MEMORY_HISTORY: &str = "io.debezium.relational.history.MemorySchemaHistory";

impl HistoryConfig {
    fn from_config(config: &Config, props: &Props) -> Result<HistoryConfig> {
        let file = config.string("schema.history.internal.file.filename")?;
        let topic = config.string("schema.history.internal.kafka.topic")?;
        let class = config.string("schema.history.internal")?;
        let as_file = || HistoryConfig::File(std::path::PathBuf::from(file.trim()));
        let as_topic = |explicit: bool| {
            let mut client = Props::new();
            let brokers = config
                .string("schema.history.internal.kafka.bootstrap.servers")
                .unwrap_or_default();
            if !brokers.trim().is_empty() {
                client.insert("bootstrap.servers".into(), brokers.trim().to_owned());
            }
            for (key, value) in props {
                for prefix in ["producer.", "consumer."] {
                    if let Some(setting) =
                        key.strip_prefix(&format!("schema.history.internal.{prefix}"))
                    {
                        client.insert(format!("{prefix}{setting}"), value.clone());
                    }
                }
            }
            HistoryConfig::Topic {
                topic: topic.trim().to_owned(),
                client,
                file: (!explicit && !file.trim().is_empty())
                    .then(|| std::path::PathBuf::from(file.trim())),
                explicit,
            }
        };
        let missing = |key: &str| {
            Error::config(format!(
                "schema.history.internal={class} needs {key}: set it, or choose the other history"
            ))
        };
        match class.trim() {
            FILE_HISTORY if file.trim().is_empty() => {
                Err(missing("schema.history.internal.file.filename"))
            }
            FILE_HISTORY => Ok(as_file()),
            KAFKA_HISTORY if topic.trim().is_empty() => {
                Err(missing("schema.history.internal.kafka.topic"))
            }
            KAFKA_HISTORY => Ok(as_topic(true)),
            // Debezium's default on Kafka Connect is the topic; the file serves where there is
            // no Kafka.
            "" if !topic.trim().is_empty() => Ok(as_topic(false)),
            "" if !file.trim().is_empty() => Ok(as_file()),
            "" | MEMORY_HISTORY => Ok(HistoryConfig::Memory),
            other => Err(Error::config(format!(
                "schema.history.internal={other} is not a schema history sluice has: use {FILE_HISTORY}, \
                 {KAFKA_HISTORY} or {MEMORY_HISTORY}"
            ))),
        }
    }
}

/// `inconsistent.schema.handling.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inconsistent {
    Fail,
    Warn,
    Skip,
}

/// Parsed settings; `{:?}` hides the password.
#[derive(Debug, Clone)]
pub struct MySqlConfig {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Secret,
    pub server_id: u32,
    pub topic_prefix: String,
    databases: Filter,
    tables: Filter,
    pub snapshot: SnapshotMode,
    pub decimal_string: bool,
    pub decimal_double: bool,
    pub bigint_precise: bool,
    pub max_batch: usize,
    pub tombstones: bool,
    pub events: EventOptions,
    /// `mysql` or `mariadb`: `source.connector` and the Source schema's name.
    pub flavour: &'static str,
    pub task_id: u32,
    /// `heartbeat.interval.ms`; `None` when 0.
    pub heartbeat_interval: Option<std::time::Duration>,
    pub heartbeat_topic_prefix: String,
    pub heartbeat_action_query: Option<String>,
    /// Where the schema history is kept.
    pub history: HistoryConfig,
    pub inconsistent: Inconsistent,
    /// `include.schema.changes`.
    pub schema_changes: bool,
    /// Which tables a snapshot's schema change events cover.
    pub schema_scope: SchemaScope,
    /// `snapshot.max.threads` (1 by default; 0: one per CPU core).
    pub snapshot_max_threads: usize,
    /// `snapshot.fetch.size`: rows per chunk read in parallel.
    pub snapshot_fetch_size: usize,
    /// `provide.transaction.metadata`.
    pub transaction_metadata: bool,
    /// `database.ssl.*`.
    pub tls: TlsSettings,
}

impl MySqlConfig {
    /// Reads the connector's keys; `flavour` is `mysql` or `mariadb`.
    pub fn from_props(props: &Props, flavour: &'static str) -> Result<MySqlConfig> {
        let config = Config::parse_own(config_def(), props)?;
        let port = config.i64("database.port")?;
        let server_id = config.i64("database.server.id")?;
        let decimals = config.string("decimal.handling.mode")?;
        Ok(MySqlConfig {
            host: config.string("database.hostname")?,
            port: u16::try_from(port).map_err(|_| Error::config(format!("`database.port={port}` is not a port")))?,
            user: config.string("database.user")?,
            password: config.secret("database.password")?,
            server_id: u32::try_from(server_id).ok().filter(|id| *id > 0).ok_or_else(|| {
                Error::config(format!(
                    "`database.server.id={server_id}` must be between 1 and 4294967295, and differ from every other replica's server_id"
                ))
            })?,
            topic_prefix: config.string("topic.prefix")?,
            databases: Filter::new(&config, "database")?,
            tables: Filter::new(&config, "table")?,
            snapshot: match config.string("snapshot.mode")?.as_str() {
                "always" => SnapshotMode::Always,
                "initial_only" => SnapshotMode::InitialOnly,
                "no_data" | "never" | "schema_only" => SnapshotMode::NoData,
                "when_needed" => SnapshotMode::WhenNeeded,
                "recovery" | "schema_only_recovery" => SnapshotMode::Recovery,
                _ => SnapshotMode::Initial,
            },
            decimal_string: decimals == "string",
            decimal_double: decimals == "double",
            bigint_precise: config.string("bigint.unsigned.handling.mode")? == "precise",
            max_batch: usize::try_from(config.i64("max.batch.size")?).unwrap_or(2048).max(1),
            tombstones: config.bool("tombstones.on.delete")?,
            events: EventOptions::new(&config, props)?,
            flavour,
            task_id: 0,
            heartbeat_interval: u64::try_from(config.i64("heartbeat.interval.ms")?)
                .ok()
                .filter(|ms| *ms > 0)
                .map(std::time::Duration::from_millis),
            heartbeat_topic_prefix: config.string("topic.heartbeat.prefix")?,
            heartbeat_action_query: Some(config.string("heartbeat.action.query")?)
                .filter(|q| !q.trim().is_empty()),
            history: HistoryConfig::from_config(&config, props)?,
            schema_changes: config.bool("include.schema.changes")?,
            schema_scope: SchemaScope::from_config(&config)?,
            snapshot_max_threads: usize::try_from(config.i64("snapshot.max.threads")?).unwrap_or(1),
            snapshot_fetch_size: usize::try_from(config.i64("snapshot.fetch.size")?)
                .unwrap_or(2048)
                .max(1),
            transaction_metadata: config.bool("provide.transaction.metadata")?,
            tls: TlsSettings::from_config(&config)?,
            inconsistent: match config.string("inconsistent.schema.handling.mode")?.as_str() {
                "warn" => Inconsistent::Warn,
                "skip" => Inconsistent::Skip,
                _ => Inconsistent::Fail,
            },
        })
    }

    /// How many connections read snapshot chunks at once.
    pub fn snapshot_threads(&self) -> usize {
        match self.snapshot_max_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// Whether database `db` passes `database.include.list`/`exclude.list`.
    pub fn captures_database(&self, db: &str) -> bool {
        self.databases.allows(db)
    }

    /// Whether changes of `db.table` are captured.
    pub fn captures(&self, db: &str, table: &str) -> bool {
        self.databases.allows(db) && self.tables.allows(&format!("{db}.{table}"))
    }

    /// Whether a schema change of `db.table` (of database `db` itself: `table` None) is sent as
    /// a schema change event, as Debezium's `schema.history.internal.store.only.captured.*`
    /// keys say: by default for every table and database but the system ones, the ones not
    /// captured too.
    pub fn keeps_schema_changes_of(&self, db: &str, table: Option<&str>) -> bool {
        match (self.schema_scope, table) {
            (SchemaScope::CapturedTables, Some(table)) => self.captures(db, table),
            (SchemaScope::CapturedTables | SchemaScope::CapturedDatabases, _) => {
                self.captures_database(db)
            }
            (SchemaScope::AllTables, _) => !SYSTEM_DATABASES.contains(&db),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(extra: &[(&str, &str)]) -> Props {
        let mut props: Props = [
            ("database.hostname", "db"),
            ("database.user", "u"),
            ("database.password", "p"),
            ("database.server.id", "5401"),
            ("topic.prefix", "t"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        props.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        props
    }

    /// Debezium's `store.only.captured.*.ddl` keys choose the tables a snapshot's schema change
    /// events cover: all by default; a value that is not a boolean is refused, naming the key.
    #[test]
    fn the_schema_events_cover_the_tables_debezium_s_store_only_keys_name() {
        let scope = |extra: &[(&str, &str)]| {
            MySqlConfig::from_props(&props(extra), "mysql").map(|c| c.schema_scope)
        };
        assert_eq!(scope(&[]).unwrap(), SchemaScope::AllTables);
        let tables = "schema.history.internal.store.only.captured.tables.ddl";
        let databases = "schema.history.internal.store.only.captured.databases.ddl";
        assert_eq!(
            scope(&[(tables, "true")]).unwrap(),
            SchemaScope::CapturedTables
        );
        assert_eq!(
            scope(&[(databases, "TRUE"), (tables, "false")]).unwrap(),
            SchemaScope::CapturedDatabases
        );
        assert_eq!(
            scope(&[(databases, "true"), (tables, "true")]).unwrap(),
            SchemaScope::CapturedTables
        );
        let error = scope(&[(tables, "yes")]).unwrap_err();
        assert!(error.to_string().contains(tables), "{error}");
    }

    /// Debezium's history class picks the file or the topic; without it the key that is set
    /// does, the file first; the topic's client settings come from its own keys.
    #[test]
    fn the_schema_history_is_the_file_or_the_topic_debezium_s_keys_name() {
        let history = |extra: &[(&str, &str)]| {
            MySqlConfig::from_props(&props(extra), "mysql").map(|c| c.history)
        };
        assert_eq!(history(&[]).unwrap(), HistoryConfig::Memory);
        let file = ("schema.history.internal.file.filename", "h.jsonl");
        let topic = ("schema.history.internal.kafka.topic", "schema-changes");
        let HistoryConfig::Topic {
            file: fallback,
            explicit: false,
            ..
        } = history(&[file, topic]).unwrap()
        else {
            panic!("the topic, the file where there is no Kafka")
        };
        assert_eq!(fallback, Some("h.jsonl".into()));
        assert_eq!(
            history(&[file, topic, ("schema.history.internal", FILE_HISTORY)]).unwrap(),
            HistoryConfig::File("h.jsonl".into())
        );
        let kafka = ("schema.history.internal", KAFKA_HISTORY);
        let HistoryConfig::Topic {
            topic: name,
            client,
            file: None,
            explicit: true,
        } = history(&[
            file,
            topic,
            kafka,
            ("schema.history.internal.kafka.bootstrap.servers", "k:9092"),
            ("schema.history.internal.producer.security.protocol", "SSL"),
            ("schema.history.internal.consumer.ssl.ca.location", "ca.pem"),
        ])
        .unwrap()
        else {
            panic!("the topic")
        };
        assert_eq!(name, "schema-changes");
        let client: Vec<(&str, &str)> = client
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            client,
            [
                ("bootstrap.servers", "k:9092"),
                ("consumer.ssl.ca.location", "ca.pem"),
                ("producer.security.protocol", "SSL")
            ]
        );
        let error = history(&[kafka]).unwrap_err().to_string();
        assert!(
            error.contains("needs schema.history.internal.kafka.topic"),
            "{error}"
        );
        let error = history(&[("schema.history.internal", "com.example.JdbcSchemaHistory")])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(FILE_HISTORY) && error.contains(KAFKA_HISTORY),
            "{error}"
        );
    }

    /// verify_ca trusts no name, so it needs a CA of the user's own: without a truststore it
    /// would take any public certificate.
    #[test]
    fn verify_ca_needs_a_truststore() {
        let error = MySqlConfig::from_props(&props(&[("database.ssl.mode", "verify_ca")]), "mysql")
            .map(|_| ())
            .expect_err("verify_ca without a truststore is refused")
            .to_string();
        assert!(error.contains("set database.ssl.truststore"), "{error}");
        assert!(
            MySqlConfig::from_props(&props(&[("database.ssl.mode", "verify_identity")]), "mysql")
                .is_ok()
        );
    }
}
