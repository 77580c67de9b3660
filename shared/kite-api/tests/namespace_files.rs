//! The namespace files API against the embedded store and its local file storage:
//! Kestra's routes, `FileAttributes` shapes and status codes, under both route trees,
//! and `read('path')` of a flow reading what the API stored.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use kite_api::{router, ApiState, AuthConfig};
use kite_engine::{Engine, EngineConfig};
use kite_local::{local_ports, Runtime};
use serde_json::Value;
use tower::ServiceExt;

struct Kite {
    app: Router,
    _runtime: Runtime,
    _dir: tempfile::TempDir,
}

async fn kite() -> Kite {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = Engine::new(local_ports(dir.path()).expect("ports"), EngineConfig::default());
    let runtime = Runtime::start(engine.clone(), 2).await.expect("runtime");
    let app = router(ApiState {
        engine,
        base_url: "http://localhost:8080".into(),
        auth: AuthConfig::default(),
        max_upload: 1024,
        inline_download_limit: None,
        creations: kite_api::Admissions::new(kite_api::DEFAULT_MAX_CREATIONS),
        limits: kite_api::RequestLimits::default(),
    });
    Kite {
        app,
        _runtime: runtime,
        _dir: dir,
    }
}

impl Kite {
    async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.app.clone().oneshot(request).await.expect("response");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1024 * 1024)
            .await
            .expect("body");
        let json = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, json)
    }

    async fn call(&self, method: Method, uri: &str) -> (StatusCode, Value) {
        self.send(
            Request::builder()
                .method(method)
                .uri(uri)
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    async fn upload(&self, uri: &str, content: &str) -> (StatusCode, Value) {
        let boundary = "kiteboundary";
        let body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"fileContent\"; filename=\"f\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n{content}\r\n--{boundary}--\r\n"
        );
        self.send(
            Request::post(uri)
                .header(
                    header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }
}

const FILES: &str = "/api/v1/namespaces/company.team/files";

fn names(listing: &Value) -> Vec<(String, String)> {
    listing
        .as_array()
        .expect("a list")
        .iter()
        .map(|a| {
            (
                a["fileName"].as_str().unwrap().to_string(),
                a["type"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn files_are_stored_read_listed_and_described() {
    let k = kite().await;
    // Nothing yet: the root exists and is empty.
    let (status, root) = k.call(Method::GET, &format!("{FILES}/directory")).await;
    assert_eq!((status, root.clone()), (StatusCode::OK, serde_json::json!([])));
    let (status, stats) = k.call(Method::GET, &format!("{FILES}/stats")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats["type"], "Directory");

    for (path, content) in [
        ("/scripts/main.py", "print('hi')"),
        ("scripts/lib/util.py", "x = 1"),
        ("/hello.txt", "hello"),
    ] {
        let (status, e) = k.upload(&format!("{FILES}?path={path}"), content).await;
        assert_eq!(status, StatusCode::OK, "{path}: {e}");
    }
    // Content, under both route trees.
    for base in [FILES, "/api/v1/main/namespaces/company.team/files"] {
        let (status, body) = k
            .call(Method::GET, &format!("{base}?path=/scripts/main.py"))
            .await;
        assert_eq!((status, body), (StatusCode::OK, Value::from("print('hi')")));
    }
    // Replaced by a second upload.
    k.upload(&format!("{FILES}?path=/hello.txt"), "hello again").await;
    let (_, body) = k.call(Method::GET, &format!("{FILES}?path=hello.txt")).await;
    assert_eq!(body, "hello again");

    let (status, stats) = k
        .call(Method::GET, &format!("{FILES}/stats?path=/hello.txt"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats["fileName"], "hello.txt");
    assert_eq!(stats["type"], "File");
    assert_eq!(stats["size"], 11);
    let modified = stats["lastModifiedTime"].as_i64().expect("millis");
    let now = chrono::Utc::now().timestamp_millis();
    assert!((now - modified).abs() < 60_000, "{stats}");
    assert!(stats["creationTime"].as_i64().is_some(), "{stats}");
    let (_, stats) = k.call(Method::GET, &format!("{FILES}/stats?path=/scripts")).await;
    assert_eq!(
        (stats["fileName"].as_str(), stats["type"].as_str()),
        (Some("scripts"), Some("Directory"))
    );

    let (_, root) = k.call(Method::GET, &format!("{FILES}/directory")).await;
    assert_eq!(
        names(&root),
        [
            ("hello.txt".into(), "File".into()),
            ("scripts".into(), "Directory".into())
        ]
    );
    let (_, scripts) = k
        .call(Method::GET, &format!("{FILES}/directory?path=/scripts"))
        .await;
    assert_eq!(
        names(&scripts),
        [
            ("lib".into(), "Directory".into()),
            ("main.py".into(), "File".into())
        ]
    );
    assert_eq!(scripts[1]["size"], 11);
    // Another namespace sees none of them.
    let (_, other) = k
        .call(Method::GET, "/api/v1/namespaces/company/files/directory")
        .await;
    assert_eq!(other, serde_json::json!([]));
}

#[tokio::test]
async fn missing_files_bad_paths_and_refusals() {
    let k = kite().await;
    k.upload(&format!("{FILES}?path=/a.txt"), "a").await;
    let (status, e) = k.call(Method::GET, &format!("{FILES}?path=/none.txt")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{e}");
    assert_eq!(
        e["message"],
        "Not Found: File '/none.txt' was not found in namespace 'company.team'."
    );
    assert!(e["_links"]["self"]["href"].is_string(), "{e}");
    let (status, _) = k.call(Method::GET, &format!("{FILES}/stats?path=/none")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, e) = k
        .call(Method::GET, &format!("{FILES}/directory?path=/none"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{e}");
    for uri in [
        format!("{FILES}?path=../../dev/hello-world/x"),
        format!("{FILES}?path=/a/../../x"),
        format!("{FILES}/directory?path=.."),
        format!("{FILES}/stats?path=a%5Cb"),
    ] {
        let (status, e) = k.call(Method::GET, &uri).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{uri}: {e}");
    }
    let (status, _) = k.upload(&format!("{FILES}?path=../escape.txt"), "x").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, e) = k
        .upload("/api/v1/namespaces/bad..namespace/files?path=/x.txt", "x")
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    // Without a path: 400, as a missing required argument.
    let (status, _) = k.call(Method::GET, FILES).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Over the upload limit: 413, nothing stored.
    let (status, _) = k
        .upload(&format!("{FILES}?path=/big.bin"), &"x".repeat(2048))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _) = k.call(Method::GET, &format!("{FILES}?path=/big.bin")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The root cannot be deleted.
    let (status, _) = k.call(Method::DELETE, &format!("{FILES}?path=/")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn files_and_folders_move_and_are_deleted() {
    let k = kite().await;
    for path in ["/src/a.sql", "/src/sub/b.sql", "/other.txt"] {
        k.upload(&format!("{FILES}?path={path}"), path).await;
    }
    // A file.
    let (status, e) = k
        .call(
            Method::PUT,
            &format!("{FILES}?from=/other.txt&to=/moved/other.txt"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{e}");
    let (status, _) = k.call(Method::GET, &format!("{FILES}?path=/other.txt")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, body) = k
        .call(Method::GET, &format!("{FILES}?path=/moved/other.txt"))
        .await;
    assert_eq!(body, "/other.txt");
    // Onto something that exists: refused, nothing moved.
    let (status, e) = k
        .call(
            Method::PUT,
            &format!("{FILES}?from=/src/a.sql&to=/moved/other.txt"),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    assert_eq!(
        e["message"],
        "Illegal state: File '/moved/other.txt' already exists in namespace 'company.team'."
    );
    // A folder with everything under it; not into itself.
    let (status, _) = k
        .call(Method::PUT, &format!("{FILES}?from=/src&to=/src/inner"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = k.call(Method::PUT, &format!("{FILES}?from=/src&to=/lib")).await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = k.call(Method::GET, &format!("{FILES}?path=/lib/sub/b.sql")).await;
    assert_eq!(body, "/src/sub/b.sql");
    let (status, _) = k.call(Method::GET, &format!("{FILES}/directory?path=/src")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = k.call(Method::PUT, &format!("{FILES}?from=/none&to=/x")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Delete a file, then a folder; nothing there is no error.
    let (status, _) = k.call(Method::DELETE, &format!("{FILES}?path=/lib/a.sql")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = k.call(Method::GET, &format!("{FILES}?path=/lib/a.sql")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = k.call(Method::DELETE, &format!("{FILES}?path=/lib")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = k.call(Method::DELETE, &format!("{FILES}?path=/lib")).await;
    assert_eq!(status, StatusCode::OK);
    let (_, root) = k.call(Method::GET, &format!("{FILES}/directory")).await;
    assert_eq!(names(&root), [("moved".into(), "Directory".into())]);
}

#[tokio::test]
async fn a_flow_reads_its_namespace_files_by_path() {
    let k = kite().await;
    k.upload(&format!("{FILES}?path=/queries/q.sql"), "SELECT 42")
        .await;
    let flow = "id: reader\nnamespace: company.team\ntasks:\n  - id: query\n    type: io.kestra.plugin.core.debug.Return\n    format: \"{{ read('queries/q.sql') }}\"\n";
    let (status, e) = k
        .send(
            Request::post("/api/v1/flows")
                .header(header::CONTENT_TYPE, "application/x-yaml")
                .body(Body::from(flow))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{e}");
    let (status, execution) = k
        .call(Method::POST, "/api/v1/executions/company.team/reader?wait=true")
        .await;
    assert_eq!(status, StatusCode::OK, "{execution}");
    assert_eq!(execution["state"]["current"], "SUCCESS", "{execution}");
    assert_eq!(
        execution["taskRunList"][0]["outputs"]["value"], "SELECT 42",
        "{execution}"
    );
}
