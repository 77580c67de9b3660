//! The engine on the real SQLite adapters in a temporary folder: executions run to
//! the end, and survive the process stopping in the middle.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use kite_core::execution::StateType;
use kite_core::input::InputValue;
use kite_engine::ports::{Clock, Dispatcher, WorkItem};
use kite_engine::{Engine, EngineConfig, EngineError};
use kite_local::{local_ports, open_engine, Runtime};

mod common;
use common::{create, messages};

const HELLO: &str = r#"
id: hello
namespace: dev
inputs:
  - id: greeting
    type: STRING
    defaults: hello
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ inputs.greeting }} world"
  - id: out
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.greeting | upper }}"
"#;

const SLEEPY: &str = r#"
id: sleepy
namespace: dev
tasks:
  - id: first
    type: io.kestra.plugin.core.log.Log
    message: first
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT1S
  - id: second
    type: io.kestra.plugin.core.log.Log
    message: second
"#;

const PARENT: &str = r#"
id: parent
namespace: dev
tasks:
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: dev
    flowId: hello
    wait: true
    inputs:
      greeting: hi
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: after
"#;

/// Bounds a wait that only a hang would reach: never a measure of speed.
const HANG: Duration = Duration::from_secs(60);

fn config() -> EngineConfig {
    EngineConfig {
        lease: Duration::from_secs(30),
        ..EngineConfig::default()
    }
}

async fn start(dir: &Path) -> (Engine, Runtime) {
    let engine = open_engine(dir, config()).expect("open engine");
    let runtime = Runtime::start(engine.clone(), 2).await.expect("start runtime");
    (engine, runtime)
}

/// A clock that only moves when told: timers and scheduled starts are due when the test
/// says so, however slow the machine.
#[derive(Clone)]
struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    fn new() -> ManualClock {
        ManualClock(Arc::new(Mutex::new(Utc::now())))
    }
    fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap();
        *now += chrono::Duration::from_std(by).unwrap();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

async fn start_with_clock(dir: &Path, clock: &ManualClock) -> (Engine, Runtime) {
    let mut ports = local_ports(dir).expect("ports");
    ports.clock = Arc::new(clock.clone());
    let engine = Engine::new(ports, config());
    let runtime = Runtime::start(engine.clone(), 2).await.expect("start runtime");
    (engine, runtime)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_flow_runs_to_success() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, runtime) = start(dir.path()).await;
    engine.create_flow(HELLO).await.unwrap();
    let mut request = create("hello");
    request
        .inputs
        .insert("greeting".into(), InputValue::Text("bonjour".into()));
    let created = engine.create_execution(request).await.unwrap();
    assert_eq!(created.state.current, StateType::Created);
    let done = engine.wait_for_terminal(&created.id, HANG).await.unwrap();
    assert_eq!(done.state.current, StateType::Success, "{done:?}");
    assert_eq!(done.task_runs().len(), 2);
    let out = done.task_runs()[1]
        .outputs
        .as_ref()
        .and_then(|o| o.get("value"))
        .cloned();
    assert_eq!(out, Some(serde_json::json!("BONJOUR")));
    assert!(messages(&engine, &created.id)
        .await
        .contains(&"bonjour world".to_string()));
    // Nothing is left in the queue once the execution ended.
    assert_eq!(engine.ports().queue.len().await.unwrap(), 0);
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_map_to_kestra_classes() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, runtime) = start(dir.path()).await;
    assert!(matches!(
        engine.create_execution(create("nope")).await,
        Err(EngineError::NotFound(_))
    ));
    engine.create_flow(HELLO).await.unwrap();
    assert!(matches!(
        engine.create_flow(HELLO).await,
        Err(EngineError::InvalidEntity { .. })
    ));
    assert!(matches!(
        engine.create_flow("id: x\n").await,
        Err(EngineError::InvalidFlow(_))
    ));
    let validated = r#"
