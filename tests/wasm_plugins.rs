//! WASM transform plugins end to end: the example plugins (built from `plugins/` by the
//! harness) on a live Postgres change stream, the hard limits (a plugin that loops, one that
//! allocates without bound, one that traps), dead-lettering through Kafka, and the errors a
//! bad plugin gives at connector start.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::{Value as Json, json};
use support::kafka::Broker;
use support::plugins::plugin;
use support::postgres::Cluster;
use support::{Worker, all_tasks, append_lines, lines, run, wait_until};

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The three example plugins in one chain on a Debezium-config connector: mask the email,
/// route by table, drop test accounts.
#[test]
fn example_plugins_mask_route_and_drop_postgres_changes() {
    let pg = Cluster::start();
    pg.sql(
        "create table customers (id bigint primary key, email text not null, kind text not null)",
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("worker.properties"),
        "offset.storage.file.filename=connect.offsets\noffset.flush.interval.ms=200\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("source.json"),
        json!({"name": "inventory", "config": {
            "connector.class": "postgres", "database.hostname": "127.0.0.1",
            "database.port": pg.port.to_string(), "database.user": "postgres",
            "database.dbname": "postgres", "topic.prefix": "db",
            "transforms": "mask,route,drop",
            "transforms.mask.type": "wasm", "transforms.mask.module": path(&plugin("mask_email")),
            "transforms.route.type": "wasm", "transforms.route.module": path(&plugin("route_by_table")),
            "transforms.route.config.prefix": "cdc.",
            "transforms.drop.type": "wasm", "transforms.drop.module": path(&plugin("drop_by_field")),
            "transforms.drop.config.field": "kind", "transforms.drop.config.equals": "test",
        }})
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("sink.properties"),
        "name=out\nconnector.class=FileStreamSink\nfile=events.jsonl\nformat=json\ntopics=cdc.customers\n",
    )
    .unwrap();
    let worker = Worker::start(
        dir.path(),
        &["worker.properties", "sink.properties", "source.json"],
    );
    pg.sql("insert into customers values (1, 'ada@example.com', 'real'), (2, 'bot@example.com', 'test')");
    pg.sql(
        "set synchronous_commit = on; insert into customers values (3, 'ada@example.com', 'real')",
    );
    let events = dir.path().join("events.jsonl");
    wait_until("two real customers arrive", Duration::from_secs(30), || {
        lines(&events).len() == 2
    });
    let e: Vec<Json> = lines(&events)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        e.iter().all(|e| e["topic"] == "cdc.customers"),
        "routed by table"
    );
    let masked: Vec<&str> = e
        .iter()
        .map(|e| e["value"]["after"]["email"].as_str().unwrap())
        .collect();
    assert!(
        masked[0].starts_with("sha:") && !masked[0].contains('@'),
        "{masked:?}"
    );
    assert_eq!(masked[0], masked[1], "equal addresses hash alike");
    assert_eq!(
        e.iter()
            .map(|e| e["value"]["after"]["id"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [1, 3],
        "the test account was dropped"
    );
    assert_eq!(
        e[0]["value"]["source"]["connector"], "postgresql",
        "the rest of the event is intact"
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

fn limits_config(dir: &Path, name: &str, input: &str, output: &str, extra: &str) {
    std::fs::write(
        dir.join(format!("{name}.properties")),
        format!(
            "name={name}\nconnector.class=FileStreamSource\nfile={input}\ntopic={name}-topic\n\
             transforms=plugin\ntransforms.plugin.type=wasm\ntransforms.plugin.module={}\n\
             transforms.plugin.max.duration.ms=200\ntransforms.plugin.max.memory.bytes=16777216\n{extra}",
            path(&plugin("misbehave"))
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join(format!("{name}-sink.properties")),
        format!(
            "name={name}-sink\nconnector.class=FileStreamSink\nfile={output}\ntopics={name}-topic\n"
        ),
    )
    .unwrap();
}

/// A record that loops, one that allocates without bound and one that traps are stopped by
/// the limits and skipped (`errors.tolerance=all`); the worker stays up, the plugin keeps
/// working for later records, and another connector flows throughout.
#[test]
fn a_looping_a_hoarding_and_a_trapping_record_fail_alone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("worker.properties"),
        "offset.storage.file.filename=connect.offsets\n",
    )
    .unwrap();
    limits_config(
        dir.path(),
        "bad",
        "in.txt",
        "out.txt",
        "errors.tolerance=all\nerrors.log.enable=true\n",
    );
    std::fs::write(
        dir.path().join("other.properties"),
        "name=other\nconnector.class=FileStreamSource\nfile=other.txt\ntopic=other\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("other-sink.properties"),
        "name=other-sink\nconnector.class=FileStreamSink\nfile=other-out.txt\ntopics=other\n",
    )
    .unwrap();
    let worker = Worker::start(
        dir.path(),
        &[
            "worker.properties",
            "bad-sink.properties",
            "other-sink.properties",
            "bad.properties",
            "other.properties",
        ],
    );
    let input: Vec<String> = ["a", "loop", "b", "grow", "c", "trap", "fail", "d"]
        .map(String::from)
        .to_vec();
    append_lines(&dir.path().join("in.txt"), input);
    append_lines(
        &dir.path().join("other.txt"),
        ["x".to_string(), "y".to_string()],
    );
    worker.wait_until("the good records pass", Duration::from_secs(60), || {
        lines(&dir.path().join("out.txt")) == ["a", "b", "c", "d"]
    });
    wait_until("the other connector flows", Duration::from_secs(30), || {
        lines(&dir.path().join("other-out.txt")).len() == 2
    });
    let logs = worker.logs();
    assert!(
        logs.contains("ran longer than max.duration.ms=200 and was stopped"),
        "{logs}"
    );
    assert!(
        logs.contains("needed more than max.memory.bytes=16777216"),
        "{logs}"
    );
    assert!(logs.contains("it trapped"), "{logs}");
    assert!(
        logs.contains("told to trap"),
        "the plugin's panic message is in the error: {logs}"
    );
    assert!(logs.contains("told to fail this record"), "{logs}");
    let (status, body) = worker.get("/connectors/bad/status");
    assert_eq!(status, 200);
    assert!(all_tasks(&body, "RUNNING"), "{body}");
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// A poll of many records is transformed on another thread while the source reads on (the
/// input is there before the worker starts, so the first poll takes 2,000 lines): the output
/// keeps the input's order exactly, and records the plugin fails inside such a batch are
/// skipped under `errors.tolerance=all` without holding up the rest.
#[test]
fn big_polls_transformed_aside_keep_order_and_skip_only_failed_records() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("worker.properties"),
        "offset.storage.file.filename=connect.offsets
",
    )
    .unwrap();
    limits_config(
        dir.path(),
        "big",
        "in.txt",
        "out.txt",
        "errors.tolerance=all
",
    );
    let input: Vec<String> = (0..5000)
        .map(|i| {
            if i % 97 == 0 {
                "fail".to_string()
            } else {
                format!("r{i}")
            }
        })
        .collect();
    append_lines(&dir.path().join("in.txt"), input.clone());
    let expected: Vec<String> = input.into_iter().filter(|l| l != "fail").collect();
    let worker = Worker::start(
        dir.path(),
        &["worker.properties", "big-sink.properties", "big.properties"],
    );
    worker.wait_until("every good line is out", Duration::from_secs(60), || {
        lines(&dir.path().join("out.txt")).len() >= expected.len()
    });
    assert_eq!(lines(&dir.path().join("out.txt")), expected);
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// With `errors.tolerance=none` the task fails with a trace naming the plugin and the limit.
#[test]
fn without_tolerance_the_task_fails_with_a_trace_naming_the_plugin() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("worker.properties"),
        "offset.storage.file.filename=connect.offsets\n",
    )
    .unwrap();
    limits_config(dir.path(), "bad", "in.txt", "out.txt", "");
    let worker = Worker::start(
        dir.path(),
        &["worker.properties", "bad-sink.properties", "bad.properties"],
    );
    append_lines(&dir.path().join("in.txt"), ["loop".to_string()]);
    let trace = worker.failed_trace("bad");
    assert!(trace.contains("WASM transform misbehave.wasm"), "{trace}");
    assert!(trace.contains("max.duration.ms=200"), "{trace}");
}

