//! DuckDB tasks (built with the `duckdb` feature): the database is opened on a blocking
//! thread for the task run only, in a working directory of its own (a temporary folder,
//! or the folder of an absolute database file) where `inputFiles` are written, the
//! `outputFiles` made and DuckDB's `file_search_path` points, so that
//! `read_csv_auto('in.csv')` finds its file. Rows come back over a bounded channel to the
//! task's [`RowSink`]s, as for SQLite; a dropped run interrupts the running statement.

mod cells;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ::duckdb::{params_from_iter, Connection, InterruptHandle};
use indexmap::IndexMap;
use kite_core::plugin::fetch_type::FetchType;
use kite_core::plugin::jdbc::{DuckDbDatabase, DuckDbPath, SqlError, SqlOutcome, Statements};
use kite_core::plugin::scripts::WORKING_DIR_MARK;
use tokio::sync::mpsc;
use tracing::warn;

use super::sqlite::{download, upload};
use super::{receive_results, Event, CHANNEL_ROWS};
use crate::script::files;
use crate::storage::Scope;
use cells::{convert, CellType};

/// The file a new database is kept in when `outputDbFile` asks for it.
const NEW_DATABASE: &str = "database.db";

fn local(e: impl std::fmt::Display) -> SqlError {
    SqlError::Task(format!("Unable to prepare the working directory: {e}"))
}

pub async fn run(
    db: &DuckDbDatabase,
    statements: &Statements,
    scope: &Scope<'_>,
) -> Result<SqlOutcome, SqlError> {
    // Removed when dropped: at the end, and when a timeout or a kill drops the run.
    let root = tempfile::Builder::new()
        .prefix("kite-duckdb-")
        .tempdir()
        .map_err(local)?;
    let (work, mut file) = match &db.path {
        DuckDbPath::File(path) => {
            let path = PathBuf::from(path);
            let parent = path
                .parent()
                .map_or_else(|| root.path().to_path_buf(), Path::to_path_buf);
            tokio::fs::create_dir_all(&parent).await.map_err(local)?;
            (parent, Some(path))
        }
        DuckDbPath::New | DuckDbPath::Other(_) => {
            let work = root.path().join("work");
            tokio::fs::create_dir(&work).await.map_err(local)?;
            let file = (db.output_db_file && db.path == DuckDbPath::New).then(|| work.join(NEW_DATABASE));
            (work, file)
        }
    };
    let work_text = work.to_string_lossy().into_owned();
    let replace = |text: &str| text.replace(WORKING_DIR_MARK, &work_text);

    files::input_files(
        scope.files.as_ref(),
        &work,
        &db.input_files,
        scope.readable,
        replace,
    )
    .await
    .map_err(|e| SqlError::Task(e.to_string()))?;
    if let Some(uri) = &db.database_uri {
        let path = work.join(format!("{}.db", database_file_name(uri)));
        download(scope, uri, &path).await?;
        file = Some(path);
    }
    for key in &db.output_files {
        files::write(&work, key, b"")
            .await
            .map_err(|e| SqlError::Task(e.to_string()))?;
    }

    let mut statements = statements.clone();
    let single = !statements.multiple && statements.statements.len() == 1;
    for statement in &mut statements.statements {
        statement.sql = replace(&statement.sql);
        if single {
            statement.sql = relative_file_names(&statement.sql, &work_text);
        }
        for parameter in &mut statement.parameters {
            if let serde_json::Value::String(text) = parameter {
                *text = replace(text);
            }
        }
    }
    let target = match (&file, &db.path) {
        (Some(path), _) => Target::File(path.clone()),
        (None, DuckDbPath::Other(other)) => Target::Other(other.clone()),
        (None, _) => Target::Memory,
    };
    let session = Session {
        target,
        // Kestra sets the search path only when the database has a working directory.
        search_path: (!matches!(db.path, DuckDbPath::Other(_)) || file.is_some()).then(|| work.clone()),
        extensions: db.community_extensions.clone(),
    };

    let (sender, mut events) = mpsc::channel(CHANNEL_ROWS);
    let interrupt: Arc<Mutex<Option<Arc<InterruptHandle>>>> = Arc::default();
    let _stop = InterruptOnDrop(interrupt.clone());
    let job = {
        let statements = statements.clone();
        tokio::task::spawn_blocking(move || execute(&session, &statements, &sender, &interrupt))
    };

    let results = receive_results(&mut events, statements.fetch_type, scope).await?;
    job.await
        .map_err(|e| SqlError::Task(format!("The DuckDB thread stopped: {e}")))??;

    let mut output_files = IndexMap::new();
    if !db.output_files.is_empty() {
        output_files = files::upload_outputs(
            scope.files.as_ref(),
            scope.prefix,
            &work,
            &root.path().join("no-output-dir"),
            &[],
            &db.output_files,
        )
        .await
        .map_err(|e| SqlError::Task(e.to_string()))?;
    }
    let database_uri = match (&file, db.output_db_file) {
        (Some(path), true) => Some(upload(scope, path).await?),
        _ => None,
    };
    Ok(SqlOutcome::Ran {
        results,
        database_uri,
        output_files: Some(output_files),
    })
}

