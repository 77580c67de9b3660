//! The folder a `flow.WorkingDirectory`'s script children share.
//!
//! A worker keeps it at `{temp}/kite-working-directories/{key}` (the WorkingDirectory's
//! task run id), with `{key}.last` beside it naming the child that last ran in it. A child
//! uses the folder as it is when that child is its `previous`; otherwise another instance
//! ran the previous child, and the folder is rebuilt from the snapshot each child leaves
//! in internal storage when it ends.
//!
//! The snapshot is a plain archive: the line `kite-working-directory 1`, then per entry
//! `d {mode} {path}` for a folder, or `f {mode} {length} {path}` followed by the file's
//! bytes (mode in octal, path relative and `/` separated). Symbolic links are left out.
//!
//! The worker never hears that a WorkingDirectory ended, so it keeps at most
//! [`KEPT_FOLDERS`] folders no child is running in: opening one removes the least recently
//! used past that bound (one that is needed again is rebuilt from its snapshot). A
//! long-lived worker's temporary space (a warm Lambda's `/tmp`) stays bounded.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use kite_core::plugin::scripts::{ScriptError, SharedFolder};
use kite_core::plugin::storage::files::MAX_FILE_BYTES;
use kite_core::plugin::storage::readable;
use kite_engine::ports::{FileStorage, StorageError};

const HEADER: &str = "kite-working-directory 1";

/// The most folders a worker keeps that no child is running in.
pub(super) const KEPT_FOLDERS: usize = 8;

/// The folders children of this process are running in now.
static IN_USE: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// A folder a child is running in, until dropped (the attempt ended, or was dropped).
#[derive(Debug)]
pub(super) struct InUse(String);

impl InUse {
    fn take(key: &str) -> InUse {
        IN_USE
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string());
        InUse(key.to_string())
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        IN_USE.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.0);
    }
}

/// Removes the least recently used folders no child is running in, past `keep` of them
/// (by the time their last child ended). Best effort: a folder that cannot be removed stays.
fn prune(root: &Path, keep: usize) {
    let in_use = IN_USE.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    let mut idle: Vec<(SystemTime, String)> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|key| !in_use.contains(key))
        .map(|key| {
            let used = std::fs::metadata(marker(root, &key))
                .or_else(|_| std::fs::metadata(root.join(&key)))
                .and_then(|m| m.modified())
                .unwrap_or(UNIX_EPOCH);
            (used, key)
        })
        .collect();
    if idle.len() <= keep {
        return;
    }
    idle.sort();
    for (_, key) in &idle[..idle.len() - keep] {
        if std::fs::remove_dir_all(root.join(key)).is_ok() {
            let _ = std::fs::remove_file(marker(root, key));
        }
    }
}

fn local(e: impl std::fmt::Display) -> ScriptError {
    ScriptError::WorkingDirectory(e.to_string())
}

fn storage(e: impl std::fmt::Display) -> ScriptError {
    ScriptError::Storage(e.to_string())
}

/// Where a worker keeps the shared folders.
pub(super) fn root(temp_dir: &Path) -> PathBuf {
    temp_dir.join("kite-working-directories")
}

fn marker(root: &Path, key: &str) -> PathBuf {
    root.join(format!("{key}.last"))
}

