//! Kestra's expressions as flows use them.

use chrono::{DateTime, Utc};
use kite_core::expression::{is_truthy, ExpressionEngine, FileReadError, FileReader, RenderContext};
use serde_json::{json, Value};

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-12-20T10:00:00.123456Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn render(t: &str, vars: &Value) -> Result<String, String> {
    ExpressionEngine::new()
        .render(t, &RenderContext::new(vars, now()))
        .map_err(|e| e.message)
}

#[test]
fn coalescing_falls_back_on_undefined_and_null() {
    let webhook = json!({"trigger": {"body": {"a": 1}}, "inputs": {"greeting": "hi"}});
    assert_eq!(
        render("{{ trigger.body ?? inputs.greeting }}", &webhook).unwrap(),
        r#"{"a":1}"#
    );
    let text_body = json!({"trigger": {"body": "bla"}});
    assert_eq!(
        render("{{ trigger.body ?? inputs.greeting }}", &text_body).unwrap(),
        "bla"
    );
    let api = json!({"inputs": {"greeting": "hey there"}});
    assert_eq!(
        render("{{ trigger.body ?? inputs.greeting }}", &api).unwrap(),
        "hey there"
    );
    let null_body = json!({"trigger": {"body": null}, "inputs": {"greeting": "x"}});
    assert_eq!(
        render("{{ trigger.body ?? inputs.greeting }}", &null_body).unwrap(),
        "x"
    );
    // ??? keeps null
    assert_eq!(
        render("{{ trigger.body ??? 'fallback' }}", &null_body).unwrap(),
        ""
    );
    assert_eq!(
        render("{{ missing ??? 'fallback' }}", &null_body).unwrap(),
        "fallback"
    );
    // the right-hand side is strict
    let err = render("{{ trigger.body ?? inputs.greeting }}", &json!({})).unwrap_err();
    assert!(
        err.starts_with("Unable to find `inputs` used in the expression"),
        "{err}"
    );
    // the left side only is lazy: a defined left side never evaluates the right one
    assert_eq!(
        render("{{ trigger.body ?? inputs.greeting }}", &text_body).unwrap(),
        "bla"
    );
    assert_eq!(
        render("{{ outputs.missing ?? '' }}", &json!({"outputs": {}})).unwrap(),
        ""
    );
}

#[test]
fn subscripts_with_variables_and_dashes() {
    let vars = json!({
        "taskrun": {"value": "a a"},
        "outputs": {"1-2-1_return": {"s1": {"a a": {"value": "deep"}}}}
    });
    assert_eq!(
        render("{{ outputs['1-2-1_return'].s1[taskrun.value].value }}", &vars).unwrap(),
        "deep"
    );
    assert_eq!(
        render("{{outputs['1-2-1_return'].s1['a a'].value}}", &vars).unwrap(),
        "deep"
    );
}

