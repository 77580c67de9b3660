//! The stream function: DynamoDB stream batches of the table. Execution items whose `state`
//! changed (the template's event filter lets only those through; checked again here) fire
//! the Flow triggers that match. The first record that fails is reported as the batch item
//! failure: Lambda retries the stream from there, so order is kept.

use async_trait::async_trait;
use aws_lambda_events::dynamodb::EventRecord;
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use kite_core::execution::Execution;
use serde_dynamo::AttributeValue;
use serde_json::Value;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::dispatch::InFlight;
use crate::error::FnError;
use crate::shape::{self, Shape};
use crate::triggers::Triggers;

/// An item image of a stream record (`NewImage`, `OldImage`), its attributes decoded.
pub use serde_dynamo::Item;

/// What the stream function expects, for error messages.
pub const EXPECTED: &str =
    "a DynamoDB stream batch {\"Records\": [{\"eventSource\": \"aws:dynamodb\", \"dynamodb\": {...}}]}";

/// Prefix of execution items' partition key (`pk = EXEC#{id}`, `sk = EXEC`).
const EXEC_PK: &str = "EXEC#";
const EXEC_SK: &str = "EXEC";

/// Reads the execution an item image holds (the store knows its attributes and where a
/// large body went).
#[async_trait]
pub trait ExecutionImages: Send + Sync {
    /// `None` for images that hold no live execution.
    async fn execution(&self, image: Item) -> Result<Option<Execution>, String>;
}

/// What one stream record means to Kite.
#[derive(Debug, PartialEq)]
pub enum Change {
    /// An execution item whose state changed.
    Execution { id: String },
    /// Anything else (other items, same state, removals).
    Ignored(&'static str),
}

fn text<'a>(image: &'a Item, name: &str) -> Option<&'a str> {
    match image.get(name) {
        Some(AttributeValue::S(s)) => Some(s),
        _ => None,
    }
}

/// Reads one stream record.
pub fn change_of(record: &EventRecord) -> Change {
    if record.event_name == "REMOVE" {
        return Change::Ignored("removal");
    }
    let (new, old) = (&record.change.new_image, &record.change.old_image);
    if new.is_empty() {
        return Change::Ignored("no NewImage");
    }
    let (Some(pk), Some(sk)) = (text(new, "pk"), text(new, "sk")) else {
        return Change::Ignored("not a Kite item");
    };
    let Some(id) = pk.strip_prefix(EXEC_PK).filter(|_| sk == EXEC_SK) else {
        return Change::Ignored("not an execution item");
    };
    let old_state = text(old, "state");
    if old_state.is_some() && old_state == text(new, "state") {
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
    shape::expect(&event, Shape::DynamoDbStream, "stream", EXPECTED)?;
    let records: Vec<EventRecord> = shape::records(event, "DynamoDB stream record")?;
    let mut answer = DynamoDbEventResponse::default();
    for record in records {
        let sequence = record.change.sequence_number.clone();
        let id = match change_of(&record) {
            Change::Ignored(why) => {
                debug!(sequence = ?sequence, why, "stream record ignored");
                continue;
            }
            Change::Execution { id } => id,
        };
        if let Err(e) = fire(images, triggers, record).await {
            warn!(execution = %id, sequence = ?sequence, error = %e, "flow triggers failed; retried from this record");
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = sequence;
            answer.batch_item_failures.push(failure);
            break;
        }
    }
    finish(in_flight, deadline).await;
    serde_json::to_value(answer).map_err(|e| FnError::Backend(e.to_string()))
}

async fn fire(
    images: &dyn ExecutionImages,
    triggers: &dyn Triggers,
    record: EventRecord,
) -> Result<(), String> {
    let (new, old) = (record.change.new_image, record.change.old_image);
    let Some(execution) = images.execution(new).await? else {
        return Ok(());
    };
    let previous = if old.is_empty() {
        None
    } else {
        images.execution(old).await?
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
