//! The structured types: JSON, YAML, and ARRAY (whose items are typed as
//! `itemType`), and the YAML → JSON conversion that flow sources share.

use serde_json::Value;

use super::{java_string, type_input, InputContext, InputDefinition, InputError, InputType, InputValue};

/// JSON: a typed value as is, or JSON text parsed.
pub(super) fn json(def: &InputDefinition, value: InputValue, shown: &str) -> Result<Value, InputError> {
    let parse_err = InputError::unparsable_as(def, shown);
    match value {
        InputValue::Json(v) => Ok(v),
        InputValue::Text(s) => serde_json::from_str(&s).map_err(|e| parse_err(&e.to_string())),
    }
}

/// YAML: a typed value as is, or YAML text parsed.
pub(super) fn yaml(def: &InputDefinition, value: InputValue, shown: &str) -> Result<Value, InputError> {
    let parse_err = InputError::unparsable_as(def, shown);
    match value {
        InputValue::Json(v) => Ok(v),
        InputValue::Text(s) => serde_yaml::from_str::<serde_yaml::Value>(&s)
            .map(yaml_value_to_json)
            .map_err(|e| parse_err(&e.to_string())),
    }
}

/// YAML → JSON, keeping map order; non-string keys become their text.
pub fn yaml_value_to_json(value: serde_yaml::Value) -> Value {
    use serde_yaml::Value as Y;
    match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .unwrap_or(Value::Null)
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(yaml_value_to_json).collect()),
        Y::Mapping(m) => {
            let mut out = serde_json::Map::with_capacity(m.len());
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s,
                    other => crate::expression::write_pebble(&yaml_value_to_json(other)),
                };
                out.insert(key, yaml_value_to_json(v));
            }
            Value::Object(out)
        }
        Y::Tagged(t) => yaml_value_to_json(t.value),
    }
}

/// ARRAY: a list (or its JSON text), each item typed as `itemType`.
pub(super) fn array(
    def: &InputDefinition,
    value: InputValue,
    shown: &str,
    ctx: &InputContext,
) -> Result<Value, InputError> {
    let id = def.id.as_str();
    let parse_err = InputError::unparsable_as(def, shown);
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
            let shown_item = match item_type {
                InputType::Secret => super::MASKED.to_string(),
                _ => java_string(&item),
            };
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
                    shown,
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

/// How Jackson names the JSON token it could not turn into a list.
pub(super) fn json_kind(v: &Value) -> &'static str {
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
