//! `io.kestra.plugin.core.http.Request` and `Download`: the request rendered from the
//! task's properties, and the task run's result from the response (Request: outputs
//! `code`, `headers`, `body`, `uri`; Download: the body stored as a file of the task run,
//! outputs `uri`, `code`, `length`, `headers`). The worker sends it.
//!
//! - `options`: the task's `options` (auth, timeouts, redirects, size limit, charset)
//! - `form`: `formData`, URL-encoded or multipart with files of the internal storage

pub mod form;
pub mod options;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde_json::{json, Map, Value};

use super::{Check, IoAnswer, IoCall, IoKind, IoTaskSpec, Property, Render, TaskRunContext};
use crate::execution::TaskResult;
use crate::execution::{LogLevel, StateType};
use crate::expression::ExpressionError;
pub use form::{FormPart, PartContent};
pub use options::{Auth, Charset, HttpOptions};

/// `io.kestra.plugin.core.http.Request`.
pub const TASKS: &[IoTaskSpec] = &[
    IoTaskSpec {
        kind: IoKind::HttpRequest,
        name: "io.kestra.plugin.core.http.Request",
        aliases: &["io.kestra.plugin.fs.http.Request"],
        properties: &[
            Property::new("uri", Check::Required),
            Property::new("method", Check::Any),
            Property::new("body", Check::Any),
            Property::new("formData", Check::Any),
            Property::new("contentType", Check::Any),
            Property::new("headers", Check::Map),
            Property::new("options", Check::Any),
            Property::new("allowFailed", Check::Boolean),
            // Accepted, not used (docs/compatibility.md).
            Property::new("sslOptions", Check::Any),
            Property::new("encryptBody", Check::Any),
        ],
        prepare: |properties, render| {
            prepare(properties, render)
                .map(IoCall::Http)
                .map_err(|e| e.to_string())
        },
        finish: |call, answer, task_run, now| {
            let (IoCall::Http(call), IoAnswer::Http(response)) = (call, answer) else {
                return task_run.failed("The worker answered another kind of call", now);
            };
            finish(call, task_run, response, now)
        },
    },
    IoTaskSpec {
        kind: IoKind::HttpDownload,
        name: "io.kestra.plugin.core.http.Download",
        aliases: &["io.kestra.plugin.fs.http.Download"],
        properties: &[
            Property::new("uri", Check::Required),
            Property::new("method", Check::Any),
            Property::new("body", Check::Any),
            Property::new("formData", Check::Any),
            Property::new("contentType", Check::Any),
            Property::new("headers", Check::Map),
            Property::new("failOnEmptyResponse", Check::Boolean),
            Property::new("options", Check::Any),
            Property::new("allowFailed", Check::Boolean),
            // Accepted, not used (docs/compatibility.md).
            Property::new("sslOptions", Check::Any),
        ],
        prepare: |properties, render| {
            let fail_on_empty = properties
                .get("failOnEmptyResponse")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            prepare(properties, render)
                .map(|call| {
                    IoCall::Http(HttpCall {
                        download: Some(Download { fail_on_empty }),
                        ..call
                    })
                })
                .map_err(|e| e.to_string())
        },
        finish: |call, answer, task_run, now| {
            let (IoCall::Http(call), IoAnswer::Http(response)) = (call, answer) else {
                return task_run.failed("The worker answered another kind of call", now);
            };
            finish_download(call, task_run, response, now)
        },
    },
];

/// `Download`: the response body goes to a file of the task run instead of its outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Download {
    /// `failOnEmptyResponse` (Kestra's default: true): an empty body fails the task run.
    pub fail_on_empty: bool,
}

/// Where the worker stored a downloaded body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBody {
    pub uri: String,
    pub length: u64,
}

/// The name of a downloaded file: the last segment of the URL's path, reduced to
/// characters that are safe in a storage path, or `download`.
pub fn download_file_name(uri: &str) -> String {
    let path = uri.split(['?', '#']).next().unwrap_or("");
    let path = path.split_once("://").map_or(path, |(_, rest)| rest);
    let last = path
        .split_once('/')
        .map_or("", |(_, p)| p)
        .rsplit('/')
        .next()
        .unwrap_or("");
    safe_file_name(last).unwrap_or_else(|| "download".to_string())
}

/// The file name a `Content-Disposition` header gives (`attachment; filename="a.jpg"`),
/// without the folders it may name (as Kestra keeps only the name) and reduced as
/// [`download_file_name`] reduces it; `None` when it gives none.
pub fn disposition_file_name(header: &str) -> Option<String> {
    let value = header.split(';').find_map(|part| {
        let (key, value) = part.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("filename")
            .then(|| value.trim().trim_matches('"'))
    })?;
    safe_file_name(value.rsplit(['/', '\\']).next().unwrap_or(""))
}

fn safe_file_name(name: &str) -> Option<String> {
    let cleaned: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(200)
        .collect();
    match cleaned.trim_matches('.') {
        "" => None,
        name => Some(name.to_string()),
    }
}

