//! `kite flow validate`: parse and validate flow files locally.

use std::path::PathBuf;
use std::process::ExitCode;

use kite_core::flow::parse_flows;

/// Prints `file:line:column: path: message` for every error; non-zero exit if any.
pub fn run(paths: &[PathBuf]) -> ExitCode {
    let files = match crate::flow_files(paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut failed = false;
    for file in files {
        let name = file.display();
        let source = match std::fs::read_to_string(&file) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{name}: cannot read: {e}");
                failed = true;
                continue;
            }
        };
        for result in parse_flows(&source) {
            match result {
                Ok(flow) => println!("{name}: valid flow {}.{}", flow.namespace, flow.id),
                Err(errors) => {
                    failed = true;
                    for e in errors {
                        let at = match (e.line, e.column) {
                            (Some(l), Some(c)) => format!("{l}:{c}"),
                            (Some(l), None) => format!("{l}:1"),
                            _ => "1:1".to_string(),
                        };
                        if e.path.is_empty() {
                            eprintln!("{name}:{at}: {}", e.message);
                        } else {
                            eprintln!("{name}:{at}: {}: {}", e.path, e.message);
                        }
                    }
                }
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
