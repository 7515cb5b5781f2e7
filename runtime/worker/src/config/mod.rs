//! Configuration: the files configs are read from, the worker's settings, the settings every
//! connector has, and the helpers that parse them once.
//!
//! * [`file`]: `.properties`, JSON, TOML and YAML readers.
//! * [`worker`]: the worker's own keys ([`WorkerConfig`](worker::WorkerConfig)).
//! * [`connector`]: the keys every connector has and validation of a whole connector config.
//! * [`settings`]: those keys parsed once per connector ([`ConnectorSettings`]).
//! * [`tolerance`]: `errors.tolerance` / `errors.log.*` and retries (`errors.retry.*`).

pub mod connector;
pub mod distributed;
pub mod file;
pub mod providers;
pub mod rest_security;
pub(crate) mod settings;
pub(crate) mod tolerance;
pub mod worker;

pub(crate) use settings::ConnectorSettings;

use sluice_api::config::{Props, Validator};

/// A config key whose value is one of a fixed set of words. The words are listed once, in
/// [`Choice::CHOICES`]: the key's validator and its parser both come from that list, so they
/// cannot disagree.
pub(crate) trait Choice: Copy + 'static {
    /// Every accepted word (matched case-insensitively) and what it means.
    const CHOICES: &'static [(&'static str, Self)];

    /// The validator for a `ConfigKey` of this choice.
    fn validator() -> Validator {
        Validator::OneOf(Self::CHOICES.iter().map(|(word, _)| *word).collect())
    }

    /// The value of `key` in `props`; `default` when it is missing or (validation having
    /// already reported it) not one of the words.
    fn of(props: &Props, key: &str, default: Self) -> Self {
        props
            .get(key)
            .map(|v| v.trim())
            .and_then(|v| {
                Self::CHOICES
                    .iter()
                    .find(|(word, _)| word.eq_ignore_ascii_case(v))
            })
            .map_or(default, |(_, value)| *value)
    }
}

/// `props` as logs and `Debug` may show them: values of keys that look secret (`password`,
/// `secret`, `jaas`, …) replaced by `[hidden]`.
pub(crate) fn shown(props: &Props) -> Props {
    sluice_api::config::ConfigDef::new().redact(props)
}

/// `true`/`false` of a boolean key (case-insensitive); `default` when missing.
pub(crate) fn flag(props: &Props, key: &str, default: bool) -> bool {
    match props.get(key).map(|v| v.trim()) {
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        _ => default,
    }
}

/// An integer key; `default` when missing or not a number (validation reports that).
pub(crate) fn int<T: std::str::FromStr>(props: &Props, key: &str, default: T) -> T {
    props
        .get(key)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use sluice_api::config::props;

    use super::file::connector_from_props;
    use super::worker::WorkerConfig;

    #[test]
    fn debug_of_worker_and_connector_configs_hides_secrets() {
        let worker = WorkerConfig::parse(props(&[
            ("offset.storage.file.filename", "o"),
            ("sasl.jaas.config", "user-pass-123"),
        ]))
        .unwrap();
        let connector = connector_from_props(props(&[
            ("name", "c"),
            ("connector.class", "FileStreamSource"),
            ("database.password", "pg-pass-456"),
        ]))
        .unwrap();
        let shown = format!("{worker:?} {connector:?}");
        assert!(
            !shown.contains("user-pass-123") && !shown.contains("pg-pass-456"),
            "{shown}"
        );
        assert!(shown.contains("[hidden]"), "{shown}");
    }
}
