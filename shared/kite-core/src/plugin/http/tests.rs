use super::*;

fn task(yaml: serde_json::Value) -> Map<String, Value> {
    yaml.as_object().cloned().unwrap_or_default()
}

fn literal(v: &Value) -> Result<String, ExpressionError> {
    match v {
        Value::String(s) if s.contains("{{") => Err(ExpressionError::new(format!("cannot render {s}"))),
        Value::String(s) => Ok(s.clone()),
        other => Ok(other.to_string()),
    }
}

fn context() -> TaskRunContext {
    TaskRunContext {
        namespace: "dev".into(),
        flow_id: "f".into(),
        execution_id: "e".into(),
        task_id: "call".into(),
        task_run_id: "tr".into(),
        attempt_number: 1,
        log_level: None,
    }
}

#[test]
fn a_body_gets_json_as_content_type_unless_one_is_given() {
    let call = prepare(
        &task(json!({"uri": "http://h/x", "method": "post", "body": "{}"})),
        &literal,
    );
    assert_eq!(
        call,
        Ok(HttpCall {
            headers: vec![("Content-Type".into(), "application/json; charset=UTF-8".into())],
            body: Some(b"{}".to_vec()),
            ..HttpCall::new("POST", "http://h/x")
        })
    );
    let call = prepare(
        &task(json!({"uri": "u", "body": "a", "headers": {"content-type": "text/plain"}})),
        &literal,
    );
    assert_eq!(
        call.map(|c| c.headers),
        Ok(vec![("content-type".into(), "text/plain".into())])
    );
}

#[test]
fn form_data_is_url_encoded_and_render_errors_say_why() {
    let call = prepare(
        &task(json!({"uri": "u", "formData": {"a": "x y", "b": "&"}})),
        &literal,
    );
    assert_eq!(call.clone().map(|c| c.body), Ok(Some(b"a=x+y&b=%26".to_vec())));
    assert_eq!(
        call.map(|c| c.headers),
        Ok(vec![(
            "Content-Type".into(),
            "application/x-www-form-urlencoded; charset=UTF-8".into()
        )])
    );
    assert_eq!(
        prepare(&task(json!({"uri": "{{ nope }}"})), &literal),
        Err(HttpError::Render(ExpressionError::new(
            "cannot render {{ nope }}"
        )))
    );
}

#[test]
fn downloads_name_their_file_after_the_url_and_fail_on_an_empty_body() {
    assert_eq!(download_file_name("https://h/a/report.csv?x=1"), "report.csv");
    assert_eq!(download_file_name("http://h/"), "download");
    assert_eq!(download_file_name("http://h"), "download");
    assert_eq!(download_file_name("http://h/a/..%2F..%2Fetc"), "2F..2Fetc");
    let spec = &TASKS[1];
    let call = match (spec.prepare)(&task(json!({"uri": "http://h/f.txt"})), &literal) {
        Ok(IoCall::Http(call)) => call,
        other => panic!("{other:?}"),
    };
    assert_eq!(call.download, Some(Download { fail_on_empty: true }));
    let now = DateTime::<Utc>::UNIX_EPOCH;
    let stored = |length| HttpResponse {
        status: 200,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: vec![],
        stored: Some(StoredBody {
            uri: "kestra:///dev/f/executions/e/tasks/call/tr/f.txt".into(),
            length,
        }),
    };
    let ok = finish_download(&call, &context(), Ok(stored(5)), now);
    assert_eq!(ok.state, StateType::Success);
    assert_eq!(
        Value::Object(ok.outputs.into_iter().collect()),
        json!({"uri": "kestra:///dev/f/executions/e/tasks/call/tr/f.txt", "code": 200, "length": 5,
               "headers": {"content-type": ["text/plain"]}})
    );
    let empty = finish_download(&call, &context(), Ok(stored(0)), now);
    assert_eq!(empty.state, StateType::Failed);
    assert_eq!(empty.logs[0].message, "No response from server");
    let lenient = HttpCall {
        download: Some(Download { fail_on_empty: false }),
        ..call.clone()
    };
    assert_eq!(
        finish_download(&lenient, &context(), Ok(stored(0)), now).state,
        StateType::Success
    );
}

#[test]
fn responses_become_outputs_and_errors_fail_with_kestras_message() {
    let call = prepare(&task(json!({"uri": "http://h/x"})), &literal).unwrap_or_else(|e| panic!("{e}"));
    let now = DateTime::<Utc>::UNIX_EPOCH;
    let ok = finish(
        &call,
        &context(),
        Ok(HttpResponse {
            status: 200,
            headers: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
            body: b"hello".to_vec(),
            stored: None,
        }),
        now,
    );
    assert_eq!(ok.state, StateType::Success);
    assert_eq!(
        Value::Object(ok.outputs.into_iter().collect()),
        json!({"uri": "http://h/x", "code": 200, "headers": {"a": ["1", "2"]}, "body": "hello"})
    );
    let not_found = HttpResponse {
        status: 404,
        headers: vec![],
        body: b"no such thing".to_vec(),
        stored: None,
    };
    let failed = finish(&call, &context(), Ok(not_found.clone()), now);
    assert_eq!(failed.state, StateType::Failed);
    assert_eq!(
        failed.logs.iter().map(|l| l.message.as_str()).collect::<Vec<_>>(),
        ["Failed http request with response code '404' and body:\nno such thing"]
    );
    let allowed = HttpCall {
        options: HttpOptions {
            allow_failed: true,
            ..HttpOptions::default()
        },
        ..call.clone()
    };
    assert_eq!(
        finish(&allowed, &context(), Ok(not_found), now).state,
        StateType::Success
    );
    let refused = HttpError::Failed {
        uri: call.uri.clone(),
        reason: "Connection refused".into(),
    };
    let unreachable = finish(&call, &context(), Err(refused), now);
    assert_eq!(unreachable.state, StateType::Failed);
    assert_eq!(
        unreachable.logs[0].message,
        "Request to `http://h/x` failed: Connection refused"
    );
}
