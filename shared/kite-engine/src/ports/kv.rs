//! Kestra's KV store: typed values per namespace, with an optional expiry.
//!
//! Adapters take the current time from the caller, so that expiry follows the engine's
//! clock (and tests' manual clocks): a pair whose `expiration_date` is not after `now`
//! is absent for every operation, and may be overwritten even with `overwrite: false`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use kite_core::kv::{KvError, KvType, KvValue};

use super::StoreError;

/// A pair's metadata, Kestra's `KVEntry` (what listing a namespace shows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KvEntry {
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub creation_date: DateTime<Utc>,
    pub update_date: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_date: Option<DateTime<Utc>>,
}

/// A value to store, and its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct KvWrite {
    pub value: KvValue,
    pub description: Option<String>,
    pub expiration_date: Option<DateTime<Utc>>,
}

/// The KV store of every namespace.
#[async_trait]
pub trait KvStore: Send + Sync {
    /// Stores `key` in `namespace`. With `overwrite` false, a live pair makes it fail
    /// with [`StoreError::AlreadyExists`] (checked and written atomically). A rewrite
    /// keeps the pair's creation date.
    async fn put_kv(
        &self,
        namespace: &str,
        key: &str,
        write: KvWrite,
        overwrite: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The live value of `key`, `None` if absent or expired.
    async fn get_kv(
        &self,
        namespace: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<KvValue>, StoreError>;

    /// The live pairs of `namespace`, by key.
    async fn list_kv(&self, namespace: &str, now: DateTime<Utc>) -> Result<Vec<KvEntry>, StoreError>;

    /// Removes `key`; `true` if a live pair was there.
    async fn delete_kv(&self, namespace: &str, key: &str, now: DateTime<Utc>) -> Result<bool, StoreError>;
}

/// What the renders of one pass read with `kv()`: the pairs fetched before it (renders
/// are synchronous, the store is not). Fetching before every pass, not once per
/// execution, keeps `kv()` in step with the `kv` tasks: they run on the worker, so any
/// write an earlier task made is committed before the next pass starts.
pub(crate) struct PassKv {
    pub fetched: Vec<(NamespacedKey, Result<Option<KvValue>, KvError>)>,
}

/// `(namespace, key)`.
pub(crate) type NamespacedKey = (String, String);

impl kite_core::kv::KvSource for PassKv {
    fn kv(&self, namespace: &str, key: &str) -> Result<Option<KvValue>, KvError> {
        let found = self
            .fetched
            .iter()
            .find(|((ns, k), _)| ns == namespace && k == key);
        match found {
            Some((_, value)) => value.clone(),
            None => Err(KvError::Unavailable {
                namespace: namespace.to_string(),
                key: key.to_string(),
                reason: "this host reads only the keys (and namespaces) a flow names literally, as in \
                         kv('KEY') or kv('KEY', 'namespace'), not ones computed by an expression"
                    .into(),
            }),
        }
    }
}