/// Kestra's `Query` shows the `filename` column of `read_csv(…, filename = true)` relative
/// to the working directory: a one-line query asking for it is wrapped to strip the folder.
fn relative_file_names(sql: &str, work: &str) -> String {
    static ASKS: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^.*filename\s*=\s*(true|1).*$").expect("a valid pattern")
    });
    if !ASKS.is_match(&sql.to_lowercase()) {
        return sql.to_string();
    }
    let folder = regex::escape(&format!("{work}/")).replace('\'', "''");
    let inner = sql.trim_end().trim_end_matches(';');
    format!("SELECT * REPLACE(regexp_replace(filename, '^{folder}', '') AS filename) FROM ({inner})")
}

/// A file name from a URI's last segment (its characters kept to a safe set).
fn database_file_name(uri: &str) -> String {
    let name: String = uri
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        "database".into()
    } else {
        name
    }
}

enum Target {
    Memory,
    File(PathBuf),
    Other(String),
}

/// How the blocking thread opens the database.
struct Session {
    target: Target,
    search_path: Option<PathBuf>,
    extensions: Option<Vec<String>>,
}

/// Interrupts the statement running when the task run's future is dropped.
struct InterruptOnDrop(Arc<Mutex<Option<Arc<InterruptHandle>>>>);

impl Drop for InterruptOnDrop {
    fn drop(&mut self) {
        if let Ok(handle) = self.0.lock() {
            if let Some(handle) = handle.as_ref() {
                handle.interrupt();
            }
        }
    }
}

fn statement_error(e: ::duckdb::Error) -> SqlError {
    let message = match &e {
        ::duckdb::Error::DuckDBFailure(_, Some(text)) => text.clone(),
        other => other.to_string(),
    };
    SqlError::Statement { message }
}

fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Loads the community extensions (best effort, as Kestra): Kestra's default `ion` only
/// when this host already has it, the ones a task names installed first.
fn load_extensions(conn: &Connection, extensions: Option<&[String]>) {
    let Some(names) = extensions else {
        let _ = conn.execute_batch("LOAD ion");
        return;
    };
    for name in names {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            warn!(extension = %name, "DuckDB community extension skipped: its name has unsupported characters");
            continue;
        }
        if let Err(e) = conn.execute_batch(&format!("INSTALL {name} FROM community; LOAD {name};")) {
            warn!(extension = %name, error = %e, "DuckDB community extension not loaded, continuing without it");
        }
    }
}

/// Whether a statement's result is rows, as DuckDB's JDBC driver tells: the changed-row
/// count of `INSERT`, `UPDATE`, `DELETE`, `COPY` or `CREATE … AS` is not.
fn returns_rows(sql: &str, columns: &[String]) -> bool {
    if columns.is_empty() {
        return false;
    }
    let first = sql
        .trim_start_matches(|c: char| c.is_whitespace() || c == '(')
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    let changes = matches!(
        first.as_str(),
        "INSERT" | "UPDATE" | "DELETE" | "COPY" | "CREATE" | "MERGE" | "ALTER" | "DROP"
    );
    !(changes && columns.len() == 1 && columns[0] == "Count")
}

