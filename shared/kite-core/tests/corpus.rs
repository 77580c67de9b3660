//! Kestra's own test flows (tests/kestra-flows) run through the in-memory
//! runner, each checked against what Kestra's test suite asserts for it.
//!
//! One test runs every case, prints a table of failures and a closing line
//! `corpus: N passed, N failed, N skipped`, and fails if any case fails.
//! Behaviour that belongs to the HTTP layer or to triggers (schedules, flow
//! triggers, preconditions, concurrency across executions) is listed as
//! skipped here with the tests that check it (the corpus test fails if one of
//! them is gone), or as not implemented: one execution in the core cannot
//! observe it.

// The corpus of flows is read from disk by the tests, never by the core.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};

use common::*;
use indexmap::IndexMap;
use kite_core::execution::{ExecutionTrigger, Label, StateType};
use kite_core::flow::{parse_flow, Flow};
use kite_core::input::InputValue;
use kite_core::runner::{ExecuteRequest, Outcome, Runner};
use serde_json::{json, Value};

use StateType::{Cancelled, Created, Failed, Killed, Paused, Restarted, Running, Skipped, Success, Warning};

const CORPUS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/kestra-flows");
const BENCH_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/bench");
const ROOT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

type CaseFn = Box<dyn Fn(&mut Runner) -> Check>;

struct Case {
    name: String,
    file: &'static str,
    run: CaseFn,
}

struct SkipEntry {
    file: &'static str,
    what: &'static str,
    /// The tests that check it: (test file from the repository root, test function). The
    /// corpus test fails if one of them is not there.
    checked_by: &'static [(&'static str, &'static str)],
    /// The part Kite does not implement, if any.
    not_implemented: Option<&'static str>,
}

const API: &str = "shared/kite-api/tests/api.rs";
const TRIGGERS: &str = "shared/kite-local/tests/triggers.rs";
const ENGINE: &str = "shared/kite-local/tests/engine.rs";

fn skipped() -> Vec<SkipEntry> {
    vec![
        SkipEntry {
            file: "minimal.yaml",
            what: "API: delete, replay, labels, url, scheduleDate, change-status",
            checked_by: &[
                (API, "follow_restart_replay_labels_and_delete"),
                (
                    API,
                    "without_a_configured_url_executions_link_to_the_url_the_caller_used",
                ),
                (API, "schedule_date_delays_the_start"),
            ],
            not_implemented: Some("change-status (`POST /executions/{id}/change-status`)"),
        },
        SkipEntry {
            file: "inputs.yaml",
            what: "API multipart create (422 body, labels query)",
            checked_by: &[
                (API, "errors_have_kestras_shape"),
                (API, "revisions_labels_and_urlencoded_inputs"),
            ],
            not_implemented: None,
        },
        SkipEntry {
            file: "inputs-small-files.yaml",
            what: "API multipart `files` part upload",
            checked_by: &[(API, "file_inputs_new_and_legacy_forms")],
            not_implemented: None,
        },
        SkipEntry {
            file: "sleep.yml",
            what: "kill/pause of a RUNNING execution through the API",
            checked_by: &[(API, "bounded_answers_end_in_time"), (API, "search_and_kill")],
            not_implemented: Some("pause of a RUNNING execution (`POST /executions/{id}/pause`)"),
        },
        SkipEntry {
            file: "webhook.yaml",
            what: "webhook status codes, body/parameter parsing, 404 on unknown flow",
            checked_by: &[(API, "webhooks")],
            not_implemented: None,
        },
        SkipEntry {
            file: "webhook-dynamic-key.yaml",
            what: "rendered webhook key matching",
            checked_by: &[(API, "webhook_keys_are_rendered")],
            not_implemented: None,
        },
        SkipEntry {
            file: "webhook-with-condition.yaml",
            what: "204 when the condition is false",
            checked_by: &[(API, "webhook_conditions_answer_204_when_false")],
            not_implemented: None,
        },
        SkipEntry {
            file: "schedule-trigger.yaml",
            what: "one execution per minute / per 5 minutes",
            checked_by: &[(
                TRIGGERS,
                "the_corpus_schedule_flow_fires_every_minute_and_every_five",
            )],
            not_implemented: None,
        },
        SkipEntry {
            file: "switch.yaml",
            what: "hourly Schedule trigger",
            checked_by: &[
                (TRIGGERS, "a_schedule_fires_each_date_once_with_its_variables"),
                (
                    TRIGGERS,
                    "backfill_through_the_api_fires_its_range_with_its_inputs",
                ),
            ],
            not_implemented: None,
        },
        SkipEntry {
            file: "task-flow.yaml",
            what: "hourly Schedule trigger",
            checked_by: &[
                (TRIGGERS, "a_schedule_fires_each_date_once_with_its_variables"),
                (
                    TRIGGERS,
                    "backfill_through_the_api_fires_its_range_with_its_inputs",
                ),
            ],
            not_implemented: None,
        },
        SkipEntry {
            file: "flow-concurrency-queue.yml",
            what: "second execution QUEUED while the first runs",
            checked_by: &[(ENGINE, "the_concurrency_limit_queues_then_starts_executions")],
            not_implemented: None,
        },
        SkipEntry {
            file: "trigger-flow.yaml",
            what: "listeners fired on SUCCESS",
            checked_by: &[(
                TRIGGERS,
                "flow_triggers_run_the_listeners_with_the_upstream_variables",
            )],
            not_implemented: None,
        },
        SkipEntry {
            file: "trigger-flow-listener.yaml",
            what: "trigger conditions and rendered trigger inputs",
            checked_by: &[(
                TRIGGERS,
                "flow_triggers_run_the_listeners_with_the_upstream_variables",
            )],
            not_implemented: None,
        },
        SkipEntry {
            file: "trigger-flow-listener-no-inputs.yaml",
            what: "trigger conditions",
            checked_by: &[(
                TRIGGERS,
                "flow_triggers_run_the_listeners_with_the_upstream_variables",
            )],
            not_implemented: None,
        },
        SkipEntry {
            file: "trigger-flow-listener-namespace-condition.yaml",
            what: "namespace condition; required input not validated for flow triggers",
            checked_by: &[(
                TRIGGERS,
                "flow_triggers_run_the_listeners_with_the_upstream_variables",
            )],
            not_implemented: None,
        },
        SkipEntry {
            file: "trigger-flow-listener-with-pause.yaml",
            what: "4 executions on RUNNING, PAUSED, RUNNING, SUCCESS",
            checked_by: &[(TRIGGERS, "a_listener_on_running_and_paused_sees_every_transition")],
            not_implemented: None,
        },
        SkipEntry {
            file: "flow-trigger-preconditions-flow-listen.yaml",
            what: "preconditions window over flow-a and flow-b",
            checked_by: &[(TRIGGERS, "preconditions_run_the_listener_once_after_a_and_b")],
            not_implemented: None,
        },
    ]
}

/// The tests a skip entry names that are not in their file.
fn missing_checks(skipped: &[SkipEntry]) -> Vec<String> {
    let mut missing = Vec::new();
    for s in skipped {
        for (path, test) in s.checked_by {
            let source = std::fs::read_to_string(format!("{ROOT_DIR}/{path}")).unwrap_or_default();
            let declared = [format!("async fn {test}("), format!("\nfn {test}(")];
            if !declared.iter().any(|d| source.contains(d.as_str())) {
                missing.push(format!("{}: {path} has no test `{test}`", s.file));
            }
        }
    }
    missing
}

/// Every flow file of the corpus (and benchmark01), parsed once.
/// Parsed flows by file name, and the files that did not parse with why.
type Loaded = (Vec<(String, Flow)>, Vec<(String, String)>);

fn load_flows() -> Loaded {
    let mut flows = Vec::new();
    let mut errors = Vec::new();
    for dir in [CORPUS_DIR, BENCH_DIR] {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("corpus directory {dir}: {e}"))
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| matches!(p.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")))
            .collect();
        entries.sort();
        for path in entries {
            let file = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            let source = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
            match parse_flow(&source) {
                Ok(flow) => flows.push((file, flow)),
                Err(errs) => {
                    let msgs: Vec<String> = errs
                        .iter()
                        .map(|e| format!("{} ({})", e.message, e.path))
                        .collect();
                    errors.push((file, msgs.join("; ")));
                }
            }
        }
    }
    (flows, errors)
}

fn trigger(id: &str, type_name: &str, variables: Value) -> ExecutionTrigger {
    let variables = match variables {
        Value::Object(map) => map.into_iter().collect(),
        _ => IndexMap::new(),
    };
    ExecutionTrigger {
        id: id.to_string(),
        type_name: type_name.to_string(),
        variables: Some(variables),
        log_file: None,
    }
}

fn run_with(
    r: &mut Runner,
    namespace: &str,
    flow_id: &str,
    inputs: IndexMap<String, InputValue>,
    labels: &[(&str, &str)],
    trigger: Option<ExecutionTrigger>,
) -> Result<Outcome, String> {
    let request = ExecuteRequest {
        inputs,
        labels: labels
            .iter()
            .map(|(k, v)| Label {
                key: k.to_string(),
                value: v.to_string(),
            })
            .collect(),
        trigger,
        ..Default::default()
    };
    r.execute_with(namespace, flow_id, request)
        .map_err(|e| format!("execute {namespace}.{flow_id}: {e}"))
}

const WEBHOOK: &str = "io.kestra.plugin.core.trigger.Webhook";
const FLOW: &str = "io.kestra.plugin.core.trigger.Flow";
const SCHEDULE_TYPE: &str = "io.kestra.plugin.core.trigger.Schedule";
const SUBFLOW: &str = "io.kestra.plugin.core.flow.Subflow";

