//! The HTTP tasks' `options` (Kestra's `HttpConfiguration`): authentication, timeouts,
//! redirects, which answers fail the task run, the response size limit and the charset
//! of the request body. Every value is an expression, rendered when the task runs.

use std::time::Duration;

use base64::Engine;
use serde_json::{Map, Value};

use super::HttpError;
use crate::plugin::Render;

/// The largest body a `Request` reads into its outputs unless `maxContentLength` says
/// otherwise (Kestra documents 10MB).
pub const DEFAULT_MAX_CONTENT_LENGTH: usize = 10 * 1024 * 1024;

/// Kestra's default `timeout.readIdleTimeout`: five minutes without data.
pub const DEFAULT_READ_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Options Kestra accepts that change nothing here (proxies, TLS, HTTP client logs,
/// retries) or that Kestra itself ignores (`readIdleTimeout` at the top level,
/// `connectionPoolIdleTimeout`).
const IGNORED: &[&str] = &[
    "proxy",
    "ssl",
    "logs",
    "logLevel",
    "readIdleTimeout",
    "connectionPoolIdleTimeout",
    "proxyType",
    "proxyAddress",
    "proxyPort",
    "proxyUsername",
    "proxyPassword",
    "retry",
    "retryOnStatusCodes",
    "retryOnStatusCodesByMethod",
    "retryableTransportFailureMethods",
    "enabledTcpExtendedKeepAlive",
];

/// `options`, rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpOptions {
    /// `timeout.connectTimeout` (legacy `connectTimeout`): none by default.
    pub connect_timeout: Option<Duration>,
    /// `timeout.readIdleTimeout` (legacy `readTimeout`): the longest wait for data.
    pub read_idle_timeout: Duration,
    /// `followRedirects` (default true).
    pub follow_redirects: bool,
    /// `allowFailed` (or the task's legacy `allowFailed`): a 4xx/5xx answer is a result.
    pub allow_failed: bool,
    /// `allowedResponseCodes`: when not empty, exactly the codes that succeed.
    pub allowed_response_codes: Vec<u16>,
    /// `maxContentLength`: the largest body a `Request` reads.
    pub max_content_length: usize,
    /// `defaultCharset`: how a `body` and `formData` are encoded.
    pub charset: Charset,
    /// `auth` (legacy `basicAuthUser`, `basicAuthPassword`).
    pub auth: Option<Auth>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: None,
            read_idle_timeout: DEFAULT_READ_IDLE_TIMEOUT,
            follow_redirects: true,
            allow_failed: false,
            allowed_response_codes: Vec::new(),
            max_content_length: DEFAULT_MAX_CONTENT_LENGTH,
            charset: Charset::Utf8,
            auth: None,
        }
    }
}

impl HttpOptions {
    /// Whether an answer with `status` is the task's result (Kestra's rule: the allowed
    /// codes when given, else anything with `allowFailed`, else below 400).
    pub fn accepts(&self, status: u16) -> bool {
        if !self.allowed_response_codes.is_empty() {
            self.allowed_response_codes.contains(&status)
        } else {
            self.allow_failed || status < 400
        }
    }
}

/// `options.auth`: the `Authorization` header every request of the task carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    Basic { username: String, password: String },
    Bearer { token: String },
}

impl Auth {
    /// The value of the `Authorization` header.
    pub fn header(&self) -> String {
        match self {
            Auth::Basic { username, password } => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
            ),
            Auth::Bearer { token } => format!("Bearer {token}"),
        }
    }
}

/// The charsets a request body can be encoded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    Utf8,
    Latin1,
    Ascii,
}

impl Charset {
    fn parse(name: &str) -> Option<Charset> {
        match name.trim().to_ascii_uppercase().replace('_', "-").as_str() {
            "UTF-8" | "UTF8" => Some(Charset::Utf8),
            "ISO-8859-1" | "ISO8859-1" | "LATIN1" | "ISO-LATIN-1" => Some(Charset::Latin1),
            "US-ASCII" | "ASCII" => Some(Charset::Ascii),
            _ => None,
        }
    }

