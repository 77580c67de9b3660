//! Ports: what the [`crate::Engine`] needs from the outside world.
//!
//! Each port is an object-safe async trait so that the local server (SQLite,
//! a folder, in-process workers) and the Lambdas (DynamoDB, S3) plug in the
//! same engine. Adapters must honour the documented guarantees; the suite in
//! `conformance` (feature `conformance`) checks them on each adapter family.
//!
//! - `flows`: Flow revisions: the flow repository and its queries.
//! - `executions`: Executions: the repository with compare-and-set transitions, and its queries.
//! - `logs`: Log lines of executions.
//! - `files`: File storage (`kestra:///` URIs).
//! - `queue`: The durable work queue, its items and the in-process fast path.
//! - `worker`: The worker that runs task runs doing I/O.
//! - `clock`: Time and fresh ids.
//! - `secrets`: What `secret('NAME')` reads.
//! - `kv`: Kestra's KV store (the `kv` tasks, `kv()`, the API).
//! - `triggers`: Trigger state and the schedule registry.

mod clock;
mod executions;
mod files;
mod flows;
mod kv;
mod logs;
mod queue;
mod secrets;
mod triggers;
mod worker;

pub use clock::*;
pub use executions::*;
pub use files::*;
pub use flows::*;
pub use kv::*;
pub use logs::*;
pub use queue::*;
pub use secrets::*;
pub use triggers::*;
pub use worker::*;

use serde::{Deserialize, Serialize};

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
    /// A [`Slot::Take`] found every running slot of the flow held.
    #[error("concurrency limit of {0} reached")]
    LimitReached(String),
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
