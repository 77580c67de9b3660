//! SQLite tasks: the database is opened on a blocking thread for the task run only (as
//! Kestra does not pool SQLite connections); rows come back over a bounded channel to
//! the task's [`RowSink`]s. A relative database path and the `sqliteFile`/`outputDbFile`
//! database live in the task run's own temporary folder.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use kite_core::ion::{IonType, IonValue, JavaTime};
use kite_core::plugin::fetch_type::FetchType;
use kite_core::plugin::jdbc::{SqlError, SqlOutcome, SqliteDatabase, SqlitePath, Statements};
use kite_core::plugin::storage::files::{output_uri, MAX_FILE_BYTES};
use kite_core::plugin::storage::StorageError;
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, InterruptHandle, OpenFlags};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::{parameter_text, receive_results, Event, CHANNEL_ROWS};
use crate::storage::io::{open, Sink};
use crate::storage::Scope;

pub async fn run(
    db: &SqliteDatabase,
    statements: &Statements,
    scope: &Scope<'_>,
) -> Result<SqlOutcome, SqlError> {
    let folder = tempfile::Builder::new()
        .prefix("kite-sqlite-")
        .tempdir()
        .map_err(|e| SqlError::Task(format!("Unable to create a working directory: {e}")))?;
    let path = database_path(db, folder.path());
    if let (Some(uri), Some(path)) = (&db.sqlite_file, &path) {
        download(scope, uri, path).await?;
    }

    let (sender, mut events) = mpsc::channel(CHANNEL_ROWS);
    let interrupt: Arc<Mutex<Option<InterruptHandle>>> = Arc::default();
    let _stop = InterruptOnDrop(interrupt.clone());
    let job = {
        let (path, statements) = (path.clone(), statements.clone());
        tokio::task::spawn_blocking(move || execute(path.as_deref(), &statements, &sender, &interrupt))
    };

    let results = receive_results(&mut events, statements.fetch_type, scope).await?;
    job.await
        .map_err(|e| SqlError::Task(format!("The SQLite thread stopped: {e}")))??;

    let database_uri = match (&path, db.output_db_file) {
        (Some(path), true) => Some(upload(scope, path).await?),
        _ => None,
    };
    Ok(SqlOutcome::Ran {
        results,
        database_uri,
        output_files: None,
    })
}

/// The file the database is in (`None`: in memory).
fn database_path(db: &SqliteDatabase, folder: &Path) -> Option<PathBuf> {
    let wants_file = db.sqlite_file.is_some() || db.output_db_file;
    match &db.path {
        // Kestra keeps the file's name and puts it in the working directory.
        SqlitePath::File(file) if wants_file => {
            let name = Path::new(file)
                .file_name()
                .map_or("database.sqlite".into(), |n| n.to_owned());
            Some(folder.join(name))
        }
        SqlitePath::Memory if wants_file => Some(folder.join("database.sqlite")),
        SqlitePath::Memory => None,
        SqlitePath::File(file) => Some(folder.join(file)),
    }
}

pub(super) async fn download(scope: &Scope<'_>, uri: &str, path: &Path) -> Result<(), SqlError> {
    let mut from = open(scope.files.as_ref(), uri, scope.readable).await?;
    let local = |e: std::io::Error| SqlError::Task(format!("Unable to write the database file: {e}"));
    let mut file = tokio::fs::File::create(path).await.map_err(local)?;
    tokio::io::copy(&mut from, &mut file).await.map_err(|e| {
        SqlError::Storage(StorageError::Storage {
            uri: uri.to_string(),
            reason: e.to_string(),
        })
    })?;
    file.flush().await.map_err(local)
}

pub(super) async fn upload(scope: &Scope<'_>, path: &Path) -> Result<String, SqlError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("database.sqlite");
    let mut sink = Sink::open_limited(scope.files, output_uri(scope.prefix, name, ""), MAX_FILE_BYTES);
    let mut file: kite_engine::ports::ByteStream = match tokio::fs::File::open(path).await {
        Ok(file) => Box::pin(file),
        // SQLite creates its file lazily: an untouched database is an empty file.
        Err(_) => Box::pin(tokio::io::empty()),
    };
    sink.copy(&mut file, &path.display().to_string()).await?;
    Ok(sink.finish().await?)
}

