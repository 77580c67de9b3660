//! What a task run does when it runs, outside the state machine.
//!
//! - [`light`]: Log, Return, Echo, OutputValues, Fail: run inline by the driver.
//! - [`http`]: `http.Request`, a task that does I/O: the core renders it into an
//!   [`IoCall`] and turns the worker's answer into a result; a worker (the
//!   `TaskWorker` port) does the I/O.
//!
//! Flowable tasks, Sleep, Pause, Labels and Subflow are handled by the executor.
//! Adding a task that does I/O: a [`TaskType`](crate::flow::TaskType) entry that says
//! it runs on a worker, its parser, a module here (render + result), one [`IoCall`]
//! variant, and the worker's module that does the I/O.

pub mod http;
mod light;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde_json::Value;

use crate::env::Env;
use crate::execution::TaskResult;
use crate::execution::{Execution, LogEntry, LogLevel, StateType, TaskRun};
use crate::expression::{write_pebble, ExpressionError, RenderContext};
use crate::flow::{Flow, Task, TaskKind};
use crate::input::execution_storage_prefix;
use crate::run_variables;
use crate::run_variables::readable_prefixes;

pub(crate) use light::run;

/// Which task run a worker runs: enough to write its log lines and files.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRunContext {
    pub namespace: String,
    pub flow_id: String,
    pub execution_id: String,
    pub task_id: String,
    pub task_run_id: String,
    pub attempt_number: u32,
    /// Minimum level of the lines kept (the task's `logLevel`).
    pub log_level: Option<LogLevel>,
}

impl TaskRunContext {
    fn new(execution: &Execution, task_run: &TaskRun, log_level: Option<LogLevel>) -> TaskRunContext {
        TaskRunContext {
            namespace: execution.namespace.clone(),
            flow_id: execution.flow_id.clone(),
            execution_id: execution.id.clone(),
            task_id: task_run.task_id.clone(),
            task_run_id: task_run.id.clone(),
            attempt_number: task_run.attempts.len().max(1) as u32,
            log_level,
        }
    }

    /// A log line of this attempt, or `None` below the task's `logLevel`.
    pub fn log(&self, level: LogLevel, message: impl Into<String>, at: DateTime<Utc>) -> Option<LogEntry> {
        if self.log_level.is_some_and(|min| level < min) {
            return None;
        }
        Some(LogEntry {
            namespace: self.namespace.clone(),
            flow_id: self.flow_id.clone(),
            task_id: Some(self.task_id.clone()),
            execution_id: self.execution_id.clone(),
            task_run_id: Some(self.task_run_id.clone()),
            attempt_number: Some(self.attempt_number),
            trigger_id: None,
            timestamp: at,
            level,
            thread: None,
            message: message.into(),
        })
    }

    /// Where the task run's output files go (`kestra:///…/tasks/{taskId}/{taskRunId}/`).
    pub fn storage_prefix(&self) -> String {
        format!(
            "{}tasks/{}/{}/",
            execution_storage_prefix(&self.namespace, &self.flow_id, &self.execution_id),
            self.task_id,
            self.task_run_id
        )
    }

    /// A result with the given state and outputs and no log lines.
    fn result(&self, state: StateType, outputs: IndexMap<String, Value>) -> TaskResult {
        TaskResult {
            state,
            outputs,
            logs: Vec::new(),
        }
    }

    /// A FAILED result whose one log line says why.
    pub fn failed(&self, message: impl Into<String>, at: DateTime<Utc>) -> TaskResult {
        let mut result = self.result(StateType::Failed, IndexMap::new());
        result.logs.extend(self.log(LogLevel::Error, message, at));
        result
    }
}

/// The I/O a task run asks of a worker, rendered.
#[derive(Debug, Clone, PartialEq)]
pub enum IoCall {
    Http(http::HttpCall),
}

