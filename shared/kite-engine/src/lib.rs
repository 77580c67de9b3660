//! Kite's engine: the ports (storage, queue, files, clock, ids) and the [`Engine`]
//! service that drives executions with the core state machine over them.
//!
//! The local server plugs in embedded adapters (`kite-local`); the Lambdas plug in
//! AWS ones. Both serve the same API router on top of the same engine.

#[cfg(feature = "conformance")]
pub mod conformance;
pub mod engine;
pub mod error;
pub mod ports;

pub use engine::{
    CreateExecution, Engine, EngineConfig, ExecutionWatch, FlowWithSource, Ports, RunWindow, WebhookFired,
};
pub use error::EngineError;
pub use ports::*;
