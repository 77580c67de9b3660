//! The numeric and boolean types: INT and FLOAT (with `min`/`max`), BOOLEAN
//! and its stricter successor BOOL, read and printed as Java does.

use serde_json::Value;

use super::{InputDefinition, InputError, InputType, InputValue};

/// Text that is not a number, with the message of Java's `NumberFormatException`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum NumberFormatError {
    #[error("empty String")]
    Empty,
    #[error("For input string: \"{0}\"")]
    ForInputString(String),
}

/// INT: a 32-bit integer, as Java's `Integer.valueOf` reads it.
pub(super) fn int(def: &InputDefinition, value: InputValue, shown: &str) -> Result<Value, InputError> {
    let id = def.id.as_str();
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
                let e = NumberFormatError::ForInputString(text.to_string());
                InputError::invalid(id, &e.to_string(), shown)
            })?
        }
    };
    bound_number(def, f64::from(n), shown)?;
    Ok(Value::from(n))
}

/// FLOAT: a 32-bit float, as Java's `Float.valueOf` reads it.
pub(super) fn float(def: &InputDefinition, value: InputValue, shown: &str) -> Result<Value, InputError> {
    let id = def.id.as_str();
    let parse_err = InputError::unparsable_as(def, shown);
    let f = match &value {
        InputValue::Json(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
        _ => java_float(&value.text()).map_err(|e| InputError::invalid(id, &e.to_string(), shown))?,
    };
    bound_number(def, f, shown)?;
    serde_json::Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| parse_err("not a finite number"))
}

/// BOOLEAN (deprecated): anything but `true` is false.
pub(super) fn boolean(value: InputValue) -> Result<Value, InputError> {
    Ok(Value::Bool(match &value {
        InputValue::Json(Value::Bool(b)) => *b,
        _ => value.text().trim().eq_ignore_ascii_case("true"),
    }))
}

/// BOOL: `true` or `false`, in any case.
pub(super) fn bool(def: &InputDefinition, value: InputValue, shown: &str) -> Result<Value, InputError> {
    let id = def.id.as_str();
    match &value {
        InputValue::Json(Value::Bool(b)) => Ok(Value::Bool(*b)),
        _ => match value.text().trim().to_ascii_lowercase().as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(InputError::invalid(
                id,
                &format!("Expected `BOOL` but received `{shown}`"),
                shown,
            )),
        },
    }
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

/// Java's `Float.valueOf`: 32-bit precision, shown as Jackson writes a `Float`
/// (`42.42` stays `42.42`). The error is Java's NumberFormatException message.
fn java_float(text: &str) -> Result<f64, NumberFormatError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(NumberFormatError::Empty);
    }
    let bad = || NumberFormatError::ForInputString(t.to_string());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_errors_are_java_messages() {
        assert_eq!(java_float("  ").unwrap_err().to_string(), "empty String");
        assert_eq!(
            java_float(" 1.2.x ").unwrap_err().to_string(),
            "For input string: \"1.2.x\""
        );
        assert_eq!(
            java_float("1e99").unwrap_err().to_string(),
            "For input string: \"1e99\""
        );
    }
}
