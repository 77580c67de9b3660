//! Kestra's Pebble filters and tests, registered on tera here, and its functions
//! ([`functions`]).
//!
//! Functions that need the render context (`now`, `read`, `render`, `errorLogs`,
//! `currentEachOutput`, `secret`, `kv`) reach it through [`super::with_current`], set for the
//! duration of one render.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use serde_json::{Map, Value};
use tera::{Error, Result, Tera};

use super::{count_iteration, dates, jq, larger_than, read, with_current, write_pebble, MAX_RENDER_OUTPUT};

mod functions;

type Args = HashMap<String, Value>;

fn arg_str<'a>(args: &'a Args, name: &str) -> Option<&'a str> {
    args.get(name).and_then(Value::as_str)
}

fn arg_i64(args: &Args, name: &str) -> Result<Option<i64>> {
    match args.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| Error::msg(format!("`{name}` must be an integer"))),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| Error::msg(format!("`{name}` must be an integer"))),
        Some(other) => Err(Error::msg(format!("`{name}` must be an integer, got {other}"))),
    }
}

/// Pebble's hash filters: the lowercase hex digest of a string's UTF-8 bytes.
fn digest_filter<D: sha2::Digest>(v: &Value, _: &Args) -> Result<Value> {
    use std::fmt::Write;
    match v {
        Value::Null => Ok(Value::Null),
        Value::String(s) => {
            let mut hex = String::new();
            for byte in D::digest(s.as_bytes()) {
                let _ = write!(hex, "{byte:02x}");
            }
            Ok(Value::String(hex))
        }
        _ => Err(Error::msg("Need a string to hash")),
    }
}

fn text(value: &Value) -> String {
    write_pebble(value)
}

/// `uuid()`, `id()` and `randomInt()`: the std hasher's random seed is the one source of
/// randomness renders have (the host's `IdSource` does not reach expression functions).
#[allow(clippy::disallowed_types)]
fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x6b69_7465);
    h.finish()
}

