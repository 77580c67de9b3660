//! Staged uploads: FILE inputs too large for one request body (API Gateway and Lambda
//! bound it) are stored first, then named by their URI when the execution is created.
//!
//! `POST /executions/{namespace}/{flowId}/uploads` hands out a staging URI,
//! `kestra:///{namespace as path}/{flowId}/uploads/{uploadId}/{filename}`, and a URL
//! that stores it with one `PUT` of the bytes: the storage's own (S3's presigned URL)
//! when it has one, else [`put`] on this API. Creating an execution (or resuming one)
//! accepts such a URI as the text value of a FILE input of that flow only.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kite_core::execution::Execution;
use kite_core::input::{flow_uploads_prefix, InputError, InputType, InputValue};
use kite_engine::EngineError;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::executions::PublicBase;
use crate::params::FlowIdPath;
use crate::submission::{store_stream, Submitted};
use crate::Shared;

/// How long a handed-out upload URL is valid (the API's own one needs the usual credentials).
const UPLOAD_URL_TTL: Duration = Duration::from_secs(900);
/// Longest accepted file name, in bytes.
const MAX_FILENAME: usize = 255;
/// Longest accepted upload id (the engine's ids have 22 characters at most).
const MAX_UPLOAD_ID: usize = 32;

/// Why `name` cannot be the last segment of a staging URI, if it cannot.
fn bad_filename(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_FILENAME {
        Some("it is longer than 255 bytes")
    } else if name.contains("..") {
        Some("it contains `..`")
    } else if name == "." {
        Some("it is `.`")
    } else if name
        .chars()
        .any(|c| matches!(c, '/' | '\\' | ':') || c.is_control())
    {
        Some("it contains `/`, `\\`, `:` or a control character")
    } else {
        None
    }
}

fn valid_upload_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_UPLOAD_ID && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The upload id and file name of `uri` when it is a staged upload of this flow.
pub(crate) fn staged_upload<'a>(namespace: &str, flow_id: &str, uri: &'a str) -> Option<(&'a str, &'a str)> {
    let rest = uri.strip_prefix(&flow_uploads_prefix(namespace, flow_id))?;
    let (id, name) = rest.split_once('/')?;
    (valid_upload_id(id) && bad_filename(name).is_none()).then_some((id, name))
}

/// Percent-encodes one URL path segment (unreserved characters stay).
fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn storage_error(e: kite_engine::ports::StorageError) -> ApiError {
    ApiError::from(EngineError::from(e))
}

/// `POST /executions/{namespace}/{flowId}/uploads` with `{"input", "filename"}`: a
/// staging URI for that FILE input and where to `PUT` its bytes.
pub async fn ask(
    State(s): State<Shared>,
    base: PublicBase,
    Path(FlowIdPath { namespace, flow_id }): Path<FlowIdPath>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("Invalid JSON: {e}")))?;
    let field = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_string);
    let input = field("input")
        .ok_or_else(|| ApiError::invalid_entity("input", "must be the id of a FILE input of the flow"))?;
    let filename = field("filename")
        .ok_or_else(|| ApiError::invalid_entity("filename", "must be the name of the file"))?;
    let flow = s.engine.get_flow(&namespace, &flow_id, None).await?;
    // A flow input, or the answer of a Pause task's `onResume` inputs.
    let pauses = flow.flow.all_tasks();
    let resume_inputs = pauses.iter().flat_map(|t| match &t.kind {
        kite_core::flow::TaskKind::Pause(p) => p.on_resume.as_slice(),
        _ => &[],
    });
    match flow
        .flow
        .inputs
        .iter()
        .chain(resume_inputs)
        .find(|i| i.id == input)
    {
        None => {
            return Err(ApiError::invalid_entity(
                "input",
                &format!("Flow {namespace}.{flow_id} has no input `{input}`"),
            ))
        }
        Some(i) if i.input_type != InputType::File => {
            return Err(ApiError::invalid_entity(
                "input",
                &format!("Input `{input}` is of type {}, not FILE", i.input_type.name()),
            ))
        }
        Some(_) => {}
    }
    if let Some(why) = bad_filename(&filename) {
        return Err(ApiError::invalid_entity(
            "filename",
            &format!("Invalid file name: {why}"),
        ));
    }
    let upload_id = s.engine.new_id();
    let uri = format!(
        "{}{upload_id}/{filename}",
        flow_uploads_prefix(&namespace, &flow_id)
    );
    let upload_url = match s
        .engine
        .ports()
        .files
        .upload_url(&uri, UPLOAD_URL_TTL)
        .await
        .map_err(storage_error)?
    {
        Some(url) => url,
        None => format!(
            "{}/api/v1/executions/{}/{}/uploads/{upload_id}/{}",
            base.0,
            path_segment(&namespace),
            path_segment(&flow_id),
            path_segment(&filename)
        ),
    };
    Ok(Json(json!({
        "uri": uri,
        "uploadUrl": upload_url,
        "method": "PUT",
        "expiresIn": UPLOAD_URL_TTL.as_secs(),
        "maxSize": s.max_upload,
    })))
}

