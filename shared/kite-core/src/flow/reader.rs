//! The flow reader: [`Parser`] gathers every error of a flow in one pass, and
//! its property readers (strings, booleans, numbers, lists, maps, labels,
//! durations) refuse a wrong value in Kestra's words. Each part of a flow is
//! read by an `impl Parser` block in its own module.

use std::collections::HashSet;
use std::sync::LazyLock;

use indexmap::IndexMap;
use regex::Regex;
use serde_json::{Map, Value};

use super::defaults;
use super::error::{closest_property, describe, error, FlowError, FlowErrorKind};
use crate::expression::write_pebble;

pub(super) fn join_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub(super) fn last_segment(path: &str) -> &str {
    let tail = path.rsplit('.').next().unwrap_or(path);
    tail.split('[').next().unwrap_or(tail)
}

pub(super) fn present<'v>(obj: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    obj.get(key).filter(|v| !v.is_null())
}

/// Reads one flow document, gathering errors instead of stopping at the first.
pub(super) struct Parser {
    pub(super) errors: Vec<FlowError>,
    pub(super) defaults: defaults::Defaults,
    pub(super) task_ids: HashSet<String>,
    pub(super) flow_id: Option<String>,
    pub(super) namespace: Option<String>,
}

impl Parser {
    pub(super) fn err(&mut self, kind: FlowErrorKind, path: &str, message: impl Into<String>) {
        self.errors.push(error(kind, path, message));
    }

    pub(super) fn string(
        &mut self,
        obj: &Map<String, Value>,
        path: &str,
        key: &str,
        required: bool,
    ) -> Option<String> {
        match obj.get(key) {
            None | Some(Value::Null) => {
                if required {
                    self.err(
                        FlowErrorKind::MissingProperty,
                        &join_path(path, key),
                        format!("`{key}` is required"),
                    );
                }
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => Some(write_pebble(v)),
            Some(other) => {
                self.err(
                    FlowErrorKind::InvalidProperty,
                    &join_path(path, key),
                    format!("`{key}` must be a string, not {}", describe(other)),
                );
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, obj: &Map<String, Value>, path: &str, key: &str, default: bool) -> bool {
        match obj.get(key) {
            None | Some(Value::Null) => default,
            Some(Value::Bool(b)) => *b,
            // Kestra reads YAML 1.1, where yes/no/on/off are booleans too.
            Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
                "true" | "yes" | "y" | "on" => true,
                "false" | "no" | "n" | "off" => false,
                _ => {
                    self.err(
                        FlowErrorKind::InvalidProperty,
                        &join_path(path, key),
                        format!("`{key}` must be a boolean (true or false), not `{s}`"),
                    );
                    default
                }
            },
            Some(other) => {
                self.err(
                    FlowErrorKind::InvalidProperty,
                    &join_path(path, key),
                    format!("`{key}` must be a boolean, not {}", describe(other)),
                );
                default
            }
        }
    }

    pub(super) fn unsigned(&mut self, obj: &Map<String, Value>, path: &str, key: &str) -> Option<u32> {
        match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n <= u64::from(u32::MAX)) => {
                n.as_u64().and_then(|n| u32::try_from(n).ok())
            }
            Some(other) => {
                self.err(
                    FlowErrorKind::InvalidProperty,
                    &join_path(path, key),
                    format!(
                        "`{key}` must be a positive integer, not {}",
                        match other {
                            Value::Number(n) => n.to_string(),
                            v => describe(v).to_string(),
                        }
                    ),
                );
                None
            }
        }
    }

