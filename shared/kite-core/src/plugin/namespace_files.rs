//! Kestra's namespace file tasks (`io.kestra.plugin.core.namespace.*`): `UploadFiles`,
//! `DownloadFiles` and `DeleteFiles`, with Kestra's properties, defaults, outputs and
//! messages. The worker makes the [`NamespaceFilesCall`] over the file storage; paths,
//! URIs and patterns follow [`crate::namespace_files`].

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::props::Props;
use super::{Check, IoAnswer, IoCall, IoKind, IoTaskSpec, Property, Render, TaskRunContext};
use crate::execution::{LogLevel, StateType, TaskResult};
use crate::namespace_files::{normalize_path, validate_namespace, NamespaceFileError, PathPattern};

/// What `UploadFiles` does with a file that already exists (Kestra's `conflict`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    Overwrite,
    Error,
    Skip,
}

impl Conflict {
    fn parse(text: &str) -> Option<Conflict> {
        match text.trim() {
            "OVERWRITE" => Some(Conflict::Overwrite),
            "ERROR" => Some(Conflict::Error),
            "SKIP" => Some(Conflict::Skip),
            _ => None,
        }
    }
}

/// A namespace file operation, rendered.
#[derive(Debug, Clone, PartialEq)]
pub enum NamespaceFilesCall {
    Upload {
        namespace: String,
        /// `(namespace file path, source kestra:/// URI)`, in the order given.
        files: Vec<(String, String)>,
        conflict: Conflict,
    },
    Download {
        namespace: String,
        /// Kestra's file patterns, checked by `prepare`.
        patterns: Vec<String>,
        /// Folder under the task run's own files (Kestra's `destination`).
        destination: String,
    },
    Delete {
        namespace: String,
        patterns: Vec<String>,
    },
}

/// What the worker did for a [`NamespaceFilesCall`] of the same variant.
#[derive(Debug, Clone, PartialEq)]
pub enum NamespaceFilesAnswer {
    Uploaded {
        written: Vec<String>,
        /// Already there, `conflict: SKIP`.
        skipped: Vec<String>,
        /// Sources that do not exist: ignored, as Kestra does.
        missing: Vec<String>,
    },
    /// `(namespace file path, URI of the task run's copy)`.
    Downloaded(Vec<(String, String)>),
    Deleted(Vec<String>),
}

/// What the worker answers to a [`NamespaceFilesCall`].
pub type NamespaceFilesResult = Result<NamespaceFilesAnswer, NamespaceFileError>;

const UPLOAD: &[Property] = &[
    Property::new("namespace", Check::Any),
    Property::new("files", Check::Any),
    Property::new("filesMap", Check::Any),
    Property::new("destination", Check::Any),
    Property::new("conflict", Check::Any),
];

const DOWNLOAD: &[Property] = &[
    Property::new("namespace", Check::Required),
    Property::new("files", Check::Required),
    Property::new("destination", Check::Any),
];

const DELETE: &[Property] = &[
    Property::new("namespace", Check::Required),
    Property::new("files", Check::Required),
    Property::new("deleteParentFolder", Check::Any),
];

pub const TASKS: &[IoTaskSpec] = &[
    IoTaskSpec::new(
        IoKind::NamespaceUploadFiles,
        "io.kestra.plugin.core.namespace.UploadFiles",
        UPLOAD,
        prepare_upload,
        finish,
    ),
    IoTaskSpec::new(
        IoKind::NamespaceDownloadFiles,
        "io.kestra.plugin.core.namespace.DownloadFiles",
        DOWNLOAD,
        prepare_download,
        finish,
    ),
    IoTaskSpec::new(
        IoKind::NamespaceDeleteFiles,
        "io.kestra.plugin.core.namespace.DeleteFiles",
        DELETE,
        prepare_delete,
        finish,
    ),
];

fn render_text(render: &Render, value: &Value) -> Result<String, String> {
    render(value).map_err(|e| e.to_string())
}

/// `namespace`, by default the flow's (UploadFiles), checked.
fn namespace(properties: &Map<String, Value>, render: &Render) -> Result<String, String> {
    let namespace = Props::new(properties, render).namespace()?;
    validate_namespace(&namespace).map_err(|e| e.to_string())?;
    Ok(namespace)
}

/// `files` of DownloadFiles and DeleteFiles: a pattern or a list of them, each checked.
fn patterns(properties: &Map<String, Value>, render: &Render, message: &str) -> Result<Vec<String>, String> {
    let patterns = match properties.get("files") {
        Some(Value::String(s)) => vec![render_text(render, &Value::String(s.clone()))?],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| render_text(render, v))
            .collect::<Result<_, _>>()?,
        _ => return Err(message.to_string()),
    };
    for pattern in &patterns {
        PathPattern::new(pattern).map_err(|e| e.to_string())?;
    }
    Ok(patterns)
}

