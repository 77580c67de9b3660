//! [`TaskQueue`] on SQLite: the `queue` table, one row per work item with its due date
//! and lease. An execution's commit pushes, acks and wakes items in its own transaction
//! through the functions here.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kite_engine::ports::{Released, StoreError, TaskQueue, WorkItem};
use rusqlite::{params, Connection};

use super::{backend, from_ms, ms, SqliteStore};

/// Inserts work items (an existing id is left unchanged), those in `claimed` leased
/// until `claim_until`.
pub(super) fn push_items(
    conn: &Connection,
    items: &[WorkItem],
    claimed: &[String],
    claim_until: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached("INSERT OR IGNORE INTO queue (id, execution_id, due, leased_until, attempts, body) VALUES (?1, ?2, ?3, ?4, 0, ?5)")
        .map_err(backend)?;
    for item in items {
        let lease = claim_until.filter(|_| claimed.contains(&item.id)).map(ms);
        let body = serde_json::to_string(item).map_err(backend)?;
        stmt.execute(params![item.id, item.execution_id, ms(item.due), lease, body])
            .map_err(backend)?;
    }
    Ok(())
}

/// Removes consumed items, and the run claims of those that had one.
pub(super) fn ack_items(conn: &Connection, ids: &[String]) -> Result<(), StoreError> {
    let mut items = conn
        .prepare_cached("DELETE FROM queue WHERE id = ?1")
        .map_err(backend)?;
    let mut claims = conn
        .prepare_cached("DELETE FROM run_claims WHERE id = ?1")
        .map_err(backend)?;
    for id in ids {
        items.execute(params![id]).map_err(backend)?;
        claims.execute(params![id]).map_err(backend)?;
    }
    Ok(())
}

/// Makes an item due at `due` (milliseconds) and visible; no effect if it does not exist.
pub(super) fn reschedule_item(conn: &Connection, id: &str, due: i64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE queue SET due = ?2, leased_until = NULL WHERE id = ?1")
        .map_err(backend)?
        .execute(params![id, due])
        .map_err(backend)?;
    Ok(())
}

#[async_trait]
impl TaskQueue for SqliteStore {
    async fn push(&self, items: &[WorkItem]) -> Result<(), StoreError> {
        let items = items.to_vec();
        self.write(move |conn| {
            let tx = conn.transaction().map_err(backend)?;
            push_items(&tx, &items, &[], None)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn lease(
        &self,
        now: DateTime<Utc>,
        max: usize,
        lease_for: Duration,
    ) -> Result<Vec<WorkItem>, StoreError> {
        let until = now + chrono::Duration::from_std(lease_for).map_err(backend)?;
        self.write(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "UPDATE queue SET leased_until = ?1, attempts = attempts + 1 WHERE id IN \
                     (SELECT id FROM queue WHERE due <= ?2 AND (leased_until IS NULL OR leased_until <= ?2) ORDER BY due LIMIT ?3) \
                     RETURNING body, due",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![ms(until), ms(now), max as i64], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .map_err(backend)?;
            let mut items = Vec::new();
            for row in rows {
                let (body, due) = row.map_err(backend)?;
                let mut item = serde_json::from_str::<WorkItem>(&body).map_err(backend)?;
                // The column, not the pushed body: a reschedule or a wake moves only the column.
                item.due = from_ms(due);
                items.push(item);
            }
            items.sort_by_key(|i| i.due);
            Ok(items)
        })
        .await
    }

    async fn reschedule(&self, id: &str, due: DateTime<Utc>) -> Result<(), StoreError> {
        let id = id.to_string();
        self.write(move |conn| reschedule_item(conn, &id, ms(due))).await
    }

    async fn release_leases(&self, crash_limit: u32) -> Result<Released, StoreError> {
        self.write(move |conn| {
            let tx = conn.transaction().map_err(backend)?;
            // Only a dead process can have held them (this store has one consumer).
            tx.execute("DELETE FROM run_claims", []).map_err(backend)?;
            tx.execute(
                "UPDATE queue SET crashes = crashes + 1 WHERE leased_until IS NOT NULL",
                [],
            )
            .map_err(backend)?;
            let mut crashed = Vec::new();
            {
                let mut stmt = tx
                    .prepare(
                        "SELECT body, due, crashes FROM queue WHERE leased_until IS NOT NULL AND crashes >= ?1",
                    )
                    .map_err(backend)?;
                let rows = stmt
                    .query_map(params![crash_limit], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, u32>(2)?))
                    })
                    .map_err(backend)?;
                for row in rows {
                    let (body, due, crashes) = row.map_err(backend)?;
                    let mut item = serde_json::from_str::<WorkItem>(&body).map_err(backend)?;
                    item.due = from_ms(due);
                    crashed.push((item, crashes));
                }
            }
            let released = tx
                .execute(
                    "UPDATE queue SET leased_until = NULL WHERE leased_until IS NOT NULL AND crashes < ?1",
                    params![crash_limit],
                )
                .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(Released {
                released: released as u64,
                crashed,
            })
        })
        .await
    }

    async fn claim_run(
        &self,
        run_id: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let run_id = run_id.to_string();
        self.write(move |conn| {
            let changed = conn
                .prepare_cached(
                    "INSERT INTO run_claims (id, until) VALUES (?1, ?3) \
                     ON CONFLICT (id) DO UPDATE SET until = excluded.until WHERE run_claims.until <= ?2",
                )
                .map_err(backend)?
                .execute(params![run_id, ms(now), ms(until)])
                .map_err(backend)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn ack(&self, ids: &[String]) -> Result<(), StoreError> {
        let ids = ids.to_vec();
        self.write(move |conn| ack_items(conn, &ids)).await
    }

    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.read(|conn| {
            let v: Option<i64> = conn
                .query_row("SELECT MIN(CASE WHEN leased_until IS NOT NULL AND leased_until > due THEN leased_until ELSE due END) FROM queue", [], |r| r.get(0))
                .map_err(backend)?;
            Ok(v.map(from_ms))
        })
        .await
    }

    async fn len(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            let n: i64 = conn
                .query_row("SELECT COUNT(*) FROM queue", [], |r| r.get(0))
                .map_err(backend)?;
            Ok(n.max(0) as u64)
        })
        .await
    }
}
