//! The legacy script tasks, `io.kestra.core.tasks.scripts.Bash` and `Python`: `interpreter`
//! a program and `interpreterArgs` its arguments, `exitOnFailed` (a `set -o errexit` line),
//! `outputFiles` (and the older `outputsFiles`, `files`) as keys of empty files that
//! `{{ outputFiles.<key> }}` names, and Python's virtual environment in the working
//! directory with its `requirements`.

use serde_json::{Map, Value};

use super::super::props::Props;
use super::super::{Check, IoCall, Property};
use super::prepare::{check_target_os, input_files, relative_path};
use super::{Program, Render, ScriptCall, WORKING_DIR_MARK};

macro_rules! legacy_properties {
    ($($name:literal => $check:ident),* $(,)?) => {
        &[
            $(Property::new($name, Check::$check),)*
            Property::new("interpreter", Check::Any),
            Property::new("interpreterArgs", Check::List),
            Property::new("exitOnFailed", Check::Any),
            Property::new("files", Check::List),
            Property::new("outputsFiles", Check::List),
            Property::new("outputFiles", Check::List),
            Property::new("inputFiles", Check::Any),
            Property::new("env", Check::Map),
            Property::new("warningOnStdErr", Check::Any),
            Property::new("runner", Check::Any),
            Property::new("dockerOptions", Check::Map),
        ]
    };
}

pub(super) const BASH: &[Property] = legacy_properties!["commands" => Required];
pub(super) const PYTHON: &[Property] = legacy_properties![
    "commands" => Any,
    "pythonPath" => Any,
    "args" => List,
    "requirements" => List,
    "virtualEnv" => Any,
    "packageManager" => Any,
];

/// The keys of `outputFiles`, `outputsFiles` and `files`, as written (they are names,
/// not templates).
pub(super) fn output_keys(properties: &Map<String, Value>) -> Vec<String> {
    let mut keys = Vec::new();
    for name in ["outputFiles", "outputsFiles", "files"] {
        if let Some(Value::Array(items)) = properties.get(name) {
            for key in items.iter().filter_map(Value::as_str) {
                if !keys.iter().any(|k| k == key) {
                    keys.push(key.to_string());
                }
            }
        }
    }
    keys
}

/// The legacy `commands`: a list, or one string.
fn commands(p: &Props) -> Result<Option<Vec<String>>, String> {
    match p.properties.get("commands") {
        Some(Value::String(s)) if !s.contains("{{") => {
            Ok(Some(vec![p.render_value(&Value::String(s.clone()))?]))
        }
        _ => p.list("commands"),
    }
}

fn call(p: &Props, lines: Vec<String>, program: Option<Program>) -> Result<IoCall, String> {
    check_target_os(p)?;
    let interpreter = p.rendered("interpreter")?.unwrap_or_else(|| "/bin/sh".into());
    let mut command = vec![interpreter];
    command.extend(p.list("interpreterArgs")?.unwrap_or_else(|| vec!["-c".into()]));
    command.push(lines.join("\n"));
    let keys = output_keys(p.properties);
    for key in &keys {
        relative_path(key)?;
    }
    let mut env = p.string_map("env")?;
    if program == Some(Program::Python) && !env.iter().any(|(k, _)| k == "PYTHONUNBUFFERED") {
        env.push(("PYTHONUNBUFFERED".into(), "true".into()));
    }
    let docker = p
        .rendered("runner")?
        .is_some_and(|r| r.eq_ignore_ascii_case("DOCKER"));
    let container_image = if docker {
        let image = match p.properties.get("dockerOptions") {
            Some(Value::Object(options)) => Props::new(options, p.render).rendered("image")?,
            _ => None,
        };
        Some(image.unwrap_or_else(|| "ubuntu".into()))
    } else {
        None
    };
    Ok(IoCall::Script(ScriptCall {
        command,
        env,
        input_files: input_files(p)?,
        script: None,
        output_files: Vec::new(),
        legacy_output_files: keys,
        namespace_files: None,
        warning_on_std_err: p.flag("warningOnStdErr", true)?,
        program,
        container_image,
        dependencies: Vec::new(),
        legacy_outputs: true,
        shared_folder: None,
    }))
}

pub(super) fn bash(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    let mut lines = Vec::new();
    if p.flag("exitOnFailed", true)? {
        lines.push("set -o errexit".to_string());
    }
    let commands = commands(&p)?.unwrap_or_default();
    if commands.is_empty() {
        return Err("Missing required property 'commands'".into());
    }
    lines.extend(commands);
    call(&p, lines, None)
}

const DEFAULT_PYTHON_COMMAND: &str = "./bin/python main.py";

pub(super) fn python(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    let commands = commands(&p)?.unwrap_or_else(|| vec![DEFAULT_PYTHON_COMMAND.to_string()]);
    let has_main = match properties.get("inputFiles") {
        Some(Value::Object(files)) => files.contains_key("main.py"),
        Some(Value::String(s)) => s.contains("main.py"),
        _ => false,
    };
    if !has_main && commands == [DEFAULT_PYTHON_COMMAND] {
        return Err("Invalid input files structure, expecting inputFiles property to contain at least a main.py key with python code value.".into());
    }
    let exit_on_failed = p.flag("exitOnFailed", true)?;
    let mut lines = Vec::new();
    if exit_on_failed {
        lines.push("set -o errexit".to_string());
    }
    if p.flag("virtualEnv", true)? {
        let python = p.rendered("pythonPath")?.unwrap_or_else(|| "python".into());
        lines.push(format!(
            "{python} -m venv --system-site-packages '{WORKING_DIR_MARK}' > /dev/null"
        ));
        let requirements = p.list("requirements")?.unwrap_or_default();
        if !requirements.is_empty() {
            lines.push(format!(
                "./bin/pip install {} > /dev/null",
                requirements.join(" ")
            ));
        }
    }
    let args = p.list("args")?.unwrap_or_default();
    for command in commands {
        if args.is_empty() {
            lines.push(command);
        } else {
            lines.push(format!("{command} {}", args.join(" ")));
        }
    }
    call(&p, lines, Some(Program::Python))
}
