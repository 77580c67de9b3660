//! Back-pressure on the routes that create executions: at most a fixed number of
//! creations are in progress (body read, inputs typed and stored, execution written);
//! beyond it the API answers 503 at once with `Retry-After: 1` rather than piling up
//! requests and their bodies in memory until the process falls over.

use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{ApiError, Shared};

/// The default bound on execution creations in progress.
pub const DEFAULT_MAX_CREATIONS: usize = 256;

/// The places for execution creations in progress.
#[derive(Debug, Clone)]
pub struct Admissions(Arc<Semaphore>);

impl Admissions {
    /// `limit` creations at once (at least one).
    pub fn new(limit: usize) -> Admissions {
        Admissions(Arc::new(Semaphore::new(limit.max(1))))
    }
}

/// The place a request holds, as a request extension: the handler gives it back once the
/// execution is created, so that a request that then waits for its end holds none.
#[derive(Clone)]
pub(crate) struct Admission(Arc<Mutex<Option<OwnedSemaphorePermit>>>);

impl Admission {
    pub(crate) fn release(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// Admits the request if a place is free, else answers 503 without reading its body.
pub(crate) async fn admit(State(s): State<Shared>, mut request: Request, next: Next) -> Response {
    let Ok(permit) = s.creations.0.clone().try_acquire_owned() else {
        tracing::warn!(uri = %request.uri(), "too many executions being created; answered 503");
        let mut response = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service unavailable: too many executions are being created, retry later",
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    request
        .extensions_mut()
        .insert(Admission(Arc::new(Mutex::new(Some(permit)))));
    next.run(request).await
}
