//! Kestra's SQL tasks (`io.kestra.plugin.jdbc.*`): `postgresql.Query`, `Queries`,
//! `CopyIn` and `CopyOut`, `sqlite.Query` and `Queries`, `duckdb.Query` and `Queries`, with Kestra's properties,
//! defaults and outputs. The worker runs the statements with the database's own
//! driver; here are what they are ([`SqlCall`]), the rows it reads back as Kestra's
//! Java values ([`Row`], over [`IonValue`]) and the outputs made of them.
//!
//! - [`statements`]: splitting `Queries`' SQL, and `:name` parameters as placeholders.
//! - [`connection`]: JDBC URLs and the connection properties.
//! - [`duckdb`]: DuckDB's database and the files around it.

pub mod connection;
mod copy;
pub mod duckdb;
pub mod statements;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde_json::{Map, Value};

pub use connection::{PostgresConnection, SqlitePath, SslMode};
pub use duckdb::{DuckDbDatabase, DuckDbPath};
use statements::{bind_named, split_statements, Placeholder};

use super::fetch_type::FetchType;
use super::props::Props;
use super::storage::StorageError;
use super::{Check, IoAnswer, IoCall, IoKind, IoTaskSpec, Property, Render, TaskRunContext};
use crate::execution::{LogLevel, StateType, TaskResult};
use crate::ion::IonValue;

/// An SQL task, rendered: where, and what to run there.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlCall {
    pub database: Database,
    pub op: SqlOp,
}

impl SqlCall {
    /// The internal storage files it reads: `CopyIn`'s `from`, SQLite's `sqliteFile`,
    /// DuckDB's `databaseUri` (its `inputFiles` are checked by the worker).
    pub fn files_read(&self) -> Vec<&str> {
        let mut files = Vec::new();
        if let SqlOp::CopyIn { from, .. } = &self.op {
            files.push(from.as_str());
        }
        match &self.database {
            Database::Sqlite(SqliteDatabase {
                sqlite_file: Some(file),
                ..
            }) => files.push(file.as_str()),
            Database::DuckDb(db) => files.extend(db.database_uri.as_deref()),
            _ => {}
        }
        files
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Database {
    Postgres(PostgresConnection),
    Sqlite(SqliteDatabase),
    DuckDb(Box<DuckDbDatabase>),
}

/// A SQLite database of a task run.
#[derive(Debug, Clone, PartialEq)]
pub struct SqliteDatabase {
    pub path: SqlitePath,
    /// `sqliteFile`: a `kestra:///` database file copied in before the statements run.
    pub sqlite_file: Option<String>,
    /// `outputDbFile`: the database file is stored after they ran (`databaseUri`).
    pub output_db_file: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SqlOp {
    /// `Query` (one statement) or `Queries` (several).
    Run(Statements),
    /// `CopyIn`: `sql` is `COPY … FROM STDIN …`, fed the file `from`.
    CopyIn { sql: String, from: String },
    /// `CopyOut`: `sql` is `COPY … TO STDOUT …`, written to a file.
    CopyOut {
        sql: String,
        format: CopyFormat,
        header: bool,
    },
}

/// `COPY`'s `format`: the worker counts the rows it copies out by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyFormat {
    Text,
    Csv,
    Binary,
}

/// The statements of a `Query` or `Queries` task.
#[derive(Debug, Clone, PartialEq)]
pub struct Statements {
    pub statements: Vec<Statement>,
    pub fetch_type: FetchType,
    /// Rows read per round trip when storing (`fetchSize`).
    pub fetch_size: u32,
    /// The zone of `timestamp with time zone` values (`timeZoneId`, UTC by default).
    pub zone: chrono_tz::Tz,
    /// All statements in one transaction, rolled back if one fails (`Queries`'
    /// `transaction`; a `Query` with `afterSQL` too).
    pub transaction: bool,
    /// `Queries`: one output per statement that returns rows, under `outputs`.
    pub multiple: bool,
}

/// One statement with its placeholders and the values bound to them.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sql: String,
    pub parameters: Vec<Value>,
}

/// A row as Kestra reads it: its columns in order, each value as the Java value Kestra's
/// cell converters make, in Ion's terms (dates as timestamps, `LocalDateTime` and
/// `ZonedDateTime` as annotated strings, decimals exact).
pub type Row = Vec<(String, IonValue)>;

/// What one statement gave back.
#[derive(Debug, Clone, PartialEq)]
pub enum StatementResult {
    /// No rows to read (an `INSERT`, a `CREATE`…): no output.
    NoResultSet,
    /// `FETCH_ONE`.
    Row(Option<Row>),
    /// `FETCH`.
    Rows(Vec<Row>),
    /// `STORE`: the Ion file and its row count.
    Stored { uri: String, size: u64 },
    /// `NONE`: the rows were not read.
    NotFetched,
}

/// What the worker did.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlOutcome {
    Ran {
        results: Vec<StatementResult>,
        /// `outputDbFile`: the stored database file.
        database_uri: Option<String>,
        /// DuckDB's `outputFiles`: key → stored file.
        output_files: Option<IndexMap<String, String>>,
    },
    Copied {
        rows: u64,
        /// `CopyOut`'s file.
        uri: Option<String>,
    },
}

