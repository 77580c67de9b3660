//! The in-process implementation of the engine's [`TaskWorker`] port: makes the I/O
//! calls of the task runs that do I/O, in the process that leased them (the local
//! server's pool, the worker Lambda). One module per kind of call
//! ([`kite_core::plugin::IoCall`]); [`InProcessWorker::run`] is the one place that routes
//! a call to its module. The task types themselves live in `kite_core::plugin`.
//!
//! - [`http`]: HTTP requests
//! - [`kv`]: the KV store, through the engine's port (given in the [`WorkerContext`])
//! - [`storage`]: internal storage files, through the engine's file storage port
//! - [`namespace_files`]: namespace files, over the file storage
//! - [`serdes`]: file conversions (CSV, JSON, Ion), streamed through the file storage

pub mod http;
pub mod kv;
pub mod namespace_files;
pub mod serdes;
pub mod storage;

use async_trait::async_trait;
use kite_core::executor::TaskResult;
use kite_core::plugin::{IoAnswer, IoCall, IoJob};
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
        let answer = match &job.call {
            IoCall::Http(call) => {
                let prefix = job.task_run.storage_prefix();
                IoAnswer::Http(self.http.send(call, &context.files, &prefix).await)
            }
            IoCall::Kv(call) => IoAnswer::Kv(kv::run(context.kv.as_ref(), call, context.clock.now()).await),
            IoCall::Storage(call) => {
                let prefix = job.task_run.storage_prefix();
                let scope = storage::Scope {
                    files: &context.files,
                    prefix: &prefix,
                    readable: &job.readable_prefixes,
                    now: context.clock.now(),
                };
                IoAnswer::Storage(storage::run(&scope, call).await)
            }
            IoCall::Serdes(call) => {
                let prefix = job.task_run.storage_prefix();
                let scope = storage::Scope {
                    files: &context.files,
                    prefix: &prefix,
                    readable: &job.readable_prefixes,
                    now: context.clock.now(),
                };
                IoAnswer::Serdes(serdes::run(&scope, call).await)
            }
            IoCall::NamespaceFiles(call) => IoAnswer::NamespaceFiles(
                namespace_files::run(context.files.as_ref(), call, &job.task_run).await,
            ),
        };
        job.finish(answer, context.clock.now())
    }
}
