//! Flow triggers: a flow that runs when executions of other flows change state.
//!
//! [`FlowTrigger::evaluate`] decides, for one state change of an upstream execution,
//! whether a listener's Flow trigger fires: the state must be one it listens to, its
//! `conditions` must hold (against the upstream execution), and its `preconditions`
//! (flows and `where` filters that must all be met within a time window, possibly by
//! different executions) must be complete. The window's progress is trigger state,
//! stored by the caller between state changes.

use chrono::{DateTime, Duration, NaiveTime, SecondsFormat, TimeZone, Utc};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::condition::{self, ConditionContext, ConditionError};
use super::{labels_of, object_of, states_of};
use crate::execution::{Execution, Label, StateType};
use crate::expression::{is_truthy, write_pebble, RenderContext};
use crate::flow::{Trigger, TriggerType};
use crate::input::parse_iso_duration;

/// The current time window of a Flow trigger's `preconditions` and which of its
/// conditions executions have met in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreconditionWindow {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Condition name → the execution that met it, and when.
    #[serde(default)]
    pub satisfied: IndexMap<String, Satisfaction>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Satisfaction {
    pub execution_id: String,
    pub date: DateTime<Utc>,
}

/// The states a Flow trigger listens to when it lists none: the terminal states and
/// PAUSED (Kestra 0.23 and later).
pub const DEFAULT_STATES: &[StateType] = &[
    StateType::Failed,
    StateType::Warning,
    StateType::Success,
    StateType::Killed,
    StateType::Cancelled,
    StateType::Retried,
    StateType::Skipped,
    StateType::Paused,
];

/// How a precondition window moves.
#[derive(Debug, Clone, PartialEq)]
pub enum TimeWindow {
    /// Fixed windows of `window`, shifted by `advance` (default: a day from midnight UTC).
    Duration { window: Duration, advance: Duration },
    /// Each condition met stays met for `window`.
    Sliding { window: Duration },
    /// From midnight to `deadline` each day (UTC).
    DailyDeadline { deadline: NaiveTime },
    /// From `start` to `end` each day (UTC); changes outside it are ignored.
    DailyWindow { start: NaiveTime, end: NaiveTime },
}

/// One `flows` entry of the preconditions.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamFlow {
    pub namespace: String,
    pub flow_id: String,
    pub states: Vec<StateType>,
    pub labels: Vec<Label>,
}

/// One `where` entry: filters combined with AND or OR.
#[derive(Debug, Clone, PartialEq)]
pub struct Where {
    pub id: String,
    pub or: bool,
    pub filters: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Preconditions {
    pub time_window: TimeWindow,
    pub reset_on_success: bool,
    pub flows: Vec<UpstreamFlow>,
    pub wheres: Vec<Where>,
}

/// A Flow trigger, read from the flow.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowTrigger {
    pub id: String,
    pub states: Vec<StateType>,
    pub conditions: Vec<Value>,
    pub preconditions: Option<Preconditions>,
    pub inputs: IndexMap<String, Value>,
    pub stop_after: Vec<StateType>,
}

fn duration(value: Option<&Value>, default: Duration) -> Duration {
    value
        .and_then(Value::as_str)
        .and_then(parse_iso_duration)
        .unwrap_or(default)
}

