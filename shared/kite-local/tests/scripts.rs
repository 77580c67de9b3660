//! Script tasks on the local engine with real processes: `sh`, `python3` and `node` (the
//! node tests say why they skip when it is missing). Outputs from `::{…}::` lines, output
//! and input files, failures with Kestra's message, WARNING on stderr, a timeout that
//! kills the whole process group, container settings, namespace files and the legacy
//! `Bash` task; and a flow whose later task uses a script's outputs.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kite_core::execution::{Execution, LogLevel, StateType};
use kite_engine::ports::{FileStorage, LogQuery};
use kite_engine::{Engine, EngineConfig};
use kite_local::{local_ports, LocalFileStorage, Runtime};
use kite_worker::script::{ContainerTasks, ScriptConfig};
use kite_worker::InProcessWorker;
use serde_json::{json, Value};

mod common;
use common::run_flow;

struct Local {
    dir: tempfile::TempDir,
    engine: Engine,
    runtime: Runtime,
}

async fn start_with(config: ScriptConfig) -> Local {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ports = local_ports(dir.path()).expect("ports");
    ports.worker = Arc::new(InProcessWorker::new().with_scripts(config));
    let engine = Engine::new(ports, EngineConfig::default());
    let runtime = Runtime::start(engine.clone(), 2).await.expect("runtime");
    Local { dir, engine, runtime }
}

async fn start() -> Local {
    start_with(ScriptConfig::default()).await
}

impl Local {
    async fn run(&self, source: &str) -> (Execution, Vec<String>) {
        run_flow(&self.engine, source).await
    }

    async fn levels(&self, id: &str) -> Vec<(LogLevel, String)> {
        let query = LogQuery {
            execution_id: id.into(),
            ..Default::default()
        };
        let logs = self.engine.logs(&query).await.expect("logs");
        logs.into_iter().map(|l| (l.level, l.message)).collect()
    }

    fn files(&self) -> LocalFileStorage {
        LocalFileStorage::new(self.dir.path().join("storage")).expect("files")
    }

    async fn stop(self) {
        self.runtime.shutdown().await;
    }
}

fn task_run<'a>(execution: &'a Execution, task: &str) -> &'a kite_core::execution::TaskRun {
    execution
        .task_runs()
        .iter()
        .find(|tr| tr.task_id == task)
        .unwrap_or_else(|| panic!("no task run of {task}"))
}

fn output(execution: &Execution, task: &str, name: &str) -> Value {
    task_run(execution, task)
        .outputs
        .as_ref()
        .and_then(|o| o.get(name))
        .cloned()
        .unwrap_or(Value::Null)
}

fn flow(id: &str, tasks: &str) -> String {
    format!("id: {id}\nnamespace: dev\ntasks:\n{tasks}")
}

