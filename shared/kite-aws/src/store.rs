//! DynamoDB repositories (flows, executions, logs, trigger state) and the SQS work
//! queue with its DynamoDB outbox, in one table (see docs/aws.md, "Storage").

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, DeleteRequest, Put, PutRequest, ReturnValue, TransactWriteItem, Update,
    WriteRequest,
};
use chrono::{DateTime, Utc};
use kite_core::execution::{Execution, LogEntry};
use kite_core::trigger::TriggerState;
use kite_engine::ports::{
    level_rank, ExecutionQuery, ExecutionRepository, FlowQuery, FlowRepository, LogQuery, LogRepository,
    Page, Sort, StoreError, StoredFlow, TaskQueue, Transition, TriggerQuery, TriggerRepository,
    VersionedExecution, VersionedTrigger, WorkItem,
};

mod search;

pub use search::SearchBudget;
use search::{execution_sort, start_bounds, start_date_order, ExecutionFilter};

use crate::config::AwsConfig;
use crate::files::S3FileStorage;
use crate::items::*;

/// Execution bodies whose deflated JSON is above this go to S3 (an item holds at most
/// 400 KB, keys and other attributes included).
pub const INLINE_BODY_LIMIT: usize = 350 * 1024;
/// The log lines of an execution's first step ride in its item when they deflate to at
/// most this: an execution that starts and ends in one invocation is then one single-item
/// write (1 write unit per KB) instead of a transaction (2 per KB per item).
const FIRST_STEP_LOGS_LIMIT: usize = 2 * 1024;
/// Attributes an execution item has only sometimes (one of the three body forms, the
/// expiry): an update removes those the new version lacks (a restarted execution loses
/// its expiry).
const OPTIONAL_EXECUTION_ATTRIBUTES: [&str; 4] = ["bodyZ", "bodyRef", "body", "ttl"];
/// A log line's stored JSON at most (DynamoDB items hold 400 KB; lines are for people).
const MAX_LOG_BODY: usize = 64 * 1024;
/// TransactWriteItems takes at most 100 actions.
const MAX_TRANSACTION_ACTIONS: usize = 100;
/// SQS delays messages by at most 15 minutes; later items wait in the outbox for the sweeper.
const MAX_SQS_DELAY_SECS: i64 = 900;
/// Resends of one overdue outbox item by the sweeper before it is left for an operator.
const MAX_SWEEPS: i64 = 5;
/// How long after its due date an item handed to SQS may be sent again: longer than a
/// Lambda can run (15 minutes), so a worker still running it is never doubled; a crashed
/// worker's message comes back from SQS by itself.
const SQS_RESEND_AFTER_SECS: i64 = 16 * 60;

/// The DynamoDB table and the SQS queue behind the engine's repositories and queue.
pub struct AwsStore {
    ddb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    files: Arc<S3FileStorage>,
    table: String,
    queue_url: Option<String>,
    grace: chrono::Duration,
    log_retention: chrono::Duration,
    /// Receipt handles of the messages this process leased, by work item id.
    receipts: Mutex<HashMap<String, String>>,
    log_seq: AtomicU64,
    log_nonce: u32,
    search_budget: SearchBudget,
}

/// What one sweep of the outbox did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Items sent for the first time (due within SQS's 15-minute delay).
    pub sent: usize,
    /// Overdue items sent again (their earlier send or in-process run was lost).
    pub resent: usize,
}

/// Re-sends overdue outbox items and sends the ones that came within SQS's delay
/// window; run every minute by the scheduler function.
pub async fn sweep_outbox(store: &AwsStore, now: DateTime<Utc>) -> Result<SweepReport, StoreError> {
    store.sweep_outbox(now).await
}

