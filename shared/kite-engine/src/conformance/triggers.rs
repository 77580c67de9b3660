//! Conformance cases: triggers.

use super::*;

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
