//! The render time bound, with a host clock that moves 100 ms at each reading: the bound is
//! reached after a known number of loop iterations, however fast the machine. A test binary
//! of its own, because the clock is installed once per process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use kite_core::expression::{install_render_clock, ExpressionEngine, RenderContext, MAX_RENDER_TIME};
use serde_json::json;

static TICKS: AtomicU64 = AtomicU64::new(0);

fn slow_clock() -> Duration {
    Duration::from_millis(100 * TICKS.fetch_add(1, Ordering::SeqCst))
}

fn render(template: &str) -> Result<String, String> {
    let now = DateTime::<Utc>::from_timestamp(1_734_688_800, 0).expect("a valid date");
    let vars = json!({});
    ExpressionEngine::new()
        .render(template, &RenderContext::new(&vars, now))
        .map_err(|e| e.message)
}

#[test]
fn a_render_fails_once_it_has_run_longer_than_the_bound() {
    install_render_clock(slow_clock);
    assert_eq!(MAX_RENDER_TIME, Duration::from_secs(10));
    // 50 iterations read the clock 50 times: 5 s, within the bound.
    let fifty = render("{% for i in range(1, 50) %}.{% endfor %}").unwrap();
    assert_eq!(fifty.len(), 50);
    // 200 iterations: 20 s by this clock, past it, and the message names the bound.
    let err = render("{% for i in range(1, 200) %}.{% endfor %}").unwrap_err();
    assert_eq!(err, "render stopped: it ran for more than 10 s");
    // Each render has its own budget: a short one after a stopped one runs.
    assert_eq!(
        render("{% for i in range(1, 3) %}{{ i }}{% endfor %}").unwrap(),
        "123"
    );
}
