//! The durable work queue, its items and the in-process fast path.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use kite_core::execution::StateType;
use kite_core::executor::{Timer, TimerKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

use super::*;

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
    /// Fail the execution: its work crashed the process again and again (never queued,
    /// see [`crate::Engine::recover`]).
    GiveUp {
        reason: String,
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

/// What [`TaskQueue::release_leases`] found at start-up.
#[derive(Debug, Default)]
pub struct Released {
    /// Items made visible again.
    pub released: u64,
    /// Items in hand at `crash_limit` deaths of the process, each with that count: running
    /// them again would likely kill this process too.
    pub crashed: Vec<(WorkItem, u32)>,
}

/// The queue ids are derived from what the item is for, so that pushing the same work
/// twice (a retried step, a redelivered event) leaves one item.
impl Work {
    /// What the work is, in words for a log line.
    pub fn name(&self) -> &'static str {
        match self {
            Work::Start => "start",
            Work::RunTask { .. } => "task run",
            Work::Timer { .. } => "timer",
            Work::SubflowEnded { .. } => "subflow end",
            Work::Kill => "kill",
            Work::Resume { .. } => "resume",
            Work::Triggers { .. } => "flow triggers",
            Work::GiveUp { .. } => "give-up",
        }
    }
}

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
    /// At start-up of the only consumer: every item still leased was in the hands of a
    /// process that died. Counts that death against each one; those that have now been in
    /// hand at `crash_limit` deaths stay leased and are returned, the others become visible.
    async fn release_leases(&self, crash_limit: u32) -> Result<Released, StoreError>;
    /// Claims the I/O of a task run attempt (`run_id`, its work item's id) until `until`:
    /// `true` for the first claimant, or when the earlier claim ended before `now` (its
    /// holder died); `false` while another holds it. A duplicate delivery of the same item
    /// (SQS delivers at least once) then finds the claim and does not make the I/O again.
    async fn claim_run(
        &self,
        run_id: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
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

/// Runs work in this process right away (the fast path after a durable write).
pub trait Dispatcher: Send + Sync {
    /// Whether this process runs `work` itself; what it does not run goes through the
    /// queue at once (on AWS: a task run's I/O goes to the worker function).
    fn runs(&self, work: &Work) -> bool {
        let _ = work;
        true
    }
    /// Items already durably queued and claimed, due now.
    fn dispatch(&self, items: Vec<WorkItem>);
    /// A timer was queued for `due`: wake the timer loop if it sleeps past it.
    fn wake_at(&self, due: DateTime<Utc>);
}
