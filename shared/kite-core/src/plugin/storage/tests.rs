use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::files::{extension_of, line_content, parse_bytes, readable, Chunker};
use super::items::ItemRenderer;
use super::*;
use crate::expression::ExpressionError;
use crate::plugin::by_name;

fn literal(v: &Value) -> Result<String, ExpressionError> {
    match v {
        Value::String(s) if s.contains("{{") => Err(ExpressionError::new(format!("cannot render {s}"))),
        Value::String(s) => Ok(s.clone()),
        other => Ok(other.to_string()),
    }
}

fn prepare(name: &str, properties: Value) -> Result<StorageCall, String> {
    let spec = by_name(&format!("io.kestra.plugin.core.storage.{name}")).expect("registered");
    let properties: Map<String, Value> = properties.as_object().cloned().unwrap_or_default();
    match (spec.prepare)(&properties, &literal)? {
        IoCall::Storage(call) => Ok(call),
        other => panic!("{other:?}"),
    }
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

fn now() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
}

#[test]
fn every_task_has_its_current_and_legacy_name() {
    for name in [
        "Write",
        "Concat",
        "Split",
        "Size",
        "Delete",
        "Reverse",
        "FilterItems",
        "DeduplicateItems",
    ] {
        assert!(
            by_name(&format!("io.kestra.plugin.core.storage.{name}")).is_some(),
            "{name}"
        );
    }
    assert_eq!(
        by_name("io.kestra.core.tasks.storages.FilterItems").map(|s| s.kind),
        Some(IoKind::StorageFilterItems)
    );
}

#[test]
fn write_and_concat_default_to_tmp_files_and_add_the_missing_dot() {
    assert_eq!(
        prepare("Write", json!({"content": "hi"})),
        Ok(StorageCall::Write {
            content: "hi".into(),
            extension: ".tmp".into()
        })
    );
    assert_eq!(
        prepare("Write", json!({"content": "hi", "extension": "txt"})),
        Ok(StorageCall::Write {
            content: "hi".into(),
            extension: ".txt".into()
        })
    );
    assert_eq!(
        prepare("Write", json!({"content": "hi", "extension": "../x"})),
        Err("Invalid extension '../x': expected letters, digits, '.', '-' or '_'".into())
    );
    assert_eq!(
        prepare(
            "Concat",
            json!({"files": "[\"kestra:///a\", \"kestra:///b\"]", "separator": "\n"})
        ),
        Ok(StorageCall::Concat {
            files: vec!["kestra:///a".into(), "kestra:///b".into()],
            separator: Some("\n".into()),
            extension: ".tmp".into(),
        })
    );
    assert!(prepare("Concat", json!({"files": "nope"}))
        .unwrap_err()
        .starts_with("Invalid `files`: expected a JSON list of URIs"));
    assert_eq!(
        prepare("Concat", json!({"files": 3})),
        Err("Invalid `files` properties with type 'number'".into())
    );
}

#[test]
fn split_reads_its_sizes_in_kestras_order_and_needs_one() {
    let split = |props| {
        prepare("Split", props).map(|c| match c {
            StorageCall::Split { by, separator, .. } => (by, separator),
            other => panic!("{other:?}"),
        })
    };
    assert_eq!(
        split(json!({"from": "kestra:///a", "bytes": "10KB", "rows": 3})),
        Ok((SplitBy::Bytes(10 * 1024), "\n".into()))
    );
    assert_eq!(
        split(json!({"from": "kestra:///a", "rows": 3, "separator": ";"})),
        Ok((SplitBy::Rows(3), ";".into()))
    );
    assert_eq!(
        split(json!({"from": "kestra:///a", "partitions": 2})),
        Ok((SplitBy::Partitions(2), "\n".into()))
    );
    assert_eq!(
        split(json!({"from": "kestra:///a"})),
        Err("Invalid configuration with no size, count, rows, nor regexPattern".into())
    );
    assert_eq!(
        split(json!({"from": "kestra:///a", "rows": 0})),
        Err("Invalid `rows` value '0': expected a positive integer".into())
    );
    assert_eq!(
        split(json!({"from": "kestra:///a", "bytes": "lots"})),
        Err("Invalid size with value 'lots'".into())
    );
    assert!(split(json!({"from": "kestra:///a", "regexPattern": "("}))
        .unwrap_err()
        .starts_with("Invalid `regexPattern` '('"));
    assert_eq!(parse_bytes("2mb"), Some(2 * 1024 * 1024));
    assert_eq!(parse_bytes("42"), Some(42));
    assert_eq!(parse_bytes("0"), None);
}

#[test]
fn filter_items_keeps_its_condition_unrendered_and_checks_its_enums() {
    assert_eq!(
        prepare(
            "FilterItems",
            json!({"from": "kestra:///a", "filterCondition": "{{ value > 1 }}"})
        ),
        Ok(StorageCall::FilterItems {
            from: "kestra:///a".into(),
            condition: "{{ value > 1 }}".into(),
            filter_type: FilterType::Include,
            on_error_or_null: ErrorOrNullBehavior::Fail,
        })
    );
    assert_eq!(
        prepare(
            "FilterItems",
            json!({"from": "kestra:///a", "filterCondition": "x", "filterType": "KEEP"})
        ),
        Err("Invalid `filterType` 'KEEP': expected one of INCLUDE, EXCLUDE".into())
    );
    assert_eq!(
        prepare("DeduplicateItems", json!({"from": "kestra:///a", "expr": 3})),
        Err("`expr` must be a string (an expression)".into())
    );
    assert_eq!(
        prepare("Delete", json!({"uri": "kestra:///a", "errorOnMissing": "maybe"})),
        Err("Invalid boolean value 'maybe' for property 'errorOnMissing'".into())
    );
    assert_eq!(
        prepare("Reverse", json!({"from": "kestra:///a", "charset": "ISO-8859-1"})),
        Err("Unsupported charset 'ISO-8859-1': only UTF-8 is supported".into())
    );
}

