//! Executions as the API sees them: create (inputs typed, started inline or queued),
//! get, search, kill, resume, restart, replay, delete, labels, logs.

use super::*;

/// The most flows one `latest_executions` call reads (a page of the flows list is 100).
const MAX_LATEST_FLOWS: usize = 1000;

impl Engine {
    /// Types the inputs, stores the execution (CREATED) and queues its start.
    /// 404 unknown flow, 409 disabled flow, 422 invalid inputs.
    pub async fn create_execution(&self, request: CreateExecution) -> Result<Execution, EngineError> {
        let flow = match self
            .flow_arc(&request.namespace, &request.flow_id, request.revision, false)
            .await
        {
            Err(EngineError::NotFound(_)) => {
                return Err(EngineError::NotFound("Requested Flow is not found.".into()))
            }
            Err(EngineError::InvalidFlow(e)) => {
                return Err(EngineError::IllegalState(format!(
                    "Requested Flow is not valid. Error: {}",
                    crate::error::format_flow_errors(&e)
                )))
            }
            other => other?,
        };
        if flow.flow.disabled {
            return Err(EngineError::IllegalState("Requested Flow is disabled.".into()));
        }
        let id = request.id.clone().unwrap_or_else(|| self.new_id());
        let mut provided = request.inputs;
        for (k, uri) in request.files {
            provided.insert(k, InputValue::Text(uri));
        }
        let inputs = self.type_inputs(&flow.flow, &id, &provided)?;
        let now = self.now();
        let execution = executor::new_execution(
            &flow.flow,
            NewExecution {
                id: id.clone(),
                inputs,
                labels: request.labels,
                trigger: request.trigger,
                schedule_date: request.schedule_date,
                parent: None,
            },
            now,
        );
        self.insert_and_start(execution).await
    }

    pub(super) fn type_inputs(
        &self,
        flow: &Flow,
        execution_id: &str,
        provided: &IndexMap<String, InputValue>,
    ) -> Result<IndexMap<String, Value>, EngineError> {
        Ok(resolve_inputs(
            &flow.inputs,
            provided,
            &self.input_context(flow, execution_id),
        )?)
    }

    /// Types the inputs an execution of `flow` would get from `provided`, reporting every
    /// input that fails (Kestra's validate-inputs, the Execute form); nothing is stored.
    pub fn check_inputs(&self, flow: &Flow, provided: &IndexMap<String, InputValue>) -> Vec<InputCheck> {
        let execution_id = self.new_id();
        check_inputs(&flow.inputs, provided, &self.input_context(flow, &execution_id))
    }

