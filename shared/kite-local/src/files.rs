//! Internal storage in a local folder: `kestra:///a/b/c.txt` is `<root>/a/b/c.txt`.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use kite_engine::ports::{ByteStream, FileStorage, StorageError, StoredFile, RECEIVING_PREFIX};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SCHEME: &str = "kestra:///";

/// Files under one root folder; URIs that would leave it are refused.
#[derive(Debug, Clone)]
pub struct LocalFileStorage {
    root: PathBuf,
}

fn io(e: std::io::Error) -> StorageError {
    StorageError::Io(e.to_string())
}

impl LocalFileStorage {
    pub fn new(root: impl Into<PathBuf>) -> Result<LocalFileStorage, StorageError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(io)?;
        Ok(LocalFileStorage { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where files being written and files being received live until they are complete
    /// and moved into place.
    fn receiving(&self) -> PathBuf {
        self.root
            .join(RECEIVING_PREFIX.trim_start_matches(SCHEME).trim_end_matches('/'))
    }

    /// Removes what a previous process left being received or half written (it was
    /// killed, or its requests cut short); returns how many files. Call it at start, while
    /// no other process uses this root (the server holds the data folder's lock).
    pub fn sweep_receiving(&self) -> Result<u64, StorageError> {
        count_and_remove(&self.receiving())
    }

    /// Maps a URI to a path under the root, refusing `..`, `.`, empty segments, backslashes,
    /// NUL and anything that is not `kestra:///`.
    pub fn path_of(&self, uri: &str) -> Result<PathBuf, StorageError> {
        let invalid = || StorageError::InvalidUri(uri.to_string());
        let rest = uri.strip_prefix(SCHEME).ok_or_else(invalid)?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() {
            return Ok(self.root.clone());
        }
        let mut path = self.root.clone();
        for segment in rest.split('/') {
            if segment.is_empty() || segment == "." || segment == ".." || segment.contains(['\\', '\0', ':'])
            {
                return Err(invalid());
            }
            path.push(segment);
        }
        Ok(path)
    }
}

#[async_trait]
impl FileStorage for LocalFileStorage {
    async fn put(&self, uri: &str, mut content: ByteStream, max_bytes: u64) -> Result<u64, StorageError> {
        let path = self.path_of(uri)?;
        if path == self.root {
            return Err(StorageError::InvalidUri(uri.to_string()));
        }
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(io)?;
        }
        // Write to a temporary name, then rename: readers never see a partial file, and
        // one cut short by a kill is swept at the next start.
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let partial_dir = self.receiving();
        tokio::fs::create_dir_all(&partial_dir).await.map_err(io)?;
        let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = partial_dir.join(format!("part-{}-{n}", std::process::id()));
        let mut file = tokio::fs::File::create(&tmp).await.map_err(io)?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut written = 0u64;
        loop {
            let n = match content.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    drop(file);
                    let _ = tokio::fs::remove_file(&tmp).await;
                    return Err(io(e));
                }
            };
            if n == 0 {
                break;
            }
            written += n as u64;
            if written > max_bytes {
                drop(file);
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(StorageError::TooLarge { limit: max_bytes });
            }
            file.write_all(&buf[..n]).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        file.sync_all().await.map_err(io)?;
        drop(file);
        tokio::fs::rename(&tmp, &path).await.map_err(io)?;
        Ok(written)
    }

    async fn get(&self, uri: &str) -> Result<ByteStream, StorageError> {
        let path = self.path_of(uri)?;
        match tokio::fs::File::open(&path).await {
            Ok(f) if path.is_file() => Ok(Box::pin(f)),
            Ok(_) => Err(StorageError::NotFound(uri.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StorageError::NotFound(uri.to_string()))
            }
            Err(e) => Err(io(e)),
        }
    }

    async fn size(&self, uri: &str) -> Result<Option<u64>, StorageError> {
        let path = self.path_of(uri)?;
        match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    async fn rename(&self, from: &str, to: &str) -> Result<(), StorageError> {
        let (source, target) = (self.path_of(from)?, self.path_of(to)?);
        if target == self.root || !source.is_file() {
            return Err(StorageError::NotFound(from.to_string()));
        }
        if let Some(dir) = target.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(io)?;
        }
        tokio::fs::rename(&source, &target).await.map_err(io)
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, StorageError> {
        let path = self.path_of(prefix)?;
        if path == self.root {
            return Err(StorageError::InvalidUri(prefix.to_string()));
        }
        tokio::task::spawn_blocking(move || count_and_remove(&path))
            .await
            .map_err(|e| StorageError::Io(e.to_string()))?
    }

    async fn list(&self, prefix: &str) -> Result<Vec<StoredFile>, StorageError> {
        let path = self.path_of(prefix)?;
        if path == self.root {
            return Err(StorageError::InvalidUri(prefix.to_string()));
        }
        let root = self.root.clone();
        let mut found = tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            collect_files(&root, &path, &mut found).map(|()| found)
        })
        .await
        .map_err(|e| StorageError::Io(e.to_string()))??;
        found.sort_by(|a, b| a.uri.cmp(&b.uri));
        Ok(found)
    }

    fn read_blocking(&self, uri: &str) -> Result<Vec<u8>, StorageError> {
        let path = self.path_of(uri)?;
        match std::fs::read(&path) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound || path.is_dir() => {
                Err(StorageError::NotFound(uri.to_string()))
            }
            Err(e) => Err(io(e)),
        }
    }
}

/// Every file at or under `path`, with its URI relative to `root`.
fn collect_files(root: &Path, path: &Path, found: &mut Vec<StoredFile>) -> Result<(), StorageError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(e)),
    };
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).map_err(io)? {
            collect_files(root, &entry.map_err(io)?.path(), found)?;
        }
    } else if meta.is_file() {
        let relative = path
            .strip_prefix(root)
            .map_err(|e| StorageError::Io(e.to_string()))?;
        let segments: Vec<_> = relative.iter().map(|s| s.to_string_lossy()).collect();
        let last_modified = meta.modified().map_err(io)?.into();
        found.push(StoredFile {
            uri: format!("{SCHEME}{}", segments.join("/")),
            size: meta.len(),
            last_modified,
            // Not every file system records it.
            created: meta.created().ok().map(Into::into),
        });
    }
    Ok(())
}

fn count_and_remove(path: &Path) -> Result<u64, StorageError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io(e)),
    };
    if meta.is_dir() {
        let mut n = 0;
        for entry in std::fs::read_dir(path).map_err(io)? {
            n += count_and_remove(&entry.map_err(io)?.path())?;
        }
        std::fs::remove_dir(path).map_err(io)?;
        Ok(n)
    } else {
        std::fs::remove_file(path).map_err(io)?;
        Ok(1)
    }
}
