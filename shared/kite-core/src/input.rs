//! Flow inputs: typing of provided values (Kestra's `FlowInputOutput`), against
//! the declarations of `input_definition` (re-exported here).

use chrono::{DateTime, NaiveDate, NaiveTime, SecondsFormat, Utc};
use indexmap::IndexMap;
use serde_json::Value;
use std::sync::OnceLock;

pub use crate::input_definition::{DependsOn, InputDefinition, InputType};

/// A value given for an input.
#[derive(Debug, Clone, PartialEq)]
pub enum InputValue {
    /// Raw text, as forms and query strings carry it.
    Text(String),
    /// Already typed JSON (SDK calls, subflows, schedules, defaults).
    Json(Value),
}

impl InputValue {
    /// The value as Kestra prints it in messages (Java's `toString`).
    fn shown(&self) -> String {
        match self {
            InputValue::Text(s) => s.clone(),
            InputValue::Json(v) => java_string(v),
        }
    }

    /// The value as text to parse (maps and lists as JSON).
    fn text(&self) -> String {
        match self {
            InputValue::Text(s) => s.clone(),
            InputValue::Json(v) => crate::expression::write_pebble(v),
        }
    }
}

/// Java's `toString` of what Jackson reads: lists `[a, b]`, maps `{k=v}`.
fn java_string(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(java_string).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{k}={}", java_string(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Evaluates a `dependsOn.condition` against the inputs resolved so far.
pub type ConditionEvaluator<'a> = &'a dyn Fn(&str, &IndexMap<String, Value>) -> Result<bool, String>;

/// Where the inputs are being typed.
#[derive(Clone, Copy, Default)]
pub struct InputContext<'a> {
    pub namespace: &'a str,
    pub flow_id: &'a str,
    pub execution_id: &'a str,
    /// AES key (16, 24 or 32 bytes) for SECRET inputs.
    pub secret_key: Option<&'a [u8]>,
    pub condition: Option<ConditionEvaluator<'a>>,
}

/// An input that cannot be accepted, in Kestra's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InputError {
    pub input_id: String,
    pub message: String,
}

impl InputError {
    fn invalid(id: &str, detail: &str, received: &str) -> Self {
        InputError {
            input_id: id.to_string(),
            message: format!("Invalid input for `{id}`, {detail}, but received `{received}`"),
        }
    }

    fn unparsable(id: &str, type_name: &str, received: &str, cause: &str) -> Self {
        InputError {
            input_id: id.to_string(),
            message: format!(
                "Invalid input for `{id}`, Expected `{type_name}` but received `{received}` with errors:\n```\n{cause}\n```, but received `{received}`"
            ),
        }
    }
}

/// `kestra:///{namespace as path}/{flowId}/executions/{executionId}/inputs/{inputId}/{filename}`
pub fn file_input_uri(
    namespace: &str,
    flow_id: &str,
    execution_id: &str,
    input_id: &str,
    filename: &str,
) -> String {
    format!(
        "{}inputs/{input_id}/{filename}",
        execution_storage_prefix(namespace, flow_id, execution_id)
    )
}

/// The storage prefix of everything an execution owns.
pub fn execution_storage_prefix(namespace: &str, flow_id: &str, execution_id: &str) -> String {
    format!(
        "kestra:///{}/{flow_id}/executions/{execution_id}/",
        namespace.replace('.', "/")
    )
}

/// `kestra:///{namespace as path}/{flowId}/uploads/`: FILE inputs staged for the flow's
/// executions before they are created (files too large for one request body).
pub fn flow_uploads_prefix(namespace: &str, flow_id: &str) -> String {
    format!("kestra:///{}/{flow_id}/uploads/", namespace.replace('.', "/"))
}

