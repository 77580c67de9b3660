//! DuckDB's tasks against the DuckDB library this build links (the `duckdb` feature):
//! typed values as Kestra's converter makes them, `STORE` read back through `IonToCsv`,
//! parameters bound as data, `inputFiles` and `{{ workingDir }}` with `read_csv_auto`,
//! `outputFiles`, a database stored by one task and opened by the next, a bad statement
//! failing with DuckDB's message, a stopped task run interrupting its query, and the
//! example flow on the local engine.
#![cfg(feature = "duckdb")]

use std::time::Duration;

use kite_core::execution::StateType;
use kite_core::plugin::jdbc::{row_json, SqlCall, SqlError, SqlOutcome, StatementResult};
use kite_core::plugin::scripts::WORKING_DIR_MARK;
use kite_core::plugin::IoCall;
use kite_engine::ports::FileStorage;
use kite_local::LocalFileStorage;
use kite_worker::sql::{run, SqlClients};
use serde_json::{json, Value};

mod common;
mod task_files;
use task_files::{prepare, Folder};

const QUERY: &str = "io.kestra.plugin.jdbc.duckdb.Query";
const QUERIES: &str = "io.kestra.plugin.jdbc.duckdb.Queries";

struct Worker {
    folder: Folder,
    clients: SqlClients,
}

impl Worker {
    fn new() -> Worker {
        Worker {
            folder: Folder::new(),
            clients: SqlClients::new(),
        }
    }

    /// The task's call, `{{ workingDir }}` rendered as the flow's renderer does.
    fn call(task: &str, mut properties: Value) -> SqlCall {
        for name in ["sql", "parameters"] {
            if let Some(Value::String(text)) = properties.get(name) {
                properties[name] = json!(text.replace("{{ workingDir }}", WORKING_DIR_MARK));
            }
        }
        match prepare(task, properties).expect("prepared") {
            IoCall::Sql(call) => call,
            other => panic!("{other:?}"),
        }
    }

    async fn run(&self, task: &str, properties: Value) -> Result<SqlOutcome, SqlError> {
        run(
            &self.clients,
            &Worker::call(task, properties),
            &self.folder.scope(),
        )
        .await
    }

    async fn ran(&self, task: &str, properties: Value) -> SqlOutcome {
        self.run(task, properties).await.expect("ran")
    }

    async fn results(&self, task: &str, properties: Value) -> Vec<StatementResult> {
        match self.ran(task, properties).await {
            SqlOutcome::Ran { results, .. } => results,
            other => panic!("{other:?}"),
        }
    }

    /// The rows of the last statement, fetched.
    async fn rows(&self, task: &str, mut properties: Value) -> Vec<Value> {
        properties["fetchType"] = json!("FETCH");
        match self.results(task, properties).await.last() {
            Some(StatementResult::Rows(rows)) => rows.iter().map(row_json).collect(),
            other => panic!("{other:?}"),
        }
    }

    async fn as_csv(&self, uri: &str) -> String {
        let IoCall::Serdes(call) =
            prepare("io.kestra.plugin.serdes.csv.IonToCsv", json!({"from": uri})).expect("prepare")
        else {
            panic!("not a serdes call")
        };
        let answer = kite_worker::serdes::run(&self.folder.scope(), &call)
            .await
            .expect("converted");
        self.folder.text(&answer.uri)
    }
}

