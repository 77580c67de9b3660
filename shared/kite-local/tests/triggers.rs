//! Schedule and Flow triggers through the engine on the real SQLite store. Time is
//! driven by a manual clock for schedules; flow triggers run on the worker pool.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use kite_core::execution::{Execution, LogLevel, StateType};
use kite_engine::ports::{Clock, ExecutionQuery, Pagination};
use kite_engine::{Engine, EngineConfig};
use kite_local::{local_ports, Runtime};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/kestra-flows");

#[derive(Clone)]
struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    fn at(s: &str) -> ManualClock {
        ManualClock(Arc::new(Mutex::new(utc(s))))
    }
    fn set(&self, s: &str) {
        *self.0.lock().unwrap() = utc(s);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn engine_with_clock(dir: &Path, clock: &ManualClock, config: EngineConfig) -> Engine {
    let mut ports = local_ports(dir).unwrap();
    ports.clock = Arc::new(clock.clone());
    Engine::new(ports, config)
}

async fn executions_of(engine: &Engine, namespace: &str, flow_id: &str) -> Vec<Execution> {
    let mut found = engine
        .search_executions(&ExecutionQuery {
            namespace: Some(namespace.into()),
            flow_id: Some(flow_id.into()),
            pagination: Pagination { page: 1, size: 100 },
            ..Default::default()
        })
        .await
        .unwrap()
        .results;
    found.sort_by_key(|e| {
        e.trigger
            .as_ref()
            .and_then(|t| t.variables.as_ref())
            .and_then(|v| v.get("date"))
            .map(|d| d.to_string())
    });
    found
}

const EVERY_5: &str = r#"
id: report
namespace: dev
inputs:
  - id: who
    type: STRING
    defaults: nobody
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ inputs.who }} at {{ trigger.date }} / {{ schedule.date }}"
triggers:
  - id: every5
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "*/5 * * * *"
    inputs:
      who: "the scheduler"
"#;

#[tokio::test]
async fn a_schedule_fires_each_date_once_with_its_variables() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at("2024-01-01T10:02:00Z");
    let engine = engine_with_clock(dir.path(), &clock, EngineConfig::default());
    engine.create_flow(EVERY_5).await.unwrap();
    // A new trigger waits for its next date.
    assert_eq!(
        engine.fire_due_schedules().await.unwrap(),
        Some(utc("2024-01-01T10:05:00Z"))
    );
    assert!(executions_of(&engine, "dev", "report").await.is_empty());

    clock.set("2024-01-01T10:05:00.010Z");
    assert_eq!(
        engine.fire_due_schedules().await.unwrap(),
        Some(utc("2024-01-01T10:10:00Z"))
    );
    // Firing again (a second scheduler, a duplicate tick) creates nothing new.
    engine.fire_due_schedules().await.unwrap();
    let runs = executions_of(&engine, "dev", "report").await;
    assert_eq!(runs.len(), 1);
    let e = &runs[0];
    let trigger = e.trigger.as_ref().unwrap();
    assert_eq!(trigger.id, "every5");
    assert_eq!(trigger.type_name, "io.kestra.plugin.core.trigger.Schedule");
    let vars = trigger.variables.as_ref().unwrap();
    assert_eq!(vars["date"], "2024-01-01T10:05:00Z");
    assert_eq!(vars["next"], "2024-01-01T10:10:00Z");
    assert_eq!(vars["previous"], "2024-01-01T10:00:00Z");
    assert_eq!(
        e.variables.as_ref().unwrap()["schedule"]["date"],
        "2024-01-01T10:05:00Z"
    );
    assert_eq!(e.inputs["who"], "the scheduler");
    assert_eq!(
        e.id,
        kite_core::trigger::schedule::execution_id("dev", "report", "every5", utc("2024-01-01T10:05:00Z"))
    );
    // The same id in every process and release (a second scheduler creates nothing).
    assert_eq!(e.id, "21LlCaUmkMPlYGMCY73h8H");
    let state = engine.trigger_state("dev", "report", "every5").await.unwrap();
    assert_eq!(state.date, Some(utc("2024-01-01T10:05:00Z")));
    assert_eq!(state.next_execution_date, Some(utc("2024-01-01T10:10:00Z")));
}

