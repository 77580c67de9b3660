//! `formData`: a URL-encoded form, or with `contentType: multipart/form-data` a
//! multipart form whose `kestra:///` values are sent as files (read by the worker).

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::options::Charset;
use super::HttpError;
use crate::plugin::Render;

/// One field of a multipart form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormPart {
    pub name: String,
    pub content: PartContent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartContent {
    Text(String),
    /// A file of the internal storage, sent under `filename`.
    File {
        uri: String,
        filename: String,
    },
}

/// Every string in `value` rendered, the rest kept.
fn render_deep(value: &Value, render: &Render) -> Result<Value, HttpError> {
    Ok(match value {
        Value::String(_) => Value::String(render(value)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| render_deep(v, render))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_deep(v, render)?)))
                .collect::<Result<_, HttpError>>()?,
        ),
        other => other.clone(),
    })
}

/// A value as form text: strings as they are, anything else as JSON.
fn as_text(value: Value) -> String {
    match value {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// The fields of a URL-encoded form, rendered.
pub fn url_encoded(
    fields: &Map<String, Value>,
    render: &Render,
    charset: Charset,
) -> Result<Vec<u8>, HttpError> {
    fn latin1(s: &str) -> Cow<'_, [u8]> {
        Cow::Owned(Charset::Latin1.encode(s))
    }
    fn ascii(s: &str) -> Cow<'_, [u8]> {
        Cow::Owned(Charset::Ascii.encode(s))
    }
    let mut form = form_urlencoded::Serializer::new(String::new());
    match charset {
        Charset::Utf8 => {}
        Charset::Latin1 => {
            form.encoding_override(Some(&latin1));
        }
        Charset::Ascii => {
            form.encoding_override(Some(&ascii));
        }
    }
    for (name, value) in fields {
        form.append_pair(name, &as_text(render_deep(value, render)?));
    }
    Ok(form.finish().into_bytes())
}

/// The fields of a multipart form, rendered (names too, as Kestra does). A value that
/// renders to a `kestra://` URI is that file (named after the URI's last segment); a map
/// with `name` and `content` is the file `content` sent as `name`; anything else is text
/// (maps and lists as JSON).
pub fn multipart(fields: &Map<String, Value>, render: &Render) -> Result<Vec<FormPart>, HttpError> {
    let mut parts = Vec::with_capacity(fields.len());
    for (name, value) in fields {
        let name = render(&Value::String(name.clone()))?;
        let content = match value {
            Value::Object(map) if map.contains_key("name") && map.contains_key("content") => {
                let filename = as_text(render_deep(&map["name"], render)?);
                let uri = as_text(render_deep(&map["content"], render)?);
                if !uri.starts_with("kestra://") {
                    return Err(HttpError::InvalidProperty {
                        name: format!("formData.{name}.content"),
                        reason: format!("'{uri}' is not a kestra:/// URI of a file"),
                    });
                }
                PartContent::File { uri, filename }
            }
            Value::String(_) => {
                let text = render(value)?;
                if text.starts_with("kestra://") {
                    let filename = text.rsplit('/').next().unwrap_or_default().to_string();
                    PartContent::File { uri: text, filename }
                } else {
                    PartContent::Text(text)
                }
            }
            other => PartContent::Text(as_text(render_deep(other, render)?)),
        };
        parts.push(FormPart { name, content });
    }
    Ok(parts)
}

/// A part's header value: quotes and line breaks escaped as browsers do.
fn quoted(s: &str) -> String {
    s.replace('"', "%22").replace('\r', "%0D").replace('\n', "%0A")
}

/// The body of a multipart form whose parts hold `contents` (the file's bytes, or the
/// text encoded in `charset`), and its `Content-Type`. The boundary appears in no part.
pub fn encode_multipart(parts: &[FormPart], contents: &[Vec<u8>], charset: Charset) -> (String, Vec<u8>) {
    let mut seed: u64 = 0xcbf2_9ce4_8422_2325;
    let boundary = loop {
        seed = seed.wrapping_mul(0x0100_0000_01b3) ^ contents.len() as u64;
        let candidate = format!("----KiteFormBoundary{seed:016x}");
        let delimiter = format!("--{candidate}");
        let clashes = contents
            .iter()
            .any(|c| c.windows(delimiter.len()).any(|w| w == delimiter.as_bytes()));
        if !clashes {
            break candidate;
        }
    };
    let mut body = Vec::new();
    for (part, content) in parts.iter().zip(contents) {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let (disposition, content_type) = match &part.content {
            PartContent::Text(_) => (
                format!("form-data; name=\"{}\"", quoted(&part.name)),
                format!("text/plain; charset={}", charset.name()),
            ),
            PartContent::File { filename, .. } => (
                format!(
                    "form-data; name=\"{}\"; filename=\"{}\"",
                    quoted(&part.name),
                    quoted(filename)
                ),
                "application/octet-stream".to_string(),
            ),
        };
        body.extend_from_slice(format!("Content-Disposition: {disposition}\r\n").as_bytes());
        body.extend_from_slice(format!("Content-Type: {content_type}\r\n\r\n").as_bytes());
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}
