//! Fuzz target of the flow parser: arbitrary text, YAML documents generated from a
//! grammar of Kestra's keys (flows, nested flowable tasks, triggers, inputs, odd
//! scalars), and mutations of the flows of `flows/` and `tests/kestra-flows/`.
//!
//! Property: parsing never panics. A refused flow has at least one error, every error
//! has a message, and when the source is one YAML mapping, every error names a line
//! of the source.
//!
//! `PROPTEST_CASES` sets the number of generated cases.

// The seed flows are read from disk by the tests, never by the core.
#![allow(clippy::disallowed_methods)]

mod fuzz_common;

use std::path::Path;
use std::sync::OnceLock;

use kite_core::flow::{
    flow_documents_to_json, flow_source_to_json, parse_flow, parse_flow_within, parse_flows, relocations,
    FlowError, FlowLimits,
};
use proptest::prelude::*;
use proptest::test_runner::Config;

/// Cases by default: well under a minute in a debug build on two cores.
const DEFAULT_CASES: u32 = 1_000;

fn config() -> Config {
    fuzz_common::config("tests/proptest-regressions/fuzz_flow.txt", DEFAULT_CASES)
}

// ---------------------------------------------------------------------------------
// the property

/// Parses `source` every way the core offers and checks what each answers.
fn check(source: &str) -> Result<(), TestCaseError> {
    let one_mapping = is_one_mapping(source);
    let lines = source.lines().count().max(1);
    let check_errors = |errors: &[FlowError], what: &str| -> Result<(), TestCaseError> {
        prop_assert!(!errors.is_empty(), "{what}: refused without an error");
        for e in errors {
            prop_assert!(
                !e.message.trim().is_empty(),
                "{what}: an error without a message: {e:?}"
            );
            prop_assert!(!e.to_string().is_empty());
            if one_mapping {
                let line = e.line;
                prop_assert!(
                    line.is_some_and(|l| (1..=lines + 1).contains(&l)),
                    "{what}: an error without a line of the source ({lines} lines): {e:?}"
                );
            }
        }
        Ok(())
    };
    match parse_flow(source) {
        Ok(flow) => {
            let _ = relocations(&flow);
            let _ = flow.all_tasks();
            let _ = flow.has_pause();
        }
        Err(errors) => check_errors(&errors, "parse_flow")?,
    }
    let small = FlowLimits {
        max_tasks: 3,
        max_depth: 2,
    };
    if let Err(errors) = parse_flow_within(source, &small) {
        check_errors(&errors, "parse_flow_within")?;
    }
    for result in parse_flows(source) {
        if let Err(errors) = result {
            prop_assert!(!errors.is_empty(), "parse_flows: refused without an error");
            for e in &errors {
                prop_assert!(!e.message.trim().is_empty(), "parse_flows: {e:?}");
            }
        }
    }
    let _ = flow_source_to_json(source);
    let _ = flow_documents_to_json(source);
    Ok(())
}

/// Whether `source` is a single YAML document holding a mapping (where every field,
/// and so every error, has a line).
fn is_one_mapping(source: &str) -> bool {
    use serde::Deserialize;
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(source) {
        match serde_yaml::Value::deserialize(doc) {
            Ok(v) if v.is_null() => {}
            Ok(v) => docs.push(v),
            Err(_) => return false,
        }
    }
    matches!(docs.as_slice(), [serde_yaml::Value::Mapping(_)])
}

// ---------------------------------------------------------------------------------
// YAML documents from Kestra's keys

/// A YAML node; scalars are written as is (they may be quoted, tagged, anchored…).
#[derive(Debug, Clone)]
enum Node {
    Scalar(String),
    Map(Vec<(String, Node)>),
    Seq(Vec<Node>),
    /// A node in flow style (`{a: 1}`, `[1, 2]`) written on one line.
    Inline(String),
}

