//! HTTP requests over hyper and rustls (`http://` and `https://`, the system's
//! certificate roots). The core renders the request and reads the response
//! (`kite_core::plugin::http`); this module only sends it, applying the task's
//! `options`: timeouts, redirects and the response size limit.
//!
//! - `form`: the body of a multipart form, its files read from storage
//! - `redirect`: where a redirect leads and what the next request keeps

mod form;
mod redirect;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::Request;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use kite_core::execution::iso_duration;
use kite_core::plugin::http::{
    disposition_file_name, download_file_name, HttpCall, HttpError, HttpResponse, StoredBody,
};
use kite_engine::ports::FileStorage;
use tokio::io::AsyncWriteExt;

/// The largest body a `Download` stores (streamed to storage, never held whole).
pub const MAX_DOWNLOAD_BYTES: u64 = 1024 * 1024 * 1024;

/// How many redirects a request follows (Apache HttpClient's default, which Kestra uses).
pub const MAX_REDIRECTS: usize = 50;

type Https = hyper_rustls::HttpsConnectorBuilder<hyper_rustls::builderstates::WantsSchemes>;
type Pooled = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Pooled clients shared by every request of the process, one per connect timeout in
/// use. Built on first use: loading the system's TLS roots costs about 4 ms, which a
/// Lambda's cold start (and a function that never sends a request) should not pay.
#[derive(Clone, Default)]
pub struct HttpClient {
    clients: Arc<Mutex<HashMap<Option<Duration>, Pooled>>>,
}

impl HttpClient {
    pub fn new() -> HttpClient {
        HttpClient::default()
    }

    fn client(&self, connect_timeout: Option<Duration>) -> Pooled {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .entry(connect_timeout)
            .or_insert_with(|| {
                let mut http = HttpConnector::new();
                http.enforce_http(false);
                http.set_connect_timeout(connect_timeout);
                let connector = roots().https_or_http().enable_http1().wrap_connector(http);
                Client::builder(TokioExecutor::new()).build(connector)
            })
            .clone()
    }

    /// Sends the request, following redirects unless `options.followRedirects` is false;
    /// `Err` says why no response came (unreachable host, timeout, too large, ...).
    /// A `Download`'s body is streamed into `files` under `prefix` (the task run's).
    pub async fn send(
        &self,
        call: &HttpCall,
        files: &Arc<dyn FileStorage>,
        prefix: &str,
    ) -> Result<HttpResponse, HttpError> {
        let mut next = redirect::Hop::first(call, form::body(call, files).await?);
        let client = self.client(call.options.connect_timeout);
        let mut redirects = 0;
        let (uri, response) = loop {
            let response = exchange(&client, call, &next).await?;
            let to = match call.options.follow_redirects {
                true => redirect::location(&next.uri, &response)?,
                false => None,
            };
            let Some(to) = to else {
                break (next.uri, response);
            };
            if redirects == MAX_REDIRECTS {
                return Err(HttpError::TooManyRedirects {
                    uri: call.uri.clone(),
                    max: MAX_REDIRECTS,
                });
            }
            redirects += 1;
            next = next.follow(response.status().as_u16(), to);
        };
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
        let idle = call.options.read_idle_timeout;
        if call.download.is_some() {
            // Named as the server names it, as Kestra does, else after the URL.
            let name = response
                .headers()
                .get(hyper::header::CONTENT_DISPOSITION)
                .and_then(|v| v.to_str().ok())
                .and_then(disposition_file_name)
                .unwrap_or_else(|| download_file_name(&call.uri));
            let stored_as = format!("{prefix}{name}");
            let length = store(response.into_body(), files, &stored_as, &uri, idle).await?;
            return Ok(HttpResponse {
                status,
                headers,
                body: Vec::new(),
                stored: Some(StoredBody {
                    uri: stored_as,
                    length,
                }),
            });
        }
        let limit = call.options.max_content_length;
        let too_large = || HttpError::TooLarge {
            uri: uri.clone(),
            limit,
        };
        // A declared length over the limit fails before any byte is read.
        let declared = response
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        let mut incoming = response.into_body();
        while let Some(frame) = next_frame(&mut incoming, &uri, idle, limit).await? {
            if let Ok(data) = frame.into_data() {
                if body.len() + data.len() > limit {
                    return Err(too_large());
                }
                body.extend_from_slice(&data);
            }
        }
        Ok(HttpResponse {
            status,
            headers,
            body,
            stored: None,
        })
    }
}

/// The TLS roots: the system's, or Mozilla's in a bare container without a store.
fn roots() -> Https {
    match hyper_rustls::HttpsConnectorBuilder::new().with_native_roots() {
        Ok(native) => native,
        Err(error) => {
            tracing::info!(%error, "no system TLS roots; using the bundled ones");
            hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots()
        }
    }
}

/// One request and its response's head, within `readIdleTimeout`.
async fn exchange(
    client: &Pooled,
    call: &HttpCall,
    hop: &redirect::Hop,
) -> Result<hyper::Response<Incoming>, HttpError> {
    let mut request = Request::builder()
        .method(hop.method.as_str())
        .uri(hop.uri.as_str());
    for (name, value) in &hop.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let request = request
        .body(Full::new(hop.body.clone()))
        .map_err(|e| HttpError::InvalidRequest {
            uri: hop.uri.clone(),
            reason: e.to_string(),
        })?;
    let idle = call.options.read_idle_timeout;
    match tokio::time::timeout(idle, client.request(request)).await {
        Err(_) => Err(HttpError::ReadTimeout {
            uri: hop.uri.clone(),
            limit: shown(idle),
        }),
        Ok(Ok(response)) => Ok(response),
        Ok(Err(e)) => match call.options.connect_timeout {
            Some(limit) if e.is_connect() && timed_out(&e) => Err(HttpError::ConnectTimeout {
                uri: hop.uri.clone(),
                limit: shown(limit),
            }),
            _ => Err(HttpError::Failed {
                uri: hop.uri.clone(),
                reason: describe(&e),
            }),
        },
    }
}

/// The next frame of a body, failing when none comes within `idle`.
async fn next_frame(
    body: &mut Incoming,
    uri: &str,
    idle: Duration,
    limit: usize,
) -> Result<Option<Frame<Bytes>>, HttpError> {
    match tokio::time::timeout(idle, body.frame()).await {
        Err(_) => Err(HttpError::ReadTimeout {
            uri: uri.to_string(),
            limit: shown(idle),
        }),
        Ok(None) => Ok(None),
        Ok(Some(Ok(frame))) => Ok(Some(frame)),
        Ok(Some(Err(e))) => Err(HttpError::Unreadable {
            uri: uri.to_string(),
            reason: describe(&e),
            limit,
        }),
    }
}

/// A duration as Kestra writes it (`PT30S`).
fn shown(d: Duration) -> String {
    chrono::Duration::from_std(d).map_or_else(|_| format!("{d:?}"), iso_duration)
}

/// Streams a response body into storage at `uri` through a bounded pipe; a body that
/// fails to arrive whole stores nothing.
async fn store(
    mut body: Incoming,
    files: &Arc<dyn FileStorage>,
    uri: &str,
    from: &str,
    idle: Duration,
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
    loop {
        let frame = match next_frame(&mut body, from, idle, MAX_DOWNLOAD_BYTES as usize).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(e) => {
                // Cut short: the half-written file is dropped (and swept if a crash follows).
                put.abort();
                return Err(e);
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

/// Whether a connection attempt ran out of time (the connector's own timeout).
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(cause) = source {
        if cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        source = cause.source();
    }
    false
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
