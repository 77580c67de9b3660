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
    assert_eq!(
        disposition_file_name("attachment; filename=\"filename.jpg\""),
        Some("filename.jpg".into())
    );
    assert_eq!(
        disposition_file_name("attachment; filename=\"/secure-path/filename..jpg\""),
        Some("filename..jpg".into())
    );
    assert_eq!(
        disposition_file_name("attachment; FILENAME=report.csv"),
        Some("report.csv".into())
    );
    assert_eq!(disposition_file_name("attachment; filename=\"../..\""), None);
    assert_eq!(disposition_file_name("inline"), None);
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
        [
            "GET http://h/x answered 404",
            "Failed http request with response code '404' and body:\nno such thing"
        ]
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

/// Renders `{{ user }}`, `{{ no }}` and `{{ code }}` as a run would; others as written.
fn vars(v: &Value) -> Result<String, ExpressionError> {
    let text = literal(&Value::String(match v {
        Value::String(s) => s
            .replace("{{ user }}", "alice")
            .replace("{{ no }}", "false")
            .replace("{{ code }}", "404"),
        other => other.to_string(),
    }))?;
    Ok(text)
}

fn options(yaml: Value) -> Result<HttpOptions, HttpError> {
    prepare(&task(json!({"uri": "http://h/", "options": yaml})), &vars).map(|c| c.options)
}

#[test]
fn options_default_to_kestras() {
    let call = prepare(&task(json!({"uri": "http://h/"})), &literal).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(call.options, HttpOptions::default());
    assert!(call.options.follow_redirects);
    assert_eq!(
        call.options.read_idle_timeout,
        std::time::Duration::from_secs(300)
    );
    assert_eq!(call.options.max_content_length, 10 * 1024 * 1024);
    assert_eq!(call.options.connect_timeout, None);
}

#[test]
fn auth_sets_the_authorization_header_from_rendered_values() {
    let basic = json!({"auth": {"type": "BASIC", "username": "{{ user }}", "password": "s3cret"}});
    let call = prepare(
        &task(json!({"uri": "u", "options": basic, "headers": {"authorization": "old"}})),
        &vars,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        call.headers,
        vec![("Authorization".into(), "Basic YWxpY2U6czNjcmV0".into())]
    );
    // The deprecated spelling is the same BASIC auth.
    let legacy = options(json!({"basicAuthUser": "{{ user }}", "basicAuthPassword": "s3cret"}));
    assert_eq!(
        legacy.map(|o| o.auth),
        Ok(Some(Auth::Basic {
            username: "alice".into(),
            password: "s3cret".into()
        }))
    );
    let bearer = options(json!({"auth": {"type": "bearer", "token": "t-{{ user }}"}}));
    assert_eq!(
        bearer.map(|o| o.auth.map(|a| a.header())),
        Ok(Some("Bearer t-alice".into()))
    );
}

