//! Pebble → tera source translation.
//!
//! Kestra writes expressions in Pebble; tera's syntax is close but differs in a few
//! places that matter to flows: `??`/`???` coalescing, the ternary operator,
//! positional arguments (`date("yyyy-MM-dd")`), `elseif`, and how values print
//! (Pebble writes maps and lists as JSON). This module rewrites a template once,
//! before it is compiled and cached.

use super::ExpressionError;

mod tokens;
use tokens::*;

/// Why a Pebble block cannot be translated; [`translate`] reports it as
/// "Unable to parse the expression `…`: " followed by this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SyntaxError {
    #[error("unterminated string literal")]
    UnterminatedString,
    #[error("unexpected character `{0}`")]
    UnexpectedCharacter(char),
    #[error("unbalanced brackets")]
    UnbalancedBrackets,
    #[error("method calls like `.{0}()` are not supported")]
    MethodCall(String),
    /// Pebble's map form of `replace` with an entry that is not `'from': 'to'`.
    #[error("replace expects {{'from': 'to'}}")]
    ReplaceMap,
    /// Positional arguments to a filter or function whose parameters Kite does not know.
    #[error("`{0}` takes named arguments only")]
    NamedArgumentsOnly(String),
    #[error("too many arguments for `{0}`")]
    TooManyArguments(String),
    /// A block without its closing delimiter (`}}`, `%}`, `#}`).
    #[error("missing `{0}`")]
    MissingClose(&'static str),
    #[error("missing `{{% endraw %}}`")]
    MissingEndRaw,
    /// Statements that reach other templates or define macros: an expression has no other
    /// template to reach, and a macro or include that calls itself would recurse until the
    /// thread's stack overflows (tera has no depth limit for them).
    #[error("`{0}` is not supported in expressions")]
    Unsupported(String),
    /// Brackets, `??` operands or tags nested past [`MAX_NESTING`]: tera parses and
    /// renders nesting by recursion, which would overflow the thread's stack.
    #[error("expressions nest deeper than {MAX_NESTING} levels")]
    TooDeep,
}

/// Levels of brackets, `??`/`???` operands in one expression, and nested tags (`if`,
/// `for`, …) a template may use; far beyond hand-written expressions.
pub(crate) const MAX_NESTING: usize = 64;

/// How a `{{ … }}` value is written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PrintMode {
    /// Pebble's string form (JSON for maps and lists, empty for null).
    Text,
    /// JSON, so that a lone expression can be read back as a typed value.
    Json,
}

impl PrintMode {
    fn filter(self) -> &'static str {
        match self {
            PrintMode::Text => "kite_print",
            PrintMode::Json => "kite_json",
        }
    }
}

/// Statements that must run before the block being translated: tera cannot read
/// an attribute of a call's result (`json(x).a`), so the call is bound first.
#[derive(Default)]
struct Hoist {
    next: usize,
    prelude: String,
}