/// A Download's result: SUCCESS with the stored file's `uri` and `length`, the `code` and
/// `headers`; FAILED as a Request fails, or on an empty body unless `failOnEmptyResponse`
/// is false.
pub fn finish_download(
    call: &HttpCall,
    task_run: &TaskRunContext,
    response: Result<HttpResponse, HttpError>,
    now: DateTime<Utc>,
) -> TaskResult {
    let response = match checked(call, task_run, response, now) {
        Ok(r) => r,
        Err(failed) => return failed,
    };
    let Some(stored) = &response.stored else {
        return task_run.failed("The worker did not store the downloaded body", now);
    };
    if stored.length == 0 && call.download.is_some_and(|d| d.fail_on_empty) && !call.options.allow_failed {
        return task_run.failed("No response from server", now);
    }
    let mut outputs = IndexMap::new();
    outputs.insert("uri".to_string(), Value::String(stored.uri.clone()));
    outputs.insert("code".to_string(), json!(response.status));
    outputs.insert("length".to_string(), json!(stored.length));
    outputs.insert("headers".to_string(), headers_output(&response.headers));
    let mut result = task_run.result(StateType::Success, outputs);
    result.logs.extend(task_run.log(
        LogLevel::Debug,
        format!(
            "{} {} answered {}: {} bytes stored",
            call.method, call.uri, response.status, stored.length
        ),
        now,
    ));
    result
}

/// Response headers as Kestra gives them: each name with the list of its values.
fn headers_output(headers: &[(String, String)]) -> Value {
    let mut by_name: IndexMap<String, Value> = IndexMap::new();
    for (name, value) in headers {
        if let Value::Array(values) = by_name.entry(name.clone()).or_insert_with(|| json!([])) {
            values.push(Value::String(value.clone()));
        }
    }
    Value::Object(by_name.into_iter().collect())
}

/// A request, rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpCall {
    pub method: String,
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    /// A multipart form (`formData` with `contentType: multipart/form-data`): the worker
    /// reads its files and encodes it as the body.
    pub form: Vec<FormPart>,
    pub options: HttpOptions,
    /// Set for `Download`: the worker stores the body as a file of the task run.
    pub download: Option<Download>,
}

impl HttpCall {
    /// A request with Kestra's default options and no body.
    pub fn new(method: impl Into<String>, uri: impl Into<String>) -> HttpCall {
        HttpCall {
            method: method.into(),
            uri: uri.into(),
            headers: Vec::new(),
            body: None,
            form: Vec::new(),
            options: HttpOptions::default(),
            download: None,
        }
    }

    /// The internal storage files the request sends (the parts of a multipart form).
    pub fn files_read(&self) -> Vec<&str> {
        self.form
            .iter()
            .filter_map(|p| match &p.content {
                PartContent::File { uri, .. } => Some(uri.as_str()),
                PartContent::Text(_) => None,
            })
            .collect()
    }
}

/// Why a request was not made or got no response; the task run's ERROR line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HttpError {
    #[error(transparent)]
    Render(#[from] ExpressionError),
    #[error("`formData` must be a map of field names to values")]
    FormDataNotAMap,
    #[error("Invalid `{name}`: {reason}")]
    InvalidOption { name: String, reason: String },
    #[error("Invalid `{name}`: {reason}")]
    InvalidProperty { name: String, reason: String },
    #[error("Invalid request to `{uri}`: {reason}")]
    InvalidRequest { uri: String, reason: String },
    #[error("Request to `{uri}` failed: {reason}")]
    Failed { uri: String, reason: String },
    #[error("Reading the response of `{uri}` failed: {reason} (limit {limit} bytes)")]
    Unreadable {
        uri: String,
        reason: String,
        limit: usize,
    },
    #[error(
        "The response of `{uri}` is larger than {limit} bytes (`options.maxContentLength`); \
         the Download task stores large responses as files"
    )]
    TooLarge { uri: String, limit: usize },
    #[error("Request to `{uri}` timed out: no connection within {limit} (`options.timeout.connectTimeout`)")]
    ConnectTimeout { uri: String, limit: String },
    #[error("Request to `{uri}` timed out: no data for {limit} (`options.timeout.readIdleTimeout`)")]
    ReadTimeout { uri: String, limit: String },
    #[error("Request to `{uri}` failed: more than {max} redirects")]
    TooManyRedirects { uri: String, max: usize },
    #[error("Reading `{file}` for `formData` failed: {reason}")]
    FormFile { file: String, reason: String },
}

/// What the server answered.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    pub status: u16,
    /// In the order received; a name may repeat.
    pub headers: Vec<(String, String)>,
    /// Empty when the body was stored (`stored`).
    pub body: Vec<u8>,
    /// Where a `Download`'s body was stored.
    pub stored: Option<StoredBody>,
}

