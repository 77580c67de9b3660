//! Webhook triggers: which trigger a request's key opens, whether its conditions hold,
//! and the `trigger.*` variables, inputs and response settings of the execution it
//! creates. The HTTP edge only turns the request into a [`WebhookRequest`] and the
//! answer into a response.

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde_json::{json, Map, Value};

use crate::execution::ExecutionTrigger;
use crate::expression::{write_pebble, ExpressionEngine, RenderContext};
use crate::flow::{Flow, Trigger, TriggerType};
use crate::input::InputValue;
use crate::secret::Secrets;
use crate::trigger::condition::{self, ConditionContext};

mod signature;

pub use signature::{Algorithm, Encoding, Preset, SignatureError, SignatureSpec, SignatureSpecError};

/// A call of `/api/v1/executions/webhook/{namespace}/{flowId}/{key}`.
#[derive(Debug, Clone, Default)]
pub struct WebhookRequest<'a> {
    pub key: &'a str,
    pub body: &'a [u8],
    /// `trigger.headers`: lower-case name → list of values.
    pub headers: Value,
    /// The query string's pairs, in order (a name may repeat).
    pub parameters: Vec<(String, String)>,
}

/// Why a request opens no execution.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WebhookError {
    /// No Webhook trigger of the flow has this key (404).
    #[error("Webhook not found")]
    NotFound,
    /// The flow or its trigger is disabled (409).
    #[error("Cannot execute a disabled flow or trigger")]
    Disabled,
    /// A condition or an input expression does not evaluate (422).
    #[error("{0}")]
    IllegalArgument(String),
    /// The `signature` block refuses the request (401); nothing may be created.
    #[error("Invalid webhook signature: {0}")]
    Unauthorized(SignatureError),
}

/// How the trigger wants the request answered.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WebhookResponse {
    /// Answer once the execution ended (`wait: true`).
    pub wait: bool,
    /// Answer with the execution's outputs instead of the execution (`returnOutputs`).
    pub return_outputs: bool,
    /// `responseCode`, when it is a valid number.
    pub status: Option<u16>,
    /// `responseContentType`.
    pub content_type: Option<String>,
}

/// What a request that matched a trigger leads to.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookOutcome {
    /// The trigger's conditions do not hold: no execution (Kestra answers 204).
    ConditionsNotMet,
    /// Create an execution with this trigger and these inputs.
    Fire(Box<WebhookFiring>),
    /// A provider's URL handshake: answer this text, start nothing.
    Handshake(String),
}

/// The execution a request creates, and how to answer it.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookFiring {
    pub trigger: ExecutionTrigger,
    pub inputs: IndexMap<String, InputValue>,
    pub response: WebhookResponse,
    /// Derived from the provider's delivery id, when there is one: a retried delivery
    /// maps to the execution the first one created.
    pub execution_id: Option<String>,
}

/// Evaluates a webhook request against a flow (its latest revision). `secrets` serve
/// `secret()` in the `signature` block's secret.
pub fn evaluate(
    flow: &Flow,
    revision: i64,
    request: &WebhookRequest,
    expressions: &ExpressionEngine,
    secrets: Option<&Secrets>,
    now: DateTime<Utc>,
) -> Result<WebhookOutcome, WebhookError> {
    let flow_vars = json!({"flow": {"id": flow.id, "namespace": flow.namespace, "revision": revision}});
    let trigger =
        find_trigger(flow, request.key, &flow_vars, expressions, now).ok_or(WebhookError::NotFound)?;
    if flow.disabled || trigger.disabled {
        return Err(WebhookError::Disabled);
    }
    let spec = trigger
        .properties
        .get("signature")
        .map(SignatureSpec::parse)
        .transpose()
        .map_err(|e| WebhookError::IllegalArgument(format!("signature: {e}")))?;
    if let Some(spec) = &spec {
        if spec.handshake_before_verification() {
            if let Some(answer) = spec.handshake(&request.parameters, None) {
                return Ok(WebhookOutcome::Handshake(answer));
            }
        }
        // The raw bytes, before anything parses them: a re-serialised body would not match.
        let ctx = RenderContext {
            secrets,
            ..RenderContext::new(&flow_vars, now)
        };
        let secret = expressions
            .render(&spec.secret, &ctx)
            .map_err(|e| WebhookError::Unauthorized(SignatureError::SecretUnavailable(e.message)))?;
        if secret.is_empty() {
            return Err(WebhookError::Unauthorized(SignatureError::SecretUnavailable(
                "it renders empty".into(),
            )));
        }
        spec.verify(&secret, &request.headers, request.body, now)
            .map_err(WebhookError::Unauthorized)?;
    }
    let variables = trigger_variables(request);
    if let Some(answer) = spec
        .as_ref()
        .and_then(|s| s.handshake(&request.parameters, variables.get("body")))
    {
        return Ok(WebhookOutcome::Handshake(answer));
    }
    let mut vars = flow_vars;
    vars["trigger"] = Value::Object(variables.clone().into_iter().collect());
    if let Some(Value::Array(conditions)) = trigger.properties.get("conditions") {
        let ctx = ConditionContext {
            expressions,
            variables: &vars,
            now,
            execution: None,
        };
        match condition::all_hold(conditions, &ctx) {
            Ok(true) => {}
            Ok(false) => return Ok(WebhookOutcome::ConditionsNotMet),
            Err(e) => return Err(WebhookError::IllegalArgument(e.to_string())),
        }
    }
    let inputs = trigger_inputs(trigger, &vars, expressions, now)?;
    let delivery = match trigger.properties.get("deliveryId") {
        Some(raw) => Some(
            expressions
                .render(&write_pebble(raw), &RenderContext::new(&vars, now))
                .map_err(|e| WebhookError::IllegalArgument(format!("deliveryId: {}", e.message)))?
                .trim()
                .to_string(),
        )
        .filter(|d| !d.is_empty()),
        None => spec
            .as_ref()
            .and_then(|s| s.delivery_id(&request.headers, variables.get("body"))),
    };
    let execution_id = delivery.map(|d| execution_id(&flow.namespace, &flow.id, &trigger.id, &d));
    Ok(WebhookOutcome::Fire(Box::new(WebhookFiring {
        execution_id,
        trigger: ExecutionTrigger {
            id: trigger.id.clone(),
            type_name: trigger.type_name.clone(),
            variables: Some(variables),
            log_file: None,
        },
        inputs,
        response: response_settings(trigger),
    })))
}