/// A map without repeated keys (YAML refuses them): the first one is kept.
fn map(entries: Vec<(String, Node)>) -> Node {
    let mut kept: Vec<(String, Node)> = Vec::with_capacity(entries.len());
    for (k, v) in entries {
        if !kept.iter().any(|(seen, _)| *seen == k) {
            kept.push((k, v));
        }
    }
    Node::Map(kept)
}

fn scalar(s: &str) -> Node {
    Node::Scalar(s.to_string())
}

fn write(node: &Node, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match node {
        Node::Scalar(s) | Node::Inline(s) => {
            out.push_str(&pad);
            out.push_str(s);
            out.push('\n');
        }
        Node::Map(entries) if entries.is_empty() => {
            out.push_str(&pad);
            out.push_str("{}\n");
        }
        Node::Seq(items) if items.is_empty() => {
            out.push_str(&pad);
            out.push_str("[]\n");
        }
        Node::Map(entries) => {
            for (k, v) in entries {
                out.push_str(&pad);
                write_entry(k, v, indent, out);
            }
        }
        Node::Seq(items) => {
            for item in items {
                out.push_str(&pad);
                out.push_str("- ");
                match item {
                    Node::Map(entries) if !entries.is_empty() => {
                        // The first key on the dash's line, the others below it.
                        for (i, (k, v)) in entries.iter().enumerate() {
                            if i > 0 {
                                out.push_str(&pad);
                                out.push_str("  ");
                            }
                            write_entry(k, v, indent + 2, out);
                        }
                    }
                    Node::Scalar(s) | Node::Inline(s) => {
                        // Block scalars continue on the next lines, indented under the dash.
                        out.push_str(&s.replace('\n', &format!("\n{pad}  ")));
                        out.push('\n');
                    }
                    other => {
                        out.push('\n');
                        write(other, indent + 2, out);
                    }
                }
            }
        }
    }
}

/// `key: value` at `indent` (the padding is written already).
fn write_entry(key: &str, value: &Node, indent: usize, out: &mut String) {
    out.push_str(key);
    out.push(':');
    match value {
        Node::Scalar(s) | Node::Inline(s) => {
            out.push(' ');
            // Block scalars continue on the next lines, indented under the key.
            out.push_str(&s.replace('\n', &format!("\n{}  ", " ".repeat(indent))));
            out.push('\n');
        }
        Node::Map(entries) if entries.is_empty() => out.push_str(" {}\n"),
        Node::Seq(items) if items.is_empty() => out.push_str(" []\n"),
        Node::Map(_) => {
            out.push('\n');
            write(value, indent + 2, out);
        }
        Node::Seq(_) => {
            out.push('\n');
            // Kestra's flows write lists under their key at the same or a deeper indent.
            write(value, indent + 2, out);
        }
    }
}

/// Scalars a flow may hold, well formed YAML: words, numbers, durations, dates,
/// templates, type names, flow-style collections, block scalars, tags and anchors.
fn safe_scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(""),
        Just("~"),
        Just("null"),
        Just("true"),
        Just("false"),
        Just("yes"),
        Just("off"),
        Just("0"),
        Just("-1"),
        Just("3"),
        Just("0x1F"),
        Just("0o17"),
        Just("1e400"),
        Just("-.inf"),
        Just(".nan"),
        Just("1_000"),
        Just("12:30:00"),
        Just("2024-01-01"),
        Just("2024-01-01T00:00:00Z"),
        Just("PT1S"),
        Just("PT5M"),
        Just("P1D"),
        Just("PT0S"),
        Just("PT-1S"),
        Just("P999999999999999999D"),
        Just("P99999999999999999999999999999D"),
        Just("PT1.5S"),
        Just("1 hour"),
        Just("'single quoted'"),
        Just("\"double \\u00e9 quoted\""),
        Just("\"{{ inputs.name }}\""),
        Just("\"{{ outputs.missing.value ?? 'x' }}\""),
        Just("\"{% for i in range(1, 3) %}{{ i }}{% endfor %}\""),
        Just("\"{{ unclosed\""),
        Just("\"{{ taskrun.value }}\""),
        Just("\"* * * * *\""),
        Just("\"*/15 * * * * *\""),
        Just("\"0 0 31 2 *\""),
        Just("\"@daily\""),
        Just("\"not a cron\""),
        Just("Europe/Paris"),
        Just("Mars/Olympus"),
        Just("SUCCESS"),
        Just("FAILED"),
        Just("WARN"),
        Just("QUEUE"),
        Just("|\nblock line 1\nblock line 2"),
        Just(">-\nfolded"),
        Just("&anchor value"),
        Just("!!str 1"),
        Just("!!binary aGVsbG8="),
        Just("!custom tagged"),
        Just("[1, 2, {a: b}]"),
        Just("{a: 1, b: [2]}"),
        Just("[]"),
        Just("{}"),
        Just("héllo ☃ 𝄞"),
        Just("io.kestra.plugin.core.log.Log"),
        Just("io.kestra.plugin.core.flow.Parallel"),
        Just("company.team"),
        Just("hello"),
        Just("a..b"),
        Just("-leading-dash"),
        Just("has space"),
    ]
    .prop_map(str::to_string)
}

