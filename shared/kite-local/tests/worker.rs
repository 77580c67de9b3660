//! Tasks that do I/O, through the engine's worker port on the local store: an HTTP
//! server on 127.0.0.1 (`http_server`) answers the flows' `http.Request` tasks; their
//! `options` and forms are tested in `http_options.rs`.

use std::time::Duration;

use kite_core::execution::StateType;
use kite_engine::EngineConfig;
use kite_local::{open_engine, Runtime};

mod common;
mod http_server;
use common::{create, messages};
use http_server::{flow, received, run, serve, slow_request_dropped, slow_request_received};
use tokio::net::TcpListener;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_runs_on_the_worker_and_its_outputs_feed_the_next_task() {
    let addr = serve().await;
    let (done, logs) = run(&flow("get", &format!("http://{addr}/hello"), "")).await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    assert!(logs.contains(&"200 hi yes".to_string()), "{logs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_sends_its_rendered_body_and_content_type() {
    let addr = serve().await;
    let extra = "    method: POST\n    contentType: text/plain\n    body: \"{{ flow.id }} says hi\"";
    let (done, logs) = run(&flow("post", &format!("http://{addr}/echo"), extra)).await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    assert!(
        logs.contains(&"200 POST /echo HTTP/1.1 | text/plain; charset=UTF-8 | post says hi yes".to_string()),
        "{logs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_status_fails_the_task_unless_allowed() {
    let addr = serve().await;
    let uri = format!("http://{addr}/missing");
    let (done, logs) = run(&flow("missing", &uri, "")).await;
    assert_eq!(done.state.current, StateType::Failed, "{logs:?}");
    assert!(
        logs.contains(&"Failed http request with response code '404' and body:\nnope".to_string()),
        "{logs:?}"
    );
    let (done, logs) = run(&flow("allowed", &uri, "    allowFailed: true")).await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    assert!(logs.contains(&"404 nope yes".to_string()), "{logs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_host_fails_the_task_saying_so() {
    // A port that was just free: nothing listens there.
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr");
    let (done, logs) = run(&flow("unreachable", &format!("http://{closed}/x"), "")).await;
    assert_eq!(done.state.current, StateType::Failed, "{logs:?}");
    assert!(
        logs.iter()
            .any(|l| l.starts_with(&format!("Request to `http://{closed}/x` failed"))),
        "{logs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_stops_a_request_in_flight_and_a_timeout_ends_it() {
    let addr = serve().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open_engine(dir.path(), EngineConfig::default()).expect("engine");
    let runtime = Runtime::start(engine.clone(), 2).await.expect("runtime");
    engine
        .create_flow(&flow("slow", &format!("http://{addr}/slow"), ""))
        .await
        .expect("flow");
    let created = engine.create_execution(create("slow")).await.expect("create");
    // Kill once the request is in flight (the server has it).
    tokio::time::timeout(Duration::from_secs(60), slow_request_received().notified())
        .await
        .expect("the request reaches the server");
    engine.kill(&created.id).await.expect("kill");
    let done = engine
        .wait_for_terminal(&created.id, Duration::from_secs(60))
        .await
        .expect("terminal");
    assert_eq!(done.state.current, StateType::Killed);
    // The request itself was dropped, not left hanging.
    tokio::time::timeout(Duration::from_secs(60), slow_request_dropped().notified())
        .await
        .expect("the worker closes the connection of a killed task run");

    // Restarted, the killed execution's request is sent again.
    engine.restart(&created.id).await.expect("restart");
    tokio::time::timeout(Duration::from_secs(60), slow_request_received().notified())
        .await
        .expect("the restarted task run sends its request");
    engine.kill(&created.id).await.expect("kill again");
    engine
        .wait_for_terminal(&created.id, Duration::from_secs(60))
        .await
        .expect("terminal");

    engine
        .create_flow(&flow(
            "timeout",
            &format!("http://{addr}/slow"),
            "    timeout: PT1S",
        ))
        .await
        .expect("flow");
    let created = engine.create_execution(create("timeout")).await.expect("create");
    let done = engine
        .wait_for_terminal(&created.id, Duration::from_secs(60))
        .await
        .expect("terminal");
    assert_eq!(done.state.current, StateType::Failed);
    let logs = messages(&engine, &done.id).await;
    assert!(logs.iter().any(|l| l == "Timeout after PT1S"), "{logs:?}");
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slack_notification_posts_its_payload_rendered_twice() {
    let addr = serve().await;
    let source = format!(
        r#"
id: notify
namespace: dev
variables:
  text: "from {{{{ flow.id }}}}"
tasks:
  - id: slack
    type: io.kestra.plugin.notifications.slack.SlackIncomingWebhook
    url: "http://{addr}/hello"
    payload: |
      {{"text": "{{{{ vars.text }}}}"}}
  - id: teams
    type: io.kestra.plugin.notifications.teams.TeamsIncomingWebhook
    url: "http://{addr}/missing"
    payload: "{{}}"
"#
    );
    let (done, logs) = run(&source).await;
    assert_eq!(done.state.current, StateType::Failed, "{logs:?}");
    let slack = done
        .task_runs()
        .iter()
        .find(|t| t.task_id == "slack")
        .expect("slack ran");
    assert_eq!(slack.state.current, StateType::Success);
    assert!(
        logs.contains(&"Failed http request with response code '404' and body:\nnope".to_string()),
        "{logs:?}"
    );
    let received = received().lock().expect("lock").clone();
    assert!(
        received
            .contains(&"POST /hello HTTP/1.1 | application/json | {\"text\": \"from notify\"}\n".to_string()),
        "{received:?}"
    );
}

fn download_flow(id: &str, uri: &str, extra: &str) -> String {
    format!(
        r#"
id: {id}
namespace: dev
tasks:
  - id: fetch
    type: io.kestra.plugin.core.http.Download
    uri: "{uri}"
{extra}
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: "{{{{ outputs.fetch.code }}}} {{{{ outputs.fetch.length }}}} {{{{ read(outputs.fetch.uri) | length }}}} {{{{ outputs.fetch.uri }}}}"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_stores_the_body_as_a_file_of_the_task_run() {
    let addr = serve().await;
    let (done, logs) = run(&download_flow("dl", &format!("http://{addr}/big.txt"), "")).await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    let line = logs
        .iter()
        .find(|l| l.starts_with("200 "))
        .unwrap_or_else(|| panic!("{logs:?}"));
    let prefix = format!("kestra:///dev/dl/executions/{}/tasks/fetch/", done.id);
    assert!(line.starts_with("200 307200 307200 "), "{line}");
    assert!(line.contains(&prefix) && line.ends_with("/big.txt"), "{line}");

    // An empty body fails unless `failOnEmptyResponse: false`; an error status fails as
    // a Request does.
    let (empty, logs) = run(&download_flow("dl-empty", &format!("http://{addr}/empty"), "")).await;
    assert_eq!(empty.state.current, StateType::Failed, "{logs:?}");
    assert!(logs.contains(&"No response from server".to_string()), "{logs:?}");
    let lenient = "    failOnEmptyResponse: false";
    let (empty_ok, logs) = run(&download_flow(
        "dl-lenient",
        &format!("http://{addr}/empty"),
        lenient,
    ))
    .await;
    assert_eq!(empty_ok.state.current, StateType::Success, "{logs:?}");
    let (missing, logs) = run(&download_flow(
        "dl-missing",
        &format!("http://{addr}/missing"),
        "",
    ))
    .await;
    assert_eq!(missing.state.current, StateType::Failed, "{logs:?}");
    assert!(
        logs.iter()
            .any(|l| l.starts_with("Failed http request with response code '404'")),
        "{logs:?}"
    );
}
