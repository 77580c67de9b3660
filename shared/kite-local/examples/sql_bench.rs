//! Rows per second of the SQL tasks reading a table through the worker, as a flow's task
//! runs them: `sql_bench <sqlite|postgres|duckdb> <fetch|store> [rows]` (1,000,000 rows by
//! default). The table (`bench_rows`: an id, two texts, a double, a boolean, a timestamp, a
//! null) is created the first time; SQLite's in `$KITE_BENCH_DIR/bench.db`, DuckDB's in
//! `$KITE_BENCH_DIR/bench.duckdb` (a build with the `duckdb` feature), PostgreSQL's at
//! `$KITE_BENCH_POSTGRES_URL` (`bench/sql.sh` starts a server and sets both). One mode per
//! process, so `/usr/bin/time -v` reports each one's peak memory.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use kite_core::plugin::jdbc::{SqlOutcome, StatementResult};
use kite_core::plugin::{by_name, IoCall};
use kite_engine::ports::FileStorage;
use kite_local::LocalFileStorage;
use kite_worker::sql::{run, SqlClients};
use kite_worker::storage::Scope;
use serde_json::{json, Map, Value};

const PREFIX: &str = "kestra:///bench/sql/executions/e/";

fn call(task: &str, properties: Value) -> kite_core::plugin::jdbc::SqlCall {
    let spec = by_name(&format!("io.kestra.plugin.jdbc.{task}")).expect("registered");
    let properties: Map<String, Value> = properties.as_object().cloned().unwrap_or_default();
    let render = |v: &Value| -> Result<String, kite_core::expression::ExpressionError> {
        Ok(v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
    };
    match (spec.prepare)(&properties, &render).expect("prepare") {
        IoCall::Sql(call) => call,
        other => panic!("{other:?}"),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (engine, mode) = (
        args.get(1).map_or("sqlite", String::as_str),
        args.get(2).map_or("store", String::as_str),
    );
    let rows: u64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let dir = std::env::var("KITE_BENCH_DIR").unwrap_or_else(|_| std::env::temp_dir().display().to_string());
    let connection = match engine {
        "sqlite" => json!({"url": format!("jdbc:sqlite:{dir}/bench.db")}),
        "postgres" => {
            json!({"url": std::env::var("KITE_BENCH_POSTGRES_URL").expect("KITE_BENCH_POSTGRES_URL")})
        }
        "duckdb" => json!({"url": format!("jdbc:duckdb:{dir}/bench.duckdb")}),
        other => panic!("unknown database {other}: sqlite, postgres or duckdb"),
    };
    let task = match engine {
        "postgres" => "postgresql",
        other => other,
    };
    let with = |extra: Value| {
        let mut props = connection.clone();
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            props[k] = v;
        }
        props
    };

    let storage = tempfile::tempdir().expect("tempdir");
    let files: Arc<dyn FileStorage> = Arc::new(LocalFileStorage::new(storage.path()).expect("files"));
    let readable = vec![PREFIX.to_string()];
    let scope = Scope {
        files: &files,
        prefix: "kestra:///bench/sql/executions/e/tasks/q/tr/",
        readable: &readable,
        now: DateTime::<Utc>::UNIX_EPOCH,
    };
    let clients = SqlClients::new();

    let create = match engine {
        "sqlite" => format!(
            "CREATE TABLE IF NOT EXISTS bench_rows (id INTEGER, name TEXT, email TEXT, score REAL, active BOOLEAN, created DATETIME, note TEXT);
             INSERT INTO bench_rows WITH RECURSIVE n(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM n WHERE value < {rows})
             SELECT value, 'customer ' || value, 'user' || value || '@example.com', value / 7.0, value % 3 = 0,
               datetime(1704067200 + value, 'unixepoch'), NULL
             FROM n WHERE NOT EXISTS (SELECT 1 FROM bench_rows LIMIT 1);"
        ),
        "duckdb" => format!(
            "CREATE TABLE IF NOT EXISTS bench_rows (id BIGINT, name VARCHAR, email VARCHAR, score DOUBLE, active BOOLEAN, created TIMESTAMPTZ, note VARCHAR);
             INSERT INTO bench_rows SELECT i, 'customer ' || i, 'user' || i || '@example.com', i / 7.0, i % 3 = 0,
               TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_seconds(i), NULL
             FROM range(1, {rows} + 1) t(i) WHERE NOT EXISTS (SELECT 1 FROM bench_rows LIMIT 1);"
        ),
        _ => format!(
            "CREATE TABLE IF NOT EXISTS bench_rows (id bigint, name text, email text, score float8, active boolean, created timestamptz, note text);
             INSERT INTO bench_rows SELECT i, 'customer ' || i, 'user' || i || '@example.com', i / 7.0, i % 3 = 0,
               timestamptz '2024-01-01' + i * interval '1 second', NULL
             FROM generate_series(1, {rows}) i WHERE NOT EXISTS (SELECT 1 FROM bench_rows LIMIT 1);"
        ),
    };
    let started = Instant::now();
    run(
        &clients,
        &call(&format!("{task}.Queries"), with(json!({"sql": create}))),
        &scope,
    )
    .await
    .expect("table");
    eprintln!("table ready in {:.1} s", started.elapsed().as_secs_f64());

    let fetch_type = if mode == "fetch" { "FETCH" } else { "STORE" };
    let query = call(
        &format!("{task}.Query"),
        with(json!({"sql": format!("SELECT * FROM bench_rows LIMIT {rows}"), "fetchType": fetch_type})),
    );
    let started = Instant::now();
    let outcome = run(&clients, &query, &scope).await.expect("query");
    let seconds = started.elapsed().as_secs_f64();
    let (read, detail) = match outcome {
        SqlOutcome::Ran { results, .. } => match results.as_slice() {
            [StatementResult::Rows(rows)] => (rows.len() as u64, String::new()),
            [StatementResult::Stored { uri, size }] => {
                let bytes = files.size(uri).await.expect("size").unwrap_or(0);
                (*size, format!(", {:.1} MB of Ion", bytes as f64 / 1e6))
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    assert_eq!(read, rows, "every row read");
    println!(
        "{engine} {fetch_type}: {read} rows in {seconds:.2} s: {:.0} rows/s{detail}",
        read as f64 / seconds
    );
}
