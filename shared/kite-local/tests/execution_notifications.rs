//! The execution notifications on the local engine: the payloads Slack, Discord, Teams
//! and Google Chat get about an execution (its own, from `errors`, or the one that fired
//! a Flow trigger), the email MailExecution sends, and the failures (an endpoint that
//! answers 500, an unknown execution).

use std::time::Duration;

use kite_core::execution::{Execution, StateType};
use kite_engine::ports::{ExecutionQuery, Pagination};
use kite_engine::{CreateExecution, Engine, EngineConfig};
use kite_local::{open_engine, Runtime};
use serde_json::Value;

mod common;
mod http_server;
mod smtp_server;
use common::{messages, run_flow};
use http_server::{received, run, serve};
use smtp_server::SmtpServer;

/// The JSON bodies POSTed to `/hello` that mention `needle`.
fn posted(needle: &str) -> Vec<Value> {
    received()
        .lock()
        .expect("lock")
        .iter()
        .filter_map(|r| {
            let mut parts = r.splitn(3, " | ");
            let (line, kind, body) = (parts.next()?, parts.next()?, parts.next()?);
            (line == "POST /hello HTTP/1.1" && kind == "application/json" && body.contains(needle))
                .then(|| serde_json::from_str(body).expect("JSON payload"))
        })
        .collect()
}

