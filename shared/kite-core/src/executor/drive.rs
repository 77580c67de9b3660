//! One interpreter of the state machine's [`Command`]s, shared by every host.
//!
//! A [`Driver`] applies an event and everything it leads to within one process: light
//! task runs are run inline; log lines, timers, task runs for a worker and subflow
//! requests are collected into a [`Pass`]. It never performs I/O: when it needs something only the host can get (the
//! execution's stored ERROR lines, a child execution created from another flow), it
//! stops with a [`Need`] and goes on once the host answers. The local server and the
//! Lambdas (`kite_engine::Engine`) and the in-memory [`crate::runner`] drive it alike.

use std::borrow::Cow;
use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde_json::Value;

use super::{apply, Command, Env, Event, ExecutorError, SubflowRequest, TaskResult, TimerKind};
use crate::execution::{Execution, LogEntry, StateType};
use crate::flow::{Flow, LogLevel};

/// Events applied in one pass before the driver gives up on an execution that never settles.
const MAX_STEPS: usize = 100_000;

/// What a pass collected besides the execution itself, for the host to store.
#[derive(Debug, Default)]
pub struct Pass {
    /// Log lines to store, in order.
    pub logs: Vec<LogEntry>,
    /// Timers to arm.
    pub timers: Vec<Timer>,
    /// Task runs that do I/O, for a worker ([`crate::task::prepare_io`]); each ends with
    /// an [`Event::TaskRunFinished`] sent later.
    pub worker_task_runs: Vec<String>,
    /// Subflow executions the host created (in answer to [`Need::Subflow`]), to start.
    pub subflows: Vec<SubflowRequest>,
    /// The terminal state the execution reached in this pass.
    pub terminated: Option<StateType>,
}

/// A timer to fire later with [`Event::TimerFired`].
#[derive(Debug, Clone, PartialEq)]
pub struct Timer {
    /// Empty for an execution-level timer.
    pub task_run_id: String,
    pub at: DateTime<Utc>,
    pub kind: TimerKind,
}

/// What the host must answer before the pass goes on.
#[derive(Debug)]
pub enum Need {
    /// The ERROR log lines stored for the execution before this pass (`errorLogs()`):
    /// answer with [`Driver::stored_error_logs`].
    StoredErrorLogs,
    /// A Subflow task asks for a child execution: create it (not started yet) and answer
    /// with [`Driver::subflow_created`], or [`Driver::subflow_refused`] with the reason.
    Subflow(Box<SubflowRequest>),
}

/// Why a pass stopped for good: redelivering its event cannot help.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DriveError {
    #[error(transparent)]
    Refused(#[from] ExecutorError),
    #[error("Execution {0} does not settle after {MAX_STEPS} steps")]
    DoesNotSettle(String),
}

/// A pass over one execution: feed it with [`Driver::advance`] until it returns `None`.
#[derive(Debug)]
pub struct Driver {
    events: VecDeque<Event>,
    commands: VecDeque<Command>,
    subflows: VecDeque<SubflowRequest>,
    /// The ERROR lines `errorLogs()` sees, once a failed task run made them matter.
    error_logs: Option<Vec<Value>>,
    steps: usize,
    pass: Pass,
}

impl Driver {
    pub fn new(first: Event) -> Driver {
        Driver {
            events: VecDeque::from([first]),
            commands: VecDeque::new(),
            subflows: VecDeque::new(),
            error_logs: None,
            steps: 0,
            pass: Pass::default(),
        }
    }

    /// Runs until the pass settles (`None`) or needs the host ([`Need`]).
    pub fn advance(
        &mut self,
        flow: &Flow,
        execution: &mut Execution,
        env: &Env,
    ) -> Result<Option<Need>, DriveError> {
        loop {
            if let Some(command) = self.commands.pop_front() {
                if let Some(need) = self.carry_out(command, flow, execution, env) {
                    return Ok(Some(need));
                }
                continue;
            }
            // Subflows after every command of the step that asked for them, as one batch.
            if let Some(request) = self.subflows.pop_front() {
                return Ok(Some(Need::Subflow(Box::new(request))));
            }
            let Some(event) = self.events.pop_front() else {
                return Ok(None);
            };
            self.steps += 1;
            if self.steps > MAX_STEPS {
                return Err(DriveError::DoesNotSettle(execution.id.clone()));
            }
            self.commands.extend(apply(flow, execution, event, env)?);
        }
    }

