//! Which kind of event an invocation carries, decided from its JSON alone (Lambda gives no
//! type information), so that every function can answer any event with either a result or
//! an error naming the shape it expects. Once the shape is known, the event is read into
//! the typed structs of `aws_lambda_events` ([`records`]).

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::FnError;

/// The event shapes Kite's functions tell apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// API Gateway HTTP API, payload format 2.0.
    ApiGatewayV2,
    /// API Gateway REST API proxy integration (payload 1.0; also HTTP APIs set to 1.0).
    ApiGatewayV1,
    /// Application Load Balancer target.
    Alb,
    /// A direct `Invoke` creating an execution: `{"namespace", "flowId", ...}`.
    DirectInvoke,
    /// A Schedule trigger schedule's input: `{"namespace", "flowId", "triggerId", "time"?}`.
    ScheduleInput,
    /// An EventBridge scheduled event (`detail-type: Scheduled Event`), e.g. the sweeper's rule.
    ScheduledEvent,
    /// An SQS batch (`Records` with `eventSource: aws:sqs`).
    Sqs,
    /// A DynamoDB stream batch (`Records` with `eventSource: aws:dynamodb`).
    DynamoDbStream,
    /// An S3 event notification (`Records` with `eventSource: aws:s3`).
    S3,
    /// Anything else; the text says what was seen.
    Other(String),
}

impl Shape {
    /// What the shape is called in error messages.
    pub fn describe(&self) -> String {
        match self {
            Shape::ApiGatewayV2 => "an API Gateway HTTP API (v2) event".into(),
            Shape::ApiGatewayV1 => "an API Gateway REST API (v1) proxy event".into(),
            Shape::Alb => "an Application Load Balancer event".into(),
            Shape::DirectInvoke => "a direct invoke payload {namespace, flowId}".into(),
            Shape::ScheduleInput => "a schedule rule input {namespace, flowId, triggerId}".into(),
            Shape::ScheduledEvent => "an EventBridge scheduled event".into(),
            Shape::Sqs => "an SQS batch".into(),
            Shape::DynamoDbStream => "a DynamoDB stream batch".into(),
            Shape::S3 => "an S3 event notification".into(),
            Shape::Other(seen) => seen.clone(),
        }
    }

    /// Whether `lambda_http` can turn the event into an HTTP request.
    pub fn is_http(&self) -> bool {
        matches!(self, Shape::ApiGatewayV2 | Shape::ApiGatewayV1 | Shape::Alb)
    }
}

fn is_str(v: Option<&Value>) -> bool {
    v.is_some_and(Value::is_string)
}

/// Recognises the shape of an event.
pub fn detect(event: &Value) -> Shape {
    let Some(obj) = event.as_object() else {
        return Shape::Other(format!("a JSON {}", json_kind(event)));
    };
    if let Some(records) = obj.get("Records") {
        let source = records
            .as_array()
            .and_then(|r| r.first())
            .and_then(|r| r.get("eventSource").or_else(|| r.get("EventSource")))
            .and_then(Value::as_str);
        return match source {
            Some("aws:sqs") => Shape::Sqs,
            Some("aws:dynamodb") => Shape::DynamoDbStream,
            Some("aws:s3") => Shape::S3,
            Some(other) => Shape::Other(format!("a batch of `{other}` records")),
            None if records.as_array().is_some_and(Vec::is_empty) => {
                Shape::Other("an empty `Records` batch".into())
            }
            None => Shape::Other("`Records` without an eventSource".into()),
        };
    }
    if let Some(context) = obj.get("requestContext").and_then(Value::as_object) {
        if context.contains_key("elb") {
            return Shape::Alb;
        }
        if obj.get("version").and_then(Value::as_str) == Some("2.0") && context.contains_key("http") {
            return Shape::ApiGatewayV2;
        }
        if is_str(obj.get("httpMethod")) {
            return Shape::ApiGatewayV1;
        }
        return Shape::Other("an API Gateway event of an unsupported kind (WebSocket?)".into());
    }
    if obj.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
        || (obj.get("source").and_then(Value::as_str) == Some("aws.events") && obj.contains_key("detail"))
    {
        return Shape::ScheduledEvent;
    }
    if let (Some(kind), Some(source)) = (
        obj.get("detail-type").and_then(Value::as_str),
        obj.get("source").and_then(Value::as_str),
    ) {
        return Shape::Other(format!("an EventBridge `{kind}` event from {source}"));
    }
    if is_str(obj.get("namespace")) && is_str(obj.get("flowId")) {
        return if is_str(obj.get("triggerId")) {
            Shape::ScheduleInput
        } else {
            Shape::DirectInvoke
        };
    }
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).take(5).collect();
    keys.sort_unstable();
    Shape::Other(if keys.is_empty() {
        "an empty JSON object".into()
    } else {
        format!("a JSON object with keys [{}]", keys.join(", "))
    })
}

