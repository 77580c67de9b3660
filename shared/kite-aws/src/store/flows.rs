//! [`FlowRepository`] on DynamoDB: each revision is an item of the flow's partition
//! (`REV#{revision}`), and a `LATEST` copy of the last one, in the flows' index, is what
//! gets and searches read; a delete is a tombstone revision.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kite_engine::ports::{
    FlowQuery, FlowRepository, FlowSave, Page, SaveMode, SaveOutcome, Sort, StoreError, StoredFlow,
};

use super::encoding::{absent, key, names, values};
use super::search::{page, search_text, sort_by_fields, SortKey};
use super::AwsStore;
use crate::items::*;

fn flow_from_item(item: &Item) -> Result<StoredFlow, StoreError> {
    Ok(StoredFlow {
        namespace: get_s(item, "namespace")?.to_string(),
        id: get_s(item, "flowId")?.to_string(),
        revision: get_n(item, "revision")?,
        source: get_s(item, "source")?.to_string(),
        deleted: get_bool(item, "deleted"),
        updated: from_ms(get_n(item, "updated")?),
    })
}

fn flow_item(flow: &StoredFlow, latest: bool) -> Item {
    let mut item = Item::from([
        ("pk".into(), s(flow_pk(&flow.namespace, &flow.id))),
        (
            "sk".into(),
            s(if latest {
                FLOW_LATEST.to_string()
            } else {
                flow_rev_sk(flow.revision)
            }),
        ),
        ("namespace".into(), s(&flow.namespace)),
        ("flowId".into(), s(&flow.id)),
        ("revision".into(), n(flow.revision)),
        ("source".into(), s(&flow.source)),
        ("deleted".into(), b(flow.deleted)),
        ("updated".into(), n(flow.updated.timestamp_millis())),
    ]);
    if latest {
        item.insert("gsi1pk".into(), s(FLOWS_GSI));
        item.insert("gsi1sk".into(), s(format!("{}#{}", flow.namespace, flow.id)));
    }
    item
}

fn flow_labels(source: &str) -> Vec<(String, String)> {
    kite_core::flow::parse_flow(source)
        .map(|f| f.labels)
        .unwrap_or_default()
}

#[async_trait]
impl FlowRepository for AwsStore {
    async fn save(&self, save: FlowSave) -> Result<StoredFlow, StoreError> {
        let latest = self
            .get_item(key(flow_pk(&save.namespace, &save.id), FLOW_LATEST))
            .await?;
        let latest = latest.as_ref().map(flow_from_item).transpose()?;
        let previous = latest.as_ref().map(|f| f.revision);
        let (mode, name) = (save.mode, format!("flow {}.{}", save.namespace, save.id));
        let flow = match save.outcome(latest)? {
            SaveOutcome::Unchanged(latest) => return Ok(latest),
            SaveOutcome::New(flow) => flow,
        };
        match self.write_revision(&flow, previous).await {
            // A concurrent create won the race.
            Err(StoreError::Conflict(_)) if mode == SaveMode::Create => Err(StoreError::AlreadyExists(name)),
            other => other.map(|()| flow),
        }
    }

    async fn get(
        &self,
        namespace: &str,
        id: &str,
        revision: Option<i64>,
        allow_deleted: bool,
    ) -> Result<Option<StoredFlow>, StoreError> {
        let Some(latest) = self.get_item(key(flow_pk(namespace, id), FLOW_LATEST)).await? else {
            return Ok(None);
        };
        let latest = flow_from_item(&latest)?;
        if latest.deleted && !allow_deleted {
            return Ok(None);
        }
        match revision {
            None => Ok(Some(latest)),
            Some(rev) if rev == latest.revision => Ok(Some(latest)),
            Some(rev) => self
                .get_item(key(flow_pk(namespace, id), &flow_rev_sk(rev)))
                .await?
                .as_ref()
                .map(flow_from_item)
                .transpose(),
        }
    }