/// Types every declared input from what was provided, falling back to defaults.
/// Undeclared keys are ignored; only the first failing input is reported.
pub fn resolve_inputs(
    definitions: &[InputDefinition],
    provided: &IndexMap<String, InputValue>,
    ctx: &InputContext,
) -> Result<IndexMap<String, Value>, InputError> {
    let mut flat: IndexMap<String, Value> = IndexMap::new();
    for def in definitions {
        if let Some(dep) = &def.depends_on {
            let deps_ok = dep
                .inputs
                .iter()
                .all(|i| flat.get(i).is_some_and(|v| !v.is_null()));
            let condition_ok = match (&dep.condition, ctx.condition) {
                (Some(c), Some(eval)) => eval(c, &flat).map_err(|e| InputError {
                    input_id: def.id.clone(),
                    message: format!("Invalid condition: {e}"),
                })?,
                _ => true,
            };
            if !deps_ok || !condition_ok {
                continue;
            }
        }
        // A JSON null is no value at all: the default applies, or the input is missing.
        let value = provided
            .get(&def.id)
            .filter(|v| !matches!(v, InputValue::Json(Value::Null)))
            .cloned()
            .or_else(|| def.defaults.clone().filter(|d| !d.is_null()).map(default_value));
        let typed = match value {
            None => {
                if def.required {
                    return Err(InputError::invalid(&def.id, "missing required input", "null"));
                }
                Value::Null
            }
            Some(v) => type_input(def, v, ctx)?,
        };
        flat.insert(def.id.clone(), typed);
    }
    Ok(nest(flat))
}

fn default_value(v: Value) -> InputValue {
    match v {
        Value::String(s) => InputValue::Text(s),
        other => InputValue::Json(other),
    }
}

/// `a.b.c` ids become nested maps, as Kestra exposes them.
fn nest(flat: IndexMap<String, Value>) -> IndexMap<String, Value> {
    let mut out: IndexMap<String, Value> = IndexMap::new();
    for (id, value) in flat {
        let mut parts = id.split('.').peekable();
        let first = parts.next().unwrap_or_default().to_string();
        if parts.peek().is_none() {
            out.insert(first, value);
            continue;
        }
        let mut slot = out
            .entry(first)
            .or_insert_with(|| Value::Object(Default::default()));
        while let Some(part) = parts.next() {
            if !slot.is_object() {
                *slot = Value::Object(Default::default());
            }
            let map = match slot {
                Value::Object(m) => m,
                _ => unreachable!("just made an object"),
            };
            if parts.peek().is_none() {
                map.insert(part.to_string(), value);
                break;
            }
            slot = map
                .entry(part.to_string())
                .or_insert_with(|| Value::Object(Default::default()));
        }
    }
    out
}

fn regex(pattern: &'static str, cell: &'static OnceLock<regex::Regex>) -> &'static regex::Regex {
    cell.get_or_init(|| regex::Regex::new(pattern).expect("static pattern"))
}

/// INT/FLOAT `min`/`max`; the bound is printed as Java prints an Integer or a Float.
fn bound_number(def: &InputDefinition, n: f64, shown: &str) -> Result<(), InputError> {
    let print = |bound: &Option<Value>, b: f64| {
        if def.input_type == InputType::Float {
            java_float_string(b as f32)
        } else {
            raw(bound)
        }
    };
    if let Some(min) = def.min.as_ref().and_then(number_of) {
        if n < min {
            return Err(InputError::invalid(
                &def.id,
                &format!("it must be more than `{}`", print(&def.min, min)),
                shown,
            ));
        }
    }
    if let Some(max) = def.max.as_ref().and_then(number_of) {
        if n > max {
            return Err(InputError::invalid(
                &def.id,
                &format!("it must be less than `{}`", print(&def.max, max)),
                shown,
            ));
        }
    }
    Ok(())
}

/// Java's `Float.toString`: `1.0`, `0.1`, `1.0E10`, `1.0E-4`.
fn java_float_string(f: f32) -> String {
    let magnitude = f.abs();
    if f == 0.0 || (1e-3..1e7).contains(&magnitude) {
        let s = f.to_string();
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let s = format!("{f:e}");
        let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = if mantissa.contains('.') {
            mantissa.to_string()
        } else {
            format!("{mantissa}.0")
        };
        format!("{mantissa}E{exponent}")
    }
}

fn number_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn raw(v: &Option<Value>) -> String {
    v.as_ref()
        .map(crate::expression::write_pebble)
        .unwrap_or_default()
}

