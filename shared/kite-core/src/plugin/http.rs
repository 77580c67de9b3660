//! `io.kestra.plugin.core.http.Request` and `Download`: the request rendered from the
//! task's properties, and the task run's result from the response (Request: outputs
//! `code`, `headers`, `body`, `uri`; Download: the body stored as a file of the task run,
//! outputs `uri`, `code`, `length`, `headers`). The worker sends it.

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde_json::{json, Map, Value};

use super::{Check, IoAnswer, IoCall, IoKind, IoTaskSpec, Property, Render, TaskRunContext};
use crate::execution::TaskResult;
use crate::execution::{LogLevel, StateType};
use crate::expression::ExpressionError;

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
            // Accepted, not used yet (docs/compatibility.md).
            Property::new("options", Check::Any),
            Property::new("sslOptions", Check::Any),
            Property::new("allowFailed", Check::Boolean),
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
            // Accepted, not used yet (docs/compatibility.md).
            Property::new("options", Check::Any),
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
                        allow_failed: false,
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
    let cleaned: String = last
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(200)
        .collect();
    match cleaned.trim_matches('.') {
        "" => "download".to_string(),
        name => name.to_string(),
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
    let response = match answered(call, response) {
        Ok(r) => r,
        Err(message) => return task_run.failed(message, now),
    };
    let Some(stored) = &response.stored else {
        return task_run.failed("The worker did not store the downloaded body", now);
    };
    if stored.length == 0 && call.download.is_some_and(|d| d.fail_on_empty) {
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
    /// `allowFailed`: a 4xx/5xx answer is a result, not a failure.
    pub allow_failed: bool,
    /// Set for `Download`: the worker stores the body as a file of the task run.
    pub download: Option<Download>,
}

/// Why a request was not made or got no response; the task run's ERROR line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HttpError {
    #[error(transparent)]
    Render(#[from] ExpressionError),
    #[error("`formData` must be a map of field names to values")]
    FormDataNotAMap,
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

/// Renders the task's properties (as the parser checked them).
pub fn prepare(properties: &Map<String, Value>, render: &Render) -> Result<HttpCall, HttpError> {
    let get = |name: &str| properties.get(name).filter(|v| !v.is_null());
    let uri = render(get("uri").unwrap_or(&Value::Null))?;
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
    let has_header =
        |headers: &[(String, String)], name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let body = match (get("body"), get("formData")) {
        (Some(body), _) => {
            if !has_header(&headers, "content-type") {
                let content_type = match get("contentType") {
                    Some(ct) => render(ct)?,
                    None => "application/json".to_string(),
                };
                headers.push(("Content-Type".into(), content_type));
            }
            Some(render(body)?.into_bytes())
        }
        (None, Some(Value::Object(fields))) => {
            let mut form = form_urlencoded::Serializer::new(String::new());
            for (name, value) in fields {
                form.append_pair(name, &render(value)?);
            }
            if !has_header(&headers, "content-type") {
                headers.push(("Content-Type".into(), "application/x-www-form-urlencoded".into()));
            }
            Some(form.finish().into_bytes())
        }
        (None, Some(_)) => return Err(HttpError::FormDataNotAMap),
        (None, None) => None,
    };
    Ok(HttpCall {
        method,
        uri,
        headers,
        body,
        allow_failed: get("allowFailed").and_then(Value::as_bool).unwrap_or(false),
        download: None,
    })
}

/// The response, or the FAILED task run's message: the request could not be made, or the
/// server answered 4xx/5xx without `allowFailed` (Kestra's message).
pub fn answered(call: &HttpCall, response: Result<HttpResponse, HttpError>) -> Result<HttpResponse, String> {
    let response = response.map_err(|e| e.to_string())?;
    if response.status >= 400 && !call.allow_failed {
        let mut message = format!("Failed http request with response code '{}'", response.status);
        if !response.body.is_empty() {
            message.push_str(" and body:\n");
            message.push_str(&String::from_utf8_lossy(&response.body));
        }
        return Err(message);
    }
    Ok(response)
}

/// The task run's result: SUCCESS with the response as outputs, FAILED when the
/// request could not be made (`error`) or the server answered 4xx/5xx without `allowFailed`.
pub fn finish(
    call: &HttpCall,
    task_run: &TaskRunContext,
    response: Result<HttpResponse, HttpError>,
    now: DateTime<Utc>,
) -> TaskResult {
    let response = match answered(call, response) {
        Ok(r) => r,
        Err(message) => return task_run.failed(message, now),
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
mod tests {
    use super::*;

    fn task(yaml: serde_json::Value) -> Map<String, Value> {
        yaml.as_object().cloned().unwrap_or_default()
    }

    fn literal(v: &Value) -> Result<String, ExpressionError> {
        match v {
            Value::String(s) if s.contains("{{") => Err(ExpressionError::new(format!("cannot render {s}"))),
            Value::String(s) => Ok(s.clone()),
            other => Ok(other.to_string()),
        }
    }

    fn context() -> TaskRunContext {
        TaskRunContext {
            namespace: "dev".into(),
            flow_id: "f".into(),
            execution_id: "e".into(),
            task_id: "call".into(),
            task_run_id: "tr".into(),
            attempt_number: 1,
            log_level: None,
        }
    }

    #[test]
    fn a_body_gets_json_as_content_type_unless_one_is_given() {
        let call = prepare(
            &task(json!({"uri": "http://h/x", "method": "post", "body": "{}"})),
            &literal,
        );
        assert_eq!(
            call,
            Ok(HttpCall {
                method: "POST".into(),
                uri: "http://h/x".into(),
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: Some(b"{}".to_vec()),
                allow_failed: false,
                download: None,
            })
        );
        let call = prepare(
            &task(json!({"uri": "u", "body": "a", "headers": {"content-type": "text/plain"}})),
            &literal,
        );
        assert_eq!(
            call.map(|c| c.headers),
            Ok(vec![("content-type".into(), "text/plain".into())])
        );
    }

    #[test]
    fn form_data_is_url_encoded_and_render_errors_say_why() {
        let call = prepare(
            &task(json!({"uri": "u", "formData": {"a": "x y", "b": "&"}})),
            &literal,
        );
        assert_eq!(call.clone().map(|c| c.body), Ok(Some(b"a=x+y&b=%26".to_vec())));
        assert_eq!(
            call.map(|c| c.headers),
            Ok(vec![(
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into()
            )])
        );
        assert_eq!(
            prepare(&task(json!({"uri": "{{ nope }}"})), &literal),
            Err(HttpError::Render(ExpressionError::new(
                "cannot render {{ nope }}"
            )))
        );
    }

    #[test]
    fn downloads_name_their_file_after_the_url_and_fail_on_an_empty_body() {
        assert_eq!(download_file_name("https://h/a/report.csv?x=1"), "report.csv");
        assert_eq!(download_file_name("http://h/"), "download");
        assert_eq!(download_file_name("http://h"), "download");
        assert_eq!(download_file_name("http://h/a/..%2F..%2Fetc"), "2F..2Fetc");
        let spec = &TASKS[1];
        let call = match (spec.prepare)(&task(json!({"uri": "http://h/f.txt"})), &literal) {
            Ok(IoCall::Http(call)) => call,
            other => panic!("{other:?}"),
        };
        assert_eq!(call.download, Some(Download { fail_on_empty: true }));
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let stored = |length| HttpResponse {
            status: 200,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: vec![],
            stored: Some(StoredBody {
                uri: "kestra:///dev/f/executions/e/tasks/call/tr/f.txt".into(),
                length,
            }),
        };
        let ok = finish_download(&call, &context(), Ok(stored(5)), now);
        assert_eq!(ok.state, StateType::Success);
        assert_eq!(
            Value::Object(ok.outputs.into_iter().collect()),
            json!({"uri": "kestra:///dev/f/executions/e/tasks/call/tr/f.txt", "code": 200, "length": 5,
                   "headers": {"content-type": ["text/plain"]}})
        );
        let empty = finish_download(&call, &context(), Ok(stored(0)), now);
        assert_eq!(empty.state, StateType::Failed);
        assert_eq!(empty.logs[0].message, "No response from server");
        let lenient = HttpCall {
            download: Some(Download { fail_on_empty: false }),
            ..call.clone()
        };
        assert_eq!(
            finish_download(&lenient, &context(), Ok(stored(0)), now).state,
            StateType::Success
        );
    }

    #[test]
    fn responses_become_outputs_and_errors_fail_with_kestras_message() {
        let call = prepare(&task(json!({"uri": "http://h/x"})), &literal).unwrap_or_else(|e| panic!("{e}"));
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let ok = finish(
            &call,
            &context(),
            Ok(HttpResponse {
                status: 200,
                headers: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
                body: b"hello".to_vec(),
                stored: None,
            }),
            now,
        );
        assert_eq!(ok.state, StateType::Success);
        assert_eq!(
            Value::Object(ok.outputs.into_iter().collect()),
            json!({"uri": "http://h/x", "code": 200, "headers": {"a": ["1", "2"]}, "body": "hello"})
        );
        let not_found = HttpResponse {
            status: 404,
            headers: vec![],
            body: b"no such thing".to_vec(),
            stored: None,
        };
        let failed = finish(&call, &context(), Ok(not_found.clone()), now);
        assert_eq!(failed.state, StateType::Failed);
        assert_eq!(
            failed.logs.iter().map(|l| l.message.as_str()).collect::<Vec<_>>(),
            ["Failed http request with response code '404' and body:\nno such thing"]
        );
        let allowed = HttpCall {
            allow_failed: true,
            ..call.clone()
        };
        assert_eq!(
            finish(&allowed, &context(), Ok(not_found), now).state,
            StateType::Success
        );
        let refused = HttpError::Failed {
            uri: call.uri.clone(),
            reason: "Connection refused".into(),
        };
        let unreachable = finish(&call, &context(), Err(refused), now);
        assert_eq!(unreachable.state, StateType::Failed);
        assert_eq!(
            unreachable.logs[0].message,
            "Request to `http://h/x` failed: Connection refused"
        );
    }
}