/// Scalars that break the document, or nearly.
fn breaking_scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("99999999999999999999999"),
        Just("*anchor"),
        Just("*undefined"),
        Just("!!int nope"),
        Just("!!map {}"),
        Just("[unclosed"),
        Just("{unclosed: 1"),
        Just("\"unclosed"),
        Just("a: b"),
        Just("- item"),
        Just("? complex"),
        Just("%TAG"),
        Just("\u{feff}bom"),
        Just("tab\there"),
        Just("nul\u{0}here"),
    ]
    .prop_map(str::to_string)
}

/// Mostly valid task ids, sometimes not.
fn task_id() -> impl Strategy<Value = String> {
    prop_oneof![16 => "[a-z][a-zA-Z0-9_]{0,8}", 1 => word(), 1 => any_scalar()]
}

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z][a-zA-Z0-9_-]{0,8}",
        1 => "[a-z][a-z0-9_]{0,5}(\\.[a-z][a-z0-9_]{0,5}){1,3}",
        1 => "[a-zA-Zéü☃][a-zA-Z0-9 _.éü☃-]{0,11}",
    ]
}

fn any_scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => safe_scalar(),
        6 => word(),
        2 => any::<i32>().prop_map(|n| n.to_string()),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_map(|n| n.to_string()),
        1 => "[ -~]{0,16}".prop_map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))),
    ]
}

/// Any value: scalars, and small maps and lists of any keys.
fn any_value() -> BoxedStrategy<Node> {
    any_scalar()
        .prop_map(Node::Scalar)
        .prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec((word(), inner.clone()), 0..4).prop_map(map),
                prop::collection::vec(inner, 0..4).prop_map(Node::Seq),
            ]
        })
        .boxed()
}

const TASK_TYPES: &[&str] = &[
    "io.kestra.plugin.core.log.Log",
    "io.kestra.core.tasks.log.Log",
    "io.kestra.plugin.core.debug.Return",
    "io.kestra.plugin.core.debug.Echo",
    "io.kestra.plugin.core.output.OutputValues",
    "io.kestra.plugin.core.execution.Fail",
    "io.kestra.plugin.core.execution.Labels",
    "io.kestra.plugin.core.flow.Sleep",
    "io.kestra.plugin.core.flow.Subflow",
    "io.kestra.core.tasks.flows.Flow",
    "io.kestra.plugin.core.flow.Pause",
    "io.kestra.plugin.core.http.Request",
    "io.kestra.plugin.scripts.shell.Commands",
    "io.kestra.plugin.core.flow.Unknown",
    "Log",
    "",
];

