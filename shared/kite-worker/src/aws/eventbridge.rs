//! EventBridge: `PutEvents` (one request; a file of what EventBridge answered per entry).

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use indexmap::IndexMap;
use kite_core::ion;
use kite_core::plugin::aws::messaging::{EventEntry, PutEventsOp, Source};
use kite_core::plugin::aws::{AwsError, AwsOutcome};
use serde_json::{json, Value};

use super::{sdk_error, Scope};

pub(super) async fn run(
    client: &Client,
    op: &PutEventsOp,
    scope: &Scope<'_>,
) -> Result<AwsOutcome, AwsError> {
    let entries: Vec<EventEntry> = match &op.entries {
        Source::Items(items) => items.clone(),
        Source::File(uri) => scope
            .read_items(uri)
            .await?
            .iter()
            .map(EventEntry::from_value)
            .collect::<Result<_, _>>()
            .map_err(AwsError::Task)?,
    };
    let request: Vec<PutEventsRequestEntry> = entries
        .iter()
        .map(|e| {
            PutEventsRequestEntry::builder()
                .set_event_bus_name(e.event_bus_name.clone())
                .set_source(e.source.clone())
                .set_detail_type(e.detail_type.clone())
                .set_detail(e.detail.clone())
                .set_resources((!e.resources.is_empty()).then(|| e.resources.clone()))
                .build()
        })
        .collect();
    let buses: Vec<&str> = entries
        .iter()
        .map(|e| e.event_bus_name.as_deref().unwrap_or("default"))
        .collect();
    let response = client
        .put_events()
        .set_entries(Some(request))
        .send()
        .await
        .map_err(|e| {
            sdk_error(
                "EventBridge",
                "PutEvents",
                format!("event bus '{}'", buses.join("', '")),
                e,
            )
        })?;
    let failed = response.failed_entry_count();
    let results: Vec<Value> = response
        .entries()
        .iter()
        .zip(&entries)
        .map(|(result, entry)| {
            json!({
                "eventId": result.event_id(),
                "errorCode": result.error_code(),
                "errorMessage": result.error_message(),
                "entry": entry.to_value(),
            })
        })
        .collect();
    if op.fail_on_unsuccessful && failed > 0 {
        return Err(AwsError::Task(format!(
            "Response show {failed} event failed: {}",
            Value::Array(results)
        )));
    }
    let mut lines = Vec::new();
    for result in results {
        lines.extend(ion::to_line(&result).into_bytes());
        lines.push(b'\n');
    }
    let uri = scope.write("entries.ion", lines).await?;
    let mut outputs = IndexMap::new();
    outputs.insert("uri".to_string(), Value::from(uri));
    outputs.insert("failedEntryCount".to_string(), Value::from(failed));
    outputs.insert("entryCount".to_string(), Value::from(entries.len()));
    // Kestra's output ends the task run in WARNING when some events failed.
    Ok(AwsOutcome {
        outputs,
        warnings: Vec::new(),
        warning: failed > 0,
    })
}
