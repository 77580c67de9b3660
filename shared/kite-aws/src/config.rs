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
    /// `SCHEDULER_FUNCTION_ARN`: the target of Schedule trigger rules.
    pub scheduler_function_arn: Option<String>,
    /// `KITE_RULE_PREFIX` (default `kite`): EventBridge rule names start with it, so
    /// two stacks in one account keep apart.
    pub rule_prefix: String,
    /// `KITE_OUTBOX_GRACE_SECONDS` (default 120): the shortest time after a commit before
    /// the sweeper sends a claimed item whose in-process run was lost (its claim, the
    /// engine's lease, counts when longer).
    pub outbox_grace: Duration,
    /// `KITE_LOG_RETENTION_DAYS` (default 30): log items expire (DynamoDB TTL).
    pub log_retention_days: u32,
    /// `AWS_ENDPOINT_URL` set (moto, LocalStack): S3 uses path-style addressing.
    pub s3_path_style: bool,
}

fn var(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn number<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match var(name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|e: T::Err| ConfigError::Invalid {
            name,
            reason: e.to_string(),
        }),
    }
}

impl AwsConfig {
    /// Reads `TABLE_NAME`, `BUCKET_NAME` (required), `QUEUE_URL`, `SCHEDULER_FUNCTION_ARN`,
    /// `KITE_RULE_PREFIX`, `KITE_OUTBOX_GRACE_SECONDS`, `KITE_LOG_RETENTION_DAYS` and
    /// whether `AWS_ENDPOINT_URL` is set.
    pub fn from_env() -> Result<AwsConfig, ConfigError> {
        let rule_prefix = var("KITE_RULE_PREFIX").unwrap_or_else(|| "kite".to_string());
        if rule_prefix.len() > 16
            || !rule_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return Err(ConfigError::Invalid {
                name: "KITE_RULE_PREFIX",
                reason: "at most 16 characters among A-Z a-z 0-9 . - _".into(),
            });
        }
        Ok(AwsConfig {
            table_name: var("TABLE_NAME").ok_or(ConfigError::Missing("TABLE_NAME"))?,
            bucket_name: var("BUCKET_NAME").ok_or(ConfigError::Missing("BUCKET_NAME"))?,
            queue_url: var("QUEUE_URL"),
            scheduler_function_arn: var("SCHEDULER_FUNCTION_ARN"),
            rule_prefix,
            outbox_grace: Duration::from_secs(number("KITE_OUTBOX_GRACE_SECONDS", 120u64)?),
            log_retention_days: number("KITE_LOG_RETENTION_DAYS", 30u32)?,
            s3_path_style: var("AWS_ENDPOINT_URL").is_some(),
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
    pub eventbridge: aws_sdk_eventbridge::Client,
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
        let eventbridge = aws_sdk_eventbridge::Client::from_conf(
            aws_sdk_eventbridge::config::Builder::from(&shared)
                .interceptor(counter)
                .build(),
        );
        Clients {
            dynamodb,
            s3,
            sqs,
            eventbridge,
        }
    }
}
