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
        let result = self.apply_batch(vec![record]).pop();
        out.extend(result.expect("one result per record")?);
        Ok(())
    }

    /// Runs a batch through every stage, each stage seeing the whole batch at once (one
    /// sandbox crossing per batch for a WASM plugin). One result per input record, in order:
    /// the records it became, or the error of the first stage that failed it (naming that
    /// transform); a failed record goes no further and does not hold up the others.
    pub fn apply_batch(&mut self, records: Vec<Record>) -> Vec<Result<Vec<Record>>> {
        let inputs = records.len();
        if self.stages.is_empty() {
            return records.into_iter().map(|r| Ok(vec![r])).collect();
        }
        // Every record in flight, tagged with the input it came from.
        let mut current: Vec<(usize, Record)> = records.into_iter().enumerate().collect();
        let mut failures: Vec<Option<Error>> = (0..inputs).map(|_| None).collect();
        for stage in &mut self.stages {
            let applies: Vec<bool> = current
                .iter()
                .map(|(_, record)| match &stage.predicate {
                    None => true,
                    Some(predicate) => predicate.test(record) != stage.negate,
                })
                .collect();
            let mut batch = Vec::with_capacity(current.len());
            let mut owners = Vec::with_capacity(current.len());
            let mut passing = Vec::new();
            for ((owner, record), applies) in current.drain(..).zip(&applies) {
                if *applies {
                    owners.push(owner);
                    batch.push(record);
                } else {
                    passing.push((owner, record));
                }
            }
            let sent = batch.len();
            let mut results = stage.transform.apply_batch(batch).into_iter();
            let mut owners = owners.into_iter();
            let mut passing = passing.into_iter();
            // Rebuilt in the original order: a record the stage skipped keeps its place
            // among the outputs of the records it transformed.
            for applies in applies {
                if !applies {
                    current.extend(passing.next());
                    continue;
                }
                let owner = owners.next().expect("an owner per transformed record");
                let result = results.next().unwrap_or_else(|| {
                    Err(Error::fatal(format!(
                        "returned fewer results than the {sent} records it was given"
                    )))
                });
                match result {
                    Ok(outputs) => current.extend(outputs.into_iter().map(|r| (owner, r))),
                    Err(error) => {
                        failures[owner].get_or_insert_with(|| {
                            error.context(format!("transform `{}`", stage.alias))
                        });
                    }
                }
            }
            current.retain(|(owner, _)| failures[*owner].is_none());
        }
        let mut outputs: Vec<Vec<Record>> = (0..inputs).map(|_| Vec::new()).collect();
        for (owner, record) in current {
            outputs[owner].push(record);
        }
        outputs
            .into_iter()
            .zip(failures)
            .map(|(records, failure)| match failure {
                Some(error) => Err(error),
                None => Ok(records),
            })
            .collect()
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
    fn a_batch_keeps_order_and_fails_only_the_records_that_fail() {
        let registry = Registry::with_builtins();
        let mut chain = TransformChain::from_config(
            &registry,
            &props(&[
                ("transforms", "extract,route"),
                ("transforms.extract.type", "ExtractField$Value"),
                ("transforms.extract.field", "x"),
                ("transforms.extract.predicate", "isA"),
                ("transforms.route.type", "RegexRouter"),
                ("transforms.route.regex", "(.*)"),
                ("transforms.route.replacement", "routed.$1"),
                ("predicates", "isA"),
                ("predicates.isA.type", "TopicNameMatches"),
                ("predicates.isA.pattern", "a.*"),
            ]),
        )
        .unwrap();
        let map = |x: i64| Value::Map(vec![(Value::from("x"), Value::Int64(x))]);
        let batch = vec![
            Record::new("a1", map(1), None),
            Record::new("b", Value::from("skipped by the predicate"), None),
            Record::new("a2", Value::from("not a map: ExtractField fails"), None),
            Record::new("a3", map(3), None),
        ];
        let results = chain.apply_batch(batch);
        assert_eq!(results.len(), 4, "one result per input");
        let seen: Vec<std::result::Result<Vec<(String, Value)>, String>> = results
            .into_iter()
            .map(|result| {
                result
                    .map(|records| records.into_iter().map(|r| (r.topic, r.value)).collect())
                    .map_err(|e| e.message().to_owned())
            })
            .collect();
        assert_eq!(seen[0], Ok(vec![("routed.a1".into(), Value::Int64(1))]));
        assert_eq!(
            seen[1],
            Ok(vec![(
                "routed.b".into(),
                Value::from("skipped by the predicate")
            )])
        );
        let failure = seen[2].as_ref().unwrap_err();
        assert!(failure.contains("transform `extract`"), "{failure}");
        assert_eq!(seen[3], Ok(vec![("routed.a3".into(), Value::Int64(3))]));
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
