//! Helpers the engine tests share.

use kite_engine::ports::LogQuery;
use kite_engine::{CreateExecution, Engine};

/// A request to start an execution of `dev`/`flow` with no inputs.
pub fn create(flow: &str) -> CreateExecution {
    CreateExecution {
        namespace: "dev".into(),
        flow_id: flow.into(),
        ..Default::default()
    }
}

/// The messages of an execution's log lines, in order.
pub async fn messages(engine: &Engine, id: &str) -> Vec<String> {
    engine
        .logs(&LogQuery {
            execution_id: id.into(),
            ..Default::default()
        })
        .await
        .expect("logs")
        .into_iter()
        .map(|l| l.message)
        .collect()
}
