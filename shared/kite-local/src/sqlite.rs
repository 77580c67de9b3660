//! SQLite store: flows, executions, logs, trigger state, the KV store and the work queue in one
//! database file (WAL, synchronous=NORMAL), so that one step of an execution is one
//! transaction.
//!
//! This module opens the database and runs work on its connections; the ports are
//! implemented one per module:
//!
//! - `schema`: the tables and their migrations;
//! - `flows`: [`FlowRepository`](kite_engine::ports::FlowRepository), flow revisions;
//! - `executions`: [`ExecutionRepository`](kite_engine::ports::ExecutionRepository),
//!   executions and the commit of a step;
//! - `logs`: [`LogRepository`](kite_engine::ports::LogRepository), log lines;
//! - `queue`: [`TaskQueue`](kite_engine::ports::TaskQueue), the work queue and its leases;
//! - `triggers`: [`TriggerRepository`](kite_engine::ports::TriggerRepository), trigger state;
//! - `kv`: [`KvStore`](kite_engine::ports::KvStore), Kestra's KV store;
//! - `search`: what the searches of flows, executions and triggers share: their
//!   filters, their order and the read of one page with the total.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use kite_engine::ports::StoreError;
use rusqlite::Connection;

mod executions;
mod flows;
mod kv;
mod logs;
mod queue;
mod schema;
mod search;
mod triggers;

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
        schema::migrate(&mut writer)?;
        let reader = open_connection(path)?;
        Ok(SqliteStore {
            writer: Arc::new(Mutex::new(writer)),
            reader: Arc::new(Mutex::new(reader)),
        })
    }

    /// Runs `f` on the writer connection, off the async threads.
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

    /// Runs `f` on the reader connection, off the async threads (WAL: reads do not wait
    /// for the writer).
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
