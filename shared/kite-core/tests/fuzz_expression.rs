//! Fuzz target of the expression translator and renderer: templates generated from
//! Pebble's pieces (prints, tags, filters, functions, coalescing, deep nesting), broken
//! ones (unbalanced delimiters, cut short, random characters) and the seed corpus in
//! `tests/fuzz-corpus/expression/` are rendered with a small context.
//!
//! Property: no render panics, and every render ends (an error is a fine answer). The
//! renderer's bounds (loop iterations, output size, render depth) keep its work finite;
//! each case runs under a timeout, so a render that outlives them fails the case.
//!
//! `PROPTEST_CASES` sets the number of generated cases.

mod fuzz_common;

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use kite_core::expression::{ExpressionEngine, RenderContext};
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{json, Value};

/// Cases by default: well under a minute in a debug build on two cores.
const DEFAULT_CASES: u32 = 800;

/// Milliseconds one case may take. The bounds allow a million loop iterations, which a
/// debug build runs in a few seconds at most.
const CASE_TIMEOUT_MS: u32 = 20_000;

fn config() -> Config {
    Config {
        timeout: CASE_TIMEOUT_MS,
        ..fuzz_common::config("tests/proptest-regressions/fuzz_expression.txt", DEFAULT_CASES)
    }
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-12-20T10:00:00.123456Z")
        .expect("a date")
        .with_timezone(&Utc)
}

/// What the templates can name: a few of each kind of value, and values that are
/// templates themselves (for `render()`), one of which renders itself.
fn variables() -> Value {
    json!({
        "inputs": {
            "name": "World",
            "n": 3,
            "f": 2.5,
            "yes": true,
            "none": null,
            "list": [1, "two", 3.0, null, {"a": 1}],
            "map": {"a": 1, "b": "two", "c": [1, 2]},
            "date": "2024-01-02T03:04:05Z",
            "json": "{\"a\": [1, 2, {\"b\": null}]}",
            "empty": "",
        },
        "vars": {
            "tpl": "{{ inputs.name }}",
            "self": "{{ render(vars.self) }}",
            "twice": "{{ render(vars.tpl) }}{{ render(vars.tpl) }}",
            "loop": "{% for i in range(1, 10) %}{{ i }}{% endfor %}",
            "big": "x".repeat(4096),
            "unicode": "héllo wörld ☃ 𝄞",
        },
        "outputs": {"t1": {"value": "out", "vars": {"k": "v"}}, "each": {"a": {"value": 1}}},
        "taskrun": {"value": "a", "id": "tr1"},
        "flow": {"id": "f", "namespace": "company.team"},
        "execution": {"id": "e1", "startDate": "2024-12-20T10:00:00Z"},
        "trigger": {"body": {"a": 1}},
        "labels": {"env": "dev"},
    })
}

// ---------------------------------------------------------------------------------
// the grammar of Pebble pieces

fn ident() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("x".to_string()),
        Just("i".to_string()),
        Just("k".to_string()),
        Just("v".to_string()),
        Just("loop".to_string()),
        "[a-z_][a-zA-Z0-9_]{0,6}",
    ]
}

fn variable() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("inputs.name"),
        Just("inputs.n"),
        Just("inputs.f"),
        Just("inputs.yes"),
        Just("inputs.none"),
        Just("inputs.list"),
        Just("inputs.list[0]"),
        Just("inputs.list[4].a"),
        Just("inputs.list[99]"),
        Just("inputs.map"),
        Just("inputs.map.c[1]"),
        Just("inputs.map['b']"),
        Just("inputs['name']"),
        Just("inputs.date"),
        Just("inputs.json"),
        Just("inputs.empty"),
        Just("inputs.missing"),
        Just("inputs.missing.deeper"),
        Just("vars.tpl"),
        Just("vars.self"),
        Just("vars.twice"),
        Just("vars.loop"),
        Just("vars.big"),
        Just("vars.unicode"),
        Just("outputs.t1.value"),
        Just("outputs.t1.vars.k"),
        Just("outputs.each"),
        Just("taskrun.value"),
        Just("flow.namespace"),
        Just("execution.startDate"),
        Just("trigger.body"),
        Just("trigger.body.a"),
        Just("labels"),
        Just("loop.index"),
        Just("loop.first"),
        Just("nothing"),
        Just("parent.taskrun.value"),
    ]
    .prop_map(str::to_string)
}

