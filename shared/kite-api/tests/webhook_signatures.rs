//! Signed SaaS webhooks over the local engine: each preset accepts what its provider
//! signs, refuses (401, nothing stored) what it does not, answers handshakes without an
//! execution, and maps a retried delivery to the execution it created first.

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use kite_api::{router, ApiState, AuthConfig};
use kite_engine::ports::{SecretError, SecretStore};
use kite_engine::{Engine, EngineConfig};
use kite_local::{local_ports, Runtime};
use serde_json::Value;
use sha2::Sha256;
use tower::ServiceExt;

const FLOW: &str = r#"id: saas
namespace: dev
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ trigger.body }}"
triggers:
  - id: github
    type: io.kestra.plugin.core.trigger.Webhook
    key: github
    signature:
      preset: GITHUB
      secret: "{{ secret('GITHUB_WEBHOOK_SECRET') }}"
  - id: stripe
    type: io.kestra.plugin.core.trigger.Webhook
    key: stripe
    signature:
      preset: STRIPE
      secret: "{{ secret('STRIPE_WEBHOOK_SECRET') }}"
  - id: slack
    type: io.kestra.plugin.core.trigger.Webhook
    key: slack
    signature:
      preset: SLACK
      secret: slack-signing-secret
  - id: shopify
    type: io.kestra.plugin.core.trigger.Webhook
    key: shopify
    signature:
      preset: SHOPIFY
      secret: shopify-secret
  - id: graph
    type: io.kestra.plugin.core.trigger.Webhook
    key: graph
    signature:
      preset: MICROSOFT_GRAPH
      secret: graph-client-state
  - id: unset
    type: io.kestra.plugin.core.trigger.Webhook
    key: unset
    signature:
      preset: GITHUB
      secret: "{{ secret('NOT_CONFIGURED') }}"
"#;

const GITHUB_SECRET: &str = "It's a Secret to Everybody";
const STRIPE_SECRET: &str = "whsec_test";

struct TestSecrets;

#[async_trait]
impl SecretStore for TestSecrets {
    async fn fetch(&self, name: &str) -> Result<String, SecretError> {
        match name {
            "GITHUB_WEBHOOK_SECRET" => Ok(GITHUB_SECRET.into()),
            "STRIPE_WEBHOOK_SECRET" => Ok(STRIPE_SECRET.into()),
            _ => Err(SecretError::NotFound(name.into())),
        }
    }
}

struct Kite {
    app: Router,
    _runtime: Runtime,
    _dir: tempfile::TempDir,
}

async fn kite() -> Kite {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ports = local_ports(dir.path()).expect("ports");
    ports.secrets = Arc::new(TestSecrets);
    let engine = Engine::new(ports, EngineConfig::default());
    let runtime = Runtime::start(engine.clone(), 2).await.expect("runtime");
    let app = router(ApiState {
        engine,
        base_url: "http://localhost:8080".into(),
        auth: AuthConfig::default(),
        max_upload: 1024 * 1024,
        inline_download_limit: None,
        creations: kite_api::Admissions::new(256),
        limits: kite_api::RequestLimits::default(),
    });
    let kite = Kite {
        app,
        _runtime: runtime,
        _dir: dir,
    };
    let deploy = Request::post("/api/v1/flows")
        .header(header::CONTENT_TYPE, "application/x-yaml")
        .body(Body::from(FLOW))
        .expect("request");
    let (status, body) = kite.send(deploy).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    kite
}

/// (status, content type, body as JSON or text)
type Answer = (StatusCode, String, Value);

