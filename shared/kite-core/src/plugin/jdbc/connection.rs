//! Where an SQL task connects: its `url` (the JDBC URL Kestra's tasks take, or a
//! libpq-style `postgresql://` URL) with `username`, `password` and the SSL properties,
//! read into what the worker's drivers need.

use std::fmt;

/// A PostgreSQL server and how to log in.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PostgresConnection {
    pub host: String,
    pub port: u16,
    /// `None`: the server's default (the user's name).
    pub database: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub ssl: SslMode,
    /// A PEM certificate the server's must chain to (`sslRootCert`), besides the usual roots.
    pub ssl_root_cert: Option<String>,
    pub application_name: Option<String>,
    /// `currentSchema`: the connection's `search_path`.
    pub search_path: Option<String>,
    /// Seconds (`connectTimeout`; Kite's default is 10).
    pub connect_timeout: u64,
}

// The password stays out of logs and error messages.
impl fmt::Debug for PostgresConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConnection")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("ssl", &self.ssl)
            .finish_non_exhaustive()
    }
}

impl PostgresConnection {
    /// `host:port/database`, for messages.
    pub fn address(&self) -> String {
        format!(
            "{}:{}/{}",
            self.host,
            self.port,
            self.database.as_deref().or(self.user.as_deref()).unwrap_or("")
        )
    }
}

/// Kestra's `sslMode` (libpq's `sslmode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SslMode {
    Disable,
    /// TLS if the server offers it, without checking its certificate.
    Prefer,
    /// TLS, without checking the server's certificate (as libpq's `require`).
    Require,
    /// TLS, the certificate checked against the roots but not the host name.
    VerifyCa,
    /// TLS, the certificate and the host name checked.
    VerifyFull,
}

impl SslMode {
    pub fn parse(text: &str) -> Result<SslMode, String> {
        Ok(match text.trim().to_ascii_uppercase().replace('-', "_").as_str() {
            "DISABLE" | "ALLOW" => SslMode::Disable,
            "PREFER" => SslMode::Prefer,
            "REQUIRE" => SslMode::Require,
            "VERIFY_CA" => SslMode::VerifyCa,
            "VERIFY_FULL" => SslMode::VerifyFull,
            _ => {
                return Err(format!(
                    "Invalid sslMode '{text}': expected one of DISABLE, ALLOW, PREFER, REQUIRE, VERIFY_CA, VERIFY_FULL"
                ))
            }
        })
    }
}

/// The task's connection properties, rendered.
#[derive(Debug, Default)]
pub struct ConnectionProperties {
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// `ssl: true` without a mode: `REQUIRE`.
    pub ssl: Option<bool>,
    pub ssl_mode: Option<SslMode>,
    pub ssl_root_cert: Option<String>,
}

