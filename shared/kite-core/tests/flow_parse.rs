//! Kestra's own test flows parse into the model, and bad flows are refused
//! with a kind, a field path and a YAML line.

// The corpus of flows is read from disk by the tests, never by the core.
#![allow(clippy::disallowed_methods)]

use kite_core::flow::{
    flow_source_to_json, parse_flow, parse_flows, ConcurrencyBehavior, Flow, FlowError, FlowErrorKind,
    RetryKind, TaskKind, TaskType, TriggerType,
};
use kite_core::input::InputType;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/kestra-flows");

fn corpus(name: &str) -> Flow {
    let source = std::fs::read_to_string(format!("{CORPUS}/{name}")).expect("corpus file");
    match parse_flow(&source) {
        Ok(flow) => flow,
        Err(errors) => panic!("{name}: {errors:?}"),
    }
}

/// A flow with the given task list (YAML lines indented by two spaces).
fn with_tasks(tasks: &str) -> String {
    format!("id: a\nnamespace: dev\ntasks:\n{tasks}")
}

const RETURN: &str = "io.kestra.plugin.core.debug.Return";

fn errors(src: &str) -> Vec<FlowError> {
    match parse_flow(src) {
        Ok(_) => panic!("accepted:\n{src}"),
        Err(e) => e,
    }
}

/// The single error of `src`, checked for kind, path and line.
fn only_error(src: &str, kind: FlowErrorKind, path: &str, line: usize) -> FlowError {
    let mut all = errors(src);
    assert_eq!(all.len(), 1, "{all:#?}");
    let e = all.remove(0);
    assert_eq!(
        (e.kind, e.path.as_str(), e.line),
        (kind, path, Some(line)),
        "{e:#?}"
    );
    e
}

// ---------------------------------------------------------------------------
// The corpus

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
        match parse_flow(&source) {
            Ok(flow) => assert!(!flow.tasks.is_empty(), "{name}"),
            Err(errors) => failures.push(format!("{name}: {errors:?}")),
        }
    }
    assert_eq!(count, 87);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let bench = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/bench/benchmark01.yaml"
    ))
    .expect("benchmark flow");
    assert!(parse_flow(&bench).is_ok());
}

#[test]
fn switch_cases_defaults_labels_and_schedule() {
    let flow = corpus("switch.yaml");
    assert_eq!(
        flow.labels,
        vec![("switchFlowLabel".to_string(), "switchFoo".to_string())]
    );
    let TaskKind::Switch {
        value,
        cases,
        defaults,
        ..
    } = &flow.tasks[0].kind
    else {
        panic!("not a switch: {:?}", flow.tasks[0].kind)
    };
    assert!(value.as_str().is_some_and(|v| v.contains("inputs.string")));
    assert_eq!(cases.keys().collect::<Vec<_>>(), vec!["FIRST", "SECOND", "THIRD"]);
    assert_eq!(cases["SECOND"].len(), 2);
    assert_eq!(defaults[0].id, "default");
    assert_eq!(flow.triggers[0].trigger_type, TriggerType::Schedule);
    assert_eq!(flow.triggers[0].properties["cron"], "0 * * * *");
    assert!(flow.find_task("error-t1").is_some());
}

#[test]
fn inputs_fill_every_field_and_accept_the_legacy_name() {
    let flow = corpus("inputs.yaml");
    let by_id = |id: &str| {
        flow.inputs
            .iter()
            .find(|i| i.id == id)
            .unwrap_or_else(|| panic!("input {id}"))
    };
    // `- name: secret` (pre-0.15 spelling)
    let secret = by_id("secret");
    assert_eq!(secret.input_type, InputType::Secret);
    assert!(secret.required);
    assert_eq!(secret.raw["id"], "secret");
    assert!(!by_id("optional").required);
    let e = by_id("enum");
    assert_eq!(
        e.values.as_deref(),
        Some(&["ENUM_VALUE".to_string(), "OTHER_ONE".to_string()][..])
    );
    let array = by_id("array");
    assert_eq!(array.item_type, Some(InputType::Int));
    let validated = by_id("validatedString");
    assert!(validated.validator.is_some());
    assert_eq!(validated.raw["type"], "STRING");
    assert!(by_id("validatedInt").min.is_some());
    assert!(flow.inputs.iter().any(|i| i.id == "nested.string"));
    assert_eq!(
        flow.find_task("log").map(|t| t.task_type()),
        Some(TaskType::Return)
    );
}

#[test]
fn labels_as_a_map_and_task_defaults() {
    let flow = corpus("logs.yaml");
    assert_eq!(
        flow.labels,
        vec![
            ("country".to_string(), "FR".to_string()),
            ("region".to_string(), "Nord".to_string())
        ]
    );
    assert_eq!(flow.plugin_defaults.len(), 1);
    assert_eq!(flow.plugin_defaults[0].type_name, "io.kestra.plugin.core.log.Log");
    let t4 = flow.find_task("t4").expect("t4");
    assert_eq!(t4.log_level.map(|l| l.as_str()), Some("INFO"));
    let TaskKind::Log { message, .. } = &flow.tasks[4].kind else {
        panic!("t5 is a Log")
    };
    assert_eq!(message.as_array().map(Vec::len), Some(2));
}

#[test]
fn labels_as_a_list_of_key_values() {
    let src = format!(
        "id: a\nnamespace: dev\nlabels:\n  - key: team\n    value: data\n  - key: tier\n    value: 1\ntasks:\n  - id: t\n    type: {RETURN}\n"
    );
    let flow = parse_flow(&src).expect("valid");
    assert_eq!(
        flow.labels,
        vec![
            ("team".to_string(), "data".to_string()),
            ("tier".to_string(), "1".to_string())
        ]
    );
}