/// The Webhook trigger whose key (which may be an expression, e.g. `{{ flow.id }}`)
/// renders, trimmed as Kestra does, to `key`; a key that does not render matches
/// nothing (its text is not a key). Compared in constant time.
fn find_trigger<'f>(
    flow: &'f Flow,
    key: &str,
    flow_vars: &Value,
    expressions: &ExpressionEngine,
    now: DateTime<Utc>,
) -> Option<&'f Trigger> {
    flow.triggers.iter().find(|t| {
        t.trigger_type == TriggerType::Webhook && {
            let raw = t.properties.get("key").map(write_pebble).unwrap_or_default();
            match expressions.render(&raw, &RenderContext::new(flow_vars, now)) {
                Ok(rendered) => constant_time_eq(rendered.trim(), key),
                Err(_) => false,
            }
        }
    })
}

/// `trigger.body` (a JSON object or array as such, any other body as text),
/// `trigger.headers` and `trigger.parameters` (name → list of values).
fn trigger_variables(request: &WebhookRequest) -> IndexMap<String, Value> {
    let mut parameters: IndexMap<String, Value> = IndexMap::new();
    for (k, v) in &request.parameters {
        let entry = parameters
            .entry(k.clone())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = entry {
            list.push(Value::String(v.clone()));
        }
    }
    let mut variables = IndexMap::new();
    if let Some(body) = body_value(request.body) {
        variables.insert("body".into(), body);
    }
    variables.insert("headers".into(), request.headers.clone());
    variables.insert(
        "parameters".into(),
        Value::Object(parameters.into_iter().collect::<Map<_, _>>()),
    );
    variables
}

fn body_value(bytes: &[u8]) -> Option<Value> {
    if bytes.is_empty() {
        return None;
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v @ (Value::Object(_) | Value::Array(_))) => Some(v),
        _ => Some(Value::String(String::from_utf8_lossy(bytes).into_owned())),
    }
}

/// Kestra 1.x: the trigger's `inputs`, rendered against the request.
fn trigger_inputs(
    trigger: &Trigger,
    vars: &Value,
    expressions: &ExpressionEngine,
    now: DateTime<Utc>,
) -> Result<IndexMap<String, InputValue>, WebhookError> {
    let mut inputs = IndexMap::new();
    let Some(Value::Object(declared)) = trigger.properties.get("inputs") else {
        return Ok(inputs);
    };
    let ctx = RenderContext::new(vars, now);
    for (k, v) in declared {
        let value = expressions
            .render_value(v, &ctx)
            .map_err(|e| WebhookError::IllegalArgument(e.message))?;
        let value = match value {
            Value::String(s) => InputValue::Text(s),
            other => InputValue::Json(other),
        };
        inputs.insert(k.clone(), value);
    }
    Ok(inputs)
}

fn response_settings(trigger: &Trigger) -> WebhookResponse {
    let flag = |name: &str| match trigger.properties.get(name) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    };
    WebhookResponse {
        wait: flag("wait"),
        return_outputs: flag("returnOutputs"),
        status: trigger
            .properties
            .get("responseCode")
            .map(write_pebble)
            .and_then(|c| c.parse::<u16>().ok()),
        content_type: trigger
            .properties
            .get("responseContentType")
            .and_then(Value::as_str)
            .map(str::to_string),
    }
}

