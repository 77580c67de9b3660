//! What a request to start an execution submits: its inputs from a multipart,
//! urlencoded or JSON body, and its FILE inputs streamed to storage (received under
//! `RECEIVING_PREFIX`, moved into place just before the execution is stored).

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{header, HeaderMap, StatusCode};
use futures_util::stream::{Stream, StreamExt};
use indexmap::IndexMap;
use kite_core::input::{file_input_uri, InputValue};
use kite_engine::ports::RECEIVING_PREFIX;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::error::{ApiError, ApiResult};
use crate::Shared;

/// What a request body carried: text inputs and uploaded files (already stored).
#[derive(Default)]
pub(crate) struct Submitted {
    pub inputs: IndexMap<String, InputValue>,
    /// FILE input id → the URI the file is at once [`Submitted::place_files`] has run.
    pub files: IndexMap<String, String>,
    /// Files received under [`RECEIVING_PREFIX`], with the URI each moves to.
    received: Vec<(String, String)>,
}

impl Submitted {
    /// Moves the received files into place: the last step before the execution is stored,
    /// so that a request cut short leaves its files only where the next start sweeps.
    pub(crate) async fn place_files(&mut self, s: &Shared) -> ApiResult<()> {
        let files = s.engine.ports().files.clone();
        for (from, to) in self.received.drain(..) {
            files
                .rename(&from, &to)
                .await
                .map_err(|e| ApiError::from(kite_engine::EngineError::from(e)))?;
        }
        Ok(())
    }
}

/// Where the files of a request for `execution_id` are received.
pub(crate) fn receiving_prefix(execution_id: &str) -> String {
    format!("{RECEIVING_PREFIX}{execution_id}/")
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// A file name safe to use as the last segment of a storage path.
fn safe_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = base
        .chars()
        .map(|c| if c.is_control() || c == ':' { '_' } else { c })
        .collect();
    match cleaned.trim() {
        "" | "." | ".." => "file.upl".to_string(),
        other => keep_tail(other, MAX_FILE_NAME).to_string(),
    }
}

/// Bytes of an uploaded file's name kept in its storage path: file systems refuse a
/// path segment past 255 bytes (the legacy form appends `.upl`).
const MAX_FILE_NAME: usize = 200;

/// The last `max` bytes of `name` at most (its extension is at the end), cut at a
/// character boundary.
fn keep_tail(name: &str, max: usize) -> &str {
    let mut from = name.len().saturating_sub(max);
    while !name.is_char_boundary(from) {
        from += 1;
    }
    &name[from..]
}

/// Reads inputs from a multipart, urlencoded or JSON body; FILE parts stream to
/// storage under `execution_id` (never buffered whole). `file_inputs` are the ids
/// of the declared FILE inputs: a part named after one is that input (Kestra ≥ 0.24);
/// a part named `files` whose filename is one is the legacy form.
pub(crate) async fn read_body(
    s: &Shared,
    request: Request,
    namespace: &str,
    flow_id: &str,
    execution_id: &str,
    file_inputs: &[String],
) -> ApiResult<Submitted> {
    let mut out = Submitted::default();
    let kind = content_type(request.headers());
    match kind.as_str() {
        "multipart/form-data" => {
            if !has_boundary(request.headers()) {
                // Kestra's UI posts `multipart/form-data` with no body at all: nothing to read.
                // A body without a boundary cannot be split into inputs: say so, drop nothing.
                return match axum::body::to_bytes(request.into_body(), 0).await {
                    Ok(_) => Ok(out),
                    Err(_) => Err(ApiError::bad_request(
                        "Malformed multipart body: the Content-Type `multipart/form-data` has no \
                         `boundary` parameter, so its parts cannot be read",
                    )),
                };
            }
            let mut multipart = Multipart::from_request(request, &()).await.map_err(|e| {
                ApiError::bad_request(&format!("Malformed multipart body: {}", e.body_text()))
            })?;
            let mut parts = 0usize;
            let mut text_bytes = 0usize;
            loop {
                let field = match multipart.next_field().await {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => {
                        let text = e.body_text();
                        if text.contains("length limit") {
                            return Err(ApiError::new(
                                StatusCode::PAYLOAD_TOO_LARGE,
                                "Request Entity Too Large",
                            ));
                        }
                        return Err(ApiError::bad_request(&format!(
                            "Malformed multipart body: {text}"
                        )));
                    }
                };
                parts += 1;
                if parts > MAX_PARTS {
                    return Err(ApiError::bad_request(&format!(
                        "Malformed multipart body: more than {MAX_PARTS} parts"
                    )));
                }
                let name = field.name().unwrap_or("").to_string();
                let filename = field.file_name().map(str::to_string);
                let Some(filename) = filename else {
                    let text = bounded_text(field, &name, s.limits.text_part).await?;
                    text_bytes += text.len();
                    if text_bytes > s.limits.body {
                        return Err(s.limits.body_too_large());
                    }
                    out.inputs.insert(name, InputValue::Text(text));
                    continue;
                };
                let (input_id, stored_name) = if file_inputs.contains(&name) {
                    (name.clone(), safe_file_name(&filename))
                } else if name == "files" && file_inputs.contains(&filename) {
                    (filename.clone(), format!("{}.upl", safe_file_name(&filename)))
                } else {
                    // Parts for undeclared inputs are ignored, as Kestra does.
                    continue;
                };
                if out.files.contains_key(&input_id) {
                    return Err(ApiError::invalid_entity(
                        &input_id,
                        "A FILE input takes one file; the request has more than one for it",
                    ));
                }
                let uri = file_input_uri(namespace, flow_id, execution_id, &input_id, &stored_name);
                let receiving = format!("{}{input_id}/{stored_name}", receiving_prefix(execution_id));
                let size = store_stream(
                    s,
                    field,
                    &receiving,
                    |e: axum::extract::multipart::MultipartError| {
                        ApiError::bad_request(&format!("Malformed multipart body: {}", e.body_text()))
                    },
                )
                .await?;
                if size == 0 {
                    return Err(ApiError::invalid_entity(
                        &input_id,
                        &format!("Can't upload file: {filename} is empty"),
                    ));
                }
                out.received.push((receiving, uri.clone()));
                out.files.insert(input_id, uri);
            }
        }
        "application/x-www-form-urlencoded" => {
            let bytes = axum::body::to_bytes(request.into_body(), s.limits.body)
                .await
                .map_err(|_| s.limits.body_too_large())?;
            let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
                .map_err(|e| ApiError::bad_request(&format!("Malformed form body: {e}")))?;
            for (k, v) in pairs {
                out.inputs.insert(k, InputValue::Text(v));
            }
        }
        "application/json" => {
            let bytes = axum::body::to_bytes(request.into_body(), s.limits.body)
                .await
                .map_err(|_| s.limits.body_too_large())?;
            if !bytes.is_empty() {
                match serde_json::from_slice::<Value>(&bytes) {
                    Ok(Value::Object(m)) => {
                        for (k, v) in m {
                            out.inputs.insert(k, InputValue::Json(v));
                        }
                    }
                    Ok(_) => {
                        return Err(ApiError::invalid_entity(
                            "inputs",
                            "Expected a JSON object of inputs",
                        ))
                    }
                    Err(e) => {
                        return Err(ApiError::new(
                            StatusCode::BAD_REQUEST,
                            format!("Invalid JSON: {e}"),
                        ))
                    }
                }
            }
        }
        _ => {
            let bytes = axum::body::to_bytes(request.into_body(), s.limits.body)
                .await
                .unwrap_or_default();
            if !bytes.is_empty() {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!("Unsupported Media Type: use multipart/form-data, not `{kind}`"),
                ));
            }
        }
    }
    Ok(out)
}