/// The typed input set of Kestra's `InputsTest.inputs`, as form strings.
fn standard_inputs(file_uri: &str) -> IndexMap<String, InputValue> {
    text(&[
        ("string", "myString"),
        ("enum", "ENUM_VALUE"),
        ("int", "42"),
        ("bool", "false"),
        ("float", "42.42"),
        ("instant", "2019-10-06T18:27:49Z"),
        ("date", "2019-10-06"),
        ("time", "18:27:49"),
        ("duration", "PT5M6S"),
        ("file", file_uri),
        ("json", "{\"a\": \"b\"}"),
        ("uri", "https://www.google.com"),
        ("nested.string", "a string"),
        ("nested.more.int", "123"),
        ("nested.bool", "true"),
        ("validatedString", "A123"),
        ("validatedInt", "12"),
        ("validatedDate", "2023-06-01"),
        ("validatedDateTime", "2023-06-01T01:00:00Z"),
        ("validatedDuration", "PT15S"),
        ("validatedFloat", "0.42"),
        ("validatedTime", "11:27:49"),
        ("secret", "secret"),
        ("array", "[1, 2, 3]"),
        ("yaml", "some: property\nalist:\n- of\n- values"),
    ])
}

const INPUT_FILE: &str =
    "kestra:///io/kestra/tests/inputs/executions/upload/inputs/file/application-test.yml";

