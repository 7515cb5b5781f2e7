//! Debezium fidelity: the `customers` example of Debezium's PostgreSQL connector documentation
//! (and a table of common types) run through sluice on the Kafka transport with JsonConverter
//! `schemas.enable=true`, read back from the topics with a plain consumer, and compared field
//! by field with the events Debezium documents — key, value schema, payload and headers.
//!
//! The expected events below are data, each citing the section of
//! `documentation/modules/ROOT/pages/connectors/postgresql.adoc` (Debezium 3.3) it comes from.
//! Where that documentation contradicts what Debezium itself emits, the test follows the
//! behaviour (read from Debezium's source) and says so:
//! * the examples show `source.snapshot` as a boolean and no `source.sequence`; Debezium emits
//!   the `io.debezium.data.Enum` string and `sequence`;
//! * the create example names the value schema `….inventory.customers.Value` for a table in
//!   `public`; the names follow the schema, `PostgreSQL_server.public.customers.Value`;
//! * the key example writes `"INT32"` and `"optional": "false"` as strings, and no default;
//!   JsonConverter writes `"int32"`, `false`, and the serial column's default `0`;
//! * the update example shows `before: {"id": 1}` under `REPLICA IDENTITY DEFAULT`; with
//!   pgoutput an update that keeps its key carries no old tuple, so `before` is null;
//! * the delete example shows `before: {"id": 1}`; Debezium fills the `NOT NULL` columns the
//!   old key tuple lacks with their default, else the type's empty value (`""`).

mod support;

use std::path::Path;

use serde_json::{Value as Json, json};
use support::kafka::{Broker, Consumed};
use support::postgres::Cluster;
use support::{Worker, all_tasks};

