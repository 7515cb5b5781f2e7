//! The per-connector transform chain (`transforms=a,b`, `transforms.a.type=…`,
//! `transforms.a.predicate=p`, `transforms.a.negate=true`, `predicates=p`,
//! `predicates.p.type=…`).

use sluice_api::config::{Props, split_list, with_prefix};
use sluice_api::record::Record;
use sluice_api::transform::{Predicate, Transform};
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

/// Shows the aliases of the stages, in order.
impl std::fmt::Debug for TransformChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.stages.iter().map(|stage| &stage.alias))
            .finish()
    }
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
        let mut stages = self.stages.iter_mut();
        let Some(first) = stages.next() else {
            return records.into_iter().map(|r| Ok(vec![r])).collect();
        };
        // The first stage's results are already one per input record: with a single stage
        // (the usual case) nothing is regrouped, which is most of what the chain itself costs.
        let mut results = first.apply_batch(records);
        for stage in stages {
            let mut owners = Vec::with_capacity(results.len());
            let mut batch = Vec::with_capacity(results.len());
            for (owner, result) in results.iter_mut().enumerate() {
                if let Ok(records) = result {
                    owners.extend(std::iter::repeat_n(owner, records.len()));
                    batch.append(records);
                }
            }
            // `owners` ascends, so each input's outputs come back in order.
            for (owner, result) in owners.into_iter().zip(stage.apply_batch(batch)) {
                match (&mut results[owner], result) {
                    (Ok(records), Ok(outputs)) => records.extend(outputs),
                    // One of its records failed here: the input fails as a whole, and the
                    // outputs its other records already made are dropped.
                    (slot @ Ok(_), Err(error)) => *slot = Err(error),
                    (Err(_), _) => {}
                }
            }
        }
        results
    }
}

impl Stage {
    /// One result per record of `records`: what this stage made of it (a record its predicate
    /// does not select passes as it is), errors naming the stage.
    fn apply_batch(&mut self, records: Vec<Record>) -> Vec<Result<Vec<Record>>> {
        let Some(predicate) = &self.predicate else {
            let sent = records.len();
            let results = self.transform.apply_batch(records);
            return self.named(results, sent);
        };
        let applies: Vec<bool> = records
            .iter()
            .map(|record| predicate.test(record) != self.negate)
            .collect();
        let mut selected = Vec::with_capacity(records.len());
        let mut results: Vec<Result<Vec<Record>>> = Vec::with_capacity(records.len());
        for (record, applies) in records.into_iter().zip(&applies) {
            if *applies {
                selected.push(record);
                results.push(Ok(Vec::new()));
            } else {
                results.push(Ok(vec![record]));
            }
        }
        let sent = selected.len();
        let transformed = self.transform.apply_batch(selected);
        let mut transformed = self.named(transformed, sent).into_iter();
        for (slot, applies) in results.iter_mut().zip(applies) {
            if applies {
                *slot = transformed.next().expect("one result per selected record");
            }
        }
        results
    }

    /// `results` of `sent` records, checked to be one each, with errors naming this stage.
    fn named(&self, results: Vec<Result<Vec<Record>>>, sent: usize) -> Vec<Result<Vec<Record>>> {
        let returned = results.len();
        let mut results: Vec<_> = results
            .into_iter()
            .take(sent)
            .map(|result| result.map_err(|e| e.context(format!("transform `{}`", self.alias))))
            .collect();
        results.resize_with(sent, || {
            Err(Error::fatal(format!(
                "transform `{}` returned {returned} results for the {sent} records it was given",
                self.alias
            )))
        });
        results
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
        out.into_iter().map(|r| r.topic.into_string()).collect()
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
                    .map(|records| {
                        records
                            .into_iter()
                            .map(|r| (r.topic.into_string(), r.value))
                            .collect()
                    })
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

    /// Fans each record out into `<topic>.1` and `<topic>.2`.
    struct FanOut;

    impl Transform for FanOut {
        fn apply(&mut self, record: Record, out: &mut Vec<Record>) -> Result<()> {
            for n in 1..=2 {
                let mut copy = record.clone();
                copy.topic = format!("{}.{n}", record.topic).into();
                out.push(copy);
            }
            Ok(())
        }
    }

    /// Fails records whose topic is `bad.2`.
    struct FailBad2;

    impl Transform for FailBad2 {
        fn apply(&mut self, record: Record, out: &mut Vec<Record>) -> Result<()> {
            if record.topic == "bad.2" {
                return Err(Error::data("bad.2 is refused"));
            }
            out.push(record);
            Ok(())
        }
    }

    fn stage(alias: &str, transform: impl Transform + 'static) -> Stage {
        Stage {
            alias: alias.to_owned(),
            transform: Box::new(transform),
            predicate: None,
            negate: false,
        }
    }

    #[test]
    fn a_fanned_out_record_fails_as_a_whole_when_one_of_its_outputs_fails_later() {
        let mut chain = TransformChain {
            stages: vec![stage("fan", FanOut), stage("check", FailBad2)],
        };
        let batch = ["good", "bad", "other"]
            .map(|topic| Record::new(topic, Value::from("v"), None))
            .to_vec();
        let results = chain.apply_batch(batch);
        let topics = |result: &Result<Vec<Record>>| -> Vec<String> {
            let records = result.as_ref().unwrap();
            records.iter().map(|r| r.topic.to_string()).collect()
        };
        assert_eq!(results.len(), 3);
        assert_eq!(topics(&results[0]), ["good.1", "good.2"]);
        let failure = results[1].as_ref().unwrap_err().message().to_owned();
        assert_eq!(failure, "transform `check`: bad.2 is refused");
        assert_eq!(topics(&results[2]), ["other.1", "other.2"]);
    }

    /// Returns nothing at all, whatever it is given.
    struct Forgetful;

    impl Transform for Forgetful {
        fn apply(&mut self, _: Record, _: &mut Vec<Record>) -> Result<()> {
            Ok(())
        }

        fn apply_batch(&mut self, _: Vec<Record>) -> Vec<Result<Vec<Record>>> {
            Vec::new()
        }
    }

    #[test]
    fn a_transform_that_loses_results_fails_those_records_by_name() {
        let mut chain = TransformChain {
            stages: vec![stage("lossy", Forgetful)],
        };
        let results = chain.apply_batch(vec![Record::new("t", Value::from("v"), None)]);
        let failure = results[0].as_ref().unwrap_err().message().to_owned();
        assert!(
            failure.contains("transform `lossy` returned 0 results for the 1 records"),
            "{failure}"
        );
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
