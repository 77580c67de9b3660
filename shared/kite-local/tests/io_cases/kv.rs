//! `kv.yaml` and `secrets.yaml` (Kestra's flows, as `KvFunctionTest` and
//! `SecretFunctionTest` run them) and the KV tasks after Kestra's `kv` unit tests.

use kite_core::execution::StateType::{Failed, Success, Warning};
use kite_core::kv::{KvType, KvValue};
use serde_json::{json, Value};

use super::{ensure, same, Check, Env};

/// `KvFunctionTest.get`: a stored map's field, through `kv('my-key')` and with arguments.
pub async fn function_get(env: &Env) -> Check {
    env.engine
        .kv_put(
            "io.kestra.tests",
            "my-key",
            KvValue::new(KvType::Json, json!({"field": "value"})),
            None,
            None,
        )
        .await
        .map_err(|e| e.to_string())?;
    let done = env.run("kv.yaml", &[], &[]).await?;
    done.states(Success, &[("get", Success), ("getWithArgs", Success)])?;
    same("get value", done.output("get", "value"), json!("value"))?;
    same(
        "getWithArgs value",
        done.output("getWithArgs", "value"),
        json!("value"),
    )
}

/// `KvFunctionTest.getKeyNotFound`: `?? null` turns the missing key into an empty
/// string; with `errorOnMissing` true the render fails saying which key.
pub async fn function_key_not_found(env: &Env) -> Check {
    let done = env.run("kv.yaml", &[("errorOnMissing", "true")], &[]).await?;
    done.states(Failed, &[("get", Success), ("getWithArgs", Failed)])?;
    same("get value", done.output("get", "value"), json!(""))?;
    // Kestra's line starts with the Pebble exception's class and ends with the template.
    done.logged(
        "getWithArgs",
        "The key 'my-key' does not exist in the namespace 'io.kestra.tests'.",
    )
}

/// Kestra's test environment: `{"secretKey":"secretValue"}`, and a base64 text cut into
/// lines.
pub const SECRETS: &[(&str, &str)] = &[
    ("SECRET_MY_SECRET", "eyJzZWNyZXRLZXkiOiJzZWNyZXRWYWx1ZSJ9"),
    (
        "SECRET_NEW_LINE",
        "cGFzc3dvcmR2ZXJ5dmVyeXZleXJsb25ncGFzc3dvcmR2ZXJ5dmVyeXZleXJsb25ncGFzc3dvcmR2\nZXJ5dmVyeXZleXJsb25ncGFzc3dvcmR2ZXJ5dmVyeXZleXJsb25ncGFzc3dvcmR2ZXJ5dmVyeXZl\neXJsb25n",
    ),
];

/// `SecretFunctionTest.getSecret`: a JSON secret's field, a multi-line secret, and a
/// logged secret masked.
pub async fn secrets(env: &Env) -> Check {
    let done = env.run("secrets.yaml", &[], &[]).await?;
    done.states(Success, &[])?;
    same(
        "get-secret value",
        done.output("get-secret", "value"),
        json!("secretValue"),
    )?;
    same(
        "get-multiline-secret value",
        done.output("get-multiline-secret", "value"),
        json!("passwordveryveryveyrlong".repeat(5)),
    )?;
    done.logged("log-secret", "***")?;
    ensure(
        !done
            .task_logs("log-secret")
            .iter()
            .any(|l| l.contains("secretValue")),
        || format!("secret logged in clear: {:?}", done.task_logs("log-secret")),
    )
}

async fn stored(env: &Env, namespace: &str, key: &str) -> Result<Value, String> {
    env.engine
        .kv_get(namespace, key)
        .await
        .map(|v| v.value)
        .map_err(|e| format!("{namespace}/{key}: {e}"))
}

