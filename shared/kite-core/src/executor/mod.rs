//! The execution state machine: `(execution, event) → (execution, commands)`.
//!
//! [`apply`] never performs I/O: it updates the execution in place and returns
//! the [`Command`]s a driver must carry out (run a task run, store logs, arm a
//! timer, create a subflow execution). [`drive`] interprets those commands, the
//! same way for the in-memory [`crate::runner`], the local server and the Lambdas.
//!
//! - `walk`: the state machine itself (which task runs to create, retry, end)
//! - [`drive`]: one pass of events and commands over an execution

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde_json::Value;

use crate::execution::{Execution, ExecutionMetadata, ExecutionTrigger, Label, LogEntry, State, StateType};
use crate::expression::ExpressionError;
use crate::flow::{ConcurrencyBehavior, Flow};
use crate::input::InputError;

pub mod drive;
mod walk;

pub use drive::{DriveError, Driver, Need, Pass, Timer};

pub use crate::env::Env;
pub use crate::execution::TaskResult;
pub use crate::id::IdSource;

/// A request to create an execution (already-typed inputs).
#[derive(Debug, Clone, Default)]
pub struct NewExecution {
    pub id: String,
    pub inputs: IndexMap<String, Value>,
    pub labels: Vec<Label>,
    pub trigger: Option<ExecutionTrigger>,
    pub schedule_date: Option<DateTime<Utc>>,
    /// The execution this one replays (`parentId`).
    pub parent: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Start,
    TaskRunFinished {
        task_run_id: String,
        result: TaskResult,
    },
    Kill,
    /// Resumes a paused execution; `inputs` answer the Pause task's `onResume`.
    Resume {
        task_run_id: Option<String>,
        inputs: IndexMap<String, Value>,
    },
    Restart,
    TimerFired {
        task_run_id: String,
        timer: TimerKind,
    },
    SubflowEnded {
        task_run_id: String,
        child: Box<Execution>,
    },
    /// The host gives up on the execution (its work crashed the process again and again):
    /// every unfinished task run and the execution FAIL, and `reason` is logged as an ERROR.
    GiveUp {
        reason: String,
    },
}

/// Why a timer was armed; serialized by variant name in stored queue items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum TimerKind {
    PauseDelay,
    PauseTimeout,
    SleepEnd,
    RetryDelay,
    TaskTimeout,
    ExecutionTimeout,
}

impl TimerKind {
    /// The name used in queue item ids and stored work (the serialized form).
    pub fn name(self) -> &'static str {
        match self {
            TimerKind::PauseDelay => "PauseDelay",
            TimerKind::PauseTimeout => "PauseTimeout",
            TimerKind::SleepEnd => "SleepEnd",
            TimerKind::RetryDelay => "RetryDelay",
            TimerKind::TaskTimeout => "TaskTimeout",
            TimerKind::ExecutionTimeout => "ExecutionTimeout",
        }
    }
}

/// A child execution a Subflow task asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct SubflowRequest {
    pub parent_task_run_id: String,
    /// The id the child execution must get (decided here, so retries are idempotent).
    pub execution_id: String,
    pub namespace: String,
    pub flow_id: String,
    pub revision: Option<i64>,
    pub inputs: IndexMap<String, Value>,
    pub labels: Vec<Label>,
    pub wait: bool,
    pub trigger: ExecutionTrigger,
    pub schedule_date: Option<DateTime<Utc>>,
}

/// Commands are few per step and consumed at once; the subflow request stays
/// unboxed because the drivers match on it by value (agreed API).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// A worker must run this task run and report `TaskRunFinished`.
    RunTask {
        task_run_id: String,
    },
    StoreLogs(Vec<LogEntry>),
    ScheduleTimer {
        task_run_id: String,
        at: DateTime<Utc>,
        timer: TimerKind,
    },
    CreateSubflowExecution(SubflowRequest),
    /// The execution reached a terminal state (flow triggers listen to this).
    Terminated {
        state: StateType,
    },
}

