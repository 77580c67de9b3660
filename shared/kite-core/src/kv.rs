//! Kestra's KV store, the parts without I/O: typed values ([`KvType`], [`KvValue`]), key
//! rules, what `kv()` reads ([`KvSource`], given by the host) and the keys a flow's
//! source names literally ([`kv_references`]), which hosts fetch before a pass since
//! renders are synchronous.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::input::parse_iso_duration;

/// How Kestra types a KV value (`kvType`, and the `type` of the API's answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KvType {
    String,
    Number,
    Boolean,
    Datetime,
    Date,
    Duration,
    Json,
}

impl KvType {
    pub const ALL: [KvType; 7] = [
        KvType::String,
        KvType::Number,
        KvType::Boolean,
        KvType::Datetime,
        KvType::Date,
        KvType::Duration,
        KvType::Json,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            KvType::String => "STRING",
            KvType::Number => "NUMBER",
            KvType::Boolean => "BOOLEAN",
            KvType::Datetime => "DATETIME",
            KvType::Date => "DATE",
            KvType::Duration => "DURATION",
            KvType::Json => "JSON",
        }
    }

    /// `kvType`'s spelling, case-insensitive as Jackson reads enums in Kestra.
    pub fn parse(name: &str) -> Option<KvType> {
        KvType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(name.trim()))
    }
}

/// A typed value: `value` is its JSON form (DATETIME as RFC 3339 in UTC, DATE as
/// `yyyy-MM-dd`, DURATION as ISO-8601, what expressions and the API show).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KvValue {
    #[serde(rename = "type")]
    pub kind: KvType,
    pub value: Value,
}

/// Why a KV operation or `kv()` failed, in Kestra's words where Kestra has some.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    #[error("Key cannot be null or empty")]
    EmptyKey,
    #[error(
        "Key must start with an alphanumeric character (uppercase or lowercase) and can contain \
         alphanumeric characters (uppercase or lowercase), dots (.), underscores (_), and hyphens (-) only."
    )]
    InvalidKey(String),
    /// A value that does not parse as its `kvType`.
    #[error("Unable to parse '{value}' as {}: {reason}", kind.as_str())]
    InvalidValue {
        kind: KvType,
        value: String,
        reason: String,
    },
    /// `kv()` of a missing key with `errorOnMissing` (the default).
    #[error("The key '{key}' does not exist in the namespace '{namespace}'.")]
    Missing { key: String, namespace: String },
    #[error("Cannot set value for key '{0}'. Key already exists and `overwrite` is set to `false`.")]
    AlreadyExists(String),
    /// The store could not answer (network, a key it cannot look up now).
    #[error("Unable to read the KV pair '{key}' of namespace '{namespace}': {reason}")]
    Unavailable {
        namespace: String,
        key: String,
        reason: String,
    },
}

/// Kestra's key rule: `[a-zA-Z0-9][a-zA-Z0-9._-]*`.
pub fn validate_key(key: &str) -> Result<(), KvError> {
    let mut chars = key.chars();
    match chars.next() {
        None => Err(KvError::EmptyKey),
        Some(first)
            if first.is_ascii_alphanumeric()
                && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) =>
        {
            Ok(())
        }
        Some(_) => Err(KvError::InvalidKey(key.to_string())),
    }
}

impl KvValue {
    pub fn new(kind: KvType, value: Value) -> KvValue {
        KvValue { kind, value }
    }

    pub fn string(text: impl Into<String>) -> KvValue {
        KvValue::new(KvType::String, Value::String(text.into()))
    }

    /// `text` read as `kind`, as `Set` reads a rendered value with a `kvType`.
    pub fn parse(kind: KvType, text: &str) -> Result<KvValue, KvError> {
        let invalid = |reason: &str| KvError::InvalidValue {
            kind,
            value: text.to_string(),
            reason: reason.to_string(),
        };
        let value = match kind {
            KvType::String => Value::String(text.to_string()),
            KvType::Number => match serde_json::from_str::<Value>(text.trim()) {
                Ok(n @ Value::Number(_)) => n,
                _ => return Err(invalid("not a number")),
            },
            // Java's Boolean.parseBoolean: anything but "true" is false.
            KvType::Boolean => Value::Bool(text.trim().eq_ignore_ascii_case("true")),
            KvType::Datetime => {
                Value::String(datetime(text).ok_or_else(|| invalid("not an ISO-8601 instant"))?)
            }
            KvType::Date => Value::String(date(text).ok_or_else(|| invalid("not an ISO-8601 date"))?),
            KvType::Duration => {
                parse_iso_duration(text).ok_or_else(|| invalid("not an ISO-8601 duration"))?;
                Value::String(text.trim().to_string())
            }
            KvType::Json => serde_json::from_str(text).map_err(|e| invalid(&e.to_string()))?,
        };
        Ok(KvValue::new(kind, value))
    }