/// Rewrites calls (names of positional arguments, Pebble's map form of `replace`),
/// tests, and `elseif`.
fn rewrite(toks: &[Tok], hoist: &mut Hoist) -> Result<Vec<Tok>, SyntaxError> {
    let mut out = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        if let Tok::Ident(name) = t {
            let next = toks[i + 1..]
                .iter()
                .position(|t| *t != Tok::Space)
                .map(|p| p + i + 1);
            let prev = prev_significant(toks, i);
            let after_dot = matches!(prev, Some(Tok::Op(".")));
            if name == "equals" && !after_dot {
                // Pebble's `a equals b`.
                out.push(Tok::Op("=="));
                i += 1;
                continue;
            }
            if name == "elseif" {
                out.push(Tok::Ident("elif".into()));
                i += 1;
                continue;
            }
            let is_test_name = matches!(prev, Some(Tok::Ident(k)) if k == "is" || k == "not");
            if name == "null" && !after_dot && !is_test_name {
                // Pebble's null literal; tera has none: a function gives the value.
                out.extend([Tok::Ident("kite_null".into()), Tok::Op("("), Tok::Op(")")]);
                i += 1;
                continue;
            }
            // `if (a == b)`, `x and (y)`: a keyword before a parenthesis is no call.
            let keyword = matches!(
                name.as_str(),
                "if" | "elif" | "in" | "and" | "or" | "not" | "set" | "set_global"
            );
            if let Some(n) = next.filter(|&n| toks[n] == Tok::Op("(") && !keyword) {
                if after_dot {
                    return Err(SyntaxError::MethodCall(name.clone()));
                }
                let is_filter = matches!(prev, Some(Tok::Op("|")));
                let is_test = matches!(prev, Some(Tok::Ident(k)) if k == "is" || k == "not");
                let close = find_close(toks, n)?;
                let inner = rewrite(&toks[n + 1..close], hoist)?;
                let args = split_args(&inner);
                if is_filter && name == "replace" && args.len() == 1 && args[0].contains(&Tok::Op("{")) {
                    // Pebble: replace({'a': 'b', 'c': 'd'}) → chained tera replaces.
                    let map = &args[0];
                    let open = map.iter().position(|t| *t == Tok::Op("{")).unwrap_or(0);
                    let end = find_close(map, open)?;
                    let pairs = split_args(&map[open + 1..end]);
                    let mut parts = Vec::new();
                    for pair in pairs {
                        let colon = pair
                            .iter()
                            .position(|t| *t == Tok::Op(":"))
                            .ok_or(SyntaxError::ReplaceMap)?;
                        parts.push(format!(
                            "replace(from={}, to={})",
                            join(&pair[..colon]),
                            join(&pair[colon + 1..])
                        ));
                    }
                    out.push(Tok::Ident(parts.join(" | ")));
                    i = close + 1;
                    continue;
                }
                let mut call = vec![Tok::Ident(name.clone()), Tok::Op("(")];
                let positional = args.iter().any(|a| !is_named(a));
                if positional && !is_test {
                    let names = parameter_names(name, is_filter)
                        .ok_or_else(|| SyntaxError::NamedArgumentsOnly(name.clone()))?;
                    if args.len() > names.len() {
                        return Err(SyntaxError::TooManyArguments(name.clone()));
                    }
                    let mut rendered = Vec::new();
                    for (k, arg) in args.iter().enumerate() {
                        if is_named(arg) {
                            rendered.push(join(arg));
                        } else {
                            rendered.push(format!("{}={}", names[k], join(arg)));
                        }
                    }
                    call.push(Tok::Ident(rendered.join(", ")));
                } else {
                    call.extend(inner);
                }
                call.push(Tok::Op(")"));
                let accessed = matches!(toks.get(close + 1), Some(Tok::Op("." | "[")));
                if accessed && !is_filter && !is_test {
                    let var = format!("kite_call{}", hoist.next);
                    hoist.next += 1;
                    hoist
                        .prelude
                        .push_str(&format!("{{% set {var} = {} %}}", join(&call)));
                    out.push(Tok::Ident(var));
                } else {
                    out.extend(call);
                }
                i = close + 1;
                continue;
            }
        }
        out.push(t.clone());
        i += 1;
    }
    Ok(out)
}

/// Top-level positions of an operator (outside brackets).
fn top_level(toks: &[Tok], op: &str) -> Vec<usize> {
    let mut depth = 0i32;
    let mut found = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::Op("(" | "[" | "{") => depth += 1,
            Tok::Op(")" | "]" | "}") => depth -= 1,
            Tok::Op(o) if depth == 0 && *o == op => found.push(i),
            _ => {}
        }
    }
    found
}

