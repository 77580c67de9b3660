//! The api Lambda: Kestra's HTTP API (the local server's router) behind API Gateway or an
//! ALB, and the direct invoke that creates an execution.

use kite_engine::Engine;
use kite_lambda::api::Api;
use kite_lambda::{config, FnError};

async fn setup() -> Result<Api, FnError> {
    let aws = kite_aws::AwsConfig::from_env().map_err(|e| FnError::Config(e.to_string()))?;
    let engine_config = config::engine_config_from_env()?;
    let engine = Engine::new(kite_aws::aws_ports(&aws).await, engine_config);
    Ok(Api::new(
        engine,
        config::auth_from_env()?,
        config::base_url_from_env(),
    ))
}

/// Billable AWS calls of this process so far.
fn meter() -> std::collections::BTreeMap<String, u64> {
    kite_aws::CallCounter::global().snapshot()
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    kite_lambda::logging::init();
    kite_lambda::run(setup().await, meter, |api, event| api.handle(event)).await
}