id: strict
namespace: dev
inputs:
  - id: n
    type: INT
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ inputs.n }}"
"#;
    engine.create_flow(validated).await.unwrap();
    let mut request = create("strict");
    request.inputs.insert("n".into(), InputValue::Text("abc".into()));
    match engine.create_execution(request).await {
        Err(EngineError::InvalidInput(e)) => assert_eq!(e.input_id, "n"),
        other => panic!("expected an input error, got {other:?}"),
    }
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subflows_feed_their_end_back_to_the_parent() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, runtime) = start(dir.path()).await;
    engine.create_flow(HELLO).await.unwrap();
    engine.create_flow(PARENT).await.unwrap();
    let created = engine.create_execution(create("parent")).await.unwrap();
    let done = engine.wait_for_terminal(&created.id, HANG).await.unwrap();
    assert_eq!(done.state.current, StateType::Success, "{done:?}");
    let children = engine
        .search_executions(&kite_engine::ExecutionQuery {
            flow_id: Some("hello".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(children.total, 1);
    assert_eq!(children.results[0].state.current, StateType::Success);
    assert_eq!(
        children.results[0].inputs.get("greeting"),
        Some(&serde_json::json!("hi"))
    );
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_running_executions_without_rerunning_finished_task_runs() {
    let dir = tempfile::tempdir().unwrap();
    // The clock stands still until the restart: the Sleep cannot end before the shutdown.
    let clock = ManualClock::new();
    let id = {
        let (engine, runtime) = start_with_clock(dir.path(), &clock).await;
        engine.create_flow(SLEEPY).await.unwrap();
        let created = engine.create_execution(create("sleepy")).await.unwrap();
        // Wait until the first task ran and the sleep timer is armed, then stop.
        let mut rx = engine.subscribe(&created.id).await.unwrap();
        loop {
            let e = rx.borrow_and_update().clone();
            if e.task_runs().iter().any(|t| t.task_id == "nap") {
                break;
            }
            tokio::time::timeout(HANG, rx.changed())
                .await
                .expect("progress")
                .expect("watch");
        }
        runtime.shutdown().await;
        // Unfinished at shutdown: `first` ran, the Sleep is under way, `second` is not there.
        let stopped = engine.get_execution(&created.id).await.unwrap();
        assert_eq!(stopped.state.current, StateType::Running, "{stopped:?}");
        let runs: Vec<(&str, StateType)> = stopped
            .task_runs()
            .iter()
            .map(|t| (t.task_id.as_str(), t.state.current))
            .collect();
        assert_eq!(
            runs,
            [("first", StateType::Success), ("nap", StateType::Running)],
            "{stopped:?}"
        );
        assert_eq!(messages(&engine, &created.id).await, ["first"]);
        created.id
    };
    clock.advance(Duration::from_secs(2));
    let (engine, runtime) = start_with_clock(dir.path(), &clock).await;
    let done = engine.wait_for_terminal(&id, HANG).await.unwrap();
    assert_eq!(done.state.current, StateType::Success, "{done:?}");
    let logs = messages(&engine, &id).await;
    assert_eq!(logs.iter().filter(|m| *m == "first").count(), 1, "{logs:?}");
    assert_eq!(logs.iter().filter(|m| *m == "second").count(), 1, "{logs:?}");
    runtime.shutdown().await;
}

/// Takes work and drops it, like a process killed right after its durable write.
struct BlackHole;

impl Dispatcher for BlackHole {
    fn dispatch(&self, _items: Vec<WorkItem>) {}
    fn wake_at(&self, _due: chrono::DateTime<chrono::Utc>) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_claimed_by_a_dead_process_runs_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    // The clock stands still: the claim never lapses, only the restart frees the work.
    let clock = ManualClock::new();
    let id = {
        let mut ports = local_ports(dir.path()).unwrap();
        ports.clock = Arc::new(clock.clone());
        let engine = Engine::new(ports, config());
        engine.set_dispatcher(Arc::new(BlackHole));
        // With a concurrency limit the start is a queued work item, not run inline by
        // `create_execution` (which would finish this flow before anything is claimed).
        let limited = HELLO.replace("namespace: dev\n", "namespace: dev\nconcurrency:\n  limit: 10\n");
        engine.create_flow(&limited).await.unwrap();
        let created = engine.create_execution(create("hello")).await.unwrap();
        // Claimed for 30 s, never run: the process dies with it.
        let stopped = engine.get_execution(&created.id).await.unwrap();
        assert_eq!(stopped.state.current, StateType::Created, "{stopped:?}");
        assert_eq!(engine.ports().queue.len().await.unwrap(), 1);
        let leased = engine
            .ports()
            .queue
            .lease(engine.now(), 10, Duration::from_secs(1))
            .await
            .unwrap();
        assert!(leased.is_empty());
        created.id
    };
    let (engine, runtime) = start_with_clock(dir.path(), &clock).await;
    let done = engine.wait_for_terminal(&id, HANG).await.unwrap();
    assert_eq!(done.state.current, StateType::Success);
    assert_eq!(
        messages(&engine, &id)
            .await
            .iter()
            .filter(|m| m.as_str() == "hello world")
            .count(),
        1
    );
    runtime.shutdown().await;
}

/// The crash-loop guard: work that was in hand at two deaths of the process is not run a
/// third time; its execution fails, saying why, and the new process carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_in_hand_at_two_deaths_fails_its_execution_instead_of_running_again() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let dying_engine = || {
        let mut ports = local_ports(dir.path()).unwrap();
        ports.clock = Arc::new(clock.clone());
        let engine = Engine::new(ports, config());
        engine.set_dispatcher(Arc::new(BlackHole));
        engine
    };
    let id = {
        let engine = dying_engine();
        let limited = HELLO.replace("namespace: dev\n", "namespace: dev\nconcurrency:\n  limit: 10\n");
        engine.create_flow(&limited).await.unwrap();
        // Claimed by this process, which dies with it in hand (first death).
        engine.create_execution(create("hello")).await.unwrap().id
    };
    let other = {
        // The next process releases it, leases it again, and dies with it too.
        let engine = dying_engine();
        engine.recover().await.unwrap();
        let leased = engine
            .ports()
            .queue
            .lease(engine.now(), 10, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(leased.len(), 1);
        // Another execution created now, in hand at one death only: it still runs.
        engine.create_execution(create("hello")).await.unwrap().id
    };
    let (engine, runtime) = start_with_clock(dir.path(), &clock).await;
    let failed = engine.wait_for_terminal(&id, HANG).await.unwrap();
    assert_eq!(failed.state.current, StateType::Failed, "{failed:?}");
    let said = messages(&engine, &id).await;
    assert!(
        said.iter()
            .any(|m| m.starts_with("Kite gave up on its start step: 2 earlier runs of it never finished")),
        "{said:?}"
    );
    assert!(!said.iter().any(|m| m == "hello world"), "{said:?}");
    let ran = engine.wait_for_terminal(&other, HANG).await.unwrap();
    assert_eq!(ran.state.current, StateType::Success, "{ran:?}");
    assert_eq!(engine.ports().queue.len().await.unwrap(), 0);
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_work_item_delivered_twice_runs_once() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open_engine(dir.path(), config()).unwrap();
    engine.create_flow(HELLO).await.unwrap();
    let created = engine.create_execution(create("hello")).await.unwrap();
    let items = engine
        .ports()
        .queue
        .lease(engine.now(), 10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(items.len(), 1);
    engine.process(items[0].clone()).await.unwrap();
    engine.process(items[0].clone()).await.unwrap();
    let done = engine.get_execution(&created.id).await.unwrap();
    assert_eq!(done.state.current, StateType::Success);
    assert_eq!(done.task_runs().len(), 2);
    assert_eq!(messages(&engine, &created.id).await.len(), 1);
    let _ = IndexMap::<String, String>::new();
}

/// A kill stops a render in progress: the pass it was in is dropped, so the execution
/// ends KILLED (not FAILED by the stopped render) and the long render logs nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_stops_a_render_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, runtime) = start(dir.path()).await;
    // The limit sends the start through the queue, so the render runs on a worker after
    // the execution is stored (where a kill can reach it).
    let long = "id: long\nnamespace: dev\nconcurrency:\n  limit: 10\ntasks:\n  - id: spin\n    \
                type: io.kestra.plugin.core.log.Log\n    message: \"{% for i in range(1, 999) %}{% for j in \
                range(1, 1000) %}{% set x = range(1, 300) | join(',') %}{% endfor %}{% endfor %}\"\n";
    engine.create_flow(long).await.unwrap();
    let created = engine.create_execution(create("long")).await.unwrap();
    // The start's pass is rendering now (its state is stored when the pass ends, so it
    // still reads CREATED; the render takes seconds).
    tokio::time::sleep(Duration::from_millis(100)).await;
    if let Err(e) = engine.kill(&created.id).await {
        let ended = engine.get_execution(&created.id).await.unwrap();
        panic!(
            "{e}: {:?} {:?}",
            ended.state.current,
            messages(&engine, &created.id).await
        );
    }
    let done = engine.wait_for_terminal(&created.id, HANG).await.unwrap();
    let said = messages(&engine, &created.id).await;
    assert_eq!(done.state.current, StateType::Killed, "{said:?}");
    assert!(said.iter().all(|m| !m.contains("render stopped")), "{said:?}");
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_and_flow_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, runtime) = start(dir.path()).await;
    engine.create_flow(SLEEPY).await.unwrap();
    let created = engine.create_execution(create("sleepy")).await.unwrap();
    engine.kill(&created.id).await.unwrap();
    let done = engine.wait_for_terminal(&created.id, HANG).await.unwrap();
    assert_eq!(done.state.current, StateType::Killed);
    assert!(matches!(
        engine.kill(&created.id).await,
        Err(EngineError::IllegalState(_))
    ));

    let updated = engine
        .deploy_flow(&SLEEPY.replace("message: second", "message: deux"))
        .await
        .unwrap();
    assert_eq!(updated.revision, 2);
    assert_eq!(engine.flow_revisions("dev", "sleepy").await.unwrap().len(), 2);
    assert_eq!(
        engine.get_flow("dev", "sleepy", Some(1)).await.unwrap().source,
        SLEEPY
    );
    engine.delete_flow("dev", "sleepy").await.unwrap();
    assert!(matches!(
        engine.get_flow("dev", "sleepy", None).await,
        Err(EngineError::NotFound(_))
    ));
    runtime.shutdown().await;
}

const PAUSED: &str = r#"
id: paused
namespace: dev
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: approved
        type: BOOLEAN
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: "approved={{ outputs.wait.onResume.approved }}"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_execution_resumes_with_typed_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, runtime) = start(dir.path()).await;
    engine.create_flow(PAUSED).await.unwrap();
    let created = engine.create_execution(create("paused")).await.unwrap();
    let mut rx = engine.subscribe(&created.id).await.unwrap();
    while rx.borrow_and_update().state.current != StateType::Paused {
        tokio::time::timeout(HANG, rx.changed())
            .await
            .expect("paused")
            .expect("watch");
    }
    assert!(matches!(engine.kill("nope").await, Err(EngineError::NotFound(_))));
    let mut inputs = IndexMap::new();
    inputs.insert("approved".to_string(), InputValue::Text("true".into()));
    engine.resume(&created.id, inputs).await.unwrap();
    let done = engine.wait_for_terminal(&created.id, HANG).await.unwrap();
    assert_eq!(done.state.current, StateType::Success, "{done:?}");
    assert!(messages(&engine, &created.id)
        .await
        .contains(&"approved=true".to_string()));
    // Not paused any more.
    assert!(matches!(
        engine.resume(&created.id, IndexMap::new()).await,
        Err(EngineError::IllegalState(_))
    ));
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_execution_starts_at_its_date_even_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    // The clock stands still until the restart: before it, the date is never reached.
    let clock = ManualClock::new();
    let at = clock.now() + chrono::Duration::milliseconds(1500);
    let id = {
        let (engine, runtime) = start_with_clock(dir.path(), &clock).await;
        engine.create_flow(HELLO).await.unwrap();
        let mut request = create("hello");
        request.schedule_date = Some(at);
        let created = engine.create_execution(request).await.unwrap();
        assert_eq!(created.state.current, StateType::Created);
        runtime.shutdown().await;
        let stopped = engine.get_execution(&created.id).await.unwrap();
        assert_eq!(stopped.state.current, StateType::Created, "{stopped:?}");
        assert!(stopped.task_runs().is_empty(), "{stopped:?}");
        created.id
    };
    clock.advance(Duration::from_secs(2));
    let (engine, runtime) = start_with_clock(dir.path(), &clock).await;
    let done = engine.wait_for_terminal(&id, HANG).await.unwrap();
    assert_eq!(done.state.current, StateType::Success);
    let started = done
        .state
        .histories
        .iter()
        .find(|h| h.state == StateType::Running)
        .map(|h| h.date)
        .unwrap();
    assert!(started >= at, "started {started} before {at}");
    runtime.shutdown().await;
}

