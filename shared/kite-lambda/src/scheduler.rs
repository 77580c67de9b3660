//! The scheduler function: the target of the Schedule triggers' schedules (EventBridge
//! Scheduler; their input names the trigger and carries the scheduled time) and of the
//! outbox sweeper's rate rule (a plain scheduled event).

use async_trait::async_trait;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, SubsecRound, Timelike, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::time::Instant;
use tracing::info;

use crate::dispatch::InFlight;
use crate::error::FnError;
use crate::shape::{detect, Shape};
use crate::stream::finish;
use crate::triggers::Triggers;

/// What the scheduler function expects, for error messages.
pub const EXPECTED: &str = "a schedule rule input {\"namespace\", \"flowId\", \"triggerId\", \"time\"?} \
                            or an EventBridge scheduled event (runs the outbox sweeper)";

/// Re-sends queue items whose delivery was lost (a crash between commit and send).
#[async_trait]
pub trait Sweeper: Send + Sync {
    /// Returns how many items were sent again.
    async fn sweep(&self, now: DateTime<Utc>) -> Result<usize, String>;
}

/// A Schedule trigger schedule's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleInput {
    pub namespace: String,
    pub flow_id: String,
    pub trigger_id: String,
    /// The scheduled time (EventBridge Scheduler fills in `<aws.scheduler.scheduled-time>`).
    #[serde(default)]
    pub time: Option<String>,
}

/// When a schedule fired: its scheduled `time` (whole seconds, UTC), else now truncated to
/// the minute (cron schedules fire on minute boundaries).
fn fired_at(time: Option<&str>) -> Result<DateTime<Utc>, FnError> {
    match time {
        Some(t) => DateTime::parse_from_rfc3339(t)
            .map(|d| d.with_timezone(&Utc).trunc_subsecs(0))
            .map_err(|e| FnError::InvalidPayload {
                what: "time (RFC 3339 expected)",
                message: format!("{t}: {e}"),
            }),
        None => {
            let now = Utc::now().trunc_subsecs(0);
            Ok(now - chrono::Duration::seconds(i64::from(now.second())))
        }
    }
}

/// Handles one scheduler invocation.
pub async fn handle(
    triggers: &dyn Triggers,
    sweeper: &dyn Sweeper,
    in_flight: &InFlight,
    event: Value,
    deadline: Instant,
) -> Result<Value, FnError> {
    let answer = match detect(&event) {
        Shape::ScheduleInput => {
            let input: ScheduleInput =
                serde_json::from_value(event).map_err(|e| FnError::InvalidPayload {
                    what: "schedule rule input",
                    message: e.to_string(),
                })?;
            let at = fired_at(input.time.as_deref())?;
            let created = triggers
                .fire_schedule(&input.namespace, &input.flow_id, &input.trigger_id, at)
                .await?;
            let ids: Vec<&str> = created.iter().map(|e| e.id.as_str()).collect();
            info!(namespace = %input.namespace, flow = %input.flow_id, trigger = %input.trigger_id, fired_at = %at, created = ?ids, "schedule fired");
            json!({"executions": ids})
        }
        Shape::ScheduledEvent => {
            let scheduled: EventBridgeEvent =
                serde_json::from_value(event).map_err(|e| FnError::InvalidPayload {
                    what: "EventBridge scheduled event",
                    message: e.to_string(),
                })?;
            let now = Utc::now();
            let resent = sweeper.sweep(now).await.map_err(FnError::Backend)?;
            let rules = scheduled.resources.unwrap_or_default();
            info!(resent, rules = ?rules, event_time = ?scheduled.time, "outbox swept");
            json!({"swept": resent})
        }
        other => {
            return Err(FnError::UnexpectedShape {
                function: "scheduler",
                got: other.describe(),
                expected: EXPECTED,
            })
        }
    };
    finish(in_flight, deadline).await;
    Ok(answer)
}