/// Every key Debezium's PostgreSQL connector documents, at its documented default (keys with
/// no default left out; `plugin.name` is `pgoutput`, the documented default `decoderbufs`
/// being a server plug-in sluice does not read, and `snapshot.max.threads` Debezium's 1).
const DOCUMENTED_DEFAULTS: &[(&str, &str)] = &[
    ("tasks.max", "1"),
    ("plugin.name", "pgoutput"),
    ("slot.name", "debezium"),
    ("slot.drop.on.stop", "false"),
    ("slot.failover", "false"),
    ("offset.mismatch.strategy", "no_validation"),
    ("publication.name", "dbz_publication"),
    ("database.port", "5432"),
    ("skip.messages.without.change", "false"),
    ("time.precision.mode", "adaptive"),
    ("decimal.handling.mode", "precise"),
    ("hstore.handling.mode", "json"),
    ("interval.handling.mode", "numeric"),
    ("database.sslmode", "prefer"),
    ("database.tcpKeepAlive", "true"),
    ("tombstones.on.delete", "true"),
    ("message.key.columns", ""),
    ("publication.autocreate.mode", "all_tables"),
    ("replica.identity.autoset.values", ""),
    ("binary.handling.mode", "bytes"),
    ("schema.name.adjustment.mode", "none"),
    ("field.name.adjustment.mode", "none"),
    ("money.fraction.digits", "2"),
    ("snapshot.isolation.mode", "serializable"),
    ("snapshot.mode", "initial"),
    ("snapshot.mode.configuration.based.snapshot.data", "false"),
    ("snapshot.mode.configuration.based.snapshot.schema", "false"),
    ("snapshot.mode.configuration.based.start.stream", "false"),
    (
        "snapshot.mode.configuration.based.snapshot.on.schema.error",
        "false",
    ),
    (
        "snapshot.mode.configuration.based.snapshot.on.data.error",
        "false",
    ),
    ("snapshot.locking.mode", "none"),
    ("snapshot.query.mode", "select_all"),
    ("snapshot.lock.timeout.ms", "10000"),
    ("event.processing.failure.handling.mode", "fail"),
    ("max.batch.size", "2048"),
    ("max.queue.size", "8192"),
    ("max.queue.size.in.bytes", "0"),
    ("poll.interval.ms", "500"),
    ("poll.dispatch.interval.ms", "0"),
    ("include.unknown.datatypes", "false"),
    ("status.update.interval.ms", "10000"),
    ("heartbeat.interval.ms", "0"),
    ("schema.refresh.mode", "columns_diff"),
    ("statistics.metrics.enabled", "true"),
    ("streaming.delay.ms", "0"),
    ("snapshot.fetch.size", "10240"),
    ("slot.max.retries", "6"),
    ("slot.retry.delay.ms", "10000"),
    (
        "unavailable.value.placeholder",
        "__debezium_unavailable_value",
    ),
    ("provide.transaction.metadata", "false"),
    ("publish.via.partition.root", "false"),
    ("flush.lsn.source", "true"),
    ("lsn.flush.mode", "connector"),
    ("retriable.restart.connector.wait.ms", "10000"),
    ("skipped.operations", "t"),
    ("signal.enabled.channels", "source"),
    ("incremental.snapshot.chunk.size", "1024"),
    (
        "incremental.snapshot.watermarking.strategy",
        "insert_insert",
    ),
    ("read.only", "false"),
    ("xmin.fetch.interval.ms", "0"),
    (
        "topic.naming.strategy",
        "io.debezium.schema.SchemaTopicNamingStrategy",
    ),
    ("topic.delimiter", "."),
    ("topic.cache.size", "10000"),
    ("topic.heartbeat.prefix", "__debezium-heartbeat"),
    ("topic.transaction", "transaction"),
    ("snapshot.max.threads", "1"),
    ("legacy.snapshot.max.threads", "false"),
    ("errors.max.retries", "-1"),
    ("database.query.timeout.ms", "600000"),
    ("guardrail.collections.max", "0"),
    ("guardrail.collections.limit.action", "warn"),
    ("extended.headers.enabled", "true"),
    // Kafka Connect's connector-level keys.
    ("config.action.reload", "restart"),
    ("errors.tolerance", "none"),
    ("errors.log.enable", "false"),
    ("exactly.once.support", "requested"),
    ("transaction.boundary", "poll"),
    ("tasks.max.enforce", "true"),
    ("topic.creation.default.replication.factor", "-1"),
    ("topic.creation.default.partitions", "-1"),
];

const PREFIX: &str = "PostgreSQL_server";

/// "Change event keys": the customers table, verbatim.
const CUSTOMERS_DDL: &str = "CREATE TABLE customers (
  id SERIAL,
  first_name VARCHAR(255) NOT NULL,
  last_name VARCHAR(255) NOT NULL,
  email VARCHAR(255) NOT NULL,
  PRIMARY KEY(id)
)";

/// A table of common types with `NOT NULL` columns and defaults (literals, a serial, a
/// function), and a `tsquery` column Debezium has no mapping for.
const TYPES_DDL: &str = "CREATE TABLE types (
  id SERIAL PRIMARY KEY,
  status VARCHAR(20) NOT NULL DEFAULT 'new',
  rank INT NOT NULL DEFAULT 7,
  note TEXT,
  amount NUMERIC(10,2) NOT NULL DEFAULT 0,
  ratio NUMERIC,
  created TIMESTAMPTZ NOT NULL DEFAULT now(),
  flag BOOLEAN NOT NULL DEFAULT true,
  query TSQUERY,
  category TEXT DEFAULT 'misc'
)";

fn field(schema: Json, name: &str) -> Json {
    let mut schema = schema;
    schema["field"] = json!(name);
    schema
}

fn int32(optional: bool) -> Json {
    json!({"type": "int32", "optional": optional})
}

fn string(optional: bool) -> Json {
    json!({"type": "string", "optional": optional})
}

fn int64(optional: bool) -> Json {
    json!({"type": "int64", "optional": optional})
}