fn cases() -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    macro_rules! case {
        ($name:expr, $file:expr, $body:expr) => {
            cases.push(Case {
                name: $name.to_string(),
                file: $file,
                run: Box::new($body),
            });
        };
    }

    // --- simple tasks -------------------------------------------------------------
    case!("minimal", "minimal.yaml", |r: &mut Runner| {
        let o = run(r, "minimal", none())?;
        let e = &o.execution;
        expect(e, Success, 1)?;
        expect_prefix_then_start_date(one(e, "date")?, "")?;
        // system.* flow labels are not copied; the correlation id is added.
        expect_labels(e, &[("system.correlationId", &e.id)])
    });
    case!("return", "return.yaml", |r: &mut Runner| {
        let o = run(r, "return", none())?;
        let e = &o.execution;
        expect(e, Success, 3)?;
        expect_prefix_then_start_date(one(e, "date")?, "")?;
        expect_value(e, "task-id", "task-id")?;
        expect_value(e, "flow-id", "return")
    });
    case!("logs", "logs.yaml", |r: &mut Runner| {
        let o = run(r, "logs", none())?;
        let e = &o.execution;
        expect(e, Success, 5)?;
        for t in ["t1", "t2", "t3", "t4", "t5"] {
            expect_run_state(e, t, Success)?;
        }
        expect_logs(&o, "t1", &[("TRACE", "first t1")])?;
        expect_logs(&o, "t2", &[("WARN", "second io.kestra.plugin.core.log.Log")])?;
        expect_logs(&o, "t3", &[("ERROR", "third logs")])?;
        expect_logs(&o, "t4", &[])?;
        expect_logs(&o, "t5", &[("INFO", "five first"), ("INFO", "five second")])?;
        expect_labels(
            e,
            &[
                ("country", "FR"),
                ("region", "Nord"),
                ("system.correlationId", &e.id),
            ],
        )
    });
    case!("full", "full.yaml", |r: &mut Runner| {
        let o = run(r, "full", none())?;
        let e = &o.execution;
        expect(e, Success, 13)?;
        expect_value(e, "t2", "second value1")?;
        expect_logs(&o, "t3", &[("INFO", "third all optional args second value1")])?;
        expect_logs(&o, "t5-t1", &[("INFO", &format!("t5-t1 {}", e.id))])?;
        expect_logs(
            &o,
            "t5-t4-t1-t1-t1-last",
            &[("INFO", &format!("t5-t5-t1-t1-t1-last : {}", e.id))],
        )?;
        expect_labels(
            e,
            &[
                ("key1", "value1"),
                ("key2", "value2"),
                ("system.correlationId", &e.id),
            ],
        )
    });
    case!("execution-start-date", "execution.yaml", |r: &mut Runner| {
        let o = run(r, "execution-start-date", none())?;
        let e = &o.execution;
        expect(e, Success, 1)?;
        let v = value_of(e, "hello")?;
        let date = parse_date("`hello` value", &v)?;
        expect_eq("execution.startDate", Some(date), e.state.start_date)
    });
    case!("output-values", "output-values.yml", |r: &mut Runner| {
        let o = run(r, "output-values", none())?;
        let e = &o.execution;
        expect(e, Success, 1)?;
        let values = output(one(e, "return")?, "values")?;
        expect_eq("values.output1", &values["output1"], &json!("xyz"))?;
        expect_eq("values.output2", &values["output2"], &json!("abc"))?;
        let info = values["taskInfo"].as_str().unwrap_or_default();
        let date = info
            .strip_prefix("return > ")
            .ok_or(format!("taskInfo {info:?}"))?;
        expect_eq(
            "taskInfo date",
            Some(parse_date("taskInfo", date)?),
            one(e, "return")?.state.start_date,
        )
    });

    // --- sequential, parallel, errors ----------------------------------------------
    case!("sequential", "sequential.yaml", |r: &mut Runner| {
        let o = run(r, "sequential", none())?;
        let e = &o.execution;
        expect(e, Success, 11)?;
        let order: Vec<&str> = e.task_runs().iter().map(|t| t.task_id.as_str()).collect();
        expect_eq(
            "task-run order",
            order,
            vec![
                "1-seq",
                "1-1",
                "1-2",
                "1-3_seq",
                "1-3-1",
                "1-3-2_seq",
                "1-3-2-1",
                "1-3-2-2_end",
                "1-3-3_end",
                "1-4_end",
                "2_end",
            ],
        )?;
        let t = one(e, "1-2")?;
        expect_eq("`1-2` value", value(t)?, format!("1-2 > {}", t.id))?;
        expect_prefix_then_start_date(one(e, "2_end")?, "2_end > ")?;
        // each sequential task starts once the previous one ended
        let first_end = one(e, "1-1")?.state.end_date;
        let second_start = one(e, "1-2")?.state.start_date;
        if first_end > second_start {
            return Err(format!(
                "`1-2` started ({second_start:?}) before `1-1` ended ({first_end:?})"
            ));
        }
        Ok(())
    });
    for (flow, file) in [
        (
            "sequential-with-global-errors",
            "sequential-with-global-errors.yaml",
        ),
        (
            "sequential-with-local-errors",
            "sequential-with-local-errors.yaml",
        ),
    ] {
        case!(flow, file, move |r: &mut Runner| {
            let o = run(r, flow, none())?;
            let e = &o.execution;
            expect(e, Failed, 6)?;
            expect_runs(
                e,
                &[
                    ("parent-seq", Failed),
                    ("t1", Success),
                    ("t2_seq", Failed),
                    ("t2-t1", Failed),
                    ("error-t1", Success),
                    ("error-t2", Success),
                ],
            )?;
            expect_value(e, "error-t1", "Error Trigger ! error-t1")?;
            expect_absent(e, "t2-t2")
        });
    }
    case!("parallel", "parallel.yaml", |r: &mut Runner| {
        let o = run(r, "parallel", none())?;
        let e = &o.execution;
        expect(e, Success, 8)?;
        for t in ["t1", "t2", "t3", "t4", "t5", "t6"] {
            expect_logs(&o, t, &[("INFO", t)])?;
        }
        expect_prefix_then_start_date(one(e, "last")?, "last > ")?;
        // `last` waits for the whole Parallel
        let parent_end = one(e, "parent")?.state.end_date;
        if parent_end > one(e, "last")?.state.start_date {
            return Err("`last` started before `parent` ended".into());
        }
        Ok(())
    });
    case!("parallel-nested", "parallel-nested.yaml", |r: &mut Runner| {
        let o = run(r, "parallel-nested", none())?;
        let e = &o.execution;
        expect(e, Success, 11)?;
        let t = one(e, "1-3-2-2_end")?;
        expect_eq(
            "`1-3-2-2_end` value",
            value(t)?,
            format!("1-3-2-2_end > {}", t.id),
        )?;
        expect_prefix_then_start_date(one(e, "2_end")?, "2_end > ")
    });
    case!("errors", "errors.yaml", |r: &mut Runner| {
        let o = run(r, "errors", none())?;
        let e = &o.execution;
        expect(e, Failed, 7)?;
        expect_run_state(e, "failed", Failed)?;
        expect_logs(&o, "t2", &[("INFO", "- task: failed, message: Task failure")])?;
        expect_logs(
            &o,
            "t3-t1-t1-t1-last",
            &[("INFO", "t3-t1-t1-t1-last : t3-t1-t1-t1-last")],
        )
    });
    case!("failed-first", "failed-first.yaml", |r: &mut Runner| {
        let o = run(r, "failed-first", none())?;
        let e = &o.execution;
        expect(e, Failed, 1)?;
        expect_run_state(e, "t1", Failed)?;
        expect_log_containing(
            &o,
            "Unable to find `missingVar` used in the expression `{{missingVar}}`",
        )
    });

    // --- If / Switch ---------------------------------------------------------------
    case!("if[true,false,true]", "if.yaml", |r: &mut Runner| {
        let o = run(
            r,
            "if",
            text(&[("if1", "true"), ("if2", "false"), ("if3", "true")]),
        )?;
        let e = &o.execution;
        expect(e, Success, 12)?;
        one(e, "if-1-log")?;
        expect_absent(e, "if-2-log")?;
        one(e, "if-3-log")?;
        expect_eq(
            "if-2 evaluationResult",
            output(one(e, "if-2")?, "evaluationResult").ok(),
            Some(json!(false)),
        )
    });
    for (param, then) in [
        ("true", true),
        ("1", true),
        ("false", false),
        ("0", false),
        ("-0", false),
    ] {
        case!(
            format!("if-condition[{param}]"),
            "if-condition.yaml",
            move |r: &mut Runner| {
                let o = run(r, "if-condition", text(&[("param", param)]))?;
                let e = &o.execution;
                expect(e, Success, 2)?;
                let (ran, not) = if then {
                    ("when-true", "when-false")
                } else {
                    ("when-false", "when-true")
                };
                expect_run_state(e, ran, Success)?;
                expect_absent(e, not)?;
                let msg = if then {
                    "Condition was true"
                } else {
                    "Condition was false"
                };
                expect_logs(&o, ran, &[("INFO", msg)])
            }
        );
    }
    for (param, count) in [("true", 2), ("false", 1)] {
        case!(
            format!("if-without-else[{param}]"),
            "if-without-else.yaml",
            move |r: &mut Runner| {
                let o = run(r, "if-without-else", text(&[("param", param)]))?;
                let e = &o.execution;
                expect(e, Success, count)?;
                if count == 2 {
                    expect_run_state(e, "when-true", Success)
                } else {
                    expect_absent(e, "when-true")
                }
            }
        );
    }
    case!("if-in-flowable", "if-in-flowable.yaml", |r: &mut Runner| {
        let o = run(r, "if-in-flowable", text(&[("param", "x")]))?;
        let e = &o.execution;
        expect(e, Success, 8)?;
        let after = one(e, "after_if")?;
        expect_eq("after_if value", value(after)?, "After if: value 2".to_string())?;
        for v in ["value 1", "value 2", "value 3"] {
            expect_eq(
                "before_if value",
                value(at(e, "before_if", &[v])?)?,
                format!("Before if: {v}"),
            )?;
        }
        expect_eq(
            "after_if iteration",
            value_path(e, after),
            vec!["value 2".to_string()],
        )
    });
    case!("switch[FIRST]", "switch.yaml", |r: &mut Runner| {
        let o = run(r, "switch", text(&[("string", "FIRST")]))?;
        let e = &o.execution;
        expect(e, Success, 2)?;
        expect_eq(
            "2nd task run",
            e.task_runs().get(1).map(|t| t.task_id.as_str()),
            Some("t1"),
        )?;
        let sw = one(e, "parent-seq")?;
        expect_eq("switch value", output(sw, "value")?, json!("FIRST"))?;
        expect_eq("switch defaults", output(sw, "defaults")?, json!(false))?;
        expect_prefix_then_start_date(one(e, "t1")?, "t1 > ")?;
        expect_labels(
            e,
            &[("switchFlowLabel", "switchFoo"), ("system.correlationId", &e.id)],
        )
    });
    case!("switch[SECOND]", "switch.yaml", |r: &mut Runner| {
        let o = run(r, "switch", text(&[("string", "SECOND")]))?;
        let e = &o.execution;
        expect(e, Success, 3)?;
        expect_runs(
            e,
            &[("parent-seq", Success), ("t2", Success), ("t2_sub", Success)],
        )
    });
    case!("switch[THIRD]", "switch.yaml", |r: &mut Runner| {
        let o = run(r, "switch", text(&[("string", "THIRD")]))?;
        let e = &o.execution;
        expect(e, Failed, 4)?;
        expect_runs(
            e,
            &[
                ("parent-seq", Failed),
                ("t3", Failed),
                ("failed", Failed),
                ("error-t1", Success),
            ],
        )?;
        expect_value(e, "error-t1", "Error Trigger ! error-t1")
    });
    case!("switch[DEFAULT]", "switch.yaml", |r: &mut Runner| {
        let o = run(r, "switch", text(&[("string", "DEFAULT")]))?;
        let e = &o.execution;
        expect(e, Success, 2)?;
        let sw = one(e, "parent-seq")?;
        expect_eq("switch value", output(sw, "value")?, json!("DEFAULT"))?;
        expect_eq("switch defaults", output(sw, "defaults")?, json!(true))?;
        expect_prefix_then_start_date(one(e, "default")?, "default > amazing > ")
    });
    case!("switch-impossible", "switch-impossible.yaml", |r: &mut Runner| {
        let o = run(r, "switch-impossible", text(&[("string", "YES")]))?;
        let e = &o.execution;
        expect(e, Failed, 1)?;
        expect_run_state(e, "impossible", Failed)
    });
    case!(
        "fail-on-condition[fail]",
        "fail-on-condition.yaml",
        |r: &mut Runner| {
            let o = run(r, "fail-on-condition", text(&[("param", "fail")]))?;
            let e = &o.execution;
            expect(e, Failed, 2)?;
            expect_runs(e, &[("before", Success), ("fail", Failed)])?;
            expect_logs(&o, "before", &[("INFO", "I'm before the fail on condition")])
        }
    );
    case!(
        "fail-on-condition[success]",
        "fail-on-condition.yaml",
        |r: &mut Runner| {
            let o = run(r, "fail-on-condition", text(&[("param", "success")]))?;
            let e = &o.execution;
            expect(e, Success, 3)?;
            expect_runs(e, &[("before", Success), ("fail", Success), ("after", Success)])
        }
    );
    case!("fail-on-switch[fail]", "fail-on-switch.yaml", |r: &mut Runner| {
        let o = run(r, "fail-on-switch", text(&[("param", "fail")]))?;
        let e = &o.execution;
        expect(e, Failed, 1)?;
        expect_run_state(e, "switch", Failed)
    });

    // --- ForEach / EachSequential / EachParallel ----------------------------------
    case!(
        "each-sequential-nested",
        "each-sequential-nested.yaml",
        |r: &mut Runner| {
            let o = run(r, "each-sequential-nested", none())?;
            let e = &o.execution;
            expect(e, Success, 23)?;
            for s in ["s1", "s2", "s3"] {
                expect_prefix_then_start_date(at(e, "1-1_return", &[s])?, &format!("1-1_return > {s} > "))?;
                for a in ["a a", "b b"] {
                    expect_prefix_then_start_date(
                        at(e, "1-2-1_return", &[s, a])?,
                        &format!("1-2-1_return > {a} > "),
                    )?;
                    // always the s1 branch: `outputs['1-2-1_return'].s1[taskrun.value]`
                    let x = value(at(e, "1-2-1_return", &["s1", a])?)?;
                    expect_prefix_then_start_date(
                        at(e, "1-2-2_return", &[s, a])?,
                        &format!("1-2-2_return > {x} >> get {x} > "),
                    )?;
                }
                let first = value(at(e, "1-1_return", &[s])?)?;
                expect_prefix_then_start_date(
                    at(e, "1-3_return", &[s])?,
                    &format!("1-3_return > {first} > "),
                )?;
            }
            let x = value(at(e, "1-2-1_return", &["s1", "a a"])?)?;
            expect_value(e, "2_return", &format!("2_return > {x}"))
        }
    );
    case!("each-null", "each-null.yaml", |r: &mut Runner| {
        let o = run(r, "each-null", none())?;
        let e = &o.execution;
        expect(e, Failed, 1)?;
        expect_run_state(e, "1_each", Failed)?;
        expect_log_containing(
            &o,
            "Found '1' null values on Each, with values=[1, null, {key=my-key, value=my-value}]",
        )
    });
    case!("each-empty", "each-empty.yaml", |r: &mut Runner| {
        let o = run(r, "each-empty", none())?;
        let e = &o.execution;
        expect(e, Success, 2)?;
        expect_runs(e, &[("1_each", Success), ("2_end", Success)])
    });
    case!("each-object", "each-object.yaml", |r: &mut Runner| {
        let o = run(r, "each-object", none())?;
        let e = &o.execution;
        expect(e, Success, 8)?;
        expect_eq(
            "not-json value",
            value_of(e, "not-json")?,
            "not-json > STRING > value 1".to_string(),
        )?;
        let mut json_values: Vec<String> = runs(e, "json").iter().filter_map(|t| value(t).ok()).collect();
        json_values.sort();
        expect_eq(
            "json values",
            json_values,
            vec![
                "json > JSON > [\"my-complex\"] > [{\"sub\":1,\"bool\":true}]".to_string(),
                "json > JSON > [\"my-key\"] > [\"my-value\"]".to_string(),
            ],
        )?;
        expect_eq(
            "7th task run",
            e.task_runs()
                .get(6)
                .and_then(|t| value(t).ok())
                .map(|v| v.contains("json > JSON > [\"my-complex\"]")),
            Some(true),
        )
    });
    case!("each-switch", "each-switch.yaml", |r: &mut Runner| {
        let o = run(r, "each-switch", none())?;
        let e = &o.execution;
        expect(e, Success, 12)?;
        expect_eq(
            "letter-a",
            value(at(e, "2-1_switch-letter-a", &["a"])?)?,
            "2-1_switch-letter-a".to_string(),
        )?;
        expect_eq(
            "(b,1)",
            value(at(e, "2-1-1_switch-number-1", &["b", "1"])?)?,
            "1".to_string(),
        )?;
        expect_eq(
            "(b,2)",
            value(at(e, "2-1-1_switch-number-2", &["b", "2"])?)?,
            "2 b".to_string(),
        )
    });
    case!("each-parallel", "each-parallel.yaml", |r: &mut Runner| {
        let o = run(r, "each-parallel", none())?;
        let e = &o.execution;
        expect(e, Success, 8)?;
        expect_logs(&o, "1-1", &[("INFO", "1-1"), ("INFO", "1-1"), ("INFO", "1-1")])?;
        for v in ["value 1", "value 2", "value 3"] {
            at(e, "1-2", &[v])?;
        }
        expect_prefix_then_start_date(one(e, "2_end")?, "2_end > ")
    });
    case!(
        "each-parallel-nested",
        "each-parallel-nested.yaml",
        |r: &mut Runner| {
            let o = run(r, "each-parallel-nested", none())?;
            let e = &o.execution;
            expect(e, Success, 11)?;
            let mut lines: Vec<String> = logs_of(&o, &e.id, "2-1-1_t1")
                .into_iter()
                .map(|(_, m)| m)
                .collect();
            lines.sort();
            // `{task.id}}` is not an expression: it stays as written
            expect_eq(
                "2-1-1_t1 logs",
                lines,
                vec![
                    "{task.id}} > value 1".to_string(),
                    "{task.id}} > value 2".to_string(),
                    "{task.id}} > value 3".to_string(),
                ],
            )?;
            at(e, "2-1-2_t2", &["value 3"]).map(|_| ())
        }
    );
    case!(
        "foreach-concurrent",
        "foreach-concurrent.yaml",
        |r: &mut Runner| {
            let o = run(r, "foreach-concurrent", none())?;
            let e = &o.execution;
            expect(e, Success, 7)?;
            let mut lines: Vec<String> = logs_of(&o, &e.id, "log").into_iter().map(|(_, m)| m).collect();
            lines.sort();
            expect_eq(
                "log lines",
                lines,
                vec![
                    "Processing value 1".to_string(),
                    "Processing value 2".to_string(),
                    "Processing value 3".to_string(),
                ],
            )
        }
    );
    case!(
        "foreach-concurrent-parallel",
        "foreach-concurrent-parallel.yaml",
        |r: &mut Runner| {
            let o = run(r, "foreach-concurrent-parallel", none())?;
            let e = &o.execution;
            expect(e, Success, 10)?;
            for v in ["value 1", "value 2", "value 3"] {
                at(e, "parallel", &[v])?;
                at(e, "shell", &[v])?;
            }
            Ok(())
        }
    );
    case!("test-current-output", "current-output.yaml", |r: &mut Runner| {
        let o = run(r, "test-current-output", none())?;
        let e = &o.execution;
        expect(e, Success, 32)?;
        for a in ["v11", "v12"] {
            for b in ["v21", "v22"] {
                for c in ["v31", "v32"] {
                    expect_eq(
                        &format!("1-1-1_return at {a},{b},{c}"),
                        value(at(e, "1-1-1_return", &[a, b, c])?)?,
                        format!("return-{a}-{b}-{c}"),
                    )?;
                }
            }
        }
        for v in ["v41", "v42"] {
            expect_eq(
                "2-1_return",
                value(at(e, "2-1_return", &[v])?)?,
                format!("return-{v}"),
            )?;
        }
        let id = one(e, "2-1-1_output")?.id.clone();
        expect_value(e, "2-1-1_return", &format!("return-{id}"))
    });
    case!(
        "flowable-with-parent-fail",
        "flowable-with-parent-fail.yaml",
        |r: &mut Runner| {
            let o = run(r, "flowable-with-parent-fail", none())?;
            let e = &o.execution;
            expect(e, Failed, 5)?;
            expect_run_state(e, "if", Failed)?;
            expect_absent(e, "when-true")?;
            expect_absent(e, "when-false")
        }
    );

    // --- disabled tasks ------------------------------------------------------------
    case!("disable-simple", "disable-simple.yaml", |r: &mut Runner| {
        let o = run(r, "disable-simple", none())?;
        let e = &o.execution;
        expect(e, Success, 2)?;
        expect_absent(e, "t2")?;
        expect_logs(&o, "t1", &[("TRACE", "first t1")])?;
        expect_logs(&o, "t3", &[("ERROR", "third disable-simple")])
    });
    case!("disable-flowable", "disable-flowable.yaml", |r: &mut Runner| {
        let o = run(r, "disable-flowable", none())?;
        let e = &o.execution;
        expect(e, Success, 10)?;
        for t in ["1-each-2", "2-parallel-2", "3-sequential-2", "4-switch-case-2"] {
            expect_absent(e, t)?;
        }
        expect_eq("1-each-1 runs", runs(e, "1-each-1").len(), 3)
    });
    case!("disable-error", "disable-error.yaml", |r: &mut Runner| {
        let o = run(r, "disable-error", none())?;
        let e = &o.execution;
        expect(e, Failed, 3)?;
        expect_runs(e, &[("failed", Failed), ("t2", Success), ("t4", Success)])?;
        expect_logs(&o, "t4", &[("INFO", "fourth t4")])
    });

    // --- flow outputs, runIf -------------------------------------------------------
    case!("flow-with-outputs", "flow-with-outputs.yml", |r: &mut Runner| {
        let o = run(r, "flow-with-outputs", none())?;
        let e = &o.execution;
        expect(e, Success, 1)?;
        expect_eq(
            "outputs",
            json!(e.outputs),
            json!({"key": "{\"value\":\"flow-with-outputs\"}"}),
        )
    });
    case!(
        "flow-with-outputs-failed",
        "flow-with-outputs-failed.yml",
        |r: &mut Runner| {
            let o = run(r, "flow-with-outputs-failed", none())?;
            let e = &o.execution;
            expect_state(e, Failed)?;
            expect_eq("outputs", e.outputs.len(), 0)
        }
    );
    case!(
        "flow-with-array-outputs",
        "flow-with-array-outputs.yml",
        |r: &mut Runner| {
            let o = run(r, "flow-with-array-outputs", none())?;
            let e = &o.execution;
            expect(e, Success, 1)?;
            expect_eq(
                "outputs.myout",
                e.outputs.get("myout").cloned(),
                Some(json!(["1rstValue", "2ndValue"])),
            )
        }
    );
    case!("task-runif", "task-runif.yml", |r: &mut Runner| {
        let o = run(r, "task-runif", none())?;
        let e = &o.execution;
        expect(e, Failed, 4)?;
        expect_runs(
            e,
            &[
                ("output", Success),
                ("executed", Success),
                ("notexecuted", Skipped),
                ("willfailedtheflow", Failed),
            ],
        )?;
        expect_logs(&o, "executed", &[("INFO", "success")])?;
        expect_logs(&o, "notexecuted", &[])
    });

    // --- inputs and variables ------------------------------------------------------
    case!("inputs", "inputs.yaml", |r: &mut Runner| {
        r.add_file(INPUT_FILE, b"kestra:\n  url: http://localhost\n".to_vec());
        let o = run(r, "inputs", standard_inputs(INPUT_FILE))?;
        let e = &o.execution;
        expect(e, Success, 14)?;
        expect_value(e, "string", "myString")?;
        expect_value(e, "optional", "")?;
        expect_value(e, "int", "42")?;
        expect_value(e, "float", "42.42")?;
        expect_value(e, "instant", "2019-10-06T18:27:49Z")?;
        expect_value(e, "file", INPUT_FILE)?;
        expect_value(e, "secret", "secret")?;
        let mut items: Vec<String> = runs(e, "log").iter().filter_map(|t| value(t).ok()).collect();
        items.sort();
        expect_eq(
            "array items",
            items,
            vec!["1".to_string(), "2".to_string(), "3".to_string()],
        )?;
        expect_value(e, "json", "{\"a\":\"b\"}")?;
        expect_value(e, "jsonOutput", "{\"a\":\"b\"}")?;
        let yaml: Value =
            serde_json::from_str(&value_of(e, "yamlOutput")?).map_err(|err| format!("yamlOutput: {err}"))?;
        expect_eq(
            "yamlOutput",
            yaml,
            json!({"some": "property", "alist": ["of", "values"]}),
        )?;
        let i = &e.inputs;
        expect_eq("inputs.int", i.get("int"), Some(&json!(42)))?;
        expect_eq("inputs.float", i.get("float"), Some(&json!(42.42)))?;
        expect_eq("inputs.bool", i.get("bool"), Some(&json!(false)))?;
        expect_eq(
            "inputs.optional (present, null)",
            i.get("optional"),
            Some(&Value::Null),
        )?;
        expect_eq("inputs.empty", i.get("empty"), Some(&json!("")))?;
        expect_eq("inputs.json", i.get("json"), Some(&json!({"a": "b"})))?;
        expect_eq("inputs.array", i.get("array"), Some(&json!([1, 2, 3])))?;
        expect_eq(
            "inputs.nested",
            i.get("nested"),
            Some(&json!({"string": "a string", "more": {"int": 123}, "bool": true})),
        )?;
        let instant_default = i
            .get("instantDefaults")
            .and_then(Value::as_str)
            .unwrap_or_default();
        expect_eq(
            "inputs.instantDefaults",
            parse_date("instantDefaults", instant_default)?,
            parse_date("", "2013-08-09T14:19:00Z")?,
        )?;
        if i.get("secret") == Some(&json!("secret")) {
            return Err("inputs.secret is stored in clear".into());
        }
        expect_labels(
            e,
            &[
                ("flow-label-1", "flow-label-1"),
                ("flow-label-2", "flow-label-2"),
                ("system.correlationId", &e.id),
            ],
        )
    });
    case!(
        "inputs[validatedString=B-failed]",
        "inputs.yaml",
        |r: &mut Runner| {
            let mut inputs = standard_inputs(INPUT_FILE);
            inputs.insert("validatedString".into(), InputValue::Text("B-failed".into()));
            match r.execute(TESTS_NS, "inputs", inputs) {
            Ok(o) => Err(format!("expected an input error, got {}", describe(&o.execution))),
            Err(err) => expect_contains(
                "error",
                &err.to_string(),
                "Invalid input for `validatedString`, it must match the pattern `A\\d+`, but received `B-failed`",
            ),
        }
        }
    );
    case!("inputs[enum=INVALID]", "inputs.yaml", |r: &mut Runner| {
        let mut inputs = standard_inputs(INPUT_FILE);
        inputs.insert("enum".into(), InputValue::Text("INVALID".into()));
        match r.execute(TESTS_NS, "inputs", inputs) {
            Ok(o) => Err(format!("expected an input error, got {}", describe(&o.execution))),
            Err(err) => expect_contains(
                "error",
                &err.to_string(),
                "Invalid input for `enum`, it must match the values `[ENUM_VALUE, OTHER_ONE]`, but received `INVALID`",
            ),
        }
    });
    case!(
        "inputs-small-files",
        "inputs-small-files.yaml",
        |r: &mut Runner| {
            let uri = "kestra:///io/kestra/tests/inputs-small-files/executions/upload/inputs/f/f.txt";
            r.add_file(uri, b"hello".to_vec());
            let o = run(r, "inputs-small-files", text(&[("f", uri)]))?;
            let e = &o.execution;
            expect(e, Success, 1)?;
            let out = e.outputs.get("o").and_then(Value::as_str).unwrap_or_default();
            expect_contains("outputs.o", out, "kestra://")?;
            expect_value(e, "task", uri)
        }
    );
    case!("empty-variables", "empty-variables.yml", |r: &mut Runner| {
        let inputs = text(&[
            ("emptyKey", "{ \"foo\": \"\" }"),
            ("emptySubObject", "{\"json\":{\"someEmptyObject\":{}}}"),
        ]);
        let o = run(r, "empty-variables", inputs)?;
        let e = &o.execution;
        expect(e, Success, 3)?;
        expect_logs(&o, "log-empty-sub-object-input", &[("INFO", "{}")])
    });
    case!("variables", "variables.yaml", |r: &mut Runner| {
        // Kestra's test configuration: env KESTRA_TEST1/KESTRA_TEST2 and globals.
        let envs = json!({"test1": "true", "test2": "Pass by env"});
        let globals = json!({"string": "string", "int": 1, "bool": true, "nested": {"int": 2}});
        if let (Value::Object(e), Value::Object(g)) = (envs, globals) {
            r.set_globals(e, g);
        }
        let o = run(r, "variables", none())?;
        let e = &o.execution;
        expect_count(e, 3)?;
        expect_value(e, "variable", "1 > 2 > 3")?;
        expect_value(e, "env", "true Pass by env")?;
        expect_value(e, "global", "string 1 true 2")
    });
    case!("variables-invalid", "variables-invalid.yaml", |r: &mut Runner| {
        let o = run(r, "variables-invalid", none())?;
        let e = &o.execution;
        expect(e, Failed, 2)?;
        expect_runs(e, &[("date", Success), ("parent-seq", Failed)])?;
        expect_log_containing(
            &o,
            "Unable to find `inputs` used in the expression `{{inputs.invalid}}`",
        )
    });

    // --- Pause, Sleep --------------------------------------------------------------
    case!("pause[resume]", "pause.yaml", |r: &mut Runner| {
        let o = run(r, "pause", none())?;
        expect(&o.execution, Paused, 1)?;
        expect_run_state(&o.execution, "pause", Paused)?;
        let o = r
            .resume(&o.execution.id, none())
            .map_err(|e| format!("resume: {e}"))?;
        let e = &o.execution;
        expect(e, Success, 3)?;
        expect_runs(e, &[("pause", Success), ("subtask", Success), ("last", Success)])?;
        expect_logs(&o, "subtask", &[("INFO", "trigger after manual restart")])
    });
    case!("pause[kill]", "pause.yaml", |r: &mut Runner| {
        let o = run(r, "pause", none())?;
        expect_state(&o.execution, Paused)?;
        let o = r.kill(&o.execution.id).map_err(|e| format!("kill: {e}"))?;
        let e = &o.execution;
        expect_state(e, Killed)?;
        expect_run_state(e, "pause", Killed)?;
        expect_absent(e, "last")?;
        expect_absent(e, "failed-echo")
    });
    case!("pause[resume twice]", "pause.yaml", |r: &mut Runner| {
        let o = run(r, "pause", none())?;
        let id = o.execution.id.clone();
        r.resume(&id, none()).map_err(|e| format!("resume: {e}"))?;
        // Kestra refuses to resume an execution that is not paused (409)
        match r.resume(&id, none()) {
            Ok(o) => Err(format!(
                "resuming a {} execution was accepted; Kestra answers `Execution '{id}' is not paused, can't resume it`",
                o.execution.state.current.as_str()
            )),
            Err(err) => expect_contains(
                "second resume",
                &err.to_string(),
                &format!("Execution '{id}' is not paused, can't resume it"),
            ),
        }
    });
    case!(
        "fail-on-condition[fail, restart]",
        "fail-on-condition.yaml",
        |r: &mut Runner| {
            let first = run(r, "fail-on-condition", text(&[("param", "fail")]))?;
            let o = r
                .restart(&first.execution.id)
                .map_err(|e| format!("restart: {e}"))?;
            let e = &o.execution;
            // same execution, the failed task run restarted with a second attempt
            expect_eq("execution id", e.id.as_str(), first.execution.id.as_str())?;
            expect(e, Failed, 2)?;
            expect_runs(e, &[("before", Success), ("fail", Failed)])?;
            let states: Vec<StateType> = e.state.histories.iter().map(|h| h.state).collect();
            expect_eq(
                "execution histories",
                states,
                vec![Created, Running, Failed, Restarted, Running, Failed],
            )?;
            let fail = one(e, "fail")?;
            expect_eq(
                "`fail` attempts",
                fail.attempts.iter().map(|a| a.state.current).collect::<Vec<_>>(),
                vec![Failed, Failed],
            )?;
            expect_eq("`before` attempts", one(e, "before")?.attempts.len(), 1)?;
            expect_eq("metadata.attemptNumber", e.metadata.attempt_number, 2)
        }
    );
    case!("minimal[restart a SUCCESS]", "minimal.yaml", |r: &mut Runner| {
        let o = run(r, "minimal", none())?;
        // Kestra: 422 `No task found to restart`
        match r.restart(&o.execution.id) {
            Ok(o) => Err(format!(
                "restart of a SUCCESS execution accepted (now {}); Kestra refuses: `No task found to restart`",
                describe(&o.execution)
            )),
            Err(err) => expect_contains("restart error", &err.to_string(), "No task found to restart"),
        }
    });
    for (flow, file, inputs, delay_ms) in [
        ("pause-delay", "pause-delay.yaml", vec![], 1000),
        (
            "pause-delay-from-input",
            "pause-delay-from-input.yaml",
            vec![],
            1000,
        ),
        (
            "pause-delay-from-input",
            "pause-delay-from-input.yaml",
            vec![("delay", "PT3S")],
            3000,
        ),
    ] {
        let name = if inputs.is_empty() {
            flow.to_string()
        } else {
            format!("{flow}[delay=PT3S]")
        };
        case!(name, file, move |r: &mut Runner| {
            let mut o = run(r, flow, text(&inputs))?;
            if o.execution.state.current == Paused {
                // a runner that stops at every PAUSED: the delay resumes it
                return Err(format!(
                    "delay did not resume the execution: {}",
                    describe(&o.execution)
                ));
            }
            let e = &mut o.execution;
            expect(e, Success, 3)?;
            let pause = one(e, "pause")?;
            expect_eq("pause PAUSED count", history_count(pause, Paused), 1)?;
            expect_eq("pause RUNNING count", history_count(pause, Running), 2)?;
            expect_eq(
                "execution went through PAUSED",
                e.state.histories.iter().any(|h| h.state == Paused),
                true,
            )?;
            let paused_at = first_date(pause, Paused).ok_or("no PAUSED date")?;
            let last_start = one(e, "last")?
                .state
                .start_date
                .ok_or("no start date for `last`")?;
            if (last_start - paused_at).num_milliseconds() < delay_ms {
                return Err(format!(
                    "`last` started {last_start} less than {delay_ms} ms after the pause ({paused_at})"
                ));
            }
            Ok(())
        });
    }
    case!("pause-timeout", "pause-timeout.yaml", |r: &mut Runner| {
        let o = run(r, "pause-timeout", none())?;
        let e = &o.execution;
        expect(e, Failed, 1)?;
        let pause = one(e, "pause")?;
        expect_eq("pause PAUSED count", history_count(pause, Paused), 1)?;
        expect_eq("pause RUNNING count", history_count(pause, Running), 1)?;
        expect_eq("pause FAILED count", history_count(pause, Failed), 1)?;
        let paused_at = first_date(pause, Paused).ok_or("no PAUSED date")?;
        let failed_at = first_date(pause, Failed).ok_or("no FAILED date")?;
        if (failed_at - paused_at).num_milliseconds() < 1000 {
            return Err(format!(
                "timed out after less than 1 s ({paused_at} → {failed_at})"
            ));
        }
        Ok(())
    });
    case!("pause_on_resume", "pause_on_resume.yaml", |r: &mut Runner| {
        let o = run(r, "pause_on_resume", none())?;
        expect(&o.execution, Paused, 1)?;
        let id = o.execution.id.clone();
        // missing required onResume input: refused, still paused
        match r.resume(&id, none()) {
            Ok(o) => {
                return Err(format!(
                    "resume without `asked` accepted: {}",
                    describe(&o.execution)
                ))
            }
            Err(err) => expect_contains(
                "resume error",
                &err.to_string(),
                "Invalid input for `asked`, missing required input, but received `null`",
            )?,
        }
        let uri = format!("kestra:///io/kestra/tests/pause_on_resume/executions/{id}/inputs/data/data.txt");
        r.add_file(&uri, b"some data".to_vec());
        let o = r
            .resume(&id, text(&[("asked", "myresponse"), ("data", &uri)]))
            .map_err(|e| format!("resume: {e}"))?;
        let e = &o.execution;
        expect(e, Success, 2)?;
        let values = output(one(e, "last")?, "values")?;
        expect_eq("last.values.asked", &values["asked"], &json!("myresponse"))?;
        expect_contains(
            "last.values.data",
            values["data"].as_str().unwrap_or_default(),
            "kestra://",
        )?;
        expect_eq(
            "pause onResume",
            output(one(e, "pause")?, "onResume")?.get("asked").cloned(),
            Some(json!("myresponse")),
        )
    });
    case!(
        "pause_on_resume_optional",
        "pause_on_resume_optional.yaml",
        |r: &mut Runner| {
            let o = run(r, "pause_on_resume_optional", none())?;
            expect(&o.execution, Paused, 1)?;
            let o = r
                .resume(&o.execution.id, none())
                .map_err(|e| format!("resume: {e}"))?;
            let e = &o.execution;
            expect(e, Success, 2)?;
            expect_eq(
                "last.values.asked",
                output(one(e, "last")?, "values")?["asked"].clone(),
                json!("MISSING"),
            )
        }
    );
    case!("sleep", "sleep.yml", |r: &mut Runner| {
        let o = run(r, "sleep", none())?;
        let e = &o.execution;
        expect(e, Success, 1)?;
        let t = one(e, "sleep")?;
        let (start, end) = (
            t.state.start_date.ok_or("no start")?,
            t.state.end_date.ok_or("no end")?,
        );
        if (end - start).num_milliseconds() < 1000 {
            return Err(format!("slept less than 1 s: {start} → {end}"));
        }
        Ok(())
    });
    case!(
        "flow-concurrency-queue[single execution]",
        "flow-concurrency-queue.yml",
        |r: &mut Runner| {
            let o = run(r, "flow-concurrency-queue", none())?;
            expect(&o.execution, Success, 1)
        }
    );

    // --- Subflow -------------------------------------------------------------------
    case!("task-flow[OK]", "task-flow.yaml", |r: &mut Runner| {
        let o = run_with(
            r,
            TESTS_NS,
            "task-flow",
            text(&[("string", "OK")]),
            &[("mainFlowExecutionLabel", "execFoo")],
            None,
        )?;
        let e = &o.execution;
        expect(e, Success, 1)?;
        let launch = one(e, "launch")?;
        expect_eq(
            "launch attempts",
            launch
                .attempts
                .iter()
                .map(|a| a.state.current)
                .collect::<Vec<_>>(),
            vec![Success],
        )?;
        let outputs = output(launch, "outputs")?;
        expect_contains(
            "outputs.extracted",
            outputs["extracted"].as_str().unwrap_or_default(),
            "default > amazing",
        )?;
        expect_eq("outputs.state", output(launch, "state")?, json!("SUCCESS"))?;
        let child = child_of(&o, "switch")?;
        expect_eq(
            "outputs.executionId",
            output(launch, "executionId")?,
            json!(child.id),
        )?;
        expect(child, Success, 2)?;
        let trig = child.trigger.as_ref().ok_or("child has no trigger")?;
        expect_eq("child trigger type", trig.type_name.as_str(), SUBFLOW)?;
        let vars = json!(trig.variables.clone().unwrap_or_default());
        expect_eq("trigger.executionId", &vars["executionId"], &json!(e.id))?;
        expect_eq("trigger.flowId", &vars["flowId"], &json!("task-flow"))?;
        expect_eq("trigger.namespace", &vars["namespace"], &json!(TESTS_NS))?;
        let got: BTreeSet<(String, String)> = labels(child).into_iter().collect();
        let want: BTreeSet<(String, String)> = [
            ("system.correlationId", e.id.as_str()),
            ("mainFlowExecutionLabel", "execFoo"),
            ("mainFlowLabel", "flowFoo"),
            ("launchTaskLabel", "launchFoo"),
            ("switchFlowLabel", "switchFoo"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        expect_eq("child labels", got, want)?;
        expect_eq("child label count", child.labels.len(), 5)
    });
    case!("task-flow[THIRD]", "task-flow.yaml", |r: &mut Runner| {
        let o = run(r, "task-flow", text(&[("string", "THIRD")]))?;
        let e = &o.execution;
        expect_state(e, Failed)?;
        let child = child_of(&o, "switch")?;
        expect(child, Failed, 4)?;
        let launch = one(e, "launch")?;
        let extracted = output(launch, "outputs")?["extracted"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        expect_contains("outputs.extracted", &extracted, "Error Trigger ! error-t1")
    });
    case!("task-flow[FIRST]", "task-flow.yaml", |r: &mut Runner| {
        let o = run(r, "task-flow", text(&[("string", "FIRST")]))?;
        expect_state(&o.execution, Failed)?;
        let child = child_of(&o, "switch")?;
        expect(child, Success, 2)
    });
    case!(
        "task-flow-inherited-labels[OK]",
        "task-flow-inherited-labels.yaml",
        |r: &mut Runner| {
            let o = run(r, "task-flow-inherited-labels", text(&[("string", "OK")]))?;
            let e = &o.execution;
            expect_state(e, Success)?;
            let child = child_of(&o, "switch")?;
            let got: BTreeSet<(String, String)> = labels(child).into_iter().collect();
            let want: BTreeSet<(String, String)> = [
                ("system.correlationId", e.id.as_str()),
                ("launchTaskLabel", "launchFoo"),
                ("switchFlowLabel", "switchFoo"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            expect_eq("child labels", got, want)?;
            expect_eq("child label count", child.labels.len(), 3)
        }
    );
    case!("subflow-parent", "subflow-parent.yaml", |r: &mut Runner| {
        let o = run(r, "subflow-parent", none())?;
        let e = &o.execution;
        expect(e, Success, 1)?;
        let child = child_of(&o, "subflow-child")?;
        let grand = child_of(&o, "subflow-grand-child")?;
        expect(child, Success, 1)?;
        expect(grand, Success, 1)?;
        for (what, x) in [("child", child), ("grand-child", grand)] {
            let corr = x
                .labels
                .iter()
                .find(|l| l.key == "system.correlationId")
                .map(|l| l.value.clone());
            expect_eq(&format!("{what} correlationId"), corr, Some(e.id.clone()))?;
        }
        let line = logs_of(&o, &grand.id, "firstLevel");
        expect_eq(
            "grand-child log",
            line,
            vec![("INFO".to_string(), format!("My grandparent is {}", e.id))],
        )
    });
    case!("subflow-child", "subflow-child.yaml", |r: &mut Runner| {
        let o = run(r, "subflow-child", none())?;
        expect(&o.execution, Success, 1)?;
        let grand = child_of(&o, "subflow-grand-child")?;
        let corr = grand
            .labels
            .iter()
            .find(|l| l.key == "system.correlationId")
            .map(|l| l.value.clone());
        expect_eq("grand-child correlationId", corr, Some(o.execution.id.clone()))
    });
    case!(
        "subflow-grand-child",
        "subflow-grand-child.yaml",
        |r: &mut Runner| {
            let o = run(r, "subflow-grand-child", none())?;
            expect(&o.execution, Success, 1)?;
            let id = o.execution.id.clone();
            expect_logs(&o, "firstLevel", &[("INFO", &format!("My grandparent is {id}"))])
        }
    );

    // --- finally / afterExecution --------------------------------------------------
    type Expected = (
        &'static str,
        &'static str,
        StateType,
        &'static [(&'static str, StateType)],
    );
    let finally_cases: Vec<Expected> = vec![
        (
            "finally-flow",
            "false",
            Success,
            &[("if", Success), ("ok", Success), ("a1", Success), ("a2", Success)],
        ),
        (
            "finally-flow",
            "true",
            Failed,
            &[("if", Failed), ("ko", Failed), ("a1", Success), ("a2", Success)],
        ),
        (
            "finally-flow-error",
            "false",
            Success,
            &[("if", Success), ("ok", Success), ("a1", Success), ("a2", Success)],
        ),
        (
            "finally-flow-error",
            "true",
            Failed,
            &[
                ("if", Failed),
                ("ko", Failed),
                ("e1", Success),
                ("e2", Success),
                ("a1", Success),
                ("a2", Success),
            ],
        ),
        (
            "finally-sequential",
            "false",
            Success,
            &[
                ("seq", Success),
                ("if", Success),
                ("ok", Success),
                ("a1", Success),
                ("a2", Success),
            ],
        ),
        (
            "finally-sequential",
            "true",
            Failed,
            &[
                ("seq", Failed),
                ("if", Failed),
                ("ko", Failed),
                ("a1", Success),
                ("a2", Success),
            ],
        ),
        (
            "finally-sequential-error",
            "false",
            Success,
            &[
                ("seq", Success),
                ("if", Success),
                ("ok", Success),
                ("a1", Success),
                ("a2", Success),
            ],
        ),
        (
            "finally-sequential-error",
            "true",
            Failed,
            &[
                ("seq", Failed),
                ("if", Failed),
                ("ko", Failed),
                ("e1", Success),
                ("e2", Success),
                ("a1", Success),
                ("a2", Success),
            ],
        ),
        (
            "finally-parallel",
            "false",
            Success,
            &[
                ("seq", Success),
                ("p1", Success),
                ("p2", Success),
                ("p3", Success),
                ("if", Success),
                ("ok", Success),
                ("a1", Success),
                ("a2", Success),
            ],
        ),
        (
            "finally-parallel",
            "true",
            Failed,
            &[
                ("seq", Failed),
                ("p1", Success),
                ("p2", Success),
                ("p3", Success),
                ("if", Failed),
                ("ko", Failed),
                ("e1", Success),
                ("e2", Success),
                ("a1", Success),
                ("a2", Success),
            ],
        ),
    ];
    for (flow, failed, state, want) in finally_cases {
        let file: &'static str = Box::leak(format!("{flow}.yaml").into_boxed_str());
        case!(format!("{flow}[failed={failed}]"), file, move |r: &mut Runner| {
            let o = run(r, flow, text(&[("failed", failed)]))?;
            let e = &o.execution;
            expect(e, state, want.len())?;
            expect_runs(e, want)
        });
    }
    case!(
        "finally-flow-error-first",
        "finally-flow-error-first.yaml",
        |r: &mut Runner| {
            let o = run(r, "finally-flow-error-first", none())?;
            let e = &o.execution;
            expect(e, Failed, 2)?;
            expect_runs(e, &[("ko", Failed), ("a1", Success)])
        }
    );
    case!(
        "finally-sequential-error-first",
        "finally-sequential-error-first.yaml",
        |r: &mut Runner| {
            let o = run(r, "finally-sequential-error-first", none())?;
            let e = &o.execution;
            expect(e, Failed, 3)?;
            expect_runs(e, &[("seq", Failed), ("ko", Failed), ("a1", Success)])
        }
    );
    case!("after-execution", "after-execution.yaml", |r: &mut Runner| {
        let o = run(r, "after-execution", none())?;
        let e = &o.execution;
        expect(e, Success, 2)?;
        expect_runs(e, &[("mytask", Success), ("end", Success)])?;
        let output_text = "this is a task output used as a final flow output";
        expect_eq(
            "outputs.final",
            e.outputs.get("final").cloned(),
            Some(json!(output_text)),
        )?;
        let end = one(e, "end")?;
        expect_eq(
            "end.values",
            output(end, "values")?,
            json!({"state": "SUCCESS", "output": output_text}),
        )?;
        let ended = e
            .state
            .histories
            .iter()
            .find(|h| h.state.is_terminated())
            .map(|h| h.date);
        if ended > end.state.start_date {
            return Err(format!(
                "`end` started {:?} before the execution ended {ended:?}",
                end.state.start_date
            ));
        }
        Ok(())
    });
    case!(
        "after-execution-error",
        "after-execution-error.yaml",
        |r: &mut Runner| {
            let o = run(r, "after-execution-error", none())?;
            let e = &o.execution;
            expect(e, Failed, 3)?;
            expect_runs(e, &[("fail", Failed), ("hello", Success), ("end", Success)])?;
            expect_eq(
                "end.values.state",
                output(one(e, "end")?, "values")?["state"].clone(),
                json!("FAILED"),
            )
        }
    );
    case!(
        "after-execution-finally",
        "after-execution-finally.yaml",
        |r: &mut Runner| {
            let o = run(r, "after-execution-finally", none())?;
            let e = &o.execution;
            expect(e, Success, 3)?;
            expect_runs(e, &[("hello", Success), ("finally", Success), ("end", Success)])?;
            expect_eq(
                "end.values.state",
                output(one(e, "end")?, "values")?["state"].clone(),
                json!("SUCCESS"),
            )
        }
    );

    // --- triggers' flows run as plain executions ----------------------------------
    for (name, body) in [
        ("webhook[PUT list body]", json!([{"a": 1, "b": true}])),
        ("webhook[POST text body]", json!("bla")),
    ] {
        case!(name, "webhook.yaml", move |r: &mut Runner| {
            let vars = json!({"body": body.clone(), "headers": {}, "parameters": {}});
            let o = run_with(
                r,
                TESTS_NS,
                "webhook",
                none(),
                &[],
                Some(trigger("webhook", WEBHOOK, vars.clone())),
            )?;
            let e = &o.execution;
            expect(e, Success, 1)?;
            let got: Value = serde_json::from_str(&value_of(e, "out")?)
                .map_err(|err| format!("`out` is not JSON: {err}"))?;
            expect_eq("{{ trigger | json }}", got, vars)
        });
    }
    case!("webhook[POST json]", "webhook.yaml", |r: &mut Runner| {
        let vars = json!({
            "body": {"a": 1, "b": true},
            "headers": {"Content-Type": ["application/json"]},
            "parameters": {"name": ["john"], "age": ["12", "13"]}
        });
        let o = run_with(
            r,
            TESTS_NS,
            "webhook",
            none(),
            &[],
            Some(trigger("webhook", WEBHOOK, vars.clone())),
        )?;
        let e = &o.execution;
        expect(e, Success, 1)?;
        let got: Value =
            serde_json::from_str(&value_of(e, "out")?).map_err(|err| format!("`out` is not JSON: {err}"))?;
        expect_eq("{{ trigger | json }}", got, vars)?;
        let l = labels(e);
        expect_eq(
            "first labels",
            l.iter().take(2).cloned().collect::<Vec<_>>(),
            vec![
                ("flow-label-1".to_string(), "flow-label-1".to_string()),
                ("flow-label-2".to_string(), "flow-label-2".to_string()),
            ],
        )
    });
    case!(
        "webhook-dynamic-key[GET]",
        "webhook-dynamic-key.yaml",
        |r: &mut Runner| {
            let vars = json!({"headers": {}, "parameters": {}});
            let o = run_with(
                r,
                TESTS_NS,
                "webhook-dynamic-key",
                none(),
                &[],
                Some(trigger("webhook", WEBHOOK, vars.clone())),
            )?;
            let e = &o.execution;
            expect(e, Success, 1)?;
            let got: Value = serde_json::from_str(&value_of(e, "out")?)
                .map_err(|err| format!("`out` is not JSON: {err}"))?;
            expect_eq("{{ trigger | json }}", got, vars)
        }
    );
    case!(
        "webhook-with-condition[hello=world]",
        "webhook-with-condition.yaml",
        |r: &mut Runner| {
            let vars = json!({"body": {"hello": "world"}, "headers": {}, "parameters": {}});
            let o = run_with(
                r,
                TESTS_NS,
                "webhook-with-condition",
                none(),
                &[],
                Some(trigger("webhook", WEBHOOK, vars.clone())),
            )?;
            expect(&o.execution, Success, 1)?;
            let got: Value = serde_json::from_str(&value_of(&o.execution, "out")?)
                .map_err(|err| format!("`out` is not JSON: {err}"))?;
            expect_eq("{{ trigger | json }}", got, vars)
        }
    );
    case!(
        "schedule-trigger[one run]",
        "schedule-trigger.yaml",
        |r: &mut Runner| {
            let vars = json!({"date": "2024-12-20T10:00:00Z", "next": "2024-12-20T10:01:00Z", "previous": "2024-12-20T09:59:00Z"});
            let o = run_with(
                r,
                "io.kestra.tests.schedule",
                "schedule-trigger",
                none(),
                &[],
                Some(trigger("schedule-every-min", SCHEDULE_TYPE, vars)),
            )?;
            expect(&o.execution, Success, 1)?;
            expect_logs(&o, "log", &[("INFO", "simple log")])
        }
    );
    case!("trigger-flow", "trigger-flow.yaml", |r: &mut Runner| {
        let o = run_ns(r, "io.kestra.tests.trigger", "trigger-flow", none())?;
        let e = &o.execution;
        expect(e, Success, 1)?;
        expect_value(e, "only", &format!("from parents: {}", e.id))
    });
    case!(
        "trigger-flow-listener[as triggered]",
        "trigger-flow-listener.yaml",
        |r: &mut Runner| {
            let upstream = "upstreamExecutionId";
            let vars = json!({"executionId": upstream, "namespace": "io.kestra.tests.trigger", "flowId": "trigger-flow", "flowRevision": 1, "state": "SUCCESS"});
            let inputs = text(&[("from-parent", &format!("from parents: {upstream}"))]);
            let o = run_with(
                r,
                "io.kestra.tests.trigger",
                "trigger-flow-listener",
                inputs,
                &[],
                Some(trigger("listen-flow", FLOW, vars)),
            )?;
            let e = &o.execution;
            expect(e, Success, 1)?;
            expect_value(e, "only-listener", &format!("childs: from parents: {upstream}"))?;
            let t = e.trigger.as_ref().ok_or("no trigger")?;
            expect_eq(
                "trigger.variables.executionId",
                json!(t.variables.clone().unwrap_or_default())["executionId"].clone(),
                json!(upstream),
            )
        }
    );
    case!(
        "trigger-flow-listener-no-inputs[as triggered]",
        "trigger-flow-listener-no-inputs.yaml",
        |r: &mut Runner| {
            let vars = json!({"executionId": "up1", "namespace": "io.kestra.tests.trigger", "flowId": "trigger-flow", "flowRevision": 1, "state": "SUCCESS"});
            let o = run_with(
                r,
                "io.kestra.tests.trigger",
                "trigger-flow-listener-no-inputs",
                none(),
                &[],
                Some(trigger("listen-flow", FLOW, vars)),
            )?;
            let e = &o.execution;
            expect(e, Success, 1)?;
            expect_value(e, "only-no-input", "v1: up1")
        }
    );
    case!(
        "trigger-flow-listener-namespace-condition[as triggered]",
        "trigger-flow-listener-namespace-condition.yaml",
        |r: &mut Runner| {
            let vars = json!({"executionId": "up1", "namespace": "io.kestra.tests.trigger", "flowId": "trigger-flow", "flowRevision": 1, "state": "SUCCESS"});
            let inputs = text(&[("from-parent", "x")]);
            let o = run_with(
                r,
                "io.kestra.tests.trigger",
                "trigger-flow-listener-namespace-condition",
                inputs,
                &[],
                Some(trigger("listen-flow", FLOW, vars)),
            )?;
            expect(&o.execution, Success, 1)?;
            expect_value(&o.execution, "only-listener", "simple return")
        }
    );
    case!(
        "trigger-flow-with-pause",
        "trigger-flow-with-pause.yaml",
        |r: &mut Runner| {
            let o = run_ns(
                r,
                "io.kestra.tests.trigger.pause",
                "trigger-flow-with-pause",
                none(),
            )?;
            let e = &o.execution;
            expect(e, Success, 3)?;
            expect_runs(
                e,
                &[("hello", Success), ("pause", Success), ("hello_again", Success)],
            )?;
            expect_logs(&o, "hello_again", &[("INFO", "I'm restarted")])
        }
    );
    for state in ["RUNNING", "PAUSED", "SUCCESS"] {
        case!(
            format!("trigger-flow-listener-with-pause[{state}]"),
            "trigger-flow-listener-with-pause.yaml",
            move |r: &mut Runner| {
                let vars = json!({"executionId": "up1", "namespace": "io.kestra.tests.trigger.pause", "flowId": "trigger-flow-with-pause", "flowRevision": 1, "state": state});
                let o = run_with(
                    r,
                    "io.kestra.tests.trigger.pause",
                    "trigger-flow-listener-with-pause",
                    none(),
                    &[],
                    Some(trigger("listen-flow", FLOW, vars)),
                )?;
                let e = &o.execution;
                expect(e, Success, 1)?;
                expect_eq(
                    "outputs.status",
                    e.outputs.get("status").cloned(),
                    Some(json!(state)),
                )?;
                expect_logs(&o, "hello", &[("INFO", &format!("Hello up1 you're in {state}"))])
            }
        );
    }
    case!(
        "flow-trigger-preconditions-flow-a",
        "flow-trigger-preconditions-flow-a.yaml",
        |r: &mut Runner| {
            let o = run_ns(
                r,
                "io.kestra.tests.trigger.preconditions",
                "flow-trigger-preconditions-flow-a",
                none(),
            )?;
            let e = &o.execution;
            expect(e, Success, 1)?;
            expect_value(e, "only", &format!("from parents: {}", e.id))?;
            expect_labels(e, &[("some", "label"), ("system.correlationId", &e.id)])
        }
    );
    case!(
        "flow-trigger-preconditions-flow-b",
        "flow-trigger-preconditions-flow-b.yaml",
        |r: &mut Runner| {
            let o = run_ns(
                r,
                "io.kestra.tests.trigger.preconditions",
                "flow-trigger-preconditions-flow-b",
                none(),
            )?;
            expect(&o.execution, Success, 1)
        }
    );
    case!(
        "flow-trigger-preconditions-flow-listen[as triggered]",
        "flow-trigger-preconditions-flow-listen.yaml",
        |r: &mut Runner| {
            let o = run_ns(
                r,
                "io.kestra.tests.trigger.preconditions",
                "flow-trigger-preconditions-flow-listen",
                none(),
            )?;
            expect(&o.execution, Success, 1)?;
            expect_value(&o.execution, "only", "It works")
        }
    );

    // --- execution updates: Exit, SetVariables, UnsetVariables ------------------------
    for (flow, state) in [("exit", Warning), ("exit-canceled", Cancelled)] {
        let file: &'static str = if flow == "exit" {
            "exit.yaml"
        } else {
            "exit-canceled.yaml"
        };
        case!(flow, file, move |r: &mut Runner| {
            let o = run(r, flow, none())?;
            let e = &o.execution;
            expect(e, state, 2)?;
            expect_runs(e, &[("if", state), ("exit", state)])
        });
    }
    case!("exit-killed", "exit-killed.yaml", |r: &mut Runner| {
        let o = run(r, "exit-killed", none())?;
        let e = &o.execution;
        expect(e, Killed, 2)?;
        expect_runs(e, &[("if", Killed), ("exit", Killed)])
    });
    case!("exit-nested", "exit-nested.yaml", |r: &mut Runner| {
        let o = run(r, "exit-nested", none())?;
        let e = &o.execution;
        expect(e, Failed, 4)?;
        expect_runs(
            e,
            &[
                ("if_some_bool", Failed),
                ("was_true", Success),
                ("nested_bool_check", Failed),
                ("nested_was_false", Failed),
            ],
        )
    });
    case!("set-variables", "set-variables.yaml", |r: &mut Runner| {
        let o = run(r, "set-variables", none())?;
        let e = &o.execution;
        expect(e, Success, 2)?;
        let values = output(one(e, "output")?, "values")?;
        expect_eq("values.message", &values["message"], &json!("Hello Loïc"))?;
        // persisted with the execution, as Kestra's `variables`
        expect_eq(
            "execution variables",
            json!(e.variables),
            json!({"name": "Loïc", "message": "Hello"}),
        )
    });
    case!(
        "set-variables-duplicate",
        "set-variables-duplicate.yaml",
        |r: &mut Runner| {
            let o = run(r, "set-variables-duplicate", none())?;
            let e = &o.execution;
            expect(e, Failed, 1)?;
            expect_run_state(e, "set-vars", Failed)?;
            expect_logs(
                &o,
                "set-vars",
                &[(
                    "ERROR",
                    "`overwrite` is set to false and the following variables already exist: name",
                )],
            )
        }
    );
    case!("unset-variables", "unset-variables.yaml", |r: &mut Runner| {
        let o = run(r, "unset-variables", none())?;
        let e = &o.execution;
        expect(e, Success, 3)?;
        let values = output(one(e, "output")?, "values")?;
        expect_eq("values.message", &values["message"], &json!("default"))
    });

    // --- benchmark01 ---------------------------------------------------------------
    case!("benchmark01", "benchmark01.yaml", |r: &mut Runner| {
        let o = run_ns(r, "benchmarks", "benchmark01", none())?;
        expect(&o.execution, Success, 2)?;
        expect_logs(&o, "hello", &[("INFO", "Hello World")])?;
        let o = run_ns(r, "benchmarks", "benchmark01", text(&[("name", "Kite")]))?;
        expect_logs(&o, "hello", &[("INFO", "Hello Kite")])
    });

    cases
}

/// A subflow execution started (directly or further down) by this outcome.
fn child_of<'a>(o: &'a Outcome, flow_id: &str) -> Result<&'a kite_core::execution::Execution, String> {
    let found: Vec<_> = o
        .subflow_executions
        .iter()
        .filter(|x| x.flow_id == flow_id)
        .collect();
    match found.as_slice() {
        [x] => Ok(x),
        _ => Err(format!(
            "expected one `{flow_id}` subflow execution, found {} (subflows: {:?})",
            found.len(),
            o.subflow_executions
                .iter()
                .map(|x| x.flow_id.as_str())
                .collect::<Vec<_>>()
        )),
    }
}