fn sort_by_fields<T>(items: &mut [T], sort: &[Sort], key: impl Fn(&T, &str) -> Option<SortKey>) {
    items.sort_by(|a, b| {
        for s in sort {
            let (ka, kb) = (key(a, &s.field), key(b, &s.field));
            if ka.is_none() && kb.is_none() {
                continue;
            }
            let o = ka.cmp(&kb);
            let o = if s.descending { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
}

/// A condition expression with its attribute names and values.
type Condition<'a> = (&'a str, HashMap<String, String>, HashMap<String, AttributeValue>);

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum SortKey {
    Num(i64),
    Text(String),
}

fn page<T>(mut all: Vec<T>, pagination: kite_engine::ports::Pagination) -> Page<T> {
    let total = all.len() as u64;
    let start = (pagination.offset() as usize).min(all.len());
    let end = start.saturating_add(pagination.size as usize).min(all.len());
    let results = all.drain(start..end).collect();
    Page { results, total }
}

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

fn key(pk: String, sk: &str) -> Item {
    Item::from([("pk".into(), s(pk)), ("sk".into(), s(sk))])
}

fn names(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn values(pairs: Vec<(&str, AttributeValue)>) -> HashMap<String, AttributeValue> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn is_conditional_failure(code: Option<&str>) -> bool {
    code == Some("ConditionalCheckFailed")
}

/// A DynamoDB JSON image (as in Lambda stream events: `{"pk": {"S": "..."}}`) as an item.
fn item_from_json(image: &serde_json::Value) -> Result<Item, StoreError> {
    let object = image
        .as_object()
        .ok_or_else(|| StoreError::Backend("stream image is not an object".into()))?;
    let mut item = Item::new();
    for (name, value) in object {
        let Some((kind, v)) = value.as_object().and_then(|o| o.iter().next()) else {
            continue;
        };
        let attr = match (kind.as_str(), v) {
            ("S", serde_json::Value::String(x)) => AttributeValue::S(x.clone()),
            ("N", serde_json::Value::String(x)) => AttributeValue::N(x.clone()),
            ("BOOL", serde_json::Value::Bool(x)) => AttributeValue::Bool(*x),
            ("B", serde_json::Value::String(x)) => {
                use base64::Engine as _;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(x)
                    .map_err(|e| StoreError::Backend(format!("stream image attribute {name}: {e}")))?;
                AttributeValue::B(Blob::new(bytes))
            }
            // Other types never appear in execution items.
            _ => continue,
        };
        item.insert(name.clone(), attr);
    }
    Ok(item)
}

impl AwsStore {
    pub fn new(
        ddb: aws_sdk_dynamodb::Client,
        sqs: aws_sdk_sqs::Client,
        files: Arc<S3FileStorage>,
        config: &AwsConfig,
    ) -> AwsStore {
        AwsStore {
            ddb,
            sqs,
            files,
            table: config.table_name.clone(),
            queue_url: config.queue_url.clone(),
            grace: chrono::Duration::from_std(config.outbox_grace)
                .unwrap_or_else(|_| chrono::Duration::seconds(120)),
            log_retention: chrono::Duration::days(i64::from(config.log_retention_days)),
            receipts: Mutex::new(HashMap::new()),
            log_seq: AtomicU64::new(0),
            log_nonce: process_nonce(),
            search_budget: SearchBudget::default(),
        }
    }

    /// The same store with another search budget (see [`SearchBudget`]).
    pub fn with_search_budget(mut self, budget: SearchBudget) -> AwsStore {
        self.search_budget = budget;
        self
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }

    pub fn dynamodb(&self) -> &aws_sdk_dynamodb::Client {
        &self.ddb
    }

    // ------------------------------------------------------------ executions

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

    async fn execution_from_item(&self, item: &Item) -> Result<Execution, StoreError> {
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

    /// The execution in a stream record's image (DynamoDB JSON, as Lambda delivers it):
    /// `None` for other items and deleted executions.
    pub async fn execution_from_stream_image(
        &self,
        image: &serde_json::Value,
    ) -> Result<Option<VersionedExecution>, StoreError> {
        self.execution_from_stream_item(&item_from_json(image)?).await
    }

    /// The execution in a stream record's image, its attributes already decoded (the stream
    /// function's event types): `None` for other items and deleted executions.
    pub async fn execution_from_stream_item(
        &self,
        item: &Item,
    ) -> Result<Option<VersionedExecution>, StoreError> {
        if opt_s(item, "sk") != Some(EXEC_SK) || get_bool(item, "deleted") {
            return Ok(None);
        }
        Ok(Some(VersionedExecution {
            execution: self.execution_from_item(item).await?,
            version: get_n(item, "version")?,
        }))
    }

    fn put_action(
        &self,
        item: Item,
        condition: Option<Condition<'_>>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
        if let Some((expr, names, values)) = condition {
            put = put
                .condition_expression(expr)
                .set_expression_attribute_names(Some(names));
            if !values.is_empty() {
                put = put.set_expression_attribute_values(Some(values));
            }
        }
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(backend)?)
            .build())
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

    /// One put or update on its own: a single-item write costs half a transaction's.
    async fn write_one(&self, action: TransactWriteItem, on_condition: StoreError) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::operation::put_item::PutItemError;
        use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
        if let Some(put) = action.put {
            let out = self
                .ddb
                .put_item()
                .table_name(put.table_name)
                .set_item(Some(put.item))
                .set_condition_expression(put.condition_expression)
                .set_expression_attribute_names(put.expression_attribute_names)
                .set_expression_attribute_values(put.expression_attribute_values)
                .send()
                .await;
            return match out.map_err(|e| e.into_service_error()) {
                Ok(_) => Ok(()),
                Err(PutItemError::ConditionalCheckFailedException(_)) => Err(on_condition),
                Err(other) => Err(sdk(other)),
            };
        }
        if let Some(update) = action.update {
            let out = self
                .ddb
                .update_item()
                .table_name(update.table_name)
                .set_key(Some(update.key))
                .update_expression(update.update_expression)
                .set_condition_expression(update.condition_expression)
                .set_expression_attribute_names(update.expression_attribute_names)
                .set_expression_attribute_values(update.expression_attribute_values)
                .send()
                .await;
            return match out.map_err(|e| e.into_service_error()) {
                Ok(_) => Ok(()),
                Err(UpdateItemError::ConditionalCheckFailedException(_)) => Err(on_condition),
                Err(other) => Err(sdk(other)),
            };
        }
        self.transact(vec![action], on_condition).await
    }

    fn delete_action(&self, key: Item) -> Result<TransactWriteItem, StoreError> {
        Ok(TransactWriteItem::builder()
            .delete(
                Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key))
                    .build()
                    .map_err(backend)?,
            )
            .build())
    }

    fn execution_condition(
        expected: Option<i64>,
    ) -> (
        &'static str,
        HashMap<String, String>,
        HashMap<String, AttributeValue>,
    ) {
        match expected {
            None => (
                "attribute_not_exists(#pk)",
                names(&[("#pk", "pk")]),
                HashMap::new(),
            ),
            Some(v) => (
                "#v = :v AND #d = :false",
                names(&[("#v", "version"), ("#d", "deleted")]),
                values(vec![(":v", n(v)), (":false", b(false))]),
            ),
        }
    }

    /// Runs a transaction; a failed condition on action `index` 0 is a lost race.
    async fn transact(
        &self,
        actions: Vec<TransactWriteItem>,
        on_condition: StoreError,
    ) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
        match self
            .ddb
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) => match err.into_service_error() {
                TransactWriteItemsError::TransactionCanceledException(e) => {
                    let reasons = e.cancellation_reasons();
                    let failed_at = reasons.iter().position(|r| is_conditional_failure(r.code()));
                    if reasons.is_empty() || failed_at == Some(0) {
                        Err(on_condition)
                    } else if failed_at.is_some() {
                        // Another item of the step changed since it was read: redo the step.
                        Err(StoreError::Conflict(format!(
                            "an item written with {on_condition} changed"
                        )))
                    } else if reasons
                        .iter()
                        .any(|r| matches!(r.code(), Some("TransactionConflict")))
                    {
                        Err(StoreError::Conflict(format!("transaction conflict: {e}")))
                    } else {
                        Err(StoreError::Backend(format!(
                            "transaction cancelled: {:?}",
                            reasons.iter().map(|r| r.code()).collect::<Vec<_>>()
                        )))
                    }
                }
                TransactWriteItemsError::TransactionInProgressException(e) => {
                    Err(StoreError::Conflict(e.to_string()))
                }
                other => Err(sdk(other)),
            },
        }
    }

    async fn put_conditional(
        &self,
        item: Item,
        condition: Condition<'_>,
        on_condition: StoreError,
    ) -> Result<(), StoreError> {
        self.write_one(self.put_action(item, Some(condition))?, on_condition)
            .await
    }

    async fn get_item(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk)?;
        Ok(out.item)
    }

    /// Every item of a Query (all pages).
    async fn query_all(
        &self,
        index: Option<&str>,
        key_condition: &str,
        names: HashMap<String, String>,
        vals: HashMap<String, AttributeValue>,
        filter: Option<&str>,
        forward: bool,
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut req = self
                .ddb
                .query()
                .table_name(&self.table)
                .key_condition_expression(key_condition)
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(vals.clone()))
                .scan_index_forward(forward)
                .set_exclusive_start_key(start.take());
            match index {
                Some(i) => req = req.index_name(i),
                None => req = req.consistent_read(true),
            }
            if let Some(f) = filter {
                req = req.filter_expression(f);
            }
            let page = req.send().await.map_err(sdk)?;
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    /// Namespaces that have (or had) flows: executions are only ever created for flows.
    async fn flow_namespaces(&self, prefix: Option<&str>) -> Result<Vec<String>, StoreError> {
        let items = self.flow_latest_items(prefix).await?;
        let mut namespaces: Vec<String> = items
            .iter()
            .filter_map(|i| opt_s(i, "namespace").map(str::to_string))
            .filter(|ns| prefix.is_none_or(|p| namespace_matches(ns, p)))
            .collect();
        if let Some(p) = prefix {
            namespaces.push(p.to_string());
        }
        namespaces.sort();
        namespaces.dedup();
        Ok(namespaces)
    }

    async fn flow_latest_items(&self, prefix: Option<&str>) -> Result<Vec<Item>, StoreError> {
        match prefix {
            Some(p) => {
                self.query_all(
                    Some("gsi1"),
                    "#p = :p AND begins_with(#s, :ns)",
                    names(&[("#p", "gsi1pk"), ("#s", "gsi1sk")]),
                    values(vec![(":p", s(FLOWS_GSI)), (":ns", s(p))]),
                    None,
                    true,
                )
                .await
            }
            None => {
                self.query_all(
                    Some("gsi1"),
                    "#p = :p",
                    names(&[("#p", "gsi1pk")]),
                    values(vec![(":p", s(FLOWS_GSI))]),
                    None,
                    true,
                )
                .await
            }
        }
    }

    /// Execution items of the namespaces under `prefix`, within the start date bounds.
    async fn execution_items(
        &self,
        prefix: Option<&str>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Vec<Item>, StoreError> {
        let (lo, hi) = start_bounds(from, to);
        let mut out = Vec::new();
        for ns in self.flow_namespaces(prefix).await? {
            out.extend(
                self.query_all(
                    Some("gsi1"),
                    "#p = :p AND #s BETWEEN :lo AND :hi",
                    names(&[("#p", "gsi1pk"), ("#s", "gsi1sk")]),
                    values(vec![
                        (":p", s(exec_gsi_pk(&ns))),
                        (":lo", s(lo.clone())),
                        (":hi", s(hi.clone())),
                    ]),
                    None,
                    false,
                )
                .await?,
            );
        }
        Ok(out)
    }

    // ------------------------------------------------------------ outbox and SQS

    /// `resend_at`: when the sweeper may send the item (again); `None` for items never sent.
    fn outbox_item(item: &WorkItem, resend_at: Option<DateTime<Utc>>) -> Result<Item, StoreError> {
        let mut row = Item::from([
            ("pk".into(), s(work_pk(&item.id))),
            ("sk".into(), s(WORK_SK)),
            ("executionId".into(), s(&item.execution_id)),
            ("due".into(), n(item.due.timestamp_millis())),
            ("body".into(), s(serde_json::to_string(item).map_err(backend)?)),
            ("gsi1pk".into(), s(outbox_gsi_pk(&item.id))),
            ("gsi1sk".into(), s(padded_ms(item.due))),
        ]);
        if let Some(at) = resend_at {
            row.insert("resendAt".into(), n(at.timestamp_millis()));
        }
        Ok(row)
    }

    fn work_from_outbox(row: &Item) -> Result<WorkItem, StoreError> {
        let mut item: WorkItem = serde_json::from_str(get_s(row, "body")?).map_err(backend)?;
        item.due = from_ms(get_n(row, "due")?);
        Ok(item)
    }

    /// When an item sent to SQS at `now` may be sent again.
    fn resend_after_send(due: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
        due.max(now) + chrono::Duration::seconds(SQS_RESEND_AFTER_SECS)
    }

    /// Whether a push at `now` hands this item to SQS right away.
    fn sendable(&self, item: &WorkItem, now: DateTime<Utc>) -> bool {
        self.queue_url.is_some() && (item.due - now).num_seconds() <= MAX_SQS_DELAY_SECS
    }

    /// Sends work items to the queue, each delayed until its due date (at most 15 minutes).
    /// Returns how many could not be sent (the sweeper sends those later).
    pub async fn send_work(&self, items: &[WorkItem], now: DateTime<Utc>) -> Result<usize, StoreError> {
        let Some(url) = &self.queue_url else {
            return Err(StoreError::Backend("QUEUE_URL is not set".into()));
        };
        let mut failed = 0;
        for chunk in items.chunks(10) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, item) in chunk.iter().enumerate() {
                // Rounded up: a message must not arrive before its item is due.
                let millis = (item.due - now).num_milliseconds();
                let delay = ((millis + 999) / 1000).clamp(0, MAX_SQS_DELAY_SECS) as i32;
                entries.push(
                    aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(serde_json::to_string(item).map_err(backend)?)
                        .delay_seconds(delay)
                        .build()
                        .map_err(backend)?,
                );
            }
            match self
                .sqs
                .send_message_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(out) => failed += out.failed.len(),
                Err(e) => {
                    tracing::warn!(error = %sdk(e), "sending work to SQS failed; the outbox keeps it");
                    failed += chunk.len();
                }
            }
        }
        Ok(failed)
    }

    /// A queue message body as a work item.
    pub fn decode_work(body: &str) -> Result<WorkItem, StoreError> {
        serde_json::from_str(body).map_err(|e| StoreError::Backend(format!("not a work item: {e}")))
    }

    async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for chunk in requests.chunks(25) {
            let mut pending = HashMap::from([(self.table.clone(), chunk.to_vec())]);
            for attempt in 0..8u32 {
                let out = self
                    .ddb
                    .batch_write_item()
                    .set_request_items(Some(pending))
                    .send()
                    .await
                    .map_err(sdk)?;
                pending = out.unprocessed_items.unwrap_or_default();
                pending.retain(|_, v| !v.is_empty());
                if pending.is_empty() {
                    break;
                }
                if attempt == 7 {
                    return Err(StoreError::Backend("batch write left unprocessed items".into()));
                }
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
        }
        Ok(())
    }

    fn log_item(&self, log: &LogEntry, index: usize, now: DateTime<Utc>) -> Result<Item, StoreError> {
        let seq = self.log_seq.fetch_add(1, AtomicOrdering::Relaxed);
        // Time first (order across processes), then this process's counter (order within
        // it), then a per-process nonce (uniqueness across processes).
        let sk = format!(
            "LOG#{:017}#{:012}#{:08x}#{index:05}",
            now.timestamp_micros().max(0),
            seq,
            self.log_nonce
        );
        let mut item = Item::from([
            ("pk".into(), s(exec_pk(&log.execution_id))),
            ("sk".into(), s(sk)),
            ("body".into(), s(log_body(log)?)),
            ("ttl".into(), n((now + self.log_retention).timestamp())),
        ]);
        if let Some(tr) = &log.task_run_id {
            item.insert("taskRunId".into(), s(tr));
        }
        Ok(item)
    }

    /// Makes a waiting outbox item due now and handed out (sent right after the commit).
    fn wake_action(&self, id: &str, now: DateTime<Utc>) -> Result<TransactWriteItem, StoreError> {
        Ok(TransactWriteItem::builder()
            .update(
                Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(work_pk(id), WORK_SK)))
                    .update_expression("SET #due = :due, #g = :g, #r = :r")
                    .condition_expression("attribute_exists(#pk)")
                    .set_expression_attribute_names(Some(names(&[
                        ("#due", "due"),
                        ("#g", "gsi1sk"),
                        ("#r", "resendAt"),
                        ("#pk", "pk"),
                    ])))
                    .set_expression_attribute_values(Some(values(vec![
                        (":due", n(now.timestamp_millis())),
                        (":g", s(padded_ms(now))),
                        (":r", n(Self::resend_after_send(now, now).timestamp_millis())),
                    ])))
                    .build()
                    .map_err(backend)?,
            )
            .build())
    }

    async fn sweep_outbox(&self, now: DateTime<Utc>) -> Result<SweepReport, StoreError> {
        let horizon = now + chrono::Duration::seconds(MAX_SQS_DELAY_SECS);
        let mut report = SweepReport::default();
        for shard in 0..OUTBOX_SHARDS {
            let rows = self
                .query_all(
                    Some("gsi1"),
                    "#p = :p AND #s <= :h",
                    names(&[
                        ("#p", "gsi1pk"),
                        ("#s", "gsi1sk"),
                        ("#r", "resendAt"),
                        ("#sw", "sweeps"),
                    ]),
                    values(vec![
                        (":p", s(format!("OUTBOX#{shard}"))),
                        (":h", s(padded_ms(horizon))),
                        (":now", n(now.timestamp_millis())),
                        (":max", n(MAX_SWEEPS)),
                    ]),
                    Some(
                        "attribute_not_exists(#r) OR (#r <= :now \
                         AND (attribute_not_exists(#sw) OR #sw < :max))",
                    ),
                    true,
                )
                .await?;
            for row in rows {
                let item = match Self::work_from_outbox(&row) {
                    Ok(i) => i,
                    Err(e) => {
                        tracing::warn!(error = %e, "unreadable outbox item skipped");
                        continue;
                    }
                };
                let resend = row.contains_key("resendAt");
                if self.send_work(std::slice::from_ref(&item), now).await? > 0 {
                    continue;
                }
                let expr = if resend {
                    "SET #r = :r, #sw = if_not_exists(#sw, :zero) + :one"
                } else {
                    "SET #r = :r"
                };
                let next = Self::resend_after_send(item.due, now);
                let mut vals = vec![(":r", n(next.timestamp_millis()))];
                let mut nm = vec![("#r", "resendAt"), ("#pk", "pk")];
                if resend {
                    vals.push((":zero", n(0)));
                    vals.push((":one", n(1)));
                    nm.push(("#sw", "sweeps"));
                }
                let updated = self
                    .ddb
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key(work_pk(&item.id), WORK_SK)))
                    .update_expression(expr)
                    .condition_expression("attribute_exists(#pk)")
                    .set_expression_attribute_names(Some(names(&nm)))
                    .set_expression_attribute_values(Some(values(vals)))
                    .send()
                    .await;
                if let Err(e) = updated {
                    // Acked meanwhile (condition failed) or a transient error: the next sweep decides.
                    tracing::debug!(error = %sdk(e), id = %item.id, "outbox item not marked sent");
                }
                if resend {
                    report.resent += 1;
                } else {
                    report.sent += 1;
                }
            }
        }
        if report.sent + report.resent > 0 {
            tracing::info!(sent = report.sent, resent = report.resent, "outbox swept");
        }
        Ok(report)
    }

    fn require_queue(&self) -> Result<&str, StoreError> {
        self.queue_url
            .as_deref()
            .ok_or_else(|| StoreError::Backend("QUEUE_URL is not set".into()))
    }

    /// The work queue's URL, if configured.
    pub fn queue_url(&self) -> Option<&str> {
        self.queue_url.as_deref()
    }

    fn take_receipt(&self, id: &str) -> Option<String> {
        self.receipts.lock().ok().and_then(|mut r| r.remove(id))
    }
}