/// Reads a PostgreSQL URL: `jdbc:postgresql://host[:port][/database][?params]`,
/// `jdbc:postgresql:database`, or `postgres[ql]://[user[:password]@]host[:port][/database][?params]`.
/// The task's `username` and `password` win over the URL's.
pub fn postgres(props: ConnectionProperties) -> Result<PostgresConnection, String> {
    let url = props.url.trim();
    let invalid = |why: &str| format!("Invalid PostgreSQL url '{}': {why}", redact(url));
    let rest = ["jdbc:postgresql:", "postgresql:", "postgres:"]
        .iter()
        .find_map(|scheme| url.strip_prefix(scheme))
        .ok_or_else(|| invalid("expected jdbc:postgresql://host:port/database"))?;
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, database) = match rest.strip_prefix("//") {
        Some(rest) => rest.split_once('/').unwrap_or((rest, "")),
        None => ("", rest.trim_start_matches('/')),
    };
    let (credentials, host_port) = match authority.rsplit_once('@') {
        Some((credentials, host_port)) => (Some(credentials), host_port),
        None => (None, authority),
    };
    let (host, port) = split_host_port(host_port).map_err(|why| invalid(&why))?;
    if host.contains(',') {
        return Err(invalid("several hosts are not supported"));
    }
    let mut conn = PostgresConnection {
        host: if host.is_empty() { "localhost".into() } else { host },
        port: port.unwrap_or(5432),
        database: Some(decode(database)).filter(|d| !d.is_empty()),
        user: None,
        password: None,
        ssl: SslMode::Disable,
        ssl_root_cert: None,
        application_name: None,
        search_path: None,
        connect_timeout: 10,
    };
    if let Some(credentials) = credentials {
        let (user, password) = credentials.split_once(':').unwrap_or((credentials, ""));
        conn.user = Some(decode(user)).filter(|u| !u.is_empty());
        conn.password = Some(decode(password)).filter(|p| !p.is_empty());
    }
    let mut url_ssl = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = decode(value);
        match key {
            "user" => conn.user = Some(value),
            "password" => conn.password = Some(value),
            "ssl" => url_ssl = Some(value != "false"),
            "sslmode" => conn.ssl = SslMode::parse(&value)?,
            "ApplicationName" | "application_name" => conn.application_name = Some(value),
            "currentSchema" => conn.search_path = Some(value),
            "connectTimeout" | "connect_timeout" => {
                conn.connect_timeout = value
                    .parse()
                    .map_err(|_| invalid(&format!("connectTimeout '{value}' is not a number of seconds")))?
            }
            // The driver's other settings (socket sizes, logging…) have no equivalent.
            _ => {}
        }
    }
    if conn.ssl == SslMode::Disable && url_ssl == Some(true) {
        conn.ssl = SslMode::Require;
    }
    match (props.ssl_mode, props.ssl) {
        (Some(mode), _) => conn.ssl = mode,
        (None, Some(true)) if conn.ssl == SslMode::Disable => conn.ssl = SslMode::Require,
        (None, Some(false)) if props.ssl_root_cert.is_none() => conn.ssl = SslMode::Disable,
        _ => {}
    }
    if props.username.is_some() {
        conn.user = props.username;
    }
    if props.password.is_some() {
        conn.password = props.password;
    }
    conn.ssl_root_cert = props.ssl_root_cert;
    Ok(conn)
}

fn split_host_port(text: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        // [::1]:5432
        let (host, after) = rest.split_once(']').ok_or("unclosed '[' in the host")?;
        (host, after.strip_prefix(':'))
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    let port = match port {
        None | Some("") => None,
        Some(port) => Some(
            port.parse::<u16>()
                .map_err(|_| format!("invalid port '{port}'"))?,
        ),
    };
    Ok((decode(host), port))
}

/// `%xx` escapes decoded (URLs carry passwords and names that way).
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).and_then(|b| hex(*b)),
            bytes.get(i + 2).and_then(|b| hex(*b)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A URL without its password, for messages.
pub fn redact(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(start) = out.find("password=") {
        let end = out[start..].find('&').map_or(out.len(), |n| start + n);
        out.replace_range(start + "password=".len()..end, "***");
    }
    if let Some(scheme_end) = out.find("://") {
        let authority_end = out[scheme_end + 3..]
            .find(['/', '?'])
            .map_or(out.len(), |n| scheme_end + 3 + n);
        if let Some(at) = out[..authority_end].rfind('@') {
            if let Some(colon) = out[scheme_end + 3..at].find(':') {
                out.replace_range(scheme_end + 3 + colon + 1..at, "***");
            }
        }
    }
    out
}

/// Where a SQLite database is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlitePath {
    /// `jdbc:sqlite:`, `jdbc:sqlite::memory:`: a database of this task run only.
    Memory,
    /// A file; a relative path is inside the task run's working directory.
    File(String),
}

