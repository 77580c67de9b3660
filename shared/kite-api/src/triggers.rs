//! `/api/v1/triggers`: search triggers with their state, enable/disable them, and
//! start, pause or delete a backfill (Kestra's trigger API).

use axum::extract::{Path, State};
use axum::http::Uri;
use axum::Json;
use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use kite_core::execution::Label;
use kite_core::trigger::{Backfill, TriggerState};
use kite_engine::{FlowQuery, Pagination};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::params::{FlowIdPath, Query};
use crate::Shared;

/// A trigger as the API names it in request bodies (Kestra's `Trigger`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerRef {
    namespace: String,
    flow_id: String,
    trigger_id: String,
    #[serde(default)]
    disabled: Option<bool>,
    #[serde(default)]
    backfill: Option<BackfillRequest>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BackfillRequest {
    start: DateTime<Utc>,
    #[serde(default)]
    end: Option<DateTime<Utc>>,
    #[serde(default)]
    inputs: IndexMap<String, Value>,
    #[serde(default)]
    labels: Vec<Label>,
}

/// Kestra's trigger context: the stored state plus the tenant.
fn context_json(state: &TriggerState) -> Value {
    let mut v = serde_json::to_value(state).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut v {
        m.insert("tenantId".into(), json!("main"));
        m.remove("preconditions");
    }
    v
}

/// Every trigger of the flows matching `query` with its state, paginated in memory
/// (`{abstractTrigger, triggerContext}` as Kestra's search answers).
async fn list(s: &Shared, flows: FlowQuery, q: Option<&str>, page: Pagination) -> ApiResult<Value> {
    let found = s.engine.search_flows(&flows).await?;
    let mut all = Vec::new();
    for f in &found.results {
        for t in &f.flow.triggers {
            let text = format!("{}.{} {}", f.flow.namespace, f.flow.id, t.id).to_lowercase();
            if q.is_some_and(|q| !text.contains(&q.to_lowercase())) {
                continue;
            }
            all.push((f, t));
        }
    }
    let total = all.len();
    let mut results = Vec::new();
    for (f, t) in all
        .into_iter()
        .skip(page.offset() as usize)
        .take(page.size as usize)
    {
        let state = s
            .engine
            .trigger_state(&f.flow.namespace, &f.flow.id, &t.id)
            .await?;
        let declared: serde_json::Map<String, Value> =
            t.properties.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        results.push(json!({"abstractTrigger": declared, "triggerContext": context_json(&state)}));
    }
    Ok(json!({"results": results, "total": total}))
}

pub async fn search(State(s): State<Shared>, uri: Uri) -> ApiResult<Json<Value>> {
    let q = Query::from_uri(&uri)?;
    let mut flows = FlowQuery {
        namespace: q.get("namespace").filter(|v| !v.is_empty()).map(str::to_string),
        pagination: Pagination {
            page: 1,
            size: 10_000,
        },
        ..Default::default()
    };
    if let Some(flow_id) = q.get("flowId").filter(|v| !v.is_empty()) {
        flows.q = Some(flow_id.to_string());
    }
    let mut body = list(&s, flows, q.get("q").filter(|v| !v.is_empty()), q.pagination()?).await?;
    if let Some(flow_id) = q.get("flowId").filter(|v| !v.is_empty()) {
        // `q` on flows is a substring match: keep the exact flow only.
        if let Some(Value::Array(results)) = body.get_mut("results") {
            results.retain(|r| r["triggerContext"]["flowId"] == flow_id);
            let n = results.len();
            body["total"] = json!(n);
        }
    }
    Ok(Json(body))
}

pub async fn for_flow(
    State(s): State<Shared>,
    Path(FlowIdPath { namespace, flow_id }): Path<FlowIdPath>,
    uri: Uri,
) -> ApiResult<Json<Value>> {
    let q = Query::from_uri(&uri)?;
    let flow = s.engine.get_flow(&namespace, &flow_id, None).await?;
    let flows = FlowQuery {
        namespace: Some(namespace.clone()),
        q: Some(flow_id.clone()),
        pagination: Pagination {
            page: 1,
            size: 10_000,
        },
        ..Default::default()
    };
    let mut body = list(
        &s,
        flows,
        None,
        Pagination {
            page: 1,
            size: 10_000,
        },
    )
    .await?;
    if let Some(Value::Array(results)) = body.get_mut("results") {
        results.retain(|r| r["triggerContext"]["flowId"] == flow.flow.id.as_str());
        let page = q.pagination()?;
        let total = results.len();
        *results = results
            .drain(..)
            .skip(page.offset() as usize)
            .take(page.size as usize)
            .collect();
        body["total"] = json!(total);
    }
    Ok(Json(body))
}

/// `PUT /triggers`: sets `disabled` and starts a `backfill` when given.
pub async fn update(State(s): State<Shared>, Json(t): Json<TriggerRef>) -> ApiResult<Json<Value>> {
    let backfill = t.backfill.map(|b| Backfill {
        start: b.start,
        end: b.end,
        current_date: None,
        inputs: b.inputs,
        labels: b.labels,
        paused: false,
    });
    if let Some(b) = &backfill {
        if b.end.is_some_and(|end| end < b.start) {
            return Err(ApiError::invalid_entity(
                "backfill.end",
                "must be after backfill.start",
            ));
        }
    }
    let state = s
        .engine
        .update_trigger(&t.namespace, &t.flow_id, &t.trigger_id, |state| {
            if let Some(d) = t.disabled {
                state.disabled = d;
            }
            if let Some(b) = &backfill {
                state.backfill = Some(b.clone());
            }
        })
        .await?;
    Ok(Json(context_json(&state)))
}

#[derive(Debug, Deserialize)]
pub struct SetDisabled {
    triggers: Vec<TriggerRef>,
    disabled: bool,
}

/// `POST /triggers/set-disabled/by-triggers`: `{"count": n}`.
pub async fn set_disabled(State(s): State<Shared>, Json(body): Json<SetDisabled>) -> ApiResult<Json<Value>> {
    let mut count = 0;
    for t in &body.triggers {
        s.engine
            .set_trigger_disabled(&t.namespace, &t.flow_id, &t.trigger_id, body.disabled)
            .await?;
        count += 1;
    }
    Ok(Json(json!({ "count": count })))
}

async fn change_backfill(
    s: &Shared,
    t: &TriggerRef,
    change: fn(&mut TriggerState),
) -> ApiResult<Json<Value>> {
    let current = s
        .engine
        .trigger_state(&t.namespace, &t.flow_id, &t.trigger_id)
        .await?;
    if current.backfill.is_none() {
        return Err(ApiError::illegal_argument("This trigger has no backfill"));
    }
    let state = s
        .engine
        .update_trigger(&t.namespace, &t.flow_id, &t.trigger_id, change)
        .await?;
    Ok(Json(context_json(&state)))
}

pub async fn pause_backfill(State(s): State<Shared>, Json(t): Json<TriggerRef>) -> ApiResult<Json<Value>> {
    change_backfill(&s, &t, |state| {
        if let Some(b) = state.backfill.as_mut() {
            b.paused = true;
        }
    })
    .await
}

pub async fn unpause_backfill(State(s): State<Shared>, Json(t): Json<TriggerRef>) -> ApiResult<Json<Value>> {
    change_backfill(&s, &t, |state| {
        if let Some(b) = state.backfill.as_mut() {
            b.paused = false;
        }
    })
    .await
}

pub async fn delete_backfill(State(s): State<Shared>, Json(t): Json<TriggerRef>) -> ApiResult<Json<Value>> {
    change_backfill(&s, &t, |state| state.backfill = None).await
}
