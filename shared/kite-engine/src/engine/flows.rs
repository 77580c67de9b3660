//! Flows: parsing and caching revisions, create, update, deploy, get, search, delete.

use super::*;
use crate::ports::FlowSave;

impl Engine {
    pub(super) fn parse(&self, stored: StoredFlow) -> Result<Arc<FlowWithSource>, EngineError> {
        let key = (stored.namespace.clone(), stored.id.clone(), stored.revision);
        if let Some(f) = self
            .inner
            .revisions
            .read()
            .ok()
            .and_then(|m| m.get(&key).cloned())
        {
            if f.source == stored.source && f.deleted == stored.deleted {
                return Ok(f);
            }
        }
        let mut flow = parse_flow(&stored.source).map_err(EngineError::InvalidFlow)?;
        flow.revision = Some(stored.revision);
        let parsed = Arc::new(FlowWithSource {
            flow: Arc::new(flow),
            source: stored.source,
            revision: stored.revision,
            deleted: stored.deleted,
            updated: stored.updated,
        });
        if let Ok(mut m) = self.inner.revisions.write() {
            m.insert(key, parsed.clone());
        }
        Ok(parsed)
    }

    pub(super) fn forget_latest(&self, namespace: &str, id: &str) {
        if let Ok(mut m) = self.inner.latest.write() {
            m.remove(&(namespace.to_string(), id.to_string()));
        }
    }

    /// Validates a flow source without storing it.
    pub fn validate_flow(&self, source: &str) -> Result<Flow, EngineError> {
        kite_core::flow::parse_flow_within(source, &self.inner.config.flow_limits)
            .map_err(EngineError::InvalidFlow)
    }

    /// Stores a new flow (revision 1). 422 `flow.id: Flow id already exists` if it exists.
    pub async fn create_flow(&self, source: &str) -> Result<FlowWithSource, EngineError> {
        let flow = self.validate_flow(source)?;
        let now = self.now();
        let stored = match self
            .inner
            .ports
            .flows
            .save(FlowSave::create(&flow.namespace, &flow.id, source, now))
            .await
        {
            Err(StoreError::AlreadyExists(_)) => {
                return Err(EngineError::InvalidEntity {
                    path: "flow.id".into(),
                    message: "Flow id already exists".into(),
                })
            }
            other => other?,
        };
        self.forget_latest(&flow.namespace, &flow.id);
        let saved = self.parse(stored)?.as_ref().clone();
        self.sync_saved_triggers(&saved.flow).await?;
        Ok(saved)
    }

    /// Stores a new revision of an existing flow (unchanged source keeps the revision).
    pub async fn update_flow(
        &self,
        namespace: &str,
        id: &str,
        source: &str,
    ) -> Result<FlowWithSource, EngineError> {
        let flow = self.validate_flow(source)?;
        if flow.namespace != namespace {
            return Err(EngineError::InvalidEntity {
                path: "flow.namespace".into(),
                message: format!("Illegal namespace update: {namespace} != {}", flow.namespace),
            });
        }
        if flow.id != id {
            return Err(EngineError::InvalidEntity {
                path: "flow.id".into(),
                message: format!("Illegal flow id update: {id} != {}", flow.id),
            });
        }
        let now = self.now();
        let stored = match self
            .inner
            .ports
            .flows
            .save(FlowSave::update(namespace, id, source, now))
            .await
        {
            Err(StoreError::NotFound(_)) => return Err(EngineError::NotFound("Flow not found".into())),
            other => other?,
        };
        self.forget_latest(namespace, id);
        let saved = self.parse(stored)?.as_ref().clone();
        self.sync_saved_triggers(&saved.flow).await?;
        Ok(saved)
    }

    /// Creates the flow or stores a new revision (what `kite flow deploy` and start-up loading do).
    pub async fn deploy_flow(&self, source: &str) -> Result<FlowWithSource, EngineError> {
        let flow = self.validate_flow(source)?;
        match self
            .inner
            .ports
            .flows
            .get(&flow.namespace, &flow.id, None, false)
            .await?
        {
            Some(_) => self.update_flow(&flow.namespace, &flow.id, source).await,
            None => self.create_flow(source).await,
        }
    }

