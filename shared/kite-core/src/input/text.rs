//! The text-like types: STRING (with its `validator`), URI and EMAIL.

use std::sync::OnceLock;

use serde_json::Value;

use super::{regex, InputDefinition, InputError, InputValue};

/// STRING: the text as given, matched against `validator` when declared.
pub(super) fn string(def: &InputDefinition, value: InputValue) -> Result<Value, InputError> {
    let s = value.text();
    check_validator(def, &s, &s)?;
    Ok(Value::String(s))
}

/// URI: Kestra's URI pattern.
pub(super) fn uri(def: &InputDefinition, value: InputValue, shown: &str) -> Result<Value, InputError> {
    static URI: OnceLock<regex::Regex> = OnceLock::new();
    let id = def.id.as_str();
    let s = value.text();
    if regex(URI_PATTERN, &URI).is_match(&s) {
        Ok(Value::String(s))
    } else {
        Err(InputError::invalid(
            id,
            &format!("Expected `URI` but received `{shown}`"),
            shown,
        ))
    }
}

/// EMAIL: an address, or nothing.
pub(super) fn email(def: &InputDefinition, value: InputValue, shown: &str) -> Result<Value, InputError> {
    static EMAIL: OnceLock<regex::Regex> = OnceLock::new();
    let id = def.id.as_str();
    let s = value.text();
    if s.is_empty() || regex("^[a-zA-Z0-9_!#$%&\u{2019}*+/=?`{|}~^.-]+@[a-zA-Z0-9.-]+$", &EMAIL).is_match(&s)
    {
        Ok(Value::String(s))
    } else {
        Err(InputError::invalid(id, "The input must be a valid email", shown))
    }
}

/// STRING and SECRET `validator`: a regex the whole value must match.
/// Checks `s` against the input's `validator`; the message shows `shown` (masked for SECRET).
pub(super) fn check_validator(def: &InputDefinition, s: &str, shown: &str) -> Result<(), InputError> {
    if let Some(pattern) = &def.validator {
        let re = regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| InputError {
            input_id: def.id.clone(),
            message: format!("Invalid validator `{pattern}` for `{}`: {e}", def.id),
        })?;
        if !re.is_match(s) {
            return Err(InputError::invalid(
                &def.id,
                &format!("it must match the pattern `{pattern}`"),
                shown,
            ));
        }
    }
    Ok(())
}

/// Kestra's `FlowInputOutput.URI_PATTERN`.
const URI_PATTERN: &str =
    r"^[a-z]+://(?:www\.)?[-a-zA-Z0-9@:%._+~#=]{1,256}\.[a-zA-Z0-9()]{1,6}\b(?:[-a-zA-Z0-9()@:%_+.~#?&/=]*)$";
