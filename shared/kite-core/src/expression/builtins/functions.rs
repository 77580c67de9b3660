//! Kestra's Pebble functions (`now`, `read`, `render`, `secret`, `kv`, `errorLogs`,
//! `uuid`, `range`, …); those that need the render context reach it through
//! [`with_current`], set for the duration of one render.

use super::*;

pub(super) fn register(tera: &mut Tera) {
    // tera ships `get_env`; expressions must never see the process environment.
    tera.register_function("get_env", |_: &Args| -> Result<Value> {
        Err(Error::msg("get_env is not available in Kestra expressions"))
    });
    tera.register_function("now", |args: &Args| {
        let now = with_current(|c| c.ctx.now)?;
        dates::format_date(
            now.fixed_offset(),
            arg_str(args, "format"),
            arg_str(args, "timeZone"),
        )
        .map(Value::String)
        .map_err(Error::msg)
    });
    for name in ["json", "fromJson"] {
        tera.register_function(name, |args: &Args| match args.get("json") {
            Some(Value::String(s)) => {
                serde_json::from_str(s).map_err(|e| Error::msg(format!("Invalid JSON: {e}")))
            }
            Some(other) => Ok(other.clone()),
            None => Ok(Value::Null),
        });
    }
    for name in ["yaml", "fromYaml"] {
        tera.register_function(name, |args: &Args| match args.get("yaml") {
            Some(Value::String(s)) => {
                serde_yaml::from_str(s).map_err(|e| Error::msg(format!("Invalid YAML: {e}")))
            }
            Some(other) => Ok(other.clone()),
            None => Ok(Value::Null),
        });
    }
    tera.register_function("render", |args: &Args| {
        let recursive = args.get("recursive").and_then(Value::as_bool).unwrap_or(true);
        render_value(args.get("toRender"), recursive)
    });
    tera.register_function("renderOnce", |args: &Args| {
        render_value(args.get("toRender"), false)
    });
    tera.register_function("read", |args: &Args| {
        let path = args
            .get("path")
            .map(text)
            .ok_or_else(|| Error::msg("read needs a path"))?;
        read::read(&path, arg_str(args, "namespace"))
    });
    tera.register_function("secret", |args: &Args| {
        let key = match args.get("key") {
            Some(Value::String(k)) => k.clone(),
            Some(other) if !other.is_null() => text(other),
            _ => return Err(Error::msg("The 'secret' function expects an argument 'key'.")),
        };
        // `namespace` is accepted for Kestra's syntax: secrets here are not per namespace.
        let subkey = arg_str(args, "subkey").filter(|s| !s.is_empty());
        with_current(|c| {
            let secrets = c
                .ctx
                .secrets
                .ok_or_else(|| Error::msg(format!("Cannot find secret for key '{key}'.")))?;
            let value = secrets.get(&key).map_err(|e| Error::msg(e.to_string()))?;
            let Some(subkey) = subkey else {
                return Ok(Value::String(value));
            };
            let parsed: Value = serde_json::from_str(&value).map_err(|_| {
                Error::msg(format!(
                    "Failed to read secret sub-key '{subkey}' from secret '{key}'. \
                     Ensure the secret contains valid JSON value."
                ))
            })?;
            let field = parsed.get(subkey).ok_or_else(|| {
                Error::msg(format!(
                    "Cannot find secret sub-key '{subkey}' in secret '{key}'."
                ))
            })?;
            let field = text(field);
            secrets.reveal(&field);
            Ok(Value::String(field))
        })?
    });
    tera.register_function("kv", |args: &Args| {
        let key = match args.get("key") {
            Some(Value::String(k)) => k.clone(),
            Some(other) if !other.is_null() => text(other),
            _ => return Err(Error::msg("The 'kv' function expects an argument 'key'.")),
        };
        let namespace = arg_str(args, "namespace").map(str::to_string);
        let error_on_missing = args
            .get("errorOnMissing")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        with_current(|c| {
            let flow_namespace = c
                .ctx
                .variables
                .pointer("/flow/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let lookup = |ns: &str| c.ctx.kv.map_or(Ok(None), |kv| kv.kv(ns, &key));
            // Without a namespace, Kestra looks in the flow's, then in its parents'.
            let (namespace, found) = match &namespace {
                Some(ns) => (ns.as_str(), lookup(ns)),
                None => {
                    let mut found = Ok(None);
                    for ns in crate::kv::inherited_namespaces(flow_namespace) {
                        found = lookup(ns);
                        if !matches!(found, Ok(None)) {
                            break;
                        }
                    }
                    (flow_namespace, found)
                }
            };
            match found.map_err(|e| Error::msg(e.to_string()))? {
                Some(value) => Ok(value.value),
                None if error_on_missing => Err(Error::msg(
                    crate::kv::KvError::Missing {
                        key: key.clone(),
                        namespace: namespace.to_string(),
                    }
                    .to_string(),
                )),
                None => Ok(Value::Null),
            }
        })?
    });
    tera.register_function("fileURI", |args: &Args| {
        Ok(args.get("path").cloned().unwrap_or(Value::Null))
    });
    tera.register_function("errorLogs", |_: &Args| {
        with_current(|c| Value::Array(c.ctx.error_logs.to_vec()))
    });
    tera.register_function("currentEachOutput", |args: &Args| {
        let outputs = args.get("outputs").cloned().unwrap_or(Value::Null);
        with_current(|c| current_each_output(outputs, c.ctx.variables))
    });
    tera.register_function("uuid", |_: &Args| {
        let (a, b) = (random_u64(), random_u64());
        let s = format!("{a:016x}{b:016x}");
        Ok(Value::String(format!(
            "{}-{}-4{}-a{}-{}",
            &s[0..8],
            &s[8..12],
            &s[13..16],
            &s[17..20],
            &s[20..32]
        )))
    });
    tera.register_function("id", |_: &Args| {
        let n = (u128::from(random_u64()) << 64) | u128::from(random_u64());
        Ok(Value::String(crate::id::friendly_id(n)))
    });
    tera.register_function("randomInt", |args: &Args| {
        let lower = arg_i64(args, "lower")?.unwrap_or(0);
        let upper = arg_i64(args, "upper")?.unwrap_or(i64::MAX);
        if upper <= lower {
            return Err(Error::msg("randomInt needs lower < upper"));
        }
        // In i128: the span of two i64 always fits a u64.
        let span = (i128::from(upper) - i128::from(lower)) as u64;
        let picked = i128::from(lower) + i128::from(random_u64() % span);
        Ok(Value::from(picked as i64))
    });
    tera.register_function("printContext", |_: &Args| {
        with_current(|c| Value::String(text(c.ctx.variables)))
    });
    tera.register_function("fetchContext", |_: &Args| {
        with_current(|c| c.ctx.variables.clone())
    });
    tera.register_function("range", |args: &Args| {
        // Pebble's range is inclusive of its end.
        let start = arg_i64(args, "start")?.unwrap_or(0);
        let end = arg_i64(args, "end")?.unwrap_or(0);
        let step = arg_i64(args, "step")?.unwrap_or(1);
        // In i128: the bounds of i64 must neither overflow nor wrap past the check.
        let (start, end, step) = (i128::from(start), i128::from(end), i128::from(step));
        if step == 0 || (end - start) / step > 100_000 {
            return Err(Error::msg("range is too large"));
        }
        let mut out = Vec::new();
        let mut i = start;
        while (step > 0 && i <= end) || (step < 0 && i >= end) {
            out.push(Value::from(i as i64));
            i += step;
        }
        Ok(Value::Array(out))
    });
}

fn render_value(value: Option<&Value>, recursive: bool) -> Result<Value> {
    let Some(value) = value else {
        return Ok(Value::Null);
    };
    let Value::String(s) = value else {
        return Ok(value.clone());
    };
    with_current(|c| {
        let mut current = s.clone();
        // Bounded: a template that renders to itself must not loop forever.
        for _ in 0..if recursive { 16 } else { 1 } {
            if !current.contains('{') {
                break;
            }
            let next = c
                .engine
                .render(&current, c.ctx)
                .map_err(|e| Error::msg(e.message))?;
            if next == current {
                break;
            }
            current = next;
        }
        Ok(Value::String(current))
    })?
}

/// Picks the branch of an iterated task's outputs that belongs to the current
/// iteration: outermost parent value first, then the current `taskrun.value`.
fn current_each_output(outputs: Value, variables: &Value) -> Value {
    let mut keys = Vec::new();
    if let Some(parents) = variables.get("parents").and_then(Value::as_array) {
        for p in parents.iter().rev() {
            if let Some(v) = p.pointer("/taskrun/value").and_then(Value::as_str) {
                keys.push(v.to_string());
            }
        }
    }
    if let Some(v) = variables.pointer("/taskrun/value").and_then(Value::as_str) {
        keys.push(v.to_string());
    }
    let mut current = outputs;
    for k in keys {
        match current {
            Value::Object(mut m) if m.contains_key(&k) => current = m.remove(&k).unwrap_or(Value::Null),
            other => {
                current = other;
            }
        }
    }
    current
}
