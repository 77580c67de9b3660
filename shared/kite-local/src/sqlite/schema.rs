//! The schema: the tables of flows, executions, logs, the queue (and its run claims),
//! trigger state and the KV store, as
//! migrations that opening a store applies in order (`PRAGMA user_version` counts those
//! that ran).

use kite_engine::ports::StoreError;
use rusqlite::Connection;

use super::backend;

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
    r#"
CREATE TABLE kv (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    type TEXT NOT NULL,
    value TEXT NOT NULL,
    description TEXT,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    expires INTEGER,
    PRIMARY KEY (namespace, key)
);
"#,
    // Deaths of the process while an item was in hand (the crash-loop guard).
    "ALTER TABLE queue ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0;",
    // Who makes a task run attempt's I/O, until when (`TaskQueue::claim_run`).
    "CREATE TABLE run_claims (id TEXT PRIMARY KEY, until INTEGER NOT NULL);",
];

/// Applies the migrations `conn`'s database has not run yet, each in its own transaction.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
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
