//! SQLite store: flows, executions, logs and the work queue in one database file
//! (WAL, synchronous=NORMAL), so that one step of an execution is one transaction.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use kite_core::execution::{Execution, LogEntry};
use kite_core::trigger::TriggerState;
use kite_engine::ports::{
    level_rank, ExecutionQuery, ExecutionRepository, FlowQuery, FlowRepository, LogQuery, LogRepository,
    Page, Sort, StoreError, StoredFlow, TaskQueue, Transition, TriggerQuery, TriggerRepository,
    VersionedExecution, VersionedTrigger, WorkItem,
};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, ToSql, TransactionBehavior};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE flows (
    namespace TEXT NOT NULL,
    id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    source TEXT NOT NULL,
    labels TEXT NOT NULL DEFAULT '[]',
    deleted INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL,
    PRIMARY KEY (namespace, id, revision)
);
CREATE TABLE executions (
    id TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    flow_id TEXT NOT NULL,
    state TEXT NOT NULL,
    terminated INTEGER NOT NULL,
    start_date INTEGER NOT NULL,
    end_date INTEGER,
    labels TEXT NOT NULL,
    trigger_execution_id TEXT,
    version INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    body TEXT NOT NULL
);
CREATE INDEX executions_by_flow ON executions (namespace, flow_id, start_date);
CREATE INDEX executions_by_start ON executions (start_date);
CREATE INDEX executions_running ON executions (terminated) WHERE terminated = 0;
CREATE TABLE logs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT NOT NULL,
    task_run_id TEXT,
    task_id TEXT,
    attempt INTEGER,
    level INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX logs_by_execution ON logs (execution_id, seq);
CREATE TABLE queue (
    id TEXT PRIMARY KEY,
    execution_id TEXT NOT NULL,
    due INTEGER NOT NULL,
    leased_until INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    body TEXT NOT NULL
);
CREATE INDEX queue_by_due ON queue (due);
"#,
    r#"
CREATE TABLE triggers (
    namespace TEXT NOT NULL,
    flow_id TEXT NOT NULL,
    trigger_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (namespace, flow_id, trigger_id)
);
"#,
];

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn ms(d: DateTime<Utc>) -> i64 {
    d.timestamp_millis()
}

fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v)
        .single()
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The embedded database. Cheap to clone; one writer connection and one reader.
#[derive(Clone)]
pub struct SqliteStore {
    writer: Arc<Mutex<Connection>>,
    reader: Arc<Mutex<Connection>>,
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(backend)?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(backend)?;
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;")
        .map_err(backend)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) `path` and applies pending migrations.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(backend)?;
        }
        let mut writer = open_connection(path)?;
        migrate(&mut writer)?;
        let reader = open_connection(path)?;
        Ok(SqliteStore {
            writer: Arc::new(Mutex::new(writer)),
            reader: Arc::new(Mutex::new(reader)),
        })
    }

    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::Backend("database lock poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(backend)?
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let guard = conn
                .lock()
                .map_err(|_| StoreError::Backend("database lock poisoned".into()))?;
            f(&guard)
        })
        .await
        .map_err(backend)?
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(backend)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        let tx = conn.transaction().map_err(backend)?;
        tx.execute_batch(sql).map_err(backend)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- flows

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

/// Appends a namespace filter (exact or prefix on whole segments).
fn namespace_filter(
    column: &str,
    ns: &str,
    clauses: &mut Vec<String>,
    args: &mut Vec<Box<dyn ToSql + Send>>,
) {
    clauses.push(format!("({column} = ? OR substr({column}, 1, ?) = ?)"));
    args.push(Box::new(ns.to_string()));
    args.push(Box::new(ns.len() as i64 + 1));
    args.push(Box::new(format!("{ns}.")));
}

