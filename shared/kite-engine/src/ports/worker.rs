//! The worker that runs task runs doing I/O.

use async_trait::async_trait;
use kite_core::executor::TaskResult;
use kite_core::plugin::IoJob;
use std::sync::Arc;

use super::*;

/// What a worker may use while it runs a job.
#[derive(Clone)]
pub struct WorkerContext {
    /// Stores log lines at once, while the task runs (the result's lines are stored
    /// with the result).
    pub logs: Arc<dyn LogRepository>,
    /// Output files go under the task run's prefix (`job.task_run.storage_prefix()`).
    pub files: Arc<dyn FileStorage>,
    pub clock: Arc<dyn Clock>,
    /// What the `kv` tasks read and write.
    pub kv: Arc<dyn KvStore>,
    /// Read only: the execution notifications report on an execution (their own or the
    /// one that fired their Flow trigger).
    pub executions: Arc<dyn ExecutionRepository>,
}

/// Runs task runs that do I/O (HTTP requests, ...): one module per task family.
/// The engine drops the future when the execution is killed or the task's `timeout`
/// ends, which stops the I/O; the result it returns ends the task run's attempt.
#[async_trait]
pub trait TaskWorker: Send + Sync {
    async fn run(&self, job: IoJob, context: WorkerContext) -> TaskResult;
}

/// The worker of a process that hands every task run's I/O to another process (the
/// AWS api, scheduler and stream functions queue it for the worker function), so that
/// it carries none of the task families. Its dispatcher never runs a `RunTask` item
/// here; were one to arrive, the attempt fails saying where it belongs.
pub struct NoTaskIo;

#[async_trait]
impl TaskWorker for NoTaskIo {
    async fn run(&self, job: IoJob, context: WorkerContext) -> TaskResult {
        job.task_run.failed(
            "This process does not run tasks that do I/O: they run on the worker".to_string(),
            context.clock.now(),
        )
    }
}
