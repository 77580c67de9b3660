//! The api function: the local server's router behind API Gateway (HTTP API v2, REST v1)
//! and ALB events, plus the direct invoke. Claimed work (light tasks) runs in this
//! invocation before it answers.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, Response, StatusCode};
use kite_api::{router, ApiState, AuthConfig};
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

/// API Gateway answers 504 after 29 s: `wait=true` gives up (answering the current state)
/// before that, leaving time to finish in-process work and send the answer.
pub const WAIT_LIMIT: Duration = Duration::from_secs(25);

/// What the api function expects, for error messages.
const EXPECTED: &str = "an API Gateway HTTP API (v2) or REST API (v1) proxy event, an ALB event, \
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
        let in_flight = InProcess::install(&engine);
        let max_upload = engine.config().max_file_size;
        let router = router(ApiState {
            engine: engine.clone(),
            base_url,
            auth,
            max_upload,
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

    /// Serves one request with the router. `wait=true` on an execution creation is bounded
    /// here: the router creates the execution without waiting, then this waits up to the
    /// limit and answers the execution as it is then.
    async fn http(&self, request: lambda_http::Request, deadline: Instant) -> Response<Body> {
        let (request, wait) = take_wait(request);
        let auth_headers = request.headers().clone();
        // Whatever a route waits for (a webhook's `wait`/`returnOutputs`), the invocation
        // answers before its deadline: the execution goes on without this answer.
        let answer_by = deadline.checked_sub(Duration::from_secs(1)).unwrap_or(deadline);
        let response = match tokio::time::timeout_at(answer_by, self.router.clone().oneshot(request)).await {
            Ok(Ok(r)) => r,
            Ok(Err(never)) => match never {},
            Err(_) => {
                warn!("request still running at the invocation's deadline; answered 504");
                return gateway_timeout();
            }
        };
        if !wait || response.status() != StatusCode::OK {
            return response;
        }
        let (parts, body) = response.into_parts();
        let bytes = match axum::body::to_bytes(body, usize::MAX).await {
            Ok(b) => b,
            Err(_) => return Response::from_parts(parts, Body::empty()),
        };
        let id = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_string));
        let Some(id) = id else {
            return Response::from_parts(parts, Body::from(bytes));
        };
        if let Err(e) = self.engine.wait_for_terminal(&id, wait_limit(deadline)).await {
            warn!(execution = %id, error = %e, "wait for the execution failed");
        }
        // The latest state, rendered by the router like any GET (same credentials).
        let mut get = Request::builder()
            .method(Method::GET)
            .uri(format!("/api/v1/executions/{id}"));
        if let Some(h) = get.headers_mut() {
            *h = auth_headers;
            h.remove(axum::http::header::CONTENT_TYPE);
            h.remove(axum::http::header::CONTENT_LENGTH);
        }
        match get.body(Body::empty()) {
            Ok(get) => match self.router.clone().oneshot(get).await {
                Ok(r) => r,
                Err(never) => match never {},
            },
            Err(_) => Response::from_parts(parts, Body::from(bytes)),
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

/// Removes `wait=true` from an execution-creating POST, returning whether it was there.
fn take_wait(request: lambda_http::Request) -> (Request<lambda_http::Body>, bool) {
    // Webhooks are left alone: their trigger may ask to wait, and may answer outputs.
    let path = request.uri().path();
    let creates = request.method() == Method::POST
        && path.contains("/executions/")
        && !path.contains("/executions/webhook/");
    let Some(query) = request.uri().query().filter(|_| creates).map(str::to_string) else {
        return (request, false);
    };
    let mut wait = false;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let is_wait = pair.split('=').next() == Some("wait");
            if is_wait {
                wait |= matches!(pair.split_once('='), Some((_, "true")) | None);
            }
            !is_wait
        })
        .collect();
    if !wait {
        return (request, false);
    }
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let uri = if kept.is_empty() {
        path
    } else {
        format!("{path}?{}", kept.join("&"))
    };
    match uri.parse() {
        Ok(uri) => {
            parts.uri = uri;
            (Request::from_parts(parts, body), true)
        }
        Err(_) => (Request::from_parts(parts, body), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_is_taken_from_creations_only() {
        let req = |m: Method, uri: &str| {
            Request::builder()
                .method(m)
                .uri(uri)
                .body(lambda_http::Body::Empty)
                .unwrap()
        };
        let (r, w) = take_wait(req(
            Method::POST,
            "/api/v1/executions/dev/hello?wait=true&labels=a:b",
        ));
        assert!(w);
        assert_eq!(r.uri().to_string(), "/api/v1/executions/dev/hello?labels=a:b");
        let (r, w) = take_wait(req(Method::POST, "/api/v1/executions/dev/hello?wait=false"));
        assert!(!w);
        assert_eq!(r.uri().query(), Some("wait=false"));
        let (_, w) = take_wait(req(Method::GET, "/api/v1/executions/x?wait=true"));
        assert!(!w);
        let (r, w) = take_wait(req(
            Method::POST,
            "/api/v1/executions/webhook/dev/hello/key?wait=true",
        ));
        assert!(!w);
        assert_eq!(r.uri().query(), Some("wait=true"));
    }
}
