//! Why a flow is refused: [`FlowError`] and its kinds, and the wording every
//! check shares (what kind of value was found, "did you mean").

use serde_json::Value;

/// A flow that cannot be accepted, with where and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.display())]
pub struct FlowError {
    pub kind: FlowErrorKind,
    /// Field path, e.g. `tasks[1].id`.
    pub path: String,
    /// 1-based line and column in the YAML source, when known.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl FlowError {
    fn display(&self) -> String {
        match (self.path.is_empty(), self.line) {
            (true, Some(l)) => format!("{} (line {l})", self.message),
            (false, Some(l)) => format!(
                "{}: {} (line {l}, column {})",
                self.path,
                self.message,
                self.column.unwrap_or(1)
            ),
            (false, None) => format!("{}: {}", self.path, self.message),
            (true, None) => self.message.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowErrorKind {
    /// The source is not valid YAML, or not a single flow.
    Yaml,
    MissingProperty,
    /// A property has the wrong kind of value or an unaccepted value.
    InvalidProperty,
    UnknownProperty,
    /// Unknown task, trigger, input or output type.
    UnknownType,
    DuplicateTaskId,
    InvalidId,
    InvalidCron,
    DuplicateTriggerId,
    /// Two inputs (or two outputs) share an id.
    DuplicateInputId,
    /// `dependsOn` names a missing input or forms a cycle.
    InvalidDependency,
    /// A Subflow task starts the flow it belongs to.
    RecursiveSubflow,
}

pub(super) fn error(kind: FlowErrorKind, path: &str, message: impl Into<String>) -> FlowError {
    FlowError {
        kind,
        path: path.to_string(),
        line: None,
        column: None,
        message: message.into(),
    }
}

pub(super) fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// The declared property closest to a misspelt one (case-insensitive, a
/// third of its length in typos at most).
pub(super) fn closest_property<'a>(written: &str, known: &[&'a str]) -> Option<&'a str> {
    let lower = written.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (edit_distance(&lower, &k.to_ascii_lowercase()), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// ` (did you mean X?)` when a supported name is close to the written one:
/// same simple class name, or a few typos away.
pub(super) fn did_you_mean(written: &str, supported: &[&str]) -> String {
    let simple = |n: &str| n.rsplit('.').next().unwrap_or(n).to_ascii_lowercase();
    let written_simple = simple(written);
    supported
        .iter()
        .map(|s| (edit_distance(&written_simple, &simple(s)), *s))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, s)| format!(" (did you mean {s}?)"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(current)
            };
            prev = current;
        }
    }
    row[b.len()]
}
