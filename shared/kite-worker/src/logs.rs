//! `log.Fetch`: reads an execution's log lines through the engine's log repository and
//! writes them, one JSON object per line (which is Ion text), to the task run's storage.

use kite_core::execution::LogEntry;
use kite_core::plugin::log::{write_line, LogFetchAnswer, LogFetchCall, LogFetchError, FILE_NAME};
use kite_engine::ports::{ByteStream, FileStorage, LogQuery, LogRepository};

/// The largest file of log lines written (the storage tasks' bound).
const MAX_BYTES: u64 = kite_core::plugin::storage::files::MAX_FILE_BYTES;

/// Fetches the lines `call` asks for into `{prefix}logs.ion`.
pub async fn run(
    logs: &dyn LogRepository,
    files: &dyn FileStorage,
    call: &LogFetchCall,
    prefix: &str,
) -> Result<LogFetchAnswer, LogFetchError> {
    let query = LogQuery {
        execution_id: call.execution_id.clone(),
        min_level: Some(call.min_level),
        ..Default::default()
    };
    let lines = logs.list(&query).await.map_err(|e| LogFetchError::Read {
        execution_id: call.execution_id.clone(),
        reason: e.to_string(),
    })?;
    // Kestra looks the execution up in the given (or current) flow: lines of another
    // flow's execution are not this flow's to read. Lines come task by task when
    // `tasksId` is given, as Kestra queries them.
    let of_flow = |l: &&LogEntry| l.namespace == call.namespace && l.flow_id == call.flow_id;
    let selected: Vec<&LogEntry> = if call.task_ids.is_empty() {
        lines.iter().filter(of_flow).collect()
    } else {
        call.task_ids
            .iter()
            .flat_map(|id| {
                lines
                    .iter()
                    .filter(of_flow)
                    .filter(move |l| l.task_id.as_deref() == Some(id.as_str()))
            })
            .collect()
    };
    let mut content = Vec::new();
    for line in &selected {
        write_line(&mut content, line);
    }
    let uri = format!("{prefix}{FILE_NAME}");
    let stream: ByteStream = Box::pin(std::io::Cursor::new(content));
    files
        .put(&uri, stream, MAX_BYTES)
        .await
        .map_err(|e| LogFetchError::Store {
            uri: uri.clone(),
            reason: e.to_string(),
        })?;
    Ok(LogFetchAnswer {
        uri,
        size: selected.len() as u64,
    })
}
