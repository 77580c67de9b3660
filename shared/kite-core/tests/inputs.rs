//! Inputs typed and validated as Kestra does (`InputsTest`).

// The corpus of flows is read from disk by the tests, never by the core.
#![allow(clippy::disallowed_methods)]

use std::sync::atomic::{AtomicU64, Ordering};

use indexmap::IndexMap;
use kite_core::expression::ExpressionError;
use kite_core::flow::parse_flow;
use kite_core::id::IdSource;
use kite_core::input::{
    check_inputs, decrypt_secret, encrypt_secret, file_input_uri, resolve_inputs, type_flow_output,
    type_flow_output_in, InputContext, InputDefinition, InputValue,
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

/// Counts nonces: each encryption gets a new one.
struct CountingIds(AtomicU64);

impl IdSource for CountingIds {
    fn next_id(&self) -> String {
        self.0.fetch_add(1, Ordering::Relaxed).to_string()
    }

    fn nonce(&self) -> [u8; 12] {
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&self.0.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        nonce
    }
}

static IDS: CountingIds = CountingIds(AtomicU64::new(0));

fn ctx() -> InputContext<'static> {
    InputContext {
        namespace: "io.kestra.tests",
        flow_id: "inputs",
        execution_id: "E1",
        secret_key: Some(KEY),
        ids: Some(&IDS),
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
    assert_eq!(typed["enum"], "ENUM_VALUE");
    assert_eq!(typed["date"], "2019-10-06");
    assert_eq!(typed["uri"], "https://www.google.com");
    assert_eq!(
        typed["file"],
        "kestra:///io/kestra/tests/inputs/executions/E1/inputs/file/application-test.yml"
    );
    assert_eq!(typed["validatedString"], "A123");
    assert_eq!(typed["validatedInt"], 12);
    assert_eq!(typed["validatedDate"], "2023-06-01");
    assert_eq!(typed["validatedDateTime"], "2023-06-01T00:00:00Z");
    assert_eq!(typed["validatedDuration"], "PT15S");
    assert_eq!(typed["validatedFloat"], 0.42);
    assert_eq!(typed["validatedTime"], "11:27:49");
    assert_eq!(typed["optionalFile"], Value::Null);
    // Typed values serialize as Kestra's Jackson writes them.
    assert_eq!(serde_json::to_string(&typed["float"]).unwrap(), "42.42");
    assert_eq!(serde_json::to_string(&typed["int"]).unwrap(), "42");
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

fn typed_with(key: &str, value: InputValue) -> IndexMap<String, Value> {
    let mut inputs = valid();
    inputs.insert(key.to_string(), value);
    resolve_inputs(&inputs_flow(), &inputs, &ctx()).unwrap()
}

/// Declarations from an `inputs:` YAML list, through the flow parser.
fn defs(inputs_yaml: &str) -> Vec<InputDefinition> {
    let src = format!(
        "id: f\nnamespace: dev\ninputs:\n{inputs_yaml}\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.debug.Return\n    format: x\n"
    );
    parse_flow(&src).unwrap().inputs
}

fn one(inputs_yaml: &str, value: InputValue) -> Result<Value, String> {
    let d = defs(inputs_yaml);
    let mut m = IndexMap::new();
    m.insert(d[0].id.clone(), value);
    resolve_inputs(&d, &m, &ctx())
        .map(|typed| typed[d[0].id.as_str()].clone())
        .map_err(|e| {
            assert_eq!(e.input_id, d[0].id);
            e.message
        })
}

fn text(s: &str) -> InputValue {
    InputValue::Text(s.to_string())
}

#[test]
fn enum_outside_its_values() {
    assert_eq!(
        error_for("enum", "INVALID"),
        "Invalid input for `enum`, it must match the values `[ENUM_VALUE, OTHER_ONE]`, but received `INVALID`"
    );
}

#[test]
fn string_validator() {
    assert_eq!(
        error_for("validatedString", "B-failed"),
        "Invalid input for `validatedString`, it must match the pattern `A\\d+`, but received `B-failed`"
    );
    // The whole value must match, not a part of it.
    assert!(error_for("validatedString", "A12x").contains("it must match the pattern"));
}

#[test]
fn int_bounds_are_inclusive() {
    assert_eq!(
        error_for("validatedInt", "9"),
        "Invalid input for `validatedInt`, it must be more than `10`, but received `9`"
    );
    assert_eq!(
        error_for("validatedInt", "21"),
        "Invalid input for `validatedInt`, it must be less than `20`, but received `21`"
    );
    assert_eq!(typed_with("validatedInt", text("10"))["validatedInt"], 10);
    assert_eq!(typed_with("validatedInt", text("20"))["validatedInt"], 20);
}

#[test]
fn int_parse_errors_are_javas() {
    assert_eq!(
        error_for("int", "abc"),
        "Invalid input for `int`, For input string: \"abc\", but received `abc`"
    );
    // Kestra's INT is a 32-bit Integer.
    assert_eq!(
        error_for("int", "2147483648"),
        "Invalid input for `int`, For input string: \"2147483648\", but received `2147483648`"
    );
    assert_eq!(typed_with("int", text("-2147483648"))["int"], -2147483648i64);
}

#[test]
fn float_bounds_and_precision() {
    assert_eq!(
        error_for("validatedFloat", "0.01"),
        "Invalid input for `validatedFloat`, it must be more than `0.1`, but received `0.01`"
    );
    assert_eq!(
        error_for("validatedFloat", "1.01"),
        "Invalid input for `validatedFloat`, it must be less than `0.5`, but received `1.01`"
    );
    assert_eq!(
        error_for("float", "x"),
        "Invalid input for `float`, For input string: \"x\", but received `x`"
    );
    let typed = typed_with("float", text("0.1"));
    assert_eq!(serde_json::to_string(&typed["float"]).unwrap(), "0.1");
}

#[test]
fn float_bounds_print_as_java_floats() {
    let d = "  - id: f\n    type: FLOAT\n    min: 1\n    max: 20000000\n";
    assert_eq!(
        one(d, text("0.5")).unwrap_err(),
        "Invalid input for `f`, it must be more than `1.0`, but received `0.5`"
    );
    assert_eq!(
        one(d, text("3e7")).unwrap_err(),
        "Invalid input for `f`, it must be less than `2.0E7`, but received `3e7`"
    );
    assert_eq!(serde_json::to_string(&one(d, text("2")).unwrap()).unwrap(), "2.0");
}

#[test]
fn date_bounds() {
    assert_eq!(
        error_for("validatedDate", "2022-01-01"),
        "Invalid input for `validatedDate`, it must be after `2023-01-01`, but received `2022-01-01`"
    );
    assert_eq!(
        error_for("validatedDate", "2024-01-01"),
        "Invalid input for `validatedDate`, it must be before `2023-12-31`, but received `2024-01-01`"
    );
    assert_eq!(
        typed_with("validatedDate", text("2023-01-01"))["validatedDate"],
        "2023-01-01"
    );
}

#[test]
fn datetime_bounds_and_parse_errors() {
    assert_eq!(
        error_for("validatedDateTime", "2022-01-01T00:00:00Z"),
        "Invalid input for `validatedDateTime`, it must be after `2023-01-01T00:00:00Z`, but received `2022-01-01T00:00:00Z`"
    );
    assert_eq!(
        error_for("validatedDateTime", "2024-01-01T00:00:00Z"),
        "Invalid input for `validatedDateTime`, it must be before `2023-12-31T23:59:59Z`, but received `2024-01-01T00:00:00Z`"
    );
    assert!(error_for("instant", "yesterday").starts_with(
        "Invalid input for `instant`, Expected `DATETIME` but received `yesterday` with errors:\n```\n"
    ));
    assert!(error_for("instant", "yesterday").ends_with("\n```, but received `yesterday`"));
}

fn parse_error(input: &str, type_name: &str, value: &str) -> String {
    let message = error_for(input, value);
    let head = format!(
        "Invalid input for `{input}`, Expected `{type_name}` but received `{value}` with errors:\n```\n"
    );
    let tail = format!("\n```, but received `{value}`");
    assert!(
        message.starts_with(&head) && message.ends_with(&tail),
        "{message}"
    );
    message[head.len()..message.len() - tail.len()].to_string()
}

#[test]
fn date_and_time_parse_errors_are_java_times() {
    assert_eq!(
        parse_error("instant", "DATETIME", "yesterday"),
        "Text 'yesterday' could not be parsed at index 0"
    );
    assert_eq!(
        parse_error("instant", "DATETIME", "2019-10-06"),
        "Text '2019-10-06' could not be parsed at index 10"
    );
    assert_eq!(
        parse_error("instant", "DATETIME", "2019-10-06 18:27:49Z"),
        "Text '2019-10-06 18:27:49Z' could not be parsed at index 10"
    );
    assert_eq!(
        parse_error("instant", "DATETIME", "2019-10-06T18:27Z"),
        "Text '2019-10-06T18:27Z' could not be parsed at index 16"
    );
    assert_eq!(
        parse_error("instant", "DATETIME", "2019-13-06T18:27:49Z"),
        "Text '2019-13-06T18:27:49Z' could not be parsed: Invalid value for MonthOfYear (valid values 1 - 12): 13"
    );
    assert_eq!(
        parse_error("date", "DATE", "2023-02-30"),
        "Text '2023-02-30' could not be parsed: Invalid date 'FEBRUARY 30'"
    );
    assert_eq!(
        parse_error("date", "DATE", "2023-02-29"),
        "Text '2023-02-29' could not be parsed: Invalid date 'February 29' as '2023' is not a leap year"
    );
    assert_eq!(
        parse_error("date", "DATE", "2023-01-01x"),
        "Text '2023-01-01x' could not be parsed, unparsed text found at index 10"
    );
    assert_eq!(
        parse_error("time", "TIME", "25:00"),
        "Text '25:00' could not be parsed: Invalid value for HourOfDay (valid values 0 - 23): 25"
    );
    assert_eq!(
        parse_error("time", "TIME", "1:00"),
        "Text '1:00' could not be parsed at index 0"
    );
    assert_eq!(typed_with("time", text("18:27"))["time"], "18:27");
    assert_eq!(typed_with("date", text("2024-02-29"))["date"], "2024-02-29");
}

#[test]
fn datetimes_are_utc_instants() {
    let typed = typed_with("instant", text("2019-10-06T20:27:49+02:00"));
    assert_eq!(typed["instant"], "2019-10-06T18:27:49Z");
    let typed = typed_with("instant", text("2019-10-06T18:27:49.120Z"));
    assert_eq!(typed["instant"], "2019-10-06T18:27:49.120Z");
}

#[test]
fn duration_bounds_and_parse_errors() {
    assert_eq!(
        error_for("validatedDuration", "PT5S"),
        "Invalid input for `validatedDuration`, It must be more than `PT10S`, but received `PT5S`"
    );
    assert_eq!(
        error_for("validatedDuration", "PT30S"),
        "Invalid input for `validatedDuration`, It must be less than `PT20S`, but received `PT30S`"
    );
    assert_eq!(
        error_for("duration", "5 minutes"),
        "Invalid input for `duration`, Expected `DURATION` but received `5 minutes` with errors:\n```\nText cannot be parsed to a Duration\n```, but received `5 minutes`"
    );
    // Java's Duration has no weeks, and a lone `T` is not a time part.
    assert!(error_for("duration", "P1W").contains("Text cannot be parsed to a Duration"));
    assert!(error_for("duration", "P1DT").contains("Text cannot be parsed to a Duration"));
}

#[test]
fn durations_print_as_java_does() {
    for (given, printed) in [
        ("PT5M6S", "PT5M6S"),
        ("P1D", "PT24H"),
        ("PT0.5S", "PT0.5S"),
        ("PT90M", "PT1H30M"),
        ("-PT1S", "PT-1S"),
        ("PT-0.5S", "PT-0.5S"),
        ("PT0S", "PT0S"),
        ("pt1h", "PT1H"),
        ("PT1,25S", "PT1.25S"),
    ] {
        assert_eq!(
            typed_with("duration", text(given))["duration"],
            printed,
            "{given}"
        );
    }
}

#[test]
fn time_bounds_print_as_java_local_time() {
    assert_eq!(
        error_for("validatedTime", "00:59:59"),
        "Invalid input for `validatedTime`, it must be after `01:00`, but received `00:59:59`"
    );
    assert_eq!(
        error_for("validatedTime", "14:00:00"),
        "Invalid input for `validatedTime`, it must be before `11:59:59`, but received `14:00:00`"
    );
    assert_eq!(typed_with("time", text("01:00:00"))["time"], "01:00");
    assert_eq!(typed_with("time", text("01:00:00.5"))["time"], "01:00:00.500");
}

#[test]
fn uri_pattern() {
    assert_eq!(
        error_for("uri", "http:/bla"),
        "Invalid input for `uri`, Expected `URI` but received `http:/bla`, but received `http:/bla`"
    );
    assert_eq!(
        typed_with("uri", text("https://kestra.io/docs?x=1"))["uri"],
        "https://kestra.io/docs?x=1"
    );
}

#[test]
fn array_items_are_typed() {
    assert_eq!(
        error_for("array", "[\"s1\", \"s2\"]"),
        "Invalid input for `array`, Unable to parse array element as `INT` on `s1`, but received `[\"s1\", \"s2\"]`"
    );
    assert_eq!(
        typed_with("array", InputValue::Json(json!(["4", 5])))["array"],
        json!([4, 5])
    );
    assert!(error_for("array", "1,2")
        .starts_with("Invalid input for `array`, Expected `ARRAY` but received `1,2` with errors:"));
    let untyped = "  - id: a\n    type: ARRAY\n    itemType: STRING\n";
    assert_eq!(one(untyped, text("[\"x\", \"y\"]")).unwrap(), json!(["x", "y"]));
    let floats = "  - id: a\n    type: ARRAY\n    itemType: FLOAT\n";
    assert_eq!(
        one(floats, text("[1.5, \"x\"]")).unwrap_err(),
        "Invalid input for `a`, Unable to parse array element as `FLOAT` on `x`, but received `[1.5, \"x\"]`"
    );
}

#[test]
fn missing_required_and_optional_null() {
    let mut missing = valid();
    missing.shift_remove("string");
    let e = resolve_inputs(&inputs_flow(), &missing, &ctx()).unwrap_err();
    assert_eq!(e.input_id, "string");
    assert_eq!(
        e.message,
        "Invalid input for `string`, missing required input, but received `null`"
    );
    let mut without_bool = valid();
    without_bool.shift_remove("bool");
    let typed = resolve_inputs(&inputs_flow(), &without_bool, &ctx()).unwrap();
    assert_eq!(typed.get("bool"), Some(&Value::Null));
}

#[test]
fn only_the_first_failing_input_is_reported() {
    let mut inputs = valid();
    inputs.insert("enum".into(), text("INVALID"));
    inputs.insert("int".into(), text("abc"));
    let e = resolve_inputs(&inputs_flow(), &inputs, &ctx()).unwrap_err();
    assert_eq!(e.input_id, "enum");
}

#[test]
fn undeclared_inputs_are_ignored() {
    let typed = typed_with("notDeclared", text("x"));
    assert!(!typed.contains_key("notDeclared"));
}

#[test]
fn defaults_are_typed_like_values() {
    let d = "  - id: n\n    type: INT\n    defaults: 5\n  - id: d\n    type: DURATION\n    defaults: PT60S\n  - id: j\n    type: JSON\n    defaults: '{\"k\": [1]}'\n  - id: empty\n    type: STRING\n    defaults: ''\n";
    let typed = resolve_inputs(&defs(d), &IndexMap::new(), &ctx()).unwrap();
    assert_eq!(typed["n"], 5);
    assert_eq!(typed["d"], "PT1M");
    assert_eq!(typed["j"], json!({"k": [1]}));
    assert_eq!(typed["empty"], "");
    // A provided value wins over the default.
    let mut m = IndexMap::new();
    m.insert("n".to_string(), text("7"));
    assert_eq!(resolve_inputs(&defs(d), &m, &ctx()).unwrap()["n"], 7);
}

#[test]
fn already_typed_values_are_accepted() {
    let mut inputs = valid();
    inputs.insert("int".into(), InputValue::Json(json!(42)));
    inputs.insert("float".into(), InputValue::Json(json!(42.42)));
    inputs.insert("bool".into(), InputValue::Json(json!(true)));
    inputs.insert("json".into(), InputValue::Json(json!({"a": [1, 2]})));
    inputs.insert("instant".into(), InputValue::Json(json!("2019-10-06T18:27:49Z")));
    let typed = resolve_inputs(&inputs_flow(), &inputs, &ctx()).unwrap();
    assert_eq!(typed["int"], 42);
    assert_eq!(typed["float"], 42.42);
    assert_eq!(typed["bool"], true);
    assert_eq!(typed["json"], json!({"a": [1, 2]}));
    assert_eq!(typed["instant"], "2019-10-06T18:27:49Z");
    // A JSON string is read as the text of a JSON value.
    assert_eq!(
        typed_with("json", InputValue::Json(json!("{\"x\": 1}")))["json"],
        json!({"x": 1})
    );
}

#[test]
fn json_and_yaml_parse_text() {
    assert_eq!(typed_with("json", text("[1, \"a\"]"))["json"], json!([1, "a"]));
    assert_eq!(typed_with("json", text("{}"))["json"], json!({}));
    assert!(error_for("json", "{nope")
        .starts_with("Invalid input for `json`, Expected `JSON` but received `{nope` with errors:\n```\n"));
    let typed = typed_with("yaml", text("some: property\nalist:\n- of\n- values"));
    assert_eq!(
        typed["yaml"],
        json!({"some": "property", "alist": ["of", "values"]})
    );
}

#[test]
fn emails() {
    let d = "  - id: mail\n    type: EMAIL\n";
    assert_eq!(one(d, text("a.b+c@kestra.io")).unwrap(), "a.b+c@kestra.io");
    assert_eq!(one(d, text("")).unwrap(), "");
    assert_eq!(
        one(d, text("not an email")).unwrap_err(),
        "Invalid input for `mail`, The input must be a valid email, but received `not an email`"
    );
}

#[test]
fn selects() {
    let d = "  - id: s\n    type: SELECT\n    values: [A, B]\n";
    assert_eq!(one(d, text("A")).unwrap(), "A");
    assert_eq!(
        one(d, text("C")).unwrap_err(),
        "Invalid input for `s`, it must match the values `[A, B]`, but received `C`"
    );
    let custom = "  - id: s\n    type: SELECT\n    values: [A, B]\n    allowCustomValue: true\n";
    assert_eq!(one(custom, text("C")).unwrap(), "C");
}

#[test]
fn multiselects() {
    let d = "  - id: m\n    type: MULTISELECT\n    values: [A, B, C]\n";
    assert_eq!(one(d, text("[\"A\", \"C\"]")).unwrap(), json!(["A", "C"]));
    assert_eq!(one(d, InputValue::Json(json!(["B"]))).unwrap(), json!(["B"]));
    assert_eq!(
        one(d, text("[\"A\", \"D\"]")).unwrap_err(),
        "Invalid input for `m`, it must match the values `[A, B, C]`, but received `[\"A\", \"D\"]`"
    );
    let legacy = "  - id: m\n    type: MULTISELECT\n    options: [X, Y]\n";
    assert_eq!(one(legacy, text("[\"Y\"]")).unwrap(), json!(["Y"]));
    assert!(one(legacy, text("[\"Z\"]"))
        .unwrap_err()
        .contains("it must match the values `[X, Y]`"));
}

#[test]
fn json_null_is_no_value() {
    let mut inputs = valid();
    inputs.insert("string".into(), InputValue::Json(Value::Null));
    assert_eq!(
        resolve_inputs(&inputs_flow(), &inputs, &ctx())
            .unwrap_err()
            .message,
        "Invalid input for `string`, missing required input, but received `null`"
    );
    let typed = typed_with("instantDefaults", InputValue::Json(Value::Null));
    assert_eq!(typed["instantDefaults"], "2013-08-09T14:19:00Z");
}

#[test]
fn typed_lists_are_shown_as_java_lists() {
    let d = "  - id: m\n    type: MULTISELECT\n    values: [A, B]\n";
    assert_eq!(
        one(d, InputValue::Json(json!(["A", "D"]))).unwrap_err(),
        "Invalid input for `m`, it must match the values `[A, B]`, but received `[A, D]`"
    );
    let mut inputs = valid();
    inputs.insert("array".into(), InputValue::Json(json!([1, {"k": "v"}])));
    assert_eq!(
        resolve_inputs(&inputs_flow(), &inputs, &ctx()).unwrap_err().message,
        "Invalid input for `array`, Unable to parse array element as `INT` on `{k=v}`, but received `[1, {k=v}]`"
    );
}

#[test]
fn nested_ids_become_maps() {
    let typed = resolve_inputs(&inputs_flow(), &valid(), &ctx()).unwrap();
    assert_eq!(typed["nested"]["more"]["int"], 123);
    assert!(!typed.contains_key("nested.more.int"));
}

#[test]
fn depends_on_disables_inputs() {
    let d = "  - id: kind\n    type: SELECT\n    values: [A, B]\n  - id: extra\n    type: STRING\n    dependsOn:\n      inputs: [kind]\n      condition: \"{{ inputs.kind == 'A' }}\"\n";
    let eval = |condition: &str, resolved: &IndexMap<String, Value>| -> Result<bool, ExpressionError> {
        assert!(condition.contains("inputs.kind"));
        Ok(resolved.get("kind") == Some(&json!("A")))
    };
    let context = InputContext {
        condition: Some(&eval),
        ..ctx()
    };
    let mut m = IndexMap::new();
    m.insert("kind".to_string(), text("B"));
    let typed = resolve_inputs(&defs(d), &m, &context).unwrap();
    assert!(!typed.contains_key("extra"), "a disabled input is omitted");
    m.insert("kind".to_string(), text("A"));
    let e = resolve_inputs(&defs(d), &m, &context).unwrap_err();
    assert_eq!(
        e.message,
        "Invalid input for `extra`, missing required input, but received `null`"
    );
    let failing = |_: &str, _: &IndexMap<String, Value>| -> Result<bool, ExpressionError> {
        Err(ExpressionError::new("boom"))
    };
    let context = InputContext {
        condition: Some(&failing),
        ..ctx()
    };
    assert_eq!(
        resolve_inputs(&defs(d), &m, &context).unwrap_err().message,
        "Invalid condition: boom"
    );
}

#[test]
fn check_inputs_reports_every_failing_input_where_resolve_stops_at_the_first() {
    let d = defs(concat!(
        "  - id: count\n    type: INT\n    min: 1\n",
        "  - id: wait\n    type: DURATION\n    defaults: PT1M\n",
        "  - id: name\n    type: STRING\n",
        "  - id: size\n    type: SELECT\n    values: [S, M]\n",
        "  - id: note\n    type: STRING\n    required: false\n    dependsOn:\n      inputs: [size]\n",
    ));
    let mut m = IndexMap::new();
    m.insert("count".to_string(), text("0"));
    m.insert("name".to_string(), text("Ada"));
    m.insert("size".to_string(), text("XL"));
    let checks = check_inputs(&d, &m, &ctx());
    let summary: Vec<(&str, bool, bool, usize)> = checks
        .iter()
        .map(|c| (c.id.as_str(), c.enabled, c.is_default, c.errors.len()))
        .collect();
    assert_eq!(
        summary,
        [
            ("count", true, false, 1),
            ("wait", true, true, 0),
            ("name", true, false, 0),
            ("size", true, false, 1),
            // Its dependency failed: left out, as if it were missing.
            ("note", false, false, 0),
        ]
    );
    assert_eq!(
        checks[0].errors[0].message,
        "Invalid input for `count`, it must be more than `1`, but received `0`"
    );
    assert_eq!(checks[1].value, json!("PT1M"));
    assert_eq!(checks[2].value, json!("Ada"));
    assert!(checks[3].errors[0]
        .message
        .starts_with("Invalid input for `size`"));
    // The same inputs through resolve_inputs: the first failure only.
    let first = resolve_inputs(&d, &m, &ctx()).unwrap_err();
    assert_eq!(first, checks[0].errors[0]);
    // Every input valid: no error anywhere, and the same values resolve_inputs gives.
    m.insert("count".to_string(), text("2"));
    m.insert("size".to_string(), text("M"));
    let checks = check_inputs(&d, &m, &ctx());
    assert!(
        checks.iter().all(|c| c.errors.is_empty() && c.enabled),
        "{checks:?}"
    );
    let typed = resolve_inputs(&d, &m, &ctx()).unwrap();
    assert_eq!(checks[0].value, typed["count"]);
    assert_eq!(checks[4].value, Value::Null, "an optional input left empty");
}

#[test]
fn secrets_need_a_key() {
    let no_key = InputContext {
        secret_key: None,
        ..ctx()
    };
    let e = resolve_inputs(&inputs_flow(), &valid(), &no_key).unwrap_err();
    assert_eq!(e.input_id, "secret");
    assert_eq!(
        e.message,
        "Invalid input for `secret`, Expected `SECRET` but received `******` with errors:\n```\nUnable to use a `SECRET` input/output as encryption is not configured\n```, but received `******`"
    );
}

#[test]
fn secrets_round_trip_with_any_key() {
    for key in [&b"0123456789abcdef"[..], &[7u8; 24][..], KEY, b"short"] {
        let a = encrypt_secret("p4ss", key, IDS.nonce()).unwrap();
        let b = encrypt_secret("p4ss", key, IDS.nonce()).unwrap();
        assert_ne!(a, b, "a fresh nonce per value");
        assert_eq!(decrypt_secret(&a, key).unwrap(), "p4ss");
        assert!(decrypt_secret(&a, b"another-key-of-some-length").is_err());
    }
    assert!(decrypt_secret("not base64!", KEY).is_err());
    assert!(decrypt_secret("AAAA", KEY).is_err());
}

#[test]
fn secret_validator_checks_the_plain_value_and_never_shows_it() {
    let d = "  - id: pw\n    type: SECRET\n    validator: \"[A-Z]+\"\n";
    let enc = one(d, text("ABC")).unwrap();
    assert_eq!(decrypt_secret(enc.as_str().unwrap(), KEY).unwrap(), "ABC");
    assert_eq!(
        one(d, text("abc")).unwrap_err(),
        "Invalid input for `pw`, it must match the pattern `[A-Z]+`, but received `******`"
    );
}

#[test]
fn files_are_storage_uris_only() {
    assert_eq!(
        file_input_uri("io.kestra.tests", "inputs", "E1", "file", "a.yml"),
        "kestra:///io/kestra/tests/inputs/executions/E1/inputs/file/a.yml"
    );
    assert_eq!(
        error_for("file", "/etc/passwd"),
        "Invalid input for `file`, Expected `FILE` but received `/etc/passwd`, but received `/etc/passwd`"
    );
    assert!(error_for("file", "nsfile:///a.txt").contains("Expected `FILE`"));
    assert!(error_for("file", "kestra:///a/../../b").contains("Expected `FILE`"));
    let uploaded = "kestra:///io/kestra/tests/inputs/executions/E1/inputs/file/a.yml";
    assert_eq!(typed_with("file", text(uploaded))["file"], uploaded);
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
    assert_eq!(
        type_flow_output("DURATION", "d", json!("PT300S")).unwrap(),
        json!("PT5M")
    );
    assert_eq!(type_flow_output("STRING", "n", Value::Null).unwrap(), Value::Null);
    assert_eq!(
        type_flow_output("INT", "i", json!("four")).unwrap_err().message,
        "Invalid output for `i`, For input string: \"four\", but received `four`"
    );
    assert!(type_flow_output("NOPE", "i", json!(1)).is_err());
    // SECRET outputs are encrypted with the execution's key.
    assert!(type_flow_output("SECRET", "s", json!("pw")).is_err());
    let enc = type_flow_output_in("SECRET", "s", json!("pw"), &ctx()).unwrap();
    assert_eq!(decrypt_secret(enc.as_str().unwrap(), KEY).unwrap(), "pw");
}
