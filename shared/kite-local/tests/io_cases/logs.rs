//! `get-log*.yaml` (Kestra's flows, as `FetchTest` runs them): `log.Fetch` of the current
//! execution's lines, all of them or one task's.

use kite_core::execution::StateType::Success;
use serde_json::{json, Value};

use super::{same, Check, Done, Env};

/// The lines of the Ion file `Fetch` wrote, as JSON.
async fn fetched(env: &Env, done: &Done) -> Result<Vec<Value>, String> {
    let text = env.text(&done.output("get-log-task", "uri")).await?;
    text.lines()
        .map(|l| {
            kite_core::ion::from_line(l)
                .map(|v| v.to_json())
                .map_err(|e| format!("{l:?}: {e}"))
        })
        .collect()
}

fn messages(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            format!(
                "{} {}",
                l["taskId"].as_str().unwrap_or("-"),
                l["message"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// `FetchTest.fetch`: every line of the execution (Kestra counts 3).
pub async fn fetch(env: &Env) -> Check {
    let done = env.run("get-log.yaml", &[], &[]).await?;
    done.states(Success, &[("get-log-task", Success)])?;
    same("task runs", done.execution.task_runs().len(), 4)?;
    same("size", done.output("get-log-task", "size"), json!(3))
}

/// What Kite's file holds for `get-log.yaml`: the two Echo lines, in order, with
/// Kestra's log entry fields.
pub async fn fetch_lines(env: &Env) -> Check {
    let done = env.run("get-log.yaml", &[], &[]).await?;
    done.states(Success, &[("get-log-task", Success)])?;
    same("size", done.output("get-log-task", "size"), json!(2))?;
    let lines = fetched(env, &done).await?;
    same(
        "lines",
        messages(&lines),
        vec!["task-1 task 1".to_string(), "task-2 task 2".to_string()],
    )?;
    same("level", &lines[0]["level"], &json!("INFO"))?;
    same("executionId", &lines[0]["executionId"], &json!(done.execution.id))?;
    same("flowId", &lines[0]["flowId"], &json!("get-log"))
}

/// `FetchTest.fetchWithTaskId`: one task's line.
pub async fn fetch_task_id(env: &Env) -> Check {
    let done = env.run("get-log-taskid.yaml", &[], &[]).await?;
    done.states(Success, &[("get-log-task", Success)])?;
    same("task runs", done.execution.task_runs().len(), 4)?;
    same("size", done.output("get-log-task", "size"), json!(1))?;
    same(
        "lines",
        messages(&fetched(env, &done).await?),
        vec!["task-1 task 1".to_string()],
    )
}

/// `FetchTest.fetchWithExecutionId`: the current execution given by id (Kestra counts 3).
pub async fn fetch_execution_id(env: &Env) -> Check {
    let done = env.run("get-log-executionid.yaml", &[], &[]).await?;
    done.states(Success, &[("get-log-task", Success)])?;
    same("size", done.output("get-log-task", "size"), json!(3))
}