fn task_state(execution: &Execution, task: &str) -> StateType {
    execution
        .task_runs()
        .iter()
        .find(|t| t.task_id == task)
        .unwrap_or_else(|| panic!("{task} ran"))
        .state
        .current
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_tasks_report_the_failed_execution_to_each_chat() {
    let addr = serve().await;
    let url = format!("http://{addr}/hello");
    let source = format!(
        r##"
id: fails-and-tells
namespace: dev.notify
tasks:
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: out of coffee
errors:
  - id: slack
    type: io.kestra.plugin.notifications.slack.SlackExecution
    url: "{url}"
    channel: "#alerts"
    customMessage: "Flow {{{{ flow.id }}}} needs help"
    customFields:
      Team: data
    kestraUrl: "http://kite.example/"
  - id: discord
    type: io.kestra.plugin.notifications.discord.DiscordExecution
    url: "{url}"
    username: kite
  - id: teams
    type: io.kestra.plugin.notifications.teams.TeamsExecution
    url: "{url}"
    activityTitle: Kite
  - id: chat
    type: io.kestra.plugin.notifications.google.GoogleChatExecution
    url: "{url}"
    text: Heads up
"##
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open_engine(dir.path(), EngineConfig::default()).expect("engine");
    let runtime = Runtime::start(engine.clone(), 2).await.expect("runtime");
    let (done, logs) = run_flow(&engine, &source).await;
    runtime.shutdown().await;
    assert_eq!(done.state.current, StateType::Failed, "{logs:?}");
    for task in ["slack", "discord", "teams", "chat"] {
        assert_eq!(task_state(&done, task), StateType::Success, "{task}: {logs:?}");
    }
    let payloads = posted(&done.id);
    assert_eq!(payloads.len(), 4, "{payloads:#?}");

    // The errors branch runs while its execution is still RUNNING.
    let slack = payloads
        .iter()
        .find(|p| p.get("blocks").is_some())
        .expect("slack payload");
    assert_eq!(slack["channel"], "#alerts");
    assert_eq!(
        slack["blocks"][0]["text"]["text"],
        "Flow fails-and-tells needs help"
    );
    let link = format!(
        "http://kite.example/ui/executions/dev.notify/fails-and-tells/{}",
        done.id
    );
    assert_eq!(slack["blocks"][1]["accessory"]["url"], link.as_str());
    let text = slack["text"].as_str().expect("text");
    assert!(
        text.starts_with(&format!("*<{link}|fails-and-tells (dev.notify): RUNNING>*\n")),
        "{text}"
    );
    assert!(text.contains("Task `boom` failed"), "{text}");
    let fields = &slack["attachments"][0]["fields"];
    let field = |name: &str| {
        fields
            .as_array()
            .expect("fields")
            .iter()
            .find(|f| f["title"] == name)
            .map(|f| f["value"].clone())
    };
    assert_eq!(field("Execution"), Some(Value::from(done.id.as_str())));
    assert_eq!(field("Flow"), Some(Value::from("fails-and-tells")));
    assert_eq!(field("Namespace"), Some(Value::from("dev.notify")));
    assert_eq!(field("State"), Some(Value::from("RUNNING")));
    assert_eq!(field("Failed task"), Some(Value::from("boom")));
    assert_eq!(field("Team"), Some(Value::from("data")));

    let discord = payloads
        .iter()
        .find(|p| p.get("embeds").is_some())
        .expect("discord payload");
    assert_eq!(discord["username"], "kite");
    assert_eq!(discord["tts"], false);
    let embed = &discord["embeds"][0];
    assert_eq!(embed["title"], "fails-and-tells (dev.notify): RUNNING");
    assert!(embed["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .any(|f| f["value"] == done.id.as_str()));

    let teams = payloads
        .iter()
        .find(|p| p["@type"] == "MessageCard")
        .expect("teams payload");
    assert_eq!(teams["themeColor"], "0076D7");
    assert_eq!(teams["sections"][0]["activityTitle"], "Kite");
    let facts = teams["sections"][0]["facts"].as_array().expect("facts");
    assert!(facts
        .iter()
        .any(|f| f["name"] == "Execution" && f["value"] == done.id.as_str()));
    assert!(facts
        .iter()
        .any(|f| f["name"] == "State" && f["value"] == "RUNNING"));

    let chat = payloads
        .iter()
        .find(|p| p.as_object().is_some_and(|o| o.len() == 1) && p.get("text").is_some())
        .expect("google chat payload");
    let text = chat["text"].as_str().expect("text");
    assert!(
        text.starts_with("Heads up\n\n*fails-and-tells (dev.notify): RUNNING*\n"),
        "{text}"
    );
    assert!(text.contains(&format!("Execution: {}", done.id)), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_answers_500_or_an_unknown_execution_fails_the_task() {
    let addr = serve().await;
    let source = format!(
        r#"
id: tells-nobody
namespace: dev
tasks:
  - id: teams
    type: io.kestra.plugin.notifications.teams.TeamsExecution
    url: "http://{addr}/boom"
    allowFailure: true
  - id: unknown
    type: io.kestra.plugin.notifications.slack.SlackExecution
    url: "http://{addr}/hello"
    executionId: 0000000000nope
"#
    );
    let (done, logs) = run(&source).await;
    assert_eq!(done.state.current, StateType::Failed, "{logs:?}");
    assert!(
        logs.contains(&"Failed http request with response code '500' and body:\nboom".to_string()),
        "{logs:?}"
    );
    assert_eq!(task_state(&done, "unknown"), StateType::Failed);
    assert!(
        logs.contains(&"Unable to find execution '0000000000nope'".to_string()),
        "{logs:?}"
    );
}

async fn terminated(engine: &Engine, namespace: &str, flow: &str) -> Execution {
    for _ in 0..2400 {
        let found = engine
            .search_executions(&ExecutionQuery {
                namespace: Some(namespace.into()),
                flow_id: Some(flow.into()),
                pagination: Pagination { page: 1, size: 10 },
                ..Default::default()
            })
            .await
            .expect("search")
            .results;
        if let Some(done) = found.into_iter().find(|e| e.state.current.is_terminated()) {
            return done;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{namespace}.{flow} did not end")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_trigger_reports_the_execution_that_fired_it_by_slack_and_mail() {
    let addr = serve().await;
    let smtp = SmtpServer::start("alice", "s3cret").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open_engine(dir.path(), EngineConfig::default()).expect("engine");
    let runtime = Runtime::start(engine.clone(), 2).await.expect("runtime");
    let upstream = r#"
id: nightly
namespace: prod
tasks:
  - id: load
    type: io.kestra.plugin.core.execution.Fail
"#;
    let alert = format!(
        r#"
id: alert
namespace: ops
tasks:
  - id: slack
    type: io.kestra.plugin.slack.SlackExecution
    url: "http://{addr}/hello"
    executionId: "{{{{ trigger.executionId }}}}"
  - id: mail
    type: io.kestra.plugin.email.MailExecution
    host: 127.0.0.1
    port: {port}
    transportStrategy: SMTP
    username: alice
    password: s3cret
    from: kite@example.com
    to: ops@example.com
    executionId: "{{{{ trigger.executionId }}}}"
    customMessage: Look at it
triggers:
  - id: on_failure
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionStatus
        in: [FAILED]
"#,
        port = smtp.addr.port()
    );
    engine.create_flow(upstream).await.expect("upstream flow");
    engine.create_flow(&alert).await.expect("alert flow");
    let failed = engine
        .create_execution(CreateExecution {
            namespace: "prod".into(),
            flow_id: "nightly".into(),
            ..Default::default()
        })
        .await
        .expect("create");
    let done = terminated(&engine, "ops", "alert").await;
    let logs = messages(&engine, &done.id).await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");

    let payloads = posted(&failed.id);
    assert_eq!(payloads.len(), 1, "{payloads:#?}");
    let text = payloads[0]["text"].as_str().expect("text");
    assert!(text.starts_with("*nightly (prod): FAILED*\n"), "{text}");
    assert!(
        text.contains("Ended on the failure of task `load` after "),
        "{text}"
    );
    assert!(
        !text.contains(&done.id),
        "reports the upstream execution, not its own: {text}"
    );

    let mails = smtp.messages();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let data = &mails[0].data;
    assert!(data.contains("Subject: nightly (prod): FAILED"), "{data}");
    assert!(data.contains("multipart/alternative"), "{data}");
    assert!(data.contains("Look at it"), "{data}");
    assert!(
        data.contains(&format!(
            "<th align=\"left\">Execution</th><td>{}</td>",
            failed.id
        )),
        "{data}"
    );
    assert!(data.contains(&format!("Execution: {}", failed.id)), "{data}");
    runtime.shutdown().await;
}
