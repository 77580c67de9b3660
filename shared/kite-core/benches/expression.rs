//! Render cost of Kestra expressions: benchmark01's message from a cached
//! template, and the same with a larger context (100 task outputs).

use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion};
use kite_core::expression::{ExpressionEngine, RenderContext};
use serde_json::{json, Map, Value};

fn bench(c: &mut Criterion) {
    let engine = ExpressionEngine::new();
    #[allow(clippy::disallowed_methods)] // a bench, not the core
    let now = Utc::now();
    let small =
        json!({"inputs": {"name": "World"}, "flow": {"id": "benchmark01", "namespace": "benchmarks"}});
    let ctx = RenderContext::new(&small, now);
    // Compile once; the benchmark measures cached renders.
    engine.render("Hello {{ inputs.name }}", &ctx).expect("renders");
    c.bench_function("render benchmark01 message (cached)", |b| {
        b.iter(|| engine.render("Hello {{ inputs.name }}", &ctx).expect("renders"))
    });

    let mut outputs = Map::new();
    for i in 0..100 {
        outputs.insert(
            format!("task{i}"),
            json!({"value": format!("value {i}"), "values": {"a": i}}),
        );
    }
    let large = json!({"inputs": {"name": "World"}, "outputs": Value::Object(outputs)});
    let ctx = RenderContext::new(&large, now);
    let template = "{{ outputs.task42.value }} and {{ outputs.task7.values.a }}";
    engine.render(template, &ctx).expect("renders");
    c.bench_function("render with 100 outputs in context (cached)", |b| {
        b.iter(|| engine.render(template, &ctx).expect("renders"))
    });

    c.bench_function("plain string (no expression)", |b| {
        b.iter(|| engine.render("no expression here", &ctx).expect("renders"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