impl Kite {
    async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let (status, _, body) = self.answer(request).await;
        (status, body)
    }

    async fn answer(&self, request: Request<Body>) -> Answer {
        let response = self.app.clone().oneshot(request).await.expect("response");
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let bytes = axum::body::to_bytes(response.into_body(), 1024 * 1024)
            .await
            .expect("body");
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, content_type, body)
    }

    async fn hook(&self, key: &str, query: &str, headers: &[(&str, String)], body: &[u8]) -> Answer {
        let mut request = Request::post(format!("/api/v1/executions/webhook/dev/saas/{key}{query}"))
            .header(header::CONTENT_TYPE, "application/json");
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        self.answer(request.body(Body::from(body.to_vec())).expect("request"))
            .await
    }

    /// The log messages of an execution, once it has at least `count` of them.
    async fn logs(&self, id: &str, count: usize) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let request = Request::get(format!("/api/v1/logs/{id}")).body(Body::empty());
            let (_, _, logs) = self.answer(request.expect("request")).await;
            let messages: Vec<String> = logs
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| l["message"].as_str().map(str::to_string))
                .collect();
            if messages.len() >= count || tokio::time::Instant::now() >= deadline {
                return messages;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Executions stored for the flow: a refused request must leave this unchanged.
    async fn executions(&self) -> u64 {
        let request = Request::get("/api/v1/executions/search?namespace=dev&flowId=saas")
            .body(Body::empty())
            .expect("request");
        let (status, body) = self.send(request).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["total"].as_u64().unwrap_or(u64::MAX)
    }
}

fn sign(secret: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn assert_refused(answer: Answer) {
    let (status, _, body) = answer;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["message"], "Unauthorized: Invalid webhook signature");
}

#[tokio::test]
async fn github_documented_vector_verifies_and_a_redelivery_opens_no_second_execution() {
    let k = kite().await;
    // GitHub's documented test vector.
    let signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    let headers = |sig: &str, delivery: &str| {
        vec![
            ("X-Hub-Signature-256", sig.to_string()),
            ("X-GitHub-Delivery", delivery.to_string()),
        ]
    };
    let (status, _, first) = k
        .hook("github", "", &headers(signature, "d-1"), b"Hello, World!")
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["trigger"]["variables"]["body"], "Hello, World!");
    let (status, _, again) = k
        .hook("github", "", &headers(signature, "d-1"), b"Hello, World!")
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["id"], first["id"]);
    assert_eq!(k.executions().await, 1);

    assert_refused(
        k.hook("github", "", &headers(signature, "d-2"), b"Hello, World?")
            .await,
    );
    let other_secret = format!("sha256={}", hex(&sign("not the secret", &[b"Hello, World!"])));
    assert_refused(
        k.hook("github", "", &headers(&other_secret, "d-3"), b"Hello, World!")
            .await,
    );
    assert_refused(
        k.hook(
            "github",
            "",
            &[("X-GitHub-Delivery", "d-4".into())],
            b"Hello, World!",
        )
        .await,
    );
    // A flow whose secret is not configured refuses everything rather than accept unsigned.
    assert_refused(
        k.hook("unset", "", &headers(signature, "d-5"), b"Hello, World!")
            .await,
    );
    assert_eq!(k.executions().await, 1);
}

#[tokio::test]
async fn stripe_signed_events_within_the_tolerance_once_per_event_id() {
    let k = kite().await;
    let body = br#"{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","type":"payment_intent.succeeded"}"#;
    let stripe = |t: i64, secret: &str| {
        let mac = sign(secret, &[t.to_string().as_bytes(), b".", body]);
        vec![("Stripe-Signature", format!("t={t},v1={}", hex(&mac)))]
    };
    let (status, _, first) = k.hook("stripe", "", &stripe(now(), STRIPE_SECRET), body).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    // Stripe retries the same event with a fresh timestamp and signature.
    let (_, _, again) = k
        .hook("stripe", "", &stripe(now() + 1, STRIPE_SECRET), body)
        .await;
    assert_eq!(again["id"], first["id"]);
    assert_refused(
        k.hook("stripe", "", &stripe(now() - 301, STRIPE_SECRET), body)
            .await,
    );
    assert_refused(k.hook("stripe", "", &stripe(now(), "whsec_other"), body).await);
    let tampered = br#"{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","type":"payment_intent.failed"}"#;
    assert_refused(
        k.hook("stripe", "", &stripe(now(), STRIPE_SECRET), tampered)
            .await,
    );
    assert_eq!(k.executions().await, 1);
}

