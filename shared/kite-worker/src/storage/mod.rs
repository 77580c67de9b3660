//! The storage tasks' calls (`io.kestra.plugin.core.storage.*`), made through the engine's
//! file storage port: sources are read as streams, line by line where the task works on
//! lines, and outputs are streamed under the task run's storage prefix. Only `Reverse`
//! (the whole file) and `DeduplicateItems` (its keys) hold more than a line, within the
//! limits of `kite_core::plugin::storage::files`.

pub(crate) mod io;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use kite_core::plugin::storage::files::{
    extension_of, output_uri, Chunker, MAX_DEDUPLICATE_KEYS, MAX_OPEN_FILES, MAX_REVERSE_BYTES,
    MAX_SPLIT_FILES,
};
use kite_core::plugin::storage::items::ItemRenderer;
use kite_core::plugin::storage::{readable, SplitBy, StorageAnswer, StorageCall, StorageError};
use kite_engine::ports::FileStorage;
use tokio::io::AsyncReadExt;

pub(crate) use io::port_error;
use io::{open, Lines, Sink};

/// Items files are written as Kestra writes them: `.ion`.
const ITEMS_EXTENSION: &str = ".ion";

/// Where a task run reads and writes.
pub struct Scope<'a> {
    pub files: &'a Arc<dyn FileStorage>,
    /// The task run's storage prefix: every file it writes goes under it.
    pub prefix: &'a str,
    /// The prefixes it may read (and delete) under.
    pub readable: &'a [String],
    pub now: DateTime<Utc>,
}

/// Makes `call`.
pub async fn run(scope: &Scope<'_>, call: &StorageCall) -> Result<StorageAnswer, StorageError> {
    match call {
        StorageCall::Write { content, extension } => {
            let mut sink = Sink::open(scope.files, output_uri(scope.prefix, "content", extension));
            sink.write(content.as_bytes()).await?;
            Ok(StorageAnswer::Stored {
                uri: sink.finish().await?,
            })
        }
        StorageCall::Concat {
            files,
            separator,
            extension,
        } => concat(scope, files, separator.as_deref(), extension).await,
        StorageCall::Split { from, by, separator } => split(scope, from, by, separator).await,
        StorageCall::PurgeExecutionFiles { prefix } => {
            let files = scope
                .files
                .list(prefix)
                .await
                .map_err(|e| port_error(prefix, e))?;
            scope
                .files
                .delete_prefix(prefix)
                .await
                .map_err(|e| port_error(prefix, e))?;
            Ok(StorageAnswer::Purged {
                uris: files.into_iter().map(|f| f.uri).collect(),
            })
        }
        StorageCall::Size { uri } => {
            readable(uri, scope.readable)?;
            match scope.files.size(uri).await.map_err(|e| port_error(uri, e))? {
                Some(size) => Ok(StorageAnswer::Size { size }),
                None => Err(StorageError::NotFound(uri.clone())),
            }
        }
        StorageCall::Delete { uri, .. } => {
            readable(uri, scope.readable)?;
            let deleted = match scope.files.size(uri).await.map_err(|e| port_error(uri, e))? {
                // Only a file: `delete_prefix` would also empty a folder of that name.
                Some(_) => {
                    scope
                        .files
                        .delete_prefix(uri)
                        .await
                        .map_err(|e| port_error(uri, e))?
                        > 0
                }
                None => false,
            };
            Ok(StorageAnswer::Deleted {
                uri: uri.clone(),
                deleted,
            })
        }
        StorageCall::Reverse { from, separator } => reverse(scope, from, separator).await,
        StorageCall::FilterItems {
            from,
            condition,
            filter_type,
            on_error_or_null,
        } => {
            let renderer = ItemRenderer::new(condition.as_str(), scope.now);
            let mut lines = Lines::open(scope.files.as_ref(), from, scope.readable).await?;
            let mut sink = Sink::open(scope.files, output_uri(scope.prefix, "filtered", ITEMS_EXTENSION));
            let (mut number, mut processed, mut dropped) = (0u64, 0u64, 0u64);
            while let Some(item) = lines.next().await? {
                number += 1;
                if item.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                processed += 1;
                if renderer.keep(item, number, *filter_type, *on_error_or_null)? {
                    let mut line = item.to_vec();
                    line.push(b'\n');
                    sink.write(&line).await?;
                } else {
                    dropped += 1;
                }
            }
            Ok(StorageAnswer::Items {
                uri: sink.finish().await?,
                processed,
                dropped,
                keys: None,
            })
        }
        StorageCall::DeduplicateItems { from, expr } => deduplicate(scope, from, expr).await,
    }
}

async fn concat(
    scope: &Scope<'_>,
    files: &[String],
    separator: Option<&str>,
    extension: &str,
) -> Result<StorageAnswer, StorageError> {
    // Every source is checked before anything is written.
    for file in files {
        readable(file, scope.readable)?;
    }
    let mut sink = Sink::open(scope.files, output_uri(scope.prefix, "concat", extension));
    for file in files {
        let mut source = open(scope.files.as_ref(), file, scope.readable).await?;
        sink.copy(&mut source, file).await?;
        if let Some(separator) = separator {
            sink.write(separator.as_bytes()).await?;
        }
    }
    Ok(StorageAnswer::Stored {
        uri: sink.finish().await?,
    })
}

