//! `flow.WorkingDirectory`: script children sharing one folder, its own input files, and
//! the snapshot each child leaves in the execution's storage.

use kite_core::execution::StateType;
use kite_engine::ports::FileStorage;
use kite_worker::script::ScriptConfig;
use serde_json::json;

use crate::{flow, output, start_with, task_run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_child_reads_the_file_an_earlier_child_wrote() {
    let temp = tempfile::tempdir().unwrap();
    let local = start_with(ScriptConfig {
        temp_dir: temp.path().to_path_buf(),
        ..ScriptConfig::default()
    })
    .await;
    let source = flow(
        "workdir",
        r#"  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    inputFiles:
      seed.txt: "{{ flow.id }} seed"
    cache:
      patterns:
        - node_modules/**
    tasks:
      - id: write
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
          - printf 'written by write' > shared.txt
          - cat seed.txt > copy.txt
      - id: log
        type: io.kestra.plugin.core.log.Log
        message: between
      - id: read
        type: io.kestra.core.tasks.scripts.Bash
        commands:
          - echo "::{\"outputs\":{\"shared\":\"$(cat shared.txt)\",\"seed\":\"$(cat copy.txt)\"}}::"
"#,
    );
    let (done, logs) = local.run(&source).await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    assert_eq!(
        output(&done, "read", "vars"),
        json!({"shared": "written by write", "seed": "workdir seed"})
    );
    // The folder stays for the next child; the snapshot holds what the last child left.
    let wd = task_run(&done, "wd");
    let folder = temp.path().join("kite-working-directories").join(&wd.id);
    assert!(folder.join("shared.txt").is_file());
    let read = task_run(&done, "read");
    let last = std::fs::read_to_string(
        temp.path()
            .join("kite-working-directories")
            .join(format!("{}.last", wd.id)),
    );
    assert_eq!(last.unwrap(), read.id);
    let snapshot = format!(
        "kestra:///dev/workdir/executions/{}/tasks/wd/{}/working-directory.snapshot",
        done.id, wd.id
    );
    let content = String::from_utf8(local.files().read_blocking(&snapshot).unwrap()).unwrap();
    assert!(content.contains("written by write"), "{content}");
    local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_files_of_a_working_directory_are_refused_at_parse_time() {
    let local = start_with(ScriptConfig::default()).await;
    let source = flow(
        "workdir_out",
        r#"  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    outputFiles:
      - out.txt
    tasks:
      - id: write
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
          - printf x > out.txt
"#,
    );
    let err = local.engine.create_flow(&source).await.err();
    assert!(
        format!("{err:?}").contains("`outputFiles` of a WorkingDirectory is not supported"),
        "{err:?}"
    );
    local.stop().await;
}
