//! The execution notifications: read the execution they report on, waiting as Kestra
//! does for another execution to be terminated (or in the state its Flow trigger saw),
//! then send the message built from it over HTTP or SMTP.

use std::time::Duration;

use kite_core::execution::Execution;
use kite_core::plugin::execution_notifications::{message, ExecutionNotificationCall, Sent};
use kite_core::plugin::{IoAnswer, IoCall, IoJob};
use kite_engine::ports::WorkerContext;

use crate::{http, mail};

/// Kestra's patience with an execution that is not yet in the wanted state.
const MAX_WAIT: Duration = Duration::from_secs(600);
const FIRST_POLL: Duration = Duration::from_secs(1);
const MAX_POLL: Duration = Duration::from_secs(15);

/// Reads the execution, then sends the message about it.
pub async fn run(
    call: &ExecutionNotificationCall,
    job: &IoJob,
    context: &WorkerContext,
    client: &http::HttpClient,
) -> Result<Box<Sent>, String> {
    let execution = read(call, &job.task_run.execution_id, context).await?;
    let sent = message::build(call, &execution, context.clock.now());
    let answer = match &sent {
        IoCall::Http(request) => {
            let prefix = job.task_run.storage_prefix();
            IoAnswer::Http(client.send(request, &context.files, &prefix).await)
        }
        IoCall::Mail(email) => IoAnswer::Mail(mail::send(email, context.files.as_ref()).await),
        _ => return Err("An execution notification builds an HTTP request or an email".into()),
    };
    Ok(Box::new(Sent { call: sent, answer }))
}

async fn read(
    call: &ExecutionNotificationCall,
    own_id: &str,
    context: &WorkerContext,
) -> Result<Execution, String> {
    let not_found = || format!("Unable to find execution '{}'", call.execution_id);
    let started = tokio::time::Instant::now();
    let mut pause = FIRST_POLL;
    loop {
        let found = context
            .executions
            .get(&call.execution_id)
            .await
            .map_err(|e| format!("Could not read execution '{}': {e}", call.execution_id))?;
        // The store is consistent: an id it does not know will not appear later.
        let execution = found.ok_or_else(not_found)?.execution;
        if call.ready(&execution, own_id) {
            return Ok(execution);
        }
        if started.elapsed() >= MAX_WAIT {
            return Err(format!(
                "Execution '{}' is still {} after {} minutes",
                call.execution_id,
                execution.state.current.as_str(),
                MAX_WAIT.as_secs() / 60
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_POLL);
    }
}
