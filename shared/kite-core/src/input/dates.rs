//! The date and time types: DATETIME, DATE, TIME (with `after`/`before`) and
//! DURATION (with `min`/`max`), parsed and printed as `java.time` does.

use std::sync::OnceLock;

use chrono::{DateTime, NaiveDate, NaiveTime, SecondsFormat, Utc};
use serde_json::Value;

use super::iso::{IsoError, IsoScanner};
use super::{regex, InputDefinition, InputError, InputValue};

/// DATETIME: an instant, printed in UTC.
pub(super) fn datetime(def: &InputDefinition, value: InputValue, shown: &str) -> Result<Value, InputError> {
    let id = def.id.as_str();
    let parse_err = InputError::unparsable_as(def, shown);
    let d = parse_instant(&value.text()).map_err(|e| parse_err(&e.to_string()))?;
    for (bound, after) in [(&def.after, true), (&def.before, false)] {
        if let Some(b) = bound
            .as_ref()
            .map(crate::expression::write_pebble)
            .and_then(|b| parse_instant(&b).ok())
        {
            if (after && d < b) || (!after && d > b) {
                let word = if after { "after" } else { "before" };
                return Err(InputError::invalid(
                    id,
                    &format!("it must be {word} `{}`", java_instant(b)),
                    shown,
                ));
            }
        }
    }
    Ok(Value::String(java_instant(d)))
}

/// DATE: a local date.
pub(super) fn date(def: &InputDefinition, value: InputValue, shown: &str) -> Result<Value, InputError> {
    let id = def.id.as_str();
    let parse_err = InputError::unparsable_as(def, shown);
    let d = parse_date(&value.text()).map_err(|e| parse_err(&e.to_string()))?;
    for (bound, after) in [(&def.after, true), (&def.before, false)] {
        let b = bound.as_ref().map(crate::expression::write_pebble);
        if let Some(b) = b.and_then(|b| parse_date(&b).ok()) {
            if (after && d < b) || (!after && d > b) {
                let word = if after { "after" } else { "before" };
                return Err(InputError::invalid(
                    id,
                    &format!("it must be {word} `{}`", b.format("%Y-%m-%d")),
                    shown,
                ));
            }
        }
    }
    Ok(Value::String(d.format("%Y-%m-%d").to_string()))
}

/// TIME: a local time.
pub(super) fn time(def: &InputDefinition, value: InputValue, shown: &str) -> Result<Value, InputError> {
    let id = def.id.as_str();
    let parse_err = InputError::unparsable_as(def, shown);
    let t = parse_time(&value.text()).map_err(|e| parse_err(&e.to_string()))?;
    for (bound, after) in [(&def.after, true), (&def.before, false)] {
        let b = bound.as_ref().map(crate::expression::write_pebble);
        if let Some(b) = b.and_then(|b| parse_time(&b).ok()) {
            if (after && t < b) || (!after && t > b) {
                let word = if after { "after" } else { "before" };
                return Err(InputError::invalid(
                    id,
                    &format!("it must be {word} `{}`", java_time(b)),
                    shown,
                ));
            }
        }
    }
    Ok(Value::String(java_time(t)))
}

/// DURATION: an ISO-8601 duration.
pub(super) fn duration(def: &InputDefinition, value: InputValue, shown: &str) -> Result<Value, InputError> {
    let id = def.id.as_str();
    let parse_err = InputError::unparsable_as(def, shown);
    let d =
        parse_iso_duration(&value.text()).ok_or_else(|| parse_err("Text cannot be parsed to a Duration"))?;
    for (bound, more) in [(&def.min, true), (&def.max, false)] {
        let b = bound.as_ref().map(crate::expression::write_pebble);
        if let Some(b) = b.and_then(|b| parse_iso_duration(&b)) {
            if (more && d < b) || (!more && d > b) {
                let word = if more { "more" } else { "less" };
                return Err(InputError::invalid(
                    id,
                    &format!("It must be {word} than `{}`", java_duration(b)),
                    shown,
                ));
            }
        }
    }
    Ok(Value::String(java_duration(d)))
}

