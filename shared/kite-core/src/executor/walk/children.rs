//! Which child task runs of a flowable task exist, and which come next: task lists,
//! branches, loops (`ForEach`, `EachSequential`, `EachParallel`).

use super::*;
use crate::execution::NO_VALUE;

impl<'a> Machine<'a> {
    /// A flowable's children: its tasks, then `errors` or `finally` as they turn out.
    fn flowable(
        &mut self,
        exec: &mut Execution,
        f: &'a Flowable,
        parent: Option<&str>,
        value: Option<&str>,
        mode: Mode,
    ) -> Status {
        self.body(exec, &f.tasks, &f.errors, &f.finally, parent, value, mode, None)
    }

    /// Runs `tasks`; when they fail, `errors`; then `finally`, always.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn body(
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
    pub(super) fn list(
        &mut self,
        exec: &mut Execution,
        tasks: &'a [Task],
        parent: Option<&str>,
        value: Option<&str>,
        iteration: Option<u32>,
        mode: Mode,
    ) -> Status {
        let mut running = 0u32;
        let mut stopped = false;
        let mut waiting = false;
        // Tasks before the cursor all ended well: they are not looked at again, so a
        // step costs the tasks still in flight, not the length of the list.
        let key = tasks.first().map(|first| {
            let (parent, value) = (parent.unwrap_or(""), value.unwrap_or(NO_VALUE));
            format!("{parent}\u{1}{value}\u{1}{}", first.id)
        });
        let cursor = key.as_ref().and_then(|k| exec.index.list_cursor.get(k).copied());
        let (start, mut state) = cursor.unwrap_or((0, StateType::Success));
        let mut prefix = (start, state);
        for (k, task) in tasks.iter().enumerate().skip(start) {
            let in_prefix = prefix.0 == k;
            if task.disabled {
                if in_prefix {
                    prefix.0 = k + 1;
                }
                continue;
            }
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
                        self.keep_list_cursor(exec, key, cursor, prefix);
                        return Status::Running;
                    }
                }
                Status::Done(s) => {
                    let s = settled(s);
                    state = worse(state, s);
                    if matches!(s, StateType::Failed | StateType::Killed) {
                        match mode {
                            Mode::Sequential => {
                                self.keep_list_cursor(exec, key, cursor, prefix);
                                return Status::Done(s);
                            }
                            Mode::Parallel(_) => stopped = true,
                        }
                    } else if in_prefix {
                        prefix = (k + 1, state);
                    }
                }
            }
        }
        self.keep_list_cursor(exec, key, cursor, prefix);
        if running > 0 || (waiting && !stopped) {
            Status::Running
        } else {
            Status::Done(state)
        }
    }

    /// Remembers how far a list's leading tasks ended well, when that moved.
    fn keep_list_cursor(
        &self,
        exec: &mut Execution,
        key: Option<String>,
        before: Option<(usize, StateType)>,
        prefix: (usize, StateType),
    ) {
        if let Some(key) = key {
            if prefix.0 > before.map_or(0, |c| c.0) {
                exec.index.list_cursor.insert(key, prefix);
            }
        }
    }

    /// Advances an existing task run.
    pub(super) fn existing(&mut self, exec: &mut Execution, task: &'a Task, i: usize) -> Status {
        let tr = &runs(exec)[i];
        if tr.state.is_terminated() {
            return Status::Done(tr.state.current);
        }
        let id = tr.id.clone();
        let value = tr.value.clone();
        let (p, v) = (Some(id.as_str()), value.as_deref());
        let status = match &task.kind {
            TaskKind::Sequential(f) | TaskKind::ForEachItem(f) => {
                self.flowable(exec, f, p, v, Mode::Sequential)
            }
            TaskKind::WorkingDirectory(w) => self.flowable(exec, &w.body, p, v, Mode::Sequential),
            TaskKind::Parallel { body, concurrent } => {
                self.flowable(exec, body, p, v, Mode::Parallel(*concurrent))
            }
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
                StateType::Running => self.flowable(exec, &pause.body, p, v, Mode::Sequential),
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
    pub(super) fn each(
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
}
