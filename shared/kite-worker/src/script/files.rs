//! The files around a script task's process: what goes into its working directory before
//! it starts (input files, the namespace's files, the script) and what is uploaded to the
//! task run's storage prefix afterwards (`outputFiles`, the output directory).

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::LazyLock;

use indexmap::IndexMap;
use kite_core::namespace_files::glob::any_matches;
use kite_core::namespace_files::{files_prefix, path_of_uri, PathPattern};
use kite_core::plugin::scripts::{InputFile, NamespaceFilesFilter, ScriptError};
use kite_core::plugin::storage::readable;
use kite_engine::ports::FileStorage;
use regex::Regex;
use tokio::io::AsyncWriteExt;

fn storage(e: impl std::fmt::Display) -> ScriptError {
    ScriptError::Storage(e.to_string())
}

fn local(e: impl std::fmt::Display) -> ScriptError {
    ScriptError::WorkingDirectory(e.to_string())
}

/// `name` under `dir`, refused when it would leave it.
pub(super) fn inside(dir: &Path, name: &str) -> Result<PathBuf, ScriptError> {
    let relative = Path::new(name.trim_start_matches('/'));
    if name.is_empty() || relative.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(ScriptError::InvalidPath(name.to_string()));
    }
    Ok(dir.join(relative))
}

async fn create_parent(path: &Path) -> Result<(), ScriptError> {
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await.map_err(local)?;
    }
    Ok(())
}

/// Writes `content` to `name` under `dir`.
pub(crate) async fn write(dir: &Path, name: &str, content: &[u8]) -> Result<PathBuf, ScriptError> {
    let path = inside(dir, name)?;
    create_parent(&path).await?;
    tokio::fs::write(&path, content).await.map_err(local)?;
    Ok(path)
}

/// Copies the stored file `uri` to `path`.
async fn download(files: &dyn FileStorage, uri: &str, path: &Path) -> Result<(), ScriptError> {
    create_parent(path).await?;
    let mut content = files.get(uri).await.map_err(storage)?;
    let mut file = tokio::fs::File::create(path).await.map_err(local)?;
    tokio::io::copy(&mut content, &mut file).await.map_err(local)?;
    file.flush().await.map_err(local)
}

/// Writes the input files; stored files must be readable by the execution.
pub(crate) async fn input_files(
    files: &dyn FileStorage,
    dir: &Path,
    inputs: &[(String, InputFile)],
    readable_prefixes: &[String],
    replace_marks: impl Fn(&str) -> String,
) -> Result<(), ScriptError> {
    for (name, file) in inputs {
        match file {
            InputFile::Content(text) => {
                write(dir, name, replace_marks(text).as_bytes()).await?;
            }
            InputFile::Storage(uri) => {
                readable(uri, readable_prefixes).map_err(|_| ScriptError::NotReadable(uri.clone()))?;
                download(files, uri, &inside(dir, name)?).await?;
            }
        }
    }
    Ok(())
}

/// Copies the namespace's files that the filter keeps, under their paths.
pub(super) async fn namespace_files(
    files: &dyn FileStorage,
    dir: &Path,
    filter: &NamespaceFilesFilter,
) -> Result<(), ScriptError> {
    let compile = |patterns: &[String]| {
        patterns
            .iter()
            .map(|p| PathPattern::new(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(storage)
    };
    let (include, exclude) = (compile(&filter.include)?, compile(&filter.exclude)?);
    let prefix = files_prefix(&filter.namespace).map_err(storage)?;
    for file in files.list(&prefix).await.map_err(storage)? {
        let Some(path) = path_of_uri(&filter.namespace, &file.uri) else {
            continue;
        };
        let kept = (include.is_empty() || any_matches(&include, &path)) && !any_matches(&exclude, &path);
        if kept {
            download(files, &file.uri, &inside(dir, &path)?).await?;
        }
    }
    Ok(())
}

/// The regular files under `dir`, by their path relative to it (`/` separated).
fn walk(dir: &Path) -> Vec<(String, PathBuf)> {
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| {
            let relative = e.path().strip_prefix(dir).ok()?.to_str()?.to_string();
            Some((relative, e.into_path()))
        })
        .collect()
}

/// Uploads `path` as `name` under the task run's `prefix`; returns its URI.
async fn upload(
    files: &dyn FileStorage,
    prefix: &str,
    name: &str,
    path: &Path,
) -> Result<String, ScriptError> {
    let uri = format!("{prefix}{name}");
    let file = tokio::fs::File::open(path).await.map_err(local)?;
    files.put(&uri, Box::pin(file), u64::MAX).await.map_err(storage)?;
    Ok(uri)
}

/// Uploads the working directory's files that match `globs`, the legacy keys' files and
/// every file of the output directory; returns name → URI.
pub(crate) async fn upload_outputs(
    files: &dyn FileStorage,
    prefix: &str,
    work: &Path,
    output: &Path,
    globs: &[String],
    legacy_keys: &[String],
) -> Result<IndexMap<String, String>, ScriptError> {
    let mut uploaded = IndexMap::new();
    if !globs.is_empty() {
        let patterns = globs
            .iter()
            .map(|g| PathPattern::new(&format!("glob:/{g}")))
            .collect::<Result<Vec<_>, _>>()
            .map_err(storage)?;
        for (name, path) in walk(work) {
            if any_matches(&patterns, &format!("/{name}")) {
                let uri = upload(files, prefix, &name, &path).await?;
                uploaded.insert(name, uri);
            }
        }
    }
    for key in legacy_keys {
        let path = inside(work, key)?;
        if path.is_file() {
            let uri = upload(files, prefix, key, &path).await?;
            uploaded.insert(key.clone(), uri);
        }
    }
    for (name, path) in walk(output) {
        let uri = upload(files, prefix, &name, &path).await?;
        uploaded.insert(name, uri);
    }
    Ok(uploaded)
}

/// Kestra's pattern of an internal storage URI written in a command or a script.
static STORAGE_URI: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"kestra://[-\w.+~#=/]*").expect("a valid pattern"));

/// Replaces the `kestra:///` URIs written in commands and scripts with local copies in the
/// working directory, as Kestra's runners do (each file copied once).
pub(super) struct LocalCopies<'a> {
    pub files: &'a dyn FileStorage,
    pub dir: &'a Path,
    pub readable: &'a [String],
    pub copied: HashMap<String, String>,
}

impl LocalCopies<'_> {
    pub async fn replace(&mut self, text: String) -> Result<String, ScriptError> {
        let uris: Vec<String> = STORAGE_URI
            .find_iter(&text)
            .map(|m| m.as_str().to_string())
            .filter(|uri| !self.copied.contains_key(uri))
            .collect();
        for uri in uris {
            if self.copied.contains_key(&uri) {
                continue;
            }
            readable(&uri, self.readable).map_err(|_| ScriptError::NotReadable(uri.clone()))?;
            let name = uri.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or("file");
            let path = self
                .dir
                .join(".kestra-files")
                .join(self.copied.len().to_string())
                .join(name);
            download(self.files, &uri, &path).await?;
            self.copied.insert(uri, path.to_string_lossy().into_owned());
        }
        if self.copied.is_empty() {
            return Ok(text);
        }
        Ok(STORAGE_URI
            .replace_all(&text, |m: &regex::Captures| {
                self.copied
                    .get(&m[0])
                    .cloned()
                    .unwrap_or_else(|| m[0].to_string())
            })
            .into_owned())
    }
}