#[tokio::test]
async fn after_a_restart_missed_dates_follow_recover_missed_schedules() {
    for (policy, expected) in [("ALL", 6), ("LAST", 1), ("NONE", 0)] {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::at("2024-01-01T10:02:00Z");
        let source = EVERY_5.replace(
            "    cron: \"*/5 * * * *\"",
            &format!("    cron: \"*/5 * * * *\"\n    recoverMissedSchedules: {policy}"),
        );
        {
            let engine = engine_with_clock(dir.path(), &clock, EngineConfig::default());
            engine.create_flow(&source).await.unwrap();
            engine.fire_due_schedules().await.unwrap();
        }
        // Down from 10:02 to 10:33: a new process over the same store.
        clock.set("2024-01-01T10:33:00Z");
        let engine = engine_with_clock(dir.path(), &clock, EngineConfig::default());
        assert_eq!(
            engine.fire_due_schedules().await.unwrap(),
            Some(utc("2024-01-01T10:35:00Z"))
        );
        let runs = executions_of(&engine, "dev", "report").await;
        assert_eq!(runs.len(), expected, "{policy}");
        if policy == "LAST" {
            assert_eq!(
                runs[0].trigger.as_ref().unwrap().variables.as_ref().unwrap()["date"],
                "2024-01-01T10:30:00Z"
            );
        }
    }
}

#[tokio::test]
async fn an_eventbridge_firing_is_checked_against_the_zone_and_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at("2025-07-14T12:00:00Z");
    let engine = engine_with_clock(dir.path(), &clock, EngineConfig::default());
    let flow = EVERY_5.replace("\"*/5 * * * *\"", "\"0 2 * * *\"\n    timezone: Europe/Paris");
    engine.create_flow(&flow).await.unwrap();
    clock.set("2025-07-15T00:00:02Z");
    let fired = engine
        .fire_schedule("dev", "report", "every5", utc("2025-07-15T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(
        fired[0].trigger.as_ref().unwrap().variables.as_ref().unwrap()["date"],
        "2025-07-15T02:00:00+02:00"
    );
    // EventBridge delivers the same event twice: still one execution.
    let again = engine
        .fire_schedule("dev", "report", "every5", utc("2025-07-15T00:00:00Z"))
        .await
        .unwrap();
    assert!(again.is_empty());
    // The rule also fires at 01:00 UTC (02:00 in Paris in winter): in July that is 03:00.
    clock.set("2025-07-15T01:00:03Z");
    let other_offset = engine
        .fire_schedule("dev", "report", "every5", utc("2025-07-15T01:00:00Z"))
        .await
        .unwrap();
    assert!(other_offset.is_empty());
    assert_eq!(executions_of(&engine, "dev", "report").await.len(), 1);
}

#[tokio::test]
async fn disabling_a_trigger_stops_it_and_enabling_recovers_per_policy() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at("2024-01-01T10:02:00Z");
    let engine = engine_with_clock(dir.path(), &clock, EngineConfig::default());
    let source = EVERY_5.replace(
        "    cron: \"*/5 * * * *\"",
        "    cron: \"*/5 * * * *\"\n    recoverMissedSchedules: LAST",
    );
    engine.create_flow(&source).await.unwrap();
    engine
        .set_trigger_disabled("dev", "report", "every5", true)
        .await
        .unwrap();
    clock.set("2024-01-01T10:21:00Z");
    assert_eq!(engine.fire_due_schedules().await.unwrap(), None);
    assert!(executions_of(&engine, "dev", "report").await.is_empty());
    engine
        .set_trigger_disabled("dev", "report", "every5", false)
        .await
        .unwrap();
    engine.fire_due_schedules().await.unwrap();
    let runs = executions_of(&engine, "dev", "report").await;
    assert_eq!(
        runs.len(),
        1,
        "LAST: only 10:20 of the dates missed while disabled"
    );
}