/// Answers the error naming `got` and what `function` expects unless the event is `wanted`.
pub(crate) fn expect(
    event: &Value,
    wanted: Shape,
    function: &'static str,
    expected: &'static str,
) -> Result<(), FnError> {
    match detect(event) {
        got if got == wanted => Ok(()),
        got => Err(FnError::UnexpectedShape {
            function,
            got: got.describe(),
            expected,
        }),
    }
}

/// Reads each of a batch's `Records` into `T`; a record that does not fit is an
/// `InvalidPayload` error naming its position.
pub(crate) fn records<T: DeserializeOwned>(event: Value, what: &'static str) -> Result<Vec<T>, FnError> {
    let records = match event {
        Value::Object(mut obj) => obj.remove("Records"),
        _ => None,
    };
    let Some(Value::Array(records)) = records else {
        return Err(FnError::InvalidPayload {
            what,
            message: "`Records` is not an array".into(),
        });
    };
    records
        .into_iter()
        .enumerate()
        .map(|(i, record)| {
            serde_json::from_value(record).map_err(|e| FnError::InvalidPayload {
                what,
                message: format!("Records[{i}]: {e}"),
            })
        })
        .collect()
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn detects_each_kind() {
        assert_eq!(
            detect(&json!({"Records": [{"eventSource": "aws:sqs"}]})),
            Shape::Sqs
        );
        assert_eq!(
            detect(&json!({"Records": [{"eventSource": "aws:dynamodb"}]})),
            Shape::DynamoDbStream
        );
        assert_eq!(
            detect(&json!({"Records": [{"eventSource": "aws:s3", "s3": {}}]})),
            Shape::S3
        );
        assert_eq!(
            detect(&json!({"version": "2.0", "requestContext": {"http": {"method": "GET"}}})),
            Shape::ApiGatewayV2
        );
        assert_eq!(
            detect(&json!({"httpMethod": "GET", "requestContext": {"stage": "prod"}})),
            Shape::ApiGatewayV1
        );
        assert_eq!(
            detect(&json!({"httpMethod": "GET", "requestContext": {"elb": {}}})),
            Shape::Alb
        );
        assert_eq!(
            detect(&json!({"detail-type": "Scheduled Event", "source": "aws.events"})),
            Shape::ScheduledEvent
        );
        assert_eq!(
            detect(&json!({"namespace": "a", "flowId": "b", "triggerId": "c"})),
            Shape::ScheduleInput
        );
        assert_eq!(
            detect(&json!({"namespace": "a", "flowId": "b"})),
            Shape::DirectInvoke
        );
        assert_eq!(
            detect(&json!({"detail-type": "Object Created", "source": "aws.s3", "detail": {}})),
            Shape::Other("an EventBridge `Object Created` event from aws.s3".into())
        );
        assert!(matches!(detect(&json!([1])), Shape::Other(s) if s == "a JSON array"));
        assert!(matches!(detect(&json!({"key1": 1})), Shape::Other(s) if s.contains("key1")));
        assert!(matches!(detect(&json!({"Records": []})), Shape::Other(s) if s.contains("empty")));
    }

    #[test]
    fn a_record_that_does_not_fit_names_its_position() {
        #[derive(Debug, serde::Deserialize)]
        struct R {
            #[allow(dead_code)]
            n: u32,
        }
        let err = records::<R>(json!({"Records": [{"n": 1}, {"n": "x"}]}), "test record").unwrap_err();
        assert!(
            matches!(&err, FnError::InvalidPayload { what: "test record", message } if message.starts_with("Records[1]: invalid type")),
            "{err}"
        );
        let err = records::<R>(json!({"Records": {}}), "test record").unwrap_err();
        assert_eq!(err.to_string(), "invalid test record: `Records` is not an array");
    }
}