/// Why an SQL task failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlError {
    /// The database could not be reached or refused the login.
    #[error("Unable to connect to {address}: {message}")]
    Connect { address: String, message: String },
    /// This build has no DuckDB (the `duckdb` cargo feature).
    #[error("This build of Kite has no DuckDB: build it with the `duckdb` cargo feature (see docs/sql.md, DuckDB section)")]
    NoDuckDb,
    /// The database's own message for a statement (with its 1-based number in `Queries`).
    #[error("{message}")]
    Statement { message: String },
    /// A value the task cannot turn into Kestra's (a column of an unsupported type).
    #[error("{0}")]
    Value(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Task(String),
}

const CONNECTION: [Property; 10] = [
    Property::new("url", Check::Any),
    Property::new("username", Check::Any),
    Property::new("password", Check::Any),
    Property::new("timeZoneId", Check::Any),
    Property::new("ssl", Check::Any),
    Property::new("sslMode", Check::Any),
    Property::new("sslRootCert", Check::Any),
    Property::new("sslCert", Check::Any),
    Property::new("sslKey", Check::Any),
    Property::new("sslKeyPassword", Check::Any),
];
const QUERY_OWN: [Property; 8] = [
    Property::new("sql", Check::Required),
    Property::new("afterSQL", Check::Any),
    Property::new("fetchType", Check::Any),
    Property::new("fetchSize", Check::Any),
    Property::new("parameters", Check::Any),
    Property::new("fetch", Check::Any),
    Property::new("fetchOne", Check::Any),
    Property::new("store", Check::Any),
];

const fn concat<const N: usize>(parts: &[&[Property]]) -> [Property; N] {
    let mut out = [Property::new("", Check::Any); N];
    let mut n = 0;
    let mut p = 0;
    while p < parts.len() {
        let mut i = 0;
        while i < parts[p].len() {
            out[n] = parts[p][i];
            n += 1;
            i += 1;
        }
        p += 1;
    }
    assert!(n == N, "the properties fill the array");
    out
}

