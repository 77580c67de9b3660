//! A host without `python3` nor `node` (as AWS Lambda's provided.al2023 image): their
//! script tasks fail with a message that names the program and says how to add it. A test
//! binary of its own, since it empties this process's `PATH`.

use kite_core::execution::StateType;
use kite_engine::EngineConfig;
use kite_local::{open_engine, Runtime};

mod common;
use common::run_flow;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_node_tasks_name_the_missing_program() {
    let empty = tempfile::tempdir().expect("tempdir");
    // Before any thread of the engine reads it.
    std::env::set_var("PATH", empty.path());
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open_engine(dir.path(), EngineConfig::default()).expect("engine");
    let runtime = Runtime::start(engine.clone(), 2).await.expect("runtime");
    for (kind, program) in [("python.Script", "python3"), ("node.Script", "node")] {
        let source = format!(
            "id: missing-{program}\nnamespace: dev\ntasks:\n  - id: s\n    type: io.kestra.plugin.scripts.{kind}\n    script: print(1)\n"
        );
        let (done, logs) = run_flow(&engine, &source).await;
        assert_eq!(done.state.current, StateType::Failed, "{kind}");
        let line = logs
            .iter()
            .find(|l| l.contains(&format!("`{program}` is not installed")))
            .unwrap_or_else(|| panic!("{kind}: {logs:?}"));
        assert!(line.contains("Lambda") && line.contains("layer"), "{line}");
    }
    // The shell needs no lookup: /bin/sh is named in full.
    let source = "id: shell\nnamespace: dev\ntasks:\n  - id: s\n    type: io.kestra.plugin.scripts.shell.Commands\n    commands: [\"echo still here\"]\n";
    let (done, logs) = run_flow(&engine, source).await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    runtime.shutdown().await;
}
