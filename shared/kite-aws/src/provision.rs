//! Creates Kite's resources in an emulator (moto) the way template.yaml declares them:
//! the table from the template's `KiteTable`, a bucket, a queue and a schedule group.
//! Tests use it; a real deployment uses `sam deploy`.

use crate::config::{AwsConfig, Clients};
use crate::counter::CallCounter;
use crate::table::{TableDefinition, TableError};

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("cannot create {what}: {message}")]
    Create { what: &'static str, message: String },
}

fn failed(what: &'static str) -> impl Fn(String) -> ProvisionError {
    move |message| ProvisionError::Create { what, message }
}

/// Creates the table `table`, the bucket `bucket`, (with `queue`) an SQS queue and the
/// EventBridge Scheduler group `group`, returning the configuration that points the
/// adapters at them.
pub async fn provision(
    table: &str,
    bucket: &str,
    queue: Option<&str>,
    group: &str,
) -> Result<AwsConfig, ProvisionError> {
    let mut config = AwsConfig {
        table_name: table.to_string(),
        bucket_name: bucket.to_string(),
        queue_url: None,
        scheduler_function_arn: None,
        schedule_group: group.to_string(),
        scheduler_role_arn: None,
        schedule_dlq_arn: None,
        outbox_grace: std::time::Duration::from_secs(120),
        log_retention_days: 30,
        s3_path_style: true,
        secret_prefix: crate::config::DEFAULT_SECRET_PREFIX.to_string(),
        secret_ttl: std::time::Duration::from_secs(crate::config::DEFAULT_SECRET_TTL_SECONDS),
    };
    let clients = Clients::load(&config, CallCounter::default()).await;
    TableDefinition::kite()?.create(&clients.dynamodb, table).await?;
    clients
        .s3
        .create_bucket()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| failed("the bucket")(crate::items::sdk(e).to_string()))?;
    clients
        .scheduler
        .create_schedule_group()
        .name(group)
        .send()
        .await
        .map_err(|e| failed("the schedule group")(crate::items::sdk(e).to_string()))?;
    if let Some(name) = queue {
        let out = clients
            .sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .map_err(|e| failed("the queue")(crate::items::sdk(e).to_string()))?;
        config.queue_url = out.queue_url;
    }
    Ok(config)
}
