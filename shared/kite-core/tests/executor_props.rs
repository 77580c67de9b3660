//! Properties of the execution state machine, driven event by event through
//! `executor::apply` with generated flows:
//!
//! - delivering task-run completions in any order gives the same final state
//!   and the same task runs (Parallel, ForEach, EachParallel, nested);
//! - arbitrary event sequences (kill, resume, restart, completions of unknown
//!   or already finished task runs, timers fired twice) never panic and never
//!   move a terminal execution back.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Duration, TimeZone, Utc};
use common::value_path;
use indexmap::IndexMap;
use kite_core::execution::{Execution, StateType, TaskRun};
use kite_core::executor::{
    apply, new_execution, Command, Env, Event, IdSource, NewExecution, TaskResult, TimerKind,
};
use kite_core::expression::ExpressionEngine;
use kite_core::flow::{parse_flow, Flow};
use proptest::prelude::*;
use serde_json::json;

// ---------------------------------------------------------------------------------
// generated flows

#[derive(Debug, Clone)]
enum Block {
    /// A Return task.
    Leaf,
    Parallel {
        concurrent: u32,
        children: Vec<Block>,
    },
    ForEach {
        items: usize,
        limit: u32,
        children: Vec<Block>,
    },
    EachParallel {
        items: usize,
        concurrent: u32,
        children: Vec<Block>,
    },
    /// A Pause with a delay (a timer), wrapping nothing.
    PauseDelay,
}

fn block(depth: u32, with_pause: bool) -> BoxedStrategy<Block> {
    let leaf = if with_pause {
        prop_oneof![4 => Just(Block::Leaf), 1 => Just(Block::PauseDelay)].boxed()
    } else {
        Just(Block::Leaf).boxed()
    };
    leaf.prop_recursive(depth, 24, 4, |inner| {
        prop_oneof![
            (0u32..=3, prop::collection::vec(inner.clone(), 1..5))
                .prop_map(|(concurrent, children)| Block::Parallel { concurrent, children }),
            (0usize..5, 0u32..=2, prop::collection::vec(inner.clone(), 1..3)).prop_map(
                |(items, limit, children)| Block::ForEach {
                    items,
                    limit,
                    children
                }
            ),
            (0usize..4, 0u32..=2, prop::collection::vec(inner, 1..3)).prop_map(
                |(items, concurrent, children)| Block::EachParallel {
                    items,
                    concurrent,
                    children
                }
            ),
        ]
    })
    .boxed()
}

/// Renders blocks as Kestra YAML; returns whether any flowable limits its
/// concurrency to more than one child (then which children get created after
/// a failure depends on timing, as in Kestra).
fn to_yaml(blocks: &[Block]) -> (String, bool) {
    fn write(b: &Block, indent: usize, n: &mut usize, out: &mut String, limited: &mut bool) {
        let pad = " ".repeat(indent);
        *n += 1;
        let id = *n;
        let items = |k: usize| {
            let v: Vec<String> = (0..k).map(|i| format!("\"v{i}\"")).collect();
            format!("'[{}]'", v.join(", "))
        };
        match b {
            Block::Leaf => {
                out.push_str(&format!(
                    "{pad}- id: t{id}\n{pad}  type: io.kestra.plugin.core.debug.Return\n{pad}  format: \"t{id}\"\n"
                ));
            }
            Block::PauseDelay => {
                out.push_str(&format!(
                    "{pad}- id: pause{id}\n{pad}  type: io.kestra.plugin.core.flow.Pause\n{pad}  delay: PT1S\n"
                ));
            }
            Block::Parallel { concurrent, children } => {
                *limited |= *concurrent > 1;
                out.push_str(&format!(
                    "{pad}- id: p{id}\n{pad}  type: io.kestra.plugin.core.flow.Parallel\n{pad}  concurrent: {concurrent}\n{pad}  tasks:\n"
                ));
                for c in children {
                    write(c, indent + 4, n, out, limited);
                }
            }
            Block::ForEach {
                items: k,
                limit,
                children,
            } => {
                *limited |= *limit > 1;
                out.push_str(&format!(
                    "{pad}- id: f{id}\n{pad}  type: io.kestra.plugin.core.flow.ForEach\n{pad}  values: {}\n{pad}  concurrencyLimit: {limit}\n{pad}  tasks:\n",
                    items(*k)
                ));
                for c in children {
                    write(c, indent + 4, n, out, limited);
                }
            }
            Block::EachParallel {
                items: k,
                concurrent,
                children,
            } => {
                *limited |= *concurrent > 1;
                out.push_str(&format!(
                    "{pad}- id: e{id}\n{pad}  type: io.kestra.plugin.core.flow.EachParallel\n{pad}  value: {}\n{pad}  concurrent: {concurrent}\n{pad}  tasks:\n",
                    items(*k)
                ));
                for c in children {
                    write(c, indent + 4, n, out, limited);
                }
            }
        }
    }
    let mut out = String::from("id: generated\nnamespace: io.kestra.props\ntasks:\n");
    let mut n = 0;
    let mut limited = false;
    for b in blocks {
        write(b, 2, &mut n, &mut out, &mut limited);
    }
    (out, limited)
}

