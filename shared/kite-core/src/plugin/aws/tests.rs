use serde_json::{json, Map, Value};

use super::dynamodb::{fetch_outputs, Attribute, DynamoDbOp, FetchType};
use super::messaging::{lambda_content_type, lambda_error, Source};
use super::s3::{DownloadTarget, ListFilter, S3Op};
use super::{AwsCall, AwsOp};
use crate::plugin::{by_name, IoCall};

/// Prepares a task from its properties, with a renderer that only knows `{{ x }}`.
fn prepare(name: &str, properties: Value) -> Result<AwsCall, String> {
    let Value::Object(properties) = properties else {
        panic!("a map")
    };
    let render = |v: &Value| -> Result<String, crate::expression::ExpressionError> {
        Ok(match v {
            Value::String(s) => s.replace("{{ x }}", "rendered"),
            other => other.to_string(),
        })
    };
    let spec = by_name(name).expect("registered");
    match (spec.prepare)(&properties, &render)? {
        IoCall::Aws(call) => Ok(call),
        other => panic!("not an AWS call: {other:?}"),
    }
}

#[test]
fn upload_keys_a_list_by_file_name_and_a_map_by_its_keys() {
    let call = prepare(
        "io.kestra.plugin.aws.s3.Upload",
        json!({"bucket": "b", "key": "k/{{ x }}", "from": ["kestra:///a/one.txt", "kestra:///a/two.csv"]}),
    )
    .unwrap();
    let AwsOp::S3(S3Op::Upload { files, key, .. }) = &call.op else {
        panic!()
    };
    assert_eq!(key, "k/rendered");
    assert_eq!(
        files,
        &vec![
            ("one.txt".to_string(), "kestra:///a/one.txt".to_string()),
            ("two.csv".to_string(), "kestra:///a/two.csv".to_string())
        ]
    );
    assert_eq!(
        call.files_read(),
        vec!["kestra:///a/one.txt", "kestra:///a/two.csv"]
    );
    let call = prepare(
        "io.kestra.plugin.aws.s3.Upload",
        json!({"bucket": "b", "key": "k", "from": "{\"first\": \"kestra:///f\"}"}),
    )
    .unwrap();
    let AwsOp::S3(S3Op::Upload { files, .. }) = &call.op else {
        panic!()
    };
    assert_eq!(files, &vec![("first".to_string(), "kestra:///f".to_string())]);
    let empty = prepare(
        "io.kestra.plugin.aws.s3.Upload",
        json!({"bucket": "b", "key": "k", "from": []}),
    );
    assert_eq!(
        empty.unwrap_err(),
        "No files to upload: the 'from' property contains an empty collection or array"
    );
}

#[test]
fn connection_uses_static_keys_only_in_pairs_and_refuses_roles() {
    let call = prepare(
        "io.kestra.plugin.aws.s3.Delete",
        json!({"bucket": "b", "key": "k", "accessKeyId": "AK", "endpointOverride": "http://127.0.0.1:5000"}),
    )
    .unwrap();
    assert_eq!(call.connection.access_key_id, None);
    assert!(call.connection.force_path_style);
    assert!(!format!("{:?}", call.connection).contains("AK"));
    let err = prepare(
        "io.kestra.plugin.aws.s3.Delete",
        json!({"bucket": "b", "key": "k", "stsRoleArn": "arn:aws:iam::1:role/r"}),
    )
    .unwrap_err();
    assert!(
        err.contains("stsRoleArn 'arn:aws:iam::1:role/r' is not supported"),
        "{err}"
    );
    let err = prepare(
        "io.kestra.plugin.aws.s3.Delete",
        json!({"bucket": "b", "key": "k", "endpointOverride": "http://169.254.169.254/"}),
    )
    .unwrap_err();
    assert!(err.contains("link-local"), "{err}");
}

#[test]
fn download_and_list_read_kestra_defaults() {
    let call = prepare(
        "io.kestra.plugin.aws.s3.List",
        json!({"bucket": "b", "regexp": ".*\\.csv"}),
    )
    .unwrap();
    let AwsOp::S3(S3Op::List(spec)) = &call.op else {
        panic!()
    };
    assert_eq!(
        (spec.max_keys, spec.max_files, spec.filter),
        (1000, 25, ListFilter::Both)
    );
    let re = spec.compiled_regexp().unwrap();
    assert!(spec.keeps("a/b.csv", re.as_ref()));
    assert!(!spec.keeps("a/b.csv.gz", re.as_ref()), "the whole key must match");
    let call = prepare(
        "io.kestra.plugin.aws.s3.Download",
        json!({"bucket": "b", "prefix": "p/"}),
    )
    .unwrap();
    let AwsOp::S3(S3Op::Download {
        target: DownloadTarget::Listing(spec),
        ..
    }) = &call.op
    else {
        panic!()
    };
    assert_eq!(spec.filter, ListFilter::Files);
    let err = prepare("io.kestra.plugin.aws.s3.Download", json!({"bucket": "b"})).unwrap_err();
    assert!(
        err.starts_with("Invalid configuration: either specify 'key'"),
        "{err}"
    );
}

