//! Config definitions: typed keys with defaults and docs, validated into per-field errors.
//!
//! A [`ConfigDef`] plays the part of Kafka's `ConfigDef`: it documents every key (served by
//! `GET /connector-plugins/{p}/config`), validates a flat string map into [`FieldError`]s (the
//! `PUT …/config/validate` response), and rejects unknown keys with a suggestion.

use std::collections::BTreeMap;
use std::fmt;

use crate::secret::Secret;

/// A flat `key -> value` config, as written in `.properties` files.
pub type Props = BTreeMap<String, String>;

/// The type of a config value, named as Kafka names them in validate responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// `true` or `false` (any case).
    Boolean,
    /// Any text.
    String,
    /// A 32-bit whole number.
    Int,
    /// A 64-bit whole number.
    Long,
    /// A floating-point number.
    Double,
    /// A comma-separated list.
    List,
    /// A class name or alias.
    Class,
    /// A secret: redacted in every response and log line.
    Password,
}

impl ConfigType {
    /// Kafka's upper-case type name (`STRING`, `INT`, …).
    pub fn name(self) -> &'static str {
        match self {
            ConfigType::Boolean => "BOOLEAN",
            ConfigType::String => "STRING",
            ConfigType::Int => "INT",
            ConfigType::Long => "LONG",
            ConfigType::Double => "DOUBLE",
            ConfigType::List => "LIST",
            ConfigType::Class => "CLASS",
            ConfigType::Password => "PASSWORD",
        }
    }
}

/// How much a key matters, as in Kafka's `ConfigDef.Importance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Importance {
    /// Most configs need to set it (connection settings, what to read or write).
    High,
    /// Worth knowing about; the default suits many configs.
    Medium,
    /// Tuning; the default is rarely changed.
    Low,
}

impl Importance {
    /// Kafka's upper-case name.
    pub fn name(self) -> &'static str {
        match self {
            Importance::High => "HIGH",
            Importance::Medium => "MEDIUM",
            Importance::Low => "LOW",
        }
    }
}

