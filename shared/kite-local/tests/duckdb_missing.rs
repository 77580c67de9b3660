//! A build without the `duckdb` feature: DuckDB's tasks still validate in a flow, and a
//! run fails saying this build has no DuckDB and how to get one.
#![cfg(not(feature = "duckdb"))]

use kite_core::execution::StateType;
use kite_engine::EngineConfig;
use kite_local::{open_engine, Runtime};

mod common;

#[tokio::test]
async fn duckdb_tasks_fail_saying_how_to_build_with_duckdb() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open_engine(dir.path(), EngineConfig::default()).expect("engine");
    let runtime = Runtime::start(engine.clone(), 2).await.expect("runtime");
    let source = include_str!("../../../flows/dev/duckdb-csv.yaml");
    let (done, logs) = common::run_flow(&engine, source).await;
    runtime.shutdown().await;
    assert_eq!(done.state.current, StateType::Failed, "{logs:?}");
    let load = done
        .task_runs()
        .iter()
        .find(|tr| tr.task_id == "load")
        .expect("the load task ran");
    assert_eq!(load.state.current, StateType::Failed);
    assert!(
        logs.iter().any(|l| l
            == "This build of Kite has no DuckDB: build it with the `duckdb` cargo feature (see docs/sql.md, DuckDB section)"),
        "{logs:?}"
    );
}
