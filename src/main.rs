//! `kite`: the local server and command-line interface.

mod client;
mod http;
mod server;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "kite",
    version,
    about = "Run Kestra flows locally: an embedded server and its command line"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server (HTTP API, workers, timers) on an embedded database.
    Server(server::ServerOptions),
    /// Work with flow files.
    Flow {
        #[command(subcommand)]
        command: FlowCommand,
    },
    /// Create an execution of a flow on a running server.
    Execute(ExecuteArgs),
    /// Look at executions on a running server.
    Executions {
        #[command(subcommand)]
        command: ExecutionsCommand,
    },
}

#[derive(Subcommand)]
enum FlowCommand {
    /// Check flow files locally (no server needed); errors show line:column.
    Validate {
        /// Flow files or folders (`.yml`/`.yaml`).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Create or update flows on a running server from a file or a folder.
    Deploy {
        #[command(flatten)]
        server: ServerArgs,
        /// A flow file or a folder of flow files.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ExecutionsCommand {
    /// The latest executions, newest first.
    List(ListArgs),
}

/// How to reach a running server.
#[derive(Args, Clone)]
pub struct ServerArgs {
    /// Server URL.
    #[arg(long, env = "KITE_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// `user:password` for basic authentication.
    #[arg(long, env = "KITE_BASIC_AUTH", hide_env_values = true)]
    pub basic_auth: Option<String>,
    /// Bearer token.
    #[arg(long, env = "KITE_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
}

#[derive(Args)]
pub struct ExecuteArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    pub namespace: String,
    pub flow_id: String,
    /// An input value, `id=value` (repeatable).
    #[arg(long = "input", short = 'i', value_name = "ID=VALUE")]
    pub inputs: Vec<String>,
    /// A FILE input, `id=path` (repeatable).
    #[arg(long = "file", short = 'f', value_name = "ID=PATH")]
    pub files: Vec<String>,
    /// A label, `key=value` or `key:value` (repeatable).
    #[arg(long = "label", short = 'l', value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Follow the execution until it ends, printing its progress and logs.
    #[arg(long, short = 'w')]
    pub wait: bool,
}

#[derive(Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Namespace (or namespace prefix).
    #[arg(long)]
    pub namespace: Option<String>,
    #[arg(long)]
    pub flow_id: Option<String>,
    /// Only executions in this state (repeatable).
    #[arg(long)]
    pub state: Vec<String>,
    /// How many executions.
    #[arg(long, default_value_t = 20)]
    pub size: u32,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Server(options) => server::run(options),
        Command::Flow {
            command: FlowCommand::Validate { paths },
        } => validate::run(&paths),
        Command::Flow {
            command: FlowCommand::Deploy { server, paths },
        } => client::deploy(&server, &paths),
        Command::Execute(args) => client::execute(&args),
        Command::Executions {
            command: ExecutionsCommand::List(args),
        } => client::list(&args),
    }
}

/// `.yml`/`.yaml` files of the given files and folders (folders walked recursively, sorted).
pub fn flow_files(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    fn walk(dir: &std::path::Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.path());
        for entry in entries {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out)?;
            } else if is_yaml(&path) {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn is_yaml(path: &std::path::Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("yml" | "yaml"))
}
