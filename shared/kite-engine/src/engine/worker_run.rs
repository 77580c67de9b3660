//! A task run that does I/O, on this process's worker: made once per attempt whatever
//! the duplicate deliveries (a run claim in the queue's store), bounded by the task's
//! `timeout` and by the time the host gives it (a Lambda invocation), and stopped by a kill.

use std::time::Duration;

use kite_core::execution::iso_duration;
use kite_core::task;
use tokio::time::Instant;

use super::*;
use crate::ports::{never, WorkerContext};

/// What became of a task run's I/O on this delivery.
pub(super) enum WorkerRun {
    /// The event it ends with: its result, or `None` when there is nothing to report (it
    /// had ended, or the execution was killed while it ran).
    Done(Option<Event>),
    /// Another delivery holds the claim: the item is left as it is (not acked), so it
    /// comes back after its lease or the outbox's resend, to find the result committed or
    /// the claim lapsed with a dead holder.
    ClaimedElsewhere,
    /// Cut off by the end of the host's invocation: the item comes back at that date,
    /// after the claim.
    Again(DateTime<Utc>),
}

/// The time a host gives one invocation of its work (a Lambda invocation).
#[derive(Debug, Clone, Copy)]
pub struct RunWindow {
    pub started: Instant,
    pub deadline: Instant,
}

/// How often a job running where kills are committed by other processes (the Lambdas)
/// reads its execution's state: a kill stops it within this time.
const KILL_POLL: Duration = Duration::from_secs(1);

/// Kept from a job's share of the window to commit its result.
const COMMIT_TIME: Duration = Duration::from_secs(2);

/// The share of a window a job must have had for running out of it to fail the task run.
const WHOLE_WINDOW: f64 = 0.8;

/// The FAILED task run's message when a whole invocation was not enough.
fn out_of_time_message(whole: Duration) -> String {
    format!(
        "Task run did not finish within the worker's time limit: the worker function's \
         invocation lasts {} s (its Lambda timeout) and the task was still running at its end. \
         Give the task a `timeout` under that limit, or raise the worker function's `Timeout`.",
        whole.as_secs()
    )
}

impl Engine {
    /// Runs a task run that does I/O on the worker, unless it already finished or another
    /// delivery of the same item runs it (deliveries are at-least-once).
    pub(super) async fn run_on_worker(
        &self,
        flow: &FlowWithSource,
        execution: &Execution,
        item_id: &str,
        task_run_id: &str,
    ) -> Result<WorkerRun, EngineError> {
        let Some(tr) = execution.find_task_run(task_run_id) else {
            return Ok(WorkerRun::Done(None));
        };
        if tr.state.current != StateType::Running {
            return Ok(WorkerRun::Done(None));
        }
        let finished = |result| {
            WorkerRun::Done(Some(Event::TaskRunFinished {
                task_run_id: task_run_id.to_string(),
                result,
            }))
        };
        let secrets = self.pass_secrets(flow).await;
        let kv = self.pass_kv(flow).await;
        let job = match self.with_env(Some(&secrets), Some(&kv), |env| {
            task::prepare_io(&flow.flow, execution, task_run_id, env)
        }) {
            Ok(job) => job,
            Err(failed) => return Ok(finished(failed)),
        };
        let ports = &self.inner.ports;
        let window = *self.inner.run_window.lock().unwrap_or_else(|e| e.into_inner());
        let started = Instant::now();
        // What the host leaves for the job: its invocation's end, less the time to commit.
        let remaining = window.map(|w| w.deadline.saturating_duration_since(started));
        let left = remaining.map(|r| r.saturating_sub(COMMIT_TIME));
        let bound = match (job.timeout, left) {
            (Some(t), Some(l)) => Some(t.min(l)),
            (t, l) => t.or(l),
        };
        let now = self.now();
        let until = bound
            .and_then(|b| chrono::Duration::from_std(b).ok())
            .map_or_else(never, |b| now + b);
        if !ports.queue.claim_run(item_id, now, until).await? {
            debug!(task_run = %task_run_id, "task run's I/O claimed by another delivery");
            return Ok(WorkerRun::ClaimedElsewhere);
        }
        let context = WorkerContext {
            logs: ports.logs.clone(),
            files: ports.files.clone(),
            clock: ports.clock.clone(),
            kv: ports.kv.clone(),
            executions: ports.executions.clone(),
        };
        let (timeout, task_run) = (job.timeout, job.task_run.clone());
        let mut killed = self.cancellation(&execution.id);
        let result = async {
            tokio::select! {
                // A kill that came first wins: the job does not start.
                biased;
                _ = until_true(&mut killed) => None,
                // Other processes see the kill first when steps run elsewhere (the Lambdas).
                _ = self.killed_elsewhere(&execution.id), if self.inner.config.watch_poll.is_some() => None,
                result = ports.worker.run(job, context) => Some(Ok(result)),
                _ = sleep_or_never(timeout) => {
                    let limit = timeout.and_then(|t| chrono::Duration::from_std(t).ok()).unwrap_or_default();
                    Some(Ok(task_run.failed(format!("Timeout after {}", iso_duration(limit)), self.now())))
                }
                _ = sleep_or_never(left) => Some(Err(())),
            }
        }
        .instrument(info_span!("task_run", id = %task_run_id))
        .await;
        drop(killed);
        self.release_cancellation(&execution.id);
        Ok(match result {
            None => WorkerRun::Done(None),
            Some(Ok(result)) => finished(result),
            Some(Err(())) => {
                // Only a window ends a job this way, so both are set.
                let whole = window.map_or(Duration::ZERO, |w| {
                    w.deadline.saturating_duration_since(w.started)
                });
                let had = remaining.unwrap_or_default();
                if had.as_secs_f64() >= whole.as_secs_f64() * WHOLE_WINDOW {
                    // It had (nearly) a whole invocation: another would not be enough either.
                    finished(task_run.failed(out_of_time_message(whole), self.now()))
                } else {
                    // Started late in the invocation: a new one gives it the whole time.
                    warn!(task_run = %task_run_id, "task run's I/O cut off by the invocation's end; run again");
                    WorkerRun::Again(until + chrono::Duration::seconds(1))
                }
            }
        })
    }