/// Renders the task's properties (as the parser checked them). As in Kestra, `formData`
/// wins over `body`; `contentType` (default `application/json`) and the charset of
/// `options.defaultCharset` describe a `body`; a header given in `headers` wins.
pub fn prepare(properties: &Map<String, Value>, render: &Render) -> Result<HttpCall, HttpError> {
    let get = |name: &str| properties.get(name).filter(|v| !v.is_null());
    let options = options::parse(get("options"), get("allowFailed"), render)?;
    // Kestra encodes spaces, the one character a hand-written URL commonly has.
    let uri = render(get("uri").unwrap_or(&Value::Null))?.replace(' ', "%20");
    let method = match get("method") {
        Some(method) => render(method)?.to_ascii_uppercase(),
        None => "GET".to_string(),
    };
    let mut headers = Vec::new();
    if let Some(Value::Object(given)) = get("headers") {
        for (name, value) in given {
            headers.push((name.clone(), render(value)?));
        }
    }
    if let Some(auth) = &options.auth {
        // Kestra's auth replaces an `Authorization` header.
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case("authorization"));
        headers.push(("Authorization".into(), auth.header()));
    }
    let has_header =
        |headers: &[(String, String)], name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let content_type = match get("contentType") {
        Some(ct) => render(ct)?,
        None => "application/json".to_string(),
    };
    let charset = options.charset;
    let mut form = Vec::new();
    let body = match (get("formData"), get("body")) {
        (Some(Value::Object(fields)), _)
            if content_type.trim().eq_ignore_ascii_case("multipart/form-data") =>
        {
            // The worker sets the `Content-Type` (it holds the boundary).
            form = form::multipart(fields, render)?;
            None
        }
        (Some(Value::Object(fields)), _) => {
            if !has_header(&headers, "content-type") {
                let value = format!("application/x-www-form-urlencoded; charset={}", charset.name());
                headers.push(("Content-Type".into(), value));
            }
            Some(form::url_encoded(fields, render, charset)?)
        }
        (Some(_), _) => return Err(HttpError::FormDataNotAMap),
        (None, Some(body)) => {
            if !has_header(&headers, "content-type") {
                let value = if content_type.to_ascii_lowercase().contains("charset=") {
                    content_type
                } else {
                    format!("{content_type}; charset={}", charset.name())
                };
                headers.push(("Content-Type".into(), value));
            }
            Some(charset.encode(&render(body)?))
        }
        (None, None) => None,
    };
    Ok(HttpCall {
        method,
        uri,
        headers,
        body,
        form,
        options,
        download: None,
    })
}

/// The response, or the FAILED task run's message: the request could not be made, or the
/// server's code is not accepted (`options.allowFailed`, `options.allowedResponseCodes`;
/// Kestra's message).
pub fn answered(call: &HttpCall, response: Result<HttpResponse, HttpError>) -> Result<HttpResponse, String> {
    let response = response.map_err(|e| e.to_string())?;
    if !call.options.accepts(response.status) {
        let mut message = format!("Failed http request with response code '{}'", response.status);
        if !response.body.is_empty() {
            message.push_str(" and body:\n");
            message.push_str(&String::from_utf8_lossy(&response.body));
        }
        return Err(message);
    }
    Ok(response)
}

/// The response, or the FAILED task run: Kestra's message, after a line that says
/// which request got the refused code (Kestra's message does not name it).
fn checked(
    call: &HttpCall,
    task_run: &TaskRunContext,
    response: Result<HttpResponse, HttpError>,
    now: DateTime<Utc>,
) -> Result<HttpResponse, TaskResult> {
    let status = response.as_ref().ok().map(|r| r.status);
    answered(call, response).map_err(|message| {
        let mut failed = task_run.failed(message, now);
        if let Some(status) = status {
            let line = format!("{} {} answered {status}", call.method, call.uri);
            failed.logs.splice(0..0, task_run.log(LogLevel::Warn, line, now));
        }
        failed
    })
}

/// The task run's result: SUCCESS with the response as outputs, FAILED when the
/// request could not be made (`error`) or the server answered 4xx/5xx without `allowFailed`.
pub fn finish(
    call: &HttpCall,
    task_run: &TaskRunContext,
    response: Result<HttpResponse, HttpError>,
    now: DateTime<Utc>,
) -> TaskResult {
    let response = match checked(call, task_run, response, now) {
        Ok(r) => r,
        Err(failed) => return failed,
    };
    let body = String::from_utf8_lossy(&response.body).into_owned();
    let mut outputs = IndexMap::new();
    outputs.insert("uri".to_string(), Value::String(call.uri.clone()));
    outputs.insert("code".to_string(), json!(response.status));
    outputs.insert("headers".to_string(), headers_output(&response.headers));
    outputs.insert("body".to_string(), Value::String(body));
    let mut result = task_run.result(StateType::Success, outputs);
    result.logs.extend(task_run.log(
        LogLevel::Debug,
        format!("{} {} answered {}", call.method, call.uri, response.status),
        now,
    ));
    result
}

#[cfg(test)]
mod tests;
