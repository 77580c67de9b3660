//! `GET|POST|PUT /api/v1/executions/webhook/{namespace}/{flowId}/{key}`: Kestra's
//! Webhook trigger. The body becomes `trigger.body` (a JSON object or array as
//! such, anything else as text), with `trigger.headers` and `trigger.parameters`.
//! The body reaches the engine as the exact bytes received: a `signature` block
//! verifies them before anything parses them.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, Extensions, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kite_core::trigger::webhook::WebhookRequest;
use kite_engine::WebhookFired;
use serde_json::json;

use crate::error::ApiResult;
use crate::executions::{execution_json, PublicBase};
use crate::params::{Query, WebhookPath};
use crate::{header_map_to_json, wait_bound, AnswerBy, Shared};

const WAIT_LIMIT: Duration = Duration::from_secs(3600);

pub async fn trigger(
    State(s): State<Shared>,
    base: PublicBase,
    Path(WebhookPath {
        namespace,
        flow_id,
        key,
    }): Path<WebhookPath>,
    // Set by the host (`AnswerBy`) and by admission (`Admission`).
    extensions: Extensions,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let wait_limit = wait_bound(extensions.get::<AnswerBy>(), WAIT_LIMIT);
    let q = Query::from_uri(&uri)?;
    let request = WebhookRequest {
        key: &key,
        body: &body,
        headers: header_map_to_json(&headers),
        parameters: q.0.clone(),
    };
    let (execution, response) = match s.engine.fire_webhook(&namespace, &flow_id, &request).await? {
        WebhookFired::ConditionsNotMet => return Ok(StatusCode::NO_CONTENT.into_response()),
        WebhookFired::Handshake(answer) => return Ok(handshake(answer)),
        WebhookFired::Created { execution, response } => (execution, response),
    };
    if let Some(admission) = extensions.get::<crate::admission::Admission>() {
        admission.release();
    }
    let wait = response.wait || q.flag("wait").unwrap_or(false);
    let execution = if wait || response.return_outputs {
        s.engine.wait_for_terminal(&execution.id, wait_limit).await?
    } else {
        *execution
    };
    let status = response
        .status
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::OK);
    let body = if response.return_outputs {
        json!(execution.outputs)
    } else {
        execution_json(&base, &execution)
    };
    let mut answer = (status, Json(body)).into_response();
    if let Some(v) = response
        .content_type
        .and_then(|ct| HeaderValue::from_str(&ct).ok())
    {
        answer.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    answer.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(crate::WEBHOOK_CSP),
    );
    Ok(answer)
}

/// A provider's URL handshake echoed as plain text (Slack reads the challenge, Microsoft
/// Graph requires text/plain); sandboxed like every webhook answer, since the text is
/// the caller's.
fn handshake(answer: String) -> Response {
    let mut response = (StatusCode::OK, answer).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(crate::WEBHOOK_CSP),
    );
    response
}
