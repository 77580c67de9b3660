//! [`TaskQueue`] on SQS and the outbox: pushes write outbox items and send them, leases
//! are SQS receives (the receipt handles kept in the store), acks delete both.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;
use chrono::{DateTime, Utc};
use kite_engine::ports::{Released, StoreError, TaskQueue, WorkItem};

use super::encoding::{absent, key, names, values};
use super::requests::{delete_request, update_outcome};
use super::AwsStore;
use crate::items::*;

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
                    absent(),
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
        // No such item (condition failed): nothing to reschedule.
        let Some(out) = update_outcome(out)? else {
            return Ok(());
        };
        let row = out.attributes.unwrap_or_default();
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

    /// Releases the messages this process received and still holds. SQS counts deliveries
    /// itself (`ApproximateReceiveCount`, read by the worker's crash-loop guard), so nothing
    /// is ever returned as crashed here.
    async fn claim_run(
        &self,
        run_id: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let out = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(claim_pk(run_id), CLAIM_SK)))
            .update_expression("SET #until = :until, #ttl = :ttl")
            .condition_expression("attribute_not_exists(#pk) OR #until <= :now")
            .set_expression_attribute_names(Some(names(&[
                ("#until", "until"),
                ("#ttl", "ttl"),
                ("#pk", "pk"),
            ])))
            .set_expression_attribute_values(Some(values(vec![
                (":until", n(until.timestamp_millis())),
                (":now", n(now.timestamp_millis())),
                // DynamoDB reclaims the claim a day after it ends (TTL is in seconds).
                (":ttl", n(until.timestamp() + 86_400)),
            ])))
            .send()
            .await;
        Ok(update_outcome(out)?.is_some())
    }

    async fn release_leases(&self, _crash_limit: u32) -> Result<Released, StoreError> {
        let receipts: Vec<String> = match self.receipts.lock() {
            Ok(mut r) => r.drain().map(|(_, v)| v).collect(),
            Err(_) => Vec::new(),
        };
        if receipts.is_empty() {
            return Ok(Released::default());
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
        Ok(Released {
            released,
            crashed: Vec::new(),
        })
    }

    async fn ack(&self, ids: &[String]) -> Result<(), StoreError> {
        let mut requests = Vec::with_capacity(ids.len());
        for id in ids {
            requests.push(delete_request(key(work_pk(id), WORK_SK))?);
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
            let out = self.outbox_shard(shard).limit(1).send().await.map_err(sdk)?;
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
                    .outbox_shard(shard)
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
    /// A query of one outbox shard of the GSI, due first.
    fn outbox_shard(&self, shard: u32) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.ddb
            .query()
            .table_name(&self.table)
            .index_name("gsi1")
            .key_condition_expression("#p = :p")
            .expression_attribute_names("#p", "gsi1pk")
            .expression_attribute_values(":p", s(format!("OUTBOX#{shard}")))
    }

    fn require_queue(&self) -> Result<&str, StoreError> {
        self.queue_url
            .as_deref()
            .ok_or_else(|| StoreError::Backend("QUEUE_URL is not set".into()))
    }

    fn take_receipt(&self, id: &str) -> Option<String> {
        self.receipts.lock().ok().and_then(|mut r| r.remove(id))
    }

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
        // Acked meanwhile (condition failed): nothing to mark.
        update_outcome(out).map(|_| ())
    }
}
