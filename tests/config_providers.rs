//! Kafka's config providers (KIP-297) on a standalone worker against a real PostgreSQL 15: a
//! connector whose password is `${file:…}` runs, its config and its tasks' configs show the
//! placeholder and never the password, a changed password file restarts it with the new value
//! (`config.action.reload=restart`), and a path outside `allowed.paths` is refused at create.
//! In distributed mode, on a Tansu broker, a changed file restarts the connector's instance on
//! the worker that runs it and its task, which then works with the new value.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::{Value as Json, json};
use support::kafka::Broker;
use support::postgres::Cluster;
use support::{Worker, append_lines, lines, numbered};

/// Creates `user` (a replication role with `attributes`) who must give `password` (scram);
/// everyone else keeps trust.
fn password_user(pg: &Cluster, user: &str, attributes: &str, password: &str) {
    pg.sql(&format!(
        "create role {user} login replication {attributes} password '{password}'"
    ));
    std::fs::write(
        pg.dir().join("data/pg_hba.conf"),
        format!(
            "local all all trust\n\
             host all         {user} 127.0.0.1/32 scram-sha-256\n\
             host replication {user} 127.0.0.1/32 scram-sha-256\n\
             host all         all 127.0.0.1/32 trust\n\
             host replication all 127.0.0.1/32 trust\n"
        ),
    )
    .unwrap();
    pg.sql("select pg_reload_conf()");
}

#[test]
fn a_password_from_a_file_provider_runs_stays_hidden_and_reloads() {
    let pg = Cluster::start();
    pg.create_accounts();
    pg.sql("insert into accounts values (1, 'before', 1)");
    password_user(&pg, "secretuser", "superuser", "first-Pa55");
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

/// Secrets discipline over a whole run: secret values in the worker config (a SASL JAAS
/// config, a TLS key password) and in connector configs (a Postgres password that is wrong, so
/// its failure trace is produced; a validate call), then every REST answer a client or the
/// status page can get and every log line are searched for the values: none holds one.
#[test]
fn no_log_line_or_rest_answer_holds_a_secret() {
    let pg = Cluster::start();
    pg.create_accounts();
    password_user(&pg, "scanned", "", "right-Pa55");
    let secrets = [
        "wr0ng-Pa55-x1",
        "jaas-S3cret-x2",
        "key-S3cret-x3",
        "val-S3cret-x4",
    ];
    let dir = tempfile::tempdir().unwrap();
    let connector = json!({
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "database.hostname": "127.0.0.1", "database.port": pg.port.to_string(),
        "database.user": "scanned", "database.password": secrets[0],
        "database.dbname": "postgres", "topic.prefix": "dbserver1",
        "table.include.list": "public.accounts",
    });
    let args = support::write_cdc_configs(dir.path(), Some(connector.clone()), &json!({}));
    let worker_properties = dir.path().join("worker.properties");
    let mut worker_config = std::fs::read_to_string(&worker_properties).unwrap();
    worker_config.push_str(&format!(
        "producer.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule \
         required username=\"u\" password=\"{}\";\nssl.key.password={}\n",
        secrets[1], secrets[2]
    ));
    std::fs::write(&worker_properties, worker_config).unwrap();
    let worker = Worker::start(dir.path(), &args);
    worker.wait_for_status("inventory", "the wrong password fails the connector", |s| {
        s["connector"]["state"] == "FAILED" || s["tasks"][0]["state"] == "FAILED"
    });
    let mut validated = connector.clone();
    validated["database.password"] = Json::String(secrets[3].into());
    validated["database.port"] = Json::String("not a port".into());
    let mut answers = vec![
        worker.put(
            "/connector-plugins/PostgresConnector/config/validate",
            Some(&validated),
        ),
        worker.get("/connectors?expand=status&expand=info"),
        worker.get("/connectors/inventory"),
        worker.get("/connectors/inventory/config"),
        worker.get("/connectors/inventory/status"),
        worker.get("/connectors/inventory/tasks"),
        worker.get("/connectors/inventory/offsets"),
        worker.get("/ui/data"),
        worker.get("/metrics"),
        worker.get("/"),
    ];
    let (status, body) = worker.post(
        "/connectors",
        Some(&json!({"name": "second", "config": validated})),
    );
    assert_eq!(status, 400, "{body}");
    answers.push((status, body));
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
    assert!(logs.contains("password authentication failed"), "{logs}");
    let mut searched = 0;
    for (_, answer) in &answers {
        let text = answer.to_string();
        searched += text.len();
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "a REST answer holds {secret}: {text}"
            );
        }
    }
    for secret in secrets {
        assert!(!logs.contains(secret), "the log holds {secret}:\n{logs}");
    }
    eprintln!(
        "secret scan: {} REST answers ({searched} bytes) and {} log lines, no secret",
        answers.len(),
        logs.lines().count()
    );
}