const FLOWABLE_TYPES: &[&str] = &[
    "io.kestra.plugin.core.flow.Sequential",
    "io.kestra.core.tasks.flows.Sequential",
    "io.kestra.plugin.core.flow.Parallel",
    "io.kestra.plugin.core.flow.If",
    "io.kestra.plugin.core.flow.Switch",
    "io.kestra.plugin.core.flow.ForEach",
    "io.kestra.plugin.core.flow.EachSequential",
    "io.kestra.plugin.core.flow.EachParallel",
];

const TASK_KEYS: &[&str] = &[
    "message",
    "level",
    "format",
    "values",
    "value",
    "labels",
    "duration",
    "delay",
    "timeout",
    "condition",
    "errorMessage",
    "namespace",
    "flowId",
    "inputs",
    "wait",
    "transmitFailed",
    "inheritLabels",
    "revision",
    "onResume",
    "concurrent",
    "concurrencyLimit",
    "disabled",
    "runIf",
    "allowFailure",
    "allowWarning",
    "description",
    "workerGroup",
    "logLevel",
    "logToFile",
    "outputs",
    "uri",
    "method",
    "commands",
    "retry",
    "scheduleDate",
    "Message",
    "unknownProperty",
];

fn retry() -> impl Strategy<Value = Node> {
    (
        prop::sample::select(&["constant", "exponential", "random", "other", ""][..]),
        any_scalar(),
        any_scalar(),
        any::<bool>(),
    )
        .prop_map(|(kind, interval, attempts, behavior)| {
            let mut entries = vec![
                ("type".to_string(), scalar(kind)),
                ("interval".to_string(), Node::Scalar(interval)),
                ("maxAttempts".to_string(), Node::Scalar(attempts)),
                ("minInterval".to_string(), scalar("PT1S")),
                ("maxInterval".to_string(), scalar("PT10S")),
            ];
            if behavior {
                entries.push(("behavior".to_string(), scalar("CREATE_NEW_EXECUTION")));
                entries.push(("maxDuration".to_string(), scalar("PT1M")));
            }
            map(entries)
        })
}

/// An input declaration of any type, with its properties.
fn input() -> impl Strategy<Value = Node> {
    let types = prop::sample::select(
        &[
            "STRING",
            "INT",
            "FLOAT",
            "BOOLEAN",
            "BOOL",
            "DATETIME",
            "DATE",
            "TIME",
            "DURATION",
            "JSON",
            "URI",
            "FILE",
            "ENUM",
            "SELECT",
            "MULTISELECT",
            "ARRAY",
            "SECRET",
            "YAML",
            "EMAIL",
            "string",
            "NOPE",
        ][..],
    );
    let props = prop::sample::subsequence(
        &[
            "defaults",
            "required",
            "validator",
            "min",
            "max",
            "after",
            "before",
            "values",
            "options",
            "allowCustomValue",
            "itemType",
            "extension",
            "dependsOn",
            "description",
            "displayName",
            "prefill",
            "autoSelectFirst",
            "isRadio",
            "name",
        ][..],
        0..6,
    );
    (word(), types, props, prop::collection::vec(any_value(), 6)).prop_map(|(id, kind, props, values)| {
        let mut entries = vec![
            ("id".to_string(), Node::Scalar(id)),
            ("type".to_string(), scalar(kind)),
        ];
        for (prop, value) in props.into_iter().zip(values) {
            let value = match prop {
                "values" | "options" => Node::Seq(vec![scalar("a"), scalar("b"), value]),
                "dependsOn" => Node::Map(vec![
                    ("inputs".to_string(), Node::Seq(vec![scalar("other"), value])),
                    ("condition".to_string(), scalar("\"{{ inputs.other == 'a' }}\"")),
                ]),
                _ => value,
            };
            entries.push((prop.to_string(), value));
        }
        map(entries)
    })
}

