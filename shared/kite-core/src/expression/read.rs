//! `read(path, namespace?)`: a `kestra:///` file of the current execution (or of its
//! Flow-trigger parent), or, given a path without `kestra://`, a namespace file (the
//! flow's namespace unless `namespace` names another), through the host's `FileReader`.

use serde_json::Value;
use tera::{Error, Result};

use super::{with_current, FileReadError};
use crate::namespace_files::{file_uri, normalize_path, NamespaceFileError};

pub(super) fn read(path: &str, namespace: Option<&str>) -> Result<Value> {
    if !path.starts_with("kestra://") {
        return read_namespace_file(path, namespace);
    }
    with_current(|c| {
        if !crate::run_variables::may_read(path, c.ctx.readable_prefixes) {
            return Err(Error::msg(crate::run_variables::unreadable_message(path)));
        }
        let files = c
            .ctx
            .files
            .ok_or_else(|| Error::msg("No file storage is available"))?;
        let bytes = files.read_file(path).map_err(Error::msg)?;
        Ok(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    })?
}

/// A namespace file, as Kestra reads a path without `kestra://` (`nsfile:///path` too).
fn read_namespace_file(path: &str, namespace: Option<&str>) -> Result<Value> {
    let path = path.strip_prefix("nsfile://").unwrap_or(path);
    with_current(|c| {
        let namespace = match namespace {
            Some(ns) => ns.to_string(),
            None => c
                .ctx
                .variables
                .pointer("/flow/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        };
        let normalized = normalize_path(path).map_err(|e| Error::msg(e.to_string()))?;
        let uri = file_uri(&namespace, &normalized).map_err(|e| Error::msg(e.to_string()))?;
        let files = c
            .ctx
            .files
            .ok_or_else(|| Error::msg("No file storage is available"))?;
        match files.read_file(&uri) {
            Ok(bytes) => Ok(Value::String(String::from_utf8_lossy(&bytes).into_owned())),
            Err(FileReadError::NotFound(_)) => Err(Error::msg(
                NamespaceFileError::NotFound {
                    namespace,
                    path: normalized,
                }
                .to_string(),
            )),
            Err(e) => Err(Error::msg(e.to_string())),
        }
    })?
}
