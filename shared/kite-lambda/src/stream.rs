//! The stream function: DynamoDB stream batches of the table. Execution items whose `state`
//! changed (the template's event filter lets only those through; checked again here) fire
//! the Flow triggers that match. The first record that fails is reported as the batch item
//! failure: Lambda retries the stream from there, so order is kept.

use async_trait::async_trait;
use kite_core::execution::Execution;
use serde_json::{json, Map, Value};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::ddb_json;
use crate::dispatch::InFlight;
use crate::error::FnError;
use crate::shape::{detect, Shape};
use crate::triggers::Triggers;

const EXPECTED: &str =
    "a DynamoDB stream batch {\"Records\": [{\"eventSource\": \"aws:dynamodb\", \"dynamodb\": {...}}]}";

/// Prefix of execution items' partition key (`pk = EXEC#{id}`, `sk = EXEC`).
const EXEC_PK: &str = "EXEC#";
const EXEC_SK: &str = "EXEC";

/// Reads the execution an item image holds (the store knows its attributes and where a
/// large body went).
#[async_trait]
pub trait ExecutionImages: Send + Sync {
    /// `None` for images that hold no live execution.
    async fn execution(&self, image: &Value) -> Result<Option<Execution>, String>;
}

/// What one stream record means to Kite.
#[derive(Debug, PartialEq)]
pub enum Change {
    /// An execution item whose state changed.
    Execution { id: String },
    /// Anything else (other items, same state, removals).
    Ignored(&'static str),
}

/// Reads one stream record.
pub fn change_of(record: &Value) -> Change {
    let Some(ddb) = record.get("dynamodb") else {
        return Change::Ignored("record without a dynamodb section");
    };
    if record.get("eventName").and_then(Value::as_str) == Some("REMOVE") {
        return Change::Ignored("removal");
    }
    let Some(new) = ddb.get("NewImage").and_then(ddb_json::image) else {
        return Change::Ignored("no readable NewImage");
    };
    let text = |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
    let (Some(pk), Some(sk)) = (text(&new, "pk"), text(&new, "sk")) else {
        return Change::Ignored("not a Kite item");
    };
    let Some(id) = pk.strip_prefix(EXEC_PK).filter(|_| sk == EXEC_SK) else {
        return Change::Ignored("not an execution item");
    };
    let old_state = ddb
        .get("OldImage")
        .and_then(ddb_json::image)
        .and_then(|old| text(&old, "state"));
    if old_state.is_some() && old_state == text(&new, "state") {
        return Change::Ignored("state unchanged");
    }
    Change::Execution { id: id.to_string() }
}

/// Handles a stream batch; answers `{"batchItemFailures": [...]}`.
pub async fn handle(
    images: &dyn ExecutionImages,
    triggers: &dyn Triggers,
    in_flight: &InFlight,
    event: Value,
    deadline: Instant,
) -> Result<Value, FnError> {
    match detect(&event) {
        Shape::DynamoDbStream => {}
        other => {
            return Err(FnError::UnexpectedShape {
                function: "stream",
                got: other.describe(),
                expected: EXPECTED,
            })
        }
    }
    let records = event
        .get("Records")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for record in &records {
        let sequence = record
            .pointer("/dynamodb/SequenceNumber")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let id = match change_of(record) {
            Change::Ignored(why) => {
                debug!(sequence = %sequence, why, "stream record ignored");
                continue;
            }
            Change::Execution { id } => id,
        };
        if let Err(e) = fire(images, triggers, record).await {
            warn!(execution = %id, sequence = %sequence, error = %e, "flow triggers failed; retried from this record");
            finish(in_flight, deadline).await;
            return Ok(json!({"batchItemFailures": [{"itemIdentifier": sequence}]}));
        }
    }
    finish(in_flight, deadline).await;
    Ok(json!({"batchItemFailures": []}))
}

async fn fire(images: &dyn ExecutionImages, triggers: &dyn Triggers, record: &Value) -> Result<(), String> {
    let Some(new) = record.pointer("/dynamodb/NewImage") else {
        return Ok(());
    };
    let Some(execution) = images.execution(new).await? else {
        return Ok(());
    };
    let previous = match record.pointer("/dynamodb/OldImage") {
        Some(old) => images.execution(old).await?,
        None => None,
    };
    triggers
        .execution_changed(previous.as_ref(), &execution)
        .await
        .map_err(|e| e.to_string())
}

/// Lets the executions the triggers created run their light tasks before the process freezes.
pub(crate) async fn finish(in_flight: &InFlight, deadline: Instant) {
    if !in_flight.wait_idle(deadline).await {
        warn!(
            running = in_flight.running(),
            "in-process work unfinished at the deadline"
        );
    }
}