fn order_by(sort: &[Sort], allowed: &[(&str, &str)], default: &str) -> String {
    let parts: Vec<String> = sort
        .iter()
        .filter_map(|s| {
            allowed
                .iter()
                .find(|(k, _)| *k == s.field)
                .map(|(_, col)| format!("{col} {}", if s.descending { "DESC" } else { "ASC" }))
        })
        .collect();
    if parts.is_empty() {
        default.to_string()
    } else {
        parts.join(", ")
    }
}

#[async_trait]
impl FlowRepository for SqliteStore {
    async fn create(
        &self,
        namespace: &str,
        id: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<StoredFlow, StoreError> {
        let (namespace, id, source) = (namespace.to_string(), id.to_string(), source.to_string());
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let latest = latest_flow(&tx, &namespace, &id)?;
            if latest.as_ref().is_some_and(|f| !f.deleted) {
                return Err(StoreError::AlreadyExists(format!("flow {namespace}.{id}")));
            }
            let flow = StoredFlow {
                namespace,
                id,
                revision: latest.map_or(1, |f| f.revision + 1),
                source,
                deleted: false,
                updated: now,
            };
            insert_flow(&tx, &flow)?;
            tx.commit().map_err(backend)?;
            Ok(flow)
        })
        .await
    }

    async fn update(
        &self,
        namespace: &str,
        id: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<StoredFlow, StoreError> {
        let (namespace, id, source) = (namespace.to_string(), id.to_string(), source.to_string());
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let latest = latest_flow(&tx, &namespace, &id)?
                .filter(|f| !f.deleted)
                .ok_or_else(|| StoreError::NotFound(format!("flow {namespace}.{id}")))?;
            if latest.source == source {
                return Ok(latest);
            }
            let flow = StoredFlow {
                namespace,
                id,
                revision: latest.revision + 1,
                source,
                deleted: false,
                updated: now,
            };
            insert_flow(&tx, &flow)?;
            tx.commit().map_err(backend)?;
            Ok(flow)
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
            let mut clauses = vec![
                "f.revision = (SELECT MAX(revision) FROM flows m WHERE m.namespace = f.namespace AND m.id = f.id)".to_string(),
                "f.deleted = 0".to_string(),
            ];
            let mut args: Vec<Box<dyn ToSql + Send>> = Vec::new();
            if let Some(ns) = &query.namespace {
                namespace_filter("f.namespace", ns, &mut clauses, &mut args);
            }
            if let Some(q) = query.q.as_ref().filter(|q| !q.is_empty()) {
                clauses.push("instr(lower(f.namespace || '.' || f.id), lower(?)) > 0".into());
                args.push(Box::new(q.clone()));
            }
            for label in &query.labels {
                clauses.push("EXISTS (SELECT 1 FROM json_each(f.labels) j WHERE json_extract(j.value, '$.key') = ? AND json_extract(j.value, '$.value') = ?)".into());
                args.push(Box::new(label.key.clone()));
                args.push(Box::new(label.value.clone()));
            }
            let filter = clauses.join(" AND ");
            let total: i64 = conn
                .query_row(&format!("SELECT COUNT(*) FROM flows f WHERE {filter}"), params_from_iter(args.iter().map(|a| a.as_ref() as &dyn ToSql)), |r| r.get(0))
                .map_err(backend)?;
            let order = order_by(&query.sort, &[("id", "f.id"), ("namespace", "f.namespace"), ("revision", "f.revision")], "f.namespace ASC, f.id ASC");
            let sql = format!(
                "SELECT f.namespace, f.id, f.revision, f.source, f.deleted, f.updated FROM flows f WHERE {filter} ORDER BY {order} LIMIT {} OFFSET {}",
                query.pagination.size,
                query.pagination.offset()
            );
            let mut stmt = conn.prepare(&sql).map_err(backend)?;
            let rows = stmt.query_map(params_from_iter(args.iter().map(|a| a.as_ref() as &dyn ToSql)), row_to_flow).map_err(backend)?;
            let results = rows.collect::<Result<Vec<_>, _>>().map_err(backend)?;
            Ok(Page { results, total: total.max(0) as u64 })
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

// ---------------------------------------------------------------- executions

struct ExecutionRow {
    id: String,
    namespace: String,
    flow_id: String,
    state: &'static str,
    terminated: i64,
    start_date: i64,
    end_date: Option<i64>,
    labels: String,
    trigger_execution_id: Option<String>,
    body: String,
}

fn execution_row(e: &Execution) -> Result<ExecutionRow, StoreError> {
    let start = e
        .state
        .histories
        .first()
        .map(|h| h.date)
        .unwrap_or(e.metadata.original_created_date);
    Ok(ExecutionRow {
        id: e.id.clone(),
        namespace: e.namespace.clone(),
        flow_id: e.flow_id.clone(),
        state: e.state.current.as_str(),
        terminated: e.state.current.is_terminated() as i64,
        start_date: ms(start),
        end_date: e.state.end_date.map(ms),
        labels: serde_json::to_string(&e.labels).map_err(backend)?,
        trigger_execution_id: e
            .trigger
            .as_ref()
            .and_then(|t| t.variables.as_ref())
            .and_then(|v| v.get("executionId"))
            .and_then(|v| v.as_str())
            .map(str::to_string),
        body: serde_json::to_string(e).map_err(backend)?,
    })
}

fn insert_execution(conn: &Connection, e: &Execution, or_ignore: bool) -> Result<bool, StoreError> {
    let row = execution_row(e)?;
    let verb = if or_ignore { "INSERT OR IGNORE" } else { "INSERT" };
    let result = conn
        .prepare_cached(&format!(
            "{verb} INTO executions (id, namespace, flow_id, state, terminated, start_date, end_date, labels, trigger_execution_id, version, deleted, body) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1, 0, ?10)"
        ))
        .map_err(backend)?
        .execute(params![
            row.id,
            row.namespace,
            row.flow_id,
            row.state,
            row.terminated,
            row.start_date,
            row.end_date,
            row.labels,
            row.trigger_execution_id,
            row.body
        ]);
    match result {
        Ok(n) => Ok(n > 0),
        Err(rusqlite::Error::SqliteFailure(f, _)) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
            Err(StoreError::AlreadyExists(format!("execution {}", e.id)))
        }
        Err(err) => Err(backend(err)),
    }
}

fn update_execution(conn: &Connection, e: &Execution, expected: i64) -> Result<i64, StoreError> {
    let row = execution_row(e)?;
    let n = conn
        .prepare_cached(
            "UPDATE executions SET state = ?2, terminated = ?3, end_date = ?4, labels = ?5, body = ?6, version = version + 1 \
             WHERE id = ?1 AND version = ?7 AND deleted = 0",
        )
        .map_err(backend)?
        .execute(params![row.id, row.state, row.terminated, row.end_date, row.labels, row.body, expected])
        .map_err(backend)?;
    if n == 0 {
        return Err(StoreError::Conflict(format!("execution {}", e.id)));
    }
    Ok(expected + 1)
}

fn insert_logs(conn: &Connection, logs: &[LogEntry]) -> Result<(), StoreError> {
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
            level_rank(&l.level) as i64,
            body
        ])
        .map_err(backend)?;
    }
    Ok(())
}

