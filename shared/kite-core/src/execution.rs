//! Executions, task runs and states, in Kestra's JSON shapes (serde form = API form).

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Kestra's `State.Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StateType {
    Created,
    Running,
    Paused,
    Restarted,
    Killing,
    Success,
    Warning,
    Failed,
    Killed,
    Cancelled,
    Queued,
    Retrying,
    Retried,
    Skipped,
}

impl StateType {
    /// Kestra's `State.Type.isTerminated`.
    pub fn is_terminated(self) -> bool {
        matches!(
            self,
            StateType::Failed
                | StateType::Warning
                | StateType::Success
                | StateType::Killed
                | StateType::Cancelled
                | StateType::Retried
                | StateType::Skipped
        )
    }

    pub fn is_failed(self) -> bool {
        matches!(self, StateType::Failed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StateType::Created => "CREATED",
            StateType::Running => "RUNNING",
            StateType::Paused => "PAUSED",
            StateType::Restarted => "RESTARTED",
            StateType::Killing => "KILLING",
            StateType::Success => "SUCCESS",
            StateType::Warning => "WARNING",
            StateType::Failed => "FAILED",
            StateType::Killed => "KILLED",
            StateType::Cancelled => "CANCELLED",
            StateType::Queued => "QUEUED",
            StateType::Retrying => "RETRYING",
            StateType::Retried => "RETRIED",
            StateType::Skipped => "SKIPPED",
        }
    }

    pub fn parse(s: &str) -> Option<StateType> {
        serde_json::from_value(Value::String(s.to_ascii_uppercase())).ok()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub state: StateType,
    pub date: DateTime<Utc>,
}

/// A state with its history; `duration`, `startDate` and `endDate` are derived
/// and written out for API compatibility.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub current: StateType,
    pub histories: Vec<History>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<DateTime<Utc>>,
}

impl State {
    pub fn new(state: StateType, at: DateTime<Utc>) -> State {
        let mut s = State {
            current: state,
            histories: vec![History { state, date: at }],
            duration: None,
            start_date: None,
            end_date: None,
        };
        s.refresh(at);
        s
    }

    /// Moves to `state` at `at` (a no-op when already in it).
    pub fn set(&mut self, state: StateType, at: DateTime<Utc>) {
        if self.current == state {
            return;
        }
        self.current = state;
        self.histories.push(History { state, date: at });
        self.refresh(at);
    }

    /// Recomputes the derived fields (`endDate` only once terminated or PAUSED).
    pub fn refresh(&mut self, now: DateTime<Utc>) {
        let start = self.histories.first().map(|h| h.date);
        let ended = self.current.is_terminated() || self.current == StateType::Paused;
        let end = if ended {
            self.histories.last().map(|h| h.date)
        } else {
            None
        };
        self.start_date = start;
        self.end_date = end;
        self.duration = start.map(|s| iso_duration(end.unwrap_or(now) - s));
    }

    pub fn is_terminated(&self) -> bool {
        self.current.is_terminated()
    }
}

