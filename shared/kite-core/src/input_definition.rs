//! What a flow declares for its inputs: the input types and the declarations
//! of `inputs:` (and of a Pause task's `onResume:`), as parsing leaves them.
//!
//! A leaf: [`crate::flow`] holds these declarations and [`crate::input`] types
//! values against them, and neither has to reach into the other for them.

use serde_json::Value;

/// Every input type Kestra declares (`ENUM` is the deprecated `SELECT`,
/// `BOOLEAN` the deprecated `BOOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputType {
    String,
    Enum,
    Select,
    MultiSelect,
    Int,
    Float,
    Boolean,
    Bool,
    DateTime,
    Date,
    Time,
    Duration,
    File,
    Json,
    Yaml,
    Uri,
    Secret,
    Array,
    Email,
}

impl InputType {
    pub fn from_name(name: &str) -> Option<InputType> {
        Some(match name {
            "STRING" => InputType::String,
            "ENUM" => InputType::Enum,
            "SELECT" => InputType::Select,
            "MULTISELECT" => InputType::MultiSelect,
            "INT" => InputType::Int,
            "FLOAT" => InputType::Float,
            "BOOLEAN" => InputType::Boolean,
            "BOOL" => InputType::Bool,
            "DATETIME" => InputType::DateTime,
            "DATE" => InputType::Date,
            "TIME" => InputType::Time,
            "DURATION" => InputType::Duration,
            "FILE" => InputType::File,
            "JSON" => InputType::Json,
            "YAML" => InputType::Yaml,
            "URI" => InputType::Uri,
            "SECRET" => InputType::Secret,
            "ARRAY" => InputType::Array,
            "EMAIL" => InputType::Email,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            InputType::String => "STRING",
            InputType::Enum => "ENUM",
            InputType::Select => "SELECT",
            InputType::MultiSelect => "MULTISELECT",
            InputType::Int => "INT",
            InputType::Float => "FLOAT",
            InputType::Boolean => "BOOLEAN",
            InputType::Bool => "BOOL",
            InputType::DateTime => "DATETIME",
            InputType::Date => "DATE",
            InputType::Time => "TIME",
            InputType::Duration => "DURATION",
            InputType::File => "FILE",
            InputType::Json => "JSON",
            InputType::Yaml => "YAML",
            InputType::Uri => "URI",
            InputType::Secret => "SECRET",
            InputType::Array => "ARRAY",
            InputType::Email => "EMAIL",
        }
    }
}

/// One declared input (`inputs:` of a flow, or `onResume:` of a Pause task).
#[derive(Debug, Clone, PartialEq)]
pub struct InputDefinition {
    /// `id`, or the legacy `name` when `id` is absent.
    pub id: String,
    pub input_type: InputType,
    pub description: Option<String>,
    pub display_name: Option<String>,
    /// Defaults to true, as in Kestra.
    pub required: bool,
    pub defaults: Option<Value>,
    /// STRING/SECRET: a regex the whole value must match.
    pub validator: Option<String>,
    /// INT/FLOAT/DURATION bounds (raw: numbers, or ISO durations).
    pub min: Option<Value>,
    pub max: Option<Value>,
    /// DATE/TIME/DATETIME bounds.
    pub after: Option<Value>,
    pub before: Option<Value>,
    /// SELECT/ENUM/MULTISELECT allowed values (`options` is MULTISELECT's legacy name).
    pub values: Option<Vec<String>>,
    pub allow_custom_value: bool,
    /// ARRAY/MULTISELECT item type.
    pub item_type: Option<InputType>,
    /// FILE: extension of the stored file name (default `.upl`).
    pub extension: Option<String>,
    /// `dependsOn`: the input is only used when its condition is truthy.
    pub depends_on: Option<DependsOn>,
    /// Every property as written, for the API (`FlowForExecution`) and the UI.
    pub raw: serde_json::Map<String, Value>,
}

impl InputDefinition {
    /// A required input of this type with no other property set.
    pub fn of(id: &str, input_type: InputType) -> Self {
        InputDefinition {
            id: id.to_string(),
            input_type,
            description: None,
            display_name: None,
            required: true,
            defaults: None,
            validator: None,
            min: None,
            max: None,
            after: None,
            before: None,
            values: None,
            allow_custom_value: false,
            item_type: None,
            extension: None,
            depends_on: None,
            raw: Default::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DependsOn {
    pub inputs: Vec<String>,
    pub condition: Option<String>,
}
