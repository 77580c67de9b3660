//! The web UI's routes on the real router: redirects, the single page and its
//! client-side routes, assets with content types and caching, and authentication.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use kite_api::{router, ApiState, AuthConfig};
use kite_engine::EngineConfig;
use kite_local::open_engine;
use tower::ServiceExt;

struct Kite {
    app: Router,
    _dir: tempfile::TempDir,
}

fn kite(auth: AuthConfig) -> Kite {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = open_engine(dir.path(), EngineConfig::default()).expect("engine");
    let app = router(ApiState {
        engine,
        base_url: "http://localhost:8080".into(),
        auth,
        max_upload: 1024,
        inline_download_limit: None,
        creations: kite_api::Admissions::new(kite_api::DEFAULT_MAX_CREATIONS),
        limits: kite_api::RequestLimits::default(),
    });
    Kite { app, _dir: dir }
}

impl Kite {
    async fn get(&self, uri: &str) -> Response {
        self.send(Request::get(uri).body(Body::empty()).unwrap()).await
    }

    async fn send(&self, request: Request<Body>) -> Response {
        self.app.clone().oneshot(request).await.unwrap()
    }
}

async fn text(response: Response) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 22).await.unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn header_of(response: &Response, name: header::HeaderName) -> &str {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

/// The asset URLs named by the page: `/ui/assets/{version}/{file}`.
fn asset_urls(page: &str) -> Vec<String> {
    page.split('"')
        .filter(|s| s.starts_with("/ui/assets/"))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn root_and_ui_redirect_to_the_ui() {
    let k = kite(AuthConfig::default());
    for uri in ["/", "/ui"] {
        let r = k.get(uri).await;
        assert!(r.status().is_redirection(), "{uri}: {}", r.status());
        assert_eq!(header_of(&r, header::LOCATION), "/ui/");
    }
}

#[tokio::test]
async fn every_page_route_serves_the_single_page() {
    let k = kite(AuthConfig::default());
    for uri in [
        "/ui/",
        "/ui/flows",
        "/ui/flows/edit/dev/hello-world",
        "/ui/flows/edit/dev/hello-world/source?edit=1",
        "/ui/executions",
        "/ui/executions/dev/hello-world/5qZnRhlrKmWYjU2SZL6Wts",
    ] {
        let r = k.get(uri).await;
        assert_eq!(r.status(), StatusCode::OK, "{uri}");
        assert_eq!(header_of(&r, header::CONTENT_TYPE), "text/html; charset=utf-8");
        assert_eq!(header_of(&r, header::CACHE_CONTROL), "no-cache");
        assert!(header_of(&r, header::CONTENT_SECURITY_POLICY).contains("script-src 'self'"));
        let page = text(r).await;
        assert!(page.contains("<script type=\"module\""), "{uri}");
        assert!(!page.contains("{{ASSETS}}"));
    }
}

#[tokio::test]
async fn assets_have_their_content_type_and_are_immutable_under_the_current_version() {
    let k = kite(AuthConfig::default());
    let page = text(k.get("/ui/").await).await;
    let urls = asset_urls(&page);
    assert!(urls.iter().any(|u| u.ends_with("/app.js")), "{urls:?}");
    assert!(urls.iter().any(|u| u.ends_with("/app.css")), "{urls:?}");
    let mut total = page.len();
    for url in &urls {
        let r = k.get(url).await;
        assert_eq!(r.status(), StatusCode::OK, "{url}");
        let expected = match url.rsplit('.').next().unwrap() {
            "js" => "text/javascript; charset=utf-8",
            "css" => "text/css; charset=utf-8",
            "svg" => "image/svg+xml",
            other => panic!("unexpected asset type {other}"),
        };
        assert_eq!(header_of(&r, header::CONTENT_TYPE), expected, "{url}");
        assert_eq!(
            header_of(&r, header::CACHE_CONTROL),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(header_of(&r, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        assert!(!header_of(&r, header::ETAG).is_empty());
        total += text(r).await.len();
    }
    // Modules imported by app.js are fetched too; the whole UI stays small.
    let all = [
        "app.js",
        "api.js",
        "dom.js",
        "yaml.js",
        "inputs.js",
        "flows.js",
        "flow.js",
        "executions.js",
        "execution.js",
    ];
    let version = urls[0].split('/').nth(3).unwrap().to_string();
    for name in all {
        if urls.iter().any(|u| u.ends_with(&format!("/{name}"))) {
            continue;
        }
        let r = k.get(&format!("/ui/assets/{version}/{name}")).await;
        assert_eq!(r.status(), StatusCode::OK, "{name}");
        total += text(r).await.len();
    }
    assert!(total < 200 * 1024, "the first page weighs {total} bytes");
}

#[tokio::test]
async fn an_old_version_still_gets_the_file_but_not_for_ever() {
    let k = kite(AuthConfig::default());
    let r = k.get("/ui/assets/000000000000/app.js").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header_of(&r, header::CACHE_CONTROL), "no-cache");
}

#[tokio::test]
async fn an_unknown_asset_is_404_not_the_page() {
    let k = kite(AuthConfig::default());
    let page = text(k.get("/ui/").await).await;
    let css = asset_urls(&page)
        .into_iter()
        .find(|u| u.ends_with(".css"))
        .unwrap();
    let missing = css.replace("app.css", "nope.js");
    let r = k.get(&missing).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(header_of(&r, header::CONTENT_TYPE).starts_with("application/json"));
}

#[tokio::test]
async fn etags_answer_304() {
    let k = kite(AuthConfig::default());
    for uri in ["/ui/flows".to_string(), {
        let page = text(k.get("/ui/").await).await;
        asset_urls(&page)
            .into_iter()
            .find(|u| u.ends_with("app.js"))
            .unwrap()
    }] {
        let first = k.get(&uri).await;
        let etag = header_of(&first, header::ETAG).to_string();
        assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
        let again = Request::get(&uri)
            .header(header::IF_NONE_MATCH, &etag)
            .body(Body::empty())
            .unwrap();
        let r = k.send(again).await;
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED, "{uri}");
        assert!(text(r).await.is_empty());
        let other = Request::get(&uri)
            .header(header::IF_NONE_MATCH, "\"something-else\"")
            .body(Body::empty())
            .unwrap();
        assert_eq!(k.send(other).await.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn with_basic_auth_the_ui_asks_the_browser_for_credentials() {
    let k = kite(AuthConfig {
        basic: Some(("admin".into(), "s3cret".into())),
        token: None,
    });
    for uri in ["/ui/", "/ui/flows", "/"] {
        let r = k.get(uri).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(header_of(&r, header::WWW_AUTHENTICATE), "Basic realm=\"Kite\"");
    }
    use base64::Engine as _;
    let credentials = base64::engine::general_purpose::STANDARD.encode("admin:s3cret");
    let authed = Request::get("/ui/flows")
        .header(header::AUTHORIZATION, format!("Basic {credentials}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(k.send(authed).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn with_a_token_only_the_page_opens_and_the_api_challenges_with_bearer() {
    let k = kite(AuthConfig {
        basic: None,
        token: Some("t0ken".into()),
    });
    // The page and its files hold no data: a browser must be able to open them.
    let page = k.get("/ui/flows").await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = text(page).await;
    let js = asset_urls(&page)
        .into_iter()
        .find(|u| u.ends_with("app.js"))
        .unwrap();
    assert_eq!(k.get(&js).await.status(), StatusCode::OK);
    // The API still needs the token; no Basic challenge, so no browser login box.
    let r = k.get("/api/v1/flows/search").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header_of(&r, header::WWW_AUTHENTICATE), "Bearer realm=\"Kite\"");
    let authed = Request::get("/api/v1/flows/search")
        .header(header::AUTHORIZATION, "Bearer t0ken")
        .body(Body::empty())
        .unwrap();
    assert_eq!(k.send(authed).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_api_keeps_its_json_404_for_unknown_routes() {
    let k = kite(AuthConfig::default());
    let r = k.get("/api/v1/nothing-here").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(header_of(&r, header::CONTENT_TYPE).starts_with("application/json"));
    let r = k.get("/elsewhere").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
