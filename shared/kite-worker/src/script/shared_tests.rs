//! Two worker instances (two temporary folders) sharing one internal storage.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use kite_core::plugin::scripts::SharedFolder;
use kite_engine::ports::{ByteStream, FileStorage, StorageError, StoredFile};
use tokio::io::AsyncReadExt;

use super::{close, open};

#[derive(Default)]
struct Memory(Mutex<HashMap<String, Vec<u8>>>);

impl Memory {
    fn map(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, Vec<u8>>>, StorageError> {
        self.0.lock().map_err(|e| StorageError::Io(e.to_string()))
    }
}

#[async_trait]
impl FileStorage for Memory {
    async fn put(&self, uri: &str, mut content: ByteStream, _: u64) -> Result<u64, StorageError> {
        let mut bytes = Vec::new();
        content
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| StorageError::Io(e.to_string()))?;
        let len = bytes.len() as u64;
        self.map()?.insert(uri.into(), bytes);
        Ok(len)
    }
    async fn get(&self, uri: &str) -> Result<ByteStream, StorageError> {
        let bytes = self.read_blocking(uri)?;
        Ok(Box::pin(std::io::Cursor::new(bytes)))
    }
    async fn size(&self, uri: &str) -> Result<Option<u64>, StorageError> {
        Ok(self.map()?.get(uri).map(|b| b.len() as u64))
    }
    async fn rename(&self, _: &str, _: &str) -> Result<(), StorageError> {
        Err(StorageError::Io("not used here".into()))
    }
    async fn delete_prefix(&self, _: &str) -> Result<u64, StorageError> {
        Err(StorageError::Io("not used here".into()))
    }
    async fn list(&self, _: &str) -> Result<Vec<StoredFile>, StorageError> {
        Ok(Vec::new())
    }
    fn read_blocking(&self, uri: &str) -> Result<Vec<u8>, StorageError> {
        self.map()?
            .get(uri)
            .cloned()
            .ok_or_else(|| StorageError::NotFound(uri.into()))
    }
}

const PREFIX: &str = "kestra:///company/team/f/executions/e1/";

fn folder(previous: Option<&str>) -> SharedFolder {
    SharedFolder {
        key: "wd1".into(),
        snapshot: format!("{PREFIX}tasks/wd/wd1/working-directory.snapshot"),
        previous: previous.map(String::from),
        input_files: Vec::new(),
        namespace_files: None,
    }
}

#[tokio::test]
async fn another_instance_rebuilds_the_folder_from_the_snapshot() {
    let files = Memory::default();
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let readable = vec![PREFIX.to_string()];

    let (dir, fresh, _held) = open(&files, one.path(), &folder(None), &readable).await.unwrap();
    assert!(fresh);
    std::fs::write(dir.join("data.txt"), "from the first child").unwrap();
    close(&files, one.path(), &dir, &folder(None), "child1")
        .await
        .unwrap();

    // The same instance uses its folder as it is.
    std::fs::write(dir.join("local-only"), "not in the snapshot").unwrap();
    let (same, fresh, _held) = open(&files, one.path(), &folder(Some("child1")), &readable)
        .await
        .unwrap();
    assert!(!fresh);
    assert!(same.join("local-only").exists());

    // Another instance rebuilds it from the snapshot.
    let (other, fresh, _held) = open(&files, two.path(), &folder(Some("child1")), &readable)
        .await
        .unwrap();
    assert!(!fresh);
    assert_eq!(
        std::fs::read_to_string(other.join("data.txt")).unwrap(),
        "from the first child"
    );
    assert!(!other.join("local-only").exists());

    // A folder whose last writer is not the previous child is rebuilt too.
    std::fs::write(one.path().join("wd1.last"), "someone-else").unwrap();
    let (rebuilt, _, _held) = open(&files, one.path(), &folder(Some("child1")), &readable)
        .await
        .unwrap();
    assert!(!rebuilt.join("local-only").exists());
    assert!(rebuilt.join("data.txt").exists());
}

#[tokio::test]
async fn a_missing_snapshot_or_another_executions_snapshot_fails() {
    let files = Memory::default();
    let tmp = tempfile::tempdir().unwrap();
    let err = open(&files, tmp.path(), &folder(Some("child1")), &[PREFIX.to_string()])
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("task run child1") && err.to_string().contains("is missing"),
        "{err}"
    );
    let err = open(
        &files,
        tmp.path(),
        &folder(Some("child1")),
        &["kestra:///other/".to_string()],
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("only reads its own execution's files"),
        "{err}"
    );
}
