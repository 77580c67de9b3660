//! Ion text as Kestra's writer prints it: compact (`{a:1,b:[1,2]}`), field names bare when
//! they are identifiers, UTF-8 text with control characters escaped.

use std::fmt::Write as _;

use base64::Engine as _;

use super::number::{ion_decimal, ion_float};
use super::{IonType, IonValue};

pub(super) fn value(out: &mut String, v: &IonValue) {
    match v {
        IonValue::Null(IonType::Null) => out.push_str("null"),
        IonValue::Null(t) => {
            out.push_str("null.");
            out.push_str(t.name());
        }
        IonValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        IonValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        IonValue::Float(f) => out.push_str(&ion_float(*f)),
        IonValue::Decimal(d) => out.push_str(&ion_decimal(d)),
        IonValue::Timestamp(t) => out.push_str(t.text()),
        IonValue::String(s) => string(out, s),
        IonValue::Symbol(s) => symbol(out, s),
        IonValue::Blob(bytes) => {
            out.push_str("{{");
            out.push_str(&base64::engine::general_purpose::STANDARD.encode(bytes));
            out.push_str("}}");
        }
        IonValue::Clob(bytes) => {
            out.push_str("{{\"");
            for b in bytes {
                match b {
                    b'"' => out.push_str("\\\""),
                    b'\\' => out.push_str("\\\\"),
                    0x20..=0x7e => out.push(char::from(*b)),
                    _ => escape(out, u32::from(*b)),
                }
            }
            out.push_str("\"}}");
        }
        IonValue::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                value(out, item);
            }
            out.push(']');
        }
        IonValue::Sexp(items) => {
            out.push('(');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                value(out, item);
            }
            out.push(')');
        }
        IonValue::Struct(fields) => {
            out.push('{');
            for (i, (name, item)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                symbol(out, name);
                out.push(':');
                value(out, item);
            }
            out.push('}');
        }
        IonValue::Annotated(annotations, inner) => {
            for a in annotations {
                symbol(out, a);
                out.push_str("::");
            }
            value(out, inner);
        }
    }
}

/// The escapes Ion and Java share, then `\xHH`, `\uHHHH` for other control characters.
fn escape(out: &mut String, c: u32) {
    match c {
        0 => out.push_str("\\0"),
        7 => out.push_str("\\a"),
        8 => out.push_str("\\b"),
        9 => out.push_str("\\t"),
        10 => out.push_str("\\n"),
        11 => out.push_str("\\v"),
        12 => out.push_str("\\f"),
        13 => out.push_str("\\r"),
        c if c <= 0xff => {
            let _ = write!(out, "\\x{c:02x}");
        }
        c => {
            let _ = write!(out, "\\u{c:04x}");
        }
    }
}

fn text(out: &mut String, s: &str, quote: char) {
    let plain = |b: u8| b != b'\\' && b != quote as u8 && b >= 0x20 && b != 0x7f;
    if s.bytes().all(plain) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c == '\u{7f}' => escape(out, c as u32),
            c => out.push(c),
        }
    }
}

fn string(out: &mut String, s: &str) {
    out.push('"');
    text(out, s, '"');
    out.push('"');
}

/// Whether a symbol can be written bare: an identifier that is not a keyword nor a
/// symbol id (`$12`).
fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == '_' || first == '$') {
        return false;
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
        return false;
    }
    let symbol_id = s.len() > 1 && s.starts_with('$') && s[1..].bytes().all(|b| b.is_ascii_digit());
    !symbol_id && !matches!(s, "null" | "true" | "false" | "nan")
}

fn symbol(out: &mut String, s: &str) {
    if is_identifier(s) {
        out.push_str(s);
    } else {
        out.push('\'');
        text(out, s, '\'');
        out.push('\'');
    }
}