fn string_literal() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("'yyyy-MM-dd'".to_string()),
        Just("\"HH:mm:ss.SSS\"".to_string()),
        Just("'iso'".to_string()),
        Just("'.a'".to_string()),
        Just("'.[] | .b'".to_string()),
        Just("','".to_string()),
        Just("''".to_string()),
        Just("'{{ inputs.name }}'".to_string()),
        Just("'{% for i in range(1, 3) %}{{ i }}{% endfor %}'".to_string()),
        Just("'it\\'s'".to_string()),
        Just("'Europe/Paris'".to_string()),
        Just("'DAYS'".to_string()),
        Just("'{\"a\": 1}'".to_string()),
        Just("'a: [1, 2]'".to_string()),
        "[a-zA-Z0-9 ,.:/-]{0,12}".prop_map(|s| format!("'{s}'")),
        "[^'\\\\]{0,8}".prop_map(|s| format!("'{s}'")),
    ]
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        (-5i64..20).prop_map(|n| n.to_string()),
        Just("0".to_string()),
        Just("100000".to_string()),
        Just("1000".to_string()),
        Just("9223372036854775807".to_string()),
        Just("-9223372036854775808".to_string()),
        Just("99999999999999999999999".to_string()),
        Just("1.5".to_string()),
        Just("1e308".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
    ]
}

/// jq programs: paths, constructors, and the generators and recursion jq offers.
fn jq_program() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just(".".to_string()),
        Just(".a".to_string()),
        Just(".[]".to_string()),
        Just(".[0]".to_string()),
        Just("length".to_string()),
        Just("keys".to_string()),
        Just("tostring".to_string()),
        Just("tojson".to_string()),
        Just("fromjson".to_string()),
        Just("empty".to_string()),
        Just("error(\"boom\")".to_string()),
        Just("null".to_string()),
        Just("not".to_string()),
        Just("recurse".to_string()),
        Just("repeat(.)".to_string()),
        Just("range(10)".to_string()),
        Just("range(1000000000)".to_string()),
        Just("limit(3; repeat(1))".to_string()),
        Just("until(. > 100; . + 1)".to_string()),
        Just("[while(. < 100; . + 1)]".to_string()),
        Just("def f: f; f".to_string()),
        Just("def f: [f]; f".to_string()),
        Just("input".to_string()),
        Just("$__loc__".to_string()),
        (0u32..1000).prop_map(|n| n.to_string()),
    ];
    atom.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} | {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a}, {b}")),
            inner.clone().prop_map(|a| format!("[{a}]")),
            inner.clone().prop_map(|a| format!("{{a: {a}}}")),
            inner.clone().prop_map(|a| format!("last({a})")),
            inner.clone().prop_map(|a| format!("first({a})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("if {a} then {b} else . end")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("reduce {a} as $x (0; {b})")),
        ]
    })
}

fn filter() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("upper".to_string()),
        Just("lower".to_string()),
        Just("title".to_string()),
        Just("trim".to_string()),
        Just("length".to_string()),
        Just("first".to_string()),
        Just("last".to_string()),
        Just("reverse".to_string()),
        Just("sort".to_string()),
        Just("unique".to_string()),
        Just("json".to_string()),
        Just("toJson".to_string()),
        Just("yaml".to_string()),
        Just("keys".to_string()),
        Just("values".to_string()),
        Just("abs".to_string()),
        Just("flatten".to_string()),
        Just("slugify".to_string()),
        Just("className".to_string()),
        Just("timestamp".to_string()),
        Just("timestampNano".to_string()),
        Just("md5".to_string()),
        Just("sha256".to_string()),
        Just("urlencode".to_string()),
        Just("urldecode".to_string()),
        Just("base64encode".to_string()),
        Just("base64decode".to_string()),
        Just("escapeChar('shell')".to_string()),
        Just("number".to_string()),
        Just("number('INT')".to_string()),
        string_literal().prop_map(|f| format!("date({f})")),
        (string_literal(), string_literal()).prop_map(|(f, z)| format!("date({f}, timeZone={z})")),
        (number(), string_literal()).prop_map(|(n, u)| format!("dateAdd({n}, {u})")),
        jq_program().prop_map(|p| format!("jq('{}')", p.replace('\'', "\\'"))),
        jq_program().prop_map(|p| format!("jq(\"{}\")", p.replace('"', "\\\""))),
        (string_literal(), string_literal()).prop_map(|(a, b)| format!("replace({{{a}: {b}}})")),
        (string_literal(), string_literal()).prop_map(|(a, b)| format!("replace(from={a}, to={b})")),
        Just("replace({'a'})".to_string()),
        string_literal().prop_map(|d| format!("split({d})")),
        (string_literal(), number()).prop_map(|(d, n)| format!("split({d}, {n})")),
        string_literal().prop_map(|d| format!("join({d})")),
        string_literal().prop_map(|d| format!("default({d})")),
        (number(), number()).prop_map(|(a, b)| format!("slice({a}, {b})")),
        number().prop_map(|n| format!("abbreviate({n})")),
        number().prop_map(|n| format!("chunk({n})")),
        number().prop_map(|n| format!("indent({n})")),
        number().prop_map(|n| format!("nindent({n}, '> ')")),
        number().prop_map(|n| format!("round({n})")),
        string_literal().prop_map(|s| format!("substringBefore({s})")),
        string_literal().prop_map(|s| format!("substringAfterLast({s})")),
        string_literal().prop_map(|s| format!("startsWith({s})")),
        Just("merge({'z': 1})".to_string()),
        Just("merge([1])".to_string()),
        Just("nosuchfilter".to_string()),
        Just("date(".to_string()),
    ]
}

