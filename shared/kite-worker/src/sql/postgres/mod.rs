//! PostgreSQL tasks over tokio-postgres. A worker keeps a few idle connections per server
//! and login ([`Pool`]); one that the server closed meanwhile (a Lambda frozen between
//! invocations) is noticed before use and replaced. Parameters are sent as text for the
//! server to read as the type it infers, so `:id` works for an `int` column as for a
//! `text` one; rows stream from the server as they are read (the client's channel
//! applies backpressure), so `STORE` holds a few rows at a time.

mod cells;
mod tls;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{pin_mut, SinkExt, TryStreamExt};
use kite_core::plugin::jdbc::{
    CopyFormat, PostgresConnection, SqlError, SqlOp, SqlOutcome, StatementResult, Statements,
};
use kite_core::plugin::storage::files::{output_uri, MAX_FILE_BYTES};
use kite_core::plugin::storage::StorageError;
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio_postgres::types::{Format, IsNull, Kind, ToSql, Type};
use tokio_postgres::{CancelToken, Client, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{parameter_text, RowSink};
use crate::storage::io::{open, Sink};
use crate::storage::Scope;

/// Idle connections kept per server and login.
const IDLE_PER_SERVER: usize = 4;
/// Servers and logins remembered; past it the pool starts again empty.
const SERVERS: usize = 32;

/// A connection and what cancels its running statement.
struct Connected {
    client: Client,
    tls: Option<MakeRustlsConnect>,
}

/// Idle connections by server and login.
#[derive(Default)]
pub struct Pool {
    idle: Mutex<HashMap<PostgresConnection, Vec<Connected>>>,
}

impl Pool {
    async fn take(&self, connection: &PostgresConnection) -> Result<Connected, SqlError> {
        loop {
            let reused = self
                .idle
                .lock()
                .ok()
                .and_then(|mut idle| idle.get_mut(connection).and_then(Vec::pop));
            let Some(reused) = reused else { break };
            // One round trip tells a live connection from one the server closed.
            if !reused.client.is_closed() && reused.client.simple_query("").await.is_ok() {
                return Ok(reused);
            }
        }
        connect(connection).await
    }

    fn give_back(&self, connection: &PostgresConnection, connected: Connected) {
        if connected.client.is_closed() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() >= SERVERS && !idle.contains_key(connection) {
                idle.clear();
            }
            let list = idle.entry(connection.clone()).or_default();
            if list.len() < IDLE_PER_SERVER {
                list.push(connected);
            }
        }
    }
}

async fn connect(connection: &PostgresConnection) -> Result<Connected, SqlError> {
    let fail = |message: String| SqlError::Connect {
        address: connection.address(),
        message,
    };
    let mut config = tokio_postgres::Config::new();
    config
        .host(&connection.host)
        .port(connection.port)
        .application_name(connection.application_name.as_deref().unwrap_or("kite"))
        .connect_timeout(Duration::from_secs(connection.connect_timeout.max(1)));
    if let Some(database) = &connection.database {
        config.dbname(database);
    }
    if let Some(user) = &connection.user {
        config.user(user);
    }
    if let Some(password) = &connection.password {
        config.password(password);
    }
    if let Some(path) = &connection.search_path {
        config.options(format!("-c search_path={path}"));
    }
    let tls = tls::connector(connection.ssl, connection.ssl_root_cert.as_deref())?;
    config.ssl_mode(match connection.ssl {
        kite_core::plugin::jdbc::SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        kite_core::plugin::jdbc::SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        _ => tokio_postgres::config::SslMode::Require,
    });
    let client = match tls.clone() {
        None => {
            let (client, conn) = config.connect(NoTls).await.map_err(|e| fail(db_message(&e)))?;
            tokio::spawn(conn);
            client
        }
        Some(maker) => {
            let (client, conn) = config.connect(maker).await.map_err(|e| fail(db_message(&e)))?;
            tokio::spawn(conn);
            client
        }
    };
    Ok(Connected { client, tls })
}