/// Makes the folder ready for a child: returns it, whether it was made fresh (then the
/// WorkingDirectory's own input and namespace files go in), and its hold while the child
/// runs (other children's opening does not remove it).
pub(super) async fn open(
    files: &dyn FileStorage,
    root: &Path,
    shared: &SharedFolder,
    readable_prefixes: &[String],
) -> Result<(PathBuf, bool, InUse), ScriptError> {
    if shared.key.is_empty() || shared.key.contains(['/', '.']) {
        return Err(local(format!("invalid folder name '{}'", shared.key)));
    }
    let in_use = InUse::take(&shared.key);
    prune(root, KEPT_FOLDERS);
    let dir = root.join(&shared.key);
    let last = std::fs::read_to_string(marker(root, &shared.key)).ok();
    let Some(previous) = &shared.previous else {
        // The first child: a new folder, whatever an earlier attempt left.
        clear(&dir)?;
        return Ok((dir, true, in_use));
    };
    if dir.is_dir() && last.as_deref() == Some(previous.as_str()) {
        return Ok((dir, false, in_use));
    }
    readable(&shared.snapshot, readable_prefixes)
        .map_err(|_| ScriptError::NotReadable(shared.snapshot.clone()))?;
    let mut content = match files.get(&shared.snapshot).await {
        Ok(content) => content,
        Err(StorageError::NotFound(_)) => {
            return Err(local(format!(
                "the folder task run {previous} left is not on this worker and its snapshot \
                 '{}' is missing",
                shared.snapshot
            )))
        }
        Err(e) => return Err(storage(e)),
    };
    clear(&dir)?;
    let archive = root.join(format!("{}.restore", shared.key));
    let mut file = tokio::fs::File::create(&archive).await.map_err(local)?;
    tokio::io::copy(&mut content, &mut file).await.map_err(storage)?;
    drop(file);
    let (from, to) = (archive.clone(), dir.clone());
    let unpacked = tokio::task::spawn_blocking(move || unpack(&from, &to))
        .await
        .map_err(local)
        .and_then(|r| r);
    let _ = std::fs::remove_file(&archive);
    unpacked?;
    Ok((dir, false, in_use))
}

/// Once the process has ended: names this child as the folder's last writer and leaves
/// the folder's snapshot in internal storage.
pub(super) async fn close(
    files: &dyn FileStorage,
    root: &Path,
    dir: &Path,
    shared: &SharedFolder,
    task_run_id: &str,
) -> Result<(), ScriptError> {
    let archive = root.join(format!("{}.snapshot", shared.key));
    let (from, to) = (dir.to_path_buf(), archive.clone());
    let packed = tokio::task::spawn_blocking(move || pack(&from, &to, MAX_FILE_BYTES))
        .await
        .map_err(local)
        .and_then(|r| r);
    let stored = match packed {
        Ok(()) => match tokio::fs::File::open(&archive).await {
            Ok(file) => files
                .put(&shared.snapshot, Box::pin(file), MAX_FILE_BYTES)
                .await
                .map(|_| ())
                .map_err(storage),
            Err(e) => Err(local(e)),
        },
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_file(&archive);
    stored?;
    std::fs::write(marker(root, &shared.key), task_run_id).map_err(local)
}

fn clear(dir: &Path) -> Result<(), ScriptError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(local)?;
    }
    std::fs::create_dir_all(dir).map_err(local)
}

/// Writes the archive of `dir` to `to`, refused past `limit` bytes of content.
pub(super) fn pack(dir: &Path, to: &Path, limit: u64) -> Result<(), ScriptError> {
    let mut out = BufWriter::new(File::create(to).map_err(local)?);
    writeln!(out, "{HEADER}").map_err(local)?;
    let mut total = 0u64;
    for entry in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
        let entry = entry.map_err(local)?;
        let path = entry.path().strip_prefix(dir).map_err(local)?;
        let name = path
            .to_str()
            .filter(|n| !n.contains('\n'))
            .ok_or_else(|| local(format!("unsupported file name {path:?}")))?;
        let meta = entry.metadata().map_err(local)?;
        let mode = meta.permissions().mode() & 0o7777;
        if meta.is_dir() {
            writeln!(out, "d {mode:o} {name}").map_err(local)?;
        } else if meta.is_file() {
            total += meta.len();
            if total > limit {
                return Err(local(format!(
                    "the working directory holds more than {limit} bytes, the most a snapshot keeps"
                )));
            }
            writeln!(out, "f {mode:o} {} {name}", meta.len()).map_err(local)?;
            let copied =
                std::io::copy(&mut File::open(entry.path()).map_err(local)?, &mut out).map_err(local)?;
            if copied != meta.len() {
                return Err(local(format!("'{name}' changed while it was saved")));
            }
        }
    }
    out.flush().map_err(local)
}

