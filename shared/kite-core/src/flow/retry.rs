//! Retry policies (`retry` of a flow or a task), with Kestra's bounds checks.

use serde_json::Value;

use super::error::FlowErrorKind;
use super::reader::{join_path, present, Parser};
use super::{Retry, RetryBehavior, RetryKind};
use crate::expression::write_pebble;

const RETRY_FIELDS: &[&str] = &[
    "type",
    "interval",
    "maxInterval",
    "delayFactor",
    "minInterval",
    "maxAttempt",
    "maxAttempts",
    "maxDuration",
    "warningOnRetry",
    "behavior",
];

impl Parser {
    pub(super) fn retry(&mut self, value: &Value, path: &str) -> Option<Retry> {
        let obj = self.object(value, path, "`retry`")?;
        self.check_fields(obj, path, &[RETRY_FIELDS], "`retry`");
        let kind_name = self.string(obj, path, "type", true)?;
        for key in ["interval", "maxInterval", "minInterval", "maxDuration"] {
            self.duration(obj, path, key);
        }
        let s = |p: &mut Self, k: &str| p.string(obj, path, k, true);
        let kind = match kind_name.as_str() {
            "constant" => RetryKind::Constant {
                interval: s(self, "interval")?,
            },
            "exponential" => {
                let interval = s(self, "interval");
                let max_interval = s(self, "maxInterval");
                RetryKind::Exponential {
                    interval: interval?,
                    max_interval: max_interval?,
                    delay_factor: present(obj, "delayFactor").and_then(Value::as_f64),
                }
            }
            "random" => {
                let min_interval = s(self, "minInterval");
                let max_interval = s(self, "maxInterval");
                RetryKind::Random {
                    min_interval: min_interval?,
                    max_interval: max_interval?,
                }
            }
            other => {
                self.err(
                    FlowErrorKind::InvalidProperty,
                    &join_path(path, "type"),
                    format!("Unknown retry type `{other}`: use constant, exponential or random"),
                );
                return None;
            }
        };
        let key = if obj.contains_key("maxAttempts") {
            "maxAttempts"
        } else {
            "maxAttempt"
        };
        let max_attempt = self.unsigned(obj, path, key);
        if max_attempt == Some(0) {
            self.err(
                FlowErrorKind::InvalidProperty,
                &join_path(path, key),
                format!("`{key}` must be greater than or equal to 1"),
            );
        }
        let behavior = match present(obj, "behavior").map(|b| (b, b.as_str())) {
            None | Some((_, Some("RETRY_FAILED_TASK"))) => RetryBehavior::RetryFailedTask,
            Some((_, Some("CREATE_NEW_EXECUTION"))) => RetryBehavior::CreateNewExecution,
            Some((b, _)) => {
                self.err(
                    FlowErrorKind::InvalidProperty,
                    &join_path(path, "behavior"),
                    format!(
                        "Unknown retry behavior `{}`: use RETRY_FAILED_TASK or CREATE_NEW_EXECUTION",
                        write_pebble(b)
                    ),
                );
                RetryBehavior::RetryFailedTask
            }
        };
        let max_duration = self.string(obj, path, "maxDuration", false);
        self.retry_bounds(&kind, max_duration.as_deref(), path);
        Some(Retry {
            kind,
            max_attempt,
            max_duration,
            warning_on_retry: self.boolean(obj, path, "warningOnRetry", false),
            behavior,
        })
    }

    /// Kestra's retry validators: an interval must stay below its bound.
    fn retry_bounds(&mut self, kind: &RetryKind, max_duration: Option<&str>, path: &str) {
        let millis = |d: &str| crate::input::parse_iso_duration(d).map(|d| d.num_milliseconds());
        let mut check = |first: (&str, &str), bound: (&str, &str), allow_equal: bool| {
            if let (Some(a), Some(b)) = (millis(first.1), millis(bound.1)) {
                if a > b || (a == b && !allow_equal) {
                    self.err(
                        FlowErrorKind::InvalidProperty,
                        &join_path(path, first.0),
                        format!("'{}' must be less than '{}' but is {}", first.0, bound.0, first.1),
                    );
                }
            }
        };
        match kind {
            RetryKind::Constant { interval } => {
                if let Some(max) = max_duration {
                    check(("interval", interval), ("maxDuration", max), true);
                }
            }
            RetryKind::Exponential {
                interval,
                max_interval,
                ..
            } => {
                if let Some(max) = max_duration {
                    check(("interval", interval), ("maxDuration", max), false);
                }
                check(("interval", interval), ("maxInterval", max_interval), false);
            }
            RetryKind::Random {
                min_interval,
                max_interval,
            } => check(
                ("minInterval", min_interval),
                ("maxInterval", max_interval),
                false,
            ),
        }
    }
}
