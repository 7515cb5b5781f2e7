//! The Elasticsearch sink end to end: a real PostgreSQL 15 and, where Kafka is used, a real
//! Tansu broker — but **not a real Elasticsearch**. None can be installed on the machines these
//! tests run on, so the sink writes to an in-process Elasticsearch API fake
//! (`tests/support/es_fake.rs`, whose header lists exactly which behaviours it models: `_bulk`
//! per-item statuses, external-version conflicts, dynamic-mapping rejections, 429/503
//! injection, basic auth). The sink itself is the real HTTP client with no test-only path.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value as Json, json};
use support::es_fake::EsFake;
use support::kafka::Broker;
use support::postgres::Cluster;
use support::{Worker, config, wait_until};

const INDEX: &str = "dbserver1.public.accounts";

/// `configs/elasticsearch/accounts-sink.properties` pointed at `url`, with `extra` keys set.
fn accounts_sink(dir: &Path, name: &str, url: &str, extra: &[(&str, &str)]) -> String {
    let template =
        std::fs::read_to_string(config("elasticsearch/accounts-sink.properties")).unwrap();
    let mut settings: Vec<(String, String)> = template
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains('='))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let mut set = |key: &str, value: &str| match settings.iter_mut().find(|(k, _)| k == key) {
        Some(entry) => entry.1 = value.to_owned(),
        None => settings.push((key.to_owned(), value.to_owned())),
    };
    set("name", name);
    set("connection.url", url);
    for (key, value) in extra {
        set(key, value);
    }
    let text: String = settings.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    let path = dir.join(format!("{name}.properties"));
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// The worker (embedded direct pipeline unless Kafka is given by environment) and the
/// Debezium-style Postgres source for `public.<table>`.
fn worker_and_source(dir: &Path, pg: &Cluster, table: &str) -> Vec<String> {
    support::write_json_worker(dir, "");
    let source = json!({"name": "inventory", "config": {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "database.hostname": "127.0.0.1", "database.port": pg.port.to_string(),
        "database.user": "postgres", "database.password": "", "database.dbname": "postgres",
        "topic.prefix": "dbserver1", "table.include.list": format!("public.{table}"),
    }});
    std::fs::write(dir.join("inventory.json"), source.to_string()).unwrap();
    ["worker.properties", "inventory.json"]
        .iter()
        .map(|f| dir.join(f).to_string_lossy().into_owned())
        .collect()
}

/// The table as the index should hold it: id → row object.
fn table_documents(pg: &Cluster) -> BTreeMap<String, Json> {
    pg.sql("select id, owner, balance from accounts order by id")
        .iter()
        .map(|row| {
            let fields: Vec<&str> = row.split('|').collect();
            let id: i64 = fields[0].parse().unwrap();
            let balance: i64 = fields[2].parse().unwrap();
            (
                id.to_string(),
                json!({"id": id, "owner": fields[1], "balance": balance}),
            )
        })
        .collect()
}

/// A URL on which nothing listens (a port just bound and released).
fn unreachable_url() -> String {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", closed.local_addr().unwrap())
}

/// Creates a connector over REST from `base` with the keys of `extra` set; the HTTP status.
fn create_connector(worker: &Worker, name: &str, mut config: Json, extra: Json) -> (u16, Json) {
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    worker.post(
        "/connectors",
        Some(&json!({"name": name, "config": config})),
    )
}

fn wait_for_mirror(pg: &Cluster, fake: &EsFake, worker: &Worker) {
    let want = table_documents(pg);
    worker.wait_until(
        "the index equals the table",
        Duration::from_secs(120),
        || fake.documents(INDEX) == want,
    );
}

