//! Kestra's own test flows and unit-test cases for the task types that do I/O (KV store,
//! internal storage, serdes conversions, namespace files, HTTP, `secret()`), from `tests/kestra-flows/io/`,
//! run on the local engine with its workers and checked against what Kestra's tests
//! assert. HTTP cases call a local server instead of the internet. Prints
//! `io corpus: N passed, N failed, N skipped, N known differences` and fails if a case
//! fails, if a known difference is no longer seen, or if a flow file has no case.

use std::collections::BTreeSet;

mod io_cases;
use io_cases::{foreach_item, http, kv, logs, namespace, scripts, sql, storage, Case, Env};

fn case(name: &'static str, file: &'static str, run: io_cases::CaseFn) -> Case {
    Case {
        name,
        file,
        secrets: &[],
        known: None,
        run,
    }
}

fn cases() -> Vec<Case> {
    vec![
        case("kv[get]", "kv.yaml", |e| Box::pin(kv::function_get(e))),
        Case {
            known: Some("`??` does not catch the error of kv() on a missing key"),
            ..case("kv[getKeyNotFound]", "kv.yaml", |e| {
                Box::pin(kv::function_key_not_found(e))
            })
        },
        Case {
            secrets: kv::SECRETS,
            ..case("secrets[getSecret]", "secrets.yaml", |e| Box::pin(kv::secrets(e)))
        },
        case("kv-tasks", "kv-tasks.yaml", |e| Box::pin(kv::tasks(e))),
        Case {
            known: Some("a DURATION value is stored as its ISO-8601 text, not as a number of seconds"),
            ..case("kv-tasks[DURATION]", "kv-tasks.yaml", |e| {
                Box::pin(kv::duration(e))
            })
        },
        Case {
            known: Some("KV tasks do not check that the namespace exists"),
            ..case("kv-set-unknown-namespace", "kv-set-unknown-namespace.yaml", |e| {
                Box::pin(kv::unknown_namespace(e))
            })
        },
        case("storage-files", "storage-files.yaml", |e| {
            Box::pin(storage::files(e))
        }),
        case("storage-items", "storage-items.yaml", |e| {
            Box::pin(storage::items_files(e))
        }),
        case("serdes-csv", "serdes-csv.yaml", |e| {
            Box::pin(storage::serdes_csv(e))
        }),
        case("jdbc-sqlite", "jdbc-sqlite.yaml", |e| {
            Box::pin(sql::all_sqlite(e))
        }),
        case("namespace-upload", "namespace-upload.yaml", |e| {
            Box::pin(namespace::upload(e))
        }),
        case(
            "namespace-download-delete",
            "namespace-download-delete.yaml",
            |e| Box::pin(namespace::download_delete(e)),
        ),
        case("http-request", "http-request.yaml", |e| {
            Box::pin(http::request(e))
        }),
        case("http-download", "http-download.yaml", |e| {
            Box::pin(http::download(e))
        }),
        case("for-each-item", "for-each-item.yaml", |e| {
            Box::pin(foreach_item::for_each_item(e))
        }),
        case("for-each-item[empty]", "for-each-item.yaml", |e| {
            Box::pin(foreach_item::empty_items(e))
        }),
        case("for-each-item-subflow", "for-each-item-subflow.yaml", |e| {
            Box::pin(foreach_item::subflow(e))
        }),
        Case {
            known: Some(EXECUTION_LINE),
            ..case("get-log", "get-log.yaml", |e| Box::pin(logs::fetch(e)))
        },
        case("get-log[lines]", "get-log.yaml", |e| {
            Box::pin(logs::fetch_lines(e))
        }),
        case("get-log-taskid", "get-log-taskid.yaml", |e| {
            Box::pin(logs::fetch_task_id(e))
        }),
        Case {
            known: Some(EXECUTION_LINE),
            ..case("get-log-executionid", "get-log-executionid.yaml", |e| {
                Box::pin(logs::fetch_execution_id(e))
            })
        },
        case("scripts-shell", "scripts-shell.yaml", |e| {
            Box::pin(scripts::shell(e))
        }),
        case("scripts-bash", "scripts-bash.yaml", |e| {
            Box::pin(scripts::bash(e))
        }),
    ]
}

/// Kestra's `FetchTest` counts a third line of the execution besides its two tasks' lines;
/// Kite writes no line for the execution itself there.
const EXECUTION_LINE: &str =
    "Kestra fetches one more line than the two tasks log (a line of the execution itself)";

/// Kestra tests of these task types that the corpus does not run, and why.
const SKIPPED: &[(&str, &str)] = &[
    (
        "RequestTest.selfSigned",
        "calls a TLS site on the internet with a self-signed certificate",
    ),
    ("RequestTest.encrypted", "encryptBody is not implemented"),
    (
        "UploadFilesTest.shouldPutFileFromRegex",
        "globs a task working directory, which Kite tasks do not have",
    ),
    (
        "LocalFilesTest",
        "LocalFiles is not implemented (it needs a script's working directory)",
    ),
    (
        "PurgeCurrentExecutionFilesTest, Purge*Test",
        "PurgeExecutions and PurgeLogs are not implemented (PurgeCurrentExecutionFiles runs in jdbc-sqlite.yaml)",
    ),
    ("PurgeKVTest", "PurgeKV is not implemented"),
    (
        "input-log-secret.yaml",
        "a SECRET input type, not the secret() function: outside the task types of this corpus",
    ),
    (
        "webhook-secret-key.yaml",
        "secret() in a Webhook trigger key, which Kite does not read yet",
    ),
    (
        "working-directory*.yml",
        "their WorkingDirectory children are LocalFiles tasks, which are not implemented",
    ),
];

const FLOWS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/kestra-flows/io");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn io_corpus() {
    let cases = cases();
    let covered: BTreeSet<&str> = cases.iter().map(|c| c.file).collect();
    let uncovered: Vec<String> = std::fs::read_dir(FLOWS_DIR)
        .expect("io corpus directory")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| (n.ends_with(".yaml") || n.ends_with(".yml")) && !covered.contains(n.as_str()))
        .collect();

    let (mut passed, mut failed, mut known) = (0, Vec::new(), 0);
    for case in &cases {
        let env = Env::start(case.secrets).await;
        let result = (case.run)(&env).await;
        env.stop().await;
        match (result, case.known) {
            (Ok(()), None) => passed += 1,
            (Err(e), None) => failed.push(format!("{}: {e}", case.name)),
            (Err(e), Some(why)) => {
                known += 1;
                eprintln!("known difference {}: {why} ({e})", case.name);
            }
            (Ok(()), Some(why)) => failed.push(format!(
                "{}: passes, but is listed as a known difference ({why}); update docs/compatibility.md",
                case.name
            )),
        }
    }
    for (test, why) in SKIPPED {
        eprintln!("skipped {test}: {why}");
    }
    for f in &failed {
        eprintln!("FAILED {f}");
    }
    eprintln!(
        "io corpus: {passed} passed, {} failed, {} skipped, {known} known differences",
        failed.len(),
        SKIPPED.len()
    );
    assert!(uncovered.is_empty(), "flows without a case: {uncovered:?}");
    assert!(failed.is_empty(), "{} case(s) failed", failed.len());
}
