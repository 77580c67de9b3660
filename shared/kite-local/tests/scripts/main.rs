//! Script tasks on the local engine with real processes: `sh`, `python3` and `node` (the
//! node tests say why they skip when it is missing). Outputs from `::{…}::` lines, output
//! and input files, failures with Kestra's message, WARNING on stderr, a timeout that
//! kills the whole process group, container settings, namespace files and the legacy
//! `Bash` task; and a flow whose later task uses a script's outputs.

use std::sync::Arc;

use kite_core::execution::{Execution, LogLevel};
use kite_engine::ports::LogQuery;
use kite_engine::{Engine, EngineConfig};
use kite_local::{local_ports, LocalFileStorage, Runtime};
use kite_worker::script::ScriptConfig;
use kite_worker::InProcessWorker;
use serde_json::Value;

#[path = "../common/mod.rs"]
mod common;
mod languages;
mod shell;
mod working_directory;

use common::run_flow;

pub(crate) struct Local {
    dir: tempfile::TempDir,
    engine: Engine,
    runtime: Runtime,
}

pub(crate) async fn start_with(config: ScriptConfig) -> Local {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ports = local_ports(dir.path()).expect("ports");
    ports.worker = Arc::new(InProcessWorker::new().with_scripts(config));
    let engine = Engine::new(ports, EngineConfig::default());
    let runtime = Runtime::start(engine.clone(), 2).await.expect("runtime");
    Local { dir, engine, runtime }
}

pub(crate) async fn start() -> Local {
    start_with(ScriptConfig::default()).await
}

impl Local {
    pub(crate) async fn run(&self, source: &str) -> (Execution, Vec<String>) {
        run_flow(&self.engine, source).await
    }

    pub(crate) async fn levels(&self, id: &str) -> Vec<(LogLevel, String)> {
        let query = LogQuery {
            execution_id: id.into(),
            ..Default::default()
        };
        let logs = self.engine.logs(&query).await.expect("logs");
        logs.into_iter().map(|l| (l.level, l.message)).collect()
    }

    pub(crate) fn files(&self) -> LocalFileStorage {
        LocalFileStorage::new(self.dir.path().join("storage")).expect("files")
    }

    pub(crate) async fn stop(self) {
        self.runtime.shutdown().await;
    }
}

pub(crate) fn task_run<'a>(execution: &'a Execution, task: &str) -> &'a kite_core::execution::TaskRun {
    execution
        .task_runs()
        .iter()
        .find(|tr| tr.task_id == task)
        .unwrap_or_else(|| panic!("no task run of {task}"))
}

pub(crate) fn output(execution: &Execution, task: &str, name: &str) -> Value {
    task_run(execution, task)
        .outputs
        .as_ref()
        .and_then(|o| o.get(name))
        .cloned()
        .unwrap_or(Value::Null)
}

pub(crate) fn flow(id: &str, tasks: &str) -> String {
    format!("id: {id}\nnamespace: dev\ntasks:\n{tasks}")
}

pub(crate) fn has_node() -> bool {
    let found = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok();
    if !found {
        println!("skipped: `node` is not installed here (CI installs nodejs)");
    }
    found
}