#[tokio::test]
async fn backfill_through_the_api_fires_its_range_with_its_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at("2024-01-02T00:00:30Z");
    let engine = engine_with_clock(dir.path(), &clock, EngineConfig::default());
    engine
        .create_flow(&EVERY_5.replace("*/5 * * * *", "0 * * * *"))
        .await
        .unwrap();
    engine
        .update_trigger("dev", "report", "every5", |s| {
            s.backfill = Some(kite_core::trigger::Backfill {
                start: utc("2024-01-01T21:00:00Z"),
                end: Some(utc("2024-01-01T23:00:00Z")),
                current_date: None,
                inputs: [("who".to_string(), serde_json::json!("backfill"))]
                    .into_iter()
                    .collect(),
                labels: Vec::new(),
                paused: false,
            })
        })
        .await
        .unwrap();
    engine.fire_due_schedules().await.unwrap();
    let runs = executions_of(&engine, "dev", "report").await;
    assert_eq!(runs.len(), 3);
    assert!(runs.iter().all(|e| e.inputs["who"] == "backfill"));
    assert!(runs.iter().all(|e| e
        .labels
        .iter()
        .any(|l| l.key == "system.backfill" && l.value == "true")));
    assert!(engine
        .trigger_state("dev", "report", "every5")
        .await
        .unwrap()
        .backfill
        .is_none());
}

#[tokio::test]
async fn deleting_a_flow_or_a_trigger_removes_its_state() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at("2024-01-01T10:02:00Z");
    let engine = engine_with_clock(dir.path(), &clock, EngineConfig::default());
    engine.create_flow(EVERY_5).await.unwrap();
    assert!(engine
        .trigger_state("dev", "report", "every5")
        .await
        .unwrap()
        .next_execution_date
        .is_some());
    let without = EVERY_5.split("triggers:").next().unwrap().to_string();
    engine.update_flow("dev", "report", &without).await.unwrap();
    assert!(engine
        .trigger_state("dev", "report", "every5")
        .await
        .unwrap()
        .next_execution_date
        .is_none());
    engine.update_flow("dev", "report", EVERY_5).await.unwrap();
    engine.delete_flow("dev", "report").await.unwrap();
    assert!(engine
        .trigger_state("dev", "report", "every5")
        .await
        .unwrap()
        .next_execution_date
        .is_none());
}

// ------------------------------------------------------------------ flow triggers

async fn deploy_corpus(engine: &Engine, names: &[&str]) {
    for name in names {
        let source = std::fs::read_to_string(format!("{CORPUS}/{name}")).unwrap();
        engine.deploy_flow(&source).await.unwrap();
    }
}

