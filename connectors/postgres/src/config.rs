//! The Postgres connector's settings, under Debezium's key names and defaults (a subset so far:
//! keys not listed here are rejected rather than silently ignored).

use sluice_api::config::{
    Config, ConfigDef, ConfigKey, ConfigType, FieldError, Importance, Props, Validator,
};
use sluice_api::{Error, Result, Secret};

use sluice_debezium::EventOptions;
use sluice_debezium::filters::Filter;

use crate::types::{DecimalMode, TimePrecision, ValueModes};

/// The connector's config definition: its own keys, the event-shaping keys every Debezium
/// connector shares, and the documented keys that have no effect here.
pub fn config_def() -> ConfigDef {
    let def = postgres_keys()
        .merge(&sluice_debezium::config::event_keys())
        .merge(&crate::documented::documented_keys());
    sluice_debezium::config::pattern_prefixes(def)
}

fn postgres_keys() -> ConfigDef {
    use ConfigType::*;
    use Importance::*;
    ConfigDef::new()
        .key(ConfigKey::required("database.hostname", String, High, "Postgres host."))
        .key(ConfigKey::optional("database.port", Int, "5432", High, "Postgres port."))
        .key(ConfigKey::required("database.user", String, High, "User with the REPLICATION attribute (and SELECT for snapshots)."))
        .key(ConfigKey::optional("database.password", Password, "", High, "Password (trust/peer setups may leave it empty)."))
        .key(ConfigKey::required("database.dbname", String, High, "Database to capture."))
        .key(ConfigKey::optional("database.sslmode", String, "prefer", Medium,
            "disable: plain TCP; allow: plain TCP; prefer: TLS when the server offers it; require: TLS, the certificate unchecked; \
             verify-ca: TLS with a certificate signed by database.sslrootcert; verify-full: that, and naming database.hostname.")
            .validate_with(Validator::OneOf(crate::tls::SslMode::VALUES.to_vec())))
        .key(ConfigKey::optional("database.sslrootcert", String, "", Medium,
            "PEM file of the CA certificate(s) the server's certificate must lead to (verify-ca, verify-full); default ~/.postgresql/root.crt."))
        .key(ConfigKey::optional("database.sslcert", String, "", Medium,
            "PEM file of the client certificate, for pg_hba.conf's clientcert= or cert authentication."))
        .key(ConfigKey::optional("database.sslkey", String, "", Medium,
            "The client certificate's private key: PEM, or PKCS#8 DER (pgjdbc's .pk8)."))
        .key(ConfigKey::optional("database.sslpassword", Password, "", Medium,
            "Password of an encrypted database.sslkey (PKCS#8 with PBES2, as `openssl pkcs8 -topk8` writes)."))
        .key(ConfigKey::required("topic.prefix", String, High, "Logical server name: topics are <prefix>.<schema>.<table>.")
            .validate_with(Validator::NonEmpty))
        .key(ConfigKey::optional("plugin.name", String, "pgoutput", Medium, "Logical decoding plugin; only pgoutput.")
            .validate_with(Validator::OneOf(vec!["pgoutput"])))
        .key(ConfigKey::optional("slot.name", String, "debezium", Medium, "Replication slot, created when missing."))
        .key(ConfigKey::optional("publication.name", String, "dbz_publication", Medium, "Publication, created per publication.autocreate.mode."))
        .key(ConfigKey::optional("publication.autocreate.mode", String, "all_tables", Medium,
            "all_tables: FOR ALL TABLES; filtered: FOR the tables in table.include.list; disabled: must exist.")
            .validate_with(Validator::OneOf(vec!["all_tables", "filtered", "disabled"])))
        .key(ConfigKey::optional("schema.include.list", List, "", Medium, "Regular expressions matching the schema names to capture; empty: every schema."))
        .key(ConfigKey::optional("schema.exclude.list", List, "", Medium, "Regular expressions matching schema names not to capture (not with schema.include.list)."))
        .key(ConfigKey::optional("table.include.list", List, "", Medium, "Regular expressions matching the tables (schema.table) to capture; empty: every table in the publication."))
        .key(ConfigKey::optional("table.exclude.list", List, "", Medium, "Regular expressions matching tables (schema.table) not to capture (not with table.include.list)."))
        .key(ConfigKey::optional("column.include.list", List, "", Medium, "Regular expressions matching the columns (schema.table.column) to emit; empty: every column. Key columns are always emitted."))
        .key(ConfigKey::optional("column.exclude.list", List, "", Medium, "Regular expressions matching columns (schema.table.column) to leave out (not with column.include.list). Key columns are always emitted."))
        .key(ConfigKey::optional("snapshot.mode", String, "initial", Medium,
            "initial: snapshot when no snapshot has completed, then stream; always: snapshot at every start, then stream; \
             initial_only: snapshot when none has completed, never stream (no slot is kept); no_data (or never): stream only; \
             when_needed: like initial, and take a new snapshot instead of failing when the slot or its position is gone.")
            .validate_with(Validator::OneOf(vec!["initial", "always", "initial_only", "no_data", "never", "when_needed"])))
        .key(ConfigKey::optional("provide.transaction.metadata", Boolean, "false", Medium,
            "Send BEGIN/END records per transaction to <topic.prefix>.transaction and a transaction block (id, total_order, data_collection_order) in each change event."))
        .key(ConfigKey::optional("snapshot.max.threads", Int, "0", Medium,
            "Connections reading snapshot chunks at once; 0: one per CPU core (Debezium's default is 1).")
            .validate_with(Validator::Range { min: 0, max: 64 }))
        .key(ConfigKey::optional("snapshot.fetch.size", Int, "10240", Low,
            "Rows per snapshot chunk (and per cursor fetch for tables without a primary key).")
            .validate_with(Validator::Range { min: 1, max: i64::MAX }))
        .key(ConfigKey::optional("hstore.handling.mode", String, "json", Low,
            "hstore columns as a JSON string (json) or a map of strings (map).")
            .validate_with(Validator::OneOf(vec!["json", "map"])))
        .key(ConfigKey::optional("interval.handling.mode", String, "numeric", Low,
            "interval columns as microseconds (numeric, io.debezium.time.MicroDuration) or ISO 8601 strings \
             (string, io.debezium.time.Interval).")
            .validate_with(Validator::OneOf(vec!["numeric", "string"])))
        .key(ConfigKey::optional("decimal.handling.mode", String, "precise", Medium, "numeric as precise (Decimal), double or string.")
            .validate_with(Validator::OneOf(vec!["precise", "double", "string"])))
        .key(ConfigKey::optional("time.precision.mode", String, "adaptive", Medium,
            "date/time/timestamp as adaptive: Debezium's types by the column's precision (milliseconds up to 3 digits, else microseconds); \
             adaptive_time_microseconds: the same with time always in microseconds; connect: Kafka Connect's Date/Time/Timestamp (milliseconds).")
            .validate_with(Validator::OneOf(vec!["adaptive", "adaptive_time_microseconds", "connect"])))
        .key(ConfigKey::optional("errors.max.retries", Int, "-1", Low,
            "How often to try reconnecting after the connection to Postgres is lost (with backoff from 250 ms to 30 s); -1: without limit, 0: fail at once."))
        .key(ConfigKey::optional("max.batch.size", Int, "2048", Low, "Most records per poll. Small transactions are never split; a larger one goes out in parts of this size, \
             each ending with an offset that resumes before the transaction and skips what was sent (as Debezium's lsn_proc)."))
        .key(ConfigKey::optional("heartbeat.interval.ms", Int, "0", Medium,
            "While streaming, send a heartbeat record to <topic.heartbeat.prefix>.<topic.prefix> this often, carrying the position \
             decoded so far, so the stored offset and the slot move past WAL of tables that are not captured; 0: no heartbeats.")
            .validate_with(Validator::Range { min: 0, max: i64::from(i32::MAX) }))
        .key(ConfigKey::optional("topic.heartbeat.prefix", String, "__debezium-heartbeat", Low,
            "Heartbeat records go to <this>.<topic.prefix>.")
            .validate_with(Validator::NonEmpty))
        .key(ConfigKey::optional("heartbeat.action.query", String, "", Low,
            "A statement run on the database before each heartbeat (e.g. an update of a heartbeat table), so a quiet database \
             still makes WAL the slot can move past; empty: none."))
        .key(ConfigKey::optional("slot.drop.on.stop", Boolean, "false", Low, "Drop the slot when the task stops (for tests; loses the position)."))
        .key(ConfigKey::optional("slot.takeover", Boolean, "false", Low,
            "When the slot is held by another backend, terminate that backend and take the slot. For a task that \
             moved from a worker that died: Postgres keeps the dead worker's walsender, and the slot, until \
             wal_sender_timeout (60 s by default) passes; without this the task retries with backoff until then. \
             Only safe when the other holder is certainly gone (a sluice group stops a task before it starts it \
             elsewhere); needs superuser or pg_signal_backend."))
}