fn time(value: Option<&Value>) -> Option<NaiveTime> {
    let text = value?.as_str()?;
    let wall = text.split(['+', 'Z']).next().unwrap_or(text);
    NaiveTime::parse_from_str(wall, "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(wall, "%H:%M"))
        .ok()
}

fn preconditions_of(p: &Value) -> Preconditions {
    let tw = p.get("timeWindow");
    let window = duration(tw.and_then(|t| t.get("window")), Duration::days(1));
    let time_window = match tw.and_then(|t| t.get("type")).and_then(Value::as_str) {
        Some("SLIDING_WINDOW") => TimeWindow::Sliding { window },
        Some("DAILY_TIME_DEADLINE") => TimeWindow::DailyDeadline {
            deadline: time(tw.and_then(|t| t.get("deadline"))).unwrap_or(NaiveTime::MIN),
        },
        Some("DAILY_TIME_WINDOW") => TimeWindow::DailyWindow {
            start: time(tw.and_then(|t| t.get("startTime"))).unwrap_or(NaiveTime::MIN),
            end: time(tw.and_then(|t| t.get("endTime")))
                .unwrap_or_else(|| NaiveTime::from_hms_opt(23, 59, 59).unwrap_or(NaiveTime::MIN)),
        },
        _ => TimeWindow::Duration {
            window,
            advance: duration(tw.and_then(|t| t.get("windowAdvance")), Duration::zero()),
        },
    };
    let flows = match p.get("flows") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|f| UpstreamFlow {
                namespace: f.get("namespace").map(write_pebble).unwrap_or_default(),
                flow_id: f.get("flowId").map(write_pebble).unwrap_or_default(),
                states: {
                    let s = states_of(f.get("states"));
                    if s.is_empty() {
                        vec![StateType::Success]
                    } else {
                        s
                    }
                },
                labels: labels_of(f.get("labels")),
            })
            .collect(),
        _ => Vec::new(),
    };
    let wheres = match p.get("where") {
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, w)| Where {
                id: w
                    .get("id")
                    .map(write_pebble)
                    .unwrap_or_else(|| format!("where-{i}")),
                or: w.get("operand").and_then(Value::as_str) == Some("OR"),
                filters: match w.get("filters") {
                    Some(Value::Array(f)) => f.clone(),
                    _ => Vec::new(),
                },
            })
            .collect(),
        _ => Vec::new(),
    };
    Preconditions {
        time_window,
        reset_on_success: p.get("resetOnSuccess").and_then(Value::as_bool).unwrap_or(true),
        flows,
        wheres,
    }
}

/// The legacy `MultipleCondition` (`window`, `conditions: {name: condition}`) as preconditions.
fn multiple_condition(c: &Value) -> Preconditions {
    let mut p = preconditions_of(&json!({
        "timeWindow": {"window": c.get("window"), "windowAdvance": c.get("windowAdvance")}
    }));
    if let Some(Value::Object(named)) = c.get("conditions") {
        p.wheres = named
            .iter()
            .map(|(name, condition)| Where {
                id: name.clone(),
                or: false,
                filters: vec![json!({"field": "CONDITION", "condition": condition})],
            })
            .collect();
    }
    p
}

/// The id of the execution a Flow trigger creates for one state change: the same change
/// seen twice (a duplicate delivery) gives the same id.
pub fn execution_id(
    upstream: &Execution,
    state: StateType,
    occurrence: usize,
    namespace: &str,
    flow_id: &str,
    trigger_id: &str,
) -> String {
    crate::id::derived_id(&format!(
        "flow-trigger\n{}\n{}\n{occurrence}\n{namespace}\n{flow_id}\n{trigger_id}",
        upstream.id,
        state.as_str()
    ))
}

/// How many times `execution` has entered `state` (1 for the first time), so that an
/// execution going RUNNING → PAUSED → RUNNING fires a RUNNING listener twice.
pub fn occurrence(execution: &Execution, state: StateType) -> usize {
    let from_history = execution
        .state
        .histories
        .iter()
        .filter(|h| h.state == state)
        .count();
    from_history.max(usize::from(execution.state.current == state))
}

/// `trigger.*` of the execution a Flow trigger creates.
pub fn trigger_variables(upstream: &Execution, state: StateType) -> IndexMap<String, Value> {
    let mut vars = IndexMap::new();
    vars.insert("executionId".into(), json!(upstream.id));
    vars.insert("namespace".into(), json!(upstream.namespace));
    vars.insert("flowId".into(), json!(upstream.flow_id));
    vars.insert("flowRevision".into(), json!(upstream.flow_revision));
    vars.insert("state".into(), json!(state.as_str()));
    vars.insert(
        "executionLabels".into(),
        Value::Object(
            upstream
                .labels
                .iter()
                .map(|l| (l.key.clone(), Value::String(l.value.clone())))
                .collect::<Map<_, _>>(),
        ),
    );
    let date = |d: Option<DateTime<Utc>>| {
        d.map(|d| Value::String(d.to_rfc3339_opts(SecondsFormat::Millis, true)))
            .unwrap_or(Value::Null)
    };
    vars.insert("startDate".into(), date(upstream.state.start_date));
    if upstream.state.current.is_terminated() {
        vars.insert("endDate".into(), date(upstream.state.end_date));
    }
    vars.insert(
        "outputs".into(),
        Value::Object(
            upstream
                .outputs
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
    );
    vars
}

/// What one state change does to a Flow trigger.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub fire: bool,
    /// The preconditions window to store (`None`: nothing to store).
    pub window: Option<PreconditionWindow>,
}