    fn input_context<'a>(&'a self, flow: &'a Flow, execution_id: &'a str) -> InputContext<'a> {
        InputContext {
            namespace: &flow.namespace,
            flow_id: &flow.id,
            execution_id,
            secret_key: self.inner.config.secret_key.as_deref(),
            ids: Some(self.inner.ports.ids.as_ref()),
            condition: None,
        }
    }

    /// Inserts a CREATED execution with its Start item and runs it through the fast path.
    pub(super) async fn insert_and_start(&self, execution: Execution) -> Result<Execution, EngineError> {
        let now = self.now();
        let due = execution.schedule_date.filter(|d| *d > now).unwrap_or(now);
        if due <= now && self.has_dispatcher() {
            if let Some(created) = self.start_inline(&execution).await? {
                return Ok(created);
            }
        }
        let start = WorkItem::start(&execution.id, due);
        let transition = Transition {
            execution: execution.clone(),
            expected_version: None,
            logs: Vec::new(),
            push: vec![start.clone()],
            claimed: if due <= now && self.has_dispatcher() {
                vec![start.id.clone()]
            } else {
                Vec::new()
            },
            claim_until: Some(self.claim_deadline(now)),
            ack: Vec::new(),
            wake: Vec::new(),
            children: Vec::new(),
            slot: None,
        };
        let version = match self.inner.ports.executions.commit(transition).await {
            Err(StoreError::AlreadyExists(id)) => {
                return Err(EngineError::IllegalState(format!(
                    "Execution {id} already exists"
                )))
            }
            other => other?,
        };
        self.after_commit(execution.clone(), version, vec![start], now);
        Ok(execution)
    }

    /// Starts a new execution in this process and writes it once, after its light tasks ran:
    /// an execution like benchmark01 costs one write instead of two (one transaction, not
    /// two, on DynamoDB). Returns the execution as created, or `None` when it must go through
    /// the queue first (a concurrency limit to check, or a start the state machine refused).
    pub(super) async fn start_inline(&self, created: &Execution) -> Result<Option<Execution>, EngineError> {
        let flow = self.flow_of(created).await?;
        if flow.flow.concurrency.is_some() {
            return Ok(None);
        }
        let mut execution = created.clone();
        let mut pass = Step::default();
        if let Err(e) = self.drive(&flow, &mut execution, Event::Start, &mut pass).await {
            debug!(error = %e, "inline start refused; queued instead");
            return Ok(None);
        }
        pass.push
            .extend(self.trigger_work(&flow.flow, &execution, 0).await?);
        match self.commit_pass(execution, None, pass, Vec::new()).await {
            Ok(()) => Ok(Some(created.clone())),
            Err(EngineError::Store(StoreError::AlreadyExists(id))) => Err(EngineError::IllegalState(
                format!("Execution {id} already exists"),
            )),
            Err(e) => Err(e),
        }
    }

    /// The execution; 404 if unknown or deleted.
    pub async fn get_execution(&self, id: &str) -> Result<Execution, EngineError> {
        Ok(self.versioned_execution(id).await?.execution)
    }

    /// The stored execution with its version (for compare-and-set), or 404.
    pub(super) async fn versioned_execution(&self, id: &str) -> Result<VersionedExecution, EngineError> {
        self.inner
            .ports
            .executions
            .get(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("Execution '{id}' not found")))
    }

    pub async fn search_executions(&self, query: &ExecutionQuery) -> Result<Page<Execution>, EngineError> {
        Ok(self.inner.ports.executions.search(query).await?)
    }

    /// The newest execution of each of these flows (namespace, flow id) that has one, in
    /// their order (Kestra's `executions/latest`: the flows page's last states at once).
    pub async fn latest_executions(&self, flows: &[(String, String)]) -> Result<Vec<Execution>, EngineError> {
        if flows.len() > MAX_LATEST_FLOWS {
            return Err(EngineError::IllegalArgument(format!(
                "at most {MAX_LATEST_FLOWS} flows per request, {} were asked",
                flows.len()
            )));
        }
        let mut latest = Vec::new();
        for (namespace, flow_id) in flows {
            if let Some(e) = self
                .inner
                .ports
                .executions
                .latest_of_flow(namespace, flow_id)
                .await?
            {
                latest.push(e);
            }
        }
        Ok(latest)
    }

    /// Kills an execution (KILLING then KILLED). 409 if already terminated.
    pub async fn kill(&self, id: &str) -> Result<(), EngineError> {
        let execution = self.get_execution(id).await?;
        if execution.state.current.is_terminated() {
            return Err(EngineError::IllegalState(
                "Execution is already finished, can't kill it".into(),
            ));
        }
        self.enqueue(id, Work::Kill).await
    }

    /// Resumes a paused execution; `inputs` answer the Pause task's `onResume` inputs.
    /// 409 if the execution is not paused, 422 if an input is invalid.
    pub async fn resume(&self, id: &str, inputs: IndexMap<String, InputValue>) -> Result<(), EngineError> {
        let execution = self.get_execution(id).await?;
        if execution.state.current != StateType::Paused {
            return Err(EngineError::IllegalState(format!(
                "Execution '{id}' is not paused, can't resume it"
            )));
        }
        let flow = self.flow_of(&execution).await?;
        let paused = execution.task_runs().iter().rev().find(|t| {
            t.state.current == StateType::Paused
                && matches!(
                    flow.flow.find_task(&t.task_id).map(|t| &t.kind),
                    Some(TaskKind::Pause(_))
                )
        });
        let mut typed = IndexMap::new();
        if let Some(tr) = paused {
            if let Some(TaskKind::Pause(p)) = flow.flow.find_task(&tr.task_id).map(|t| &t.kind) {
                if !p.on_resume.is_empty() {
                    let ctx = InputContext {
                        namespace: &execution.namespace,
                        flow_id: &execution.flow_id,
                        execution_id: id,
                        secret_key: self.inner.config.secret_key.as_deref(),
                        ids: Some(self.inner.ports.ids.as_ref()),
                        condition: None,
                    };
                    typed = resolve_inputs(&p.on_resume, &inputs, &ctx)?;
                }
            }
        }
        self.enqueue(
            id,
            Work::Resume {
                task_run_id: paused.map(|t| t.id.clone()),
                inputs: typed,
            },
        )
        .await
    }

    /// Restarts a failed execution in place (same id, RESTARTED, failed task runs again).
    pub async fn restart(&self, id: &str) -> Result<Execution, EngineError> {
        for _ in 0..=self.inner.config.max_conflict_retries {
            let current = self.versioned_execution(id).await?;
            let mut execution = current.execution;
            if !execution.state.current.is_terminated() {
                return Err(EngineError::IllegalState(format!(
                    "Execution '{id}' must be terminated to be restarted"
                )));
            }
            // Only failed or killed task runs are restarted (Kestra: 422 otherwise).
            if !matches!(execution.state.current, StateType::Failed | StateType::Killed) {
                return Err(EngineError::IllegalArgument(
                    "No task found to restart".to_string(),
                ));
            }
            let flow = self.flow_of(&execution).await?;
            self.forget_kill(id);
            let mut pass = Step::default();
            self.drive(&flow, &mut execution, Event::Restart, &mut pass)
                .await?;
            // Kestra checks the limit on new executions only: a restart runs whatever it
            // is, but holds a slot like any running execution.
            if flow.flow.concurrency.is_some() && pass.terminated.is_none() {
                pass.slot = Some(Slot::Take { limit: u32::MAX });
            }
            match self
                .commit_pass(execution.clone(), Some(current.version), pass, Vec::new())
                .await
            {
                Ok(()) => return Ok(execution),
                Err(EngineError::Store(StoreError::Conflict(_))) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(EngineError::Store(StoreError::Conflict(id.to_string())))
    }

    /// Runs the execution again as a new execution (`parentId` = the original) with the same
    /// inputs, labels and trigger, on the given or the same flow revision.
    pub async fn replay(&self, id: &str, revision: Option<i64>) -> Result<Execution, EngineError> {
        let original = self.get_execution(id).await?;
        let flow = self
            .flow_arc(
                &original.namespace,
                &original.flow_id,
                Some(revision.unwrap_or(original.flow_revision)),
                true,
            )
            .await?;
        let now = self.now();
        let mut execution = executor::new_execution(
            &flow.flow,
            NewExecution {
                id: self.new_id(),
                inputs: original.inputs.clone(),
                labels: original
                    .labels
                    .iter()
                    .filter(|l| l.key != "system.correlationId")
                    .cloned()
                    .collect(),
                trigger: original.trigger.clone(),
                schedule_date: None,
                parent: Some(original.id.clone()),
            },
            now,
        );
        execution.original_id = original.original_id.clone().or(Some(original.id.clone()));
        execution.metadata.original_created_date = original.metadata.original_created_date;
        execution.metadata.attempt_number = original.metadata.attempt_number + 1;
        self.insert_and_start(execution).await
    }

    /// Deletes an execution, with its logs and files if asked.
    pub async fn delete_execution(
        &self,
        id: &str,
        delete_logs: bool,
        delete_storage: bool,
    ) -> Result<(), EngineError> {
        let execution = self.get_execution(id).await?;
        let ports = &self.inner.ports;
        let running = !execution.state.is_terminated();
        if running {
            // The running slot it may hold goes with it: stores that keep slots apart from
            // the executions (DynamoDB) would otherwise count it as held for ever.
            if let Some(current) = ports.executions.get(id).await? {
                let release = Transition {
                    execution: current.execution,
                    expected_version: Some(current.version),
                    logs: Vec::new(),
                    push: Vec::new(),
                    claimed: Vec::new(),
                    claim_until: None,
                    ack: Vec::new(),
                    wake: Vec::new(),
                    children: Vec::new(),
                    slot: Some(Slot::Release),
                };
                ports.executions.commit(release).await?;
            }
        }
        if !ports.executions.delete(id).await? {
            return Err(EngineError::NotFound(format!("Execution '{id}' not found")));
        }
        if running {
            self.start_next_queued(&execution.namespace, &execution.flow_id)
                .await?;
        }
        if delete_logs {
            self.inner.ports.logs.delete_by_execution(id).await?;
        }
        if delete_storage {
            let prefix =
                kite_core::input::execution_storage_prefix(&execution.namespace, &execution.flow_id, id);
            self.inner.ports.files.delete_prefix(&prefix).await?;
        }
        Ok(())
    }

    /// Replaces the labels of a terminated execution (system labels other than
    /// `system.correlationId` are refused with 422).
    pub async fn set_labels(&self, id: &str, labels: Vec<Label>) -> Result<Execution, EngineError> {
        if let Some(l) = labels
            .iter()
            .find(|l| l.key.starts_with("system.") && l.key != "system.correlationId")
        {
            return Err(EngineError::IllegalArgument(format!(
                "System labels can only be set by Kestra itself, offending label: {}={}",
                l.key, l.value
            )));
        }
        for _ in 0..=self.inner.config.max_conflict_retries {
            let current = self.versioned_execution(id).await?;
            let mut execution = current.execution;
            if !execution.state.current.is_terminated() {
                return Err(EngineError::IllegalState(
                    "Cannot set labels on a running execution".into(),
                ));
            }
            let system: Vec<Label> = execution
                .labels
                .iter()
                .filter(|l| l.key.starts_with("system."))
                .cloned()
                .collect();
            let mut next: Vec<Label> = labels
                .iter()
                .filter(|l| !l.key.starts_with("system."))
                .cloned()
                .collect();
            for s in system {
                if !next.iter().any(|l| l.key == s.key) {
                    next.push(s);
                }
            }
            execution.labels = next;
            match self
                .inner
                .ports
                .executions
                .update(&execution, current.version)
                .await
            {
                Ok(_) => {
                    self.notify(&execution);
                    return Ok(execution);
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(EngineError::Store(StoreError::Conflict(id.to_string())))
    }

    /// Logs of an execution.
    pub async fn logs(&self, query: &LogQuery) -> Result<Vec<LogEntry>, EngineError> {
        Ok(self.inner.ports.logs.list(query).await?)
    }
}
