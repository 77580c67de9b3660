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
//! - [`mail`]: emails over SMTP
//! - [`execution_notifications`]: messages about an execution, read from the store
//! - [`aws`]: Kestra's AWS tasks, with the AWS SDK's clients (built on first use)
//! - [`logs`]: an execution's log lines (`log.Fetch`), through the engine's log repository
//! - [`script`]: script tasks, run as processes on this host
//! - [`serdes`]: file conversions (CSV, JSON, Ion), streamed through the file storage
//! - [`sql`]: SQL queries (PostgreSQL, SQLite), rows streamed to outputs or Ion files

pub mod aws;
pub mod execution_notifications;
pub mod http;
pub mod kv;
pub mod logs;
pub mod mail;
pub mod namespace_files;
pub mod script;
pub mod serdes;
pub mod sql;
pub mod storage;

use std::sync::Arc;

use async_trait::async_trait;
use kite_core::executor::TaskResult;
use kite_core::plugin::{IoAnswer, IoCall, IoJob};
use kite_engine::ports::{TaskWorker, WorkerContext};

/// Runs every task family Kite knows in this process.
#[derive(Clone)]
pub struct InProcessWorker {
    http: http::HttpClient,
    aws: Arc<aws::AwsClients>,
    scripts: Arc<script::ScriptConfig>,
    sql: Arc<sql::SqlClients>,
}

impl InProcessWorker {
    pub fn new() -> InProcessWorker {
        InProcessWorker {
            http: http::HttpClient::new(),
            aws: Arc::new(aws::AwsClients::new()),
            scripts: Arc::default(),
            sql: Arc::default(),
        }
    }

    /// The same worker with its AWS tasks' calls also going through `interceptor` (the
    /// AWS host counts every call an invocation makes, its adapters' and its tasks').
    pub fn with_aws_interceptor(
        self,
        interceptor: aws_smithy_runtime_api::client::interceptors::SharedInterceptor,
    ) -> InProcessWorker {
        InProcessWorker {
            aws: Arc::new(aws::AwsClients::with_interceptor(interceptor)),
            ..self
        }
    }

    /// The same worker with these settings for script tasks.
    pub fn with_scripts(self, config: script::ScriptConfig) -> InProcessWorker {
        InProcessWorker {
            scripts: Arc::new(config),
            ..self
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
        // Where the task run's files go, and which it may read.
        let prefix = job.task_run.storage_prefix();
        let scope = storage::Scope {
            files: &context.files,
            prefix: &prefix,
            readable: &job.readable_prefixes,
            now: context.clock.now(),
        };
        let answer = match &job.call {
            IoCall::Http(call) => IoAnswer::Http(self.http.send(call, &context.files, &prefix).await),
            IoCall::Kv(call) => IoAnswer::Kv(kv::run(context.kv.as_ref(), call, context.clock.now()).await),
            IoCall::Storage(call) => IoAnswer::Storage(storage::run(&scope, call).await),
            IoCall::Serdes(call) => IoAnswer::Serdes(serdes::run(&scope, call).await),
            IoCall::Sql(call) => IoAnswer::Sql(sql::run(&self.sql, call, &scope).await),
            IoCall::NamespaceFiles(call) => IoAnswer::NamespaceFiles(
                namespace_files::run(context.files.as_ref(), call, &job.task_run).await,
            ),
            IoCall::Mail(call) => IoAnswer::Mail(mail::send(call, context.files.as_ref()).await),
            IoCall::ExecutionNotification(call) => IoAnswer::ExecutionNotification(
                execution_notifications::run(call, &job, &context, &self.http).await,
            ),
            IoCall::Aws(call) => {
                let scope = aws::Scope {
                    files: context.files.as_ref(),
                    prefix: &prefix,
                    readable: &job.readable_prefixes,
                };
                IoAnswer::Aws(aws::run(&self.aws, call, &scope).await)
            }
            IoCall::Logs(call) => {
                IoAnswer::Logs(logs::run(context.logs.as_ref(), context.files.as_ref(), call, &prefix).await)
            }
            IoCall::Script(call) => IoAnswer::Script(script::run(call, &job, &context, &self.scripts).await),
        };
        job.finish(answer, context.clock.now())
    }
}
