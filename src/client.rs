//! The commands that talk to a running server over Kestra's HTTP API.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

use crate::{ExecuteArgs, ListArgs, ServerArgs};

/// A failed call, printed as one line.
struct Failure(String);

impl From<ureq::Error> for Failure {
    fn from(e: ureq::Error) -> Self {
        match e {
            ureq::Error::Status(code, response) => {
                let body = response.into_string().unwrap_or_default();
                let message = serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_string))
                    .unwrap_or(body);
                Failure(format!("HTTP {code}: {message}"))
            }
            ureq::Error::Transport(t) => Failure(format!("cannot reach the server: {t}")),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure(e.to_string())
    }
}

struct Client {
    agent: ureq::Agent,
    base: String,
    auth: Option<String>,
}

impl Client {
    fn new(args: &ServerArgs) -> Client {
        let auth = match (&args.api_token, &args.basic_auth) {
            (Some(token), _) => Some(format!("Bearer {token}")),
            (None, Some(basic)) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(basic)
            )),
            _ => None,
        };
        Client {
            agent: ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(5))
                .timeout(Duration::from_secs(120))
                .build(),
            base: args.server.trim_end_matches('/').to_string(),
            auth,
        }
    }

    fn request(&self, method: &str, path: &str) -> ureq::Request {
        let r = self.agent.request(method, &format!("{}{path}", self.base));
        match &self.auth {
            Some(a) => r.set("Authorization", a),
            None => r,
        }
    }

    fn json(&self, response: ureq::Response) -> Result<Value, Failure> {
        let body = response.into_string()?;
        serde_json::from_str(&body).map_err(|e| Failure(format!("unexpected answer from the server: {e}")))
    }

    fn get(&self, path: &str) -> Result<Value, Failure> {
        let response = self.request("GET", path).call()?;
        self.json(response)
    }

    /// Uploads the file at `path` for the FILE input `input` through the flow's uploads
    /// route: asks where, `PUT`s the bytes there (streamed) and returns the staged URI,
    /// the input's value. The credentials go along only to the server's own origin, never
    /// to a storage URL (S3's presigned one carries its own signature).
    fn stage(
        &self,
        namespace: &str,
        flow_id: &str,
        input: &str,
        path: &str,
        size: u64,
    ) -> Result<String, Failure> {
        let filename = staging_name(
            &PathBuf::from(path)
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default(),
        );
        let asked = self
            .request(
                "POST",
                &format!("/api/v1/executions/{namespace}/{flow_id}/uploads"),
            )
            .set("Content-Type", "application/json")
            .send_string(&serde_json::json!({"input": input, "filename": filename}).to_string())?;
        let asked = self.json(asked)?;
        let (Some(uri), Some(url)) = (asked["uri"].as_str(), asked["uploadUrl"].as_str()) else {
            return Err(Failure("the server returned no upload URL".into()));
        };
        if let Some(max) = asked["maxSize"].as_u64().filter(|max| size > *max) {
            return Err(Failure(format!(
                "{path} has {size} bytes, more than the server accepts ({max})"
            )));
        }
        let method = asked["method"].as_str().unwrap_or("PUT");
        let mut put = self
            .agent
            .request(method, url)
            .timeout(UPLOAD_TIMEOUT)
            .set("Content-Type", "application/octet-stream")
            .set("Content-Length", &size.to_string());
        if let (Some(auth), true) = (&self.auth, same_origin(url, &self.base)) {
            put = put.set("Authorization", auth);
        }
        let file = std::fs::File::open(path).map_err(|e| Failure(format!("cannot read {path}: {e}")))?;
        put.send(file)?;
        Ok(uri.to_string())
    }
}

/// Files larger than this go through the uploads route rather than in the multipart
/// request: behind API Gateway and Lambda a request carries at most about 4.4 MB of file.
const STAGE_ABOVE: u64 = 4 * 1024 * 1024;

/// How long one staged upload may take.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(3600);

/// `scheme://host:port` of a URL, lowercased, with the scheme's default port.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.split(['/', '?', '#']).next()?.to_ascii_lowercase();
    let authority = authority.rsplit('@').next()?.to_string();
    let default_port = match scheme.as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => "",
    };
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()));
    Some(if has_port {
        format!("{scheme}://{authority}")
    } else {
        format!("{scheme}://{authority}{default_port}")
    })
}

fn same_origin(a: &str, b: &str) -> bool {
    matches!((origin(a), origin(b)), (Some(x), Some(y)) if x == y)
}

/// A file name the uploads route accepts: one segment, no `..`, `:` or control
/// characters, at most 255 bytes.
fn staging_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if matches!(c, '/' | '\\' | ':') || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let mut cleaned = cleaned;
    while cleaned.contains("..") {
        cleaned = cleaned.replace("..", ".");
    }
    while cleaned.len() > 255 {
        cleaned.pop();
    }
    match cleaned.as_str() {
        "" | "." => "file".to_string(),
        _ => cleaned,
    }
}

