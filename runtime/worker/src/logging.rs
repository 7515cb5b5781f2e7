//! The process's log output and its levels, changeable while it runs (Kafka Connect's
//! `/admin/loggers`, KIP-495): the binary calls [`init`]; the REST API reads and sets levels
//! through [`levels`].
//!
//! Loggers are `tracing` targets — module paths such as `sluice_runtime::task` or
//! `sluice_connector_postgres` — and a level set for one covers the modules under it. Kafka
//! Connect's `root` is the default level. The Java names Kafka Connect and Debezium users
//! know for the same code are accepted too and stand for sluice's crate
//! ([`KAFKA_NAMES`]). Levels are log4j's: TRACE, DEBUG, INFO, WARN, ERROR, FATAL (as ERROR)
//! and OFF. They last until the process ends, as in Kafka Connect.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use sluice_api::{Error, Result};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

use crate::clock::now_ms;

/// Kafka Connect's and Debezium's logger names for what sluice's crates do.
pub const KAFKA_NAMES: &[(&str, &str)] = &[
    ("org.apache.kafka.connect", "sluice_runtime"),
    (
        "io.debezium.connector.postgresql",
        "sluice_connector_postgres",
    ),
    ("io.debezium.connector.mysql", "sluice_connector_mysql"),
    ("io.debezium.connector.mariadb", "sluice_connector_mysql"),
    ("io.debezium", "sluice_debezium"),
];

/// The name of the default level, as in Kafka Connect.
pub const ROOT: &str = "root";

/// A level set over REST, and when.
#[derive(Debug, Clone)]
struct Set {
    level: String,
    at_ms: i64,
}

/// The levels in force.
pub struct LogLevels {
    /// The directives the process started with (`--log-level` or RUST_LOG).
    base: String,
    handle: reload::Handle<EnvFilter, Registry>,
    /// Kafka's `root` when set over REST, then the other loggers set, by name.
    state: Mutex<(Option<Set>, BTreeMap<String, Set>)>,
}

impl std::fmt::Debug for LogLevels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogLevels")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

static LEVELS: OnceLock<LogLevels> = OnceLock::new();

/// Installs the process's logging on standard error: `directives` as in RUST_LOG
/// (`info`, `info,sluice_runtime=debug`), readable lines or one JSON object per line.
pub fn init(directives: &str, json: bool) -> Result<()> {
    let filter = EnvFilter::try_new(directives)
        .map_err(|e| Error::config(format!("log level `{directives}`: {e}")))?;
    let (filter, handle) = reload::Layer::new(filter);
    let output = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed()
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .try_init()
        .map_err(|e| Error::config(format!("logging was installed twice: {e}")))?;
    let _ = LEVELS.set(LogLevels {
        base: directives.to_owned(),
        handle,
        state: Mutex::new((None, BTreeMap::new())),
    });
    Ok(())
}

/// The process's levels, when [`init`] installed them.
pub fn levels() -> Option<&'static LogLevels> {
    LEVELS.get()
}

/// A log4j level name in upper case, or the error naming the accepted ones.
fn level_of(level: &str) -> Result<&'static str> {
    Ok(match level.to_ascii_uppercase().as_str() {
        "TRACE" => "TRACE",
        "DEBUG" => "DEBUG",
        "INFO" => "INFO",
        "WARN" => "WARN",
        "ERROR" | "FATAL" => "ERROR",
        "OFF" => "OFF",
        _ => {
            return Err(Error::config(format!(
                "Invalid log level '{level}': use TRACE, DEBUG, INFO, WARN, ERROR, FATAL or OFF"
            )));
        }
    })
}

/// The `tracing` target a logger name stands for.
fn target_of(name: &str) -> String {
    for (java, target) in KAFKA_NAMES {
        if name == *java || name.starts_with(&format!("{java}.")) {
            return (*target).to_owned();
        }
    }
    name.to_owned()
}

