//! A task run's I/O under at-least-once delivery, on the local store: two deliveries of
//! the same work item at once make the I/O once, and a host's run window (a Lambda
//! invocation) stops a job at its end: failing it when it had the whole window, running
//! it again in the next window otherwise.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use indexmap::IndexMap;
use kite_core::execution::StateType;
use kite_core::executor::TaskResult;
use kite_core::plugin::IoJob;
use kite_engine::ports::{TaskWorker, Work, WorkItem, WorkerContext};
use kite_engine::{Engine, EngineConfig, RunWindow};
use kite_local::local_ports;
use tokio::time::Instant;

mod common;
use common::{create, messages};

const CALL: &str = r#"
id: call
namespace: dev
tasks:
  - id: request
    type: io.kestra.plugin.core.http.Request
    uri: http://127.0.0.1:9/never-called
"#;

/// Counts the jobs it runs; each takes `takes`, then succeeds.
struct CountingWorker {
    runs: AtomicU32,
    takes: std::sync::Mutex<Duration>,
}

#[async_trait]
impl TaskWorker for CountingWorker {
    async fn run(&self, job: IoJob, _context: WorkerContext) -> TaskResult {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let takes = *self.takes.lock().unwrap();
        tokio::time::sleep(takes).await;
        job.task_run.result(StateType::Success, IndexMap::new())
    }
}

fn engine(takes: Duration) -> (tempfile::TempDir, Engine, Arc<CountingWorker>) {
    let dir = tempfile::tempdir().unwrap();
    let worker = Arc::new(CountingWorker {
        runs: AtomicU32::new(0),
        takes: std::sync::Mutex::new(takes),
    });
    let mut ports = local_ports(dir.path()).unwrap();
    ports.worker = worker.clone();
    (dir, Engine::new(ports, EngineConfig::default()), worker)
}

/// Processes queued items until the execution's task run is on the worker; returns its item.
async fn run_item(engine: &Engine, execution_id: &str) -> WorkItem {
    for _ in 0..100 {
        let items = engine
            .ports()
            .queue
            .lease(engine.now(), 10, Duration::from_secs(30))
            .await
            .unwrap();
        for item in items {
            if item.execution_id == execution_id && matches!(item.work, Work::RunTask { .. }) {
                return item;
            }
            engine.process(item).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no task run reached the worker");
}

async fn state(engine: &Engine, id: &str) -> StateType {
    engine.get_execution(id).await.unwrap().state.current
}

#[tokio::test]
async fn two_deliveries_at_once_make_the_io_once() {
    let (_dir, engine, worker) = engine(Duration::from_millis(300));
    engine.create_flow(CALL).await.unwrap();
    let execution = engine.create_execution(create("call")).await.unwrap();
    let item = run_item(&engine, &execution.id).await;
    let (first, second) = tokio::join!(engine.process(item.clone()), engine.process(item.clone()));
    first.unwrap();
    second.unwrap();
    assert_eq!(worker.runs.load(Ordering::SeqCst), 1, "the I/O ran once");
    assert_eq!(state(&engine, &execution.id).await, StateType::Success);
    // A third delivery after the end finds nothing to do.
    engine.process(item).await.unwrap();
    assert_eq!(worker.runs.load(Ordering::SeqCst), 1);
    assert!(
        engine.ports().queue.is_empty().await.unwrap(),
        "nothing left queued"
    );
}

#[tokio::test]
async fn a_job_that_had_the_whole_window_fails_naming_the_limit() {
    let (_dir, engine, worker) = engine(Duration::from_secs(60));
    engine.create_flow(CALL).await.unwrap();
    let execution = engine.create_execution(create("call")).await.unwrap();
    let item = run_item(&engine, &execution.id).await;
    let now = Instant::now();
    engine.set_run_window(Some(RunWindow {
        started: now,
        deadline: now + Duration::from_secs(3),
    }));
    engine.process(item).await.unwrap();
    assert_eq!(worker.runs.load(Ordering::SeqCst), 1);
    assert_eq!(state(&engine, &execution.id).await, StateType::Failed);
    let log = messages(&engine, &execution.id).await.join("\n");
    assert!(
        log.contains("did not finish within the worker's time limit")
            && log.contains("lasts 3 s (its Lambda timeout)"),
        "{log}"
    );
}

#[tokio::test]
async fn a_job_started_late_in_its_window_runs_again_in_the_next() {
    let (_dir, engine, worker) = engine(Duration::from_secs(60));
    engine.create_flow(CALL).await.unwrap();
    let execution = engine.create_execution(create("call")).await.unwrap();
    let item = run_item(&engine, &execution.id).await;
    // Most of this window was spent before the job: 3 s are left of 30.
    let now = Instant::now();
    engine.set_run_window(Some(RunWindow {
        started: now - Duration::from_secs(27),
        deadline: now + Duration::from_secs(3),
    }));
    engine.process(item).await.unwrap();
    assert_eq!(worker.runs.load(Ordering::SeqCst), 1);
    assert_eq!(
        state(&engine, &execution.id).await,
        StateType::Running,
        "not failed"
    );
    // The next window: the item comes back after the claim, and the job runs to its end.
    engine.set_run_window(None);
    *worker.takes.lock().unwrap() = Duration::ZERO;
    let again = run_item(&engine, &execution.id).await;
    engine.process(again).await.unwrap();
    assert_eq!(worker.runs.load(Ordering::SeqCst), 2);
    assert_eq!(state(&engine, &execution.id).await, StateType::Success);
}

/// Where steps run in other processes (the Lambdas), a kill committed by one of them
/// stops a job running here: the job reads its execution's state while it runs.
#[tokio::test]
async fn a_kill_committed_elsewhere_stops_a_running_job() {
    let dir = tempfile::tempdir().unwrap();
    let worker = Arc::new(CountingWorker {
        runs: AtomicU32::new(0),
        takes: std::sync::Mutex::new(Duration::from_secs(60)),
    });
    let mut ports = local_ports(dir.path()).unwrap();
    ports.worker = worker.clone();
    let config = EngineConfig {
        watch_poll: Some(Duration::from_millis(200)),
        ..EngineConfig::default()
    };
    let here = Engine::new(ports, config.clone());
    // Another process over the same store: its kill is not seen in this one's memory.
    let elsewhere = Engine::new(local_ports(dir.path()).unwrap(), config);
    here.create_flow(CALL).await.unwrap();
    let execution = here.create_execution(create("call")).await.unwrap();
    let item = run_item(&here, &execution.id).await;
    let running = tokio::spawn({
        let here = here.clone();
        async move { here.process(item).await }
    });
    while worker.runs.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    elsewhere.kill(&execution.id).await.unwrap();
    let kill = elsewhere
        .ports()
        .queue
        .lease(elsewhere.now(), 10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(kill.len(), 1, "the kill's work item");
    elsewhere.process(kill[0].clone()).await.unwrap();
    // Stopped by the poll (every second), long before the job's 60 s.
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("the job stopped")
        .unwrap()
        .unwrap();
    assert_eq!(state(&here, &execution.id).await, StateType::Killed);
}
