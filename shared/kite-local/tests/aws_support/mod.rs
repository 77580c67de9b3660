//! What the AWS task tests share: moto started on 127.0.0.1, SDK clients to set up and
//! check it, a local engine with its workers, flows whose AWS tasks point at an endpoint,
//! and a small server speaking Lambda's Invoke API.

#![allow(dead_code)] // each test binary uses part of it

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_smithy_runtime_api::client::behavior_version::BehaviorVersion;
use aws_types::region::Region;
use aws_types::SdkConfig;
use kite_core::execution::{Execution, TaskRun};
use kite_engine::ports::FileStorage;
use kite_engine::{Engine, EngineConfig};
use kite_local::{open_engine, LocalFileStorage, Runtime};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// moto's server, stopped when dropped.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn workspace() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Starts moto on a free port of 127.0.0.1: with `MOTO_PYTHON`, else the virtualenv
/// tests/aws/moto.sh installs, else `python3`.
pub fn start_moto() -> Moto {
    let root = workspace();
    let venv = root.join("target/aws-venv/bin/python");
    let python = std::env::var("MOTO_PYTHON").unwrap_or_else(|_| {
        if venv.exists() {
            venv.display().to_string()
        } else {
            "python3".into()
        }
    });
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(&python)
        .arg(root.join("tests/aws/moto_server.py"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start moto with {python}: {e} (bash tests/aws/run.sh installs it)"));
    let mut moto = Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..150 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return moto;
        }
        if let Ok(Some(status)) = moto.child.try_wait() {
            panic!("moto exited ({status}): is moto[server] installed for {python}? (bash tests/aws/run.sh)");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("moto did not answer on {}", moto.endpoint);
}

pub fn sdk(endpoint: &str) -> SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http)
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "test", "test", None, None, "test",
        )))
        .endpoint_url(endpoint)
        .build()
}

/// The connection lines of every task of a test flow.
pub fn connection(endpoint: &str) -> String {
    format!(
        "    region: us-east-1\n    accessKeyId: test\n    secretKeyId: test\n    endpointOverride: \"{endpoint}\"\n"
    )
}

pub struct Local {
    _dir: tempfile::TempDir,
    pub engine: Engine,
    pub runtime: Runtime,
    pub files: LocalFileStorage,
}

pub async fn local() -> Local {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open_engine(dir.path(), EngineConfig::default()).expect("engine");
    let runtime = Runtime::start(engine.clone(), 2).await.expect("runtime");
    let files = LocalFileStorage::new(dir.path().join("storage")).expect("files");
    Local {
        _dir: dir,
        engine,
        runtime,
        files,
    }
}

pub fn task_run<'a>(execution: &'a Execution, task: &str) -> &'a TaskRun {
    execution
        .task_runs()
        .iter()
        .find(|tr| tr.task_id == task)
        .unwrap_or_else(|| panic!("no task run of {task}"))
}

pub fn output(execution: &Execution, task: &str, name: &str) -> Value {
    task_run(execution, task)
        .outputs
        .as_ref()
        .and_then(|o| o.get(name))
        .cloned()
        .unwrap_or(Value::Null)
}

pub fn text(files: &LocalFileStorage, uri: &Value) -> String {
    let uri = uri.as_str().unwrap_or_else(|| panic!("not a URI: {uri}"));
    String::from_utf8(files.read_blocking(uri).expect("file")).expect("utf-8")
}

/// The flow's tasks, each given the connection lines after its `type:` line.
pub fn flow(id: &str, endpoint: &str, tasks: &str) -> String {
    let conn = connection(endpoint);
    let tasks: String = tasks
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("type: io.kestra.plugin.aws.") {
                format!("{line}\n{conn}")
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    format!("id: {id}\nnamespace: dev\ntasks:\n{tasks}")
}
/// A server speaking Lambda's Invoke API: answers the payload back, or a function
/// error for the function named `failing`, or ResourceNotFoundException for `missing`. Returns its endpoint.
pub async fn lambda_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                let (head, body_start) = loop {
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    if let Some(i) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        break (String::from_utf8_lossy(&request[..i]).to_string(), i + 4);
                    }
                };
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse().ok())?
                    })
                    .unwrap_or(0usize);
                while request.len() < body_start + length {
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    request.extend_from_slice(&buf[..n]);
                }
                let body = request[body_start..].to_vec();
                let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                let (status, extra, answer) = if path == "/2015-03-31/functions/failing/invocations" {
                    (
                        "200 OK",
                        "X-Amz-Function-Error: Unhandled\r\n",
                        br#"{"errorMessage": "boom", "errorType": "Exception"}"#.to_vec(),
                    )
                } else if path == "/2015-03-31/functions/missing/invocations" {
                    (
                        "404 Not Found",
                        "X-Amzn-ErrorType: ResourceNotFoundException\r\n",
                        br#"{"Type": "User", "message": "Function not found: missing"}"#.to_vec(),
                    )
                } else if path.starts_with("/2015-03-31/functions/") && path.ends_with("/invocations") {
                    ("200 OK", "", body)
                } else {
                    ("404 Not Found", "", b"{}".to_vec())
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
                    answer.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&answer).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    endpoint
}

/// A DynamoDB table whose partition key is the string `id`.
pub async fn create_table(dynamodb: &aws_sdk_dynamodb::Client, name: &str) {
    dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .send()
        .await
        .expect("table");
}