fn parse(yaml: &str) -> Flow {
    match parse_flow(yaml) {
        Ok(flow) => flow,
        Err(errors) => panic!("generated flow does not parse: {errors:?}\n{yaml}"),
    }
}

// ---------------------------------------------------------------------------------
// a small driver

struct Ids(AtomicU64);

impl IdSource for Ids {
    fn next_id(&self) -> String {
        format!("id{}", self.0.fetch_add(1, Ordering::Relaxed))
    }

    fn nonce(&self) -> [u8; 12] {
        [0; 12]
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 12, 20, 10, 0, 0)
        .single()
        .expect("valid date")
}

struct Driver {
    flow: Flow,
    execution: Execution,
    ids: Ids,
    engine: ExpressionEngine,
    now: DateTime<Utc>,
    /// Task runs a worker must run, in the order they were asked for.
    pending: Vec<String>,
    /// Timers asked for (may be fired more than once by the tests).
    timers: Vec<(String, TimerKind)>,
    finished: Vec<String>,
    terminated: Vec<StateType>,
}

impl Driver {
    fn new(flow: Flow) -> Driver {
        let request = NewExecution {
            id: "props-execution".to_string(),
            ..Default::default()
        };
        let execution = new_execution(&flow, request, t0());
        Driver {
            flow,
            execution,
            ids: Ids(AtomicU64::new(0)),
            engine: ExpressionEngine::new(),
            now: t0(),
            pending: Vec::new(),
            timers: Vec::new(),
            finished: Vec::new(),
            terminated: Vec::new(),
        }
    }

    fn send(&mut self, event: Event) -> Result<(), String> {
        self.now += Duration::milliseconds(1);
        let env = Env {
            now: self.now,
            ids: &self.ids,
            expressions: &self.engine,
            files: None,
            secret_key: None,
            globals: None,
            secrets: None,
            max_task_output: kite_core::env::DEFAULT_MAX_TASK_OUTPUT,
            kv: None,
        };
        let commands = apply(&self.flow, &mut self.execution, event, &env).map_err(|e| e.to_string())?;
        for command in commands {
            match command {
                Command::RunTask { task_run_id } => self.pending.push(task_run_id),
                Command::ScheduleTimer {
                    task_run_id, timer, ..
                } => self.timers.push((task_run_id, timer)),
                Command::Terminated { state } => self.terminated.push(state),
                _ => {}
            }
        }
        Ok(())
    }

