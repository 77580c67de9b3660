//! Flow triggers: which state changes interest a listener, the queue items that
//! evaluate them, and firing the listening flows (and `stopAfter`).

use super::*;

impl Engine {
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
    pub(super) async fn evaluate_listener(
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
    pub(super) async fn stop_trigger(&self, flow: &Flow, execution: &Execution) -> Result<(), EngineError> {
        let Some(trigger) = &execution.trigger else {
            return Ok(());
        };
        self.set_trigger_disabled(&flow.namespace, &flow.id, &trigger.id, true)
            .await
            .map(|_| ())
    }

    /// Creates an execution for a trigger under a derived id; an execution that already
    /// exists (a duplicate firing) is left as it is. `validate`: type the inputs (a
    /// failure creates nothing and is logged), else keep them as given (Flow triggers).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn create_triggered(
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
        if let Some(variables) = variables {
            execution
                .variables
                .get_or_insert_with(Default::default)
                .extend(variables);
        }
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
}
