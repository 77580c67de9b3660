//! `{id}_items` of a ForEachItem: one subflow execution per batch file the `{id}_split`
//! step wrote, each given `taskrun.items` (its batch's URI) and `taskrun.iteration`.
//! Its outputs count the subflow executions by state as they end (`iterations`), as
//! Kestra's do; each batch's end is kept in the task run's `iteration_values` (its state
//! and the subflow's outputs), so that a subflow end delivered twice counts once and the
//! `{id}_merge` step can write the outputs.

use super::*;
use crate::plugin::foreach_item::ITEMS_TYPE;

/// What `iteration_values` holds for a batch whose subflow has not ended.
const PENDING: &str = "";

impl<'a> Machine<'a> {
    pub(super) fn start_batches(
        &mut self,
        exec: &mut Execution,
        i: usize,
        task: &'a Task,
        sub: &'a crate::flow::SubflowTask,
    ) -> Status {
        let splits = match self.splits(exec, i, task) {
            Ok(splits) => splits,
            Err(message) => return Status::Done(self.fail(exec, i, task, message)),
        };
        let mut requests = Vec::with_capacity(splits.len());
        for (n, uri) in splits.iter().enumerate() {
            self.batch = Some((uri.clone(), n as u32));
            let request = self.subflow_request(exec, i, task, sub);
            self.batch = None;
            match request {
                Ok(mut request) => {
                    request.trigger.type_name = ITEMS_TYPE.into();
                    if let Some(v) = request.trigger.variables.as_mut() {
                        v.insert("taskRunIteration".into(), Value::from(n));
                    }
                    requests.push(request);
                }
                Err(e) => return Status::Done(self.fail(exec, i, task, e)),
            }
        }
        let count = requests.len();
        self.commands
            .extend(requests.into_iter().map(Command::CreateSubflowExecution));
        if count == 0 {
            // Kestra's task run has no outputs when there are no items.
            self.finish_leaf(exec, i, StateType::Success, IndexMap::new());
            runs_mut(exec)[i].outputs = None;
        } else if sub.wait {
            let pending = vec![PENDING.to_string(); count];
            let tr = &mut runs_mut(exec)[i];
            tr.outputs = Some(batch_outputs(count, &pending));
            tr.iteration_values = Some(pending);
            return Status::Running;
        } else {
            // Without waiting, every subflow execution created counts as a success.
            let mut outputs = IndexMap::new();
            outputs.insert("numberOfBatches".to_string(), Value::from(count));
            outputs.insert("iterations".to_string(), json!({"RUNNING": 0, "SUCCESS": count}));
            self.finish_leaf(exec, i, StateType::Success, outputs);
        }
        Status::Done(runs(exec)[i].state.current)
    }

    /// The batch files of the `{id}_split` step beside this task run.
    fn splits(&self, exec: &Execution, i: usize, task: &Task) -> Result<Vec<String>, String> {
        let tr = &runs(exec)[i];
        let base = task.id.strip_suffix("_items").unwrap_or(&task.id);
        let split_id = format!("{base}_split");
        let split = exec
            .find_child(tr.parent_task_run_id.as_deref(), &split_id, tr.value.as_deref())
            .map(|k| &runs(exec)[k]);
        let splits = split
            .and_then(|s| s.outputs.as_ref())
            .and_then(|o| o.get("splits"))
            .and_then(Value::as_array)
            .ok_or_else(|| format!("No batches: `{split_id}` has no `splits` output"))?;
        Ok(splits
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect())
    }

    /// A batch's subflow execution ended: counted once; the task run ends with the last.
    pub(super) fn batch_ended(
        &mut self,
        exec: &mut Execution,
        i: usize,
        sub: &crate::flow::SubflowTask,
        child: &Execution,
    ) {
        let iteration = child
            .trigger
            .as_ref()
            .and_then(|t| t.variables.as_ref())
            .and_then(|v| v.get("taskRunIteration"))
            .and_then(Value::as_u64)
            .map(|n| n as usize);
        let tr = &mut runs_mut(exec)[i];
        let Some(values) = tr.iteration_values.as_mut() else {
            return;
        };
        let Some(entry) = iteration.and_then(|n| values.get_mut(n)) else {
            return;
        };
        if entry != PENDING {
            return;
        }
        *entry = json!({"state": child.state.current.as_str(), "outputs": child.outputs}).to_string();
        let values = values.clone();
        let outputs = batch_outputs(values.len(), &values);
        if values.iter().any(|v| v == PENDING) {
            tr.outputs = Some(outputs);
            return;
        }
        let mut state = StateType::Success;
        for s in ended_states(&values) {
            state = worse(
                state,
                match s {
                    StateType::Failed | StateType::Killed if sub.transmit_failed => StateType::Failed,
                    StateType::Warning => StateType::Warning,
                    _ => StateType::Success,
                },
            );
        }
        self.finish_leaf(exec, i, state, outputs);
        self.reconcile(exec);
    }
}

fn ended_states(values: &[String]) -> impl Iterator<Item = StateType> + '_ {
    values
        .iter()
        .filter(|v| v.as_str() != PENDING)
        .filter_map(|v| serde_json::from_str::<Value>(v).ok())
        .filter_map(|v| v.get("state").and_then(Value::as_str).and_then(StateType::parse))
}

/// `numberOfBatches` and `iterations`: the subflow executions by state, those not ended
/// counted as CREATED.
fn batch_outputs(count: usize, values: &[String]) -> IndexMap<String, Value> {
    let mut iterations = serde_json::Map::new();
    let pending = values.iter().filter(|v| v.as_str() == PENDING).count();
    iterations.insert("CREATED".into(), Value::from(pending));
    // Kite learns of a subflow execution when it ends: none is counted RUNNING.
    iterations.insert("RUNNING".into(), Value::from(0));
    for state in ended_states(values) {
        let n = iterations
            .get(state.as_str())
            .and_then(Value::as_u64)
            .unwrap_or(0);
        iterations.insert(state.as_str().into(), Value::from(n + 1));
    }
    let mut outputs = IndexMap::new();
    outputs.insert("numberOfBatches".to_string(), Value::from(count));
    outputs.insert("iterations".to_string(), Value::Object(iterations));
    outputs
}
