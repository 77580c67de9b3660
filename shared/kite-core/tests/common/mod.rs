//! Helpers shared by the corpus and executor tests: running flows through the in-memory
//! runner and checking executions with readable failure messages.

#![allow(dead_code)]

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use kite_core::execution::{Execution, LogEntry, StateType, TaskRun};
use kite_core::input::InputValue;
use kite_core::runner::{Outcome, Runner};
use serde_json::Value;

pub type Check = Result<(), String>;

pub const TESTS_NS: &str = "io.kestra.tests";

/// Inputs as a form would send them (raw strings, typed by the flow's declarations).
pub fn text(pairs: &[(&str, &str)]) -> IndexMap<String, InputValue> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), InputValue::Text(v.to_string())))
        .collect()
}

pub fn none() -> IndexMap<String, InputValue> {
    IndexMap::new()
}

pub fn run(r: &mut Runner, flow_id: &str, inputs: IndexMap<String, InputValue>) -> Result<Outcome, String> {
    run_ns(r, TESTS_NS, flow_id, inputs)
}

pub fn run_ns(
    r: &mut Runner,
    namespace: &str,
    flow_id: &str,
    inputs: IndexMap<String, InputValue>,
) -> Result<Outcome, String> {
    r.execute(namespace, flow_id, inputs)
        .map_err(|e| format!("execute {namespace}.{flow_id}: {e}"))
}

/// One line summary of an execution: state and every task run with its value and state.
pub fn describe(e: &Execution) -> String {
    let runs: Vec<String> = e
        .task_runs()
        .iter()
        .map(|t| match &t.value {
            Some(v) => format!("{}[{}]:{}", t.task_id, v, t.state.current.as_str()),
            None => format!("{}:{}", t.task_id, t.state.current.as_str()),
        })
        .collect();
    format!(
        "{} ({} task runs: {})",
        e.state.current.as_str(),
        runs.len(),
        runs.join(", ")
    )
}

pub fn expect_state(e: &Execution, want: StateType) -> Check {
    if e.state.current == want {
        Ok(())
    } else {
        Err(format!("state: expected {}, got {}", want.as_str(), describe(e)))
    }
}

pub fn expect_count(e: &Execution, want: usize) -> Check {
    let got = e.task_runs().len();
    if got == want {
        Ok(())
    } else {
        Err(format!("task runs: expected {want}, got {}", describe(e)))
    }
}

/// Final state and number of task runs, the two facts Kestra's tests check first.
pub fn expect(e: &Execution, state: StateType, count: usize) -> Check {
    expect_state(e, state)?;
    expect_count(e, count)
}

pub fn runs<'a>(e: &'a Execution, task_id: &str) -> Vec<&'a TaskRun> {
    e.task_runs().iter().filter(|t| t.task_id == task_id).collect()
}

/// The only task run of a task.
pub fn one<'a>(e: &'a Execution, task_id: &str) -> Result<&'a TaskRun, String> {
    let found = runs(e, task_id);
    match found.as_slice() {
        [t] => Ok(t),
        [] => Err(format!("no task run for `{task_id}` in {}", describe(e))),
        _ => Err(format!(
            "{} task runs for `{task_id}`, expected one, in {}",
            found.len(),
            describe(e)
        )),
    }
}

/// Iteration values from the outermost iteration down to this task run
/// (children of a flowable inside an iteration repeat its value: kept once).
pub fn value_path(e: &Execution, tr: &TaskRun) -> Vec<String> {
    let mut chain = Vec::new();
    let mut current = Some(tr);
    let mut guard = 0;
    while let Some(t) = current {
        if let Some(v) = &t.value {
            chain.push(v.clone());
        }
        current = t.parent_task_run_id.as_deref().and_then(|id| e.find_task_run(id));
        guard += 1;
        if guard > 1000 {
            break;
        }
    }
    chain.reverse();
    chain.dedup();
    chain
}

/// The task run of `task_id` in the iteration given by `path` (outermost first).
pub fn at<'a>(e: &'a Execution, task_id: &str, path: &[&str]) -> Result<&'a TaskRun, String> {
    let found: Vec<&TaskRun> = runs(e, task_id)
        .into_iter()
        .filter(|t| value_path(e, t) == path)
        .collect();
    match found.as_slice() {
        [t] => Ok(t),
        _ => Err(format!(
            "expected one task run of `{task_id}` at {path:?}, found {} in {}",
            found.len(),
            describe(e)
        )),
    }
}

pub fn output(tr: &TaskRun, key: &str) -> Result<Value, String> {
    tr.outputs
        .as_ref()
        .and_then(|o| o.get(key))
        .cloned()
        .ok_or_else(|| {
            format!(
                "task run `{}` has no output `{key}` (outputs: {:?})",
                tr.task_id, tr.outputs
            )
        })
}

/// `outputs.value` of a Return task, as a string.
pub fn value(tr: &TaskRun) -> Result<String, String> {
    match output(tr, "value")? {
        Value::String(s) => Ok(s),
        other => Err(format!("`{}` value is not a string: {other}", tr.task_id)),
    }
}

