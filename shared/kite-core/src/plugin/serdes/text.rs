//! How records become text, one at a time: CSV rows into Ion values (`CsvToIon`), Ion
//! values into CSV fields (`IonToCsv`, as Kestra's `toString` of the Java value, times by
//! the task's patterns) and into JSON (`IonToJson`, as Kestra's JSON mapper writes them).

use chrono::{FixedOffset, Offset};

use super::pattern::JavaPattern;
use super::{CsvReading, OnBadLines};
use crate::ion::{java_decimal, java_double, IonValue, JavaTime};

/// `quoteMode` (or `alwaysDelimitText: true`, which is `ALWAYS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuoteMode {
    /// Every field, empty and null ones too.
    Always,
    /// Fields holding the separator, the delimiter or a line end.
    Required,
    /// Every field but numbers (and nulls).
    NonNumeric,
}

/// How `IonToCsv` writes.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvWriting {
    pub header: bool,
    pub field_separator: u8,
    pub text_delimiter: u8,
    pub line_delimiter: String,
    pub quote: QuoteMode,
    pub formats: TextFormats,
}

/// `dateFormat`, `timeFormat`, `dateTimeFormat` and `timeZoneId`.
#[derive(Debug, Clone, PartialEq)]
pub struct TextFormats {
    pub date: JavaPattern,
    pub time: JavaPattern,
    pub date_time: JavaPattern,
    pub zone: chrono_tz::Tz,
}

fn offset_in(zone: chrono_tz::Tz, at: chrono::DateTime<FixedOffset>) -> chrono::DateTime<FixedOffset> {
    let local = at.with_timezone(&zone);
    let offset: FixedOffset = local.offset().fix();
    at.with_timezone(&offset)
}

impl TextFormats {
    /// A time value as Kestra's writers format it: instants and local date-times in UTC,
    /// zoned ones in `timeZoneId`.
    pub fn format(&self, time: &JavaTime) -> Result<String, String> {
        match time {
            JavaTime::Instant(at) => {
                let at = at.with_timezone(&FixedOffset::east_opt(0).expect("UTC"));
                self.date_time
                    .format(Some(at.date_naive()), Some(at.time()), Some(*at.offset()))
            }
            JavaTime::LocalDateTime(at) => self.date_time.format(Some(at.date()), Some(at.time()), None),
            JavaTime::Zoned(at) => {
                let at = offset_in(self.zone, *at);
                self.date_time
                    .format(Some(at.date_naive()), Some(at.time()), Some(*at.offset()))
            }
            JavaTime::LocalDate(date) => self.date.format(Some(*date), None, None),
            JavaTime::LocalTime(time) => self.time.format(None, Some(*time), None),
            JavaTime::OffsetTime(time, offset) => self.time.format(None, Some(*time), Some(*offset)),
        }
    }
}

/// A value as Java's `toString` prints it (nested values of a CSV field).
pub(crate) fn java_text(value: &IonValue) -> String {
    if let Some(time) = JavaTime::of(value) {
        return time.to_iso();
    }
    match value.unannotated().0 {
        IonValue::Null(_) => "null".into(),
        IonValue::Bool(b) => b.to_string(),
        IonValue::Int(i) => i.to_string(),
        IonValue::Float(f) => java_double(*f),
        IonValue::Decimal(d) => java_decimal(d),
        IonValue::List(items) | IonValue::Sexp(items) => {
            let items: Vec<String> = items.iter().map(java_text).collect();
            format!("[{}]", items.join(", "))
        }
        IonValue::Struct(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{k}={}", java_text(v)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
        other => match other.to_json() {
            serde_json::Value::String(s) => s,
            json => json.to_string(),
        },
    }
}

/// A CSV field of `IonToCsv`: `None` for null.
pub fn csv_field(value: &IonValue, formats: &TextFormats) -> Result<Option<String>, String> {
    if let Some(time) = JavaTime::of(value) {
        return formats.format(&time).map(Some);
    }
    Ok(match value.unannotated().0 {
        IonValue::Null(_) => None,
        _ => Some(java_text(value)),
    })
}

/// Whether `NON_NUMERIC` leaves a field unquoted: an optional sign, digits, at most one
/// point.
fn is_numeric(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().filter(|b| *b == b'.').count() <= 1
}

/// Appends one CSV record (with its line delimiter) to `out`.
pub fn write_csv_record(out: &mut Vec<u8>, fields: &[Option<String>], csv: &CsvWriting) {
    let quote = csv.text_delimiter;
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(csv.field_separator);
        }
        let quoted = match (field, csv.quote) {
            (None, QuoteMode::Always) => true,
            (None, _) => false,
            (Some(_), QuoteMode::Always) => true,
            (Some(text), mode) => {
                text.bytes()
                    .any(|b| b == csv.field_separator || b == quote || b == b'\n' || b == b'\r')
                    || (mode == QuoteMode::NonNumeric && !text.is_empty() && !is_numeric(text))
            }
        };
        let text = field.as_deref().unwrap_or("");
        if quoted {
            out.push(quote);
            for b in text.bytes() {
                if b == quote {
                    out.push(quote);
                }
                out.push(b);
            }
            out.push(quote);
        } else {
            out.extend_from_slice(text.as_bytes());
        }
    }
    out.extend_from_slice(csv.line_delimiter.as_bytes());
}

