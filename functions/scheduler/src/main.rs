//! The scheduler Lambda: Schedule trigger schedules (their input names the trigger) and
//! the sweeper's rate rule (the outbox, and every tenth minute the schedules).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Timelike, Utc};
use kite_aws::{AwsStore, SchedulerSchedules};
use kite_engine::Engine;
use kite_lambda::dispatch::{deadline_of, InFlight, InProcess};
use kite_lambda::scheduler::Sweeper;
use kite_lambda::{config, scheduler, FnError};

/// Minutes between two schedule reconciles. A reconcile reads every flow, every trigger
/// state and every schedule of the group (one `GetSchedule` each, see docs/aws.md): every
/// tenth sweep bounds how long a save whose schedule sync failed waits, at a tenth of
/// the calls.
const RECONCILE_EVERY_MINUTES: u32 = 10;

struct Sweep {
    store: Arc<AwsStore>,
    engine: Engine,
}

#[async_trait]
impl Sweeper for Sweep {
    async fn sweep(&self, now: DateTime<Utc>) -> Result<usize, String> {
        let report = kite_aws::sweep_outbox(&self.store, now)
            .await
            .map_err(|e| e.to_string())?;
        if now.minute().is_multiple_of(RECONCILE_EVERY_MINUTES) {
            self.engine
                .reconcile_schedules()
                .await
                .map_err(|e| format!("outbox swept, but the schedule reconcile failed: {e}"))?;
        }
        Ok(report.sent + report.resent)
    }
}

struct State {
    engine: Engine,
    sweep: Sweep,
    schedules: Arc<SchedulerSchedules>,
    in_flight: Arc<InFlight>,
}

async fn setup() -> Result<State, FnError> {
    let (_, (engine, adapters)) =
        config::start(kite_aws::secrets::load_from_env(), kite_aws::engine_from_env).await?;
    // Scheduled executions start (and run their light tasks) in this invocation.
    let in_flight = InProcess::install(&engine, false);
    Ok(State {
        sweep: Sweep {
            store: adapters.store.clone(),
            engine: engine.clone(),
        },
        schedules: adapters.schedules.clone(),
        engine,
        in_flight,
    })
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    kite_lambda::run(setup(), kite_aws::calls_so_far, |s, event| async move {
        // Reconciled schedules target this function, whose ARN its environment cannot hold.
        s.schedules.target_if_unset(&event.context.invoked_function_arn);
        let deadline = deadline_of(&event.context);
        scheduler::handle(&s.engine, &s.sweep, &s.in_flight, event.payload, deadline).await
    })
    .await
}