/// Types one value for one declared input.
pub fn type_input(def: &InputDefinition, value: InputValue, ctx: &InputContext) -> Result<Value, InputError> {
    // A JSON string is the same text a form would send (Kestra sees a `String` either way).
    let value = match value {
        InputValue::Json(Value::String(s)) => InputValue::Text(s),
        other => other,
    };
    let id = def.id.as_str();
    let shown = value.shown();
    let type_name = def.input_type.name();
    let parse_err = |cause: &str| InputError::unparsable(id, type_name, &shown, cause);
    match def.input_type {
        InputType::String => {
            let s = value.text();
            check_validator(def, &s)?;
            Ok(Value::String(s))
        }
        InputType::Enum | InputType::Select => {
            let s = value.text();
            check_values(def, std::slice::from_ref(&s), &shown)?;
            Ok(Value::String(s))
        }
        InputType::MultiSelect => {
            // A list, or the JSON text of one (Kestra reads it with Jackson).
            let items: Vec<String> = match &value {
                InputValue::Json(Value::Array(a)) => a.iter().map(crate::expression::write_pebble).collect(),
                _ => match serde_json::from_str::<Value>(&value.text()) {
                    Ok(Value::Array(a)) => a.iter().map(crate::expression::write_pebble).collect(),
                    Ok(other) => {
                        return Err(parse_err(&format!(
                            "Cannot deserialize value of type `java.util.ArrayList` from {}",
                            json_kind(&other)
                        )))
                    }
                    Err(e) => return Err(parse_err(&e.to_string())),
                },
            };
            check_values(def, &items, &shown)?;
            Ok(Value::Array(items.into_iter().map(Value::String).collect()))
        }
        InputType::Int => {
            // Java's `Integer.valueOf`: 32 bits; its NumberFormatException is an
            // IllegalArgumentException, so Kestra reports its message unwrapped.
            let typed = match &value {
                InputValue::Json(Value::Number(n)) => n.as_i64().and_then(|i| i32::try_from(i).ok()),
                _ => None,
            };
            let n = match typed {
                Some(n) => n,
                None => {
                    let text = value.text();
                    let text = text.trim();
                    text.parse::<i32>().map_err(|_| {
                        InputError::invalid(id, &format!("For input string: \"{text}\""), &shown)
                    })?
                }
            };
            bound_number(def, f64::from(n), &shown)?;
            Ok(Value::from(n))
        }
        InputType::Float => {
            let f = match &value {
                InputValue::Json(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
                _ => java_float(&value.text()).map_err(|m| InputError::invalid(id, &m, &shown))?,
            };
            bound_number(def, f, &shown)?;
            serde_json::Number::from_f64(f)
                .map(Value::Number)
                .ok_or_else(|| parse_err("not a finite number"))
        }
        InputType::Boolean => Ok(Value::Bool(match &value {
            InputValue::Json(Value::Bool(b)) => *b,
            _ => value.text().trim().eq_ignore_ascii_case("true"),
        })),
        InputType::Bool => match &value {
            InputValue::Json(Value::Bool(b)) => Ok(Value::Bool(*b)),
            _ => match value.text().trim().to_ascii_lowercase().as_str() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err(InputError::invalid(
                    id,
                    &format!("Expected `BOOL` but received `{shown}`"),
                    &shown,
                )),
            },
        },
        InputType::DateTime => {
            let d = parse_instant(&value.text()).map_err(|e| parse_err(&e))?;
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
                            &shown,
                        ));
                    }
                }
            }
            Ok(Value::String(java_instant(d)))
        }
        InputType::Date => {
            let d = parse_date(&value.text()).map_err(|e| parse_err(&e))?;
            for (bound, after) in [(&def.after, true), (&def.before, false)] {
                let b = bound.as_ref().map(crate::expression::write_pebble);
                if let Some(b) = b.and_then(|b| parse_date(&b).ok()) {
                    if (after && d < b) || (!after && d > b) {
                        let word = if after { "after" } else { "before" };
                        return Err(InputError::invalid(
                            id,
                            &format!("it must be {word} `{}`", b.format("%Y-%m-%d")),
                            &shown,
                        ));
                    }
                }
            }
            Ok(Value::String(d.format("%Y-%m-%d").to_string()))
        }
        InputType::Time => {
            let t = parse_time(&value.text()).map_err(|e| parse_err(&e))?;
            for (bound, after) in [(&def.after, true), (&def.before, false)] {
                let b = bound.as_ref().map(crate::expression::write_pebble);
                if let Some(b) = b.and_then(|b| parse_time(&b).ok()) {
                    if (after && t < b) || (!after && t > b) {
                        let word = if after { "after" } else { "before" };
                        return Err(InputError::invalid(
                            id,
                            &format!("it must be {word} `{}`", java_time(b)),
                            &shown,
                        ));
                    }
                }
            }
            Ok(Value::String(java_time(t)))
        }
        InputType::Duration => {
            let d = parse_iso_duration(&value.text())
                .ok_or_else(|| parse_err("Text cannot be parsed to a Duration"))?;
            for (bound, more) in [(&def.min, true), (&def.max, false)] {
                let b = bound.as_ref().map(crate::expression::write_pebble);
                if let Some(b) = b.and_then(|b| parse_iso_duration(&b)) {
                    if (more && d < b) || (!more && d > b) {
                        let word = if more { "more" } else { "less" };
                        return Err(InputError::invalid(
                            id,
                            &format!("It must be {word} than `{}`", java_duration(b)),
                            &shown,
                        ));
                    }
                }
            }
            Ok(Value::String(java_duration(d)))
        }
        InputType::File => {
            let s = value.text();
            if s.starts_with("kestra:///") && !s.contains("/../") {
                Ok(Value::String(s))
            } else {
                Err(InputError::invalid(
                    id,
                    &format!("Expected `FILE` but received `{shown}`"),
                    &shown,
                ))
            }
        }
        InputType::Json => match value {
            InputValue::Json(v) => Ok(v),
            InputValue::Text(s) => serde_json::from_str(&s).map_err(|e| parse_err(&e.to_string())),
        },
        InputType::Yaml => match value {
            InputValue::Json(v) => Ok(v),
            InputValue::Text(s) => serde_yaml::from_str::<serde_yaml::Value>(&s)
                .map(crate::flow::yaml_value_to_json)
                .map_err(|e| parse_err(&e.to_string())),
        },
        InputType::Uri => {
            static URI: OnceLock<regex::Regex> = OnceLock::new();
            let s = value.text();
            if regex(URI_PATTERN, &URI).is_match(&s) {
                Ok(Value::String(s))
            } else {
                Err(InputError::invalid(
                    id,
                    &format!("Expected `URI` but received `{shown}`"),
                    &shown,
                ))
            }
        }
        InputType::Email => {
            static EMAIL: OnceLock<regex::Regex> = OnceLock::new();
            let s = value.text();
            if s.is_empty()
                || regex("^[a-zA-Z0-9_!#$%&\u{2019}*+/=?`{|}~^.-]+@[a-zA-Z0-9.-]+$", &EMAIL).is_match(&s)
            {
                Ok(Value::String(s))
            } else {
                Err(InputError::invalid(id, "The input must be a valid email", &shown))
            }
        }
        InputType::Secret => {
            let s = value.text();
            let key = ctx.secret_key.ok_or_else(|| {
                parse_err("Unable to use a `SECRET` input/output as encryption is not configured")
            })?;
            check_validator(def, &s)?;
            encrypt_secret(&s, key)
                .map(Value::String)
                .map_err(|e| InputError {
                    input_id: id.to_string(),
                    message: e,
                })
        }
        InputType::Array => {
            let items: Vec<Value> = match &value {
                InputValue::Json(Value::Array(a)) => a.clone(),
                _ => match serde_json::from_str::<Value>(&value.text()) {
                    Ok(Value::Array(a)) => a,
                    Ok(other) => {
                        return Err(parse_err(&format!(
                            "Cannot deserialize value of type `java.util.ArrayList` from {}",
                            json_kind(&other)
                        )))
                    }
                    Err(e) => return Err(parse_err(&e.to_string())),
                },
            };
            // Without `itemType` Kestra keeps the items as they are.
            let Some(item_type) = def.item_type else {
                return Ok(Value::Array(items));
            };
            let mut item_def = InputDefinition::of(&def.id, item_type);
            item_def.required = false;
            item_def.allow_custom_value = true;
            items
                .into_iter()
                .map(|item| {
                    let shown_item = java_string(&item);
                    let v = match item {
                        Value::String(s) => InputValue::Text(s),
                        other => InputValue::Json(other),
                    };
                    type_input(&item_def, v, ctx).map_err(|_| {
                        InputError::invalid(
                            id,
                            &format!(
                                "Unable to parse array element as `{}` on `{shown_item}`",
                                item_type.name()
                            ),
                            &shown,
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
    }
}

fn check_validator(def: &InputDefinition, s: &str) -> Result<(), InputError> {
    if let Some(pattern) = &def.validator {
        let re = regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| InputError {
            input_id: def.id.clone(),
            message: format!("Invalid validator `{pattern}` for `{}`: {e}", def.id),
        })?;
        if !re.is_match(s) {
            return Err(InputError::invalid(
                &def.id,
                &format!("it must match the pattern `{pattern}`"),
                s,
            ));
        }
    }
    Ok(())
}

fn check_values(def: &InputDefinition, items: &[String], shown: &str) -> Result<(), InputError> {
    if def.allow_custom_value {
        return Ok(());
    }
    if let Some(values) = &def.values {
        if items.iter().any(|i| !values.contains(i)) {
            return Err(InputError::invalid(
                &def.id,
                &format!("it must match the values `[{}]`", values.join(", ")),
                shown,
            ));
        }
    }
    Ok(())
}

/// Kestra's `FlowInputOutput.URI_PATTERN`.
const URI_PATTERN: &str =
    r"^[a-z]+://(?:www\.)?[-a-zA-Z0-9@:%._+~#=]{1,256}\.[a-zA-Z0-9()]{1,6}\b(?:[-a-zA-Z0-9()@:%_+.~#?&/=]*)$";

/// How Jackson names the JSON token it could not turn into a list.
fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "Object value (token `JsonToken.START_OBJECT`)",
        Value::String(_) => "String value (token `JsonToken.VALUE_STRING`)",
        Value::Number(n) if n.is_f64() => "Floating-point value (token `JsonToken.VALUE_NUMBER_FLOAT`)",
        Value::Number(_) => "Integer value (token `JsonToken.VALUE_NUMBER_INT`)",
        Value::Bool(true) => "Boolean value (token `JsonToken.VALUE_TRUE`)",
        Value::Bool(false) => "Boolean value (token `JsonToken.VALUE_FALSE`)",
        Value::Null | Value::Array(_) => "Null value (token `JsonToken.VALUE_NULL`)",
    }
}

/// Java's `Float.valueOf`: 32-bit precision, shown as Jackson writes a `Float`
/// (`42.42` stays `42.42`). The error is Java's NumberFormatException message.
fn java_float(text: &str) -> Result<f64, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty String".into());
    }
    let bad = || format!("For input string: \"{t}\"");
    // Java also takes a trailing `f`/`d` type suffix.
    let digits = t
        .strip_suffix(['f', 'F', 'd', 'D'])
        .filter(|d| !d.is_empty())
        .unwrap_or(t);
    let numeric = digits
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'));
    let f: f32 = if numeric {
        digits.parse().map_err(|_| bad())?
    } else {
        return Err(bad());
    };
    if !f.is_finite() {
        return Err(bad());
    }
    f.to_string().parse::<f64>().map_err(|_| bad())
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

