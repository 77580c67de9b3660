//! The engine: flows, executions and the worker step, over the ports.
//!
//! - `flows`: flow revisions (parse, cache, create, update, deploy, delete)
//! - `executions`: executions as the API sees them (create, kill, resume, restart, ...)
//! - `step`: the worker step (a queue item driven through the core and committed)
//! - `followers`: who watches an execution (`follow`, `wait`)
//! - `triggers`: Schedule and Flow triggers; `webhook`: Webhook triggers

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use kite_core::execution::{Execution, ExecutionTrigger, Label, LogEntry, LogLevel, StateType};
use kite_core::executor::{self, Driver, Env, Event, Need, NewExecution};
use kite_core::expression::{ExpressionEngine, FileReader};
use kite_core::flow::{parse_flow, Flow, FlowLimits, TaskKind};
use kite_core::input::{check_inputs, resolve_inputs, InputCheck, InputContext, InputValue};
use kite_core::trigger::schedule::RecoverMissedSchedules;
use serde_json::Value;
use tokio::sync::watch;
use tracing::{debug, info_span, warn, Instrument};

use crate::error::EngineError;

mod executions;
mod flows;
mod followers;
mod kv;
mod step;
mod triggers;
mod webhook;
mod worker_run;

pub use worker_run::RunWindow;

use crate::ports::{
    never, subflow_wait_id, Clock, Dispatcher, ExecutionQuery, ExecutionRepository, FileStorage, FlowQuery,
    FlowRepository, IdSource, KvStore, LogQuery, LogRepository, Page, ScheduleRegistry, SecretStore, Slot,
    StorageError, StoreError, StoredFlow, TaskQueue, TaskWorker, Transition, TriggerRepository,
    VersionedExecution, Work, WorkItem,
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
    pub ids: Arc<dyn IdSource>,
    pub triggers: Arc<dyn TriggerRepository>,
    /// Where Schedule triggers are registered ([`crate::ports::NoScheduleRegistry`] locally).
    pub schedules: Arc<dyn ScheduleRegistry>,
    /// Runs task runs that do I/O: `kite_worker::InProcessWorker` in the local server and the
    /// worker function, [`crate::ports::NoTaskIo`] in the functions that queue that I/O.
    pub worker: Arc<dyn TaskWorker>,
    /// What `secret()` reads (`SECRET_*` variables locally, Secrets Manager on AWS).
    pub secrets: Arc<dyn SecretStore>,
    /// Kestra's KV store (the `kv` tasks, `kv()`, the API).
    pub kv: Arc<dyn KvStore>,
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
    /// How big a saved or validated flow may be.
    pub flow_limits: FlowLimits,
    /// The largest outputs a task run may have (bytes of JSON).
    pub max_task_output: usize,
    /// Deaths of the process with a work item in hand after which that item's execution
    /// FAILS instead of running the item again (the crash-loop guard; see
    /// [`Engine::recover`]). On AWS, the receives of an SQS message count.
    pub crash_limit: u32,
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
            flow_limits: FlowLimits::default(),
            max_task_output: kite_core::env::DEFAULT_MAX_TASK_OUTPUT,
            crash_limit: 2,
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
    /// Task runs on this process's worker, by execution: a kill cancels them.
    running: Mutex<HashMap<String, watch::Sender<bool>>>,
    /// The time the host gives the work it runs (see [`Engine::set_run_window`]).
    run_window: Mutex<Option<RunWindow>>,
}

/// Adapts file storage to the expression `read()` function.
struct Files<'a>(&'a dyn FileStorage);

impl FileReader for Files<'_> {
    fn read_file(&self, uri: &str) -> Result<Vec<u8>, kite_core::expression::FileReadError> {
        use kite_core::expression::FileReadError;
        self.0.read_blocking(uri).map_err(|e| match e {
            StorageError::NotFound(uri) => FileReadError::NotFound(uri),
            other => FileReadError::Other(other.to_string()),
        })
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
    slot: Option<Slot>,
    /// A kill of the execution stopped this pass's renders: it is not committed.
    interrupted: bool,
}

/// Time since the first call: the clock of the render time bound.
fn monotonic() -> Duration {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    EPOCH.get_or_init(std::time::Instant::now).elapsed()
}

impl Engine {
    /// An engine over `ports`. Work is only queued until a [`Dispatcher`] is set
    /// or a worker leases it from the queue.
    pub fn new(ports: Ports, config: EngineConfig) -> Engine {
        kite_core::expression::install_render_clock(monotonic);
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
                running: Mutex::new(HashMap::new()),
                run_window: Mutex::new(None),
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
    fn remember(&self, execution: Execution, version: i64) {
        const MAX_RECENT: usize = 10_000;
        if let Ok(mut recent) = self.inner.recent.lock() {
            if execution.state.current.is_terminated() {
                recent.remove(&execution.id);
                return;
            }
            if recent.len() >= MAX_RECENT {
                recent.clear();
            }
            recent.insert(execution.id.clone(), (version, execution));
        }
    }

    /// Takes the last state this engine committed (no copy: a long execution is large; the
    /// step that takes it remembers the next one, and a concurrent step reads the store).
    fn recall(&self, id: &str) -> Option<VersionedExecution> {
        let mut recent = self.inner.recent.lock().ok()?;
        recent
            .remove(id)
            .map(|(version, execution)| VersionedExecution { execution, version })
    }

    fn has_dispatcher(&self) -> bool {
        self.inner.dispatcher.read().map(|d| d.is_some()).unwrap_or(false)
    }

    /// Whether this process's dispatcher runs `work` itself (it is then claimed on commit).
    fn dispatches(&self, work: &Work) -> bool {
        self.inner
            .dispatcher
            .read()
            .ok()
            .and_then(|d| d.as_ref().map(|d| d.runs(work)))
            .unwrap_or(false)
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

    // ------------------------------------------------------------ executions

    // ------------------------------------------------------------ worker side
}
