//! Ports: what the [`crate::Engine`] needs from the outside world.
//!
//! Each port is an object-safe async trait so that the local server (SQLite,
//! a folder, in-process workers) and the Lambdas (DynamoDB, S3) plug in the
//! same engine. Adapters must honour the documented guarantees; the suite in
//! `conformance` (feature `conformance`) checks them on each adapter family.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use kite_core::execution::{Execution, Label, LogEntry, LogLevel, StateType};
use kite_core::executor::{TaskResult, Timer, TimerKind};
use kite_core::task::IoJob;
use kite_core::trigger::TriggerState;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::AsyncRead;

/// Errors of the repositories and the queue.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// A compare-and-set lost: the record changed since it was read.
    #[error("concurrent modification of {0}")]
    Conflict(String),
    /// An insert found the key already taken.
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("{0} not found")]
    NotFound(String),
    /// The backend failed (I/O, corruption, serialization).
    #[error("storage error: {0}")]
    Backend(String),
}

/// Errors of [`FileStorage`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StorageError {
    #[error("file not found: {0}")]
    NotFound(String),
    /// The URI is not a `kestra:///` URI or escapes the storage root.
    #[error("invalid storage path: {0}")]
    InvalidUri(String),
    #[error("file is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("storage I/O error: {0}")]
    Io(String),
}

/// One page of results and the total number of matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub results: Vec<T>,
    pub total: u64,
}

/// 1-based page number and page size (Kestra's `page`/`size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pagination {
    pub page: u32,
    pub size: u32,
}

impl Default for Pagination {
    fn default() -> Self {
        Pagination { page: 1, size: 10 }
    }
}

impl Pagination {
    /// Rows to skip.
    pub fn offset(&self) -> u64 {
        u64::from(self.page.max(1) - 1) * u64::from(self.size)
    }
}

/// A sort key, Kestra's `sort=field:asc|desc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    pub field: String,
    pub descending: bool,
}

// ---------------------------------------------------------------- flows

/// A stored revision of a flow: the YAML source kept verbatim.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFlow {
    pub namespace: String,
    pub id: String,
    pub revision: i64,
    pub source: String,
    pub deleted: bool,
    pub updated: DateTime<Utc>,
}

/// Flow search filters (all optional; `namespace` is a prefix match on whole segments or exact).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlowQuery {
    /// Free text matched against namespace and id.
    pub q: Option<String>,
    /// Namespace or namespace prefix (`company` matches `company.team`).
    pub namespace: Option<String>,
    /// Labels every flow must carry (`key`, `value`), matched in the source.
    pub labels: Vec<Label>,
    pub pagination: Pagination,
    pub sort: Vec<Sort>,
}

/// Flows and their revisions (latest revision = the live flow).
#[async_trait]
pub trait FlowRepository: Send + Sync {
    /// Stores revision 1 of a new flow; [`StoreError::AlreadyExists`] if a live flow has this id.
    /// A flow that was deleted is created again with the next revision number.
    async fn create(
        &self,
        namespace: &str,
        id: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<StoredFlow, StoreError>;
    /// Stores a new revision when the source changed (else returns the latest unchanged);
    /// [`StoreError::NotFound`] if there is no live flow.
    async fn update(
        &self,
        namespace: &str,
        id: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<StoredFlow, StoreError>;
    /// The latest revision (or the given one). Deleted flows only with `allow_deleted`.
    async fn get(
        &self,
        namespace: &str,
        id: &str,
        revision: Option<i64>,
        allow_deleted: bool,
    ) -> Result<Option<StoredFlow>, StoreError>;
    /// Every revision, oldest first.
    async fn revisions(&self, namespace: &str, id: &str) -> Result<Vec<StoredFlow>, StoreError>;
    /// Latest revisions of live flows matching the query.
    async fn search(&self, query: &FlowQuery) -> Result<Page<StoredFlow>, StoreError>;
    /// Soft delete: the flow disappears from `get`/`search`; revisions stay. `false` if unknown.
    async fn delete(&self, namespace: &str, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError>;
}

// ---------------------------------------------------------------- executions

/// An execution and its version for compare-and-set.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionedExecution {
    pub execution: Execution,
    pub version: i64,
}

/// Execution search filters (Kestra's `GET /executions/search`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecutionQuery {
    /// Free text matched against id, namespace and flow id.
    pub q: Option<String>,
    /// Namespace or namespace prefix.
    pub namespace: Option<String>,
    pub flow_id: Option<String>,
    /// Any of these states (empty = all).
    pub states: Vec<StateType>,
    /// Every label must be present.
    pub labels: Vec<Label>,
    /// Start date (creation) lower and upper bounds, inclusive.
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    /// Executions created by this execution's Subflow/Flow trigger.
    pub trigger_execution_id: Option<String>,
    pub pagination: Pagination,
    /// Default: start date, newest first.
    pub sort: Vec<Sort>,
}

/// Everything one step of an execution writes, applied atomically
/// (one SQLite transaction; one DynamoDB `TransactWriteItems`, or one conditional write when only the execution changes).
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub execution: Execution,
    /// `None` inserts a new execution; `Some(v)` updates it only if its version is still `v`.
    pub expected_version: Option<i64>,
    pub logs: Vec<LogEntry>,
    /// Work to enqueue.
    pub push: Vec<WorkItem>,
    /// Ids of pushed items to store claimed (leased) until `claim_until`, for the caller to
    /// run them in-process at once (a crash lets the claim lapse and the queue redelivers them).
    pub claimed: Vec<String>,
    pub claim_until: Option<DateTime<Utc>>,
    /// Queue items this step consumed.
    pub ack: Vec<String>,
    /// Queued items to make due immediately and visible (a parent's wait on this execution,
    /// `subflow-{id}`); unknown ids are ignored.
    pub wake: Vec<String>,
    /// New executions created by this step (subflows), inserted unless their id exists.
    pub children: Vec<Execution>,
}

