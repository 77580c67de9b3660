//! Kestra's `io.kestra.plugin.email.MailSend` (formerly
//! `io.kestra.plugin.notifications.mail.MailSend`): an email over SMTP, with
//! Kestra's properties and defaults (SMTPS, a 10 s session timeout, a plain-text body
//! asking for a modern client when only HTML is given, `application/octet-stream`
//! attachments). The worker builds the message and talks SMTP; attachments are internal
//! storage files the execution may read.

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::props::Props;
use super::{Check, IoAnswer, IoCall, IoKind, IoTaskSpec, Property, Render, TaskRunContext};
use crate::execution::{LogLevel, StateType, TaskResult};

/// How the connection to the SMTP server is secured (Kestra's `transportStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportStrategy {
    /// Plain SMTP, upgraded with STARTTLS when the server offers it.
    Smtp,
    /// TLS from the first byte (Kestra's default).
    Smtps,
    /// Plain SMTP that must be upgraded with STARTTLS.
    SmtpTls,
}

impl TransportStrategy {
    /// The port used when `port` is not given.
    pub fn default_port(self) -> u16 {
        match self {
            TransportStrategy::Smtp => 25,
            TransportStrategy::Smtps => 465,
            TransportStrategy::SmtpTls => 587,
        }
    }
}

/// An attachment or an embedded image: an internal storage file sent under `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailFile {
    pub name: String,
    pub uri: String,
    pub content_type: String,
}

/// An email to send, rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct MailCall {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    pub transport: TransportStrategy,
    pub session_timeout: std::time::Duration,
    /// Whether the server's certificate must name `host` (Kestra's `verifyServerIdentity`).
    pub verify_server_identity: bool,
    /// Hosts whose certificates are trusted without a check (self-signed ones).
    pub trusted_hosts: Vec<String>,
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: Option<String>,
    pub html: Option<String>,
    pub text: String,
    pub attachments: Vec<MailFile>,
    /// Referred to from the HTML body as `cid:{name}`.
    pub embedded_images: Vec<MailFile>,
}

impl MailCall {
    /// The internal storage files the email carries.
    pub fn files_read(&self) -> Vec<&str> {
        self.attachments
            .iter()
            .chain(&self.embedded_images)
            .map(|f| f.uri.as_str())
            .collect()
    }
}

/// Why an email was not sent: the FAILED task run's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MailError(pub String);

/// Kestra's plain-text body when only an HTML one is given.
pub const DEFAULT_TEXT: &str = "Please view this email in a modern email client";

const PROPERTIES: &[Property] = &[
    Property::new("host", Check::Any),
    Property::new("port", Check::Any),
    Property::new("username", Check::Any),
    Property::new("password", Check::Any),
    Property::new("transportStrategy", Check::Any),
    Property::new("sessionTimeout", Check::Any),
    Property::new("verifyServerIdentity", Check::Any),
    Property::new("trustedHosts", Check::Any),
    Property::new("from", Check::Any),
    Property::new("to", Check::Any),
    Property::new("cc", Check::Any),
    Property::new("subject", Check::Any),
    Property::new("attachments", Check::Any),
    Property::new("embeddedImages", Check::Any),
    Property::new("htmlTextContent", Check::Any),
    Property::new("plainTextContent", Check::Any),
];

pub const TASKS: &[IoTaskSpec] = &[IoTaskSpec {
    kind: IoKind::MailSend,
    name: "io.kestra.plugin.email.MailSend",
    aliases: &["io.kestra.plugin.notifications.mail.MailSend"],
    properties: PROPERTIES,
    prepare,
    finish,
}];

fn prepare(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    let mut call = smtp_call(&p)?;
    call.html = p.rendered("htmlTextContent")?;
    call.text = p
        .rendered("plainTextContent")?
        .unwrap_or_else(|| DEFAULT_TEXT.into());
    Ok(IoCall::Mail(call))
}

