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

impl FnError {
    /// A failure of Kite or a service it calls, not of the caller's event: its details
    /// (SDK and TLS messages, table and key names) go to the log line `invocation failed`,
    /// not to the caller.
    fn is_internal(&self) -> bool {
        matches!(
            self,
            FnError::Backend(_)
                | FnError::Engine(
                    EngineError::Store(_)
                        | EngineError::Storage(_)
                        | EngineError::Internal(_)
                        | EngineError::SchedulesPending { .. }
                )
        )
    }
}

impl From<FnError> for Diagnostic {
    fn from(e: FnError) -> Diagnostic {
        let error_message = if e.is_internal() {
            "internal error: the details are in the function's log, under this invocation's request id"
                .to_string()
        } else {
            e.to_string()
        };
        Diagnostic {
            error_type: e.kind().to_string(),
            error_message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kite_engine::ports::StoreError;

    #[test]
    fn internal_details_stay_in_the_log() {
        let d = Diagnostic::from(FnError::Engine(EngineError::Store(StoreError::Backend(
            "dispatch failure: tls handshake eof".into(),
        ))));
        assert_eq!(d.error_type, "EngineError");
        assert!(!d.error_message.contains("tls"), "{}", d.error_message);
        let d = Diagnostic::from(FnError::Backend(
            "ResourceNotFoundException: table kite-prod".into(),
        ));
        assert!(!d.error_message.contains("kite-prod"), "{}", d.error_message);
        let d = Diagnostic::from(FnError::Engine(EngineError::NotFound("Flow not found".into())));
        assert_eq!(
            (d.error_type.as_str(), d.error_message.as_str()),
            ("NotFound", "Flow not found")
        );
    }
}
