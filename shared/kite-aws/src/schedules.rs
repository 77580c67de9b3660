//! Schedule triggers on EventBridge Scheduler: one schedule per (trigger, UTC expression),
//! every schedule of a stack in its one schedule group, each invoking the scheduler
//! function with `{"namespace","flowId","triggerId","time"}`.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use async_trait::async_trait;
use aws_sdk_scheduler::types::{
    DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode, RetryPolicy, ScheduleState, Target,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, Utc};
use kite_engine::ports::{ScheduleRegistry, ScheduleRule, StoreError, SyncReport};
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;

use crate::items::sdk;

/// EventBridge Scheduler's limit on schedule names.
pub const MAX_NAME: usize = 64;
/// Replaced by EventBridge Scheduler with the instant the schedule was due (RFC 3339, UTC),
/// the same on every retry of a delivery: a late delivery still fires the date it was for.
pub const SCHEDULED_TIME: &str = "<aws.scheduler.scheduled-time>";
/// Delivery retries (throttling, the function unavailable) before the dead-letter queue,
/// and the age past which a delivery is not retried: see docs/aws.md.
pub const RETRY_ATTEMPTS: i32 = 10;
pub const MAX_EVENT_AGE_SECONDS: i32 = 3600;
/// The largest page of `ListSchedules`.
const LIST_PAGE: i32 = 100;
/// `GetSchedule` calls in flight while comparing: far below the request rate quota of the
/// smallest Regions.
const GET_CONCURRENCY: usize = 4;

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

/// The name prefix shared by every schedule of one flow: `{10 hex of the flow}-` (the
/// group keeps stacks apart, so names carry no stack prefix).
pub fn flow_schedule_prefix(namespace: &str, flow_id: &str) -> String {
    format!("{}-", hex(&digest(&[namespace, flow_id]), 10))
}

/// A schedule's name: the flow's prefix, 6 hex of the trigger, the expression's index, then
/// as much of `flow.trigger` as fits in 64 characters (for people reading the console).
pub fn schedule_name(namespace: &str, flow_id: &str, trigger_id: &str, index: usize) -> String {
    let mut name = format!(
        "{}{}{index}",
        flow_schedule_prefix(namespace, flow_id),
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
    let room = MAX_NAME.saturating_sub(name.len() + 1);
    if room > 0 {
        name.push('-');
        name.extend(readable.chars().take(room));
    }
    name
}

/// The scheduler function's input for a schedule: the trigger, and the instant it was due.
pub fn schedule_input(rule: &ScheduleRule) -> String {
    serde_json::json!({
        "namespace": rule.namespace,
        "flowId": rule.flow_id,
        "triggerId": rule.trigger_id,
        "time": SCHEDULED_TIME,
    })
    .to_string()
}

/// A schedule's definition, as far as Kite sets it: what is compared before an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub expression: String,
    pub timezone: Option<String>,
    pub enabled: bool,
    /// `FlexibleTimeWindow` is `OFF`: the schedule fires at its minute.
    pub exact: bool,
    pub target_arn: String,
    pub role_arn: String,
    pub input: Option<String>,
    /// (`MaximumRetryAttempts`, `MaximumEventAgeInSeconds`).
    pub retry: Option<(i32, i32)>,
    pub dead_letter_arn: Option<String>,
}

/// What `ListSchedules` tells of a schedule (its expression and input need a `GetSchedule`).
#[derive(Debug, Clone)]
struct Listed {
    enabled: bool,
    target_arn: Option<String>,
    modified: Option<DateTime<Utc>>,
}

/// The schedules of Schedule triggers, in one EventBridge Scheduler group.
#[derive(Debug, Clone)]
pub struct SchedulerSchedules {
    client: aws_sdk_scheduler::Client,
    group: String,
    /// The scheduler function; that function itself learns it from its invocations
    /// ([`SchedulerSchedules::target_if_unset`]).
    function_arn: OnceLock<String>,
    role_arn: Option<String>,
    dead_letter_arn: Option<String>,
}

fn is_code<E: ProvideErrorMetadata>(e: &E, code: &str) -> bool {
    e.code() == Some(code)
}