/// A log line's JSON, its message cut to fit an item: one huge line must not make the
/// step's transaction fail (and the step with it).
fn log_body(log: &LogEntry) -> Result<String, StoreError> {
    let body = serde_json::to_string(log).map_err(backend)?;
    if body.len() <= MAX_LOG_BODY {
        return Ok(body);
    }
    let mut cut = log.clone();
    let keep = MAX_LOG_BODY.saturating_sub(body.len() - log.message.len() + 64);
    let mut end = keep.min(cut.message.len());
    while !cut.message.is_char_boundary(end) {
        end -= 1;
    }
    cut.message.truncate(end);
    cut.message.push_str(" [truncated by Kite: line over 64 KB]");
    serde_json::to_string(&cut).map_err(backend)
}

fn deflate(bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    use std::io::Write;
    // The default level for the common small body: benchmark01's 2.2 KB execution
    // deflates to 488 bytes instead of 558, which keeps its item under the 1 KB of one
    // write unit; the best level gains nothing more there and costs twice the time.
    let level = if bytes.len() <= 64 * 1024 {
        flate2::Compression::default()
    } else {
        flate2::Compression::fast()
    };
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), level);
    encoder.write_all(bytes).map_err(backend)?;
    encoder.finish().map_err(backend)
}

fn inflate(bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| StoreError::Backend(format!("stored deflated data: {e}")))?;
    Ok(out)
}