const POSTGRES_QUERY: [Property; 18] = concat(&[&CONNECTION, &QUERY_OWN]);
const POSTGRES_QUERIES: [Property; 19] = concat(&[
    &CONNECTION,
    &QUERY_OWN,
    &[Property::new("transaction", Check::Any)],
]);
const SQLITE_EXTRA: [Property; 2] = [
    Property::new("sqliteFile", Check::Any),
    Property::new("outputDbFile", Check::Any),
];
const SQLITE_QUERY: [Property; 20] = concat(&[&CONNECTION, &QUERY_OWN, &SQLITE_EXTRA]);
const SQLITE_QUERIES: [Property; 21] = concat(&[
    &CONNECTION,
    &QUERY_OWN,
    &SQLITE_EXTRA,
    &[Property::new("transaction", Check::Any)],
]);
const DUCKDB_QUERY: [Property; 23] = concat(&[&CONNECTION, &QUERY_OWN, &duckdb::DUCKDB_EXTRA]);
const DUCKDB_QUERIES: [Property; 24] = concat(&[
    &CONNECTION,
    &QUERY_OWN,
    &duckdb::DUCKDB_EXTRA,
    &[Property::new("transaction", Check::Any)],
]);
const COPY_OWN: [Property; 15] = [
    Property::new("table", Check::Any),
    Property::new("columns", Check::Any),
    Property::new("format", Check::Any),
    Property::new("oids", Check::Any),
    Property::new("freeze", Check::Any),
    Property::new("delimiter", Check::Any),
    Property::new("nullString", Check::Any),
    Property::new("header", Check::Any),
    Property::new("quote", Check::Any),
    Property::new("escape", Check::Any),
    Property::new("forceQuote", Check::Any),
    Property::new("forceNotNull", Check::Any),
    Property::new("forceNull", Check::Any),
    Property::new("encoding", Check::Any),
    Property::new("socketTimeout", Check::Any),
];
const COPY_IN: [Property; 26] = concat(&[&CONNECTION, &COPY_OWN, &[Property::new("from", Check::Required)]]);
const COPY_OUT: [Property; 26] = concat(&[&CONNECTION, &COPY_OWN, &[Property::new("sql", Check::Any)]]);

pub const TASKS: &[IoTaskSpec] = &[
    IoTaskSpec::new(
        IoKind::PostgresQuery,
        "io.kestra.plugin.jdbc.postgresql.Query",
        &POSTGRES_QUERY,
        |p, r| prepare_statements(p, r, Engine::Postgres, false),
        finish,
    ),
    IoTaskSpec::new(
        IoKind::PostgresQueries,
        "io.kestra.plugin.jdbc.postgresql.Queries",
        &POSTGRES_QUERIES,
        |p, r| prepare_statements(p, r, Engine::Postgres, true),
        finish,
    ),
    IoTaskSpec::new(
        IoKind::PostgresCopyIn,
        "io.kestra.plugin.jdbc.postgresql.CopyIn",
        &COPY_IN,
        copy::prepare_copy_in,
        finish,
    ),
    IoTaskSpec::new(
        IoKind::PostgresCopyOut,
        "io.kestra.plugin.jdbc.postgresql.CopyOut",
        &COPY_OUT,
        copy::prepare_copy_out,
        finish,
    ),
    IoTaskSpec::new(
        IoKind::SqliteQuery,
        "io.kestra.plugin.jdbc.sqlite.Query",
        &SQLITE_QUERY,
        |p, r| prepare_statements(p, r, Engine::Sqlite, false),
        finish,
    ),
    IoTaskSpec::new(
        IoKind::SqliteQueries,
        "io.kestra.plugin.jdbc.sqlite.Queries",
        &SQLITE_QUERIES,
        |p, r| prepare_statements(p, r, Engine::Sqlite, true),
        finish,
    ),
    IoTaskSpec::new(
        IoKind::DuckDbQuery,
        "io.kestra.plugin.jdbc.duckdb.Query",
        &DUCKDB_QUERY,
        |p, r| prepare_statements(p, r, Engine::DuckDb, false),
        finish,
    ),
    IoTaskSpec::new(
        IoKind::DuckDbQueries,
        "io.kestra.plugin.jdbc.duckdb.Queries",
        &DUCKDB_QUERIES,
        |p, r| prepare_statements(p, r, Engine::DuckDb, true),
        finish,
    ),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Engine {
    Postgres,
    Sqlite,
    DuckDb,
}

impl Props<'_> {
    fn text(&self, name: &str) -> Result<Option<String>, String> {
        Ok(self.rendered(name)?.filter(|v| !v.trim().is_empty()))
    }

    fn postgres_connection(&self) -> Result<PostgresConnection, String> {
        for unsupported in ["sslCert", "sslKey"] {
            if self.text(unsupported)?.is_some() {
                return Err(format!(
                    "{unsupported} is not supported: client certificates cannot be used yet, log in with username and password"
                ));
            }
        }
        let ssl = match self.rendered("ssl")? {
            None => None,
            Some(_) => Some(self.flag("ssl", false)?),
        };
        connection::postgres(connection::ConnectionProperties {
            url: self.required("url")?,
            username: self.text("username")?,
            password: self.rendered("password")?,
            ssl,
            ssl_mode: self.text("sslMode")?.map(|m| SslMode::parse(&m)).transpose()?,
            ssl_root_cert: self.text("sslRootCert")?,
        })
    }

    fn database(&self, engine: Engine, multiple: bool) -> Result<Database, String> {
        Ok(match engine {
            Engine::Postgres => Database::Postgres(self.postgres_connection()?),
            Engine::Sqlite => Database::Sqlite(SqliteDatabase {
                path: connection::sqlite(&self.text("url")?.unwrap_or_else(|| "jdbc:sqlite:".into()))?,
                sqlite_file: self.text("sqliteFile")?,
                output_db_file: self.flag("outputDbFile", false)?,
            }),
            Engine::DuckDb => Database::DuckDb(Box::new(duckdb::database(self, multiple)?)),
        })
    }

    fn copy_format(&self) -> Result<CopyFormat, String> {
        let format = self.text("format")?.unwrap_or_else(|| "TEXT".into());
        Ok(match format.trim().to_ascii_uppercase().as_str() {
            "TEXT" => CopyFormat::Text,
            "CSV" => CopyFormat::Csv,
            "BINARY" => CopyFormat::Binary,
            other => {
                return Err(format!(
                    "Invalid format '{other}': expected one of TEXT, CSV, BINARY"
                ))
            }
        })
    }

    /// `fetchType`, or the deprecated booleans that came before it.
    fn sql_fetch_type(&self) -> Result<FetchType, String> {
        if self.flag("fetch", false)? {
            return Ok(FetchType::Fetch);
        }
        if self.flag("fetchOne", false)? {
            return Ok(FetchType::FetchOne);
        }
        if self.flag("store", false)? {
            return Ok(FetchType::Store);
        }
        self.fetch_type(FetchType::None)
    }
}

