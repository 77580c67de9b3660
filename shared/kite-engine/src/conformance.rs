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

// ---------------------------------------------------------------- flows

/// Revisions, unchanged sources, soft delete and re-creation; concurrent creates of one
/// flow store one revision.
pub async fn flows_have_revisions_and_soft_delete(flows: Arc<dyn FlowRepository>) {
    let a = flows
        .save(FlowSave::create("company.team", "a", FLOW_A, t(0)))
        .await
        .unwrap();
    assert_eq!(a.revision, 1);
    assert!(matches!(
        flows
            .save(FlowSave::create("company.team", "a", FLOW_A, t(1)))
            .await,
        Err(StoreError::AlreadyExists(_))
    ));
    // Same source: no new revision.
    let same = flows
        .save(FlowSave::update("company.team", "a", FLOW_A, t(1)))
        .await
        .unwrap();
    assert_eq!(same.revision, 1);
    let changed = flows
        .save(FlowSave::update("company.team", "a", FLOW_A2, t(2)))
        .await
        .unwrap();
    assert_eq!(changed.revision, 2);
    let get = |rev| flows.get("company.team", "a", rev, false);
    assert_eq!(get(None).await.unwrap().unwrap().source, FLOW_A2);
    assert_eq!(get(Some(1)).await.unwrap().unwrap().source, FLOW_A);
    assert!(get(Some(9)).await.unwrap().is_none());
    assert_eq!(flows.revisions("company.team", "a").await.unwrap().len(), 2);
    assert!(matches!(
        flows.save(FlowSave::update("x", "nope", FLOW_A, t(3))).await,
        Err(StoreError::NotFound(_))
    ));

    assert!(flows.delete("company.team", "a", t(4)).await.unwrap());
    assert!(!flows.delete("company.team", "a", t(4)).await.unwrap());
    assert!(get(None).await.unwrap().is_none());
    let deleted = flows.get("company.team", "a", None, true).await.unwrap().unwrap();
    assert!(deleted.deleted);
    // Re-created after deletion: the next revision number (the deletion is revision 3).
    let again = flows
        .save(FlowSave::create("company.team", "a", FLOW_A, t(5)))
        .await
        .unwrap();
    assert_eq!(again.revision, 4);

    // Concurrent creates of one flow: one wins, the others find it existing.
    let handles = (0..4)
        .map(|_| {
            let flows = flows.clone();
            tokio::spawn(async move {
                flows
                    .save(FlowSave::create("dev", "race", &flow_source("dev", "race"), t(6)))
                    .await
            })
        })
        .collect();
    let outcomes = join_all(handles).await;
    assert_eq!(outcomes.iter().filter(|r| r.is_ok()).count(), 1, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|r| r.is_ok() || matches!(r, Err(StoreError::AlreadyExists(_)))),
        "{outcomes:?}"
    );
    assert_eq!(flows.revisions("dev", "race").await.unwrap().len(), 1);
}

/// Namespace prefixes on whole segments, labels, free text, pages.
pub async fn flow_search_filters_and_pages(flows: &dyn FlowRepository) {
    flows
        .save(FlowSave::create("company.team", "a", FLOW_A, t(0)))
        .await
        .unwrap();
    flows
        .save(FlowSave::create("company", "b", FLOW_B, t(0)))
        .await
        .unwrap();
    flows
        .save(FlowSave::create("companyx", "c", FLOW_C, t(0)))
        .await
        .unwrap();
    let q = |ns: Option<&str>| FlowQuery {
        namespace: ns.map(str::to_string),
        ..Default::default()
    };
    let page = flows.search(&q(Some("company"))).await.unwrap();
    let ids: Vec<_> = page.results.iter().map(|f| f.id.as_str()).collect();
    // `company` is a prefix of `company.team`, not of `companyx`.
    assert_eq!(ids, ["b", "a"]);
    assert_eq!(page.total, 2);
    assert_eq!(flows.search(&q(None)).await.unwrap().total, 3);
    let labelled = FlowQuery {
        labels: vec![Label {
            key: "env".into(),
            value: "prod".into(),
        }],
        ..Default::default()
    };
    let found = flows.search(&labelled).await.unwrap();
    assert_eq!((found.total, found.results[0].id.as_str()), (1, "a"));
    let text = FlowQuery {
        q: Some("X".into()),
        ..Default::default()
    };
    assert_eq!(flows.search(&text).await.unwrap().total, 1);
    let paged = FlowQuery {
        pagination: Pagination { page: 2, size: 2 },
        ..Default::default()
    };
    let p2 = flows.search(&paged).await.unwrap();
    assert_eq!((p2.results.len(), p2.total), (1, 3));
}