/// Executions with optimistic concurrency.
#[async_trait]
pub trait ExecutionRepository: Send + Sync {
    /// Inserts a new execution (version 1); [`StoreError::AlreadyExists`] if the id is taken.
    async fn insert(&self, execution: &Execution) -> Result<i64, StoreError>;
    /// The execution and its version, deleted ones excluded.
    async fn get(&self, id: &str) -> Result<Option<VersionedExecution>, StoreError>;
    /// Writes `execution` if its stored version is `expected_version`, returning the new
    /// version; [`StoreError::Conflict`] otherwise (two writers never both win).
    async fn update(&self, execution: &Execution, expected_version: i64) -> Result<i64, StoreError>;
    /// Applies a [`Transition`] atomically and returns the new version.
    async fn commit(&self, transition: Transition) -> Result<i64, StoreError>;
    async fn search(&self, query: &ExecutionQuery) -> Result<Page<Execution>, StoreError>;
    /// Soft delete; `false` if unknown.
    async fn delete(&self, id: &str) -> Result<bool, StoreError>;
    /// Ids of executions that are not terminated (for resumption after a restart).
    async fn list_non_terminal(&self) -> Result<Vec<String>, StoreError>;
}

// ---------------------------------------------------------------- logs

/// Log filters for one execution (Kestra's `GET /logs/{executionId}`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogQuery {
    pub execution_id: String,
    /// Minimum level (`TRACE` < `DEBUG` < `INFO` < `WARN` < `ERROR`).
    pub min_level: Option<LogLevel>,
    pub task_run_id: Option<String>,
    pub task_id: Option<String>,
    pub attempt: Option<u32>,
}

#[async_trait]
pub trait LogRepository: Send + Sync {
    /// Appends log lines, keeping their order.
    async fn append(&self, logs: &[LogEntry]) -> Result<(), StoreError>;
    /// Logs of an execution in the order they were appended.
    async fn list(&self, query: &LogQuery) -> Result<Vec<LogEntry>, StoreError>;
    /// Removes all logs of an execution, returning how many.
    async fn delete_by_execution(&self, execution_id: &str) -> Result<u64, StoreError>;
}

// ---------------------------------------------------------------- files

/// A readable byte stream.
pub type ByteStream = Pin<Box<dyn AsyncRead + Send>>;

