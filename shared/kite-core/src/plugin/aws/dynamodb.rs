//! `io.kestra.plugin.aws.dynamodb.*`: `PutItem`, `GetItem`, `DeleteItem`, `Query` and
//! `Scan`, and Kestra's mapping between JSON values and DynamoDB attributes
//! ([`Attribute`]; the worker turns it into the SDK's type).

use indexmap::IndexMap;
use serde_json::{Map, Value};

pub use super::super::fetch_type::FetchType;
use super::super::props::Props;
use super::super::{IoCall, IoKind, IoTaskSpec, Property, Render};
use super::{finish, with_connection, AwsCall, AwsOp};
use crate::plugin::Check;

/// A DynamoDB operation, rendered.
#[derive(Debug, Clone, PartialEq)]
pub enum DynamoDbOp {
    PutItem {
        table: String,
        item: Map<String, Value>,
    },
    GetItem {
        table: String,
        key: Map<String, Value>,
    },
    DeleteItem {
        table: String,
        key: Map<String, Value>,
    },
    Query {
        table: String,
        key_condition_expression: String,
        expression_attribute_values: Map<String, Value>,
        filter_expression: Option<String>,
        limit: Option<i32>,
        fetch_type: FetchType,
    },
    Scan {
        table: String,
        filter_expression: Option<String>,
        expression_attribute_values: Map<String, Value>,
        limit: Option<i32>,
        fetch_type: FetchType,
    },
}

impl DynamoDbOp {
    pub fn table(&self) -> &str {
        match self {
            DynamoDbOp::PutItem { table, .. }
            | DynamoDbOp::GetItem { table, .. }
            | DynamoDbOp::DeleteItem { table, .. }
            | DynamoDbOp::Query { table, .. }
            | DynamoDbOp::Scan { table, .. } => table,
        }
    }
}

/// A DynamoDB attribute value, as Kestra's tasks write and read them.
#[derive(Debug, Clone, PartialEq)]
pub enum Attribute {
    S(String),
    N(String),
    Bool(bool),
    Null,
    Ss(Vec<String>),
    Ns(Vec<String>),
    L(Vec<Attribute>),
    M(Vec<(String, Attribute)>),
    /// Binary values, read only.
    B(Vec<u8>),
}

impl Attribute {
    /// Kestra's mapping of a value to write: strings, booleans and null as such, lists
    /// as string sets, maps as maps, anything else (numbers) as its text in a string.
    pub fn from_value(value: &Value) -> Attribute {
        match value {
            Value::Null => Attribute::Null,
            Value::String(s) => Attribute::S(s.clone()),
            Value::Bool(b) => Attribute::Bool(*b),
            Value::Array(items) => Attribute::Ss(
                items
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect(),
            ),
            Value::Object(map) => Attribute::M(
                map.iter()
                    .map(|(k, v)| (k.clone(), Attribute::from_value(v)))
                    .collect(),
            ),
            Value::Number(n) => Attribute::S(n.to_string()),
        }
    }

    /// The value of a read attribute. Kestra reads strings, `true`, string sets and maps
    /// (anything else is null there); Kite also reads numbers, `false`, lists, number sets
    /// and binary (base64), see docs/compatibility.md.
    pub fn into_value(self) -> Value {
        match self {
            Attribute::S(s) => Value::String(s),
            Attribute::N(n) => number(&n),
            Attribute::Bool(b) => Value::Bool(b),
            Attribute::Null => Value::Null,
            Attribute::Ss(items) => Value::from(items),
            Attribute::Ns(items) => Value::Array(items.iter().map(|n| number(n)).collect()),
            Attribute::L(items) => Value::Array(items.into_iter().map(Attribute::into_value).collect()),
            Attribute::M(fields) => {
                Value::Object(fields.into_iter().map(|(k, v)| (k, v.into_value())).collect())
            }
            Attribute::B(bytes) => {
                use base64::Engine;
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            }
        }
    }
}

fn number(text: &str) -> Value {
    serde_json::from_str::<serde_json::Number>(text)
        .map(Value::Number)
        .unwrap_or_else(|_| Value::String(text.to_string()))
}

/// A row (an item) as the outputs give it.
pub fn row(fields: Vec<(String, Attribute)>) -> Map<String, Value> {
    fields.into_iter().map(|(k, v)| (k, v.into_value())).collect()
}

