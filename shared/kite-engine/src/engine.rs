//! The engine: flows, executions and the worker step, over the ports.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use kite_core::execution::{Execution, ExecutionTrigger, Label, LogEntry, LogLevel, StateType};
use kite_core::executor::{self, Driver, Env, Event, IdSource, Need, NewExecution};
use kite_core::expression::{ExpressionEngine, FileReader};
use kite_core::flow::{parse_flow, Flow, TaskKind};
use kite_core::input::{resolve_inputs, InputContext, InputValue};
use kite_core::trigger::schedule::RecoverMissedSchedules;
use serde_json::Value;
use tokio::sync::watch;
use tracing::{debug, info_span, warn, Instrument};

use crate::error::EngineError;

mod followers;
mod triggers;
mod webhook;

use crate::ports::{
    never, subflow_wait_id, Clock, Dispatcher, ExecutionQuery, ExecutionRepository, FileStorage, FlowQuery,
    FlowRepository, IdGenerator, LogQuery, LogRepository, Page, ScheduleRegistry, StoreError, StoredFlow,
    TaskQueue, Transition, TriggerRepository, VersionedExecution, Work, WorkItem,
};
pub use webhook::WebhookFired;

/// The adapters an engine runs on.
#[derive(Clone)]
pub struct Ports {
    pub flows: Arc<dyn FlowRepository>,
    pub executions: Arc<dyn ExecutionRepository>,
    pub logs: Arc<dyn LogRepository>,
    pub files: Arc<dyn FileStorage>,
    pub queue: Arc<dyn TaskQueue>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
    pub triggers: Arc<dyn TriggerRepository>,
    /// Where Schedule triggers are registered ([`crate::ports::NoScheduleRegistry`] locally).
    pub schedules: Arc<dyn ScheduleRegistry>,
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// AES key for SECRET inputs (16, 24 or 32 bytes); `None` refuses SECRET inputs.
    pub secret_key: Option<Vec<u8>>,
    /// Largest accepted upload, in bytes.
    pub max_file_size: u64,
    /// How long a claimed or leased queue item stays invisible before redelivery.
    pub lease: Duration,
    /// Compare-and-set retries of one step before giving up (the item is redelivered).
    pub max_conflict_retries: u32,
    /// Extra top-level expression variables (`envs`, `globals`), an object.
    pub globals: Option<Value>,
    /// Queue the evaluation of Flow triggers in the same commit as the state change
    /// (local server); `false` where a change stream calls [`Engine::execution_changed`].
    pub flow_triggers_in_queue: bool,
    /// `recoverMissedSchedules` of Schedule triggers that don't set it (Kestra: ALL).
    pub recover_missed_schedules: RecoverMissedSchedules,
    /// How long cached latest flow revisions and the index of flows with triggers are
    /// trusted. `None` (local server): until this engine writes a flow. Hosts where other
    /// processes write flows too (the Lambdas) set it.
    pub cache_ttl: Option<Duration>,
    /// Followers of an execution (`follow`, `wait`) also poll the store, backing off up
    /// to this interval, because other processes make progress too (the Lambdas: the
    /// worker runs what the api function created). `None` (local server): every step
    /// runs in this process and notifies them directly.
    pub watch_poll: Option<Duration>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            secret_key: None,
            max_file_size: 512 * 1024 * 1024,
            lease: Duration::from_secs(60),
            max_conflict_retries: 20,
            globals: None,
            flow_triggers_in_queue: true,
            recover_missed_schedules: RecoverMissedSchedules::All,
            cache_ttl: None,
            watch_poll: None,
        }
    }
}

