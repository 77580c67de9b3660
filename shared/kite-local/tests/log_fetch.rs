//! `log.Fetch` on the local engine: the lines already stored of the current execution
//! (inline tasks' and workers'), by level and by task, and another execution's by id.

use indexmap::IndexMap;
use kite_core::execution::StateType;
use kite_core::input::InputValue;
use kite_engine::{CreateExecution, EngineConfig};
use kite_local::{open_engine, Runtime};
use serde_json::Value;

mod common;
use common::{create, run_flow, run_to_end};

const FETCH: &str = r#"
id: fetch_logs
namespace: company.team
inputs:
  - id: previous
    type: STRING
    required: false
tasks:
  - id: parallel
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: hello
        type: io.kestra.plugin.core.log.Log
        message: Hello World!
      - id: error_message
        type: io.kestra.plugin.core.log.Log
        level: ERROR
        message: This is an error message
      - id: debug_message
        type: io.kestra.plugin.core.log.Log
        level: DEBUG
        message: a detail
  - id: errors
    type: io.kestra.plugin.core.log.Fetch
    level: ERROR
  - id: some
    type: io.kestra.plugin.core.log.Fetch
    level: DEBUG
    tasksId:
      - debug_message
      - hello
  - id: show
    type: io.kestra.plugin.core.log.Log
    message: "errors={{ outputs.errors.size }} some={{ outputs.some.size }} {{ read(outputs.some.uri) | replace({'\n': '|'}) }}"
  - id: previous
    runIf: "{{ inputs.previous is defined and inputs.previous != null }}"
    type: io.kestra.plugin.core.log.Fetch
    executionId: "{{ inputs.previous }}"
"#;

fn show_line(logs: &[String]) -> &str {
    logs.iter()
        .find(|l| l.starts_with("errors="))
        .map(String::as_str)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_reads_the_current_executions_lines_by_level_and_task() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open_engine(dir.path(), EngineConfig::default()).expect("engine");
    let runtime = Runtime::start(engine.clone(), 2).await.expect("runtime");
    let (first, logs) = run_flow(&engine, FETCH).await;
    assert_eq!(first.state.current, StateType::Success, "{logs:?}");
    let show = show_line(&logs);
    assert!(show.starts_with("errors=1 some=2 "), "{show}");
    // `tasksId` order, each line an Ion struct of Kestra's log entry fields.
    let lines: Vec<Value> = show["errors=1 some=2 ".len()..]
        .split('|')
        .filter(|l| !l.is_empty())
        .map(|l| kite_core::ion::from_line(l).expect("an Ion line").to_json())
        .collect();
    let got: Vec<(&str, &str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["taskId"].as_str().unwrap_or_default(),
                l["level"].as_str().unwrap_or_default(),
                l["message"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("debug_message", "DEBUG", "a detail"),
            ("hello", "INFO", "Hello World!")
        ]
    );
    assert_eq!(lines[0]["executionId"], first.id.as_str());

    // Another execution of the flow, by id: its INFO lines and above, the Fetch tasks'
    // own lines not included (they log nothing).
    let mut inputs = IndexMap::new();
    inputs.insert("previous".to_string(), InputValue::Text(first.id.clone()));
    let request = CreateExecution {
        namespace: "company.team".into(),
        inputs,
        ..create("fetch_logs")
    };
    let (second, logs) = run_to_end(&engine, request).await;
    let previous = second
        .task_runs()
        .iter()
        .find(|t| t.task_id == "previous")
        .and_then(|t| t.outputs.clone())
        .unwrap_or_default();
    assert_eq!(second.state.current, StateType::Success, "{logs:?}");
    // hello, error_message and the first run's `show` line.
    assert_eq!(previous["size"], 3, "{previous:?}");

    // An execution of another flow is not this flow's to read.
    let other = r#"
id: other_flow
namespace: company.team
inputs:
  - id: previous
    type: STRING
tasks:
  - id: fetch
    type: io.kestra.plugin.core.log.Fetch
    executionId: "{{ inputs.previous }}"
"#;
    engine.create_flow(other).await.expect("flow");
    let mut inputs = IndexMap::new();
    inputs.insert("previous".to_string(), InputValue::Text(first.id.clone()));
    let request = CreateExecution {
        namespace: "company.team".into(),
        inputs,
        ..create("other_flow")
    };
    let (third, _) = run_to_end(&engine, request).await;
    runtime.shutdown().await;
    let fetch = third.task_runs()[0].outputs.clone().unwrap_or_default();
    assert_eq!(fetch["size"], 0, "{fetch:?}");
}
