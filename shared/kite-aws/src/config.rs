//! Configuration of the adapters from the functions' environment (set by `template.yaml`).

use std::time::Duration;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::client::behavior_version::BehaviorVersion;
use aws_types::region::Region;
use aws_types::SdkConfig;

use crate::counter::CallCounter;

/// Errors reading the environment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Where Kite's AWS resources are and how the adapters behave.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsConfig {
    /// `TABLE_NAME`: the DynamoDB table (template.yaml's `KiteTable`).
    pub table_name: String,
    /// `BUCKET_NAME`: the S3 bucket for files and large execution bodies.
    pub bucket_name: String,
    /// `QUEUE_URL`: the SQS work queue; without it pushed work waits for a poller
    /// (`TaskQueue::lease`) or the sweeper.
    pub queue_url: Option<String>,
    /// `SCHEDULER_FUNCTION_ARN`: the target of the Schedule trigger schedules.
    pub scheduler_function_arn: Option<String>,
    /// `KITE_SCHEDULE_GROUP` (default `kite`): the EventBridge Scheduler group holding
    /// every schedule of this stack (template.yaml's `ScheduleGroup`).
    pub schedule_group: String,
    /// `KITE_SCHEDULER_ROLE_ARN`: the role EventBridge Scheduler assumes to invoke the
    /// scheduler function and to send to the dead-letter queue.
    pub scheduler_role_arn: Option<String>,
    /// `KITE_SCHEDULE_DLQ_ARN`: the SQS queue of deliveries EventBridge Scheduler gave up on.
    pub schedule_dlq_arn: Option<String>,
    /// `KITE_OUTBOX_GRACE_SECONDS` (default 120): the shortest time after a commit before
    /// the sweeper sends a claimed item whose in-process run was lost (its claim, the
    /// engine's lease, counts when longer).
    pub outbox_grace: Duration,
    /// `KITE_LOG_RETENTION_DAYS` (default 30): log items expire (DynamoDB TTL).
    pub log_retention_days: u32,
    /// `AWS_ENDPOINT_URL` set (moto, LocalStack): S3 uses path-style addressing.
    pub s3_path_style: bool,
    /// `KITE_SECRET_PREFIX` (default `kite/`): `secret('NAME')` reads the Secrets Manager
    /// secret `{prefix}NAME` (the functions may read only those).
    pub secret_prefix: String,
    /// `KITE_SECRET_TTL_SECONDS` (default 300): how long a function instance reuses a
    /// secret's value before reading it again.
    pub secret_ttl: Duration,
}

/// `KITE_SECRET_PREFIX` when unset.
pub const DEFAULT_SECRET_PREFIX: &str = "kite/";
/// `KITE_SECRET_TTL_SECONDS` when unset.
pub const DEFAULT_SECRET_TTL_SECONDS: u64 = 300;

fn var(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn number<T: std::str::FromStr>(
    name: &'static str,
    value: Option<String>,
    default: T,
) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match value {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|e: T::Err| ConfigError::Invalid {
            name,
            reason: e.to_string(),
        }),
    }
}

/// EventBridge Scheduler's rule for schedule group names.
fn valid_group(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

impl AwsConfig {
    /// Reads `TABLE_NAME`, `BUCKET_NAME` (required), `QUEUE_URL`, `SCHEDULER_FUNCTION_ARN`,
    /// `KITE_SCHEDULE_GROUP`, `KITE_SCHEDULER_ROLE_ARN`, `KITE_SCHEDULE_DLQ_ARN`,
    /// `KITE_OUTBOX_GRACE_SECONDS`, `KITE_LOG_RETENTION_DAYS`, `KITE_SECRET_PREFIX`,
    /// `KITE_SECRET_TTL_SECONDS` and whether `AWS_ENDPOINT_URL` is set.
    pub fn from_env() -> Result<AwsConfig, ConfigError> {
        AwsConfig::from_vars(var)
    }

    /// [`AwsConfig::from_env`] over any source of variables (`None`: unset or blank).
    pub fn from_vars(get: impl Fn(&'static str) -> Option<String>) -> Result<AwsConfig, ConfigError> {
        let get = |name: &'static str| get(name).filter(|v| !v.trim().is_empty());
        let schedule_group = get("KITE_SCHEDULE_GROUP").unwrap_or_else(|| "kite".to_string());
        if !valid_group(&schedule_group) {
            return Err(ConfigError::Invalid {
                name: "KITE_SCHEDULE_GROUP",
                reason: "1 to 64 characters among A-Z a-z 0-9 . - _".into(),
            });
        }
        Ok(AwsConfig {
            table_name: get("TABLE_NAME").ok_or(ConfigError::Missing("TABLE_NAME"))?,
            bucket_name: get("BUCKET_NAME").ok_or(ConfigError::Missing("BUCKET_NAME"))?,
            queue_url: get("QUEUE_URL"),
            scheduler_function_arn: get("SCHEDULER_FUNCTION_ARN"),
            schedule_group,
            scheduler_role_arn: get("KITE_SCHEDULER_ROLE_ARN"),
            schedule_dlq_arn: get("KITE_SCHEDULE_DLQ_ARN"),
            outbox_grace: Duration::from_secs(number(
                "KITE_OUTBOX_GRACE_SECONDS",
                get("KITE_OUTBOX_GRACE_SECONDS"),
                120u64,
            )?),
            log_retention_days: number("KITE_LOG_RETENTION_DAYS", get("KITE_LOG_RETENTION_DAYS"), 30u32)?,
            s3_path_style: get("AWS_ENDPOINT_URL").is_some(),
            secret_prefix: get("KITE_SECRET_PREFIX").unwrap_or_else(|| DEFAULT_SECRET_PREFIX.to_string()),
            secret_ttl: Duration::from_secs(number(
                "KITE_SECRET_TTL_SECONDS",
                get("KITE_SECRET_TTL_SECONDS"),
                DEFAULT_SECRET_TTL_SECONDS,
            )?),
        })
    }
}

/// The SDK's shared configuration from the environment as Lambda sets it: region
/// (`AWS_REGION`, else `AWS_DEFAULT_REGION`), the execution role's credentials
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) and an endpoint
/// override (`AWS_ENDPOINT_URL`, for emulators), with the HTTPS client every SDK client
/// uses: hyper with rustls on ring. No aws-config: its credential chain (profiles, SSO,
/// STS, IMDS) is dead weight in a Lambda binary and costs startup time.
pub fn sdk_config() -> SdkConfig {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
        .build_https();
    let mut config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http_client)
        .region(
            var("AWS_REGION")
                .or_else(|| var("AWS_DEFAULT_REGION"))
                .map(Region::new),
        );
    if let (Some(key), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        let credentials = Credentials::new(key, secret, var("AWS_SESSION_TOKEN"), None, "environment");
        config = config.credentials_provider(SharedCredentialsProvider::new(credentials));
    }
    if let Some(url) = var("AWS_ENDPOINT_URL") {
        config = config.endpoint_url(url);
    }
    config.build()
}

