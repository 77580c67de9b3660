//! The HTTP API against the real embedded store (SQLite in a temp folder) and
//! workers: Kestra's routes, shapes and status codes.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use kite_api::{router, ApiState, AuthConfig};
use kite_engine::ports::{ByteStream, FileStorage, StorageError, StoredFile};
use kite_engine::{Engine, EngineConfig};
use kite_local::{local_ports, Runtime};
use serde_json::{json, Value};
use tower::ServiceExt;

const HELLO: &str = r#"id: hello-world
namespace: dev
inputs:
  - id: greeting
    type: STRING
    defaults: hello
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "{{ trigger.body ?? inputs.greeting }}"
triggers:
  - id: webhook
    type: io.kestra.plugin.core.trigger.Webhook
    key: test1234
"#;

const FILES: &str = r#"id: files
namespace: dev
inputs:
  - id: myfile
    type: FILE
tasks:
  - id: read
    type: io.kestra.plugin.core.log.Log
    message: "{{ read(inputs.myfile) }}"
"#;

/// Bounds a wait that only a hang would reach: never a measure of speed.
const HANG: Duration = Duration::from_secs(60);

struct Kite {
    app: Router,
    _runtime: Runtime,
    dir: tempfile::TempDir,
}

impl Kite {
    /// Every file in the local storage.
    fn stored_files(&self) -> Vec<std::path::PathBuf> {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push(path);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.dir.path().join("storage"), &mut out);
        out
    }
}

async fn kite_with(auth: AuthConfig, max_upload: u64) -> Kite {
    kite_at("http://localhost:8080", auth, max_upload).await
}

async fn kite_at(base_url: &str, auth: AuthConfig, max_upload: u64) -> Kite {
    kite_on(
        base_url,
        auth,
        max_upload,
        None,
        false,
        kite_api::DEFAULT_MAX_CREATIONS,
    )
    .await
}

