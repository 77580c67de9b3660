//! DynamoDB: `PutItem`, `GetItem`, `DeleteItem`, `Query`, `Scan`.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use indexmap::IndexMap;
use kite_core::ion;
use kite_core::plugin::aws::dynamodb::{fetch_outputs, row, Attribute, DynamoDbOp, FetchType};
use kite_core::plugin::aws::{AwsError, AwsOutcome};
use serde_json::{Map, Value};

use super::{sdk_error, Scope};

const DYNAMODB: &str = "DynamoDB";

fn to_sdk(attribute: Attribute) -> AttributeValue {
    match attribute {
        Attribute::S(s) => AttributeValue::S(s),
        Attribute::N(n) => AttributeValue::N(n),
        Attribute::Bool(b) => AttributeValue::Bool(b),
        Attribute::Null => AttributeValue::Null(true),
        Attribute::Ss(items) => AttributeValue::Ss(items),
        Attribute::Ns(items) => AttributeValue::Ns(items),
        Attribute::L(items) => AttributeValue::L(items.into_iter().map(to_sdk).collect()),
        Attribute::M(fields) => AttributeValue::M(fields.into_iter().map(|(k, v)| (k, to_sdk(v))).collect()),
        Attribute::B(bytes) => AttributeValue::B(Blob::new(bytes)),
    }
}

fn from_sdk(value: AttributeValue) -> Attribute {
    match value {
        AttributeValue::S(s) => Attribute::S(s),
        AttributeValue::N(n) => Attribute::N(n),
        AttributeValue::Bool(b) => Attribute::Bool(b),
        AttributeValue::Ss(items) => Attribute::Ss(items),
        AttributeValue::Ns(items) => Attribute::Ns(items),
        AttributeValue::L(items) => Attribute::L(items.into_iter().map(from_sdk).collect()),
        AttributeValue::M(fields) => {
            Attribute::M(fields.into_iter().map(|(k, v)| (k, from_sdk(v))).collect())
        }
        AttributeValue::B(blob) => Attribute::B(blob.into_inner()),
        AttributeValue::Bs(items) => {
            Attribute::L(items.into_iter().map(|b| Attribute::B(b.into_inner())).collect())
        }
        // `Null`, and variants newer than this code.
        _ => Attribute::Null,
    }
}

/// An item (or key) to write, with Kestra's mapping of values.
fn item(fields: &Map<String, Value>) -> HashMap<String, AttributeValue> {
    fields
        .iter()
        .map(|(k, v)| (k.clone(), to_sdk(Attribute::from_value(v))))
        .collect()
}

/// A read item as an output row, its attributes sorted by name (DynamoDB gives no order).
fn read(item: HashMap<String, AttributeValue>) -> Map<String, Value> {
    let mut fields: Vec<(String, Attribute)> = item.into_iter().map(|(k, v)| (k, from_sdk(v))).collect();
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    row(fields)
}

fn table(name: &str) -> String {
    format!("table '{name}'")
}

pub(super) async fn run(client: &Client, op: &DynamoDbOp, scope: &Scope<'_>) -> Result<AwsOutcome, AwsError> {
    let mut outputs = IndexMap::new();
    let rows = match op {
        DynamoDbOp::PutItem {
            table: name,
            item: fields,
        } => {
            client
                .put_item()
                .table_name(name)
                .set_item(Some(item(fields)))
                .send()
                .await
                .map_err(|e| sdk_error(DYNAMODB, "PutItem", table(name), e))?;
            return Ok(AwsOutcome::default());
        }
        DynamoDbOp::GetItem { table: name, key } => {
            let response = client
                .get_item()
                .table_name(name)
                .set_key(Some(item(key)))
                .send()
                .await
                .map_err(|e| sdk_error(DYNAMODB, "GetItem", table(name), e))?;
            // A missing item is an empty row, as in Kestra.
            let found = response.item.map(read).unwrap_or_default();
            outputs.insert("row".to_string(), Value::Object(found));
            return Ok(AwsOutcome {
                outputs,
                ..AwsOutcome::default()
            });
        }
        DynamoDbOp::DeleteItem { table: name, key } => {
            client
                .delete_item()
                .table_name(name)
                .set_key(Some(item(key)))
                .send()
                .await
                .map_err(|e| sdk_error(DYNAMODB, "DeleteItem", table(name), e))?;
            return Ok(AwsOutcome::default());
        }
        // One request, as Kestra makes: `limit` bounds it, no further pages are read.
        DynamoDbOp::Query {
            table: name,
            key_condition_expression,
            expression_attribute_values,
            filter_expression,
            limit,
            ..
        } => client
            .query()
            .table_name(name)
            .key_condition_expression(key_condition_expression)
            .set_expression_attribute_values(
                (!expression_attribute_values.is_empty()).then(|| item(expression_attribute_values)),
            )
            .set_filter_expression(filter_expression.clone())
            .set_limit(*limit)
            .send()
            .await
            .map_err(|e| sdk_error(DYNAMODB, "Query", table(name), e))?
            .items
            .unwrap_or_default(),
        DynamoDbOp::Scan {
            table: name,
            filter_expression,
            expression_attribute_values,
            limit,
            ..
        } => client
            .scan()
            .table_name(name)
            .set_filter_expression(filter_expression.clone())
            .set_expression_attribute_values(
                filter_expression
                    .is_some()
                    .then(|| item(expression_attribute_values)),
            )
            .set_limit(*limit)
            .send()
            .await
            .map_err(|e| sdk_error(DYNAMODB, "Scan", table(name), e))?
            .items
            .unwrap_or_default(),
    };
    let fetch_type = match op {
        DynamoDbOp::Query { fetch_type, .. } | DynamoDbOp::Scan { fetch_type, .. } => *fetch_type,
        _ => FetchType::None,
    };
    let rows: Vec<Map<String, Value>> = rows.into_iter().map(read).collect();
    if fetch_type == FetchType::Store {
        let size = rows.len();
        let mut lines = Vec::new();
        for row in rows {
            lines.extend(ion::to_line(&Value::Object(row)).into_bytes());
            lines.push(b'\n');
        }
        let uri = scope.write("rows.ion", lines).await?;
        outputs.insert("uri".to_string(), Value::from(uri));
        outputs.insert("size".to_string(), Value::from(size));
    } else {
        outputs = fetch_outputs(fetch_type, rows);
    }
    Ok(AwsOutcome {
        outputs,
        ..AwsOutcome::default()
    })
}
