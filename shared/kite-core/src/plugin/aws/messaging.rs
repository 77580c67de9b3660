//! `io.kestra.plugin.aws.lambda.Invoke`, `io.kestra.plugin.aws.eventbridge.PutEvents`
//! and `io.kestra.plugin.aws.sqs.Publish`: the tasks that send something to another
//! service.

use serde_json::{json, Map, Value};

use super::super::props::Props;
use super::super::{IoCall, IoKind, IoTaskSpec, Property, Render};
use super::{finish, with_connection, AwsCall, AwsOp};
use crate::plugin::Check;

/// `lambda.Invoke`, rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct InvokeOp {
    pub function_arn: String,
    /// The JSON payload; none when `functionPayload` is absent or empty, as in Kestra.
    pub payload: Option<String>,
}

/// `eventbridge.PutEvents`, rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct PutEventsOp {
    pub entries: Source<EventEntry>,
    /// `failOnUnsuccessfulEvents` (default true).
    pub fail_on_unsuccessful: bool,
}

/// `sqs.Publish`, rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishOp {
    pub queue_url: String,
    pub messages: Source<SqsMessage>,
}

/// Items given in the flow, or a `kestra:///` Ion file of them (one JSON object a line).
#[derive(Debug, Clone, PartialEq)]
pub enum Source<T> {
    Items(Vec<T>),
    File(String),
}

/// One EventBridge event (Kestra's `Entry`; PascalCase names are accepted too).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventEntry {
    pub event_bus_name: Option<String>,
    pub source: Option<String>,
    pub detail_type: Option<String>,
    /// JSON text: a map is written as JSON, a string is kept.
    pub detail: Option<String>,
    pub resources: Vec<String>,
}

impl EventEntry {
    pub fn from_value(value: &Value) -> Result<EventEntry, String> {
        let Value::Object(map) = value else {
            return Err(format!("Invalid entry {value}: expected a map"));
        };
        let get = |camel: &str, pascal: &str| {
            map.get(camel)
                .or_else(|| map.get(pascal))
                .filter(|v| !v.is_null())
        };
        let text = |camel: &str, pascal: &str| {
            get(camel, pascal).map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        let resources = match get("resources", "Resources") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect(),
            Some(other) => return Err(format!("Invalid entry resources {other}: expected a list")),
        };
        Ok(EventEntry {
            event_bus_name: text("eventBusName", "EventBusName"),
            source: text("source", "Source"),
            detail_type: text("detailType", "DetailType"),
            detail: text("detail", "Detail"),
            resources,
        })
    }

    /// The entry as the output file shows it.
    pub fn to_value(&self) -> Value {
        json!({
            "eventBusName": self.event_bus_name,
            "source": self.source,
            "detailType": self.detail_type,
            "detail": self.detail,
            "resources": self.resources,
        })
    }
}

/// One SQS message (Kestra's `Message`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SqsMessage {
    /// The body: a string as is, anything else as JSON.
    pub data: String,
    pub group_id: Option<String>,
    pub deduplication_id: Option<String>,
    pub delay_seconds: Option<i32>,
}

