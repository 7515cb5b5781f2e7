//! The settings every connector has (`name`, `connector.class`, `tasks.max`, `topics`,
//! `transforms`, `errors.*`, …) and validation of a whole connector config.

use serde_json::{Value as Json, json};
use sluice_api::config::{
    ConfigDef, ConfigKey, ConfigType, FieldError, Importance, Props, Validator,
};
use sluice_api::connector::{ConnectorKind, ConnectorPlugin};
use sluice_api::{Error, Result};

use super::Choice;
use super::tolerance::ErrorTolerance;
use super::worker::resolve_converter;
use crate::pipeline::topics::TopicFilter;
use crate::registry::Registry;
use crate::transforms::TransformChain;

/// The keys the worker handles for every connector of `kind`.
pub fn common_def(kind: ConnectorKind) -> ConfigDef {
    use ConfigType::*;
    use Importance::*;
    let def = ConfigDef::new()
        .key(
            ConfigKey::required(
                "name",
                String,
                High,
                "Globally unique name of the connector.",
            )
            .validate_with(Validator::NonEmpty),
        )
        .key(ConfigKey::required(
            "connector.class",
            Class,
            High,
            "The connector plugin: full class name, simple name or alias.",
        ))
        .key(
            ConfigKey::optional("tasks.max", Int, "1", High, "Maximum number of tasks.")
                .validate_with(Validator::Range {
                    min: 1,
                    max: i64::from(i32::MAX),
                }),
        )
        .key(ConfigKey::optional(
            "key.converter",
            Class,
            "",
            Low,
            "Overrides the worker's key.converter.",
        ))
        .key(ConfigKey::optional(
            "value.converter",
            Class,
            "",
            Low,
            "Overrides the worker's value.converter.",
        ))
        .key(ConfigKey::optional(
            "header.converter",
            Class,
            "",
            Low,
            "Overrides the worker's header.converter.",
        ))
        .key(
            ConfigKey::optional(
                "transforms",
                List,
                "",
                Low,
                "Aliases of the transforms applied to each record, in order.",
            )
            .in_group("Transforms"),
        )
        .key(
            ConfigKey::optional(
                "predicates",
                List,
                "",
                Low,
                "Aliases of the predicates transforms may refer to.",
            )
            .in_group("Predicates"),
        )
        .key(
            ConfigKey::optional(
                "tasks.max.enforce",
                Boolean,
                "true",
                Low,
                "Fail a connector that generates more than tasks.max task configs.",
            )
            .ignored("sluice never runs more than tasks.max tasks"),
        )
        .key(
            ConfigKey::optional(
                "config.action.reload",
                String,
                "restart",
                Low,
                "What to do when a config provider's file changes: restart (the connector restarts with the new values) or none.",
            )
            .validate_with(Validator::OneOf(vec!["none", "restart"])),
        )
        .key(
            ConfigKey::optional(
                "errors.tolerance",
                String,
                "none",
                Medium,
                "`none`: a record that fails a transform fails the task. `all`: the record is \
             skipped (and logged with errors.log.enable) and the stream goes on.",
            )
            .in_group("Error Handling")
            .validate_with(ErrorTolerance::validator()),
        )
        .key(
            ConfigKey::optional(
                "errors.retry.timeout",
                Long,
                "0",
                Low,
                "Total time to retry a failed operation (0: no retries).",
            )
            .in_group("Error Handling"),
        )
        .key(
            ConfigKey::optional(
                "errors.retry.delay.max.ms",
                Long,
                "60000",
                Low,
                "Longest delay between retries.",
            )
            .in_group("Error Handling"),
        )
        .key(
            ConfigKey::optional(
                "errors.log.enable",
                Boolean,
                "false",
                Low,
                "Log each skipped record's error.",
            )
            .in_group("Error Handling"),
        )
        .key(
            ConfigKey::optional(
                "errors.log.include.messages",
                Boolean,
                "false",
                Low,
                "Include the record itself in that log line.",
            )
            .in_group("Error Handling"),
        )
        .key(
            ConfigKey::optional(
                "errors.deadletterqueue.topic.name",
                String,
                "",
                Low,
                "Dead letter queue topic (Kafka transport): where skipped records go. Sinks as in \
             Kafka Connect; sources too, with key and value as JSON.",
            )
            .in_group("Error Handling"),
        )
        .key(
            ConfigKey::optional(
                "errors.deadletterqueue.topic.replication.factor",
                Int,
                "-1",
                Low,
                "Replication factor of the dead letter queue topic when sluice creates it; -1: the \
             broker's default (Kafka Connect defaults to 3, which a single broker cannot host).",
            )
            .in_group("Error Handling"),
        )
        .key(
            ConfigKey::optional(
                "errors.deadletterqueue.context.headers.enable",
                Boolean,
                "false",
                Low,
                "Add `__connect.errors.*` headers to dead letters.",
            )
            .in_group("Error Handling"),
        )
        .open_prefix("transforms.")
        .open_prefix("predicates.")
        .open_prefix("key.converter.")
        .open_prefix("value.converter.")
        .open_prefix("header.converter.");
    match kind {
        ConnectorKind::Source => def
            .key(ConfigKey::optional(
                "topic.creation.groups",
                List,
                "",
                Low,
                "Topic creation groups (Kafka transport).",
            ))
            .key(
                ConfigKey::optional(
                    "exactly.once.support",
                    String,
                    "requested",
                    Low,
                    "Whether the connector must support exactly-once delivery.",
                )
                .validate_with(Validator::DefaultOnly(
                    "sluice's sources deliver at least once (offsets are committed after the \
                     records are durable); exactly-once source delivery is not implemented",
                )),
            )
            .key(
                ConfigKey::optional(
                    "transaction.boundary",
                    String,
                    "poll",
                    Low,
                    "Where exactly-once source transactions end.",
                )
                .validate_with(Validator::OneOf(vec!["poll", "interval", "connector"]))
                .ignored("it applies only to exactly-once source delivery, which sluice does not do"),
            )
            .key(
                ConfigKey::optional(
                    "transaction.boundary.interval.ms",
                    Long,
                    "-1",
                    Low,
                    "Interval of exactly-once source transactions.",
                )
                .ignored("it applies only to exactly-once source delivery, which sluice does not do"),
            )
            .key(
                ConfigKey::optional(
                    "offsets.storage.topic",
                    String,
                    "",
                    Low,
                    "A connector-specific offsets topic.",
                )
                .validate_with(Validator::DefaultOnly(
                    "a connector-specific offsets topic is not implemented; the connector's offsets \
                     go to the worker's offset.storage.topic (or offset file)",
                )),
            )
            .open_prefix("topic.creation.")
            .open_prefix("producer.override."),
        ConnectorKind::Sink => def
            .key(ConfigKey::optional(
                "topics",
                List,
                "",
                High,
                "Topics to consume.",
            ))
            .key(ConfigKey::optional(
                "topics.regex",
                String,
                "",
                High,
                "Regular expression of topics to consume.",
            ))
            .open_prefix("consumer.override."),
    }
}