/// The server's message as PostgreSQL's JDBC driver shows it (`ERROR: …`), with its
/// detail and hint; or the client's own error.
fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut message = format!("{}: {}", db.severity(), db.message());
            if let Some(detail) = db.detail() {
                message.push_str(&format!("\n  Detail: {detail}"));
            }
            if let Some(hint) = db.hint() {
                message.push_str(&format!("\n  Hint: {hint}"));
            }
            if let Some(tokio_postgres::error::ErrorPosition::Original(position)) = db.position() {
                message.push_str(&format!("\n  Position: {position}"));
            }
            message
        }
        None => {
            let mut message = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(inner) = source {
                message.push_str(&format!(": {inner}"));
                source = inner.source();
            }
            message
        }
    }
}

fn statement_error(e: tokio_postgres::Error) -> SqlError {
    SqlError::Statement {
        message: db_message(&e),
    }
}

/// Cancels the statement running on the server when the task run's future is dropped
/// (a timeout, a kill) before it ended.
struct CancelOnDrop {
    token: Option<CancelToken>,
    tls: Option<MakeRustlsConnect>,
}

impl CancelOnDrop {
    fn new(connected: &Connected) -> CancelOnDrop {
        CancelOnDrop {
            token: Some(connected.client.cancel_token()),
            tls: connected.tls.clone(),
        }
    }

    fn disarm(mut self) {
        self.token = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let Some(token) = self.token.take() else { return };
        let tls = self.tls.take();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = match tls {
                    Some(tls) => token.cancel_query(tls).await,
                    None => token.cancel_query(NoTls).await,
                };
            });
        }
    }
}

pub async fn run(
    pool: &Pool,
    connection: &PostgresConnection,
    op: &SqlOp,
    scope: &Scope<'_>,
) -> Result<SqlOutcome, SqlError> {
    let connected = pool.take(connection).await?;
    let guard = CancelOnDrop::new(&connected);
    let client = &connected.client;
    let outcome = match op {
        SqlOp::Run(statements) => run_statements(client, statements, scope).await,
        SqlOp::CopyIn { sql, from } => copy_in(client, sql, from, scope).await,
        SqlOp::CopyOut { sql, format, header } => copy_out(client, sql, *format, *header, scope).await,
    };
    guard.disarm();
    // A connection left inside a transaction (its ROLLBACK failed) is not reused.
    let clean = match &outcome {
        Ok(_) => true,
        Err(_) => client.simple_query("ROLLBACK").await.is_ok() || client.is_closed(),
    };
    if clean {
        pool.give_back(connection, connected);
    }
    outcome
}

async fn run_statements(
    client: &Client,
    statements: &Statements,
    scope: &Scope<'_>,
) -> Result<SqlOutcome, SqlError> {
    if statements.transaction {
        client.batch_execute("BEGIN").await.map_err(statement_error)?;
    }
    let mut results = Vec::new();
    for (index, statement) in statements.statements.iter().enumerate() {
        let prepared = client.prepare(&statement.sql).await.map_err(statement_error)?;
        let params: Vec<TextParam> = statement.parameters.iter().map(TextParam).collect();
        if prepared.columns().is_empty() {
            client
                .execute_raw(&prepared, &params)
                .await
                .map_err(statement_error)?;
            results.push(StatementResult::NoResultSet);
            continue;
        }
        let columns: Vec<(String, Type)> = prepared
            .columns()
            .iter()
            .map(|c| (c.name().to_string(), c.type_().clone()))
            .collect();
        let mut sink = RowSink::new(statements.fetch_type, scope, index + 1);
        let rows = client
            .query_raw(&prepared, &params)
            .await
            .map_err(statement_error)?;
        pin_mut!(rows);
        while let Some(row) = rows.try_next().await.map_err(statement_error)? {
            let mut values = Vec::with_capacity(columns.len());
            for (i, (name, ty)) in columns.iter().enumerate() {
                let raw = row
                    .try_get::<_, cells::Raw>(i)
                    .map_err(|e| SqlError::Value(format!("Column '{name}': {e}")))?;
                let value = cells::decode(ty, raw.0, statements.zone)
                    .map_err(|e| SqlError::Value(format!("{e} (column '{name}')")))?;
                values.push((name.clone(), value));
            }
            if !sink.push(values).await? {
                break;
            }
        }
        results.push(sink.finish().await?);
    }
    if statements.transaction {
        client.batch_execute("COMMIT").await.map_err(statement_error)?;
    }
    Ok(SqlOutcome::Ran {
        results,
        database_uri: None,
        output_files: None,
    })
}

