//! The flow model: a Kestra flow as Kite holds it after parsing and validation.
//!
//! Dynamic properties (anything Kestra renders with Pebble) are kept as raw
//! [`serde_json::Value`]s and rendered by the executor when a task runs.
//!
//! This module holds the model; parsing is spread over:
//!
//! - `parse`: the entry points ([`parse_flow`], [`parse_flow_within`], [`parse_flows`], [`relocations`])
//!   and the flow's own properties (ids, labels, concurrency, plugin defaults).
//! - `source`: the YAML source, its documents as JSON, and locating errors in it;
//!   `position` finds the line and column of each field.
//! - `reader`: the `Parser` that gathers errors, and its property readers.
//! - `error`: [`FlowError`], [`FlowErrorKind`] and the wording of refusals.
//! - `limits`: [`FlowLimits`], how big a flow may be when it is saved.
//! - `ids`: Kestra's id patterns.
//! - `tasks`: tasks and the properties of each task type.
//! - `retry`: retry policies.
//! - `inputs`: input declarations and flow outputs; `validate` checks their
//!   `dependsOn` links.
//! - `triggers`: triggers, their conditions, and cron expressions ([`parse_cron`]).
//! - `defaults`: plugin defaults, merged into tasks and triggers.
//! - `task_type`: task and trigger type names, current and legacy.

use std::collections::HashMap;
use std::sync::OnceLock;

use indexmap::IndexMap;
use serde_json::{Map, Value};

pub use crate::execution::LogLevel;
use crate::input_definition::InputDefinition;
use crate::plugin::IoKind;

mod defaults;
mod error;
mod foreach_item;
mod ids;
mod inputs;
mod limits;
mod parse;
mod position;
mod reader;
mod retry;
mod source;
mod task_type;
mod tasks;
mod triggers;
mod validate;
pub mod webhook_signature;

pub use error::{FlowError, FlowErrorKind};
pub use limits::FlowLimits;
pub use parse::{parse_flow, parse_flow_within, parse_flows, relocations};
pub use source::{flow_documents_to_json, flow_source_to_json};
pub use task_type::{condition_kind, TaskType, TriggerType, CONDITION_KINDS};
pub use tasks::EXIT_STATES;
pub use triggers::{parse_cron, CronParseError};

// How flow sources turn YAML into JSON (defined with the YAML input type).
pub use crate::input::yaml_value_to_json;

/// A parsed, validated flow.
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    pub id: String,
    pub namespace: String,
    pub revision: Option<i64>,
    pub description: Option<String>,
    /// Flow labels in declaration order (a YAML map or a list of `{key, value}`).
    pub labels: Vec<(String, String)>,
    pub inputs: Vec<InputDefinition>,
    /// `variables`, exposed unrendered as `vars.*`.
    pub variables: IndexMap<String, Value>,
    pub tasks: Vec<Task>,
    pub errors: Vec<Task>,
    pub finally: Vec<Task>,
    pub after_execution: Vec<Task>,
    pub outputs: Vec<FlowOutput>,
    pub triggers: Vec<Trigger>,
    /// Where each task is, built on the first lookup (derived from the task lists).
    pub task_index: TaskIndex,
    pub disabled: bool,
    pub retry: Option<Retry>,
    /// ISO-8601 duration, e.g. `PT1H`.
    pub timeout: Option<String>,
    pub concurrency: Option<Concurrency>,
    pub plugin_defaults: Vec<PluginDefault>,
}

/// One task of a flow, with the properties every Kestra task shares.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub id: String,
    /// The type as written in the YAML (legacy or current name).
    pub type_name: String,
    pub kind: TaskKind,
    pub description: Option<String>,
    pub retry: Option<Retry>,
    /// ISO-8601 duration, possibly an expression.
    pub timeout: Option<Value>,
    pub disabled: bool,
    /// Minimum level of the log lines this task emits.
    pub log_level: Option<LogLevel>,
    pub allow_failure: bool,
    pub allow_warning: bool,
    /// `runIf`: rendered, and the task run is SKIPPED when falsy.
    pub run_if: Option<Value>,
}