/// The first step's log lines, deflated, when they are few enough to ride in the
/// execution item (see `FIRST_STEP_LOGS_LIMIT`).
fn packed_first_step_logs(logs: &[LogEntry]) -> Result<Option<Vec<u8>>, StoreError> {
    if logs.is_empty() {
        return Ok(None);
    }
    let lines = logs.iter().map(log_body).collect::<Result<Vec<_>, _>>()?;
    let packed = deflate(format!("[{}]", lines.join(",")).as_bytes())?;
    Ok((packed.len() <= FIRST_STEP_LOGS_LIMIT).then_some(packed))
}

/// Tells apart log keys written by concurrent processes in the same microsecond.
fn process_nonce() -> u32 {
    let t = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
    let mixed = t ^ (u64::from(std::process::id()) << 17);
    (mixed ^ (mixed >> 32)) as u32
}

// ---------------------------------------------------------------- flows

#[async_trait]
impl FlowRepository for AwsStore {
    async fn create(
        &self,
        namespace: &str,
        id: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<StoredFlow, StoreError> {
        let latest = self.get_item(key(flow_pk(namespace, id), FLOW_LATEST)).await?;
        let latest = latest.as_ref().map(flow_from_item).transpose()?;
        if latest.as_ref().is_some_and(|f| !f.deleted) {
            return Err(StoreError::AlreadyExists(format!("flow {namespace}.{id}")));
        }
        let flow = StoredFlow {
            namespace: namespace.to_string(),
            id: id.to_string(),
            revision: latest.as_ref().map_or(1, |f| f.revision + 1),
            source: source.to_string(),
            deleted: false,
            updated: now,
        };
        match self.write_revision(&flow, latest.map(|f| f.revision)).await {
            // A concurrent create won the race.
            Err(StoreError::Conflict(_)) => {
                return Err(StoreError::AlreadyExists(format!("flow {namespace}.{id}")))
            }
            other => other?,
        }
        Ok(flow)
    }

    async fn update(
        &self,
        namespace: &str,
        id: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<StoredFlow, StoreError> {
        let latest = self
            .get_item(key(flow_pk(namespace, id), FLOW_LATEST))
            .await?
            .as_ref()
            .map(flow_from_item)
            .transpose()?
            .filter(|f| !f.deleted)
            .ok_or_else(|| StoreError::NotFound(format!("flow {namespace}.{id}")))?;
        if latest.source == source {
            return Ok(latest);
        }
        let flow = StoredFlow {
            revision: latest.revision + 1,
            source: source.to_string(),
            updated: now,
            ..latest.clone()
        };
        self.write_revision(&flow, Some(latest.revision)).await?;
        Ok(flow)
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
        let q = query
            .q
            .as_ref()
            .filter(|q| !q.is_empty())
            .map(|q| q.to_lowercase());
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
    /// Writes a revision and the `LATEST` copy in one transaction, only if `LATEST` is
    /// still at `previous` (two concurrent saves never both win).
    async fn write_revision(&self, flow: &StoredFlow, previous: Option<i64>) -> Result<(), StoreError> {
        let latest_condition = match previous {
            None => (
                "attribute_not_exists(#pk)",
                names(&[("#pk", "pk")]),
                HashMap::new(),
            ),
            Some(rev) => (
                "#r = :r",
                names(&[("#r", "revision")]),
                values(vec![(":r", n(rev))]),
            ),
        };
        let actions = vec![
            self.put_action(flow_item(flow, true), Some(latest_condition))?,
            self.put_action(
                flow_item(flow, false),
                Some((
                    "attribute_not_exists(#pk)",
                    names(&[("#pk", "pk")]),
                    HashMap::new(),
                )),
            )?,
        ];
        self.transact(
            actions,
            StoreError::Conflict(format!("flow {}.{}", flow.namespace, flow.id)),
        )
        .await
    }
}

// ---------------------------------------------------------------- executions

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
            self.transact(actions, on_condition).await?;
        }

        if !rest.is_empty() {
            let requests = rest
                .into_iter()
                .map(|item| {
                    Ok(WriteRequest::builder()
                        .put_request(
                            PutRequest::builder()
                                .set_item(Some(item))
                                .build()
                                .map_err(backend)?,
                        )
                        .build())
                })
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
        use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
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
        match out {
            Ok(_) => Ok(true),
            Err(err) => match err.into_service_error() {
                UpdateItemError::ConditionalCheckFailedException(_) => Ok(false),
                other => Err(sdk(other)),
            },
        }
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

// ---------------------------------------------------------------- logs

#[async_trait]
impl LogRepository for AwsStore {
    async fn append(&self, logs: &[LogEntry]) -> Result<(), StoreError> {
        let now = Utc::now();
        let mut requests = Vec::with_capacity(logs.len());
        for (i, log) in logs.iter().enumerate() {
            requests.push(
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(self.log_item(log, i, now)?))
                            .build()
                            .map_err(backend)?,
                    )
                    .build(),
            );
        }
        self.batch_write(requests).await
    }

    async fn list(&self, query: &LogQuery) -> Result<Vec<LogEntry>, StoreError> {
        let (embedded, items) = self.log_rows(&query.execution_id).await?;
        let mut all = embedded;
        for item in &items {
            all.push(serde_json::from_str(get_s(item, "body")?).map_err(backend)?);
        }
        let min = query.min_level.as_deref().map(level_rank).unwrap_or(0);
        all.retain(|log: &LogEntry| {
            !(level_rank(&log.level) < min
                || query
                    .task_run_id
                    .as_ref()
                    .is_some_and(|t| log.task_run_id.as_ref() != Some(t))
                || query
                    .task_id
                    .as_ref()
                    .is_some_and(|t| log.task_id.as_ref() != Some(t))
                || query.attempt.is_some_and(|a| log.attempt_number != Some(a)))
        });
        Ok(all)
    }

    async fn delete_by_execution(&self, execution_id: &str) -> Result<u64, StoreError> {
        use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
        let (embedded, items) = self.log_rows(execution_id).await?;
        if !embedded.is_empty() {
            let out = self
                .ddb
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(exec_pk(execution_id), EXEC_SK)))
                .update_expression("REMOVE #l")
                .condition_expression("attribute_exists(#l)")
                .set_expression_attribute_names(Some(names(&[("#l", "logsZ")])))
                .send()
                .await;
            match out.map_err(|e| e.into_service_error()) {
                Ok(_) | Err(UpdateItemError::ConditionalCheckFailedException(_)) => {}
                Err(other) => return Err(sdk(other)),
            }
        }
        let mut requests = Vec::with_capacity(items.len());
        for item in &items {
            let k = key(get_s(item, "pk")?.to_string(), get_s(item, "sk")?);
            requests.push(
                WriteRequest::builder()
                    .delete_request(
                        DeleteRequest::builder()
                            .set_key(Some(k))
                            .build()
                            .map_err(backend)?,
                    )
                    .build(),
            );
        }
        self.batch_write(requests).await?;
        Ok((embedded.len() + items.len()) as u64)
    }
}

