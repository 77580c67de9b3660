//! The current script tasks' properties rendered into a [`ScriptCall`], with Kestra's
//! defaults: `interpreter` `["/bin/sh", "-c"]`, `failFast` (a `set -e` line first),
//! `warningOnStdErr` true, commands joined by new lines.

use serde_json::{Map, Value};

use super::super::props::Props;
use super::super::IoCall;
use super::{InputFile, NamespaceFilesFilter, Program, Render, ScriptCall, ScriptFile, SCRIPT_FILE_MARK};
use crate::namespace_files::PathPattern;

/// Kestra's native task runner (current and older names).
const PROCESS_RUNNERS: &[&str] = &[
    "io.kestra.plugin.core.runner.Process",
    "io.kestra.core.models.tasks.runners.types.ProcessTaskRunner",
];

impl Props<'_> {
    /// A list property: a YAML list whose items are rendered, or an expression that
    /// renders to a JSON list. `None` when absent.
    pub(crate) fn list(&self, name: &str) -> Result<Option<Vec<String>>, String> {
        match self.properties.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .filter(|v| !v.is_null())
                .map(|v| self.render_value(v))
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => {
                let text = self.render_value(other)?;
                match serde_json::from_str::<Vec<Value>>(&text) {
                    Ok(items) => Ok(Some(
                        items
                            .into_iter()
                            .map(|v| match v {
                                Value::String(s) => s,
                                other => other.to_string(),
                            })
                            .collect(),
                    )),
                    Err(_) => Err(format!(
                        "Invalid value for property '{name}': expected a list, got '{text}'"
                    )),
                }
            }
        }
    }

    /// A map of strings: each value rendered (Kestra's `Property<Map<String, String>>`).
    pub(crate) fn string_map(&self, name: &str) -> Result<Vec<(String, String)>, String> {
        match self.properties.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Object(map)) => map
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| {
                    Ok((
                        self.render_value(&Value::String(k.clone()))?,
                        self.render_value(v)?,
                    ))
                })
                .collect(),
            Some(other) => {
                let text = self.render_value(other)?;
                let map: Map<String, Value> = serde_json::from_str(&text).map_err(|_| {
                    format!("Invalid value for property '{name}': expected a map, got '{text}'")
                })?;
                Ok(map
                    .into_iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| match v {
                        Value::String(s) => (k, s),
                        other => (k, other.to_string()),
                    })
                    .collect())
            }
        }
    }
}

/// Kestra's rule for the files a task names in its working directory.
pub(crate) fn relative_path(name: &str) -> Result<(), String> {
    if name.starts_with("./") || name.starts_with("..") || name.starts_with('/') || name.is_empty() {
        return Err(super::ScriptError::InvalidPath(name.to_string()).to_string());
    }
    Ok(())
}

/// `inputFiles`: a map of file name → content or `kestra:///` URI, or an expression that
/// renders to such a map as JSON.
pub(crate) fn input_files(p: &Props) -> Result<Vec<(String, InputFile)>, String> {
    let files = p.string_map("inputFiles").map_err(|_| {
        "Invalid `inputFiles`: expected a map of file names to contents or a JSON string of one".to_string()
    })?;
    files
        .into_iter()
        .map(|(name, value)| {
            relative_path(&name)?;
            let file = if value.starts_with("kestra://") {
                InputFile::Storage(value)
            } else {
                InputFile::Content(value)
            };
            Ok((name, file))
        })
        .collect()
}

/// `outputFiles`: globs of the working directory's files, checked now.
pub(super) fn output_files(p: &Props) -> Result<Vec<String>, String> {
    let globs = p.list("outputFiles")?.unwrap_or_default();
    for glob in &globs {
        relative_path(glob)?;
        PathPattern::new(&format!("glob:/{glob}")).map_err(|e| e.to_string())?;
    }
    Ok(globs)
}

pub(super) fn namespace_files(p: &Props) -> Result<Option<NamespaceFilesFilter>, String> {
    let Some(Value::Object(spec)) = p.properties.get("namespaceFiles") else {
        return Ok(None);
    };
    let inner = Props::new(spec, p.render);
    if !inner.flag("enabled", true)? {
        return Ok(None);
    }
    let patterns = |name: &str| -> Result<Vec<String>, String> {
        let list = inner.list(name)?.unwrap_or_default();
        for pattern in &list {
            PathPattern::new(pattern).map_err(|e| e.to_string())?;
        }
        Ok(list)
    };
    Ok(Some(NamespaceFilesFilter {
        namespace: p.namespace()?,
        include: patterns("include")?,
        exclude: patterns("exclude")?,
    }))
}