    /// Resolves once the stored execution is killed (or ended): read every
    /// [`KILL_POLL`] while a job runs, for a kill committed by another process.
    async fn killed_elsewhere(&self, execution_id: &str) {
        loop {
            tokio::time::sleep(KILL_POLL).await;
            match self.inner.ports.executions.get(execution_id).await {
                Ok(Some(current)) => {
                    let state = current.execution.state.current;
                    if state == StateType::Killing || state.is_terminated() {
                        return;
                    }
                }
                // Gone (deleted): nothing is left to report to.
                Ok(None) => return,
                Err(e) => debug!(error = %e, "cannot read the execution for a kill; polling on"),
            }
        }
    }

    /// Sets the time this host gives the work it runs (a Lambda invocation, from its
    /// start to its deadline), or `None` (the local server) for no limit but the tasks'.
    /// A task run's I/O still running at the window's end is stopped: it fails when it
    /// had nearly the whole window, and runs again in the next one otherwise.
    pub fn set_run_window(&self, window: Option<RunWindow>) {
        *self.inner.run_window.lock().unwrap_or_else(|e| e.into_inner()) = window;
    }

    /// Watches for a kill of the execution while a task run of it is on the worker.
    pub(super) fn cancellation(&self, execution_id: &str) -> watch::Receiver<bool> {
        let mut running = self.inner.running.lock().unwrap_or_else(|e| e.into_inner());
        running
            .entry(execution_id.to_string())
            .or_insert_with(|| watch::channel(false).0)
            .subscribe()
    }

    /// Forgets the watch of an execution no job runs for any more (a kill stays
    /// remembered for the jobs that may still start).
    pub(super) fn release_cancellation(&self, execution_id: &str) {
        let mut running = self.inner.running.lock().unwrap_or_else(|e| e.into_inner());
        if running
            .get(execution_id)
            .is_some_and(|tx| tx.receiver_count() == 0 && !*tx.borrow())
        {
            running.remove(execution_id);
        }
    }

    /// A restarted execution runs again: its earlier kill no longer stops its jobs.
    pub(super) fn forget_kill(&self, execution_id: &str) {
        let mut running = self.inner.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = running.get(execution_id) {
            tx.send_replace(false);
            if tx.receiver_count() == 0 {
                running.remove(execution_id);
            }
        }
    }

    /// Stops the task runs of a killed execution running on this process's worker, and
    /// those about to start (a job that read the execution before the kill).
    pub(super) fn cancel_running(&self, execution_id: &str) {
        let mut running = self.inner.running.lock().unwrap_or_else(|e| e.into_inner());
        if running.len() >= KILLED_KEPT {
            // Kills no job came for: forgotten (their executions are long terminated).
            running.retain(|_, tx| tx.receiver_count() > 0);
        }
        running
            .entry(execution_id.to_string())
            .or_insert_with(|| watch::channel(false).0)
            .send_replace(true);
    }
}

/// Kills remembered for jobs that may still start, before the oldest are dropped.
const KILLED_KEPT: usize = 1024;

/// Resolves once the flag turns true (never if its sender goes away first).
async fn until_true(flag: &mut watch::Receiver<bool>) {
    if flag.wait_for(|set| *set).await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn sleep_or_never(limit: Option<std::time::Duration>) {
    match limit {
        Some(limit) => tokio::time::sleep(limit).await,
        None => std::future::pending().await,
    }
}
