//! Pebble expressions as tokens: the tokenizer and the helpers the translation walks
//! tokens with (argument lists, brackets, parameter names of positional arguments).

use super::{SyntaxError, MAX_NESTING};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Str(String),
    Ident(String),
    Num(String),
    Op(&'static str),
    Space,
}

impl Tok {
    pub(super) fn text(&self) -> &str {
        match self {
            Tok::Str(s) | Tok::Ident(s) | Tok::Num(s) => s,
            Tok::Op(s) => s,
            Tok::Space => " ",
        }
    }
}

const OPS: &[&str] = &[
    "???", "??", "==", "!=", "<=", ">=", "//", "**", "(", ")", "[", "]", "{", "}", ",", "|", ".", "~", "+",
    "-", "*", "/", "%", "<", ">", "=", "?", ":",
];

pub(super) fn tokenize(src: &str) -> Result<Vec<Tok>, SyntaxError> {
    let out = tokens(src)?;
    let (mut depth, mut coalescing) = (0usize, 0usize);
    for t in &out {
        match t {
            Tok::Op("(" | "[" | "{") => depth += 1,
            Tok::Op(")" | "]" | "}") => depth = depth.saturating_sub(1),
            Tok::Op("??" | "???") => coalescing += 1,
            _ => continue,
        }
        if depth > MAX_NESTING || coalescing > MAX_NESTING {
            return Err(SyntaxError::TooDeep);
        }
    }
    Ok(out)
}

pub(super) fn tokens(src: &str) -> Result<Vec<Tok>, SyntaxError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            out.push(Tok::Space);
        } else if c == '"' || c == '\'' {
            let start = i;
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            if i >= chars.len() {
                return Err(SyntaxError::UnterminatedString);
            }
            i += 1;
            let raw: String = chars[start..i].iter().collect();
            out.push(Tok::Str(raw));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || chars[i] == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
            {
                i += 1;
            }
            out.push(Tok::Num(chars[start..i].iter().collect()));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
        } else {
            let rest: String = chars[i..chars.len().min(i + 3)].iter().collect();
            match OPS.iter().find(|op| rest.starts_with(**op)) {
                Some(op) => {
                    out.push(Tok::Op(op));
                    i += op.len();
                }
                None => return Err(SyntaxError::UnexpectedCharacter(c)),
            }
        }
    }
    Ok(out)
}

pub(super) fn join(toks: &[Tok]) -> String {
    let mut s = String::new();
    for t in toks {
        s.push_str(t.text());
    }
    s.trim().to_string()
}

/// Parameter names of Pebble filters and functions, for positional arguments.
pub(super) fn parameter_names(name: &str, is_filter: bool) -> Option<&'static [&'static str]> {
    Some(match (name, is_filter) {
        ("date", true) | ("timestamp", true) | ("timestampMicro", true) | ("timestampNano", true) => {
            &["format", "timeZone", "existingFormat", "locale"]
        }
        ("dateAdd", true) => &["amount", "unit", "format", "timeZone", "existingFormat", "locale"],
        ("jq", true) => &["expression"],
        ("number", true) => &["type"],
        ("chunk", true) => &["size"],
        ("indent", true) | ("nindent", true) => &["amount", "prefix"],
        ("escapeChar", true) => &["type"],
        ("substringBefore", true)
        | ("substringBeforeLast", true)
        | ("substringAfter", true)
        | ("substringAfterLast", true) => &["separator"],
        ("startsWith", true) => &["prefix"],
        ("endsWith", true) => &["suffix"],
        ("default", true) => &["value"],
        ("join", true) => &["separator"],
        ("split", true) => &["delimiter", "limit"],
        ("slice", true) => &["fromIndex", "toIndex"],
        ("abbreviate", true) => &["length"],
        ("merge", true) => &["items"],
        ("round", true) => &["precision"],
        ("now", false) => &["format", "timeZone", "existingFormat", "locale"],
        ("json", false) | ("fromJson", false) => &["json"],
        ("yaml", false) | ("fromYaml", false) => &["yaml"],
        ("render", false) => &["toRender", "recursive"],
        ("renderOnce", false) => &["toRender"],
        ("read", false) => &["path", "namespace"],
        ("fileURI", false) | ("fileSize", false) | ("fileExists", false) => &["path"],
        ("currentEachOutput", false) => &["outputs"],
        ("secret", false) => &["key", "namespace", "subkey"],
        ("kv", false) => &["key", "namespace", "errorOnMissing"],
        ("randomInt", false) => &["lower", "upper"],
        ("range", false) => &["start", "end", "step"],
        _ => return None,
    })
}

/// Splits tokens at top-level commas.
pub(super) fn split_args(toks: &[Tok]) -> Vec<Vec<Tok>> {
    let mut args = vec![Vec::new()];
    let mut depth = 0i32;
    for t in toks {
        match t {
            Tok::Op("(" | "[" | "{") => depth += 1,
            Tok::Op(")" | "]" | "}") => depth -= 1,
            Tok::Op(",") if depth == 0 => {
                args.push(Vec::new());
                continue;
            }
            _ => {}
        }
        if let Some(last) = args.last_mut() {
            last.push(t.clone());
        }
    }
    args.retain(|a| a.iter().any(|t| *t != Tok::Space));
    args
}

pub(super) fn is_named(arg: &[Tok]) -> bool {
    let mut it = arg.iter().filter(|t| **t != Tok::Space);
    matches!((it.next(), it.next()), (Some(Tok::Ident(_)), Some(Tok::Op("="))))
}

pub(super) fn find_close(toks: &[Tok], open: usize) -> Result<usize, SyntaxError> {
    let mut depth = 0i32;
    for (i, t) in toks.iter().enumerate().skip(open) {
        match t {
            Tok::Op("(" | "[" | "{") => depth += 1,
            Tok::Op(")" | "]" | "}") => {
                depth -= 1;
                if depth == 0 {
                    return Ok(i);
                }
            }
            _ => {}
        }
    }
    Err(SyntaxError::UnbalancedBrackets)
}

pub(super) fn prev_significant(toks: &[Tok], i: usize) -> Option<&Tok> {
    toks[..i].iter().rev().find(|t| **t != Tok::Space)
}
