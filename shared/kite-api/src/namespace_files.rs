//! `/api/v1/namespaces/{namespace}/files…`: Kestra's namespace files API (a file's
//! content and stats, a folder's listing, upload, move, delete). The files live in the
//! file storage under `kestra:///{namespace as path}/_files/`; folders exist while files
//! are under them, as folders of object storage do.

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use kite_core::namespace_files::{file_uri, normalize_path, NamespaceFileError};
use kite_engine::ports::StoredFile;
use kite_engine::EngineError;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::params::{NamespacePath, Query};
use crate::Shared;

/// How long a download URL given instead of the bytes stays valid.
const DOWNLOAD_URL_TTL: std::time::Duration = std::time::Duration::from_secs(300);

impl From<NamespaceFileError> for ApiError {
    fn from(e: NamespaceFileError) -> Self {
        match &e {
            NamespaceFileError::NotFound { .. } => ApiError::not_found(&e.to_string()),
            NamespaceFileError::AlreadyExists { .. } | NamespaceFileError::Conflict { .. } => {
                ApiError::new(StatusCode::CONFLICT, format!("Illegal state: {e}"))
            }
            NamespaceFileError::Storage(m) => ApiError::from(EngineError::Internal(m.clone())),
            _ => ApiError::illegal_argument(&e.to_string()),
        }
    }
}

fn storage(e: kite_engine::ports::StorageError) -> ApiError {
    ApiError::from(EngineError::from(e))
}

/// The query's `name` as a namespace file path, `/` when absent (and not `required`).
fn path_arg(q: &Query, name: &str, required: bool) -> ApiResult<String> {
    match q.get(name) {
        Some(p) => Ok(normalize_path(p)?),
        None if required => Err(ApiError::bad_request(&format!(
            "Required argument [{name}] not specified"
        ))),
        None => Ok("/".to_string()),
    }
}

fn not_found(namespace: &str, path: &str) -> ApiError {
    NamespaceFileError::NotFound {
        namespace: namespace.to_string(),
        path: path.to_string(),
    }
    .into()
}

fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// Kestra's `FileAttributes` of a file.
fn file_attributes(name: &str, file: &StoredFile) -> Value {
    json!({
        "fileName": name,
        "lastModifiedTime": millis(file.last_modified),
        "creationTime": millis(file.created.unwrap_or(file.last_modified)),
        "type": "File",
        "size": file.size,
    })
}

/// Kestra's `FileAttributes` of a folder holding `files` (its dates are theirs).
fn folder_attributes(name: &str, files: &[&StoredFile]) -> Value {
    let modified = files.iter().map(|f| f.last_modified).max().unwrap_or_default();
    let created = files
        .iter()
        .map(|f| f.created.unwrap_or(f.last_modified))
        .min()
        .unwrap_or_default();
    json!({
        "fileName": name,
        "lastModifiedTime": millis(modified),
        "creationTime": millis(created),
        "type": "Directory",
        "size": 0,
    })
}

fn name_of(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or_default()
}

/// What is at `path`: the file there, or the files under it as a folder.
enum Entry {
    File(StoredFile),
    Folder(Vec<StoredFile>),
    Absent,
}

async fn entry(s: &Shared, namespace: &str, path: &str) -> ApiResult<Entry> {
    let uri = file_uri(namespace, path)?;
    let mut listed = s.engine.ports().files.list(&uri).await.map_err(storage)?;
    let uri = uri.trim_end_matches('/');
    Ok(match listed.iter().position(|f| f.uri == uri) {
        Some(i) => Entry::File(listed.swap_remove(i)),
        None if listed.is_empty() => Entry::Absent,
        None => Entry::Folder(listed),
    })
}

