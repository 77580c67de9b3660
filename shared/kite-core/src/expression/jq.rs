//! The `jq` filter, on jaq (a maintained Rust implementation of jq).

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, RcIter};
use jaq_json::Val;
use serde_json::Value;

/// A jq program that failed to load, compile or run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JqError {
    /// The program does not parse (`detail`: the parser's errors, shortened).
    #[error("Invalid jq expression `{program}`: {detail}")]
    Parse { program: String, detail: String },
    /// The program parses but names unknown filters or variables.
    #[error("Invalid jq expression `{program}`: {count} error(s)")]
    Compile { program: String, count: usize },
    /// The program failed on this input.
    #[error("Failed to run jq expression `{program}`: {message}")]
    Run { program: String, message: String },
}

/// Runs a jq program on `input` and returns every output, as Kestra does (always a list).
pub fn run(program: &str, input: &Value) -> Result<Value, JqError> {
    let loader = Loader::new(jaq_std::defs().chain(jaq_json::defs()));
    let arena = Arena::default();
    let modules = loader
        .load(
            &arena,
            File {
                code: program,
                path: (),
            },
        )
        .map_err(|errs| JqError::Parse {
            program: program.to_string(),
            detail: describe(&errs),
        })?;
    let filter = Compiler::default()
        .with_funs(jaq_std::funs().chain(jaq_json::funs()))
        .compile(modules)
        .map_err(|errs| JqError::Compile {
            program: program.to_string(),
            count: errs.len(),
        })?;
    let inputs = RcIter::new(core::iter::empty());
    let mut out = Vec::new();
    for item in filter.run((Ctx::new([], &inputs), Val::from(input.clone()))) {
        // Each output counts as a loop iteration of the render: `range(1e12)` stops at the
        // render's bounds (iterations, time) instead of filling memory.
        super::count_iteration().map_err(|e| JqError::Run {
            program: program.to_string(),
            message: e.message,
        })?;
        match item {
            Ok(v) => out.push(Value::from(v)),
            Err(e) => {
                return Err(JqError::Run {
                    program: program.to_string(),
                    message: e.to_string(),
                })
            }
        }
    }
    Ok(Value::Array(out))
}

fn describe<T: std::fmt::Debug>(errs: &T) -> String {
    let s = format!("{errs:?}");
    s.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn jq_returns_a_list() {
        assert_eq!(
            run(".a", &json!({"a": "my-complex"})).unwrap(),
            json!(["my-complex"])
        );
        assert_eq!(run(".[] | . * 2", &json!([1, 2])).unwrap(), json!([2, 4]));
        assert!(run(".[", &json!(1)).is_err());
    }

    #[test]
    fn errors_name_the_program() {
        let parse = run(".[", &json!(1)).unwrap_err();
        assert!(matches!(parse, JqError::Parse { .. }));
        assert!(parse.to_string().starts_with("Invalid jq expression `.[`: "));
        assert_eq!(
            run("nosuchfilter", &json!(1)).unwrap_err().to_string(),
            "Invalid jq expression `nosuchfilter`: 1 error(s)"
        );
        let failed = run("error(\"boom\")", &json!(1)).unwrap_err();
        assert!(matches!(failed, JqError::Run { .. }));
        assert!(failed
            .to_string()
            .starts_with("Failed to run jq expression `error(\"boom\")`: "));
    }
}
