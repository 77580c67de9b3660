//! Java `DateTimeFormatter` patterns (`yyyy-MM-dd'T'HH:mm:ss.SSS[XXX]`), as `IonToCsv`'s
//! `dateFormat`, `timeFormat` and `dateTimeFormat` are written: the letters of dates,
//! times and offsets, quoted text and optional sections. Zone names (`z`, `V`, `O`) and
//! localized fields are refused when the task starts.

use std::fmt::Write as _;

use chrono::{Datelike, FixedOffset, NaiveDate, NaiveTime, Timelike};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Field(char, usize),
    Text(String),
    /// An optional section: left out when the value lacks one of its fields.
    Optional(Vec<Token>),
}

/// A parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JavaPattern {
    text: String,
    tokens: Vec<Token>,
}

const FIELDS: &str = "yuMLdDEeaHkKhmsSnXxZ";

impl JavaPattern {
    pub fn parse(text: &str) -> Result<JavaPattern, String> {
        let chars: Vec<char> = text.chars().collect();
        let mut stack: Vec<Vec<Token>> = vec![Vec::new()];
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let top = stack.last_mut().expect("the stack keeps its root");
            match c {
                '\'' => {
                    let mut literal = String::new();
                    i += 1;
                    loop {
                        match chars.get(i) {
                            None => return Err(format!("Invalid pattern '{text}': unterminated quote")),
                            Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                                literal.push('\'');
                                i += 2;
                            }
                            Some('\'') => break,
                            Some(c) => {
                                literal.push(*c);
                                i += 1;
                            }
                        }
                    }
                    // `''` alone is a quote.
                    top.push(Token::Text(if literal.is_empty() { "'".into() } else { literal }));
                    i += 1;
                }
                '[' => {
                    stack.push(Vec::new());
                    i += 1;
                }
                ']' => {
                    if stack.len() < 2 {
                        return Err(format!("Invalid pattern '{text}': ']' without '['"));
                    }
                    let section = stack.pop().expect("checked");
                    stack.last_mut().expect("checked").push(Token::Optional(section));
                    i += 1;
                }
                c if c.is_ascii_alphabetic() => {
                    if !FIELDS.contains(c) {
                        return Err(format!("Unsupported pattern letter '{c}' in '{text}'"));
                    }
                    let mut n = 1;
                    while chars.get(i + n) == Some(&c) {
                        n += 1;
                    }
                    top.push(Token::Field(c, n));
                    i += n;
                }
                c => {
                    top.push(Token::Text(c.to_string()));
                    i += 1;
                }
            }
        }
        if stack.len() != 1 {
            return Err(format!("Invalid pattern '{text}': '[' without ']'"));
        }
        Ok(JavaPattern {
            text: text.to_string(),
            tokens: stack.pop().expect("checked"),
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The value's fields formatted; an error names the field the value lacks.
    pub fn format(
        &self,
        date: Option<NaiveDate>,
        time: Option<NaiveTime>,
        offset: Option<FixedOffset>,
    ) -> Result<String, String> {
        let fields = Fields { date, time, offset };
        let mut out = String::new();
        format_tokens(&self.tokens, &fields, &mut out)
            .map_err(|field| format!("Unable to format with '{}': the value has no {field}", self.text))?;
        Ok(out)
    }
}

struct Fields {
    date: Option<NaiveDate>,
    time: Option<NaiveTime>,
    offset: Option<FixedOffset>,
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

fn pad(value: i64, width: usize) -> String {
    if value < 0 {
        format!("-{:0width$}", -value)
    } else {
        format!("{value:0width$}")
    }
}

fn offset_text(offset: FixedOffset, colon: bool, minutes_always: bool, z: bool) -> String {
    let seconds = offset.local_minus_utc();
    if seconds == 0 && z {
        return "Z".into();
    }
    let sign = if seconds < 0 { '-' } else { '+' };
    let total = seconds.abs() / 60;
    let (h, m) = (total / 60, total % 60);
    if !minutes_always && m == 0 {
        return format!("{sign}{h:02}");
    }
    if colon {
        format!("{sign}{h:02}:{m:02}")
    } else {
        format!("{sign}{h:02}{m:02}")
    }
}

fn format_tokens(tokens: &[Token], f: &Fields, out: &mut String) -> Result<(), &'static str> {
    for token in tokens {
        match token {
            Token::Text(text) => out.push_str(text),
            Token::Optional(section) => {
                let mut part = String::new();
                if format_tokens(section, f, &mut part).is_ok() {
                    out.push_str(&part);
                }
            }
            Token::Field(c, n) => match number(*c, *n, f)? {
                // The common fields go straight to the output (no string of their own).
                Some(value) => {
                    let _ = write!(out, "{value:0width$}", width = *n);
                }
                None => out.push_str(&field(*c, *n, f)?),
            },
        }
    }
    Ok(())
}

/// The value of a plain numeric field padded to its letter count, `None` for the others.
fn number(c: char, n: usize, f: &Fields) -> Result<Option<u32>, &'static str> {
    let date = || f.date.ok_or("date");
    let time = || f.time.ok_or("time");
    Ok(match c {
        'y' | 'u' if n != 2 && date()?.year() >= 0 => Some(date()?.year() as u32),
        'M' | 'L' if n <= 2 => Some(date()?.month()),
        'd' => Some(date()?.day()),
        'H' => Some(time()?.hour()),
        'm' => Some(time()?.minute()),
        's' => Some(time()?.second()),
        'S' if n <= 9 => Some((time()?.nanosecond() % 1_000_000_000) / 10u32.pow(9 - n as u32)),
        _ => None,
    })
}

