//! Serves Kestra's HTTP API (the `kite-api` router) until shutdown.

use std::future::Future;

use kite_api::{router, Admissions, ApiState, AuthConfig, RequestLimits};
use kite_engine::Engine;
use tokio::net::TcpListener;

use crate::server::ServerOptions;

/// Serves the API on `listener` until `shutdown` completes, then lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    engine: Engine,
    options: &ServerOptions,
    base_url: String,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let basic = match &options.basic_auth {
        Some(pair) => {
            let (user, password) = pair
                .split_once(':')
                .ok_or_else(|| "--basic-auth must be written user:password".to_string())?;
            Some((user.to_string(), password.to_string()))
        }
        None => None,
    };
    let state = ApiState {
        engine,
        base_url: base_url.trim_end_matches('/').to_string(),
        auth: AuthConfig {
            basic,
            token: options.api_token.clone(),
        },
        max_upload: options.max_upload,
        inline_download_limit: None,
        creations: Admissions::new(options.max_creations),
        limits: RequestLimits {
            body: options.max_body,
            text_part: options.max_text_part,
        },
    };
    // Open requests may finish after the signal, for a while: a `follow` stream or a long
    // `wait` would otherwise hold the stop for ever.
    let (stopping, stop) = tokio::sync::watch::channel(false);
    let graceful = {
        let mut stop = stop.clone();
        async move {
            let _ = stop.wait_for(|s| *s).await;
        }
    };
    let server = axum::serve(listener, router(state)).with_graceful_shutdown(graceful);
    let deadline = async move {
        shutdown.await;
        let _ = stopping.send(true);
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        served = server => served.map_err(|e| format!("HTTP server failed: {e}")),
        () = deadline => {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "open requests still running at the end of the grace period; closed");
            Ok(())
        }
    }
}

/// How long open requests may run on after a stop is asked for.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);
