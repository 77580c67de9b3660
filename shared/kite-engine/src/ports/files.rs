//! File storage (`kestra:///` URIs).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::pin::Pin;
use std::time::Duration;
use tokio::io::AsyncRead;

use super::*;

/// Files being received, not yet part of an execution: a request's uploads are stored
/// here first and moved into place just before the execution is stored, so that a request
/// cut short (a refusal, a dropped connection, a killed server) leaves nothing elsewhere.
/// The local server empties it at start; on S3 a lifecycle rule expires it after a day.
/// No namespace can start with `.`, so no flow's files live here.
pub const RECEIVING_PREFIX: &str = "kestra:///.receiving/";

/// One stored file, as [`FileStorage::list`] gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// Its `kestra:///` URI.
    pub uri: String,
    pub size: u64,
    pub last_modified: DateTime<Utc>,
    /// When the storage keeps it (a local file system); S3 does not.
    pub created: Option<DateTime<Utc>>,
}

/// A readable byte stream.
pub type ByteStream = Pin<Box<dyn AsyncRead + Send>>;

/// Internal storage addressed by `kestra:///...` URIs. Implementations must refuse URIs
/// that are not `kestra:///`, contain `..`/empty/absolute segments or otherwise escape the root.
#[async_trait]
pub trait FileStorage: Send + Sync {
    /// Streams `content` into `uri`, failing with [`StorageError::TooLarge`] (and storing
    /// nothing) beyond `max_bytes`. Returns the size written. Overwrites.
    async fn put(&self, uri: &str, content: ByteStream, max_bytes: u64) -> Result<u64, StorageError>;
    /// Opens the file for reading.
    async fn get(&self, uri: &str) -> Result<ByteStream, StorageError>;
    /// The file size, `None` if absent.
    async fn size(&self, uri: &str) -> Result<Option<u64>, StorageError>;
    async fn exists(&self, uri: &str) -> Result<bool, StorageError> {
        Ok(self.size(uri).await?.is_some())
    }
    /// Moves the file `from` to `to` (overwriting), as one step where the storage has one.
    async fn rename(&self, from: &str, to: &str) -> Result<(), StorageError>;
    /// Deletes every file under `prefix` (a `kestra:///` URI), returning how many.
    async fn delete_prefix(&self, prefix: &str) -> Result<u64, StorageError>;
    /// The files stored under `prefix` as a folder (a `kestra:///` URI, with or without its
    /// trailing `/`), at any depth, and the file named exactly `prefix` if there is one (as
    /// [`FileStorage::delete_prefix`] counts them), sorted by URI. Folders are not entries:
    /// a folder exists while files are under it. Nothing there is an empty list.
    async fn list(&self, prefix: &str) -> Result<Vec<StoredFile>, StorageError>;
    /// Reads a whole file synchronously (the expression `read()` function runs in
    /// synchronous code); may block the calling thread briefly.
    fn read_blocking(&self, uri: &str) -> Result<Vec<u8>, StorageError>;
    /// A URL that stores the file `uri` with one HTTP `PUT` of its bytes, valid for
    /// `expires_in`, for clients that upload straight to the storage (S3's presigned
    /// URLs). `None`: the storage has none, the API receives the bytes itself. The
    /// storage cannot bound the size of such an upload: check [`FileStorage::size`].
    async fn upload_url(&self, uri: &str, expires_in: Duration) -> Result<Option<String>, StorageError> {
        let _ = (uri, expires_in);
        Ok(None)
    }
    /// A URL that downloads the file `uri` with an HTTP `GET`, valid for `expires_in`.
    /// `None`: the storage has none, the API streams the file itself.
    async fn download_url(&self, uri: &str, expires_in: Duration) -> Result<Option<String>, StorageError> {
        let _ = (uri, expires_in);
        Ok(None)
    }
}
