//! [`FlowRepository`] on SQLite: every revision is a row of `flows`, the highest one the
//! live flow; a delete is a tombstone revision.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kite_engine::ports::{FlowQuery, FlowRepository, FlowSave, Page, SaveOutcome, StoreError, StoredFlow};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::search::{order_by, Filter};
use super::{backend, from_ms, ms, SqliteStore};

fn flow_labels(source: &str) -> String {
    let labels: Vec<serde_json::Value> = kite_core::flow::parse_flow(source)
        .map(|f| {
            f.labels
                .into_iter()
                .map(|(k, v)| serde_json::json!({"key": k, "value": v}))
                .collect()
        })
        .unwrap_or_default();
    serde_json::Value::Array(labels).to_string()
}

fn row_to_flow(r: &rusqlite::Row) -> rusqlite::Result<StoredFlow> {
    Ok(StoredFlow {
        namespace: r.get(0)?,
        id: r.get(1)?,
        revision: r.get(2)?,
        source: r.get(3)?,
        deleted: r.get::<_, i64>(4)? != 0,
        updated: from_ms(r.get(5)?),
    })
}

const FLOW_COLUMNS: &str = "namespace, id, revision, source, deleted, updated";

fn latest_flow(conn: &Connection, namespace: &str, id: &str) -> Result<Option<StoredFlow>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {FLOW_COLUMNS} FROM flows WHERE namespace = ?1 AND id = ?2 ORDER BY revision DESC LIMIT 1"
    ))
    .map_err(backend)?
    .query_row(params![namespace, id], row_to_flow)
    .optional()
    .map_err(backend)
}

fn insert_flow(conn: &Connection, flow: &StoredFlow) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO flows (namespace, id, revision, source, labels, deleted, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
        .map_err(backend)?
        .execute(params![
            flow.namespace,
            flow.id,
            flow.revision,
            flow.source,
            flow_labels(&flow.source),
            flow.deleted as i64,
            ms(flow.updated)
        ])
        .map_err(backend)?;
    Ok(())
}

#[async_trait]
impl FlowRepository for SqliteStore {
    async fn save(&self, save: FlowSave) -> Result<StoredFlow, StoreError> {
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let latest = latest_flow(&tx, &save.namespace, &save.id)?;
            match save.outcome(latest)? {
                SaveOutcome::Unchanged(latest) => Ok(latest),
                SaveOutcome::New(flow) => {
                    insert_flow(&tx, &flow)?;
                    tx.commit().map_err(backend)?;
                    Ok(flow)
                }
            }
        })
        .await
    }

    async fn get(
        &self,
        namespace: &str,
        id: &str,
        revision: Option<i64>,
        allow_deleted: bool,
    ) -> Result<Option<StoredFlow>, StoreError> {
        let (namespace, id) = (namespace.to_string(), id.to_string());
        self.read(move |conn| {
            let latest = latest_flow(conn, &namespace, &id)?;
            let Some(latest) = latest else { return Ok(None) };
            if latest.deleted && !allow_deleted {
                return Ok(None);
            }
            match revision {
                None => Ok(Some(latest)),
                Some(rev) => conn
                    .prepare_cached(&format!(
                        "SELECT {FLOW_COLUMNS} FROM flows WHERE namespace = ?1 AND id = ?2 AND revision = ?3"
                    ))
                    .map_err(backend)?
                    .query_row(params![namespace, id, rev], row_to_flow)
                    .optional()
                    .map_err(backend),
            }
        })
        .await
    }

    async fn revisions(&self, namespace: &str, id: &str) -> Result<Vec<StoredFlow>, StoreError> {
        let (namespace, id) = (namespace.to_string(), id.to_string());
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!("SELECT {FLOW_COLUMNS} FROM flows WHERE namespace = ?1 AND id = ?2 AND deleted = 0 ORDER BY revision"))
                .map_err(backend)?;
            let rows = stmt.query_map(params![namespace, id], row_to_flow).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn search(&self, query: &FlowQuery) -> Result<Page<StoredFlow>, StoreError> {
        let query = query.clone();
        self.read(move |conn| {
            let mut filter = Filter::default();
            filter
                .clause("f.revision = (SELECT MAX(revision) FROM flows m WHERE m.namespace = f.namespace AND m.id = f.id)")
                .clause("f.deleted = 0");
            if let Some(ns) = &query.namespace {
                filter.namespace("f.namespace", ns);
            }
            filter.text("f.namespace || '.' || f.id", query.q.as_ref());
            for label in &query.labels {
                filter.label("f.labels", label);
            }
            let order = order_by(&query.sort, &[("id", "f.id"), ("namespace", "f.namespace"), ("revision", "f.revision")], "f.namespace ASC, f.id ASC");
            filter.page(
                conn,
                "flows f",
                "f.namespace, f.id, f.revision, f.source, f.deleted, f.updated",
                &order,
                query.pagination,
                |r| row_to_flow(r).map_err(backend),
            )
        })
        .await
    }

    async fn delete(&self, namespace: &str, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let (namespace, id) = (namespace.to_string(), id.to_string());
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let Some(latest) = latest_flow(&tx, &namespace, &id)?.filter(|f| !f.deleted) else {
                return Ok(false);
            };
            let tombstone = StoredFlow {
                revision: latest.revision + 1,
                deleted: true,
                updated: now,
                ..latest
            };
            insert_flow(&tx, &tombstone)?;
            tx.commit().map_err(backend)?;
            Ok(true)
        })
        .await
    }
}
