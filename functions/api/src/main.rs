//! The api Lambda: Kestra's HTTP API (the local server's router) behind API Gateway or an
//! ALB, and the direct invoke that creates an execution.

use kite_lambda::api::Api;
use kite_lambda::{config, FnError};

async fn setup() -> Result<Api, FnError> {
    let (secrets, (engine, _)) =
        config::start(kite_aws::secrets::load_from_env(), kite_aws::engine_from_env).await?;
    Ok(Api::new(engine, secrets.auth()?, config::base_url_from_env()))
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    kite_lambda::run(setup(), kite_aws::calls_so_far, |api, event| api.handle(event)).await
}
