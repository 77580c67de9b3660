//! Kestra's HTTP API as one axum [`Router`]: the local server serves it with
//! `axum::serve`, the api Lambda with `lambda_http`. No behaviour lives in a host.
//!
//! Routes exist under `/api/v1/...` and `/api/v1/{tenant}/...`, where the only
//! tenant is `main` (Kestra OSS). Errors use Kestra's JSON shape (see [`error`]).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;
use kite_core::trigger::webhook::constant_time_eq;
use kite_engine::Engine;
use serde_json::Value;

mod admission;
mod bulk;
pub mod error;
mod executions;
mod flows;
mod kv;
mod namespace_files;
mod openapi;
mod params;
mod submission;
mod triggers;
mod ui;
mod uploads;
mod webhook;

pub use admission::{Admissions, DEFAULT_MAX_CREATIONS};
pub use error::{ApiError, ApiResult};

/// Set (as a request extension) by a host whose answers are buffered and have a deadline,
/// like a Lambda behind API Gateway: the instant by which the whole answer must be
/// complete. `wait` gives up before it and answers the execution as it is then; `follow`
/// ends its stream after the next change with a `retry` hint, and the client reconnects.
#[derive(Debug, Clone, Copy)]
pub struct AnswerBy(pub tokio::time::Instant);

/// How long a request may wait: `limit`, or less when its host must answer sooner.
pub(crate) fn wait_bound(answer_by: Option<&AnswerBy>, limit: std::time::Duration) -> std::time::Duration {
    match answer_by {
        Some(AnswerBy(at)) => limit.min(at.saturating_duration_since(tokio::time::Instant::now())),
        None => limit,
    }
}

/// Who may call the API (webhooks and `/ping` stay open, as in Kestra).
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    /// `(user, password)` for basic authentication.
    pub basic: Option<(String, String)>,
    /// A bearer token.
    pub token: Option<String>,
}

impl AuthConfig {
    fn enabled(&self) -> bool {
        self.basic.is_some() || self.token.is_some()
    }
}

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub engine: Engine,
    /// Public base URL, for the `url` of created executions (no trailing `/`).
    pub base_url: String,
    pub auth: AuthConfig,
    /// Largest accepted upload (a FILE input), in bytes.
    pub max_upload: u64,
    /// Files larger than this are not streamed by `GET /executions/{id}/file` but
    /// redirected to the storage's download URL when it has one (a host whose answers
    /// are bounded, like a Lambda); `None` streams every file.
    pub inline_download_limit: Option<u64>,
    /// Bound on the execution creations in progress (503 beyond it).
    pub creations: Admissions,
    /// Bounds on what a request body holds besides files.
    pub limits: RequestLimits,
}

/// Bounds on request bodies, files aside (those are bounded by `max_upload`).
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// Largest body that is read whole: a flow source, JSON or form inputs, and the text
    /// parts of one multipart request taken together.
    pub body: usize,
    /// Largest text part (a non-file input) of a multipart request.
    pub text_part: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            body: 4 * 1024 * 1024,
            text_part: 1024 * 1024,
        }
    }
}

impl RequestLimits {
    /// The 413 of a body over [`RequestLimits::body`].
    pub(crate) fn body_too_large(&self) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "Request Entity Too Large: the body holds more than {} bytes besides files (KITE_MAX_BODY)",
                self.body
            ),
        )
    }
}

pub(crate) type Shared = Arc<ApiState>;