impl AwsStore {
    /// An execution's log lines in one Query of its partition: those of its first step
    /// kept in the execution item (they came first), then the log items in key order.
    async fn log_rows(&self, execution_id: &str) -> Result<(Vec<LogEntry>, Vec<Item>), StoreError> {
        let mut items = self
            .query_all(
                None,
                "#p = :p",
                names(&[("#p", "pk")]),
                values(vec![(":p", s(exec_pk(execution_id)))]),
                None,
                true,
            )
            .await?;
        let mut embedded = Vec::new();
        if let Some(at) = items.iter().position(|i| opt_s(i, "sk") == Some(EXEC_SK)) {
            if let Some(AttributeValue::B(packed)) = items.remove(at).get("logsZ") {
                embedded = serde_json::from_slice(&inflate(packed.as_ref())?).map_err(backend)?;
            }
        }
        items.retain(|i| opt_s(i, "sk").is_some_and(|sk| sk.starts_with("LOG#")));
        Ok((embedded, items))
    }
}

// ---------------------------------------------------------------- queue

/// SQS delivers the work; the outbox rows in DynamoDB are the durable record
/// (see docs/aws.md for what differs from the local queue).
#[async_trait]
impl TaskQueue for AwsStore {
    async fn push(&self, items: &[WorkItem]) -> Result<(), StoreError> {
        let now = Utc::now();
        let mut to_send = Vec::new();
        for item in items {
            let send = self.sendable(item, now);
            let inserted = self
                .put_conditional(
                    Self::outbox_item(item, send.then(|| Self::resend_after_send(item.due, now)))?,
                    (
                        "attribute_not_exists(#pk)",
                        names(&[("#pk", "pk")]),
                        HashMap::new(),
                    ),
                    StoreError::AlreadyExists(item.id.clone()),
                )
                .await;
            match inserted {
                Ok(()) if send => to_send.push(item.clone()),
                Ok(()) | Err(StoreError::AlreadyExists(_)) => {}
                Err(e) => return Err(e),
            }
        }
        if !to_send.is_empty() {
            self.send_work(&to_send, now).await?;
        }
        Ok(())
    }

