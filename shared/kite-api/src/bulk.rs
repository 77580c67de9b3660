//! Kestra's bulk routes over a list of execution ids (`/executions/by-ids`,
//! `/executions/{kill,restart,replay}/by-ids`): every id is checked first, and one that
//! cannot take the action refuses the whole request (400 with the ids and why), as
//! Kestra does; otherwise each execution takes it and the answer is `{"count": n}`.

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kite_core::execution::Execution;
use kite_engine::EngineError;
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::params::Query;
use crate::Shared;

/// What a bulk request does to each execution.
#[derive(Clone, Copy)]
enum Action {
    Delete {
        include_non_terminated: bool,
        logs: bool,
        storage: bool,
    },
    Kill,
    Restart,
    Replay,
}

impl Action {
    /// Kestra's name of the action in `invalid bulk {name}`.
    fn name(self) -> &'static str {
        match self {
            Action::Delete { .. } => "delete",
            Action::Kill => "kill",
            Action::Restart => "restart",
            Action::Replay => "replay",
        }
    }

    /// Why `execution` cannot take the action, in Kestra's words.
    fn refusal(self, execution: &Execution) -> Option<&'static str> {
        let state = execution.state.current;
        match self {
            // Kestra says "not found" for a running execution it will not delete, too.
            Action::Delete {
                include_non_terminated,
                ..
            } if !state.is_terminated() && !include_non_terminated => Some("execution not found"),
            Action::Kill if state.is_terminated() => Some("execution already finished"),
            Action::Restart if !state.is_failed() => Some("execution not in state FAILED"),
            _ => None,
        }
    }

    async fn apply(self, s: &Shared, id: &str) -> Result<(), EngineError> {
        match self {
            Action::Delete { logs, storage, .. } => s.engine.delete_execution(id, logs, storage).await,
            Action::Kill => s.engine.kill(id).await,
            Action::Restart => s.engine.restart(id).await.map(drop),
            Action::Replay => s.engine.replay(id, None).await.map(drop),
        }
    }
}

async fn bulk(s: &Shared, ids: Vec<String>, action: Action) -> ApiResult<Response> {
    let mut invalids = Vec::new();
    for id in &ids {
        let refusal = match s.engine.get_execution(id).await {
            Ok(execution) => action.refusal(&execution),
            Err(EngineError::NotFound(_)) => Some("execution not found"),
            Err(e) => return Err(e.into()),
        };
        if let Some(message) = refusal {
            invalids.push(json!({"message": message, "invalidValue": id}));
        }
    }
    if !invalids.is_empty() {
        let body = json!({"message": format!("invalid bulk {}", action.name()), "invalids": invalids});
        return Ok((StatusCode::BAD_REQUEST, Json(body)).into_response());
    }
    for id in &ids {
        action.apply(s, id).await?;
    }
    Ok(Json(json!({"count": ids.len()})).into_response())
}

/// The body of every bulk route: a JSON list of execution ids.
fn ids(body: Result<Json<Vec<String>>, JsonRejection>) -> ApiResult<Vec<String>> {
    let Json(ids) = body.map_err(|e| ApiError::invalid_entity("executionsId", &e.body_text()))?;
    Ok(ids)
}

/// `DELETE /executions/by-ids?includeNonTerminated&deleteLogs&deleteStorage`.
pub async fn delete(
    State(s): State<Shared>,
    uri: Uri,
    body: Result<Json<Vec<String>>, JsonRejection>,
) -> ApiResult<Response> {
    let q = Query::from_uri(&uri)?;
    let yes_unless_false = |key| q.get(key).is_none_or(|v| !v.eq_ignore_ascii_case("false"));
    let action = Action::Delete {
        include_non_terminated: q.flag("includeNonTerminated")?,
        logs: yes_unless_false("deleteLogs"),
        storage: yes_unless_false("deleteStorage"),
    };
    bulk(&s, ids(body)?, action).await
}

/// `DELETE /executions/kill/by-ids`.
pub async fn kill(
    State(s): State<Shared>,
    body: Result<Json<Vec<String>>, JsonRejection>,
) -> ApiResult<Response> {
    bulk(&s, ids(body)?, Action::Kill).await
}

/// `POST /executions/restart/by-ids`.
pub async fn restart(
    State(s): State<Shared>,
    body: Result<Json<Vec<String>>, JsonRejection>,
) -> ApiResult<Response> {
    bulk(&s, ids(body)?, Action::Restart).await
}

/// `POST /executions/replay/by-ids`.
pub async fn replay(
    State(s): State<Shared>,
    body: Result<Json<Vec<String>>, JsonRejection>,
) -> ApiResult<Response> {
    bulk(&s, ids(body)?, Action::Replay).await
}