/// "Change event keys", as JsonConverter writes it (see the module comment on the example's
/// string-typed fields), with the serial's default 0 (PostgresDefaultValueConverter).
fn customers_key_schema() -> Json {
    json!({
        "type": "struct",
        "fields": [{"type": "int32", "optional": false, "default": 0, "field": "id"}],
        "optional": false,
        "name": format!("{PREFIX}.public.customers.Key"),
    })
}

/// "_create_ events": the `before`/`after` row schema: every column `NOT NULL`, so required.
fn customers_row_schema(name: &str) -> Json {
    json!({
        "type": "struct",
        "fields": [
            {"type": "int32", "optional": false, "default": 0, "field": "id"},
            field(string(false), "first_name"),
            field(string(false), "last_name"),
            field(string(false), "email"),
        ],
        "optional": true,
        "name": format!("{PREFIX}.public.customers.Value"),
        "field": name,
    })
}

/// `io.debezium.connector.postgresql.Source` as Debezium 3.3 builds it (SchemaFactory
/// `sourceInfoSchemaBuilder`, version 1; PostgresSourceInfoStructMaker): the create example's
/// order differs (it lists `ts_us`/`ts_ns` after `ts_ms`, a boolean `snapshot`, no `sequence`).
fn source_schema() -> Json {
    json!({
        "type": "struct",
        "fields": [
            field(string(false), "version"),
            field(string(false), "connector"),
            field(string(false), "name"),
            field(int64(false), "ts_ms"),
            {
                "type": "string", "optional": true, "name": "io.debezium.data.Enum", "version": 1,
                "parameters": {"allowed": "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},
                "default": "false", "field": "snapshot",
            },
            field(string(false), "db"),
            field(string(true), "sequence"),
            field(int64(true), "ts_us"),
            field(int64(true), "ts_ns"),
            field(string(false), "schema"),
            field(string(false), "table"),
            field(int64(true), "txId"),
            field(int64(true), "lsn"),
            field(int64(true), "xmin"),
        ],
        "optional": false,
        "name": "io.debezium.connector.postgresql.Source",
        "version": 1,
        "field": "source",
    })
}

/// "_create_ events": the envelope schema (version 2, with the `transaction` block Debezium
/// adds after `source`, which the example leaves out).
fn envelope_schema(row: fn(&str) -> Json, table: &str) -> Json {
    json!({
        "type": "struct",
        "fields": [
            row("before"),
            row("after"),
            source_schema(),
            {
                "type": "struct",
                "fields": [
                    field(string(false), "id"),
                    field(int64(false), "total_order"),
                    field(int64(false), "data_collection_order"),
                ],
                "optional": true, "name": "event.block", "version": 1, "field": "transaction",
            },
            field(string(false), "op"),
            field(int64(true), "ts_ms"),
            field(int64(true), "ts_us"),
            field(int64(true), "ts_ns"),
        ],
        "optional": false,
        "name": format!("{PREFIX}.public.{table}.Envelope"),
        "version": 2,
    })
}

/// The types table's row schema: `NOT NULL` columns required, defaults as Debezium reads them
/// (a literal, a number, a serial's 0, `now()`'s epoch placeholder with six fraction digits,
/// numeric 0 at scale 2 as Decimal bytes), `VariableScaleDecimal` with its doc, and the
/// `tsquery` column left out (`include.unknown.datatypes=false`).
fn types_row_schema(name: &str) -> Json {
    json!({
        "type": "struct",
        "fields": [
            {"type": "int32", "optional": false, "default": 0, "field": "id"},
            {"type": "string", "optional": false, "default": "new", "field": "status"},
            {"type": "int32", "optional": false, "default": 7, "field": "rank"},
            field(string(true), "note"),
            {
                "type": "bytes", "optional": false, "name": "org.apache.kafka.connect.data.Decimal",
                "version": 1, "parameters": {"scale": "2", "connect.decimal.precision": "10"},
                "default": "AA==", "field": "amount",
            },
            {
                "type": "struct",
                "fields": [field(int32(false), "scale"), {"type": "bytes", "optional": false, "field": "value"}],
                "optional": true, "name": "io.debezium.data.VariableScaleDecimal", "version": 1,
                "doc": "Variable scaled decimal", "field": "ratio",
            },
            {
                "type": "string", "optional": false, "name": "io.debezium.time.ZonedTimestamp",
                "version": 1, "default": "1970-01-01T00:00:00.000000Z", "field": "created",
            },
            {"type": "boolean", "optional": false, "default": true, "field": "flag"},
            {"type": "string", "optional": true, "default": "misc", "field": "category"},
        ],
        "optional": true,
        "name": format!("{PREFIX}.public.types.Value"),
        "field": name,
    })
}

/// One event as read from Kafka: key and value (JsonConverter envelopes) and headers.
struct Event {
    key: Json,
    value: Json,
    headers: Vec<(String, Option<String>)>,
}

impl Event {
    fn of(consumed: &Consumed) -> Event {
        let parse = |bytes: &Option<Vec<u8>>| {
            bytes
                .as_deref()
                .map_or(Json::Null, |b| serde_json::from_slice(b).unwrap())
        };
        Event {
            key: parse(&consumed.key),
            value: parse(&consumed.value),
            headers: consumed.headers.clone(),
        }
    }

    fn payload(&self) -> &Json {
        &self.value["payload"]
    }

    fn op(&self) -> Option<&str> {
        self.payload()["op"].as_str()
    }

    fn header(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_deref())
    }
}

