//! [`KvStore`] on DynamoDB: one item per pair in its namespace's partition (`KV#{ns}`,
//! sort key `KV#{key}`), the value's JSON and its type. Expiry is checked on every read
//! (`expires`, in ms); the table's `ttl` attribute lets DynamoDB reclaim the item later.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::ReturnValue;
use chrono::{DateTime, Utc};
use kite_engine::ports::{KvEntry, KvStore, KvType, KvValue, KvWrite, StoreError};

use super::encoding::{key, names, values};
use super::AwsStore;
use crate::items::*;

fn live(item: &Item, now: DateTime<Utc>) -> bool {
    opt_n(item, "expires").is_none_or(|at| at > now.timestamp_millis())
}

fn value_from_item(item: &Item) -> Result<KvValue, StoreError> {
    let kind = get_s(item, "kvType")?;
    let kind = KvType::parse(kind).ok_or_else(|| StoreError::Backend(format!("unknown KV type {kind}")))?;
    Ok(KvValue::new(
        kind,
        serde_json::from_str(get_s(item, "value")?).map_err(backend)?,
    ))
}

fn entry_from_item(item: &Item) -> Result<KvEntry, StoreError> {
    let sk = get_s(item, "sk")?;
    Ok(KvEntry {
        key: sk.strip_prefix(KV_SK_PREFIX).unwrap_or(sk).to_string(),
        description: opt_s(item, "description").map(str::to_string),
        creation_date: from_ms(get_n(item, "created")?),
        update_date: from_ms(get_n(item, "updated")?),
        expiration_date: opt_n(item, "expires").map(from_ms),
    })
}

#[async_trait]
impl KvStore for AwsStore {
    async fn put_kv(
        &self,
        namespace: &str,
        kv_key: &str,
        write: KvWrite,
        overwrite: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now_ms = now.timestamp_millis();
        let mut set = vec![
            "#kind = :kind",
            "#value = :value",
            "#updated = :now",
            // A pair set over an absent or expired one starts anew.
            if overwrite {
                "#created = if_not_exists(#created, :now)"
            } else {
                "#created = :now"
            },
        ];
        let mut remove = Vec::new();
        let mut vals = vec![
            (":kind", s(write.value.kind.as_str())),
            (
                ":value",
                s(serde_json::to_string(&write.value.value).map_err(backend)?),
            ),
            (":now", n(now_ms)),
        ];
        match write.description {
            Some(text) => {
                set.push("#description = :description");
                vals.push((":description", s(text)));
            }
            None => remove.push("#description"),
        }
        match write.expiration_date {
            Some(at) => {
                set.extend(["#expires = :expires", "#ttl = :ttl"]);
                vals.push((":expires", n(at.timestamp_millis())));
                // DynamoDB's TTL is in seconds; rounding up never reclaims a live pair.
                vals.push((":ttl", n(at.timestamp() + 1)));
            }
            None => remove.extend(["#expires", "#ttl"]),
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let mut request = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(kv_pk(namespace), &kv_sk(kv_key))))
            .update_expression(expression)
            .set_expression_attribute_names(Some(names(&[
                ("#kind", "kvType"),
                ("#value", "value"),
                ("#updated", "updated"),
                ("#created", "created"),
                ("#description", "description"),
                ("#expires", "expires"),
                ("#ttl", "ttl"),
            ])))
            .set_expression_attribute_values(Some(values(vals)));
        if !overwrite {
            request = request.condition_expression("attribute_not_exists(#created) OR #expires <= :now");
        }
        match request.send().await.map_err(|e| e.into_service_error()) {
            Ok(_) => Ok(()),
            Err(UpdateItemError::ConditionalCheckFailedException(_)) => {
                Err(StoreError::AlreadyExists(format!("KV pair {namespace}/{kv_key}")))
            }
            Err(other) => Err(sdk(other)),
        }
    }

    async fn get_kv(
        &self,
        namespace: &str,
        kv_key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<KvValue>, StoreError> {
        self.get_item(key(kv_pk(namespace), &kv_sk(kv_key)))
            .await?
            .filter(|item| live(item, now))
            .as_ref()
            .map(value_from_item)
            .transpose()
    }

    async fn list_kv(&self, namespace: &str, now: DateTime<Utc>) -> Result<Vec<KvEntry>, StoreError> {
        let items = self
            .query_all(
                None,
                "#p = :p AND begins_with(#s, :s)",
                names(&[("#p", "pk"), ("#s", "sk")]),
                values(vec![(":p", s(kv_pk(namespace))), (":s", s(KV_SK_PREFIX))]),
                None,
                true,
            )
            .await?;
        // The sort key orders the pairs by key.
        items
            .iter()
            .filter(|item| live(item, now))
            .map(entry_from_item)
            .collect()
    }

    async fn delete_kv(&self, namespace: &str, kv_key: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let out = self
            .ddb
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(kv_pk(namespace), &kv_sk(kv_key))))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(sdk)?;
        Ok(out
            .attributes
            .is_some_and(|old| !old.is_empty() && live(&old, now)))
    }
}
