//! The events that come from outside the walk: kill, resume, restart, a timer, a
//! subflow's end.

use super::*;

impl<'a> Machine<'a> {
    pub(super) fn kill(&mut self, exec: &mut Execution) {
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

    /// Fails what is unfinished, without running `errors` or `finally`: they would run the
    /// same renders that the host gives up on.
    pub(super) fn give_up(&mut self, exec: &mut Execution, reason: String) {
        if exec.state.is_terminated() {
            return;
        }
        let now = self.now();
        self.log_execution(exec, LogLevel::Error, reason);
        for tr in exec.task_run_list.iter_mut().flatten() {
            if !tr.state.is_terminated() {
                if let Some(a) = tr.attempts.last_mut() {
                    if !a.state.is_terminated() {
                        a.state.set(StateType::Failed, now);
                    }
                }
                tr.state.set(StateType::Failed, now);
            }
        }
        exec.state.set(StateType::Failed, now);
        self.commands.push(Command::Terminated {
            state: StateType::Failed,
        });
    }

    pub(super) fn resume(
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
            let task = self.flow.find_task(&runs(exec)[i].task_id);
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

    pub(super) fn restart(&mut self, exec: &mut Execution) {
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
            let task = self.flow.find_task(&runs(exec)[i].task_id);
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
                // Tasks the executor decides run again here, not on a worker.
                match task.map(|t| (t, &t.kind)) {
                    Some((
                        t,
                        TaskKind::Exit { .. }
                        | TaskKind::SetVariables { .. }
                        | TaskKind::UnsetVariables { .. },
                    )) => {
                        self.update_execution(exec, i, t);
                        continue;
                    }
                    Some((t, TaskKind::ForEachItemExecutable(sub))) => {
                        runs_mut(exec)[i].iteration_values = None;
                        self.start_batches(exec, i, t, sub);
                        continue;
                    }
                    _ => {}
                }
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

    pub(super) fn timer(&mut self, exec: &mut Execution, task_run_id: &str, timer: TimerKind) {
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
        let Some(task) = self.flow.find_task(&runs(exec)[i].task_id) else {
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

    pub(super) fn subflow_ended(&mut self, exec: &mut Execution, task_run_id: &str, child: &Execution) {
        let Some(i) = exec.position(task_run_id) else {
            return;
        };
        if runs(exec)[i].state.is_terminated() || !child.state.is_terminated() {
            return;
        }
        let Some(task) = self.flow.find_task(&runs(exec)[i].task_id) else {
            return;
        };
        let sub = match &task.kind {
            TaskKind::Subflow(sub) => sub,
            TaskKind::ForEachItemExecutable(sub) => return self.batch_ended(exec, i, sub, child),
            _ => return,
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
}
