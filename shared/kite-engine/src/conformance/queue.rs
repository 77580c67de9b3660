//! Conformance cases: queue.

use super::*;

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

/// A task run attempt's I/O is claimed once: a second claimant is refused while the claim
/// lasts and takes it over once it has ended (its holder died).
pub async fn run_claims_are_exclusive_until_they_end(queue: &dyn TaskQueue) {
    let now = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("valid date");
    let until = now + chrono::Duration::seconds(30);
    let run = format!("run-claim-{}", now.timestamp_millis());
    assert!(queue.claim_run(&run, now, until).await.unwrap(), "first claim");
    assert!(!queue.claim_run(&run, now, until).await.unwrap(), "held: refused");
    let before_end = until - chrono::Duration::milliseconds(1);
    assert!(
        !queue.claim_run(&run, before_end, until).await.unwrap(),
        "still held"
    );
    // Another attempt of the same task run is another claim.
    assert!(queue.claim_run(&format!("{run}-2"), now, until).await.unwrap());
    // Ended: the next claimant takes it over, and holds it in turn.
    let later = until + chrono::Duration::seconds(60);
    assert!(
        queue.claim_run(&run, until, later).await.unwrap(),
        "ended: taken over"
    );
    assert!(!queue.claim_run(&run, until, later).await.unwrap(), "held again");
}
