//! Fuzz target of the multipart reader of execution creation: arbitrary
//! `multipart/form-data` requests (boundaries, cut parts, huge headers, duplicate
//! names, parts without Content-Disposition, files for inputs that are not FILE,
//! bodies split in odd chunks, random bytes) sent through the router with the local
//! adapters, one router for the whole run.
//!
//! Property: every request is answered with an HTTP status and a JSON body, never a
//! 500 (a panic in a handler answers 500), within a bounded time.
//!
//! `PROPTEST_CASES` sets the number of generated cases.

use std::sync::OnceLock;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::Router;
use kite_api::{router, ApiState, AuthConfig};
use kite_engine::{Engine, EngineConfig};
use kite_local::local_ports;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use serde_json::Value;
use tower::ServiceExt;

/// Cases by default: well under a minute in a debug build on two cores.
const DEFAULT_CASES: u32 = 5_000;

/// What one request may take before the case fails (a hang, not a measure of speed).
const CASE_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest upload accepted, small so that oversized files are cheap to send.
const MAX_UPLOAD: u64 = 64 * 1024;

fn config() -> Config {
    // The case count comes from `PROPTEST_CASES` when set.
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let defaults = Config::default();
    // The same cases on every run unless `PROPTEST_RNG_SEED` asks for others.
    let rng_seed = match std::env::var("PROPTEST_RNG_SEED") {
        Ok(_) => defaults.rng_seed,
        Err(_) => proptest::test_runner::RngSeed::Fixed(0x6b69_7465_2d6d_7066),
    };
    Config {
        cases,
        rng_seed,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/proptest-regressions/fuzz_multipart.txt",
        ))),
        ..defaults
    }
}

/// Optional inputs of several types, two of them FILE: most requests can succeed.
const OPEN: &str = r#"id: open
namespace: dev
inputs:
  - id: text
    type: STRING
    required: false
  - id: count
    type: INT
    required: false
  - id: doc
    type: FILE
    required: false
  - id: other
    type: FILE
    required: false
  - id: choice
    type: MULTISELECT
    values: [a, b]
    required: false
  - id: data
    type: JSON
    required: false
  - id: pass
    type: SECRET
    required: false
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ inputs.text ?? 'none' }}"
"#;

/// Required inputs: most requests are refused.
const STRICT: &str = r#"id: strict
namespace: dev
inputs:
  - id: text
    type: STRING
    validator: "[a-z]+"
  - id: doc
    type: FILE
  - id: when
    type: DATETIME
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ inputs.text }}"
"#;

const NAMES: &[&str] = &[
    "text",
    "count",
    "doc",
    "other",
    "choice",
    "data",
    "pass",
    "files",
    "when",
    "undeclared",
    "",
    "a\"b",
    "tëxt",
    "labels",
];

/// The router on the local adapters (SQLite and files in a temporary folder), its
/// runtime, and the folder, made once for the whole run. No workers run: executions
/// are created, never run.
struct Kite {
    runtime: tokio::runtime::Runtime,
    app: Router,
    _dir: tempfile::TempDir,
}

fn kite() -> &'static Kite {
    static KITE: OnceLock<Kite> = OnceLock::new();
    KITE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let dir = tempfile::tempdir().expect("a temporary folder");
        let app = runtime.block_on(async {
            let ports = local_ports(dir.path()).expect("ports");
            let engine = Engine::new(ports, EngineConfig::default());
            let app = router(ApiState {
                engine,
                base_url: "http://127.0.0.1:8080".into(),
                auth: AuthConfig::default(),
                max_upload: MAX_UPLOAD,
                inline_download_limit: None,
                creations: kite_api::Admissions::new(kite_api::DEFAULT_MAX_CREATIONS),
                limits: kite_api::RequestLimits::default(),
            });
            for flow in [OPEN, STRICT] {
                let request = Request::post("/api/v1/flows")
                    .header(header::CONTENT_TYPE, "application/x-yaml")
                    .body(Body::from(flow))
                    .expect("a request");
                let response = app.clone().oneshot(request).await.expect("an answer");
                assert_eq!(response.status(), StatusCode::OK);
            }
            app
        });
        Kite {
            runtime,
            app,
            _dir: dir,
        }
    })
}

// ---------------------------------------------------------------------------------
// multipart requests

#[derive(Debug, Clone)]
struct Part {
    /// Header lines, without line ends.
    headers: Vec<String>,
    content: Vec<u8>,
}

#[derive(Debug, Clone)]
struct Multipart {
    content_type: Vec<u8>,
    boundary: String,
    preamble: Vec<u8>,
    parts: Vec<Part>,
    /// Line end of the framing: `\r\n`, or a bare `\n`.
    crlf: bool,
    closed: bool,
    /// Keeps this many bytes of the body, when set.
    cut: Option<prop::sample::Index>,
    /// Sizes of the chunks the body is sent in.
    chunks: Vec<usize>,
    flow: &'static str,
    path_suffix: &'static str,
}

