//! The engine's trigger entry points that the scheduler and stream functions call, behind a
//! trait so the handlers can be tested with a recording double.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kite_core::execution::Execution;
use kite_engine::EngineError;

/// Schedule and Flow trigger firing (implemented by [`kite_engine::Engine`]).
#[async_trait]
pub trait Triggers: Send + Sync {
    /// Fires a Schedule trigger for the instant its rule fired; idempotent per scheduled date.
    async fn fire_schedule(
        &self,
        namespace: &str,
        flow_id: &str,
        trigger_id: &str,
        fired_at: DateTime<Utc>,
    ) -> Result<Vec<Execution>, EngineError>;

    /// Fires the Flow triggers matching this execution's current state; idempotent.
    async fn execution_changed(&self, execution: &Execution) -> Result<Vec<Execution>, EngineError>;
}