    /// A value typed by its JSON shape, as Kestra's `KVType.from` does: strings that
    /// read as ISO-8601 durations are DURATION (Kestra turns them back into durations).
    pub fn infer(value: Value) -> KvValue {
        let kind = match &value {
            Value::String(s) if parse_iso_duration(s).is_some() && s.trim_start().starts_with(['P', 'p']) => {
                KvType::Duration
            }
            Value::String(_) => KvType::String,
            Value::Number(_) => KvType::Number,
            Value::Bool(_) => KvType::Boolean,
            Value::Null | Value::Array(_) | Value::Object(_) => KvType::Json,
        };
        KvValue::new(kind, value)
    }

    /// The API's request body: JSON, else Ion's bare words Kestra also reads (an
    /// unquoted instant or date is typed as one, anything else is a string).
    pub fn from_body(text: &str) -> KvValue {
        if let Ok(value) = serde_json::from_str::<Value>(text) {
            return KvValue::infer(value);
        }
        let bare = text.trim();
        if let Some(at) = DateTime::parse_from_rfc3339(bare).ok().map(|_| bare) {
            if let Some(value) = datetime(at) {
                return KvValue::new(KvType::Datetime, Value::String(value));
            }
        }
        if let Some(value) = date(bare).filter(|_| bare.len() == 10) {
            return KvValue::new(KvType::Date, Value::String(value));
        }
        KvValue::string(bare)
    }
}

fn datetime(text: &str) -> Option<String> {
    let at = DateTime::parse_from_rfc3339(text.trim()).ok()?;
    Some(
        at.with_timezone(&Utc)
            .to_rfc3339_opts(SecondsFormat::AutoSi, true),
    )
}

/// A date, or the date of an instant (Kestra parses DATE values as instants).
fn date(text: &str) -> Option<String> {
    let text = text.trim();
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().or_else(|| {
        Some(
            DateTime::parse_from_rfc3339(text)
                .ok()?
                .with_timezone(&Utc)
                .date_naive(),
        )
    })?;
    Some(day.format("%Y-%m-%d").to_string())
}

/// What `kv()` reads; the host implements it.
pub trait KvSource: Send + Sync {
    /// The value of `key` in `namespace`, `None` if absent or expired.
    fn kv(&self, namespace: &str, key: &str) -> Result<Option<KvValue>, KvError>;
}

/// The namespaces `kv('key')` without a namespace looks in, nearest first: the flow's,
/// then its parents (Kestra's inheritance).
pub fn inherited_namespaces(namespace: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(namespace);
    std::iter::from_fn(move || {
        let current = next?;
        next = current.rfind('.').map(|dot| &current[..dot]);
        Some(current)
    })
}

/// A `kv()` call a flow's source spells out: its key, and its namespace if it names one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvReference {
    pub key: String,
    pub namespace: Option<String>,
}

/// The `kv()` calls whose key (and namespace, if given) are literals (`kv('A')`,
/// `kv("B", 'team')`, `kv(key='C', namespace='x')`): a host that must fetch values
/// before a pass fetches these. A computed key or namespace is not found.
pub fn kv_references(source: &str) -> Vec<KvReference> {
    let mut found: Vec<KvReference> = Vec::new();
    let bytes = source.as_bytes();
    let mut from = 0;
    while let Some(at) = source[from..].find("kv") {
        let start = from + at;
        from = start + 2;
        let before = start.checked_sub(1).map(|i| bytes[i]);
        if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.') {
            continue;
        }
        let Some(rest) = source[from..].trim_start().strip_prefix('(') else {
            continue;
        };
        let Some((key, rest)) = literal_arg(rest, "key") else {
            continue;
        };
        let rest = rest.trim_start();
        let namespace = if rest.starts_with(')') {
            None
        } else if let Some(after) = rest.strip_prefix(',') {
            match literal_arg(after, "namespace") {
                Some((ns, tail)) if tail.trim_start().starts_with([')', ',']) => Some(ns),
                // `kv('k', null, false)`, `kv('k', errorOnMissing=false)`: no namespace.
                _ if after.trim_start().starts_with("null")
                    || after.trim_start().starts_with("errorOnMissing") =>
                {
                    None
                }
                _ => continue,
            }
        } else {
            continue;
        };
        let reference = KvReference { key, namespace };
        if !found.contains(&reference) {
            found.push(reference);
        }
    }
    found
}