#[test]
fn dynamodb_values_map_as_kestra_writes_them() {
    let value = json!({"id": "1", "n": 2, "ok": true, "tags": ["a", "b"], "m": {"x": null}});
    let Attribute::M(fields) = Attribute::from_value(&value) else {
        panic!()
    };
    assert_eq!(fields[1], ("n".to_string(), Attribute::S("2".into())));
    assert_eq!(
        fields[3],
        ("tags".to_string(), Attribute::Ss(vec!["a".into(), "b".into()]))
    );
    assert_eq!(
        fields[4],
        (
            "m".to_string(),
            Attribute::M(vec![("x".to_string(), Attribute::Null)])
        )
    );
    assert_eq!(Attribute::N("2.5".into()).into_value(), json!(2.5));
    let rows: Vec<Map<String, Value>> = vec![json!({"a": 1}), json!({"a": 2})]
        .into_iter()
        .map(|v| v.as_object().cloned().unwrap())
        .collect();
    let fetched = fetch_outputs(FetchType::Fetch, rows.clone());
    assert_eq!(fetched["size"], json!(2));
    let one = fetch_outputs(FetchType::FetchOne, rows);
    assert_eq!(
        (one["size"].clone(), one["row"].clone()),
        (json!(1), json!({"a": 1}))
    );
    assert!(fetch_outputs(FetchType::FetchOne, Vec::new())
        .get("row")
        .is_none());
}

#[test]
fn dynamodb_scan_and_query_check_their_properties() {
    let err = prepare(
        "io.kestra.plugin.aws.dynamodb.Scan",
        json!({"tableName": "t", "filterExpression": "a = :a"}),
    )
    .unwrap_err();
    assert_eq!(
        err,
        "'expressionAttributeValues' must be provided when 'filterExpression' is used"
    );
    let call = prepare(
        "io.kestra.plugin.aws.dynamodb.Query",
        json!({"tableName": "t", "keyConditionExpression": "id = :id",
               "expressionAttributeValues": {":id": "{{ x }}"}, "fetchType": "FETCH", "limit": 5}),
    )
    .unwrap();
    let AwsOp::DynamoDb(DynamoDbOp::Query {
        expression_attribute_values,
        fetch_type,
        limit,
        ..
    }) = &call.op
    else {
        panic!()
    };
    assert_eq!(expression_attribute_values[":id"], json!("rendered"));
    assert_eq!((*fetch_type, *limit), (FetchType::Fetch, Some(5)));
    let put = prepare(
        "io.kestra.plugin.aws.dynamodb.PutItem",
        json!({"tableName": "t", "item": "{\"id\": \"{{ x }}\"}"}),
    )
    .unwrap();
    let AwsOp::DynamoDb(DynamoDbOp::PutItem { item, .. }) = &put.op else {
        panic!()
    };
    assert_eq!(item["id"], json!("rendered"));
}

#[test]
fn lambda_content_type_and_error_follow_kestra() {
    assert_eq!(lambda_content_type(None), "application/octet-stream");
    assert_eq!(
        lambda_content_type(Some("application/x-custom")),
        "application/octet-stream"
    );
    assert_eq!(lambda_content_type(Some("application/json")), "application/json");
    assert_eq!(
        lambda_error("fn", "application/json", br#"{"errorMessage":"boom"}"#),
        r#"Lambda Invoke task responded with error for function: fn. Error: {"errorMessage":"boom"}"#
    );
    assert_eq!(
        lambda_error("fn", "application/octet-stream", b"x"),
        "Lambda Invoke task responded with error for function: fn"
    );
}

#[test]
fn sqs_and_eventbridge_take_items_or_a_file() {
    let call = prepare(
        "io.kestra.plugin.aws.sqs.Publish",
        json!({"queueUrl": "q", "from": {"data": {"a": 1}, "delaySeconds": 3}}),
    )
    .unwrap();
    let AwsOp::Sqs(op) = &call.op else { panic!() };
    let Source::Items(messages) = &op.messages else {
        panic!()
    };
    assert_eq!(
        (messages[0].data.as_str(), messages[0].delay_seconds),
        (r#"{"a":1}"#, Some(3))
    );
    let call = prepare(
        "io.kestra.plugin.aws.eventbridge.PutEvents",
        json!({"entries": "kestra:///ns/f/executions/e/x.ion"}),
    )
    .unwrap();
    assert_eq!(call.files_read(), vec!["kestra:///ns/f/executions/e/x.ion"]);
    let err = prepare(
        "io.kestra.plugin.aws.eventbridge.PutEvents",
        json!({"entries": "nope"}),
    )
    .unwrap_err();
    assert!(err.starts_with("Invalid entries parameter"), "{err}");
}
