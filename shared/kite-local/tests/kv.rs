//! The KV store tasks and `kv()` through the engine on the local store: values set by a
//! task are read by later tasks and expressions, typed as Kestra types them.

use kite_core::execution::StateType;
use kite_engine::EngineConfig;
use kite_local::{open_engine, Runtime};

mod common;
use common::{create, run_flow, run_to_end};

const ROUND_TRIP: &str = r#"
id: kv_round_trip
namespace: company.team
tasks:
  - id: set_count
    type: io.kestra.plugin.core.kv.Set
    key: count
    value: "{{ 40 + 2 }}"
    kvType: NUMBER
  - id: set_config
    type: io.kestra.plugin.core.kv.Set
    key: config
    value: '{"env": "prod"}'
    kvType: JSON
    namespace: company
  - id: refuse
    type: io.kestra.plugin.core.kv.Set
    key: count
    value: "1"
    overwrite: false
    allowFailure: true
  - id: get
    type: io.kestra.plugin.core.kv.Get
    key: count
  - id: keys
    type: io.kestra.plugin.core.kv.GetKeys
    prefix: co
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "get={{ outputs.get.value + 1 }} keys={{ outputs.keys.keys }} kv={{ kv('count') }} inherited={{ kv('config').env }} missing={{ kv('nothing', errorOnMissing=false) }}"
  - id: delete
    type: io.kestra.plugin.core.kv.Delete
    key: count
  - id: delete_again
    type: io.kestra.plugin.core.kv.Delete
    key: count
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: "deleted={{ outputs.delete.deleted }} again={{ outputs.delete_again.deleted }}"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_sets_gets_and_deletes_typed_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open_engine(dir.path(), EngineConfig::default()).expect("engine");
    let runtime = Runtime::start(engine.clone(), 2).await.expect("runtime");
    let (done, logs) = run_flow(&engine, ROUND_TRIP).await;
    runtime.shutdown().await;
    assert_eq!(done.state.current, StateType::Warning, "{logs:?}");
    assert!(
        logs.iter().any(|l| l
            == "Cannot set value for key 'count'. Key already exists and `overwrite` is set to `false`."),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l == "get=43 keys=[\"count\"] kv=42 inherited=prod missing="),
        "{logs:?}"
    );
    assert!(logs.iter().any(|l| l == "deleted=true again=false"), "{logs:?}");
    assert_eq!(
        engine.kv_get("company", "config").await.expect("kept").value["env"],
        "prod"
    );
    assert!(engine.kv_get("company.team", "count").await.is_err(), "deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_key_fails_with_kestra_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open_engine(dir.path(), EngineConfig::default()).expect("engine");
    let runtime = Runtime::start(engine.clone(), 2).await.expect("runtime");
    let get = r#"
id: kv_missing_get
namespace: dev
tasks:
  - id: get
    type: io.kestra.plugin.core.kv.Get
    key: absent
    errorOnMissing: true
"#;
    let (done, logs) = run_flow(&engine, get).await;
    assert_eq!(done.state.current, StateType::Failed, "{logs:?}");
    let expected = "No value found for key 'absent' in namespace 'dev' and `errorOnMissing` is set to true";
    assert!(logs.iter().any(|l| l == expected), "{logs:?}");

    let function = r#"
id: kv_missing_function
namespace: dev
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ kv('absent') }}"
"#;
    let (done, logs) = run_flow(&engine, function).await;
    assert_eq!(done.state.current, StateType::Failed, "{logs:?}");
    assert!(
        logs.iter()
            .any(|l| l.contains("The key 'absent' does not exist in the namespace 'dev'.")),
        "{logs:?}"
    );

    let bad_key = r#"
id: kv_bad_key
namespace: dev
tasks:
  - id: set
    type: io.kestra.plugin.core.kv.Set
    key: "not/valid"
    value: x
"#;
    let (done, logs) = run_flow(&engine, bad_key).await;
    assert_eq!(done.state.current, StateType::Failed, "{logs:?}");
    assert!(
        logs.iter()
            .any(|l| l.starts_with("Key must start with an alphanumeric")),
        "{logs:?}"
    );
    runtime.shutdown().await;
}

/// The example flow `flows/dev/http-kv.yaml`, its `url` pointed at a server on 127.0.0.1.
#[tokio::test]
async fn the_http_kv_example_calls_remembers_and_downloads() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ping", listener.local_addr().unwrap());
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\npong")
                    .await;
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let engine = open_engine(dir.path(), EngineConfig::default()).unwrap();
    let runtime = Runtime::start(engine.clone(), 2).await.unwrap();
    let flow = engine
        .create_flow(include_str!("../../../flows/dev/http-kv.yaml"))
        .await
        .expect("flow");
    let mut request = create(&flow.flow.id);
    request
        .inputs
        .insert("url".into(), kite_core::input::InputValue::Text(url.clone()));
    let (done, logs) = run_to_end(&engine, request).await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    let report = logs
        .iter()
        .find(|l| l.contains("last status"))
        .expect("report line");
    assert!(
        report.starts_with(&format!(
            "{url} answered 200; 4 bytes stored at kestra:///dev/http-kv/executions/"
        )) && report.ends_with("ping; last status in the KV store: 200"),
        "{report}"
    );
    runtime.shutdown().await;
}
