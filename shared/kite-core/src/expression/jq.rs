//! The `jq` filter, on jaq (a maintained Rust implementation of jq).

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, RcIter};
use jaq_json::Val;
use serde_json::Value;

/// Runs a jq program on `input` and returns every output, as Kestra does (always a list).
pub fn run(program: &str, input: &Value) -> Result<Value, String> {
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
        .map_err(|errs| format!("Invalid jq expression `{program}`: {}", describe(&errs)))?;
    let filter = Compiler::default()
        .with_funs(jaq_std::funs().chain(jaq_json::funs()))
        .compile(modules)
        .map_err(|errs| format!("Invalid jq expression `{program}`: {} error(s)", errs.len()))?;
    let inputs = RcIter::new(core::iter::empty());
    let mut out = Vec::new();
    for item in filter.run((Ctx::new([], &inputs), Val::from(input.clone()))) {
        match item {
            Ok(v) => out.push(Value::from(v)),
            Err(e) => return Err(format!("Failed to run jq expression `{program}`: {e}")),
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
}
