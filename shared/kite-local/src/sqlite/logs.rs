//! [`LogRepository`] on SQLite: one row of `logs` per line, in append order (`seq`),
//! with the columns its filters use.

use async_trait::async_trait;
use kite_core::execution::{LogEntry, LogLevel};
use kite_engine::ports::{LogQuery, LogRepository, StoreError};
use rusqlite::{params, Connection};

use super::{backend, SqliteStore};

/// Appends log lines (an execution's commit writes its step's lines with this too).
pub(super) fn insert_logs(conn: &Connection, logs: &[LogEntry]) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached("INSERT INTO logs (execution_id, task_run_id, task_id, attempt, level, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
        .map_err(backend)?;
    for l in logs {
        let body = serde_json::to_string(l).map_err(backend)?;
        stmt.execute(params![
            l.execution_id,
            l.task_run_id,
            l.task_id,
            l.attempt_number,
            i64::from(l.level.rank()),
            body
        ])
        .map_err(backend)?;
    }
    Ok(())
}

#[async_trait]
impl LogRepository for SqliteStore {
    async fn append(&self, logs: &[LogEntry]) -> Result<(), StoreError> {
        let logs = logs.to_vec();
        self.write(move |conn| {
            let tx = conn.transaction().map_err(backend)?;
            insert_logs(&tx, &logs)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn list(&self, query: &LogQuery) -> Result<Vec<LogEntry>, StoreError> {
        let query = query.clone();
        self.read(move |conn| {
            let min = i64::from(query.min_level.map_or(0, LogLevel::rank));
            let mut stmt = conn
                .prepare_cached(
                    "SELECT body FROM logs WHERE execution_id = ?1 AND level >= ?2 \
                     AND (?3 IS NULL OR task_run_id = ?3) AND (?4 IS NULL OR task_id = ?4) AND (?5 IS NULL OR attempt = ?5) ORDER BY seq",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![query.execution_id, min, query.task_run_id, query.task_id, query.attempt], |r| r.get::<_, String>(0))
                .map_err(backend)?;
            let mut out = Vec::new();
            for body in rows {
                out.push(serde_json::from_str(&body.map_err(backend)?).map_err(backend)?);
            }
            Ok(out)
        })
        .await
    }

    async fn delete_by_execution(&self, execution_id: &str) -> Result<u64, StoreError> {
        let id = execution_id.to_string();
        self.write(move |conn| {
            let n = conn
                .prepare_cached("DELETE FROM logs WHERE execution_id = ?1")
                .map_err(backend)?
                .execute(params![id])
                .map_err(backend)?;
            Ok(n as u64)
        })
        .await
    }
}
