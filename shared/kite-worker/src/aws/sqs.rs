//! SQS: `Publish` (batches of ten messages, as Kestra sends them).

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_sdk_sqs::Client;
use indexmap::IndexMap;
use kite_core::plugin::aws::messaging::{PublishOp, Source, SqsMessage};
use kite_core::plugin::aws::{AwsError, AwsOutcome};
use serde_json::Value;

use super::{sdk_error, Scope};

/// The most entries SQS takes in one `SendMessageBatch`.
const BATCH: usize = 10;

pub(super) async fn run(client: &Client, op: &PublishOp, scope: &Scope<'_>) -> Result<AwsOutcome, AwsError> {
    let messages: Vec<SqsMessage> = match &op.messages {
        Source::Items(items) => items.clone(),
        Source::File(uri) => scope
            .read_items(uri)
            .await?
            .iter()
            .map(SqsMessage::from_value)
            .collect::<Result<_, _>>()
            .map_err(AwsError::Task)?,
    };
    let mut total = 0;
    for (n, batch) in messages.chunks(BATCH).enumerate() {
        let entries = batch
            .iter()
            .enumerate()
            .map(|(i, m)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(&m.data)
                    .set_message_group_id(m.group_id.clone())
                    .set_message_deduplication_id(m.deduplication_id.clone())
                    .set_delay_seconds(m.delay_seconds)
                    .build()
                    .map_err(|e| AwsError::Task(format!("Invalid SQS message: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let result = client
            .send_message_batch()
            .queue_url(&op.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| sdk_error("SQS", "SendMessageBatch", format!("queue {}", op.queue_url), e))?;
        if !result.failed().is_empty() {
            let details: Vec<String> = result
                .failed()
                .iter()
                .map(|f| {
                    format!(
                        "entry[{}] code={} message={}",
                        f.id(),
                        f.code(),
                        f.message().unwrap_or("null")
                    )
                })
                .collect();
            return Err(AwsError::Task(format!(
                "SQS batch {} had {} failure(s): [{}]",
                n + 1,
                result.failed().len(),
                details.join(", ")
            )));
        }
        total += result.successful().len();
    }
    let mut outputs = IndexMap::new();
    outputs.insert("messagesCount".to_string(), Value::from(total));
    Ok(AwsOutcome {
        outputs,
        ..AwsOutcome::default()
    })
}