pub fn value_of(e: &Execution, task_id: &str) -> Result<String, String> {
    value(one(e, task_id)?)
}

pub fn expect_value(e: &Execution, task_id: &str, want: &str) -> Check {
    expect_eq(
        &format!("`{task_id}` value"),
        value_of(e, task_id)?,
        want.to_string(),
    )
}

pub fn expect_eq<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Check {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: expected {want:?}, got {got:?}"))
    }
}

pub fn expect_contains(what: &str, got: &str, needle: &str) -> Check {
    if got.contains(needle) {
        Ok(())
    } else {
        Err(format!("{what}: expected to contain {needle:?}, got {got:?}"))
    }
}

pub fn expect_run_state(e: &Execution, task_id: &str, want: StateType) -> Check {
    let found = runs(e, task_id);
    if found.is_empty() {
        return Err(format!("no task run for `{task_id}` in {}", describe(e)));
    }
    for t in found {
        if t.state.current != want {
            return Err(format!(
                "`{task_id}`: expected {}, got {}",
                want.as_str(),
                describe(e)
            ));
        }
    }
    Ok(())
}

/// Task ids that ran, each with its state, in task-run (creation) order: the
/// order is part of the check (`errors`, then `finally`, then `afterExecution`).
pub fn expect_runs(e: &Execution, want: &[(&str, StateType)]) -> Check {
    let got: Vec<(String, StateType)> = e
        .task_runs()
        .iter()
        .map(|t| (t.task_id.clone(), t.state.current))
        .collect();
    let want_owned: Vec<(String, StateType)> = want.iter().map(|(t, s)| (t.to_string(), *s)).collect();
    if got == want_owned {
        Ok(())
    } else {
        Err(format!("task runs: expected {want:?}, got {}", describe(e)))
    }
}

pub fn expect_absent(e: &Execution, task_id: &str) -> Check {
    if runs(e, task_id).is_empty() {
        Ok(())
    } else {
        Err(format!("`{task_id}` should not have run: {}", describe(e)))
    }
}

/// Log lines of one task of one execution: (level, message).
pub fn logs_of(o: &Outcome, execution_id: &str, task_id: &str) -> Vec<(String, String)> {
    o.logs
        .iter()
        .filter(|l| l.execution_id == execution_id && l.task_id.as_deref() == Some(task_id))
        .map(|l| (l.level.to_string(), l.message.clone()))
        .collect()
}

pub fn expect_logs(o: &Outcome, task_id: &str, want: &[(&str, &str)]) -> Check {
    let got = logs_of(o, &o.execution.id, task_id);
    let want: Vec<(String, String)> = want.iter().map(|(l, m)| (l.to_string(), m.to_string())).collect();
    expect_eq(&format!("`{task_id}` logs"), got, want)
}

/// Some log line of the execution contains `needle`.
pub fn expect_log_containing(o: &Outcome, needle: &str) -> Check {
    let all: Vec<&LogEntry> = o.logs.iter().collect();
    if all.iter().any(|l| l.message.contains(needle)) {
        Ok(())
    } else {
        let lines: Vec<String> = all
            .iter()
            .map(|l| format!("{} {:?} {}", l.level, l.task_id, l.message))
            .collect();
        Err(format!("no log line contains {needle:?}; logs: {lines:?}"))
    }
}

pub fn labels(e: &Execution) -> Vec<(String, String)> {
    e.labels
        .iter()
        .map(|l| (l.key.clone(), l.value.clone()))
        .collect()
}

pub fn expect_labels(e: &Execution, want: &[(&str, &str)]) -> Check {
    let want: Vec<(String, String)> = want.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    expect_eq("labels", labels(e), want)
}

pub fn parse_date(what: &str, s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|err| format!("{what}: {s:?} is not an ISO date-time: {err}"))
}

/// A Return value written as `<prefix><{{taskrun.startDate}}>`: the date must
/// be the task run's own start date.
pub fn expect_prefix_then_start_date(tr: &TaskRun, prefix: &str) -> Check {
    let v = value(tr)?;
    let rest = v
        .strip_prefix(prefix)
        .ok_or_else(|| format!("`{}` value {v:?} should start with {prefix:?}", tr.task_id))?;
    let date = parse_date(&format!("`{}` value", tr.task_id), rest)?;
    match tr.state.start_date {
        Some(start) if start == date => Ok(()),
        other => Err(format!(
            "`{}` value date {date} is not the task run start date {other:?}",
            tr.task_id
        )),
    }
}

/// How many times a state appears in a history.
pub fn history_count(tr: &TaskRun, state: StateType) -> usize {
    tr.state.histories.iter().filter(|h| h.state == state).count()
}

pub fn first_date(tr: &TaskRun, state: StateType) -> Option<DateTime<Utc>> {
    tr.state
        .histories
        .iter()
        .find(|h| h.state == state)
        .map(|h| h.date)
}
