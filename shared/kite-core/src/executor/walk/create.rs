//! Creating task runs: a task's turn came, its `runIf` and values are rendered, a
//! flowable task decides its branch, a Subflow task asks for its child execution.

use super::*;

impl<'a> Machine<'a> {
    pub(super) fn create(
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
            | TaskKind::WorkingDirectory(_)
            | TaskKind::Parallel { .. }
            | TaskKind::If { .. }
            | TaskKind::Switch { .. }
            | TaskKind::ForEach { .. }
            | TaskKind::EachSequential { .. }
            | TaskKind::EachParallel { .. }
            | TaskKind::ForEachItem(_) => {
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
            TaskKind::Exit { .. } | TaskKind::SetVariables { .. } | TaskKind::UnsetVariables { .. } => {
                self.start_attempt(exec, i);
                self.update_execution(exec, i, task)
            }
            TaskKind::ForEachItemExecutable(sub) => {
                self.start_attempt(exec, i);
                self.start_batches(exec, i, task, sub)
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
    pub(super) fn decide(
        &mut self,
        exec: &mut Execution,
        i: usize,
        task: &'a Task,
    ) -> Result<(), TaskRunError> {
        match &task.kind {
            TaskKind::If { condition, .. } => {
                let rendered = self.render(exec, i, task, condition)?;
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
                let rendered = self.render(exec, i, task, value)?;
                let matched = cases.contains_key(&rendered);
                if !matched && defaults.is_empty() {
                    return Err(TaskRunError::NoSwitchCase {
                        task_id: task.id.clone(),
                        value: rendered,
                    });
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

    pub(super) fn iteration_items(
        &mut self,
        exec: &Execution,
        i: usize,
        task: &'a Task,
        values: &Value,
    ) -> Result<Vec<String>, TaskRunError> {
        let list: Vec<Value> = match values {
            Value::String(s) => {
                let rendered = self.render(exec, i, task, &Value::String(s.clone()))?;
                match serde_json::from_str::<Value>(&rendered) {
                    Ok(Value::Array(a)) => a,
                    _ => {
                        return Err(TaskRunError::ValuesNotAList {
                            task_id: task.id.clone(),
                            rendered,
                        })
                    }
                }
            }
            Value::Array(items) => match self.render_value(exec, i, task, &Value::Array(items.clone()))? {
                Value::Array(a) => a,
                _ => Vec::new(),
            },
            other => {
                return Err(TaskRunError::ValuesOfWrongType {
                    task_id: task.id.clone(),
                    value: other.clone(),
                })
            }
        };
        let nulls = list.iter().filter(|v| v.is_null()).count();
        if nulls > 0 {
            return Err(TaskRunError::NullValues {
                count: nulls,
                values: java_string(&Value::Array(list.clone())),
            });
        }
        Ok(list
            .into_iter()
            .map(|v| match v {
                Value::String(s) => s,
                other => serde_json::to_string(&other).unwrap_or_default(),
            })
            .collect())
    }

    pub(super) fn subflow_request(
        &mut self,
        exec: &Execution,
        i: usize,
        task: &'a Task,
        sub: &'a crate::flow::SubflowTask,
    ) -> Result<SubflowRequest, TaskRunError> {
        let namespace = self.render(exec, i, task, &sub.namespace)?;
        let flow_id = self.render(exec, i, task, &sub.flow_id)?;
        let mut inputs = IndexMap::new();
        for (k, v) in &sub.inputs {
            let rendered = match v {
                Value::String(s) => self.render_typed(exec, i, task, s),
                other => self.render_value(exec, i, task, other),
            }?;
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
            let value = self.render(exec, i, task, v)?;
            labels.retain(|l| &l.key != k);
            labels.push(Label {
                key: k.clone(),
                value,
            });
        }
        let schedule_date = match &sub.schedule_date {
            Some(v) => {
                let s = self.render(exec, i, task, v)?;
                Some(
                    chrono::DateTime::parse_from_rfc3339(&s)
                        .map_err(|_| TaskRunError::InvalidScheduleDate(s.clone()))?
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
}
