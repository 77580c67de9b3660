//! Kestra's KV store tasks (`io.kestra.plugin.core.kv.*`): `Set`, `Get`, `GetKeys` and
//! `Delete`, with Kestra's properties, defaults, outputs and messages. The worker makes
//! the [`KvCall`] through the engine's KV store port; values are typed as in
//! [`crate::kv`].

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::props::Props;
use super::{Check, IoAnswer, IoCall, IoKind, IoTaskSpec, Property, Render, TaskRunContext};
use crate::execution::{StateType, TaskResult};
use crate::input::parse_iso_duration;
use crate::kv::{validate_key, KvType, KvValue};

/// A KV operation, rendered.
#[derive(Debug, Clone, PartialEq)]
pub enum KvCall {
    Set {
        namespace: String,
        key: String,
        value: KvValue,
        overwrite: bool,
        /// From the worker's clock: the pair is absent after it.
        ttl: Option<chrono::Duration>,
        description: Option<String>,
    },
    Get {
        namespace: String,
        key: String,
        error_on_missing: bool,
    },
    GetKeys {
        namespace: String,
        prefix: Option<String>,
    },
    Delete {
        namespace: String,
        key: String,
        error_on_missing: bool,
    },
}

/// What the store answered to a [`KvCall`] of the same variant.
#[derive(Debug, Clone, PartialEq)]
pub enum KvAnswer {
    Set,
    Value(Option<KvValue>),
    Keys(Vec<String>),
    Deleted(bool),
}

const SET: &[Property] = &[
    Property::new("key", Check::Required),
    Property::new("value", Check::Required),
    Property::new("namespace", Check::Any),
    Property::new("overwrite", Check::Any),
    Property::new("ttl", Check::Any),
    Property::new("kvType", Check::Any),
    Property::new("kvDescription", Check::Any),
];

const GET: &[Property] = &[
    Property::new("key", Check::Required),
    Property::new("namespace", Check::Any),
    Property::new("errorOnMissing", Check::Any),
];

const GET_KEYS: &[Property] = &[
    Property::new("prefix", Check::Any),
    Property::new("namespace", Check::Any),
];

const DELETE: &[Property] = GET;

pub const TASKS: &[IoTaskSpec] = &[
    IoTaskSpec::new(
        IoKind::KvSet,
        "io.kestra.plugin.core.kv.Set",
        SET,
        prepare_set,
        finish,
    ),
    IoTaskSpec::new(
        IoKind::KvGet,
        "io.kestra.plugin.core.kv.Get",
        GET,
        prepare_get,
        finish,
    ),
    IoTaskSpec::new(
        IoKind::KvGetKeys,
        "io.kestra.plugin.core.kv.GetKeys",
        GET_KEYS,
        prepare_get_keys,
        finish,
    ),
    IoTaskSpec::new(
        IoKind::KvDelete,
        "io.kestra.plugin.core.kv.Delete",
        DELETE,
        prepare_delete,
        finish,
    ),
];

impl Props<'_> {
    /// `key`, checked against Kestra's key rule.
    fn key(&self) -> Result<String, String> {
        let key = self.rendered("key")?.unwrap_or_default();
        validate_key(&key).map_err(|e| e.to_string())?;
        Ok(key)
    }
}

fn prepare_set(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    let kind = match p.rendered("kvType")? {
        None => None,
        Some(name) => Some(KvType::parse(&name).ok_or_else(|| format!("Invalid kvType '{name}'"))?),
    };
    let raw = properties.get("value").unwrap_or(&Value::Null);
    let value = match (raw, kind) {
        (Value::String(_), None) => KvValue::string(render(raw).map_err(|e| e.to_string())?),
        // A value written as YAML (a number, a map…) keeps its type, as in Kestra.
        (_, None) => KvValue::infer(raw.clone()),
        (_, Some(kind)) => {
            let text = render(raw).map_err(|e| e.to_string())?;
            KvValue::parse(kind, &text).map_err(|e| e.to_string())?
        }
    };
    let ttl = match p.rendered("ttl")? {
        None => None,
        Some(text) => Some(
            parse_iso_duration(&text)
                .filter(|d| *d > chrono::Duration::zero())
                .ok_or_else(|| format!("Invalid ttl '{text}': expected a positive ISO-8601 duration"))?,
        ),
    };
    Ok(IoCall::Kv(KvCall::Set {
        namespace: p.namespace()?,
        key: p.key()?,
        value,
        overwrite: p.flag("overwrite", true)?,
        ttl,
        description: p.rendered("kvDescription")?,
    }))
}

fn prepare_get(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    Ok(IoCall::Kv(KvCall::Get {
        namespace: p.namespace()?,
        key: p.key()?,
        error_on_missing: p.flag("errorOnMissing", false)?,
    }))
}

fn prepare_get_keys(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    Ok(IoCall::Kv(KvCall::GetKeys {
        namespace: p.namespace()?,
        prefix: p.rendered("prefix")?,
    }))
}

fn prepare_delete(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    Ok(IoCall::Kv(KvCall::Delete {
        namespace: p.namespace()?,
        key: p.key()?,
        error_on_missing: p.flag("errorOnMissing", false)?,
    }))
}

fn no_value(key: &str, namespace: &str) -> String {
    format!("No value found for key '{key}' in namespace '{namespace}' and `errorOnMissing` is set to true")
}

fn finish(call: &IoCall, answer: IoAnswer, task_run: &TaskRunContext, now: DateTime<Utc>) -> TaskResult {
    let (IoCall::Kv(call), IoAnswer::Kv(answer)) = (call, answer) else {
        return task_run.failed("The worker answered another kind of call", now);
    };
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => return task_run.failed(e.to_string(), now),
    };
    let mut outputs = IndexMap::new();
    match (call, answer) {
        (KvCall::Set { .. }, KvAnswer::Set) => {}
        (
            KvCall::Get {
                namespace,
                key,
                error_on_missing,
            },
            KvAnswer::Value(value),
        ) => match value {
            Some(value) => {
                outputs.insert("value".to_string(), value.value);
            }
            None if *error_on_missing => return task_run.failed(no_value(key, namespace), now),
            // Kestra's output is null, which its outputs leave out.
            None => {}
        },
        (KvCall::GetKeys { .. }, KvAnswer::Keys(keys)) => {
            outputs.insert("keys".to_string(), Value::from(keys));
        }
        (
            KvCall::Delete {
                namespace,
                key,
                error_on_missing,
            },
            KvAnswer::Deleted(deleted),
        ) => {
            if !deleted && *error_on_missing {
                return task_run.failed(no_value(key, namespace), now);
            }
            outputs.insert("deleted".to_string(), Value::Bool(deleted));
        }
        _ => return task_run.failed("The worker answered another kind of KV call", now),
    }
    task_run.result(StateType::Success, outputs)
}
