//! Kafka Connect's REST API on a standalone worker: paths, status codes and JSON shapes.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::{Value as Json, json};
use support::{Worker, all_tasks, append_lines, lines, wait_until};

fn worker(dir: &Path) -> Worker {
    std::fs::write(
        dir.join("worker.properties"),
        "offset.storage.file.filename=connect.offsets\noffset.flush.interval.ms=100\n",
    )
    .unwrap();
    Worker::start(dir, &["worker.properties"])
}

fn source(dir: &Path) -> Json {
    json!({"name": "src", "config": {
        "connector.class": "FileStreamSource",
        "file": dir.join("in.txt"),
        "topic": "t",
        "producer.override.sasl.jaas.config": "secret-jaas-value",
    }})
}

fn sink(dir: &Path) -> Json {
    json!({"name": "snk", "config": {
        "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
        "file": dir.join("out.txt"), "topics": "t", "tasks.max": 1,
    }})
}

fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

#[test]
fn root_health_and_plugins() {
    let dir = tempfile::tempdir().unwrap();
    let worker = worker(dir.path());
    let (status, root) = worker.get("/");
    assert_eq!(status, 200);
    assert!(
        root["version"].is_string()
            && root.get("commit").is_some()
            && root.get("kafka_cluster_id").is_some()
    );
    assert_eq!(
        worker.get("/health"),
        (
            200,
            json!({"status": "healthy", "message": "Worker has completed startup and is ready to handle requests."})
        )
    );
    let (status, plugins) = worker.get("/connector-plugins");
    assert_eq!(status, 200);
    assert!(plugins.as_array().unwrap().contains(&json!({
        "class": "org.apache.kafka.connect.file.FileStreamSourceConnector", "type": "source", "version": env!("CARGO_PKG_VERSION")
    })));
    let (status, keys) = worker.get("/connector-plugins/FileStreamSink/config");
    assert_eq!(status, 200);
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .any(|k| k["name"] == "file" && k["type"] == "STRING")
    );
    assert_eq!(worker.get("/connectors"), (200, json!([])));
    let (status, body) = worker.get("/no/such/path");
    assert_eq!((status, body["error_code"].clone()), (404, json!(404)));
}

