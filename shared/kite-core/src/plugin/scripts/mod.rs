//! Kestra's script tasks (`io.kestra.plugin.scripts.*`): `shell.Commands`, `shell.Script`,
//! `python.Commands`, `python.Script`, `node.Commands`, `node.Script`, and the legacy
//! `io.kestra.core.tasks.scripts.Bash` and `Python`. `prepare` renders the properties
//! into a [`ScriptCall`] (the process to start and the files around it); the worker runs
//! it with Kestra's Process task runner rules, and `finish` turns what it saw into
//! Kestra's outputs (`exitCode`, `vars`, `outputFiles`) and state.
//!
//! `{{ workingDir }}` and `{{ outputDir }}` render to marks ([`WORKING_DIR_MARK`],
//! [`OUTPUT_DIR_MARK`]) that the worker replaces with the folders it made for the attempt:
//! the core knows no file system.

mod legacy;
pub(crate) mod prepare;
pub mod protocol;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::{Check, IoAnswer, IoCall, IoKind, IoTaskSpec, Property, Render, TaskRunContext};
use crate::execution::{StateType, TaskResult};

/// What `{{ workingDir }}` renders to until the worker knows the folder.
pub const WORKING_DIR_MARK: &str = "\u{1}kite:workingDir\u{1}";
/// What `{{ outputDir }}` renders to until the worker knows the folder.
pub const OUTPUT_DIR_MARK: &str = "\u{1}kite:outputDir\u{1}";
/// Where the command names the file a `Script` task's `script` is written to.
pub const SCRIPT_FILE_MARK: &str = "\u{1}kite:scriptFile\u{1}";

/// A script task run, rendered: the process to start and the files around it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptCall {
    /// The program and its arguments: the interpreter, then the commands joined by new
    /// lines as its last argument (Kestra's `ScriptService.scriptCommands`).
    pub command: Vec<String>,
    /// Added to the worker's own environment.
    pub env: Vec<(String, String)>,
    /// Files written into the working directory before the process starts.
    pub input_files: Vec<(String, InputFile)>,
    /// A `Script` task's script: written to a file named by [`SCRIPT_FILE_MARK`].
    pub script: Option<ScriptFile>,
    /// Globs of the working directory's files uploaded afterwards (Kestra's `outputFiles`).
    pub output_files: Vec<String>,
    /// Empty files made before the start and uploaded afterwards (the legacy tasks'
    /// `outputFiles` keys, `{{ outputFiles.<key> }}` in the commands).
    pub legacy_output_files: Vec<String>,
    /// The namespace's files copied in first (Kestra's `namespaceFiles`).
    pub namespace_files: Option<NamespaceFilesFilter>,
    pub warning_on_std_err: bool,
    /// The program the commands need on the `PATH`, named in the error when it is missing.
    pub program: Option<Program>,
    /// The image a container task runner would have used: the worker runs the process on
    /// the host instead, with a WARN line (or refuses, as configured).
    pub container_image: Option<String>,
    /// Python packages installed in a cached virtual environment (`dependencies`).
    pub dependencies: Vec<String>,
    /// The legacy tasks' outputs (`files`, `stdOutLineCount`, `stdErrLineCount` too).
    pub legacy_outputs: bool,
    /// The folder of the closest `flow.WorkingDirectory` ancestor, when there is one.
    pub shared_folder: Option<SharedFolder>,
}

/// The folder a `flow.WorkingDirectory`'s script children share. A worker keeps it
/// between children; another worker instance rebuilds it from `snapshot`.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedFolder {
    /// Names the folder: the WorkingDirectory's task run id.
    pub key: String,
    /// A `kestra:///` URI under the WorkingDirectory task run's storage prefix, where each
    /// child leaves the folder's content when it ends.
    pub snapshot: String,
    /// The script child that ran in the folder before this one, if any.
    pub previous: Option<String>,
    /// The WorkingDirectory's `inputFiles`, written when the folder is made.
    pub input_files: Vec<(String, InputFile)>,
    /// The WorkingDirectory's `namespaceFiles`, copied when the folder is made.
    pub namespace_files: Option<NamespaceFilesFilter>,
}

/// The name of the snapshot file under a WorkingDirectory task run's storage prefix.
pub const SNAPSHOT_FILE: &str = "working-directory.snapshot";

/// The files a WorkingDirectory's folder starts with.
type FolderFiles = (Vec<(String, InputFile)>, Option<NamespaceFilesFilter>);

