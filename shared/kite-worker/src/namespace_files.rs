//! The `namespace` tasks' calls over the file storage: namespace files live at
//! `kestra:///{namespace as path}/_files/…` ([`kite_core::namespace_files`]).

use kite_core::input::{execution_storage_prefix, flow_uploads_prefix};
use kite_core::namespace_files::{
    file_uri, files_prefix, normalize_path, path_of_uri, NamespaceFileError, PathPattern,
};
use kite_core::plugin::namespace_files::{Conflict, NamespaceFilesAnswer, NamespaceFilesCall};
use kite_core::plugin::TaskRunContext;
use kite_engine::ports::{FileStorage, StorageError, StoredFile};

fn storage(e: StorageError) -> NamespaceFileError {
    NamespaceFileError::Storage(e.to_string())
}

/// Makes `call` for the task run `task_run` on `files`.
pub async fn run(
    files: &dyn FileStorage,
    call: &NamespaceFilesCall,
    task_run: &TaskRunContext,
) -> Result<NamespaceFilesAnswer, NamespaceFileError> {
    match call {
        NamespaceFilesCall::Upload {
            namespace,
            files: sources,
            conflict,
        } => upload(files, namespace, sources, *conflict, task_run).await,
        NamespaceFilesCall::Download {
            namespace,
            patterns,
            destination,
        } => {
            let mut downloaded = Vec::new();
            let folder = normalize_path(destination)?;
            let folder = folder.trim_end_matches('/');
            for (path, file) in matching(files, namespace, patterns).await? {
                // `{destination}/{path}` among the task run's own files.
                let relative = format!("{folder}{path}");
                let target = format!(
                    "{}{}",
                    task_run.storage_prefix(),
                    relative.trim_start_matches('/')
                );
                copy(files, &file.uri, &target).await?;
                downloaded.push((path, target));
            }
            Ok(NamespaceFilesAnswer::Downloaded(downloaded))
        }
        NamespaceFilesCall::Delete { namespace, patterns } => {
            let mut deleted = Vec::new();
            for (path, file) in matching(files, namespace, patterns).await? {
                files.delete_prefix(&file.uri).await.map_err(storage)?;
                deleted.push(path);
            }
            Ok(NamespaceFilesAnswer::Deleted(deleted))
        }
    }
}

/// The namespace's files whose path matches one of the patterns, with their paths.
async fn matching(
    files: &dyn FileStorage,
    namespace: &str,
    patterns: &[String],
) -> Result<Vec<(String, StoredFile)>, NamespaceFileError> {
    let patterns = patterns
        .iter()
        .map(|p| PathPattern::new(p))
        .collect::<Result<Vec<_>, _>>()?;
    let listed = files.list(&files_prefix(namespace)?).await.map_err(storage)?;
    Ok(listed
        .into_iter()
        .filter_map(|file| path_of_uri(namespace, &file.uri).map(|path| (path, file)))
        .filter(|(path, _)| kite_core::namespace_files::glob::any_matches(&patterns, path))
        .collect())
}

async fn upload(
    files: &dyn FileStorage,
    namespace: &str,
    sources: &[(String, String)],
    conflict: Conflict,
    task_run: &TaskRunContext,
) -> Result<NamespaceFilesAnswer, NamespaceFileError> {
    // A task reads its own execution's files only, as `read()` does.
    let readable = [
        execution_storage_prefix(&task_run.namespace, &task_run.flow_id, &task_run.execution_id),
        flow_uploads_prefix(&task_run.namespace, &task_run.flow_id),
    ];
    let (mut written, mut skipped, mut missing) = (Vec::new(), Vec::new(), Vec::new());
    for (path, source) in sources {
        if !readable.iter().any(|p| source.starts_with(p.as_str())) {
            return Err(NamespaceFileError::NotReadable(source.clone()));
        }
        let target = file_uri(namespace, path)?;
        if files.size(source).await.map_err(storage)?.is_none() {
            missing.push(source.clone());
            continue;
        }
        if files.exists(&target).await.map_err(storage)? {
            match conflict {
                Conflict::Overwrite => {}
                Conflict::Skip => {
                    skipped.push(path.clone());
                    continue;
                }
                Conflict::Error => {
                    return Err(NamespaceFileError::Conflict {
                        namespace: namespace.to_string(),
                        path: path.clone(),
                    })
                }
            }
        }
        copy(files, source, &target).await?;
        written.push(path.clone());
    }
    Ok(NamespaceFilesAnswer::Uploaded {
        written,
        skipped,
        missing,
    })
}

/// Copies a stored file (it is already in the storage: no size bound).
async fn copy(files: &dyn FileStorage, from: &str, to: &str) -> Result<u64, NamespaceFileError> {
    let content = files.get(from).await.map_err(storage)?;
    files.put(to, content, u64::MAX).await.map_err(storage)
}
