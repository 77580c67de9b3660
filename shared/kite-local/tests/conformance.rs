//! Port conformance of the SQLite store and the local file storage: the shared suite
//! (`kite_engine::conformance`), plus what only these adapters promise (leases that end
//! by the `now` they are given, reopening the database file, a storage root on disk).

use std::sync::Arc;
use std::time::Duration;

use kite_engine::conformance::{self as suite, t};
use kite_engine::ports::*;
use kite_local::{LocalFileStorage, SqliteStore};

fn store() -> (tempfile::TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("kite.db")).expect("open");
    (dir, Arc::new(store))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flows_have_revisions_and_soft_delete() {
    let (_d, s) = store();
    suite::flows_have_revisions_and_soft_delete(s).await;
}

#[tokio::test]
async fn flow_search_filters_and_pages() {
    let (_d, s) = store();
    suite::flow_search_filters_and_pages(s.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn execution_updates_are_compare_and_set() {
    let (_d, s) = store();
    suite::execution_updates_are_compare_and_set(s.as_ref(), s.clone()).await;
}

#[tokio::test]
async fn execution_search_filters_sorts_and_pages() {
    let (_d, s) = store();
    suite::execution_search_filters_sorts_and_pages(s.as_ref(), s.as_ref()).await;
}

#[tokio::test]
async fn an_ended_subflow_wakes_its_waiting_parent() {
    let (_d, s) = store();
    let s = s.as_ref();
    suite::an_ended_subflow_wakes_its_waiting_parent(s, s).await;
}

#[tokio::test]
async fn commit_is_atomic_and_checks_the_version() {
    let (_d, s) = store();
    let s = s.as_ref();
    suite::commit_is_atomic_and_checks_the_version(s, s, s, suite::AckedBeforeLease::Gone).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrency_slots_admit_up_to_the_limit() {
    let (_d, s) = store();
    suite::concurrency_slots_admit_up_to_the_limit(s).await;
}

#[tokio::test]
async fn kv_store_types_namespaces_and_expiry() {
    let (_d, s) = store();
    suite::kv_store_types_namespaces_and_expiry(s.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kv_put_without_overwrite_is_atomic() {
    let (_d, s) = store();
    suite::kv_put_without_overwrite_is_atomic(s).await;
}

#[tokio::test]
async fn logs_filter_by_level_and_task_run() {
    let (_d, s) = store();
    suite::logs_filter_by_level_and_task_run(s.as_ref()).await;
}

#[tokio::test]
async fn queue_leases_acks_and_redelivers() {
    let (_d, s) = store();
    suite::queue_leases_acks_and_redelivers(s.as_ref()).await;
}

#[tokio::test]
async fn run_claims_are_exclusive_until_they_end() {
    let (_d, s) = store();
    suite::run_claims_are_exclusive_until_they_end(s.as_ref()).await;
}

/// SQLite's leases and due dates follow the `now` a lease is given, to the second here.
#[tokio::test]
async fn queue_leases_follow_the_given_clock() {
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
    let found = q.release_leases(2).await.unwrap();
    assert_eq!((found.released, found.crashed.len()), (1, 0));
    assert_eq!(q.lease(t(101), 10, lease).await.unwrap().len(), 1);
    // In hand at a second death: kept back, leased, and returned with its count.
    let found = q.release_leases(2).await.unwrap();
    assert_eq!(found.released, 0);
    assert_eq!(found.crashed.len(), 1);
    assert_eq!((found.crashed[0].0.id.as_str(), found.crashed[0].1), ("later", 2));
    assert!(q.lease(t(102), 10, lease).await.unwrap().is_empty());
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
        suite::write_before_reopening(&s, &s).await;
    }
    let s = SqliteStore::open(&path).unwrap();
    suite::check_after_reopening(&s, &s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_storage_round_trip_and_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let fs = LocalFileStorage::new(dir.path().join("storage")).unwrap();
    suite::file_storage_round_trip_and_bounds(Arc::new(fs)).await;
}

#[tokio::test]
async fn file_storage_lists_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let fs = LocalFileStorage::new(dir.path().join("storage")).unwrap();
    suite::file_storage_lists_a_folder(&fs).await;
}

#[tokio::test]
async fn file_storage_refuses_paths_outside_its_root() {
    let dir = tempfile::tempdir().unwrap();
    let fs = LocalFileStorage::new(dir.path().join("storage")).unwrap();
    // The storage root's neighbour, which the refused paths aim at.
    std::fs::write(dir.path().join("secret.txt"), "secret").unwrap();
    suite::file_storage_refuses_paths_outside_its_root(&fs).await;
    assert!(dir.path().join("secret.txt").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trigger_state_is_compare_and_set_and_searchable() {
    let (_d, s) = store();
    suite::trigger_state_is_compare_and_set_and_searchable(s).await;
}