    /// Finishes one pending task run with the outcome chosen for it.
    fn finish(
        &mut self,
        index: usize,
        outcome: &dyn Fn(&Execution, &TaskRun) -> StateType,
    ) -> Result<(), String> {
        let id = self.pending.remove(index % self.pending.len());
        let state = match self.execution.find_task_run(&id) {
            Some(tr) => outcome(&self.execution, tr),
            None => StateType::Success,
        };
        self.finished.push(id.clone());
        self.send(Event::TaskRunFinished {
            task_run_id: id,
            result: result(state),
        })
    }

    /// Fires every timer that was asked for and not fired yet.
    fn fire_timers(&mut self, fired: &mut usize) -> Result<(), String> {
        while *fired < self.timers.len() {
            let (task_run_id, timer) = self.timers[*fired].clone();
            *fired += 1;
            self.now += Duration::seconds(2);
            self.send(Event::TimerFired { task_run_id, timer })?;
        }
        Ok(())
    }
}

fn result(state: StateType) -> TaskResult {
    let mut outputs = IndexMap::new();
    outputs.insert("value".to_string(), json!("x"));
    TaskResult {
        state,
        outputs,
        logs: Vec::new(),
    }
}

/// The outcome of a task run depends only on which task and iteration it is.
fn outcome_table(seed: u64, fail_pct: u64) -> impl Fn(&Execution, &TaskRun) -> StateType {
    move |e, tr| {
        let key = format!("{}|{}", tr.task_id, value_path(e, tr).join("/"));
        let mut h = seed ^ 0xcbf2_9ce4_8422_2325;
        for b in key.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        match h % 100 {
            x if x < fail_pct => StateType::Failed,
            x if x < fail_pct + 5 => StateType::Warning,
            _ => StateType::Success,
        }
    }
}

/// (task id, iteration path, state) of every task run, sorted.
fn signature(e: &Execution) -> Vec<(String, Vec<String>, StateType)> {
    let mut sig: Vec<_> = e
        .task_runs()
        .iter()
        .map(|t| (t.task_id.clone(), value_path(e, t), t.state.current))
        .collect();
    sig.sort_by(|a, b| (&a.0, &a.1, a.2.as_str()).cmp(&(&b.0, &b.1, b.2.as_str())));
    sig
}

/// Runs the flow to the end, finishing pending task runs in the order chosen
/// by `pick` (an index into the pending list at each step).
fn run_in_order(
    flow: &Flow,
    pick: &mut dyn FnMut(usize) -> usize,
    outcome: &dyn Fn(&Execution, &TaskRun) -> StateType,
) -> Result<Execution, String> {
    let mut d = Driver::new(flow.clone());
    d.send(Event::Start)?;
    let mut fired = 0;
    for _ in 0..20_000 {
        d.fire_timers(&mut fired)?;
        if d.pending.is_empty() {
            break;
        }
        let i = pick(d.pending.len());
        d.finish(i, outcome)?;
    }
    if !d.pending.is_empty() {
        return Err(format!(
            "still {} task runs pending after 20000 steps",
            d.pending.len()
        ));
    }
    Ok(d.execution)
}

