//! What Kite's four Lambda functions share: recognising the event shapes Lambda hands them,
//! the handlers that turn those events into engine calls, the in-process dispatcher that runs
//! claimed work inside the invocation, and JSON logging.
//!
//! Each function's `main` only builds the AWS ports and calls one handler here, so the
//! handlers are tested in-process over the local adapters with the console's test events.

pub mod api;
pub mod config;
pub mod dispatch;
pub mod error;
pub mod invoke;
pub mod logging;
pub mod scheduler;
pub mod shape;
pub mod stream;
pub mod triggers;
pub mod worker;

pub use dispatch::InProcess;
pub use error::FnError;
pub use shape::Shape;
pub use triggers::Triggers;

use std::collections::BTreeMap;
use std::future::Future;

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

/// Reads the calls made to AWS so far, by `Service.Operation`.
pub type Meter = fn() -> BTreeMap<String, u64>;

/// Starts JSON logging, sets the function up, then runs the Lambda runtime loop with
/// `handler`, logging after each invocation the AWS calls it made (`meter`; a Lambda
/// process runs one invocation at a time). When the function could not be set up
/// (`setup` failed: missing environment), every invocation
/// answers that error instead, so a misconfigured function explains itself rather than
/// crashing at each cold start.
pub async fn run<S, H, Fut>(
    setup: impl Future<Output = Result<S, FnError>>,
    meter: Meter,
    handler: H,
) -> Result<(), lambda_runtime::Error>
where
    S: Send + Sync + 'static,
    H: Fn(&'static S, LambdaEvent<Value>) -> Fut,
    Fut: Future<Output = Result<Value, FnError>>,
{
    logging::init();
    match setup.await {
        Ok(state) => {
            // Lives as long as the process (one per Lambda container).
            let state: &'static S = Box::leak(Box::new(state));
            let handler = &handler;
            lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
                // The request id is in lambda_runtime's span, which every line carries. The
                // duration stands in for Lambda's REPORT line, which the template turns off
                // (SystemLogLevel WARN) because it would double the logs' cost.
                let before = meter();
                let started = std::time::Instant::now();
                let answer = handler(state, event).await;
                let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
                let duration_ms = (duration_ms * 10.0).round() / 10.0;
                let calls = calls_since(&before, &meter());
                let total: u64 = calls.values().sum();
                match &answer {
                    Ok(_) => tracing::info!(duration_ms, aws_calls = total, calls = ?calls, "invocation done"),
                    Err(e) => tracing::warn!(duration_ms, aws_calls = total, calls = ?calls, error = %e, "invocation failed"),
                }
                answer
            }))
            .await
        }
        Err(e) => {
            tracing::error!(error = %e, "function setup failed");
            // Answered as a ConfigurationError whatever failed; its message says what.
            let message = match e {
                FnError::Config(message) => message,
                other => other.to_string(),
            };
            lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| {
                let message = message.clone();
                async move { Err::<Value, FnError>(FnError::Config(message)) }
            }))
            .await
        }
    }
}

/// The calls of `after` not already in `before`.
fn calls_since(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(k, n)| {
            let d = n.saturating_sub(before.get(k).copied().unwrap_or(0));
            (d > 0).then(|| (k.clone(), d))
        })
        .collect()
}