/// Waits (bounded) until `flow` has `count` terminated executions.
async fn terminated(engine: &Engine, namespace: &str, flow: &str, count: usize) -> Vec<Execution> {
    let mut found = Vec::new();
    for _ in 0..1200 {
        found = executions_of(engine, namespace, flow).await;
        if found.len() >= count && found.iter().all(|e| e.state.current.is_terminated()) {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let states: Vec<_> = found.iter().map(|e| (e.id.clone(), e.state.current)).collect();
    panic!("{namespace}.{flow}: fewer than {count} terminated executions: {states:?}")
}

/// Waits (bounded) until the engine's queue is empty: no work is left to run.
async fn quiet(engine: &Engine) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let left = engine.ports().queue.len().await.unwrap();
        if left == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{left} queued items never ran"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn execute(engine: &Engine, namespace: &str, flow_id: &str) -> Execution {
    engine
        .create_execution(kite_engine::CreateExecution {
            namespace: namespace.into(),
            flow_id: flow_id.into(),
            ..Default::default()
        })
        .await
        .unwrap()
}

async fn running_engine(dir: &Path) -> (Engine, Runtime) {
    let engine = kite_local::open_engine(dir, EngineConfig::default()).unwrap();
    let runtime = Runtime::start(engine.clone(), 2).await.unwrap();
    (engine, runtime)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_triggers_run_the_listeners_with_the_upstream_variables() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, runtime) = running_engine(dir.path()).await;
    deploy_corpus(
        &engine,
        &[
            "trigger-flow.yaml",
            "trigger-flow-listener.yaml",
            "trigger-flow-listener-no-inputs.yaml",
            "trigger-flow-listener-namespace-condition.yaml",
        ],
    )
    .await;
    let upstream = execute(&engine, "io.kestra.tests.trigger", "trigger-flow").await;
    let up = terminated(&engine, "io.kestra.tests.trigger", "trigger-flow", 1).await;
    assert_eq!(up[0].state.current, StateType::Success);

    let listener = terminated(&engine, "io.kestra.tests.trigger", "trigger-flow-listener", 1).await;
    assert_eq!(listener.len(), 1);
    let l = &listener[0];
    assert_eq!(l.state.current, StateType::Success);
    assert_eq!(l.inputs["from-parent"], format!("from parents: {}", upstream.id));
    let vars = l.trigger.as_ref().unwrap().variables.as_ref().unwrap();
    assert_eq!(vars["executionId"], upstream.id.as_str());
    assert_eq!(vars["namespace"], "io.kestra.tests.trigger");
    assert_eq!(vars["flowId"], "trigger-flow");
    assert_eq!(vars["state"], "SUCCESS");
    assert_eq!(
        l.trigger.as_ref().unwrap().type_name,
        "io.kestra.plugin.core.trigger.Flow"
    );

    // Kestra: the namespace-condition listener runs without its required input.
    let ns = terminated(
        &engine,
        "io.kestra.tests.trigger",
        "trigger-flow-listener-namespace-condition",
        1,
    )
    .await;
    assert_eq!(ns[0].state.current, StateType::Success);
    let no_inputs = terminated(
        &engine,
        "io.kestra.tests.trigger",
        "trigger-flow-listener-no-inputs",
        1,
    )
    .await;
    assert_eq!(no_inputs[0].state.current, StateType::Success);

    // The same change delivered again (a stream redelivery) creates nothing new.
    let up = engine.get_execution(&upstream.id).await.unwrap();
    engine.execution_changed(None, &up).await.unwrap();
    engine.execution_changed(None, &up).await.unwrap();
    assert_eq!(
        executions_of(&engine, "io.kestra.tests.trigger", "trigger-flow-listener")
            .await
            .len(),
        1
    );
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_on_running_and_paused_sees_every_transition() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, runtime) = running_engine(dir.path()).await;
    deploy_corpus(
        &engine,
        &[
            "trigger-flow-with-pause.yaml",
            "trigger-flow-listener-with-pause.yaml",
        ],
    )
    .await;
    execute(
        &engine,
        "io.kestra.tests.trigger.pause",
        "trigger-flow-with-pause",
    )
    .await;
    terminated(
        &engine,
        "io.kestra.tests.trigger.pause",
        "trigger-flow-with-pause",
        1,
    )
    .await;
    let listener = terminated(
        &engine,
        "io.kestra.tests.trigger.pause",
        "trigger-flow-listener-with-pause",
        4,
    )
    .await;
    let mut states: Vec<String> = listener
        .iter()
        .map(|e| e.outputs["status"].as_str().unwrap_or_default().to_string())
        .collect();
    states.sort();
    assert_eq!(states, ["PAUSED", "RUNNING", "RUNNING", "SUCCESS"]);
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preconditions_run_the_listener_once_after_a_and_b() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, runtime) = running_engine(dir.path()).await;
    deploy_corpus(
        &engine,
        &[
            "flow-trigger-preconditions-flow-a.yaml",
            "flow-trigger-preconditions-flow-b.yaml",
            "flow-trigger-preconditions-flow-listen.yaml",
        ],
    )
    .await;
    let ns = "io.kestra.tests.trigger.preconditions";
    for (flow, n) in [
        ("flow-trigger-preconditions-flow-a", 1),
        ("flow-trigger-preconditions-flow-a", 2),
        ("flow-trigger-preconditions-flow-b", 1),
    ] {
        execute(&engine, ns, flow).await;
        terminated(&engine, ns, flow, n).await;
    }
    let listener = terminated(&engine, ns, "flow-trigger-preconditions-flow-listen", 1).await;
    // Every trigger evaluation is queued work: once the queue is empty, none is left to
    // start a second listener execution.
    quiet(&engine).await;
    assert_eq!(
        executions_of(&engine, ns, "flow-trigger-preconditions-flow-listen")
            .await
            .len(),
        1
    );
    assert_eq!(listener[0].state.current, StateType::Success);
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_after_disables_the_trigger_that_created_a_failed_execution() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at("2024-01-01T10:02:00Z");
    let engine = engine_with_clock(dir.path(), &clock, EngineConfig::default());
    let runtime = Runtime::start(engine.clone(), 2).await.unwrap();
    engine
        .create_flow(
            r#"
id: fragile
namespace: dev
tasks:
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
triggers:
  - id: every5
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "*/5 * * * *"
    stopAfter: [FAILED]
"#,
        )
        .await
        .unwrap();
    clock.set("2024-01-01T10:05:00Z");
    engine.fire_due_schedules().await.unwrap();
    let runs = terminated(&engine, "dev", "fragile", 1).await;
    assert_eq!(runs[0].state.current, StateType::Failed);
    // Bounded against a hang only.
    for _ in 0..2400 {
        if engine
            .trigger_state("dev", "fragile", "every5")
            .await
            .unwrap()
            .disabled
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        engine
            .trigger_state("dev", "fragile", "every5")
            .await
            .unwrap()
            .disabled
    );
    clock.set("2024-01-01T10:10:00Z");
    engine.fire_due_schedules().await.unwrap();
    assert_eq!(executions_of(&engine, "dev", "fragile").await.len(), 1);
    runtime.shutdown().await;
}

