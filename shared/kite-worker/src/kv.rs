//! The `kv` tasks' calls, made through the engine's KV store port with the worker's clock
//! (a `ttl` counts from when the pair is written).

use kite_core::kv::KvError;
use kite_core::plugin::kv::{KvAnswer, KvCall};
use kite_engine::ports::{KvStore, KvWrite, StoreError};

/// Makes `call` on `store` at `now`.
pub async fn run(
    store: &dyn KvStore,
    call: &KvCall,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<KvAnswer, KvError> {
    let unavailable = |namespace: &str, key: &str| {
        let (namespace, key) = (namespace.to_string(), key.to_string());
        move |e: StoreError| match e {
            StoreError::AlreadyExists(_) => KvError::AlreadyExists(key),
            other => KvError::Unavailable {
                namespace,
                key,
                reason: other.to_string(),
            },
        }
    };
    match call {
        KvCall::Set {
            namespace,
            key,
            value,
            overwrite,
            ttl,
            description,
        } => {
            let write = KvWrite {
                value: value.clone(),
                description: description.clone(),
                expiration_date: ttl.map(|ttl| now + ttl),
            };
            store
                .put_kv(namespace, key, write, *overwrite, now)
                .await
                .map_err(unavailable(namespace, key))?;
            Ok(KvAnswer::Set)
        }
        KvCall::Get { namespace, key, .. } => store
            .get_kv(namespace, key, now)
            .await
            .map(KvAnswer::Value)
            .map_err(unavailable(namespace, key)),
        KvCall::GetKeys { namespace, prefix } => {
            let entries = store
                .list_kv(namespace, now)
                .await
                .map_err(unavailable(namespace, ""))?;
            let keys = entries
                .into_iter()
                .map(|e| e.key)
                .filter(|k| prefix.as_deref().is_none_or(|p| k.starts_with(p)))
                .collect();
            Ok(KvAnswer::Keys(keys))
        }
        KvCall::Delete { namespace, key, .. } => store
            .delete_kv(namespace, key, now)
            .await
            .map(KvAnswer::Deleted)
            .map_err(unavailable(namespace, key)),
    }
}
