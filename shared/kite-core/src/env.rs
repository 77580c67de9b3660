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
    /// What `kv()` reads; `None` finds no key.
    pub kv: Option<&'a dyn KvSource>,
}