const RETRIED: &str = r#"
id: retried
namespace: dev
tasks:
  - id: fail
    type: io.kestra.plugin.core.execution.Fail
    retry:
      type: constant
      interval: PT0.3S
      maxAttempt: 3
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_wait_on_durable_timers() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, runtime) = start(dir.path()).await;
    engine.create_flow(RETRIED).await.unwrap();
    let created = engine.create_execution(create("retried")).await.unwrap();
    let done = engine.wait_for_terminal(&created.id, HANG).await.unwrap();
    assert_eq!(done.state.current, StateType::Failed);
    let attempts = done.task_runs()[0].attempts.len();
    assert_eq!(attempts, 3, "{done:?}");
    runtime.shutdown().await;
}

const LIMITED: &str = r#"
id: limited
namespace: dev
concurrency:
  limit: 1
  behavior: QUEUE
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT0.4S
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrency_limit_queues_then_starts_executions() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, runtime) = start(dir.path()).await;
    engine.create_flow(LIMITED).await.unwrap();
    let first = engine.create_execution(create("limited")).await.unwrap();
    // Let the first one start before the others are created.
    let mut rx = engine.subscribe(&first.id).await.unwrap();
    while rx.borrow_and_update().state.current != StateType::Running {
        tokio::time::timeout(HANG, rx.changed())
            .await
            .expect("running")
            .expect("watch");
    }
    let second = engine.create_execution(create("limited")).await.unwrap();
    let third = engine.create_execution(create("limited")).await.unwrap();
    let mut ends = Vec::new();
    for id in [&first.id, &second.id, &third.id] {
        let done = engine.wait_for_terminal(id, HANG).await.unwrap();
        assert_eq!(done.state.current, StateType::Success, "{done:?}");
        let start = done
            .state
            .histories
            .iter()
            .find(|h| h.state == StateType::Running)
            .map(|h| h.date)
            .unwrap();
        ends.push((
            start,
            done.state.end_date.unwrap(),
            done.state.histories.iter().any(|h| h.state == StateType::Queued),
        ));
    }
    assert!(!ends[0].2 && ends[1].2 && ends[2].2, "{ends:?}");
    // Never two at once: each starts after the previous one ended.
    assert!(ends[1].0 >= ends[0].1 && ends[2].0 >= ends[1].1, "{ends:?}");

    engine
        .deploy_flow(&LIMITED.replace("QUEUE", "CANCEL").replace("PT0.4S", "PT2S"))
        .await
        .unwrap();
    let running = engine.create_execution(create("limited")).await.unwrap();
    let mut rx = engine.subscribe(&running.id).await.unwrap();
    while rx.borrow_and_update().state.current != StateType::Running {
        tokio::time::timeout(HANG, rx.changed())
            .await
            .expect("running")
            .expect("watch");
    }
    let cancelled = engine.create_execution(create("limited")).await.unwrap();
    let done = engine.wait_for_terminal(&cancelled.id, HANG).await.unwrap();
    assert_eq!(done.state.current, StateType::Cancelled);
    runtime.shutdown().await;
}

