//! Conformance cases: flows.

use super::*;

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
