//! Fuzz target of input typing: declarations of every input type with arbitrary
//! properties (defaults, validators, bounds, values, item types, dependsOn) and
//! arbitrary provided values, as text or as JSON, typed by `resolve_inputs`; and flow
//! outputs of any type name typed by `type_flow_output_in`.
//!
//! Property: typing never panics, a refusal is an `InputError` with a message, and the
//! plain value of a SECRET never appears in an error message.
//!
//! `PROPTEST_CASES` sets the number of generated cases.

mod fuzz_common;

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use kite_core::expression::{is_truthy, ExpressionEngine, ExpressionError, RenderContext};
use kite_core::id::IdSource;
use kite_core::input::{
    resolve_inputs, type_flow_output_in, type_input, DependsOn, InputContext, InputDefinition, InputError,
    InputType, InputValue,
};
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{json, Map, Value};

/// Cases by default: well under a minute in a debug build on two cores.
const DEFAULT_CASES: u32 = 20_000;

fn config() -> Config {
    fuzz_common::config("tests/proptest-regressions/fuzz_input.txt", DEFAULT_CASES)
}

/// Every SECRET value the cases provide starts with this; nothing else generated
/// contains it, so an error message that does leaks a secret.
const SECRET_MARK: &str = "SeCrEt";

const TYPES: &[InputType] = &[
    InputType::String,
    InputType::Enum,
    InputType::Select,
    InputType::MultiSelect,
    InputType::Int,
    InputType::Float,
    InputType::Boolean,
    InputType::Bool,
    InputType::DateTime,
    InputType::Date,
    InputType::Time,
    InputType::Duration,
    InputType::File,
    InputType::Json,
    InputType::Yaml,
    InputType::Uri,
    InputType::Secret,
    InputType::Array,
    InputType::Email,
];

struct Ids(AtomicU64);

impl IdSource for Ids {
    fn next_id(&self) -> String {
        self.0.fetch_add(1, Ordering::Relaxed).to_string()
    }

    fn nonce(&self) -> [u8; 12] {
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&self.0.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        nonce
    }
}

static IDS: Ids = Ids(AtomicU64::new(1));

// ---------------------------------------------------------------------------------
// values

fn digits() -> impl Strategy<Value = String> {
    "[0-9]{1,45}"
}