/// Internal storage addressed by `kestra:///...` URIs. Implementations must refuse URIs
/// that are not `kestra:///`, contain `..`/empty/absolute segments or otherwise escape the root.
#[async_trait]
pub trait FileStorage: Send + Sync {
    /// Streams `content` into `uri`, failing with [`StorageError::TooLarge`] (and storing
    /// nothing) beyond `max_bytes`. Returns the size written. Overwrites.
    async fn put(&self, uri: &str, content: ByteStream, max_bytes: u64) -> Result<u64, StorageError>;
    /// Opens the file for reading.
    async fn get(&self, uri: &str) -> Result<ByteStream, StorageError>;
    /// The file size, `None` if absent.
    async fn size(&self, uri: &str) -> Result<Option<u64>, StorageError>;
    async fn exists(&self, uri: &str) -> Result<bool, StorageError> {
        Ok(self.size(uri).await?.is_some())
    }
    /// Deletes every file under `prefix` (a `kestra:///` URI), returning how many.
    async fn delete_prefix(&self, prefix: &str) -> Result<u64, StorageError>;
    /// Reads a whole file synchronously (the expression `read()` function runs in
    /// synchronous code); may block the calling thread briefly.
    fn read_blocking(&self, uri: &str) -> Result<Vec<u8>, StorageError>;
    /// A URL that stores the file `uri` with one HTTP `PUT` of its bytes, valid for
    /// `expires_in`, for clients that upload straight to the storage (S3's presigned
    /// URLs). `None`: the storage has none, the API receives the bytes itself. The
    /// storage cannot bound the size of such an upload: check [`FileStorage::size`].
    async fn upload_url(&self, uri: &str, expires_in: Duration) -> Result<Option<String>, StorageError> {
        let _ = (uri, expires_in);
        Ok(None)
    }
    /// A URL that downloads the file `uri` with an HTTP `GET`, valid for `expires_in`.
    /// `None`: the storage has none, the API streams the file itself.
    async fn download_url(&self, uri: &str, expires_in: Duration) -> Result<Option<String>, StorageError> {
        let _ = (uri, expires_in);
        Ok(None)
    }
}

// ---------------------------------------------------------------- queue

/// What a queue item asks the engine to do with an execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Work {
    /// Start a CREATED execution (at its `scheduleDate` if any).
    Start,
    /// Run one task run (heavy tasks: HTTP, ...).
    RunTask {
        task_run_id: String,
    },
    /// A timer armed by the executor is due.
    Timer {
        task_run_id: String,
        timer: TimerKind,
    },
    /// A child execution that the parent waits for ended.
    SubflowEnded {
        task_run_id: String,
        child_execution_id: String,
    },
    Kill,
    /// Resume a paused execution with typed `onResume` inputs.
    Resume {
        task_run_id: Option<String>,
        inputs: IndexMap<String, Value>,
    },
    /// The execution entered `state` (its `occurrence`-th time): evaluate the Flow
    /// triggers listening to it and `stopAfter`.
    Triggers {
        state: StateType,
        occurrence: usize,
    },
}

/// A durable unit of work for one execution, runnable at `due`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkItem {
    pub id: String,
    pub execution_id: String,
    pub due: DateTime<Utc>,
    pub work: Work,
}

/// The queue ids are derived from what the item is for, so that pushing the same work
/// twice (a retried step, a redelivered event) leaves one item.
impl WorkItem {
    /// Starts a CREATED execution at `due`.
    pub fn start(execution_id: &str, due: DateTime<Utc>) -> WorkItem {
        WorkItem {
            id: format!("start-{execution_id}"),
            execution_id: execution_id.to_string(),
            due,
            work: Work::Start,
        }
    }

    /// Fires a timer the executor armed.
    pub fn timer(execution_id: &str, timer: Timer) -> WorkItem {
        WorkItem {
            id: format!(
                "timer-{execution_id}-{}-{}-{}",
                timer.task_run_id,
                timer.kind.name(),
                timer.at.timestamp_millis()
            ),
            execution_id: execution_id.to_string(),
            due: timer.at,
            work: Work::Timer {
                task_run_id: timer.task_run_id,
                timer: timer.kind,
            },
        }
    }

    /// Wakes a parent when the child execution it waits for ends: due never, the child's
    /// end makes it due (see [`subflow_wait_id`]).
    pub fn subflow_wait(parent_execution_id: &str, task_run_id: &str, child_execution_id: &str) -> WorkItem {
        WorkItem {
            id: subflow_wait_id(child_execution_id),
            execution_id: parent_execution_id.to_string(),
            due: never(),
            work: Work::SubflowEnded {
                task_run_id: task_run_id.to_string(),
                child_execution_id: child_execution_id.to_string(),
            },
        }
    }

    /// Evaluates the Flow triggers listening to an execution's `occurrence`-th entry in `state`.
    pub fn triggers(execution_id: &str, state: StateType, occurrence: usize, due: DateTime<Utc>) -> WorkItem {
        WorkItem {
            id: format!("triggers-{execution_id}-{}-{occurrence}", state.as_str()),
            execution_id: execution_id.to_string(),
            due,
            work: Work::Triggers { state, occurrence },
        }
    }
}