fn boundary() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("kiteboundary".to_string()),
        1 => Just("a".to_string()),
        1 => Just("-".to_string()),
        1 => Just("----WebKitFormBoundary7MA4YWxkTrZu0gW".to_string()),
        1 => Just("x".repeat(70)),
        1 => Just("x".repeat(300)),
        1 => Just("with space".to_string()),
        1 => Just("'()+_,-./:=?".to_string()),
        1 => "[a-zA-Z0-9'()+_,./:=? -]{1,20}",
    ]
}

fn content_type(boundary: String) -> impl Strategy<Value = Vec<u8>> {
    let b = boundary;
    prop_oneof![
        6 => Just(format!("multipart/form-data; boundary={b}")),
        2 => Just(format!("multipart/form-data; boundary=\"{b}\"")),
        1 => Just(format!("MULTIPART/FORM-DATA;BOUNDARY={b}")),
        1 => Just(format!("multipart/form-data; charset=utf-8; boundary={b}")),
        1 => Just(format!("multipart/form-data; boundary={b}; boundary=other")),
        1 => Just("multipart/form-data".to_string()),
        1 => Just("multipart/form-data; boundary=".to_string()),
        1 => Just("multipart/form-data; boundary=\"".to_string()),
        1 => Just(format!("multipart/mixed; boundary={b}")),
        1 => Just(format!("multipart/form-data; boundary={b}\u{e9}")),
    ]
    .prop_map(String::into_bytes)
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(NAMES).prop_map(str::to_string),
        1 => "[^\"\r\n]{0,12}",
        1 => Just("x".repeat(5000)),
    ]
}

fn filename() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a.txt".to_string()),
        Just("doc".to_string()),
        Just("other".to_string()),
        Just("../../etc/passwd".to_string()),
        Just("..".to_string()),
        Just("".to_string()),
        Just("C:\\x\\y.txt".to_string()),
        Just("a:b\u{1}.txt".to_string()),
        Just("f".repeat(300)),
        Just("f".repeat(5000)),
        "[^\"\r\n]{0,12}",
    ]
}

fn disposition() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        3 => name().prop_map(|n| Some(format!("Content-Disposition: form-data; name=\"{n}\""))),
        3 => (name(), filename()).prop_map(|(n, f)| {
            Some(format!("Content-Disposition: form-data; name=\"{n}\"; filename=\"{f}\""))
        }),
        1 => name().prop_map(|n| Some(format!("content-disposition: form-data; name={n}"))),
        1 => (name(), filename()).prop_map(|(n, f)| {
            Some(format!("Content-Disposition: form-data; name=\"{n}\"; filename*=UTF-8''{f}"))
        }),
        1 => Just(Some("Content-Disposition: form-data".to_string())),
        1 => Just(Some("Content-Disposition: attachment; filename=\"a.txt\"".to_string())),
        1 => Just(Some("Content-Disposition: form-data; name=\"a\\\"b\"; name=\"c\"".to_string())),
        1 => Just(Some("Content-Disposition: form-data; name=\"unterminated".to_string())),
        1 => Just(None),
    ]
}

fn extra_header() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Content-Type: text/plain".to_string()),
        Just("Content-Type: application/octet-stream".to_string()),
        Just("Content-Type: ".to_string()),
        Just("Content-Transfer-Encoding: base64".to_string()),
        Just("X-Huge: ".to_string() + &"h".repeat(16 * 1024)),
        Just("X-Huge: ".to_string() + &"h".repeat(200 * 1024)),
        Just("no colon here".to_string()),
        Just(": empty name".to_string()),
        "[a-zA-Z-]{1,10}: [ -~]{0,20}",
    ]
}

fn content() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => "[a-z0-9 ]{0,12}".prop_map(String::into_bytes),
        1 => Just(b"42".to_vec()),
        1 => Just(b"[\"a\", \"b\"]".to_vec()),
        1 => Just(b"{\"k\": [1, 2]}".to_vec()),
        1 => Just(b"2024-01-01T00:00:00Z".to_vec()),
        1 => Just(Vec::new()),
        1 => Just(b"\r\n--kiteboundary\r\n".to_vec()),
        1 => Just(b"--kiteboundary--".to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => Just(vec![b'x'; MAX_UPLOAD as usize + 1]),
        1 => Just(vec![b'y'; 1024 * 1024 + 1]),
    ]
}