/// The full definition of a connector of this plugin: common keys plus the plugin's own.
pub fn full_def(plugin: &ConnectorPlugin) -> ConfigDef {
    common_def(plugin.kind()).merge(&(plugin.config_def)())
}

/// The outcome of validating a connector config: the plugin (when `connector.class`
/// resolved) and every field error.
#[derive(Debug)]
pub struct Validation {
    pub plugin: Option<ConnectorPlugin>,
    pub def: ConfigDef,
    pub errors: Vec<FieldError>,
}

impl Validation {
    /// All errors as one config error, naming each field, or `Ok` when there are none.
    pub fn into_result(self) -> Result<ConnectorPlugin> {
        if let Some(plugin) = self.plugin.filter(|_| self.errors.is_empty()) {
            return Ok(plugin);
        }
        let text = self
            .errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        Err(Error::config(if text.is_empty() {
            "invalid connector config".into()
        } else {
            text
        }))
    }

    /// Kafka Connect's `ConfigInfos` JSON: what `PUT /connector-plugins/{p}/config/validate`
    /// returns.
    pub fn to_config_infos(&self, props: &Props) -> Json {
        let mut groups: Vec<&str> = Vec::new();
        let mut configs = Vec::new();
        let mut error_count = 0;
        for (order, key) in self.def.keys().iter().enumerate() {
            if !groups.contains(&key.group.as_str()) {
                groups.push(&key.group);
            }
            let errors: Vec<&str> = self
                .errors
                .iter()
                .filter(|e| e.field == key.name)
                .map(|e| e.message.as_str())
                .collect();
            error_count += errors.len();
            let value = props.get(&key.name).or(key.default.as_ref()).map(|v| {
                if key.config_type == ConfigType::Password {
                    sluice_api::config::REDACTED.to_owned()
                } else {
                    v.clone()
                }
            });
            configs.push(json!({
                "definition": {
                    "name": key.name,
                    "type": key.config_type.name(),
                    "required": key.is_required(),
                    "default_value": key.default,
                    "importance": key.importance.name(),
                    "documentation": key.documentation,
                    "group": key.group,
                    "width": "NONE",
                    "display_name": key.name,
                    "dependents": [],
                    "order": order + 1,
                },
                "value": {
                    "name": key.name,
                    "value": value,
                    "recommended_values": [],
                    "errors": errors,
                    "visible": true,
                }
            }));
        }
        // Errors on keys the definition does not have (unknown keys, transform settings).
        for error in self
            .errors
            .iter()
            .filter(|e| self.def.find(&e.field).is_none())
        {
            error_count += 1;
            configs.push(json!({
                "definition": {
                    "name": error.field, "type": "STRING", "required": false, "default_value": null,
                    "importance": "LOW", "documentation": "", "group": "Common", "width": "NONE",
                    "display_name": error.field, "dependents": [], "order": -1,
                },
                "value": {
                    "name": error.field, "value": props.get(&error.field),
                    "recommended_values": [], "errors": [error.message], "visible": true,
                }
            }));
        }
        let name = self
            .plugin
            .map(|p| p.class.to_owned())
            .or_else(|| props.get("connector.class").cloned())
            .unwrap_or_default();
        json!({"name": name, "error_count": error_count, "groups": groups, "configs": configs})
    }
}