async fn split(
    scope: &Scope<'_>,
    from: &str,
    by: &SplitBy,
    separator: &str,
) -> Result<StorageAnswer, StorageError> {
    let extension = extension_of(from);
    let mut lines = Lines::open(scope.files.as_ref(), from, scope.readable).await?;
    let mut opened = 0usize;
    let mut next_sink = || {
        opened += 1;
        if opened > MAX_SPLIT_FILES {
            return Err(StorageError::TooManyFiles {
                limit: MAX_SPLIT_FILES,
            });
        }
        let name = format!("split-{}", opened - 1);
        Ok(Sink::open(
            scope.files,
            output_uri(scope.prefix, &name, &extension),
        ))
    };
    let row = |line: &[u8]| [line, separator.as_bytes()].concat();
    let mut sinks: Vec<Sink> = Vec::new();
    match by {
        SplitBy::Bytes(_) | SplitBy::Rows(_) => {
            let (bytes, rows) = match by {
                SplitBy::Bytes(n) => (Some(*n), None),
                SplitBy::Rows(n) => (None, Some(*n)),
                _ => (None, None),
            };
            let mut chunker = Chunker::new(bytes, rows);
            let mut done = Vec::new();
            while let Some(line) = lines.next().await? {
                let row = row(line);
                if chunker.next_line(row.len() as u64) {
                    if let Some(full) = sinks.pop() {
                        done.push(full.finish().await?);
                    }
                    sinks.push(next_sink()?);
                }
                if let Some(sink) = sinks.last_mut() {
                    sink.write(&row).await?;
                }
            }
            if let Some(last) = sinks.pop() {
                done.push(last.finish().await?);
            }
            return Ok(StorageAnswer::Split { uris: done });
        }
        SplitBy::Partitions(partitions) => {
            let mut index = 0;
            while let Some(line) = lines.next().await? {
                let row = row(line);
                // Opened in turn, so only the partitions that get a line exist.
                if index == sinks.len() {
                    sinks.push(next_sink()?);
                }
                sinks[index].write(&row).await?;
                index = (index + 1) % partitions;
            }
        }
        SplitBy::Regex(pattern) => {
            let pattern = regex::bytes::Regex::new(pattern).map_err(|e| StorageError::Storage {
                uri: from.to_string(),
                reason: format!("invalid regexPattern: {e}"),
            })?;
            let mut groups: HashMap<Vec<u8>, usize> = HashMap::new();
            while let Some(line) = lines.next().await? {
                let Some(key) = pattern.captures(line).and_then(|c| c.get(1)) else {
                    continue; // lines without the group are left out, as in Kestra
                };
                let index = match groups.get(key.as_bytes()) {
                    Some(i) => *i,
                    None => {
                        if sinks.len() >= MAX_OPEN_FILES {
                            return Err(StorageError::TooManyFiles {
                                limit: MAX_OPEN_FILES,
                            });
                        }
                        groups.insert(key.as_bytes().to_vec(), sinks.len());
                        sinks.push(next_sink()?);
                        sinks.len() - 1
                    }
                };
                let row = row(line);
                sinks[index].write(&row).await?;
            }
        }
    }
    let mut uris = Vec::with_capacity(sinks.len());
    for sink in sinks {
        uris.push(sink.finish().await?);
    }
    Ok(StorageAnswer::Split { uris })
}

async fn reverse(scope: &Scope<'_>, from: &str, separator: &str) -> Result<StorageAnswer, StorageError> {
    let source = open(scope.files.as_ref(), from, scope.readable).await?;
    let mut content = Vec::new();
    source
        .take(MAX_REVERSE_BYTES + 1)
        .read_to_end(&mut content)
        .await
        .map_err(|e| StorageError::Storage {
            uri: from.to_string(),
            reason: e.to_string(),
        })?;
    if content.len() as u64 > MAX_REVERSE_BYTES {
        return Err(StorageError::TooLarge {
            uri: from.to_string(),
            limit: MAX_REVERSE_BYTES,
        });
    }
    // Lines as Java reads them: a final line end does not start an empty line.
    let body = content.strip_suffix(b"\n").unwrap_or(&content);
    let mut sink = Sink::open(
        scope.files,
        output_uri(scope.prefix, "reverse", &extension_of(from)),
    );
    if !content.is_empty() {
        for line in body.rsplit(|b| *b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            sink.write(&[line, separator.as_bytes()].concat()).await?;
        }
    }
    Ok(StorageAnswer::Stored {
        uri: sink.finish().await?,
    })
}

/// Keeps the last item of each key: a first pass finds each key's last line, a second
/// writes those lines (Kestra's two passes, so the items are never all in memory).
async fn deduplicate(scope: &Scope<'_>, from: &str, expr: &str) -> Result<StorageAnswer, StorageError> {
    let renderer = ItemRenderer::new(expr, scope.now);
    let mut last: HashMap<String, u64> = HashMap::new();
    let mut lines = Lines::open(scope.files.as_ref(), from, scope.readable).await?;
    let mut number = 0u64;
    while let Some(item) = lines.next().await? {
        number += 1;
        if item.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let key = renderer.render(item, number)?;
        if last.len() >= MAX_DEDUPLICATE_KEYS && !last.contains_key(&key) {
            return Err(StorageError::TooManyKeys {
                limit: MAX_DEDUPLICATE_KEYS,
            });
        }
        last.insert(key, number);
    }
    let mut lines = Lines::open(scope.files.as_ref(), from, scope.readable).await?;
    let mut sink = Sink::open(
        scope.files,
        output_uri(scope.prefix, "deduplicated", ITEMS_EXTENSION),
    );
    let (mut number, mut processed, mut dropped) = (0u64, 0u64, 0u64);
    while let Some(item) = lines.next().await? {
        number += 1;
        if item.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        processed += 1;
        let key = renderer.render(item, number)?;
        if last.get(&key) == Some(&number) {
            let mut line = item.to_vec();
            line.push(b'\n');
            sink.write(&line).await?;
        } else {
            dropped += 1;
        }
    }
    Ok(StorageAnswer::Items {
        uri: sink.finish().await?,
        processed,
        dropped,
        keys: Some(last.len() as u64),
    })
}
