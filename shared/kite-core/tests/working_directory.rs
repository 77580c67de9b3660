//! `flow.WorkingDirectory`: parsed like `Sequential` with its own files, its children run
//! one after another, and each script child is told which folder it shares and which
//! child ran in it before.

use std::cell::RefCell;
use std::rc::Rc;

use indexmap::IndexMap;
use kite_core::execution::StateType;
use kite_core::flow::{parse_flow, FlowErrorKind, TaskKind, TaskType};
use kite_core::plugin::scripts::{InputFile, ScriptRun};
use kite_core::plugin::{IoAnswer, IoCall};
use kite_core::runner::Runner;

const FLOW: &str = r#"id: wd
namespace: company.team
tasks:
  - id: dir
    type: io.kestra.core.tasks.flows.WorkingDirectory
    inputFiles:
      seed.txt: "{{ flow.id }}"
    namespaceFiles:
      enabled: true
      include:
        - "*.py"
    cache:
      patterns: ["node_modules/**"]
    tasks:
      - id: first
        type: io.kestra.plugin.scripts.shell.Commands
        commands: ["echo a > a.txt"]
      - id: note
        type: io.kestra.plugin.core.log.Log
        message: between
      - id: group
        type: io.kestra.plugin.core.flow.Sequential
        tasks:
          - id: second
            type: io.kestra.plugin.scripts.shell.Commands
            commands: ["cat a.txt"]
  - id: outside
    type: io.kestra.plugin.scripts.shell.Commands
    commands: ["ls"]
"#;

#[test]
fn it_parses_with_its_children_and_files() {
    let flow = parse_flow(FLOW).unwrap_or_else(|e| panic!("{e:?}"));
    let dir = &flow.tasks[0];
    assert_eq!(dir.task_type(), TaskType::WorkingDirectory);
    assert_eq!(
        TaskType::WorkingDirectory.name(),
        "io.kestra.plugin.core.flow.WorkingDirectory"
    );
    let TaskKind::WorkingDirectory(wd) = &dir.kind else {
        panic!("a WorkingDirectory");
    };
    let ids: Vec<_> = wd.body.tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["first", "note", "group"]);
    let mut keys: Vec<_> = wd.files.keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["inputFiles", "namespaceFiles"]);
}

#[test]
fn bad_properties_are_refused_with_their_line() {
    let src = "id: a\nnamespace: dev\ntasks:\n  - id: dir\n    type: io.kestra.plugin.core.flow.WorkingDirectory\n    outputFiles:\n      - out.txt\n    tasks:\n      - id: x\n        type: io.kestra.plugin.core.log.Log\n        message: m\n";
    let errors = parse_flow(src).expect_err("refused");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].kind, FlowErrorKind::InvalidProperty);
    assert_eq!(errors[0].path, "tasks[0].outputFiles");
    assert_eq!(errors[0].line, Some(6));
    assert!(errors[0].message.contains("set `outputFiles` on the script task"));

    let src = "id: a\nnamespace: dev\ntasks:\n  - id: dir\n    type: io.kestra.plugin.core.flow.WorkingDirectory\n    taks: []\n";
    let errors = parse_flow(src).expect_err("refused");
    assert!(
        errors
            .iter()
            .any(|e| e.path.contains("taks") && e.line == Some(6)),
        "{errors:?}"
    );
}

#[test]
fn script_children_share_the_folder_and_know_the_previous_child() {
    let mut runner = Runner::new();
    runner.add_flow(parse_flow(FLOW).unwrap_or_else(|e| panic!("{e:?}")));
    let seen = Rc::new(RefCell::new(Vec::new()));
    let calls = seen.clone();
    runner.set_worker(Box::new(move |job, now| {
        let IoCall::Script(call) = &job.call else {
            panic!("a script call");
        };
        calls.borrow_mut().push((
            job.task_run.task_id.clone(),
            job.task_run.task_run_id.clone(),
            call.shared_folder.clone(),
        ));
        job.finish(IoAnswer::Script(Ok(ScriptRun::default())), now)
    }));
    let out = runner
        .execute("company.team", "wd", IndexMap::new())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.execution.state.current, StateType::Success);
    let seen = seen.borrow();
    let ids: Vec<_> = seen.iter().map(|(task, _, _)| task.as_str()).collect();
    assert_eq!(ids, ["first", "second", "outside"]);
    let dir_run = out
        .execution
        .task_runs()
        .iter()
        .find(|r| r.task_id == "dir")
        .expect("dir");

    let first = seen[0].2.clone().expect("first shares the folder");
    assert_eq!(first.key, dir_run.id);
    assert_eq!(first.previous, None);
    assert_eq!(
        first.snapshot,
        format!(
            "kestra:///company/team/wd/executions/{}/tasks/dir/{}/working-directory.snapshot",
            out.execution.id, dir_run.id
        )
    );
    assert_eq!(
        first.input_files,
        [("seed.txt".to_string(), InputFile::Content("wd".into()))]
    );
    let ns = first.namespace_files.expect("namespace files");
    assert_eq!(
        (ns.namespace.as_str(), ns.include.as_slice()),
        ("company.team", &["*.py".to_string()][..])
    );

    // Nested in a Sequential, after a Log: the previous script child is `first`.
    let second = seen[1].2.clone().expect("second shares the folder");
    assert_eq!(second.key, dir_run.id);
    assert_eq!(second.previous.as_deref(), Some(seen[0].1.as_str()));

    assert_eq!(seen[2].2, None, "outside the WorkingDirectory");
}

#[test]
fn the_legacy_names_are_read() {
    for name in [
        "io.kestra.core.tasks.flows.WorkingDirectory",
        "io.kestra.core.tasks.flows.Worker",
    ] {
        let src = format!(
            "id: a\nnamespace: dev\ntasks:\n  - id: dir\n    type: {name}\n    tasks:\n      - id: x\n        type: io.kestra.plugin.core.log.Log\n        message: m\n"
        );
        let flow = parse_flow(&src).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(flow.tasks[0].task_type(), TaskType::WorkingDirectory, "{name}");
    }
}
