//! Structured logs: one JSON object per line (CloudWatch parses them), with the span
//! fields (the engine's `execution` span carries the execution id) flattened in.

use tracing_subscriber::EnvFilter;

/// Installs the JSON subscriber; the level comes from `KITE_LOG` or `RUST_LOG` (default `info`).
/// Idempotent (a second call keeps the first subscriber).
pub fn init() {
    let filter = EnvFilter::try_from_env("KITE_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init();
}
