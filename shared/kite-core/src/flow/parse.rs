//! Parsing and validating Kestra flow YAML into the [`Flow`] model.
//!
//! Every error names the field path and, when the source has it, the line and
//! column, so a person can fix the flow without guessing. Positions are only
//! computed when a flow is refused: valid flows are parsed once.

use std::collections::HashSet;
use std::sync::LazyLock;

use indexmap::IndexMap;
use regex::Regex;
use serde_json::{Map, Value};

use super::defaults;
use super::position::{lookup, positions};
use super::validate;
use super::{
    Concurrency, ConcurrencyBehavior, Flow, FlowOutput, Flowable, HttpRequestTask, LogLevel, PauseTask,
    PluginDefault, Retry, RetryBehavior, RetryKind, SubflowTask, Task, TaskKind, TaskType, Trigger,
    TriggerType,
};
use crate::expression::write_pebble;
use crate::input_definition::{DependsOn, InputDefinition, InputType};

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
    /// The source is not valid YAML, or not a single flow.
    Yaml,
    MissingProperty,
    /// A property has the wrong kind of value or an unaccepted value.
    InvalidProperty,
    UnknownProperty,
    /// Unknown task, trigger, input or output type.
    UnknownType,
    DuplicateTaskId,
    InvalidId,
    InvalidCron,
    DuplicateTriggerId,
    /// Two inputs (or two outputs) share an id.
    DuplicateInputId,
    /// `dependsOn` names a missing input or forms a cycle.
    InvalidDependency,
    /// A Subflow task starts the flow it belongs to.
    RecursiveSubflow,
}

/// Parses and validates one flow from its YAML source.
pub fn parse_flow(source: &str) -> Result<Flow, Vec<FlowError>> {
    let docs = read_documents(source);
    if let Some(Err(e)) = docs.iter().map(|(_, d)| d).find(|d| d.is_err()) {
        return Err(vec![e.clone()]);
    }
    match docs.as_slice() {
        [(index, Ok(doc))] => parse_document(doc).map_err(|e| locate(e, source, *index)),
        [] => Err(vec![error(FlowErrorKind::Yaml, "", "The flow is empty")]),
        more => Err(vec![error(
            FlowErrorKind::Yaml,
            "",
            format!("Expected one flow but found {} YAML documents", more.len()),
        )]),
    }
}

/// Parses every document of a multi-document YAML source (`---` separated),
/// e.g. for the validate endpoint. Empty documents are skipped; a YAML syntax
/// error ends the list.
pub fn parse_flows(source: &str) -> Vec<Result<Flow, Vec<FlowError>>> {
    read_documents(source)
        .into_iter()
        .map(|(index, doc)| match doc {
            Ok(doc) => parse_document(&doc).map_err(|e| locate(e, source, index)),
            Err(e) => Err(vec![e]),
        })
        .collect()
}

/// The flow source as JSON (for API responses), without validating it.
pub fn flow_source_to_json(source: &str) -> Result<Value, FlowError> {
    let yaml: serde_yaml::Value = serde_yaml::from_str(source).map_err(yaml_error)?;
    Ok(yaml_to_json(yaml))
}

/// Kestra's validation `infos`: one line per legacy type name the flow uses
/// (tasks and triggers), e.g. `io.kestra.core.tasks.log.Log is replaced by
/// io.kestra.plugin.core.log.Log`.
pub fn relocations(flow: &Flow) -> Vec<String> {
    let tasks = flow
        .all_tasks()
        .into_iter()
        .map(|t| (t.type_name.as_str(), t.task_type().name()));
    let triggers = flow
        .triggers
        .iter()
        .map(|t| (t.type_name.as_str(), t.trigger_type.name()));
    let mut out: Vec<String> = Vec::new();
    for (written, current) in tasks.chain(triggers) {
        let line = format!("{written} is replaced by {current}");
        if written != current && !out.contains(&line) {
            out.push(line);
        }
    }
    out
}

/// Every non-empty document of a multi-document source as JSON, numbered as
/// [`parse_flows`] numbers its results (e.g. to name the flow id and namespace
/// of an invalid document in a validation report).
pub fn flow_documents_to_json(source: &str) -> Vec<Result<Value, FlowError>> {
    read_documents(source).into_iter().map(|(_, doc)| doc).collect()
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

/// Non-empty documents, numbered as [`positions`] numbers them.
fn read_documents(source: &str) -> Vec<(usize, Result<Value, FlowError>)> {
    use serde::Deserialize;
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(source) {
        let index = out.len();
        match serde_yaml::Value::deserialize(doc) {
            Ok(value) if value.is_null() => {}
            Ok(value) => out.push((index, Ok(yaml_to_json(value)))),
            Err(e) => {
                out.push((index, Err(yaml_error(e))));
                break;
            }
        }
    }
    out
}

/// Fills in line and column from the source, and orders errors as they appear.
fn locate(mut errors: Vec<FlowError>, source: &str, doc_index: usize) -> Vec<FlowError> {
    let docs = positions(source);
    if let Some(pos) = docs.get(doc_index) {
        for e in errors.iter_mut().filter(|e| e.line.is_none()) {
            if let Some((line, column)) = lookup(pos, &e.path) {
                e.line = Some(line);
                e.column = Some(column);
            }
        }
    }
    errors.sort_by_key(|e| (e.line.unwrap_or(usize::MAX), e.column.unwrap_or(0)));
    errors
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
                    other => write_pebble(&yaml_to_json(other)),
                };
                out.insert(key, yaml_to_json(v));
            }
            Value::Object(out)
        }
        Y::Tagged(t) => yaml_to_json(t.value),
    }
}

pub(super) fn error(kind: FlowErrorKind, path: &str, message: impl Into<String>) -> FlowError {
    FlowError {
        kind,
        path: path.to_string(),
        line: None,
        column: None,
        message: message.into(),
    }
}

// Kestra's `@Pattern`s: Flow.id, Flow.namespace, TaskInterface.id / AbstractTrigger.id,
// Input.id (a `.` nests the input under `inputs`).
const FLOW_ID_PATTERN: &str = "^[a-zA-Z0-9][a-zA-Z0-9._-]*";
const NAMESPACE_PATTERN: &str = "^[a-z0-9][a-z0-9._-]*";
const TASK_ID_PATTERN: &str = "^[a-zA-Z0-9][a-zA-Z0-9_-]*";
const INPUT_ID_PATTERN: &str = "^[a-zA-Z0-9][.a-zA-Z0-9_-]*";

