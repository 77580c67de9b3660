//! What the tests that call a worker module directly share: a local file storage in a
//! temporary folder with the task run's view of it (files put under the execution's
//! prefix, which it may read; outputs under its own prefix), and a task's call prepared
//! from its properties as a flow would give them, their values taken as written.
#![allow(dead_code)] // each test file uses its share

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use kite_core::plugin::{by_name, IoCall};
use kite_engine::ports::FileStorage;
use kite_local::LocalFileStorage;
use kite_worker::storage::Scope;
use serde_json::{Map, Value};

/// The execution's files: what a task run may read.
pub const PREFIX: &str = "kestra:///dev/f/executions/e/";
/// Where the task run writes its outputs.
pub const TASK_PREFIX: &str = "kestra:///dev/f/executions/e/tasks/t/tr/";

pub struct Folder {
    dir: tempfile::TempDir,
    pub files: Arc<dyn FileStorage>,
    pub readable: Vec<String>,
}

impl Folder {
    pub fn new() -> Folder {
        let dir = tempfile::tempdir().expect("tempdir");
        let files: Arc<dyn FileStorage> = Arc::new(LocalFileStorage::new(dir.path()).expect("files"));
        Folder {
            dir,
            files,
            readable: vec![PREFIX.to_string()],
        }
    }

    /// The temporary folder (the storage's root), for files a test keeps beside it.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Stores `content` as the execution's file `name`; its URI.
    pub async fn put(&self, name: &str, content: impl Into<Vec<u8>>) -> String {
        let uri = format!("{PREFIX}{name}");
        self.files
            .put(&uri, Box::pin(std::io::Cursor::new(content.into())), 1 << 24)
            .await
            .expect("put");
        uri
    }

    /// The task run's scope on these files.
    pub fn scope(&self) -> Scope<'_> {
        Scope {
            files: &self.files,
            prefix: TASK_PREFIX,
            readable: &self.readable,
            now: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    pub fn bytes(&self, uri: &str) -> Vec<u8> {
        self.files.read_blocking(uri).expect("read")
    }

    pub fn text(&self, uri: &str) -> String {
        String::from_utf8(self.bytes(uri)).expect("utf-8")
    }
}

/// The call the task type `name` makes of `properties`.
pub fn prepare(name: &str, properties: Value) -> Result<IoCall, String> {
    let spec = by_name(name).unwrap_or_else(|| panic!("{name} is registered"));
    let properties: Map<String, Value> = properties.as_object().cloned().unwrap_or_default();
    let render = |v: &Value| -> Result<String, kite_core::expression::ExpressionError> {
        Ok(match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    };
    (spec.prepare)(&properties, &render)
}
