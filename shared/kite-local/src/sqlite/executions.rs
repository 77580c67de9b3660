//! [`ExecutionRepository`] on SQLite: one row of `executions` per execution, its JSON body
//! and the columns searches filter on, with a version for compare-and-set. A step's
//! commit writes the execution, its logs and its queue changes in one transaction.

use async_trait::async_trait;
use kite_core::execution::{Execution, StateType};
use kite_engine::ports::{
    ExecutionQuery, ExecutionRepository, Page, Slot, StoreError, Transition, VersionedExecution,
};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::logs::insert_logs;
use super::queue::{ack_items, push_items, reschedule_item};
use super::search::{order_by, Filter};
use super::{backend, ms, SqliteStore};

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

/// States in which an execution holds one of its flow's running slots.
const HOLDING_A_SLOT: [StateType; 4] = [
    StateType::Running,
    StateType::Paused,
    StateType::Killing,
    StateType::Restarted,
];

/// Checks a step's [`Slot`] inside its write transaction. The held slots are not stored
/// but counted from the rows: SQLite has one writer at a time, so two starts cannot both
/// see a free slot, and a crash leaves nothing to repair (`Release` has nothing to do).
fn check_slot(conn: &Connection, e: &Execution, slot: Slot) -> Result<(), StoreError> {
    let limit = match slot {
        Slot::Take { limit } | Slot::Check { limit } | Slot::Wait { limit } => i64::from(limit),
        Slot::Release => return Ok(()),
    };
    let held: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM executions WHERE namespace = ?1 AND flow_id = ?2 AND id <> ?3 \
             AND deleted = 0 AND state IN (?4, ?5, ?6, ?7)",
        )
        .map_err(backend)?
        .query_row(
            params![
                e.namespace,
                e.flow_id,
                e.id,
                HOLDING_A_SLOT[0].as_str(),
                HOLDING_A_SLOT[1].as_str(),
                HOLDING_A_SLOT[2].as_str(),
                HOLDING_A_SLOT[3].as_str()
            ],
            |r| r.get(0),
        )
        .map_err(backend)?;
    let flow = format!("flow {}.{}", e.namespace, e.flow_id);
    match slot {
        Slot::Take { .. } | Slot::Check { .. } if held >= limit => Err(StoreError::LimitReached(flow)),
        Slot::Wait { .. } if held < limit => Err(StoreError::Conflict(flow)),
        _ => Ok(()),
    }
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
            if let Some(slot) = t.slot {
                check_slot(&tx, &t.execution, slot)?;
            }
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
            let mut filter = Filter::default();
            filter.clause("deleted = 0");
            if let Some(ns) = &query.namespace {
                filter.namespace("namespace", ns);
            }
            if let Some(f) = &query.flow_id {
                filter.clause("flow_id = ?").arg(f.clone());
            }
            filter.text("id || ' ' || namespace || ' ' || flow_id", query.q.as_ref());
            if !query.states.is_empty() {
                filter.clause(format!("state IN ({})", vec!["?"; query.states.len()].join(", ")));
                for s in &query.states {
                    filter.arg(s.as_str().to_string());
                }
            }
            for label in &query.labels {
                filter.label("labels", label);
            }
            if let Some(d) = query.start_date {
                filter.clause("start_date >= ?").arg(ms(d));
            }
            if let Some(d) = query.end_date {
                filter.clause("start_date <= ?").arg(ms(d));
            }
            if let Some(t) = &query.trigger_execution_id {
                filter.clause("trigger_execution_id = ?").arg(t.clone());
            }
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
            filter.page(conn, "executions", "body", &order, query.pagination, |r| {
                parse_execution(&r.get::<_, String>(0).map_err(backend)?)
            })
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

    async fn latest_of_flow(&self, namespace: &str, flow_id: &str) -> Result<Option<Execution>, StoreError> {
        let (namespace, flow_id) = (namespace.to_string(), flow_id.to_string());
        self.read(move |conn| {
            // One step down the (namespace, flow_id, start_date) index.
            let body: Option<String> = conn
                .prepare_cached(
                    "SELECT body FROM executions WHERE namespace = ?1 AND flow_id = ?2 AND deleted = 0 \
                     ORDER BY start_date DESC, id DESC LIMIT 1",
                )
                .map_err(backend)?
                .query_row(params![namespace, flow_id], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            body.as_deref().map(parse_execution).transpose()
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