/// Text shaped like what each type reads, broken in the ways people and programs
/// break it, and anything else.
fn text() -> BoxedStrategy<String> {
    let shaped = prop_oneof![
        // numbers
        Just("0".to_string()),
        Just("-0".to_string()),
        Just(" 42 ".to_string()),
        Just("2147483648".to_string()),
        Just("-2147483649".to_string()),
        Just("1e39".to_string()),
        Just("3.4028236e38".to_string()),
        Just("1.5f".to_string()),
        Just("NaN".to_string()),
        Just("Infinity".to_string()),
        Just("-".to_string()),
        Just("e".to_string()),
        Just(".".to_string()),
        Just("f".to_string()),
        (
            prop::sample::select(&["", "-", "+"][..]),
            digits(),
            prop::option::of(digits())
        )
            .prop_map(|(s, a, b)| match b {
                Some(b) => format!("{s}{a}.{b}"),
                None => format!("{s}{a}"),
            }),
        // booleans
        Just("true".to_string()),
        Just("FALSE".to_string()),
        Just("yes".to_string()),
        // dates and times
        Just("2024-02-29".to_string()),
        Just("2023-02-29".to_string()),
        Just("2024-13-01".to_string()),
        Just("0000-01-01".to_string()),
        Just("9999-12-31T23:59:59.999999999Z".to_string()),
        Just("0000-01-01T00:00:00+18:00".to_string()),
        Just("9999-12-31T23:59:59-18:00".to_string()),
        Just("2024-01-01T00:00:00+18:00:01".to_string()),
        Just("2024-01-01T24:00:00Z".to_string()),
        Just("2024-01-01T10:00Z".to_string()),
        Just("23:59:59.999999999".to_string()),
        Just("25:00".to_string()),
        Just("12:60".to_string()),
        (0u32..10_000, 0u32..100, 0u32..100).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")),
        (
            0u32..100,
            0u32..100,
            0u32..100,
            prop::sample::select(&["Z", "+01:00", "-18:00", "+19:00", ""][..])
        )
            .prop_map(|(h, m, s, z)| format!("2024-01-01T{h:02}:{m:02}:{s:02}{z}")),
        // durations
        Just("PT0S".to_string()),
        Just("PT".to_string()),
        Just("P".to_string()),
        Just("P1Y".to_string()),
        Just("-PT-1.5S".to_string()),
        Just("PT1,000000001S".to_string()),
        (
            prop::sample::select(&["", "-", "+"][..]),
            prop::option::of(digits()),
            prop::option::of(digits()),
            prop::option::of(digits()),
            prop::option::of((digits(), prop::option::of("[0-9]{0,10}"))),
        )
            .prop_map(|(sign, d, h, m, s)| {
                let mut out = format!("{sign}P");
                if let Some(d) = d {
                    out.push_str(&format!("{d}D"));
                }
                if h.is_some() || m.is_some() || s.is_some() {
                    out.push('T');
                }
                if let Some(h) = h {
                    out.push_str(&format!("-{h}H"));
                }
                if let Some(m) = m {
                    out.push_str(&format!("{m}M"));
                }
                if let Some((s, f)) = s {
                    match f {
                        Some(f) => out.push_str(&format!("{s}.{f}S")),
                        None => out.push_str(&format!("{s}S")),
                    }
                }
                out
            }),
        // structured text
        Just("[]".to_string()),
        Just("[\"a\", \"b\"]".to_string()),
        Just("[1, [2], {\"a\": null}]".to_string()),
        Just("{\"a\": 1}".to_string()),
        Just("[".to_string()),
        Just("a: [1, 2]".to_string()),
        Just("- a\n- b".to_string()),
        Just("&a [*a]".to_string()),
        Just("!!binary aGk=".to_string()),
        Just("a: &x\n  b: *x".to_string()),
        Just(format!("{}1{}", "[".repeat(200), "]".repeat(200))),
        Just(format!("{}1{}", "[".repeat(20_000), "]".repeat(20_000))),
        Just(format!("{}1", "- ".repeat(500))),
        // URIs, emails, files
        Just("https://kestra.io/docs?a=b#c".to_string()),
        Just("kestra:///company/team/flow/executions/E1/inputs/file/a.txt".to_string()),
        Just("kestra:///other/flow/executions/E2/x".to_string()),
        Just("kestra:///company/team/flow/executions/E1/../../../x".to_string()),
        Just("file:///etc/passwd".to_string()),
        Just("nsfile:///a.txt".to_string()),
        Just("a@b.c".to_string()),
        Just("@".to_string()),
        Just("a@".to_string()),
        // choices
        Just("a".to_string()),
        Just("b".to_string()),
        Just("c".to_string()),
        // templates (defaults may carry them)
        Just("{{ inputs.a }}".to_string()),
    ];
    prop_oneof![
        6 => shaped,
        2 => "[a-z0-9 .:@/_-]{0,12}",
        1 => any::<String>(),
    ]
    .boxed()
}

fn json_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        Just(json!(2147483648i64)),
        Just(json!(1.0e300)),
        Just(json!(-0.0)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z.]{0,4}", inner), 0..4)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
    .boxed()
}

fn provided() -> impl Strategy<Value = InputValue> {
    prop_oneof![
        3 => text().prop_map(InputValue::Text),
        2 => json_value().prop_map(InputValue::Json),
    ]
}