#[derive(serde::Deserialize)]
pub struct UploadPath {
    namespace: String,
    flow_id: String,
    upload_id: String,
    filename: String,
}

/// `PUT /executions/{namespace}/{flowId}/uploads/{uploadId}/{filename}`: streams the body
/// into the staging URI, within the same bound as a multipart upload.
pub async fn put(
    State(s): State<Shared>,
    Path(UploadPath {
        namespace,
        flow_id,
        upload_id,
        filename,
    }): Path<UploadPath>,
    request: Request,
) -> ApiResult<Response> {
    s.engine.get_flow(&namespace, &flow_id, None).await?;
    if !valid_upload_id(&upload_id) {
        return Err(ApiError::invalid_entity(
            "uploadId",
            "Invalid upload id: ask POST …/uploads for one",
        ));
    }
    if let Some(why) = bad_filename(&filename) {
        return Err(ApiError::invalid_entity(
            "filename",
            &format!("Invalid file name: {why}"),
        ));
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > s.max_upload) {
        return Err(ApiError::from(EngineError::from(
            kite_engine::ports::StorageError::TooLarge { limit: s.max_upload },
        )));
    }
    let uri = format!(
        "{}{upload_id}/{filename}",
        flow_uploads_prefix(&namespace, &flow_id)
    );
    let size = store_stream(
        &s,
        request.into_body().into_data_stream(),
        &uri,
        |e: axum::Error| ApiError::bad_request(&format!("Cannot read the request body: {e}")),
    )
    .await?;
    if size == 0 {
        return Err(ApiError::invalid_entity(
            "filename",
            &format!("Can't upload file: {filename} is empty"),
        ));
    }
    Ok((StatusCode::CREATED, Json(json!({ "uri": uri, "size": size }))).into_response())
}