#[test]
fn triggers_keep_their_properties() {
    let flow = corpus("webhook.yaml");
    assert_eq!(flow.triggers[0].trigger_type, TriggerType::Webhook);
    assert_eq!(flow.triggers[0].properties["key"], "a-secret-key");
    let flow = corpus("schedule-trigger.yaml");
    assert_eq!(flow.triggers.len(), 2);
    let flow = corpus("trigger-flow-listener.yaml");
    let t = &flow.triggers[0];
    assert_eq!(t.trigger_type, TriggerType::Flow);
    assert_eq!(t.properties["conditions"].as_array().map(Vec::len), Some(2));
    assert!(t.properties["inputs"]["from-parent"].is_string());
}

#[test]
fn finally_and_after_execution() {
    let flow = corpus("finally-flow-error.yaml");
    assert!(!flow.errors.is_empty());
    assert!(!flow.finally.is_empty());
    let flow = corpus("finally-sequential.yaml");
    let seq = flow
        .all_tasks()
        .into_iter()
        .find(|t| t.task_type() == TaskType::Sequential)
        .expect("a Sequential");
    let TaskKind::Sequential(body) = &seq.kind else {
        panic!("sequential")
    };
    assert!(!body.finally.is_empty());
    let flow = corpus("after-execution.yaml");
    assert_eq!(flow.after_execution.len(), 1);
    assert_eq!(flow.after_execution[0].id, "end");
    assert_eq!(flow.outputs[0].id, "final");
    assert_eq!(flow.outputs[0].type_name, "STRING");
}

#[test]
fn pause_on_resume_inputs() {
    let flow = corpus("pause_on_resume.yaml");
    let TaskKind::Pause(pause) = &flow.tasks[0].kind else {
        panic!("pause")
    };
    assert_eq!(pause.on_resume.len(), 2);
    assert_eq!(pause.on_resume[1].input_type, InputType::File);
    assert!(!pause.on_resume[1].required);
    assert_eq!(pause.on_resume[1].raw["required"], false);
    let flow = corpus("pause-delay.yaml");
    let TaskKind::Pause(pause) = &flow.tasks[0].kind else {
        panic!("pause")
    };
    assert_eq!(pause.delay.as_ref().and_then(|d| d.as_str()), Some("PT1S"));
}

#[test]
fn retry_timeout_and_concurrency() {
    let flow = corpus("full.yaml");
    let t = flow
        .all_tasks()
        .into_iter()
        .find(|t| t.retry.is_some())
        .expect("a task with retry");
    let retry = t.retry.as_ref().expect("retry");
    assert_eq!(retry.max_attempt, Some(5));
    assert_eq!(
        retry.kind,
        RetryKind::Constant {
            interval: "PT15M".into()
        }
    );
    assert_eq!(t.timeout.as_ref().and_then(|v| v.as_str()), Some("PT60M"));
    let flow = corpus("flow-concurrency-queue.yml");
    let c = flow.concurrency.expect("concurrency");
    assert_eq!((c.limit, c.behavior), (1, ConcurrencyBehavior::Queue));
}

#[test]
fn legacy_type_names_are_accepted() {
    let src = "id: legacy\nnamespace: dev\ntasks:\n  - id: a\n    type: io.kestra.core.tasks.log.Log\n    message: hi\n  - id: s\n    type: io.kestra.core.tasks.flows.Sequential\n    tasks:\n      - id: f\n        type: io.kestra.core.tasks.flows.Flow\n        namespace: dev\n        flowId: other\n      - id: r\n        type: io.kestra.core.tasks.debugs.Return\n        format: x\ntriggers:\n  - id: w\n    type: io.kestra.core.models.triggers.types.Webhook\n    key: k\n  - id: c\n    type: io.kestra.core.models.triggers.types.Schedule\n    cron: \"@daily\"\n";
    let flow = parse_flow(src).expect("valid");
    assert_eq!(flow.tasks[0].task_type(), TaskType::Log);
    assert_eq!(flow.tasks[0].type_name, "io.kestra.core.tasks.log.Log");
    assert_eq!(flow.tasks[1].task_type(), TaskType::Sequential);
    assert_eq!(
        flow.find_task("f").map(|t| t.task_type()),
        Some(TaskType::Subflow)
    );
    assert_eq!(flow.find_task("r").map(|t| t.task_type()), Some(TaskType::Return));
    assert_eq!(flow.triggers[0].trigger_type, TriggerType::Webhook);
    assert_eq!(flow.triggers[1].trigger_type, TriggerType::Schedule);
}

#[test]
fn plugin_defaults_fill_gaps_and_forced_ones_win() {
    let src = "id: d\nnamespace: dev\npluginDefaults:\n  - type: io.kestra.plugin.core.log\n    values:\n      level: WARN\n      message: default\n  - type: io.kestra.plugin.core.log.Log\n    forced: true\n    values:\n      level: ERROR\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n  - id: b\n    type: io.kestra.plugin.core.log.Log\n    message: mine\n    level: DEBUG\n  - id: c\n    type: io.kestra.plugin.core.debug.Return\n    format: untouched\n";
    let flow = parse_flow(src).expect("valid");
    let log = |i: usize| match &flow.tasks[i].kind {
        TaskKind::Log { message, level } => (message.clone(), level.as_str()),
        other => panic!("{other:?}"),
    };
    assert_eq!(log(0), ("default".into(), "ERROR"));
    assert_eq!(log(1), ("mine".into(), "ERROR"));
    assert_eq!(flow.plugin_defaults.len(), 2);
}

