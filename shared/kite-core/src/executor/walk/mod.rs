//! How the state machine advances an execution: after each event, the flow's
//! task tree is walked against the existing task runs; missing task runs are
//! created when their turn comes, and flowable task runs finish when their
//! branches do. Lookups go through the execution's index, so a step costs what
//! it touches.
//!
//! - `children`: which child task runs exist and come next
//! - `create`: creating task runs and deciding branches
//! - `attempts`: attempts, timeouts, retries
//! - `events`: kill, resume, restart, timers, subflow ends
//! - `render`: rendering properties, log lines

mod attempts;
mod children;
mod create;
mod events;
mod foreach_item;
mod render;
mod updates;

use chrono::Duration;
use indexmap::IndexMap;
use serde_json::{json, Value};

use super::{Command, Env, Event, ExecutorError, SubflowRequest, TaskRunError, TimerKind};
use crate::execution::{
    Execution, ExecutionTrigger, Label, LogEntry, LogLevel, State, StateType, TaskRun, TaskRunAttempt,
};
use crate::expression::{is_truthy, write_pebble, ExpressionError, RenderContext};
use crate::flow::{Flow, Flowable, RetryKind, Task, TaskKind};
use crate::input::{parse_iso_duration, resolve_inputs, type_flow_output_in, InputContext, InputValue};
use crate::run_variables;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Running,
    Done(StateType),
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    Sequential,
    /// At most this many children at once (0: no limit).
    Parallel(u32),
}

pub(super) struct Machine<'a> {
    flow: &'a Flow,
    env: &'a Env<'a>,
    has_pause: bool,
    commands: Vec<Command>,
    logs: Vec<LogEntry>,
    /// An Exit task ran in this walk: the execution ends in this state once the walk returns.
    exit: Option<Exit>,
    /// While a ForEachItem's subflow request renders: `taskrun.items` and `taskrun.iteration`.
    batch: Option<(String, u32)>,
}

/// What an Exit task asked for: its task run and the execution's final state.
struct Exit {
    task_run: usize,
    state: StateType,
}

