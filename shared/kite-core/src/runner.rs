//! A synchronous, in-memory driver of the state machine with a virtual clock:
//! task runs run in-process, timers fire by advancing the clock, subflows run to
//! completion. Used by tests, benchmarks and `kite flow test`-style checks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde_json::Value;

use crate::execution::{Execution, ExecutionTrigger, Label, LogEntry, LogLevel, StateType};
use crate::executor::{
    self, DriveError, Driver, Env, Event, IdSource, Need, NewExecution, Pass, TaskResult, Timer,
};
use crate::expression::{ExpressionEngine, FileReader};
use crate::flow::Flow;
use crate::input::{resolve_inputs, InputContext, InputError, InputValue};
use crate::plugin::IoJob;
use crate::secret::{SecretSource, Secrets};
use crate::task;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunnerError {
    #[error("Flow `{namespace}.{flow_id}` not found")]
    FlowNotFound { namespace: String, flow_id: String },
    #[error("Execution `{0}` not found")]
    ExecutionNotFound(String),
    #[error(transparent)]
    Inputs(#[from] InputError),
    #[error(transparent)]
    Executor(#[from] executor::ExecutorError),
    #[error("Gave up after {0} steps: the execution does not settle")]
    TooManySteps(usize),
    #[error(transparent)]
    DoesNotSettle(DriveError),
    /// The execution is not in a state that allows the request (Kestra answers 409/422).
    #[error("{0}")]
    IllegalState(String),
}

impl From<DriveError> for RunnerError {
    fn from(e: DriveError) -> Self {
        match e {
            DriveError::Refused(e) => RunnerError::Executor(e),
            e @ DriveError::DoesNotSettle(_) => RunnerError::DoesNotSettle(e),
        }
    }
}

/// How to start an execution.
#[derive(Debug, Clone, Default)]
pub struct ExecuteRequest {
    pub inputs: IndexMap<String, InputValue>,
    pub labels: Vec<Label>,
    pub trigger: Option<ExecutionTrigger>,
    pub schedule_date: Option<DateTime<Utc>>,
}

/// Where an execution stands when the runner stops: terminal, or PAUSED
/// waiting for a manual resume.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub execution: Execution,
    pub logs: Vec<LogEntry>,
    pub subflow_executions: Vec<Execution>,
}

/// Repeatable ids and nonces: the same runs give the same executions.
struct SequentialIds(AtomicU64);

impl SequentialIds {
    fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed) + 1
    }
}

impl IdSource for SequentialIds {
    fn next_id(&self) -> String {
        crate::id::friendly_id(u128::from(self.next()) * 0x9E37_79B9_7F4A_7C15)
    }

    fn nonce(&self) -> [u8; 12] {
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&self.next().to_le_bytes());
        nonce
    }
}

struct MemoryFiles<'a>(&'a HashMap<String, Vec<u8>>);

impl FileReader for MemoryFiles<'_> {
    fn read_file(&self, uri: &str) -> Result<Vec<u8>, crate::expression::FileReadError> {
        self.0
            .get(uri)
            .cloned()
            .ok_or_else(|| crate::expression::FileReadError::NotFound(uri.to_string()))
    }
}

struct ScheduledTimer {
    execution_id: String,
    timer: Timer,
}

/// Driver passes (one per event that reaches an execution from outside) before giving up.
const MAX_PASSES: usize = 1_000_000;

pub struct Runner {
    flows: HashMap<(String, String), Flow>,
    files: HashMap<String, Vec<u8>>,
    engine: ExpressionEngine,
    ids: SequentialIds,
    now: DateTime<Utc>,
    executions: HashMap<String, Execution>,
    logs: HashMap<String, Vec<LogEntry>>,
    timers: Vec<ScheduledTimer>,
    /// child execution id → (parent execution id, parent task run id)
    waiting_parents: HashMap<String, (String, String)>,
    secret_key: Vec<u8>,
    globals: Option<Value>,
    /// What `secret()` reads (none by default: every secret is missing).
    secrets: Option<Secrets>,
    /// Runs the task runs that do I/O (none by default: they fail saying so).
    worker: Option<InMemoryWorker>,
    max_task_output: usize,
}

/// A synchronous stand-in for the worker port, for tests: answers each job.
pub type InMemoryWorker = Box<dyn FnMut(&IoJob, DateTime<Utc>) -> TaskResult>;

impl Default for Runner {
    fn default() -> Self {
        Self::new()
    }
}

