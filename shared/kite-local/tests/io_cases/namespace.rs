//! The namespace file tasks and `read()` after Kestra's `namespace` unit tests.

use kite_core::execution::StateType::{Success, Warning};
use kite_core::namespace_files::{file_uri, files_prefix};
use kite_engine::ports::ByteStream;
use serde_json::{json, Value};

use super::{ensure, same, Check, Env};

async fn put(env: &Env, namespace: &str, path: &str, content: &str) -> Check {
    let uri = file_uri(namespace, path).map_err(|e| e.to_string())?;
    let stream: ByteStream = Box::pin(std::io::Cursor::new(content.as_bytes().to_vec()));
    env.engine
        .ports()
        .files
        .put(&uri, stream, 1024)
        .await
        .map(|_| ())
        .map_err(|e| format!("{uri}: {e}"))
}

/// The namespace file paths of `namespace`, sorted.
async fn paths(env: &Env, namespace: &str) -> Result<Vec<String>, String> {
    let prefix = files_prefix(namespace).map_err(|e| e.to_string())?;
    let mut paths: Vec<String> = env
        .engine
        .ports()
        .files
        .list(&prefix)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|f| format!("/{}", f.uri.trim_start_matches(&prefix)))
        .collect();
    paths.sort();
    Ok(paths)
}

/// `UploadFilesTest`: `conflict` ERROR fails on an existing file, SKIP keeps it, the
/// default OVERWRITE replaces it; one file in the namespace throughout.
pub async fn upload(env: &Env) -> Check {
    let inputs = [
        ("first", "application-test.yml", b"first file".to_vec()),
        ("second", "logback.xml", b"second file".to_vec()),
    ];
    let done = env.run("namespace-upload.yaml", &[], &inputs).await?;
    done.states(
        Warning,
        &[
            ("upload", Success),
            ("upload_conflict", Warning),
            ("skip", Success),
            ("overwrite", Success),
        ],
    )?;
    same(
        "files",
        paths(env, "io.kestra.tests.upload").await?,
        vec!["/folder/path/file.txt".to_string()],
    )?;
    same(
        "after skip",
        done.output("after_skip", "value"),
        json!("first file"),
    )?;
    same(
        "after overwrite",
        done.output("after_overwrite", "value"),
        json!("second file"),
    )
}

/// `DownloadFilesTest` and `DeleteFilesTest`: a pattern picks `/a/b/test1.txt` of the
/// two files under `/a/b`.
pub async fn download_delete(env: &Env) -> Check {
    let namespace = "io.kestra.tests.files";
    put(env, namespace, "/a/b/test1.txt", "1").await?;
    put(env, namespace, "/a/b/test2.txt", "2").await?;
    let done = env.run("namespace-download-delete.yaml", &[], &[]).await?;
    done.states(Success, &[("download", Success), ("delete", Success)])?;
    let files = done.output("download", "files");
    let map = files
        .as_object()
        .ok_or_else(|| format!("download files: {files}"))?;
    same(
        "downloaded paths",
        map.keys().cloned().collect::<Vec<_>>(),
        vec!["/a/b/test1.txt".to_string()],
    )?;
    let uri = map.get("/a/b/test1.txt").cloned().unwrap_or(Value::Null);
    same("downloaded content", env.text(&uri).await?, "1".to_string())?;
    let left = paths(env, namespace).await?;
    ensure(left == ["/a/b/test2.txt"], || {
        format!("after DeleteFiles: {left:?}")
    })
}
