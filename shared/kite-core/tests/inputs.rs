//! Inputs typed and validated as Kestra does (`InputsTest`).

use indexmap::IndexMap;
use kite_core::flow::parse_flow;
use kite_core::input::{
    decrypt_secret, file_input_uri, resolve_inputs, type_flow_output, InputContext,
    InputDefinition, InputValue,
};
use serde_json::{json, Value};

fn inputs_flow() -> Vec<InputDefinition> {
    let src = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/kestra-flows/inputs.yaml"
    ))
    .unwrap();
    parse_flow(&src).unwrap().inputs
}

const KEY: &[u8] = b"I6EGNzRESu3X3pKZidrqCGOHQFUFC0yK";

fn ctx() -> InputContext<'static> {
    InputContext {
        namespace: "io.kestra.tests",
        flow_id: "inputs",
        execution_id: "E1",
        secret_key: Some(KEY),
        condition: None,
    }
}

fn valid() -> IndexMap<String, InputValue> {
    let t = |s: &str| InputValue::Text(s.to_string());
    let mut m = IndexMap::new();
    m.insert("string".into(), t("myString"));
    m.insert("enum".into(), t("ENUM_VALUE"));
    m.insert("int".into(), t("42"));
    m.insert("float".into(), t("42.42"));
    m.insert("bool".into(), t("false"));
    m.insert("instant".into(), t("2019-10-06T18:27:49Z"));
    m.insert("date".into(), t("2019-10-06"));
    m.insert("time".into(), t("18:27:49"));
    m.insert("duration".into(), t("PT5M6S"));
    m.insert(
        "file".into(),
        t("kestra:///io/kestra/tests/inputs/executions/E1/inputs/file/application-test.yml"),
    );
    m.insert("json".into(), t(r#"{"a":"b"}"#));
    m.insert("uri".into(), t("https://www.google.com"));
    m.insert("nested.string".into(), t("a string"));
    m.insert("nested.more.int".into(), t("123"));
    m.insert("nested.bool".into(), t("true"));
    m.insert("validatedString".into(), t("A123"));
    m.insert("validatedInt".into(), t("12"));
    m.insert("validatedDate".into(), t("2023-06-01"));
    m.insert("validatedDateTime".into(), t("2023-06-01T00:00:00Z"));
    m.insert("validatedDuration".into(), t("PT15S"));
    m.insert("validatedFloat".into(), t("0.42"));
    m.insert("validatedTime".into(), t("11:27:49"));
    m.insert("secret".into(), t("secret"));
    m.insert("array".into(), t("[1, 2, 3]"));
    m
}

#[test]
fn all_valid_inputs_are_typed() {
    let typed = resolve_inputs(&inputs_flow(), &valid(), &ctx()).unwrap();
    assert_eq!(typed["string"], "myString");
    assert_eq!(typed["int"], 42);
    assert_eq!(typed["float"], 42.42);
    assert_eq!(typed["bool"], false);
    assert_eq!(typed["instant"], "2019-10-06T18:27:49Z");
    assert_eq!(typed["time"], "18:27:49");
    assert_eq!(typed["duration"], "PT5M6S");
    assert_eq!(typed["json"], json!({"a": "b"}));
    assert_eq!(
        typed["nested"],
        json!({"string": "a string", "more": {"int": 123}, "bool": true})
    );
    assert_eq!(typed["array"], json!([1, 2, 3]));
    assert_eq!(
        typed["yaml"],
        json!({"property": "something", "list": [{"key": "key1", "value": "value1"}, {"key": "key2", "value": "value2"}]})
    );
    assert_eq!(typed["empty"], "");
    assert_eq!(typed["instantDefaults"], "2013-08-09T14:19:00Z");
    assert_eq!(typed["optional"], Value::Null);
    let secret = typed["secret"].as_str().unwrap();
    assert_ne!(secret, "secret");
    assert_eq!(decrypt_secret(secret, KEY).unwrap(), "secret");
}

fn error_for(key: &str, value: &str) -> String {
    let mut inputs = valid();
    inputs.insert(key.to_string(), InputValue::Text(value.to_string()));
    resolve_inputs(&inputs_flow(), &inputs, &ctx())
        .unwrap_err()
        .message
}

#[test]
fn kestras_error_messages() {
    assert_eq!(
        error_for("enum", "INVALID"),
        "Invalid input for `enum`, it must match the values `[ENUM_VALUE, OTHER_ONE]`, but received `INVALID`"
    );
    assert_eq!(
        error_for("validatedString", "B-failed"),
        "Invalid input for `validatedString`, it must match the pattern `A\\d+`, but received `B-failed`"
    );
    assert_eq!(
        error_for("validatedInt", "9"),
        "Invalid input for `validatedInt`, it must be more than `10`, but received `9`"
    );
    assert_eq!(
        error_for("validatedInt", "21"),
        "Invalid input for `validatedInt`, it must be less than `20`, but received `21`"
    );
    assert_eq!(
        error_for("validatedDate", "2022-01-01"),
        "Invalid input for `validatedDate`, it must be after `2023-01-01`, but received `2022-01-01`"
    );
    assert_eq!(
        error_for("validatedDuration", "PT5S"),
        "Invalid input for `validatedDuration`, It must be more than `PT10S`, but received `PT5S`"
    );
    assert_eq!(
        error_for("validatedTime", "00:59:59"),
        "Invalid input for `validatedTime`, it must be after `01:00`, but received `00:59:59`"
    );
    assert_eq!(error_for("uri", "http:/bla"), "Invalid input for `uri`, Expected `URI` but received `http:/bla`, but received `http:/bla`");
    assert_eq!(
        error_for("array", "[\"s1\"]"),
        "Invalid input for `array`, Unable to parse array element as `INT` on `s1`, but received `[\"s1\"]`"
    );
    assert!(error_for("int", "abc")
        .starts_with("Invalid input for `int`, Expected `INT` but received `abc` with errors:"));
    let mut missing = valid();
    missing.shift_remove("string");
    assert_eq!(
        resolve_inputs(&inputs_flow(), &missing, &ctx())
            .unwrap_err()
            .message,
        "Invalid input for `string`, missing required input, but received `null`"
    );
}

#[test]
fn secrets_need_a_key() {
    let no_key = InputContext {
        secret_key: None,
        ..ctx()
    };
    let e = resolve_inputs(&inputs_flow(), &valid(), &no_key).unwrap_err();
    assert_eq!(
        e.message,
        "Unable to use a `SECRET` input/output as encryption is not configured"
    );
}

#[test]
fn files_are_storage_uris_only() {
    assert_eq!(
        file_input_uri("io.kestra.tests", "inputs", "E1", "file", "a.yml"),
        "kestra:///io/kestra/tests/inputs/executions/E1/inputs/file/a.yml"
    );
    assert!(error_for("file", "/etc/passwd").contains("Expected `FILE`"));
}

#[test]
fn bool_is_strict_and_boolean_is_not() {
    let src = "id: b\nnamespace: dev\ninputs:\n  - id: strict\n    type: BOOL\n  - id: loose\n    type: BOOLEAN\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.debug.Return\n";
    let defs = parse_flow(src).unwrap().inputs;
    let mut m = IndexMap::new();
    m.insert("strict".to_string(), InputValue::Text("yes".into()));
    m.insert("loose".to_string(), InputValue::Text("yes".into()));
    assert!(resolve_inputs(&defs, &m, &ctx()).is_err());
    m.insert("strict".to_string(), InputValue::Json(json!(true)));
    let typed = resolve_inputs(&defs, &m, &ctx()).unwrap();
    assert_eq!(typed["strict"], true);
    assert_eq!(typed["loose"], false);
}

#[test]
fn flow_outputs_are_typed() {
    assert_eq!(
        type_flow_output("STRING", "key", json!({"value": "x"})).unwrap(),
        json!(r#"{"value":"x"}"#)
    );
    assert_eq!(
        type_flow_output("ARRAY", "a", json!(["1rstValue", "2ndValue"])).unwrap(),
        json!(["1rstValue", "2ndValue"])
    );
    assert_eq!(type_flow_output("INT", "i", json!("4")).unwrap(), json!(4));
}
