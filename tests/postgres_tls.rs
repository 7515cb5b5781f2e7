//! TLS to Postgres (`database.sslmode` and its certificate keys) against a real PostgreSQL 15
//! with `ssl=on`, certificates made here by `openssl` (a CA, a server certificate naming only
//! `localhost`, a client certificate, and a second CA that signed nothing of the server's),
//! and a pg_hba.conf that accepts TLS connections only.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value as Json, json};
use support::certs::Certs;
use support::postgres::Cluster;
use support::{Worker, lines, wait_until};

/// Turns TLS on (server certificate, CA for client certificates) and makes pg_hba.conf take
/// TLS connections only; user `tlsuser` must also show a client certificate signed by the CA.
fn require_tls(pg: &Cluster, certs: &Certs) {
    let own = |path: &Path, mode: u32| {
        let status = Command::new("chown")
            .args(["postgres:postgres", &path.to_string_lossy()])
            .status()
            .unwrap();
        assert!(status.success());
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    let server_dir = pg.dir().join("tls");
    std::fs::create_dir_all(&server_dir).unwrap();
    for (from, to) in [
        (&certs.server_cert, "server.crt"),
        (&certs.server_key, "server.key"),
        (&certs.ca, "ca.crt"),
    ] {
        std::fs::copy(from, server_dir.join(to)).unwrap();
        own(&server_dir.join(to), 0o600);
    }
    own(&server_dir, 0o700);
    pg.sql("create role tlsuser login superuser replication");
    std::fs::write(
        pg.dir().join("data/pg_hba.conf"),
        "local all all trust\n\
         hostssl all         tlsuser 127.0.0.1/32 trust clientcert=verify-ca\n\
         hostssl replication tlsuser 127.0.0.1/32 trust clientcert=verify-ca\n\
         hostssl all         all     127.0.0.1/32 trust\n\
         hostssl replication all     127.0.0.1/32 trust\n",
    )
    .unwrap();
    let file = |name: &str| server_dir.join(name).to_string_lossy().into_owned();
    for (setting, value) in [
        ("ssl_cert_file", file("server.crt")),
        ("ssl_key_file", file("server.key")),
        ("ssl_ca_file", file("ca.crt")),
        ("ssl", "on".to_owned()),
    ] {
        pg.sql(&format!("alter system set {setting} = '{value}'"));
    }
    pg.sql("select pg_reload_conf()");
    wait_until("the server to take TLS", Duration::from_secs(10), || {
        pg.sql("show ssl") == ["on"]
    });
}

/// A cluster taking TLS only (see [`require_tls`]) with `accounts` holding `rows` (an SQL
/// `values` list), the certificates made in the returned directory.
fn tls_cluster(rows: &str) -> (Cluster, tempfile::TempDir, Certs) {
    let pg = Cluster::start();
    let work = tempfile::tempdir().unwrap();
    let certs = Certs::make(work.path());
    pg.create_accounts();
    pg.sql(&format!("insert into accounts {rows}"));
    require_tls(&pg, &certs);
    (pg, work, certs)
}

/// The worker, the Postgres connector as `user` at `host` with `tls` keys, and the oracle sink.
fn configs(dir: &Path, pg: &Cluster, host: &str, user: &str, tls: Json) -> Vec<String> {
    let connector = json!({
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "database.hostname": host, "database.port": pg.port.to_string(),
        "database.user": user, "database.password": "", "database.dbname": "postgres",
        "topic.prefix": "dbserver1", "table.include.list": "public.accounts",
    });
    support::write_cdc_configs(dir, Some(connector), &tls)
}

fn path(p: &Path) -> Json {
    Json::String(p.to_string_lossy().into_owned())
}

/// `verify-full` with the CA and a client certificate whose key is encrypted
/// (`database.sslpassword`): the snapshot and the stream both
/// arrive, and every connection sluice holds (replication and queries) is encrypted, as
/// `pg_stat_ssl` shows.
#[test]
fn verify_full_snapshots_and_streams_over_tls_with_a_client_certificate() {
    let (pg, _work, certs) = tls_cluster("select g, 'owner-' || g, g from generate_series(1, 3) g");
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let args = configs(
        dir.path(),
        &pg,
        "localhost",
        "tlsuser",
        json!({
            "database.sslmode": "verify-full", "database.sslrootcert": path(&certs.ca),
            "database.sslcert": path(&certs.client_cert),
            "database.sslkey": path(&certs.client_key_encrypted),
            "database.sslpassword": support::certs::CLIENT_KEY_PASSWORD,
        }),
    );
    let worker = Worker::start(dir.path(), &args);
    worker.wait_until("the snapshot over TLS", Duration::from_secs(30), || {
        lines(&events).len() >= 3
    });
    pg.wait_for_slot("debezium");
    pg.sql("insert into accounts values (4, 'streamed', 4)");
    worker.wait_until("the streamed insert", Duration::from_secs(30), || {
        lines(&events).iter().any(|l| l.contains("\"streamed\""))
    });
    let connections = pg.sql(
        "select a.backend_type || ' ssl=' || s.ssl || ' ' || coalesce(s.version, '') \
         from pg_stat_ssl s join pg_stat_activity a using (pid) where a.usename = 'tlsuser'",
    );
    eprintln!("sluice's connections: {connections:?}");
    assert!(
        connections
            .iter()
            .any(|c| c.starts_with("walsender ssl=true")),
        "{connections:?}"
    );
    assert!(
        connections.iter().all(|c| c.contains("ssl=true")),
        "{connections:?}"
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// The connector's failure trace once the connector or its task is FAILED.
fn failure(dir: &Path, args: &[String]) -> String {
    failure_with_env(dir, args, &[])
}

/// [`failure`] of a worker started with `env` set.
fn failure_with_env(dir: &Path, args: &[String], env: &[(&str, &str)]) -> String {
    let worker = Worker::start_with_env(dir, args, env);
    let status = worker.wait_for_status("inventory", "the connector fails", |s| {
        s["connector"]["state"] == "FAILED" || s["tasks"][0]["state"] == "FAILED"
    });
    let trace = [&status["connector"]["trace"], &status["tasks"][0]["trace"]]
        .iter()
        .filter_map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
    trace
}

/// What does not verify fails with the reason and the key to change: a CA that did not sign
/// the server's certificate, a host name the certificate does not list (which `verify-ca`
/// accepts), `disable` against a server that takes TLS only, a user whose pg_hba.conf line
/// asks for a client certificate it was not given.
#[test]
fn what_does_not_verify_fails_naming_the_reason_and_the_key_to_change() {
    let (pg, _work, certs) = tls_cluster("values (1, 'one', 1)");
    let case = |host: &str, user: &str, tls: Json| {
        let dir = tempfile::tempdir().unwrap();
        let args = configs(dir.path(), &pg, host, user, tls);
        (dir, args)
    };

    let (dir, args) = case(
        "localhost",
        "postgres",
        json!({"database.sslmode": "verify-full", "database.sslrootcert": path(&certs.other_ca)}),
    );
    let trace = failure(dir.path(), &args);
    eprintln!("wrong CA: {trace}");
    assert!(trace.contains("UnknownIssuer"), "{trace}");
    assert!(trace.contains("database.sslrootcert"), "{trace}");

    let (dir, args) = case(
        "127.0.0.1",
        "postgres",
        json!({"database.sslmode": "verify-full", "database.sslrootcert": path(&certs.ca)}),
    );
    let trace = failure(dir.path(), &args);
    eprintln!("host the certificate does not name: {trace}");
    assert!(trace.contains("database.hostname"), "{trace}");
    assert!(trace.contains("verify-ca"), "{trace}");

    let (dir, args) = case(
        "127.0.0.1",
        "postgres",
        json!({"database.sslmode": "disable"}),
    );
    let trace = failure(dir.path(), &args);
    eprintln!("disable against hostssl only: {trace}");
    assert!(trace.contains("no encryption"), "{trace}");
    assert!(trace.contains("database.sslmode"), "{trace}");

    let (dir, args) = case(
        "localhost",
        "tlsuser",
        json!({"database.sslmode": "verify-full", "database.sslrootcert": path(&certs.ca)}),
    );
    let trace = failure(dir.path(), &args);
    eprintln!("no client certificate: {trace}");
    assert!(
        trace.contains("requires a valid client certificate"),
        "{trace}"
    );
    assert!(trace.contains("database.sslcert"), "{trace}");

    let (dir, args) = case(
        "localhost",
        "tlsuser",
        json!({"database.sslmode": "verify-full", "database.sslrootcert": path(&certs.ca),
               "database.sslcert": path(&certs.client_cert),
               "database.sslkey": path(&certs.client_key_encrypted),
               "database.sslpassword": "not-the-password"}),
    );
    let trace = failure(dir.path(), &args);
    eprintln!("wrong key password: {trace}");
    assert!(
        trace.contains("cannot decrypt the key with database.sslpassword"),
        "{trace}"
    );
    assert!(!trace.contains("not-the-password"), "{trace}");

    // verify-ca checks the chain only: the same host now streams.
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let args = configs(
        dir.path(),
        &pg,
        "127.0.0.1",
        "postgres",
        json!({"database.sslmode": "verify-ca", "database.sslrootcert": path(&certs.ca)}),
    );
    let worker = Worker::start(dir.path(), &args);
    worker.wait_until(
        "the snapshot with verify-ca",
        Duration::from_secs(30),
        || lines(&events).iter().any(|l| l.contains("\"one\"")),
    );
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// `database.sslrootcert=system` (libpq 16's value) trusts the system's CAs — here the bundle
/// `SSL_CERT_FILE` names, as OpenSSL and so libpq read it — and makes `verify-full` the
/// default: the snapshot arrives over TLS with the name checked. A bundle without the server's
/// CA fails as an unknown issuer; a weaker `database.sslmode` beside it is refused naming both
/// keys, as libpq refuses it.
#[test]
fn sslrootcert_system_trusts_the_system_cas_with_the_name_checked() {
    let (pg, work, certs) = tls_cluster("values (1, 'one', 1)");
    let bundle = work.path().join("bundle.crt");
    let system = std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
    std::fs::write(
        &bundle,
        [system, std::fs::read(&certs.ca).unwrap()].concat(),
    )
    .unwrap();
    let system_roots = json!({"database.sslrootcert": "system"});

    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let args = configs(
        dir.path(),
        &pg,
        "localhost",
        "postgres",
        system_roots.clone(),
    );
    let worker = Worker::start_with_env(
        dir.path(),
        &args,
        &[("SSL_CERT_FILE", bundle.to_str().unwrap())],
    );
    worker.wait_until("the snapshot over TLS", Duration::from_secs(30), || {
        lines(&events).len() == 1
    });
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");

    let dir = tempfile::tempdir().unwrap();
    let args = configs(
        dir.path(),
        &pg,
        "localhost",
        "postgres",
        system_roots.clone(),
    );
    let other = certs.other_ca.to_str().unwrap();
    let trace = failure_with_env(dir.path(), &args, &[("SSL_CERT_FILE", other)]);
    eprintln!("system CAs without the server's: {trace}");
    assert!(trace.contains("UnknownIssuer"), "{trace}");

    // The name is checked: the address the certificate does not name fails.
    let dir = tempfile::tempdir().unwrap();
    let args = configs(dir.path(), &pg, "127.0.0.1", "postgres", system_roots);
    let bundle = bundle.to_str().unwrap();
    let trace = failure_with_env(dir.path(), &args, &[("SSL_CERT_FILE", bundle)]);
    eprintln!("system CAs, a host the certificate does not name: {trace}");
    assert!(trace.contains("database.hostname"), "{trace}");

    let dir = tempfile::tempdir().unwrap();
    let args = configs(
        dir.path(),
        &pg,
        "localhost",
        "postgres",
        json!({"database.sslrootcert": "system", "database.sslmode": "require"}),
    );
    let trace = failure_with_env(dir.path(), &args, &[("SSL_CERT_FILE", bundle)]);
    eprintln!("system CAs with require: {trace}");
    assert!(
        trace.contains("database.sslrootcert=system")
            && trace.contains("database.sslmode=verify-full"),
        "{trace}"
    );
}
