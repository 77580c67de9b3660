//! Every function against every Lambda console test-event template (tests/lambda/events/):
//! each handles the event with a known answer, or answers an error naming the shape it got
//! and the one it expects. Then the shapes Kite really receives, run over the local adapters.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::dynamodb::EventRecord;
use chrono::{DateTime, Utc};
use kite_core::execution::{Execution, StateType};
use kite_engine::ports::WorkItem;
use kite_engine::{Engine, EngineConfig, EngineError};
use kite_lambda::api::Api;
use kite_lambda::dispatch::InFlight;
use kite_lambda::scheduler::Sweeper;
use kite_lambda::stream::{Change, Item};
use kite_lambda::worker::{Requeue, Worker};
use kite_lambda::{api, scheduler, stream, worker, FnError, Triggers};
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use serde_dynamo::AttributeValue;
use serde_json::{json, Value};
use tokio::time::Instant;

const TEMPLATES: [&str; 7] = [
    "hello-world",
    "apigateway-aws-proxy",
    "apigateway-http-api-proxy",
    "cloudwatch-scheduled-event",
    "dynamodb-update",
    "sqs-receive-message",
    "s3-put",
];

/// How an error message names the shape of each template.
fn shape_of(template: &str) -> &'static str {
    match template {
        "hello-world" => "a JSON object with keys [key1, key2, key3]",
        "apigateway-aws-proxy" => "an API Gateway REST API (v1) proxy event",
        "apigateway-http-api-proxy" => "an API Gateway HTTP API (v2) event",
        "cloudwatch-scheduled-event" => "an EventBridge scheduled event",
        "dynamodb-update" => "a DynamoDB stream batch",
        "sqs-receive-message" => "an SQS batch",
        "s3-put" => "an S3 event notification",
        other => panic!("no such template: {other}"),
    }
}

fn template(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/lambda/events")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixture is JSON")
}

const HELLO: &str = "id: hello-world\nnamespace: dev\ninputs:\n  - id: greeting\n    type: STRING\n    defaults: hello\ntasks:\n  - id: hello\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ trigger.body ?? inputs.greeting }}\"\ntriggers:\n  - id: webhook\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: test1234\n";

async fn engine(dir: &tempfile::TempDir) -> Engine {
    let engine = kite_local::open_engine(dir.path(), EngineConfig::default()).expect("engine");
    engine.create_flow(HELLO).await.expect("flow");
    engine
}

/// An execution of the hello-world flow, created without a worker (its start is queued).
async fn create_hello(engine: &Engine) -> Execution {
    engine
        .create_execution(kite_engine::CreateExecution {
            namespace: "dev".into(),
            flow_id: "hello-world".into(),
            ..Default::default()
        })
        .await
        .unwrap()
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<String>>,
}

#[async_trait]
impl Triggers for Recorder {
    async fn fire_schedule(
        &self,
        namespace: &str,
        flow_id: &str,
        trigger_id: &str,
        fired_at: DateTime<Utc>,
    ) -> Result<Vec<Execution>, EngineError> {
        self.calls.lock().unwrap().push(format!(
            "schedule {namespace}/{flow_id}/{trigger_id} {}",
            fired_at.to_rfc3339()
        ));
        Ok(Vec::new())
    }

    async fn execution_changed(
        &self,
        previous: Option<&Execution>,
        execution: &Execution,
    ) -> Result<(), EngineError> {
        self.calls.lock().unwrap().push(format!(
            "changed {} {:?} from {:?}",
            execution.id,
            execution.state.current,
            previous.map(|p| p.state.current)
        ));
        Ok(())
    }
}

/// Reads the `body` attribute of an image, as the DynamoDB store writes it.
struct Bodies;

#[async_trait]
impl stream::ExecutionImages for Bodies {
    async fn execution(&self, image: Item) -> Result<Option<Execution>, String> {
        match (image.get("body"), image.get("pk")) {
            (Some(AttributeValue::S(body)), _) => {
                serde_json::from_str(body).map(Some).map_err(|e| e.to_string())
            }
            (None, Some(AttributeValue::S(pk))) if pk == "EXEC#missing" => {
                Err("body stored elsewhere and unreadable".into())
            }
            _ => Ok(None),
        }
    }
}

