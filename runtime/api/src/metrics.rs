//! Gauges a task publishes about itself (slot lag, snapshot progress, …). The worker shows
//! them in the task's REST status (`metrics`) and at `GET /metrics` in Prometheus' text format.
//! A CDC source also publishes Debezium's connector metrics ([`DebeziumMetrics`]) under
//! Debezium's own names.

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

/// One of Debezium's connector metrics, as the JMX exporter rules of Debezium's monitoring
/// guide render `debezium.<plugin>:type=connector-metrics,context=<context>,server=<server>`
/// attribute `<name>`: `debezium_metrics_<name>{plugin,name=<server>,context[,table]}`.
#[derive(Debug, Clone, PartialEq)]
pub struct DebeziumGauge {
    /// Debezium's attribute name, e.g. `MilliSecondsBehindSource`.
    pub name: String,
    /// `postgres`, `mysql`, `mariadb`.
    pub plugin: String,
    /// The logical server name (`topic.prefix`).
    pub server: String,
    /// `streaming` or `snapshot`.
    pub context: String,
    /// The table, for per-table figures (`RowsScanned`).
    pub table: Option<String>,
    /// The latest value set.
    pub value: f64,
}

/// A Debezium gauge's identity.
type DebeziumKey = (String, String, String, String, Option<String>);

#[derive(Debug, Default)]
struct Gauges {
    plain: BTreeMap<GaugeKey, f64>,
    debezium: BTreeMap<DebeziumKey, f64>,
}

/// A task's gauges; cheap to clone and share between the task and the worker.
#[derive(Debug, Clone, Default)]
pub struct TaskMetrics(Arc<Mutex<Gauges>>);

/// A CDC task's handle on Debezium's connector metrics of one plugin and server.
#[derive(Debug, Clone)]
pub struct DebeziumMetrics {
    plugin: &'static str,
    server: String,
    metrics: TaskMetrics,
}

impl DebeziumMetrics {
    /// Sets Debezium's `name` (e.g. `MilliSecondsBehindSource`) in `context` (`streaming`,
    /// `snapshot`).
    pub fn set(&self, context: &str, name: &str, value: f64) {
        self.insert(context, name, None, value);
    }

    /// Sets a per-table figure (`RowsScanned`).
    pub fn set_table(&self, context: &str, name: &str, table: &str, value: f64) {
        self.insert(context, name, Some(table.to_owned()), value);
    }

    /// Adds `by` to a counter-like figure (`TotalNumberOfEventsSeen`).
    pub fn add(&self, context: &str, name: &str, by: f64) {
        let key = self.key(context, name, None);
        *self
            .metrics
            .0
            .lock()
            .expect("metrics lock")
            .debezium
            .entry(key)
            .or_default() += by;
    }

    fn key(&self, context: &str, name: &str, table: Option<String>) -> DebeziumKey {
        (
            name.to_owned(),
            self.plugin.to_owned(),
            self.server.clone(),
            context.to_owned(),
            table,
        )
    }

    fn insert(&self, context: &str, name: &str, table: Option<String>, value: f64) {
        let key = self.key(context, name, table);
        self.metrics
            .0
            .lock()
            .expect("metrics lock")
            .debezium
            .insert(key, value);
    }
}

impl TaskMetrics {
    /// Sets `name` (snake_case, e.g. `slot_lag_bytes`).
    pub fn set(&self, name: &str, value: f64) {
        self.0
            .lock()
            .expect("metrics lock")
            .plain
            .insert((name.to_owned(), None), value);
    }

    /// Debezium's connector metrics of `plugin` (`postgres`, `mysql`, `mariadb`) for logical
    /// server `server`, published beside this task's other gauges.
    pub fn debezium(&self, plugin: &'static str, server: &str) -> DebeziumMetrics {
        DebeziumMetrics {
            plugin,
            server: server.to_owned(),
            metrics: self.clone(),
        }
    }

    /// Every Debezium gauge set, sorted by name, then plugin, server, context and table.
    pub fn debezium_gauges(&self) -> Vec<DebeziumGauge> {
        self.0
            .lock()
            .expect("metrics lock")
            .debezium
            .iter()
            .map(
                |((name, plugin, server, context, table), value)| DebeziumGauge {
                    name: name.clone(),
                    plugin: plugin.clone(),
                    server: server.clone(),
                    context: context.clone(),
                    table: table.clone(),
                    value: *value,
                },
            )
            .collect()
    }

    /// Sets `name` for one value of a label, e.g. `("snapshot_rows", "table", "public.t")`.
    pub fn set_labeled(&self, name: &str, label: &str, label_value: &str, value: f64) {
        self.0.lock().expect("metrics lock").plain.insert(
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
            .plain
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
        let debezium = metrics.debezium("postgres", "dbserver1");
        debezium.set("streaming", "Connected", 1.0);
        debezium.add("streaming", "TotalNumberOfEventsSeen", 2.0);
        debezium.add("streaming", "TotalNumberOfEventsSeen", 3.0);
        debezium.set_table("snapshot", "RowsScanned", "public.a", 7.0);
        let gauges = metrics.debezium_gauges();
        assert_eq!(gauges.len(), 3);
        assert_eq!(gauges[2].name, "TotalNumberOfEventsSeen");
        assert_eq!(gauges[2].value, 5.0);
        assert_eq!(gauges[1].table.as_deref(), Some("public.a"));
        assert_eq!(metrics.gauges().len(), 3, "apart from the plain gauges");
    }
}
