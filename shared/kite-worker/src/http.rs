//! HTTP requests over hyper and rustls (`http://` and `https://`, the system's
//! certificate roots). The core renders the request and reads the response
//! (`kite_core::plugin::http`); this module only sends it.

use std::sync::{Arc, OnceLock};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use kite_core::plugin::http::{download_file_name, HttpCall, HttpError, HttpResponse, StoredBody};
use kite_engine::ports::FileStorage;
use tokio::io::AsyncWriteExt;

/// The largest response body read into the task run's outputs.
pub const MAX_RESPONSE_BYTES: usize = 10 * 1024 * 1024;

/// The largest body a `Download` stores (streamed to storage, never held whole).
pub const MAX_DOWNLOAD_BYTES: u64 = 1024 * 1024 * 1024;

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// A pooled client, shared by every request of the process. Built on the first request:
/// loading the system's TLS roots costs about 4 ms, which a Lambda's cold start (and a
/// function that never sends a request) should not pay.
#[derive(Clone, Default)]
pub struct HttpClient {
    client: Arc<OnceLock<Client<Https, Full<Bytes>>>>,
}

impl HttpClient {
    pub fn new() -> HttpClient {
        HttpClient::default()
    }

    fn client(&self) -> &Client<Https, Full<Bytes>> {
        self.client.get_or_init(|| {
            let builder = hyper_rustls::HttpsConnectorBuilder::new();
            let builder = match builder.with_native_roots() {
                Ok(native) => native,
                Err(error) => {
                    // A bare container without a certificate store: Mozilla's roots instead.
                    tracing::info!(%error, "no system TLS roots; using the bundled ones");
                    hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots()
                }
            };
            let mut http = HttpConnector::new();
            http.enforce_http(false);
            let connector = builder.https_or_http().enable_http1().wrap_connector(http);
            Client::builder(TokioExecutor::new()).build(connector)
        })
    }

    /// Sends the request; `Err` says why no response came (unreachable host, bad URI, ...).
    /// A `Download`'s body is streamed into `files` under `prefix` (the task run's).
    pub async fn send(
        &self,
        call: &HttpCall,
        files: &Arc<dyn FileStorage>,
        prefix: &str,
    ) -> Result<HttpResponse, HttpError> {
        let mut request = Request::builder()
            .method(call.method.as_str())
            .uri(call.uri.as_str());
        for (name, value) in &call.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let body = Full::new(Bytes::from(call.body.clone().unwrap_or_default()));
        let request = request.body(body).map_err(|e| HttpError::InvalidRequest {
            uri: call.uri.clone(),
            reason: e.to_string(),
        })?;
        let response = self
            .client()
            .request(request)
            .await
            .map_err(|e| HttpError::Failed {
                uri: call.uri.clone(),
                reason: describe(&e),
            })?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        if call.download.is_some() {
            let uri = format!("{prefix}{}", download_file_name(&call.uri));
            let length = store(response.into_body(), files, &uri, &call.uri).await?;
            return Ok(HttpResponse {
                status,
                headers,
                body: Vec::new(),
                stored: Some(StoredBody { uri, length }),
            });
        }
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| HttpError::Unreadable {
                uri: call.uri.clone(),
                reason: e.to_string(),
                limit: MAX_RESPONSE_BYTES,
            })?
            .to_bytes()
            .to_vec();
        Ok(HttpResponse {
            status,
            headers,
            body,
            stored: None,
        })
    }
}

/// Streams a response body into storage at `uri` through a bounded pipe; a body that
/// fails to arrive whole stores nothing.
async fn store(
    mut body: hyper::body::Incoming,
    files: &Arc<dyn FileStorage>,
    uri: &str,
    from: &str,
) -> Result<u64, HttpError> {
    let (mut writer, reader) = tokio::io::duplex(64 * 1024);
    let put = {
        let (files, uri) = (files.clone(), uri.to_string());
        tokio::spawn(async move { files.put(&uri, Box::pin(reader), MAX_DOWNLOAD_BYTES).await })
    };
    let unreadable = |reason: String| HttpError::Unreadable {
        uri: from.to_string(),
        reason,
        limit: MAX_DOWNLOAD_BYTES as usize,
    };
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                // Cut short: the half-written file is dropped (and swept if a crash follows).
                put.abort();
                return Err(unreadable(describe(&e)));
            }
        };
        if let Ok(data) = frame.into_data() {
            if writer.write_all(&data).await.is_err() {
                break; // the storage stopped reading: its answer says why
            }
        }
    }
    drop(writer);
    put.await
        .map_err(|e| unreadable(e.to_string()))?
        .map_err(|e| unreadable(e.to_string()))
}

/// The innermost cause: hyper's own message ("client error (Connect)") says little.
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    message
}