fn prepare_statements(
    properties: &Map<String, Value>,
    render: &Render,
    engine: Engine,
    multiple: bool,
) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    let database = p.database(engine, multiple)?;
    let sql = p.required("sql")?;
    let mut texts = split_statements(&sql);
    if texts.is_empty() {
        return Err("Property 'sql' holds no SQL statement".into());
    }
    if !multiple && texts.len() > 1 {
        return Err(
            "Query task support only a single SQL statement. Use the Queries task to run multiple statements."
                .into(),
        );
    }
    let after_sql = p.text("afterSQL")?;
    if let Some(after) = &after_sql {
        match split_statements(after).as_slice() {
            [one] => texts.push(one.clone()),
            _ => return Err("Property 'afterSQL' must hold exactly one SQL statement".into()),
        }
    }
    let parameters = p.object("parameters")?.unwrap_or_default();
    let style = match engine {
        Engine::Postgres | Engine::DuckDb => Placeholder::Dollar,
        Engine::Sqlite => Placeholder::Question,
    };
    let statements = texts
        .iter()
        .map(|text| {
            let (sql, parameters) = bind_named(text, &parameters, style);
            Statement { sql, parameters }
        })
        .collect();
    let fetch_size = match p.integer("fetchSize")? {
        None => 10_000,
        Some(n) if n > 0 => u32::try_from(n).unwrap_or(u32::MAX),
        // MySQL's streaming hint (Integer.MIN_VALUE) and other non-positive sizes.
        Some(_) => 10_000,
    };
    Ok(IoCall::Sql(SqlCall {
        database,
        op: SqlOp::Run(Statements {
            statements,
            fetch_type: p.sql_fetch_type()?,
            fetch_size,
            zone: p.time_zone()?,
            transaction: if multiple {
                p.flag("transaction", true)?
            } else {
                after_sql.is_some()
            },
            multiple,
        }),
    }))
}

