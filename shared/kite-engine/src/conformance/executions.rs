//! Conformance cases: executions.

use super::*;

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
    // The newest execution of one flow, its namespace matched exactly.
    let latest = |ns: &'static str, flow: &'static str| async move {
        repo.latest_of_flow(ns, flow).await.unwrap().map(|e| e.id)
    };
    assert_eq!(latest("company.team", "a").await.as_deref(), Some("e2"));
    assert_eq!(latest("company", "b").await.as_deref(), Some("e3"));
    assert_eq!(
        latest("company", "a").await,
        None,
        "company.team's flow a is not company's"
    );
    assert_eq!(latest("companyx", "b").await, None);
    // Deleted executions leave searches.
    assert!(repo.delete("e2").await.unwrap());
    assert_eq!(ids(repo.search(&ns).await.unwrap()), ["e3", "e1"]);
    assert_eq!(latest("company.team", "a").await.as_deref(), Some("e1"));
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
