//! `/api/v1/executions` and `/api/v1/logs`: create (its body read by
//! [`crate::submission`]), get, search, kill, restart, replay, resume, delete, labels,
//! follow, files and logs.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures_util::stream::{self, Stream};
use kite_core::execution::{Execution, Label, LogLevel, StateType};
use kite_core::input::{execution_storage_prefix, InputType, InputValue};
use kite_engine::{CreateExecution, EngineError, ExecutionQuery, LogQuery};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::flows::flow_json;
use crate::params::{FlowIdPath, IdPath, LogPath, Query};
use crate::submission::{read_body, receiving_prefix};
use crate::{wait_bound, AnswerBy, Shared};

/// How long `wait=true` holds the answer (Kestra: 1 h idle).
const WAIT_LIMIT: Duration = Duration::from_secs(3600);

/// The public base URL of the API (no trailing `/`), for the `url` of executions: the
/// configured one (`--url`, `KITE_URL`), else the one the caller used (`Host`, with
/// `X-Forwarded-Proto` as API Gateway and load balancers set it), so that executions
/// created through a deployed API link to it without configuration.
pub(crate) struct PublicBase(pub String);

impl FromRequestParts<Shared> for PublicBase {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, s: &Shared) -> Result<Self, Infallible> {
        if !s.base_url.is_empty() {
            return Ok(PublicBase(s.base_url.clone()));
        }
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        // A host name or address with a port, nothing that could bend the URL.
        let host = header("host").filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        });
        let proto = match header("x-forwarded-proto").map(|p| p.split(',').next().unwrap_or("").trim()) {
            Some("https") => "https",
            _ => "http",
        };
        Ok(PublicBase(
            host.map(|h| format!("{proto}://{h}")).unwrap_or_default(),
        ))
    }
}

/// Kestra's execution JSON plus `url` (where the UI shows it).
pub(crate) fn execution_json(base: &PublicBase, execution: &Execution) -> Value {
    let mut body = serde_json::to_value(execution).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut body {
        m.insert(
            "url".into(),
            json!(format!(
                "{}/ui/executions/{}/{}/{}",
                base.0, execution.namespace, execution.flow_id, execution.id
            )),
        );
    }
    body
}

pub async fn create(
    State(s): State<Shared>,
    base: PublicBase,
    Path(FlowIdPath { namespace, flow_id }): Path<FlowIdPath>,
    request: Request,
) -> ApiResult<Json<Value>> {
    let admission = request.extensions().get::<crate::admission::Admission>().cloned();
    let q = Query::from_uri(request.uri())?;
    let revision = q.int("revision")?;
    let labels = q.labels()?;
    let wait = q.flag("wait")?;
    let wait_limit = wait_bound(request.extensions().get::<AnswerBy>(), WAIT_LIMIT);
    let schedule_date = q.date("scheduleDate")?;
    let flow = s.engine.get_flow(&namespace, &flow_id, revision).await?;
    let file_inputs = file_inputs(&flow.flow);
    let id = s.engine.new_id();
    let created = async {
        let mut body = read_body(&s, request, &namespace, &flow_id, &id, &file_inputs).await?;
        crate::uploads::accept_staged(&s, &namespace, &flow_id, &file_inputs, &mut body).await?;
        body.place_files(&s).await?;
        let request = CreateExecution {
            namespace: namespace.clone(),
            flow_id: flow_id.clone(),
            revision: Some(flow.revision),
            id: Some(id.clone()),
            inputs: body.inputs,
            files: body.files,
            labels,
            trigger: None,
            schedule_date,
        };
        s.engine.create_execution(request).await.map_err(Refused::from)
    };
    let execution = match created.await {
        Ok(execution) => execution,
        Err(refused) => {
            if refused.before_storing {
                // The files stored under the new id belong to no execution.
                let placed = kite_core::input::execution_storage_prefix(&namespace, &flow_id, &id);
                for prefix in [receiving_prefix(&id), placed] {
                    if let Err(e) = s.engine.ports().files.delete_prefix(&prefix).await {
                        tracing::warn!(error = %e, prefix, "the uploads of a refused execution stay in storage");
                    }
                }
            }
            return Err(refused.error);
        }
    };
    if let Some(admission) = admission {
        admission.release();
    }
    let execution = if wait {
        s.engine.wait_for_terminal(&execution.id, wait_limit).await?
    } else {
        execution
    };
    Ok(Json(execution_json(&base, &execution)))
}

/// The ids of the flow's FILE inputs (the parts of a body that are files to store).
fn file_inputs(flow: &kite_core::flow::Flow) -> Vec<String> {
    flow.inputs
        .iter()
        .filter(|i| i.input_type == InputType::File)
        .map(|i| i.id.clone())
        .collect()
}