#[test]
fn plugin_defaults_written_with_a_legacy_type() {
    let src = "id: d\nnamespace: dev\ntaskDefaults:\n  - type: io.kestra.core.tasks.log.Log\n    values:\n      message: from legacy\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n";
    let flow = parse_flow(src).expect("valid");
    let TaskKind::Log { message, .. } = &flow.tasks[0].kind else {
        panic!("log")
    };
    assert_eq!(message, "from legacy");
}

#[test]
fn flow_source_as_json() {
    let json = flow_source_to_json("id: a\nnamespace: dev\nlabels:\n  k: 1\n").expect("yaml");
    assert_eq!(json["labels"]["k"], 1);
    let e = flow_source_to_json("id: [").expect_err("syntax");
    assert_eq!(e.kind, FlowErrorKind::Yaml);
}

// ---------------------------------------------------------------------------
// Validation: one test per error, with kind, path and line

#[test]
fn yaml_syntax_errors_have_a_line() {
    let e = errors("id: a\nnamespace: dev\ntasks:\n  - id: t\n   type: [\n").remove(0);
    assert_eq!(e.kind, FlowErrorKind::Yaml);
    assert!(e.line.is_some_and(|l| l >= 4), "{e:?}");
}

#[test]
fn duplicate_task_ids_anywhere() {
    let e = only_error(
        &with_tasks(&format!("  - id: t\n    type: {RETURN}\n  - id: s\n    type: io.kestra.plugin.core.flow.Sequential\n    tasks:\n      - id: t\n        type: {RETURN}\n")),
        FlowErrorKind::DuplicateTaskId,
        "tasks[1].tasks[0].id",
        9,
    );
    assert!(e.message.contains("Duplicate task id with name [t]"), "{e}");
    // errors/finally share the same id space
    only_error(
        &format!(
            "{}errors:\n  - id: t\n    type: {RETURN}\n",
            with_tasks(&format!("  - id: t\n    type: {RETURN}\n"))
        ),
        FlowErrorKind::DuplicateTaskId,
        "errors[0].id",
        7,
    );
}

#[test]
fn unknown_task_type_lists_the_supported_ones() {
    let e = only_error(
        &with_tasks("  - id: t\n    type: io.kestra.plugin.core.log.Nope\n"),
        FlowErrorKind::UnknownType,
        "tasks[0].type",
        5,
    );
    assert!(e.message.contains("Invalid type: io.kestra.plugin.core.log.Nope"));
    for name in TaskType::supported_names() {
        assert!(e.message.contains(name), "{name} missing from {e}");
    }
}

#[test]
fn unknown_trigger_type_lists_the_supported_ones() {
    let src = format!(
        "{}triggers:\n  - id: x\n    type: io.kestra.plugin.core.trigger.Nope\n",
        with_tasks(&format!("  - id: t\n    type: {RETURN}\n"))
    );
    let e = only_error(&src, FlowErrorKind::UnknownType, "triggers[0].type", 8);
    for name in TriggerType::supported_names() {
        assert!(e.message.contains(name), "{name} missing from {e}");
    }
}

#[test]
fn missing_required_properties() {
    let cases = [
        ("type: io.kestra.plugin.core.log.Log", "message"),
        ("type: io.kestra.plugin.core.flow.If\n    then:\n      - id: x\n        type: io.kestra.plugin.core.debug.Return", "condition"),
        ("type: io.kestra.plugin.core.flow.Switch\n    defaults:\n      - id: x\n        type: io.kestra.plugin.core.debug.Return", "value"),
        ("type: io.kestra.plugin.core.flow.Sequential", "tasks"),
        ("type: io.kestra.plugin.core.flow.Parallel", "tasks"),
        ("type: io.kestra.plugin.core.flow.Subflow\n    flowId: other", "namespace"),
        ("type: io.kestra.plugin.core.flow.Subflow\n    namespace: dev", "flowId"),
        ("type: io.kestra.plugin.core.flow.Sleep", "duration"),
        ("type: io.kestra.plugin.core.flow.ForEach\n    tasks:\n      - id: x\n        type: io.kestra.plugin.core.debug.Return", "values"),
    ];
    for (task, missing) in cases {
        let src = with_tasks(&format!("  - id: t\n    {task}\n"));
        let e = only_error(
            &src,
            FlowErrorKind::MissingProperty,
            &format!("tasks[0].{missing}"),
            4,
        );
        assert!(e.message.contains(missing), "{e}");
    }
}

#[test]
fn flow_without_tasks() {
    only_error(
        "id: a\nnamespace: dev\n",
        FlowErrorKind::MissingProperty,
        "tasks",
        1,
    );
    only_error(
        "id: a\nnamespace: dev\ntasks: []\n",
        FlowErrorKind::MissingProperty,
        "tasks",
        3,
    );
}

#[test]
fn invalid_flow_id_namespace_and_task_id() {
    let task = format!("  - id: t\n    type: {RETURN}\n");
    let e = only_error(
        &format!("id: a b\nnamespace: dev\ntasks:\n{task}"),
        FlowErrorKind::InvalidId,
        "id",
        1,
    );
    assert!(e.message.contains("^[a-zA-Z0-9][a-zA-Z0-9._-]*"), "{e}");
    only_error(
        &format!("id: {}\nnamespace: dev\ntasks:\n{task}", "a".repeat(101)),
        FlowErrorKind::InvalidId,
        "id",
        1,
    );
    only_error(
        &format!("id: a\nnamespace: Dev!\ntasks:\n{task}"),
        FlowErrorKind::InvalidId,
        "namespace",
        2,
    );
    only_error(
        &with_tasks(&format!("  - id: my.task\n    type: {RETURN}\n")),
        FlowErrorKind::InvalidId,
        "tasks[0].id",
        4,
    );
}