/// Through Kafka, a record the plugin fails goes to the dead letter queue with Kafka Connect's
/// context headers, and the stream goes on.
#[test]
fn a_record_the_plugin_fails_is_dead_lettered_through_kafka() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("worker.properties"),
        "key.converter=org.apache.kafka.connect.storage.StringConverter\n\
         value.converter=org.apache.kafka.connect.storage.StringConverter\n\
         offset.storage.file.filename=connect.offsets\noffset.flush.interval.ms=200\n",
    )
    .unwrap();
    limits_config(
        dir.path(),
        "bad",
        "in.txt",
        "out.txt",
        "errors.tolerance=all\nerrors.deadletterqueue.topic.name=plugin-dlq\n\
         errors.deadletterqueue.context.headers.enable=true\n",
    );
    let worker = Worker::start_with_env(
        dir.path(),
        &["worker.properties", "bad-sink.properties", "bad.properties"],
        &[("SLUICE__BOOTSTRAP_SERVERS", broker.addr.as_str())],
    );
    append_lines(
        &dir.path().join("in.txt"),
        ["a", "loop", "b"].map(String::from),
    );
    worker.wait_until("the good records pass", Duration::from_secs(60), || {
        lines(&dir.path().join("out.txt")) == ["a", "b"]
    });
    let dead = broker.read("plugin-dlq", 1);
    // Source-side dead letters hold the record as it was before conversion: schemaless JSON.
    assert_eq!(dead[0].text(), "\"loop\"");
    assert_eq!(
        dead[0].header("__connect.errors.stage"),
        Some("TRANSFORMATION")
    );
    assert!(
        dead[0]
            .header("__connect.errors.exception.message")
            .is_some_and(|m| m.contains("max.duration.ms")),
        "{:?}",
        dead[0].header("__connect.errors.exception.message")
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// A malformed file, a component without the transform exports, and a plugin rejecting its
/// config: each is a clear error when the connector config is checked.
#[test]
fn bad_plugins_are_refused_at_connector_start_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("garbage.wasm"), b"\0asm but not really").unwrap();
    let cases = [
        (
            path(&dir.path().join("garbage.wasm")),
            "",
            "is not a WebAssembly component sluice can run",
        ),
        (
            path(&plugin("not-a-transform")),
            "",
            "does not fit the `transform` world",
        ),
        (
            path(&plugin("misbehave")),
            "transforms.p.config.reject=true\n",
            "rejected its config",
        ),
        (path(&dir.path().join("missing.wasm")), "", "missing.wasm"),
    ];
    for (module, extra, expected) in cases {
        std::fs::write(
            dir.path().join("c.properties"),
            format!(
                "name=c\nconnector.class=FileStreamSource\nfile=in.txt\ntopic=t\ntransforms=p\n\
                 transforms.p.type=wasm\ntransforms.p.module={module}\n{extra}"
            ),
        )
        .unwrap();
        let out = run(dir.path(), &["validate", "c.properties"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text}");
        assert!(text.contains(expected), "expected `{expected}` in:\n{text}");
    }
}