/// Checks what every change event shares: the `source` block's fixed fields and the
/// timestamps' relations ("_create_ events", `source` and `ts_ms` descriptions), the
/// extended headers, and that the value schema is `expected_schema`.
fn check_common(event: &Event, table: &str, snapshot: &str, expected_schema: &Json) {
    assert_eq!(
        &event.value["schema"], expected_schema,
        "value schema of {table}"
    );
    let payload = event.payload();
    let source = &payload["source"];
    let version = source["version"].as_str().unwrap();
    assert!(
        version.starts_with("3.3.0.sluice_"),
        "source.version is Debezium's X.Y.Z.Qualifier form: {version}"
    );
    assert_eq!(source["connector"], "postgresql");
    assert_eq!(source["name"], PREFIX);
    assert_eq!(source["db"], "postgres");
    assert_eq!(source["schema"], "public");
    assert_eq!(source["table"], table);
    assert_eq!(source["snapshot"], snapshot, "{payload}");
    assert!(source["xmin"].is_null());
    assert!(source["txId"].as_i64().unwrap() > 0, "txId: {payload}");
    let lsn = source["lsn"].as_i64().unwrap();
    let sequence: Vec<Option<String>> =
        serde_json::from_str(source["sequence"].as_str().unwrap()).unwrap();
    assert_eq!(sequence.len(), 2);
    if snapshot == "false" {
        assert_eq!(
            sequence[1],
            Some(lsn.to_string()),
            "sequence ends with the event's LSN"
        );
    }
    let (ts_ms, ts_us, ts_ns) = (
        source["ts_ms"].as_i64().unwrap(),
        source["ts_us"].as_i64().unwrap(),
        source["ts_ns"].as_i64().unwrap(),
    );
    assert_eq!((ts_us / 1000, ts_ns / 1000), (ts_ms, ts_us));
    // "ts_ms … the time at which the connector processed the event"; source.ts_ms is when
    // the change was made in the database: the difference is the lag.
    let processed = payload["ts_ms"].as_i64().unwrap();
    assert!(
        processed >= ts_ms,
        "processing time {processed} before commit {ts_ms}"
    );
    assert_eq!(payload["ts_us"].as_i64().unwrap() / 1000, processed);
    assert!(payload["transaction"].is_null());
    assert_eq!(
        event.header("__debezium.context.connectorLogicalName"),
        Some(PREFIX)
    );
    assert_eq!(event.header("__debezium.context.taskId"), Some("0"));
    assert_eq!(
        event.header("__debezium.context.connectorName"),
        Some("postgresql")
    );
}

