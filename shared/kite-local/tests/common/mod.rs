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