/// Creates `n` executions of `flow` at once.
async fn create_at_once(engine: &Engine, flow: &str, n: usize) -> Vec<String> {
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (engine, request) = (engine.clone(), create(flow));
            tokio::spawn(async move { engine.create_execution(request).await.map(|e| e.id) })
        })
        .collect();
    let mut ids = Vec::with_capacity(n);
    for h in handles {
        ids.push(h.await.expect("join").expect("created"));
    }
    ids
}

/// Whether two executions of `ended` ever ran at the same time (RUNNING to their end).
/// A state's date is taken when its step is computed, before the step's commit (where the
/// slot is taken): a start computed a moment before the previous execution's end but
/// committed after its release can read earlier by a few milliseconds. Two executions that
/// did run together overlap by a whole Sleep (50 ms) at least, so less than 25 ms is not
/// counted.
fn overlapping(ended: &[kite_core::execution::Execution]) -> Option<(String, String)> {
    let slack = chrono::Duration::milliseconds(25);
    let mut spans: Vec<_> = ended
        .iter()
        .filter_map(|e| {
            let start = e
                .state
                .histories
                .iter()
                .find(|h| h.state == StateType::Running)?
                .date;
            Some((start, e.state.end_date?, e.id.clone()))
        })
        .collect();
    spans.sort();
    spans
        .windows(2)
        .find(|w| w[1].0 + slack < w[0].1)
        .map(|w| (w[0].2.clone(), w[1].2.clone()))
}

