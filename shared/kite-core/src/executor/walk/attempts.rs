//! Attempts of a task run: starting one, its timeout, its end, and retries.

use super::*;

impl<'a> Machine<'a> {
    pub(super) fn start_attempt(&mut self, exec: &mut Execution, i: usize) {
        let now = self.now();
        let tr = &mut runs_mut(exec)[i];
        tr.state.set(StateType::Running, now);
        tr.attempts.push(TaskRunAttempt {
            state: State::new(StateType::Running, now),
            log_file: None,
        });
    }

    /// A task's `timeout` bounds each attempt of a task a worker runs (and Sleep).
    pub(super) fn schedule_task_timeout(
        &mut self,
        exec: &Execution,
        i: usize,
        task: &Task,
    ) -> Result<(), TaskRunError> {
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
    pub(super) fn attempt_timed_out(&self, exec: &Execution, i: usize, task: &Task) -> bool {
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
    pub(super) fn complete(
        &mut self,
        exec: &mut Execution,
        i: usize,
        task: &Task,
        state: StateType,
    ) -> StateType {
        let state = adjust(task, settled(state));
        runs_mut(exec)[i].state.set(state, self.now());
        state
    }

    /// Fails a task run with an error line in its logs.
    pub(super) fn fail(
        &mut self,
        exec: &mut Execution,
        i: usize,
        task: &Task,
        error: impl std::fmt::Display,
    ) -> StateType {
        self.log_task(exec, i, LogLevel::Error, error.to_string());
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
    pub(super) fn finish_leaf(
        &mut self,
        exec: &mut Execution,
        i: usize,
        state: StateType,
        outputs: IndexMap<String, Value>,
    ) {
        let now = self.now();
        let task = self.flow.find_task(&runs(exec)[i].task_id);
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
    pub(super) fn retry_delay(&self, task: &Task, attempts: usize) -> Option<Duration> {
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
}
