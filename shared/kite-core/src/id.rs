//! Kestra-style identifiers: base62 of 128 random bits (at most 22 characters), and
//! the source of fresh ids and random bytes every host injects.

/// What the core may not make itself, injected by its host: fresh ids and random
/// bytes (the engine's port draws them from the OS; tests count).
pub trait IdSource: Send + Sync {
    /// A new unique id (Kestra's base62 form).
    fn next_id(&self) -> String;
    /// Fresh bytes for an AES-GCM nonce: never the same twice under one key.
    fn nonce(&self) -> [u8; 12];
}

/// Encodes a 128-bit number the way Kestra's `FriendlyId` does (base62, no padding).
pub fn friendly_id(n: u128) -> String {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    if n == 0 {
        return "0".to_string();
    }
    let mut n = n;
    let mut out = Vec::with_capacity(22);
    while n > 0 {
        out.push(ALPHABET[(n % 62) as usize]);
        n /= 62;
    }
    out.reverse();
    String::from_utf8(out).expect("alphabet is ASCII")
}

/// Derives a stable id from a string key (FNV-1a 128), for idempotent creation:
/// the same key always yields the same id.
pub fn derived_id(key: &str) -> String {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    let mut hash = OFFSET;
    for byte in key.as_bytes() {
        hash ^= u128::from(*byte);
        hash = hash.wrapping_mul(PRIME);
    }
    friendly_id(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_base62_and_short() {
        let id = friendly_id(u128::MAX);
        assert!(id.len() <= 22);
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(friendly_id(61), "z");
        assert_eq!(friendly_id(62), "10");
    }

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        assert_eq!(derived_id("a"), derived_id("a"));
        assert_ne!(derived_id("a"), derived_id("b"));
    }
}
