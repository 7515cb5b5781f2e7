//! Kafka's config providers (KIP-297) on a standalone worker against a real PostgreSQL 15: a
//! connector whose password is `${file:…}` runs, its config and its tasks' configs show the
//! placeholder and never the password, a changed password file restarts it with the new value
//! (`config.action.reload=restart`), and a path outside `allowed.paths` is refused at create.

mod support;

use std::time::Duration;

use serde_json::{Value as Json, json};
use support::postgres::Cluster;
use support::{Worker, lines};

#[test]
fn a_password_from_a_file_provider_runs_stays_hidden_and_reloads() {
    let pg = Cluster::start();
    pg.create_accounts();
    pg.sql("insert into accounts values (1, 'before', 1)");
    pg.sql("create role secretuser login superuser replication password 'first-Pa55'");
    // The user must give its password (scram), everyone else keeps trust.
    std::fs::write(
        pg.dir().join("data/pg_hba.conf"),
        "local all all trust\n\
         host all         secretuser 127.0.0.1/32 scram-sha-256\n\
         host replication secretuser 127.0.0.1/32 scram-sha-256\n\
         host all         all        127.0.0.1/32 trust\n\
         host replication all        127.0.0.1/32 trust\n",
    )
    .unwrap();
    pg.sql("select pg_reload_conf()");
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    let password_file = secrets.join("pg.properties");
    std::fs::write(&password_file, "pg.password=first-Pa55\n").unwrap();
    let placeholder = format!("${{file:{}:pg.password}}", password_file.display());
    let connector = json!({
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "database.hostname": "127.0.0.1", "database.port": pg.port.to_string(),
        "database.user": "secretuser", "database.password": placeholder,
        "database.dbname": "postgres", "topic.prefix": "dbserver1",
        "table.include.list": "public.accounts",
    });
    let args = support::write_cdc_configs(dir.path(), Some(connector.clone()), &json!({}));
    let worker_properties = dir.path().join("worker.properties");
    let mut worker_config = std::fs::read_to_string(&worker_properties).unwrap();
    worker_config.push_str(&format!(
        "config.providers=file\n\
         config.providers.file.class=org.apache.kafka.common.config.provider.FileConfigProvider\n\
         config.providers.file.param.allowed.paths={}\n",
        secrets.display()
    ));
    std::fs::write(&worker_properties, worker_config).unwrap();
    let events = dir.path().join("events.jsonl");
    let worker = Worker::start(dir.path(), &args);
    worker.wait_until(
        "the snapshot with the file's password",
        Duration::from_secs(30),
        || lines(&events).iter().any(|l| l.contains("\"before\"")),
    );

    let (status, config) = worker.get("/connectors/inventory/config");
    assert_eq!(status, 200);
    assert_eq!(
        config["database.password"],
        placeholder.as_str(),
        "{config}"
    );
    let (_, tasks) = worker.get("/connectors/inventory/tasks");
    let (_, info) = worker.get("/connectors/inventory");
    for answer in [&config, &tasks, &info] {
        assert!(!answer.to_string().contains("first-Pa55"), "{answer}");
    }
    assert!(
        tasks.to_string().contains("${file:"),
        "the task's config keeps the placeholder: {tasks}"
    );

    // A new password: the server's first, then the file's; the connector restarts with it
    // and streams on (the old password would fail once it reconnects).
    pg.wait_for_slot("debezium");
    pg.sql("alter role secretuser password 'second-Pa55'");
    std::fs::write(&password_file, "pg.password=second-Pa55\n").unwrap();
    worker.wait_until(
        "the restart on the new password",
        Duration::from_secs(30),
        || {
            worker
                .logs()
                .contains("a config provider's file changed; restarting")
        },
    );
    pg.sql("insert into accounts values (2, 'after', 2)");
    worker.wait_until(
        "a change streamed after the restart",
        Duration::from_secs(60),
        || lines(&events).iter().any(|l| l.contains("\"after\"")),
    );
    worker.wait_for_status("inventory", "the restarted task runs", |s| {
        s["tasks"][0]["state"] == "RUNNING"
    });
    assert_eq!(
        worker
            .logs()
            .matches("a config provider's file changed")
            .count(),
        1,
        "one restart for one change: {}",
        worker.logs()
    );

    // Outside allowed.paths: refused at create, naming the key and the path.
    let mut outside = connector.clone();
    outside["database.password"] = Json::String("${file:/etc/passwd:root}".into());
    let (status, body) = worker.post(
        "/connectors",
        Some(&json!({"name": "escape", "config": outside})),
    );
    assert_eq!(status, 400, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("database.password"), "{message}");
    assert!(
        message.contains("outside the provider's allowed.paths"),
        "{message}"
    );

    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
    for secret in ["first-Pa55", "second-Pa55"] {
        assert!(!logs.contains(secret), "the log holds {secret}:\n{logs}");
    }
}
