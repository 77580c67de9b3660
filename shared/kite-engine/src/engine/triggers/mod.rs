//! Schedule and Flow triggers over the ports: the core decides, this module loads
//! state, creates executions with derived ids (so firing twice creates nothing new)
//! and stores the trigger state with compare-and-set.
//!
//! - `schedules`: Schedule triggers (registry reconcile, due dates)
//! - `listeners`: Flow triggers (state changes of other executions)
//! - here: the index of flows with triggers, syncing triggers with saved flows, and
//!   the trigger API (enable, disable, state)

mod listeners;
mod schedules;

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
            slot: None,
        };
        match self.inner.ports.executions.commit(transition).await {
            Ok(_) | Err(StoreError::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
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
