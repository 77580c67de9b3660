//! Kestra's AWS tasks (`io.kestra.plugin.aws.*`): S3 ([`s3`]), DynamoDB ([`dynamodb`]),
//! Lambda, EventBridge and SQS ([`messaging`]), with Kestra's properties, defaults,
//! outputs and messages. `prepare` renders a task into an [`AwsCall`]: the connection
//! every task shares ([`AwsConnection`]) and the operation. The worker makes the call
//! with the AWS SDK and answers with the outputs, or an [`AwsError`] that names the
//! service, the resource and the SDK's error code and message.

pub mod dynamodb;
pub mod messaging;
pub mod s3;

use std::fmt;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::props::Props;
use super::{IoAnswer, IoCall, TaskRunContext};
use crate::execution::{LogLevel, StateType, TaskResult};

/// The connection properties every AWS task has (Kestra's `AbstractConnection`), listed
/// before a task's own by [`with_connection!`].
macro_rules! with_connection {
    ($($property:expr),* $(,)?) => {
        &[
            $crate::plugin::Property::new("region", $crate::plugin::Check::Any),
            $crate::plugin::Property::new("accessKeyId", $crate::plugin::Check::Any),
            $crate::plugin::Property::new("secretKeyId", $crate::plugin::Check::Any),
            $crate::plugin::Property::new("sessionToken", $crate::plugin::Check::Any),
            $crate::plugin::Property::new("endpointOverride", $crate::plugin::Check::Any),
            $crate::plugin::Property::new("forcePathStyle", $crate::plugin::Check::Any),
            $crate::plugin::Property::new("compatibilityMode", $crate::plugin::Check::Any),
            $crate::plugin::Property::new("stsRoleArn", $crate::plugin::Check::Any),
            $crate::plugin::Property::new("stsRoleExternalId", $crate::plugin::Check::Any),
            $crate::plugin::Property::new("stsRoleSessionName", $crate::plugin::Check::Any),
            $crate::plugin::Property::new("stsRoleSessionDuration", $crate::plugin::Check::Any),
            $crate::plugin::Property::new("stsEndpointOverride", $crate::plugin::Check::Any),
            $($property),*
        ]
    };
}
pub(crate) use with_connection;

/// Where and as whom a task calls AWS. Absent values come from the worker's environment
/// (the SDK's default chain: `AWS_REGION`, the role's credentials, `AWS_ENDPOINT_URL`).
/// The worker keeps one set of clients per distinct connection.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct AwsConnection {
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_key_id: Option<String>,
    pub session_token: Option<String>,
    pub endpoint_override: Option<String>,
    /// S3 path-style addressing: `forcePathStyle`, or any endpoint override (emulators).
    pub force_path_style: bool,
}

impl fmt::Debug for AwsConnection {
    // The keys stay out of debug output and logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsConnection")
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id.as_ref().map(|_| "******"))
            .field("endpoint_override", &self.endpoint_override)
            .field("force_path_style", &self.force_path_style)
            .finish()
    }
}

/// One AWS task run, rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsCall {
    pub connection: AwsConnection,
    pub op: AwsOp,
}

impl AwsCall {
    /// The internal storage files the call sends to AWS.
    pub fn files_read(&self) -> Vec<&str> {
        match &self.op {
            AwsOp::S3(s3::S3Op::Upload { files, .. }) => files.iter().map(|(_, uri)| uri.as_str()).collect(),
            AwsOp::Sqs(messaging::PublishOp {
                messages: messaging::Source::File(uri),
                ..
            })
            | AwsOp::EventBridge(messaging::PutEventsOp {
                entries: messaging::Source::File(uri),
                ..
            }) => vec![uri.as_str()],
            _ => Vec::new(),
        }
    }
}

/// The operation of an [`AwsCall`], by service.
#[derive(Debug, Clone, PartialEq)]
pub enum AwsOp {
    S3(s3::S3Op),
    DynamoDb(dynamodb::DynamoDbOp),
    Lambda(messaging::InvokeOp),
    EventBridge(messaging::PutEventsOp),
    Sqs(messaging::PublishOp),
}

/// What a successful call gives the task run: its outputs, and WARN lines (a
/// truncated listing, events EventBridge refused…); `warning` ends it in WARNING.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AwsOutcome {
    pub outputs: IndexMap<String, Value>,
    pub warnings: Vec<String>,
    pub warning: bool,
}

