//! [`ExecutionRepository`] on DynamoDB: one item per execution (`EXEC#{id}`), its
//! JSON deflated inline or, when large, in S3, with a version for compare-and-set; the
//! namespace index (`EXECNS#{ns}`) orders executions by start date. A step's commit
//! writes the execution, its children, its outbox items and its logs in one transaction
//! (one conditional write when only the execution changes; logs beyond the transaction's
//! room follow in batches).

use async_trait::async_trait;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use kite_core::execution::Execution;
use kite_engine::ports::{
    ExecutionQuery, ExecutionRepository, Page, Slot, StoreError, Transition, VersionedExecution, WorkItem,
};

use super::encoding::{absent, deflate, inflate, key, names, values, Condition};
use super::logs::packed_first_step_logs;
use super::requests::{put_request, update_outcome};
use super::search::{execution_sort, page, sort_by_fields, start_date_order, ExecutionFilter, SortKey};
use super::AwsStore;
use crate::items::*;

/// Execution bodies whose deflated JSON is above this go to S3 (an item holds at most
/// 400 KB, keys and other attributes included).
pub const INLINE_BODY_LIMIT: usize = 350 * 1024;

/// Attributes an execution item has only sometimes (one of the three body forms, the
/// expiry): an update removes those the new version lacks (a restarted execution loses
/// its expiry).
const OPTIONAL_EXECUTION_ATTRIBUTES: [&str; 4] = ["bodyZ", "bodyRef", "body", "ttl"];

/// TransactWriteItems takes at most 100 actions.
const MAX_TRANSACTION_ACTIONS: usize = 100;

fn start_date(e: &Execution) -> DateTime<Utc> {
    e.state
        .histories
        .first()
        .map(|h| h.date)
        .unwrap_or(e.metadata.original_created_date)
}

fn trigger_execution_id(e: &Execution) -> Option<&str> {
    e.trigger
        .as_ref()
        .and_then(|t| t.variables.as_ref())
        .and_then(|v| v.get("executionId"))
        .and_then(|v| v.as_str())
}

/// Whether a parent execution may wait for this one (a Subflow or ForEachItem child):
/// only then is a wake-up of `subflow-{id}` worth a write.
fn may_have_waiting_parent(e: &Execution) -> bool {
    trigger_execution_id(e).is_some()
        && e.trigger
            .as_ref()
            .is_some_and(|t| !t.type_name.ends_with(".trigger.Flow"))
}

impl AwsStore {
    fn body_key(id: &str, version: i64) -> String {
        format!("executions/{id}/v{version:010}.json")
    }

    async fn execution_item(&self, e: &Execution, version: i64) -> Result<Item, StoreError> {
        let body = serde_json::to_string(e).map_err(backend)?;
        let start = start_date(e);
        let mut item = Item::from([
            ("pk".into(), s(exec_pk(&e.id))),
            ("sk".into(), s(EXEC_SK)),
            ("version".into(), n(version)),
            // Top level so that the stream's event filter can match state changes.
            ("state".into(), s(e.state.current.as_str())),
            ("namespace".into(), s(&e.namespace)),
            ("flowId".into(), s(&e.flow_id)),
            ("startDate".into(), n(start.timestamp_millis())),
            ("terminated".into(), b(e.state.current.is_terminated())),
            ("deleted".into(), b(false)),
            ("gsi1pk".into(), s(exec_gsi_pk(&e.namespace))),
            ("gsi1sk".into(), s(exec_gsi_sk(start, &e.id))),
        ]);
        if let Some(parent) = trigger_execution_id(e) {
            item.insert("triggerExecutionId".into(), s(parent));
        }
        // A finished execution expires with its logs (DynamoDB TTL), counted from its end.
        if let Some(end) = e.state.end_date.filter(|_| e.state.current.is_terminated()) {
            item.insert("ttl".into(), n((end + self.log_retention).timestamp()));
        }
        // Deflated: write units are billed per KB, and execution JSON shrinks 3-4 times.
        let packed = deflate(body.as_bytes())?;
        if packed.len() > INLINE_BODY_LIMIT {
            // A new key per version: a write that loses its compare-and-set leaves the
            // live body untouched.
            let key = Self::body_key(&e.id, version);
            self.files
                .put_internal(&key, body.into_bytes())
                .await
                .map_err(backend)?;
            item.insert("bodyRef".into(), s(key));
        } else {
            item.insert("bodyZ".into(), AttributeValue::B(Blob::new(packed)));
        }
        Ok(item)
    }