fn function() -> impl Strategy<Value = String> {
    prop_oneof![
        (number(), number()).prop_map(|(a, b)| format!("range({a}, {b})")),
        (number(), number(), number()).prop_map(|(a, b, c)| format!("range({a}, {b}, {c})")),
        Just("range(1, 1000)".to_string()),
        Just("range(1, 100000)".to_string()),
        Just("now()".to_string()),
        string_literal().prop_map(|f| format!("now({f})")),
        string_literal().prop_map(|z| format!("now(timeZone={z})")),
        variable().prop_map(|v| format!("render({v})")),
        variable().prop_map(|v| format!("render({v}, recursive=true)")),
        string_literal().prop_map(|s| format!("render({s})")),
        variable().prop_map(|v| format!("renderOnce({v})")),
        string_literal().prop_map(|s| format!("fromJson({s})")),
        string_literal().prop_map(|s| format!("json({s}).a")),
        string_literal().prop_map(|s| format!("yaml({s})")),
        string_literal().prop_map(|s| format!("fromYaml({s})")),
        string_literal().prop_map(|s| format!("read({s})")),
        Just("read('kestra:///company/team/f/executions/e1/x')".to_string()),
        string_literal().prop_map(|s| format!("fileURI({s})")),
        string_literal().prop_map(|s| format!("secret({s})")),
        string_literal().prop_map(|s| format!("kv({s})")),
        Just("errorLogs()".to_string()),
        Just("currentEachOutput(outputs.each)".to_string()),
        Just("uuid()".to_string()),
        Just("id()".to_string()),
        (number(), number()).prop_map(|(a, b)| format!("randomInt({a}, {b})")),
        Just("printContext()".to_string()),
        Just("fetchContext()".to_string()),
        Just("get_env(name='HOME')".to_string()),
        Just("nosuch()".to_string()),
        (ident(), string_literal()).prop_map(|(f, s)| format!("{f}({s})")),
    ]
}

const BINARY: &[&str] = &[
    "+", "-", "*", "/", "//", "%", "**", "~", "==", "!=", "<", ">", "<=", ">=", "and", "or", "in", "??",
    "???", "equals", "is", "is not",
];

fn expression() -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        3 => variable(),
        2 => string_literal(),
        2 => number(),
        1 => Just("true".to_string()),
        1 => Just("false".to_string()),
        1 => Just("null".to_string()),
        1 => ident(),
        2 => function(),
    ];
    leaf.prop_recursive(5, 40, 4, |inner| {
        prop_oneof![
            3 => (inner.clone(), filter()).prop_map(|(e, f)| format!("{e} | {f}")),
            3 => (inner.clone(), prop::sample::select(BINARY), inner.clone())
                .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            1 => (inner.clone(), inner.clone(), inner.clone()).prop_map(|(c, a, b)| format!("{c} ? {a} : {b}")),
            1 => inner.clone().prop_map(|e| format!("({e})")),
            1 => inner.clone().prop_map(|e| format!("not {e}")),
            1 => inner.clone().prop_map(|e| format!("-{e}")),
            1 => inner.clone().prop_map(|e| format!("{e} is defined")),
            1 => inner.clone().prop_map(|e| format!("{e} is null")),
            1 => prop::collection::vec(inner.clone(), 0..4).prop_map(|items| format!("[{}]", items.join(", "))),
            1 => prop::collection::vec((string_literal(), inner.clone()), 0..3).prop_map(|entries| {
                let entries: Vec<String> = entries.into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
                format!("{{{}}}", entries.join(", "))
            }),
            1 => (inner.clone(), inner.clone()).prop_map(|(e, i)| format!("{e}[{i}]")),
            1 => (inner.clone(), ident()).prop_map(|(e, a)| format!("{e}.{a}")),
            1 => (inner.clone(), ident()).prop_map(|(e, m)| format!("{e}.{m}()")),
            1 => (ident(), inner).prop_map(|(f, e)| format!("{f}({e})")),
        ]
    })
    .boxed()
}

