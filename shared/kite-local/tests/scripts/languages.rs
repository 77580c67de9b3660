//! Python and Node tasks: outputs, files, the `kestra` module, cached `dependencies`.

use std::path::Path;

use kite_core::execution::{LogLevel, StateType};
use kite_engine::ports::FileStorage;
use kite_worker::script::ScriptConfig;
use serde_json::{json, Value};

use crate::{flow, has_node, output, start, start_with};

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
async fn legacy_python_runs_main_py_in_its_virtual_environment() {
    let local = start().await;
    let source = flow(
        "legacy-py",
        r#"  - id: py
    type: io.kestra.core.tasks.scripts.Python
    args:
      - data.json
    inputFiles:
      data.json: '{"status": "OK"}'
      main.py: |
        import json, sys
        from kestra import Kestra
        status = json.loads(open(sys.argv[1]).read())["status"]
        print(f"python script {status}")
        print("in venv", sys.prefix != sys.base_prefix)
        Kestra.outputs({"status": status})
"#,
    );
    let (done, logs) = local.run(&source).await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    assert!(logs.iter().any(|l| l == "python script OK"), "{logs:?}");
    assert!(logs.iter().any(|l| l == "in venv True"), "{logs:?}");
    assert_eq!(output(&done, "py", "vars"), json!({"status": "OK"}));
    local.stop().await;
}
