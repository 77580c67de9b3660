//! The SQL tasks against real databases on this machine: SQLite files and a PostgreSQL
//! server started for the test (see `postgres_server`). Each checks typed values, `STORE`
//! read back through `IonToCsv`, parameters bound as data (an injection attempt stays a
//! value), a bad statement failing with the database's message, transactions, `COPY`,
//! cancellation of a statement whose task run stopped, and a flow run on the local engine.

use std::time::Duration;

use kite_core::execution::StateType;
use kite_core::plugin::jdbc::{Row, SqlCall, SqlError, SqlOutcome, StatementResult};
use kite_core::plugin::IoCall;
use kite_engine::ports::FileStorage;

use kite_local::LocalFileStorage;
use kite_worker::sql::{run, SqlClients};
use serde_json::{json, Value};

mod common;
mod postgres_server;
mod task_files;
use postgres_server::{PostgresServer, PASSWORD, USER};
use task_files::{prepare, Folder};

/// A worker's SQL clients and a task run's files.
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

    fn call(task: &str, properties: Value) -> Result<SqlCall, String> {
        match prepare(&format!("io.kestra.plugin.jdbc.{task}"), properties)? {
            IoCall::Sql(call) => Ok(call),
            other => panic!("{other:?}"),
        }
    }

    async fn run(&self, task: &str, properties: Value) -> Result<SqlOutcome, SqlError> {
        let call = Worker::call(task, properties).expect("prepared");
        run(&self.clients, &call, &self.folder.scope()).await
    }

    async fn results(&self, task: &str, properties: Value) -> Vec<StatementResult> {
        match self.run(task, properties).await {
            Ok(SqlOutcome::Ran { results, .. }) => results,
            other => panic!("{other:?}"),
        }
    }

    /// The rows of a one-statement `FETCH`, as JSON objects.
    async fn rows(&self, task: &str, mut properties: Value) -> Vec<Value> {
        properties["fetchType"] = json!("FETCH");
        match self.results(task, properties).await.as_slice() {
            [StatementResult::Rows(rows)] => rows.iter().map(kite_core::plugin::jdbc::row_json).collect(),
            other => panic!("{other:?}"),
        }
    }

    fn text(&self, uri: &str) -> String {
        self.folder.text(uri)
    }

    /// An Ion file converted by `IonToCsv`, as a flow would do next.
    async fn as_csv(&self, uri: &str) -> String {
        let IoCall::Serdes(call) =
            prepare("io.kestra.plugin.serdes.csv.IonToCsv", json!({"from": uri})).expect("prepare")
        else {
            panic!("not a serdes call")
        };
        let answer = kite_worker::serdes::run(&self.folder.scope(), &call)
            .await
            .expect("converted");
        self.text(&answer.uri)
    }

    fn sqlite_url(&self, name: &str) -> String {
        format!("jdbc:sqlite:{}", self.folder.path().join(name).display())
    }
}

fn single_row(row: &Row) -> Value {
    kite_core::plugin::jdbc::row_json(row)
}

