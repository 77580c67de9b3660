//! Namespace files: files kept per namespace, which flows read with `read('path')` and the
//! `namespace` tasks upload, download and delete. As in Kestra they live in internal
//! storage at `kestra:///{namespace as path}/_files/{path}`. This module holds the rules
//! every host shares: the path rule, the storage URIs and Kestra's glob patterns
//! ([`glob`]).

pub mod glob;

pub use glob::PathPattern;

/// The folder of a namespace's files, under the namespace's own folder.
pub const FILES_FOLDER: &str = "_files";

/// What a namespace file operation failed on, in Kestra's words where it has them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamespaceFileError {
    #[error("Invalid namespace '{0}'")]
    InvalidNamespace(String),
    #[error("Invalid path '{0}': namespace file paths are '/'-separated names, without '..'")]
    InvalidPath(String),
    #[error("Invalid glob pattern '{pattern}': {reason}")]
    InvalidPattern { pattern: String, reason: String },
    #[error("File '{path}' was not found in namespace '{namespace}'.")]
    NotFound { namespace: String, path: String },
    #[error("File '{path}' already exists in namespace '{namespace}' and conflict is set to ERROR")]
    Conflict { namespace: String, path: String },
    #[error("File '{path}' already exists in namespace '{namespace}'.")]
    AlreadyExists { namespace: String, path: String },
    /// A task may copy its own execution's files only (as `read()` opens them).
    #[error("Unable to read the file '{0}' as it didn't belong to the current execution")]
    NotReadable(String),
    /// The storage failed, in its own words.
    #[error("{0}")]
    Storage(String),
}

/// A namespace as Kestra writes them: dot-separated names of letters, digits, `_` and `-`.
pub fn validate_namespace(namespace: &str) -> Result<(), NamespaceFileError> {
    let valid = !namespace.is_empty()
        && namespace.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    if valid {
        Ok(())
    } else {
        Err(NamespaceFileError::InvalidNamespace(namespace.to_string()))
    }
}

/// A namespace file path in its one spelling: a leading `/`, no empty or `.` segment
/// (`a//./b.txt` is `/a/b.txt`); `/` is the namespace's root folder. `..` is refused,
/// as are the characters storage refuses (`\`, `:`, NUL).
pub fn normalize_path(path: &str) -> Result<String, NamespaceFileError> {
    let mut out = String::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => return Err(NamespaceFileError::InvalidPath(path.to_string())),
            s if s.contains(['\\', ':', '\0']) => {
                return Err(NamespaceFileError::InvalidPath(path.to_string()))
            }
            s => {
                out.push('/');
                out.push_str(s);
            }
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// `kestra:///{namespace as path}/_files/`: where the namespace's files are stored.
pub fn files_prefix(namespace: &str) -> Result<String, NamespaceFileError> {
    validate_namespace(namespace)?;
    Ok(format!(
        "kestra:///{}/{FILES_FOLDER}/",
        namespace.replace('.', "/")
    ))
}

/// The storage URI of the namespace file (or folder) at `path`.
pub fn file_uri(namespace: &str, path: &str) -> Result<String, NamespaceFileError> {
    let prefix = files_prefix(namespace)?;
    let path = normalize_path(path)?;
    Ok(format!("{prefix}{}", path.trim_start_matches('/')))
}

/// The namespace file path (`/a/b.txt`) of a storage URI under [`files_prefix`], `None`
/// for a URI elsewhere.
pub fn path_of_uri(namespace: &str, uri: &str) -> Option<String> {
    let prefix = files_prefix(namespace).ok()?;
    let rest = uri.strip_prefix(&prefix)?;
    (!rest.is_empty()).then(|| format!("/{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_have_one_spelling_and_stay_in_the_namespace() {
        assert_eq!(normalize_path("a/b.txt").unwrap(), "/a/b.txt");
        assert_eq!(normalize_path("/a//./b.txt/").unwrap(), "/a/b.txt");
        assert_eq!(normalize_path("").unwrap(), "/");
        assert_eq!(normalize_path("/").unwrap(), "/");
        for bad in ["../x", "/a/../../x", "a/..", "a\\b", "C:/x", "a\0b"] {
            assert!(
                matches!(normalize_path(bad), Err(NamespaceFileError::InvalidPath(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn files_live_under_the_namespace_folder() {
        assert_eq!(
            file_uri("company.team", "scripts/main.py").unwrap(),
            "kestra:///company/team/_files/scripts/main.py"
        );
        assert_eq!(file_uri("dev", "/").unwrap(), "kestra:///dev/_files/");
        assert_eq!(
            path_of_uri("company.team", "kestra:///company/team/_files/a/b.txt").as_deref(),
            Some("/a/b.txt")
        );
        assert_eq!(
            path_of_uri("company.team", "kestra:///company/teamX/_files/a"),
            None
        );
        for bad in ["", "a..b", ".a", "a/b", "a b"] {
            assert!(files_prefix(bad).is_err(), "{bad}");
        }
    }
}
