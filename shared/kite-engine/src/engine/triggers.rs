//! Schedule and Flow triggers over the ports: the core decides, this module loads
//! state, creates executions with derived ids (so firing twice creates nothing new)
//! and stores the trigger state with compare-and-set.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, DurationRound, Utc};
use indexmap::IndexMap;
use kite_core::execution::{Execution, ExecutionTrigger, Label, LogEntry, LogLevel, StateType};
use kite_core::executor::{self, NewExecution};
use kite_core::expression::RenderContext;
use kite_core::flow::{Flow, TriggerType};
use kite_core::input::InputValue;
use kite_core::run_variables::{self, Extras};
use kite_core::trigger::condition::{self, ConditionContext};
use kite_core::trigger::flow_trigger::{self, FlowTrigger};
use kite_core::trigger::schedule::{self, Schedule};
use kite_core::trigger::TriggerState;
use serde_json::{json, Value};
use tracing::{info, warn};

use super::{Engine, FlowWithSource};
use crate::error::EngineError;
use crate::ports::{
    FlowQuery, Pagination, ScheduleRule, StoreError, SyncReport, Transition, TriggerQuery, WorkItem,
};

/// The flows that carry Schedule and Flow triggers, built from the flow repository and
/// dropped whenever this engine writes a flow.
pub(crate) struct TriggerIndex {
    built: std::time::Instant,
    schedules: Vec<(Arc<FlowWithSource>, Schedule)>,
    listeners: Vec<(Arc<FlowWithSource>, FlowTrigger)>,
}

const SCHEDULE_TYPE: &str = "io.kestra.plugin.core.trigger.Schedule";
const FLOW_TYPE: &str = "io.kestra.plugin.core.trigger.Flow";

/// Compare-and-set retries of one trigger state update.
const STATE_RETRIES: usize = 5;

/// Page size of the full reads of flows and trigger states.
const PAGE: u32 = 500;

/// How long before a reconcile's read a schedule written by a flow save is left alone: the
/// save may be newer than the (eventually consistent) read, and clocks differ a little.
const RECONCILE_MARGIN_SECONDS: i64 = 60;

/// The registry rules of one flow's Schedule triggers; `state_disabled(trigger id)` says
/// whether the trigger's stored state disables it (the trigger API, `stopAfter`).
fn schedule_rules(
    flow: &Flow,
    state_disabled: impl Fn(&str) -> bool,
    now: DateTime<Utc>,
) -> Vec<ScheduleRule> {
    flow.triggers
        .iter()
        .filter_map(|t| {
            let s = Schedule::from_trigger(t).ok()?;
            Some(ScheduleRule {
                namespace: flow.namespace.clone(),
                flow_id: flow.id.clone(),
                trigger_id: t.id.clone(),
                expressions: s.eventbridge_expressions(now),
                enabled: !flow.disabled && !t.disabled && !state_disabled(&t.id),
            })
        })
        .collect()
}

impl Engine {
    /// The trigger index, built on first use after a flow write (or once its TTL ran out).
    pub(crate) async fn trigger_index(&self) -> Result<Arc<TriggerIndex>, EngineError> {
        use std::sync::atomic::Ordering;
        if let Some(index) = self.inner.trigger_index.read().ok().and_then(|i| i.clone()) {
            let fresh = self
                .inner
                .config
                .cache_ttl
                .is_none_or(|ttl| index.built.elapsed() < ttl);
            if fresh {
                return Ok(index);
            }
        }
        loop {
            let generation = self.inner.trigger_generation.load(Ordering::Acquire);
            let index = Arc::new(self.build_trigger_index().await?);
            if let Ok(mut slot) = self.inner.trigger_index.write() {
                // A flow written while this index was built may be missing from it: build again.
                if self.inner.trigger_generation.load(Ordering::Acquire) != generation {
                    continue;
                }
                *slot = Some(index.clone());
            }
            return Ok(index);
        }
    }

    async fn build_trigger_index(&self) -> Result<TriggerIndex, EngineError> {
        let mut index = TriggerIndex {
            built: std::time::Instant::now(),
            schedules: Vec::new(),
            listeners: Vec::new(),
        };
        for flow in self.live_flows().await? {
            for t in &flow.flow.triggers {
                match t.trigger_type {
                    TriggerType::Schedule => match Schedule::from_trigger(t) {
                        Ok(s) => index.schedules.push((flow.clone(), s)),
                        Err(e) => {
                            warn!(flow = %flow.flow.id, trigger = %t.id, error = %e, "schedule ignored")
                        }
                    },
                    TriggerType::Flow => {
                        if let Some(f) = FlowTrigger::from_trigger(t) {
                            index.listeners.push((flow.clone(), f));
                        }
                    }
                    TriggerType::Webhook => {}
                }
            }
        }
        Ok(index)
    }

