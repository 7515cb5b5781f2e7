//! Connector and task states, as Kafka Connect reports them.

use std::sync::{Arc, Mutex};

use serde::Serialize;
use sluice_api::metrics::TaskMetrics;

/// A connector's or task's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    Unassigned,
    Running,
    Paused,
    Failed,
    Restarting,
    Stopped,
}

/// A state with the failure trace, when failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub state: State,
    pub trace: Option<String>,
}

/// A status shared between a running task and whoever reports on it, with the gauges the
/// task publishes.
#[derive(Debug, Clone)]
pub struct StatusCell {
    status: Arc<Mutex<Status>>,
    pub metrics: TaskMetrics,
}

impl StatusCell {
    /// A cell starting in `state`.
    pub fn new(state: State) -> StatusCell {
        StatusCell {
            status: Arc::new(Mutex::new(Status { state, trace: None })),
            metrics: TaskMetrics::default(),
        }
    }

    /// The current status.
    pub fn get(&self) -> Status {
        self.status.lock().expect("status lock").clone()
    }

    /// Sets a non-failed state, clearing any trace.
    pub fn set(&self, state: State) {
        *self.status.lock().expect("status lock") = Status { state, trace: None };
    }

    /// Marks the task failed with its trace.
    pub fn fail(&self, trace: String) {
        *self.status.lock().expect("status lock") = Status {
            state: State::Failed,
            trace: Some(trace),
        };
    }
}