    /// After a large body became version `previous + 1`, the copy two versions back is
    /// garbage (bodies rarely shrink back under the limit). The previous one stays: the
    /// stream record of this change names it in its old image.
    async fn drop_old_body(&self, id: &str, previous: i64) {
        if previous < 2 {
            return;
        }
        if let Err(e) = self
            .files
            .delete_internal(&Self::body_key(id, previous - 1))
            .await
        {
            tracing::debug!(error = %e, execution = %id, "old execution body not deleted");
        }
    }

    pub(super) async fn execution_from_item(&self, item: &Item) -> Result<Execution, StoreError> {
        if let Some(AttributeValue::B(packed)) = item.get("bodyZ") {
            return serde_json::from_slice(&inflate(packed.as_ref())?).map_err(backend);
        }
        match opt_s(item, "body") {
            Some(body) => serde_json::from_str(body).map_err(backend),
            None => {
                let key = get_s(item, "bodyRef")?;
                let bytes = self.files.get_internal(key).await.map_err(backend)?;
                serde_json::from_slice(&bytes).map_err(backend)
            }
        }
    }

    /// The write of an execution item: its first version is a put that the id must not
    /// exist for; later ones update the stored item on its version, so attributes the
    /// item does not name (the first step's `logsZ`) stay.
    fn execution_action(&self, item: Item, expected: Option<i64>) -> Result<TransactWriteItem, StoreError> {
        let Some(expected) = expected else {
            return self.put_action(item, Some(Self::execution_condition(None)));
        };
        let (condition, mut names, mut vals) = Self::execution_condition(Some(expected));
        let mut key = Item::new();
        let mut sets = Vec::new();
        for (i, (name, value)) in item.into_iter().enumerate() {
            if name == "pk" || name == "sk" {
                key.insert(name, value);
                continue;
            }
            sets.push(format!("#a{i} = :a{i}"));
            names.insert(format!("#a{i}"), name);
            vals.insert(format!(":a{i}"), value);
        }
        let mut expression = format!("SET {}", sets.join(", "));
        let unused: Vec<&str> = OPTIONAL_EXECUTION_ATTRIBUTES
            .iter()
            .copied()
            .filter(|form| !names.values().any(|n| n == form))
            .collect();
        for (i, form) in unused.iter().enumerate() {
            expression.push_str(if i == 0 { " REMOVE " } else { ", " });
            expression.push_str(&format!("#r{i}"));
            names.insert(format!("#r{i}"), (*form).to_string());
        }
        Ok(TransactWriteItem::builder()
            .update(
                Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key))
                    .update_expression(expression)
                    .condition_expression(condition)
                    .set_expression_attribute_names(Some(names))
                    .set_expression_attribute_values(Some(vals))
                    .build()
                    .map_err(backend)?,
            )
            .build())
    }

    fn execution_condition(expected: Option<i64>) -> Condition<'static> {
        match expected {
            None => absent(),
            Some(v) => (
                "#v = :v AND #d = :false",
                names(&[("#v", "version"), ("#d", "deleted")]),
                values(vec![(":v", n(v)), (":false", b(false))]),
            ),
        }
    }
}

#[async_trait]
impl ExecutionRepository for AwsStore {
    async fn insert(&self, execution: &Execution) -> Result<i64, StoreError> {
        let item = self.execution_item(execution, 1).await?;
        self.write_one(
            self.execution_action(item, None)?,
            StoreError::AlreadyExists(format!("execution {}", execution.id)),
        )
        .await?;
        Ok(1)
    }

    async fn get(&self, id: &str) -> Result<Option<VersionedExecution>, StoreError> {
        let Some(item) = self.get_item(key(exec_pk(id), EXEC_SK)).await? else {
            return Ok(None);
        };
        if get_bool(&item, "deleted") {
            return Ok(None);
        }
        Ok(Some(VersionedExecution {
            execution: self.execution_from_item(&item).await?,
            version: get_n(&item, "version")?,
        }))
    }