impl Outcome {
    fn ignore() -> Outcome {
        Outcome {
            fire: false,
            window: None,
        }
    }
}

impl FlowTrigger {
    /// `None` if the trigger is not a Flow trigger.
    pub fn from_trigger(trigger: &Trigger) -> Option<FlowTrigger> {
        if trigger.trigger_type != TriggerType::Flow {
            return None;
        }
        let p = &trigger.properties;
        let mut conditions = match p.get("conditions") {
            Some(Value::Array(items)) => items.clone(),
            _ => Vec::new(),
        };
        let mut preconditions = p.get("preconditions").map(preconditions_of);
        if let Some(i) = conditions.iter().position(|c| condition::kind(c) == "Multiple") {
            let legacy = conditions.remove(i);
            preconditions.get_or_insert_with(|| multiple_condition(&legacy));
        }
        let states = states_of(p.get("states"));
        Some(FlowTrigger {
            id: trigger.id.clone(),
            states: if states.is_empty() {
                DEFAULT_STATES.to_vec()
            } else {
                states
            },
            conditions,
            preconditions,
            inputs: object_of(p.get("inputs")),
            stop_after: states_of(p.get("stopAfter")),
        })
    }

    pub fn listens_to(&self, state: StateType) -> bool {
        self.states.contains(&state)
    }

    /// Decides what the upstream execution's change to `state` does. `ctx.variables` are
    /// the upstream's variables plus `trigger` ([`trigger_variables`]); `window` is the
    /// stored preconditions window, if any.
    pub fn evaluate(
        &self,
        listener: (&str, &str),
        upstream: &Execution,
        state: StateType,
        ctx: &ConditionContext,
        window: Option<&PreconditionWindow>,
    ) -> Result<Outcome, ConditionError> {
        // A flow never triggers itself.
        if (upstream.namespace.as_str(), upstream.flow_id.as_str()) == listener {
            return Ok(Outcome::ignore());
        }
        if !self.listens_to(state) || !condition::all_hold(&self.conditions, ctx)? {
            return Ok(Outcome::ignore());
        }
        let Some(pre) = &self.preconditions else {
            return Ok(Outcome {
                fire: true,
                window: None,
            });
        };
        let now = ctx.now;
        let Some((start, end)) = pre.time_window.bounds(now) else {
            return Ok(Outcome::ignore());
        };
        let mut current = match window {
            Some(w) if w.end > now && w.start <= now => w.clone(),
            _ => PreconditionWindow {
                start,
                end,
                satisfied: IndexMap::new(),
            },
        };
        if let TimeWindow::Sliding { window } = pre.time_window {
            current.satisfied.retain(|_, s| s.date + window > now);
            current.start = now - window;
            current.end = now + window;
        }
        let met = |name: String, current: &mut PreconditionWindow| {
            current.satisfied.insert(
                name,
                Satisfaction {
                    execution_id: upstream.id.clone(),
                    date: now,
                },
            );
        };
        let mut names = Vec::new();
        for (i, f) in pre.flows.iter().enumerate() {
            let name = format!("flow-{i}");
            names.push(name.clone());
            let matches = f.namespace == upstream.namespace
                && f.flow_id == upstream.flow_id
                && f.states.contains(&state)
                && f.labels.iter().all(|l| {
                    upstream
                        .labels
                        .iter()
                        .any(|u| u.key == l.key && u.value == l.value)
                });
            if matches {
                met(name, &mut current);
            }
        }
        for w in &pre.wheres {
            let name = format!("where-{}", w.id);
            names.push(name.clone());
            // In order, stopping at the first filter that decides (as Kestra's streams do):
            // a later expression may only make sense for the flows an earlier filter keeps.
            let mut holds = !w.or;
            for filter in &w.filters {
                if filter_holds(filter, upstream, state, ctx)? == w.or {
                    holds = w.or;
                    break;
                }
            }
            if holds {
                met(name, &mut current);
            }
        }
        let complete = names.iter().all(|n| current.satisfied.contains_key(n));
        if complete && pre.reset_on_success {
            current.satisfied.clear();
        }
        Ok(Outcome {
            fire: complete,
            window: Some(current),
        })
    }
}