#[tokio::test]
async fn sqlite_types_store_and_parameters() {
    let worker = Worker::new();
    let url = worker.sqlite_url("shop.db");
    worker
        .results(
            "sqlite.Queries",
            json!({"url": url, "sql": "
                CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, total REAL, placed DATE,
                                     shipped DATETIME, slot TIME, receipt BLOB, note TEXT);
                INSERT INTO orders VALUES (1, 'Kelly', 166.89, '2024-01-02', '2024-01-03 10:00:00', '09:30:00', x'6869', NULL);
                INSERT INTO orders VALUES (2, 'Miguel', 12.5, '2024-02-01', '2024-02-01T08:15:30Z', '18:00', NULL, 'gift; wrap');"}),
        )
        .await;
    let rows = worker
        .rows(
            "sqlite.Query",
            json!({"url": url, "sql": "SELECT * FROM orders ORDER BY id", "timeZoneId": "Europe/Paris"}),
        )
        .await;
    assert_eq!(
        rows,
        vec![
            json!({"id": 1, "customer": "Kelly", "total": 166.89, "placed": "2024-01-02", "shipped": "2024-01-03T09:00:00Z",
                   "slot": "09:30:00", "receipt": "aGk=", "note": null}),
            json!({"id": 2, "customer": "Miguel", "total": 12.5, "placed": "2024-02-01", "shipped": "2024-02-01T08:15:30Z",
                   "slot": "18:00:00", "receipt": null, "note": "gift; wrap"}),
        ]
    );

    // STORE: an Ion file IonToCsv reads.
    let stored = worker
        .results("sqlite.Query", json!({"url": url, "sql": "SELECT id, customer, total FROM orders ORDER BY id", "fetchType": "STORE"}))
        .await;
    let [StatementResult::Stored { uri, size: 2 }] = stored.as_slice() else {
        panic!("{stored:?}")
    };
    assert_eq!(
        worker.text(uri),
        "{id:1,customer:\"Kelly\",total:166.89e0}\n{id:2,customer:\"Miguel\",total:12.5e0}\n"
    );
    assert_eq!(
        worker.as_csv(uri).await,
        "id,customer,total\n1,Kelly,166.89\n2,Miguel,12.5\n"
    );

    // A parameter is data: the injection attempt is a name that matches nothing.
    let rows = worker
        .rows(
            "sqlite.Query",
            json!({"url": url, "sql": "SELECT count(*) AS n FROM orders WHERE customer = :name",
                   "parameters": {"name": "x' OR '1'='1"}}),
        )
        .await;
    assert_eq!(rows, vec![json!({"n": 0})]);
    let rows = worker
        .rows("sqlite.Query", json!({"url": url, "sql": "SELECT id FROM orders WHERE total > :min", "parameters": {"min": 100}}))
        .await;
    assert_eq!(rows, vec![json!({"id": 1})]);

    // FETCH_ONE and NONE.
    let one = worker
        .results("sqlite.Query", json!({"url": url, "sql": "SELECT customer FROM orders ORDER BY id DESC", "fetchType": "FETCH_ONE"}))
        .await;
    let [StatementResult::Row(Some(row))] = one.as_slice() else {
        panic!("{one:?}")
    };
    assert_eq!(single_row(row), json!({"customer": "Miguel"}));
    let none = worker
        .results("sqlite.Query", json!({"url": url, "sql": "SELECT * FROM orders"}))
        .await;
    assert_eq!(none, vec![StatementResult::NotFetched]);
}

#[tokio::test]
async fn sqlite_failures_and_transactions() {
    let worker = Worker::new();
    let url = worker.sqlite_url("t.db");
    let e = worker
        .run("sqlite.Query", json!({"url": url, "sql": "SELEC 1"}))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "[SQLITE_ERROR] near \"SELEC\": syntax error in SELEC 1 at offset 0"
    );
    // The second statement fails: the first is rolled back with it.
    worker
        .results(
            "sqlite.Query",
            json!({"url": url, "sql": "CREATE TABLE t (a INTEGER NOT NULL)"}),
        )
        .await;
    let e = worker
        .run(
            "sqlite.Queries",
            json!({"url": url, "sql": "INSERT INTO t VALUES (1); INSERT INTO t VALUES (NULL)"}),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("NOT NULL constraint failed: t.a"), "{e}");
    let rows = worker
        .rows(
            "sqlite.Query",
            json!({"url": url, "sql": "SELECT count(*) AS n FROM t"}),
        )
        .await;
    assert_eq!(rows, vec![json!({"n": 0})]);
    // Without a transaction the first stays.
    worker
        .run(
            "sqlite.Queries",
            json!({"url": url, "transaction": false, "sql": "INSERT INTO t VALUES (1); INSERT INTO t VALUES (NULL)"}),
        )
        .await
        .unwrap_err();
    let rows = worker
        .rows(
            "sqlite.Query",
            json!({"url": url, "sql": "SELECT count(*) AS n FROM t"}),
        )
        .await;
    assert_eq!(rows, vec![json!({"n": 1})]);
}

