//! The worker step: a queue item is turned into an event, driven through the core
//! ([`kite_core::executor::Driver`]) and committed with the work it leads to, in one
//! compare-and-set write.

use kite_core::kv::{inherited_namespaces, kv_references, KvError, KvSource};
use kite_core::secret::{secret_names, Secrets};

use super::worker_run::WorkerRun;
use super::*;
use crate::ports::{PassKv, PassSecrets};

/// Runs `f`, synchronous work of the core, without stalling the other tasks of its async
/// worker thread (the API's requests among them) when `heavy`: on a multi-thread runtime
/// they move to another thread meanwhile. The hand-off costs a thread switch, so light work
/// (and any work on a current-thread runtime, where no hand-off exists) runs in place.
fn cpu_bound<R>(heavy: bool, f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if heavy && handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// The pause before a step's `attempt`th try after compare-and-set conflicts: growing
/// up to about 50 ms, spread by the item's id so that contenders do not retry together.
fn conflict_backoff(item_id: &str, attempt: u32) -> std::time::Duration {
    let spread = item_id.bytes().fold(u64::from(attempt), |h, b| {
        h.wrapping_mul(31).wrapping_add(u64::from(b))
    });
    let ceiling = 1u64 << attempt.min(6);
    std::time::Duration::from_millis(1 + spread % ceiling)
}

impl Engine {
    /// Queues work for an execution and hands it to the fast path.
    pub(super) async fn enqueue(&self, execution_id: &str, work: Work) -> Result<(), EngineError> {
        let now = self.now();
        let item = WorkItem {
            id: self.new_id(),
            execution_id: execution_id.to_string(),
            due: now,
            work,
        };
        self.inner.ports.queue.push(std::slice::from_ref(&item)).await?;
        if let Some(d) = self.inner.dispatcher.read().ok().and_then(|d| d.clone()) {
            // Not claimed: if the fast path and a poller both run it, the second finds nothing to do.
            d.dispatch(vec![item]);
        }
        Ok(())
    }

    /// Prepares work after a restart of the only consumer: every committed state has its
    /// inline task runs done, so what is left is queued; leases held by the previous process
    /// are released so that its claimed items run now. An item that was in hand at
    /// `crash_limit` deaths of the process (a render or task that kills it, every time) is
    /// not run again: its execution FAILS, saying why, and the server stays up.
    /// Returns the number of non-terminal executions.
    pub async fn recover(&self) -> Result<usize, EngineError> {
        let found = self
            .inner
            .ports
            .queue
            .release_leases(self.inner.config.crash_limit)
            .await?;
        for (item, crashes) in found.crashed {
            let reason = self.give_up_reason(&item, crashes).await?;
            tracing::error!(execution = %item.execution_id, work = ?item.work, crashes, "{reason}");
            let give_up = WorkItem {
                work: Work::GiveUp { reason },
                ..item
            };
            // Never a reason not to start: the item stays leased and is given up on at the
            // next start.
            if let Err(e) = self.process(give_up).await {
                tracing::error!(error = %e, "cannot fail the execution of a crashed work item");
            }
        }
        let ids = self.inner.ports.executions.list_non_terminal().await?;
        tracing::info!(
            released = found.released,
            executions = ids.len(),
            "recovered queued work"
        );
        Ok(ids.len())
    }

    /// What the execution's ERROR log says when the crash-loop guard fails it: `earlier`
    /// runs of `item` never finished.
    pub async fn give_up_reason(&self, item: &WorkItem, earlier: u32) -> Result<String, EngineError> {
        let what = match &item.work {
            Work::RunTask { task_run_id } => {
                let execution = self.inner.ports.executions.get(&item.execution_id).await?;
                let task = execution
                    .as_ref()
                    .and_then(|c| c.execution.find_task_run(task_run_id))
                    .map_or_else(String::new, |tr| format!(" `{}`", tr.task_id));
                format!("task run{task} ({task_run_id})")
            }
            Work::Timer { task_run_id, timer } => {
                format!("the {} timer of task run {task_run_id}", timer.name())
            }
            other => format!("its {} step", other.name()),
        };
        Ok(format!(
            "Kite gave up on {what}: {earlier} earlier runs of it never finished (the process \
             died or timed out with it in hand), so it is not run again. The server log of those \
             runs tells why."
        ))
    }

    /// Processes one queue item: applies its event, runs light tasks inline until the
    /// execution waits for something else, then commits everything in one transition
    /// (retrying on a compare-and-set conflict) and acks the item.
    pub async fn process(&self, item: WorkItem) -> Result<(), EngineError> {
        let span = info_span!("execution", id = %item.execution_id);
        self.process_inner(item).instrument(span).await
    }

    pub(super) async fn process_inner(&self, item: WorkItem) -> Result<(), EngineError> {
        let ports = &self.inner.ports;
        let mut cached = self.recall(&item.execution_id);
        // A task run's I/O happens once per delivery, whatever the conflicts on its commit.
        let mut worker_event: Option<Option<Event>> = None;
        // Set when a start found every running slot of its flow held.
        let mut over_limit = false;
        for attempt in 0..=self.inner.config.max_conflict_retries {
            if attempt > 1 {
                // Many steps of one execution at once (the ends of a ForEachItem's subflows)
                // would otherwise retry in lockstep and use up their retries together.
                tokio::time::sleep(conflict_backoff(&item.id, attempt)).await;
            }
            let current = match cached.take() {
                Some(c) => Some(c),
                None => ports.executions.get(&item.execution_id).await?,
            };
            let Some(current) = current else {
                ports.queue.ack(std::slice::from_ref(&item.id)).await?;
                return Ok(());
            };
            let mut execution = current.execution;
            if let Work::Triggers { state, occurrence } = &item.work {
                self.evaluate_triggers(&execution, *state, *occurrence).await?;
                ports.queue.ack(std::slice::from_ref(&item.id)).await?;
                return Ok(());
            }
            let known_history = execution.state.histories.len();
            let flow = match self.flow_of(&execution).await {
                Ok(f) => f,
                Err(e) => {
                    warn!(error = %e, "flow of execution unavailable; dropping work item");
                    ports.queue.ack(std::slice::from_ref(&item.id)).await?;
                    return Ok(());
                }
            };
            let event = match (&item.work, &worker_event) {
                (Work::RunTask { .. }, Some(done)) => done.clone(),
                (Work::RunTask { task_run_id }, None) => {
                    match self
                        .run_on_worker(&flow, &execution, &item.id, task_run_id)
                        .await?
                    {
                        WorkerRun::Done(done) => {
                            worker_event = Some(done.clone());
                            done
                        }
                        WorkerRun::ClaimedElsewhere => return Ok(()),
                        WorkerRun::Again(at) => {
                            ports.queue.reschedule(&item.id, at).await?;
                            return Ok(());
                        }
                    }
                }
                (work, _) => self.event_for(&execution, work).await?,
            };
            if event == Some(Event::Kill) {
                self.cancel_running(&execution.id);
            }
            let Some(event) = event else {
                ports.queue.ack(std::slice::from_ref(&item.id)).await?;
                return Ok(());
            };
            let mut pass = Step::default();
            let limit = flow.flow.concurrency.as_ref().map(|c| c.limit);
            let starting = event == Event::Start
                && matches!(execution.state.current, StateType::Created | StateType::Queued);
            let gate = match limit {
                Some(limit) if starting && over_limit => Some((limit, self.over_limit_state(&flow.flow))),
                _ => None,
            };
            match gate {
                // Over the flow's concurrency limit: queued (started when another ends), cancelled or failed.
                Some((_, StateType::Queued)) if execution.state.current == StateType::Queued => {
                    // Still waiting: nothing changes until another execution ends.
                    ports.queue.ack(std::slice::from_ref(&item.id)).await?;
                    return Ok(());
                }
                Some((limit, state)) => {
                    let now = self.now();
                    execution.state.set(state, now);
                    if state.is_terminated() {
                        pass.terminated = Some(state);
                        pass.wake.push(subflow_wait_id(&execution.id));
                        if state == StateType::Failed {
                            pass.logs.push(LogEntry::for_execution(
                                &execution,
                                LogLevel::Error,
                                "Flow is FAILED due to concurrency limit exceeded",
                                now,
                            ));
                        }
                    } else {
                        // Queued only while the slots are still all held, so that the end
                        // that frees one cannot miss this execution.
                        pass.slot = Some(Slot::Wait { limit });
                    }
                }
                None => {
                    match self.drive(&flow, &mut execution, event, &mut pass).await {
                        Ok(()) => {}
                        // The state machine refuses this event for good: redelivering it cannot help.
                        Err(EngineError::Internal(message)) => {
                            tracing::error!(error = %message, work = ?item.work, "work item refused; dropped");
                            ports.queue.ack(std::slice::from_ref(&item.id)).await?;
                            return Err(EngineError::Internal(message));
                        }
                        Err(e) => return Err(e),
                    }
                    if pass.interrupted {
                        // The kill's step commits KILLED; this item, left unacked, comes
                        // back after its lease and finds nothing to do.
                        debug!("pass stopped by a kill");
                        return Ok(());
                    }
                    pass.slot = limit.and_then(|limit| match (starting, pass.terminated.is_some()) {
                        (true, false) => Some(Slot::Take { limit }),
                        // Started and ended in this step: it must still fit under the limit.
                        (true, true) => Some(Slot::Check { limit }),
                        (false, true) => Some(Slot::Release),
                        (false, false) => None,
                    });
                }
            }
            pass.push
                .extend(self.trigger_work(&flow.flow, &execution, known_history).await?);
            let release = matches!(pass.slot, Some(Slot::Release | Slot::Check { .. }));
            let (namespace, flow_id) = (execution.namespace.clone(), execution.flow_id.clone());
            match self
                .commit_pass(execution, Some(current.version), pass, vec![item.id.clone()])
                .await
            {
                Ok(()) => {
                    if release {
                        self.start_next_queued(&namespace, &flow_id).await?;
                    }
                    return Ok(());
                }
                // Every slot is held: redo the step as the flow's `concurrency.behavior` says.
                Err(EngineError::Store(StoreError::LimitReached(_))) => {
                    debug!("concurrency limit reached");
                    over_limit = true;
                    continue;
                }
                Err(EngineError::Store(StoreError::Conflict(_))) => {
                    debug!("conflict, retrying");
                    over_limit = false;
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        Err(EngineError::Store(StoreError::Conflict(item.execution_id)))
    }

    /// The state an execution about to start takes when every running slot of its flow
    /// is held (`concurrency.behavior`): QUEUED, CANCELLED or FAILED.
    fn over_limit_state(&self, flow: &Flow) -> StateType {
        match executor::concurrency_decision(flow, usize::MAX) {
            executor::ConcurrencyDecision::Cancel => StateType::Cancelled,
            executor::ConcurrencyDecision::Fail => StateType::Failed,
            executor::ConcurrencyDecision::Queue | executor::ConcurrencyDecision::Admit => StateType::Queued,
        }
    }

    /// Queues the start of the oldest QUEUED execution of a flow (one of its executions ended).
    pub(super) async fn start_next_queued(&self, namespace: &str, flow_id: &str) -> Result<(), EngineError> {
        let queued = self
            .inner
            .ports
            .executions
            .search(&ExecutionQuery {
                namespace: Some(namespace.to_string()),
                flow_id: Some(flow_id.to_string()),
                states: vec![StateType::Queued],
                pagination: crate::ports::Pagination { page: 1, size: 1 },
                sort: vec![crate::ports::Sort {
                    field: "startDate".into(),
                    descending: false,
                }],
                ..Default::default()
            })
            .await?;
        for next in queued.results.into_iter().filter(|e| e.namespace == namespace) {
            self.enqueue(&next.id, Work::Start).await?;
        }
        Ok(())
    }

    /// The secrets a pass over an execution of `flow` reads: those its source names
    /// literally, fetched now (renders cannot wait for a store), masked in its log lines.
    pub(super) async fn pass_secrets(&self, flow: &FlowWithSource) -> Secrets {
        let store = self.inner.ports.secrets.clone();
        let names = secret_names(&flow.source);
        let mut fetched = Vec::with_capacity(names.len());
        for name in &names {
            fetched.push((name.clone(), store.fetch(name).await));
        }
        Secrets::new(Arc::new(PassSecrets { fetched, store })).preload(&names)
    }

    /// The KV pairs a pass over an execution of `flow` reads: the `kv()` calls its source
    /// spells out literally, fetched now (without a namespace: the flow's, then its
    /// parents' until one holds the key, as `kv()` looks them up).
    pub(super) async fn pass_kv(&self, flow: &FlowWithSource) -> PassKv {
        let store = self.inner.ports.kv.clone();
        let now = self.now();
        let mut fetched = Vec::new();
        for reference in kv_references(&flow.source) {
            let namespaces: Vec<&str> = match &reference.namespace {
                Some(ns) => vec![ns.as_str()],
                None => inherited_namespaces(&flow.flow.namespace).collect(),
            };
            for ns in namespaces {
                let value = store
                    .get_kv(ns, &reference.key, now)
                    .await
                    .map_err(|e| KvError::Unavailable {
                        namespace: ns.to_string(),
                        key: reference.key.clone(),
                        reason: e.to_string(),
                    });
                let found = !matches!(value, Ok(None));
                fetched.push(((ns.to_string(), reference.key.clone()), value));
                if found {
                    break;
                }
            }
        }
        PassKv { fetched }
    }

    /// Calls `f` with the core's environment (never held across an await: it is not `Send`).
    pub(super) fn with_env<R>(
        &self,
        secrets: Option<&Secrets>,
        kv: Option<&PassKv>,
        f: impl FnOnce(&Env) -> R,
    ) -> R {
        let ports = &self.inner.ports;
        let files = Files(ports.files.as_ref());
        let env = Env {
            now: self.now(),
            ids: ports.ids.as_ref(),
            expressions: &self.inner.expressions,
            files: Some(&files),
            secret_key: self.inner.config.secret_key.as_deref(),
            globals: self.inner.config.globals.as_ref(),
            secrets,
            max_task_output: self.inner.config.max_task_output,
            kv: kv.map(|kv| kv as &dyn KvSource),
        };
        f(&env)
    }

    /// The event a work item stands for, or `None` when there is nothing left to do.
    pub(super) async fn event_for(
        &self,
        execution: &Execution,
        work: &Work,
    ) -> Result<Option<Event>, EngineError> {
        Ok(match work {
            Work::Start => match execution.state.current {
                StateType::Created => Some(Event::Start),
                // Recovery: re-walk a running execution so lost task runs are run again.
                s if !s.is_terminated() && s != StateType::Paused => Some(Event::Start),
                _ => None,
            },
            // Handled by the caller.
            Work::RunTask { .. } | Work::Triggers { .. } => None,
            // Timers of an ended execution (a task or execution timeout) have nothing left to do.
            Work::Timer { .. } if execution.state.current.is_terminated() => None,
            Work::Timer { task_run_id, timer } => Some(Event::TimerFired {
                task_run_id: task_run_id.clone(),
                timer: *timer,
            }),
            Work::SubflowEnded {
                task_run_id,
                child_execution_id,
            } => match self.inner.ports.executions.get(child_execution_id).await? {
                Some(child) => Some(Event::SubflowEnded {
                    task_run_id: task_run_id.clone(),
                    child: Box::new(child.execution),
                }),
                None => None,
            },
            Work::Kill => (!execution.state.current.is_terminated()).then_some(Event::Kill),
            Work::GiveUp { reason } => Some(Event::GiveUp {
                reason: reason.clone(),
            }),
            Work::Resume { task_run_id, inputs } => {
                (execution.state.current == StateType::Paused).then(|| Event::Resume {
                    task_run_id: task_run_id.clone(),
                    inputs: inputs.clone(),
                })
            }
        })
    }

    /// Applies `first` and everything it leads to within this process (the core's driver:
    /// light task runs inline), then turns timers and subflow executions into queue items.
    pub(super) async fn drive(
        &self,
        flow: &FlowWithSource,
        execution: &mut Execution,
        first: Event,
        pass: &mut Step,
    ) -> Result<(), EngineError> {
        let secrets = self.pass_secrets(flow).await;
        let kv = self.pass_kv(flow).await;
        // Renders run up to `MAX_LOOP_ITERATIONS` loop iterations (hundreds of milliseconds):
        // only through a `{% for %}` of the flow, a template that `render()` reads, or `jq`.
        let heavy = ["{%", "render(", "jq("].iter().any(|t| flow.source.contains(t));
        let flow = flow.flow.as_ref();
        let mut driver = Driver::new(first);
        let mut children = Vec::new();
        // A kill of this execution from now on stops its renders in this pass.
        let kill = self.cancellation(&execution.id);
        let killed = move || kill.has_changed().unwrap_or(false) && *kill.borrow();
        let interrupt: kite_core::expression::Interrupt = Arc::new(killed.clone());
        while let Some(need) = cpu_bound(heavy, || {
            self.with_env(Some(&secrets), Some(&kv), |env| {
                kite_core::expression::interruptible(interrupt.clone(), || {
                    driver.advance(flow, execution, env)
                })
            })
        })
        .map_err(|e| EngineError::Internal(e.to_string()))?
        {
            match need {
                Need::StoredErrorLogs => {
                    let stored = self
                        .inner
                        .ports
                        .logs
                        .list(&LogQuery {
                            execution_id: execution.id.clone(),
                            min_level: Some(LogLevel::Error),
                            ..Default::default()
                        })
                        .await?;
                    driver.stored_error_logs(
                        stored
                            .iter()
                            .filter_map(|l| serde_json::to_value(l).ok())
                            .collect(),
                    );
                }
                Need::Subflow(request) => match self.prepare_subflow(&request).await {
                    Ok(child) => {
                        children.push(child);
                        driver.subflow_created(*request);
                    }
                    Err(e) => driver.subflow_refused(&request, execution, e.to_string(), self.now()),
                },
            }
        }
        // Killed meanwhile: the kill's own step decides the states, not this pass.
        pass.interrupted = killed();
        drop((killed, interrupt));
        self.release_cancellation(&execution.id);
        let driven = driver.finish();
        pass.logs.extend(driven.logs);
        pass.push.extend(
            driven
                .timers
                .into_iter()
                .map(|timer| WorkItem::timer(&execution.id, timer)),
        );
        let now = self.now();
        for task_run_id in &driven.worker_task_runs {
            let attempt = execution
                .find_task_run(task_run_id)
                .map_or(1, |t| t.attempts.len());
            pass.push
                .push(WorkItem::run_task(&execution.id, task_run_id, attempt, now));
        }
        for (request, child) in driven.subflows.into_iter().zip(children) {
            if request.wait {
                pass.push.push(WorkItem::subflow_wait(
                    &execution.id,
                    &request.parent_task_run_id,
                    &child.id,
                ));
            }
            let now = self.now();
            let due = child.schedule_date.filter(|d| *d > now).unwrap_or(now);
            pass.push.push(WorkItem::start(&child.id, due));
            pass.children.push(child);
        }
        if let Some(state) = driven.terminated {
            pass.terminated = Some(state);
            pass.wake.push(subflow_wait_id(&execution.id));
        }
        Ok(())
    }

    /// Builds the child execution a Subflow task asks for (typed inputs, CREATED).
    pub(super) async fn prepare_subflow(
        &self,
        request: &executor::SubflowRequest,
    ) -> Result<Execution, EngineError> {
        let flow = match self
            .flow_arc(&request.namespace, &request.flow_id, request.revision, false)
            .await
        {
            Err(EngineError::NotFound(_)) => {
                return Err(EngineError::NotFound(format!(
                    "Unable to find flow '{}'.'{}' with revision '{}'",
                    request.namespace,
                    request.flow_id,
                    request
                        .revision
                        .map(|r| r.to_string())
                        .unwrap_or_else(|| "latest".into())
                )))
            }
            other => other?,
        };
        if flow.flow.disabled {
            return Err(EngineError::IllegalState("Cannot execute a disabled flow".into()));
        }
        let provided: IndexMap<String, InputValue> = request
            .inputs
            .iter()
            .map(|(k, v)| (k.clone(), InputValue::Json(v.clone())))
            .collect();
        let inputs = self.type_inputs(&flow.flow, &request.execution_id, &provided)?;
        Ok(executor::new_execution(
            &flow.flow,
            NewExecution {
                id: request.execution_id.clone(),
                inputs,
                labels: request.labels.clone(),
                trigger: Some(request.trigger.clone()),
                schedule_date: request.schedule_date,
                parent: None,
            },
            self.now(),
        ))
    }

    pub(super) async fn commit_pass(
        &self,
        execution: Execution,
        expected_version: Option<i64>,
        pass: Step,
        ack: Vec<String>,
    ) -> Result<(), EngineError> {
        // After the pass, so that everything it queued for "now" is due.
        let now = self.now();
        let children = pass.children;
        let transition = Transition {
            execution: execution.clone(),
            expected_version,
            logs: pass.logs,
            push: pass.push.clone(),
            claimed: pass
                .push
                .iter()
                .filter(|i| i.due <= now && self.dispatches(&i.work))
                .map(|i| i.id.clone())
                .collect(),
            claim_until: Some(self.claim_deadline(now)),
            ack,
            wake: pass.wake.clone(),
            children: children.clone(),
            slot: pass.slot,
        };
        let version = self.inner.ports.executions.commit(transition).await?;
        if let Some(state) = pass.terminated {
            debug!(state = state.as_str(), "execution terminated");
        }
        let mut pushed = pass.push;
        if !pass.wake.is_empty() {
            // A parent may wait for this execution: let the queue deliver its wake-up.
            if let Some(d) = self.inner.dispatcher.read().ok().and_then(|d| d.clone()) {
                d.wake_at(now);
            }
        }
        pushed.retain(|i| i.due != never());
        self.after_commit(execution, version, pushed, now);
        for child in &children {
            self.notify(child);
        }
        Ok(())
    }

    pub(super) fn claim_deadline(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono::Duration::from_std(self.inner.config.lease)
            .unwrap_or_else(|_| chrono::Duration::seconds(60))
    }

    /// Notifies watchers, keeps the committed state for the next step (before that step can
    /// start), then hands due-now items to the dispatcher and arms timers.
    pub(super) fn after_commit(
        &self,
        execution: Execution,
        version: i64,
        pushed: Vec<WorkItem>,
        now: DateTime<Utc>,
    ) {
        self.notify(&execution);
        self.remember(execution, version);
        let dispatcher = self.inner.dispatcher.read().ok().and_then(|d| d.clone());
        if let Some(d) = dispatcher {
            let (due, later): (Vec<WorkItem>, Vec<WorkItem>) = pushed
                .into_iter()
                .filter(|i| d.runs(&i.work))
                .partition(|i| i.due <= now);
            if let Some(first) = later.iter().map(|i| i.due).min() {
                d.wake_at(first);
            }
            if !due.is_empty() {
                d.dispatch(due);
            }
        }
    }
}