/// The image a container task runner would use, or `None` with the Process runner.
pub(super) fn container_image(p: &Props, default_image: &str) -> Result<Option<String>, String> {
    let image = || -> Result<String, String> {
        if let Some(image) = p.rendered("containerImage")? {
            return Ok(image);
        }
        if let Some(Value::Object(docker)) = p.properties.get("docker") {
            if let Some(image) = Props::new(docker, p.render).rendered("image")? {
                return Ok(image);
            }
        }
        Ok(default_image.to_string())
    };
    if let Some(Value::Object(runner)) = p.properties.get("taskRunner") {
        let kind = Props::new(runner, p.render).rendered("type")?.unwrap_or_default();
        return if PROCESS_RUNNERS.contains(&kind.as_str()) {
            Ok(None)
        } else {
            image().map(Some)
        };
    }
    let docker_runner = p
        .rendered("runner")?
        .is_some_and(|r| r.eq_ignore_ascii_case("DOCKER"));
    if docker_runner
        || p.properties.get("containerImage").is_some_and(|v| !v.is_null())
        || p.properties.contains_key("docker")
    {
        return image().map(Some);
    }
    Ok(None)
}

/// `targetOS`: Kite runs processes on Linux only.
pub(super) fn check_target_os(p: &Props) -> Result<(), String> {
    match p.rendered("targetOS")?.as_deref().map(str::trim) {
        None | Some("AUTO") | Some("LINUX") => Ok(()),
        Some("WINDOWS") => Err("targetOS WINDOWS is not supported: Kite runs scripts on Linux hosts".into()),
        Some(other) => Err(format!(
            "Invalid targetOS '{other}': expected one of LINUX, WINDOWS, AUTO"
        )),
    }
}

/// A task's own command lines (and script file), from its properties and interpreter.
type Lines = Result<(Vec<String>, Option<ScriptFile>), String>;

/// What every current script task reads, and its command from `commands`.
fn call(
    properties: &Map<String, Value>,
    render: &Render,
    program: Option<Program>,
    default_image: &str,
    commands: impl FnOnce(&Props, &[String]) -> Lines,
) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    check_target_os(&p)?;
    let interpreter = p
        .list("interpreter")?
        .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
    if interpreter.is_empty() {
        return Err("Invalid `interpreter`: it must name a program".into());
    }
    let mut lines = Vec::new();
    if p.flag("failFast", true)? {
        lines.push("set -e".to_string());
    }
    lines.extend(p.list("beforeCommands")?.unwrap_or_default());
    let (own, script) = commands(&p, &interpreter)?;
    lines.extend(own);
    let mut command = interpreter;
    command.push(lines.join("\n"));
    let mut env = p.string_map("env")?;
    if program == Some(Program::Python) {
        for (name, value) in [
            ("PYTHONUNBUFFERED", "true"),
            ("PIP_ROOT_USER_ACTION", "ignore"),
            ("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
        ] {
            if !env.iter().any(|(k, _)| k == name) {
                env.push((name.into(), value.into()));
            }
        }
    }
    let dependencies = match program {
        Some(Program::Python) => p.list("dependencies")?.unwrap_or_default(),
        _ => Vec::new(),
    };
    Ok(IoCall::Script(ScriptCall {
        command,
        env,
        input_files: input_files(&p)?,
        script,
        output_files: output_files(&p)?,
        legacy_output_files: Vec::new(),
        namespace_files: namespace_files(&p)?,
        warning_on_std_err: p.flag("warningOnStdErr", true)?,
        program,
        container_image: container_image(&p, default_image)?,
        dependencies,
        legacy_outputs: false,
        shared_folder: None,
    }))
}

fn commands_of(p: &Props, _: &[String]) -> Lines {
    let commands = p
        .list("commands")?
        .ok_or_else(|| "Missing required property 'commands'".to_string())?;
    if commands.is_empty() {
        return Err("Invalid `commands`: at least one command is required".into());
    }
    Ok((commands, None))
}

/// A `Script` task: its script in a file, run by `runner` (`None`: the interpreter's
/// program, a shell).
fn script_of(runner: Option<&'static str>, extension: &'static str) -> impl Fn(&Props, &[String]) -> Lines {
    move |p, interpreter| {
        let content = p.required("script")?;
        let program = runner.unwrap_or(interpreter[0].as_str());
        let line = format!("{program} '{SCRIPT_FILE_MARK}'");
        Ok((vec![line], Some(ScriptFile { extension, content })))
    }
}

const SHELL_IMAGE: &str = "ubuntu";
const PYTHON_IMAGE: &str = "ghcr.io/kestra-io/kestrapy:latest";
const NODE_IMAGE: &str = "node";

pub(super) fn shell_commands(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    call(properties, render, None, SHELL_IMAGE, commands_of)
}

pub(super) fn shell_script(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    call(properties, render, None, SHELL_IMAGE, script_of(None, "sh"))
}

pub(super) fn python_commands(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    call(
        properties,
        render,
        Some(Program::Python),
        PYTHON_IMAGE,
        commands_of,
    )
}

pub(super) fn python_script(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let runner = Some(Program::Python.command());
    call(
        properties,
        render,
        Some(Program::Python),
        PYTHON_IMAGE,
        script_of(runner, "py"),
    )
}

pub(super) fn node_commands(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    call(properties, render, Some(Program::Node), NODE_IMAGE, commands_of)
}

pub(super) fn node_script(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let runner = Some(Program::Node.command());
    call(
        properties,
        render,
        Some(Program::Node),
        NODE_IMAGE,
        script_of(runner, "js"),
    )
}