    async fn lease(
        &self,
        now: DateTime<Utc>,
        max: usize,
        lease_for: Duration,
    ) -> Result<Vec<WorkItem>, StoreError> {
        let url = self.require_queue()?;
        let out = self
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .visibility_timeout(lease_for.as_secs().clamp(0, 43_200) as i32)
            .wait_time_seconds(0)
            .send()
            .await
            .map_err(sdk)?;
        let mut items = Vec::new();
        for message in out.messages.unwrap_or_default() {
            let (Some(body), Some(receipt)) = (message.body(), message.receipt_handle()) else {
                continue;
            };
            let item = match Self::decode_work(body) {
                Ok(i) => i,
                Err(e) => {
                    // Not ours: leave it to the dead-letter queue after its receives.
                    tracing::warn!(error = %e, "unreadable queue message");
                    continue;
                }
            };
            if item.due > now {
                // Delivered early (SQS delays at most 15 minutes): hide it until due.
                let wait = (item.due - now).num_seconds().clamp(1, 43_200) as i32;
                self.sqs
                    .change_message_visibility()
                    .queue_url(url)
                    .receipt_handle(receipt)
                    .visibility_timeout(wait)
                    .send()
                    .await
                    .map_err(sdk)?;
                continue;
            }
            if let Ok(mut r) = self.receipts.lock() {
                r.insert(item.id.clone(), receipt.to_string());
            }
            items.push(item);
        }
        items.sort_by_key(|i| i.due);
        Ok(items)
    }