#[test]
fn invalid_input_type_and_id() {
    let task = format!("  - id: t\n    type: {RETURN}\n");
    only_error(
        &format!("id: a\nnamespace: dev\ninputs:\n  - id: x\n    type: STRNG\ntasks:\n{task}"),
        FlowErrorKind::UnknownType,
        "inputs[0].type",
        5,
    );
    only_error(
        &format!("id: a\nnamespace: dev\ninputs:\n  - id: -x\n    type: STRING\ntasks:\n{task}"),
        FlowErrorKind::InvalidId,
        "inputs[0].id",
        4,
    );
    only_error(
        &format!("id: a\nnamespace: dev\ninputs:\n  - id: x\n    type: STRING\n  - id: x\n    type: INT\ntasks:\n{task}"),
        FlowErrorKind::DuplicateInputId,
        "inputs[1].id",
        6,
    );
}

#[test]
fn depends_on_must_name_declared_inputs() {
    let task = format!("  - id: t\n    type: {RETURN}\n");
    let e = only_error(
        &format!("id: a\nnamespace: dev\ninputs:\n  - id: x\n    type: STRING\n    dependsOn:\n      inputs: [nope]\ntasks:\n{task}"),
        FlowErrorKind::InvalidDependency,
        "inputs[0].dependsOn",
        6,
    );
    assert!(e.message.contains("non-existent input 'nope'"), "{e}");
}

#[test]
fn schedule_cron_is_checked() {
    let flow = |cron: &str, extra: &str| {
        format!(
            "{}triggers:\n  - id: s\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"{cron}\"\n{extra}",
            with_tasks(&format!("  - id: t\n    type: {RETURN}\n"))
        )
    };
    only_error(
        &flow("61 * * * *", ""),
        FlowErrorKind::InvalidCron,
        "triggers[0].cron",
        9,
    );
    only_error(
        &flow("* * * *", ""),
        FlowErrorKind::InvalidCron,
        "triggers[0].cron",
        9,
    );
    for ok in ["@daily", "*/5 * * * *", "0 9 * * MON-FRI", "@hourly"] {
        assert!(parse_flow(&flow(ok, "")).is_ok(), "{ok}");
    }
    assert!(parse_flow(&flow("*/10 * * * * *", "    withSeconds: true\n")).is_ok());
    assert!(parse_flow(&flow("0 9 * * *", "    timezone: Europe/Paris\n")).is_ok());
    only_error(
        &flow("0 9 * * *", "    timezone: Mars/Olympus\n"),
        FlowErrorKind::InvalidProperty,
        "triggers[0].timezone",
        10,
    );
}

#[test]
fn unknown_properties_are_refused() {
    only_error(
        &with_tasks(
            "  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n    mesage: typo\n",
        ),
        FlowErrorKind::UnknownProperty,
        "tasks[0].mesage",
        7,
    );
    only_error(
        &format!("id: a\nnamespace: dev\ndescripton: x\ntasks:\n  - id: t\n    type: {RETURN}\n"),
        FlowErrorKind::UnknownProperty,
        "descripton",
        3,
    );
}

#[test]
fn wrong_value_kinds() {
    only_error(
        "id: a\nnamespace: dev\ntasks:\n  id: t\n",
        FlowErrorKind::InvalidProperty,
        "tasks",
        3,
    );
    only_error(
        &with_tasks(&format!("  - id: t\n    type: {RETURN}\n    disabled: maybe\n")),
        FlowErrorKind::InvalidProperty,
        "tasks[0].disabled",
        6,
    );
    only_error(
        &with_tasks("  - id: t\n    type: io.kestra.plugin.core.flow.Parallel\n    concurrent: -1\n    tasks:\n      - id: u\n        type: io.kestra.plugin.core.debug.Return\n"),
        FlowErrorKind::InvalidProperty,
        "tasks[0].concurrent",
        6,
    );
}

#[test]
fn several_errors_at_once() {
    let all = errors(&with_tasks(
        "  - id: t\n    type: x.Y\n  - id: u\n    type: io.kestra.plugin.core.log.Log\n  - id: t\n    type: io.kestra.plugin.core.debug.Return\n",
    ));
    let found: Vec<(FlowErrorKind, &str, Option<usize>)> =
        all.iter().map(|e| (e.kind, e.path.as_str(), e.line)).collect();
    assert_eq!(
        found,
        vec![
            (FlowErrorKind::UnknownType, "tasks[0].type", Some(5)),
            (FlowErrorKind::MissingProperty, "tasks[1].message", Some(6)),
            (FlowErrorKind::DuplicateTaskId, "tasks[2].id", Some(8)),
        ]
    );
}

#[test]
fn duplicate_trigger_ids() {
    let src = format!(
        "{}triggers:\n  - id: w\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: a\n  - id: w\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: b\n",
        with_tasks(&format!("  - id: t\n    type: {RETURN}\n"))
    );
    let e = only_error(&src, FlowErrorKind::DuplicateTriggerId, "triggers[1].id", 10);
    assert!(e.message.contains("Duplicate trigger id with name [w]"));
}

