//! Kafka's config providers (KIP-297): values written as `${provider:path:key}` (or
//! `${provider:key}`) in worker and connector configs, filled in from outside the config —
//! `${file:/etc/secrets.properties:db.password}`, `${env:PG_PASSWORD}`,
//! `${directory:/run/secrets:pg_password}` — so secrets never sit in a config file, a config
//! topic or a REST answer.
//!
//! # Contract
//! * Providers are declared in the worker config as Kafka's are:
//!   `config.providers=file,env,directory` and `config.providers.<name>.class` naming one of
//!   Kafka's three classes, with their parameters under `config.providers.<name>.param.`:
//!   `allowed.paths` for files and directories (KIP-993), `allowlist.pattern` for environment
//!   variables (KIP-887).
//! * A connector's config is stored, shown (`GET …/config`) and logged with its placeholders;
//!   they are resolved only for validation and when its instance or a task starts.
//! * A placeholder of a provider that is not declared is left as written (as Kafka does); one
//!   of a declared provider that cannot be resolved (a path outside `allowed.paths`, a missing
//!   key, file or variable) is an error naming the config key and the placeholder, never the
//!   value.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;
use std::time::SystemTime;

use regex::Regex;
use sluice_api::config::Props;
use sluice_api::{Error, Result};

/// Kafka's provider classes.
const FILE: &str = "org.apache.kafka.common.config.provider.FileConfigProvider";
const ENV: &str = "org.apache.kafka.common.config.provider.EnvVarConfigProvider";
const DIRECTORY: &str = "org.apache.kafka.common.config.provider.DirectoryConfigProvider";

/// Kafka's `ConfigTransformer.DEFAULT_PATTERN`.
fn placeholder() -> &'static Regex {
    static PATTERN: OnceLock<Regex> = OnceLock::new();
    PATTERN.get_or_init(|| {
        Regex::new(r"\$\{([^}]*?):(([^}]*?):)?([^}]*?)\}").expect("the placeholder pattern")
    })
}

#[derive(Debug, Clone)]
enum Provider {
    /// A `.properties` file's key.
    File { allowed: Option<Vec<PathBuf>> },
    /// A file's whole content, the file named by the key inside the directory named by path.
    Directory { allowed: Option<Vec<PathBuf>> },
    /// An environment variable.
    Env { allowlist: Option<Regex> },
}

/// The providers a worker declares.
#[derive(Debug, Clone, Default)]
pub struct ConfigProviders {
    providers: BTreeMap<String, Provider>,
}

impl ConfigProviders {
    /// Reads `config.providers` and each provider's class and parameters from the worker's
    /// settings.
    pub fn from_worker(props: &Props) -> Result<ConfigProviders> {
        let mut providers = BTreeMap::new();
        let names = props
            .get("config.providers")
            .map(String::as_str)
            .unwrap_or("");
        for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let key = format!("config.providers.{name}.class");
            let class = props.get(&key).map(|c| c.trim()).unwrap_or("");
            let param = |p: &str| {
                props
                    .get(&format!("config.providers.{name}.param.{p}"))
                    .map(|v| v.trim())
                    .filter(|v| !v.is_empty())
            };
            let allowed = param("allowed.paths").map(|list| {
                list.split(',')
                    .map(|p| normalize(Path::new(p.trim())))
                    .collect::<Vec<_>>()
            });
            let provider = match class {
                FILE => Provider::File { allowed },
                DIRECTORY => Provider::Directory { allowed },
                ENV => Provider::Env {
                    allowlist: param("allowlist.pattern")
                        .map(|pattern| {
                            Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
                                Error::config(format!(
                                    "`config.providers.{name}.param.allowlist.pattern` is not a \
                                     regular expression: {e}"
                                ))
                            })
                        })
                        .transpose()?,
                },
                "" => {
                    return Err(Error::config(format!(
                        "config.providers names `{name}` but `{key}` is not set; use {FILE}, \
                         {ENV} or {DIRECTORY}"
                    )));
                }
                other => {
                    return Err(Error::config(format!(
                        "`{key}={other}`: sluice has Kafka's {FILE}, {ENV} and {DIRECTORY}"
                    )));
                }
            };
            providers.insert(name.to_owned(), provider);
        }
        Ok(ConfigProviders { providers })
    }

    /// Whether any provider is declared.
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    /// `props` with every placeholder of a declared provider filled in.
    pub fn resolve(&self, props: &Props) -> Result<Props> {
        if self.providers.is_empty() {
            return Ok(props.clone());
        }
        props
            .iter()
            .map(|(key, value)| Ok((key.clone(), self.resolve_value(key, value)?)))
            .collect()
    }

    /// The files the placeholders of `props` read, with when each last changed (`None`
    /// when it cannot be read): a change of any means the values may have changed.
    pub fn fingerprint(&self, props: &Props) -> Vec<(PathBuf, Option<SystemTime>)> {
        let mut files = Vec::new();
        for value in props.values() {
            for found in placeholder().captures_iter(value) {
                let path = found.get(3).map(|p| p.as_str()).unwrap_or("");
                let file = match self.providers.get(&found[1]) {
                    Some(Provider::File { .. }) => PathBuf::from(path),
                    Some(Provider::Directory { .. }) => Path::new(path).join(&found[4]),
                    _ => continue,
                };
                let changed = std::fs::metadata(&file).and_then(|m| m.modified()).ok();
                files.push((file, changed));
            }
        }
        files.sort();
        files.dedup();
        files
    }

    fn resolve_value(&self, key: &str, value: &str) -> Result<String> {
        let mut error = None;
        let resolved = placeholder().replace_all(value, |found: &regex::Captures<'_>| {
            let Some(provider) = self.providers.get(&found[1]) else {
                // Not a declared provider: left as written, as Kafka does.
                return found[0].to_owned();
            };
            let path = found.get(3).map(|p| p.as_str());
            match provider.value(path, &found[4]) {
                Ok(value) => value,
                Err(why) => {
                    error.get_or_insert_with(|| {
                        Error::config(format!(
                            "`{key}`: `{}` cannot be resolved: {why}",
                            &found[0]
                        ))
                    });
                    String::new()
                }
            }
        });
        match error {
            Some(error) => Err(error),
            None => Ok(resolved.into_owned()),
        }
    }
}