/// An extra check on a key's value beyond its type.
#[derive(Debug, Clone)]
pub enum Validator {
    /// The value must be one of these (case-insensitive).
    OneOf(Vec<&'static str>),
    /// An integer within `min..=max`.
    Range {
        /// The smallest value allowed.
        min: i64,
        /// The largest value allowed.
        max: i64,
    },
    /// A non-empty string.
    NonEmpty,
    /// Only the key's default is accepted: any other value would change the data in a way
    /// sluice does not implement, so it is refused rather than ignored. Holds why.
    DefaultOnly(&'static str),
}

/// One documented config key.
#[derive(Debug, Clone)]
pub struct ConfigKey {
    /// The key as written in a config, e.g. `database.hostname`.
    pub name: String,
    /// What its value must parse as.
    pub config_type: ConfigType,
    /// `None` makes the key required.
    pub default: Option<String>,
    /// How much the key matters, as validate responses report it.
    pub importance: Importance,
    /// What the key does, for the plugin's config reference and validate responses.
    pub documentation: String,
    /// The group it is listed under in validate responses (`Common` unless set).
    pub group: String,
    /// A check on the value beyond its type, if any.
    pub validator: Option<Validator>,
    /// Why setting this key changes nothing in sluice (`None`: it takes effect). A key the
    /// compatibility surface documents but sluice has no use for is accepted, and named with
    /// this reason once when the connector starts ([`ConfigDef::without_effect`]).
    pub no_effect: Option<String>,
}

impl ConfigKey {
    /// A key with a default value.
    pub fn optional(
        name: &str,
        config_type: ConfigType,
        default: &str,
        importance: Importance,
        documentation: &str,
    ) -> ConfigKey {
        ConfigKey {
            name: name.to_owned(),
            config_type,
            default: Some(default.to_owned()),
            importance,
            documentation: documentation.to_owned(),
            group: "Common".to_owned(),
            validator: None,
            no_effect: None,
        }
    }

    /// A required key.
    pub fn required(
        name: &str,
        config_type: ConfigType,
        importance: Importance,
        documentation: &str,
    ) -> ConfigKey {
        ConfigKey {
            default: None,
            ..ConfigKey::optional(name, config_type, "", importance, documentation)
        }
    }

    /// Adds a validator.
    pub fn validate_with(mut self, validator: Validator) -> ConfigKey {
        self.validator = Some(validator);
        self
    }

    /// Marks the key as accepted but without effect in sluice, saying why.
    pub fn ignored(mut self, why: &str) -> ConfigKey {
        self.no_effect = Some(why.to_owned());
        self
    }

    /// Sets the group shown in validate responses.
    pub fn in_group(mut self, group: &str) -> ConfigKey {
        self.group = group.to_owned();
        self
    }

    /// True when the key has no default.
    pub fn is_required(&self) -> bool {
        self.default.is_none()
    }

    /// Checks one value against type and validator; the error says what is expected.
    pub fn check(&self, value: &str) -> Result<(), String> {
        let trimmed = value.trim();
        let type_ok = match self.config_type {
            ConfigType::Boolean => {
                trimmed.eq_ignore_ascii_case("true") || trimmed.eq_ignore_ascii_case("false")
            }
            ConfigType::Int => trimmed.parse::<i32>().is_ok(),
            ConfigType::Long => trimmed.parse::<i64>().is_ok(),
            ConfigType::Double => trimmed.parse::<f64>().is_ok(),
            ConfigType::String | ConfigType::List | ConfigType::Class | ConfigType::Password => {
                true
            }
        };
        if !type_ok {
            let expected = match self.config_type {
                ConfigType::Boolean => "true or false",
                ConfigType::Int => "a whole number (32-bit)",
                ConfigType::Long => "a whole number (64-bit)",
                ConfigType::Double => "a number",
                _ => "a string",
            };
            return Err(format!(
                "Invalid value {value} for configuration {}: expected {expected}",
                self.name
            ));
        }
        match &self.validator {
            Some(Validator::OneOf(allowed))
                if !allowed.iter().any(|a| a.eq_ignore_ascii_case(trimmed)) =>
            {
                Err(format!(
                    "Invalid value {value} for configuration {}: must be one of {}",
                    self.name,
                    allowed.join(", ")
                ))
            }
            Some(Validator::Range { min, max }) => match trimmed.parse::<i64>() {
                Ok(n) if n >= *min && n <= *max => Ok(()),
                _ => Err(format!(
                    "Invalid value {value} for configuration {}: must be between {min} and {max}",
                    self.name
                )),
            },
            Some(Validator::NonEmpty) if trimmed.is_empty() => Err(format!(
                "Invalid value for configuration {}: must not be empty",
                self.name
            )),
            Some(Validator::DefaultOnly(why))
                if !self
                    .default
                    .as_deref()
                    .is_some_and(|d| d.trim().eq_ignore_ascii_case(trimmed)) =>
            {
                Err(format!(
                    "`{}={value}` is not supported by sluice: {why}; remove the key or set it to \
                     its default `{}`",
                    self.name,
                    self.default.as_deref().unwrap_or_default()
                ))
            }
            _ => Ok(()),
        }
    }
}

/// A problem with one field of a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The key the problem is about.
    pub field: String,
    /// What is wrong and how to fix it, for the operator.
    pub message: String,
}

impl FieldError {
    /// A problem with `field`, described by `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// A set of documented keys plus the prefixes whose keys are checked elsewhere
/// (`transforms.`, `producer.override.`, …).
#[derive(Debug, Clone, Default)]
pub struct ConfigDef {
    keys: Vec<ConfigKey>,
    open_prefixes: Vec<String>,
}

impl ConfigDef {
    /// A definition with no keys and no open prefixes.
    pub fn new() -> ConfigDef {
        ConfigDef::default()
    }

    /// Adds a key; a later key with the same name replaces the earlier one.
    pub fn key(mut self, key: ConfigKey) -> ConfigDef {
        self.keys.retain(|k| k.name != key.name);
        self.keys.push(key);
        self
    }

    /// Accepts every key under `prefix` without checking it here.
    pub fn open_prefix(mut self, prefix: &str) -> ConfigDef {
        self.open_prefixes.push(prefix.to_owned());
        self
    }

    /// Appends another definition's keys and prefixes.
    pub fn merge(mut self, other: &ConfigDef) -> ConfigDef {
        for key in &other.keys {
            self = self.key(key.clone());
        }
        self.open_prefixes
            .extend(other.open_prefixes.iter().cloned());
        self
    }

    /// All keys, in definition order.
    pub fn keys(&self) -> &[ConfigKey] {
        &self.keys
    }

    /// Looks a key up by name.
    pub fn find(&self, name: &str) -> Option<&ConfigKey> {
        self.keys.iter().find(|k| k.name == name)
    }

    /// True when `name` is a defined key or sits under an open prefix.
    pub fn accepts(&self, name: &str) -> bool {
        self.find(name).is_some() || self.open_prefixes.iter().any(|p| name.starts_with(p))
    }