fn describe(e: &Execution) -> String {
    let runs: Vec<String> = e
        .task_runs()
        .iter()
        .map(|t| format!("{}{:?}:{}", t.task_id, t.value, t.state.current.as_str()))
        .collect();
    format!("{} [{}]", e.state.current.as_str(), runs.join(", "))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn completion_order_does_not_change_the_result(
        blocks in prop::collection::vec(block(3, false), 1..4),
        seed in any::<u64>(),
        fail_pct in prop_oneof![Just(0u64), 0u64..30],
        order in prop::collection::vec(any::<usize>(), 1..64),
    ) {
        let (yaml, limited) = to_yaml(&blocks);
        let flow = parse(&yaml);
        let outcome = outcome_table(seed, fail_pct);

        let fifo = run_in_order(&flow, &mut |_| 0, &outcome).map_err(TestCaseError::fail)?;
        let lifo = run_in_order(&flow, &mut |n| n - 1, &outcome).map_err(TestCaseError::fail)?;
        let mut step = 0;
        let random = run_in_order(
            &flow,
            &mut |n| {
                step += 1;
                order[step % order.len()] % n
            },
            &outcome,
        )
        .map_err(TestCaseError::fail)?;

        for e in [&fifo, &lifo, &random] {
            prop_assert!(e.state.current.is_terminated(), "not terminated: {}\n{yaml}", describe(e));
            for t in e.task_runs() {
                prop_assert!(t.state.current.is_terminated(), "task run left {}: {}\n{yaml}", t.state.current.as_str(), describe(e));
            }
        }
        prop_assert_eq!(fifo.state.current, random.state.current, "fifo {} / random {}\n{}", describe(&fifo), describe(&random), yaml);
        prop_assert_eq!(fifo.state.current, lifo.state.current, "fifo {} / lifo {}\n{}", describe(&fifo), describe(&lifo), yaml);
        let failures = fifo.task_runs().iter().any(|t| t.state.current == StateType::Failed);
        if !limited || !failures {
            prop_assert_eq!(signature(&fifo), signature(&random), "fifo {} / random {}\n{}", describe(&fifo), describe(&random), yaml);
            prop_assert_eq!(signature(&fifo), signature(&lifo), "fifo {} / lifo {}\n{}", describe(&fifo), describe(&lifo), yaml);
        }
        if fail_pct == 0 {
            let warnings = fifo.task_runs().iter().any(|t| t.state.current == StateType::Warning);
            let want = if warnings { StateType::Warning } else { StateType::Success };
            prop_assert_eq!(fifo.state.current, want, "{}", describe(&fifo));
        }
    }
}

#[derive(Debug, Clone)]
enum Step {
    /// Finish a pending task run with this outcome.
    Finish(usize, u8),
    /// A completion for a task run id nobody created.
    FinishUnknown,
    /// A second completion for a task run that already finished.
    FinishAgain(usize, u8),
    Kill,
    Resume,
    Restart,
    /// Fire a timer that was asked for (again, if it already fired).
    Timer(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (any::<usize>(), 0u8..3).prop_map(|(i, o)| Step::Finish(i, o)),
        1 => Just(Step::FinishUnknown),
        2 => (any::<usize>(), 0u8..3).prop_map(|(i, o)| Step::FinishAgain(i, o)),
        1 => Just(Step::Kill),
        1 => Just(Step::Resume),
        1 => Just(Step::Restart),
        2 => any::<usize>().prop_map(Step::Timer),
    ]
}

fn state_of(o: u8) -> StateType {
    match o {
        0 => StateType::Success,
        1 => StateType::Failed,
        _ => StateType::Warning,
    }
}

