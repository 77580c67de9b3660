//! Log lines of executions.

use async_trait::async_trait;
use kite_core::execution::{LogEntry, LogLevel};

use super::*;

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
