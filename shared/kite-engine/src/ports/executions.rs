//! Executions: the repository with compare-and-set transitions, and its queries.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kite_core::execution::{Execution, Label, LogEntry, StateType};

use super::*;

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
    /// What this step does with its flow's `concurrency.limit` slots, if it has one.
    pub slot: Option<Slot>,
}

/// A step's use of the running slots of its execution's flow (`concurrency.limit`).
/// It is written in the same atomic write as the state change it goes with, so a crash
/// can never leave a slot held by an ended execution, nor a running one without its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The execution starts: it takes a slot, unless `limit` are held by other executions
    /// ([`StoreError::LimitReached`]). Taking a slot it already holds succeeds.
    Take { limit: u32 },
    /// The execution starts and ends in this step: checked like [`Slot::Take`], but no
    /// slot is held afterwards.
    Check { limit: u32 },
    /// The execution waits (QUEUED) because `limit` slots are held: written only if they
    /// still are, else [`StoreError::Conflict`] (one came free meanwhile: redo the step).
    Wait { limit: u32 },
    /// The execution ended: the slot it held, if any, is free again.
    Release,
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

    /// The newest execution (by start date) of the flow `flow_id` of exactly `namespace`.
    /// By default a search, paging past the sub-namespaces' executions its namespace
    /// filter also matches; a store with an index on (namespace, flow, start date)
    /// answers it with one lookup.
    async fn latest_of_flow(&self, namespace: &str, flow_id: &str) -> Result<Option<Execution>, StoreError> {
        const SIZE: u32 = 25;
        for page in 1..=LATEST_PAGES {
            let found = self
                .search(&ExecutionQuery {
                    namespace: Some(namespace.to_string()),
                    flow_id: Some(flow_id.to_string()),
                    pagination: Pagination { page, size: SIZE },
                    ..Default::default()
                })
                .await?;
            let full = found.results.len() == SIZE as usize;
            if let Some(e) = found.results.into_iter().find(|e| e.namespace == namespace) {
                return Ok(Some(e));
            }
            if !full {
                break;
            }
        }
        Ok(None)
    }
}

/// How many pages of sub-namespace executions [`ExecutionRepository::latest_of_flow`]
/// reads past before it says there is none.
const LATEST_PAGES: u32 = 8;