fn trigger() -> impl Strategy<Value = Node> {
    let kind = prop::sample::select(
        &[
            "io.kestra.plugin.core.trigger.Schedule",
            "io.kestra.core.models.triggers.types.Schedule",
            "io.kestra.plugin.core.trigger.Webhook",
            "io.kestra.plugin.core.trigger.Flow",
            "io.kestra.plugin.core.trigger.Unknown",
        ][..],
    );
    let props = prop::sample::subsequence(
        &[
            "cron",
            "timezone",
            "withSeconds",
            "key",
            "disabled",
            "conditions",
            "preconditions",
            "inputs",
            "backfill",
            "recoverMissedSchedules",
            "stopAfter",
            "signature",
            "responseCode",
            "states",
            "lateMaximumDelay",
        ][..],
        0..6,
    );
    (word(), kind, props, prop::collection::vec(any_value(), 6)).prop_map(|(id, kind, props, values)| {
        let mut entries = vec![
            ("id".to_string(), Node::Scalar(id)),
            ("type".to_string(), scalar(kind)),
        ];
        for (prop, value) in props.into_iter().zip(values) {
            let value = match prop {
                "conditions" => Node::Seq(vec![Node::Map(vec![
                    (
                        "type".to_string(),
                        scalar("io.kestra.plugin.core.condition.ExecutionStatus"),
                    ),
                    ("in".to_string(), Node::Seq(vec![scalar("SUCCESS"), value])),
                ])]),
                "preconditions" => Node::Map(vec![
                    ("id".to_string(), scalar("p")),
                    (
                        "flows".to_string(),
                        Node::Seq(vec![Node::Map(vec![
                            ("namespace".to_string(), scalar("company.team")),
                            ("flowId".to_string(), value),
                        ])]),
                    ),
                ]),
                "signature" => Node::Map(vec![
                    ("provider".to_string(), value),
                    ("secret".to_string(), scalar("\"{{ secret('s') }}\"")),
                ]),
                _ => value,
            };
            entries.push((prop.to_string(), value));
        }
        map(entries)
    })
}

