//! The light tasks, run inline by the driver: Log, Return, Echo, OutputValues, Fail,
//! Assert.

use indexmap::IndexMap;
use serde_json::Value;

use super::{task_of, with_renderer, TaskRunContext};
use crate::env::Env;
use crate::execution::{Execution, LogEntry, StateType, TaskResult};
use crate::expression::{is_truthy, ExpressionEngine, ExpressionError, RenderContext};
use crate::flow::{Flow, LogLevel, Task, TaskKind};

struct Run {
    context: TaskRunContext,
    now: chrono::DateTime<chrono::Utc>,
    logs: Vec<LogEntry>,
}

impl Run {
    fn log(&mut self, level: LogLevel, message: String) {
        self.logs.extend(self.context.log(level, message, self.now));
    }

    fn done(self, state: StateType, outputs: IndexMap<String, Value>) -> TaskResult {
        TaskResult {
            state,
            outputs,
            logs: self.logs,
        }
    }

    fn failed(mut self, error: impl std::fmt::Display) -> TaskResult {
        self.log(LogLevel::Error, error.to_string());
        self.done(StateType::Failed, IndexMap::new())
    }
}

/// Runs a light task run and reports its result; never panics.
pub(crate) fn run(
    flow: &Flow,
    execution: &Execution,
    task_run_id: &str,
    env: &Env,
    error_logs: &[Value],
) -> TaskResult {
    let (task_run, task) = match task_of(flow, execution, task_run_id, env) {
        Ok(found) => found,
        Err(failed) => return failed,
    };
    let run = Run {
        context: TaskRunContext::new(execution, task_run, task.log_level),
        now: env.now,
        logs: Vec::new(),
    };
    with_renderer(flow, execution, task_run, task, env, error_logs, |ctx, render| {
        run_task(task, run, ctx, render, env.expressions)
    })
}

fn run_task(
    task: &Task,
    mut run: Run,
    ctx: &RenderContext,
    render: &dyn Fn(&Value) -> Result<String, ExpressionError>,
    engine: &ExpressionEngine,
) -> TaskResult {
    match &task.kind {
        TaskKind::Log { message, level } => {
            let lines: Vec<&Value> = match message {
                Value::Array(items) => items.iter().collect(),
                other => vec![other],
            };
            for line in lines {
                match render(line) {
                    Ok(text) => run.log(*level, text),
                    Err(e) => return run.failed(e),
                }
            }
            run.done(StateType::Success, IndexMap::new())
        }
        TaskKind::Return { format } => match render(format) {
            Ok(value) => {
                let mut outputs = IndexMap::new();
                outputs.insert("value".to_string(), Value::String(value));
                run.done(StateType::Success, outputs)
            }
            Err(e) => run.failed(e),
        },
        TaskKind::Echo { format, level } => match render(format) {
            Ok(text) => {
                run.log(*level, text);
                run.done(StateType::Success, IndexMap::new())
            }
            Err(e) => run.failed(e),
        },
        TaskKind::OutputValues { values } => match engine.render_value(values, ctx) {
            Ok(rendered) => {
                let mut outputs = IndexMap::new();
                outputs.insert("values".to_string(), rendered);
                run.done(StateType::Success, outputs)
            }
            Err(e) => run.failed(e),
        },
        TaskKind::Fail {
            condition,
            error_message,
        } => {
            if let Some(condition) = condition {
                match render(condition) {
                    Ok(c) if !is_truthy(&c) => return run.done(StateType::Success, IndexMap::new()),
                    Ok(_) => {}
                    Err(e) => return run.failed(e),
                }
            }
            match render(error_message) {
                Ok(message) => run.failed(message),
                Err(e) => run.failed(e),
            }
        }
        TaskKind::Assert {
            conditions,
            error_message,
        } => {
            // Every condition is checked and each failure logged, as Kestra does.
            let mut failed = 0;
            for condition in conditions {
                let written = match condition {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                match render(condition) {
                    Ok(rendered) if is_truthy(&rendered) => {}
                    Ok(_) => {
                        failed += 1;
                        run.log(LogLevel::Error, format!("Assertion `{written}` failed!"));
                    }
                    Err(e) => {
                        failed += 1;
                        run.log(
                            LogLevel::Error,
                            format!("Assertion `{written}` failed, failed to render `{e}`"),
                        );
                    }
                }
            }
            if failed == 0 {
                return run.done(StateType::Success, IndexMap::new());
            }
            let mut message = format!("{failed} assertion{} failed!", if failed > 1 { "s" } else { "" });
            if let Some(extra) = error_message {
                match render(extra) {
                    Ok(extra) => message.push_str(&format!("\n{extra}")),
                    Err(e) => return run.failed(e),
                }
            }
            run.failed(message)
        }
        other => run.failed(format!(
            "`{}` ({}) is run by the executor, not by a worker",
            task.id,
            other.task_type().name()
        )),
    }
}
