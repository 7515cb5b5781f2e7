//! Bad input gets one clear error naming the problem and the fix, and never a panic.

mod support;

use std::path::Path;
use std::time::Duration;

use support::{Worker, append_lines, config, lines, run, wait_until};

const WORKER: &str = "quickstart/connect-standalone.properties";

/// Runs `sluice standalone` expecting it to refuse to start; returns its stderr.
fn refused(dir: &Path, connector: &str) -> String {
    std::fs::write(dir.join("c.properties"), connector).unwrap();
    let out = run(dir, &["standalone", &config(WORKER), "c.properties"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "sluice started with a bad config:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "exactly one error line:\n{stderr}");
    errors[0].to_owned()
}

#[test]
fn a_missing_config_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &["standalone", &config(WORKER), "missing.properties"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(
        stderr.trim(),
        "error: cannot read config file missing.properties (check the path): No such file or directory (os error 2)"
    );
    let out = run(dir.path(), &["standalone", "no-worker.properties"]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("cannot read config file no-worker.properties")
    );
}

#[test]
fn an_unknown_connector_class_lists_what_exists() {
    let dir = tempfile::tempdir().unwrap();
    let error = refused(
        dir.path(),
        "name=x\nconnector.class=FileStreamSauce\nfile=a\ntopic=t\n",
    );
    assert!(error.contains("c.properties: connector `x`: connector.class: unknown connector.class `FileStreamSauce`; available: FileStreamSourceConnector, FileStreamSinkConnector"), "{error}");
}

#[test]
fn a_malformed_properties_line_is_named_with_its_number() {
    let dir = tempfile::tempdir().unwrap();
    let error = refused(dir.path(), "name=x\nconnector.class\nfile=a\n");
    assert!(error.contains("c.properties: line 2: `connector.class` is not a `key=value` setting; write `connector.class=<value>`"), "{error}");
}

#[test]
fn a_non_numeric_tasks_max_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let error = refused(
        dir.path(),
        "name=x\nconnector.class=FileStreamSource\ntasks.max=two\nfile=a\ntopic=t\n",
    );
    assert!(error.contains("tasks.max: Invalid value two for configuration tasks.max: expected a whole number (32-bit)"), "{error}");
}

#[test]
fn unknown_and_missing_keys_are_named_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let error = refused(
        dir.path(),
        "name=x\nconnector.class=FileStreamSink\nfile=a\ntopic=t\n",
    );
    assert!(
        error.contains("topics: Must configure one of topics or topics.regex"),
        "{error}"
    );
    assert!(
        error.contains("unknown key `topic`; did you mean `topics`?"),
        "{error}"
    );
    let error = refused(dir.path(), "connector.class=FileStreamSink\n");
    assert!(error.contains("missing `name`"), "{error}");
}

#[test]
fn bad_worker_configs_are_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("w.properties"),
        "offset.storage.file.filename=o\noffset.flush.intervl.ms=5\n",
    )
    .unwrap();
    let out = run(dir.path(), &["standalone", "w.properties"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("w.properties: invalid worker config: offset.flush.intervl.ms: unknown key `offset.flush.intervl.ms`; did you mean `offset.flush.interval.ms`?"), "{stderr}");
    std::fs::write(
        dir.path().join("w.properties"),
        "offset.flush.interval.ms=5\n",
    )
    .unwrap();
    let stderr = String::from_utf8_lossy(&run(dir.path(), &["standalone", "w.properties"]).stderr)
        .into_owned();
    assert!(
        stderr.contains("`offset.storage.file.filename` is required in standalone mode"),
        "{stderr}"
    );
    // Kafka Connect's Java keystores: a JKS truststore librdkafka cannot read is refused at
    // start, before any broker is contacted, naming the PEM keys; a distributed worker's
    // group client reads the PEM truststore at start too, naming the key of a missing file.
    std::fs::write(
        dir.path().join("w.properties"),
        "offset.storage.file.filename=o\nbootstrap.servers=127.0.0.1:1\n\
         security.protocol=SSL\nssl.truststore.location=/etc/kafka/truststore.jks\n",
    )
    .unwrap();
    let stderr = String::from_utf8_lossy(&run(dir.path(), &["standalone", "w.properties"]).stderr)
        .into_owned();
    assert!(stderr.contains("ssl.truststore.type=PEM"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    std::fs::write(
        dir.path().join("d.properties"),
        "bootstrap.servers=127.0.0.1:1\ngroup.id=g\nconfig.storage.topic=c\n\
         offset.storage.topic=o\nstatus.storage.topic=s\nsecurity.protocol=SSL\n\
         ssl.truststore.type=PEM\nssl.truststore.location=/etc/kafka/ca.pem\n",
    )
    .unwrap();
    let out = run(dir.path(), &["distributed", "d.properties"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("`ssl.truststore.location`")
            && stderr.contains("cannot read /etc/kafka/ca.pem"),
        "{stderr}"
    );
}

#[test]
fn a_missing_source_file_is_waited_for_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let worker = Worker::start(
        dir.path(),
        &[
            &config(WORKER),
            &config("quickstart/connect-file-source.properties"),
            &config("quickstart/connect-file-sink.properties"),
        ],
    );
    worker.wait_for_log(
        "the missing-file warning",
        "source file does not exist yet; waiting for it to be created",
    );
    assert!(
        worker.logs().contains("file=test.txt"),
        "the warning names the file"
    );
    append_lines(&dir.path().join("test.txt"), ["late".to_owned()]);
    wait_until(
        "the line arrives once the file exists",
        Duration::from_secs(20),
        || lines(&dir.path().join("test.sink.txt")) == ["late"],
    );
}

#[test]
fn validate_checks_files_offline() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.properties"),
        "name=x\nconnector.class=FileStreamSource\ntasks.max=abc\n",
    )
    .unwrap();
    let out = run(
        dir.path(),
        &[
            "validate",
            &config(WORKER),
            &config("quickstart/connect-file-source.yaml"),
            "bad.properties",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        stdout.contains("connect-standalone.properties: worker config (embedded direct pipeline)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "connect-file-source.yaml: connector `local-file-source` (FileStreamSourceConnector)"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAIL bad.properties: tasks.max: Invalid value abc"),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAIL bad.properties: file: Missing required configuration \"file\""),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 of 3 config file(s) have problems"));
    let out = run(
        dir.path(),
        &["validate", &config("quickstart/connect-file-sink.json")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn help_explains_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let help = String::from_utf8_lossy(&run(dir.path(), &["--help"]).stdout).into_owned();
    for command in ["standalone", "validate", "plugins", "--log-format"] {
        assert!(help.contains(command), "--help lacks {command}:\n{help}");
    }
    let help =
        String::from_utf8_lossy(&run(dir.path(), &["standalone", "--help"]).stdout).into_owned();
    assert!(
        help.contains("embedded direct pipeline") && help.contains("SIGTERM"),
        "{help}"
    );
    let plugins = String::from_utf8_lossy(&run(dir.path(), &["plugins"]).stdout).into_owned();
    assert!(
        plugins.contains("org.apache.kafka.connect.file.FileStreamSinkConnector"),
        "{plugins}"
    );
}
