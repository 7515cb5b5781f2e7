//! Gauges a task publishes about itself (slot lag, snapshot progress, …). The worker shows
//! them in the task's REST status (`metrics`) and at `GET /metrics` in Prometheus' text format.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// One gauge: a name, at most one label (`table="public.accounts"`), a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Gauge {
    /// The gauge's snake_case name, e.g. `slot_lag_bytes`.
    pub name: String,
    /// The label's name and value, e.g. `("table", "public.accounts")`; `None` when unlabelled.
    pub label: Option<(String, String)>,
    /// The latest value set.
    pub value: f64,
}

/// A gauge's identity: its name and its label, if any.
type GaugeKey = (String, Option<(String, String)>);

/// A task's gauges; cheap to clone and share between the task and the worker.
#[derive(Debug, Clone, Default)]
pub struct TaskMetrics(Arc<Mutex<BTreeMap<GaugeKey, f64>>>);

impl TaskMetrics {
    /// Sets `name` (snake_case, e.g. `slot_lag_bytes`).
    pub fn set(&self, name: &str, value: f64) {
        self.0
            .lock()
            .expect("metrics lock")
            .insert((name.to_owned(), None), value);
    }

    /// Sets `name` for one value of a label, e.g. `("snapshot_rows", "table", "public.t")`.
    pub fn set_labeled(&self, name: &str, label: &str, label_value: &str, value: f64) {
        self.0.lock().expect("metrics lock").insert(
            (
                name.to_owned(),
                Some((label.to_owned(), label_value.to_owned())),
            ),
            value,
        );
    }

    /// Every gauge, sorted by name then label.
    pub fn gauges(&self) -> Vec<Gauge> {
        self.0
            .lock()
            .expect("metrics lock")
            .iter()
            .map(|((name, label), value)| Gauge {
                name: name.clone(),
                label: label.clone(),
                value: *value,
            })
            .collect()
    }

    /// The gauges as JSON: `{"slot_lag_bytes": 0, "snapshot_rows": {"public.t": 20000}}`.
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut out = serde_json::Map::new();
        for gauge in self.gauges() {
            let value = serde_json::json!(gauge.value);
            match gauge.label {
                None => {
                    out.insert(gauge.name, value);
                }
                Some((_, label_value)) => {
                    if let serde_json::Value::Object(by_label) = out
                        .entry(gauge.name)
                        .or_insert_with(|| serde_json::Value::Object(Default::default()))
                    {
                        by_label.insert(label_value, value);
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_labeled_gauges_render_as_json() {
        let metrics = TaskMetrics::default();
        metrics.set("slot_lag_bytes", 42.0);
        metrics.set_labeled("snapshot_rows", "table", "public.a", 10.0);
        metrics.set_labeled("snapshot_rows", "table", "public.b", 5.0);
        metrics.set("slot_lag_bytes", 7.0);
        assert_eq!(
            serde_json::Value::Object(metrics.to_json()),
            serde_json::json!({"slot_lag_bytes": 7.0, "snapshot_rows": {"public.a": 10.0, "public.b": 5.0}})
        );
        assert_eq!(metrics.gauges().len(), 3);
    }
}
