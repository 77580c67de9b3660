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
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| format!("HTTP server failed: {e}"))
}