/// Interrupts the statement running when the task run's future is dropped.
struct InterruptOnDrop(Arc<Mutex<Option<InterruptHandle>>>);

impl Drop for InterruptOnDrop {
    fn drop(&mut self) {
        if let Ok(handle) = self.0.lock() {
            if let Some(handle) = handle.as_ref() {
                handle.interrupt();
            }
        }
    }
}

/// SQLite's message, after its result code's name as SQLite's JDBC driver shows it
/// (`[SQLITE_CONSTRAINT] …`).
fn statement_error(e: rusqlite::Error) -> SqlError {
    let code = match &e {
        rusqlite::Error::SqliteFailure(failure, _) => Some(failure.extended_code & 0xff),
        rusqlite::Error::SqlInputError { error, .. } => Some(error.extended_code & 0xff),
        _ => None,
    };
    let name = code.map(|code| match code {
        1 => "ERROR",
        5 => "BUSY",
        6 => "LOCKED",
        8 => "READONLY",
        9 => "INTERRUPT",
        11 => "CORRUPT",
        13 => "FULL",
        14 => "CANTOPEN",
        19 => "CONSTRAINT",
        20 => "MISMATCH",
        25 => "RANGE",
        26 => "NOTADB",
        _ => "ERROR",
    });
    let message = match (name, &e) {
        (Some(name), rusqlite::Error::SqliteFailure(_, Some(text))) => format!("[SQLITE_{name}] {text}"),
        (Some(name), other) => format!("[SQLITE_{name}] {other}"),
        (None, other) => other.to_string(),
    };
    SqlError::Statement { message }
}

