//! Kestra's error JSON (`message`, `_links.self.href`, `_embedded.errors`) and the one
//! place where engine errors become HTTP statuses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kite_engine::EngineError;
use serde_json::{json, Value};

/// An error answered to an API caller.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Validation errors: (message, path).
    pub errors: Vec<(String, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            errors: Vec::new(),
        }
    }

    pub fn not_found(detail: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("Not Found: {detail}"))
    }

    pub fn bad_request(detail: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, format!("Bad Request: {detail}"))
    }

    pub fn illegal_argument(detail: &str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Illegal argument: {detail}"),
        )
    }

    pub fn invalid_entity(path: &str, detail: &str) -> Self {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: format!("Invalid entity: {path}: {detail}"),
            errors: vec![(detail.to_string(), path.to_string())],
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::NotFound(m) => ApiError::not_found(&m),
            EngineError::IllegalState(m) => {
                ApiError::new(StatusCode::CONFLICT, format!("Illegal state: {m}"))
            }
            EngineError::IllegalArgument(m) => ApiError::illegal_argument(&m),
            EngineError::Unauthorized(m) => {
                ApiError::new(StatusCode::UNAUTHORIZED, format!("Unauthorized: {m}"))
            }
            EngineError::InvalidInput(input) => ApiError::invalid_entity(&input.input_id, &input.message),
            EngineError::InvalidFlow(errors) => {
                let listed: Vec<(String, String)> = errors
                    .iter()
                    .map(|e| {
                        let at = match (e.line, e.column) {
                            (Some(l), Some(c)) => format!(" (line {l}, column {c})"),
                            (Some(l), None) => format!(" (line {l})"),
                            _ => String::new(),
                        };
                        (format!("{}{at}", e.message), e.path.clone())
                    })
                    .collect();
                let summary = listed
                    .iter()
                    .map(|(m, p)| {
                        if p.is_empty() {
                            m.clone()
                        } else {
                            format!("{p}: {m}")
                        }
                    })
                    .collect::<Vec<_>>();
                ApiError {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    message: format!("Invalid entity: {}", summary.join(", ")),
                    errors: listed,
                }
            }
            EngineError::InvalidEntity { path, message } => ApiError::invalid_entity(&path, &message),
            EngineError::TooLarge(m) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Request Entity Too Large: {m}"),
            ),
            EngineError::Store(kite_engine::ports::StoreError::Conflict(what)) => {
                tracing::warn!(%what, "request lost a concurrent modification");
                ApiError::new(
                    StatusCode::CONFLICT,
                    "Illegal state: modified concurrently by another request, try again",
                )
            }
            EngineError::SchedulesPending {
                namespace,
                flow_id,
                error,
            } => {
                let reference = error_reference();
                tracing::error!(%reference, %namespace, flow = %flow_id, error = %error, "schedules not registered");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "Service unavailable: flow {namespace}.{flow_id} was saved, but its Schedule triggers \
                         could not be registered yet; they will be within minutes (reference {reference})"
                    ),
                )
            }
            // Backend details (SDK messages, TLS or I/O errors, paths) are for the logs only.
            other => {
                let reference = error_reference();
                tracing::error!(%reference, error = %other, "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("Internal server error (reference {reference}, in the server's logs)"),
                )
            }
        }
    }
}

/// A short id that ties an error answer to its log line.
fn error_reference() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{:012x}", nanos & 0xffff_ffff_ffff)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "message": self.message });
        if !self.errors.is_empty() {
            let errors: Vec<Value> = self
                .errors
                .iter()
                .map(|(m, p)| json!({"message": m, "path": p}))
                .collect();
            body["_embedded"] = json!({ "errors": errors });
        }
        (self.status, Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;
    use kite_engine::ports::StoreError;

    #[test]
    fn backend_details_stay_in_the_logs() {
        let e = ApiError::from(EngineError::Store(StoreError::Backend(
            "dispatch failure: io error: tls handshake eof (arn:aws:dynamodb:eu-west-1:123:table/kite)"
                .into(),
        )));
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            e.message.starts_with("Internal server error (reference "),
            "{}",
            e.message
        );
        assert!(
            !e.message.contains("tls") && !e.message.contains("arn:"),
            "{}",
            e.message
        );

        let e = ApiError::from(EngineError::SchedulesPending {
            namespace: "dev".into(),
            flow_id: "nightly".into(),
            error: Box::new(EngineError::Store(StoreError::Backend(
                "ServiceQuotaExceededException: quota".into(),
            ))),
        });
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(e.message.contains("dev.nightly was saved"), "{}", e.message);
        assert!(!e.message.contains("Quota"), "{}", e.message);

        let e = ApiError::from(EngineError::Store(StoreError::Conflict("EXEC#1".into())));
        assert_eq!(e.status, StatusCode::CONFLICT);
        assert!(!e.message.contains("EXEC#1"), "{}", e.message);
    }
}