#[async_trait]
impl Sweeper for Recorder {
    async fn sweep(&self, now: DateTime<Utc>) -> Result<usize, String> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("sweep {}", now.timestamp()));
        Ok(0)
    }
}

#[async_trait]
impl Requeue for Recorder {
    async fn requeue(&self, item: &WorkItem) -> Result<(), String> {
        self.calls.lock().unwrap().push(format!("requeue {}", item.id));
        Ok(())
    }
}

/// `function` refused `template` as a shape it does not handle: the error names the
/// template's shape and exactly what the function expects, as Lambda reports it.
fn assert_rejected(result: Result<Value, FnError>, function: &str, template: &str, expected: &str) {
    let err = match result {
        Err(e @ FnError::UnexpectedShape { .. }) => e,
        other => panic!("{function} x {template}: expected UnexpectedEventShape, got {other:?}"),
    };
    if let FnError::UnexpectedShape {
        function: f,
        got,
        expected: e,
    } = &err
    {
        assert_eq!((*f, got.as_str(), *e), (function, shape_of(template), expected));
    }
    let diagnostic = Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "UnexpectedEventShape");
    assert_eq!(
        diagnostic.error_message,
        format!(
            "the {function} function cannot handle {}; it expects {expected}",
            shape_of(template)
        )
    );
}

/// `result` is an `InvalidPayload` error with this message.
fn assert_invalid(result: Result<Value, FnError>, message: &str) {
    let err = result.expect_err(message);
    assert!(matches!(err, FnError::InvalidPayload { .. }), "{err:?}");
    let diagnostic = Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "InvalidPayload");
    assert_eq!(diagnostic.error_message, message);
}

/// An HTTP answer of Kestra's 404 for a path the router does not know (`href`: the
/// request's URL), in the response shape with these fields.
fn assert_not_found(result: Result<Value, FnError>, href: &str, fields: &[&str]) {
    let answer = result.unwrap_or_else(|e| panic!("{href}: {e}"));
    assert_eq!(answer["statusCode"], 404, "{answer}");
    assert_eq!(
        body_json(&answer),
        json!({"message": "Not Found: Page Not Found", "_links": {"self": {"href": href, "templated": false}}})
    );
    assert_eq!(keys(&answer), fields);
}

fn keys(answer: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = answer
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {answer}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

#[tokio::test]
async fn api_answers_every_console_template() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::new(engine(&dir).await, Default::default(), String::new());
    for name in TEMPLATES {
        let result = api
            .handle(LambdaEvent::new(template(name), Context::default()))
            .await;
        match name {
            // Real HTTP events of a path Kite does not serve (`POST /path/to/resource`):
            // Kestra's 404, in the response shape of the event's origin.
            "apigateway-aws-proxy" => assert_not_found(
                result,
                "https://1234567890.execute-api.us-east-1.amazonaws.com/path/to/resource?foo=bar",
                &[
                    "body",
                    "headers",
                    "isBase64Encoded",
                    "multiValueHeaders",
                    "statusCode",
                ],
            ),
            "apigateway-http-api-proxy" => assert_not_found(
                result,
                "https://id.execute-api.us-east-1.amazonaws.com/path/to/resource?parameter1=value1&parameter1=value2&parameter2=value",
                &[
                    "body",
                    "cookies",
                    "headers",
                    "isBase64Encoded",
                    "multiValueHeaders",
                    "statusCode",
                ],
            ),
            _ => assert_rejected(result, "api", name, api::EXPECTED),
        }
    }
}

#[tokio::test]
async fn worker_answers_every_console_template() {
    let dir = tempfile::tempdir().unwrap();
    let worker = Worker::new(engine(&dir).await, Arc::new(Recorder::default()));
    for name in TEMPLATES {
        let result = worker.handle(template(name), deadline()).await;
        if name == "sqs-receive-message" {
            // "Hello from SQS!" is not a work item: reported failed by its message id, so
            // that it ends in the dead-letter queue.
            let answer = result.unwrap();
            assert_eq!(
                answer,
                json!({"batchItemFailures": [{"itemIdentifier": "19dd0b57-b21e-4ac1-bd88-01bbb068cb78"}]})
            );
        } else {
            assert_rejected(result, "worker", name, worker::EXPECTED);
        }
    }
}