fn worse(a: StateType, b: StateType) -> StateType {
    fn rank(s: StateType) -> u8 {
        match s {
            StateType::Killed => 4,
            StateType::Failed => 3,
            StateType::Warning => 2,
            _ => 1,
        }
    }
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

fn settled(s: StateType) -> StateType {
    match s {
        StateType::Skipped | StateType::Success => StateType::Success,
        other => other,
    }
}

impl<'a> Machine<'a> {
    pub(super) fn new(flow: &'a Flow, env: &'a Env<'a>) -> Self {
        Machine {
            flow,
            env,
            has_pause: flow.has_pause(),
            commands: Vec::new(),
            logs: Vec::new(),
            exit: None,
            batch: None,
        }
    }

    pub(super) fn finish(mut self) -> Vec<Command> {
        if !self.logs.is_empty() {
            self.commands
                .insert(0, Command::StoreLogs(std::mem::take(&mut self.logs)));
        }
        self.commands
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.env.now
    }

    pub(super) fn handle(&mut self, exec: &mut Execution, event: Event) -> Result<(), ExecutorError> {
        exec.sync_index();
        match event {
            Event::Start => {
                if matches!(exec.state.current, StateType::Created | StateType::Queued) {
                    exec.state.set(StateType::Running, self.now());
                    // The flow's `timeout` bounds the whole execution (killed when it fires).
                    if let Some(d) = self.flow.timeout.as_deref().and_then(parse_iso_duration) {
                        self.commands.push(Command::ScheduleTimer {
                            task_run_id: String::new(),
                            at: self.now() + d,
                            timer: TimerKind::ExecutionTimeout,
                        });
                    }
                    self.reconcile(exec);
                }
            }
            Event::TaskRunFinished { task_run_id, result } => {
                let Some(i) = exec.position(&task_run_id) else {
                    return Ok(());
                };
                let tr = &runs(exec)[i];
                if tr.state.is_terminated() || tr.state.current == StateType::Retrying {
                    return Ok(());
                }
                if exec.state.is_terminated() && !self.is_after_execution(&tr.task_id) {
                    return Ok(());
                }
                self.logs.extend(result.logs);
                let size = serde_json::to_vec(&result.outputs).map_or(0, |bytes| bytes.len());
                if size > self.env.max_task_output {
                    let max = self.env.max_task_output;
                    let message = format!(
                        "The task's outputs are {size} bytes of JSON; at most {max} are allowed (KITE_MAX_TASK_OUTPUT)"
                    );
                    self.log_task(exec, i, LogLevel::Error, message);
                    self.finish_leaf(exec, i, StateType::Failed, IndexMap::new());
                } else {
                    self.finish_leaf(exec, i, result.state, result.outputs);
                }
                self.reconcile(exec);
            }
            Event::Kill => self.kill(exec),
            Event::GiveUp { reason } => self.give_up(exec, reason),
            Event::Resume { task_run_id, inputs } => self.resume(exec, task_run_id, inputs)?,
            Event::Restart => self.restart(exec),
            Event::TimerFired { task_run_id, timer } => self.timer(exec, &task_run_id, timer),
            Event::SubflowEnded { task_run_id, child } => self.subflow_ended(exec, &task_run_id, &child),
        }
        self.settle_paused(exec);
        Ok(())
    }

    /// An execution is PAUSED while a Pause waits and nothing else can run.
    fn settle_paused(&mut self, exec: &mut Execution) {
        if !self.has_pause || !matches!(exec.state.current, StateType::Running | StateType::Paused) {
            return;
        }
        let mut paused = false;
        let mut active = false;
        for tr in runs(exec) {
            match tr.state.current {
                StateType::Paused => paused = true,
                s if s.is_terminated() => {}
                _ => {
                    let flowable = self
                        .flow
                        .find_task(&tr.task_id)
                        .is_some_and(|t| t.task_type().is_flowable());
                    if !flowable {
                        active = true;
                    }
                }
            }
        }
        let now = self.now();
        if paused && !active {
            exec.state.set(StateType::Paused, now);
        } else if exec.state.current == StateType::Paused && !paused {
            exec.state.set(StateType::Running, now);
        }
    }

    fn is_after_execution(&self, task_id: &str) -> bool {
        fn contains(task: &Task, id: &str) -> bool {
            task.id == id || task.children().into_iter().any(|c| contains(c, id))
        }
        self.flow.after_execution.iter().any(|t| contains(t, task_id))
    }

    // ---------------------------------------------------------------- walking

    fn reconcile(&mut self, exec: &mut Execution) {
        let flow = self.flow;
        match exec.state.current {
            StateType::Running | StateType::Paused | StateType::Restarted => {
                let status = self.body(
                    exec,
                    &flow.tasks,
                    &flow.errors,
                    &flow.finally,
                    None,
                    None,
                    Mode::Sequential,
                    None,
                );
                if let Some(exit) = self.exit.take() {
                    self.exit(exec, exit);
                } else if let Status::Done(state) = status {
                    self.terminate(exec, state);
                }
            }
            s if s.is_terminated() && !flow.after_execution.is_empty() => {
                self.list(exec, &flow.after_execution, None, None, None, Mode::Sequential);
                self.after_execution_exit(exec);
            }
            _ => {}
        }
    }

    fn terminate(&mut self, exec: &mut Execution, state: StateType) {
        let mut state = settled(state);
        if !matches!(state, StateType::Failed | StateType::Killed) && !self.flow.outputs.is_empty() {
            match self.flow_outputs(exec) {
                Ok(outputs) => exec.outputs = outputs,
                Err(e) => {
                    self.log_execution(exec, LogLevel::Error, e.to_string());
                    exec.outputs.clear();
                    state = StateType::Failed;
                }
            }
        }
        exec.state.set(state, self.now());
        self.commands.push(Command::Terminated { state });
        if !self.flow.after_execution.is_empty() {
            self.list(
                exec,
                &self.flow.after_execution,
                None,
                None,
                None,
                Mode::Sequential,
            );
            self.after_execution_exit(exec);
        }
    }

    /// An Exit among `afterExecution` tasks (the execution has ended) only ends its own
    /// task run and the tasks after it.
    fn after_execution_exit(&mut self, exec: &mut Execution) {
        if let Some(exit) = self.exit.take() {
            let now = self.now();
            let tr = &mut runs_mut(exec)[exit.task_run];
            if let Some(a) = tr.attempts.last_mut() {
                a.state.set(exit.state, now);
            }
            tr.state.set(exit.state, now);
        }
    }

    fn flow_outputs(&self, exec: &Execution) -> Result<IndexMap<String, Value>, TaskRunError> {
        let vars = run_variables::for_execution(self.flow, exec, self.env.into());
        let prefixes = self.readable_prefixes(exec);
        let ctx = self.render_context(&vars, &prefixes, &[]);
        // SECRET outputs are encrypted with the configured key, as SECRET inputs are.
        let typing = InputContext {
            namespace: &exec.namespace,
            flow_id: &exec.flow_id,
            execution_id: &exec.id,
            secret_key: self.env.secret_key,
            ids: Some(self.env.ids),
            condition: None,
        };
        let mut out = IndexMap::new();
        for o in &self.flow.outputs {
            let rendered = match &o.value {
                Value::String(s) => self.env.expressions.render_typed(s, &ctx),
                other => self.env.expressions.render_value(other, &ctx),
            }?;
            let typed = type_flow_output_in(&o.type_name, &o.id, rendered, &typing)?;
            out.insert(o.id.clone(), typed);
        }
        Ok(out)
    }

    // ------------------------------------------------------------ task runs

    // -------------------------------------------------------------- events

    // ------------------------------------------------------------ rendering
}

/// allowFailure turns a failure into a warning; allowWarning a warning into success.
fn adjust(task: &Task, state: StateType) -> StateType {
    match state {
        StateType::Failed if task.allow_failure => StateType::Warning,
        StateType::Warning if task.allow_warning => StateType::Success,
        other => other,
    }
}

fn runs(exec: &Execution) -> &[TaskRun] {
    exec.task_run_list.as_deref().unwrap_or(&[])
}

fn runs_mut(exec: &mut Execution) -> &mut Vec<TaskRun> {
    exec.task_run_list.get_or_insert_with(Vec::new)
}

/// Java's `toString` of collections, as Kestra's messages print them.
fn java_string(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Array(a) => format!("[{}]", a.iter().map(java_string).collect::<Vec<_>>().join(", ")),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{k}={}", java_string(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => write_pebble(other),
    }
}

fn empty_flow() -> Flow {
    Flow {
        id: String::new(),
        namespace: String::new(),
        revision: None,
        description: None,
        labels: Vec::new(),
        inputs: Vec::new(),
        variables: IndexMap::new(),
        tasks: Vec::new(),
        errors: Vec::new(),
        finally: Vec::new(),
        after_execution: Vec::new(),
        outputs: Vec::new(),
        triggers: Vec::new(),
        task_index: Default::default(),
        disabled: false,
        retry: None,
        timeout: None,
        concurrency: None,
        plugin_defaults: Vec::new(),
    }
}