fn api(shared: &Shared) -> Router<Shared> {
    let admit = || middleware::from_fn_with_state(shared.clone(), admission::admit);
    Router::new()
        .route("/flows", post(flows::create))
        .route("/flows/validate", post(flows::validate))
        .route("/flows/search", get(flows::search))
        .route("/flows/{namespace}", get(flows::list_namespace))
        .route(
            "/flows/{namespace}/{id}",
            get(flows::get).put(flows::update).delete(flows::delete),
        )
        .route("/flows/{namespace}/{id}/revisions", get(flows::revisions))
        .route("/executions", get(executions::list_by_flow))
        .route("/executions/search", get(executions::search))
        .route("/executions/latest", post(executions::latest))
        // The bulk routes, before the `{namespace}/{flowId}` and `{id}` routes they look like.
        .route("/executions/by-ids", delete(bulk::delete))
        .route("/executions/kill/by-ids", delete(bulk::kill))
        .route("/executions/restart/by-ids", post(bulk::restart))
        .route("/executions/replay/by-ids", post(bulk::replay).layer(admit()))
        .route(
            "/executions/{namespace}/{flow_id}",
            post(executions::create)
                .layer(DefaultBodyLimit::disable())
                .layer(admit()),
        )
        .route(
            "/executions/{namespace}/{flow_id}/validate",
            post(executions::validate_inputs).layer(DefaultBodyLimit::disable()),
        )
        .route("/executions/{namespace}/{flow_id}/uploads", post(uploads::ask))
        .route(
            "/executions/{namespace}/{flow_id}/uploads/{upload_id}/{filename}",
            put(uploads::put).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/executions/trigger/{namespace}/{flow_id}",
            post(executions::create)
                .layer(DefaultBodyLimit::disable())
                .layer(admit()),
        )
        .route(
            "/executions/flows/{namespace}/{flow_id}",
            get(flows::for_execution),
        )
        .route(
            "/executions/{id}",
            get(executions::get).delete(executions::delete),
        )
        .route("/executions/{id}/kill", delete(executions::kill))
        .route("/executions/{id}/restart", post(executions::restart))
        .route("/executions/{id}/replay", post(executions::replay).layer(admit()))
        .route(
            "/executions/{id}/resume",
            post(executions::resume).layer(DefaultBodyLimit::disable()),
        )
        .route("/executions/{id}/labels", post(executions::labels))
        .route("/executions/{id}/follow", get(executions::follow))
        .route("/executions/{id}/file", get(executions::file))
        .route("/triggers", axum::routing::put(triggers::update))
        .route("/triggers/search", get(triggers::search))
        .route("/triggers/set-disabled/by-triggers", post(triggers::set_disabled))
        .route(
            "/triggers/backfill/pause",
            axum::routing::put(triggers::pause_backfill),
        )
        .route(
            "/triggers/backfill/unpause",
            axum::routing::put(triggers::unpause_backfill),
        )
        .route("/triggers/backfill/delete", post(triggers::delete_backfill))
        .route("/triggers/{namespace}/{flow_id}", get(triggers::for_flow))
        .route("/namespaces/{namespace}/kv", get(kv::list))
        .route(
            "/namespaces/{namespace}/kv/{key}",
            get(kv::get).put(kv::put).delete(kv::delete),
        )
        .route(
            "/namespaces/{namespace}/files",
            post(namespace_files::create)
                .layer(DefaultBodyLimit::disable())
                .get(namespace_files::content)
                .put(namespace_files::move_entry)
                .delete(namespace_files::delete),
        )
        .route("/namespaces/{namespace}/files/stats", get(namespace_files::stats))
        .route(
            "/namespaces/{namespace}/files/directory",
            get(namespace_files::directory),
        )
        .route("/logs/{execution_id}", get(executions::logs))
        .route("/logs/{execution_id}/download", get(executions::logs_download))
        .route("/openapi.yml", get(openapi::yaml))
        .route("/openapi.json", get(openapi::json))
        .layer(DefaultBodyLimit::max(shared.limits.body))
}

/// The routes of the API served without credentials: webhooks (a SaaS tool calling
/// them has the key in the URL, no token).
fn open_api(shared: &Shared) -> Router<Shared> {
    Router::new()
        .route(
            "/executions/webhook/{namespace}/{flow_id}/{key}",
            get(webhook::trigger)
                .post(webhook::trigger)
                .put(webhook::trigger)
                .layer(middleware::from_fn_with_state(shared.clone(), admission::admit)),
        )
        .layer(DefaultBodyLimit::max(shared.limits.body))
}