/// `GET …/files?path=`: the file's bytes.
pub async fn content(State(s): State<Shared>, Path(p): Path<NamespacePath>, uri: Uri) -> ApiResult<Response> {
    let q = Query::from_uri(&uri)?;
    let path = path_arg(&q, "path", true)?;
    let stored = file_uri(&p.namespace, &path)?;
    let files = &s.engine.ports().files;
    let Some(size) = files.size(&stored).await.map_err(storage)? else {
        return Err(not_found(&p.namespace, &path));
    };
    if s.inline_download_limit.is_some_and(|limit| size > limit) {
        if let Some(url) = files
            .download_url(&stored, DOWNLOAD_URL_TTL)
            .await
            .map_err(storage)?
        {
            return crate::uploads::redirect(&url);
        }
    }
    let reader = files.get(&stored).await.map_err(storage)?;
    let mut response = Body::from_stream(tokio_util::io::ReaderStream::new(reader)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// `GET …/files/stats?path=`: the `FileAttributes` of a file or folder (the root always
/// exists).
pub async fn stats(
    State(s): State<Shared>,
    Path(p): Path<NamespacePath>,
    uri: Uri,
) -> ApiResult<Json<Value>> {
    let q = Query::from_uri(&uri)?;
    let path = path_arg(&q, "path", false)?;
    let name = name_of(&path);
    Ok(Json(match entry(&s, &p.namespace, &path).await? {
        Entry::File(file) => file_attributes(name, &file),
        Entry::Folder(files) => folder_attributes(name, &files.iter().collect::<Vec<_>>()),
        Entry::Absent if path == "/" => folder_attributes("", &[]),
        Entry::Absent => return Err(not_found(&p.namespace, &path)),
    }))
}

/// `GET …/files/directory?path=`: the folder's files and folders, one level deep.
pub async fn directory(
    State(s): State<Shared>,
    Path(p): Path<NamespacePath>,
    uri: Uri,
) -> ApiResult<Json<Vec<Value>>> {
    let q = Query::from_uri(&uri)?;
    let path = path_arg(&q, "path", false)?;
    let files = match entry(&s, &p.namespace, &path).await? {
        Entry::Folder(files) => files,
        // A file has no children.
        Entry::File(_) => return Ok(Json(Vec::new())),
        Entry::Absent if path == "/" => return Ok(Json(Vec::new())),
        Entry::Absent => {
            return Err(ApiError::not_found(&format!("Directory not found: {path}")));
        }
    };
    let folder = file_uri(&p.namespace, &path)?;
    let folder = format!("{}/", folder.trim_end_matches('/'));
    // Children by name: a file, or a folder with the files under it.
    let mut children: std::collections::BTreeMap<&str, Vec<&StoredFile>> = Default::default();
    let mut kinds: std::collections::HashMap<&str, bool> = Default::default();
    for file in &files {
        let Some(rest) = file.uri.strip_prefix(&folder) else {
            continue;
        };
        let (name, is_folder) = match rest.split_once('/') {
            Some((name, _)) => (name, true),
            None => (rest, false),
        };
        children.entry(name).or_default().push(file);
        *kinds.entry(name).or_default() |= is_folder;
    }
    Ok(Json(
        children
            .into_iter()
            .map(|(name, files)| match kinds.get(name) {
                Some(true) => folder_attributes(name, &files),
                _ => file_attributes(name, files[0]),
            })
            .collect(),
    ))
}

/// `POST …/files?path=` (multipart, the file in part `fileContent`): creates or replaces
/// the file.
pub async fn create(
    State(s): State<Shared>,
    Path(p): Path<NamespacePath>,
    request: Request,
) -> ApiResult<StatusCode> {
    let q = Query::from_uri(request.uri())?;
    let path = path_arg(&q, "path", true)?;
    if path == "/" {
        return Err(NamespaceFileError::InvalidPath(path).into());
    }
    let target = file_uri(&p.namespace, &path)?;
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| ApiError::bad_request(&format!("Malformed multipart body: {}", e.body_text())))?;
    loop {
        let field = multipart
            .next_field()
            .await
            .map_err(|e| ApiError::bad_request(&format!("Malformed multipart body: {}", e.body_text())))?;
        let Some(field) = field else {
            return Err(ApiError::bad_request(
                "Required argument [fileContent] not specified",
            ));
        };
        if field.name() != Some("fileContent") {
            continue;
        }
        crate::submission::store_stream(
            &s,
            field,
            &target,
            |e: axum::extract::multipart::MultipartError| {
                ApiError::bad_request(&format!("Malformed multipart body: {}", e.body_text()))
            },
        )
        .await?;
        return Ok(StatusCode::OK);
    }
}

/// `PUT …/files?from=&to=`: moves a file or a folder; the target must not exist.
pub async fn move_entry(
    State(s): State<Shared>,
    Path(p): Path<NamespacePath>,
    uri: Uri,
) -> ApiResult<StatusCode> {
    let q = Query::from_uri(&uri)?;
    let (from, to) = (path_arg(&q, "from", true)?, path_arg(&q, "to", true)?);
    let inside = to.strip_prefix(&from).is_some_and(|rest| rest.starts_with('/'));
    if from == "/" || to == "/" || inside {
        return Err(ApiError::illegal_argument(&format!(
            "Cannot move '{from}' to '{to}'"
        )));
    }
    if from == to {
        return Ok(StatusCode::OK);
    }
    if !matches!(entry(&s, &p.namespace, &to).await?, Entry::Absent) {
        return Err(NamespaceFileError::AlreadyExists {
            namespace: p.namespace.clone(),
            path: to,
        }
        .into());
    }
    let files = &s.engine.ports().files;
    let (source, target) = (file_uri(&p.namespace, &from)?, file_uri(&p.namespace, &to)?);
    match entry(&s, &p.namespace, &from).await? {
        Entry::File(_) => files.rename(&source, &target).await.map_err(storage)?,
        Entry::Folder(listed) => {
            for file in listed {
                if let Some(rest) = file.uri.strip_prefix(&format!("{source}/")) {
                    files
                        .rename(&file.uri, &format!("{target}/{rest}"))
                        .await
                        .map_err(storage)?;
                }
            }
        }
        Entry::Absent => return Err(not_found(&p.namespace, &from)),
    }
    Ok(StatusCode::OK)
}

/// `DELETE …/files?path=`: deletes a file or a folder with everything under it (nothing
/// there is no error, as in Kestra). The root is refused.
pub async fn delete(
    State(s): State<Shared>,
    Path(p): Path<NamespacePath>,
    uri: Uri,
) -> ApiResult<StatusCode> {
    let q = Query::from_uri(&uri)?;
    let path = path_arg(&q, "path", true)?;
    if path == "/" {
        return Err(ApiError::illegal_argument(
            "Cannot delete the root of the namespace files",
        ));
    }
    let target = file_uri(&p.namespace, &path)?;
    s.engine
        .ports()
        .files
        .delete_prefix(&target)
        .await
        .map_err(storage)?;
    Ok(StatusCode::OK)
}