/// 100 starts at once against `limit: 1`: exactly one runs, each of the others takes the
/// state `concurrency.behavior` says (QUEUED then run one after the other, CANCELLED, FAILED).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_starts_never_exceed_the_concurrency_limit() {
    const STARTS: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let (engine, runtime) = start(dir.path()).await;

    engine
        .create_flow(&LIMITED.replace("PT0.4S", "PT0.05S"))
        .await
        .unwrap();
    let ids = create_at_once(&engine, "limited", STARTS).await;
    let mut ended = Vec::new();
    for id in &ids {
        ended.push(engine.wait_for_terminal(id, HANG * 4).await.unwrap());
    }
    assert!(ended.iter().all(|e| e.state.current == StateType::Success));
    let queued = ended
        .iter()
        .filter(|e| e.state.histories.iter().any(|h| h.state == StateType::Queued))
        .count();
    assert!(queued >= STARTS / 2, "{queued} queued");
    assert_eq!(overlapping(&ended), None);

    for (behavior, state) in [("CANCEL", StateType::Cancelled), ("FAIL", StateType::Failed)] {
        engine
            .deploy_flow(&LIMITED.replace("QUEUE", behavior).replace("PT0.4S", "PT60S"))
            .await
            .unwrap();
        let ids = create_at_once(&engine, "limited", STARTS).await;
        let mut running = Vec::new();
        for id in &ids {
            let mut rx = engine.subscribe(id).await.unwrap();
            loop {
                let current = rx.borrow_and_update().state.current;
                if current == StateType::Running || current.is_terminated() {
                    assert!(
                        current == StateType::Running || current == state,
                        "{behavior}: {current:?}"
                    );
                    if current == StateType::Running {
                        running.push(id.clone());
                    }
                    break;
                }
                tokio::time::timeout(HANG, rx.changed())
                    .await
                    .expect("decided")
                    .expect("watch");
            }
        }
        assert_eq!(running.len(), 1, "{behavior}: {running:?}");
        engine.kill(&running[0]).await.unwrap();
        let killed = engine.wait_for_terminal(&running[0], HANG).await.unwrap();
        assert_eq!(killed.state.current, StateType::Killed);
    }
    runtime.shutdown().await;
}

