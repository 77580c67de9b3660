//! Port conformance: the guarantees documented in [`crate::ports`], written once and run
//! by every adapter family (SQLite and local files in `kite-local`, DynamoDB, S3 and SQS
//! in `kite-aws`).
//!
//! Each case is a `pub async fn` that takes the ports it checks, new and empty, and
//! panics at the first broken guarantee. An adapter's integration test builds its
//! adapters and calls each case from its own `#[tokio::test]`:
//!
//! ```ignore
//! #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
//! async fn execution_updates_are_compare_and_set() {
//!     let store = Arc::new(MyStore::new_empty());
//!     conformance::execution_updates_are_compare_and_set(store.as_ref(), store.clone()).await;
//! }
//! ```
//!
//! Cases that take an `Arc` race writers in spawned tasks, and [`FileStorage::read_blocking`]
//! may park a worker thread: run those on the multi-thread runtime. What only one adapter
//! promises (SQLite's leases following the `now` they are given, S3's reserved prefix,
//! DynamoDB's cut of huge log lines) stays in that adapter's tests; where the adapters
//! legitimately differ inside a case, the case takes a parameter ([`AckedBeforeLease`]).
//!
//! Only built with the `conformance` feature, which the adapters enable in their
//! `[dev-dependencies]`: no host binary carries it.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use kite_core::execution::{Execution, ExecutionMetadata, Label, LogEntry, LogLevel, State, StateType};
use kite_core::trigger::TriggerState;

use crate::ports::*;

// ---------------------------------------------------------------- fixtures

/// A fixed instant `s` seconds after 2023-11-14T22:13:20Z.
pub fn t(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + s, 0)
        .single()
        .expect("valid date")
}

/// An execution of `ns`/`flow` in `state` since `at`, with these labels.
pub fn execution(
    id: &str,
    ns: &str,
    flow: &str,
    state: StateType,
    at: DateTime<Utc>,
    labels: &[(&str, &str)],
) -> Execution {
    let json = serde_json::json!({
        "id": id, "namespace": ns, "flowId": flow, "flowRevision": 1,
        "labels": labels.iter().map(|(k, v)| serde_json::json!({"key": k, "value": v})).collect::<Vec<_>>(),
        "state": State::new(state, at),
        "metadata": ExecutionMetadata { attempt_number: 1, original_created_date: at },
    });
    serde_json::from_value(json).expect("execution json")
}

/// A log line of an execution of `dev`/`f`, of a task run of task `t` when `task_run` is set.
pub fn log(execution_id: &str, level: &str, task_run: Option<&str>, msg: &str) -> LogEntry {
    LogEntry {
        namespace: "dev".into(),
        flow_id: "f".into(),
        task_id: task_run.map(|_| "t".to_string()),
        execution_id: execution_id.into(),
        task_run_id: task_run.map(str::to_string),
        attempt_number: None,
        trigger_id: None,
        timestamp: t(0),
        level: LogLevel::parse(level).unwrap_or_default(),
        thread: None,
        message: msg.into(),
    }
}

/// A step that writes `e` (inserted when `expected` is `None`) with one log line "hello".
pub fn transition(e: Execution, expected: Option<i64>, push: Vec<WorkItem>, ack: Vec<String>) -> Transition {
    Transition {
        logs: vec![log(&e.id, "INFO", None, "hello")],
        execution: e,
        expected_version: expected,
        push,
        claimed: vec![],
        claim_until: None,
        ack,
        wake: vec![],
        children: vec![],
        slot: None,
    }
}

/// The source of a one-task flow.
pub fn flow_source(ns: &str, id: &str) -> String {
    format!("id: {id}\nnamespace: {ns}\ntasks:\n  - id: l\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n")
}

pub const FLOW_A: &str = "id: a\nnamespace: company.team\nlabels:\n  env: prod\ntasks:\n  - id: l\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n";
pub const FLOW_A2: &str = "id: a\nnamespace: company.team\ntasks:\n  - id: l\n    type: io.kestra.plugin.core.log.Log\n    message: changed\n";
pub const FLOW_B: &str = "id: b\nnamespace: company\ntasks:\n  - id: l\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n";
pub const FLOW_C: &str = "id: c\nnamespace: companyx\ntasks:\n  - id: l\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n";

/// A byte stream for [`FileStorage::put`].
pub fn stream(bytes: Vec<u8>) -> ByteStream {
    Box::pin(std::io::Cursor::new(bytes))
}

/// Reads a stream to its end.
pub async fn read_all(mut s: ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut s, &mut out)
        .await
        .expect("read the stream");
    out
}

/// Awaits spawned tasks, in order.
async fn join_all<T: Send + 'static>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("join"));
    }
    out
}

fn conflicts<T>(results: &[Result<T, StoreError>]) -> usize {
    results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::Conflict(_))))
        .count()
}

mod flows;
pub use flows::*;
mod executions;
pub use executions::*;
mod logs;
pub use logs::*;
mod queue;
pub use queue::*;
mod files;
pub use files::*;
mod slots;
pub use slots::*;
mod triggers;
pub use triggers::*;
mod kv;
pub use kv::*;