/// A task: a leaf of any type, or a flowable one holding more tasks (nested up to the
/// strategy's depth), with some of the properties tasks take.
fn task() -> BoxedStrategy<Node> {
    let extras = prop::collection::vec((prop::sample::select(TASK_KEYS), any_value()), 0..4);
    // Tasks as flows write them, that the parser accepts.
    let duration = prop_oneof![
        4 => prop::sample::select(&["PT1S", "PT0S", "P1D", "PT1.5S", "PT10M"][..]).prop_map(str::to_string),
        1 => safe_scalar(),
    ];
    let clean = (task_id(), 0u8..5, safe_scalar(), duration).prop_map(|(id, kind, value, duration)| {
        let (kind, key) = match kind {
            0 => ("io.kestra.plugin.core.log.Log", "message"),
            1 => ("io.kestra.plugin.core.debug.Return", "format"),
            2 => ("io.kestra.plugin.core.flow.Sleep", "duration"),
            3 => ("io.kestra.plugin.core.execution.Fail", "errorMessage"),
            _ => ("io.kestra.plugin.core.flow.Pause", "delay"),
        };
        let value = if matches!(key, "duration" | "delay") {
            duration
        } else {
            value
        };
        map(vec![
            ("id".to_string(), Node::Scalar(id)),
            ("type".to_string(), scalar(kind)),
            (key.to_string(), Node::Scalar(value)),
        ])
    });
    let any_leaf = (
        word(),
        prop::sample::select(TASK_TYPES),
        extras,
        prop::option::of(retry()),
    )
        .prop_map(|(id, kind, extras, retry)| {
            let mut entries = vec![
                ("id".to_string(), Node::Scalar(id)),
                ("type".to_string(), scalar(kind)),
            ];
            entries.extend(extras.into_iter().map(|(k, v)| (k.to_string(), v)));
            if let Some(r) = retry {
                entries.push(("retry".to_string(), r));
            }
            map(entries)
        });
    let leaf = prop_oneof![4 => clean, 1 => any_leaf];
    leaf.prop_recursive(5, 40, 4, |inner| {
        let list = prop::collection::vec(inner, 1..4).prop_map(Node::Seq);
        (
            task_id(),
            prop::sample::select(FLOWABLE_TYPES),
            list.clone(),
            list.clone(),
            list,
            any_value(),
            0u8..8,
        )
            .prop_map(|(id, kind, tasks, other, errors, value, shape)| {
                let mut entries = vec![
                    ("id".to_string(), Node::Scalar(id)),
                    ("type".to_string(), scalar(kind)),
                ];
                match kind.rsplit('.').next() {
                    Some("If") => {
                        entries.push(("condition".to_string(), value));
                        entries.push(("then".to_string(), tasks));
                        entries.push(("else".to_string(), other));
                    }
                    Some("Switch") => {
                        entries.push(("value".to_string(), value));
                        entries.push((
                            "cases".to_string(),
                            if shape == 0 {
                                Node::Map(vec![("a".to_string(), tasks), ("b".to_string(), scalar("x"))])
                            } else {
                                Node::Map(vec![("a".to_string(), tasks)])
                            },
                        ));
                        entries.push(("defaults".to_string(), other));
                    }
                    Some("ForEach" | "EachSequential" | "EachParallel") => {
                        let values = match shape {
                            0 => Node::Inline("[1, 2, 3]".into()),
                            1 => scalar("\"[\\\"a\\\", \\\"b\\\"]\""),
                            2 => Node::Inline("{a: 1}".into()),
                            3 => scalar("\"{{ range(1, 3) }}\""),
                            _ => value,
                        };
                        let key = if kind.ends_with("ForEach") {
                            "values"
                        } else {
                            "value"
                        };
                        entries.push((key.to_string(), values));
                        if kind.ends_with("ForEach") {
                            entries.push(("concurrencyLimit".to_string(), Node::Scalar(shape.to_string())));
                        }
                        entries.push(("tasks".to_string(), tasks));
                    }
                    _ => {
                        entries.push(("tasks".to_string(), tasks));
                        if shape == 0 {
                            entries.push(("concurrent".to_string(), value));
                        }
                    }
                }
                if shape % 3 == 0 {
                    entries.push(("errors".to_string(), errors));
                }
                map(entries)
            })
    })
    .boxed()
}

const FLOW_KEYS: &[&str] = &[
    "description",
    "labels",
    "inputs",
    "outputs",
    "variables",
    "tasks",
    "errors",
    "finally",
    "afterExecution",
    "triggers",
    "pluginDefaults",
    "taskDefaults",
    "concurrency",
    "retry",
    "disabled",
    "deleted",
    "revision",
    "tenantId",
    "sla",
    "workerGroup",
    "listeners",
    "unknownKey",
];

fn flow() -> impl Strategy<Value = Node> {
    let id = prop_oneof![3 => Just("hello".to_string()), 1 => any_scalar()];
    let namespace = prop_oneof![3 => Just("company.team".to_string()), 1 => any_scalar()];
    let keys = prop::sample::subsequence(FLOW_KEYS, 0..5);
    let tasks = prop::collection::vec(task(), 1..5).prop_map(Node::Seq);
    (
        id,
        namespace,
        keys,
        tasks.clone(),
        tasks,
        prop::collection::vec(input(), 0..4),
        prop::collection::vec(trigger(), 0..3),
        prop_oneof![2 => safe_scalar().prop_map(Node::Scalar), 1 => any_value()],
        prop::bool::weighted(0.1),
    )
        .prop_map(
            |(id, namespace, keys, tasks, more, inputs, triggers, value, drop)| {
                let mut entries = Vec::new();
                if !drop {
                    entries.push(("id".to_string(), Node::Scalar(id)));
                    entries.push(("namespace".to_string(), Node::Scalar(namespace)));
                }
                entries.push(("tasks".to_string(), tasks));
                for key in keys {
                    let node = match key {
                        "inputs" => Node::Seq(inputs.clone()),
                        "triggers" => Node::Seq(triggers.clone()),
                        "errors" | "finally" | "afterExecution" => more.clone(),
                        "outputs" => Node::Seq(vec![Node::Map(vec![
                            ("id".to_string(), scalar("o")),
                            ("type".to_string(), scalar("STRING")),
                            ("value".to_string(), value.clone()),
                        ])]),
                        "concurrency" => Node::Map(vec![
                            ("limit".to_string(), value.clone()),
                            ("behavior".to_string(), scalar("QUEUE")),
                        ]),
                        "pluginDefaults" | "taskDefaults" => Node::Seq(vec![Node::Map(vec![
                            ("type".to_string(), scalar("io.kestra.plugin.core.log.Log")),
                            ("forced".to_string(), scalar("true")),
                            (
                                "values".to_string(),
                                Node::Map(vec![("level".to_string(), value.clone())]),
                            ),
                        ])]),
                        "retry" => Node::Map(vec![
                            ("type".to_string(), scalar("constant")),
                            ("interval".to_string(), value.clone()),
                        ]),
                        "labels" | "variables" => map(vec![
                            ("env".to_string(), scalar("dev")),
                            ("other".to_string(), value.clone()),
                        ]),
                        _ => value.clone(),
                    };
                    entries.push((key.to_string(), node));
                }
                map(entries)
            },
        )
}