/// A follower in one process sees the progress another process makes (on AWS the api
/// function waits while the worker runs): with `watch_poll` it reads the store; without
/// it, it only hears its own commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_see_progress_made_by_another_engine() {
    let dir = tempfile::tempdir().unwrap();
    let (runner, _runtime) = start(dir.path()).await;
    runner.deploy_flow(SLEEPY).await.unwrap();
    let polling = open_engine(
        dir.path(),
        EngineConfig {
            watch_poll: Some(Duration::from_millis(100)),
            ..config()
        },
    )
    .unwrap();
    let deaf = open_engine(dir.path(), config()).unwrap();
    let execution = runner.create_execution(create("sleepy")).await.unwrap();
    let mut unheard = deaf.subscribe(&execution.id).await.unwrap();
    let mut heard = polling.subscribe(&execution.id).await.unwrap();
    assert!(!heard.borrow_and_update().state.current.is_terminated());

    let seen = polling.wait_for_terminal(&execution.id, HANG).await.unwrap();
    assert_eq!(seen.state.current, StateType::Success);
    assert!(
        heard.has_changed().unwrap_or(true),
        "the polling follower got the change"
    );
    assert!(
        !unheard.has_changed().unwrap() && !unheard.borrow_and_update().state.current.is_terminated(),
        "without polling, another process's progress is not heard"
    );
}

