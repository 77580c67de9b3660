//! Secrets for `secret('NAME')`.
//!
//! Rendering is synchronous in the core while a secret store may answer over the network:
//! before a pass the engine fetches the names the flow's source spells out
//! (`secret('NAME')`), and a name computed while rendering is asked of
//! [`SecretStore::now`], which only stores that hold their secrets in memory answer.

use std::sync::Arc;

use async_trait::async_trait;

pub use kite_core::secret::{EnvironmentSecrets, SecretError, SecretSource};

/// Where `secret()` values come from.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// The value of the secret `name`.
    async fn fetch(&self, name: &str) -> Result<String, SecretError>;

    /// The value of `name` without waiting, or `None` when this store cannot answer
    /// without I/O (then only names fetched before the pass render).
    fn now(&self, _name: &str) -> Option<Result<String, SecretError>> {
        None
    }
}

/// A store without secrets: every `secret()` fails with Kestra's "cannot find".
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSecrets;

#[async_trait]
impl SecretStore for NoSecrets {
    async fn fetch(&self, name: &str) -> Result<String, SecretError> {
        Err(SecretError::NotFound(name.to_string()))
    }

    fn now(&self, name: &str) -> Option<Result<String, SecretError>> {
        Some(Err(SecretError::NotFound(name.to_string())))
    }
}

/// Secrets already in memory (Kestra OSS's `SECRET_<NAME>` variables, read once at
/// startup into an [`EnvironmentSecrets`]): every name answers at once, computed or not.
#[derive(Clone)]
pub struct InMemorySecrets(pub Arc<dyn SecretSource>);

#[async_trait]
impl SecretStore for InMemorySecrets {
    async fn fetch(&self, name: &str) -> Result<String, SecretError> {
        self.0.secret(name)
    }

    fn now(&self, name: &str) -> Option<Result<String, SecretError>> {
        Some(self.0.secret(name))
    }
}

/// What the renders of one pass read: the secrets fetched before it, else the store's
/// immediate answer.
pub(crate) struct PassSecrets {
    pub fetched: Vec<(String, Result<String, SecretError>)>,
    pub store: Arc<dyn SecretStore>,
}

impl SecretSource for PassSecrets {
    fn secret(&self, key: &str) -> Result<String, SecretError> {
        if let Some((_, value)) = self.fetched.iter().find(|(name, _)| name == key) {
            return value.clone();
        }
        self.store.now(key).unwrap_or_else(|| {
            Err(SecretError::Unavailable {
                key: key.to_string(),
                reason: "this host reads only the secrets a flow names literally, as in \
                         secret('NAME'), not names computed by an expression"
                    .into(),
            })
        })
    }
}
