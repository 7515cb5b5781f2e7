//! MySQL/MariaDB CDC end to end on a real MariaDB 10.11 (started per test by
//! scripts/mariadb-start.sh): a Debezium MySQL connector config → embedded pipeline → the
//! JSON-lines file sink, whose events are replayed to rebuild the tables and compared with
//! the tables themselves.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value as Json, json};
use support::mariadb::Server;
use support::{Worker, lines, wait_until};

fn write_configs(dir: &Path, db: &Server, extra: Json) -> Vec<String> {
    let connector = json!({
        "connector.class": "io.debezium.connector.mariadb.MariaDbConnector",
        "database.hostname": "127.0.0.1", "database.port": db.port.to_string(),
        "database.user": "root", "database.password": "", "database.server.id": "5401",
        "topic.prefix": "dbserver1", "database.include.list": "inventory",
    });
    support::write_cdc_configs(dir, Some(connector), &extra)
}

/// `id -> row` rebuilt from the change events of `topic`.
fn replay(events: &[String], topic: &str) -> BTreeMap<i64, Json> {
    replay_topics(events, &[topic])
}

/// `id -> row` rebuilt from the change events of `topics` in the order they arrived (a table
/// renamed mid-stream has its events under both names); a truncate (`t`) empties it.
fn replay_topics(events: &[String], topics: &[&str]) -> BTreeMap<i64, Json> {
    let mut table = BTreeMap::new();
    for line in events {
        let event: Json = serde_json::from_str(line).unwrap();
        let of_table = topics.iter().any(|topic| event["topic"] == *topic);
        if !of_table || event["value"].is_null() {
            continue;
        }
        let value = &event["value"];
        match value["op"].as_str().unwrap() {
            "r" | "c" | "u" => {
                table.insert(
                    value["after"]["id"].as_i64().unwrap(),
                    value["after"].clone(),
                );
            }
            "d" => {
                table.remove(&value["before"]["id"].as_i64().unwrap());
            }
            "t" => table.clear(),
            other => panic!("unexpected op {other}"),
        }
    }
    table
}

fn table_now(db: &Server) -> BTreeMap<i64, Json> {
    db.sql("select id, owner, balance from inventory.accounts order by id")
        .iter()
        .map(|row| {
            let fields: Vec<&str> = row.split('\t').collect();
            let id: i64 = fields[0].parse().unwrap();
            (
                id,
                json!({"id": id, "owner": fields[1], "balance": fields[2].parse::<i64>().unwrap()}),
            )
        })
        .collect()
}

/// Deterministic transactions of inserts, updates (some changing the primary key) and deletes
/// over ids 1..=60.
fn workload(db: &Server, seed: u64, rounds: usize) {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = |n: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % n
    };
    for _ in 0..rounds {
        let mut statements = Vec::new();
        for _ in 0..(next(4) + 1) {
            let id = next(60) + 1;
            statements.push(match next(5) {
                0 | 1 => format!("insert into inventory.accounts values ({id}, 'o{id}', {}) on duplicate key update balance = balance + 1", next(1000)),
                2 => format!("update inventory.accounts set balance = balance * 2 + 1, owner = concat(owner, 'x') where id = {id}"),
                3 => format!("delete from inventory.accounts where id = {id}"),
                _ => format!("update inventory.accounts set id = {} where id = {id} and not exists (select 1 from (select id from inventory.accounts) t where t.id = {})", id + 100, id + 100),
            });
        }
        db.sql(&format!(
            "start transaction; {}; commit",
            statements.join("; ")
        ));
    }
}