/// Rebuilds `dir` from an archive [`pack`] wrote.
pub(super) fn unpack(from: &Path, dir: &Path) -> Result<(), ScriptError> {
    let bad = || local("the working directory's snapshot is not readable");
    let mut input = BufReader::new(File::open(from).map_err(local)?);
    let mut line = String::new();
    input.read_line(&mut line).map_err(local)?;
    if line.trim_end() != HEADER {
        return Err(bad());
    }
    loop {
        line.clear();
        if input.read_line(&mut line).map_err(local)? == 0 {
            return Ok(());
        }
        let mut parts = line.trim_end_matches('\n').splitn(3, ' ');
        let (kind, mode) = (
            parts.next(),
            parts.next().and_then(|m| u32::from_str_radix(m, 8).ok()),
        );
        let (Some(kind), Some(mode), Some(rest)) = (kind, mode, parts.next()) else {
            return Err(bad());
        };
        match kind {
            "d" => {
                let path = super::files::inside(dir, rest)?;
                std::fs::create_dir_all(&path).map_err(local)?;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).map_err(local)?;
            }
            "f" => {
                let (len, name) = rest.split_once(' ').ok_or_else(bad)?;
                let len: u64 = len.parse().map_err(|_| bad())?;
                let path = super::files::inside(dir, name)?;
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(local)?;
                }
                let mut file = File::create(&path).map_err(local)?;
                let copied = std::io::copy(&mut (&mut input).take(len), &mut file).map_err(local)?;
                if copied != len {
                    return Err(bad());
                }
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).map_err(local)?;
            }
            _ => return Err(bad()),
        }
    }
}

#[cfg(test)]
#[path = "shared_tests.rs"]
mod instances;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_folders_past_the_bound_go_least_recently_used_first() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let long_ago = SystemTime::now() - std::time::Duration::from_secs(3600);
        for i in 0..12u64 {
            let key = format!("prune{i:02}");
            std::fs::create_dir_all(root.join(&key).join("sub")).unwrap();
            std::fs::write(marker(root, &key), "run").unwrap();
            let at = long_ago + std::time::Duration::from_secs(i);
            File::options()
                .write(true)
                .open(marker(root, &key))
                .unwrap()
                .set_modified(at)
                .unwrap();
        }
        // The oldest has a child running in it: it stays.
        let busy = InUse::take("prune00");
        prune(root, 8);
        let left: BTreeSet<String> = std::fs::read_dir(root)
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let expected: BTreeSet<String> = [0, 4, 5, 6, 7, 8, 9, 10, 11]
            .iter()
            .map(|i| format!("prune{i:02}"))
            .collect();
        assert_eq!(left, expected);
        assert!(!marker(root, "prune01").exists() && marker(root, "prune04").exists());
        drop(busy);
        prune(root, 8);
        assert!(
            !root.join("prune00").exists(),
            "no longer in use: the least recently used goes"
        );
    }

    #[test]
    fn an_archive_rebuilds_the_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let (src, dst, archive) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("x"));
        std::fs::create_dir_all(src.join("sub/empty")).unwrap();
        std::fs::write(src.join("one.txt"), "first\nline").unwrap();
        std::fs::write(src.join("sub/two words.bin"), [0u8, 10, 255]).unwrap();
        std::fs::set_permissions(src.join("one.txt"), std::fs::Permissions::from_mode(0o755)).unwrap();
        pack(&src, &archive, 1000).unwrap();
        unpack(&archive, &dst).unwrap();
        assert_eq!(
            std::fs::read_to_string(dst.join("one.txt")).unwrap(),
            "first\nline"
        );
        assert_eq!(
            std::fs::read(dst.join("sub/two words.bin")).unwrap(),
            vec![0u8, 10, 255]
        );
        assert!(dst.join("sub/empty").is_dir());
        let mode = std::fs::metadata(dst.join("one.txt"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
    }

    #[test]
    fn a_folder_past_the_limit_is_refused() {
        let (tmp, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::write(tmp.path().join("big"), vec![1u8; 20]).unwrap();
        let err = pack(tmp.path(), &out.path().join("x"), 10).unwrap_err();
        assert!(err.to_string().contains("more than 10 bytes"), "{err}");
    }

    #[test]
    fn a_path_leaving_the_folder_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let archive = tmp.path().join("x");
        std::fs::write(&archive, format!("{HEADER}\nf 644 1 ../evil\na")).unwrap();
        assert!(unpack(&archive, &tmp.path().join("d")).is_err());
        assert!(!tmp.path().join("evil").exists());
    }
}
