//! Kestra's internal storage tasks (`io.kestra.plugin.core.storage.*`): `Write`, `Concat`,
//! `Split`, `Size`, `Delete`, `Reverse`, `FilterItems` and `DeduplicateItems`, with
//! Kestra's properties, defaults, outputs and messages. The worker reads and writes the
//! files through the engine's file storage port; what it needs to decide per line
//! (which files it may read, how an item renders, where a split starts) lives in
//! [`files`] and [`items`] so that it stays pure.
//!
//! Items files (`FilterItems`, `DeduplicateItems`) hold one Ion value per line (Kestra's
//! `.ion` files; JSON lines are Ion too), read with [`crate::ion`].

pub mod files;
pub mod items;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde_json::{json, Map, Value};

use super::props::Props;
use super::{Check, IoAnswer, IoCall, IoKind, IoTaskSpec, Property, Render, TaskRunContext};
use crate::execution::{LogLevel, StateType, TaskResult};
pub use files::{extension_of, readable, StorageError};
pub use items::{ErrorOrNullBehavior, FilterType};

/// A storage operation, rendered.
#[derive(Debug, Clone, PartialEq)]
pub enum StorageCall {
    Write {
        content: String,
        extension: String,
    },
    Concat {
        files: Vec<String>,
        /// Written after every file (the last one too), as in Kestra.
        separator: Option<String>,
        extension: String,
    },
    Split {
        from: String,
        by: SplitBy,
        separator: String,
    },
    Size {
        uri: String,
    },
    Delete {
        uri: String,
        error_on_missing: bool,
    },
    Reverse {
        from: String,
        separator: String,
    },
    FilterItems {
        from: String,
        /// Rendered per item, with the item's fields as variables.
        condition: String,
        filter_type: FilterType,
        on_error_or_null: ErrorOrNullBehavior,
    },
    DeduplicateItems {
        from: String,
        /// Rendered per item into its key.
        expr: String,
    },
    /// `PurgeCurrentExecutionFiles`: every file under the execution's prefix.
    PurgeExecutionFiles {
        prefix: String,
    },
}

/// How `Split` cuts a file into lines groups (Kestra's order of precedence).
#[derive(Debug, Clone, PartialEq)]
pub enum SplitBy {
    /// Lines grouped by the first capture group of the pattern; other lines are dropped.
    Regex(String),
    /// A new file once the current one holds at least this many bytes.
    Bytes(u64),
    /// Lines dealt round-robin into this many files (the empty ones are left out).
    Partitions(usize),
    /// A new file every this many lines.
    Rows(usize),
}

/// What the worker did for a [`StorageCall`] of the matching variant.
#[derive(Debug, Clone, PartialEq)]
pub enum StorageAnswer {
    /// `Write`, `Concat`, `Reverse`: the file stored.
    Stored {
        uri: String,
    },
    Split {
        uris: Vec<String>,
    },
    Size {
        size: u64,
    },
    Deleted {
        uri: String,
        deleted: bool,
    },
    /// `PurgeCurrentExecutionFiles`: the files deleted.
    Purged {
        uris: Vec<String>,
    },
    /// `FilterItems` and `DeduplicateItems` (`keys`: the distinct keys seen).
    Items {
        uri: String,
        processed: u64,
        dropped: u64,
        keys: Option<u64>,
    },
}

