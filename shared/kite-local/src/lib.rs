//! Kite's embedded adapters for the local server: a SQLite store (flows, executions,
//! logs, queue), local folder file storage and the in-process worker runtime.

pub mod files;
pub mod lock;
pub mod runtime;
pub mod sqlite;

use std::path::Path;
use std::sync::Arc;

use kite_engine::ports::{
    EnvironmentSecrets, InMemorySecrets, NoScheduleRegistry, RandomIds, SecretStore, StoreError, SystemClock,
};
use kite_engine::{Engine, EngineConfig, Ports};

pub use files::LocalFileStorage;
pub use lock::{DataLock, LockError};
pub use runtime::Runtime;
pub use sqlite::SqliteStore;

/// Errors opening the local store.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    #[error("cannot open the file storage: {0}")]
    Files(#[from] kite_engine::ports::StorageError),
}

fn storage_dir(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("storage")
}

/// Ports over `data_dir`: `kite.db` (SQLite) and `storage/` (files).
pub fn local_ports(data_dir: &Path) -> Result<Ports, OpenError> {
    let store = Arc::new(SqliteStore::open(&data_dir.join("kite.db"))?);
    let files = Arc::new(LocalFileStorage::new(storage_dir(data_dir))?);
    Ok(Ports {
        flows: store.clone(),
        executions: store.clone(),
        logs: store.clone(),
        files,
        queue: store.clone(),
        clock: Arc::new(SystemClock),
        ids: Arc::new(RandomIds),
        triggers: store.clone(),
        kv: store,
        schedules: Arc::new(NoScheduleRegistry),
        worker: Arc::new(
            kite_worker::InProcessWorker::new().with_scripts(kite_worker::script::ScriptConfig::from_env()),
        ),
        secrets: environment_secrets(),
    })
}

/// Kestra OSS's secrets: this process's `SECRET_<NAME>` variables (base64-encoded values),
/// read once as Kestra reads them at startup. Variables that are not Unicode are skipped.
pub fn environment_secrets() -> Arc<dyn SecretStore> {
    let vars = std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)));
    Arc::new(InMemorySecrets(Arc::new(EnvironmentSecrets::from_vars(vars))))
}

/// Removes the files that a killed process left half written or received in `data_dir`
/// ([`LocalFileStorage::sweep_receiving`]); the lock proves no other process is using them.
/// Returns how many.
pub fn sweep_receiving(data_dir: &Path, _held: &DataLock) -> Result<u64, OpenError> {
    Ok(LocalFileStorage::new(storage_dir(data_dir))?.sweep_receiving()?)
}

/// An engine over the local store in `data_dir` (no workers yet: see [`Runtime::start`]).
pub fn open_engine(data_dir: &Path, config: EngineConfig) -> Result<Engine, OpenError> {
    Ok(Engine::new(local_ports(data_dir)?, config))
}
