//! Parsing and validating Kestra flow YAML into the [`Flow`] model.
//!
//! Every error names the field path and, when the source has it, the line and
//! column, so a person can fix the flow without guessing.

use std::collections::HashSet;

use indexmap::IndexMap;
use regex::Regex;
use serde_json::{Map, Value};

use super::position::{lookup, positions, Positions};
use super::{
    Concurrency, ConcurrencyBehavior, Flow, FlowOutput, Flowable, HttpRequestTask, LogLevel,
    PauseTask, PluginDefault, Retry, RetryKind, SubflowTask, Task, TaskKind, TaskType, Trigger,
    TriggerType,
};
use crate::input::{DependsOn, InputDefinition, InputType};

/// A flow that cannot be accepted, with where and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.display())]
pub struct FlowError {
    pub kind: FlowErrorKind,
    /// Field path, e.g. `tasks[1].id`.
    pub path: String,
    /// 1-based line and column in the YAML source, when known.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl FlowError {
    fn display(&self) -> String {
        match (self.path.is_empty(), self.line) {
            (true, Some(l)) => format!("{} (line {l})", self.message),
            (false, Some(l)) => format!(
                "{}: {} (line {l}, column {})",
                self.path,
                self.message,
                self.column.unwrap_or(1)
            ),
            (false, None) => format!("{}: {}", self.path, self.message),
            (true, None) => self.message.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowErrorKind {
    Yaml,
    MissingProperty,
    InvalidProperty,
    UnknownProperty,
    UnknownType,
    DuplicateTaskId,
    InvalidId,
    InvalidCron,
}

/// Parses and validates one flow from its YAML source.
pub fn parse_flow(source: &str) -> Result<Flow, Vec<FlowError>> {
    let docs = split_documents(source)?;
    match docs.len() {
        1 => {
            let pos = positions(source).into_iter().next().unwrap_or_default();
            parse_document(&docs[0], &pos)
        }
        0 => Err(vec![error(
            FlowErrorKind::Yaml,
            "",
            None,
            "The flow is empty".into(),
        )]),
        n => Err(vec![error(
            FlowErrorKind::Yaml,
            "",
            None,
            format!("Expected one flow but found {n} YAML documents"),
        )]),
    }
}

/// Parses every document of a multi-document YAML source (`---` separated).
pub fn parse_flows(source: &str) -> Vec<Result<Flow, Vec<FlowError>>> {
    let docs = match split_documents(source) {
        Ok(d) => d,
        Err(e) => return vec![Err(e)],
    };
    let pos = positions(source);
    docs.iter()
        .enumerate()
        .map(|(i, doc)| parse_document(doc, pos.get(i).unwrap_or(&Positions::new())))
        .collect()
}

/// The flow source as JSON (for API responses), without validating it.
pub fn flow_source_to_json(source: &str) -> Result<Value, FlowError> {
    let yaml: serde_yaml::Value = serde_yaml::from_str(source).map_err(yaml_error)?;
    Ok(yaml_to_json(yaml))
}

fn yaml_error(e: serde_yaml::Error) -> FlowError {
    let loc = e.location();
    FlowError {
        kind: FlowErrorKind::Yaml,
        path: String::new(),
        line: loc.as_ref().map(|l| l.line()),
        column: loc.as_ref().map(|l| l.column()),
        message: format!("Invalid YAML: {e}"),
    }
}

fn split_documents(source: &str) -> Result<Vec<Value>, Vec<FlowError>> {
    use serde::Deserialize;
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(source) {
        let value = serde_yaml::Value::deserialize(doc).map_err(|e| vec![yaml_error(e)])?;
        if !value.is_null() {
            out.push(yaml_to_json(value));
        }
    }
    Ok(out)
}

/// YAML → JSON, keeping map order; non-string keys become their text.
pub fn yaml_value_to_json(value: serde_yaml::Value) -> Value {
    yaml_to_json(value)
}

fn yaml_to_json(value: serde_yaml::Value) -> Value {
    use serde_yaml::Value as Y;
    match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .unwrap_or(Value::Null)
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(yaml_to_json).collect()),
        Y::Mapping(m) => {
            let mut out = Map::with_capacity(m.len());
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s,
                    other => crate::expression::write_pebble(&yaml_to_json(other)),
                };
                out.insert(key, yaml_to_json(v));
            }
            Value::Object(out)
        }
        Y::Tagged(t) => yaml_to_json(t.value),
    }
}

