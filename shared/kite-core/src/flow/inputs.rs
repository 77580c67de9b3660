//! Input declarations (flow `inputs`, Pause `onResume`) and flow `outputs`,
//! which are typed like inputs.

use std::collections::HashSet;

use serde_json::Value;

use super::error::{describe, FlowErrorKind};
use super::ids::{INPUT_ID, INPUT_ID_PATTERN};
use super::reader::{join_path, present, Parser};
use super::validate;
use super::FlowOutput;
use crate::expression::write_pebble;
use crate::input_definition::{DependsOn, InputDefinition, InputType};

/// Every property an input type declares (`Input` and its subclasses).
const INPUT_FIELDS: &[&str] = &[
    "id",
    "name",
    "type",
    "description",
    "displayName",
    "required",
    "defaults",
    "prefill",
    "dependsOn",
    "validator",
    "min",
    "max",
    "after",
    "before",
    "values",
    "options",
    "expression",
    "allowCustomValue",
    "isRadio",
    "autoSelectFirst",
    "itemType",
    "extension",
    "allowedFileExtensions",
];

const OUTPUT_FIELDS: &[&str] = &["id", "type", "value", "description", "displayName", "required"];

const INPUT_TYPES: &[&str] = &[
    "STRING",
    "ENUM",
    "SELECT",
    "MULTISELECT",
    "INT",
    "FLOAT",
    "BOOLEAN",
    "BOOL",
    "DATETIME",
    "DATE",
    "TIME",
    "DURATION",
    "FILE",
    "JSON",
    "YAML",
    "URI",
    "SECRET",
    "ARRAY",
    "EMAIL",
];

impl Parser {
    fn input(&mut self, value: &Value, path: &str) -> Option<InputDefinition> {
        let obj = self.object(value, path, "an input")?;
        self.check_fields(obj, path, &[INPUT_FIELDS], "an input");
        // `name` is the pre-0.15 spelling of `id`.
        let id_key = if present(obj, "id").is_none() && present(obj, "name").is_some() {
            "name"
        } else {
            "id"
        };
        let id = self.string(obj, path, id_key, true);
        if let Some(id) = &id {
            if !INPUT_ID.is_match(id) {
                self.err(
                    FlowErrorKind::InvalidId,
                    &join_path(path, id_key),
                    format!("Invalid input id `{id}`: it must match \"{INPUT_ID_PATTERN}\""),
                );
            }
        }
        let type_name = self.string(obj, path, "type", true);
        let input_type = type_name.as_deref().and_then(|t| {
            let parsed = InputType::from_name(t);
            if parsed.is_none() {
                self.err(
                    FlowErrorKind::UnknownType,
                    &join_path(path, "type"),
                    format!("Invalid input type `{t}`; supported: {}", INPUT_TYPES.join(", ")),
                );
            }
            parsed
        });
        let values = match present(obj, "values").or_else(|| present(obj, "options")) {
            None => None,
            Some(Value::Array(items)) => Some(items.iter().map(write_pebble).collect()),
            Some(other) => {
                let key = if obj.contains_key("values") {
                    "values"
                } else {
                    "options"
                };
                self.err(
                    FlowErrorKind::InvalidProperty,
                    &join_path(path, key),
                    format!("`{key}` must be a list, not {}", describe(other)),
                );
                None
            }
        };
        let item_type = match present(obj, "itemType") {
            None => None,
            Some(t) => {
                let parsed = t.as_str().and_then(InputType::from_name);
                if parsed.is_none() {
                    self.err(
                        FlowErrorKind::UnknownType,
                        &join_path(path, "itemType"),
                        format!(
                            "Invalid item type `{}`; supported: {}",
                            write_pebble(t),
                            INPUT_TYPES.join(", ")
                        ),
                    );
                }
                parsed
            }
        };
        let depends_on = match present(obj, "dependsOn") {
            None => None,
            Some(Value::Object(d)) => {
                let p = join_path(path, "dependsOn");
                let inputs = self
                    .list(d.get("inputs"), &join_path(&p, "inputs"), "input ids")
                    .iter()
                    .map(write_pebble)
                    .collect();
                let condition = self.string(d, &p, "condition", false);
                Some(DependsOn { inputs, condition })
            }
            Some(other) => {
                self.err(
                    FlowErrorKind::InvalidProperty,
                    &join_path(path, "dependsOn"),
                    format!("`dependsOn` must be a map, not {}", describe(other)),
                );
                None
            }
        };
        let description = self.string(obj, path, "description", false);
        let display_name = self.string(obj, path, "displayName", false);
        let required = self.boolean(obj, path, "required", true);
        let validator = self.string(obj, path, "validator", false);
        let allow_custom_value = self.boolean(obj, path, "allowCustomValue", false);
        let extension = self.string(obj, path, "extension", false);
        let (id, input_type) = (id?, input_type?);
        let mut raw = obj.clone();
        if !raw.contains_key("id") {
            raw.insert("id".into(), Value::String(id.clone()));
        }
        let get = |k: &str| present(obj, k).cloned();
        Some(InputDefinition {
            id,
            input_type,
            description,
            display_name,
            required,
            defaults: get("defaults"),
            validator,
            min: get("min"),
            max: get("max"),
            after: get("after"),
            before: get("before"),
            values,
            allow_custom_value,
            item_type,
            extension,
            depends_on,
            raw,
        })
    }

