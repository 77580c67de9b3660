//! `flow.ForEachItem`: parsed into the three steps Kestra runs and shows for it, each a
//! task of its body: `{id}_split` (cuts `items` into batch files, on a worker),
//! `{id}_items` (one subflow execution per batch) and `{id}_merge` (the subflows'
//! outputs into one file, on a worker).

use serde_json::{Map, Value};

use super::error::FlowErrorKind;
use super::reader::{join_path, present, Parser};
use super::{Flowable, IoTask, Task, TaskKind};
use crate::plugin::foreach_item::{ITEMS_TYPE, MERGE_TYPE, SPLIT_TYPE};
use crate::plugin::IoKind;

/// The properties of `batch` (Kestra's `StorageSplitInterface`).
const BATCH_FIELDS: &[&str] = &["rows", "bytes", "partitions", "separator", "regexPattern"];

impl Parser {
    pub(super) fn for_each_item(&mut self, obj: &Map<String, Value>, path: &str) -> Option<TaskKind> {
        let id = obj
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let items = self.required(obj, path, "items");
        let mut split = Map::new();
        match present(obj, "batch") {
            None => {}
            Some(Value::Object(batch)) => {
                let batch_path = join_path(path, "batch");
                self.check_fields(batch, &batch_path, &[BATCH_FIELDS], "batch");
                for (k, v) in batch {
                    if BATCH_FIELDS.contains(&k.as_str()) {
                        split.insert(k.clone(), v.clone());
                    }
                }
            }
            Some(_) => self.err(
                FlowErrorKind::InvalidProperty,
                &join_path(path, "batch"),
                "`batch` must be a map of rows, bytes, partitions, separator",
            ),
        }
        let executable = match self.subflow(obj, path)? {
            TaskKind::Subflow(sub) => sub,
            _ => return None,
        };
        let errors = self.tasks(obj.get("errors"), &join_path(path, "errors"), false);
        let finally = self.tasks(obj.get("finally"), &join_path(path, "finally"), false);
        split.insert("items".into(), items?);
        let steps = [
            (
                "_split",
                SPLIT_TYPE,
                TaskKind::Io(IoTask {
                    kind: IoKind::ForEachItemSplit,
                    properties: split,
                }),
            ),
            ("_items", ITEMS_TYPE, TaskKind::ForEachItemExecutable(executable)),
            (
                "_merge",
                MERGE_TYPE,
                TaskKind::Io(IoTask {
                    kind: IoKind::ForEachItemMerge,
                    properties: Map::new(),
                }),
            ),
        ];
        let mut tasks = Vec::new();
        for (suffix, type_name, kind) in steps {
            let step_id = format!("{id}{suffix}");
            if !self.task_ids.insert(step_id.clone()) {
                self.err(
                    FlowErrorKind::DuplicateTaskId,
                    &join_path(path, "id"),
                    format!("Duplicate task id with name [{step_id}]"),
                );
            }
            tasks.push(Task {
                id: step_id,
                type_name: type_name.into(),
                kind,
                description: None,
                retry: None,
                timeout: None,
                disabled: false,
                log_level: None,
                allow_failure: false,
                allow_warning: false,
                run_if: None,
            });
        }
        Some(TaskKind::ForEachItem(Flowable {
            tasks,
            errors,
            finally,
        }))
    }
}