fn full_match(pattern: &str) -> Regex {
    // The patterns above are constants known to compile.
    Regex::new(&format!("{pattern}$")).unwrap_or_else(|_| unreachable!("static pattern"))
}

static FLOW_ID: LazyLock<Regex> = LazyLock::new(|| full_match(FLOW_ID_PATTERN));
static NAMESPACE: LazyLock<Regex> = LazyLock::new(|| full_match(NAMESPACE_PATTERN));
static TASK_ID: LazyLock<Regex> = LazyLock::new(|| full_match(TASK_ID_PATTERN));
static INPUT_ID: LazyLock<Regex> = LazyLock::new(|| full_match(INPUT_ID_PATTERN));

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

/// Execution states (`State.Type`), as triggers list them.
const STATES: &[&str] = &[
    "CREATED",
    "RUNNING",
    "PAUSED",
    "RESTARTED",
    "KILLING",
    "SUCCESS",
    "WARNING",
    "FAILED",
    "KILLED",
    "CANCELLED",
    "QUEUED",
    "RETRYING",
    "RETRIED",
    "SKIPPED",
    "BREAKPOINT",
    "SUBMITTED",
    "RESUBMITTED",
];

const TRIGGER_FIELDS: &[&str] = &[
    "id",
    "type",
    "description",
    "conditions",
    "disabled",
    "workerGroup",
    "logLevel",
    "labels",
    "stopAfter",
    "logToFile",
    "minLogLevel",
    "when",
];

fn trigger_fields(t: TriggerType) -> &'static [&'static str] {
    match t {
        TriggerType::Webhook => &[
            "key",
            "inputs",
            "wait",
            "returnOutputs",
            "responseContentType",
            "responseCode",
            "fetchType",
        ],
        TriggerType::Schedule => &[
            "cron",
            "withSeconds",
            "timezone",
            "inputs",
            "scheduleConditions",
            "lateMaximumDelay",
            "recoverMissedSchedules",
            "backfill",
            "interval",
        ],
        TriggerType::Flow => &[
            "states",
            "inputs",
            "preconditions",
            "dependsOn",
            "window",
            "mode",
            "minSatisfied",
        ],
    }
}

const OUTPUT_FIELDS: &[&str] = &["id", "type", "value", "description", "displayName", "required"];

/// Every property an input type declares (`Input` and its subclasses).
const INPUT_FIELDS: &[&str] = &[
    "id",
    "name",
    "type",
    "description",
    "displayName",
    "required",
    "defaults",
    "prefill",
    "dependsOn",
    "validator",
    "min",
    "max",
    "after",
    "before",
    "values",
    "options",
    "expression",
    "allowCustomValue",
    "isRadio",
    "autoSelectFirst",
    "itemType",
    "extension",
    "allowedFileExtensions",
];

const RETRY_FIELDS: &[&str] = &[
    "type",
    "interval",
    "maxInterval",
    "delayFactor",
    "minInterval",
    "maxAttempt",
    "maxAttempts",
    "maxDuration",
    "warningOnRetry",
    "behavior",
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

pub(super) fn describe(v: &Value) -> &'static str {
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

fn last_segment(path: &str) -> &str {
    let tail = path.rsplit('.').next().unwrap_or(path);
    tail.split('[').next().unwrap_or(tail)
}

fn present<'v>(obj: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    obj.get(key).filter(|v| !v.is_null())
}

struct Parser {
    errors: Vec<FlowError>,
    defaults: defaults::Defaults,
    task_ids: HashSet<String>,
    flow_id: Option<String>,
    namespace: Option<String>,
}

impl Parser {
    fn err(&mut self, kind: FlowErrorKind, path: &str, message: impl Into<String>) {
        self.errors.push(error(kind, path, message));
    }

    fn string(&mut self, obj: &Map<String, Value>, path: &str, key: &str, required: bool) -> Option<String> {
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
            Some(v @ (Value::Number(_) | Value::Bool(_))) => Some(write_pebble(v)),
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
            // Kestra reads YAML 1.1, where yes/no/on/off are booleans too.
            Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
                "true" | "yes" | "y" | "on" => true,
                "false" | "no" | "n" | "off" => false,
                _ => {
                    self.err(
                        FlowErrorKind::InvalidProperty,
                        &join_path(path, key),
                        format!("`{key}` must be a boolean (true or false), not `{s}`"),
                    );
                    default
                }
            },
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