#[test]
fn a_subflow_cannot_start_its_own_flow() {
    let e = errors(&with_tasks(
        "  - id: t\n    type: io.kestra.plugin.core.flow.Subflow\n    namespace: dev\n    flowId: a\n",
    ))
    .remove(0);
    assert_eq!(e.kind, FlowErrorKind::RecursiveSubflow);
    assert!(e.path.starts_with("tasks[0]"));
    assert!(e.message.contains("Recursive call to flow [dev.a]"));
}

#[test]
fn reserved_system_labels() {
    let task = format!("  - id: t\n    type: {RETURN}\n");
    assert!(parse_flow(&format!(
        "id: a\nnamespace: dev\nlabels:\n  system.readOnly: \"true\"\ntasks:\n{task}"
    ))
    .is_ok());
    let all = errors(&format!(
        "id: a\nnamespace: dev\nlabels:\n  system.correlationId: x\ntasks:\n{task}"
    ));
    assert!(
        all.iter().any(|e| e
            .message
            .contains("System labels can only be set by Kestra itself")),
        "{all:?}"
    );
}

#[test]
fn concurrency_and_retry_values() {
    let task = format!("  - id: t\n    type: {RETURN}\n");
    only_error(
        &format!("id: a\nnamespace: dev\nconcurrency:\n  limit: 1\n  behavior: DROP\ntasks:\n{task}"),
        FlowErrorKind::InvalidProperty,
        "concurrency.behavior",
        5,
    );
    only_error(
        &with_tasks(&format!(
            "  - id: t\n    type: {RETURN}\n    retry:\n      type: linear\n      interval: PT1S\n"
        )),
        FlowErrorKind::InvalidProperty,
        "tasks[0].retry.type",
        7,
    );
    only_error(
        &with_tasks(&format!("  - id: t\n    type: {RETURN}\n    retry:\n      type: constant\n      interval: PT1S\n      maxAttempt: 0\n")),
        FlowErrorKind::InvalidProperty,
        "tasks[0].retry.maxAttempt",
        9,
    );
}

#[test]
fn switch_needs_cases_or_defaults() {
    let e = errors(&with_tasks(
        "  - id: t\n    type: io.kestra.plugin.core.flow.Switch\n    value: x\n",
    ))
    .remove(0);
    assert_eq!(e.kind, FlowErrorKind::MissingProperty);
    assert!(e.path.starts_with("tasks[0]"), "{e:?}");
    assert_eq!(e.line, Some(4));
}

#[test]
fn multi_document_sources() {
    let docs = parse_flows(&format!(
        "id: a\nnamespace: dev\ntasks:\n  - id: t\n    type: {RETURN}\n---\nid: b\nnamespace: dev\ntasks: []\n---\n"
    ));
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0].as_ref().map(|f| f.id.as_str()).ok(), Some("a"));
    let e = &docs[1].as_ref().expect_err("empty tasks")[0];
    // Lines count from the start of the whole source.
    assert_eq!((e.path.as_str(), e.line), ("tasks", Some(9)));
    let one = parse_flow(&format!(
        "id: a\nnamespace: dev\ntasks:\n  - id: t\n    type: {RETURN}\n---\nid: b\n"
    ));
    assert_eq!(one.expect_err("two documents")[0].kind, FlowErrorKind::Yaml);
}

#[test]
fn duplicate_yaml_keys_are_refused() {
    let e = errors(&format!(
        "id: a\nnamespace: dev\ntasks:\n  - id: t\n    type: {RETURN}\n    format: x\n    format: y\n"
    ))
    .remove(0);
    assert_eq!(e.kind, FlowErrorKind::Yaml);
    assert!(e.message.contains("format"), "{e}");
    assert!(e.line.is_some());
}

#[test]
fn unknown_property_messages_help() {
    let e = only_error(
        &with_tasks("  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n    levl: WARN\n"),
        FlowErrorKind::UnknownProperty,
        "tasks[0].levl",
        7,
    );
    assert!(e.message.starts_with("Unrecognized field \"levl\""), "{e}");
    assert!(e.message.contains("did you mean \"level\""), "{e}");
    let task = format!("  - id: t\n    type: {RETURN}\n");
    only_error(
        &format!(
            "id: a\nnamespace: dev\ninputs:\n  - id: x\n    type: STRING\n    requird: false\ntasks:\n{task}"
        ),
        FlowErrorKind::UnknownProperty,
        "inputs[0].requird",
        6,
    );
}

#[test]
fn durations_must_be_iso_8601() {
    let e = only_error(
        &with_tasks("  - id: t\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: 5 minutes\n"),
        FlowErrorKind::InvalidProperty,
        "tasks[0].duration",
        6,
    );
    assert!(e.message.contains("ISO-8601"), "{e}");
    assert!(parse_flow(&with_tasks(
        "  - id: t\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: \"{{ inputs.d }}\"\n"
    ))
    .is_ok());
    only_error(
        &format!("id: a\nnamespace: dev\ntimeout: 1h\ntasks:\n  - id: t\n    type: {RETURN}\n"),
        FlowErrorKind::InvalidProperty,
        "timeout",
        3,
    );
}

#[test]
fn retry_intervals_stay_within_bounds() {
    let e = only_error(
        &with_tasks(&format!("  - id: t\n    type: {RETURN}\n    retry:\n      type: exponential\n      interval: PT10M\n      maxInterval: PT1M\n")),
        FlowErrorKind::InvalidProperty,
        "tasks[0].retry.interval",
        8,
    );
    assert!(
        e.message
            .contains("'interval' must be less than 'maxInterval' but is PT10M"),
        "{e}"
    );
    only_error(
        &with_tasks(&format!("  - id: t\n    type: {RETURN}\n    retry:\n      type: random\n      minInterval: PT5S\n      maxInterval: PT1S\n")),
        FlowErrorKind::InvalidProperty,
        "tasks[0].retry.minInterval",
        8,
    );
}