/// `secret()` over the `SECRET_<NAME>` variables, given to the engine rather than set in
/// this process's environment (tests run in parallel threads).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_render_from_secret_variables_and_are_masked() {
    use kite_engine::ports::{EnvironmentSecrets, InMemorySecrets};
    // Nothing listens on a port that was just free: the request fails naming its URL.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let dir = tempfile::tempdir().unwrap();
    let mut ports = local_ports(dir.path()).expect("ports");
    ports.secrets = Arc::new(InMemorySecrets(Arc::new(EnvironmentSecrets::from_vars([
        // base64 of "tok-123" and of {"user": "kite"}
        ("SECRET_API_TOKEN", "dG9rLTEyMw=="),
        ("SECRET_DB", "eyJ1c2VyIjogImtpdGUifQ=="),
    ]))));
    let engine = Engine::new(ports, config());
    let runtime = Runtime::start(engine.clone(), 2).await.expect("start runtime");
    let flow = format!(
        r#"
id: secrets
namespace: dev
tasks:
  - id: literal
    type: io.kestra.plugin.core.log.Log
    message: "token {{{{ secret('API_TOKEN') }}}}"
  - id: computed
    type: io.kestra.plugin.core.log.Log
    message: "user {{{{ secret('d' ~ 'b', subkey='user') }}}}"
  - id: call
    type: io.kestra.plugin.core.http.Request
    uri: "http://{closed}/{{{{ secret('API_TOKEN') }}}}"
"#
    );
    engine.create_flow(&flow).await.unwrap();
    let created = engine.create_execution(create("secrets")).await.unwrap();
    let done = engine.wait_for_terminal(&created.id, HANG).await.unwrap();
    let logs = messages(&engine, &created.id).await;
    assert_eq!(done.state.current, StateType::Failed, "{logs:?}");
    assert!(logs.contains(&"token ******".to_string()), "{logs:?}");
    assert!(logs.contains(&"user ******".to_string()), "{logs:?}");
    // The worker's error names the rendered URL: masked too.
    assert!(
        logs.iter()
            .any(|l| l.starts_with(&format!("Request to `http://{closed}/******` failed"))),
        "{logs:?}"
    );
    assert!(!logs.iter().any(|l| l.contains("tok-123")), "{logs:?}");

    engine
        .create_flow(
            r#"
id: missing
namespace: dev
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ secret('NOPE') }}"
"#,
        )
        .await
        .unwrap();
    let created = engine.create_execution(create("missing")).await.unwrap();
    let done = engine.wait_for_terminal(&created.id, HANG).await.unwrap();
    let logs = messages(&engine, &created.id).await;
    assert_eq!(done.state.current, StateType::Failed, "{logs:?}");
    assert!(
        logs.iter()
            .any(|l| l.contains("Cannot find secret for key 'NOPE'.")),
        "{logs:?}"
    );
    runtime.shutdown().await;
}
