//! What Kite's four Lambda functions share: recognising the event shapes Lambda hands them,
//! the handlers that turn those events into engine calls, the in-process dispatcher that runs
//! claimed work inside the invocation, and JSON logging.
//!
//! Each function's `main` only builds the AWS ports and calls one handler here, so the
//! handlers are tested in-process over the local adapters with the console's test events.

pub mod api;
pub mod config;
pub mod ddb_json;
pub mod dispatch;
pub mod error;
pub mod invoke;
pub mod logging;
pub mod scheduler;
pub mod shape;
pub mod stream;
pub mod triggers;
pub mod worker;

pub use dispatch::InProcess;
pub use error::FnError;
pub use shape::Shape;
pub use triggers::Triggers;
