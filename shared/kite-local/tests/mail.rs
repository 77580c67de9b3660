//! MailSend against an SMTP receiver on 127.0.0.1 (`smtp_server`): the message's
//! addresses, subject, bodies and attachments, and the failures (a refused login, a
//! refused connection, a bad address) that fail the task with their reason.

use kite_core::execution::StateType;

mod common;
mod http_server;
mod smtp_server;
use http_server::run;
use smtp_server::SmtpServer;

fn mail_flow(id: &str, port: u16, extra: &str) -> String {
    format!(
        r#"
id: {id}
namespace: dev
tasks:
  - id: report
    type: io.kestra.plugin.core.storage.Write
    extension: .txt
    content: "order 1 shipped"
  - id: mail
    type: io.kestra.plugin.notifications.mail.MailSend
    host: 127.0.0.1
    port: {port}
    transportStrategy: SMTP
    sessionTimeout: 5000
    from: kite@example.com
{extra}
"#
    )
}

/// The value of a header of a raw message.
fn header<'a>(data: &'a str, name: &str) -> Option<&'a str> {
    data.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_carries_its_addresses_subject_bodies_and_attachment() {
    let smtp = SmtpServer::start("alice", "s3cret").await;
    let extra = r#"    username: alice
    password: s3cret
    to: "ops@example.com; dev@example.com"
    cc: [lead@example.com]
    subject: "Report of {{ flow.id }}"
    htmlTextContent: "<p>Report of <b>{{ execution.id }}</b></p>"
    plainTextContent: "Report of {{ execution.id }}"
    attachments:
      - name: report.txt
        uri: "{{ outputs.report.uri }}"
        contentType: text/plain"#;
    let (done, logs) = run(&mail_flow("mailing", smtp.addr.port(), extra)).await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let mail = &messages[0];
    assert_eq!(mail.user.as_deref(), Some("alice"));
    assert_eq!(mail.from, "kite@example.com");
    assert_eq!(
        mail.recipients,
        ["ops@example.com", "dev@example.com", "lead@example.com"]
    );
    let data = &mail.data;
    assert_eq!(header(data, "From"), Some("kite@example.com"), "{data}");
    assert_eq!(
        header(data, "To"),
        Some("ops@example.com, dev@example.com"),
        "{data}"
    );
    assert_eq!(header(data, "Cc"), Some("lead@example.com"), "{data}");
    assert_eq!(header(data, "Subject"), Some("Report of mailing"), "{data}");
    assert!(data.contains("multipart/mixed"), "{data}");
    assert!(data.contains("multipart/alternative"), "{data}");
    assert!(data.contains(&format!("Report of {}", done.id)), "{data}");
    assert!(
        data.contains(&format!("<p>Report of <b>{}</b></p>", done.id)),
        "{data}"
    );
    assert!(data.contains("filename=\"report.txt\""), "{data}");
    assert!(data.contains("order 1 shipped"), "{data}");
    assert!(
        logs.contains(&"Sent an email to ops@example.com, dev@example.com".to_string()),
        "{logs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_html_gets_kestras_plain_text_and_images_go_inline() {
    let smtp = SmtpServer::start("alice", "s3cret").await;
    let extra = r#"    to: ops@example.com
    htmlTextContent: "<h1>Done</h1><img src=\"cid:logo.png\">"
    embeddedImages: '[{"name": "logo.png", "uri": "{{ outputs.report.uri }}", "contentType": "image/png"}]'"#;
    // Kestra's current name for the task.
    let source = mail_flow("html-only", smtp.addr.port(), extra).replace(
        "io.kestra.plugin.notifications.mail.MailSend",
        "io.kestra.plugin.email.MailSend",
    );
    let (done, logs) = run(&source).await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    let messages = smtp.messages();
    let data = &messages[0].data;
    assert_eq!(messages[0].user, None);
    assert!(
        data.contains("Please view this email in a modern email client"),
        "{data}"
    );
    assert!(data.contains("<h1>Done</h1>"), "{data}");
    assert!(data.contains("multipart/related"), "{data}");
    assert!(data.contains("Content-ID: <logo.png>"), "{data}");
    assert!(data.contains("Content-Type: image/png"), "{data}");
    assert!(!data.contains("multipart/mixed"), "{data}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_fails_the_task_with_the_servers_answer() {
    let smtp = SmtpServer::start("alice", "s3cret").await;
    let extra = "    username: alice\n    password: wrong\n    to: ops@example.com";
    let (done, logs) = run(&mail_flow("bad-login", smtp.addr.port(), extra)).await;
    assert_eq!(done.state.current, StateType::Failed, "{logs:?}");
    let port = smtp.addr.port();
    assert!(
        logs.iter().any(
            |l| l.starts_with(&format!("Could not send the email through 127.0.0.1:{port}"))
                && l.contains("Authentication credentials invalid")
        ),
        "{logs:?}"
    );
    assert!(smtp.messages().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_fails_the_task_naming_the_server() {
    // A port nothing listens on any more.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let (done, logs) = run(&mail_flow("no-server", port, "    to: ops@example.com")).await;
    assert_eq!(done.state.current, StateType::Failed, "{logs:?}");
    assert!(
        logs.iter().any(
            |l| l.starts_with(&format!("Could not send the email through 127.0.0.1:{port}: "))
                && l.to_lowercase().contains("connection")
        ),
        "{logs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_address_or_an_unreadable_attachment_fails_the_task() {
    let smtp = SmtpServer::start("alice", "s3cret").await;
    let (done, logs) = run(&mail_flow(
        "bad-address",
        smtp.addr.port(),
        "    to: not an address",
    ))
    .await;
    assert_eq!(done.state.current, StateType::Failed, "{logs:?}");
    assert!(
        logs.iter()
            .any(|l| l.starts_with("Invalid email address 'not an address'")),
        "{logs:?}"
    );
    let extra = r#"    to: ops@example.com
    attachments:
      - name: other.txt
        uri: "kestra:///other/flow/executions/x/secret.txt""#;
    let (done, logs) = run(&mail_flow("other-files", smtp.addr.port(), extra)).await;
    assert_eq!(done.state.current, StateType::Failed, "{logs:?}");
    assert!(
        logs.iter()
            .any(|l| l.contains("kestra:///other/flow/executions/x/secret.txt")),
        "{logs:?}"
    );
    assert!(smtp.messages().is_empty());
}
