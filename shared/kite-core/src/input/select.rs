//! The choice types: ENUM/SELECT (one of `values`) and MULTISELECT (a list
//! of them), unless `allowCustomValue` lets anything through.

use serde_json::Value;

use super::json::json_kind;
use super::{InputDefinition, InputError, InputValue};

/// ENUM/SELECT: one of the declared values.
pub(super) fn select(def: &InputDefinition, value: InputValue, shown: &str) -> Result<Value, InputError> {
    let s = value.text();
    check_values(def, std::slice::from_ref(&s), shown)?;
    Ok(Value::String(s))
}

/// MULTISELECT: a list (or its JSON text) of declared values.
pub(super) fn multiselect(
    def: &InputDefinition,
    value: InputValue,
    shown: &str,
) -> Result<Value, InputError> {
    let parse_err = InputError::unparsable_as(def, shown);
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
    check_values(def, &items, shown)?;
    Ok(Value::Array(items.into_iter().map(Value::String).collect()))
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
