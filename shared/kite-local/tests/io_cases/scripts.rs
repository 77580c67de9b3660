//! The script tasks after Kestra's plugin-scripts sanity-check flows (shell and legacy
//! Bash), run with the Process task runner: states, output files and log lines.

use kite_core::execution::StateType::Success;

use super::{ensure, same, Check, Env};

/// `sanity-checks/shell.yaml`: Script and Commands, with the Process runner named or not,
/// each keeping a `hello.txt` that the last task reads.
pub async fn shell(env: &Env) -> Check {
    let done = env.run("scripts-shell.yaml", &[], &[]).await?;
    let tasks = [
        "shell_script",
        "shell_script_process_runner",
        "shell_command",
        "shell_command_process_runner",
    ];
    let mut states: Vec<(&str, _)> = tasks.iter().map(|t| (*t, Success)).collect();
    states.push(("log_files", Success));
    done.states(Success, &states)?;
    for task in tasks {
        let file = &done.output(task, "outputFiles")["hello.txt"];
        same(
            &format!("{task}'s hello.txt"),
            env.text(file).await?,
            "Hello Kestra!\n".to_string(),
        )?;
        let id = &done.execution.id;
        ensure(
            done.task_logs(task)
                .iter()
                .any(|l| l.starts_with(&format!("{id} - Test with"))),
            || format!("{task}: no line with the execution id: {}", done.summary()),
        )?;
    }
    ensure(
        done.task_logs("log_files")
            .iter()
            .filter(|l| l.trim() == "Hello Kestra!")
            .count()
            == 4,
        || format!("log_files: {}", done.summary()),
    )
}

/// `sanity-checks/bash.yaml`: the legacy Bash task's command, `outputFiles` key and input file.
pub async fn bash(env: &Env) -> Check {
    let done = env.run("scripts-bash.yaml", &[], &[]).await?;
    done.states(
        Success,
        &[
            ("bash_simple_command", Success),
            ("bash_with_outputs", Success),
            ("bash_with_input", Success),
        ],
    )?;
    let id = &done.execution.id;
    done.logged(
        "bash_simple_command",
        &format!("Hello Kestra - execution id: {id}"),
    )?;
    let file = &done.output("bash_with_outputs", "outputFiles")["hello"];
    same("hello", env.text(file).await?, "Hello Kestra\n".to_string())?;
    done.logged("bash_with_input", "Hello Kestra! from script.sh")
}