/// A request to create an execution (Kestra's `POST /executions/{namespace}/{flowId}`).
#[derive(Debug, Clone, Default)]
pub struct CreateExecution {
    pub namespace: String,
    pub flow_id: String,
    /// A given revision, else the latest.
    pub revision: Option<i64>,
    /// The id to use (from [`Engine::new_id`], when files were stored under it first).
    pub id: Option<String>,
    /// Raw or typed input values, by input id.
    pub inputs: IndexMap<String, InputValue>,
    /// FILE inputs already stored: input id → `kestra:///` URI.
    pub files: IndexMap<String, String>,
    pub labels: Vec<Label>,
    pub trigger: Option<ExecutionTrigger>,
    /// Start later (Kestra's `scheduleDate`).
    pub schedule_date: Option<DateTime<Utc>>,
}

/// A flow revision: the parsed model and its verbatim source.
#[derive(Debug, Clone)]
pub struct FlowWithSource {
    pub flow: Arc<Flow>,
    pub source: String,
    pub revision: i64,
    pub deleted: bool,
    pub updated: DateTime<Utc>,
}

/// Updates of one execution, for `follow` (the latest state; closes when terminated and dropped).
pub type ExecutionWatch = watch::Receiver<Arc<Execution>>;

/// A latest flow revision and when it was read.
type CachedFlow = (std::time::Instant, Arc<FlowWithSource>);

/// The service both hosts run: flows, executions and the worker step.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    ports: Ports,
    config: EngineConfig,
    expressions: ExpressionEngine,
    /// Parsed flow revisions: (namespace, id, revision) → flow.
    revisions: RwLock<HashMap<(String, String, i64), Arc<FlowWithSource>>>,
    /// Latest revision of live flows, invalidated by this engine's flow writes.
    latest: RwLock<HashMap<(String, String), CachedFlow>>,
    watchers: Mutex<HashMap<String, watch::Sender<Arc<Execution>>>>,
    /// The last state this engine committed for running executions, with its version: the
    /// next step starts from it instead of reading the store (a stale entry loses the
    /// compare-and-set and the step re-reads).
    recent: Mutex<HashMap<String, (i64, Execution)>>,
    dispatcher: RwLock<Option<Arc<dyn Dispatcher>>>,
    /// Flows with Schedule and Flow triggers; `None` after a flow write.
    trigger_index: RwLock<Option<Arc<triggers::TriggerIndex>>>,
    /// Bumped by every flow write: an index built across a write is not kept.
    trigger_generation: std::sync::atomic::AtomicU64,
    schedules_changed: Arc<tokio::sync::Notify>,
}

/// Adapts the id port to the core's `IdSource`.
struct Ids<'a>(&'a dyn IdGenerator);

impl IdSource for Ids<'_> {
    fn next_id(&self) -> String {
        self.0.next_id()
    }
}

/// Adapts file storage to the expression `read()` function.
struct Files<'a>(&'a dyn FileStorage);

impl FileReader for Files<'_> {
    fn read_file(&self, uri: &str) -> Result<Vec<u8>, String> {
        self.0.read_blocking(uri).map_err(|e| e.to_string())
    }
}

/// What one worker step collected besides the execution itself.
#[derive(Default)]
struct Step {
    logs: Vec<LogEntry>,
    push: Vec<WorkItem>,
    children: Vec<Execution>,
    wake: Vec<String>,
    terminated: Option<StateType>,
}

impl Engine {
    /// An engine over `ports`. Work is only queued until a [`Dispatcher`] is set
    /// or a worker leases it from the queue.
    pub fn new(ports: Ports, config: EngineConfig) -> Engine {
        Engine {
            inner: Arc::new(Inner {
                ports,
                config,
                expressions: ExpressionEngine::new(),
                revisions: RwLock::new(HashMap::new()),
                latest: RwLock::new(HashMap::new()),
                watchers: Mutex::new(HashMap::new()),
                recent: Mutex::new(HashMap::new()),
                dispatcher: RwLock::new(None),
                trigger_index: RwLock::new(None),
                trigger_generation: std::sync::atomic::AtomicU64::new(0),
                schedules_changed: Arc::new(tokio::sync::Notify::new()),
            }),
        }
    }

