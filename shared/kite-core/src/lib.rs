//! Kite's pure core: everything Kite knows about Kestra flows, without I/O.
//!
//! - [`flow`]: the flow model, parsed from Kestra YAML and validated.
//! - [`input`]: typing and validation of execution inputs.
//! - `input_definition`: the input declarations a flow holds (re-exported by
//!   [`input`]), a leaf that [`flow`] and [`input`] both build on.
//! - [`expression`]: Kestra (Pebble) expressions rendered with tera.
//! - [`execution`]: the execution, task-run and state model (Kestra's JSON shapes).
//! - [`executor`]: the state machine: (execution, event) → (execution, commands).
//! - [`task`]: what each task type does when it runs (light tasks inline, the jobs of
//!   tasks that do I/O for a worker).
//! - [`trigger`]: when Schedule, Flow and Webhook triggers fire, and with what.
//! - [`run_variables`]: the variables an expression sees while a task runs.
//! - [`env`] and [`id`]: what the host gives the core (clock, ids and nonces, files).
//! - [`secret`]: `secret()`'s values, given by the host, and their masking in logs.
//! - [`ion`]: Amazon Ion text, Kestra's format of stored rows and items (`to_line`,
//!   `from_line`, `LineReader`).
//! - [`kv`]: the KV store's typed values and what `kv()` reads, given by the host.
//! - [`namespace_files`]: namespace files' paths, storage URIs and file patterns.
//! - [`runner`]: an in-memory host with a virtual clock, for tests and benchmarks.
//!
//! Edges (HTTP, storage, queues, timers) live in other crates and only feed
//! events in and carry commands out.

pub mod env;
pub mod execution;
pub mod executor;
pub mod expression;
pub mod flow;
pub mod id;
pub mod input;
mod input_definition;
pub mod ion;
pub mod kv;
pub mod namespace_files;
pub mod plugin;
pub mod run_variables;
pub mod runner;
pub mod secret;
pub mod task;
pub mod trigger;
