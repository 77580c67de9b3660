//! Settings read from the environment that template.yaml sets, and the secrets read from
//! the stack's Secrets Manager secret (never logged).

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use kite_api::AuthConfig;
use kite_engine::EngineConfig;

use crate::error::FnError;

fn non_empty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The functions' secrets: the management API's credentials and the key of SECRET inputs.
/// On AWS they come from the stack's Secrets Manager secret (`KITE_SECRETS_ARN`, JSON
/// `{"apiToken", "basicAuth", "secretKey"}`); without one, from `KITE_API_TOKEN`,
/// `KITE_BASIC_AUTH` and `KITE_SECRET_KEY` (local runs and tests). Empty means "not set".
#[derive(Default, Clone, PartialEq, Eq)]
pub struct Secrets {
    pub api_token: Option<String>,
    pub basic_auth: Option<String>,
    pub secret_key: Option<String>,
    /// Read from the stack's secret (then the management API must be protected).
    pub from_secret: bool,
}

// Never printed: a log line or error that formats the settings keeps the values out.
impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |v: &Option<String>| if v.is_some() { "set" } else { "unset" };
        f.debug_struct("Secrets")
            .field("api_token", &set(&self.api_token))
            .field("basic_auth", &set(&self.basic_auth))
            .field("secret_key", &set(&self.secret_key))
            .field("from_secret", &self.from_secret)
            .finish()
    }
}

impl Secrets {
    /// From the secret's JSON text when there is one, else from the environment.
    pub fn load(stored: Option<&str>) -> Result<Secrets, FnError> {
        let Some(text) = stored else {
            return Ok(Secrets {
                api_token: non_empty("KITE_API_TOKEN"),
                basic_auth: non_empty("KITE_BASIC_AUTH"),
                secret_key: non_empty("KITE_SECRET_KEY"),
                from_secret: false,
            });
        };
        /// The secret's JSON, as template.yaml's `KiteSecrets` generates it.
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Stored {
            api_token: Option<String>,
            basic_auth: Option<String>,
            secret_key: Option<String>,
        }
        let stored: Stored = serde_json::from_str(text).map_err(|e| {
            FnError::Config(format!(
                "the stack's secret must be a JSON object {{\"apiToken\", \"basicAuth\", \"secretKey\"}} of strings ({e})"
            ))
        })?;
        let set = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
        Ok(Secrets {
            api_token: set(stored.api_token),
            basic_auth: set(stored.basic_auth),
            secret_key: set(stored.secret_key),
            from_secret: true,
        })
    }

    /// The management API's credentials. A deployed stack refuses to serve it open.
    pub fn auth(&self) -> Result<AuthConfig, FnError> {
        let basic = match &self.basic_auth {
            Some(pair) => {
                let (user, password) = pair
                    .split_once(':')
                    .ok_or_else(|| FnError::Config("basicAuth must be written user:password".into()))?;
                Some((user.to_string(), password.to_string()))
            }
            None => None,
        };
        if self.from_secret && basic.is_none() && self.api_token.is_none() {
            return Err(FnError::Config(
                "the stack's secret sets neither apiToken nor basicAuth: the management API would be open to anyone"
                    .into(),
            ));
        }
        Ok(AuthConfig {
            basic,
            token: self.api_token.clone(),
        })
    }
}

/// Every function's start: the secrets (the stack's secret that `stored` reads, else the
/// environment), then what `build` makes of the engine settings they give (the engine and
/// its adapters).
pub async fn start<T, E1: Display, E2: Display>(
    stored: impl Future<Output = Result<Option<String>, E1>>,
    build: impl AsyncFnOnce(EngineConfig) -> Result<T, E2>,
) -> Result<(Secrets, T), FnError> {
    let stored = stored.await.map_err(|e| FnError::Config(e.to_string()))?;
    let secrets = Secrets::load(stored.as_deref())?;
    let built = build(engine_config(&secrets)?)
        .await
        .map_err(|e| FnError::Config(e.to_string()))?;
    Ok((secrets, built))
}

/// The longest interval between two reads of a followed execution (1 read unit each).
const WATCH_POLL: Duration = Duration::from_millis(500);

/// How long a function trusts the flows it has cached: other instances write flows too.
const CACHE_TTL: Duration = Duration::from_secs(5);