    async fn update(&self, execution: &Execution, expected_version: i64) -> Result<i64, StoreError> {
        let item = self.execution_item(execution, expected_version + 1).await?;
        let large = item.contains_key("bodyRef");
        self.write_one(
            self.execution_action(item, Some(expected_version))?,
            StoreError::Conflict(format!("execution {}", execution.id)),
        )
        .await?;
        if large {
            self.drop_old_body(&execution.id, expected_version).await;
        }
        Ok(expected_version + 1)
    }

    async fn commit(&self, t: Transition) -> Result<i64, StoreError> {
        let now = Utc::now();
        let version = t.expected_version.map_or(1, |v| v + 1);
        let on_condition = match t.expected_version {
            None => StoreError::AlreadyExists(format!("execution {}", t.execution.id)),
            Some(_) => StoreError::Conflict(format!("execution {}", t.execution.id)),
        };
        let mut exec_item = self.execution_item(&t.execution, version).await?;
        let large = exec_item.contains_key("bodyRef");
        let first_step_logs = match t.expected_version {
            None => packed_first_step_logs(&t.logs)?,
            Some(_) => None,
        };
        let logs_inline = first_step_logs.is_some();
        if let Some(packed) = first_step_logs {
            exec_item.insert("logsZ".into(), AttributeValue::B(Blob::new(packed)));
        }
        let mut actions = vec![self.execution_action(exec_item, t.expected_version)?];
        // Second, so that a failed condition tells a full flow from a conflict.
        if let Some(slot) = t.slot {
            actions.push(self.slot_action(&t.execution, slot)?);
        }
        let on_slot = match t.slot {
            Some(Slot::Take { .. } | Slot::Check { .. }) => Some(StoreError::LimitReached(format!(
                "flow {}.{}",
                t.execution.namespace, t.execution.flow_id
            ))),
            _ => None,
        };
        // Children get fresh ids and the parent's version condition guards the whole
        // transaction, so a plain put cannot overwrite a live child.
        for child in &t.children {
            actions.push(self.put_action(self.execution_item(child, 1).await?, None)?);
        }
        // An item pushed and acked by the same step is gone when it ends; and one
        // transaction may touch an item only once.
        let acked: std::collections::HashSet<&str> = t.ack.iter().map(String::as_str).collect();
        let mut seen = std::collections::HashSet::new();
        let pushed: Vec<&WorkItem> = t
            .push
            .iter()
            .filter(|i| !acked.contains(i.id.as_str()) && seen.insert(i.id.as_str()))
            .collect();
        let mut to_send = Vec::new();
        for item in &pushed {
            let claimed = t.claimed.contains(&item.id);
            let send = !claimed && self.sendable(item, now);
            if send {
                to_send.push((*item).clone());
            }
            // A claimed item runs here; if this process dies, the sweeper sends it once the
            // claim has lapsed (the engine's lease, at least the grace).
            let resend_at = if claimed {
                Some(t.claim_until.unwrap_or(now).max(now + self.grace))
            } else if send {
                Some(Self::resend_after_send(item.due, now))
            } else {
                None
            };
            actions.push(self.put_action(Self::outbox_item(item, resend_at)?, None)?);
        }
        let pushed_ids: std::collections::HashSet<&str> = t.push.iter().map(|i| i.id.as_str()).collect();
        for id in t.ack.iter().filter(|id| !pushed_ids.contains(id.as_str())) {
            actions.push(self.delete_action(key(work_pk(id), WORK_SK))?);
        }
        // A parent waiting on this execution (`subflow-{id}`, due "never") is made due in
        // the same transaction, so a crash cannot leave it waiting. Its row was read just
        // before; if it goes meanwhile, the condition cancels the step, which is redone.
        let mut woken = Vec::new();
        if may_have_waiting_parent(&t.execution) {
            for id in &t.wake {
                if pushed_ids.contains(id.as_str()) || acked.contains(id.as_str()) {
                    continue;
                }
                let Some(row) = self.get_item(key(work_pk(id), WORK_SK)).await? else {
                    continue;
                };
                let mut item = Self::work_from_outbox(&row)?;
                item.due = now;
                actions.push(self.wake_action(id, now)?);
                woken.push(item);
            }
        }
        if actions.len() > MAX_TRANSACTION_ACTIONS {
            return Err(StoreError::Backend(format!(
                "one step of execution {} writes {} items (at most {MAX_TRANSACTION_ACTIONS})",
                t.execution.id,
                actions.len()
            )));
        }
        let mut log_items = Vec::with_capacity(t.logs.len());
        if !logs_inline {
            for (i, log) in t.logs.iter().enumerate() {
                log_items.push(self.log_item(log, i, now)?);
            }
        }
        // Logs ride in the transaction while it has room; the rest follow in batches.
        let room = MAX_TRANSACTION_ACTIONS - actions.len();
        let rest = if log_items.len() > room {
            log_items.split_off(room)
        } else {
            Vec::new()
        };
        for item in log_items {
            actions.push(self.put_action(item, None)?);
        }
        if actions.len() == 1 {
            self.write_one(actions.remove(0), on_condition).await?;
        } else {
            self.transact_with(actions, on_condition, on_slot).await?;
        }

        if !rest.is_empty() {
            let requests = rest
                .into_iter()
                .map(put_request)
                .collect::<Result<Vec<_>, StoreError>>()?;
            if let Err(e) = self.batch_write(requests).await {
                tracing::warn!(error = %e, execution = %t.execution.id, "some logs of a committed step were not written");
            }
        }
        if let (true, Some(previous)) = (large, t.expected_version) {
            self.drop_old_body(&t.execution.id, previous).await;
        }
        // Committed: failures below are recovered by the sweeper, never reported as a lost step.
        to_send.extend(woken);
        if !to_send.is_empty() && self.queue_url.is_some() {
            if let Err(e) = self.send_work(&to_send, now).await {
                tracing::warn!(error = %e, "work not sent; the sweeper will");
            }
        }
        Ok(version)
    }

