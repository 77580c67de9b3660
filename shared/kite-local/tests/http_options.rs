//! The HTTP tasks' `options` and forms against a server on 127.0.0.1 (`http_server`):
//! authentication, redirects, timeouts, the response size limit, form data and
//! multipart files, and the failures a flow sees.

use kite_core::execution::StateType;

mod common;
mod http_server;
use http_server::{flow, received, run, serve, BASIC, BEARER};

/// The log line that says why `call` failed, or a panic listing the logs.
fn failure<'a>(logs: &'a [String], starts: &str) -> &'a str {
    logs.iter()
        .find(|l| l.starts_with(starts))
        .unwrap_or_else(|| panic!("no line starting with {starts:?} in {logs:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_opens_a_protected_route_and_its_absence_fails() {
    let addr = serve().await;
    let uri = format!("http://{addr}/basic");
    let (done, logs) = run(&flow("no-auth", &uri, "")).await;
    assert_eq!(done.state.current, StateType::Failed, "{logs:?}");
    failure(
        &logs,
        "Failed http request with response code '401' and body:\nwho are you",
    );

    let auth = "    options:\n      auth:\n        type: BASIC\n        username: \"{{ flow.namespace | replace({'dev': 'alice'}) }}\"\n        password: s3cret";
    let (done, logs) = run(&flow("basic", &uri, auth)).await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    assert!(logs.contains(&"200 welcome yes".to_string()), "{logs:?}");

    let legacy = "    options:\n      basicAuthUser: alice\n      basicAuthPassword: s3cret";
    let (done, logs) = run(&flow("legacy-basic", &uri, legacy)).await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");

    let wrong =
        "    options:\n      auth:\n        type: BASIC\n        username: alice\n        password: guess";
    let (done, _) = run(&flow("wrong-basic", &uri, wrong)).await;
    assert_eq!(done.state.current, StateType::Failed);
    assert_eq!(BASIC, "Basic YWxpY2U6czNjcmV0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bearer_token_is_sent_as_authorization() {
    let addr = serve().await;
    let uri = format!("http://{addr}/bearer");
    let token = BEARER.strip_prefix("Bearer ").expect("bearer");
    let auth = format!("    options:\n      auth:\n        type: BEARER\n        token: \"{token}\"");
    let (done, logs) = run(&flow("bearer", &uri, &auth)).await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    assert!(logs.contains(&"200 welcome yes".to_string()), "{logs:?}");
    let (done, _) = run(&flow("no-bearer", &uri, "")).await;
    assert_eq!(done.state.current, StateType::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_followed_unless_follow_redirects_is_false() {
    let addr = serve().await;
    let uri = format!("http://{addr}/redirect");
    let (done, logs) = run(&flow("redirect", &uri, "")).await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    assert!(logs.contains(&"200 hi yes".to_string()), "{logs:?}");

    let (done, logs) = run(&flow(
        "no-redirect",
        &uri,
        "    options:\n      followRedirects: false",
    ))
    .await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    assert!(logs.contains(&"302  yes".to_string()), "{logs:?}");

    // A 303 after a POST: the next request is a GET without the body.
    let post = "    method: POST\n    body: \"see-other-body\"";
    let (done, logs) = run(&flow("see-other", &format!("http://{addr}/see-other"), post)).await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    assert!(
        logs.contains(&"200 GET /echo HTTP/1.1 |  |  yes".to_string()),
        "{logs:?}"
    );

    let (done, logs) = run(&flow("loop", &format!("http://{addr}/loop"), "")).await;
    assert_eq!(done.state.current, StateType::Failed, "{logs:?}");
    failure(
        &logs,
        &format!("Request to `http://{addr}/loop` failed: more than 50 redirects"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_response_fails_after_read_idle_timeout_naming_it() {
    let addr = serve().await;
    let uri = format!("http://{addr}/stall");
    let options = "    options:\n      timeout:\n        readIdleTimeout: PT1S";
    let started = std::time::Instant::now();
    let (done, logs) = run(&flow("stall", &uri, options)).await;
    assert_eq!(done.state.current, StateType::Failed, "{logs:?}");
    failure(
        &logs,
        &format!("Request to `{uri}` timed out: no data for PT1S (`options.timeout.readIdleTimeout`)"),
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    // The deprecated spelling works the same; a Download stalls the same way.
    let legacy = "    options:\n      readTimeout: PT1S";
    let (done, logs) = run(&flow("stall-legacy", &uri, legacy)).await;
    assert_eq!(done.state.current, StateType::Failed, "{logs:?}");
    failure(&logs, &format!("Request to `{uri}` timed out: no data for PT1S"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_over_the_limit_fails_naming_the_limit() {
    let addr = serve().await;
    let limit = "    options:\n      maxContentLength: 1024";
    for path in ["large/2048", "unsized/2048"] {
        let uri = format!("http://{addr}/{path}");
        let (done, logs) = run(&flow("large", &uri, limit)).await;
        assert_eq!(done.state.current, StateType::Failed, "{path}: {logs:?}");
        failure(
            &logs,
            &format!("The response of `{uri}` is larger than 1024 bytes (`options.maxContentLength`)"),
        );
    }
    // At the limit is fine; the default limit is 10 MiB.
    let (done, logs) = run(&flow("at-limit", &format!("http://{addr}/unsized/1024"), limit)).await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    let uri = format!("http://{addr}/large/{}", 10 * 1024 * 1024 + 1);
    let (done, logs) = run(&flow("over-default", &uri, "")).await;
    assert_eq!(done.state.current, StateType::Failed);
    failure(
        &logs,
        &format!("The response of `{uri}` is larger than 10485760 bytes"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_codes_follow_allowed_response_codes_and_allow_failed() {
    let addr = serve().await;
    let boom = format!("http://{addr}/boom");
    let (done, logs) = run(&flow("boom", &boom, "")).await;
    assert_eq!(done.state.current, StateType::Failed, "{logs:?}");
    failure(
        &logs,
        "Failed http request with response code '500' and body:\nboom",
    );
    // Kestra's message does not say which request: the line before it does.
    failure(&logs, &format!("GET {boom} answered 500"));
    let allowed = "    options:\n      allowedResponseCodes: [500]";
    let (done, logs) = run(&flow("boom-allowed", &boom, allowed)).await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    assert!(logs.contains(&"500 boom yes".to_string()), "{logs:?}");
    // Only the listed codes pass: a 200 fails.
    let (done, logs) = run(&flow("ok-not-listed", &format!("http://{addr}/hello"), allowed)).await;
    assert_eq!(done.state.current, StateType::Failed, "{logs:?}");
    failure(&logs, "Failed http request with response code '200'");
    let lenient = "    options:\n      allowFailed: \"{{ 1 == 1 }}\"";
    let (done, logs) = run(&flow("boom-lenient", &boom, lenient)).await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_data_is_sent_url_encoded() {
    let addr = serve().await;
    let form = "    method: POST\n    formData:\n      user: \"{{ flow.id }}\"\n      note: a&b c";
    let (done, logs) = run(&flow("form", &format!("http://{addr}/echo"), form)).await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    let line = "200 POST /echo HTTP/1.1 | application/x-www-form-urlencoded; charset=UTF-8 | user=form&note=a%26b+c yes";
    assert!(logs.contains(&line.to_string()), "{logs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipart_form_sends_storage_files_as_file_parts() {
    let addr = serve().await;
    let source = format!(
        r#"
id: upload
namespace: dev
tasks:
  - id: fetch
    type: io.kestra.plugin.core.http.Download
    uri: "http://{addr}/hello"
  - id: call
    type: io.kestra.plugin.core.http.Request
    uri: "http://{addr}/echo"
    method: POST
    contentType: multipart/form-data
    formData:
      user: multipart-alice
      doc: "{{{{ outputs.fetch.uri }}}}"
      named:
        name: "greeting-{{{{ flow.id }}}}.txt"
        content: "{{{{ outputs.fetch.uri }}}}"
"#
    );
    let (done, logs) = run(&source).await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    let request = received()
        .lock()
        .expect("lock")
        .iter()
        .find(|r| r.contains("multipart-alice"))
        .cloned()
        .expect("the form reached the server");
    let (head, body) = request
        .split_once(" | multipart/form-data; boundary=")
        .expect("multipart");
    assert_eq!(head, "POST /echo HTTP/1.1");
    let (boundary, body) = body.split_once(" | ").expect("body");
    let parts: Vec<&str> = body
        .split(&format!("--{boundary}"))
        .map(|p| p.trim_start_matches("\r\n").trim_end_matches("\r\n"))
        .filter(|p| !p.is_empty() && *p != "--" && *p != "--\r\n")
        .collect();
    assert_eq!(
        parts,
        [
            "Content-Disposition: form-data; name=\"user\"\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nmultipart-alice",
            "Content-Disposition: form-data; name=\"doc\"; filename=\"hello\"\r\nContent-Type: application/octet-stream\r\n\r\nhi",
            "Content-Disposition: form-data; name=\"named\"; filename=\"greeting-upload.txt\"\r\nContent-Type: application/octet-stream\r\n\r\nhi",
        ],
        "{body:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_of_another_execution_is_not_sent() {
    let addr = serve().await;
    let other = "kestra:///dev/other/executions/someone-else/tasks/t/tr/secret.txt";
    let form = format!(
        "    method: POST\n    contentType: multipart/form-data\n    formData:\n      doc: \"{other}\""
    );
    let (done, logs) = run(&flow("steal", &format!("http://{addr}/echo"), &form)).await;
    assert_eq!(done.state.current, StateType::Failed, "{logs:?}");
    failure(
        &logs,
        &format!("Unable to read the file '{other}' as it didn't belong to the current execution"),
    );
    assert!(!received()
        .lock()
        .expect("lock")
        .iter()
        .any(|r| r.contains("someone-else")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_json_body_read_as_json_fails_the_reader_clearly() {
    let addr = serve().await;
    let source = format!(
        r#"
id: not-json
namespace: dev
tasks:
  - id: call
    type: io.kestra.plugin.core.http.Request
    uri: "http://{addr}/not-json"
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: "{{{{ fromJson(outputs.call.body).x }}}}"
"#
    );
    let (done, logs) = run(&source).await;
    assert_eq!(done.state.current, StateType::Failed, "{logs:?}");
    let call = done
        .task_runs()
        .iter()
        .find(|t| t.task_id == "call")
        .expect("call ran");
    assert_eq!(
        call.state.current,
        StateType::Success,
        "the body is a string output"
    );
    assert!(logs.iter().any(|l| l.contains("Invalid JSON")), "{logs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_options_fail_the_task_run_before_any_request() {
    let addr = serve().await;
    let bad = "    options:\n      timeout:\n        readIdleTimeout: soon";
    let (done, logs) = run(&flow(
        "bad-options",
        &format!("http://{addr}/hello?bad-options"),
        bad,
    ))
    .await;
    assert_eq!(done.state.current, StateType::Failed, "{logs:?}");
    failure(
        &logs,
        "Invalid `options.timeout.readIdleTimeout`: 'soon' is not a positive ISO-8601 duration",
    );
    assert!(!received()
        .lock()
        .expect("lock")
        .iter()
        .any(|r| r.contains("bad-options")));
}
