//! The serdes conversions' calls (`io.kestra.plugin.serdes.*`): the source is read as a
//! stream (CSV in chunks, Ion and JSON lines one at a time) and each record written as
//! it is read into the output file, through the storage's bounded pipe; memory holds a
//! record and a buffer, whatever the file's size. Only `JsonToIon` with `newLine: false`
//! reads its whole source (one JSON document), within a limit. Sources in another
//! `charset` are decoded as they are read ([`charset`]), outputs encoded as they are
//! written.

mod charset;
mod csv;
mod excel;

use kite_core::ion::{IonError, IonValue, LineReader};
use kite_core::plugin::serdes::charset::TextEncoder;
use kite_core::plugin::serdes::text::write_json;
use kite_core::plugin::serdes::{Charset, SerdesAnswer, SerdesCall, SerdesError, MAX_JSON_DOCUMENT_BYTES};
use kite_core::plugin::storage::files::{output_uri, MAX_LINE_BYTES};
use kite_core::plugin::storage::StorageError;
use tokio::io::AsyncReadExt;

use self::charset::open_text;
use crate::storage::io::{Lines, Sink};
use crate::storage::Scope;

/// The largest file a conversion writes (Ion repeats field names: a 1 GB CSV file is a
/// larger Ion file).
pub const MAX_CONVERTED_BYTES: u64 = 8 * 1024 * 1024 * 1024;

/// Buffers records into the output's pipe in large writes, in the output's charset.
pub(crate) struct Output {
    sink: Sink,
    buf: Vec<u8>,
    encoder: TextEncoder,
}

const FLUSH_AT: usize = 64 * 1024;

impl Output {
    /// A UTF-8 output (or bytes that are no text).
    pub(crate) fn open(scope: &Scope<'_>, extension: &str) -> Output {
        Output::open_in(scope, extension, Charset::Utf8)
    }

    /// An output file of this name, UTF-8 (a task writing several).
    pub(crate) fn named(scope: &Scope<'_>, name: &str, extension: &str) -> Output {
        Output::create(scope, name, extension, Charset::Utf8)
    }

    pub(crate) fn open_in(scope: &Scope<'_>, extension: &str, charset: Charset) -> Output {
        Output::create(scope, "result", extension, charset)
    }

    fn create(scope: &Scope<'_>, name: &str, extension: &str, charset: Charset) -> Output {
        let uri = output_uri(scope.prefix, name, extension);
        Output {
            sink: Sink::open_limited(scope.files, uri, MAX_CONVERTED_BYTES),
            buf: Vec::with_capacity(FLUSH_AT * 2),
            encoder: charset.encoder(),
        }
    }

    /// Appends `bytes`: UTF-8 text (whole characters), or any bytes in a UTF-8 output.
    pub(crate) async fn push(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        if self.encoder.is_identity() {
            self.buf.extend_from_slice(bytes);
        } else {
            self.encoder
                .push(&String::from_utf8_lossy(bytes), false, &mut self.buf);
        }
        if self.buf.len() >= FLUSH_AT {
            self.sink.write(&self.buf).await?;
            self.buf.clear();
        }
        Ok(())
    }

    pub(crate) async fn finish(mut self) -> Result<String, StorageError> {
        // A stateful encoding returns to its initial state.
        self.encoder.push("", true, &mut self.buf);
        if !self.buf.is_empty() {
            self.sink.write(&self.buf).await?;
        }
        self.sink.finish().await
    }
}

/// An Ion reading error as the task's: the line and what is wrong there.
fn ion_error(error: IonError, line: u64) -> SerdesError {
    match error {
        IonError::Invalid {
            line,
            column,
            message,
        } => SerdesError::Record {
            line,
            message: format!("invalid Ion at column {column}: {message}"),
        },
        other => SerdesError::Record {
            line,
            message: other.to_string(),
        },
    }
}

/// The Ion values of a file, one at a time, with the line each starts on.
pub(crate) struct IonValues {
    lines: Lines,
    reader: LineReader,
    ready: std::collections::VecDeque<(u64, IonValue)>,
}

impl IonValues {
    pub(crate) async fn open(
        scope: &Scope<'_>,
        uri: &str,
        charset: Charset,
    ) -> Result<IonValues, SerdesError> {
        Ok(IonValues {
            lines: Lines::new(open_text(scope, uri, charset).await?, uri),
            reader: LineReader::new(MAX_LINE_BYTES),
            ready: Default::default(),
        })
    }

