//! [`TriggerRepository`] on DynamoDB: one item per trigger in its flow's partition
//! (`TRIGGER#{ns}#{flow}`), the state's JSON with a version for compare-and-set, and
//! every trigger in one index partition for searches.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;
use kite_core::trigger::TriggerState;
use kite_engine::ports::{Page, StoreError, TriggerQuery, TriggerRepository, VersionedTrigger};

use super::encoding::{absent, key, names, values};
use super::search::{page, search_text};
use super::AwsStore;
use crate::items::*;

fn trigger_item(state: &TriggerState, version: i64) -> Result<Item, StoreError> {
    Ok(Item::from([
        ("pk".into(), s(trigger_pk(&state.namespace, &state.flow_id))),
        ("sk".into(), s(&state.trigger_id)),
        ("version".into(), n(version)),
        ("body".into(), s(serde_json::to_string(state).map_err(backend)?)),
        ("gsi1pk".into(), s(TRIGGERS_GSI)),
        (
            "gsi1sk".into(),
            s(trigger_gsi_sk(
                &state.namespace,
                &state.flow_id,
                &state.trigger_id,
            )),
        ),
    ]))
}

fn trigger_from_item(item: &Item) -> Result<VersionedTrigger, StoreError> {
    Ok(VersionedTrigger {
        state: serde_json::from_str(get_s(item, "body")?).map_err(backend)?,
        version: get_n(item, "version")?,
    })
}

#[async_trait]
impl TriggerRepository for AwsStore {
    async fn get(
        &self,
        namespace: &str,
        flow_id: &str,
        trigger_id: &str,
    ) -> Result<Option<VersionedTrigger>, StoreError> {
        self.get_item(key(trigger_pk(namespace, flow_id), trigger_id))
            .await?
            .as_ref()
            .map(trigger_from_item)
            .transpose()
    }

    async fn put(&self, state: &TriggerState, expected_version: Option<i64>) -> Result<i64, StoreError> {
        let name = format!(
            "trigger {}.{}.{}",
            state.namespace, state.flow_id, state.trigger_id
        );
        match expected_version {
            None => {
                self.put_conditional(trigger_item(state, 1)?, absent(), StoreError::AlreadyExists(name))
                    .await?;
                Ok(1)
            }
            Some(v) => {
                self.put_conditional(
                    trigger_item(state, v + 1)?,
                    ("#v = :v", names(&[("#v", "version")]), values(vec![(":v", n(v))])),
                    StoreError::Conflict(name),
                )
                .await?;
                Ok(v + 1)
            }
        }
    }

    async fn list_for_flow(
        &self,
        namespace: &str,
        flow_id: &str,
    ) -> Result<Vec<VersionedTrigger>, StoreError> {
        self.query_all(
            None,
            "#p = :p",
            names(&[("#p", "pk")]),
            values(vec![(":p", s(trigger_pk(namespace, flow_id)))]),
            None,
            true,
        )
        .await?
        .iter()
        .map(trigger_from_item)
        .collect()
    }

    async fn search(&self, query: &TriggerQuery) -> Result<Page<TriggerState>, StoreError> {
        let items = self
            .index_partition(TRIGGERS_GSI, query.namespace.as_deref())
            .await?;
        let q = search_text(&query.q);
        let mut states = Vec::new();
        for item in &items {
            let t = trigger_from_item(item)?.state;
            if query
                .namespace
                .as_ref()
                .is_some_and(|ns| !namespace_matches(&t.namespace, ns))
                || query.flow_id.as_ref().is_some_and(|f| *f != t.flow_id)
                || q.as_ref().is_some_and(|q| {
                    !format!("{}.{} {}", t.namespace, t.flow_id, t.trigger_id)
                        .to_lowercase()
                        .contains(q)
                })
            {
                continue;
            }
            states.push(t);
        }
        states.sort_by(|a, b| {
            (&a.namespace, &a.flow_id, &a.trigger_id).cmp(&(&b.namespace, &b.flow_id, &b.trigger_id))
        });
        Ok(page(states, query.pagination))
    }

    async fn delete(&self, namespace: &str, flow_id: &str, trigger_id: &str) -> Result<bool, StoreError> {
        let out = self
            .ddb
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(trigger_pk(namespace, flow_id), trigger_id)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(sdk)?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }
}