/// A plain variable path (`a.b['c'][d]`), which tera's `defined` test accepts.
fn is_path(toks: &[Tok]) -> bool {
    let sig: Vec<&Tok> = toks.iter().filter(|t| **t != Tok::Space).collect();
    if !matches!(sig.first(), Some(Tok::Ident(_))) {
        return false;
    }
    let mut depth = 0;
    for t in &sig[1..] {
        match t {
            Tok::Op("[") => depth += 1,
            Tok::Op("]") => depth -= 1,
            Tok::Op(".") | Tok::Ident(_) | Tok::Str(_) | Tok::Num(_) => {}
            _ if depth > 0 => {}
            _ => return false,
        }
    }
    depth == 0
}

/// Binds the value first: tera only applies filters to some expression forms.
fn print(expr: &[Tok], mode: PrintMode) -> String {
    format!(
        "{{% set kite_value = {} %}}{{{{ kite_value | {} }}}}",
        join(expr),
        mode.filter()
    )
}

/// Coalescing (`a ?? b ??? c`) as nested ifs evaluated lazily left to right, `emit`
/// writing what each branch does with its operand; `None` without coalescing. A path is
/// tested in place (it may be undefined); any other operand (a call, a filter) is bound
/// to a variable first so that its null falls through too.
fn coalesce(toks: &[Tok], hoist: &mut Hoist, emit: impl Fn(&[Tok]) -> String) -> Option<String> {
    let mut cuts: Vec<(usize, bool)> = top_level(toks, "??").into_iter().map(|i| (i, true)).collect();
    cuts.extend(top_level(toks, "???").into_iter().map(|i| (i, false)));
    cuts.sort();
    if cuts.is_empty() {
        return None;
    }
    let mut operands = Vec::new();
    let mut start = 0;
    for (pos, _) in &cuts {
        operands.push(&toks[start..*pos]);
        start = pos + 1;
    }
    operands.push(&toks[start..]);
    let mut out = String::new();
    let mut open = 0;
    for (k, operand) in operands.iter().enumerate() {
        let last = k + 1 == operands.len();
        let null_too = cuts.get(k).is_some_and(|c| c.1);
        if last || (!null_too && !is_path(operand)) {
            // The last operand, or a value `???` keeps even when null.
            out.push_str(&emit(operand));
            break;
        }
        let (test, value) = if is_path(operand) {
            let path = join(operand);
            let test = if null_too {
                format!("{path} is defined and {path} is not null")
            } else {
                format!("{path} is defined")
            };
            (test, operand.to_vec())
        } else {
            let var = format!("kite_operand{}", hoist.next);
            hoist.next += 1;
            out.push_str(&format!("{{% set {var} = {} %}}", join(operand)));
            (format!("{var} is not null"), vec![Tok::Ident(var)])
        };
        out.push_str(&format!("{{% if {test} %}}{}{{% else %}}", emit(&value)));
        open += 1;
    }
    out.push_str(&"{% endif %}".repeat(open));
    Some(out)
}

/// Coalescing inside parentheses (`(a ?? 'x') == 'x'`, `f(a ?? b, c)`): each such
/// operand is computed first, by the same lazy chain, into a variable that takes its
/// place. Innermost groups first, so nested coalescing works too.
fn hoist_coalescing(mut toks: Vec<Tok>, hoist: &mut Hoist) -> Vec<Tok> {
    let coalesces = |toks: &[Tok]| !top_level(toks, "??").is_empty() || !top_level(toks, "???").is_empty();
    loop {
        let mut open_at = Vec::new();
        let mut group = None;
        for (i, t) in toks.iter().enumerate() {
            match t {
                Tok::Op("(") => open_at.push(i),
                Tok::Op(")") => {
                    if let Some(open) = open_at.pop() {
                        if coalesces(&toks[open + 1..i]) {
                            group = Some((open, i));
                            break;
                        }
                    }
                }
                _ => {}
            }
        }
        let Some((open, close)) = group else {
            return toks;
        };
        let inner = toks[open + 1..close].to_vec();
        let mut cuts = top_level(&inner, ",");
        cuts.push(inner.len());
        let mut replaced = Vec::new();
        let mut start = 0;
        for cut in cuts {
            let segment = &inner[start..cut];
            let var = format!("kite_coalesced{}", hoist.next);
            match coalesce(segment, hoist, |operand| {
                format!("{{% set {var} = {} %}}", join(operand))
            }) {
                Some(chain) => {
                    hoist.next += 1;
                    hoist.prelude.push_str(&chain);
                    replaced.push(Tok::Ident(var));
                }
                None => replaced.extend_from_slice(segment),
            }
            if cut < inner.len() {
                replaced.push(Tok::Op(","));
            }
            start = cut + 1;
        }
        // A group that was only the coalescing becomes the bare variable (tera reads a
        // variable in more places than a parenthesised expression); a call keeps its
        // parentheses.
        let call = matches!(
            prev_significant(&toks, open),
            Some(Tok::Ident(_) | Tok::Op(")" | "]"))
        );
        match replaced.as_slice() {
            [Tok::Ident(_)] if !call => {
                toks.splice(open..=close, replaced);
            }
            _ => {
                toks.splice(open + 1..close, replaced);
            }
        }
    }
}