    pub(crate) async fn next(&mut self) -> Result<Option<(u64, IonValue)>, SerdesError> {
        loop {
            if let Some(value) = self.ready.pop_front() {
                return Ok(Some(value));
            }
            let number = self.reader.lines() + 1;
            let Some(line) = self.lines.next().await? else {
                self.reader.finish().map_err(|e| ion_error(e, number))?;
                return Ok(None);
            };
            let text = std::str::from_utf8(line).map_err(|_| SerdesError::Record {
                line: number,
                message: "not UTF-8 text".into(),
            })?;
            self.ready
                .extend(self.reader.push_line(text).map_err(|e| ion_error(e, number))?);
        }
    }
}

/// Makes `call`.
pub async fn run(scope: &Scope<'_>, call: &SerdesCall) -> Result<SerdesAnswer, SerdesError> {
    match call {
        SerdesCall::CsvToIon { from, csv, charset } => csv::csv_to_ion(scope, from, csv, *charset).await,
        SerdesCall::IonToCsv { from, csv, charset } => csv::ion_to_csv(scope, from, csv, *charset).await,
        SerdesCall::JsonToIon {
            from,
            new_line,
            charset,
        } => json_to_ion(scope, from, *new_line, *charset).await,
        SerdesCall::IonToExcel { excel } => excel::ion_to_excel(scope, excel).await,
        SerdesCall::IonToJson {
            from,
            new_line,
            zone,
            charset,
        } => {
            let mut values = IonValues::open(scope, from, Charset::Utf8).await?;
            let mut out = Output::open_in(scope, if *new_line { ".jsonl" } else { ".json" }, *charset);
            let mut records = 0u64;
            let mut text = String::new();
            if !new_line {
                out.push(b"[").await?;
            }
            while let Some((_, value)) = values.next().await? {
                text.clear();
                if !new_line && records > 0 {
                    text.push(',');
                }
                write_json(&mut text, &value, *zone);
                if *new_line {
                    text.push('\n');
                }
                out.push(text.as_bytes()).await?;
                records += 1;
            }
            if !new_line {
                out.push(b"]").await?;
            }
            Ok(SerdesAnswer {
                uri: out.finish().await?,
                records,
                warnings: Vec::new(),
            })
        }
    }
}

async fn json_to_ion(
    scope: &Scope<'_>,
    from: &str,
    new_line: bool,
    charset: Charset,
) -> Result<SerdesAnswer, SerdesError> {
    let mut out = Output::open(scope, ".ion");
    let mut records = 0u64;
    let mut write = |value: &serde_json::Value| {
        records += 1;
        let mut line = kite_core::ion::to_line(value);
        line.push('\n');
        line
    };
    if new_line {
        let mut lines = Lines::new(open_text(scope, from, charset).await?, from);
        let mut number = 0u64;
        while let Some(line) = lines.next().await? {
            number += 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let value: serde_json::Value = serde_json::from_slice(line).map_err(|e| SerdesError::Record {
                line: number,
                message: format!("invalid JSON: {e}"),
            })?;
            out.push(write(&value).as_bytes()).await?;
        }
    } else {
        let source = open_text(scope, from, charset).await?;
        let mut content = Vec::new();
        source
            .take(MAX_JSON_DOCUMENT_BYTES + 1)
            .read_to_end(&mut content)
            .await
            .map_err(|e| StorageError::Storage {
                uri: from.to_string(),
                reason: e.to_string(),
            })?;
        if content.len() as u64 > MAX_JSON_DOCUMENT_BYTES {
            return Err(StorageError::TooLarge {
                uri: from.to_string(),
                limit: MAX_JSON_DOCUMENT_BYTES,
            }
            .into());
        }
        let document: serde_json::Value =
            serde_json::from_slice(&content).map_err(|e| SerdesError::Record {
                line: e.line() as u64,
                message: format!("invalid JSON: {e}"),
            })?;
        drop(content);
        match &document {
            serde_json::Value::Array(items) => {
                for item in items {
                    out.push(write(item).as_bytes()).await?;
                }
            }
            other => out.push(write(other).as_bytes()).await?,
        }
    }
    Ok(SerdesAnswer {
        uri: out.finish().await?,
        records,
        warnings: Vec::new(),
    })
}
