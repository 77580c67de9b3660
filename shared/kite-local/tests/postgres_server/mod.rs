//! A real PostgreSQL server for the SQL tests, from the machine's own packages (Debian's
//! `postgresql`): a new cluster in a temporary folder, listening on 127.0.0.1 on a free
//! port, with password (SCRAM) login, stopped when dropped. As root it runs as the
//! `postgres` user (the server refuses root). With `tls`, it also serves TLS with a
//! self-signed certificate for 127.0.0.1 made by `openssl`.
//!
//! Without PostgreSQL on the machine, [`PostgresServer::start`] fails the test, saying
//! what to install (`.ci/run` installs it).
#![allow(dead_code)] // each test file uses its share

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const USER: &str = "kite";
pub const PASSWORD: &str = "s3cret pass";

pub struct PostgresServer {
    pub port: u16,
    /// The server's certificate (PEM) when it serves TLS.
    pub certificate: Option<String>,
    child: Child,
    _dir: tempfile::TempDir,
}

/// The folder holding `initdb` and `postgres`.
fn binaries() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("KITE_POSTGRES_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    current_uid() == 0
}

fn current_uid() -> u32 {
    // `id -u` keeps the tests free of a libc binding.
    Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(u32::MAX)
}

/// A command run as the server's user.
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        // setpriv execs the program itself, so the child's pid is the server's.
        let mut command = Command::new("setpriv");
        command
            .args(["--reuid=postgres", "--regid=postgres", "--clear-groups", "--"])
            .arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl PostgresServer {
    pub fn start(tls: bool) -> PostgresServer {
        let bin = binaries().expect(
            "the SQL tests need PostgreSQL's server programs: apt-get install postgresql \
             (or set KITE_POSTGRES_BIN to the folder holding initdb and postgres)",
        );
        let dir = tempfile::Builder::new()
            .prefix("kite-pg-")
            .tempdir()
            .expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).expect("pwfile");
        std::fs::set_permissions(&pwfile, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let status = as_server_user(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", USER, "--auth=scram-sha-256", "-E", "UTF8", "--locale=C"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("initdb runs");
        assert!(
            status.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&status.stderr)
        );

        let mut certificate = None;
        let mut ssl_args = Vec::new();
        if tls {
            let (cert, key) = (data.join("server.crt"), data.join("server.key"));
            let made = as_server_user(Path::new("/usr/bin/openssl"))
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=127.0.0.1",
                ])
                .args([
                    "-addext",
                    "subjectAltName=IP:127.0.0.1",
                    "-addext",
                    "basicConstraints=critical,CA:FALSE",
                ])
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
                .expect("openssl runs");
            assert!(
                made.status.success(),
                "openssl: {}",
                String::from_utf8_lossy(&made.stderr)
            );
            certificate = Some(std::fs::read_to_string(&cert).expect("certificate"));
            ssl_args = vec!["-c".to_string(), "ssl=on".to_string()];
        }

        let port = free_port();
        let child = as_server_user(&bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args([
                "-p",
                &port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
            ])
            .args(["-c", "max_connections=40"])
            .arg("-k")
            .arg(dir.path())
            .args(&ssl_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("postgres starts");
        let server = PostgresServer {
            port,
            certificate,
            child,
            _dir: dir,
        };
        // Listening is not accepting yet ("the database system is starting up").
        let deadline = Instant::now() + Duration::from_secs(30);
        let ready = || {
            Command::new(bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
                .status()
                .is_ok_and(|s| s.success())
        };
        while !ready() {
            assert!(Instant::now() < deadline, "postgres did not start on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// The JDBC URL of a database (`postgres` exists from the start).
    pub fn url(&self, database: &str) -> String {
        format!("jdbc:postgresql://127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        // SIGINT: PostgreSQL's fast shutdown (its backends end with it).
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