#[tokio::test]
async fn worker_refuses_messages_it_cannot_answer_for() {
    let dir = tempfile::tempdir().unwrap();
    let worker = Worker::new(engine(&dir).await, Arc::new(Recorder::default()));
    let mut mistyped = template("sqs-receive-message");
    mistyped["Records"][0]["messageId"] = json!(5);
    assert_invalid(
        worker.handle(mistyped, deadline()).await,
        "invalid SQS message: Records[0]: invalid type: integer `5`, expected a string",
    );
    let mut anonymous = template("sqs-receive-message");
    anonymous["Records"][0]
        .as_object_mut()
        .unwrap()
        .remove("messageId");
    assert_invalid(
        worker.handle(anonymous, deadline()).await,
        "invalid SQS message: Records[0]: no messageId",
    );
}

#[tokio::test]
async fn stream_answers_every_console_template() {
    let triggers = Recorder::default();
    let in_flight = InFlight::default();
    for name in TEMPLATES {
        let result = stream::handle(&Bodies, &triggers, &in_flight, template(name), deadline()).await;
        if name == "dynamodb-update" {
            // Items of another table: nothing to fire, nothing failed.
            assert_eq!(result.unwrap(), json!({"batchItemFailures": []}));
        } else {
            assert_rejected(result, "stream", name, stream::EXPECTED);
        }
    }
    assert!(triggers.calls.lock().unwrap().is_empty());
}

#[test]
fn the_console_stream_records_are_not_kite_changes() {
    let records: Vec<EventRecord> =
        serde_json::from_value(template("dynamodb-update")["Records"].clone()).unwrap();
    let changes: Vec<Change> = records.iter().map(stream::change_of).collect();
    assert_eq!(
        changes,
        [
            Change::Ignored("not a Kite item"),
            Change::Ignored("not a Kite item"),
            Change::Ignored("removal")
        ]
    );
}