/// Why an AWS task failed: the FAILED task run's ERROR line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwsError {
    /// The service refused or could not be reached: which service, operation and
    /// resource, and the SDK's error code and message.
    #[error("{service} {operation} failed on {target}: {reason}")]
    Service {
        service: &'static str,
        operation: &'static str,
        target: String,
        reason: String,
    },
    /// An internal storage file could not be read or written.
    #[error(transparent)]
    Storage(#[from] super::storage::StorageError),
    /// The task's own message (Kestra's, where it has one).
    #[error("{0}")]
    Task(String),
}

/// The result of an AWS task run from the worker's answer.
pub(crate) fn finish(
    call: &IoCall,
    answer: IoAnswer,
    task_run: &TaskRunContext,
    now: DateTime<Utc>,
) -> TaskResult {
    let (IoCall::Aws(_), IoAnswer::Aws(answer)) = (call, answer) else {
        return task_run.failed("The worker answered another kind of call", now);
    };
    match answer {
        Err(e) => task_run.failed(e.to_string(), now),
        Ok(outcome) => {
            let state = if outcome.warning {
                StateType::Warning
            } else {
                StateType::Success
            };
            let mut result = task_run.result(state, outcome.outputs);
            for line in outcome.warnings {
                result.logs.extend(task_run.log(LogLevel::Warn, line, now));
            }
            result
        }
    }
}

impl Props<'_> {
    /// The connection properties; `stsRoleArn` is refused (Kite does not assume roles).
    pub(crate) fn aws_connection(&self) -> Result<AwsConnection, String> {
        if let Some(role) = self.rendered("stsRoleArn")?.filter(|r| !r.trim().is_empty()) {
            return Err(format!(
                "stsRoleArn '{role}' is not supported: give accessKeyId/secretKeyId (and sessionToken), \
                 or leave them out to use the worker's own role"
            ));
        }
        let text = |name: &str| -> Result<Option<String>, String> {
            Ok(self
                .rendered(name)?
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty()))
        };
        let endpoint_override = text("endpointOverride")?;
        if let Some(endpoint) = &endpoint_override {
            reject_link_local(endpoint)?;
        }
        let access_key_id = text("accessKeyId")?;
        let secret_key_id = text("secretKeyId")?;
        // Kestra uses static credentials only when both keys are given.
        let (access_key_id, secret_key_id, session_token) = match (access_key_id, secret_key_id) {
            (Some(key), Some(secret)) => (Some(key), Some(secret), text("sessionToken")?),
            _ => (None, None, None),
        };
        Ok(AwsConnection {
            region: text("region")?,
            access_key_id,
            secret_key_id,
            session_token,
            force_path_style: endpoint_override.is_some() || self.flag("forcePathStyle", false)?,
            endpoint_override,
        })
    }

    /// A property whose strings are rendered wherever they are in it (maps and lists
    /// keep their shape, as Kestra renders a map property).
    pub(crate) fn rendered_deep(&self, name: &str) -> Result<Option<Value>, String> {
        match self.properties.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => self.render_deep(value).map(Some),
        }
    }

    pub(crate) fn render_deep(&self, value: &Value) -> Result<Value, String> {
        Ok(match value {
            Value::String(_) => Value::String(self.render_value(value)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.render_deep(v))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.render_deep(v)?)))
                    .collect::<Result<Map<String, Value>, String>>()?,
            ),
            other => other.clone(),
        })
    }

    /// A map property: a YAML map (rendered deep) or a string rendering to a JSON object.
    pub(crate) fn object(&self, name: &str) -> Result<Option<Map<String, Value>>, String> {
        match self.rendered_deep(name)? {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
            Some(Value::String(text)) => match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(map)) => Ok(Some(map)),
                _ => Err(format!(
                    "Invalid property '{name}': expected a map or a JSON object, got '{text}'"
                )),
            },
            Some(other) => Err(format!("Invalid property '{name}': expected a map, got {other}")),
        }
    }

    /// A whole number property.
    pub(crate) fn integer(&self, name: &str) -> Result<Option<i64>, String> {
        match self.rendered(name)? {
            None => Ok(None),
            Some(text) => text
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| format!("Invalid value '{text}' for property '{name}': expected an integer")),
        }
    }
}

/// Kestra refuses endpoints on the link-local range of instance metadata services.
fn reject_link_local(endpoint: &str) -> Result<(), String> {
    let host = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest)
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    match host.parse::<std::net::Ipv4Addr>() {
        Ok(ip) if ip.octets()[..2] == [169, 254] => Err(format!(
            "Endpoint override '{endpoint}' resolves to a link-local address (169.254.0.0/16), \
             which is used by cloud instance-metadata services and is not allowed for security reasons."
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