/// Runs the statements on this (blocking) thread, sending what they return.
fn execute(
    path: Option<&Path>,
    statements: &Statements,
    events: &mpsc::Sender<Event>,
    interrupt: &Mutex<Option<InterruptHandle>>,
) -> Result<(), SqlError> {
    let flags =
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_URI;
    let conn = match path {
        Some(path) => Connection::open_with_flags(path, flags),
        None => Connection::open_in_memory(),
    }
    .map_err(|e| SqlError::Connect {
        address: path.map_or(":memory:".into(), |p| p.display().to_string()),
        message: e.to_string(),
    })?;
    if let Ok(mut slot) = interrupt.lock() {
        *slot = Some(conn.get_interrupt_handle());
    }
    // Kestra's connection waits on a locked file rather than failing at once.
    let _ = conn.busy_timeout(std::time::Duration::from_secs(30));
    let send = |event| {
        events
            .blocking_send(event)
            .map_err(|_| SqlError::Task("The task run was stopped".into()))
    };
    if statements.transaction {
        conn.execute_batch("BEGIN").map_err(statement_error)?;
    }
    let ran = (|| {
        for statement in &statements.statements {
            let mut stmt = conn.prepare(&statement.sql).map_err(statement_error)?;
            let columns: Vec<(String, Option<String>)> = stmt
                .columns()
                .iter()
                .map(|c| (c.name().to_string(), c.decl_type().map(str::to_ascii_lowercase)))
                .collect();
            let params = statement.parameters.iter().map(sql_value);
            let mut rows = stmt
                .query(rusqlite::params_from_iter(params))
                .map_err(statement_error)?;
            send(Event::Statement {
                rows: !columns.is_empty(),
            })?;
            if columns.is_empty() {
                // Runs it (a statement without columns has no rows to step through).
                rows.next().map_err(statement_error)?;
                continue;
            }
            while let Some(row) = rows.next().map_err(statement_error)? {
                let mut values = Vec::with_capacity(columns.len());
                for (i, (name, decl)) in columns.iter().enumerate() {
                    let cell = row.get_ref(i).map_err(statement_error)?;
                    values.push((name.clone(), cell_value(cell, decl.as_deref(), statements.zone)));
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

/// A JSON parameter as SQLite's value: numbers and text as themselves, booleans as 0/1,
/// lists and maps as their JSON text.
fn sql_value(value: &serde_json::Value) -> SqlValue {
    use serde_json::Value;
    match value {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or(f64::NAN)),
        },
        other => SqlValue::Text(parameter_text(other)),
    }
}

/// A cell as Kestra's SQLite converter reads it: columns declared `date`, `datetime`,
/// `timestamp` or `time` as Java dates and times, others by their storage class.
fn cell_value(cell: ValueRef<'_>, decl: Option<&str>, zone: chrono_tz::Tz) -> IonValue {
    let text = match cell {
        ValueRef::Text(bytes) => Some(String::from_utf8_lossy(bytes)),
        _ => None,
    };
    let typed = match (decl, text.as_deref(), cell) {
        (Some("date"), Some(text), _) => NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
            .ok()
            .map(JavaTime::LocalDate),
        (Some("datetime" | "timestamp"), Some(text), _) => instant(text.trim(), zone).map(JavaTime::Instant),
        // The driver reads whole numbers in such columns as milliseconds since the epoch.
        (Some("datetime" | "timestamp"), None, ValueRef::Integer(ms)) => {
            DateTime::<Utc>::from_timestamp_millis(ms).map(JavaTime::Instant)
        }
        (Some("time"), Some(text), _) => NaiveTime::parse_from_str(text.trim(), "%H:%M:%S%.f")
            .or_else(|_| NaiveTime::parse_from_str(text.trim(), "%H:%M"))
            .ok()
            .map(JavaTime::LocalTime),
        _ => None,
    };
    if let Some(typed) = typed {
        return typed.to_ion();
    }
    match cell {
        ValueRef::Null => IonValue::Null(IonType::Null),
        ValueRef::Integer(i) => IonValue::Int(i.into()),
        ValueRef::Real(f) => IonValue::Float(f),
        ValueRef::Text(_) => IonValue::String(text.unwrap_or_default().into_owned()),
        ValueRef::Blob(bytes) => IonValue::Blob(bytes.to_vec()),
    }
}

/// SQLite's date and time text: with a zone or offset, else local to `zone`; a date
/// alone is its midnight.
fn instant(text: &str, zone: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    let zoned = text.split('[').next().unwrap_or(text);
    if let Ok(at) = DateTime::parse_from_rfc3339(zoned)
        .or_else(|_| DateTime::parse_from_rfc3339(&zoned.replacen(' ', "T", 1)))
    {
        return Some(at.to_utc());
    }
    let local = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
    .or_else(|| {
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .map(|d| d.and_time(NaiveTime::MIN))
    })?;
    zone.from_local_datetime(&local).earliest().map(|at| at.to_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_dates_and_times_are_java_values() {
        let utc = chrono_tz::UTC;
        let date = cell_value(ValueRef::Text(b"2024-01-02"), Some("date"), utc);
        assert_eq!(date.to_line(), "2024-01-02");
        let at = cell_value(
            ValueRef::Text(b"2024-01-02 03:04:05"),
            Some("datetime"),
            chrono_tz::Europe::Paris,
        );
        assert_eq!(at.to_json(), serde_json::json!("2024-01-02T02:04:05Z"));
        let at = cell_value(ValueRef::Integer(1_704_164_645_000), Some("timestamp"), utc);
        assert_eq!(at.to_json(), serde_json::json!("2024-01-02T03:04:05Z"));
        let time = cell_value(ValueRef::Text(b"10:15:30"), Some("time"), utc);
        assert_eq!(time.to_line(), "LocalTime::\"10:15:30\"");
        // Not a date after all: the text as it is.
        let text = cell_value(ValueRef::Text(b"soon"), Some("date"), utc);
        assert_eq!(text, IonValue::String("soon".into()));
        assert_eq!(
            cell_value(ValueRef::Integer(5), Some("integer"), utc),
            IonValue::Int(5)
        );
        assert_eq!(cell_value(ValueRef::Real(1.5), None, utc), IonValue::Float(1.5));
        assert_eq!(
            cell_value(ValueRef::Blob(b"hi"), Some("blob"), utc),
            IonValue::Blob(b"hi".to_vec())
        );
    }
}
