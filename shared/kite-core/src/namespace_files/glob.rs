//! Kestra's file patterns (Java's `PathMatcher` syntax), matched against namespace file
//! paths such as `/scripts/main.py`: `glob:…` and `regex:…` as written, and a bare
//! pattern as a glob, under any folder (`**/`) when it starts with a letter, digit or `_`.
//! In a glob, `*` and `?` stay within one folder, `**` crosses folders, `[…]`/`[!…]`
//! are character classes and `{a,b}` alternatives. Translated to a [`regex::Regex`]
//! here: `globset` reads `**` only as a whole path segment, where Java's `**input.txt`
//! also matches `/a/b/input.txt`.

use regex::Regex;

use super::NamespaceFileError;

/// One of Kestra's file patterns, compiled.
#[derive(Debug, Clone)]
pub struct PathPattern {
    regex: Regex,
}

impl PathPattern {
    pub fn new(pattern: &str) -> Result<PathPattern, NamespaceFileError> {
        let invalid = |reason: String| NamespaceFileError::InvalidPattern {
            pattern: pattern.to_string(),
            reason,
        };
        let source = if let Some(re) = pattern.strip_prefix("regex:") {
            format!("^(?:{re})$")
        } else if let Some(glob) = pattern.strip_prefix("glob:") {
            glob_to_regex(glob).map_err(invalid)?
        } else if pattern.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            glob_to_regex(&format!("**/{pattern}")).map_err(invalid)?
        } else {
            glob_to_regex(pattern).map_err(invalid)?
        };
        let regex = Regex::new(&source).map_err(|e| invalid(e.to_string()))?;
        Ok(PathPattern { regex })
    }

    /// Whether the path (with its leading `/`) matches.
    pub fn matches(&self, path: &str) -> bool {
        self.regex.is_match(path)
    }
}

/// Whether any of the patterns matches the path.
pub fn any_matches(patterns: &[PathPattern], path: &str) -> bool {
    patterns.iter().any(|p| p.matches(path))
}

fn glob_to_regex(glob: &str) -> Result<String, String> {
    let mut out = String::from("^");
    let mut chars = glob.chars().peekable();
    let mut in_group = false;
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                out.push_str(".*");
            }
            '*' => out.push_str("[^/]*"),
            '?' => out.push_str("[^/]"),
            '\\' => {
                let escaped = chars.next().ok_or("a '\\' ends the pattern")?;
                out.push_str(&regex::escape(&escaped.to_string()));
            }
            '{' if in_group => return Err("nested '{' groups are not allowed".into()),
            '{' => {
                in_group = true;
                out.push_str("(?:");
            }
            '}' if in_group => {
                in_group = false;
                out.push(')');
            }
            ',' if in_group => out.push('|'),
            '[' => {
                out.push('[');
                if chars.peek() == Some(&'!') {
                    chars.next();
                    out.push('^');
                }
                let mut closed = false;
                for c in chars.by_ref() {
                    match c {
                        ']' => {
                            closed = true;
                            break;
                        }
                        '-' => out.push('-'),
                        c => out.push_str(&regex::escape(&c.to_string())),
                    }
                }
                if !closed {
                    return Err("a '[' class is not closed".into());
                }
                out.push(']');
            }
            c => out.push_str(&regex::escape(&c.to_string())),
        }
    }
    if in_group {
        return Err("a '{' group is not closed".into());
    }
    out.push('$');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, path: &str) -> bool {
        PathPattern::new(pattern).unwrap().matches(path)
    }

    #[test]
    fn double_star_crosses_folders_single_star_does_not() {
        assert!(matches("**", "/a/b/c.txt"));
        assert!(matches("**input.txt", "/input.txt"));
        assert!(matches("**input.txt", "/a/b/input.txt"));
        assert!(matches("**.upl", "/x/y.upl"));
        assert!(!matches("**.upl", "/x/y.upl.txt"));
        assert!(matches("/scripts/*.py", "/scripts/main.py"));
        assert!(!matches("/scripts/*.py", "/scripts/sub/main.py"));
        assert!(matches("/scripts/**.py", "/scripts/sub/main.py"));
        assert!(matches("/a/?.txt", "/a/1.txt"));
        assert!(!matches("/a/?.txt", "/a/12.txt"));
    }

    #[test]
    fn a_bare_name_matches_in_any_folder() {
        assert!(matches("input.txt", "/input.txt"));
        assert!(matches("input.txt", "/a/b/input.txt"));
        assert!(!matches("input.txt", "/a/my_input.txt"));
        assert!(matches("scripts/*.py", "/team/scripts/a.py"));
        // Not a word character first: the glob as written, against a path with its '/'.
        assert!(!matches("*.py", "/a.py"));
        assert!(matches("/*.py", "/a.py"));
    }

    #[test]
    fn classes_groups_escapes_and_regexes() {
        assert!(matches("/[a-c].txt", "/b.txt"));
        assert!(!matches("/[!a-c].txt", "/b.txt"));
        assert!(matches("/[!a-c].txt", "/d.txt"));
        assert!(matches("/*.{sql,py}", "/q.sql"));
        assert!(matches("/*.{sql,py}", "/q.py"));
        assert!(!matches("/*.{sql,py}", "/q.txt"));
        assert!(matches("/a\\*b", "/a*b"));
        assert!(!matches("/a\\*b", "/axb"));
        assert!(matches("/a+b(1).txt", "/a+b(1).txt"));
        assert!(matches("glob:**/dbt/**", "/x/dbt/models/m.sql"));
        assert!(matches("regex:/a/.*\\.sql", "/a/b/c.sql"));
        assert!(!matches("regex:/a/.*\\.sql", "/b/a/c.sql"));
        for bad in ["/{a,{b}}", "/[abc", "/{a", "regex:(", "/a\\"] {
            assert!(PathPattern::new(bad).is_err(), "{bad}");
        }
    }
}
