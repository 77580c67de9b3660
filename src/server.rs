//! `kite server`: the embedded store, the flows folder, the worker pool and the HTTP API.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use kite_core::flow::FlowLimits;
use kite_core::trigger::schedule::RecoverMissedSchedules;
use kite_engine::{Engine, EngineConfig};
use kite_local::{open_engine, DataLock, Runtime};
use tracing::{error, info, warn};

#[derive(Args, Clone, Debug)]
pub struct ServerOptions {
    /// Port of the HTTP API.
    #[arg(long, env = "KITE_PORT", default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on (only this machine by default).
    #[arg(long, env = "KITE_BIND", default_value = "127.0.0.1")]
    pub bind: String,
    /// Folder of the database and stored files.
    #[arg(long, env = "KITE_DATA", default_value = "./data")]
    pub data: PathBuf,
    /// Folder of flow files deployed at start (skipped if absent).
    #[arg(long, env = "KITE_FLOWS", default_value = "./flows")]
    pub flows: PathBuf,
    /// Require `user:password` basic authentication (webhooks stay open, as in Kestra).
    #[arg(long, env = "KITE_BASIC_AUTH", hide_env_values = true)]
    pub basic_auth: Option<String>,
    /// Accept this bearer token.
    #[arg(long, env = "KITE_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// Workers running task runs in parallel.
    #[arg(long, env = "KITE_WORKERS", default_value_t = default_workers())]
    pub workers: usize,
    /// Key for SECRET inputs: 32 bytes in base64 (Kestra's form) or 32 characters.
    #[arg(long, env = "KITE_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// Largest accepted upload, in bytes.
    #[arg(long, env = "KITE_MAX_UPLOAD", default_value_t = 512 * 1024 * 1024)]
    pub max_upload: u64,
    /// Largest request body read whole (a flow source, JSON or form inputs, the text parts
    /// of one multipart request together), in bytes.
    #[arg(long, env = "KITE_MAX_BODY", default_value_t = kite_api::RequestLimits::default().body)]
    pub max_body: usize,
    /// Largest text part (a non-file input) of a multipart request, in bytes.
    #[arg(long, env = "KITE_MAX_TEXT_PART", default_value_t = kite_api::RequestLimits::default().text_part)]
    pub max_text_part: usize,
    /// Most execution creations in progress at once (API and webhooks); beyond it
    /// requests get 503 with `Retry-After: 1`.
    #[arg(long, env = "KITE_MAX_CREATIONS", default_value_t = kite_api::DEFAULT_MAX_CREATIONS)]
    pub max_creations: usize,
    /// Most tasks a saved flow may hold (nested ones included).
    #[arg(long, env = "KITE_MAX_FLOW_TASKS", default_value_t = FlowLimits::default().max_tasks)]
    pub max_flow_tasks: usize,
    /// Most levels of nested tasks a saved flow may have.
    #[arg(long, env = "KITE_MAX_FLOW_DEPTH", default_value_t = FlowLimits::default().max_depth)]
    pub max_flow_depth: usize,
    /// Largest outputs a task run may have, in bytes of JSON (larger fails the task run).
    #[arg(long, env = "KITE_MAX_TASK_OUTPUT", default_value_t = kite_core::env::DEFAULT_MAX_TASK_OUTPUT)]
    pub max_task_output: usize,
    /// Public URL of the server (for the `url` of created executions).
    #[arg(long, env = "KITE_URL")]
    pub url: Option<String>,
    /// What Schedule triggers without `recoverMissedSchedules` do with dates missed while
    /// the server was stopped: ALL (Kestra's default), LAST or NONE.
    #[arg(long, env = "KITE_RECOVER_MISSED_SCHEDULES", default_value = "ALL", value_parser = parse_recovery)]
    pub recover_missed_schedules: RecoverMissedSchedules,
}

fn parse_recovery(value: &str) -> Result<RecoverMissedSchedules, String> {
    RecoverMissedSchedules::parse(value).ok_or_else(|| format!("`{value}`: use ALL, LAST or NONE"))
}

fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() * 2)
        .unwrap_or(4)
        .clamp(2, 16)
}

