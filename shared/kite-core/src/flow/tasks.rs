//! Tasks: the properties every task shares and those of each task type, read
//! once the flow's plugin defaults are merged in.

use std::borrow::Cow;

use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::error::{describe, did_you_mean, FlowErrorKind};
use super::ids::{TASK_ID, TASK_ID_PATTERN};
use super::reader::{join_path, last_segment, present, Parser};
use super::{Flowable, IoTask, LogLevel, PauseTask, SubflowTask, Task, TaskKind, TaskType, WorkingDirectory};
use crate::expression::write_pebble;
use crate::plugin::{Check, IoKind};

/// The states `execution.Exit` ends an execution in (Kestra's `ExitState`).
pub const EXIT_STATES: &[&str] = &["SUCCESS", "WARNING", "KILLED", "FAILED", "CANCELED"];

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

fn task_fields(t: TaskType) -> Cow<'static, [&'static str]> {
    Cow::Borrowed(match t {
        TaskType::Log => &["message", "level"],
        TaskType::Return => &["format"],
        TaskType::Echo => &["format", "level"],
        TaskType::OutputValues => &["values"],
        TaskType::Fail => &["condition", "errorMessage"],
        TaskType::Assert => &["conditions", "errorMessage"],
        TaskType::Labels => &["labels"],
        TaskType::Exit => &["state"],
        TaskType::SetVariables => &["variables", "overwrite"],
        TaskType::UnsetVariables => &["variables", "ignoreMissing"],
        TaskType::Sleep => &["duration"],
        TaskType::Sequential => &["tasks", "errors", "finally"],
        TaskType::WorkingDirectory => &[
            "tasks",
            "errors",
            "finally",
            "inputFiles",
            "namespaceFiles",
            "outputFiles",
            "cache",
        ],
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
        TaskType::ForEachItem => &[
            "items",
            "batch",
            "namespace",
            "flowId",
            "revision",
            "inputs",
            "labels",
            "wait",
            "transmitFailed",
            "inheritLabels",
            "scheduleDate",
            "restartBehavior",
            "errors",
            "finally",
        ],
        TaskType::ForEachItemExecutable => &[
            "namespace",
            "flowId",
            "revision",
            "inputs",
            "labels",
            "wait",
            "transmitFailed",
            "inheritLabels",
            "scheduleDate",
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
        TaskType::Io(kind) => {
            return kind
                .spec()
                .properties
                .iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .into();
        }
    })
}

impl Parser {
    pub(super) fn tasks(&mut self, value: Option<&Value>, path: &str, required: bool) -> Vec<Task> {
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
            &[TASK_FIELDS, &task_fields(task_type)],
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
            TaskType::Assert => {
                let conditions = match self.required(obj, path, "conditions")? {
                    Value::Array(items) => items,
                    other => {
                        self.err(
                            FlowErrorKind::InvalidProperty,
                            &join_path(path, "conditions"),
                            format!("`conditions` must be a list, not {}", describe(&other)),
                        );
                        return None;
                    }
                };
                TaskKind::Assert {
                    conditions,
                    error_message: get("errorMessage"),
                }
            }
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
            TaskType::Exit => TaskKind::Exit {
                state: self.exit_state(obj, path),
            },
            TaskType::SetVariables => {
                let variables = self.required(obj, path, "variables")?;
                if !matches!(variables, Value::Object(_) | Value::String(_)) {
                    self.err(
                        FlowErrorKind::InvalidProperty,
                        &join_path(path, "variables"),
                        format!("`variables` must be a map, not {}", describe(&variables)),
                    );
                    return None;
                }
                TaskKind::SetVariables {
                    variables,
                    overwrite: get("overwrite").unwrap_or(Value::Bool(true)),
                }
            }
            TaskType::UnsetVariables => {
                let variables = self.required(obj, path, "variables")?;
                if !matches!(variables, Value::Array(_) | Value::String(_)) {
                    self.err(
                        FlowErrorKind::InvalidProperty,
                        &join_path(path, "variables"),
                        format!(
                            "`variables` must be a list of names, not {}",
                            describe(&variables)
                        ),
                    );
                    return None;
                }
                TaskKind::UnsetVariables {
                    variables,
                    ignore_missing: get("ignoreMissing").unwrap_or(Value::Bool(false)),
                }
            }
            TaskType::Sleep => TaskKind::Sleep {
                duration: {
                    self.duration(obj, path, "duration");
                    self.required(obj, path, "duration")?
                },
            },
            TaskType::Sequential => TaskKind::Sequential(self.flowable(obj, path, true)),
            TaskType::WorkingDirectory => {
                if present(obj, "outputFiles").is_some() {
                    // The folder's files are not uploaded at the end: a script child's own
                    // `outputFiles` does that.
                    self.err(
                        FlowErrorKind::InvalidProperty,
                        &join_path(path, "outputFiles"),
                        "`outputFiles` of a WorkingDirectory is not supported: set `outputFiles` on the script task that writes the files".to_string(),
                    );
                    return None;
                }
                let files = ["inputFiles", "namespaceFiles"]
                    .into_iter()
                    .filter_map(|k| present(obj, k).map(|v| (k.to_string(), v.clone())))
                    .collect();
                TaskKind::WorkingDirectory(WorkingDirectory {
                    body: self.flowable(obj, path, true),
                    files,
                })
            }
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
            TaskType::ForEachItem => self.for_each_item(obj, path)?,
            TaskType::ForEachItemExecutable => match self.subflow(obj, path)? {
                TaskKind::Subflow(sub) => TaskKind::ForEachItemExecutable(sub),
                other => other,
            },
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
            TaskType::Io(kind) => TaskKind::Io(self.io_task(kind, obj, path)?),
        })
    }

    /// Exit's `state`: one of Kestra's exit states, checked here when it is not an expression.
    fn exit_state(&mut self, obj: &Map<String, Value>, path: &str) -> Value {
        match present(obj, "state") {
            None => Value::String("SUCCESS".into()),
            Some(Value::String(s)) if s.contains("{{") => Value::String(s.clone()),
            Some(v) => {
                let text = write_pebble(v);
                if !EXIT_STATES.contains(&text.as_str()) {
                    self.err(
                        FlowErrorKind::InvalidProperty,
                        &join_path(path, "state"),
                        format!("Invalid state `{text}`: use one of {}", EXIT_STATES.join(", ")),
                    );
                }
                Value::String(text)
            }
        }
    }

    /// A task that does I/O: its properties checked as its type declares them.
    fn io_task(&mut self, kind: IoKind, obj: &Map<String, Value>, path: &str) -> Option<IoTask> {
        let mut properties = Map::new();
        let mut complete = true;
        for property in kind.spec().properties {
            let name = property.name;
            let value = match property.check {
                Check::Any => present(obj, name).cloned(),
                Check::Required => {
                    let value = self.required(obj, path, name);
                    complete &= value.is_some();
                    value
                }
                Check::Map => present(obj, name)
                    .map(|_| Value::Object(self.map_of(obj, path, name).into_iter().collect())),
                Check::Boolean => {
                    present(obj, name).map(|_| Value::Bool(self.boolean(obj, path, name, false)))
                }
                Check::List => self.list_or_expression(obj, path, name),
            };
            properties.extend(value.map(|v| (name.to_string(), v)));
        }
        complete.then_some(IoTask { kind, properties })
    }

    pub(super) fn subflow(&mut self, obj: &Map<String, Value>, path: &str) -> Option<TaskKind> {
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
}
