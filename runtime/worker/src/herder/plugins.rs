//! The plugin endpoints every herder answers the same way, from the worker's registry:
//! `GET /connector-plugins`, `GET /connector-plugins/{p}/config`, and
//! `PUT /connector-plugins/{p}/config/validate`.

use serde_json::{Value as Json, json};
use sluice_api::config::Props;
use sluice_api::{Error, Result};

use crate::config::connector;
use crate::registry::Registry;
use crate::state::PluginInfo;

/// The connector plugins of `registry`.
pub(crate) fn list(registry: &Registry) -> Vec<PluginInfo> {
    registry
        .connectors()
        .iter()
        .map(|p| PluginInfo {
            class: p.class,
            kind: p.kind().as_str(),
            version: p.version,
        })
        .collect()
}

/// A plugin's config definition, as Kafka Connect lists it.
pub(crate) fn config_of(registry: &Registry, plugin: &str) -> Result<Json> {
    let plugin = registry
        .find_connector(plugin)
        .ok_or_else(|| Error::not_found(format!("Unknown plugin {plugin}")))?;
    let keys: Vec<Json> = (plugin.config_def)()
        .keys()
        .iter()
        .enumerate()
        .map(|(order, key)| {
            json!({
                "name": key.name, "type": key.config_type.name(), "required": key.is_required(),
                "default_value": key.default, "importance": key.importance.name(),
                "documentation": key.documentation, "group": key.group, "width": "NONE",
                "display_name": key.name, "dependents": [], "order": order + 1,
            })
        })
        .collect();
    Ok(Json::Array(keys))
}

/// Validates `config` for `plugin`; Kafka Connect's `ConfigInfos` JSON.
pub(crate) fn validate(registry: &Registry, plugin: &str, mut config: Props) -> Result<Json> {
    let found = registry
        .find_connector(plugin)
        .ok_or_else(|| Error::not_found(format!("Unknown plugin {plugin}")))?;
    if let Some(included) = config.get("connector.class") {
        let matches = registry
            .resolve_connector(included, &config)
            .map(|p| p.class);
        if matches.ok() != Some(found.class) && !found.answers_to(included) {
            return Err(Error::config(format!(
                "Included connector type {included} does not match request type {plugin}"
            )));
        }
    } else {
        config.insert("connector.class".into(), found.class.to_owned());
    }
    // Includes the plugin's checks across keys (`ConnectorPlugin::validate`).
    let validation = connector::validate(registry, &config);
    Ok(validation.to_config_infos(&config))
}
