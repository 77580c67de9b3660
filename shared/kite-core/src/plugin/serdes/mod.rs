//! Kestra's serdes conversions (`io.kestra.plugin.serdes.*`): `csv.CsvToIon`,
//! `csv.IonToCsv`, `json.JsonToIon`, `json.IonToJson` and `excel.IonToExcel`, with their
//! legacy names, properties, defaults and outputs. The worker streams the files through
//! the file storage; how a value becomes CSV or JSON text ([`text`]) or an Excel cell
//! ([`excel`]) is decided here, as Kestra's Java values print, over the Ion mapping of
//! [`crate::ion`]. [`charset`] reads and writes the charsets of `charset`.

pub mod charset;
pub mod excel;
pub mod pattern;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_excel;
pub mod text;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::props::Props;
use super::storage::StorageError;
use super::{Check, IoAnswer, IoCall, IoKind, IoTaskSpec, Property, Render, TaskRunContext};
use crate::execution::{LogLevel, StateType, TaskResult};
pub use charset::Charset;
pub use excel::{ExcelCell, ExcelWriting};
pub use pattern::JavaPattern;
pub use text::{CsvWriting, QuoteMode, TextFormats};

/// A conversion, rendered.
#[derive(Debug, Clone, PartialEq)]
pub enum SerdesCall {
    CsvToIon {
        from: String,
        csv: CsvReading,
        charset: Charset,
    },
    IonToCsv {
        from: String,
        csv: CsvWriting,
        charset: Charset,
    },
    /// `new_line`: one JSON value per line; else one JSON document (an array's items are
    /// the records).
    JsonToIon {
        from: String,
        new_line: bool,
        charset: Charset,
    },
    /// `new_line`: JSON lines (`.jsonl`); else one JSON array (`.json`).
    IonToJson {
        from: String,
        new_line: bool,
        zone: chrono_tz::Tz,
        charset: Charset,
    },
    /// One workbook (`.xlsx`), a sheet per Ion file.
    IonToExcel { excel: ExcelWriting },
}

/// How `CsvToIon` reads CSV.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvReading {
    pub header: bool,
    pub field_separator: u8,
    pub text_delimiter: u8,
    pub skip_empty_rows: bool,
    pub skip_rows: u64,
    pub on_bad_lines: OnBadLines,
    /// The longest field, in bytes (`maxFieldSize`).
    pub max_field_size: usize,
    /// The most bytes a field may take in the parser's buffer (`maxBufferSize`).
    pub max_buffer_size: usize,
}

/// `onBadLines`: what `CsvToIon` does with a row whose field count is not the header's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnBadLines {
    Error,
    Warn,
    Skip,
}

/// What the worker did: the file written and how many records it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct SerdesAnswer {
    pub uri: String,
    pub records: u64,
    /// `onBadLines: WARN`: the rows left out (the first ones, with their line numbers).
    pub warnings: Vec<String>,
}

/// Why a conversion failed: the file could not be read or written, or a record is not
/// what the format says (with its 1-based line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SerdesError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("Line {line}: {message}")]
    Record { line: u64, message: String },
    /// The workbook could not be written (a sheet title Excel refuses…).
    #[error("{0}")]
    Workbook(String),
}

/// The warnings kept in an answer; the rest are counted only.
pub const MAX_WARNINGS: usize = 100;

/// The largest JSON document `JsonToIon` reads with `newLine: false` (it holds it whole,
/// as Kestra does).
pub const MAX_JSON_DOCUMENT_BYTES: u64 = 64 * 1024 * 1024;