#[test]
fn values_print_like_pebble() {
    let vars = json!({"m": {"value": "x"}, "l": [1, "a"], "f": 42.42, "i": 3, "b": true, "n": null});
    assert_eq!(render("{{ m }}", &vars).unwrap(), r#"{"value":"x"}"#);
    assert_eq!(render("{{ l }}", &vars).unwrap(), r#"[1,"a"]"#);
    assert_eq!(
        render("{{ f }} {{ i }} {{ b }} [{{ n }}]", &vars).unwrap(),
        "42.42 3 true []"
    );
    assert_eq!(render("{{ 'a' ~ i }}", &vars).unwrap(), "a3");
}

#[test]
fn tests_and_control_flow() {
    let vars = json!({"s": "{\"a\":1}", "t": "plain", "items": [1, 2, 3]});
    assert_eq!(
        render("{{ s is json ? 'JSON' : 'TEXT' }}", &vars).unwrap(),
        "JSON"
    );
    assert_eq!(
        render("{% if t is json %}JSON{% else %}TEXT{% endif %}", &vars).unwrap(),
        "TEXT"
    );
    assert_eq!(
        render("{% for i in items %}{{ i }}{% endfor %}", &vars).unwrap(),
        "123"
    );
    assert_eq!(render("{{ x is defined }}", &vars).unwrap(), "false");
    assert_eq!(
        render(
            "{% if t == 'plain' %}yes{% elseif t == 'x' %}no{% endif %}",
            &vars
        )
        .unwrap(),
        "yes"
    );
}

#[test]
fn filters() {
    let vars = json!({"d": "2024-12-20T10:00:00Z", "s": "Hello World", "m": {"a": 1, "b": 2}, "j": "{\"a\":{\"b\":\"c\"}}"});
    assert_eq!(
        render("{{ d | date('yyyy-MM-dd') }}", &vars).unwrap(),
        "2024-12-20"
    );
    assert_eq!(
        render("{{ d | dateAdd(1, 'DAYS') | date('yyyy-MM-dd') }}", &vars).unwrap(),
        "2024-12-21"
    );
    assert_eq!(render("{{ d | timestamp }}", &vars).unwrap(), "1734688800");
    assert_eq!(render("{{ s | upper }}", &vars).unwrap(), "HELLO WORLD");
    assert_eq!(render("{{ s | slugify }}", &vars).unwrap(), "hello-world");
    assert_eq!(
        render("{{ s | replace({'World': 'Kite'}) }}", &vars).unwrap(),
        "Hello Kite"
    );
    assert_eq!(render("{{ s | substringAfter(' ') }}", &vars).unwrap(), "World");
    assert_eq!(render("{{ m | keys }}", &vars).unwrap(), r#"["a","b"]"#);
    assert_eq!(render("{{ m | json }}", &vars).unwrap(), r#"{"a":1,"b":2}"#);
    assert_eq!(render("{{ j | jq('.a.b') }}", &vars).unwrap(), r#"["c"]"#);
    assert_eq!(render("{{ j | jq('.a.b') | first }}", &vars).unwrap(), "c");
    assert_eq!(render("{{ '42' | number }}", &vars).unwrap(), "42");
    assert_eq!(
        render("{{ s | split(' ') | join('-') }}", &vars).unwrap(),
        "Hello-World"
    );
    assert_eq!(render("{{ missing | default('dflt') }}", &vars).unwrap(), "dflt");
}

#[test]
fn functions() {
    let vars = json!({"vars": {"a": "{{ b }}", "b_text": "x"}, "b": "resolved", "j": "{\"k\":[1,2]}"});
    assert_eq!(
        render("{{ now() }}", &vars).unwrap(),
        "2024-12-20T10:00:00.123456Z"
    );
    assert_eq!(render("{{ now('yyyy') }}", &vars).unwrap(), "2024");
    assert_eq!(render("{{ render(vars.a) }}", &vars).unwrap(), "resolved");
    assert_eq!(render("{{ json(j).k[1] }}", &vars).unwrap(), "2");
    assert_eq!(render("{{ fromJson(j).k | length }}", &vars).unwrap(), "2");
}

#[test]
fn current_each_output_selects_the_iteration() {
    let vars = json!({
        "taskrun": {"value": "v21"},
        "parents": [{"taskrun": {"value": "v11"}}],
        "outputs": {"t": {"v11": {"v21": {"value": "return-v11-v21"}}}}
    });
    assert_eq!(
        render("{{ currentEachOutput(outputs.t).value }}", &vars).unwrap(),
        "return-v11-v21"
    );
}

struct Files;
impl FileReader for Files {
    fn read_file(&self, uri: &str) -> Result<Vec<u8>, FileReadError> {
        Ok(format!("content of {uri}").into_bytes())
    }
}

#[test]
fn read_only_opens_the_executions_files() {
    let vars = json!({"inputs": {"f": "kestra:///dev/hello/executions/E1/inputs/f/a.txt", "g": "kestra:///dev/other/executions/E2/x"}});
    let prefixes = vec!["kestra:///dev/hello/executions/E1/".to_string()];
    let ctx = RenderContext {
        variables: &vars,
        files: Some(&Files),
        readable_prefixes: &prefixes,
        error_logs: &[],
        now: now(),
        secrets: None,
        kv: None,
    };
    let engine = ExpressionEngine::new();
    assert_eq!(
        engine.render("{{ read(inputs.f) }}", &ctx).unwrap(),
        "content of kestra:///dev/hello/executions/E1/inputs/f/a.txt"
    );
    let err = engine.render("{{ read(inputs.g) }}", &ctx).unwrap_err();
    assert_eq!(
        err.message,
        "Unable to read the file 'kestra:///dev/other/executions/E2/x' as it didn't belong to the current execution"
    );
    assert!(engine.render("{{ read('/etc/passwd') }}", &ctx).is_err());
}

/// Namespace files, of which one exists.
struct NamespaceFiles;
impl FileReader for NamespaceFiles {
    fn read_file(&self, uri: &str) -> Result<Vec<u8>, FileReadError> {
        match uri {
            "kestra:///company/team/_files/sql/q.sql" => Ok(b"SELECT 1".to_vec()),
            "kestra:///other/_files/a.txt" => Ok(b"other's".to_vec()),
            _ => Err(FileReadError::NotFound(uri.to_string())),
        }
    }
}

#[test]
fn read_of_a_path_opens_the_flows_namespace_files() {
    let vars = json!({"flow": {"namespace": "company.team", "id": "f"}});
    let ctx = RenderContext {
        variables: &vars,
        files: Some(&NamespaceFiles),
        readable_prefixes: &[],
        error_logs: &[],
        now: now(),
        secrets: None,
        kv: None,
    };
    let engine = ExpressionEngine::new();
    for template in [
        "{{ read('sql/q.sql') }}",
        "{{ read('/sql/q.sql') }}",
        "{{ read('nsfile:///sql/q.sql') }}",
        "{{ read('./sql//q.sql') }}",
    ] {
        assert_eq!(engine.render(template, &ctx).unwrap(), "SELECT 1", "{template}");
    }
    assert_eq!(
        engine
            .render("{{ read('a.txt', namespace='other') }}", &ctx)
            .unwrap(),
        "other's"
    );
    assert_eq!(
        engine.render("{{ read('none.txt') }}", &ctx).unwrap_err().message,
        "File '/none.txt' was not found in namespace 'company.team'."
    );
    let err = engine
        .render("{{ read('../x/_files/a.txt') }}", &ctx)
        .unwrap_err();
    assert!(err.message.contains("without '..'"), "{}", err.message);
}

#[test]
fn typed_rendering_and_values() {
    let engine = ExpressionEngine::new();
    let vars = json!({"inputs": {"array": [1, 2, 3], "n": 4}});
    let ctx = RenderContext::new(&vars, now());
    assert_eq!(
        engine.render_typed("{{ inputs.array }}", &ctx).unwrap(),
        json!([1, 2, 3])
    );
    assert_eq!(engine.render_typed("{{ inputs.n }}", &ctx).unwrap(), json!(4));
    assert_eq!(
        engine.render_typed("n={{ inputs.n }}", &ctx).unwrap(),
        json!("n=4")
    );
    assert_eq!(
        engine
            .render_value(&json!({"k": "{{ inputs.n }}", "l": ["{{ inputs.n }}"]}), &ctx)
            .unwrap(),
        json!({"k": "4", "l": ["4"]})
    );
}

#[test]
fn truthiness_matches_kestra() {
    for falsy in ["false", "0", "-0", ""] {
        assert!(!is_truthy(falsy), "{falsy}");
    }
    for truthy in ["true", "1", "False", "no", "x"] {
        assert!(is_truthy(truthy), "{truthy}");
    }
}

#[test]
fn the_environment_is_not_reachable() {
    assert!(render("{{ get_env(name='PATH') }}", &json!({})).is_err());
}

#[test]
fn syntax_errors_are_reported() {
    let err = render("{{ inputs.a ", &json!({})).unwrap_err();
    assert!(err.contains("Unable to parse"), "{err}");
}

#[test]
fn whole_variables_reach_the_template_when_it_needs_them() {
    let vars = json!({"k": "b", "outputs": {"a": {"v": 1}, "b": {"v": 2}}});
    assert_eq!(
        render("{{ outputs.a.v }}-{{ outputs[k].v }}", &vars).unwrap(),
        "1-2"
    );
    assert_eq!(render("{% set o = outputs %}{{ o.b.v }}", &vars).unwrap(), "2");
    assert_eq!(
        render("{% for key, t in outputs %}{{ key }}{{ t.v }}{% endfor %}", &vars).unwrap(),
        "a1b2"
    );
    assert_eq!(render("{{ outputs | keys | join(',') }}", &vars).unwrap(), "a,b");
    let err = render("{{ outputs.c.v }}", &vars).unwrap_err();
    assert_eq!(
        err,
        "Unable to find `c` used in the expression `{{ outputs.c.v }}` at line 1"
    );
}

#[test]
fn hash_filters() {
    let vars = json!({"s": "test"});
    assert_eq!(
        render("{{ s | md5 }}", &vars).unwrap(),
        "098f6bcd4621d373cade4e832627b4f6"
    );
    assert_eq!(
        render("{{ s | sha1 }}", &vars).unwrap(),
        "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3"
    );
    assert_eq!(
        render("{{ s | sha256 }}", &vars).unwrap(),
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    );
    assert_eq!(
        render("{{ s | sha512 }}", &vars).unwrap(),
        "ee26b0dd4af7e749aa1a8ee3c10ae9923f618980772e473f8819a5d4940e0db27ac185f8a0e1d5f84f88bc887fd67b143732c304cc5fa9ad8e6f57f50028a8ff"
    );
    assert!(render("{{ [1] | md5 }}", &vars).is_err());
}

#[test]
fn operators_and_tests() {
    let vars = json!({"a": 1, "n": null, "s": "x", "t": true, "f": false});
    assert_eq!(render("{{ a is defined }}", &vars).unwrap(), "true");
    assert_eq!(render("{{ b is not defined }}", &vars).unwrap(), "true");
    assert_eq!(render("{{ n is null }}", &vars).unwrap(), "true");
    assert_eq!(render("{{ s is null }}", &vars).unwrap(), "false");
    assert_eq!(render("{{ t and not f }}", &vars).unwrap(), "true");
    assert_eq!(render("{{ f or a == 1 }}", &vars).unwrap(), "true");
    assert_eq!(render("{{ a != 1 ? 'yes' : 'no' }}", &vars).unwrap(), "no");
    assert_eq!(render("{{ s ~ '-' ~ a }}", &vars).unwrap(), "x-1");
    assert_eq!(render("{{ a + 2 }}", &vars).unwrap(), "3");
    assert_eq!(render("{% raw %}{{ a }}{% endraw %}", &vars).unwrap(), "{{ a }}");
    assert_eq!(render("<b>{{ '<i>' }}</b>", &vars).unwrap(), "<b><i></b>");
}

#[test]
fn more_filters() {
    let vars = json!({
        "d": "2024-12-20T10:00:00.123Z",
        "l": [[1, 2], [3]],
        "items": [3, 1, 2],
        "m": {"a": 1},
        "m2": {"b": 2},
        "s": "  hello world  ",
        "p": "a.b.c",
    });
    assert_eq!(
        render("{{ d | date('HH:mm:ss.SSS') }}", &vars).unwrap(),
        "10:00:00.123"
    );
    assert_eq!(
        render(
            "{{ d | date('yyyy-MM-dd HH:mm', timeZone='Europe/Paris') }}",
            &vars
        )
        .unwrap(),
        "2024-12-20 11:00"
    );
    assert_eq!(
        render(
            "{{ '20/12/2024' | date('yyyy-MM-dd', existingFormat='dd/MM/yyyy') }}",
            &vars
        )
        .unwrap(),
        "2024-12-20"
    );
    assert_eq!(
        render("{{ d | timestampMicro }}", &vars).unwrap(),
        "1734688800123000"
    );
    assert_eq!(render("{{ l | flatten }}", &vars).unwrap(), "[1,2,3]");
    assert_eq!(render("{{ items | chunk(2) }}", &vars).unwrap(), "[[3,1],[2]]");
    assert_eq!(render("{{ items | sort }}", &vars).unwrap(), "[1,2,3]");
    assert_eq!(
        render("{{ items | first }}-{{ items | last }}", &vars).unwrap(),
        "3-2"
    );
    assert_eq!(render("{{ items | length }}", &vars).unwrap(), "3");
    assert_eq!(render("{{ m | values }}", &vars).unwrap(), "[1]");
    assert_eq!(render("{{ m | merge(m2) }}", &vars).unwrap(), r#"{"a":1,"b":2}"#);
    assert_eq!(render("{{ m | yaml }}", &vars).unwrap(), "a: 1\n");
    assert_eq!(render("{{ s | trim | title }}", &vars).unwrap(), "Hello World");
    assert_eq!(
        render("{{ s | trim | capitalize }}", &vars).unwrap(),
        "Hello world"
    );
    assert_eq!(render("{{ p | substringBefore('.') }}", &vars).unwrap(), "a");
    assert_eq!(
        render("{{ p | substringBeforeLast('.') }}", &vars).unwrap(),
        "a.b"
    );
    assert_eq!(render("{{ p | substringAfterLast('.') }}", &vars).unwrap(), "c");
    assert_eq!(render("{{ p | startsWith('a.') }}", &vars).unwrap(), "true");
    assert_eq!(render("{{ p | endsWith('x') }}", &vars).unwrap(), "false");
    assert_eq!(render("{{ 'a%20b' | urldecode }}", &vars).unwrap(), "a b");
    assert_eq!(render("{{ -4 | abs }}", &vars).unwrap(), "4");
    assert_eq!(render("{{ '3.5' | number }}", &vars).unwrap(), "3.5");
    assert_eq!(render("{{ '12' | number('INT') }}", &vars).unwrap(), "12");
    assert_eq!(render("{{ 'a\nb' | indent(2) }}", &vars).unwrap(), "a\n  b");
    assert_eq!(render("{{ 'a\nb' | nindent(2) }}", &vars).unwrap(), "\n  a\n  b");
    assert_eq!(
        render("{{ \"it's\" | escapeChar('single') }}", &vars).unwrap(),
        "it\\'s"
    );
    assert_eq!(render("{{ 'abcdef' | abbreviate(5) }}", &vars).unwrap(), "ab...");
    assert_eq!(render("{{ 'hello' | upper | lower }}", &vars).unwrap(), "hello");
}

#[test]
fn more_functions() {
    let engine = ExpressionEngine::new();
    let vars = json!({"v": "{{ w }}", "w": "{{ 'deep' }}", "y": "a: 1\nb: [x]"});
    let logs = vec![json!({"message": "boom", "level": "ERROR"})];
    let ctx = RenderContext {
        error_logs: &logs,
        ..RenderContext::new(&vars, now())
    };
    assert_eq!(engine.render("{{ render(v) }}", &ctx).unwrap(), "deep");
    assert_eq!(
        engine.render("{{ renderOnce(v) }}", &ctx).unwrap(),
        "{{ 'deep' }}"
    );
    assert_eq!(engine.render("{{ yaml(y).b[0] }}", &ctx).unwrap(), "x");
    assert_eq!(
        engine.render("{{ errorLogs()[0].message }}", &ctx).unwrap(),
        "boom"
    );
    assert_eq!(
        engine.render("{{ now(timeZone='Europe/Paris') }}", &ctx).unwrap(),
        "2024-12-20T11:00:00.123456+01:00"
    );
    let uuid = engine.render("{{ uuid() }}", &ctx).unwrap();
    assert_eq!(uuid.len(), 36, "{uuid}");
    assert_ne!(uuid, engine.render("{{ uuid() }}", &ctx).unwrap());
    assert!(!engine.render("{{ id() }}", &ctx).unwrap().is_empty());
    for _ in 0..20 {
        let n: i64 = engine
            .render("{{ randomInt(1, 3) }}", &ctx)
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..3).contains(&n), "{n}");
    }
    assert!(engine.render("{{ randomInt(3, 1) }}", &ctx).is_err());
    assert!(engine
        .render("{{ printContext() }}", &ctx)
        .unwrap()
        .contains("\"w\""));
}

fn secrets(vars: &[(&str, &str)]) -> kite_core::secret::Secrets {
    use base64::Engine as _;
    let encoded = vars
        .iter()
        .map(|(k, v)| (*k, base64::engine::general_purpose::STANDARD.encode(v)));
    kite_core::secret::Secrets::new(std::sync::Arc::new(
        kite_core::secret::EnvironmentSecrets::from_vars(encoded),
    ))
}

#[test]
fn secret_reads_the_hosts_secrets() {
    let secrets = secrets(&[
        ("SECRET_API_TOKEN", "s3cr3t"),
        ("SECRET_DB", r#"{"user": "kite", "port": 5432}"#),
    ]);
    let vars = json!({"inputs": {"name": "api_token"}});
    let ctx = RenderContext {
        secrets: Some(&secrets),
        ..RenderContext::new(&vars, now())
    };
    let engine = ExpressionEngine::new();
    let render = |t: &str| engine.render(t, &ctx).map_err(|e| e.message);
    assert_eq!(
        render("Bearer {{ secret('API_TOKEN') }}"),
        Ok("Bearer s3cr3t".into())
    );
    assert_eq!(render("{{ secret(key=\"api_token\") }}"), Ok("s3cr3t".into()));
    // A computed name, and Kestra's sub-key of a JSON secret.
    assert_eq!(render("{{ secret(inputs.name | upper) }}"), Ok("s3cr3t".into()));
    assert_eq!(render("{{ secret('DB', subkey='user') }}"), Ok("kite".into()));
    assert_eq!(
        render("{{ secret('DB', 'company.team', 'port') }}"),
        Ok("5432".into())
    );
    assert_eq!(
        render("{{ secret('DB', subkey='password') }}"),
        Err("Cannot find secret sub-key 'password' in secret 'DB'.".into())
    );
    assert_eq!(
        render("{{ secret('API_TOKEN', subkey='x') }}"),
        Err("Failed to read secret sub-key 'x' from secret 'API_TOKEN'. Ensure the secret contains valid JSON value.".into())
    );
    // Every value given is remembered for masking.
    assert_eq!(secrets.mask("s3cr3t kite 5432"), "****** ****** ******");
}

#[test]
fn a_missing_secret_fails_the_render_with_kestras_message() {
    let secrets = secrets(&[("SECRET_PRESENT", "x")]);
    let vars = json!({});
    let ctx = RenderContext {
        secrets: Some(&secrets),
        ..RenderContext::new(&vars, now())
    };
    let engine = ExpressionEngine::new();
    assert_eq!(
        engine
            .render("{{ secret('MISSING') }}", &ctx)
            .map_err(|e| e.message),
        Err("Cannot find secret for key 'MISSING'.".into())
    );
    assert_eq!(
        engine.render("{{ secret() }}", &ctx).map_err(|e| e.message),
        Err("The 'secret' function expects an argument 'key'.".into())
    );
    // A host that gives no secrets: the same message, no panic.
    assert_eq!(
        render("{{ secret('PRESENT') }}", &vars),
        Err("Cannot find secret for key 'PRESENT'.".into())
    );
}

#[test]
fn a_secret_that_is_not_base64_fails_the_render() {
    let source = kite_core::secret::EnvironmentSecrets::from_vars([("SECRET_BAD", "%%%")]);
    let secrets = kite_core::secret::Secrets::new(std::sync::Arc::new(source));
    let vars = json!({});
    let ctx = RenderContext {
        secrets: Some(&secrets),
        ..RenderContext::new(&vars, now())
    };
    let e = ExpressionEngine::new()
        .render("{{ secret('bad') }}", &ctx)
        .expect_err("not base64");
    assert!(
        e.message
            .starts_with("Could not decode secret 'SECRET_BAD', make sure it is Base64-encoded"),
        "{}",
        e.message
    );
}

#[test]
fn coalescing_works_inside_parentheses_arguments_and_statements() {
    let vars = json!({"inputs": {"name": "kite", "empty": null}, "list": [1, 2]});
    let cases = [
        ("{{ (inputs.missing ?? 'x') == 'x' }}", "true"),
        ("{{ (inputs.name ?? 'x') == 'x' }}", "false"),
        ("{{ (inputs.empty ?? 'fallback') | upper }}", "FALLBACK"),
        ("{{ (inputs.empty ??? 'kept') == 'kept' }}", "false"),
        ("{{ (inputs.missing ??? 'kept') == 'kept' }}", "true"),
        ("{{ ((inputs.a ?? inputs.empty) ?? 'deep') ~ '!' }}", "deep!"),
        ("{{ (inputs.missing ?? list) | length }}", "2"),
        ("{% if (inputs.missing ?? 'yes') == 'yes' %}ok{% endif %}", "ok"),
        ("{% for i in (inputs.missing ?? list) %}{{ i }}{% endfor %}", "12"),
        ("{{ (inputs.name ?? 'x') ?? 'y' }}", "kite"),
        // A call's null falls through as a variable's does; `???` keeps it.
        ("{{ json('null') ?? 'none' }}", "none"),
        ("{{ json('\"a\"') ?? 'none' }}", "a"),
        ("{{ (json('null') ??? 'kept') == 'kept' }}", "false"),
        ("{{ json('null') ?? inputs.empty ?? 'last' }}", "last"),
    ];
    for (template, expected) in cases {
        assert_eq!(render(template, &vars).as_deref(), Ok(expected), "{template}");
    }
}

#[test]
fn coalescing_in_an_elif_condition() {
    let vars = json!({"inputs": {"name": "kite"}});
    let t = "{% if inputs.name == 'x' %}x{% elseif (inputs.missing ?? 'y') == 'y' %}y{% endif %}";
    assert_eq!(render(t, &vars).as_deref(), Ok("y"));
}

#[test]
fn base64_filters_encode_and_decode_utf8_text() {
    let vars = json!({"inputs": {"text": "héllo wörld", "encoded": "aMOpbGxvIHfDtnJsZA==", "none": null}});
    assert_eq!(
        render("{{ inputs.text | base64encode }}", &vars).unwrap(),
        "aMOpbGxvIHfDtnJsZA=="
    );
    assert_eq!(
        render("{{ inputs.encoded | base64decode }}", &vars).unwrap(),
        "héllo wörld"
    );
    assert_eq!(
        render("{{ inputs.text | base64encode | base64decode }}", &vars).unwrap(),
        "héllo wörld"
    );
    assert_eq!(render("{{ inputs.none | base64encode }}", &vars).unwrap(), "");
    let e = render("{{ inputs.text | base64decode }}", &vars).unwrap_err();
    assert!(e.contains("is not base64"), "{e}");
}

#[test]
fn the_null_literal_is_pebbles_null() {
    let vars = json!({"a": null, "b": 1, "s": "x", "m": {"field": "v"}});
    let r = |t: &str| render(t, &vars).unwrap();
    assert_eq!(r("{{ null }}"), "");
    assert_eq!(r("{{ a == null }}"), "true");
    assert_eq!(r("{{ s == null }}"), "false");
    assert_eq!(r("{{ s != null }}"), "true");
    assert_eq!(r("{{ missing ?? null }}"), "");
    assert_eq!(r("{{ m.field ?? null }}"), "v");
    assert_eq!(r("{{ m.other ?? null }}"), "");
    assert_eq!(r("{% if a is null %}yes{% endif %}"), "yes");
    assert_eq!(r("{% set x = null %}[{{ x }}]"), "[]");
    assert_eq!(r("{{ [1, null] }}"), "[1,null]");
    // A field named `null` is a field, not the literal.
    assert_eq!(render("{{ o.null }}", &json!({"o": {"null": 3}})).unwrap(), "3");
}
