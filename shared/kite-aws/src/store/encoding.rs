//! What the ports build their items and requests from: item keys, the attribute names
//! and values of expressions, conditions, and the deflate compression of large
//! attributes (the key layout itself is in `crate::items`).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use kite_engine::ports::StoreError;

use crate::items::*;

/// A condition expression with its attribute names and values.
pub(super) type Condition<'a> = (&'a str, HashMap<String, String>, HashMap<String, AttributeValue>);

/// The condition of a first write: no item has this key yet.
pub(super) fn absent() -> Condition<'static> {
    (
        "attribute_not_exists(#pk)",
        names(&[("#pk", "pk")]),
        HashMap::new(),
    )
}

pub(super) fn key(pk: String, sk: &str) -> Item {
    Item::from([("pk".into(), s(pk)), ("sk".into(), s(sk))])
}

pub(super) fn names(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(super) fn values(pairs: Vec<(&str, AttributeValue)>) -> HashMap<String, AttributeValue> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

pub(super) fn deflate(bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    use std::io::Write;
    // The default level for the common small body: benchmark01's 2.2 KB execution
    // deflates to 488 bytes instead of 558, which keeps its item under the 1 KB of one
    // write unit; the best level gains nothing more there and costs twice the time.
    let level = if bytes.len() <= 64 * 1024 {
        flate2::Compression::default()
    } else {
        flate2::Compression::fast()
    };
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), level);
    encoder.write_all(bytes).map_err(backend)?;
    encoder.finish().map_err(backend)
}

pub(super) fn inflate(bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| StoreError::Backend(format!("stored deflated data: {e}")))?;
    Ok(out)
}