    /// Sets the in-process fast path for work that is due now.
    pub fn set_dispatcher(&self, dispatcher: Arc<dyn Dispatcher>) {
        if let Ok(mut d) = self.inner.dispatcher.write() {
            *d = Some(dispatcher);
        }
    }

    /// Keeps the committed state of a running execution for its next step.
    fn remember(&self, execution: &Execution, version: i64) {
        const MAX_RECENT: usize = 10_000;
        if let Ok(mut recent) = self.inner.recent.lock() {
            if execution.state.current.is_terminated() {
                recent.remove(&execution.id);
                return;
            }
            if recent.len() >= MAX_RECENT {
                recent.clear();
            }
            recent.insert(execution.id.clone(), (version, execution.clone()));
        }
    }

    fn recall(&self, id: &str) -> Option<VersionedExecution> {
        let recent = self.inner.recent.lock().ok()?;
        recent.get(id).map(|(version, execution)| VersionedExecution {
            execution: execution.clone(),
            version: *version,
        })
    }

    fn has_dispatcher(&self) -> bool {
        self.inner.dispatcher.read().map(|d| d.is_some()).unwrap_or(false)
    }

    pub fn ports(&self) -> &Ports {
        &self.inner.ports
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The shared expression renderer (templates compiled once).
    pub fn expressions(&self) -> &ExpressionEngine {
        &self.inner.expressions
    }

    /// A new execution id (to store FILE inputs under before [`Engine::create_execution`]).
    pub fn new_id(&self) -> String {
        self.inner.ports.ids.next_id()
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.inner.ports.clock.now()
    }

    // ------------------------------------------------------------ flows

    fn parse(&self, stored: StoredFlow) -> Result<Arc<FlowWithSource>, EngineError> {
        let key = (stored.namespace.clone(), stored.id.clone(), stored.revision);
        if let Some(f) = self
            .inner
            .revisions
            .read()
            .ok()
            .and_then(|m| m.get(&key).cloned())
        {
            if f.source == stored.source && f.deleted == stored.deleted {
                return Ok(f);
            }
        }
        let mut flow = parse_flow(&stored.source).map_err(EngineError::InvalidFlow)?;
        flow.revision = Some(stored.revision);
        let parsed = Arc::new(FlowWithSource {
            flow: Arc::new(flow),
            source: stored.source,
            revision: stored.revision,
            deleted: stored.deleted,
            updated: stored.updated,
        });
        if let Ok(mut m) = self.inner.revisions.write() {
            m.insert(key, parsed.clone());
        }
        Ok(parsed)
    }

    fn forget_latest(&self, namespace: &str, id: &str) {
        if let Ok(mut m) = self.inner.latest.write() {
            m.remove(&(namespace.to_string(), id.to_string()));
        }
    }

    /// Validates a flow source without storing it.
    pub fn validate_flow(&self, source: &str) -> Result<Flow, EngineError> {
        parse_flow(source).map_err(EngineError::InvalidFlow)
    }

    /// Stores a new flow (revision 1). 422 `flow.id: Flow id already exists` if it exists.
    pub async fn create_flow(&self, source: &str) -> Result<FlowWithSource, EngineError> {
        let flow = self.validate_flow(source)?;
        let now = self.now();
        let stored = match self
            .inner
            .ports
            .flows
            .create(&flow.namespace, &flow.id, source, now)
            .await
        {
            Err(StoreError::AlreadyExists(_)) => {
                return Err(EngineError::InvalidEntity {
                    path: "flow.id".into(),
                    message: "Flow id already exists".into(),
                })
            }
            other => other?,
        };
        self.forget_latest(&flow.namespace, &flow.id);
        let saved = self.parse(stored)?.as_ref().clone();
        self.sync_saved_triggers(&saved.flow).await?;
        Ok(saved)
    }

    /// Stores a new revision of an existing flow (unchanged source keeps the revision).
    pub async fn update_flow(
        &self,
        namespace: &str,
        id: &str,
        source: &str,
    ) -> Result<FlowWithSource, EngineError> {
        let flow = self.validate_flow(source)?;
        if flow.namespace != namespace {
            return Err(EngineError::InvalidEntity {
                path: "flow.namespace".into(),
                message: format!("Illegal namespace update: {namespace} != {}", flow.namespace),
            });
        }
        if flow.id != id {
            return Err(EngineError::InvalidEntity {
                path: "flow.id".into(),
                message: format!("Illegal flow id update: {id} != {}", flow.id),
            });
        }
        let now = self.now();
        let stored = match self.inner.ports.flows.update(namespace, id, source, now).await {
            Err(StoreError::NotFound(_)) => return Err(EngineError::NotFound("Flow not found".into())),
            other => other?,
        };
        self.forget_latest(namespace, id);
        let saved = self.parse(stored)?.as_ref().clone();
        self.sync_saved_triggers(&saved.flow).await?;
        Ok(saved)
    }

    /// Creates the flow or stores a new revision (what `kite flow deploy` and start-up loading do).
    pub async fn deploy_flow(&self, source: &str) -> Result<FlowWithSource, EngineError> {
        let flow = self.validate_flow(source)?;
        match self
            .inner
            .ports
            .flows
            .get(&flow.namespace, &flow.id, None, false)
            .await?
        {
            Some(_) => self.update_flow(&flow.namespace, &flow.id, source).await,
            None => self.create_flow(source).await,
        }
    }

    /// The latest revision (or `revision`) of a flow; 404 if unknown.
    pub async fn get_flow(
        &self,
        namespace: &str,
        id: &str,
        revision: Option<i64>,
    ) -> Result<FlowWithSource, EngineError> {
        Ok(self
            .flow_arc(namespace, id, revision, false)
            .await?
            .as_ref()
            .clone())
    }

    /// Like [`Engine::get_flow`], optionally including deleted flows.
    pub async fn get_flow_allow_deleted(
        &self,
        namespace: &str,
        id: &str,
        revision: Option<i64>,
        allow_deleted: bool,
    ) -> Result<FlowWithSource, EngineError> {
        Ok(self
            .flow_arc(namespace, id, revision, allow_deleted)
            .await?
            .as_ref()
            .clone())
    }

    async fn flow_arc(
        &self,
        namespace: &str,
        id: &str,
        revision: Option<i64>,
        allow_deleted: bool,
    ) -> Result<Arc<FlowWithSource>, EngineError> {
        let key = (namespace.to_string(), id.to_string());
        if revision.is_none() && !allow_deleted {
            let cached = self.inner.latest.read().ok().and_then(|m| m.get(&key).cloned());
            if let Some((at, f)) = cached {
                if self.inner.config.cache_ttl.is_none_or(|ttl| at.elapsed() < ttl) {
                    return Ok(f);
                }
            }
        }
        if let Some(rev) = revision {
            if let Some(f) = self
                .inner
                .revisions
                .read()
                .ok()
                .and_then(|m| m.get(&(key.0.clone(), key.1.clone(), rev)).cloned())
            {
                if allow_deleted || !f.deleted {
                    return Ok(f);
                }
            }
        }
        let stored = self
            .inner
            .ports
            .flows
            .get(namespace, id, revision, allow_deleted)
            .await?
            .ok_or_else(|| EngineError::NotFound("Flow not found".into()))?;
        let parsed = self.parse(stored)?;
        if revision.is_none() && !parsed.deleted {
            if let Ok(mut m) = self.inner.latest.write() {
                m.insert(key, (std::time::Instant::now(), parsed.clone()));
            }
        }
        Ok(parsed)
    }

    /// The revision an execution runs (even if the flow was deleted since).
    async fn flow_of(&self, execution: &Execution) -> Result<Arc<FlowWithSource>, EngineError> {
        self.flow_arc(
            &execution.namespace,
            &execution.flow_id,
            Some(execution.flow_revision),
            true,
        )
        .await
    }

    /// Every revision of a flow, oldest first; 404 if unknown.
    pub async fn flow_revisions(
        &self,
        namespace: &str,
        id: &str,
    ) -> Result<Vec<FlowWithSource>, EngineError> {
        let stored = self.inner.ports.flows.revisions(namespace, id).await?;
        if stored.is_empty() {
            return Err(EngineError::NotFound("Flow not found".into()));
        }
        stored
            .into_iter()
            .map(|s| self.parse(s).map(|f| f.as_ref().clone()))
            .collect()
    }

    /// Latest revisions of live flows matching the query (unparsable sources are skipped).
    pub async fn search_flows(&self, query: &FlowQuery) -> Result<Page<FlowWithSource>, EngineError> {
        let page = self.inner.ports.flows.search(query).await?;
        let results = page
            .results
            .into_iter()
            .filter_map(|s| self.parse(s).ok().map(|f| f.as_ref().clone()))
            .collect();
        Ok(Page {
            results,
            total: page.total,
        })
    }

    /// Soft-deletes a flow; 404 if unknown.
    pub async fn delete_flow(&self, namespace: &str, id: &str) -> Result<(), EngineError> {
        let now = self.now();
        let deleted = self.inner.ports.flows.delete(namespace, id, now).await?;
        self.forget_latest(namespace, id);
        if deleted {
            self.drop_triggers(namespace, id).await?;
            Ok(())
        } else {
            Err(EngineError::NotFound("Flow not found".into()))
        }
    }

    // ------------------------------------------------------------ executions

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

    fn type_inputs(
        &self,
        flow: &Flow,
        execution_id: &str,
        provided: &IndexMap<String, InputValue>,
    ) -> Result<IndexMap<String, Value>, EngineError> {
        let ctx = InputContext {
            namespace: &flow.namespace,
            flow_id: &flow.id,
            execution_id,
            secret_key: self.inner.config.secret_key.as_deref(),
            condition: None,
        };
        Ok(resolve_inputs(&flow.inputs, provided, &ctx)?)
    }

    /// Inserts a CREATED execution with its Start item and runs it through the fast path.
    async fn insert_and_start(&self, execution: Execution) -> Result<Execution, EngineError> {
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
        };
        let version = match self.inner.ports.executions.commit(transition).await {
            Err(StoreError::AlreadyExists(id)) => {
                return Err(EngineError::IllegalState(format!(
                    "Execution {id} already exists"
                )))
            }
            other => other?,
        };
        self.remember(&execution, version);
        self.after_commit(&execution, vec![start], now);
        Ok(execution)
    }

