//! Flow triggers: states, conditions, preconditions windows, idempotent ids.

// The corpus of flows is read from disk by the tests, never by the core.
#![allow(clippy::disallowed_methods)]

use chrono::{DateTime, Duration, Utc};
use indexmap::IndexMap;
use kite_core::execution::{Execution, Label, StateType};
use kite_core::executor::{new_execution, NewExecution};
use kite_core::expression::ExpressionEngine;
use kite_core::flow::{parse_flow, Flow};
use kite_core::run_variables::{for_execution, Extras};
use kite_core::trigger::condition::ConditionContext;
use kite_core::trigger::flow_trigger::{
    execution_id, occurrence, trigger_variables, FlowTrigger, Outcome, PreconditionWindow,
};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/kestra-flows");

fn corpus(name: &str) -> Flow {
    let source = std::fs::read_to_string(format!("{CORPUS}/{name}")).unwrap();
    parse_flow(&source).unwrap()
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-06-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn execution_of(flow: &Flow, id: &str, state: StateType) -> Execution {
    let mut e = new_execution(
        flow,
        NewExecution {
            id: id.into(),
            inputs: IndexMap::new(),
            labels: Vec::new(),
            trigger: None,
            schedule_date: None,
            parent: None,
        },
        now(),
    );
    e.state.set(StateType::Running, now());
    if state != StateType::Running {
        e.state.set(state, now());
    }
    e
}

fn evaluate(
    listener: &Flow,
    upstream_flow: &Flow,
    upstream: &Execution,
    at: DateTime<Utc>,
    window: Option<&PreconditionWindow>,
) -> Outcome {
    let trigger = FlowTrigger::from_trigger(&listener.triggers[0]).unwrap();
    let engine = ExpressionEngine::new();
    let mut vars = for_execution(upstream_flow, upstream, Extras::default());
    vars["trigger"] = serde_json::to_value(trigger_variables(upstream, upstream.state.current)).unwrap();
    let ctx = ConditionContext {
        expressions: &engine,
        variables: &vars,
        now: at,
        execution: Some(upstream),
    };
    trigger
        .evaluate(
            (&listener.namespace, &listener.id),
            upstream,
            upstream.state.current,
            &ctx,
            window,
        )
        .unwrap()
}

#[test]
fn status_and_flow_conditions_select_the_upstream() {
    let listener = corpus("trigger-flow-listener.yaml");
    let upstream_flow = corpus("trigger-flow.yaml");
    let ok = execution_of(&upstream_flow, "up1", StateType::Success);
    assert!(evaluate(&listener, &upstream_flow, &ok, now(), None).fire);
    let failed = execution_of(&upstream_flow, "up2", StateType::Failed);
    assert!(!evaluate(&listener, &upstream_flow, &failed, now(), None).fire);
    let other = execution_of(&corpus("trigger-flow-with-pause.yaml"), "up3", StateType::Success);
    assert!(!evaluate(&listener, &upstream_flow, &other, now(), None).fire);
}

#[test]
fn default_states_are_terminal_and_paused_and_never_running() {
    let listener = corpus("trigger-flow-listener-no-inputs.yaml");
    let t = FlowTrigger::from_trigger(&listener.triggers[0]).unwrap();
    for s in [
        StateType::Success,
        StateType::Failed,
        StateType::Warning,
        StateType::Killed,
        StateType::Paused,
    ] {
        assert!(t.listens_to(s), "{s:?}");
    }
    assert!(!t.listens_to(StateType::Running));
    assert!(!t.listens_to(StateType::Created));
}

#[test]
fn a_flow_never_triggers_itself() {
    let listener = corpus("trigger-flow-listener-namespace-condition.yaml");
    let own = execution_of(&listener, "self", StateType::Success);
    assert!(!evaluate(&listener, &listener, &own, now(), None).fire);
}

#[test]
fn namespace_prefix_alerting_receives_every_failure_below_it() {
    let listener = parse_flow(
        r#"
id: alerts
namespace: company
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ trigger.namespace }}.{{ trigger.flowId }} ended {{ trigger.state }}"
triggers:
  - id: on_failure
    type: io.kestra.plugin.core.trigger.Flow
    states: [FAILED, WARNING]
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionNamespace
        namespace: company
        comparison: PREFIX
"#,
    )
    .unwrap();
    let team = parse_flow("id: etl\nnamespace: company.team\ntasks:\n  - id: f\n    type: io.kestra.plugin.core.execution.Fail\n").unwrap();
    let outside = parse_flow(
        "id: etl\nnamespace: other\ntasks:\n  - id: f\n    type: io.kestra.plugin.core.execution.Fail\n",
    )
    .unwrap();
    assert!(
        evaluate(
            &listener,
            &team,
            &execution_of(&team, "a", StateType::Failed),
            now(),
            None
        )
        .fire
    );
    assert!(
        evaluate(
            &listener,
            &team,
            &execution_of(&team, "b", StateType::Warning),
            now(),
            None
        )
        .fire
    );
    assert!(
        !evaluate(
            &listener,
            &team,
            &execution_of(&team, "c", StateType::Success),
            now(),
            None
        )
        .fire
    );
    assert!(
        !evaluate(
            &listener,
            &outside,
            &execution_of(&outside, "d", StateType::Failed),
            now(),
            None
        )
        .fire
    );
}

