//! What the searches of flows, executions and trigger states share: a filter built of
//! `WHERE` clauses and their arguments (namespace prefix, free text, labels), the order
//! from Kestra's sort fields, and one page read with the total count of matches.

use kite_core::execution::Label;
use kite_engine::ports::{Page, Pagination, Sort, StoreError};
use rusqlite::{params_from_iter, Connection, Row, ToSql};

use super::backend;

/// The `WHERE` clauses of a search, joined with `AND`, and the arguments of their `?`
/// in order.
#[derive(Default)]
pub(super) struct Filter {
    clauses: Vec<String>,
    args: Vec<Box<dyn ToSql + Send>>,
}

impl Filter {
    /// Adds a clause; its `?` take the arguments added next, in order.
    pub(super) fn clause(&mut self, clause: impl Into<String>) -> &mut Self {
        self.clauses.push(clause.into());
        self
    }

    pub(super) fn arg(&mut self, value: impl ToSql + Send + 'static) -> &mut Self {
        self.args.push(Box::new(value));
        self
    }

    /// The namespace in `column` is `ns` or lies under it (a prefix on whole segments).
    pub(super) fn namespace(&mut self, column: &str, ns: &str) -> &mut Self {
        self.clause(format!("({column} = ? OR substr({column}, 1, ?) = ?)"))
            .arg(ns.to_string())
            .arg(ns.len() as i64 + 1)
            .arg(format!("{ns}."))
    }

    /// `text`, when given and not empty, occurs in `haystack` (an SQL expression), ignoring case.
    pub(super) fn text(&mut self, haystack: &str, text: Option<&String>) -> &mut Self {
        match text.filter(|q| !q.is_empty()) {
            Some(q) => self
                .clause(format!("instr(lower({haystack}), lower(?)) > 0"))
                .arg(q.clone()),
            None => self,
        }
    }

    /// The JSON array of `{"key", "value"}` objects in `column` holds `label`.
    pub(super) fn label(&mut self, column: &str, label: &Label) -> &mut Self {
        self.clause(format!(
            "EXISTS (SELECT 1 FROM json_each({column}) j WHERE json_extract(j.value, '$.key') = ? AND json_extract(j.value, '$.value') = ?)"
        ))
        .arg(label.key.clone())
        .arg(label.value.clone())
    }

    /// Counts the rows of `from` that match and reads one page of their `columns` in
    /// `order`, each row through `row`.
    pub(super) fn page<T>(
        &self,
        conn: &Connection,
        from: &str,
        columns: &str,
        order: &str,
        pagination: Pagination,
        mut row: impl FnMut(&Row) -> Result<T, StoreError>,
    ) -> Result<Page<T>, StoreError> {
        let filter = if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        };
        let args = || params_from_iter(self.args.iter().map(|a| a.as_ref() as &dyn ToSql));
        let total: i64 = conn
            .query_row(&format!("SELECT COUNT(*) FROM {from} {filter}"), args(), |r| {
                r.get(0)
            })
            .map_err(backend)?;
        let sql = format!(
            "SELECT {columns} FROM {from} {filter} ORDER BY {order} LIMIT {} OFFSET {}",
            pagination.size,
            pagination.offset()
        );
        let mut stmt = conn.prepare(&sql).map_err(backend)?;
        let mut rows = stmt.query(args()).map_err(backend)?;
        let mut results = Vec::new();
        while let Some(r) = rows.next().map_err(backend)? {
            results.push(row(r)?);
        }
        Ok(Page {
            results,
            total: total.max(0) as u64,
        })
    }
}

/// The `ORDER BY` of Kestra's sort fields, those in `allowed` (field, column) only;
/// `default` when none is.
pub(super) fn order_by(sort: &[Sort], allowed: &[(&str, &str)], default: &str) -> String {
    let parts: Vec<String> = sort
        .iter()
        .filter_map(|s| {
            allowed
                .iter()
                .find(|(k, _)| *k == s.field)
                .map(|(_, col)| format!("{col} {}", if s.descending { "DESC" } else { "ASC" }))
        })
        .collect();
    if parts.is_empty() {
        default.to_string()
    } else {
        parts.join(", ")
    }
}
