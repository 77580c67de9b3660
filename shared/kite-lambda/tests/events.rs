//! Every function against every Lambda console test-event template (tests/lambda/events/):
//! each either handles the event or answers an error naming the shape it expects. Then the
//! shapes Kite really receives, run over the local adapters.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kite_core::execution::{Execution, StateType};
use kite_engine::ports::WorkItem;
use kite_engine::{Engine, EngineConfig, EngineError};
use kite_lambda::api::Api;
use kite_lambda::dispatch::InFlight;
use kite_lambda::scheduler::Sweeper;
use kite_lambda::worker::{Requeue, Worker};
use kite_lambda::{scheduler, stream, FnError, Triggers};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{json, Value};
use tokio::time::Instant;

const TEMPLATES: [&str; 6] = [
    "hello-world",
    "apigateway-aws-proxy",
    "apigateway-http-api-proxy",
    "cloudwatch-scheduled-event",
    "dynamodb-update",
    "sqs-receive-message",
];

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
    async fn execution(&self, image: &Value) -> Result<Option<Execution>, String> {
        match image.pointer("/body/S").and_then(Value::as_str) {
            Some(body) => serde_json::from_str(body).map(Some).map_err(|e| e.to_string()),
            None if image
                .pointer("/pk/S")
                .is_some_and(|pk| pk.as_str() == Some("EXEC#missing")) =>
            {
                Err("body stored elsewhere and unreadable".into())
            }
            None => Ok(None),
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

fn assert_shape_error(result: Result<Value, FnError>, function: &str, expected: &str) {
    match result {
        Err(e @ FnError::UnexpectedShape { .. }) => {
            let text = e.to_string();
            assert!(text.contains(function) && text.contains(expected), "{text}");
        }
        other => panic!("{function}: expected a shape error, got {other:?}"),
    }
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
            // Real HTTP events of an unknown path: Kestra's 404, in the event's response shape.
            "apigateway-aws-proxy" | "apigateway-http-api-proxy" => {
                let answer = result.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(answer["statusCode"], 404, "{name}: {answer}");
            }
            _ => assert_shape_error(result, "api", "API Gateway"),
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
            // Not a work item: reported failed so it ends in the dead-letter queue.
            let answer = result.unwrap();
            assert_eq!(
                answer,
                json!({"batchItemFailures": [{"itemIdentifier": "19dd0b57-b21e-4ac1-bd88-01bbb068cb78"}]})
            );
        } else {
            assert_shape_error(result, "worker", "SQS batch");
        }
    }
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
            assert_shape_error(result, "stream", "DynamoDB stream batch");
        }
    }
    assert!(triggers.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn scheduler_answers_every_console_template() {
    let recorder = Recorder::default();
    let in_flight = InFlight::default();
    for name in TEMPLATES {
        let result = scheduler::handle(&recorder, &recorder, &in_flight, template(name), deadline()).await;
        if name == "cloudwatch-scheduled-event" {
            assert_eq!(result.unwrap(), json!({"swept": 0}));
        } else {
            assert_shape_error(result, "scheduler", "schedule rule input");
        }
    }
    let calls = recorder.calls.lock().unwrap();
    assert_eq!(calls.len(), 1);
    assert!(calls[0].starts_with("sweep "));
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

fn body_json(answer: &Value) -> Value {
    let text = answer["body"]
        .as_str()
        .unwrap_or_else(|| panic!("no body: {answer}"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
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
    let execution = creator
        .create_execution(kite_engine::CreateExecution {
            namespace: "dev".into(),
            flow_id: "hello-world".into(),
            ..Default::default()
        })
        .await
        .unwrap();
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
                         "SequenceNumber": seq, "StreamViewType": "NEW_AND_OLD_IMAGES"});
    if let Some(old) = old {
        ddb["OldImage"] =
            json!({"pk": {"S": format!("EXEC#{id}")}, "sk": {"S": "EXEC"}, "state": {"S": old}});
    }
    json!({"eventName": if old.is_some() { "MODIFY" } else { "INSERT" }, "eventSource": "aws:dynamodb", "dynamodb": ddb})
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
            "id: slow\nnamespace: dev\ntasks:\n  - id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT30S\ntriggers:\n  - id: hook\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: k\n    wait: true\n",
        )
        .await
        .unwrap();
    let api = Api::new(engine, Default::default(), String::new());
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut context = Context::default();
    context.deadline = now_ms + 2_500;
    let started = std::time::Instant::now();
    let answer = api
        .handle(LambdaEvent::new(
            v2_event("POST", "/api/v1/executions/webhook/dev/slow/k", "", None),
            context,
        ))
        .await
        .unwrap();
    assert_eq!(answer["statusCode"], 504, "{answer}");
    assert!(
        started.elapsed() < Duration::from_millis(2_500),
        "{:?}",
        started.elapsed()
    );
}