/// A task run for a worker: what to do, and for which task run.
#[derive(Debug, Clone, PartialEq)]
pub struct IoJob {
    pub call: IoCall,
    pub task_run: TaskRunContext,
    /// The task's `timeout`, if any (the worker stops the I/O then).
    pub timeout: Option<std::time::Duration>,
}

/// Whether a task run is run by a worker (it does I/O) rather than inline.
pub fn runs_on_worker(flow: &Flow, execution: &Execution, task_run_id: &str) -> bool {
    execution
        .find_task_run(task_run_id)
        .and_then(|tr| flow.find_task(&tr.task_id))
        .is_some_and(|task| task.kind.task_type().runs_on_worker())
}

/// Renders a task run that does I/O into the job a worker runs, or the FAILED result
/// that says why it cannot run (a property does not render, the task is gone).
pub fn prepare_io(
    flow: &Flow,
    execution: &Execution,
    task_run_id: &str,
    env: &Env,
) -> Result<IoJob, TaskResult> {
    let (task_run, task) = task_of(flow, execution, task_run_id, env)?;
    let context = TaskRunContext::new(execution, task_run, task.log_level);
    with_renderer(flow, execution, task_run, task, env, &[], |_, render| {
        prepare_call(task, context, render, env.now)
    })
}

/// The job of a task that does I/O, its properties rendered with `render`.
fn prepare_call(
    task: &Task,
    context: TaskRunContext,
    render: &dyn Fn(&Value) -> Result<String, ExpressionError>,
    now: DateTime<Utc>,
) -> Result<IoJob, TaskResult> {
    let call = match &task.kind {
        TaskKind::HttpRequest(t) => http::prepare(t, render)
            .map(IoCall::Http)
            .map_err(|e| e.to_string()),
        other => Err(format!(
            "`{}` ({}) does not run on a worker",
            task.id,
            other.task_type().name()
        )),
    };
    let timeout = match &task.timeout {
        Some(v) => match render(v).map(|s| crate::input::parse_iso_duration(&s)) {
            Ok(Some(d)) => d.to_std().ok(),
            _ => None,
        },
        None => None,
    };
    match call {
        Ok(call) => Ok(IoJob {
            call,
            task_run: context,
            timeout,
        }),
        Err(message) => Err(context.failed(message, now)),
    }
}

/// Calls `f` with the render context of a task run and a renderer of its property
/// values (strings as templates, other values printed as Pebble prints them).
fn with_renderer<R>(
    flow: &Flow,
    execution: &Execution,
    task_run: &TaskRun,
    task: &Task,
    env: &Env,
    error_logs: &[Value],
    f: impl FnOnce(&RenderContext, &dyn Fn(&Value) -> Result<String, ExpressionError>) -> R,
) -> R {
    let vars = run_variables::for_task_run(flow, execution, task_run, task, env.into());
    let prefixes = readable_prefixes(execution);
    let ctx = RenderContext {
        variables: &vars,
        files: env.files,
        readable_prefixes: &prefixes,
        error_logs,
        now: env.now,
        secrets: env.secrets,
    };
    let render = |v: &Value| -> Result<String, ExpressionError> {
        match v {
            Value::String(s) => env.expressions.render(s, &ctx),
            other => Ok(write_pebble(other)),
        }
    };
    f(&ctx, &render)
}

/// The task run and its task, or the FAILED result that says which is missing.
fn task_of<'f, 'e>(
    flow: &'f Flow,
    execution: &'e Execution,
    task_run_id: &str,
    env: &Env,
) -> Result<(&'e TaskRun, &'f Task), TaskResult> {
    let Some(task_run) = execution.find_task_run(task_run_id) else {
        return Err(TaskResult {
            state: StateType::Failed,
            outputs: IndexMap::new(),
            logs: Vec::new(),
        });
    };
    match flow.find_task(&task_run.task_id) {
        Some(task) => Ok((task_run, task)),
        None => Err(TaskRunContext::new(execution, task_run, None).failed(
            format!(
                "Task `{}` is not in revision {} of the flow",
                task_run.task_id, execution.flow_revision
            ),
            env.now,
        )),
    }
}