/// The host sends records in batches (one sandbox call for many records); a batch holding a
/// record that loops or traps is re-sent record by record, so only that record fails and the
/// others come back in order, unchanged.
#[test]
fn a_batch_call_gives_one_result_per_record_and_fails_only_the_bad_ones() {
    use sluice_api::config::props;
    use sluice_api::data::Value;
    use sluice_api::record::Record;

    let module = path(&plugin("misbehave"));
    let mut transform = (sluice_wasm::WASM_TRANSFORM.create)(&props(&[
        ("module", module.as_str()),
        ("max.duration.ms", "200"),
        ("max.memory.bytes", "16777216"),
    ]))
    .unwrap();
    let batch = |values: &[String]| {
        values
            .iter()
            .map(|v| Record::new("t", Value::from(v.as_str()), None))
            .collect::<Vec<_>>()
    };

    let many: Vec<String> = (0..1000).map(|i| format!("r{i}")).collect();
    let results = transform.apply_batch(batch(&many));
    let returned: Vec<Value> = results
        .into_iter()
        .flat_map(|r| r.unwrap())
        .map(|r| r.value)
        .collect();
    let expected: Vec<Value> = many.iter().map(|v| Value::from(v.as_str())).collect();
    assert_eq!(
        returned, expected,
        "1000 records over several calls, in order"
    );

    let mixed = ["a", "loop", "b", "trap", "fail", "c"].map(String::from);
    let results = transform.apply_batch(batch(&mixed));
    assert_eq!(results.len(), mixed.len());
    let outcome: Vec<String> = results
        .into_iter()
        .map(|r| match r {
            Ok(records) => format!("ok {:?}", records[0].value.as_str().unwrap()),
            Err(e) => format!("err {}", e.message()),
        })
        .collect();
    assert_eq!(outcome[0], "ok \"a\"");
    assert!(
        outcome[1].contains("ran longer than max.duration.ms=200"),
        "{outcome:?}"
    );
    assert_eq!(outcome[2], "ok \"b\"");
    assert!(outcome[3].contains("told to trap"), "{outcome:?}");
    assert!(
        outcome[4].contains("told to fail this record"),
        "{outcome:?}"
    );
    assert_eq!(outcome[5], "ok \"c\"");

    // Past the first call's records, the plugin still reads each record's own value: the trap
    // at 300 (in the second call) and the failure at 520 (in the third) fail exactly those.
    let mut far: Vec<String> = (0..600).map(|i| format!("r{i}")).collect();
    far[300] = "trap".into();
    far[520] = "fail".into();
    let results = transform.apply_batch(batch(&far));
    assert_eq!(results.len(), far.len());
    let failed: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_err())
        .map(|(at, _)| at)
        .collect();
    assert_eq!(failed, [300, 520]);
    for (result, sent) in results.into_iter().zip(&far) {
        if let Ok(records) = result {
            assert_eq!(records[0].value, Value::from(sent.as_str()));
        }
    }

    // A record the plugin keeps past its call (key never read during it) is still whole when
    // the plugin returns it from a later call: the SDK fetched its key before the call ended,
    // and it does not pass for "unchanged" as the output of another record.
    let keyed = |key: &str, value: &str| {
        let mut record = Record::new("t", Value::from(value), None);
        record.key = Value::from(key);
        record
    };
    let held = transform.apply_batch(vec![keyed("k1", "hold")]);
    assert!(held[0].as_ref().unwrap().is_empty(), "{held:?}");
    let released = transform.apply_batch(vec![keyed("k2", "x"), keyed("k3", "release")]);
    let pairs: Vec<Vec<(Value, Value)>> = released
        .into_iter()
        .map(|r| r.unwrap().into_iter().map(|r| (r.key, r.value)).collect())
        .collect();
    let pair = |k: &str, v: &str| (Value::from(k), Value::from(v));
    assert_eq!(
        pairs,
        [
            vec![pair("k2", "x")],
            vec![pair("k1", "hold"), pair("k3", "release")]
        ]
    );
}