/// A row as the JSON object Kestra's outputs hold.
pub fn row_json(row: &Row) -> Value {
    Value::Object(
        row.iter()
            .map(|(name, value)| (name.clone(), value.to_json()))
            .collect(),
    )
}

/// The outputs of one statement's result (`row`/`rows`/`uri` and `size`).
fn result_outputs(result: &StatementResult, multiple: bool) -> Map<String, Value> {
    let mut out = Map::new();
    match result {
        StatementResult::NoResultSet | StatementResult::NotFetched => {}
        StatementResult::Row(row) => {
            if let Some(row) = row {
                out.insert("row".into(), row_json(row));
            }
            // `Queries` counts the fetched row even when there is none, as Kestra does.
            let size = u64::from(row.is_some() || multiple);
            out.insert("size".into(), size.into());
        }
        StatementResult::Rows(rows) => {
            out.insert("rows".into(), rows.iter().map(row_json).collect());
            out.insert("size".into(), rows.len().into());
        }
        StatementResult::Stored { uri, size } => {
            out.insert("uri".into(), uri.clone().into());
            out.insert("size".into(), (*size).into());
        }
    }
    out
}

fn finish(call: &IoCall, answer: IoAnswer, task_run: &TaskRunContext, now: DateTime<Utc>) -> TaskResult {
    let (IoCall::Sql(call), IoAnswer::Sql(answer)) = (call, answer) else {
        return task_run.failed("The worker answered another kind of call", now);
    };
    let outcome = match answer {
        Ok(outcome) => outcome,
        Err(e) => return task_run.failed(e.to_string(), now),
    };
    let mut outputs = IndexMap::new();
    let mut logs = Vec::new();
    match (outcome, &call.op) {
        (
            SqlOutcome::Ran {
                results,
                database_uri,
                output_files,
            },
            SqlOp::Run(statements),
        ) => {
            let fetched: u64 = results
                .iter()
                .map(|r| match r {
                    StatementResult::Row(row) => u64::from(row.is_some()),
                    StatementResult::Rows(rows) => rows.len() as u64,
                    StatementResult::Stored { size, .. } => *size,
                    _ => 0,
                })
                .sum();
            if statements.multiple {
                let list: Vec<Value> = results
                    .iter()
                    .filter(|r| !matches!(r, StatementResult::NoResultSet))
                    .map(|r| Value::Object(result_outputs(r, true)))
                    .collect();
                outputs.insert("outputs".into(), Value::Array(list));
            } else if let Some(result) = results.first() {
                outputs.extend(result_outputs(result, false));
            }
            if let Some(files) = output_files {
                let files = files.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
                outputs.insert("outputFiles".into(), Value::Object(files));
            }
            if let Some(uri) = database_uri {
                outputs.insert("databaseUri".into(), uri.into());
            }
            if statements.fetch_type == FetchType::None
                && results.iter().any(|r| matches!(r, StatementResult::NotFetched))
            {
                logs.extend(task_run.log(
                    LogLevel::Info,
                    "fetchType is set to NONE, no output will be returned",
                    now,
                ));
            }
            logs.extend(task_run.log(
                LogLevel::Debug,
                format!("{} statement(s) run, {fetched} row(s) fetched", results.len()),
                now,
            ));
        }
        (SqlOutcome::Copied { rows, uri }, _) => {
            if let Some(uri) = uri {
                outputs.insert("uri".into(), uri.into());
            }
            outputs.insert("rowCount".into(), rows.into());
        }
        _ => return task_run.failed("The worker answered another kind of call", now),
    }
    let mut result = task_run.result(StateType::Success, outputs);
    result.logs = logs;
    result
}
