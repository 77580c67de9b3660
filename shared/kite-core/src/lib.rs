//! Kite's pure core: everything Kite knows about Kestra flows, without I/O.
//!
//! - [`flow`]: the flow model, parsed from Kestra YAML and validated.
//! - [`input`]: typing and validation of execution inputs.
//! - [`expression`]: Kestra (Pebble) expressions rendered with tera.
//! - [`execution`]: the execution, task-run and state model (Kestra's JSON shapes).
//! - [`executor`]: the state machine: (execution, event) → (execution, commands).
//! - [`task`]: what each task type does when it runs.
//!
//! Edges (HTTP, storage, queues, timers) live in other crates and only feed
//! events in and carry commands out.

pub mod execution;
pub mod executor;
pub mod expression;
pub mod flow;
pub mod id;
pub mod input;
pub mod run_variables;
pub mod runner;
pub mod task;
pub mod trigger;
