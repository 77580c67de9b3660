//! `pluginDefaults` (legacy `taskDefaults`), applied at parse time the way
//! Kestra's `PluginDefaultService` does: a default matches a plugin whose type
//! equals or starts with the default's type; non-forced values fill what the
//! flow leaves out, forced ones win; maps merge deeply and lists are joined.

use serde_json::{Map, Value};

use super::{PluginDefault, TaskType, TriggerType};

fn current_name(type_name: &str) -> Option<&'static str> {
    TaskType::from_name(type_name)
        .map(TaskType::name)
        .or_else(|| TriggerType::from_name(type_name).map(TriggerType::name))
}

/// The declared defaults, plus a copy under the current name of each one
/// written with a legacy type name (Kestra registers both).
pub(super) fn with_aliases(declared: &[PluginDefault]) -> Vec<PluginDefault> {
    let mut entries = declared.to_vec();
    for d in declared {
        if let Some(current) = current_name(&d.type_name) {
            if current != d.type_name {
                entries.push(PluginDefault {
                    type_name: current.to_string(),
                    ..d.clone()
                });
            }
        }
    }
    entries
}

/// The flow's defaults (with aliases), ready to apply.
pub(super) struct Defaults {
    entries: Vec<PluginDefault>,
}

impl Defaults {
    pub(super) fn new(declared: &[PluginDefault]) -> Defaults {
        Defaults {
            entries: with_aliases(declared),
        }
    }

    /// The plugin `obj` (of type `type_name`) with the matching defaults
    /// merged in, or `None` when no default applies.
    pub(super) fn apply(&self, obj: &Map<String, Value>, type_name: &str) -> Option<Map<String, Value>> {
        let applies = self.entries.iter().any(|d| {
            !d.type_name.is_empty() && (type_name == d.type_name || type_name.starts_with(&d.type_name))
        });
        if !applies {
            return None;
        }
        let mut out = obj.clone();
        out.insert("type".into(), Value::String(type_name.to_string()));
        apply_to_node(&mut out, &self.entries);
        if !obj.contains_key("type") {
            out.remove("type");
        }
        Some(out)
    }

    /// See [`apply_deep`].
    pub(super) fn apply_deep(&self, value: &Value) -> Value {
        apply_deep(value, &self.entries)
    }
}

/// Merges the defaults matching the node's own `type` into it.
pub(super) fn apply_to_node(node: &mut Map<String, Value>, defaults: &[PluginDefault]) {
    let Some(type_name) = node.get("type").and_then(Value::as_str).map(str::to_string) else {
        return;
    };
    let matches = |d: &&PluginDefault| {
        !d.type_name.is_empty() && (type_name == d.type_name || type_name.starts_with(&d.type_name))
    };
    // The first declared default wins: non-forced ones only fill gaps, so
    // they go in declared order; forced ones overwrite, so in reverse.
    let (forced, non_forced): (Vec<&PluginDefault>, Vec<&PluginDefault>) =
        defaults.iter().filter(matches).partition(|d| d.forced);
    for d in non_forced {
        merge_map(node, d.values.iter(), false);
    }
    for d in forced.into_iter().rev() {
        merge_map(node, d.values.iter(), true);
    }
}

/// Applies defaults to every plugin map (a map with a `type`) inside
/// `value`, children first, e.g. a trigger and its conditions.
pub(super) fn apply_deep(value: &Value, defaults: &[PluginDefault]) -> Value {
    match value {
        Value::Object(m) => {
            let mut inner: Map<String, Value> = m
                .iter()
                .map(|(k, v)| (k.clone(), apply_deep(v, defaults)))
                .collect();
            apply_to_node(&mut inner, defaults);
            Value::Object(inner)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| apply_deep(v, defaults)).collect()),
        other => other.clone(),
    }
}

/// Merges default `values` into `target` (the plugin as written, whose key
/// order is kept).
fn merge_map<'a>(
    target: &mut Map<String, Value>,
    values: impl Iterator<Item = (&'a String, &'a Value)>,
    forced: bool,
) {
    for (key, default) in values {
        match target.get_mut(key) {
            None => {
                target.insert(key.clone(), default.clone());
            }
            Some(written) => *written = combine(written, default, forced),
        }
    }
}

