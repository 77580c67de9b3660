//! `secret('NAME')` on AWS: the Secrets Manager secret `{KITE_SECRET_PREFIX}NAME`
//! (default prefix `kite/`), its text as is (not base64, unlike the local `SECRET_*`
//! variables). Values are cached per function instance for `KITE_SECRET_TTL_SECONDS`,
//! so a warm instance does not pay a Secrets Manager call per step.
//!
//! Only names a flow spells out (`secret('NAME')`) are fetched, before each pass:
//! a name computed by an expression cannot be, since rendering does not wait for I/O.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use kite_engine::ports::{SecretError, SecretStore};

/// Cached answers kept at most (names come from flows: a handful each).
const CACHE_LIMIT: usize = 1_000;

/// When a secret was fetched, and its value or why it has none.
type Fetched = (Instant, Result<String, SecretError>);

/// Flow secrets in AWS Secrets Manager.
pub struct SecretsManagerSecrets {
    client: aws_sdk_secretsmanager::Client,
    prefix: String,
    ttl: Duration,
    /// Name → when fetched and what came back (a missing secret is remembered too).
    cache: Mutex<HashMap<String, Fetched>>,
}

impl SecretsManagerSecrets {
    pub fn new(client: aws_sdk_secretsmanager::Client, prefix: String, ttl: Duration) -> Self {
        SecretsManagerSecrets {
            client,
            prefix,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The prefix of the secrets read (`KITE_SECRET_PREFIX`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The secret id a name maps to.
    pub fn secret_id(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn cached(&self, name: &str) -> Option<Result<String, SecretError>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(name)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, value)| value.clone())
    }

    fn remember(&self, name: &str, value: &Result<String, SecretError>) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(name.to_string(), (Instant::now(), value.clone()));
    }
}

#[async_trait]
impl SecretStore for SecretsManagerSecrets {
    async fn fetch(&self, name: &str) -> Result<String, SecretError> {
        if let Some(hit) = self.cached(name) {
            return hit;
        }
        let answer = self
            .client
            .get_secret_value()
            .secret_id(self.secret_id(name))
            .send()
            .await;
        let value = match answer {
            Ok(out) => match (out.secret_string(), out.secret_binary()) {
                (Some(text), _) => Ok(text.to_string()),
                (None, Some(bytes)) => {
                    String::from_utf8(bytes.as_ref().to_vec()).map_err(|_| SecretError::Unavailable {
                        key: name.to_string(),
                        reason: "the secret's binary value is not UTF-8 text".into(),
                    })
                }
                (None, None) => Err(SecretError::NotFound(name.to_string())),
            },
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Err(SecretError::NotFound(name.to_string()))
            }
            // Not cached: throttling or a network error may pass.
            Err(e) => {
                return Err(SecretError::Unavailable {
                    key: name.to_string(),
                    reason: crate::items::describe(&e),
                })
            }
        };
        self.remember(name, &value);
        value
    }
}