/// Java's `Instant.toString` (ISO-8601 UTC, fraction in groups of three digits).
fn java_instant(d: DateTime<Utc>) -> String {
    d.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Java's `Duration.toString`: `PT5M6S`, `PT24H`, `PT0.5S`, `PT-1H-30M`, `PT0S`.
pub fn java_duration(d: chrono::Duration) -> String {
    // Java keeps floor seconds and a positive nano adjustment.
    let mut seconds = d.num_seconds();
    let mut nanos = i64::from(d.subsec_nanos());
    if nanos < 0 {
        seconds -= 1;
        nanos += 1_000_000_000;
    }
    if seconds == 0 && nanos == 0 {
        return "PT0S".into();
    }
    let effective = if seconds < 0 && nanos > 0 {
        seconds + 1
    } else {
        seconds
    };
    let hours = effective / 3600;
    let minutes = (effective % 3600) / 60;
    let secs = effective % 60;
    let mut out = String::from("PT");
    if hours != 0 {
        out.push_str(&format!("{hours}H"));
    }
    if minutes != 0 {
        out.push_str(&format!("{minutes}M"));
    }
    if secs == 0 && nanos == 0 && out.len() > 2 {
        return out;
    }
    if seconds < 0 && nanos > 0 && secs == 0 {
        out.push_str("-0");
    } else {
        out.push_str(&secs.to_string());
    }
    if nanos > 0 {
        let fraction = if seconds < 0 { 1_000_000_000 - nanos } else { nanos };
        let f = format!("{fraction:09}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
    out.push('S');
    out
}

/// Java's `Instant.parse`: `2019-10-06T18:27:49Z`, seconds required, an offset allowed.
fn parse_instant(s: &str) -> Result<DateTime<Utc>, IsoError> {
    let mut sc = IsoScanner::new(s.trim());
    let date = sc.date_fields()?;
    sc.literal(b'T')?;
    let time = sc.time_fields(true)?;
    let offset = sc.offset()?;
    sc.end()?;
    let local = sc.check_date(date)?.and_time(sc.check_time(time)?);
    let utc = local - chrono::Duration::seconds(i64::from(offset));
    Ok(utc.and_utc())
}

/// Java's `LocalDate.parse`: `2023-01-01`.
fn parse_date(s: &str) -> Result<NaiveDate, IsoError> {
    let mut sc = IsoScanner::new(s.trim());
    let date = sc.date_fields()?;
    sc.end()?;
    sc.check_date(date)
}

/// Java's `LocalTime.parse`: `HH:mm`, `HH:mm:ss`, `HH:mm:ss.nnnnnnnnn`.
fn parse_time(s: &str) -> Result<NaiveTime, IsoError> {
    let mut sc = IsoScanner::new(s.trim());
    let time = sc.time_fields(false)?;
    sc.end()?;
    sc.check_time(time)
}

/// Java's `LocalTime.toString`: seconds only when not zero.
fn java_time(t: NaiveTime) -> String {
    use chrono::Timelike;
    if t.nanosecond() != 0 {
        t.format("%H:%M:%S%.f").to_string()
    } else if t.second() != 0 {
        t.format("%H:%M:%S").to_string()
    } else {
        t.format("%H:%M").to_string()
    }
}

/// Parses an ISO-8601 duration as Java's `Duration.parse` does
/// (`PT1H30M`, `P2D`, `PT0.5S`, `-PT1S`, `PT-6H3M`; no years, months or weeks).
pub fn parse_iso_duration(s: &str) -> Option<chrono::Duration> {
    static DURATION: OnceLock<regex::Regex> = OnceLock::new();
    let re = regex(
        r"(?i)^([-+]?)P(?:([-+]?[0-9]+)D)?(T(?:([-+]?[0-9]+)H)?(?:([-+]?[0-9]+)M)?(?:([-+]?[0-9]+)(?:[.,]([0-9]{0,9}))?S)?)?$",
        &DURATION,
    );
    let c = re.captures(s.trim())?;
    let part = |i: usize| c.get(i).map(|m| m.as_str());
    if part(2).is_none() && part(4).is_none() && part(5).is_none() && part(6).is_none() {
        return None;
    }
    // A `T` must introduce at least one time part.
    if part(3).is_some_and(|t| t.len() == 1) {
        return None;
    }
    let number = |i: usize| -> Option<i128> { part(i).map_or(Some(0), |v| v.parse().ok()) };
    const NANOS: i128 = 1_000_000_000;
    // Checked: 30 digits of days overflow even i128, and such a duration is no duration.
    let nanos_of = |i: usize, unit: i128| number(i)?.checked_mul(unit)?.checked_mul(NANOS);
    let mut total = nanos_of(2, 86_400)?
        .checked_add(nanos_of(4, 3_600)?)?
        .checked_add(nanos_of(5, 60)?)?
        .checked_add(nanos_of(6, 1)?)?;
    if let Some(fraction) = part(7).filter(|f| !f.is_empty()) {
        let nanos: i128 = format!("{fraction:0<9}").parse().ok()?;
        total = total.checked_add(if part(6).is_some_and(|s| s.starts_with('-')) {
            -nanos
        } else {
            nanos
        })?;
    }
    if part(1) == Some("-") {
        total = -total;
    }
    let seconds = i64::try_from(total.div_euclid(NANOS)).ok()?;
    let nanos = u32::try_from(total.rem_euclid(NANOS)).ok()?;
    chrono::Duration::new(seconds, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_too_long_for_any_clock_are_no_durations_not_an_overflow() {
        // Found by the fuzz target of flows (a retry interval): 30 digits of days.
        assert_eq!(parse_iso_duration("P99999999999999999999999999999D"), None);
        assert_eq!(parse_iso_duration("PT99999999999999999999999999999999H"), None);
        assert_eq!(parse_iso_duration("PT170141183460469231731687303715S"), None);
        assert_eq!(
            parse_iso_duration("P1DT1H1M1.5S"),
            Some(chrono::Duration::milliseconds(90_061_500))
        );
    }
}
