//! The driver: types every declared input of an execution (defaults,
//! `dependsOn`, nested ids), one value for one input, and flow outputs.

use indexmap::IndexMap;
use serde_json::Value;

use super::{
    dates, files, json, numbers, secret, select, text, InputContext, InputDefinition, InputError, InputType,
    InputValue,
};

/// Types every declared input from what was provided, falling back to defaults.
/// Undeclared keys are ignored; only the first failing input is reported, as Kestra's
/// execution creation does ([`check_inputs`] reports them all).
pub fn resolve_inputs(
    definitions: &[InputDefinition],
    provided: &IndexMap<String, InputValue>,
    ctx: &InputContext,
) -> Result<IndexMap<String, Value>, InputError> {
    let mut flat: IndexMap<String, Value> = IndexMap::new();
    for def in definitions {
        match resolve_one(def, provided, ctx, &flat)? {
            Resolved::Disabled => {}
            Resolved::Typed { value, .. } => {
                flat.insert(def.id.clone(), value);
            }
        }
    }
    Ok(nest(flat))
}

/// What typing one declared input gave, for Kestra's validate-inputs answer.
#[derive(Debug, Clone, PartialEq)]
pub struct InputCheck {
    pub id: String,
    /// The typed value (null when missing, invalid or disabled).
    pub value: Value,
    /// False when its `dependsOn` inputs or condition leave it out.
    pub enabled: bool,
    /// Whether the value is the input's default (nothing was provided).
    pub is_default: bool,
    pub errors: Vec<InputError>,
}

/// Types every declared input like [`resolve_inputs`], without stopping at the first
/// failure: each input with its value or its errors, as the Execute form shows them.
/// An input whose `dependsOn` inputs failed is disabled, as if they were missing.
pub fn check_inputs(
    definitions: &[InputDefinition],
    provided: &IndexMap<String, InputValue>,
    ctx: &InputContext,
) -> Vec<InputCheck> {
    let mut flat: IndexMap<String, Value> = IndexMap::new();
    let mut checks = Vec::with_capacity(definitions.len());
    for def in definitions {
        let (value, enabled, is_default, errors) = match resolve_one(def, provided, ctx, &flat) {
            Ok(Resolved::Disabled) => (Value::Null, false, false, Vec::new()),
            Ok(Resolved::Typed { value, is_default }) => {
                flat.insert(def.id.clone(), value.clone());
                (value, true, is_default, Vec::new())
            }
            Err(e) => (Value::Null, true, false, vec![e]),
        };
        checks.push(InputCheck {
            id: def.id.clone(),
            value,
            enabled,
            is_default,
            errors,
        });
    }
    checks
}

enum Resolved {
    /// Left out by its `dependsOn`.
    Disabled,
    Typed {
        value: Value,
        is_default: bool,
    },
}

/// Types one declared input, given the inputs typed before it (its `dependsOn`).
fn resolve_one(
    def: &InputDefinition,
    provided: &IndexMap<String, InputValue>,
    ctx: &InputContext,
    earlier: &IndexMap<String, Value>,
) -> Result<Resolved, InputError> {
    if let Some(dep) = &def.depends_on {
        let deps_ok = dep
            .inputs
            .iter()
            .all(|i| earlier.get(i).is_some_and(|v| !v.is_null()));
        let condition_ok = match (&dep.condition, ctx.condition) {
            (Some(c), Some(eval)) => eval(c, earlier).map_err(|e| InputError {
                input_id: def.id.clone(),
                message: format!("Invalid condition: {e}"),
            })?,
            _ => true,
        };
        if !deps_ok || !condition_ok {
            return Ok(Resolved::Disabled);
        }
    }
    // A JSON null is no value at all: the default applies, or the input is missing.
    let given = provided
        .get(&def.id)
        .filter(|v| !matches!(v, InputValue::Json(Value::Null)))
        .cloned();
    let is_default = given.is_none();
    let value = given.or_else(|| def.defaults.clone().filter(|d| !d.is_null()).map(default_value));
    let value = match value {
        None if def.required => return Err(InputError::invalid(&def.id, "missing required input", "null")),
        None => Value::Null,
        Some(v) => type_input(def, v, ctx)?,
    };
    Ok(Resolved::Typed { value, is_default })
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

/// Types one value for one declared input.
pub fn type_input(def: &InputDefinition, value: InputValue, ctx: &InputContext) -> Result<Value, InputError> {
    // A JSON string is the same text a form would send (Kestra sees a `String` either way).
    let value = match value {
        InputValue::Json(Value::String(s)) => InputValue::Text(s),
        other => other,
    };
    // A SECRET's value never appears in a message, as Kestra masks it; nor does a list
    // of SECRET items.
    let shown = match (def.input_type, def.item_type) {
        (InputType::Secret, _) | (InputType::Array, Some(InputType::Secret)) => super::MASKED.to_string(),
        _ => value.shown(),
    };
    let shown = shown.as_str();
    match def.input_type {
        InputType::String => text::string(def, value),
        InputType::Enum | InputType::Select => select::select(def, value, shown),
        InputType::MultiSelect => select::multiselect(def, value, shown),
        InputType::Int => numbers::int(def, value, shown),
        InputType::Float => numbers::float(def, value, shown),
        InputType::Boolean => numbers::boolean(value),
        InputType::Bool => numbers::bool(def, value, shown),
        InputType::DateTime => dates::datetime(def, value, shown),
        InputType::Date => dates::date(def, value, shown),
        InputType::Time => dates::time(def, value, shown),
        InputType::Duration => dates::duration(def, value, shown),
        InputType::File => files::file(def, value, shown),
        InputType::Json => json::json(def, value, shown),
        InputType::Yaml => json::yaml(def, value, shown),
        InputType::Uri => text::uri(def, value, shown),
        InputType::Email => text::email(def, value, shown),
        InputType::Secret => secret::secret(def, value, shown, ctx),
        InputType::Array => json::array(def, value, shown, ctx),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_of_secrets_is_masked_in_errors() {
        // Found by the fuzz target of inputs: the plain items showed in the message.
        let mut def = InputDefinition::of("a", InputType::Array);
        def.item_type = Some(InputType::Secret);
        for value in [
            InputValue::Text("SeCrEt1 5".into()),
            InputValue::Json(serde_json::json!(["SeCrEt1"])),
        ] {
            let e = type_input(&def, value, &InputContext::default()).expect_err("no key");
            assert!(!e.message.contains("SeCrEt"), "{}", e.message);
            assert!(e.message.contains(super::super::MASKED), "{}", e.message);
        }
    }
}
