//! The stream Lambda: the table's DynamoDB stream (filtered to execution state changes)
//! fires Flow triggers.

use std::sync::Arc;

use async_trait::async_trait;
use kite_aws::AwsStore;
use kite_core::execution::Execution;
use kite_engine::Engine;
use kite_lambda::dispatch::{deadline_of, InFlight, InProcess};
use kite_lambda::stream::{ExecutionImages, Item};
use kite_lambda::{config, stream, FnError};

/// Decodes execution items, reading large bodies from S3.
struct Images(Arc<AwsStore>);

#[async_trait]
impl ExecutionImages for Images {
    async fn execution(&self, image: Item) -> Result<Option<Execution>, String> {
        // serde_dynamo's attribute values become the SDK's, which the store reads.
        self.0
            .execution_from_stream_item(&image.into())
            .await
            .map(|v| v.map(|v| v.execution))
            .map_err(|e| e.to_string())
    }
}

struct State {
    engine: Engine,
    images: Images,
    in_flight: Arc<InFlight>,
}

async fn setup() -> Result<State, FnError> {
    let (_, (engine, adapters)) =
        config::start(kite_aws::secrets::load_from_env(), kite_aws::engine_from_env).await?;
    // Triggered executions start (and run their light tasks) in this invocation.
    let in_flight = InProcess::install(&engine, false);
    Ok(State {
        engine,
        images: Images(adapters.store.clone()),
        in_flight,
    })
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    kite_lambda::run(setup(), kite_aws::calls_so_far, |s, event| async move {
        let deadline = deadline_of(&event.context);
        stream::handle(&s.images, &s.engine, &s.in_flight, event.payload, deadline).await
    })
    .await
}