/// The outputs of `fetchType` `FETCH`, `FETCH_ONE` and `NONE` (`STORE` writes a file).
pub fn fetch_outputs(fetch_type: FetchType, rows: Vec<Map<String, Value>>) -> IndexMap<String, Value> {
    let mut outputs = IndexMap::new();
    match fetch_type {
        FetchType::Fetch => {
            let size = rows.len();
            outputs.insert(
                "rows".into(),
                Value::Array(rows.into_iter().map(Value::Object).collect()),
            );
            outputs.insert("size".into(), Value::from(size));
        }
        FetchType::FetchOne => {
            let first = rows.into_iter().next();
            outputs.insert("size".into(), Value::from(usize::from(first.is_some())));
            if let Some(first) = first {
                outputs.insert("row".into(), Value::Object(first));
            }
        }
        FetchType::Store | FetchType::None => {}
    }
    outputs
}

const PUT_ITEM: &[Property] = with_connection![
    Property::new("tableName", Check::Required),
    Property::new("item", Check::Required),
];

const KEYED: &[Property] = with_connection![
    Property::new("tableName", Check::Required),
    Property::new("key", Check::Required),
];

const QUERY: &[Property] = with_connection![
    Property::new("tableName", Check::Required),
    Property::new("keyConditionExpression", Check::Required),
    Property::new("expressionAttributeValues", Check::Required),
    Property::new("filterExpression", Check::Any),
    Property::new("limit", Check::Any),
    Property::new("fetchType", Check::Any),
];

const SCAN: &[Property] = with_connection![
    Property::new("tableName", Check::Required),
    Property::new("filterExpression", Check::Any),
    Property::new("expressionAttributeValues", Check::Any),
    Property::new("limit", Check::Any),
    Property::new("fetchType", Check::Any),
];

pub const TASKS: &[IoTaskSpec] = &[
    IoTaskSpec::new(
        IoKind::AwsDynamoDbPutItem,
        "io.kestra.plugin.aws.dynamodb.PutItem",
        PUT_ITEM,
        prepare_put,
        finish,
    ),
    IoTaskSpec::new(
        IoKind::AwsDynamoDbGetItem,
        "io.kestra.plugin.aws.dynamodb.GetItem",
        KEYED,
        prepare_get,
        finish,
    ),
    IoTaskSpec::new(
        IoKind::AwsDynamoDbDeleteItem,
        "io.kestra.plugin.aws.dynamodb.DeleteItem",
        KEYED,
        prepare_delete,
        finish,
    ),
    IoTaskSpec::new(
        IoKind::AwsDynamoDbQuery,
        "io.kestra.plugin.aws.dynamodb.Query",
        QUERY,
        prepare_query,
        finish,
    ),
    IoTaskSpec::new(
        IoKind::AwsDynamoDbScan,
        "io.kestra.plugin.aws.dynamodb.Scan",
        SCAN,
        prepare_scan,
        finish,
    ),
];

fn call(p: &Props, op: DynamoDbOp) -> Result<IoCall, String> {
    Ok(IoCall::Aws(AwsCall {
        connection: p.aws_connection()?,
        op: AwsOp::DynamoDb(op),
    }))
}

impl Props<'_> {
    fn limit(&self) -> Result<Option<i32>, String> {
        match self.integer("limit")? {
            None => Ok(None),
            Some(n) if n > 0 && n <= i64::from(i32::MAX) => Ok(Some(n as i32)),
            Some(n) => Err(format!(
                "Invalid value '{n}' for property 'limit': expected a positive integer"
            )),
        }
    }
}

fn prepare_put(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    let op = DynamoDbOp::PutItem {
        table: p.required("tableName")?,
        item: p.object("item")?.unwrap_or_default(),
    };
    call(&p, op)
}

fn prepare_get(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    let op = DynamoDbOp::GetItem {
        table: p.required("tableName")?,
        key: p.object("key")?.unwrap_or_default(),
    };
    call(&p, op)
}

fn prepare_delete(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    let op = DynamoDbOp::DeleteItem {
        table: p.required("tableName")?,
        key: p.object("key")?.unwrap_or_default(),
    };
    call(&p, op)
}

fn prepare_query(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    let op = DynamoDbOp::Query {
        table: p.required("tableName")?,
        key_condition_expression: p.required("keyConditionExpression")?,
        expression_attribute_values: p.object("expressionAttributeValues")?.unwrap_or_default(),
        filter_expression: p.rendered("filterExpression")?,
        limit: p.limit()?,
        fetch_type: p.fetch_type(FetchType::Store)?,
    };
    call(&p, op)
}

fn prepare_scan(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    let filter_expression = p.rendered("filterExpression")?;
    let values = p.object("expressionAttributeValues")?.unwrap_or_default();
    if filter_expression.is_some() && values.is_empty() {
        return Err("'expressionAttributeValues' must be provided when 'filterExpression' is used".into());
    }
    let op = DynamoDbOp::Scan {
        table: p.required("tableName")?,
        filter_expression,
        expression_attribute_values: values,
        limit: p.limit()?,
        fetch_type: p.fetch_type(FetchType::Store)?,
    };
    call(&p, op)
}
