//! The HTTP API against the real embedded store (SQLite in a temp folder) and
//! workers: Kestra's routes, shapes and status codes.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use kite_api::{router, ApiState, AuthConfig};
use kite_engine::EngineConfig;
use kite_local::{open_engine, Runtime};
use serde_json::Value;
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

struct Kite {
    app: Router,
    _runtime: Runtime,
    _dir: tempfile::TempDir,
}

async fn kite_with(auth: AuthConfig, max_upload: u64) -> Kite {
    kite_at("http://localhost:8080", auth, max_upload).await
}

async fn kite_at(base_url: &str, auth: AuthConfig, max_upload: u64) -> Kite {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = open_engine(dir.path(), EngineConfig::default()).expect("engine");
    let runtime = Runtime::start(engine.clone(), 2).await.expect("runtime");
    let app = router(ApiState {
        engine,
        base_url: base_url.into(),
        auth: auth.clone(),
        max_upload,
    });
    let credentials = auth.basic.clone();
    let kite = Kite {
        app,
        _runtime: runtime,
        _dir: dir,
    };
    for flow in [HELLO, FILES] {
        let mut request = yaml("/api/v1/flows", flow);
        if let Some((user, password)) = &credentials {
            use base64::Engine as _;
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            request
                .headers_mut()
                .insert(header::AUTHORIZATION, format!("Basic {token}").parse().unwrap());
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

    /// Polls the execution (at most 2 s) until it reaches `want`; returns the last state seen.
    async fn wait_for_state(&self, id: &str, want: &str) -> Value {
        let mut state = Value::Null;
        for _ in 0..100 {
            state = self.send(get(&format!("/api/v1/executions/{id}"))).await.1["state"]["current"].clone();
            if state == want {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        state
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

/// Waits (bounded) for an execution to reach a terminal state; returns its JSON.
async fn finished(k: &Kite, id: &str) -> Value {
    for _ in 0..200 {
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
    let follow = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        k.send(get(&format!("/api/v1/executions/{id}/follow"))),
    )
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
    let slow = "id: slow\nnamespace: dev\ntasks:\n  - id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT30S\n";
    assert_eq!(k.send(yaml("/api/v1/flows", slow)).await.0, StatusCode::OK);
    let bounded = |mut request: Request<Body>, seconds: u64| {
        let at = tokio::time::Instant::now() + std::time::Duration::from_secs(seconds);
        request.extensions_mut().insert(AnswerBy(at));
        request
    };

    let (status, execution) = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        k.send(bounded(post("/api/v1/executions/dev/slow?wait=true"), 1)),
    )
    .await
    .expect("wait=true answers by the deadline");
    assert_eq!(status, StatusCode::OK, "{execution}");
    assert_eq!(execution["state"]["current"], "RUNNING", "{execution}");
    let id = execution["id"].as_str().unwrap().to_string();

    // Nothing changes before the deadline: the current state, then the reconnection hint.
    let (status, text) = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        k.send(bounded(get(&format!("/api/v1/executions/{id}/follow")), 1)),
    )
    .await
    .expect("follow ends by the deadline");
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap().to_string();
    assert_eq!(text.matches("id: progress").count(), 1, "{text}");
    assert!(text.contains("retry:"), "{text}");

    // A change before the deadline ends the answer at once, with that change.
    let follow = k.send(bounded(get(&format!("/api/v1/executions/{id}/follow")), 60));
    let kill = async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let kill = Request::delete(format!("/api/v1/executions/{id}/kill"))
            .body(Body::empty())
            .unwrap();
        k.send(kill).await
    };
    let ((status, text), (killed, _)) = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        tokio::join!(follow, kill)
    })
    .await
    .expect("follow answers the first change");
    assert_eq!(killed, StatusCode::ACCEPTED);
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap().to_string();
    assert_eq!(
        text.matches("data:").count(),
        2,
        "the state, then its first change: {text}"
    );
}