/// `presigning`: the file storage hands out URLs of its own, as S3 does ([`Presigning`]).
async fn kite_on(
    base_url: &str,
    auth: AuthConfig,
    max_upload: u64,
    inline_download_limit: Option<u64>,
    presigning: bool,
    creations: usize,
) -> Kite {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ports = local_ports(dir.path()).expect("ports");
    if presigning {
        ports.files = Arc::new(Presigning(ports.files.clone()));
    }
    let engine = Engine::new(ports, EngineConfig::default());
    let runtime = Runtime::start(engine.clone(), 2).await.expect("runtime");
    let app = router(ApiState {
        engine,
        base_url: base_url.into(),
        auth: auth.clone(),
        max_upload,
        inline_download_limit,
        creations: kite_api::Admissions::new(creations),
        limits: kite_api::RequestLimits::default(),
    });
    let credentials = auth.basic.clone();
    let kite = Kite {
        app,
        _runtime: runtime,
        dir,
    };
    for flow in [HELLO, FILES] {
        let mut request = yaml("/api/v1/flows", flow);
        if let Some((user, password)) = &credentials {
            use base64::Engine as _;
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            request
                .headers_mut()
                .insert(header::AUTHORIZATION, format!("Basic {token}").parse().unwrap());
        } else if let Some(token) = &auth.token {
            request
                .headers_mut()
                .insert(header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
        }
        let (status, body) = kite.send(request).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    kite
}

async fn kite() -> Kite {
    kite_with(AuthConfig::default(), 1024 * 1024).await
}

impl Kite {
    async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.app.clone().oneshot(request).await.expect("response");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 10 * 1024 * 1024)
            .await
            .expect("body");
        let json = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, json)
    }

    /// Polls the execution until it reaches `want` (bounded against a hang only); returns
    /// the last state seen.
    async fn wait_for_state(&self, id: &str, want: &str) -> Value {
        let deadline = tokio::time::Instant::now() + HANG;
        loop {
            let state =
                self.send(get(&format!("/api/v1/executions/{id}"))).await.1["state"]["current"].clone();
            if state == want || tokio::time::Instant::now() >= deadline {
                return state;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    async fn logs(&self, execution_id: &str) -> Vec<String> {
        let (_, logs) = self.send(get(&format!("/api/v1/logs/{execution_id}"))).await;
        logs.as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|e| e["message"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn yaml(uri: &str, body: &str) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-yaml")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn post(uri: &str) -> Request<Body> {
    Request::post(uri).body(Body::empty()).unwrap()
}

/// A multipart body: (name, filename, content).
fn multipart(uri: &str, parts: &[(&str, Option<&str>, &str)]) -> Request<Body> {
    let boundary = "kiteboundary";
    let mut body = String::new();
    for (name, filename, content) in parts {
        body.push_str(&format!("--{boundary}\r\n"));
        match filename {
            Some(f) => body.push_str(&format!(
                "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: text/plain\r\n\r\n"
            )),
            None => body.push_str(&format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n")),
        }
        body.push_str(content);
        body.push_str("\r\n");
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    Request::post(uri)
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn without_a_configured_url_executions_link_to_the_url_the_caller_used() {
    let k = kite_at("", AuthConfig::default(), 1024).await;
    let create = |host: &str, proto: Option<&str>| {
        let mut request = post("/api/v1/executions/dev/hello-world");
        request.headers_mut().insert(header::HOST, host.parse().unwrap());
        if let Some(p) = proto {
            request
                .headers_mut()
                .insert("x-forwarded-proto", p.parse().unwrap());
        }
        request
    };
    // As API Gateway forwards a call to its https endpoint.
    let (status, e) = k
        .send(create(
            "abc123.execute-api.eu-west-1.amazonaws.com",
            Some("https"),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{e}");
    let id = e["id"].as_str().unwrap();
    assert_eq!(
        e["url"],
        format!("https://abc123.execute-api.eu-west-1.amazonaws.com/ui/executions/dev/hello-world/{id}")
    );
    let (_, e) = k.send(create("127.0.0.1:9090", None)).await;
    assert!(
        e["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:9090/ui/executions/dev/hello-world/"),
        "{e}"
    );
    // A Host that is not a host name stays out of the link.
    let (_, e) = k.send(create("evil.example/x?", Some("https"))).await;
    assert!(
        e["url"]
            .as_str()
            .unwrap()
            .starts_with("/ui/executions/dev/hello-world/"),
        "{e}"
    );
}

#[tokio::test]
async fn execute_without_body_answers_the_created_execution() {
    let k = kite().await;
    let (status, e) = k.send(post("/api/v1/executions/dev/hello-world")).await;
    assert_eq!(status, StatusCode::OK, "{e}");
    assert_eq!(e["state"]["current"], "CREATED");
    assert_eq!(e["namespace"], "dev");
    let id = e["id"].as_str().unwrap();
    assert_eq!(
        e["url"],
        format!("http://localhost:8080/ui/executions/dev/hello-world/{id}")
    );
    assert!(e["labels"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["key"] == "system.correlationId"));
}

#[tokio::test]
async fn wait_returns_the_finished_execution_and_its_logs() {
    let k = kite().await;
    let (status, e) = k
        .send(multipart(
            "/api/v1/executions/dev/hello-world?wait=true",
            &[("greeting", None, "hey there")],
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{e}");
    assert_eq!(e["state"]["current"], "SUCCESS");
    assert_eq!(e["inputs"]["greeting"], "hey there");
    assert_eq!(k.logs(e["id"].as_str().unwrap()).await, vec!["hey there"]);
}

#[tokio::test]
async fn revisions_labels_and_urlencoded_inputs() {
    let k = kite().await;
    let updated = HELLO.replace("defaults: hello", "defaults: second revision");
    let put = Request::put("/api/v1/flows/dev/hello-world")
        .header(header::CONTENT_TYPE, "application/x-yaml")
        .body(Body::from(updated))
        .unwrap();
    let (status, f) = k.send(put).await;
    assert_eq!(status, StatusCode::OK, "{f}");
    assert_eq!(f["revision"], 2);
    let (_, e) = k
        .send(post(
            "/api/v1/executions/dev/hello-world?revision=1&wait=true&labels=team:data&labels=env:dev",
        ))
        .await;
    assert_eq!(e["flowRevision"], 1);
    assert_eq!(k.logs(e["id"].as_str().unwrap()).await, vec!["hello"]);
    let keys: Vec<&str> = e["labels"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["key"].as_str())
        .collect();
    assert!(keys.starts_with(&["team", "env"]), "{keys:?}");
    let (status, _) = k
        .send(post("/api/v1/executions/dev/hello-world?revision=9"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let form = Request::post("/api/v1/executions/dev/hello-world?wait=true")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("greeting=from+a+form"))
        .unwrap();
    let (_, e) = k.send(form).await;
    assert_eq!(k.logs(e["id"].as_str().unwrap()).await, vec!["from a form"]);
    let (status, revisions) = k.send(get("/api/v1/flows/dev/hello-world/revisions")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(revisions.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn validate_inputs_answers_every_input_and_creates_nothing() {
    let k = kite().await;
    let flow = "id: checked\nnamespace: dev\ninputs:\n  - id: count\n    type: INT\n    min: 1\n  \
                - id: wait\n    type: DURATION\n    defaults: PT1M\n  - id: doc\n    type: FILE\n  \
                - id: note\n    type: STRING\n    required: false\n\
                tasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n";
    let (status, body) = k.send(yaml("/api/v1/flows", flow)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let before = k.stored_files();
    let (status, v) = k
        .send(multipart(
            "/api/v1/executions/dev/checked/validate",
            &[
                ("count", None, "0"),
                ("wait", None, "soon"),
                ("doc", Some("a.txt"), "content"),
            ],
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (v["id"].as_str(), v["namespace"].as_str()),
        (Some("checked"), Some("dev"))
    );
    let inputs = v["inputs"].as_array().unwrap();
    let ids: Vec<&str> = inputs
        .iter()
        .map(|i| i["input"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["count", "wait", "doc", "note"]);
    let messages = |i: usize| -> Vec<String> {
        inputs[i]["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        messages(0),
        ["Invalid input for `count`, it must be more than `1`, but received `0`"]
    );
    assert_eq!(inputs[0]["input"]["type"], "INT");
    assert_eq!(messages(1).len(), 1, "{v}");
    assert!(messages(1)[0].starts_with("Invalid input for `wait`"), "{v}");
    assert!(messages(2).is_empty() && messages(3).is_empty(), "{v}");
    assert!(inputs.iter().all(|i| i["enabled"] == true));
    // Nothing was created, and the file sent was not kept.
    let (_, page) = k.send(get("/api/v1/executions/search?flowId=checked")).await;
    assert_eq!(page["total"], 0, "{page}");
    assert_eq!(k.stored_files(), before);
    // Valid inputs: typed values and no error; the file input is missing.
    let (_, v) = k
        .send(multipart(
            "/api/v1/executions/dev/checked/validate",
            &[("count", None, "2")],
        ))
        .await;
    assert_eq!(v["inputs"][0]["value"], 2);
    assert_eq!(v["inputs"][1]["value"], "PT1M");
    assert_eq!(v["inputs"][1]["isDefault"], true);
    assert_eq!(
        v["inputs"][2]["errors"][0]["message"],
        "Invalid input for `doc`, missing required input, but received `null`"
    );
    let (status, _) = k.send(post("/api/v1/executions/dev/nowhere/validate")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn answers_are_gzip_compressed_for_callers_that_accept_it() {
    let k = kite().await;
    let send = |uri: &str, gzip: bool| {
        let mut request = Request::get(uri);
        if gzip {
            request = request.header(header::ACCEPT_ENCODING, "gzip, deflate, br");
        }
        let app = k.app.clone();
        let request = request.body(Body::empty()).unwrap();
        async move {
            let response = app.oneshot(request).await.unwrap();
            let encoding = response
                .headers()
                .get(header::CONTENT_ENCODING)
                .map(|v| v.to_str().unwrap().to_string());
            let vary = response.headers().get(header::VARY).is_some();
            let bytes = axum::body::to_bytes(response.into_body(), 10 * 1024 * 1024)
                .await
                .unwrap();
            (encoding, vary, bytes.to_vec())
        }
    };
    let gunzip = |bytes: &[u8]| {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(bytes), &mut text).unwrap();
        text
    };
    let (_, _, index) = send("/ui/flows", false).await;
    let index = String::from_utf8(index).unwrap();
    let start = index.find("/ui/assets/").unwrap() + "/ui/assets/".len();
    let version = &index[start..start + index[start..].find('/').unwrap()];
    let assets = format!("/ui/assets/{version}");
    for uri in [format!("{assets}/flow.js"), "/api/v1/openapi.json".to_string()] {
        let (plain_encoding, _, plain) = send(&uri, false).await;
        assert_eq!(plain_encoding, None, "{uri}: no Accept-Encoding, no compression");
        let (encoding, vary, gzipped) = send(&uri, true).await;
        assert_eq!(encoding.as_deref(), Some("gzip"), "{uri}");
        assert!(
            vary,
            "{uri}: caches are told the answer depends on Accept-Encoding"
        );
        assert!(
            gzipped.len() * 2 < plain.len(),
            "{uri}: {} → {} bytes",
            plain.len(),
            gzipped.len()
        );
        assert_eq!(gunzip(&gzipped).into_bytes(), plain, "{uri}");
    }
    // A stream of events is never buffered by a compressor.
    let (_, e) = k.send(post("/api/v1/executions/dev/hello-world?wait=true")).await;
    let id = e["id"].as_str().unwrap();
    let (encoding, _, events) = send(&format!("/api/v1/executions/{id}/follow"), true).await;
    assert_eq!(encoding, None);
    assert!(String::from_utf8(events).unwrap().contains("SUCCESS"));
}

#[tokio::test]
async fn latest_answers_the_newest_execution_of_each_flow_at_once() {
    let k = kite().await;
    let (_, first) = k.send(post("/api/v1/executions/dev/hello-world?wait=true")).await;
    let (_, second) = k.send(post("/api/v1/executions/dev/hello-world?wait=true")).await;
    assert_ne!(first["id"], second["id"]);
    let ask = |body: &str| {
        Request::post("/api/v1/executions/latest")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let (status, latest) = k
        .send(ask(r#"[{"namespace": "dev", "id": "files"}, {"namespace": "dev", "id": "hello-world"}, {"namespace": "nowhere", "id": "x"}]"#))
        .await;
    assert_eq!(status, StatusCode::OK, "{latest}");
    assert_eq!(
        latest,
        json!([{
            "id": second["id"],
            "namespace": "dev",
            "flowId": "hello-world",
            "startDate": second["state"]["startDate"],
            "status": "SUCCESS",
        }])
    );
    let (status, error) = k.send(ask(r#"{"namespace": "dev"}"#)).await;
    assert!(status.is_client_error(), "{status}");
    assert!(error["message"].is_string(), "{error}");
}

#[tokio::test]
async fn bulk_routes_check_every_id_first_then_act_on_all() {
    let k = kite().await;
    for flow in [
        "id: sleeper\nnamespace: dev\ntasks:\n  - id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT60S\n",
        "id: failing\nnamespace: dev\ntasks:\n  - id: boom\n    type: io.kestra.plugin.core.execution.Fail\n",
    ] {
        assert_eq!(k.send(yaml("/api/v1/flows", flow)).await.0, StatusCode::OK);
    }
    let id = |e: Value| e["id"].as_str().unwrap().to_string();
    let done = id(k
        .send(post("/api/v1/executions/dev/hello-world?wait=true"))
        .await
        .1);
    let failed = id(k.send(post("/api/v1/executions/dev/failing?wait=true")).await.1);
    let sleeping = id(k.send(post("/api/v1/executions/dev/sleeper")).await.1);
    assert_eq!(k.wait_for_state(&sleeping, "RUNNING").await, "RUNNING");
    let bulk = |method: &str, path: &str, ids: &[&str]| {
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(serde_json::to_string(ids).unwrap()))
            .unwrap()
    };
    // One id that cannot take the action refuses the whole request.
    let (status, refused) = k
        .send(bulk(
            "DELETE",
            "/api/v1/executions/kill/by-ids",
            &[&sleeping, &done, "nope"],
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["message"], "invalid bulk kill");
    assert_eq!(
        refused["invalids"],
        json!([
            {"message": "execution already finished", "invalidValue": done},
            {"message": "execution not found", "invalidValue": "nope"},
        ])
    );
    assert_eq!(
        k.wait_for_state(&sleeping, "RUNNING").await,
        "RUNNING",
        "nothing was killed"
    );
    let (status, count) = k
        .send(bulk("DELETE", "/api/v1/executions/kill/by-ids", &[&sleeping]))
        .await;
    assert_eq!((status, count), (StatusCode::OK, json!({"count": 1})));
    assert_eq!(k.wait_for_state(&sleeping, "KILLED").await, "KILLED");

    let (status, refused) = k
        .send(bulk(
            "POST",
            "/api/v1/executions/restart/by-ids",
            &[&failed, &done],
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["invalids"][0]["message"], "execution not in state FAILED");
    let (_, count) = k
        .send(bulk("POST", "/api/v1/executions/restart/by-ids", &[&failed]))
        .await;
    assert_eq!(count, json!({"count": 1}));
    let (_, restarted) = k.send(get(&format!("/api/v1/executions/{failed}"))).await;
    assert_eq!(
        restarted["taskRunList"][0]["attempts"].as_array().map(Vec::len),
        Some(2),
        "{restarted}"
    );

    let (_, count) = k
        .send(bulk("POST", "/api/v1/executions/replay/by-ids", &[&done, &done]))
        .await;
    assert_eq!(count, json!({"count": 2}));
    let (_, page) = k.send(get("/api/v1/executions/search?flowId=hello-world")).await;
    assert_eq!(page["total"], 3, "the execution and its two replays");

    // Deleting: terminated executions only, unless includeNonTerminated.
    let running = id(k.send(post("/api/v1/executions/dev/sleeper")).await.1);
    assert_eq!(k.wait_for_state(&running, "RUNNING").await, "RUNNING");
    let (status, refused) = k
        .send(bulk("DELETE", "/api/v1/executions/by-ids", &[&done, &running]))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        refused["invalids"],
        json!([{"message": "execution not found", "invalidValue": running}])
    );
    let (_, count) = k
        .send(bulk(
            "DELETE",
            "/api/v1/executions/by-ids?includeNonTerminated=true",
            &[&done, &running],
        ))
        .await;
    assert_eq!(count, json!({"count": 2}));
    for gone in [&done, &running] {
        assert_eq!(
            k.send(get(&format!("/api/v1/executions/{gone}"))).await.0,
            StatusCode::NOT_FOUND
        );
    }
    // A bulk path is never read as a namespace and a flow id.
    let (status, _) = k
        .send(bulk("POST", "/api/v1/executions/kill/by-ids", &[&failed]))
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, e) = k
        .send(
            Request::post("/api/v1/executions/replay/by-ids")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{\"not\": \"a list\"}"))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
}

#[tokio::test]
async fn file_inputs_new_and_legacy_forms() {
    let k = kite().await;
    let (status, e) = k
        .send(multipart(
            "/api/v1/executions/dev/files?wait=true",
            &[("myfile", Some("a.txt"), "file content")],
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{e}");
    assert_eq!(e["state"]["current"], "SUCCESS", "{e}");
    let uri = e["inputs"]["myfile"].as_str().unwrap().to_string();
    assert!(uri.starts_with("kestra:///dev/files/executions/"), "{uri}");
    assert_eq!(k.logs(e["id"].as_str().unwrap()).await, vec!["file content"]);
    // Kestra's legacy form: part `files`, filename = input id.
    let (_, e) = k
        .send(multipart(
            "/api/v1/executions/dev/files?wait=true",
            &[("files", Some("myfile"), "legacy content")],
        ))
        .await;
    assert_eq!(k.logs(e["id"].as_str().unwrap()).await, vec!["legacy content"]);
    // The file is downloadable from its own execution only.
    let id = e["id"].as_str().unwrap();
    let path = e["inputs"]["myfile"].as_str().unwrap();
    let (status, content) = k
        .send(get(&format!("/api/v1/executions/{id}/file?path={path}")))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content, "legacy content");
    let (status, _) = k
        .send(get(&format!("/api/v1/executions/{id}/file?path={uri}")))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = k
        .send(get(&format!(
            "/api/v1/executions/{id}/file?path=kestra:///dev/files/executions/{id}/../../x"
        )))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn oversize_uploads_are_refused() {
    let k = kite_with(AuthConfig::default(), 16).await;
    let big = "x".repeat(1000);
    let (status, e) = k
        .send(multipart(
            "/api/v1/executions/dev/files",
            &[("myfile", Some("big.txt"), &big)],
        ))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{e}");
    assert!(e["message"]
        .as_str()
        .unwrap()
        .starts_with("Request Entity Too Large"));
}

#[tokio::test]
async fn errors_have_kestras_shape() {
    let k = kite().await;
    let (status, e) = k.send(post("/api/v1/executions/foo/bar")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(e["message"].as_str().unwrap().starts_with("Not Found"), "{e}");
    assert_eq!(e["_links"]["self"]["href"], "/api/v1/executions/foo/bar");
    let (status, e) = k.send(multipart("/api/v1/executions/dev/files", &[])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        e["_embedded"]["errors"][0]["message"],
        "Invalid input for `myfile`, missing required input, but received `null`"
    );
    assert_eq!(e["_embedded"]["errors"][0]["path"], "myfile");
    let (status, e) = k
        .send(yaml(
            "/api/v1/flows",
            "id: x\nnamespace: dev\ntasks:\n  - id: a\n    type: io.kestra.nope.Task\n",
        ))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(e["message"].as_str().unwrap().contains("line 5"), "{e}");
    let (status, _) = k.send(yaml("/api/v1/flows", "id: [unclosed")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, e) = k.send(get("/api/v1/executions/doesnotexist")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{e}");
    let bad_labels = post("/api/v1/executions/dev/hello-world?labels=system.username:me");
    assert_eq!(k.send(bad_labels).await.0, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn webhooks() {
    let k = kite().await;
    let request =
        Request::post("/api/v1/executions/webhook/dev/hello-world/test1234?name=john&age=12&age=13")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(r#"{"greeting":"from a webhook"}"#))
            .unwrap();
    let (status, e) = k.send(request).await;
    assert_eq!(status, StatusCode::OK, "{e}");
    assert_eq!(e["trigger"]["variables"]["body"]["greeting"], "from a webhook");
    assert_eq!(
        e["trigger"]["variables"]["parameters"]["age"],
        serde_json::json!(["12", "13"])
    );
    let id = e["id"].as_str().unwrap().to_string();
    assert_eq!(k.wait_for_state(&id, "SUCCESS").await, "SUCCESS");
    assert_eq!(k.logs(&id).await, vec![r#"{"greeting":"from a webhook"}"#]);
    // A body that is not JSON is kept as text.
    let (_, e) = k
        .send(
            Request::put("/api/v1/executions/webhook/dev/hello-world/test1234")
                .body(Body::from("bla"))
                .unwrap(),
        )
        .await;
    assert_eq!(e["trigger"]["variables"]["body"], "bla");
    let (status, e) = k
        .send(post("/api/v1/executions/webhook/dev/hello-world/wrong"))
        .await;
    assert_eq!(
        (status, e["message"].as_str().unwrap()),
        (StatusCode::NOT_FOUND, "Not Found: Webhook not found")
    );
    let (status, e) = k.send(post("/api/v1/executions/webhook/dev/nope/test1234")).await;
    assert_eq!(
        (status, e["message"].as_str().unwrap()),
        (StatusCode::NOT_FOUND, "Not Found: Flow not found")
    );
}

/// The key of a webhook is rendered with the flow's variables, then trimmed (Kestra's
/// `webhook-dynamic-key.yaml`, `key: "{{ flow.id }}"`); a key that does not render matches
/// nothing, not even its own text.
#[tokio::test]
async fn webhook_keys_are_rendered() {
    let k = kite().await;
    let corpus = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/kestra-flows/webhook-dynamic-key.yaml"
    ))
    .unwrap();
    assert_eq!(k.send(yaml("/api/v1/flows", &corpus)).await.0, StatusCode::OK);
    let (status, e) = k
        .send(get(
            "/api/v1/executions/webhook/io.kestra.tests/webhook-dynamic-key/webhook-dynamic-key",
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{e}");
    assert_eq!(e["flowId"], "webhook-dynamic-key");
    assert_eq!(e["trigger"]["id"], "webhook");
    let id = e["id"].as_str().unwrap().to_string();
    assert_eq!(k.wait_for_state(&id, "SUCCESS").await, "SUCCESS");
    // The expression's own text is not the key.
    let (status, e) = k
        .send(get(
            "/api/v1/executions/webhook/io.kestra.tests/webhook-dynamic-key/%7B%7B%20flow.id%20%7D%7D",
        ))
        .await;
    assert_eq!(
        (status, e["message"].as_str().unwrap_or_default()),
        (StatusCode::NOT_FOUND, "Not Found: Webhook not found")
    );

    let flow = |id: &str, key: &str| {
        format!(
            "id: {id}\nnamespace: dev\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.debug.Return\n    format: ok\ntriggers:\n  - id: hook\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: \"{key}\"\n"
        )
    };
    // Rendered, then trimmed.
    assert_eq!(
        k.send(yaml("/api/v1/flows", &flow("padded", " {{ flow.id }} ")))
            .await
            .0,
        StatusCode::OK
    );
    let (status, e) = k.send(post("/api/v1/executions/webhook/dev/padded/padded")).await;
    assert_eq!(status, StatusCode::OK, "{e}");
    // A key that does not render is ignored (Kestra: the webhook is skipped).
    assert_eq!(
        k.send(yaml("/api/v1/flows", &flow("unrendered", "{{ nothing.here }}")))
            .await
            .0,
        StatusCode::OK
    );
    let (status, e) = k
        .send(post(
            "/api/v1/executions/webhook/dev/unrendered/%7B%7B%20nothing.here%20%7D%7D",
        ))
        .await;
    assert_eq!(
        (status, e["message"].as_str().unwrap_or_default()),
        (StatusCode::NOT_FOUND, "Not Found: Webhook not found")
    );
}

/// `scheduleDate` (Kestra's `ECT.scheduleDate`): the execution is created with the date,
/// an ISO date-time with any offset, and starts then, not before.
#[tokio::test]
async fn schedule_date_delays_the_start() {
    use chrono::{DateTime, Utc};
    let k = kite().await;
    let date = |v: &Value| DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();

    // Far ahead (with an offset, `+` encoded): created, not started.
    let (status, far) = k
        .send(post(
            "/api/v1/executions/dev/hello-world?scheduleDate=2099-12-20T10:00:01%2B01:00",
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{far}");
    assert_eq!(far["state"]["current"], "CREATED", "{far}");
    assert_eq!(
        date(&far["scheduleDate"]),
        DateTime::parse_from_rfc3339("2099-12-20T09:00:01Z").unwrap()
    );

    // A second ahead: starts at its date.
    let at = Utc::now() + chrono::Duration::seconds(1);
    let (status, near) = k
        .send(post(&format!(
            "/api/v1/executions/dev/hello-world?scheduleDate={}",
            at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        )))
        .await;
    assert_eq!(status, StatusCode::OK, "{near}");
    let near_id = near["id"].as_str().unwrap().to_string();
    let done = finished(&k, &near_id).await;
    assert_eq!(done["state"]["current"], "SUCCESS", "{done}");
    let running = done["state"]["histories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["state"] == "RUNNING")
        .map(|h| date(&h["date"]))
        .unwrap();
    assert!(running >= date(&done["scheduleDate"]), "{done}");
    assert!(
        running.timestamp_millis() >= at.timestamp_millis(),
        "started {running} before {at}"
    );

    // The far one still waits.
    let far_id = far["id"].as_str().unwrap();
    let (_, far) = k.send(get(&format!("/api/v1/executions/{far_id}"))).await;
    assert_eq!(far["state"]["current"], "CREATED", "{far}");

    let (status, e) = k
        .send(post("/api/v1/executions/dev/hello-world?scheduleDate=tomorrow"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert!(e["message"].as_str().unwrap().contains("scheduleDate"), "{e}");
}

#[tokio::test]
async fn webhook_conditions_answer_204_when_false() {
    let k = kite().await;
    let flow = r#"id: conditional
namespace: dev
tasks:
  - id: a
    type: io.kestra.plugin.core.debug.Return
    format: ok
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: k
    conditions:
      - type: io.kestra.plugin.core.condition.ExpressionCondition
        expression: "{{ trigger.body.hello == 'world' }}"
"#;
    assert_eq!(k.send(yaml("/api/v1/flows", flow)).await.0, StatusCode::OK);
    let send = |body: &'static str| {
        Request::post("/api/v1/executions/webhook/dev/conditional/k")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap()
    };
    assert_eq!(k.send(send(r#"{"hello":"world"}"#)).await.0, StatusCode::OK);
    assert_eq!(
        k.send(send(r#"{"hello":"webhook"}"#)).await.0,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn tenants() {
    let k = kite().await;
    assert_eq!(
        k.send(get("/api/v1/main/flows/dev/hello-world")).await.0,
        StatusCode::OK
    );
    let (status, e) = k.send(get("/api/v1/other/flows/dev/hello-world")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(e["message"], "Bad Request: Tenant must be 'main' for OSS version");
}

#[tokio::test]
async fn basic_auth_guards_all_but_webhooks() {
    let k = kite_with(
        AuthConfig {
            basic: Some(("admin".into(), "s3cret".into())),
            token: None,
        },
        1024,
    )
    .await;
    let (status, _) = k.send(get("/api/v1/flows/search")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let response = k.app.clone().oneshot(get("/api/v1/flows/search")).await.unwrap();
    assert_eq!(
        response.headers()[header::WWW_AUTHENTICATE],
        "Basic realm=\"Kite\""
    );
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.encode("admin:s3cret");
    let authed = Request::get("/api/v1/flows/search")
        .header(header::AUTHORIZATION, format!("Basic {token}"))
        .body(Body::empty())
        .unwrap();
    let (status, page) = k.send(authed).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["total"], 2);
    assert_eq!(
        k.send(post("/api/v1/executions/webhook/dev/hello-world/test1234"))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(k.send(get("/ping")).await.0, StatusCode::OK);
}

/// Every route of the served OpenAPI document, on both the plain and the `main` tenant
/// paths, with every method it lists: without credentials each answers 401, except the
/// webhooks and the health checks; paths that only look like a webhook's are guarded.
#[tokio::test]
async fn every_route_but_webhooks_needs_credentials() {
    let k = kite_with(
        AuthConfig {
            basic: None,
            token: Some("t0ken".into()),
        },
        1024,
    )
    .await;
    let with_token = |request: Request<Body>| {
        let (mut parts, body) = request.into_parts();
        parts
            .headers
            .insert(header::AUTHORIZATION, "Bearer t0ken".parse().unwrap());
        Request::from_parts(parts, body)
    };
    let (status, doc) = k.send(with_token(get("/api/v1/openapi.json"))).await;
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().expect("paths");
    let mut checked = 0;
    for (path, methods) in paths {
        let concrete = path
            .replace("{namespace}", "dev")
            .replace("{flowId}", "hello-world")
            .replace("{key}", "test1234")
            .replace(['{', '}'], "");
        let open = path.contains("/executions/webhook/") || !path.starts_with("/api/v1/");
        for (method, operation) in methods.as_object().expect("methods") {
            if method == "parameters" {
                continue;
            }
            // The document lists the refusals the route gives (below).
            let documents = |code: &str| operation["responses"].get(code).is_some();
            assert_eq!(
                documents("401"),
                !open,
                "{method} {path}: 401 documented iff it needs credentials"
            );
            let changes = method != "get";
            assert_eq!(
                documents("403"),
                changes && !open,
                "{method} {path}: 403 documented iff a cross-site request is refused"
            );
            if changes && !open {
                let request = Request::builder()
                    .method(method.to_uppercase().as_str())
                    .uri(&concrete)
                    .header("sec-fetch-site", "cross-site")
                    .body(Body::empty())
                    .unwrap();
                let (status, e) = k.send(with_token(request)).await;
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{method} {concrete} from another site: {e}"
                );
            }
            let tenant = concrete.replacen("/api/v1/", "/api/v1/main/", 1);
            for uri in [concrete.clone(), tenant] {
                let request = Request::builder()
                    .method(method.to_uppercase().as_str())
                    .uri(&uri)
                    .body(Body::empty())
                    .unwrap();
                let (status, _) = k.send(request).await;
                if open {
                    assert_ne!(status, StatusCode::UNAUTHORIZED, "{method} {uri} is open");
                } else {
                    assert_eq!(
                        status,
                        StatusCode::UNAUTHORIZED,
                        "{method} {uri} needs credentials"
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 60, "only {checked} routes checked");
    // Paths that contain a webhook's segments without being a webhook route.
    for (method, uri) in [
        ("POST", "/api/v1/executions/webhook/hello-world"),
        ("GET", "/api/v1/flows/executions/webhook/revisions"),
        ("POST", "/api/v1/main/executions/webhook/hello-world"),
    ] {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        assert_eq!(
            k.send(request).await.0,
            StatusCode::UNAUTHORIZED,
            "{method} {uri}"
        );
    }
    // A path no route serves answers 401 too, without credentials: nothing is learnt.
    assert_eq!(k.send(get("/path/to/resource")).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        k.send(with_token(get("/path/to/resource"))).await.0,
        StatusCode::NOT_FOUND
    );
    // The UI's pages stay open under a bearer token (the page asks for it).
    assert_eq!(k.send(get("/ui/")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_multipart_body_without_a_boundary_is_refused_not_dropped() {
    let k = kite().await;
    let request = |body: &'static str| {
        Request::post("/api/v1/executions/dev/hello-world")
            .header(header::CONTENT_TYPE, "multipart/form-data")
            .body(Body::from(body))
            .unwrap()
    };
    let (status, e) = k
        .send(request(
            "--x\r\nContent-Disposition: form-data; name=\"greeting\"\r\n\r\nhi\r\n--x--\r\n",
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap_or("")
            .contains("no `boundary` parameter"),
        "{e}"
    );
    // Kestra's UI sends the header with no body at all: an execution with the defaults.
    let (status, created) = k.send(request("")).await;
    assert_eq!(status, StatusCode::OK, "{created}");
}

#[tokio::test]
async fn multipart_parts_are_bounded_in_size_count_and_per_file_input() {
    let k = kite().await;
    // A text part over 1 MiB: 413 before the rest is read, naming the part.
    let big = "x".repeat(1024 * 1024 + 1);
    let (status, e) = k
        .send(multipart(
            "/api/v1/executions/dev/hello-world",
            &[("greeting", None, &big)],
        ))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{e}");
    assert!(e["message"].as_str().unwrap_or("").contains("`greeting`"), "{e}");
    // Five text parts of 1 MiB each: each fits, together they pass the 4 MiB body bound.
    let full = "x".repeat(1024 * 1024);
    let parts: Vec<(String, Option<&str>, &str)> =
        (0..5).map(|i| (format!("t{i}"), None, full.as_str())).collect();
    let parts: Vec<(&str, Option<&str>, &str)> = parts.iter().map(|(n, f, v)| (n.as_str(), *f, *v)).collect();
    let (status, e) = k
        .send(multipart("/api/v1/executions/dev/hello-world", &parts))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{e}");
    assert!(
        e["message"].as_str().unwrap_or("").contains("KITE_MAX_BODY"),
        "{e}"
    );
    // Two files for one FILE input: 422.
    let (status, e) = k
        .send(multipart(
            "/api/v1/executions/dev/files",
            &[("myfile", Some("a.txt"), "a"), ("myfile", Some("b.txt"), "b")],
        ))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert!(
        e["message"].as_str().unwrap_or("").contains("takes one file"),
        "{e}"
    );
    // More parts than a request may hold: 400.
    let many: Vec<(String, Option<&str>, &str)> = (0..1001).map(|i| (format!("p{i}"), None, "v")).collect();
    let many: Vec<(&str, Option<&str>, &str)> = many.iter().map(|(n, f, v)| (n.as_str(), *f, *v)).collect();
    let (status, e) = k
        .send(multipart("/api/v1/executions/dev/hello-world", &many))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap_or("")
            .contains("more than 1000 parts"),
        "{e}"
    );
}

#[tokio::test]
async fn the_uploads_of_a_refused_execution_are_removed() {
    let k = kite().await;
    let refused = [
        // The second file of one FILE input is refused after the first is stored.
        vec![("myfile", Some("a.txt"), "a"), ("myfile", Some("b.txt"), "b")],
        // An empty file is refused once stored.
        vec![("myfile", Some("empty.txt"), "")],
    ];
    for parts in refused {
        let (status, e) = k.send(multipart("/api/v1/executions/dev/files", &parts)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert_eq!(k.stored_files(), Vec::<std::path::PathBuf>::new());
    }
    let (status, e) = k
        .send(multipart(
            "/api/v1/executions/dev/files",
            &[("myfile", Some("a.txt"), "a")],
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{e}");
    assert_eq!(k.stored_files().len(), 1);
    assert!(!k.stored_files()[0].to_string_lossy().contains(".receiving"));

    // A body cut short after a file part: 400, and nothing stays.
    let mut cut = String::from_utf8(
        axum::body::to_bytes(
            multipart("/", &[("myfile", Some("a.txt"), "abc")]).into_body(),
            usize::MAX,
        )
        .await
        .unwrap()
        .to_vec(),
    )
    .unwrap();
    cut.truncate(cut.len() - "\r\n--kiteboundary--\r\n".len());
    let request = Request::post("/api/v1/executions/dev/files")
        .header(header::CONTENT_TYPE, "multipart/form-data; boundary=kiteboundary")
        .body(Body::from(cut))
        .unwrap();
    let (status, e) = k.send(request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(k.stored_files().len(), 1);

    // A request dropped mid-file (the connection closed, the server killed): what it
    // stored is only being received, and the next start sweeps it.
    let (tx, rx) = tokio::sync::mpsc::channel::<axum::body::Bytes>(1);
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    let request = Request::post("/api/v1/executions/dev/files")
        .header(header::CONTENT_TYPE, "multipart/form-data; boundary=kiteboundary")
        .body(Body::from_stream(chunks))
        .unwrap();
    let app = k.app.clone();
    let answer = tokio::spawn(async move { app.oneshot(request).await });
    tx.send(
        "--kiteboundary\r\nContent-Disposition: form-data; name=\"myfile\"; filename=\"big.txt\"\r\n\r\n"
            .into(),
    )
    .await
    .unwrap();
    tx.send(axum::body::Bytes::from(vec![b'x'; 200 * 1024]))
        .await
        .unwrap();
    tx.send(axum::body::Bytes::from(vec![b'x'; 1024])).await.unwrap();
    answer.abort();
    let _ = answer.await;
    // The storage writes on its own task: what it wrote lands there, however late.
    let receiving = || -> Vec<_> {
        k.stored_files()
            .into_iter()
            .filter(|p| p.to_string_lossy().contains(".receiving"))
            .collect()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while receiving().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let left = receiving();
    assert!(!left.is_empty(), "the dropped request stored nothing");
    assert_eq!(k.stored_files().len(), 1 + left.len());
    let lock = kite_local::DataLock::acquire(k.dir.path()).unwrap();
    assert_eq!(
        kite_local::sweep_receiving(k.dir.path(), &lock).unwrap(),
        left.len() as u64
    );
    assert_eq!(k.stored_files().len(), 1);
}

#[tokio::test]
async fn search_and_kill() {
    let k = kite().await;
    let sleeper = "id: sleeper\nnamespace: dev\ntasks:\n  - id: s\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT30S\n";
    assert_eq!(k.send(yaml("/api/v1/flows", sleeper)).await.0, StatusCode::OK);
    let (_, e) = k.send(post("/api/v1/executions/dev/sleeper")).await;
    let id = e["id"].as_str().unwrap();
    let (status, _) = k
        .send(
            Request::delete(format!("/api/v1/executions/{id}/kill"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(k.wait_for_state(id, "KILLED").await, "KILLED");
    let (status, page) = k
        .send(get(
            "/api/v1/executions/search?namespace=dev&flowId=sleeper&state=KILLED",
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["total"], 1);
    let (status, _) = k
        .send(get(
            "/api/v1/executions/search?startDate=2025-01-02T00:00:00Z&endDate=2025-01-01T00:00:00Z",
        ))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn pause_and_resume_with_inputs() {
    let k = kite().await;
    let flow = r#"id: approval
namespace: dev
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: asked
        type: STRING
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: "{{ outputs.wait.onResume.asked }}"
"#;
    assert_eq!(k.send(yaml("/api/v1/flows", flow)).await.0, StatusCode::OK);
    let (_, e) = k.send(post("/api/v1/executions/dev/approval")).await;
    let id = e["id"].as_str().unwrap().to_string();
    assert_eq!(k.wait_for_state(&id, "PAUSED").await, "PAUSED");
    let (status, e) = k
        .send(multipart(&format!("/api/v1/executions/{id}/resume"), &[]))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let (status, _) = k
        .send(multipart(
            &format!("/api/v1/executions/{id}/resume"),
            &[("asked", None, "approved")],
        ))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(k.wait_for_state(&id, "SUCCESS").await, "SUCCESS");
    assert_eq!(k.logs(&id).await, vec!["approved"]);
}

#[tokio::test]
async fn openapi_lists_only_routes_that_exist() {
    let k = kite().await;
    let (status, doc) = k.send(get("/api/v1/openapi.yml")).await;
    assert_eq!(status, StatusCode::OK);
    let doc = doc.as_str().unwrap().to_string();
    let mut count = 0;
    let mut path = String::new();
    for line in doc.lines() {
        if let Some(p) = line.strip_prefix("  /").and_then(|p| p.strip_suffix(':')) {
            path = format!("/{p}");
            continue;
        }
        let method = line.trim().trim_end_matches(':');
        if line.starts_with("    ")
            && !line.starts_with("     ")
            && ["get", "post", "put", "delete"].contains(&method)
        {
            let concrete = path
                .split('/')
                .map(|seg| if seg.starts_with('{') { "x" } else { seg })
                .collect::<Vec<_>>()
                .join("/");
            let request = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&concrete)
                .body(Body::empty())
                .unwrap();
            let (status, body) = k.send(request).await;
            let missing = status == StatusCode::METHOD_NOT_ALLOWED
                || (status == StatusCode::NOT_FOUND && body["message"] == "Not Found: Page Not Found");
            assert!(!missing, "{method} {path} is documented but not served");
            count += 1;
        }
    }
    assert!(count >= 25, "only {count} operations documented");
}

/// Waits (bounded against a hang only) for an execution to reach a terminal state;
/// returns its JSON.
async fn finished(k: &Kite, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + HANG;
    while tokio::time::Instant::now() < deadline {
        let (_, e) = k.send(get(&format!("/api/v1/executions/{id}"))).await;
        let state = e["state"]["current"].as_str().unwrap_or_default().to_string();
        if ["SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED"].contains(&state.as_str()) {
            return e;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("execution {id} did not finish");
}

#[tokio::test]
async fn conflicts_on_disabled_flows_and_finished_executions() {
    let k = kite().await;
    let (status, e) = k.send(yaml("/api/v1/flows", HELLO)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert!(e.to_string().contains("Flow id already exists"), "{e}");

    let disabled = HELLO.replace("namespace: dev\n", "namespace: dev\ndisabled: true\n");
    let put = Request::put("/api/v1/flows/dev/hello-world")
        .header(header::CONTENT_TYPE, "application/x-yaml")
        .body(Body::from(disabled))
        .unwrap();
    assert_eq!(k.send(put).await.0, StatusCode::OK);
    let (status, e) = k.send(post("/api/v1/executions/dev/hello-world")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    assert!(e["message"].as_str().unwrap().starts_with("Illegal state"), "{e}");
    let (status, e) = k
        .send(post("/api/v1/executions/webhook/dev/hello-world/test1234"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");

    let (status, created) = k
        .send(post("/api/v1/executions/dev/hello-world?revision=1"))
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(finished(&k, &id).await["state"]["current"], "SUCCESS");
    let kill = Request::delete(format!("/api/v1/executions/{id}/kill?isOnKillCascade=false"))
        .body(Body::empty())
        .unwrap();
    let (status, e) = k.send(kill).await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    let (status, e) = k
        .send(multipart(&format!("/api/v1/executions/{id}/resume"), &[]))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    assert!(e["message"].as_str().unwrap().contains("is not paused"), "{e}");
}

#[tokio::test]
async fn flow_lifecycle_validate_search_revisions_delete() {
    let k = kite().await;
    let two =
        format!("{HELLO}---\nid: bad\nnamespace: dev\ntasks:\n  - id: a\n    type: io.kestra.nope.Task\n");
    let (status, list) = k.send(yaml("/api/v1/flows/validate", &two)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
    assert_eq!(list[0]["flow"], "hello-world");
    assert!(list[0]["constraints"].is_null(), "{list}");
    assert_eq!(list[1]["index"], 1);
    assert!(list[1]["constraints"].is_string(), "{list}");

    let (status, page) = k.send(get("/api/v1/flows/search?namespace=dev&size=1")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["total"], 2, "{page}");
    assert_eq!(page["results"].as_array().map(Vec::len), Some(1), "{page}");

    let (status, flow) = k.send(get("/api/v1/flows/dev/hello-world")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(flow["source"], HELLO);
    let (status, revisions) = k.send(get("/api/v1/flows/dev/hello-world/revisions")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(revisions[0]["revision"], 1, "{revisions}");

    let del = Request::delete("/api/v1/flows/dev/hello-world")
        .body(Body::empty())
        .unwrap();
    assert_eq!(k.send(del).await.0, StatusCode::NO_CONTENT);
    assert_eq!(
        k.send(get("/api/v1/flows/dev/hello-world")).await.0,
        StatusCode::NOT_FOUND
    );
    let del = Request::delete("/api/v1/flows/dev/hello-world")
        .body(Body::empty())
        .unwrap();
    assert_eq!(k.send(del).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn execution_files_and_log_download_stay_within_the_execution() {
    let k = kite().await;
    let (status, created) = k
        .send(multipart(
            "/api/v1/executions/dev/files",
            &[("myfile", Some("notes.txt"), "file body")],
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    finished(&k, &id).await;
    let uri = created["inputs"]["myfile"].as_str().unwrap().to_string();
    let (status, body) = k
        .send(get(&format!("/api/v1/executions/{id}/file?path={uri}")))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "file body");
    for outside in [
        "kestra:///dev/other/executions/x/inputs/myfile/notes.txt",
        "kestra:///dev/files/executions/../../../../etc/passwd",
    ] {
        let (status, e) = k
            .send(get(&format!("/api/v1/executions/{id}/file?path={outside}")))
            .await;
        assert!(
            status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::NOT_FOUND,
            "{outside}: {status} {e}"
        );
    }
    let (status, _) = k
        .send(get(&format!("/api/v1/executions/nope/file?path={uri}")))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, text) = k.send(get(&format!("/api/v1/logs/{id}/download"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.as_str().unwrap().contains("INFO file body"), "{text}");
}

#[tokio::test]
async fn follow_restart_replay_labels_and_delete() {
    let k = kite().await;
    let failing =
        "id: failing\nnamespace: dev\ntasks:\n  - id: boom\n    type: io.kestra.plugin.core.execution.Fail\n";
    assert_eq!(k.send(yaml("/api/v1/flows", failing)).await.0, StatusCode::OK);

    let (_, created) = k.send(post("/api/v1/executions/dev/hello-world")).await;
    let id = created["id"].as_str().unwrap().to_string();
    let follow = tokio::time::timeout(HANG, k.send(get(&format!("/api/v1/executions/{id}/follow"))))
        .await
        .expect("follow ends with the execution");
    assert_eq!(follow.0, StatusCode::OK);
    let stream = follow.1.as_str().unwrap().to_string();
    assert!(stream.contains("id: end"), "{stream}");
    assert!(stream.contains("\"SUCCESS\""), "{stream}");
    assert_eq!(
        k.send(get("/api/v1/executions/nope/follow")).await.0,
        StatusCode::NOT_FOUND
    );

    let labels = |id: &str, body: &str| {
        Request::post(format!("/api/v1/executions/{id}/labels"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let (status, e) = k.send(labels(&id, r#"[{"key":"team","value":"api"}]"#)).await;
    assert_eq!(status, StatusCode::OK, "{e}");
    assert!(e["labels"].to_string().contains("\"team\""), "{e}");
    let (status, _) = k
        .send(labels(&id, r#"[{"key":"system.readOnly","value":"true"}]"#))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = k.send(labels(&id, "not json")).await;
    assert!(status.is_client_error(), "{status}");

    let (_, failed) = k.send(post("/api/v1/executions/dev/failing")).await;
    let failed_id = failed["id"].as_str().unwrap().to_string();
    assert_eq!(finished(&k, &failed_id).await["state"]["current"], "FAILED");
    let (status, restarted) = k
        .send(post(&format!("/api/v1/executions/{failed_id}/restart")))
        .await;
    assert_eq!(status, StatusCode::OK, "{restarted}");
    assert_eq!(restarted["id"], failed_id.as_str());
    assert_eq!(finished(&k, &failed_id).await["state"]["current"], "FAILED");
    let (status, replayed) = k
        .send(post(&format!("/api/v1/executions/{failed_id}/replay")))
        .await;
    assert_eq!(status, StatusCode::OK, "{replayed}");
    assert_ne!(replayed["id"], failed_id.as_str());

    let del = |id: &str| {
        Request::delete(format!("/api/v1/executions/{id}"))
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(k.send(del(&id)).await.0, StatusCode::NO_CONTENT);
    assert_eq!(
        k.send(get(&format!("/api/v1/executions/{id}"))).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(k.send(del(&id)).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn restarting_a_successful_execution_is_refused() {
    let k = kite().await;
    let (_, e) = k.send(post("/api/v1/executions/dev/hello-world?wait=true")).await;
    assert_eq!(e["state"]["current"], "SUCCESS");
    let id = e["id"].as_str().unwrap();
    let (status, e) = k.send(post(&format!("/api/v1/executions/{id}/restart"))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["message"], "Illegal argument: No task found to restart");
}

fn json_request(method: &str, uri: &str, body: Value) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test]
async fn triggers_are_searchable_and_can_be_disabled_and_backfilled() {
    let k = kite().await;
    let flow = r#"id: nightly
namespace: dev.reports
tasks:
  - id: a
    type: io.kestra.plugin.core.debug.Return
    format: "{{ trigger.date }}"
triggers:
  - id: every-night
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 2 * * *"
    timezone: Europe/Paris
"#;
    assert_eq!(k.send(yaml("/api/v1/flows", flow)).await.0, StatusCode::OK);
    let (status, found) = k.send(get("/api/v1/triggers/search?namespace=dev.reports")).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["total"], 1);
    let entry = &found["results"][0];
    assert_eq!(entry["abstractTrigger"]["id"], "every-night");
    assert_eq!(entry["triggerContext"]["flowId"], "nightly");
    assert!(entry["triggerContext"]["nextExecutionDate"].is_string());
    // Every trigger of every flow is listed; `q` filters.
    let (_, all) = k.send(get("/api/v1/triggers/search?q=webhook")).await;
    assert_eq!(all["results"][0]["triggerContext"]["flowId"], "hello-world");
    let (_, per_flow) = k.send(get("/api/v1/triggers/dev.reports/nightly")).await;
    assert_eq!(per_flow["total"], 1);

    let target =
        serde_json::json!({"namespace": "dev.reports", "flowId": "nightly", "triggerId": "every-night"});
    let (status, count) = k
        .send(json_request(
            "POST",
            "/api/v1/triggers/set-disabled/by-triggers",
            serde_json::json!({"triggers": [target], "disabled": true}),
        ))
        .await;
    assert_eq!(
        (status, count["count"].clone()),
        (StatusCode::OK, serde_json::json!(1))
    );
    let (_, found) = k.send(get("/api/v1/triggers/search?namespace=dev.reports")).await;
    assert_eq!(found["results"][0]["triggerContext"]["disabled"], true);

    let mut with_backfill = target.clone();
    with_backfill["disabled"] = serde_json::json!(false);
    with_backfill["backfill"] =
        serde_json::json!({"start": "2030-01-01T00:00:00Z", "end": "2030-01-03T00:00:00Z"});
    let (status, ctx) = k
        .send(json_request("PUT", "/api/v1/triggers", with_backfill))
        .await;
    assert_eq!(status, StatusCode::OK, "{ctx}");
    assert_eq!(ctx["disabled"], false);
    assert_eq!(ctx["backfill"]["start"], "2030-01-01T00:00:00Z");
    let (_, paused) = k
        .send(json_request(
            "PUT",
            "/api/v1/triggers/backfill/pause",
            target.clone(),
        ))
        .await;
    assert_eq!(paused["backfill"]["paused"], true);
    let (_, deleted) = k
        .send(json_request(
            "POST",
            "/api/v1/triggers/backfill/delete",
            target.clone(),
        ))
        .await;
    assert!(deleted.get("backfill").is_none());
    let (status, _) = k
        .send(json_request("POST", "/api/v1/triggers/backfill/delete", target))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let unknown = serde_json::json!({"namespace": "dev.reports", "flowId": "nightly", "triggerId": "nope", "disabled": true});
    let (status, error) = k.send(json_request("PUT", "/api/v1/triggers", unknown)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
}

/// Where the host must answer by a deadline (`AnswerBy`, set by the api Lambda), `follow`
/// answers the current state, then the next change, then ends with a `retry` hint; and
/// `wait=true` answers the execution as it is at the deadline.
#[tokio::test]
async fn bounded_answers_end_in_time() {
    use kite_api::AnswerBy;
    let k = kite().await;
    let slow = "id: slow\nnamespace: dev\ntasks:\n  - id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT1H\n";
    assert_eq!(k.send(yaml("/api/v1/flows", slow)).await.0, StatusCode::OK);
    let bounded = |mut request: Request<Body>, seconds: u64| {
        let at = tokio::time::Instant::now() + std::time::Duration::from_secs(seconds);
        request.extensions_mut().insert(AnswerBy(at));
        request
    };

    let (status, execution) = tokio::time::timeout(
        HANG,
        k.send(bounded(post("/api/v1/executions/dev/slow?wait=true"), 1)),
    )
    .await
    .expect("wait=true answers by the deadline");
    assert_eq!(status, StatusCode::OK, "{execution}");
    assert_eq!(execution["state"]["current"], "RUNNING", "{execution}");
    let id = execution["id"].as_str().unwrap().to_string();

    // Nothing changes before the deadline: the current state, then the reconnection hint.
    let (status, text) = tokio::time::timeout(
        HANG,
        k.send(bounded(get(&format!("/api/v1/executions/{id}/follow")), 1)),
    )
    .await
    .expect("follow ends by the deadline");
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap().to_string();
    assert_eq!(text.matches("id: progress").count(), 1, "{text}");
    assert!(text.contains("retry:"), "{text}");

    // A change before the deadline ends the answer at once, with that change: the kill is
    // sent once the answer has given the current state.
    use futures_util::StreamExt as _;
    let response = k
        .app
        .clone()
        .oneshot(bounded(get(&format!("/api/v1/executions/{id}/follow")), 60))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body().into_data_stream();
    let mut text = String::new();
    while !(text.contains("data:") && text.ends_with("\n\n")) {
        let chunk = tokio::time::timeout(HANG, body.next())
            .await
            .expect("follow answers the current state")
            .expect("an event before the end")
            .unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(text.contains("\"RUNNING\""), "the current state first: {text}");
    let kill = Request::delete(format!("/api/v1/executions/{id}/kill"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(k.send(kill).await.0, StatusCode::ACCEPTED);
    while let Some(chunk) = tokio::time::timeout(HANG, body.next())
        .await
        .expect("follow answers the first change")
    {
        text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
    }
    assert_eq!(
        text.matches("data:").count(),
        2,
        "the state, then its first change: {text}"
    );
    assert!(text.contains("\"KILL"), "the change is the kill: {text}");
}

// ---------------------------------------------------------------- staged uploads

/// File storage with URLs of its own, as S3's presigned ones.
struct Presigning(Arc<dyn FileStorage>);

#[async_trait::async_trait]
impl FileStorage for Presigning {
    async fn put(&self, uri: &str, content: ByteStream, max_bytes: u64) -> Result<u64, StorageError> {
        self.0.put(uri, content, max_bytes).await
    }
    async fn get(&self, uri: &str) -> Result<ByteStream, StorageError> {
        self.0.get(uri).await
    }
    async fn size(&self, uri: &str) -> Result<Option<u64>, StorageError> {
        self.0.size(uri).await
    }
    async fn rename(&self, from: &str, to: &str) -> Result<(), StorageError> {
        self.0.rename(from, to).await
    }
    async fn delete_prefix(&self, prefix: &str) -> Result<u64, StorageError> {
        self.0.delete_prefix(prefix).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<StoredFile>, StorageError> {
        self.0.list(prefix).await
    }
    fn read_blocking(&self, uri: &str) -> Result<Vec<u8>, StorageError> {
        self.0.read_blocking(uri)
    }
    async fn upload_url(&self, uri: &str, expires_in: Duration) -> Result<Option<String>, StorageError> {
        let key = uri.trim_start_matches("kestra:///");
        Ok(Some(format!(
            "https://storage.example/{key}?put&expires={}",
            expires_in.as_secs()
        )))
    }
    async fn download_url(&self, uri: &str, expires_in: Duration) -> Result<Option<String>, StorageError> {
        let key = uri.trim_start_matches("kestra:///");
        Ok(Some(format!(
            "https://storage.example/{key}?get&expires={}",
            expires_in.as_secs()
        )))
    }
}

fn put_bytes(uri: &str, body: &str, with_length: bool) -> Request<Body> {
    let mut request = Request::put(uri).body(Body::from(body.to_string())).unwrap();
    if with_length {
        request
            .headers_mut()
            .insert(header::CONTENT_LENGTH, body.len().into());
    }
    request
}

fn ask_upload(flow: &str, input: &str, filename: &str) -> Request<Body> {
    json_request(
        "POST",
        &format!("/api/v1/executions/dev/{flow}/uploads"),
        serde_json::json!({"input": input, "filename": filename}),
    )
}

/// Asks an upload URI of `dev.{flow}` and puts `content` there through the API (whatever
/// URL the storage offers); the staged URI.
async fn stage(k: &Kite, flow: &str, filename: &str, content: &str) -> String {
    let (status, asked) = k.send(ask_upload(flow, "myfile", filename)).await;
    assert_eq!(status, StatusCode::OK, "{asked}");
    let uri = asked["uri"].as_str().unwrap().to_string();
    let staged = uri
        .strip_prefix(&format!("kestra:///dev/{flow}/uploads/"))
        .unwrap();
    let path = format!("/api/v1/executions/dev/{flow}/uploads/{staged}");
    let (status, put) = k.send(put_bytes(&path, content, true)).await;
    assert_eq!(status, StatusCode::CREATED, "{put}");
    uri
}

#[tokio::test]
async fn file_inputs_staged_through_upload_urls() {
    let k = kite().await;
    let (status, asked) = k.send(ask_upload("files", "myfile", "big data.csv")).await;
    assert_eq!(status, StatusCode::OK, "{asked}");
    let uri = asked["uri"].as_str().unwrap().to_string();
    let upload_id = uri
        .strip_prefix("kestra:///dev/files/uploads/")
        .and_then(|rest| rest.strip_suffix("/big data.csv"))
        .unwrap_or_else(|| panic!("{uri}"));
    assert!(!upload_id.is_empty() && upload_id.chars().all(|c| c.is_ascii_alphanumeric()));
    // Local storage has no URLs of its own: the bytes go to the API.
    assert_eq!(
        asked["uploadUrl"],
        format!("http://localhost:8080/api/v1/executions/dev/files/uploads/{upload_id}/big%20data.csv")
    );
    assert_eq!(asked["method"], "PUT");
    assert_eq!(asked["expiresIn"], 900);
    assert_eq!(asked["maxSize"], 1024 * 1024);
    let path = format!("/api/v1/executions/dev/files/uploads/{upload_id}/big%20data.csv");
    let (status, put) = k.send(put_bytes(&path, "staged,content\n1,2", false)).await;
    assert_eq!(status, StatusCode::CREATED, "{put}");
    assert_eq!(put["uri"], uri.as_str());
    assert_eq!(put["size"], 18);

    // The URI as the FILE input's form field: the execution reads the staged file.
    let (status, e) = k
        .send(multipart(
            "/api/v1/executions/dev/files?wait=true",
            &[("myfile", None, &uri)],
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{e}");
    assert_eq!(e["state"]["current"], "SUCCESS", "{e}");
    assert_eq!(e["inputs"]["myfile"], uri.as_str());
    let id = e["id"].as_str().unwrap();
    assert_eq!(k.logs(id).await, vec!["staged,content\n1,2"]);
    // It is downloadable from the execution that uses it.
    let (status, content) = k
        .send(get(&format!(
            "/api/v1/executions/{id}/file?path={}",
            uri.replace(' ', "%20")
        )))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content, "staged,content\n1,2");

    // The same in a JSON body and under the tenant prefix.
    let (status, e) = k
        .send(json_request(
            "POST",
            "/api/v1/main/executions/dev/files?wait=true",
            serde_json::json!({"myfile": uri}),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{e}");
    assert_eq!(
        k.logs(e["id"].as_str().unwrap()).await,
        vec!["staged,content\n1,2"]
    );
    let (status, asked) = k
        .send(json_request(
            "POST",
            "/api/v1/main/executions/dev/files/uploads",
            serde_json::json!({"input": "myfile", "filename": "b.txt"}),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{asked}");
}

#[tokio::test]
async fn staged_uploads_refusals() {
    let k = kite_with(AuthConfig::default(), 64).await;
    let other = FILES.replace("id: files", "id: other");
    assert_eq!(k.send(yaml("/api/v1/flows", &other)).await.0, StatusCode::OK);
    let create = |uri: &str| multipart("/api/v1/executions/dev/files", &[("myfile", None, uri)]);
    let refused = |e: &Value, text: &str| {
        assert_eq!(e["_embedded"]["errors"][0]["path"], "myfile", "{e}");
        let message = e["_embedded"]["errors"][0]["message"].as_str().unwrap();
        assert!(message.starts_with("Invalid input for `myfile`, "), "{message}");
        assert!(message.contains(text), "{message}");
    };

    // Another flow's upload, an execution's file: not this flow's staged uploads.
    let others = stage(&k, "other", "a.txt", "secret of other").await;
    let (status, e) = k.send(create(&others)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    refused(&e, "must be uploaded for dev.files");
    for uri in [
        "kestra:///dev/files/executions/abc/inputs/myfile/a.txt",
        "kestra:///dev/files/uploads/abc/../../x",
        "kestra:///dev/files/uploads/abc/sub/a.txt",
    ] {
        let (status, e) = k.send(create(uri)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{uri}: {e}");
        refused(&e, "must be uploaded for dev.files");
    }
    // Asked for but never uploaded.
    let (_, asked) = k.send(ask_upload("files", "myfile", "late.txt")).await;
    let (status, e) = k.send(create(asked["uri"].as_str().unwrap())).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    refused(&e, "not uploaded yet");
    // Written larger than the bound behind the API's back (a presigned PUT is not bounded):
    // refused and removed.
    let uri = asked["uri"].as_str().unwrap();
    let file = k
        .dir
        .path()
        .join("storage")
        .join(uri.trim_start_matches("kestra:///"));
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "x".repeat(65)).unwrap();
    let (status, e) = k.send(create(uri)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    refused(&e, "larger than the limit of 64 bytes");
    assert!(!file.exists());

    // The upload request: flow, input and file name are checked.
    let (status, _) = k.send(ask_upload("nope", "myfile", "a.txt")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, e) = k.send(ask_upload("hello-world", "greeting", "a.txt")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["_embedded"]["errors"][0]["path"], "input");
    assert_eq!(
        e["_embedded"]["errors"][0]["message"],
        "Input `greeting` is of type STRING, not FILE"
    );
    let (status, e) = k.send(ask_upload("files", "missing", "a.txt")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["_embedded"]["errors"][0]["path"], "input");
    for name in [
        "",
        "..",
        "../x",
        "a/b",
        "a\\b",
        "c:x",
        "a\u{0}b",
        &"x".repeat(256),
    ] {
        let (status, e) = k.send(ask_upload("files", "myfile", name)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name:?}: {e}");
        assert_eq!(e["_embedded"]["errors"][0]["path"], "filename", "{e}");
    }
    let (status, e) = k
        .send(json_request(
            "POST",
            "/api/v1/executions/dev/files/uploads",
            serde_json::json!({"input": "myfile"}),
        ))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["_embedded"]["errors"][0]["path"], "filename");

    // The upload itself: the same bound as multipart, one safe segment, an id.
    let base = "/api/v1/executions/dev/files/uploads";
    for with_length in [true, false] {
        let (status, e) = k
            .send(put_bytes(
                &format!("{base}/abc/big.txt"),
                &"x".repeat(1000),
                with_length,
            ))
            .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{e}");
        assert!(e["message"]
            .as_str()
            .unwrap()
            .starts_with("Request Entity Too Large"));
    }
    let (status, _) = k.send(put_bytes(&format!("{base}/abc/a%3Ab"), "x", true)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = k.send(put_bytes(&format!("{base}/abc/..%2Fx"), "x", true)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = k.send(put_bytes(&format!("{base}/a-b/x.txt"), "x", true)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = k
        .send(put_bytes(&format!("{base}/abc/empty.txt"), "", true))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = k
        .send(put_bytes(
            "/api/v1/executions/dev/nope/uploads/abc/x.txt",
            "x",
            true,
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A staged file is downloadable only from an execution that uses it.
    let mine = stage(&k, "files", "mine.txt", "mine").await;
    let (_, e) = k.send(create(&mine)).await;
    let id = e["id"].as_str().unwrap();
    let (status, _) = k
        .send(get(&format!("/api/v1/executions/{id}/file?path={others}")))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = k
        .send(get(&format!("/api/v1/executions/{id}/file?path={mine}")))
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn staged_uploads_need_credentials() {
    let auth = AuthConfig {
        basic: Some(("admin".into(), "s3cret".into())),
        token: None,
    };
    let k = kite_with(auth, 1024).await;
    let (status, _) = k.send(ask_upload("files", "myfile", "a.txt")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = k
        .send(put_bytes(
            "/api/v1/executions/dev/files/uploads/abc/a.txt",
            "x",
            true,
        ))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn large_downloads_redirect_to_the_storage() {
    let k = kite_on(
        "http://localhost:8080",
        AuthConfig::default(),
        1024,
        Some(8),
        true,
        kite_api::DEFAULT_MAX_CREATIONS,
    )
    .await;
    // A storage with URLs of its own hands out its upload URL.
    let (status, asked) = k.send(ask_upload("files", "myfile", "big.txt")).await;
    assert_eq!(status, StatusCode::OK, "{asked}");
    let uri = asked["uri"].as_str().unwrap().to_string();
    let key = uri.trim_start_matches("kestra:///");
    assert_eq!(
        asked["uploadUrl"],
        format!("https://storage.example/{key}?put&expires=900")
    );
    // (The fake storage URL stores nothing: the bytes go through the API here.)
    let path = format!(
        "/api/v1/executions/dev/files/uploads/{}",
        key.trim_start_matches("dev/files/uploads/")
    );
    assert_eq!(
        k.send(put_bytes(&path, "more than eight bytes", true)).await.0,
        StatusCode::CREATED
    );
    let (_, e) = k
        .send(multipart(
            "/api/v1/executions/dev/files?wait=true",
            &[("myfile", None, &uri)],
        ))
        .await;
    assert_eq!(e["state"]["current"], "SUCCESS", "{e}");
    let id = e["id"].as_str().unwrap();
    let response = k
        .app
        .clone()
        .oneshot(get(&format!("/api/v1/executions/{id}/file?path={uri}")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(
        response.headers()[header::LOCATION],
        format!("https://storage.example/{key}?get&expires=900").as_str()
    );
    // At most the limit: streamed as before.
    let (_, e) = k
        .send(multipart(
            "/api/v1/executions/dev/files?wait=true",
            &[("myfile", Some("small.txt"), "tiny")],
        ))
        .await;
    let id = e["id"].as_str().unwrap();
    let path = e["inputs"]["myfile"].as_str().unwrap();
    let (status, content) = k
        .send(get(&format!("/api/v1/executions/{id}/file?path={path}")))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content, "tiny");

    // Without a limit (the local server), every file is streamed.
    let k = kite_on(
        "http://localhost:8080",
        AuthConfig::default(),
        1024,
        None,
        true,
        kite_api::DEFAULT_MAX_CREATIONS,
    )
    .await;
    let uri = stage(&k, "files", "big.txt", "more than eight bytes").await;
    let (_, e) = k
        .send(multipart(
            "/api/v1/executions/dev/files?wait=true",
            &[("myfile", None, &uri)],
        ))
        .await;
    let id = e["id"].as_str().unwrap();
    let (status, content) = k
        .send(get(&format!("/api/v1/executions/{id}/file?path={uri}")))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content, "more than eight bytes");
}

#[tokio::test]
async fn resume_answers_a_file_with_a_staged_upload() {
    let k = kite().await;
    let flow = r#"id: review
namespace: dev
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: report
        type: FILE
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: "{{ read(outputs.wait.onResume.report) }}"
"#;
    assert_eq!(k.send(yaml("/api/v1/flows", flow)).await.0, StatusCode::OK);
    let (_, e) = k.send(post("/api/v1/executions/dev/review")).await;
    let id = e["id"].as_str().unwrap().to_string();
    assert_eq!(k.wait_for_state(&id, "PAUSED").await, "PAUSED");
    let resume = |uri: &str| {
        multipart(
            &format!("/api/v1/executions/{id}/resume"),
            &[("report", None, uri)],
        )
    };
    let others = stage(&k, "files", "a.txt", "not for review").await;
    let (status, e) = k.send(resume(&others)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["_embedded"]["errors"][0]["path"], "report");
    // `onResume` FILE inputs are staged like the flow's.
    let (status, asked) = k
        .send(json_request(
            "POST",
            "/api/v1/executions/dev/review/uploads",
            serde_json::json!({"input": "report", "filename": "r.txt"}),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{asked}");
    let mine = asked["uri"].as_str().unwrap();
    let url = asked["uploadUrl"].as_str().unwrap();
    let (status, _) = k
        .send(put_bytes(
            url.trim_start_matches("http://localhost:8080"),
            "reviewed",
            true,
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, e) = k.send(resume(mine)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{e}");
    assert_eq!(k.wait_for_state(&id, "SUCCESS").await, "SUCCESS");
    assert_eq!(k.logs(&id).await, vec!["reviewed"]);
}

#[tokio::test]
async fn a_subflow_reads_the_staged_file_its_parent_passes_on() {
    let k = kite().await;
    let parent = r#"id: parent
namespace: dev
inputs:
  - id: myfile
    type: FILE
tasks:
  - id: child
    type: io.kestra.plugin.core.flow.Subflow
    namespace: dev
    flowId: files
    wait: true
    inputs:
      myfile: "{{ inputs.myfile }}"
"#;
    assert_eq!(k.send(yaml("/api/v1/flows", parent)).await.0, StatusCode::OK);
    let (status, asked) = k
        .send(json_request(
            "POST",
            "/api/v1/executions/dev/parent/uploads",
            serde_json::json!({"input": "myfile", "filename": "p.txt"}),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{asked}");
    let url = asked["uploadUrl"].as_str().unwrap();
    let (status, _) = k
        .send(put_bytes(
            url.trim_start_matches("http://localhost:8080"),
            "from the parent",
            true,
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let uri = asked["uri"].as_str().unwrap();
    let (_, e) = k
        .send(multipart(
            "/api/v1/executions/dev/parent",
            &[("myfile", None, uri)],
        ))
        .await;
    let e = finished(&k, e["id"].as_str().unwrap()).await;
    assert_eq!(e["state"]["current"], "SUCCESS", "{e}");
    let (_, children) = k
        .send(get(&format!(
            "/api/v1/executions/search?flowId=files&triggerExecutionId={}",
            e["id"].as_str().unwrap()
        )))
        .await;
    let child = children["results"][0]["id"].as_str().unwrap();
    assert_eq!(k.logs(child).await, vec!["from the parent"]);
}

/// An error's body is Kestra's JSON, `message` and `_links`, for the errors axum's
/// extractors and router give too.
fn assert_kestra_error(e: &Value, href: &str) {
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    assert_eq!(e["_links"]["self"]["href"], href, "{e}");
}

#[tokio::test]
async fn rejections_of_the_router_and_its_extractors_have_kestras_shape() {
    let k = kite().await;
    let cases = [
        // No such method on the route: 405.
        (get("/api/v1/flows"), StatusCode::METHOD_NOT_ALLOWED),
        // A JSON body sent as text: 415; not JSON: 400; JSON of another shape: 422.
        (
            Request::put("/api/v1/triggers")
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from("{}"))
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            Request::put("/api/v1/triggers")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{not json"))
                .unwrap(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Request::put("/api/v1/triggers")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(r#"{"namespace": 42}"#))
                .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        // A body past the limit: 413.
        (
            yaml("/api/v1/flows", &"#".repeat(5 * 1024 * 1024)),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (get("/nothing/here"), StatusCode::NOT_FOUND),
    ];
    for (request, want) in cases {
        let href = request.uri().to_string();
        let response = k.app.clone().oneshot(request).await.expect("response");
        assert_eq!(response.status(), want, "{href}");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/json",
            "{href}"
        );
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let e: Value = serde_json::from_slice(&bytes).expect("JSON");
        assert_kestra_error(&e, &href);
    }
}

#[tokio::test]
async fn answers_forbid_sniffing_and_api_answers_may_do_nothing_in_a_browser() {
    let k = kite().await;
    for uri in ["/api/v1/flows/search", "/api/v1/executions/nope", "/ping"] {
        let response = k.app.clone().oneshot(get(uri)).await.expect("response");
        let h = response.headers();
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{uri}");
        assert!(
            h[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .starts_with("default-src 'none'"),
            "{uri}"
        );
    }
    // The UI's page keeps the policy it needs (its own scripts and styles).
    let response = k.app.clone().oneshot(get("/ui/")).await.expect("response");
    let h = response.headers();
    assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
}

#[tokio::test]
async fn a_webhook_answer_is_sandboxed_whatever_its_content_type() {
    let k = kite().await;
    let flow = r#"id: html
namespace: dev
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ trigger.body }}"
triggers:
  - id: webhook
    type: io.kestra.plugin.core.trigger.Webhook
    key: page
    responseContentType: text/html
"#;
    assert_eq!(k.send(yaml("/api/v1/flows", flow)).await.0, StatusCode::OK);
    let request = Request::post("/api/v1/executions/webhook/dev/html/page")
        .body(Body::from("<script>alert(document.cookie)</script>"))
        .unwrap();
    let response = k.app.clone().oneshot(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    let h = response.headers();
    assert_eq!(h[header::CONTENT_TYPE], "text/html");
    assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.starts_with("sandbox"), "{csp}");
}

fn with_headers(mut request: Request<Body>, headers: &[(&str, &str)]) -> Request<Body> {
    for (name, value) in headers {
        request.headers_mut().insert(
            header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    request
}

#[tokio::test]
async fn cross_site_browser_requests_cannot_change_anything() {
    let k = kite().await;
    let execute = "/api/v1/executions/dev/hello-world";
    for headers in [
        &[("sec-fetch-site", "cross-site")][..],
        &[("sec-fetch-site", "same-site")],
        &[("host", "localhost:8080"), ("origin", "http://evil.example")],
        &[("host", "localhost:8080"), ("origin", "null")],
    ] {
        let (status, e) = k.send(with_headers(post(execute), headers)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{headers:?}: {e}");
        assert_kestra_error(&e, execute);
        let source = with_headers(yaml("/api/v1/flows", HELLO), headers);
        assert_eq!(k.send(source).await.0, StatusCode::FORBIDDEN, "{headers:?}");
    }
    // The UI (same origin), clients that are not browsers, reads and webhooks pass.
    for headers in [
        &[
            ("sec-fetch-site", "same-origin"),
            ("origin", "http://localhost:8080"),
        ][..],
        &[("host", "localhost:8080"), ("origin", "http://localhost:8080")],
        &[
            ("host", "10.0.0.5:8080"),
            ("x-forwarded-host", "kite.example"),
            ("origin", "https://kite.example"),
        ],
        &[],
    ] {
        let (status, e) = k.send(with_headers(post(execute), headers)).await;
        assert_eq!(status, StatusCode::OK, "{headers:?}: {e}");
    }
    let cross = [("sec-fetch-site", "cross-site")];
    let (status, _) = k.send(with_headers(get("/api/v1/flows/search"), &cross)).await;
    assert_eq!(status, StatusCode::OK);
    let hook = with_headers(
        post("/api/v1/executions/webhook/dev/hello-world/test1234"),
        &cross,
    );
    assert_eq!(k.send(hook).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_flow_source_is_sent_as_yaml_or_json() {
    let k = kite().await;
    let send = |content_type: Option<&str>, body: &str| {
        let mut request = Request::put("/api/v1/flows/dev/hello-world");
        if let Some(t) = content_type {
            request = request.header(header::CONTENT_TYPE, t);
        }
        request.body(Body::from(body.to_string())).unwrap()
    };
    for refused in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let (status, e) = k.send(send(refused, HELLO)).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{refused:?}: {e}");
        assert!(
            e["message"].as_str().unwrap().contains("application/x-yaml"),
            "{e}"
        );
        let mut create = yaml("/api/v1/flows", HELLO);
        match refused {
            Some(t) => create
                .headers_mut()
                .insert(header::CONTENT_TYPE, t.parse().unwrap()),
            None => create.headers_mut().remove(header::CONTENT_TYPE),
        };
        assert_eq!(k.send(create).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    let json = r#"{"id": "hello-world", "namespace": "dev", "tasks": [{"id": "t", "type": "io.kestra.plugin.core.log.Log", "message": "hi"}]}"#;
    for (accepted, body) in [
        ("application/x-yaml; charset=utf-8", HELLO),
        ("application/yaml", HELLO),
        ("text/yaml", HELLO),
        ("application/json", json),
    ] {
        let (status, e) = k.send(send(Some(accepted), body)).await;
        assert_eq!(status, StatusCode::OK, "{accepted}: {e}");
    }
}

/// Past the bound on creations in progress, creating an execution (API or webhook) is
/// answered 503 at once with `Retry-After: 1` and Kestra's error shape; the places come
/// back when the creations in progress end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creations_beyond_the_bound_are_answered_503_at_once() {
    let k = kite_on(
        "http://localhost:8080",
        AuthConfig::default(),
        1024,
        None,
        false,
        2,
    )
    .await;
    let uri = "/api/v1/executions/dev/hello-world";
    // Two creations whose bodies are still arriving hold both places.
    let mut held = Vec::new();
    for _ in 0..2 {
        let (tx, rx) = tokio::sync::mpsc::channel::<axum::body::Bytes>(1);
        let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
        });
        let request = Request::post(uri)
            .header(header::CONTENT_TYPE, "multipart/form-data; boundary=kiteboundary")
            .body(Body::from_stream(chunks))
            .unwrap();
        tx.send("--kiteboundary\r\nContent-Disposition: form-data; name=\"greeting\"\r\n\r\n".into())
            .await
            .unwrap();
        let app = k.app.clone();
        let answer = tokio::spawn(async move { app.oneshot(request).await.expect("response") });
        // Taken once the handler read the first chunk: the request is past admission.
        tx.send("held\r\n".into()).await.unwrap();
        held.push((tx, answer));
    }
    let refused: Vec<_> = (0..20)
        .map(|i| {
            let app = k.app.clone();
            let request = if i % 2 == 0 {
                post(uri)
            } else {
                post("/api/v1/executions/webhook/dev/hello-world/test1234")
            };
            tokio::spawn(async move {
                let started = tokio::time::Instant::now();
                let response = app.oneshot(request).await.expect("response");
                (started.elapsed(), response)
            })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    for r in refused {
        let (took, response) = r.await.unwrap();
        slowest = slowest.max(took);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let body: Value = serde_json::from_slice(
            &axum::body::to_bytes(response.into_body(), 64 * 1024)
                .await
                .unwrap(),
        )
        .unwrap();
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with("Service unavailable"),
            "{body}"
        );
        assert!(body["_links"]["self"]["href"].is_string(), "{body}");
    }
    println!("20 refused creations, the slowest answered in {slowest:?}");
    // Other routes are not bounded.
    assert_eq!(
        k.send(get("/api/v1/flows/dev/hello-world")).await.0,
        StatusCode::OK
    );

    for (tx, answer) in held {
        tx.send("--kiteboundary--\r\n".into()).await.unwrap();
        drop(tx);
        let response = answer.await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let (status, created) = k.send(post(uri)).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(
        k.send(post("/api/v1/executions/webhook/dev/hello-world/test1234"))
            .await
            .0,
        StatusCode::OK
    );
}

fn kv_put(uri: &str, body: &str, ttl: Option<&str>) -> Request<Body> {
    let mut request = Request::put(uri).header(header::CONTENT_TYPE, "application/json");
    if let Some(ttl) = ttl {
        request = request.header("ttl", ttl).header("description", "short-lived");
    }
    request.body(Body::from(body.to_string())).unwrap()
}

#[tokio::test]
async fn kv_routes_list_get_put_and_delete() {
    let kite = kite().await;
    let (status, _) = kite
        .send(kv_put("/api/v1/namespaces/dev/kv/answer", "42", None))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = kite
        .send(kv_put(
            "/api/v1/main/namespaces/dev/kv/greeting",
            "hello",
            Some("PT1H"),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    kite.send(kv_put("/api/v1/namespaces/dev/kv/doc", r#"{"a": [1]}"#, None))
        .await;

    let (status, body) = kite.send(get("/api/v1/namespaces/dev/kv/answer")).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, serde_json::json!({"type": "NUMBER", "value": 42}))
    );
    let (_, body) = kite.send(get("/api/v1/main/namespaces/dev/kv/greeting")).await;
    assert_eq!(body, serde_json::json!({"type": "STRING", "value": "hello"}));
    let (_, body) = kite.send(get("/api/v1/namespaces/dev/kv/doc")).await;
    assert_eq!(body["type"], "JSON");

    let (status, list) = kite.send(get("/api/v1/namespaces/dev/kv")).await;
    assert_eq!(status, StatusCode::OK);
    let keys: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["answer", "doc", "greeting"]);
    assert_eq!(list[2]["description"], "short-lived");
    assert!(list[2]["expirationDate"].is_string() && list[0]["creationDate"].is_string());

    let delete = |uri: &str| Request::delete(uri).body(Body::empty()).unwrap();
    assert_eq!(
        kite.send(delete("/api/v1/namespaces/dev/kv/answer")).await.1,
        serde_json::json!(true)
    );
    assert_eq!(
        kite.send(delete("/api/v1/namespaces/dev/kv/answer")).await.1,
        serde_json::json!(false)
    );
    let (status, body) = kite.send(get("/api/v1/namespaces/dev/kv/answer")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("No value found for key 'answer' in namespace 'dev'"),
        "{body}"
    );
    let (status, body) = kite.send(get("/api/v1/namespaces/dev/kv/_bad")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = kite
        .send(kv_put("/api/v1/namespaces/dev/kv/x", "1", Some("soon")))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn kv_routes_need_credentials() {
    let auth = AuthConfig {
        basic: None,
        token: Some("t0k3n".into()),
    };
    let kite = kite_with(auth, 1024).await;
    let (status, _) = kite.send(get("/api/v1/namespaces/dev/kv")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