impl TimeWindow {
    /// The window containing `now`; `None` when changes at `now` don't count.
    fn bounds(&self, now: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let midnight = Utc.from_utc_datetime(&now.date_naive().and_time(NaiveTime::MIN));
        match *self {
            TimeWindow::Duration { window, advance } => {
                let size = window.num_milliseconds().max(1);
                let shifted = now.timestamp_millis() - advance.num_milliseconds();
                let start_ms = shifted.div_euclid(size) * size + advance.num_milliseconds();
                let start = Utc.timestamp_millis_opt(start_ms).single()?;
                Some((start, start + window))
            }
            TimeWindow::Sliding { window } => Some((now - window, now + window)),
            TimeWindow::DailyDeadline { deadline } => {
                let end = midnight + (deadline - NaiveTime::MIN);
                (now < end).then_some((midnight, end))
            }
            TimeWindow::DailyWindow { start, end } => {
                let (s, e) = (
                    midnight + (start - NaiveTime::MIN),
                    midnight + (end - NaiveTime::MIN),
                );
                (now >= s && now <= e).then_some((s, e))
            }
        }
    }
}

/// One `where` filter: `{field, type, value | values}` on the upstream execution.
fn filter_holds(
    filter: &Value,
    upstream: &Execution,
    state: StateType,
    ctx: &ConditionContext,
) -> Result<bool, ConditionError> {
    let field = filter.get("field").and_then(Value::as_str).unwrap_or("");
    if field == "CONDITION" {
        return filter
            .get("condition")
            .map_or(Ok(false), |c| condition::holds(c, ctx));
    }
    let value = filter.get("value").map(write_pebble);
    let values: Vec<String> = match filter.get("values") {
        Some(Value::Array(items)) => items.iter().map(write_pebble).collect(),
        _ => Vec::new(),
    };
    let actual: Option<String> = match field {
        "FLOW_ID" => Some(upstream.flow_id.clone()),
        "NAMESPACE" => Some(upstream.namespace.clone()),
        "STATE" => Some(state.as_str().to_string()),
        "EXPRESSION" => {
            let template = value.clone().unwrap_or_default();
            let rendered = ctx
                .expressions
                .render(&template, &RenderContext::new(ctx.variables, ctx.now))
                .map_err(|e| ConditionError::Invalid {
                    kind: "preconditions.where".into(),
                    message: e.message,
                })?;
            Some(rendered)
        }
        other => {
            return Err(ConditionError::Invalid {
                kind: "preconditions.where".into(),
                message: format!("unknown field `{other}`: use FLOW_ID, NAMESPACE, STATE or EXPRESSION"),
            })
        }
    };
    let a = actual.unwrap_or_default();
    let v = if field == "EXPRESSION" {
        String::new()
    } else {
        value.unwrap_or_default()
    };
    let kind = filter.get("type").and_then(Value::as_str).unwrap_or("EQUAL_TO");
    Ok(match kind {
        "EQUAL_TO" => a == v,
        "NOT_EQUAL_TO" => a != v,
        "IN" => values.contains(&a),
        "NOT_IN" => !values.contains(&a),
        "IS_TRUE" => is_truthy(&a),
        "IS_FALSE" => !is_truthy(&a),
        "IS_NULL" => a.is_empty(),
        "IS_NOT_NULL" => !a.is_empty(),
        "STARTS_WITH" => a.starts_with(&v),
        "ENDS_WITH" => a.ends_with(&v),
        "CONTAINS" => a.contains(&v),
        "REGEX" => regex::Regex::new(&v)
            .map(|r| r.is_match(&a))
            .map_err(|e| ConditionError::Invalid {
                kind: "preconditions.where".into(),
                message: e.to_string(),
            })?,
        other => {
            return Err(ConditionError::Invalid {
                kind: "preconditions.where".into(),
                message: format!("unknown filter type `{other}`"),
            })
        }
    })
}
