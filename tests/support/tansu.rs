//! Starting a Tansu broker. A file of its own, using nothing else of the test support: the
//! Kafka benchmark includes it too (`#[path]`), so tests and benchmark start the broker alike.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the Tansu binary is: `SLUICE_TANSU`, or where `scripts/tansu-install.sh` puts it.
fn tansu_bin() -> String {
    let bin = std::env::var("SLUICE_TANSU")
        .unwrap_or_else(|_| "/opt/sluice-tools/tansu/bin/tansu".to_owned());
    assert!(
        Path::new(&bin).exists(),
        "the Kafka tests and benchmark need the Tansu broker at {bin}: run scripts/tansu-install.sh (or set SLUICE_TANSU)"
    );
    bin
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Where the broker's own log goes: nowhere, or, when `SLUICE_TANSU_LOG` names a directory (set
/// `RUST_LOG` too), to `tansu-<port>.log` in it, for when a group or protocol question needs
/// Tansu's side.
fn broker_log(port: u16) -> Stdio {
    match std::env::var_os("SLUICE_TANSU_LOG") {
        Some(dir) => {
            let path = Path::new(&dir).join(format!("tansu-{port}.log"));
            eprintln!("the broker on port {port} logs to {}", path.display());
            // Appended to: a restarted broker logs after its first life.
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map(Stdio::from)
                .expect("SLUICE_TANSU_LOG names a directory to write broker logs in")
        }
        None => Stdio::null(),
    }
}

/// Starts Tansu listening on `addr` and waits until it accepts connections.
pub(crate) fn spawn_tansu(addr: &str, storage: &str, env: &[(&'static str, String)]) -> Child {
    spawn_tansu_advertising(addr, addr, storage, env)
}

/// [`spawn_tansu`], telling clients to come back through `advertised` (a front before it).
pub(crate) fn spawn_tansu_advertising(
    addr: &str,
    advertised: &str,
    storage: &str,
    env: &[(&'static str, String)],
) -> Child {
    let url = format!("tcp://{addr}");
    let advertised = format!("tcp://{advertised}");
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let child = Command::new(tansu_bin())
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &advertised,
            "--storage-engine",
            storage,
        ])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(broker_log(port))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "the broker on {addr} did not accept connections within 20 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}
