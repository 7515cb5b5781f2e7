//! The REST API's security on a standalone worker: https with a PEM certificate made here by
//! openssl, HTTP basic authentication against an argon2 hash (`sluice hash-password`), bearer
//! tokens, `/health` left open, CORS, and client certificates when the listener requires them.
//! The client is reqwest over rustls, trusting the test's CA, as any HTTP library would.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use support::certs::{Certs, answer, client, url};
use support::{Worker, lines, wait_until};

/// `sluice hash-password` of `password`.
fn hash(password: &str) -> String {
    let mut child = Command::new(support::sluice_bin())
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let hash = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains(password));
    hash
}

/// A standalone worker on an https listener with `extra` worker keys.
fn https_worker(dir: &Path, certs: &Certs, extra: &str) -> (Worker, String) {
    https_worker_with_key(dir, certs, &certs.server_key, extra)
}

/// [`https_worker`] serving with the server key at `key`.
fn https_worker_with_key(dir: &Path, certs: &Certs, key: &Path, extra: &str) -> (Worker, String) {
    std::fs::write(
        dir.join("worker.properties"),
        format!(
            "offset.storage.file.filename=connect.offsets\noffset.flush.interval.ms=100\n\
             listeners.https.ssl.certificate.location={}\nlisteners.https.ssl.key.location={}\n{extra}",
            certs.server_cert.display(),
            key.display(),
        ),
    )
    .unwrap();
    let worker = Worker::start_with_env(
        dir,
        &["worker.properties"],
        &[("SLUICE__LISTENERS", "https://127.0.0.1:0")],
    );
    let addr = worker.rest.trim_start_matches("http://").to_owned();
    (worker, addr)
}

/// [`https_worker`] with basic authentication (user `admin`, password `Adm1n-pa55`, its
/// argon2 hash in `users`) and bearer token `tok-5f3a9c` (in `tokens`), plus `extra` keys.
fn basic_auth_worker(dir: &Path, certs: &Certs, extra: &str) -> (Worker, String) {
    std::fs::write(
        dir.join("users"),
        format!("# user: argon2 hash\nadmin: {}\n", hash("Adm1n-pa55")),
    )
    .unwrap();
    std::fs::write(dir.join("tokens"), "tok-5f3a9c\n").unwrap();
    https_worker(
        dir,
        certs,
        &format!(
            "rest.extension.classes=org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension\n\
             rest.auth.basic.credentials.file=users\nrest.auth.bearer.tokens.file=tokens\n{extra}"
        ),
    )
}

