//! Kestra's AWS tasks in whole flows on the local engine, against moto's server on
//! 127.0.0.1 (started here, with `tests/aws/moto_server.py`) through `endpointOverride`:
//! the real effect in moto (objects, items, messages) and the task runs' outputs, and
//! errors as FAILED task runs that say what and where. `lambda.Invoke` runs against a
//! small local server speaking Lambda's Invoke API (moto runs functions in docker).
//!
//! They need Python with moto (tests/aws/run.sh installs it in target/aws-venv and runs
//! them with `--ignored`).

use aws_sdk_dynamodb::types::AttributeValue;
use kite_core::execution::StateType;
use serde_json::{json, Value};

mod common;
use common::run_flow;
mod aws_support;
use aws_support::{create_table, flow, lambda_server, local, output, sdk, start_moto, task_run, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn s3_tasks_upload_list_download_copy_and_delete() {
    let moto = start_moto();
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk(&moto.endpoint))
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket().bucket("kite-s3").send().await.expect("bucket");
    let source = flow(
        "s3",
        &moto.endpoint,
        r#"  - id: write
    type: io.kestra.plugin.core.storage.Write
    content: hello s3
    extension: .txt
  - id: other
    type: io.kestra.plugin.core.storage.Write
    content: other file
    extension: .csv
  - id: upload
    type: io.kestra.plugin.aws.s3.Upload
    bucket: kite-s3
    key: "in/{{ flow.id }}.txt"
    from: "{{ outputs.write.uri }}"
    contentType: text/plain
    metadata:
      owner: kite
  - id: upload_many
    type: io.kestra.plugin.aws.s3.Upload
    bucket: kite-s3
    key: many
    from:
      - "{{ outputs.write.uri }}"
      - "{{ outputs.other.uri }}"
  - id: list
    type: io.kestra.plugin.aws.s3.List
    bucket: kite-s3
    prefix: many/
    regexp: .*\.csv
  - id: download
    type: io.kestra.plugin.aws.s3.Download
    bucket: kite-s3
    key: in/s3.txt
  - id: download_many
    type: io.kestra.plugin.aws.s3.Download
    bucket: kite-s3
    prefix: many/
  - id: copy
    type: io.kestra.plugin.aws.s3.Copy
    from:
      bucket: kite-s3
      key: in/s3.txt
    to:
      key: out/copy of s3.txt
    delete: true
  - id: delete
    type: io.kestra.plugin.aws.s3.Delete
    bucket: kite-s3
    key: many/{{ outputs.other.uri | split('/') | last }}"#,
    );
    let l = local().await;
    let (done, logs) = run_flow(&l.engine, &source).await;
    l.runtime.shutdown().await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");

    // Upload: one file at `key`, several under it by file name.
    assert_eq!(output(&done, "upload", "key"), json!("in/s3.txt"));
    assert!(output(&done, "upload", "etag").is_string());
    let write_name = output(&done, "write", "uri")
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let other_name = output(&done, "other", "uri")
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let files = output(&done, "upload_many", "files");
    assert_eq!(files[&write_name]["contentLength"], json!(8), "{files}");
    assert_eq!(files[&other_name]["contentLength"], json!(10), "{files}");

    // List: the regexp keeps the .csv only.
    let objects = output(&done, "list", "objects");
    let keys: Vec<&str> = objects
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, vec![format!("many/{other_name}")]);
    assert_eq!(objects[0]["size"], json!(10));

    // Download: the object in the task run's storage, with what S3 said of it.
    assert_eq!(text(&l.files, &output(&done, "download", "uri")), "hello s3");
    assert_eq!(output(&done, "download", "contentType"), json!("text/plain"));
    assert_eq!(output(&done, "download", "metadata"), json!({"owner": "kite"}));
    assert_eq!(output(&done, "download", "contentLength"), json!(8));
    let many = output(&done, "download_many", "files");
    assert_eq!(many.as_object().map(|m| m.len()), Some(2), "{many}");
    assert_eq!(
        text(&l.files, &many[format!("many/{other_name}")]["uri"]),
        "other file"
    );

    // Copy with delete moved the object; Delete removed the .csv.
    assert_eq!(output(&done, "copy", "key"), json!("out/copy of s3.txt"));
    let copied = s3
        .get_object()
        .bucket("kite-s3")
        .key("out/copy of s3.txt")
        .send()
        .await
        .expect("copy");
    let body = copied.body.collect().await.expect("body").into_bytes();
    assert_eq!(&body[..], b"hello s3");
    let remaining: Vec<String> = s3
        .list_objects_v2()
        .bucket("kite-s3")
        .send()
        .await
        .expect("list")
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect();
    assert_eq!(
        remaining,
        vec![format!("many/{write_name}"), "out/copy of s3.txt".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn s3_errors_fail_the_task_run_and_say_what_and_where() {
    let moto = start_moto();
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk(&moto.endpoint))
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket()
        .bucket("kite-errors")
        .send()
        .await
        .expect("bucket");
    let l = local().await;
    let missing_key = flow(
        "missing-key",
        &moto.endpoint,
        "  - id: download\n    type: io.kestra.plugin.aws.s3.Download\n    bucket: kite-errors\n    key: nothing/here.txt",
    );
    let (done, logs) = run_flow(&l.engine, &missing_key).await;
    assert_eq!(done.state.current, StateType::Failed);
    assert!(
        logs.iter()
            .any(|l| l.contains("S3 GetObject failed on s3://kite-errors/nothing/here.txt: NoSuchKey")),
        "{logs:?}"
    );
    let missing_bucket = flow(
        "missing-bucket",
        &moto.endpoint,
        "  - id: list\n    type: io.kestra.plugin.aws.s3.List\n    bucket: no-such-bucket",
    );
    let (done, logs) = run_flow(&l.engine, &missing_bucket).await;
    assert_eq!(done.state.current, StateType::Failed);
    assert!(
        logs.iter()
            .any(|l| l.contains("S3 ListObjectsV2 failed on s3://no-such-bucket: NoSuchBucket")),
        "{logs:?}"
    );
    // Nothing listens on the port of a listener just closed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let unreachable = flow(
        "unreachable",
        &format!("http://{closed}"),
        "  - id: delete\n    type: io.kestra.plugin.aws.s3.Delete\n    bucket: b\n    key: k",
    );
    let (done, logs) = run_flow(&l.engine, &unreachable).await;
    assert_eq!(done.state.current, StateType::Failed);
    assert!(
        logs.iter()
            .any(|l| l.contains("S3 DeleteObject failed on s3://b/k: dispatch failure")),
        "{logs:?}"
    );
    let role = flow(
        "role",
        &moto.endpoint,
        "  - id: delete\n    type: io.kestra.plugin.aws.s3.Delete\n    bucket: b\n    key: k\n    stsRoleArn: arn:aws:iam::1:role/r",
    );
    let (done, logs) = run_flow(&l.engine, &role).await;
    l.runtime.shutdown().await;
    assert_eq!(done.state.current, StateType::Failed);
    assert!(logs.iter().any(|l| l.contains("is not supported")), "{logs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn dynamodb_tasks_put_get_query_scan_and_delete() {
    let moto = start_moto();
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk(&moto.endpoint));
    create_table(&dynamodb, "people").await;
    let source = flow(
        "dynamodb",
        &moto.endpoint,
        r#"  - id: put
    type: io.kestra.plugin.aws.dynamodb.PutItem
    tableName: people
    item:
      id: "1"
      who: "{{ flow.id }}"
      age: 42
      admin: true
      tags: [a, b]
  - id: put_json
    type: io.kestra.plugin.aws.dynamodb.PutItem
    tableName: people
    item: '{"id": "2", "who": "json"}'
  - id: get
    type: io.kestra.plugin.aws.dynamodb.GetItem
    tableName: people
    key:
      id: "1"
  - id: query
    type: io.kestra.plugin.aws.dynamodb.Query
    tableName: people
    keyConditionExpression: id = :id
    expressionAttributeValues:
      ":id": "2"
    fetchType: FETCH
  - id: scan
    type: io.kestra.plugin.aws.dynamodb.Scan
    tableName: people
  - id: scan_one
    type: io.kestra.plugin.aws.dynamodb.Scan
    tableName: people
    filterExpression: "who = :n"
    expressionAttributeValues:
      ":n": json
    fetchType: FETCH_ONE
  - id: delete
    type: io.kestra.plugin.aws.dynamodb.DeleteItem
    tableName: people
    key:
      id: "2"
  - id: missing_table
    type: io.kestra.plugin.aws.dynamodb.GetItem
    tableName: nobody
    key:
      id: "1""#,
    );
    let l = local().await;
    let (done, logs) = run_flow(&l.engine, &source).await;
    l.runtime.shutdown().await;
    assert_eq!(done.state.current, StateType::Failed, "{logs:?}");
    assert_eq!(
        task_run(&done, "delete").state.current,
        StateType::Success,
        "{logs:?}"
    );

    // Kestra's mapping: numbers are written as strings, lists as string sets.
    assert_eq!(
        output(&done, "get", "row"),
        json!({"admin": true, "age": "42", "id": "1", "who": "dynamodb", "tags": ["a", "b"]})
    );
    assert_eq!(
        output(&done, "query", "rows"),
        json!([{"id": "2", "who": "json"}])
    );
    assert_eq!(output(&done, "query", "size"), json!(1));
    assert_eq!(output(&done, "scan", "size"), json!(2));
    let stored = text(&l.files, &output(&done, "scan", "uri"));
    assert_eq!(stored.lines().count(), 2, "{stored}");
    assert!(
        // Ion, as Kestra's FileSerde writes a row.
        stored.lines().any(|l| l == r#"{id:"2",who:"json"}"#),
        "{stored}"
    );
    assert_eq!(
        output(&done, "scan_one", "row"),
        json!({"id": "2", "who": "json"})
    );

    // The real items: 2 deleted, 1 as written.
    let item = |id: &str| {
        dynamodb
            .get_item()
            .table_name("people")
            .key("id", AttributeValue::S(id.into()))
            .send()
    };
    assert!(item("2").await.expect("get").item.is_none());
    let one = item("1").await.expect("get").item.expect("item 1");
    assert_eq!(one.get("age"), Some(&AttributeValue::S("42".into())));
    assert_eq!(one.get("admin"), Some(&AttributeValue::Bool(true)));

    assert_eq!(task_run(&done, "missing_table").state.current, StateType::Failed);
    assert!(
        logs.iter()
            .any(|l| l.contains("DynamoDB GetItem failed on table 'nobody': ResourceNotFoundException")),
        "{logs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn sqs_publish_and_eventbridge_put_events_deliver() {
    let moto = start_moto();
    let config = sdk(&moto.endpoint);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let queue = sqs
        .create_queue()
        .queue_name("kite-tasks")
        .send()
        .await
        .expect("queue");
    let queue_url = queue.queue_url().expect("url").to_string();
    let events = sqs
        .create_queue()
        .queue_name("kite-events")
        .send()
        .await
        .expect("queue");
    let events_url = events.queue_url().expect("url").to_string();
    let eventbridge = aws_sdk_eventbridge::Client::new(&config);
    eventbridge
        .put_rule()
        .name("kite-test")
        .event_pattern(r#"{"source": ["kite.test"]}"#)
        .send()
        .await
        .expect("rule");
    eventbridge
        .put_targets()
        .rule("kite-test")
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn("arn:aws:sqs:us-east-1:123456789012:kite-events")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("target");

    let many: Vec<Value> = (0..11).map(|i| json!({"data": format!("message {i}")})).collect();
    let tasks = format!(
        r#"  - id: one
    type: io.kestra.plugin.aws.sqs.Publish
    queueUrl: "{queue_url}"
    from:
      data:
        hello: "{{{{ flow.id }}}}"
  - id: many
    type: io.kestra.plugin.aws.sqs.Publish
    queueUrl: "{queue_url}"
    from: '{many}'
  - id: file
    type: io.kestra.plugin.core.storage.Write
    extension: .ion
    content: |
      {{"data": "from a file"}}
  - id: from_file
    type: io.kestra.plugin.aws.sqs.Publish
    queueUrl: "{queue_url}"
    from: "{{{{ outputs.file.uri }}}}"
  - id: events
    type: io.kestra.plugin.aws.eventbridge.PutEvents
    entries:
      - source: kite.test
        detailType: order
        detail:
          order: "{{{{ flow.id }}}}"
      - Source: kite.test
        DetailType: order
        Detail: '{{"order": 2}}'"#,
        many = Value::Array(many)
    );
    let l = local().await;
    let (done, logs) = run_flow(&l.engine, &flow("messages", &moto.endpoint, &tasks)).await;
    l.runtime.shutdown().await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    assert_eq!(output(&done, "one", "messagesCount"), json!(1));
    assert_eq!(output(&done, "many", "messagesCount"), json!(11));
    assert_eq!(output(&done, "from_file", "messagesCount"), json!(1));

    let mut bodies = Vec::new();
    for _ in 0..10 {
        let received = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        if received.messages().is_empty() {
            break;
        }
        bodies.extend(
            received
                .messages()
                .iter()
                .filter_map(|m| m.body().map(str::to_string)),
        );
    }
    bodies.sort();
    assert_eq!(bodies.len(), 13, "{bodies:?}");
    assert!(
        bodies.contains(&r#"{"hello":"messages"}"#.to_string()),
        "{bodies:?}"
    );
    assert!(bodies.contains(&"from a file".to_string()), "{bodies:?}");
    assert!(bodies.contains(&"message 10".to_string()), "{bodies:?}");

    assert_eq!(output(&done, "events", "entryCount"), json!(2));
    assert_eq!(output(&done, "events", "failedEntryCount"), json!(0));
    let results = text(&l.files, &output(&done, "events", "uri"));
    let first: Value = kite_core::ion::from_line(results.lines().next().expect("a line"))
        .expect("an Ion line")
        .to_json();
    assert!(first["eventId"].is_string(), "{results}");
    assert_eq!(first["entry"]["detail"], json!(r#"{"order":"messages"}"#));
    let delivered = sqs
        .receive_message()
        .queue_url(&events_url)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("receive");
    let details: Vec<Value> = delivered
        .messages()
        .iter()
        .filter_map(|m| serde_json::from_str::<Value>(m.body()?).ok())
        .map(|event| event["detail"].clone())
        .collect();
    assert!(details.contains(&json!({"order": "messages"})), "{details:?}");
    assert!(details.contains(&json!({"order": 2})), "{details:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_invoke_stores_the_answer_and_fails_on_a_function_error() {
    let endpoint = lambda_server().await;
    let source = flow(
        "lambda",
        &endpoint,
        r#"  - id: invoke
    type: io.kestra.plugin.aws.lambda.Invoke
    functionArn: arn:aws:lambda:us-east-1:123456789012:function:echo
    functionPayload:
      id: "{{ flow.id }}"
      n: 1
  - id: failing
    type: io.kestra.plugin.aws.lambda.Invoke
    functionArn: failing"#,
    );
    let l = local().await;
    let (done, logs) = run_flow(&l.engine, &source).await;
    let missing = flow(
        "lambda-missing",
        &endpoint,
        "  - id: missing\n    type: io.kestra.plugin.aws.lambda.Invoke\n    functionArn: missing",
    );
    let (missing, missing_logs) = run_flow(&l.engine, &missing).await;
    l.runtime.shutdown().await;
    assert_eq!(missing.state.current, StateType::Failed);
    assert!(
        missing_logs.iter().any(|l| l.contains(
            "Lambda Invoke task execution failed for function: missing: ResourceNotFoundException: Function not found: missing"
        )),
        "{missing_logs:?}"
    );
    assert_eq!(
        task_run(&done, "invoke").state.current,
        StateType::Success,
        "{logs:?}"
    );
    let answer: Value = serde_json::from_str(&text(&l.files, &output(&done, "invoke", "uri"))).expect("json");
    assert_eq!(answer, json!({"id": "lambda", "n": 1}));
    assert_eq!(output(&done, "invoke", "contentType"), json!("application/json"));
    assert_eq!(output(&done, "invoke", "contentLength"), json!(21));

    assert_eq!(done.state.current, StateType::Failed);
    assert!(
        logs.iter().any(|l| l.contains(
            r#"Lambda Invoke task responded with error for function: failing. Error: {"errorMessage": "boom""#
        )),
        "{logs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_of_a_file_of_another_execution_is_refused() {
    let l = local().await;
    let source = flow(
        "refused",
        "http://127.0.0.1:9",
        "  - id: upload\n    type: io.kestra.plugin.aws.s3.Upload\n    bucket: b\n    key: k\n    from: kestra:///other/flow/executions/x/secret.txt",
    );
    let (done, logs) = run_flow(&l.engine, &source).await;
    l.runtime.shutdown().await;
    assert_eq!(done.state.current, StateType::Failed);
    assert!(
        logs.iter()
            .any(|l| l.contains("kestra:///other/flow/executions/x/secret.txt")),
        "{logs:?}"
    );
}

/// The example flow `flows/dev/aws-tasks.yaml`, its `endpoint` input pointed at moto
/// (the connection comes from its `pluginDefaults`, the keys from the environment or,
/// here, from a default added for the test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn the_example_flow_runs_against_moto() {
    use kite_core::input::InputValue;
    let moto = start_moto();
    let config = sdk(&moto.endpoint);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket().bucket("reports").send().await.expect("bucket");
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    create_table(&dynamodb, "reports").await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let queue_url = sqs
        .create_queue()
        .queue_name("reports")
        .send()
        .await
        .expect("queue")
        .queue_url()
        .expect("url")
        .to_string();

    let source = include_str!("../../../flows/dev/aws-tasks.yaml").replace(
        "      endpointOverride: \"{{ inputs.endpoint ?? '' }}\"\n",
        "      endpointOverride: \"{{ inputs.endpoint ?? '' }}\"\n      region: us-east-1\n      accessKeyId: test\n      secretKeyId: test\n",
    );
    let l = local().await;
    l.engine.create_flow(&source).await.expect("flow");
    let mut request = common::create("aws-tasks");
    for (name, value) in [
        ("bucket", "reports"),
        ("table", "reports"),
        ("queueUrl", queue_url.as_str()),
        ("endpoint", moto.endpoint.as_str()),
    ] {
        request.inputs.insert(name.into(), InputValue::Text(value.into()));
    }
    let (done, logs) = common::run_to_end(&l.engine, request).await;
    l.runtime.shutdown().await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    let key = format!("reports/{}.csv", done.id);
    assert_eq!(output(&done, "upload", "key"), json!(key));
    let downloaded = text(&l.files, &output(&done, "download", "uri"));
    assert!(downloaded.starts_with("day,orders\n"), "{downloaded}");
    let item = dynamodb
        .get_item()
        .table_name("reports")
        .key("id", AttributeValue::S(done.id.clone()))
        .send()
        .await
        .expect("get")
        .item
        .expect("the recorded item");
    assert_eq!(item.get("key"), Some(&AttributeValue::S(key.clone())));
    let received = sqs
        .receive_message()
        .queue_url(&queue_url)
        .send()
        .await
        .expect("receive");
    let body: Value = serde_json::from_str(received.messages()[0].body().expect("body")).expect("json");
    assert_eq!(body["report"], json!(format!("s3://reports/{key}")));
    assert!(
        logs.iter()
            .any(|l| l == "1 report(s) in the bucket; announced 1 message"),
        "{logs:?}"
    );
}
