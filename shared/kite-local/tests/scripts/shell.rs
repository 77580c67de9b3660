//! Shell tasks: outputs, failures, warnings, timeouts, files, containers, the legacy Bash.

use std::path::Path;
use std::time::{Duration, Instant};

use kite_core::execution::{LogLevel, StateType};
use kite_engine::ports::FileStorage;
use kite_worker::script::{ContainerTasks, ScriptConfig};
use serde_json::json;

use crate::{flow, output, start, start_with, task_run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_task_uses_a_shell_script_s_outputs_and_files() {
    let local = start().await;
    let source = flow(
        "chain",
        r#"  - id: sh
    type: io.kestra.plugin.scripts.shell.Script
    outputFiles:
      - "*.txt"
    script: |
      echo "in {{ workingDir }}"
      printf 'hello file' > greeting.txt
      echo '::{"outputs":{"greeting":"hello","count":2}}::'
      echo "to stdout"
  - id: use
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.sh.vars.greeting }} x{{ outputs.sh.vars.count }}: {{ read(outputs.sh.outputFiles['greeting.txt']) }}"
"#,
    );
    let (done, logs) = local.run(&source).await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    assert_eq!(output(&done, "sh", "exitCode"), json!(0));
    assert_eq!(
        output(&done, "sh", "vars"),
        json!({"greeting": "hello", "count": 2})
    );
    assert_eq!(output(&done, "use", "value"), json!("hello x2: hello file"));
    let uri = output(&done, "sh", "outputFiles")["greeting.txt"].clone();
    let prefix = format!("kestra:///dev/chain/executions/{}/tasks/sh/", done.id);
    assert!(uri.as_str().is_some_and(|u| u.starts_with(&prefix)), "{uri}");
    // `{{ workingDir }}` rendered to the attempt's folder, which is gone afterwards.
    let line = logs
        .iter()
        .find(|l| l.starts_with("in /"))
        .expect("workingDir line");
    let folder = line.trim_start_matches("in ");
    assert!(!Path::new(folder).exists(), "{folder} left behind");
    let levels = local.levels(&done.id).await;
    assert!(
        levels.contains(&(LogLevel::Info, "to stdout".into())),
        "{levels:?}"
    );
    local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_zero_exit_fails_with_kestra_s_message_and_stderr_in_the_log() {
    let local = start().await;
    let source = flow(
        "fails",
        r#"  - id: sh
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - echo "something broke" >&2
      - exit 3
  - id: never
    type: io.kestra.plugin.core.log.Log
    message: never
"#,
    );
    let (done, _) = local.run(&source).await;
    assert_eq!(done.state.current, StateType::Failed);
    let levels = local.levels(&done.id).await;
    assert!(
        levels.contains(&(LogLevel::Error, "something broke".into())),
        "{levels:?}"
    );
    assert!(
        levels.contains(&(LogLevel::Error, "Command failed with code 3".into())),
        "{levels:?}"
    );
    assert!(!levels.iter().any(|(_, m)| m == "never"));
    local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_fast_stops_at_the_first_failure_unless_disabled() {
    let local = start().await;
    let source = flow(
        "fast",
        r#"  - id: fast
    type: io.kestra.plugin.scripts.shell.Commands
    allowFailure: true
    commands:
      - "false"
      - echo after-fast
  - id: slow
    type: io.kestra.plugin.scripts.shell.Commands
    failFast: false
    commands:
      - "false"
      - echo after-slow
"#,
    );
    let (done, logs) = local.run(&source).await;
    // `allowFailure` turns the FAILED task run into a WARNING one.
    assert_eq!(task_run(&done, "fast").state.current, StateType::Warning);
    let levels = local.levels(&done.id).await;
    assert!(
        levels.contains(&(LogLevel::Error, "Command failed with code 1".into())),
        "{levels:?}"
    );
    assert_eq!(task_run(&done, "slow").state.current, StateType::Success);
    assert!(!logs.iter().any(|l| l == "after-fast"), "{logs:?}");
    assert!(logs.iter().any(|l| l == "after-slow"), "{logs:?}");
    local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stderr_makes_a_warning_unless_told_otherwise_and_logs_lines_carry_levels() {
    let local = start().await;
    let source = flow(
        "warns",
        r#"  - id: warn
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - echo careful >&2
  - id: quiet
    type: io.kestra.plugin.scripts.shell.Commands
    warningOnStdErr: false
    commands:
      - echo careful-too >&2
      - echo '::{"logs":[{"level":"WARN","message":"from the protocol"},{"level":"DEBUG","message":"detail"}]}::'
"#,
    );
    let (done, _) = local.run(&source).await;
    assert_eq!(task_run(&done, "warn").state.current, StateType::Warning);
    assert_eq!(task_run(&done, "quiet").state.current, StateType::Success);
    assert_eq!(done.state.current, StateType::Warning);
    let levels = local.levels(&done.id).await;
    assert!(
        levels.contains(&(LogLevel::Error, "careful".into())),
        "{levels:?}"
    );
    assert!(
        levels.contains(&(LogLevel::Warn, "from the protocol".into())),
        "{levels:?}"
    );
    assert!(levels.contains(&(LogLevel::Debug, "detail".into())), "{levels:?}");
    local.stop().await;
}

fn alive(pid: u32) -> bool {
    // A zombie waiting for its reaper is dead already.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        })
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_kills_the_whole_process_group() {
    let local = start().await;
    let marks = tempfile::tempdir().expect("tempdir");
    let pid_file = marks.path().join("pid");
    let source = flow(
        "slow",
        &format!(
            r#"  - id: sh
    type: io.kestra.plugin.scripts.shell.Commands
    timeout: PT1S
    commands:
      - sleep 30 &
      - echo $! > {pid}
      - echo "$WORKING_DIR" > {pid}.dir
      - wait
"#,
            pid = pid_file.display()
        ),
    );
    let started = Instant::now();
    let (done, logs) = local.run(&source).await;
    assert_eq!(done.state.current, StateType::Failed, "{logs:?}");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(logs.iter().any(|l| l == "Timeout after PT1S"), "{logs:?}");
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .expect("pid written")
        .trim()
        .parse()
        .expect("a pid");
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!alive(pid), "the backgrounded sleep {pid} survived the timeout");
    let work = std::fs::read_to_string(format!("{}.dir", pid_file.display())).expect("dir written");
    assert!(!Path::new(work.trim()).exists(), "working directory left behind");
    local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_process_does_not_outlive_a_finished_task() {
    let local = start().await;
    let marks = tempfile::tempdir().expect("tempdir");
    let pid_file = marks.path().join("pid");
    let source = flow(
        "orphan",
        &format!(
            "  - id: sh\n    type: io.kestra.plugin.scripts.shell.Commands\n    commands:\n      - sleep 30 &\n      - echo $! > {}\n",
            pid_file.display()
        ),
    );
    let started = Instant::now();
    let (done, logs) = local.run(&source).await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "waited for the background sleep"
    );
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .expect("pid")
        .trim()
        .parse()
        .expect("pid");
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!alive(pid), "the backgrounded sleep {pid} survived the task");
    local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_files_from_text_and_from_storage() {
    let local = start().await;
    let source = flow(
        "inputs",
        r#"  - id: make
    type: io.kestra.plugin.scripts.shell.Commands
    outputFiles:
      - data/*.csv
    commands:
      - mkdir -p data && printf 'a,b\n1,2\n' > data/rows.csv
  - id: use
    type: io.kestra.plugin.scripts.shell.Commands
    inputFiles:
      copied.csv: "{{ outputs.make.outputFiles['data/rows.csv'] }}"
      notes/hello.txt: "written in {{ workingDir }}"
    commands:
      - wc -l < copied.csv | tr -d ' '
      - cat notes/hello.txt | grep -c "written in $WORKING_DIR"
"#,
    );
    let (done, logs) = local.run(&source).await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    let files = output(&done, "make", "outputFiles");
    assert_eq!(files.as_object().map(|m| m.len()), Some(1), "{files}");
    let uri = files["data/rows.csv"].as_str().expect("uri");
    let bytes = local.files().read_blocking(uri).expect("stored");
    assert_eq!(bytes, b"a,b\n1,2\n");
    // Two lines copied, and the rendered `{{ workingDir }}` is the process's WORKING_DIR.
    assert_eq!(logs.iter().filter(|l| *l == "2").count(), 1, "{logs:?}");
    assert_eq!(logs.iter().filter(|l| *l == "1").count(), 1, "{logs:?}");
    local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_file_of_another_execution_is_refused() {
    let local = start().await;
    let other = "kestra:///dev/other/executions/someone-else/secret.txt";
    local
        .files()
        .put(other, Box::pin(&b"private"[..]), u64::MAX)
        .await
        .expect("put");
    let source = flow(
        "sneaky",
        &format!(
            "  - id: sh\n    type: io.kestra.plugin.scripts.shell.Commands\n    inputFiles:\n      x.txt: \"{other}\"\n    commands:\n      - cat x.txt\n"
        ),
    );
    let (done, logs) = local.run(&source).await;
    assert_eq!(done.state.current, StateType::Failed);
    assert!(
        logs.iter()
            .any(|l| l.contains("Unable to read") && l.contains(other)),
        "{logs:?}"
    );
    assert!(!logs.iter().any(|l| l == "private"));
    local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_files_are_copied_in_as_filtered() {
    let local = start().await;
    let files = local.files();
    for (path, content) in [("/scripts/hello.sh", "echo hello from ns"), ("/skip.txt", "no")] {
        let uri = kite_core::namespace_files::file_uri("dev", path).expect("uri");
        files
            .put(&uri, Box::pin(content.as_bytes()), u64::MAX)
            .await
            .expect("put");
    }
    let source = flow(
        "ns",
        r#"  - id: sh
    type: io.kestra.plugin.scripts.shell.Commands
    namespaceFiles:
      enabled: true
      exclude:
        - skip.txt
    commands:
      - sh scripts/hello.sh
      - test ! -e skip.txt && echo excluded
"#,
    );
    let (done, logs) = local.run(&source).await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    assert!(logs.iter().any(|l| l == "hello from ns"), "{logs:?}");
    assert!(logs.iter().any(|l| l == "excluded"), "{logs:?}");
    local.stop().await;
}

const CONTAINER_FLOW: &str = r#"id: docker
namespace: dev
tasks:
  - id: sh
    type: io.kestra.plugin.scripts.shell.Commands
    taskRunner:
      type: io.kestra.plugin.scripts.runner.docker.Docker
    containerImage: alpine:3.20
    commands:
      - echo ran
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_task_runs_as_a_process_with_a_warning() {
    let local = start().await;
    let (done, logs) = local.run(CONTAINER_FLOW).await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    let levels = local.levels(&done.id).await;
    assert!(
        levels
            .iter()
            .any(|(level, m)| *level == LogLevel::Warn && m.contains("'alpine:3.20'")),
        "{levels:?}"
    );
    assert!(logs.iter().any(|l| l == "ran"));
    local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_task_fails_when_containers_are_refused() {
    let local = start_with(ScriptConfig {
        container_tasks: ContainerTasks::Refuse,
        ..ScriptConfig::default()
    })
    .await;
    let (done, logs) = local.run(CONTAINER_FLOW).await;
    assert_eq!(done.state.current, StateType::Failed);
    assert!(
        logs.iter()
            .any(|l| l.contains("'alpine:3.20'") && l.contains("KITE_CONTAINER_TASKS=refuse")),
        "{logs:?}"
    );
    assert!(!logs.iter().any(|l| l == "ran"));
    local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_interpreter_is_named() {
    let local = start().await;
    let source = flow(
        "nosh",
        "  - id: sh\n    type: io.kestra.plugin.scripts.shell.Commands\n    interpreter: [\"/nonexistent/zsh\", \"-c\"]\n    commands:\n      - echo hi\n",
    );
    let (done, logs) = local.run(&source).await;
    assert_eq!(done.state.current, StateType::Failed);
    assert!(
        logs.iter()
            .any(|l| l.contains("`/nonexistent/zsh` is not installed")),
        "{logs:?}"
    );
    local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_bash_output_files_and_outputs() {
    let local = start().await;
    let source = flow(
        "legacy",
        r#"  - id: bash
    type: io.kestra.core.tasks.scripts.Bash
    outputFiles:
      - first
    commands:
      - echo 1 >> {{ outputFiles.first }}
      - echo '::{"outputs":{"n":1}}::'
"#,
    );
    let (done, logs) = local.run(&source).await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    assert_eq!(output(&done, "bash", "vars"), json!({"n": 1}));
    assert_eq!(output(&done, "bash", "stdOutLineCount"), json!(1));
    let uri = output(&done, "bash", "outputFiles")["first"].clone();
    assert_eq!(output(&done, "bash", "files")["first"], uri);
    let bytes = local
        .files()
        .read_blocking(uri.as_str().expect("uri"))
        .expect("stored");
    assert_eq!(bytes, b"1\n");
    local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_flows_run() {
    let local = start().await;
    let (done, logs) = local
        .run(include_str!("../../../../flows/dev/shell-script.yaml"))
        .await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    assert!(logs.iter().any(|l| l == "12 bytes: HELLO, KITE!"), "{logs:?}");
    let (done, logs) = local
        .run(include_str!("../../../../flows/dev/python-outputs.yaml"))
        .await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    assert!(logs.iter().any(|l| l == "wrote 5 rows"), "{logs:?}");
    assert!(
        logs.iter()
            .any(|l| l.starts_with("5 rows, total 55; file kestra:///dev/python-outputs/")),
        "{logs:?}"
    );
    local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_uris_in_commands_become_local_copies() {
    let local = start().await;
    let source = flow(
        "uris",
        r#"  - id: make
    type: io.kestra.plugin.scripts.shell.Commands
    outputFiles:
      - rows.csv
    commands:
      - printf 'x\ny\n' > rows.csv
  - id: use
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - cat {{ outputs.make.outputFiles['rows.csv'] }}
      - test -f {{ outputs.make.outputFiles['rows.csv'] }} && echo local
"#,
    );
    let (done, logs) = local.run(&source).await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    let lines: Vec<&str> = logs.iter().map(String::as_str).collect();
    assert!(lines.windows(3).any(|w| w == ["x", "y", "local"]), "{logs:?}");
    local.stop().await;
}
