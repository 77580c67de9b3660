//! One server per data folder: an exclusive lock on `{data}/kite.lock`, held for as long
//! as the server runs (the OS releases it when the process ends, even on kill -9).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Why the data folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "the data folder {} is in use by another Kite server ({holder}); stop it, or give this one another --data folder",
        .path.display()
    )]
    InUse { path: PathBuf, holder: String },
    #[error("cannot lock the data folder {}: {error}", .path.display())]
    Io { path: PathBuf, error: std::io::Error },
}

/// The lock on a data folder; released when dropped.
#[derive(Debug)]
pub struct DataLock {
    _file: File,
}

impl DataLock {
    /// Takes the folder's lock (creating the folder), or says who holds it.
    pub fn acquire(data_dir: &Path) -> Result<DataLock, LockError> {
        let io = |error| LockError::Io {
            path: data_dir.to_path_buf(),
            error,
        };
        std::fs::create_dir_all(data_dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(data_dir.join("kite.lock"))
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => "its process id is unknown".to_string(),
                    pid => format!("process {pid}"),
                };
                return Err(LockError::InUse {
                    path: data_dir.to_path_buf(),
                    holder,
                });
            }
            Err(TryLockError::Error(error)) => return Err(io(error)),
        }
        // Who holds it, for the message the next server prints.
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(DataLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = DataLock::acquire(dir.path()).expect("first lock");
        let second = DataLock::acquire(dir.path()).expect_err("the folder is taken");
        let message = second.to_string();
        assert!(
            message.contains("in use by another Kite server")
                && message.contains(&format!("process {}", std::process::id())),
            "{message}"
        );
        drop(first);
        DataLock::acquire(dir.path()).expect("free again");
    }
}