    /// The name Java gives it (the `charset` of the `Content-Type`).
    pub fn name(self) -> &'static str {
        match self {
            Charset::Utf8 => "UTF-8",
            Charset::Latin1 => "ISO-8859-1",
            Charset::Ascii => "US-ASCII",
        }
    }

    /// `text` encoded; a character the charset lacks becomes `?`, as in Java.
    pub fn encode(self, text: &str) -> Vec<u8> {
        let max = match self {
            Charset::Utf8 => return text.as_bytes().to_vec(),
            Charset::Latin1 => 0xFF,
            Charset::Ascii => 0x7F,
        };
        text.chars()
            .map(|c| {
                u8::try_from(u32::from(c))
                    .ok()
                    .filter(|b| u32::from(*b) <= max)
                    .unwrap_or(b'?')
            })
            .collect()
    }
}

/// Renders `options` (absent: Kestra's defaults). `legacy_allow_failed` is the task's own
/// deprecated `allowFailed`, which sets `options.allowFailed`.
pub fn parse(
    options: Option<&Value>,
    legacy_allow_failed: Option<&Value>,
    render: &Render,
) -> Result<HttpOptions, HttpError> {
    let mut out = HttpOptions::default();
    let empty = Map::new();
    let options = match options {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(map)) => map,
        Some(_) => return Err(invalid("", "must be a map")),
    };
    for (key, value) in options {
        if value.is_null() {
            continue;
        }
        let this = field(key, value, render);
        match key.as_str() {
            "timeout" => {
                for (name, value) in this.map()? {
                    if value.is_null() {
                        continue;
                    }
                    let inner = field(&format!("timeout.{name}"), value, render);
                    match name.as_str() {
                        "connectTimeout" => out.connect_timeout = Some(inner.duration()?),
                        "readIdleTimeout" => out.read_idle_timeout = inner.duration()?,
                        _ => return Err(invalid(&inner.path, "is not a known property")),
                    }
                }
            }
            // The deprecated spellings yield to `timeout` when both are given.
            "connectTimeout" if !has(options, "timeout", "connectTimeout") => {
                out.connect_timeout = Some(this.duration()?);
            }
            "readTimeout" if !has(options, "timeout", "readIdleTimeout") => {
                out.read_idle_timeout = this.duration()?;
            }
            "connectTimeout" | "readTimeout" => {}
            "auth" => out.auth = Some(auth(&this)?),
            "basicAuthUser" | "basicAuthPassword" => {}
            "followRedirects" => out.follow_redirects = this.boolean()?,
            "allowFailed" => out.allow_failed = this.boolean()?,
            "allowedResponseCodes" => out.allowed_response_codes = this.codes()?,
            "maxContentLength" => out.max_content_length = this.size()?,
            "defaultCharset" => {
                let name = this.text()?;
                out.charset = Charset::parse(&name).ok_or_else(|| {
                    invalid(
                        key,
                        &format!("'{name}' is not a supported charset (UTF-8, ISO-8859-1, US-ASCII)"),
                    )
                })?;
            }
            ignored if IGNORED.contains(&ignored) => {}
            _ => return Err(invalid(key, "is not a known property")),
        }
    }
    let legacy_user = options.get("basicAuthUser").filter(|v| !v.is_null());
    let legacy_password = options.get("basicAuthPassword").filter(|v| !v.is_null());
    if out.auth.is_none() && (legacy_user.is_some() || legacy_password.is_some()) {
        let text =
            |name: &str, v: Option<&Value>| v.map_or(Ok(String::new()), |v| field(name, v, render).text());
        out.auth = Some(Auth::Basic {
            username: text("basicAuthUser", legacy_user)?,
            password: text("basicAuthPassword", legacy_password)?,
        });
    }
    if let Some(value) = legacy_allow_failed.filter(|v| !v.is_null()) {
        out.allow_failed = Field {
            path: "allowFailed".into(),
            value,
            render,
        }
        .boolean()
        .map_err(|e| match e {
            HttpError::InvalidOption { reason, .. } => HttpError::InvalidProperty {
                name: "allowFailed".into(),
                reason,
            },
            other => other,
        })?;
    }
    Ok(out)
}