/// The schema, table and column filters.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    schemas: Filter,
    tables: Filter,
    columns: Filter,
}

impl Filters {
    fn new(config: &Config) -> Result<Filters> {
        Ok(Filters {
            schemas: Filter::new(config, "schema")?,
            tables: Filter::new(config, "table")?,
            columns: Filter::new(config, "column")?,
        })
    }

    /// Whether changes of `schema.table` are captured.
    pub fn captures_table(&self, schema: &str, table: &str) -> bool {
        self.schemas.allows(schema) && self.tables.allows(&format!("{schema}.{table}"))
    }

    /// Whether `column` of `schema.table` is emitted.
    pub fn emits_column(&self, schema: &str, table: &str, column: &str) -> bool {
        self.columns.is_empty() || self.columns.allows(&format!("{schema}.{table}.{column}"))
    }

    /// Whether any table or schema filter is set (publication.autocreate.mode=filtered needs one).
    pub fn filters_tables(&self) -> bool {
        !self.schemas.is_empty() || !self.tables.is_empty()
    }
}

/// `snapshot.mode`, as Debezium defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotMode {
    Initial,
    Always,
    InitialOnly,
    NoData,
    WhenNeeded,
}

impl SnapshotMode {
    /// Whether to read a snapshot at start, given whether one completed before and whether
    /// the slot still exists.
    pub fn snapshot_now(self, completed_before: bool, slot_exists: bool) -> bool {
        match self {
            SnapshotMode::Initial | SnapshotMode::InitialOnly => !completed_before,
            SnapshotMode::Always => true,
            SnapshotMode::NoData => false,
            SnapshotMode::WhenNeeded => !completed_before || !slot_exists,
        }
    }
}