#[test]
fn task_ids_are_at_most_256_characters() {
    let e = only_error(
        &with_tasks(&format!("  - id: {}\n    type: {RETURN}\n", "t".repeat(257))),
        FlowErrorKind::InvalidId,
        "tasks[0].id",
        4,
    );
    assert!(e.message.contains("256"));
}

#[test]
fn documents_as_json_line_up_with_parse_flows() {
    let source = "id: a\nnamespace: dev\ntasks: []\n---\n---\nid: b\nnamespace: dev\n";
    let json = kite_core::flow::flow_documents_to_json(source);
    let parsed = parse_flows(source);
    assert_eq!(json.len(), parsed.len());
    assert_eq!(json[1].as_ref().map(|j| j["id"].clone()).ok(), Some("b".into()));
    assert!(parsed[1].is_err());
}

#[test]
fn paths_keep_the_written_index_after_a_refused_item() {
    let task = format!("  - id: t\n    type: {RETURN}\n");
    let all = errors(&format!(
        "id: a\nnamespace: dev\ninputs:\n  - id: bad\n    type: NOPE\n  - id: x\n    type: STRING\n  - id: x\n    type: STRING\ntasks:\n{task}"
    ));
    let found: Vec<(&str, Option<usize>)> = all.iter().map(|e| (e.path.as_str(), e.line)).collect();
    assert_eq!(
        found,
        vec![("inputs[0].type", Some(5)), ("inputs[2].id", Some(8))]
    );
}

#[test]
fn legacy_type_names_are_reported_as_relocations() {
    let src = "id: a\nnamespace: dev\ntasks:\n  - id: a\n    type: io.kestra.core.tasks.log.Log\n    message: hi\n  - id: b\n    type: io.kestra.core.tasks.log.Log\n    message: again\n  - id: c\n    type: io.kestra.plugin.core.debug.Return\ntriggers:\n  - id: w\n    type: io.kestra.core.models.triggers.types.Webhook\n    key: k\n";
    let flow = parse_flow(src).expect("valid");
    assert_eq!(
        kite_core::flow::relocations(&flow),
        vec![
            "io.kestra.core.tasks.log.Log is replaced by io.kestra.plugin.core.log.Log".to_string(),
            "io.kestra.core.models.triggers.types.Webhook is replaced by io.kestra.plugin.core.trigger.Webhook"
                .to_string(),
        ]
    );
    assert!(kite_core::flow::relocations(&corpus("minimal.yaml")).is_empty());
}