impl WorkItem {
    /// Runs one attempt of a task run that does I/O on a worker.
    pub fn run_task(execution_id: &str, task_run_id: &str, attempt: usize, due: DateTime<Utc>) -> WorkItem {
        WorkItem {
            id: format!("run-{task_run_id}-{attempt}"),
            execution_id: execution_id.to_string(),
            due,
            work: Work::RunTask {
                task_run_id: task_run_id.to_string(),
            },
        }
    }
}

/// The queue item id of a parent waiting for a child execution.
pub fn subflow_wait_id(child_execution_id: &str) -> String {
    format!("subflow-{child_execution_id}")
}

/// A date far enough to mean "until woken".
pub fn never() -> DateTime<Utc> {
    DateTime::<Utc>::MAX_UTC
}

/// A durable queue with leases: a leased item is invisible until its lease ends or it is acked,
/// then delivered again (at-least-once).
#[async_trait]
pub trait TaskQueue: Send + Sync {
    /// Enqueues items (an existing id is left unchanged).
    async fn push(&self, items: &[WorkItem]) -> Result<(), StoreError>;
    /// Leases up to `max` items due at `now` and not leased, for `lease_for`.
    async fn lease(
        &self,
        now: DateTime<Utc>,
        max: usize,
        lease_for: Duration,
    ) -> Result<Vec<WorkItem>, StoreError>;
    /// Makes an item due at `due` and visible (no effect if it does not exist).
    async fn reschedule(&self, id: &str, due: DateTime<Utc>) -> Result<(), StoreError>;
    /// Makes every leased item visible again (at start-up of the only consumer); returns how many.
    async fn release_leases(&self) -> Result<u64, StoreError>;
    /// Removes consumed items.
    async fn ack(&self, ids: &[String]) -> Result<(), StoreError>;
    /// When the next item becomes deliverable (due date or lease end), if any.
    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Items still queued (leased or not).
    async fn len(&self) -> Result<u64, StoreError>;
    async fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len().await? == 0)
    }
}

// ---------------------------------------------------------------- worker

/// What a worker may use while it runs a job.
#[derive(Clone)]
pub struct WorkerContext {
    /// Stores log lines at once, while the task runs (the result's lines are stored
    /// with the result).
    pub logs: Arc<dyn LogRepository>,
    /// Output files go under the task run's prefix (`job.task_run.storage_prefix()`).
    pub files: Arc<dyn FileStorage>,
    pub clock: Arc<dyn Clock>,
}

/// Runs task runs that do I/O (HTTP requests, ...): one module per task family.
/// The engine drops the future when the execution is killed or the task's `timeout`
/// ends, which stops the I/O; the result it returns ends the task run's attempt.
#[async_trait]
pub trait TaskWorker: Send + Sync {
    async fn run(&self, job: IoJob, context: WorkerContext) -> TaskResult;
}

/// A worker for hosts that run no task doing I/O: such task runs fail saying so.
pub struct NoWorker;

#[async_trait]
impl TaskWorker for NoWorker {
    async fn run(&self, job: IoJob, context: WorkerContext) -> TaskResult {
        job.task_run
            .failed("No worker runs tasks that do I/O here", context.clock.now())
    }
}

/// Runs work in this process right away (the fast path after a durable write).
/// Hosts without workers (an API Lambda) have none and rely on the queue alone.
pub trait Dispatcher: Send + Sync {
    /// Items already durably queued and claimed, due now.
    fn dispatch(&self, items: Vec<WorkItem>);
    /// A timer was queued for `due`: wake the timer loop if it sleeps past it.
    fn wake_at(&self, due: DateTime<Utc>);
}

// ---------------------------------------------------------------- clock and ids

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

pub use kite_core::id::IdSource;

/// Random 128-bit ids in Kestra's base62 form, and random nonces, from the OS.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomIds;

impl RandomIds {
    fn random<const N: usize>() -> [u8; N] {
        let mut bytes = [0u8; N];
        if getrandom::getrandom(&mut bytes).is_err() {
            // No OS randomness: time and a counter, still unique in-process.
            static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let t = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
            for (i, b) in t.to_le_bytes().iter().chain(&n.to_le_bytes()).enumerate() {
                bytes[i % N] ^= b;
            }
        }
        bytes
    }
}