fn field(c: char, n: usize, f: &Fields) -> Result<String, &'static str> {
    let date = || f.date.ok_or("date");
    let time = || f.time.ok_or("time");
    let offset = || f.offset.ok_or("offset");
    Ok(match c {
        'y' | 'u' => {
            let year = i64::from(date()?.year());
            if n == 2 {
                pad(year.rem_euclid(100), 2)
            } else {
                pad(year, n)
            }
        }
        'M' | 'L' => {
            let month = date()?.month();
            match n {
                1 | 2 => pad(i64::from(month), n),
                3 => MONTHS[month as usize - 1][..3].to_string(),
                _ => MONTHS[month as usize - 1].to_string(),
            }
        }
        'd' => pad(i64::from(date()?.day()), n),
        'D' => pad(i64::from(date()?.ordinal()), n),
        'E' | 'e' => {
            let day = DAYS[date()?.weekday().num_days_from_monday() as usize];
            if n >= 4 {
                day.to_string()
            } else {
                day[..3].to_string()
            }
        }
        'a' => if time()?.hour() < 12 { "AM" } else { "PM" }.to_string(),
        'H' => pad(i64::from(time()?.hour()), n),
        'k' => pad(
            i64::from(if time()?.hour() == 0 { 24 } else { time()?.hour() }),
            n,
        ),
        'K' => pad(i64::from(time()?.hour() % 12), n),
        'h' => pad(
            i64::from(match time()?.hour() % 12 {
                0 => 12,
                h => h,
            }),
            n,
        ),
        'm' => pad(i64::from(time()?.minute()), n),
        's' => pad(i64::from(time()?.second()), n),
        'S' => {
            let nanos = format!("{:09}", time()?.nanosecond() % 1_000_000_000);
            let mut digits: String = nanos.chars().take(n).collect();
            while digits.len() < n {
                digits.push('0');
            }
            digits
        }
        'n' => pad(i64::from(time()?.nanosecond()), n),
        'X' => match n {
            1 => offset_text(offset()?, false, false, true),
            2 | 4 => offset_text(offset()?, false, true, true),
            _ => offset_text(offset()?, true, true, true),
        },
        'x' => match n {
            1 => offset_text(offset()?, false, false, false),
            2 | 4 => offset_text(offset()?, false, true, false),
            _ => offset_text(offset()?, true, true, false),
        },
        'Z' => match n {
            1..=3 => offset_text(offset()?, false, true, false),
            _ => offset_text(offset()?, true, true, true),
        },
        _ => return Err("such field"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_kestra_defaults_and_common_patterns() {
        let date = NaiveDate::from_ymd_opt(2023, 3, 7);
        let time = NaiveTime::from_hms_milli_opt(9, 5, 3, 42);
        let utc = FixedOffset::east_opt(0);
        let plus2 = FixedOffset::east_opt(2 * 3600);
        let p = |s: &str| JavaPattern::parse(s).unwrap();
        let dt = p("yyyy-MM-dd'T'HH:mm:ss.SSS[XXX]");
        assert_eq!(dt.format(date, time, utc).unwrap(), "2023-03-07T09:05:03.042Z");
        assert_eq!(
            dt.format(date, time, plus2).unwrap(),
            "2023-03-07T09:05:03.042+02:00"
        );
        assert_eq!(dt.format(date, time, None).unwrap(), "2023-03-07T09:05:03.042");
        assert_eq!(p("yyyy-MM-dd").format(date, None, None).unwrap(), "2023-03-07");
        assert_eq!(p("HH:mm:ss[XXX]").format(None, time, None).unwrap(), "09:05:03");
        assert_eq!(
            p("dd/MM/yy h a, EEE MMM").format(date, time, None).unwrap(),
            "07/03/23 9 AM, Tue Mar"
        );
        assert_eq!(p("''yyyy''").format(date, None, None).unwrap(), "'2023'");
        assert!(p("HH:mm")
            .format(date, None, None)
            .unwrap_err()
            .contains("no time"));
        assert!(JavaPattern::parse("yyyy zzz").unwrap_err().contains("'z'"));
        assert!(JavaPattern::parse("[yyyy").is_err());
    }
}