#[test]
fn connector_lifecycle_over_rest() {
    let dir = tempfile::tempdir().unwrap();
    let worker = worker(dir.path());
    let input = dir.path().join("in.txt");
    let output = dir.path().join("out.txt");
    append_lines(&input, numbered("a", 5));

    // Create.
    let (status, info) = worker.post("/connectors", Some(&sink(dir.path())));
    assert_eq!(status, 201, "{info}");
    assert_eq!(info["name"], "snk");
    assert_eq!(info["type"], "sink");
    assert_eq!(info["tasks"], json!([{"connector": "snk", "task": 0}]));
    let (status, info) = worker.post("/connectors", Some(&source(dir.path())));
    assert_eq!(status, 201, "{info}");
    let (status, conflict) = worker.post("/connectors", Some(&source(dir.path())));
    assert_eq!(
        (status, conflict),
        (
            409,
            json!({"error_code": 409, "message": "Connector src already exists"})
        )
    );
    wait_until("the first lines flow", Duration::from_secs(20), || {
        lines(&output).len() == 5
    });

    // List, expand, status, tasks.
    assert_eq!(worker.get("/connectors"), (200, json!(["snk", "src"])));
    let (_, expanded) = worker.get("/connectors?expand=status&expand=info");
    assert_eq!(expanded["src"]["status"]["connector"]["state"], "RUNNING");
    assert_eq!(expanded["snk"]["info"]["type"], "sink");
    let status = worker.wait_for_status("src", "src runs", |s| all_tasks(s, "RUNNING"));
    assert_eq!(status["type"], "source");
    assert_eq!(
        status["connector"]["worker_id"],
        status["tasks"][0]["worker_id"]
    );
    let (code, tasks) = worker.get("/connectors/src/tasks");
    assert_eq!(code, 200);
    assert_eq!(tasks[0]["id"], json!({"connector": "src", "task": 0}));
    assert_eq!(
        worker.get("/connectors/src/tasks/0/status").1["state"],
        "RUNNING"
    );
    assert_eq!(worker.get("/connectors/src/tasks/7/status").0, 404);

    // Secrets are redacted in every answer and never logged.
    assert_eq!(
        worker.get("/connectors/src/config").1["producer.override.sasl.jaas.config"],
        "[hidden]"
    );
    assert_eq!(
        tasks[0]["config"]["producer.override.sasl.jaas.config"],
        "[hidden]"
    );
    assert!(!worker.logs().contains("secret-jaas-value"));

    // Pause: nothing new flows. There is no event to wait for when nothing happens, so the
    // check gives the source ten of its 100 ms polling rounds to (wrongly) move a line.
    assert_eq!(worker.put("/connectors/src/pause", None).0, 202);
    worker.wait_for_status("src", "src pauses", |s| {
        s["connector"]["state"] == "PAUSED" && all_tasks(s, "PAUSED")
    });
    append_lines(&input, numbered("b", 3));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(lines(&output).len(), 5, "a paused source moved lines");
    assert_eq!(worker.put("/connectors/src/resume", None).0, 202);
    wait_until("lines flow after resume", Duration::from_secs(20), || {
        lines(&output).len() == 8
    });
    worker.wait_for_status("src", "src runs again", |s| {
        s["connector"]["state"] == "RUNNING" && all_tasks(s, "RUNNING")
    });

    // Restarts.
    assert_eq!(worker.post("/connectors/src/restart", None).0, 204);
    assert_eq!(worker.post("/connectors/src/tasks/0/restart", None).0, 204);
    let (code, status) = worker.post(
        "/connectors/src/restart?includeTasks=true&onlyFailed=false",
        None,
    );
    assert_eq!(code, 202);
    assert_eq!(status["name"], "src");
    worker.wait_for_status("src", "src runs after restarts", |s| {
        all_tasks(s, "RUNNING")
    });
    append_lines(&input, numbered("c", 2));
    wait_until("lines flow after restarts", Duration::from_secs(20), || {
        lines(&output).len() == 10
    });
    assert_eq!(
        lines(&output)[8..],
        numbered("c", 2)[..],
        "restarts resumed from the committed offset without repeats"
    );

    // Offsets: committed position equals the bytes read.
    let size = std::fs::metadata(&input).unwrap().len();
    let mut offsets = Json::Null;
    wait_until("the offset is committed", Duration::from_secs(20), || {
        offsets = worker.get("/connectors/src/offsets").1;
        offsets["offsets"][0]["offset"]["position"] == size
    });
    assert_eq!(
        offsets["offsets"][0]["partition"],
        json!({"filename": input})
    );
    assert_eq!(
        worker.get("/connectors/snk/offsets"),
        (200, json!({"offsets": []}))
    );

    // Altering offsets needs a STOPPED connector.
    let rewind =
        json!({"offsets": [{"partition": {"filename": input}, "offset": {"position": 0}}]});
    let (code, error) = worker.patch("/connectors/src/offsets", &rewind);
    assert_eq!(code, 400);
    assert!(
        error["message"].as_str().unwrap().contains("STOPPED"),
        "{error}"
    );
    let status = worker.stop_connector("src");
    assert_eq!(status["tasks"], json!([]));
    // Offsets the connector could not read are refused (Kafka Connect's alterOffsets check),
    // and nothing is written.
    for bad in [json!(-1), json!("abc")] {
        let request =
            json!({"offsets": [{"partition": {"filename": input}, "offset": {"position": bad}}]});
        let (code, body) = worker.patch("/connectors/src/offsets", &request);
        assert_eq!(code, 400, "{bad}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("`position` must be a non-negative integer"),
            "{body}"
        );
    }
    assert_eq!(
        worker.get("/connectors/src/offsets").1["offsets"][0]["offset"]["position"],
        json!(size),
        "the refused offsets were not written"
    );
    let (code, body) = worker.patch("/connectors/src/offsets", &rewind);
    assert_eq!(
        (code, body["message"].clone()),
        (
            200,
            json!("The offsets for this connector have been altered successfully")
        )
    );
    assert_eq!(
        worker.get("/connectors/src/offsets").1["offsets"][0]["offset"],
        json!({"position": 0})
    );
    assert_eq!(worker.put("/connectors/src/resume", None).0, 202);
    wait_until(
        "the rewound source re-sends everything",
        Duration::from_secs(20),
        || lines(&output).len() == 20,
    );
    assert_eq!(worker.put("/connectors/src/stop", None).0, 204);
    let (code, body) = worker.delete("/connectors/src/offsets");
    assert_eq!(
        (code, body["message"].clone()),
        (
            200,
            json!("The offsets for this connector have been reset successfully")
        )
    );
    assert_eq!(
        worker.get("/connectors/src/offsets").1,
        json!({"offsets": []})
    );

    // Config updates: PUT replaces, PATCH merges (null removes).
    let mut config = source(dir.path())["config"].clone();
    config["batch.size"] = json!("10");
    let (code, info) = worker.put("/connectors/src/config", Some(&config));
    assert_eq!(code, 200, "{info}");
    assert_eq!(info["config"]["batch.size"], "10");
    assert_eq!(
        worker.get("/connectors/src/status").1["connector"]["state"],
        "STOPPED",
        "an update keeps the target state"
    );
    let (code, info) = worker.patch(
        "/connectors/src/config",
        &json!({"batch.size": null, "tasks.max": "1"}),
    );
    assert_eq!(code, 200, "{info}");
    assert!(info["config"].get("batch.size").is_none());
    let (code, created) = worker.put(
        "/connectors/other/config",
        Some(&json!({
            "connector.class": "FileStreamSink", "file": dir.path().join("other.txt"), "topics": "x"
        })),
    );
    assert_eq!((code, created["name"].clone()), (201, json!("other")));

    // Delete.
    assert_eq!(worker.delete("/connectors/snk").0, 204);
    assert_eq!(worker.get("/connectors/snk").0, 404);
    assert_eq!(worker.get("/connectors"), (200, json!(["other", "src"])));
}