/// The email of `p`'s SMTP and message properties, with no body yet.
pub(crate) fn smtp_call(p: &Props) -> Result<MailCall, String> {
    let transport = match p.rendered("transportStrategy")?.as_deref().map(str::trim) {
        None | Some("SMTPS") => TransportStrategy::Smtps,
        Some("SMTP") => TransportStrategy::Smtp,
        Some("SMTP_TLS") => TransportStrategy::SmtpTls,
        Some(other) => {
            return Err(format!(
                "Invalid transportStrategy '{other}': expected SMTP, SMTPS or SMTP_TLS"
            ))
        }
    };
    let port = match p.rendered("port")? {
        None => transport.default_port(),
        Some(text) => text
            .trim()
            .parse()
            .map_err(|_| format!("Invalid port '{text}'"))?,
    };
    let session_timeout = match p.rendered("sessionTimeout")? {
        None => 10_000,
        Some(text) => text
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("Invalid sessionTimeout '{text}': expected milliseconds"))?,
    };
    let to = addresses(p, "to")?;
    if to.is_empty() {
        return Err("Missing required property 'to'".into());
    }
    Ok(MailCall {
        host: p.required("host")?,
        port,
        username: p.rendered("username")?,
        password: p.rendered("password")?,
        transport,
        session_timeout: std::time::Duration::from_millis(session_timeout),
        verify_server_identity: p.flag("verifyServerIdentity", true)?,
        trusted_hosts: addresses(p, "trustedHosts")?,
        from: p.required("from")?,
        to,
        cc: addresses(p, "cc")?,
        subject: p.rendered("subject")?,
        html: None,
        text: String::new(),
        attachments: files(p, "attachments")?,
        embedded_images: files(p, "embeddedImages")?,
    })
}

/// Addresses (or hosts) separated by `;` or `,` (Kestra's one string), or a list of them.
fn addresses(p: &Props, name: &str) -> Result<Vec<String>, String> {
    let texts = match p.properties.get(name) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| p.render_value(item))
            .collect::<Result<Vec<_>, _>>()?,
        Some(value) => vec![p.render_value(value)?],
    };
    Ok(texts
        .iter()
        .flat_map(|t| t.split([';', ',']))
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(String::from)
        .collect())
}

/// Attachments given as a list of `{name, uri, contentType}`, or as a string rendering to
/// that list in JSON (`{{ inputs.files | toJson }}`).
fn files(p: &Props, name: &str) -> Result<Vec<MailFile>, String> {
    let items = match p.properties.get(name) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items.clone(),
        Some(value @ Value::String(_)) => {
            let text = p.render_value(value)?;
            if text.trim().is_empty() {
                return Ok(Vec::new());
            }
            let mut parsed: Value = serde_json::from_str(&text).map_err(|e| invalid_files(name, e))?;
            // A JSON string that holds the list, as Kestra also reads it.
            if let Value::String(inner) = &parsed {
                parsed = serde_json::from_str(inner).map_err(|e| invalid_files(name, e))?;
            }
            match parsed {
                Value::Array(items) => items,
                _ => return Err(format!("The `{name}` attribute must be a String or a List")),
            }
        }
        Some(_) => return Err(format!("The `{name}` attribute must be a String or a List")),
    };
    items
        .iter()
        .map(|item| {
            let Value::Object(fields) = item else {
                return Err(format!("Each of `{name}` must be a map with `name` and `uri`"));
            };
            let field = |key: &str| match fields.get(key) {
                Some(value) if !value.is_null() => p.render_value(value).map(Some),
                _ => Ok(None),
            };
            let missing = |key: &str| format!("Missing required property '{name}[].{key}'");
            Ok(MailFile {
                name: field("name")?.ok_or_else(|| missing("name"))?,
                uri: field("uri")?.ok_or_else(|| missing("uri"))?,
                content_type: field("contentType")?.unwrap_or_else(|| "application/octet-stream".into()),
            })
        })
        .collect()
}

fn invalid_files(name: &str, e: serde_json::Error) -> String {
    format!("Invalid `{name}`: expected a JSON list of {{name, uri, contentType}}: {e}")
}

/// The task run's result once the worker sent (or failed to send) `call`.
fn finished(
    call: &MailCall,
    answer: Result<(), MailError>,
    task_run: &TaskRunContext,
    now: DateTime<Utc>,
) -> TaskResult {
    match answer {
        Err(e) => task_run.failed(e.0, now),
        Ok(()) => {
            let mut result = task_run.result(StateType::Success, IndexMap::new());
            let line = format!("Sent an email to {}", call.to.join(", "));
            result.logs.extend(task_run.log(LogLevel::Info, line, now));
            result
        }
    }
}