#[test]
fn finish_gives_kestras_outputs_and_fails_with_the_workers_reason() {
    let call = IoCall::Storage(StorageCall::Delete {
        uri: "kestra:///a".into(),
        error_on_missing: true,
    });
    let missing = IoAnswer::Storage(Ok(StorageAnswer::Deleted {
        uri: "kestra:///a".into(),
        deleted: false,
    }));
    let result = finish(&call, missing, &context(), now());
    assert_eq!(result.state, StateType::Failed);
    assert_eq!(result.logs[0].message, "Unable to find file 'kestra:///a'");

    let call = IoCall::Storage(StorageCall::DeduplicateItems {
        from: "kestra:///a".into(),
        expr: "{{ k }}".into(),
    });
    let answer = IoAnswer::Storage(Ok(StorageAnswer::Items {
        uri: "kestra:///b.ion".into(),
        processed: 5,
        dropped: 2,
        keys: Some(3),
    }));
    let result = finish(&call, answer, &context(), now());
    assert_eq!(result.state, StateType::Success);
    assert_eq!(
        Value::Object(result.outputs.into_iter().collect()),
        json!({"uri": "kestra:///b.ion", "numKeys": 3, "processedItemsTotal": 5, "droppedItemsTotal": 2})
    );

    let refused = IoAnswer::Storage(Err(StorageError::NotReadable("file:///etc/passwd".into())));
    let result = finish(&call, refused, &context(), now());
    assert_eq!(result.state, StateType::Failed);
    assert_eq!(
        result.logs[0].message,
        "Unable to read the file 'file:///etc/passwd' as it didn't belong to the current execution"
    );
}

#[test]
fn only_the_executions_files_are_readable() {
    let prefixes = vec!["kestra:///dev/f/executions/e/".to_string()];
    assert_eq!(
        readable("kestra:///dev/f/executions/e/tasks/t/tr/a.ion", &prefixes),
        Ok(())
    );
    for uri in [
        "kestra:///dev/f/executions/other/a.ion",
        "kestra:///dev/f/executions/e/../other/a.ion",
        "file:///etc/passwd",
        "/dev/f/executions/e/a",
    ] {
        assert_eq!(
            readable(uri, &prefixes),
            Err(StorageError::NotReadable(uri.into())),
            "{uri}"
        );
    }
    assert_eq!(extension_of("kestra:///dev/f/executions/e/a.csv"), ".csv");
    assert_eq!(extension_of("kestra:///dev/f.x/executions/e/a"), ".tmp");
}

#[test]
fn lines_split_by_rows_and_bytes_like_kestra() {
    let mut by_rows = Chunker::new(None, Some(2));
    let starts: Vec<bool> = (0..5).map(|_| by_rows.next_line(2)).collect();
    assert_eq!(starts, [true, false, true, false, true]);
    // A file is closed once it holds at least `bytes`: 3 + 3 >= 5.
    let mut by_bytes = Chunker::new(Some(5), None);
    let starts: Vec<bool> = [3, 3, 1, 4, 1].iter().map(|n| by_bytes.next_line(*n)).collect();
    assert_eq!(starts, [true, false, true, false, true]);
    assert_eq!(line_content(b"a\r\n"), b"a");
    assert_eq!(line_content(b"a"), b"a");
}

#[test]
fn items_render_with_their_fields_and_filter_by_truthiness() {
    let even = ItemRenderer::new(" {{ value % 2 == 0 }} ", now());
    let keep = |item: &str, behaviour| even.keep(item.as_bytes(), 7, FilterType::Include, behaviour);
    assert_eq!(keep("{\"value\": 2}\n", ErrorOrNullBehavior::Fail), Ok(true));
    assert_eq!(keep("{\"value\": 3}", ErrorOrNullBehavior::Fail), Ok(false));
    assert_eq!(
        even.keep(
            b"{\"value\": 3}",
            1,
            FilterType::Exclude,
            ErrorOrNullBehavior::Fail
        ),
        Ok(true)
    );
    assert!(matches!(
        keep("{\"other\": 3}", ErrorOrNullBehavior::Fail),
        Err(StorageError::Item { line: 7, .. })
    ));
    assert_eq!(keep("{\"other\": 3}", ErrorOrNullBehavior::Include), Ok(true));
    assert_eq!(keep("{\"other\": 3}", ErrorOrNullBehavior::Exclude), Ok(false));
    assert_eq!(
        keep("[1, 2]", ErrorOrNullBehavior::Fail),
        Err(StorageError::Item {
            line: 7,
            message: "expected a map of fields, got `[1,2]`".into()
        })
    );
    let key = ItemRenderer::new("{{ email }}", now());
    assert_eq!(
        key.render(b"{\"email\": \"a@b.c\", \"n\": 1}", 1),
        Ok("a@b.c".into())
    );
}