/// A SECRET's value: marked text, or JSON holding marked text.
fn secret_value() -> impl Strategy<Value = InputValue> {
    let marked = "[a-zA-Z0-9 ]{0,8}".prop_map(|s| format!("{SECRET_MARK}{s}"));
    prop_oneof![
        3 => marked.clone().prop_map(InputValue::Text),
        1 => marked.clone().prop_map(|s| InputValue::Json(Value::String(s))),
        1 => prop::collection::vec(marked.clone(), 0..3)
            .prop_map(|items| InputValue::Json(Value::Array(items.into_iter().map(Value::String).collect()))),
        1 => prop::collection::vec(marked, 0..3).prop_map(|items| {
            InputValue::Text(serde_json::to_string(&items).expect("a list of strings"))
        }),
    ]
}

// ---------------------------------------------------------------------------------
// declarations

fn id() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(&["a", "b", "c", "a.b", "a.b.c", "b.a", "x", "file", "secret"][..])
            .prop_map(str::to_string),
        1 => "[a-z.]{0,6}",
    ]
}

fn validator() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(".*".to_string()),
        Just("[a-z]+".to_string()),
        Just("\\d{2,4}".to_string()),
        Just("^a$".to_string()),
        Just("(".to_string()),
        Just("[a-".to_string()),
        Just("a{1000000}".to_string()),
        Just("(a*)*b".to_string()),
        Just("\\p{Nope}".to_string()),
        Just("(?<n>a)\\k<n>".to_string()),
        Just("a|".to_string()),
        Just(")(".to_string()),
        "[a-z.*+?()\\[\\]{}|^$\\\\0-9]{0,10}",
    ]
}

fn bound() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i32>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        text().prop_map(Value::String),
        Just(Value::Null),
        Just(json!([1])),
        Just(json!({"a": 1})),
    ]
}

fn definition() -> impl Strategy<Value = InputDefinition> {
    (
        (
            id(),
            prop::sample::select(TYPES),
            any::<bool>(),
            prop::option::of(prop_oneof![text().prop_map(Value::String), json_value()]),
            prop::option::of(validator()),
        ),
        (
            prop::option::of(bound()),
            prop::option::of(bound()),
            prop::option::of(bound()),
            prop::option::of(bound()),
        ),
        (
            prop::option::of(prop::collection::vec(text(), 0..4)),
            any::<bool>(),
            prop::option::of(prop::sample::select(TYPES)),
            prop::option::of(prop::sample::select(
                &[".txt", "", "..", "/x", ".a/b", "no-dot"][..],
            )),
            prop::option::of((
                prop::collection::vec(id(), 0..3),
                prop::option::of(prop::sample::select(
                    &[
                        "{{ inputs.a == 'a' }}",
                        "{{ inputs.b }}",
                        "{{ true }}",
                        "false",
                        "{{ inputs.missing.x }}",
                        "{{ inputs.secret }}",
                        "{{",
                    ][..],
                )),
            )),
        ),
    )
        .prop_map(
            |(
                (id, input_type, required, defaults, validator),
                (min, max, after, before),
                (values, allow_custom_value, item_type, extension, depends_on),
            )| {
                let mut def = InputDefinition::of(&id, input_type);
                def.required = required;
                def.defaults = defaults;
                def.validator = validator;
                def.min = min;
                def.max = max;
                def.after = after;
                def.before = before;
                def.values = values;
                def.allow_custom_value = allow_custom_value;
                def.item_type = item_type;
                def.extension = extension.map(str::to_string);
                def.depends_on = depends_on.map(|(inputs, condition)| DependsOn {
                    inputs,
                    condition: condition.map(str::to_string),
                });
                def
            },
        )
}

/// Whether values of `def` are secrets (a SECRET, or a list of SECRET items).
fn is_secret(def: &InputDefinition) -> bool {
    def.input_type == InputType::Secret
        || (def.input_type == InputType::Array && def.item_type == Some(InputType::Secret))
}