/// Over https with basic authentication, a client creates, inspects, pauses and deletes a
/// connector; no or wrong credentials get 401 with `WWW-Authenticate`; `/health` answers
/// without them; a bearer token works in place of a password; a browser preflight from the
/// allowed origin gets CORS headers and one from another origin none. Neither the password
/// nor the token appears in the worker's log.
#[test]
fn https_with_basic_auth_manages_connectors_and_refuses_everyone_else() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::make(dir.path());
    let (worker, addr) = basic_auth_worker(
        dir.path(),
        &certs,
        "access.control.allow.origin=https://ui.example\naccess.control.allow.methods=GET,POST,PUT,DELETE\n",
    );
    let http = client(&certs, &addr, None);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let input = dir.path().join("in.txt");
    let output = dir.path().join("out.txt");
    std::fs::write(&input, "one\ntwo\n").unwrap();
    runtime.block_on(async {
        let (status, _, _) = answer(http.get(url(&addr, "/health"))).await;
        assert_eq!(status, 200, "/health stays open");
        let (status, headers, body) = answer(http.get(url(&addr, "/connectors"))).await;
        assert_eq!(status, 401, "{body}");
        assert!(headers["www-authenticate"].to_str().unwrap().starts_with("Basic"));
        assert_eq!(body["error_code"], 401);
        let (status, _, _) =
            answer(http.get(url(&addr, "/connectors")).basic_auth("admin", Some("wrong"))).await;
        assert_eq!(status, 401);
        let (status, _, _) =
            answer(http.get(url(&addr, "/connectors")).basic_auth("nobody", Some("Adm1n-pa55")))
                .await;
        assert_eq!(status, 401);
        let admin = |r: reqwest::RequestBuilder| r.basic_auth("admin", Some("Adm1n-pa55"));
        let (status, _, body) = answer(admin(http.get(url(&addr, "/connectors")))).await;
        assert_eq!((status, body), (200, json!([])));
        for connector in [
            json!({"name": "src", "config": {"connector.class": "FileStreamSource", "file": input, "topic": "t"}}),
            json!({"name": "snk", "config": {"connector.class": "FileStreamSink", "file": output, "topics": "t"}}),
        ] {
            let (status, _, body) =
                answer(admin(
                http.post(url(&addr, "/connectors"))
                    .header("content-type", "application/json")
                    .body(connector.to_string()),
            ))
            .await;
            assert_eq!(status, 201, "{body}");
        }
        wait_until("the lines to arrive", Duration::from_secs(20), || {
            lines(&output).len() == 2
        });
        let (status, _, body) =
            answer(admin(http.get(url(&addr, "/connectors/src/status")))).await;
        assert_eq!((status, &body["connector"]["state"]), (200, &json!("RUNNING")));
        let (status, _, _) = answer(admin(http.put(url(&addr, "/connectors/src/pause")))).await;
        assert_eq!(status, 202);
        let (status, _, body) = answer(
            http.get(url(&addr, "/connectors/src/status"))
                .bearer_auth("tok-5f3a9c"),
        )
        .await;
        assert_eq!(status, 200, "a bearer token: {body}");
        let (status, _, _) =
            answer(http.get(url(&addr, "/connectors")).bearer_auth("tok-other")).await;
        assert_eq!(status, 401);
        let (status, _, _) = answer(admin(http.delete(url(&addr, "/connectors/src")))).await;
        assert_eq!(status, 204);

        let preflight = |origin: &str| {
            http.request(reqwest::Method::OPTIONS, url(&addr, "/connectors"))
                .header("origin", origin)
                .header("access-control-request-method", "POST")
        };
        let (status, headers, _) = answer(preflight("https://ui.example")).await;
        assert_eq!(status, 204);
        assert_eq!(headers["access-control-allow-origin"], "https://ui.example");
        assert_eq!(headers["access-control-allow-methods"], "GET,POST,PUT,DELETE");
        let (status, headers, _) = answer(preflight("https://elsewhere.example")).await;
        assert_eq!(status, 401, "another origin is not answered as a preflight");
        assert!(!headers.contains_key("access-control-allow-origin"));
        let (_, headers, _) = answer(
            admin(http.get(url(&addr, "/connectors"))).header("origin", "https://ui.example"),
        )
        .await;
        assert_eq!(headers["access-control-allow-origin"], "https://ui.example");
    });
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
    for secret in ["Adm1n-pa55", "tok-5f3a9c"] {
        assert!(!logs.contains(secret), "the log holds {secret}:\n{logs}");
    }
}

