use chrono::TimeZone;
use serde_json::json;

use super::protocol::{read_line, Line};
use super::*;
use crate::execution::LogLevel;
use crate::expression::ExpressionError;
use crate::flow::parse_flow;

/// Renders strings as written and other values as JSON: enough for `prepare`.
fn plain(value: &Value) -> Result<String, ExpressionError> {
    Ok(match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

fn prepare(kind: IoKind, properties: Value) -> Result<ScriptCall, String> {
    let Value::Object(properties) = properties else {
        panic!("a map")
    };
    match (kind.spec().prepare)(&properties, &plain)? {
        IoCall::Script(call) => Ok(call),
        other => panic!("not a script call: {other:?}"),
    }
}

#[test]
fn commands_are_joined_after_set_e_and_before_commands() {
    let call = prepare(
        IoKind::ShellCommands,
        json!({"commands": ["echo a", "echo b"], "beforeCommands": ["cd /"]}),
    )
    .unwrap();
    assert_eq!(
        call.command,
        vec!["/bin/sh", "-c", "set -e\ncd /\necho a\necho b"]
    );
    assert!(call.warning_on_std_err);
    assert_eq!(call.program, None);
    assert_eq!(call.container_image, None);
}

#[test]
fn fail_fast_false_and_an_interpreter_of_its_own() {
    let call = prepare(
        IoKind::ShellCommands,
        json!({"commands": ["false", "true"], "failFast": false, "interpreter": ["/bin/bash", "-c"]}),
    )
    .unwrap();
    assert_eq!(call.command, vec!["/bin/bash", "-c", "false\ntrue"]);
}

#[test]
fn commands_are_required_and_not_empty() {
    let missing = prepare(IoKind::ShellCommands, json!({})).unwrap_err();
    assert_eq!(missing, "Missing required property 'commands'");
    let empty = prepare(IoKind::ShellCommands, json!({"commands": []})).unwrap_err();
    assert!(empty.contains("at least one command"), "{empty}");
}

#[test]
fn a_python_script_is_written_to_a_file_and_run_by_python() {
    let call = prepare(
        IoKind::PythonScript,
        json!({"script": "print(1)", "dependencies": ["requests"]}),
    )
    .unwrap();
    assert_eq!(call.command[2], format!("set -e\npython '{SCRIPT_FILE_MARK}'"));
    assert_eq!(
        call.script,
        Some(ScriptFile {
            extension: "py",
            content: "print(1)".into()
        })
    );
    assert_eq!(call.program, Some(Program::Python));
    assert_eq!(call.dependencies, vec!["requests"]);
    assert!(call.env.contains(&("PYTHONUNBUFFERED".into(), "true".into())));
}

#[test]
fn node_script_runs_node() {
    let call = prepare(IoKind::NodeScript, json!({"script": "console.log(1)"})).unwrap();
    assert!(call.command[2].ends_with(&format!("node '{SCRIPT_FILE_MARK}'")));
    assert_eq!(call.program, Some(Program::Node));
}

#[test]
fn input_files_map_or_json_string() {
    let call = prepare(
        IoKind::ShellCommands,
        json!({"commands": ["ls"], "inputFiles": {"a.txt": "hello", "b.csv": "kestra:///ns/f/executions/e/x.csv"}}),
    )
    .unwrap();
    assert_eq!(
        call.input_files,
        vec![
            ("a.txt".into(), InputFile::Content("hello".into())),
            (
                "b.csv".into(),
                InputFile::Storage("kestra:///ns/f/executions/e/x.csv".into())
            ),
        ]
    );
    let call = prepare(
        IoKind::ShellCommands,
        json!({"commands": ["ls"], "inputFiles": "{\"c.txt\": \"x\"}"}),
    )
    .unwrap();
    assert_eq!(
        call.input_files,
        vec![("c.txt".into(), InputFile::Content("x".into()))]
    );
    let bad = prepare(
        IoKind::ShellCommands,
        json!({"commands": ["ls"], "inputFiles": {"../up.txt": "x"}}),
    )
    .unwrap_err();
    assert_eq!(
        bad,
        "Invalid outputFile (only relative path is supported) for path '../up.txt'"
    );
}

#[test]
fn container_settings_name_the_image_unless_the_runner_is_process() {
    let docker = prepare(
        IoKind::PythonScript,
        json!({"script": "x", "taskRunner": {"type": "io.kestra.plugin.scripts.runner.docker.Docker"}}),
    )
    .unwrap();
    assert_eq!(
        docker.container_image.as_deref(),
        Some("ghcr.io/kestra-io/kestrapy:latest")
    );
    let image = prepare(
        IoKind::ShellCommands,
        json!({"commands": ["x"], "containerImage": "alpine:3"}),
    )
    .unwrap();
    assert_eq!(image.container_image.as_deref(), Some("alpine:3"));
    let process = prepare(
        IoKind::ShellCommands,
        json!({"commands": ["x"], "containerImage": "alpine:3",
               "taskRunner": {"type": "io.kestra.plugin.core.runner.Process"}}),
    )
    .unwrap();
    assert_eq!(process.container_image, None);
}

#[test]
fn target_os_windows_is_refused() {
    let err = prepare(
        IoKind::ShellCommands,
        json!({"commands": ["x"], "targetOS": "WINDOWS"}),
    )
    .unwrap_err();
    assert!(err.contains("Linux"), "{err}");
}

#[test]
fn legacy_bash_keys_and_errexit() {
    let call = prepare(
        IoKind::LegacyBash,
        json!({"commands": ["echo 1 >> x"], "outputFiles": ["first"], "outputsFiles": ["second"],
               "interpreter": "/bin/bash", "interpreterArgs": ["-c"]}),
    )
    .unwrap();
    assert_eq!(
        call.command,
        vec!["/bin/bash", "-c", "set -o errexit\necho 1 >> x"]
    );
    assert_eq!(call.legacy_output_files, vec!["first", "second"]);
    assert!(call.legacy_outputs);
    let vars = variables(
        IoKind::LegacyBash,
        &json!({"outputFiles": ["first"]}).as_object().unwrap().clone(),
    );
    assert_eq!(
        vars["outputFiles"]["first"],
        json!(format!("{WORKING_DIR_MARK}/first"))
    );
}

#[test]
fn legacy_python_needs_main_py_and_makes_a_virtual_environment() {
    let err = prepare(IoKind::LegacyPython, json!({})).unwrap_err();
    assert!(err.starts_with("Invalid input files structure"), "{err}");
    let call = prepare(
        IoKind::LegacyPython,
        json!({"inputFiles": {"main.py": "print(1)"}, "requirements": ["six"], "args": ["a"]}),
    )
    .unwrap();
    let script = &call.command[2];
    assert!(
        script.contains("python -m venv --system-site-packages"),
        "{script}"
    );
    assert!(script.contains("./bin/pip install six > /dev/null"), "{script}");
    assert!(script.ends_with("./bin/python main.py a"), "{script}");
}

#[test]
fn protocol_lines() {
    match read_line(r#"::{"outputs":{"a":1,"b":"x"}}::"#, false) {
        Line::Data(data) => assert_eq!(data.outputs.unwrap()["a"], json!(1)),
        other => panic!("{other:?}"),
    }
    match read_line(r#"::{"logs":[{"level":"WARN","message":"careful"}]}::"#, true) {
        Line::Data(data) => {
            let logs = data.logs.unwrap();
            assert_eq!(logs[0].level(), LogLevel::Warn);
            assert_eq!(logs[0].message, "careful");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        read_line("hello", false),
        Line::Log(LogLevel::Info, "hello".into())
    );
    assert_eq!(read_line("oops", true), Line::Log(LogLevel::Error, "oops".into()));
    assert!(matches!(read_line("::{not json}::", false), Line::Invalid(_)));
    // Only a whole line is data.
    assert_eq!(
        read_line(r#"x ::{"outputs":{}}::"#, false),
        Line::Log(LogLevel::Info, r#"x ::{"outputs":{}}::"#.into())
    );
}

fn context() -> TaskRunContext {
    TaskRunContext {
        namespace: "dev".into(),
        flow_id: "f".into(),
        execution_id: "e".into(),
        task_id: "t".into(),
        task_run_id: "tr".into(),
        attempt_number: 1,
        log_level: None,
    }
}

#[test]
fn finish_outputs_state_and_failure_message() {
    let now = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    let call = IoCall::Script(prepare(IoKind::ShellCommands, json!({"commands": ["x"]})).unwrap());
    let mut run = ScriptRun {
        exit_code: 0,
        std_err_lines: 1,
        ..ScriptRun::default()
    };
    run.vars.insert("a".into(), json!(1));
    run.output_files.insert(
        "out.txt".into(),
        "kestra:///dev/f/executions/e/tasks/t/tr/out.txt".into(),
    );
    let result = finish(&call, IoAnswer::Script(Ok(run.clone())), &context(), now);
    assert_eq!(result.state, StateType::Warning);
    assert_eq!(result.outputs["exitCode"], json!(0));
    assert_eq!(result.outputs["vars"], json!({"a": 1}));
    assert_eq!(
        result.outputs["outputFiles"],
        json!({"out.txt": "kestra:///dev/f/executions/e/tasks/t/tr/out.txt"})
    );
    run.exit_code = 1;
    let failed = finish(&call, IoAnswer::Script(Ok(run)), &context(), now);
    assert_eq!(failed.state, StateType::Failed);
    assert_eq!(failed.logs[0].message, "Command failed with code 1");
    let missing = finish(
        &call,
        IoAnswer::Script(Err(ScriptError::MissingProgram {
            program: "python3".into(),
        })),
        &context(),
        now,
    );
    assert!(missing.logs[0].message.contains("`python3` is not installed"));
}

#[test]
fn bad_property_types_are_flow_errors_with_line_and_column() {
    let source = "id: f\nnamespace: dev\ntasks:\n  - id: sh\n    type: io.kestra.plugin.scripts.shell.Commands\n    commands: echo hi\n    env: [1]\n";
    let errors = parse_flow(source).unwrap_err();
    let commands = errors
        .iter()
        .find(|e| e.path.ends_with("commands"))
        .expect("commands error");
    assert_eq!((commands.line, commands.column), (Some(6), Some(5)));
    assert!(
        commands.message.contains("must be a list"),
        "{}",
        commands.message
    );
    let env = errors
        .iter()
        .find(|e| e.path.ends_with("env"))
        .expect("env error");
    assert_eq!(env.line, Some(7));
    assert!(env.message.contains("must be a map"), "{}", env.message);
    // An expression that renders to a list is fine.
    let ok = "id: f\nnamespace: dev\ntasks:\n  - id: sh\n    type: io.kestra.plugin.scripts.shell.Commands\n    commands: \"{{ inputs.list }}\"\n";
    assert!(parse_flow(ok).is_ok());
    let legacy = "id: f\nnamespace: dev\ntasks:\n  - id: b\n    type: io.kestra.core.tasks.scripts.Bash\n    commands: [\"echo 1\"]\n";
    assert!(parse_flow(legacy).is_ok());
}