fn push_items(
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

fn ack_items(conn: &Connection, ids: &[String]) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached("DELETE FROM queue WHERE id = ?1")
        .map_err(backend)?;
    for id in ids {
        stmt.execute(params![id]).map_err(backend)?;
    }
    Ok(())
}

fn reschedule_item(conn: &Connection, id: &str, due: i64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE queue SET due = ?2, leased_until = NULL WHERE id = ?1")
        .map_err(backend)?
        .execute(params![id, due])
        .map_err(backend)?;
    Ok(())
}

fn parse_execution(body: &str) -> Result<Execution, StoreError> {
    serde_json::from_str(body).map_err(backend)
}

#[async_trait]
impl ExecutionRepository for SqliteStore {
    async fn insert(&self, execution: &Execution) -> Result<i64, StoreError> {
        let execution = execution.clone();
        self.write(move |conn| insert_execution(conn, &execution, false).map(|_| 1))
            .await
    }

    async fn get(&self, id: &str) -> Result<Option<VersionedExecution>, StoreError> {
        let id = id.to_string();
        self.read(move |conn| {
            let row: Option<(String, i64)> = conn
                .prepare_cached("SELECT body, version FROM executions WHERE id = ?1 AND deleted = 0")
                .map_err(backend)?
                .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(backend)?;
            row.map(|(body, version)| {
                Ok(VersionedExecution {
                    execution: parse_execution(&body)?,
                    version,
                })
            })
            .transpose()
        })
        .await
    }