    /// Every problem with `props`: missing required keys, bad values, unknown keys.
    pub fn validate(&self, props: &Props) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for key in &self.keys {
            match props.get(&key.name) {
                Some(value) => {
                    if let Err(message) = key.check(value) {
                        errors.push(FieldError::new(&key.name, message));
                    }
                }
                None if key.is_required() => errors.push(FieldError::new(
                    &key.name,
                    format!(
                        "Missing required configuration \"{}\" which has no default value.",
                        key.name
                    ),
                )),
                None => {}
            }
        }
        for name in props.keys() {
            if !self.accepts(name) {
                errors.push(FieldError::new(name, self.unknown_key_message(name)));
            }
        }
        errors
    }

    /// "unknown key `x`; did you mean `y`?", with the closest known key when there is one.
    pub fn unknown_key_message(&self, name: &str) -> String {
        let names = self.keys.iter().map(|k| k.name.as_str());
        match closest(name, names) {
            Some(best) => format!("unknown key `{name}`; did you mean `{best}`?"),
            None => format!("unknown key `{name}`; remove it (see the plugin's config reference)"),
        }
    }

    /// One line per key set in `props` that has no effect here ([`ConfigKey::ignored`]),
    /// naming the key and why: what a connector logs once when it starts.
    pub fn without_effect(&self, props: &Props) -> Vec<String> {
        self.keys
            .iter()
            .filter(|k| props.contains_key(&k.name))
            .filter_map(|k| {
                let why = k.no_effect.as_deref()?;
                Some(format!("`{}` has no effect in sluice: {why}", k.name))
            })
            .collect()
    }

    /// The value of `name`, or its default.
    pub fn value<'a>(&'a self, props: &'a Props, name: &str) -> Option<&'a str> {
        props
            .get(name)
            .map(String::as_str)
            .or_else(|| self.find(name).and_then(|k| k.default.as_deref()))
    }

    /// True when `name` holds a secret and must never be shown or logged.
    pub fn is_secret(&self, name: &str) -> bool {
        match self.find(name) {
            Some(key) => key.config_type == ConfigType::Password,
            None => looks_secret(name),
        }
    }

    /// A copy of `props` with every secret replaced by `[hidden]` (a config provider
    /// placeholder stays: it is not the secret), safe to log or return.
    pub fn redact(&self, props: &Props) -> Props {
        props
            .iter()
            .map(|(k, v)| {
                let shown = if (self.is_secret(k) || looks_secret(k)) && !is_placeholder(v) {
                    REDACTED.to_owned()
                } else {
                    v.clone()
                };
                (k.clone(), shown)
            })
            .collect()
    }
}

/// Whether `value` is one config provider placeholder and nothing else
/// (`${file:/etc/secrets.properties:db.password}`): it names where the secret is, not the
/// secret, so it is shown as written.
pub fn is_placeholder(value: &str) -> bool {
    let value = value.trim();
    value.starts_with("${")
        && value.ends_with('}')
        && value[2..value.len() - 1].contains(':')
        && !value[2..value.len() - 1].contains(['{', '}'])
}

/// What secrets are replaced with, as Kafka's `Password.toString()` does.
pub const REDACTED: &str = "[hidden]";

/// Key names that carry secrets even when no definition says so (client settings passed
/// through under `producer.`/`consumer.`, transform settings, …).
pub fn looks_secret(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [
        "password",
        "secret",
        "jaas.config",
        "credentials",
        "token",
        "api.key",
        "user.info",
    ]
    .iter()
    .any(|needle| lower.contains(needle))
}

/// The closest candidate by edit distance, when it is close enough to be a plausible typo.
pub fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, c)| *d <= (c.len().max(name.len()) / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// A validated config with typed getters that fall back to the definition's defaults.
#[derive(Clone)]
pub struct Config {
    props: Props,
    def: ConfigDef,
}

/// Shows the properties with every secret hidden ([`ConfigDef::redact`]); the definition is
/// left out.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("props", &self.def.redact(&self.props))
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Validates `props` against `def`; every problem is reported at once, in one
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) error naming the fields.
    pub fn parse(def: ConfigDef, props: Props) -> crate::Result<Config> {
        let errors = def.validate(&props);
        if errors.is_empty() {
            Ok(Config { props, def })
        } else {
            Err(crate::Error::config(
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            ))
        }
    }

    /// Like [`Config::parse`], checking only the keys `def` knows: a connector's own keys,
    /// where the worker has already checked the common ones (`name`, `topics`, `transforms.*`…).
    pub fn parse_own(def: ConfigDef, props: &Props) -> crate::Result<Config> {
        let own = props
            .iter()
            .filter(|(k, _)| def.find(k).is_some())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Config::parse(def, own)
    }

    /// The raw properties as given.
    pub fn props(&self) -> &Props {
        &self.props
    }

    /// The definition this config was validated against.
    pub fn def(&self) -> &ConfigDef {
        &self.def
    }

    /// A string value or its default; `None` when neither exists.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.def.value(&self.props, name)
    }

    /// A string value that must be present.
    pub fn string(&self, name: &str) -> crate::Result<String> {
        self.get(name)
            .map(str::to_owned)
            .ok_or_else(|| crate::Error::config(format!("missing required configuration `{name}`")))
    }

    /// A secret value (a [`ConfigType::Password`] key) that must be present, wrapped so that
    /// it never shows in `{:?}` or logs.
    pub fn secret(&self, name: &str) -> crate::Result<Secret> {
        self.string(name).map(Secret::from)
    }

    /// An integer value.
    pub fn i64(&self, name: &str) -> crate::Result<i64> {
        let raw = self.string(name)?;
        raw.trim().parse().map_err(|_| {
            crate::Error::config(format!("`{name}` must be a whole number, got `{raw}`"))
        })
    }

    /// A boolean value.
    pub fn bool(&self, name: &str) -> crate::Result<bool> {
        let raw = self.string(name)?;
        match raw.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(crate::Error::config(format!(
                "`{name}` must be true or false, got `{raw}`"
            ))),
        }
    }

    /// A comma-separated list, trimmed, empty items dropped.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.get(name).map(split_list).unwrap_or_default()
    }
}

