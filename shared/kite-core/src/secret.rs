//! Kestra's `secret('NAME')`: values the host gives the core, and their masking.
//!
//! The core reads no environment: a host hands it a [`SecretSource`] (Kestra OSS's
//! `SECRET_<NAME>` variables through [`EnvironmentSecrets`], or a secret store) wrapped
//! in [`Secrets`], which remembers every value a render revealed so that log lines can
//! mask them as Kestra does ([`MASKED`]).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;

/// What a secret value shows as in log lines, and a SECRET input in the API (Kestra's mask).
pub const MASKED: &str = "******";

/// Why a secret has no value, in Kestra's words where Kestra has some.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("Cannot find secret for key '{0}'.")]
    NotFound(String),
    /// A `SECRET_<NAME>` variable that is not base64 (Kestra logs it at startup and
    /// skips it; naming it when it is used says more than "cannot find").
    #[error("Could not decode secret '{key}', make sure it is Base64-encoded: {reason}")]
    NotBase64 { key: String, reason: String },
    /// The store could not answer (network, permissions, a name it cannot look up now).
    #[error("Unable to read secret '{key}': {reason}")]
    Unavailable { key: String, reason: String },
}

/// Where secret values come from; the host implements it.
pub trait SecretSource: Send + Sync {
    /// The value of the secret `key`.
    fn secret(&self, key: &str) -> Result<String, SecretError>;
}

/// No secrets at all: every lookup fails with Kestra's "cannot find".
pub struct NoSecrets;

impl SecretSource for NoSecrets {
    fn secret(&self, key: &str) -> Result<String, SecretError> {
        Err(SecretError::NotFound(key.to_string()))
    }
}

/// Kestra OSS's secrets: environment variables `SECRET_<NAME>` holding the value
/// base64-encoded, looked up by the upper-cased name. The host passes the variables
/// (the core reads no environment), once, as Kestra reads them once at startup.
#[derive(Debug, Clone, Default)]
pub struct EnvironmentSecrets {
    decoded: HashMap<String, Result<String, SecretError>>,
}

impl EnvironmentSecrets {
    /// The prefix of the variables that hold secrets.
    pub const PREFIX: &'static str = "SECRET_";

    /// Keeps the `SECRET_*` variables of `vars`, decoded; others are ignored.
    pub fn from_vars<K: AsRef<str>, V: AsRef<str>>(vars: impl IntoIterator<Item = (K, V)>) -> Self {
        let mut decoded = HashMap::new();
        for (name, value) in vars {
            let Some(key) = name.as_ref().strip_prefix(Self::PREFIX) else {
                continue;
            };
            decoded.insert(key.to_uppercase(), decode(name.as_ref(), value.as_ref()));
        }
        EnvironmentSecrets { decoded }
    }
}

/// A base64 value as Kestra reads it: line breaks (`base64` wraps at 76) are ignored.
fn decode(variable: &str, value: &str) -> Result<String, SecretError> {
    let compact: String = value.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    let invalid = |reason: String| SecretError::NotBase64 {
        key: variable.to_string(),
        reason,
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.trim())
        .map_err(|e| invalid(e.to_string()))?;
    String::from_utf8(bytes).map_err(|_| invalid("the decoded value is not UTF-8 text".into()))
}

impl SecretSource for EnvironmentSecrets {
    fn secret(&self, key: &str) -> Result<String, SecretError> {
        self.decoded
            .get(&key.to_uppercase())
            .cloned()
            .unwrap_or_else(|| Err(SecretError::NotFound(key.to_string())))
    }
}

/// The secrets renders may read, and the values they revealed (masked in log lines).
/// A host makes one per pass over an execution.
pub struct Secrets {
    source: Arc<dyn SecretSource>,
    revealed: Mutex<Vec<String>>,
}

impl Secrets {
    pub fn new(source: Arc<dyn SecretSource>) -> Secrets {
        Secrets {
            source,
            revealed: Mutex::new(Vec::new()),
        }
    }

    /// Looks up `names` now so that their values are masked from the start of the pass,
    /// also in lines written before a render reveals them (a worker's error message).
    pub fn preload<S: AsRef<str>>(self, names: &[S]) -> Secrets {
        for name in names {
            let _ = self.get(name.as_ref());
        }
        self
    }

    /// The value of `key`, remembered for masking.
    pub fn get(&self, key: &str) -> Result<String, SecretError> {
        let value = self.source.secret(key)?;
        self.reveal(&value);
        Ok(value)
    }

    /// Remembers a value derived from a secret (a sub-key of a JSON secret).
    pub fn reveal(&self, value: &str) {
        if value.is_empty() {
            return;
        }
        let mut revealed = self.revealed.lock().unwrap_or_else(|e| e.into_inner());
        if !revealed.iter().any(|v| v == value) {
            revealed.push(value.to_string());
            // Longest first: a secret that contains another is masked whole.
            revealed.sort_by_key(|v| std::cmp::Reverse(v.len()));
        }
    }