impl Runner {
    pub fn new() -> Self {
        Runner {
            flows: HashMap::new(),
            files: HashMap::new(),
            engine: ExpressionEngine::new(),
            ids: SequentialIds(AtomicU64::new(0)),
            now: DateTime::parse_from_rfc3339("2024-12-20T10:00:00Z")
                .map(|d| d.with_timezone(&Utc))
                .unwrap_or_default(),
            executions: HashMap::new(),
            logs: HashMap::new(),
            timers: Vec::new(),
            waiting_parents: HashMap::new(),
            secret_key: b"kite-runner-secret-key-for-tests".to_vec(),
            globals: None,
            secrets: None,
            worker: None,
            max_task_output: crate::env::DEFAULT_MAX_TASK_OUTPUT,
        }
    }

    pub fn add_flow(&mut self, flow: Flow) {
        self.flows.insert((flow.namespace.clone(), flow.id.clone()), flow);
    }

    pub fn add_file(&mut self, uri: &str, bytes: Vec<u8>) {
        self.files.insert(uri.to_string(), bytes);
    }

    /// Configured variables every expression sees: `envs` and `globals`.
    pub fn set_globals(
        &mut self,
        envs: serde_json::Map<String, Value>,
        globals: serde_json::Map<String, Value>,
    ) {
        let mut all = serde_json::Map::new();
        all.insert("envs".into(), Value::Object(envs));
        all.insert("globals".into(), Value::Object(globals));
        self.globals = Some(Value::Object(all));
    }

    /// What `secret()` reads; the values it gives are masked in the log lines.
    pub fn set_secrets(&mut self, source: Arc<dyn SecretSource>) {
        self.secrets = Some(Secrets::new(source));
    }

    /// Runs task runs that do I/O with `worker` (HTTP requests answered by the test).
    pub fn set_worker(&mut self, worker: InMemoryWorker) {
        self.worker = Some(worker);
    }

    /// The largest outputs a task run may have (bytes of JSON).
    pub fn set_max_task_output(&mut self, bytes: usize) {
        self.max_task_output = bytes;
    }