/// Validates a connector config against the common keys, the plugin's keys, its transforms
/// and predicates, and the sink topic rules. Never fails: problems come back as field errors.
pub fn validate(registry: &Registry, props: &Props) -> Validation {
    let class = props.get("connector.class").cloned().unwrap_or_default();
    let plugin = if class.is_empty() {
        None
    } else {
        registry.resolve_connector(&class, props).ok()
    };
    let Some(plugin) = plugin else {
        let def = common_def(ConnectorKind::Source);
        let mut errors: Vec<FieldError> = def
            .validate(props)
            .into_iter()
            .filter(|e| e.field == "connector.class" || e.field == "name" || e.field == "tasks.max")
            .collect();
        if !class.is_empty() {
            let message = registry
                .resolve_connector(&class, props)
                .err()
                .map(|e| e.message().to_owned())
                .unwrap_or_default();
            errors.push(FieldError::new("connector.class", message));
        }
        return Validation {
            plugin: None,
            def,
            errors,
        };
    };
    let def = full_def(&plugin);
    let mut errors = def.validate(props);
    if errors.is_empty() {
        errors.extend((plugin.validate)(props));
    }
    for key in ["key.converter", "value.converter"] {
        if let Some(class) = props.get(key).filter(|c| !c.is_empty())
            && resolve_converter(class).is_none()
        {
            errors.push(FieldError::new(
                key,
                format!("`{class}` is not a converter sluice has"),
            ));
        }
    }
    if plugin.kind() == ConnectorKind::Sink
        && let Err(error) = TopicFilter::of(props)
    {
        errors.push(error);
    }
    if let Err(e) = TransformChain::from_config(registry, props) {
        errors.push(FieldError::new("transforms", e.message().to_owned()));
    }
    Validation {
        plugin: Some(plugin),
        def,
        errors,
    }
}

/// `tasks.max` as a count (validated beforehand).
pub fn tasks_max(props: &Props) -> usize {
    props
        .get("tasks.max")
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(1)
        .max(1)
}
