//! Flow inputs: typing of provided values (Kestra's `FlowInputOutput`), against
//! the declarations of `input_definition` (re-exported here).
//!
//! This module holds what every input type shares ([`InputValue`],
//! [`InputContext`], [`InputError`]); the rest is in:
//!
//! - `resolve`: the driver ([`resolve_inputs`], [`type_input`], flow outputs).
//! - `text`: STRING, URI, EMAIL.
//! - `numbers`: INT, FLOAT, BOOLEAN, BOOL.
//! - `dates`: DATETIME, DATE, TIME, DURATION; `iso` reads their ISO-8601 text.
//! - `files`: FILE, and the storage URIs of an execution's files.
//! - `select`: ENUM/SELECT, MULTISELECT.
//! - `json`: JSON, YAML, ARRAY, and [`yaml_value_to_json`] (also used to read
//!   flow sources).
//! - `secret`: SECRET, and the encryption of secret values.

use std::sync::OnceLock;

use indexmap::IndexMap;
use serde_json::Value;

use crate::expression::ExpressionError;
use crate::id::IdSource;

mod dates;
mod files;
mod iso;
mod json;
mod numbers;
mod resolve;
mod secret;
mod select;
mod text;

pub use crate::input_definition::{DependsOn, InputDefinition, InputType};
pub use dates::{java_duration, parse_iso_duration};
pub use files::{execution_storage_prefix, file_input_uri, flow_uploads_prefix};
pub use json::yaml_value_to_json;
pub use resolve::{
    check_inputs, resolve_inputs, type_flow_output, type_flow_output_in, type_input, InputCheck,
};
pub use secret::{decrypt_secret, encrypt_secret, parse_secret_key, SecretError, SecretKeyError};

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
pub type ConditionEvaluator<'a> = &'a dyn Fn(&str, &IndexMap<String, Value>) -> Result<bool, ExpressionError>;

/// Where the inputs are being typed.
#[derive(Clone, Copy, Default)]
pub struct InputContext<'a> {
    pub namespace: &'a str,
    pub flow_id: &'a str,
    pub execution_id: &'a str,
    /// AES key (16, 24 or 32 bytes) for SECRET inputs.
    pub secret_key: Option<&'a [u8]>,
    /// Nonces for encrypting SECRET inputs (with `secret_key`).
    pub ids: Option<&'a dyn IdSource>,
    pub condition: Option<ConditionEvaluator<'a>>,
}

/// How a SECRET value is shown in messages (Kestra's mask, shared with `secret()`).
pub use crate::secret::MASKED;

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

    /// The error of a value of `def` that does not parse: `shown` is the value as the
    /// message may show it (masked for SECRET), the closure takes the parser's cause.
    fn unparsable_as<'s>(def: &'s InputDefinition, shown: &'s str) -> impl Fn(&str) -> InputError + 's {
        move |cause| InputError::unparsable(&def.id, def.input_type.name(), shown, cause)
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

fn regex(pattern: &'static str, cell: &'static OnceLock<regex::Regex>) -> &'static regex::Regex {
    cell.get_or_init(|| regex::Regex::new(pattern).expect("static pattern"))
}