fn snapshot(e: &Execution) -> BTreeMap<String, StateType> {
    e.task_runs()
        .iter()
        .map(|t| (t.id.clone(), t.state.current))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn random_events_never_panic_nor_reopen_a_terminal_execution(
        blocks in prop::collection::vec(block(2, true), 1..4),
        steps in prop::collection::vec(step(), 0..60),
    ) {
        let (yaml, _) = to_yaml(&blocks);
        let flow = parse(&yaml);
        let mut d = Driver::new(flow);
        let _ = d.send(Event::Start);

        for s in steps {
            let before_state = d.execution.state.current;
            let before_runs = snapshot(&d.execution);
            let is_restart = matches!(s, Step::Restart);
            let mut again: Option<String> = None;
            // Errors are fine (the event may be refused); panics and regressions are not.
            let _ = match s {
                Step::Finish(i, o) => {
                    if d.pending.is_empty() {
                        Ok(())
                    } else {
                        let id = d.pending.remove(i % d.pending.len());
                        d.finished.push(id.clone());
                        d.send(Event::TaskRunFinished { task_run_id: id, result: result(state_of(o)) })
                    }
                }
                Step::FinishUnknown => d.send(Event::TaskRunFinished {
                    task_run_id: "no-such-task-run".to_string(),
                    result: result(StateType::Success),
                }),
                Step::FinishAgain(i, o) => {
                    if d.finished.is_empty() {
                        Ok(())
                    } else {
                        let id = d.finished[i % d.finished.len()].clone();
                        again = Some(id.clone());
                        d.send(Event::TaskRunFinished { task_run_id: id, result: result(state_of(o)) })
                    }
                }
                Step::Kill => d.send(Event::Kill),
                Step::Resume => d.send(Event::Resume { task_run_id: None, inputs: IndexMap::new() }),
                Step::Restart => d.send(Event::Restart),
                Step::Timer(i) => {
                    if d.timers.is_empty() {
                        Ok(())
                    } else {
                        let (task_run_id, timer) = d.timers[i % d.timers.len()].clone();
                        d.send(Event::TimerFired { task_run_id, timer })
                    }
                }
            };
            let after = &d.execution;
            if before_state.is_terminated() && !is_restart {
                prop_assert_eq!(after.state.current, before_state, "terminal execution moved: {}\n{}", describe(after), yaml);
                prop_assert_eq!(snapshot(after), before_runs.clone(), "task runs of a terminal execution changed\n{}", yaml);
            }
            if let Some(id) = again {
                if let Some(prev) = before_runs.get(&id) {
                    if prev.is_terminated() && !is_restart {
                        let now = after.find_task_run(&id).map(|t| t.state.current);
                        prop_assert_eq!(now, Some(*prev), "a finished task run changed on a second completion\n{}", yaml);
                    }
                }
            }
            // terminated task runs never come back, except through a restart
            if !is_restart {
                for (id, prev) in &before_runs {
                    if prev.is_terminated() {
                        let now = after.find_task_run(id).map(|t| t.state.current);
                        prop_assert!(
                            now.map(|s| s.is_terminated()).unwrap_or(false),
                            "task run {} went from {} to {:?}\n{}", id, prev.as_str(), now, yaml
                        );
                    }
                }
            }
        }

        // whatever happened, finishing the remaining work (and firing the
        // timers of paused task runs) ends the execution
        for _ in 0..10_000 {
            let paused: Vec<(String, TimerKind)> = d
                .timers
                .iter()
                .filter(|(id, _)| {
                    d.execution.find_task_run(id).map(|t| t.state.current) == Some(StateType::Paused)
                })
                .cloned()
                .collect();
            for (task_run_id, timer) in paused {
                d.now += Duration::seconds(2);
                let _ = d.send(Event::TimerFired { task_run_id, timer });
            }
            if d.pending.is_empty() {
                break;
            }
            let id = d.pending.remove(0);
            let _ = d.send(Event::TaskRunFinished { task_run_id: id, result: result(StateType::Success) });
        }
        let s = d.execution.state.current;
        prop_assert!(
            s.is_terminated() || s == StateType::Paused,
            "nothing left to run but the execution is {}: {}\n{}", s.as_str(), describe(&d.execution), yaml
        );
    }

    #[test]
    fn a_timer_fired_twice_acts_once(
        items in 0usize..4,
    ) {
        let yaml = format!(
            "id: timers\nnamespace: io.kestra.props\ntasks:\n  - id: pause\n    type: io.kestra.plugin.core.flow.Pause\n    delay: PT1S\n  - id: each\n    type: io.kestra.plugin.core.flow.ForEach\n    values: '[{}]'\n    tasks:\n      - id: t\n        type: io.kestra.plugin.core.debug.Return\n        format: x\n",
            (0..items).map(|i| format!("\"v{i}\"")).collect::<Vec<_>>().join(", ")
        );
        let flow = parse(&yaml);
        let once = {
            let mut d = Driver::new(flow.clone());
            d.send(Event::Start).map_err(TestCaseError::fail)?;
            let mut fired = 0;
            d.fire_timers(&mut fired).map_err(TestCaseError::fail)?;
            while !d.pending.is_empty() {
                d.finish(0, &|_, _| StateType::Success).map_err(TestCaseError::fail)?;
            }
            d.execution
        };
        let twice = {
            let mut d = Driver::new(flow);
            d.send(Event::Start).map_err(TestCaseError::fail)?;
            prop_assert!(!d.timers.is_empty(), "a Pause with a delay asks for a timer");
            let (id, timer) = d.timers[0].clone();
            let _ = d.send(Event::TimerFired { task_run_id: id.clone(), timer });
            let _ = d.send(Event::TimerFired { task_run_id: id.clone(), timer });
            while !d.pending.is_empty() {
                d.finish(0, &|_, _| StateType::Success).map_err(TestCaseError::fail)?;
            }
            let _ = d.send(Event::TimerFired { task_run_id: id, timer });
            d.execution
        };
        prop_assert_eq!(once.state.current, StateType::Success, "{}", describe(&once));
        prop_assert_eq!(twice.state.current, StateType::Success, "{}", describe(&twice));
        prop_assert_eq!(signature(&once), signature(&twice));
        prop_assert_eq!(once.task_runs().len(), 2 + items);
    }
}

