//! Reading Ion text: every construct of the text format but symbol tables (Kestra writes
//! none): annotations, typed nulls, long strings, symbols, lobs, s-expressions, comments.

use base64::Engine as _;

use super::{Decimal, IonError, IonType, IonValue, Timestamp};

/// Where reading stopped: the text ended inside a value, or is not Ion at a byte.
enum Stop {
    Incomplete,
    Invalid(usize, String),
}

type Parsed<T> = Result<T, Stop>;

struct Parser<'a> {
    text: &'a str,
    s: &'a [u8],
    pos: usize,
}

fn invalid<T>(pos: usize, message: impl Into<String>) -> Parsed<T> {
    Err(Stop::Invalid(pos, message.into()))
}

fn is_delimiter(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'\t'
            | b'\n'
            | b'\r'
            | 0x0b
            | 0x0c
            | b','
            | b']'
            | b')'
            | b'}'
            | b'{'
            | b'['
            | b'('
            | b'"'
            | b'\''
    )
}

fn is_operator(b: u8) -> bool {
    b"!#%&*+-./;<=>?@^`|~".contains(&b)
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Parser<'a> {
        Parser {
            text,
            s: text.as_bytes(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.s.get(self.pos + offset).copied()
    }

    fn starts_with(&self, prefix: &str) -> bool {
        self.s[self.pos..].starts_with(prefix.as_bytes())
    }

    /// Skips whitespace and comments.
    fn skip_ws(&mut self) -> Parsed<()> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) => self.pos += 1,
                Some(b'/') if self.peek_at(1) == Some(b'/') => {
                    while let Some(b) = self.peek() {
                        if b == b'\n' {
                            break;
                        }
                        self.pos += 1;
                    }
                }
                Some(b'/') if self.peek_at(1) == Some(b'*') => match self.text[self.pos + 2..].find("*/") {
                    Some(end) => self.pos += 2 + end + 2,
                    None => return Err(Stop::Incomplete),
                },
                _ => return Ok(()),
            }
        }
    }

    /// A value with its annotations.
    fn value(&mut self, in_sexp: bool) -> Parsed<IonValue> {
        let mut annotations = Vec::new();
        loop {
            self.skip_ws()?;
            let start = self.pos;
            let (value, may_annotate) = self.atom(in_sexp)?;
            if may_annotate {
                let after = self.pos;
                self.skip_ws()?;
                if self.starts_with("::") {
                    let IonValue::Symbol(name) = value else {
                        return invalid(start, "an annotation must be a symbol");
                    };
                    annotations.push(name);
                    self.pos += 2;
                    continue;
                }
                self.pos = after;
            }
            return Ok(if annotations.is_empty() {
                value
            } else {
                IonValue::Annotated(annotations, Box::new(value))
            });
        }
    }

    /// One value without annotations; `true` when it is a symbol an annotation may be.
    fn atom(&mut self, in_sexp: bool) -> Parsed<(IonValue, bool)> {
        let start = self.pos;
        let Some(b) = self.peek() else {
            return Err(Stop::Incomplete);
        };
        Ok(match b {
            b'{' if self.peek_at(1) == Some(b'{') => (self.lob()?, false),
            b'{' => (self.structure()?, false),
            b'[' => (IonValue::List(self.sequence(b']')?), false),
            b'(' => (IonValue::Sexp(self.sequence(b')')?), false),
            b'"' => (IonValue::String(self.short_string(b'"')?), false),
            b'\'' if self.starts_with("'''") => (IonValue::String(self.long_strings()?), false),
            b'\'' => (IonValue::Symbol(self.short_string(b'\'')?), true),
            b'+' if self.starts_with("+inf") && self.ends_token(4) => {
                self.pos += 4;
                (IonValue::Float(f64::INFINITY), false)
            }
            b'-' if self.starts_with("-inf") && self.ends_token(4) => {
                self.pos += 4;
                (IonValue::Float(f64::NEG_INFINITY), false)
            }
            b'0'..=b'9' => (self.number()?, false),
            b'-' if self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) => (self.number()?, false),
            b'a'..=b'z' | b'A'..=b'Z' | b'_' | b'$' => self.identifier()?,
            c if in_sexp && is_operator(c) => {
                while self.peek().is_some_and(is_operator) {
                    self.pos += 1;
                }
                (IonValue::Symbol(self.text[start..self.pos].to_string()), false)
            }
            _ => {
                let c = self.text[start..].chars().next().unwrap_or('?');
                return invalid(start, format!("unexpected '{c}'"));
            }
        })
    }

    fn ends_token(&self, len: usize) -> bool {
        self.peek_at(len).is_none_or(|b| is_delimiter(b) || b == b'/')
    }

    fn identifier(&mut self) -> Parsed<(IonValue, bool)> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
        {
            self.pos += 1;
        }
        let word = &self.text[start..self.pos];
        Ok(match word {
            "true" => (IonValue::Bool(true), false),
            "false" => (IonValue::Bool(false), false),
            "nan" => (IonValue::Float(f64::NAN), false),
            "null" if self.peek() == Some(b'.') => {
                self.pos += 1;
                let from = self.pos;
                while self.peek().is_some_and(|b| b.is_ascii_alphabetic()) {
                    self.pos += 1;
                }
                let name = &self.text[from..self.pos];
                match IonType::ALL.iter().find(|(_, n)| *n == name) {
                    Some((t, _)) => (IonValue::Null(*t), false),
                    None => return invalid(from, format!("unknown type 'null.{name}'")),
                }
            }
            "null" => (IonValue::Null(IonType::Null), false),
            _ => (IonValue::Symbol(word.to_string()), true),
        })
    }

    fn escape(&mut self) -> Parsed<Option<char>> {
        // At the character after the backslash.
        let at = self.pos - 1;
        let Some(b) = self.peek() else {
            return Err(Stop::Incomplete);
        };
        self.pos += 1;
        let hex = |p: &mut Parser, n: usize| -> Parsed<Option<char>> {
            let Some(digits) = p.text.get(p.pos..p.pos + n) else {
                return Err(Stop::Incomplete);
            };
            let code =
                u32::from_str_radix(digits, 16).map_err(|_| Stop::Invalid(at, "invalid escape".into()))?;
            p.pos += n;
            char::from_u32(code)
                .map(Some)
                .ok_or_else(|| Stop::Invalid(at, "invalid code point".into()))
        };
        Ok(Some(match b {
            b'a' => '\u{7}',
            b'b' => '\u{8}',
            b't' => '\t',
            b'n' => '\n',
            b'f' => '\u{c}',
            b'r' => '\r',
            b'v' => '\u{b}',
            b'0' => '\0',
            b'?' => '?',
            b'\'' => '\'',
            b'"' => '"',
            b'/' => '/',
            b'\\' => '\\',
            b'x' => return hex(self, 2),
            b'u' => return hex(self, 4),
            b'U' => return hex(self, 8),
            b'\n' => return Ok(None),
            b'\r' => {
                if self.peek() == Some(b'\n') {
                    self.pos += 1;
                }
                return Ok(None);
            }
            _ => return invalid(at, "invalid escape"),
        }))
    }

    /// A `"string"` or `'symbol'`.
    fn short_string(&mut self, quote: u8) -> Parsed<String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let run_start = self.pos;
            while self
                .peek()
                .is_some_and(|b| b != quote && b != b'\\' && b != b'\n')
            {
                self.pos += 1;
            }
            out.push_str(&self.text[run_start..self.pos]);
            match self.peek() {
                None => return Err(Stop::Incomplete),
                Some(b'\n') => return invalid(self.pos, "end of line inside a quoted text"),
                Some(b'\\') => {
                    self.pos += 1;
                    out.extend(self.escape()?);
                }
                Some(_) => {
                    self.pos += 1;
                    return Ok(out);
                }
            }
        }
    }

    /// `'''long'''` strings, those that follow each other joined.
    fn long_strings(&mut self) -> Parsed<String> {
        let mut out = String::new();
        loop {
            self.pos += 3;
            loop {
                let run_start = self.pos;
                while self.peek().is_some_and(|b| b != b'\'' && b != b'\\') {
                    self.pos += 1;
                }
                out.push_str(&self.text[run_start..self.pos]);
                match self.peek() {
                    None => return Err(Stop::Incomplete),
                    Some(b'\\') => {
                        self.pos += 1;
                        out.extend(self.escape()?);
                    }
                    Some(_) if self.starts_with("'''") => {
                        self.pos += 3;
                        break;
                    }
                    Some(_) => {
                        out.push('\'');
                        self.pos += 1;
                    }
                }
            }
            let after = self.pos;
            self.skip_ws()?;
            if !self.starts_with("'''") {
                self.pos = after;
                return Ok(out);
            }
        }
    }

    fn number(&mut self) -> Parsed<IonValue> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-' | b':' | b'_'))
        {
            self.pos += 1;
        }
        let token = &self.text[start..self.pos];
        let bad = || Stop::Invalid(start, format!("invalid number or timestamp '{token}'"));
        let bytes = token.as_bytes();
        if bytes.len() >= 5 && bytes[..4].iter().all(u8::is_ascii_digit) && matches!(bytes[4], b'-' | b'T') {
            return Timestamp::parse(token).map(IonValue::Timestamp).ok_or_else(bad);
        }
        let (negative, unsigned) = match token.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, token),
        };
        let plain: String = unsigned.chars().filter(|c| *c != '_').collect();
        let radix = match plain.get(..2) {
            Some("0x" | "0X") => Some(16),
            Some("0b" | "0B") => Some(2),
            _ => None,
        };
        if let Some(radix) = radix {
            let n = i128::from_str_radix(&plain[2..], radix).map_err(|_| bad())?;
            return Ok(IonValue::Int(if negative { -n } else { n }));
        }
        if !plain.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(bad());
        }
        if plain.contains(['e', 'E']) {
            let f: f64 = plain.parse().map_err(|_| bad())?;
            return Ok(IonValue::Float(if negative { -f } else { f }));
        }
        if plain.contains(['.', 'd', 'D']) {
            return decimal(negative, &plain).map(IonValue::Decimal).ok_or_else(bad);
        }
        if !plain.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let n: i128 = plain.parse().map_err(|_| bad())?;
        Ok(IonValue::Int(if negative { -n } else { n }))
    }

    fn structure(&mut self) -> Parsed<IonValue> {
        self.pos += 1;
        let mut fields = Vec::new();
        loop {
            self.skip_ws()?;
            let start = self.pos;
            let name = match self.peek() {
                None => return Err(Stop::Incomplete),
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(IonValue::Struct(fields));
                }
                Some(b'"') => self.short_string(b'"')?,
                Some(b'\'') if self.starts_with("'''") => self.long_strings()?,
                Some(b'\'') => self.short_string(b'\'')?,
                Some(b'a'..=b'z' | b'A'..=b'Z' | b'_' | b'$') => match self.identifier()? {
                    (IonValue::Symbol(name), _) => name,
                    _ => return invalid(start, "a field name must be a symbol or a string"),
                },
                Some(_) => return invalid(start, "expected a field name"),
            };
            self.skip_ws()?;
            match self.peek() {
                None => return Err(Stop::Incomplete),
                Some(b':') if self.peek_at(1) != Some(b':') => self.pos += 1,
                Some(_) => return invalid(self.pos, format!("expected ':' after the field name '{name}'")),
            }
            let value = self.value(false)?;
            fields.push((name, value));
            self.skip_ws()?;
            match self.peek() {
                None => return Err(Stop::Incomplete),
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                Some(_) => return invalid(self.pos, "expected ',' or '}' in a struct"),
            }
        }
    }

    /// A list (`close` is `]`, values separated by commas) or an s-expression (`)`).
    fn sequence(&mut self, close: u8) -> Parsed<Vec<IonValue>> {
        self.pos += 1;
        let sexp = close == b')';
        let mut items = Vec::new();
        loop {
            self.skip_ws()?;
            match self.peek() {
                None => return Err(Stop::Incomplete),
                Some(b) if b == close => {
                    self.pos += 1;
                    return Ok(items);
                }
                Some(_) => {}
            }
            items.push(self.value(sexp)?);
            if sexp {
                continue;
            }
            self.skip_ws()?;
            match self.peek() {
                None => return Err(Stop::Incomplete),
                Some(b',') => self.pos += 1,
                Some(b']') => {}
                Some(_) => return invalid(self.pos, "expected ',' or ']' in a list"),
            }
        }
    }

    /// `{{ base64 }}` or `{{ "text" }}`.
    fn lob(&mut self) -> Parsed<IonValue> {
        let start = self.pos;
        self.pos += 2;
        self.skip_ws()?;
        let value = match self.peek() {
            None => return Err(Stop::Incomplete),
            Some(b'"') => IonValue::Clob(self.short_string(b'"')?.into_bytes()),
            Some(b'\'') if self.starts_with("'''") => IonValue::Clob(self.long_strings()?.into_bytes()),
            Some(_) => {
                let Some(end) = self.text[self.pos..].find("}}") else {
                    return Err(Stop::Incomplete);
                };
                let encoded: String = self.text[self.pos..self.pos + end]
                    .chars()
                    .filter(|c| !c.is_ascii_whitespace())
                    .collect();
                self.pos += end;
                IonValue::Blob(
                    base64::engine::general_purpose::STANDARD
                        .decode(encoded)
                        .map_err(|e| Stop::Invalid(start, format!("invalid blob: {e}")))?,
                )
            }
        };
        self.skip_ws()?;
        if !self.starts_with("}}") {
            return if self.pos >= self.s.len() {
                Err(Stop::Incomplete)
            } else {
                invalid(self.pos, "expected '}}' after a lob")
            };
        }
        self.pos += 2;
        Ok(value)
    }
}

