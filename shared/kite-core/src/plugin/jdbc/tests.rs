use chrono::TimeZone;
use serde_json::{json, Map, Value};

use super::*;
use crate::expression::ExpressionError;
use crate::plugin::by_name;

fn literal(v: &Value) -> Result<String, ExpressionError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Ok(other.to_string()),
    }
}

fn prepare(name: &str, properties: Value) -> Result<SqlCall, String> {
    let spec = by_name(name).expect("registered");
    let properties: Map<String, Value> = properties.as_object().cloned().unwrap_or_default();
    match (spec.prepare)(&properties, &literal)? {
        IoCall::Sql(call) => Ok(call),
        other => panic!("{other:?}"),
    }
}

fn statements(call: &SqlCall) -> &Statements {
    match &call.op {
        SqlOp::Run(s) => s,
        other => panic!("{other:?}"),
    }
}

const PG_QUERY: &str = "io.kestra.plugin.jdbc.postgresql.Query";
const PG_QUERIES: &str = "io.kestra.plugin.jdbc.postgresql.Queries";
const SQLITE_QUERY: &str = "io.kestra.plugin.jdbc.sqlite.Query";
const SQLITE_QUERIES: &str = "io.kestra.plugin.jdbc.sqlite.Queries";

fn context() -> TaskRunContext {
    TaskRunContext {
        namespace: "dev".into(),
        flow_id: "f".into(),
        execution_id: "e".into(),
        task_id: "q".into(),
        task_run_id: "tr".into(),
        attempt_number: 1,
        log_level: None,
    }
}

#[test]
fn query_defaults_are_kestras() {
    let call = prepare(
        PG_QUERY,
        json!({"url": "jdbc:postgresql://127.0.0.1:5432/db", "username": "u", "password": "p", "sql": "SELECT 1;"}),
    )
    .unwrap();
    let Database::Postgres(pg) = &call.database else {
        panic!()
    };
    assert_eq!(
        (pg.user.as_deref(), pg.password.as_deref()),
        (Some("u"), Some("p"))
    );
    let s = statements(&call);
    assert_eq!(s.fetch_type, FetchType::None);
    assert_eq!(
        (s.fetch_size, s.zone, s.transaction, s.multiple),
        (10_000, chrono_tz::UTC, false, false)
    );
    assert_eq!(
        s.statements,
        vec![Statement {
            sql: "SELECT 1".into(),
            parameters: vec![]
        }]
    );
}

#[test]
fn deprecated_booleans_and_fetch_type() {
    let fetch = |props: Value| {
        let mut props = props;
        props["url"] = json!("jdbc:sqlite:");
        props["sql"] = json!("select 1");
        statements(&prepare(SQLITE_QUERY, props).unwrap()).fetch_type
    };
    assert_eq!(fetch(json!({"fetch": true})), FetchType::Fetch);
    assert_eq!(fetch(json!({"fetchOne": "true"})), FetchType::FetchOne);
    assert_eq!(fetch(json!({"store": true})), FetchType::Store);
    assert_eq!(fetch(json!({"fetchType": "STORE"})), FetchType::Store);
    let e = prepare(SQLITE_QUERY, json!({"sql": "select 1", "fetchType": "ALL"})).unwrap_err();
    assert!(e.contains("Invalid fetchType 'ALL'"), "{e}");
}

#[test]
fn query_takes_one_statement_and_queries_several() {
    let e = prepare(
        SQLITE_QUERY,
        json!({"sql": "create table t(a int); insert into t values (1)"}),
    )
    .unwrap_err();
    assert_eq!(
        e,
        "Query task support only a single SQL statement. Use the Queries task to run multiple statements."
    );
    let call = prepare(
        SQLITE_QUERIES,
        json!({"sql": "create table t(a text); insert into t values (';');", "transaction": false}),
    )
    .unwrap();
    let s = statements(&call);
    assert_eq!(s.statements.len(), 2);
    assert_eq!(s.statements[1].sql, "insert into t values (';')");
    assert!(s.multiple && !s.transaction);
    assert!(
        statements(
            &prepare(
                PG_QUERIES,
                json!({"url": "jdbc:postgresql://h/d", "sql": "select 1"})
            )
            .unwrap()
        )
        .transaction
    );
    assert!(prepare(SQLITE_QUERY, json!({"sql": " -- nothing\n"}))
        .unwrap_err()
        .contains("no SQL statement"));
}

#[test]
fn after_sql_runs_in_the_same_transaction() {
    let call = prepare(
        SQLITE_QUERY,
        json!({"sql": "select * from jobs", "afterSQL": "update jobs set done = 1", "fetchType": "FETCH"}),
    )
    .unwrap();
    let s = statements(&call);
    assert!(s.transaction);
    assert_eq!(s.statements.len(), 2);
    assert!(prepare(
        SQLITE_QUERY,
        json!({"sql": "select 1", "afterSQL": "select 1; select 2"})
    )
    .is_err());
}