/// Parts read from one multipart request at most.
const MAX_PARTS: usize = 1_000;

/// A text part, read chunk by chunk up to `max` bytes (413 beyond, before reading the rest).
async fn bounded_text(
    mut field: axum::extract::multipart::Field<'_>,
    name: &str,
    max: usize,
) -> ApiResult<String> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| ApiError::bad_request(&format!("Malformed multipart body: {}", e.body_text())))?
    {
        if bytes.len() + chunk.len() > max {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Request Entity Too Large: the part `{name}` is larger than {max} bytes (a text input; KITE_MAX_TEXT_PART)"),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| {
        ApiError::bad_request(&format!(
            "Malformed multipart body: the part `{name}` is not UTF-8 text"
        ))
    })
}

/// Whether a `multipart/form-data` Content-Type names its `boundary`.
fn has_boundary(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| multer::parse_boundary(ct).is_ok())
}

/// Streams request bytes (a multipart part, a whole body) into file storage through a
/// bounded pipe, within `max_upload`; `unreadable` describes a failed read.
pub(crate) async fn store_stream<S, E>(
    s: &Shared,
    chunks: S,
    uri: &str,
    unreadable: impl FnOnce(E) -> ApiError,
) -> ApiResult<u64>
where
    S: Stream<Item = Result<axum::body::Bytes, E>>,
{
    let mut chunks = std::pin::pin!(chunks);
    let (mut writer, reader) = tokio::io::duplex(64 * 1024);
    let files = s.engine.ports().files.clone();
    let target = uri.to_string();
    let limit = s.max_upload;
    let put = tokio::spawn(async move { files.put(&target, Box::pin(reader), limit).await });
    let mut copy_error = None;
    loop {
        match chunks.next().await {
            Some(Ok(chunk)) => {
                if writer.write_all(&chunk).await.is_err() {
                    break; // the store stopped reading (too large, or failed): its result says why
                }
            }
            None => break,
            Some(Err(e)) => {
                copy_error = Some(e);
                break;
            }
        }
    }
    drop(writer);
    let stored = put
        .await
        .map_err(|e| ApiError::from(kite_engine::EngineError::Internal(e.to_string())))?;
    if let Some(e) = copy_error {
        return Err(unreadable(e));
    }
    stored.map_err(|e| ApiError::from(kite_engine::EngineError::from(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_file_names_are_cut_to_what_a_file_system_stores() {
        // Found by the multipart fuzz target: a 300-byte name answered 500 (ENAMETOOLONG).
        let long = format!("{}.txt", "f".repeat(300));
        let safe = safe_file_name(&long);
        assert_eq!(safe.len(), MAX_FILE_NAME);
        assert!(safe.ends_with("ff.txt"));
        let wide = "é".repeat(300);
        assert!(safe_file_name(&wide).len() <= MAX_FILE_NAME);
        assert_eq!(safe_file_name("a/b/c.txt"), "c.txt");
    }
}