/// Inserts, updates and deletes reach the index through Kafka, and a second sink replaying the
/// whole topic from the start (a new consumer group) changes nothing: with
/// `external.version.from.kafka.offset` every replayed write is older than what the index has,
/// Elasticsearch answers 409 and the sink counts that as done.
#[test]
fn cdc_through_kafka_mirrors_the_table_and_a_full_replay_changes_nothing() {
    let pg = Cluster::start();
    let broker = Broker::start();
    let fake = EsFake::start();
    pg.create_accounts();
    pg.sql("insert into accounts select g, 'owner-' || g, g * 10 from generate_series(1, 20) g");
    let dir = tempfile::tempdir().unwrap();
    let mut args = worker_and_source(dir.path(), &pg, "accounts");
    let versioned = [("external.version.from.kafka.offset", "true")];
    args.push(accounts_sink(
        dir.path(),
        "es-accounts",
        &fake.url(),
        &versioned,
    ));
    let env = [("SLUICE__BOOTSTRAP_SERVERS", broker.addr.as_str())];
    let worker = Worker::start_with_env(dir.path(), &args, &env);
    pg.mixed_workload(7, 40);
    wait_for_mirror(&pg, &fake, &worker);
    assert!(
        !fake.history(INDEX, "1").is_empty(),
        "documents were written through the fake's _bulk"
    );
    let mut committed = Json::Null;
    worker.wait_until(
        "the sink commits its consumer offsets",
        Duration::from_secs(60),
        || {
            committed = worker.get("/connectors/es-accounts/offsets").1;
            committed["offsets"]
                .as_array()
                .is_some_and(|o| !o.is_empty())
        },
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
    let documents = fake.documents(INDEX);
    let versions = fake.versions(INDEX);
    let writes: usize = documents
        .keys()
        .map(|id| fake.history(INDEX, id).len())
        .sum();
    let items_before = fake.stats().items;

    // The replay: the same sink under another name reads the topic from offset 0.
    args.pop();
    args.push(accounts_sink(
        dir.path(),
        "es-replay",
        &fake.url(),
        &versioned,
    ));
    let worker = Worker::start_with_env(dir.path(), &args, &env);
    worker.wait_until(
        "the replaying sink commits the same offsets",
        Duration::from_secs(120),
        || worker.get("/connectors/es-replay/offsets").1 == committed,
    );
    assert_eq!(
        fake.documents(INDEX),
        documents,
        "the replay changed documents"
    );
    assert_eq!(
        fake.versions(INDEX),
        versions,
        "the replay changed versions"
    );
    let writes_after: usize = documents
        .keys()
        .map(|id| fake.history(INDEX, id).len())
        .sum();
    assert_eq!(writes_after, writes, "no replayed write was applied");
    assert!(
        fake.stats().items > items_before,
        "the replay did send its writes (and got 409s)"
    );
    assert_eq!(fake.documents(INDEX), table_documents(&pg));
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// On the embedded direct pipeline: whole `_bulk` requests answered 429/503 and single items
/// answered 429 are retried until every change is indexed, writes to one document arrive in
/// order (the fake's history of each counter only grows), and a worker killed while the
/// cluster refuses everything loses nothing: its offsets had not moved past what was indexed.
#[test]
fn retries_keep_per_document_order_and_offsets_never_pass_the_index() {
    let pg = Cluster::start();
    let fake = EsFake::start();
    pg.create_accounts();
    pg.sql("insert into accounts select g, 'owner-' || g, 0 from generate_series(1, 5) g");
    let dir = tempfile::tempdir().unwrap();
    let mut args = worker_and_source(dir.path(), &pg, "accounts");
    let sink_settings = [
        ("batch.size", "20"),
        ("max.in.flight.requests", "3"),
        ("max.retries", "12"),
        ("retry.backoff.ms", "20"),
    ];
    args.push(accounts_sink(
        dir.path(),
        "es-accounts",
        &fake.url(),
        &sink_settings,
    ));
    let worker = Worker::start_with_env(dir.path(), &args, &[]);
    wait_for_mirror(&pg, &fake, &worker);

    fake.fail_requests(&[429, 503, 503, 429]);
    fake.fail_items(429, 3, 15);
    for round in 0..60 {
        let id = round % 5 + 1;
        pg.sql(&format!(
            "update accounts set balance = balance + 1 where id = {id}"
        ));
    }
    pg.sql("update accounts set balance = balance + 1");
    wait_for_mirror(&pg, &fake, &worker);
    assert_eq!(fake.faults_left(), (0, 0), "every injected fault was hit");
    let stats = fake.stats();
    assert!(
        stats.rejected_requests == 4 && stats.rejected_items == 15,
        "{stats:?}"
    );
    for id in 1..=5 {
        let balances: Vec<i64> = fake
            .history(INDEX, &id.to_string())
            .iter()
            .map(|doc| doc.as_ref().unwrap()["balance"].as_i64().unwrap())
            .collect();
        assert!(
            balances.windows(2).all(|w| w[0] < w[1]),
            "document {id} saw its writes out of order: {balances:?}"
        );
        assert_eq!(balances.len(), 14, "document {id}: snapshot + 13 updates");
    }

    // The cluster refuses everything; a change waits in the sink; the worker dies.
    fake.fail_requests(&[503; 10_000]);
    pg.sql("insert into accounts values (100, 'late', 1)");
    wait_until(
        "the sink retries the refused change",
        Duration::from_secs(60),
        || fake.stats().rejected_requests >= stats.rejected_requests + 3,
    );
    worker.kill9();
    fake.clear_faults();
    let worker = Worker::start_with_env(dir.path(), &args, &[]);
    wait_for_mirror(&pg, &fake, &worker);
    assert!(fake.documents(INDEX).contains_key("100"));
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// `behavior.on.malformed.documents` with a document the index's mapping refuses (a string
/// where the first document had a number): `ignore` and `warn` skip it (`warn` says so in the
/// log), a dead letter queue receives it with Kafka Connect's context headers, `fail` fails
/// the task with Elasticsearch's reason in the trace.
#[test]
fn malformed_documents_are_skipped_warned_dead_lettered_or_fail_the_task() {
    let broker = Broker::start();
    let fake = EsFake::start();
    let dir = tempfile::tempdir().unwrap();
    broker.create_topic("docs", 1);
    broker.produce(
        "docs",
        &[
            (Some(b"k1"), Some(br#"{"n":1}"#)),
            (Some(b"k2"), Some(br#"{"n":"not a number"}"#)),
            (Some(b"k3"), Some(br#"{"n":3}"#)),
        ],
    );
    std::fs::write(
        dir.path().join("worker.properties"),
        "offset.flush.interval.ms=200\n",
    )
    .unwrap();
    let mut args = vec![
        dir.path()
            .join("worker.properties")
            .to_string_lossy()
            .into_owned(),
    ];
    for (name, behaviour, extra) in [
        ("ignore", "ignore", ""),
        ("warn", "warn", ""),
        ("fail", "fail", ""),
        (
            "dlq",
            "warn",
            "errors.tolerance=all\nerrors.deadletterqueue.topic.name=es-dlq\n\
             errors.deadletterqueue.context.headers.enable=true\n",
        ),
    ] {
        let path = dir.path().join(format!("{name}.properties"));
        std::fs::write(
            &path,
            format!(
                "name=es-{name}\nconnector.class=elasticsearch\nconnection.url={}\ntopics=docs\n\
                 key.converter=org.apache.kafka.connect.storage.StringConverter\n\
                 value.converter=org.apache.kafka.connect.json.JsonConverter\n\
                 value.converter.schemas.enable=false\n\
                 behavior.on.malformed.documents={behaviour}\n\
                 transforms=route\ntransforms.route.type=RegexRouter\n\
                 transforms.route.regex=docs\ntransforms.route.replacement=docs-{name}\n{extra}",
                fake.url()
            ),
        )
        .unwrap();
        args.push(path.to_string_lossy().into_owned());
    }
    let env = [("SLUICE__BOOTSTRAP_SERVERS", broker.addr.as_str())];
    let worker = Worker::start_with_env(dir.path(), &args, &env);
    let good = |index: &str| {
        let docs = fake.documents(index);
        docs.get("k1") == Some(&json!({"n": 1})) && docs.get("k3") == Some(&json!({"n": 3}))
    };
    for name in ["ignore", "warn", "dlq"] {
        worker.wait_until(
            &format!("es-{name} indexes k1 and k3"),
            Duration::from_secs(60),
            || good(&format!("docs-{name}")),
        );
        assert!(!fake.documents(&format!("docs-{name}")).contains_key("k2"));
    }
    worker.wait_for_log(
        "a warning for the skipped document",
        "behavior.on.malformed.documents=warn",
    );
    let status = worker.wait_for_status("es-fail", "es-fail fails", |s| {
        s["tasks"][0]["state"] == "FAILED"
    });
    let trace = status["tasks"][0]["trace"].as_str().unwrap();
    assert!(
        trace.contains("mapper_parsing_exception")
            && trace.contains("id k2")
            && trace.contains("behavior.on.malformed.documents=fail"),
        "{trace}"
    );
    for name in ["ignore", "warn", "dlq"] {
        let status = worker.get(&format!("/connectors/es-{name}/status")).1;
        assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");
    }
    let dead = broker.read("es-dlq", 1);
    assert_eq!(dead[0].key.as_deref(), Some(&b"k2"[..]));
    assert_eq!(
        serde_json::from_str::<Json>(&dead[0].text()).unwrap(),
        json!({"n": "not a number"})
    );
    assert_eq!(dead[0].header("__connect.errors.stage"), Some("TASK_PUT"));
    assert_eq!(
        dead[0].header("__connect.errors.connector.name"),
        Some("es-dlq")
    );
    assert!(
        dead[0]
            .header("__connect.errors.exception.message")
            .unwrap()
            .contains("mapper_parsing_exception")
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// Connection problems name the setting to fix: a URL without scheme is refused when the
/// connector is created; an unreachable node, refused credentials (401) and a missing index
/// with auto-creation off fail the task at start with the reason.
#[test]
fn bad_connection_settings_fail_with_clear_errors() {
    let fake = EsFake::start();
    fake.require_credentials("elastic", "s3cret");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("worker.properties"),
        "offset.flush.interval.ms=200\n",
    )
    .unwrap();
    let worker_config = dir.path().join("worker.properties");
    let worker = Worker::start(dir.path(), &[worker_config.to_str().unwrap()]);
    let base = json!({
        "connector.class": "io.confluent.connect.elasticsearch.ElasticsearchSinkConnector",
        "topics": "orders", "connection.username": "elastic", "connection.password": "s3cret",
        "connection.url": fake.url(),
    });
    let create = |name: &str, extra: Json| create_connector(&worker, name, base.clone(), extra);
    let trace_of = |name: &str| {
        let status = worker.wait_for_status(name, &format!("{name} fails"), |s| {
            s["tasks"][0]["state"] == "FAILED"
        });
        status["tasks"][0]["trace"].as_str().unwrap().to_owned()
    };

    let (code, body) = create("no-scheme", json!({"connection.url": "localhost:9200"}));
    assert_eq!(code, 400, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("connection.url") && message.contains("http://localhost:9200"),
        "{message}"
    );

    let closed_url = unreachable_url();
    assert_eq!(
        create("unreachable", json!({"connection.url": closed_url})).0,
        201
    );
    let trace = trace_of("unreachable");
    assert!(
        trace.contains("cannot reach Elasticsearch") && trace.contains(&closed_url),
        "{trace}"
    );

    assert_eq!(
        create("wrong-password", json!({"connection.password": "nope"})).0,
        201
    );
    let trace = trace_of("wrong-password");
    assert!(
        trace.contains("401") && trace.contains("connection.username and connection.password"),
        "{trace}"
    );

    fake.disable_auto_create();
    assert_eq!(
        create("no-index", json!({"auto.create.indices.at.start": "false"})).0,
        201
    );
    let trace = trace_of("no-index");
    assert!(
        trace.contains("index `orders` does not exist")
            && trace.contains("auto.create.indices.at.start"),
        "{trace}"
    );

    fake.create_index("orders");
    assert_eq!(
        create("fine", json!({"auto.create.indices.at.start": "false"})).0,
        201
    );
    worker.wait_for_status("fine", "the correctly configured sink runs", |s| {
        s["tasks"][0]["state"] == "RUNNING"
    });
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// `write.method=upsert` sends `update` actions with `doc_as_upsert` and still mirrors the
/// table; with two URLs of which the first refuses connections, every request fails over to
/// the second.
#[test]
fn upserts_mirror_the_table_and_requests_fail_over_to_the_next_url() {
    let pg = Cluster::start();
    let fake = EsFake::start();
    pg.create_accounts();
    pg.sql("insert into accounts select g, 'owner-' || g, g from generate_series(1, 10) g");
    let dead_node = unreachable_url();
    let dir = tempfile::tempdir().unwrap();
    let mut args = worker_and_source(dir.path(), &pg, "accounts");
    let urls = format!("{dead_node},{}", fake.url());
    args.push(accounts_sink(
        dir.path(),
        "es-accounts",
        &urls,
        &[("write.method", "upsert")],
    ));
    let worker = Worker::start_with_env(dir.path(), &args, &[]);
    pg.mixed_workload(3, 30);
    wait_for_mirror(&pg, &fake, &worker);
    assert!(fake.stats().updates >= 10, "{:?}", fake.stats());
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// A cluster with its own certificate authority: refused without
/// `elastic.https.ssl.ca.location` (the error names the certificate problem), trusted with it.
#[test]
fn https_with_a_custom_ca_is_trusted_only_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(d)
            .output()
            .expect("openssl (Debian package openssl) is installed");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=sluice test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(d.join("san.ext"), "subjectAltName=DNS:localhost\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    let fake = EsFake::start_tls(&d.join("server.pem"), &d.join("server.key"));
    std::fs::write(
        d.join("worker.properties"),
        "offset.flush.interval.ms=200\n",
    )
    .unwrap();
    let worker_config = d.join("worker.properties");
    let worker = Worker::start(d, &[worker_config.to_str().unwrap()]);
    let base = json!({
        "connector.class": "elasticsearch", "topics": "orders", "connection.url": fake.url(),
    });
    let create = |name: &str, extra: Json| create_connector(&worker, name, base.clone(), extra).0;
    assert_eq!(create("untrusted", json!({})), 201);
    let status = worker.wait_for_status("untrusted", "the untrusted cluster is refused", |s| {
        s["tasks"][0]["state"] == "FAILED"
    });
    let trace = status["tasks"][0]["trace"].as_str().unwrap();
    assert!(
        trace.contains("certificate") && trace.contains(&fake.url()),
        "{trace}"
    );
    let ca = d.join("ca.pem");
    assert_eq!(
        create(
            "trusted",
            json!({"elastic.https.ssl.ca.location": ca.to_str().unwrap()})
        ),
        201
    );
    worker.wait_for_status("trusted", "the sink trusts the cluster's CA", |s| {
        s["tasks"][0]["state"] == "RUNNING"
    });
    assert!(fake.has_index("orders"), "created over https");
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}
