//! `GET|POST|PUT /api/v1/executions/webhook/{namespace}/{flowId}/{key}`: Kestra's
//! Webhook trigger. The body becomes `trigger.body` (a JSON object or array as
//! such, anything else as text), with `trigger.headers` and `trigger.parameters`.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use indexmap::IndexMap;
use kite_core::execution::ExecutionTrigger;
use kite_core::expression::{write_pebble, RenderContext};
use kite_core::flow::{Trigger, TriggerType};
use kite_core::input::InputValue;
use kite_core::trigger::condition::{self, ConditionContext};
use kite_engine::{CreateExecution, EngineError};
use serde_json::{json, Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::executions::{execution_json, PublicBase};
use crate::params::{Query, WebhookPath};
use crate::{constant_time_eq, header_map_to_json, wait_bound, AnswerBy, Shared};

const WAIT_LIMIT: Duration = Duration::from_secs(3600);

fn body_value(bytes: &Bytes) -> Option<Value> {
    if bytes.is_empty() {
        return None;
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v @ (Value::Object(_) | Value::Array(_))) => Some(v),
        _ => Some(Value::String(String::from_utf8_lossy(bytes).into_owned())),
    }
}

fn property_bool(trigger: &Trigger, name: &str) -> bool {
    match trigger.properties.get(name) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    }
}

pub async fn trigger(
    State(s): State<Shared>,
    base: PublicBase,
    Path(WebhookPath {
        namespace,
        flow_id,
        key,
    }): Path<WebhookPath>,
    answer_by: Option<Extension<AnswerBy>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let wait_limit = wait_bound(answer_by.as_deref(), WAIT_LIMIT);
    let flow = match s.engine.get_flow(&namespace, &flow_id, None).await {
        Ok(f) => f,
        Err(EngineError::NotFound(_)) => return Err(ApiError::not_found("Flow not found")),
        Err(e) => return Err(e.into()),
    };
    let engine = s.engine.expressions();
    let now = s.engine.now();
    let flow_vars =
        json!({"flow": {"id": flow.flow.id, "namespace": flow.flow.namespace, "revision": flow.revision}});
    // The key may be an expression (`{{ flow.id }}`): rendered, then trimmed, as Kestra
    // does; a key that does not render matches nothing (its text is not a key). Compared
    // in constant time.
    let matching = flow.flow.triggers.iter().find(|t| {
        t.trigger_type == TriggerType::Webhook && {
            let raw = t.properties.get("key").map(write_pebble).unwrap_or_default();
            match engine.render(&raw, &RenderContext::new(&flow_vars, now)) {
                Ok(rendered) => constant_time_eq(rendered.trim(), &key),
                Err(_) => false,
            }
        }
    });
    let Some(trigger) = matching else {
        return Err(ApiError::not_found("Webhook not found"));
    };
    if flow.flow.disabled || trigger.disabled {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "Illegal state: Cannot execute a disabled flow or trigger",
        ));
    }

    let q = Query::from_uri(&uri)?;
    let mut parameters: IndexMap<String, Value> = IndexMap::new();
    for (k, v) in &q.0 {
        let entry = parameters
            .entry(k.clone())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = entry {
            list.push(Value::String(v.clone()));
        }
    }
    let mut variables: IndexMap<String, Value> = IndexMap::new();
    if let Some(b) = body_value(&body) {
        variables.insert("body".into(), b);
    }
    variables.insert("headers".into(), header_map_to_json(&headers));
    variables.insert(
        "parameters".into(),
        Value::Object(parameters.into_iter().collect::<Map<_, _>>()),
    );

    let mut vars = flow_vars.clone();
    vars["trigger"] = Value::Object(variables.clone().into_iter().collect());
    // Conditions (evaluated with the request as `trigger`): not met → 204, no execution.
    if let Some(Value::Array(conditions)) = trigger.properties.get("conditions") {
        let ctx = ConditionContext {
            expressions: engine,
            variables: &vars,
            now,
            execution: None,
        };
        match condition::all_hold(conditions, &ctx) {
            Ok(true) => {}
            Ok(false) => return Ok(StatusCode::NO_CONTENT.into_response()),
            Err(e) => return Err(ApiError::illegal_argument(&e.to_string())),
        }
    }
    let ctx = RenderContext::new(&vars, now);
    // Kestra 1.x: `inputs` of the trigger, rendered against the request.
    let mut inputs = IndexMap::new();
    if let Some(Value::Object(declared)) = trigger.properties.get("inputs") {
        for (k, v) in declared {
            let value = engine
                .render_value(v, &ctx)
                .map_err(|e| ApiError::illegal_argument(&e.message))?;
            let value = match value {
                Value::String(s) => InputValue::Text(s),
                other => InputValue::Json(other),
            };
            inputs.insert(k.clone(), value);
        }
    }
    let execution = s
        .engine
        .create_execution(CreateExecution {
            namespace: namespace.clone(),
            flow_id: flow_id.clone(),
            revision: Some(flow.revision),
            inputs,
            trigger: Some(ExecutionTrigger {
                id: trigger.id.clone(),
                type_name: trigger.type_name.clone(),
                variables: Some(variables),
                log_file: None,
            }),
            ..Default::default()
        })
        .await?;
    let wait = property_bool(trigger, "wait") || q.flag("wait").unwrap_or(false);
    let return_outputs = property_bool(trigger, "returnOutputs");
    let execution = if wait || return_outputs {
        s.engine.wait_for_terminal(&execution.id, wait_limit).await?
    } else {
        execution
    };
    let status = trigger
        .properties
        .get("responseCode")
        .map(write_pebble)
        .and_then(|c| c.parse::<u16>().ok())
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::OK);
    let body = if return_outputs {
        json!(execution.outputs)
    } else {
        execution_json(&base, &execution)
    };
    let mut response = (status, Json(body)).into_response();
    if let Some(ct) = trigger
        .properties
        .get("responseContentType")
        .and_then(Value::as_str)
    {
        if let Ok(v) = HeaderValue::from_str(ct) {
            response.headers_mut().insert(header::CONTENT_TYPE, v);
        }
    }
    Ok(response)
}
