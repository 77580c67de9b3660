//! Identifiers: the base62 encoding of Kestra's `FriendlyId`, and the ids derived from a
//! key for idempotent creation, pinned to fixed values because they must not change
//! between processes or releases.

use kite_core::id::{derived_id, friendly_id};

#[test]
fn friendly_ids_are_base62_without_padding() {
    assert_eq!(friendly_id(0), "0");
    assert_eq!(friendly_id(61), "z");
    assert_eq!(friendly_id(62), "10");
    assert_eq!(friendly_id(u128::MAX), "7n42DGM5Tflk9n8mt7Fhc7");
}

#[test]
fn derived_ids_are_fnv1a_128_of_the_key() {
    // FNV-1a 128 of the UTF-8 bytes, then base62: the empty key is the offset basis.
    assert_eq!(derived_id(""), friendly_id(0x6c62272e07bb014262b821756295c58d));
    assert_eq!(derived_id(""), "3IW1hFthpRBnryI17E62IP");
    assert_eq!(derived_id("a"), "6OZ1yOewNqfCFBUcv7AHVU");
    assert_eq!(derived_id("b"), "6OZ1yOg9FSep6h2CiEHV37");
}
