//! Kestra's `io.kestra.plugin.core.log.Fetch`: the log lines of an execution (the current
//! one by default) written to an ION file of the task run, one line per log entry. The
//! worker reads them through the engine's log repository.

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::props::Props;
use super::{Check, IoAnswer, IoCall, IoKind, IoTaskSpec, Property, Render, TaskRunContext};
use crate::execution::{LogEntry, LogLevel, StateType, TaskResult};
use crate::ion::IonValue;

/// Which log lines to fetch, rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct LogFetchCall {
    pub namespace: String,
    pub flow_id: String,
    pub execution_id: String,
    /// Only these tasks' lines, when not empty.
    pub task_ids: Vec<String>,
    /// The lowest level fetched.
    pub min_level: LogLevel,
}

/// Why the worker could not fetch the lines.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LogFetchError {
    #[error("Unable to read the logs of execution '{execution_id}': {reason}")]
    Read { execution_id: String, reason: String },
    #[error("Unable to store the logs in '{uri}': {reason}")]
    Store { uri: String, reason: String },
}

/// Where the worker wrote the lines, and how many.
#[derive(Debug, Clone, PartialEq)]
pub struct LogFetchAnswer {
    pub uri: String,
    pub size: u64,
}

const FETCH: &[Property] = &[
    Property::new("namespace", Check::Any),
    Property::new("flowId", Check::Any),
    Property::new("executionId", Check::Any),
    Property::new("tasksId", Check::Any),
    Property::new("level", Check::Any),
];

pub const TASKS: &[IoTaskSpec] = &[IoTaskSpec {
    kind: IoKind::LogFetch,
    name: "io.kestra.plugin.core.log.Fetch",
    aliases: &[
        "io.kestra.core.tasks.log.Fetch",
        "io.kestra.core.tasks.debugs.Fetch",
    ],
    properties: FETCH,
    prepare,
    finish,
}];

/// The file name of the lines, under the task run's storage prefix.
pub const FILE_NAME: &str = "logs.ion";

/// Appends `entry` to the file's content as one line of Ion: Kestra's log entry fields,
/// its `timestamp` an Ion timestamp as Kestra's `FileSerde` writes an `Instant`.
pub fn write_line(content: &mut Vec<u8>, entry: &LogEntry) {
    // A log entry is strings, numbers and a date: it always serializes.
    let Ok(json) = serde_json::to_value(entry) else {
        return;
    };
    let mut value = IonValue::from_json(&json);
    if let IonValue::Struct(fields) = &mut value {
        for (name, field) in fields.iter_mut() {
            if name == "timestamp" {
                *field = IonValue::instant(entry.timestamp);
            }
        }
    }
    content.extend(value.to_line().into_bytes());
    content.push(b'\n');
}

fn prepare(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    let current = |template: &str| p.render_value(&Value::String(template.into()));
    let namespace = p.rendered("namespace")?;
    let flow_id = p.rendered("flowId")?;
    // Kestra's rules (`PluginUtilsService.executionFromTaskParameters`).
    let (namespace, flow_id, execution_id) = match (p.rendered("executionId")?, namespace, flow_id) {
        (Some(id), Some(ns), Some(flow)) => (ns, flow, id),
        (Some(_), None, None) | (None, None, None) => (
            current("{{ flow.namespace }}")?,
            current("{{ flow.id }}")?,
            match p.rendered("executionId")? {
                Some(id) => id,
                None => current("{{ execution.id }}")?,
            },
        ),
        (Some(_), _, _) => {
            return Err("Both `namespace` and `flowId` must be set when `executionId` is set.".into())
        }
        (None, _, _) => {
            return Err("`namespace` and `flowId` should only be set when `executionId` is set.".into())
        }
    };
    let min_level = match p.rendered("level")? {
        None => LogLevel::Info,
        Some(name) => LogLevel::parse(name.trim())
            .ok_or_else(|| format!("Invalid level '{name}': use TRACE, DEBUG, INFO, WARN or ERROR"))?,
    };
    Ok(IoCall::Logs(LogFetchCall {
        namespace,
        flow_id,
        execution_id,
        task_ids: task_ids(properties.get("tasksId"), render)?,
        min_level,
    }))
}

/// `tasksId`: a list of task ids (each rendered), or an expression that renders to one.
fn task_ids(value: Option<&Value>, render: &Render) -> Result<Vec<String>, String> {
    let rendered = |v: &Value| render(v).map_err(|e| e.to_string());
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(rendered).collect(),
        Some(other) => {
            let text = rendered(other)?;
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Array(items)) => Ok(items
                    .into_iter()
                    .map(|v| match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    })
                    .collect()),
                _ => Ok(vec![text]),
            }
        }
    }
}

fn finish(call: &IoCall, answer: IoAnswer, task_run: &TaskRunContext, now: DateTime<Utc>) -> TaskResult {
    let (IoCall::Logs(_), IoAnswer::Logs(answer)) = (call, answer) else {
        return task_run.failed("The worker answered another kind of call", now);
    };
    match answer {
        Ok(answer) => {
            let mut outputs = IndexMap::new();
            outputs.insert("size".to_string(), Value::from(answer.size));
            outputs.insert("uri".to_string(), Value::String(answer.uri));
            task_run.result(StateType::Success, outputs)
        }
        Err(e) => task_run.failed(e.to_string(), now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expression::ExpressionError;

    fn render(v: &Value) -> Result<String, ExpressionError> {
        Ok(match v.as_str() {
            Some("{{ flow.namespace }}") => "ns".into(),
            Some("{{ flow.id }}") => "flow".into(),
            Some("{{ execution.id }}") => "current".into(),
            Some(s) => s.to_string(),
            None => v.to_string(),
        })
    }

    fn call(yaml: Value) -> Result<LogFetchCall, String> {
        let Value::Object(properties) = yaml else {
            panic!("properties are a map")
        };
        match prepare(&properties, &render)? {
            IoCall::Logs(call) => Ok(call),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_to_the_current_execution_at_info() {
        let c = call(serde_json::json!({})).unwrap();
        assert_eq!(
            (c.namespace.as_str(), c.flow_id.as_str(), c.execution_id.as_str()),
            ("ns", "flow", "current")
        );
        assert_eq!(c.min_level, LogLevel::Info);
        assert!(c.task_ids.is_empty());
        let c = call(serde_json::json!({"executionId": "other", "tasksId": ["a", "b"], "level": "ERROR"}))
            .unwrap();
        assert_eq!((c.flow_id.as_str(), c.execution_id.as_str()), ("flow", "other"));
        assert_eq!(c.task_ids, vec!["a", "b"]);
        assert_eq!(c.min_level, LogLevel::Error);
    }

    #[test]
    fn namespace_and_flow_go_with_an_execution_id_only() {
        assert_eq!(
            call(serde_json::json!({"executionId": "x", "namespace": "n"})).unwrap_err(),
            "Both `namespace` and `flowId` must be set when `executionId` is set."
        );
        assert_eq!(
            call(serde_json::json!({"namespace": "n", "flowId": "f"})).unwrap_err(),
            "`namespace` and `flowId` should only be set when `executionId` is set."
        );
        let c = call(serde_json::json!({"executionId": "x", "namespace": "n", "flowId": "f"})).unwrap();
        assert_eq!((c.namespace.as_str(), c.flow_id.as_str()), ("n", "f"));
    }
}
