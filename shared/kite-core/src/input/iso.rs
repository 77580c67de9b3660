//! A reader of ISO-8601 dates, times and offsets that accepts what
//! `java.time`'s ISO formatters accept and fails with their messages.

use chrono::{NaiveDate, NaiveTime};

/// ISO-8601 text that cannot be read, with `java.time`'s `DateTimeParseException`
/// message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum IsoError {
    /// The text does not have the expected form at `index`.
    #[error("Text '{text}' could not be parsed at index {index}")]
    AtIndex { text: String, index: usize },
    /// Text is left after a complete value.
    #[error("Text '{text}' could not be parsed, unparsed text found at index {index}")]
    Unparsed { text: String, index: usize },
    /// A field is outside its range (`valid`: Java's `1 - 12`, `0 - 23`…).
    #[error("Text '{text}' could not be parsed: Invalid value for {field} (valid values {valid}): {value}")]
    FieldOutOfRange {
        text: String,
        field: &'static str,
        valid: &'static str,
        value: u32,
    },
    /// February 29 of a common year.
    #[error("Text '{text}' could not be parsed: Invalid date 'February 29' as '{year}' is not a leap year")]
    NotLeapYear { text: String, year: i32 },
    /// A day the month does not have (`month`: its upper-case English name).
    #[error("Text '{text}' could not be parsed: Invalid date '{month} {day}'")]
    InvalidDate {
        text: String,
        month: &'static str,
        day: u32,
    },
}

/// Reads ISO-8601 text the way `java.time`'s ISO formatters do, with their
/// error messages (`Text 'x' could not be parsed at index 0`).
pub(super) struct IsoScanner<'t> {
    text: &'t str,
    pos: usize,
}

impl<'t> IsoScanner<'t> {
    pub(super) fn new(text: &'t str) -> Self {
        IsoScanner { text, pos: 0 }
    }

    fn at_index(&self) -> IsoError {
        IsoError::AtIndex {
            text: self.text.to_string(),
            index: self.pos,
        }
    }