    async fn update(&self, execution: &Execution, expected_version: i64) -> Result<i64, StoreError> {
        let execution = execution.clone();
        self.write(move |conn| update_execution(conn, &execution, expected_version))
            .await
    }

    async fn commit(&self, t: Transition) -> Result<i64, StoreError> {
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let version = match t.expected_version {
                None => {
                    insert_execution(&tx, &t.execution, false)?;
                    1
                }
                Some(v) => update_execution(&tx, &t.execution, v)?,
            };
            for child in &t.children {
                insert_execution(&tx, child, true)?;
            }
            insert_logs(&tx, &t.logs)?;
            push_items(&tx, &t.push, &t.claimed, t.claim_until)?;
            ack_items(&tx, &t.ack)?;
            for id in &t.wake {
                reschedule_item(&tx, id, 0)?;
            }
            tx.commit().map_err(backend)?;
            Ok(version)
        })
        .await
    }

    async fn search(&self, query: &ExecutionQuery) -> Result<Page<Execution>, StoreError> {
        let query = query.clone();
        self.read(move |conn| {
            let mut clauses = vec!["deleted = 0".to_string()];
            let mut args: Vec<Box<dyn ToSql + Send>> = Vec::new();
            if let Some(ns) = &query.namespace {
                namespace_filter("namespace", ns, &mut clauses, &mut args);
            }
            if let Some(f) = &query.flow_id {
                clauses.push("flow_id = ?".into());
                args.push(Box::new(f.clone()));
            }
            if let Some(q) = query.q.as_ref().filter(|q| !q.is_empty()) {
                clauses.push("instr(lower(id || ' ' || namespace || ' ' || flow_id), lower(?)) > 0".into());
                args.push(Box::new(q.clone()));
            }
            if !query.states.is_empty() {
                clauses.push(format!("state IN ({})", vec!["?"; query.states.len()].join(", ")));
                for s in &query.states {
                    args.push(Box::new(s.as_str().to_string()));
                }
            }
            for label in &query.labels {
                clauses.push("EXISTS (SELECT 1 FROM json_each(labels) j WHERE json_extract(j.value, '$.key') = ? AND json_extract(j.value, '$.value') = ?)".into());
                args.push(Box::new(label.key.clone()));
                args.push(Box::new(label.value.clone()));
            }
            if let Some(d) = query.start_date {
                clauses.push("start_date >= ?".into());
                args.push(Box::new(ms(d)));
            }
            if let Some(d) = query.end_date {
                clauses.push("start_date <= ?".into());
                args.push(Box::new(ms(d)));
            }
            if let Some(t) = &query.trigger_execution_id {
                clauses.push("trigger_execution_id = ?".into());
                args.push(Box::new(t.clone()));
            }
            let filter = clauses.join(" AND ");
            let total: i64 = conn
                .query_row(&format!("SELECT COUNT(*) FROM executions WHERE {filter}"), params_from_iter(args.iter().map(|a| a.as_ref() as &dyn ToSql)), |r| r.get(0))
                .map_err(backend)?;
            let order = order_by(
                &query.sort,
                &[
                    ("state.startDate", "start_date"),
                    ("startDate", "start_date"),
                    ("state.endDate", "end_date"),
                    ("endDate", "end_date"),
                    ("id", "id"),
                    ("namespace", "namespace"),
                    ("flowId", "flow_id"),
                    ("state.current", "state"),
                    ("state", "state"),
                ],
                "start_date DESC, id DESC",
            );
            let sql = format!(
                "SELECT body FROM executions WHERE {filter} ORDER BY {order} LIMIT {} OFFSET {}",
                query.pagination.size,
                query.pagination.offset()
            );
            let mut stmt = conn.prepare(&sql).map_err(backend)?;
            let rows = stmt.query_map(params_from_iter(args.iter().map(|a| a.as_ref() as &dyn ToSql)), |r| r.get::<_, String>(0)).map_err(backend)?;
            let mut results = Vec::new();
            for body in rows {
                results.push(parse_execution(&body.map_err(backend)?)?);
            }
            Ok(Page { results, total: total.max(0) as u64 })
        })
        .await
    }

    async fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.write(move |conn| {
            let n = conn
                .prepare_cached(
                    "UPDATE executions SET deleted = 1, version = version + 1 WHERE id = ?1 AND deleted = 0",
                )
                .map_err(backend)?
                .execute(params![id])
                .map_err(backend)?;
            if n > 0 {
                conn.prepare_cached("DELETE FROM queue WHERE execution_id = ?1")
                    .map_err(backend)?
                    .execute(params![id])
                    .map_err(backend)?;
            }
            Ok(n > 0)
        })
        .await
    }

    async fn list_non_terminal(&self) -> Result<Vec<String>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id FROM executions WHERE terminated = 0 AND deleted = 0 ORDER BY start_date",
                )
                .map_err(backend)?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }
}

