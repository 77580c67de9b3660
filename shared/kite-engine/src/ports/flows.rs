//! Flow revisions: the flow repository and its queries.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kite_core::execution::Label;

use super::*;

/// A stored revision of a flow: the YAML source kept verbatim.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFlow {
    pub namespace: String,
    pub id: String,
    pub revision: i64,
    pub source: String,
    pub deleted: bool,
    pub updated: DateTime<Utc>,
}

/// Flow search filters (all optional; `namespace` is a prefix match on whole segments or exact).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlowQuery {
    /// Free text matched against namespace and id.
    pub q: Option<String>,
    /// Namespace or namespace prefix (`company` matches `company.team`).
    pub namespace: Option<String>,
    /// Labels every flow must carry (`key`, `value`), matched in the source.
    pub labels: Vec<Label>,
    pub pagination: Pagination,
    pub sort: Vec<Sort>,
}

/// What a save expects to find: no live flow (create) or a live one (update).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveMode {
    Create,
    Update,
}

/// One save of a flow's source.
#[derive(Debug, Clone)]
pub struct FlowSave {
    pub mode: SaveMode,
    pub namespace: String,
    pub id: String,
    pub source: String,
    pub now: DateTime<Utc>,
}

/// What a save leads to, given the latest stored revision.
#[derive(Debug, Clone, PartialEq)]
pub enum SaveOutcome {
    /// An update with the same source: nothing to write.
    Unchanged(StoredFlow),
    /// The revision to write, if the latest is still the one it was decided from.
    New(StoredFlow),
}

impl FlowSave {
    /// Revision 1 of a new flow ([`StoreError::AlreadyExists`] if a live flow has this id);
    /// a flow that was deleted is created again with the next revision number.
    pub fn create(namespace: &str, id: &str, source: &str, now: DateTime<Utc>) -> FlowSave {
        FlowSave::new(SaveMode::Create, namespace, id, source, now)
    }

    /// A new revision when the source changed (else the latest, unchanged);
    /// [`StoreError::NotFound`] if there is no live flow.
    pub fn update(namespace: &str, id: &str, source: &str, now: DateTime<Utc>) -> FlowSave {
        FlowSave::new(SaveMode::Update, namespace, id, source, now)
    }

    fn new(mode: SaveMode, namespace: &str, id: &str, source: &str, now: DateTime<Utc>) -> FlowSave {
        let (namespace, id, source) = (namespace.into(), id.into(), source.into());
        FlowSave {
            mode,
            namespace,
            id,
            source,
            now,
        }
    }

    /// The revision rule every adapter applies inside its own transaction or conditional
    /// write: a deleted flow is created again with the next number; an unchanged source
    /// makes no revision.
    pub fn outcome(self, latest: Option<StoredFlow>) -> Result<SaveOutcome, StoreError> {
        let name = || format!("flow {}.{}", self.namespace, self.id);
        let live = latest.as_ref().is_some_and(|f| !f.deleted);
        match (self.mode, latest) {
            (SaveMode::Create, Some(_)) if live => Err(StoreError::AlreadyExists(name())),
            (SaveMode::Update, _) if !live => Err(StoreError::NotFound(name())),
            (SaveMode::Update, Some(latest)) if latest.source == self.source => {
                Ok(SaveOutcome::Unchanged(latest))
            }
            (_, latest) => Ok(SaveOutcome::New(StoredFlow {
                namespace: self.namespace,
                id: self.id,
                revision: latest.map_or(1, |f| f.revision + 1),
                source: self.source,
                deleted: false,
                updated: self.now,
            })),
        }
    }
}

/// Flows and their revisions (latest revision = the live flow).
#[async_trait]
pub trait FlowRepository: Send + Sync {
    /// Stores a new revision as [`FlowSave::outcome`] decides, atomically with the read of
    /// the latest one (a concurrent create loses with [`StoreError::AlreadyExists`]).
    async fn save(&self, save: FlowSave) -> Result<StoredFlow, StoreError>;
    /// The latest revision (or the given one). Deleted flows only with `allow_deleted`.
    async fn get(
        &self,
        namespace: &str,
        id: &str,
        revision: Option<i64>,
        allow_deleted: bool,
    ) -> Result<Option<StoredFlow>, StoreError>;
    /// Every revision, oldest first.
    async fn revisions(&self, namespace: &str, id: &str) -> Result<Vec<StoredFlow>, StoreError>;
    /// Latest revisions of live flows matching the query.
    async fn search(&self, query: &FlowQuery) -> Result<Page<StoredFlow>, StoreError>;
    /// Soft delete: the flow disappears from `get`/`search`; revisions stay. `false` if unknown.
    async fn delete(&self, namespace: &str, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError>;
}
