//! The functions' error, mapped once to the Lambda error response.

use kite_engine::EngineError;
use lambda_runtime::Diagnostic;

/// Why an invocation failed. Lambda reports `error_type` and the message to the caller
/// (the console shows both), so each message names what was expected.
#[derive(Debug, thiserror::Error)]
pub enum FnError {
    /// The event is of a shape this function does not handle.
    #[error("the {function} function cannot handle {got}; it expects {expected}")]
    UnexpectedShape {
        function: &'static str,
        got: String,
        expected: &'static str,
    },
    /// The event has the right shape but a field is missing or invalid.
    #[error("invalid {what}: {message}")]
    InvalidPayload { what: &'static str, message: String },
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// An AWS service or serialization failed.
    #[error("{0}")]
    Backend(String),
    /// The function's configuration (environment) is unusable.
    #[error("configuration: {0}")]
    Config(String),
}

impl FnError {
    fn kind(&self) -> &'static str {
        match self {
            FnError::UnexpectedShape { .. } => "UnexpectedEventShape",
            FnError::InvalidPayload { .. } => "InvalidPayload",
            FnError::Engine(EngineError::NotFound(_)) => "NotFound",
            FnError::Engine(EngineError::IllegalState(_)) => "IllegalState",
            FnError::Engine(
                EngineError::IllegalArgument(_)
                | EngineError::InvalidInput(_)
                | EngineError::InvalidFlow(_)
                | EngineError::InvalidEntity { .. },
            ) => "InvalidArgument",
            FnError::Engine(_) => "EngineError",
            FnError::Backend(_) => "BackendError",
            FnError::Config(_) => "ConfigurationError",
        }
    }
}

impl From<FnError> for Diagnostic {
    fn from(e: FnError) -> Diagnostic {
        Diagnostic {
            error_type: e.kind().to_string(),
            error_message: e.to_string(),
        }
    }
}