fn finish(result: Result<ExitCode, Failure>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(Failure(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `kite flow deploy FILE|DIR`: update each flow, or create it when the server has none.
pub fn deploy(server: &ServerArgs, paths: &[PathBuf]) -> ExitCode {
    finish(deploy_all(server, paths))
}

fn deploy_all(server: &ServerArgs, paths: &[PathBuf]) -> Result<ExitCode, Failure> {
    let client = Client::new(server);
    let mut failed = false;
    for file in crate::flow_files(paths)? {
        let source = std::fs::read_to_string(&file)?;
        let name = file.display();
        let flow = match kite_core::flow::parse_flow(&source) {
            Ok(f) => f,
            Err(errors) => {
                failed = true;
                for e in errors {
                    eprintln!("{name}: {e}");
                }
                continue;
            }
        };
        let put = client
            .request("PUT", &format!("/api/v1/flows/{}/{}", flow.namespace, flow.id))
            .set("Content-Type", "application/x-yaml")
            .send_string(&source);
        let result = match put {
            Err(ureq::Error::Status(404, _)) => client
                .request("POST", "/api/v1/flows")
                .set("Content-Type", "application/x-yaml")
                .send_string(&source),
            other => other,
        };
        match result {
            Ok(response) => {
                let body = client.json(response)?;
                println!(
                    "{name}: deployed {}.{} revision {}",
                    flow.namespace,
                    flow.id,
                    body.get("revision").unwrap_or(&Value::Null)
                );
            }
            Err(e) => {
                failed = true;
                eprintln!("{name}: {}", Failure::from(e).0);
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn split_pair(s: &str, what: &str) -> Result<(String, String), Failure> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| Failure(format!("{what} `{s}` must be written id=value")))
}

/// A `multipart/form-data` body: text parts then file parts.
fn multipart(texts: &[(String, String)], files: &[(String, String, Vec<u8>)]) -> (String, Vec<u8>) {
    let boundary = format!(
        "----kite{}",
        kite_engine::ports::IdSource::next_id(&kite_engine::ports::RandomIds)
    );
    let mut body = Vec::new();
    let clean = |s: &str| s.replace(['"', '\r', '\n'], "_");
    for (name, value) in texts {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n",
                clean(name)
            )
            .as_bytes(),
        );
        body.extend_from_slice(value.as_bytes());
        body.extend_from_slice(b"\r\n");
    }
    for (name, filename, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
                clean(name),
                clean(filename)
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// `kite execute NAMESPACE FLOW`: prints the execution id; with `--wait`, its progress and logs.
pub fn execute(args: &ExecuteArgs) -> ExitCode {
    finish(execute_inner(args))
}

fn execute_inner(args: &ExecuteArgs) -> Result<ExitCode, Failure> {
    let client = Client::new(&args.server);
    let mut texts = args
        .inputs
        .iter()
        .map(|s| split_pair(s, "input"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut files = Vec::new();
    for f in &args.files {
        let (id, path) = split_pair(f, "file")?;
        let size = std::fs::metadata(&path)
            .map_err(|e| Failure(format!("cannot read {path}: {e}")))?
            .len();
        if size > STAGE_ABOVE {
            let uri = client.stage(&args.namespace, &args.flow_id, &id, &path, size)?;
            texts.push((id, uri));
            continue;
        }
        let bytes = std::fs::read(&path).map_err(|e| Failure(format!("cannot read {path}: {e}")))?;
        let filename = PathBuf::from(&path)
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| id.clone());
        files.push((id, filename, bytes));
    }
    let (content_type, body) = multipart(&texts, &files);
    let mut request = client.request(
        "POST",
        &format!("/api/v1/executions/{}/{}", args.namespace, args.flow_id),
    );
    for label in &args.labels {
        let (k, v) = label
            .split_once('=')
            .or_else(|| label.split_once(':'))
            .ok_or_else(|| Failure(format!("label `{label}` must be written key=value")))?;
        request = request.query("labels", &format!("{k}:{v}"));
    }
    let response = request.set("Content-Type", &content_type).send_bytes(&body)?;
    let execution = client.json(response)?;
    let id = execution
        .get("id")
        .and_then(|v| v.as_str())
        .ok_or_else(|| Failure("the server returned no execution id".into()))?
        .to_string();
    println!("{id}");
    if !args.wait {
        return Ok(ExitCode::SUCCESS);
    }
    follow(&client, &id)
}

const SPINNER: [char; 4] = ['|', '/', '-', '\\'];

/// Polls the execution and its logs until it ends, printing changes.
fn follow(client: &Client, id: &str) -> Result<ExitCode, Failure> {
    let tty = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut state = String::new();
    let mut task_states: HashMap<String, String> = HashMap::new();
    let mut printed_logs = 0usize;
    let mut tick = 0usize;
    loop {
        let execution = client.get(&format!("/api/v1/executions/{id}"))?;
        let current = execution
            .pointer("/state/current")
            .and_then(|v| v.as_str())
            .unwrap_or("UNKNOWN")
            .to_string();
        let mut lines = Vec::new();
        for tr in execution
            .get("taskRunList")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            let tr_id = tr
                .get("id")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string();
            let task = tr.get("taskId").and_then(|v| v.as_str()).unwrap_or_default();
            let tr_state = tr
                .pointer("/state/current")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string();
            if task_states.get(&tr_id) != Some(&tr_state) {
                let value = tr
                    .get("value")
                    .and_then(|v| v.as_str())
                    .map(|v| format!(" [{v}]"))
                    .unwrap_or_default();
                lines.push(format!("  task {task}{value}: {tr_state}"));
                task_states.insert(tr_id, tr_state);
            }
        }
        let logs = client.get(&format!("/api/v1/logs/{id}"))?;
        if let Some(all) = logs.as_array() {
            for l in all.iter().skip(printed_logs) {
                let level = l.get("level").and_then(|v| v.as_str()).unwrap_or("INFO");
                let task = l.get("taskId").and_then(|v| v.as_str()).unwrap_or("-");
                let message = l.get("message").and_then(|v| v.as_str()).unwrap_or_default();
                lines.push(format!("  {level:<5} {task}: {message}"));
            }
            printed_logs = printed_logs.max(all.len());
        }
        if tty {
            eprint!("\r\x1b[2K");
        }
        if current != state {
            println!("{id} {current}");
            state = current.clone();
        }
        for line in lines {
            println!("{line}");
        }
        let terminal = matches!(
            current.as_str(),
            "SUCCESS" | "WARNING" | "FAILED" | "KILLED" | "CANCELLED" | "RETRIED" | "SKIPPED"
        );
        if terminal {
            println!("{id} ended {current} in {:.1}s", started.elapsed().as_secs_f64());
            return Ok(if matches!(current.as_str(), "SUCCESS" | "WARNING") {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        if tty {
            eprint!(
                "{} {current} {:.1}s",
                SPINNER[tick % SPINNER.len()],
                started.elapsed().as_secs_f64()
            );
            let _ = std::io::stderr().flush();
        }
        tick += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `kite executions list`.
pub fn list(args: &ListArgs) -> ExitCode {
    finish(list_inner(args))
}

fn list_inner(args: &ListArgs) -> Result<ExitCode, Failure> {
    let client = Client::new(&args.server);
    let mut request = client
        .request("GET", "/api/v1/executions/search")
        .query("size", &args.size.to_string())
        .query("page", "1");
    if let Some(ns) = &args.namespace {
        request = request.query("namespace", ns);
    }
    if let Some(f) = &args.flow_id {
        request = request.query("flowId", f);
    }
    for s in &args.state {
        request = request.query("state", &s.to_ascii_uppercase());
    }
    let page = client.json(request.call()?)?;
    let results = page
        .get("results")
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default();
    println!(
        "{:<24} {:<24} {:<24} {:<10} {:<26} DURATION",
        "ID", "NAMESPACE", "FLOW", "STATE", "START"
    );
    for e in &results {
        let s = |p: &str| e.pointer(p).and_then(|v| v.as_str()).unwrap_or("").to_string();
        println!(
            "{:<24} {:<24} {:<24} {:<10} {:<26} {}",
            s("/id"),
            s("/namespace"),
            s("/flowId"),
            s("/state/current"),
            s("/state/startDate"),
            s("/state/duration")
        );
    }
    let total = page
        .get("total")
        .and_then(|v| v.as_u64())
        .unwrap_or(results.len() as u64);
    println!("{} of {total} executions", results.len());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_follow_only_the_servers_own_origin() {
        assert!(same_origin(
            "http://127.0.0.1:8080/api/v1/executions/dev/f/uploads/a/b.csv",
            "http://127.0.0.1:8080"
        ));
        assert!(same_origin("https://API.example/x", "https://api.example:443"));
        assert!(!same_origin(
            "https://bucket.s3.eu-west-1.amazonaws.com/dev/f/uploads/a/b.csv?X-Amz-Signature=1",
            "https://abc.execute-api.eu-west-1.amazonaws.com"
        ));
        assert!(!same_origin("http://api.example/x", "https://api.example/x"));
        assert!(!same_origin("http://api.example:8080/x", "http://api.example/x"));
        assert!(!same_origin("http://api.example.evil/x", "http://api.example"));
    }

    #[test]
    fn staged_file_names_are_one_safe_segment() {
        assert_eq!(staging_name("big data.csv"), "big data.csv");
        assert_eq!(staging_name("a...b:c"), "a.b_c");
        assert_eq!(staging_name(""), "file");
        assert_eq!(staging_name(&"é".repeat(200)).len(), 254);
    }
}