    fn unsigned(&mut self, obj: &Map<String, Value>, path: &str, key: &str) -> Option<u32> {
        match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n <= u64::from(u32::MAX)) => {
                n.as_u64().and_then(|n| u32::try_from(n).ok())
            }
            Some(other) => {
                self.err(
                    FlowErrorKind::InvalidProperty,
                    &join_path(path, key),
                    format!(
                        "`{key}` must be a positive integer, not {}",
                        match other {
                            Value::Number(n) => n.to_string(),
                            v => describe(v).to_string(),
                        }
                    ),
                );
                None
            }
        }
    }

    fn object<'v>(&mut self, value: &'v Value, path: &str, what: &str) -> Option<&'v Map<String, Value>> {
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

    /// A list property; anything else but absence is reported.
    fn list<'v>(&mut self, value: Option<&'v Value>, path: &str, what: &str) -> &'v [Value] {
        match value {
            None | Some(Value::Null) => &[],
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.err(
                    FlowErrorKind::InvalidProperty,
                    path,
                    format!(
                        "`{}` must be a list of {what}, not {}",
                        last_segment(path),
                        describe(other)
                    ),
                );
                &[]
            }
        }
    }

    /// Refuses properties the plugin does not declare, as Kestra's strict
    /// parsing does, in Jackson's words plus a hint.
    fn check_fields(&mut self, obj: &Map<String, Value>, path: &str, allowed: &[&[&str]], what: &str) {
        let known: Vec<&str> = allowed.iter().flat_map(|s| s.iter().copied()).collect();
        for key in obj.keys() {
            if known.contains(&key.as_str()) {
                continue;
            }
            let hint = match closest_property(key, &known) {
                Some(k) => format!("did you mean \"{k}\"?"),
                None => {
                    let mut sorted = known.clone();
                    sorted.sort_unstable();
                    format!("known properties: {}", sorted.join(", "))
                }
            };
            self.err(
                FlowErrorKind::UnknownProperty,
                &join_path(path, key),
                format!("Unrecognized field \"{key}\" ({what}), not marked as ignorable; {hint}"),
            );
        }
    }

    fn labels(&mut self, value: Option<&Value>, path: &str) -> Vec<(String, String)> {
        match value {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), write_pebble(v))).collect(),
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{path}[{i}]");
                    match (item.get("key").and_then(Value::as_str), item.get("value")) {
                        (Some(k), Some(v)) => out.push((k.to_string(), write_pebble(v))),
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
        if required {
            match value {
                None | Some(Value::Null) => {
                    self.err(
                        FlowErrorKind::MissingProperty,
                        path,
                        format!("`{}` is required", last_segment(path)),
                    );
                    return Vec::new();
                }
                Some(Value::Array(items)) if items.is_empty() => {
                    self.err(
                        FlowErrorKind::MissingProperty,
                        path,
                        format!("`{}` must not be empty", last_segment(path)),
                    );
                    return Vec::new();
                }
                _ => {}
            }
        }
        self.list(value, path, "tasks")
            .iter()
            .enumerate()
            .filter_map(|(i, t)| self.task(t, &format!("{path}[{i}]")))
            .collect()
    }

    fn task(&mut self, value: &Value, path: &str) -> Option<Task> {
        let raw = self.object(value, path, "a task")?;
        let id = self.string(raw, path, "id", true);
        let type_name = self.string(raw, path, "type", true);
        if let Some(id) = &id {
            if !TASK_ID.is_match(id) {
                self.err(
                    FlowErrorKind::InvalidId,
                    &join_path(path, "id"),
                    format!("Invalid task id `{id}`: it must match \"{TASK_ID_PATTERN}\""),
                );
            } else if id.len() > 256 {
                self.err(
                    FlowErrorKind::InvalidId,
                    &join_path(path, "id"),
                    "Task id must be at most 256 characters",
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
            let supported = TaskType::supported_names();
            self.err(
                FlowErrorKind::UnknownType,
                &join_path(path, "type"),
                format!(
                    "Invalid type: {type_name}{}; supported task types: {}",
                    did_you_mean(&type_name, &supported),
                    supported.join(", ")
                ),
            );
            return None;
        };
        // Only what the user wrote is checked for unknown fields: a prefix default
        // may carry properties meant for other types.
        self.check_fields(
            raw,
            path,
            &[TASK_FIELDS, task_fields(task_type)],
            &format!("class {}", task_type.name()),
        );
        let merged = self.defaults.apply(raw, &type_name);
        let obj = merged.as_ref().unwrap_or(raw);
        let kind = self.task_kind(task_type, obj, path);
        let log_level = match present(obj, "logLevel") {
            None => None,
            Some(l) => {
                let parsed = l.as_str().and_then(LogLevel::parse);
                if parsed.is_none() {
                    self.err(
                        FlowErrorKind::InvalidProperty,
                        &join_path(path, "logLevel"),
                        format!(
                            "Unknown log level `{}`: use TRACE, DEBUG, INFO, WARN or ERROR",
                            write_pebble(l)
                        ),
                    );
                }
                parsed
            }
        };
        let retry = present(obj, "retry").and_then(|r| self.retry(r, &join_path(path, "retry")));
        self.duration(obj, path, "timeout");
        let description = self.string(obj, path, "description", false);
        let disabled = self.boolean(obj, path, "disabled", false);
        let allow_failure = self.boolean(obj, path, "allowFailure", false);
        let allow_warning = self.boolean(obj, path, "allowWarning", false);
        Some(Task {
            id: id.unwrap_or_default(),
            type_name,
            kind: kind?,
            description,
            retry,
            timeout: present(obj, "timeout").cloned(),
            disabled,
            log_level,
            allow_failure,
            allow_warning,
            run_if: present(obj, "runIf").cloned(),
        })
    }

    fn required(&mut self, obj: &Map<String, Value>, path: &str, key: &str) -> Option<Value> {
        match present(obj, key) {
            None => {
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
        match present(obj, "level") {
            None => LogLevel::Info,
            Some(l) => l.as_str().and_then(LogLevel::parse).unwrap_or_else(|| {
                self.err(
                    FlowErrorKind::InvalidProperty,
                    &join_path(path, "level"),
                    format!(
                        "Unknown log level `{}`: use TRACE, DEBUG, INFO, WARN or ERROR",
                        write_pebble(l)
                    ),
                );
                LogLevel::Info
            }),
        }
    }

    fn map_of(&mut self, obj: &Map<String, Value>, path: &str, key: &str) -> IndexMap<String, Value> {
        match obj.get(key) {
            None | Some(Value::Null) => IndexMap::new(),
            Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Some(other) => {
                self.err(
                    FlowErrorKind::InvalidProperty,
                    &join_path(path, key),
                    format!("`{key}` must be a map, not {}", describe(other)),
                );
                IndexMap::new()
            }
        }
    }

    fn task_kind(&mut self, t: TaskType, obj: &Map<String, Value>, path: &str) -> Option<TaskKind> {
        let get = |k: &str| present(obj, k).cloned();
        Some(match t {
            TaskType::Log => {
                let message = self.required(obj, path, "message");
                TaskKind::Log {
                    level: self.level(obj, path),
                    message: message?,
                }
            }
            TaskType::Return => TaskKind::Return {
                format: get("format").unwrap_or(Value::Null),
            },
            TaskType::Echo => {
                let format = self.required(obj, path, "format");
                TaskKind::Echo {
                    level: self.level(obj, path),
                    format: format?,
                }
            }
            TaskType::OutputValues => TaskKind::OutputValues {
                values: match get("values") {
                    None => Value::Object(Map::new()),
                    Some(v @ Value::Object(_)) => v,
                    Some(other) => {
                        self.err(
                            FlowErrorKind::InvalidProperty,
                            &join_path(path, "values"),
                            format!("`values` must be a map, not {}", describe(&other)),
                        );
                        return None;
                    }
                },
            },
            TaskType::Fail => TaskKind::Fail {
                condition: get("condition"),
                error_message: get("errorMessage").unwrap_or_else(|| Value::String("Task failure".into())),
            },
            TaskType::Labels => {
                let labels = self.required(obj, path, "labels")?;
                if !matches!(labels, Value::Object(_) | Value::Array(_) | Value::String(_)) {
                    self.err(
                        FlowErrorKind::InvalidProperty,
                        &join_path(path, "labels"),
                        format!(
                            "`labels` must be a map or a list of key/value, not {}",
                            describe(&labels)
                        ),
                    );
                    return None;
                }
                TaskKind::Labels { labels }
            }
            TaskType::Sleep => TaskKind::Sleep {
                duration: {
                    self.duration(obj, path, "duration");
                    self.required(obj, path, "duration")?
                },
            },
            TaskType::Sequential => TaskKind::Sequential(self.flowable(obj, path, true)),
            TaskType::Parallel => TaskKind::Parallel {
                concurrent: self.unsigned(obj, path, "concurrent").unwrap_or(0),
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
                        format!("`cases` must be a map of lists of tasks, not {}", describe(other)),
                    ),
                }
                let defaults = self.tasks(obj.get("defaults"), &join_path(path, "defaults"), false);
                let errors = self.tasks(obj.get("errors"), &join_path(path, "errors"), false);
                let finally = self.tasks(obj.get("finally"), &join_path(path, "finally"), false);
                let has_tasks = |key: &str| match present(obj, key) {
                    Some(Value::Object(m)) => !m.is_empty(),
                    Some(Value::Array(a)) => !a.is_empty(),
                    _ => false,
                };
                if !has_tasks("cases") && !has_tasks("defaults") {
                    self.err(
                        FlowErrorKind::MissingProperty,
                        &join_path(path, "cases"),
                        "No task defined, neither cases or default have any tasks",
                    );
                }
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
                let concurrency_limit = self.unsigned(obj, path, "concurrencyLimit").unwrap_or(1);
                TaskKind::ForEach {
                    body: self.flowable(obj, path, true),
                    values: values?,
                    concurrency_limit,
                }
            }
            TaskType::EachSequential => {
                let value = self.required(obj, path, "value");
                TaskKind::EachSequential {
                    body: self.flowable(obj, path, true),
                    value: value?,
                }
            }
            TaskType::EachParallel => {
                let value = self.required(obj, path, "value");
                let concurrent = self.unsigned(obj, path, "concurrent").unwrap_or(0);
                TaskKind::EachParallel {
                    body: self.flowable(obj, path, true),
                    value: value?,
                    concurrent,
                }
            }
            TaskType::Subflow => self.subflow(obj, path)?,
            TaskType::Pause => {
                let on_resume_path = join_path(path, "onResume");
                let on_resume = self.inputs(obj.get("onResume"), &on_resume_path);
                // `timeout` is checked with the properties every task shares.
                for key in ["delay", "pauseDuration"] {
                    self.duration(obj, path, key);
                }
                TaskKind::Pause(PauseTask {
                    delay: get("delay").or_else(|| get("pauseDuration")),
                    timeout: get("timeout"),
                    on_resume,
                    body: self.flowable(obj, path, false),
                })
            }
            TaskType::HttpRequest => {
                let uri = self.required(obj, path, "uri");
                let headers = self.map_of(obj, path, "headers");
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

    fn subflow(&mut self, obj: &Map<String, Value>, path: &str) -> Option<TaskKind> {
        let namespace = self.required(obj, path, "namespace");
        let flow_id = self.required(obj, path, "flowId");
        if let (Some(Value::String(ns)), Some(Value::String(id)), Some(own_ns), Some(own_id)) =
            (&namespace, &flow_id, &self.namespace, &self.flow_id)
        {
            if ns == own_ns && id == own_id {
                let message = format!("Recursive call to flow [{ns}.{id}]");
                self.err(FlowErrorKind::RecursiveSubflow, path, message);
            }
        }
        let inputs = self.map_of(obj, path, "inputs");
        let outputs = self.map_of(obj, path, "outputs");
        let labels = self
            .labels(obj.get("labels"), &join_path(path, "labels"))
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        let revision = match present(obj, "revision") {
            None => None,
            Some(v) => match v.as_i64() {
                Some(r) => Some(r),
                None => {
                    self.err(
                        FlowErrorKind::InvalidProperty,
                        &join_path(path, "revision"),
                        format!("`revision` must be an integer, not {}", describe(v)),
                    );
                    None
                }
            },
        };
        Some(TaskKind::Subflow(SubflowTask {
            namespace: namespace?,
            flow_id: flow_id?,
            revision,
            inputs,
            labels,
            wait: self.boolean(obj, path, "wait", true),
            transmit_failed: self.boolean(obj, path, "transmitFailed", true),
            inherit_labels: self.boolean(obj, path, "inheritLabels", false),
            outputs,
            schedule_date: present(obj, "scheduleDate")
                .or_else(|| present(obj, "scheduleOn"))
                .cloned(),
        }))
    }

    fn retry(&mut self, value: &Value, path: &str) -> Option<Retry> {
        let obj = self.object(value, path, "`retry`")?;
        self.check_fields(obj, path, &[RETRY_FIELDS], "`retry`");
        let kind_name = self.string(obj, path, "type", true)?;
        for key in ["interval", "maxInterval", "minInterval", "maxDuration"] {
            self.duration(obj, path, key);
        }
        let s = |p: &mut Self, k: &str| p.string(obj, path, k, true);
        let kind = match kind_name.as_str() {
            "constant" => RetryKind::Constant {
                interval: s(self, "interval")?,
            },
            "exponential" => {
                let interval = s(self, "interval");
                let max_interval = s(self, "maxInterval");
                RetryKind::Exponential {
                    interval: interval?,
                    max_interval: max_interval?,
                    delay_factor: present(obj, "delayFactor").and_then(Value::as_f64),
                }
            }
            "random" => {
                let min_interval = s(self, "minInterval");
                let max_interval = s(self, "maxInterval");
                RetryKind::Random {
                    min_interval: min_interval?,
                    max_interval: max_interval?,
                }
            }
            other => {
                self.err(
                    FlowErrorKind::InvalidProperty,
                    &join_path(path, "type"),
                    format!("Unknown retry type `{other}`: use constant, exponential or random"),
                );
                return None;
            }
        };
        let key = if obj.contains_key("maxAttempts") {
            "maxAttempts"
        } else {
            "maxAttempt"
        };
        let max_attempt = self.unsigned(obj, path, key);
        if max_attempt == Some(0) {
            self.err(
                FlowErrorKind::InvalidProperty,
                &join_path(path, key),
                format!("`{key}` must be greater than or equal to 1"),
            );
        }
        let behavior = match present(obj, "behavior").map(|b| (b, b.as_str())) {
            None | Some((_, Some("RETRY_FAILED_TASK"))) => RetryBehavior::RetryFailedTask,
            Some((_, Some("CREATE_NEW_EXECUTION"))) => RetryBehavior::CreateNewExecution,
            Some((b, _)) => {
                self.err(
                    FlowErrorKind::InvalidProperty,
                    &join_path(path, "behavior"),
                    format!(
                        "Unknown retry behavior `{}`: use RETRY_FAILED_TASK or CREATE_NEW_EXECUTION",
                        write_pebble(b)
                    ),
                );
                RetryBehavior::RetryFailedTask
            }
        };
        let max_duration = self.string(obj, path, "maxDuration", false);
        self.retry_bounds(&kind, max_duration.as_deref(), path);
        Some(Retry {
            kind,
            max_attempt,
            max_duration,
            warning_on_retry: self.boolean(obj, path, "warningOnRetry", false),
            behavior,
        })
    }

    /// Kestra's retry validators: an interval must stay below its bound.
    fn retry_bounds(&mut self, kind: &RetryKind, max_duration: Option<&str>, path: &str) {
        let millis = |d: &str| crate::input::parse_iso_duration(d).map(|d| d.num_milliseconds());
        let mut check = |first: (&str, &str), bound: (&str, &str), allow_equal: bool| {
            if let (Some(a), Some(b)) = (millis(first.1), millis(bound.1)) {
                if a > b || (a == b && !allow_equal) {
                    self.err(
                        FlowErrorKind::InvalidProperty,
                        &join_path(path, first.0),
                        format!("'{}' must be less than '{}' but is {}", first.0, bound.0, first.1),
                    );
                }
            }
        };
        match kind {
            RetryKind::Constant { interval } => {
                if let Some(max) = max_duration {
                    check(("interval", interval), ("maxDuration", max), true);
                }
            }
            RetryKind::Exponential {
                interval,
                max_interval,
                ..
            } => {
                if let Some(max) = max_duration {
                    check(("interval", interval), ("maxDuration", max), false);
                }
                check(("interval", interval), ("maxInterval", max_interval), false);
            }
            RetryKind::Random {
                min_interval,
                max_interval,
            } => check(
                ("minInterval", min_interval),
                ("maxInterval", max_interval),
                false,
            ),
        }
    }

    fn input(&mut self, value: &Value, path: &str) -> Option<InputDefinition> {
        let obj = self.object(value, path, "an input")?;
        self.check_fields(obj, path, &[INPUT_FIELDS], "an input");
        // `name` is the pre-0.15 spelling of `id`.
        let id_key = if present(obj, "id").is_none() && present(obj, "name").is_some() {
            "name"
        } else {
            "id"
        };
        let id = self.string(obj, path, id_key, true);
        if let Some(id) = &id {
            if !INPUT_ID.is_match(id) {
                self.err(
                    FlowErrorKind::InvalidId,
                    &join_path(path, id_key),
                    format!("Invalid input id `{id}`: it must match \"{INPUT_ID_PATTERN}\""),
                );
            }
        }
        let type_name = self.string(obj, path, "type", true);
        let input_type = type_name.as_deref().and_then(|t| {
            let parsed = InputType::from_name(t);
            if parsed.is_none() {
                self.err(
                    FlowErrorKind::UnknownType,
                    &join_path(path, "type"),
                    format!("Invalid input type `{t}`; supported: {}", INPUT_TYPES.join(", ")),
                );
            }
            parsed
        });
        let values = match present(obj, "values").or_else(|| present(obj, "options")) {
            None => None,
            Some(Value::Array(items)) => Some(items.iter().map(write_pebble).collect()),
            Some(other) => {
                let key = if obj.contains_key("values") {
                    "values"
                } else {
                    "options"
                };
                self.err(
                    FlowErrorKind::InvalidProperty,
                    &join_path(path, key),
                    format!("`{key}` must be a list, not {}", describe(other)),
                );
                None
            }
        };
        let item_type = match present(obj, "itemType") {
            None => None,
            Some(t) => {
                let parsed = t.as_str().and_then(InputType::from_name);
                if parsed.is_none() {
                    self.err(
                        FlowErrorKind::UnknownType,
                        &join_path(path, "itemType"),
                        format!(
                            "Invalid item type `{}`; supported: {}",
                            write_pebble(t),
                            INPUT_TYPES.join(", ")
                        ),
                    );
                }
                parsed
            }
        };
        let depends_on = match present(obj, "dependsOn") {
            None => None,
            Some(Value::Object(d)) => {
                let p = join_path(path, "dependsOn");
                let inputs = self
                    .list(d.get("inputs"), &join_path(&p, "inputs"), "input ids")
                    .iter()
                    .map(write_pebble)
                    .collect();
                let condition = self.string(d, &p, "condition", false);
                Some(DependsOn { inputs, condition })
            }
            Some(other) => {
                self.err(
                    FlowErrorKind::InvalidProperty,
                    &join_path(path, "dependsOn"),
                    format!("`dependsOn` must be a map, not {}", describe(other)),
                );
                None
            }
        };
        let description = self.string(obj, path, "description", false);
        let display_name = self.string(obj, path, "displayName", false);
        let required = self.boolean(obj, path, "required", true);
        let validator = self.string(obj, path, "validator", false);
        let allow_custom_value = self.boolean(obj, path, "allowCustomValue", false);
        let extension = self.string(obj, path, "extension", false);
        let (id, input_type) = (id?, input_type?);
        let mut raw = obj.clone();
        if !raw.contains_key("id") {
            raw.insert("id".into(), Value::String(id.clone()));
        }
        let get = |k: &str| present(obj, k).cloned();
        Some(InputDefinition {
            id,
            input_type,
            description,
            display_name,
            required,
            defaults: get("defaults"),
            validator,
            min: get("min"),
            max: get("max"),
            after: get("after"),
            before: get("before"),
            values,
            allow_custom_value,
            item_type,
            extension,
            depends_on,
            raw,
        })
    }

    /// Why a literal `defaults` value cannot be typed as its input, as Kestra
    /// checks on save; templates, files and secrets are only known at run time.
    fn invalid_default(&self, input: &InputDefinition) -> Option<String> {
        let value = input.defaults.as_ref()?;
        if matches!(input.input_type, InputType::File | InputType::Secret) {
            return None;
        }
        let text = write_pebble(value);
        if text.contains("{{") || text.contains("{%") {
            return None;
        }
        let ctx = crate::input::InputContext {
            namespace: self.namespace.as_deref().unwrap_or_default(),
            flow_id: self.flow_id.as_deref().unwrap_or_default(),
            execution_id: "",
            secret_key: None,
            condition: None,
        };
        crate::input::type_input(input, crate::input::InputValue::Json(value.clone()), &ctx)
            .err()
            .map(|e| format!("Invalid default for input '{}': {}", input.id, e.message))
    }

    /// A list of inputs (flow `inputs`, Pause `onResume`), with the checks
    /// that span several of them: duplicate ids and `dependsOn` references.
    /// Paths keep the written index even when an earlier input was refused.
    fn inputs(&mut self, value: Option<&Value>, path: &str) -> Vec<InputDefinition> {
        let mut indices = Vec::new();
        let mut inputs = Vec::new();
        for (i, v) in self.list(value, path, "inputs").iter().enumerate() {
            if let Some(input) = self.input(v, &format!("{path}[{i}]")) {
                indices.push(i);
                inputs.push(input);
            }
        }
        let mut seen = HashSet::new();
        for (input, i) in inputs.iter().zip(&indices) {
            if !seen.insert(input.id.as_str()) {
                self.err(
                    FlowErrorKind::DuplicateInputId,
                    &format!("{path}[{i}].id"),
                    format!("Duplicate input with name [{}]", input.id),
                );
            }
        }
        for (input, i) in inputs.iter().zip(&indices) {
            if let Some(message) = self.invalid_default(input) {
                self.err(
                    FlowErrorKind::InvalidProperty,
                    &format!("{path}[{i}].defaults"),
                    message,
                );
            }
            let needs = |key: &str| present(&input.raw, key).is_none();
            let missing = match input.input_type {
                InputType::Enum | InputType::Select if needs("values") && needs("expression") => {
                    Some("values")
                }
                InputType::MultiSelect if needs("values") && needs("options") && needs("expression") => {
                    Some("values")
                }
                InputType::Array if input.item_type.is_none() => Some("itemType"),
                _ => None,
            };
            if let Some(key) = missing {
                self.err(
                    FlowErrorKind::MissingProperty,
                    &format!("{path}[{i}].{key}"),
                    format!("`{key}` is required for a {} input", input.input_type.name()),
                );
            }
        }
        for (k, message) in validate::input_dependencies(&inputs) {
            let i = indices.get(k).copied().unwrap_or(k);
            self.err(
                FlowErrorKind::InvalidDependency,
                &format!("{path}[{i}].dependsOn"),
                message,
            );
        }
        inputs
    }

    fn trigger(&mut self, value: &Value, path: &str) -> Option<Trigger> {
        let written = self.object(value, path, "a trigger")?;
        let id = self.string(written, path, "id", true);
        if let Some(id) = &id {
            if !TASK_ID.is_match(id) {
                self.err(
                    FlowErrorKind::InvalidId,
                    &join_path(path, "id"),
                    format!("Invalid trigger id `{id}`: it must match \"{TASK_ID_PATTERN}\""),
                );
            }
        }
        let type_name = self.string(written, path, "type", true)?;
        let Some(trigger_type) = TriggerType::from_name(&type_name) else {
            let supported = TriggerType::supported_names();
            self.err(
                FlowErrorKind::UnknownType,
                &join_path(path, "type"),
                format!(
                    "Invalid type: {type_name}{}; supported trigger types: {}",
                    did_you_mean(&type_name, &supported),
                    supported.join(", ")
                ),
            );
            return None;
        };
        self.check_fields(
            written,
            path,
            &[TRIGGER_FIELDS, trigger_fields(trigger_type)],
            &format!("class {}", trigger_type.name()),
        );
        // Defaults reach the trigger and its conditions.
        let defaulted = self.defaults.apply_deep(value);
        let obj = defaulted.as_object().unwrap_or(written);
        match trigger_type {
            TriggerType::Schedule => {
                if let Some(cron) = self.string(obj, path, "cron", true) {
                    let with_seconds = self.boolean(obj, path, "withSeconds", false);
                    if let Err(e) = parse_cron(&cron, with_seconds) {
                        self.err(
                            FlowErrorKind::InvalidCron,
                            &join_path(path, "cron"),
                            format!(
                                "Invalid cron expression `{cron}`: {e} (expected {} fields, or a nickname such as @daily)",
                                if with_seconds { "6 fields, seconds first" } else { "5" }
                            ),
                        );
                    }
                }
                if let Some(tz) = self.string(obj, path, "timezone", false) {
                    if tz.parse::<chrono_tz::Tz>().is_err() {
                        self.err(
                            FlowErrorKind::InvalidProperty,
                            &join_path(path, "timezone"),
                            format!("Unknown time zone `{tz}`: use an IANA name such as Europe/Paris or UTC"),
                        );
                    }
                }
                self.duration(obj, path, "lateMaximumDelay");
            }
            TriggerType::Webhook => {
                if let Some(key) = self.string(obj, path, "key", true) {
                    if key.len() > 256 {
                        self.err(
                            FlowErrorKind::InvalidProperty,
                            &join_path(path, "key"),
                            "`key` must be at most 256 characters",
                        );
                    }
                }
            }
            TriggerType::Flow => {}
        }
        if trigger_type == TriggerType::Schedule {
            if let Some(r) = present(obj, "recoverMissedSchedules") {
                if !matches!(r.as_str(), Some("ALL" | "LAST" | "NONE")) {
                    self.err(
                        FlowErrorKind::InvalidProperty,
                        &join_path(path, "recoverMissedSchedules"),
                        format!("Unknown value `{}`: use ALL, LAST or NONE", write_pebble(r)),
                    );
                }
            }
        }
        for key in ["stopAfter", "states"] {
            let list_path = join_path(path, key);
            for (i, state) in self.list(obj.get(key), &list_path, "states").iter().enumerate() {
                if !state.as_str().is_some_and(|s| STATES.contains(&s)) {
                    self.err(
                        FlowErrorKind::InvalidProperty,
                        &format!("{list_path}[{i}]"),
                        format!(
                            "Unknown state `{}`; states: {}",
                            write_pebble(state),
                            STATES.join(", ")
                        ),
                    );
                }
            }
        }
        let conditions_path = join_path(path, "conditions");
        for (i, condition) in self
            .list(obj.get("conditions"), &conditions_path, "conditions")
            .iter()
            .enumerate()
        {
            let item = format!("{conditions_path}[{i}]");
            let Some(c) = self.object(condition, &item, "a condition") else {
                continue;
            };
            if let Some(t) = self.string(c, &item, "type", true) {
                let kind = crate::trigger::condition::kind(condition);
                if !crate::trigger::condition::SUPPORTED.contains(&kind) {
                    self.err(
                        FlowErrorKind::UnknownType,
                        &join_path(&item, "type"),
                        format!(
                            "Unsupported condition type `{t}`; supported: {}",
                            crate::trigger::condition::SUPPORTED.join(", ")
                        ),
                    );
                }
                if trigger_type == TriggerType::Webhook && t.ends_with(".MultipleCondition") {
                    self.err(
                        FlowErrorKind::InvalidProperty,
                        &join_path(&item, "type"),
                        "invalid webhook: conditions of type MultipleCondition are not supported",
                    );
                }
            }
        }
        self.map_of(obj, path, "inputs");
        let disabled = self.boolean(obj, path, "disabled", false);
        Some(Trigger {
            id: id?,
            type_name,
            trigger_type,
            disabled,
            properties: obj.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        })
    }

    /// An ISO-8601 duration as Java's `Duration.parse` reads it (expressions are
    /// rendered later and not checked here).
    fn duration(&mut self, obj: &Map<String, Value>, path: &str, key: &str) {
        match present(obj, key) {
            None => {}
            Some(Value::String(s)) if s.contains("{{") || is_iso_duration(s) => {}
            Some(other) => self.err(
                FlowErrorKind::InvalidProperty,
                &join_path(path, key),
                format!(
                    "`{key}` must be an ISO-8601 duration such as PT30S or P1DT2H, not `{}`",
                    write_pebble(other)
                ),
            ),
        }
    }

    /// Reads `pluginDefaults` and the legacy `taskDefaults`, in that order.
    fn plugin_defaults(&mut self, root: &Map<String, Value>) -> Vec<PluginDefault> {
        let mut declared = Vec::new();
        for key in ["pluginDefaults", "taskDefaults"] {
            let items = self.list(root.get(key), key, "plugin defaults");
            for (i, item) in items.iter().enumerate() {
                let path = format!("{key}[{i}]");
                let Some(obj) = self.object(item, &path, "a plugin default") else {
                    continue;
                };
                self.check_fields(obj, &path, &[&["type", "forced", "values"]], "a plugin default");
                let type_name = self.string(obj, &path, "type", true);
                let forced = self.boolean(obj, &path, "forced", false);
                let values = self.map_of(obj, &path, "values");
                if let Some(type_name) = type_name {
                    declared.push(PluginDefault {
                        type_name,
                        forced,
                        values,
                    });
                }
            }
        }
        declared
    }

    fn outputs(&mut self, value: Option<&Value>) -> Vec<FlowOutput> {
        let mut outputs = Vec::new();
        let mut seen = HashSet::new();
        for (i, v) in self.list(value, "outputs", "outputs").iter().enumerate() {
            let path = format!("outputs[{i}]");
            let Some(obj) = self.object(v, &path, "an output") else {
                continue;
            };
            self.check_fields(obj, &path, &[OUTPUT_FIELDS], "an output");
            let id = self.string(obj, &path, "id", true);
            let type_name = self.string(obj, &path, "type", true);
            if let Some(t) = &type_name {
                if InputType::from_name(t).is_none() {
                    self.err(
                        FlowErrorKind::UnknownType,
                        &join_path(&path, "type"),
                        format!("Invalid output type `{t}`; supported: {}", INPUT_TYPES.join(", ")),
                    );
                }
            }
            let value = self.required(obj, &path, "value");
            let required = self.boolean(obj, &path, "required", true);
            let (Some(id), Some(type_name), Some(value)) = (id, type_name, value) else {
                continue;
            };
            if !seen.insert(id.clone()) {
                self.err(
                    FlowErrorKind::DuplicateInputId,
                    &join_path(&path, "id"),
                    format!("Duplicate output with name [{id}]"),
                );
            }
            outputs.push(FlowOutput {
                id,
                type_name,
                value,
                required,
            });
        }
        outputs
    }

    fn concurrency(&mut self, value: &Value) -> Option<Concurrency> {
        let path = "concurrency";
        let obj = self.object(value, path, "`concurrency`")?;
        self.check_fields(obj, path, &[&["limit", "behavior"]], "`concurrency`");
        let limit = match self.unsigned(obj, path, "limit") {
            Some(0) | None => {
                self.err(
                    FlowErrorKind::InvalidProperty,
                    "concurrency.limit",
                    "`limit` is required and must be greater than 0",
                );
                0
            }
            Some(n) => n,
        };
        let behavior = match self.string(obj, path, "behavior", false).as_deref() {
            None | Some("QUEUE") => ConcurrencyBehavior::Queue,
            Some("CANCEL") => ConcurrencyBehavior::Cancel,
            Some("FAIL") => ConcurrencyBehavior::Fail,
            Some(other) => {
                self.err(
                    FlowErrorKind::InvalidProperty,
                    "concurrency.behavior",
                    format!("Unknown behavior `{other}`: use QUEUE, CANCEL or FAIL"),
                );
                ConcurrencyBehavior::Queue
            }
        };
        Some(Concurrency { limit, behavior })
    }
}

/// Whether Java's `Duration.parse` reads `s` (at least one component, no
/// dangling `T`).
fn is_iso_duration(s: &str) -> bool {
    ISO_DURATION.is_match(s) && s.bytes().any(|b| b.is_ascii_digit()) && !s.ends_with(['T', 't'])
}

// Java's `Duration.parse` format: days, hours, minutes, (fractional) seconds.
static ISO_DURATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?i)[-+]?P(?:[-+]?\d+D)?(?:T(?:[-+]?\d+H)?(?:[-+]?\d+M)?(?:[-+]?\d+(?:[.,]\d{0,9})?S)?)?$")
        .unwrap_or_else(|_| unreachable!("static pattern"))
});

const INPUT_TYPES: &[&str] = &[
    "STRING",
    "ENUM",
    "SELECT",
    "MULTISELECT",
    "INT",
    "FLOAT",
    "BOOLEAN",
    "BOOL",
    "DATETIME",
    "DATE",
    "TIME",
    "DURATION",
    "FILE",
    "JSON",
    "YAML",
    "URI",
    "SECRET",
    "ARRAY",
    "EMAIL",
];

/// ` (did you mean X?)` when a supported name is close to the written one:
/// same simple class name, or a few typos away.
/// The declared property closest to a misspelt one (case-insensitive, a
/// third of its length in typos at most).
fn closest_property<'a>(written: &str, known: &[&'a str]) -> Option<&'a str> {
    let lower = written.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (edit_distance(&lower, &k.to_ascii_lowercase()), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn did_you_mean(written: &str, supported: &[&str]) -> String {
    let simple = |n: &str| n.rsplit('.').next().unwrap_or(n).to_ascii_lowercase();
    let written_simple = simple(written);
    supported
        .iter()
        .map(|s| (edit_distance(&written_simple, &simple(s)), *s))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, s)| format!(" (did you mean {s}?)"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(current)
            };
            prev = current;
        }
    }
    row[b.len()]
}