// ---------------------------------------------------------------- logs

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
            let min = query.min_level.as_deref().map(level_rank).unwrap_or(0) as i64;
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

// ---------------------------------------------------------------- queue

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

    async fn release_leases(&self) -> Result<u64, StoreError> {
        self.write(|conn| {
            let n = conn
                .execute(
                    "UPDATE queue SET leased_until = NULL WHERE leased_until IS NOT NULL",
                    [],
                )
                .map_err(backend)?;
            Ok(n as u64)
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
            let mut clauses = Vec::new();
            let mut args: Vec<Box<dyn ToSql + Send>> = Vec::new();
            if let Some(ns) = &query.namespace {
                namespace_filter("namespace", ns, &mut clauses, &mut args);
            }
            if let Some(flow_id) = &query.flow_id {
                clauses.push("flow_id = ?".to_string());
                args.push(Box::new(flow_id.clone()));
            }
            if let Some(q) = query.q.as_ref().filter(|q| !q.is_empty()) {
                clauses.push("instr(lower(namespace || '.' || flow_id || ' ' || trigger_id), lower(?)) > 0".into());
                args.push(Box::new(q.clone()));
            }
            let filter = if clauses.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", clauses.join(" AND "))
            };
            let total: i64 = conn
                .query_row(
                    &format!("SELECT COUNT(*) FROM triggers {filter}"),
                    params_from_iter(args.iter()),
                    |r| r.get(0),
                )
                .map_err(backend)?;
            args.push(Box::new(i64::from(query.pagination.size)));
            args.push(Box::new(query.pagination.offset() as i64));
            let mut st = conn
                .prepare(&format!(
                    "SELECT body, version FROM triggers {filter} ORDER BY namespace, flow_id, trigger_id LIMIT ? OFFSET ?"
                ))
                .map_err(backend)?;
            let rows = st
                .query_map(params_from_iter(args.iter()), |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .map_err(backend)?;
            let results = rows
                .map(|r| {
                    let (body, version) = r.map_err(backend)?;
                    parse_trigger(&body, version).map(|t| t.state)
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Page {
                results,
                total: total as u64,
            })
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
