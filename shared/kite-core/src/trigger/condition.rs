//! Trigger conditions (Kestra's `io.kestra.plugin.core.condition.*`): evaluated
//! against the upstream execution (Flow triggers), the candidate date (Schedule
//! triggers) or the request (Webhook triggers).

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveTime, Timelike, Weekday};
use serde_json::Value;

use crate::execution::{Execution, StateType};
use crate::expression::{is_truthy, write_pebble, ExpressionEngine, RenderContext};
// The registry of condition kinds lives with the other type names (flow validation uses it).
pub use crate::flow::{condition_kind as kind, CONDITION_KINDS as SUPPORTED};

/// A condition that cannot be evaluated: the trigger does not fire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConditionError {
    #[error("condition `{0}` is not supported by Kite")]
    Unsupported(String),
    #[error("invalid condition `{kind}`: {message}")]
    Invalid { kind: String, message: String },
}

/// What conditions look at.
pub struct ConditionContext<'a> {
    pub expressions: &'a ExpressionEngine,
    /// The variables expressions see (`trigger`, `flow`, `execution`, `outputs`…).
    pub variables: &'a Value,
    pub now: DateTime<chrono::Utc>,
    /// The execution that changed (Flow triggers).
    pub execution: Option<&'a Execution>,
}

/// Whether every condition holds (an empty list holds).
pub fn all_hold(conditions: &[Value], ctx: &ConditionContext) -> Result<bool, ConditionError> {
    for condition in conditions {
        if !holds(condition, ctx)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items.iter().map(write_pebble).collect(),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => vec![write_pebble(other)],
    }
}

fn invalid(kind: &str, message: impl Into<String>) -> ConditionError {
    ConditionError::Invalid {
        kind: kind.to_string(),
        message: message.into(),
    }
}

fn render(ctx: &ConditionContext, kind: &str, template: &str) -> Result<String, ConditionError> {
    ctx.expressions
        .render(template, &RenderContext::new(ctx.variables, ctx.now))
        .map_err(|e| invalid(kind, e.message))
}

fn upstream<'a>(ctx: &ConditionContext<'a>, kind: &str) -> Result<&'a Execution, ConditionError> {
    ctx.execution
        .ok_or_else(|| invalid(kind, "it needs an execution: use it on a Flow trigger"))
}

/// The date a date condition looks at: its `date` property rendered (default `{{ trigger.date }}`).
fn date(
    condition: &Value,
    ctx: &ConditionContext,
    kind: &str,
) -> Result<DateTime<FixedOffset>, ConditionError> {
    let template = condition
        .get("date")
        .map(write_pebble)
        .unwrap_or_else(|| "{{ trigger.date }}".to_string());
    let text = render(ctx, kind, &template)?;
    parse_date_time(text.trim()).ok_or_else(|| invalid(kind, format!("`{text}` is not a date")))
}

fn parse_date_time(text: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(text).ok().or_else(|| {
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc().fixed_offset())
    })
}