fn yaml(node: &Node) -> String {
    let mut out = String::new();
    write(node, 0, &mut out);
    out
}

// ---------------------------------------------------------------------------------
// mutations of text

#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(prop::sample::Index),
    DuplicateLine(prop::sample::Index),
    SwapLines(prop::sample::Index, prop::sample::Index),
    Indent(prop::sample::Index, i8),
    InsertLine(prop::sample::Index, String),
    InsertText(prop::sample::Index, String),
    Truncate(prop::sample::Index),
    ReplaceScalar(prop::sample::Index, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let line = prop_oneof![
        (prop::sample::select(FLOW_KEYS), any_scalar()).prop_map(|(k, v)| format!("{k}: {v}")),
        (prop::sample::select(TASK_KEYS), any_scalar()).prop_map(|(k, v)| format!("  {k}: {v}")),
        any_scalar().prop_map(|v| format!("  - id: {v}")),
        prop::sample::select(TASK_TYPES).prop_map(|t| format!("    type: {t}")),
        prop::sample::select(FLOWABLE_TYPES).prop_map(|t| format!("    type: {t}")),
        Just("---".to_string()),
        Just("...".to_string()),
        Just("tasks:".to_string()),
        Just("  tasks:".to_string()),
        Just("- ".to_string()),
        Just("\t".to_string()),
        Just("<<: *anchor".to_string()),
        Just("anchor: &anchor {a: 1}".to_string()),
        "[^\n]{0,20}",
    ];
    let text = prop_oneof![
        Just(":".to_string()),
        Just(" ".to_string()),
        Just("-".to_string()),
        Just("'".to_string()),
        Just("\"".to_string()),
        Just("{".to_string()),
        Just("[".to_string()),
        Just("&".to_string()),
        Just("*".to_string()),
        Just("!".to_string()),
        Just("#".to_string()),
        Just("\n".to_string()),
        Just("\r\n".to_string()),
        Just("\u{0}".to_string()),
        Just("\u{feff}".to_string()),
        any::<String>().prop_map(|s| s.chars().take(4).collect()),
    ];
    prop_oneof![
        2 => any::<prop::sample::Index>().prop_map(Mutation::DeleteLine),
        1 => any::<prop::sample::Index>().prop_map(Mutation::DuplicateLine),
        1 => (any::<prop::sample::Index>(), any::<prop::sample::Index>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        2 => (any::<prop::sample::Index>(), -4i8..=4).prop_map(|(i, d)| Mutation::Indent(i, d)),
        2 => (any::<prop::sample::Index>(), line).prop_map(|(i, l)| Mutation::InsertLine(i, l)),
        2 => (any::<prop::sample::Index>(), text).prop_map(|(i, t)| Mutation::InsertText(i, t)),
        1 => any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        2 => (any::<prop::sample::Index>(), any_scalar()).prop_map(|(i, s)| Mutation::ReplaceScalar(i, s)),
        1 => (any::<prop::sample::Index>(), breaking_scalar()).prop_map(|(i, s)| Mutation::ReplaceScalar(i, s)),
    ]
}

fn boundary(s: &str, index: &prop::sample::Index) -> usize {
    let mut at = index.index(s.len() + 1);
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn mutate(source: &str, mutations: &[Mutation]) -> String {
    let mut lines: Vec<String> = source.lines().map(str::to_string).collect();
    for m in mutations {
        let n = lines.len();
        match m {
            Mutation::DeleteLine(i) if n > 0 => {
                lines.remove(i.index(n));
            }
            Mutation::DuplicateLine(i) if n > 0 => {
                let k = i.index(n);
                let copy = lines[k].clone();
                lines.insert(k, copy);
            }
            Mutation::SwapLines(a, b) if n > 0 => lines.swap(a.index(n), b.index(n)),
            Mutation::Indent(i, d) if n > 0 => {
                let line = &mut lines[i.index(n)];
                if *d > 0 {
                    line.insert_str(0, &" ".repeat(*d as usize));
                } else {
                    let spaces = line.len() - line.trim_start_matches(' ').len();
                    line.drain(..spaces.min(d.unsigned_abs() as usize));
                }
            }
            Mutation::InsertLine(i, l) => lines.insert(i.index(n + 1), l.clone()),
            Mutation::InsertText(i, t) if n > 0 => {
                let line = &mut lines[i.index(n)];
                let at = boundary(line, i);
                line.insert_str(at, t);
            }
            Mutation::Truncate(i) if n > 0 => {
                let k = i.index(n);
                lines.truncate(k + 1);
                let at = boundary(&lines[k], i);
                lines[k].truncate(at);
            }
            Mutation::ReplaceScalar(i, s) if n > 0 => {
                let line = &mut lines[i.index(n)];
                if let Some(colon) = line.find(": ") {
                    line.truncate(colon + 2);
                    line.push_str(s);
                }
            }
            _ => {}
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// The flows of `flows/` and `tests/kestra-flows/`, read once.
fn seeds() -> &'static [(String, String)] {
    static SEEDS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut out = Vec::new();
        let mut dirs = vec![root.join("flows"), root.join("tests/kestra-flows")];
        while let Some(dir) = dirs.pop() {
            let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            for entry in entries {
                let path = entry.expect("a directory entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                    let text = std::fs::read_to_string(&path).expect("a flow");
                    out.push((path.display().to_string(), text));
                }
            }
        }
        out.sort();
        assert!(out.len() > 20, "the seed flows are found");
        out
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_text_parses_or_is_refused(source in prop_oneof![
        any::<String>(),
        "[a-z:\\- \n{}\\[\\],'\"&*!|>#%@]{0,80}",
        prop::collection::vec(any::<u8>(), 0..80).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]) {
        check(&source)?;
    }

    #[test]
    fn generated_flows_parse_or_are_refused(
        flow in flow(),
        mutations in prop::collection::vec(mutation(), 0..3),
    ) {
        check(&mutate(&yaml(&flow), &mutations))?;
    }

    #[test]
    fn seed_flows_mutated_parse_or_are_refused(
        seed in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let (_, text) = seed.get(seeds());
        check(&mutate(text, &mutations))?;
    }
}

/// Every seed as it is, and all of them as one multi-document source.
#[test]
fn seed_flows_parse_or_are_refused() {
    for (name, text) in seeds() {
        if let Err(e) = check(text) {
            panic!("{name}: {e}");
        }
    }
    let all: Vec<&str> = seeds().iter().map(|(_, t)| t.as_str()).collect();
    assert!(check(&all.join("\n---\n")).is_ok());
}
