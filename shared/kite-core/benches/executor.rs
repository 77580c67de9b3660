//! Executor benchmarks through the in-memory runner (virtual clock, no I/O):
//!
//! - `sequential_40_returns`: 40 Return tasks from CREATED to SUCCESS
//!   (target ≤ 20 ms, i.e. ≤ 0.5 ms per task run);
//! - `sequential/N`: N sequential Return tasks (N = 10, 100, 1000), reported per task
//!   run so a cost that grows with N (quadratic behaviour) shows;
//! - `foreach/N`: a ForEach over N items (N = 10, 100, 1000), reported per item
//!   so a cost that grows with N (quadratic behaviour) shows;
//! - `benchmark01`: the benchmark flow (OutputValues then Log).
//!
//! Run with `cargo bench -p kite-core --bench executor`.

mod benches {
    use criterion::{criterion_group, BatchSize, BenchmarkId, Criterion, Throughput};
    use indexmap::IndexMap;
    use kite_core::execution::StateType;
    use kite_core::flow::{parse_flow, Flow};
    use kite_core::runner::Runner;
    use std::time::Duration;

    const BENCHMARK01: &str = include_str!("../../../tests/bench/benchmark01.yaml");

    fn parse(source: &str) -> Flow {
        match parse_flow(source) {
            Ok(flow) => flow,
            Err(errors) => panic!("benchmark flow does not parse: {errors:?}"),
        }
    }

    fn sequential_flow(n: usize) -> Flow {
        let mut yaml = String::from("id: sequential\nnamespace: bench\ntasks:\n");
        for i in 0..n {
            yaml.push_str(&format!(
                "  - id: t{i}\n    type: io.kestra.plugin.core.debug.Return\n    format: \"{{{{ task.id }}}} > {{{{ taskrun.startDate }}}}\"\n"
            ));
        }
        parse(&yaml)
    }

    fn foreach_flow(n: usize) -> Flow {
        let items: Vec<String> = (0..n).map(|i| format!("\"item {i}\"")).collect();
        let yaml = format!(
            "id: foreach\nnamespace: bench\ntasks:\n  - id: each\n    type: io.kestra.plugin.core.flow.ForEach\n    values: '[{}]'\n    tasks:\n      - id: t\n        type: io.kestra.plugin.core.debug.Return\n        format: \"{{{{ taskrun.value }}}}\"\n",
            items.join(", ")
        );
        parse(&yaml)
    }

    fn runner_with(flow: &Flow) -> Runner {
        let mut runner = Runner::new();
        runner.add_flow(flow.clone());
        runner
    }

    /// Runs once outside the measurement: the benchmark is only meaningful
    /// if the flow really succeeds with the expected number of task runs.
    fn check(flow: &Flow, namespace: &str, id: &str, task_runs: usize) {
        let mut runner = runner_with(flow);
        match runner.execute(namespace, id, IndexMap::new()) {
            Ok(outcome) => {
                let e = &outcome.execution;
                assert_eq!(e.state.current, StateType::Success, "{id} did not succeed");
                assert_eq!(e.task_runs().len(), task_runs, "{id}: unexpected task runs");
            }
            Err(err) => panic!("{id}: {err}"),
        }
    }

    fn sequential(c: &mut Criterion) {
        let flow = sequential_flow(40);
        check(&flow, "bench", "sequential", 40);
        let mut group = c.benchmark_group("sequential_40_returns");
        group.throughput(Throughput::Elements(40));
        group.bench_function("execute", |b| {
            b.iter_batched(
                || runner_with(&flow),
                |mut runner| runner.execute("bench", "sequential", IndexMap::new()),
                BatchSize::SmallInput,
            )
        });
        group.finish();
    }

    fn sequential_series(c: &mut Criterion) {
        let mut group = c.benchmark_group("sequential");
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(10));
        for n in [10usize, 100, 1000] {
            let flow = sequential_flow(n);
            check(&flow, "bench", "sequential", n);
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::from_parameter(n), &flow, |b, flow| {
                b.iter_batched(
                    || runner_with(flow),
                    |mut runner| runner.execute("bench", "sequential", IndexMap::new()),
                    BatchSize::SmallInput,
                )
            });
        }
        group.finish();
    }

    fn foreach(c: &mut Criterion) {
        let mut group = c.benchmark_group("foreach");
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(10));
        for n in [10usize, 100, 1000] {
            let flow = foreach_flow(n);
            check(&flow, "bench", "foreach", n + 1);
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::from_parameter(n), &flow, |b, flow| {
                b.iter_batched(
                    || runner_with(flow),
                    |mut runner| runner.execute("bench", "foreach", IndexMap::new()),
                    BatchSize::SmallInput,
                )
            });
        }
        group.finish();
    }

    fn benchmark01(c: &mut Criterion) {
        let flow = parse(BENCHMARK01);
        check(&flow, "benchmarks", "benchmark01", 2);
        c.bench_function("benchmark01", |b| {
            b.iter_batched(
                || runner_with(&flow),
                |mut runner| runner.execute("benchmarks", "benchmark01", IndexMap::new()),
                BatchSize::SmallInput,
            )
        });
    }

    criterion_group!(executor, sequential, sequential_series, foreach, benchmark01);
}

criterion::criterion_main!(benches::executor);
