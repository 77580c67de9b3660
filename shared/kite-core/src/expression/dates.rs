//! Dates the way Kestra's Pebble filters handle them: Java `DateTimeFormatter`
//! patterns, ISO inputs, zone names.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::Value;

/// Kestra's default `iso` format: `yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX`.
pub const ISO: &str = "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX";

/// A date filter that cannot read, compute or write its date.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DateError {
    /// A number that is not an `f64`.
    #[error("invalid timestamp")]
    InvalidTimestamp,
    /// Epoch seconds outside the range of dates.
    #[error("invalid timestamp `{0}`")]
    TimestampOutOfRange(f64),
    /// Text (or a value, as JSON) that is no date Kite reads.
    #[error("Unable to parse date `{0}`")]
    Unparsable(String),
    /// Text that does not match the given `existingFormat`.
    #[error("Unable to parse date `{value}` with format `{format}`")]
    UnparsableWithFormat { value: String, format: String },
    /// A `timeZone` that is no IANA zone name.
    #[error("Unknown time zone `{0}`")]
    UnknownTimeZone(String),
    /// A Java pattern letter Kite does not translate.
    #[error("Unsupported date pattern letter `{letter}` in `{pattern}`")]
    UnsupportedPatternLetter { letter: char, pattern: String },
    /// `dateAdd` went past the range of dates.
    #[error("date out of range")]
    OutOfRange,
    /// A `dateAdd` unit that is no `ChronoUnit` Kite supports.
    #[error("Unsupported unit `{0}`")]
    UnsupportedUnit(String),
}

/// Reads a date from a filter input: ISO date-time, date, or epoch seconds.
pub fn parse_date(value: &Value, existing_format: Option<&str>) -> Result<DateTime<FixedOffset>, DateError> {
    match value {
        Value::Number(n) => {
            let secs = n.as_f64().ok_or(DateError::InvalidTimestamp)?;
            let whole = secs.trunc() as i64;
            let nanos = ((secs - secs.trunc()) * 1e9) as u32;
            Utc.timestamp_opt(whole, nanos)
                .single()
                .map(|d| d.fixed_offset())
                .ok_or(DateError::TimestampOutOfRange(secs))
        }
        Value::String(s) => parse_date_str(s, existing_format),
        other => Err(DateError::Unparsable(other.to_string())),
    }
}

fn parse_date_str(s: &str, existing_format: Option<&str>) -> Result<DateTime<FixedOffset>, DateError> {
    if let Some(fmt) = existing_format {
        let chrono_fmt = java_to_chrono(fmt)?;
        if let Ok(d) = DateTime::parse_from_str(s, &chrono_fmt) {
            return Ok(d);
        }
        if let Ok(d) = NaiveDateTime::parse_from_str(s, &chrono_fmt) {
            return Ok(d.and_utc().fixed_offset());
        }
        if let Ok(d) = NaiveDate::parse_from_str(s, &chrono_fmt) {
            return Ok(d
                .and_hms_opt(0, 0, 0)
                .unwrap_or_default()
                .and_utc()
                .fixed_offset());
        }
        return Err(DateError::UnparsableWithFormat {
            value: s.to_string(),
            format: fmt.to_string(),
        });
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Ok(d);
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(d.and_utc().fixed_offset());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc()
            .fixed_offset());
    }
    Err(DateError::Unparsable(s.to_string()))
}

/// Formats in a Java pattern (or `iso`), in a zone (default: the date's own offset,
/// UTC for Kite's instants).
pub fn format_date(
    date: DateTime<FixedOffset>,
    format: Option<&str>,
    zone: Option<&str>,
) -> Result<String, DateError> {
    let pattern = match format {
        None | Some("iso") => ISO,
        Some("iso_date_time") | Some("ISO_DATE_TIME") => "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
        Some("iso_date") | Some("ISO_DATE") => "yyyy-MM-dd",
        Some("iso_time") | Some("ISO_TIME") => "HH:mm:ss.SSSSSS",
        Some("iso_local_date") | Some("ISO_LOCAL_DATE") => "yyyy-MM-dd",
        Some("iso_instant") | Some("ISO_INSTANT") => "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
        Some(p) => p,
    };
    let zulu = pattern.contains("XXX") || pattern.ends_with('X');
    let fmt = java_to_chrono(pattern)?;
    let rendered = match zone {
        Some(z) => {
            let tz: Tz = z.parse().map_err(|_| DateError::UnknownTimeZone(z.to_string()))?;
            let local = date.with_timezone(&tz);
            fix_zulu(
                local.format(&fmt).to_string(),
                local.offset().to_string().as_str(),
                zulu,
            )
        }
        None => fix_zulu(date.format(&fmt).to_string(), &date.offset().to_string(), zulu),
    };
    Ok(rendered)
}

/// Java's `XXX` writes `Z` for a zero offset where chrono writes `+00:00`.
fn fix_zulu(s: String, _offset: &str, zulu: bool) -> String {
    if zulu && s.ends_with("+00:00") {
        format!("{}Z", &s[..s.len() - 6])
    } else {
        s
    }
}

