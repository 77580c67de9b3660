//! The api function: the local server's router behind API Gateway (HTTP API v2, REST v1)
//! and ALB events, plus the direct invoke. Claimed work (light tasks) runs in this
//! invocation before it answers.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Response, StatusCode};
use kite_api::{router, AnswerBy, ApiState, AuthConfig};
use kite_engine::Engine;
use lambda_http::request::LambdaRequest;
use lambda_runtime::{LambdaEvent, Service};
use serde_json::Value;
use tokio::time::Instant;
use tower::ServiceExt;
use tracing::{info, warn};

use crate::dispatch::{deadline_of, InFlight, InProcess};
use crate::error::FnError;
use crate::invoke::DirectInvoke;
use crate::shape::{detect, Shape};

/// A direct invoke's `wait` gives up (answering the current state) after this.
pub const WAIT_LIMIT: Duration = Duration::from_secs(25);

/// API Gateway gives up on an integration after 30 s: HTTP answers are sent before that.
const HTTP_LIMIT: Duration = Duration::from_secs(29);

/// Files larger than this are downloaded from S3 (a redirect), not through the answer:
/// Lambda's 6 MB bound holds 4 MiB once base64-encoded.
const INLINE_DOWNLOAD_LIMIT: u64 = 4 * 1024 * 1024;

/// What the api function expects, for error messages.
pub const EXPECTED: &str = "an API Gateway HTTP API (v2) or REST API (v1) proxy event, an ALB event, \
                        or a direct invoke {\"namespace\", \"flowId\", \"inputs\"?, \"labels\"?, \"wait\"?}";

/// The api function's state, built once per container.
#[derive(Clone)]
pub struct Api {
    engine: Engine,
    router: axum::Router,
    in_flight: Arc<InFlight>,
}

impl Api {
    /// Installs the in-process dispatcher on `engine` and builds the router.
    pub fn new(engine: Engine, auth: AuthConfig, base_url: String) -> Api {
        let in_flight = InProcess::install(&engine, false);
        let max_upload = engine.config().max_file_size;
        let router = router(ApiState {
            engine: engine.clone(),
            base_url,
            auth,
            max_upload,
            inline_download_limit: Some(INLINE_DOWNLOAD_LIMIT),
            creations: kite_api::Admissions::new(kite_api::DEFAULT_MAX_CREATIONS),
            limits: kite_api::RequestLimits::default(),
        });
        Api {
            engine,
            router,
            in_flight,
        }
    }

    /// Handles one invocation of any shape.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, FnError> {
        let LambdaEvent { payload, context } = event;
        let deadline = deadline_of(&context);
        let shape = detect(&payload);
        let answer = match shape {
            s if s.is_http() => self.http_event(payload, context, deadline).await,
            Shape::DirectInvoke => {
                let invoke = DirectInvoke::parse(payload)?;
                info!(namespace = %invoke.namespace, flow = %invoke.flow_id, wait = invoke.wait, "direct invoke");
                invoke.run(&self.engine, wait_limit(deadline)).await
            }
            other => Err(FnError::UnexpectedShape {
                function: "api",
                got: other.describe(),
                expected: EXPECTED,
            }),
        };
        self.finish(deadline).await;
        answer
    }

    /// Waits for the work this invocation started (Lambda freezes the process after the answer).
    async fn finish(&self, deadline: Instant) {
        if !self.in_flight.wait_idle(deadline).await {
            warn!(
                running = self.in_flight.running(),
                "in-process work still running at the deadline; the queue redelivers it"
            );
        }
    }

    async fn http_event(
        &self,
        payload: Value,
        context: lambda_runtime::Context,
        deadline: Instant,
    ) -> Result<Value, FnError> {
        // lambda_http prefixes the path with a named stage (`/prod/...`); Kite's routes are the
        // same whatever the stage, so the stage is dropped from the path.
        let mut payload = payload;
        if let Some(stage) = payload.pointer_mut("/requestContext/stage") {
            if stage.is_string() {
                *stage = Value::String("$default".into());
            }
        }
        let request: LambdaRequest =
            serde_json::from_value(payload).map_err(|e| FnError::InvalidPayload {
                what: "HTTP event",
                message: e.to_string(),
            })?;
        let api = self.clone();
        let service = tower::service_fn(move |request: lambda_http::Request| {
            let api = api.clone();
            async move { Ok::<_, Infallible>(api.http(request, deadline).await) }
        });
        // lambda_http's adapter converts the event to a request and the response back to the
        // shape of the event's origin (v1, v2 or ALB).
        let mut adapter = lambda_http::Adapter::from(service);
        let response = match adapter.call(LambdaEvent::new(request, context)).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        serde_json::to_value(response).map_err(|e| FnError::InvalidPayload {
            what: "HTTP response",
            message: e.to_string(),
        })
    }

    /// Serves one request with the router, which knows by when to answer ([`AnswerBy`]):
    /// its waits (`wait=true`, a webhook's `wait`) end in time, and `follow` answers each
    /// change on its own. Anything slower is cut off with a 504 (the execution goes on).
    async fn http(&self, mut request: lambda_http::Request, deadline: Instant) -> Response<Body> {
        let hard = deadline
            .checked_sub(Duration::from_millis(500))
            .unwrap_or(deadline)
            .min(Instant::now() + HTTP_LIMIT);
        let soft = hard.checked_sub(Duration::from_secs(1)).unwrap_or(hard);
        request.extensions_mut().insert(AnswerBy(soft));
        match tokio::time::timeout_at(hard, self.router.clone().oneshot(request)).await {
            Ok(Ok(r)) => r,
            Ok(Err(never)) => match never {},
            Err(_) => {
                warn!("request still running at the invocation's deadline; answered 504");
                gateway_timeout()
            }
        }
    }
}

fn gateway_timeout() -> Response<Body> {
    let body = serde_json::json!({
        "message": "Timeout: no answer before the function's deadline; the execution continues"
    });
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = StatusCode::GATEWAY_TIMEOUT;
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    response
}

/// How long a `wait` may last: the API Gateway bound, and time left to finish before the deadline.
fn wait_limit(deadline: Instant) -> Duration {
    WAIT_LIMIT.min(
        deadline
            .saturating_duration_since(Instant::now())
            .saturating_sub(Duration::from_secs(1)),
    )
}
