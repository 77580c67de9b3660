//! The internal storage tasks through the engine on the local store: the example flow's
//! files and outputs, and the refusals (a missing file, a URI outside the execution, a
//! condition that does not render) as FAILED task runs that say why.

use kite_core::execution::{Execution, StateType};
use kite_engine::ports::FileStorage;
use kite_engine::EngineConfig;
use kite_local::{open_engine, LocalFileStorage, Runtime};
use serde_json::{json, Value};

mod common;
use common::run_flow;

fn output(execution: &Execution, task: &str, name: &str) -> Value {
    let task_run = execution
        .task_runs()
        .iter()
        .find(|tr| tr.task_id == task)
        .unwrap_or_else(|| panic!("no task run of {task}"));
    task_run
        .outputs
        .as_ref()
        .and_then(|o| o.get(name))
        .cloned()
        .unwrap_or(Value::Null)
}

fn state(execution: &Execution, task: &str) -> StateType {
    execution
        .task_runs()
        .iter()
        .find(|tr| tr.task_id == task)
        .map(|tr| tr.state.current)
        .unwrap_or_else(|| panic!("no task run of {task}"))
}

fn text(files: &LocalFileStorage, uri: &Value) -> String {
    let uri = uri.as_str().unwrap_or_else(|| panic!("not a URI: {uri}"));
    String::from_utf8(files.read_blocking(uri).expect("file")).expect("utf-8")
}

const ORDER_1: &str = r#"{"order_id": 1, "email": "kelly@example.com", "total": 166.89}"#;
const ORDER_2: &str = r#"{"order_id": 2, "email": "miguel@example.net", "total": 12.5}"#;
const ORDER_3: &str = r#"{"order_id": 3, "email": "kelly@example.com", "total": 70}"#;
const ORDER_4: &str = r#"{"order_id": 4, "email": "jessica@example.com", "total": 50.62}"#;
const ORDER_5: &str = r#"{"order_id": 5, "email": "jessica@example.com", "total": 99}"#;