/// Converts a Java `DateTimeFormatter` pattern to a chrono format string.
pub fn java_to_chrono(pattern: &str) -> Result<String, DateError> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '\'' {
                let ch = chars[j];
                if ch == '%' {
                    out.push_str("%%");
                } else {
                    out.push(ch);
                }
                j += 1;
            }
            if j == i + 1 {
                out.push('\'');
            }
            i = j + 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            if c == '%' {
                out.push_str("%%");
            } else {
                out.push(c);
            }
            i += 1;
            continue;
        }
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == c {
            n += 1;
        }
        let piece = match (c, n) {
            ('y' | 'u', 2) => "%y".to_string(),
            ('y' | 'u', _) => "%Y".to_string(),
            ('M', 1) => "%-m".to_string(),
            ('M', 2) => "%m".to_string(),
            ('M', 3) => "%b".to_string(),
            ('M', _) => "%B".to_string(),
            ('d', 1) => "%-d".to_string(),
            ('d', _) => "%d".to_string(),
            ('D', _) => "%j".to_string(),
            ('H', 1) => "%-H".to_string(),
            ('H', _) => "%H".to_string(),
            ('h', 1) => "%-I".to_string(),
            ('h', _) => "%I".to_string(),
            ('m', 1) => "%-M".to_string(),
            ('m', _) => "%M".to_string(),
            ('s', 1) => "%-S".to_string(),
            ('s', _) => "%S".to_string(),
            ('S', 3) => "%3f".to_string(),
            ('S', 6) => "%6f".to_string(),
            ('S', 9) => "%9f".to_string(),
            ('S', _) => "%6f".to_string(),
            ('a', _) => "%p".to_string(),
            ('E', 1..=3) => "%a".to_string(),
            ('E', _) => "%A".to_string(),
            ('X', 1) => "%#z".to_string(),
            ('X' | 'x', _) => "%:z".to_string(),
            ('Z', _) => "%z".to_string(),
            ('z' | 'V', _) => "%Z".to_string(),
            ('n', _) => "%f".to_string(),
            (other, _) => {
                return Err(DateError::UnsupportedPatternLetter {
                    letter: other,
                    pattern: pattern.to_string(),
                })
            }
        };
        out.push_str(&piece);
        i += n;
    }
    Ok(out)
}

/// `dateAdd` units (Java `ChronoUnit` names).
pub fn add(date: DateTime<FixedOffset>, amount: i64, unit: &str) -> Result<DateTime<FixedOffset>, DateError> {
    use chrono::{Duration, Months};
    let d = match unit.to_ascii_uppercase().as_str() {
        "NANOS" => date + Duration::nanoseconds(amount),
        "MICROS" => date + Duration::microseconds(amount),
        "MILLIS" => date + Duration::milliseconds(amount),
        "SECONDS" => date + Duration::seconds(amount),
        "MINUTES" => date + Duration::minutes(amount),
        "HOURS" => date + Duration::hours(amount),
        "HALF_DAYS" => date + Duration::hours(12 * amount),
        "DAYS" => date + Duration::days(amount),
        "WEEKS" => date + Duration::weeks(amount),
        "MONTHS" | "YEARS" | "DECADES" | "CENTURIES" => {
            let months = match unit.to_ascii_uppercase().as_str() {
                "MONTHS" => amount,
                "YEARS" => amount * 12,
                "DECADES" => amount * 120,
                _ => amount * 1200,
            };
            let m = Months::new(months.unsigned_abs() as u32);
            if months >= 0 {
                date.checked_add_months(m)
            } else {
                date.checked_sub_months(m)
            }
            .ok_or(DateError::OutOfRange)?
        }
        other => return Err(DateError::UnsupportedUnit(other.to_string())),
    };
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_patterns() {
        assert_eq!(java_to_chrono("yyyy-MM-dd").unwrap(), "%Y-%m-%d");
        assert_eq!(
            java_to_chrono("yyyy-MM-dd'T'HH:mm:ss.SSSXXX").unwrap(),
            "%Y-%m-%dT%H:%M:%S.%3f%:z"
        );
    }

    #[test]
    fn iso_uses_zulu() {
        let d = parse_date(&Value::String("2024-12-20T10:00:00Z".into()), None).unwrap();
        assert_eq!(format_date(d, None, None).unwrap(), "2024-12-20T10:00:00.000000Z");
        assert_eq!(
            format_date(d, Some("yyyy-MM-dd HH:mm"), Some("Europe/Paris")).unwrap(),
            "2024-12-20 11:00"
        );
    }

    #[test]
    fn errors_keep_their_messages() {
        use serde_json::json;
        let d = parse_date(&json!("2024-12-20T10:00:00Z"), None).unwrap();
        let cases = [
            (
                parse_date(&json!(true), None).unwrap_err(),
                "Unable to parse date `true`",
            ),
            (
                parse_date(&json!("soon"), None).unwrap_err(),
                "Unable to parse date `soon`",
            ),
            (
                parse_date(&json!("soon"), Some("yyyy-MM-dd")).unwrap_err(),
                "Unable to parse date `soon` with format `yyyy-MM-dd`",
            ),
            (
                parse_date(&json!(1e20), None).unwrap_err(),
                "invalid timestamp `100000000000000000000`",
            ),
            (
                format_date(d, Some("yyyy qq"), None).unwrap_err(),
                "Unsupported date pattern letter `q` in `yyyy qq`",
            ),
            (
                format_date(d, None, Some("Mars/Olympus")).unwrap_err(),
                "Unknown time zone `Mars/Olympus`",
            ),
            (add(d, 1, "eons").unwrap_err(), "Unsupported unit `EONS`"),
            (add(d, 1_000_000, "YEARS").unwrap_err(), "date out of range"),
            (DateError::InvalidTimestamp, "invalid timestamp"),
        ];
        for (e, message) in cases {
            assert_eq!(e.to_string(), message);
        }
    }
}