impl Task {
    pub fn task_type(&self) -> TaskType {
        self.kind.task_type()
    }

    /// Direct children of a flowable task, in every branch, in declaration order
    /// (tasks/then/else/cases/defaults, then errors, then finally).
    pub fn children(&self) -> Vec<&Task> {
        self.kind.children()
    }
}

/// The task types Kite runs, with their type-specific properties.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskKind {
    /// `log.Log`: `message` is a string or a list of strings (one line each).
    Log {
        message: Value,
        level: LogLevel,
    },
    /// `debug.Return`: outputs `{value: <rendered format>}`.
    Return {
        format: Value,
    },
    /// `debug.Echo` (deprecated): logs `format` at `level`.
    Echo {
        format: Value,
        level: LogLevel,
    },
    /// `output.OutputValues`: outputs `{values: <rendered recursively>}`.
    OutputValues {
        values: Value,
    },
    /// `execution.Fail`: fails when `condition` is absent or truthy.
    Fail {
        condition: Option<Value>,
        error_message: Value,
    },
    /// `execution.Assert`: fails when one of `conditions` renders falsy, logging each.
    Assert {
        conditions: Vec<Value>,
        error_message: Option<Value>,
    },
    /// `execution.Labels`: adds labels to the execution.
    Labels {
        labels: Value,
    },
    /// `execution.Exit`: ends the execution at once in `state` (SUCCESS by default).
    Exit {
        state: Value,
    },
    /// `execution.SetVariables`: merges `variables` into the execution's `vars`.
    SetVariables {
        variables: Value,
        overwrite: Value,
    },
    /// `execution.UnsetVariables`: removes names (dotted paths) from the execution's `vars`.
    UnsetVariables {
        variables: Value,
        ignore_missing: Value,
    },
    /// `flow.Sleep`.
    Sleep {
        duration: Value,
    },
    Sequential(Flowable),
    /// `flow.WorkingDirectory`: its children run one after another (as in `Sequential`),
    /// the script tasks among them in one shared folder.
    WorkingDirectory(WorkingDirectory),
    Parallel {
        body: Flowable,
        concurrent: u32,
    },
    If {
        condition: Value,
        then: Vec<Task>,
        else_: Vec<Task>,
        errors: Vec<Task>,
        finally: Vec<Task>,
    },
    Switch {
        value: Value,
        cases: IndexMap<String, Vec<Task>>,
        defaults: Vec<Task>,
        errors: Vec<Task>,
        finally: Vec<Task>,
    },
    /// `flow.ForEach`; `concurrency_limit` 0 means unlimited.
    ForEach {
        values: Value,
        concurrency_limit: u32,
        body: Flowable,
    },
    /// `flow.EachSequential` (deprecated).
    EachSequential {
        value: Value,
        body: Flowable,
    },
    /// `flow.EachParallel` (deprecated); `concurrent` 0 means unlimited.
    EachParallel {
        value: Value,
        concurrent: u32,
        body: Flowable,
    },
    Subflow(SubflowTask),
    /// `flow.ForEachItem`: its three steps (`{id}_split`, `{id}_items`, `{id}_merge`) are
    /// the tasks of `body`, built by the parser from its properties.
    ForEachItem(Flowable),
    /// `{id}_items` of a ForEachItem: one subflow execution per batch the split made.
    ForEachItemExecutable(SubflowTask),
    Pause(PauseTask),
    /// A task that does I/O, run by a worker.
    Io(IoTask),
}

/// Child task lists shared by flowable tasks.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Flowable {
    pub tasks: Vec<Task>,
    pub errors: Vec<Task>,
    pub finally: Vec<Task>,
}