    /// Starts a new execution in this process and writes it once, after its light tasks ran:
    /// an execution like benchmark01 costs one write instead of two (one transaction, not
    /// two, on DynamoDB). Returns the execution as created, or `None` when it must go through
    /// the queue first (a concurrency limit to check, or a start the state machine refused).
    async fn start_inline(&self, created: &Execution) -> Result<Option<Execution>, EngineError> {
        let flow = self.flow_of(created).await?;
        if flow.flow.concurrency.is_some() {
            return Ok(None);
        }
        let mut execution = created.clone();
        let mut pass = Step::default();
        if let Err(e) = self
            .drive(&flow.flow, &mut execution, Event::Start, &mut pass)
            .await
        {
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

    fn claim_deadline(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono::Duration::from_std(self.inner.config.lease)
            .unwrap_or_else(|_| chrono::Duration::seconds(60))
    }

    /// Hands due-now items to the dispatcher, arms timers, notifies watchers.
    fn after_commit(&self, execution: &Execution, pushed: Vec<WorkItem>, now: DateTime<Utc>) {
        let dispatcher = self.inner.dispatcher.read().ok().and_then(|d| d.clone());
        if let Some(d) = dispatcher {
            let (due, later): (Vec<WorkItem>, Vec<WorkItem>) = pushed.into_iter().partition(|i| i.due <= now);
            if let Some(first) = later.iter().map(|i| i.due).min() {
                d.wake_at(first);
            }
            if !due.is_empty() {
                d.dispatch(due);
            }
        }
        self.notify(execution);
    }

    /// The execution; 404 if unknown or deleted.
    pub async fn get_execution(&self, id: &str) -> Result<Execution, EngineError> {
        Ok(self.versioned_execution(id).await?.execution)
    }

    /// The stored execution with its version (for compare-and-set), or 404.
    async fn versioned_execution(&self, id: &str) -> Result<VersionedExecution, EngineError> {
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
            let mut pass = Step::default();
            self.drive(&flow.flow, &mut execution, Event::Restart, &mut pass)
                .await?;
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
        if !self.inner.ports.executions.delete(id).await? {
            return Err(EngineError::NotFound(format!("Execution '{id}' not found")));
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

    /// Queues work for an execution and hands it to the fast path.
    async fn enqueue(&self, execution_id: &str, work: Work) -> Result<(), EngineError> {
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
    /// are released so that its claimed items run now. Returns the non-terminal executions.
    pub async fn recover(&self) -> Result<usize, EngineError> {
        let released = self.inner.ports.queue.release_leases().await?;
        let ids = self.inner.ports.executions.list_non_terminal().await?;
        tracing::info!(released, executions = ids.len(), "recovered queued work");
        Ok(ids.len())
    }

    // ------------------------------------------------------------ worker side

    /// Processes one queue item: applies its event, runs light tasks inline until the
    /// execution waits for something else, then commits everything in one transition
    /// (retrying on a compare-and-set conflict) and acks the item.
    pub async fn process(&self, item: WorkItem) -> Result<(), EngineError> {
        let span = info_span!("execution", id = %item.execution_id);
        self.process_inner(item).instrument(span).await
    }

    async fn process_inner(&self, item: WorkItem) -> Result<(), EngineError> {
        let ports = &self.inner.ports;
        let mut cached = self.recall(&item.execution_id);
        for _ in 0..=self.inner.config.max_conflict_retries {
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
            let event = match &item.work {
                Work::RunTask { task_run_id } => self.run_queued_task(&flow.flow, &execution, task_run_id),
                work => self.event_for(&execution, work).await?,
            };
            let Some(event) = event else {
                ports.queue.ack(std::slice::from_ref(&item.id)).await?;
                return Ok(());
            };
            let mut pass = Step::default();
            let gate = match event {
                Event::Start if matches!(execution.state.current, StateType::Created | StateType::Queued) => {
                    self.concurrency_gate(&flow.flow, &execution).await?
                }
                _ => None,
            };
            match gate {
                // Over the flow's concurrency limit: queued (started when another ends), cancelled or failed.
                Some(state) => {
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
                    }
                }
                None => match self.drive(&flow.flow, &mut execution, event, &mut pass).await {
                    Ok(()) => {}
                    // The state machine refuses this event for good: redelivering it cannot help.
                    Err(EngineError::Internal(message)) => {
                        tracing::error!(error = %message, work = ?item.work, "work item refused; dropped");
                        ports.queue.ack(std::slice::from_ref(&item.id)).await?;
                        return Err(EngineError::Internal(message));
                    }
                    Err(e) => return Err(e),
                },
            }
            pass.push
                .extend(self.trigger_work(&flow.flow, &execution, known_history).await?);
            let release = pass.terminated.is_some() && flow.flow.concurrency.is_some();
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
                Err(EngineError::Store(StoreError::Conflict(_))) => {
                    debug!("conflict, retrying");
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        Err(EngineError::Store(StoreError::Conflict(item.execution_id)))
    }

    /// Applies the flow's `concurrency` limit to an execution about to start: `None` admits it,
    /// else the state it takes instead (QUEUED, CANCELLED or FAILED).
    async fn concurrency_gate(
        &self,
        flow: &Flow,
        execution: &Execution,
    ) -> Result<Option<StateType>, EngineError> {
        if flow.concurrency.is_none() {
            return Ok(None);
        }
        let running = self
            .inner
            .ports
            .executions
            .search(&ExecutionQuery {
                namespace: Some(execution.namespace.clone()),
                flow_id: Some(execution.flow_id.clone()),
                states: vec![
                    StateType::Running,
                    StateType::Paused,
                    StateType::Killing,
                    StateType::Restarted,
                ],
                pagination: crate::ports::Pagination { page: 1, size: 1 },
                ..Default::default()
            })
            .await?;
        let running = running.results.len().max(running.total as usize);
        Ok(match executor::concurrency_decision(flow, running) {
            executor::ConcurrencyDecision::Admit => None,
            executor::ConcurrencyDecision::Queue if execution.state.current == StateType::Queued => {
                // Still over the limit: it stays queued until the next execution ends.
                Some(StateType::Queued)
            }
            executor::ConcurrencyDecision::Queue => Some(StateType::Queued),
            executor::ConcurrencyDecision::Cancel => Some(StateType::Cancelled),
            executor::ConcurrencyDecision::Fail => Some(StateType::Failed),
        })
    }

    /// Queues the start of the oldest QUEUED execution of a flow (one of its executions ended).
    async fn start_next_queued(&self, namespace: &str, flow_id: &str) -> Result<(), EngineError> {
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

    /// Calls `f` with the core's environment (never held across an await: it is not `Send`).
    fn with_env<R>(&self, f: impl FnOnce(&Env) -> R) -> R {
        let ports = &self.inner.ports;
        let ids = Ids(ports.ids.as_ref());
        let files = Files(ports.files.as_ref());
        let env = Env {
            now: self.now(),
            ids: &ids,
            expressions: &self.inner.expressions,
            files: Some(&files),
            secret_key: self.inner.config.secret_key.as_deref(),
            globals: self.inner.config.globals.as_ref(),
        };
        f(&env)
    }

    /// Runs a queued task run unless it already finished (deliveries are at-least-once).
    fn run_queued_task(&self, flow: &Flow, execution: &Execution, task_run_id: &str) -> Option<Event> {
        let tr = execution.find_task_run(task_run_id)?;
        if tr.state.current != StateType::Running {
            return None;
        }
        let span = info_span!("task_run", id = %task_run_id);
        let result =
            span.in_scope(|| self.with_env(|env| executor::run_task(flow, execution, task_run_id, env)));
        Some(Event::TaskRunFinished {
            task_run_id: task_run_id.to_string(),
            result,
        })
    }

    /// The event a work item stands for, or `None` when there is nothing left to do.
    async fn event_for(&self, execution: &Execution, work: &Work) -> Result<Option<Event>, EngineError> {
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
    async fn drive(
        &self,
        flow: &Flow,
        execution: &mut Execution,
        first: Event,
        pass: &mut Step,
    ) -> Result<(), EngineError> {
        let mut driver = Driver::new(first);
        let mut children = Vec::new();
        while let Some(need) = self
            .with_env(|env| driver.advance(flow, execution, env))
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
                            min_level: Some("ERROR".into()),
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
        let driven = driver.finish();
        pass.logs.extend(driven.logs);
        pass.push.extend(
            driven
                .timers
                .into_iter()
                .map(|timer| WorkItem::timer(&execution.id, timer)),
        );
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
    async fn prepare_subflow(&self, request: &executor::SubflowRequest) -> Result<Execution, EngineError> {
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

    async fn commit_pass(
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
                .filter(|i| i.due <= now && self.has_dispatcher())
                .map(|i| i.id.clone())
                .collect(),
            claim_until: Some(self.claim_deadline(now)),
            ack,
            wake: pass.wake.clone(),
            children: children.clone(),
        };
        let version = self.inner.ports.executions.commit(transition).await?;
        self.remember(&execution, version);
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
        self.after_commit(&execution, pushed, now);
        for child in &children {
            self.notify(child);
        }
        Ok(())
    }
}
