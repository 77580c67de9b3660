//! Triggers: the properties every trigger shares, those of each trigger type
//! (Schedule's cron and time zone, Webhook's key) and their conditions.

use serde_json::Value;

use super::error::{did_you_mean, FlowErrorKind};
use super::ids::{TASK_ID, TASK_ID_PATTERN};
use super::reader::{join_path, present, Parser};
use super::{Trigger, TriggerType};
use crate::expression::write_pebble;

/// Execution states (`State.Type`), as triggers list them.
const STATES: &[&str] = &[
    "CREATED",
    "RUNNING",
    "PAUSED",
    "RESTARTED",
    "KILLING",
    "SUCCESS",
    "WARNING",
    "FAILED",
    "KILLED",
    "CANCELLED",
    "QUEUED",
    "RETRYING",
    "RETRIED",
    "SKIPPED",
    "BREAKPOINT",
    "SUBMITTED",
    "RESUBMITTED",
];

const TRIGGER_FIELDS: &[&str] = &[
    "id",
    "type",
    "description",
    "conditions",
    "disabled",
    "workerGroup",
    "logLevel",
    "labels",
    "stopAfter",
    "logToFile",
    "minLogLevel",
    "when",
];

fn trigger_fields(t: TriggerType) -> &'static [&'static str] {
    match t {
        TriggerType::Webhook => &[
            "key",
            "inputs",
            "wait",
            "returnOutputs",
            "responseContentType",
            "responseCode",
            "fetchType",
            // Kite extensions: see `trigger::webhook::SignatureSpec`.
            "signature",
            "deliveryId",
        ],
        TriggerType::Schedule => &[
            "cron",
            "withSeconds",
            "timezone",
            "inputs",
            "scheduleConditions",
            "lateMaximumDelay",
            "recoverMissedSchedules",
            "backfill",
            "interval",
        ],
        TriggerType::Flow => &[
            "states",
            "inputs",
            "preconditions",
            "dependsOn",
            "window",
            "mode",
            "minSatisfied",
        ],
    }
}

/// A cron expression that does not parse, with the parser's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CronParseError {
    pub message: String,
}

/// Parses a cron expression as Schedule triggers do (5 fields, or 6 with seconds
/// first; `@daily`-style nicknames).
pub fn parse_cron(expression: &str, with_seconds: bool) -> Result<croner::Cron, CronParseError> {
    use croner::parser::{CronParser, Seconds, Year};
    let seconds = if with_seconds && !expression.trim_start().starts_with('@') {
        Seconds::Required
    } else {
        Seconds::Disallowed
    };
    CronParser::builder()
        .seconds(seconds)
        .year(Year::Disallowed)
        .build()
        .parse(expression)
        .map_err(|e| CronParseError {
            message: e.to_string(),
        })
}

