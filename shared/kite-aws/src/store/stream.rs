//! Executions as DynamoDB Streams deliver them: the stream function reads the new image
//! of each changed item, in DynamoDB JSON or already decoded.

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use kite_engine::ports::{StoreError, VersionedExecution};

use super::AwsStore;
use crate::items::*;

/// A DynamoDB JSON image (as in Lambda stream events: `{"pk": {"S": "..."}}`) as an item.
fn item_from_json(image: &serde_json::Value) -> Result<Item, StoreError> {
    let object = image
        .as_object()
        .ok_or_else(|| StoreError::Backend("stream image is not an object".into()))?;
    let mut item = Item::new();
    for (name, value) in object {
        let Some((kind, v)) = value.as_object().and_then(|o| o.iter().next()) else {
            continue;
        };
        let attr = match (kind.as_str(), v) {
            ("S", serde_json::Value::String(x)) => AttributeValue::S(x.clone()),
            ("N", serde_json::Value::String(x)) => AttributeValue::N(x.clone()),
            ("BOOL", serde_json::Value::Bool(x)) => AttributeValue::Bool(*x),
            ("B", serde_json::Value::String(x)) => {
                use base64::Engine as _;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(x)
                    .map_err(|e| StoreError::Backend(format!("stream image attribute {name}: {e}")))?;
                AttributeValue::B(Blob::new(bytes))
            }
            // Other types never appear in execution items.
            _ => continue,
        };
        item.insert(name.clone(), attr);
    }
    Ok(item)
}

impl AwsStore {
    /// The execution in a stream record's image (DynamoDB JSON, as Lambda delivers it):
    /// `None` for other items and deleted executions.
    pub async fn execution_from_stream_image(
        &self,
        image: &serde_json::Value,
    ) -> Result<Option<VersionedExecution>, StoreError> {
        self.execution_from_stream_item(&item_from_json(image)?).await
    }

    /// The execution in a stream record's image, its attributes already decoded (the stream
    /// function's event types): `None` for other items and deleted executions.
    pub async fn execution_from_stream_item(
        &self,
        item: &Item,
    ) -> Result<Option<VersionedExecution>, StoreError> {
        if opt_s(item, "sk") != Some(EXEC_SK) || get_bool(item, "deleted") {
            return Ok(None);
        }
        Ok(Some(VersionedExecution {
            execution: self.execution_from_item(item).await?,
            version: get_n(item, "version")?,
        }))
    }
}