fn customers_key(id: i64) -> Json {
    json!({"schema": customers_key_schema(), "payload": {"id": id}})
}

fn write_worker(dir: &Path) {
    support::write_json_worker(
        dir,
        "key.converter.schemas.enable=true\nvalue.converter.schemas.enable=true\n",
    );
}

#[test]
fn the_documented_customers_events_and_a_types_table_match_debezium_field_by_field() {
    let pg = Cluster::start();
    let broker = Broker::start();
    for topic in ["customers", "types"] {
        broker.create_topic(&format!("{PREFIX}.public.{topic}"), 1);
    }
    pg.sql(CUSTOMERS_DDL);
    pg.sql(TYPES_DDL);
    pg.sql(
        "insert into customers (first_name, last_name, email) values \
         ('Anne', 'Kretchmar', 'annek@noanswer.org'), ('Sally', 'Thomas', 'sally.thomas@acme.com'); \
         insert into types (note, ratio, query, category) values ('n', 3.14159, 'fat & cat', null)",
    );
    let dir = tempfile::tempdir().unwrap();
    write_worker(dir.path());
    std::fs::write(
        dir.path().join("customers.json"),
        json!({"name": "customers-connector", "config": {
            "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
            "database.hostname": "127.0.0.1", "database.port": pg.port.to_string(),
            "database.user": "postgres", "database.password": "", "database.dbname": "postgres",
            "topic.prefix": PREFIX, "plugin.name": "pgoutput",
            "table.include.list": "public.customers,public.types",
        }})
        .to_string(),
    )
    .unwrap();
    let env = [("SLUICE__BOOTSTRAP_SERVERS", broker.addr.as_str())];
    let worker = Worker::start_with_env(dir.path(), &["worker.properties", "customers.json"], &env);
    let customers = format!("{PREFIX}.public.customers");
    let types = format!("{PREFIX}.public.types");

    // The snapshot: customers (2 rows) then types (1 row), marked as Debezium marks them.
    let snapshot: Vec<Event> = broker.read(&customers, 2).iter().map(Event::of).collect();
    let row_schema = envelope_schema(customers_row_schema, "customers");
    for (event, (id, marker)) in snapshot
        .iter()
        .zip([(1, "first"), (2, "last_in_data_collection")])
    {
        check_common(event, "customers", marker, &row_schema);
        assert_eq!(event.key, customers_key(id));
        assert_eq!(event.op(), Some("r"));
    }
    assert_eq!(
        snapshot[0].payload()["after"],
        json!({"id": 1, "first_name": "Anne", "last_name": "Kretchmar", "email": "annek@noanswer.org"})
    );
    assert_eq!(
        snapshot[0].payload()["source"]["txId"],
        snapshot[1].payload()["source"]["txId"],
        "snapshot records carry the snapshot transaction's id"
    );
    let types_events: Vec<Event> = broker.read(&types, 1).iter().map(Event::of).collect();
    let types_schema = envelope_schema(types_row_schema, "types");
    check_common(&types_events[0], "types", "last", &types_schema);
    let after = &types_events[0].payload()["after"];
    assert_eq!(after["status"], "new");
    assert_eq!(after["rank"], 7);
    assert!(
        after.get("query").is_none(),
        "the tsquery column is left out: {after}"
    );
    let created = after["created"].as_str().unwrap();
    assert!(
        created.len() == "2024-01-01T00:00:00.000000Z".len() && created.ends_with('Z'),
        "timestamptz with six fraction digits: {created}"
    );

    // "_create_ events", "_update_ events", "_delete_ events", "Tombstone events" under
    // REPLICA IDENTITY DEFAULT.
    pg.sql("insert into customers (first_name, last_name, email) values ('Edward', 'Walker', 'ed@walker.com')");
    pg.sql("update customers set first_name = 'Anne Marie' where id = 1");
    pg.sql("delete from customers where id = 3");
    // "Primary key updates": a delete (and tombstone) under the old key with
    // __debezium.newkey, then a create under the new key with __debezium.oldkey.
    pg.sql("update customers set id = 10 where id = 2");
    // A truncate is skipped (skipped.operations defaults to `t`); the insert after it shows
    // the stream went past it.
    pg.sql("truncate types");
    pg.sql("insert into types (status) values ('after-truncate')");
    // REPLICA IDENTITY FULL: before-images of every column.
    pg.sql("alter table customers replica identity full");
    pg.sql("update customers set email = 'anne@noanswer.org' where id = 1");
    pg.sql("delete from customers where id = 1");

    let all: Vec<Event> = broker
        .read(&customers, 2 + 10)
        .iter()
        .map(Event::of)
        .collect();
    let stream = &all[2..];
    let ops: Vec<Option<&str>> = stream.iter().map(Event::op).collect();
    assert_eq!(
        ops,
        [
            Some("c"),
            Some("u"),
            Some("d"),
            None,
            Some("d"),
            None,
            Some("c"),
            Some("u"),
            Some("d"),
            None
        ]
    );
    let [
        create,
        update,
        delete,
        tombstone,
        pk_delete,
        pk_tombstone,
        pk_create,
        full_update,
        full_delete,
        full_tombstone,
    ] = stream
    else {
        panic!("{} stream events", stream.len())
    };
    // _create_
    check_common(create, "customers", "false", &row_schema);
    assert_eq!(create.key, customers_key(3));
    assert_eq!(create.payload()["before"], Json::Null);
    assert_eq!(
        create.payload()["after"],
        json!({"id": 3, "first_name": "Edward", "last_name": "Walker", "email": "ed@walker.com"})
    );
    // _update_ (pgoutput sends no old tuple when the key stays: before is null)
    check_common(update, "customers", "false", &row_schema);
    assert_eq!(update.key, customers_key(1));
    assert_eq!(update.payload()["before"], Json::Null);
    assert_eq!(update.payload()["after"]["first_name"], "Anne Marie");
    // _delete_: the key tuple, the NOT NULL columns filled with the empty string
    check_common(delete, "customers", "false", &row_schema);
    assert_eq!(delete.key, customers_key(3));
    assert_eq!(
        delete.payload()["before"],
        json!({"id": 3, "first_name": "", "last_name": "", "email": ""})
    );
    assert_eq!(delete.payload()["after"], Json::Null);
    // Tombstone: same key, null value, the context headers too
    assert_eq!(tombstone.key, customers_key(3));
    assert_eq!(tombstone.value, Json::Null);
    assert_eq!(tombstone.header("__debezium.context.taskId"), Some("0"));
    // Primary key updates
    check_common(pk_delete, "customers", "false", &row_schema);
    assert_eq!(pk_delete.key, customers_key(2));
    assert_eq!(pk_delete.header("__debezium.newkey"), Some(r#"{"id":10}"#));
    assert_eq!(pk_tombstone.key, customers_key(2));
    assert_eq!(
        pk_tombstone.header("__debezium.newkey"),
        Some(r#"{"id":10}"#)
    );
    check_common(pk_create, "customers", "false", &row_schema);
    assert_eq!(pk_create.key, customers_key(10));
    assert_eq!(pk_create.header("__debezium.oldkey"), Some(r#"{"id":2}"#));
    assert_eq!(
        pk_create.payload()["after"],
        json!({"id": 10, "first_name": "Sally", "last_name": "Thomas", "email": "sally.thomas@acme.com"})
    );
    assert_eq!(
        pk_delete.headers[0].0, "__debezium.newkey",
        "the key header comes first"
    );
    // REPLICA IDENTITY FULL
    check_common(full_update, "customers", "false", &row_schema);
    assert_eq!(
        full_update.payload()["before"],
        json!({"id": 1, "first_name": "Anne Marie", "last_name": "Kretchmar", "email": "annek@noanswer.org"})
    );
    check_common(full_delete, "customers", "false", &row_schema);
    assert_eq!(full_delete.key, customers_key(1));
    assert_eq!(
        full_delete.payload()["before"],
        json!({"id": 1, "first_name": "Anne Marie", "last_name": "Kretchmar", "email": "anne@noanswer.org"})
    );
    assert_eq!(full_tombstone.value, Json::Null);

    // The truncate was skipped: the types topic holds the snapshot row, then the insert.
    let types_events: Vec<Event> = broker
        .read_until(&types, "the insert after the truncate", |read| {
            read.iter().any(|c| c.text().contains("after-truncate"))
        })
        .iter()
        .map(Event::of)
        .collect();
    let ops: Vec<Option<&str>> = types_events.iter().map(Event::op).collect();
    assert_eq!(ops, [Some("r"), Some("c")], "no truncate event");
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// A Debezium connector JSON holding every documented key at its default runs unchanged (the
/// keys sluice has no use for named once in the log with why); one misspelt key is refused,
/// naming it and the key meant; a documented key whose non-default value sluice would have
/// to ignore (changing the data) is refused saying why.
#[test]
fn a_connector_json_with_every_documented_key_at_its_default_runs_and_a_misspelt_key_fails() {
    let pg = Cluster::start();
    pg.sql("create table items (id int primary key, name text)");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("worker.properties"),
        "offset.storage.file.filename=connect.offsets\noffset.flush.interval.ms=200\n",
    )
    .unwrap();
    let worker = Worker::start(dir.path(), &["worker.properties"]);
    let mut config = json!({
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "database.hostname": "127.0.0.1", "database.port": pg.port.to_string(),
        "database.user": "postgres", "database.password": "", "database.dbname": "postgres",
        "topic.prefix": PREFIX, "table.include.list": "public.items",
        "column.mask.with.5.chars": "public.items.name",
        "column.truncate.to.10.chars": "", "column.propagate.source.type": "",
        "datatype.propagate.source.type": "",
    });
    for (key, value) in DOCUMENTED_DEFAULTS {
        if *key != "database.port" {
            config[*key] = json!(value);
        }
    }
    let (code, body) = worker.put("/connectors/everything/config", Some(&config));
    assert!(code == 201 || code == 200, "{code} {body}");
    worker.wait_for_status("everything", "the connector with every key runs", |s| {
        s["connector"]["state"] == "RUNNING" && all_tasks(s, "RUNNING")
    });
    let logs = worker.logs();
    for key in [
        "max.queue.size",
        "snapshot.locking.mode",
        "transaction.boundary",
    ] {
        assert!(
            logs.contains(&format!("`{key}` has no effect in sluice")),
            "{key} is named at start:\n{logs}"
        );
    }

    let mut misspelt = config.clone();
    misspelt
        .as_object_mut()
        .unwrap()
        .remove("skipped.operations");
    misspelt["skiped.operations"] = json!("t");
    let (code, body) = worker.put("/connectors/misspelt/config", Some(&misspelt));
    assert_eq!(code, 400, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("skiped.operations")
            && message.contains("did you mean `skipped.operations`"),
        "{message}"
    );

    let mut unsupported = config.clone();
    unsupported["snapshot.select.statement.overrides"] = json!("public.items");
    let (code, body) = worker.put("/connectors/overrides/config", Some(&unsupported));
    assert_eq!(code, 400, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("snapshot.select.statement.overrides")
            && message.contains("not supported by sluice"),
        "{message}"
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}
