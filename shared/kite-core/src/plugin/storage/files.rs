//! What the storage tasks decide about files without touching them: which URIs a task
//! run may read, the extensions and names of the files it writes, the sizes `Split`
//! reads, the limits, and the errors the worker reports.

/// The extension of a written file when none is given (Kestra's temporary files').
pub const DEFAULT_EXTENSION: &str = ".tmp";

/// The largest file a storage task writes (streamed, never held whole).
pub const MAX_FILE_BYTES: u64 = 1024 * 1024 * 1024;

/// The largest file `Reverse` reads: it holds the whole file to reverse it.
pub const MAX_REVERSE_BYTES: u64 = 64 * 1024 * 1024;

/// The most files one `Split` writes.
pub const MAX_SPLIT_FILES: usize = 10_000;

/// The most files `Split` writes at once: `partitions`, or the groups of a `regexPattern`.
pub const MAX_OPEN_FILES: usize = 128;

/// The longest line the line-oriented tasks read.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// The most distinct keys `DeduplicateItems` keeps in memory.
pub const MAX_DEDUPLICATE_KEYS: usize = 1_000_000;

/// Why a storage task failed; the FAILED task run's ERROR line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// Not a `kestra:///` URI of this execution's files (or of the files it was given).
    #[error("Unable to read the file '{0}' as it didn't belong to the current execution")]
    NotReadable(String),
    #[error("Unable to find file '{0}'")]
    NotFound(String),
    #[error("Invalid extension '{0}': expected letters, digits, '.', '-' or '_'")]
    InvalidExtension(String),
    #[error("The file '{uri}' is larger than the limit of {limit} bytes")]
    TooLarge { uri: String, limit: u64 },
    #[error("Split would write more than {limit} files")]
    TooManyFiles { limit: usize },
    #[error("A line of '{uri}' is longer than the limit of {limit} bytes")]
    LineTooLong { uri: String, limit: usize },
    #[error("More than {limit} distinct keys: the file is too large to deduplicate")]
    TooManyKeys { limit: usize },
    /// An item's expression failed (or an item is not a map), with its 1-based line.
    #[error("Item on line {line}: {message}")]
    Item { line: u64, message: String },
    #[error("Storage error on '{uri}': {reason}")]
    Storage { uri: String, reason: String },
}

/// Checks that `uri` is a `kestra:///` file under one of the `prefixes` the task run may
/// read (as `read()` does).
pub fn readable(uri: &str, prefixes: &[String]) -> Result<(), StorageError> {
    if crate::run_variables::may_read(uri, prefixes) {
        Ok(())
    } else {
        Err(StorageError::NotReadable(uri.to_string()))
    }
}

/// An `extension` property: a leading dot is added when missing, as Kestra does.
pub fn extension(given: &str) -> Result<String, StorageError> {
    let given = given.trim();
    let valid = !given.is_empty()
        && given.len() <= 32
        && given
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !valid || given.trim_start_matches('.').is_empty() {
        return Err(StorageError::InvalidExtension(given.to_string()));
    }
    Ok(if given.starts_with('.') {
        given.to_string()
    } else {
        format!(".{given}")
    })
}

/// The extension of the file at `uri` (`.ion`, `.csv`…), or [`DEFAULT_EXTENSION`]: the
/// files `Split` and `Reverse` write keep their source's.
pub fn extension_of(uri: &str) -> String {
    let name = uri.rsplit('/').next().unwrap_or("");
    match name.rfind('.') {
        Some(i) if i + 1 < name.len() => extension(&name[i..]).unwrap_or_else(|_| DEFAULT_EXTENSION.into()),
        _ => DEFAULT_EXTENSION.to_string(),
    }
}

/// The URI of a file a task run writes: `{prefix}{name}{extension}`.
pub fn output_uri(prefix: &str, name: &str, extension: &str) -> String {
    format!("{prefix}{name}{extension}")
}

/// A size such as `10MB`, `512KB`, `1GB` (units of 1024) or a plain number of bytes, as
/// Kestra reads `Split`'s `bytes`; `None` for anything else or zero.
pub fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_uppercase();
    let (digits, unit) = match text.len().checked_sub(2).map(|i| text.split_at(i)) {
        Some((digits, "KB")) => (digits, 1024),
        Some((digits, "MB")) => (digits, 1024 * 1024),
        Some((digits, "GB")) => (digits, 1024 * 1024 * 1024),
        _ => (text.as_str(), 1),
    };
    digits
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|n| *n > 0)
}

/// A line without its end (`\n`, `\r\n` or a lone `\r` before it), as Java's
/// `readLine` gives it.
pub fn line_content(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Decides, line by line, when `Split` by `bytes` or `rows` starts its next file: before
/// a line, once the current file holds at least `bytes` bytes or `rows` lines.
#[derive(Debug, Clone)]
pub struct Chunker {
    max_bytes: Option<u64>,
    max_rows: Option<usize>,
    bytes: u64,
    rows: usize,
    started: bool,
}

impl Chunker {
    pub fn new(max_bytes: Option<u64>, max_rows: Option<usize>) -> Chunker {
        Chunker {
            max_bytes,
            max_rows,
            bytes: 0,
            rows: 0,
            started: false,
        }
    }

    /// Counts a line of `written` bytes (its separator included); `true` when it starts
    /// a new file.
    pub fn next_line(&mut self, written: u64) -> bool {
        let full = self.max_bytes.is_some_and(|max| self.bytes >= max)
            || self.max_rows.is_some_and(|max| self.rows >= max);
        let new_file = !self.started || full;
        if new_file {
            self.started = true;
            self.bytes = 0;
            self.rows = 0;
        }
        self.bytes += written;
        self.rows += 1;
        new_file
    }
}
