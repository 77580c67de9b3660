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
use kite_core::plugin::http::{HttpCall, HttpError, HttpResponse};

/// The largest response body read into the task run's outputs.
pub const MAX_RESPONSE_BYTES: usize = 10 * 1024 * 1024;

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
    pub async fn send(&self, call: &HttpCall) -> Result<HttpResponse, HttpError> {
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
        })
    }
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