#[tokio::test]
async fn sqlite_database_files_move_between_tasks() {
    let worker = Worker::new();
    let created = worker
        .run(
            "sqlite.Queries",
            json!({"url": "jdbc:sqlite:myfile.db", "outputDbFile": true,
                   "sql": "CREATE TABLE kv (k TEXT, v TEXT); INSERT INTO kv VALUES ('a', 'b');"}),
        )
        .await
        .expect("created");
    let SqlOutcome::Ran {
        database_uri: Some(uri),
        ..
    } = created
    else {
        panic!("{created:?}")
    };
    assert!(uri.ends_with("/tasks/t/tr/myfile.db"), "{uri}");
    let rows = worker
        .rows(
            "sqlite.Query",
            json!({"url": "jdbc:sqlite:myfile.db", "sqliteFile": uri, "sql": "SELECT * FROM kv"}),
        )
        .await;
    assert_eq!(rows, vec![json!({"k": "a", "v": "b"})]);
    // A file the execution may not read is refused.
    let e = worker
        .run(
            "sqlite.Query",
            json!({"sqliteFile": "kestra:///other/f/executions/x/db.sqlite", "sql": "SELECT 1"}),
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("kestra:///other/f/executions/x/db.sqlite"),
        "{e}"
    );
}

fn pg(server: &PostgresServer, extra: Value) -> Value {
    let mut props = json!({"url": server.url("postgres"), "username": USER, "password": PASSWORD});
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        props[k] = v;
    }
    props
}

