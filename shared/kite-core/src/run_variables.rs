//! The variables an expression sees while a task runs (Kestra's `RunVariables`):
//! flow, execution, task, taskrun, inputs, outputs, parent(s), trigger, labels, vars.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use crate::execution::{Execution, TaskRun};
use crate::flow::{Flow, Task};

pub(crate) fn instant(d: Option<DateTime<Utc>>) -> Value {
    d.map(|d| Value::String(d.to_rfc3339_opts(SecondsFormat::Micros, true)))
        .unwrap_or(Value::Null)
}

/// Storage prefixes `read()` may open: the execution's own, the files staged for its
/// flow's FILE inputs, and for subflow and Flow-triggered executions the upstream
/// execution's and its flow's staged files (a parent passes its inputs on).
pub(crate) fn readable_prefixes(exec: &Execution) -> Vec<String> {
    let mut out = vec![
        crate::input::execution_storage_prefix(&exec.namespace, &exec.flow_id, &exec.id),
        crate::input::flow_uploads_prefix(&exec.namespace, &exec.flow_id),
    ];
    if let Some(t) = &exec.trigger {
        if let Some(v) = &t.variables {
            if let (Some(ns), Some(flow), Some(id)) = (
                v.get("namespace").and_then(Value::as_str),
                v.get("flowId").and_then(Value::as_str),
                v.get("executionId").and_then(Value::as_str),
            ) {
                out.push(crate::input::execution_storage_prefix(ns, flow, id));
                out.push(crate::input::flow_uploads_prefix(ns, flow));
            }
        }
    }
    out
}

/// Whether an execution that may read `prefixes` may read the file `path`.
pub(crate) fn may_read(path: &str, prefixes: &[String]) -> bool {
    path.starts_with("kestra:///")
        && !path.split('/').any(|segment| segment == "..")
        && prefixes.iter().any(|p| path.starts_with(p.as_str()))
}

/// Kestra's message for a file outside the execution's reach.
pub(crate) fn unreadable_message(path: &str) -> String {
    format!("Unable to read the file '{path}' as it didn't belong to the current execution")
}

/// What configuration adds to every render.
#[derive(Clone, Copy, Default)]
pub struct Extras<'a> {
    pub secret_key: Option<&'a [u8]>,
    /// An object whose entries become top-level variables (`envs`, `globals`).
    pub globals: Option<&'a Value>,
}

impl<'a> From<&crate::env::Env<'a>> for Extras<'a> {
    fn from(env: &crate::env::Env<'a>) -> Self {
        Extras {
            secret_key: env.secret_key,
            globals: env.globals,
        }
    }
}

/// Variables shared by every task of an execution.
fn base(flow: &Flow, execution: &Execution, extras: Extras) -> Map<String, Value> {
    let mut vars = Map::new();
    if let Some(Value::Object(g)) = extras.globals {
        for (k, v) in g {
            vars.insert(k.clone(), v.clone());
        }
    }
    vars.insert(
        "flow".into(),
        json!({"id": flow.id, "namespace": flow.namespace, "revision": execution.flow_revision}),
    );
    vars.insert(
        "execution".into(),
        json!({
            "id": execution.id,
            "startDate": instant(execution.state.start_date),
            "originalId": execution.original_id.as_deref().unwrap_or(&execution.id),
            "state": execution.state.current.as_str(),
        }),
    );
    if !execution.outputs.is_empty() {
        if let Some(Value::Object(e)) = vars.get_mut("execution") {
            e.insert(
                "outputs".into(),
                Value::Object(
                    execution
                        .outputs
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                ),
            );
        }
    }
    let mut inputs: Map<String, Value> = execution
        .inputs
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // SECRET inputs are stored encrypted; expressions see them in clear.
    if let Some(key) = extras.secret_key {
        for def in flow
            .inputs
            .iter()
            .filter(|d| d.input_type == crate::input::InputType::Secret)
        {
            if let Some(Value::String(enc)) = inputs.get(&def.id) {
                if let Ok(plain) = crate::input::decrypt_secret(enc, key) {
                    inputs.insert(def.id.clone(), Value::String(plain));
                }
            }
        }
    }
    // Executions created without inputs (webhooks) still see declared defaults.
    for def in &flow.inputs {
        let top = def.id.split('.').next().unwrap_or(&def.id);
        if !inputs.contains_key(top) {
            if let Some(d) = &def.defaults {
                inputs.insert(def.id.clone(), d.clone());
            }
        }
    }
    if !inputs.is_empty() {
        vars.insert("inputs".into(), Value::Object(inputs));
    }
    if let Some(trigger) = &execution.trigger {
        if let Some(v) = &trigger.variables {
            vars.insert(
                "trigger".into(),
                Value::Object(v.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            );
        }
    }
    // Kestra's legacy `{{ schedule.* }}` of executions a Schedule trigger created.
    if let Some(v) = execution.variables.as_ref().and_then(|v| v.get(LEGACY_SCHEDULE)) {
        vars.entry(LEGACY_SCHEDULE.to_string())
            .or_insert_with(|| v.clone());
    }
    let mut labels = Map::new();
    let mut system = Map::new();
    for l in &execution.labels {
        match l.key.strip_prefix("system.") {
            Some(k) => {
                system.insert(k.to_string(), Value::String(l.value.clone()));
            }
            None => {
                labels.insert(l.key.clone(), Value::String(l.value.clone()));
            }
        }
    }
    if !system.is_empty() {
        labels.insert("system".into(), Value::Object(system));
    }
    vars.insert("labels".into(), Value::Object(labels));
    // As Kestra: the execution's variables (the flow's, copied when it was created, as
    // SetVariables/UnsetVariables left them), the flow's for executions stored without.
    vars.insert(
        "vars".into(),
        Value::Object(
            execution
                .variables
                .as_ref()
                .unwrap_or(&flow.variables)
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
    );
    vars
}

/// The execution variable a Schedule trigger sets for the legacy `{{ schedule.date }}`.
pub const LEGACY_SCHEDULE: &str = "schedule";

fn parent_of<'e>(execution: &'e Execution, tr: &TaskRun) -> Option<&'e TaskRun> {
    execution.find_task_run(tr.parent_task_run_id.as_deref()?)
}

