//! `for-each-item.yaml` and its subflow (Kestra's flows, as `ForEachItemCaseTest` runs
//! them): 102 lines in batches of 4 give 26 subflow executions.

use kite_core::execution::StateType::Success;
use kite_engine::ports::{ExecutionQuery, Pagination};
use serde_json::{json, Value};

use super::{ensure, same, Check, Env};

const SUBFLOW: &str = include_str!("../../../../tests/kestra-flows/io/for-each-item-subflow.yaml");

/// Kestra's test file: the numbers 0 to 101, each left-padded to 20 characters.
fn content() -> Vec<u8> {
    (0..102)
        .map(|n| format!("{n:>20}\n"))
        .collect::<String>()
        .into_bytes()
}

/// `ForEachItemCaseTest.forEachItem`.
pub async fn for_each_item(env: &Env) -> Check {
    env.engine.create_flow(SUBFLOW).await.map_err(|e| e.to_string())?;
    let done = env
        .run("for-each-item.yaml", &[], &[("file", "file.txt", content())])
        .await?;
    done.states(Success, &[("each_items", Success)])?;
    let ids: Vec<&str> = done
        .execution
        .task_runs()
        .iter()
        .map(|t| t.task_id.as_str())
        .collect();
    same(
        "task runs",
        ids,
        vec!["each", "each_split", "each_items", "each_merge"],
    )?;
    let items = &done.execution.task_runs()[2];
    same("attempts", items.attempts.len(), 1)?;
    same(
        "numberOfBatches",
        done.output("each_items", "numberOfBatches"),
        json!(26),
    )?;
    same(
        "iterations",
        done.output("each_items", "iterations"),
        json!({"CREATED": 0, "RUNNING": 0, "SUCCESS": 26}),
    )?;
    let children = env
        .engine
        .search_executions(&ExecutionQuery {
            trigger_execution_id: Some(done.execution.id.clone()),
            pagination: Pagination { page: 1, size: 100 },
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?
        .results;
    same("subflow executions", children.len(), 26)?;
    let iteration = |e: &kite_core::execution::Execution| {
        e.trigger
            .as_ref()
            .and_then(|t| t.variables.as_ref())
            .and_then(|v| v.get("taskRunIteration"))
            .and_then(Value::as_u64)
    };
    let first = children
        .iter()
        .find(|e| iteration(e) == Some(0))
        .ok_or("no subflow execution with taskRunIteration 0")?;
    same("first child", first.state.current, Success)?;
    same("child task runs", first.task_runs().len(), 1)?;
    let uri = first
        .inputs
        .get("items")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let prefix = format!(
        "kestra:///io/kestra/tests/for-each-item/executions/{}/tasks/each_split/",
        done.execution.id
    );
    ensure(uri.starts_with(&prefix) && uri.ends_with(".txt"), || {
        format!("items input {uri:?}")
    })?;
    let correlation = first
        .labels
        .iter()
        .find(|l| l.key == "system.correlationId")
        .map(|l| l.value.clone());
    same("correlation id", correlation, Some(done.execution.id.clone()))
}

/// `ForEachItemCaseTest.forEachItemEmptyItems`: no batch, no subflow, no outputs.
pub async fn empty_items(env: &Env) -> Check {
    env.engine.create_flow(SUBFLOW).await.map_err(|e| e.to_string())?;
    let done = env
        .run("for-each-item.yaml", &[], &[("file", "file.txt", Vec::new())])
        .await?;
    done.states(Success, &[])?;
    same("task runs", done.execution.task_runs().len(), 4)?;
    same("outputs", done.execution.task_runs()[2].outputs.clone(), None)
}

/// The subflow alone, as a batch runs it: one task run logging its `items` input.
pub async fn subflow(env: &Env) -> Check {
    let done = env
        .run(
            "for-each-item-subflow.yaml",
            &[("items", "kestra:///batch.txt")],
            &[],
        )
        .await?;
    done.states(Success, &[("per-item", Success)])?;
    same("logs", done.task_logs("per-item"), vec!["kestra:///batch.txt"])
}
