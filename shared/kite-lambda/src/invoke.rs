//! The direct invoke of the api function (Lambda `Invoke` from an AWS SDK): creates an
//! execution and answers its JSON, like `POST /api/v1/executions/{namespace}/{flowId}`.

use std::time::Duration;

use indexmap::IndexMap;
use kite_core::execution::Label;
use kite_core::input::InputValue;
use kite_engine::{CreateExecution, Engine};
use serde::Deserialize;
use serde_json::Value;

use crate::error::FnError;

/// `{"namespace": "dev", "flowId": "hello-world", "inputs": {...}, "labels": {...}, "wait": false}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DirectInvoke {
    pub namespace: String,
    pub flow_id: String,
    /// Input values by input id, typed as in a JSON API call.
    #[serde(default)]
    pub inputs: IndexMap<String, Value>,
    /// `{"key": "value"}` or Kestra's `[{"key": ..., "value": ...}]`.
    #[serde(default)]
    pub labels: Labels,
    /// Answer once the execution is terminated (bounded by the invocation's deadline).
    #[serde(default)]
    pub wait: bool,
    /// A flow revision, else the latest.
    #[serde(default)]
    pub revision: Option<i64>,
}

/// Labels in either of the two forms callers use.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Labels {
    Map(IndexMap<String, String>),
    List(Vec<Label>),
}

impl Default for Labels {
    fn default() -> Self {
        Labels::List(Vec::new())
    }
}

impl Labels {
    fn into_vec(self) -> Vec<Label> {
        match self {
            Labels::List(l) => l,
            Labels::Map(m) => m.into_iter().map(|(key, value)| Label { key, value }).collect(),
        }
    }
}

impl DirectInvoke {
    pub fn parse(event: Value) -> Result<DirectInvoke, FnError> {
        serde_json::from_value(event).map_err(|e| FnError::InvalidPayload {
            what: "direct invoke payload {namespace, flowId, inputs?, labels?, wait?, revision?}",
            message: e.to_string(),
        })
    }

    /// Creates the execution; with `wait`, waits up to `wait_limit` for its end. Returns the
    /// execution JSON (the latest state).
    pub async fn run(self, engine: &Engine, wait_limit: Duration) -> Result<Value, FnError> {
        let wait = self.wait;
        let execution = engine
            .create_execution(CreateExecution {
                namespace: self.namespace,
                flow_id: self.flow_id,
                revision: self.revision,
                inputs: self
                    .inputs
                    .into_iter()
                    .map(|(k, v)| (k, InputValue::Json(v)))
                    .collect(),
                labels: self.labels.into_vec(),
                ..CreateExecution::default()
            })
            .await?;
        let execution = if wait {
            engine.wait_for_terminal(&execution.id, wait_limit).await?
        } else {
            execution
        };
        serde_json::to_value(&execution).map_err(|e| FnError::Backend(e.to_string()))
    }
}