/// `SetTest`, `GetTest`, `GetKeysTest`, `DeleteTest` (all but the DURATION type and the
/// unknown namespace, cases of their own).
pub async fn tasks(env: &Env) -> Check {
    let before = env.engine.now();
    let done = env.run("kv-tasks.yaml", &[], &[]).await?;
    done.states(
        Warning,
        &[
            ("set", Success),
            ("set_parent", Success),
            ("set_ttl", Success),
            ("refuse", Warning),
            ("get", Success),
            ("get_missing", Success),
            ("get_missing_error", Warning),
            ("keys", Success),
            ("delete", Success),
            ("delete_missing", Success),
            ("delete_missing_error", Warning),
        ],
    )?;
    // Set: the map as given, in the flow's namespace and in a parent one, no expiry
    // unless `ttl`.
    same(
        "set_parent",
        stored(env, "io.kestra", "test-key").await?,
        json!("test-value"),
    )?;
    let entries = env
        .engine
        .kv_list("io.kestra.test")
        .await
        .map_err(|e| e.to_string())?;
    let expiry = |key: &str| entries.iter().find(|e| e.key == key).map(|e| e.expiration_date);
    same("expiry of test-key", expiry("test-key"), None)?;
    same("expiry of typed-number", expiry("typed-number"), Some(None))?;
    let ttl = expiry("ttl-key").flatten().ok_or("ttl-key has no expiry")?;
    ensure(
        ttl > before + chrono::Duration::minutes(4) && ttl < before + chrono::Duration::minutes(6),
        || format!("ttl-key expires at {ttl}, set at {before} with PT5M"),
    )?;
    done.logged(
        "refuse",
        "Cannot set value for key 'test-key'. Key already exists and `overwrite` is set to `false`.",
    )?;
    // typeSpecified
    same(
        "NUMBER",
        stored(env, "io.kestra.test", "typed-number").await?,
        json!(123.45),
    )?;
    same(
        "BOOLEAN",
        stored(env, "io.kestra.test", "typed-boolean").await?,
        json!(true),
    )?;
    let datetime = stored(env, "io.kestra.test", "typed-datetime").await?;
    let instant = datetime
        .as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .ok_or_else(|| format!("DATETIME stored as {datetime}"))?;
    same(
        "DATETIME",
        instant.to_rfc3339(),
        "2023-05-02T01:02:03+00:00".to_string(),
    )?;
    same(
        "JSON",
        stored(env, "io.kestra.test", "typed-json").await?,
        json!([{"some": "value"}, {"another": "value"}]),
    )?;
    // Get
    same(
        "get value",
        done.output("get", "value"),
        json!({"int": 1, "string": "string"}),
    )?;
    same(
        "get_missing value",
        done.output("get_missing", "value"),
        Value::Null,
    )?;
    let missing =
        "No value found for key 'my-key' in namespace 'io.kestra.test' and `errorOnMissing` is set to true";
    done.logged("get_missing_error", missing)?;
    // GetKeys
    same("keys", done.output("keys", "keys"), json!(["test-key"]))?;
    let mut all: Vec<String> =
        serde_json::from_value(done.output("all_keys", "keys")).map_err(|e| e.to_string())?;
    all.sort();
    same(
        "all_keys",
        all,
        [
            "test-key",
            "ttl-key",
            "typed-boolean",
            "typed-datetime",
            "typed-duration",
            "typed-json",
            "typed-number",
        ]
        .map(String::from)
        .to_vec(),
    )?;
    same("no_keys", done.output("no_keys", "keys"), json!([]))?;
    // Delete
    same("delete", done.output("delete", "deleted"), json!(true))?;
    same(
        "delete_missing",
        done.output("delete_missing", "deleted"),
        json!(false),
    )?;
    done.logged("delete_missing_error", missing)?;
    ensure(
        env.engine.kv_get("io.kestra.test", "test-key").await.is_err(),
        || "test-key still stored after delete".into(),
    )
}

/// `SetTest.typeSpecified`, DURATION: Kestra's test reads the stored value back as a
/// number of seconds (86405 for `P1DT5S`).
pub async fn duration(env: &Env) -> Check {
    let done = env.run("kv-tasks.yaml", &[], &[]).await?;
    same("duration task", done.task_state("duration")?, Success)?;
    let value = stored(env, "io.kestra.test", "typed-duration").await?;
    let seconds = match &value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse::<f64>().ok(),
        _ => None,
    };
    same(
        &format!("DURATION stored as {value}"),
        seconds.map(|s| s as i64),
        Some(86405),
    )
}

/// `SetTest.shouldFailGivenNonExistingNamespace`: no flow and no pair in `not-found`.
pub async fn unknown_namespace(env: &Env) -> Check {
    let done = env.run("kv-set-unknown-namespace.yaml", &[], &[]).await?;
    done.states(Failed, &[("set", Failed)])?;
    done.logged(
        "set",
        "Cannot access the KV store. The namespace 'not-found' does not exist.",
    )
}