/// A parameter sent as text: the server reads it as the type it infers for its
/// placeholder. Lists become array literals, except for `json` placeholders.
#[derive(Debug)]
struct TextParam<'a>(&'a Value);

impl ToSql for TextParam<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let text = match self.0 {
            Value::Null => return Ok(IsNull::Yes),
            Value::Array(items) if matches!(ty.kind(), Kind::Array(_)) => array_literal(items),
            other => parameter_text(other),
        };
        out.extend_from_slice(text.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_format(&self, _: &Type) -> Format {
        Format::Text
    }

    tokio_postgres::types::to_sql_checked!();
}

/// A JSON list as PostgreSQL's array literal: `{1,"a b",NULL,{2,3}}`.
fn array_literal(items: &[Value]) -> String {
    let parts: Vec<String> = items
        .iter()
        .map(|item| match item {
            Value::Null => "NULL".into(),
            Value::Array(inner) => array_literal(inner),
            other => format!(
                "\"{}\"",
                parameter_text(other).replace('\\', "\\\\").replace('"', "\\\"")
            ),
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}

async fn copy_in(client: &Client, sql: &str, from: &str, scope: &Scope<'_>) -> Result<SqlOutcome, SqlError> {
    let mut file = open(scope.files.as_ref(), from, scope.readable).await?;
    let sink = client.copy_in::<_, Bytes>(sql).await.map_err(statement_error)?;
    pin_mut!(sink);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut chunk).await.map_err(|e| {
            SqlError::Storage(StorageError::Storage {
                uri: from.to_string(),
                reason: e.to_string(),
            })
        })?;
        if n == 0 {
            break;
        }
        sink.send(Bytes::copy_from_slice(&chunk[..n]))
            .await
            .map_err(statement_error)?;
    }
    let rows = sink.finish().await.map_err(statement_error)?;
    Ok(SqlOutcome::Copied { rows, uri: None })
}

async fn copy_out(
    client: &Client,
    sql: &str,
    format: CopyFormat,
    header: bool,
    scope: &Scope<'_>,
) -> Result<SqlOutcome, SqlError> {
    let extension = match format {
        CopyFormat::Csv => ".csv",
        CopyFormat::Text => ".tsv",
        CopyFormat::Binary => ".bin",
    };
    let stream = client.copy_out(sql).await.map_err(statement_error)?;
    pin_mut!(stream);
    let mut out = Sink::open_limited(
        scope.files,
        output_uri(scope.prefix, "copy-out", extension),
        MAX_FILE_BYTES,
    );
    let mut counter = RowCounter::new(format);
    while let Some(chunk) = stream.try_next().await.map_err(statement_error)? {
        counter.feed(&chunk);
        out.write(&chunk).await?;
    }
    let uri = out.finish().await?;
    let rows = counter
        .rows()
        .saturating_sub(u64::from(header && format == CopyFormat::Csv));
    Ok(SqlOutcome::Copied { rows, uri: Some(uri) })
}

/// Counts the rows of `COPY … TO STDOUT` output as it streams by (the protocol's own
/// count is not exposed by the client): text rows are lines, CSV rows are lines outside
/// quotes, binary rows are tuples.
struct RowCounter {
    format: CopyFormat,
    rows: u64,
    in_quotes: bool,
    /// Binary: bytes of header or of field data still to skip, and the state between.
    binary: BinaryState,
    pending: Vec<u8>,
}

enum BinaryState {
    /// The 11-byte signature, flags and extension length (19 bytes), then the extension.
    Header,
    TupleStart,
    Field {
        left: u16,
    },
    /// Bytes to skip, then the tuple's fields left (`None`: the header's extension).
    Skip {
        bytes: u64,
        fields_left: Option<u16>,
    },
    Done,
}