/// A WorkingDirectory's own `inputFiles` and `namespaceFiles`, rendered.
pub fn working_directory_files(
    properties: &Map<String, Value>,
    render: &Render,
) -> Result<FolderFiles, String> {
    let p = super::props::Props::new(properties, render);
    Ok((prepare::input_files(&p)?, prepare::namespace_files(&p)?))
}

/// An input file's content, or the internal storage file to copy.
#[derive(Debug, Clone, PartialEq)]
pub enum InputFile {
    Content(String),
    Storage(String),
}

/// A `Script` task's script and the extension of its file.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptFile {
    pub extension: &'static str,
    pub content: String,
}

/// Which of the namespace's files go into the working directory.
#[derive(Debug, Clone, PartialEq)]
pub struct NamespaceFilesFilter {
    pub namespace: String,
    /// Kestra's file patterns; empty means every file.
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

/// A program a script task needs, which a host may not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    Python,
    Node,
}

impl Program {
    /// The names looked up on the `PATH`, in order.
    pub fn candidates(self) -> &'static [&'static str] {
        match self {
            Program::Python => &["python3", "python"],
            Program::Node => &["node"],
        }
    }

    /// The name the commands use.
    pub fn command(self) -> &'static str {
        match self {
            Program::Python => "python",
            Program::Node => "node",
        }
    }
}

/// What the worker saw of a process that ran to its end.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScriptRun {
    pub exit_code: i32,
    /// `::{"outputs":{…}}::` lines, merged in order.
    pub vars: Map<String, Value>,
    /// Uploaded files: their name (relative to the working or output directory) → URI.
    pub output_files: IndexMap<String, String>,
    pub std_out_lines: u64,
    pub std_err_lines: u64,
}

/// Why a script task could not run to its end.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScriptError {
    #[error(
        "`{program}` is not installed on this worker (not found in the PATH). Install it on the \
         host, or on AWS Lambda add a layer that provides it (see docs/aws.md, 'Script tasks')"
    )]
    MissingProgram { program: String },
    #[error(
        "This task asks for the container image '{image}', and this Kite refuses tasks that \
         need a container (KITE_CONTAINER_TASKS=refuse): Kite runs scripts as processes on the \
         host. Remove the container settings to run it with the Process task runner"
    )]
    ContainerRefused { image: String },
    #[error("Invalid outputFile (only relative path is supported) for path '{0}'")]
    InvalidPath(String),
    #[error("Unable to read '{0}': a task only reads its own execution's files")]
    NotReadable(String),
    #[error("Unable to prepare the working directory: {0}")]
    WorkingDirectory(String),
    #[error("Unable to start the process: {0}")]
    Start(String),
    #[error("Unable to install the Python dependencies: {0}")]
    Dependencies(String),
    #[error("Internal storage error: {0}")]
    Storage(String),
}

/// A script task's properties: its own, then those every script task shares
/// (Kestra's `AbstractExecScript`).
macro_rules! script_properties {
    ($($name:literal => $check:ident),* $(,)?) => {
        &[
            $(Property::new($name, Check::$check),)*
            Property::new("beforeCommands", Check::List),
            Property::new("env", Check::Map),
            Property::new("interpreter", Check::List),
            Property::new("inputFiles", Check::Any),
            Property::new("outputFiles", Check::List),
            Property::new("namespaceFiles", Check::Map),
            Property::new("failFast", Check::Any),
            Property::new("warningOnStdErr", Check::Any),
            Property::new("targetOS", Check::Any),
            Property::new("taskRunner", Check::Map),
            Property::new("containerImage", Check::Any),
            Property::new("docker", Check::Map),
            Property::new("runner", Check::Any),
            Property::new("outputDirectory", Check::Any),
        ]
    };
}

const COMMANDS: &[Property] = script_properties!["commands" => List];
const SCRIPT: &[Property] = script_properties!["script" => Required];
// `packageManager`, `pythonVersion` and `dependencyCacheEnabled` are accepted and not read.
const PYTHON_COMMANDS: &[Property] = script_properties![
    "commands" => List,
    "dependencies" => List,
    "packageManager" => Any,
    "pythonVersion" => Any,
    "dependencyCacheEnabled" => Any,
];
const PYTHON_SCRIPT: &[Property] = script_properties![
    "script" => Required,
    "dependencies" => List,
    "packageManager" => Any,
    "pythonVersion" => Any,
    "dependencyCacheEnabled" => Any,
];

