//! The worker function: an SQS batch of work items, each run with `Engine::process`; the
//! records that fail are reported as batch item failures so SQS redelivers only those (and
//! moves them to the dead-letter queue after the queue's maxReceiveCount).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use kite_engine::ports::WorkItem;
use kite_engine::{Engine, EngineError};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::dispatch::{InFlight, InProcess};
use crate::error::FnError;
use crate::shape::{detect, Shape};

const EXPECTED: &str =
    "an SQS batch {\"Records\": [{\"eventSource\": \"aws:sqs\", \"messageId\", \"body\": <work item JSON>}]}";

/// Items due later than this are sent back to the queue instead of run early.
const EARLY_SLACK: chrono::Duration = chrono::Duration::seconds(1);

/// Puts an item back on the queue to be delivered at its due date (SQS delays are at most
/// 15 minutes: a later item comes back and is deferred again).
#[async_trait]
pub trait Requeue: Send + Sync {
    async fn requeue(&self, item: &WorkItem) -> Result<(), String>;
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SqsRecord {
    message_id: String,
    #[serde(default)]
    body: String,
}

#[derive(Deserialize)]
struct SqsBatch {
    #[serde(rename = "Records")]
    records: Vec<SqsRecord>,
}

/// The worker function's state, built once per container.
pub struct Worker {
    engine: Engine,
    requeue: Arc<dyn Requeue>,
    in_flight: Arc<InFlight>,
}

impl Worker {
    pub fn new(engine: Engine, requeue: Arc<dyn Requeue>) -> Worker {
        let in_flight = InProcess::install(&engine);
        Worker {
            engine,
            requeue,
            in_flight,
        }
    }

    /// Handles an SQS batch; answers `{"batchItemFailures": [{"itemIdentifier": id}]}`.
    pub async fn handle(&self, event: Value, deadline: Instant) -> Result<Value, FnError> {
        match detect(&event) {
            Shape::Sqs => {}
            other => {
                return Err(FnError::UnexpectedShape {
                    function: "worker",
                    got: other.describe(),
                    expected: EXPECTED,
                })
            }
        }
        let batch: SqsBatch = serde_json::from_value(event).map_err(|e| FnError::InvalidPayload {
            what: "SQS batch",
            message: e.to_string(),
        })?;
        let mut failures = Vec::new();
        for record in batch.records {
            if !self.record(&record).await {
                failures.push(json!({"itemIdentifier": record.message_id}));
            }
        }
        // Light work the batch started runs to its end here; what does not is redelivered.
        if !self.in_flight.wait_idle(deadline).await {
            warn!(
                running = self.in_flight.running(),
                "in-process work unfinished at the deadline"
            );
        }
        Ok(json!({"batchItemFailures": failures}))
    }

    /// Runs one record; `false` to have SQS deliver it again.
    async fn record(&self, record: &SqsRecord) -> bool {
        let item: WorkItem = match serde_json::from_str(&record.body) {
            Ok(i) => i,
            Err(e) => {
                // Retrying cannot fix it: it reaches the dead-letter queue, where it can be read.
                error!(message = %record.message_id, error = %e, "message body is not a work item");
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
