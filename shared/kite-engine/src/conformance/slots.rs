//! Conformance cases: concurrency slots.

use super::*;

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