#[tokio::test]
async fn postgres_types_as_kestra_reads_them() {
    let server = PostgresServer::start(false);
    let worker = Worker::new();
    worker
        .results(
            "postgresql.Queries",
            pg(&server, json!({"sql": "
                CREATE TYPE mood AS ENUM ('sad', 'happy');
                CREATE TABLE pgsql_types (
                  concert_id serial, available boolean, a char(1), b varchar(10), c text, d varchar(10),
                  play_time smallint, library_record bigint, floatn_test float8, double_test double precision,
                  real_test real, numeric_test numeric(14,3), date_type date, time_type time, timez_type time with time zone,
                  timestamp_type timestamp, timestampz_type timestamp with time zone, interval_type interval,
                  pay_by_quarter integer[], schedule text[][], json_type json, jsonb_type jsonb, blob_type bytea,
                  uuid_type uuid, mood_type mood);
                INSERT INTO pgsql_types (available, a, b, c, d, play_time, library_record, floatn_test, double_test,
                  real_test, numeric_test, date_type, time_type, timez_type, timestamp_type, timestampz_type,
                  interval_type, pay_by_quarter, schedule, json_type, jsonb_type, blob_type, uuid_type, mood_type)
                VALUES (true, 'f', 'four', 'This is a varchar', NULL, 80, 123456789123, 9223372036854775807, 9223372036854775807,
                  9223372036854775807, 2147483645.1234, '2030-12-25', '04:05:30', '13:05:06+01:00', '2004-10-19 10:23:54.999999',
                  '2004-10-19 10:23:54.250+02', '10 years 9 months 5 days 1 hour 17 minutes 23 seconds',
                  '{10000, 10000, 10000, 10000}', '{{\"meeting\", \"lunch\"}, {\"training\", \"presentation\"}}',
                  '{\"color\":\"red\",\"value\":\"#f00\"}', '[1, {\"a\": null}]', '\\xDEADBEEF',
                  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'happy')"})),
        )
        .await;
    let rows = worker
        .rows(
            "postgresql.Query",
            pg(
                &server,
                json!({"sql": "SELECT * FROM pgsql_types", "timeZoneId": "Europe/Paris"}),
            ),
        )
        .await;
    assert_eq!(
        rows,
        vec![json!({
            "concert_id": 1, "available": true, "a": "f", "b": "four", "c": "This is a varchar", "d": null,
            "play_time": 80, "library_record": 123456789123_i64, "floatn_test": 9.223372036854776e18,
            "double_test": 9.223372036854776e18, "real_test": 9.223372e18_f32 as f64, "numeric_test": 2147483645.123,
            "date_type": "2030-12-25", "time_type": "04:05:30", "timez_type": "13:05:06",
            "timestamp_type": "2004-10-19T10:23:54.999999", "timestampz_type": "2004-10-19T10:23:54.250+02:00",
            "interval_type": "P10Y9M5DT1H17M23S", "pay_by_quarter": [10000, 10000, 10000, 10000],
            "schedule": [["meeting", "lunch"], ["training", "presentation"]],
            "json_type": {"color": "red", "value": "#f00"}, "jsonb_type": [1, {"a": null}], "blob_type": "3q2+7w==",
            "uuid_type": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "mood_type": "happy"
        })]
    );

    // STORE keeps Java's types in the Ion file; IonToCsv prints them.
    let stored = worker
        .results(
            "postgresql.Query",
            pg(&server, json!({"fetchType": "STORE", "sql": "SELECT numeric_test, date_type, timestamp_type, timestampz_type FROM pgsql_types"})),
        )
        .await;
    let [StatementResult::Stored { uri, size: 1 }] = stored.as_slice() else {
        panic!("{stored:?}")
    };
    assert_eq!(
        worker.text(uri),
        "{numeric_test:2147483645.123,date_type:2030-12-25,timestamp_type:LocalDateTime::\"2004-10-19T10:23:54.999999\",\
         timestampz_type:ZonedDateTime::\"2004-10-19T08:23:54.250Z\"}\n"
    );
    assert_eq!(
        worker.as_csv(uri).await,
        "numeric_test,date_type,timestamp_type,timestampz_type\n2147483645.123,2030-12-25,2004-10-19T10:23:54.999,2004-10-19T08:23:54.250Z\n"
    );
}

#[tokio::test]
async fn postgres_parameters_errors_transactions_and_copy() {
    let server = PostgresServer::start(false);
    let worker = Worker::new();
    worker
        .results(
            "postgresql.Queries",
            pg(
                &server,
                json!({"sql": "CREATE TABLE people (id int PRIMARY KEY, name text, tags text[], born date)"}),
            ),
        )
        .await;
    // Parameters typed by the server from their text; a list for an array column.
    worker
        .results(
            "postgresql.Query",
            pg(&server, json!({"sql": "INSERT INTO people VALUES (:id, :name, :tags, :born)",
                               "parameters": {"id": 1, "name": "Robert'); DROP TABLE people; --", "tags": ["a", "b c"], "born": "2001-02-03"}})),
        )
        .await;
    let rows = worker
        .rows("postgresql.Query", pg(&server, json!({"sql": "SELECT name, tags, born FROM people WHERE id = :id::int", "parameters": {"id": "1"}})))
        .await;
    assert_eq!(
        rows,
        vec![json!({"name": "Robert'); DROP TABLE people; --", "tags": ["a", "b c"], "born": "2001-02-03"})]
    );

    // The database's own message.
    let e = worker
        .run("postgresql.Query", pg(&server, json!({"sql": "SELEC 1"})))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "ERROR: syntax error at or near \"SELEC\"\n  Position: 1"
    );
    let e = worker
        .run(
            "postgresql.Queries",
            pg(
                &server,
                json!({"sql": "INSERT INTO people (id) VALUES (2); INSERT INTO people (id) VALUES (1)"}),
            ),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with("ERROR: duplicate key value violates unique constraint \"people_pkey\"\n  Detail: Key (id)=(1) already exists."), "{e}");
    // Rolled back together, and the pooled connection is usable afterwards.
    let rows = worker
        .rows(
            "postgresql.Query",
            pg(&server, json!({"sql": "SELECT count(*) AS n FROM people"})),
        )
        .await;
    assert_eq!(rows, vec![json!({"n": 1})]);

    // Queries: one output per statement that returns rows.
    let results = worker
        .results("postgresql.Queries", pg(&server, json!({"fetchType": "FETCH_ONE", "sql": "SELECT 1 AS a; UPDATE people SET name = 'x' WHERE false; SELECT 2 AS b"})))
        .await;
    assert_eq!(results.len(), 3);
    assert!(matches!(results[1], StatementResult::NoResultSet));

    // CopyIn a CSV file, CopyOut the table.
    let csv = "id,name\n10,Ann\n11,\"Bo, \"\"the\"\" second\"\n";
    let people = worker.folder.put("people.csv", csv).await;
    let copied = worker
        .run(
            "postgresql.CopyIn",
            pg(&server, json!({"from": people, "table": "people", "columns": ["id", "name"], "format": "CSV", "header": true})),
        )
        .await
        .expect("copied in");
    assert_eq!(copied, SqlOutcome::Copied { rows: 2, uri: None });
    let out = worker
        .run(
            "postgresql.CopyOut",
            pg(&server, json!({"sql": "SELECT id, name FROM people WHERE id >= 10 ORDER BY id", "format": "CSV", "header": true, "delimiter": ";"})),
        )
        .await
        .expect("copied out");
    let SqlOutcome::Copied {
        rows: 2,
        uri: Some(uri),
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(
        worker.text(&uri),
        "id;name\n10;Ann\n11;\"Bo, \"\"the\"\" second\"\n"
    );
}

#[tokio::test]
async fn postgres_connections_are_pooled_and_statements_cancelled() {
    let server = PostgresServer::start(false);
    let worker = Worker::new();
    let pid = |rows: Vec<Value>| rows[0]["pid"].clone();
    let first = pid(worker
        .rows(
            "postgresql.Query",
            pg(&server, json!({"sql": "SELECT pg_backend_pid() AS pid"})),
        )
        .await);
    let second = pid(worker
        .rows(
            "postgresql.Query",
            pg(&server, json!({"sql": "SELECT pg_backend_pid() AS pid"})),
        )
        .await);
    assert_eq!(first, second, "the second task run reuses the connection");

    // A task run stopped (its timeout) cancels the statement on the server.
    let slow = worker.run(
        "postgresql.Query",
        pg(&server, json!({"sql": "SELECT pg_sleep(30)"})),
    );
    assert!(tokio::time::timeout(Duration::from_millis(500), slow)
        .await
        .is_err());
    let mut active = Vec::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        active = worker
            .rows(
                "postgresql.Query",
                pg(&server, json!({"sql": "SELECT query FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()"})),
            )
            .await;
        if active.is_empty() {
            break;
        }
    }
    assert!(active.is_empty(), "still running: {active:?}");

    // A wrong password says so, without the password.
    let e = worker
        .run(
            "postgresql.Query",
            pg(&server, json!({"sql": "SELECT 1", "password": "wrong-one"})),
        )
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with(&format!(
            "Unable to connect to 127.0.0.1:{}/postgres: ",
            server.port
        )),
        "{text}"
    );
    assert!(
        text.contains("password authentication failed for user \"kite\""),
        "{text}"
    );
    assert!(!text.contains("wrong-one"));
}

#[tokio::test]
async fn postgres_over_tls() {
    let server = PostgresServer::start(true);
    let worker = Worker::new();
    let query = |extra: Value| {
        let mut props = pg(
            &server,
            json!({"sql": "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"}),
        );
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            props[k] = v;
        }
        props
    };
    assert_eq!(
        worker
            .rows("postgresql.Query", query(json!({"sslMode": "REQUIRE"})))
            .await,
        vec![json!({"ssl": true})]
    );
    assert_eq!(
        worker.rows("postgresql.Query", query(json!({}))).await,
        vec![json!({"ssl": false})]
    );
    // The self-signed certificate is not trusted unless given.
    let e = worker
        .run("postgresql.Query", query(json!({"sslMode": "VERIFY_FULL"})))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("certificate"), "{e}");
    let trusted = query(json!({"sslMode": "VERIFY_FULL", "sslRootCert": server.certificate.clone()}));
    assert_eq!(
        worker.rows("postgresql.Query", trusted).await,
        vec![json!({"ssl": true})]
    );
}

#[tokio::test]
async fn the_sqlite_example_flow_runs() {
    let (done, logs, dir) = common::run_alone(include_str!("../../../flows/dev/sqlite-to-csv.yaml")).await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    let files = LocalFileStorage::new(dir.path().join("storage")).expect("files");
    let to_csv = common::task_run(&done, "to_csv")
        .outputs
        .clone()
        .expect("to_csv's outputs");
    let csv_uri = to_csv["uri"].as_str().expect("to_csv's uri");
    let csv = String::from_utf8(files.read_blocking(csv_uri).expect("csv")).expect("utf-8");
    assert_eq!(csv, "region,orders,revenue\nEMEA,2,179.39\nAMER,1,42.0\n");
    assert!(logs.iter().any(|l| l.contains("EMEA")), "{logs:?}");
}