// ---------------------------------------------------------------- executions

/// Insert once, update only from the stored version; of concurrent writers (plain updates
/// and commits) from one version exactly one wins; soft delete.
pub async fn execution_updates_are_compare_and_set(
    flows: &dyn FlowRepository,
    executions: Arc<dyn ExecutionRepository>,
) {
    // Executions belong to a flow (the DynamoDB adapter finds namespaces through flows).
    flows
        .save(FlowSave::create("dev", "f", &flow_source("dev", "f"), t(0)))
        .await
        .unwrap();
    let repo = executions.as_ref();
    let e = execution("e1", "dev", "f", StateType::Created, t(0), &[]);
    assert_eq!(repo.insert(&e).await.unwrap(), 1);
    assert!(matches!(repo.insert(&e).await, Err(StoreError::AlreadyExists(_))));
    let mut running = e.clone();
    running.state.set(StateType::Running, t(1));
    assert_eq!(repo.update(&running, 1).await.unwrap(), 2);
    // A second writer that read version 1 loses.
    let mut other = e.clone();
    other.state.set(StateType::Killed, t(1));
    assert!(matches!(
        repo.update(&other, 1).await,
        Err(StoreError::Conflict(_))
    ));
    let got = repo.get("e1").await.unwrap().unwrap();
    assert_eq!(
        (got.version, got.execution.state.current),
        (2, StateType::Running)
    );
    assert_eq!(repo.list_non_terminal().await.unwrap(), ["e1"]);

    // Concurrent writers from the same version, plain updates and commits: exactly one wins.
    let handles = (0..8)
        .map(|i| {
            let executions = executions.clone();
            let mut e = got.execution.clone();
            let update = i % 2 == 0;
            let state = if update {
                StateType::Success
            } else {
                StateType::Failed
            };
            e.state.set(state, t(2));
            tokio::spawn(async move {
                if update {
                    executions.update(&e, 2).await
                } else {
                    executions.commit(transition(e, Some(2), vec![], vec![])).await
                }
            })
        })
        .collect();
    let results = join_all(handles).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    assert_eq!(conflicts(&results), 7, "{results:?}");
    assert_eq!(repo.get("e1").await.unwrap().unwrap().version, 3);

    assert!(repo.delete("e1").await.unwrap());
    assert!(repo.get("e1").await.unwrap().is_none());
    assert!(!repo.delete("e1").await.unwrap());
}

/// Namespace prefixes, flow, states, labels, start dates, sorts, pages; deleted
/// executions leave searches and the non-terminal list.
pub async fn execution_search_filters_sorts_and_pages(
    flows: &dyn FlowRepository,
    executions: &dyn ExecutionRepository,
) {
    // Executions exist only for flows (the DynamoDB adapter finds namespaces through them).
    for (ns, id) in [("company.team", "a"), ("company", "b"), ("companyx", "c")] {
        flows
            .save(FlowSave::create(ns, id, &flow_source(ns, id), t(0)))
            .await
            .unwrap();
    }
    let repo = executions;
    for e in [
        execution(
            "e1",
            "company.team",
            "a",
            StateType::Success,
            t(10),
            &[("k", "v")],
        ),
        execution("e2", "company.team", "a", StateType::Failed, t(20), &[]),
        execution("e3", "company", "b", StateType::Success, t(30), &[("k", "v")]),
        execution("e4", "companyx", "c", StateType::Running, t(40), &[]),
    ] {
        repo.insert(&e).await.unwrap();
    }
    let ids = |p: Page<Execution>| p.results.into_iter().map(|e| e.id).collect::<Vec<_>>();
    // Default: newest first.
    assert_eq!(
        ids(repo.search(&ExecutionQuery::default()).await.unwrap()),
        ["e4", "e3", "e2", "e1"]
    );
    let ns = ExecutionQuery {
        namespace: Some("company".into()),
        ..Default::default()
    };
    assert_eq!(ids(repo.search(&ns).await.unwrap()), ["e3", "e2", "e1"]);
    let flow = ExecutionQuery {
        namespace: Some("company.team".into()),
        flow_id: Some("a".into()),
        states: vec![StateType::Success],
        ..Default::default()
    };
    assert_eq!(ids(repo.search(&flow).await.unwrap()), ["e1"]);
    let labels = ExecutionQuery {
        labels: vec![Label {
            key: "k".into(),
            value: "v".into(),
        }],
        ..Default::default()
    };
    assert_eq!(ids(repo.search(&labels).await.unwrap()), ["e3", "e1"]);
    let dates = ExecutionQuery {
        start_date: Some(t(15)),
        end_date: Some(t(35)),
        ..Default::default()
    };
    assert_eq!(ids(repo.search(&dates).await.unwrap()), ["e3", "e2"]);
    let sorted = ExecutionQuery {
        sort: vec![Sort {
            field: "id".into(),
            descending: false,
        }],
        pagination: Pagination { page: 2, size: 3 },
        ..Default::default()
    };
    let page = repo.search(&sorted).await.unwrap();
    assert_eq!(page.total, 4);
    assert_eq!(ids(page), ["e4"]);
    assert_eq!(repo.list_non_terminal().await.unwrap(), ["e4"]);
    // Deleted executions leave searches.
    assert!(repo.delete("e2").await.unwrap());
    assert_eq!(ids(repo.search(&ns).await.unwrap()), ["e3", "e1"]);
}

