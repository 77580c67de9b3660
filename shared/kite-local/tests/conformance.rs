//! Port conformance: the guarantees every adapter must give, checked on the SQLite
//! store and the local file storage.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use kite_core::execution::{Execution, ExecutionMetadata, Label, LogEntry, State, StateType};
use kite_engine::ports::*;
use kite_local::{LocalFileStorage, SqliteStore};

fn t(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + s, 0)
        .single()
        .expect("valid date")
}

fn execution(
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

fn log(execution_id: &str, level: &str, task_run: Option<&str>, msg: &str) -> LogEntry {
    LogEntry {
        namespace: "dev".into(),
        flow_id: "f".into(),
        task_id: task_run.map(|_| "t".to_string()),
        execution_id: execution_id.into(),
        task_run_id: task_run.map(str::to_string),
        attempt_number: None,
        trigger_id: None,
        timestamp: t(0),
        level: level.into(),
        thread: None,
        message: msg.into(),
    }
}

fn store() -> (tempfile::TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("kite.db")).expect("open");
    (dir, Arc::new(store))
}

const FLOW_A: &str = "id: a\nnamespace: company.team\nlabels:\n  env: prod\ntasks:\n  - id: l\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n";
const FLOW_A2: &str = "id: a\nnamespace: company.team\ntasks:\n  - id: l\n    type: io.kestra.plugin.core.log.Log\n    message: changed\n";
const FLOW_B: &str = "id: b\nnamespace: company\ntasks:\n  - id: l\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n";
const FLOW_C: &str = "id: c\nnamespace: companyx\ntasks:\n  - id: l\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n";

#[tokio::test]
async fn flows_have_revisions_and_soft_delete() {
    let (_d, s) = store();
    let flows: &dyn FlowRepository = s.as_ref();
    let a = flows.create("company.team", "a", FLOW_A, t(0)).await.unwrap();
    assert_eq!(a.revision, 1);
    assert!(matches!(
        flows.create("company.team", "a", FLOW_A, t(1)).await,
        Err(StoreError::AlreadyExists(_))
    ));
    // Same source: no new revision.
    assert_eq!(
        flows
            .update("company.team", "a", FLOW_A, t(1))
            .await
            .unwrap()
            .revision,
        1
    );
    assert_eq!(
        flows
            .update("company.team", "a", FLOW_A2, t(2))
            .await
            .unwrap()
            .revision,
        2
    );
    assert_eq!(
        flows
            .get("company.team", "a", None, false)
            .await
            .unwrap()
            .unwrap()
            .source,
        FLOW_A2
    );
    assert_eq!(
        flows
            .get("company.team", "a", Some(1), false)
            .await
            .unwrap()
            .unwrap()
            .source,
        FLOW_A
    );
    assert!(flows
        .get("company.team", "a", Some(9), false)
        .await
        .unwrap()
        .is_none());
    assert_eq!(flows.revisions("company.team", "a").await.unwrap().len(), 2);
    assert!(matches!(
        flows.update("x", "nope", FLOW_A, t(3)).await,
        Err(StoreError::NotFound(_))
    ));

    assert!(flows.delete("company.team", "a", t(4)).await.unwrap());
    assert!(!flows.delete("company.team", "a", t(4)).await.unwrap());
    assert!(flows
        .get("company.team", "a", None, false)
        .await
        .unwrap()
        .is_none());
    assert!(
        flows
            .get("company.team", "a", None, true)
            .await
            .unwrap()
            .unwrap()
            .deleted
    );
    // Re-created after deletion: the next revision number.
    assert_eq!(
        flows
            .create("company.team", "a", FLOW_A, t(5))
            .await
            .unwrap()
            .revision,
        4
    );
}

#[tokio::test]
async fn flow_search_filters_and_pages() {
    let (_d, s) = store();
    let flows: &dyn FlowRepository = s.as_ref();
    flows.create("company.team", "a", FLOW_A, t(0)).await.unwrap();
    flows.create("company", "b", FLOW_B, t(0)).await.unwrap();
    flows.create("companyx", "c", FLOW_C, t(0)).await.unwrap();
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
    assert_eq!(flows.search(&labelled).await.unwrap().results[0].id, "a");
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
    assert_eq!(p2.results.len(), 1);
    assert_eq!(p2.total, 3);
}

#[tokio::test]
async fn execution_updates_are_compare_and_set() {
    let (_d, s) = store();
    let repo: &dyn ExecutionRepository = s.as_ref();
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
    assert_eq!(got.version, 2);
    assert_eq!(got.execution.state.current, StateType::Running);
    assert_eq!(repo.list_non_terminal().await.unwrap(), ["e1"]);

    // Concurrent writers from the same version: exactly one wins.
    let results = futures_join(s.clone(), got.execution.clone()).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert_eq!(
        results
            .iter()
            .filter(|r| matches!(r, Err(StoreError::Conflict(_))))
            .count(),
        7
    );

    assert!(repo.delete("e1").await.unwrap());
    assert!(repo.get("e1").await.unwrap().is_none());
    assert!(!repo.delete("e1").await.unwrap());
}

