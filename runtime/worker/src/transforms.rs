//! The per-connector transform chain (`transforms=a,b`, `transforms.a.type=…`,
//! `transforms.a.predicate=p`, `transforms.a.negate=true`, `predicates=p`,
//! `predicates.p.type=…`) and the built-in transforms and predicates.

use sluice_api::config::{Props, split_list, with_prefix};
use sluice_api::record::Record;
use sluice_api::transform::{Predicate, PredicatePlugin, Transform, TransformPlugin};
use sluice_api::{Error, Result};

use crate::registry::Registry;

struct Stage {
    alias: String,
    transform: Box<dyn Transform>,
    predicate: Option<Box<dyn Predicate>>,
    negate: bool,
}

/// A connector's transforms, applied in order.
#[derive(Default)]
pub struct TransformChain {
    stages: Vec<Stage>,
}

impl TransformChain {
    /// Builds the chain from a connector config; errors name the alias and key to fix.
    pub fn from_config(registry: &Registry, props: &Props) -> Result<TransformChain> {
        let predicate_aliases = props
            .get("predicates")
            .map(|p| split_list(p))
            .unwrap_or_default();
        let mut stages = Vec::new();
        for alias in props
            .get("transforms")
            .map(|t| split_list(t))
            .unwrap_or_default()
        {
            let prefix = format!("transforms.{alias}.");
            let own = with_prefix(props, &prefix);
            let class = own.get("type").ok_or_else(|| {
                Error::config(format!(
                    "missing `{prefix}type`: say which transform `{alias}` is"
                ))
            })?;
            let plugin = registry.find_transform(class).ok_or_else(|| {
                Error::config(format!(
                    "`{prefix}type={class}` is not a transform sluice has; available: {}",
                    registry
                        .transforms()
                        .iter()
                        .map(|t| t.class)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            let mut settings = own.clone();
            settings.remove("type");
            let predicate_alias = settings.remove("predicate");
            let negate = match settings.remove("negate").as_deref().map(str::trim) {
                None | Some("false") => false,
                Some("true") => true,
                Some(other) => {
                    return Err(Error::config(format!(
                        "`{prefix}negate={other}` must be true or false"
                    )));
                }
            };
            let def = (plugin.config_def)();
            let errors = def.validate(&settings);
            if let Some(first) = errors.first() {
                return Err(Error::config(format!(
                    "transform `{alias}`: {prefix}{first}"
                )));
            }
            let transform = (plugin.create)(&settings)
                .map_err(|e| e.context(format!("transform `{alias}` ({class})")))?;
            let predicate = match predicate_alias {
                None => None,
                Some(name) => {
                    if !predicate_aliases.contains(&name) {
                        return Err(Error::config(format!(
                            "`{prefix}predicate={name}` refers to a predicate not listed in \
                             `predicates`; add `predicates={name}` and `predicates.{name}.type=…`"
                        )));
                    }
                    Some(build_predicate(registry, props, &name)?)
                }
            };
            stages.push(Stage {
                alias,
                transform,
                predicate,
                negate,
            });
        }
        for name in &predicate_aliases {
            build_predicate(registry, props, name)?;
        }
        Ok(TransformChain { stages })
    }

    /// True when no transform is configured.
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// Runs `record` through every stage. The error names the transform that failed.
    pub fn apply(&mut self, record: Record, out: &mut Vec<Record>) -> Result<()> {
        if self.stages.is_empty() {
            out.push(record);
            return Ok(());
        }
        let mut current = vec![record];
        let mut next = Vec::new();
        for stage in &mut self.stages {
            for record in current.drain(..) {
                let applies = match &stage.predicate {
                    None => true,
                    Some(predicate) => predicate.test(&record) != stage.negate,
                };
                if applies {
                    stage
                        .transform
                        .apply(record, &mut next)
                        .map_err(|e| e.context(format!("transform `{}`", stage.alias)))?;
                } else {
                    next.push(record);
                }
            }
            std::mem::swap(&mut current, &mut next);
        }
        out.append(&mut current);
        Ok(())
    }
}

fn build_predicate(registry: &Registry, props: &Props, alias: &str) -> Result<Box<dyn Predicate>> {
    let prefix = format!("predicates.{alias}.");
    let mut settings = with_prefix(props, &prefix);
    let class = settings.remove("type").ok_or_else(|| {
        Error::config(format!(
            "missing `{prefix}type`: say which predicate `{alias}` is"
        ))
    })?;
    let plugin = registry.find_predicate(&class).ok_or_else(|| {
        Error::config(format!(
            "`{prefix}type={class}` is not a predicate sluice has; available: {}",
            registry
                .predicates()
                .iter()
                .map(|p| p.class)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    if let Some(first) = (plugin.config_def)().validate(&settings).first() {
        return Err(Error::config(format!(
            "predicate `{alias}`: {prefix}{first}"
        )));
    }
    (plugin.create)(&settings).map_err(|e| e.context(format!("predicate `{alias}`")))
}

/// The transforms built into the runtime (Kafka Connect's and Debezium's, from
/// `sluice-transforms`).
pub fn builtin_transforms() -> Vec<TransformPlugin> {
    sluice_transforms::transforms()
}

/// The predicates built into the runtime.
pub fn builtin_predicates() -> Vec<PredicatePlugin> {
    sluice_transforms::predicates()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_api::config::props;
    use sluice_api::data::Value;

    fn run(chain: &mut TransformChain, topic: &str) -> Vec<String> {
        let mut out = Vec::new();
        chain
            .apply(Record::new(topic, Value::from("v"), None), &mut out)
            .unwrap();
        out.into_iter().map(|r| r.topic).collect()
    }

    #[test]
    fn regex_router_follows_the_kafka_connect_doc_example() {
        let registry = Registry::with_builtins();
        let mut chain = TransformChain::from_config(
            &registry,
            &props(&[
                ("transforms", "dropPrefix"),
                (
                    "transforms.dropPrefix.type",
                    "org.apache.kafka.connect.transforms.RegexRouter",
                ),
                ("transforms.dropPrefix.regex", "soe-(.*)"),
                ("transforms.dropPrefix.replacement", "$1x"),
            ]),
        )
        .unwrap();
        assert_eq!(run(&mut chain, "soe-Order"), ["Orderx"]);
        assert_eq!(run(&mut chain, "other"), ["other"]);
    }

    #[test]
    fn predicates_and_negate_select_records() {
        let registry = Registry::with_builtins();
        let base = [
            ("transforms", "r"),
            ("transforms.r.type", "RegexRouter"),
            ("transforms.r.regex", ".*"),
            ("transforms.r.replacement", "routed"),
            ("transforms.r.predicate", "isA"),
            ("predicates", "isA"),
            ("predicates.isA.type", "TopicNameMatches"),
            ("predicates.isA.pattern", "a.*"),
        ];
        let mut chain = TransformChain::from_config(&registry, &props(&base)).unwrap();
        assert_eq!(run(&mut chain, "abc"), ["routed"]);
        assert_eq!(run(&mut chain, "xyz"), ["xyz"]);
        let mut negated = base.to_vec();
        negated.push(("transforms.r.negate", "true"));
        let mut chain = TransformChain::from_config(&registry, &props(&negated)).unwrap();
        assert_eq!(run(&mut chain, "abc"), ["abc"]);
        assert_eq!(run(&mut chain, "xyz"), ["routed"]);
    }

    #[test]
    fn configuration_mistakes_name_the_key() {
        let registry = Registry::with_builtins();
        let err = |pairs: &[(&str, &str)]| {
            TransformChain::from_config(&registry, &props(pairs))
                .err()
                .unwrap()
                .message()
                .to_owned()
        };
        assert!(err(&[("transforms", "x")]).contains("missing `transforms.x.type`"));
        assert!(
            err(&[("transforms", "x"), ("transforms.x.type", "Nope")]).contains("not a transform")
        );
        assert!(
            err(&[
                ("transforms", "x"),
                ("transforms.x.type", "RegexRouter"),
                ("transforms.x.regex", "(")
            ])
            .contains("transforms.x.replacement")
        );
        assert!(
            err(&[
                ("transforms", "x"),
                ("transforms.x.type", "RegexRouter"),
                ("transforms.x.regex", "a"),
                ("transforms.x.replacement", "b"),
                ("transforms.x.predicate", "p"),
            ])
            .contains("not listed in `predicates`")
        );
    }
}
