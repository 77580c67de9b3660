//! What the API asks of the KV store: Kestra's key rule and messages over the port,
//! with expiry on the engine's clock.

use kite_core::kv::validate_key;

use super::Engine;
use crate::error::EngineError;
use crate::ports::{KvEntry, KvValue, KvWrite};

impl Engine {
    /// The live pairs of `namespace`, by key.
    pub async fn kv_list(&self, namespace: &str) -> Result<Vec<KvEntry>, EngineError> {
        Ok(self.inner.ports.kv.list_kv(namespace, self.now()).await?)
    }

    /// The value of `key`; 404 with Kestra's message when it is absent or expired.
    pub async fn kv_get(&self, namespace: &str, key: &str) -> Result<KvValue, EngineError> {
        checked(key)?;
        self.inner
            .ports
            .kv
            .get_kv(namespace, key, self.now())
            .await?
            .ok_or_else(|| {
                EngineError::NotFound(format!(
                    "No value found for key '{key}' in namespace '{namespace}'"
                ))
            })
    }

    /// Stores `key`, overwriting it; `ttl` from now.
    pub async fn kv_put(
        &self,
        namespace: &str,
        key: &str,
        value: KvValue,
        description: Option<String>,
        ttl: Option<chrono::Duration>,
    ) -> Result<(), EngineError> {
        checked(key)?;
        let now = self.now();
        let write = KvWrite {
            value,
            description,
            expiration_date: ttl.map(|ttl| now + ttl),
        };
        Ok(self
            .inner
            .ports
            .kv
            .put_kv(namespace, key, write, true, now)
            .await?)
    }

    /// Removes `key`; `false` when there was no live pair.
    pub async fn kv_delete(&self, namespace: &str, key: &str) -> Result<bool, EngineError> {
        checked(key)?;
        Ok(self.inner.ports.kv.delete_kv(namespace, key, self.now()).await?)
    }
}

fn checked(key: &str) -> Result<(), EngineError> {
    validate_key(key).map_err(|e| EngineError::IllegalArgument(e.to_string()))
}