/// The execution a delivery creates. The delivery id is hashed first: it comes from the
/// caller, and the id derivation is not built to resist chosen inputs.
pub fn execution_id(namespace: &str, flow_id: &str, trigger_id: &str, delivery: &str) -> String {
    use sha2::Digest as _;
    let digest = signature::encode(Encoding::Hex, &sha2::Sha256::digest(delivery.as_bytes()));
    crate::id::derived_id(&format!(
        "webhook\n{namespace}\n{flow_id}\n{trigger_id}\n{digest}"
    ))
}

/// Compares secrets without leaking where they differ through timing.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::parse_flow;

    const FLOW: &str = r#"
id: hook
namespace: dev
inputs:
  - id: greeting
    type: STRING
    defaults: hello
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ trigger.body.greeting ?? inputs.greeting }}"
triggers:
  - id: by-key
    type: io.kestra.plugin.core.trigger.Webhook
    key: "{{ flow.id }}-key"
    wait: true
    responseCode: 201
    responseContentType: text/plain
    conditions:
      - type: io.kestra.plugin.core.condition.Expression
        expression: "{{ trigger.parameters.stop is not defined }}"
    inputs:
      greeting: "{{ trigger.body.greeting ?? 'none' }}"
  - id: off
    type: io.kestra.plugin.core.trigger.Webhook
    key: off-key
    disabled: true
  - id: padded
    type: io.kestra.plugin.core.trigger.Webhook
    key: " padded "
  - id: unrenderable
    type: io.kestra.plugin.core.trigger.Webhook
    key: "{{ secret('WEBHOOK_KEY') }}"
"#;

    fn evaluate_request(request: WebhookRequest) -> Result<WebhookOutcome, WebhookError> {
        let flow = parse_flow(FLOW).unwrap_or_else(|e| panic!("{e:?}"));
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default();
        evaluate(&flow, 3, &request, &ExpressionEngine::new(), None, now)
    }

    #[test]
    fn a_rendered_key_fires_with_the_request_as_trigger_variables_and_inputs() {
        let outcome = evaluate_request(WebhookRequest {
            key: "hook-key",
            body: br#"{"greeting": "hi"}"#,
            headers: json!({"x-a": ["1"]}),
            parameters: vec![("go".into(), "yes".into()), ("go".into(), "again".into())],
        });
        let Ok(WebhookOutcome::Fire(firing)) = outcome else {
            panic!("expected a firing, got {outcome:?}");
        };
        let WebhookFiring {
            trigger,
            inputs,
            response,
            execution_id,
        } = *firing;
        assert_eq!(execution_id, None);
        assert_eq!(trigger.id, "by-key");
        assert_eq!(
            Value::Object(trigger.variables.unwrap_or_default().into_iter().collect()),
            json!({"body": {"greeting": "hi"}, "headers": {"x-a": ["1"]}, "parameters": {"go": ["yes", "again"]}})
        );
        assert_eq!(inputs.get("greeting"), Some(&InputValue::Text("hi".into())));
        assert_eq!(
            response,
            WebhookResponse {
                wait: true,
                return_outputs: false,
                status: Some(201),
                content_type: Some("text/plain".into()),
            }
        );
    }

    #[test]
    fn a_text_body_stays_text_and_an_empty_body_is_absent() {
        let fire = |body: &'static [u8]| match evaluate_request(WebhookRequest {
            key: "hook-key",
            body,
            ..Default::default()
        }) {
            Ok(WebhookOutcome::Fire(firing)) => firing.trigger.variables.unwrap_or_default(),
            other => panic!("expected a firing, got {other:?}"),
        };
        assert_eq!(fire(b"42").get("body"), Some(&json!("42")));
        assert_eq!(fire(b"plain").get("body"), Some(&json!("plain")));
        assert_eq!(fire(b"").get("body"), None);
    }

    #[test]
    fn unknown_keys_disabled_triggers_and_unmet_conditions_open_nothing() {
        let request = |key, parameters| WebhookRequest {
            key,
            parameters,
            ..Default::default()
        };
        assert_eq!(
            evaluate_request(request("hook", vec![])),
            Err(WebhookError::NotFound)
        );
        assert_eq!(
            evaluate_request(request("{{ flow.id }}-key", vec![])),
            Err(WebhookError::NotFound)
        );
        assert_eq!(
            evaluate_request(request("off-key", vec![])),
            Err(WebhookError::Disabled)
        );
        assert!(matches!(
            evaluate_request(request("padded", vec![])),
            Ok(WebhookOutcome::Fire(_))
        ));
        assert_eq!(
            evaluate_request(request("{{ secret('WEBHOOK_KEY') }}", vec![])),
            Err(WebhookError::NotFound)
        );
        assert_eq!(
            evaluate_request(request("hook-key", vec![("stop".into(), "1".into())])),
            Ok(WebhookOutcome::ConditionsNotMet)
        );
    }

    const SIGNED: &str = r#"
