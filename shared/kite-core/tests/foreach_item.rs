//! ForEachItem in the executor: its three steps, one subflow request per batch with
//! `taskrun.items`/`taskrun.iteration`, subflow ends counted once, `transmitFailed`.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{TimeZone, Utc};
use indexmap::IndexMap;
use kite_core::execution::{Execution, StateType, TaskResult};
use kite_core::executor::{
    apply, new_execution, Command, Env, Event, IdSource, NewExecution, SubflowRequest,
};
use kite_core::expression::ExpressionEngine;
use kite_core::flow::{parse_flow, Flow};
use serde_json::{json, Value};

struct Ids(AtomicU64);

impl IdSource for Ids {
    fn next_id(&self) -> String {
        format!("id{}", self.0.fetch_add(1, Ordering::Relaxed))
    }

    fn nonce(&self) -> [u8; 12] {
        [0; 12]
    }
}

struct Run {
    flow: Flow,
    execution: Execution,
    ids: Ids,
    engine: ExpressionEngine,
    subflows: Vec<SubflowRequest>,
    to_run: Vec<String>,
}

impl Run {
    fn start(source: &str) -> Run {
        let flow = parse_flow(source).unwrap_or_else(|e| panic!("{e:?}"));
        let now = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let request = NewExecution {
            id: "parent".into(),
            ..Default::default()
        };
        let execution = new_execution(&flow, request, now);
        let mut run = Run {
            flow,
            execution,
            ids: Ids(AtomicU64::new(0)),
            engine: ExpressionEngine::new(),
            subflows: Vec::new(),
            to_run: Vec::new(),
        };
        run.send(Event::Start);
        run
    }

    fn send(&mut self, event: Event) {
        let env = Env {
            now: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 1).unwrap(),
            ids: &self.ids,
            expressions: &self.engine,
            files: None,
            secret_key: None,
            globals: None,
            secrets: None,
            max_task_output: kite_core::env::DEFAULT_MAX_TASK_OUTPUT,
            kv: None,
        };
        for command in apply(&self.flow, &mut self.execution, event, &env).expect("apply") {
            match command {
                Command::RunTask { task_run_id } => self.to_run.push(task_run_id),
                Command::CreateSubflowExecution(r) => self.subflows.push(r),
                _ => {}
            }
        }
    }

    /// Ends the pending worker task run of `task_id` with `outputs`.
    fn worker_done(&mut self, task_id: &str, outputs: Value) {
        let id = self
            .to_run
            .iter()
            .find(|id| {
                self.execution
                    .find_task_run(id)
                    .is_some_and(|t| t.task_id == task_id)
            })
            .cloned()
            .unwrap_or_else(|| panic!("`{task_id}` was not sent to a worker: {:?}", self.states()));
        let outputs: IndexMap<String, Value> = serde_json::from_value(outputs).expect("outputs");
        self.send(Event::TaskRunFinished {
            task_run_id: id,
            result: TaskResult {
                state: StateType::Success,
                outputs,
                logs: Vec::new(),
            },
        });
    }

    /// The child execution of subflow request `n`, ended in `state` with `outputs`.
    fn child_ended(&mut self, n: usize, state: StateType, outputs: Value) {
        let request = self.subflows[n].clone();
        let mut child = self.execution.clone();
        child.id = request.execution_id.clone();
        child.task_run_list = None;
        child.trigger = Some(request.trigger.clone());
        child.outputs = serde_json::from_value(outputs).expect("outputs");
        child
            .state
            .set(state, Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 2).unwrap());
        self.send(Event::SubflowEnded {
            task_run_id: request.parent_task_run_id,
            child: Box::new(child),
        });
    }

    fn states(&self) -> Vec<(String, StateType)> {
        self.execution
            .task_runs()
            .iter()
            .map(|t| (t.task_id.clone(), t.state.current))
            .collect()
    }

    fn outputs(&self, task_id: &str) -> Value {
        let tr = self.execution.task_runs().iter().find(|t| t.task_id == task_id);
        json!(tr.and_then(|t| t.outputs.clone()))
    }
}

const FLOW: &str = r#"
id: parent
namespace: t
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "kestra:///t/parent/executions/parent/file.csv"
    batch:
      rows: 10
    namespace: t
    flowId: child
    transmitFailed: TRANSMIT
    inputs:
      file: "{{ taskrun.items }}"
      n: "{{ taskrun.iteration }}"
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: done
"#;

fn split_then_batches(transmit: bool) -> Run {
    let mut run = Run::start(&FLOW.replace("TRANSMIT", &transmit.to_string()));
    run.worker_done(
        "each_split",
        json!({"splits": ["kestra:///b0.csv", "kestra:///b1.csv"]}),
    );
    run
}