/// How many lines of `worker`'s log say `message` about connector `name`.
fn log_lines_about(worker: &Worker, message: &str, name: &str) -> usize {
    worker
        .logs()
        .lines()
        .filter(|line| line.contains(message) && line.contains(name))
        .count()
}

/// Distributed mode, one worker on Tansu (the instance and the task both land on it): two
/// file sinks whose `file` comes from one `${file:…}` provider file. Once the file names new
/// outputs, the sink with `config.action.reload=restart` restarts its connector instance (as
/// Kafka Connect's DistributedHerder restarts a connector on its owner) and its task, which
/// writes what comes next to the new output; the sink with `none` keeps its instance, its task
/// and its output.
#[test]
fn a_changed_provider_file_restarts_the_instance_and_task_in_a_worker_group() {
    let broker = Broker::start();
    broker.create_topic("lines", 1);
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    let outputs = secrets.join("outputs.properties");
    let output = |name: &str| dir.path().join(format!("{name}.txt"));
    let name_outputs = |generation: u32| {
        std::fs::write(
            &outputs,
            format!(
                "reloads={}\nkeeps={}\n",
                output(&format!("reloads-{generation}")).display(),
                output(&format!("keeps-{generation}")).display()
            ),
        )
        .unwrap();
    };
    name_outputs(1);
    let allowed = secrets.to_str().unwrap().to_owned();
    let mut env = support::group_env(&broker.addr, "providers");
    env.extend([
        ("SLUICE__CONFIG_PROVIDERS", "file"),
        (
            "SLUICE__CONFIG_PROVIDERS_FILE_CLASS",
            "org.apache.kafka.common.config.provider.FileConfigProvider",
        ),
        (
            "SLUICE__CONFIG_PROVIDERS_FILE_PARAM_ALLOWED_PATHS",
            allowed.as_str(),
        ),
    ]);
    let worker_config = support::config("distributed/connect-distributed.properties");
    let worker = Worker::distributed(dir.path(), Path::new(&worker_config), &env);
    let _logs = support::LogsOnFailure::of(&[&worker]);
    worker.wait_for_log("the worker to join", "joined the worker group");

    let input = dir.path().join("input.txt");
    append_lines(&input, numbered(0..10));
    let source = json!({"name": "reader", "config": {
        "connector.class": "FileStreamSource", "tasks.max": "1",
        "topic": "lines", "file": input.to_str().unwrap(),
    }});
    let placeholder = |key: &str| format!("${{file:{}:{key}}}", outputs.display());
    let sink = |name: &str, reload: &str| {
        json!({"name": name, "config": {
            "connector.class": "FileStreamSink", "tasks.max": "1", "topics": "lines",
            "file": placeholder(name), "config.action.reload": reload,
        }})
    };
    for connector in [source, sink("reloads", "restart"), sink("keeps", "none")] {
        let (status, body) = worker.post("/connectors", Some(&connector));
        assert_eq!(status, 201, "{body}");
    }
    worker.wait_until(
        "both sinks write the first lines to the outputs the file names",
        Duration::from_secs(120),
        || {
            lines(&output("reloads-1")) == numbered(0..10)
                && lines(&output("keeps-1")) == numbered(0..10)
        },
    );
    let (_, tasks) = worker.get("/connectors/reloads/tasks");
    assert_eq!(
        tasks[0]["config"]["file"],
        placeholder("reloads").as_str(),
        "the task config keeps the placeholder: {tasks}"
    );
    let started = "connector instance started";
    let (reloads_started, keeps_started) = (
        log_lines_about(&worker, started, "reloads"),
        log_lines_about(&worker, started, "keeps"),
    );

    name_outputs(2);
    worker.wait_until(
        "the instance of the sink with reload=restart restarts, the other is left running",
        Duration::from_secs(30),
        || {
            log_lines_about(&worker, started, "reloads") > reloads_started
                && log_lines_about(&worker, "config.action.reload=none: left running", "keeps") == 1
        },
    );
    assert_eq!(
        log_lines_about(
            &worker,
            "restarting connector instance (a config provider's file changed)",
            "reloads"
        ),
        1,
        "{}",
        worker.logs()
    );
    worker.wait_for_status_within(
        "reloads",
        "the restarted sink runs",
        Duration::from_secs(30),
        |s| s["connector"]["state"] == "RUNNING" && s["tasks"][0]["state"] == "RUNNING",
    );

    append_lines(&input, numbered(10..20));
    worker.wait_until(
        "the restarted task writes the next lines to the new output, the other to its old one",
        Duration::from_secs(60),
        || {
            lines(&output("reloads-2")).ends_with(&numbered(10..20))
                && lines(&output("keeps-1")) == numbered(0..20)
        },
    );
    assert_eq!(lines(&output("reloads-1")), numbered(0..10));
    assert!(
        !output("keeps-2").exists(),
        "the sink with reload=none did not restart"
    );
    assert_eq!(
        log_lines_about(&worker, started, "keeps"),
        keeps_started,
        "the instance of the sink with reload=none did not restart: {}",
        worker.logs()
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}