    async fn revisions(&self, namespace: &str, id: &str) -> Result<Vec<StoredFlow>, StoreError> {
        let items = self
            .query_all(
                None,
                "#p = :p AND begins_with(#s, :rev)",
                names(&[("#p", "pk"), ("#s", "sk")]),
                values(vec![(":p", s(flow_pk(namespace, id))), (":rev", s("REV#"))]),
                None,
                true,
            )
            .await?;
        let mut out = Vec::new();
        for item in &items {
            let f = flow_from_item(item)?;
            if !f.deleted {
                out.push(f);
            }
        }
        Ok(out)
    }

    async fn search(&self, query: &FlowQuery) -> Result<Page<StoredFlow>, StoreError> {
        let items = self.flow_latest_items(query.namespace.as_deref()).await?;
        let q = search_text(&query.q);
        let mut flows = Vec::new();
        for item in &items {
            let f = flow_from_item(item)?;
            if f.deleted {
                continue;
            }
            if let Some(ns) = &query.namespace {
                if !namespace_matches(&f.namespace, ns) {
                    continue;
                }
            }
            if let Some(q) = &q {
                if !format!("{}.{}", f.namespace, f.id).to_lowercase().contains(q) {
                    continue;
                }
            }
            if !query.labels.is_empty() {
                let labels = flow_labels(&f.source);
                if !query
                    .labels
                    .iter()
                    .all(|l| labels.iter().any(|(k, v)| *k == l.key && *v == l.value))
                {
                    continue;
                }
            }
            flows.push(f);
        }
        let default = [
            Sort {
                field: "namespace".into(),
                descending: false,
            },
            Sort {
                field: "id".into(),
                descending: false,
            },
        ];
        let known = |s: &&Sort| matches!(s.field.as_str(), "id" | "namespace" | "revision");
        let sort: Vec<Sort> = query.sort.iter().filter(known).cloned().collect();
        let sort = if sort.is_empty() { default.to_vec() } else { sort };
        sort_by_fields(&mut flows, &sort, |f, field| match field {
            "id" => Some(SortKey::Text(f.id.clone())),
            "namespace" => Some(SortKey::Text(f.namespace.clone())),
            "revision" => Some(SortKey::Num(f.revision)),
            _ => None,
        });
        Ok(page(flows, query.pagination))
    }

    async fn delete(&self, namespace: &str, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let Some(latest) = self
            .get_item(key(flow_pk(namespace, id), FLOW_LATEST))
            .await?
            .as_ref()
            .map(flow_from_item)
            .transpose()?
            .filter(|f| !f.deleted)
        else {
            return Ok(false);
        };
        let tombstone = StoredFlow {
            revision: latest.revision + 1,
            deleted: true,
            updated: now,
            ..latest.clone()
        };
        self.write_revision(&tombstone, Some(latest.revision)).await?;
        Ok(true)
    }
}

impl AwsStore {
    /// The `LATEST` items of the flows' index, those whose `{ns}#{id}` starts with `prefix`
    /// if given (a plain string prefix: callers check whole namespace segments).
    pub(super) async fn flow_latest_items(&self, prefix: Option<&str>) -> Result<Vec<Item>, StoreError> {
        self.index_partition(FLOWS_GSI, prefix).await
    }

    /// Writes a revision and the `LATEST` copy in one transaction, only if `LATEST` is
    /// still at `previous` (two concurrent saves never both win).
    async fn write_revision(&self, flow: &StoredFlow, previous: Option<i64>) -> Result<(), StoreError> {
        let latest_condition = match previous {
            None => absent(),
            Some(rev) => (
                "#r = :r",
                names(&[("#r", "revision")]),
                values(vec![(":r", n(rev))]),
            ),
        };
        let actions = vec![
            self.put_action(flow_item(flow, true), Some(latest_condition))?,
            self.put_action(flow_item(flow, false), Some(absent()))?,
        ];
        self.transact(
            actions,
            StoreError::Conflict(format!("flow {}.{}", flow.namespace, flow.id)),
        )
        .await
    }
}