const CSV_TO_ION: &[Property] = &[
    Property::new("from", Check::Required),
    Property::new("header", Check::Any),
    Property::new("fieldSeparator", Check::Any),
    Property::new("textDelimiter", Check::Any),
    Property::new("skipEmptyRows", Check::Any),
    Property::new("errorOnDifferentFieldCount", Check::Any),
    Property::new("onBadLines", Check::Any),
    Property::new("skipRows", Check::Any),
    Property::new("charset", Check::Any),
    Property::new("maxBufferSize", Check::Any),
    Property::new("allowExtraCharsAfterClosingQuote", Check::Any),
    Property::new("maxFieldSize", Check::Any),
];
const ION_TO_CSV: &[Property] = &[
    Property::new("from", Check::Required),
    Property::new("header", Check::Any),
    Property::new("fieldSeparator", Check::Any),
    Property::new("textDelimiter", Check::Any),
    Property::new("lineDelimiter", Check::Any),
    Property::new("alwaysDelimitText", Check::Any),
    Property::new("quoteMode", Check::Any),
    Property::new("charset", Check::Any),
    Property::new("dateFormat", Check::Any),
    Property::new("timeFormat", Check::Any),
    Property::new("dateTimeFormat", Check::Any),
    Property::new("timeZoneId", Check::Any),
];
const JSON_TO_ION: &[Property] = &[
    Property::new("from", Check::Required),
    Property::new("charset", Check::Any),
    Property::new("newLine", Check::Any),
];
const ION_TO_JSON: &[Property] = &[
    Property::new("from", Check::Required),
    Property::new("charset", Check::Any),
    Property::new("newLine", Check::Any),
    Property::new("timeZoneId", Check::Any),
];

pub const TASKS: &[IoTaskSpec] = &[
    IoTaskSpec::new(
        IoKind::SerdesCsvToIon,
        "io.kestra.plugin.serdes.csv.CsvToIon",
        CSV_TO_ION,
        prepare_csv_to_ion,
        finish,
    )
    .with_aliases(&["io.kestra.plugin.serdes.csv.CsvReader"]),
    IoTaskSpec::new(
        IoKind::SerdesIonToCsv,
        "io.kestra.plugin.serdes.csv.IonToCsv",
        ION_TO_CSV,
        prepare_ion_to_csv,
        finish,
    )
    .with_aliases(&["io.kestra.plugin.serdes.csv.CsvWriter"]),
    IoTaskSpec::new(
        IoKind::SerdesJsonToIon,
        "io.kestra.plugin.serdes.json.JsonToIon",
        JSON_TO_ION,
        prepare_json_to_ion,
        finish,
    )
    .with_aliases(&["io.kestra.plugin.serdes.json.JsonReader"]),
    IoTaskSpec::new(
        IoKind::SerdesIonToJson,
        "io.kestra.plugin.serdes.json.IonToJson",
        ION_TO_JSON,
        prepare_ion_to_json,
        finish,
    )
    .with_aliases(&["io.kestra.plugin.serdes.json.JsonWriter"]),
    IoTaskSpec::new(
        IoKind::SerdesIonToExcel,
        "io.kestra.plugin.serdes.excel.IonToExcel",
        excel::ION_TO_EXCEL,
        excel::prepare_ion_to_excel,
        finish,
    ),
];

impl Props<'_> {
    /// A one-character property (`fieldSeparator`, `textDelimiter`), ASCII.
    fn character(&self, name: &str, default: u8) -> Result<u8, String> {
        let Some(text) = self.rendered(name)? else {
            return Ok(default);
        };
        match text.as_bytes() {
            [c] if c.is_ascii() => Ok(*c),
            _ => Err(format!("Invalid `{name}` '{text}': expected one ASCII character")),
        }
    }

    /// `charset`, a Java charset name: UTF-8 by default.
    fn charset(&self) -> Result<Charset, String> {
        charset::parse(self.rendered("charset")?.as_deref())
    }

    fn number(&self, name: &str, default: u64) -> Result<u64, String> {
        match self.rendered(name)? {
            None => Ok(default),
            Some(text) => text
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("Invalid `{name}` value '{text}': expected a number")),
        }
    }

    fn pattern(&self, name: &str, default: &str) -> Result<JavaPattern, String> {
        let text = self.rendered(name)?.unwrap_or_else(|| default.to_string());
        JavaPattern::parse(&text)
    }
}