async fn futures_join(s: Arc<SqliteStore>, e: Execution) -> Vec<Result<i64, StoreError>> {
    let mut handles = Vec::new();
    for _ in 0..8 {
        let s = s.clone();
        let e = e.clone();
        handles.push(tokio::spawn(async move {
            ExecutionRepository::update(s.as_ref(), &e, 2).await
        }));
    }
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("join"));
    }
    out
}

#[tokio::test]
async fn execution_search_filters_sorts_and_pages() {
    let (_d, s) = store();
    let repo: &dyn ExecutionRepository = s.as_ref();
    repo.insert(&execution(
        "e1",
        "company.team",
        "a",
        StateType::Success,
        t(10),
        &[("k", "v")],
    ))
    .await
    .unwrap();
    repo.insert(&execution(
        "e2",
        "company.team",
        "a",
        StateType::Failed,
        t(20),
        &[],
    ))
    .await
    .unwrap();
    repo.insert(&execution(
        "e3",
        "company",
        "b",
        StateType::Success,
        t(30),
        &[("k", "v")],
    ))
    .await
    .unwrap();
    repo.insert(&execution("e4", "companyx", "c", StateType::Running, t(40), &[]))
        .await
        .unwrap();
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
}

#[tokio::test]
async fn commit_is_atomic_and_checks_the_version() {
    let (_d, s) = store();
    let repo: &dyn ExecutionRepository = s.as_ref();
    let queue: &dyn TaskQueue = s.as_ref();
    let logs: &dyn LogRepository = s.as_ref();
    let e = execution("e1", "dev", "f", StateType::Created, t(0), &[]);
    let item = WorkItem {
        id: "w1".into(),
        execution_id: "e1".into(),
        due: t(0),
        work: Work::Start,
    };
    let tr = |expected, push: Vec<WorkItem>, ack: Vec<String>| Transition {
        execution: e.clone(),
        expected_version: expected,
        logs: vec![log("e1", "INFO", None, "hello")],
        push,
        claimed: vec![],
        claim_until: None,
        ack,
        wake: vec![],
        children: vec![],
    };
    assert_eq!(
        repo.commit(tr(None, vec![item.clone()], vec![])).await.unwrap(),
        1
    );
    // A stale version writes nothing: no log, no ack.
    assert!(matches!(
        repo.commit(tr(Some(7), vec![], vec!["w1".into()])).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        logs.list(&LogQuery {
            execution_id: "e1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .len(),
        1
    );
    assert_eq!(queue.len().await.unwrap(), 1);
    assert_eq!(
        repo.commit(tr(Some(1), vec![], vec!["w1".into()])).await.unwrap(),
        2
    );
    assert_eq!(queue.len().await.unwrap(), 0);
}

#[tokio::test]
async fn logs_filter_by_level_and_task_run() {
    let (_d, s) = store();
    let logs: &dyn LogRepository = s.as_ref();
    logs.append(&[
        log("e1", "DEBUG", None, "1"),
        log("e1", "INFO", Some("tr1"), "2"),
        log("e1", "ERROR", Some("tr2"), "3"),
        log("e2", "INFO", None, "x"),
    ])
    .await
    .unwrap();
    let all = logs
        .list(&LogQuery {
            execution_id: "e1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|l| l.message.as_str()).collect::<Vec<_>>(),
        ["1", "2", "3"]
    );
    let warn = logs
        .list(&LogQuery {
            execution_id: "e1".into(),
            min_level: Some("WARN".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(warn.len(), 1);
    let tr1 = logs
        .list(&LogQuery {
            execution_id: "e1".into(),
            task_run_id: Some("tr1".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(tr1[0].message, "2");
    assert_eq!(logs.delete_by_execution("e1").await.unwrap(), 3);
    assert!(logs
        .list(&LogQuery {
            execution_id: "e1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn queue_leases_acks_and_redelivers() {
    let (_d, s) = store();
    let q: &dyn TaskQueue = s.as_ref();
    let item = |id: &str, due| WorkItem {
        id: id.into(),
        execution_id: "e".into(),
        due,
        work: Work::Kill,
    };
    q.push(&[item("now", t(0)), item("later", t(100))]).await.unwrap();
    q.push(&[item("now", t(50))]).await.unwrap(); // existing id: unchanged
    assert_eq!(q.next_due().await.unwrap(), Some(t(0)));
    let lease = Duration::from_secs(30);
    let got = q.lease(t(1), 10, lease).await.unwrap();
    assert_eq!(got.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["now"]);
    assert_eq!(got[0].due, t(0));
    // Leased: invisible until the lease ends.
    assert!(q.lease(t(2), 10, lease).await.unwrap().is_empty());
    // Not acked: delivered again after the lease.
    assert_eq!(q.lease(t(32), 10, lease).await.unwrap().len(), 1);
    q.ack(&["now".to_string()]).await.unwrap();
    assert!(q.lease(t(99), 10, lease).await.unwrap().is_empty());
    assert_eq!(q.lease(t(100), 10, lease).await.unwrap()[0].id, "later");
    // Released leases are visible at once (start-up of the only consumer).
    assert_eq!(q.release_leases().await.unwrap(), 1);
    assert_eq!(q.lease(t(101), 10, lease).await.unwrap().len(), 1);
    q.reschedule("later", t(500)).await.unwrap();
    assert!(q.lease(t(200), 10, lease).await.unwrap().is_empty());
    assert_eq!(q.len().await.unwrap(), 1);
}

#[tokio::test]
async fn data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kite.db");
    {
        let s = SqliteStore::open(&path).unwrap();
        FlowRepository::create(&s, "company", "b", FLOW_B, t(0))
            .await
            .unwrap();
        ExecutionRepository::insert(
            &s,
            &execution("e1", "company", "b", StateType::Running, t(0), &[]),
        )
        .await
        .unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    assert!(FlowRepository::get(&s, "company", "b", None, false)
        .await
        .unwrap()
        .is_some());
    assert_eq!(ExecutionRepository::list_non_terminal(&s).await.unwrap(), ["e1"]);
}

fn stream(bytes: &'static [u8]) -> ByteStream {
    Box::pin(bytes)
}

#[tokio::test]
async fn file_storage_round_trip_and_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let fs = LocalFileStorage::new(dir.path().join("storage")).unwrap();
    let uri = "kestra:///dev/f/executions/e1/inputs/myfile/a.txt";
    assert_eq!(fs.put(uri, stream(b"hello"), 100).await.unwrap(), 5);
    assert!(fs.exists(uri).await.unwrap());
    assert_eq!(fs.size(uri).await.unwrap(), Some(5));
    let mut out = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut fs.get(uri).await.unwrap(), &mut out)
        .await
        .unwrap();
    assert_eq!(out, b"hello");
    assert_eq!(fs.read_blocking(uri).unwrap(), b"hello");
    assert!(matches!(
        fs.get("kestra:///dev/none.txt").await,
        Err(StorageError::NotFound(_))
    ));

    // Size bound: nothing is stored.
    let big = "kestra:///dev/f/big.bin";
    assert!(matches!(
        fs.put(big, stream(&[7u8; 200]), 100).await,
        Err(StorageError::TooLarge { limit: 100 })
    ));
    assert!(!fs.exists(big).await.unwrap());

    assert_eq!(
        fs.delete_prefix("kestra:///dev/f/executions/e1/").await.unwrap(),
        1
    );
    assert!(!fs.exists(uri).await.unwrap());
}

#[tokio::test]
async fn file_storage_refuses_paths_outside_its_root() {
    let dir = tempfile::tempdir().unwrap();
    let fs = LocalFileStorage::new(dir.path().join("storage")).unwrap();
    std::fs::write(dir.path().join("secret.txt"), "secret").unwrap();
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
                fs.put(bad, stream(b"x"), 10).await,
                Err(StorageError::InvalidUri(_))
            ),
            "{bad}"
        );
        assert!(
            matches!(fs.get(bad).await, Err(StorageError::InvalidUri(_))),
            "{bad}"
        );
        assert!(fs.read_blocking(bad).is_err(), "{bad}");
    }
    assert!(fs.delete_prefix("kestra:///").await.is_err());
    assert!(dir.path().join("secret.txt").exists());
}

#[tokio::test]
async fn trigger_state_is_compare_and_set_and_searchable() {
    use kite_core::trigger::TriggerState;
    use kite_engine::ports::{TriggerQuery, TriggerRepository};
    let (_dir, s) = store();
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
    let stored = TriggerRepository::get(&*s, "company.team", "daily", "schedule")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((stored.version, stored.state.date), (2, Some(t(60))));

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
    let page = TriggerRepository::search(
        &*s,
        &TriggerQuery {
            namespace: Some("company".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(page.total, 2);
    let page = TriggerRepository::search(
        &*s,
        &TriggerQuery {
            q: Some("OTHER".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(page.results[0].namespace, "other");
    assert!(TriggerRepository::delete(&*s, "other", "flow", "schedule")
        .await
        .unwrap());
    assert!(!TriggerRepository::delete(&*s, "other", "flow", "schedule")
        .await
        .unwrap());
}
