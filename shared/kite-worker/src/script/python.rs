//! Python `dependencies`: a virtual environment per requirement set, made once with
//! `python -m venv --system-site-packages` and `pip install`, kept under the cache folder
//! ([`super::ScriptConfig::python_venv_cache`]) and put first on the task's `PATH`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, LazyLock, Mutex};

use kite_core::plugin::scripts::ScriptError;
use sha2::{Digest, Sha256};
use tokio::process::Command;

/// The `kestra` module of Python script tasks.
const KESTRA_PY: &str = include_str!("kestra.py");

/// Marks an environment whose installation ended well.
const READY: &str = ".kite-ready";

/// One lock per environment: two task runs with the same requirements wait for one
/// installation.
static LOCKS: LazyLock<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(Default::default);

fn failed(e: impl std::fmt::Display) -> ScriptError {
    ScriptError::Dependencies(e.to_string())
}

/// The folder of the environment for `dependencies` with `python`, by their digest.
fn folder(cache: &Path, python: &Path, dependencies: &[String]) -> PathBuf {
    let mut sorted: Vec<&str> = dependencies.iter().map(|d| d.trim()).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut digest = Sha256::new();
    digest.update(python.as_os_str().as_encoded_bytes());
    for dependency in sorted {
        digest.update(b"\n");
        digest.update(dependency.as_bytes());
    }
    let hex: String = digest
        .finalize()
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect();
    cache.join(hex)
}

async fn run(program: &Path, args: &[&str]) -> Result<(), ScriptError> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_ROOT_USER_ACTION", "ignore")
        .output()
        .await
        .map_err(failed)?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last: Vec<&str> = stderr.lines().rev().take(5).collect();
    Err(failed(format!(
        "`{} {}` failed ({}): {}",
        program.display(),
        args.join(" "),
        output.status,
        last.into_iter().rev().collect::<Vec<_>>().join("\n")
    )))
}

/// The `bin` folder of an environment with `dependencies` installed, made if needed.
async fn environment(cache: &Path, python: &Path, dependencies: &[String]) -> Result<PathBuf, ScriptError> {
    let dir = folder(cache, python, dependencies);
    let lock = LOCKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(dir.clone())
        .or_default()
        .clone();
    let _held = lock.lock().await;
    let bin = dir.join("bin");
    if dir.join(READY).is_file() {
        return Ok(bin);
    }
    // What a stopped installation left is made again.
    if dir.exists() {
        tokio::fs::remove_dir_all(&dir).await.map_err(failed)?;
    }
    tokio::fs::create_dir_all(cache).await.map_err(failed)?;
    let target = dir
        .to_str()
        .ok_or_else(|| failed("the cache folder is not UTF-8"))?;
    run(python, &["-m", "venv", "--system-site-packages", target]).await?;
    let mut args = vec!["-m", "pip", "install", "--quiet"];
    args.extend(dependencies.iter().map(String::as_str));
    run(&bin.join("python"), &args).await?;
    tokio::fs::write(dir.join(READY), dependencies.join("\n"))
        .await
        .map_err(failed)?;
    Ok(bin)
}

/// A Python task's environment in the attempt's folder `root`: the `kestra` module on the
/// `PYTHONPATH`, `python` on the `PATH` when the host only has `python3`, and the
/// `dependencies` environment first on it. Returns the folders to put first on the `PATH`.
pub(super) async fn setup(
    root: &Path,
    python: &Path,
    dependencies: &[String],
    config: &super::ScriptConfig,
    env: &mut Vec<(String, String)>,
) -> Result<Vec<PathBuf>, ScriptError> {
    let local = |e: std::io::Error| ScriptError::WorkingDirectory(e.to_string());
    let mut path_front = Vec::new();
    // `from kestra import Kestra` works without Kestra's package installed.
    let modules = root.join("python");
    std::fs::create_dir(&modules).map_err(local)?;
    std::fs::write(modules.join("kestra.py"), KESTRA_PY).map_err(local)?;
    let mut python_path = modules.to_string_lossy().into_owned();
    let rest = match env.iter().position(|(k, _)| k == "PYTHONPATH") {
        Some(at) => Some(env.remove(at).1),
        None => std::env::var("PYTHONPATH").ok(),
    };
    if let Some(rest) = rest.filter(|p| !p.is_empty()) {
        python_path = format!("{python_path}:{rest}");
    }
    env.push(("PYTHONPATH".into(), python_path));
    // Kestra's commands say `python`; many hosts only have `python3`.
    if super::find_program(&["python"]).is_none() {
        let shims = root.join("bin");
        std::fs::create_dir(&shims).map_err(local)?;
        std::os::unix::fs::symlink(python, shims.join("python")).map_err(local)?;
        path_front.push(shims);
    }
    if !dependencies.is_empty() {
        let bin = environment(&config.python_venv_cache, python, dependencies).await?;
        let venv = bin.parent().unwrap_or(&bin).to_string_lossy().into_owned();
        env.push(("VIRTUAL_ENV".into(), venv));
        path_front.insert(0, bin);
    }
    Ok(path_front)
}
