//! The executor's behaviour, flow by flow, on the in-memory runner (the same driver
//! the local server and the Lambdas run): flowable tasks, retries, timeouts, pauses,
//! subflows, kill and restart.

use chrono::{TimeZone, Utc};
use indexmap::IndexMap;
use kite_core::execution::{Label, StateType};
use kite_core::executor::{self, NewExecution};
use kite_core::flow::parse_flow;
use kite_core::input::InputValue;
use kite_core::runner::{Outcome, Runner, RunnerError};
use serde_json::json;
use serde_json::Value;

fn runner_with(flows: &[&str]) -> Runner {
    let mut runner = Runner::new();
    for source in flows {
        match parse_flow(source) {
            Ok(flow) => runner.add_flow(flow),
            Err(errors) => panic!("test flow does not parse: {errors:?}"),
        }
    }
    runner
}

fn run(source: &str) -> Outcome {
    let mut runner = runner_with(&[source]);
    let id = parse_flow(source).map(|f| f.id).unwrap_or_default();
    runner
        .execute("t", &id, IndexMap::new())
        .unwrap_or_else(|e| panic!("execute failed: {e}"))
}

fn task_state(outcome: &Outcome, task_id: &str) -> Vec<StateType> {
    outcome
        .execution
        .task_runs()
        .iter()
        .filter(|tr| tr.task_id == task_id)
        .map(|tr| tr.state.current)
        .collect()
}

fn outputs(outcome: &Outcome, task_id: &str) -> Option<Value> {
    outcome
        .execution
        .task_runs()
        .iter()
        .find(|tr| tr.task_id == task_id)
        .and_then(|tr| tr.outputs.as_ref())
        .map(|o| serde_json::to_value(o).unwrap_or(Value::Null))
}

