//! The example WASM plugins, built from source (`plugins/`, target wasm32-wasip2) the first
//! time a test asks for one; no binary is committed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn plugins_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins")
}

/// The `.wasm` of example plugin `name` (its crate name with `-` as `_`, as cargo names it).
pub(crate) fn plugin(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let out = Command::new(env!("CARGO"))
            .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
            .arg(plugins_dir().join("Cargo.toml"))
            .env_remove("CARGO_TARGET_DIR")
            .output()
            .map_err(|e| format!("running cargo: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "building the example plugins failed (is the target installed? `rustup target add wasm32-wasip2`):\n{}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = built {
        panic!("{e}");
    }
    let path = plugins_dir()
        .join("target/wasm32-wasip2/release")
        .join(format!("{name}.wasm"));
    assert!(path.exists(), "{} was not built", path.display());
    path
}
