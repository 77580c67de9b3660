//! The running slots of a flow with `concurrency.limit`: one item per flow
//! (`SLOTS#{ns}#{flow}`) whose string set `holders` names the executions holding one.
//! A step's slot change is one more action of its transaction, so the set always matches
//! the executions' states whatever crashes: taking is conditional on the set's size,
//! taking twice and releasing twice change nothing, and releasing a slot never taken (an
//! execution that started before its flow had a limit) is harmless.

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem, Update};
use kite_core::execution::Execution;
use kite_engine::ports::{Slot, StoreError};

use super::encoding::{key, names, values};
use super::AwsStore;
use crate::items::*;

/// A slot is free for this execution: fewer than `:limit` holders, or it is one of them.
const FREE: &str = "attribute_not_exists(#h) OR size(#h) < :limit OR contains(#h, :id)";
/// Every slot is held, by others.
const FULL: &str = "attribute_exists(#h) AND size(#h) >= :limit AND NOT contains(#h, :id)";

impl AwsStore {
    /// The transaction action of a step's [`Slot`] change for execution `e`.
    pub(super) fn slot_action(&self, e: &Execution, slot: Slot) -> Result<TransactWriteItem, StoreError> {
        let item_key = key(slots_pk(&e.namespace, &e.flow_id), SLOTS_SK);
        let me = AttributeValue::Ss(vec![e.id.clone()]);
        let checked = |limit: u32| values(vec![(":limit", n(i64::from(limit))), (":id", s(&e.id))]);
        let check = |condition: &str, limit: u32| -> Result<TransactWriteItem, StoreError> {
            Ok(TransactWriteItem::builder()
                .condition_check(
                    ConditionCheck::builder()
                        .table_name(&self.table)
                        .set_key(Some(item_key.clone()))
                        .condition_expression(condition)
                        .set_expression_attribute_names(Some(names(&[("#h", "holders")])))
                        .set_expression_attribute_values(Some(checked(limit)))
                        .build()
                        .map_err(backend)?,
                )
                .build())
        };
        let update = match slot {
            Slot::Check { limit } => return check(FREE, limit),
            Slot::Wait { limit } => return check(FULL, limit),
            Slot::Take { limit } => {
                let mut vals = checked(limit);
                vals.insert(":me".into(), me);
                Update::builder()
                    .update_expression("ADD #h :me")
                    .condition_expression(FREE)
                    .set_expression_attribute_values(Some(vals))
            }
            Slot::Release => Update::builder()
                .update_expression("DELETE #h :me")
                .set_expression_attribute_values(Some(values(vec![(":me", me)]))),
        };
        Ok(TransactWriteItem::builder()
            .update(
                update
                    .table_name(&self.table)
                    .set_key(Some(item_key))
                    .set_expression_attribute_names(Some(names(&[("#h", "holders")])))
                    .build()
                    .map_err(backend)?,
            )
            .build())
    }
}