/// The whole HTTP API.
pub fn router(state: ApiState) -> Router {
    let shared: Shared = Arc::new(state);
    // Whether a request needs credentials is decided by the route it matched (the
    // layers below only wrap matched routes), never by the text of its path.
    let guarded = Router::new()
        .nest("/api/v1", api(&shared))
        .nest(
            "/api/v1/{tenant}",
            api(&shared).layer(middleware::from_fn(only_main_tenant)),
        )
        .route_layer(middleware::from_fn_with_state(shared.clone(), authenticate))
        .route_layer(middleware::from_fn_with_state(shared.clone(), same_origin_writes));
    let ui = ui::routes().route_layer(middleware::from_fn_with_state(shared.clone(), authenticate_ui));
    Router::new()
        .route("/ping", get(|| async { "pong" }))
        .route(
            "/health",
            get(|| async { axum::Json(serde_json::json!({"status": "UP"})) }),
        )
        .nest("/api/v1", open_api(&shared))
        .nest(
            "/api/v1/{tenant}",
            open_api(&shared).layer(middleware::from_fn(only_main_tenant)),
        )
        .merge(guarded)
        .merge(ui)
        .fallback(not_found)
        .layer(middleware::from_fn(kestra_errors))
        .layer(middleware::from_fn(catch_panic))
        .layer(middleware::from_fn(security_headers))
        // Outermost, so that the layers above read plain bodies. Only for callers that accept
        // gzip, and never a stream of events or a tiny body (tower-http's default predicate).
        .layer(tower_http::compression::CompressionLayer::new())
        .with_state(shared)
}

/// What an API answer may do in a browser: nothing (no script, no style, no frame). The
/// UI's pages set their own policy; webhooks set [`WEBHOOK_CSP`].
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// A webhook answers what the flow and its caller put in it, with the content type the flow
/// chose (`text/html` too): sandboxed, such a page runs no script and has no access to the
/// UI's origin (its cookies, storage and credentials).
pub(crate) const WEBHOOK_CSP: &str = "sandbox; default-src 'none'; frame-ancestors 'none'";

/// Every answer, errors and the UI's included: no content sniffing, and a policy that lets
/// an API answer opened in a browser do nothing.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(API_CSP));
    }
    response
}

/// Refuses a browser's cross-site request that would change something: the management
/// API's own UI calls it from its origin, while any other site a user visits could
/// otherwise make the browser start executions or replace flows (basic auth is sent by
/// the browser on its own, and a server without credentials trusts every caller).
/// Clients that are not browsers send neither header and are not concerned.
async fn same_origin_writes(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let method = request.method();
    let reads = method == axum::http::Method::GET
        || method == axum::http::Method::HEAD
        || method == axum::http::Method::OPTIONS;
    if reads || !is_cross_site(&state, request.headers()) {
        return next.run(request).await;
    }
    ApiError::new(
        StatusCode::FORBIDDEN,
        "Forbidden: cross-site requests may not change anything",
    )
    .into_response()
}

/// `Sec-Fetch-Site` when the browser sends it (all current ones do); else an `Origin`
/// whose host is not the one the request was sent to.
fn is_cross_site(state: &ApiState, headers: &HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    match text("sec-fetch-site") {
        Some(site) if site.eq_ignore_ascii_case("same-origin") || site.eq_ignore_ascii_case("none") => {
            return false
        }
        Some(_) => return true,
        None => {}
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let Some(origin_host) = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, host)| host.trim_end_matches('/'))
    else {
        // `null` (a sandboxed page, a redirect) or unreadable: no origin to trust.
        return true;
    };
    // Behind a proxy the request's host may be the proxy's view; the public one is then
    // in `X-Forwarded-Host` or the configured base URL.
    let configured = state
        .base_url
        .split_once("://")
        .map(|(_, rest)| rest.split('/').next().unwrap_or(""));
    let forwarded = text("x-forwarded-host")
        .and_then(|h| h.split(',').next())
        .map(str::trim);
    let same = |host: Option<&str>| host.is_some_and(|h| h.eq_ignore_ascii_case(origin_host));
    !(same(text("host")) || same(forwarded) || same(configured))
}