/// The driver really receives concurrent work: a Parallel asks for all its
/// children at once, and completions out of order still end in SUCCESS.
#[test]
fn parallel_children_are_asked_for_at_once() {
    let (yaml, _) = to_yaml(&[Block::Parallel {
        concurrent: 0,
        children: vec![Block::Leaf, Block::Leaf, Block::Leaf],
    }]);
    let mut d = Driver::new(parse(&yaml));
    d.send(Event::Start).expect("start");
    assert_eq!(d.pending.len(), 3, "{}", describe(&d.execution));
    for i in [2, 0, 0] {
        d.finish(i, &|_, _| StateType::Success).expect("finish");
    }
    assert_eq!(
        d.execution.state.current,
        StateType::Success,
        "{}",
        describe(&d.execution)
    );
    assert_eq!(d.execution.task_runs().len(), 4);
    assert_eq!(d.terminated, vec![StateType::Success]);
}

/// `concurrencyLimit: 2` never has more than two iterations running.
#[test]
fn foreach_concurrency_limit_is_respected() {
    let (yaml, _) = to_yaml(&[Block::ForEach {
        items: 5,
        limit: 2,
        children: vec![Block::Leaf],
    }]);
    let mut d = Driver::new(parse(&yaml));
    d.send(Event::Start).expect("start");
    let mut most = 0;
    while !d.pending.is_empty() {
        most = most.max(d.pending.len());
        let last = d.pending.len() - 1;
        d.finish(last, &|_, _| StateType::Success).expect("finish");
    }
    assert_eq!(most, 2, "{}", describe(&d.execution));
    assert_eq!(d.execution.state.current, StateType::Success);
    assert_eq!(d.execution.task_runs().len(), 6);
}

/// One failed iteration of an EachParallel fails the execution, whatever the
/// order the others finish in.
#[test]
fn a_failed_iteration_fails_the_execution() {
    let (yaml, _) = to_yaml(&[Block::EachParallel {
        items: 3,
        concurrent: 0,
        children: vec![Block::Leaf],
    }]);
    let flow = parse(&yaml);
    let fail_v1 = |e: &Execution, t: &TaskRun| {
        if value_path(e, t) == ["v1"] {
            StateType::Failed
        } else {
            StateType::Success
        }
    };
    let first = run_in_order(&flow, &mut |_| 0, &fail_v1).expect("runs");
    let last = run_in_order(&flow, &mut |n| n - 1, &fail_v1).expect("runs");
    for e in [&first, &last] {
        assert_eq!(e.state.current, StateType::Failed, "{}", describe(e));
        assert_eq!(e.task_runs().len(), 4, "{}", describe(e));
    }
}