const WRITE: &[Property] = &[
    Property::new("content", Check::Required),
    Property::new("extension", Check::Any),
];
const CONCAT: &[Property] = &[
    Property::new("files", Check::Required),
    Property::new("separator", Check::Any),
    Property::new("extension", Check::Any),
];
const SPLIT: &[Property] = &[
    Property::new("from", Check::Required),
    Property::new("bytes", Check::Any),
    Property::new("partitions", Check::Any),
    Property::new("rows", Check::Any),
    Property::new("regexPattern", Check::Any),
    Property::new("separator", Check::Any),
];
const SIZE: &[Property] = &[Property::new("uri", Check::Required)];
const DELETE: &[Property] = &[
    Property::new("uri", Check::Required),
    Property::new("errorOnMissing", Check::Any),
];
const REVERSE: &[Property] = &[
    Property::new("from", Check::Required),
    Property::new("separator", Check::Any),
    Property::new("charset", Check::Any),
];
const FILTER_ITEMS: &[Property] = &[
    Property::new("from", Check::Required),
    Property::new("filterCondition", Check::Required),
    Property::new("filterType", Check::Any),
    Property::new("errorOrNullBehavior", Check::Any),
];
const PURGE_EXECUTION_FILES: &[Property] = &[
    Property::new("includeChildExecutions", Check::Any),
    Property::new("includeStates", Check::Any),
];
const DEDUPLICATE_ITEMS: &[Property] = &[
    Property::new("from", Check::Required),
    Property::new("expr", Check::Required),
];

pub const TASKS: &[IoTaskSpec] = &[
    IoTaskSpec::new(
        IoKind::StorageWrite,
        "io.kestra.plugin.core.storage.Write",
        WRITE,
        prepare_write,
        finish,
    ),
    IoTaskSpec::new(
        IoKind::StorageConcat,
        "io.kestra.plugin.core.storage.Concat",
        CONCAT,
        prepare_concat,
        finish,
    )
    .with_aliases(&["io.kestra.core.tasks.storages.Concat"]),
    IoTaskSpec::new(
        IoKind::StorageSplit,
        "io.kestra.plugin.core.storage.Split",
        SPLIT,
        prepare_split,
        finish,
    )
    .with_aliases(&["io.kestra.core.tasks.storages.Split"]),
    IoTaskSpec::new(
        IoKind::StorageSize,
        "io.kestra.plugin.core.storage.Size",
        SIZE,
        prepare_size,
        finish,
    )
    .with_aliases(&["io.kestra.core.tasks.storages.Size"]),
    IoTaskSpec::new(
        IoKind::StorageDelete,
        "io.kestra.plugin.core.storage.Delete",
        DELETE,
        prepare_delete,
        finish,
    )
    .with_aliases(&["io.kestra.core.tasks.storages.Delete"]),
    IoTaskSpec::new(
        IoKind::StorageReverse,
        "io.kestra.plugin.core.storage.Reverse",
        REVERSE,
        prepare_reverse,
        finish,
    )
    .with_aliases(&["io.kestra.core.tasks.storages.Reverse"]),
    IoTaskSpec::new(
        IoKind::StorageFilterItems,
        "io.kestra.plugin.core.storage.FilterItems",
        FILTER_ITEMS,
        prepare_filter_items,
        finish,
    )
    .with_aliases(&["io.kestra.core.tasks.storages.FilterItems"]),
    IoTaskSpec::new(
        IoKind::StorageDeduplicateItems,
        "io.kestra.plugin.core.storage.DeduplicateItems",
        DEDUPLICATE_ITEMS,
        prepare_deduplicate_items,
        finish,
    )
    .with_aliases(&["io.kestra.core.tasks.storages.DeduplicateItems"]),
    IoTaskSpec::new(
        IoKind::StoragePurgeCurrentExecutionFiles,
        "io.kestra.plugin.core.storage.PurgeCurrentExecutionFiles",
        PURGE_EXECUTION_FILES,
        prepare_purge_execution_files,
        finish,
    )
    .with_aliases(&[
        "io.kestra.core.tasks.storages.PurgeExecution",
        "io.kestra.plugin.core.storage.PurgeExecution",
    ]),
];

