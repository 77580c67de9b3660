//! Query parameters as Kestra reads them: repeated keys (`labels=a:b&labels=c:d`),
//! 1-based pagination, `sort=field:asc`, ISO dates.

use axum::http::Uri;
use chrono::{DateTime, NaiveDateTime, Utc};
use kite_core::execution::Label;
use kite_engine::{Pagination, Sort};

use crate::error::{ApiError, ApiResult};

/// Every `key=value` pair of the query, in order, repeated keys kept.
pub struct Query(pub Vec<(String, String)>);

impl Query {
    pub fn from_uri(uri: &Uri) -> ApiResult<Query> {
        let raw = uri.query().unwrap_or("");
        serde_urlencoded::from_str::<Vec<(String, String)>>(raw)
            .map(Query)
            .map_err(|e| ApiError::bad_request(&format!("Invalid query string: {e}")))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn flag(&self, key: &str) -> ApiResult<bool> {
        match self.get(key) {
            None | Some("") => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(ApiError::bad_request(&format!(
                "Failed to convert argument [{key}] for value [{v}]"
            ))),
        }
    }

    pub fn int(&self, key: &str) -> ApiResult<Option<i64>> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(&format!("Failed to convert argument [{key}] for value [{v}]"))
            }),
        }
    }

    pub fn pagination(&self) -> ApiResult<Pagination> {
        let page = self.int("page")?.unwrap_or(1);
        let size = self.int("size")?.unwrap_or(10);
        if page < 1 {
            return Err(ApiError::invalid_entity(
                "page",
                "must be greater than or equal to 1",
            ));
        }
        if !(1..=10_000).contains(&size) {
            return Err(ApiError::invalid_entity("size", "must be between 1 and 10000"));
        }
        Ok(Pagination {
            page: page as u32,
            size: size as u32,
        })
    }

    pub fn sort(&self) -> ApiResult<Vec<Sort>> {
        self.all("sort")
            .into_iter()
            .map(|s| {
                let (field, dir) = s.split_once(':').unwrap_or((s, "asc"));
                let descending = match dir.to_ascii_lowercase().as_str() {
                    "asc" => false,
                    "desc" => true,
                    _ => return Err(ApiError::illegal_argument("Invalid sort parameter")),
                };
                if field.is_empty() {
                    return Err(ApiError::illegal_argument("Invalid sort parameter"));
                }
                Ok(Sort {
                    field: field.to_string(),
                    descending,
                })
            })
            .collect()
    }

    /// Kestra's `labels=key:value` (repeated); system labels are Kite's own.
    pub fn labels(&self) -> ApiResult<Vec<Label>> {
        self.all("labels").into_iter().map(parse_label).collect()
    }

    pub fn date(&self, key: &str) -> ApiResult<Option<DateTime<Utc>>> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => parse_date(v).map(Some).ok_or_else(|| {
                ApiError::bad_request(&format!("Failed to convert argument [{key}] for value [{v}]"))
            }),
        }
    }
}

pub fn parse_label(raw: &str) -> ApiResult<Label> {
    let cut = raw.find([':', ' ']).unwrap_or(raw.len());
    let key = raw[..cut].trim();
    let value = raw.get(cut + 1..).unwrap_or("").trim();
    if key.is_empty() {
        return Err(ApiError::illegal_argument("Invalid queryString parameter"));
    }
    if key.starts_with("system.") && key != "system.correlationId" {
        return Err(ApiError::illegal_argument(&format!(
            "System labels can only be set by Kestra itself, offending label: {key}={value}"
        )));
    }
    Ok(Label {
        key: key.to_string(),
        value: value.to_string(),
    })
}

/// ISO zoned date-time (`2024-12-20T10:00:01+01:00`, `…Z`), or a local one taken as UTC.
pub fn parse_date(v: &str) -> Option<DateTime<Utc>> {
    if let Ok(d) = DateTime::parse_from_rfc3339(v) {
        return Some(d.with_timezone(&Utc));
    }
    let zone_cut = v.find('[').unwrap_or(v.len());
    if let Ok(d) = DateTime::parse_from_rfc3339(&v[..zone_cut]) {
        return Some(d.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(v, fmt) {
            return Some(d.and_utc());
        }
    }
    None
}

/// Path parameters by name, so that the optional `{tenant}` segment is ignored.
#[derive(serde::Deserialize)]
pub struct FlowPath {
    pub namespace: String,
    pub id: String,
}

#[derive(serde::Deserialize)]
pub struct FlowIdPath {
    pub namespace: String,
    pub flow_id: String,
}

#[derive(serde::Deserialize)]
pub struct NamespacePath {
    pub namespace: String,
}

#[derive(serde::Deserialize)]
pub struct IdPath {
    pub id: String,
}

#[derive(serde::Deserialize)]
pub struct LogPath {
    pub execution_id: String,
}

#[derive(serde::Deserialize)]
pub struct WebhookPath {
    pub namespace: String,
    pub flow_id: String,
    pub key: String,
}