#[tokio::test]
async fn slack_answers_its_challenge_and_checks_its_timestamp() {
    let k = kite().await;
    let slack = |t: i64, body: &[u8]| {
        let mac = sign(
            "slack-signing-secret",
            &[b"v0:", t.to_string().as_bytes(), b":", body],
        );
        vec![
            ("X-Slack-Request-Timestamp", t.to_string()),
            ("X-Slack-Signature", format!("v0={}", hex(&mac))),
        ]
    };
    let challenge = br#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let (status, content_type, answer) = k.hook("slack", "", &slack(now(), challenge), challenge).await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    assert_eq!(answer, "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P");
    assert_refused(k.hook("slack", "", &[], challenge).await);
    assert_eq!(k.executions().await, 0);

    let event = br#"{"type":"event_callback","event_id":"Ev08MFMKH6","event":{"type":"app_mention"}}"#;
    let (status, _, first) = k.hook("slack", "", &slack(now(), event), event).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (_, _, again) = k.hook("slack", "", &slack(now(), event), event).await;
    assert_eq!(again["id"], first["id"]);
    assert_refused(k.hook("slack", "", &slack(now() - 301, event), event).await);
    assert_eq!(k.executions().await, 1);
}

#[tokio::test]
async fn shopify_base64_signatures() {
    let k = kite().await;
    let body = br#"{"id":820982911946154500,"email":"jon@example.com"}"#;
    let shopify = |secret: &str, id: &str| {
        let mac = sign(secret, &[body]);
        vec![
            (
                "X-Shopify-Hmac-Sha256",
                base64::engine::general_purpose::STANDARD.encode(mac),
            ),
            ("X-Shopify-Webhook-Id", id.to_string()),
        ]
    };
    let (status, _, first) = k
        .hook("shopify", "", &shopify("shopify-secret", "w-1"), body)
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (_, _, again) = k
        .hook("shopify", "", &shopify("shopify-secret", "w-1"), body)
        .await;
    assert_eq!(again["id"], first["id"]);
    assert_refused(k.hook("shopify", "", &shopify("wrong", "w-2"), body).await);
    assert_eq!(k.executions().await, 1);
}