/// A bug in a handler answers 500 in Kestra's shape instead of dropping the
/// connection; the server keeps serving.
async fn catch_panic(request: Request, next: Next) -> Response {
    use futures_util::FutureExt as _;
    let href = request.uri().to_string();
    match std::panic::AssertUnwindSafe(next.run(request))
        .catch_unwind()
        .await
    {
        Ok(response) => response,
        Err(_) => {
            tracing::error!(uri = %href, "request handler panicked");
            let body = serde_json::json!({
                "message": "Internal Server Error: unexpected error",
                "_links": {"self": {"href": href, "templated": false}},
            });
            let mut response = (StatusCode::INTERNAL_SERVER_ERROR, body.to_string()).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
    }
}

/// Paths no route serves: 401 without credentials (as every guarded route), so that
/// an anonymous caller learns nothing about which paths exist; 404 otherwise.
async fn not_found(State(state): State<Shared>, headers: HeaderMap) -> Response {
    denial(&state, &headers).unwrap_or_else(|| ApiError::not_found("Page Not Found").into_response())
}

async fn only_main_tenant(
    Path(params): Path<Vec<(String, String)>>,
    request: Request,
    next: Next,
) -> Response {
    let tenant = params
        .iter()
        .find(|(k, _)| k == "tenant")
        .map(|(_, v)| v.as_str());
    match tenant {
        Some("main") | None => next.run(request).await,
        Some(_) => ApiError::bad_request("Tenant must be 'main' for OSS version").into_response(),
    }
}

/// The UI's pages and assets hold no data: without basic auth a browser cannot log in
/// when it opens a page, so the page is served and asks for the token itself.
async fn authenticate_ui(state: State<Shared>, request: Request, next: Next) -> Response {
    if state.auth.basic.is_none() {
        return next.run(request).await;
    }
    authenticate(state, request, next).await
}

async fn authenticate(State(state): State<Shared>, request: Request, next: Next) -> Response {
    match denial(&state, request.headers()) {
        None => next.run(request).await,
        Some(denied) => denied,
    }
}

/// The 401 answer (with the challenge a browser understands) unless no authentication is
/// configured or the request carries valid credentials.
fn denial(state: &ApiState, headers: &HeaderMap) -> Option<Response> {
    if !state.auth.enabled() {
        return None;
    }
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let allowed = match header.split_once(' ') {
        Some((scheme, value)) if scheme.eq_ignore_ascii_case("basic") => {
            use base64::Engine as _;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            match (&state.auth.basic, decoded) {
                (Some((user, password)), Some(d)) => d
                    .split_once(':')
                    .is_some_and(|(u, p)| constant_time_eq(u, user) & constant_time_eq(p, password)),
                _ => false,
            }
        }
        Some((scheme, value)) if scheme.eq_ignore_ascii_case("bearer") => state
            .auth
            .token
            .as_deref()
            .is_some_and(|t| constant_time_eq(value.trim(), t)),
        _ => false,
    };
    if allowed {
        return None;
    }
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
    // A Basic challenge makes browsers ask for a user and password: only when one works.
    let challenge = if state.auth.basic.is_some() {
        "Basic realm=\"Kite\""
    } else {
        "Bearer realm=\"Kite\""
    };
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    Some(response)
}

/// Gives every error response Kestra's shape: JSON with `message` and
/// `_links.self.href` (also for errors raised by axum itself: bad JSON, 413, 405).
async fn kestra_errors(request: Request, next: Next) -> Response {
    let href = request.uri().to_string();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024).await.unwrap_or_default();
    let mut json: Value = match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) if m.contains_key("message") => Value::Object(m),
        _ => {
            let text = String::from_utf8_lossy(&bytes).trim().to_string();
            let reason = status.canonical_reason().unwrap_or("Error");
            let message = if text.is_empty() {
                reason.to_string()
            } else {
                format!("{reason}: {text}")
            };
            serde_json::json!({ "message": message })
        }
    };
    json["_links"] = serde_json::json!({"self": {"href": href, "templated": false}});
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(json.to_string()))
}

pub(crate) fn header_map_to_json(headers: &HeaderMap) -> Value {
    let mut out = serde_json::Map::new();
    for (name, value) in headers {
        let entry = out
            .entry(name.as_str().to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = entry {
            list.push(Value::String(
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            ));
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_answers_500_in_kestras_shape() {
        async fn boom() -> &'static str {
            panic!("handler bug")
        }
        let app: Router = Router::new()
            .route("/boom", get(boom))
            .layer(middleware::from_fn(catch_panic));
        let request = Request::builder().uri("/boom").body(Body::empty()).unwrap();
        let response = tower::ServiceExt::oneshot(app, request).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let bytes = axum::body::to_bytes(response.into_body(), 4096).await.unwrap();
        let json: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["_links"]["self"]["href"], "/boom");
        assert!(json["message"]
            .as_str()
            .unwrap()
            .starts_with("Internal Server Error"));
    }
}
