//! `/api/v1/flows`: create, update, get, search, delete, validate, revisions.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kite_core::flow::{flow_source_to_json, parse_flows};
use kite_engine::{FlowQuery, FlowWithSource};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::params::{FlowIdPath, FlowPath, NamespacePath, Query};
use crate::Shared;

/// A flow revision as Kestra's API writes it: the flow's properties, `revision`,
/// `deleted` and the YAML `source`.
pub(crate) fn flow_json(f: &FlowWithSource) -> Value {
    let mut body = flow_source_to_json(&f.source).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut body {
        m.insert("revision".into(), json!(f.revision));
        m.insert("deleted".into(), json!(f.deleted));
        m.insert("updated".into(), json!(f.updated));
        m.insert("source".into(), json!(f.source));
    }
    body
}

/// Media types a flow source is accepted in: Kestra's YAML ones, and JSON (which is YAML).
/// Anything else is refused, `text/plain` and none at all included: those are what a
/// page of another site can send without the browser asking this server first.
const FLOW_TYPES: &[&str] = &[
    "application/x-yaml",
    "application/yaml",
    "text/yaml",
    "text/x-yaml",
    "application/json",
];

fn yaml_body(headers: &HeaderMap, body: String) -> ApiResult<String> {
    let sent = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = sent.split(';').next().unwrap_or("").trim();
    if !FLOW_TYPES.iter().any(|t| t.eq_ignore_ascii_case(essence)) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Unsupported Media Type: a flow is sent as application/x-yaml (or {}), not `{essence}`",
                FLOW_TYPES[1..].join(", ")
            ),
        ));
    }
    if body.trim().is_empty() {
        return Err(ApiError::invalid_entity("flow", "The flow source is empty"));
    }
    Ok(body)
}

pub async fn create(State(s): State<Shared>, headers: HeaderMap, body: String) -> ApiResult<Json<Value>> {
    let created = s.engine.create_flow(&yaml_body(&headers, body)?).await?;
    Ok(Json(flow_json(&created)))
}

pub async fn update(
    State(s): State<Shared>,
    Path(FlowPath { namespace, id }): Path<FlowPath>,
    headers: HeaderMap,
    body: String,
) -> ApiResult<Json<Value>> {
    let updated = s
        .engine
        .update_flow(&namespace, &id, &yaml_body(&headers, body)?)
        .await?;
    Ok(Json(flow_json(&updated)))
}

pub async fn get(
    State(s): State<Shared>,
    Path(FlowPath { namespace, id }): Path<FlowPath>,
    uri: Uri,
) -> ApiResult<Json<Value>> {
    let q = Query::from_uri(&uri)?;
    let flow = s.engine.get_flow(&namespace, &id, q.int("revision")?).await?;
    Ok(Json(flow_json(&flow)))
}

pub async fn delete(
    State(s): State<Shared>,
    Path(FlowPath { namespace, id }): Path<FlowPath>,
) -> ApiResult<Response> {
    s.engine.delete_flow(&namespace, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn revisions(
    State(s): State<Shared>,
    Path(FlowPath { namespace, id }): Path<FlowPath>,
) -> ApiResult<Json<Value>> {
    let all = s.engine.flow_revisions(&namespace, &id).await?;
    Ok(Json(Value::Array(all.iter().map(flow_json).collect())))
}

pub async fn search(State(s): State<Shared>, uri: Uri) -> ApiResult<Json<Value>> {
    let q = Query::from_uri(&uri)?;
    let query = FlowQuery {
        q: q.get("q").filter(|v| !v.is_empty()).map(str::to_string),
        namespace: q.get("namespace").filter(|v| !v.is_empty()).map(str::to_string),
        labels: q.labels()?,
        pagination: q.pagination()?,
        sort: q.sort()?,
    };
    let page = s.engine.search_flows(&query).await?;
    Ok(Json(json!({
        "results": page.results.iter().map(flow_json).collect::<Vec<_>>(),
        "total": page.total,
    })))
}

pub async fn list_namespace(
    State(s): State<Shared>,
    Path(NamespacePath { namespace }): Path<NamespacePath>,
) -> ApiResult<Json<Value>> {
    let query = FlowQuery {
        namespace: Some(namespace),
        pagination: kite_engine::Pagination {
            page: 1,
            size: 10_000,
        },
        ..Default::default()
    };
    let page = s.engine.search_flows(&query).await?;
    Ok(Json(Value::Array(page.results.iter().map(flow_json).collect())))
}

/// Kestra's `FlowForExecution`: what the Execute dialog needs.
pub async fn for_execution(
    State(s): State<Shared>,
    Path(FlowIdPath { namespace, flow_id }): Path<FlowIdPath>,
) -> ApiResult<Json<Value>> {
    let flow = s.engine.get_flow(&namespace, &flow_id, None).await?;
    let full = flow_json(&flow);
    Ok(Json(json!({
        "id": flow.flow.id,
        "namespace": flow.flow.namespace,
        "revision": flow.revision,
        "inputs": full.get("inputs").cloned().unwrap_or(json!([])),
        "tasks": full.get("tasks").cloned().unwrap_or(json!([])),
        "triggers": full.get("triggers").cloned().unwrap_or(json!([])),
        "disabled": flow.flow.disabled,
        "deleted": flow.deleted,
    })))
}

/// Validates every document of a multi-document YAML body (nothing is stored).
pub async fn validate(body: String) -> ApiResult<Json<Value>> {
    let results = parse_flows(&body);
    let out: Vec<Value> = results
        .into_iter()
        .enumerate()
        .map(|(index, result)| match result {
            Ok(flow) => {
                json!({"index": index, "flow": flow.id, "namespace": flow.namespace, "outdated": false})
            }
            Err(errors) => {
                let constraints = errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("\n");
                json!({"index": index, "constraints": constraints, "outdated": false})
            }
        })
        .collect();
    Ok(Json(Value::Array(out)))
}