/// The engine settings of a function: the secret key of SECRET inputs, `KITE_MAX_UPLOAD`,
/// `KITE_MAX_FLOW_TASKS`, `KITE_MAX_FLOW_DEPTH` and `KITE_MAX_TASK_OUTPUT`.
/// Flow triggers are evaluated by the stream function (not queued by each commit), and
/// cached flows expire after a few seconds since any instance may have saved a new revision.
pub fn engine_config(secrets: &Secrets) -> Result<EngineConfig, FnError> {
    let secret_key = secrets
        .secret_key
        .as_deref()
        .map(kite_core::input::parse_secret_key)
        .transpose()
        .map_err(|e| FnError::Config(format!("secretKey (KITE_SECRET_KEY): {e}")))?;
    let mut config = EngineConfig {
        secret_key,
        flow_triggers_in_queue: false,
        cache_ttl: Some(CACHE_TTL),
        // The worker and other instances make the progress an api instance's followers
        // wait for: they poll the table, at most this far apart.
        watch_poll: Some(WATCH_POLL),
        ..EngineConfig::default()
    };
    if let Some(max) = non_empty("KITE_MAX_UPLOAD") {
        config.max_file_size = max
            .parse()
            .map_err(|_| FnError::Config("KITE_MAX_UPLOAD must be a number of bytes".into()))?;
    }
    let number = |name: &str, unit: &str| match non_empty(name) {
        None => Ok(None),
        Some(v) => v
            .parse::<usize>()
            .map(Some)
            .map_err(|_| FnError::Config(format!("{name} must be a number of {unit}"))),
    };
    if let Some(max) = number("KITE_MAX_FLOW_TASKS", "tasks")? {
        config.flow_limits.max_tasks = max;
    }
    if let Some(max) = number("KITE_MAX_FLOW_DEPTH", "levels")? {
        config.flow_limits.max_depth = max;
    }
    if let Some(max) = number("KITE_MAX_TASK_OUTPUT", "bytes")? {
        config.max_task_output = max;
    }
    Ok(config)
}

/// Public base URL of the API for the `url` of executions (`KITE_URL`), without a trailing `/`.
pub fn base_url_from_env() -> String {
    non_empty("KITE_URL")
        .map(|u| u.trim_end_matches('/').to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stack_secret_gives_the_credentials_and_the_key() {
        let secrets = Secrets::load(Some(
            r#"{"apiToken": "t0k3n", "basicAuth": "", "secretKey": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}"#,
        ))
        .unwrap();
        assert_eq!(secrets.api_token.as_deref(), Some("t0k3n"));
        assert_eq!(secrets.basic_auth, None, "empty means not set");
        let auth = secrets.auth().unwrap();
        assert_eq!(auth.token.as_deref(), Some("t0k3n"));
        assert!(auth.basic.is_none());
        let config = engine_config(&secrets).unwrap();
        let key: Vec<u8> = (0u8..32).collect();
        assert_eq!(config.secret_key, Some(key), "Kestra's base64 form");
        assert!(!format!("{secrets:?}").contains("t0k3n"), "never printed");

        let basic = Secrets::load(Some(r#"{"basicAuth": "ada:pw"}"#)).unwrap();
        assert_eq!(basic.auth().unwrap().basic, Some(("ada".into(), "pw".into())));
    }

    #[test]
    fn a_secret_that_would_open_the_api_or_is_malformed_is_refused() {
        let open = Secrets::load(Some(r#"{"apiToken": " ", "basicAuth": ""}"#)).unwrap();
        let e = open.auth().unwrap_err().to_string();
        assert!(e.contains("neither apiToken nor basicAuth"), "{e}");
        for bad in ["not json", r#"{"apiToken": 42}"#, "[]"] {
            let e = Secrets::load(Some(bad)).unwrap_err().to_string();
            assert!(
                e.starts_with("configuration: the stack's secret must be a JSON object"),
                "{e}"
            );
        }
        let e = Secrets::load(Some(r#"{"apiToken": "t", "basicAuth": "no-colon"}"#))
            .unwrap()
            .auth()
            .unwrap_err()
            .to_string();
        assert!(e.contains("user:password"), "{e}");
        let e = engine_config(&Secrets::load(Some(r#"{"apiToken": "t", "secretKey": "short"}"#)).unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("secretKey (KITE_SECRET_KEY): the secret key must be 32 bytes"),
            "{e}"
        );
    }
}