pub(crate) fn finish(
    call: &IoCall,
    answer: IoAnswer,
    task_run: &TaskRunContext,
    now: DateTime<Utc>,
) -> TaskResult {
    let (IoCall::Mail(call), IoAnswer::Mail(answer)) = (call, answer) else {
        return task_run.failed("The worker answered another kind of call", now);
    };
    finished(call, answer, task_run, now)
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::expression::ExpressionError;

    fn call(properties: Value) -> Result<MailCall, String> {
        let render = |v: &Value| -> Result<String, ExpressionError> {
            Ok(match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        let Value::Object(map) = properties else {
            panic!("a map")
        };
        match prepare(&map, &render)? {
            IoCall::Mail(call) => Ok(call),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn kestras_defaults_apply() {
        let c = call(json!({"host": "smtp.example.com", "from": "a@x.io", "to": "b@x.io", "htmlTextContent": "<p>hi</p>"}))
            .expect("call");
        assert_eq!(c.transport, TransportStrategy::Smtps);
        assert_eq!(c.port, 465);
        assert_eq!(c.session_timeout, std::time::Duration::from_secs(10));
        assert_eq!(c.text, DEFAULT_TEXT);
        assert_eq!(c.html.as_deref(), Some("<p>hi</p>"));
        assert_eq!(c.subject, None);
        assert!(c.verify_server_identity);
        assert!(c.trusted_hosts.is_empty());
        let c = call(json!({"host": "h", "from": "a@x.io", "to": "b@x.io", "verifyServerIdentity": false, "trustedHosts": ["h", "10.0.0.1"]}))
            .expect("call");
        assert!(!c.verify_server_identity);
        assert_eq!(c.trusted_hosts, ["h", "10.0.0.1"]);
    }

    #[test]
    fn addresses_split_on_semicolons_and_commas_or_come_as_a_list() {
        let c = call(json!({"host": "h", "from": "a@x.io", "to": "b@x.io; c@x.io,d@x.io", "cc": ["e@x.io", "f@x.io;g@x.io"]}))
            .expect("call");
        assert_eq!(c.to, ["b@x.io", "c@x.io", "d@x.io"]);
        assert_eq!(c.cc, ["e@x.io", "f@x.io", "g@x.io"]);
        let e = call(json!({"host": "h", "from": "a@x.io"})).expect_err("no to");
        assert_eq!(e, "Missing required property 'to'");
    }

    #[test]
    fn attachments_come_as_a_list_or_as_json_text() {
        let listed = json!([{"name": "a.csv", "uri": "kestra:///ns/f/executions/1/a.csv"}]);
        let c = call(json!({"host": "h", "from": "a@x.io", "to": "b@x.io", "attachments": listed}))
            .expect("call");
        let expected = MailFile {
            name: "a.csv".into(),
            uri: "kestra:///ns/f/executions/1/a.csv".into(),
            content_type: "application/octet-stream".into(),
        };
        assert_eq!(c.attachments, std::slice::from_ref(&expected));
        assert_eq!(c.files_read(), ["kestra:///ns/f/executions/1/a.csv"]);
        let text = listed.to_string();
        let c = call(json!({"host": "h", "from": "a@x.io", "to": "b@x.io", "embeddedImages": text}))
            .expect("call");
        assert_eq!(c.embedded_images, [expected]);
        let e = call(json!({"host": "h", "from": "a@x.io", "to": "b@x.io", "attachments": 3}))
            .expect_err("a number");
        assert_eq!(e, "The `attachments` attribute must be a String or a List");
    }

    #[test]
    fn a_transport_strategy_sets_the_default_port() {
        let base = json!({"host": "h", "from": "a@x.io", "to": "b@x.io"});
        let with = |strategy: &str| {
            let mut p = base.clone();
            p["transportStrategy"] = json!(strategy);
            call(p)
        };
        assert_eq!(with("SMTP_TLS").expect("call").port, 587);
        assert_eq!(with("SMTP").expect("call").port, 25);
        assert_eq!(
            with("SMTP_OAUTH2").expect_err("unsupported"),
            "Invalid transportStrategy 'SMTP_OAUTH2': expected SMTP, SMTPS or SMTP_TLS"
        );
    }
}
