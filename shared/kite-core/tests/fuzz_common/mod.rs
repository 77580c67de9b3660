//! What the fuzz targets share: the proptest configuration (case count from
//! `PROPTEST_CASES`, regression files under `tests/proptest-regressions/`) and the
//! seed corpus read from `tests/fuzz-corpus/`.

// The corpus and the case count are read by the tests, never by the core.
#![allow(clippy::disallowed_methods, dead_code)]

use proptest::test_runner::{Config, FileFailurePersistence, RngSeed};

/// The seed of the cases a plain test run draws.
const FIXED_SEED: u64 = 0x6b69_7465_2d66_757a;

/// `default_cases` cases, or `PROPTEST_CASES` when it is set. Failures are saved in
/// `tests/proptest-regressions/{name}.txt` (cargo runs tests from the crate's folder)
/// and replayed first on the next run.
pub fn config(name: &'static str, default_cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    let defaults = Config::default();
    // The same cases on every run, so that a test run fails for the code, not for the
    // draw; `PROPTEST_RNG_SEED=random` (or a number) explores further.
    let rng_seed = match std::env::var("PROPTEST_RNG_SEED") {
        Ok(_) => defaults.rng_seed,
        Err(_) => RngSeed::Fixed(FIXED_SEED),
    };
    Config {
        cases,
        rng_seed,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(name))),
        ..defaults
    }
}

/// Every file of `tests/fuzz-corpus/{target}/`, sorted by name, as (name, text).
pub fn corpus(target: &str) -> Vec<(String, String)> {
    let dir = format!("{}/tests/fuzz-corpus/{target}", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|entry| entry.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().expect("a file").to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (name, text)
        })
        .collect()
}
