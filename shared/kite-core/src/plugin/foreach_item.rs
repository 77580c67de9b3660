//! The two I/O steps of `io.kestra.plugin.core.flow.ForEachItem`, as the task runs Kestra
//! shows for it: `{id}_split` cuts `items` into batch files (the storage `Split`'s worker
//! call) and `{id}_merge` writes the subflow outputs of every batch into one file (the
//! storage `Write`'s). `{id}_items`, between them, is decided by the executor: one subflow
//! execution per batch.

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::storage::{prepare_split, StorageAnswer, StorageCall};
use super::{Check, IoAnswer, IoCall, IoKind, IoTaskSpec, Property, Render, TaskRunContext};
use crate::execution::{StateType, TaskResult};

/// Kestra's type names of the step task runs.
pub const SPLIT_TYPE: &str = "io.kestra.plugin.core.flow.ForEachItem$ForEachItemSplit";
pub const ITEMS_TYPE: &str = "io.kestra.plugin.core.flow.ForEachItem$ForEachItemExecutable";
pub const MERGE_TYPE: &str = "io.kestra.plugin.core.flow.ForEachItem$ForEachItemMergeOutputs";

/// The property of the merge step that the executor fills with each batch's subflow
/// outputs (in batch order), when the step is prepared.
pub const BATCH_OUTPUTS: &str = "batchOutputs";

const SPLIT: &[Property] = &[
    Property::new("items", Check::Required),
    Property::new("rows", Check::Any),
    Property::new("bytes", Check::Any),
    Property::new("partitions", Check::Any),
    Property::new("separator", Check::Any),
    Property::new("regexPattern", Check::Any),
];

const MERGE: &[Property] = &[Property::new(BATCH_OUTPUTS, Check::Any)];

pub const TASKS: &[IoTaskSpec] = &[
    IoTaskSpec {
        kind: IoKind::ForEachItemSplit,
        name: SPLIT_TYPE,
        aliases: &[],
        properties: SPLIT,
        prepare: prepare_items_split,
        finish,
    },
    IoTaskSpec {
        kind: IoKind::ForEachItemMerge,
        name: MERGE_TYPE,
        aliases: &[],
        properties: MERGE,
        prepare: prepare_merge,
        finish,
    },
];

/// The merge step's properties, given the `iteration_values` of its `{id}_items` task
/// run (one `{"state", "outputs"}` JSON text per batch, empty for a batch not ended).
pub fn merge_properties(values: &[String]) -> Map<String, Value> {
    let outputs: Vec<Value> = values
        .iter()
        .map(|v| {
            serde_json::from_str::<Value>(v)
                .ok()
                .and_then(|v| v.get("outputs").cloned())
                .unwrap_or(Value::Null)
        })
        .collect();
    let mut properties = Map::new();
    properties.insert(BATCH_OUTPUTS.into(), Value::Array(outputs));
    properties
}

fn prepare_items_split(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let mut split = properties.clone();
    let items = split.remove("items").unwrap_or_default();
    split.insert("from".into(), items);
    // `batch.rows` is 1 when no other way to cut is given.
    let cut = ["rows", "bytes", "partitions", "regexPattern"]
        .iter()
        .any(|k| split.get(*k).is_some_and(|v| !v.is_null()));
    if !cut {
        split.insert("rows".into(), Value::from(1));
    }
    let call = prepare_split(&split, render)?;
    if let IoCall::Storage(StorageCall::Split { from, .. }) = &call {
        if !from.starts_with("kestra://") {
            return Err(format!(
                "Unable to split the items from {from}, this is not an internal storage URI!"
            ));
        }
    }
    Ok(call)
}

fn prepare_merge(properties: &Map<String, Value>, _render: &Render) -> Result<IoCall, String> {
    let mut content = String::new();
    if let Some(Value::Array(batches)) = properties.get(BATCH_OUTPUTS) {
        for outputs in batches
            .iter()
            .filter(|o| o.as_object().is_some_and(|m| !m.is_empty()))
        {
            content.push_str(&outputs.to_string());
            content.push('\n');
        }
    }
    Ok(IoCall::Storage(StorageCall::Write {
        content,
        extension: ".ion".into(),
    }))
}

fn finish(call: &IoCall, answer: IoAnswer, task_run: &TaskRunContext, now: DateTime<Utc>) -> TaskResult {
    let (IoCall::Storage(call), IoAnswer::Storage(answer)) = (call, answer) else {
        return task_run.failed("The worker answered another kind of call", now);
    };
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => return task_run.failed(e.to_string(), now),
    };
    let mut outputs = IndexMap::new();
    match (call, answer) {
        (StorageCall::Split { .. }, StorageAnswer::Split { uris }) => {
            outputs.insert("splits".to_string(), Value::from(uris));
        }
        (StorageCall::Write { content, .. }, StorageAnswer::Stored { uri }) => {
            // Kestra's merge has no output when no subflow gave outputs.
            if !content.is_empty() {
                outputs.insert("subflowOutputs".to_string(), Value::String(uri));
            }
        }
        _ => return task_run.failed("The worker answered another kind of storage call", now),
    }
    task_run.result(StateType::Success, outputs)
}
