//! `excel.IonToExcel`: its properties, and the cell each Ion value becomes, as Kestra's
//! writer (Apache POI) sets cells from the Java values it reads.

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use serde_json::{Map, Value};

use super::charset::{self, Charset};
use super::text::java_text;
use super::SerdesCall;
use crate::ion::{java_decimal, IonValue, JavaTime};
use crate::plugin::props::Props;
use crate::plugin::{Check, IoCall, Property, Render};

/// How `IonToExcel` writes a workbook.
#[derive(Debug, Clone, PartialEq)]
pub struct ExcelWriting {
    /// Each sheet's title and the Ion file written into it, in order.
    pub sheets: Vec<(String, String)>,
    pub header: bool,
    /// Date cells shown with `date_format` (`styles`); else as their serial number.
    pub styles: bool,
    /// The Excel number format of date cells (`dateFormat`, as written).
    pub date_format: String,
    /// Where an instant's date is taken (`timeZoneId`).
    pub zone: chrono_tz::Tz,
    /// How the Ion files are read (`charset`).
    pub charset: Charset,
}

/// A cell as Kestra writes it.
#[derive(Debug, Clone, PartialEq)]
pub enum ExcelCell {
    /// Null: no cell.
    Empty,
    Number(f64),
    Bool(bool),
    /// An Excel serial date (days since 1899-12-30, time as the fraction).
    Date(f64),
    Text(String),
    /// A string starting with `Formula:`: the formula after it.
    Formula(String),
}

/// The most rows and columns a sheet holds.
pub const MAX_ROWS: u32 = 1_048_576;
pub const MAX_COLUMNS: u16 = 16_384;

pub(super) const ION_TO_EXCEL: &[Property] = &[
    Property::new("from", Check::Required),
    Property::new("charset", Check::Any),
    Property::new("sheetsTitle", Check::Any),
    Property::new("header", Check::Any),
    Property::new("styles", Check::Any),
    Property::new("dateFormat", Check::Any),
    Property::new("timeFormat", Check::Any),
    Property::new("dateTimeFormat", Check::Any),
    Property::new("timeZoneId", Check::Any),
];

pub(super) fn prepare_ion_to_excel(
    properties: &Map<String, Value>,
    render: &Render,
) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    let sheets = match properties.get("from") {
        // Several sheets: their titles and files.
        Some(Value::Object(map)) => {
            let sheets = map
                .iter()
                .map(|(title, uri)| {
                    Ok((
                        p.render_value(&Value::String(title.clone()))?,
                        p.render_value(uri)?,
                    ))
                })
                .collect::<Result<Vec<_>, String>>()?;
            if sheets.is_empty() {
                return Err("Invalid `from`: no sheet in the map of sheet titles to files".into());
            }
            sheets
        }
        _ => vec![(
            p.rendered("sheetsTitle")?.unwrap_or_else(|| "Sheet".into()),
            p.required("from")?,
        )],
    };
    // Checked like Kestra's, though only `dateFormat` shows in a workbook.
    p.pattern("timeFormat", "HH:mm:ss[XXX]")?;
    p.pattern("dateTimeFormat", "yyyy-MM-dd'T'HH:mm:ss.SSS[XXX]")?;
    Ok(IoCall::Serdes(SerdesCall::IonToExcel {
        excel: ExcelWriting {
            sheets,
            header: p.flag("header", true)?,
            styles: p.flag("styles", true)?,
            date_format: p.pattern("dateFormat", "yyyy-MM-dd")?.text().to_string(),
            zone: p.time_zone()?,
            charset: charset::parse(p.rendered("charset")?.as_deref())?,
        },
    }))
}

/// An Excel serial date-time, `None` outside Excel's years (1900 to 9999). Excel counts
/// the 29th of February 1900, which never was: days before March 1900 are one less.
pub fn excel_serial(at: NaiveDateTime) -> Option<f64> {
    if !(1900..=9999).contains(&at.year()) {
        return None;
    }
    let epoch = NaiveDate::from_ymd_opt(1899, 12, 30)?;
    let mut days = (at.date() - epoch).num_days() as f64;
    if at.date() < NaiveDate::from_ymd_opt(1900, 3, 1)? {
        days -= 1.0;
    }
    let seconds = f64::from(at.num_seconds_from_midnight()) + f64::from(at.nanosecond()) / 1e9;
    Some(days + seconds / 86_400.0)
}

fn date_cell(at: NaiveDateTime, time: &JavaTime) -> ExcelCell {
    excel_serial(at).map_or_else(|| ExcelCell::Text(time.to_iso()), ExcelCell::Date)
}

/// A string's cell: text, or a formula after `Formula:`.
pub fn text_cell(text: &str) -> ExcelCell {
    match text.strip_prefix("Formula:") {
        Some(formula) => ExcelCell::Formula(formula.to_string()),
        None => ExcelCell::Text(text.to_string()),
    }
}

/// The cell of a value: numbers (integers beyond 64 bits as text), booleans, dates
/// (`LocalDate`, `LocalDateTime`, and an instant's date in `zone`), no cell for null;
/// anything else as Java's `toString` prints it.
pub fn excel_cell(value: &IonValue, zone: chrono_tz::Tz) -> ExcelCell {
    if let Some(time) = JavaTime::of(value) {
        return match &time {
            JavaTime::LocalDate(date) => date_cell(date.and_time(chrono::NaiveTime::MIN), &time),
            JavaTime::LocalDateTime(at) => date_cell(*at, &time),
            JavaTime::Instant(at) => date_cell(
                at.with_timezone(&zone)
                    .date_naive()
                    .and_time(chrono::NaiveTime::MIN),
                &time,
            ),
            JavaTime::Zoned(_) | JavaTime::LocalTime(_) | JavaTime::OffsetTime(..) => {
                ExcelCell::Text(time.to_iso())
            }
        };
    }
    match value.unannotated().0 {
        IonValue::Null(_) => ExcelCell::Empty,
        IonValue::Bool(b) => ExcelCell::Bool(*b),
        IonValue::Int(i) if i64::try_from(*i).is_ok() => ExcelCell::Number(*i as f64),
        IonValue::Float(f) if f.is_finite() => ExcelCell::Number(*f),
        IonValue::Decimal(d) => match java_decimal(d).parse::<f64>() {
            Ok(f) if f.is_finite() => ExcelCell::Number(f),
            _ => ExcelCell::Text(java_decimal(d)),
        },
        IonValue::String(s) | IonValue::Symbol(s) => text_cell(s),
        _ => ExcelCell::Text(java_text(value)),
    }
}
