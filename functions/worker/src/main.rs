//! The worker Lambda: SQS batches of work items, run by the engine; failed records are
//! reported so that only they are redelivered.

use std::sync::Arc;

use async_trait::async_trait;
use kite_aws::AwsStore;
use kite_engine::ports::WorkItem;
use kite_lambda::dispatch::deadline_of;
use kite_lambda::worker::{Requeue, Worker};
use kite_lambda::{config, FnError};
use kite_worker::script::ScriptConfig;
use kite_worker::InProcessWorker;

/// Sends an item due later back to SQS with the remaining delay.
struct Sqs(Arc<AwsStore>);

#[async_trait]
impl Requeue for Sqs {
    async fn requeue(&self, item: &WorkItem) -> Result<(), String> {
        match self
            .0
            .send_work(std::slice::from_ref(item), chrono::Utc::now())
            .await
        {
            Ok(0) => Ok(()),
            Ok(_) => Err("SQS refused the message".into()),
            Err(e) => Err(e.to_string()),
        }
    }
}

async fn setup() -> Result<Worker, FnError> {
    // Its AWS tasks' calls are counted with the adapters'.
    let task_io = InProcessWorker::new()
        .with_aws_interceptor(kite_aws::call_counter_interceptor())
        .with_scripts(ScriptConfig::from_env());
    let (_, (engine, adapters)) = config::start(kite_aws::secrets::load_from_env(), async |c| {
        kite_aws::worker_engine_from_env(c, Arc::new(task_io)).await
    })
    .await?;
    Ok(Worker::new(engine, Arc::new(Sqs(adapters.store.clone()))))
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    kite_lambda::run(setup(), kite_aws::calls_so_far, |worker, event| {
        let deadline = deadline_of(&event.context);
        worker.handle(event.payload, deadline)
    })
    .await
}
