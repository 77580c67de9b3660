//! Settings read from the environment that template.yaml sets (secrets come from stack
//! parameters and are never logged).

use std::time::Duration;

use kite_api::AuthConfig;
use kite_engine::EngineConfig;

use crate::error::FnError;

fn non_empty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// `KITE_BASIC_AUTH` (`user:password`) and `KITE_API_TOKEN`; empty values mean "not set"
/// (the template's parameters default to empty).
pub fn auth_from_env() -> Result<AuthConfig, FnError> {
    let basic = match non_empty("KITE_BASIC_AUTH") {
        Some(pair) => {
            let (user, password) = pair
                .split_once(':')
                .ok_or_else(|| FnError::Config("KITE_BASIC_AUTH must be written user:password".into()))?;
            Some((user.to_string(), password.to_string()))
        }
        None => None,
    };
    Ok(AuthConfig {
        basic,
        token: non_empty("KITE_API_TOKEN"),
    })
}

/// How long a function trusts the flows it has cached: other instances write flows too.
const CACHE_TTL: Duration = Duration::from_secs(5);

/// The engine settings of a function: `KITE_SECRET_KEY` for SECRET inputs, `KITE_MAX_UPLOAD`.
/// Flow triggers are evaluated by the stream function (not queued by each commit), and
/// cached flows expire after a few seconds since any instance may have saved a new revision.
pub fn engine_config_from_env() -> Result<EngineConfig, FnError> {
    let mut config = EngineConfig {
        secret_key: non_empty("KITE_SECRET_KEY").map(String::into_bytes),
        flow_triggers_in_queue: false,
        cache_ttl: Some(CACHE_TTL),
        ..EngineConfig::default()
    };
    if let Some(max) = non_empty("KITE_MAX_UPLOAD") {
        config.max_file_size = max
            .parse()
            .map_err(|_| FnError::Config("KITE_MAX_UPLOAD must be a number of bytes".into()))?;
    }
    if let Some(key) = &config.secret_key {
        if ![16, 24, 32].contains(&key.len()) {
            return Err(FnError::Config(
                "KITE_SECRET_KEY must be 16, 24 or 32 characters".into(),
            ));
        }
    }
    Ok(config)
}

/// Public base URL of the API for the `url` of executions (`KITE_URL`), without a trailing `/`.
pub fn base_url_from_env() -> String {
    non_empty("KITE_URL")
        .map(|u| u.trim_end_matches('/').to_string())
        .unwrap_or_default()
}
