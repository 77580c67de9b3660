//! The web UI: plain ES modules and CSS embedded in the binary, served under `/ui/`.
//!
//! - `/` and `/ui` redirect to `/ui/`.
//! - `/ui/assets/{version}/{file}` are the assets; `{version}` is a hash of all of
//!   them, so a page of this build only asks for files of this build and they are
//!   cached as immutable. Relative imports between modules stay inside one version.
//! - Any other `/ui/...` path is the single page (`index.html`): the browser routes.
//!
//! Every answer carries an `ETag`; a matching `If-None-Match` gets 304.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use crate::error::ApiError;
use crate::Shared;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            bytes: include_bytes!(concat!("../ui/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

const ASSETS: &[Asset] = &[
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("yaml.js", JS),
    asset!("inputs.js", JS),
    asset!("flows.js", JS),
    asset!("flow.js", JS),
    asset!("executions.js", JS),
    asset!("execution.js", JS),
    asset!("icon.svg", "image/svg+xml"),
];

const INDEX: &str = include_str!("../ui/index.html");

/// Where the page finds the assets; replaced in `index.html` by `/ui/assets/{version}`.
const ASSETS_PLACEHOLDER: &str = "{{ASSETS}}";

/// The page may only load what this server serves (no inline script, no other origin).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// FNV-1a, 64 bits: evaluated at compile time, stable for one build.
const fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

const fn version_hash() -> u64 {
    let mut hash = fnv1a(FNV_OFFSET, INDEX.as_bytes());
    let mut i = 0;
    while i < ASSETS.len() {
        hash = fnv1a(hash, ASSETS[i].name.as_bytes());
        hash = fnv1a(hash, ASSETS[i].bytes);
        i += 1;
    }
    hash
}

/// The hash of every asset: part of their URLs.
pub fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| format!("{:012x}", version_hash() >> 16))
}

fn index_html() -> &'static str {
    static PAGE: OnceLock<String> = OnceLock::new();
    PAGE.get_or_init(|| INDEX.replace(ASSETS_PLACEHOLDER, &format!("/ui/assets/{}", version())))
}

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/", get(|| async { Redirect::temporary("/ui/") }))
        .route("/ui", get(|| async { Redirect::temporary("/ui/") }))
        .route("/ui/", get(page))
        .route("/ui/assets/{version}/{file}", get(asset))
        .route("/ui/{*rest}", get(page))
}

fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

fn respond(
    headers: &HeaderMap,
    etag: String,
    content_type: &'static str,
    cache: &'static str,
    body: &'static [u8],
) -> Response {
    let mut response = if etag_matches(headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = body.into_response();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        r
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

async fn page(headers: HeaderMap) -> Response {
    let etag = format!("\"{}\"", version());
    let mut response = respond(
        &headers,
        etag,
        "text/html; charset=utf-8",
        "no-cache",
        index_html().as_bytes(),
    );
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

async fn asset(Path((wanted, file)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let Some(found) = ASSETS.iter().find(|a| a.name == file) else {
        return ApiError::not_found(&format!("UI asset `{file}`")).into_response();
    };
    let etag = format!("\"{:016x}\"", fnv1a(FNV_OFFSET, found.bytes));
    // Another build's URL (a page opened before an upgrade) still gets this build's
    // file, but must not keep it forever.
    let cache = if wanted == version() {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    respond(&headers, etag, found.content_type, cache, found.bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_named_in_the_page_exists_and_every_module_import_resolves() {
        let page = index_html();
        assert!(!page.contains(ASSETS_PLACEHOLDER));
        for a in ASSETS {
            let text = std::str::from_utf8(a.bytes).expect("assets are text");
            if !a.name.ends_with(".js") {
                continue;
            }
            for line in text.lines() {
                let line = line.trim();
                if !(line.starts_with("import ") || line.starts_with("} from ")) {
                    continue;
                }
                let Some(start) = line.find("\"./").or_else(|| line.find("'./")) else {
                    continue;
                };
                let rest = &line[start + 3..];
                let name = &rest[..rest.find(['"', '\'']).expect("closed quote")];
                assert!(
                    ASSETS.iter().any(|b| b.name == name),
                    "{} imports {name}, which is not embedded",
                    a.name
                );
            }
        }
    }

    #[test]
    fn the_version_is_twelve_hex_digits() {
        assert_eq!(version().len(), 12);
        assert!(version().chars().all(|c| c.is_ascii_hexdigit()));
    }
}
