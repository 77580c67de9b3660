//! Trigger rules: when Schedule, Flow and Webhook triggers fire, and with what.
//!
//! Everything here is pure: the local scheduler, the scheduler Lambda (EventBridge)
//! and the stream Lambda (DynamoDB streams) call the same functions, so a flow
//! fires the same way on a laptop and on AWS.
//!
//! - [`schedule`]: cron in a time zone, due dates, missed-schedule recovery,
//!   backfill, and the EventBridge expressions that cover a trigger.
//! - [`flow_trigger`]: which executions fire a Flow trigger, and preconditions.
//! - [`webhook`]: which Webhook trigger a request opens, and with what.
//! - [`condition`]: the conditions shared by every trigger kind.

pub mod condition;
pub mod flow_trigger;
pub mod schedule;
pub mod webhook;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::execution::{Label, StateType};
use crate::expression::write_pebble;

/// What Kite remembers about one trigger between firings (Kestra's trigger context).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerState {
    pub namespace: String,
    pub flow_id: String,
    pub trigger_id: String,
    /// Schedule: the last scheduled date that was handled (fired or skipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<DateTime<Utc>>,
    /// Schedule: the next date to handle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_execution_date: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backfill: Option<Backfill>,
    /// Disabled through the API or by `stopAfter` (the flow's `disabled: true` is separate).
    #[serde(default)]
    pub disabled: bool,
    /// The last execution this trigger created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_date: Option<DateTime<Utc>>,
    /// Flow trigger `preconditions`: what the current window has seen so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preconditions: Option<flow_trigger::PreconditionWindow>,
}

impl TriggerState {
    pub fn new(namespace: &str, flow_id: &str, trigger_id: &str) -> TriggerState {
        TriggerState {
            namespace: namespace.to_string(),
            flow_id: flow_id.to_string(),
            trigger_id: trigger_id.to_string(),
            date: None,
            next_execution_date: None,
            backfill: None,
            disabled: false,
            execution_id: None,
            updated_date: None,
            preconditions: None,
        }
    }
}

/// A backfill of a Schedule trigger: every date in `[start, end]` is fired once, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Backfill {
    pub start: DateTime<Utc>,
    /// `None`: up to now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime<Utc>>,
    /// The next date to fire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_date: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub inputs: IndexMap<String, Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<Label>,
    #[serde(default)]
    pub paused: bool,
}

/// Trigger `labels`, written as a map or as a list of `{key, value}`.
pub fn labels_of(value: Option<&Value>) -> Vec<Label> {
    match value {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| Label {
                key: k.clone(),
                value: write_pebble(v),
            })
            .collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|l| {
                Some(Label {
                    key: l.get("key")?.as_str()?.to_string(),
                    value: write_pebble(l.get("value")?),
                })
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A list of state names (`states`, `stopAfter`); unknown names are left out (validation
/// reports them when the flow is saved).
pub fn states_of(value: Option<&Value>) -> Vec<StateType> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|s| s.as_str().and_then(StateType::parse))
            .collect(),
        _ => Vec::new(),
    }
}

/// A map property (`inputs`), empty when absent.
pub(crate) fn object_of(value: Option<&Value>) -> IndexMap<String, Value> {
    match value {
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => IndexMap::new(),
    }
}