/// Waits until the events replay to the table; on time-out the failure names the rows that
/// differ.
fn wait_for_table(db: &Server, events: &Path, topic: &str, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (replayed, table) = (replay(&lines(events), topic), table_now(db));
        if replayed == table {
            return;
        }
        if std::time::Instant::now() > deadline {
            let differ: Vec<String> = replayed
                .keys()
                .chain(table.keys())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .filter(|id| replayed.get(id) != table.get(id))
                .map(|id| {
                    format!(
                        "{id}: replayed {:?}, table {:?}",
                        replayed.get(id),
                        table.get(id)
                    )
                })
                .collect();
            let offsets = std::fs::read_to_string(events.with_file_name("connect.offsets"))
                .unwrap_or_default();
            panic!(
                "{what}: the replayed events differ from the table in {differ:?}; offsets: {offsets}"
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn create_accounts(db: &Server) {
    db.sql("create database inventory; create table inventory.accounts (id bigint primary key, owner varchar(40) not null, balance bigint not null)");
}

#[test]
fn snapshot_plus_binlog_replays_to_the_table_even_across_kill_9() {
    let db = Server::start();
    create_accounts(&db);
    db.sql("use inventory; insert into accounts select seq, concat('owner-', seq), seq * 10 from seq_1_to_20");
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs(dir.path(), &db, json!({}));
    let events = dir.path().join("events.jsonl");
    let topic = "dbserver1.inventory.accounts";

    let worker = Worker::start(dir.path(), &args);
    wait_until("the snapshot arrives", Duration::from_secs(60), || {
        lines(&events).len() >= 20
    });
    let snapshot: Vec<Json> = lines(&events)
        .iter()
        .take(20)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        snapshot.iter().all(|e| e["value"]["op"] == "r"),
        "{snapshot:?}"
    );
    assert_eq!(snapshot[0]["value"]["source"]["snapshot"], "first");
    assert_eq!(snapshot[19]["value"]["source"]["snapshot"], "last");
    assert_eq!(snapshot[0]["key"], json!({"id": 1}));
    assert_eq!(snapshot[0]["value"]["source"]["connector"], "mariadb");
    assert_eq!(
        snapshot[0]["value"]["after"],
        json!({"id": 1, "owner": "owner-1", "balance": 10})
    );

    workload(&db, 1, 40);
    wait_for_table(&db, &events, topic, "the first stream");
    let streamed: Json = lines(&events)
        .iter()
        .map(|l| serde_json::from_str::<Json>(l).unwrap())
        .find(|e| e["value"]["op"] == "c" || e["value"]["op"] == "u")
        .unwrap();
    let source = &streamed["value"]["source"];
    assert_eq!(source["snapshot"], "false");
    assert_eq!(source["db"], "inventory");
    assert_eq!(source["table"], "accounts");
    assert_eq!(source["server_id"], 1);
    assert!(
        source["file"].as_str().unwrap().starts_with("binlog."),
        "{source}"
    );
    assert!(
        source["gtid"].as_str().unwrap().starts_with("0-1-"),
        "{source}"
    );
    // Debezium's metrics under its names: the snapshot's rows and every streamed event.
    let scrape = worker.scrape();
    let debezium = |name: &str, context: &str, table: Option<&str>| {
        scrape.debezium("mariadb", name, context, table)
    };
    assert_eq!(
        debezium("RowsScanned", "snapshot", Some("inventory.accounts")),
        20.0
    );
    assert_eq!(debezium("SnapshotCompleted", "snapshot", None), 1.0);
    assert_eq!(debezium("Connected", "streaming", None), 1.0);
    let streamed_events = lines(&events).len() - 20;
    assert_eq!(
        debezium("TotalNumberOfEventsSeen", "streaming", None),
        streamed_events as f64
    );
    assert!(debezium("NumberOfCommittedTransactions", "streaming", None) >= 1.0);

    worker.kill9();
    workload(&db, 2, 40);
    let worker = Worker::start(dir.path(), &args);
    workload(&db, 3, 40);
    wait_for_table(&db, &events, topic, "after kill -9");
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
    let offsets: Json =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("connect.offsets")).unwrap())
            .unwrap();
    let offset = offsets["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["key"][1] == json!({"server": "dbserver1"}))
        .map(|o| o["value"].clone())
        .unwrap();
    assert!(
        offset["file"].is_string() && offset["pos"].is_u64(),
        "Debezium's offset layout: {offset}"
    );
    assert!(offset.get("snapshot").is_none(), "{offset}");
}

#[test]
fn key_changes_are_delete_tombstone_create_with_debezium_s_headers_and_types_map_as_debezium_does()
{
    let db = Server::start();
    db.sql(
        "create database inventory; create table inventory.types (id int primary key, t tinyint, b tinyint(1), \
         s smallint unsigned, m mediumint, u int unsigned, big bigint unsigned, f float, d double, dec1 decimal(10,2), \
         c char(3), v varchar(20), tx text, bin varbinary(4), e enum('a','b','c'), st set('x','y','z'), \
         day date, tm time(2), dt datetime, dt6 datetime(6), ts timestamp(3) null, y year, bit1 bit(1), bits bit(10), j json)",
    );
    let row = "(1, -5, 1, 65535, -8388608, 4294967295, 18446744073709551615, 1.5, -2.25, -1234.56, 'abc', 'héllo', 'long text', \
               x'00ff', 'b', 'x,z', '2024-02-29', '-00:00:01.50', '2024-02-29 10:20:30', '2024-02-29 10:20:30.123456', \
               '2024-02-29 10:20:30.123', 0, b'1', b'1000000001', '{\"k\": [1, 2]}')";
    db.sql(&format!("insert into inventory.types values {row}"));
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs(dir.path(), &db, json!({}));
    let events = dir.path().join("events.jsonl");
    let worker = Worker::start(dir.path(), &args);
    wait_until("the snapshot row arrives", Duration::from_secs(60), || {
        !lines(&events).is_empty()
    });
    db.sql(&format!(
        "insert into inventory.types values {}",
        row.replacen("(1,", "(2,", 1)
    ));
    db.sql("update inventory.types set id = 3 where id = 2");
    wait_until("the stream arrives", Duration::from_secs(60), || {
        lines(&events).len() >= 5
    });
    let all: Vec<Json> = lines(&events)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let expected = |id: i64| {
        json!({
            "id": id, "t": -5, "b": 1, "s": 65535, "m": -8388608, "u": 4294967295i64,
            "big": -1,                                 // long mode: BIGINT UNSIGNED max wraps, as in Debezium
            "f": 1.5, "d": -2.25,
            "dec1": "/h3A",                            // Decimal -123456 at scale 2
            "c": "abc", "v": "héllo", "tx": "long text", "bin": "AP8=",
            "e": "b", "st": "x,z",
            "day": 19782,                              // io.debezium.time.Date
            "tm": -1500000,                            // MicroTime: -1.5 s (negative TIME(2))
            "dt": 1709202030000i64,                    // Timestamp (ms)
            "dt6": 1709202030123456i64,                // MicroTimestamp
            "ts": "2024-02-29T10:20:30.123Z",          // ZonedTimestamp in UTC
            "y": 0,                                    // YEAR 0 stays 0
            "bit1": true, "bits": "AQI=",              // Bits, little-endian
            "j": "{\"k\": [1, 2]}",
        })
    };
    assert_eq!(all[0]["value"]["op"], "r");
    assert_eq!(all[0]["value"]["after"], expected(1), "snapshot");
    assert_eq!(all[1]["value"]["op"], "c");
    assert_eq!(all[1]["value"]["after"], expected(2), "binlog");
    // A key change: delete (and tombstone) under the old key, then a create under the new.
    assert_eq!(all[2]["value"]["op"], "d");
    assert_eq!(all[2]["key"], json!({"id": 2}));
    assert_eq!(all[3]["value"], Json::Null);
    assert_eq!(all[4]["value"]["op"], "c");
    assert_eq!(all[4]["key"], json!({"id": 3}));
    let header = |event: &Json, key: &str| {
        event["headers"]
            .as_array()
            .and_then(|h| h.iter().find(|h| h["key"] == key))
            .map(|h| h["value"].clone())
    };
    assert_eq!(header(&all[2], "__debezium.newkey"), Some(json!({"id": 3})));
    assert_eq!(header(&all[3], "__debezium.newkey"), Some(json!({"id": 3})));
    assert_eq!(header(&all[4], "__debezium.oldkey"), Some(json!({"id": 2})));
    assert_eq!(
        header(&all[1], "__debezium.context.connectorName"),
        Some(json!("mariadb"))
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

#[test]
fn a_binlog_not_in_row_format_is_refused_with_the_fix() {
    let db = Server::start();
    db.sql("set global binlog_format = 'STATEMENT'");
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs(dir.path(), &db, json!({}));
    let worker = Worker::start(dir.path(), &args);
    let trace = worker.failed_trace("inventory");
    assert!(
        trace.contains("binlog_format is STATEMENT") && trace.contains("ROW"),
        "{trace}"
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// A server restart while streaming: the task stays RUNNING, reconnects with backoff and
/// resumes after the last transaction it handed out, so the replay still equals the table.
#[test]
fn a_server_restart_mid_stream_is_survived_by_reconnecting() {
    let db = Server::start();
    create_accounts(&db);
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs(dir.path(), &db, json!({}));
    let events = dir.path().join("events.jsonl");
    let topic = "dbserver1.inventory.accounts";
    let worker = Worker::start(dir.path(), &args);
    worker.wait_for_log("the stream to start", "streaming the binlog");
    workload(&db, 7, 30);
    wait_for_table(&db, &events, topic, "before the restart");
    db.stop();
    db.start_again();
    workload(&db, 8, 30);
    wait_for_table(&db, &events, topic, "after the restart");
    let status = worker.wait_for_status("inventory", "the task runs", |s| {
        support::all_tasks(s, "RUNNING")
    });
    assert_eq!(status["tasks"][0]["state"], "RUNNING");
    assert!(worker.logs().contains("reconnecting"), "{}", worker.logs());
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// The stream resumes by GTID: after a stop, the server rotates its binlog and purges the file
/// the stored offset names, and the restarted connector still goes on exactly after the last
/// transaction it handed out (by file and position it could not).
#[test]
fn a_restart_resumes_by_gtid_after_the_offset_s_binlog_file_was_purged() {
    let db = Server::start();
    create_accounts(&db);
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs(dir.path(), &db, json!({}));
    let events = dir.path().join("events.jsonl");
    let topic = "dbserver1.inventory.accounts";
    let worker = Worker::start(dir.path(), &args);
    worker.wait_for_log("the stream to start", "streaming the binlog");
    workload(&db, 11, 20);
    wait_for_table(&db, &events, topic, "before the stop");
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
    let first_file = db.sql("show master status")[0]
        .split('\t')
        .next()
        .unwrap()
        .to_owned();
    db.sql("flush binary logs");
    workload(&db, 12, 20);
    let current = db.sql("show master status")[0]
        .split('\t')
        .next()
        .unwrap()
        .to_owned();
    // The server keeps a file a (just closed) replica connection still reads: purge until
    // it is gone.
    wait_until(
        &format!("{first_file} is purged"),
        Duration::from_secs(20),
        || {
            db.sql(&format!("purge binary logs to '{current}'"));
            !db.sql("show binary logs")
                .iter()
                .any(|l| l.starts_with(&first_file))
        },
    );
    let worker = Worker::start(dir.path(), &args);
    worker.wait_for_log(
        "the GTID-positioned stream",
        "streaming the binlog from a GTID position",
    );
    workload(&db, 13, 20);
    wait_for_table(&db, &events, topic, "after the purge");
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// Where each rows event of `events` (change events of one transaction) starts, in order.
fn rows_event_starts(events: &[Json]) -> Vec<i64> {
    let mut starts: Vec<i64> = Vec::new();
    for event in events {
        let pos = event["value"]["source"]["pos"].as_i64().unwrap();
        if starts.last() != Some(&pos) {
            starts.push(pos);
        }
    }
    starts
}

/// Where the GTID event of the transaction whose first rows event starts at `first_rows` is.
fn gtid_before(db: &Server, file: &str, first_rows: i64) -> i64 {
    db.sql(&format!("show binlog events in '{file}'"))
        .iter()
        .filter_map(|row| {
            let fields: Vec<&str> = row.split('\t').collect();
            let pos: i64 = fields.get(1)?.parse().ok()?;
            (fields.get(2) == Some(&"Gtid") && pos < first_rows).then_some(pos)
        })
        .max()
        .unwrap()
}

/// Writes the offsets file of `dir` with `offset` as connector `inventory`'s.
fn store_offset(dir: &Path, offset: Json) {
    std::fs::write(
        dir.join("connect.offsets"),
        json!({"version": 1, "offsets": [{
            "key": ["inventory", {"server": "dbserver1"}],
            "value": offset,
        }]})
        .to_string(),
    )
    .unwrap();
}

/// A transaction larger than `max.batch.size` goes out in parts, each ending with an offset
/// that resumes at the transaction's start and skips the rows events sent (`event`, as in
/// Debezium's offsets). A connector started from such an offset sends exactly the rest.
#[test]
fn a_restart_inside_a_large_transaction_sends_exactly_the_rest() {
    let db = Server::start();
    create_accounts(&db);
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs(dir.path(), &db, json!({"max.batch.size": "100"}));
    let events = dir.path().join("events.jsonl");
    let worker = Worker::start(dir.path(), &args);
    worker.wait_for_log("the stream to start", "streaming the binlog");
    db.sql("use inventory; start transaction; insert into accounts select seq, repeat('x', 30), seq from seq_1_to_3000; commit");
    wait_until("the whole transaction", Duration::from_secs(120), || {
        lines(&events).len() >= 3000
    });
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
    let first: Vec<Json> = lines(&events)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(first.len(), 3000);
    // The rows events of the transaction, by where they start.
    let starts = rows_event_starts(&first);
    assert!(
        starts.len() > 4,
        "the 3000 rows span several rows events: {starts:?}"
    );
    let file = first[0]["value"]["source"]["file"]
        .as_str()
        .unwrap()
        .to_owned();
    let gtid_at = gtid_before(&db, &file, starts[0]);
    let skip = starts.len() / 2;

    // A second connector, as if the first had stopped after `skip` rows events went out.
    let dir2 = tempfile::tempdir().unwrap();
    let args2 = write_configs(dir2.path(), &db, json!({"max.batch.size": "100"}));
    store_offset(
        dir2.path(),
        json!({"file": file, "pos": gtid_at, "event": skip, "row": 0, "server_id": 1, "ts_sec": 0}),
    );
    let events2 = dir2.path().join("events.jsonl");
    let worker = Worker::start(dir2.path(), &args2);
    db.sql("insert into inventory.accounts values (9999, 'after', 1)");
    wait_until(
        "the rest and the insert after it",
        Duration::from_secs(120),
        || lines(&events2).iter().any(|l| l.contains("\"id\":9999")),
    );
    let second: Vec<Json> = lines(&events2)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids = |events: &[Json]| -> Vec<i64> {
        events
            .iter()
            .map(|e| e["value"]["after"]["id"].as_i64().unwrap())
            .collect()
    };
    let rest: Vec<Json> = first
        .iter()
        .filter(|e| e["value"]["source"]["pos"].as_i64().unwrap() >= starts[skip])
        .cloned()
        .collect();
    assert_eq!(
        ids(&second[..second.len() - 1]),
        ids(&rest),
        "exactly the rows events after the offset's `event`"
    );
    assert!(
        worker
            .logs()
            .contains("resuming inside a large transaction"),
        "{}",
        worker.logs()
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// `provide.transaction.metadata=true`, as Debezium's MySQL connector does it: BEGIN and END
/// on `<prefix>.transaction` around every binlog transaction (one that changed no captured
/// table too, with no events), the GTID as the id, the `transaction` block in each change
/// event; a transaction sent in parts has one BEGIN and one END, and a restart inside it
/// counts on from the counts its offset holds, without a second BEGIN.
#[test]
fn transaction_metadata_wraps_each_transaction_and_counts_on_across_parts_and_a_restart() {
    let db = Server::start();
    create_accounts(&db);
    db.sql("create table inventory.notes (id bigint primary key, body text); create database elsewhere; create table elsewhere.t (id int primary key)");
    let dir = tempfile::tempdir().unwrap();
    let settings = json!({"provide.transaction.metadata": "true", "tombstones.on.delete": "false", "max.batch.size": "100"});
    let args = write_configs(dir.path(), &db, settings.clone());
    let events = dir.path().join("events.jsonl");
    let worker = Worker::start(dir.path(), &args);
    worker.wait_for_log("the stream to start", "streaming the binlog");
    let read = |path: &Path| -> Vec<Json> {
        lines(path)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    db.sql("use inventory; begin; insert into accounts values (1, 'a', 1), (2, 'b', 2); insert into notes values (1, 'n'); delete from accounts where id = 1; commit");
    wait_until("BEGIN, four events, END", Duration::from_secs(60), || {
        lines(&events).len() >= 6
    });
    let e = read(&events);
    let gtid = e[1]["value"]["source"]["gtid"].as_str().unwrap().to_owned();
    assert_eq!(e[0]["topic"], "dbserver1.transaction");
    assert_eq!(e[0]["key"], json!({"id": gtid}));
    assert_eq!(
        e[0]["value"],
        json!({"status": "BEGIN", "id": gtid, "event_count": null, "data_collections": null, "ts_ms": e[0]["value"]["ts_ms"]})
    );
    let orders = [(1, 1), (2, 2), (3, 1), (4, 3)];
    for (event, (total, per_table)) in e[1..5].iter().zip(orders) {
        assert_eq!(
            event["value"]["transaction"],
            json!({"id": gtid, "total_order": total, "data_collection_order": per_table}),
            "{event}"
        );
    }
    assert_eq!(
        e[5]["value"],
        json!({"status": "END", "id": gtid, "event_count": 4,
               "data_collections": [{"data_collection": "inventory.accounts", "event_count": 3},
                                    {"data_collection": "inventory.notes", "event_count": 1}],
               "ts_ms": e[0]["value"]["ts_ms"]})
    );

    // A transaction on a table not captured: BEGIN and END, no events between.
    db.sql("insert into elsewhere.t values (1)");
    wait_until("BEGIN and END of it", Duration::from_secs(60), || {
        lines(&events).len() >= 8
    });
    let e = read(&events);
    assert_eq!(e[6]["value"]["status"], "BEGIN");
    assert_eq!(
        e[7]["value"],
        json!({"status": "END", "id": e[6]["value"]["id"], "event_count": 0,
               "data_collections": [], "ts_ms": e[7]["value"]["ts_ms"]})
    );
    assert_ne!(e[6]["value"]["id"], json!(gtid));

    // A transaction larger than max.batch.size goes out in parts: one BEGIN, one END.
    db.sql("use inventory; start transaction; insert into accounts select seq, repeat('x', 30), seq from seq_10_to_1009; commit");
    wait_until(
        "the large transaction's END",
        Duration::from_secs(120),
        || lines(&events).len() >= 8 + 1002,
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
    let e = read(&events);
    let large = &e[8..];
    assert_eq!(large.len(), 1002);
    let large_id = large[0]["value"]["id"].as_str().unwrap().to_owned();
    assert_eq!(large[0]["value"]["status"], "BEGIN");
    for (i, event) in large[1..1001].iter().enumerate() {
        assert_eq!(
            event["value"]["transaction"],
            json!({"id": large_id, "total_order": i + 1, "data_collection_order": i + 1})
        );
    }
    assert_eq!(large[1001]["value"]["status"], "END");
    assert_eq!(large[1001]["value"]["event_count"], 1000);

    // As if a worker had stopped after half of its rows events: the offset of that part holds
    // the counts, so the rest counts on and no second BEGIN goes out.
    let starts = rows_event_starts(&large[1..1001]);
    assert!(starts.len() > 4, "several rows events: {starts:?}");
    let skip = starts.len() / 2;
    let sent = large[1..1001]
        .iter()
        .filter(|e| e["value"]["source"]["pos"].as_i64().unwrap() < starts[skip])
        .count();
    let file = large[1]["value"]["source"]["file"].as_str().unwrap();
    let gtid_at = gtid_before(&db, file, starts[0]);
    let dir2 = tempfile::tempdir().unwrap();
    let args2 = write_configs(dir2.path(), &db, settings);
    store_offset(
        dir2.path(),
        json!({"file": file, "pos": gtid_at, "event": skip, "row": 0, "server_id": 1, "ts_sec": 0,
               "transaction_id": large_id,
               "transaction_data_collection_order_inventory.accounts": sent}),
    );
    let events2 = dir2.path().join("events.jsonl");
    let worker = Worker::start(dir2.path(), &args2);
    wait_until(
        "the rest of the transaction",
        Duration::from_secs(120),
        || lines(&events2).len() > 1000 - sent,
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
    let rest = read(&events2);
    assert_eq!(rest.len(), 1000 - sent + 1, "no second BEGIN");
    for (i, event) in rest[..1000 - sent].iter().enumerate() {
        assert_eq!(
            event["value"]["transaction"],
            json!({"id": large_id, "total_order": sent + i + 1, "data_collection_order": sent + i + 1})
        );
    }
    assert_eq!(
        rest[1000 - sent]["value"],
        json!({"status": "END", "id": large_id, "event_count": 1000,
               "data_collections": [{"data_collection": "inventory.accounts", "event_count": 1000}],
               "ts_ms": rest[1000 - sent]["value"]["ts_ms"]})
    );
}

/// The column names of a `tableChanges` entry, in order.
fn column_names(change: &Json) -> Vec<&str> {
    change["table"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

/// The schema history file's lines, parsed.
fn history_records(path: &Path) -> Vec<Json> {
    lines(path)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A restart prunes schema history records past its offset (what a crash left written ahead
/// of the offsets); a history that cannot be read fails the task naming its line; and
/// `snapshot.mode=recovery` rebuilds it from the tables as they are now, at the stored
/// offset, sends no snapshot data, and streams on.
#[test]
fn recovery_rebuilds_a_corrupted_schema_history_and_a_restart_prunes_records_past_its_offset() {
    let db = Server::start();
    db.sql("set global binlog_row_metadata = 'NO_LOG'");
    create_accounts(&db);
    db.sql("insert into inventory.accounts values (1, 'one', 1)");
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("schema-history.jsonl");
    let settings = json!({"schema.history.internal.file.filename": history.to_str().unwrap()});
    let args = write_configs(dir.path(), &db, settings.clone());
    let events = dir.path().join("events.jsonl");
    let columns = ["id", "owner", "balance"];
    let worker = Worker::start(dir.path(), &args);
    wait_for_rows(&db, &events, "accounts", &columns, "the snapshot");
    db.sql("alter table inventory.accounts add column note varchar(10) not null default 'n'");
    // Updated too, so its events carry the new column as the table now does.
    db.sql("insert into inventory.accounts values (2, 'two', 2, 'x'); update inventory.accounts set balance = 10 where id = 1");
    let columns = ["id", "owner", "balance", "note"];
    wait_for_rows(&db, &events, "accounts", &columns, "after ADD COLUMN");
    let end: Vec<String> = db.sql("show master status");
    let end_pos: u64 = end[0].split('\t').nth(1).unwrap().parse().unwrap();
    wait_until(
        "the offset reaches the binlog's end",
        Duration::from_secs(30),
        || stored_position(dir.path()).is_some_and(|(_, pos)| pos >= end_pos),
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");

    // A record past the offset, as a crash between writing it and storing the offset leaves.
    let (file, pos) = stored_position(dir.path()).unwrap();
    let ahead = json!({"source": {"server": "dbserver1"}, "position": {"file": file, "pos": pos + 1_000_000},
                       "ts_ms": 0, "databaseName": "inventory", "ddl": "DROP TABLE accounts", "tableChanges": []});
    let before = history_records(&history);
    std::fs::write(
        &history,
        format!("{}{ahead}\n", std::fs::read_to_string(&history).unwrap()),
    )
    .unwrap();
    let worker = Worker::start(dir.path(), &args);
    worker.wait_for_log(
        "the record past the offset pruned",
        "pruned schema history records past the resume position",
    );
    db.sql("insert into inventory.accounts values (3, 'three', 3, 'y')");
    wait_for_rows(
        &db,
        &events,
        "accounts",
        &columns,
        "after the pruning restart",
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
    assert_eq!(
        history_records(&history)[..before.len()],
        before[..],
        "the records up to the offset stay"
    );
    assert!(!history_records(&history).contains(&ahead), "pruned");

    // A corrupted history fails the task naming the file's line.
    std::fs::write(&history, "garbage\n").unwrap();
    let worker = Worker::start(dir.path(), &args);
    worker.wait_for_log(
        "the task to fail on the history",
        "line 1 is not a history record",
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");

    // snapshot.mode=recovery rebuilds it at the stored offset and streams on.
    let (file, pos) = stored_position(dir.path()).unwrap();
    let mut recovery = settings;
    recovery["snapshot.mode"] = json!("recovery");
    let args = write_configs(dir.path(), &db, recovery);
    let snapshot_reads = |events: &Path| {
        lines(events)
            .iter()
            .filter(|l| l.contains("\"op\":\"r\""))
            .count()
    };
    assert_eq!(snapshot_reads(&events), 1);
    let worker = Worker::start(dir.path(), &args);
    worker.wait_for_log(
        "the history rebuilt",
        "the schema history is rebuilt from the captured tables",
    );
    db.sql("insert into inventory.accounts values (4, 'four', 4, 'z'); update inventory.accounts set note = 'u' where id = 1");
    wait_for_rows(&db, &events, "accounts", &columns, "after recovery");
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
    assert_eq!(
        snapshot_reads(&events),
        1,
        "recovery sends no snapshot data"
    );
    let rebuilt = history_records(&history);
    assert_eq!(rebuilt.len(), 1, "one table captured: {rebuilt:?}");
    let record = &rebuilt[0];
    assert_eq!(record["source"]["server"], "dbserver1");
    assert_eq!(record["position"]["file"], json!(file));
    assert_eq!(record["position"]["pos"], json!(pos));
    assert_eq!(record["databaseName"], "inventory");
    assert!(
        record["ddl"]
            .as_str()
            .unwrap()
            .starts_with("CREATE TABLE `accounts`"),
        "{record}"
    );
    let change = &record["tableChanges"][0];
    assert_eq!(change["type"], "CREATE");
    assert_eq!(change["id"], "\"inventory\".\"accounts\"");
    let names = column_names(change);
    assert_eq!(names, ["id", "owner", "balance", "note"]);
}

/// The stored offset's position, from the offsets file.
fn stored_position(dir: &Path) -> Option<(String, u64)> {
    let text = std::fs::read_to_string(dir.join("connect.offsets")).ok()?;
    let offsets: Json = serde_json::from_str(&text).ok()?;
    let offset = offsets["offsets"]
        .as_array()?
        .iter()
        .find(|o| o["key"][1] == json!({"server": "dbserver1"}))?["value"]
        .clone();
    Some((offset["file"].as_str()?.to_owned(), offset["pos"].as_u64()?))
}

/// Heartbeats (`heartbeat.interval.ms`) carry the position read so far, so while the captured
/// tables are idle and others are written the stored offset still moves to the binlog's end;
/// `heartbeat.action.query` runs before each one.
#[test]
fn heartbeats_move_the_stored_offset_past_writes_to_tables_not_captured() {
    let db = Server::start();
    create_accounts(&db);
    db.sql("create database other; create table other.log (id int auto_increment primary key, note text); create table inventory.beat (id int primary key, at bigint)");
    db.sql("insert into inventory.accounts values (1, 'one', 1)");
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs(
        dir.path(),
        &db,
        json!({
            "table.include.list": "inventory.accounts",
            "heartbeat.interval.ms": "200",
            "heartbeat.action.query": "replace into inventory.beat values (1, unix_timestamp())",
        }),
    );
    // The direct pipeline's heartbeat records need a sink of their own (as in Debezium, they
    // go to their own topic).
    let heartbeat_sink = dir.path().join("heartbeats.properties");
    std::fs::write(
        &heartbeat_sink,
        "name=heartbeats\nconnector.class=FileStreamSink\nfile=heartbeats.jsonl\nformat=json\n\
         topics=__debezium-heartbeat.dbserver1\n",
    )
    .unwrap();
    let mut args = args;
    args.push(heartbeat_sink.to_string_lossy().into_owned());
    let worker = Worker::start(dir.path(), &args);
    worker.wait_for_log("the stream to start", "streaming the binlog");
    for _ in 0..20 {
        db.sql("insert into other.log (note) values (repeat('n', 200))");
    }
    let end = db.sql("show master status")[0]
        .split('\t')
        .map(str::to_owned)
        .collect::<Vec<_>>();
    let (file, pos): (String, u64) = (end[0].clone(), end[1].parse().unwrap());
    wait_until(
        "the stored offset reaches the binlog's end",
        Duration::from_secs(30),
        || stored_position(dir.path()).is_some_and(|(f, p)| f == file && p >= pos),
    );
    assert!(
        !db.sql("select at from inventory.beat where id = 1")
            .is_empty(),
        "heartbeat.action.query ran"
    );
    let events = lines(&dir.path().join("events.jsonl"));
    assert_eq!(
        events.len(),
        1,
        "only the captured table's snapshot row: {events:?}"
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// A Debezium MariaDB connector JSON posted over REST runs unchanged (with Debezium's schema
/// history topic keys, which the embedded pipeline, having no Kafka, names as without effect at
/// start), and a misspelt key is refused naming the key meant.
#[test]
fn a_debezium_connector_json_posted_over_rest_runs_unchanged() {
    let db = Server::start();
    create_accounts(&db);
    db.sql("insert into inventory.accounts values (1, 'one', 10)");
    let dir = tempfile::tempdir().unwrap();
    write_configs(dir.path(), &db, json!({}));
    // The config includes schema changes (Debezium's default), so a sink reads their topic
    // too: on the embedded pipeline a topic nobody reads holds the source.
    std::fs::write(
        dir.path().join("schema.properties"),
        "name=schema\nconnector.class=FileStreamSink\nfile=schema.jsonl\nformat=json\ntopics=dbserver1\n",
    )
    .unwrap();
    let worker = Worker::start(
        dir.path(),
        &[
            "worker.properties",
            "oracle.properties",
            "schema.properties",
        ]
        .map(|f| dir.path().join(f).to_string_lossy().into_owned()),
    );
    let config = json!({
        "connector.class": "io.debezium.connector.mariadb.MariaDbConnector",
        "tasks.max": "1",
        "database.hostname": "127.0.0.1", "database.port": db.port.to_string(),
        "database.user": "root", "database.password": "", "database.server.id": "184054",
        "topic.prefix": "dbserver1", "database.include.list": "inventory",
        "schema.history.internal.kafka.bootstrap.servers": "kafka:9092",
        "schema.history.internal.kafka.topic": "schema-changes.inventory",
        "include.schema.changes": "true",
    });
    let (code, body) = worker.put("/connectors/inventory/config", Some(&config));
    assert!(code == 201 || code == 200, "{code} {body}");
    worker.wait_for_status("inventory", "the connector runs", |s| {
        s["connector"]["state"] == "RUNNING" && support::all_tasks(s, "RUNNING")
    });
    let events = dir.path().join("events.jsonl");
    wait_until("the snapshot row arrives", Duration::from_secs(30), || {
        !lines(&events).is_empty()
    });
    let schema_changes = dir.path().join("schema.jsonl");
    // Debezium's snapshot statements: SET, DROP TABLE, DROP/CREATE DATABASE, USE, CREATE TABLE.
    wait_until("the table's CREATE", Duration::from_secs(30), || {
        lines(&schema_changes)
            .last()
            .is_some_and(|l| l.contains("CREATE TABLE"))
    });
    assert_eq!(lines(&schema_changes).len(), 6);
    let logs = worker.logs();
    assert!(
        logs.contains(
            "`schema.history.internal.kafka.topic` has no effect on the embedded pipeline"
        ),
        "{logs}"
    );
    let mut misspelt = config.clone();
    misspelt["database.server.idd"] = json!("1");
    let (code, body) = worker.put("/connectors/misspelt/config", Some(&misspelt));
    assert_eq!(code, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `database.server.id`"),
        "{body}"
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// `id -> row` of `inventory.<table>` as JSON objects of the columns `columns`.
fn rows_now(db: &Server, table: &str, columns: &[&str]) -> BTreeMap<i64, Json> {
    let pairs: Vec<String> = columns.iter().map(|c| format!("'{c}', {c}")).collect();
    db.sql(&format!(
        "select json_object({}) from inventory.{table} order by id",
        pairs.join(", ")
    ))
    .iter()
    .map(|line| {
        let row: Json = serde_json::from_str(line).unwrap();
        (row["id"].as_i64().unwrap(), row)
    })
    .collect()
}

/// Waits until the events of `inventory.<table>` replay to its rows.
fn wait_for_rows(db: &Server, events: &Path, table: &str, columns: &[&str], what: &str) {
    wait_for_renamed_rows(db, events, &[table], columns, what);
}

/// Waits until the events of `inventory.<name>` for each of `names` (a table's names in
/// order, the last its name now) replay to its rows.
fn wait_for_renamed_rows(db: &Server, events: &Path, names: &[&str], columns: &[&str], what: &str) {
    let topics: Vec<String> = names
        .iter()
        .map(|name| format!("dbserver1.inventory.{name}"))
        .collect();
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    let table = names.last().expect("a name");
    let mut last = (BTreeMap::new(), BTreeMap::new());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        last = (
            replay_topics(&lines(events), &topics),
            rows_now(db, table, columns),
        );
        if last.0 == last.1 {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what}: replayed {:?}\ntable {:?}", last.0, last.1);
}

/// Writes to `inventory.<table>`: inserts of `ids` (with `values` after the id) and an update
/// of every row through `set`.
fn writes(db: &Server, table: &str, ids: std::ops::Range<i64>, values: &str, set: &str) {
    let rows: Vec<String> = ids.map(|id| format!("({id}, {values})")).collect();
    db.sql(&format!(
        "use inventory; start transaction; insert into {table} values {}; update {table} set {set}; \
         delete from {table} where id % 7 = 0; commit",
        rows.join(", ")
    ));
}

/// Where a test keeps the connector's schema history.
enum HistoryAt {
    /// `schema.history.internal.file.filename`, on the embedded pipeline.
    File,
    /// `schema.history.internal.kafka.topic` on a Tansu broker, the worker on the Kafka
    /// transport.
    Topic,
}

const HISTORY_TOPIC: &str = "schema-changes.inventory";

/// DDL mid-stream (ADD, MODIFY and DROP COLUMN, RENAME TABLE) with writes under every schema,
/// the worker killed -9 between two DDL statements and started again after the second: the
/// events replay to the table under its final schema, and the schema history (file or topic)
/// holds Debezium's layout. `metadata` is the server's `binlog_row_metadata`.
fn ddl_mid_stream_replays_to_the_table(metadata: &str, history_at: HistoryAt) {
    let db = Server::start();
    db.sql(&format!("set global binlog_row_metadata = '{metadata}'"));
    db.sql("create database inventory; create table inventory.items (id bigint primary key, name varchar(40) not null, qty int not null)");
    writes(&db, "items", 1..20, "'first', 1", "qty = qty + 1");
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("schema-history.jsonl");
    let broker = matches!(history_at, HistoryAt::Topic).then(support::kafka::Broker::start);
    let history_keys = match &broker {
        None => json!({"schema.history.internal.file.filename": history.to_str().unwrap()}),
        // The connector's own brokers, as a Debezium config names them.
        Some(broker) => json!({
            "schema.history.internal.kafka.topic": HISTORY_TOPIC,
            "schema.history.internal.kafka.bootstrap.servers": broker.addr,
        }),
    };
    let args = write_configs(dir.path(), &db, history_keys);
    let env = match &broker {
        Some(broker) => on_kafka(dir.path(), broker).to_vec(),
        None => Vec::new(),
    };
    let events = dir.path().join("events.jsonl");
    let worker = Worker::start_with_env(dir.path(), &args, &env);
    wait_for_rows(
        &db,
        &events,
        "items",
        &["id", "name", "qty"],
        "the snapshot",
    );

    // Each step waits for the stream to catch up, so that every schema is seen in the events;
    // the connector lags DDL after the kill below.
    db.sql("alter table inventory.items add column note varchar(20) not null default 'n'");
    writes(
        &db,
        "items",
        20..40,
        "'second', 2, 'added'",
        "qty = qty + 1, note = concat(note, '+')",
    );
    wait_for_rows(
        &db,
        &events,
        "items",
        &["id", "name", "qty", "note"],
        "after ADD",
    );
    db.sql("alter table inventory.items modify qty bigint not null");
    writes(
        &db,
        "items",
        40..60,
        "'third', 3000000000, 'wide'",
        "qty = qty * 2",
    );
    wait_for_rows(
        &db,
        &events,
        "items",
        &["id", "name", "qty", "note"],
        "after ADD and MODIFY",
    );
    let end: Vec<String> = db.sql("show master status");
    let end_pos: u64 = end[0].split('\t').nth(1).unwrap().parse().unwrap();
    wait_until(
        "the offset reaches the binlog's end",
        Duration::from_secs(30),
        || stored_position(dir.path()).is_some_and(|(_, pos)| pos >= end_pos),
    );

    // Killed between two DDL statements; two more run while it is down, with writes under
    // every schema. The restarted connector reads the rows of the middle schema knowing the
    // table only as it was before (the history) and as it is now (INFORMATION_SCHEMA): without
    // full row metadata only the DDL it reads gives their columns.
    worker.kill9();
    writes(&db, "items", 60..80, "'fourth', 4, 'down'", "qty = qty + 1");
    db.sql("alter table inventory.items drop column name");
    writes(&db, "items", 80..100, "5, 'dropped'", "qty = qty + 1");
    db.sql("alter table inventory.items add column extra varchar(8) not null default 'e' after id, rename column note to remark");
    writes(&db, "items", 100..110, "'x', 6, 'late'", "qty = qty + 1");
    let worker = Worker::start_with_env(dir.path(), &args, &env);
    writes(&db, "items", 110..120, "'y', 6, 'back'", "qty = qty + 1");
    let columns = ["id", "extra", "qty", "remark"];
    wait_for_rows(
        &db,
        &events,
        "items",
        &columns,
        "after the restart, DROP, ADD and RENAME COLUMN",
    );
    db.sql("rename table inventory.items to inventory.goods");
    writes(
        &db,
        "goods",
        120..140,
        "'z', 7, 'renamed'",
        "qty = qty + 1, remark = concat(remark, '!')",
    );
    wait_for_rows(
        &db,
        &events,
        "goods",
        &columns,
        "after the restart, the DDL and RENAME TABLE",
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");

    let records: Vec<Json> = match &broker {
        None => lines(&history)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
        Some(broker) => {
            assert!(
                logs.contains("schema history kept in a Kafka topic"),
                "{logs}"
            );
            let read = broker.read_until(HISTORY_TOPIC, "the renamed table's version", |read| {
                read.iter()
                    .any(|r| r.text().contains(r#"\"inventory\".\"goods\""#))
            });
            assert!(
                read.iter().all(|r| r.key.is_none() && r.partition == 0),
                "unkeyed records in one partition, as Debezium's KafkaSchemaHistory writes them"
            );
            assert!(!history.exists(), "no history file beside the topic");
            read.iter()
                .map(|r| serde_json::from_str(&r.text()).unwrap())
                .collect()
        }
    };
    assert!(
        records.iter().all(|r| r["source"]["server"] == "dbserver1"
            && r["position"]["file"].is_string()
            && r["position"]["pos"].is_u64()
            && r["databaseName"] == "inventory"
            && r["ddl"].is_string()
            && r["tableChanges"].is_array()),
        "Debezium's history record layout: {records:?}"
    );
    for ddl in [
        "add column note",
        "modify qty bigint",
        "drop column name",
        "add column extra",
        "rename table",
    ] {
        assert!(
            records.iter().any(|r| r["tableChanges"] == json!([])
                && r["ddl"].as_str().unwrap().to_lowercase().contains(ddl)),
            "the DDL `{ddl}` is in the history: {records:?}"
        );
    }
    // The snapshot recorded the table before sending its rows, as Debezium's does.
    let first = &records[0]["tableChanges"][0];
    assert_eq!(
        (&first["type"], &first["id"]),
        (&json!("CREATE"), &json!("\"inventory\".\"items\"")),
        "{records:?}"
    );
    assert!(
        records[0]["ddl"]
            .as_str()
            .unwrap()
            .starts_with("CREATE TABLE `items`"),
        "{records:?}"
    );
    let goods = records
        .iter()
        .rev()
        .find(|r| r["tableChanges"][0]["id"] == "\"inventory\".\"goods\"")
        .expect("a version of the renamed table");
    let columns: Vec<&str> = goods["tableChanges"][0]["table"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["id", "extra", "qty", "remark"]);
    assert_eq!(
        goods["tableChanges"][0]["table"]["columns"][2]["typeName"],
        "BIGINT"
    );
    assert_eq!(
        goods["tableChanges"][0]["table"]["primaryKeyColumnNames"],
        json!(["id"])
    );
}

#[test]
fn ddl_mid_stream_and_a_restart_between_two_ddls_replay_to_the_table_with_full_row_metadata() {
    ddl_mid_stream_replays_to_the_table("FULL", HistoryAt::File);
}

#[test]
fn ddl_mid_stream_and_a_restart_between_two_ddls_replay_to_the_table_without_row_metadata() {
    ddl_mid_stream_replays_to_the_table("NO_LOG", HistoryAt::File);
}

/// The same with the schema history in a Kafka topic: without row metadata, the rows written
/// while the worker was down decode only by the schema the topic gives back after the restart
/// (the table's current schema has lost a column they carry).
#[test]
fn ddl_mid_stream_and_a_restart_replay_to_the_table_with_the_schema_history_in_a_kafka_topic() {
    ddl_mid_stream_replays_to_the_table("NO_LOG", HistoryAt::Topic);
}

/// A connector behind two DDL statements, without full row metadata and without a schema
/// history, cannot tell the older rows' columns: it fails naming binlog_row_metadata=FULL
/// (inconsistent.schema.handling.mode=fail, the default); with full metadata it decodes them.
#[test]
fn rows_older_than_the_table_s_schema_fail_naming_the_fix_unless_the_binlog_has_full_metadata() {
    for metadata in ["NO_LOG", "FULL"] {
        let db = Server::start();
        db.sql(&format!("set global binlog_row_metadata = '{metadata}'"));
        db.sql("create database inventory; create table inventory.items (id bigint primary key, name varchar(40) not null, qty int not null)");
        let dir = tempfile::tempdir().unwrap();
        let args = write_configs(dir.path(), &db, json!({"snapshot.mode": "no_data"}));
        let events = dir.path().join("events.jsonl");
        let worker = Worker::start(dir.path(), &args);
        worker.wait_for_log("the stream to start", "streaming the binlog");
        // A change of another table, so that a position is stored.
        db.sql("create table inventory.seed (id bigint primary key); insert into inventory.seed values (1)");
        wait_until("a position is stored", Duration::from_secs(30), || {
            stored_position(dir.path()).is_some()
        });
        let (exit, logs) = worker.terminate();
        assert!(exit.success(), "{logs}");
        writes(&db, "items", 1..10, "'old', 1", "qty = qty + 1");
        db.sql("alter table inventory.items add column note varchar(20) not null default 'n'");
        db.sql("alter table inventory.items drop column name");
        writes(&db, "items", 10..20, "2, 'new'", "qty = qty + 1");
        let worker = Worker::start(dir.path(), &args);
        if metadata == "FULL" {
            wait_for_rows(
                &db,
                &events,
                "items",
                &["id", "qty", "note"],
                "decoded by full metadata",
            );
            let (exit, logs) = worker.terminate();
            assert!(exit.success(), "{logs}");
        } else {
            let trace = worker.failed_trace("inventory");
            assert!(
                trace.contains("binlog_row_metadata=FULL")
                    && trace.contains("inconsistent.schema.handling.mode"),
                "{trace}"
            );
            let _ = worker.terminate();
        }
    }
}

/// TRUNCATE TABLE is a statement in the binlog: with `skipped.operations=none` it is Debezium's
/// truncate event (`op` `t`, no key, no row images, the statement's position); by default it is
/// skipped, as in Debezium. Either way the stream goes on after it.
#[test]
fn truncate_is_an_event_when_skipped_operations_lets_it_through() {
    for skipped in ["none", "t"] {
        let db = Server::start();
        create_accounts(&db);
        let dir = tempfile::tempdir().unwrap();
        let args = write_configs(
            dir.path(),
            &db,
            json!({"skipped.operations": skipped, "snapshot.mode": "no_data"}),
        );
        let events = dir.path().join("events.jsonl");
        let worker = Worker::start(dir.path(), &args);
        worker.wait_for_log("the stream to start", "streaming the binlog");
        db.sql("insert into inventory.accounts values (1, 'one', 1)");
        db.sql("truncate table inventory.accounts");
        db.sql("insert into inventory.accounts values (2, 'two', 2)");
        wait_until("the second insert arrives", Duration::from_secs(30), || {
            lines(&events).iter().any(|l| l.contains("\"two\""))
        });
        let ops: Vec<Json> = lines(&events)
            .iter()
            .map(|l| serde_json::from_str::<Json>(l).unwrap())
            .collect();
        let codes: Vec<&str> = ops
            .iter()
            .map(|e| e["value"]["op"].as_str().unwrap())
            .collect();
        if skipped == "none" {
            assert_eq!(codes, ["c", "t", "c"]);
            let truncate = &ops[1];
            assert_eq!(truncate["topic"], "dbserver1.inventory.accounts");
            assert!(truncate["key"].is_null(), "{truncate}");
            assert!(truncate["value"]["before"].is_null() && truncate["value"]["after"].is_null());
            assert_eq!(truncate["value"]["source"]["table"], "accounts");
            assert!(truncate["value"]["source"]["pos"].as_u64().unwrap() > 0);
        } else {
            assert_eq!(codes, ["c", "c"], "truncates skipped by default");
        }
        let (exit, logs) = worker.terminate();
        assert!(exit.success(), "{logs}");
    }
}

/// Statements that steer a transaction stay inside it. A savepoint and a ROLLBACK TO it
/// (InnoDB only: the server cuts the undone rows out of the binlog) leave one transaction with
/// one GTID. When a transaction also changed a MyISAM table the server writes its rows with
/// the ROLLBACK (or ROLLBACK TO): the MyISAM rows stay, the InnoDB rows it undid are dropped.
/// An XA transaction's rows go out at its XA PREPARE. The events replay to both tables.
#[test]
fn savepoints_rollbacks_and_xa_keep_transactions_whole_and_drop_only_what_was_undone() {
    let db = Server::start();
    create_accounts(&db);
    db.sql("create table inventory.audit (id bigint primary key, note varchar(20)) engine=MyISAM");
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs(dir.path(), &db, json!({"snapshot.mode": "no_data"}));
    let events = dir.path().join("events.jsonl");
    let worker = Worker::start(dir.path(), &args);
    worker.wait_for_log("the stream to start", "streaming the binlog");
    db.sql(
        "use inventory; begin; insert into accounts values (1, 'kept', 1); savepoint sp; \
         insert into accounts values (2, 'undone', 2); rollback to sp; \
         insert into accounts values (3, 'kept', 3); commit",
    );
    db.sql(
        "use inventory; begin; insert into accounts values (4, 'kept', 4); savepoint sp; \
         insert into accounts values (5, 'undone', 5); insert into audit values (1, 'stays'); \
         rollback to sp; insert into accounts values (6, 'kept', 6); commit",
    );
    db.sql(
        "use inventory; begin; insert into accounts values (7, 'undone', 7); \
         insert into audit values (2, 'stays'); rollback",
    );
    db.sql(
        "use inventory; xa start 'x1'; insert into accounts values (8, 'xa', 8); xa end 'x1'; \
         xa prepare 'x1'; xa commit 'x1'",
    );
    db.sql("insert into inventory.accounts values (9, 'last', 9)");
    wait_until("the last insert arrives", Duration::from_secs(30), || {
        lines(&events).iter().any(|l| l.contains("\"last\""))
    });
    let all = lines(&events);
    let accounts = replay(&all, "dbserver1.inventory.accounts");
    assert_eq!(
        accounts.keys().copied().collect::<Vec<_>>(),
        [1, 3, 4, 6, 8, 9],
        "{all:#?}"
    );
    assert_eq!(
        accounts,
        rows_now(&db, "accounts", &["id", "owner", "balance"])
    );
    let audit = replay(&all, "dbserver1.inventory.audit");
    assert_eq!(audit, rows_now(&db, "audit", &["id", "note"]), "{all:#?}");
    assert_eq!(audit.len(), 2);
    let gtid_of = |id: i64| {
        all.iter()
            .map(|l| serde_json::from_str::<Json>(l).unwrap())
            .find(|e| e["value"]["after"]["id"] == id)
            .map(|e| e["value"]["source"]["gtid"].clone())
            .unwrap()
    };
    assert!(gtid_of(1).is_string(), "{all:#?}");
    assert_eq!(gtid_of(1), gtid_of(3), "one transaction, one GTID");
    assert_eq!(gtid_of(4), gtid_of(6), "one transaction, one GTID");
    assert_ne!(gtid_of(3), gtid_of(4));
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// Puts the worker `write_configs` wrote in `dir` on the Kafka transport of `broker`
/// (JsonConverter, offsets still in a file): the environment to start it with.
fn on_kafka<'a>(dir: &Path, broker: &'a support::kafka::Broker) -> [(&'static str, &'a str); 2] {
    support::write_json_worker(dir, "");
    [
        ("SLUICE__BOOTSTRAP_SERVERS", broker.addr.as_str()),
        ("SLUICE__CONSUMER_SESSION_TIMEOUT_MS", "6000"),
    ]
}

/// The same binlog stream through Kafka (a Tansu broker; sluice creates the topics, as Tansu
/// does not auto-create): JsonConverter records on `dbserver1.inventory.accounts` read back by
/// the oracle sink, equal to the table across a restart, with Debezium's envelope schema.
#[test]
fn binlog_through_kafka_replays_to_the_table_across_a_restart() {
    let db = Server::start();
    let broker = support::kafka::Broker::start();
    create_accounts(&db);
    db.sql("use inventory; insert into accounts select seq, concat('owner-', seq), seq * 10 from seq_1_to_20");
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs(dir.path(), &db, json!({}));
    let env = on_kafka(dir.path(), &broker);
    let events = dir.path().join("events.jsonl");
    let topic = "dbserver1.inventory.accounts";
    let worker = Worker::start_with_env(dir.path(), &args, &env);
    workload(&db, 11, 30);
    wait_for_table(&db, &events, topic, "through Kafka");
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
    workload(&db, 12, 30);
    let worker = Worker::start_with_env(dir.path(), &args, &env);
    workload(&db, 13, 30);
    wait_for_table(&db, &events, topic, "through Kafka after a restart");
    let record = broker.read(topic, 1);
    let value: Json = serde_json::from_str(&record[0].text()).unwrap();
    assert_eq!(
        value["schema"]["name"], "dbserver1.inventory.accounts.Envelope",
        "JsonConverter envelope with the Debezium schema"
    );
    assert_eq!(value["payload"]["source"]["connector"], "mariadb");
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// MariaDB CDC in a group of three `sluice distributed` workers on Tansu: kill -9 of the worker
/// running the connector's task between two randomized write loads. The task runs on a
/// survivor, resumes from the offsets topic, and the replayed events equal the table.
#[test]
fn binlog_in_a_worker_group_survives_kill_9_of_the_task_s_worker() {
    let db = Server::start();
    let broker = support::kafka::Broker::start();
    create_accounts(&db);
    db.sql("use inventory; insert into accounts select seq, concat('owner-', seq), seq * 10 from seq_1_to_20");
    let dir = tempfile::tempdir().unwrap();
    write_configs(dir.path(), &db, json!({}));
    let events = dir.path().join("events.jsonl");
    let mut workers = support::cdc_worker_group(dir.path(), &broker.addr, "binlog", &events);
    let _logs = support::LogsOnFailure::of_group(&workers);
    let topic = "dbserver1.inventory.accounts";
    workload(&db, 21, 30);
    wait_for_table(&db, &events, topic, "in the group");
    let (victim, owner) = support::task_owner(&workers, "inventory");
    workers[victim].take().unwrap().kill9();
    workload(&db, 22, 30);
    let survivor = workers.iter().flatten().next().unwrap();
    survivor.wait_for_status_within(
        "inventory",
        "the task runs on a survivor",
        Duration::from_secs(90),
        |s| s["tasks"][0]["state"] == "RUNNING" && s["tasks"][0]["worker_id"] != owner.as_str(),
    );
    workload(&db, 23, 10);
    wait_for_table(&db, &events, topic, "after kill -9 of the task's worker");
    for worker in workers.into_iter().flatten() {
        let (exit, logs) = worker.terminate();
        assert!(exit.success(), "{logs}");
    }
}

/// Waits until `events` holds `count` lines; on time-out the failure shows the worker's log.
fn wait_for_events(worker: &Worker, events: &Path, count: usize, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while lines(events).len() < count {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what} ({count} events; {} arrived): {}",
            lines(events).len(),
            worker.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A session holding a write lock on `table` (for up to 300 s, or until killed): a snapshot
/// reading it waits there, so a test can stop a worker mid-snapshot.
fn hold_write_lock(db: &Server, table: &str) -> std::process::Child {
    let lock = std::process::Command::new("mariadb")
        .args(["--protocol=tcp", "-h", "127.0.0.1", "-u", "root", "-e"])
        .arg(format!("lock tables {table} write; select sleep(300)"))
        .arg(format!("--port={}", db.port))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the lock is held", Duration::from_secs(30), || {
        db.sql("select count(*) from information_schema.processlist where info like '%sleep(300)%' and command <> 'Sleep'")
            .first()
            .is_some_and(|n| n != "0")
    });
    lock
}

/// `accounts` with `rows` rows and, after it, `zeta` with one row, write-locked by the process
/// returned: a snapshot reads `accounts` and then waits on `zeta` until that process is killed.
fn accounts_and_a_locked_table_after_them(db: &Server, rows: usize) -> std::process::Child {
    create_accounts(db);
    db.sql(&format!(
        "use inventory; insert into accounts select seq, concat('owner-', seq), seq from seq_1_to_{rows}; \
         create table zeta (id bigint primary key); insert into zeta values (1)"
    ));
    hold_write_lock(db, "inventory.zeta")
}

/// Acceptance: a randomized workload (inserts, updates, primary-key changes, deletes,
/// transactions of 1 to 3,000 rows, ADD, MODIFY, RENAME and DROP COLUMN, TRUNCATE and RENAME
/// TABLE mid-stream) with the worker killed -9 five times: mid-snapshot, under concurrent
/// writes at a random point, inside a large transaction sent in parts, between two DDL
/// statements (six more run while it is down), and again at a random point of the catch-up. The events replay to both tables
/// exactly. `metadata` is the server's `binlog_row_metadata`: without FULL, the rows written
/// between the DDL statements decode only by the columns the connector derives from them. The
/// moments come from a seed printed first, to replay a failure.
fn randomized_workload_with_ddl_replays_exactly_across_five_kill_9s(metadata: &str) {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("seed {seed}");
    let mut state = seed | 1;
    let mut random = move |n: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize % n
    };
    let db = Server::start();
    db.sql(&format!("set global binlog_row_metadata = '{metadata}'"));
    create_accounts(&db);
    db.sql("use inventory; create table items (id bigint primary key, name varchar(40) not null, qty int not null); \
            create table zeta (id bigint primary key); \
            insert into accounts select seq, concat('owner-', seq), seq from seq_1000_to_20999");
    writes(&db, "items", 1..200, "'first', 1", "qty = qty + 1");
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("schema-history.jsonl");
    let args = write_configs(
        dir.path(),
        &db,
        json!({
            "max.batch.size": "100",
            "schema.history.internal.file.filename": history.to_str().unwrap(),
            // TRUNCATE as an event, so that the replay can empty the table.
            "skipped.operations": "none",
        }),
    );
    let events = dir.path().join("events.jsonl");
    let sent = || lines(&events).len();

    // 1: mid-snapshot (it waits on the locked third table), writes meanwhile.
    let mut lock = hold_write_lock(&db, "inventory.zeta");
    let worker = Worker::start(dir.path(), &args);
    let at = 1000 + random(19000);
    wait_until(
        "the snapshot is partly sent",
        Duration::from_secs(60),
        || sent() >= at,
    );
    worker.kill9();
    let _ = lock.kill();
    let _ = lock.wait();
    workload(&db, seed, 20);

    // 2: under concurrent writes, at a random point.
    let worker = Worker::start(dir.path(), &args);
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            workload(&db, seed + 1, 60);
            writes(&db, "items", 200..400, "'second', 2", "qty = qty + 2");
        });
        let at = sent() + 1 + random(200);
        wait_until(
            "some of the writes are sent",
            Duration::from_secs(60),
            || sent() >= at || writer.is_finished(),
        );
        worker.kill9();
        writer.join().unwrap();
    });

    // 3: inside a large transaction sent in parts.
    let worker = Worker::start(dir.path(), &args);
    worker.wait_for_log("the stream to start", "streaming the binlog");
    let before = sent();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            db.sql("use inventory; start transaction; insert into accounts select seq, repeat('y', 30), seq from seq_100000_to_102999; \
                    update accounts set balance = balance + 1 where id between 100000 and 100500; commit");
        });
        let at = before + 300 + random(2500);
        wait_until(
            "part of the large transaction",
            Duration::from_secs(120),
            || sent() >= at,
        );
        worker.kill9();
    });

    // 4: between two DDL statements, with rows under each schema.
    db.sql("alter table inventory.items add column c1 int not null default 1");
    writes(&db, "items", 400..450, "'third', 3, 10", "c1 = c1 + 1");
    let worker = Worker::start(dir.path(), &args);
    let at = sent() + 1 + random(300);
    wait_for_events(&worker, &events, at, "some of the catch-up");
    worker.kill9();
    db.sql("alter table inventory.items add column c2 varchar(10) not null default 'd'");
    writes(
        &db,
        "items",
        450..500,
        "'fourth', 4, 20, 'x'",
        "c2 = concat(c2, '+')",
    );
    workload(&db, seed + 2, 30);
    db.sql("alter table inventory.items modify qty bigint not null, rename column name to label");
    writes(
        &db,
        "items",
        500..550,
        "'fifth', 5000000000, 30, 'y'",
        "qty = qty + 1",
    );
    db.sql("alter table inventory.items drop column c1, add column c3 int not null default 15 after id");
    writes(&db, "items", 550..600, "22, 'sixth', 6, 'z'", "c3 = c3 * 2");
    db.sql("truncate table inventory.items");
    writes(
        &db,
        "items",
        600..650,
        "23, 'seventh', 7, 'w'",
        "qty = qty + 1",
    );
    db.sql("rename table inventory.items to inventory.goods");
    writes(
        &db,
        "goods",
        650..700,
        "24, 'eighth', 8, 'v'",
        "c3 = c3 + 1",
    );

    // 5: at a random point of the next catch-up.
    let worker = Worker::start(dir.path(), &args);
    let at = sent() + 1 + random(400);
    wait_for_events(&worker, &events, at, "some of the catch-up");
    worker.kill9();

    let worker = Worker::start(dir.path(), &args);
    workload(&db, seed + 3, 20);
    wait_for_rows(
        &db,
        &events,
        "accounts",
        &["id", "owner", "balance"],
        "accounts at the end",
    );
    wait_for_renamed_rows(
        &db,
        &events,
        &["items", "goods"],
        &["id", "c3", "label", "qty", "c2"],
        "items (now goods) at the end",
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

#[test]
fn a_randomized_workload_with_ddl_replays_exactly_across_five_kill_9s_with_full_row_metadata() {
    randomized_workload_with_ddl_replays_exactly_across_five_kill_9s("FULL");
}

#[test]
fn a_randomized_workload_with_ddl_replays_exactly_across_five_kill_9s_without_row_metadata() {
    randomized_workload_with_ddl_replays_exactly_across_five_kill_9s("NO_LOG");
}

/// kill -9 in the middle of the snapshot, with writes going on: the stored offset says the
/// snapshot is unfinished (Debezium's `snapshot: true`, with the binlog position it started
/// at), so the restart snapshots again from a new consistent view but streams from the
/// interrupted snapshot's position, so the deletes made in between reach the rows the first
/// snapshot sent: the replayed events equal the table. (Re-snapshotting and streaming from the
/// new view only, as before, left deleted rows in the replay: this test found it.) The snapshot
/// is held in the middle by a write lock on the table it reads second. The new snapshot reads
/// on after the last row the interrupted one stored (its offset names the table and key).
#[test]
fn kill_9_mid_snapshot_snapshots_again_and_loses_nothing() {
    let db = Server::start();
    let mut lock = accounts_and_a_locked_table_after_them(&db, 2000);
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs(dir.path(), &db, json!({}));
    let events = dir.path().join("events.jsonl");
    let topic = "dbserver1.inventory.accounts";
    let worker = Worker::start(dir.path(), &args);
    let snapshot_offset = || -> Option<Json> {
        let text = std::fs::read_to_string(dir.path().join("connect.offsets")).ok()?;
        let offsets: Json = serde_json::from_str(&text).ok()?;
        offsets["offsets"]
            .as_array()?
            .iter()
            .find_map(|o| (o["value"]["snapshot"] == json!(true)).then(|| o["value"].clone()))
    };
    wait_until(
        "the first table's snapshot is stored",
        Duration::from_secs(60),
        || snapshot_offset().is_some() && lines(&events).len() >= 1000,
    );
    worker.kill9();
    let offset = snapshot_offset().unwrap();
    assert!(
        offset["file"].is_string() && offset["pos"].is_u64(),
        "a snapshot offset carries the stream's start position: {offset}"
    );
    assert_eq!(offset["snapshot_table"], "inventory.accounts", "{offset}");
    let stored_key: i64 = offset["snapshot_key"][0].as_str().unwrap().parse().unwrap();
    let sent_before = lines(&events).len();
    let _ = lock.kill();
    let _ = lock.wait();
    workload(&db, 31, 30);
    let worker = Worker::start(dir.path(), &args);
    workload(&db, 32, 30);
    wait_for_table(&db, &events, topic, "after kill -9 mid-snapshot");
    assert!(
        lines(&events)
            .iter()
            .any(|l| l.contains("dbserver1.inventory.zeta")),
        "the second table is snapshotted after the restart"
    );
    worker.wait_for_log(
        "the snapshot to read on",
        "resuming the interrupted snapshot where its last stored record stood",
    );
    // The new snapshot reads on after the stored key: the rows the first one stored are not
    // read again (the stream from the first one's position brings their changes).
    let reread: Vec<i64> = lines(&events)[sent_before..]
        .iter()
        .map(|l| serde_json::from_str::<Json>(l).unwrap())
        .filter(|e| e["topic"] == topic && e["value"]["op"] == "r")
        .map(|e| e["value"]["after"]["id"].as_i64().unwrap())
        .collect();
    assert!(
        reread.iter().all(|id| *id > stored_key),
        "read again at or before the stored key {stored_key}: {reread:?}"
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// `snapshot.max.threads` readers read a table in chunks of `snapshot.fetch.size` rows by
/// primary key, each in its own view opened at the snapshot's binlog position, while writes land
/// all over the table. The rows go out in key order; a kill -9 while the snapshot is held on a
/// locked second table reads on after the stored key; the events replay to the table.
#[test]
fn a_parallel_snapshot_under_concurrent_writes_replays_to_the_table_across_a_kill_9() {
    let db = Server::start();
    let mut lock = accounts_and_a_locked_table_after_them(&db, 20000);
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs(
        dir.path(),
        &db,
        json!({"snapshot.max.threads": "4", "snapshot.fetch.size": "97"}),
    );
    let events = dir.path().join("events.jsonl");
    let topic = "dbserver1.inventory.accounts";
    // Updates, deletes and inserts over the whole key range while the views open and read.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = std::sync::Arc::clone(&stop);
        let port = db.port;
        std::thread::spawn(move || {
            let mut round = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                round += 1;
                let id = (round * 7919) % 20000 + 1;
                let status = std::process::Command::new("mariadb")
                    .args(["--protocol=tcp", "-h", "127.0.0.1", "-u", "root"])
                    .arg(format!("--port={port}"))
                    .arg("-e")
                    .arg(format!(
                        "start transaction; update inventory.accounts set balance = balance + 1 where id = {id}; \
                         delete from inventory.accounts where id = {}; \
                         insert into inventory.accounts values ({}, 'late', {round}) on duplicate key update balance = {round}; commit",
                        (id + 3) % 20000 + 1,
                        20000 + round
                    ))
                    .status()
                    .unwrap();
                assert!(status.success());
            }
            round
        })
    };
    let worker = Worker::start(dir.path(), &args);
    wait_until(
        "the first table's snapshot is stored",
        Duration::from_secs(60),
        || {
            let text =
                std::fs::read_to_string(dir.path().join("connect.offsets")).unwrap_or_default();
            text.contains("snapshot_key") && lines(&events).len() >= 15000
        },
    );
    worker.wait_for_log("the snapshot to start", "snapshot started");
    let started = worker
        .logs()
        .lines()
        .find(|l| l.contains("snapshot started"))
        .unwrap()
        .to_owned();
    // 4 asked for; fewer when writes kept landing between the views' openings, never none.
    assert!(
        started.contains("readers=") && !started.contains("readers=0"),
        "readers beside the coordinator: {started}"
    );
    worker.kill9();
    let first_run = lines(&events);
    let _ = lock.kill();
    let _ = lock.wait();
    let worker = Worker::start(dir.path(), &args);
    worker.wait_for_log(
        "the snapshot to read on",
        "resuming the interrupted snapshot where its last stored record stood",
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let rounds = writer.join().unwrap();
    assert!(rounds > 1, "writes ran during the snapshot");
    wait_for_table(
        &db,
        &events,
        topic,
        "after a parallel snapshot and a kill -9",
    );
    // In key order, chunk after chunk, though the chunks were read at once.
    let read_ids: Vec<i64> = first_run
        .iter()
        .map(|l| serde_json::from_str::<Json>(l).unwrap())
        .filter(|e| e["topic"] == topic && e["value"]["op"] == "r")
        .map(|e| e["value"]["after"]["id"].as_i64().unwrap())
        .collect();
    assert!(read_ids.len() >= 15000, "{}", read_ids.len());
    assert!(
        read_ids.windows(2).all(|w| w[0] < w[1]),
        "the snapshot's rows in key order"
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// `include.schema.changes=true`: each DDL statement is Debezium's schema change event on the
/// `<topic.prefix>` topic, keyed by database, with the statement and the tables' structures
/// after it; `no_data` first sends each captured table's `CREATE`. Statements on tables and
/// databases not captured are sent too, as Debezium does by default, and not with
/// `schema.history.internal.store.only.captured.databases.ddl=true`.
#[test]
fn schema_changes_are_debezium_s_schema_change_events_when_included() {
    let db = Server::start();
    create_accounts(&db);
    let dir = tempfile::tempdir().unwrap();
    let mut args = write_configs(
        dir.path(),
        &db,
        json!({"include.schema.changes": "true", "snapshot.mode": "no_data"}),
    );
    let schema_sink = dir.path().join("schema.properties");
    std::fs::write(
        &schema_sink,
        "name=schema\nconnector.class=FileStreamSink\nfile=schema.jsonl\nformat=json\ntopics=dbserver1\n",
    )
    .unwrap();
    args.push(schema_sink.to_string_lossy().into_owned());
    let worker = Worker::start(dir.path(), &args);
    worker.wait_for_log("the stream to start", "streaming the binlog");
    db.sql("alter table inventory.accounts add column note varchar(20) null");
    db.sql("RENAME TABLE inventory.accounts TO inventory.ledger");
    // Not captured, yet sent (Debezium's store.only.captured.*.ddl are false by default).
    db.sql("create database other; create table other.t (x int)");
    let changes = dir.path().join("schema.jsonl");
    // (The structure of a table is read when its statement is: not after it is gone.)
    wait_until("the CREATE TABLE's event", Duration::from_secs(30), || {
        lines(&changes).len() >= 10
    });
    db.sql("alter database other character set latin1; drop database other");
    wait_until(
        "twelve schema change events",
        Duration::from_secs(30),
        || lines(&changes).len() >= 12,
    );
    let events: Vec<Json> = lines(&changes)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 12, "{events:?}");
    // no_data is Debezium's snapshot of the schemas only: its six statements first.
    let ddls: Vec<&str> = events[..6]
        .iter()
        .map(|e| e["value"]["ddl"].as_str().unwrap())
        .collect();
    assert!(ddls[0].starts_with("SET character_set_server="), "{ddls:?}");
    assert_eq!(ddls[1], "DROP TABLE IF EXISTS `inventory`.`accounts`");
    assert_eq!(ddls[2], "DROP DATABASE IF EXISTS `inventory`");
    assert!(
        ddls[3].starts_with("CREATE DATABASE `inventory` CHARSET "),
        "{ddls:?}"
    );
    assert_eq!(ddls[4], "USE `inventory`");
    let create = &events[5]["value"];
    assert_eq!(create["source"]["snapshot"], "true");
    assert_eq!(create["tableChanges"][0]["type"], "CREATE");
    assert_eq!(
        create["tableChanges"][0]["id"],
        "\"inventory\".\"accounts\""
    );
    let events = &events[6..];
    let alter = &events[0];
    assert_eq!(alter["topic"], "dbserver1");
    assert_eq!(alter["key"], json!({"databaseName": "inventory"}));
    assert_eq!(alter["value"]["databaseName"], "inventory");
    assert!(
        alter["value"]["ddl"]
            .as_str()
            .unwrap()
            .contains("add column note"),
        "{alter}"
    );
    assert_eq!(alter["value"]["source"]["connector"], "mariadb");
    let change = &alter["value"]["tableChanges"][0];
    assert_eq!(change["type"], "ALTER");
    assert_eq!(change["id"], "\"inventory\".\"accounts\"");
    let names = column_names(change);
    assert_eq!(names, ["id", "owner", "balance", "note"]);
    assert_eq!(change["table"]["primaryKeyColumnNames"], json!(["id"]));
    // A rename is Debezium's ALTER of the new name (no DROP of the old one).
    let rename = &events[1]["value"];
    assert_eq!(
        rename["ddl"],
        "RENAME TABLE inventory.accounts TO inventory.ledger"
    );
    assert_eq!(rename["source"]["table"], "ledger");
    let renamed = rename["tableChanges"].as_array().unwrap();
    assert_eq!(renamed.len(), 1, "{rename}");
    assert_eq!(renamed[0]["type"], "ALTER");
    assert_eq!(renamed[0]["id"], "\"inventory\".\"ledger\"");
    assert_eq!(
        column_names(&renamed[0]),
        ["id", "owner", "balance", "note"]
    );
    // A database's own statements: events of that database, without table changes.
    for (event, ddl) in [
        (&events[2], "create database other"),
        (&events[5], "drop database other"),
    ] {
        let value = &event["value"];
        assert_eq!(event["key"], json!({"databaseName": "other"}), "{event}");
        assert_eq!(value["databaseName"], "other", "{event}");
        assert_eq!(value["ddl"], ddl, "{event}");
        assert_eq!(value["tableChanges"], json!([]), "{event}");
        assert_eq!(value["source"]["db"], "other", "{event}");
        assert_eq!(value["source"]["table"], Json::Null, "{event}");
    }
    let create = &events[3]["value"];
    assert_eq!(create["databaseName"], "other", "{create}");
    assert_eq!(create["tableChanges"][0]["type"], "CREATE", "{create}");
    assert_eq!(
        create["tableChanges"][0]["id"], "\"other\".\"t\"",
        "{create}"
    );
    assert_eq!(column_names(&create["tableChanges"][0]), ["x"]);
    // ALTER DATABASE: Debezium's fallback, an event of the statement's database (the server
    // logs it in the database it alters) whose source names an empty table.
    let alter_database = &events[4];
    assert_eq!(alter_database["key"], json!({"databaseName": "other"}));
    assert_eq!(alter_database["value"]["tableChanges"], json!([]));
    assert_eq!(alter_database["value"]["source"]["table"], "");
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
    // With store.only.captured.databases.ddl=true, statements on other databases send none.
    let mut args = write_configs(
        dir.path(),
        &db,
        json!({"include.schema.changes": "true", "snapshot.mode": "no_data",
               "schema.history.internal.store.only.captured.databases.ddl": "true"}),
    );
    args.push(schema_sink.to_string_lossy().into_owned());
    let worker = Worker::start(dir.path(), &args);
    worker.wait_for_log("the stream to start", "streaming the binlog");
    db.sql("create database third; create table third.t (x int); alter table inventory.ledger add column z int");
    wait_until("the ALTER's event", Duration::from_secs(30), || {
        lines(&changes).len() > 12
    });
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
    let events = lines(&changes);
    assert_eq!(events.len(), 13, "{events:?}");
    assert!(events[12].contains("add column z"), "{}", events[12]);
}

/// With `include.schema.changes`, the snapshot sends Debezium's schema change events before
/// the rows, statement by statement as Debezium's snapshot writes them: the server's character
/// set, a `DROP TABLE IF EXISTS` per table, then per database `DROP DATABASE IF EXISTS`,
/// `CREATE DATABASE`, `USE` and each table's `CREATE` (`SHOW CREATE TABLE`, with its
/// structure), all marked as of the snapshot. By default (Debezium's
/// `schema.history.internal.store.only.captured.tables.ddl=false`) every table is covered, the
/// ones not captured too; with it `true`, only the captured ones.
#[test]
fn a_snapshot_sends_debezium_s_schema_change_events_statement_by_statement() {
    let db = Server::start();
    create_accounts(&db);
    db.sql("create table inventory.notes (id bigint primary key, body text); insert into inventory.accounts values (1, 'one', 1); create database other; create table other.t (x int)");
    let charset = db.sql("select @@character_set_server, @@collation_server")[0].clone();
    let (server_charset, server_collation) = charset.split_once('\t').unwrap();
    let locale = |name: &str| {
        db.sql(&format!("select default_character_set_name, default_collation_name from information_schema.schemata where schema_name = '{name}'"))[0]
            .replace('\t', " COLLATE ")
    };
    let run = |extra: Json, count: usize| -> (Vec<Json>, Json) {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = json!({"include.schema.changes": "true"});
        settings
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let mut args = write_configs(dir.path(), &db, settings);
        let schema_sink = dir.path().join("schema.properties");
        std::fs::write(
            &schema_sink,
            "name=schema\nconnector.class=FileStreamSink\nfile=schema.jsonl\nformat=json\ntopics=dbserver1\n",
        )
        .unwrap();
        args.push(schema_sink.to_string_lossy().into_owned());
        let events = dir.path().join("events.jsonl");
        let worker = Worker::start(dir.path(), &args);
        wait_for_rows(
            &db,
            &events,
            "accounts",
            &["id", "owner", "balance"],
            "the snapshot",
        );
        let changes = dir.path().join("schema.jsonl");
        wait_until("the schema change events", Duration::from_secs(30), || {
            lines(&changes).len() >= count
        });
        let (exit, logs) = worker.terminate();
        assert!(exit.success(), "{logs}");
        let changes: Vec<Json> = lines(&changes)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let data: Json = serde_json::from_str(&lines(&events)[0]).unwrap();
        (changes, data)
    };
    let (changes, data) = run(json!({}), 13);
    let ddls: Vec<&str> = changes
        .iter()
        .map(|e| e["value"]["ddl"].as_str().unwrap())
        .collect();
    let expected_start = [
        format!("SET character_set_server={server_charset}, collation_server={server_collation}"),
        "DROP TABLE IF EXISTS `inventory`.`accounts`".to_owned(),
        "DROP TABLE IF EXISTS `inventory`.`notes`".to_owned(),
        "DROP TABLE IF EXISTS `other`.`t`".to_owned(),
        "DROP DATABASE IF EXISTS `inventory`".to_owned(),
        format!(
            "CREATE DATABASE `inventory` CHARSET {}",
            locale("inventory")
        ),
        "USE `inventory`".to_owned(),
    ];
    assert_eq!(ddls.len(), 13, "{ddls:#?}");
    assert_eq!(ddls[..7], expected_start, "{ddls:#?}");
    assert!(ddls[7].starts_with("CREATE TABLE `accounts`"), "{ddls:#?}");
    assert!(ddls[8].starts_with("CREATE TABLE `notes`"), "{ddls:#?}");
    assert_eq!(
        ddls[9..12],
        [
            "DROP DATABASE IF EXISTS `other`".to_owned(),
            format!("CREATE DATABASE `other` CHARSET {}", locale("other")),
            "USE `other`".to_owned(),
        ]
    );
    assert!(ddls[12].starts_with("CREATE TABLE `t`"), "{ddls:#?}");
    for event in &changes {
        let value = &event["value"];
        assert_eq!(event["topic"], "dbserver1");
        assert_eq!(event["key"], json!({"databaseName": value["databaseName"]}));
        assert_eq!(value["source"]["snapshot"], "true");
        assert_eq!(value["source"]["db"], value["databaseName"]);
        assert_eq!(value["source"]["file"], data["value"]["source"]["file"]);
        assert_eq!(value["source"]["pos"], data["value"]["source"]["pos"]);
    }
    // The SET statement names no database; statements on no table carry no table.
    assert_eq!(changes[0]["key"], json!({"databaseName": ""}));
    for i in [0, 4, 5, 6, 9, 10, 11] {
        assert_eq!(
            changes[i]["value"]["source"]["table"],
            Json::Null,
            "{}",
            ddls[i]
        );
        assert_eq!(
            changes[i]["value"]["tableChanges"],
            json!([]),
            "{}",
            ddls[i]
        );
    }
    let dropped = &changes[1]["value"];
    assert_eq!(dropped["source"]["table"], "accounts");
    assert_eq!(dropped["tableChanges"][0]["type"], "DROP");
    assert_eq!(
        dropped["tableChanges"][0]["id"],
        "\"inventory\".\"accounts\""
    );
    assert_eq!(dropped["tableChanges"][0]["table"], Json::Null);
    for (event, (db_name, table, columns)) in
        [&changes[7], &changes[8], &changes[12]].into_iter().zip([
            ("inventory", "accounts", vec!["id", "owner", "balance"]),
            ("inventory", "notes", vec!["id", "body"]),
            ("other", "t", vec!["x"]),
        ])
    {
        let value = &event["value"];
        assert_eq!(value["databaseName"], db_name);
        assert_eq!(value["source"]["table"], table);
        let change = &value["tableChanges"][0];
        assert_eq!(change["type"], "CREATE");
        assert_eq!(change["id"], format!("\"{db_name}\".\"{table}\""));
        assert_eq!(column_names(change), columns);
    }
    assert_eq!(
        changes[7]["value"]["tableChanges"][0]["table"]["primaryKeyColumnNames"],
        json!(["id"])
    );
    // With Debezium's keys: only the captured tables (and so only their database's statements),
    // or every table of the captured databases.
    let ddls_of = |changes: &[Json]| -> Vec<String> {
        changes
            .iter()
            .map(|e| e["value"]["ddl"].as_str().unwrap().to_owned())
            .collect()
    };
    let only_accounts = json!({"table.include.list": "inventory.accounts"});
    let mut tables_only = only_accounts.clone();
    tables_only["schema.history.internal.store.only.captured.tables.ddl"] = json!("true");
    let (changes, _) = run(tables_only, 6);
    let ddls = ddls_of(&changes);
    assert_eq!(ddls.len(), 6, "{ddls:#?}");
    assert_eq!(ddls[..2], expected_start[..2], "{ddls:#?}");
    assert_eq!(ddls[2..5], expected_start[4..7], "{ddls:#?}");
    assert!(ddls[5].starts_with("CREATE TABLE `accounts`"), "{ddls:#?}");
    let mut databases_only = only_accounts;
    databases_only["schema.history.internal.store.only.captured.databases.ddl"] = json!("true");
    let (changes, _) = run(databases_only, 8);
    let ddls = ddls_of(&changes);
    assert_eq!(ddls.len(), 8, "{ddls:#?}");
    assert_eq!(ddls[..3], expected_start[..3], "{ddls:#?}");
    assert_eq!(ddls[3..6], expected_start[4..7], "{ddls:#?}");
    assert!(ddls[6].starts_with("CREATE TABLE `accounts`"), "{ddls:#?}");
    assert!(ddls[7].starts_with("CREATE TABLE `notes`"), "{ddls:#?}");
}

/// MariaDB's UUID (`io.debezium.data.Uuid`), POINT with an SRID (`io.debezium.data.geometry.Point`:
/// x, y, wkb, srid), another spatial type (`…Geometry`: wkb, srid null for 0) and a LONGBLOB over
/// 16 MB (a binlog event larger than one protocol packet), value by value in snapshot and
/// stream.
#[test]
fn uuid_geometry_and_a_16_mb_blob_map_as_debezium_does_in_snapshot_and_stream() {
    let db = Server::start();
    db.sql("set global max_allowed_packet = 67108864");
    db.sql(
        "create database inventory; create table inventory.shapes (id int primary key, u uuid, \
         p point, l linestring, big longblob)",
    );
    let row = |id: i64| {
        format!(
            "insert into inventory.shapes values ({id}, '123e4567-e89b-42d3-a456-426614174000', \
             ST_GeomFromText('POINT(1.5 -2.25)', 4326), ST_GeomFromText('LINESTRING(0 0, 1 1)'), \
             repeat('z', 17 * 1024 * 1024))"
        )
    };
    db.sql(&row(1));
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs(dir.path(), &db, json!({}));
    let events = dir.path().join("events.jsonl");
    let worker = Worker::start(dir.path(), &args);
    wait_until("the snapshot row arrives", Duration::from_secs(60), || {
        !lines(&events).is_empty()
    });
    db.sql(&row(2));
    worker.wait_until("the streamed row arrives", Duration::from_secs(60), || {
        lines(&events).len() >= 2
    });
    let all: Vec<Json> = lines(&events)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (event, how) in all.iter().zip(["snapshot", "binlog"]) {
        let after = &event["value"]["after"];
        assert_eq!(after["u"], "123e4567-e89b-42d3-a456-426614174000", "{how}");
        assert_eq!(after["p"]["x"], 1.5, "{how}");
        assert_eq!(after["p"]["y"], -2.25, "{how}");
        assert_eq!(after["p"]["srid"], 4326, "{how}");
        // WKB of POINT(1.5 -2.25): little-endian, type 1, x, y.
        assert_eq!(after["p"]["wkb"], "AQEAAAAAAAAAAAD4PwAAAAAAAALA", "{how}");
        assert!(after["l"]["srid"].is_null(), "{how}: SRID 0 is null");
        assert_eq!(
            after["l"]["wkb"], "AQIAAAACAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAPA/AAAAAAAA8D8=",
            "{how}"
        );
        let big = after["big"].as_str().unwrap();
        assert_eq!(
            big.len(),
            (17 * 1024 * 1024usize).div_ceil(3) * 4,
            "{how}: 17 MiB, base64"
        );
    }
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// MariaDB stores a UUID in an index-friendly byte order (a time-based v1 UUID's segments
/// swapped); the events carry the UUID's text as the server shows it, for `UUID()` (v1) values
/// and a v4 literal alike, in snapshot and stream.
#[test]
fn uuid_values_of_every_version_arrive_as_the_server_shows_them() {
    let db = Server::start();
    db.sql("create database inventory; create table inventory.ids (id int primary key, u uuid)");
    db.sql(
        "insert into inventory.ids values (1, uuid()), (2, uuid()), \
         (3, '123e4567-e89b-42d3-a456-426614174000'), (4, '00000000-0000-0000-0000-000000000000')",
    );
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs(dir.path(), &db, json!({}));
    let events = dir.path().join("events.jsonl");
    let worker = Worker::start(dir.path(), &args);
    wait_until("the snapshot rows arrive", Duration::from_secs(60), || {
        lines(&events).len() >= 4
    });
    db.sql(
        "insert into inventory.ids values (5, uuid()), (6, uuid()), \
         (7, 'ffffffff-ffff-4fff-bfff-ffffffffffff')",
    );
    worker.wait_until("the streamed rows arrive", Duration::from_secs(60), || {
        lines(&events).len() >= 7
    });
    let table = rows_now(&db, "ids", &["id", "u"]);
    let streamed = replay(&lines(&events), "dbserver1.inventory.ids");
    assert_eq!(streamed, table, "every UUID as the server shows it");
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// MariaDB's INET6 arrives as its text form, as the server shows it, in snapshot and stream:
/// compressed IPv6, IPv4-mapped and IPv4-compatible addresses, `::`, `::1`, a full address.
#[test]
fn inet6_values_arrive_as_the_server_shows_them() {
    let db = Server::start();
    db.sql(
        "create database inventory; create table inventory.hosts (id int primary key, ip inet6)",
    );
    let values = [
        "2001:db8::1",
        "::ffff:192.0.2.1",
        "::192.0.2.1",
        "::",
        "::1",
        "2001:db8:0:1:1:1:1:1",
        "fe80::1:0:0:0",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ];
    let insert = |ids: std::ops::Range<usize>| {
        let rows: Vec<String> = ids
            .map(|i| format!("({i}, '{}')", values[i % values.len()]))
            .collect();
        db.sql(&format!(
            "insert into inventory.hosts values {}",
            rows.join(", ")
        ));
    };
    insert(0..8);
    db.sql("insert into inventory.hosts values (100, null)");
    let dir = tempfile::tempdir().unwrap();
    let args = write_configs(dir.path(), &db, json!({}));
    let events = dir.path().join("events.jsonl");
    let worker = Worker::start(dir.path(), &args);
    wait_until("the snapshot rows arrive", Duration::from_secs(60), || {
        lines(&events).len() >= 9
    });
    insert(8..16);
    worker.wait_until("the streamed rows arrive", Duration::from_secs(60), || {
        lines(&events).len() >= 17
    });
    let table = rows_now(&db, "hosts", &["id", "ip"]);
    let streamed = replay(&lines(&events), "dbserver1.inventory.hosts");
    assert_eq!(streamed, table, "every address as the server shows it");
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// A MariaDB connector config for `tlsuser` (created `REQUIRE SSL`) with `extra` settings.
fn tls_connector(dir: &Path, db: &Server, name: &str, server_id: u32, extra: Json) -> String {
    let mut config = json!({
        "connector.class": "io.debezium.connector.mariadb.MariaDbConnector",
        "database.hostname": "localhost", "database.port": db.port.to_string(),
        "database.user": "tlsuser", "database.password": "tls-pass",
        "database.server.id": server_id.to_string(),
        "topic.prefix": name, "database.include.list": "inventory",
    });
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, json!({"name": name, "config": config}).to_string()).unwrap();
    path.to_string_lossy().into_owned()
}

/// TLS to MariaDB under Debezium's keys (`database.ssl.*`, the truststore as PEM): a server
/// with certificates made by `openssl` in the test and a user that must connect over TLS with
/// a client certificate (`REQUIRE X509`), given as a PEM keystore whose key is encrypted
/// (`database.ssl.keystore.password`). `verify_identity` snapshots and streams (catalog,
/// snapshot and binlog connections all over TLS: the user cannot connect otherwise), and so
/// does `verify_ca` against `127.0.0.1`, a host the certificate does not name. A CA that did
/// not sign the server's certificate (verify_ca too), a host name the certificate lacks
/// (verify_identity), no client certificate, and `disabled` each fail the task with the reason
/// and the key to change.
#[test]
fn tls_with_verify_identity_snapshots_and_streams_and_bad_settings_fail_naming_the_key() {
    use std::os::unix::fs::PermissionsExt;
    let db = Server::start_with(|dir| {
        let tls = dir.join("tls");
        std::fs::create_dir(&tls).unwrap();
        let certs = support::certs::Certs::make(&tls);
        // The server runs as the mysql user: it must read the key (a test key only).
        for entry in std::fs::read_dir(&tls).unwrap() {
            let path = entry.unwrap().path();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        format!(
            "--ssl-ca={} --ssl-cert={} --ssl-key={}",
            certs.ca.display(),
            certs.server_cert.display(),
            certs.server_key.display()
        )
    });
    let ca = db.dir().join("tls/ca.crt");
    let other_ca = db.dir().join("tls/other-ca.crt");
    assert_eq!(
        db.sql("select @@have_ssl"),
        ["YES"],
        "the server runs with TLS"
    );
    db.sql(
        "create user 'tlsuser'@'%' identified by 'tls-pass' require x509; \
         grant all privileges on *.* to 'tlsuser'@'%'",
    );
    create_accounts(&db);
    db.sql("use inventory; insert into accounts select seq, concat('owner-', seq), seq * 10 from seq_1_to_5");
    let dir = tempfile::tempdir().unwrap();
    let mut args = support::write_cdc_configs(dir.path(), None, &json!({}));
    // The sink takes the verify_ca connector's topics too.
    std::fs::write(
        dir.path().join("oracle.properties"),
        "name=oracle\nconnector.class=FileStreamSink\nfile=events.jsonl\nformat=json\n\
         topics.regex=(dbserver1|verifyca)\\..*\n",
    )
    .unwrap();
    // Debezium's keystore as PEM: the client certificate and its encrypted key in one file.
    let keystore = dir.path().join("client-keystore.pem");
    let tls_dir = db.dir().join("tls");
    std::fs::write(
        &keystore,
        [
            std::fs::read_to_string(tls_dir.join("client.crt")).unwrap(),
            std::fs::read_to_string(tls_dir.join("client-encrypted.key")).unwrap(),
        ]
        .concat(),
    )
    .unwrap();
    let keystore_text = keystore.to_str().unwrap();
    let ca_text = ca.to_str().unwrap();
    let with_certificate = |mut extra: Json| {
        extra["database.ssl.keystore"] = json!(keystore_text);
        extra["database.ssl.keystore.password"] = json!(support::certs::CLIENT_KEY_PASSWORD);
        extra
    };
    args.push(tls_connector(
        dir.path(),
        &db,
        "dbserver1",
        5401,
        with_certificate(
            json!({"database.ssl.mode": "verify_identity", "database.ssl.truststore": ca_text}),
        ),
    ));
    args.push(tls_connector(
        dir.path(),
        &db,
        "verifyca",
        5402,
        with_certificate(json!({"database.hostname": "127.0.0.1",
            "database.ssl.mode": "verify_ca", "database.ssl.truststore": ca_text})),
    ));
    let failing = [
        (
            "untrusted",
            with_certificate(json!({"database.ssl.mode": "verify_ca",
                   "database.ssl.truststore": other_ca.to_str().unwrap()})),
            "database.ssl.truststore",
        ),
        (
            "wrongname",
            with_certificate(json!({"database.hostname": "127.0.0.1",
                "database.ssl.mode": "verify_identity", "database.ssl.truststore": ca_text})),
            "does not name `127.0.0.1`",
        ),
        (
            "nocertificate",
            json!({"database.ssl.mode": "verify_identity", "database.ssl.truststore": ca_text}),
            "set database.ssl.keystore",
        ),
        (
            "plaintext",
            json!({"database.ssl.mode": "disabled"}),
            "set database.ssl.mode",
        ),
    ];
    for (i, (name, extra, _)) in failing.iter().enumerate() {
        args.push(tls_connector(
            dir.path(),
            &db,
            name,
            5500 + i as u32,
            extra.clone(),
        ));
    }
    let events = dir.path().join("events.jsonl");
    let worker = Worker::start(dir.path(), &args);
    wait_until(
        "the snapshot arrives over TLS",
        Duration::from_secs(60),
        || lines(&events).len() >= 5,
    );
    db.sql("insert into inventory.accounts values (6, 'owner-6', 60)");
    wait_for_table(
        &db,
        &events,
        "dbserver1.inventory.accounts",
        "streaming over TLS",
    );
    let _logs = support::LogsOnFailure::of(&[&worker]);
    wait_for_table(
        &db,
        &events,
        "verifyca.inventory.accounts",
        "verify_ca against a host the certificate does not name",
    );
    assert!(
        db.sql("show global status like 'Ssl_accepts'")[0]
            .split('\t')
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 2,
        "the server accepted TLS connections"
    );
    for (name, _, expected) in failing {
        let trace = worker.failed_trace(name);
        assert!(trace.contains(expected), "{name}: {trace}");
    }
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// `db.table`'s columns as INFORMATION_SCHEMA describes them, and the table's default
/// character set.
fn described(db: &Server, table: &str) -> (Vec<sluice_connector_mysql::table::ColumnInfo>, String) {
    let number = |text: &str| (text != "NULL").then(|| text.parse::<u32>().unwrap());
    let columns = db
        .sql(&format!(
            "select COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY, NUMERIC_PRECISION, \
             NUMERIC_SCALE, DATETIME_PRECISION, CHARACTER_SET_NAME from information_schema.COLUMNS \
             where TABLE_SCHEMA = 'p' and TABLE_NAME = '{table}' order by ORDINAL_POSITION"
        ))
        .iter()
        .map(|row| {
            let f: Vec<&str> = row.split('\t').collect();
            sluice_connector_mysql::table::ColumnInfo {
                name: f[0].into(),
                data_type: f[1].to_lowercase(),
                column_type: f[2].to_lowercase(),
                nullable: f[3] == "YES",
                primary: f[4] == "PRI",
                precision: number(f[5]),
                scale: number(f[6]),
                fsp: number(f[7]).unwrap_or(0),
                charset: (f[8] != "NULL").then(|| f[8].to_owned()),
            }
        })
        .collect();
    let charset = db.sql(&format!(
        "select c.CHARACTER_SET_NAME from information_schema.TABLES t join \
         information_schema.COLLATION_CHARACTER_SET_APPLICABILITY c on c.COLLATION_NAME = t.TABLE_COLLATION \
         where t.TABLE_SCHEMA = 'p' and t.TABLE_NAME = '{table}'"
    ));
    (columns, charset[0].clone())
}

/// What lets a connector that lags DDL decode rows without full row metadata: the columns
/// derived from each CREATE or ALTER TABLE statement (applied to the table's columns before it)
/// equal what the server's INFORMATION_SCHEMA shows after running it, for every type Debezium
/// maps and the ALTER clauses that move, rename, retype or re-key columns.
#[test]
fn columns_derived_from_ddl_equal_information_schema_after_each_statement() {
    use sluice_connector_mysql::ddl_columns::{Defaults, apply};
    let db = Server::start();
    db.sql("create database p");
    let statements = [
        (
            "t",
            "create table t (a int, b int unsigned, c tinyint, d tinyint(1), e boolean, \
               f smallint unsigned zerofill, g mediumint, h bigint unsigned, i serial, j bit, k bit(10), \
               l float, m float(10,2), n double, o real, `p` decimal, q decimal(12,3) unsigned, r numeric(5), \
               s char, t varchar(20) character set latin1, u text, v longtext collate latin1_bin, w binary, \
               x varbinary(9), y blob, z json, aa enum('x','y''z'), ab set('p','q'), ac date, ad time(2), \
               ae datetime, af datetime(6), ag timestamp(3) null, ah year, ai uuid, aj inet6, ak point, \
               al geometry, am nchar(3), an national varchar(4), ao int(5), ap double precision, aq int8, \
               ar char(2) binary, `as` mediumtext, `at` tinyblob, au integer primary key comment 'the key', \
               av varchar(10) not null default 'a,b)', index (t), unique key (av)) \
               engine = InnoDB default charset = utf8mb4",
        ),
        (
            "t",
            "alter table t add column n1 varchar(10) not null default 'x' after a, add n2 int unsigned first, \
               drop column b, modify c bigint not null, change d d2 smallint(3) zerofill, rename column e to e2, \
               algorithm = copy",
        ),
        (
            "t",
            "alter table t drop primary key, add primary key (au, n2)",
        ),
        (
            "t",
            "alter table t add (x1 decimal(20,5) default -1.5, x2 enum('a','b') character set latin1), \
               add index ix (x1), add constraint ck check (x1 > 0), alter column x1 set default 2",
        ),
        (
            "t",
            "alter table t character set latin1, add x3 text(100), add x4 varchar(5), modify u text after a",
        ),
        (
            "t",
            "alter table t drop column if exists nope, add column if not exists n1 int, drop index ix, \
               modify column x4 varchar(5) collate utf8mb4_bin first",
        ),
        (
            "t2",
            "create table t2 (id int, name varchar(20) collate latin1_bin, j json, \
                ts timestamp(6) not null default current_timestamp(6) on update current_timestamp(6), \
                g point not null, v int as (id + 1) virtual, constraint pk primary key (id), key (name), \
                check (length(name) > 0)) engine=innodb default charset=utf8mb3 comment='x'",
        ),
        (
            "t2",
            "alter table t2 modify name varchar(30) first, modify column id bigint auto_increment",
        ),
        (
            "t3",
            "create table t3 (a serial, b bool, c double(10,4) unsigned, d float(30), e national char(5), \
                f long varchar, g blob(70000), h char(4) ascii, i bit(64), k text(60) character set utf8mb4) \
                default character set latin1",
        ),
        (
            "t4",
            "create table t4 (a int not null, b int, c int not null unique)",
        ),
        (
            "t4",
            "alter table t4 add column d int, add constraint u unique key (a, d)",
        ),
        ("t4", "alter table t4 add unique index (b), add unique (a)"),
    ];
    let mut tracked: BTreeMap<&str, Vec<sluice_connector_mysql::table::ColumnInfo>> =
        BTreeMap::new();
    for (table, statement) in statements {
        db.sql(&format!("use p; {statement}"));
        let (now, charset) = described(&db, table);
        let before = tracked.get(table).cloned().unwrap_or_default();
        let derived = apply(
            &before,
            statement,
            &Defaults {
                charset: &charset,
                mariadb: true,
            },
        )
        .unwrap_or_else(|| panic!("{statement}: not understood"));
        for (i, (derived, now)) in derived.iter().zip(&now).enumerate() {
            assert_eq!(derived, now, "{statement}: column {}", i + 1);
        }
        assert_eq!(derived.len(), now.len(), "{statement}");
        tracked.insert(table, now);
    }
    // What it does not follow is said, not guessed.
    for unknown in [
        "create table t9 like t",
        "create table t5 as select 1 as a",
        "alter table t convert to character set utf8mb4",
        "alter table t add column v vector(3)",
    ] {
        assert_eq!(
            apply(
                &[],
                unknown,
                &Defaults {
                    charset: "utf8mb4",
                    mariadb: true
                }
            ),
            None,
            "{unknown}"
        );
    }
}
