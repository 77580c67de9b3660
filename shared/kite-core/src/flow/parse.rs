//! Parsing and validating Kestra flow YAML into the [`Flow`] model: the entry
//! points, and the flow's own properties.
//!
//! Every error names the field path and, when the source has it, the line and
//! column, so a person can fix the flow without guessing. Positions are only
//! computed when a flow is refused: valid flows are parsed once.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::defaults;
use super::error::{describe, error, FlowError, FlowErrorKind};
use super::ids::{FLOW_ID, FLOW_ID_PATTERN, NAMESPACE, NAMESPACE_PATTERN};
use super::reader::{join_path, present, Parser};
use super::source::{locate, read_documents};
use super::{Concurrency, ConcurrencyBehavior, Flow, FlowLimits, PluginDefault};

/// Parses and validates one flow from its YAML source, then checks it against `limits`
/// (where flows are saved; a stored flow loads with [`parse_flow`] whatever its size).
pub fn parse_flow_within(source: &str, limits: &FlowLimits) -> Result<Flow, Vec<FlowError>> {
    let checked = |doc: &Value| {
        let flow = parse_document(doc)?;
        let errors = limits.check(&flow);
        if errors.is_empty() {
            Ok(flow)
        } else {
            Err(errors)
        }
    };
    parse_single(source, checked)
}

/// Parses and validates one flow from its YAML source.
pub fn parse_flow(source: &str) -> Result<Flow, Vec<FlowError>> {
    parse_single(source, parse_document)
}

fn parse_single(
    source: &str,
    parse: impl Fn(&Value) -> Result<Flow, Vec<FlowError>>,
) -> Result<Flow, Vec<FlowError>> {
    let docs = read_documents(source);
    if let Some(Err(e)) = docs.iter().map(|(_, d)| d).find(|d| d.is_err()) {
        return Err(vec![e.clone()]);
    }
    match docs.as_slice() {
        [(index, Ok(doc))] => parse(doc).map_err(|e| locate(e, source, *index)),
        [] => Err(vec![error(FlowErrorKind::Yaml, "", "The flow is empty")]),
        more => Err(vec![error(
            FlowErrorKind::Yaml,
            "",
            format!("Expected one flow but found {} YAML documents", more.len()),
        )]),
    }
}

/// Parses every document of a multi-document YAML source (`---` separated),
/// e.g. for the validate endpoint. Empty documents are skipped; a YAML syntax
/// error ends the list.
pub fn parse_flows(source: &str) -> Vec<Result<Flow, Vec<FlowError>>> {
    read_documents(source)
        .into_iter()
        .map(|(index, doc)| match doc {
            Ok(doc) => parse_document(&doc).map_err(|e| locate(e, source, index)),
            Err(e) => Err(vec![e]),
        })
        .collect()
}

/// Kestra's validation `infos`: one line per legacy type name the flow uses
/// (tasks and triggers), e.g. `io.kestra.core.tasks.log.Log is replaced by
/// io.kestra.plugin.core.log.Log`.
pub fn relocations(flow: &Flow) -> Vec<String> {
    let tasks = flow
        .all_tasks()
        .into_iter()
        .map(|t| (t.type_name.as_str(), t.task_type().name()));
    let triggers = flow
        .triggers
        .iter()
        .map(|t| (t.type_name.as_str(), t.trigger_type.name()));
    let mut out: Vec<String> = Vec::new();
    for (written, current) in tasks.chain(triggers) {
        let line = format!("{written} is replaced by {current}");
        if written != current && !out.contains(&line) {
            out.push(line);
        }
    }
    out
}

const FLOW_FIELDS: &[&str] = &[
    "id",
    "namespace",
    "revision",
    "description",
    "labels",
    "inputs",
    "variables",
    "tasks",
    "errors",
    "finally",
    "afterExecution",
    "outputs",
    "triggers",
    "disabled",
    "deleted",
    "retry",
    "timeout",
    "concurrency",
    "pluginDefaults",
    "taskDefaults",
    "listeners",
    "sla",
    "tenantId",
    "workerGroup",
];

