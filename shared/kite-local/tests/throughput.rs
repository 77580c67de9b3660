//! Throughput of benchmark01 on the embedded store (run with
//! `cargo test --release -p kite-local --test throughput -- --ignored --nocapture`).

use std::time::{Duration, Instant};

use kite_core::execution::StateType;
use kite_engine::{CreateExecution, EngineConfig, ExecutionQuery};
use kite_local::{open_engine, Runtime};

const BENCHMARK01: &str = include_str!("../../../tests/bench/benchmark01.yaml");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measures throughput; run in release"]
async fn benchmark01_executions_per_second() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open_engine(dir.path(), EngineConfig::default()).unwrap();
    let runtime = Runtime::start(engine.clone(), 4).await.unwrap();
    engine.create_flow(BENCHMARK01).await.unwrap();
    let n = 5_000;
    let concurrency = 32;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..concurrency {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for _ in (c..n).step_by(concurrency) {
                let t0 = Instant::now();
                let e = engine
                    .create_execution(CreateExecution {
                        namespace: "benchmarks".into(),
                        flow_id: "benchmark01".into(),
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                let done = engine
                    .wait_for_terminal(&e.id, Duration::from_secs(30))
                    .await
                    .unwrap();
                assert_eq!(done.state.current, StateType::Success);
                latencies.push(t0.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    println!(
        "{n} executions in {elapsed:?}: {:.0}/s, p50 {:?}, p99 {p99:?}",
        n as f64 / elapsed.as_secs_f64(),
        latencies[latencies.len() / 2]
    );
    let page = engine
        .search_executions(&ExecutionQuery {
            states: vec![StateType::Success],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.total, n as u64);
    runtime.shutdown().await;
}
