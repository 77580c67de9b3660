//! Parsing and validating Kestra flow YAML.

use super::Flow;

/// A flow that cannot be accepted, with where and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct FlowError {
    pub kind: FlowErrorKind,
    /// Field path, e.g. `tasks[1].id`.
    pub path: String,
    /// 1-based line and column in the YAML source, when known.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowErrorKind {
    Yaml,
    MissingProperty,
    InvalidProperty,
    UnknownType,
    DuplicateTaskId,
    InvalidId,
    InvalidCron,
}

/// Parses and validates one flow from its YAML source.
pub fn parse_flow(_source: &str) -> Result<Flow, Vec<FlowError>> {
    Err(vec![FlowError {
        kind: FlowErrorKind::Yaml,
        path: String::new(),
        line: None,
        column: None,
        message: "flow parsing is not available yet".into(),
    }])
}