/// Kestra's `MapUtils.deepMerge(a, b)`, with `b` the winner: a null side
/// yields the other, maps merge, lists keep `a` then the items of `b` not in
/// `a`, otherwise `b`.
fn combine(written: &Value, default: &Value, forced: bool) -> Value {
    let (a, b) = if forced {
        (written, default)
    } else {
        (default, written)
    };
    match (a, b) {
        (_, Value::Null) => a.clone(),
        (Value::Null, _) => b.clone(),
        (Value::Object(_), Value::Object(_)) => {
            // Keep the written map's key order.
            let (Value::Object(w), Value::Object(d)) = (written, default) else {
                return b.clone();
            };
            let mut out = w.clone();
            merge_map(&mut out, d.iter(), forced);
            Value::Object(out)
        }
        (Value::Array(first), Value::Array(second)) => {
            let mut out = first.clone();
            out.extend(second.iter().filter(|v| !first.contains(v)).cloned());
            Value::Array(out)
        }
        _ => b.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn default(type_name: &str, forced: bool, values: Value) -> PluginDefault {
        PluginDefault {
            type_name: type_name.into(),
            forced,
            values: values
                .as_object()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        }
    }

    fn node(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn non_forced_fills_and_forced_overrides() {
        let d = with_aliases(&[
            default(
                "io.kestra.plugin.core.log",
                false,
                json!({"level": "WARN", "message": "d"}),
            ),
            default("io.kestra.plugin.core.log.Log", true, json!({"level": "ERROR"})),
            default("io.kestra.plugin.core.log.Log", true, json!({"level": "DEBUG"})),
        ]);
        let mut n = node(json!({"id": "a", "type": "io.kestra.plugin.core.log.Log", "level": "INFO"}));
        apply_to_node(&mut n, &d);
        assert_eq!(n["level"], "ERROR");
        assert_eq!(n["message"], "d");
        let mut other = node(json!({"type": "io.kestra.plugin.core.debug.Return"}));
        apply_to_node(&mut other, &d);
        assert_eq!(other.len(), 1);
    }

    #[test]
    fn first_non_forced_default_wins() {
        let d = [
            default(
                "io.kestra.plugin.core.log.Log",
                false,
                json!({"message": "first"}),
            ),
            default("io.kestra.plugin.core", false, json!({"message": "second"})),
        ];
        let mut n = node(json!({"type": "io.kestra.plugin.core.log.Log"}));
        apply_to_node(&mut n, &d);
        assert_eq!(n["message"], "first");
    }

    #[test]
    fn maps_merge_and_lists_join() {
        let d = [default(
            "io.kestra.plugin.core.http.Request",
            false,
            json!({"headers": {"a": "1", "b": "2"}, "x": [1, 2]}),
        )];
        let mut n =
            node(json!({"type": "io.kestra.plugin.core.http.Request", "headers": {"b": "3"}, "x": [2, 3]}));
        apply_to_node(&mut n, &d);
        assert_eq!(n["headers"], json!({"b": "3", "a": "1"}));
        assert_eq!(n["x"], json!([1, 2, 3]));
    }

    #[test]
    fn legacy_default_types_also_match_current_names() {
        let d = with_aliases(&[default(
            "io.kestra.core.tasks.log.Log",
            false,
            json!({"message": "m"}),
        )]);
        let mut n = node(json!({"type": "io.kestra.plugin.core.log.Log"}));
        apply_to_node(&mut n, &d);
        assert_eq!(n["message"], "m");
    }

    #[test]
    fn deep_application_reaches_conditions() {
        let d = [default(
            "io.kestra.plugin.core.condition",
            false,
            json!({"namespace": "ns"}),
        )];
        let trigger = json!({"type": "io.kestra.plugin.core.trigger.Flow",
            "conditions": [{"type": "io.kestra.plugin.core.condition.ExecutionNamespace"}]});
        let out = apply_deep(&trigger, &d);
        assert_eq!(out["conditions"][0]["namespace"], "ns");
        assert!(out.get("namespace").is_none());
    }
}