/// `listeners.https.ssl.client.auth=required`: a client without a certificate signed by the
/// truststore's CA cannot connect; one with it can. The listener's own key is encrypted
/// (`listeners.https.ssl.key.password`).
#[test]
fn a_required_client_certificate_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::make(dir.path());
    let (worker, addr) = https_worker_with_key(
        dir.path(),
        &certs,
        &certs.server_key_encrypted,
        &format!(
            "listeners.https.ssl.client.auth=required\nlisteners.https.ssl.truststore.location={}\n\
             listeners.https.ssl.key.password={}\n",
            certs.ca.display(),
            support::certs::CLIENT_KEY_PASSWORD,
        ),
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let refused = client(&certs, &addr, None)
            .get(url(&addr, "/connectors"))
            .send()
            .await;
        assert!(refused.is_err(), "{refused:?}");
        let (status, _, body) =
            answer(client(&certs, &addr, Some(&certs)).get(url(&addr, "/connectors"))).await;
        assert_eq!((status, body), (200, json!([])));
    });
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// `sluice status` against https workers that ask for credentials: it trusts the CA given
/// with `--cacert`, authenticates with `--user` (the password from SLUICE_STATUS_PASSWORD, never
/// the command line) or `--token-file`, and shows a client certificate with `--cert`/`--key`;
/// without what a worker asks for it fails naming the flag that gives it.
#[test]
fn sluice_status_reaches_https_workers_with_the_credentials_they_ask_for() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::make(dir.path());
    let (worker, addr) = basic_auth_worker(dir.path(), &certs, "");
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "a\n").unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let connector = json!({"name": "src", "config": {"connector.class": "FileStreamSource", "file": input, "topic": "t"}});
        let (status, _, body) = answer(
            client(&certs, &addr, None)
                .post(url(&addr, "/connectors"))
                .basic_auth("admin", Some("Adm1n-pa55"))
                .header("content-type", "application/json")
                .body(connector.to_string()),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    });
    let status = |args: &[&str], password: Option<&str>| {
        let mut command = Command::new(support::sluice_bin());
        command
            .args(["status", "--url", &url(&addr, "")])
            .args(args)
            .env_remove("SLUICE_STATUS_PASSWORD");
        if let Some(password) = password {
            command.env("SLUICE_STATUS_PASSWORD", password);
        }
        let out = command.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let ca = certs.ca.to_str().unwrap();
    let (code, _, stderr) = status(&["--user", "admin"], Some("Adm1n-pa55"));
    assert_ne!(code, Some(0));
    assert!(stderr.contains("--cacert"), "{stderr}");
    let (code, _, stderr) = status(&["--cacert", ca], None);
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains("401") && stderr.contains("--user"),
        "{stderr}"
    );
    let (code, _, stderr) = status(&["--cacert", ca, "--user", "admin"], None);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("SLUICE_STATUS_PASSWORD"), "{stderr}");
    let (code, _, stderr) = status(&["--cacert", ca, "--user", "admin"], Some("wrong"));
    assert_ne!(code, Some(0));
    assert!(stderr.contains("401"), "{stderr}");
    let src_running = |stdout: &str| {
        stdout
            .lines()
            .any(|l| l.starts_with("src") && l.contains("RUNNING"))
    };
    let (code, stdout, stderr) = status(&["--cacert", ca, "--user", "admin"], Some("Adm1n-pa55"));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(src_running(&stdout), "{stdout}");
    let tokens = dir.path().join("tokens");
    let (code, stdout, stderr) = status(
        &["--cacert", ca, "--token-file", tokens.to_str().unwrap()],
        None,
    );
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(src_running(&stdout), "{stdout}");
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
    assert!(!logs.contains("Adm1n-pa55") && !logs.contains("tok-5f3a9c"));

    // A worker that requires a client certificate.
    let other = tempfile::tempdir().unwrap();
    let (worker, addr) = https_worker(
        other.path(),
        &certs,
        &format!(
            "listeners.https.ssl.client.auth=required\nlisteners.https.ssl.truststore.location={}\n",
            certs.ca.display()
        ),
    );
    let status_of = |args: &[&str]| {
        let out = Command::new(support::sluice_bin())
            .args(["status", "--url", &url(&addr, ""), "--cacert", ca])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, output) = status_of(&[]);
    assert_ne!(code, Some(0), "{output}");
    let (code, output) = status_of(&[
        "--cert",
        certs.client_cert.to_str().unwrap(),
        "--key",
        certs.client_key.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{output}");
    assert!(output.starts_with("CONNECTOR"), "{output}");
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}

/// Bad security settings stop the worker at start with the key to fix: a JKS keystore, a
/// plain-text password in the credentials file, an encrypted key without its password or with
/// a wrong one.
#[test]
fn bad_security_settings_are_refused_at_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::make(dir.path());
    std::fs::write(dir.path().join("users"), "admin: hunter2\n").unwrap();
    for (key, extra, expected) in [
        (
            &certs.server_key,
            "listeners.https.ssl.keystore.type=JKS\n",
            "listeners.https.ssl.certificate.location",
        ),
        (
            &certs.server_key,
            "rest.auth.basic.credentials.file=users\n",
            "sluice hash-password",
        ),
        (
            &certs.server_key_encrypted,
            "",
            "the key is encrypted; set listeners.https.ssl.key.password",
        ),
        (
            &certs.server_key_encrypted,
            "listeners.https.ssl.key.password=hunter2\n",
            "cannot decrypt the key with listeners.https.ssl.key.password",
        ),
    ] {
        std::fs::write(
            dir.path().join("worker.properties"),
            format!(
                "offset.storage.file.filename=connect.offsets\n\
                 listeners.https.ssl.certificate.location={}\nlisteners.https.ssl.key.location={}\n{extra}",
                certs.server_cert.display(),
                key.display(),
            ),
        )
        .unwrap();
        let out = Command::new(support::sluice_bin())
            .args(["standalone", "worker.properties"])
            .current_dir(dir.path())
            .env("SLUICE__LISTENERS", "https://127.0.0.1:0")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
