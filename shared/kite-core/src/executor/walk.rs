//! How the state machine advances an execution: after each event, the flow's
//! task tree is walked against the existing task runs; missing task runs are
//! created when their turn comes, and flowable task runs finish when their
//! branches do. Lookups go through the execution's index, so a step costs what
//! it touches.

use std::collections::HashMap;

use chrono::Duration;
use indexmap::IndexMap;
use serde_json::{json, Value};

use super::{Command, Env, Event, ExecutorError, SubflowRequest, TimerKind};
use crate::execution::{
    Execution, ExecutionTrigger, Label, LogEntry, LogLevel, State, StateType, TaskRun, TaskRunAttempt,
};
use crate::expression::{is_truthy, write_pebble, ExpressionError, RenderContext};
use crate::flow::{Flow, Flowable, RetryKind, Task, TaskKind};
use crate::input::{parse_iso_duration, resolve_inputs, type_flow_output, InputContext, InputValue};
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
    tasks: HashMap<&'a str, &'a Task>,
    has_pause: bool,
    commands: Vec<Command>,
    logs: Vec<LogEntry>,
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
        let tasks = flow
            .all_tasks()
            .into_iter()
            .map(|t| (t.id.as_str(), t))
            .collect::<HashMap<&str, &Task>>();
        let has_pause = tasks.values().any(|t| matches!(t.kind, TaskKind::Pause(_)));
        Machine {
            flow,
            env,
            tasks,
            has_pause,
            commands: Vec::new(),
            logs: Vec::new(),
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
                self.finish_leaf(exec, i, result.state, result.outputs);
                self.reconcile(exec);
            }
            Event::Kill => self.kill(exec),
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
                        .tasks
                        .get(tr.task_id.as_str())
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
                if let Status::Done(state) = status {
                    self.terminate(exec, state);
                }
            }
            s if s.is_terminated() && !flow.after_execution.is_empty() => {
                self.list(exec, &flow.after_execution, None, None, None, Mode::Sequential);
            }
            _ => {}
        }
    }

    fn terminate(&mut self, exec: &mut Execution, state: StateType) {
        let mut state = settled(state);
        if !matches!(state, StateType::Failed | StateType::Killed) && !self.flow.outputs.is_empty() {
            match self.flow_outputs(exec) {
                Ok(outputs) => exec.outputs = outputs,
                Err(message) => {
                    self.log_execution(exec, LogLevel::Error, message);
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
        }
    }

    fn flow_outputs(&self, exec: &Execution) -> Result<IndexMap<String, Value>, String> {
        let vars = run_variables::for_execution(self.flow, exec, self.env.into());
        let prefixes = self.readable_prefixes(exec);
        let ctx = self.render_context(&vars, &prefixes, &[]);
        let mut out = IndexMap::new();
        for o in &self.flow.outputs {
            let rendered = match &o.value {
                Value::String(s) => self.env.expressions.render_typed(s, &ctx),
                other => self.env.expressions.render_value(other, &ctx),
            }
            .map_err(|e| e.message)?;
            let typed = type_flow_output(&o.type_name, &o.id, rendered).map_err(|e| e.message)?;
            out.insert(o.id.clone(), typed);
        }
        Ok(out)
    }

    /// Runs `tasks`; when they fail, `errors`; then `finally`, always.
    #[allow(clippy::too_many_arguments)]
    fn body(
        &mut self,
        exec: &mut Execution,
        tasks: &'a [Task],
        errors: &'a [Task],
        finally: &'a [Task],
        parent: Option<&str>,
        value: Option<&str>,
        mode: Mode,
        main: Option<Status>,
    ) -> Status {
        let main = match main {
            Some(m) => m,
            None => self.list(exec, tasks, parent, value, None, mode),
        };
        let Status::Done(mut state) = main else {
            return Status::Running;
        };
        if state == StateType::Killed {
            return main;
        }
        if state == StateType::Failed && !errors.is_empty() {
            if let Status::Running = self.list(exec, errors, parent, value, None, Mode::Sequential) {
                return Status::Running;
            }
        }
        if !finally.is_empty() {
            match self.list(exec, finally, parent, value, None, Mode::Sequential) {
                Status::Running => return Status::Running,
                Status::Done(f) if matches!(f, StateType::Failed | StateType::Killed) => {
                    state = worse(state, f)
                }
                Status::Done(_) => {}
            }
        }
        Status::Done(state)
    }

    /// Advances a list of sibling tasks.
    fn list(
        &mut self,
        exec: &mut Execution,
        tasks: &'a [Task],
        parent: Option<&str>,
        value: Option<&str>,
        iteration: Option<u32>,
        mode: Mode,
    ) -> Status {
        let mut state = StateType::Success;
        let mut running = 0u32;
        let mut stopped = false;
        let mut waiting = false;
        for task in tasks.iter().filter(|t| !t.disabled) {
            let status = match exec.find_child(parent, &task.id, value) {
                Some(i) => self.existing(exec, task, i),
                None => {
                    let limited = matches!(mode, Mode::Parallel(n) if n > 0 && running >= n);
                    if stopped || limited {
                        waiting = true;
                        continue;
                    }
                    self.create(exec, task, parent, value, iteration)
                }
            };
            match status {
                Status::Running => {
                    running += 1;
                    if let Mode::Sequential = mode {
                        return Status::Running;
                    }
                }
                Status::Done(s) => {
                    let s = settled(s);
                    state = worse(state, s);
                    if matches!(s, StateType::Failed | StateType::Killed) {
                        match mode {
                            Mode::Sequential => return Status::Done(s),
                            Mode::Parallel(_) => stopped = true,
                        }
                    }
                }
            }
        }
        if running > 0 || (waiting && !stopped) {
            Status::Running
        } else {
            Status::Done(state)
        }
    }

    /// Advances an existing task run.
    fn existing(&mut self, exec: &mut Execution, task: &'a Task, i: usize) -> Status {
        let tr = &runs(exec)[i];
        if tr.state.is_terminated() {
            return Status::Done(tr.state.current);
        }
        let id = tr.id.clone();
        let value = tr.value.clone();
        let (p, v) = (Some(id.as_str()), value.as_deref());
        let status = match &task.kind {
            TaskKind::Sequential(f) => self.body(
                exec,
                &f.tasks,
                &f.errors,
                &f.finally,
                p,
                v,
                Mode::Sequential,
                None,
            ),
            TaskKind::Parallel { body, concurrent } => self.body(
                exec,
                &body.tasks,
                &body.errors,
                &body.finally,
                p,
                v,
                Mode::Parallel(*concurrent),
                None,
            ),
            TaskKind::If {
                then,
                else_,
                errors,
                finally,
                ..
            } => {
                let yes = tr
                    .outputs
                    .as_ref()
                    .and_then(|o| o.get("evaluationResult"))
                    .and_then(Value::as_bool);
                let branch = if yes.unwrap_or(false) { then } else { else_ };
                self.body(exec, branch, errors, finally, p, v, Mode::Sequential, None)
            }
            TaskKind::Switch {
                cases,
                defaults,
                errors,
                finally,
                ..
            } => {
                let outputs = tr.outputs.clone().unwrap_or_default();
                let use_defaults = outputs.get("defaults").and_then(Value::as_bool).unwrap_or(true);
                let key = outputs.get("value").map(write_pebble).unwrap_or_default();
                let branch = if use_defaults {
                    defaults
                } else {
                    cases.get(&key).unwrap_or(defaults)
                };
                self.body(exec, branch, errors, finally, p, v, Mode::Sequential, None)
            }
            TaskKind::ForEach {
                concurrency_limit,
                body,
                ..
            } => self.each(exec, i, body, *concurrency_limit, false),
            TaskKind::EachSequential { body, .. } => self.each(exec, i, body, 1, false),
            TaskKind::EachParallel { concurrent, body, .. } => self.each(exec, i, body, *concurrent, true),
            TaskKind::Pause(pause) => match tr.state.current {
                StateType::Running => {
                    let f = &pause.body;
                    self.body(
                        exec,
                        &f.tasks,
                        &f.errors,
                        &f.finally,
                        p,
                        v,
                        Mode::Sequential,
                        None,
                    )
                }
                _ => Status::Running,
            },
            // Leaves wait for their worker, timer or subflow.
            _ => Status::Running,
        };
        match status {
            Status::Done(s) => {
                let s = self.complete(exec, i, task, s);
                Status::Done(s)
            }
            Status::Running => Status::Running,
        }
    }

    /// Runs the iterations of a ForEach/EachSequential/EachParallel.
    fn each(
        &mut self,
        exec: &mut Execution,
        i: usize,
        body: &'a Flowable,
        limit: u32,
        pairs: bool,
    ) -> Status {
        let tr = &mut runs_mut(exec)[i];
        let values = std::mem::take(&mut tr.iteration_values).unwrap_or_default();
        let id = tr.id.clone();
        let own_value = tr.value.clone();
        let parent = Some(id.as_str());
        let enabled: Vec<&'a Task> = body.tasks.iter().filter(|t| !t.disabled).collect();
        let mut active = 0u32;
        let mut failed: Option<StateType> = None;
        let mut blocking = false;
        // Iterations before the cursor all ended well: they are not looked at
        // again, so a step costs the iterations still in flight.
        let (cursor, mut state) = exec
            .index
            .each_cursor
            .get(&id)
            .copied()
            .unwrap_or((0, StateType::Success));
        let mut prefix_open = true;
        let mut waiting = false;
        'values: for (k, v) in values.iter().enumerate().skip(cursor) {
            let iteration = Some(k as u32);
            let mut iteration_done = true;
            if pairs {
                // EachParallel: every (value, task) pair is its own branch.
                for task in &enabled {
                    let status = match exec.find_child(parent, &task.id, Some(v)) {
                        Some(c) => self.existing(exec, task, c),
                        None => {
                            if failed.is_some() || (limit > 0 && active >= limit) {
                                waiting = true;
                                continue;
                            }
                            self.create(exec, task, parent, Some(v), iteration)
                        }
                    };
                    match status {
                        Status::Running => {
                            active += 1;
                            iteration_done = false;
                        }
                        Status::Done(s) if matches!(s, StateType::Failed | StateType::Killed) => {
                            failed = Some(worse(failed.unwrap_or(s), s));
                            iteration_done = false;
                        }
                        Status::Done(s) => state = worse(state, settled(s)),
                    }
                }
                if waiting {
                    iteration_done = false;
                }
                if prefix_open && iteration_done {
                    exec.index.each_cursor.insert(id.clone(), (k + 1, state));
                } else {
                    prefix_open = false;
                }
                continue 'values;
            }
            let started = enabled
                .first()
                .is_some_and(|t| exec.find_child(parent, &t.id, Some(v)).is_some());
            if !started && (blocking || (limit > 0 && active >= limit)) {
                // Iterations start in order: none after this one has started.
                waiting = true;
                break;
            }
            match self.list(exec, &body.tasks, parent, Some(v), iteration, Mode::Sequential) {
                Status::Running => {
                    active += 1;
                    iteration_done = false;
                }
                Status::Done(s) if matches!(s, StateType::Failed | StateType::Killed) => {
                    iteration_done = false;
                    failed = Some(worse(failed.unwrap_or(s), s));
                    // Iterations that run side by side all start together, as
                    // Kestra creates them; a failure seen earlier stops new ones.
                    if started || limit == 1 {
                        blocking = true;
                    }
                }
                Status::Done(s) => state = worse(state, settled(s)),
            }
            if prefix_open && iteration_done {
                // The prefix's state is final: remember it with the cursor.
                exec.index.each_cursor.insert(id.clone(), (k + 1, state));
            } else {
                prefix_open = false;
            }
        }
        runs_mut(exec)[i].iteration_values = Some(values);
        let main = if active > 0 || (waiting && failed.is_none()) {
            Status::Running
        } else {
            Status::Done(failed.unwrap_or(state))
        };
        self.body(
            exec,
            &[],
            &body.errors,
            &body.finally,
            parent,
            own_value.as_deref(),
            Mode::Sequential,
            Some(main),
        )
    }

    // ------------------------------------------------------------ task runs

    fn create(
        &mut self,
        exec: &mut Execution,
        task: &'a Task,
        parent: Option<&str>,
        value: Option<&str>,
        iteration: Option<u32>,
    ) -> Status {
        let now = self.now();
        let tr = TaskRun {
            id: self.env.ids.next_id(),
            execution_id: exec.id.clone(),
            namespace: exec.namespace.clone(),
            flow_id: exec.flow_id.clone(),
            task_id: task.id.clone(),
            parent_task_run_id: parent.map(str::to_string),
            value: value.map(str::to_string),
            attempts: Vec::new(),
            outputs: None,
            state: State::new(StateType::Created, now),
            iteration,
            iteration_values: None,
        };
        exec.task_run_list.get_or_insert_with(Vec::new).push(tr);
        exec.sync_index();
        let i = runs(exec).len() - 1;

        if let Some(condition) = &task.run_if {
            match self.render(exec, i, task, condition) {
                Err(e) => return Status::Done(self.fail(exec, i, task, e.message)),
                Ok(s) if !is_truthy(&s) => {
                    runs_mut(exec)[i].state.set(StateType::Skipped, now);
                    return Status::Done(StateType::Skipped);
                }
                Ok(_) => {}
            }
        }

        match &task.kind {
            TaskKind::Sequential(_)
            | TaskKind::Parallel { .. }
            | TaskKind::If { .. }
            | TaskKind::Switch { .. }
            | TaskKind::ForEach { .. }
            | TaskKind::EachSequential { .. }
            | TaskKind::EachParallel { .. } => {
                runs_mut(exec)[i].state.set(StateType::Running, now);
                if let Err(message) = self.decide(exec, i, task) {
                    return Status::Done(self.fail(exec, i, task, message));
                }
                self.existing(exec, task, i)
            }
            TaskKind::Pause(pause) => {
                self.start_attempt(exec, i);
                runs_mut(exec)[i].state.set(StateType::Paused, now);
                if let Some(a) = runs_mut(exec)[i].attempts.last_mut() {
                    a.state.set(StateType::Paused, now);
                }
                for (timer, v) in [
                    (TimerKind::PauseDelay, &pause.delay),
                    (TimerKind::PauseTimeout, &pause.timeout),
                ] {
                    if let Some(v) = v {
                        match self.duration(exec, i, task, v) {
                            Ok(d) => self.commands.push(Command::ScheduleTimer {
                                task_run_id: runs(exec)[i].id.clone(),
                                at: now + d,
                                timer,
                            }),
                            Err(message) => return Status::Done(self.fail(exec, i, task, message)),
                        }
                    }
                }
                Status::Running
            }
            TaskKind::Sleep { duration } => {
                self.start_attempt(exec, i);
                if let Err(message) = self.schedule_task_timeout(exec, i, task) {
                    return Status::Done(self.fail(exec, i, task, message));
                }
                match self.duration(exec, i, task, duration) {
                    Ok(d) => {
                        self.commands.push(Command::ScheduleTimer {
                            task_run_id: runs(exec)[i].id.clone(),
                            at: now + d,
                            timer: TimerKind::SleepEnd,
                        });
                        Status::Running
                    }
                    Err(message) => Status::Done(self.fail(exec, i, task, message)),
                }
            }
            TaskKind::Labels { labels } => {
                self.start_attempt(exec, i);
                match self.render_value(exec, i, task, labels) {
                    Ok(rendered) => {
                        let pairs: Vec<(String, String)> = match rendered {
                            Value::Object(m) => m.into_iter().map(|(k, v)| (k, write_pebble(&v))).collect(),
                            Value::Array(items) => items
                                .iter()
                                .filter_map(|l| {
                                    Some((l.get("key")?.as_str()?.to_string(), write_pebble(l.get("value")?)))
                                })
                                .collect(),
                            _ => Vec::new(),
                        };
                        for (key, value) in pairs {
                            if key.starts_with("system.") {
                                continue;
                            }
                            exec.labels.retain(|l| l.key != key);
                            exec.labels.push(Label { key, value });
                        }
                        self.finish_leaf(exec, i, StateType::Success, IndexMap::new());
                        Status::Done(runs(exec)[i].state.current)
                    }
                    Err(e) => Status::Done(self.fail(exec, i, task, e.message)),
                }
            }
            TaskKind::Subflow(sub) => {
                self.start_attempt(exec, i);
                match self.subflow_request(exec, i, task, sub) {
                    Ok(request) => {
                        let child_id = request.execution_id.clone();
                        let wait = request.wait;
                        self.commands.push(Command::CreateSubflowExecution(request));
                        if wait {
                            Status::Running
                        } else {
                            let mut outputs = IndexMap::new();
                            outputs.insert("executionId".to_string(), Value::String(child_id));
                            self.finish_leaf(exec, i, StateType::Success, outputs);
                            Status::Done(runs(exec)[i].state.current)
                        }
                    }
                    Err(message) => Status::Done(self.fail(exec, i, task, message)),
                }
            }
            _ => {
                self.start_attempt(exec, i);
                if let Err(message) = self.schedule_task_timeout(exec, i, task) {
                    return Status::Done(self.fail(exec, i, task, message));
                }
                self.commands.push(Command::RunTask {
                    task_run_id: runs(exec)[i].id.clone(),
                });
                Status::Running
            }
        }
    }

    /// Decisions a flowable takes once, when it starts.
    fn decide(&mut self, exec: &mut Execution, i: usize, task: &'a Task) -> Result<(), String> {
        match &task.kind {
            TaskKind::If { condition, .. } => {
                let rendered = self.render(exec, i, task, condition).map_err(|e| e.message)?;
                let mut o = IndexMap::new();
                o.insert("evaluationResult".to_string(), Value::Bool(is_truthy(&rendered)));
                runs_mut(exec)[i].outputs = Some(o);
            }
            TaskKind::Switch {
                value,
                cases,
                defaults,
                ..
            } => {
                let rendered = self.render(exec, i, task, value).map_err(|e| e.message)?;
                let matched = cases.contains_key(&rendered);
                if !matched && defaults.is_empty() {
                    return Err(format!(
                        "Switch task `{}` doesn't match any cases for value `{rendered}` and has no defaults",
                        task.id
                    ));
                }
                let mut o = IndexMap::new();
                o.insert("value".to_string(), Value::String(rendered));
                o.insert("defaults".to_string(), Value::Bool(!matched));
                runs_mut(exec)[i].outputs = Some(o);
            }
            TaskKind::ForEach { values, .. }
            | TaskKind::EachSequential { value: values, .. }
            | TaskKind::EachParallel { value: values, .. } => {
                let items = self.iteration_items(exec, i, task, values)?;
                runs_mut(exec)[i].iteration_values = Some(items);
            }
            _ => {}
        }
        Ok(())
    }

    fn iteration_items(
        &mut self,
        exec: &Execution,
        i: usize,
        task: &'a Task,
        values: &Value,
    ) -> Result<Vec<String>, String> {
        let list: Vec<Value> = match values {
            Value::String(s) => {
                let rendered = self
                    .render(exec, i, task, &Value::String(s.clone()))
                    .map_err(|e| e.message)?;
                match serde_json::from_str::<Value>(&rendered) {
                    Ok(Value::Array(a)) => a,
                    _ => {
                        return Err(format!(
                            "Unable to read the values of `{}` as a list: `{rendered}`",
                            task.id
                        ))
                    }
                }
            }
            Value::Array(items) => match self
                .render_value(exec, i, task, &Value::Array(items.clone()))
                .map_err(|e| e.message)?
            {
                Value::Array(a) => a,
                _ => Vec::new(),
            },
            other => {
                return Err(format!(
                    "The values of `{}` must be a list, not `{other}`",
                    task.id
                ))
            }
        };
        let nulls = list.iter().filter(|v| v.is_null()).count();
        if nulls > 0 {
            return Err(format!(
                "Found '{nulls}' null values on Each, with values={}",
                java_string(&Value::Array(list.clone()))
            ));
        }
        Ok(list
            .into_iter()
            .map(|v| match v {
                Value::String(s) => s,
                other => serde_json::to_string(&other).unwrap_or_default(),
            })
            .collect())
    }

    fn subflow_request(
        &mut self,
        exec: &Execution,
        i: usize,
        task: &'a Task,
        sub: &'a crate::flow::SubflowTask,
    ) -> Result<SubflowRequest, String> {
        let namespace = self
            .render(exec, i, task, &sub.namespace)
            .map_err(|e| e.message)?;
        let flow_id = self.render(exec, i, task, &sub.flow_id).map_err(|e| e.message)?;
        let mut inputs = IndexMap::new();
        for (k, v) in &sub.inputs {
            let rendered = match v {
                Value::String(s) => self.render_typed(exec, i, task, s),
                other => self.render_value(exec, i, task, other),
            }
            .map_err(|e| e.message)?;
            inputs.insert(k.clone(), rendered);
        }
        let mut labels: Vec<Label> = if sub.inherit_labels {
            exec.labels.clone()
        } else {
            exec.labels
                .iter()
                .filter(|l| l.key.starts_with("system."))
                .cloned()
                .collect()
        };
        for (k, v) in &sub.labels {
            let value = self.render(exec, i, task, v).map_err(|e| e.message)?;
            labels.retain(|l| &l.key != k);
            labels.push(Label {
                key: k.clone(),
                value,
            });
        }
        let schedule_date = match &sub.schedule_date {
            Some(v) => {
                let s = self.render(exec, i, task, v).map_err(|e| e.message)?;
                Some(
                    chrono::DateTime::parse_from_rfc3339(&s)
                        .map_err(|_| format!("Invalid scheduleDate `{s}`"))?
                        .with_timezone(&chrono::Utc),
                )
            }
            None => None,
        };
        let mut variables = IndexMap::new();
        variables.insert("executionId".to_string(), Value::String(exec.id.clone()));
        variables.insert("namespace".to_string(), Value::String(exec.namespace.clone()));
        variables.insert("flowId".to_string(), Value::String(exec.flow_id.clone()));
        variables.insert("flowRevision".to_string(), Value::from(exec.flow_revision));
        Ok(SubflowRequest {
            parent_task_run_id: runs(exec)[i].id.clone(),
            execution_id: self.env.ids.next_id(),
            namespace,
            flow_id,
            revision: sub.revision,
            inputs,
            labels,
            wait: sub.wait,
            trigger: ExecutionTrigger {
                id: task.id.clone(),
                type_name: "io.kestra.plugin.core.flow.Subflow".into(),
                variables: Some(variables),
                log_file: None,
            },
            schedule_date,
        })
    }

    fn start_attempt(&mut self, exec: &mut Execution, i: usize) {
        let now = self.now();
        let tr = &mut runs_mut(exec)[i];
        tr.state.set(StateType::Running, now);
        tr.attempts.push(TaskRunAttempt {
            state: State::new(StateType::Running, now),
            log_file: None,
        });
    }

    /// A task's `timeout` bounds each attempt of a task a worker runs (and Sleep).
    fn schedule_task_timeout(&mut self, exec: &Execution, i: usize, task: &Task) -> Result<(), String> {
        let Some(v) = &task.timeout else {
            return Ok(());
        };
        let d = self.duration(exec, i, task, v)?;
        self.commands.push(Command::ScheduleTimer {
            task_run_id: runs(exec)[i].id.clone(),
            at: self.now() + d,
            timer: TimerKind::TaskTimeout,
        });
        Ok(())
    }

    /// A timeout timer belongs to one attempt: one set for an earlier attempt
    /// (before a retry or restart) must not end the current one.
    fn attempt_timed_out(&self, exec: &Execution, i: usize, task: &Task) -> bool {
        let Some(v) = &task.timeout else {
            return false;
        };
        let Ok(d) = self.duration(exec, i, task, v) else {
            return false;
        };
        let started = runs(exec)[i]
            .attempts
            .last()
            .and_then(|a| a.state.histories.first())
            .map(|h| h.date);
        started.is_some_and(|start| start + d <= self.now())
    }

    /// Ends a flowable task run, applying allowFailure/allowWarning.
    fn complete(&mut self, exec: &mut Execution, i: usize, task: &Task, state: StateType) -> StateType {
        let state = adjust(task, settled(state));
        runs_mut(exec)[i].state.set(state, self.now());
        state
    }

    /// Fails a task run with an error line in its logs.
    fn fail(&mut self, exec: &mut Execution, i: usize, task: &Task, message: String) -> StateType {
        self.log_task(exec, i, LogLevel::Error, message);
        let state = adjust(task, StateType::Failed);
        let now = self.now();
        let tr = &mut runs_mut(exec)[i];
        if let Some(a) = tr.attempts.last_mut() {
            a.state.set(StateType::Failed, now);
        }
        tr.state.set(state, now);
        state
    }

    /// Records what a worker (or timer, or subflow) says about a leaf task run.
    fn finish_leaf(
        &mut self,
        exec: &mut Execution,
        i: usize,
        state: StateType,
        outputs: IndexMap<String, Value>,
    ) {
        let now = self.now();
        let task = self.tasks.get(runs(exec)[i].task_id.as_str()).copied();
        if state == StateType::Failed {
            if let Some(delay) = task.and_then(|t| self.retry_delay(t, runs(exec)[i].attempts.len())) {
                let tr = &mut runs_mut(exec)[i];
                if let Some(a) = tr.attempts.last_mut() {
                    a.state.set(StateType::Failed, now);
                }
                tr.state.set(StateType::Retrying, now);
                let id = tr.id.clone();
                self.commands.push(Command::ScheduleTimer {
                    task_run_id: id,
                    at: now + delay,
                    timer: TimerKind::RetryDelay,
                });
                return;
            }
        }
        let final_state = task.map(|t| adjust(t, state)).unwrap_or(state);
        let tr = &mut runs_mut(exec)[i];
        if let Some(a) = tr.attempts.last_mut() {
            a.state.set(state, now);
        }
        tr.outputs = Some(outputs);
        tr.state.set(final_state, now);
    }

    /// The delay before the next attempt, if the task (or flow) retries.
    fn retry_delay(&self, task: &Task, attempts: usize) -> Option<Duration> {
        let retry = task.retry.as_ref().or(self.flow.retry.as_ref())?;
        let max = retry.max_attempt.unwrap_or(1) as usize;
        if attempts >= max {
            return None;
        }
        let parse = |s: &str| parse_iso_duration(s).unwrap_or_else(|| Duration::seconds(1));
        Some(match &retry.kind {
            RetryKind::Constant { interval } => parse(interval),
            RetryKind::Exponential {
                interval,
                max_interval,
                delay_factor,
            } => {
                let base = parse(interval).num_milliseconds() as f64;
                let factor = delay_factor.unwrap_or(2.0);
                let ms = base * factor.powi(attempts.saturating_sub(1) as i32);
                Duration::milliseconds(ms.min(parse(max_interval).num_milliseconds() as f64) as i64)
            }
            RetryKind::Random {
                min_interval,
                max_interval,
            } => {
                let (lo, hi) = (
                    parse(min_interval).num_milliseconds(),
                    parse(max_interval).num_milliseconds(),
                );
                Duration::milliseconds(lo + (hi - lo).max(0) / 2)
            }
        })
    }

    // -------------------------------------------------------------- events

    fn kill(&mut self, exec: &mut Execution) {
        if exec.state.is_terminated() {
            return;
        }
        let now = self.now();
        exec.state.set(StateType::Killing, now);
        for tr in exec.task_run_list.iter_mut().flatten() {
            if !tr.state.is_terminated() {
                if let Some(a) = tr.attempts.last_mut() {
                    if !a.state.is_terminated() {
                        a.state.set(StateType::Killed, now);
                    }
                }
                tr.state.set(StateType::Killed, now);
            }
        }
        exec.state.set(StateType::Killed, now);
        self.commands.push(Command::Terminated {
            state: StateType::Killed,
        });
    }

    fn resume(
        &mut self,
        exec: &mut Execution,
        task_run_id: Option<String>,
        inputs: IndexMap<String, Value>,
    ) -> Result<(), ExecutorError> {
        if exec.state.is_terminated() {
            return Ok(());
        }
        let paused: Vec<usize> = runs(exec)
            .iter()
            .enumerate()
            .filter(|(_, t)| t.state.current == StateType::Paused)
            .filter(|(_, t)| task_run_id.as_deref().is_none_or(|id| id == t.id))
            .map(|(i, _)| i)
            .collect();
        let provided: IndexMap<String, InputValue> = inputs
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => InputValue::Text(s),
                    other => InputValue::Json(other),
                };
                (k, v)
            })
            .collect();
        // Type every answer first: a refused resume changes nothing.
        let mut answers = Vec::new();
        for &i in &paused {
            let task = self.tasks.get(runs(exec)[i].task_id.as_str()).copied();
            let typed = match task.map(|t| &t.kind) {
                Some(TaskKind::Pause(p)) if !p.on_resume.is_empty() => {
                    let ctx = InputContext {
                        namespace: &exec.namespace,
                        flow_id: &exec.flow_id,
                        execution_id: &exec.id,
                        ..Default::default()
                    };
                    Some(resolve_inputs(&p.on_resume, &provided, &ctx)?)
                }
                _ => None,
            };
            answers.push((i, typed));
        }
        let now = self.now();
        for (i, typed) in answers {
            let tr = &mut runs_mut(exec)[i];
            if let Some(typed) = typed {
                let mut o = IndexMap::new();
                o.insert("onResume".to_string(), Value::Object(typed.into_iter().collect()));
                tr.outputs = Some(o);
            }
            tr.state.set(StateType::Running, now);
            if let Some(a) = tr.attempts.last_mut() {
                a.state.set(StateType::Running, now);
            }
        }
        exec.state.set(StateType::Running, now);
        self.reconcile(exec);
        Ok(())
    }

    fn restart(&mut self, exec: &mut Execution) {
        if !matches!(exec.state.current, StateType::Failed | StateType::Killed) {
            return;
        }
        let now = self.now();
        let failed: Vec<usize> = runs(exec)
            .iter()
            .enumerate()
            .filter(|(_, t)| matches!(t.state.current, StateType::Failed | StateType::Killed))
            .map(|(i, _)| i)
            .collect();
        exec.state.set(StateType::Restarted, now);
        exec.metadata.attempt_number += 1;
        exec.outputs.clear();
        for i in failed {
            let task = self.tasks.get(runs(exec)[i].task_id.as_str()).copied();
            let flowable = task.is_some_and(|t| t.task_type().is_flowable());
            let tr = &mut runs_mut(exec)[i];
            tr.state.set(StateType::Restarted, now);
            if flowable {
                tr.state.set(StateType::Running, now);
            } else {
                tr.state.set(StateType::Running, now);
                tr.attempts.push(TaskRunAttempt {
                    state: State::new(StateType::Running, now),
                    log_file: None,
                });
                let id = tr.id.clone();
                let timeout = task.map(|t| self.schedule_task_timeout(exec, i, t));
                match (task, timeout) {
                    (Some(t), Some(Err(message))) => {
                        self.fail(exec, i, t, message);
                    }
                    _ => self.commands.push(Command::RunTask { task_run_id: id }),
                }
            }
        }
        exec.state.set(StateType::Running, now);
        self.reconcile(exec);
    }

    fn timer(&mut self, exec: &mut Execution, task_run_id: &str, timer: TimerKind) {
        let now = self.now();
        if timer == TimerKind::ExecutionTimeout {
            if !exec.state.is_terminated() {
                self.log_execution(exec, LogLevel::Error, "Execution timed out".into());
                self.kill(exec);
            }
            return;
        }
        let Some(i) = exec.position(task_run_id) else {
            return;
        };
        let current = runs(exec)[i].state.current;
        let Some(task) = self.tasks.get(runs(exec)[i].task_id.as_str()).copied() else {
            return;
        };
        match timer {
            TimerKind::PauseDelay if current == StateType::Paused => {
                let tr = &mut runs_mut(exec)[i];
                tr.state.set(StateType::Running, now);
                exec.state.set(StateType::Running, now);
            }
            TimerKind::PauseTimeout if current == StateType::Paused => {
                exec.state.set(StateType::Running, now);
                self.fail(exec, i, task, format!("Pause `{}` timed out", task.id));
            }
            TimerKind::SleepEnd if current == StateType::Running => {
                self.finish_leaf(exec, i, StateType::Success, IndexMap::new());
            }
            TimerKind::RetryDelay if current == StateType::Retrying => {
                self.start_attempt(exec, i);
                if let Err(message) = self.schedule_task_timeout(exec, i, task) {
                    self.fail(exec, i, task, message);
                    self.reconcile(exec);
                    return;
                }
                self.commands.push(Command::RunTask {
                    task_run_id: task_run_id.to_string(),
                });
            }
            TimerKind::TaskTimeout
                if current == StateType::Running && self.attempt_timed_out(exec, i, task) =>
            {
                let limit = task.timeout.as_ref().map(write_pebble).unwrap_or_default();
                self.log_task(exec, i, LogLevel::Error, format!("Timeout after {limit}"));
                self.finish_leaf(exec, i, StateType::Failed, IndexMap::new());
            }
            _ => return,
        }
        if !exec.state.is_terminated() || self.is_after_execution(&task.id) {
            self.reconcile(exec);
        }
    }

    fn subflow_ended(&mut self, exec: &mut Execution, task_run_id: &str, child: &Execution) {
        let Some(i) = exec.position(task_run_id) else {
            return;
        };
        if runs(exec)[i].state.is_terminated() || !child.state.is_terminated() {
            return;
        }
        let Some(task) = self.tasks.get(runs(exec)[i].task_id.as_str()).copied() else {
            return;
        };
        let TaskKind::Subflow(sub) = &task.kind else {
            return;
        };
        let mut outputs = IndexMap::new();
        outputs.insert("executionId".to_string(), Value::String(child.id.clone()));
        outputs.insert(
            "state".to_string(),
            Value::String(child.state.current.as_str().into()),
        );
        outputs.insert("outputs".to_string(), json!(child.outputs));
        let mut state = match child.state.current {
            StateType::Failed | StateType::Killed if sub.transmit_failed => StateType::Failed,
            StateType::Warning => StateType::Warning,
            _ => StateType::Success,
        };
        if !sub.outputs.is_empty() {
            // Legacy `outputs`: rendered against the child execution.
            let child_flow = Flow {
                id: child.flow_id.clone(),
                namespace: child.namespace.clone(),
                ..empty_flow()
            };
            let vars = run_variables::for_execution(&child_flow, child, self.env.into());
            let ctx = RenderContext::new(&vars, self.now());
            let mut legacy = serde_json::Map::new();
            for (k, v) in &sub.outputs {
                match self.env.expressions.render_value(v, &ctx) {
                    Ok(r) => {
                        legacy.insert(k.clone(), r);
                    }
                    Err(e) => {
                        self.log_task(exec, i, LogLevel::Error, e.message);
                        state = StateType::Failed;
                    }
                }
            }
            let mut merged = serde_json::Map::new();
            if let Some(Value::Object(o)) = outputs.get("outputs") {
                merged = o.clone();
            }
            merged.extend(legacy);
            outputs.insert("outputs".to_string(), Value::Object(merged));
        }
        self.finish_leaf(exec, i, state, outputs);
        self.reconcile(exec);
    }

    // ------------------------------------------------------------ rendering

    fn readable_prefixes(&self, exec: &Execution) -> Vec<String> {
        readable_prefixes(exec)
    }

    fn render_context<'c>(
        &self,
        vars: &'c Value,
        prefixes: &'c [String],
        logs: &'c [Value],
    ) -> RenderContext<'c>
    where
        'a: 'c,
    {
        RenderContext {
            variables: vars,
            files: self.env.files,
            readable_prefixes: prefixes,
            error_logs: logs,
            now: self.now(),
        }
    }

    fn with_vars<R>(
        &self,
        exec: &Execution,
        i: usize,
        task: &Task,
        f: impl FnOnce(&RenderContext) -> R,
    ) -> R {
        let vars = run_variables::for_task_run(self.flow, exec, &runs(exec)[i], task, self.env.into());
        let prefixes = self.readable_prefixes(exec);
        let ctx = self.render_context(&vars, &prefixes, &[]);
        f(&ctx)
    }

    fn render(&self, exec: &Execution, i: usize, task: &Task, v: &Value) -> Result<String, ExpressionError> {
        match v {
            Value::String(s) if s.contains('{') => {
                self.with_vars(exec, i, task, |ctx| self.env.expressions.render(s, ctx))
            }
            other => Ok(write_pebble(other)),
        }
    }

    fn render_typed(
        &self,
        exec: &Execution,
        i: usize,
        task: &Task,
        s: &str,
    ) -> Result<Value, ExpressionError> {
        self.with_vars(exec, i, task, |ctx| self.env.expressions.render_typed(s, ctx))
    }

    fn render_value(
        &self,
        exec: &Execution,
        i: usize,
        task: &Task,
        v: &Value,
    ) -> Result<Value, ExpressionError> {
        self.with_vars(exec, i, task, |ctx| self.env.expressions.render_value(v, ctx))
    }

    fn duration(&self, exec: &Execution, i: usize, task: &Task, v: &Value) -> Result<Duration, String> {
        let s = self.render(exec, i, task, v).map_err(|e| e.message)?;
        parse_iso_duration(&s).ok_or_else(|| format!("Invalid duration `{s}`: use ISO-8601, e.g. PT30S"))
    }

    fn log_task(&mut self, exec: &Execution, i: usize, level: LogLevel, message: String) {
        let line = LogEntry::for_task_run(exec, &runs(exec)[i], level, message, self.now());
        self.logs.push(line);
    }

    fn log_execution(&mut self, exec: &Execution, level: LogLevel, message: String) {
        let line = LogEntry::for_execution(exec, level, message, self.now());
        self.logs.push(line);
    }
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

/// Storage prefixes `read()` may open: the execution's own, the files staged for its
/// flow's FILE inputs, and for subflow and Flow-triggered executions the upstream
/// execution's and its flow's staged files (a parent passes its inputs on).
pub(crate) fn readable_prefixes(exec: &Execution) -> Vec<String> {
    let mut out = vec![
        crate::input::execution_storage_prefix(&exec.namespace, &exec.flow_id, &exec.id),
        crate::input::flow_uploads_prefix(&exec.namespace, &exec.flow_id),
    ];
    if let Some(t) = &exec.trigger {
        if let Some(v) = &t.variables {
            if let (Some(ns), Some(flow), Some(id)) = (
                v.get("namespace").and_then(Value::as_str),
                v.get("flowId").and_then(Value::as_str),
                v.get("executionId").and_then(Value::as_str),
            ) {
                out.push(crate::input::execution_storage_prefix(ns, flow, id));
                out.push(crate::input::flow_uploads_prefix(ns, flow));
            }
        }
    }
    out
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
        disabled: false,
        retry: None,
        timeout: None,
        concurrency: None,
        plugin_defaults: Vec::new(),
    }
}
