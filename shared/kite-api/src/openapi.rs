//! `GET /api/v1/openapi.yml` (and `.json`): the routes Kite serves, as an OpenAPI document.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Kept true by tests that compare its paths with the router's routes.
pub const DOCUMENT: &str = include_str!("openapi.yml");

pub async fn yaml() -> Response {
    let mut response = DOCUMENT.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/yaml"));
    response
}

pub async fn json() -> Response {
    match serde_yaml::from_str::<serde_json::Value>(DOCUMENT) {
        Ok(doc) => axum::Json(doc).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// Paths given to `.route(...)` in the router's source, as served under `/api/v1`
    /// (the tenant copies are the same routes nested again).
    fn routed_paths() -> BTreeSet<String> {
        let full = include_str!("lib.rs");
        let source = &full[..full.find("#[cfg(test)]").unwrap_or(full.len())];
        let api_start = source.find("fn api(").expect("api() in lib.rs");
        let router_start = source.find("pub fn router(").expect("router() in lib.rs");
        let mut paths = BTreeSet::new();
        for (at, _) in source.match_indices(".route(") {
            let rest = source[at + ".route(".len()..].trim_start();
            let Some(rest) = rest.strip_prefix('"') else {
                continue;
            };
            let path = &rest[..rest.find('"').expect("closing quote")];
            let in_api = at > api_start && at < router_start;
            paths.insert(if in_api {
                format!("/api/v1{path}")
            } else {
                path.to_string()
            });
        }
        paths
    }

    fn documented_paths() -> BTreeSet<String> {
        let doc: serde_json::Value = serde_yaml::from_str(super::DOCUMENT).expect("valid YAML");
        doc["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .map(|p| p.replace("{flowId}", "{flow_id}"))
            .collect()
    }

    #[test]
    fn every_route_is_documented_and_every_documented_path_is_routed() {
        let routed = routed_paths();
        let documented = documented_paths();
        assert!(routed.len() >= 25, "found only {} routes", routed.len());
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&routed).collect();
        assert!(
            undocumented.is_empty(),
            "routes missing from openapi.yml: {undocumented:?}"
        );
        assert!(unrouted.is_empty(), "documented but not routed: {unrouted:?}");
    }

    #[test]
    fn json_form_is_the_same_document() {
        let doc: serde_json::Value = serde_yaml::from_str(super::DOCUMENT).expect("valid YAML");
        assert_eq!(doc["openapi"], "3.0.3");
        assert!(doc["paths"]["/api/v1/openapi.json"]["get"].is_object());
    }
}
