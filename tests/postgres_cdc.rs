//! Postgres CDC end to end on a real PostgreSQL 15 (started per test by scripts/pg-start.sh):
//! Debezium-config connector → embedded direct pipeline → JSON-lines file sink, whose output
//! is replayed to rebuild the table and compared with the table itself.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value as Json, json};
use support::postgres::Cluster;
use support::{Worker, lines, wait_until};

fn write_configs(dir: &Path, pg: &Cluster) -> Vec<String> {
    write_configs_with(dir, pg, json!({}))
}

/// The worker, the Debezium-style connector (with `extra` keys merged in) and the JSON oracle
/// sink.
fn write_configs_with(dir: &Path, pg: &Cluster, extra: Json) -> Vec<String> {
    let connector = json!({
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "database.hostname": "127.0.0.1", "database.port": pg.port.to_string(),
        "database.user": "postgres", "database.password": "", "database.dbname": "postgres",
        "topic.prefix": "dbserver1", "table.include.list": "public.accounts",
    });
    support::write_cdc_configs(dir, Some(connector), &extra)
}

/// Rebuilds `id -> row` from the change events (snapshot reads, creates, updates, deletes,
/// truncates; tombstones carry nothing). Also returns the source LSN of every event, so
/// duplicates can be told apart from distinct changes.
fn replay(events: &[String]) -> (BTreeMap<i64, Json>, Vec<(i64, String)>) {
    let mut table = BTreeMap::new();
    let mut seen = Vec::new();
    for line in events {
        let event: Json = serde_json::from_str(line).unwrap();
        let value = &event["value"];
        if value.is_null() {
            continue;
        }
        let lsn = value["source"]["lsn"].as_i64().unwrap_or_default();
        match value["op"].as_str().unwrap() {
            "r" | "c" | "u" => {
                let after = value["after"].clone();
                seen.push((lsn, format!("{}:{}", value["op"], after["id"])));
                table.insert(after["id"].as_i64().unwrap(), after);
            }
            "d" => {
                seen.push((lsn, format!("d:{}", value["before"]["id"])));
                table.remove(&value["before"]["id"].as_i64().unwrap());
            }
            "t" => table.clear(),
            other => panic!("unexpected op {other}"),
        }
    }
    (table, seen)
}

fn table_now(pg: &Cluster) -> BTreeMap<i64, Json> {
    pg.sql("select id, owner, balance from accounts order by id")
        .iter()
        .map(|row| {
            let mut fields = row.split('|');
            let id: i64 = fields.next().unwrap().parse().unwrap();
            let owner = fields.next().unwrap();
            let balance: i64 = fields.next().unwrap().parse().unwrap();
            (id, json!({"id": id, "owner": owner, "balance": balance}))
        })
        .collect()
}

fn wait_for_state(pg: &Cluster, events: &Path) {
    let want = table_now(pg);
    wait_until(
        "the replayed events equal the table",
        Duration::from_secs(120),
        || replay(&lines(events)).0 == want,
    );
}

#[test]
fn snapshot_plus_stream_replays_to_the_table_even_across_kill_9() {
    let pg = Cluster::start();
    pg.create_accounts();
    pg.sql("insert into accounts select g, 'owner-' || g, g * 10 from generate_series(1, 20) g");
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs(dir.path(), &pg);
    let events = dir.path().join("events.jsonl");

    let worker = Worker::start(dir.path(), &args);
    wait_until("the snapshot arrives", Duration::from_secs(30), || {
        lines(&events).len() >= 20
    });
    let snapshot: Vec<Json> = lines(&events)
        .iter()
        .take(20)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(snapshot.iter().all(|e| e["value"]["op"] == "r"));
    assert_eq!(snapshot[19]["value"]["source"]["snapshot"], "last");
    assert_eq!(snapshot[0]["key"], json!({"id": 1}));
    assert_eq!(snapshot[0]["topic"], "dbserver1.public.accounts");

    pg.mixed_workload(1, 30);
    wait_for_state(&pg, &events);
    worker.kill9();
    pg.mixed_workload(2, 30);
    let worker = Worker::start(dir.path(), &args);
    pg.mixed_workload(3, 30);
    wait_for_state(&pg, &events);

    // Replays after the crash are re-sent whole transactions: every repeated event carries an
    // LSN already seen, so duplicates are recognisable.
    let (_, seen) = replay(&lines(&events));
    let mut counts: BTreeMap<&(i64, String), usize> = BTreeMap::new();
    for event in &seen {
        *counts.entry(event).or_default() += 1;
    }
    assert!(counts.keys().all(|(lsn, _)| *lsn > 0));

    // After a clean stop the slot has confirmed exactly the committed offset.
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
    let offsets: Json =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("connect.offsets")).unwrap())
            .unwrap();
    let committed = offsets["offsets"][0]["value"]["lsn"].as_i64().unwrap();
    let confirmed: i64 = pg.sql("select (confirmed_flush_lsn - '0/0')::bigint from pg_replication_slots where slot_name = 'debezium'")[0].parse().unwrap();
    assert_eq!(
        confirmed, committed,
        "the slot advanced exactly to what is durable downstream"
    );
    assert_eq!(
        offsets["offsets"][0]["key"],
        json!(["inventory", {"server": "dbserver1"}])
    );
}

#[test]
fn deletes_carry_the_key_then_a_tombstone_and_updates_the_new_row() {
    let pg = Cluster::start();
    pg.create_accounts();
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs(dir.path(), &pg);
    let events = dir.path().join("events.jsonl");
    let worker = Worker::start(dir.path(), &args);
    pg.wait_for_slot("debezium");
    pg.sql("insert into accounts values (7, 'ann', 5)");
    pg.sql("update accounts set balance = 6 where id = 7");
    pg.sql("set synchronous_commit = on; delete from accounts where id = 7");
    worker.wait_until("four events arrive", Duration::from_secs(30), || {
        lines(&events).len() == 4
    });
    let e: Vec<Json> = lines(&events)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        (
            e[0]["value"]["op"].as_str(),
            e[0]["value"]["before"].clone()
        ),
        (Some("c"), Json::Null)
    );
    assert_eq!(
        e[0]["value"]["after"],
        json!({"id": 7, "owner": "ann", "balance": 5})
    );
    assert_eq!(e[1]["value"]["op"], "u");
    assert_eq!(e[1]["value"]["after"]["balance"], 6);
    assert_eq!(
        e[1]["value"]["before"],
        Json::Null,
        "REPLICA IDENTITY DEFAULT sends no old row when the key is unchanged"
    );
    assert_eq!(e[2]["value"]["op"], "d");
    assert_eq!(
        e[2]["value"]["before"],
        json!({"id": 7, "owner": "", "balance": 0}),
        "the key under REPLICA IDENTITY DEFAULT; the NOT NULL columns the old key tuple lacks \
         hold the type's empty value, as Debezium fills them"
    );
    assert_eq!(
        (e[3]["key"].clone(), e[3]["value"].clone()),
        (json!({"id": 7}), Json::Null),
        "the tombstone"
    );
    let source = &e[0]["value"]["source"];
    assert_eq!(
        (
            source["connector"].as_str(),
            source["name"].as_str(),
            source["db"].as_str()
        ),
        (Some("postgresql"), Some("dbserver1"), Some("postgres"))
    );
    assert_eq!(
        (
            source["schema"].as_str(),
            source["table"].as_str(),
            source["snapshot"].as_str()
        ),
        (Some("public"), Some("accounts"), Some("false"))
    );
    assert!(source["txId"].is_i64() && source["lsn"].is_i64());

    // The offsets API checks a Postgres offset before writing it (400 naming the field).
    worker.stop_connector("inventory");
    let (_, stored) = worker.get("/connectors/inventory/offsets");
    for (offset, partition, expected) in [
        (
            json!({"lsn": "0/16B3748"}),
            json!({"server": "dbserver1"}),
            "`lsn` must be a non-negative integer",
        ),
        (
            json!({"lsn": -5}),
            json!({"server": "dbserver1"}),
            "`lsn` must be a non-negative integer",
        ),
        (
            json!({"lsn": 5}),
            json!({"server": "elsewhere"}),
            "{\"server\": \"dbserver1\"}",
        ),
        (
            json!({"lsn": 5, "snapshot": true}),
            json!({"server": "dbserver1"}),
            "`snapshot_table`",
        ),
    ] {
        let (code, body) = worker.patch(
            "/connectors/inventory/offsets",
            &json!({"offsets": [{"partition": partition, "offset": offset}]}),
        );
        assert_eq!(code, 400, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains(expected),
            "{body}"
        );
    }
    assert_eq!(
        worker.get("/connectors/inventory/offsets").1,
        stored,
        "nothing was written"
    );
}

#[test]
fn a_user_without_replication_privilege_gets_a_clear_error() {
    let pg = Cluster::start();
    pg.sql("create role reader login");
    let dir = tempfile::tempdir().unwrap();
    write_configs(dir.path(), &pg);
    let config = std::fs::read_to_string(dir.path().join("inventory.json"))
        .unwrap()
        .replace(
            "\"database.user\":\"postgres\"",
            "\"database.user\":\"reader\"",
        );
    std::fs::write(dir.path().join("inventory.json"), config).unwrap();
    let worker = Worker::start(dir.path(), &["worker.properties", "inventory.json"]);
    let trace = worker.failed_trace("inventory");
    assert!(
        trace.contains(
            "user reader lacks the REPLICATION privilege; run ALTER ROLE \"reader\" REPLICATION"
        ),
        "{trace}"
    );
}

