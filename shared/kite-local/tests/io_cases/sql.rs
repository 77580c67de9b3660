//! The SQL tasks after plugin-jdbc's SQLite sanity check: a database file carried from
//! task to task (`outputDbFile`, `sqliteFile`), checked by its Assert task and here.

use kite_core::execution::StateType::Success;
use serde_json::json;

use super::{same, Check, Env};

pub async fn all_sqlite(env: &Env) -> Check {
    let done = env.run("jdbc-sqlite.yaml", &[], &[]).await?;
    let tasks = [
        "create_table",
        "insert_data",
        "query",
        "queries",
        "select_and_store",
        "multi_statement",
        "multi_statement_check",
        "assert",
        "purge",
    ];
    done.states(Success, &tasks.map(|t| (t, Success)))?;
    // Kestra's conditions, which its Assert task also checked.
    let rows = done.output("query", "rows");
    same("query.rows[0].field1", rows[0]["field1"].clone(), json!(1))?;
    same("query.rows[1].field2", rows[1]["field2"].clone(), json!(4))?;
    let outputs = done.output("queries", "outputs");
    same("queries.outputs[0].size", outputs[0]["size"].clone(), json!(3))?;
    same("queries.outputs[1].size", outputs[1]["size"].clone(), json!(1))?;
    same(
        "multi_statement_check.row.cnt",
        done.output("multi_statement_check", "row")["cnt"].clone(),
        json!(2),
    )?;
    same(
        "select_and_store.size",
        done.output("select_and_store", "size"),
        json!(2),
    )?;
    let database = done.output("create_table", "databaseUri");
    same(
        "databaseUri's name",
        database.as_str().is_some_and(|u| u.ends_with("/myfile.db")),
        true,
    )?;
    // The finally task deleted every file of the execution: the databases, the stored rows.
    let purged = done.output("purge", "uris");
    let purged: Vec<&str> = purged
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| u.as_str())
        .collect();
    for task in ["create_table", "insert_data", "multi_statement"] {
        let uri = done.output(task, "databaseUri");
        same(
            &format!("{task}'s database purged"),
            purged.contains(&uri.as_str().unwrap_or("")),
            true,
        )?;
    }
    let stored = done.output("select_and_store", "uri");
    same(
        "stored rows purged",
        purged.contains(&stored.as_str().unwrap_or("")),
        true,
    )?;
    same("stored rows gone", env.text(&stored).await.is_err(), true)
}
