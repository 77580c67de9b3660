//! Tasks that change the execution itself rather than produce outputs (Kestra's
//! `ExecutionUpdatableTask`): Exit, SetVariables, UnsetVariables. They run in the walk,
//! like Labels, so what they change is seen by the very next task.

use super::*;
use crate::flow::EXIT_STATES;

/// Why SetVariables or UnsetVariables fails its task run (Kestra's wording where it has one).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(super) enum UpdateError {
    #[error(transparent)]
    Render(#[from] ExpressionError),
    #[error("`overwrite` is set to false and the following variables already exist: {0}")]
    AlreadyExist(String),
    #[error("`{property}` must be {expected}, not `{rendered}`")]
    WrongType {
        property: &'static str,
        expected: &'static str,
        rendered: String,
    },
    #[error("Invalid state `{0}`: use one of SUCCESS, WARNING, KILLED, FAILED, CANCELED")]
    InvalidState(String),
    #[error("Unable to unset `{0}`: `{1}` is not a map of variables")]
    NotAMap(String, String),
}

impl<'a> Machine<'a> {
    /// Runs an Exit, SetVariables or UnsetVariables task run whose attempt just started.
    pub(super) fn update_execution(&mut self, exec: &mut Execution, i: usize, task: &'a Task) -> Status {
        let result = match &task.kind {
            TaskKind::Exit { state } => match self.exit_state(exec, i, task, state) {
                Ok(state) => {
                    self.exit = Some(Exit { task_run: i, state });
                    // Stops the walk where it is: nothing after the Exit starts.
                    return Status::Done(StateType::Killed);
                }
                Err(e) => Err(e),
            },
            TaskKind::SetVariables { variables, overwrite } => {
                self.set_variables(exec, i, task, variables, overwrite)
            }
            TaskKind::UnsetVariables {
                variables,
                ignore_missing,
            } => self.unset_variables(exec, i, task, variables, ignore_missing),
            _ => return Status::Running,
        };
        match result {
            Ok(()) => {
                self.finish_leaf(exec, i, StateType::Success, IndexMap::new());
                Status::Done(runs(exec)[i].state.current)
            }
            Err(e) => Status::Done(self.fail(exec, i, task, e)),
        }
    }

    fn exit_state(
        &self,
        exec: &Execution,
        i: usize,
        task: &Task,
        state: &Value,
    ) -> Result<StateType, UpdateError> {
        let rendered = self.render(exec, i, task, state)?;
        let name = rendered.trim();
        if !EXIT_STATES.contains(&name) {
            return Err(UpdateError::InvalidState(rendered));
        }
        Ok(match name {
            "SUCCESS" => StateType::Success,
            "WARNING" => StateType::Warning,
            "KILLED" => StateType::Killed,
            "FAILED" => StateType::Failed,
            _ => StateType::Cancelled,
        })
    }

    /// Ends the execution as an Exit asked. KILLED kills every unfinished task run (the
    /// Exit's too), as a kill does. Any other state is given to the Exit's task run and
    /// its parents; the task runs still running elsewhere (other parallel branches) are
    /// KILLED, since nothing runs in an ended execution.
    pub(super) fn exit(&mut self, exec: &mut Execution, exit: Exit) {
        let now = self.now();
        let mut ended: Vec<String> = Vec::new();
        if exit.state == StateType::Killed {
            ended.extend(unfinished(exec));
            self.kill(exec);
        } else {
            let mut chain = vec![exit.task_run];
            let mut k = exit.task_run;
            while let Some(parent) = runs(exec)[k].parent_task_run_id.as_deref() {
                match exec.position(parent) {
                    Some(p) => {
                        chain.push(p);
                        k = p;
                    }
                    None => break,
                }
            }
            for &k in &chain {
                let tr = &mut runs_mut(exec)[k];
                if let Some(a) = tr.attempts.last_mut().filter(|a| !a.state.is_terminated()) {
                    a.state.set(exit.state, now);
                }
                tr.state.set(exit.state, now);
            }
            ended.extend(unfinished(exec));
            for tr in exec.task_run_list.iter_mut().flatten() {
                if !tr.state.is_terminated() {
                    if let Some(a) = tr.attempts.last_mut().filter(|a| !a.state.is_terminated()) {
                        a.state.set(StateType::Killed, now);
                    }
                    tr.state.set(StateType::Killed, now);
                }
            }
            self.terminate(exec, exit.state);
        }
        // Work asked for in this walk by task runs that the Exit ended is dropped.
        self.commands.retain(|c| match c {
            Command::RunTask { task_run_id } | Command::ScheduleTimer { task_run_id, .. } => {
                !ended.contains(task_run_id)
            }
            Command::CreateSubflowExecution(r) => !ended.contains(&r.parent_task_run_id),
            _ => true,
        });
    }