/// A template: text, prints, comments and tags, nested.
fn template() -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        3 => "[a-zA-Z0-9 ,.:\n-]{0,10}",
        4 => expression().prop_map(|e| format!("{{{{ {e} }}}}")),
        1 => expression().prop_map(|e| format!("{{{{- {e} -}}}}")),
        1 => "[^{}]{0,10}".prop_map(|c| format!("{{# {c} #}}")),
        1 => (ident(), expression()).prop_map(|(v, e)| format!("{{% set {v} = {e} %}}")),
        1 => "[^{}%]{0,10}".prop_map(|t| format!("{{% raw %}}{{{{ {t} }}}}{{% endraw %}}")),
        1 => Just("{% macro m() %}{% endmacro %}".to_string()),
        1 => Just("{% include 'x' %}".to_string()),
        1 => Just("{% extends 'x' %}".to_string()),
        1 => Just("{% import 'x' as y %}".to_string()),
        1 => Just("{% break %}".to_string()),
        1 => Just("{% continue %}".to_string()),
    ];
    leaf.prop_recursive(4, 48, 4, |inner| {
        let body = prop::collection::vec(inner, 0..4).prop_map(|parts| parts.concat());
        prop_oneof![
            3 => prop::collection::vec(body.clone(), 1..4).prop_map(|parts| parts.concat()),
            2 => (ident(), expression(), body.clone())
                .prop_map(|(v, e, b)| format!("{{% for {v} in {e} %}}{b}{{% endfor %}}")),
            1 => (ident(), ident(), expression(), body.clone())
                .prop_map(|(k, v, e, b)| format!("{{% for {k}, {v} in {e} %}}{b}{{% endfor %}}")),
            1 => (ident(), expression(), body.clone(), body.clone()).prop_map(|(v, e, b, o)| {
                format!("{{% for {v} in {e} %}}{b}{{% else %}}{o}{{% endfor %}}")
            }),
            2 => (expression(), body.clone()).prop_map(|(c, b)| format!("{{% if {c} %}}{b}{{% endif %}}")),
            1 => (expression(), body.clone(), expression(), body.clone(), body.clone()).prop_map(
                |(c, b, d, e, f)| format!("{{% if {c} %}}{b}{{% elseif {d} %}}{e}{{% else %}}{f}{{% endif %}}")
            ),
            1 => (ident(), body.clone()).prop_map(|(v, b)| format!("{{% set {v} %}}{b}{{% endset %}}")),
            1 => body.clone().prop_map(|b| format!("{{% filter upper %}}{b}{{% endfilter %}}")),
        ]
    })
    .boxed()
}

