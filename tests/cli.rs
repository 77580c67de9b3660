//! Smoke test of the `kite` binary: a server on a free local port with a temporary
//! data folder, then the CLI commands against it.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const KITE: &str = env!("CARGO_BIN_EXE_kite");
const FLOWS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/flows");

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start_server(data: &Path, port: u16) -> Server {
    let child = Command::new(KITE)
        .args(["server", "--port", &port.to_string(), "--flows", FLOWS])
        .arg("--data")
        .arg(data)
        .env_remove("KITE_BASIC_AUTH")
        .env_remove("KITE_API_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("kite server starts");
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server did not listen within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

fn kite(args: &[&str], port: u16) -> Output {
    Command::new(KITE)
        .args(args)
        .env("KITE_SERVER", format!("http://127.0.0.1:{port}"))
        .env_remove("KITE_BASIC_AUTH")
        .env_remove("KITE_API_TOKEN")
        .output()
        .expect("kite runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn validate_reports_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "id: bad\nnamespace: dev\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Nope\n",
    )
    .unwrap();
    let out = Command::new(KITE)
        .args(["flow", "validate"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.yaml:5:"), "{stderr}");
    let ok = Command::new(KITE)
        .args(["flow", "validate", FLOWS])
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", text(&ok));
}

#[test]
fn server_cli_round_trip_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let id = {
        let _server = start_server(&data, port);
        let deploy = kite(
            &["flow", "deploy", &format!("{FLOWS}/dev/hello-world.yaml")],
            port,
        );
        assert!(deploy.status.success(), "{}", text(&deploy));

        let run = kite(
            &[
                "execute",
                "dev",
                "hello-world",
                "--input",
                "greeting=bonjour",
                "--wait",
            ],
            port,
        );
        assert!(run.status.success(), "{}", text(&run));
        let out = text(&run);
        assert!(out.contains("SUCCESS"), "{out}");
        assert!(out.contains("bonjour"), "{out}");

        let file = dir.path().join("note.txt");
        std::fs::write(&file, "file content here").unwrap();
        let run = kite(
            &[
                "execute",
                "dev",
                "file-input",
                "--file",
                &format!("myfile={}", file.display()),
                "--wait",
            ],
            port,
        );
        assert!(text(&run).contains("file content here"), "{}", text(&run));

        let list = kite(&["executions", "list"], port);
        assert!(list.status.success(), "{}", text(&list));
        assert!(text(&list).contains("hello-world"), "{}", text(&list));

        // An execution left sleeping when the server goes away.
        let run = kite(&["execute", "dev", "sleep-and-pause"], port);
        assert!(run.status.success(), "{}", text(&run));
        String::from_utf8_lossy(&run.stdout).trim().to_string()
    };
    // The server was killed (not stopped): start it again on the same data.
    let _server = start_server(&data, port);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list = kite(&["executions", "list", "--flow-id", "sleep-and-pause"], port);
        let out = text(&list);
        if out.contains(&id) && out.contains("SUCCESS") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "execution {id} did not finish after restart: {out}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn execute_stages_files_too_large_for_one_request() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _server = start_server(&dir.path().join("data"), port);
    let flow = dir.path().join("big-file.yaml");
    std::fs::write(
        &flow,
        "id: big-file\nnamespace: dev\ninputs:\n  - id: myfile\n    type: FILE\ntasks:\n  - id: size\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ inputs.myfile }} has {{ read(inputs.myfile) | length }} characters\"\n",
    )
    .unwrap();
    let deploy = kite(&["flow", "deploy", &flow.display().to_string()], port);
    assert!(deploy.status.success(), "{}", text(&deploy));
    // Over 4 MiB: uploaded on its own, then named by its staged URI.
    let file = dir.path().join("big.csv");
    std::fs::write(&file, "x".repeat(5 * 1024 * 1024 + 3)).unwrap();
    let run = kite(
        &[
            "execute",
            "dev",
            "big-file",
            "--file",
            &format!("myfile={}", file.display()),
            "--wait",
        ],
        port,
    );
    let out = text(&run);
    assert!(run.status.success(), "{out}");
    assert!(out.contains("kestra:///dev/big-file/uploads/"), "{out}");
    assert!(out.contains("/big.csv has 5242883 characters"), "{out}");
}

#[test]
fn a_second_server_on_the_same_data_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = start_server(dir.path(), free_port());
    let second = Command::new(KITE)
        .args(["server", "--port", &free_port().to_string(), "--flows", FLOWS])
        .arg("--data")
        .arg(dir.path())
        .env_remove("KITE_BASIC_AUTH")
        .env_remove("KITE_API_TOKEN")
        .output()
        .expect("kite runs");
    assert!(!second.status.success(), "{}", text(&second));
    assert!(
        text(&second).contains("is in use by another Kite server"),
        "{}",
        text(&second)
    );
}

/// Sends one HTTP/1.1 request on a new connection and returns the stream, its answer unread.
fn send(port: u16, request: &str) -> std::net::TcpStream {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connects");
    stream.write_all(request.as_bytes()).expect("sends");
    stream
}

#[test]
fn sigterm_stops_the_server_within_its_grace_period_whatever_is_open() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = start_server(&dir.path().join("data"), port);
    let flow = dir.path().join("sleeper.yaml");
    std::fs::write(
        &flow,
        "id: sleeper\nnamespace: dev\ntasks:\n  - id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT1H\n",
    )
    .unwrap();
    let deploy = kite(&["flow", "deploy", flow.to_str().unwrap()], port);
    assert!(deploy.status.success(), "{}", text(&deploy));
    let mut created = send(
        port,
        "POST /api/v1/executions/dev/sleeper HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    let mut answer = String::new();
    created.read_to_string(&mut answer).unwrap();
    let id = answer
        .split("\"id\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("an execution id in {answer}"))
        .to_string();
    // A live view of an execution that sleeps an hour: it would hold a graceful stop.
    let mut follow = send(
        port,
        &format!("GET /api/v1/executions/{id}/follow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
    );
    let mut first = [0u8; 64];
    assert!(follow.read(&mut first).unwrap() > 0, "the follow stream answers");
    let term = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    // The grace period is 10 s; the workers stop at once (a Sleep is a timer).
    let deadline = Instant::now() + Duration::from_secs(25);
    loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "still running 25 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
}
