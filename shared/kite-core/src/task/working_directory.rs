//! Script children of a `flow.WorkingDirectory`: the folder they share, named by the
//! WorkingDirectory's task run, and which child ran in it last (computed from the
//! execution's task runs, so that any worker instance can tell whether the folder it
//! holds is current).

use crate::execution::{Execution, StateType, TaskRun};
use crate::flow::{Flow, TaskKind, WorkingDirectory};
use crate::plugin::scripts::{working_directory_files, SharedFolder, SNAPSHOT_FILE};
use crate::plugin::{IoKind, Render, TaskRunContext};

/// The closest WorkingDirectory ancestor of a task run, and its task run.
fn ancestor<'f, 'e>(
    flow: &'f Flow,
    execution: &'e Execution,
    task_run: &TaskRun,
) -> Option<(&'f WorkingDirectory, &'e TaskRun)> {
    let mut parent = task_run.parent_task_run_id.as_deref();
    while let Some(id) = parent {
        let run = execution.find_task_run(id)?;
        if let Some(TaskKind::WorkingDirectory(wd)) = flow.find_task(&run.task_id).map(|t| &t.kind) {
            return Some((wd, run));
        }
        parent = run.parent_task_run_id.as_deref();
    }
    None
}

fn is_script(flow: &Flow, task_run: &TaskRun) -> bool {
    matches!(
        flow.find_task(&task_run.task_id).map(|t| &t.kind),
        Some(TaskKind::Io(io)) if matches!(
            io.kind,
            IoKind::ShellCommands
                | IoKind::ShellScript
                | IoKind::PythonCommands
                | IoKind::PythonScript
                | IoKind::NodeCommands
                | IoKind::NodeScript
                | IoKind::LegacyBash
                | IoKind::LegacyPython
        )
    )
}

/// The script child of the same WorkingDirectory that ran last before `task_run`:
/// children run one after another, so it is the last one created before it that left
/// the CREATED state.
pub(crate) fn previous_child(flow: &Flow, execution: &Execution, task_run: &TaskRun) -> Option<String> {
    let (_, wd_run) = ancestor(flow, execution, task_run)?;
    let runs = execution.task_runs();
    let end = runs
        .iter()
        .position(|r| r.id == task_run.id)
        .unwrap_or(runs.len());
    runs[..end]
        .iter()
        .rev()
        .find(|r| {
            r.state.current != StateType::Created
                && is_script(flow, r)
                && ancestor(flow, execution, r).is_some_and(|(_, w)| w.id == wd_run.id)
        })
        .map(|r| r.id.clone())
}

/// The shared folder of a script task run inside a WorkingDirectory, `None` outside one.
pub(crate) fn shared_folder(
    flow: &Flow,
    execution: &Execution,
    task_run: &TaskRun,
    render: &Render,
) -> Result<Option<SharedFolder>, String> {
    let Some((wd, wd_run)) = ancestor(flow, execution, task_run) else {
        return Ok(None);
    };
    let (input_files, namespace_files) = working_directory_files(&wd.files, render)?;
    let prefix = TaskRunContext::new(execution, wd_run, None).storage_prefix();
    Ok(Some(SharedFolder {
        key: wd_run.id.clone(),
        snapshot: format!("{prefix}{SNAPSHOT_FILE}"),
        previous: previous_child(flow, execution, task_run),
        input_files,
        namespace_files,
    }))
}