/// A config from `(key, value)` pairs: handy in tests and for connectors building task configs.
pub fn props(pairs: &[(&str, &str)]) -> Props {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The settings under `prefix`, with the prefix removed (`transforms.x.` → the transform's own
/// settings, `producer.override.` → client settings).
pub fn with_prefix(props: &Props, prefix: &str) -> Props {
    props
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(prefix)
                .map(|rest| (rest.to_owned(), v.clone()))
        })
        .collect()
}

/// Splits a Kafka-style comma-separated list.
pub fn split_list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def() -> ConfigDef {
        ConfigDef::new()
            .key(ConfigKey::required(
                "file",
                ConfigType::String,
                Importance::High,
                "f",
            ))
            .key(ConfigKey::optional(
                "tasks.max",
                ConfigType::Int,
                "1",
                Importance::High,
                "t",
            ))
            .key(
                ConfigKey::optional("mode", ConfigType::String, "a", Importance::Low, "m")
                    .validate_with(Validator::OneOf(vec!["a", "b"])),
            )
            .open_prefix("transforms.")
    }

    #[test]
    fn reports_each_problem_against_its_field() {
        let errors = def().validate(&props(&[
            ("tasks.max", "abc"),
            ("mode", "c"),
            ("topci", "x"),
            ("transforms.x.type", "y"),
        ]));
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["file", "tasks.max", "mode", "topci"]);
        assert!(
            errors[1]
                .message
                .contains("Invalid value abc for configuration tasks.max")
        );
        assert!(errors[2].message.contains("must be one of a, b"));
    }

    #[test]
    fn suggests_the_closest_key() {
        assert_eq!(
            def().unknown_key_message("task.max"),
            "unknown key `task.max`; did you mean `tasks.max`?"
        );
        assert!(!def().unknown_key_message("zzzzzz").contains("did you mean"));
    }

    #[test]
    fn typed_getters_use_defaults() {
        let config = Config::parse(def(), props(&[("file", "x")])).unwrap();
        assert_eq!(config.i64("tasks.max").unwrap(), 1);
        assert_eq!(config.get("mode"), Some("a"));
    }

    #[test]
    fn redacts_secrets_by_type_and_by_name() {
        let def = ConfigDef::new().key(ConfigKey::required(
            "database.pass",
            ConfigType::Password,
            Importance::High,
            "p",
        ));
        let shown = def.redact(&props(&[
            ("database.pass", "s3cret"),
            ("producer.sasl.jaas.config", "x"),
            ("file", "f"),
        ]));
        assert_eq!(shown["database.pass"], REDACTED);
        assert_eq!(shown["producer.sasl.jaas.config"], REDACTED);
        assert_eq!(shown["file"], "f");
    }

    #[test]
    fn a_parsed_config_hides_its_secrets_in_debug_output() {
        let def = ConfigDef::new()
            .key(ConfigKey::required(
                "database.pass",
                ConfigType::Password,
                Importance::High,
                "p",
            ))
            .key(ConfigKey::required(
                "file",
                ConfigType::String,
                Importance::High,
                "f",
            ));
        let config =
            Config::parse(def, props(&[("database.pass", "s3cret"), ("file", "f")])).unwrap();
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains(REDACTED),
            "{shown}"
        );
        assert!(shown.contains(r#""file": "f""#), "{shown}");
        let secret = config.secret("database.pass").unwrap();
        assert_eq!(secret.expose(), "s3cret");
        assert!(!format!("{secret:?} {secret}").contains("s3cret"));
    }
}