/// A quoted literal argument (optionally `name=`), and what follows it.
fn literal_arg<'s>(text: &'s str, name: &str) -> Option<(String, &'s str)> {
    let mut rest = text.trim_start();
    if let Some(after) = rest.strip_prefix(name) {
        if let Some(after) = after.trim_start().strip_prefix('=') {
            rest = after.trim_start();
        }
    }
    let quote = rest.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let end = rest[1..].find(quote)?;
    let value = &rest[1..1 + end];
    let tail = &rest[2 + end..];
    // `kv('A_' ~ x)` computes its key: only whole literals count.
    let whole = tail.trim_start().starts_with([')', ',']);
    (whole && !value.is_empty() && !value.contains('{')).then(|| (value.to_string(), tail))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_follow_kestra_rule() {
        assert_eq!(validate_key("my_key-1.a"), Ok(()));
        assert_eq!(validate_key(""), Err(KvError::EmptyKey));
        assert!(matches!(validate_key("_x"), Err(KvError::InvalidKey(_))));
        assert!(matches!(validate_key("a/b"), Err(KvError::InvalidKey(_))));
    }

    #[test]
    fn values_are_typed_as_kestra_types_them() {
        assert_eq!(KvValue::parse(KvType::Number, "42").unwrap().value, json!(42));
        assert!(KvValue::parse(KvType::Number, "x").is_err());
        assert_eq!(
            KvValue::parse(KvType::Boolean, "TRUE").unwrap().value,
            json!(true)
        );
        assert_eq!(
            KvValue::parse(KvType::Boolean, "yes").unwrap().value,
            json!(false)
        );
        assert_eq!(
            KvValue::parse(KvType::Datetime, "2024-01-02T03:04:05+01:00")
                .unwrap()
                .value,
            json!("2024-01-02T02:04:05Z")
        );
        assert_eq!(
            KvValue::parse(KvType::Date, "2024-01-02").unwrap().value,
            json!("2024-01-02")
        );
        assert_eq!(
            KvValue::parse(KvType::Duration, "PT1H").unwrap().value,
            json!("PT1H")
        );
        assert_eq!(
            KvValue::parse(KvType::Json, r#"{"a":[1]}"#).unwrap().value,
            json!({"a": [1]})
        );
        assert_eq!(KvValue::infer(json!("PT5M")).kind, KvType::Duration);
        assert_eq!(KvValue::infer(json!("hello")).kind, KvType::String);
        assert_eq!(KvValue::from_body("hello"), KvValue::string("hello"));
        assert_eq!(KvValue::from_body("2024-05-01").kind, KvType::Date);
        assert_eq!(KvValue::from_body("[1,2]").kind, KvType::Json);
        assert_eq!(KvType::parse("json"), Some(KvType::Json));
    }

    #[test]
    fn literal_references_are_found() {
        let source = r#"
message: "{{ kv('A') }} {{ kv( "B", 'team.x' ) }} {{ kv(key='C', namespace='n') }} {{kv('A')}}"
other: "{{ kv('P_' ~ x) }} {{ mykv('X') }} {{ kv('D', inputs.ns) }} {{ kv('E', null, false) }} {{ kv('F', errorOnMissing=false) }}"
"#;
        let refs: Vec<(String, Option<String>)> = kv_references(source)
            .into_iter()
            .map(|r| (r.key, r.namespace))
            .collect();
        let own = |k: &str| (k.to_string(), None);
        let other = |k: &str, n: &str| (k.to_string(), Some(n.to_string()));
        assert_eq!(
            refs,
            vec![
                own("A"),
                other("B", "team.x"),
                other("C", "n"),
                own("E"),
                own("F")
            ]
        );
    }

    #[test]
    fn namespaces_are_inherited_nearest_first() {
        let all: Vec<&str> = inherited_namespaces("company.team.a").collect();
        assert_eq!(all, vec!["company.team.a", "company.team", "company"]);
    }
}
