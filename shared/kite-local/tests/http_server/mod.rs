//! A small HTTP/1.1 server on 127.0.0.1 for the HTTP task tests, and a runner for
//! their flows. One request per connection. Routes:
//! `/hello` 200 "hi"; `/echo` echoes `{request line} | {content type} | {body}`;
//! `/missing` 404; `/boom` 500; `/slow` never answers (and says so); `/stall` sends its
//! head and part of its body, then nothing; `/big.txt` 300 KiB; `/empty`;
//! `/large/{n}` n bytes with a length, `/unsized/{n}` n bytes until the connection
//! closes; `/basic` and `/bearer` 401 without the right `Authorization`;
//! `/redirect` 302 to `/hello`; `/see-other` 303 to `/echo`; `/loop` redirects to itself;
//! `/not-json` an HTML page.
#![allow(dead_code)] // each test file uses its share

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use kite_core::execution::Execution;
use kite_engine::EngineConfig;
use kite_local::{open_engine, Runtime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::common::{create, messages};

/// `alice:s3cret`, as a BASIC `Authorization` carries it.
pub const BASIC: &str = "Basic YWxpY2U6czNjcmV0";
pub const BEARER: &str = "Bearer t0k3n";

pub async fn serve() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(answer(stream));
        }
    });
    addr
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

async fn answer(mut stream: TcpStream) {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let Ok(n) = stream.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        request.extend_from_slice(&buf[..n]);
        if let Some(i) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&request[..head_end]).to_string();
    let length = header(&head, "content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    while request.len() < head_end + length {
        let Ok(n) = stream.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let body = String::from_utf8_lossy(&request[head_end..]).to_string();
    let first = head.lines().next().unwrap_or_default().to_string();
    let path = first.split(' ').nth(1).unwrap_or_default().to_string();
    let content_type = header(&head, "content-type").unwrap_or_default();
    received()
        .lock()
        .expect("lock")
        .push(format!("{first} | {content_type} | {body}"));
    let authorization = header(&head, "authorization").unwrap_or_default();
    let mut extra = String::new();
    let (status, text) = match path.as_str() {
        "/hello" => ("200 OK", "hi".to_string()),
        "/echo" => ("200 OK", format!("{first} | {content_type} | {body}")),
        "/big.txt" => ("200 OK", "k".repeat(300 * 1024)),
        "/empty" => ("200 OK", String::new()),
        "/missing" => ("404 Not Found", "nope".to_string()),
        "/boom" => ("500 Internal Server Error", "boom".to_string()),
        "/not-json" => ("200 OK", "<html>oops</html>".to_string()),
        "/basic" if authorization == BASIC => ("200 OK", "welcome".to_string()),
        "/bearer" if authorization == BEARER => ("200 OK", "welcome".to_string()),
        "/basic" | "/bearer" => {
            extra.push_str("WWW-Authenticate: Basic realm=\"kite\"\r\n");
            ("401 Unauthorized", "who are you".to_string())
        }
        "/redirect" => {
            extra.push_str("Location: /hello\r\n");
            ("302 Found", String::new())
        }
        "/see-other" => {
            extra.push_str("Location: /echo\r\n");
            ("303 See Other", String::new())
        }
        "/loop" => {
            extra.push_str("Location: /loop\r\n");
            ("302 Found", String::new())
        }
        "/slow" => {
            // Never answers; says when the request arrived and when the client gives up
            // (its end of the connection closes).
            slow_request_received().notify_one();
            while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
            slow_request_dropped().notify_one();
            return;
        }
        "/stall" => {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\nstart")
                .await;
            while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
            return;
        }
        p if p.starts_with("/unsized/") => {
            let n = p["/unsized/".len()..].parse().unwrap_or(0);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nX-Test: yes\r\nConnection: close\r\n\r\n")
                .await;
            let _ = stream.write_all(&vec![b'u'; n]).await;
            return;
        }
        p if p.starts_with("/large/") => ("200 OK", "l".repeat(p["/large/".len()..].parse().unwrap_or(0))),
        _ => ("400 Bad Request", String::new()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nX-Test: yes\r\n{extra}Connection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
}

/// Every request the server read: `{request line} | {content type} | {body}`.
pub fn received() -> &'static std::sync::Mutex<Vec<String>> {
    static RECEIVED: OnceLock<std::sync::Mutex<Vec<String>>> = OnceLock::new();
    RECEIVED.get_or_init(Default::default)
}

pub fn slow_request_received() -> &'static Notify {
    static RECEIVED: OnceLock<Notify> = OnceLock::new();
    RECEIVED.get_or_init(Notify::new)
}

pub fn slow_request_dropped() -> &'static Notify {
    static DROPPED: OnceLock<Notify> = OnceLock::new();
    DROPPED.get_or_init(Notify::new)
}

/// A flow whose `call` Request (with `extra` properties) is followed by a Log of its
/// `code`, `body` and `X-Test` header.
pub fn flow(id: &str, uri: &str, extra: &str) -> String {
    format!(
        r#"
id: {id}
namespace: dev
tasks:
  - id: call
    type: io.kestra.plugin.core.http.Request
    uri: "{uri}"
{extra}
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: "{{{{ outputs.call.code }}}} {{{{ outputs.call.body }}}} {{{{ outputs.call.headers['x-test'][0] }}}}"
"#
    )
}

/// Runs the flow `source` once to its end: the execution and its log messages.
pub async fn run(source: &str) -> (Execution, Vec<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open_engine(dir.path(), EngineConfig::default()).expect("engine");
    let runtime = Runtime::start(engine.clone(), 2).await.expect("runtime");
    let flow = engine.create_flow(source).await.expect("flow");
    let created = engine
        .create_execution(create(&flow.flow.id))
        .await
        .expect("create");
    let done = engine
        .wait_for_terminal(&created.id, Duration::from_secs(60))
        .await
        .expect("terminal");
    let logs = messages(&engine, &done.id).await;
    runtime.shutdown().await;
    (done, logs)
}