/// `1.5`, `1.`, `15d-1`, `1.5d0`, `0.000`: digits and exponent.
fn decimal(negative: bool, text: &str) -> Option<Decimal> {
    let (mantissa, exponent) = match text.find(['d', 'D']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i64>().ok()?),
        None => (text, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let all = format!("{int}{frac}");
    let digits = all.trim_start_matches('0');
    Some(Decimal {
        digits: if digits.is_empty() {
            "0".into()
        } else {
            digits.into()
        },
        negative,
        exponent: exponent - frac.len() as i64,
    })
}

fn error_at(text: &str, pos: usize, first_line: u64, message: String) -> IonError {
    let before = &text[..pos.min(text.len())];
    let line = first_line + before.matches('\n').count() as u64;
    let column = before.rfind('\n').map_or(before.len(), |i| before.len() - i - 1) + 1;
    IonError::Invalid {
        line,
        column,
        message,
    }
}

/// The one Ion value of `text` (comments and whitespace around it allowed).
pub fn from_line(text: &str) -> Result<IonValue, IonError> {
    let mut p = Parser::new(text);
    let stop = |s: Stop| match s {
        Stop::Incomplete => IonError::Incomplete,
        Stop::Invalid(pos, message) => error_at(text, pos, 1, message),
    };
    let value = p.value(false).map_err(stop)?;
    p.skip_ws().map_err(stop)?;
    if p.pos < text.len() {
        return Err(error_at(text, p.pos, 1, "more than one value".into()));
    }
    Ok(value)
}

/// Reads the values of Ion text given line by line: a value may span lines (a long
/// string), a line may hold several; only the text of an unfinished value is kept,
/// within `limit` bytes.
#[derive(Debug)]
pub struct LineReader {
    pending: String,
    /// The number of the line `pending` starts on (1-based).
    first_line: u64,
    lines: u64,
    limit: usize,
}

impl LineReader {
    pub fn new(limit: usize) -> LineReader {
        LineReader {
            pending: String::new(),
            first_line: 1,
            lines: 0,
            limit,
        }
    }

    /// The number of lines given so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Reads one more line (without its end); the values it completes, in order, each
    /// with the number of the line it starts on.
    pub fn push_line(&mut self, line: &str) -> Result<Vec<(u64, IonValue)>, IonError> {
        self.lines += 1;
        if self.pending.is_empty() {
            // The common case, a line of whole values, is read where it is.
            self.first_line = self.lines;
            return self.read(line, true);
        }
        let mut text = std::mem::take(&mut self.pending);
        text.push_str(line);
        text.push('\n');
        self.read(&text, false)
    }

    /// Reads the values of `text` (a line without its end when `bare_line`); keeps the
    /// text of an unfinished last value.
    fn read(&mut self, text: &str, bare_line: bool) -> Result<Vec<(u64, IonValue)>, IonError> {
        let mut values = Vec::new();
        let mut p = Parser::new(text);
        loop {
            let start = p.pos;
            let done = p.skip_ws().and_then(|_| {
                if p.pos >= text.len() {
                    Ok(None)
                } else {
                    p.value(false).map(Some)
                }
            });
            match done {
                Ok(Some(value)) => {
                    let line = self.first_line + text[..start].matches('\n').count() as u64;
                    values.push((line, value));
                }
                Ok(None) => return Ok(values),
                Err(Stop::Incomplete) => {
                    self.first_line += text[..start].matches('\n').count() as u64;
                    self.pending = text[start..].to_string();
                    if bare_line {
                        self.pending.push('\n');
                    }
                    if self.pending.len() > self.limit {
                        return Err(IonError::TooLong { limit: self.limit });
                    }
                    return Ok(values);
                }
                Err(Stop::Invalid(pos, message)) => {
                    return Err(error_at(text, pos, self.first_line, message))
                }
            }
        }
    }

    /// Checks that no value was left unfinished at the end of the text.
    pub fn finish(&self) -> Result<(), IonError> {
        if self.pending.trim().is_empty() {
            Ok(())
        } else {
            Err(IonError::Invalid {
                line: self.first_line,
                column: 1,
                message: "the text ends inside this value".into(),
            })
        }
    }
}