fn lines(items: &[&str]) -> String {
    items.iter().map(|l| format!("{l}\n")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_flow_writes_combines_splits_and_filters_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open_engine(dir.path(), EngineConfig::default()).expect("engine");
    let runtime = Runtime::start(engine.clone(), 2).await.expect("runtime");
    let source = include_str!("../../../flows/dev/storage-files.yaml");
    let (done, logs) = run_flow(&engine, source).await;
    runtime.shutdown().await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    let files = LocalFileStorage::new(dir.path().join("storage")).expect("files");

    let orders = output(&done, "orders", "uri");
    let prefix = format!("kestra:///dev/storage-files/executions/{}/tasks/orders/", done.id);
    assert!(
        orders
            .as_str()
            .is_some_and(|u| u.starts_with(&prefix) && u.ends_with(".ion")),
        "{orders}"
    );
    let more = output(&done, "more_orders", "uri");
    assert!(more.as_str().is_some_and(|u| u.ends_with(".ion")), "{more}");

    let all = output(&done, "all_orders", "uri");
    let everything = lines(&[ORDER_1, ORDER_2, ORDER_3, ORDER_4, ORDER_5]);
    assert_eq!(text(&files, &all), everything);
    assert_eq!(output(&done, "size", "size"), json!(everything.len()));

    let batches = output(&done, "batches", "uris");
    let batches: Vec<String> = batches
        .as_array()
        .expect("uris")
        .iter()
        .map(|u| text(&files, u))
        .collect();
    assert_eq!(
        batches,
        [
            lines(&[ORDER_1, ORDER_2]),
            lines(&[ORDER_3, ORDER_4]),
            lines(&[ORDER_5])
        ]
    );

    let reversed = output(&done, "newest_first", "uri");
    assert!(reversed.as_str().is_some_and(|u| u.ends_with(".ion")));
    assert_eq!(
        text(&files, &reversed),
        lines(&[ORDER_5, ORDER_4, ORDER_3, ORDER_2, ORDER_1])
    );

    assert_eq!(
        text(&files, &output(&done, "big_orders", "uri")),
        lines(&[ORDER_1, ORDER_3, ORDER_5])
    );
    assert_eq!(output(&done, "big_orders", "processedItemsTotal"), json!(5));
    assert_eq!(output(&done, "big_orders", "droppedItemsTotal"), json!(2));

    let dedup = "last_order_per_customer";
    assert_eq!(
        text(&files, &output(&done, dedup, "uri")),
        lines(&[ORDER_2, ORDER_3, ORDER_5])
    );
    assert_eq!(output(&done, dedup, "numKeys"), json!(3));
    assert_eq!(output(&done, dedup, "processedItemsTotal"), json!(5));
    assert_eq!(output(&done, dedup, "droppedItemsTotal"), json!(2));

    assert!(
        logs.iter().any(|l| l
            == &format!(
                "{} bytes in 3 batches; 3 big orders; 3 customers",
                everything.len()
            )),
        "{logs:?}"
    );
    assert_eq!(output(&done, "cleanup", "uri"), orders);
    assert_eq!(output(&done, "cleanup", "deleted"), json!(true));
    let orders = orders.as_str().expect("uri");
    assert_eq!(files.size(orders).await.expect("size"), None);
    // The other files of the execution stay.
    assert!(files
        .size(all.as_str().expect("uri"))
        .await
        .expect("size")
        .is_some());
}

const REFUSALS: &str = r#"
id: storage-refusals
namespace: dev
tasks:
  - id: items
    type: io.kestra.plugin.core.storage.Write
    content: |
      {"n": 1}
      {"n": "two"}
  - id: missing
    type: io.kestra.plugin.core.storage.Size
    uri: "kestra:///dev/storage-refusals/executions/{{ execution.id }}/nothing.txt"
    allowFailure: true
  - id: outside
    type: io.kestra.plugin.core.storage.Concat
    files: '["{{ outputs.items.uri }}", "file:///etc/hostname"]'
    allowFailure: true
  - id: other_execution
    type: io.kestra.plugin.core.storage.Reverse
    from: "kestra:///dev/storage-refusals/executions/someone-else/file.txt"
    allowFailure: true
  - id: bad_condition
    type: io.kestra.plugin.core.storage.FilterItems
    from: "{{ outputs.items.uri }}"
    filterCondition: "{{ n + 1 > 1 }}"
    allowFailure: true
  - id: keep_errors
    type: io.kestra.plugin.core.storage.FilterItems
    from: "{{ outputs.items.uri }}"
    filterCondition: "{{ n + 1 > 1 }}"
    errorOrNullBehavior: INCLUDE
    filterType: EXCLUDE
  - id: delete_missing
    type: io.kestra.plugin.core.storage.Delete
    uri: "kestra:///dev/storage-refusals/executions/{{ execution.id }}/nothing.txt"
  - id: delete_missing_strict
    type: io.kestra.plugin.core.storage.Delete
    uri: "kestra:///dev/storage-refusals/executions/{{ execution.id }}/nothing.txt"
    errorOnMissing: true
    allowFailure: true
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_fail_the_task_run_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open_engine(dir.path(), EngineConfig::default()).expect("engine");
    let runtime = Runtime::start(engine.clone(), 2).await.expect("runtime");
    let (done, logs) = run_flow(&engine, REFUSALS).await;
    runtime.shutdown().await;
    assert_eq!(done.state.current, StateType::Warning, "{logs:?}");
    for task in [
        "missing",
        "outside",
        "other_execution",
        "bad_condition",
        "delete_missing_strict",
    ] {
        // A failure allowed by `allowFailure` ends the task run in WARNING, as in Kestra.
        assert_eq!(state(&done, task), StateType::Warning, "{task}: {logs:?}");
    }
    let missing = format!(
        "kestra:///dev/storage-refusals/executions/{}/nothing.txt",
        done.id
    );
    let has = |line: &str| logs.iter().any(|l| l == line);
    assert!(has(&format!("Unable to find file '{missing}'")), "{logs:?}");
    assert!(
        has("Unable to read the file 'file:///etc/hostname' as it didn't belong to the current execution"),
        "{logs:?}"
    );
    assert!(
        has("Unable to read the file 'kestra:///dev/storage-refusals/executions/someone-else/file.txt' as it didn't belong to the current execution"),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.starts_with("Item on line 2: `{{ n + 1 > 1 }}`")),
        "{logs:?}"
    );
    // The refused Concat checked its sources first and wrote nothing.
    let files = LocalFileStorage::new(dir.path().join("storage")).expect("files");
    let outside = done
        .task_runs()
        .iter()
        .find(|tr| tr.task_id == "outside")
        .expect("task run");
    let concat = format!(
        "kestra:///dev/storage-refusals/executions/{}/tasks/outside/{}/concat.tmp",
        done.id, outside.id
    );
    assert_eq!(files.size(&concat).await.expect("size"), None);
    assert_eq!(output(&done, "outside", "uri"), Value::Null);
    // The FilterItems that failed on its second item kept no partial file.
    let bad = done
        .task_runs()
        .iter()
        .find(|tr| tr.task_id == "bad_condition")
        .expect("task run");
    let filtered = format!(
        "kestra:///dev/storage-refusals/executions/{}/tasks/bad_condition/{}/filtered.ion",
        done.id, bad.id
    );
    assert_eq!(files.size(&filtered).await.expect("size"), None);

    // EXCLUDE drops the matching item; INCLUDE keeps the one whose condition failed.
    assert_eq!(
        text(&files, &output(&done, "keep_errors", "uri")),
        "{\"n\": \"two\"}\n"
    );
    assert_eq!(output(&done, "keep_errors", "droppedItemsTotal"), json!(1));
    assert_eq!(output(&done, "delete_missing", "deleted"), json!(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_condition_that_does_not_render_fails_the_execution() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open_engine(dir.path(), EngineConfig::default()).expect("engine");
    let runtime = Runtime::start(engine.clone(), 2).await.expect("runtime");
    let source = r#"
id: storage-bad-condition
namespace: dev
tasks:
  - id: items
    type: io.kestra.plugin.core.storage.Write
    content: '{"n": 1}'
  - id: filter
    type: io.kestra.plugin.core.storage.FilterItems
    from: "{{ outputs.items.uri }}"
    filterCondition: "{{ n | nosuchfilter }}"
  - id: never
    type: io.kestra.plugin.core.log.Log
    message: not reached
"#;
    let (done, logs) = run_flow(&engine, source).await;
    runtime.shutdown().await;
    assert_eq!(done.state.current, StateType::Failed, "{logs:?}");
    assert_eq!(state(&done, "filter"), StateType::Failed);
    assert!(done.task_runs().iter().all(|tr| tr.task_id != "never"));
    assert!(
        logs.iter()
            .any(|l| l.starts_with("Item on line 1: `{{ n | nosuchfilter }}`") && l.contains("nosuchfilter")),
        "{logs:?}"
    );
}

/// The worker's calls on the local folder directly, for the cases a flow shows less well.
mod calls {
    use std::sync::Arc;

    use chrono::{DateTime, Utc};
    use kite_core::plugin::storage::{SplitBy, StorageAnswer, StorageCall, StorageError};
    use kite_engine::ports::FileStorage;
    use kite_local::LocalFileStorage;
    use kite_worker::storage::{run, Scope};

    const PREFIX: &str = "kestra:///dev/f/executions/e/";

    struct Folder {
        _dir: tempfile::TempDir,
        files: Arc<dyn FileStorage>,
        readable: Vec<String>,
    }

    impl Folder {
        fn new() -> Folder {
            let dir = tempfile::tempdir().expect("tempdir");
            let files: Arc<dyn FileStorage> = Arc::new(LocalFileStorage::new(dir.path()).expect("files"));
            Folder {
                _dir: dir,
                files,
                readable: vec![PREFIX.to_string()],
            }
        }

        async fn put(&self, name: &str, content: &str) -> String {
            let uri = format!("{PREFIX}{name}");
            let bytes = content.as_bytes().to_vec();
            self.files
                .put(&uri, Box::pin(std::io::Cursor::new(bytes)), 1 << 20)
                .await
                .expect("put");
            uri
        }

        async fn call(&self, call: StorageCall) -> Result<StorageAnswer, StorageError> {
            let scope = Scope {
                files: &self.files,
                prefix: "kestra:///dev/f/executions/e/tasks/t/tr/",
                readable: &self.readable,
                now: DateTime::<Utc>::UNIX_EPOCH,
            };
            run(&scope, &call).await
        }

        async fn split(&self, from: &str, by: SplitBy, separator: &str) -> Vec<String> {
            let answer = self
                .call(StorageCall::Split {
                    from: from.into(),
                    by,
                    separator: separator.into(),
                })
                .await;
            let Ok(StorageAnswer::Split { uris }) = answer else {
                panic!("{answer:?}");
            };
            uris.iter()
                .map(|u| String::from_utf8(self.files.read_blocking(u).expect("read")).expect("utf-8"))
                .collect()
        }
    }

    #[tokio::test]
    async fn split_by_partitions_bytes_and_pattern() {
        let folder = Folder::new();
        let from = folder.put("rows.csv", "a1\r\nb2\nc3\nd4\ne5").await;
        assert_eq!(
            folder.split(&from, SplitBy::Partitions(2), "\n").await,
            ["a1\nc3\ne5\n", "b2\nd4\n"]
        );
        // Empty partitions are left out.
        assert_eq!(
            folder.split(&from, SplitBy::Partitions(9), ";").await,
            ["a1;", "b2;", "c3;", "d4;", "e5;"]
        );
        assert_eq!(
            folder.split(&from, SplitBy::Bytes(6), "\n").await,
            ["a1\nb2\n", "c3\nd4\n", "e5\n"]
        );
        let logs = folder
            .put("logs.txt", "[web] up\n[db] up\nnoise\n[web] down\n")
            .await;
        assert_eq!(
            folder
                .split(&logs, SplitBy::Regex(r"\[(\w+)\]".into()), "\n")
                .await,
            ["[web] up\n[web] down\n", "[db] up\n"]
        );
        let answer = folder
            .call(StorageCall::Split {
                from: from.clone(),
                by: SplitBy::Rows(1),
                separator: "\n".into(),
            })
            .await;
        let Ok(StorageAnswer::Split { uris }) = answer else {
            panic!("{answer:?}");
        };
        assert_eq!(uris[0], "kestra:///dev/f/executions/e/tasks/t/tr/split-0.csv");
    }

    #[tokio::test]
    async fn reverse_concat_size_and_delete() {
        let folder = Folder::new();
        let from = folder.put("n.txt", "1\r\n2\n3\n").await;
        let answer = folder
            .call(StorageCall::Reverse {
                from: from.clone(),
                separator: "|".into(),
            })
            .await;
        let Ok(StorageAnswer::Stored { uri }) = answer else {
            panic!("{answer:?}");
        };
        assert!(uri.ends_with("/reverse.txt"), "{uri}");
        assert_eq!(folder.files.read_blocking(&uri).expect("read"), b"3|2|1|");

        let answer = folder
            .call(StorageCall::Concat {
                files: vec![from.clone(), uri.clone()],
                separator: Some("--".into()),
                extension: ".out".into(),
            })
            .await;
        let Ok(StorageAnswer::Stored { uri: joined }) = answer else {
            panic!("{answer:?}");
        };
        assert_eq!(
            folder.files.read_blocking(&joined).expect("read"),
            b"1\r\n2\n3\n--3|2|1|--"
        );
        assert_eq!(
            folder.call(StorageCall::Size { uri: joined.clone() }).await,
            Ok(StorageAnswer::Size { size: 17 })
        );
        assert_eq!(
            folder
                .call(StorageCall::Delete {
                    uri: joined.clone(),
                    error_on_missing: false
                })
                .await,
            Ok(StorageAnswer::Deleted {
                uri: joined.clone(),
                deleted: true
            })
        );
        assert_eq!(
            folder.call(StorageCall::Size { uri: joined.clone() }).await,
            Err(StorageError::NotFound(joined))
        );
        // Outside the readable prefixes nothing is touched, even to delete.
        let other = "kestra:///dev/f/executions/other/x.txt".to_string();
        assert_eq!(
            folder
                .call(StorageCall::Delete {
                    uri: other.clone(),
                    error_on_missing: false
                })
                .await,
            Err(StorageError::NotReadable(other))
        );
    }

    #[tokio::test]
    async fn a_too_long_line_fails_instead_of_filling_memory() {
        let folder = Folder::new();
        let long = "x".repeat(kite_core::plugin::storage::files::MAX_LINE_BYTES + 10);
        let big = format!("{PREFIX}big.txt");
        folder
            .files
            .put(&big, Box::pin(std::io::Cursor::new(long.into_bytes())), 1 << 30)
            .await
            .expect("put");
        let answer = folder
            .call(StorageCall::FilterItems {
                from: big.clone(),
                condition: "{{ true }}".into(),
                filter_type: kite_core::plugin::storage::FilterType::Include,
                on_error_or_null: kite_core::plugin::storage::ErrorOrNullBehavior::Include,
            })
            .await;
        assert_eq!(
            answer,
            Err(StorageError::LineTooLong {
                uri: big,
                limit: kite_core::plugin::storage::files::MAX_LINE_BYTES
            })
        );
    }
}
