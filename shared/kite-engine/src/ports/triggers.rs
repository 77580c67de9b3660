//! Trigger state and the schedule registry.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kite_core::trigger::TriggerState;

use super::*;

/// A trigger's state and its version for compare-and-set.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionedTrigger {
    pub state: TriggerState,
    pub version: i64,
}

/// Trigger search filters (Kestra's `GET /triggers/search`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TriggerQuery {
    /// Free text matched against namespace, flow id and trigger id.
    pub q: Option<String>,
    /// Namespace or namespace prefix.
    pub namespace: Option<String>,
    pub flow_id: Option<String>,
    pub pagination: Pagination,
}

/// Trigger state (last scheduled date, backfill, disabled, preconditions), keyed by
/// (namespace, flow id, trigger id), with optimistic concurrency.
#[async_trait]
pub trait TriggerRepository: Send + Sync {
    async fn get(
        &self,
        namespace: &str,
        flow_id: &str,
        trigger_id: &str,
    ) -> Result<Option<VersionedTrigger>, StoreError>;
    /// Inserts (`expected_version: None`, [`StoreError::AlreadyExists`] if present) or
    /// updates only if the stored version is `expected_version` ([`StoreError::Conflict`]
    /// otherwise). Returns the new version.
    async fn put(&self, state: &TriggerState, expected_version: Option<i64>) -> Result<i64, StoreError>;
    /// Every trigger state of one flow, ordered by trigger id.
    async fn list_for_flow(
        &self,
        namespace: &str,
        flow_id: &str,
    ) -> Result<Vec<VersionedTrigger>, StoreError>;
    /// Ordered by namespace, flow id, trigger id.
    async fn search(&self, query: &TriggerQuery) -> Result<Page<TriggerState>, StoreError>;
    /// `false` if unknown.
    async fn delete(&self, namespace: &str, flow_id: &str, trigger_id: &str) -> Result<bool, StoreError>;
}

/// One Schedule trigger as a cloud scheduler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRule {
    pub namespace: String,
    pub flow_id: String,
    pub trigger_id: String,
    /// Schedule expressions in UTC (`cron(...)`) that together fire at least at every
    /// due instant; the scheduler checks each firing against the trigger's real cron and
    /// time zone.
    pub expressions: Vec<String>,
    pub enabled: bool,
}

/// What a whole-registry reconcile found and changed, in registered schedules (one per
/// expression of a [`ScheduleRule`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Registered before the reconcile.
    pub found: usize,
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
    /// Left as they were because written after the reconcile's read.
    pub recent: usize,
}

impl SyncReport {
    /// Whether the registry had drifted from the flows.
    pub fn changed(&self) -> bool {
        self.created + self.updated + self.deleted > 0
    }
}

/// Where Schedule triggers are registered with an external clock (EventBridge Scheduler).
/// The local server has its own in-process scheduler and uses [`NoScheduleRegistry`].
#[async_trait]
pub trait ScheduleRegistry: Send + Sync {
    /// Makes the registered rules of one flow exactly `rules`: creates, updates and
    /// deletes as needed (an empty list removes them all). Idempotent.
    async fn sync_flow(
        &self,
        namespace: &str,
        flow_id: &str,
        rules: &[ScheduleRule],
    ) -> Result<(), StoreError>;

    /// Makes the whole registry exactly `rules` (those of every live flow): repairs what
    /// a failed [`ScheduleRegistry::sync_flow`] or a hand edit left, and removes the
    /// schedules of flows that no longer exist. Registered schedules last written at or
    /// after `settled_before` are left as they are: a flow save newer than the read of
    /// `rules` may have written them. Idempotent.
    async fn sync_all(
        &self,
        rules: &[ScheduleRule],
        settled_before: DateTime<Utc>,
    ) -> Result<SyncReport, StoreError>;
}

/// For hosts whose scheduler reads the flows itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoScheduleRegistry;

#[async_trait]
impl ScheduleRegistry for NoScheduleRegistry {
    async fn sync_flow(&self, _: &str, _: &str, _: &[ScheduleRule]) -> Result<(), StoreError> {
        Ok(())
    }

    async fn sync_all(&self, _: &[ScheduleRule], _: DateTime<Utc>) -> Result<SyncReport, StoreError> {
        Ok(SyncReport::default())
    }
}