/// Kestra's `POST /executions/{namespace}/{flowId}/validate`: types the inputs of the same
/// body as a create, and answers every input with its value or its errors (the Execute
/// form shows them all at once). Nothing is created; files sent are read and dropped.
pub async fn validate_inputs(
    State(s): State<Shared>,
    Path(FlowIdPath { namespace, flow_id }): Path<FlowIdPath>,
    request: Request,
) -> ApiResult<Json<Value>> {
    let q = Query::from_uri(request.uri())?;
    let revision = q.int("revision")?;
    q.labels()?;
    let flow = s.engine.get_flow(&namespace, &flow_id, revision).await?;
    if flow.flow.disabled {
        return Err(EngineError::IllegalState("Requested Flow is disabled.".into()).into());
    }
    let file_inputs = file_inputs(&flow.flow);
    let id = s.engine.new_id();
    let body = read_body(&s, request, &namespace, &flow_id, &id, &file_inputs).await;
    if let Err(e) = s.engine.ports().files.delete_prefix(&receiving_prefix(&id)).await {
        tracing::warn!(error = %e, "the files of an input validation stay in storage");
    }
    let body = body?;
    let mut provided = body.inputs;
    for (input, uri) in body.files {
        provided.insert(input, InputValue::Text(uri));
    }
    let definitions = flow_json(&flow)
        .get("inputs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let inputs: Vec<Value> = s
        .engine
        .check_inputs(&flow.flow, &provided)
        .into_iter()
        .enumerate()
        .map(|(i, check)| {
            json!({
                "input": definitions.get(i).cloned().unwrap_or_else(|| json!({"id": check.id})),
                "value": check.value,
                "enabled": check.enabled,
                "isDefault": check.is_default,
                "errors": check.errors.iter().map(|e| json!({"message": e.message})).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(
        json!({"id": flow_id, "namespace": namespace, "inputs": inputs}),
    ))
}

/// Why an execution was not created, and whether for sure nothing was: the request or
/// its inputs were refused before anything was stored.
struct Refused {
    error: ApiError,
    before_storing: bool,
}

impl From<ApiError> for Refused {
    fn from(error: ApiError) -> Self {
        Refused {
            error,
            before_storing: true,
        }
    }
}

impl From<kite_engine::EngineError> for Refused {
    fn from(e: kite_engine::EngineError) -> Self {
        use kite_engine::EngineError as E;
        let before_storing = matches!(
            e,
            E::NotFound(_)
                | E::IllegalArgument(_)
                | E::InvalidInput(_)
                | E::InvalidEntity { .. }
                | E::TooLarge(_)
        );
        Refused {
            error: e.into(),
            before_storing,
        }
    }
}

pub async fn get(
    State(s): State<Shared>,
    base: PublicBase,
    Path(IdPath { id }): Path<IdPath>,
) -> ApiResult<Json<Value>> {
    let execution = s.engine.get_execution(&id).await?;
    Ok(Json(execution_json(&base, &execution)))
}

fn query_from(q: &Query) -> ApiResult<ExecutionQuery> {
    let states = q
        .all("state")
        .into_iter()
        .map(|v| StateType::parse(v).ok_or_else(|| ApiError::bad_request(&format!("Unknown state `{v}`"))))
        .collect::<ApiResult<Vec<_>>>()?;
    let start_date = q.date("startDate")?;
    let end_date = q.date("endDate")?;
    if let (Some(a), Some(b)) = (start_date, end_date) {
        if a > b {
            return Err(ApiError::illegal_argument("Start date must be before End Date"));
        }
    }
    Ok(ExecutionQuery {
        q: q.get("q").filter(|v| !v.is_empty()).map(str::to_string),
        namespace: q.get("namespace").filter(|v| !v.is_empty()).map(str::to_string),
        flow_id: q.get("flowId").filter(|v| !v.is_empty()).map(str::to_string),
        states,
        labels: q.labels()?,
        start_date,
        end_date,
        trigger_execution_id: q.get("triggerExecutionId").map(str::to_string),
        pagination: q.pagination()?,
        sort: q.sort()?,
    })
}

pub async fn search(State(s): State<Shared>, base: PublicBase, uri: Uri) -> ApiResult<Json<Value>> {
    let q = Query::from_uri(&uri)?;
    let page = s.engine.search_executions(&query_from(&q)?).await?;
    Ok(Json(json!({
        "results": page.results.iter().map(|e| execution_json(&base, e)).collect::<Vec<_>>(),
        "total": page.total,
    })))
}

/// A flow named in the body of `POST /executions/latest`.
#[derive(serde::Deserialize)]
pub struct FlowRef {
    namespace: String,
    id: String,
}

/// Kestra's `POST /executions/latest`: the newest execution of each flow of the body
/// (`[{"namespace", "id"}]`) that has one, as `{id, namespace, flowId, startDate, status}`.
pub async fn latest(State(s): State<Shared>, Json(flows): Json<Vec<FlowRef>>) -> ApiResult<Json<Value>> {
    let flows: Vec<(String, String)> = flows.into_iter().map(|f| (f.namespace, f.id)).collect();
    let latest = s.engine.latest_executions(&flows).await?;
    Ok(Json(Value::Array(
        latest
            .iter()
            .map(|e| {
                json!({
                    "id": e.id,
                    "namespace": e.namespace,
                    "flowId": e.flow_id,
                    "startDate": e.state.start_date,
                    "status": e.state.current,
                })
            })
            .collect(),
    )))
}

pub async fn list_by_flow(state: State<Shared>, base: PublicBase, uri: Uri) -> ApiResult<Json<Value>> {
    search(state, base, uri).await
}

pub async fn kill(State(s): State<Shared>, Path(IdPath { id }): Path<IdPath>) -> ApiResult<Response> {
    s.engine.kill(&id).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

pub async fn restart(
    State(s): State<Shared>,
    base: PublicBase,
    Path(IdPath { id }): Path<IdPath>,
) -> ApiResult<Json<Value>> {
    let execution = s.engine.restart(&id).await?;
    Ok(Json(execution_json(&base, &execution)))
}

pub async fn replay(
    State(s): State<Shared>,
    base: PublicBase,
    Path(IdPath { id }): Path<IdPath>,
    uri: Uri,
) -> ApiResult<Json<Value>> {
    let q = Query::from_uri(&uri)?;
    let execution = s.engine.replay(&id, q.int("revision")?).await?;
    Ok(Json(execution_json(&base, &execution)))
}

pub async fn resume(
    State(s): State<Shared>,
    Path(IdPath { id }): Path<IdPath>,
    request: Request,
) -> ApiResult<Response> {
    let execution = s.engine.get_execution(&id).await?;
    let flow = s
        .engine
        .get_flow(
            &execution.namespace,
            &execution.flow_id,
            Some(execution.flow_revision),
        )
        .await?;
    // FILE answers of the paused task's `onResume` inputs.
    let file_inputs: Vec<String> = flow
        .flow
        .all_tasks()
        .iter()
        .filter_map(|t| match &t.kind {
            kite_core::flow::TaskKind::Pause(p) => Some(p.on_resume.clone()),
            _ => None,
        })
        .flatten()
        .filter(|i| i.input_type == InputType::File)
        .map(|i| i.id)
        .collect();
    let mut body = read_body(
        &s,
        request,
        &execution.namespace,
        &execution.flow_id,
        &execution.id,
        &file_inputs,
    )
    .await?;
    crate::uploads::accept_staged(
        &s,
        &execution.namespace,
        &execution.flow_id,
        &file_inputs,
        &mut body,
    )
    .await?;
    body.place_files(&s).await?;
    for (k, uri) in body.files {
        body.inputs.insert(k, InputValue::Text(uri));
    }
    s.engine.resume(&id, body.inputs).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn delete(
    State(s): State<Shared>,
    Path(IdPath { id }): Path<IdPath>,
    uri: Uri,
) -> ApiResult<Response> {
    let q = Query::from_uri(&uri)?;
    let logs = q.get("deleteLogs").map(|v| v != "false").unwrap_or(true);
    let storage = q.get("deleteStorage").map(|v| v != "false").unwrap_or(true);
    s.engine.delete_execution(&id, logs, storage).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn labels(
    State(s): State<Shared>,
    base: PublicBase,
    Path(IdPath { id }): Path<IdPath>,
    body: Result<Json<Vec<Label>>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<Value>> {
    let Json(labels) = body.map_err(|e| ApiError::invalid_entity("labels", &e.body_text()))?;
    let execution = s.engine.set_labels(&id, labels).await?;
    Ok(Json(execution_json(&base, &execution)))
}

/// Server-sent events of the execution until it ends (Kestra's `follow`). Where the host
/// must answer by a deadline ([`AnswerBy`]: buffered Lambda responses), the stream ends
/// after the first change (or shortly before the deadline) with a `retry` hint: each
/// request then answers as soon as something happened, and the client reconnects.
pub async fn follow(
    State(s): State<Shared>,
    base: PublicBase,
    answer_by: Option<Extension<AnswerBy>>,
    Path(IdPath { id }): Path<IdPath>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    /// Time kept to send the buffered answer.
    const MARGIN: Duration = Duration::from_millis(500);
    /// When a client reconnects after a bounded stream.
    const RECONNECT: Duration = Duration::from_millis(100);
    let watch = s.engine.subscribe(&id).await?;
    let base = Arc::new(base);
    let until = answer_by.map(|Extension(AnswerBy(at))| at.checked_sub(MARGIN).unwrap_or(at));
    let events = stream::unfold((watch, 0usize, false), move |(mut rx, sent, ended)| {
        let base = base.clone();
        async move {
            if ended {
                return None;
            }
            if sent > 0 {
                let changed = match until {
                    // One change per bounded answer: end it with the reconnection hint.
                    Some(_) if sent > 1 => return None,
                    Some(at) => match tokio::time::timeout_at(at, rx.changed()).await {
                        Ok(changed) => changed,
                        Err(_) => {
                            return Some((
                                Ok(Event::default().retry(RECONNECT).comment("reconnect")),
                                (rx, sent + 1, true),
                            ))
                        }
                    },
                    None => rx.changed().await,
                };
                if changed.is_err() {
                    return None;
                }
            }
            let execution = rx.borrow_and_update().clone();
            let done = execution.state.current.is_terminated();
            let data = execution_json(&base, &execution).to_string();
            let mut event = Event::default()
                .id(if done { "end" } else { "progress" })
                .data(data);
            if until.is_some() && !done {
                event = event.retry(RECONNECT);
            }
            Some((Ok(event), (rx, sent + 1, done)))
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// How long a download URL handed out by [`file`] is valid.
const DOWNLOAD_URL_TTL: Duration = Duration::from_secs(900);

/// Downloads a file of this execution (and only of this execution: its own files and the
/// staged uploads it uses). Above the host's `inline_download_limit`, a storage that has
/// download URLs (S3) is redirected to (`307`) instead of streamed.
pub async fn file(
    State(s): State<Shared>,
    Path(IdPath { id }): Path<IdPath>,
    uri: Uri,
) -> ApiResult<Response> {
    let q = Query::from_uri(&uri)?;
    let execution = s.engine.get_execution(&id).await?;
    let path = q
        .get("path")
        .ok_or_else(|| ApiError::bad_request("Required argument [path] not specified"))?;
    let prefix = execution_storage_prefix(&execution.namespace, &execution.flow_id, &execution.id);
    let own = path.starts_with(&prefix) && !path.contains("/../") && !path.contains("/./");
    if !own && !crate::uploads::used_by(&execution, path) {
        return Err(ApiError::illegal_argument(&format!(
            "Invalid prefix path: {path}"
        )));
    }
    let files = &s.engine.ports().files;
    let size = files.size(path).await.map_err(kite_engine::EngineError::from)?;
    let Some(size) = size else {
        return Err(ApiError::not_found(&format!("File not found: {path}")));
    };
    if s.inline_download_limit.is_some_and(|limit| size > limit) {
        let url = files
            .download_url(path, DOWNLOAD_URL_TTL)
            .await
            .map_err(kite_engine::EngineError::from)?;
        if let Some(url) = url {
            return crate::uploads::redirect(&url);
        }
    }
    let reader = files.get(path).await.map_err(kite_engine::EngineError::from)?;
    let name = path.rsplit('/').next().unwrap_or("file");
    let mut response = Body::from_stream(tokio_util::io::ReaderStream::new(reader)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", name.replace('"', "_"))) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

fn log_query(execution_id: String, uri: &Uri) -> ApiResult<LogQuery> {
    let q = Query::from_uri(uri)?;
    Ok(LogQuery {
        execution_id,
        // An unknown level filters as INFO.
        min_level: q.get("minLevel").map(|l| LogLevel::parse(l).unwrap_or_default()),
        task_run_id: q.get("taskRunId").map(str::to_string),
        task_id: q.get("taskId").map(str::to_string),
        attempt: q.int("attempt")?.map(|a| a as u32),
    })
}

pub async fn logs(
    State(s): State<Shared>,
    Path(LogPath { execution_id: id }): Path<LogPath>,
    uri: Uri,
) -> ApiResult<Json<Value>> {
    let lines = s.engine.logs(&log_query(id, &uri)?).await?;
    Ok(Json(serde_json::to_value(lines).unwrap_or_else(|_| json!([]))))
}

pub async fn logs_download(
    State(s): State<Shared>,
    Path(LogPath { execution_id: id }): Path<LogPath>,
    uri: Uri,
) -> ApiResult<Response> {
    let lines = s.engine.logs(&log_query(id.clone(), &uri)?).await?;
    let text: String = lines
        .iter()
        .map(|l| format!("{} {} {}\n", l.timestamp.to_rfc3339(), l.level, l.message))
        .collect();
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{id}.log\"")) {
        response.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}