/// What a lease returns of an item that a commit acked after it was pushed, before any
/// lease: the one place where the adapters' queues legitimately differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckedBeforeLease {
    /// Never delivered: the ack deletes the only copy (SQLite's queue table).
    Gone,
    /// Delivered once more (at least once): the push handed a copy to the transport, which
    /// a commit cannot recall without a lease's receipt (an SQS message; the ack removes
    /// the outbox row).
    StillDelivered,
}

/// A commit writes the execution, its logs, pushes and acks together, or nothing when the
/// version is stale; logs beyond one transaction's room follow it in order.
pub async fn commit_is_atomic_and_checks_the_version(
    executions: &dyn ExecutionRepository,
    queue: &dyn TaskQueue,
    logs: &dyn LogRepository,
    acked: AckedBeforeLease,
) {
    let repo = executions;
    let e = execution("e1", "dev", "f", StateType::Created, t(0), &[]);
    let item = |id: &str| WorkItem {
        id: id.into(),
        execution_id: "e1".into(),
        due: Utc::now(),
        work: Work::Start,
    };
    // An id pushed twice is one item.
    let first = transition(e.clone(), None, vec![item("w1"), item("w2"), item("w1")], vec![]);
    assert_eq!(repo.commit(first).await.unwrap(), 1);
    assert_eq!(queue.len().await.unwrap(), 2);
    // A stale version writes nothing: no log, no ack.
    assert!(matches!(
        repo.commit(transition(e.clone(), Some(7), vec![], vec!["w1".into()]))
            .await,
        Err(StoreError::Conflict(_))
    ));
    let all_logs = LogQuery {
        execution_id: "e1".into(),
        ..Default::default()
    };
    assert_eq!(logs.list(&all_logs).await.unwrap().len(), 1);
    assert_eq!(queue.len().await.unwrap(), 2);
    assert_eq!(
        repo.commit(transition(e.clone(), Some(1), vec![], vec!["w1".into()]))
            .await
            .unwrap(),
        2
    );
    assert_eq!(queue.len().await.unwrap(), 1);
    assert_eq!(logs.list(&all_logs).await.unwrap().len(), 2);
    // Neither claimed nor in the future: deliverable since the first commit.
    let leased = queue
        .lease(Utc::now(), 10, Duration::from_secs(30))
        .await
        .unwrap();
    let mut ids: Vec<_> = leased.iter().map(|i| i.id.as_str()).collect();
    ids.sort();
    let expected: &[&str] = match acked {
        AckedBeforeLease::Gone => &["w2"],
        AckedBeforeLease::StillDelivered => &["w1", "w2"],
    };
    assert_eq!(ids, expected);

    // More logs than one DynamoDB transaction holds (100 writes): the rest follow it, in order.
    let mut big = transition(e.clone(), Some(2), vec![], vec!["w2".into()]);
    big.logs = (0..150)
        .map(|i| log("e1", "INFO", None, &format!("line {i}")))
        .collect();
    assert_eq!(repo.commit(big).await.unwrap(), 3);
    let lines = logs.list(&all_logs).await.unwrap();
    assert_eq!(lines.len(), 152);
    assert_eq!(lines[2].message, "line 0");
    assert_eq!(lines[151].message, "line 149");
    assert!(queue.is_empty().await.unwrap());
}

