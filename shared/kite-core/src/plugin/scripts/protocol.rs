//! Kestra's log line protocol: a line of a script's standard output or error that is
//! `::{…}::` carries JSON instead of a log message: `outputs` (a map merged into the task's
//! `vars`), `logs` (a list of `{"level", "message"}` logged as such) and `metrics` (which
//! Kite ignores). Any other line is a log line: INFO from stdout, ERROR from stderr.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::execution::LogLevel;

/// What a `::{…}::` line carries.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct LineData {
    #[serde(default)]
    pub outputs: Option<Map<String, Value>>,
    #[serde(default)]
    pub logs: Option<Vec<LogLine>>,
}

/// One entry of `logs`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LogLine {
    pub level: String,
    pub message: String,
}

/// How one line of output reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// A plain line, logged at the level of its stream.
    Log(LogLevel, String),
    /// A `::{…}::` line.
    Data(LineData),
    /// A `::{…}::` line whose JSON does not read: Kestra logs a warning.
    Invalid(String),
}

/// Reads one line (without its end of line) of standard output or error.
pub fn read_line(line: &str, std_err: bool) -> Line {
    let trimmed = line.trim_end_matches('\r');
    if let Some(json) = trimmed
        .strip_prefix("::")
        .and_then(|rest| rest.strip_suffix("::"))
        .filter(|json| json.starts_with('{') && json.ends_with('}'))
    {
        return match serde_json::from_str::<LineData>(json) {
            Ok(data) => Line::Data(data),
            Err(e) => Line::Invalid(format!("Invalid outputs '{e}'")),
        };
    }
    let level = if std_err { LogLevel::Error } else { LogLevel::Info };
    Line::Log(level, trimmed.to_string())
}

impl LogLine {
    /// The level Kestra would log it at (`WARNING` too); INFO when unknown.
    pub fn level(&self) -> LogLevel {
        LogLevel::parse(&self.level).unwrap_or(LogLevel::Info)
    }
}
