//! The engine's error type, mapped once to HTTP statuses by the API.

use kite_core::flow::FlowError;
use kite_core::input::InputError;

use crate::ports::{StorageError, StoreError};

/// Why an engine call failed. Each variant corresponds to one Kestra error class:
/// the comment gives the HTTP status and message prefix the API answers with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// 404 `Not Found: <message>`.
    #[error("{0}")]
    NotFound(String),
    /// 409 `Illegal state: <message>` (disabled flow, execution not paused, ...).
    #[error("{0}")]
    IllegalState(String),
    /// 422 `Illegal argument: <message>`.
    #[error("{0}")]
    IllegalArgument(String),
    /// 401 `Unauthorized: <message>` (a webhook whose signature does not verify).
    #[error("{0}")]
    Unauthorized(String),
    /// 422 `Invalid entity: <input id>: <message>`; only the first failing input, like Kestra.
    #[error("{0}")]
    InvalidInput(InputError),
    /// 422 `Invalid entity: ...`: the flow source does not parse or validate.
    #[error("{}", format_flow_errors(.0))]
    InvalidFlow(Vec<FlowError>),
    /// 422 `Invalid entity: <path>: <message>` (e.g. `flow.id: Flow id already exists`).
    #[error("{path}: {message}")]
    InvalidEntity { path: String, message: String },
    /// 413/422: an upload exceeds the configured size bound.
    #[error("{0}")]
    TooLarge(String),
    /// 500: a repository, queue or file storage failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Storage(StorageError),
    /// 500: the state machine refused an event.
    #[error("{0}")]
    Internal(String),
    /// 500: the flow is stored, but registering its Schedule triggers failed; the next
    /// schedule reconcile ([`crate::Engine::reconcile_schedules`]) registers them.
    #[error(
        "flow {namespace}.{flow_id} was saved, but its schedules could not be registered ({error}); \
         the next schedule reconcile will register them"
    )]
    SchedulesPending {
        namespace: String,
        flow_id: String,
        error: Box<EngineError>,
    },
}

impl From<StorageError> for EngineError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound(uri) => EngineError::NotFound(format!("File not found: {uri}")),
            StorageError::InvalidUri(uri) => {
                EngineError::IllegalArgument(format!("Invalid prefix path: {uri}"))
            }
            StorageError::TooLarge { limit } => {
                EngineError::TooLarge(format!("File is larger than the limit of {limit} bytes"))
            }
            other => EngineError::Storage(other),
        }
    }
}

impl From<InputError> for EngineError {
    fn from(e: InputError) -> Self {
        EngineError::InvalidInput(e)
    }
}

/// One error per line, with `line:column` when known.
pub fn format_flow_errors(errors: &[FlowError]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}