/// A `flow.WorkingDirectory`: its children, and the files its folder starts with
/// (`inputFiles`, `namespaceFiles`, kept unrendered: they render for its first script
/// child, in that child's context).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WorkingDirectory {
    pub body: Flowable,
    /// `inputFiles` and `namespaceFiles`, as written.
    pub files: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SubflowTask {
    pub namespace: Value,
    pub flow_id: Value,
    pub revision: Option<i64>,
    pub inputs: IndexMap<String, Value>,
    pub labels: Vec<(String, Value)>,
    pub wait: bool,
    pub transmit_failed: bool,
    pub inherit_labels: bool,
    /// Legacy `outputs`: rendered against the child execution.
    pub outputs: IndexMap<String, Value>,
    pub schedule_date: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PauseTask {
    pub delay: Option<Value>,
    pub timeout: Option<Value>,
    pub on_resume: Vec<InputDefinition>,
    pub body: Flowable,
}

/// A task that does I/O: which one, and its own properties as the parser checked them
/// (see [`crate::plugin`]).
#[derive(Debug, Clone, PartialEq)]
pub struct IoTask {
    pub kind: IoKind,
    pub properties: Map<String, Value>,
}

impl TaskKind {
    pub fn task_type(&self) -> TaskType {
        match self {
            TaskKind::Log { .. } => TaskType::Log,
            TaskKind::Return { .. } => TaskType::Return,
            TaskKind::Echo { .. } => TaskType::Echo,
            TaskKind::OutputValues { .. } => TaskType::OutputValues,
            TaskKind::Fail { .. } => TaskType::Fail,
            TaskKind::Assert { .. } => TaskType::Assert,
            TaskKind::Labels { .. } => TaskType::Labels,
            TaskKind::Exit { .. } => TaskType::Exit,
            TaskKind::SetVariables { .. } => TaskType::SetVariables,
            TaskKind::UnsetVariables { .. } => TaskType::UnsetVariables,
            TaskKind::Sleep { .. } => TaskType::Sleep,
            TaskKind::Sequential(_) => TaskType::Sequential,
            TaskKind::WorkingDirectory(_) => TaskType::WorkingDirectory,
            TaskKind::Parallel { .. } => TaskType::Parallel,
            TaskKind::If { .. } => TaskType::If,
            TaskKind::Switch { .. } => TaskType::Switch,
            TaskKind::ForEach { .. } => TaskType::ForEach,
            TaskKind::EachSequential { .. } => TaskType::EachSequential,
            TaskKind::EachParallel { .. } => TaskType::EachParallel,
            TaskKind::Subflow(_) => TaskType::Subflow,
            TaskKind::ForEachItem(_) => TaskType::ForEachItem,
            TaskKind::ForEachItemExecutable(_) => TaskType::ForEachItemExecutable,
            TaskKind::Pause(_) => TaskType::Pause,
            TaskKind::Io(t) => TaskType::Io(t.kind),
        }
    }

    pub fn children(&self) -> Vec<&Task> {
        self.child_lists().into_iter().flatten().collect()
    }

    /// The task lists this task holds, in [`TaskKind::children`] order.
    pub fn child_lists(&self) -> Vec<&[Task]> {
        fn flowable(f: &Flowable) -> Vec<&[Task]> {
            vec![&f.tasks, &f.errors, &f.finally]
        }
        match self {
            TaskKind::Sequential(f) | TaskKind::ForEachItem(f) => flowable(f),
            TaskKind::WorkingDirectory(w) => flowable(&w.body),
            TaskKind::Parallel { body, .. }
            | TaskKind::ForEach { body, .. }
            | TaskKind::EachSequential { body, .. }
            | TaskKind::EachParallel { body, .. } => flowable(body),
            TaskKind::Pause(p) => flowable(&p.body),
            TaskKind::If {
                then,
                else_,
                errors,
                finally,
                ..
            } => vec![then, else_, errors, finally],
            TaskKind::Switch {
                cases,
                defaults,
                errors,
                finally,
                ..
            } => cases
                .values()
                .map(Vec::as_slice)
                .chain([defaults.as_slice(), errors, finally])
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// Where each task of a flow is, by id: built on the first lookup (a flow does not
/// change once parsed), so finding a task costs its depth, not the size of the flow.
#[derive(Default, Clone)]
pub struct TaskIndex(OnceLock<IndexedTasks>);

#[derive(Clone)]
struct IndexedTasks {
    /// Task id → (list, position) at each level from the flow's own lists down.
    paths: HashMap<String, Vec<(u16, u32)>>,
    has_pause: bool,
}

impl TaskIndex {
    fn get(&self, flow: &Flow) -> &IndexedTasks {
        self.0.get_or_init(|| {
            fn walk(tasks: &[Task], list: u16, path: &mut Vec<(u16, u32)>, out: &mut IndexedTasks) {
                for (position, task) in tasks.iter().enumerate() {
                    path.push((list, position as u32));
                    out.paths.insert(task.id.clone(), path.clone());
                    out.has_pause |= matches!(task.kind, TaskKind::Pause(_));
                    for (i, children) in task.kind.child_lists().into_iter().enumerate() {
                        walk(children, i as u16, path, out);
                    }
                    path.pop();
                }
            }
            let mut out = IndexedTasks {
                paths: HashMap::new(),
                has_pause: false,
            };
            for (i, tasks) in flow.root_lists().into_iter().enumerate() {
                walk(tasks, i as u16, &mut Vec::new(), &mut out);
            }
            out
        })
    }
}

// Derived data: two flows are equal when their declared parts are.
impl PartialEq for TaskIndex {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for TaskIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TaskIndex")
    }
}

/// A flow-level output (`outputs: [{id, type, value}]`), typed like an input.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowOutput {
    pub id: String,
    pub type_name: String,
    pub value: Value,
    pub required: bool,
}

/// A trigger declared on a flow. Kind-specific properties are kept raw:
/// the trigger rules interpret them.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    pub id: String,
    pub type_name: String,
    pub trigger_type: TriggerType,
    pub disabled: bool,
    /// Every property of the trigger as written (including `id` and `type`).
    pub properties: IndexMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    pub kind: RetryKind,
    pub max_attempt: Option<u32>,
    /// ISO-8601 duration.
    pub max_duration: Option<String>,
    pub warning_on_retry: bool,
    /// Flow-level retry only: retry the failed task or start a new execution.
    pub behavior: RetryBehavior,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RetryBehavior {
    #[default]
    RetryFailedTask,
    CreateNewExecution,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RetryKind {
    Constant {
        interval: String,
    },
    Exponential {
        interval: String,
        max_interval: String,
        delay_factor: Option<f64>,
    },
    Random {
        min_interval: String,
        max_interval: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConcurrencyBehavior {
    Queue,
    Cancel,
    Fail,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Concurrency {
    pub limit: u32,
    pub behavior: ConcurrencyBehavior,
}

/// `pluginDefaults` (legacy `taskDefaults`): default property values per type.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginDefault {
    pub type_name: String,
    pub forced: bool,
    pub values: IndexMap<String, Value>,
}

impl Flow {
    /// Every task of the flow (tasks, errors, finally, afterExecution and all
    /// their descendants), depth first in declaration order.
    pub fn all_tasks(&self) -> Vec<&Task> {
        fn walk<'a>(task: &'a Task, out: &mut Vec<&'a Task>) {
            out.push(task);
            for child in task.children() {
                walk(child, out);
            }
        }
        let mut out = Vec::new();
        for task in self.root_lists().into_iter().flatten() {
            walk(task, &mut out);
        }
        out
    }

    /// The flow's own task lists, in [`Flow::all_tasks`] order.
    fn root_lists(&self) -> [&[Task]; 4] {
        [&self.tasks, &self.errors, &self.finally, &self.after_execution]
    }

    /// Whether a Pause task is anywhere in the flow.
    pub fn has_pause(&self) -> bool {
        self.task_index.get(self).has_pause
    }

    /// Finds a task anywhere in the flow by id.
    pub fn find_task(&self, id: &str) -> Option<&Task> {
        let path = self.task_index.get(self).paths.get(id)?;
        let mut lists = self.root_lists().to_vec();
        let mut found = None;
        for &(list, position) in path {
            let task = lists.get(list as usize)?.get(position as usize)?;
            lists = task.kind.child_lists();
            found = Some(task);
        }
        match found {
            Some(task) if task.id == id => Some(task),
            // The tasks changed after the index was built: look the slow way.
            _ => self.all_tasks().into_iter().find(|t| t.id == id),
        }
    }
}