fn parse_document(doc: &Value) -> Result<Flow, Vec<FlowError>> {
    let Value::Object(root) = doc else {
        return Err(vec![error(
            FlowErrorKind::Yaml,
            "",
            format!("A flow must be a map, not {}", describe(doc)),
        )]);
    };
    let mut p = Parser {
        errors: Vec::new(),
        defaults: defaults::Defaults::new(&[]),
        task_ids: HashSet::new(),
        flow_id: None,
        namespace: None,
    };
    p.check_fields(root, "", &[FLOW_FIELDS], "class io.kestra.core.models.flows.Flow");
    let id = p.string(root, "", "id", true);
    let namespace = p.string(root, "", "namespace", true);
    if let Some(id) = &id {
        if !FLOW_ID.is_match(id) || id.len() > 100 {
            p.err(
                FlowErrorKind::InvalidId,
                "id",
                format!("Invalid flow id `{id}`: it must match \"{FLOW_ID_PATTERN}\" and have at most 100 characters"),
            );
        }
    }
    if let Some(ns) = &namespace {
        if !NAMESPACE.is_match(ns) || ns.len() > 150 {
            p.err(
                FlowErrorKind::InvalidId,
                "namespace",
                format!("Invalid namespace `{ns}`: it must match \"{NAMESPACE_PATTERN}\" and have at most 150 characters"),
            );
        }
    }
    p.flow_id.clone_from(&id);
    p.namespace.clone_from(&namespace);
    // Plugin defaults first: they shape every task and trigger below.
    let declared_defaults = p.plugin_defaults(root);
    p.defaults = defaults::Defaults::new(&declared_defaults);

    let revision = match present(root, "revision") {
        None => None,
        Some(v) => match v.as_i64() {
            Some(r) => Some(r),
            None => {
                p.err(
                    FlowErrorKind::InvalidProperty,
                    "revision",
                    format!("`revision` must be an integer, not {}", describe(v)),
                );
                None
            }
        },
    };
    let description = p.string(root, "", "description", false);
    let labels = p.labels(root.get("labels"), "labels");
    // Kestra reserves `system.*` flow labels (except `system.readOnly`).
    for (key, value) in &labels {
        if key.starts_with("system.") && key != "system.readOnly" {
            let path = match root.get("labels") {
                Some(Value::Array(items)) => {
                    let i = items
                        .iter()
                        .position(|item| item.get("key").and_then(Value::as_str) == Some(key.as_str()));
                    format!("labels[{}]", i.unwrap_or_default())
                }
                _ => join_path("labels", key),
            };
            p.err(
                FlowErrorKind::InvalidProperty,
                &path,
                format!("System labels can only be set by Kestra itself, offending label: {key}={value}"),
            );
        }
    }
    let inputs = p.inputs(root.get("inputs"), "inputs");
    let variables = p.map_of(root, "", "variables");
    let tasks = p.tasks(root.get("tasks"), "tasks", true);
    let errors = p.tasks(root.get("errors"), "errors", false);
    let finally = p.tasks(root.get("finally"), "finally", false);
    let after_execution = p.tasks(root.get("afterExecution"), "afterExecution", false);
    let outputs = p.outputs(root.get("outputs"));
    let mut triggers = Vec::new();
    let mut trigger_ids = HashSet::new();
    for (i, v) in p
        .list(root.get("triggers"), "triggers", "triggers")
        .iter()
        .enumerate()
    {
        let path = format!("triggers[{i}]");
        if let Some(t) = p.trigger(v, &path) {
            if !trigger_ids.insert(t.id.clone()) {
                p.err(
                    FlowErrorKind::DuplicateTriggerId,
                    &format!("{path}.id"),
                    format!("Duplicate trigger id with name [{}]", t.id),
                );
            }
            triggers.push(t);
        }
    }
    let retry = present(root, "retry").and_then(|r| p.retry(r, "retry"));
    let concurrency = present(root, "concurrency").and_then(|c| p.concurrency(c));
    let disabled = p.boolean(root, "", "disabled", false);
    p.duration(root, "", "timeout");
    let timeout = p.string(root, "", "timeout", false);
    if !p.errors.is_empty() {
        return Err(p.errors);
    }
    Ok(Flow {
        id: id.unwrap_or_default(),
        namespace: namespace.unwrap_or_default(),
        revision,
        description,
        labels,
        inputs,
        variables,
        tasks,
        errors,
        finally,
        after_execution,
        outputs,
        triggers,
        task_index: Default::default(),
        disabled,
        retry,
        timeout,
        concurrency,
        plugin_defaults: declared_defaults,
    })
}

impl Parser {
    /// Reads `pluginDefaults` and the legacy `taskDefaults`, in that order.
    fn plugin_defaults(&mut self, root: &Map<String, Value>) -> Vec<PluginDefault> {
        let mut declared = Vec::new();
        for key in ["pluginDefaults", "taskDefaults"] {
            let items = self.list(root.get(key), key, "plugin defaults");
            for (i, item) in items.iter().enumerate() {
                let path = format!("{key}[{i}]");
                let Some(obj) = self.object(item, &path, "a plugin default") else {
                    continue;
                };
                self.check_fields(obj, &path, &[&["type", "forced", "values"]], "a plugin default");
                let type_name = self.string(obj, &path, "type", true);
                let forced = self.boolean(obj, &path, "forced", false);
                let values = self.map_of(obj, &path, "values");
                if let Some(type_name) = type_name {
                    declared.push(PluginDefault {
                        type_name,
                        forced,
                        values,
                    });
                }
            }
        }
        declared
    }

    fn concurrency(&mut self, value: &Value) -> Option<Concurrency> {
        let path = "concurrency";
        let obj = self.object(value, path, "`concurrency`")?;
        self.check_fields(obj, path, &[&["limit", "behavior"]], "`concurrency`");
        let limit = match self.unsigned(obj, path, "limit") {
            Some(0) | None => {
                self.err(
                    FlowErrorKind::InvalidProperty,
                    "concurrency.limit",
                    "`limit` is required and must be greater than 0",
                );
                0
            }
            Some(n) => n,
        };
        let behavior = match self.string(obj, path, "behavior", false).as_deref() {
            None | Some("QUEUE") => ConcurrencyBehavior::Queue,
            Some("CANCEL") => ConcurrencyBehavior::Cancel,
            Some("FAIL") => ConcurrencyBehavior::Fail,
            Some(other) => {
                self.err(
                    FlowErrorKind::InvalidProperty,
                    "concurrency.behavior",
                    format!("Unknown behavior `{other}`: use QUEUE, CANCEL or FAIL"),
                );
                ConcurrencyBehavior::Queue
            }
        };
        Some(Concurrency { limit, behavior })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_located_only_when_refused() {
        let errors = parse_flow("id: a\nnamespace: dev\ntasks:\n  - id: t\n    type: nope\n")
            .err()
            .unwrap_or_default();
        assert_eq!(errors.len(), 1);
        assert_eq!((errors[0].line, errors[0].column), (Some(5), Some(5)));
    }
}