fn error(
    kind: FlowErrorKind,
    path: &str,
    at: Option<(usize, usize)>,
    message: String,
) -> FlowError {
    FlowError {
        kind,
        path: path.to_string(),
        line: at.map(|a| a.0),
        column: at.map(|a| a.1),
        message,
    }
}

struct Parser<'a> {
    positions: &'a Positions,
    errors: Vec<FlowError>,
    defaults: Vec<PluginDefault>,
    task_ids: HashSet<String>,
    task_id_pattern: Regex,
}

const FLOW_FIELDS: &[&str] = &[
    "id",
    "namespace",
    "revision",
    "description",
    "labels",
    "inputs",
    "variables",
    "tasks",
    "errors",
    "finally",
    "afterExecution",
    "outputs",
    "triggers",
    "disabled",
    "deleted",
    "retry",
    "timeout",
    "concurrency",
    "pluginDefaults",
    "taskDefaults",
    "listeners",
    "sla",
    "tenantId",
    "workerGroup",
];

const TASK_FIELDS: &[&str] = &[
    "id",
    "type",
    "description",
    "retry",
    "timeout",
    "disabled",
    "logLevel",
    "allowFailure",
    "allowWarning",
    "runIf",
    "workerGroup",
    "logToFile",
];

fn task_fields(t: TaskType) -> &'static [&'static str] {
    match t {
        TaskType::Log => &["message", "level"],
        TaskType::Return => &["format"],
        TaskType::Echo => &["format", "level"],
        TaskType::OutputValues => &["values"],
        TaskType::Fail => &["condition", "errorMessage"],
        TaskType::Labels => &["labels"],
        TaskType::Sleep => &["duration"],
        TaskType::Sequential => &["tasks", "errors", "finally"],
        TaskType::Parallel => &["tasks", "concurrent", "errors", "finally"],
        TaskType::If => &["condition", "then", "else", "errors", "finally"],
        TaskType::Switch => &["value", "cases", "defaults", "errors", "finally"],
        TaskType::ForEach => &["values", "concurrencyLimit", "tasks", "errors", "finally"],
        TaskType::EachSequential => &["value", "tasks", "errors", "finally"],
        TaskType::EachParallel => &["value", "concurrent", "tasks", "errors", "finally"],
        TaskType::Subflow => &[
            "namespace",
            "flowId",
            "revision",
            "inputs",
            "labels",
            "wait",
            "transmitFailed",
            "inheritLabels",
            "outputs",
            "scheduleDate",
            "scheduleOn",
        ],
        TaskType::Pause => &[
            "delay",
            "timeout",
            "onResume",
            "tasks",
            "errors",
            "finally",
            "pauseDuration",
            "behavior",
        ],
        TaskType::HttpRequest => &[
            "uri",
            "method",
            "body",
            "formData",
            "contentType",
            "headers",
            "options",
            "sslOptions",
            "allowFailed",
            "encryptBody",
        ],
    }
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

fn join_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl<'a> Parser<'a> {
    fn err(&mut self, kind: FlowErrorKind, path: &str, message: impl Into<String>) {
        let at = lookup(self.positions, path);
        self.errors.push(error(kind, path, at, message.into()));
    }

    fn string(
        &mut self,
        obj: &Map<String, Value>,
        path: &str,
        key: &str,
        required: bool,
    ) -> Option<String> {
        match obj.get(key) {
            None | Some(Value::Null) => {
                if required {
                    self.err(
                        FlowErrorKind::MissingProperty,
                        &join_path(path, key),
                        format!("`{key}` is required"),
                    );
                }
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => {
                Some(crate::expression::write_pebble(v))
            }
            Some(other) => {
                self.err(
                    FlowErrorKind::InvalidProperty,
                    &join_path(path, key),
                    format!("`{key}` must be a string, not {}", describe(other)),
                );
                None
            }
        }
    }

    fn boolean(&mut self, obj: &Map<String, Value>, path: &str, key: &str, default: bool) -> bool {
        match obj.get(key) {
            None | Some(Value::Null) => default,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
            Some(other) => {
                self.err(
                    FlowErrorKind::InvalidProperty,
                    &join_path(path, key),
                    format!("`{key}` must be a boolean, not {}", describe(other)),
                );
                default
            }
        }
    }

    fn unsigned(&mut self, obj: &Map<String, Value>, path: &str, key: &str, default: u32) -> u32 {
        match obj.get(key) {
            None | Some(Value::Null) => default,
            Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n <= u64::from(u32::MAX)) => {
                n.as_u64().unwrap_or(0) as u32
            }
            Some(other) => {
                self.err(
                    FlowErrorKind::InvalidProperty,
                    &join_path(path, key),
                    format!(
                        "`{key}` must be a positive integer, not {}",
                        describe(other)
                    ),
                );
                default
            }
        }
    }

    fn object<'v>(
        &mut self,
        value: &'v Value,
        path: &str,
        what: &str,
    ) -> Option<&'v Map<String, Value>> {
        match value {
            Value::Object(m) => Some(m),
            other => {
                self.err(
                    FlowErrorKind::InvalidProperty,
                    path,
                    format!("{what} must be a map, not {}", describe(other)),
                );
                None
            }
        }
    }

    fn check_fields(
        &mut self,
        obj: &Map<String, Value>,
        path: &str,
        allowed: &[&[&str]],
        what: &str,
    ) {
        for key in obj.keys() {
            if !allowed.iter().any(|set| set.contains(&key.as_str())) {
                let mut known: Vec<&str> = allowed.iter().flat_map(|s| s.iter().copied()).collect();
                known.sort_unstable();
                self.err(
                    FlowErrorKind::UnknownProperty,
                    &join_path(path, key),
                    format!(
                        "Unrecognized field `{key}` for {what}; known fields: {}",
                        known.join(", ")
                    ),
                );
            }
        }
    }

    fn labels(&mut self, value: Option<&Value>, path: &str) -> Vec<(String, String)> {
        match value {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| (k.clone(), crate::expression::write_pebble(v)))
                .collect(),
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{path}[{i}]");
                    match (item.get("key").and_then(Value::as_str), item.get("value")) {
                        (Some(k), Some(v)) => {
                            out.push((k.to_string(), crate::expression::write_pebble(v)))
                        }
                        _ => self.err(
                            FlowErrorKind::InvalidProperty,
                            &p,
                            "a label must have a `key` and a `value`",
                        ),
                    }
                }
                out
            }
            Some(other) => {
                self.err(
                    FlowErrorKind::InvalidProperty,
                    path,
                    format!(
                        "`labels` must be a map or a list of key/value, not {}",
                        describe(other)
                    ),
                );
                Vec::new()
            }
        }
    }

    fn tasks(&mut self, value: Option<&Value>, path: &str, required: bool) -> Vec<Task> {
        match value {
            None | Some(Value::Null) => {
                if required {
                    self.err(
                        FlowErrorKind::MissingProperty,
                        path,
                        format!("`{}` is required", last_segment(path)),
                    );
                }
                Vec::new()
            }
            Some(Value::Array(items)) => {
                if required && items.is_empty() {
                    self.err(
                        FlowErrorKind::MissingProperty,
                        path,
                        format!("`{}` must not be empty", last_segment(path)),
                    );
                }
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, t)| self.task(t, &format!("{path}[{i}]")))
                    .collect()
            }
            Some(other) => {
                self.err(
                    FlowErrorKind::InvalidProperty,
                    path,
                    format!(
                        "`{}` must be a list of tasks, not {}",
                        last_segment(path),
                        describe(other)
                    ),
                );
                Vec::new()
            }
        }
    }

    /// Applies `pluginDefaults`: non-forced values fill gaps, forced ones win.
    fn with_defaults(&self, obj: &Map<String, Value>, type_name: &str) -> Map<String, Value> {
        let mut out = obj.clone();
        for d in &self.defaults {
            if type_name == d.type_name || type_name.starts_with(&format!("{}.", d.type_name)) {
                for (k, v) in &d.values {
                    if d.forced || !out.contains_key(k) {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        out
    }

    fn task(&mut self, value: &Value, path: &str) -> Option<Task> {
        let raw = self.object(value, path, "a task")?;
        let id = self.string(raw, path, "id", true);
        let type_name = self.string(raw, path, "type", true);
        if let Some(id) = &id {
            if !self.task_id_pattern.is_match(id) {
                self.err(
                    FlowErrorKind::InvalidId,
                    &join_path(path, "id"),
                    format!("Invalid task id `{id}`: it must match `^[a-zA-Z0-9][a-zA-Z0-9_-]*`"),
                );
            } else if !self.task_ids.insert(id.clone()) {
                self.err(
                    FlowErrorKind::DuplicateTaskId,
                    &join_path(path, "id"),
                    format!("Duplicate task id with name [{id}]"),
                );
            }
        }
        let type_name = type_name?;
        let Some(task_type) = TaskType::from_name(&type_name) else {
            self.err(
                FlowErrorKind::UnknownType,
                &join_path(path, "type"),
                format!(
                    "Invalid type: {type_name}; supported task types: {}",
                    TaskType::supported_names().join(", ")
                ),
            );
            return None;
        };
        let obj = self.with_defaults(raw, &type_name);
        let obj = &obj;
        self.check_fields(
            obj,
            path,
            &[TASK_FIELDS, task_fields(task_type)],
            &format!("task type {}", task_type.name()),
        );
        let kind = self.task_kind(task_type, obj, path);
        let log_level = match obj.get("logLevel").and_then(Value::as_str) {
            None => None,
            Some(l) => {
                let parsed = LogLevel::parse(l);
                if parsed.is_none() {
                    self.err(
                        FlowErrorKind::InvalidProperty,
                        &join_path(path, "logLevel"),
                        format!("Unknown log level `{l}`"),
                    );
                }
                parsed
            }
        };
        let retry = obj
            .get("retry")
            .and_then(|r| self.retry(r, &join_path(path, "retry")));
        Some(Task {
            id: id.unwrap_or_default(),
            type_name,
            kind: kind?,
            description: self.string(obj, path, "description", false),
            retry,
            timeout: obj.get("timeout").filter(|v| !v.is_null()).cloned(),
            disabled: self.boolean(obj, path, "disabled", false),
            log_level,
            allow_failure: self.boolean(obj, path, "allowFailure", false),
            allow_warning: self.boolean(obj, path, "allowWarning", false),
            run_if: obj.get("runIf").filter(|v| !v.is_null()).cloned(),
        })
    }

    fn required(&mut self, obj: &Map<String, Value>, path: &str, key: &str) -> Option<Value> {
        match obj.get(key) {
            None | Some(Value::Null) => {
                self.err(
                    FlowErrorKind::MissingProperty,
                    &join_path(path, key),
                    format!("`{key}` is required"),
                );
                None
            }
            Some(v) => Some(v.clone()),
        }
    }

    fn flowable(&mut self, obj: &Map<String, Value>, path: &str, tasks_required: bool) -> Flowable {
        Flowable {
            tasks: self.tasks(obj.get("tasks"), &join_path(path, "tasks"), tasks_required),
            errors: self.tasks(obj.get("errors"), &join_path(path, "errors"), false),
            finally: self.tasks(obj.get("finally"), &join_path(path, "finally"), false),
        }
    }

    fn level(&mut self, obj: &Map<String, Value>, path: &str) -> LogLevel {
        match obj.get("level").and_then(Value::as_str) {
            None => LogLevel::Info,
            Some(l) => LogLevel::parse(l).unwrap_or_else(|| {
                self.err(
                    FlowErrorKind::InvalidProperty,
                    &join_path(path, "level"),
                    format!("Unknown log level `{l}`"),
                );
                LogLevel::Info
            }),
        }
    }

    fn task_kind(&mut self, t: TaskType, obj: &Map<String, Value>, path: &str) -> Option<TaskKind> {
        let get = |k: &str| obj.get(k).filter(|v| !v.is_null()).cloned();
        Some(match t {
            TaskType::Log => TaskKind::Log {
                message: self.required(obj, path, "message")?,
                level: self.level(obj, path),
            },
            TaskType::Return => TaskKind::Return {
                format: get("format").unwrap_or(Value::Null),
            },
            TaskType::Echo => TaskKind::Echo {
                format: self.required(obj, path, "format")?,
                level: self.level(obj, path),
            },
            TaskType::OutputValues => TaskKind::OutputValues {
                values: get("values").unwrap_or(Value::Object(Map::new())),
            },
            TaskType::Fail => TaskKind::Fail {
                condition: get("condition"),
                error_message: get("errorMessage")
                    .unwrap_or_else(|| Value::String("Task failure".into())),
            },
            TaskType::Labels => TaskKind::Labels {
                labels: self.required(obj, path, "labels")?,
            },
            TaskType::Sleep => TaskKind::Sleep {
                duration: self.required(obj, path, "duration")?,
            },
            TaskType::Sequential => TaskKind::Sequential(self.flowable(obj, path, true)),
            TaskType::Parallel => TaskKind::Parallel {
                concurrent: self.unsigned(obj, path, "concurrent", 0),
                body: self.flowable(obj, path, true),
            },
            TaskType::If => {
                let condition = self.required(obj, path, "condition");
                let then = self.tasks(obj.get("then"), &join_path(path, "then"), true);
                let else_ = self.tasks(obj.get("else"), &join_path(path, "else"), false);
                let errors = self.tasks(obj.get("errors"), &join_path(path, "errors"), false);
                let finally = self.tasks(obj.get("finally"), &join_path(path, "finally"), false);
                TaskKind::If {
                    condition: condition?,
                    then,
                    else_,
                    errors,
                    finally,
                }
            }
            TaskType::Switch => {
                let value = self.required(obj, path, "value");
                let mut cases = IndexMap::new();
                match obj.get("cases") {
                    None | Some(Value::Null) => {}
                    Some(Value::Object(m)) => {
                        for (k, v) in m {
                            let p = join_path(&join_path(path, "cases"), k);
                            let tasks = self.tasks(Some(v), &p, false);
                            cases.insert(k.clone(), tasks);
                        }
                    }
                    Some(other) => self.err(
                        FlowErrorKind::InvalidProperty,
                        &join_path(path, "cases"),
                        format!(
                            "`cases` must be a map of lists of tasks, not {}",
                            describe(other)
                        ),
                    ),
                }
                let defaults = self.tasks(obj.get("defaults"), &join_path(path, "defaults"), false);
                let errors = self.tasks(obj.get("errors"), &join_path(path, "errors"), false);
                let finally = self.tasks(obj.get("finally"), &join_path(path, "finally"), false);
                TaskKind::Switch {
                    value: value?,
                    cases,
                    defaults,
                    errors,
                    finally,
                }
            }
            TaskType::ForEach => {
                let values = self.required(obj, path, "values");
                let concurrency_limit = self.unsigned(obj, path, "concurrencyLimit", 1);
                TaskKind::ForEach {
                    values: values?,
                    concurrency_limit,
                    body: self.flowable(obj, path, true),
                }
            }
            TaskType::EachSequential => {
                let value = self.required(obj, path, "value");
                TaskKind::EachSequential {
                    value: value?,
                    body: self.flowable(obj, path, true),
                }
            }
            TaskType::EachParallel => {
                let value = self.required(obj, path, "value");
                let concurrent = self.unsigned(obj, path, "concurrent", 0);
                TaskKind::EachParallel {
                    value: value?,
                    concurrent,
                    body: self.flowable(obj, path, true),
                }
            }
            TaskType::Subflow => {
                let namespace = self.required(obj, path, "namespace");
                let flow_id = self.required(obj, path, "flowId");
                let map_of = |p: &mut Self, key: &str| -> IndexMap<String, Value> {
                    match obj.get(key) {
                        None | Some(Value::Null) => IndexMap::new(),
                        Some(Value::Object(m)) => {
                            m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
                        }
                        Some(other) => {
                            p.err(
                                FlowErrorKind::InvalidProperty,
                                &join_path(path, key),
                                format!("`{key}` must be a map, not {}", describe(other)),
                            );
                            IndexMap::new()
                        }
                    }
                };
                let inputs = map_of(self, "inputs");
                let outputs = map_of(self, "outputs");
                let labels = self
                    .labels(obj.get("labels"), &join_path(path, "labels"))
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect();
                let revision = obj.get("revision").and_then(Value::as_i64);
                TaskKind::Subflow(SubflowTask {
                    namespace: namespace?,
                    flow_id: flow_id?,
                    revision,
                    inputs,
                    labels,
                    wait: self.boolean(obj, path, "wait", true),
                    transmit_failed: self.boolean(obj, path, "transmitFailed", true),
                    inherit_labels: self.boolean(obj, path, "inheritLabels", false),
                    outputs,
                    schedule_date: get("scheduleDate"),
                })
            }
            TaskType::Pause => {
                let on_resume = match obj.get("onResume") {
                    Some(Value::Array(items)) => items
                        .iter()
                        .enumerate()
                        .filter_map(|(i, v)| {
                            self.input(v, &format!("{}[{i}]", join_path(path, "onResume")))
                        })
                        .collect(),
                    None | Some(Value::Null) => Vec::new(),
                    Some(other) => {
                        self.err(
                            FlowErrorKind::InvalidProperty,
                            &join_path(path, "onResume"),
                            format!(
                                "`onResume` must be a list of inputs, not {}",
                                describe(other)
                            ),
                        );
                        Vec::new()
                    }
                };
                TaskKind::Pause(PauseTask {
                    delay: get("delay").or_else(|| get("pauseDuration")),
                    timeout: get("timeout"),
                    on_resume,
                    body: self.flowable(obj, path, false),
                })
            }
            TaskType::HttpRequest => {
                let uri = self.required(obj, path, "uri");
                let headers = match obj.get("headers") {
                    Some(Value::Object(m)) => {
                        m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
                    }
                    _ => IndexMap::new(),
                };
                TaskKind::HttpRequest(HttpRequestTask {
                    uri: uri?,
                    method: get("method").unwrap_or_else(|| Value::String("GET".into())),
                    body: get("body"),
                    form_data: get("formData"),
                    content_type: get("contentType"),
                    headers,
                    allow_failed: self.boolean(obj, path, "allowFailed", false),
                })
            }
        })
    }

    fn retry(&mut self, value: &Value, path: &str) -> Option<Retry> {
        let obj = self.object(value, path, "`retry`")?;
        let kind_name = self.string(obj, path, "type", true)?;
        let s = |p: &mut Self, k: &str, req: bool| p.string(obj, path, k, req);
        let kind = match kind_name.as_str() {
            "constant" => RetryKind::Constant {
                interval: s(self, "interval", true)?,
            },
            "exponential" => RetryKind::Exponential {
                interval: s(self, "interval", true)?,
                max_interval: s(self, "maxInterval", true)?,
                delay_factor: obj.get("delayFactor").and_then(Value::as_f64),
            },
            "random" => RetryKind::Random {
                min_interval: s(self, "minInterval", true)?,
                max_interval: s(self, "maxInterval", true)?,
            },
            other => {
                self.err(
                    FlowErrorKind::InvalidProperty,
                    &join_path(path, "type"),
                    format!("Unknown retry type `{other}`: use constant, exponential or random"),
                );
                return None;
            }
        };
        Some(Retry {
            kind,
            max_attempt: obj
                .get("maxAttempt")
                .or_else(|| obj.get("maxAttempts"))
                .and_then(Value::as_u64)
                .map(|n| n as u32),
            max_duration: self.string(obj, path, "maxDuration", false),
            warning_on_retry: self.boolean(obj, path, "warningOnRetry", false),
        })
    }

    fn input(&mut self, value: &Value, path: &str) -> Option<InputDefinition> {
        let obj = self.object(value, path, "an input")?;
        let id = obj
            .get("id")
            .or_else(|| obj.get("name"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let Some(id) = id else {
            self.err(
                FlowErrorKind::MissingProperty,
                &join_path(path, "id"),
                "`id` is required",
            );
            return None;
        };
        let id_pattern = Regex::new(r"^[a-zA-Z0-9][.a-zA-Z0-9_-]*$").ok()?;
        if !id_pattern.is_match(&id) {
            self.err(
                FlowErrorKind::InvalidId,
                &join_path(path, "id"),
                format!("Invalid input id `{id}`: it must match `^[a-zA-Z0-9][.a-zA-Z0-9_-]*`"),
            );
        }
        let type_name = self.string(obj, path, "type", true)?;
        let Some(input_type) = InputType::from_name(&type_name) else {
            self.err(
                FlowErrorKind::UnknownType,
                &join_path(path, "type"),
                format!(
                    "Invalid input type `{type_name}`; supported: STRING, ENUM, SELECT, MULTISELECT, INT, FLOAT, BOOLEAN, BOOL, DATETIME, DATE, TIME, DURATION, FILE, JSON, YAML, URI, SECRET, ARRAY, EMAIL"
                ),
            );
            return None;
        };
        let values = obj
            .get("values")
            .or_else(|| obj.get("options"))
            .and_then(Value::as_array)
            .map(|a| a.iter().map(crate::expression::write_pebble).collect());
        let item_type = match obj.get("itemType").and_then(Value::as_str) {
            None => None,
            Some(t) => {
                let parsed = InputType::from_name(t);
                if parsed.is_none() {
                    self.err(
                        FlowErrorKind::UnknownType,
                        &join_path(path, "itemType"),
                        format!("Invalid item type `{t}`"),
                    );
                }
                parsed
            }
        };
        let depends_on = obj
            .get("dependsOn")
            .and_then(Value::as_object)
            .map(|d| DependsOn {
                inputs: d
                    .get("inputs")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
                condition: d
                    .get("condition")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            });
        let mut raw = obj.clone();
        raw.remove("name");
        raw.insert("id".into(), Value::String(id.clone()));
        let non_null = |k: &str| obj.get(k).filter(|v| !v.is_null()).cloned();
        Some(InputDefinition {
            id,
            input_type,
            description: self.string(obj, path, "description", false),
            display_name: self.string(obj, path, "displayName", false),
            required: self.boolean(obj, path, "required", true),
            defaults: non_null("defaults"),
            validator: self.string(obj, path, "validator", false),
            min: non_null("min"),
            max: non_null("max"),
            after: non_null("after"),
            before: non_null("before"),
            values,
            allow_custom_value: self.boolean(obj, path, "allowCustomValue", false),
            item_type,
            extension: self.string(obj, path, "extension", false),
            depends_on,
            raw,
        })
    }

    fn trigger(&mut self, value: &Value, path: &str) -> Option<Trigger> {
        let obj = self.object(value, path, "a trigger")?;
        let id = self.string(obj, path, "id", true);
        let type_name = self.string(obj, path, "type", true)?;
        let Some(trigger_type) = TriggerType::from_name(&type_name) else {
            self.err(
                FlowErrorKind::UnknownType,
                &join_path(path, "type"),
                format!(
                    "Invalid type: {type_name}; supported trigger types: {}",
                    TriggerType::supported_names().join(", ")
                ),
            );
            return None;
        };
        match trigger_type {
            TriggerType::Schedule => {
                if let Some(cron) = self.string(obj, path, "cron", true) {
                    let with_seconds = obj
                        .get("withSeconds")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    if let Err(e) = parse_cron(&cron, with_seconds) {
                        self.err(
                            FlowErrorKind::InvalidCron,
                            &join_path(path, "cron"),
                            format!("Invalid cron expression `{cron}`: {e}"),
                        );
                    }
                }
                if let Some(tz) = obj.get("timezone").and_then(Value::as_str) {
                    if tz.parse::<chrono_tz::Tz>().is_err() {
                        self.err(
                            FlowErrorKind::InvalidProperty,
                            &join_path(path, "timezone"),
                            format!("Unknown time zone `{tz}`"),
                        );
                    }
                }
            }
            TriggerType::Webhook => {
                self.string(obj, path, "key", true);
            }
            TriggerType::Flow => {}
        }
        Some(Trigger {
            id: id?,
            type_name,
            trigger_type,
            disabled: self.boolean(obj, path, "disabled", false),
            properties: obj.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        })
    }
}

/// Parses a cron expression as Schedule triggers do (5 fields, or 6 with seconds;
/// `@daily`-style nicknames).
pub fn parse_cron(expression: &str, with_seconds: bool) -> Result<croner::Cron, String> {
    use croner::parser::{CronParser, Seconds, Year};
    let seconds = if with_seconds {
        Seconds::Required
    } else {
        Seconds::Disallowed
    };
    CronParser::builder()
        .seconds(seconds)
        .year(Year::Disallowed)
        .build()
        .parse(expression)
        .map_err(|e| e.to_string())
}

fn last_segment(path: &str) -> &str {
    let tail = path.rsplit('.').next().unwrap_or(path);
    tail.split('[').next().unwrap_or(tail)
}

fn parse_document(doc: &Value, positions: &Positions) -> Result<Flow, Vec<FlowError>> {
    let mut p = Parser {
        positions,
        errors: Vec::new(),
        defaults: Vec::new(),
        task_ids: HashSet::new(),
        task_id_pattern: Regex::new(r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$")
            .map_err(|e| vec![error(FlowErrorKind::Yaml, "", None, e.to_string())])?,
    };
    let Value::Object(root) = doc else {
        return Err(vec![error(
            FlowErrorKind::Yaml,
            "",
            Some((1, 1)),
            format!("A flow must be a map, not {}", describe(doc)),
        )]);
    };
    p.check_fields(root, "", &[FLOW_FIELDS], "a flow");
    let id = p.string(root, "", "id", true);
    let namespace = p.string(root, "", "namespace", true);
    if let Some(id) = &id {
        let pattern = Regex::new(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")
            .map_err(|e| vec![error(FlowErrorKind::Yaml, "", None, e.to_string())])?;
        if !pattern.is_match(id) || id.len() > 100 {
            p.err(FlowErrorKind::InvalidId, "id", format!("Invalid flow id `{id}`: it must match `^[a-zA-Z0-9][a-zA-Z0-9._-]*` (at most 100 characters)"));
        }
    }
    if let Some(ns) = &namespace {
        let pattern = Regex::new(r"^[a-z0-9][a-z0-9._-]*$")
            .map_err(|e| vec![error(FlowErrorKind::Yaml, "", None, e.to_string())])?;
        if !pattern.is_match(ns) {
            p.err(
                FlowErrorKind::InvalidId,
                "namespace",
                format!("Invalid namespace `{ns}`: it must match `^[a-z0-9][a-z0-9._-]*`"),
            );
        }
    }
    // Plugin defaults first: they shape every task below.
    for key in ["taskDefaults", "pluginDefaults"] {
        if let Some(Value::Array(items)) = root.get(key) {
            for (i, item) in items.iter().enumerate() {
                let path = format!("{key}[{i}]");
                if let Some(obj) = p.object(item, &path, "a plugin default") {
                    let type_name = p.string(obj, &path, "type", true).unwrap_or_default();
                    let forced = p.boolean(obj, &path, "forced", false);
                    let values = obj
                        .get("values")
                        .and_then(Value::as_object)
                        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                        .unwrap_or_default();
                    p.defaults.push(PluginDefault {
                        type_name,
                        forced,
                        values,
                    });
                }
            }
        }
    }
    let labels = p.labels(root.get("labels"), "labels");
    let inputs = match root.get("inputs") {
        Some(Value::Array(items)) => {
            let defs: Vec<InputDefinition> = items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| p.input(v, &format!("inputs[{i}]")))
                .collect();
            let mut seen = HashSet::new();
            for (i, d) in defs.iter().enumerate() {
                if !seen.insert(d.id.clone()) {
                    p.err(
                        FlowErrorKind::InvalidProperty,
                        &format!("inputs[{i}].id"),
                        format!("Duplicate input id `{}`", d.id),
                    );
                }
            }
            defs
        }
        None | Some(Value::Null) => Vec::new(),
        Some(other) => {
            p.err(
                FlowErrorKind::InvalidProperty,
                "inputs",
                format!("`inputs` must be a list, not {}", describe(other)),
            );
            Vec::new()
        }
    };
    let variables = match root.get("variables") {
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => IndexMap::new(),
    };
    let tasks = p.tasks(root.get("tasks"), "tasks", true);
    let errors = p.tasks(root.get("errors"), "errors", false);
    let finally = p.tasks(root.get("finally"), "finally", false);
    let after_execution = p.tasks(root.get("afterExecution"), "afterExecution", false);
    let outputs = match root.get("outputs") {
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                let path = format!("outputs[{i}]");
                let obj = p.object(v, &path, "an output")?;
                let id = p.string(obj, &path, "id", true)?;
                let type_name = p.string(obj, &path, "type", true)?;
                if InputType::from_name(&type_name).is_none() {
                    p.err(
                        FlowErrorKind::UnknownType,
                        &join_path(&path, "type"),
                        format!("Invalid output type `{type_name}`"),
                    );
                }
                let value = obj.get("value").cloned().unwrap_or(Value::Null);
                let required = p.boolean(obj, &path, "required", true);
                Some(FlowOutput {
                    id,
                    type_name,
                    value,
                    required,
                })
            })
            .collect(),
        _ => Vec::new(),
    };
    let triggers = match root.get("triggers") {
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| p.trigger(v, &format!("triggers[{i}]")))
            .collect(),
        _ => Vec::new(),
    };
    let retry = root.get("retry").and_then(|r| p.retry(r, "retry"));
    let concurrency = root.get("concurrency").and_then(|c| {
        let obj = p.object(c, "concurrency", "`concurrency`")?;
        let limit = p.unsigned(obj, "concurrency", "limit", 0);
        if limit == 0 {
            p.err(
                FlowErrorKind::InvalidProperty,
                "concurrency.limit",
                "`limit` must be greater than 0",
            );
        }
        let behavior = match obj
            .get("behavior")
            .and_then(Value::as_str)
            .unwrap_or("QUEUE")
        {
            "QUEUE" => ConcurrencyBehavior::Queue,
            "CANCEL" => ConcurrencyBehavior::Cancel,
            "FAIL" => ConcurrencyBehavior::Fail,
            other => {
                p.err(
                    FlowErrorKind::InvalidProperty,
                    "concurrency.behavior",
                    format!("Unknown behavior `{other}`: use QUEUE, CANCEL or FAIL"),
                );
                ConcurrencyBehavior::Queue
            }
        };
        Some(Concurrency { limit, behavior })
    });
    let disabled = p.boolean(root, "", "disabled", false);
    let description = p.string(root, "", "description", false);
    let timeout = p.string(root, "", "timeout", false);
    if !p.errors.is_empty() {
        p.errors
            .sort_by_key(|e| (e.line.unwrap_or(usize::MAX), e.column.unwrap_or(0)));
        return Err(p.errors);
    }
    Ok(Flow {
        id: id.unwrap_or_default(),
        namespace: namespace.unwrap_or_default(),
        revision: root.get("revision").and_then(Value::as_i64),
        description,
        labels,
        inputs,
        variables,
        tasks,
        errors,
        finally,
        after_execution,
        outputs,
        triggers,
        disabled,
        retry,
        timeout,
        concurrency,
        plugin_defaults: p.defaults,
    })
}
