//! The request body: as the core rendered it, or a multipart form whose files are read
//! from storage here.

use std::sync::Arc;

use hyper::body::Bytes;
use kite_core::plugin::http::form::encode_multipart;
use kite_core::plugin::http::{HttpCall, HttpError, PartContent};
use kite_engine::ports::FileStorage;
use tokio::io::AsyncReadExt;

/// The most a multipart form's files may weigh together: the form is built in memory.
pub const MAX_FORM_BYTES: u64 = 64 * 1024 * 1024;

/// The body to send, and the `Content-Type` it needs (a multipart form's, with its
/// boundary) unless the task's headers name one.
pub async fn body(
    call: &HttpCall,
    files: &Arc<dyn FileStorage>,
) -> Result<(Bytes, Option<String>), HttpError> {
    if call.form.is_empty() {
        return Ok((Bytes::from(call.body.clone().unwrap_or_default()), None));
    }
    let mut contents = Vec::with_capacity(call.form.len());
    let mut total = 0u64;
    for part in &call.form {
        let content = match &part.content {
            PartContent::Text(text) => call.options.charset.encode(text),
            PartContent::File { uri, .. } => {
                let failed = |reason: String| HttpError::FormFile {
                    file: uri.clone(),
                    reason,
                };
                let reader = files.get(uri).await.map_err(|e| failed(e.to_string()))?;
                let mut content = Vec::new();
                reader
                    .take(MAX_FORM_BYTES - total + 1)
                    .read_to_end(&mut content)
                    .await
                    .map_err(|e| failed(e.to_string()))?;
                if total + content.len() as u64 > MAX_FORM_BYTES {
                    return Err(failed(format!(
                        "the form's files are larger than {MAX_FORM_BYTES} bytes"
                    )));
                }
                content
            }
        };
        total += content.len() as u64;
        contents.push(content);
    }
    let (content_type, body) = encode_multipart(&call.form, &contents, call.options.charset);
    Ok((Bytes::from(body), Some(content_type)))
}