/// Translates the inside of a `{{ … }}` block.
fn translate_print(src: &str, mode: PrintMode, hoist: &mut Hoist) -> Result<String, SyntaxError> {
    let toks = hoist_coalescing(rewrite(&tokenize(src)?, hoist)?, hoist);
    if let Some(chain) = coalesce(&toks, hoist, |operand| print(operand, mode)) {
        return Ok(chain);
    }
    // Ternary: cond ? a : b
    let q = top_level(&toks, "?");
    let c = top_level(&toks, ":");
    if let (Some(&qi), Some(&ci)) = (
        q.first(),
        c.iter().find(|&&ci| ci > q.first().copied().unwrap_or(0)),
    ) {
        return Ok(format!(
            "{{% if {} %}}{}{{% else %}}{}{{% endif %}}",
            join(&toks[..qi]),
            print(&toks[qi + 1..ci], mode),
            print(&toks[ci + 1..], mode)
        ));
    }
    Ok(print(&toks, mode))
}

fn translate_statement(src: &str, hoist: &mut Hoist) -> Result<String, SyntaxError> {
    Ok(join(&hoist_coalescing(rewrite(&tokenize(src)?, hoist)?, hoist)))
}

/// `set x = e` becomes `set x = kite_bound(value=e)`, which fails on an oversized value.
/// tera parses a `set` value and a function argument alike, so any `e` stays valid.
fn bound_statement(statement: String) -> String {
    let Some((keyword, rest)) = statement.split_once(char::is_whitespace) else {
        return statement;
    };
    if keyword != "set" && keyword != "set_global" {
        return statement;
    }
    let Some((name, value)) = rest.split_once('=') else {
        return statement;
    };
    let name = name.trim();
    if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') || value.starts_with('=') {
        return statement;
    }
    format!("{keyword} {name} = kite_bound(value={})", value.trim())
}

/// Moves whitespace control (`{{-`, `-}}`) to the first and last tag of a translation.
fn apply_trim(mut t: String, left: bool, right: bool) -> String {
    if left && t.len() >= 2 {
        t.insert(2, '-');
    }
    if right && t.len() >= 2 {
        let at = t.len() - 2;
        t.insert(at, '-');
    }
    t
}