/// Checks across keys: an include list beside its exclude list, invalid regular expressions.
pub fn validate(props: &Props) -> Vec<FieldError> {
    let Ok(config) = Config::parse_own(config_def(), props) else {
        return Vec::new();
    };
    ["schema", "table", "column"]
        .into_iter()
        .filter_map(|kind| {
            Filter::new(&config, kind)
                .err()
                .map(|e| FieldError::new(format!("{kind}.include.list"), e.message().to_owned()))
        })
        .collect()
}

/// Parsed settings. `{:?}` is safe to log: the password prints as `[hidden]`.
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// `database.password`.
    pub password: Secret,
    pub dbname: String,
    /// `database.sslmode` and the certificate files.
    pub tls: crate::tls::TlsSettings,
    pub topic_prefix: String,
    pub slot: String,
    pub publication: String,
    pub autocreate: String,
    pub filters: Filters,
    pub snapshot: SnapshotMode,
    pub tombstones: bool,
    pub transaction_metadata: bool,
    pub decimals: DecimalMode,
    pub time_precision: TimePrecision,
    pub max_batch: usize,
    pub drop_slot_on_stop: bool,
    /// `slot.takeover`: terminate another backend holding the slot.
    pub slot_takeover: bool,
    pub max_retries: i64,
    pub snapshot_max_threads: usize,
    pub snapshot_fetch_size: usize,
    /// `heartbeat.interval.ms`; `None` when 0.
    pub heartbeat_interval: Option<std::time::Duration>,
    pub heartbeat_topic_prefix: String,
    pub heartbeat_action_query: Option<String>,
    /// The event-shaping keys Debezium connectors share.
    pub events: EventOptions,
    /// `hstore.handling.mode=map`.
    pub hstore_map: bool,
    /// `interval.handling.mode=string`.
    pub interval_string: bool,
    /// The task's number (for the `__debezium.context.taskId` header); 0 until the task sets it.
    pub task_id: u32,
}