#[test]
fn parameters_are_bound_never_spliced() {
    let call = prepare(
        PG_QUERY,
        json!({
            "url": "jdbc:postgresql://h/d",
            "sql": "select * from t where name = :name and id > :min",
            "parameters": {"name": "x'; drop table t; --", "min": 3}
        }),
    )
    .unwrap();
    let s = &statements(&call).statements[0];
    assert_eq!(s.sql, "select * from t where name = $1 and id > $2");
    assert_eq!(s.parameters, vec![json!("x'; drop table t; --"), json!(3)]);
    let call = prepare(
        SQLITE_QUERY,
        json!({"sql": "select :a", "parameters": {"a": null}}),
    )
    .unwrap();
    let s = &statements(&call).statements[0];
    assert_eq!(
        (s.sql.as_str(), s.parameters.clone()),
        ("select ?1", vec![Value::Null])
    );
}

#[test]
fn sqlite_database_properties() {
    let call = prepare(
        SQLITE_QUERIES,
        json!({"url": "jdbc:sqlite:my.db", "sqliteFile": "kestra:///dev/f/executions/e/db.sqlite", "outputDbFile": true, "sql": "select 1"}),
    )
    .unwrap();
    assert_eq!(
        call.database,
        Database::Sqlite(SqliteDatabase {
            path: SqlitePath::File("my.db".into()),
            sqlite_file: Some("kestra:///dev/f/executions/e/db.sqlite".into()),
            output_db_file: true,
        })
    );
    assert_eq!(call.files_read(), vec!["kestra:///dev/f/executions/e/db.sqlite"]);
    // Kestra's default url is an in-memory database.
    let call = prepare(SQLITE_QUERY, json!({"sql": "select 1"})).unwrap();
    assert!(matches!(
        call.database,
        Database::Sqlite(SqliteDatabase {
            path: SqlitePath::Memory,
            ..
        })
    ));
}

#[test]
fn client_certificates_are_refused_clearly() {
    let e = prepare(
        PG_QUERY,
        json!({"url": "jdbc:postgresql://h/d", "sql": "select 1", "sslCert": "-----BEGIN"}),
    )
    .unwrap_err();
    assert!(e.starts_with("sslCert is not supported"), "{e}");
    let call = prepare(
        PG_QUERY,
        json!({"url": "jdbc:postgresql://h/d", "sql": "select 1", "sslMode": "VERIFY_FULL"}),
    )
    .unwrap();
    let Database::Postgres(pg) = &call.database else {
        panic!()
    };
    assert_eq!(pg.ssl, SslMode::VerifyFull);
}

#[test]
fn copy_statements_are_kestras() {
    let call = prepare(
        "io.kestra.plugin.jdbc.postgresql.CopyIn",
        json!({"url": "jdbc:postgresql://h/d", "from": "kestra:///dev/f/executions/e/in.csv", "table": "products",
               "format": "CSV", "header": true, "delimiter": "\\t", "columns": ["a", "b"], "nullString": "it's"}),
    )
    .unwrap();
    assert_eq!(
        call.op,
        SqlOp::CopyIn {
            sql:
                "COPY products (a, b) FROM STDIN WITH (FORMAT CSV, DELIMITER '\t', NULL 'it''s', HEADER TRUE)"
                    .into(),
            from: "kestra:///dev/f/executions/e/in.csv".into(),
        }
    );
    assert_eq!(call.files_read(), vec!["kestra:///dev/f/executions/e/in.csv"]);
    let call = prepare(
        "io.kestra.plugin.jdbc.postgresql.CopyOut",
        json!({"url": "jdbc:postgresql://h/d", "sql": "SELECT 1 AS int", "format": "CSV", "forceQuote": ["*"]}),
    )
    .unwrap();
    assert_eq!(
        call.op,
        SqlOp::CopyOut {
            sql: "COPY (SELECT 1 AS int) TO STDOUT WITH (FORMAT CSV, FORCE_QUOTE *)".into(),
            format: CopyFormat::Csv,
            header: false,
        }
    );
    let e = prepare(
        "io.kestra.plugin.jdbc.postgresql.CopyOut",
        json!({"url": "jdbc:postgresql://h/d"}),
    )
    .unwrap_err();
    assert!(e.contains("'table'"), "{e}");
}

fn run_call(name: &str, props: Value) -> IoCall {
    IoCall::Sql(prepare(name, props).unwrap())
}

fn row() -> Row {
    vec![
        ("id".into(), IonValue::Int(1)),
        (
            "day".into(),
            IonValue::date(chrono::NaiveDate::from_ymd_opt(2024, 1, 2).unwrap()),
        ),
        (
            "at".into(),
            IonValue::instant(Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap()),
        ),
        ("n".into(), IonValue::Null(crate::ion::IonType::Null)),
    ]
}