/// Translates a whole Pebble template into tera source.
pub(crate) fn translate(template: &str, mode: PrintMode) -> Result<String, ExpressionError> {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    let mut counter = 0;
    // Per open `if`: how many `elif`s became `else` + `if` (see below), each closed at
    // the `endif`.
    let mut open_ifs: Vec<usize> = Vec::new();
    // Tags open around the current position (`if`, `for`, `filter`, a `set` block).
    let mut open_tags = 0usize;
    let fail =
        |e: SyntaxError| ExpressionError::new(format!("Unable to parse the expression `{template}`: {e}"));
    while let Some(start) = rest.find('{') {
        let (before, tail) = rest.split_at(start);
        out.push_str(before);
        let (open, close) = if tail.starts_with("{{") {
            ("{{", "}}")
        } else if tail.starts_with("{%") {
            ("{%", "%}")
        } else if tail.starts_with("{#") {
            ("{#", "#}")
        } else {
            out.push('{');
            rest = &tail[1..];
            continue;
        };
        let end = find_block_end(&tail[2..], close).ok_or_else(|| fail(SyntaxError::MissingClose(close)))?;
        let inner = &tail[2..2 + end];
        let after = &tail[2 + end + 2..];
        let trim_left = inner.starts_with('-');
        let trim_right = inner.ends_with('-') && inner.len() > 1;
        let body = inner.trim_start_matches('-').trim_end_matches('-');
        match open {
            "{{" => {
                let mut hoist = Hoist {
                    next: counter,
                    prelude: String::new(),
                };
                let translated = translate_print(body, mode, &mut hoist).map_err(fail)?;
                counter = hoist.next;
                out.push_str(&apply_trim(hoist.prelude + &translated, trim_left, trim_right));
                rest = after;
            }
            "{%" => {
                let keyword = body.split_whitespace().next().unwrap_or("");
                if keyword == "raw" {
                    let close_tag = after
                        .find("endraw")
                        .ok_or_else(|| fail(SyntaxError::MissingEndRaw))?;
                    let raw_close = after[close_tag..]
                        .find("%}")
                        .map(|p| close_tag + p + 2)
                        .ok_or_else(|| fail(SyntaxError::MissingClose("%}")))?;
                    out.push_str(&tail[..2 + end + 2]);
                    out.push_str(&after[..raw_close]);
                    rest = &after[raw_close..];
                    continue;
                }
                if matches!(keyword, "macro" | "include" | "import" | "extends") {
                    return Err(fail(SyntaxError::Unsupported(keyword.to_string())));
                }
                let mut hoist = Hoist {
                    next: counter,
                    prelude: String::new(),
                };
                let translated = bound_statement(translate_statement(body, &mut hoist).map_err(fail)?);
                counter = hoist.next;
                match keyword {
                    "if" | "for" | "filter" => open_tags += 1,
                    "set" | "set_global" if !body.contains('=') => open_tags += 1,
                    "endif" | "endfor" | "endfilter" | "endset" => open_tags = open_tags.saturating_sub(1),
                    _ => {}
                }
                let mut statement = format!("{{% {translated} %}}");
                match keyword {
                    "if" => open_ifs.push(0),
                    "elif" | "elseif" if !hoist.prelude.is_empty() => {
                        // What the condition needs is computed where the branch starts: an
                        // `elif` becomes `else` then a nested `if`, closed at the `endif`.
                        let condition = translated.split_once(char::is_whitespace).map_or("", |(_, c)| c);
                        statement = format!("{{% else %}}{}{{% if {condition} %}}", hoist.prelude);
                        hoist.prelude.clear();
                        if let Some(nested) = open_ifs.last_mut() {
                            *nested += 1;
                        }
                        open_tags += 1;
                    }
                    "endif" => {
                        let nested = open_ifs.pop().unwrap_or(0);
                        open_tags = open_tags.saturating_sub(nested);
                        statement.push_str(&"{% endif %}".repeat(nested));
                    }
                    _ => {}
                }
                if open_tags > MAX_NESTING {
                    return Err(fail(SyntaxError::TooDeep));
                }
                if keyword == "for" {
                    // tera has no hook into its loops: each iteration calls the counter.
                    statement.push_str("{{ kite_loop() }}");
                }
                out.push_str(&apply_trim(hoist.prelude + &statement, trim_left, trim_right));
                rest = after;
            }
            _ => {
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Finds the closing tag, skipping string literals.
fn find_block_end(s: &str, close: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) => {
                if b == b'\\' {
                    i += 1;
                } else if b == q {
                    quote = None;
                }
            }
            None => {
                if b == b'"' || b == b'\'' {
                    quote = Some(b);
                } else if bytes[i..].starts_with(close.as_bytes()) {
                    return Some(i);
                }
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests;