impl SqsMessage {
    pub fn from_value(value: &Value) -> Result<SqsMessage, String> {
        let Value::Object(map) = value else {
            return Err(format!("Invalid message {value}: expected a map"));
        };
        let text = |name: &str| {
            map.get(name).filter(|v| !v.is_null()).map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        let delay_seconds = match map.get("delaySeconds").filter(|v| !v.is_null()) {
            None => None,
            Some(v) => Some(
                v.as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                    .and_then(|n| i32::try_from(n).ok())
                    .ok_or_else(|| format!("Invalid delaySeconds {v}: expected an integer"))?,
            ),
        };
        Ok(SqsMessage {
            data: text("data").unwrap_or_default(),
            group_id: text("groupId"),
            deduplication_id: text("deduplicationId"),
            delay_seconds,
        })
    }
}

/// Content types Kestra keeps from a Lambda answer; any other is binary.
const KNOWN_TYPES: &[&str] = &[
    "application/atom+xml",
    "application/x-www-form-urlencoded",
    "application/json",
    "application/octet-stream",
    "application/soap+xml",
    "application/svg+xml",
    "application/xhtml+xml",
    "application/xml",
    "image/bmp",
    "image/gif",
    "image/jpeg",
    "image/png",
    "image/svg+xml",
    "image/tiff",
    "image/webp",
    "multipart/form-data",
    "text/html",
    "text/plain",
    "text/xml",
];

/// The `contentType` output of `lambda.Invoke` from the answer's header.
pub fn lambda_content_type(header: Option<&str>) -> String {
    let Some(header) = header else {
        return "application/octet-stream".into();
    };
    let mut parts = header.split(';').map(str::trim);
    let mime = parts.next().unwrap_or("").to_ascii_lowercase();
    if !KNOWN_TYPES.contains(&mime.as_str()) {
        return "application/octet-stream".into();
    }
    match parts.find_map(|p| p.strip_prefix("charset=")) {
        Some(charset) => format!(
            "{mime}; charset={}",
            charset.trim_matches('"').to_ascii_uppercase()
        ),
        None => mime,
    }
}

/// Kestra's message for a function that answered with an error.
pub fn lambda_error(function_arn: &str, content_type: &str, payload: &[u8]) -> String {
    match std::str::from_utf8(payload) {
        Ok(text) if content_type.starts_with("application/json") => {
            format!("Lambda Invoke task responded with error for function: {function_arn}. Error: {text}")
        }
        _ => format!("Lambda Invoke task responded with error for function: {function_arn}"),
    }
}

const INVOKE: &[Property] = with_connection![
    Property::new("functionArn", Check::Required),
    Property::new("functionPayload", Check::Any),
];

const PUT_EVENTS: &[Property] = with_connection![
    Property::new("entries", Check::Required),
    Property::new("failOnUnsuccessfulEvents", Check::Any),
];

const PUBLISH: &[Property] = with_connection![
    Property::new("queueUrl", Check::Required),
    Property::new("from", Check::Required),
    Property::new("maxConcurrency", Check::Any),
    Property::new("connectionAcquisitionTimeout", Check::Any),
];

pub const TASKS: &[IoTaskSpec] = &[
    IoTaskSpec::new(
        IoKind::AwsLambdaInvoke,
        "io.kestra.plugin.aws.lambda.Invoke",
        INVOKE,
        prepare_invoke,
        finish,
    ),
    IoTaskSpec::new(
        IoKind::AwsEventBridgePutEvents,
        "io.kestra.plugin.aws.eventbridge.PutEvents",
        PUT_EVENTS,
        prepare_put_events,
        finish,
    ),
    IoTaskSpec::new(
        IoKind::AwsSqsPublish,
        "io.kestra.plugin.aws.sqs.Publish",
        PUBLISH,
        prepare_publish,
        finish,
    ),
];

fn call(p: &Props, op: AwsOp) -> Result<IoCall, String> {
    Ok(IoCall::Aws(AwsCall {
        connection: p.aws_connection()?,
        op,
    }))
}

fn prepare_invoke(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    let payload = p
        .object("functionPayload")?
        .filter(|m| !m.is_empty())
        .map(|m| Value::Object(m).to_string());
    let op = InvokeOp {
        function_arn: p.required("functionArn")?,
        payload,
    };
    call(&p, AwsOp::Lambda(op))
}

/// A `kestra:///` URI, or the list (or single map) of items.
fn source<T>(
    p: &Props,
    name: &str,
    item: fn(&Value) -> Result<T, String>,
    single: bool,
) -> Result<Source<T>, String> {
    match p.rendered_deep(name)? {
        Some(Value::String(text)) => {
            let text = text.trim();
            if text.starts_with("kestra://") {
                return Ok(Source::File(text.to_string()));
            }
            match serde_json::from_str::<Value>(text) {
                Ok(Value::Array(items)) => {
                    Ok(Source::Items(items.iter().map(item).collect::<Result<_, _>>()?))
                }
                Ok(value @ Value::Object(_)) if single => Ok(Source::Items(vec![item(&value)?])),
                _ => Err(format!(
                    "Invalid {name} parameter, must be a Kestra internal storage URI, or a list of {name}."
                )),
            }
        }
        Some(Value::Array(items)) => Ok(Source::Items(items.iter().map(item).collect::<Result<_, _>>()?)),
        Some(value @ Value::Object(_)) if single => Ok(Source::Items(vec![item(&value)?])),
        _ => Err(format!(
            "Invalid {name} parameter, must be a Kestra internal storage URI, or a list of {name}."
        )),
    }
}

fn prepare_put_events(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    let op = PutEventsOp {
        entries: source(&p, "entries", EventEntry::from_value, false)?,
        fail_on_unsuccessful: p.flag("failOnUnsuccessfulEvents", true)?,
    };
    call(&p, AwsOp::EventBridge(op))
}

fn prepare_publish(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    let op = PublishOp {
        queue_url: p.required("queueUrl")?,
        messages: source(&p, "from", SqsMessage::from_value, true)?,
    };
    call(&p, AwsOp::Sqs(op))
}
