//! What the I/O corpus cases share: an engine on a fresh local store with its workers,
//! running a flow of `tests/kestra-flows/io/` with inputs and FILE inputs, and reading
//! back task runs, outputs, logs and stored files.

pub mod foreach_item;
pub mod http;
pub mod kv;
pub mod logs;
pub mod namespace;
pub mod scripts;
pub mod server;
pub mod sql;
pub mod storage;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use kite_core::execution::{Execution, LogEntry, StateType};
use kite_core::input::{file_input_uri, InputValue};
use kite_engine::ports::{ByteStream, EnvironmentSecrets, InMemorySecrets, LogQuery};
use kite_engine::{CreateExecution, Engine, EngineConfig};
use kite_local::{local_ports, Runtime};
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::AsyncReadExt;

const FLOWS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/kestra-flows/io");

/// A case's check: `Err` says what differs from Kestra's expectation.
pub type Check = Result<(), String>;
pub type CaseFn = for<'a> fn(&'a Env) -> Pin<Box<dyn Future<Output = Check> + 'a>>;

/// One case: a flow of the corpus run as one of Kestra's tests runs it.
pub struct Case {
    pub name: &'static str,
    pub file: &'static str,
    /// `SECRET_<NAME>` variables (base64 values) the engine reads secrets from.
    pub secrets: &'static [(&'static str, &'static str)],
    /// Where Kite is known to differ from Kestra here (listed in docs/compatibility.md):
    /// the case is then expected to fail its check, and counted apart.
    pub known: Option<&'static str>,
    pub run: CaseFn,
}

/// An engine on a fresh local store, with two workers.
pub struct Env {
    pub engine: Engine,
    runtime: Runtime,
    _dir: TempDir,
}

impl Env {
    pub async fn start(secrets: &[(&str, &str)]) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ports = local_ports(dir.path()).expect("ports");
        ports.secrets = Arc::new(InMemorySecrets(Arc::new(EnvironmentSecrets::from_vars(
            secrets.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        ))));
        let engine = Engine::new(ports, EngineConfig::default());
        let runtime = Runtime::start(engine.clone(), 2).await.expect("runtime");
        Env {
            engine,
            runtime,
            _dir: dir,
        }
    }

    pub async fn stop(self) {
        self.runtime.shutdown().await;
    }

    /// Runs the corpus flow `file` to its end with text `inputs` and FILE inputs given as
    /// (input id, file name, content).
    pub async fn run(
        &self,
        file: &str,
        inputs: &[(&str, &str)],
        files: &[(&str, &str, Vec<u8>)],
    ) -> Result<Done, String> {
        let path = format!("{FLOWS_DIR}/{file}");
        let source = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        let flow = self
            .engine
            .create_flow(&source)
            .await
            .map_err(|e| format!("flow {file}: {e}"))?;
        let id = self.engine.new_id();
        let mut stored = indexmap::IndexMap::new();
        for (input, name, content) in files {
            let uri = file_input_uri(&flow.flow.namespace, &flow.flow.id, &id, input, name);
            let stream: ByteStream = Box::pin(std::io::Cursor::new(content.clone()));
            self.engine
                .ports()
                .files
                .put(&uri, stream, 64 << 20)
                .await
                .map_err(|e| format!("input file {input}: {e}"))?;
            stored.insert(input.to_string(), uri);
        }
        let request = CreateExecution {
            namespace: flow.flow.namespace.clone(),
            flow_id: flow.flow.id.clone(),
            id: Some(id),
            inputs: inputs
                .iter()
                .map(|(k, v)| (k.to_string(), InputValue::Text(v.to_string())))
                .collect(),
            files: stored,
            ..Default::default()
        };
        let created = self
            .engine
            .create_execution(request)
            .await
            .map_err(|e| format!("create: {e}"))?;
        let execution = self
            .engine
            .wait_for_terminal(&created.id, Duration::from_secs(60))
            .await
            .map_err(|e| format!("wait: {e}"))?;
        let logs = self
            .engine
            .logs(&LogQuery {
                execution_id: created.id.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| format!("logs: {e}"))?;
        Ok(Done { execution, logs })
    }

    /// The text of the stored file `uri` (a `kestra:///` URI as a JSON string).
    pub async fn text(&self, uri: &Value) -> Result<String, String> {
        let uri = uri.as_str().ok_or_else(|| format!("not a URI: {uri}"))?;
        let mut stream = self
            .engine
            .ports()
            .files
            .get(uri)
            .await
            .map_err(|e| format!("{uri}: {e}"))?;
        let mut bytes = Vec::new();
        stream
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| format!("{uri}: {e}"))?;
        String::from_utf8(bytes).map_err(|e| format!("{uri}: {e}"))
    }
}

/// An ended execution and its log lines.
pub struct Done {
    pub execution: Execution,
    pub logs: Vec<LogEntry>,
}

impl Done {
    pub fn state(&self) -> StateType {
        self.execution.state.current
    }

    pub fn task_state(&self, task: &str) -> Result<StateType, String> {
        self.execution
            .task_runs()
            .iter()
            .find(|tr| tr.task_id == task)
            .map(|tr| tr.state.current)
            .ok_or_else(|| format!("no task run of {task}; {}", self.summary()))
    }

    /// The output `name` of `task`'s run, `Null` when it has none.
    pub fn output(&self, task: &str, name: &str) -> Value {
        self.execution
            .task_runs()
            .iter()
            .find(|tr| tr.task_id == task)
            .and_then(|tr| tr.outputs.as_ref())
            .and_then(|o| o.get(name))
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// The log messages of `task`.
    pub fn task_logs(&self, task: &str) -> Vec<&str> {
        self.logs
            .iter()
            .filter(|l| l.task_id.as_deref() == Some(task))
            .map(|l| l.message.as_str())
            .collect()
    }

    /// The states of the task runs and the log lines, for failure messages.
    pub fn summary(&self) -> String {
        let runs: Vec<String> = self
            .execution
            .task_runs()
            .iter()
            .map(|tr| format!("{}={:?}", tr.task_id, tr.state.current))
            .collect();
        let logs: Vec<&str> = self.logs.iter().map(|l| l.message.as_str()).collect();
        format!("execution {:?}, task runs {runs:?}, logs {logs:?}", self.state())
    }

    /// Checks the execution's state and each listed task run's.
    pub fn states(&self, execution: StateType, tasks: &[(&str, StateType)]) -> Check {
        if self.state() != execution {
            return Err(format!(
                "execution {:?}, expected {execution:?}; {}",
                self.state(),
                self.summary()
            ));
        }
        for (task, expected) in tasks {
            let got = self.task_state(task)?;
            if got != *expected {
                return Err(format!(
                    "{task} {got:?}, expected {expected:?}; {}",
                    self.summary()
                ));
            }
        }
        Ok(())
    }

    /// Checks that one of `task`'s log lines contains `text`.
    pub fn logged(&self, task: &str, text: &str) -> Check {
        let logs = self.task_logs(task);
        if logs.iter().any(|l| l.contains(text)) {
            Ok(())
        } else {
            Err(format!("{task} logged no line with {text:?}: {logs:?}"))
        }
    }
}

/// `Err` naming `what` unless `actual == expected`.
pub fn same<T: PartialEq + std::fmt::Debug>(what: &str, actual: T, expected: T) -> Check {
    if actual == expected {
        Ok(())
    } else {
        Err(format!("{what}: {actual:?}, expected {expected:?}"))
    }
}

/// `Err(what)` unless `ok`.
pub fn ensure(ok: bool, what: impl FnOnce() -> String) -> Check {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}