    /// The latest revision (or `revision`) of a flow; 404 if unknown.
    pub async fn get_flow(
        &self,
        namespace: &str,
        id: &str,
        revision: Option<i64>,
    ) -> Result<FlowWithSource, EngineError> {
        Ok(self
            .flow_arc(namespace, id, revision, false)
            .await?
            .as_ref()
            .clone())
    }

    /// Like [`Engine::get_flow`], optionally including deleted flows.
    pub async fn get_flow_allow_deleted(
        &self,
        namespace: &str,
        id: &str,
        revision: Option<i64>,
        allow_deleted: bool,
    ) -> Result<FlowWithSource, EngineError> {
        Ok(self
            .flow_arc(namespace, id, revision, allow_deleted)
            .await?
            .as_ref()
            .clone())
    }

    pub(super) async fn flow_arc(
        &self,
        namespace: &str,
        id: &str,
        revision: Option<i64>,
        allow_deleted: bool,
    ) -> Result<Arc<FlowWithSource>, EngineError> {
        let key = (namespace.to_string(), id.to_string());
        if revision.is_none() && !allow_deleted {
            let cached = self.inner.latest.read().ok().and_then(|m| m.get(&key).cloned());
            if let Some((at, f)) = cached {
                if self.inner.config.cache_ttl.is_none_or(|ttl| at.elapsed() < ttl) {
                    return Ok(f);
                }
            }
        }
        if let Some(rev) = revision {
            if let Some(f) = self
                .inner
                .revisions
                .read()
                .ok()
                .and_then(|m| m.get(&(key.0.clone(), key.1.clone(), rev)).cloned())
            {
                if allow_deleted || !f.deleted {
                    return Ok(f);
                }
            }
        }
        let stored = self
            .inner
            .ports
            .flows
            .get(namespace, id, revision, allow_deleted)
            .await?
            .ok_or_else(|| EngineError::NotFound("Flow not found".into()))?;
        let parsed = self.parse(stored)?;
        if revision.is_none() && !parsed.deleted {
            if let Ok(mut m) = self.inner.latest.write() {
                m.insert(key, (std::time::Instant::now(), parsed.clone()));
            }
        }
        Ok(parsed)
    }

    /// The revision an execution runs (even if the flow was deleted since).
    pub(super) async fn flow_of(&self, execution: &Execution) -> Result<Arc<FlowWithSource>, EngineError> {
        self.flow_arc(
            &execution.namespace,
            &execution.flow_id,
            Some(execution.flow_revision),
            true,
        )
        .await
    }

    /// Every revision of a flow, oldest first; 404 if unknown.
    pub async fn flow_revisions(
        &self,
        namespace: &str,
        id: &str,
    ) -> Result<Vec<FlowWithSource>, EngineError> {
        let stored = self.inner.ports.flows.revisions(namespace, id).await?;
        if stored.is_empty() {
            return Err(EngineError::NotFound("Flow not found".into()));
        }
        stored
            .into_iter()
            .map(|s| self.parse(s).map(|f| f.as_ref().clone()))
            .collect()
    }

    /// Latest revisions of live flows matching the query (unparsable sources are skipped).
    pub async fn search_flows(&self, query: &FlowQuery) -> Result<Page<FlowWithSource>, EngineError> {
        let page = self.inner.ports.flows.search(query).await?;
        let results = page
            .results
            .into_iter()
            .filter_map(|s| self.parse(s).ok().map(|f| f.as_ref().clone()))
            .collect();
        Ok(Page {
            results,
            total: page.total,
        })
    }

    /// Soft-deletes a flow; 404 if unknown.
    pub async fn delete_flow(&self, namespace: &str, id: &str) -> Result<(), EngineError> {
        let now = self.now();
        let deleted = self.inner.ports.flows.delete(namespace, id, now).await?;
        self.forget_latest(namespace, id);
        if deleted {
            self.drop_triggers(namespace, id).await?;
            Ok(())
        } else {
            Err(EngineError::NotFound("Flow not found".into()))
        }
    }
}
