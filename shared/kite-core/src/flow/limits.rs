//! How big a flow may be. Checked where a flow is saved or validated, never where a
//! stored flow is loaded: lowering a limit must not make saved flows unreadable.

use super::error::{error, FlowError, FlowErrorKind};
use super::{Flow, Task};

/// The size bounds of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowLimits {
    /// Tasks in the whole flow (`tasks`, `errors`, `finally`, `afterExecution` and every
    /// task nested in them).
    pub max_tasks: usize,
    /// Levels of tasks nested in flowable tasks (a flat list is 1).
    pub max_depth: usize,
}

impl Default for FlowLimits {
    /// Far beyond hand-written flows, low enough that one flow cannot make each step of
    /// its executions slow.
    fn default() -> Self {
        FlowLimits {
            max_tasks: 1_000,
            max_depth: 32,
        }
    }
}

impl FlowLimits {
    /// What exceeds the limits, with the path of the list or top-level task concerned.
    pub(super) fn check(&self, flow: &Flow) -> Vec<FlowError> {
        let lists = [
            ("tasks", &flow.tasks),
            ("errors", &flow.errors),
            ("finally", &flow.finally),
            ("afterExecution", &flow.after_execution),
        ];
        let mut errors = Vec::new();
        let total: usize = lists.iter().flat_map(|(_, l)| l.iter()).map(count).sum();
        if total > self.max_tasks {
            let message = format!(
                "The flow has {total} tasks; at most {} are allowed (KITE_MAX_FLOW_TASKS)",
                self.max_tasks
            );
            errors.push(error(FlowErrorKind::InvalidProperty, "tasks", message));
        }
        for (name, list) in lists {
            for (i, task) in list.iter().enumerate() {
                let levels = depth(task);
                if levels > self.max_depth {
                    let message = format!(
                        "Task `{}` nests {levels} levels of tasks; at most {} are allowed (KITE_MAX_FLOW_DEPTH)",
                        task.id, self.max_depth
                    );
                    errors.push(error(
                        FlowErrorKind::InvalidProperty,
                        &format!("{name}[{i}]"),
                        message,
                    ));
                }
            }
        }
        errors
    }
}

fn count(task: &Task) -> usize {
    1 + task.kind.children().into_iter().map(count).sum::<usize>()
}

fn depth(task: &Task) -> usize {
    1 + task.kind.children().into_iter().map(depth).max().unwrap_or(0)
}
