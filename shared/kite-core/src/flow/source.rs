//! The YAML source of flows: its documents read as JSON, and the line and
//! column of each refused field found in it (see `position`).
//!
//! YAML values become JSON with [`yaml_value_to_json`], which lives with the
//! YAML input type so that `input` needs nothing from `flow`.

use serde_json::Value;

use super::error::{FlowError, FlowErrorKind};
use super::position::{lookup, positions};
use crate::input::yaml_value_to_json;

/// The flow source as JSON (for API responses), without validating it.
pub fn flow_source_to_json(source: &str) -> Result<Value, FlowError> {
    let yaml: serde_yaml::Value = serde_yaml::from_str(source).map_err(yaml_error)?;
    Ok(yaml_value_to_json(yaml))
}

/// Every non-empty document of a multi-document source as JSON, numbered as
/// [`parse_flows`](super::parse_flows) numbers its results (e.g. to name the
/// flow id and namespace of an invalid document in a validation report).
pub fn flow_documents_to_json(source: &str) -> Vec<Result<Value, FlowError>> {
    read_documents(source).into_iter().map(|(_, doc)| doc).collect()
}

fn yaml_error(e: serde_yaml::Error) -> FlowError {
    let loc = e.location();
    FlowError {
        kind: FlowErrorKind::Yaml,
        path: String::new(),
        line: loc.as_ref().map(|l| l.line()),
        column: loc.as_ref().map(|l| l.column()),
        message: format!("Invalid YAML: {e}"),
    }
}

/// Non-empty documents, numbered as [`positions`] numbers them.
pub(super) fn read_documents(source: &str) -> Vec<(usize, Result<Value, FlowError>)> {
    use serde::Deserialize;
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(source) {
        let index = out.len();
        match serde_yaml::Value::deserialize(doc) {
            Ok(value) if value.is_null() => {}
            Ok(value) => out.push((index, Ok(yaml_value_to_json(value)))),
            Err(e) => {
                out.push((index, Err(yaml_error(e))));
                break;
            }
        }
    }
    out
}

/// Fills in line and column from the source, and orders errors as they appear.
pub(super) fn locate(mut errors: Vec<FlowError>, source: &str, doc_index: usize) -> Vec<FlowError> {
    let docs = positions(source);
    if let Some(pos) = docs.get(doc_index) {
        for e in errors.iter_mut().filter(|e| e.line.is_none()) {
            if let Some((line, column)) = lookup(pos, &e.path) {
                e.line = Some(line);
                e.column = Some(column);
            }
        }
    }
    // What the position reader could not place (an empty `{}`, YAML that only serde_yaml
    // reads) is placed at the flow, which starts at the first line with content.
    if doc_index == 0 {
        let first = source.lines().position(|l| {
            let l = l.trim();
            !(l.is_empty() || l.starts_with('#') || l.starts_with("---") || l.starts_with('%'))
        });
        for e in errors.iter_mut().filter(|e| e.line.is_none()) {
            e.line = first.map(|i| i + 1);
            e.column = e.line.map(|_| 1);
        }
    }
    errors.sort_by_key(|e| (e.line.unwrap_or(usize::MAX), e.column.unwrap_or(0)));
    errors
}
