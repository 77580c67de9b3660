//! [`LogRepository`] on DynamoDB: one item per line in its execution's partition
//! (`LOG#{time}#{seq}#{nonce}#{index}`, expiring after the log retention), except the
//! lines of an execution's first step, which ride deflated in the execution item when
//! they are few.

use std::sync::atomic::Ordering as AtomicOrdering;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use kite_core::execution::{LogEntry, LogLevel};
use kite_engine::ports::{LogQuery, LogRepository, StoreError};

use super::encoding::{deflate, inflate, key, names, values};
use super::requests::{delete_request, put_request, update_outcome};
use super::AwsStore;
use crate::items::*;

/// The log lines of an execution's first step ride in its item when they deflate to at
/// most this: an execution that starts and ends in one invocation is then one single-item
/// write (1 write unit per KB) instead of a transaction (2 per KB per item).
const FIRST_STEP_LOGS_LIMIT: usize = 2 * 1024;

/// A log line's stored JSON at most (DynamoDB items hold 400 KB; lines are for people).
const MAX_LOG_BODY: usize = 64 * 1024;

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

/// The first step's log lines, deflated, when they are few enough to ride in the
/// execution item (see `FIRST_STEP_LOGS_LIMIT`).
pub(super) fn packed_first_step_logs(logs: &[LogEntry]) -> Result<Option<Vec<u8>>, StoreError> {
    if logs.is_empty() {
        return Ok(None);
    }
    let lines = logs.iter().map(log_body).collect::<Result<Vec<_>, _>>()?;
    let packed = deflate(format!("[{}]", lines.join(",")).as_bytes())?;
    Ok((packed.len() <= FIRST_STEP_LOGS_LIMIT).then_some(packed))
}

/// Tells apart log keys written by concurrent processes in the same microsecond.
pub(super) fn process_nonce() -> u32 {
    let t = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
    let mixed = t ^ (u64::from(std::process::id()) << 17);
    (mixed ^ (mixed >> 32)) as u32
}

impl AwsStore {
    pub(super) fn log_item(
        &self,
        log: &LogEntry,
        index: usize,
        now: DateTime<Utc>,
    ) -> Result<Item, StoreError> {
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
}

#[async_trait]
impl LogRepository for AwsStore {
    async fn append(&self, logs: &[LogEntry]) -> Result<(), StoreError> {
        let now = Utc::now();
        let mut requests = Vec::with_capacity(logs.len());
        for (i, log) in logs.iter().enumerate() {
            requests.push(put_request(self.log_item(log, i, now)?)?);
        }
        self.batch_write(requests).await
    }

    async fn list(&self, query: &LogQuery) -> Result<Vec<LogEntry>, StoreError> {
        let (embedded, items) = self.log_rows(&query.execution_id).await?;
        let mut all = embedded;
        for item in &items {
            all.push(serde_json::from_str(get_s(item, "body")?).map_err(backend)?);
        }
        let min = query.min_level.unwrap_or(LogLevel::Trace);
        all.retain(|log: &LogEntry| {
            !(log.level < min
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
            // Gone already (condition failed): nothing to remove.
            update_outcome(out)?;
        }
        let mut requests = Vec::with_capacity(items.len());
        for item in &items {
            let k = key(get_s(item, "pk")?.to_string(), get_s(item, "sk")?);
            requests.push(delete_request(k)?);
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
