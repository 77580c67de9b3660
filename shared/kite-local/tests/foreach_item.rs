//! ForEachItem on the local engine: `flows/dev/foreach-item-csv.yaml` cuts a CSV into
//! batches, one `dev.orders-batch` execution each; the task runs Kestra shows for it and
//! their outputs.

use kite_core::execution::StateType;
use kite_engine::ports::ExecutionQuery;
use kite_engine::EngineConfig;
use kite_local::{open_engine, Runtime};
use serde_json::json;

mod common;
use common::run_flow;

const FLOWS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../flows/dev");

fn source(name: &str) -> String {
    std::fs::read_to_string(format!("{FLOWS}/{name}")).expect("example flow")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_batch_runs_one_subflow_and_their_outputs_are_merged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open_engine(dir.path(), EngineConfig::default()).expect("engine");
    let runtime = Runtime::start(engine.clone(), 2).await.expect("runtime");
    engine
        .create_flow(&source("orders-batch.yaml"))
        .await
        .expect("subflow");
    let (done, logs) = run_flow(&engine, &source("foreach-item-csv.yaml")).await;
    let children = engine
        .search_executions(&ExecutionQuery {
            trigger_execution_id: Some(done.id.clone()),
            ..Default::default()
        })
        .await
        .expect("children");
    let mut child_logs = Vec::new();
    for child in &children.results {
        child_logs.extend(common::messages(&engine, &child.id).await);
    }
    runtime.shutdown().await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?} {child_logs:?}");
    assert_eq!(children.results.len(), 3);
    let runs: Vec<(&str, StateType)> = done
        .task_runs()
        .iter()
        .map(|t| (t.task_id.as_str(), t.state.current))
        .collect();
    assert_eq!(
        runs,
        vec![
            ("orders", StateType::Success),
            ("each", StateType::Success),
            ("each_split", StateType::Success),
            ("each_items", StateType::Success),
            ("each_merge", StateType::Success),
            ("done", StateType::Success),
        ]
    );
    let items = done.task_runs()[3].outputs.clone().unwrap_or_default();
    assert_eq!(items["numberOfBatches"], 3);
    assert_eq!(
        items["iterations"],
        json!({"CREATED": 0, "RUNNING": 0, "SUCCESS": 3})
    );
    let splits = done.task_runs()[2].outputs.clone().unwrap_or_default();
    assert_eq!(splits["splits"].as_array().map(Vec::len), Some(3));
    // One line per batch, in batch order: the subflow's outputs.
    let expected = "3 batches: {\"batch\":0,\"rows\":2}\n{\"batch\":1,\"rows\":2}\n{\"batch\":2,\"rows\":1}";
    assert!(logs.iter().any(|l| l.trim_end() == expected), "{logs:?}");
}