    async fn reschedule(&self, id: &str, due: DateTime<Utc>) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
        let now = Utc::now();
        let out = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(work_pk(id), WORK_SK)))
            .update_expression("SET #due = :due, #g = :g REMOVE #r, #sw")
            .condition_expression("attribute_exists(#pk)")
            .set_expression_attribute_names(Some(names(&[
                ("#due", "due"),
                ("#g", "gsi1sk"),
                ("#r", "resendAt"),
                ("#sw", "sweeps"),
                ("#pk", "pk"),
            ])))
            .set_expression_attribute_values(Some(values(vec![
                (":due", n(due.timestamp_millis())),
                (":g", s(padded_ms(due))),
            ])))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let row = match out {
            Ok(out) => out.attributes.unwrap_or_default(),
            Err(err) => {
                return match err.into_service_error() {
                    UpdateItemError::ConditionalCheckFailedException(_) => Ok(()),
                    other => Err(sdk(other)),
                }
            }
        };
        let item = Self::work_from_outbox(&row)?;
        match self.take_receipt(id) {
            // Leased here: the same message comes back at the new due date.
            Some(receipt) => {
                self.sqs
                    .change_message_visibility()
                    .queue_url(self.require_queue()?)
                    .receipt_handle(receipt)
                    .visibility_timeout((due - now).num_seconds().clamp(0, 43_200) as i32)
                    .send()
                    .await
                    .map_err(sdk)?;
                self.mark_sent(id, Self::resend_after_send(due, now)).await
            }
            None if self.sendable(&item, now) => {
                if self.send_work(&[item], now).await? == 0 {
                    self.mark_sent(id, Self::resend_after_send(due, now)).await?;
                }
                Ok(())
            }
            // Further than SQS can delay: the sweeper sends it when it comes within reach.
            None => Ok(()),
        }
    }

    async fn release_leases(&self) -> Result<u64, StoreError> {
        let receipts: Vec<String> = match self.receipts.lock() {
            Ok(mut r) => r.drain().map(|(_, v)| v).collect(),
            Err(_) => Vec::new(),
        };
        if receipts.is_empty() {
            return Ok(0);
        }
        let url = self.require_queue()?;
        let mut released = 0;
        for receipt in receipts {
            let out = self
                .sqs
                .change_message_visibility()
                .queue_url(url)
                .receipt_handle(receipt)
                .visibility_timeout(0)
                .send()
                .await;
            match out {
                Ok(_) => released += 1,
                Err(e) => tracing::debug!(error = %sdk(e), "lease already ended"),
            }
        }
        Ok(released)
    }

    async fn ack(&self, ids: &[String]) -> Result<(), StoreError> {
        let mut requests = Vec::with_capacity(ids.len());
        for id in ids {
            requests.push(
                WriteRequest::builder()
                    .delete_request(
                        DeleteRequest::builder()
                            .set_key(Some(key(work_pk(id), WORK_SK)))
                            .build()
                            .map_err(backend)?,
                    )
                    .build(),
            );
        }
        self.batch_write(requests).await?;
        for id in ids {
            if let Some(receipt) = self.take_receipt(id) {
                self.sqs
                    .delete_message()
                    .queue_url(self.require_queue()?)
                    .receipt_handle(receipt)
                    .send()
                    .await
                    .map_err(sdk)?;
            }
        }
        Ok(())
    }

    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut next: Option<DateTime<Utc>> = None;
        for shard in 0..OUTBOX_SHARDS {
            let out = self
                .ddb
                .query()
                .table_name(&self.table)
                .index_name("gsi1")
                .key_condition_expression("#p = :p")
                .expression_attribute_names("#p", "gsi1pk")
                .expression_attribute_values(":p", s(format!("OUTBOX#{shard}")))
                .limit(1)
                .send()
                .await
                .map_err(sdk)?;
            if let Some(row) = out.items.unwrap_or_default().first() {
                let due = from_ms(get_n(row, "due")?);
                next = Some(next.map_or(due, |n| n.min(due)));
            }
        }
        Ok(next)
    }

    async fn len(&self) -> Result<u64, StoreError> {
        let mut total = 0u64;
        for shard in 0..OUTBOX_SHARDS {
            let mut start: Option<Item> = None;
            loop {
                let out = self
                    .ddb
                    .query()
                    .table_name(&self.table)
                    .index_name("gsi1")
                    .key_condition_expression("#p = :p")
                    .expression_attribute_names("#p", "gsi1pk")
                    .expression_attribute_values(":p", s(format!("OUTBOX#{shard}")))
                    .select(aws_sdk_dynamodb::types::Select::Count)
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(sdk)?;
                total += out.count.max(0) as u64;
                match out.last_evaluated_key {
                    Some(k) if !k.is_empty() => start = Some(k),
                    _ => break,
                }
            }
        }
        Ok(total)
    }
}

