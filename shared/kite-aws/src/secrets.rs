//! The stack's secret (template.yaml's `KiteSecrets`): the management API's credentials
//! and the key of SECRET inputs, read once per function instance from Secrets Manager
//! so that they never sit in the functions' environment.

use crate::config::{sdk_config, ConfigError};
use crate::counter::CallCounter;

/// The variable naming the secret (its ARN or name).
pub const SECRETS_ARN: &str = "KITE_SECRETS_ARN";

/// The secret's JSON text, or `None` when `KITE_SECRETS_ARN` is unset (tests and local
/// runs give the values as environment variables instead).
pub async fn load_from_env() -> Result<Option<String>, ConfigError> {
    let Some(arn) = std::env::var(SECRETS_ARN).ok().filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    load(&arn).await.map(Some)
}

/// Reads the current version of the secret `arn`.
pub async fn load(arn: &str) -> Result<String, ConfigError> {
    let shared = sdk_config();
    let client = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(&shared)
            .interceptor(CallCounter::global().clone())
            .build(),
    );
    let answer = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| ConfigError::Invalid {
            name: SECRETS_ARN,
            reason: format!("cannot read the secret: {}", crate::items::describe(&e)),
        })?;
    answer
        .secret_string()
        .map(str::to_string)
        .ok_or(ConfigError::Invalid {
            name: SECRETS_ARN,
            reason: "the secret holds no text (SecretString)".into(),
        })
}