/// Ways to break a template: cut it, drop or repeat a piece, insert delimiters or
/// random characters.
#[derive(Debug, Clone)]
enum Mutation {
    Truncate(prop::sample::Index),
    Delete(prop::sample::Index, usize),
    Insert(prop::sample::Index, String),
    Duplicate(prop::sample::Index, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let piece = prop_oneof![
        Just("{{".to_string()),
        Just("}}".to_string()),
        Just("{%".to_string()),
        Just("%}".to_string()),
        Just("{#".to_string()),
        Just("#}".to_string()),
        Just("{% endfor %}".to_string()),
        Just("{% endif %}".to_string()),
        Just("{% else %}".to_string()),
        Just("{% endraw %}".to_string()),
        Just("'".to_string()),
        Just("\"".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("??".to_string()),
        Just("?".to_string()),
        Just(":".to_string()),
        Just("|".to_string()),
        Just("\\".to_string()),
        Just("\u{0}".to_string()),
        Just("\u{feff}".to_string()),
        any::<String>().prop_map(|s| s.chars().take(6).collect()),
    ];
    prop_oneof![
        1 => any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        1 => (any::<prop::sample::Index>(), 1usize..8).prop_map(|(i, n)| Mutation::Delete(i, n)),
        3 => (any::<prop::sample::Index>(), piece).prop_map(|(i, p)| Mutation::Insert(i, p)),
        1 => (any::<prop::sample::Index>(), 1usize..16).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
    ]
}

/// The char boundary at or before `index` of `s`.
fn boundary(s: &str, index: &prop::sample::Index) -> usize {
    let mut at = index.index(s.len() + 1);
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn mutate(mut s: String, mutations: &[Mutation]) -> String {
    for m in mutations {
        match m {
            Mutation::Truncate(i) => {
                let at = boundary(&s, i);
                s.truncate(at);
            }
            Mutation::Delete(i, n) => {
                let from = boundary(&s, i);
                let to = s[from..]
                    .char_indices()
                    .nth(*n)
                    .map_or(s.len(), |(k, _)| from + k);
                s.replace_range(from..to, "");
            }
            Mutation::Insert(i, piece) => {
                let at = boundary(&s, i);
                s.insert_str(at, piece);
            }
            Mutation::Duplicate(i, n) => {
                let from = boundary(&s, i);
                let to = s[from..]
                    .char_indices()
                    .nth(*n)
                    .map_or(s.len(), |(k, _)| from + k);
                let copy = s[from..to].to_string();
                s.insert_str(to, &copy);
            }
        }
    }
    s
}

/// Deeply nested expressions and blocks: parentheses, lists, filters, calls, ifs.
fn deep() -> impl Strategy<Value = String> {
    let shapes = prop_oneof![
        Just(("(", ")")),
        Just(("[", "]")),
        Just(("render(", ")")),
        Just(("{'a': ", "}")),
        Just(("not (", ")")),
        Just(("(1 + ", ")")),
        Just(("(inputs.x ?? ", ")")),
    ];
    prop_oneof![
        (shapes, 1usize..3000, any::<bool>()).prop_map(|((open, close), depth, balanced)| {
            let closes = if balanced { depth } else { depth / 2 };
            format!("{{{{ {}1{} }}}}", open.repeat(depth), close.repeat(closes))
        }),
        (1usize..1000).prop_map(|depth| format!("{{{{ 1{} }}}}", " | upper".repeat(depth))),
        (1usize..1000).prop_map(|depth| format!("{{{{ {} }}}}", vec!["inputs.n"; depth].join(" ?? "))),
        (1usize..300).prop_map(|depth| {
            format!(
                "{}x{}",
                "{% if true %}".repeat(depth),
                "{% endif %}".repeat(depth)
            )
        }),
        (1usize..100).prop_map(|depth| {
            let open: String = (0..depth).map(|i| format!("{{% for i{i} in [1] %}}")).collect();
            format!("{open}x{}", "{% endfor %}".repeat(depth))
        }),
        (1usize..200).prop_map(|depth| "{{".repeat(depth) + &"}}".repeat(depth)),
    ]
}

fn case() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => template(),
        3 => (template(), prop::collection::vec(mutation(), 1..4)).prop_map(|(t, m)| mutate(t, &m)),
        1 => deep(),
        1 => any::<String>(),
        1 => prop::collection::vec(any::<u8>(), 0..64)
            .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
        1 => "[{}%#'\"()\\[\\]|?:.,a-z0-9 ]{0,40}",
    ]
}

/// Renders `template` every way the engine offers; each may fail, none may panic.
fn render_all(engine: &ExpressionEngine, template: &str) {
    let variables = variables();
    let ctx = RenderContext::new(&variables, now());
    let _ = engine.render(template, &ctx);
    let _ = engine.render_typed(template, &ctx);
    let _ = engine.render_value(&json!({ template: [template] }), &ctx);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn templates_render_or_fail_without_panicking(template in case()) {
        render_all(&ExpressionEngine::new(), &template);
    }

    #[test]
    fn seed_templates_broken_render_or_fail_without_panicking(
        seed in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 0..5),
    ) {
        let (_, text) = seed.get(seeds());
        render_all(&ExpressionEngine::new(), &mutate(text.clone(), &mutations));
    }
}

fn seeds() -> &'static [(String, String)] {
    static SEEDS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    SEEDS.get_or_init(|| fuzz_common::corpus("expression"))
}

/// Every seed as it is.
#[test]
fn seed_templates_render_or_fail_without_panicking() {
    let engine = ExpressionEngine::new();
    for (name, text) in seeds() {
        eprintln!("seed {name}");
        render_all(&engine, text);
    }
}