fn prepare_csv_to_ion(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    let charset = p.charset()?;
    let on_bad_lines = match p.rendered("onBadLines")?.as_deref().map(str::trim) {
        None | Some("ERROR") => OnBadLines::Error,
        Some("WARN") => OnBadLines::Warn,
        Some("SKIP") => OnBadLines::Skip,
        Some(other) => {
            return Err(format!(
                "Invalid `onBadLines` '{other}': expected one of ERROR, WARN, SKIP"
            ))
        }
    };
    let bound = |n: u64| {
        usize::try_from(n)
            .unwrap_or(usize::MAX)
            .clamp(1, super::storage::files::MAX_LINE_BYTES)
    };
    let max_field_size = bound(p.number("maxFieldSize", 16 * 1024 * 1024)?);
    let max_buffer_size = bound(p.number("maxBufferSize", 16 * 1024 * 1024)?);
    Ok(IoCall::Serdes(SerdesCall::CsvToIon {
        from: p.required("from")?,
        csv: CsvReading {
            header: p.flag("header", true)?,
            field_separator: p.character("fieldSeparator", b',')?,
            text_delimiter: p.character("textDelimiter", b'"')?,
            skip_empty_rows: p.flag("skipEmptyRows", false)?,
            skip_rows: p.number("skipRows", 0)?,
            on_bad_lines,
            max_field_size,
            max_buffer_size,
        },
        charset,
    }))
}

fn prepare_ion_to_csv(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    let charset = p.charset()?;
    let line_delimiter = match p.rendered("lineDelimiter")? {
        None => "\n".to_string(),
        Some(d) if matches!(d.as_str(), "\n" | "\r\n" | "\r") => d,
        Some(d) => {
            return Err(format!(
                "Invalid `lineDelimiter` {d:?}: expected \"\\n\", \"\\r\\n\" or \"\\r\""
            ))
        }
    };
    let quote = match p.rendered("quoteMode")?.as_deref().map(str::trim) {
        Some("ALWAYS") => QuoteMode::Always,
        Some("REQUIRED") => QuoteMode::Required,
        Some("NON_NUMERIC") => QuoteMode::NonNumeric,
        Some(other) => {
            return Err(format!(
                "Invalid `quoteMode` '{other}': expected one of ALWAYS, REQUIRED, NON_NUMERIC"
            ))
        }
        None if p.flag("alwaysDelimitText", false)? => QuoteMode::Always,
        None => QuoteMode::Required,
    };
    Ok(IoCall::Serdes(SerdesCall::IonToCsv {
        from: p.required("from")?,
        csv: CsvWriting {
            header: p.flag("header", true)?,
            field_separator: p.character("fieldSeparator", b',')?,
            text_delimiter: p.character("textDelimiter", b'"')?,
            line_delimiter,
            quote,
            formats: TextFormats {
                date: p.pattern("dateFormat", "yyyy-MM-dd")?,
                time: p.pattern("timeFormat", "HH:mm:ss[XXX]")?,
                date_time: p.pattern("dateTimeFormat", "yyyy-MM-dd'T'HH:mm:ss.SSS[XXX]")?,
                zone: p.time_zone()?,
            },
        },
        charset,
    }))
}

fn prepare_json_to_ion(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    Ok(IoCall::Serdes(SerdesCall::JsonToIon {
        from: p.required("from")?,
        new_line: p.flag("newLine", true)?,
        charset: p.charset()?,
    }))
}

fn prepare_ion_to_json(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    Ok(IoCall::Serdes(SerdesCall::IonToJson {
        from: p.required("from")?,
        new_line: p.flag("newLine", true)?,
        zone: p.time_zone()?,
        charset: p.charset()?,
    }))
}

fn finish(call: &IoCall, answer: IoAnswer, task_run: &TaskRunContext, now: DateTime<Utc>) -> TaskResult {
    let (IoCall::Serdes(call), IoAnswer::Serdes(answer)) = (call, answer) else {
        return task_run.failed("The worker answered another kind of call", now);
    };
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => return task_run.failed(e.to_string(), now),
    };
    let mut outputs = IndexMap::new();
    outputs.insert("uri".to_string(), Value::String(answer.uri));
    if let SerdesCall::IonToExcel { .. } = call {
        // Kestra's `size`: the records read from every sheet's file.
        outputs.insert("size".to_string(), Value::from(answer.records));
    }
    let mut result = task_run.result(StateType::Success, outputs);
    for warning in answer.warnings {
        result.logs.extend(task_run.log(LogLevel::Warn, warning, now));
    }
    result.logs.extend(task_run.log(
        LogLevel::Debug,
        format!("{} records converted", answer.records),
        now,
    ));
    result
}