    /// SetVariables: Kestra merges the rendered map deeply into the current variables
    /// (the flow's `variables` until a task changes them).
    fn set_variables(
        &self,
        exec: &mut Execution,
        i: usize,
        task: &Task,
        variables: &Value,
        overwrite: &Value,
    ) -> Result<(), UpdateError> {
        let rendered = match variables {
            Value::String(s) => self.render_typed(exec, i, task, s)?,
            other => self.render_value(exec, i, task, other)?,
        };
        let Value::Object(new) = rendered else {
            return Err(UpdateError::WrongType {
                property: "variables",
                expected: "a map",
                rendered: write_pebble(&rendered),
            });
        };
        let overwrite = self.boolean(exec, i, task, "overwrite", overwrite)?;
        let mut current = current_variables(self.flow, exec);
        if !overwrite {
            let existing: Vec<&str> = new
                .keys()
                .filter(|k| current.contains_key(*k))
                .map(String::as_str)
                .collect();
            if !existing.is_empty() {
                return Err(UpdateError::AlreadyExist(existing.join(",")));
            }
        }
        for (k, v) in new {
            match (current.get_mut(&k), v) {
                (Some(Value::Object(old)), Value::Object(add)) => deep_merge(old, add),
                (_, v) => {
                    current.insert(k, v);
                }
            }
        }
        exec.variables = Some(current);
        Ok(())
    }

    /// UnsetVariables: removes each name, a dotted name from nested maps. A name that is
    /// not there is ignored, as Kestra does; a path through something that is not a map
    /// fails unless `ignoreMissing`.
    fn unset_variables(
        &self,
        exec: &mut Execution,
        i: usize,
        task: &Task,
        variables: &Value,
        ignore_missing: &Value,
    ) -> Result<(), UpdateError> {
        let rendered = match variables {
            Value::String(s) => self.render_typed(exec, i, task, s)?,
            other => self.render_value(exec, i, task, other)?,
        };
        let names: Vec<String> = match rendered {
            Value::Array(items) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => write_pebble(other),
                })
                .collect(),
            Value::String(s) => vec![s],
            other => {
                return Err(UpdateError::WrongType {
                    property: "variables",
                    expected: "a list of names",
                    rendered: write_pebble(&other),
                })
            }
        };
        let ignore_missing = self.boolean(exec, i, task, "ignoreMissing", ignore_missing)?;
        let mut current = current_variables(self.flow, exec);
        for name in &names {
            match name.split_once('.') {
                None => {
                    current.shift_remove(name.as_str());
                }
                Some((head, rest)) => match current.get_mut(head) {
                    Some(Value::Object(inner)) => unset_nested(inner, name, rest, ignore_missing)?,
                    _ if ignore_missing => {}
                    _ => return Err(UpdateError::NotAMap(name.clone(), head.to_string())),
                },
            }
        }
        exec.variables = Some(current);
        Ok(())
    }

    fn boolean(
        &self,
        exec: &Execution,
        i: usize,
        task: &Task,
        property: &'static str,
        v: &Value,
    ) -> Result<bool, UpdateError> {
        match v {
            Value::Bool(b) => Ok(*b),
            other => {
                let rendered = self.render(exec, i, task, other)?;
                match rendered.trim() {
                    "true" => Ok(true),
                    "false" => Ok(false),
                    _ => Err(UpdateError::WrongType {
                        property,
                        expected: "a boolean",
                        rendered,
                    }),
                }
            }
        }
    }
}

/// The ids of the task runs not yet ended.
fn unfinished(exec: &Execution) -> Vec<String> {
    runs(exec)
        .iter()
        .filter(|t| !t.state.is_terminated())
        .map(|t| t.id.clone())
        .collect()
}

/// The execution's variables as `vars` shows them: its own once a task changed them,
/// the flow's until then.
fn current_variables(flow: &Flow, exec: &Execution) -> IndexMap<String, Value> {
    exec.variables.clone().unwrap_or_else(|| flow.variables.clone())
}

fn deep_merge(into: &mut serde_json::Map<String, Value>, from: serde_json::Map<String, Value>) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(Value::Object(old)), Value::Object(add)) => deep_merge(old, add),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// Removes the dotted `path` from a nested map (`name` is the whole name, for the error).
fn unset_nested(
    map: &mut serde_json::Map<String, Value>,
    name: &str,
    path: &str,
    ignore_missing: bool,
) -> Result<(), UpdateError> {
    match path.split_once('.') {
        None => {
            map.shift_remove(path);
            Ok(())
        }
        Some((head, rest)) => match map.get_mut(head) {
            Some(Value::Object(inner)) => unset_nested(inner, name, rest, ignore_missing),
            _ if ignore_missing => Ok(()),
            _ => Err(UpdateError::NotAMap(name.to_string(), head.to_string())),
        },
    }
}
