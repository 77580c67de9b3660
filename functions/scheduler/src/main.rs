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
    let aws = kite_aws::AwsConfig::from_env().map_err(|e| FnError::Config(e.to_string()))?;
    let engine_config = config::engine_config_from_env()?;
    let adapters = kite_aws::aws_adapters(&aws).await;
    let engine = Engine::new(adapters.ports(), engine_config);
    // Scheduled executions start (and run their light tasks) in this invocation.
    let in_flight = InProcess::install(&engine);
    Ok(State {
        engine,
        outbox: Outbox(adapters.store.clone()),
        in_flight,
    })
}

/// Billable AWS calls of this process so far.
fn meter() -> std::collections::BTreeMap<String, u64> {
    kite_aws::CallCounter::global().snapshot()
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    kite_lambda::logging::init();
    kite_lambda::run(setup().await, meter, |s, event| async move {
        let deadline = deadline_of(&event.context);
        scheduler::handle(&s.engine, &s.outbox, &s.in_flight, event.payload, deadline).await
    })
    .await
}