impl PostgresConfig {
    /// Reads the connector's own keys (the worker checked the common ones).
    pub fn from_props(props: &Props) -> Result<PostgresConfig> {
        let config = Config::parse_own(config_def(), props)?;
        let port = config.i64("database.port")?;
        Ok(PostgresConfig {
            host: config.string("database.hostname")?,
            port: u16::try_from(port)
                .map_err(|_| Error::config(format!("`database.port={port}` is not a port")))?,
            user: config.string("database.user")?,
            password: config.secret("database.password")?,
            dbname: config.string("database.dbname")?,
            tls: crate::tls::TlsSettings::from_config(&config)?,
            topic_prefix: config.string("topic.prefix")?,
            slot: config.string("slot.name")?,
            publication: config.string("publication.name")?,
            autocreate: config.string("publication.autocreate.mode")?,
            filters: Filters::new(&config)?,
            snapshot: match config.string("snapshot.mode")?.as_str() {
                "always" => SnapshotMode::Always,
                "initial_only" => SnapshotMode::InitialOnly,
                "no_data" | "never" => SnapshotMode::NoData,
                "when_needed" => SnapshotMode::WhenNeeded,
                _ => SnapshotMode::Initial,
            },
            tombstones: config.bool("tombstones.on.delete")?,
            transaction_metadata: config.bool("provide.transaction.metadata")?,
            decimals: match config.string("decimal.handling.mode")?.as_str() {
                "double" => DecimalMode::Double,
                "string" => DecimalMode::String,
                _ => DecimalMode::Precise,
            },
            time_precision: match config.string("time.precision.mode")?.as_str() {
                "adaptive_time_microseconds" => TimePrecision::AdaptiveTimeMicroseconds,
                "connect" => TimePrecision::Connect,
                _ => TimePrecision::Adaptive,
            },
            max_batch: usize::try_from(config.i64("max.batch.size")?)
                .unwrap_or(2048)
                .max(1),
            drop_slot_on_stop: config.bool("slot.drop.on.stop")?,
            slot_takeover: config.bool("slot.takeover")?,
            max_retries: config.i64("errors.max.retries")?,
            snapshot_max_threads: usize::try_from(config.i64("snapshot.max.threads")?).unwrap_or(0),
            snapshot_fetch_size: usize::try_from(config.i64("snapshot.fetch.size")?)
                .unwrap_or(10240)
                .max(1),
            heartbeat_interval: u64::try_from(config.i64("heartbeat.interval.ms")?)
                .ok()
                .filter(|ms| *ms > 0)
                .map(std::time::Duration::from_millis),
            heartbeat_topic_prefix: config.string("topic.heartbeat.prefix")?,
            heartbeat_action_query: Some(config.string("heartbeat.action.query")?)
                .filter(|query| !query.trim().is_empty()),
            events: EventOptions::new(&config, props)?,
            hstore_map: config
                .string("hstore.handling.mode")?
                .eq_ignore_ascii_case("map"),
            interval_string: config
                .string("interval.handling.mode")?
                .eq_ignore_ascii_case("string"),
            task_id: 0,
        })
    }

    /// How column values are mapped (`decimal.handling.mode`, `time.precision.mode`).
    pub fn value_modes(&self) -> ValueModes {
        ValueModes {
            decimals: self.decimals,
            time: self.time_precision,
            hstore_map: self.hstore_map,
            interval_string: self.interval_string,
            binary: self.events.binary,
        }
    }

    /// How many connections read snapshot chunks at once.
    pub fn snapshot_threads(&self) -> usize {
        match self.snapshot_max_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// A libpq-style connection string for tokio-postgres. It holds the password: never log
    /// it.
    pub fn connection_string(&self) -> String {
        let quote = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
        format!(
            "host={} port={} user={} password={} dbname={} options={} sslmode={} application_name=sluice",
            quote(&self.host),
            self.port,
            quote(&self.user),
            quote(self.password.expose()),
            quote(&self.dbname),
            quote(SESSION_OPTIONS),
            crate::tls::MakeRustlsConnect::tokio_postgres_mode(self.tls.mode)
        )
    }
}

/// Session settings that make text values parse the same way everywhere.
pub const SESSION_OPTIONS: &str =
    "-c datestyle=ISO -c timezone=UTC -c intervalstyle=iso_8601 -c extra_float_digits=3";

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_api::config::props;

    #[test]
    fn debug_of_a_parsed_config_hides_the_password() {
        let config = PostgresConfig::from_props(&props(&[
            ("database.hostname", "db.internal"),
            ("database.user", "replicator"),
            ("database.password", "pg-Pa55word"),
            ("database.dbname", "inventory"),
            ("topic.prefix", "dbserver1"),
        ]))
        .unwrap();
        for shown in [format!("{config:?}"), format!("{config:#?}")] {
            assert!(!shown.contains("pg-Pa55word"), "{shown}");
            assert!(
                shown.contains("[hidden]") && shown.contains("db.internal"),
                "{shown}"
            );
        }
        assert_eq!(config.password.expose(), "pg-Pa55word");
        assert!(
            config
                .connection_string()
                .contains("password='pg-Pa55word'")
        );
    }
}