fn chrono_time(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// Sets a schedule's whole definition on a create or an update request: the SDK's two
/// builders are distinct types with the same setters.
macro_rules! definition {
    ($this:expr, $request:expr, $name:expr, $want:expr, $description:expr) => {
        $request
            .group_name(&$this.group)
            .name($name)
            .description($description)
            .schedule_expression(&$want.expression)
            .set_schedule_expression_timezone($want.timezone.clone())
            .state(Self::state($want))
            .flexible_time_window(Self::window()?)
            .target(Self::target($want)?)
    };
}

impl SchedulerSchedules {
    pub fn new(
        client: aws_sdk_scheduler::Client,
        group: String,
        function_arn: Option<String>,
        role_arn: Option<String>,
        dead_letter_arn: Option<String>,
    ) -> Self {
        let cell = OnceLock::new();
        if let Some(arn) = function_arn {
            let _ = cell.set(arn);
        }
        SchedulerSchedules {
            client,
            group,
            function_arn: cell,
            role_arn,
            dead_letter_arn,
        }
    }

    pub fn client(&self) -> &aws_sdk_scheduler::Client {
        &self.client
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    /// Sets the target from an ARN the scheduler function was invoked by (its own; a
    /// version or alias qualifier is dropped), unless `SCHEDULER_FUNCTION_ARN` set it: a
    /// function cannot name its own ARN in its environment (template.yaml would be circular).
    pub fn target_if_unset(&self, invoked_arn: &str) {
        // arn:partition:lambda:region:account:function:name[:qualifier]
        let unqualified: Vec<&str> = invoked_arn.split(':').take(7).collect();
        if unqualified.len() == 7 && unqualified[2] == "lambda" {
            let _ = self.function_arn.set(unqualified.join(":"));
        }
    }

    /// The definition Kite wants for `rule`'s expression `expression`.
    fn wanted(&self, rule: &ScheduleRule, expression: &str) -> Result<Definition, StoreError> {
        let target_arn = self.function_arn.get().ok_or_else(|| {
            StoreError::Backend("SCHEDULER_FUNCTION_ARN is not set: cannot register Schedule triggers".into())
        })?;
        let role_arn = self.role_arn.as_ref().ok_or_else(|| {
            StoreError::Backend(
                "KITE_SCHEDULER_ROLE_ARN is not set: cannot register Schedule triggers".into(),
            )
        })?;
        Ok(Definition {
            expression: expression.to_string(),
            timezone: Some("UTC".into()),
            enabled: rule.enabled,
            exact: true,
            target_arn: target_arn.clone(),
            role_arn: role_arn.clone(),
            input: Some(schedule_input(rule)),
            retry: Some((RETRY_ATTEMPTS, MAX_EVENT_AGE_SECONDS)),
            dead_letter_arn: self.dead_letter_arn.clone(),
        })
    }

    /// Schedule name → definition wanted for `rules`.
    fn desired(&self, rules: &[ScheduleRule]) -> Result<HashMap<String, (Definition, String)>, StoreError> {
        let mut out = HashMap::new();
        for rule in rules {
            for (i, expression) in rule.expressions.iter().enumerate() {
                let description = format!(
                    "Kite Schedule trigger {}.{}.{}",
                    rule.namespace, rule.flow_id, rule.trigger_id
                );
                out.insert(
                    schedule_name(&rule.namespace, &rule.flow_id, &rule.trigger_id, i),
                    (
                        self.wanted(rule, expression)?,
                        description.chars().take(512).collect(),
                    ),
                );
            }
        }
        Ok(out)
    }

    /// The group's schedules (those whose name starts with `prefix`).
    async fn list(&self, prefix: Option<&str>) -> Result<HashMap<String, Listed>, StoreError> {
        let mut out = HashMap::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_schedules()
                .group_name(&self.group)
                .set_name_prefix(prefix.map(str::to_string))
                .max_results(LIST_PAGE)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(sdk)?;
            for s in page.schedules() {
                // Only this group (and prefix) counts, whatever the server answers: a schedule
                // outside them is never Kite's to update or delete.
                let (Some(name), group) = (s.name(), s.group_name()) else {
                    continue;
                };
                if group.is_some_and(|g| g != self.group) || prefix.is_some_and(|p| !name.starts_with(p)) {
                    continue;
                }
                out.insert(
                    name.to_string(),
                    Listed {
                        enabled: s.state() != Some(&ScheduleState::Disabled),
                        target_arn: s.target().map(|t| t.arn().to_string()),
                        modified: s.last_modification_date().and_then(chrono_time),
                    },
                );
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
    }

    /// A registered schedule's definition, `None` if there is none by that name.
    pub async fn definition(&self, name: &str) -> Result<Option<Definition>, StoreError> {
        let out = match self
            .client
            .get_schedule()
            .group_name(&self.group)
            .name(name)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if is_code(&e, "ResourceNotFoundException") => return Ok(None),
            Err(e) => return Err(sdk(e)),
        };
        let target = out.target();
        Ok(Some(Definition {
            expression: out.schedule_expression().unwrap_or_default().to_string(),
            timezone: out.schedule_expression_timezone().map(str::to_string),
            enabled: out.state() != Some(&ScheduleState::Disabled),
            exact: out
                .flexible_time_window()
                .is_some_and(|w| *w.mode() == FlexibleTimeWindowMode::Off),
            target_arn: target.map(|t| t.arn().to_string()).unwrap_or_default(),
            role_arn: target.map(|t| t.role_arn().to_string()).unwrap_or_default(),
            input: target.and_then(|t| t.input()).map(str::to_string),
            retry: target
                .and_then(|t| t.retry_policy())
                .and_then(|r| Some((r.maximum_retry_attempts()?, r.maximum_event_age_in_seconds()?))),
            dead_letter_arn: target
                .and_then(|t| t.dead_letter_config())
                .and_then(|d| d.arn())
                .map(str::to_string),
        }))
    }

    /// Every schedule of one flow: name → definition.
    pub async fn flow_schedules(
        &self,
        namespace: &str,
        flow_id: &str,
    ) -> Result<BTreeMap<String, Definition>, StoreError> {
        let mut out = BTreeMap::new();
        for name in self
            .list(Some(&flow_schedule_prefix(namespace, flow_id)))
            .await?
            .into_keys()
        {
            if let Some(d) = self.definition(&name).await? {
                out.insert(name, d);
            }
        }
        Ok(out)
    }

    /// Every schedule name of the group.
    pub async fn names(&self) -> Result<Vec<String>, StoreError> {
        let mut names: Vec<String> = self.list(None).await?.into_keys().collect();
        names.sort();
        Ok(names)
    }

    fn target(want: &Definition) -> Result<Target, StoreError> {
        Target::builder()
            .arn(&want.target_arn)
            .role_arn(&want.role_arn)
            .set_input(want.input.clone())
            .set_retry_policy(want.retry.map(|(attempts, age)| {
                RetryPolicy::builder()
                    .maximum_retry_attempts(attempts)
                    .maximum_event_age_in_seconds(age)
                    .build()
            }))
            .set_dead_letter_config(
                want.dead_letter_arn
                    .as_ref()
                    .map(|arn| DeadLetterConfig::builder().arn(arn).build()),
            )
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))
    }

    fn window() -> Result<FlexibleTimeWindow, StoreError> {
        FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))
    }

    fn state(want: &Definition) -> ScheduleState {
        if want.enabled {
            ScheduleState::Enabled
        } else {
            ScheduleState::Disabled
        }
    }

    async fn create(&self, name: &str, want: &Definition, description: &str) -> Result<(), StoreError> {
        let sent = definition!(self, self.client.create_schedule(), name, want, description)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            // Created meanwhile (a concurrent save of the same flow): make it this one.
            Err(e) if is_code(&e, "ConflictException") => self.update(name, want, description).await,
            Err(e) => Err(sdk(e)),
        }
    }

    /// `UpdateSchedule` replaces the whole definition: everything is sent again.
    async fn update(&self, name: &str, want: &Definition, description: &str) -> Result<(), StoreError> {
        definition!(self, self.client.update_schedule(), name, want, description)
            .send()
            .await
            .map(|_| ())
            .map_err(sdk)
    }

    async fn delete(&self, name: &str) -> Result<(), StoreError> {
        match self
            .client
            .delete_schedule()
            .group_name(&self.group)
            .name(name)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_code(&e, "ResourceNotFoundException") => Ok(()),
            Err(e) => Err(sdk(e)),
        }
    }

    /// Makes the listed schedules `desired`: creates the missing ones, updates those whose
    /// definition differs (what `ListSchedules` shows first, then a `GetSchedule` each),
    /// deletes the others. Schedules written at or after `settled_before` are left alone.
    /// Goes on past a failure and returns the first one.
    async fn apply(
        &self,
        listed: HashMap<String, Listed>,
        desired: HashMap<String, (Definition, String)>,
        settled_before: Option<DateTime<Utc>>,
    ) -> Result<SyncReport, StoreError> {
        let mut report = SyncReport {
            found: listed.len(),
            ..SyncReport::default()
        };
        let mut first_error: Option<StoreError> = None;
        let mut keep = |result: Result<(), StoreError>, count: &mut usize| match result {
            Ok(()) => *count += 1,
            Err(e) => {
                first_error.get_or_insert(e);
            }
        };
        let recent = |l: &Listed| settled_before.is_some_and(|before| l.modified.is_none_or(|m| m >= before));
        let mut compare = Vec::new();
        for (name, (want, description)) in &desired {
            match listed.get(name) {
                None => keep(self.create(name, want, description).await, &mut report.created),
                Some(l) if recent(l) => report.recent += 1,
                Some(l) if l.enabled != want.enabled || l.target_arn.as_ref() != Some(&want.target_arn) => {
                    keep(self.update(name, want, description).await, &mut report.updated)
                }
                Some(_) => compare.push(name.clone()),
            }
        }
        // The expression, input and retry settings are not listed: read each definition.
        let mut reads = JoinSet::new();
        let mut pending = compare.into_iter();
        loop {
            while reads.len() < GET_CONCURRENCY {
                let Some(name) = pending.next() else { break };
                let this = self.clone();
                reads.spawn(async move {
                    let found = this.definition(&name).await;
                    (name, found)
                });
            }
            let Some(joined) = reads.join_next().await else {
                break;
            };
            let (name, found) = joined.map_err(|e| StoreError::Backend(e.to_string()))?;
            let (want, description) = &desired[&name];
            match found {
                Ok(Some(have)) if have == *want => {}
                Ok(Some(_)) => keep(self.update(&name, want, description).await, &mut report.updated),
                // Deleted since the list.
                Ok(None) => keep(self.create(&name, want, description).await, &mut report.created),
                Err(e) => keep(Err(e), &mut report.updated),
            }
        }
        for (name, l) in &listed {
            if desired.contains_key(name) {
                continue;
            }
            if recent(l) {
                report.recent += 1;
            } else {
                keep(self.delete(name).await, &mut report.deleted);
            }
        }
        first_error.map_or(Ok(report), Err)
    }
}