fn has_node() -> bool {
    let found = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok();
    if !found {
        println!("skipped: `node` is not installed here (CI installs nodejs)");
    }
    found
}

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
async fn python_script_outputs_and_files() {
    let local = start().await;
    let source = flow(
        "py",
        r#"  - id: py
    type: io.kestra.plugin.scripts.python.Script
    outputFiles:
      - result.json
    script: |
      import json, os
      print("::" + json.dumps({"outputs": {"total": 3.5, "ok": True, "items": [1, 2]}}) + "::")
      with open("result.json", "w") as f:
          json.dump({"cwd": os.getcwd() == os.environ["WORKING_DIR"]}, f)
      print("done")
"#,
    );
    let (done, logs) = local.run(&source).await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    assert_eq!(
        output(&done, "py", "vars"),
        json!({"total": 3.5, "ok": true, "items": [1, 2]})
    );
    let uri = output(&done, "py", "outputFiles")["result.json"].clone();
    let bytes = local
        .files()
        .read_blocking(uri.as_str().expect("uri"))
        .expect("stored");
    assert_eq!(
        serde_json::from_slice::<Value>(&bytes).expect("json"),
        json!({"cwd": true})
    );
    assert!(logs.iter().any(|l| l == "done"), "{logs:?}");
    local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_commands_may_say_python() {
    let local = start().await;
    let source = flow(
        "pycmd",
        r#"  - id: py
    type: io.kestra.plugin.scripts.python.Commands
    inputFiles:
      main.py: |
        import sys
        print("args", sys.argv[1])
    commands:
      - python main.py first
"#,
    );
    let (done, logs) = local.run(&source).await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    assert!(logs.iter().any(|l| l == "args first"), "{logs:?}");
    local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_script_outputs() {
    if !has_node() {
        return;
    }
    let local = start().await;
    let source = flow(
        "js",
        r#"  - id: js
    type: io.kestra.plugin.scripts.node.Script
    script: |
      console.log("::" + JSON.stringify({outputs: {sum: 1 + 2}}) + "::");
      console.error("a warning");
"#,
    );
    let (done, logs) = local.run(&source).await;
    assert_eq!(done.state.current, StateType::Warning, "{logs:?}");
    assert_eq!(output(&done, "js", "vars"), json!({"sum": 3}));
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
async fn the_kestra_module_sends_outputs_and_logs() {
    let local = start().await;
    let source = flow(
        "kestra-py",
        r#"  - id: py
    type: io.kestra.plugin.scripts.python.Script
    script: |
      from kestra import Kestra
      Kestra.outputs({"status": 200, "name": "kite"})
      Kestra.logger().warning("from the logger")
"#,
    );
    let (done, logs) = local.run(&source).await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    assert_eq!(
        output(&done, "py", "vars"),
        json!({"status": 200, "name": "kite"})
    );
    let levels = local.levels(&done.id).await;
    assert!(
        levels.contains(&(LogLevel::Warn, "from the logger".into())),
        "{levels:?}"
    );
    local.stop().await;
}

/// A wheel of one module, `kitedemo` (`VALUE = 42`), that pip installs offline.
fn demo_wheel(dir: &Path) -> std::path::PathBuf {
    let wheel = dir.join("kitedemo-0.1-py3-none-any.whl");
    let script = r#"
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("kitedemo.py", "VALUE = 42\n")
    z.writestr("kitedemo-0.1.dist-info/METADATA", "Metadata-Version: 2.1\nName: kitedemo\nVersion: 0.1\n")
    z.writestr("kitedemo-0.1.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    z.writestr("kitedemo-0.1.dist-info/RECORD", "kitedemo.py,,\nkitedemo-0.1.dist-info/METADATA,,\nkitedemo-0.1.dist-info/WHEEL,,\nkitedemo-0.1.dist-info/RECORD,,\n")
"#;
    let status = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&wheel)
        .status()
        .expect("python3");
    assert!(status.success());
    wheel
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_dependencies_go_into_a_cached_virtual_environment() {
    let cache = tempfile::tempdir().expect("tempdir");
    let local = start_with(ScriptConfig {
        python_venv_cache: cache.path().join("venvs"),
        ..ScriptConfig::default()
    })
    .await;
    let wheel = demo_wheel(cache.path());
    let source = |id: &str| {
        flow(
            id,
            &format!(
                r#"  - id: py
    type: io.kestra.plugin.scripts.python.Script
    dependencies:
      - {}
    script: |
      import kitedemo, sys
      print("::{{\"outputs\":{{\"value\":%d}}}}::" % kitedemo.VALUE)
      print(sys.prefix)
"#,
                wheel.display()
            ),
        )
    };
    let (first, logs) = local.run(&source("deps-1")).await;
    assert_eq!(first.state.current, StateType::Success, "{logs:?}");
    assert_eq!(output(&first, "py", "vars"), json!({"value": 42}));
    let envs: Vec<_> = std::fs::read_dir(cache.path().join("venvs"))
        .expect("cache")
        .collect();
    assert_eq!(envs.len(), 1);
    let env_dir = envs[0].as_ref().expect("entry").path();
    assert!(
        logs.iter().any(|l| Path::new(l) == env_dir),
        "{logs:?} {env_dir:?}"
    );
    // Same requirements: the environment is reused, not made again.
    let made = std::fs::metadata(env_dir.join(".kite-ready"))
        .expect("ready")
        .modified()
        .expect("time");
    let (second, logs) = local.run(&source("deps-2")).await;
    assert_eq!(second.state.current, StateType::Success, "{logs:?}");
    let again = std::fs::metadata(env_dir.join(".kite-ready"))
        .expect("ready")
        .modified()
        .expect("time");
    assert_eq!(made, again);
    assert_eq!(
        std::fs::read_dir(cache.path().join("venvs"))
            .expect("cache")
            .count(),
        1
    );
    local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_flows_run() {
    let local = start().await;
    let (done, logs) = local
        .run(include_str!("../../../flows/dev/shell-script.yaml"))
        .await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    assert!(logs.iter().any(|l| l == "12 bytes: HELLO, KITE!"), "{logs:?}");
    let (done, logs) = local
        .run(include_str!("../../../flows/dev/python-outputs.yaml"))
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