#[tokio::test]
async fn the_corpus_schedule_flow_fires_every_minute_and_every_five() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at("2024-03-01T09:59:30Z");
    let engine = engine_with_clock(dir.path(), &clock, EngineConfig::default());
    deploy_corpus(&engine, &["schedule-trigger.yaml"]).await;
    // Ten minutes, one tick per minute as the local scheduler would wake.
    for minute in 0..10 {
        clock.set(&format!("2024-03-01T10:{minute:02}:00Z"));
        engine.fire_due_schedules().await.unwrap();
    }
    let runs = executions_of(&engine, "io.kestra.tests.schedule", "schedule-trigger").await;
    let per_trigger = |id: &str| {
        runs.iter()
            .filter(|e| e.trigger.as_ref().unwrap().id == id)
            .count()
    };
    assert_eq!(per_trigger("schedule-every-min"), 10);
    assert_eq!(per_trigger("schedule-5-min"), 2);
    assert_eq!(runs.len(), 12);
}

#[tokio::test]
async fn a_scheduled_date_whose_inputs_do_not_validate_gives_a_failed_execution_that_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at("2024-01-01T10:02:00Z");
    let engine = engine_with_clock(dir.path(), &clock, EngineConfig::default());
    engine
        .create_flow(
            r#"
id: needs-input
namespace: dev
inputs:
  - id: count
    type: INT
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ inputs.count }}"
triggers:
  - id: every5
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "*/5 * * * *"
    inputs:
      count: "not a number"
"#,
        )
        .await
        .unwrap();
    clock.set("2024-01-01T10:05:00Z");
    engine.fire_due_schedules().await.unwrap();
    let runs = executions_of(&engine, "dev", "needs-input").await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].state.current, StateType::Failed);
    let logs = engine
        .logs(&kite_engine::ports::LogQuery {
            execution_id: runs[0].id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        logs.iter()
            .any(|l| l.level == LogLevel::Error && l.message.contains("count")),
        "{logs:?}"
    );
    // The date is handled: the next tick does not try it again.
    engine.fire_due_schedules().await.unwrap();
    assert_eq!(executions_of(&engine, "dev", "needs-input").await.len(), 1);
}

#[tokio::test]
async fn an_engine_with_a_cache_ttl_sees_flows_written_by_another_process() {
    // Two processes over one store, as Lambdas over one table: the api writes flows,
    // the stream function evaluates Flow triggers.
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at("2024-01-01T10:00:00Z");
    let api = engine_with_clock(dir.path(), &clock, EngineConfig::default());
    let stream = engine_with_clock(
        dir.path(),
        &clock,
        EngineConfig {
            cache_ttl: Some(Duration::ZERO),
            flow_triggers_in_queue: false,
            ..EngineConfig::default()
        },
    );
    deploy_corpus(&api, &["trigger-flow.yaml"]).await;
    let upstream = execute(&api, "io.kestra.tests.trigger", "trigger-flow").await;
    // The stream function has seen the flows once already.
    stream.execution_changed(None, &upstream).await.unwrap();
    deploy_corpus(&api, &["trigger-flow-listener-no-inputs.yaml"]).await;
    let mut done = upstream.clone();
    done.state.set(StateType::Running, clock.now());
    done.state.set(StateType::Success, clock.now());
    stream.execution_changed(Some(&upstream), &done).await.unwrap();
    let listeners = executions_of(&api, "io.kestra.tests.trigger", "trigger-flow-listener-no-inputs").await;
    assert_eq!(listeners.len(), 1);
}