impl IdSource for RandomIds {
    fn next_id(&self) -> String {
        kite_core::id::friendly_id(u128::from_le_bytes(Self::random()))
    }

    fn nonce(&self) -> [u8; 12] {
        Self::random()
    }
}

// ---------------------------------------------------------------- triggers

/// A trigger's state and its version for compare-and-set.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionedTrigger {
    pub state: TriggerState,
    pub version: i64,
}

/// Trigger search filters (Kestra's `GET /triggers/search`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TriggerQuery {
    /// Free text matched against namespace, flow id and trigger id.
    pub q: Option<String>,
    /// Namespace or namespace prefix.
    pub namespace: Option<String>,
    pub flow_id: Option<String>,
    pub pagination: Pagination,
}

/// Trigger state (last scheduled date, backfill, disabled, preconditions), keyed by
/// (namespace, flow id, trigger id), with optimistic concurrency.
#[async_trait]
pub trait TriggerRepository: Send + Sync {
    async fn get(
        &self,
        namespace: &str,
        flow_id: &str,
        trigger_id: &str,
    ) -> Result<Option<VersionedTrigger>, StoreError>;
    /// Inserts (`expected_version: None`, [`StoreError::AlreadyExists`] if present) or
    /// updates only if the stored version is `expected_version` ([`StoreError::Conflict`]
    /// otherwise). Returns the new version.
    async fn put(&self, state: &TriggerState, expected_version: Option<i64>) -> Result<i64, StoreError>;
    /// Every trigger state of one flow, ordered by trigger id.
    async fn list_for_flow(
        &self,
        namespace: &str,
        flow_id: &str,
    ) -> Result<Vec<VersionedTrigger>, StoreError>;
    /// Ordered by namespace, flow id, trigger id.
    async fn search(&self, query: &TriggerQuery) -> Result<Page<TriggerState>, StoreError>;
    /// `false` if unknown.
    async fn delete(&self, namespace: &str, flow_id: &str, trigger_id: &str) -> Result<bool, StoreError>;
}

/// One Schedule trigger as a cloud scheduler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRule {
    pub namespace: String,
    pub flow_id: String,
    pub trigger_id: String,
    /// Schedule expressions in UTC (`cron(...)`) that together fire at least at every
    /// due instant; the scheduler checks each firing against the trigger's real cron and
    /// time zone.
    pub expressions: Vec<String>,
    pub enabled: bool,
}

/// What a whole-registry reconcile found and changed, in registered schedules (one per
/// expression of a [`ScheduleRule`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Registered before the reconcile.
    pub found: usize,
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
    /// Left as they were because written after the reconcile's read.
    pub recent: usize,
}

impl SyncReport {
    /// Whether the registry had drifted from the flows.
    pub fn changed(&self) -> bool {
        self.created + self.updated + self.deleted > 0
    }
}

/// Where Schedule triggers are registered with an external clock (EventBridge Scheduler).
/// The local server has its own in-process scheduler and uses [`NoScheduleRegistry`].
#[async_trait]
pub trait ScheduleRegistry: Send + Sync {
    /// Makes the registered rules of one flow exactly `rules`: creates, updates and
    /// deletes as needed (an empty list removes them all). Idempotent.
    async fn sync_flow(
        &self,
        namespace: &str,
        flow_id: &str,
        rules: &[ScheduleRule],
    ) -> Result<(), StoreError>;

    /// Makes the whole registry exactly `rules` (those of every live flow): repairs what
    /// a failed [`ScheduleRegistry::sync_flow`] or a hand edit left, and removes the
    /// schedules of flows that no longer exist. Registered schedules last written at or
    /// after `settled_before` are left as they are: a flow save newer than the read of
    /// `rules` may have written them. Idempotent.
    async fn sync_all(
        &self,
        rules: &[ScheduleRule],
        settled_before: DateTime<Utc>,
    ) -> Result<SyncReport, StoreError>;
}

/// For hosts whose scheduler reads the flows itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoScheduleRegistry;

#[async_trait]
impl ScheduleRegistry for NoScheduleRegistry {
    async fn sync_flow(&self, _: &str, _: &str, _: &[ScheduleRule]) -> Result<(), StoreError> {
        Ok(())
    }

    async fn sync_all(&self, _: &[ScheduleRule], _: DateTime<Utc>) -> Result<SyncReport, StoreError> {
        Ok(SyncReport::default())
    }
}
