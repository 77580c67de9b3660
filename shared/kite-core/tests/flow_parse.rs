//! Kestra's own test flows parse, and bad flows are refused with a path and a line.

use kite_core::flow::{parse_flow, parse_flows, FlowErrorKind, TaskKind, TaskType, TriggerType};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/kestra-flows");

fn corpus(name: &str) -> String {
    std::fs::read_to_string(format!("{CORPUS}/{name}")).expect("corpus file")
}

#[test]
fn every_corpus_flow_parses() {
    let mut count = 0;
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(CORPUS).expect("corpus folder") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if !(name.ends_with(".yaml") || name.ends_with(".yml")) {
            continue;
        }
        count += 1;
        let source = std::fs::read_to_string(&path).expect("read");
        if let Err(errors) = parse_flow(&source) {
            failures.push(format!("{name}: {errors:?}"));
        }
    }
    assert_eq!(count, 80);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let bench = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/bench/benchmark01.yaml"
    ))
    .unwrap();
    assert!(parse_flow(&bench).is_ok());
}

#[test]
fn switch_cases_and_defaults() {
    let flow = parse_flow(&corpus("switch.yaml")).unwrap();
    assert_eq!(
        flow.labels,
        vec![("switchFlowLabel".to_string(), "switchFoo".to_string())]
    );
    let TaskKind::Switch {
        cases, defaults, ..
    } = &flow.tasks[0].kind
    else {
        panic!("not a switch")
    };
    assert_eq!(
        cases.keys().collect::<Vec<_>>(),
        vec!["FIRST", "SECOND", "THIRD"]
    );
    assert_eq!(cases["SECOND"].len(), 2);
    assert_eq!(defaults[0].id, "default");
    assert_eq!(flow.triggers[0].trigger_type, TriggerType::Schedule);
}

#[test]
fn inputs_with_legacy_names() {
    let flow = parse_flow(&corpus("inputs.yaml")).unwrap();
    let secret = flow.inputs.iter().find(|i| i.id == "secret").unwrap();
    assert!(secret.required);
    let optional = flow.inputs.iter().find(|i| i.id == "optional").unwrap();
    assert!(!optional.required);
    let e = flow.inputs.iter().find(|i| i.id == "enum").unwrap();
    assert_eq!(
        e.values.as_deref(),
        Some(&["ENUM_VALUE".to_string(), "OTHER_ONE".to_string()][..])
    );
    assert_eq!(
        flow.find_task("log").map(|t| t.task_type()),
        Some(TaskType::Return)
    );
}

#[test]
fn legacy_type_names_are_accepted() {
    let src = "id: legacy\nnamespace: dev\ntasks:\n  - id: a\n    type: io.kestra.core.tasks.log.Log\n    message: hi\ntriggers:\n  - id: w\n    type: io.kestra.core.models.triggers.types.Webhook\n    key: k\n";
    let flow = parse_flow(src).unwrap();
    assert_eq!(flow.tasks[0].task_type(), TaskType::Log);
    assert_eq!(flow.triggers[0].trigger_type, TriggerType::Webhook);
}

#[test]
fn plugin_defaults_fill_missing_properties() {
    let src = "id: d\nnamespace: dev\npluginDefaults:\n  - type: io.kestra.plugin.core.log.Log\n    values:\n      level: WARN\n      message: default\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n  - id: b\n    type: io.kestra.plugin.core.log.Log\n    message: mine\n";
    let flow = parse_flow(src).unwrap();
    let TaskKind::Log { message, level } = &flow.tasks[1].kind else {
        panic!()
    };
    assert_eq!(message, "mine");
    assert_eq!(level.as_str(), "WARN");
    let TaskKind::Log { message, .. } = &flow.tasks[0].kind else {
        panic!()
    };
    assert_eq!(message, "default");
}

fn first_error(src: &str) -> kite_core::flow::FlowError {
    parse_flow(src).unwrap_err().remove(0)
}

#[test]
fn duplicate_task_ids_name_the_line() {
    let e = first_error("id: a\nnamespace: dev\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.debug.Return\n  - id: t\n    type: io.kestra.plugin.core.debug.Return\n");
    assert_eq!(e.kind, FlowErrorKind::DuplicateTaskId);
    assert_eq!(e.path, "tasks[1].id");
    assert_eq!(e.line, Some(6));
}

#[test]
fn unknown_task_type_lists_the_supported_ones() {
    let e = first_error(
        "id: a\nnamespace: dev\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Nope\n",
    );
    assert_eq!(e.kind, FlowErrorKind::UnknownType);
    assert_eq!(e.path, "tasks[0].type");
    assert_eq!(e.line, Some(5));
    assert!(e.message.contains("io.kestra.plugin.core.log.Log"));
}

#[test]
fn missing_required_property() {
    let e = first_error(
        "id: a\nnamespace: dev\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n",
    );
    assert_eq!(e.kind, FlowErrorKind::MissingProperty);
    assert_eq!(e.path, "tasks[0].message");
    assert_eq!(e.line, Some(4));
}

#[test]
fn invalid_ids() {
    let e = first_error("id: a b\nnamespace: dev\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.debug.Return\n");
    assert_eq!(
        (e.kind, e.path.as_str(), e.line),
        (FlowErrorKind::InvalidId, "id", Some(1))
    );
    let e = first_error(
        "id: a\nnamespace: Dev!\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.debug.Return\n",
    );
    assert_eq!(
        (e.kind, e.path.as_str(), e.line),
        (FlowErrorKind::InvalidId, "namespace", Some(2))
    );
}

#[test]
fn bad_cron() {
    let e = first_error("id: a\nnamespace: dev\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.debug.Return\ntriggers:\n  - id: s\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"61 * * * *\"\n");
    assert_eq!(e.kind, FlowErrorKind::InvalidCron);
    assert_eq!(e.path, "triggers[0].cron");
    assert_eq!(e.line, Some(9));
    assert!(parse_flow("id: a\nnamespace: dev\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.debug.Return\ntriggers:\n  - id: s\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"@daily\"\n").is_ok());
}

#[test]
fn unknown_fields_are_refused() {
    let e = first_error("id: a\nnamespace: dev\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n    mesage: typo\n");
    assert_eq!(e.kind, FlowErrorKind::UnknownProperty);
    assert_eq!(e.path, "tasks[0].mesage");
    assert_eq!(e.line, Some(7));
}

#[test]
fn yaml_syntax_errors_have_a_line() {
    let e = first_error("id: a\nnamespace: dev\ntasks:\n  - id: t\n   type: [\n");
    assert_eq!(e.kind, FlowErrorKind::Yaml);
    assert!(e.line.is_some());
}

#[test]
fn several_errors_at_once_and_multi_documents() {
    let errors = parse_flow("id: a\nnamespace: dev\ntasks:\n  - id: t\n    type: x.Y\n  - id: u\n    type: io.kestra.plugin.core.log.Log\n").unwrap_err();
    assert_eq!(errors.len(), 2);
    let docs = parse_flows("id: a\nnamespace: dev\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.debug.Return\n---\nid: b\nnamespace: dev\ntasks: []\n");
    assert_eq!(docs.len(), 2);
    assert!(docs[0].is_ok());
    assert!(docs[1].is_err());
}