/// The SDK clients, every one with the call counter installed.
#[derive(Clone)]
pub(crate) struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub scheduler: aws_sdk_scheduler::Client,
    pub secretsmanager: aws_sdk_secretsmanager::Client,
}

impl Clients {
    pub(crate) async fn load(config: &AwsConfig, counter: CallCounter) -> Clients {
        let shared = sdk_config();
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&shared)
                .interceptor(counter.clone())
                .build(),
        );
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&shared)
                .force_path_style(config.s3_path_style)
                .interceptor(counter.clone())
                .build(),
        );
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&shared)
                .interceptor(counter.clone())
                .build(),
        );
        let scheduler = aws_sdk_scheduler::Client::from_conf(
            aws_sdk_scheduler::config::Builder::from(&shared)
                .interceptor(counter.clone())
                .build(),
        );
        let secretsmanager = aws_sdk_secretsmanager::Client::from_conf(
            aws_sdk_secretsmanager::config::Builder::from(&shared)
                .interceptor(counter)
                .build(),
        );
        Clients {
            dynamodb,
            s3,
            sqs,
            scheduler,
            secretsmanager,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<AwsConfig, ConfigError> {
        let vars: HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        AwsConfig::from_vars(|name| vars.get(name).cloned())
    }

    #[test]
    fn config_from_env_names_what_is_missing() {
        assert_eq!(from(&[]), Err(ConfigError::Missing("TABLE_NAME")));
        assert_eq!(
            from(&[("TABLE_NAME", "t"), ("BUCKET_NAME", " ")]),
            Err(ConfigError::Missing("BUCKET_NAME"))
        );
        let config = from(&[("TABLE_NAME", "t"), ("BUCKET_NAME", "b")]).unwrap();
        assert_eq!(config.schedule_group, "kite");
        assert_eq!(config.scheduler_role_arn, None);
        assert_eq!(config.schedule_dlq_arn, None);
        assert!(!config.s3_path_style);
        assert_eq!(config.secret_prefix, "kite/");
        assert_eq!(config.secret_ttl, Duration::from_secs(300));
    }

    #[test]
    fn schedule_group_names_follow_eventbridge_scheduler() {
        let with = |group: &str| {
            from(&[
                ("TABLE_NAME", "t"),
                ("BUCKET_NAME", "b"),
                ("KITE_SCHEDULE_GROUP", group),
            ])
        };
        assert_eq!(
            with("prod-Kite_1.2").map(|c| c.schedule_group),
            Ok("prod-Kite_1.2".to_string())
        );
        assert!(matches!(
            with("a/b"),
            Err(ConfigError::Invalid {
                name: "KITE_SCHEDULE_GROUP",
                ..
            })
        ));
        assert!(with(&"g".repeat(65)).is_err());
        let numbers = from(&[
            ("TABLE_NAME", "t"),
            ("BUCKET_NAME", "b"),
            ("KITE_LOG_RETENTION_DAYS", "x"),
        ]);
        assert!(matches!(
            numbers,
            Err(ConfigError::Invalid {
                name: "KITE_LOG_RETENTION_DAYS",
                ..
            })
        ));
    }
}