/// A record a plugin passes on untouched comes back exactly as it went in: key, value and
/// their schemas, topic, partition, timestamp, headers. Without headers it takes the one-byte
/// "kept" answer (the host passes its own record on); with headers, the full answer whose key
/// and value say "unchanged". Both must give the same record.
#[test]
fn a_record_passed_on_untouched_comes_back_exactly() {
    use sluice_api::config::props;
    use sluice_api::data::{Schema, Value};
    use sluice_api::record::{Header, Record};
    use std::sync::Arc;

    let module = path(&plugin("identity"));
    let mut transform =
        (sluice_wasm::WASM_TRANSFORM.create)(&props(&[("module", module.as_str())])).unwrap();
    let record = |headers: Vec<Header>| Record {
        topic: "orders".into(),
        partition: Some(2),
        key: Value::from("k"),
        key_schema: Some(Arc::new(Schema::string())),
        value: Value::from("v"),
        value_schema: Some(Arc::new(Schema::string().optional())),
        timestamp_ms: Some(1_700_000_000_000),
        headers,
    };
    let header = Header {
        key: "trace".into(),
        value: Value::from("t-1"),
        schema: None,
    };
    let tombstone = Record {
        value: Value::Null,
        value_schema: None,
        ..record(Vec::new())
    };
    let inputs = vec![record(Vec::new()), record(vec![header]), tombstone];
    let outputs: Vec<Vec<Record>> = transform
        .apply_batch(inputs.clone())
        .into_iter()
        .map(|result| result.unwrap())
        .collect();
    let expected: Vec<Vec<Record>> = inputs.into_iter().map(|r| vec![r]).collect();
    assert_eq!(outputs, expected);
}