#[tokio::test]
async fn values_are_kestras() {
    let worker = Worker::new();
    let rows = worker
        .rows(
            QUERIES,
            json!({"timeZoneId": "Europe/Paris", "sql": r#"
                CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
                SELECT NULL AS t_null, 9223372036854775807::BIGINT AS t_bigint, true AS t_boolean,
                    DATE '1992-09-20' AS t_date, 12345.12345::DOUBLE AS t_double,
                    12345.123::DECIMAL(18, 3) AS t_decimal, 9223372036854775807::HUGEINT AS t_hugeint,
                    2147483647::INTEGER AS t_integer, INTERVAL 28 DAYS AS t_interval,
                    INTERVAL '1 year 2 months 3 days 04:05:06.5' AS t_interval_full,
                    INTERVAL '-1 year 1 month -1 day -00:00:01' AS t_interval_negative,
                    123.456::REAL AS t_real, 127::SMALLINT AS t_smallint,
                    TIMESTAMP '2020-06-10 15:55:23.383345' AS t_timestamp,
                    TIMESTAMPTZ '2001-08-22 03:04:05.321-07' AS t_timestamptz,
                    127::TINYINT AS t_tinyint, 9223372036854775807::UBIGINT AS t_ubigint,
                    2147483647::UINTEGER AS t_uinteger, 32767::USMALLINT AS t_usmallint,
                    127::UTINYINT AS t_utinyint, 'test' AS t_varchar, 'happy'::mood AS t_enum,
                    TIME '04:05:30' AS t_time, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::UUID AS t_uuid,
                    '\xAA\xAB'::BLOB AS t_blob, [1, 2, 3] AS t_list,
                    array_value(array_value(1, 2), array_value(3, 4)) AS t_array,
                    [DATE '2024-01-01', NULL] AS t_dates,
                    {'key1': 1, 'key2': 'value', 'at': TIMESTAMPTZ '2024-01-01 00:00:00+00'} AS t_struct,
                    MAP {'a': 1, 'b': 2} AS t_map,
                    '{"key": "value", "number": 42}'::JSON AS t_json
            "#}),
        )
        .await;
    assert_eq!(
        rows,
        vec![json!({
            "t_null": null, "t_bigint": 9223372036854775807_i64, "t_boolean": true,
            "t_date": "1992-09-20", "t_double": 12345.12345, "t_decimal": 12345.123,
            "t_hugeint": "9223372036854775807", "t_integer": 2147483647, "t_interval": "28 days",
            "t_interval_full": "1 year 2 months 3 days 04:05:06.5",
            "t_interval_negative": "-11 months -1 days -00:00:01",
            "t_real": 123.456, "t_smallint": 127,
            "t_timestamp": "2020-06-10T15:55:23.383345+02:00",
            "t_timestamptz": "2001-08-22T10:04:05.321Z",
            "t_tinyint": 127, "t_ubigint": "9223372036854775807", "t_uinteger": 2147483647,
            "t_usmallint": 32767, "t_utinyint": 127, "t_varchar": "test", "t_enum": "happy",
            "t_time": "04:05:30", "t_uuid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "t_blob": "qqs=", "t_list": [1, 2, 3], "t_array": [[1, 2], [3, 4]],
            "t_dates": ["2024-01-01", null],
            "t_struct": {"key1": 1, "key2": "value", "at": "2024-01-01T00:00:00Z"},
            "t_map": {"a": 1, "b": 2},
            "t_json": {"key": "value", "number": 42}
        })]
    );
}

#[tokio::test]
async fn store_parameters_and_errors() {
    let worker = Worker::new();
    let sql = "
        CREATE TABLE orders (id INTEGER, customer VARCHAR, total DECIMAL(10, 2), placed DATE);
        INSERT INTO orders VALUES (1, 'Kelly', 166.89, '2024-01-02'), (2, 'Miguel', 12.5, '2024-02-01');
        SELECT * FROM orders WHERE customer = :name OR total > :min ORDER BY id";
    // An injection attempt is a value: no row is named so, no table is dropped.
    let results = worker
        .results(
            QUERIES,
            json!({"sql": sql, "fetchType": "STORE",
                   "parameters": {"name": "x' OR 1=1; DROP TABLE orders; --", "min": 100}}),
        )
        .await;
    let [StatementResult::NoResultSet, StatementResult::NoResultSet, StatementResult::Stored { uri, size }] =
        results.as_slice()
    else {
        panic!("{results:?}")
    };
    assert_eq!(*size, 1);
    assert!(uri.ends_with("/tasks/t/tr/query-3.ion"), "{uri}");
    assert_eq!(
        worker.folder.text(uri),
        "{id:1,customer:\"Kelly\",total:166.89,placed:2024-01-02}\n"
    );
    assert_eq!(
        worker.as_csv(uri).await,
        "id,customer,total,placed\n1,Kelly,166.89,2024-01-02\n"
    );

    // One statement for Query, as Kestra says.
    let Err(message) = prepare(QUERY, json!({"sql": "SELECT 1; SELECT 2"})) else {
        panic!("accepted")
    };
    assert!(
        message.starts_with("Query task support only a single SQL statement"),
        "{message}"
    );

    // DuckDB's own message.
    let error = worker
        .run(QUERY, json!({"sql": "SELEC 1", "fetchType": "FETCH"}))
        .await
        .expect_err("a bad statement");
    let SqlError::Statement { message } = &error else {
        panic!("{error:?}")
    };
    assert!(
        message.starts_with("Parser Error: syntax error at or near \"SELEC\""),
        "{message}"
    );

    // A failed statement of Queries rolls the others back: the database is empty.
    let error = worker
        .run(
            QUERIES,
            json!({"url": format!("jdbc:duckdb:{}", worker.folder.path().join("tx.db").display()),
                   "sql": "CREATE TABLE t (a INTEGER); INSERT INTO t VALUES (1); INSERT INTO t VALUES ('x')"}),
        )
        .await
        .expect_err("a bad value");
    assert!(
        error.to_string().contains("Could not convert string 'x'"),
        "{error}"
    );
    let tables = worker
        .rows(
            QUERY,
            json!({"url": format!("jdbc:duckdb:{}", worker.folder.path().join("tx.db").display()),
                   "sql": "SELECT table_name FROM information_schema.tables"}),
        )
        .await;
    assert_eq!(tables, Vec::<Value>::new());
}

#[tokio::test]
async fn files_in_and_out_and_database_files() {
    let worker = Worker::new();
    let csv = worker
        .folder
        .put("in.csv", "id,name\n3,Viva\n1,Ailane\n2,Quinu\n")
        .await;
    let outcome = worker
        .ran(
            QUERIES,
            json!({"inputFiles": {"in.csv": csv, "note.txt": "written in"},
                   "outputFiles": ["out"], "outputDbFile": true, "fetchType": "FETCH_ONE",
                   "sql": "
                CREATE TABLE people AS SELECT * FROM read_csv_auto('{{ workingDir }}/in.csv', header = true);
                COPY (SELECT id, name FROM people ORDER BY id) TO '{{ workingDir }}/out' (HEADER, DELIMITER ',');
                SELECT count(*) AS count, (SELECT content FROM read_text('note.txt')) AS note FROM people;
                SELECT name FROM people ORDER BY name LIMIT 1"}),
        )
        .await;
    let SqlOutcome::Ran {
        results,
        database_uri: Some(database),
        output_files: Some(output_files),
    } = &outcome
    else {
        panic!("{outcome:?}")
    };
    let rows: Vec<Value> = results
        .iter()
        .filter_map(|r| match r {
            StatementResult::Row(Some(row)) => Some(row_json(row)),
            _ => None,
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            json!({"count": 3, "note": "written in"}),
            json!({"name": "Ailane"})
        ]
    );
    assert_eq!(
        worker.folder.text(&output_files["out"]),
        "id,name\n1,Ailane\n2,Quinu\n3,Viva\n"
    );
    assert!(database.ends_with("/tasks/t/tr/database.db"), "{database}");

    // A one-line Query's `filename` column is relative to the working directory, as Kestra's.
    let rows = worker
        .rows(
            QUERY,
            json!({"inputFiles": {"a.csv": "x\n1\n", "b.csv": "x\n2\n"},
                   "sql": "SELECT x, filename FROM read_csv_auto('{{ workingDir }}/*.csv', filename = true) ORDER BY x"}),
        )
        .await;
    assert_eq!(
        rows,
        vec![
            json!({"x": 1, "filename": "a.csv"}),
            json!({"x": 2, "filename": "b.csv"})
        ]
    );

    // The next task starts from the stored database, changes it and stores it again.
    let outcome = worker
        .ran(
            QUERY,
            json!({"databaseUri": database, "outputDbFile": true,
                   "sql": "UPDATE people SET name = 'TestUser' WHERE name = 'Viva'"}),
        )
        .await;
    let SqlOutcome::Ran {
        database_uri: Some(updated),
        ..
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    let rows = worker
        .rows(
            QUERY,
            json!({"databaseUri": updated, "sql": "SELECT id, name FROM people WHERE id = 3"}),
        )
        .await;
    assert_eq!(rows, vec![json!({"id": 3, "name": "TestUser"})]);
}

/// The CPU time this process has used, in clock ticks (user and system).
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("a stat line")
        .1
        .split_whitespace()
        .collect();
    // utime and stime: the 14th and 15th fields, the 12th and 13th after the name.
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

#[tokio::test]
async fn a_stopped_task_run_interrupts_its_query() {
    let worker = Worker::new();
    // Hours of work for every core, unless interrupted.
    let slow = worker.run(
        QUERY,
        json!({"sql": "SELECT sum(a.range * b.range) AS s FROM range(100000000) a, range(100000000) b"}),
    );
    assert!(tokio::time::timeout(Duration::from_millis(1500), slow)
        .await
        .is_err());
    // Once interrupted the process goes quiet: a second of wall time without a tenth of
    // a second of CPU (other tests of this file may still be running: a few tries).
    let mut busiest = Vec::new();
    for _ in 0..10 {
        let before = cpu_ticks();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let used = cpu_ticks() - before;
        if used < 10 {
            return;
        }
        busiest.push(used);
    }
    // A panic would wait forever: the runtime's end waits for the query's blocking thread.
    eprintln!("the query still runs after its task run stopped: {busiest:?} ticks a second");
    std::process::exit(1);
}

#[tokio::test]
async fn the_example_flow_runs() {
    let (done, logs, dir) = common::run_alone(include_str!("../../../flows/dev/duckdb-csv.yaml")).await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    let files = LocalFileStorage::new(dir.path().join("storage")).expect("files");
    let to_csv = common::task_run(&done, "to_csv")
        .outputs
        .clone()
        .expect("to_csv's outputs");
    let csv_uri = to_csv["uri"].as_str().expect("to_csv's uri");
    let csv = String::from_utf8(files.read_blocking(csv_uri).expect("csv")).expect("utf-8");
    assert_eq!(csv, "region,orders,revenue\nEMEA,2,179.39\nAMER,1,42.0\n");
    // `{{ outputFiles.emea }}` was a file of the working directory, stored afterwards.
    let load = common::task_run(&done, "load")
        .outputs
        .clone()
        .expect("load's outputs");
    let emea = load["outputFiles"]["emea"].as_str().expect("outputFiles.emea");
    let exported = String::from_utf8(files.read_blocking(emea).expect("emea")).expect("utf-8");
    assert_eq!(exported, "id,total\n1,166.89\n3,12.5\n");
    assert!(
        load["databaseUri"]
            .as_str()
            .is_some_and(|uri| uri.ends_with("/database.db")),
        "{load:?}"
    );
}