#[tokio::test]
async fn microsoft_graph_validation_tokens_are_echoed_and_client_state_checked() {
    let k = kite().await;
    let (status, content_type, answer) = k
        .hook(
            "graph",
            "?validationToken=Validation%3A%20Testing%20client%20application",
            &[],
            b"",
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    assert_eq!(answer, "Validation: Testing client application");
    assert_eq!(k.executions().await, 0);
    let notification = |state: &str| {
        format!(
            r#"{{"value":[{{"subscriptionId":"s-1","clientState":"{state}","changeType":"created","resource":"Users/1"}}]}}"#
        )
    };
    let (status, _, body) = k
        .hook("graph", "", &[], notification("graph-client-state").as_bytes())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_refused(k.hook("graph", "", &[], notification("forged").as_bytes()).await);
    assert_eq!(k.executions().await, 1);
}

/// The example flow of `flows/`, signed as GitHub signs a push.
#[tokio::test]
async fn the_github_push_example_runs_once_per_signed_push() {
    let k = kite().await;
    let deploy = Request::post("/api/v1/flows")
        .header(header::CONTENT_TYPE, "application/x-yaml")
        .body(Body::from(include_str!("../../../flows/dev/github-push.yaml")))
        .expect("request");
    let (status, body) = k.send(deploy).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let push = br#"{"ref":"refs/heads/main","after":"6113728f27ae82c7b1a177c8d03f9e96e0adf246","repository":{"full_name":"octo/hello"},"pusher":{"name":"octocat"}}"#;
    let call = |event: &str, secret: &str| {
        let signature = format!("sha256={}", hex(&sign(secret, &[push])));
        Request::post("/api/v1/executions/webhook/dev/github-push/github-push")
            .header(header::CONTENT_TYPE, "application/json")
            .header("X-GitHub-Event", event)
            .header("X-GitHub-Delivery", "9a6e6d3c-1f2b-11ef-8a1e-6b1c3d2e4f50")
            .header("X-Hub-Signature-256", signature)
            .body(Body::from(push.to_vec()))
            .expect("request")
    };
    assert_eq!(
        k.send(call("ping", GITHUB_SECRET)).await.0,
        StatusCode::NO_CONTENT
    );
    let (status, _, refused) = k.answer(call("push", "guessed")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    let (status, execution) = k.send(call("push", GITHUB_SECRET)).await;
    assert_eq!(status, StatusCode::OK, "{execution}");
    let id = execution["id"].as_str().unwrap_or_default().to_string();
    let (_, again) = k.send(call("push", GITHUB_SECRET)).await;
    assert_eq!(again["id"], execution["id"]);
    let logs = k.logs(&id, 1).await;
    assert_eq!(
        logs,
        vec!["octocat pushed 6113728f27ae82c7b1a177c8d03f9e96e0adf246 to refs/heads/main of octo/hello"]
    );
}

/// The Stripe example of `flows/`, signed as Stripe signs an event, retried by Stripe.
#[tokio::test]
async fn the_stripe_event_example_runs_once_per_signed_event() {
    let k = kite().await;
    let deploy = Request::post("/api/v1/flows")
        .header(header::CONTENT_TYPE, "application/x-yaml")
        .body(Body::from(include_str!("../../../flows/dev/stripe-event.yaml")))
        .expect("request");
    let (status, body) = k.send(deploy).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let event = br#"{"id":"evt_3Pq1","type":"payment_intent.succeeded","data":{"object":{"amount":2000,"currency":"eur"}}}"#;
    let call = |t: i64, secret: &str| {
        let mac = sign(secret, &[t.to_string().as_bytes(), b".", event]);
        Request::post("/api/v1/executions/webhook/dev/stripe-event/stripe")
            .header(header::CONTENT_TYPE, "application/json")
            .header("Stripe-Signature", format!("t={t},v1={}", hex(&mac)))
            .body(Body::from(event.to_vec()))
            .expect("request")
    };
    let (status, _, refused) = k.answer(call(now(), "whsec_guessed")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    let (status, execution) = k.send(call(now(), STRIPE_SECRET)).await;
    assert_eq!(status, StatusCode::OK, "{execution}");
    let (_, again) = k.send(call(now() + 60, STRIPE_SECRET)).await;
    assert_eq!(again["id"], execution["id"]);
    let id = execution["id"].as_str().unwrap_or_default();
    assert_eq!(
        k.logs(id, 2).await,
        vec!["payment_intent.succeeded evt_3Pq1", "paid 2000 eur"]
    );
}

/// A webhook answers once its execution is stored: the tasks go on after the answer
/// (SaaS tools give up after a few seconds: Slack after 3).
#[tokio::test]
async fn a_signed_webhook_answers_before_its_tasks_run() {
    let k = kite().await;
    let flow = r#"
id: slow
namespace: dev
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT1H
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: slow
    signature:
      preset: GITHUB
      secret: "{{ secret('GITHUB_WEBHOOK_SECRET') }}"
"#;
    let deploy = Request::post("/api/v1/flows")
        .header(header::CONTENT_TYPE, "application/x-yaml")
        .body(Body::from(flow))
        .expect("request");
    assert_eq!(k.send(deploy).await.0, StatusCode::OK);
    let body = b"{}";
    let request = Request::post("/api/v1/executions/webhook/dev/slow/slow")
        .header(header::CONTENT_TYPE, "application/json")
        .header("X-GitHub-Delivery", "d-1")
        .header(
            "X-Hub-Signature-256",
            format!("sha256={}", hex(&sign(GITHUB_SECRET, &[body]))),
        )
        .body(Body::from(body.to_vec()))
        .expect("request");
    let (status, execution) = k.send(request).await;
    assert_eq!(status, StatusCode::OK, "{execution}");
    let state = execution["state"]["current"].as_str().unwrap_or_default();
    assert!(matches!(state, "CREATED" | "RUNNING"), "{execution}");
}