impl Parser {
    pub(super) fn trigger(&mut self, value: &Value, path: &str) -> Option<Trigger> {
        let written = self.object(value, path, "a trigger")?;
        let id = self.string(written, path, "id", true);
        if let Some(id) = &id {
            if !TASK_ID.is_match(id) {
                self.err(
                    FlowErrorKind::InvalidId,
                    &join_path(path, "id"),
                    format!("Invalid trigger id `{id}`: it must match \"{TASK_ID_PATTERN}\""),
                );
            }
        }
        let type_name = self.string(written, path, "type", true)?;
        let Some(trigger_type) = TriggerType::from_name(&type_name) else {
            let supported = TriggerType::supported_names();
            self.err(
                FlowErrorKind::UnknownType,
                &join_path(path, "type"),
                format!(
                    "Invalid type: {type_name}{}; supported trigger types: {}",
                    did_you_mean(&type_name, &supported),
                    supported.join(", ")
                ),
            );
            return None;
        };
        self.check_fields(
            written,
            path,
            &[TRIGGER_FIELDS, trigger_fields(trigger_type)],
            &format!("class {}", trigger_type.name()),
        );
        // Defaults reach the trigger and its conditions.
        let defaulted = self.defaults.apply_deep(value);
        let obj = defaulted.as_object().unwrap_or(written);
        match trigger_type {
            TriggerType::Schedule => {
                if let Some(cron) = self.string(obj, path, "cron", true) {
                    let with_seconds = self.boolean(obj, path, "withSeconds", false);
                    if let Err(e) = parse_cron(&cron, with_seconds) {
                        self.err(
                            FlowErrorKind::InvalidCron,
                            &join_path(path, "cron"),
                            format!(
                                "Invalid cron expression `{cron}`: {e} (expected {} fields, or a nickname such as @daily)",
                                if with_seconds { "6 fields, seconds first" } else { "5" }
                            ),
                        );
                    }
                }
                if let Some(tz) = self.string(obj, path, "timezone", false) {
                    if tz.parse::<chrono_tz::Tz>().is_err() {
                        self.err(
                            FlowErrorKind::InvalidProperty,
                            &join_path(path, "timezone"),
                            format!("Unknown time zone `{tz}`: use an IANA name such as Europe/Paris or UTC"),
                        );
                    }
                }
                self.duration(obj, path, "lateMaximumDelay");
            }
            TriggerType::Webhook => {
                if let Some(key) = self.string(obj, path, "key", true) {
                    if key.len() > 256 {
                        self.err(
                            FlowErrorKind::InvalidProperty,
                            &join_path(path, "key"),
                            "`key` must be at most 256 characters",
                        );
                    }
                }
                if let Some(signature) = obj.get("signature") {
                    if let Err(e) = super::webhook_signature::SignatureSpec::parse(signature) {
                        let at = join_path(path, "signature");
                        self.err(
                            FlowErrorKind::InvalidProperty,
                            &if e.property.is_empty() {
                                at
                            } else {
                                join_path(&at, e.property)
                            },
                            e.message,
                        );
                    }
                }
            }
            TriggerType::Flow => {}
        }
        if trigger_type == TriggerType::Schedule {
            if let Some(r) = present(obj, "recoverMissedSchedules") {
                if !matches!(r.as_str(), Some("ALL" | "LAST" | "NONE")) {
                    self.err(
                        FlowErrorKind::InvalidProperty,
                        &join_path(path, "recoverMissedSchedules"),
                        format!("Unknown value `{}`: use ALL, LAST or NONE", write_pebble(r)),
                    );
                }
            }
        }
        for key in ["stopAfter", "states"] {
            let list_path = join_path(path, key);
            for (i, state) in self.list(obj.get(key), &list_path, "states").iter().enumerate() {
                if !state.as_str().is_some_and(|s| STATES.contains(&s)) {
                    self.err(
                        FlowErrorKind::InvalidProperty,
                        &format!("{list_path}[{i}]"),
                        format!(
                            "Unknown state `{}`; states: {}",
                            write_pebble(state),
                            STATES.join(", ")
                        ),
                    );
                }
            }
        }
        let conditions_path = join_path(path, "conditions");
        for (i, condition) in self
            .list(obj.get("conditions"), &conditions_path, "conditions")
            .iter()
            .enumerate()
        {
            let item = format!("{conditions_path}[{i}]");
            let Some(c) = self.object(condition, &item, "a condition") else {
                continue;
            };
            if let Some(t) = self.string(c, &item, "type", true) {
                let kind = super::condition_kind(condition);
                if !super::CONDITION_KINDS.contains(&kind) {
                    self.err(
                        FlowErrorKind::UnknownType,
                        &join_path(&item, "type"),
                        format!(
                            "Unsupported condition type `{t}`; supported: {}",
                            super::CONDITION_KINDS.join(", ")
                        ),
                    );
                }
                if trigger_type == TriggerType::Webhook && t.ends_with(".MultipleCondition") {
                    self.err(
                        FlowErrorKind::InvalidProperty,
                        &join_path(&item, "type"),
                        "invalid webhook: conditions of type MultipleCondition are not supported",
                    );
                }
            }
        }
        self.map_of(obj, path, "inputs");
        let disabled = self.boolean(obj, path, "disabled", false);
        Some(Trigger {
            id: id?,
            type_name,
            trigger_type,
            disabled,
            properties: obj.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_nicknames_and_seconds() {
        assert!(parse_cron("@daily", false).is_ok());
        assert!(parse_cron("@hourly", true).is_ok());
        assert!(parse_cron("*/5 * * * *", false).is_ok());
        assert!(parse_cron("0 */5 * * * *", true).is_ok());
        assert!(parse_cron("0 */5 * * * *", false).is_err());
        assert!(parse_cron("* * * *", false).is_err());
        assert!(parse_cron("0 9 * * 7", false).is_ok());
    }
}