/// Runs the statements on this (blocking) thread, sending what they return.
fn execute(
    session: &Session,
    statements: &Statements,
    events: &mpsc::Sender<Event>,
    interrupt: &Mutex<Option<Arc<InterruptHandle>>>,
) -> Result<(), SqlError> {
    let (conn, address) = match &session.target {
        Target::Memory => (Connection::open_in_memory(), ":memory:".to_string()),
        Target::File(path) => (Connection::open(path), path.display().to_string()),
        Target::Other(other) => (Connection::open(other), other.clone()),
    };
    let conn = conn.map_err(|e| SqlError::Connect {
        address,
        message: e.to_string(),
    })?;
    if let Ok(mut slot) = interrupt.lock() {
        *slot = Some(conn.interrupt_handle());
    }
    if let Some(dir) = &session.search_path {
        let set = format!("SET file_search_path={}", quoted(&dir.to_string_lossy()));
        conn.execute_batch(&set).map_err(statement_error)?;
    }
    load_extensions(&conn, session.extensions.as_deref());
    let send = |event| {
        events
            .blocking_send(event)
            .map_err(|_| SqlError::Task("The task run was stopped".into()))
    };
    if statements.transaction {
        conn.execute_batch("BEGIN TRANSACTION").map_err(statement_error)?;
    }
    let ran = (|| {
        for statement in &statements.statements {
            let mut stmt = conn.prepare(&statement.sql).map_err(statement_error)?;
            let params = statement.parameters.iter().map(parameter);
            let mut rows = stmt.query(params_from_iter(params)).map_err(statement_error)?;
            let (names, kinds) = match rows.as_ref() {
                Some(stmt) => {
                    let names = stmt.column_names();
                    let kinds: Vec<CellType> = (0..names.len())
                        .map(|i| CellType::of(&stmt.column_logical_type(i)))
                        .collect();
                    (names, kinds)
                }
                None => (Vec::new(), Vec::new()),
            };
            let has_rows = returns_rows(&statement.sql, &names);
            send(Event::Statement { rows: has_rows })?;
            if !has_rows {
                while rows.next().map_err(statement_error)?.is_some() {}
                continue;
            }
            while let Some(row) = rows.next().map_err(statement_error)? {
                let mut values = Vec::with_capacity(names.len());
                for (i, (name, kind)) in names.iter().zip(&kinds).enumerate() {
                    let value: ::duckdb::types::Value = row.get(i).map_err(statement_error)?;
                    values.push((name.clone(), convert(value, kind, statements.zone)));
                }
                send(Event::Row(values))?;
                if statements.fetch_type == FetchType::FetchOne {
                    break;
                }
            }
            send(Event::Done)?;
        }
        Ok(())
    })();
    match ran {
        Ok(()) if statements.transaction => conn.execute_batch("COMMIT").map_err(statement_error),
        Ok(()) => Ok(()),
        Err(e) => {
            if statements.transaction {
                let _ = conn.execute_batch("ROLLBACK");
            }
            Err(e)
        }
    }
}

/// A JSON parameter as DuckDB's value: numbers, booleans and text as themselves, lists
/// and maps as their JSON text (DuckDB casts to the placeholder's type).
fn parameter(value: &serde_json::Value) -> ::duckdb::types::Value {
    use ::duckdb::types::Value as Duck;
    use serde_json::Value;
    match value {
        Value::Null => Duck::Null,
        Value::Bool(b) => Duck::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Duck::BigInt(i),
            None => Duck::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        other => Duck::Text(super::parameter_text(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_relative_in_one_line_queries() {
        assert_eq!(
            relative_file_names("SELECT * FROM read_csv_auto('*.csv', filename=true);", "/tmp/w.1"),
            "SELECT * REPLACE(regexp_replace(filename, '^/tmp/w\\.1/', '') AS filename) FROM (SELECT * FROM read_csv_auto('*.csv', filename=true))"
        );
        // As Kestra's pattern: not across lines.
        let two_lines = "SELECT *\nFROM read_csv_auto('*.csv', filename = 1)";
        assert_eq!(relative_file_names(two_lines, "/w"), two_lines);
        assert_eq!(relative_file_names("SELECT 1", "/w"), "SELECT 1");
    }

    #[test]
    fn changed_row_counts_are_not_rows() {
        let count = ["Count".to_string()];
        assert!(!returns_rows("INSERT INTO t VALUES (1)", &count));
        assert!(!returns_rows("  create table t as select 1", &count));
        assert!(returns_rows("SELECT count(*) AS Count FROM t", &count));
        assert!(returns_rows(
            "INSERT INTO t VALUES (1) RETURNING id",
            &["id".to_string()]
        ));
        assert!(!returns_rows("CREATE TABLE t (a INT)", &[]));
    }
}
