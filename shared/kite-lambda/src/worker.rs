//! The worker function: an SQS batch of work items, each run with `Engine::process`; the
//! records that fail are reported as batch item failures so SQS redelivers only those.
//! The last delivery before the dead-letter queue does not run the item again: it fails
//! the item's execution, saying why (the crash-loop guard; nothing is left stuck).

use std::sync::Arc;

use async_trait::async_trait;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsMessage};
use chrono::Utc;
use kite_engine::ports::{Work, WorkItem};
use kite_engine::{Engine, EngineError, RunWindow};
use serde_json::Value;
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::dispatch::{InFlight, InProcess};
use crate::error::FnError;
use crate::shape::{self, Shape};

/// What the worker function expects, for error messages.
pub const EXPECTED: &str =
    "an SQS batch {\"Records\": [{\"eventSource\": \"aws:sqs\", \"messageId\", \"body\": <work item JSON>}]}";

/// Items due later than this are sent back to the queue; sooner ones are waited for here
/// (SQS delays are whole seconds), so that no timer fires early.
const EARLY_SLACK: chrono::Duration = chrono::Duration::seconds(1);

/// The work queue's `maxReceiveCount` (template.yaml): a message received this many times
/// has crashed, timed out or failed every earlier time, and goes to the dead-letter queue
/// if this delivery fails too.
pub const MAX_RECEIVES: u32 = 5;

/// Puts an item back on the queue to be delivered at its due date (SQS delays are at most
/// 15 minutes: a later item comes back and is deferred again).
#[async_trait]
pub trait Requeue: Send + Sync {
    async fn requeue(&self, item: &WorkItem) -> Result<(), String>;
}

/// The worker function's state, built once per container.
pub struct Worker {
    engine: Engine,
    requeue: Arc<dyn Requeue>,
    in_flight: Arc<InFlight>,
}

impl Worker {
    pub fn new(engine: Engine, requeue: Arc<dyn Requeue>) -> Worker {
        let in_flight = InProcess::install(&engine, true);
        Worker {
            engine,
            requeue,
            in_flight,
        }
    }

    /// Handles an SQS batch; answers `{"batchItemFailures": [{"itemIdentifier": id}]}`.
    pub async fn handle(&self, event: Value, deadline: Instant) -> Result<Value, FnError> {
        shape::expect(&event, Shape::Sqs, "worker", EXPECTED)?;
        // A task run's I/O stops at this invocation's end (and fails if it had all of it).
        self.engine.set_run_window(Some(RunWindow {
            started: Instant::now(),
            deadline,
        }));
        let messages: Vec<SqsMessage> = shape::records(event, "SQS message")?;
        // A failure is reported by message id: without one, the batch cannot be answered.
        let mut batch = Vec::with_capacity(messages.len());
        for (i, message) in messages.into_iter().enumerate() {
            let receives = message
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|n| n.parse::<u32>().ok())
                .unwrap_or(1);
            match message.message_id {
                Some(id) => batch.push((id, message.body.unwrap_or_default(), receives)),
                None => {
                    return Err(FnError::InvalidPayload {
                        what: "SQS message",
                        message: format!("Records[{i}]: no messageId"),
                    })
                }
            }
        }
        let mut answer = SqsBatchResponse::default();
        for (id, body, receives) in batch {
            if !self.record(&id, &body, receives).await {
                answer.add_failure(id);
            }
        }
        // Light work the batch started runs to its end here; what does not is redelivered.
        if !self.in_flight.wait_idle(deadline).await {
            warn!(
                running = self.in_flight.running(),
                "in-process work unfinished at the deadline"
            );
        }
        serde_json::to_value(answer).map_err(|e| FnError::Backend(e.to_string()))
    }

    /// Runs one message; `false` to have SQS deliver it again.
    async fn record(&self, message_id: &str, body: &str, receives: u32) -> bool {
        let item: WorkItem = match serde_json::from_str(body) {
            Ok(i) => i,
            Err(e) => {
                // Retrying cannot fix it: it reaches the dead-letter queue, where it can be read.
                error!(message = %message_id, error = %e, "message body is not a work item");
                return false;
            }
        };
        if item.due > Utc::now() + EARLY_SLACK {
            return match self.requeue.requeue(&item).await {
                Ok(()) => true,
                Err(e) => {
                    warn!(execution = %item.execution_id, item = %item.id, error = %e, "cannot defer work item");
                    false
                }
            };
        }
        let item = if receives >= MAX_RECEIVES {
            let reason = match self.engine.give_up_reason(&item, receives - 1).await {
                Ok(reason) => reason,
                Err(e) => {
                    warn!(execution = %item.execution_id, item = %item.id, error = %e, "cannot give up on work item");
                    return false;
                }
            };
            error!(execution = %item.execution_id, work = ?item.work, receives, "{reason}");
            WorkItem {
                work: Work::GiveUp { reason },
                ..item
            }
        } else {
            item
        };
        if let Ok(early) = (item.due - Utc::now()).to_std() {
            tokio::time::sleep(early).await;
        }
        let (id, execution_id) = (item.id.clone(), item.execution_id.clone());
        match self.engine.process(item).await {
            Ok(()) => {
                info!(execution = %execution_id, item = %id, "work item done");
                true
            }
            // The state machine refused it for good (logged and acked by the engine).
            Err(EngineError::Internal(_)) => true,
            Err(e) => {
                warn!(execution = %execution_id, item = %id, error = %e, "work item failed; redelivered");
                false
            }
        }
    }
}