    /// The latest revision of every live flow (unparsable ones are skipped).
    async fn live_flows(&self) -> Result<Vec<Arc<FlowWithSource>>, EngineError> {
        let mut flows = Vec::new();
        let mut page = 1;
        loop {
            let found = self
                .inner
                .ports
                .flows
                .search(&FlowQuery {
                    pagination: Pagination { page, size: PAGE },
                    ..Default::default()
                })
                .await?;
            let count = found.results.len();
            flows.extend(
                found
                    .results
                    .into_iter()
                    .filter_map(|stored| self.parse(stored).ok()),
            );
            if count < PAGE as usize {
                return Ok(flows);
            }
            page += 1;
        }
    }

    pub(crate) fn forget_triggers(&self) {
        self.inner
            .trigger_generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        if let Ok(mut slot) = self.inner.trigger_index.write() {
            *slot = None;
        }
        self.inner.schedules_changed.notify_one();
    }

    /// Woken when Schedule triggers change (a flow was saved or deleted, a trigger enabled).
    pub fn schedules_changed(&self) -> Arc<tokio::sync::Notify> {
        self.inner.schedules_changed.clone()
    }

    // -------------------------------------------------------- flow writes

    /// Brings trigger state and the schedule registry in line with a saved flow:
    /// new Schedule triggers start at their next date, removed triggers lose their state.
    pub(crate) async fn sync_triggers(&self, flow: &Flow) -> Result<(), EngineError> {
        let ports = &self.inner.ports;
        let now = self.now();
        let stored = ports.triggers.list_for_flow(&flow.namespace, &flow.id).await?;
        for old in &stored {
            if !flow.triggers.iter().any(|t| t.id == old.state.trigger_id) {
                ports
                    .triggers
                    .delete(&flow.namespace, &flow.id, &old.state.trigger_id)
                    .await?;
            }
        }
        for t in &flow.triggers {
            let Ok(s) = Schedule::from_trigger(t) else {
                continue;
            };
            if !stored.iter().any(|v| v.state.trigger_id == t.id) {
                let state = schedule::initial_state(&flow.namespace, &flow.id, &s, now);
                match ports.triggers.put(&state, None).await {
                    Ok(_) | Err(StoreError::AlreadyExists(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        let state_disabled = |id: &str| {
            stored
                .iter()
                .any(|v| v.state.trigger_id == id && v.state.disabled)
        };
        let rules = schedule_rules(flow, state_disabled, now);
        ports
            .schedules
            .sync_flow(&flow.namespace, &flow.id, &rules)
            .await?;
        self.forget_triggers();
        Ok(())
    }

    /// [`Engine::sync_triggers`] after a flow write: the flow is stored whatever happens
    /// here, so a failure says so (the next [`Engine::reconcile_schedules`] registers the
    /// schedules).
    pub(crate) async fn sync_saved_triggers(&self, flow: &Flow) -> Result<(), EngineError> {
        self.sync_triggers(flow).await.map_err(|e| {
            // The cached trigger index may predate the save.
            self.forget_triggers();
            EngineError::SchedulesPending {
                namespace: flow.namespace.clone(),
                flow_id: flow.id.clone(),
                error: Box::new(e),
            }
        })
    }

    /// Makes the schedule registry match the Schedule triggers of every live flow, in one
    /// pass over the flows, the trigger states and the registry: registers what a failed
    /// save left unregistered or stale, and removes the schedules of deleted flows. The
    /// scheduler function runs it periodically. Schedules written in the minute before
    /// the read are left as they are (a save newer than the read wrote them).
    pub async fn reconcile_schedules(&self) -> Result<SyncReport, EngineError> {
        let ports = &self.inner.ports;
        let now = self.now();
        let flows = self.live_flows().await?;
        let mut disabled = HashSet::new();
        let mut page = 1;
        loop {
            let found = ports
                .triggers
                .search(&TriggerQuery {
                    pagination: Pagination { page, size: PAGE },
                    ..Default::default()
                })
                .await?;
            let count = found.results.len();
            disabled.extend(
                found
                    .results
                    .into_iter()
                    .filter(|t| t.disabled)
                    .map(|t| (t.namespace, t.flow_id, t.trigger_id)),
            );
            if count < PAGE as usize {
                break;
            }
            page += 1;
        }
        let rules: Vec<ScheduleRule> = flows
            .iter()
            .flat_map(|f| {
                let flow = &f.flow;
                let state_disabled =
                    |id: &str| disabled.contains(&(flow.namespace.clone(), flow.id.clone(), id.to_string()));
                schedule_rules(flow, state_disabled, now)
            })
            .collect();
        let settled_before = now - Duration::seconds(RECONCILE_MARGIN_SECONDS);
        let report = ports.schedules.sync_all(&rules, settled_before).await?;
        if report.changed() {
            warn!(
                ?report,
                "schedules reconciled: the registry had drifted from the flows"
            );
        } else {
            info!(?report, "schedules reconciled");
        }
        Ok(report)
    }

    /// Removes the trigger state and schedule rules of a deleted flow.
    pub(crate) async fn drop_triggers(&self, namespace: &str, flow_id: &str) -> Result<(), EngineError> {
        let ports = &self.inner.ports;
        for t in ports.triggers.list_for_flow(namespace, flow_id).await? {
            ports
                .triggers
                .delete(namespace, flow_id, &t.state.trigger_id)
                .await?;
        }
        ports.schedules.sync_flow(namespace, flow_id, &[]).await?;
        self.forget_triggers();
        Ok(())
    }

    // -------------------------------------------------------- schedules

    /// Fires every Schedule trigger that is due (the local scheduler's tick) and returns
    /// when the next one is due.
    pub async fn fire_due_schedules(&self) -> Result<Option<DateTime<Utc>>, EngineError> {
        let index = self.trigger_index().await?;
        let mut next: Option<DateTime<Utc>> = None;
        for (flow, s) in &index.schedules {
            if flow.flow.disabled || flow.flow.triggers.iter().any(|t| t.id == s.id && t.disabled) {
                continue;
            }
            let now = self.now();
            let state = match self.evaluate_schedule(&flow.flow, s, now, now).await {
                Ok((state, _)) => state,
                Err(e) => {
                    warn!(flow = %flow.flow.id, trigger = %s.id, error = %e, "schedule evaluation failed");
                    continue;
                }
            };
            let backfill = state
                .backfill
                .as_ref()
                .filter(|b| !b.paused)
                .map(|b| b.current_date.unwrap_or(b.start));
            let due = if state.disabled {
                None
            } else {
                backfill.into_iter().chain(state.next_execution_date).min()
            };
            if let Some(d) = due {
                next = Some(next.map_or(d, |n| n.min(d)));
            }
        }
        Ok(next)
    }

    /// An EventBridge rule fired for a Schedule trigger at `fired_at`: creates the
    /// executions of the dates due in that minute (dates later in the minute start at
    /// their date), idempotently. A firing that matches no date creates nothing.
    pub async fn fire_schedule(
        &self,
        namespace: &str,
        flow_id: &str,
        trigger_id: &str,
        fired_at: DateTime<Utc>,
    ) -> Result<Vec<Execution>, EngineError> {
        let flow = self.flow_arc(namespace, flow_id, None, false).await?;
        let trigger = flow
            .flow
            .triggers
            .iter()
            .find(|t| t.id == trigger_id)
            .ok_or_else(|| EngineError::NotFound(format!("Trigger {trigger_id} not found")))?;
        let s = Schedule::from_trigger(trigger).map_err(|e| EngineError::IllegalArgument(e.to_string()))?;
        if flow.flow.disabled || trigger.disabled {
            return Ok(Vec::new());
        }
        let now = self.now().max(fired_at);
        let minute = fired_at.duration_trunc(Duration::minutes(1)).unwrap_or(fired_at);
        let horizon = (minute + Duration::seconds(59)).max(now);
        let (_, ids) = self.evaluate_schedule(&flow.flow, &s, now, horizon).await?;
        let mut created = Vec::new();
        for id in ids {
            if let Some(e) = self.inner.ports.executions.get(&id).await? {
                created.push(e.execution);
            }
        }
        Ok(created)
    }

    /// One evaluation of a Schedule trigger with its stored state, repeated while more
    /// dates are due; returns the stored state and the ids of the executions fired.
    async fn evaluate_schedule(
        &self,
        flow: &Flow,
        s: &Schedule,
        now: DateTime<Utc>,
        horizon: DateTime<Utc>,
    ) -> Result<(TriggerState, Vec<String>), EngineError> {
        let ports = &self.inner.ports;
        let mut conflicts = 0;
        let mut fired = Vec::new();
        loop {
            let stored = ports.triggers.get(&flow.namespace, &flow.id, &s.id).await?;
            let (state, version) = match &stored {
                Some(v) => (v.state.clone(), Some(v.version)),
                None => (
                    schedule::initial_state(&flow.namespace, &flow.id, s, now - Duration::seconds(1)),
                    None,
                ),
            };
            let evaluation = schedule::evaluate(
                s,
                &state,
                now,
                horizon,
                self.inner.config.recover_missed_schedules,
            );
            for (date, reason) in &evaluation.skipped {
                info!(flow = %flow.id, trigger = %s.id, %date, ?reason, "scheduled date skipped");
            }
            for date in &evaluation.fire {
                fired.extend(self.create_scheduled(flow, s, &state, date, now).await?);
            }
            if evaluation.state == state && version.is_some() {
                return Ok((state, fired));
            }
            match ports.triggers.put(&evaluation.state, version).await {
                Ok(_) if evaluation.more => continue,
                Ok(_) => return Ok((evaluation.state, fired)),
                Err(StoreError::Conflict(_) | StoreError::AlreadyExists(_)) if conflicts < STATE_RETRIES => {
                    // Another evaluation moved the state: what it fired exists (same ids).
                    conflicts += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn create_scheduled(
        &self,
        flow: &Flow,
        s: &Schedule,
        state: &TriggerState,
        date: &schedule::ScheduledDate,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, EngineError> {
        let vars = s.variables(date.date);
        let variables = json!({
            "flow": {"id": flow.id, "namespace": flow.namespace, "revision": flow.revision},
            "trigger": vars,
            "schedule": vars,
        });
        let ctx = ConditionContext {
            expressions: &self.inner.expressions,
            variables: &variables,
            now,
            execution: None,
        };
        match condition::all_hold(&s.conditions, &ctx) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(e) => {
                warn!(flow = %flow.id, trigger = %s.id, error = %e, "schedule condition failed; date skipped");
                return Ok(None);
            }
        }
        let mut raw = s.inputs.clone();
        let mut labels = s.labels.clone();
        if date.backfill {
            if let Some(b) = &state.backfill {
                raw.extend(b.inputs.clone());
                labels.extend(b.labels.clone());
            }
            labels.push(Label {
                key: "system.backfill".into(),
                value: "true".into(),
            });
        }
        let render = RenderContext::new(&variables, now);
        let mut inputs = IndexMap::new();
        for (k, v) in raw {
            let value = self
                .inner
                .expressions
                .render_value(&v, &render)
                .map_err(|e| EngineError::IllegalArgument(e.message))?;
            inputs.insert(k, InputValue::Json(value));
        }
        let id = schedule::execution_id(&flow.namespace, &flow.id, &s.id, date.date);
        let trigger = ExecutionTrigger {
            id: s.id.clone(),
            type_name: SCHEDULE_TYPE.into(),
            variables: Some(vars.clone()),
            log_file: None,
        };
        let mut variables = IndexMap::new();
        variables.insert("schedule".to_string(), Value::Object(vars.into_iter().collect()));
        let schedule_date = (date.date > now).then_some(date.date);
        self.create_triggered(
            flow,
            id.clone(),
            inputs,
            labels,
            trigger,
            Some(variables),
            schedule_date,
            true,
        )
        .await?;
        Ok(Some(id))
    }

    /// Creates an execution for a trigger under a derived id; an execution that already
    /// exists (a duplicate firing) is left as it is. `validate`: type the inputs (a
    /// failure creates nothing and is logged), else keep them as given (Flow triggers).
    #[allow(clippy::too_many_arguments)]
    async fn create_triggered(
        &self,
        flow: &Flow,
        id: String,
        provided: IndexMap<String, InputValue>,
        labels: Vec<Label>,
        trigger: ExecutionTrigger,
        variables: Option<IndexMap<String, Value>>,
        schedule_date: Option<DateTime<Utc>>,
        validate: bool,
    ) -> Result<(), EngineError> {
        if self.inner.ports.executions.get(&id).await?.is_some() {
            return Ok(());
        }
        let raw = |provided: IndexMap<String, InputValue>| -> IndexMap<String, Value> {
            provided
                .into_iter()
                .map(|(k, v)| match v {
                    InputValue::Json(v) => (k, v),
                    InputValue::Text(t) => (k, Value::String(t)),
                })
                .collect()
        };
        let (inputs, invalid) = match self.type_inputs(flow, &id, &provided) {
            Ok(inputs) => (inputs, None),
            // Schedule inputs that don't validate give a FAILED execution that says why
            // (never a silently skipped date); Flow triggers pass them on as Kestra does.
            Err(e) if validate => (raw(provided), Some(e)),
            Err(_) => (raw(provided), None),
        };
        let mut execution = executor::new_execution(
            flow,
            NewExecution {
                id,
                inputs,
                labels,
                trigger: Some(trigger),
                schedule_date,
                parent: None,
            },
            self.now(),
        );
        execution.variables = variables;
        if let Some(error) = invalid {
            return self
                .insert_failed(flow, execution, &trigger_input_error(&error))
                .await;
        }
        match self.insert_and_start(execution).await {
            Ok(e) => {
                info!(execution = %e.id, flow = %flow.id, "execution created by trigger");
                Ok(())
            }
            // A concurrent firing created it first.
            Err(EngineError::IllegalState(m)) if m.ends_with("already exists") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Stores a trigger's execution that cannot run, FAILED with the reason in its logs.
    async fn insert_failed(
        &self,
        flow: &Flow,
        mut execution: Execution,
        reason: &str,
    ) -> Result<(), EngineError> {
        let now = self.now();
        execution.state.set(StateType::Failed, now);
        warn!(execution = %execution.id, flow = %flow.id, reason, "triggered execution failed");
        let transition = Transition {
            execution: execution.clone(),
            expected_version: None,
            logs: vec![LogEntry::for_execution(&execution, LogLevel::Error, reason, now)],
            push: self.trigger_work(flow, &execution, 0).await?,
            claimed: Vec::new(),
            claim_until: None,
            ack: Vec::new(),
            wake: Vec::new(),
            children: Vec::new(),
        };
        match self.inner.ports.executions.commit(transition).await {
            Ok(_) | Err(StoreError::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    // -------------------------------------------------------- flow triggers

    /// Whether a change of `execution` into `state` concerns any trigger (a Flow trigger
    /// listening to it, or the `stopAfter` of the trigger that created the execution).
    pub(crate) async fn trigger_interest(
        &self,
        execution: &Execution,
        flow: &Flow,
        state: StateType,
    ) -> Result<bool, EngineError> {
        let index = self.trigger_index().await?;
        let listened = index.listeners.iter().any(|(listener, t)| {
            t.listens_to(state)
                && (listener.flow.namespace != execution.namespace || listener.flow.id != execution.flow_id)
        });
        Ok(listened || stops_after(flow, execution, state))
    }

    /// The queue items that evaluate triggers for the states `execution` entered since it
    /// had `known_history` history entries (locally, in the same commit as the change).
    pub(crate) async fn trigger_work(
        &self,
        flow: &Flow,
        execution: &Execution,
        known_history: usize,
    ) -> Result<Vec<WorkItem>, EngineError> {
        let mut items = Vec::new();
        if !self.inner.config.flow_triggers_in_queue {
            return Ok(items);
        }
        for (i, h) in execution.state.histories.iter().enumerate().skip(known_history) {
            if !self.trigger_interest(execution, flow, h.state).await? {
                continue;
            }
            let occurrence = execution.state.histories[..=i]
                .iter()
                .filter(|x| x.state == h.state)
                .count();
            items.push(WorkItem::triggers(&execution.id, h.state, occurrence, self.now()));
        }
        Ok(items)
    }

    /// An execution changed (the stream function on AWS): evaluates the triggers of
    /// every state it entered after `previous` (all of its states without one).
    /// Idempotent: executions it creates have derived ids.
    pub async fn execution_changed(
        &self,
        previous: Option<&Execution>,
        execution: &Execution,
    ) -> Result<(), EngineError> {
        let known = previous.map_or(0, |p| p.state.histories.len());
        let histories = &execution.state.histories;
        for i in known.min(histories.len())..histories.len() {
            let state = histories[i].state;
            let occurrence = histories[..=i].iter().filter(|h| h.state == state).count();
            self.evaluate_triggers(execution, state, occurrence).await?;
        }
        Ok(())
    }

    /// Fires the Flow triggers listening to `execution` entering `state` (its
    /// `occurrence`-th time), and applies `stopAfter`.
    pub(crate) async fn evaluate_triggers(
        &self,
        execution: &Execution,
        state: StateType,
        occurrence: usize,
    ) -> Result<(), EngineError> {
        let upstream_flow = self.flow_of(execution).await?;
        if stops_after(&upstream_flow.flow, execution, state) {
            match self.stop_trigger(&upstream_flow.flow, execution).await {
                // The flow or its trigger is gone: nothing left to stop.
                Ok(()) | Err(EngineError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let index = self.trigger_index().await?;
        let mut variables = run_variables::for_execution(
            &upstream_flow.flow,
            execution,
            Extras {
                secret_key: self.inner.config.secret_key.as_deref(),
                globals: self.inner.config.globals.as_ref(),
            },
        );
        let trigger_vars = flow_trigger::trigger_variables(execution, state);
        variables["trigger"] = Value::Object(trigger_vars.clone().into_iter().collect());
        let mut transient = None;
        for (listener, t) in &index.listeners {
            let flow = &listener.flow;
            if flow.disabled
                || !t.listens_to(state)
                || flow.triggers.iter().any(|x| x.id == t.id && x.disabled)
            {
                continue;
            }
            match self
                .evaluate_listener(flow, t, execution, state, occurrence, &variables, &trigger_vars)
                .await
            {
                Ok(()) => {}
                // Storage may recover: fail the item so that it is delivered again (the
                // listeners that already fired are not fired twice: their ids exist).
                Err(e @ (EngineError::Store(_) | EngineError::Storage(_))) => transient = Some(e),
                Err(e) => warn!(listener = %flow.id, trigger = %t.id, error = %e, "flow trigger not fired"),
            }
        }
        transient.map_or(Ok(()), Err)
    }

    #[allow(clippy::too_many_arguments)]
    async fn evaluate_listener(
        &self,
        flow: &Flow,
        t: &FlowTrigger,
        upstream: &Execution,
        state: StateType,
        occurrence: usize,
        variables: &Value,
        trigger_vars: &IndexMap<String, Value>,
    ) -> Result<(), EngineError> {
        let ports = &self.inner.ports;
        let now = self.now();
        let ctx = ConditionContext {
            expressions: &self.inner.expressions,
            variables,
            now,
            execution: Some(upstream),
        };
        // Without preconditions the outcome needs no stored window: a listener whose
        // conditions do not hold costs no read (one per execution on AWS otherwise).
        if t.preconditions.is_none()
            && !t
                .evaluate((&flow.namespace, &flow.id), upstream, state, &ctx, None)
                .map_err(|e| EngineError::IllegalArgument(e.to_string()))?
                .fire
        {
            return Ok(());
        }
        let mut conflicts = 0;
        let fire = loop {
            let stored = ports.triggers.get(&flow.namespace, &flow.id, &t.id).await?;
            if stored.as_ref().is_some_and(|s| s.state.disabled) {
                return Ok(());
            }
            let window = stored.as_ref().and_then(|s| s.state.preconditions.as_ref());
            let outcome = t
                .evaluate((&flow.namespace, &flow.id), upstream, state, &ctx, window)
                .map_err(|e| EngineError::IllegalArgument(e.to_string()))?;
            let Some(new_window) = outcome.window else {
                break outcome.fire;
            };
            let mut next = stored
                .as_ref()
                .map(|s| s.state.clone())
                .unwrap_or_else(|| TriggerState::new(&flow.namespace, &flow.id, &t.id));
            next.preconditions = Some(new_window);
            next.updated_date = Some(now);
            match ports
                .triggers
                .put(&next, stored.as_ref().map(|s| s.version))
                .await
            {
                Ok(_) => break outcome.fire,
                Err(StoreError::Conflict(_) | StoreError::AlreadyExists(_)) if conflicts < STATE_RETRIES => {
                    conflicts += 1;
                }
                Err(e) => return Err(e.into()),
            }
        };
        if !fire {
            return Ok(());
        }
        let render = RenderContext::new(variables, now);
        let mut inputs = IndexMap::new();
        for (k, v) in &t.inputs {
            match self.inner.expressions.render_value(v, &render) {
                Ok(value) => {
                    inputs.insert(k.clone(), InputValue::Json(value));
                }
                Err(e) => {
                    warn!(listener = %flow.id, trigger = %t.id, error = %e.message, "flow trigger inputs failed to render; no execution");
                    return Ok(());
                }
            }
        }
        let declared = flow.triggers.iter().find(|x| x.id == t.id);
        let mut labels = kite_core::trigger::labels_of(declared.and_then(|d| d.properties.get("labels")));
        if let Some(c) = upstream.labels.iter().find(|l| l.key == "system.correlationId") {
            labels.push(c.clone());
        }
        let id = flow_trigger::execution_id(upstream, state, occurrence, &flow.namespace, &flow.id, &t.id);
        let trigger = ExecutionTrigger {
            id: t.id.clone(),
            type_name: FLOW_TYPE.into(),
            variables: Some(trigger_vars.clone()),
            log_file: None,
        };
        self.create_triggered(flow, id, inputs, labels, trigger, None, None, false)
            .await
    }

    /// `stopAfter`: disables the trigger that created `execution`.
    async fn stop_trigger(&self, flow: &Flow, execution: &Execution) -> Result<(), EngineError> {
        let Some(trigger) = &execution.trigger else {
            return Ok(());
        };
        self.set_trigger_disabled(&flow.namespace, &flow.id, &trigger.id, true)
            .await
            .map(|_| ())
    }

    // -------------------------------------------------------- API

    /// Enables or disables a trigger (Kestra's trigger API). Re-enabled schedules recover
    /// the dates they missed per `recoverMissedSchedules`.
    pub async fn set_trigger_disabled(
        &self,
        namespace: &str,
        flow_id: &str,
        trigger_id: &str,
        disabled: bool,
    ) -> Result<TriggerState, EngineError> {
        self.update_trigger(namespace, flow_id, trigger_id, |state| state.disabled = disabled)
            .await
    }

    /// Applies `change` to a trigger's stored state (created if absent) with compare-and-set.
    pub async fn update_trigger(
        &self,
        namespace: &str,
        flow_id: &str,
        trigger_id: &str,
        change: impl Fn(&mut TriggerState),
    ) -> Result<TriggerState, EngineError> {
        let flow = self.flow_arc(namespace, flow_id, None, false).await?;
        if !flow.flow.triggers.iter().any(|t| t.id == trigger_id) {
            return Err(EngineError::NotFound(format!("Trigger {trigger_id} not found")));
        }
        let ports = &self.inner.ports;
        for _ in 0..=STATE_RETRIES {
            let stored = ports.triggers.get(namespace, flow_id, trigger_id).await?;
            let mut state = stored
                .as_ref()
                .map(|s| s.state.clone())
                .unwrap_or_else(|| TriggerState::new(namespace, flow_id, trigger_id));
            change(&mut state);
            state.updated_date = Some(self.now());
            match ports.triggers.put(&state, stored.map(|s| s.version)).await {
                Ok(_) => {
                    self.sync_triggers(&flow.flow).await?;
                    return Ok(state);
                }
                Err(StoreError::Conflict(_) | StoreError::AlreadyExists(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(EngineError::Store(StoreError::Conflict(format!(
            "trigger {trigger_id}"
        ))))
    }

    /// The stored state of a trigger (a default one if it has none yet).
    pub async fn trigger_state(
        &self,
        namespace: &str,
        flow_id: &str,
        trigger_id: &str,
    ) -> Result<TriggerState, EngineError> {
        Ok(self
            .inner
            .ports
            .triggers
            .get(namespace, flow_id, trigger_id)
            .await?
            .map(|v| v.state)
            .unwrap_or_else(|| TriggerState::new(namespace, flow_id, trigger_id)))
    }
}

fn trigger_input_error(error: &EngineError) -> String {
    format!("Invalid inputs given by the trigger: {error}")
}

/// Whether the trigger that created `execution` stops after `state`.
fn stops_after(flow: &Flow, execution: &Execution, state: StateType) -> bool {
    let Some(created_by) = &execution.trigger else {
        return false;
    };
    flow.triggers
        .iter()
        .find(|t| t.id == created_by.id && t.trigger_type != TriggerType::Webhook)
        .is_some_and(|t| {
            matches!(t.properties.get("stopAfter"), Some(Value::Array(states))
                if states.iter().any(|s| s.as_str() == Some(state.as_str())))
        })
}