    /// Carries out one command, or puts it back and says what it needs first.
    fn carry_out(&mut self, command: Command, flow: &Flow, execution: &Execution, env: &Env) -> Option<Need> {
        match command {
            Command::RunTask { task_run_id } => {
                let done = execution
                    .find_task_run(&task_run_id)
                    .is_none_or(|t| t.state.current.is_terminated());
                if done {
                    return None;
                }
                if crate::task::runs_on_worker(flow, execution, &task_run_id) {
                    self.pass.worker_task_runs.push(task_run_id);
                    return None;
                }
                if self.error_logs.is_none()
                    && execution.task_runs().iter().any(|t| t.state.current.is_failed())
                {
                    self.commands.push_front(Command::RunTask { task_run_id });
                    return Some(Need::StoredErrorLogs);
                }
                let span = tracing::info_span!("task_run", id = %task_run_id);
                let result = span.in_scope(|| {
                    crate::task::run(
                        flow,
                        execution,
                        &task_run_id,
                        env,
                        self.error_logs.as_deref().unwrap_or(&[]),
                    )
                });
                self.events
                    .push_back(Event::TaskRunFinished { task_run_id, result });
            }
            Command::StoreLogs(mut lines) => {
                // Every line of a pass goes through here: rendered secrets never reach a
                // store, `errorLogs()` nor the API (Kestra masks them in its logger).
                if let Some(secrets) = env.secrets {
                    for line in &mut lines {
                        if let Cow::Owned(masked) = secrets.mask(&line.message) {
                            line.message = masked;
                        }
                    }
                }
                if let Some(errors) = self.error_logs.as_mut() {
                    errors.extend(error_lines(&lines));
                }
                self.pass.logs.extend(lines);
            }
            Command::ScheduleTimer {
                task_run_id,
                at,
                timer,
            } => self.pass.timers.push(Timer {
                task_run_id,
                at,
                kind: timer,
            }),
            Command::CreateSubflowExecution(request) => self.subflows.push_back(request),
            Command::Terminated { state } => self.pass.terminated = Some(state),
        }
        None
    }

    /// Answers [`Need::StoredErrorLogs`]; this pass's own ERROR lines are added to them.
    pub fn stored_error_logs(&mut self, stored: Vec<Value>) {
        let mut lines = stored;
        lines.extend(error_lines(&self.pass.logs));
        self.error_logs = Some(lines);
    }

    /// Answers [`Need::Subflow`]: the child execution exists and is to be started.
    pub fn subflow_created(&mut self, request: SubflowRequest) {
        self.pass.subflows.push(request);
    }

    /// Answers [`Need::Subflow`]: no child could be created; the Subflow task run fails
    /// with `reason` as its log line.
    pub fn subflow_refused(
        &mut self,
        request: &SubflowRequest,
        execution: &Execution,
        reason: String,
        now: DateTime<Utc>,
    ) {
        let line = LogEntry {
            task_id: execution
                .find_task_run(&request.parent_task_run_id)
                .map(|t| t.task_id.clone()),
            task_run_id: Some(request.parent_task_run_id.clone()),
            ..LogEntry::for_execution(execution, LogLevel::Error, reason, now)
        };
        self.events.push_back(Event::TaskRunFinished {
            task_run_id: request.parent_task_run_id.clone(),
            result: TaskResult {
                state: StateType::Failed,
                outputs: IndexMap::new(),
                logs: vec![line],
            },
        });
    }

    /// What the pass collected (call once [`Driver::advance`] returned `None`).
    pub fn finish(self) -> Pass {
        self.pass
    }
}

fn error_lines(lines: &[LogEntry]) -> impl Iterator<Item = Value> + '_ {
    lines
        .iter()
        .filter(|l| l.level == LogLevel::Error)
        .filter_map(|l| serde_json::to_value(l).ok())
}
