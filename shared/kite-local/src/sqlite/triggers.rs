//! [`TriggerRepository`] on SQLite: one row of `triggers` per (namespace, flow, trigger),
//! the state's JSON with a version for compare-and-set.

use async_trait::async_trait;
use kite_core::trigger::TriggerState;
use kite_engine::ports::{Page, StoreError, TriggerQuery, TriggerRepository, VersionedTrigger};
use rusqlite::{params, OptionalExtension};

use super::search::Filter;
use super::{backend, SqliteStore};

fn parse_trigger(body: &str, version: i64) -> Result<VersionedTrigger, StoreError> {
    let state = serde_json::from_str(body).map_err(backend)?;
    Ok(VersionedTrigger { state, version })
}

#[async_trait]
impl TriggerRepository for SqliteStore {
    async fn get(
        &self,
        namespace: &str,
        flow_id: &str,
        trigger_id: &str,
    ) -> Result<Option<VersionedTrigger>, StoreError> {
        let key = (namespace.to_string(), flow_id.to_string(), trigger_id.to_string());
        self.read(move |conn| {
            let row: Option<(String, i64)> = conn
                .prepare_cached(
                    "SELECT body, version FROM triggers WHERE namespace = ?1 AND flow_id = ?2 AND trigger_id = ?3",
                )
                .and_then(|mut st| {
                    st.query_row(params![key.0, key.1, key.2], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                })
                .map_err(backend)?;
            row.map(|(body, version)| parse_trigger(&body, version)).transpose()
        })
        .await
    }

    async fn put(&self, state: &TriggerState, expected_version: Option<i64>) -> Result<i64, StoreError> {
        let body = serde_json::to_string(state).map_err(backend)?;
        let state = state.clone();
        self.write(move |conn| {
            let name = format!("trigger {}.{}.{}", state.namespace, state.flow_id, state.trigger_id);
            match expected_version {
                None => {
                    let inserted = conn
                        .execute(
                            "INSERT OR IGNORE INTO triggers (namespace, flow_id, trigger_id, version, body) VALUES (?1, ?2, ?3, 1, ?4)",
                            params![state.namespace, state.flow_id, state.trigger_id, body],
                        )
                        .map_err(backend)?;
                    if inserted == 0 {
                        return Err(StoreError::AlreadyExists(name));
                    }
                    Ok(1)
                }
                Some(v) => {
                    let updated = conn
                        .execute(
                            "UPDATE triggers SET version = version + 1, body = ?5 WHERE namespace = ?1 AND flow_id = ?2 AND trigger_id = ?3 AND version = ?4",
                            params![state.namespace, state.flow_id, state.trigger_id, v, body],
                        )
                        .map_err(backend)?;
                    if updated == 0 {
                        return Err(StoreError::Conflict(name));
                    }
                    Ok(v + 1)
                }
            }
        })
        .await
    }

    async fn list_for_flow(
        &self,
        namespace: &str,
        flow_id: &str,
    ) -> Result<Vec<VersionedTrigger>, StoreError> {
        let key = (namespace.to_string(), flow_id.to_string());
        self.read(move |conn| {
            let mut st = conn
                .prepare_cached(
                    "SELECT body, version FROM triggers WHERE namespace = ?1 AND flow_id = ?2 ORDER BY trigger_id",
                )
                .map_err(backend)?;
            let rows = st
                .query_map(params![key.0, key.1], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                .map_err(backend)?;
            rows.map(|r| {
                let (body, version) = r.map_err(backend)?;
                parse_trigger(&body, version)
            })
            .collect()
        })
        .await
    }

    async fn search(&self, query: &TriggerQuery) -> Result<Page<TriggerState>, StoreError> {
        let query = query.clone();
        self.read(move |conn| {
            let mut filter = Filter::default();
            if let Some(ns) = &query.namespace {
                filter.namespace("namespace", ns);
            }
            if let Some(flow_id) = &query.flow_id {
                filter.clause("flow_id = ?").arg(flow_id.clone());
            }
            filter.text(
                "namespace || '.' || flow_id || ' ' || trigger_id",
                query.q.as_ref(),
            );
            filter.page(
                conn,
                "triggers",
                "body, version",
                "namespace, flow_id, trigger_id",
                query.pagination,
                |r| {
                    let body: String = r.get(0).map_err(backend)?;
                    parse_trigger(&body, r.get(1).map_err(backend)?).map(|t| t.state)
                },
            )
        })
        .await
    }

    async fn delete(&self, namespace: &str, flow_id: &str, trigger_id: &str) -> Result<bool, StoreError> {
        let key = (namespace.to_string(), flow_id.to_string(), trigger_id.to_string());
        self.write(move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM triggers WHERE namespace = ?1 AND flow_id = ?2 AND trigger_id = ?3",
                    params![key.0, key.1, key.2],
                )
                .map_err(backend)?;
            Ok(n > 0)
        })
        .await
    }
}
