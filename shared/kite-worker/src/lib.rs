//! The in-process implementation of the engine's [`TaskWorker`] port: runs the task
//! runs that do I/O, in the process that leased them (the local server's pool, the
//! worker Lambda). One module per task family; [`InProcessWorker::run`] is the one
//! place that routes a job to its module.
//!
//! - [`http`]: HTTP requests (`io.kestra.plugin.core.http.Request`)

pub mod http;

use async_trait::async_trait;
use kite_core::executor::TaskResult;
use kite_core::task::{IoCall, IoJob};
use kite_engine::ports::{TaskWorker, WorkerContext};

/// Runs every task family Kite knows in this process.
#[derive(Clone)]
pub struct InProcessWorker {
    http: http::HttpClient,
}

impl InProcessWorker {
    pub fn new() -> InProcessWorker {
        InProcessWorker {
            http: http::HttpClient::new(),
        }
    }
}

impl Default for InProcessWorker {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl TaskWorker for InProcessWorker {
    async fn run(&self, job: IoJob, context: WorkerContext) -> TaskResult {
        match &job.call {
            IoCall::Http(call) => {
                let response = self.http.send(call).await;
                kite_core::task::http::finish(call, &job.task_run, response, context.clock.now())
            }
        }
    }
}