/// FILE inputs given as text (`kestra:///…`, not a file part) must be files staged for
/// this flow, present and within `max_upload` (a presigned upload cannot be bounded
/// while it is written): they then become the inputs' files. Other text is left to the
/// engine, which refuses it as a FILE.
pub(crate) async fn accept_staged(
    s: &Shared,
    namespace: &str,
    flow_id: &str,
    file_inputs: &[String],
    body: &mut Submitted,
) -> ApiResult<()> {
    for id in file_inputs {
        if body.files.contains_key(id) {
            continue;
        }
        let text = match body.inputs.get(id) {
            Some(InputValue::Text(t)) => t.clone(),
            Some(InputValue::Json(Value::String(t))) => t.clone(),
            _ => continue,
        };
        if !text.starts_with("kestra:") {
            continue;
        }
        let refuse = |detail: String| {
            ApiError::from(EngineError::InvalidInput(InputError {
                input_id: id.clone(),
                message: format!("Invalid input for `{id}`, {detail}, but received `{text}`"),
            }))
        };
        let Some((upload_id, name)) = staged_upload(namespace, flow_id, &text) else {
            return Err(refuse(format!(
                "a FILE given as a URI must be uploaded for {namespace}.{flow_id} through \
                 POST /api/v1/executions/{namespace}/{flow_id}/uploads"
            )));
        };
        let files = &s.engine.ports().files;
        match files.size(&text).await.map_err(storage_error)? {
            None => return Err(refuse("file not found: it was not uploaded yet".into())),
            Some(0) => return Err(refuse(format!("can't upload file: {name} is empty"))),
            Some(size) if size > s.max_upload => {
                // Nothing may use it: it goes now rather than with the bucket's lifecycle.
                let folder = format!("{}{upload_id}", flow_uploads_prefix(namespace, flow_id));
                if let Err(e) = files.delete_prefix(&folder).await {
                    tracing::warn!(uri = %text, error = %e, "cannot delete an oversize upload");
                }
                return Err(refuse(format!(
                    "file is larger than the limit of {} bytes",
                    s.max_upload
                )));
            }
            Some(_) => {}
        }
        body.inputs.shift_remove(id);
        body.files.insert(id.clone(), text);
    }
    Ok(())
}

/// Whether `path` is a staged upload of the execution's flow that the execution uses
/// (one of its inputs, a resumed task's answer): downloadable with its own files.
pub(crate) fn used_by(execution: &Execution, path: &str) -> bool {
    fn mentions(v: &Value, s: &str) -> bool {
        match v {
            Value::String(x) => x == s,
            Value::Array(a) => a.iter().any(|x| mentions(x, s)),
            Value::Object(m) => m.values().any(|x| mentions(x, s)),
            _ => false,
        }
    }
    staged_upload(&execution.namespace, &execution.flow_id, path).is_some()
        && serde_json::to_value(execution).is_ok_and(|v| mentions(&v, path))
}

/// A `307` to `url` (an empty body: Kestra's error shape is only for errors).
pub(crate) fn redirect(url: &str) -> ApiResult<Response> {
    Response::builder()
        .status(StatusCode::TEMPORARY_REDIRECT)
        .header(header::LOCATION, url)
        .body(Body::empty())
        .map_err(|e| ApiError::from(EngineError::Internal(e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_uris_belong_to_one_flow() {
        let uri = "kestra:///company/team/etl/uploads/3Fz9Qa/big.csv";
        assert_eq!(
            staged_upload("company.team", "etl", uri),
            Some(("3Fz9Qa", "big.csv"))
        );
        assert_eq!(staged_upload("company.team", "other", uri), None);
        assert_eq!(staged_upload("company", "team", uri), None);
        // An execution's files, deeper folders, odd ids and names are not staged uploads.
        for other in [
            "kestra:///company/team/etl/executions/abc/inputs/f/a.csv",
            "kestra:///company/team/etl/uploads/abc/sub/a.csv",
            "kestra:///company/team/etl/uploads/a-b/a.csv",
            "kestra:///company/team/etl/uploads/abc/..",
            "kestra:///company/team/etl/uploads/abc/",
            "kestra:///company/team/etl/uploads/abc",
        ] {
            assert_eq!(staged_upload("company.team", "etl", other), None, "{other}");
        }
    }

    #[test]
    fn file_names_are_one_safe_segment() {
        for ok in ["big.csv", "a b.txt", "données.json", ".env"] {
            assert_eq!(bad_filename(ok), None, "{ok}");
        }
        let long = "x".repeat(256);
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a\\b",
            "c:x",
            "a\0b",
            "x\n",
            "a..b",
            long.as_str(),
        ] {
            assert!(bad_filename(bad).is_some(), "{bad:?}");
        }
        assert_eq!(path_segment("a b/é.csv"), "a%20b%2F%C3%A9.csv");
    }
}