#[test]
fn query_outputs_are_kestras() {
    let now = DateTime::<Utc>::UNIX_EPOCH;
    let call = run_call(SQLITE_QUERY, json!({"sql": "select 1", "fetchType": "FETCH_ONE"}));
    let answer = IoAnswer::Sql(Ok(SqlOutcome::Ran {
        results: vec![StatementResult::Row(Some(row()))],
        database_uri: None,
        output_files: None,
    }));
    let result = finish(&call, answer, &context(), now);
    assert_eq!(result.state, StateType::Success);
    assert_eq!(
        Value::Object(result.outputs.into_iter().collect()),
        json!({"row": {"id": 1, "day": "2024-01-02", "at": "2024-01-02T03:04:05Z", "n": null}, "size": 1})
    );
    // No row: no `row`, size 0.
    let answer = IoAnswer::Sql(Ok(SqlOutcome::Ran {
        results: vec![StatementResult::Row(None)],
        database_uri: None,
        output_files: None,
    }));
    let result = finish(&call, answer, &context(), now);
    assert_eq!(
        Value::Object(result.outputs.into_iter().collect()),
        json!({"size": 0})
    );
}

#[test]
fn queries_outputs_list_each_result_set() {
    let call = run_call(
        SQLITE_QUERIES,
        json!({"sql": "create table t(a); select 1; select 2", "fetchType": "STORE", "outputDbFile": true}),
    );
    let answer = IoAnswer::Sql(Ok(SqlOutcome::Ran {
        results: vec![
            StatementResult::NoResultSet,
            StatementResult::Stored {
                uri: "kestra:///a.ion".into(),
                size: 2,
            },
            StatementResult::Stored {
                uri: "kestra:///b.ion".into(),
                size: 0,
            },
        ],
        database_uri: Some("kestra:///db.sqlite".into()),
        output_files: None,
    }));
    let result = finish(&call, answer, &context(), DateTime::<Utc>::UNIX_EPOCH);
    assert_eq!(
        Value::Object(result.outputs.into_iter().collect()),
        json!({"outputs": [{"uri": "kestra:///a.ion", "size": 2}, {"uri": "kestra:///b.ion", "size": 0}],
               "databaseUri": "kestra:///db.sqlite"})
    );
}

#[test]
fn failures_carry_the_databases_message() {
    let call = run_call(SQLITE_QUERY, json!({"sql": "selec 1"}));
    let answer = IoAnswer::Sql(Err(SqlError::Statement {
        message: "near \"selec\": syntax error".into(),
    }));
    let result = finish(&call, answer, &context(), DateTime::<Utc>::UNIX_EPOCH);
    assert_eq!(result.state, StateType::Failed);
    assert_eq!(result.logs[0].message, "near \"selec\": syntax error");
}

#[test]
fn copy_outputs() {
    let call = run_call(
        "io.kestra.plugin.jdbc.postgresql.CopyOut",
        json!({"url": "jdbc:postgresql://h/d", "table": "t"}),
    );
    let answer = IoAnswer::Sql(Ok(SqlOutcome::Copied {
        rows: 3,
        uri: Some("kestra:///out".into()),
    }));
    let result = finish(&call, answer, &context(), DateTime::<Utc>::UNIX_EPOCH);
    assert_eq!(
        Value::Object(result.outputs.into_iter().collect()),
        json!({"uri": "kestra:///out", "rowCount": 3})
    );
}

#[test]
fn duckdb_outputs_have_output_files_and_the_database() {
    let call = run_call(
        "io.kestra.plugin.jdbc.duckdb.Query",
        json!({"sql": "select 1 as id", "fetchType": "FETCH", "outputFiles": ["out"], "outputDbFile": true}),
    );
    let answer = IoAnswer::Sql(Ok(SqlOutcome::Ran {
        results: vec![StatementResult::Rows(vec![vec![("id".into(), IonValue::Int(1))]])],
        database_uri: Some("kestra:///dev/f/executions/e/tasks/q/tr/database.db".into()),
        output_files: Some(IndexMap::from([(
            "out".to_string(),
            "kestra:///dev/f/executions/e/tasks/q/tr/out".to_string(),
        )])),
    }));
    let result = finish(&call, answer, &context(), DateTime::<Utc>::UNIX_EPOCH);
    assert_eq!(result.state, StateType::Success);
    assert_eq!(
        Value::Object(result.outputs.into_iter().collect()),
        json!({"rows": [{"id": 1}], "size": 1,
               "outputFiles": {"out": "kestra:///dev/f/executions/e/tasks/q/tr/out"},
               "databaseUri": "kestra:///dev/f/executions/e/tasks/q/tr/database.db"})
    );
}