/// Parses a cron expression as Schedule triggers do (5 fields, or 6 with seconds
/// first; `@daily`-style nicknames).
pub fn parse_cron(expression: &str, with_seconds: bool) -> Result<croner::Cron, String> {
    use croner::parser::{CronParser, Seconds, Year};
    let seconds = if with_seconds && !expression.trim_start().starts_with('@') {
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

fn parse_document(doc: &Value) -> Result<Flow, Vec<FlowError>> {
    let Value::Object(root) = doc else {
        return Err(vec![error(
            FlowErrorKind::Yaml,
            "",
            format!("A flow must be a map, not {}", describe(doc)),
        )]);
    };
    let mut p = Parser {
        errors: Vec::new(),
        defaults: defaults::Defaults::new(&[]),
        task_ids: HashSet::new(),
        flow_id: None,
        namespace: None,
    };
    p.check_fields(root, "", &[FLOW_FIELDS], "class io.kestra.core.models.flows.Flow");
    let id = p.string(root, "", "id", true);
    let namespace = p.string(root, "", "namespace", true);
    if let Some(id) = &id {
        if !FLOW_ID.is_match(id) || id.len() > 100 {
            p.err(
                FlowErrorKind::InvalidId,
                "id",
                format!("Invalid flow id `{id}`: it must match \"{FLOW_ID_PATTERN}\" and have at most 100 characters"),
            );
        }
    }
    if let Some(ns) = &namespace {
        if !NAMESPACE.is_match(ns) || ns.len() > 150 {
            p.err(
                FlowErrorKind::InvalidId,
                "namespace",
                format!("Invalid namespace `{ns}`: it must match \"{NAMESPACE_PATTERN}\" and have at most 150 characters"),
            );
        }
    }
    p.flow_id.clone_from(&id);
    p.namespace.clone_from(&namespace);
    // Plugin defaults first: they shape every task and trigger below.
    let declared_defaults = p.plugin_defaults(root);
    p.defaults = defaults::Defaults::new(&declared_defaults);

    let revision = match present(root, "revision") {
        None => None,
        Some(v) => match v.as_i64() {
            Some(r) => Some(r),
            None => {
                p.err(
                    FlowErrorKind::InvalidProperty,
                    "revision",
                    format!("`revision` must be an integer, not {}", describe(v)),
                );
                None
            }
        },
    };
    let description = p.string(root, "", "description", false);
    let labels = p.labels(root.get("labels"), "labels");
    // Kestra reserves `system.*` flow labels (except `system.readOnly`).
    for (key, value) in &labels {
        if key.starts_with("system.") && key != "system.readOnly" {
            let path = match root.get("labels") {
                Some(Value::Array(items)) => {
                    let i = items
                        .iter()
                        .position(|item| item.get("key").and_then(Value::as_str) == Some(key.as_str()));
                    format!("labels[{}]", i.unwrap_or_default())
                }
                _ => join_path("labels", key),
            };
            p.err(
                FlowErrorKind::InvalidProperty,
                &path,
                format!("System labels can only be set by Kestra itself, offending label: {key}={value}"),
            );
        }
    }
    let inputs = p.inputs(root.get("inputs"), "inputs");
    let variables = p.map_of(root, "", "variables");
    let tasks = p.tasks(root.get("tasks"), "tasks", true);
    let errors = p.tasks(root.get("errors"), "errors", false);
    let finally = p.tasks(root.get("finally"), "finally", false);
    let after_execution = p.tasks(root.get("afterExecution"), "afterExecution", false);
    let outputs = p.outputs(root.get("outputs"));
    let mut triggers = Vec::new();
    let mut trigger_ids = HashSet::new();
    for (i, v) in p
        .list(root.get("triggers"), "triggers", "triggers")
        .iter()
        .enumerate()
    {
        let path = format!("triggers[{i}]");
        if let Some(t) = p.trigger(v, &path) {
            if !trigger_ids.insert(t.id.clone()) {
                p.err(
                    FlowErrorKind::DuplicateTriggerId,
                    &format!("{path}.id"),
                    format!("Duplicate trigger id with name [{}]", t.id),
                );
            }
            triggers.push(t);
        }
    }
    let retry = present(root, "retry").and_then(|r| p.retry(r, "retry"));
    let concurrency = present(root, "concurrency").and_then(|c| p.concurrency(c));
    let disabled = p.boolean(root, "", "disabled", false);
    p.duration(root, "", "timeout");
    let timeout = p.string(root, "", "timeout", false);
    if !p.errors.is_empty() {
        return Err(p.errors);
    }
    Ok(Flow {
        id: id.unwrap_or_default(),
        namespace: namespace.unwrap_or_default(),
        revision,
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
        plugin_defaults: declared_defaults,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_nicknames_and_seconds() {
        assert!(parse_cron("@daily", false).is_ok());
        assert!(parse_cron("@hourly", true).is_ok());
        assert!(parse_cron("*/5 * * * *", false).is_ok());
        assert!(parse_cron("0 */5 * * * *", true).is_ok());
        assert!(parse_cron("0 */5 * * * *", false).is_err());
        assert!(parse_cron("* * * *", false).is_err());
        assert!(parse_cron("0 9 * * 7", false).is_ok());
    }

    #[test]
    fn errors_are_located_only_when_refused() {
        let errors = parse_flow("id: a\nnamespace: dev\ntasks:\n  - id: t\n    type: nope\n")
            .err()
            .unwrap_or_default();
        assert_eq!(errors.len(), 1);
        assert_eq!((errors[0].line, errors[0].column), (Some(5), Some(5)));
    }
}
