//! The outbox: every work item is a DynamoDB item (`WORK#{id}`, in one of the outbox
//! index's shards by due date) written with the step that queues it, and handed to SQS
//! delayed until due. The sweeper sends what SQS could not take yet (due beyond its
//! 15-minute delay) and resends what was lost.

use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use kite_engine::ports::{StoreError, WorkItem};

use super::encoding::{key, names, values};
use super::AwsStore;
use crate::items::*;

/// SQS delays messages by at most 15 minutes; later items wait in the outbox for the sweeper.
const MAX_SQS_DELAY_SECS: i64 = 900;

/// Resends of one overdue outbox item by the sweeper before it is left for an operator.
const MAX_SWEEPS: i64 = 5;

/// How long after its due date an item handed to SQS may be sent again: longer than a
/// Lambda can run (15 minutes), so a worker still running it is never doubled; a crashed
/// worker's message comes back from SQS by itself.
const SQS_RESEND_AFTER_SECS: i64 = 16 * 60;

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

impl AwsStore {
    /// `resend_at`: when the sweeper may send the item (again); `None` for items never sent.
    pub(super) fn outbox_item(item: &WorkItem, resend_at: Option<DateTime<Utc>>) -> Result<Item, StoreError> {
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

    pub(super) fn work_from_outbox(row: &Item) -> Result<WorkItem, StoreError> {
        let mut item: WorkItem = serde_json::from_str(get_s(row, "body")?).map_err(backend)?;
        item.due = from_ms(get_n(row, "due")?);
        Ok(item)
    }

    /// When an item sent to SQS at `now` may be sent again.
    pub(super) fn resend_after_send(due: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
        due.max(now) + chrono::Duration::seconds(SQS_RESEND_AFTER_SECS)
    }

    /// Whether a push at `now` hands this item to SQS right away.
    pub(super) fn sendable(&self, item: &WorkItem, now: DateTime<Utc>) -> bool {
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

    /// Makes a waiting outbox item due now and handed out (sent right after the commit).
    pub(super) fn wake_action(&self, id: &str, now: DateTime<Utc>) -> Result<TransactWriteItem, StoreError> {
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
}