pub(super) fn register(tera: &mut Tera) {
    // Called by the translation at the top of every `for` body.
    tera.register_function("kite_loop", |_: &Args| {
        count_iteration().map_err(|e| Error::msg(e.message))?;
        Ok(Value::String(String::new()))
    });
    // Wraps the value of every `set`: a variable doubled in a loop would otherwise
    // outgrow memory in a few dozen iterations, long before the output bound sees it.
    tera.register_function("kite_bound", |args: &Args| {
        let value = args.get("value").cloned().unwrap_or(Value::Null);
        if larger_than(&value, MAX_RENDER_OUTPUT) {
            return Err(Error::msg(format!(
                "render stopped: a variable of more than {MAX_RENDER_OUTPUT} bytes"
            )));
        }
        Ok(value)
    });
    // Pebble's `null` literal (the translation writes `kite_null()` for it).
    tera.register_function("kite_null", |_: &Args| Ok(Value::Null));
    tera.register_filter("kite_print", |v: &Value, _: &Args| Ok(Value::String(text(v))));
    tera.register_filter("kite_json", |v: &Value, _: &Args| {
        serde_json::to_string(v)
            .map(Value::String)
            .map_err(|e| Error::msg(e.to_string()))
    });
    for name in ["json", "toJson"] {
        tera.register_filter(name, |v: &Value, _: &Args| {
            serde_json::to_string(v)
                .map(Value::String)
                .map_err(|e| Error::msg(e.to_string()))
        });
    }
    tera.register_filter("yaml", |v: &Value, _: &Args| {
        serde_yaml::to_string(v)
            .map(Value::String)
            .map_err(|e| Error::msg(e.to_string()))
    });
    tera.register_filter("jq", |v: &Value, args: &Args| {
        let program = arg_str(args, "expression").ok_or_else(|| Error::msg("jq needs an expression"))?;
        // Kestra applies jq to JSON text as well as to values.
        let input = match v {
            Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| v.clone()),
            other => other.clone(),
        };
        jq::run(program, &input).map_err(Error::msg)
    });
    tera.register_filter("date", |v: &Value, args: &Args| {
        let d = dates::parse_date(v, arg_str(args, "existingFormat")).map_err(Error::msg)?;
        dates::format_date(d, arg_str(args, "format"), arg_str(args, "timeZone"))
            .map(Value::String)
            .map_err(Error::msg)
    });
    tera.register_filter("dateAdd", |v: &Value, args: &Args| {
        let d = dates::parse_date(v, arg_str(args, "existingFormat")).map_err(Error::msg)?;
        let amount = arg_i64(args, "amount")?.ok_or_else(|| Error::msg("dateAdd needs an amount"))?;
        let unit = arg_str(args, "unit").ok_or_else(|| Error::msg("dateAdd needs a unit"))?;
        let d = dates::add(d, amount, unit).map_err(Error::msg)?;
        dates::format_date(d, arg_str(args, "format"), arg_str(args, "timeZone"))
            .map(Value::String)
            .map_err(Error::msg)
    });
    let stamp = |scale: i64| {
        move |v: &Value, args: &Args| -> Result<Value> {
            let d = dates::parse_date(v, arg_str(args, "existingFormat")).map_err(Error::msg)?;
            let n = match scale {
                1 => d.timestamp(),
                1_000_000 => d.timestamp_micros(),
                _ => d.timestamp_nanos_opt().unwrap_or(i64::MAX),
            };
            Ok(Value::from(n))
        }
    };
    tera.register_filter("timestamp", stamp(1));
    tera.register_filter("timestampMicro", stamp(1_000_000));
    tera.register_filter("timestampNano", stamp(1_000_000_000));
    tera.register_filter("keys", |v: &Value, _: &Args| match v {
        Value::Object(m) => Ok(Value::Array(m.keys().cloned().map(Value::String).collect())),
        Value::Array(a) => Ok(Value::Array((0..a.len()).map(Value::from).collect())),
        _ => Err(Error::msg("keys expects a map")),
    });
    tera.register_filter("values", |v: &Value, _: &Args| match v {
        Value::Object(m) => Ok(Value::Array(m.values().cloned().collect())),
        Value::Array(a) => Ok(Value::Array(a.clone())),
        _ => Err(Error::msg("values expects a map")),
    });
    tera.register_filter("number", |v: &Value, args: &Args| {
        let s = text(v);
        let s = s.trim();
        let kind = arg_str(args, "type").unwrap_or("").to_ascii_uppercase();
        let parsed = match kind.as_str() {
            "INT" | "INTEGER" | "LONG" => s.parse::<i64>().map(Value::from).ok(),
            "FLOAT" | "DOUBLE" => s
                .parse::<f64>()
                .ok()
                .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number)),
            _ => s.parse::<i64>().map(Value::from).ok().or_else(|| {
                s.parse::<f64>()
                    .ok()
                    .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
            }),
        };
        parsed.ok_or_else(|| Error::msg(format!("Unable to parse `{s}` as a number")))
    });
    tera.register_filter("abs", |v: &Value, _: &Args| match v {
        Value::Number(n) if n.is_i64() => Ok(Value::from(n.as_i64().unwrap_or(0).abs())),
        Value::Number(n) => Ok(serde_json::Number::from_f64(n.as_f64().unwrap_or(0.0).abs())
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        _ => Err(Error::msg("abs expects a number")),
    });
    tera.register_filter("slugify", |v: &Value, _: &Args| {
        let mut out = String::new();
        for c in text(v).to_lowercase().chars() {
            if c.is_ascii_alphanumeric() {
                out.push(c);
            } else if !out.ends_with('-') && !out.is_empty() {
                out.push('-');
            }
        }
        Ok(Value::String(out.trim_end_matches('-').to_string()))
    });
    tera.register_filter("chunk", |v: &Value, args: &Args| {
        let size = arg_i64(args, "size")?
            .filter(|s| *s > 0)
            .ok_or_else(|| Error::msg("chunk needs a positive size"))? as usize;
        let items = v.as_array().ok_or_else(|| Error::msg("chunk expects a list"))?;
        Ok(Value::Array(
            items.chunks(size).map(|c| Value::Array(c.to_vec())).collect(),
        ))
    });
    tera.register_filter("flatten", |v: &Value, _: &Args| {
        let items = v.as_array().ok_or_else(|| Error::msg("flatten expects a list"))?;
        let mut out = Vec::new();
        for item in items {
            match item {
                Value::Array(inner) => out.extend(inner.iter().cloned()),
                other => out.push(other.clone()),
            }
        }
        Ok(Value::Array(out))
    });
    let indent = |first_line: bool| {
        move |v: &Value, args: &Args| -> Result<Value> {
            let amount = arg_i64(args, "amount")?.unwrap_or(0).max(0) as usize;
            let prefix = arg_str(args, "prefix").unwrap_or(" ").repeat(amount);
            let s = text(v);
            let body = s.lines().enumerate().map(|(i, l)| {
                if i == 0 && !first_line {
                    l.to_string()
                } else {
                    format!("{prefix}{l}")
                }
            });
            let joined = body.collect::<Vec<_>>().join("\n");
            Ok(Value::String(if first_line {
                format!("\n{joined}")
            } else {
                joined
            }))
        }
    };
    tera.register_filter("indent", indent(false));
    tera.register_filter("nindent", indent(true));
    tera.register_filter("escapeChar", |v: &Value, args: &Args| {
        let s = text(v);
        let out = match arg_str(args, "type")
            .unwrap_or("single")
            .to_ascii_lowercase()
            .as_str()
        {
            "single" => s.replace('\'', "\\'"),
            "double" => s.replace('"', "\\\""),
            "shell" => s.replace('\'', "'\\''"),
            other => return Err(Error::msg(format!("Unknown escape type `{other}`"))),
        };
        Ok(Value::String(out))
    });
    tera.register_filter("md5", digest_filter::<md5::Md5>);
    tera.register_filter("sha1", digest_filter::<sha1::Sha1>);
    tera.register_filter("sha256", digest_filter::<sha2::Sha256>);
    tera.register_filter("sha512", digest_filter::<sha2::Sha512>);
    tera.register_filter("urldecode", |v: &Value, _: &Args| {
        let s = text(v);
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    match std::str::from_utf8(&bytes[i + 1..i + 3])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                    {
                        Some(b) => {
                            out.push(b);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        Ok(Value::String(String::from_utf8_lossy(&out).into_owned()))
    });
    tera.register_filter("base64encode", |v: &Value, _: &Args| {
        use base64::Engine as _;
        match v {
            Value::Null => Ok(Value::Null),
            Value::String(s) => Ok(Value::String(base64::engine::general_purpose::STANDARD.encode(s))),
            _ => Err(Error::msg("base64encode needs a string")),
        }
    });
    tera.register_filter("base64decode", |v: &Value, _: &Args| {
        use base64::Engine as _;
        match v {
            Value::Null => Ok(Value::Null),
            Value::String(s) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(s.trim())
                    .map_err(|e| Error::msg(format!("base64decode: `{s}` is not base64 ({e})")))?;
                String::from_utf8(bytes)
                    .map(Value::String)
                    .map_err(|_| Error::msg(format!("base64decode: `{s}` does not decode to UTF-8 text")))
            }
            _ => Err(Error::msg("base64decode needs a string")),
        }
    });
    tera.register_filter("urlencode", |v: &Value, _: &Args| {
        let mut out = String::new();
        for b in text(v).bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
                b' ' => out.push('+'),
                other => out.push_str(&format!("%{other:02X}")),
            }
        }
        Ok(Value::String(out))
    });
    let substring = |before: bool, last: bool| {
        move |v: &Value, args: &Args| -> Result<Value> {
            let s = text(v);
            let sep = arg_str(args, "separator").unwrap_or("");
            let pos = if last { s.rfind(sep) } else { s.find(sep) };
            let out = match (pos, before) {
                (Some(p), true) => s[..p].to_string(),
                (Some(p), false) => s[p + sep.len()..].to_string(),
                (None, true) => s.clone(),
                (None, false) => String::new(),
            };
            Ok(Value::String(out))
        }
    };
    tera.register_filter("substringBefore", substring(true, false));
    tera.register_filter("substringBeforeLast", substring(true, true));
    tera.register_filter("substringAfter", substring(false, false));
    tera.register_filter("substringAfterLast", substring(false, true));
    tera.register_filter("startsWith", |v: &Value, args: &Args| {
        Ok(Value::Bool(
            text(v).starts_with(arg_str(args, "prefix").unwrap_or("")),
        ))
    });
    tera.register_filter("endsWith", |v: &Value, args: &Args| {
        Ok(Value::Bool(
            text(v).ends_with(arg_str(args, "suffix").unwrap_or("")),
        ))
    });
    tera.register_filter("join", |v: &Value, args: &Args| {
        let sep = arg_str(args, "separator")
            .or_else(|| arg_str(args, "sep"))
            .unwrap_or("");
        let items = v.as_array().ok_or_else(|| Error::msg("join expects a list"))?;
        Ok(Value::String(
            items.iter().map(text).collect::<Vec<_>>().join(sep),
        ))
    });
    tera.register_filter("split", |v: &Value, args: &Args| {
        let sep = arg_str(args, "delimiter")
            .or_else(|| arg_str(args, "pat"))
            .unwrap_or(",");
        let s = text(v);
        let limit = arg_i64(args, "limit")?.filter(|l| *l > 0);
        let parts: Vec<Value> = match limit {
            Some(l) => s
                .splitn(l as usize, sep)
                .map(|p| Value::String(p.to_string()))
                .collect(),
            None => s.split(sep).map(|p| Value::String(p.to_string())).collect(),
        };
        Ok(Value::Array(parts))
    });
    tera.register_filter("slice", |v: &Value, args: &Args| {
        let from = arg_i64(args, "fromIndex")?
            .or(arg_i64(args, "start")?)
            .unwrap_or(0)
            .max(0) as usize;
        match v {
            Value::Array(items) => {
                let to = arg_i64(args, "toIndex")?
                    .or(arg_i64(args, "end")?)
                    .map(|t| t.max(0) as usize)
                    .unwrap_or(items.len())
                    .min(items.len());
                Ok(Value::Array(
                    items.get(from.min(to)..to).unwrap_or_default().to_vec(),
                ))
            }
            other => {
                let chars: Vec<char> = text(other).chars().collect();
                let to = arg_i64(args, "toIndex")?
                    .map(|t| t.max(0) as usize)
                    .unwrap_or(chars.len())
                    .min(chars.len());
                Ok(Value::String(chars[from.min(to)..to].iter().collect()))
            }
        }
    });
    tera.register_filter("abbreviate", |v: &Value, args: &Args| {
        let len = arg_i64(args, "length")?.unwrap_or(0).max(0) as usize;
        let s = text(v);
        if s.chars().count() <= len {
            return Ok(Value::String(s));
        }
        let keep = len.saturating_sub(3);
        Ok(Value::String(s.chars().take(keep).collect::<String>() + "..."))
    });
    tera.register_filter("merge", |v: &Value, args: &Args| {
        let other = args.get("items").cloned().unwrap_or(Value::Null);
        match (v, other) {
            (Value::Array(a), Value::Array(b)) => Ok(Value::Array(a.iter().cloned().chain(b).collect())),
            (Value::Object(a), Value::Object(b)) => {
                let mut m: Map<String, Value> = a.clone();
                m.extend(b);
                Ok(Value::Object(m))
            }
            _ => Err(Error::msg("merge expects two lists or two maps")),
        }
    });
    tera.register_filter("className", |v: &Value, _: &Args| {
        let name = match v {
            Value::Null => "null",
            Value::Bool(_) => "java.lang.Boolean",
            Value::Number(n) if n.is_i64() => "java.lang.Long",
            Value::Number(_) => "java.lang.Double",
            Value::String(_) => "java.lang.String",
            Value::Array(_) => "java.util.ArrayList",
            Value::Object(_) => "java.util.LinkedHashMap",
        };
        Ok(Value::String(name.into()))
    });

    tera.register_tester("null", |v: Option<&Value>, _: &[Value]| {
        Ok(matches!(v, None | Some(Value::Null)))
    });
    tera.register_tester("empty", |v: Option<&Value>, _: &[Value]| {
        Ok(match v {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            Some(Value::Object(m)) => m.is_empty(),
            _ => false,
        })
    });
    tera.register_tester("json", |v: Option<&Value>, _: &[Value]| {
        Ok(match v {
            Some(Value::String(s)) => {
                serde_json::from_str::<Value>(s).is_ok_and(|j| j.is_object() || j.is_array())
            }
            _ => false,
        })
    });
    functions::register(tera);
}
