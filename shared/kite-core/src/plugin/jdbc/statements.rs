//! SQL text as the SQL tasks read it: where one statement ends (`Queries`), and Kestra's
//! `:name` parameters turned into the database's own placeholders, so a parameter's
//! value is always bound as data and never spliced into the SQL.
//!
//! Both scan the text once, skipping what is not SQL code: quoted strings (`'…'` with
//! `''`), quoted identifiers (`"…"`), PostgreSQL's dollar quotes (`$tag$…$tag$`) and
//! comments (`-- …`, `/* … */`). Kestra's own split (a regular expression on `;`) and
//! its `:\w+` search do not skip them; this one does, so a `;` or a `:00` inside a
//! string literal stays where it is.

use serde_json::{Map, Value};

/// The placeholders a database's driver understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    /// `$1`, `$2`… (PostgreSQL).
    Dollar,
    /// `?1`, `?2`… (SQLite).
    Question,
}

/// Calls `visit` with each byte of SQL code in `sql` (outside literals and comments) and
/// its index.
fn scan(sql: &str, mut visit: impl FnMut(usize, u8)) {
    let bytes = sql.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'\'' | b'"' => {
                // A doubled quote inside is part of the literal; scanning on finds it.
                i += 1;
                while i < bytes.len() && bytes[i] != b {
                    i += 1;
                }
                i += 1;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 2;
            }
            b'$' => match dollar_tag(&sql[i..]) {
                Some(tag) => {
                    let body = i + tag.len();
                    i = sql[body..]
                        .find(tag)
                        .map_or(bytes.len(), |end| body + end + tag.len());
                }
                None => {
                    visit(i, b);
                    i += 1;
                }
            },
            _ => {
                visit(i, b);
                i += 1;
            }
        }
    }
}

/// The opening tag of a dollar quote at the start of `text` (`$$`, `$body$`), if any.
fn dollar_tag(text: &str) -> Option<&str> {
    let rest = &text[1..];
    let end = rest.find('$')?;
    let name = &rest[..end];
    let valid = name
        .chars()
        .enumerate()
        .all(|(n, c)| c == '_' || c.is_ascii_alphabetic() || (n > 0 && c.is_ascii_digit()) || !c.is_ascii());
    valid.then(|| &text[..end + 2])
}

/// The statements of `sql`, split on the `;` that end them, trimmed; empty ones (a
/// trailing `;`, a comment alone) are left out.
pub fn split_statements(sql: &str) -> Vec<String> {
    let mut ends = Vec::new();
    scan(sql, |i, b| {
        if b == b';' {
            ends.push(i);
        }
    });
    let mut statements = Vec::new();
    let mut start = 0;
    for end in ends.into_iter().chain(std::iter::once(sql.len())) {
        let statement = sql[start..end].trim();
        if has_code(statement) {
            statements.push(statement.to_string());
        }
        start = end + 1;
    }
    statements
}

/// Whether `sql` holds anything besides whitespace and comments.
fn has_code(sql: &str) -> bool {
    let mut code = false;
    scan(sql, |_, b| code |= !b.is_ascii_whitespace());
    // A statement made only of a literal (`'x'`) is still a statement.
    code || sql.starts_with(['\'', '"', '$'])
}

/// `sql` with each `:name` whose name is a key of `parameters` replaced by a placeholder,
/// and the values to bind, in placeholder order. A name used twice binds once
/// (`$1` twice) for [`Placeholder::Dollar`] and [`Placeholder::Question`] alike. Other
/// `:words` (PostgreSQL's `::type` casts, `:name`s not given) are left as written.
pub fn bind_named(sql: &str, parameters: &Map<String, Value>, style: Placeholder) -> (String, Vec<Value>) {
    if parameters.is_empty() {
        return (sql.to_string(), Vec::new());
    }
    let bytes = sql.as_bytes();
    let mut found: Vec<(usize, usize)> = Vec::new();
    scan(sql, |i, b| {
        let starts_name = bytes
            .get(i + 1)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_');
        let after_colon = i > 0 && bytes[i - 1] == b':';
        if b == b':' && starts_name && !after_colon {
            let end = sql[i + 1..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(sql.len(), |n| i + 1 + n);
            found.push((i, end));
        }
    });
    let mut out = String::with_capacity(sql.len());
    let mut names: Vec<&str> = Vec::new();
    let mut values = Vec::new();
    let mut last = 0;
    for (start, end) in found {
        let name = &sql[start + 1..end];
        let Some(value) = parameters.get(name) else {
            continue;
        };
        let index = match names.iter().position(|n| *n == name) {
            Some(i) => i + 1,
            None => {
                names.push(name);
                values.push(value.clone());
                names.len()
            }
        };
        out.push_str(&sql[last..start]);
        out.push(match style {
            Placeholder::Dollar => '$',
            Placeholder::Question => '?',
        });
        out.push_str(&index.to_string());
        last = end;
    }
    out.push_str(&sql[last..]);
    (out, values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn statements_split_on_semicolons_outside_literals_and_comments() {
        let sql = "CREATE TABLE t (a text);\n\
                   INSERT INTO t VALUES ('a;b'), (\"x;y\");\n\
                   -- a comment; with a semicolon\n\
                   /* block; comment */ SELECT $$ body; $$, $f$ x;y $f$;\n\
                   ;  \n";
        assert_eq!(
            split_statements(sql),
            vec![
                "CREATE TABLE t (a text)",
                "INSERT INTO t VALUES ('a;b'), (\"x;y\")",
                "-- a comment; with a semicolon\n/* block; comment */ SELECT $$ body; $$, $f$ x;y $f$",
            ]
        );
        assert_eq!(split_statements("SELECT 1"), vec!["SELECT 1"]);
        assert_eq!(
            split_statements("SELECT 'it''s; fine'"),
            vec!["SELECT 'it''s; fine'"]
        );
        assert!(split_statements("  ; -- nothing\n").is_empty());
        // `$1` is a placeholder, not a dollar quote.
        assert_eq!(
            split_statements("SELECT $1; SELECT 2"),
            vec!["SELECT $1", "SELECT 2"]
        );
    }

    #[test]
    fn named_parameters_become_placeholders_in_order() {
        let params = json!({"id": 7, "name": "x'; DROP TABLE t; --"});
        let params = params.as_object().unwrap();
        let (sql, values) = bind_named(
            "SELECT * FROM t WHERE id = :id AND name = :name OR parent = :id",
            params,
            Placeholder::Dollar,
        );
        assert_eq!(sql, "SELECT * FROM t WHERE id = $1 AND name = $2 OR parent = $1");
        assert_eq!(values, vec![json!(7), json!("x'; DROP TABLE t; --")]);
        let (sql, _) = bind_named("SELECT :name", params, Placeholder::Question);
        assert_eq!(sql, "SELECT ?1");
    }

    #[test]
    fn casts_literals_and_unknown_names_stay() {
        let params = json!({"day": "2024-01-01", "t": 1});
        let params = params.as_object().unwrap();
        let (sql, values) = bind_named(
            "SELECT :day::date, '10:00:t', :other, \"col:t\" -- :t\n, :t",
            params,
            Placeholder::Dollar,
        );
        assert_eq!(sql, "SELECT $1::date, '10:00:t', :other, \"col:t\" -- :t\n, $2");
        assert_eq!(values, vec![json!("2024-01-01"), json!(1)]);
        // Without parameters the text is unchanged.
        assert_eq!(
            bind_named("SELECT :x", &Map::new(), Placeholder::Dollar),
            ("SELECT :x".to_string(), vec![])
        );
    }
}