#[test]
fn timeouts_redirects_and_codes_are_rendered() {
    let o = options(json!({
        "timeout": {"connectTimeout": "PT2S", "readIdleTimeout": "PT0.5S"},
        "readTimeout": "PT9S",
        "followRedirects": "{{ no }}",
        "allowedResponseCodes": [200, "{{ code }}"],
        "maxContentLength": 1024,
        "logs": ["REQUEST_HEADERS"],
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(o.connect_timeout, Some(std::time::Duration::from_secs(2)));
    // `timeout.readIdleTimeout` wins over the deprecated `readTimeout`.
    assert_eq!(o.read_idle_timeout, std::time::Duration::from_millis(500));
    assert!(!o.follow_redirects);
    assert_eq!(o.allowed_response_codes, [200, 404]);
    assert_eq!(o.max_content_length, 1024);
    assert!(o.accepts(404) && o.accepts(200) && !o.accepts(201));
    let legacy =
        options(json!({"connectTimeout": "PT3S", "readTimeout": "PT4S"})).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(legacy.connect_timeout, Some(std::time::Duration::from_secs(3)));
    assert_eq!(legacy.read_idle_timeout, std::time::Duration::from_secs(4));
    let listed = options(json!({"allowedResponseCodes": "[201, 202]"})).map(|o| o.allowed_response_codes);
    assert_eq!(listed, Ok(vec![201, 202]));
    // allowFailed lets any code through; the task's own (deprecated) flag too.
    assert!(options(json!({"allowFailed": true})).is_ok_and(|o| o.accepts(500)));
    let legacy = prepare(&task(json!({"uri": "u", "allowFailed": true})), &literal);
    assert!(legacy.is_ok_and(|c| c.options.accepts(503)));
}

#[test]
fn bad_options_fail_saying_which_and_why() {
    let message = |yaml: Value| options(yaml).map_err(|e| e.to_string()).err();
    assert_eq!(
        message(json!({"timeout": {"readIdleTimeout": "soon"}})).as_deref(),
        Some("Invalid `options.timeout.readIdleTimeout`: 'soon' is not a positive ISO-8601 duration (like PT30S)")
    );
    assert_eq!(
        message(json!({"auth": {"type": "DIGEST", "username": "a"}})).as_deref(),
        Some("Invalid `options.auth.type`: 'DIGEST' is not supported (BASIC or BEARER)")
    );
    assert_eq!(
        message(json!({"folowRedirects": false})).as_deref(),
        Some("Invalid `options.folowRedirects`: is not a known property")
    );
    assert_eq!(
        message(json!({"maxContentLength": 0})).as_deref(),
        Some("Invalid `options.maxContentLength`: '0' is not a number of bytes from 1 to 2147483647")
    );
    assert_eq!(
        message(json!({"allowedResponseCodes": ["ok"]})).as_deref(),
        Some("Invalid `options.allowedResponseCodes`: 'ok' is not an HTTP status code")
    );
    assert_eq!(
        message(json!({"defaultCharset": "EBCDIC"})).as_deref(),
        Some("Invalid `options.defaultCharset`: 'EBCDIC' is not a supported charset (UTF-8, ISO-8859-1, US-ASCII)")
    );
    assert_eq!(
        message(json!("x")).as_deref(),
        Some("Invalid `options`: must be a map")
    );
    // An expression that does not render fails as any property does.
    assert!(matches!(
        options(json!({"followRedirects": "{{ nope }}"})),
        Err(HttpError::Render(_))
    ));
}

#[test]
fn the_default_charset_encodes_the_body_and_names_itself() {
    let call = prepare(
        &task(
            json!({"uri": "u", "method": "POST", "contentType": "text/plain", "body": "café ☕",
                     "options": {"defaultCharset": "ISO-8859-1"}}),
        ),
        &literal,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(call.body, Some(b"caf\xe9 ?".to_vec()));
    assert_eq!(
        call.headers,
        vec![("Content-Type".into(), "text/plain; charset=ISO-8859-1".into())]
    );
}

#[test]
fn multipart_form_data_sends_storage_uris_as_files() {
    let file = "kestra:///dev/f/executions/e/tasks/t/tr/orders.csv";
    let call = prepare(
        &task(
            json!({"uri": "u", "method": "POST", "contentType": "multipart/form-data",
                     "body": "ignored: formData wins",
                     "formData": {"user": "{{ user }}", "data": file,
                                  "named": {"name": "my-{{ user }}.txt", "content": file},
                                  "n": 5, "meta": {"a": 1}}}),
        ),
        &vars,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(call.body, None);
    assert!(call.headers.is_empty(), "{:?}", call.headers);
    let file_part = |filename: &str| PartContent::File {
        uri: file.into(),
        filename: filename.into(),
    };
    let parts: Vec<(String, PartContent)> = call
        .form
        .iter()
        .map(|p| (p.name.clone(), p.content.clone()))
        .collect();
    assert_eq!(
        parts,
        vec![
            ("user".into(), PartContent::Text("alice".into())),
            ("data".into(), file_part("orders.csv")),
            ("named".into(), file_part("my-alice.txt")),
            ("n".into(), PartContent::Text("5".into())),
            ("meta".into(), PartContent::Text("{\"a\":1}".into())),
        ]
    );
    assert_eq!(call.files_read(), [file, file]);
    let bad = prepare(
        &task(json!({"uri": "u", "contentType": "multipart/form-data",
                     "formData": {"f": {"name": "a.txt", "content": "/etc/passwd"}}})),
        &literal,
    );
    assert_eq!(
        bad.map_err(|e| e.to_string()),
        Err("Invalid `formData.f.content`: '/etc/passwd' is not a kestra:/// URI of a file".into())
    );
}

#[test]
fn a_multipart_body_has_one_part_per_field_and_a_boundary_found_in_none() {
    let parts = [
        FormPart {
            name: "user".into(),
            content: PartContent::Text("alice".into()),
        },
        FormPart {
            name: "up\"load".into(),
            content: PartContent::File {
                uri: "kestra:///x/a.csv".into(),
                filename: "a.csv".into(),
            },
        },
    ];
    let (content_type, body) =
        form::encode_multipart(&parts, &[b"alice".to_vec(), b"1,2\n".to_vec()], Charset::Utf8);
    let boundary = content_type
        .strip_prefix("multipart/form-data; boundary=")
        .unwrap_or_else(|| panic!("{content_type}"));
    let expected = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"user\"\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nalice\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"up%22load\"; filename=\"a.csv\"\r\nContent-Type: application/octet-stream\r\n\r\n1,2\n\r\n\
         --{boundary}--\r\n"
    );
    assert_eq!(String::from_utf8_lossy(&body), expected);
    // A file holding the first choice of boundary gets another one.
    let clash = format!("--{boundary}").into_bytes();
    let (other, _) = form::encode_multipart(&parts[..1], std::slice::from_ref(&clash), Charset::Utf8);
    assert_ne!(other, content_type);
}

#[test]
fn allow_failed_lets_an_empty_download_succeed_as_in_kestra() {
    let spec = &TASKS[1];
    let call = match (spec.prepare)(
        &task(json!({"uri": "http://h/f", "options": {"allowFailed": true}})),
        &literal,
    ) {
        Ok(IoCall::Http(call)) => call,
        other => panic!("{other:?}"),
    };
    let empty = HttpResponse {
        status: 200,
        headers: vec![],
        body: vec![],
        stored: Some(StoredBody {
            uri: "kestra:///dev/f/executions/e/tasks/call/tr/f".into(),
            length: 0,
        }),
    };
    let done = finish_download(&call, &context(), Ok(empty), DateTime::<Utc>::UNIX_EPOCH);
    assert_eq!(done.state, StateType::Success);
}

#[test]
fn request_failures_name_the_url_and_the_limit() {
    let cases = [
        (
            HttpError::TooLarge {
                uri: "http://h/big".into(),
                limit: 1024,
            },
            "The response of `http://h/big` is larger than 1024 bytes (`options.maxContentLength`); \
             the Download task stores large responses as files",
        ),
        (
            HttpError::ReadTimeout {
                uri: "http://h/slow".into(),
                limit: "PT1S".into(),
            },
            "Request to `http://h/slow` timed out: no data for PT1S (`options.timeout.readIdleTimeout`)",
        ),
        (
            HttpError::ConnectTimeout {
                uri: "http://h/".into(),
                limit: "PT2S".into(),
            },
            "Request to `http://h/` timed out: no connection within PT2S (`options.timeout.connectTimeout`)",
        ),
    ];
    for (error, message) in cases {
        assert_eq!(error.to_string(), message);
    }
}