#[tokio::test]
async fn stream_refuses_records_that_are_not_stream_records() {
    let (triggers, in_flight) = (Recorder::default(), InFlight::default());
    let mut bad_type = template("dynamodb-update");
    bad_type["Records"][1]["dynamodb"]["NewImage"]["Id"] = json!({"X": "101"});
    assert_invalid(
        stream::handle(&Bodies, &triggers, &in_flight, bad_type, deadline()).await,
        "invalid DynamoDB stream record: Records[1]: The key 'X' is not a known DynamoDB prefix",
    );
    let mut no_section = template("dynamodb-update");
    no_section["Records"][0]
        .as_object_mut()
        .unwrap()
        .remove("dynamodb");
    assert_invalid(
        stream::handle(&Bodies, &triggers, &in_flight, no_section, deadline()).await,
        "invalid DynamoDB stream record: Records[0]: missing field `dynamodb`",
    );
    assert!(triggers.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn scheduler_answers_every_console_template() {
    let recorder = Recorder::default();
    let in_flight = InFlight::default();
    for name in TEMPLATES {
        let result = scheduler::handle(&recorder, &recorder, &in_flight, template(name), deadline()).await;
        if name == "cloudwatch-scheduled-event" {
            // The sweeper's rate rule: the outbox is swept (nothing to send again here).
            assert_eq!(result.unwrap(), json!({"swept": 0}));
        } else {
            assert_rejected(result, "scheduler", name, scheduler::EXPECTED);
        }
    }
    let calls = recorder.calls.lock().unwrap();
    assert_eq!(calls.len(), 1);
    assert!(calls[0].starts_with("sweep "));
}

#[tokio::test]
async fn scheduler_refuses_a_scheduled_event_without_its_fields() {
    let recorder = Recorder::default();
    let in_flight = InFlight::default();
    let mut no_detail = template("cloudwatch-scheduled-event");
    no_detail.as_object_mut().unwrap().remove("detail");
    assert_invalid(
        scheduler::handle(&recorder, &recorder, &in_flight, no_detail, deadline()).await,
        "invalid EventBridge scheduled event: missing field `detail`",
    );
    let mut bad_time = template("cloudwatch-scheduled-event");
    bad_time["time"] = json!("yesterday");
    let err = scheduler::handle(&recorder, &recorder, &in_flight, bad_time, deadline())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid EventBridge scheduled event: input contains invalid characters"),
        "{err}"
    );
    assert!(recorder.calls.lock().unwrap().is_empty(), "nothing swept");
}

fn v2_event(method: &str, path: &str, query: &str, body: Option<&str>) -> Value {
    let mut event = template("apigateway-http-api-proxy");
    event["rawPath"] = json!(path);
    event["rawQueryString"] = json!(query);
    event["requestContext"]["http"]["method"] = json!(method);
    event["requestContext"]["http"]["path"] = json!(path);
    event["headers"] = json!({"content-type": "text/plain"});
    event["cookies"] = json!([]);
    event["queryStringParameters"] = Value::Null;
    event["pathParameters"] = Value::Null;
    event["isBase64Encoded"] = json!(false);
    event["body"] = body.map_or(Value::Null, |b| json!(b));
    event
}

/// The JSON of an answer's body. The console templates accept gzip, so an answer may be
/// compressed: then it is base64 in the event, as API Gateway wants binary bodies.
fn body_json(answer: &Value) -> Value {
    let body = answer["body"]
        .as_str()
        .unwrap_or_else(|| panic!("no body: {answer}"));
    // REST (v1) and ALB answers carry their headers as lists.
    let gzip = answer["headers"]["content-encoding"] == "gzip"
        || answer["multiValueHeaders"]["content-encoding"][0] == "gzip";
    assert_eq!(
        answer["isBase64Encoded"] == true,
        gzip,
        "base64 exactly when compressed: {answer}"
    );
    let text = if gzip {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body)
            .expect("base64 body");
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text)
            .expect("gzip body");
        text
    } else {
        body.to_string()
    };
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test]
async fn api_v2_creates_and_runs_an_execution_before_answering() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir).await;
    let api = Api::new(engine.clone(), Default::default(), String::new());
    // wait=true: the answer holds the terminated execution.
    let answer = api
        .handle(LambdaEvent::new(
            v2_event("POST", "/api/v1/executions/dev/hello-world", "wait=true", None),
            Context::default(),
        ))
        .await
        .unwrap();
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let execution = body_json(&answer);
    assert_eq!(execution["state"]["current"], "SUCCESS", "{execution}");

    // Without wait: the claimed light tasks still ran before the invocation returned.
    let answer = api
        .handle(LambdaEvent::new(
            v2_event(
                "POST",
                "/api/v1/executions/webhook/dev/hello-world/test1234",
                "",
                Some("hi there"),
            ),
            Context::default(),
        ))
        .await
        .unwrap();
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let id = body_json(&answer)["id"].as_str().unwrap().to_string();
    let done = engine.get_execution(&id).await.unwrap();
    assert_eq!(done.state.current, StateType::Success);
    let logs = engine
        .logs(&kite_engine::ports::LogQuery {
            execution_id: id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(logs.iter().any(|l| l.message == "hi there"), "{logs:?}");

    // A wrong webhook key is Kestra's 404, as the local server answers.
    let answer = api
        .handle(LambdaEvent::new(
            v2_event(
                "POST",
                "/api/v1/executions/webhook/dev/hello-world/nope",
                "",
                None,
            ),
            Context::default(),
        ))
        .await
        .unwrap();
    assert_eq!(answer["statusCode"], 404);
}

#[tokio::test]
async fn api_v1_and_alb_events_reach_the_router() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::new(engine(&dir).await, Default::default(), String::new());
    let mut v1 = template("apigateway-aws-proxy");
    v1["path"] = json!("/api/v1/flows/dev/hello-world");
    v1["httpMethod"] = json!("GET");
    v1["body"] = Value::Null;
    v1["isBase64Encoded"] = json!(false);
    v1["queryStringParameters"] = Value::Null;
    v1["multiValueQueryStringParameters"] = Value::Null;
    let answer = api
        .handle(LambdaEvent::new(v1, Context::default()))
        .await
        .unwrap();
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(body_json(&answer)["id"], "hello-world");

    let alb = json!({
        "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/lambda/abc"}},
        "httpMethod": "GET", "path": "/api/v1/flows/dev/hello-world", "queryStringParameters": {},
        "headers": {"host": "lb"}, "body": "", "isBase64Encoded": false
    });
    let answer = api
        .handle(LambdaEvent::new(alb, Context::default()))
        .await
        .unwrap();
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert!(
        answer.get("statusDescription").is_some(),
        "ALB answers carry a status description: {answer}"
    );
}

