//! Ion timestamps, and the Java time values Kestra reads them as.

use chrono::{
    DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, Timelike, Utc,
};

use super::IonValue;

/// An Ion timestamp: its text and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timestamp {
    text: String,
    date: NaiveDate,
    /// `None` at year, month or day precision.
    time: Option<NaiveTime>,
    /// Minutes east of UTC; `None` for an unknown offset (`-00:00`) or no time.
    offset: Option<i32>,
}

/// The Java time value Kestra reads from an Ion value (its `IonParser`): timestamps at UTC
/// or an unknown offset are `Instant`s (`LocalDate`s at midnight), others
/// `ZonedDateTime`s; strings annotated with a `java.time` class name are that class.
#[derive(Debug, Clone, PartialEq)]
pub enum JavaTime {
    Instant(DateTime<Utc>),
    LocalDate(NaiveDate),
    /// `ZonedDateTime` and `OffsetDateTime`.
    Zoned(DateTime<FixedOffset>),
    LocalDateTime(NaiveDateTime),
    LocalTime(NaiveTime),
    OffsetTime(NaiveTime, FixedOffset),
}

fn digits(text: &str, at: usize, n: usize) -> Option<u32> {
    let part = text.get(at..at + n)?;
    if part.bytes().all(|b| b.is_ascii_digit()) {
        part.parse().ok()
    } else {
        None
    }
}

impl Timestamp {
    /// Reads Ion timestamp text (`2023T`, `2023-01T`, `2023-01-01`, `2023-01-01T10:00Z`,
    /// `2023-01-01T10:00:00.123+02:00`…).
    pub fn parse(text: &str) -> Option<Timestamp> {
        let t = text;
        let year = digits(t, 0, 4)? as i32;
        let done = |date: NaiveDate| {
            Some(Timestamp {
                text: text.to_string(),
                date,
                time: None,
                offset: None,
            })
        };
        if t.len() == 5 && t.ends_with('T') {
            return done(NaiveDate::from_ymd_opt(year, 1, 1)?);
        }
        if t.as_bytes().get(4) != Some(&b'-') {
            return None;
        }
        let month = digits(t, 5, 2)?;
        if t.len() == 8 && t.ends_with('T') {
            return done(NaiveDate::from_ymd_opt(year, month, 1)?);
        }
        if t.as_bytes().get(7) != Some(&b'-') {
            return None;
        }
        let date = NaiveDate::from_ymd_opt(year, month, digits(t, 8, 2)?)?;
        if t.len() == 10 || (t.len() == 11 && t.ends_with('T')) {
            return done(date);
        }
        if t.as_bytes().get(10) != Some(&b'T') || t.as_bytes().get(13) != Some(&b':') {
            return None;
        }
        let (hour, minute) = (digits(t, 11, 2)?, digits(t, 14, 2)?);
        let mut at = 16;
        let (mut second, mut nanos) = (0, 0);
        if t.as_bytes().get(at) == Some(&b':') {
            second = digits(t, at + 1, 2)?;
            at += 3;
            if t.as_bytes().get(at) == Some(&b'.') {
                let frac: String = t[at + 1..].chars().take_while(char::is_ascii_digit).collect();
                if frac.is_empty() {
                    return None;
                }
                let mut padded = frac.clone();
                padded.truncate(9);
                while padded.len() < 9 {
                    padded.push('0');
                }
                nanos = padded.parse().ok()?;
                at += 1 + frac.len();
            }
        }
        let offset = match &t[at..] {
            "Z" => Some(0),
            "-00:00" => None,
            rest if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
                let sign = match rest.as_bytes()[0] {
                    b'+' => 1,
                    b'-' => -1,
                    _ => return None,
                };
                let minutes = (digits(rest, 1, 2)? * 60 + digits(rest, 4, 2)?) as i32;
                if minutes >= 24 * 60 {
                    return None;
                }
                Some(sign * minutes)
            }
            _ => return None,
        };
        Some(Timestamp {
            text: text.to_string(),
            date,
            time: Some(NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?),
            offset,
        })
    }

    /// A Java `Instant` as Kestra writes it: to the millisecond, UTC.
    pub fn instant(at: DateTime<Utc>) -> Timestamp {
        let text = at.to_rfc3339_opts(SecondsFormat::Millis, true);
        Timestamp::parse(&text).unwrap_or_else(|| Timestamp::date(at.date_naive()))
    }

    /// A Java `LocalDate` as Kestra writes it: day precision.
    pub fn date(date: NaiveDate) -> Timestamp {
        Timestamp {
            text: format!("{:04}-{:02}-{:02}", date.year(), date.month(), date.day()),
            date,
            time: None,
            offset: None,
        }
    }

    /// The Ion text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// What Kestra reads this timestamp as.
    pub fn java(&self) -> JavaTime {
        let time = self.time.unwrap_or(NaiveTime::MIN);
        let local = self.date.and_time(time);
        match self.offset {
            Some(minutes) if minutes != 0 => {
                match FixedOffset::east_opt(minutes * 60).and_then(|o| local.and_local_timezone(o).single()) {
                    Some(zoned) => JavaTime::Zoned(zoned),
                    None => JavaTime::Instant(local.and_utc()),
                }
            }
            _ if time == NaiveTime::MIN => JavaTime::LocalDate(self.date),
            _ => JavaTime::Instant(local.and_utc()),
        }
    }

    /// ISO text, as Kestra's JSON mapper writes the Java value (`2023-01-01`,
    /// `2023-01-01T10:00:00Z`, `2023-01-01T10:00:00.5+02:00`).
    pub fn to_iso(&self) -> String {
        self.java().to_iso()
    }
}