    fn out_of_range(&self, field: &'static str, valid: &'static str, value: u32) -> IsoError {
        IsoError::FieldOutOfRange {
            text: self.text.to_string(),
            field,
            valid,
            value,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    pub(super) fn literal(&mut self, c: u8) -> Result<(), IsoError> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.at_index())
        }
    }

    /// Exactly `n` digits.
    fn digits(&mut self, n: usize) -> Result<u32, IsoError> {
        let bytes = self.text.as_bytes();
        let end = self.pos + n;
        if end > bytes.len() || !bytes[self.pos..end].iter().all(u8::is_ascii_digit) {
            return Err(self.at_index());
        }
        let v = self.text[self.pos..end].parse().map_err(|_| self.at_index())?;
        self.pos = end;
        Ok(v)
    }

    /// `.` followed by up to nine digits, as nanoseconds.
    fn fraction(&mut self) -> u32 {
        if self.peek() != Some(b'.') {
            return 0;
        }
        self.pos += 1;
        let start = self.pos;
        while self.pos - start < 9 && self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let digits = &self.text[start..self.pos];
        format!("{digits:0<9}").parse().unwrap_or(0)
    }

    pub(super) fn end(&self) -> Result<(), IsoError> {
        if self.pos == self.text.len() {
            Ok(())
        } else {
            Err(IsoError::Unparsed {
                text: self.text.to_string(),
                index: self.pos,
            })
        }
    }

    pub(super) fn date_fields(&mut self) -> Result<(i32, u32, u32), IsoError> {
        let year = self.digits(4)? as i32;
        self.literal(b'-')?;
        let month = self.digits(2)?;
        self.literal(b'-')?;
        let day = self.digits(2)?;
        Ok((year, month, day))
    }

    /// `HH:mm`, then `:ss` and a fraction when `seconds` says so or when present.
    pub(super) fn time_fields(&mut self, seconds_required: bool) -> Result<(u32, u32, u32, u32), IsoError> {
        let hour = self.digits(2)?;
        self.literal(b':')?;
        let minute = self.digits(2)?;
        let (mut second, mut nano) = (0, 0);
        if seconds_required || self.peek() == Some(b':') {
            self.literal(b':')?;
            second = self.digits(2)?;
            nano = self.fraction();
        }
        Ok((hour, minute, second, nano))
    }

    pub(super) fn check_date(&self, (year, month, day): (i32, u32, u32)) -> Result<NaiveDate, IsoError> {
        const MONTHS: [&str; 12] = [
            "JANUARY",
            "FEBRUARY",
            "MARCH",
            "APRIL",
            "MAY",
            "JUNE",
            "JULY",
            "AUGUST",
            "SEPTEMBER",
            "OCTOBER",
            "NOVEMBER",
            "DECEMBER",
        ];
        if !(1..=12).contains(&month) {
            return Err(self.out_of_range("MonthOfYear", "1 - 12", month));
        }
        if !(1..=31).contains(&day) {
            return Err(self.out_of_range("DayOfMonth", "1 - 28/31", day));
        }
        NaiveDate::from_ymd_opt(year, month, day).ok_or_else(|| {
            let text = self.text.to_string();
            if month == 2 && day == 29 {
                IsoError::NotLeapYear { text, year }
            } else {
                IsoError::InvalidDate {
                    text,
                    month: MONTHS[month as usize - 1],
                    day,
                }
            }
        })
    }

    pub(super) fn check_time(
        &self,
        (hour, minute, second, nano): (u32, u32, u32, u32),
    ) -> Result<NaiveTime, IsoError> {
        for (v, name, max, valid) in [
            (hour, "HourOfDay", 23, "0 - 23"),
            (minute, "MinuteOfHour", 59, "0 - 59"),
            (second, "SecondOfMinute", 59, "0 - 59"),
        ] {
            if v > max {
                return Err(self.out_of_range(name, valid, v));
            }
        }
        NaiveTime::from_hms_nano_opt(hour, minute, second, nano).ok_or_else(|| self.at_index())
    }

    /// `Z` or `+HH`, `+HH:MM`, `+HH:MM:ss`, in seconds east of UTC.
    pub(super) fn offset(&mut self) -> Result<i32, IsoError> {
        match self.peek() {
            Some(b'Z') => {
                self.pos += 1;
                Ok(0)
            }
            Some(sign @ (b'+' | b'-')) => {
                self.pos += 1;
                let mut secs = self.digits(2)? as i32 * 3600;
                if self.peek() == Some(b':') {
                    self.pos += 1;
                    secs += self.digits(2)? as i32 * 60;
                    if self.peek() == Some(b':') {
                        self.pos += 1;
                        secs += self.digits(2)? as i32;
                    }
                }
                if secs > 18 * 3600 {
                    return Err(self.at_index());
                }
                Ok(if sign == b'-' { -secs } else { secs })
            }
            _ => Err(self.at_index()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_java_time_messages() {
        let date = |s: &str| {
            let mut sc = IsoScanner::new(s);
            sc.date_fields().and_then(|d| sc.check_date(d)).unwrap_err()
        };
        let time = |s: &str| {
            let mut sc = IsoScanner::new(s);
            sc.time_fields(false).and_then(|t| sc.check_time(t)).unwrap_err()
        };
        assert_eq!(
            date("2023-01-32").to_string(),
            "Text '2023-01-32' could not be parsed: Invalid value for DayOfMonth (valid values 1 - 28/31): 32"
        );
        assert_eq!(
            date("2023-04-31").to_string(),
            "Text '2023-04-31' could not be parsed: Invalid date 'APRIL 31'"
        );
        assert_eq!(
            time("10:60").to_string(),
            "Text '10:60' could not be parsed: Invalid value for MinuteOfHour (valid values 0 - 59): 60"
        );
        assert_eq!(
            time("10:00:61").to_string(),
            "Text '10:00:61' could not be parsed: Invalid value for SecondOfMinute (valid values 0 - 59): 61"
        );
        assert_eq!(
            IsoScanner::new("+19").offset().unwrap_err().to_string(),
            "Text '+19' could not be parsed at index 3"
        );
    }
}