/// Formats a duration the way Jackson writes `java.time.Duration` (`PT1.234S`).
pub fn iso_duration(d: chrono::Duration) -> String {
    let total_ms = d.num_milliseconds().max(0);
    let hours = total_ms / 3_600_000;
    let minutes = (total_ms % 3_600_000) / 60_000;
    let millis = total_ms % 60_000;
    let mut out = String::from("PT");
    if hours > 0 {
        out.push_str(&format!("{hours}H"));
    }
    if minutes > 0 {
        out.push_str(&format!("{minutes}M"));
    }
    if millis > 0 || (hours == 0 && minutes == 0) {
        let secs = millis / 1000;
        let frac = millis % 1000;
        if frac == 0 {
            out.push_str(&format!("{secs}S"));
        } else {
            let f = format!("{frac:03}");
            out.push_str(&format!("{secs}.{}S", f.trim_end_matches('0')));
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRunAttempt {
    pub state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_file: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRun {
    pub id: String,
    pub execution_id: String,
    pub namespace: String,
    pub flow_id: String,
    pub task_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_task_run_id: Option<String>,
    /// The iteration value for children of ForEach/EachX tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default)]
    pub attempts: Vec<TaskRunAttempt>,
    /// `{}` for tasks without outputs, absent (null) for flowable parents.
    #[serde(default)]
    pub outputs: Option<IndexMap<String, Value>>,
    pub state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iteration: Option<u32>,
    /// The values a ForEach/EachSequential/EachParallel resolved when it started,
    /// kept so that later steps never render `values` again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iteration_values: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionTrigger {
    pub id: String,
    #[serde(rename = "type")]
    pub type_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<IndexMap<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_file: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionMetadata {
    pub attempt_number: u32,
    pub original_created_date: DateTime<Utc>,
}

/// A flow execution, serialized exactly as Kestra's API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    pub id: String,
    pub namespace: String,
    pub flow_id: String,
    pub flow_revision: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_run_list: Option<Vec<TaskRun>>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub inputs: IndexMap<String, Value>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub outputs: IndexMap<String, Value>,
    #[serde(default)]
    pub labels: Vec<Label>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<IndexMap<String, Value>>,
    pub state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<ExecutionTrigger>,
    #[serde(default)]
    pub deleted: bool,
    pub metadata: ExecutionMetadata,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_date: Option<DateTime<Utc>>,
    /// Lookup tables over `task_run_list`, rebuilt on demand (never serialized).
    #[serde(skip)]
    pub(crate) index: TaskRunIndex,
}

/// Task runs by id and by (parent, task id, value), so that each step of the
/// state machine costs what it touches, not the size of the execution.
#[derive(Debug, Clone, Default)]
pub(crate) struct TaskRunIndex {
    pub(crate) indexed: usize,
    pub(crate) by_id: std::collections::HashMap<String, usize>,
    /// parent task run id ("" for the root) → task id → value ("\0" for none) → position
    pub(crate) by_parent: std::collections::HashMap<
        String,
        std::collections::HashMap<String, std::collections::HashMap<String, usize>>,
    >,
    /// Per ForEach task run: how many leading iterations ended well, and their
    /// combined state (derived data: losing it only costs a re-scan).
    pub(crate) each_cursor: std::collections::HashMap<String, (usize, crate::execution::StateType)>,
    /// Per task list (parent task run, iteration value, first task): how many leading
    /// tasks ended well, and their combined state (derived data, like `each_cursor`).
    pub(crate) list_cursor: std::collections::HashMap<String, (usize, crate::execution::StateType)>,
}

impl PartialEq for TaskRunIndex {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

pub(crate) const NO_VALUE: &str = "\0";

impl Execution {
    /// Brings the index up to date with `task_run_list` (task runs are only appended).
    pub(crate) fn sync_index(&mut self) {
        let runs = self.task_run_list.as_deref().unwrap_or(&[]);
        if self.index.indexed > runs.len() {
            self.index = TaskRunIndex::default();
        }
        for (i, tr) in runs.iter().enumerate().skip(self.index.indexed) {
            self.index.by_id.insert(tr.id.clone(), i);
            self.index
                .by_parent
                .entry(tr.parent_task_run_id.clone().unwrap_or_default())
                .or_default()
                .entry(tr.task_id.clone())
                .or_default()
                .insert(tr.value.clone().unwrap_or_else(|| NO_VALUE.to_string()), i);
        }
        self.index.indexed = runs.len();
    }

    /// Position of the task run of `task_id` under `parent` for `value`.
    pub(crate) fn find_child(
        &self,
        parent: Option<&str>,
        task_id: &str,
        value: Option<&str>,
    ) -> Option<usize> {
        self.index
            .by_parent
            .get(parent.unwrap_or(""))?
            .get(task_id)?
            .get(value.unwrap_or(NO_VALUE))
            .copied()
    }

    pub(crate) fn position(&self, task_run_id: &str) -> Option<usize> {
        self.index.by_id.get(task_run_id).copied()
    }

    pub fn task_runs(&self) -> &[TaskRun] {
        self.task_run_list.as_deref().unwrap_or(&[])
    }

    /// A task run by id: through the index when it is up to date, else by scanning.
    pub fn find_task_run(&self, id: &str) -> Option<&TaskRun> {
        match self.index.by_id.get(id) {
            Some(&i) if self.index.indexed == self.task_runs().len() => self.task_runs().get(i),
            _ => self.task_runs().iter().find(|t| t.id == id),
        }
    }
}

/// What a task run's attempt ended with (a light task run inline, a worker, a
/// timer or a subflow).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskResult {
    pub state: StateType,
    pub outputs: IndexMap<String, Value>,
    pub logs: Vec<LogEntry>,
}

/// The level of a log line, lowest first (`TRACE` … `ERROR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    Trace,
    Debug,
    #[default]
    Info,
    #[serde(alias = "WARNING")]
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "TRACE",
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
        }
    }

    /// The level's place in `TRACE` (0) < … < `ERROR` (4), as stores index it.
    pub fn rank(self) -> u8 {
        self as u8
    }

    pub fn parse(s: &str) -> Option<LogLevel> {
        match s.to_ascii_uppercase().as_str() {
            "TRACE" => Some(LogLevel::Trace),
            "DEBUG" => Some(LogLevel::Debug),
            "INFO" => Some(LogLevel::Info),
            "WARN" | "WARNING" => Some(LogLevel::Warn),
            "ERROR" => Some(LogLevel::Error),
            _ => None,
        }
    }
}

impl std::fmt::Display for LogLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One log line of an execution (Kestra's `LogEntry`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    pub namespace: String,
    pub flow_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    pub execution_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt_number: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_id: Option<String>,
    pub timestamp: DateTime<Utc>,
    pub level: LogLevel,
    pub thread: Option<String>,
    pub message: String,
}

impl LogEntry {
    /// An execution-level line (no task run).
    pub fn for_execution(
        execution: &Execution,
        level: LogLevel,
        message: impl Into<String>,
        at: DateTime<Utc>,
    ) -> LogEntry {
        LogEntry {
            namespace: execution.namespace.clone(),
            flow_id: execution.flow_id.clone(),
            task_id: None,
            execution_id: execution.id.clone(),
            task_run_id: None,
            attempt_number: None,
            trigger_id: None,
            timestamp: at,
            level,
            thread: None,
            message: message.into(),
        }
    }

    /// A line of a task run's current attempt.
    pub fn for_task_run(
        execution: &Execution,
        task_run: &TaskRun,
        level: LogLevel,
        message: impl Into<String>,
        at: DateTime<Utc>,
    ) -> LogEntry {
        LogEntry {
            task_id: Some(task_run.task_id.clone()),
            task_run_id: Some(task_run.id.clone()),
            attempt_number: Some(task_run.attempts.len().max(1) as u32),
            ..LogEntry::for_execution(execution, level, message, at)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_written_like_java() {
        assert_eq!(iso_duration(chrono::Duration::milliseconds(1234)), "PT1.234S");
        assert_eq!(iso_duration(chrono::Duration::milliseconds(200)), "PT0.2S");
        assert_eq!(iso_duration(chrono::Duration::seconds(3725)), "PT1H2M5S");
        assert_eq!(iso_duration(chrono::Duration::zero()), "PT0S");
    }

    #[test]
    fn end_date_only_once_terminated() {
        let t0 = DateTime::parse_from_rfc3339("2024-12-20T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut s = State::new(StateType::Created, t0);
        s.set(StateType::Running, t0 + chrono::Duration::milliseconds(10));
        assert!(s.end_date.is_none());
        s.set(StateType::Success, t0 + chrono::Duration::milliseconds(210));
        assert_eq!(s.duration.as_deref(), Some("PT0.21S"));
        assert!(s.end_date.is_some());
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["histories"][2]["state"], "SUCCESS");
    }
}
