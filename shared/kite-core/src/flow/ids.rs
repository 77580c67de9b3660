//! Kestra's id patterns: flow ids, namespaces, task and trigger ids, input ids.

use std::sync::LazyLock;

use regex::Regex;

// Kestra's `@Pattern`s: Flow.id, Flow.namespace, TaskInterface.id / AbstractTrigger.id,
// Input.id (a `.` nests the input under `inputs`).
pub(super) const FLOW_ID_PATTERN: &str = "^[a-zA-Z0-9][a-zA-Z0-9._-]*";
pub(super) const NAMESPACE_PATTERN: &str = "^[a-z0-9][a-z0-9._-]*";
pub(super) const TASK_ID_PATTERN: &str = "^[a-zA-Z0-9][a-zA-Z0-9_-]*";
pub(super) const INPUT_ID_PATTERN: &str = "^[a-zA-Z0-9][.a-zA-Z0-9_-]*";

fn full_match(pattern: &str) -> Regex {
    // The patterns above are constants known to compile.
    Regex::new(&format!("{pattern}$")).unwrap_or_else(|_| unreachable!("static pattern"))
}

pub(super) static FLOW_ID: LazyLock<Regex> = LazyLock::new(|| full_match(FLOW_ID_PATTERN));
pub(super) static NAMESPACE: LazyLock<Regex> = LazyLock::new(|| full_match(NAMESPACE_PATTERN));
pub(super) static TASK_ID: LazyLock<Regex> = LazyLock::new(|| full_match(TASK_ID_PATTERN));
pub(super) static INPUT_ID: LazyLock<Regex> = LazyLock::new(|| full_match(INPUT_ID_PATTERN));