id: signed
namespace: dev
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ trigger.body }}"
triggers:
  - id: github
    type: io.kestra.plugin.core.trigger.Webhook
    key: gh
    signature:
      preset: GITHUB
      secret: "{{ secret('GITHUB_WEBHOOK_SECRET') }}"
  - id: slack
    type: io.kestra.plugin.core.trigger.Webhook
    key: slack
    deliveryId: "{{ trigger.body.event_id }}-{{ trigger.parameters.n[0] ?? '' }}"
    signature:
      preset: SLACK
      secret: plain-secret
"#;

    fn evaluate_signed(request: WebhookRequest, with_secret: bool) -> Result<WebhookOutcome, WebhookError> {
        let flow = parse_flow(SIGNED).unwrap_or_else(|e| panic!("{e:?}"));
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        let vars = [(
            "SECRET_GITHUB_WEBHOOK_SECRET",
            "SXQncyBhIFNlY3JldCB0byBFdmVyeWJvZHk=",
        )];
        let secrets = Secrets::new(std::sync::Arc::new(crate::secret::EnvironmentSecrets::from_vars(
            vars.into_iter().filter(|_| with_secret),
        )));
        evaluate(&flow, 1, &request, &ExpressionEngine::new(), Some(&secrets), now)
    }

    #[test]
    fn a_signed_trigger_verifies_with_a_secret_and_derives_the_execution_from_the_delivery() {
        let request = |sig: &str, delivery: &str| WebhookRequest {
            key: "gh",
            body: b"Hello, World!",
            headers: json!({"x-hub-signature-256": [sig], "x-github-delivery": [delivery]}),
            parameters: vec![],
        };
        let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let id = |outcome| match outcome {
            Ok(WebhookOutcome::Fire(firing)) => firing.execution_id,
            other => panic!("expected a firing, got {other:?}"),
        };
        let first = id(evaluate_signed(request(good, "d-1"), true));
        assert_eq!(first, Some(execution_id("dev", "signed", "github", "d-1")));
        assert_eq!(id(evaluate_signed(request(good, "d-1"), true)), first);
        assert_ne!(id(evaluate_signed(request(good, "d-2"), true)), first);
        assert_eq!(
            evaluate_signed(request("sha256=00", "d-1"), true),
            Err(WebhookError::Unauthorized(SignatureError::Mismatch))
        );
        // No secret configured: refused, never accepted unsigned.
        assert!(matches!(
            evaluate_signed(request(good, "d-1"), false),
            Err(WebhookError::Unauthorized(SignatureError::SecretUnavailable(_)))
        ));
    }

    #[test]
    fn a_slack_challenge_is_answered_once_signed_and_delivery_ids_can_be_expressions() {
        let signed = |body: &'static [u8], n: &str| {
            let mac = signature::hmac(Algorithm::Sha256, b"plain-secret", &[b"v0:1700000000:", body]);
            WebhookRequest {
                key: "slack",
                body,
                headers: json!({
                    "x-slack-request-timestamp": ["1700000000"],
                    "x-slack-signature": [format!("v0={}", signature::encode(Encoding::Hex, &mac))],
                }),
                parameters: vec![("n".into(), n.into())],
            }
        };
        let challenge: &[u8] = br#"{"type":"url_verification","challenge":"abc"}"#;
        assert_eq!(
            evaluate_signed(signed(challenge, "1"), true),
            Ok(WebhookOutcome::Handshake("abc".into()))
        );
        let mut unsigned = signed(challenge, "1");
        unsigned.headers = json!({});
        assert!(matches!(
            evaluate_signed(unsigned, true),
            Err(WebhookError::Unauthorized(_))
        ));
        match evaluate_signed(signed(br#"{"event_id":"Ev1"}"#, "2"), true) {
            Ok(WebhookOutcome::Fire(firing)) => assert_eq!(
                firing.execution_id,
                Some(execution_id("dev", "signed", "slack", "Ev1-2"))
            ),
            other => panic!("expected a firing, got {other:?}"),
        }
    }

    #[test]
    fn a_signature_block_that_cannot_be_used_is_a_flow_error() {
        let source = SIGNED.replace("preset: SLACK", "preset: GITLAB");
        let errors = parse_flow(&source).err().unwrap_or_default();
        assert!(
            errors.iter().any(|e| e.path == "triggers[1].signature.preset"),
            "{errors:?}"
        );
    }

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
        assert!(!constant_time_eq("", "a"));
    }
}
