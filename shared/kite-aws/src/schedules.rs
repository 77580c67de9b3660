//! Schedule triggers as EventBridge rules: one rule per (trigger, UTC expression),
//! targeting the scheduler function with `{"namespace","flowId","triggerId"}` as input.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_eventbridge::types::{InputTransformer, RuleState, Target};
use kite_engine::ports::{ScheduleRegistry, ScheduleRule, StoreError};
use sha2::{Digest, Sha256};

use crate::items::sdk;

/// EventBridge's limit on rule names.
pub const MAX_RULE_NAME: usize = 64;
/// The scheduler function's target id in every rule.
const TARGET_ID: &str = "kite-scheduler";

fn hex(bytes: &[u8], chars: usize) -> String {
    bytes
        .iter()
        .flat_map(|b| [b >> 4, b & 0xf])
        .take(chars)
        .map(|n| char::from_digit(u32::from(n), 16).unwrap_or('0'))
        .collect()
}

fn digest(parts: &[&str]) -> Vec<u8> {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    h.finalize().to_vec()
}

/// The name prefix shared by every rule of one flow: `{prefix}-{10 hex of the flow}-`.
pub fn flow_rule_prefix(prefix: &str, namespace: &str, flow_id: &str) -> String {
    format!("{prefix}-{}-", hex(&digest(&[namespace, flow_id]), 10))
}

/// A rule's name: the flow's prefix, 6 hex of the trigger, the expression's index, then
/// as much of `flow.trigger` as fits in 64 characters (for people reading the console).
pub fn rule_name(prefix: &str, namespace: &str, flow_id: &str, trigger_id: &str, index: usize) -> String {
    let mut name = format!(
        "{}{}{index}",
        flow_rule_prefix(prefix, namespace, flow_id),
        hex(&digest(&[namespace, flow_id, trigger_id]), 6)
    );
    let readable: String = format!("{flow_id}.{trigger_id}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let room = MAX_RULE_NAME.saturating_sub(name.len() + 1);
    if room > 0 {
        name.push('-');
        name.extend(readable.chars().take(room));
    }
    name
}

/// The rules of Schedule triggers in EventBridge's default bus.
#[derive(Debug, Clone)]
pub struct EventBridgeSchedules {
    client: aws_sdk_eventbridge::Client,
    prefix: String,
    target_arn: Option<String>,
}

struct Desired {
    expression: String,
    state: RuleState,
    input: String,
}

impl EventBridgeSchedules {
    pub fn new(client: aws_sdk_eventbridge::Client, prefix: String, target_arn: Option<String>) -> Self {
        EventBridgeSchedules {
            client,
            prefix,
            target_arn,
        }
    }

    pub fn client(&self) -> &aws_sdk_eventbridge::Client {
        &self.client
    }

    /// The rules registered for one flow: name → (expression, state).
    pub async fn list_flow_rules(
        &self,
        namespace: &str,
        flow_id: &str,
    ) -> Result<HashMap<String, (String, RuleState)>, StoreError> {
        let prefix = flow_rule_prefix(&self.prefix, namespace, flow_id);
        let mut out = HashMap::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_rules()
                .name_prefix(&prefix)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(sdk)?;
            for rule in page.rules() {
                if let Some(name) = rule.name() {
                    out.insert(
                        name.to_string(),
                        (
                            rule.schedule_expression().unwrap_or_default().to_string(),
                            rule.state().cloned().unwrap_or(RuleState::Enabled),
                        ),
                    );
                }
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
    }
}

/// The scheduler function's input for a rule: the trigger, and the event's `time` (the
/// instant the rule fired) filled in by EventBridge, so that a late delivery still
/// fires the date it was for.
pub fn input_template(rule: &ScheduleRule) -> String {
    let quoted = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    format!(
        r#"{{"namespace":{},"flowId":{},"triggerId":{},"time":<time>}}"#,
        quoted(&rule.namespace),
        quoted(&rule.flow_id),
        quoted(&rule.trigger_id)
    )
}

#[async_trait]
impl ScheduleRegistry for EventBridgeSchedules {
    async fn sync_flow(
        &self,
        namespace: &str,
        flow_id: &str,
        rules: &[ScheduleRule],
    ) -> Result<(), StoreError> {
        let mut desired: HashMap<String, Desired> = HashMap::new();
        for rule in rules {
            let input = input_template(rule);
            for (i, expression) in rule.expressions.iter().enumerate() {
                desired.insert(
                    rule_name(&self.prefix, &rule.namespace, &rule.flow_id, &rule.trigger_id, i),
                    Desired {
                        expression: expression.clone(),
                        state: if rule.enabled {
                            RuleState::Enabled
                        } else {
                            RuleState::Disabled
                        },
                        input: input.clone(),
                    },
                );
            }
        }
        let existing = self.list_flow_rules(namespace, flow_id).await?;
        for (name, want) in &desired {
            let unchanged = existing
                .get(name)
                .is_some_and(|(expr, state)| *expr == want.expression && *state == want.state);
            if unchanged {
                continue;
            }
            let arn = self.target_arn.as_deref().ok_or_else(|| {
                StoreError::Backend(
                    "SCHEDULER_FUNCTION_ARN is not set: cannot register Schedule triggers".into(),
                )
            })?;
            self.client
                .put_rule()
                .name(name)
                .schedule_expression(&want.expression)
                .state(want.state.clone())
                .description(format!("Kite Schedule trigger of {namespace}.{flow_id}"))
                .send()
                .await
                .map_err(sdk)?;
            self.client
                .put_targets()
                .rule(name)
                .targets(
                    Target::builder()
                        .id(TARGET_ID)
                        .arn(arn)
                        .input_transformer(
                            InputTransformer::builder()
                                .input_paths_map("time", "$.time")
                                .input_template(&want.input)
                                .build()
                                .map_err(|e| StoreError::Backend(e.to_string()))?,
                        )
                        .build()
                        .map_err(|e| StoreError::Backend(e.to_string()))?,
                )
                .send()
                .await
                .map_err(sdk)?;
        }
        for name in existing.keys().filter(|n| !desired.contains_key(*n)) {
            // A rule with targets cannot be deleted.
            self.client
                .remove_targets()
                .rule(name)
                .ids(TARGET_ID)
                .send()
                .await
                .map_err(sdk)?;
            self.client.delete_rule().name(name).send().await.map_err(sdk)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_names_fit_and_stay_apart() {
        let long = "a".repeat(300);
        let n = rule_name("kite", &long, &long, &long, 0);
        assert!(n.len() <= MAX_RULE_NAME, "{n}");
        assert!(n.starts_with(&flow_rule_prefix("kite", &long, &long)));
        assert_ne!(
            rule_name("kite", "ns", "f", "t1", 0),
            rule_name("kite", "ns", "f", "t2", 0)
        );
        assert_ne!(
            rule_name("kite", "ns", "f", "t", 0),
            rule_name("kite", "ns", "f", "t", 1)
        );
        assert_ne!(
            rule_name("kite", "ns.a", "f", "t", 0),
            rule_name("kite", "ns", "a.f", "t", 0)
        );
        let odd = rule_name("kite", "ns", "f lo/w", "tr!g", 0);
        assert!(odd
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-'));
    }
}