#[test]
fn one_subflow_per_batch_each_end_counted_once() {
    let mut run = split_then_batches(true);
    assert_eq!(run.subflows.len(), 2);
    assert_eq!(run.subflows[1].inputs["file"], json!("kestra:///b1.csv"));
    assert_eq!(run.subflows[1].inputs["n"], json!(1));
    assert_eq!(
        run.subflows[0].trigger.type_name,
        "io.kestra.plugin.core.flow.ForEachItem$ForEachItemExecutable"
    );
    assert_eq!(
        run.outputs("each_items"),
        json!({"numberOfBatches": 2, "iterations": {"CREATED": 2, "RUNNING": 0}})
    );

    // The same end delivered twice counts once.
    run.child_ended(0, StateType::Success, json!({"rows": 10}));
    run.child_ended(0, StateType::Success, json!({"rows": 10}));
    assert_eq!(
        run.outputs("each_items"),
        json!({"numberOfBatches": 2, "iterations": {"CREATED": 1, "RUNNING": 0, "SUCCESS": 1}})
    );
    assert_eq!(run.execution.state.current, StateType::Running);

    run.child_ended(1, StateType::Success, json!({"rows": 3}));
    assert_eq!(
        run.outputs("each_items"),
        json!({"numberOfBatches": 2, "iterations": {"CREATED": 0, "RUNNING": 0, "SUCCESS": 2}})
    );
    run.worker_done("each_merge", json!({"subflowOutputs": "kestra:///merged.ion"}));
    // `after` (a light task the driver runs inline) comes once ForEachItem ended.
    let want: Vec<(String, StateType)> = [
        ("each", StateType::Success),
        ("each_split", StateType::Success),
        ("each_items", StateType::Success),
        ("each_merge", StateType::Success),
        ("after", StateType::Running),
    ]
    .iter()
    .map(|(id, s)| (id.to_string(), *s))
    .collect();
    assert_eq!(run.states(), want);
}

#[test]
fn a_failed_batch_fails_the_task_run_unless_transmit_failed_is_false() {
    for (transmit, want) in [(true, StateType::Failed), (false, StateType::Success)] {
        let mut run = split_then_batches(transmit);
        run.child_ended(1, StateType::Failed, json!({}));
        run.child_ended(0, StateType::Success, json!({}));
        let items = run
            .states()
            .into_iter()
            .find(|(id, _)| id == "each_items")
            .map(|(_, s)| s);
        assert_eq!(items, Some(want), "transmitFailed {transmit}");
        assert_eq!(
            run.outputs("each_items")["iterations"],
            json!({"CREATED": 0, "RUNNING": 0, "FAILED": 1, "SUCCESS": 1})
        );
    }
}

#[test]
fn items_that_are_not_an_internal_storage_uri_fail_the_split() {
    let flow = parse_flow(
        &FLOW
            .replace("TRANSMIT", "true")
            .replace("kestra:///t/parent/executions/parent/file.csv", "/etc/passwd"),
    )
    .expect("flow");
    let step = flow.find_task("each_split").expect("split step");
    let kite_core::flow::TaskKind::Io(io) = &step.kind else {
        panic!("the split step runs on a worker")
    };
    let render = |v: &Value| {
        Ok(match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    };
    let err = (io.kind.spec().prepare)(&io.properties, &render).unwrap_err();
    assert_eq!(
        err,
        "Unable to split the items from /etc/passwd, this is not an internal storage URI!"
    );
}

#[test]
fn a_restart_runs_every_batch_again() {
    let mut run = split_then_batches(true);
    run.child_ended(0, StateType::Failed, json!({}));
    run.child_ended(1, StateType::Success, json!({}));
    assert_eq!(
        run.execution.state.current,
        StateType::Failed,
        "{:?}",
        run.states()
    );
    run.send(Event::Restart);
    assert_eq!(run.subflows.len(), 4);
    assert_eq!(
        run.outputs("each_items"),
        json!({"numberOfBatches": 2, "iterations": {"CREATED": 2, "RUNNING": 0}})
    );
    run.child_ended(2, StateType::Success, json!({}));
    run.child_ended(3, StateType::Success, json!({}));
    run.worker_done("each_merge", json!({}));
    let items = run
        .execution
        .task_runs()
        .iter()
        .find(|t| t.task_id == "each_items")
        .cloned();
    assert_eq!(
        items.map(|t| (t.state.current, t.attempts.len())),
        Some((StateType::Success, 2))
    );
}