/// Whether `name` is a module path a directive can name.
fn is_target(name: &str) -> bool {
    !name.is_empty()
        && name.split("::").all(|part| {
            !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// Whether logger `child` is under `parent` (itself excluded).
fn is_under(child: &str, parent: &str) -> bool {
    child.starts_with(parent) && child[parent.len()..].starts_with("::")
}

impl LogLevels {
    /// The default level: `root` as set over REST, else the bare level of the start
    /// directives, else INFO.
    fn root_level(&self, root: Option<&Set>) -> String {
        if let Some(root) = root {
            return root.level.clone();
        }
        self.base
            .split(',')
            .filter(|d| !d.contains('='))
            .filter_map(|d| level_of(d.trim()).ok())
            .next_back()
            .unwrap_or("INFO")
            .to_owned()
    }

    /// Every logger set over REST and `root`: name → (level, when it was set).
    pub fn list(&self) -> BTreeMap<String, (String, Option<i64>)> {
        let state = self.state.lock().expect("log levels lock");
        let (root, set) = &*state;
        let mut out: BTreeMap<String, (String, Option<i64>)> = set
            .iter()
            .map(|(name, s)| (name.clone(), (s.level.clone(), Some(s.at_ms))))
            .collect();
        out.insert(
            ROOT.to_owned(),
            (
                self.root_level(root.as_ref()),
                root.as_ref().map(|r| r.at_ms),
            ),
        );
        out
    }

    /// The level logger `name` logs at: its own, its nearest ancestor's, or `root`'s.
    pub fn level(&self, name: &str) -> (String, Option<i64>) {
        let state = self.state.lock().expect("log levels lock");
        let (root, set) = &*state;
        if name == ROOT {
            return (
                self.root_level(root.as_ref()),
                root.as_ref().map(|r| r.at_ms),
            );
        }
        let target = target_of(name);
        set.iter()
            .filter(|(logger, _)| {
                let logger = target_of(logger);
                logger == target || is_under(&target, &logger)
            })
            .max_by_key(|(logger, _)| target_of(logger).len())
            .map(|(_, s)| (s.level.clone(), Some(s.at_ms)))
            .unwrap_or_else(|| (self.root_level(root.as_ref()), None))
    }

    /// Sets logger `name` (and so every logger under it) to `level`; the loggers whose level
    /// this changed, as Kafka Connect answers: `name` and those set under it before, which now
    /// follow it (all of them for `root`).
    pub fn set(&self, name: &str, level: &str) -> Result<Vec<String>> {
        let level = level_of(level)?;
        if name.is_empty() {
            return Err(Error::config("a logger name is required"));
        }
        let set = Set {
            level: level.to_owned(),
            at_ms: now_ms(),
        };
        let mut state = self.state.lock().expect("log levels lock");
        let mut changed = vec![name.to_owned()];
        if name == ROOT {
            changed.extend(std::mem::take(&mut state.1).into_keys());
            state.0 = Some(set);
        } else {
            let target = target_of(name);
            let under: Vec<String> = state
                .1
                .keys()
                .filter(|logger| {
                    // Its modules, and other names (Kafka's) for the same module.
                    let other = target_of(logger);
                    logger.as_str() != name && (other == target || is_under(&other, &target))
                })
                .cloned()
                .collect();
            for logger in under {
                state.1.remove(&logger);
                changed.push(logger);
            }
            state.1.insert(name.to_owned(), set);
        }
        self.apply(&state.0, &state.1)?;
        Ok(changed)
    }

    /// Rebuilds the filter: the start directives (their bare level replaced by `root` when it
    /// was set), then one directive per logger set.
    fn apply(&self, root: &Option<Set>, set: &BTreeMap<String, Set>) -> Result<()> {
        let mut directives: Vec<String> = self
            .base
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty() && (root.is_none() || d.contains('=')))
            .map(str::to_owned)
            .collect();
        if let Some(root) = root {
            directives.insert(0, root.level.to_ascii_lowercase());
        }
        for (name, s) in set {
            let target = target_of(name);
            if is_target(&target) {
                directives.push(format!("{target}={}", s.level.to_ascii_lowercase()));
            }
        }
        let filter = EnvFilter::try_new(directives.join(","))
            .map_err(|e| Error::config(format!("log levels {directives:?}: {e}")))?;
        self.handle
            .reload(filter)
            .map_err(|e| Error::fatal(format!("changing the log levels failed: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_levels_and_ancestry() {
        assert_eq!(level_of("debug").unwrap(), "DEBUG");
        assert_eq!(level_of("FATAL").unwrap(), "ERROR");
        assert!(
            level_of("LOUD")
                .unwrap_err()
                .message()
                .contains("Invalid log level 'LOUD'")
        );
        assert_eq!(
            target_of("io.debezium.connector.postgresql.PostgresStreamingChangeEventSource"),
            "sluice_connector_postgres"
        );
        assert_eq!(target_of("org.apache.kafka.connect"), "sluice_runtime");
        assert_eq!(target_of("sluice_runtime::task"), "sluice_runtime::task");
        assert!(is_target("sluice_runtime::task::source"));
        assert!(!is_target("org.example.Thing"));
        assert!(is_under("sluice_runtime::task", "sluice_runtime"));
        assert!(!is_under("sluice_runtime_extra", "sluice_runtime"));
    }
}