#[test]
fn preconditions_fire_once_when_a_and_b_both_succeeded() {
    // Kestra's MultipleConditionTriggerCaseTest#flowTriggerPreconditions: a, a, b → one execution.
    let listener = corpus("flow-trigger-preconditions-flow-listen.yaml");
    let a = corpus("flow-trigger-preconditions-flow-a.yaml");
    let b = corpus("flow-trigger-preconditions-flow-b.yaml");
    let mut window = None;
    let mut fired = 0;
    for (flow, id) in [(&a, "a1"), (&a, "a2"), (&b, "b1")] {
        let mut e = execution_of(flow, id, StateType::Success);
        e.labels = flow
            .labels
            .iter()
            .map(|(k, v)| Label {
                key: k.clone(),
                value: v.clone(),
            })
            .collect();
        let outcome = evaluate(&listener, flow, &e, now(), window.as_ref());
        fired += usize::from(outcome.fire);
        window = outcome.window;
    }
    assert_eq!(fired, 1);
    // Reset on success: b alone afterwards does not fire again.
    let e = execution_of(&b, "b2", StateType::Success);
    assert!(!evaluate(&listener, &b, &e, now(), window.as_ref()).fire);
}

#[test]
fn preconditions_expire_with_their_window() {
    let listener = corpus("flow-trigger-preconditions-flow-listen.yaml");
    let a = corpus("flow-trigger-preconditions-flow-a.yaml");
    let b = corpus("flow-trigger-preconditions-flow-b.yaml");
    let mut ea = execution_of(&a, "a1", StateType::Success);
    ea.labels = vec![Label {
        key: "some".into(),
        value: "label".into(),
    }];
    let first = evaluate(&listener, &a, &ea, now(), None);
    assert!(!first.fire);
    // The default window is a day: b the next day starts a new window.
    let eb = execution_of(&b, "b1", StateType::Success);
    let next_day = now() + Duration::days(1);
    assert!(!evaluate(&listener, &b, &eb, next_day, first.window.as_ref()).fire);
    // The same day it completes the window.
    assert!(
        evaluate(
            &listener,
            &b,
            &eb,
            now() + Duration::hours(1),
            first.window.as_ref()
        )
        .fire
    );
}

#[test]
fn ids_are_stable_per_state_change_and_count_repeated_states() {
    let flow = corpus("trigger-flow-with-pause.yaml");
    let mut e = execution_of(&flow, "up", StateType::Paused);
    assert_eq!(occurrence(&e, StateType::Running), 1);
    e.state.set(StateType::Running, now());
    assert_eq!(occurrence(&e, StateType::Running), 2);
    let first = execution_id(&e, StateType::Running, 1, "ns", "listener", "t");
    assert_eq!(
        first,
        execution_id(&e, StateType::Running, 1, "ns", "listener", "t")
    );
    // Fixed values: every process and every release must derive the same id for a state
    // change, or a redelivered change (another Lambda instance) would fire the listener twice.
    assert_eq!(first, "7iT8x8IuwygfYCvLYjrThU");
    assert_eq!(
        execution_id(&e, StateType::Running, 2, "ns", "listener", "t"),
        "5hGkvX2foS4LMoJburUvsj"
    );
    assert_eq!(
        execution_id(&e, StateType::Running, 1, "ns", "listener", "other"),
        "58x2EDEnEk7sxImwEANCU"
    );
    assert_ne!(
        first,
        execution_id(&e, StateType::Running, 2, "ns", "listener", "t")
    );
    assert_ne!(
        first,
        execution_id(&e, StateType::Running, 1, "ns", "listener", "other")
    );
}

#[test]
fn trigger_variables_name_the_upstream() {
    let flow = corpus("trigger-flow.yaml");
    let e = execution_of(&flow, "up", StateType::Success);
    let v = trigger_variables(&e, StateType::Success);
    assert_eq!(v["executionId"], "up");
    assert_eq!(v["namespace"], "io.kestra.tests.trigger");
    assert_eq!(v["flowId"], "trigger-flow");
    assert_eq!(v["state"], "SUCCESS");
    assert!(v.contains_key("outputs"));
}

#[test]
fn outputs_and_labels_conditions_look_at_the_upstream() {
    let listener = parse_flow(
        r#"
id: on-big-batch
namespace: company
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ trigger.outputs.rows }}"
triggers:
  - id: big
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionOutputs
        expression: "{{ trigger.outputs.rows > 1000 }}"
      - type: io.kestra.core.models.conditions.types.ExecutionLabelsCondition
        labels:
          env: prod
"#,
    )
    .unwrap();
    let upstream_flow = parse_flow("id: etl\nnamespace: company.data\ntasks:\n  - id: r\n    type: io.kestra.plugin.core.debug.Return\n    format: x\n").unwrap();
    let run = |rows: i64, env: &str| {
        let mut e = execution_of(&upstream_flow, "up", StateType::Success);
        e.outputs.insert("rows".into(), serde_json::json!(rows));
        e.labels = vec![Label {
            key: "env".into(),
            value: env.into(),
        }];
        evaluate(&listener, &upstream_flow, &e, now(), None).fire
    };
    assert!(run(5000, "prod"));
    assert!(!run(10, "prod"));
    assert!(!run(5000, "dev"));
    // No outputs at all: ExecutionOutputs does not hold.
    let e = execution_of(&upstream_flow, "up", StateType::Success);
    assert!(!evaluate(&listener, &upstream_flow, &e, now(), None).fire);
}