#[test]
fn odd_shapes_are_errors_not_panics() {
    use FlowErrorKind::{InvalidProperty, MissingProperty, UnknownProperty, Yaml};
    // Each source with every error it gives: kind, path, line, and a part of the message.
    type Want = (FlowErrorKind, &'static str, Option<usize>, &'static str);
    let cases: [(&str, &[Want]); 12] = [
        ("", &[(Yaml, "", None, "The flow is empty")]),
        ("---\n", &[(Yaml, "", None, "The flow is empty")]),
        ("42", &[(Yaml, "", Some(1), "A flow must be a map, not a number")]),
        ("- a\n- b\n", &[(Yaml, "", Some(1), "A flow must be a map, not a list")]),
        (
            "id: a\nnamespace: dev\ntasks: [1, null, \"x\", [], {}]\n",
            &[
                (InvalidProperty, "tasks[0]", Some(3), "a task must be a map, not a number"),
                (InvalidProperty, "tasks[1]", Some(3), "a task must be a map, not null"),
                (InvalidProperty, "tasks[2]", Some(3), "a task must be a map, not a string"),
                (InvalidProperty, "tasks[3]", Some(3), "a task must be a map, not a list"),
                (MissingProperty, "tasks[4].id", Some(3), "`id` is required"),
                (MissingProperty, "tasks[4].type", Some(3), "`type` is required"),
            ],
        ),
        (
            "id: a\nnamespace: dev\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.flow.Switch\n    value: x\n    cases: [1]\n",
            &[(InvalidProperty, "tasks[0].cases", Some(7), "`cases` must be a map of lists of tasks, not a list")],
        ),
        (
            "id: a\nnamespace: dev\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.flow.Switch\n    value: x\n    cases:\n      A: 1\n",
            &[(InvalidProperty, "tasks[0].cases.A", Some(8), "`A` must be a list of tasks, not a number")],
        ),
        (
            "id: [a]\nnamespace: {b: c}\ntasks:\n  - {id: t, type: io.kestra.plugin.core.debug.Return}\n",
            &[
                (InvalidProperty, "id", Some(1), "`id` must be a string, not a list"),
                (InvalidProperty, "namespace", Some(2), "`namespace` must be a string, not a map"),
            ],
        ),
        (
            "id: a\nnamespace: dev\ninputs: {a: b}\noutputs: 3\ntriggers: x\nlabels: 5\nvariables: []\nretry: []\nconcurrency: 1\npluginDefaults: {}\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.debug.Return\n",
            &[
                (InvalidProperty, "inputs", Some(3), "`inputs` must be a list of inputs, not a map"),
                (InvalidProperty, "outputs", Some(4), "`outputs` must be a list of outputs, not a number"),
                (InvalidProperty, "triggers", Some(5), "`triggers` must be a list of triggers, not a string"),
                (InvalidProperty, "labels", Some(6), "`labels` must be a map or a list of key/value, not a number"),
                (InvalidProperty, "variables", Some(7), "`variables` must be a map, not a list"),
                (InvalidProperty, "retry", Some(8), "`retry` must be a map, not a list"),
                (InvalidProperty, "concurrency", Some(9), "`concurrency` must be a map, not a number"),
                (InvalidProperty, "pluginDefaults", Some(10), "`pluginDefaults` must be a list of plugin defaults, not a map"),
            ],
        ),
        (
            "id: a\nnamespace: dev\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.flow.Pause\n    onResume: [1, {id: x}]\n",
            &[
                (InvalidProperty, "tasks[0].onResume[0]", Some(6), "an input must be a map, not a number"),
                (MissingProperty, "tasks[0].onResume[1].type", Some(6), "`type` is required"),
            ],
        ),
        (
            "? [complex, key]\n: value\nid: a\n",
            &[
                (UnknownProperty, "[\"complex\",\"key\"]", Some(1), "Unrecognized field \"[\"complex\",\"key\"]\""),
                (MissingProperty, "namespace", Some(1), "`namespace` is required"),
                (MissingProperty, "tasks", Some(1), "`tasks` is required"),
            ],
        ),
        (
            "id: a\nnamespace: dev\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.debug.Return\n    retry: {type: exponential, interval: x, maxInterval: y, maxAttempt: -3}\n",
            &[
                (InvalidProperty, "tasks[0].retry.interval", Some(6), "`interval` must be an ISO-8601 duration such as PT30S or P1DT2H, not `x`"),
                (InvalidProperty, "tasks[0].retry.maxInterval", Some(6), "`maxInterval` must be an ISO-8601 duration such as PT30S or P1DT2H, not `y`"),
                (InvalidProperty, "tasks[0].retry.maxAttempt", Some(6), "`maxAttempt` must be a positive integer, not -3"),
            ],
        ),
    ];
    for (src, want) in cases {
        let mut got = errors(src);
        got.sort_by(|a, b| a.path.cmp(&b.path));
        let mut want = want.to_vec();
        want.sort_by(|a, b| a.1.cmp(b.1));
        assert_eq!(got.len(), want.len(), "{src:?}: {got:#?}");
        for (e, (kind, path, line, message)) in got.iter().zip(&want) {
            assert_eq!(
                (e.kind, e.path.as_str(), e.line),
                (*kind, *path, *line),
                "{src:?}: {e:#?}"
            );
            assert!(e.message.contains(message), "{src:?}: {e:#?}");
        }
        // The multi-document reader gives the same errors for its one document (none for
        // a source without any), and the source is still YAML to convert to JSON.
        match parse_flows(src).as_slice() {
            [] => assert_eq!(want[0].3, "The flow is empty", "{src:?}"),
            [Err(all)] => {
                let mut all: Vec<_> = all.iter().map(|e| (e.kind, e.path.clone(), e.line)).collect();
                all.sort_by(|a, b| a.1.cmp(&b.1));
                let from_one: Vec<_> = got.iter().map(|e| (e.kind, e.path.clone(), e.line)).collect();
                assert_eq!(all, from_one, "{src:?}");
            }
            other => panic!("{src:?}: {other:#?}"),
        }
        assert!(flow_source_to_json(src).is_ok(), "{src:?}");
    }
    // Anchors and aliases resolve like any YAML reader.
    let aliases =
        "id: &x a\nnamespace: *x\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.debug.Return\n";
    let flow = parse_flow(aliases).expect("aliases");
    assert_eq!(flow.namespace, "a");
    assert!(matches!(parse_flows(aliases).as_slice(), [Ok(f)] if f.namespace == "a"));
    assert!(flow_source_to_json(aliases).is_ok());
}

#[test]
fn input_defaults_and_required_type_properties() {
    let task = format!("  - id: t\n    type: {RETURN}\n");
    let e = only_error(
        &format!(
            "id: a\nnamespace: dev\ninputs:\n  - id: n\n    type: INT\n    defaults: abc\ntasks:\n{task}"
        ),
        FlowErrorKind::InvalidProperty,
        "inputs[0].defaults",
        6,
    );
    assert!(e.message.starts_with("Invalid default for input 'n'"), "{e}");
    let ok = format!(
        "id: a\nnamespace: dev\ninputs:\n  - id: n\n    type: INT\n    defaults: 42\n  - id: d\n    type: DURATION\n    defaults: PT5M\n  - id: s\n    type: STRING\n    defaults: \"{{{{ now() }}}}\"\ntasks:\n{task}"
    );
    assert!(parse_flow(&ok).is_ok(), "{:?}", parse_flow(&ok).err());
    only_error(
        &format!("id: a\nnamespace: dev\ninputs:\n  - id: s\n    type: SELECT\ntasks:\n{task}"),
        FlowErrorKind::MissingProperty,
        "inputs[0].values",
        4,
    );
    only_error(
        &format!("id: a\nnamespace: dev\ninputs:\n  - id: s\n    type: ARRAY\ntasks:\n{task}"),
        FlowErrorKind::MissingProperty,
        "inputs[0].itemType",
        4,
    );
}

#[test]
fn example_flows_parse() {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../flows")),
        &mut files,
    );
    assert!(!files.is_empty(), "no example flows found");
    for file in files {
        let source = std::fs::read_to_string(&file).expect("read");
        for result in parse_flows(&source) {
            assert!(result.is_ok(), "{}: {:?}", file.display(), result.err());
        }
    }
}

