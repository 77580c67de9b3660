//! Time and fresh ids.

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

pub use kite_core::id::IdSource;

/// Random 128-bit ids in Kestra's base62 form, and random nonces, from the OS.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomIds;

impl RandomIds {
    fn random<const N: usize>() -> [u8; N] {
        let mut bytes = [0u8; N];
        if getrandom::getrandom(&mut bytes).is_err() {
            // No OS randomness: time and a counter, still unique in-process.
            static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let t = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
            for (i, b) in t.to_le_bytes().iter().chain(&n.to_le_bytes()).enumerate() {
                bytes[i % N] ^= b;
            }
        }
        bytes
    }
}

impl IdSource for RandomIds {
    fn next_id(&self) -> String {
        kite_core::id::friendly_id(u128::from_le_bytes(Self::random()))
    }

    fn nonce(&self) -> [u8; 12] {
        Self::random()
    }
}
