//! The engine's trigger entry points that the scheduler and stream functions call, behind a
//! trait so the handlers can be tested with a recording double.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kite_core::execution::Execution;
use kite_engine::{Engine, EngineError};

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

    /// Fires the Flow triggers matching the states `execution` reached since `previous`;
    /// idempotent (derived execution ids).
    async fn execution_changed(
        &self,
        previous: Option<&Execution>,
        execution: &Execution,
    ) -> Result<(), EngineError>;
}

#[async_trait]
impl Triggers for Engine {
    async fn fire_schedule(
        &self,
        namespace: &str,
        flow_id: &str,
        trigger_id: &str,
        fired_at: DateTime<Utc>,
    ) -> Result<Vec<Execution>, EngineError> {
        Engine::fire_schedule(self, namespace, flow_id, trigger_id, fired_at).await
    }

    async fn execution_changed(
        &self,
        previous: Option<&Execution>,
        execution: &Execution,
    ) -> Result<(), EngineError> {
        Engine::execution_changed(self, previous, execution).await
    }
}
