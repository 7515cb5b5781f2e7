//! The explicit list of plugins a worker can run. Nothing registers itself at link time: the
//! binary builds a [`Registry`] naming every connector, transform and predicate it ships.

use sluice_api::config::Props;
use sluice_api::connector::{ConnectorKind, ConnectorPlugin};
use sluice_api::transform::{PredicatePlugin, TransformPlugin, class_answers_to};
use sluice_api::{Error, Result};

/// Connector, transform and predicate plugins known to this worker.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    connectors: Vec<ConnectorPlugin>,
    transforms: Vec<TransformPlugin>,
    predicates: Vec<PredicatePlugin>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// The runtime's built-in transforms and predicates (Kafka Connect's and Debezium's, from
    /// `sluice-transforms`), no connectors.
    pub fn with_builtins() -> Registry {
        let mut registry = Registry::new();
        for plugin in sluice_transforms::transforms() {
            registry = registry.transform(plugin);
        }
        for plugin in sluice_transforms::predicates() {
            registry = registry.predicate(plugin);
        }
        registry
    }

    /// Adds a connector plugin.
    pub fn connector(mut self, plugin: ConnectorPlugin) -> Registry {
        self.connectors.push(plugin);
        self
    }

    /// Adds a transform plugin.
    pub fn transform(mut self, plugin: TransformPlugin) -> Registry {
        self.transforms.push(plugin);
        self
    }

    /// Adds a predicate plugin.
    pub fn predicate(mut self, plugin: PredicatePlugin) -> Registry {
        self.predicates.push(plugin);
        self
    }

    /// Every connector plugin.
    pub fn connectors(&self) -> &[ConnectorPlugin] {
        &self.connectors
    }

    /// Every transform plugin.
    pub fn transforms(&self) -> &[TransformPlugin] {
        &self.transforms
    }

    /// Every predicate plugin.
    pub fn predicates(&self) -> &[PredicatePlugin] {
        &self.predicates
    }

    /// Finds the plugin `connector.class` names. A short alias shared by a source and a sink
    /// (`file`) is settled by the config: `topics`/`topics.regex` mean a sink.
    pub fn resolve_connector(&self, class: &str, props: &Props) -> Result<ConnectorPlugin> {
        let matches: Vec<&ConnectorPlugin> = self
            .connectors
            .iter()
            .filter(|p| p.answers_to(class))
            .collect();
        match matches.as_slice() {
            [one] => Ok(**one),
            [] => Err(Error::config(format!(
                "unknown connector.class `{class}`; available: {}",
                self.connectors
                    .iter()
                    .map(|p| p.simple_name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
            several => {
                let wants_sink = props.contains_key("topics") || props.contains_key("topics.regex");
                let kind = if wants_sink {
                    ConnectorKind::Sink
                } else {
                    ConnectorKind::Source
                };
                several
                    .iter()
                    .find(|p| p.kind() == kind)
                    .map(|p| **p)
                    .ok_or_else(|| {
                        Error::config(format!(
                            "connector.class `{class}` is ambiguous; use one of {}",
                            several
                                .iter()
                                .map(|p| p.class)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    })
            }
        }
    }

    /// Finds a connector plugin by any of its names, without a config to settle ambiguity
    /// (REST `/connector-plugins/{p}`): the class name is exact, an alias takes the first.
    pub fn find_connector(&self, name: &str) -> Option<ConnectorPlugin> {
        self.connectors.iter().find(|p| p.answers_to(name)).copied()
    }

    /// Finds a transform by class name or alias.
    pub fn find_transform(&self, name: &str) -> Option<TransformPlugin> {
        self.transforms
            .iter()
            .find(|p| class_answers_to(p.class, p.aliases, name))
            .copied()
    }

    /// Finds a predicate by class name or alias.
    pub fn find_predicate(&self, name: &str) -> Option<PredicatePlugin> {
        self.predicates
            .iter()
            .find(|p| class_answers_to(p.class, p.aliases, name))
            .copied()
    }
}
