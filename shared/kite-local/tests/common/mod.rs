//! Helpers the engine tests share.

use std::time::Duration;

use kite_core::execution::Execution;
use kite_engine::ports::LogQuery;
use kite_engine::{CreateExecution, Engine};

/// A request to start an execution of `dev`/`flow` with no inputs.
pub fn create(flow: &str) -> CreateExecution {
    CreateExecution {
        namespace: "dev".into(),
        flow_id: flow.into(),
        ..Default::default()
    }
}

/// The messages of an execution's log lines, in order.
pub async fn messages(engine: &Engine, id: &str) -> Vec<String> {
    engine
        .logs(&LogQuery {
            execution_id: id.into(),
            ..Default::default()
        })
        .await
        .expect("logs")
        .into_iter()
        .map(|l| l.message)
        .collect()
}

/// Starts `request` and waits for its end (a minute at most): the execution as it ended
/// and its log messages.
#[allow(dead_code)] // not every test binary runs whole executions
pub async fn run_to_end(engine: &Engine, request: CreateExecution) -> (Execution, Vec<String>) {
    let created = engine.create_execution(request).await.expect("create");
    let done = engine
        .wait_for_terminal(&created.id, Duration::from_secs(60))
        .await
        .expect("terminal");
    let logs = messages(engine, &done.id).await;
    (done, logs)
}

/// Saves `source` and runs one execution of it without inputs to its end.
#[allow(dead_code)]
pub async fn run_flow(engine: &Engine, source: &str) -> (Execution, Vec<String>) {
    let flow = engine.create_flow(source).await.expect("flow");
    let request = CreateExecution {
        namespace: flow.flow.namespace.clone(),
        ..create(&flow.flow.id)
    };
    run_to_end(engine, request).await
}

/// Runs `source` to its end on a local engine of its own (a temporary folder, two
/// workers): the execution, its log messages, and the folder, whose `storage/` holds the
/// execution's files.
#[allow(dead_code)]
pub async fn run_alone(source: &str) -> (Execution, Vec<String>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = kite_local::open_engine(dir.path(), kite_engine::EngineConfig::default()).expect("engine");
    let runtime = kite_local::Runtime::start(engine.clone(), 2)
        .await
        .expect("runtime");
    let (done, logs) = run_flow(&engine, source).await;
    runtime.shutdown().await;
    (done, logs, dir)
}

/// The task run of `task_id` (the first, if it ran several times).
#[allow(dead_code)]
pub fn task_run<'a>(execution: &'a Execution, task_id: &str) -> &'a kite_core::execution::TaskRun {
    execution
        .task_runs()
        .iter()
        .find(|tr| tr.task_id == task_id)
        .unwrap_or_else(|| panic!("{task_id} ran"))
}
