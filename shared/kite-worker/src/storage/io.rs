//! Reading and writing storage files for the storage tasks: sources opened only when the
//! task run may read them, read line by line with a bound on a line, and outputs
//! streamed into the storage through a bounded pipe.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use kite_core::plugin::storage::files::{line_content, MAX_FILE_BYTES, MAX_LINE_BYTES};
use kite_core::plugin::storage::{readable, StorageError};
use kite_engine::ports::{ByteStream, FileStorage, StorageError as PortError};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream, ReadBuf};
use tokio::task::JoinHandle;

/// The storage's error in the task's words.
pub fn port_error(uri: &str, error: PortError) -> StorageError {
    match error {
        PortError::NotFound(_) => StorageError::NotFound(uri.to_string()),
        PortError::InvalidUri(_) => StorageError::NotReadable(uri.to_string()),
        PortError::TooLarge { limit } => StorageError::TooLarge {
            uri: uri.to_string(),
            limit,
        },
        PortError::Io(reason) => StorageError::Storage {
            uri: uri.to_string(),
            reason,
        },
    }
}

/// Opens `uri` for reading if the task run may read it.
pub async fn open(
    files: &dyn FileStorage,
    uri: &str,
    prefixes: &[String],
) -> Result<ByteStream, StorageError> {
    readable(uri, prefixes)?;
    files.get(uri).await.map_err(|e| port_error(uri, e))
}

/// The lines of a file, each without its line end.
pub struct Lines {
    reader: BufReader<ByteStream>,
    uri: String,
    buf: Vec<u8>,
}

impl Lines {
    pub async fn open(
        files: &dyn FileStorage,
        uri: &str,
        prefixes: &[String],
    ) -> Result<Lines, StorageError> {
        Ok(Lines::new(open(files, uri, prefixes).await?, uri))
    }

    /// The lines of a stream already open (`uri` names it in errors).
    pub fn new(stream: ByteStream, uri: &str) -> Lines {
        Lines {
            reader: BufReader::new(stream),
            uri: uri.to_string(),
            buf: Vec::new(),
        }
    }

    /// The next line, `None` at the end of the file.
    pub async fn next(&mut self) -> Result<Option<&[u8]>, StorageError> {
        self.buf.clear();
        let limit = MAX_LINE_BYTES as u64 + 1;
        let read = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut self.buf)
            .await
            .map_err(|e| StorageError::Storage {
                uri: self.uri.clone(),
                reason: e.to_string(),
            })?;
        if read == 0 {
            return Ok(None);
        }
        if line_content(&self.buf).len() > MAX_LINE_BYTES {
            return Err(StorageError::LineTooLong {
                uri: self.uri.clone(),
                limit: MAX_LINE_BYTES,
            });
        }
        Ok(Some(line_content(&self.buf)))
    }
}

/// A file being written: bytes go through a bounded pipe to the storage's `put`, so that
/// neither side holds the whole file. Dropped unfinished, it stores nothing.
pub struct Sink {
    writer: Option<DuplexStream>,
    put: Option<JoinHandle<Result<u64, PortError>>>,
    /// Set by [`Sink::finish`]: the end of the pipe is then the end of the file.
    complete: Arc<AtomicBool>,
    uri: String,
}

/// The storage's end of a [`Sink`]'s pipe: an end that [`Sink::finish`] did not announce
/// (the task failed or was stopped) is an error, so the storage keeps no partial file.
struct Guarded {
    reader: DuplexStream,
    complete: Arc<AtomicBool>,
}

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.reader).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            if buf.filled().len() == before && !self.complete.load(Ordering::Acquire) {
                return Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the file was not finished",
                )));
            }
        }
        polled
    }
}

impl Sink {
    pub fn open(files: &Arc<dyn FileStorage>, uri: String) -> Sink {
        Sink::open_limited(files, uri, MAX_FILE_BYTES)
    }

    /// A file of at most `limit` bytes.
    pub fn open_limited(files: &Arc<dyn FileStorage>, uri: String, limit: u64) -> Sink {
        let (writer, reader) = tokio::io::duplex(64 * 1024);
        let complete = Arc::new(AtomicBool::new(false));
        let reader = Guarded {
            reader,
            complete: complete.clone(),
        };
        let put = {
            let (files, uri) = (files.clone(), uri.clone());
            tokio::spawn(async move { files.put(&uri, Box::pin(reader), limit).await })
        };
        Sink {
            writer: Some(writer),
            put: Some(put),
            complete,
            uri,
        }
    }

    /// Writes `bytes`; when the storage stopped reading, its reason.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        if let Some(writer) = self.writer.as_mut() {
            if writer.write_all(bytes).await.is_ok() {
                return Ok(());
            }
        }
        // The put ended early (too large, storage failure): its answer says why.
        self.writer = None;
        Err(match self.put.take() {
            Some(put) => match put.await {
                Ok(Err(e)) => port_error(&self.uri, e),
                _ => self.stopped(),
            },
            None => self.stopped(),
        })
    }

    fn stopped(&self) -> StorageError {
        StorageError::Storage {
            uri: self.uri.clone(),
            reason: "the storage stopped reading".into(),
        }
    }

    /// Copies a whole stream into the file.
    pub async fn copy(&mut self, from: &mut ByteStream, from_uri: &str) -> Result<(), StorageError> {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = from.read(&mut chunk).await.map_err(|e| StorageError::Storage {
                uri: from_uri.to_string(),
                reason: e.to_string(),
            })?;
            if n == 0 {
                return Ok(());
            }
            self.write(&chunk[..n]).await?;
        }
    }

    /// Ends the file; its URI once stored.
    pub async fn finish(mut self) -> Result<String, StorageError> {
        self.complete.store(true, Ordering::Release);
        if let Some(mut writer) = self.writer.take() {
            let _ = writer.shutdown().await;
        }
        let Some(put) = self.put.take() else {
            return Err(self.stopped());
        };
        match put.await {
            Ok(Ok(_)) => Ok(std::mem::take(&mut self.uri)),
            Ok(Err(e)) => Err(port_error(&self.uri, e)),
            Err(e) => Err(StorageError::Storage {
                uri: self.uri.clone(),
                reason: e.to_string(),
            }),
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        // Not needed for correctness (the pipe's end is an error), only to stop early.
        if let Some(put) = self.put.take() {
            put.abort();
        }
    }
}
