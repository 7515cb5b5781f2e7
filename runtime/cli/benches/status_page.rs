//! Benchmark: how fast the status page's data (`GET /ui/data`) and `GET /metrics` answer on a
//! worker with many tasks (by default 200: 100 file sources and 100 file sinks on the embedded
//! pipeline), against `GET /health` on the same worker as the anchor (the REST stack's own
//! round trip). Prints figures; asserts nothing.
//!
//!     cargo bench -p sluice --bench status_page                     # 100 + 100 tasks
//!     cargo bench -p sluice --bench status_page -- --pairs 10       # quick smoke run

mod common;

use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Median, 99th percentile and maximum of `rounds` calls of `path`, in milliseconds.
fn timings(agent: &ureq::Agent, url: &str, path: &str, rounds: usize) -> (f64, f64, f64) {
    let mut took: Vec<f64> = (0..rounds)
        .map(|_| {
            let started = Instant::now();
            let mut response = agent.get(&format!("{url}{path}")).call().unwrap();
            let _ = response.body_mut().read_to_string().unwrap();
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    took.sort_by(f64::total_cmp);
    let at = |q: f64| took[((took.len() as f64 * q) as usize).min(took.len() - 1)];
    (at(0.5), at(0.99), took[took.len() - 1])
}

fn main() {
    let pairs = common::arg("--pairs", 100);
    let rounds = common::arg("--rounds", 200);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    std::fs::write(
        d.join("worker.properties"),
        format!(
            "offset.storage.file.filename=connect.offsets\noffset.flush.interval.ms=1000\n\
             listeners=http://127.0.0.1:{port}\n"
        ),
    )
    .unwrap();
    let (mut child, _) = common::start_worker(d, &["worker.properties"]);
    let url = format!("http://127.0.0.1:{port}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    for i in 0..pairs {
        std::fs::write(d.join(format!("in-{i}.txt")), format!("line {i}\n")).unwrap();
        for body in [
            serde_json::json!({"name": format!("source-{i}"), "config": {
                "connector.class": "FileStreamSource", "file": format!("in-{i}.txt"), "topic": format!("t{i}")}}),
            serde_json::json!({"name": format!("sink-{i}"), "config": {
                "connector.class": "FileStreamSink", "file": format!("out-{i}.txt"), "topics": format!("t{i}")}}),
        ] {
            let response = agent
                .post(&format!("{url}/connectors"))
                .send_json(&body)
                .unwrap();
            assert_eq!(response.status().as_u16(), 201);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let data: serde_json::Value = agent
            .get(&format!("{url}/ui/data"))
            .call()
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap();
        let running = data["connectors"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["tasks"].as_array().unwrap())
            .filter(|t| t["state"] == "RUNNING")
            .count();
        if running == 2 * pairs {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {running} of {} tasks running",
            2 * pairs
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let health = timings(&agent, &url, "/health", rounds);
    let data = timings(&agent, &url, "/ui/data", rounds);
    let metrics = timings(&agent, &url, "/metrics", rounds);
    let size = |path: &str| {
        agent
            .get(&format!("{url}{path}"))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap()
            .len()
    };
    println!(
        "status page data with {} tasks ({rounds} calls each; median / p99 / max):",
        2 * pairs
    );
    for (path, (median, p99, max)) in [
        ("GET /health (anchor)", health),
        ("GET /ui/data", data),
        ("GET /metrics", metrics),
    ] {
        println!(
            "  {path:<22} {median:7.2} / {p99:7.2} / {max:7.2} ms   ({:.1}x the anchor's median)",
            median / health.0
        );
    }
    println!(
        "  sizes: /ui/data {} KiB, /metrics {} KiB",
        size("/ui/data") / 1024,
        size("/metrics") / 1024
    );
    common::terminate(&mut child, Duration::from_secs(20));
}
