//! Task, trigger and condition type names: the current `io.kestra.plugin.core.*`
//! names and the legacy aliases Kestra still accepts.

use serde_json::Value;

use crate::plugin::{self, IoKind};

/// Every task type Kite can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskType {
    Log,
    Return,
    Echo,
    OutputValues,
    Fail,
    Assert,
    Labels,
    Exit,
    SetVariables,
    UnsetVariables,
    Sleep,
    Sequential,
    WorkingDirectory,
    Parallel,
    If,
    Switch,
    ForEach,
    EachSequential,
    EachParallel,
    Subflow,
    ForEachItem,
    ForEachItemExecutable,
    Pause,
    /// A task that does I/O (its names are in [`crate::plugin::io_tasks`]).
    Io(IoKind),
}

/// (type, current name, legacy aliases)
const TASK_TYPES: &[(TaskType, &str, &[&str])] = &[
    (
        TaskType::Log,
        "io.kestra.plugin.core.log.Log",
        &["io.kestra.core.tasks.log.Log"],
    ),
    (
        TaskType::Return,
        "io.kestra.plugin.core.debug.Return",
        &["io.kestra.core.tasks.debugs.Return"],
    ),
    (
        TaskType::Echo,
        "io.kestra.plugin.core.debug.Echo",
        &["io.kestra.core.tasks.debugs.Echo"],
    ),
    (
        TaskType::OutputValues,
        "io.kestra.plugin.core.output.OutputValues",
        &[],
    ),
    (
        TaskType::Fail,
        "io.kestra.plugin.core.execution.Fail",
        &["io.kestra.core.tasks.executions.Fail"],
    ),
    (TaskType::Assert, "io.kestra.plugin.core.execution.Assert", &[]),
    (
        TaskType::Labels,
        "io.kestra.plugin.core.execution.Labels",
        &["io.kestra.core.tasks.executions.Labels"],
    ),
    (TaskType::Exit, "io.kestra.plugin.core.execution.Exit", &[]),
    (
        TaskType::SetVariables,
        "io.kestra.plugin.core.execution.SetVariables",
        &[],
    ),
    (
        TaskType::UnsetVariables,
        "io.kestra.plugin.core.execution.UnsetVariables",
        &[],
    ),
    (TaskType::Sleep, "io.kestra.plugin.core.flow.Sleep", &[]),
    (
        TaskType::Sequential,
        "io.kestra.plugin.core.flow.Sequential",
        &["io.kestra.core.tasks.flows.Sequential"],
    ),
    (
        TaskType::WorkingDirectory,
        "io.kestra.plugin.core.flow.WorkingDirectory",
        &[
            "io.kestra.core.tasks.flows.WorkingDirectory",
            "io.kestra.core.tasks.flows.Worker",
        ],
    ),
    (
        TaskType::Parallel,
        "io.kestra.plugin.core.flow.Parallel",
        &["io.kestra.core.tasks.flows.Parallel"],
    ),
    (
        TaskType::If,
        "io.kestra.plugin.core.flow.If",
        &["io.kestra.core.tasks.flows.If"],
    ),
    (
        TaskType::Switch,
        "io.kestra.plugin.core.flow.Switch",
        &["io.kestra.core.tasks.flows.Switch"],
    ),
    (TaskType::ForEach, "io.kestra.plugin.core.flow.ForEach", &[]),
    (
        TaskType::EachSequential,
        "io.kestra.plugin.core.flow.EachSequential",
        &["io.kestra.core.tasks.flows.EachSequential"],
    ),
    (
        TaskType::EachParallel,
        "io.kestra.plugin.core.flow.EachParallel",
        &["io.kestra.core.tasks.flows.EachParallel"],
    ),
    (
        TaskType::Subflow,
        "io.kestra.plugin.core.flow.Subflow",
        &[
            "io.kestra.core.tasks.flows.Subflow",
            "io.kestra.core.tasks.flows.Flow",
        ],
    ),
    (
        TaskType::ForEachItem,
        "io.kestra.plugin.core.flow.ForEachItem",
        &["io.kestra.core.tasks.flows.ForEachItem"],
    ),
    (
        TaskType::ForEachItemExecutable,
        plugin::foreach_item::ITEMS_TYPE,
        &[],
    ),
    (
        TaskType::Pause,
        "io.kestra.plugin.core.flow.Pause",
        &["io.kestra.core.tasks.flows.Pause"],
    ),
];

impl TaskType {
    /// Resolves a type name, current or legacy.
    pub fn from_name(name: &str) -> Option<TaskType> {
        TASK_TYPES
            .iter()
            .find(|(_, current, legacy)| *current == name || legacy.contains(&name))
            .map(|(t, _, _)| *t)
            .or_else(|| plugin::by_name(name).map(|spec| TaskType::Io(spec.kind)))
    }