fn prepare_upload(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let namespace = namespace(properties, render)?;
    let destination = match properties.get("destination") {
        Some(v) if !v.is_null() => render_text(render, v)?,
        _ => "/".to_string(),
    };
    let conflict = match properties.get("conflict") {
        Some(v) if !v.is_null() => {
            let text = render_text(render, v)?;
            Conflict::parse(&text)
                .ok_or_else(|| format!("Invalid conflict '{text}': expected one of OVERWRITE, ERROR, SKIP"))?
        }
        _ => Conflict::Overwrite,
    };
    let target = |name: &str| normalize_path(&format!("{destination}/{name}")).map_err(|e| e.to_string());
    let mut files = Vec::new();
    let mut map_entries = |map: &Map<String, Value>| -> Result<(), String> {
        for (key, value) in map {
            let Value::String(_) = value else {
                return Err("filesMap must be a Map<String, String>".into());
            };
            let key = render_text(render, &Value::String(key.clone()))?;
            files.push((target(&key)?, render_text(render, value)?));
        }
        Ok(())
    };
    let (given_files, given_map) = (properties.get("files"), properties.get("filesMap"));
    if given_files.is_none_or(Value::is_null) && given_map.is_none_or(Value::is_null) {
        return Err("files or filesMap is required".into());
    }
    match given_map {
        Some(Value::Object(map)) => map_entries(map)?,
        Some(Value::String(text)) => {
            let rendered = render_text(render, &Value::String(text.clone()))?;
            match serde_json::from_str::<Value>(&rendered) {
                Ok(Value::Object(map)) => map_entries(&map)?,
                _ => return Err("filesMap must be a Map<String, String>".into()),
            }
        }
        None | Some(Value::Null) => {}
        Some(_) => return Err("filesMap must be a Map<String, String>".into()),
    }
    match given_files {
        // Kestra's earlier form: a map of target path to URI.
        Some(Value::Object(map)) => map_entries(map)?,
        Some(Value::Array(items)) => {
            for item in items {
                let uri = render_text(render, item)?;
                if !uri.starts_with("kestra:///") {
                    return Err(format!(
                        "Cannot upload '{uri}': `files` takes kestra:/// URIs in Kite, whose tasks have no working directory to match patterns in"
                    ));
                }
                let name = uri.rsplit('/').next().unwrap_or_default().to_string();
                files.push((target(&name)?, uri));
            }
        }
        None | Some(Value::Null) => {}
        Some(_) => return Err("files must be a List<String> or a Map<String, String>".into()),
    }
    Ok(IoCall::NamespaceFiles(NamespaceFilesCall::Upload {
        namespace,
        files,
        conflict,
    }))
}

fn prepare_download(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let destination = match properties.get("destination") {
        Some(v) if !v.is_null() => render_text(render, v)?,
        _ => String::new(),
    };
    // Checked here so that a bad destination fails before anything is copied.
    normalize_path(&destination).map_err(|e| e.to_string())?;
    Ok(IoCall::NamespaceFiles(NamespaceFilesCall::Download {
        namespace: namespace(properties, render)?,
        patterns: patterns(
            properties,
            render,
            "The files property must be a string or a list of strings",
        )?,
        destination,
    }))
}

fn prepare_delete(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    Ok(IoCall::NamespaceFiles(NamespaceFilesCall::Delete {
        namespace: namespace(properties, render)?,
        patterns: patterns(properties, render, "Files must be a String or a list of String")?,
    }))
}

fn finish(call: &IoCall, answer: IoAnswer, task_run: &TaskRunContext, now: DateTime<Utc>) -> TaskResult {
    let (IoCall::NamespaceFiles(call), IoAnswer::NamespaceFiles(answer)) = (call, answer) else {
        return task_run.failed("The worker answered another kind of call", now);
    };
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => return task_run.failed(e.to_string(), now),
    };
    let mut outputs = IndexMap::new();
    let mut logs = Vec::new();
    match (call, answer) {
        (
            NamespaceFilesCall::Upload { namespace, .. },
            NamespaceFilesAnswer::Uploaded {
                written,
                skipped,
                missing,
            },
        ) => {
            for path in written {
                logs.extend(task_run.log(
                    LogLevel::Debug,
                    format!("File '{path}' added to namespace '{namespace}'."),
                    now,
                ));
            }
            for path in skipped {
                logs.extend(task_run.log(
                    LogLevel::Debug,
                    format!("File '{path}' already exists in namespace '{namespace}' and conflict is set to SKIP. Skipping."),
                    now,
                ));
            }
            for uri in missing {
                logs.extend(task_run.log(
                    LogLevel::Warn,
                    format!("File '{uri}' does not exist: not uploaded"),
                    now,
                ));
            }
        }
        (NamespaceFilesCall::Download { .. }, NamespaceFilesAnswer::Downloaded(files)) => {
            for (_, uri) in &files {
                logs.extend(task_run.log(LogLevel::Debug, format!("Downloaded {uri}"), now));
            }
            let files: Map<String, Value> = files.into_iter().map(|(p, u)| (p, Value::String(u))).collect();
            outputs.insert("files".to_string(), Value::Object(files));
        }
        (NamespaceFilesCall::Delete { .. }, NamespaceFilesAnswer::Deleted(paths)) => {
            for path in paths {
                logs.extend(task_run.log(LogLevel::Debug, format!("Deleted {path}"), now));
            }
        }
        _ => return task_run.failed("The worker answered another kind of namespace files call", now),
    }
    let mut result = task_run.result(StateType::Success, outputs);
    result.logs = logs;
    result
}
