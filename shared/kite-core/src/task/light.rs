//! The light tasks, run inline by the driver: Log, Return, Echo, OutputValues, Fail.

use indexmap::IndexMap;
use serde_json::Value;

use super::{task_of, TaskRunContext};
use crate::env::Env;
use crate::execution::TaskResult;
use crate::execution::{Execution, LogEntry, StateType};
use crate::expression::{is_truthy, write_pebble, ExpressionError, RenderContext};
use crate::flow::{Flow, LogLevel, TaskKind};
use crate::run_variables;
use crate::run_variables::readable_prefixes;

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
    let mut run = Run {
        context: TaskRunContext::new(execution, task_run, task.log_level),
        now: env.now,
        logs: Vec::new(),
    };
    let vars = run_variables::for_task_run(flow, execution, task_run, task, env.into());
    let prefixes = readable_prefixes(execution);
    let ctx = RenderContext {
        variables: &vars,
        files: env.files,
        readable_prefixes: &prefixes,
        error_logs,
        now: env.now,
    };
    let engine = env.expressions;
    let render = |v: &Value| -> Result<String, ExpressionError> {
        match v {
            Value::String(s) => engine.render(s, &ctx),
            other => Ok(write_pebble(other)),
        }
    };
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
        TaskKind::OutputValues { values } => match engine.render_value(values, &ctx) {
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
        other => run.failed(format!(
            "`{}` ({}) is run by the executor, not by a worker",
            task.id,
            other.task_type().name()
        )),
    }
}