    /// Why a literal `defaults` value cannot be typed as its input, as Kestra
    /// checks on save; templates, files and secrets are only known at run time.
    fn invalid_default(&self, input: &InputDefinition) -> Option<String> {
        let value = input.defaults.as_ref()?;
        if matches!(input.input_type, InputType::File | InputType::Secret) {
            return None;
        }
        let text = write_pebble(value);
        if text.contains("{{") || text.contains("{%") {
            return None;
        }
        let ctx = crate::input::InputContext {
            namespace: self.namespace.as_deref().unwrap_or_default(),
            flow_id: self.flow_id.as_deref().unwrap_or_default(),
            execution_id: "",
            secret_key: None,
            ids: None,
            condition: None,
        };
        crate::input::type_input(input, crate::input::InputValue::Json(value.clone()), &ctx)
            .err()
            .map(|e| format!("Invalid default for input '{}': {}", input.id, e.message))
    }

    /// A list of inputs (flow `inputs`, Pause `onResume`), with the checks
    /// that span several of them: duplicate ids and `dependsOn` references.
    /// Paths keep the written index even when an earlier input was refused.
    pub(super) fn inputs(&mut self, value: Option<&Value>, path: &str) -> Vec<InputDefinition> {
        let mut indices = Vec::new();
        let mut inputs = Vec::new();
        for (i, v) in self.list(value, path, "inputs").iter().enumerate() {
            if let Some(input) = self.input(v, &format!("{path}[{i}]")) {
                indices.push(i);
                inputs.push(input);
            }
        }
        let mut seen = HashSet::new();
        for (input, i) in inputs.iter().zip(&indices) {
            if !seen.insert(input.id.as_str()) {
                self.err(
                    FlowErrorKind::DuplicateInputId,
                    &format!("{path}[{i}].id"),
                    format!("Duplicate input with name [{}]", input.id),
                );
            }
        }
        for (input, i) in inputs.iter().zip(&indices) {
            if let Some(message) = self.invalid_default(input) {
                self.err(
                    FlowErrorKind::InvalidProperty,
                    &format!("{path}[{i}].defaults"),
                    message,
                );
            }
            let needs = |key: &str| present(&input.raw, key).is_none();
            let missing = match input.input_type {
                InputType::Enum | InputType::Select if needs("values") && needs("expression") => {
                    Some("values")
                }
                InputType::MultiSelect if needs("values") && needs("options") && needs("expression") => {
                    Some("values")
                }
                InputType::Array if input.item_type.is_none() => Some("itemType"),
                _ => None,
            };
            if let Some(key) = missing {
                self.err(
                    FlowErrorKind::MissingProperty,
                    &format!("{path}[{i}].{key}"),
                    format!("`{key}` is required for a {} input", input.input_type.name()),
                );
            }
        }
        for (k, message) in validate::input_dependencies(&inputs) {
            let i = indices.get(k).copied().unwrap_or(k);
            self.err(
                FlowErrorKind::InvalidDependency,
                &format!("{path}[{i}].dependsOn"),
                message,
            );
        }
        inputs
    }

    pub(super) fn outputs(&mut self, value: Option<&Value>) -> Vec<FlowOutput> {
        let mut outputs = Vec::new();
        let mut seen = HashSet::new();
        for (i, v) in self.list(value, "outputs", "outputs").iter().enumerate() {
            let path = format!("outputs[{i}]");
            let Some(obj) = self.object(v, &path, "an output") else {
                continue;
            };
            self.check_fields(obj, &path, &[OUTPUT_FIELDS], "an output");
            let id = self.string(obj, &path, "id", true);
            let type_name = self.string(obj, &path, "type", true);
            if let Some(t) = &type_name {
                if InputType::from_name(t).is_none() {
                    self.err(
                        FlowErrorKind::UnknownType,
                        &join_path(&path, "type"),
                        format!("Invalid output type `{t}`; supported: {}", INPUT_TYPES.join(", ")),
                    );
                }
            }
            let value = self.required(obj, &path, "value");
            let required = self.boolean(obj, &path, "required", true);
            let (Some(id), Some(type_name), Some(value)) = (id, type_name, value) else {
                continue;
            };
            if !seen.insert(id.clone()) {
                self.err(
                    FlowErrorKind::DuplicateInputId,
                    &join_path(&path, "id"),
                    format!("Duplicate output with name [{id}]"),
                );
            }
            outputs.push(FlowOutput {
                id,
                type_name,
                value,
                required,
            });
        }
        outputs
    }
}