impl AwsStore {
    async fn mark_sent(&self, id: &str, resend_at: DateTime<Utc>) -> Result<(), StoreError> {
        let out = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(work_pk(id), WORK_SK)))
            .update_expression("SET #r = :r")
            .condition_expression("attribute_exists(#pk)")
            .set_expression_attribute_names(Some(names(&[("#r", "resendAt"), ("#pk", "pk")])))
            .set_expression_attribute_values(Some(values(vec![(":r", n(resend_at.timestamp_millis()))])))
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(err) => match err.into_service_error() {
                aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(_) => Ok(()),
                other => Err(sdk(other)),
            },
        }
    }
}

// ---------------------------------------------------------------- triggers

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
                self.put_conditional(
                    trigger_item(state, 1)?,
                    (
                        "attribute_not_exists(#pk)",
                        names(&[("#pk", "pk")]),
                        HashMap::new(),
                    ),
                    StoreError::AlreadyExists(name),
                )
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
        let items = match &query.namespace {
            Some(ns) => {
                self.query_all(
                    Some("gsi1"),
                    "#p = :p AND begins_with(#s, :ns)",
                    names(&[("#p", "gsi1pk"), ("#s", "gsi1sk")]),
                    values(vec![(":p", s(TRIGGERS_GSI)), (":ns", s(ns))]),
                    None,
                    true,
                )
                .await?
            }
            None => {
                self.query_all(
                    Some("gsi1"),
                    "#p = :p",
                    names(&[("#p", "gsi1pk")]),
                    values(vec![(":p", s(TRIGGERS_GSI))]),
                    None,
                    true,
                )
                .await?
            }
        };
        let q = query
            .q
            .as_ref()
            .filter(|q| !q.is_empty())
            .map(|q| q.to_lowercase());
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
