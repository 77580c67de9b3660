//! Conformance cases: logs.

use super::*;

/// Append order, level and task run filters, delete by execution.
pub async fn logs_filter_by_level_and_task_run(logs: &dyn LogRepository) {
    logs.append(&[
        log("e1", "DEBUG", None, "1"),
        log("e1", "INFO", Some("tr1"), "2"),
        log("e1", "ERROR", Some("tr2"), "3"),
        log("e2", "INFO", None, "x"),
    ])
    .await
    .unwrap();
    let q = |execution: &str, min: Option<&str>, tr: Option<&str>| LogQuery {
        execution_id: execution.into(),
        min_level: min.and_then(LogLevel::parse),
        task_run_id: tr.map(str::to_string),
        ..Default::default()
    };
    let all = logs.list(&q("e1", None, None)).await.unwrap();
    assert_eq!(
        all.iter().map(|l| l.message.as_str()).collect::<Vec<_>>(),
        ["1", "2", "3"]
    );
    assert_eq!(logs.list(&q("e1", Some("WARN"), None)).await.unwrap().len(), 1);
    assert_eq!(
        logs.list(&q("e1", None, Some("tr1"))).await.unwrap()[0].message,
        "2"
    );
    assert_eq!(logs.delete_by_execution("e1").await.unwrap(), 3);
    assert!(logs.list(&q("e1", None, None)).await.unwrap().is_empty());
    // Other executions' logs stay.
    assert_eq!(logs.list(&q("e2", None, None)).await.unwrap().len(), 1);
}