impl Props<'_> {
    /// A template kept as written: the worker renders it once per item.
    fn template(&self, name: &str) -> Result<String, String> {
        match self.properties.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Null) | None => Err(format!("Missing required property '{name}'")),
            Some(_) => Err(format!("`{name}` must be a string (an expression)")),
        }
    }

    /// A count of at least 1.
    fn count(&self, name: &str) -> Result<Option<usize>, String> {
        let Some(text) = self.rendered(name)? else {
            return Ok(None);
        };
        match text.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(format!(
                "Invalid `{name}` value '{text}': expected a positive integer"
            )),
        }
    }

    /// `extension`, with the leading dot Kestra adds when it is missing.
    fn extension(&self, default: &str) -> Result<String, String> {
        match self.rendered("extension")? {
            None => Ok(default.to_string()),
            Some(ext) => files::extension(&ext).map_err(|e| e.to_string()),
        }
    }
}

fn prepare_write(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    Ok(IoCall::Storage(StorageCall::Write {
        content: p.required("content")?,
        extension: p.extension(files::DEFAULT_EXTENSION)?,
    }))
}

fn prepare_concat(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    let files = match properties.get("files") {
        Some(Value::Array(list)) => list
            .iter()
            .map(|f| render(f).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?,
        Some(Value::String(_)) => {
            let text = p.required("files")?;
            serde_json::from_str::<Vec<String>>(&text)
                .map_err(|e| format!("Invalid `files`: expected a JSON list of URIs, got '{text}': {e}"))?
        }
        Some(other) => {
            return Err(format!(
                "Invalid `files` properties with type '{}'",
                type_name(other)
            ))
        }
        None => return Err("Missing required property 'files'".into()),
    };
    Ok(IoCall::Storage(StorageCall::Concat {
        files,
        separator: p.rendered("separator")?,
        extension: p.extension(files::DEFAULT_EXTENSION)?,
    }))
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

pub(crate) fn prepare_split(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    let by = if let Some(pattern) = p.rendered("regexPattern")? {
        regex::Regex::new(&pattern).map_err(|e| format!("Invalid `regexPattern` '{pattern}': {e}"))?;
        SplitBy::Regex(pattern)
    } else if let Some(bytes) = p.rendered("bytes")? {
        SplitBy::Bytes(
            files::parse_bytes(&bytes).ok_or_else(|| format!("Invalid size with value '{bytes}'"))?,
        )
    } else if let Some(n) = p.count("partitions")? {
        if n > files::MAX_OPEN_FILES {
            return Err(format!(
                "Invalid `partitions` value '{n}': at most {}",
                files::MAX_OPEN_FILES
            ));
        }
        SplitBy::Partitions(n)
    } else if let Some(n) = p.count("rows")? {
        SplitBy::Rows(n)
    } else {
        return Err("Invalid configuration with no size, count, rows, nor regexPattern".into());
    };
    Ok(IoCall::Storage(StorageCall::Split {
        from: p.required("from")?,
        by,
        separator: p.rendered("separator")?.unwrap_or_else(|| "\n".into()),
    }))
}

fn prepare_size(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    Ok(IoCall::Storage(StorageCall::Size {
        uri: p.required("uri")?,
    }))
}

fn prepare_delete(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    Ok(IoCall::Storage(StorageCall::Delete {
        uri: p.required("uri")?,
        error_on_missing: p.flag("errorOnMissing", false)?,
    }))
}

fn prepare_purge_execution_files(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    // Child executions and state files have no files of their own in Kite.
    p.flag("includeChildExecutions", false)?;
    p.flag("includeStates", false)?;
    let variable = |name: &str| p.render_value(&Value::String(format!("{{{{ {name} }}}}")));
    Ok(IoCall::Storage(StorageCall::PurgeExecutionFiles {
        prefix: crate::input::execution_storage_prefix(
            &variable("flow.namespace")?,
            &variable("flow.id")?,
            &variable("execution.id")?,
        ),
    }))
}

fn prepare_reverse(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    if let Some(charset) = p.rendered("charset")? {
        let name = charset.trim().to_ascii_uppercase().replace('_', "-");
        if name != "UTF-8" && name != "UTF8" {
            return Err(format!(
                "Unsupported charset '{charset}': only UTF-8 is supported"
            ));
        }
    }
    Ok(IoCall::Storage(StorageCall::Reverse {
        from: p.required("from")?,
        separator: p.rendered("separator")?.unwrap_or_else(|| "\n".into()),
    }))
}

fn prepare_filter_items(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    let filter_type = match p.rendered("filterType")? {
        None => FilterType::Include,
        Some(name) => FilterType::parse(&name)
            .ok_or_else(|| format!("Invalid `filterType` '{name}': expected one of INCLUDE, EXCLUDE"))?,
    };
    let on_error_or_null = match p.rendered("errorOrNullBehavior")? {
        None => ErrorOrNullBehavior::Fail,
        Some(name) => ErrorOrNullBehavior::parse(&name).ok_or_else(|| {
            format!("Invalid `errorOrNullBehavior` '{name}': expected one of FAIL, INCLUDE, EXCLUDE")
        })?,
    };
    let condition = p.template("filterCondition")?;
    Ok(IoCall::Storage(StorageCall::FilterItems {
        from: p.required("from")?,
        condition,
        filter_type,
        on_error_or_null,
    }))
}

fn prepare_deduplicate_items(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    let expr = p.template("expr")?;
    Ok(IoCall::Storage(StorageCall::DeduplicateItems {
        from: p.required("from")?,
        expr,
    }))
}

fn finish(call: &IoCall, answer: IoAnswer, task_run: &TaskRunContext, now: DateTime<Utc>) -> TaskResult {
    let (IoCall::Storage(call), IoAnswer::Storage(answer)) = (call, answer) else {
        return task_run.failed("The worker answered another kind of call", now);
    };
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => return task_run.failed(e.to_string(), now),
    };
    let mut outputs = IndexMap::new();
    let mut line = None;
    match (call, answer) {
        (
            StorageCall::Write { .. } | StorageCall::Concat { .. } | StorageCall::Reverse { .. },
            StorageAnswer::Stored { uri },
        ) => {
            outputs.insert("uri".to_string(), Value::String(uri));
        }
        (StorageCall::Split { .. }, StorageAnswer::Split { uris }) => {
            line = Some(format!("Split into {} files", uris.len()));
            outputs.insert("uris".to_string(), json!(uris));
        }
        (StorageCall::PurgeExecutionFiles { .. }, StorageAnswer::Purged { uris }) => {
            line = Some(format!("{} files deleted", uris.len()));
            outputs.insert("uris".to_string(), json!(uris));
        }
        (StorageCall::Size { .. }, StorageAnswer::Size { size }) => {
            outputs.insert("size".to_string(), json!(size));
        }
        (StorageCall::Delete { error_on_missing, .. }, StorageAnswer::Deleted { uri, deleted }) => {
            if !deleted && *error_on_missing {
                return task_run.failed(format!("Unable to find file '{uri}'"), now);
            }
            outputs.insert("uri".to_string(), Value::String(uri));
            outputs.insert("deleted".to_string(), Value::Bool(deleted));
        }
        (
            StorageCall::FilterItems { .. } | StorageCall::DeduplicateItems { .. },
            StorageAnswer::Items {
                uri,
                processed,
                dropped,
                keys,
            },
        ) => {
            line = Some(format!("{processed} items processed, {dropped} dropped"));
            outputs.insert("uri".to_string(), Value::String(uri));
            if let Some(keys) = keys {
                outputs.insert("numKeys".to_string(), json!(keys));
            }
            outputs.insert("processedItemsTotal".to_string(), json!(processed));
            outputs.insert("droppedItemsTotal".to_string(), json!(dropped));
        }
        _ => return task_run.failed("The worker answered another kind of storage call", now),
    }
    let mut result = task_run.result(StateType::Success, outputs);
    if let Some(line) = line {
        result.logs.extend(task_run.log(LogLevel::Debug, line, now));
    }
    result
}