impl RowCounter {
    fn new(format: CopyFormat) -> RowCounter {
        RowCounter {
            format,
            rows: 0,
            in_quotes: false,
            binary: BinaryState::Header,
            pending: Vec::new(),
        }
    }

    fn feed(&mut self, chunk: &[u8]) {
        match self.format {
            CopyFormat::Text => self.rows += chunk.iter().filter(|b| **b == b'\n').count() as u64,
            CopyFormat::Csv => {
                for b in chunk {
                    match b {
                        b'"' => self.in_quotes = !self.in_quotes,
                        b'\n' if !self.in_quotes => self.rows += 1,
                        _ => {}
                    }
                }
            }
            CopyFormat::Binary => {
                self.pending.extend_from_slice(chunk);
                self.walk_binary();
            }
        }
    }

    fn walk_binary(&mut self) {
        let mut at = 0;
        loop {
            let rest = &self.pending[at..];
            match self.binary {
                BinaryState::Header => {
                    let Some(ext) = rest.get(15..19) else { break };
                    let ext = u32::from_be_bytes([ext[0], ext[1], ext[2], ext[3]]);
                    at += 19;
                    self.binary = BinaryState::Skip {
                        bytes: ext.into(),
                        fields_left: None,
                    };
                }
                BinaryState::TupleStart => {
                    let Some(count) = rest.get(..2) else { break };
                    let count = i16::from_be_bytes([count[0], count[1]]);
                    at += 2;
                    if count < 0 {
                        self.binary = BinaryState::Done;
                    } else {
                        self.rows += 1;
                        self.binary = BinaryState::Field { left: count as u16 };
                    }
                }
                BinaryState::Field { left: 0 } => self.binary = BinaryState::TupleStart,
                BinaryState::Field { left } => {
                    let Some(len) = rest.get(..4) else { break };
                    let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
                    at += 4;
                    self.binary = BinaryState::Skip {
                        bytes: len.max(0) as u64,
                        fields_left: Some(left - 1),
                    };
                }
                BinaryState::Skip { bytes, fields_left } => {
                    let skip = bytes.min(rest.len() as u64);
                    at += skip as usize;
                    if skip < bytes {
                        self.binary = BinaryState::Skip {
                            bytes: bytes - skip,
                            fields_left,
                        };
                        break;
                    }
                    self.binary = match fields_left {
                        None => BinaryState::TupleStart,
                        Some(left) => BinaryState::Field { left },
                    };
                }
                BinaryState::Done => {
                    at = self.pending.len();
                    break;
                }
            }
        }
        self.pending.drain(..at);
    }

    fn rows(&self) -> u64 {
        self.rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_literals_quote_their_items() {
        let items = serde_json::json!([1, "a \"b\"", null, [2, "c\\d"]]);
        assert_eq!(
            array_literal(items.as_array().unwrap()),
            r#"{"1","a \"b\"",NULL,{"2","c\\d"}}"#
        );
    }

    #[test]
    fn copied_rows_are_counted_across_chunks() {
        let mut csv = RowCounter::new(CopyFormat::Csv);
        csv.feed(b"a,\"line\none\"\nb,");
        csv.feed(b"two\n");
        assert_eq!(csv.rows(), 2);
        let mut text = RowCounter::new(CopyFormat::Text);
        text.feed(b"1\tx\n2\ty\n");
        assert_eq!(text.rows(), 2);
        // Binary: signature, flags, no extension; two tuples of one int4; the trailer.
        let mut bin = b"PGCOPY\n\xff\r\n\0".to_vec();
        bin.extend([0, 0, 0, 0, 0, 0, 0, 0]);
        for v in [1_i32, 2] {
            bin.extend(1_i16.to_be_bytes());
            bin.extend(4_i32.to_be_bytes());
            bin.extend(v.to_be_bytes());
        }
        bin.extend((-1_i16).to_be_bytes());
        let mut counter = RowCounter::new(CopyFormat::Binary);
        for byte in &bin {
            counter.feed(std::slice::from_ref(byte));
        }
        assert_eq!(counter.rows(), 2);
    }
}