/// Why the state machine fails a task run (or the execution, for flow outputs): the
/// message becomes its ERROR log line, in Kestra's words where Kestra has them.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TaskRunError {
    #[error(transparent)]
    Render(#[from] ExpressionError),
    #[error(transparent)]
    Output(#[from] InputError),
    #[error("Switch task `{task_id}` doesn't match any cases for value `{value}` and has no defaults")]
    NoSwitchCase { task_id: String, value: String },
    #[error("Unable to read the values of `{task_id}` as a list: `{rendered}`")]
    ValuesNotAList { task_id: String, rendered: String },
    #[error("The values of `{task_id}` must be a list, not `{value}`")]
    ValuesOfWrongType { task_id: String, value: Value },
    #[error("Found '{count}' null values on Each, with values={values}")]
    NullValues { count: usize, values: String },
    #[error("Invalid scheduleDate `{0}`")]
    InvalidScheduleDate(String),
    #[error("Invalid duration `{0}`: use ISO-8601, e.g. PT30S")]
    InvalidDuration(String),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExecutorError {
    #[error("{0}")]
    InvalidInputs(#[from] InputError),
    #[error("Illegal state: {0}")]
    IllegalState(String),
}

/// What a flow's concurrency limit says about a new execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConcurrencyDecision {
    Admit,
    Queue,
    Cancel,
    Fail,
}

/// Applies `concurrency.limit` given how many executions of the flow are running.
pub fn concurrency_decision(flow: &Flow, running: usize) -> ConcurrencyDecision {
    match &flow.concurrency {
        Some(c) if running >= c.limit as usize => match c.behavior {
            ConcurrencyBehavior::Queue => ConcurrencyDecision::Queue,
            ConcurrencyBehavior::Cancel => ConcurrencyDecision::Cancel,
            ConcurrencyBehavior::Fail => ConcurrencyDecision::Fail,
        },
        _ => ConcurrencyDecision::Admit,
    }
}

/// A new execution in CREATED, labelled as Kestra labels it: the flow's labels
/// (without `system.*`), the request's, and `system.correlationId`.
pub fn new_execution(flow: &Flow, request: NewExecution, now: DateTime<Utc>) -> Execution {
    let mut labels: Vec<Label> = flow
        .labels
        .iter()
        .filter(|(k, _)| !k.starts_with("system."))
        .map(|(k, v)| Label {
            key: k.clone(),
            value: v.clone(),
        })
        .collect();
    for label in request.labels {
        labels.retain(|l| l.key != label.key);
        labels.push(label);
    }
    if !labels.iter().any(|l| l.key == "system.correlationId") {
        labels.push(Label {
            key: "system.correlationId".into(),
            value: request.id.clone(),
        });
    }
    Execution {
        id: request.id.clone(),
        namespace: flow.namespace.clone(),
        flow_id: flow.id.clone(),
        flow_revision: flow.revision.unwrap_or(1),
        task_run_list: None,
        inputs: request.inputs,
        outputs: IndexMap::new(),
        labels,
        // As Kestra, an execution starts with the flow's variables, which
        // SetVariables/UnsetVariables then change.
        variables: (!flow.variables.is_empty()).then(|| flow.variables.clone()),
        state: State::new(StateType::Created, now),
        parent_id: request.parent,
        original_id: Some(request.id),
        trigger: request.trigger,
        deleted: false,
        metadata: ExecutionMetadata {
            attempt_number: 1,
            original_created_date: now,
        },
        schedule_date: request.schedule_date,
        index: Default::default(),
    }
}

/// Applies one event; returns what must be done next. Events that no longer
/// apply (a task run already finished, a timer for a resumed pause) are ignored.
pub fn apply(
    flow: &Flow,
    execution: &mut Execution,
    event: Event,
    env: &Env,
) -> Result<Vec<Command>, ExecutorError> {
    let mut machine = walk::Machine::new(flow, env);
    machine.handle(execution, event)?;
    Ok(machine.finish())
}
