//! What the searches of flows, executions and trigger states share: the namespace
//! prefix filter and the order from Kestra's sort fields.

use kite_engine::ports::Sort;
use rusqlite::ToSql;

/// Appends a namespace filter (exact or prefix on whole segments).
pub(super) fn namespace_filter(
    column: &str,
    ns: &str,
    clauses: &mut Vec<String>,
    args: &mut Vec<Box<dyn ToSql + Send>>,
) {
    clauses.push(format!("({column} = ? OR substr({column}, 1, ?) = ?)"));
    args.push(Box::new(ns.to_string()));
    args.push(Box::new(ns.len() as i64 + 1));
    args.push(Box::new(format!("{ns}.")));
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
