//! The namespace tasks (`UploadFiles`, `DownloadFiles`, `DeleteFiles`) and `read('path')`
//! through the engine on the local store and its file storage.

use kite_core::execution::{Execution, StateType};
use kite_core::input::file_input_uri;
use kite_core::namespace_files::file_uri;
use kite_engine::{CreateExecution, Engine, EngineConfig};
use kite_local::{open_engine, Runtime};

mod common;
use common::{create, run_to_end};

/// Runs the flow `source` with the FILE input `script` holding `script`.
async fn run(engine: &Engine, source: &str, script: &str) -> (Execution, Vec<String>) {
    let flow = engine.create_flow(source).await.expect("flow");
    let id = engine.new_id();
    let uri = file_input_uri(&flow.flow.namespace, &flow.flow.id, &id, "script", "main.py");
    let content: kite_engine::ports::ByteStream = Box::pin(std::io::Cursor::new(script.as_bytes().to_vec()));
    engine
        .ports()
        .files
        .put(&uri, content, 1024)
        .await
        .expect("input file");
    let request = CreateExecution {
        namespace: flow.flow.namespace.clone(),
        id: Some(id),
        files: [("script".to_string(), uri)].into_iter().collect(),
        ..create(&flow.flow.id)
    };
    run_to_end(engine, request).await
}

async fn exists(engine: &Engine, namespace: &str, path: &str) -> bool {
    let uri = file_uri(namespace, path).unwrap();
    engine.ports().files.exists(&uri).await.unwrap()
}

const ROUND_TRIP: &str = r#"
id: ns_files
namespace: company.team
inputs:
  - id: script
    type: FILE
tasks:
  - id: upload
    type: io.kestra.plugin.core.namespace.UploadFiles
    files:
      - "{{ inputs.script }}"
    destination: /scripts
  - id: upload_map
    type: io.kestra.plugin.core.namespace.UploadFiles
    namespace: company.team
    filesMap:
      renamed/app.py: "{{ inputs.script }}"
      /docs/readme.md: "{{ inputs.script }}"
  - id: skip
    type: io.kestra.plugin.core.namespace.UploadFiles
    filesMap: '{"renamed/app.py": "{{ inputs.script }}"}'
    conflict: SKIP
  - id: refuse
    type: io.kestra.plugin.core.namespace.UploadFiles
    filesMap:
      renamed/app.py: "{{ inputs.script }}"
    conflict: ERROR
    allowFailure: true
  - id: download
    type: io.kestra.plugin.core.namespace.DownloadFiles
    namespace: "{{ flow.namespace }}"
    files:
      - "**.py"
    destination: code
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "copy={{ read(outputs.download.files['/scripts/main.py']) }} ns={{ read('renamed/app.py') }}"
  - id: delete
    type: io.kestra.plugin.core.namespace.DeleteFiles
    namespace: company.team
    files: "/scripts/**"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_uploads_downloads_and_deletes_namespace_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open_engine(dir.path(), EngineConfig::default()).expect("engine");
    let runtime = Runtime::start(engine.clone(), 2).await.expect("runtime");
    let (done, logs) = run(&engine, ROUND_TRIP, "print('hi')").await;
    assert_eq!(done.state.current, StateType::Warning, "{logs:?}");
    assert!(
        logs.iter().any(|l| l
            == "File '/renamed/app.py' already exists in namespace 'company.team' and conflict is set to ERROR"),
        "{logs:?}"
    );
    assert!(
        logs.iter().any(|l| l == "copy=print('hi') ns=print('hi')"),
        "{logs:?}"
    );

    let runs = done.task_run_list.clone().unwrap_or_default();
    let download = runs.iter().find(|r| r.task_id == "download").expect("download");
    let files = download.outputs.as_ref().expect("outputs")["files"]
        .as_object()
        .expect("files map")
        .clone();
    let mut paths: Vec<&String> = files.keys().collect();
    paths.sort();
    assert_eq!(paths, ["/renamed/app.py", "/scripts/main.py"]);
    let copy = files["/scripts/main.py"].as_str().unwrap();
    assert!(
        copy.starts_with(&format!(
            "kestra:///company/team/ns_files/executions/{}/tasks/download/",
            done.id
        )) && copy.ends_with("/code/scripts/main.py"),
        "{copy}"
    );

    // What DeleteFiles matched is gone, the rest stays.
    assert!(!exists(&engine, "company.team", "/scripts/main.py").await);
    assert!(exists(&engine, "company.team", "/renamed/app.py").await);
    assert!(exists(&engine, "company.team", "/docs/readme.md").await);
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_sources_and_patterns_fail_the_task() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open_engine(dir.path(), EngineConfig::default()).expect("engine");
    let runtime = Runtime::start(engine.clone(), 2).await.expect("runtime");
    // Another execution's file is not this task's to copy.
    let other = "id: steal\nnamespace: company.team\ninputs:\n  - id: script\n    type: FILE\ntasks:\n  - id: upload\n    type: io.kestra.plugin.core.namespace.UploadFiles\n    filesMap:\n      x.txt: kestra:///company/team/other/executions/abc/inputs/f/secret.txt\n";
    let (done, logs) = run(&engine, other, "x").await;
    assert_eq!(done.state.current, StateType::Failed);
    assert!(
        logs.iter().any(|l| l
            == "Unable to read the file 'kestra:///company/team/other/executions/abc/inputs/f/secret.txt' as it didn't belong to the current execution"),
        "{logs:?}"
    );
    // A working-directory glob has no directory to match in.
    let glob = "id: glob\nnamespace: company.team\ninputs:\n  - id: script\n    type: FILE\ntasks:\n  - id: upload\n    type: io.kestra.plugin.core.namespace.UploadFiles\n    files:\n      - \"glob:**/dbt/**\"\n";
    let (done, logs) = run(&engine, glob, "x").await;
    assert_eq!(done.state.current, StateType::Failed);
    assert!(
        logs.iter().any(|l| l.contains("no working directory")),
        "{logs:?}"
    );
    // A pattern that does not compile.
    let bad = "id: bad\nnamespace: company.team\ninputs:\n  - id: script\n    type: FILE\ntasks:\n  - id: delete\n    type: io.kestra.plugin.core.namespace.DeleteFiles\n    namespace: company.team\n    files: \"/{a,{b}}\"\n";
    let (done, logs) = run(&engine, bad, "x").await;
    assert_eq!(done.state.current, StateType::Failed);
    assert!(
        logs.iter()
            .any(|l| l.starts_with("Invalid glob pattern '/{a,{b}}'")),
        "{logs:?}"
    );
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_flow_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open_engine(dir.path(), EngineConfig::default()).expect("engine");
    let runtime = Runtime::start(engine.clone(), 2).await.expect("runtime");
    let source = include_str!("../../../flows/dev/namespace-files.yaml");
    let (done, logs) = run(&engine, source, "print('from the example')").await;
    runtime.shutdown().await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    assert!(
        logs.contains(&"print('from the example')".to_string()),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.starts_with("{\"/scripts/main.py\":\"kestra:///dev/namespace-files/executions/")),
        "{logs:?}"
    );
    assert!(exists(&engine, "dev", "/scripts/main.py").await);
}
