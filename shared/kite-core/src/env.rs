//! What the core may use besides the execution and the flow, given by its host: the
//! clock, fresh ids and nonces, the expression engine, files, the SECRET key and
//! configured variables, secrets, KV values.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::expression::{ExpressionEngine, FileReader};
use crate::id::IdSource;
use crate::kv::KvSource;
use crate::secret::Secrets;

/// What the state machine may use besides the execution: clock, ids, renderer, files.
pub struct Env<'a> {
    pub now: DateTime<Utc>,
    pub ids: &'a dyn IdSource,
    pub expressions: &'a ExpressionEngine,
    pub files: Option<&'a dyn FileReader>,
    /// Decrypts SECRET inputs for expressions.
    pub secret_key: Option<&'a [u8]>,
    /// Extra top-level variables given by configuration (`envs`, `globals`).
    pub globals: Option<&'a Value>,
    /// What `secret()` reads; `None` fails every `secret()` call.
    pub secrets: Option<&'a Secrets>,
    /// The largest outputs a task run may have, in bytes of JSON; larger fails it.
    pub max_task_output: usize,
    /// What `kv()` reads; `None` finds no key.
    pub kv: Option<&'a dyn KvSource>,
}

/// [`Env::max_task_output`] unless configured: above the 10 MiB an HTTP response body
/// may have, far below what would make an execution too big to store and read.
pub const DEFAULT_MAX_TASK_OUTPUT: usize = 16 * 1024 * 1024;