    pub(super) fn object<'v>(
        &mut self,
        value: &'v Value,
        path: &str,
        what: &str,
    ) -> Option<&'v Map<String, Value>> {
        match value {
            Value::Object(m) => Some(m),
            other => {
                self.err(
                    FlowErrorKind::InvalidProperty,
                    path,
                    format!("{what} must be a map, not {}", describe(other)),
                );
                None
            }
        }
    }

    /// A list property; anything else but absence is reported.
    pub(super) fn list<'v>(&mut self, value: Option<&'v Value>, path: &str, what: &str) -> &'v [Value] {
        match value {
            None | Some(Value::Null) => &[],
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.err(
                    FlowErrorKind::InvalidProperty,
                    path,
                    format!(
                        "`{}` must be a list of {what}, not {}",
                        last_segment(path),
                        describe(other)
                    ),
                );
                &[]
            }
        }
    }

    /// Refuses properties the plugin does not declare, as Kestra's strict
    /// parsing does, in Jackson's words plus a hint.
    pub(super) fn check_fields(
        &mut self,
        obj: &Map<String, Value>,
        path: &str,
        allowed: &[&[&str]],
        what: &str,
    ) {
        let known: Vec<&str> = allowed.iter().flat_map(|s| s.iter().copied()).collect();
        for key in obj.keys() {
            if known.contains(&key.as_str()) {
                continue;
            }
            let hint = match closest_property(key, &known) {
                Some(k) => format!("did you mean \"{k}\"?"),
                None => {
                    let mut sorted = known.clone();
                    sorted.sort_unstable();
                    format!("known properties: {}", sorted.join(", "))
                }
            };
            self.err(
                FlowErrorKind::UnknownProperty,
                &join_path(path, key),
                format!("Unrecognized field \"{key}\" ({what}), not marked as ignorable; {hint}"),
            );
        }
    }

    pub(super) fn labels(&mut self, value: Option<&Value>, path: &str) -> Vec<(String, String)> {
        match value {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), write_pebble(v))).collect(),
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{path}[{i}]");
                    match (item.get("key").and_then(Value::as_str), item.get("value")) {
                        (Some(k), Some(v)) => out.push((k.to_string(), write_pebble(v))),
                        _ => self.err(
                            FlowErrorKind::InvalidProperty,
                            &p,
                            "a label must have a `key` and a `value`",
                        ),
                    }
                }
                out
            }
            Some(other) => {
                self.err(
                    FlowErrorKind::InvalidProperty,
                    path,
                    format!(
                        "`labels` must be a map or a list of key/value, not {}",
                        describe(other)
                    ),
                );
                Vec::new()
            }
        }
    }

    pub(super) fn required(&mut self, obj: &Map<String, Value>, path: &str, key: &str) -> Option<Value> {
        match present(obj, key) {
            None => {
                self.err(
                    FlowErrorKind::MissingProperty,
                    &join_path(path, key),
                    format!("`{key}` is required"),
                );
                None
            }
            Some(v) => Some(v.clone()),
        }
    }

    /// A list, or a string expression that renders to one (checked when it renders).
    pub(super) fn list_or_expression(
        &mut self,
        obj: &Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<Value> {
        match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(value @ Value::Array(_)) => Some(value.clone()),
            Some(value @ Value::String(s)) if s.contains("{{") => Some(value.clone()),
            Some(other) => {
                self.err(
                    FlowErrorKind::InvalidProperty,
                    &join_path(path, key),
                    format!("`{key}` must be a list, not {}", describe(other)),
                );
                None
            }
        }
    }

    pub(super) fn map_of(
        &mut self,
        obj: &Map<String, Value>,
        path: &str,
        key: &str,
    ) -> IndexMap<String, Value> {
        match obj.get(key) {
            None | Some(Value::Null) => IndexMap::new(),
            Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Some(other) => {
                self.err(
                    FlowErrorKind::InvalidProperty,
                    &join_path(path, key),
                    format!("`{key}` must be a map, not {}", describe(other)),
                );
                IndexMap::new()
            }
        }
    }

    /// An ISO-8601 duration as Java's `Duration.parse` reads it (expressions are
    /// rendered later and not checked here).
    pub(super) fn duration(&mut self, obj: &Map<String, Value>, path: &str, key: &str) {
        match present(obj, key) {
            None => {}
            Some(Value::String(s)) if s.contains("{{") || is_iso_duration(s) => {}
            Some(other) => self.err(
                FlowErrorKind::InvalidProperty,
                &join_path(path, key),
                format!(
                    "`{key}` must be an ISO-8601 duration such as PT30S or P1DT2H, not `{}`",
                    write_pebble(other)
                ),
            ),
        }
    }
}

/// Whether Java's `Duration.parse` reads `s` (at least one component, no
/// dangling `T`).
fn is_iso_duration(s: &str) -> bool {
    ISO_DURATION.is_match(s) && s.bytes().any(|b| b.is_ascii_digit()) && !s.ends_with(['T', 't'])
}

// Java's `Duration.parse` format: days, hours, minutes, (fractional) seconds.
static ISO_DURATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?i)[-+]?P(?:[-+]?\d+D)?(?:T(?:[-+]?\d+H)?(?:[-+]?\d+M)?(?:[-+]?\d+(?:[.,]\d{0,9})?S)?)?$")
        .unwrap_or_else(|_| unreachable!("static pattern"))
});
