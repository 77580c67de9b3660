//! What a task run does when it runs, outside the state machine.
//!
//! - [`light`]: Log, Return, Echo, OutputValues, Fail, Assert: run inline by the driver.
//! - [`prepare_io`]: a task that does I/O (a [`plugin`](crate::plugin)) rendered into the
//!   job a worker (the `TaskWorker` port) runs.
//!
//! Flowable tasks, Sleep, Pause, Labels and Subflow are handled by the executor.

mod light;
mod working_directory;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde_json::Value;

use crate::env::Env;
use crate::execution::TaskResult;
use crate::execution::{Execution, StateType, TaskRun};
use crate::expression::{write_pebble, ExpressionError, RenderContext};
use crate::flow::IoTask;
use crate::flow::{Flow, Task, TaskKind};
use crate::plugin::foreach_item::merge_properties;
use crate::plugin::{IoCall, IoJob, IoKind, TaskRunContext};
use crate::run_variables;
use crate::run_variables::readable_prefixes;

pub(crate) use light::run;

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
    let merge = merge_step(execution, task_run, task);
    let task = merge.as_ref().unwrap_or(task);
    let job = with_renderer(flow, execution, task_run, task, env, &[], |_, render| {
        let mut job = prepare_call(task, context, render, env.now)?;
        if let IoCall::Script(call) = &mut job.call {
            call.shared_folder = working_directory::shared_folder(flow, execution, task_run, render)
                .map_err(|message| job.task_run.failed(message, env.now))?;
        }
        Ok(job)
    })?;
    // The files a task sends are held to the rule of `read()`.
    let prefixes = readable_prefixes(execution);
    if let Some(file) = job
        .call
        .files_read()
        .into_iter()
        .find(|f| !run_variables::may_read(f, &prefixes))
    {
        return Err(job
            .task_run
            .failed(run_variables::unreadable_message(file), env.now));
    }
    Ok(IoJob {
        readable_prefixes: prefixes,
        ..job
    })
}

/// A ForEachItem's `{id}_merge` step with what it writes: the subflow outputs its
/// `{id}_items` sibling gathered.
fn merge_step(execution: &Execution, task_run: &TaskRun, task: &Task) -> Option<Task> {
    let TaskKind::Io(io) = &task.kind else {
        return None;
    };
    if io.kind != IoKind::ForEachItemMerge {
        return None;
    }
    let base = task.id.strip_suffix("_merge").unwrap_or(&task.id);
    let items = execution
        .find_child(
            task_run.parent_task_run_id.as_deref(),
            &format!("{base}_items"),
            task_run.value.as_deref(),
        )
        .and_then(|k| execution.task_runs().get(k))?;
    let values = items.iteration_values.as_deref().unwrap_or(&[]);
    let mut merge = task.clone();
    merge.kind = TaskKind::Io(IoTask {
        kind: io.kind,
        properties: merge_properties(values),
    });
    Some(merge)
}

/// The job of a task that does I/O, its properties rendered with `render`.
fn prepare_call(
    task: &Task,
    context: TaskRunContext,
    render: &dyn Fn(&Value) -> Result<String, ExpressionError>,
    now: DateTime<Utc>,
) -> Result<IoJob, TaskResult> {
    let call = match &task.kind {
        TaskKind::Io(t) => (t.kind.spec().prepare)(&t.properties, render).map(|call| (t.kind, call)),
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
        Ok((kind, call)) => Ok(IoJob {
            kind,
            call,
            task_run: context,
            timeout,
            readable_prefixes: Vec::new(),
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
    let mut vars = run_variables::for_task_run(flow, execution, task_run, task, env.into());
    if let (TaskKind::Io(io), Value::Object(map)) = (&task.kind, &mut vars) {
        // A task type's own variables (a script task's `workingDir`…).
        map.extend(crate::plugin::task_variables(io.kind, &io.properties));
    }
    let prefixes = readable_prefixes(execution);
    let ctx = RenderContext {
        variables: &vars,
        files: env.files,
        readable_prefixes: &prefixes,
        error_logs,
        now: env.now,
        secrets: env.secrets,
        kv: env.kv,
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