fn part() -> impl Strategy<Value = Part> {
    (
        disposition(),
        prop::collection::vec(extra_header(), 0..3),
        any::<bool>(),
        content(),
    )
        .prop_map(|(disposition, extra, first, content)| {
            let mut headers = extra;
            if let Some(d) = disposition {
                if first {
                    headers.insert(0, d);
                } else {
                    headers.push(d);
                }
            }
            Part { headers, content }
        })
}

fn multipart() -> impl Strategy<Value = Multipart> {
    boundary().prop_flat_map(|b| {
        (
            content_type(b.clone()),
            Just(b),
            prop_oneof![3 => Just(Vec::new()), 1 => prop::collection::vec(any::<u8>(), 0..16)],
            prop::collection::vec(part(), 0..6),
            prop::bool::weighted(0.9),
            prop::bool::weighted(0.85),
            prop::option::weighted(0.2, any::<prop::sample::Index>()),
            prop::collection::vec(1usize..200, 0..4),
            prop::sample::select(&["open", "strict", "missing"][..]),
            prop::sample::select(&["", "?wait=false", "?labels=a:b", "?scheduleDate=x"][..]),
        )
            .prop_map(
                |(content_type, boundary, preamble, parts, crlf, closed, cut, chunks, flow, path_suffix)| {
                    Multipart {
                        content_type,
                        boundary,
                        preamble,
                        parts,
                        crlf,
                        closed,
                        cut,
                        chunks,
                        flow,
                        path_suffix,
                    }
                },
            )
    })
}

impl Multipart {
    fn body(&self) -> Vec<u8> {
        let nl: &[u8] = if self.crlf { b"\r\n" } else { b"\n" };
        let mut body = self.preamble.clone();
        for part in &self.parts {
            body.extend_from_slice(format!("--{}", self.boundary).as_bytes());
            body.extend_from_slice(nl);
            for h in &part.headers {
                body.extend_from_slice(h.as_bytes());
                body.extend_from_slice(nl);
            }
            body.extend_from_slice(nl);
            body.extend_from_slice(&part.content);
            body.extend_from_slice(nl);
        }
        if self.closed {
            body.extend_from_slice(format!("--{}--", self.boundary).as_bytes());
            body.extend_from_slice(nl);
        }
        if let Some(cut) = &self.cut {
            body.truncate(cut.index(body.len() + 1));
        }
        body
    }

    fn request(&self) -> Request<Body> {
        let uri = format!("/api/v1/executions/dev/{}{}", self.flow, self.path_suffix);
        let content_type = HeaderValue::from_bytes(&self.content_type)
            .unwrap_or_else(|_| HeaderValue::from_static("multipart/form-data; boundary=kiteboundary"));
        request(&uri, content_type, self.body(), &self.chunks)
    }
}

/// A POST of `body`, sent in chunks of the given sizes (the rest in one).
fn request(uri: &str, content_type: HeaderValue, body: Vec<u8>, chunks: &[usize]) -> Request<Body> {
    let mut pieces = Vec::new();
    let mut rest = Bytes::from(body);
    for &size in chunks {
        if rest.is_empty() {
            break;
        }
        pieces.push(rest.split_to(size.min(rest.len())));
    }
    if !rest.is_empty() {
        pieces.push(rest);
    }
    let stream = futures_util::stream::iter(pieces.into_iter().map(Ok::<_, std::io::Error>));
    Request::post(uri)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from_stream(stream))
        .expect("a request")
}

/// Sends `request` and checks the answer: a status other than 500, a JSON body.
fn check(request: Request<Body>) -> Result<(), TestCaseError> {
    let k = kite();
    let answer = k.runtime.block_on(async {
        tokio::time::timeout(CASE_TIMEOUT, async {
            let response = k.app.clone().oneshot(request).await.expect("an answer");
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024)
                .await
                .expect("a body");
            (status, bytes)
        })
        .await
    });
    let Ok((status, bytes)) = answer else {
        return Err(TestCaseError::fail(format!("no answer within {CASE_TIMEOUT:?}")));
    };
    let text = String::from_utf8_lossy(&bytes);
    prop_assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{}", text);
    let json: Result<Value, _> = serde_json::from_slice(&bytes);
    prop_assert!(json.is_ok(), "{status}: not JSON: {text}");
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn multipart_requests_are_answered_in_json_without_a_500(m in multipart()) {
        check(m.request())?;
    }

    #[test]
    fn random_bodies_are_answered_in_json_without_a_500(
        body in prop::collection::vec(any::<u8>(), 0..512),
        boundary in boundary(),
        chunks in prop::collection::vec(1usize..64, 0..4),
    ) {
        let content_type = HeaderValue::from_str(&format!("multipart/form-data; boundary={boundary}"))
            .unwrap_or_else(|_| HeaderValue::from_static("multipart/form-data; boundary=kiteboundary"));
        check(request("/api/v1/executions/dev/open", content_type, body, &chunks))?;
    }
}