/// Turns `CsvToIon`'s rows into records: the header row, `skipRows`, Kestra's `\N` nulls
/// and the field count check.
#[derive(Debug)]
pub struct CsvRecords {
    reading: CsvReading,
    headers: Option<Vec<String>>,
    skipped: u64,
}

/// What became of a row.
#[derive(Debug, PartialEq)]
pub enum CsvRow {
    Record(IonValue),
    /// The header, a skipped or an empty row.
    Skipped,
    /// A bad row left out (`onBadLines: WARN` or `SKIP`): the warning.
    Bad(String),
}

impl CsvRecords {
    pub fn new(reading: CsvReading) -> CsvRecords {
        CsvRecords {
            reading,
            headers: None,
            skipped: 0,
        }
    }

    /// The row starting on `line`, or Kestra's message for a bad one (`ERROR`).
    pub fn row(&mut self, line: u64, fields: Vec<String>) -> Result<CsvRow, String> {
        if self.reading.skip_empty_rows && fields.len() == 1 && fields[0].is_empty() {
            return Ok(CsvRow::Skipped);
        }
        if self.reading.header && self.headers.is_none() {
            self.headers = Some(fields);
            return Ok(CsvRow::Skipped);
        }
        if self.skipped < self.reading.skip_rows {
            self.skipped += 1;
            return Ok(CsvRow::Skipped);
        }
        let value = |field: String| {
            if field == "\\N" {
                IonValue::Null(crate::ion::IonType::Null)
            } else {
                IonValue::String(field)
            }
        };
        let Some(headers) = &self.headers else {
            return Ok(CsvRow::Record(IonValue::List(
                fields.into_iter().map(value).collect(),
            )));
        };
        let mut names: Vec<&String> = Vec::with_capacity(headers.len());
        for h in headers {
            if !names.contains(&h) {
                names.push(h);
            }
        }
        if fields.len() != headers.len() {
            let message = format!(
                "Bad line encountered (field count mismatch): Expected {}, got {} fields.",
                names.len(),
                fields.len()
            );
            return match self.reading.on_bad_lines {
                OnBadLines::Error => Err(message),
                OnBadLines::Warn | OnBadLines::Skip => Ok(CsvRow::Bad(format!("Line {line}: {message}"))),
            };
        }
        // A repeated header keeps its first place and its last value, as a map does.
        let mut record: Vec<(String, IonValue)> = names
            .iter()
            .map(|n| ((*n).clone(), IonValue::Null(crate::ion::IonType::Null)))
            .collect();
        for (name, field) in headers.iter().zip(fields) {
            if let Some(slot) = record.iter_mut().find(|(n, _)| n == name) {
                slot.1 = value(field);
            }
        }
        Ok(CsvRow::Record(IonValue::Struct(record)))
    }
}

/// Appends `value` as Kestra's JSON mapper writes it (compact; times as ISO text, zoned
/// ones in `zone`; numbers as Java prints them).
pub fn write_json(out: &mut String, value: &IonValue, zone: chrono_tz::Tz) {
    if let Some(time) = JavaTime::of(value) {
        let time = match time {
            JavaTime::Zoned(at) => {
                let at = offset_in(zone, at);
                if at.offset().local_minus_utc() == 0 {
                    JavaTime::Instant(at.to_utc())
                } else {
                    JavaTime::Zoned(at)
                }
            }
            other => other,
        };
        push_json_string(out, &time.to_iso());
        return;
    }
    match value.unannotated().0 {
        IonValue::Float(f) if !f.is_finite() => push_json_string(out, &java_double(*f)),
        IonValue::Float(f) => out.push_str(&java_double(*f)),
        IonValue::Decimal(d) => out.push_str(&java_decimal(d)),
        IonValue::List(items) | IonValue::Sexp(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item, zone);
            }
            out.push(']');
        }
        IonValue::Struct(fields) => {
            out.push('{');
            for (i, (name, item)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_string(out, name);
                out.push(':');
                write_json(out, item, zone);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_json().to_string()),
    }
}

fn push_json_string(out: &mut String, text: &str) {
    out.push_str(&serde_json::Value::String(text.to_string()).to_string());
}
