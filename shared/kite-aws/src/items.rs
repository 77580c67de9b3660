//! Item keys and attribute helpers (the layout is described in docs/aws.md, "Storage").

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, TimeZone, Utc};
use kite_engine::ports::StoreError;

pub type Item = HashMap<String, AttributeValue>;

/// Outbox rows are spread over this many GSI partitions (`OUTBOX#0..3`) so that one
/// busy partition does not cap the write rate of the index.
pub const OUTBOX_SHARDS: u32 = 4;

pub fn flow_pk(ns: &str, id: &str) -> String {
    format!("FLOW#{ns}#{id}")
}

pub fn flow_rev_sk(revision: i64) -> String {
    format!("REV#{revision:010}")
}

pub const FLOW_LATEST: &str = "LATEST";
/// All live flows' `LATEST` items in one GSI partition, sorted by `{ns}#{id}` (flows are
/// written rarely, so one partition is enough).
pub const FLOWS_GSI: &str = "FLOWS";

pub fn exec_pk(id: &str) -> String {
    format!("EXEC#{id}")
}

pub const EXEC_SK: &str = "EXEC";

/// Executions of one namespace, sorted by start date.
pub fn exec_gsi_pk(ns: &str) -> String {
    format!("EXECNS#{ns}")
}

pub fn exec_gsi_sk(start: DateTime<Utc>, id: &str) -> String {
    format!("{}#{id}", padded_ms(start))
}

pub fn work_pk(id: &str) -> String {
    format!("WORK#{id}")
}

pub const WORK_SK: &str = "WORK";

/// Who makes a task run attempt's I/O (`TaskQueue::claim_run`), keyed by its work item id.
pub fn claim_pk(run_id: &str) -> String {
    format!("CLAIM#{run_id}")
}

pub const CLAIM_SK: &str = "CLAIM";

pub fn outbox_gsi_pk(id: &str) -> String {
    // FNV-1a: stable across processes and releases (std's hasher is not).
    let mut h: u32 = 0x811c9dc5;
    for b in id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x01000193);
    }
    format!("OUTBOX#{}", h % OUTBOX_SHARDS)
}

/// The running slots of a flow with `concurrency.limit` (`store/slots.rs`).
pub fn slots_pk(ns: &str, flow_id: &str) -> String {
    format!("SLOTS#{ns}#{flow_id}")
}

pub const SLOTS_SK: &str = "SLOTS";

pub fn trigger_pk(ns: &str, flow_id: &str) -> String {
    format!("TRIGGER#{ns}#{flow_id}")
}

pub const TRIGGERS_GSI: &str = "TRIGGERS";

pub fn trigger_gsi_sk(ns: &str, flow_id: &str, trigger_id: &str) -> String {
    format!("{ns}#{flow_id}#{trigger_id}")
}

/// The KV pairs of one namespace share a partition, so listing them is one Query.
pub fn kv_pk(ns: &str) -> String {
    format!("KV#{ns}")
}

/// `#` cannot be in a KV key, so no key reads as another kind of item (`EXEC`).
pub const KV_SK_PREFIX: &str = "KV#";

pub fn kv_sk(key: &str) -> String {
    format!("{KV_SK_PREFIX}{key}")
}

/// Milliseconds since the epoch, zero-padded so that strings sort like dates
/// (16 digits cover `DateTime::MAX_UTC`, the engine's "never").
pub fn padded_ms(d: DateTime<Utc>) -> String {
    format!("{:016}", d.timestamp_millis().max(0))
}

pub fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v)
        .single()
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub fn b(v: bool) -> AttributeValue {
    AttributeValue::Bool(v)
}

pub fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// An SDK error as one line: the service's code and message, or for a failure without a
/// response (connection, timeout) its cause chain (the SDK's `Display` alone says little).
pub fn describe<E>(e: &E) -> String
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error,
{
    match e.code() {
        Some(code) => format!("{code}: {}", e.message().unwrap_or_default()),
        None => aws_smithy_types::error::display::DisplayErrorContext(e).to_string(),
    }
}

pub fn sdk<E>(e: E) -> StoreError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error,
{
    StoreError::Backend(describe(&e))
}

pub fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(StoreError::Backend(format!(
            "item attribute {name} missing or not a string"
        ))),
    }
}

pub fn opt_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

pub fn get_n(item: &Item, name: &str) -> Result<i64, StoreError> {
    opt_n(item, name)
        .ok_or_else(|| StoreError::Backend(format!("item attribute {name} missing or not a number")))
}

pub fn opt_n(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

pub fn get_bool(item: &Item, name: &str) -> bool {
    matches!(item.get(name), Some(AttributeValue::Bool(true)))
}

/// `namespace` equals `prefix` or lies under it (`company` matches `company.team`, not `companyx`).
pub fn namespace_matches(namespace: &str, prefix: &str) -> bool {
    namespace == prefix
        || (namespace.len() > prefix.len()
            && namespace.starts_with(prefix)
            && namespace.as_bytes()[prefix.len()] == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_dates_sort_like_dates() {
        let a = padded_ms(from_ms(5));
        let b = padded_ms(from_ms(1_700_000_000_000));
        let never = padded_ms(DateTime::<Utc>::MAX_UTC);
        assert!(a < b && b < never);
        assert_eq!(never.len(), 16);
    }

    #[test]
    fn namespace_prefix_is_on_whole_segments() {
        assert!(namespace_matches("company.team", "company"));
        assert!(namespace_matches("company", "company"));
        assert!(!namespace_matches("companyx", "company"));
    }

    #[test]
    fn outbox_shards_are_stable() {
        assert_eq!(outbox_gsi_pk("start-abc"), outbox_gsi_pk("start-abc"));
        // Fixed values: every process and release must put an item in the same shard.
        assert_eq!(outbox_gsi_pk("start-abc"), "OUTBOX#2");
        let first: Vec<String> = (0..4).map(|i| outbox_gsi_pk(&format!("item-{i}"))).collect();
        assert_eq!(first, ["OUTBOX#3", "OUTBOX#0", "OUTBOX#1", "OUTBOX#2"]);
        let shards: std::collections::HashSet<_> =
            (0..64).map(|i| outbox_gsi_pk(&format!("item-{i}"))).collect();
        assert_eq!(shards.len(), OUTBOX_SHARDS as usize);
    }
}
