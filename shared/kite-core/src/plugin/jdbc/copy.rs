//! PostgreSQL's `CopyIn` and `CopyOut`: Kestra's `COPY` statement built from the copy
//! properties.

use serde_json::{Map, Value};

use super::{Database, IoCall, Props, Render, SqlCall, SqlOp};

/// Builds Kestra's `COPY` statement from the copy properties.
fn copy_sql(p: &Props, query: Option<String>, direction: &str) -> Result<String, String> {
    let mut sql = vec!["COPY".to_string()];
    match query {
        Some(query) => sql.push(format!("({query})")),
        None => {
            sql.push(p.text("table")?.ok_or("Missing required property 'table'")?);
            let columns = p.list("columns")?.unwrap_or_default();
            if !columns.is_empty() {
                sql.push(format!("({})", columns.join(", ")));
            }
        }
    }
    sql.push(direction.to_string());
    let mut options = Vec::new();
    let format = p
        .text("format")?
        .unwrap_or_else(|| "TEXT".into())
        .trim()
        .to_ascii_uppercase();
    match format.as_str() {
        "TEXT" => {}
        "CSV" | "BINARY" => options.push(format!("FORMAT {format}")),
        other => {
            return Err(format!(
                "Invalid format '{other}': expected one of TEXT, CSV, BINARY"
            ))
        }
    }
    if p.flag("oids", false)? {
        options.push("OIDS".into());
    }
    if p.flag("freeze", false)? {
        options.push("FREEZE".into());
    }
    let quoted = |text: String| format!("'{}'", text.replace('\'', "''"));
    let character = |name: &str| -> Result<Option<String>, String> {
        match p.rendered(name)? {
            None => Ok(None),
            // YAML's "\t" arrives as a tab; Kestra's examples also write it escaped.
            Some(text) if text == "\\t" => Ok(Some("\t".into())),
            Some(text) if text.chars().count() == 1 => Ok(Some(text)),
            Some(text) => Err(format!("Invalid {name} '{text}': expected one character")),
        }
    };
    if let Some(d) = character("delimiter")? {
        options.push(format!("DELIMITER {}", quoted(d)));
    }
    if let Some(null) = p.rendered("nullString")? {
        options.push(format!("NULL {}", quoted(null)));
    }
    if p.rendered("header")?.is_some() {
        options.push(format!(
            "HEADER {}",
            if p.flag("header", false)? { "TRUE" } else { "FALSE" }
        ));
    }
    if let Some(q) = character("quote")? {
        options.push(format!("QUOTE {}", quoted(q)));
    }
    if let Some(e) = character("escape")? {
        options.push(format!("ESCAPE {}", quoted(e)));
    }
    let force_quote = p.list("forceQuote")?.unwrap_or_default();
    if force_quote == ["*"] {
        options.push("FORCE_QUOTE *".into());
    } else if !force_quote.is_empty() {
        options.push(format!("FORCE_QUOTE ({})", force_quote.join(", ")));
    }
    for (name, option) in [("forceNotNull", "FORCE_NOT_NULL"), ("forceNull", "FORCE_NULL")] {
        let columns = p.list(name)?.unwrap_or_default();
        if !columns.is_empty() {
            options.push(format!("{option} ({})", columns.join(", ")));
        }
    }
    if let Some(encoding) = p.text("encoding")? {
        options.push(format!("ENCODING {}", quoted(encoding)));
    }
    if !options.is_empty() {
        sql.push(format!("WITH ({})", options.join(", ")));
    }
    Ok(sql.join(" "))
}

pub(super) fn prepare_copy_in(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    Ok(IoCall::Sql(SqlCall {
        database: Database::Postgres(p.postgres_connection()?),
        op: SqlOp::CopyIn {
            sql: copy_sql(&p, None, "FROM STDIN")?,
            from: p.required("from")?,
        },
    }))
}

pub(super) fn prepare_copy_out(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    let query = p.text("sql")?;
    Ok(IoCall::Sql(SqlCall {
        database: Database::Postgres(p.postgres_connection()?),
        op: SqlOp::CopyOut {
            sql: copy_sql(&p, query, "TO STDOUT")?,
            format: p.copy_format()?,
            header: p.flag("header", false)?,
        },
    }))
}