fn parse_time(text: &str) -> Option<NaiveTime> {
    let text = text.trim();
    // `10:00:00+02:00` or `10:00:00Z`: the offset is ignored, times compare on the wall clock.
    let wall = text
        .split(['+', 'Z'])
        .next()
        .map(|t| {
            t.rsplit_once('-')
                .filter(|(a, _)| a.contains(':'))
                .map_or(t, |(a, _)| a)
        })
        .unwrap_or(text);
    NaiveTime::parse_from_str(wall, "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(wall, "%H:%M:%S%.f"))
        .or_else(|_| NaiveTime::parse_from_str(wall, "%H:%M"))
        .ok()
}

fn weekday(name: &str) -> Option<Weekday> {
    name.parse::<Weekday>().ok()
}

/// Evaluates one condition.
pub fn holds(condition: &Value, ctx: &ConditionContext) -> Result<bool, ConditionError> {
    let kind = kind(condition);
    let get = |key: &str| condition.get(key);
    match kind {
        "Expression" => {
            let expression = get("expression").map(write_pebble).unwrap_or_default();
            Ok(is_truthy(&render(ctx, kind, &expression)?))
        }
        "ExecutionStatus" => {
            let state = upstream(ctx, kind)?.state.current;
            let listed = |key: &str| {
                strings(get(key))
                    .iter()
                    .filter_map(|s| StateType::parse(s))
                    .collect::<Vec<_>>()
            };
            let (within, without) = (listed("in"), listed("notIn"));
            Ok((within.is_empty() || within.contains(&state)) && !without.contains(&state))
        }
        "ExecutionFlow" => {
            let e = upstream(ctx, kind)?;
            let namespace = get("namespace").map(write_pebble).unwrap_or_default();
            let flow_id = get("flowId").map(write_pebble).unwrap_or_default();
            Ok(e.namespace == namespace && e.flow_id == flow_id)
        }
        "ExecutionNamespace" => {
            let e = upstream(ctx, kind)?;
            let namespace = get("namespace").map(write_pebble).unwrap_or_default();
            let prefix = get("prefix").and_then(Value::as_bool).unwrap_or(false);
            let comparison =
                get("comparison")
                    .and_then(Value::as_str)
                    .unwrap_or(if prefix { "PREFIX" } else { "EQUALS" });
            Ok(match comparison {
                "PREFIX" => e.namespace.starts_with(&namespace),
                "SUFFIX" => e.namespace.ends_with(&namespace),
                _ => e.namespace == namespace,
            })
        }
        "ExecutionLabels" => {
            let e = upstream(ctx, kind)?;
            let wanted: Vec<(String, String)> = match get("labels") {
                Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), write_pebble(v))).collect(),
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(|l| {
                        Some((l.get("key")?.as_str()?.to_string(), write_pebble(l.get("value")?)))
                    })
                    .collect(),
                _ => Vec::new(),
            };
            Ok(wanted
                .iter()
                .all(|(k, v)| e.labels.iter().any(|l| &l.key == k && &l.value == v)))
        }
        "ExecutionOutputs" => {
            let e = upstream(ctx, kind)?;
            if e.outputs.is_empty() {
                return Ok(false);
            }
            let expression = get("expression").map(write_pebble).unwrap_or_default();
            Ok(is_truthy(&render(ctx, kind, &expression)?))
        }
        "DayWeek" => {
            let day = get("dayOfWeek").and_then(Value::as_str).and_then(weekday);
            let day = day.ok_or_else(|| invalid(kind, "`dayOfWeek` must be a day such as MONDAY"))?;
            Ok(date(condition, ctx, kind)?.weekday() == day)
        }
        "DayWeekInMonth" => {
            let day = get("dayOfWeek").and_then(Value::as_str).and_then(weekday);
            let day = day.ok_or_else(|| invalid(kind, "`dayOfWeek` must be a day such as MONDAY"))?;
            let d = date(condition, ctx, kind)?;
            if d.weekday() != day {
                return Ok(false);
            }
            let nth = (d.day() - 1) / 7; // 0 = first such weekday of the month
            let is_last = NaiveDate::from_ymd_opt(d.year(), d.month(), d.day())
                .and_then(|n| n.checked_add_days(chrono::Days::new(7)))
                .is_none_or(|n| n.month() != d.month());
            match get("dayInMonth").and_then(Value::as_str) {
                Some("FIRST") => Ok(nth == 0),
                Some("SECOND") => Ok(nth == 1),
                Some("THIRD") => Ok(nth == 2),
                Some("FOURTH") => Ok(nth == 3),
                Some("LAST") => Ok(is_last),
                _ => Err(invalid(
                    kind,
                    "`dayInMonth` must be FIRST, SECOND, THIRD, FOURTH or LAST",
                )),
            }
        }
        "Weekend" => Ok(matches!(
            date(condition, ctx, kind)?.weekday(),
            Weekday::Sat | Weekday::Sun
        )),
        "TimeBetween" => {
            let t = date(condition, ctx, kind)?.time();
            let t = t.with_nanosecond(0).unwrap_or(t);
            let bound = |key: &str| -> Result<Option<NaiveTime>, ConditionError> {
                get(key)
                    .map(|v| {
                        parse_time(&write_pebble(v))
                            .ok_or_else(|| invalid(kind, format!("`{key}` is not a time")))
                    })
                    .transpose()
            };
            let (after, before) = (bound("after")?, bound("before")?);
            Ok(after.is_none_or(|a| t >= a) && before.is_none_or(|b| t <= b))
        }
        "DateTimeBetween" => {
            let d = date(condition, ctx, kind)?;
            let bound = |key: &str| -> Result<Option<DateTime<FixedOffset>>, ConditionError> {
                get(key)
                    .map(|v| {
                        let text = render(ctx, kind, &write_pebble(v))?;
                        parse_date_time(text.trim())
                            .ok_or_else(|| invalid(kind, format!("`{key}` is not a date")))
                    })
                    .transpose()
            };
            let (after, before) = (bound("after")?, bound("before")?);
            Ok(after.is_none_or(|a| d >= a) && before.is_none_or(|b| d <= b))
        }
        "Not" => {
            let inner = match get("conditions") {
                Some(Value::Array(items)) => items.as_slice(),
                _ => &[],
            };
            for c in inner {
                if holds(c, ctx)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        "Or" => {
            let inner = match get("conditions") {
                Some(Value::Array(items)) => items.as_slice(),
                _ => &[],
            };
            for c in inner {
                if holds(c, ctx)? {
                    return Ok(true);
                }
            }
            Ok(inner.is_empty())
        }
        other => Err(ConditionError::Unsupported(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(condition: Value, variables: Value) -> Result<bool, ConditionError> {
        let engine = ExpressionEngine::new();
        let ctx = ConditionContext {
            expressions: &engine,
            variables: &variables,
            now: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
            execution: None,
        };
        holds(&condition, &ctx)
    }

    #[test]
    fn legacy_and_current_type_names_give_one_kind() {
        assert_eq!(
            kind(&json!({"type": "io.kestra.plugin.core.condition.ExecutionStatus"})),
            "ExecutionStatus"
        );
        assert_eq!(
            kind(&json!({"type": "io.kestra.core.models.conditions.types.ExecutionStatusCondition"})),
            "ExecutionStatus"
        );
    }

    #[test]
    fn date_conditions_read_the_trigger_date() {
        // 2024-12-20 is a Friday, the third of the month.
        let vars = json!({"trigger": {"date": "2024-12-20T09:00:00-04:00"}});
        let c = |v: Value| check(v, vars.clone()).unwrap();
        assert!(c(
            json!({"type": "io.kestra.plugin.core.condition.DayWeek", "dayOfWeek": "FRIDAY"})
        ));
        assert!(!c(
            json!({"type": "io.kestra.plugin.core.condition.DayWeek", "dayOfWeek": "MONDAY"})
        ));
        assert!(!c(json!({"type": "io.kestra.plugin.core.condition.Weekend"})));
        assert!(c(
            json!({"type": "io.kestra.plugin.core.condition.DayWeekInMonth", "dayOfWeek": "FRIDAY", "dayInMonth": "THIRD"})
        ));
        assert!(!c(
            json!({"type": "io.kestra.plugin.core.condition.DayWeekInMonth", "dayOfWeek": "FRIDAY", "dayInMonth": "LAST"})
        ));
        assert!(c(
            json!({"type": "io.kestra.plugin.core.condition.TimeBetween", "after": "08:00:00", "before": "10:00:00"})
        ));
        assert!(!c(
            json!({"type": "io.kestra.plugin.core.condition.TimeBetween", "after": "09:30:00"})
        ));
        assert!(c(
            json!({"type": "io.kestra.plugin.core.condition.DateTimeBetween", "after": "2024-12-01T00:00:00Z", "before": "2024-12-31T00:00:00Z"})
        ));
        assert!(c(
            json!({"type": "io.kestra.plugin.core.condition.Not", "conditions": [{"type": "io.kestra.plugin.core.condition.Weekend"}]})
        ));
    }

    #[test]
    fn last_weekday_of_the_month() {
        let vars = json!({"trigger": {"date": "2024-12-27T09:00:00Z"}});
        assert!(check(
            json!({"type": "io.kestra.plugin.core.condition.DayWeekInMonth", "dayOfWeek": "FRIDAY", "dayInMonth": "LAST"}),
            vars
        )
        .unwrap());
    }

    #[test]
    fn expressions_and_unknown_kinds() {
        let vars = json!({"trigger": {"body": {"hello": "world"}}});
        assert!(check(json!({"type": "io.kestra.plugin.core.condition.Expression", "expression": "{{ trigger.body.hello == 'world' }}"}), vars.clone()).unwrap());
        assert!(!check(json!({"type": "io.kestra.plugin.core.condition.Expression", "expression": "{{ trigger.body.hello == 'webhook' }}"}), vars.clone()).unwrap());
        assert_eq!(
            check(
                json!({"type": "io.kestra.plugin.core.condition.PublicHoliday"}),
                vars
            ),
            Err(ConditionError::Unsupported("PublicHoliday".into()))
        );
    }
}