fn has(options: &Map<String, Value>, map: &str, key: &str) -> bool {
    options
        .get(map)
        .and_then(Value::as_object)
        .and_then(|m| m.get(key))
        .is_some_and(|v| !v.is_null())
}

fn auth(field: &Field) -> Result<Auth, HttpError> {
    let map = field.map()?;
    let get = |name: &str| -> Result<String, HttpError> {
        match map.get(name).filter(|v| !v.is_null()) {
            Some(value) => Field {
                path: format!("auth.{name}"),
                value,
                render: field.render,
            }
            .text(),
            None => Ok(String::new()),
        }
    };
    for name in map.keys() {
        if !["type", "username", "password", "token"].contains(&name.as_str()) {
            return Err(invalid(&format!("auth.{name}"), "is not a known property"));
        }
    }
    match get("type")?.to_ascii_uppercase().as_str() {
        "BASIC" => Ok(Auth::Basic {
            username: get("username")?,
            password: get("password")?,
        }),
        "BEARER" => Ok(Auth::Bearer { token: get("token")? }),
        "" => Err(invalid("auth.type", "is required (BASIC or BEARER)")),
        other => Err(invalid(
            "auth.type",
            &format!("'{other}' is not supported (BASIC or BEARER)"),
        )),
    }
}

fn invalid(path: &str, reason: &str) -> HttpError {
    HttpError::InvalidOption {
        name: if path.is_empty() {
            "options".into()
        } else {
            format!("options.{path}")
        },
        reason: reason.to_string(),
    }
}

fn field<'a, 'r>(path: &str, value: &'a Value, render: &'a Render<'r>) -> Field<'a, 'r> {
    Field {
        path: path.to_string(),
        value,
        render,
    }
}

/// One value under `options`, with its path for error messages.
struct Field<'a, 'r> {
    path: String,
    value: &'a Value,
    render: &'a Render<'r>,
}

impl Field<'_, '_> {
    fn fail(&self, reason: String) -> HttpError {
        invalid(&self.path, &reason)
    }

    fn text(&self) -> Result<String, HttpError> {
        if self.value.is_object() || self.value.is_array() {
            return Err(self.fail("must be a single value".into()));
        }
        Ok((self.render)(self.value)?)
    }

    fn map(&self) -> Result<&Map<String, Value>, HttpError> {
        self.value
            .as_object()
            .ok_or_else(|| self.fail("must be a map".into()))
    }

    fn boolean(&self) -> Result<bool, HttpError> {
        let text = self.text()?;
        match text.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(self.fail(format!("'{text}' is not a boolean"))),
        }
    }

    fn duration(&self) -> Result<Duration, HttpError> {
        let text = self.text()?;
        crate::input::parse_iso_duration(&text)
            .and_then(|d| d.to_std().ok())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                self.fail(format!(
                    "'{text}' is not a positive ISO-8601 duration (like PT30S)"
                ))
            })
    }

    fn size(&self) -> Result<usize, HttpError> {
        let text = self.text()?;
        text.trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=i32::MAX as u32).contains(n))
            .map(|n| n as usize)
            .ok_or_else(|| {
                self.fail(format!(
                    "'{text}' is not a number of bytes from 1 to {}",
                    i32::MAX
                ))
            })
    }

    /// A list of status codes: a YAML list, or an expression rendering to a JSON list.
    fn codes(&self) -> Result<Vec<u16>, HttpError> {
        let items: Vec<String> = match self.value {
            Value::Array(items) => items
                .iter()
                .map(|v| Ok((self.render)(v)?))
                .collect::<Result<_, HttpError>>()?,
            _ => {
                let text = self.text()?;
                match serde_json::from_str::<Value>(&text) {
                    Ok(Value::Array(items)) => items
                        .iter()
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                        .collect(),
                    _ => text.split(',').map(|s| s.trim().to_string()).collect(),
                }
            }
        };
        items
            .iter()
            .map(|item| {
                item.trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|c| (100..=999).contains(c))
                    .ok_or_else(|| self.fail(format!("'{item}' is not an HTTP status code")))
            })
            .collect()
    }
}