pub fn run(options: ServerOptions) -> ExitCode {
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            error!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("KITE_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

/// The key of SECRET inputs, checked before anything starts.
fn secret_key(configured: Option<&str>) -> Result<Option<Vec<u8>>, String> {
    configured
        .map(kite_core::input::parse_secret_key)
        .transpose()
        .map_err(|e| format!("KITE_SECRET_KEY (--secret-key): {e}"))
}

/// Locks `options.data` for this process, opens the engine over it, deploys
/// `options.flows` and starts the workers. The lock is held while the lock value lives.
pub async fn start(options: &ServerOptions) -> Result<(Engine, Runtime, DataLock), String> {
    let secret_key = secret_key(options.secret_key.as_deref())?;
    let lock = DataLock::acquire(&options.data).map_err(|e| e.to_string())?;
    match kite_local::sweep_receiving(&options.data, &lock) {
        Ok(0) => {}
        Ok(swept) => tracing::info!(swept, "removed files left half received by the previous run"),
        Err(e) => tracing::warn!(error = %e, "cannot sweep files left half received"),
    }
    let config = EngineConfig {
        secret_key,
        max_file_size: options.max_upload,
        recover_missed_schedules: options.recover_missed_schedules,
        flow_limits: FlowLimits {
            max_tasks: options.max_flow_tasks,
            max_depth: options.max_flow_depth,
        },
        max_task_output: options.max_task_output,
        ..EngineConfig::default()
    };
    let engine = open_engine(&options.data, config)
        .map_err(|e| format!("{e} (data folder {})", options.data.display()))?;
    load_flows(&engine, &options.flows).await;
    let runtime = Runtime::start(engine.clone(), options.workers)
        .await
        .map_err(|e| format!("cannot recover queued work: {e}"))?;
    Ok((engine, runtime, lock))
}

/// Deploys every flow file of `dir` (new revision only when the source changed).
pub async fn load_flows(engine: &Engine, dir: &Path) {
    if !dir.is_dir() {
        info!(folder = %dir.display(), "no flows folder");
        return;
    }
    let files = match crate::flow_files(&[dir.to_path_buf()]) {
        Ok(f) => f,
        Err(e) => {
            warn!(folder = %dir.display(), error = %e, "cannot read the flows folder");
            return;
        }
    };
    for file in files {
        let source = match std::fs::read_to_string(&file) {
            Ok(s) => s,
            Err(e) => {
                warn!(file = %file.display(), error = %e, "cannot read flow");
                continue;
            }
        };
        match engine.deploy_flow(&source).await {
            Ok(f) => {
                info!(file = %file.display(), namespace = %f.flow.namespace, flow = %f.flow.id, revision = f.revision, "flow loaded")
            }
            Err(e) => warn!(file = %file.display(), error = %e, "flow not loaded"),
        }
    }
}

async fn serve(options: ServerOptions) -> Result<(), String> {
    let addr: SocketAddr = format!("{}:{}", options.bind, options.port)
        .parse()
        .map_err(|e| format!("invalid address {}:{}: {e}", options.bind, options.port))?;
    let (engine, runtime, _lock) = start(&options).await?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    // Bound to every interface, the server has no one address to link to: executions
    // then link to the URL each caller used.
    let base_url = options.url.clone().unwrap_or_else(|| {
        if addr.ip().is_unspecified() {
            String::new()
        } else {
            format!("http://{addr}")
        }
    });
    info!(address = %addr, url = %base_url, data = %options.data.display(), workers = options.workers, "Kite is listening");
    crate::http::serve(listener, engine, &options, base_url, shutdown_signal()).await?;
    info!("stopping workers");
    if tokio::time::timeout(Duration::from_secs(30), runtime.shutdown())
        .await
        .is_err()
    {
        warn!("workers did not stop within 30 s; unfinished work will run at the next start");
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    info!("shutdown requested");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_key_is_kestras_base64_or_32_characters_and_anything_else_stops_the_start() {
        let key: Vec<u8> = (0u8..32).collect();
        assert_eq!(
            secret_key(Some("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")),
            Ok(Some(key))
        );
        assert_eq!(
            secret_key(Some("0123456789abcdef0123456789abcdef")),
            Ok(Some(b"0123456789abcdef0123456789abcdef".to_vec()))
        );
        assert_eq!(secret_key(None), Ok(None));
        let e = secret_key(Some("0123456789abcdef")).unwrap_err();
        assert!(
            e.starts_with("KITE_SECRET_KEY (--secret-key): the secret key must be 32 bytes"),
            "{e}"
        );
    }
}