    async fn search(&self, query: &ExecutionQuery) -> Result<Page<Execution>, StoreError> {
        let sort = execution_sort(&query.sort);
        if let Some(descending) = start_date_order(&sort) {
            return self.search_by_start_date(query, descending).await;
        }
        // Other orders need every match: read the date range whole.
        let items = self
            .execution_items(query.namespace.as_deref(), query.start_date, query.end_date)
            .await?;
        let filter = ExecutionFilter::of(query);
        let mut found = Vec::new();
        for item in &items {
            if !filter.keeps_item(item) {
                continue;
            }
            let e = self.execution_from_item(item).await?;
            if filter.keeps(&e) {
                found.push(e);
            }
        }
        sort_by_fields(&mut found, &sort, |e, f| match f {
            "start" => Some(SortKey::Num(start_date(e).timestamp_millis())),
            "end" => e.state.end_date.map(|d| SortKey::Num(d.timestamp_millis())),
            "id" => Some(SortKey::Text(e.id.clone())),
            "namespace" => Some(SortKey::Text(e.namespace.clone())),
            "flowId" => Some(SortKey::Text(e.flow_id.clone())),
            "state" => Some(SortKey::Text(e.state.current.as_str().to_string())),
            _ => None,
        });
        Ok(page(found, query.pagination))
    }

    async fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let out = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(exec_pk(id), EXEC_SK)))
            // Out of the namespace index too: searches never read deleted executions.
            .update_expression("SET #d = :true, #v = #v + :one REMOVE #gp, #gs")
            .condition_expression("attribute_exists(#pk) AND #d = :false")
            .set_expression_attribute_names(Some(names(&[
                ("#d", "deleted"),
                ("#v", "version"),
                ("#gp", "gsi1pk"),
                ("#gs", "gsi1sk"),
                ("#pk", "pk"),
            ])))
            .set_expression_attribute_values(Some(values(vec![
                (":true", b(true)),
                (":false", b(false)),
                (":one", n(1)),
            ])))
            .send()
            .await;
        Ok(update_outcome(out)?.is_some())
    }

    async fn list_non_terminal(&self) -> Result<Vec<String>, StoreError> {
        let mut items = self.execution_items(None, None, None).await?;
        items.retain(|i| !get_bool(i, "terminated") && !get_bool(i, "deleted"));
        items.sort_by_key(|i| opt_n(i, "startDate").unwrap_or_default());
        Ok(items
            .iter()
            .filter_map(|i| {
                opt_s(i, "pk")
                    .and_then(|pk| pk.strip_prefix("EXEC#"))
                    .map(str::to_string)
            })
            .collect())
    }
}
