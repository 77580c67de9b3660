//! The scheduler Lambda: Schedule trigger rules (their input names the trigger) and the
//! outbox sweeper's rate rule.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kite_aws::AwsStore;
use kite_engine::Engine;
use kite_lambda::dispatch::{deadline_of, InFlight, InProcess};
use kite_lambda::scheduler::Sweeper;
use kite_lambda::{config, scheduler, FnError};

struct Outbox(Arc<AwsStore>);

#[async_trait]
impl Sweeper for Outbox {
    async fn sweep(&self, now: DateTime<Utc>) -> Result<usize, String> {
        let report = kite_aws::sweep_outbox(&self.0, now)
            .await
            .map_err(|e| e.to_string())?;
        Ok(report.sent + report.resent)
    }
}

struct State {
    engine: Engine,
    outbox: Outbox,
    in_flight: Arc<InFlight>,
}

async fn setup() -> Result<State, FnError> {
    let (engine, adapters) = kite_aws::engine_from_env(config::engine_config_from_env()?)
        .await
        .map_err(|e| FnError::Config(e.to_string()))?;
    // Scheduled executions start (and run their light tasks) in this invocation.
    let in_flight = InProcess::install(&engine);
    Ok(State {
        engine,
        outbox: Outbox(adapters.store.clone()),
        in_flight,
    })
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    kite_lambda::logging::init();
    kite_lambda::run(setup().await, kite_aws::calls_so_far, |s, event| async move {
        let deadline = deadline_of(&event.context);
        scheduler::handle(&s.engine, &s.outbox, &s.in_flight, event.payload, deadline).await
    })
    .await
}