/// Reads ISO-8601 text the way `java.time`'s ISO formatters do, with their
/// error messages (`Text 'x' could not be parsed at index 0`).
struct IsoScanner<'t> {
    text: &'t str,
    pos: usize,
}

impl<'t> IsoScanner<'t> {
    fn new(text: &'t str) -> Self {
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

    fn literal(&mut self, c: u8) -> Result<(), String> {
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

    fn end(&self) -> Result<(), String> {
        if self.pos == self.text.len() {
            Ok(())
        } else {
            Err(format!(
                "Text '{}' could not be parsed, unparsed text found at index {}",
                self.text, self.pos
            ))
        }
    }

    fn date_fields(&mut self) -> Result<(i32, u32, u32), String> {
        let year = self.digits(4)? as i32;
        self.literal(b'-')?;
        let month = self.digits(2)?;
        self.literal(b'-')?;
        let day = self.digits(2)?;
        Ok((year, month, day))
    }

    /// `HH:mm`, then `:ss` and a fraction when `seconds` says so or when present.
    fn time_fields(&mut self, seconds_required: bool) -> Result<(u32, u32, u32, u32), String> {
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

    fn check_date(&self, (year, month, day): (i32, u32, u32)) -> Result<NaiveDate, String> {
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

    fn check_time(&self, (hour, minute, second, nano): (u32, u32, u32, u32)) -> Result<NaiveTime, String> {
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
    fn offset(&mut self) -> Result<i32, String> {
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

/// Java's `Instant.parse`: `2019-10-06T18:27:49Z`, seconds required, an offset allowed.
fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
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
fn parse_date(s: &str) -> Result<NaiveDate, String> {
    let mut sc = IsoScanner::new(s.trim());
    let date = sc.date_fields()?;
    sc.end()?;
    sc.check_date(date)
}

/// Java's `LocalTime.parse`: `HH:mm`, `HH:mm:ss`, `HH:mm:ss.nnnnnnnnn`.
fn parse_time(s: &str) -> Result<NaiveTime, String> {
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
    let mut total = number(2)? * 86_400 * NANOS
        + number(4)? * 3_600 * NANOS
        + number(5)? * 60 * NANOS
        + number(6)? * NANOS;
    if let Some(fraction) = part(7).filter(|f| !f.is_empty()) {
        let nanos: i128 = format!("{fraction:0<9}").parse().ok()?;
        total += if part(6).is_some_and(|s| s.starts_with('-')) {
            -nanos
        } else {
            nanos
        };
    }
    if part(1) == Some("-") {
        total = -total;
    }
    let seconds = i64::try_from(total.div_euclid(NANOS)).ok()?;
    let nanos = u32::try_from(total.rem_euclid(NANOS)).ok()?;
    chrono::Duration::new(seconds, nanos)
}

/// Types a flow output value as Kestra does (outputs are typed like inputs;
/// a STRING output of a map or list is its JSON text). SECRET outputs need
/// a key: use [`type_flow_output_in`].
pub fn type_flow_output(type_name: &str, id: &str, value: Value) -> Result<Value, InputError> {
    type_flow_output_in(type_name, id, value, &InputContext::default())
}

/// [`type_flow_output`] with the execution's context (SECRET outputs are
/// encrypted with `ctx.secret_key`). Errors read `Invalid output for ...`.
pub fn type_flow_output_in(
    type_name: &str,
    id: &str,
    value: Value,
    ctx: &InputContext,
) -> Result<Value, InputError> {
    let input_type = InputType::from_name(type_name).ok_or_else(|| InputError {
        input_id: id.to_string(),
        message: format!("Invalid output type `{type_name}` for `{id}`"),
    })?;
    if value.is_null() {
        return Ok(Value::Null);
    }
    let mut def = InputDefinition::of(id, input_type);
    def.allow_custom_value = true;
    let provided = match value {
        Value::String(s) => InputValue::Text(s),
        other if input_type == InputType::String => InputValue::Text(crate::expression::write_pebble(&other)),
        other => InputValue::Json(other),
    };
    type_input(&def, provided, ctx).map_err(|mut e| {
        if let Some(rest) = e.message.strip_prefix("Invalid input for `") {
            e.message = format!("Invalid output for `{rest}");
        }
        e
    })
}

const NONCE_LEN: usize = 12;

/// AES-GCM with Kestra's layout: 12-byte IV, 128-bit tag, base64(IV ‖ ciphertext ‖ tag).
enum SecretCipher {
    Aes128(aes_gcm::Aes128Gcm),
    Aes192(aes_gcm::AesGcm<aes_gcm::aes::Aes192, aes_gcm::aead::consts::U12>),
    Aes256(aes_gcm::Aes256Gcm),
}

impl SecretCipher {
    /// A 16, 24 or 32-byte key is used as is (as Kestra's `SecretKeySpec` does with
    /// its decoded key); any other length is folded into an AES-256 key so that a
    /// configured passphrase of any length still works.
    fn new(key: &[u8]) -> Result<Self, String> {
        use aes_gcm::KeyInit;
        let invalid = |e: aes_gcm::aes::cipher::InvalidLength| e.to_string();
        Ok(match key.len() {
            16 => SecretCipher::Aes128(aes_gcm::Aes128Gcm::new_from_slice(key).map_err(invalid)?),
            24 => SecretCipher::Aes192(aes_gcm::AesGcm::new_from_slice(key).map_err(invalid)?),
            32 => SecretCipher::Aes256(aes_gcm::Aes256Gcm::new_from_slice(key).map_err(invalid)?),
            0 => return Err("the encryption key is empty".into()),
            _ => {
                let mut folded = [0u8; 32];
                for (i, b) in key.iter().enumerate() {
                    folded[i % 32] ^= *b;
                }
                SecretCipher::Aes256(aes_gcm::Aes256Gcm::new_from_slice(&folded).map_err(invalid)?)
            }
        })
    }

    fn encrypt(&self, nonce: &[u8; NONCE_LEN], plain: &[u8]) -> Result<Vec<u8>, String> {
        use aes_gcm::aead::Aead;
        let nonce = aes_gcm::Nonce::from_slice(nonce);
        match self {
            SecretCipher::Aes128(c) => c.encrypt(nonce, plain),
            SecretCipher::Aes192(c) => c.encrypt(nonce, plain),
            SecretCipher::Aes256(c) => c.encrypt(nonce, plain),
        }
        .map_err(|e| e.to_string())
    }

    fn decrypt(&self, nonce: &[u8], sealed: &[u8]) -> Result<Vec<u8>, String> {
        use aes_gcm::aead::Aead;
        let nonce = aes_gcm::Nonce::from_slice(nonce);
        match self {
            SecretCipher::Aes128(c) => c.decrypt(nonce, sealed),
            SecretCipher::Aes192(c) => c.decrypt(nonce, sealed),
            SecretCipher::Aes256(c) => c.decrypt(nonce, sealed),
        }
        .map_err(|_| "wrong key or corrupted value".to_string())
    }
}

/// A nonce never reused within the process: a counter mixed with the
/// randomly seeded `RandomState` (the core has no other randomness source).
fn fresh_nonce(plain: &str) -> [u8; NONCE_LEN] {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write(plain.as_bytes());
    h.write_u64(count);
    let mut nonce = [0u8; NONCE_LEN];
    nonce[..8].copy_from_slice(&h.finish().to_le_bytes());
    // The counter's low bits make two nonces of one process differ for sure.
    nonce[8..].copy_from_slice(&(count as u32).to_le_bytes());
    nonce
}

/// Encrypts a SECRET value with AES-GCM; the stored form is base64(nonce ‖ ciphertext).
pub fn encrypt_secret(plain: &str, key: &[u8]) -> Result<String, String> {
    use base64::Engine;
    let cipher = SecretCipher::new(key)?;
    let nonce = fresh_nonce(plain);
    let sealed = cipher.encrypt(&nonce, plain.as_bytes())?;
    let mut out = nonce.to_vec();
    out.extend(sealed);
    Ok(base64::engine::general_purpose::STANDARD.encode(out))
}

/// Decrypts a value written by [`encrypt_secret`] (or by Kestra with the same key).
pub fn decrypt_secret(value: &str, key: &[u8]) -> Result<String, InputError> {
    use base64::Engine;
    let fail = |m: &str| InputError {
        input_id: String::new(),
        message: format!("Unable to decrypt a secret: {m}"),
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .map_err(|e| fail(&e.to_string()))?;
    if bytes.len() < NONCE_LEN {
        return Err(fail("too short"));
    }
    let cipher = SecretCipher::new(key).map_err(|e| fail(&e))?;
    let plain = cipher
        .decrypt(&bytes[..NONCE_LEN], &bytes[NONCE_LEN..])
        .map_err(|e| fail(&e))?;
    String::from_utf8(plain).map_err(|e| fail(&e.to_string()))
}