/// Reads `jdbc:sqlite:path` (Kestra's default is `jdbc:sqlite:`, in memory).
pub fn sqlite(url: &str) -> Result<SqlitePath, String> {
    let url = url.trim();
    let path = url
        .strip_prefix("jdbc:sqlite:")
        .ok_or_else(|| format!("Invalid SQLite url '{url}': expected jdbc:sqlite:path/to/database.db"))?;
    let path = path.strip_prefix("file:").unwrap_or(path);
    let path = path.split_once('?').map_or(path, |(path, _)| path);
    Ok(match path.trim() {
        "" | ":memory:" => SqlitePath::Memory,
        path => SqlitePath::File(path.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(url: &str) -> PostgresConnection {
        postgres(ConnectionProperties {
            url: url.into(),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn jdbc_urls() {
        let c = pg("jdbc:postgresql://db.example.com:6543/sales?user=u&password=p%40ss&sslmode=verify-full");
        assert_eq!((c.host.as_str(), c.port), ("db.example.com", 6543));
        assert_eq!(c.database.as_deref(), Some("sales"));
        assert_eq!(
            (c.user.as_deref(), c.password.as_deref()),
            (Some("u"), Some("p@ss"))
        );
        assert_eq!(c.ssl, SslMode::VerifyFull);
        let c = pg("jdbc:postgresql://127.0.0.1/");
        assert_eq!((c.host.as_str(), c.port, c.database), ("127.0.0.1", 5432, None));
        let c = pg("jdbc:postgresql:mydb");
        assert_eq!(
            (c.host.as_str(), c.database.as_deref()),
            ("localhost", Some("mydb"))
        );
        let c = pg("jdbc:postgresql://[::1]:5433/x?ssl=true&currentSchema=s1");
        assert_eq!((c.host.as_str(), c.port, c.ssl), ("::1", 5433, SslMode::Require));
        assert_eq!(c.search_path.as_deref(), Some("s1"));
        let c = pg("postgresql://me:secret@localhost:5432/app");
        assert_eq!(
            (c.user.as_deref(), c.password.as_deref()),
            (Some("me"), Some("secret"))
        );
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[test]
    fn properties_win_over_the_url() {
        let c = postgres(ConnectionProperties {
            url: "jdbc:postgresql://h/db?user=a&password=b".into(),
            username: Some("kestra".into()),
            password: Some("k3stra".into()),
            ssl: Some(true),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            (c.user.as_deref(), c.password.as_deref()),
            (Some("kestra"), Some("k3stra"))
        );
        assert_eq!(c.ssl, SslMode::Require);
    }

    #[test]
    fn bad_urls_say_why_without_the_password() {
        let bad = |url: &str| {
            postgres(ConnectionProperties {
                url: url.into(),
                ..Default::default()
            })
            .unwrap_err()
        };
        assert!(bad("jdbc:mysql://h/db").contains("expected jdbc:postgresql://host:port/database"));
        let e = bad("jdbc:postgresql://h:port/db?password=hunter2");
        assert!(e.contains("invalid port 'port'") && !e.contains("hunter2"), "{e}");
        assert!(bad("postgres://u:hunter2@h:x/db").contains("u:***@"));
        assert!(bad("jdbc:postgresql://a,b/db").contains("several hosts"));
    }

    #[test]
    fn sqlite_urls() {
        assert_eq!(sqlite("jdbc:sqlite:").unwrap(), SqlitePath::Memory);
        assert_eq!(sqlite("jdbc:sqlite::memory:").unwrap(), SqlitePath::Memory);
        assert_eq!(
            sqlite("jdbc:sqlite:my.db").unwrap(),
            SqlitePath::File("my.db".into())
        );
        assert_eq!(
            sqlite("jdbc:sqlite:/data/x.sqlite?journal_mode=WAL").unwrap(),
            SqlitePath::File("/data/x.sqlite".into())
        );
        assert!(sqlite("sqlite:x.db")
            .unwrap_err()
            .contains("expected jdbc:sqlite:"));
    }
}