#[test]
fn kestra_corpus() {
    let (flows, parse_errors) = load_flows();
    let cases = cases();
    let skipped = skipped();

    // every corpus file is covered by a case or a skip
    let mut covered: BTreeSet<&str> = cases.iter().map(|c| c.file).collect();
    covered.extend(skipped.iter().map(|s| s.file));
    let mut uncovered = Vec::new();
    for entry in std::fs::read_dir(CORPUS_DIR).expect("corpus directory").flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if (name.ends_with(".yaml") || name.ends_with(".yml")) && !covered.contains(name.as_str()) {
            uncovered.push(name);
        }
    }

    let mut failures: Vec<(String, String, String)> = Vec::new();
    let mut passed = 0;
    for case in &cases {
        let result = match parse_errors.iter().find(|(f, _)| f == case.file) {
            Some((_, err)) => Err(format!("flow does not parse: {err}")),
            None => {
                let mut runner = Runner::new();
                for (_, flow) in &flows {
                    runner.add_flow(flow.clone());
                }
                match catch_unwind(AssertUnwindSafe(|| (case.run)(&mut runner))) {
                    Ok(r) => r,
                    Err(panic) => Err(format!(
                        "panicked: {}",
                        panic
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default()
                    )),
                }
            }
        };
        match result {
            Ok(()) => passed += 1,
            Err(msg) => failures.push((case.name.clone(), case.file.to_string(), msg)),
        }
    }

    if !failures.is_empty() {
        eprintln!("\n{:<48} | {:<44} | failure", "case", "flow file");
        eprintln!("{}", "-".repeat(140));
        for (name, file, msg) in &failures {
            eprintln!("{name:<48} | {file:<44} | {msg}");
        }
    }
    eprintln!("\nskipped (out of the core's scope):");
    for s in &skipped {
        let tests: Vec<String> = s
            .checked_by
            .iter()
            .map(|(path, test)| format!("{path} {test}"))
            .collect();
        eprintln!("  {:<48} {} — checked by {}", s.file, s.what, tests.join(", "));
        if let Some(missing) = s.not_implemented {
            eprintln!("  {:<48} not implemented: {missing}", "");
        }
    }
    let missing = missing_checks(&skipped);
    for m in &missing {
        eprintln!("  {m}");
    }
    for f in &uncovered {
        eprintln!("  no case for {f}");
    }
    eprintln!(
        "corpus: {} passed, {} failed, {} skipped",
        passed,
        failures.len(),
        skipped.len()
    );
    assert!(uncovered.is_empty(), "corpus files without a case: {uncovered:?}");
    assert!(
        missing.is_empty(),
        "skipped behaviour checked by no test: {missing:?}"
    );
    assert!(
        failures.is_empty(),
        "{} corpus cases failed (table above)",
        failures.len()
    );
}
