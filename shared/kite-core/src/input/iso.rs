//! A reader of ISO-8601 dates, times and offsets that accepts what
//! `java.time`'s ISO formatters accept and fails with their messages.

use chrono::{NaiveDate, NaiveTime};

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

    fn at_index(&self) -> String {
        format!("Text '{}' could not be parsed at index {}", self.text, self.pos)
    }

    fn invalid(&self, detail: &str) -> String {
        format!("Text '{}' could not be parsed: {detail}", self.text)
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    pub(super) fn literal(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.at_index())
        }
    }

    /// Exactly `n` digits.
    fn digits(&mut self, n: usize) -> Result<u32, String> {
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

    pub(super) fn end(&self) -> Result<(), String> {
        if self.pos == self.text.len() {
            Ok(())
        } else {
            Err(format!(
                "Text '{}' could not be parsed, unparsed text found at index {}",
                self.text, self.pos
            ))
        }
    }

    pub(super) fn date_fields(&mut self) -> Result<(i32, u32, u32), String> {
        let year = self.digits(4)? as i32;
        self.literal(b'-')?;
        let month = self.digits(2)?;
        self.literal(b'-')?;
        let day = self.digits(2)?;
        Ok((year, month, day))
    }

    /// `HH:mm`, then `:ss` and a fraction when `seconds` says so or when present.
    pub(super) fn time_fields(&mut self, seconds_required: bool) -> Result<(u32, u32, u32, u32), String> {
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

    pub(super) fn check_date(&self, (year, month, day): (i32, u32, u32)) -> Result<NaiveDate, String> {
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
            return Err(self.invalid(&format!(
                "Invalid value for MonthOfYear (valid values 1 - 12): {month}"
            )));
        }
        if !(1..=31).contains(&day) {
            return Err(self.invalid(&format!(
                "Invalid value for DayOfMonth (valid values 1 - 28/31): {day}"
            )));
        }
        NaiveDate::from_ymd_opt(year, month, day).ok_or_else(|| {
            let name = MONTHS[month as usize - 1];
            if month == 2 && day == 29 {
                self.invalid(&format!(
                    "Invalid date 'February 29' as '{year}' is not a leap year"
                ))
            } else {
                self.invalid(&format!("Invalid date '{name} {day}'"))
            }
        })
    }

    pub(super) fn check_time(
        &self,
        (hour, minute, second, nano): (u32, u32, u32, u32),
    ) -> Result<NaiveTime, String> {
        for (v, name, max) in [
            (hour, "HourOfDay", 23),
            (minute, "MinuteOfHour", 59),
            (second, "SecondOfMinute", 59),
        ] {
            if v > max {
                return Err(self.invalid(&format!("Invalid value for {name} (valid values 0 - {max}): {v}")));
            }
        }
        NaiveTime::from_hms_nano_opt(hour, minute, second, nano).ok_or_else(|| self.at_index())
    }

    /// `Z` or `+HH`, `+HH:MM`, `+HH:MM:ss`, in seconds east of UTC.
    pub(super) fn offset(&mut self) -> Result<i32, String> {
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
