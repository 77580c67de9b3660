//! A build without the `duckdb` feature: DuckDB's tasks still validate in a flow, and a
//! run fails saying this build has no DuckDB and how to get one.
#![cfg(not(feature = "duckdb"))]

use kite_core::execution::StateType;

mod common;

#[tokio::test]
async fn duckdb_tasks_fail_saying_how_to_build_with_duckdb() {
    let (done, logs, _dir) = common::run_alone(include_str!("../../../flows/dev/duckdb-csv.yaml")).await;
    assert_eq!(done.state.current, StateType::Failed, "{logs:?}");
    assert_eq!(common::task_run(&done, "load").state.current, StateType::Failed);
    assert!(
        logs.iter().any(|l| l
            == "This build of Kite has no DuckDB: build it with the `duckdb` cargo feature (see docs/sql.md, DuckDB section)"),
        "{logs:?}"
    );
}