#[test]
fn trigger_states_conditions_and_recovery() {
    let head = with_tasks(&format!("  - id: t\n    type: {RETURN}\n"));
    only_error(
        &format!("{head}triggers:\n  - id: f\n    type: io.kestra.plugin.core.trigger.Flow\n    states: [SUCCESS, DONE]\n"),
        FlowErrorKind::InvalidProperty,
        "triggers[0].states[1]",
        9,
    );
    only_error(
        &format!("{head}triggers:\n  - id: s\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"@daily\"\n    recoverMissedSchedules: SOME\n"),
        FlowErrorKind::InvalidProperty,
        "triggers[0].recoverMissedSchedules",
        10,
    );
    let e = only_error(
        &format!("{head}triggers:\n  - id: w\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: k\n    conditions:\n      - type: io.kestra.plugin.core.condition.MultipleCondition\n"),
        FlowErrorKind::InvalidProperty,
        "triggers[0].conditions[0].type",
        11,
    );
    assert!(e.message.contains("MultipleCondition are not supported"));
    only_error(
        &format!("{head}triggers:\n  - id: w\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: k\n    conditions:\n      - expression: x\n"),
        FlowErrorKind::MissingProperty,
        "triggers[0].conditions[0].type",
        11,
    );
}

#[test]
fn yaml_1_1_booleans_where_a_boolean_is_expected() {
    let flow = parse_flow(&with_tasks(&format!(
        "  - id: t\n    type: {RETURN}\n    disabled: yes\n    allowFailure: on\n"
    )))
    .expect("valid");
    assert!(flow.tasks[0].disabled && flow.tasks[0].allow_failure);
}

#[test]
fn duration_forms_java_reads() {
    let sleep = |d: &str| {
        parse_flow(&with_tasks(&format!(
            "  - id: t\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: \"{d}\"\n"
        )))
    };
    for ok in ["PT1S", "PT0.5S", "P2D", "P1DT2H", "PT1H30M", "-PT1S", "pt15m"] {
        assert!(sleep(ok).is_ok(), "{ok}");
    }
    for bad in ["P", "PT", "P1DT", "1h", "P1W", "PT1.5"] {
        assert!(sleep(bad).is_err(), "{bad}");
    }
}

#[test]
fn unsupported_trigger_conditions_are_rejected_at_their_line() {
    let src = "id: f\nnamespace: dev\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: hi\ntriggers:\n  - id: s\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"0 9 * * *\"\n    conditions:\n      - type: io.kestra.plugin.core.condition.PublicHoliday\n        country: FR\n";
    let e = only_error(
        src,
        FlowErrorKind::UnknownType,
        "triggers[0].conditions[0].type",
        12,
    );
    assert!(
        e.message.contains("PublicHoliday") && e.message.contains("DayWeek"),
        "{}",
        e.message
    );
}

#[test]
fn tasks_that_do_io_are_checked_as_their_type_declares() {
    let slack = "io.kestra.plugin.notifications.slack.SlackIncomingWebhook";
    let src = with_tasks(&format!("  - id: s\n    type: {slack}\n    payload: '{{}}'\n"));
    let e = only_error(&src, FlowErrorKind::MissingProperty, "tasks[0].url", 4);
    assert_eq!(e.message, "`url` is required");
    let src = with_tasks(&format!(
        "  - id: s\n    type: {slack}\n    url: x\n    channel: y\n"
    ));
    only_error(&src, FlowErrorKind::UnknownProperty, "tasks[0].channel", 7);
    let http = "io.kestra.plugin.core.http.Request";
    let src = with_tasks(&format!(
        "  - id: h\n    type: {http}\n    uri: x\n    allowFailed: maybe\n"
    ));
    only_error(&src, FlowErrorKind::InvalidProperty, "tasks[0].allowFailed", 7);
}

#[test]
fn saved_flows_are_bounded_in_tasks_and_nesting() {
    use kite_core::flow::{parse_flow_within, FlowLimits};
    let limits = FlowLimits {
        max_tasks: 3,
        max_depth: 2,
    };
    let log = "type: io.kestra.plugin.core.log.Log\n      message: hi";
    let seq = "io.kestra.plugin.core.flow.Sequential";
    // Two levels, three tasks: within the limits.
    let fits = with_tasks(&format!(
        "  - id: s\n    type: {seq}\n    tasks:\n    - id: a\n      {log}\n    - id: b\n      {log}\n"
    ));
    assert!(parse_flow_within(&fits, &limits).is_ok());
    // A fourth task anywhere, counted with errors/finally.
    let more = format!("{fits}errors:\n  - id: e\n    type: io.kestra.plugin.core.log.Log\n    message: x\n");
    let e = parse_flow_within(&more, &limits).expect_err("four tasks");
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!((e[0].path.as_str(), e[0].line), ("tasks", Some(3)));
    assert_eq!(
        e[0].message,
        "The flow has 4 tasks; at most 3 are allowed (KITE_MAX_FLOW_TASKS)"
    );
    // Three levels: named at the top-level task that holds them, with its line.
    let deep = with_tasks(&format!(
        "  - id: s\n    type: {seq}\n    tasks:\n    - id: t\n      type: {seq}\n      tasks:\n      - id: a\n        type: io.kestra.plugin.core.log.Log\n        message: hi\n"
    ));
    let e = parse_flow_within(&deep, &limits).expect_err("three levels");
    assert_eq!((e[0].path.as_str(), e[0].line), ("tasks[0]", Some(4)), "{e:#?}");
    assert!(e[0].message.starts_with("Task `s` nests 3 levels"), "{e:#?}");
    // Loading a stored flow is never refused for its size.
    assert!(parse_flow(&deep).is_ok());
}