#[async_trait]
impl ScheduleRegistry for SchedulerSchedules {
    async fn sync_flow(
        &self,
        namespace: &str,
        flow_id: &str,
        rules: &[ScheduleRule],
    ) -> Result<(), StoreError> {
        let desired = self.desired(rules)?;
        let listed = self.list(Some(&flow_schedule_prefix(namespace, flow_id))).await?;
        self.apply(listed, desired, None).await.map(|_| ())
    }

    async fn sync_all(
        &self,
        rules: &[ScheduleRule],
        settled_before: DateTime<Utc>,
    ) -> Result<SyncReport, StoreError> {
        let desired = self.desired(rules)?;
        let listed = self.list(None).await?;
        self.apply(listed, desired, Some(settled_before)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_names_fit_and_stay_apart() {
        let long = "a".repeat(300);
        let n = schedule_name(&long, &long, &long, 0);
        assert!(n.len() <= MAX_NAME, "{n}");
        assert!(n.starts_with(&flow_schedule_prefix(&long, &long)));
        assert_ne!(
            schedule_name("ns", "f", "t1", 0),
            schedule_name("ns", "f", "t2", 0)
        );
        assert_ne!(schedule_name("ns", "f", "t", 0), schedule_name("ns", "f", "t", 1));
        assert_ne!(
            schedule_name("ns.a", "f", "t", 0),
            schedule_name("ns", "a.f", "t", 0)
        );
        let odd = schedule_name("ns", "f lo/w", "tr!g", 0);
        assert!(odd
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-'));
    }

    #[test]
    fn the_input_carries_the_trigger_and_the_scheduled_time() {
        let rule = ScheduleRule {
            namespace: "company.\"team\"".into(),
            flow_id: "nightly".into(),
            trigger_id: "daily".into(),
            expressions: vec!["cron(0 2 * * ? *)".into()],
            enabled: true,
        };
        let input = schedule_input(&rule);
        assert_eq!(
            input,
            r#"{"namespace":"company.\"team\"","flowId":"nightly","triggerId":"daily","time":"<aws.scheduler.scheduled-time>"}"#
        );
        // What the scheduler function reads once EventBridge Scheduler filled in the time.
        let delivered: serde_json::Value =
            serde_json::from_str(&input.replace(SCHEDULED_TIME, "2026-01-01T02:00:00Z")).unwrap();
        assert_eq!(delivered["time"], "2026-01-01T02:00:00Z");
        assert!(chrono::DateTime::parse_from_rfc3339(delivered["time"].as_str().unwrap()).is_ok());
    }

    #[test]
    fn the_target_is_taken_from_an_invocation_only_when_unset() {
        let client = aws_sdk_scheduler::Client::from_conf(
            aws_sdk_scheduler::config::Builder::new()
                .behavior_version(aws_sdk_scheduler::config::BehaviorVersion::latest())
                .build(),
        );
        let unset = SchedulerSchedules::new(client.clone(), "kite".into(), None, None, None);
        unset.target_if_unset("arn:aws:lambda:eu-west-1:123456789012:function:kite-Scheduler-x:live");
        assert_eq!(
            unset.function_arn.get().map(String::as_str),
            Some("arn:aws:lambda:eu-west-1:123456789012:function:kite-Scheduler-x")
        );
        let set = SchedulerSchedules::new(client, "kite".into(), Some("arn:configured".into()), None, None);
        set.target_if_unset("arn:aws:lambda:eu-west-1:123456789012:function:other");
        assert_eq!(set.function_arn.get().map(String::as_str), Some("arn:configured"));
    }
}