impl Provider {
    fn value(&self, path: Option<&str>, key: &str) -> std::result::Result<String, String> {
        match self {
            Provider::Env { allowlist } => {
                if allowlist
                    .as_ref()
                    .is_some_and(|pattern| !pattern.is_match(key))
                {
                    return Err(format!(
                        "the environment variable {key} is not in the env provider's allowlist.pattern"
                    ));
                }
                std::env::var(key).map_err(|_| format!("the environment variable {key} is not set"))
            }
            Provider::File { allowed } => {
                let path = path.ok_or("write ${file:PATH:KEY}")?;
                let file = allowed_path(Path::new(path), allowed.as_deref())?;
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
                let props = super::file::parse_properties(&text)
                    .map_err(|e| format!("{} is not a properties file: {e}", file.display()))?;
                props
                    .get(key)
                    .cloned()
                    .ok_or_else(|| format!("{} has no key `{key}`", file.display()))
            }
            Provider::Directory { allowed } => {
                let path = path.ok_or("write ${directory:DIRECTORY:FILE}")?;
                if key.contains('/') || key == ".." {
                    return Err(format!("`{key}` is not a file name"));
                }
                let directory = allowed_path(Path::new(path), allowed.as_deref())?;
                let file = directory.join(key);
                std::fs::read_to_string(&file)
                    .map_err(|e| format!("cannot read {}: {e}", file.display()))
            }
        }
    }
}

/// `path`, normalized, when it lies under one of `allowed` (every path when there is no
/// list).
fn allowed_path(path: &Path, allowed: Option<&[PathBuf]>) -> std::result::Result<PathBuf, String> {
    let normalized = normalize(path);
    match allowed {
        Some(allowed) if !allowed.iter().any(|a| normalized.starts_with(a)) => Err(format!(
            "{} is outside the provider's allowed.paths ({})",
            path.display(),
            allowed
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        _ => Ok(normalized),
    }
}

/// `path` with `.` and `..` taken out (without touching the file system, as Kafka's
/// `Path.normalize`), so `/etc/secrets/../passwd` is not under `/etc/secrets`.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_api::config::props;

    fn providers(dir: &Path) -> ConfigProviders {
        ConfigProviders::from_worker(&props(&[
            ("config.providers", "file,env,directory"),
            ("config.providers.file.class", FILE),
            (
                "config.providers.file.param.allowed.paths",
                &dir.display().to_string(),
            ),
            ("config.providers.env.class", ENV),
            (
                "config.providers.env.param.allowlist.pattern",
                "SLUICE_TEST_.*",
            ),
            ("config.providers.directory.class", DIRECTORY),
        ]))
        .unwrap()
    }

    #[test]
    fn placeholders_resolve_from_files_directories_and_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("db.properties"), "db.password=pa55\n").unwrap();
        std::fs::write(dir.path().join("token"), "t0ken").unwrap();
        let providers = providers(dir.path());
        let d = dir.path().display();
        let resolved = providers
            .resolve(&props(&[
                (
                    "database.password",
                    &format!("${{file:{d}/db.properties:db.password}}"),
                ),
                ("token", &format!("x-${{directory:{d}:token}}")),
                ("home", "${env:SLUICE_TEST_UNSET}"),
                ("literal", "${other:kept}"),
            ]))
            .unwrap_err();
        assert!(resolved.message().contains("`home`"), "{resolved}");
        let resolved = providers
            .resolve(&props(&[
                (
                    "database.password",
                    &format!("${{file:{d}/db.properties:db.password}}"),
                ),
                ("token", &format!("x-${{directory:{d}:token}}")),
                ("literal", "${other:kept}"),
            ]))
            .unwrap();
        assert_eq!(resolved["database.password"], "pa55");
        assert_eq!(resolved["token"], "x-t0ken");
        assert_eq!(resolved["literal"], "${other:kept}");
    }

    #[test]
    fn paths_outside_allowed_paths_and_variables_outside_the_allowlist_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let providers = providers(dir.path());
        let d = dir.path().display();
        let escape = providers
            .resolve(&props(&[(
                "p",
                &format!("${{file:{d}/../etc/passwd:root}}"),
            )]))
            .unwrap_err();
        assert!(
            escape
                .message()
                .contains("outside the provider's allowed.paths"),
            "{escape}"
        );
        let env = providers
            .resolve(&props(&[("p", "${env:HOME}")]))
            .unwrap_err();
        assert!(env.message().contains("allowlist.pattern"), "{env}");
        let class = ConfigProviders::from_worker(&props(&[
            ("config.providers", "vault"),
            (
                "config.providers.vault.class",
                "com.example.VaultConfigProvider",
            ),
        ]))
        .unwrap_err();
        assert!(class.message().contains(FILE), "{class}");
    }
}