/// A captured table with no primary key and `REPLICA IDENTITY DEFAULT` cannot have its updates
/// and deletes streamed (Postgres refuses them): the task fails at start naming the table and
/// the fix; after `REPLICA IDENTITY FULL` it streams, with the whole old row as `before` and a
/// null key (pgoutput marks every column as identity then; the key stays the primary key).
#[test]
fn a_table_without_key_or_replica_identity_is_refused_with_the_fix() {
    let pg = Cluster::start();
    pg.sql("create table readings (sensor text not null, value int not null)");
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs_with(
        dir.path(),
        &pg,
        json!({"table.include.list": "public.readings"}),
    );
    let worker = Worker::start(dir.path(), &args);
    let trace = worker.failed_trace("inventory");
    for part in [
        "\"public\".\"readings\" have no primary key and no replica identity",
        "ALTER TABLE \"public\".\"readings\" REPLICA IDENTITY FULL",
    ] {
        assert!(trace.contains(part), "{part}: {trace}");
    }
    drop(worker);

    pg.sql("alter table readings replica identity full");
    let worker = Worker::start(dir.path(), &args);
    pg.wait_for_slot("debezium");
    pg.sql("insert into readings values ('a', 1)");
    pg.sql("set synchronous_commit = on; update readings set value = 2");
    let events = dir.path().join("events.jsonl");
    worker.wait_until("insert and update", Duration::from_secs(30), || {
        lines(&events).len() >= 2
    });
    let update: Json = serde_json::from_str(&lines(&events)[1]).unwrap();
    assert_eq!(update["value"]["op"], "u", "{update}");
    assert_eq!(
        update["key"],
        Json::Null,
        "no primary key: a null key, as in Debezium"
    );
    assert_eq!(
        update["value"]["before"],
        json!({"sensor": "a", "value": 1})
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// Deleting the connector over REST keeps its slot, as Kafka Connect + Debezium do (a new
/// connector can go on from it); `?cleanup=true` drops it, so it holds no WAL back.
#[test]
fn deleting_the_connector_drops_its_slot_only_when_asked() {
    let pg = Cluster::start();
    pg.create_accounts();
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs(dir.path(), &pg);
    let worker = Worker::start(dir.path(), &args);
    pg.wait_for_slot("debezium");
    let slots = || pg.sql("select slot_name from pg_replication_slots");
    let (code, body) = worker.delete("/connectors/inventory");
    assert_eq!(code, 204, "{body}");
    assert_eq!(slots(), ["debezium"], "a plain delete keeps the slot");

    let config: Json =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("inventory.json")).unwrap())
            .unwrap();
    let (code, body) = worker.post("/connectors", Some(&config));
    assert_eq!(code, 201, "{body}");
    worker.wait_for_status("inventory", "the connector runs again", |s| {
        support::all_tasks(s, "RUNNING")
    });
    let (code, body) = worker.delete("/connectors/inventory?cleanup=true");
    assert_eq!(code, 204, "{body}");
    assert!(slots().is_empty(), "cleanup=true drops the slot");
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// A multi-dimensional array has no Debezium mapping (an array column's schema is one list of
/// its element type): the task fails with a trace naming the table, the column and the fix,
/// and with the column excluded the same row arrives.
#[test]
fn a_multi_dimensional_array_fails_the_task_naming_the_column_and_the_fix() {
    let pg = Cluster::start();
    pg.sql("create table grids (id int primary key, cells int[])");
    pg.sql("insert into grids values (1, '{{1,2},{3,4}}')");
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs_with(
        dir.path(),
        &pg,
        json!({"table.include.list": "public.grids"}),
    );
    let worker = Worker::start(dir.path(), &args);
    let trace = worker.failed_trace("inventory");
    for part in [
        "public.grids column cells",
        "`{{1,2},{3,4}}` is a multi-dimensional array",
        "column.exclude.list",
    ] {
        assert!(trace.contains(part), "{part}: {trace}");
    }
    drop(worker);

    let dir = tempfile::tempdir().unwrap();
    let args = write_configs_with(
        dir.path(),
        &pg,
        json!({"table.include.list": "public.grids", "column.exclude.list": "public.grids.cells", "slot.name": "without_cells"}),
    );
    let worker = Worker::start(dir.path(), &args);
    let events = dir.path().join("events.jsonl");
    worker.wait_until("the row arrives", Duration::from_secs(30), || {
        !lines(&events).is_empty()
    });
    let event: Json = serde_json::from_str(&lines(&events)[0]).unwrap();
    assert_eq!(event["value"]["after"], json!({"id": 1}));
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

#[test]
fn every_mapped_type_arrives_as_debezium_maps_it() {
    let pg = Cluster::start();
    pg.sql("create extension hstore");
    pg.sql("create type mood as enum ('sad', 'ok', 'happy')");
    pg.sql("create domain price2 as numeric(6,2)");
    pg.sql(
        "create table accounts (id bigint primary key, owner text, balance bigint, \
         i2 int2, i4 int4, price numeric(10,2), ratio numeric, f4 float4, f8 float8, flag bool, \
         name varchar(20), code char(3), data bytea, uid uuid, doc jsonb, day date, at time, \
         ts timestamp, tz timestamptz, addr inet, nothing text, \
         ints int4[], tags text[], feeling mood, moods mood[], cost price2, net cidr, mac macaddr, \
         cash money, on_off bit(1), nibble bit(4), bits varbit(16), attrs hstore, span interval, \
         spot point)",
    );
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs(dir.path(), &pg);
    let events = dir.path().join("events.jsonl");
    let _worker = Worker::start(dir.path(), &args);
    pg.sql(
        "set synchronous_commit = on; insert into accounts values (1, 'o', 2, -3, 4, 12.50, 3.14159, 1.5, 'NaN', true, \
         'v', 'abc', '\\x00ff', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"k\": [1, 2]}', '2024-02-29', '10:20:30.5', \
         '2024-02-29 10:20:30.123456', '2024-03-01 01:00:00+02', '192.168.0.1/24', null, \
         '{1,NULL,3}', '{\"a b\",c}', 'happy', '{sad,ok}', 12.5, '10.0.0.0/8', '08:00:2b:01:02:03', \
         1234.5, '1', '1010', '0000000100000010', 'a=>1, b=>NULL', '1 day 2 hours 3.5 seconds', '(1.5,-2)')",
    );
    wait_until("the insert arrives", Duration::from_secs(30), || {
        !lines(&events).is_empty()
    });
    let event: Json = serde_json::from_str(&lines(&events)[0]).unwrap();
    let after = &event["value"]["after"];
    let expected = json!({
        "id": 1, "owner": "o", "balance": 2, "i2": -3, "i4": 4,
        "price": "BOI=",                            // Decimal 1250 at scale 2, big-endian two's complement
        "ratio": {"scale": 5, "value": "BMsv"},     // VariableScaleDecimal 314159
        "f4": 1.5, "f8": "NaN", "flag": true, "name": "v", "code": "abc",
        "data": "AP8=",                             // bytes as base64
        "uid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "doc": "{\"k\": [1, 2]}",
        "day": 19782,                               // io.debezium.time.Date: days since epoch
        "at": 37230500000i64,                       // MicroTime
        "ts": 1709202030123456i64,                  // MicroTimestamp
        "tz": "2024-02-29T23:00:00.000000Z",        // ZonedTimestamp in UTC, six fraction digits
        "addr": "192.168.0.1/24",                   // inet, cidr, macaddr: strings
        "nothing": null,
        "ints": [1, null, 3],                       // arrays of the element type
        "tags": ["a b", "c"],
        "feeling": "happy",                         // io.debezium.data.Enum
        "moods": ["sad", "ok"],
        "cost": "BOI=",                             // a domain maps as its base type, numeric(6,2)
        "net": "10.0.0.0/8", "mac": "08:00:2b:01:02:03",
        "cash": "AeI6",                             // money: Decimal, scale 2 (123450)
        "on_off": true,                             // bit(1): boolean
        "nibble": "Cg==",                           // io.debezium.data.Bits, little-endian (0b1010)
        "bits": "AgE=",                             // 0x0102 little-endian
        "attrs": "{\"a\":\"1\",\"b\":null}",          // hstore as io.debezium.data.Json
        "span": 93603500000i64,                     // io.debezium.time.MicroDuration
        "spot": "(1.5,-2)",                         // geometric types: their text form
    });
    assert_eq!(*after, expected);
}

/// `time.precision.mode=connect`: date, time and timestamp in Kafka Connect's units (days,
/// milliseconds) whatever the column's precision, in the snapshot and in the stream.
#[test]
fn time_precision_mode_connect_emits_milliseconds_in_snapshot_and_stream() {
    let pg = Cluster::start();
    pg.sql("create table accounts (id bigint primary key, day date, at time, ts timestamp)");
    pg.sql("insert into accounts values (1, '2024-02-29', '10:20:30.123456', '2024-02-29 10:20:30.123456')");
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs_with(dir.path(), &pg, json!({"time.precision.mode": "connect"}));
    let events = dir.path().join("events.jsonl");
    let worker = Worker::start(dir.path(), &args);
    pg.wait_for_slot("debezium");
    pg.sql("set synchronous_commit = on; insert into accounts values (2, '1969-12-31', '00:00:00.0005', '1969-12-31 23:59:59.9995')");
    worker.wait_until(
        "the snapshot row and the insert",
        Duration::from_secs(30),
        || lines(&events).len() == 2,
    );
    let after = |line: &str| serde_json::from_str::<Json>(line).unwrap()["value"]["after"].clone();
    assert_eq!(
        after(&lines(&events)[0]),
        json!({"id": 1, "day": 19782, "at": 37230123, "ts": 1709202030123i64})
    );
    assert_eq!(
        after(&lines(&events)[1]),
        json!({"id": 2, "day": -1, "at": 0, "ts": -1}),
        "milliseconds rounded down, as Connect's Timestamp holds them"
    );
}

/// The snapshot reads a table whose every column has a binary decoder with binary `COPY`,
/// any other with text `COPY`, and both give the same values: two tables hold the same rows,
/// one with only binary-readable types, the other the same columns plus a `numeric` one (which
/// has no binary decoder). Edge values: NULLs, extremes, NaN and infinities, dates BC, text
/// with tabs, newlines and backslashes (escaped in text COPY, raw in binary), a composite key.
#[test]
fn binary_and_text_copy_snapshots_give_the_same_values() {
    let pg = Cluster::start();
    pg.sql("create type mood as enum ('sad', 'ok', 'happy')");
    let columns = "id int8, owner text, i2 int2, i4 int4, o oid, f8 float8, flag bool, \
                   name varchar(20), code char(3), label name, data bytea, uid uuid, doc json, \
                   docb jsonb, day date, ts timestamp, ts3 timestamp(3), feeling mood, \
                   primary key (id, owner)";
    pg.sql(&format!("create table in_binary ({columns})"));
    pg.sql(&format!(
        "create table in_text ({columns}, forces_text numeric)"
    ));
    pg.sql(
        r#"insert into in_binary values
           (1, 'plain', -32768, 2147483647, 4294967295, 'NaN', true, 'v', 'ab', 'nm',
            '\x00ff5c0a', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"k": [1, 2]}',
            '{"k": [1, 2]}', '2024-02-29', '2024-02-29 10:20:30.123456',
            '2024-02-29 10:20:30.123456', 'happy'),
           (2, E'tab\there\nnew line \\ back \\N', 32767, -2147483648, 0, '-Infinity', false, '',
            'x', '', '\x', '00000000-0000-0000-0000-000000000000', '[]', '{}', '0044-03-15 BC',
            'infinity', '1969-12-31 23:59:59.999999', 'sad'),
           (3, 'grüße ✓', null, null, null, null, null, null, null, null, null, null, null,
            null, null, '-infinity', null, null),
           (-9223372036854775808, '', 0, 0, 0, 1.5e300, true, 'x', 'xyz', 'n', '\x01',
            'ffffffff-ffff-ffff-ffff-ffffffffffff', 'null', '"s"', '1970-01-01',
            '0001-01-01 00:00:00 BC', '2000-01-01 00:00:00.001', 'ok')"#,
    );
    pg.sql("insert into in_text select *, 1.5 from in_binary");
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs_with(
        dir.path(),
        &pg,
        json!({"table.include.list": "public.in_binary,public.in_text", "snapshot.mode": "initial_only"}),
    );
    let events = dir.path().join("events.jsonl");
    let worker = Worker::start(dir.path(), &args);
    let of = |topic: &str| -> BTreeMap<String, (Json, Json)> {
        lines(&events)
            .iter()
            .map(|l| serde_json::from_str::<Json>(l).unwrap())
            .filter(|e| e["topic"] == topic)
            .map(|e| {
                let mut after = e["value"]["after"].clone();
                after.as_object_mut().unwrap().remove("forces_text");
                (e["key"].to_string(), (e["key"].clone(), after))
            })
            .collect()
    };
    worker.wait_until("both tables' snapshots", Duration::from_secs(60), || {
        of("dbserver1.public.in_binary").len() == 4 && of("dbserver1.public.in_text").len() == 4
    });
    let logs = worker.logs();
    let format_of = |table: &str| {
        logs.lines()
            .find(|l| l.contains("snapshot reads the table with") && l.contains(table))
            .unwrap_or_else(|| panic!("no COPY format logged for {table}:\n{logs}"))
            .to_owned()
    };
    assert!(format_of("public.in_binary").contains("binary COPY"));
    assert!(
        format_of("public.in_text")
            .contains("text COPY: column forces_text (numeric) has no binary decoder"),
        "{}",
        format_of("public.in_text")
    );
    let binary = of("dbserver1.public.in_binary");
    assert_eq!(binary, of("dbserver1.public.in_text"));
    // And both are right, not merely equal.
    let row = |id: i64| {
        binary
            .values()
            .find(|(key, _)| key["id"] == id)
            .map(|(_, after)| after.clone())
            .unwrap()
    };
    assert_eq!(row(2)["owner"], "tab\there\nnew line \\ back \\N");
    assert_eq!(row(1)["data"], "AP9cCg==");
    assert_eq!(row(1)["o"], 4294967295i64);
    assert_eq!(row(1)["ts"], 1709202030123456i64);
    assert_eq!(row(1)["ts3"], 1709202030123i64);
    assert_eq!(row(2)["day"], -735160); // 15 March 44 BC, proleptic Gregorian
    assert_eq!(row(3)["i2"], Json::Null);
    assert_eq!(row(1)["code"], "ab ");
    assert_eq!(
        row(-9223372036854775808)["uid"],
        "ffffffff-ffff-ffff-ffff-ffffffffffff"
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

fn slot_confirmed(pg: &Cluster, slot: &str) -> i64 {
    pg.sql(&format!(
        "select (confirmed_flush_lsn - '0/0')::bigint from pg_replication_slots where slot_name = '{slot}'"
    ))[0]
        .parse()
        .unwrap()
}

/// The server sends a keepalive as soon as it has caught up while what it sent is unconfirmed,
/// i.e. right after a transaction, while the poll may still hold that transaction's records.
/// Such a keepalive must not move the slot past them: here no sink subscribes, so the records
/// never become durable, and the slot has to stay before them (a crash now loses nothing).
#[test]
fn keepalives_never_move_the_slot_past_records_not_yet_durable() {
    let pg = Cluster::start();
    pg.create_accounts();
    let dir = tempfile::tempdir().unwrap();
    let configs = write_configs(dir.path(), &pg);
    let without_sink: Vec<&String> = configs
        .iter()
        .filter(|c| !c.ends_with("oracle.properties"))
        .collect();
    let worker = Worker::start(dir.path(), &without_sink);
    pg.wait_for_slot("debezium");
    // The WAL position between the insert and its commit: a slot confirmed at or before it
    // still sends the transaction (Postgres skips only transactions committed before the slot's
    // confirmed position). Reading the position before the insert would be too strict: the
    // server's own background records (running-transactions snapshots) may land between that
    // read and the insert, and a keepalive may rightly confirm them.
    let within_insert: i64 = pg
        .sql(
            "set synchronous_commit = on; insert into accounts values (1, 'a', 1); \
             select (pg_current_wal_insert_lsn() - '0/0')::bigint",
        )
        .last()
        .expect("the insert's WAL position")
        .parse()
        .unwrap();
    worker.wait_for_log(
        "the record is handed out and waits for a sink",
        "no sink subscribes to this topic",
    );
    // Uncaptured writes bring more keepalives, past the insert.
    pg.sql("set synchronous_commit = on; create table elsewhere (id int primary key)");
    pg.sql("set synchronous_commit = on; insert into elsewhere values (1)");
    let confirmed = slot_confirmed(&pg, "debezium");
    assert!(
        confirmed <= within_insert,
        "the slot moved to {confirmed}, past the insert at {within_insert}, which no sink took"
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// While the captured tables are idle but the rest of the database is not, the slot keeps
/// advancing (on the server's keepalives, once everything sent is committed downstream), so
/// WAL does not pile up behind it; and nothing is lost by that.
#[test]
fn the_slot_advances_while_captured_tables_are_idle_and_the_rest_of_the_database_writes() {
    let pg = Cluster::start();
    pg.create_accounts();
    pg.sql("create table busy (id bigserial primary key, note text)");
    pg.sql("create publication accounts_only for table accounts");
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs_with(
        dir.path(),
        &pg,
        json!({"publication.name": "accounts_only", "publication.autocreate.mode": "disabled"}),
    );
    let events = dir.path().join("events.jsonl");
    let worker = Worker::start(dir.path(), &args);
    pg.sql("set synchronous_commit = on; insert into accounts values (1, 'ann', 5)");
    wait_until("the insert arrives", Duration::from_secs(30), || {
        lines(&events).len() == 1
    });

    let before_busy: i64 = pg.sql("select (pg_current_wal_insert_lsn() - '0/0')::bigint")[0]
        .parse()
        .unwrap();
    for i in 0..20 {
        pg.sql(&format!("insert into busy (note) values ('unrelated {i}')"));
    }
    pg.sql("set synchronous_commit = on; insert into busy (note) values ('last')");
    wait_until(
        "the slot moves past WAL written only by an uncaptured table",
        Duration::from_secs(30),
        || slot_confirmed(&pg, "debezium") > before_busy,
    );
    assert_eq!(
        lines(&events).len(),
        1,
        "the uncaptured table emits nothing"
    );

    pg.sql("set synchronous_commit = on; update accounts set balance = 6 where id = 1");
    wait_until(
        "the next change still arrives",
        Duration::from_secs(30),
        || lines(&events).len() == 2,
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// The LSN of the offset committed to `connect.offsets` in `dir`.
fn committed_lsn(dir: &Path) -> Option<i64> {
    let text = std::fs::read_to_string(dir.join("connect.offsets")).ok()?;
    let offsets: Json = serde_json::from_str(&text).ok()?;
    offsets["offsets"][0]["value"]["lsn"].as_i64()
}

/// Debezium's heartbeats: with `heartbeat.interval.ms`, records on
/// `__debezium-heartbeat.<topic.prefix>` keyed by the server name, `heartbeat.action.query`
/// run before each, and the committed offset itself (not only the slot) moved past WAL that
/// made no change events, so a restart resumes from there.
#[test]
fn heartbeats_move_the_committed_offset_past_uncaptured_writes_and_run_the_action_query() {
    let pg = Cluster::start();
    pg.create_accounts();
    pg.sql("create table busy (id bigserial primary key, note text)");
    pg.sql("create table heartbeat_log (id bigserial primary key, at timestamptz default now())");
    pg.sql("create publication accounts_only for table accounts");
    let dir = tempfile::tempdir().unwrap();
    let mut args = write_configs_with(
        dir.path(),
        &pg,
        json!({
            "publication.name": "accounts_only", "publication.autocreate.mode": "disabled",
            "heartbeat.interval.ms": "200",
            "heartbeat.action.query": "insert into heartbeat_log default values",
        }),
    );
    let heartbeat_sink = dir.path().join("heartbeats.properties");
    std::fs::write(
        &heartbeat_sink,
        "name=heartbeats\nconnector.class=FileStreamSink\nfile=heartbeats.jsonl\nformat=json\n\
         topics=__debezium-heartbeat.dbserver1\n",
    )
    .unwrap();
    args.push(heartbeat_sink.to_string_lossy().into_owned());
    let events = dir.path().join("events.jsonl");
    let beats = dir.path().join("heartbeats.jsonl");
    let worker = Worker::start(dir.path(), &args);
    pg.wait_for_slot("debezium");
    pg.sql("set synchronous_commit = on; insert into accounts values (1, 'ann', 5)");
    wait_until("the insert arrives", Duration::from_secs(30), || {
        lines(&events).len() == 1
    });

    let before_busy: i64 = pg.sql("select (pg_current_wal_insert_lsn() - '0/0')::bigint")[0]
        .parse()
        .unwrap();
    for i in 0..20 {
        pg.sql(&format!("insert into busy (note) values ('unrelated {i}')"));
    }
    worker.wait_until(
        "the committed offset moves past WAL written only by uncaptured tables",
        Duration::from_secs(30),
        || committed_lsn(dir.path()).is_some_and(|lsn| lsn > before_busy),
    );
    assert_eq!(lines(&events).len(), 1, "uncaptured tables emit nothing");
    let beat: Json = serde_json::from_str(&lines(&beats)[0]).unwrap();
    assert_eq!(beat["topic"], "__debezium-heartbeat.dbserver1");
    assert_eq!(beat["key"], json!({"serverName": "dbserver1"}));
    assert!(
        beat["value"]["ts_ms"].as_i64().unwrap() > 1_600_000_000_000,
        "ts_ms is the time in milliseconds: {beat}"
    );
    let heartbeats_seen = lines(&beats).len() as i64;
    let runs: i64 = pg.sql("select count(*) from heartbeat_log")[0]
        .parse()
        .unwrap();
    assert!(
        runs >= heartbeats_seen,
        "the action query runs before each heartbeat: {runs} runs, {heartbeats_seen} heartbeats"
    );

    // A restart resumes from the heartbeat's offset: the next change arrives, nothing repeats.
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
    assert!(committed_lsn(dir.path()).unwrap() > before_busy);
    let worker = Worker::start(dir.path(), &args);
    pg.sql("set synchronous_commit = on; update accounts set balance = 6 where id = 1");
    worker.wait_until("the update arrives", Duration::from_secs(30), || {
        lines(&events).len() >= 2
    });
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
    let ops: Vec<String> = lines(&events)
        .iter()
        .map(|line| serde_json::from_str::<Json>(line).unwrap()["value"]["op"].to_string())
        .collect();
    assert_eq!(ops, [r#""c""#, r#""u""#], "nothing sent twice");

    // An action query the server refuses fails the task with the server's message.
    let config = std::fs::read_to_string(dir.path().join("inventory.json"))
        .unwrap()
        .replace("insert into heartbeat_log", "insert into no_such_table");
    std::fs::write(dir.path().join("inventory.json"), config).unwrap();
    let worker = Worker::start(dir.path(), &args);
    let trace = worker.failed_trace("inventory");
    assert!(
        trace.contains("running heartbeat.action.query failed")
            && trace.contains(r#"relation "no_such_table" does not exist"#),
        "{trace}"
    );
}

/// `snapshot.mode=always` reads the table again at every start; `initial` does not.
#[test]
fn snapshot_mode_always_reads_the_table_at_every_start() {
    let pg = Cluster::start();
    pg.create_accounts();
    pg.sql("insert into accounts select g, 'owner-' || g, g from generate_series(1, 3) g");
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs_with(dir.path(), &pg, json!({"snapshot.mode": "always"}));
    let events = dir.path().join("events.jsonl");
    let ops = || -> Vec<String> {
        lines(&events)
            .iter()
            .map(|l| {
                serde_json::from_str::<Json>(l).unwrap()["value"]["op"]
                    .as_str()
                    .unwrap_or("tombstone")
                    .to_owned()
            })
            .collect()
    };

    let worker = Worker::start(dir.path(), &args);
    wait_until("the first snapshot", Duration::from_secs(30), || {
        ops().len() == 3
    });
    pg.sql("set synchronous_commit = on; insert into accounts values (4, 'dan', 4)");
    wait_until("the insert", Duration::from_secs(30), || ops().len() == 4);
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");

    let worker = Worker::start(dir.path(), &args);
    wait_until("the second snapshot", Duration::from_secs(30), || {
        ops().len() == 8
    });
    assert_eq!(ops(), ["r", "r", "r", "c", "r", "r", "r", "r"]);
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// `snapshot.mode=initial_only` sends the snapshot and nothing after it, and keeps no slot.
/// A second connector in `initial` mode on the same database shows when a later change would
/// have arrived.
#[test]
fn snapshot_mode_initial_only_sends_the_snapshot_and_no_changes() {
    let pg = Cluster::start();
    pg.create_accounts();
    pg.sql("insert into accounts select g, 'owner-' || g, g from generate_series(1, 3) g");
    let dir = tempfile::tempdir().unwrap();
    let mut args = write_configs_with(
        dir.path(),
        &pg,
        json!({"snapshot.mode": "initial_only", "slot.name": "only_snapshot"}),
    );
    std::fs::write(
        dir.path().join("witness.json"),
        json!({"name": "witness", "config": {
            "connector.class": "postgres",
            "database.hostname": "127.0.0.1", "database.port": pg.port.to_string(),
            "database.user": "postgres", "database.dbname": "postgres",
            "topic.prefix": "witness", "table.include.list": "public.accounts", "slot.name": "witness",
        }})
        .to_string(),
    )
    .unwrap();
    std::fs::write(dir.path().join("witness-sink.properties"), "name=witness-sink\nconnector.class=FileStreamSink\nfile=witness.jsonl\nformat=json\ntopics.regex=witness\\..*\n").unwrap();
    args.push(
        dir.path()
            .join("witness.json")
            .to_string_lossy()
            .into_owned(),
    );
    args.push(
        dir.path()
            .join("witness-sink.properties")
            .to_string_lossy()
            .into_owned(),
    );
    let events = dir.path().join("events.jsonl");
    let witness = dir.path().join("witness.jsonl");

    let worker = Worker::start(dir.path(), &args);
    wait_until("both snapshots", Duration::from_secs(30), || {
        lines(&events).len() == 3 && lines(&witness).len() == 3
    });
    pg.sql("set synchronous_commit = on; insert into accounts values (4, 'dan', 4)");
    wait_until(
        "the witness sees the insert",
        Duration::from_secs(30),
        || lines(&witness).len() == 4,
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
    assert_eq!(lines(&events).len(), 3, "initial_only streams nothing");
    assert!(logs.contains("snapshot.mode=initial_only"), "{logs}");
    assert_eq!(
        pg.sql("select slot_name from pg_replication_slots order by 1"),
        ["witness"],
        "initial_only keeps no slot"
    );
}

/// When the slot is lost while the connector is down, `initial` refuses to go on with a
/// message naming the fix, and `when_needed` takes a new snapshot on a new slot.
#[test]
fn a_lost_slot_fails_initial_and_resnapshots_under_when_needed() {
    let pg = Cluster::start();
    pg.create_accounts();
    pg.sql("insert into accounts select g, 'owner-' || g, g from generate_series(1, 3) g");
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs(dir.path(), &pg);
    let events = dir.path().join("events.jsonl");
    let worker = Worker::start(dir.path(), &args);
    pg.sql("set synchronous_commit = on; insert into accounts values (4, 'dan', 4)");
    wait_until("snapshot and insert", Duration::from_secs(30), || {
        lines(&events).len() == 4
    });
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
    pg.sql("select pg_drop_replication_slot('debezium')");

    let worker = Worker::start(dir.path(), &args);
    let trace = worker.failed_trace("inventory");
    assert!(
        trace.contains("replication slot debezium is gone"),
        "{trace}"
    );
    assert!(trace.contains("snapshot.mode=when_needed"), "{trace}");
    let (_, _) = worker.terminate();

    let args = write_configs_with(dir.path(), &pg, json!({"snapshot.mode": "when_needed"}));
    let worker = Worker::start(dir.path(), &args);
    wait_until("a new snapshot", Duration::from_secs(30), || {
        lines(&events).len() == 8
    });
    pg.sql("set synchronous_commit = on; delete from accounts where id = 1");
    wait_for_state(&pg, &events);
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// Under the default FOR ALL TABLES publication the connector itself applies Debezium's
/// filters: `table.include.list` (regular expressions) drops other tables' changes,
/// `column.exclude.list` drops columns, and an update that changes the key becomes a delete
/// (and tombstone) under the old key and a create under the new one, as in Debezium.
#[test]
fn filters_apply_to_streamed_changes_and_key_changes_become_delete_and_create() {
    let pg = Cluster::start();
    pg.create_accounts();
    pg.sql("create table audit (id bigserial primary key, note text)");
    pg.sql("insert into accounts values (1, 'ann', 5)");
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs_with(
        dir.path(),
        &pg,
        json!({"table.include.list": "public\\.acc.*", "column.exclude.list": "public\\.accounts\\.owner"}),
    );
    let events = dir.path().join("events.jsonl");
    let worker = Worker::start(dir.path(), &args);
    wait_until("the snapshot", Duration::from_secs(30), || {
        lines(&events).len() == 1
    });
    pg.sql("insert into audit (note) values ('not captured')");
    pg.sql("set synchronous_commit = on; update accounts set id = 2, balance = 6 where id = 1");
    wait_until("the key change", Duration::from_secs(30), || {
        lines(&events).len() == 4
    });
    let e: Vec<Json> = lines(&events)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        e[0]["value"]["after"],
        json!({"id": 1, "balance": 5}),
        "owner is excluded"
    );
    assert_eq!(
        (e[1]["value"]["op"].as_str(), e[1]["key"].clone()),
        (Some("d"), json!({"id": 1}))
    );
    assert_eq!(
        (e[2]["key"].clone(), e[2]["value"].clone()),
        (json!({"id": 1}), Json::Null)
    );
    assert_eq!(
        (
            e[3]["value"]["op"].as_str(),
            e[3]["key"].clone(),
            e[3]["value"]["after"].clone()
        ),
        (Some("c"), json!({"id": 2}), json!({"id": 2, "balance": 6}))
    );
    assert!(
        e.iter().all(|e| e["topic"] == "dbserver1.public.accounts"),
        "nothing from public.audit"
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

#[test]
fn an_include_list_beside_an_exclude_list_is_refused_with_the_fix() {
    let pg = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs_with(
        dir.path(),
        &pg,
        json!({"table.exclude.list": "public\\.audit"}),
    );
    let out = support::run(dir.path(), &["validate", args[2].as_str()]);
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("table.include.list and table.exclude.list are both set"),
        "{text}"
    );
}

/// `provide.transaction.metadata=true`: BEGIN and END records on `<prefix>.transaction`
/// around each transaction's events, which carry Debezium's `transaction` block.
#[test]
fn transaction_metadata_wraps_each_transaction_in_begin_and_end() {
    let pg = Cluster::start();
    pg.create_accounts();
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs_with(
        dir.path(),
        &pg,
        json!({"provide.transaction.metadata": "true", "tombstones.on.delete": "false"}),
    );
    let events = dir.path().join("events.jsonl");
    let worker = Worker::start(dir.path(), &args);
    pg.wait_for_slot("debezium");
    pg.sql("set synchronous_commit = on; begin; insert into accounts values (1, 'a', 1), (2, 'b', 2); delete from accounts where id = 1; commit");
    wait_until("BEGIN, three events, END", Duration::from_secs(30), || {
        lines(&events).len() == 5
    });
    let e: Vec<Json> = lines(&events)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Debezium's Postgres transaction id is `<txId>:<LSN>` with the LSN last seen: BEGIN's
    // is the first change's, each change its own, END's the commit's.
    let id = e[0]["value"]["id"].as_str().unwrap().to_owned();
    let tx_id = e[1]["value"]["source"]["txId"].as_i64().unwrap();
    let own_id = |event: &Json| format!("{tx_id}:{}", event["value"]["source"]["lsn"]);
    assert_eq!(id, own_id(&e[1]));
    assert_eq!(e[0]["topic"], "dbserver1.transaction");
    assert_eq!(e[0]["key"], json!({"id": id}));
    assert_eq!(
        e[0]["value"],
        json!({"status": "BEGIN", "id": id, "event_count": null, "data_collections": null, "ts_ms": e[0]["value"]["ts_ms"]})
    );
    for (i, event) in e[1..4].iter().enumerate() {
        assert_eq!(
            event["value"]["transaction"],
            json!({"id": own_id(event), "total_order": i + 1, "data_collection_order": i + 1})
        );
    }
    let end_id = e[4]["value"]["id"].as_str().unwrap().to_owned();
    assert!(end_id.starts_with(&format!("{tx_id}:")), "{end_id}");
    assert_eq!(
        e[4]["value"],
        json!({"status": "END", "id": end_id, "event_count": 3,
               "data_collections": [{"data_collection": "public.accounts", "event_count": 3}],
               "ts_ms": e[0]["value"]["ts_ms"]})
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// A Postgres restart while streaming: the task reconnects with backoff (it stays RUNNING,
/// the worker logs each attempt) and resumes after the last transaction it handed out, so the
/// replayed events still equal the table.
#[test]
fn a_postgres_restart_mid_stream_is_survived_by_reconnecting() {
    let pg = Cluster::start();
    pg.create_accounts();
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs(dir.path(), &pg);
    let events = dir.path().join("events.jsonl");
    let worker = Worker::start(dir.path(), &args);
    pg.mixed_workload(7, 20);
    wait_for_state(&pg, &events);

    pg.stop();
    worker.wait_for_log(
        "the connection loss is noticed",
        "lost the connection to Postgres",
    );
    worker.wait_for_log(
        "a failed attempt while Postgres is down",
        "reconnecting to Postgres failed",
    );
    pg.start_again();
    worker.wait_for_log("the reconnection", "reconnected to Postgres");
    pg.mixed_workload(8, 20);
    pg.sql("set synchronous_commit = on; insert into accounts values (1000, 'last', 1)");
    wait_for_state(&pg, &events);
    let (status, body) = worker.get("/connectors/inventory/status");
    assert_eq!(status, 200);
    assert!(support::all_tasks(&body, "RUNNING"), "{body}");
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// A Postgres restart in the middle of a snapshot: the task reconnects with backoff (it stays
/// RUNNING) and reads the rest of the snapshot in a new view after the last row it handed out,
/// so every row arrives exactly once and snapshot + stream still replay to the table.
///
/// The snapshot is held at a known point: `zz_later` (read after `accounts`) is locked, so the
/// readers wait on it with all of `accounts` read. The slot is made first because slot
/// creation would wait for the lock's transaction (the lock assigns it an xid); a connector
/// that finds its slot reads the snapshot in a view of its own, the same path as the re-read.
#[test]
fn a_postgres_restart_mid_snapshot_reads_the_rest_in_a_new_view() {
    let pg = Cluster::start();
    pg.create_accounts();
    pg.sql("insert into accounts select g, 'owner-' || g, g from generate_series(1, 3000) g");
    pg.sql("create table zz_later (id bigint primary key, note text not null)");
    pg.sql("insert into zz_later select g, 'note-' || g from generate_series(1, 500) g");
    // Publication before slot, as the connector itself does: a slot made before its
    // publication misses the first changes after the publication appears (seen on PG 15).
    pg.sql("create publication dbz_publication for table accounts, zz_later");
    pg.sql("select pg_create_logical_replication_slot('debezium', 'pgoutput')");
    let lock = pg.hold_exclusive_lock("zz_later");
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs_with(
        dir.path(),
        &pg,
        json!({
            "table.include.list": "public.accounts,public.zz_later",
            "snapshot.max.threads": "2", "snapshot.fetch.size": "400", "max.batch.size": "250",
        }),
    );
    let events = dir.path().join("events.jsonl");
    let worker = Worker::start(dir.path(), &args);
    let accounts_read = || snapshot_ids(&lines(&events)).len();
    worker.wait_until(
        "accounts is read up to the locked table",
        Duration::from_secs(60),
        || accounts_read() >= 2999,
    );
    pg.stop();
    drop(lock);
    worker.wait_for_log(
        "the connection loss is noticed",
        "lost the connection to Postgres during the snapshot",
    );
    worker.wait_for_log(
        "a failed attempt while Postgres is down",
        "reconnecting to Postgres failed",
    );
    pg.start_again();
    worker.wait_for_log("the re-read", "reading the snapshot again in a new view");
    // That line comes before the new view is taken: a write now could land in it (CI saw row
    // 501 in the snapshot). The second "snapshot started" comes after.
    worker.wait_until("the new view is taken", Duration::from_secs(60), || {
        worker.logs().matches("snapshot started").count() >= 2
    });
    pg.sql("insert into zz_later values (501, 'streamed')");
    pg.sql("set synchronous_commit = on; update accounts set balance = -1 where id = 1");
    let want = table_now(&pg);
    worker.wait_until(
        "the replayed events equal the table",
        Duration::from_secs(60),
        || {
            let accounts: Vec<String> = lines(&events)
                .into_iter()
                .filter(|l| l.contains(r#""topic":"dbserver1.public.accounts""#))
                .collect();
            replay(&accounts).0 == want
        },
    );

    let all = lines(&events);
    let mut accounts = snapshot_ids(&all);
    accounts.sort();
    assert_eq!(accounts, (1..=3000).collect::<Vec<_>>(), "every row once");
    assert_eq!(
        snapshot_ids_of(&all, "dbserver1.public.zz_later"),
        (1..=500).collect::<Vec<_>>(),
        "the locked table, once, in key order"
    );
    let streamed = all
        .iter()
        .map(|l| serde_json::from_str::<Json>(l).unwrap())
        .filter(|e| e["topic"] == "dbserver1.public.zz_later" && e["value"]["op"] == "c")
        .count();
    assert_eq!(streamed, 1, "then the stream");
    let (status, body) = worker.get("/connectors/inventory/status");
    assert_eq!(status, 200);
    assert!(support::all_tasks(&body, "RUNNING"), "{body}");
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// The ids of the `accounts` rows the snapshot read, in the order they arrived.
fn snapshot_ids(events: &[String]) -> Vec<i64> {
    snapshot_ids_of(events, "dbserver1.public.accounts")
}

fn snapshot_ids_of(events: &[String], topic: &str) -> Vec<i64> {
    events
        .iter()
        .map(|l| serde_json::from_str::<Json>(l).unwrap())
        .filter(|e| e["topic"] == topic && e["value"]["op"] == "r")
        .map(|e| e["value"]["after"]["id"].as_i64().unwrap())
        .collect()
}

/// Kills the worker with -9 and returns its committed offset, which must be mid-snapshot.
fn kill_mid_snapshot(worker: Worker, offsets: &Path) -> Json {
    worker.kill9();
    let committed: Json = serde_json::from_str(&std::fs::read_to_string(offsets).unwrap()).unwrap();
    let offset = committed["offsets"][0]["value"].clone();
    assert_eq!(
        offset["last_snapshot_record"], false,
        "killed before the snapshot finished (make the table larger if this fails): {offset}"
    );
    offset
}

/// `readings`: a table without a key (replica identity full) of `rows` rows whose `value`s
/// are 1..=rows, analyzed.
fn create_readings(pg: &Cluster, rows: u32) {
    pg.sql(&format!(
        "create table readings (sensor text not null, value int not null); alter table readings replica identity full; \
         insert into readings select 's-' || (g % 97), g from generate_series(1, {rows}) g; analyze readings"
    ));
}

/// A table without a primary key is read by `ctid` page ranges, several at once: every row
/// arrives exactly once.
#[test]
fn a_table_without_a_key_is_snapshotted_by_ctid_page_ranges_in_parallel() {
    let pg = Cluster::start();
    create_readings(&pg, 20000);
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs_with(
        dir.path(),
        &pg,
        json!({"table.include.list": "public.readings", "snapshot.max.threads": "2", "snapshot.fetch.size": "700"}),
    );
    let events = dir.path().join("events.jsonl");
    let worker = Worker::start(dir.path(), &args);
    worker.wait_for_log("the snapshot", "snapshot complete");
    wait_until("every row", Duration::from_secs(60), || {
        lines(&events).len() >= 20000
    });
    let mut read: Vec<(String, i64)> = lines(&events)
        .iter()
        .map(|l| serde_json::from_str::<Json>(l).unwrap())
        .map(|e| {
            let after = &e["value"]["after"];
            (
                after["sensor"].as_str().unwrap().to_owned(),
                after["value"].as_i64().unwrap(),
            )
        })
        .collect();
    read.sort();
    let mut table: Vec<(String, i64)> = pg
        .sql("select sensor, value from readings")
        .iter()
        .map(|row| {
            let (sensor, value) = row.split_once('|').unwrap();
            (sensor.to_owned(), value.parse().unwrap())
        })
        .collect();
    table.sort();
    assert_eq!(read.len(), table.len(), "each row exactly once");
    assert!(read == table, "the events are the table's rows");
    let logs = worker.logs();
    let chunks: usize = logs
        .lines()
        .find(|l| l.contains("ctid page ranges"))
        .and_then(|l| l.split("chunks=").nth(1))
        .and_then(|c| c.split_whitespace().next())
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no ctid page ranges in {logs}"));
    assert!(chunks > 10, "about 700 rows a chunk: {chunks}");
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// A snapshot read in chunks by several connections while the table is being written: every
/// row arrives once, in key order, and snapshot + stream replay to the table's final state.
#[test]
fn a_parallel_chunked_snapshot_under_concurrent_writes_replays_to_the_table() {
    let pg = Cluster::start();
    pg.create_accounts();
    pg.sql("insert into accounts select g, 'owner-' || g, g from generate_series(1, 20000) g");
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs_with(
        dir.path(),
        &pg,
        json!({"snapshot.max.threads": "3", "snapshot.fetch.size": "700"}),
    );
    let events = dir.path().join("events.jsonl");
    let worker = Worker::start(dir.path(), &args);
    // Writes while the snapshot is read (ids 1..40 are the ones the workload touches).
    pg.mixed_workload(11, 40);
    wait_for_state(&pg, &events);
    let all = lines(&events);
    let ids = snapshot_ids(&all);
    // The workload may commit before the slot's snapshot is taken, so rows 1..=40 may be in
    // it or not; every other row is there exactly once, and all in key order.
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "once each, in key order"
    );
    assert_eq!(
        ids.iter().filter(|&&id| id > 40).count(),
        20000 - 40,
        "every untouched row once"
    );
    let last_snapshot: Json = all
        .iter()
        .map(|l| serde_json::from_str::<Json>(l).unwrap())
        .rfind(|e| e["value"]["op"] == "r")
        .unwrap();
    assert_eq!(last_snapshot["value"]["source"]["snapshot"], "last");
    let logs = worker.logs();
    assert!(logs.contains("threads=3"), "{logs}");
    assert!(logs.contains("snapshot complete"), "{logs}");

    // Progress and the slot's lag in the task's status and at /metrics.
    let status = worker.wait_for_status("inventory", "the slot's lag is measured", |s| {
        s["tasks"][0]["metrics"]["slot_lag_bytes"].is_number()
    });
    let metrics = &status["tasks"][0]["metrics"];
    // As many as the snapshot sent: the workload may delete one of rows 1..=40 before the
    // slot's snapshot is taken (CI saw 19,999).
    assert_eq!(
        metrics["snapshot_rows"]["public.accounts"],
        ids.len() as f64,
        "{metrics}"
    );
    assert!(
        metrics["snapshot_rows_estimated"]["public.accounts"].is_number(),
        "{metrics}"
    );
    assert_eq!(metrics["snapshot_tables_done"], 1.0, "{metrics}");
    let scrape = worker.scrape();
    assert!(
        scrape.task("sluice_slot_lag_bytes", "inventory", 0) >= 0.0,
        "{}",
        scrape.text
    );
    assert_eq!(
        scrape.value(
            "sluice_slot_wal_status",
            &[("connector", "inventory"), ("status", "reserved")]
        ),
        Some(1.0),
        "{}",
        scrape.text
    );
    assert_eq!(
        scrape.value(
            "sluice_snapshot_rows",
            &[
                ("connector", "inventory"),
                ("task", "0"),
                ("table", "public.accounts")
            ]
        ),
        Some(ids.len() as f64),
        "{}",
        scrape.text
    );
    // Kafka Connect's task figures agree with the events the oracle sink wrote: nothing is
    // filtered, so every record polled was written on and put into the sink.
    let mut scrape = scrape;
    wait_until(
        "the sink has flushed every record the source wrote",
        Duration::from_secs(30),
        || {
            scrape = worker.scrape();
            let written = scrape.task(
                "kafka_connect_source_task_metrics_source_record_write_total",
                "inventory",
                0,
            );
            let put = scrape.task(
                "kafka_connect_sink_task_metrics_sink_record_send_total",
                "oracle",
                0,
            );
            written == put && put == lines(&events).len() as f64
        },
    );
    assert_eq!(
        scrape.task(
            "kafka_connect_source_task_metrics_source_record_poll_total",
            "inventory",
            0
        ),
        lines(&events).len() as f64,
        "{}",
        scrape.text
    );
    // Debezium's snapshot and streaming metrics under Debezium's names.
    let debezium = |name: &str, context: &str, table: Option<&str>| {
        scrape.debezium("postgres", name, context, table)
    };
    assert_eq!(
        debezium("RowsScanned", "snapshot", Some("public.accounts")),
        ids.len() as f64
    );
    assert_eq!(debezium("SnapshotCompleted", "snapshot", None), 1.0);
    assert_eq!(debezium("SnapshotRunning", "snapshot", None), 0.0);
    assert_eq!(debezium("RemainingTableCount", "snapshot", None), 0.0);
    assert_eq!(debezium("Connected", "streaming", None), 1.0);
    let streamed = lines(&events)
        .iter()
        .filter(|l| {
            let event: Json = serde_json::from_str(l).unwrap();
            event["value"]["op"] != "r"
        })
        .count();
    assert_eq!(
        debezium("TotalNumberOfEventsSeen", "streaming", None),
        streamed as f64,
        "every streamed event, tombstones included"
    );
    assert!(debezium("NumberOfCommittedTransactions", "streaming", None) >= 1.0);
    assert!(debezium("MilliSecondsBehindSource", "streaming", None) >= 0.0);
    // The last transaction streamed is the last one the source saw committed.
    let last_transaction = lines(&events).iter().rev().find_map(|l| {
        let event: Json = serde_json::from_str(l).unwrap();
        (event["value"]["op"] != "r")
            .then(|| event["value"]["source"]["txId"].as_f64())
            .flatten()
    });
    assert_eq!(
        Some(debezium("LastTransactionId", "streaming", None)),
        last_transaction,
        "{}",
        scrape.text
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// kill -9 in the middle of a snapshot: the restarted task resumes after the last committed
/// row instead of starting over; rows up to it arrive exactly once, and the replayed events
/// still equal the table.
#[test]
fn a_snapshot_interrupted_by_kill_9_resumes_after_the_last_committed_row() {
    let pg = Cluster::start();
    pg.create_accounts();
    pg.sql("insert into accounts select g, 'owner-' || g, g from generate_series(1, 100000) g");
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs_with(
        dir.path(),
        &pg,
        json!({"snapshot.max.threads": "1", "snapshot.fetch.size": "1000", "max.batch.size": "500"}),
    );
    let events = dir.path().join("events.jsonl");
    let offsets = dir.path().join("connect.offsets");
    let worker = Worker::start(dir.path(), &args);
    wait_until(
        "a mid-snapshot offset is committed",
        Duration::from_secs(60),
        || {
            std::fs::read_to_string(&offsets)
                .map(|o| o.contains("snapshot_key"))
                .unwrap_or(false)
        },
    );
    let offset = &kill_mid_snapshot(worker, &offsets);
    let resume_after: i64 = offset["snapshot_key"][0].as_str().unwrap().parse().unwrap();
    assert_eq!(offset["snapshot_table"], "public.accounts");

    let worker = Worker::start(dir.path(), &args);
    pg.sql("set synchronous_commit = on; update accounts set balance = -1 where id = 1");
    wait_for_state(&pg, &events);
    assert!(worker.logs().contains("resuming an interrupted snapshot"));
    let ids = snapshot_ids(&lines(&events));
    for id in [1, resume_after / 2, resume_after] {
        assert_eq!(
            ids.iter().filter(|&&i| i == id).count(),
            1,
            "row {id} (at or before the committed row {resume_after}) arrives once"
        );
    }
    assert!(
        ids.len() as i64 <= 100000 + (100000 - resume_after),
        "only rows after the committed one may arrive twice"
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// Every row of `accounts` as JSON (`row_to_json`), by id.
fn table_rows(pg: &Cluster) -> BTreeMap<i64, Json> {
    pg.sql("select row_to_json(a)::text from accounts a")
        .iter()
        .map(|row| {
            let row: Json = serde_json::from_str(row).unwrap();
            (row["id"].as_i64().unwrap(), row)
        })
        .collect()
}

/// Replayed rows with every column the table has now (a column added later is null in the
/// rows written before it existed, as in the table).
fn replayed_rows(events: &Path, columns: &[&str]) -> BTreeMap<i64, Json> {
    replay(&lines(events))
        .0
        .into_iter()
        .map(|(id, after)| {
            let row: serde_json::Map<String, Json> = columns
                .iter()
                .map(|c| (c.to_string(), after.get(*c).cloned().unwrap_or(Json::Null)))
                .collect();
            (id, Json::Object(row))
        })
        .collect()
}

/// The randomized workload with a TRUNCATE and an `ALTER TABLE … ADD COLUMN` in it, while the
/// worker is killed -9 five times: the replayed events end at the table's exact contents.
/// Truncate events are skipped by default (`skipped.operations=t`, as in Debezium); this test
/// lets them through with `skipped.operations=none`.
#[test]
fn a_randomized_workload_with_truncate_and_alter_survives_five_kill_9s() {
    let pg = Cluster::start();
    pg.create_accounts();
    pg.sql("insert into accounts select g, 'owner-' || g, g from generate_series(1, 30) g");
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs_with(dir.path(), &pg, json!({"skipped.operations": "none"}));
    let events = dir.path().join("events.jsonl");
    let mut worker = Worker::start(dir.path(), &args);
    for round in 0..5u64 {
        pg.mixed_workload(100 + round, 15);
        match round {
            1 => pg.sql("truncate accounts"),
            2 => pg.sql("alter table accounts add column note text"),
            3 => pg.sql("update accounts set note = 'n' || id where id % 2 = 0"),
            _ => Vec::new(),
        };
        pg.mixed_workload(200 + round, 15);
        // Kill at a different moment each round: right away, or after some events arrived.
        if round % 2 == 1 {
            let seen = lines(&events).len();
            wait_until("some events arrive", Duration::from_secs(30), || {
                lines(&events).len() > seen
            });
        }
        worker.kill9();
        worker = Worker::start(dir.path(), &args);
    }
    pg.sql("set synchronous_commit = on; insert into accounts values (9999, 'last', 0)");
    let columns = ["id", "owner", "balance", "note"];
    let want = table_rows(&pg);
    wait_until(
        "the replayed events equal the table",
        Duration::from_secs(60),
        || replayed_rows(&events, &columns) == want,
    );
    assert!(
        lines(&events).iter().any(|l| l.contains("\"op\":\"t\"")),
        "the truncate is an event"
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// An update that leaves a TOASTed column untouched: pgoutput does not resend the value, and
/// the event carries Debezium's placeholder for it.
#[test]
fn an_unchanged_toasted_value_arrives_as_debezium_s_placeholder() {
    let pg = Cluster::start();
    pg.sql("create table accounts (id bigint primary key, owner text not null, balance bigint not null, big text)");
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs(dir.path(), &pg);
    let events = dir.path().join("events.jsonl");
    let worker = Worker::start(dir.path(), &args);
    pg.wait_for_slot("debezium");
    // ~32 kB of incompressible text: stored out of line (TOAST).
    pg.sql("insert into accounts select 1, 'ann', 1, string_agg(md5(g::text), '') from generate_series(1, 1000) g");
    pg.sql("set synchronous_commit = on; update accounts set balance = 2 where id = 1");
    worker.wait_until("insert and update", Duration::from_secs(30), || {
        lines(&events).len() == 2
    });
    let e: Vec<Json> = lines(&events)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(e[0]["value"]["after"]["big"].as_str().unwrap().len(), 32000);
    assert_eq!(e[1]["value"]["after"]["balance"], 2);
    assert_eq!(
        e[1]["value"]["after"]["big"], "__debezium_unavailable_value",
        "the unchanged TOASTed value is not resent"
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// The same CDC stream through Kafka (a Tansu broker; sluice creates the topics, as Tansu does
/// not auto-create): the connector's records go to `dbserver1.public.accounts` with the
/// JsonConverter, the oracle sink reads them back from the topic, and after a restart the
/// replayed events still equal the table.
#[test]
fn cdc_through_kafka_replays_to_the_table_across_a_restart() {
    let pg = Cluster::start();
    let broker = support::kafka::Broker::start();
    pg.create_accounts();
    pg.sql("insert into accounts select g, 'owner-' || g, g * 10 from generate_series(1, 20) g");
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs(dir.path(), &pg);
    support::write_json_worker(dir.path(), "");
    let env = [
        ("SLUICE__BOOTSTRAP_SERVERS", broker.addr.as_str()),
        ("SLUICE__CONSUMER_SESSION_TIMEOUT_MS", "6000"),
    ];
    let events = dir.path().join("events.jsonl");
    let worker = Worker::start_with_env(dir.path(), &args, &env);
    pg.mixed_workload(21, 20);
    wait_for_state(&pg, &events);
    // A clean stop and restart: kill -9 through Tansu is covered by kafka_transport.rs, which
    // also explains how Tansu can strand a killed member's partition.
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
    pg.mixed_workload(22, 20);
    let worker = Worker::start_with_env(dir.path(), &args, &env);
    pg.sql("set synchronous_commit = on; insert into accounts values (500, 'last', 1)");
    wait_for_state(&pg, &events);
    let first: Json = serde_json::from_str(&lines(&events)[0]).unwrap();
    assert_eq!(first["topic"], "dbserver1.public.accounts");
    assert_eq!(first["value"]["op"], "r");
    let topic = broker.read("dbserver1.public.accounts", 1);
    let value: Json = serde_json::from_str(&topic[0].text()).unwrap();
    assert_eq!(
        value["schema"]["name"], "dbserver1.public.accounts.Envelope",
        "JsonConverter envelope with the Debezium schema"
    );
    assert_eq!(value["payload"]["op"], "r");
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// A Debezium user's unwrap chain runs unchanged: ExtractNewRecordState (rewrite deletes,
/// add.fields) then Kafka Connect's MaskField, on the live change stream.
#[test]
fn debezium_s_unwrap_and_kafka_connect_smts_transform_the_stream() {
    let pg = Cluster::start();
    pg.create_accounts();
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs_with(
        dir.path(),
        &pg,
        json!({
            "transforms": "unwrap,mask",
            "transforms.unwrap.type": "io.debezium.transforms.ExtractNewRecordState",
            "transforms.unwrap.delete.handling.mode": "rewrite",
            "transforms.unwrap.add.fields": "op,table,lsn",
            "transforms.mask.type": "org.apache.kafka.connect.transforms.MaskField$Value",
            "transforms.mask.fields": "owner",
            "transforms.mask.replacement": "***",
        }),
    );
    let events = dir.path().join("events.jsonl");
    let worker = Worker::start(dir.path(), &args);
    pg.wait_for_slot("debezium");
    pg.sql("insert into accounts values (1, 'ann', 5)");
    pg.sql("update accounts set balance = 6 where id = 1");
    pg.sql("set synchronous_commit = on; delete from accounts where id = 1");
    wait_until("three rows", Duration::from_secs(30), || {
        lines(&events).len() == 3
    });
    let rows: Vec<Json> = lines(&events)
        .iter()
        .map(|l| serde_json::from_str::<Json>(l).unwrap()["value"].clone())
        .collect();
    for (row, (op, deleted)) in rows
        .iter()
        .zip([("c", "false"), ("u", "false"), ("d", "true")])
    {
        assert_eq!(row["__op"], op, "{row}");
        assert_eq!(row["__deleted"], deleted, "{row}");
        assert_eq!(row["__table"], "accounts");
        assert!(row["__lsn"].is_i64());
        assert_eq!(row["id"], 1);
    }
    assert_eq!(rows[0]["owner"], "***");
    assert_eq!(rows[1]["balance"], 6);
    assert_eq!(
        rows[2]["owner"], "***",
        "a delete's `before` under REPLICA IDENTITY DEFAULT holds the key, and the NOT NULL \
         owner Debezium's empty value, which MaskField masks"
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// The change events (no tombstones, no BEGIN/END) of `events`, parsed.
fn table_events(events: &Path) -> Vec<Json> {
    lines(events)
        .iter()
        .map(|l| serde_json::from_str::<Json>(l).unwrap())
        .filter(|e| e["topic"] == "dbserver1.public.accounts" && !e["value"].is_null())
        .collect()
}

/// A large transaction in one statement batch: 3000 inserts (~200 B each), a savepoint whose
/// 1000 inserts are rolled back, 300 updates and 100 deletes; 3400 changes in all.
const LARGE_TRANSACTION: &str = "begin; \
    insert into accounts select g, 'owner-' || g || repeat('y', 200), g from generate_series(1, 3000) g; \
    savepoint s; insert into accounts select g, 'gone', g from generate_series(5001, 6000) g; rollback to savepoint s; \
    update accounts set balance = -balance where id % 10 = 0; \
    delete from accounts where id > 2900; commit";

/// pgoutput protocol 2: with `logical_decoding_work_mem` at its 64 kB minimum the server
/// streams large transactions while they run. Their blocks are kept on disk until the end: a
/// rolled-back large transaction never arrives, nor do the rows of a rolled-back savepoint,
/// and the committed one goes out in parts (max.batch.size=100) between one BEGIN and one END
/// whose counts cover all of it.
#[test]
fn large_transactions_are_streamed_by_the_server_spooled_and_sent_in_parts() {
    let pg = Cluster::start();
    pg.sql("alter system set logical_decoding_work_mem = '64kB'");
    pg.sql("select pg_reload_conf()");
    pg.create_accounts();
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs_with(
        dir.path(),
        &pg,
        json!({"provide.transaction.metadata": "true", "max.batch.size": "100", "tombstones.on.delete": "false"}),
    );
    let events = dir.path().join("events.jsonl");
    let worker = Worker::start(dir.path(), &args);
    pg.wait_for_slot("debezium");
    pg.sql(LARGE_TRANSACTION);
    pg.sql("begin; insert into accounts select g, 'rolled-back', g from generate_series(20001, 23000) g; rollback");
    pg.sql("set synchronous_commit = on; insert into accounts values (10000, 'after', 1)");
    let want = table_now(&pg);
    wait_until(
        "the replayed events equal the table",
        Duration::from_secs(120),
        || {
            let changes: Vec<String> = table_events(&events)
                .iter()
                .map(|e| json!({"value": e["value"]}).to_string())
                .collect();
            replay(&changes).0 == want
        },
    );
    worker.wait_for_log(
        "the server streamed the large transaction",
        "a streamed transaction committed",
    );
    worker.wait_for_log(
        "the rolled-back one was streamed and dropped",
        "a streamed transaction rolled back",
    );

    let changes = table_events(&events);
    assert_eq!(
        changes.len(),
        3401,
        "3400 changes and the insert after them"
    );
    assert!(
        !changes.iter().any(|e| {
            let owner = e["value"]["after"]["owner"].as_str().unwrap_or_default();
            owner == "rolled-back" || owner == "gone"
        }),
        "nothing of what was rolled back arrives"
    );
    let ops: String = changes[..3400]
        .iter()
        .map(|e| e["value"]["op"].as_str().unwrap())
        .collect();
    assert_eq!(
        ops,
        format!("{}{}{}", "c".repeat(3000), "u".repeat(300), "d".repeat(100)),
        "the transaction's changes arrive in their order"
    );
    for (i, change) in changes[..3400].iter().enumerate() {
        assert_eq!(change["value"]["transaction"]["total_order"], json!(i + 1));
    }
    let metadata: Vec<Json> = lines(&events)
        .iter()
        .map(|l| serde_json::from_str::<Json>(l).unwrap())
        .filter(|e| e["topic"] == "dbserver1.transaction")
        .collect();
    let statuses: Vec<&str> = metadata
        .iter()
        .map(|e| e["value"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["BEGIN", "END", "BEGIN", "END"]);
    assert_eq!(metadata[1]["value"]["event_count"], 3400);
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// A restart from an offset taken in the middle of a large transaction (one sent in parts):
/// the server sends the whole transaction again, and the connector skips the changes up to
/// the offset's `lsn_proc`, as Debezium does. The offset is taken from a first run on a copy
/// of the slot, so it points at a real change.
#[test]
fn a_restart_in_the_middle_of_a_large_transaction_skips_what_was_sent() {
    let pg = Cluster::start();
    pg.create_accounts();
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs_with(
        dir.path(),
        &pg,
        json!({"max.batch.size": "100", "provide.transaction.metadata": "true"}),
    );
    let events = dir.path().join("events.jsonl");
    let worker = Worker::start(dir.path(), &args);
    pg.wait_for_slot("debezium");
    pg.sql("select pg_copy_logical_replication_slot('debezium', 'again')");
    let resume_at: i64 = pg.sql("select (confirmed_flush_lsn - '0/0')::bigint from pg_replication_slots where slot_name = 'again'")[0].parse().unwrap();
    pg.sql(LARGE_TRANSACTION);
    wait_until("the whole transaction", Duration::from_secs(60), || {
        table_events(&events).len() == 3400
    });
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
    let first_run = table_events(&events);
    // Debezium's transaction id for Postgres is `<txId>:<LSN>`; END's is the commit's.
    let end: Json = lines(&events)
        .iter()
        .map(|l| serde_json::from_str::<Json>(l).unwrap())
        .find(|e| e["value"]["status"] == "END")
        .unwrap();
    let id = end["value"]["id"].as_str().unwrap();
    let (tx_id, commit) = id.split_once(':').unwrap();
    let (tx_id, commit): (i64, i64) = (tx_id.parse().unwrap(), commit.parse().unwrap());
    let through = first_run[1699]["value"]["source"]["lsn"].as_i64().unwrap();
    assert!(
        first_run[1700]["value"]["source"]["lsn"].as_i64().unwrap() > through,
        "changes of a transaction have increasing LSNs"
    );

    // Second run, on the copy, as if it had stopped after the 1700th change.
    let dir2 = tempfile::tempdir().unwrap();
    let args2 = write_configs_with(
        dir2.path(),
        &pg,
        json!({"max.batch.size": "100", "slot.name": "again"}),
    );
    std::fs::write(
        dir2.path().join("connect.offsets"),
        json!({"version": 1, "offsets": [{
            "key": ["inventory", {"server": "dbserver1"}],
            "value": {"lsn": resume_at, "lsn_proc": through, "lsn_commit": commit, "txId": tx_id},
        }]})
        .to_string(),
    )
    .unwrap();
    let events2 = dir2.path().join("events.jsonl");
    let worker = Worker::start(dir2.path(), &args2);
    pg.sql("set synchronous_commit = on; insert into accounts values (10000, 'after', 1)");
    wait_until(
        "the rest and the insert after it",
        Duration::from_secs(60),
        || {
            table_events(&events2)
                .iter()
                .any(|e| e["value"]["after"]["id"] == 10000)
        },
    );
    let second_run = table_events(&events2);
    let lsns = |events: &[Json]| -> Vec<(i64, String)> {
        events
            .iter()
            .map(|e| {
                (
                    e["value"]["source"]["lsn"].as_i64().unwrap(),
                    e["value"]["op"].to_string(),
                )
            })
            .collect()
    };
    let (sent_again, expected) = (
        lsns(&second_run[..second_run.len() - 1]),
        lsns(&first_run[1700..]),
    );
    assert!(
        sent_again == expected,
        "exactly the changes after the offset's lsn_proc: {} changes from {:?}, expected {} from {:?}",
        sent_again.len(),
        sent_again.first(),
        expected.len(),
        expected.first()
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// A stand-in for the walsender of a worker that died: pg_recvlogical streaming the slot, then
/// frozen (SIGSTOP), so its connection stays open and Postgres keeps the slot active, as it
/// does for a dead host until wal_sender_timeout. Killed (and its connection closed) on drop.
struct SlotHolder(std::process::Child);

impl SlotHolder {
    fn hold(pg: &Cluster, slot: &str) -> SlotHolder {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .unwrap()
            .filter_map(Result::ok)
            .map(|v| v.path().join("bin/pg_recvlogical"))
            .find(|p| p.exists())
            .expect("pg_recvlogical from Debian's postgresql");
        let child = std::process::Command::new(bin)
            .args([
                "-d",
                &format!(
                    "host=127.0.0.1 port={} user=postgres dbname=postgres",
                    pg.port
                ),
                "--slot",
                slot,
                "--start",
                "-f",
                "/dev/null",
                "-o",
                "proto_version=1",
                "-o",
                "publication_names=dbz_publication",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_until(
            "pg_recvlogical holds the slot",
            Duration::from_secs(30),
            || {
                !pg.sql(&format!(
                    "select 1 from pg_replication_slots where slot_name = '{slot}' and active"
                ))
                .is_empty()
            },
        );
        let status = std::process::Command::new("kill")
            .args(["-STOP", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        SlotHolder(child)
    }
}

impl Drop for SlotHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Distributed mode moves a task off a worker that died, but Postgres keeps that worker's
/// walsender — and the slot — until it notices (wal_sender_timeout, 60 s by default). The new
/// owner waits for the slot with backoff instead of failing, its task RUNNING and its log and
/// `reconnect_attempt` gauge saying why; once the slot is free it streams every change. With
/// `slot.takeover=true` it terminates the stale backend and streams at once.
#[test]
fn a_slot_held_by_a_dead_workers_walsender_is_waited_for_or_taken_over() {
    let pg = Cluster::start();
    pg.create_accounts();
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let args = write_configs(dir.path(), &pg);
    let worker = Worker::start(dir.path(), &args);
    pg.wait_for_slot("debezium");
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");

    let holder = SlotHolder::hold(&pg, "debezium");
    let worker = Worker::start(dir.path(), &args);
    worker.wait_until(
        "the task reports the held slot",
        Duration::from_secs(30),
        || worker.logs().contains("is active for PID"),
    );
    let status = worker.get("/connectors/inventory/status").1;
    assert_eq!(
        status["tasks"][0]["state"], "RUNNING",
        "waiting, not failed: {status}"
    );
    pg.sql("insert into accounts values (1, 'held', 1)");
    drop(holder);
    worker.wait_until(
        "the change made while the slot was held arrives",
        Duration::from_secs(60),
        || replay(&lines(&events)).0.contains_key(&1),
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");

    let _holder = SlotHolder::hold(&pg, "debezium");
    let args = write_configs_with(dir.path(), &pg, json!({"slot.takeover": "true"}));
    let worker = Worker::start(dir.path(), &args);
    pg.sql("insert into accounts values (2, 'taken over', 2)");
    worker.wait_until(
        "the task takes the slot over and streams",
        Duration::from_secs(30),
        || replay(&lines(&events)).0.contains_key(&2),
    );
    assert!(
        worker
            .logs()
            .contains("slot.takeover: terminated the backend holding the replication slot"),
        "{}",
        worker.logs()
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// Postgres CDC in a worker group of three `sluice distributed` processes on Tansu: kill -9 of
/// the worker running the connector's task, between two randomized write loads. The task runs
/// on another worker, resumes from the offsets topic (its slot freed when the dead worker's
/// connection closed, or waited for as above), and the events replayed from the topic equal
/// the table.
#[test]
fn cdc_in_a_worker_group_survives_kill_9_of_the_task_s_worker() {
    let pg = Cluster::start();
    let broker = support::kafka::Broker::start();
    pg.create_accounts();
    pg.sql("insert into accounts select g, 'owner-' || g, g * 10 from generate_series(1, 20) g");
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    write_configs(dir.path(), &pg);
    let mut workers = support::cdc_worker_group(dir.path(), &broker.addr, "cdc", &events);
    let _logs = support::LogsOnFailure::of_group(&workers);
    wait_for_state(&pg, &events);
    pg.mixed_workload(31, 30);
    let (victim, owner) = support::task_owner(&workers, "inventory");
    workers[victim].take().unwrap().kill9();
    pg.mixed_workload(32, 30);
    let survivor = workers.iter().flatten().next().unwrap();
    survivor.wait_for_status_within(
        "inventory",
        "the task runs on a survivor",
        Duration::from_secs(90),
        |s| s["tasks"][0]["state"] == "RUNNING" && s["tasks"][0]["worker_id"] != owner.as_str(),
    );
    pg.sql("set synchronous_commit = on; insert into accounts values (500, 'last', 1)");
    wait_for_state(&pg, &events);
    for worker in workers.into_iter().flatten() {
        let (exit, logs) = worker.terminate();
        assert!(exit.success(), "{logs}");
    }
}

/// A worker that freezes (a host that stops answering, unlike a kill -9, whose connections
/// the kernel closes) keeps its walsender, and with it the slot, until Postgres notices after
/// `wal_sender_timeout`. The group moves the task to a survivor, which waits for the slot —
/// RUNNING, its log saying why — and then streams every change. Then `DELETE ?cleanup=true`
/// through a worker that does not run the task waits for the owner to stop it and drops the
/// slot.
#[test]
fn a_frozen_worker_s_slot_passes_to_the_new_owner_and_delete_cleans_up_through_any_worker() {
    let pg = Cluster::start();
    // 60 s by default; 45 s outlasts the group's failover, so the new owner meets the slot
    // still held. (Under CI load that failover took 22 s: a frozen worker misses heartbeats
    // for a session timeout, then its port still accepts the leader's liveness probe, which
    // waits 5 s for an answer that never comes; 20 s was too short once.)
    pg.sql("alter system set wal_sender_timeout = '45s'");
    pg.sql("select pg_reload_conf()");
    let broker = support::kafka::Broker::start();
    pg.create_accounts();
    pg.sql("insert into accounts select g, 'owner-' || g, g * 10 from generate_series(1, 20) g");
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    write_configs(dir.path(), &pg);
    let mut workers = support::cdc_worker_group(dir.path(), &broker.addr, "cdc", &events);
    let _logs = support::LogsOnFailure::of_group(&workers);
    wait_for_state(&pg, &events);
    let (victim, owner) = support::task_owner(&workers, "inventory");
    let frozen = workers[victim].take().unwrap();
    let stopped = std::process::Command::new("kill")
        .args(["-STOP", &frozen.pid().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let frozen_at = std::time::Instant::now();
    pg.mixed_workload(33, 30);
    let survivors: Vec<&Worker> = workers.iter().flatten().collect();
    survivors[0].wait_for_status_within(
        "inventory",
        "the task is given to a survivor",
        Duration::from_secs(90),
        |s| s["tasks"][0]["worker_id"] != owner.as_str(),
    );
    let (new_owner, new_owner_id) = support::task_owner(&workers, "inventory");
    let new_owner = workers[new_owner].as_ref().unwrap();
    new_owner.wait_until(
        "the new owner reports the slot the frozen worker's walsender holds",
        Duration::from_secs(60),
        || new_owner.logs().contains("is active for PID"),
    );
    let status = new_owner.get("/connectors/inventory/status").1;
    assert_eq!(
        status["tasks"][0]["state"], "RUNNING",
        "waiting, not failed: {status}"
    );
    pg.sql("set synchronous_commit = on; insert into accounts values (500, 'last', 1)");
    wait_for_state(&pg, &events);
    eprintln!(
        "worker frozen → every change streamed by the new owner (wal_sender_timeout 45 s): {:?}",
        frozen_at.elapsed()
    );
    frozen.kill9();

    let other = survivors
        .iter()
        .find(|w| !w.rest.ends_with(&new_owner_id))
        .unwrap();
    let (code, body) = other.delete("/connectors/inventory?cleanup=true");
    assert_eq!(code, 204, "{body}");
    assert!(
        pg.sql("select slot_name from pg_replication_slots")
            .is_empty(),
        "cleanup=true through a worker that did not run the task drops the slot"
    );
    assert!(
        new_owner
            .logs()
            .contains("stopping work whose config was removed"),
        "{}",
        new_owner.logs()
    );
    for worker in workers.into_iter().flatten() {
        let (exit, logs) = worker.terminate();
        assert!(exit.success(), "{logs}");
    }
}

/// Kafka Connect's `/admin/loggers`: the Postgres connector's debug lines appear once its
/// logger is set to DEBUG, without a restart, and stop once it is back to INFO (set through
/// Debezium's logger name for the same code).
#[test]
fn log_levels_change_at_run_time_through_admin_loggers() {
    let pg = Cluster::start();
    pg.create_accounts();
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let worker = Worker::start(dir.path(), &write_configs(dir.path(), &pg));
    let insert_and_wait = |id: i64| {
        pg.sql(&format!(
            "insert into accounts values ({id}, 'owner-{id}', {id})"
        ));
        wait_until("the insert arrives", Duration::from_secs(30), || {
            lines(&events)
                .iter()
                .any(|l| l.contains(&format!("\"owner-{id}\"")))
        });
    };
    // Everything logged before a "log level changed" line is in the logs once it is.
    let logged_after_change = |changes: usize| {
        worker.wait_until(
            "the level change is logged",
            Duration::from_secs(10),
            || worker.logs().matches("log level changed").count() >= changes,
        );
        worker.logs().matches("transaction committed").count()
    };
    insert_and_wait(1);
    assert_eq!(worker.logs().matches("transaction committed").count(), 0);

    let (code, changed) = worker.put(
        "/admin/loggers/sluice_connector_postgres",
        Some(&json!({"level": "DEBUG"})),
    );
    assert_eq!((code, changed), (200, json!(["sluice_connector_postgres"])));
    let (_, all) = worker.get("/admin/loggers");
    assert_eq!(all["root"]["level"], "INFO", "{all}");
    assert_eq!(all["sluice_connector_postgres"]["level"], "DEBUG", "{all}");
    assert!(
        all["sluice_connector_postgres"]["last_modified"].is_i64(),
        "{all}"
    );
    let (_, one) = worker.get("/admin/loggers/sluice_connector_postgres::source");
    assert_eq!(
        one["level"], "DEBUG",
        "a module follows its crate's level: {one}"
    );
    insert_and_wait(2);
    worker.wait_until("the debug line appears", Duration::from_secs(10), || {
        worker.logs().contains("transaction committed")
    });

    let (code, changed) = worker.put(
        "/admin/loggers/io.debezium.connector.postgresql",
        Some(&json!({"level": "INFO"})),
    );
    assert_eq!(code, 200, "{changed}");
    assert_eq!(
        changed,
        json!([
            "io.debezium.connector.postgresql",
            "sluice_connector_postgres"
        ])
    );
    let debug_lines = logged_after_change(2);
    insert_and_wait(3);
    let (code, _) = worker.put(
        "/admin/loggers/sluice_runtime",
        Some(&json!({"level": "INFO"})),
    );
    assert_eq!(code, 200);
    assert_eq!(
        logged_after_change(3),
        debug_lines,
        "no debug line after the level went back to INFO"
    );

    let (code, body) = worker.put(
        "/admin/loggers/sluice_runtime",
        Some(&json!({"level": "LOUD"})),
    );
    assert_eq!(code, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Invalid log level 'LOUD'"),
        "{body}"
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// How a keyless snapshot is resumed in [`kill_a_keyless_snapshot_and_resume`].
#[derive(PartialEq)]
enum KeylessResume {
    /// From the page range of the last committed row.
    FromPage,
    /// After `VACUUM FULL`: from the table's start.
    AfterRewrite,
    /// With `snapshot.mode=initial_only` (no stream to carry rows an update moved to an
    /// earlier page): from the table's start.
    NoStream,
}

/// A table without a key stopped mid-snapshot by kill -9 resumes at chunk granularity: from
/// the `ctid` page range its last committed row was in, so rows of the pages before it arrive
/// exactly once. After a rewrite (`VACUUM FULL` moves rows between pages), or when no stream
/// follows, the table is read again from its start instead: nothing is lost, everything may
/// come twice.
fn kill_a_keyless_snapshot_and_resume(how: KeylessResume) {
    let pg = Cluster::start();
    create_readings(&pg, 100000);
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs_with(
        dir.path(),
        &pg,
        json!({"table.include.list": "public.readings", "snapshot.max.threads": "1",
               "snapshot.fetch.size": "1000", "max.batch.size": "500",
               "snapshot.mode": if how == KeylessResume::NoStream { "initial_only" } else { "initial" }}),
    );
    let events = dir.path().join("events.jsonl");
    let offsets = dir.path().join("connect.offsets");
    let committed_page = || -> Option<u64> {
        let text = std::fs::read_to_string(&offsets).ok()?;
        let offsets: Json = serde_json::from_str(&text).ok()?;
        offsets["offsets"][0]["value"]["snapshot_page"].as_u64()
    };
    let worker = Worker::start(dir.path(), &args);
    wait_until(
        "an offset past the first page range is committed",
        Duration::from_secs(60),
        || committed_page().is_some_and(|page| page > 0),
    );
    let offset = &kill_mid_snapshot(worker, &offsets);
    assert_eq!(offset["snapshot_table"], "public.readings");
    assert!(offset["snapshot_filenode"].as_u64().is_some(), "{offset}");
    let page = offset["snapshot_page"].as_u64().unwrap();
    // The rows of the pages before the committed range, as they are now (before any rewrite).
    let before: std::collections::BTreeSet<i64> = pg
        .sql(&format!(
            "select value from readings where ctid < '({page},0)'::tid"
        ))
        .iter()
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(!before.is_empty() && before.len() < 100000);
    if how == KeylessResume::AfterRewrite {
        pg.sql("vacuum full readings");
    }

    let worker = Worker::start(dir.path(), &args);
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    wait_until("every row", Duration::from_secs(120), || {
        counts.clear();
        for line in lines(&events) {
            let event: Json = serde_json::from_str(&line).unwrap();
            *counts
                .entry(event["value"]["after"]["value"].as_i64().unwrap())
                .or_default() += 1;
        }
        counts.len() == 100000
    });
    let logs = worker.logs();
    let total: usize = counts.values().sum();
    if how != KeylessResume::FromPage {
        let why = if how == KeylessResume::AfterRewrite {
            "the table was rewritten since its snapshot stopped"
        } else {
            "no stream of its updates follows"
        };
        assert!(logs.contains(why), "{logs}");
        assert!(
            before.iter().all(|v| counts[v] == 2),
            "a rewritten table is read again whole"
        );
    } else {
        assert!(
            logs.contains("resumes at the page range it stopped in"),
            "{logs}"
        );
        let twice: Vec<_> = before.iter().filter(|v| counts[*v] != 1).take(5).collect();
        assert!(
            twice.is_empty(),
            "rows before page {page} arrive exactly once: {twice:?}"
        );
        assert!(
            total <= 100000 + (100000 - before.len()),
            "only rows from the committed range on may arrive twice: {total}"
        );
    }
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

#[test]
fn a_keyless_snapshot_interrupted_by_kill_9_resumes_at_its_page_range() {
    kill_a_keyless_snapshot_and_resume(KeylessResume::FromPage);
}

#[test]
fn a_keyless_snapshot_resumed_after_a_table_rewrite_reads_the_table_again() {
    kill_a_keyless_snapshot_and_resume(KeylessResume::AfterRewrite);
}

#[test]
fn a_keyless_snapshot_with_no_stream_after_it_is_resumed_from_the_table_s_start() {
    kill_a_keyless_snapshot_and_resume(KeylessResume::NoStream);
}