#[tokio::test]
async fn api_direct_invoke_answers_the_execution() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::new(engine(&dir).await, Default::default(), String::new());
    let payload = json!({"namespace": "dev", "flowId": "hello-world", "inputs": {"greeting": "hey"},
                         "labels": {"team": "data"}, "wait": true});
    let execution = api
        .handle(LambdaEvent::new(payload, Context::default()))
        .await
        .unwrap();
    assert_eq!(execution["state"]["current"], "SUCCESS", "{execution}");
    assert_eq!(execution["inputs"]["greeting"], "hey");
    assert!(execution["labels"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["key"] == "team"));

    let unknown = json!({"namespace": "dev", "flowId": "nope"});
    let err = api
        .handle(LambdaEvent::new(unknown, Context::default()))
        .await
        .unwrap_err();
    assert!(matches!(err, FnError::Engine(EngineError::NotFound(_))), "{err}");
    let typo = json!({"namespace": "dev", "flowId": "hello-world", "input": {}});
    let err = api
        .handle(LambdaEvent::new(typo, Context::default()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unknown field `input`"), "{err}");
}

#[tokio::test]
async fn worker_runs_queued_work_once_even_when_delivered_twice() {
    let dir = tempfile::tempdir().unwrap();
    // An engine without a dispatcher: the start waits in the queue, as after an SQS send.
    let creator = engine(&dir).await;
    let execution = create_hello(&creator).await;
    let items = creator
        .ports()
        .queue
        .lease(Utc::now(), 10, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(items.len(), 1);
    let record = |n: u32| {
        json!({"messageId": format!("m{n}"), "receiptHandle": "h", "body": serde_json::to_string(&items[0]).unwrap(),
               "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"})
    };
    let batch = json!({"Records": [record(1), record(2)]});
    let worker = Worker::new(creator.clone(), Arc::new(Recorder::default()));
    let answer = worker.handle(batch.clone(), deadline()).await.unwrap();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    let answer = worker.handle(batch, deadline()).await.unwrap();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    let done = creator.get_execution(&execution.id).await.unwrap();
    assert_eq!(done.state.current, StateType::Success);
    assert_eq!(
        done.task_run_list.as_ref().map(Vec::len),
        Some(1),
        "the task ran once"
    );
    let logs = creator
        .logs(&kite_engine::ports::LogQuery {
            execution_id: execution.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        logs.iter().filter(|l| l.message == "hello").count(),
        1,
        "{logs:?}"
    );
}

/// The crash-loop guard on AWS: the last delivery SQS makes before its dead-letter queue
/// fails the execution, saying why, instead of running the work again.
#[tokio::test]
async fn worker_gives_up_on_the_last_delivery_before_the_dead_letter_queue() {
    let dir = tempfile::tempdir().unwrap();
    let creator = engine(&dir).await;
    // Created before the worker installs its in-process fast path: the starts wait in the queue.
    let mut ids = Vec::new();
    for _ in 0..2 {
        ids.push(create_hello(&creator).await.id);
    }
    let worker = Worker::new(creator.clone(), Arc::new(Recorder::default()));
    for (id, receives) in ids.iter().zip([worker::MAX_RECEIVES - 1, worker::MAX_RECEIVES]) {
        let item = WorkItem::start(id, Utc::now());
        let batch = json!({"Records": [{"messageId": "m", "receiptHandle": "h", "body": serde_json::to_string(&item).unwrap(),
                           "attributes": {"ApproximateReceiveCount": receives.to_string()}, "eventSource": "aws:sqs"}]});
        assert_eq!(
            worker.handle(batch, deadline()).await.unwrap(),
            json!({"batchItemFailures": []})
        );
    }
    let ran = creator.get_execution(&ids[0]).await.unwrap();
    assert_eq!(ran.state.current, StateType::Success);
    let failed = creator.get_execution(&ids[1]).await.unwrap();
    assert_eq!(failed.state.current, StateType::Failed);
    let logs = creator
        .logs(&kite_engine::ports::LogQuery {
            execution_id: ids[1].clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let said: Vec<&str> = logs.iter().map(|l| l.message.as_str()).collect();
    assert!(
        said.iter()
            .any(|m| m.starts_with("Kite gave up on its start step: 4 earlier runs of it never finished")),
        "{said:?}"
    );
    assert!(!said.contains(&"hello"), "{said:?}");
}

#[tokio::test]
async fn worker_sends_back_items_due_later() {
    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let worker = Worker::new(engine(&dir).await, recorder.clone());
    let item = WorkItem {
        id: "later".into(),
        execution_id: "x".into(),
        due: Utc::now() + chrono::Duration::minutes(20),
        work: kite_engine::ports::Work::Start,
    };
    let batch = json!({"Records": [{"messageId": "m", "body": serde_json::to_string(&item).unwrap(), "eventSource": "aws:sqs"}]});
    assert_eq!(
        worker.handle(batch, deadline()).await.unwrap(),
        json!({"batchItemFailures": []})
    );
    assert_eq!(*recorder.calls.lock().unwrap(), vec!["requeue later".to_string()]);
}

fn stream_record(seq: &str, id: &str, old: Option<&str>, new: &str, execution: Option<&Execution>) -> Value {
    let mut image = json!({"pk": {"S": format!("EXEC#{id}")}, "sk": {"S": "EXEC"}, "state": {"S": new}, "version": {"N": "2"}});
    if let Some(e) = execution {
        image["body"] = json!({"S": serde_json::to_string(e).unwrap()});
    }
    let mut ddb = json!({"Keys": {"pk": {"S": format!("EXEC#{id}")}, "sk": {"S": "EXEC"}}, "NewImage": image,
                         "SequenceNumber": seq, "SizeBytes": 120, "StreamViewType": "NEW_AND_OLD_IMAGES"});
    if let Some(old) = old {
        ddb["OldImage"] =
            json!({"pk": {"S": format!("EXEC#{id}")}, "sk": {"S": "EXEC"}, "state": {"S": old}});
    }
    json!({"eventID": format!("e{seq}"), "eventName": if old.is_some() { "MODIFY" } else { "INSERT" },
           "eventVersion": "1.1", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1", "dynamodb": ddb})
}

#[tokio::test]
async fn stream_fires_flow_triggers_on_state_changes_only() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir).await;
    let api = Api::new(engine.clone(), Default::default(), String::new());
    let payload = json!({"namespace": "dev", "flowId": "hello-world", "wait": true});
    let done = api
        .handle(LambdaEvent::new(payload, Context::default()))
        .await
        .unwrap();
    let execution: Execution = serde_json::from_value(done).unwrap();
    let triggers = Recorder::default();
    let in_flight = InFlight::default();
    let batch = json!({"Records": [
        stream_record("1", &execution.id, Some("RUNNING"), "SUCCESS", Some(&execution)),
        // Same state (another attribute changed): not a trigger event.
        stream_record("2", &execution.id, Some("SUCCESS"), "SUCCESS", Some(&execution)),
        stream_record("3", &execution.id, None, "SUCCESS", Some(&execution)),
    ]});
    let answer = stream::handle(&Bodies, &triggers, &in_flight, batch, deadline())
        .await
        .unwrap();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    // The old images hold no body here, so the previous execution is unknown.
    let expected = format!("changed {} Success from None", execution.id);
    assert_eq!(*triggers.calls.lock().unwrap(), vec![expected.clone(), expected]);

    // An execution that cannot be read fails its record, reported for a retry from there
    // (the records after it are not run: Lambda retries the stream from the failed one).
    let batch = json!({"Records": [
        stream_record("7", "missing", Some("RUNNING"), "FAILED", None),
        stream_record("8", &execution.id, Some("RUNNING"), "SUCCESS", Some(&execution)),
    ]});
    let answer = stream::handle(&Bodies, &triggers, &in_flight, batch, deadline())
        .await
        .unwrap();
    assert_eq!(answer, json!({"batchItemFailures": [{"itemIdentifier": "7"}]}));
    assert_eq!(triggers.calls.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn scheduler_fires_the_named_trigger_at_the_event_time() {
    let recorder = Recorder::default();
    let in_flight = InFlight::default();
    let input = json!({"namespace": "dev", "flowId": "daily", "triggerId": "every-day", "time": "2026-11-29T03:00:00Z"});
    let answer = scheduler::handle(&recorder, &recorder, &in_flight, input, deadline())
        .await
        .unwrap();
    assert_eq!(answer, json!({"executions": []}));
    assert_eq!(
        *recorder.calls.lock().unwrap(),
        vec!["schedule dev/daily/every-day 2026-11-29T03:00:00+00:00".to_string()]
    );
    let bad = json!({"namespace": "dev", "flowId": "daily", "triggerId": "t", "time": "yesterday"});
    let err = scheduler::handle(&recorder, &recorder, &in_flight, bad, deadline())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("RFC 3339"), "{err}");
}

#[tokio::test]
async fn api_answers_before_the_deadline_when_a_webhook_waits_longer() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir).await;
    engine
        .create_flow(
            "id: slow\nnamespace: dev\ntasks:\n  - id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT1H\ntriggers:\n  - id: hook\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: k\n    wait: true\n",
        )
        .await
        .unwrap();
    let api = Api::new(engine, Default::default(), String::new());
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut context = Context::default();
    // The router is told to answer a second before the function's own bound, which would
    // cut the request off with a 504.
    context.deadline = now_ms + 4_000;
    // Bounded against a hang only: what the answer holds shows when it was given.
    let answer = tokio::time::timeout(
        Duration::from_secs(60),
        api.handle(LambdaEvent::new(
            v2_event("POST", "/api/v1/executions/webhook/dev/slow/k", "", None),
            context,
        )),
    )
    .await
    .expect("answered")
    .unwrap();
    // The webhook's wait ends in time (the router is told by when to answer): a 200, not the
    // 504 of the function's bound, with the execution as it is then, still running (its
    // Sleep lasts an hour); it goes on without this answer.
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(body_json(&answer)["state"]["current"], "RUNNING", "{answer}");
}

/// API Gateway v2 delivers a binary or non-text body base64-encoded: the signature is
/// checked over the decoded bytes, as the provider signed them, and a redelivery answers
/// with the first execution.
#[tokio::test]
async fn api_v2_verifies_a_signed_webhook_over_its_decoded_body() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir).await;
    engine
        .create_flow(
            "id: signed\nnamespace: dev\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ trigger.body }}\"\ntriggers:\n  - id: github\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: gh\n    signature:\n      preset: GITHUB\n      secret: \"It's a Secret to Everybody\"\n",
        )
        .await
        .unwrap();
    let api = Api::new(engine.clone(), Default::default(), String::new());
    let call = |signature: &str, delivery: &str| {
        // "Hello, World!", GitHub's documented test vector, base64-encoded by API Gateway.
        let mut event = v2_event(
            "POST",
            "/api/v1/executions/webhook/dev/signed/gh",
            "",
            Some("SGVsbG8sIFdvcmxkIQ=="),
        );
        event["isBase64Encoded"] = json!(true);
        event["headers"] = json!({
            "content-type": "application/octet-stream",
            "x-hub-signature-256": signature,
            "x-github-delivery": delivery,
        });
        api.handle(LambdaEvent::new(event, Context::default()))
    };
    let valid = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    let first = call(valid, "72d3162e-cc78-11e3-81ab-4c9367dc0958").await.unwrap();
    assert_eq!(first["statusCode"], 200, "{first}");
    let first = body_json(&first);
    assert_eq!(first["trigger"]["variables"]["body"], "Hello, World!");
    let again = call(valid, "72d3162e-cc78-11e3-81ab-4c9367dc0958").await.unwrap();
    assert_eq!(again["statusCode"], 200, "{again}");
    assert_eq!(body_json(&again)["id"], first["id"]);

    // Signed over the base64 text instead of the bytes it stands for (openssl): refused.
    let over_the_text = "sha256=ee8db6605e2915dc9f8da3ed1e260d2cbdcbadfeaec192660ead09acf4f9b20f";
    let refused = call(over_the_text, "another-delivery").await.unwrap();
    assert_eq!(refused["statusCode"], 401, "{refused}");
    assert_eq!(
        body_json(&refused)["message"],
        "Unauthorized: Invalid webhook signature"
    );
    let stored = engine
        .search_executions(&kite_engine::ports::ExecutionQuery {
            namespace: Some("dev".into()),
            flow_id: Some("signed".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(stored.total, 1);
}