#[test]
fn sequential_returns_and_logs() {
    let out = run(r#"
id: seq
namespace: t
tasks:
  - id: s
    type: io.kestra.plugin.core.flow.Sequential
    tasks:
      - id: a
        type: io.kestra.plugin.core.debug.Return
        format: "{{ flow.id }}-{{ execution.id | length > 0 }}"
      - id: b
        type: io.kestra.plugin.core.log.Log
        message:
          - "one {{ outputs.a.value }}"
          - two
"#);
    assert_eq!(out.execution.state.current, StateType::Success);
    assert_eq!(outputs(&out, "a"), Some(json!({"value": "seq-true"})));
    assert_eq!(outputs(&out, "b"), Some(json!({})));
    // flowables carry no outputs
    assert_eq!(outputs(&out, "s"), None);
    let messages: Vec<&str> = out.logs.iter().map(|l| l.message.as_str()).collect();
    assert!(messages.contains(&"one seq-true"), "{messages:?}");
    assert!(messages.contains(&"two"), "{messages:?}");
    let a = &out.execution.task_runs()[1];
    let states: Vec<StateType> = a.state.histories.iter().map(|h| h.state).collect();
    assert_eq!(
        states,
        [StateType::Created, StateType::Running, StateType::Success]
    );
    assert_eq!(a.attempts.len(), 1);
}

#[test]
fn new_execution_labels_and_metadata() {
    let flow = parse_flow(
        "id: l\nnamespace: t\nlabels:\n  team: data\n  system.readOnly: \"true\"\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n",
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    let now = Utc
        .with_ymd_and_hms(2024, 12, 20, 10, 0, 0)
        .single()
        .expect("a date");
    let execution = executor::new_execution(
        &flow,
        NewExecution {
            id: "abc".into(),
            labels: vec![Label {
                key: "env".into(),
                value: "dev".into(),
            }],
            ..Default::default()
        },
        now,
    );
    assert_eq!(execution.state.current, StateType::Created);
    assert_eq!(execution.original_id.as_deref(), Some("abc"));
    assert_eq!(execution.metadata.attempt_number, 1);
    let labels: Vec<(&str, &str)> = execution
        .labels
        .iter()
        .map(|l| (l.key.as_str(), l.value.as_str()))
        .collect();
    assert_eq!(
        labels,
        [("team", "data"), ("env", "dev"), ("system.correlationId", "abc")]
    );
}

#[test]
fn parallel_and_if() {
    let out = run(r#"
id: par
namespace: t
tasks:
  - id: p
    type: io.kestra.plugin.core.flow.Parallel
    concurrent: 1
    tasks:
      - id: a
        type: io.kestra.plugin.core.debug.Return
        format: a
      - id: b
        type: io.kestra.plugin.core.debug.Return
        format: b
  - id: if
    type: io.kestra.plugin.core.flow.If
    condition: "{{ outputs.a.value == 'a' }}"
    then:
      - id: yes
        type: io.kestra.plugin.core.debug.Return
        format: y
    else:
      - id: no
        type: io.kestra.plugin.core.debug.Return
        format: n
"#);
    assert_eq!(out.execution.state.current, StateType::Success);
    assert_eq!(task_state(&out, "b"), [StateType::Success]);
    assert_eq!(task_state(&out, "yes"), [StateType::Success]);
    assert!(task_state(&out, "no").is_empty());
    assert_eq!(outputs(&out, "if"), Some(json!({"evaluationResult": true})));
}

const SWITCH: &str = r#"
id: sw
namespace: t
inputs:
  - id: v
    type: STRING
tasks:
  - id: s
    type: io.kestra.plugin.core.flow.Switch
    value: "{{ inputs.v }}"
    cases:
      A:
        - id: a
          type: io.kestra.plugin.core.debug.Return
          format: a
"#;

#[test]
fn switch_case_and_no_match() {
    let mut runner = runner_with(&[SWITCH]);
    let hit = runner
        .execute(
            "t",
            "sw",
            IndexMap::from([("v".to_string(), InputValue::Text("A".into()))]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(hit.execution.state.current, StateType::Success);
    assert_eq!(outputs(&hit, "s"), Some(json!({"value": "A", "defaults": false})));
    let miss = runner
        .execute(
            "t",
            "sw",
            IndexMap::from([("v".to_string(), InputValue::Text("B".into()))]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(miss.execution.state.current, StateType::Failed);
    assert_eq!(task_state(&miss, "s"), [StateType::Failed]);
}

#[test]
fn for_each_values_iterations_and_nested_outputs() {
    let out = run(r#"
id: each
namespace: t
tasks:
  - id: outer
    type: io.kestra.plugin.core.flow.ForEach
    values: ["x", {"k": 1}]
    tasks:
      - id: inner
        type: io.kestra.plugin.core.flow.ForEach
        values: '["1", "2"]'
        tasks:
          - id: r
            type: io.kestra.plugin.core.debug.Return
            format: "{{ parent.taskrun.value }}/{{ taskrun.value }}/{{ taskrun.iteration }}"
  - id: last
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.r['x']['2'].value }}"
"#);
    assert_eq!(out.execution.state.current, StateType::Success);
    assert_eq!(task_state(&out, "r").len(), 4);
    assert_eq!(outputs(&out, "last"), Some(json!({"value": "x/2/1"})));
    let values: Vec<String> = out
        .execution
        .task_runs()
        .iter()
        .filter(|tr| tr.task_id == "r")
        .filter_map(|tr| tr.outputs.as_ref()?.get("value")?.as_str().map(String::from))
        .collect();
    assert!(values.contains(&r#"{"k":1}/1/0"#.to_string()), "{values:?}");
}

#[test]
fn for_each_null_item_fails_with_kestras_message() {
    let out = run(r#"
id: each-null
namespace: t
tasks:
  - id: e
    type: io.kestra.plugin.core.flow.ForEach
    values: ["a", null]
    tasks:
      - id: r
        type: io.kestra.plugin.core.debug.Return
        format: "{{ taskrun.value }}"
"#);
    assert_eq!(out.execution.state.current, StateType::Failed);
    assert!(
        out.logs
            .iter()
            .any(|l| l.message.contains("Found '1' null values on Each")),
        "{:?}",
        out.logs.iter().map(|l| &l.message).collect::<Vec<_>>()
    );
}

#[test]
fn errors_and_finally_run_and_state_stays_failed() {
    let out = run(r#"
id: ef
namespace: t
tasks:
  - id: fail
    type: io.kestra.plugin.core.execution.Fail
  - id: never
    type: io.kestra.plugin.core.log.Log
    message: never
errors:
  - id: onError
    type: io.kestra.plugin.core.log.Log
    message: error
finally:
  - id: fin
    type: io.kestra.plugin.core.log.Log
    message: "{{ execution.state }}"
afterExecution:
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{ execution.state }}"
"#);
    assert_eq!(out.execution.state.current, StateType::Failed);
    assert!(task_state(&out, "never").is_empty());
    assert_eq!(task_state(&out, "onError"), [StateType::Success]);
    assert_eq!(task_state(&out, "fin"), [StateType::Success]);
    assert_eq!(outputs(&out, "after"), Some(json!({"value": "FAILED"})));
}

#[test]
fn allow_failure_run_if_disabled_and_labels() {
    let out = run(r#"
id: misc
namespace: t
tasks:
  - id: failing
    type: io.kestra.plugin.core.execution.Fail
    allowFailure: true
  - id: skipped
    type: io.kestra.plugin.core.log.Log
    message: skipped
    runIf: "{{ 1 == 2 }}"
  - id: off
    type: io.kestra.plugin.core.log.Log
    message: off
    disabled: true
  - id: labels
    type: io.kestra.plugin.core.execution.Labels
    labels:
      added: "yes"
"#);
    assert_eq!(out.execution.state.current, StateType::Warning);
    // as Kestra's worker does: the task run ends WARNING, its last attempt FAILED
    assert_eq!(task_state(&out, "failing"), [StateType::Warning]);
    assert_eq!(task_state(&out, "skipped"), [StateType::Skipped]);
    assert!(task_state(&out, "off").is_empty());
    assert!(out
        .execution
        .labels
        .iter()
        .any(|l| l.key == "added" && l.value == "yes"));
}

#[test]
fn retry_makes_new_attempts_on_the_virtual_clock() {
    let mut runner = runner_with(&[r#"
id: retry
namespace: t
tasks:
  - id: f
    type: io.kestra.plugin.core.execution.Fail
    retry:
      type: constant
      interval: PT1M
      maxAttempts: 3
"#]);
    let before = runner.now();
    let out = runner
        .execute("t", "retry", IndexMap::new())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.execution.state.current, StateType::Failed);
    let attempts: usize = out.execution.task_runs().iter().map(|t| t.attempts.len()).sum();
    assert_eq!(attempts, 3);
    assert!(runner.now() - before >= chrono::Duration::minutes(2));
}

#[test]
fn strict_expressions_fail_the_task_with_the_error_logged() {
    let out = run(r#"
id: strict
namespace: t
tasks:
  - id: r
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.missing.value }}"
"#);
    assert_eq!(out.execution.state.current, StateType::Failed);
    assert!(
        out.logs.iter().any(|l| l.message.contains("Unable to find")),
        "{:?}",
        out.logs.iter().map(|l| &l.message).collect::<Vec<_>>()
    );
}

#[test]
fn a_render_past_its_bounds_fails_the_task_naming_the_bound() {
    let out = run(r#"
id: bounded
namespace: t
tasks:
  - id: r
    type: io.kestra.plugin.core.debug.Return
    format: "{% for i in range(1, 1001) %}{% for j in range(1, 1000) %}{% endfor %}{% endfor %}"
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: never
"#);
    assert_eq!(out.execution.state.current, StateType::Failed);
    assert_eq!(task_state(&out, "r").last(), Some(&StateType::Failed));
    assert!(task_state(&out, "after").is_empty());
    assert!(
        out.logs.iter().any(|l| l
            .message
            .contains("render stopped: more than 1000000 loop iterations")),
        "{:?}",
        out.logs.iter().map(|l| &l.message).collect::<Vec<_>>()
    );
}

#[test]
fn sleep_and_pause_delay_advance_the_clock() {
    let mut runner = runner_with(&[r#"
id: timers
namespace: t
tasks:
  - id: sleep
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT10M
  - id: pause
    type: io.kestra.plugin.core.flow.Pause
    delay: PT1H
  - id: done
    type: io.kestra.plugin.core.log.Log
    message: done
"#]);
    let before = runner.now();
    let out = runner
        .execute("t", "timers", IndexMap::new())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.execution.state.current, StateType::Success);
    assert!(runner.now() - before >= chrono::Duration::minutes(70));
}

const PAUSE: &str = r#"
id: pause
namespace: t
tasks:
  - id: pause
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: asked
        type: INT
  - id: last
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.pause.onResume.asked + 1 }}"
"#;

#[test]
fn pause_manual_resume_types_inputs() {
    let mut runner = runner_with(&[PAUSE]);
    let paused = runner
        .execute("t", "pause", IndexMap::new())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(paused.execution.state.current, StateType::Paused);
    let id = paused.execution.id.clone();
    let done = runner
        .resume(
            &id,
            IndexMap::from([("asked".to_string(), InputValue::Text("41".into()))]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(done.execution.state.current, StateType::Success);
    assert_eq!(outputs(&done, "pause"), Some(json!({"onResume": {"asked": 41}})));
    assert_eq!(outputs(&done, "last"), Some(json!({"value": "42"})));
    assert!(matches!(
        runner.resume(&id, IndexMap::new()),
        Err(RunnerError::IllegalState(_))
    ));
}

#[test]
fn kill_a_paused_execution() {
    let mut runner = runner_with(&[PAUSE]);
    let paused = runner
        .execute("t", "pause", IndexMap::new())
        .unwrap_or_else(|e| panic!("{e}"));
    let killed = runner
        .kill(&paused.execution.id)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(killed.execution.state.current, StateType::Killed);
    assert!(task_state(&killed, "last").is_empty());
}

#[test]
fn restart_retries_the_failed_task_run() {
    let mut runner = runner_with(&[r#"
id: restart
namespace: t
tasks:
  - id: ok
    type: io.kestra.plugin.core.log.Log
    message: ok
  - id: f
    type: io.kestra.plugin.core.execution.Fail
"#]);
    let failed = runner
        .execute("t", "restart", IndexMap::new())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(failed.execution.state.current, StateType::Failed);
    let again = runner
        .restart(&failed.execution.id)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.execution.state.current, StateType::Failed);
    assert_eq!(again.execution.metadata.attempt_number, 2);
    let f = again
        .execution
        .task_runs()
        .iter()
        .find(|t| t.task_id == "f")
        .map(|t| t.attempts.len());
    assert_eq!(f, Some(2));
    assert!(again
        .execution
        .state
        .histories
        .iter()
        .any(|h| h.state == StateType::Restarted));
}

#[test]
fn subflow_waits_and_exposes_outputs() {
    let mut runner = runner_with(&[
        r#"
id: child
namespace: t
inputs:
  - id: n
    type: INT
tasks:
  - id: r
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.n * 2 }}"
outputs:
  - id: doubled
    type: STRING
    value: "{{ outputs.r.value }}"
"#,
        r#"
id: parent
namespace: t
tasks:
  - id: sub
    type: io.kestra.plugin.core.flow.Subflow
    namespace: t
    flowId: child
    inputs:
      n: 21
    wait: true
    transmitFailed: true
  - id: use
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.sub.outputs.doubled }}"
"#,
    ]);
    let out = runner
        .execute("t", "parent", IndexMap::new())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.execution.state.current, StateType::Success);
    assert_eq!(outputs(&out, "use"), Some(json!({"value": "42"})));
    assert_eq!(out.subflow_executions.len(), 1);
    let child = &out.subflow_executions[0];
    assert_eq!(child.state.current, StateType::Success);
    assert!(child
        .labels
        .iter()
        .any(|l| l.key == "system.correlationId" && l.value == out.execution.id));
}

#[test]
fn flow_outputs_typed_and_failure_fails_the_execution() {
    let ok = run(r#"
id: outs
namespace: t
tasks:
  - id: r
    type: io.kestra.plugin.core.debug.Return
    format: "7"
outputs:
  - id: n
    type: INT
    value: "{{ outputs.r.value }}"
"#);
    assert_eq!(ok.execution.state.current, StateType::Success);
    assert_eq!(ok.execution.outputs.get("n"), Some(&json!(7)));
    let bad = run(r#"
id: outs-bad
namespace: t
tasks:
  - id: r
    type: io.kestra.plugin.core.debug.Return
    format: "seven"
outputs:
  - id: n
    type: INT
    value: "{{ outputs.r.value }}"
"#);
    assert_eq!(bad.execution.state.current, StateType::Failed);
    assert!(bad.execution.outputs.is_empty());
}

#[test]
fn concurrency_limit_decisions() {
    let flow = parse_flow(
        "id: c\nnamespace: t\nconcurrency:\n  limit: 1\n  behavior: CANCEL\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n",
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        executor::concurrency_decision(&flow, 0),
        executor::ConcurrencyDecision::Admit
    );
    assert_eq!(
        executor::concurrency_decision(&flow, 1),
        executor::ConcurrencyDecision::Cancel
    );
}

#[test]
fn long_for_each_settles() {
    let items: Vec<String> = (0..1000).map(|i| format!("\"{i}\"")).collect();
    let source = format!(
        "id: big\nnamespace: t\ntasks:\n  - id: e\n    type: io.kestra.plugin.core.flow.ForEach\n    values: [{}]\n    tasks:\n      - id: r\n        type: io.kestra.plugin.core.debug.Return\n        format: \"{{{{ taskrun.value }}}}\"\n",
        items.join(",")
    );
    let out = run(&source);
    assert_eq!(out.execution.state.current, StateType::Success);
    assert_eq!(task_state(&out, "r").len(), 1000);
}

#[test]
fn pause_timeout_fails_the_pause() {
    let out = run(r#"
id: pause-timeout
namespace: t
tasks:
  - id: pause
    type: io.kestra.plugin.core.flow.Pause
    timeout: PT5M
  - id: never
    type: io.kestra.plugin.core.log.Log
    message: never
"#);
    assert_eq!(out.execution.state.current, StateType::Failed);
    assert_eq!(task_state(&out, "pause"), [StateType::Failed]);
    assert!(task_state(&out, "never").is_empty());
}

#[test]
fn task_timeout_fails_a_long_sleep() {
    let out = run(r#"
id: task-timeout
namespace: t
tasks:
  - id: sleep
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT1H
    timeout: PT1M
"#);
    assert_eq!(out.execution.state.current, StateType::Failed);
    assert_eq!(task_state(&out, "sleep"), [StateType::Failed]);
    assert!(out.logs.iter().any(|l| l.message == "Timeout after PT1M"));
}

#[test]
fn each_parallel_and_fail_condition() {
    let out = run(r#"
id: each-par
namespace: t
tasks:
  - id: e
    type: io.kestra.plugin.core.flow.EachParallel
    value: ["a", "b", "c"]
    tasks:
      - id: check
        type: io.kestra.plugin.core.execution.Fail
        condition: "{{ taskrun.value == 'b' }}"
        errorMessage: "b is refused"
"#);
    assert_eq!(out.execution.state.current, StateType::Failed);
    let mut states = task_state(&out, "check");
    states.sort_by_key(|s| s.as_str());
    assert_eq!(
        states,
        [StateType::Failed, StateType::Success, StateType::Success]
    );
    assert!(out.logs.iter().any(|l| l.message.contains("b is refused")));
}

#[test]
fn assert_checks_every_condition_and_says_which_failed() {
    let out = run(r#"
id: asserts
namespace: t
inputs:
  - id: param
    type: STRING
    defaults: ok
tasks:
  - id: passes
    type: io.kestra.plugin.core.execution.Assert
    conditions:
      - "{{ inputs.param == 'ok' }}"
      - "{{ 1 + 1 }}"
  - id: fails
    type: io.kestra.plugin.core.execution.Assert
    conditions:
      - "{{ inputs.param == 'ok' }}"
      - "{{ 1 + 1 == 3 }}"
      - "{{ outputs.missing.value }}"
      - "0"
    errorMessage: "checked {{ inputs.param }}"
"#);
    assert_eq!(task_state(&out, "passes"), [StateType::Success]);
    assert_eq!(task_state(&out, "fails"), [StateType::Failed]);
    assert_eq!(out.execution.state.current, StateType::Failed);
    let messages: Vec<&str> = out.logs.iter().map(|l| l.message.as_str()).collect();
    assert!(
        messages.contains(&"Assertion `{{ 1 + 1 == 3 }}` failed!"),
        "{messages:?}"
    );
    assert!(messages.contains(&"Assertion `0` failed!"), "{messages:?}");
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("Assertion `{{ outputs.missing.value }}` failed, failed to render")),
        "{messages:?}"
    );
    assert!(
        messages.contains(&"3 assertions failed!\nchecked ok"),
        "{messages:?}"
    );
    assert!(
        !messages.iter().any(|m| m.contains("inputs.param == 'ok'")),
        "{messages:?}"
    );
}

#[test]
fn run_if_render_error_fails_and_log_level_filters() {
    let out = run(r#"
id: levels
namespace: t
tasks:
  - id: quiet
    type: io.kestra.plugin.core.log.Log
    logLevel: WARN
    level: INFO
    message: hidden
  - id: loud
    type: io.kestra.plugin.core.log.Log
    level: ERROR
    message: shown
  - id: broken
    type: io.kestra.plugin.core.log.Log
    runIf: "{{ outputs.nope.value }}"
    message: never
"#);
    let messages: Vec<&str> = out.logs.iter().map(|l| l.message.as_str()).collect();
    assert!(!messages.contains(&"hidden"), "{messages:?}");
    assert!(messages.contains(&"shown"), "{messages:?}");
    assert_eq!(task_state(&out, "broken"), [StateType::Failed]);
    assert_eq!(out.execution.state.current, StateType::Failed);
}

#[test]
fn flow_timeout_kills_the_execution_and_spent_timers_keep_the_clock() {
    let mut runner = runner_with(&[
        r#"
id: flow-timeout
namespace: t
timeout: PT10M
tasks:
  - id: sleep
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT1H
  - id: never
    type: io.kestra.plugin.core.log.Log
    message: never
"#,
        r#"
id: quick
namespace: t
timeout: PT10H
tasks:
  - id: sleep
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT1M
    timeout: PT5H
"#,
    ]);
    let start = runner.now();
    let out = runner
        .execute("t", "flow-timeout", IndexMap::new())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.execution.state.current, StateType::Killed);
    assert_eq!(task_state(&out, "sleep"), [StateType::Killed]);
    assert!(task_state(&out, "never").is_empty());
    assert_eq!(runner.now() - start, chrono::Duration::minutes(10));

    let start = runner.now();
    let out = runner
        .execute("t", "quick", IndexMap::new())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.execution.state.current, StateType::Success);
    assert_eq!(runner.now() - start, chrono::Duration::minutes(1));
}

#[test]
fn subflow_failure_is_transmitted_and_labels_inherited() {
    let mut runner = runner_with(&[
        r#"
id: bad-child
namespace: t
tasks:
  - id: f
    type: io.kestra.plugin.core.execution.Fail
"#,
        r#"
id: parent
namespace: t
labels:
  team: data
tasks:
  - id: sub
    type: io.kestra.plugin.core.flow.Subflow
    namespace: t
    flowId: bad-child
    inheritLabels: true
    wait: true
    transmitFailed: true
"#,
    ]);
    let out = runner
        .execute("t", "parent", IndexMap::new())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.execution.state.current, StateType::Failed);
    assert_eq!(task_state(&out, "sub"), [StateType::Failed]);
    let child = out
        .subflow_executions
        .first()
        .unwrap_or_else(|| panic!("no subflow execution"));
    assert_eq!(child.state.current, StateType::Failed);
    assert!(child.labels.iter().any(|l| l.key == "team" && l.value == "data"));
}

#[test]
fn flowable_errors_and_pause_with_subtasks() {
    let mut runner = runner_with(&[r#"
id: local-errors
namespace: t
tasks:
  - id: seq
    type: io.kestra.plugin.core.flow.Sequential
    tasks:
      - id: f
        type: io.kestra.plugin.core.execution.Fail
    errors:
      - id: local
        type: io.kestra.plugin.core.log.Log
        message: "{{ errorLogs()[0].message }}"
  - id: pause
    type: io.kestra.plugin.core.flow.Pause
    tasks:
      - id: inside
        type: io.kestra.plugin.core.log.Log
        message: inside
"#]);
    let out = runner
        .execute("t", "local-errors", IndexMap::new())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.execution.state.current, StateType::Failed);
    assert_eq!(task_state(&out, "local"), [StateType::Success]);
    assert_eq!(task_state(&out, "seq"), [StateType::Failed]);
    assert!(task_state(&out, "pause").is_empty());
}

#[test]
fn pause_subtasks_run_after_resume() {
    let mut runner = runner_with(&[r#"
id: pause-tasks
namespace: t
tasks:
  - id: pause
    type: io.kestra.plugin.core.flow.Pause
    tasks:
      - id: inside
        type: io.kestra.plugin.core.log.Log
        message: inside
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: after
"#]);
    let paused = runner
        .execute("t", "pause-tasks", IndexMap::new())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(paused.execution.state.current, StateType::Paused);
    assert!(task_state(&paused, "inside").is_empty());
    let done = runner
        .resume(&paused.execution.id, IndexMap::new())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(done.execution.state.current, StateType::Success);
    assert_eq!(task_state(&done, "inside"), [StateType::Success]);
    assert_eq!(task_state(&done, "after"), [StateType::Success]);
}

#[test]
fn exponential_retry_waits_longer_each_time() {
    let mut runner = runner_with(&[r#"
id: expo
namespace: t
tasks:
  - id: f
    type: io.kestra.plugin.core.execution.Fail
    retry:
      type: exponential
      interval: PT10S
      maxInterval: PT1H
      delayFactor: 2
      maxAttempts: 4
"#]);
    let start = runner.now();
    let out = runner
        .execute("t", "expo", IndexMap::new())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.execution.state.current, StateType::Failed);
    let attempts: usize = out.execution.task_runs().iter().map(|t| t.attempts.len()).sum();
    assert_eq!(attempts, 4);
    // 10 s, 20 s, 40 s between the four attempts
    assert_eq!(runner.now() - start, chrono::Duration::seconds(70));
}

#[test]
fn tasks_that_do_io_go_to_the_worker_and_its_result_feeds_the_flow() {
    let source = r#"
id: io
namespace: t
tasks:
  - id: call
    type: io.kestra.plugin.core.http.Request
    uri: "http://example.test/{{ flow.id }}"
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: "{{ outputs.call.code }} {{ outputs.call.body }}"
"#;
    // Without a worker, the task run fails saying so.
    let out = run(source);
    assert_eq!(out.execution.state.current, StateType::Failed);
    assert!(out
        .logs
        .iter()
        .any(|l| l.message == "This runner has no worker for tasks that do I/O"));

    let mut runner = runner_with(&[source]);
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let calls = seen.clone();
    runner.set_worker(Box::new(move |job, now| {
        let kite_core::plugin::IoCall::Http(call) = &job.call else {
            panic!("an HTTP call");
        };
        calls.borrow_mut().push(call.uri.clone());
        let response = kite_core::plugin::http::HttpResponse {
            status: 200,
            headers: vec![],
            body: b"pong".to_vec(),
            stored: None,
        };
        job.finish(kite_core::plugin::IoAnswer::Http(Ok(response)), now)
    }));
    let out = runner
        .execute("t", "io", IndexMap::new())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.execution.state.current, StateType::Success);
    assert_eq!(*seen.borrow(), ["http://example.test/io"]);
    assert!(out.logs.iter().any(|l| l.message == "200 pong"));
}

#[test]
fn a_variable_that_renders_itself_fails_its_task_run_instead_of_the_process() {
    let out = run(r#"
id: selfref
namespace: t
variables:
  a: "{{ render(vars.a) }}"
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ render(vars.a) }}"
"#);
    assert_eq!(out.execution.state.current, StateType::Failed);
    assert!(
        out.logs
            .iter()
            .any(|l| l.message.contains("renders nest deeper than 10 levels")),
        "{:?}",
        out.logs
    );
}

#[test]
fn secret_outputs_are_encrypted_and_never_shown() {
    let source = r#"
id: secret-out
namespace: t
inputs:
  - id: pw
    type: SECRET
tasks:
  - id: check
    type: io.kestra.plugin.core.execution.Fail
    condition: "{{ inputs.pw != 'hunter2' }}"
    errorMessage: the task saw another value
outputs:
  - id: password
    type: SECRET
    value: "{{ inputs.pw }}"
"#;
    let mut runner = runner_with(&[source]);
    let out = runner
        .execute(
            "t",
            "secret-out",
            IndexMap::from([("pw".to_string(), InputValue::Text("hunter2".into()))]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.execution.state.current, StateType::Success, "{:?}", out.logs);
    let sealed = out.execution.outputs["password"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        kite_core::input::decrypt_secret(&sealed, b"kite-runner-secret-key-for-tests").map_err(|e| e.message),
        Ok("hunter2".to_string())
    );
    let everything = format!("{:?} {:?}", out.execution, out.logs);
    assert!(
        !everything.contains("hunter2"),
        "the plain value leaked: {everything}"
    );
}

#[test]
fn secrets_render_and_are_masked_in_log_lines_and_errors() {
    use base64::Engine as _;
    let source = r#"
id: secrets
namespace: t
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "token is {{ secret('API_TOKEN') }}"
  - id: upper
    type: io.kestra.plugin.core.log.Log
    message: "{{ secret('api_token') | upper }} and {{ secret('OTHER') }}"
  - id: fail
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: "refused with {{ secret('API_TOKEN') }}"
"#;
    let mut runner = runner_with(&[source]);
    let encode = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
    runner.set_secrets(std::sync::Arc::new(
        kite_core::secret::EnvironmentSecrets::from_vars([
            ("SECRET_API_TOKEN", encode("tok-123")),
            ("SECRET_OTHER", encode("TOK-123-other")),
        ]),
    ));
    let out = runner
        .execute("t", "secrets", IndexMap::new())
        .unwrap_or_else(|e| panic!("execute failed: {e}"));
    assert_eq!(out.execution.state.current, StateType::Failed);
    let messages: Vec<&str> = out.logs.iter().map(|l| l.message.as_str()).collect();
    assert!(messages.contains(&"token is ******"), "{messages:?}");
    // A value derived from a secret is not masked (as in Kestra); the secret itself is.
    assert!(messages.contains(&"TOK-123 and ******"), "{messages:?}");
    assert!(messages.contains(&"refused with ******"), "{messages:?}");
    assert!(!messages.iter().any(|m| m.contains("tok-123")), "{messages:?}");
}

#[test]
fn a_missing_secret_fails_the_task_run_with_kestras_message() {
    let out = run(r#"
id: missing
namespace: t
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ secret('NOPE') }}"
"#);
    assert_eq!(task_state(&out, "log"), vec![StateType::Failed]);
    let messages: Vec<&str> = out.logs.iter().map(|l| l.message.as_str()).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("Cannot find secret for key 'NOPE'.")),
        "{messages:?}"
    );
}

#[test]
fn outputs_past_the_bound_fail_the_task_run_saying_so() {
    let source = r#"
id: big
namespace: t
tasks:
  - id: small
    type: io.kestra.plugin.core.debug.Return
    format: "ok"
  - id: large
    type: io.kestra.plugin.core.debug.Return
    format: "0123456789012345678901234567890123456789"
    allowFailure: true
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: "{{ outputs.small.value }} {{ outputs.large }}"
"#;
    let mut runner = runner_with(&[source]);
    runner.set_max_task_output(30);
    let out = runner
        .execute("t", "big", IndexMap::new())
        .unwrap_or_else(|e| panic!("{e}"));
    let state = |id: &str| {
        out.execution
            .task_runs()
            .iter()
            .find(|t| t.task_id == id)
            .map(|t| t.state.current)
    };
    assert_eq!(state("small"), Some(StateType::Success));
    assert_eq!(state("large"), Some(StateType::Warning));
    assert_eq!(out.execution.state.current, StateType::Warning);
    let messages: Vec<&str> = out.logs.iter().map(|l| l.message.as_str()).collect();
    assert!(
        messages.contains(
            &"The task's outputs are 52 bytes of JSON; at most 30 are allowed (KITE_MAX_TASK_OUTPUT)"
        ),
        "{messages:?}"
    );
    assert!(messages.contains(&"ok {}"), "{messages:?}");
}
