use super::*;

fn t(s: &str) -> String {
    translate(s, PrintMode::Text).unwrap()
}

#[test]
fn prints_through_the_pebble_writer() {
    assert_eq!(
        t("Hello {{ inputs.name }}"),
        "Hello {% set kite_value = inputs.name %}{{ kite_value | kite_print }}"
    );
}

#[test]
fn positional_arguments_get_names() {
    assert!(t("{{ d | date(\"yyyy-MM-dd\") }}").contains("d | date(format=\"yyyy-MM-dd\")"));
    assert!(t("{{ read(inputs.f) }}").contains("read(path=inputs.f)"));
    assert_eq!(
        t("{{ json(j).k }}"),
        "{% set kite_call0 = json(json=j) %}{% set kite_value = kite_call0.k %}{{ kite_value | kite_print }}"
    );
}

#[test]
fn coalescing_becomes_lazy_branches() {
    assert!(t("{{ trigger.body ?? inputs.greeting }}")
        .starts_with("{% if trigger.body is defined and trigger.body is not null %}"));
    assert!(t("{{ a ??? 'x' }}").starts_with("{% if a is defined %}"));
}

#[test]
fn pebble_map_replace_is_chained() {
    assert!(t("{{ s | replace({'a': 'b'}) }}").contains("s | replace(from='a', to='b')"));
}

#[test]
fn whitespace_control_stays_on_the_outer_tags() {
    assert_eq!(
        t("a {{- x -}} b"),
        "a {%- set kite_value = x %}{{ kite_value | kite_print -}} b"
    );
}

#[test]
fn blocks_with_non_ascii_text_are_read_not_sliced_inside_a_character() {
    assert_eq!(t("{# ¡ #}x"), "x");
    assert_eq!(
        translate("{% if inputs.name.x %}{# ¡", PrintMode::Text)
            .unwrap_err()
            .message,
        "Unable to parse the expression `{% if inputs.name.x %}{# ¡`: missing `#}`"
    );
    assert!(translate("{{ inputs.café }}", PrintMode::Text).is_ok());
}

#[test]
fn nesting_past_the_bound_is_refused_before_it_overflows_the_stack() {
    let too_deep = "Unable to parse the expression";
    // Found by the fuzz target: 497 `??` operands overflowed a 2 MB stack.
    let chain = |n: usize| format!("{{{{ {} }}}}", vec!["inputs.n"; n].join(" ?? "));
    assert!(translate(&chain(MAX_NESTING + 1), PrintMode::Text).is_ok());
    let e = translate(&chain(MAX_NESTING + 2), PrintMode::Text).unwrap_err();
    assert!(e.message.starts_with(too_deep), "{}", e.message);
    assert!(
        e.message.ends_with("expressions nest deeper than 64 levels"),
        "{}",
        e.message
    );
    let parens = |n: usize| format!("{{{{ {}1{} }}}}", "(".repeat(n), ")".repeat(n));
    assert!(translate(&parens(MAX_NESTING), PrintMode::Text).is_ok());
    assert!(translate(&parens(MAX_NESTING + 1), PrintMode::Text).is_err());
    let loops = |n: usize| {
        let open: String = (0..n).map(|i| format!("{{% for i{i} in [1] %}}")).collect();
        format!("{open}x{}", "{% endfor %}".repeat(n))
    };
    assert!(translate(&loops(MAX_NESTING), PrintMode::Text).is_ok());
    assert!(translate(&loops(MAX_NESTING + 1), PrintMode::Text).is_err());
    let elifs = |n: usize| {
        format!(
            "{{% if false %}}{}{{% endif %}}",
            "{% elseif json('[1]')[0] == 2 %}x".repeat(n)
        )
    };
    assert!(translate(&elifs(MAX_NESTING - 1), PrintMode::Text).is_ok());
    assert!(translate(&elifs(MAX_NESTING), PrintMode::Text).is_err());
    // Tags one after another are not nested.
    assert!(translate(&"{% if true %}x{% endif %}".repeat(500), PrintMode::Text).is_ok());
}

#[test]
fn raw_blocks_are_kept() {
    assert_eq!(t("{% raw %}{{ x }}{% endraw %}"), "{% raw %}{{ x }}{% endraw %}");
}

#[test]
fn unknown_positional_is_an_error() {
    assert!(translate("{{ x | whatever('a') }}", PrintMode::Text).is_err());
}

#[test]
fn syntax_errors_keep_their_messages() {
    let fail = |s: &str| translate(s, PrintMode::Text).unwrap_err().message;
    assert_eq!(
        fail("{{ x | whatever('a') }}"),
        "Unable to parse the expression `{{ x | whatever('a') }}`: `whatever` takes named arguments only"
    );
    assert_eq!(
        fail("{{ x | jq('a', 'b') }}"),
        "Unable to parse the expression `{{ x | jq('a', 'b') }}`: too many arguments for `jq`"
    );
    assert_eq!(
        fail("{{ s | replace({'a'}) }}"),
        "Unable to parse the expression `{{ s | replace({'a'}) }}`: replace expects {'from': 'to'}"
    );
    assert_eq!(
        fail("{{ s.upper() }}"),
        "Unable to parse the expression `{{ s.upper() }}`: method calls like `.upper()` are not supported"
    );
    assert_eq!(
        fail("{{ x ; }}"),
        "Unable to parse the expression `{{ x ; }}`: unexpected character `;`"
    );
    assert_eq!(
        fail("{{ f(x }}"),
        "Unable to parse the expression `{{ f(x }}`: unbalanced brackets"
    );
    assert_eq!(
        fail("a {{ x"),
        "Unable to parse the expression `a {{ x`: missing `}}`"
    );
    assert_eq!(
        fail("{% raw %}{{ x }}"),
        "Unable to parse the expression `{% raw %}{{ x }}`: missing `{% endraw %}`"
    );
    assert_eq!(
        fail("{% raw %}{{ x }}{% endraw"),
        "Unable to parse the expression `{% raw %}{{ x }}{% endraw`: missing `%}`"
    );
    assert_eq!(
        SyntaxError::UnterminatedString.to_string(),
        "unterminated string literal"
    );
}