#[test]
fn validate_returns_per_field_errors() {
    let dir = tempfile::tempdir().unwrap();
    let worker = worker(dir.path());
    let (code, result) = worker.put(
        "/connector-plugins/FileStreamSink/config/validate",
        Some(&json!({"connector.class": "FileStreamSink", "name": "x", "tasks.max": "abc", "tpoics": "t"})),
    );
    assert_eq!(code, 200);
    assert_eq!(
        result["name"],
        "org.apache.kafka.connect.file.FileStreamSinkConnector"
    );
    let errors_of = |field: &str| -> Vec<String> {
        result["configs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["value"]["name"] == field)
            .flat_map(|c| {
                c["value"]["errors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e.as_str().unwrap().to_owned())
            })
            .collect()
    };
    assert_eq!(
        errors_of("tasks.max"),
        ["Invalid value abc for configuration tasks.max: expected a whole number (32-bit)"]
    );
    assert_eq!(
        errors_of("topics"),
        ["Must configure one of topics or topics.regex"]
    );
    assert_eq!(
        errors_of("tpoics"),
        ["unknown key `tpoics`; did you mean `topics`?"]
    );
    assert!(errors_of("file").is_empty());
    assert_eq!(result["error_count"], 3);
    assert!(
        result["groups"]
            .as_array()
            .unwrap()
            .contains(&json!("Common"))
    );

    let (_, ok) = worker.put(
        "/connector-plugins/FileStreamSink/config/validate",
        Some(&json!({"name": "x", "topics": "t"})),
    );
    assert_eq!(ok["error_count"], 0, "{ok}");
    let (code, mismatch) = worker.put(
        "/connector-plugins/FileStreamSink/config/validate",
        Some(&json!({"connector.class": "FileStreamSource"})),
    );
    assert_eq!(code, 400, "{mismatch}");
    assert_eq!(
        worker
            .put("/connector-plugins/Nope/config/validate", Some(&json!({})))
            .0,
        404
    );
}

#[test]
fn errors_have_kafka_connect_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let worker = worker(dir.path());
    assert_eq!(
        worker.get("/connectors/nope"),
        (
            404,
            json!({"error_code": 404, "message": "Connector nope not found"})
        )
    );
    assert_eq!(worker.get("/connectors/nope/status").0, 404);
    assert_eq!(worker.put("/connectors/nope/pause", None).0, 404);
    assert_eq!(worker.delete("/connectors/nope").0, 404);
    let (code, body) = worker.post(
        "/connectors",
        Some(&json!({"name": "bad", "config": {"connector.class": "Nope"}})),
    );
    assert_eq!(code, 400);
    assert_eq!(body["error_code"], 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("unknown connector.class `Nope`"),
        "{body}"
    );
    let (code, body) = worker.post(
        "/connectors",
        Some(&json!({"config": {"connector.class": "FileStreamSink"}})),
    );
    assert_eq!((code, body["error_code"].clone()), (400, json!(400)));
    let (code, body) = worker.post("/connectors", Some(&json!("not an object")));
    assert_eq!((code, body["error_code"].clone()), (400, json!(400)));
    let (code, body) = worker.post("/connectors", Some(&json!({"name": "n", "config": {"connector.class": "FileStreamSink", "tasks.max": "x", "topics": "t"}})));
    assert_eq!(code, 400);
    assert!(
        body["message"].as_str().unwrap().contains("tasks.max"),
        "{body}"
    );
    let (code, body) = worker.delete("/connector-plugins");
    assert_eq!((code, body["error_code"].clone()), (405, json!(405)));

    // A body over the limit is refused by axum itself; the answer still has the JSON shape.
    let huge = json!({"name": "big", "config": {"connector.class": "FileStreamSource", "x": "y".repeat(3 << 20)}});
    let (code, body) = worker.post("/connectors", Some(&huge));
    assert_eq!(
        (code, body["error_code"].clone()),
        (413, json!(413)),
        "{body}"
    );
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );

    // Names Kafka Connect (control characters) or Kafka (length) would refuse, and `/`.
    for name in ["a/b".to_owned(), "bell\u{7}".to_owned(), "n".repeat(250)] {
        let request = json!({"name": name, "config": {"connector.class": "FileStreamSource", "file": "f", "topic": "t"}});
        let (code, body) = worker.post("/connectors", Some(&request));
        assert_eq!(
            (code, body["error_code"].clone()),
            (400, json!(400)),
            "{name:?}: {body}"
        );
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("choose another name"),
            "{body}"
        );
    }
    assert_eq!(
        worker.get("/connectors"),
        (200, json!([])),
        "nothing was created"
    );
}
