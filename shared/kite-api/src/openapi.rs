//! `GET /api/v1/openapi.yml`: the routes Kite serves, as an OpenAPI document.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

/// Kept true by a test that compares its paths with the router's routes.
pub const DOCUMENT: &str = include_str!("openapi.yml");

pub async fn yaml() -> Response {
    let mut response = DOCUMENT.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/yaml"));
    response
}