    /// The virtual clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    pub fn execute(
        &mut self,
        namespace: &str,
        flow_id: &str,
        inputs: IndexMap<String, InputValue>,
    ) -> Result<Outcome, RunnerError> {
        self.execute_with(
            namespace,
            flow_id,
            ExecuteRequest {
                inputs,
                ..Default::default()
            },
        )
    }

    pub fn execute_with(
        &mut self,
        namespace: &str,
        flow_id: &str,
        request: ExecuteRequest,
    ) -> Result<Outcome, RunnerError> {
        let id = self.ids.next_id();
        let execution = self.create(namespace, flow_id, &id, request)?;
        self.executions.insert(id.clone(), execution);
        self.send(&id, Event::Start)?;
        self.settle(&id)?;
        self.outcome(&id)
    }

    pub fn resume(
        &mut self,
        execution_id: &str,
        inputs: IndexMap<String, InputValue>,
    ) -> Result<Outcome, RunnerError> {
        if self.state_of(execution_id)? != StateType::Paused {
            return Err(RunnerError::IllegalState(format!(
                "Execution '{execution_id}' is not paused, can't resume it"
            )));
        }
        let values = inputs
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    InputValue::Text(s) => Value::String(s),
                    InputValue::Json(j) => j,
                };
                (k, v)
            })
            .collect();
        self.send(
            execution_id,
            Event::Resume {
                task_run_id: None,
                inputs: values,
            },
        )?;
        self.settle(execution_id)?;
        self.outcome(execution_id)
    }

    pub fn kill(&mut self, execution_id: &str) -> Result<Outcome, RunnerError> {
        self.send(execution_id, Event::Kill)?;
        self.settle(execution_id)?;
        self.outcome(execution_id)
    }

    pub fn restart(&mut self, execution_id: &str) -> Result<Outcome, RunnerError> {
        if !matches!(
            self.state_of(execution_id)?,
            StateType::Failed | StateType::Killed
        ) {
            return Err(RunnerError::IllegalState("No task found to restart".to_string()));
        }
        self.send(execution_id, Event::Restart)?;
        self.settle(execution_id)?;
        self.outcome(execution_id)
    }

    fn state_of(&self, execution_id: &str) -> Result<StateType, RunnerError> {
        self.executions
            .get(execution_id)
            .map(|e| e.state.current)
            .ok_or_else(|| RunnerError::ExecutionNotFound(execution_id.to_string()))
    }

    pub fn execution(&self, id: &str) -> Option<&Execution> {
        self.executions.get(id)
    }

    fn create(
        &self,
        namespace: &str,
        flow_id: &str,
        id: &str,
        request: ExecuteRequest,
    ) -> Result<Execution, RunnerError> {
        let flow = self
            .flows
            .get(&(namespace.to_string(), flow_id.to_string()))
            .ok_or_else(|| RunnerError::FlowNotFound {
                namespace: namespace.into(),
                flow_id: flow_id.into(),
            })?;
        let ctx = InputContext {
            namespace,
            flow_id,
            execution_id: id,
            secret_key: Some(&self.secret_key),
            ids: Some(&self.ids),
            condition: None,
        };
        let inputs = resolve_inputs(&flow.inputs, &request.inputs, &ctx)?;
        Ok(executor::new_execution(
            flow,
            NewExecution {
                id: id.to_string(),
                inputs,
                labels: request.labels,
                trigger: request.trigger,
                schedule_date: request.schedule_date,
                parent: None,
            },
            self.now,
        ))
    }

    fn flow_of(&self, execution: &Execution) -> Result<Flow, RunnerError> {
        self.flows
            .get(&(execution.namespace.clone(), execution.flow_id.clone()))
            .cloned()
            .ok_or_else(|| RunnerError::FlowNotFound {
                namespace: execution.namespace.clone(),
                flow_id: execution.flow_id.clone(),
            })
    }

    /// Applies an event and what it leads to: one driver pass per event, then the
    /// subflow executions it created are started and waiting parents woken, depth first.
    fn send(&mut self, execution_id: &str, event: Event) -> Result<(), RunnerError> {
        let mut queue = vec![(execution_id.to_string(), event)];
        let mut passes = 0;
        while let Some((id, event)) = queue.pop() {
            passes += 1;
            if passes > MAX_PASSES {
                return Err(RunnerError::TooManySteps(passes));
            }
            let mut execution = self
                .executions
                .remove(&id)
                .ok_or_else(|| RunnerError::ExecutionNotFound(id.clone()))?;
            let driven = self
                .flow_of(&execution)
                .and_then(|flow| self.drive(&flow, &mut execution, event));
            let (pass, children) = match driven {
                Ok(done) => done,
                Err(e) => {
                    self.executions.insert(id, execution);
                    return Err(e);
                }
            };
            let mut follow_ups = Vec::new();
            for task_run_id in pass.worker_task_runs {
                let result = self.run_on_worker(&execution, &task_run_id)?;
                follow_ups.push((id.clone(), Event::TaskRunFinished { task_run_id, result }));
            }
            self.logs.entry(id.clone()).or_default().extend(pass.logs);
            self.timers
                .extend(pass.timers.into_iter().map(|timer| ScheduledTimer {
                    execution_id: id.clone(),
                    timer,
                }));
            for child in children {
                self.executions.insert(child.id.clone(), child);
            }
            for request in pass.subflows {
                if request.wait {
                    self.waiting_parents.insert(
                        request.execution_id.clone(),
                        (id.clone(), request.parent_task_run_id),
                    );
                }
                follow_ups.push((request.execution_id, Event::Start));
            }
            if pass.terminated.is_some() {
                if let Some((parent, task_run_id)) = self.waiting_parents.remove(&id) {
                    follow_ups.push((
                        parent,
                        Event::SubflowEnded {
                            task_run_id,
                            child: Box::new(execution.clone()),
                        },
                    ));
                }
            }
            self.executions.insert(id, execution);
            // Depth first, in order.
            queue.extend(follow_ups.into_iter().rev());
        }
        Ok(())
    }

    /// One driver pass: the events `first` leads to within this process, and the
    /// subflow executions it created (not started yet).
    fn drive(
        &self,
        flow: &Flow,
        execution: &mut Execution,
        first: Event,
    ) -> Result<(Pass, Vec<Execution>), RunnerError> {
        let mut driver = Driver::new(first);
        let mut children = Vec::new();
        while let Some(need) = self.with_env(|env| driver.advance(flow, execution, env))? {
            match need {
                Need::StoredErrorLogs => driver.stored_error_logs(self.stored_error_lines(&execution.id)),
                Need::Subflow(request) => match self.create_child(&request) {
                    Ok(child) => {
                        children.push(child);
                        driver.subflow_created(*request);
                    }
                    Err(e) => driver.subflow_refused(&request, execution, e.to_string(), self.now),
                },
            }
        }
        Ok((driver.finish(), children))
    }

    /// Calls `f` with the core's environment over this runner's clock, ids and files.
    fn with_env<R>(&self, f: impl FnOnce(&Env) -> R) -> R {
        let files = MemoryFiles(&self.files);
        let env = Env {
            now: self.now,
            ids: &self.ids,
            expressions: &self.engine,
            files: Some(&files),
            secret_key: Some(&self.secret_key),
            globals: self.globals.as_ref(),
            secrets: self.secrets.as_ref(),
            max_task_output: self.max_task_output,
            kv: None,
        };
        f(&env)
    }

    /// A task run that does I/O, run at once by the test's worker.
    fn run_on_worker(&mut self, execution: &Execution, task_run_id: &str) -> Result<TaskResult, RunnerError> {
        let flow = self.flow_of(execution)?;
        let job = match self.with_env(|env| task::prepare_io(&flow, execution, task_run_id, env)) {
            Ok(job) => job,
            Err(failed) => return Ok(failed),
        };
        Ok(match self.worker.as_mut() {
            Some(worker) => worker(&job, self.now),
            None => job
                .task_run
                .failed("This runner has no worker for tasks that do I/O", self.now),
        })
    }

    fn stored_error_lines(&self, execution_id: &str) -> Vec<Value> {
        self.logs
            .get(execution_id)
            .into_iter()
            .flatten()
            .filter(|l| l.level == LogLevel::Error)
            .filter_map(|l| serde_json::to_value(l).ok())
            .collect()
    }

    /// The child execution a Subflow task asks for, in CREATED.
    fn create_child(&self, request: &executor::SubflowRequest) -> Result<Execution, RunnerError> {
        let create = ExecuteRequest {
            inputs: request
                .inputs
                .iter()
                .map(|(k, v)| (k.clone(), InputValue::Json(v.clone())))
                .collect(),
            labels: request.labels.clone(),
            trigger: Some(request.trigger.clone()),
            schedule_date: request.schedule_date,
        };
        self.create(
            &request.namespace,
            &request.flow_id,
            &request.execution_id,
            create,
        )
    }

    /// Fires due timers (advancing the virtual clock) until the execution is
    /// terminal or waits for a person.
    fn settle(&mut self, execution_id: &str) -> Result<(), RunnerError> {
        loop {
            if self.timers.is_empty() {
                return Ok(());
            }
            let (pos, _) = self
                .timers
                .iter()
                .enumerate()
                .min_by_key(|(_, t)| t.timer.at)
                .ok_or_else(|| RunnerError::ExecutionNotFound(execution_id.to_string()))?;
            let ScheduledTimer { execution_id, timer } = self.timers.remove(pos);
            if self.is_stale(&execution_id, &timer) {
                // Nothing left for it to end: the clock does not move for it.
                continue;
            }
            if timer.at > self.now {
                self.now = timer.at;
            }
            self.send(
                &execution_id,
                Event::TimerFired {
                    task_run_id: timer.task_run_id,
                    timer: timer.kind,
                },
            )?;
        }
    }

    /// A timeout set for a task run (or execution) that already ended.
    fn is_stale(&self, execution_id: &str, timer: &Timer) -> bool {
        let Some(execution) = self.executions.get(execution_id) else {
            return true;
        };
        if timer.task_run_id.is_empty() {
            return execution.state.is_terminated();
        }
        match execution.find_task_run(&timer.task_run_id) {
            Some(tr) => tr.state.is_terminated(),
            None => true,
        }
    }

    fn outcome(&self, execution_id: &str) -> Result<Outcome, RunnerError> {
        let execution = self
            .executions
            .get(execution_id)
            .cloned()
            .ok_or_else(|| RunnerError::ExecutionNotFound(execution_id.to_string()))?;
        let subflow_executions = self
            .executions
            .values()
            .filter(|e| {
                e.id != execution.id
                    && e.labels
                        .iter()
                        .any(|l| l.key == "system.correlationId" && l.value == execution.id)
            })
            .cloned()
            .collect::<Vec<Execution>>();
        let mut logs = self.logs.get(execution_id).cloned().unwrap_or_default();
        for child in &subflow_executions {
            logs.extend(self.logs.get(&child.id).cloned().unwrap_or_default());
        }
        Ok(Outcome {
            logs,
            execution,
            subflow_executions,
        })
    }
}