/// The commit that ends a subflow's execution makes its parent's waiting item due, in
/// the same write; an execution without a parent wakes nothing.
pub async fn an_ended_subflow_wakes_its_waiting_parent(
    repo: &dyn ExecutionRepository,
    queue: &dyn TaskQueue,
) {
    let parent = execution("p1", "dev", "parent", StateType::Running, t(0), &[]);
    let wait = WorkItem {
        id: crate::ports::subflow_wait_id("c1"),
        execution_id: "p1".into(),
        due: DateTime::<Utc>::MAX_UTC,
        work: Work::SubflowEnded {
            task_run_id: "tr1".into(),
            child_execution_id: "c1".into(),
        },
    };
    let mut child: Execution = serde_json::from_value({
        let mut v =
            serde_json::to_value(execution("c1", "dev", "child", StateType::Running, t(0), &[])).unwrap();
        v["trigger"] = serde_json::json!({
            "id": "call", "type": "io.kestra.plugin.core.flow.Subflow",
            "variables": {"executionId": "p1", "namespace": "dev", "flowId": "parent"}
        });
        v
    })
    .unwrap();
    let mut step = transition(parent, None, vec![wait.clone()], vec![]);
    step.children = vec![child.clone()];
    repo.commit(step).await.unwrap();
    // Waiting "never": nothing to lease.
    assert!(queue
        .lease(Utc::now(), 10, Duration::from_secs(30))
        .await
        .unwrap()
        .is_empty());
    child.state.set(StateType::Success, t(1));
    let mut end = transition(child, Some(1), vec![], vec![]);
    end.wake = vec![wait.id.clone()];
    repo.commit(end).await.unwrap();
    let woken = queue
        .lease(Utc::now(), 10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(woken.len(), 1);
    assert_eq!(
        (woken[0].id.as_str(), &woken[0].work),
        (wait.id.as_str(), &wait.work)
    );
    assert!(woken[0].due <= Utc::now());
    // An execution without a parent does not even look for a waiting item.
    let lone = execution("l1", "dev", "child", StateType::Running, t(0), &[]);
    repo.commit(transition(lone.clone(), None, vec![], vec![]))
        .await
        .unwrap();
    let mut end = transition(lone, Some(1), vec![], vec![]);
    end.wake = vec![crate::ports::subflow_wait_id("l1")];
    repo.commit(end).await.unwrap();
}

/// First half of the reopening case: what a later instance over the same storage must see.
pub async fn write_before_reopening(flows: &dyn FlowRepository, executions: &dyn ExecutionRepository) {
    flows
        .save(FlowSave::create("company", "b", FLOW_B, t(0)))
        .await
        .unwrap();
    executions
        .insert(&execution("e1", "company", "b", StateType::Running, t(0), &[]))
        .await
        .unwrap();
}

/// Second half, on adapters opened anew after [`write_before_reopening`].
pub async fn check_after_reopening(flows: &dyn FlowRepository, executions: &dyn ExecutionRepository) {
    assert!(flows.get("company", "b", None, false).await.unwrap().is_some());
    assert_eq!(executions.list_non_terminal().await.unwrap(), ["e1"]);
}

// ---------------------------------------------------------------- logs

/// Append order, level and task run filters, delete by execution.
pub async fn logs_filter_by_level_and_task_run(logs: &dyn LogRepository) {
    logs.append(&[
        log("e1", "DEBUG", None, "1"),
        log("e1", "INFO", Some("tr1"), "2"),
        log("e1", "ERROR", Some("tr2"), "3"),
        log("e2", "INFO", None, "x"),
    ])
    .await
    .unwrap();
    let q = |execution: &str, min: Option<&str>, tr: Option<&str>| LogQuery {
        execution_id: execution.into(),
        min_level: min.and_then(LogLevel::parse),
        task_run_id: tr.map(str::to_string),
        ..Default::default()
    };
    let all = logs.list(&q("e1", None, None)).await.unwrap();
    assert_eq!(
        all.iter().map(|l| l.message.as_str()).collect::<Vec<_>>(),
        ["1", "2", "3"]
    );
    assert_eq!(logs.list(&q("e1", Some("WARN"), None)).await.unwrap().len(), 1);
    assert_eq!(
        logs.list(&q("e1", None, Some("tr1"))).await.unwrap()[0].message,
        "2"
    );
    assert_eq!(logs.delete_by_execution("e1").await.unwrap(), 3);
    assert!(logs.list(&q("e1", None, None)).await.unwrap().is_empty());
    // Other executions' logs stay.
    assert_eq!(logs.list(&q("e2", None, None)).await.unwrap().len(), 1);
}

// ---------------------------------------------------------------- queue

/// Pushes keep existing ids; a lease hides an item until it is acked, released or the
/// lease ends; items due later wait until rescheduled. Leases are taken at the real time,
/// the one clock an SQS visibility timeout follows.
pub async fn queue_leases_acks_and_redelivers(queue: &dyn TaskQueue) {
    let q = queue;
    // Whole milliseconds, the precision every queue keeps.
    let now = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("valid date");
    let item = |id: &str, due| WorkItem {
        id: id.into(),
        execution_id: "e".into(),
        due,
        work: Work::Kill,
    };
    let later = now + chrono::Duration::seconds(3600);
    q.push(&[item("now", now), item("later", later)]).await.unwrap();
    q.push(&[item("now", now + chrono::Duration::seconds(50))])
        .await
        .unwrap(); // existing id: unchanged
    assert_eq!(q.len().await.unwrap(), 2);
    assert_eq!(q.next_due().await.unwrap(), Some(now));
    let lease = Duration::from_secs(1);
    let got = q.lease(Utc::now(), 10, lease).await.unwrap();
    assert_eq!(got.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["now"]);
    assert_eq!(got[0].due, now);
    // Leased: invisible until the lease ends.
    assert!(q.lease(Utc::now(), 10, lease).await.unwrap().is_empty());
    // Not acked: delivered again after the lease.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        q.lease(Utc::now(), 10, Duration::from_secs(30))
            .await
            .unwrap()
            .len(),
        1
    );
    // Released leases are visible at once (start-up of the only consumer).
    assert_eq!(q.release_leases(2).await.unwrap().released, 1);
    let again = q.lease(Utc::now(), 10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(again.len(), 1);
    q.ack(&["now".to_string()]).await.unwrap();
    assert_eq!(q.len().await.unwrap(), 1);
    // An hour away: not delivered; rescheduled to now, it is.
    assert!(q.lease(Utc::now(), 10, lease).await.unwrap().is_empty());
    q.reschedule("later", Utc::now()).await.unwrap();
    let due = q.lease(Utc::now(), 10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(due.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["later"]);
    q.ack(&["later".to_string()]).await.unwrap();
    assert!(q.is_empty().await.unwrap());
    assert!(q.lease(Utc::now(), 10, lease).await.unwrap().is_empty());
}

// ---------------------------------------------------------------- files

/// Put, size, get and read back (also synchronously from a runtime worker), the size
/// bound (small and past 8 MiB), large files, prefix deletes by folder.
pub async fn file_storage_round_trip_and_bounds(files: Arc<dyn FileStorage>) {
    let fs = files.as_ref();
    let uri = "kestra:///dev/f/executions/e1/inputs/myfile/a.txt";
    assert_eq!(fs.put(uri, stream(b"hello".to_vec()), 100).await.unwrap(), 5);
    assert!(fs.exists(uri).await.unwrap());
    assert_eq!(fs.size(uri).await.unwrap(), Some(5));
    assert_eq!(read_all(fs.get(uri).await.unwrap()).await, b"hello");
    // read() of expressions runs synchronously inside the runtime.
    let reader = files.clone();
    let blocking = tokio::spawn(async move { reader.read_blocking(uri) })
        .await
        .unwrap();
    assert_eq!(blocking.unwrap(), b"hello");
    assert!(matches!(
        fs.get("kestra:///dev/none.txt").await,
        Err(StorageError::NotFound(_))
    ));
    assert_eq!(fs.size("kestra:///dev/none.txt").await.unwrap(), None);

    // Size bound: nothing is stored, small or large (S3 multipart).
    let big = "kestra:///dev/f/big.bin";
    assert!(matches!(
        fs.put(big, stream(vec![7u8; 200]), 100).await,
        Err(StorageError::TooLarge { limit: 100 })
    ));
    let huge = 8 * 1024 * 1024 + 3 * 1024 * 1024;
    assert!(matches!(
        fs.put(big, stream(vec![1u8; huge]), 9 * 1024 * 1024).await,
        Err(StorageError::TooLarge { .. })
    ));
    assert!(!fs.exists(big).await.unwrap());
    // 11 MiB (two S3 parts) read back intact.
    let data: Vec<u8> = (0..huge).map(|i| (i % 251) as u8).collect();
    assert_eq!(
        fs.put(big, stream(data.clone()), u64::MAX).await.unwrap(),
        huge as u64
    );
    assert_eq!(fs.size(big).await.unwrap(), Some(huge as u64));
    assert!(read_all(fs.get(big).await.unwrap()).await == data);

    // A prefix is a folder: e1/ goes, e10/ stays.
    let sibling = "kestra:///dev/f/executions/e10/x.txt";
    fs.put(sibling, stream(b"x".to_vec()), 10).await.unwrap();
    assert_eq!(
        fs.delete_prefix("kestra:///dev/f/executions/e1/").await.unwrap(),
        1
    );
    assert!(!fs.exists(uri).await.unwrap());
    assert!(fs.exists(sibling).await.unwrap());

    // A file received under the receiving prefix moves into place, names with spaces too.
    let received = format!("{RECEIVING_PREFIX}e2/myfile/my report.txt");
    let placed = "kestra:///dev/f/executions/e2/inputs/myfile/my report.txt";
    fs.put(&received, stream(b"moved".to_vec()), 10).await.unwrap();
    fs.rename(&received, placed).await.unwrap();
    assert!(!fs.exists(&received).await.unwrap());
    assert_eq!(read_all(fs.get(placed).await.unwrap()).await, b"moved");
    assert!(matches!(
        fs.rename(&received, placed).await,
        Err(StorageError::NotFound(_))
    ));
}

/// URIs that are not `kestra:///` or leave the root are refused by every operation, and
/// the root itself cannot be deleted.
pub async fn file_storage_refuses_paths_outside_its_root(files: &dyn FileStorage) {
    for bad in [
        "kestra:///../secret.txt",
        "kestra:///dev/../../secret.txt",
        "kestra:////etc/passwd",
        "kestra:///dev/./x",
        "file:///etc/passwd",
        "/etc/passwd",
        "kestra:///dev\\..\\x",
        "kestra:///C:/x",
    ] {
        assert!(
            matches!(
                files.put(bad, stream(b"x".to_vec()), 10).await,
                Err(StorageError::InvalidUri(_))
            ),
            "{bad}"
        );
        assert!(
            matches!(files.get(bad).await, Err(StorageError::InvalidUri(_))),
            "{bad}"
        );
        assert!(files.read_blocking(bad).is_err(), "{bad}");
    }
    assert!(files.delete_prefix("kestra:///").await.is_err());
}

// ---------------------------------------------------------------- concurrency slots

/// A step of `e` (at `version`) moving it to `state` with this use of its flow's slots.
fn slot_step(e: &Execution, version: i64, state: StateType, slot: Slot) -> Transition {
    let mut e = e.clone();
    e.state.set(state, t(10));
    let mut step = transition(e, Some(version), vec![], vec![]);
    step.logs.clear();
    step.slot = Some(slot);
    step
}

/// `concurrency.limit`: of many simultaneous starts against a limit of one, exactly one
/// takes the slot; a wait is written only while the slot is held; an end frees it for the
/// next start; slots are counted per flow.
pub async fn concurrency_slots_admit_up_to_the_limit(executions: Arc<dyn ExecutionRepository>) {
    let repo = executions.as_ref();
    let starts = 100;
    let created: Vec<Execution> = (0..starts)
        .map(|i| {
            execution(
                &format!("c{i:03}"),
                "dev",
                "limited",
                StateType::Created,
                t(i),
                &[],
            )
        })
        .collect();
    for e in &created {
        repo.insert(e).await.unwrap();
    }
    let take = Slot::Take { limit: 1 };
    let handles = created
        .iter()
        .map(|e| {
            let (executions, step) = (executions.clone(), slot_step(e, 1, StateType::Running, take));
            tokio::spawn(async move { executions.commit(step).await })
        })
        .collect();
    let outcomes = join_all(handles).await;
    let won: Vec<usize> = (0..outcomes.len()).filter(|i| outcomes[*i].is_ok()).collect();
    assert_eq!(won.len(), 1, "{outcomes:?}");
    let refused = outcomes
        .iter()
        .filter(|r| matches!(r, Err(StoreError::LimitReached(_))))
        .count();
    assert_eq!(refused, starts as usize - 1, "{outcomes:?}");
    // A refused start wrote nothing.
    let (winner, loser, other) = (
        &created[won[0]],
        &created[(won[0] + 1) % 100],
        &created[(won[0] + 2) % 100],
    );
    let stored = repo.get(&loser.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.version, stored.execution.state.current),
        (1, StateType::Created)
    );

    // Taking a slot the execution holds succeeds; starting and ending in one step is
    // still checked against the limit.
    assert_eq!(
        repo.commit(slot_step(winner, 2, StateType::Running, take))
            .await
            .unwrap(),
        3
    );
    assert!(matches!(
        repo.commit(slot_step(other, 1, StateType::Success, Slot::Check { limit: 1 }))
            .await,
        Err(StoreError::LimitReached(_))
    ));
    // Waiting while the slot is held is written.
    let wait = Slot::Wait { limit: 1 };
    assert_eq!(
        repo.commit(slot_step(loser, 1, StateType::Queued, wait))
            .await
            .unwrap(),
        2
    );
    // Another flow has its own slots.
    let elsewhere = execution("x1", "dev", "other", StateType::Created, t(0), &[]);
    repo.insert(&elsewhere).await.unwrap();
    repo.commit(slot_step(&elsewhere, 1, StateType::Running, take))
        .await
        .unwrap();

    // The winner ends: its slot is free, a wait is refused (redo the step) and a start wins.
    repo.commit(slot_step(winner, 3, StateType::Success, Slot::Release))
        .await
        .unwrap();
    assert!(matches!(
        repo.commit(slot_step(other, 1, StateType::Queued, wait)).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        repo.commit(slot_step(loser, 2, StateType::Running, take))
            .await
            .unwrap(),
        3
    );
    assert!(matches!(
        repo.commit(slot_step(other, 1, StateType::Running, take)).await,
        Err(StoreError::LimitReached(_))
    ));
    // A stale version is a conflict before it is a full flow: the step is redone.
    assert!(matches!(
        repo.commit(slot_step(other, 9, StateType::Running, take)).await,
        Err(StoreError::Conflict(_))
    ));
}

// ---------------------------------------------------------------- triggers

/// Insert once, update only from the stored version (of concurrent writers exactly one
/// wins), list by flow, search, delete.
pub async fn trigger_state_is_compare_and_set_and_searchable(triggers: Arc<dyn TriggerRepository>) {
    let s = triggers.as_ref();
    let mut state = TriggerState::new("company.team", "daily", "schedule");
    state.next_execution_date = Some(t(60));
    assert_eq!(s.put(&state, None).await.unwrap(), 1);
    assert!(matches!(
        s.put(&state, None).await,
        Err(StoreError::AlreadyExists(_))
    ));
    state.date = Some(t(60));
    assert_eq!(s.put(&state, Some(1)).await.unwrap(), 2);
    // A writer holding the old version loses.
    assert!(matches!(
        s.put(&state, Some(1)).await,
        Err(StoreError::Conflict(_))
    ));
    let stored = s.get("company.team", "daily", "schedule").await.unwrap().unwrap();
    assert_eq!((stored.version, stored.state.date), (2, Some(t(60))));
    // Concurrent evaluations from version 2: exactly one stores its state.
    let handles = (0..6)
        .map(|i| {
            let triggers = triggers.clone();
            let mut next = state.clone();
            next.date = Some(t(120 + i));
            tokio::spawn(async move { triggers.put(&next, Some(2)).await })
        })
        .collect();
    let outcomes = join_all(handles).await;
    assert_eq!(outcomes.iter().filter(|r| r.is_ok()).count(), 1, "{outcomes:?}");
    assert_eq!(conflicts(&outcomes), 5, "{outcomes:?}");

    s.put(&TriggerState::new("company.team", "daily", "alert"), None)
        .await
        .unwrap();
    s.put(&TriggerState::new("other", "flow", "schedule"), None)
        .await
        .unwrap();
    let ids: Vec<String> = s
        .list_for_flow("company.team", "daily")
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.state.trigger_id)
        .collect();
    assert_eq!(ids, ["alert", "schedule"]);
    let by_ns = TriggerQuery {
        namespace: Some("company".into()),
        ..Default::default()
    };
    assert_eq!(s.search(&by_ns).await.unwrap().total, 2);
    let text = TriggerQuery {
        q: Some("OTHER".into()),
        ..Default::default()
    };
    assert_eq!(s.search(&text).await.unwrap().results[0].namespace, "other");
    assert!(s.delete("other", "flow", "schedule").await.unwrap());
    assert!(!s.delete("other", "flow", "schedule").await.unwrap());
}

// ---------------------------------------------------------------- kv store

fn kv_write(value: KvValue, expires: Option<DateTime<Utc>>) -> KvWrite {
    KvWrite {
        value,
        description: None,
        expiration_date: expires,
    }
}

/// Values keep their type; pairs are per namespace; `overwrite: false` refuses a live
/// pair; expired pairs are absent everywhere (and may be set again); a rewrite keeps
/// the creation date; delete says whether a live pair was there.
pub async fn kv_store_types_namespaces_and_expiry(kv: &dyn KvStore) {
    use serde_json::json;
    let typed = [
        KvValue::string("hello"),
        KvValue::new(KvType::Number, json!(4.5)),
        KvValue::new(KvType::Boolean, json!(true)),
        KvValue::new(KvType::Datetime, json!("2024-01-02T03:04:05Z")),
        KvValue::new(KvType::Date, json!("2024-01-02")),
        KvValue::new(KvType::Duration, json!("PT1H")),
        KvValue::new(KvType::Json, json!({"a": [1, {"b": null}]})),
    ];
    for (i, value) in typed.iter().enumerate() {
        let key = format!("k{i}");
        kv.put_kv("team", &key, kv_write(value.clone(), None), true, t(0))
            .await
            .unwrap();
        assert_eq!(
            kv.get_kv("team", &key, t(1)).await.unwrap().as_ref(),
            Some(value),
            "{key}"
        );
    }
    assert_eq!(
        kv.get_kv("team.sub", "k0", t(1)).await.unwrap(),
        None,
        "per namespace"
    );
    assert_eq!(kv.get_kv("team", "absent", t(1)).await.unwrap(), None);

    // Listing: live pairs by key, with their metadata.
    let described = KvWrite {
        description: Some("the answer".into()),
        ..kv_write(KvValue::new(KvType::Number, json!(42)), Some(t(100)))
    };
    kv.put_kv("other", "b", described, true, t(0)).await.unwrap();
    kv.put_kv("other", "a", kv_write(KvValue::string("x"), None), true, t(0))
        .await
        .unwrap();
    let listed = kv.list_kv("other", t(1)).await.unwrap();
    let keys: Vec<&str> = listed.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["a", "b"]);
    assert_eq!(listed[1].description.as_deref(), Some("the answer"));
    assert_eq!(listed[1].expiration_date, Some(t(100)));
    assert_eq!(listed[1].creation_date, t(0));
    assert_eq!(kv.list_kv("team", t(1)).await.unwrap().len(), typed.len());
    assert!(kv.list_kv("nobody", t(1)).await.unwrap().is_empty());

    // overwrite: false refuses a live pair, leaving it as it was.
    let refused = kv
        .put_kv("other", "a", kv_write(KvValue::string("y"), None), false, t(2))
        .await;
    assert!(
        matches!(refused, Err(StoreError::AlreadyExists(_))),
        "{refused:?}"
    );
    assert_eq!(
        kv.get_kv("other", "a", t(3)).await.unwrap(),
        Some(KvValue::string("x"))
    );
    // A rewrite keeps the creation date and moves the update date.
    kv.put_kv("other", "a", kv_write(KvValue::string("z"), None), true, t(5))
        .await
        .unwrap();
    let a = kv.list_kv("other", t(6)).await.unwrap().remove(0);
    assert_eq!((a.creation_date, a.update_date), (t(0), t(5)));

    // Expired: absent for get, list and delete, and free to set with overwrite: false.
    assert_eq!(kv.get_kv("other", "b", t(100)).await.unwrap(), None);
    let keys: Vec<String> = kv
        .list_kv("other", t(100))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(keys, ["a"]);
    assert!(!kv.delete_kv("other", "b", t(100)).await.unwrap());
    kv.put_kv(
        "other",
        "b",
        kv_write(KvValue::string("new"), None),
        false,
        t(101),
    )
    .await
    .unwrap();
    assert_eq!(
        kv.get_kv("other", "b", t(102)).await.unwrap(),
        Some(KvValue::string("new"))
    );

    // Delete.
    assert!(kv.delete_kv("other", "b", t(103)).await.unwrap());
    assert!(!kv.delete_kv("other", "b", t(104)).await.unwrap());
    assert_eq!(kv.get_kv("other", "b", t(105)).await.unwrap(), None);
}

/// Of writers racing with `overwrite: false` on one key, exactly one wins.
pub async fn kv_put_without_overwrite_is_atomic(kv: Arc<dyn KvStore>) {
    let mut racers = Vec::new();
    for i in 0..8 {
        let kv = kv.clone();
        racers.push(tokio::spawn(async move {
            let write = kv_write(KvValue::string(format!("w{i}")), None);
            kv.put_kv("race", "once", write, false, t(0)).await
        }));
    }
    let mut won = 0;
    for racer in racers {
        match racer.await.expect("racer") {
            Ok(()) => won += 1,
            Err(StoreError::AlreadyExists(_)) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(won, 1);
}