pub const TASKS: &[IoTaskSpec] = &[
    IoTaskSpec::new(
        IoKind::ShellCommands,
        "io.kestra.plugin.scripts.shell.Commands",
        COMMANDS,
        prepare::shell_commands,
        finish,
    ),
    IoTaskSpec::new(
        IoKind::ShellScript,
        "io.kestra.plugin.scripts.shell.Script",
        SCRIPT,
        prepare::shell_script,
        finish,
    ),
    IoTaskSpec::new(
        IoKind::PythonCommands,
        "io.kestra.plugin.scripts.python.Commands",
        PYTHON_COMMANDS,
        prepare::python_commands,
        finish,
    ),
    IoTaskSpec::new(
        IoKind::PythonScript,
        "io.kestra.plugin.scripts.python.Script",
        PYTHON_SCRIPT,
        prepare::python_script,
        finish,
    ),
    IoTaskSpec::new(
        IoKind::NodeCommands,
        "io.kestra.plugin.scripts.node.Commands",
        COMMANDS,
        prepare::node_commands,
        finish,
    ),
    IoTaskSpec::new(
        IoKind::NodeScript,
        "io.kestra.plugin.scripts.node.Script",
        SCRIPT,
        prepare::node_script,
        finish,
    ),
    IoTaskSpec::new(
        IoKind::LegacyBash,
        "io.kestra.core.tasks.scripts.Bash",
        legacy::BASH,
        legacy::bash,
        finish,
    ),
    IoTaskSpec::new(
        IoKind::LegacyPython,
        "io.kestra.core.tasks.scripts.Python",
        legacy::PYTHON,
        legacy::python,
        finish,
    ),
];

/// The variables a script task's properties see besides the task run's: `workingDir`,
/// `outputDir`, and the legacy tasks' `outputFiles.<key>`.
pub fn variables(kind: IoKind, properties: &Map<String, Value>) -> Map<String, Value> {
    let mut vars = Map::new();
    vars.insert("workingDir".into(), Value::String(WORKING_DIR_MARK.into()));
    vars.insert("outputDir".into(), Value::String(OUTPUT_DIR_MARK.into()));
    if matches!(kind, IoKind::LegacyBash | IoKind::LegacyPython) {
        let files: Map<String, Value> = legacy::output_keys(properties)
            .into_iter()
            .map(|key| {
                let path = format!("{WORKING_DIR_MARK}/{key}");
                (key, Value::String(path))
            })
            .collect();
        vars.insert("outputFiles".into(), Value::Object(files.clone()));
        vars.insert("temp".into(), Value::Object(files));
    }
    vars
}

/// Kestra's message for a process that ended with another code than 0.
pub fn failed_message(exit_code: i32) -> String {
    format!("Command failed with code {exit_code}")
}

fn finish(call: &IoCall, answer: IoAnswer, task_run: &TaskRunContext, now: DateTime<Utc>) -> TaskResult {
    let (IoCall::Script(call), IoAnswer::Script(answer)) = (call, answer) else {
        return task_run.failed("The worker answered another kind of call", now);
    };
    let run = match answer {
        Ok(run) => run,
        Err(e) => return task_run.failed(e.to_string(), now),
    };
    if run.exit_code != 0 {
        return task_run.failed(failed_message(run.exit_code), now);
    }
    let mut outputs = IndexMap::new();
    let files = Value::Object(
        run.output_files
            .iter()
            .map(|(name, uri)| (name.clone(), Value::String(uri.clone())))
            .collect(),
    );
    outputs.insert("exitCode".to_string(), Value::from(run.exit_code));
    outputs.insert("vars".to_string(), Value::Object(run.vars));
    if !run.output_files.is_empty() || call.legacy_outputs {
        outputs.insert("outputFiles".to_string(), files.clone());
    }
    if call.legacy_outputs {
        outputs.insert("files".to_string(), files);
        outputs.insert("stdOutLineCount".to_string(), Value::from(run.std_out_lines));
        outputs.insert("stdErrLineCount".to_string(), Value::from(run.std_err_lines));
    }
    let state = if call.warning_on_std_err && run.std_err_lines > 0 {
        StateType::Warning
    } else {
        StateType::Success
    };
    task_run.result(state, outputs)
}

#[cfg(test)]
mod tests;
