//! Schedule triggers: reconciling the schedule registry, and firing due dates (the
//! local timer, the scheduler Lambda) with derived execution ids.

use super::*;

impl Engine {
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
    pub(super) async fn evaluate_schedule(
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

    pub(super) async fn create_scheduled(
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
}