/// Declarations and what is provided for them: secrets get marked values, others any
/// value, some ids get none, and some undeclared ids get one.
fn case() -> impl Strategy<Value = (Vec<InputDefinition>, IndexMap<String, InputValue>)> {
    prop::collection::vec((definition(), secret_value(), provided(), 0u8..4), 0..6)
        .prop_flat_map(|entries| {
            let extra = prop::collection::vec((id(), provided()), 0..2);
            (Just(entries), extra)
        })
        .prop_map(|(entries, extra)| {
            let mut defs = Vec::new();
            let mut provided = IndexMap::new();
            for (mut def, secret, other, choice) in entries {
                // A flow refuses two inputs with one id.
                if defs.iter().any(|d: &InputDefinition| d.id == def.id) {
                    continue;
                }
                let secret_def = is_secret(&def);
                if secret_def {
                    // Defaults of a secret are secret too.
                    if def.defaults.is_some() {
                        def.defaults = Some(json!(format!("{SECRET_MARK}default")));
                    }
                }
                match choice {
                    0 => {}
                    _ if secret_def => {
                        provided.insert(def.id.clone(), secret);
                    }
                    _ => {
                        provided.insert(def.id.clone(), other);
                    }
                }
                defs.push(def);
            }
            for (id, value) in extra {
                if !defs.iter().any(|d| d.id == id) {
                    provided.insert(id, value);
                }
            }
            (defs, provided)
        })
}

// ---------------------------------------------------------------------------------
// the property

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-12-20T10:00:00Z")
        .expect("a date")
        .with_timezone(&Utc)
}

fn condition(template: &str, inputs: &IndexMap<String, Value>) -> Result<bool, ExpressionError> {
    let variables = json!({ "inputs": inputs });
    let rendered = ExpressionEngine::new().render(template, &RenderContext::new(&variables, now()))?;
    Ok(is_truthy(&rendered))
}

fn contexts() -> [InputContext<'static>; 2] {
    static KEY: &[u8] = b"I6EGNzRESu3X3pKZidrqCGOHQFUFC0yK";
    let with_key = InputContext {
        namespace: "company.team",
        flow_id: "flow",
        execution_id: "E1",
        secret_key: Some(KEY),
        ids: Some(&IDS),
        condition: Some(&condition),
    };
    // No key: SECRET inputs are refused, which must not show their value either.
    let without_key = InputContext {
        secret_key: None,
        ids: None,
        condition: None,
        ..with_key
    };
    [with_key, without_key]
}

fn check_error(e: &InputError) -> Result<(), TestCaseError> {
    prop_assert!(!e.message.trim().is_empty(), "an error without a message: {e:?}");
    prop_assert!(
        !e.message.contains(SECRET_MARK),
        "a secret value in an error message: {}",
        e.message
    );
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn inputs_are_typed_or_refused_with_a_message((defs, provided) in case()) {
        for ctx in contexts() {
            match resolve_inputs(&defs, &provided, &ctx) {
                Ok(typed) => {
                    // Typed SECRET values are encrypted, never the plain text.
                    let text = serde_json::to_string(&typed).expect("JSON");
                    prop_assert!(!text.contains(SECRET_MARK), "a plain secret in {text}");
                }
                Err(e) => check_error(&e)?,
            }
            for def in &defs {
                if let Some(value) = provided.get(&def.id) {
                    if let Err(e) = type_input(def, value.clone(), &ctx) {
                        check_error(&e)?;
                    }
                }
            }
        }
    }

    #[test]
    fn outputs_are_typed_or_refused_with_a_message(
        type_name in prop_oneof![
            4 => prop::sample::select(TYPES).prop_map(|t| t.name().to_string()),
            1 => "[A-Za-z]{0,8}",
        ],
        id in id(),
        value in json_value(),
        secret in secret_value(),
    ) {
        let value = match (type_name.as_str(), secret) {
            ("SECRET", InputValue::Text(s)) => Value::String(s),
            ("SECRET", InputValue::Json(v)) => v,
            _ => value,
        };
        for ctx in contexts() {
            if let Err(e) = type_flow_output_in(&type_name, &id, value.clone(), &ctx) {
                check_error(&e)?;
            }
        }
    }
}
