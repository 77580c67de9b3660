//! The DynamoDB requests every port uses: single-item and transactional writes (a
//! failed condition becomes the caller's error), batches, reads and paginated queries.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, DeleteRequest, Put, PutRequest, TransactWriteItem, WriteRequest,
};
use kite_engine::ports::StoreError;

use super::encoding::{names, values, Condition};
use super::AwsStore;
use crate::items::*;

fn is_conditional_failure(code: Option<&str>) -> bool {
    code == Some("ConditionalCheckFailed")
}

impl AwsStore {
    pub(super) fn put_action(
        &self,
        item: Item,
        condition: Option<Condition<'_>>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
        if let Some((expr, names, values)) = condition {
            put = put
                .condition_expression(expr)
                .set_expression_attribute_names(Some(names));
            if !values.is_empty() {
                put = put.set_expression_attribute_values(Some(values));
            }
        }
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(backend)?)
            .build())
    }

    /// One put or update on its own: a single-item write costs half a transaction's.
    pub(super) async fn write_one(
        &self,
        action: TransactWriteItem,
        on_condition: StoreError,
    ) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::operation::put_item::PutItemError;
        if let Some(put) = action.put {
            let out = self
                .ddb
                .put_item()
                .table_name(put.table_name)
                .set_item(Some(put.item))
                .set_condition_expression(put.condition_expression)
                .set_expression_attribute_names(put.expression_attribute_names)
                .set_expression_attribute_values(put.expression_attribute_values)
                .send()
                .await;
            return match out.map_err(|e| e.into_service_error()) {
                Ok(_) => Ok(()),
                Err(PutItemError::ConditionalCheckFailedException(_)) => Err(on_condition),
                Err(other) => Err(sdk(other)),
            };
        }
        if let Some(update) = action.update {
            let out = self
                .ddb
                .update_item()
                .table_name(update.table_name)
                .set_key(Some(update.key))
                .update_expression(update.update_expression)
                .set_condition_expression(update.condition_expression)
                .set_expression_attribute_names(update.expression_attribute_names)
                .set_expression_attribute_values(update.expression_attribute_values)
                .send()
                .await;
            return match update_outcome(out)? {
                Some(_) => Ok(()),
                None => Err(on_condition),
            };
        }
        self.transact(vec![action], on_condition).await
    }

    pub(super) fn delete_action(&self, key: Item) -> Result<TransactWriteItem, StoreError> {
        Ok(TransactWriteItem::builder()
            .delete(
                Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key))
                    .build()
                    .map_err(backend)?,
            )
            .build())
    }

    /// Runs a transaction; a failed condition on action `index` 0 is a lost race.
    pub(super) async fn transact(
        &self,
        actions: Vec<TransactWriteItem>,
        on_condition: StoreError,
    ) -> Result<(), StoreError> {
        self.transact_with(actions, on_condition, None).await
    }

    /// [`AwsStore::transact`], with the error to report when the second action's
    /// condition fails (a concurrency slot taken by others), if not a conflict.
    pub(super) async fn transact_with(
        &self,
        actions: Vec<TransactWriteItem>,
        on_condition: StoreError,
        on_second: Option<StoreError>,
    ) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
        match self
            .ddb
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) => match err.into_service_error() {
                TransactWriteItemsError::TransactionCanceledException(e) => {
                    let reasons = e.cancellation_reasons();
                    let failed_at = reasons.iter().position(|r| is_conditional_failure(r.code()));
                    if reasons.is_empty() || failed_at == Some(0) {
                        Err(on_condition)
                    } else if let (Some(1), Some(second)) = (failed_at, on_second) {
                        Err(second)
                    } else if failed_at.is_some() {
                        // Another item of the step changed since it was read: redo the step.
                        Err(StoreError::Conflict(format!(
                            "an item written with {on_condition} changed"
                        )))
                    } else if reasons
                        .iter()
                        .any(|r| matches!(r.code(), Some("TransactionConflict")))
                    {
                        Err(StoreError::Conflict(format!("transaction conflict: {e}")))
                    } else {
                        Err(StoreError::Backend(format!(
                            "transaction cancelled: {:?}",
                            reasons.iter().map(|r| r.code()).collect::<Vec<_>>()
                        )))
                    }
                }
                TransactWriteItemsError::TransactionInProgressException(e) => {
                    Err(StoreError::Conflict(e.to_string()))
                }
                other => Err(sdk(other)),
            },
        }
    }

    pub(super) async fn put_conditional(
        &self,
        item: Item,
        condition: Condition<'_>,
        on_condition: StoreError,
    ) -> Result<(), StoreError> {
        self.write_one(self.put_action(item, Some(condition))?, on_condition)
            .await
    }

    pub(super) async fn get_item(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk)?;
        Ok(out.item)
    }

    /// Every item of a Query (all pages).
    pub(super) async fn query_all(
        &self,
        index: Option<&str>,
        key_condition: &str,
        names: HashMap<String, String>,
        vals: HashMap<String, AttributeValue>,
        filter: Option<&str>,
        forward: bool,
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut req = self
                .ddb
                .query()
                .table_name(&self.table)
                .key_condition_expression(key_condition)
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(vals.clone()))
                .scan_index_forward(forward)
                .set_exclusive_start_key(start.take());
            match index {
                Some(i) => req = req.index_name(i),
                None => req = req.consistent_read(true),
            }
            if let Some(f) = filter {
                req = req.filter_expression(f);
            }
            let page = req.send().await.map_err(sdk)?;
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    /// Every item of one partition of the index `gsi1` (`gsi1pk = partition`), in sort key
    /// order, only those whose sort key starts with `prefix` if given.
    pub(super) async fn index_partition(
        &self,
        partition: &str,
        prefix: Option<&str>,
    ) -> Result<Vec<Item>, StoreError> {
        match prefix {
            Some(p) => {
                self.query_all(
                    Some("gsi1"),
                    "#p = :p AND begins_with(#s, :ns)",
                    names(&[("#p", "gsi1pk"), ("#s", "gsi1sk")]),
                    values(vec![(":p", s(partition)), (":ns", s(p))]),
                    None,
                    true,
                )
                .await
            }
            None => {
                self.query_all(
                    Some("gsi1"),
                    "#p = :p",
                    names(&[("#p", "gsi1pk")]),
                    values(vec![(":p", s(partition))]),
                    None,
                    true,
                )
                .await
            }
        }
    }

    pub(super) async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for chunk in requests.chunks(25) {
            let mut pending = HashMap::from([(self.table.clone(), chunk.to_vec())]);
            for attempt in 0..8u32 {
                let out = self
                    .ddb
                    .batch_write_item()
                    .set_request_items(Some(pending))
                    .send()
                    .await
                    .map_err(sdk)?;
                pending = out.unprocessed_items.unwrap_or_default();
                pending.retain(|_, v| !v.is_empty());
                if pending.is_empty() {
                    break;
                }
                if attempt == 7 {
                    return Err(StoreError::Backend("batch write left unprocessed items".into()));
                }
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
        }
        Ok(())
    }
}

/// The output of a conditional UpdateItem, `None` when its condition failed; other
/// errors are backend errors.
pub(super) fn update_outcome(
    out: Result<UpdateItemOutput, SdkError<UpdateItemError>>,
) -> Result<Option<UpdateItemOutput>, StoreError> {
    match out.map_err(|e| e.into_service_error()) {
        Ok(out) => Ok(Some(out)),
        Err(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(None),
        Err(other) => Err(sdk(other)),
    }
}

/// A put of `item` for [`AwsStore::batch_write`].
pub(super) fn put_request(item: Item) -> Result<WriteRequest, StoreError> {
    Ok(WriteRequest::builder()
        .put_request(
            PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(backend)?,
        )
        .build())
}

/// A delete of the item at `key` for [`AwsStore::batch_write`].
pub(super) fn delete_request(key: Item) -> Result<WriteRequest, StoreError> {
    Ok(WriteRequest::builder()
        .delete_request(
            DeleteRequest::builder()
                .set_key(Some(key))
                .build()
                .map_err(backend)?,
        )
        .build())
}
