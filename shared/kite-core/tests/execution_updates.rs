//! Tasks that change the execution itself: Exit, SetVariables, UnsetVariables.

use indexmap::IndexMap;
use kite_core::execution::StateType;
use kite_core::flow::parse_flow;
use kite_core::runner::{Outcome, Runner};
use serde_json::{json, Value};

fn run(source: &str) -> Outcome {
    let flow = parse_flow(source).unwrap_or_else(|e| panic!("test flow does not parse: {e:?}"));
    let id = flow.id.clone();
    let mut runner = Runner::new();
    runner.add_flow(flow);
    runner
        .execute("t", &id, IndexMap::new())
        .unwrap_or_else(|e| panic!("execute failed: {e}"))
}

fn states(out: &Outcome) -> Vec<(String, StateType)> {
    out.execution
        .task_runs()
        .iter()
        .map(|t| (t.task_id.clone(), t.state.current))
        .collect()
}

fn values(out: &Outcome, task_id: &str) -> Value {
    let tr = out.execution.task_runs().iter().find(|t| t.task_id == task_id);
    tr.and_then(|t| t.outputs.as_ref())
        .and_then(|o| o.get("values"))
        .cloned()
        .unwrap_or(Value::Null)
}

fn owned(list: &[(&str, StateType)]) -> Vec<(String, StateType)> {
    list.iter().map(|(t, s)| (t.to_string(), *s)).collect()
}

#[test]
fn exit_in_a_parallel_branch_ends_the_execution_and_kills_the_other_branch() {
    let out = run(r#"
id: exit-parallel
namespace: t
tasks:
  - id: parallel
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: slow
        type: io.kestra.plugin.core.flow.Sleep
        duration: PT1H
      - id: exit
        type: io.kestra.plugin.core.execution.Exit
        state: "{{ 'SUCC' ~ 'ESS' }}"
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: never
finally:
  - id: cleanup
    type: io.kestra.plugin.core.log.Log
    message: never either
"#);
    assert_eq!(out.execution.state.current, StateType::Success);
    assert_eq!(
        states(&out),
        owned(&[
            ("parallel", StateType::Success),
            ("slow", StateType::Killed),
            ("exit", StateType::Success),
        ])
    );
    assert!(out.logs.iter().all(|l| l.message != "never"));
}

#[test]
fn exit_killed_kills_every_unfinished_task_run() {
    let out = run(r#"
id: exit-kill
namespace: t
tasks:
  - id: parallel
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: slow
        type: io.kestra.plugin.core.flow.Sleep
        duration: PT1H
      - id: seq
        type: io.kestra.plugin.core.flow.Sequential
        tasks:
          - id: first
            type: io.kestra.plugin.core.log.Log
            message: first
          - id: exit
            type: io.kestra.plugin.core.execution.Exit
            state: KILLED
          - id: next
            type: io.kestra.plugin.core.log.Log
            message: next
"#);
    assert_eq!(out.execution.state.current, StateType::Killed);
    assert_eq!(
        states(&out),
        owned(&[
            ("parallel", StateType::Killed),
            ("slow", StateType::Killed),
            ("seq", StateType::Killed),
            ("first", StateType::Success),
            ("exit", StateType::Killed),
        ])
    );
}

#[test]
fn exit_with_an_unknown_state_fails_its_task_run() {
    let out = run(r#"
id: exit-bad
namespace: t
tasks:
  - id: exit
    type: io.kestra.plugin.core.execution.Exit
    state: "{{ 'DONE' }}"
"#);
    assert_eq!(out.execution.state.current, StateType::Failed);
    assert!(
        out.logs
            .iter()
            .any(|l| l.message.starts_with("Invalid state `DONE`")),
        "{:?}",
        out.logs
    );
    // A literal state is checked when the flow is saved.
    let errors = parse_flow(
        "id: f\nnamespace: t\ntasks:\n  - id: e\n    type: io.kestra.plugin.core.execution.Exit\n    state: DONE\n",
    )
    .unwrap_err();
    assert!(
        format!("{errors:?}").contains("Invalid state `DONE`"),
        "{errors:?}"
    );
}

#[test]
fn set_variables_merges_deeply_and_unset_removes_dotted_names() {
    let out = run(r#"
id: vars
namespace: t
variables:
  db:
    host: localhost
    port: 5432
  keep: yes
tasks:
  - id: set
    type: io.kestra.plugin.core.execution.SetVariables
    variables:
      db:
        port: 6543
        user: "{{ flow.id }}"
      added: [1, 2]
  - id: after-set
    type: io.kestra.plugin.core.output.OutputValues
    values:
      db: "{{ vars.db }}"
      added: "{{ vars.added }}"
  - id: unset
    type: io.kestra.plugin.core.execution.UnsetVariables
    variables:
      - db.host
      - added
      - not.there
    ignoreMissing: true
  - id: after-unset
    type: io.kestra.plugin.core.output.OutputValues
    values:
      names: "{{ vars | keys }}"
      db: "{{ vars.db }}"
"#);
    assert_eq!(out.execution.state.current, StateType::Success, "{:?}", out.logs);
    assert_eq!(
        values(&out, "after-set"),
        json!({"db": r#"{"host":"localhost","port":6543,"user":"vars"}"#, "added": "[1,2]"})
    );
    assert_eq!(
        values(&out, "after-unset"),
        json!({"names": r#"["db","keep"]"#, "db": r#"{"port":6543,"user":"vars"}"#})
    );
    assert_eq!(
        json!(out.execution.variables),
        json!({"db": {"port": 6543, "user": "vars"}, "keep": "yes"})
    );
}

#[test]
fn unset_through_a_value_that_is_not_a_map_fails_unless_ignore_missing() {
    let out = run(r#"
id: unset-bad
namespace: t
variables:
  name: x
tasks:
  - id: unset
    type: io.kestra.plugin.core.execution.UnsetVariables
    variables: ["name.first", "missing"]
"#);
    assert_eq!(out.execution.state.current, StateType::Failed);
    assert!(
        out.logs
            .iter()
            .any(|l| l.message == "Unable to unset `name.first`: `name` is not a map of variables"),
        "{:?}",
        out.logs
    );
}

#[test]
fn a_restart_runs_a_failed_set_variables_again() {
    let source = r#"
id: restart-vars
namespace: t
inputs:
  - id: overwrite
    type: BOOLEAN
    defaults: false
variables:
  name: flow
tasks:
  - id: set
    type: io.kestra.plugin.core.execution.SetVariables
    overwrite: "{{ taskrun.attemptsCount > 1 or inputs.overwrite }}"
    variables:
      name: set
"#;
    let flow = parse_flow(source).unwrap_or_else(|e| panic!("{e:?}"));
    let mut runner = Runner::new();
    runner.add_flow(flow);
    let out = runner
        .execute("t", "restart-vars", IndexMap::new())
        .expect("execute");
    assert_eq!(out.execution.state.current, StateType::Failed);
    let out = runner.restart(&out.execution.id).expect("restart");
    assert_eq!(out.execution.state.current, StateType::Success, "{:?}", out.logs);
    assert_eq!(json!(out.execution.variables), json!({"name": "set"}));
}