/// Java's ISO fractions: none when zero, else groups of three digits.
fn iso_fraction(nanos: u32) -> String {
    if nanos == 0 {
        String::new()
    } else if nanos.is_multiple_of(1_000_000) {
        format!(".{:03}", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        format!(".{:06}", nanos / 1_000)
    } else {
        format!(".{nanos:09}")
    }
}

fn iso_time(time: NaiveTime) -> String {
    format!(
        "{:02}:{:02}:{:02}{}",
        time.hour(),
        time.minute(),
        time.second(),
        iso_fraction(time.nanosecond())
    )
}

fn iso_offset(offset: FixedOffset) -> String {
    let seconds = offset.local_minus_utc();
    if seconds == 0 {
        return "Z".into();
    }
    let sign = if seconds < 0 { '-' } else { '+' };
    let minutes = seconds.abs() / 60;
    format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
}

impl JavaTime {
    /// The Java time value of an Ion value, if it holds one.
    pub fn of(value: &IonValue) -> Option<JavaTime> {
        match value.unannotated() {
            (IonValue::Timestamp(t), _) => Some(t.java()),
            (IonValue::String(s), Some(class)) => JavaTime::parse_annotated(class, s),
            _ => None,
        }
    }

    fn parse_annotated(class: &str, text: &str) -> Option<JavaTime> {
        match class {
            "Instant" => DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|d| JavaTime::Instant(d.to_utc())),
            "LocalDate" => NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .map(JavaTime::LocalDate),
            "OffsetDateTime" | "ZonedDateTime" => {
                // ZonedDateTime's ISO text may end with a region in brackets.
                let text = text.split('[').next().unwrap_or(text);
                DateTime::parse_from_rfc3339(text).ok().map(JavaTime::Zoned)
            }
            "LocalDateTime" => NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M"))
                .ok()
                .map(JavaTime::LocalDateTime),
            "LocalTime" => parse_time(text).map(JavaTime::LocalTime),
            "OffsetTime" => {
                let split = text.rfind(['+', '-', 'Z'])?;
                let time = parse_time(&text[..split])?;
                let offset = if &text[split..] == "Z" {
                    FixedOffset::east_opt(0)?
                } else {
                    DateTime::parse_from_rfc3339(&format!("2000-01-01T00:00:00{}", &text[split..]))
                        .ok()?
                        .offset()
                        .to_owned()
                };
                Some(JavaTime::OffsetTime(time, offset))
            }
            _ => None,
        }
    }

    /// The Ion value Kestra writes for it: `Instant`s and `LocalDate`s as timestamps, the
    /// other classes as their ISO text annotated with the class name.
    pub fn to_ion(&self) -> IonValue {
        let class = match self {
            JavaTime::Instant(at) => return IonValue::instant(*at),
            JavaTime::LocalDate(date) => return IonValue::date(*date),
            JavaTime::Zoned(_) => "ZonedDateTime",
            JavaTime::LocalDateTime(_) => "LocalDateTime",
            JavaTime::LocalTime(_) => "LocalTime",
            JavaTime::OffsetTime(..) => "OffsetTime",
        };
        IonValue::Annotated(vec![class.to_string()], Box::new(IonValue::String(self.to_iso())))
    }

    /// ISO text, as Java's ISO formatters print the value.
    pub fn to_iso(&self) -> String {
        match self {
            JavaTime::Instant(at) => format!("{}T{}Z", at.date_naive(), iso_time(at.time())),
            JavaTime::LocalDate(date) => date.to_string(),
            JavaTime::Zoned(at) => format!(
                "{}T{}{}",
                at.date_naive(),
                iso_time(at.time()),
                iso_offset(*at.offset())
            ),
            JavaTime::LocalDateTime(at) => format!("{}T{}", at.date(), iso_time(at.time())),
            JavaTime::LocalTime(time) => iso_time(*time),
            JavaTime::OffsetTime(time, offset) => format!("{}{}", iso_time(*time), iso_offset(*offset)),
        }
    }

    /// The fields a Java formatter sees: date, time and offset when the value has them.
    pub fn fields(&self) -> (Option<NaiveDate>, Option<NaiveTime>, Option<FixedOffset>) {
        match self {
            JavaTime::Instant(at) => (Some(at.date_naive()), Some(at.time()), FixedOffset::east_opt(0)),
            JavaTime::LocalDate(date) => (Some(*date), None, None),
            JavaTime::Zoned(at) => (Some(at.date_naive()), Some(at.time()), Some(*at.offset())),
            JavaTime::LocalDateTime(at) => (Some(at.date()), Some(at.time()), None),
            JavaTime::LocalTime(time) => (None, Some(*time), None),
            JavaTime::OffsetTime(time, offset) => (None, Some(*time), Some(*offset)),
        }
    }
}

fn parse_time(text: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(text, "%H:%M:%S%.f")
        .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M"))
        .ok()
}
