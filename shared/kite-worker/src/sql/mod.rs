//! Kestra's SQL tasks (`io.kestra.plugin.jdbc.*`): the statements run with each
//! database's own driver, their rows turned into Kestra's values as they are read and
//! handed to a [`RowSink`] by `fetchType` (kept, or streamed into an Ion file: memory
//! holds a batch of rows, whatever the result's size).
//!
//! - [`sqlite`]: SQLite files and in-memory databases (rusqlite, on a blocking thread).
//! - `duckdb` (the `duckdb` cargo feature): DuckDB, embedded as SQLite is; a build without
//!   the feature fails DuckDB's tasks with [`SqlError::NoDuckDb`].
//! - [`postgres`]: PostgreSQL servers (tokio-postgres), with a pool of idle connections
//!   per server and login kept by the worker.
//!
//! A task run stopped (timeout, kill) drops the future running it: the statement running
//! then is cancelled on the database (SQLite's interrupt, PostgreSQL's cancel request).

#[cfg(feature = "duckdb")]
pub mod duckdb;
pub mod postgres;
pub mod sqlite;

use kite_core::ion::IonValue;
use kite_core::plugin::fetch_type::FetchType;
use kite_core::plugin::jdbc::{Database, Row, SqlCall, SqlError, SqlOp, SqlOutcome, StatementResult};

use tokio::sync::mpsc;

use crate::serdes::Output;
use crate::storage::Scope;

/// What the SQL tasks keep between task runs: PostgreSQL connections.
#[derive(Default)]
pub struct SqlClients {
    postgres: postgres::Pool,
}

impl SqlClients {
    pub fn new() -> SqlClients {
        SqlClients::default()
    }
}

/// Makes `call`.
pub async fn run(clients: &SqlClients, call: &SqlCall, scope: &Scope<'_>) -> Result<SqlOutcome, SqlError> {
    match (&call.database, &call.op) {
        (Database::Sqlite(db), SqlOp::Run(statements)) => sqlite::run(db, statements, scope).await,
        (Database::Postgres(connection), op) => postgres::run(&clients.postgres, connection, op, scope).await,
        (Database::DuckDb(db), SqlOp::Run(statements)) => run_duckdb(db, statements, scope).await,
        (Database::Sqlite(_) | Database::DuckDb(_), _) => {
            Err(SqlError::Task("COPY is a PostgreSQL command".into()))
        }
    }
}

#[cfg(feature = "duckdb")]
async fn run_duckdb(
    db: &kite_core::plugin::jdbc::DuckDbDatabase,
    statements: &kite_core::plugin::jdbc::Statements,
    scope: &Scope<'_>,
) -> Result<SqlOutcome, SqlError> {
    duckdb::run(db, statements, scope).await
}

#[cfg(not(feature = "duckdb"))]
async fn run_duckdb(
    _: &kite_core::plugin::jdbc::DuckDbDatabase,
    _: &kite_core::plugin::jdbc::Statements,
    _: &Scope<'_>,
) -> Result<SqlOutcome, SqlError> {
    Err(SqlError::NoDuckDb)
}

/// A UUID's 16 bytes as its text (`8-4-4-4-12` lowercase hex), as every database's JDBC
/// driver gives it.
fn uuid_text(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// What an embedded database's blocking thread (SQLite, DuckDB) reports, in order.
pub(super) enum Event {
    /// A statement starts; `rows`: it returns rows.
    Statement {
        rows: bool,
    },
    Row(Row),
    /// The statement's rows are all sent.
    Done,
}

/// Rows in flight between an embedded database's thread and the sinks.
pub(super) const CHANNEL_ROWS: usize = 512;

/// The statements' results from the events of an embedded database's thread, each
/// statement's rows pushed into its sink as they arrive.
pub(super) async fn receive_results(
    events: &mut mpsc::Receiver<Event>,
    fetch_type: FetchType,
    scope: &Scope<'_>,
) -> Result<Vec<StatementResult>, SqlError> {
    let mut results = Vec::new();
    let mut sink: Option<RowSink> = None;
    while let Some(event) = events.recv().await {
        match event {
            Event::Statement { rows: true } => {
                sink = Some(RowSink::new(fetch_type, scope, results.len() + 1));
            }
            Event::Statement { rows: false } => results.push(StatementResult::NoResultSet),
            Event::Row(row) => {
                if let Some(sink) = sink.as_mut() {
                    sink.push(row).await?;
                }
            }
            Event::Done => {
                if let Some(sink) = sink.take() {
                    results.push(sink.finish().await?);
                }
            }
        }
    }
    Ok(results)
}

/// Where the rows of one statement go, by `fetchType`.
pub(crate) enum RowSink {
    One(Option<Row>),
    All(Vec<Row>),
    Store {
        out: Output,
        size: u64,
    },
    /// `NONE`: read and dropped (a statement with `RETURNING` still runs to its end).
    Drop,
}

impl RowSink {
    /// The sink of the `index`th statement (from 1) of a task run.
    pub(crate) fn new(fetch_type: FetchType, scope: &Scope<'_>, index: usize) -> RowSink {
        match fetch_type {
            FetchType::FetchOne => RowSink::One(None),
            FetchType::Fetch => RowSink::All(Vec::new()),
            FetchType::Store => RowSink::Store {
                out: Output::named(scope, &format!("query-{index}"), ".ion"),
                size: 0,
            },
            FetchType::None => RowSink::Drop,
        }
    }

    /// Takes a row; `false` once it wants no more (`FETCH_ONE` has its row).
    pub(crate) async fn push(&mut self, row: Row) -> Result<bool, SqlError> {
        match self {
            RowSink::One(slot) => {
                *slot = Some(row);
                Ok(false)
            }
            RowSink::All(rows) => {
                rows.push(row);
                Ok(true)
            }
            RowSink::Store { out, size } => {
                let mut line = IonValue::Struct(row).to_line();
                line.push('\n');
                out.push(line.as_bytes()).await?;
                *size += 1;
                Ok(true)
            }
            RowSink::Drop => Ok(true),
        }
    }

    pub(crate) async fn finish(self) -> Result<StatementResult, SqlError> {
        Ok(match self {
            RowSink::One(row) => StatementResult::Row(row),
            RowSink::All(rows) => StatementResult::Rows(rows),
            RowSink::Store { out, size } => StatementResult::Stored {
                uri: out.finish().await?,
                size,
            },
            RowSink::Drop => StatementResult::NotFetched,
        })
    }
}

/// A JSON parameter as the text a database reads for it: strings as they are, other
/// values as JSON (`null` is bound as SQL NULL by the caller).
pub(crate) fn parameter_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
