//! [`KvStore`] on SQLite: one row of `kv` per (namespace, key), the value's JSON and its
//! type. Expired rows are left out of every read and removed by the next write to their
//! namespace.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kite_engine::ports::{KvEntry, KvStore, KvType, KvValue, KvWrite, StoreError};
use rusqlite::{params, OptionalExtension};

use super::{backend, from_ms, ms, SqliteStore};

fn kv_type(name: &str) -> Result<KvType, StoreError> {
    KvType::parse(name).ok_or_else(|| StoreError::Backend(format!("unknown KV type {name}")))
}

#[async_trait]
impl KvStore for SqliteStore {
    async fn put_kv(
        &self,
        namespace: &str,
        key: &str,
        write: KvWrite,
        overwrite: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let value = serde_json::to_string(&write.value.value).map_err(backend)?;
        let (namespace, key) = (namespace.to_string(), key.to_string());
        self.write(move |conn| {
            let tx = conn.transaction().map_err(backend)?;
            // An expired pair is absent: dropping it first lets `overwrite: false` set it.
            tx.execute(
                "DELETE FROM kv WHERE namespace = ?1 AND expires IS NOT NULL AND expires <= ?2",
                params![namespace, ms(now)],
            )
            .map_err(backend)?;
            // The upsert's WHERE makes the check and the write one statement.
            let changed = tx
                .execute(
                    "INSERT INTO kv (namespace, key, type, value, description, created, updated, expires)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)
                     ON CONFLICT (namespace, key) DO UPDATE SET type = excluded.type,
                         value = excluded.value, description = excluded.description,
                         updated = excluded.updated, expires = excluded.expires
                     WHERE ?8",
                    params![
                        namespace,
                        key,
                        write.value.kind.as_str(),
                        value,
                        write.description,
                        ms(now),
                        write.expiration_date.map(ms),
                        overwrite
                    ],
                )
                .map_err(backend)?;
            if changed == 0 {
                return Err(StoreError::AlreadyExists(format!("KV pair {namespace}/{key}")));
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn get_kv(
        &self,
        namespace: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<KvValue>, StoreError> {
        let (namespace, key) = (namespace.to_string(), key.to_string());
        self.read(move |conn| {
            let row: Option<(String, String)> = conn
                .prepare_cached(
                    "SELECT type, value FROM kv
                     WHERE namespace = ?1 AND key = ?2 AND (expires IS NULL OR expires > ?3)",
                )
                .and_then(|mut st| {
                    st.query_row(params![namespace, key, ms(now)], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                })
                .map_err(backend)?;
            row.map(|(kind, value)| {
                Ok(KvValue::new(
                    kv_type(&kind)?,
                    serde_json::from_str(&value).map_err(backend)?,
                ))
            })
            .transpose()
        })
        .await
    }

    async fn list_kv(&self, namespace: &str, now: DateTime<Utc>) -> Result<Vec<KvEntry>, StoreError> {
        let namespace = namespace.to_string();
        self.read(move |conn| {
            let mut st = conn
                .prepare_cached(
                    "SELECT key, description, created, updated, expires FROM kv
                     WHERE namespace = ?1 AND (expires IS NULL OR expires > ?2) ORDER BY key",
                )
                .map_err(backend)?;
            let rows = st
                .query_map(params![namespace, ms(now)], |r| {
                    Ok(KvEntry {
                        key: r.get(0)?,
                        description: r.get(1)?,
                        creation_date: from_ms(r.get(2)?),
                        update_date: from_ms(r.get(3)?),
                        expiration_date: r.get::<_, Option<i64>>(4)?.map(from_ms),
                    })
                })
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn delete_kv(&self, namespace: &str, key: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let (namespace, key) = (namespace.to_string(), key.to_string());
        self.write(move |conn| {
            let expires: Option<Option<i64>> = conn
                .query_row(
                    "DELETE FROM kv WHERE namespace = ?1 AND key = ?2 RETURNING expires",
                    params![namespace, key],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            Ok(matches!(expires, Some(None)) || matches!(expires, Some(Some(at)) if at > ms(now)))
        })
        .await
    }
}