/// Iteration values from the outermost loop down to this task run: the value of
/// each task run that is a direct child of a ForEach/EachX.
pub(crate) fn iteration_path(execution: &Execution, tr: &TaskRun) -> Vec<String> {
    let mut path = Vec::new();
    let mut node = tr;
    let mut guard = 0;
    while let Some(parent) = parent_of(execution, node) {
        if parent.iteration_values.is_some() {
            if let Some(v) = &node.value {
                path.push(v.clone());
            }
        }
        node = parent;
        guard += 1;
        if guard > 1000 {
            break;
        }
    }
    path.reverse();
    path
}

/// `outputs.{taskId}` — nested by iteration values inside loops.
pub(crate) fn outputs(execution: &Execution) -> Map<String, Value> {
    let mut out = Map::new();
    for tr in execution.task_runs() {
        let Some(o) = &tr.outputs else { continue };
        let value = Value::Object(o.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
        let path = iteration_path(execution, tr);
        let mut slot = out
            .entry(tr.task_id.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if path.is_empty() {
            *slot = value;
            continue;
        }
        for (k, key) in path.iter().enumerate() {
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            let Value::Object(map) = slot else { break };
            if k + 1 == path.len() {
                map.insert(key.clone(), value);
                break;
            }
            slot = map
                .entry(key.clone())
                .or_insert_with(|| Value::Object(Map::new()));
        }
    }
    out
}

/// Variables for the flow-level steps (flow outputs, afterExecution).
pub fn for_execution(flow: &Flow, execution: &Execution, extras: Extras) -> Value {
    let mut vars = base(flow, execution, extras);
    let outs = outputs(execution);
    if !outs.is_empty() {
        vars.insert("outputs".into(), Value::Object(outs));
    }
    Value::Object(vars)
}

/// Whether a task's templates can read `outputs` (building them costs the size
/// of the execution, so tasks that don't need them don't pay).
pub(crate) fn reads_outputs(task: &Task) -> bool {
    let text = format!("{:?}{:?}", task.kind, task.run_if);
    text.contains("outputs") || text.contains("currentEachOutput") || text.contains("printContext")
}

/// Variables for one task run.
pub fn for_task_run(flow: &Flow, execution: &Execution, tr: &TaskRun, task: &Task, extras: Extras) -> Value {
    let mut vars = base(flow, execution, extras);
    vars.insert("task".into(), json!({"id": task.id, "type": task.type_name}));
    let mut taskrun = json!({
        "id": tr.id,
        "startDate": instant(tr.state.start_date),
        "attemptsCount": tr.attempts.len(),
        "value": tr.value,
    });
    if let Value::Object(m) = &mut taskrun {
        if let Some(p) = &tr.parent_task_run_id {
            m.insert("parentId".into(), Value::String(p.clone()));
        }
        if let Some(i) = tr.iteration {
            m.insert("iteration".into(), Value::from(i));
        }
    }
    vars.insert("taskrun".into(), taskrun);
    // parents: enclosing loop iterations, closest first.
    let mut parents = Vec::new();
    let mut node = tr;
    let mut guard = 0;
    while let Some(parent) = parent_of(execution, node) {
        if parent.iteration_values.is_some() && node.iteration.is_some() && !std::ptr::eq(node, tr) {
            let mut p = json!({"taskrun": {"value": node.value}});
            if let (Value::Object(m), Some(o)) = (&mut p, &node.outputs) {
                m.insert(
                    "outputs".into(),
                    Value::Object(o.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
                );
            }
            parents.push(p);
        }
        node = parent;
        guard += 1;
        if guard > 1000 {
            break;
        }
    }
    if let Some(first) = parents.first() {
        vars.insert("parent".into(), first.clone());
    }
    if !parents.is_empty() {
        vars.insert("parents".into(), Value::Array(parents));
    }
    if reads_outputs(task) {
        let outs = outputs(execution);
        if !outs.is_empty() {
            vars.insert("outputs".into(), Value::Object(outs));
        }
    }
    Value::Object(vars)
}
