//! `/api/v1/namespaces/{namespace}/kv`: Kestra's KV store API (list a namespace's
//! pairs; get, put and delete one).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use kite_core::input::parse_iso_duration;
use kite_engine::ports::{KvEntry, KvValue};
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use crate::params::NamespacePath;
use crate::Shared;

#[derive(Deserialize)]
pub struct KeyPath {
    namespace: String,
    key: String,
}

/// The live pairs of the namespace, by key (Kestra's `KVEntry` list).
pub async fn list(State(s): State<Shared>, Path(p): Path<NamespacePath>) -> ApiResult<Json<Vec<KvEntry>>> {
    Ok(Json(s.engine.kv_list(&p.namespace).await?))
}

/// `{"type": "NUMBER", "value": 42}`.
pub async fn get(State(s): State<Shared>, Path(p): Path<KeyPath>) -> ApiResult<Json<KvValue>> {
    Ok(Json(s.engine.kv_get(&p.namespace, &p.key).await?))
}

/// The body is the value: JSON (a quoted string, a number, an object…) or a bare word,
/// typed as Kestra types it; the `ttl` (ISO-8601) and `description` headers are its
/// metadata.
pub async fn put(
    State(s): State<Shared>,
    Path(p): Path<KeyPath>,
    headers: HeaderMap,
    body: String,
) -> ApiResult<()> {
    let header = |name: &str| -> ApiResult<Option<String>> {
        headers
            .get(name)
            .map(|v| {
                v.to_str()
                    .map(str::to_string)
                    .map_err(|_| ApiError::illegal_argument(&format!("Invalid header '{name}'")))
            })
            .transpose()
    };
    let ttl = match header("ttl")? {
        None => None,
        Some(text) => Some(
            parse_iso_duration(&text)
                .filter(|d| *d > chrono::Duration::zero())
                .ok_or_else(|| ApiError::illegal_argument(&format!("Invalid ttl '{text}'")))?,
        ),
    };
    let value = KvValue::from_body(&body);
    s.engine
        .kv_put(&p.namespace, &p.key, value, header("description")?, ttl)
        .await?;
    Ok(())
}

/// `true` when a live pair was deleted, as Kestra answers.
pub async fn delete(State(s): State<Shared>, Path(p): Path<KeyPath>) -> ApiResult<Json<bool>> {
    Ok(Json(s.engine.kv_delete(&p.namespace, &p.key).await?))
}