    /// `text` with every revealed value replaced by [`MASKED`].
    pub fn mask<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let revealed = self.revealed.lock().unwrap_or_else(|e| e.into_inner());
        mask(text, &revealed)
    }
}

/// `text` with every one of `values` replaced by [`MASKED`] (longer values first).
pub fn mask<'t, S: AsRef<str>>(text: &'t str, values: &[S]) -> Cow<'t, str> {
    let mut out = Cow::Borrowed(text);
    let mut sorted: Vec<&str> = values
        .iter()
        .map(AsRef::as_ref)
        .filter(|v| !v.is_empty())
        .collect();
    sorted.sort_by_key(|v| std::cmp::Reverse(v.len()));
    for value in sorted {
        if out.contains(value) {
            out = Cow::Owned(out.replace(value, MASKED));
        }
    }
    out
}

/// The names a flow's source passes literally to `secret()` (`secret('A')`,
/// `secret("B")`, `secret(key='C')`), for hosts that must fetch secrets before a pass
/// starts (rendering is synchronous). A name computed by an expression is not found.
pub fn secret_names(source: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let bytes = source.as_bytes();
    let mut from = 0;
    while let Some(found) = source[from..].find("secret") {
        let start = from + found;
        from = start + "secret".len();
        let before = start.checked_sub(1).map(|i| bytes[i]);
        if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.') {
            continue;
        }
        let rest = source[from..].trim_start();
        let Some(rest) = rest.strip_prefix('(') else {
            continue;
        };
        let mut rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("key") {
            if let Some(after) = after.trim_start().strip_prefix('=') {
                rest = after.trim_start();
            }
        }
        let Some(quote) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') else {
            continue;
        };
        let Some(end) = rest[1..].find(quote) else {
            continue;
        };
        let name = &rest[1..1 + end];
        // `secret('A_' ~ x)` computes its name: only whole literals count.
        let closes = rest[2 + end..].trim_start().starts_with([')', ',']);
        if closes && !name.is_empty() && !name.contains('{') && !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn environment_secrets_are_base64_and_case_insensitive() {
        let wrapped = format!("{}\n{}", &b64("a long value")[..8], &b64("a long value")[8..]);
        let secrets = EnvironmentSecrets::from_vars([
            ("SECRET_API_TOKEN", b64("s3cr3t")),
            ("SECRET_WRAPPED", wrapped),
            ("OTHER", b64("ignored")),
        ]);
        assert_eq!(secrets.secret("API_TOKEN"), Ok("s3cr3t".into()));
        assert_eq!(secrets.secret("api_token"), Ok("s3cr3t".into()));
        assert_eq!(secrets.secret("WRAPPED"), Ok("a long value".into()));
        assert_eq!(
            secrets.secret("OTHER").map_err(|e| e.to_string()),
            Err("Cannot find secret for key 'OTHER'.".into())
        );
    }

    #[test]
    fn a_value_that_is_not_base64_is_named_when_used() {
        let secrets = EnvironmentSecrets::from_vars([("SECRET_BAD", "not base64!")]);
        let e = secrets.secret("BAD").expect_err("invalid");
        assert!(matches!(&e, SecretError::NotBase64 { key, .. } if key == "SECRET_BAD"));
        assert!(
            e.to_string()
                .starts_with("Could not decode secret 'SECRET_BAD', make sure it is Base64-encoded"),
            "{e}"
        );
    }

    #[test]
    fn revealed_values_are_masked_longest_first() {
        let source =
            EnvironmentSecrets::from_vars([("SECRET_A", b64("pass")), ("SECRET_B", b64("password1"))]);
        let secrets = Secrets::new(Arc::new(source)).preload(&["A", "MISSING"]);
        assert_eq!(secrets.mask("token=password1"), "token=******word1");
        assert_eq!(secrets.get("B"), Ok("password1".into()));
        assert_eq!(secrets.mask("token=password1 or pass"), "token=****** or ******");
        assert!(matches!(secrets.mask("nothing here"), Cow::Borrowed(_)));
        assert_eq!(mask("a b a", &["a", ""]), "****** b ******");
    }

    #[test]
    fn literal_names_are_found_in_a_flow_source() {
        let source = r#"
tasks:
  - id: a
    type: io.kestra.plugin.core.log.Log
    message: "{{ secret('API_TOKEN') }} {{ secret( key = "DB" ) }} {{secret('API_TOKEN')}}"
  - id: b
    uri: "{{ secret('PREFIX_' ~ inputs.env) }} {{ mysecret('X') }} {{ x.secret('Y') }}"
"#;
        assert_eq!(secret_names(source), vec!["API_TOKEN", "DB"]);
    }
}
