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

/// Flows and their revisions (latest revision = the live flow).
#[async_trait]
pub trait FlowRepository: Send + Sync {
    /// Stores revision 1 of a new flow; [`StoreError::AlreadyExists`] if a live flow has this id.
    /// A flow that was deleted is created again with the next revision number.
    async fn create(
        &self,
        namespace: &str,
        id: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<StoredFlow, StoreError>;
    /// Stores a new revision when the source changed (else returns the latest unchanged);
    /// [`StoreError::NotFound`] if there is no live flow.
    async fn update(
        &self,
        namespace: &str,
        id: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<StoredFlow, StoreError>;
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
