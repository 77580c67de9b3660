//! Kite's AWS adapters: the engine's ports over DynamoDB (flows, executions, logs,
//! trigger state and the work outbox), S3 (files), SQS (dispatch) and EventBridge
//! Scheduler (Schedule triggers). The Lambda functions call [`AwsConfig::from_env`] and
//! [`aws_ports`] (or [`aws_adapters`] when they also need the sweeper or the
//! stream decoding) and hand the result to the engine.
//!
//! The key design is documented in `docs/aws.md`, section "Storage".

pub mod config;
pub mod counter;
pub mod files;
pub mod flow_secrets;
mod items;
pub mod provision;
pub mod schedules;
pub mod secrets;
pub mod store;
pub mod table;

use std::sync::Arc;

use std::collections::BTreeMap;

use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;
use kite_engine::ports::{NoTaskIo, RandomIds, SystemClock, TaskWorker};
use kite_engine::{Engine, EngineConfig, Ports};

pub use config::{AwsConfig, ConfigError};
pub use counter::CallCounter;
pub use files::S3FileStorage;
pub use flow_secrets::SecretsManagerSecrets;
pub use schedules::{schedule_name, SchedulerSchedules};
pub use store::{sweep_outbox, AwsStore, SearchBudget, SweepReport};

/// Every AWS adapter of one configuration, sharing the SDK clients.
#[derive(Clone)]
pub struct AwsAdapters {
    pub store: Arc<AwsStore>,
    pub files: Arc<S3FileStorage>,
    pub schedules: Arc<SchedulerSchedules>,
    /// What `secret()` reads: Secrets Manager under the configured prefix.
    pub secrets: Arc<SecretsManagerSecrets>,
    /// Makes the task runs' I/O: [`NoTaskIo`] unless [`AwsAdapters::with_worker`] gave one
    /// (only the worker function runs it; the others queue it, and carry no task family).
    pub worker: Arc<dyn TaskWorker>,
}

/// What every function starts with: the adapters of [`AwsConfig::from_env`] and an
/// engine over them, which queues task runs' I/O for the worker function.
pub async fn engine_from_env(engine_config: EngineConfig) -> Result<(Engine, AwsAdapters), ConfigError> {
    let config = AwsConfig::from_env()?;
    let adapters = aws_adapters(&config).await;
    Ok((Engine::new(adapters.ports(), engine_config), adapters))
}

/// The worker function's start: [`engine_from_env`] with `worker` making the I/O.
pub async fn worker_engine_from_env(
    engine_config: EngineConfig,
    worker: Arc<dyn TaskWorker>,
) -> Result<(Engine, AwsAdapters), ConfigError> {
    let config = AwsConfig::from_env()?;
    let adapters = aws_adapters(&config).await.with_worker(worker);
    Ok((Engine::new(adapters.ports(), engine_config), adapters))
}

/// What counts the calls of this process's AWS clients, for a worker's AWS tasks' clients.
pub fn call_counter_interceptor() -> SharedInterceptor {
    SharedInterceptor::new(CallCounter::global().clone())
}

/// Billable AWS calls of this process so far (the functions log them per invocation).
pub fn calls_so_far() -> BTreeMap<String, u64> {
    CallCounter::global().snapshot()
}

/// Builds the SDK clients (credentials, region and `AWS_ENDPOINT_URL` from the
/// environment, every client counted by [`CallCounter::global`]) and the adapters.
pub async fn aws_adapters(config: &AwsConfig) -> AwsAdapters {
    aws_adapters_counted(config, CallCounter::global().clone()).await
}

/// Like [`aws_adapters`], counting calls in `counter` (a benchmark of one execution).
pub async fn aws_adapters_counted(config: &AwsConfig, counter: CallCounter) -> AwsAdapters {
    let clients = config::Clients::load(config, counter).await;
    let files = Arc::new(S3FileStorage::new(clients.s3.clone(), config.bucket_name.clone()));
    let store = Arc::new(AwsStore::new(
        clients.dynamodb.clone(),
        clients.sqs.clone(),
        files.clone(),
        config,
    ));
    let schedules = Arc::new(SchedulerSchedules::new(
        clients.scheduler.clone(),
        config.schedule_group.clone(),
        config.scheduler_function_arn.clone(),
        config.scheduler_role_arn.clone(),
        config.schedule_dlq_arn.clone(),
    ));
    let secrets = Arc::new(SecretsManagerSecrets::new(
        clients.secretsmanager.clone(),
        config.secret_prefix.clone(),
        config.secret_ttl,
    ));
    AwsAdapters {
        store,
        files,
        schedules,
        secrets,
        worker: Arc::new(NoTaskIo),
    }
}

/// The engine's ports on AWS.
pub async fn aws_ports(config: &AwsConfig) -> Ports {
    aws_adapters(config).await.ports()
}

impl AwsAdapters {
    /// The same adapters, with `worker` making the task runs' I/O.
    pub fn with_worker(self, worker: Arc<dyn TaskWorker>) -> AwsAdapters {
        AwsAdapters { worker, ..self }
    }

    /// The engine's ports over these adapters.
    pub fn ports(&self) -> Ports {
        Ports {
            flows: self.store.clone(),
            executions: self.store.clone(),
            logs: self.store.clone(),
            files: self.files.clone(),
            queue: self.store.clone(),
            clock: Arc::new(SystemClock),
            ids: Arc::new(RandomIds),
            triggers: self.store.clone(),
            kv: self.store.clone(),
            schedules: self.schedules.clone(),
            worker: self.worker.clone(),
            secrets: self.secrets.clone(),
        }
    }
}