    /// The current (non-deprecated) type name.
    pub fn name(self) -> &'static str {
        if let TaskType::Io(kind) = self {
            return kind.spec().name;
        }
        TASK_TYPES
            .iter()
            .find(|(t, _, _)| *t == self)
            .map(|(_, n, _)| *n)
            .expect("every type is listed")
    }

    /// Current names of every supported task type, for error messages.
    pub fn supported_names() -> Vec<&'static str> {
        let io = plugin::io_tasks().map(|spec| spec.name);
        TASK_TYPES.iter().map(|(_, n, _)| *n).chain(io).collect()
    }

    /// Tasks that do I/O: a worker runs them (`kite_core::plugin::IoJob`), never the
    /// driver inline.
    pub fn runs_on_worker(self) -> bool {
        matches!(self, TaskType::Io(_))
    }

    /// Flowable tasks only decide which children run; they never reach a worker.
    pub fn is_flowable(self) -> bool {
        matches!(
            self,
            TaskType::Sequential
                | TaskType::WorkingDirectory
                | TaskType::Parallel
                | TaskType::If
                | TaskType::Switch
                | TaskType::ForEach
                | TaskType::EachSequential
                | TaskType::EachParallel
                | TaskType::ForEachItem
                | TaskType::Pause
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TriggerType {
    Webhook,
    Schedule,
    Flow,
}

const TRIGGER_TYPES: &[(TriggerType, &str, &[&str])] = &[
    (
        TriggerType::Webhook,
        "io.kestra.plugin.core.trigger.Webhook",
        &["io.kestra.core.models.triggers.types.Webhook"],
    ),
    (
        TriggerType::Schedule,
        "io.kestra.plugin.core.trigger.Schedule",
        &["io.kestra.core.models.triggers.types.Schedule"],
    ),
    (
        TriggerType::Flow,
        "io.kestra.plugin.core.trigger.Flow",
        &["io.kestra.core.models.triggers.types.Flow"],
    ),
];

impl TriggerType {
    pub fn from_name(name: &str) -> Option<TriggerType> {
        TRIGGER_TYPES
            .iter()
            .find(|(_, current, legacy)| *current == name || legacy.contains(&name))
            .map(|(t, _, _)| *t)
    }

    pub fn name(self) -> &'static str {
        TRIGGER_TYPES
            .iter()
            .find(|(t, _, _)| *t == self)
            .map(|(_, n, _)| *n)
            .expect("every type is listed")
    }

    pub fn supported_names() -> Vec<&'static str> {
        TRIGGER_TYPES.iter().map(|(_, n, _)| *n).collect()
    }
}

/// The condition kinds Kite evaluates (`Multiple` only on Flow triggers, as preconditions).
pub const CONDITION_KINDS: &[&str] = &[
    "Expression",
    "ExecutionStatus",
    "ExecutionFlow",
    "ExecutionNamespace",
    "ExecutionLabels",
    "ExecutionOutputs",
    "DayWeek",
    "DayWeekInMonth",
    "Weekend",
    "TimeBetween",
    "DateTimeBetween",
    "Not",
    "Or",
    "Multiple",
];

/// The condition's kind, whatever its written type: `io.kestra.plugin.core.condition.ExecutionStatus`
/// and the legacy `io.kestra.core.models.conditions.types.ExecutionStatusCondition` both give
/// `ExecutionStatus`.
pub fn condition_kind(condition: &Value) -> &str {
    let type_name = condition.get("type").and_then(Value::as_str).unwrap_or("");
    let last = type_name.rsplit('.').next().unwrap_or(type_name);
    last.strip_suffix("Condition")
        .filter(|s| !s.is_empty())
        .unwrap_or(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_and_current_names_resolve_to_the_same_type() {
        assert_eq!(
            TaskType::from_name("io.kestra.core.tasks.log.Log"),
            Some(TaskType::Log)
        );
        assert_eq!(
            TaskType::from_name("io.kestra.plugin.core.log.Log"),
            Some(TaskType::Log)
        );
        assert_eq!(
            TaskType::from_name("io.kestra.core.tasks.flows.Flow"),
            Some(TaskType::Subflow)
        );
        assert_eq!(TaskType::from_name("io.kestra.plugin.core.log.Nope"), None);
        assert_eq!(
            TriggerType::from_name("io.kestra.core.models.triggers.types.Webhook"),
            Some(TriggerType::Webhook)
        );
    }

    #[test]
    fn every_type_has_a_name() {
        for name in TaskType::supported_names() {
            assert_eq!(TaskType::from_name(name).map(TaskType::name), Some(name));
        }
    }
}
